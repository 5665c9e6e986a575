// Schemas of the tessera-domain training ops: losses, optimizer updates,
// gradient clipping, and the gradient ops that compiler/autodiff emits where no
// exact, cheap ONNX expression exists.
//
// Losses (scalar output for reduction "mean"/"sum"):
//   SoftmaxCrossEntropy(logits[N,C], labels int[N]) -> loss
//       attrs: reduction ("mean"), ignore_index (int, optional), label_smoothing (float, 0)
//       "none" gives the per-sample losses [N] (0 for ignored samples); "mean"
//       divides by the number of samples whose label != ignore_index (0 if none).
//       With smoothing eps the target is (1 - eps) * onehot + eps / C (PyTorch's definition).
//   SoftmaxCrossEntropyGrad(dloss, logits, labels) -> dlogits         (same attrs)
//   MSE(pred, target) -> loss           attrs: reduction ("mean"); pred and target have one shape;
//       "none" gives the elementwise squared errors (pred's shape)
//   MSEGrad(dloss, pred, target) -> dpred
// Optimizers. Each output k named *_out is the new value of a state input and
// has that input's type; kernels allow the output buffer to BE the input buffer
// (in-place update: element i is read before it is written), which is how a
// training session keeps params/moments as persistent state buffers:
//   SGDUpdate(param, grad, lr[], [momentum_buf]) -> param_out, [momentum_out]
//       attrs: momentum (0), dampening (0), nesterov (0), weight_decay (0)
//   AdamWUpdate(param, grad, m, v, lr[], step[]) -> param_out, m_out, v_out
//       attrs: beta1 (0.9), beta2 (0.999), epsilon (1e-8), weight_decay (0.01)
//       step: the 1-based step count (any numeric dtype) for bias correction.
//   GlobalNormClip(g_1..g_N) -> g_1'..g_N', total_norm[]      attrs: max_norm (required, > 0)
// Gradient ops (outputs have the type of the forward input they differentiate):
//   GeluGrad(dy, x) attrs approximate;  SoftmaxGrad(dy, y) attrs axis, log, coerce_2d
//   ReluGrad(dy, x_or_y) -> dx = dy where x_or_y > 0, else 0 (Relu's x or its output y)
//   LayerNormGrad(dy, x, scale) -> dx, [dscale], [dbias]   attrs axis, epsilon
//   BatchNormGrad(dy, x, scale, mean, var) -> dx, [dscale], [dbias]   attrs epsilon, training_mode
//   MaxPoolGrad(dy, x) / AveragePoolGrad(dy, x) -> dx      attrs of the forward pool
//   ConvGradInput(dy, w) -> dx   attrs of the Conv + input_shape (ints)
//   ConvGradWeight(dy, x) -> dw  attrs of the Conv + weight_shape (ints)
//   GatherGrad(dy, indices) -> ddata   attrs axis, data_shape (ints)
//   SliceGrad(dy, x, starts, ends, [axes], [steps]) -> dx   (x: for its shape; Slice's
//       parameter inputs, which must be constant by kernel creation, e.g. after folding)
#include <string>

#include "graph/op_schema.h"

namespace tessera {
namespace {

Status CheckFloat(const InferenceContext& ctx, size_t i, const char* what) {
  if (!ctx.has_input(i)) return ctx.Error("input ", i, " (", what, ") is required");
  DType t = ctx.input(i).dtype;
  if (t != DType::kUndefined && !IsFloatDType(t))
    return ctx.Error("input ", i, " (", what, ") has dtype ", DTypeName(t), ", expected a floating-point type");
  return Status::Ok();
}

Status CheckSameDType(const InferenceContext& ctx, size_t a, size_t b) {
  DType ta = ctx.input(a).dtype, tb = ctx.input(b).dtype;
  if (ta != DType::kUndefined && tb != DType::kUndefined && ta != tb)
    return ctx.Error("inputs ", a, " and ", b, " have dtypes ", DTypeName(ta), " and ", DTypeName(tb),
                     "; they must match");
  return Status::Ok();
}

// Known dims of two shapes that both have a rank must agree.
Status CheckSameShape(const InferenceContext& ctx, size_t a, size_t b) {
  const Shape& sa = ctx.input(a).shape;
  const Shape& sb = ctx.input(b).shape;
  if (!sa.has_rank() || !sb.has_rank()) return Status::Ok();
  bool bad = sa.rank() != sb.rank();
  for (int i = 0; !bad && i < sa.rank(); ++i)
    if (sa.dim(i).is_known() && sb.dim(i).is_known() && sa.dim(i).value != sb.dim(i).value) bad = true;
  if (bad)
    return ctx.Error("inputs ", a, " and ", b, " have shapes ", sa.ToString(), " and ", sb.ToString(),
                     "; they must match");
  return Status::Ok();
}

Status CheckReduction(const InferenceContext& ctx, std::string* out) {
  std::string r = ctx.node->GetString("reduction", "mean");
  if (r != "mean" && r != "sum" && r != "none")
    return ctx.Error("attribute reduction must be \"mean\", \"sum\" or \"none\", got \"", r, "\"");
  *out = r;
  return Status::Ok();
}

Status CheckLabels(const InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, ctx.num_inputs() - 2, "logits"));
  const size_t li = ctx.num_inputs() - 2, ti = ctx.num_inputs() - 1;
  DType lt = ctx.input(ti).dtype;
  if (lt != DType::kUndefined && lt != DType::kI32 && lt != DType::kI64)
    return ctx.Error("labels have dtype ", DTypeName(lt), ", expected i32 or i64");
  const Shape& ls = ctx.input(li).shape;
  const Shape& ts = ctx.input(ti).shape;
  if (ls.has_rank() && ls.rank() != 2)
    return ctx.Error("logits must be 2-D [N, C], got shape ", ls.ToString());
  if (ts.has_rank() && ts.rank() != 1) return ctx.Error("labels must be 1-D [N], got shape ", ts.ToString());
  if (ls.has_rank() && ts.has_rank() && ls.dim(0).is_known() && ts.dim(0).is_known() &&
      ls.dim(0).value != ts.dim(0).value)
    return ctx.Error("logits have ", ls.dim(0).value, " rows but labels have ", ts.dim(0).value, " entries");
  float ls_eps = ctx.node->GetFloat("label_smoothing", 0.f);
  if (!(ls_eps >= 0.f && ls_eps < 1.f)) return ctx.Error("label_smoothing must be in [0, 1), got ", ls_eps);
  return Status::Ok();
}

TensorType LossType(const InferenceContext& ctx, size_t pred, const std::string& reduction) {
  TensorType t;
  t.dtype = ctx.input(pred).dtype;
  if (reduction == "none") {
    const Shape& s = ctx.input(pred).shape;
    t.shape = s.has_rank() && s.rank() >= 1 ? Shape(std::vector<Dim>{s.dim(0)}) : Shape::UnknownRank();
  } else {
    t.shape = Shape();
  }
  return t;
}

Status InferSoftmaxCrossEntropy(InferenceContext& ctx) {
  std::string red;
  TSR_RETURN_IF_ERROR(CheckReduction(ctx, &red));
  TSR_RETURN_IF_ERROR(CheckLabels(ctx));
  ctx.outputs[0] = LossType(ctx, 0, red);
  return Status::Ok();
}

Status InferSoftmaxCrossEntropyGrad(InferenceContext& ctx) {
  std::string red;
  TSR_RETURN_IF_ERROR(CheckReduction(ctx, &red));
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0, "dloss"));
  TSR_RETURN_IF_ERROR(CheckLabels(ctx));
  ctx.outputs[0] = ctx.input(1);
  return Status::Ok();
}

Status InferMSE(InferenceContext& ctx) {
  std::string red;
  TSR_RETURN_IF_ERROR(CheckReduction(ctx, &red));
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0, "pred"));
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 1, "target"));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 1));
  TSR_RETURN_IF_ERROR(CheckSameShape(ctx, 0, 1));
  ctx.outputs[0] = red == "none" ? ctx.input(0) : LossType(ctx, 0, red);
  return Status::Ok();
}

Status InferMSEGrad(InferenceContext& ctx) {
  std::string red;
  TSR_RETURN_IF_ERROR(CheckReduction(ctx, &red));
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0, "dloss"));
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 1, "pred"));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 1, 2));
  TSR_RETURN_IF_ERROR(CheckSameShape(ctx, 1, 2));
  ctx.outputs[0] = ctx.input(1);
  return Status::Ok();
}

Status CheckScalarInput(const InferenceContext& ctx, size_t i, const char* what) {
  if (!ctx.has_input(i)) return ctx.Error("input ", i, " (", what, ") is required");
  const Shape& s = ctx.input(i).shape;
  if (s.has_rank()) {
    for (const Dim& d : s.dims())
      if (d.is_known() && d.value != 1)
        return ctx.Error("input ", i, " (", what, ") must hold one element, got shape ", s.ToString());
  }
  return Status::Ok();
}

Status InferSGDUpdate(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0, "param"));
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 1, "grad"));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 1));
  TSR_RETURN_IF_ERROR(CheckSameShape(ctx, 0, 1));
  TSR_RETURN_IF_ERROR(CheckScalarInput(ctx, 2, "lr"));
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 2, "lr"));
  const float momentum = ctx.node->GetFloat("momentum", 0.f);
  if (momentum < 0.f) return ctx.Error("momentum must be >= 0, got ", momentum);
  if (ctx.node->GetInt("nesterov", 0) != 0 && momentum == 0.f)
    return ctx.Error("nesterov=1 needs momentum > 0");
  const bool has_buf = ctx.has_input(3);
  if (momentum != 0.f && !has_buf) return ctx.Error("momentum > 0 needs input 3 (momentum_buf)");
  if (has_buf) {
    TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 3));
    TSR_RETURN_IF_ERROR(CheckSameShape(ctx, 0, 3));
  }
  if (ctx.outputs.size() > 1 && !has_buf) return ctx.Error("output 1 (momentum_out) needs input 3 (momentum_buf)");
  for (auto& o : ctx.outputs) o = ctx.input(0);
  return Status::Ok();
}

Status InferAdamWUpdate(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0, "param"));
  for (size_t i : {size_t{1}, size_t{2}, size_t{3}}) {
    TSR_RETURN_IF_ERROR(CheckFloat(ctx, i, i == 1 ? "grad" : i == 2 ? "m" : "v"));
    TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, i));
    TSR_RETURN_IF_ERROR(CheckSameShape(ctx, 0, i));
  }
  TSR_RETURN_IF_ERROR(CheckScalarInput(ctx, 4, "lr"));
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 4, "lr"));
  TSR_RETURN_IF_ERROR(CheckScalarInput(ctx, 5, "step"));
  const float b1 = ctx.node->GetFloat("beta1", 0.9f), b2 = ctx.node->GetFloat("beta2", 0.999f);
  if (!(b1 >= 0.f && b1 < 1.f) || !(b2 >= 0.f && b2 < 1.f))
    return ctx.Error("beta1 and beta2 must be in [0, 1), got ", b1, " and ", b2);
  if (!(ctx.node->GetFloat("epsilon", 1e-8f) > 0.f)) return ctx.Error("epsilon must be > 0");
  for (auto& o : ctx.outputs) o = ctx.input(0);
  return Status::Ok();
}

Status InferGlobalNormClip(InferenceContext& ctx) {
  const Attribute* a = ctx.node->attr("max_norm");
  if (!a || a->type != AttrType::kFloat) return ctx.Error("attribute max_norm (float) is required");
  if (!(a->f > 0.f)) return ctx.Error("max_norm must be > 0, got ", a->f);
  const size_t n = ctx.num_inputs();
  if (ctx.outputs.size() != n + 1)
    return ctx.Error("has ", n, " inputs and ", ctx.outputs.size(), " outputs; expected ", n + 1,
                     " outputs (one per gradient, then the total norm)");
  for (size_t i = 0; i < n; ++i) {
    TSR_RETURN_IF_ERROR(CheckFloat(ctx, i, "gradient"));
    TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, i));
    ctx.outputs[i] = ctx.input(i);
  }
  ctx.outputs[n] = TensorType{ctx.input(0).dtype, Shape()};
  return Status::Ok();
}

// dx has the type of input `like`; inputs 0 and `like` must be floats.
InferFn LikeInput(size_t like) {
  return [like](InferenceContext& ctx) -> Status {
    TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0, "dy"));
    TSR_RETURN_IF_ERROR(CheckFloat(ctx, like, "x"));
    for (auto& o : ctx.outputs) o = ctx.input(like);
    return Status::Ok();
  };
}

Status InferNormGrad(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0, "dy"));
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 1, "x"));
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 2, "scale"));
  TSR_RETURN_IF_ERROR(CheckSameShape(ctx, 0, 1));
  ctx.outputs[0] = ctx.input(1);
  for (size_t i = 1; i < ctx.outputs.size(); ++i) ctx.outputs[i] = ctx.input(2);
  return Status::Ok();
}

// Output of this dtype and the dims in attribute `attr`.
InferFn ShapeFromAttr(const char* attr, size_t dtype_input) {
  return [attr, dtype_input](InferenceContext& ctx) -> Status {
    const Attribute* a = ctx.node->attr(attr);
    if (!a || a->type != AttrType::kInts) return ctx.Error("attribute ", attr, " (ints) is required");
    for (int64_t d : a->ints)
      if (d < 0) return ctx.Error("attribute ", attr, " has a negative dim");
    TSR_RETURN_IF_ERROR(CheckFloat(ctx, dtype_input, "dy"));
    ctx.outputs[0] = TensorType{ctx.input(dtype_input).dtype, Shape::FromInts(a->ints)};
    return Status::Ok();
  };
}

void Add(OpRegistry& r, const char* name, int min_in, int max_in, int min_out, int max_out, InferFn f) {
  OpSchema s;
  s.domain = "tessera";
  s.name = name;
  s.min_inputs = min_in;
  s.max_inputs = max_in;
  s.min_outputs = min_out;
  s.max_outputs = max_out;
  s.infer = std::move(f);
  r.Register(std::move(s));
}

}  // namespace

void RegisterTrainingOps(OpRegistry& r) {
  Add(r, "SoftmaxCrossEntropy", 2, 2, 1, 1, InferSoftmaxCrossEntropy);
  Add(r, "SoftmaxCrossEntropyGrad", 3, 3, 1, 1, InferSoftmaxCrossEntropyGrad);
  Add(r, "MSE", 2, 2, 1, 1, InferMSE);
  Add(r, "MSEGrad", 3, 3, 1, 1, InferMSEGrad);
  Add(r, "SGDUpdate", 3, 4, 1, 2, InferSGDUpdate);
  Add(r, "AdamWUpdate", 6, 6, 3, 3, InferAdamWUpdate);
  Add(r, "GlobalNormClip", 1, 1 << 16, 2, (1 << 16) + 1, InferGlobalNormClip);
  Add(r, "GeluGrad", 2, 2, 1, 1, LikeInput(1));
  Add(r, "ReluGrad", 2, 2, 1, 1, LikeInput(1));
  Add(r, "SoftmaxGrad", 2, 2, 1, 1, LikeInput(1));
  Add(r, "LayerNormGrad", 3, 3, 1, 3, InferNormGrad);
  Add(r, "BatchNormGrad", 3, 5, 1, 3, InferNormGrad);
  Add(r, "MaxPoolGrad", 2, 2, 1, 1, LikeInput(1));
  Add(r, "AveragePoolGrad", 2, 2, 1, 1, LikeInput(1));
  Add(r, "ConvGradInput", 2, 2, 1, 1, ShapeFromAttr("input_shape", 0));
  Add(r, "ConvGradWeight", 2, 2, 1, 1, ShapeFromAttr("weight_shape", 0));
  Add(r, "GatherGrad", 2, 2, 1, 1, ShapeFromAttr("data_shape", 0));
  Add(r, "SliceGrad", 4, 6, 1, 1, LikeInput(1));
}

}  // namespace tessera
