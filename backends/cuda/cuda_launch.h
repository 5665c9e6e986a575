// Host-callable launchers of the shared GPU kernels (instantiated in
// cuda_kernels.cu / cuda_attention.cu). Included by g++-compiled plugin code:
// only the CUDA runtime API header, no device code. Every launcher enqueues
// on `stream` and returns the launch status (cudaErrorInvalidValue for a
// dtype/element size it has no instantiation for; callers validate first).
// dtype arguments are tsr_dtype codes; pointers are device memory.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backends/common/gpu_kernels/geometry.h"

namespace tessera::cuda {

// Float dtypes the kernels are instantiated for: f32, f16, bf16.
cudaError_t LaunchEwProgram(int32_t dtype, const gpu::EwProgram& p, const void* const* inputs, void* out, int64_t n,
                            cudaStream_t s);
// Comparisons / logic -> bool. dtype: f32 f16 bf16 i32 i64 bool.
cudaError_t LaunchCompare(int32_t dtype, int32_t op, const gpu::BcastGeom& g, const void* a, const void* b, void* out,
                          int64_t n, cudaStream_t s);
// Integer Add/Sub/Mul/Div/Max/Min (i32, i64); unary Neg/Abs with b == a.
cudaError_t LaunchIntBinary(int32_t dtype, int32_t op, const gpu::BcastGeom& g, const void* a, const void* b,
                            void* out, int64_t n, cudaStream_t s);
cudaError_t LaunchNot(const void* a, void* out, int64_t n, cudaStream_t s);
cudaError_t LaunchWhere(size_t esize, const gpu::BcastGeom& g, const void* c, const void* x, const void* y, void* out,
                        int64_t n, cudaStream_t s);
// Cast between f32 f16 bf16 i32 i64 bool u8 i8 f64.
cudaError_t LaunchCast(int32_t src_dtype, int32_t dst_dtype, const void* in, void* out, int64_t n, cudaStream_t s);
cudaError_t LaunchStridedCopy(size_t esize, const gpu::CopyGeom& g, const void* src, void* dst, int64_t n,
                              cudaStream_t s);
// idx_dtype: i32 or i64. Out-of-range indices write zeros (see cuda_ops.cpp).
cudaError_t LaunchGather(size_t esize, int32_t idx_dtype, const void* data, const void* idx, void* out, int64_t outer,
                         int64_t axis_dim, int64_t num_idx, int64_t inner, cudaStream_t s);
cudaError_t LaunchGatherElements(size_t esize, int32_t idx_dtype, const void* data, const void* idx, void* out,
                                 int32_t rank, int32_t axis, const gpu::BcastGeom& g, int64_t n, cudaStream_t s);
cudaError_t LaunchTrilu(size_t esize, const void* in, void* out, int64_t rows, int64_t cols, int64_t k, bool upper,
                        int64_t n, cudaStream_t s);
cudaError_t LaunchChannelAffine(int32_t dtype, const void* x, const float* a, const float* b, void* y, int64_t C,
                                int64_t inner, int64_t n, cudaStream_t s);
// Fills n elements of size esize (1, 2, 4, 8) with *value (host memory).
cudaError_t LaunchFill(size_t esize, void* out, const void* value, int64_t n, cudaStream_t s);
cudaError_t LaunchReduce(int32_t dtype, int32_t op, const void* in, void* out, int64_t outer, int64_t R,
                         int64_t inner, cudaStream_t s);
cudaError_t LaunchSoftmax(int32_t dtype, const void* in, void* out, int64_t outer, int64_t C, int64_t inner,
                          bool log_softmax, cudaStream_t s);
cudaError_t LaunchLayerNorm(int32_t dtype, const void* x, const void* scale, const void* bias, void* y, float* mean,
                            float* inv_std, int64_t rows, int64_t C, float eps, cudaStream_t s);
// Fallback GEMM (see gpu::GemmArgs); Y is contiguous [batch, M, N].
cudaError_t LaunchGemmNaive(int32_t dtype, const gpu::GemmArgs& g, const void* A, const void* B, const void* C, void* Y,
                            cudaStream_t s);
cudaError_t LaunchPool(int32_t dtype, const gpu::PoolArgs& a, const void* x, void* y, cudaStream_t s);
// Raises the kernel's dynamic shared-memory limit to smem_bytes (call at
// compile time, outside any stream capture).
cudaError_t PrepareFlashAttention(int32_t dtype, size_t smem_bytes);
// dtype: f32, f16, bf16. smem_bytes from AttentionTiling (cuda_host.h).
cudaError_t LaunchFlashAttention(int32_t dtype, const gpu::AttnArgs& a, const void* q, const void* k, const void* v,
                                 const void* mask, void* y, size_t smem_bytes, cudaStream_t s);

}  // namespace tessera::cuda
