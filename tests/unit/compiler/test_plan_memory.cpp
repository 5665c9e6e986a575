#include <gtest/gtest.h>

#include "compiler/plan_memory.h"

namespace tessera {
namespace {

bool Overlaps(const BufferRequest& a, uint64_t oa, const BufferRequest& b, uint64_t ob) {
  bool time = a.first <= b.last && b.first <= a.last;
  bool space = oa < ob + b.bytes && ob < oa + a.bytes;
  return time && space;
}

TEST(PlanArena, DisjointLifetimesShareMemory) {
  std::vector<BufferRequest> r = {{1000, 0, 1}, {1000, 2, 3}, {1000, 4, 5}};
  ArenaPlan p = PlanArena(r);
  EXPECT_EQ(p.arena_bytes, 1024u);  // one aligned slot reused three times
  EXPECT_EQ(p.lower_bound, 1024u);
}

TEST(PlanArena, OverlappingLifetimesNeverOverlapInMemory) {
  std::vector<BufferRequest> r;
  for (int i = 0; i < 40; ++i) r.push_back({static_cast<uint64_t>(64 * (1 + (i * 7) % 13)), i, i + (i % 5)});
  ArenaPlan p = PlanArena(r);
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(p.offsets[i] % 64, 0u);
    for (size_t j = i + 1; j < r.size(); ++j)
      EXPECT_FALSE(Overlaps(r[i], p.offsets[i], r[j], p.offsets[j])) << i << " vs " << j;
  }
  EXPECT_GE(p.arena_bytes, p.lower_bound);
  EXPECT_LE(p.arena_bytes, p.lower_bound * 3 / 2);
}

TEST(PlanArena, ChainOfActivationsUsesTwoSlots) {
  // a -> b -> c -> d: each value lives from its producer to its consumer.
  std::vector<BufferRequest> r = {{4096, 0, 1}, {4096, 1, 2}, {4096, 2, 3}, {4096, 3, 4}};
  ArenaPlan p = PlanArena(r);
  EXPECT_EQ(p.arena_bytes, 2u * 4096);
  EXPECT_EQ(p.lower_bound, 2u * 4096);
}

TEST(PlanArena, EmptyRequestList) {
  ArenaPlan p = PlanArena({});
  EXPECT_EQ(p.arena_bytes, 0u);
  EXPECT_TRUE(p.offsets.empty());
}

}  // namespace
}  // namespace tessera
