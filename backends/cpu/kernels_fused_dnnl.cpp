// oneDNN kernels of the fused ops that fuse_bias_activation creates:
//   tessera.FusedConv(X, W [, B] [, Z])      Y = act(conv(X, W) + B + Z)
//   tessera.FusedMatMul(A, B [, bias] [, Z]) Y = act(A @ B + bias + Z)   (bias 1-D over Y's last dim)
//   tessera.FusedGemm(A, B [, C])            Y = act(alpha * A' B' + beta * C)
// Attributes: those of Conv / MatMul / Gemm, plus
//   activation (string): "" | Relu | LeakyRelu | Clip | Sigmoid | Tanh | Gelu | GeluTanh | Silu | Swish | HardSwish
//   activation_alpha, activation_beta (float): LeakyRelu slope (alpha); Clip min (alpha) and max (beta);
//     Swish: x * sigmoid(alpha * x)
//   has_residual (int, FusedConv/FusedMatMul): input 3 (Z, the output's shape) is added before the activation.
// The primitives are built by kernels_dnnl.cpp (same layout choices and weight
// prepacking as Conv/MatMul/Gemm); here only the post-op chain is assembled:
// [sum (residual)] then [eltwise (activation)], after the bias.
#include <limits>
#include <string>

#include "backends/cpu/dnnl_kernel.h"

namespace tessera::cpu {

namespace {

// Appends the eltwise post-op of the node's `activation` attribute (nothing
// for ""); unknown names are an error naming the node.
Err AppendActivation(const NodeArgs& a, dnnl::post_ops* po) {
  plugin::NodeAttrs at = a.attrs();
  const std::string act = at.String("activation", "");
  const float alpha = at.Float("activation_alpha", 0.f);
  const float beta = at.Float("activation_beta", 0.f);
  using alg = dnnl::algorithm;
  if (act.empty()) return Err::Ok();
  if (act == "Relu") {
    po->append_eltwise(1.f, alg::eltwise_relu, 0.f, 0.f);
  } else if (act == "LeakyRelu") {
    po->append_eltwise(1.f, alg::eltwise_relu, at.Has("activation_alpha") ? alpha : 0.01f, 0.f);
  } else if (act == "Clip") {
    float lo = at.Has("activation_alpha") ? alpha : std::numeric_limits<float>::lowest();
    float hi = at.Has("activation_beta") ? beta : std::numeric_limits<float>::max();
    if (!(lo <= hi))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Clip activation has min %g > max %g", a.Describe().c_str(),
                     static_cast<double>(lo), static_cast<double>(hi));
    po->append_eltwise(1.f, alg::eltwise_clip, lo, hi);
  } else if (act == "Sigmoid") {
    po->append_eltwise(1.f, alg::eltwise_logistic, 0.f, 0.f);
  } else if (act == "Tanh") {
    po->append_eltwise(1.f, alg::eltwise_tanh, 0.f, 0.f);
  } else if (act == "Gelu") {
    po->append_eltwise(1.f, alg::eltwise_gelu_erf, 0.f, 0.f);
  } else if (act == "GeluTanh") {
    po->append_eltwise(1.f, alg::eltwise_gelu_tanh, 0.f, 0.f);
  } else if (act == "Silu") {
    po->append_eltwise(1.f, alg::eltwise_swish, 1.f, 0.f);
  } else if (act == "Swish") {
    po->append_eltwise(1.f, alg::eltwise_swish, at.Has("activation_alpha") ? alpha : 1.f, 0.f);
  } else if (act == "HardSwish") {  // x * relu6(x + 3) / 6 == ONNX HardSwish
    po->append_eltwise(1.f, alg::eltwise_hardswish, 0.f, 0.f);
  } else {
    return MakeErr(TSR_ERR_UNSUPPORTED,
                   "%s: unknown activation '%s' (expected one of Relu, LeakyRelu, Clip, Sigmoid, Tanh, Gelu, GeluTanh, "
                   "Silu, Swish, HardSwish)",
                   a.Describe().c_str(), act.c_str());
  }
  return Err::Ok();
}

// Resolves has_residual against input `z_index`; returns the sum input (or -1).
Err ResidualInput(const NodeArgs& a, size_t z_index, int* sum_input) {
  const bool residual = a.attrs().Int("has_residual", 0) != 0;
  const bool present = a.has_input(z_index);
  if (residual && !present)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: has_residual=1 but the residual input %zu is missing",
                   a.Describe().c_str(), z_index);
  if (!residual && present)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is given but has_residual=0", a.Describe().c_str(),
                   z_index);
  *sum_input = residual ? static_cast<int>(z_index) : -1;
  return Err::Ok();
}

// Post-ops: [sum for the residual] [activation].
Err BuildPostOps(const NodeArgs& a, size_t z_index, dnnl::post_ops* po, int* sum_input) {
  Err e = ResidualInput(a, z_index, sum_input);
  if (!e.ok()) return e;
  try {
    if (*sum_input >= 0) po->append_sum(1.f);
    return AppendActivation(a, po);
  } catch (const dnnl::error& ex) {
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: oneDNN rejected the post-ops (%s)", a.Describe().c_str(), ex.what());
  }
}

Err CheckArity(const NodeArgs& a, size_t max_inputs) {
  if (a.inputs.size() > max_inputs)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %zu inputs given, at most %zu allowed", a.Describe().c_str(),
                   a.inputs.size(), max_inputs);
  return Err::Ok();
}

Err CreateFusedConv(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(a, 4);
  if (!e.ok()) return e;
  dnnl::post_ops po;
  int sum_input = -1;
  e = BuildPostOps(a, 3, &po, &sum_input);
  if (!e.ok()) return e;
  return CreateConvWithPostOps(a, po, sum_input, out);
}

Err CreateFusedMatMul(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(a, 4);
  if (!e.ok()) return e;
  dnnl::post_ops po;
  int sum_input = -1;
  e = BuildPostOps(a, 3, &po, &sum_input);
  if (!e.ok()) return e;
  return CreateMatMulWithPostOps(a, po, a.has_input(2) ? 2 : -1, sum_input, out);
}

Err CreateFusedGemm(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(a, 3);
  if (!e.ok()) return e;
  if (a.attrs().Int("has_residual", 0) != 0)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: FusedGemm has no residual input (has_residual must be 0)",
                   a.Describe().c_str());
  dnnl::post_ops po;
  try {
    e = AppendActivation(a, &po);
  } catch (const dnnl::error& ex) {
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: oneDNN rejected the post-ops (%s)", a.Describe().c_str(), ex.what());
  }
  if (!e.ok()) return e;
  return CreateGemmWithPostOps(a, po, out);
}

// Claim: every present input is f32 or bf16 (shapes may be symbolic here).
std::string ClaimFloatAll(const tsr_node_view& node, const tsr_graph_view& g) {
  return dnnlk::CheckF32OrBf16Inputs(node, g, node.num_inputs);
}

std::string ClaimFusedGemm(const tsr_node_view& node, const tsr_graph_view& g) {
  std::string r = ClaimFloatAll(node, g);
  return r.empty() ? dnnlk::CheckGemmBf16C(node, g) : r;
}

std::string ClaimFusedConv(const tsr_node_view& node, const tsr_graph_view& g) {
  std::string r = ClaimFloatAll(node, g);
  if (!r.empty()) return r;
  if (node.num_inputs == 0 || node.inputs[0] < 0 || static_cast<uint32_t>(node.inputs[0]) >= g.num_values) return "";
  int32_t rank = g.values[node.inputs[0]].rank;
  if (rank >= 0 && (rank < 3 || rank > 5))
    return "FusedConv supports 1-D, 2-D and 3-D spatial inputs (rank 3 to 5); got rank " + std::to_string(rank);
  return "";
}

}  // namespace

void RegisterFusedDnnlKernels(KernelRegistry& r) {
  r.Add({"tessera", "FusedConv", &CreateFusedConv, &ClaimFusedConv});
  r.Add({"tessera", "FusedMatMul", &CreateFusedMatMul, &ClaimFloatAll});
  r.Add({"tessera", "FusedGemm", &CreateFusedGemm, &ClaimFusedGemm});
}

}  // namespace tessera::cpu
