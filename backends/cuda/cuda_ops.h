// CUDA backend kernels: the interface every op implements and the registry
// mapping (domain, op) to a factory. Modelled on backends/cpu/kernel.h.
//
// A kernel is created once per node at compile time from NodeArgs (static
// shapes; constant inputs' host data in TensorArg::const_data) and then run
// many times: Run enqueues work on ctx.stream and must not synchronize, must
// not allocate (CUDA-graph capture records exactly what Run enqueues) and
// must be reentrant (execute may run concurrently on several streams). Data
// pointers in Run are device memory (constants too: the executable uploads
// them at compile time), row-major and contiguous; nullptr where an optional
// input/output is omitted.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/common/plugin_util.h"
#include "backends/common/segment_values.h"
#include "backends/cuda/cuda_host.h"
#include "tessera/backend.h"

namespace tessera::cuda {

// const_data: host copy of a constant (valid for the kernel's lifetime).
using TensorArg = plugin::TensorArg;

// What a factory knows about the device it compiles for.
struct DeviceInfo {
  int ordinal = 0;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  uint64_t smem_optin = 48 * 1024;  // max dynamic shared memory per block
};

// node, inputs, outputs, attrs(), has_input(), has_output(): plugin::NodeArgsBase.
struct NodeArgs : plugin::NodeArgsBase {
  CudaOptions options;
  DeviceInfo device;
  cublasLtHandle_t lt = nullptr;   // for factories that query heuristics
  cudnnHandle_t dnn = nullptr;     // idem (compile-time use only, serialized by the host)

  std::string Describe() const { return std::string("node '") + node->name + "' (" + node->op_type + ")"; }
};

// Per-execute context.
struct LaunchCtx {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  cudnnHandle_t dnn = nullptr;  // already bound to `stream`
  void* workspace = nullptr;    // at least the max workspace_bytes() of the executable's kernels
  uint64_t workspace_bytes = 0;
};

class GpuKernel {
 public:
  virtual ~GpuKernel() = default;
  virtual Err Run(const LaunchCtx& ctx, const void* const* in, void* const* out) const = 0;
  // Device scratch Run needs (cuBLASLt / cuDNN workspaces); part of the executable's scratch.
  virtual uint64_t workspace_bytes() const { return 0; }
};

using KernelFactory = Err (*)(const NodeArgs& args, std::unique_ptr<GpuKernel>* out);

// key: "Op" for ai.onnx, "tessera.Op" for Tessera's ops. nullptr when absent.
KernelFactory FindKernelFactory(const std::string& key);

// Registration groups (cuda_ops.cpp and cuda_blas_dnn.cpp).
struct KernelTableEntry {
  const char* key;
  KernelFactory create;
};
void AppendElementwiseKernels(std::vector<KernelTableEntry>& t);  // cuda_ops.cpp (everything but below)
void AppendLibraryKernels(std::vector<KernelTableEntry>& t);      // cuda_blas_dnn.cpp (GEMM, conv, pools)

// "cuda error <name>: <string>" for messages.
std::string CudaErrorText(cudaError_t e);
// Err from a launch status, naming the node.
Err LaunchErr(cudaError_t e, const NodeArgs& a, const char* what);
Err LaunchErr(cudaError_t e, const std::string& who, const char* what);

// Activation of the fused ops' `activation` attribute as an elementwise
// opcode (gpu::EwOp) with its parameters; kEwCopy for "". Error for an
// unknown name.
Err ParseActivation(const NodeArgs& a, int32_t* op, float* p1, float* p2);
// Enqueues y = act(x) (+ residual before the activation when res != nullptr,
// same shape) in place-safe form; dtype f32/f16/bf16.
cudaError_t LaunchActivation(int32_t dtype, int32_t op, float p1, float p2, const void* x, const void* res, void* y,
                             int64_t n, cudaStream_t s);
// Enqueues y = x + bias broadcast over the last dim (cols), then optional residual, then act.
cudaError_t LaunchBiasActivation(int32_t dtype, int32_t op, float p1, float p2, const void* x, const void* bias,
                                 int64_t rows, int64_t cols, bool bias_per_row, const void* res, void* y,
                                 cudaStream_t s);

}  // namespace tessera::cuda
