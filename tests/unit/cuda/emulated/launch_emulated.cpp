// Host implementations of backends/cuda/cuda_launch.h (the shared kernels run
// through the host emulation of the GPU macro layer) and of the few CUDA
// runtime calls backends/cuda/cuda_ops.cpp makes (memcpy on host memory), so
// the CUDA backend's op factories and kernels' Run run on a CPU in
// test_cuda_ops_emulated. This executable does not link libcudart.
#define TSR_GPU_HOST_EMULATION 1
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backends/common/gpu_kernels/attention.cuh"
#include "backends/common/gpu_kernels/elementwise.cuh"
#include "backends/common/gpu_kernels/reduce.cuh"
#include "backends/cuda/cuda_launch.h"
#include "backends/cuda/cuda_ops.h"

// ---- CUDA runtime stubs (host memory) ---------------------------------------------------------
extern "C" {
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind, cudaStream_t) {
  std::memmove(dst, src, count);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind) {
  std::memmove(dst, src, count);
  return cudaSuccess;
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              enum cudaMemcpyKind, cudaStream_t) {
  if (width > dpitch || width > spitch) return cudaErrorInvalidPitchValue;
  for (size_t r = 0; r < height; ++r)
    std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::malloc(bytes ? bytes : 1);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char* cudaGetErrorName(cudaError_t) { return "cudaErrorEmulated"; }
const char* cudaGetErrorString(cudaError_t) { return "emulated error"; }
}

namespace tessera::cuda {

void AppendLibraryKernels(std::vector<KernelTableEntry>&) {}  // cuBLASLt/cuDNN ops are not emulated

namespace {

using gpu::emu::Dim3;
using gpu::emu::Launch;

// Small grids: the kernels are grid-stride loops, so 2 blocks of 64 threads
// also exercise the striding.
const Dim3 kGrid{2, 1, 1}, kBlock{64, 1, 1};
unsigned RowThreads(int64_t c) { return c > 64 ? 128 : c > 32 ? 64 : 32; }

#define FLOAT_DISPATCH(dt, FN)                         \
  switch (dt) {                                        \
    case TSR_DTYPE_F32: { using T = float; FN; break; } \
    case TSR_DTYPE_F16: { using T = TsrHalf; FN; break; } \
    case TSR_DTYPE_BF16: { using T = TsrBF16; FN; break; } \
    default: return cudaErrorInvalidValue;             \
  }
#define SIZE_DISPATCH(es, FN)                          \
  switch (es) {                                        \
    case 1: { using E = uint8_t; FN; break; }          \
    case 2: { using E = uint16_t; FN; break; }         \
    case 4: { using E = uint32_t; FN; break; }         \
    case 8: { using E = uint64_t; FN; break; }         \
    default: return cudaErrorInvalidValue;             \
  }

template <typename S>
cudaError_t CastFrom(int32_t dst, const void* in, void* out, int64_t n) {
  const S* s = static_cast<const S*>(in);
  switch (dst) {
    case TSR_DTYPE_F32: Launch(kGrid, kBlock, 0, [&] { gpu::CastKernel<S, float, false>(s, static_cast<float*>(out), n); }); break;
    case TSR_DTYPE_F16: Launch(kGrid, kBlock, 0, [&] { gpu::CastKernel<S, TsrHalf, false>(s, static_cast<TsrHalf*>(out), n); }); break;
    case TSR_DTYPE_I32: Launch(kGrid, kBlock, 0, [&] { gpu::CastKernel<S, int32_t, false>(s, static_cast<int32_t*>(out), n); }); break;
    case TSR_DTYPE_I64: Launch(kGrid, kBlock, 0, [&] { gpu::CastKernel<S, int64_t, false>(s, static_cast<int64_t*>(out), n); }); break;
    case TSR_DTYPE_BOOL: Launch(kGrid, kBlock, 0, [&] { gpu::CastKernel<S, uint8_t, true>(s, static_cast<uint8_t*>(out), n); }); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

}  // namespace

cudaError_t LaunchEwProgram(int32_t dtype, const gpu::EwProgram& p, const void* const* inputs, void* out, int64_t n,
                            cudaStream_t) {
  FLOAT_DISPATCH(dtype, {
    gpu::EwInputs<T> in{};
    for (int j = 0; j < p.num_inputs; ++j) in.p[j] = static_cast<const T*>(inputs[j]);
    if (gpu::EwIsSimple(p))  // the same choice as cuda_kernels.cu
      Launch(kGrid, kBlock, 0, [&] { gpu::EwSimpleKernel<T>(p, in, static_cast<T*>(out), n); });
    else
      Launch(kGrid, kBlock, 0, [&] { gpu::EwProgramKernel<T>(p, in, static_cast<T*>(out), n); });
  })
  return cudaSuccess;
}

cudaError_t LaunchCompare(int32_t dtype, int32_t op, const gpu::BcastGeom& g, const void* a, const void* b, void* out,
                          int64_t n, cudaStream_t) {
  auto* o = static_cast<uint8_t*>(out);
  switch (dtype) {
    case TSR_DTYPE_F32: Launch(kGrid, kBlock, 0, [&] { gpu::CompareKernel<float, float>(op, g, static_cast<const float*>(a), static_cast<const float*>(b), o, n); }); break;
    case TSR_DTYPE_I64: Launch(kGrid, kBlock, 0, [&] { gpu::CompareKernel<int64_t, int64_t>(op, g, static_cast<const int64_t*>(a), static_cast<const int64_t*>(b), o, n); }); break;
    case TSR_DTYPE_BOOL: Launch(kGrid, kBlock, 0, [&] { gpu::CompareKernel<uint8_t, uint8_t>(op, g, static_cast<const uint8_t*>(a), static_cast<const uint8_t*>(b), o, n); }); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

cudaError_t LaunchIntBinary(int32_t dtype, int32_t op, const gpu::BcastGeom& g, const void* a, const void* b,
                            void* out, int64_t n, cudaStream_t) {
  if (dtype != TSR_DTYPE_I64) return cudaErrorInvalidValue;
  Launch(kGrid, kBlock, 0, [&] {
    gpu::IntBinaryKernel<int64_t>(op, g, static_cast<const int64_t*>(a), static_cast<const int64_t*>(b),
                                  static_cast<int64_t*>(out), n);
  });
  return cudaSuccess;
}

cudaError_t LaunchNot(const void* a, void* out, int64_t n, cudaStream_t) {
  Launch(kGrid, kBlock, 0, [&] { gpu::NotKernel(static_cast<const uint8_t*>(a), static_cast<uint8_t*>(out), n); });
  return cudaSuccess;
}

cudaError_t LaunchWhere(size_t esize, const gpu::BcastGeom& g, const void* c, const void* x, const void* y, void* out,
                        int64_t n, cudaStream_t) {
  SIZE_DISPATCH(esize, Launch(kGrid, kBlock, 0, [&] {
                  gpu::WhereKernel<E>(g, static_cast<const uint8_t*>(c), static_cast<const E*>(x),
                                      static_cast<const E*>(y), static_cast<E*>(out), n);
                }))
  return cudaSuccess;
}

cudaError_t LaunchCast(int32_t src, int32_t dst, const void* in, void* out, int64_t n, cudaStream_t) {
  switch (src) {
    case TSR_DTYPE_F32: return CastFrom<float>(dst, in, out, n);
    case TSR_DTYPE_I64: return CastFrom<int64_t>(dst, in, out, n);
    case TSR_DTYPE_I32: return CastFrom<int32_t>(dst, in, out, n);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t LaunchStridedCopy(size_t esize, const gpu::CopyGeom& g, const void* src, void* dst, int64_t n,
                              cudaStream_t) {
  SIZE_DISPATCH(esize, Launch(kGrid, kBlock, 0, [&] {
                  gpu::StridedCopyKernel<E>(g, static_cast<const E*>(src), static_cast<E*>(dst), n);
                }))
  return cudaSuccess;
}

cudaError_t LaunchGather(size_t esize, int32_t idx_dtype, const void* data, const void* idx, void* out, int64_t outer,
                         int64_t axis_dim, int64_t num_idx, int64_t inner, cudaStream_t) {
  SIZE_DISPATCH(esize, {
    if (idx_dtype == TSR_DTYPE_I64)
      Launch(kGrid, kBlock, 0, [&] { gpu::GatherKernel<E, int64_t>(static_cast<const E*>(data), static_cast<const int64_t*>(idx), static_cast<E*>(out), outer, axis_dim, num_idx, inner, nullptr); });
    else
      Launch(kGrid, kBlock, 0, [&] { gpu::GatherKernel<E, int32_t>(static_cast<const E*>(data), static_cast<const int32_t*>(idx), static_cast<E*>(out), outer, axis_dim, num_idx, inner, nullptr); });
  })
  return cudaSuccess;
}

cudaError_t LaunchGatherElements(size_t esize, int32_t idx_dtype, const void* data, const void* idx, void* out,
                                 int32_t rank, int32_t axis, const gpu::BcastGeom& g, int64_t n, cudaStream_t) {
  if (idx_dtype != TSR_DTYPE_I64) return cudaErrorInvalidValue;
  SIZE_DISPATCH(esize, Launch(kGrid, kBlock, 0, [&] {
                  gpu::GatherElementsKernel<E, int64_t>(static_cast<const E*>(data), static_cast<const int64_t*>(idx),
                                                        static_cast<E*>(out), rank, axis, g, n, nullptr);
                }))
  return cudaSuccess;
}

cudaError_t LaunchTrilu(size_t esize, const void* in, void* out, int64_t rows, int64_t cols, int64_t k, bool upper,
                        int64_t n, cudaStream_t) {
  SIZE_DISPATCH(esize, Launch(kGrid, kBlock, 0, [&] {
                  gpu::TriluKernel<E>(static_cast<const E*>(in), static_cast<E*>(out), rows, cols, k, upper, n);
                }))
  return cudaSuccess;
}

cudaError_t LaunchChannelAffine(int32_t dtype, const void* x, const float* a, const float* b, void* y, int64_t C,
                                int64_t inner, int64_t n, cudaStream_t) {
  FLOAT_DISPATCH(dtype, Launch(kGrid, kBlock, 0, [&] {
                   gpu::ChannelAffineKernel<T>(static_cast<const T*>(x), a, b, static_cast<T*>(y), C, inner, n);
                 }))
  return cudaSuccess;
}

cudaError_t LaunchFill(size_t esize, void* out, const void* value, int64_t n, cudaStream_t) {
  SIZE_DISPATCH(esize, {
    E v;
    std::memcpy(&v, value, sizeof(E));
    Launch(kGrid, kBlock, 0, [&] { gpu::FillKernel<E>(static_cast<E*>(out), v, n); });
  })
  return cudaSuccess;
}

cudaError_t LaunchReduce(int32_t dtype, int32_t op, const void* in, void* out, int64_t outer, int64_t R,
                         int64_t inner, cudaStream_t) {
  FLOAT_DISPATCH(dtype, {
    if (inner == 1)
      Launch({static_cast<unsigned>(outer)}, {RowThreads(R)}, 0,
             [&] { gpu::ReduceRowsKernel<T>(op, static_cast<const T*>(in), static_cast<T*>(out), R); });
    else
      Launch(kGrid, kBlock, 0,
             [&] { gpu::ReduceStridedKernel<T>(op, static_cast<const T*>(in), static_cast<T*>(out), outer, R, inner); });
  })
  return cudaSuccess;
}

cudaError_t LaunchSoftmax(int32_t dtype, const void* in, void* out, int64_t outer, int64_t C, int64_t inner,
                          bool log_softmax, cudaStream_t) {
  FLOAT_DISPATCH(dtype, {
    if (inner == 1)
      Launch({static_cast<unsigned>(outer)}, {RowThreads(C)}, 0,
             [&] { gpu::SoftmaxRowsKernel<T>(static_cast<const T*>(in), static_cast<T*>(out), C, log_softmax); });
    else
      Launch(kGrid, kBlock, 0, [&] {
        gpu::SoftmaxStridedKernel<T>(static_cast<const T*>(in), static_cast<T*>(out), outer, C, inner, log_softmax);
      });
  })
  return cudaSuccess;
}

cudaError_t LaunchLayerNorm(int32_t dtype, const void* x, const void* scale, const void* bias, void* y, float* mean,
                            float* inv_std, int64_t rows, int64_t C, float eps, cudaStream_t) {
  FLOAT_DISPATCH(dtype, Launch({static_cast<unsigned>(rows)}, {RowThreads(C)}, 0, [&] {
                   gpu::LayerNormRowsKernel<T>(static_cast<const T*>(x), static_cast<const T*>(scale),
                                               static_cast<const T*>(bias), static_cast<T*>(y), mean, inv_std, C, eps);
                 }))
  return cudaSuccess;
}

cudaError_t LaunchGemmNaive(int32_t dtype, const gpu::GemmArgs& g, const void* A, const void* B, const void* C, void* Y,
                            cudaStream_t) {
  FLOAT_DISPATCH(dtype, Launch(kGrid, kBlock, 0, [&] {
                   gpu::GemmNaiveKernel<T>(g, static_cast<const T*>(A), static_cast<const T*>(B),
                                           static_cast<const T*>(C), static_cast<T*>(Y));
                 }))
  return cudaSuccess;
}

cudaError_t LaunchPool(int32_t dtype, const gpu::PoolArgs& a, const void* x, void* y, cudaStream_t) {
  FLOAT_DISPATCH(dtype, Launch(kGrid, kBlock, 0, [&] {
                   gpu::Pool2dKernel<T>(a, static_cast<const T*>(x), static_cast<T*>(y));
                 }))
  return cudaSuccess;
}

cudaError_t PrepareFlashAttention(int32_t, size_t) { return cudaSuccess; }

cudaError_t LaunchFlashAttention(int32_t dtype, const gpu::AttnArgs& a, const void* q, const void* k, const void* v,
                                 const void* mask, void* y, size_t smem_bytes, cudaStream_t) {
  const Dim3 grid{static_cast<unsigned>((a.Sq + a.rows_per_block - 1) / a.rows_per_block),
                  static_cast<unsigned>(a.B * a.H), 1};
  FLOAT_DISPATCH(dtype, Launch(grid, {static_cast<unsigned>(a.rows_per_block * 32)}, smem_bytes, [&] {
                   gpu::FlashAttentionKernel<T>(a, static_cast<const T*>(q), static_cast<const T*>(k),
                                                static_cast<const T*>(v), mask, static_cast<T*>(y));
                 }))
  return cudaSuccess;
}

}  // namespace tessera::cuda
