// The CPU backend's threading: OpenMP, the same runtime oneDNN (Debian's
// libdnnl, DNNL_CPU_RUNTIME=OMP) uses, so kernels and oneDNN share one pool and
// never oversubscribe. The thread count is set once per backend (compile
// option "threads", default = the machine's cores).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace tessera::cpu {

// Calls fn(begin, end) over [0, n) split into chunks of at least `grain`
// items, in parallel when n is large enough to pay for it.
template <typename Fn>
void ParallelFor(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int threads = omp_get_max_threads();
  if (threads <= 1 || n <= grain || omp_in_parallel()) {
    fn(int64_t{0}, n);
    return;
  }
  int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    if (b < e) fn(b, e);
  }
}

}  // namespace tessera::cpu
