// Schemas of losses (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss),
// normalizations (RMS, Lp, MeanVariance, Group, Instance, LRN) and the
// reduction-like Hardmax, CumSum and TopK.
#include <algorithm>
#include <string>
#include <vector>

#include "graph/op_schema.h"

namespace tessera {
namespace {

Status CheckFloatIn(const InferenceContext& ctx, size_t i, const char* what) {
  DType t = ctx.input(i).dtype;
  if (t == DType::kUndefined || IsFloatDType(t)) return Status::Ok();
  return ctx.Error(what, " has dtype ", DTypeName(t), ", expected a floating-point type");
}

Status CheckNumericIn(const InferenceContext& ctx, size_t i, const char* what) {
  DType t = ctx.input(i).dtype;
  if (t == DType::kUndefined || IsFloatDType(t) || IsIntegerDType(t)) return Status::Ok();
  return ctx.Error(what, " has dtype ", DTypeName(t), ", expected a numeric type");
}

Status CheckAxisAttr(const InferenceContext& ctx, int64_t def) {
  const Shape& x = ctx.input(0).shape;
  if (!x.has_rank()) return Status::Ok();
  int64_t axis = ctx.node->GetInt("axis", def);
  int64_t rank = std::max<int64_t>(x.rank(), 1);
  if (axis < -rank || axis >= rank) return ctx.Error("axis ", axis, " is out of range for rank ", x.rank());
  return Status::Ok();
}

// Output 0 has the type of input 0 (float types only).
Status InferSameFloat(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloatIn(ctx, 0, "input 0"));
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

Status InferHardmax(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloatIn(ctx, 0, "input"));
  TSR_RETURN_IF_ERROR(CheckAxisAttr(ctx, ctx.opset >= 13 ? -1 : 1));
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

Status InferCumSum(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckNumericIn(ctx, 0, "x"));
  DType at = ctx.input(1).dtype;
  if (at != DType::kUndefined && at != DType::kI32 && at != DType::kI64)
    return ctx.Error("axis has dtype ", DTypeName(at), ", expected i32 or i64");
  const Shape& as = ctx.input(1).shape;
  if (as.has_rank() && as.rank() > 1) return ctx.Error("axis must be a scalar or 1-element tensor, got ", as.ToString());
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

// TopK: k is an attribute before opset 10, input 1 from then on.
Status InferTopK(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckNumericIn(ctx, 0, "X"));
  if (ctx.outputs.size() != 2) return ctx.Error("has 2 outputs (Values, Indices), got ", ctx.outputs.size());
  int64_t k = -1;
  if (ctx.opset < 10) {
    if (ctx.num_inputs() > 1) return ctx.Error("takes k as an attribute before opset 10, not as an input");
    if (!ctx.node->has_attr("k")) return ctx.Error("attribute k is required before opset 10");
    k = ctx.node->GetInt("k", -1);
  } else {
    if (ctx.num_inputs() < 2) return ctx.Error("takes K as input 1 since opset 10");
    DType kt = ctx.input(1).dtype;
    if (kt != DType::kUndefined && kt != DType::kI64) return ctx.Error("K has dtype ", DTypeName(kt), ", expected i64");
    if (const Tensor* t = ctx.constant(1)) {
      auto v = t->ToInt64Vector();
      if (!v.ok()) return ctx.Error("K: ", v.status().message());
      if (v->size() != 1) return ctx.Error("K must have exactly one element, got ", v->size());
      k = (*v)[0];
    }
  }
  const Shape& x = ctx.input(0).shape;
  if (!x.has_rank()) {
    ctx.outputs[0] = TensorType{ctx.input(0).dtype, Shape::UnknownRank()};
    ctx.outputs[1] = TensorType{DType::kI64, Shape::UnknownRank()};
    return Status::Ok();
  }
  if (x.rank() == 0) return ctx.Error("X must have rank >= 1");
  auto axis = NormalizeAxis(ctx.node->GetInt("axis", -1), x.rank());
  if (!axis.ok()) return ctx.Error(axis.status().message());
  std::vector<Dim> d = x.dims();
  Dim& ad = d[static_cast<size_t>(*axis)];
  if (k < 0 && ctx.constant(1) != nullptr) return ctx.Error("K ", k, " must be >= 0");
  if (k >= 0) {
    if (ad.is_known() && k > ad.value) return ctx.Error("K ", k, " exceeds the axis size ", ad.value);
    ad = Dim::Known(k);
  } else {
    ad = Dim::Unknown();
  }
  ctx.outputs[0] = TensorType{ctx.input(0).dtype, Shape(d)};
  ctx.outputs[1] = TensorType{DType::kI64, Shape(d)};
  return Status::Ok();
}

// NLL / SCE: input [N, C, d1..dk], target [N, d1..dk], optional weight [C].
// Loss is shaped like target for reduction "none", a scalar otherwise.
Status InferLoss(InferenceContext& ctx, bool sce) {
  TSR_RETURN_IF_ERROR(CheckFloatIn(ctx, 0, sce ? "scores" : "input"));
  DType tt = ctx.input(1).dtype;
  if (tt != DType::kUndefined && tt != DType::kI32 && tt != DType::kI64)
    return ctx.Error(sce ? "labels" : "target", " has dtype ", DTypeName(tt), ", expected i32 or i64");
  if (ctx.has_input(2)) TSR_RETURN_IF_ERROR(CheckFloatIn(ctx, 2, "weights"));
  std::string red = ctx.node->GetString("reduction", "mean");
  if (red != "none" && red != "sum" && red != "mean")
    return ctx.Error("reduction '", red, "' is not one of none, sum, mean");
  const Shape& x = ctx.input(0).shape;
  const Shape& t = ctx.input(1).shape;
  if (x.has_rank() && x.rank() < 2) return ctx.Error("input must have rank >= 2 ([N, C, ...]), got ", x.ToString());
  if (x.has_rank() && t.has_rank()) {
    if (t.rank() != x.rank() - 1)
      return ctx.Error("target ", t.ToString(), " must have rank ", x.rank() - 1, " for input ", x.ToString());
    for (int i = 0; i < t.rank(); ++i) {
      const Dim& a = x.dim(i == 0 ? 0 : i + 1);
      const Dim& b = t.dim(i);
      if (a.is_known() && b.is_known() && a.value != b.value)
        return ctx.Error("target ", t.ToString(), " does not match input ", x.ToString());
    }
  }
  if (ctx.has_input(2) && ctx.input(2).shape.has_rank() && ctx.input(2).shape.rank() != 1)
    return ctx.Error("weights must have rank 1, got ", ctx.input(2).shape.ToString());
  DType dt = ctx.input(0).dtype;
  if (red == "none") ctx.outputs[0] = TensorType{dt, t.has_rank() ? t : Shape::UnknownRank()};
  else ctx.outputs[0] = TensorType{dt, Shape()};
  if (ctx.outputs.size() > 1) ctx.outputs[1] = ctx.input(0);
  return Status::Ok();
}

// X normalized; parameters (scale/bias) checked only for dtype here.
Status InferNormWithParams(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloatIn(ctx, 0, "X"));
  for (size_t i = 1; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i)) TSR_RETURN_IF_ERROR(CheckFloatIn(ctx, i, i == 1 ? "scale" : "bias"));
  const Shape& x = ctx.input(0).shape;
  if (ctx.node->op_type() == "GroupNormalization" || ctx.node->op_type() == "InstanceNormalization") {
    if (x.has_rank() && x.rank() < 2) return ctx.Error("X must have rank >= 2 ([N, C, ...]), got ", x.ToString());
  }
  if (ctx.node->op_type() == "GroupNormalization") {
    int64_t g = ctx.node->GetInt("num_groups", 0);
    if (!ctx.node->has_attr("num_groups") || g <= 0) return ctx.Error("num_groups must be set and > 0");
    if (x.has_rank() && x.dim(1).is_known() && x.dim(1).value % g != 0)
      return ctx.Error("channel count ", x.dim(1).value, " is not divisible by num_groups ", g);
  }
  if (ctx.node->op_type() == "RMSNormalization") {
    if (x.has_rank() && x.rank() > 0) {
      auto a = NormalizeAxis(ctx.node->GetInt("axis", -1), x.rank());
      if (!a.ok()) return ctx.Error(a.status().message());
    }
  }
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

Status InferLpNorm(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloatIn(ctx, 0, "input"));
  int64_t p = ctx.node->GetInt("p", 2);
  if (p != 1 && p != 2) return ctx.Error("p ", p, " must be 1 or 2");
  TSR_RETURN_IF_ERROR(CheckAxisAttr(ctx, -1));
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

Status InferLrn(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloatIn(ctx, 0, "X"));
  if (!ctx.node->has_attr("size") || ctx.node->GetInt("size", 0) <= 0) return ctx.Error("size must be set and > 0");
  const Shape& x = ctx.input(0).shape;
  if (x.has_rank() && x.rank() < 2) return ctx.Error("X must have rank >= 2 ([N, C, ...]), got ", x.ToString());
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

}  // namespace

void RegisterLossNormOps(OpRegistry& r) {
  r.Add("Hardmax", 1, 1, 1, 1, InferHardmax);
  r.Add("CumSum", 2, 2, 1, 1, InferCumSum);
  r.Add("TopK", 1, 2, 2, 2, InferTopK);
  r.Add("NegativeLogLikelihoodLoss", 2, 3, 1, 1, [](InferenceContext& c) { return InferLoss(c, false); });
  r.Add("SoftmaxCrossEntropyLoss", 2, 3, 1, 2, [](InferenceContext& c) { return InferLoss(c, true); });
  r.Add("RMSNormalization", 2, 2, 1, 1, InferNormWithParams);
  r.Add("GroupNormalization", 3, 3, 1, 1, InferNormWithParams);
  r.Add("InstanceNormalization", 3, 3, 1, 1, InferNormWithParams);
  r.Add("MeanVarianceNormalization", 1, 1, 1, 1, InferSameFloat);
  r.Add("LpNormalization", 1, 1, 1, 1, InferLpNorm);
  r.Add("LRN", 1, 1, 1, 1, InferLrn);
}

}  // namespace tessera
