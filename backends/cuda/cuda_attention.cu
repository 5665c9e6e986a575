// Instantiation and launcher of the shared flash-attention kernel
// (backends/common/gpu_kernels/attention.cuh) for CUDA.
#include "backends/common/gpu_kernels/attention.cuh"
#include "backends/cuda/cuda_launch.h"
#include "tessera/backend.h"

namespace tessera::cuda {
namespace {

template <typename T>
cudaError_t AttnT(const gpu::AttnArgs& a, const void* q, const void* k, const void* v, const void* mask, void* y,
                  size_t smem, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>((a.Sq + a.rows_per_block - 1) / a.rows_per_block),
                  static_cast<unsigned>(a.B * a.H));
  gpu::FlashAttentionKernel<T><<<grid, a.rows_per_block * 32, smem, s>>>(
      a, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), mask, static_cast<T*>(y));
  return cudaGetLastError();
}

template <typename T>
cudaError_t PrepareT(size_t smem) {
  if (smem <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(gpu::FlashAttentionKernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(smem));
}

}  // namespace

cudaError_t PrepareFlashAttention(int32_t dtype, size_t smem_bytes) {
  switch (dtype) {
    case TSR_DTYPE_F32: return PrepareT<float>(smem_bytes);
    case TSR_DTYPE_F16: return PrepareT<TsrHalf>(smem_bytes);
    case TSR_DTYPE_BF16: return PrepareT<TsrBF16>(smem_bytes);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t LaunchFlashAttention(int32_t dtype, const gpu::AttnArgs& a, const void* q, const void* k, const void* v,
                                 const void* mask, void* y, size_t smem_bytes, cudaStream_t s) {
  if (a.B * a.H * a.Sq * a.Dv == 0) return cudaSuccess;
  switch (dtype) {
    case TSR_DTYPE_F32: return AttnT<float>(a, q, k, v, mask, y, smem_bytes, s);
    case TSR_DTYPE_F16: return AttnT<TsrHalf>(a, q, k, v, mask, y, smem_bytes, s);
    case TSR_DTYPE_BF16: return AttnT<TsrBF16>(a, q, k, v, mask, y, smem_bytes, s);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace tessera::cuda
