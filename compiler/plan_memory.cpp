#include "compiler/plan_memory.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace tessera {

namespace {
uint64_t AlignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
// Sizes come from untrusted models: sums saturate at UINT64_MAX instead of
// wrapping, so an impossible arena shows up as huge (and is rejected by the
// caller's cap) rather than as small.
uint64_t SatAdd(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
}  // namespace

ArenaPlan PlanArena(const std::vector<BufferRequest>& reqs, uint64_t alignment) {
  ArenaPlan plan;
  const size_t n = reqs.size();
  plan.offsets.assign(n, 0);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (reqs[a].bytes != reqs[b].bytes) return reqs[a].bytes > reqs[b].bytes;
    return reqs[a].first < reqs[b].first;
  });
  std::vector<size_t> placed;
  for (size_t idx : order) {
    const BufferRequest& r = reqs[idx];
    uint64_t size = AlignUp(std::max<uint64_t>(r.bytes, 1), alignment);
    // Intervals [offset, offset+size) of placed buffers alive at the same time.
    std::vector<std::pair<uint64_t, uint64_t>> busy;
    for (size_t p : placed) {
      const BufferRequest& q = reqs[p];
      if (q.first <= r.last && r.first <= q.last)
        busy.push_back({plan.offsets[p], SatAdd(plan.offsets[p], AlignUp(std::max<uint64_t>(q.bytes, 1), alignment))});
    }
    std::sort(busy.begin(), busy.end());
    uint64_t best = UINT64_MAX, best_gap = UINT64_MAX, cursor = 0;
    for (const auto& [b, e] : busy) {
      if (b > cursor) {
        uint64_t gap = b - cursor;
        if (gap >= size && gap < best_gap) { best_gap = gap; best = cursor; }
      }
      cursor = std::max(cursor, e);
    }
    if (best == UINT64_MAX) best = cursor;  // after everything alive
    plan.offsets[idx] = best;
    plan.arena_bytes = std::max(plan.arena_bytes, SatAdd(best, size));
    placed.push_back(idx);
  }
  // Lower bound: sweep over event times (128-bit sums: n sizes below 2^64 each).
  std::map<int64_t, __int128> delta;
  for (const auto& r : reqs) {
    __int128 size = AlignUp(std::max<uint64_t>(r.bytes, 1), alignment);
    delta[r.first] += size;
    delta[r.last + 1] -= size;
  }
  __int128 live = 0;
  for (const auto& [t, d] : delta) {
    live += d;
    uint64_t l = live <= 0 ? 0 : live >= static_cast<__int128>(UINT64_MAX) ? UINT64_MAX : static_cast<uint64_t>(live);
    plan.lower_bound = std::max(plan.lower_bound, l);
  }
  return plan;
}

}  // namespace tessera
