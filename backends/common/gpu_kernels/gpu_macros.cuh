// The macro layer that lets one kernel source build for CUDA (nvcc) and, later,
// HIP (hipcc): qualifiers, thread/block indices, warp shuffles and the 16-bit
// float types. Kernels in backends/common/gpu_kernels/*.cuh use only these
// names (and plain C++), never cuda*/hip* identifiers directly.
//
// Storage types: float, TsrHalf (IEEE half), TsrBF16 (bfloat16), plus the
// integer types and bool (1 byte). Arithmetic is done in float for the float
// types: TsrToF(x) widens, TsrFromF<T>(f) narrows (round to nearest even).
#pragma once

#include <stdint.h>

#if defined(TSR_GPU_HOST_EMULATION)
// Plain C++ build of the kernels for unit tests without a GPU (host_emulation.h).
#include "backends/common/gpu_kernels/host_emulation.h"
#else
#if defined(__HIPCC__)
#include <hip/hip_bf16.h>
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>
typedef __half TsrHalf;
typedef __hip_bfloat16 TsrBF16;
#define TSR_GPU_HALF_TO_F(x) __half2float(x)
#define TSR_GPU_BF16_TO_F(x) __bfloat162float(x)
#define TSR_GPU_F_TO_HALF(f) __float2half_rn(f)
#define TSR_GPU_F_TO_BF16(f) __float2bfloat16_rn(f)
#define TSR_GPU_WARP 64
#define TSR_GPU_SHFL_XOR(v, m) __shfl_xor((v), (m))
#define TSR_GPU_SHFL(v, src) __shfl((v), (src))
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
typedef __half TsrHalf;
typedef __nv_bfloat16 TsrBF16;
#define TSR_GPU_HALF_TO_F(x) __half2float(x)
#define TSR_GPU_BF16_TO_F(x) __bfloat162float(x)
#define TSR_GPU_F_TO_HALF(f) __float2half_rn(f)
#define TSR_GPU_F_TO_BF16(f) __float2bfloat16_rn(f)
#define TSR_GPU_WARP 32
#define TSR_GPU_SHFL_XOR(v, m) __shfl_xor_sync(0xffffffffu, (v), (m))
#define TSR_GPU_SHFL(v, src) __shfl_sync(0xffffffffu, (v), (src))
#endif

#define TSR_GPU_GLOBAL __global__
#define TSR_GPU_DEVICE __device__ __forceinline__
#define TSR_GPU_HOST_DEVICE __host__ __device__ __forceinline__
#define TSR_GPU_SHARED __shared__
// Dynamic shared memory of a kernel as an array of T named `name`.
#define TSR_GPU_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#define TSR_GPU_SYNC() __syncthreads()
#define TSR_GPU_TID_X (static_cast<int>(threadIdx.x))
#define TSR_GPU_TID_Y (static_cast<int>(threadIdx.y))
#define TSR_GPU_BID_X (static_cast<int64_t>(blockIdx.x))
#define TSR_GPU_BID_Y (static_cast<int64_t>(blockIdx.y))
#define TSR_GPU_BID_Z (static_cast<int64_t>(blockIdx.z))
#define TSR_GPU_BDIM_X (static_cast<int>(blockDim.x))
#define TSR_GPU_GDIM_X (static_cast<int64_t>(gridDim.x))
#endif  // TSR_GPU_HOST_EMULATION

// Grid-stride loop over [0, n).
#define TSR_GPU_FOR(i, n)                                                                     \
  for (int64_t i = TSR_GPU_BID_X * TSR_GPU_BDIM_X + TSR_GPU_TID_X; i < static_cast<int64_t>(n); \
       i += TSR_GPU_GDIM_X * TSR_GPU_BDIM_X)

namespace tessera::gpu {

// Widening/narrowing between storage and compute types.
TSR_GPU_DEVICE float TsrToF(float x) { return x; }
TSR_GPU_DEVICE float TsrToF(TsrHalf x) { return TSR_GPU_HALF_TO_F(x); }
TSR_GPU_DEVICE float TsrToF(TsrBF16 x) { return TSR_GPU_BF16_TO_F(x); }

template <typename T>
TSR_GPU_DEVICE T TsrFromF(float f);
template <>
TSR_GPU_DEVICE float TsrFromF<float>(float f) { return f; }
template <>
TSR_GPU_DEVICE TsrHalf TsrFromF<TsrHalf>(float f) { return TSR_GPU_F_TO_HALF(f); }
template <>
TSR_GPU_DEVICE TsrBF16 TsrFromF<TsrBF16>(float f) { return TSR_GPU_F_TO_BF16(f); }

// Block-wide sum/max of one float per thread (blockDim.x a multiple of the
// warp size, at most 1024). Every thread gets the result. `scratch` holds
// 32 floats of shared memory; the call synchronizes the block.
TSR_GPU_DEVICE float WarpSum(float v) {
  for (int m = TSR_GPU_WARP / 2; m > 0; m >>= 1) v += TSR_GPU_SHFL_XOR(v, m);
  return v;
}
TSR_GPU_DEVICE float WarpMax(float v) {
  for (int m = TSR_GPU_WARP / 2; m > 0; m >>= 1) v = fmaxf(v, TSR_GPU_SHFL_XOR(v, m));
  return v;
}
TSR_GPU_DEVICE float BlockReduce(float v, bool is_max, float* scratch) {
  const int lane = TSR_GPU_TID_X % TSR_GPU_WARP, warp = TSR_GPU_TID_X / TSR_GPU_WARP;
  const int nwarps = (TSR_GPU_BDIM_X + TSR_GPU_WARP - 1) / TSR_GPU_WARP;
  v = is_max ? WarpMax(v) : WarpSum(v);
  TSR_GPU_SYNC();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  TSR_GPU_SYNC();
  const float ident = is_max ? -INFINITY : 0.f;
  float r = lane < nwarps ? scratch[lane] : ident;
  r = is_max ? WarpMax(r) : WarpSum(r);
  return r;
}

}  // namespace tessera::gpu
