// Host emulation of the GPU macro layer, for unit tests on machines without a
// GPU: the kernels of gpu_kernels/*.cuh compile as plain C++ and run through
// emu::Launch, which executes the blocks of a grid one after another, each
// block as blockDim.x std::threads (one per GPU thread) with a real barrier
// for TSR_GPU_SYNC and per-warp barriers for shuffles. Static "shared" arrays
// are shared by all threads of the (single running) block. Slow; meant for
// small test shapes. Only gpu_macros.cuh includes this, when
// TSR_GPU_HOST_EMULATION is defined.
#pragma once

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "backends/common/plugin_util.h"

struct TsrHalf {
  uint16_t bits = 0;
};
struct TsrBF16 {
  uint16_t bits = 0;
};

namespace tessera::gpu::emu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

inline thread_local Dim3 tid, bid;
inline Dim3 block_dim, grid_dim;
inline std::barrier<>* block_barrier = nullptr;
struct Warp {
  float vals[32] = {};
  std::unique_ptr<std::barrier<>> bar;
};
inline std::vector<Warp>* warps = nullptr;
inline std::vector<float> dynamic_smem;

inline float Exchange(float v, int src_lane) {
  Warp& w = (*warps)[tid.x / 32];
  const int lane = static_cast<int>(tid.x % 32);
  w.vals[lane] = v;
  w.bar->arrive_and_wait();
  const float r = w.vals[src_lane & 31];
  w.bar->arrive_and_wait();
  return r;
}

// Runs `kernel` (a callable invoking one TSR_GPU_GLOBAL function) over the
// grid. block.x must be a multiple of 32 (whole warps).
inline void Launch(Dim3 grid, Dim3 block, size_t smem_bytes, const std::function<void()>& kernel) {
  grid_dim = grid;
  block_dim = block;
  dynamic_smem.assign(smem_bytes / sizeof(float) + 1, 0.f);
  const unsigned n = block.x;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        std::barrier<> bar(n);
        std::vector<Warp> ws((n + 31) / 32);
        for (unsigned w = 0; w < ws.size(); ++w)
          ws[w].bar = std::make_unique<std::barrier<>>(std::min<unsigned>(32, n - 32 * w));
        block_barrier = &bar;
        warps = &ws;
        std::vector<std::thread> threads;
        threads.reserve(n);
        for (unsigned t = 0; t < n; ++t)
          threads.emplace_back([&, t] {
            tid = Dim3{t, 0, 0};
            bid = Dim3{x, y, z};
            kernel();
          });
        for (std::thread& th : threads) th.join();
      }
}

}  // namespace tessera::gpu::emu

inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }

#define TSR_GPU_HALF_TO_F(x) ::tessera::plugin::HalfBitsToFloat((x).bits)
#define TSR_GPU_BF16_TO_F(x) ::tessera::plugin::BF16BitsToFloat((x).bits)
#define TSR_GPU_F_TO_HALF(f) TsrHalf{::tessera::plugin::FloatToHalfBits(f)}
#define TSR_GPU_F_TO_BF16(f) TsrBF16{::tessera::plugin::FloatToBF16Bits(f)}
#define TSR_GPU_WARP 32
#define TSR_GPU_SHFL_XOR(v, m) ::tessera::gpu::emu::Exchange((v), static_cast<int>(::tessera::gpu::emu::tid.x % 32) ^ (m))
#define TSR_GPU_SHFL(v, src) ::tessera::gpu::emu::Exchange((v), (src))
#define TSR_GPU_GLOBAL inline
#define TSR_GPU_DEVICE inline
#define TSR_GPU_HOST_DEVICE inline
#define TSR_GPU_SHARED static
#define TSR_GPU_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::tessera::gpu::emu::dynamic_smem.data())
#define TSR_GPU_SYNC() ::tessera::gpu::emu::block_barrier->arrive_and_wait()
#define TSR_GPU_TID_X (static_cast<int>(::tessera::gpu::emu::tid.x))
#define TSR_GPU_TID_Y (static_cast<int>(::tessera::gpu::emu::tid.y))
#define TSR_GPU_BID_X (static_cast<int64_t>(::tessera::gpu::emu::bid.x))
#define TSR_GPU_BID_Y (static_cast<int64_t>(::tessera::gpu::emu::bid.y))
#define TSR_GPU_BID_Z (static_cast<int64_t>(::tessera::gpu::emu::bid.z))
#define TSR_GPU_BDIM_X (static_cast<int>(::tessera::gpu::emu::block_dim.x))
#define TSR_GPU_GDIM_X (static_cast<int64_t>(::tessera::gpu::emu::grid_dim.x))
