// Schemas of the fused ops fuse_bias_activation creates (tessera domain):
//   FusedConv(X, W [, B] [, Z])       = act(Conv(X, W, B) + Z)
//   FusedMatMul(A, B [, bias] [, Z])  = act(MatMul(A, B) + bias + Z), bias 1-D over the last dim
//   FusedGemm(A, B [, C])             = act(Gemm(A, B, C))
// They carry the base op's attributes plus `activation` (string, "" = none),
// `activation_alpha` / `activation_beta` (floats) and `has_residual` (int:
// input 3 is Z, of the output's shape). Output types are the base op's; the
// base schema's inference runs on the fused node (it reads only the base op's
// inputs and attributes).
#include <string>

#include "graph/op_schema.h"

namespace tessera {
namespace {

bool KnownActivation(const std::string& a) {
  for (const char* k : {"", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Gelu", "GeluTanh", "Silu", "Swish",
                        "HardSwish"})
    if (a == k) return true;
  return false;
}

Status CheckFusedAttrs(const InferenceContext& ctx, bool allow_residual, size_t z_index) {
  const Node& n = *ctx.node;
  if (const Attribute* a = n.attr("activation"); a && a->type != AttrType::kString)
    return ctx.Error("attribute activation must be a string");
  std::string act = n.GetString("activation", "");
  if (!KnownActivation(act))
    return ctx.Error("unknown activation \"", act,
                     "\" (expected \"\", Relu, LeakyRelu, Clip, Sigmoid, Tanh, Gelu, GeluTanh, Silu, Swish, HardSwish)");
  bool residual = n.GetInt("has_residual", 0) != 0;
  if (residual && !allow_residual) return ctx.Error("has_residual is not supported by this op");
  if (residual != ctx.has_input(z_index))
    return ctx.Error(residual ? "has_residual=1 but the residual input is missing"
                              : "a residual input is given but has_residual=0");
  return Status::Ok();
}

// Runs the base op's inference on this node.
Status InferAsBase(InferenceContext& ctx, const char* base) {
  const OpSchema* s = OpRegistry::Global().Find("", base);
  if (!s || !s->infer) return ctx.Error("no schema for the base op ", base);
  // The base op's version-dependent rules follow the graph's ai.onnx opset.
  const int64_t own = ctx.opset;
  ctx.opset = ctx.node->owner() ? ctx.node->owner()->OpsetFor("") : 17;
  Status st = s->infer(ctx);
  ctx.opset = own;
  return st;
}

// Z must have the output's dtype and (where both are known) its dims.
Status CheckResidual(const InferenceContext& ctx, size_t z_index) {
  if (!ctx.has_input(z_index)) return Status::Ok();
  const TensorType& z = ctx.input(z_index);
  const TensorType& y = ctx.outputs[0];
  if (z.dtype != DType::kUndefined && y.dtype != DType::kUndefined && z.dtype != y.dtype)
    return ctx.Error("residual Z has dtype ", DTypeName(z.dtype), ", the output has ", DTypeName(y.dtype));
  if (!z.shape.has_rank() || !y.shape.has_rank()) return Status::Ok();
  if (z.shape.rank() != y.shape.rank())
    return ctx.Error("residual Z has shape ", z.shape.ToString(), ", expected the output's shape ", y.shape.ToString());
  for (int i = 0; i < z.shape.rank(); ++i) {
    const Dim& zd = z.shape.dim(i);
    const Dim& yd = y.shape.dim(i);
    if (zd.is_known() && yd.is_known() && zd.value != yd.value)
      return ctx.Error("residual Z has shape ", z.shape.ToString(), ", expected the output's shape ",
                       y.shape.ToString());
  }
  return Status::Ok();
}

Status InferFusedConv(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFusedAttrs(ctx, true, 3));
  TSR_RETURN_IF_ERROR(InferAsBase(ctx, "Conv"));
  return CheckResidual(ctx, 3);
}

Status InferFusedMatMul(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFusedAttrs(ctx, true, 3));
  TSR_RETURN_IF_ERROR(InferAsBase(ctx, "MatMul"));
  if (ctx.has_input(2)) {
    const TensorType& b = ctx.input(2);
    const TensorType& y = ctx.outputs[0];
    if (b.dtype != DType::kUndefined && y.dtype != DType::kUndefined && b.dtype != y.dtype)
      return ctx.Error("bias has dtype ", DTypeName(b.dtype), ", the output has ", DTypeName(y.dtype));
    if (b.shape.has_rank() && b.shape.rank() != 1)
      return ctx.Error("bias must have rank 1, got shape ", b.shape.ToString());
    if (b.shape.has_rank() && y.shape.has_rank() && y.shape.rank() >= 1) {
      const Dim& bd = b.shape.dim(0);
      const Dim& yd = y.shape.dim(y.shape.rank() - 1);
      if (bd.is_known() && yd.is_known() && bd.value != yd.value)
        return ctx.Error("bias has ", bd.value, " elements, the output's last dim is ", yd.value);
    }
  }
  return CheckResidual(ctx, 3);
}

Status InferFusedGemm(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFusedAttrs(ctx, false, 3));
  return InferAsBase(ctx, "Gemm");
}

void Reg(OpRegistry& r, const char* name, int min_in, int max_in, InferFn fn) {
  OpSchema s;
  s.domain = "tessera";
  s.name = name;
  s.min_inputs = min_in;
  s.max_inputs = max_in;
  s.min_outputs = 1;
  s.max_outputs = 1;
  s.infer = std::move(fn);
  r.Register(std::move(s));
}

}  // namespace

void RegisterFusedConvGemmOps(OpRegistry& r) {
  Reg(r, "FusedConv", 2, 4, InferFusedConv);
  Reg(r, "FusedMatMul", 2, 4, InferFusedMatMul);
  Reg(r, "FusedGemm", 2, 3, InferFusedGemm);
}

}  // namespace tessera
