// Schemas of reductions (Reduce*) and ArgMax/ArgMin.
//
// Reduce* take `axes` as an attribute up to a version and as an optional
// second input from then on: ReduceSum from opset 13, the others from 18.
// From that version, noop_with_empty_axes=1 with no axes makes the op an
// identity; otherwise no axes means all axes.
#include <string>
#include <vector>

#include "graph/op_schema.h"

namespace tessera {
namespace {

bool IsNumeric(DType t) { return IsFloatDType(t) || IsIntegerDType(t); }

Status CheckInput(const InferenceContext& ctx, bool allow_bool) {
  DType t = ctx.input(0).dtype;
  if (t == DType::kUndefined || IsNumeric(t) || (allow_bool && t == DType::kBool)) return Status::Ok();
  return ctx.Error("input 0 has dtype ", DTypeName(t), ", expected a numeric type");
}

InferFn Reduce(int64_t axes_input_opset, bool allow_bool) {
  return [axes_input_opset, allow_bool](InferenceContext& ctx) -> Status {
    TSR_RETURN_IF_ERROR(CheckInput(ctx, allow_bool));
    const Node& n = *ctx.node;
    bool keepdims = n.GetInt("keepdims", 1) != 0;
    bool axes_as_input = ctx.opset >= axes_input_opset;
    bool noop = axes_as_input && n.GetInt("noop_with_empty_axes", 0) != 0;
    const TensorType& x = ctx.input(0);

    std::vector<int64_t> axes;
    bool axes_known = true;
    if (axes_as_input) {
      if (n.has_attr("axes"))
        return ctx.Error("takes axes as input 1 since opset ", axes_input_opset, ", not as an attribute");
      if (ctx.has_input(1)) {
        DType at = ctx.input(1).dtype;
        if (at != DType::kUndefined && at != DType::kI64)
          return ctx.Error("axes has dtype ", DTypeName(at), ", expected i64");
        if (const Tensor* t = ctx.constant(1)) {
          auto v = t->ToInt64Vector();
          if (!v.ok()) return ctx.Error("axes: ", v.status().message());
          axes = std::move(v).value();
        } else {
          axes_known = false;
        }
      }
    } else {
      if (ctx.num_inputs() > 1)
        return ctx.Error("takes axes as an attribute before opset ", axes_input_opset, ", not as an input");
      axes = n.GetInts("axes");
    }

    if (axes_known && axes.empty() && noop) {
      ctx.outputs[0] = x;
      return Status::Ok();
    }
    if (!x.shape.has_rank()) {
      ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
      return Status::Ok();
    }
    int rank = x.shape.rank();
    if (!axes_known) {
      // Which axes is unknown: keepdims keeps the rank; otherwise the rank
      // drops by the number of axes when that is known.
      const Shape& as = ctx.input(1).shape;
      if (keepdims) {
        ctx.outputs[0] = TensorType{x.dtype, Shape(std::vector<Dim>(static_cast<size_t>(rank), Dim::Unknown()))};
      } else if (as.has_rank() && as.rank() == 1 && as.dim(0).is_known() && as.dim(0).value > 0 &&
                 as.dim(0).value <= rank) {
        ctx.outputs[0] = TensorType{
            x.dtype, Shape(std::vector<Dim>(static_cast<size_t>(rank - as.dim(0).value), Dim::Unknown()))};
      } else {
        ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
      }
      return Status::Ok();
    }
    std::vector<bool> reduced(static_cast<size_t>(rank), axes.empty());
    for (int64_t a : axes) {
      auto na = NormalizeAxis(a, rank);
      if (!na.ok()) return ctx.Error("axes: ", na.status().message());
      if (reduced[static_cast<size_t>(*na)]) return ctx.Error("axes: axis ", a, " appears twice");
      reduced[static_cast<size_t>(*na)] = true;
    }
    std::vector<Dim> out;
    for (int i = 0; i < rank; ++i) {
      if (!reduced[static_cast<size_t>(i)]) out.push_back(x.shape.dim(i));
      else if (keepdims) out.push_back(Dim::Known(1));
    }
    ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(out))};
    return Status::Ok();
  };
}

// ArgMax/ArgMin: i64 indices along `axis` (default 0), keepdims default 1.
Status InferArg(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckInput(ctx, false));
  const Shape& x = ctx.input(0).shape;
  if (!x.has_rank()) {
    ctx.outputs[0] = TensorType{DType::kI64, Shape::UnknownRank()};
    return Status::Ok();
  }
  auto axis = NormalizeAxis(ctx.node->GetInt("axis", 0), x.rank());
  if (!axis.ok()) return ctx.Error(axis.status().message());
  std::vector<Dim> out = x.dims();
  if (ctx.node->GetInt("keepdims", 1) != 0) out[static_cast<size_t>(*axis)] = Dim::Known(1);
  else out.erase(out.begin() + *axis);
  ctx.outputs[0] = TensorType{DType::kI64, Shape(std::move(out))};
  return Status::Ok();
}

void Reg(OpRegistry& r, const char* name, int min_in, int max_in, InferFn fn) {
  OpSchema s;
  s.name = name;
  s.min_inputs = min_in;
  s.max_inputs = max_in;
  s.infer = std::move(fn);
  r.Register(std::move(s));
}

}  // namespace

void RegisterReductionOps(OpRegistry& r) {
  Reg(r, "ReduceSum", 1, 2, Reduce(13, false));
  for (const char* op : {"ReduceMean", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
                         "ReduceLogSumExp"})
    Reg(r, op, 1, 2, Reduce(18, false));
  Reg(r, "ReduceMax", 1, 2, Reduce(18, true));  // bool allowed from opset 20
  Reg(r, "ReduceMin", 1, 2, Reduce(18, true));
  Reg(r, "ArgMax", 1, 1, InferArg);
  Reg(r, "ArgMin", 1, 1, InferArg);
}

}  // namespace tessera
