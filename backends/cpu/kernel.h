// CPU backend kernels: the interface every kernel implements and the registry
// that maps (domain, op) to a factory.
//
// A kernel is created at segment compile time from a node view with static
// shapes (and constant inputs available as host data), and then run many
// times. Run() must be reentrant: the session may execute one executable from
// several threads at once, so a kernel keeps no mutable state across calls
// (per-call scratch is allocated inside Run or is thread_local).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/common/plugin_util.h"
#include "backends/common/segment_values.h"
#include "tessera/backend.h"

namespace tessera::cpu {

using plugin::Err;
using plugin::MakeErr;

// One input or output of a node, as the kernel factory sees it
// (const_data is non-null for constants, valid for the kernel's lifetime).
using TensorArg = plugin::TensorArg;

// node, inputs, outputs, attrs(), has_input(), has_output(): plugin::NodeArgsBase.
struct NodeArgs : plugin::NodeArgsBase {
  int threads = 0;                        // 0 = backend default
  std::string precision = "f32";          // "f32" | "bf16" (from compile options)

  // "node 'name' (Op)" for error messages.
  std::string Describe() const { return std::string("node '") + node->name + "' (" + node->op_type + ")"; }
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // in[i] / out[i] are the data pointers of the node's inputs/outputs
  // (nullptr where omitted). Errors name the node (e.g. index out of range).
  virtual Err Run(const void* const* in, void* const* out) const = 0;
};

// Creates a kernel for a node, or returns an error saying why it cannot.
using KernelFactory = Err (*)(const NodeArgs& args, std::unique_ptr<Kernel>* out);
// Optional pre-check used by `claim` (shapes may be symbolic there: dims -1).
// Returns "" when the node is supported, else the reason.
using ClaimCheck = std::string (*)(const tsr_node_view& node, const tsr_graph_view& graph);

struct KernelEntry {
  const char* domain;  // "" for ai.onnx
  const char* op;
  KernelFactory create;
  ClaimCheck claim;    // may be nullptr: supported when the op is registered
};

class KernelRegistry {
 public:
  static const KernelRegistry& Get();
  void Add(KernelEntry e) { entries_.push_back(e); }
  const KernelEntry* Find(const char* domain, const char* op) const;
  const std::vector<KernelEntry>& entries() const { return entries_; }

 private:
  std::vector<KernelEntry> entries_;
};

// One registration function per kernel file group. Find() returns the first
// registration of an op; the groups below the first seven are registered
// first, so a newer, wider kernel replaces an older one of the same op.
void RegisterElementwiseKernels(KernelRegistry& r);   // kernels_elementwise.cpp
void RegisterReductionKernels(KernelRegistry& r);     // kernels_reduction.cpp (+softmax, norms)
void RegisterTensorKernels(KernelRegistry& r);        // kernels_tensor.cpp (shape/data movement)
void RegisterDnnlKernels(KernelRegistry& r);          // kernels_dnnl.cpp (Conv, MatMul, Gemm, pools)
void RegisterPoolConvLoopKernels(KernelRegistry& r);  // kernels_pool_conv_loops.cpp (LpPool, ConvTranspose, MaxUnpool, DeformConv)
void RegisterLayoutKernels(KernelRegistry& r);  // kernels_layout.cpp (tessera.LayoutConvert)
void RegisterFusedDnnlKernels(KernelRegistry& r);     // kernels_fused_dnnl.cpp (tessera.FusedConv/FusedGemm/FusedMatMul)
void RegisterAttentionKernels(KernelRegistry& r);     // kernels_attention.cpp (tessera.FusedAttention)
void RegisterFusedElementwiseKernels(KernelRegistry& r);  // kernels_fused_elementwise.cpp (tessera.FusedElementwise)
void RegisterMathKernels(KernelRegistry& r);  // kernels_math.cpp (elementwise math over every ONNX dtype, bitwise, trig, activations)
void RegisterLossNormKernels(KernelRegistry& r);  // kernels_loss_norm.cpp (losses, normalizations, Hardmax/CumSum/TopK-style reductions)
void RegisterIndexingKernels(KernelRegistry& r);  // kernels_indexing.cpp (scatter/gather/one-hot/space-depth/data-dependent indexing ops)
void RegisterResizeKernels(KernelRegistry& r);  // kernels_resize.cpp (Resize/Upsample/GridSample/AffineGrid)
void RegisterQuantKernels(KernelRegistry& r);  // kernels_quant.cpp (Cast/CastLike over all dtypes, (de)quantization, integer matmul/conv)
void RegisterOnnxAttentionKernels(KernelRegistry& r);  // kernels_onnx_attention.cpp (ONNX Attention and RotaryEmbedding)
void RegisterRnnKernels(KernelRegistry& r);  // kernels_rnn.cpp (RNN/GRU/LSTM)
void RegisterSignalKernels(KernelRegistry& r);  // kernels_signal.cpp (DFT/STFT, window functions, MelWeightMatrix)
void RegisterTrainingKernels(KernelRegistry& r);  // kernels_training.cpp (losses, optimizers, gradient ops)

}  // namespace tessera::cpu
