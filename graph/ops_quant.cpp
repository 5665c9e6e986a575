// Op schemas for (de)quantization and integer matmul/conv: QuantizeLinear,
// DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, QLinearMatMul,
// ConvInteger, QLinearConv. (Cast/CastLike keep their schemas in
// ops_tensor.cpp; they accept every dtype IsKnownDType knows.)
#include "graph/op_schema.h"

namespace tessera {
namespace {

bool IsQuantType(DType t) {
  switch (t) {
    case DType::kU8: case DType::kI8: case DType::kU16: case DType::kI16: case DType::kU4: case DType::kI4:
    case DType::kF8E4M3FN: case DType::kF8E4M3FNUZ: case DType::kF8E5M2: case DType::kF8E5M2FNUZ:
    case DType::kF4E2M1:
      return true;
    default:
      return false;
  }
}

bool Is8BitInt(DType t) { return t == DType::kU8 || t == DType::kI8; }

// Runs the registered schema of `op` (a float op with the same attributes) on
// stand-in inputs of dtype `as` with the real shapes, and returns its output
// shape: the integer ops share MatMul's and Conv's shape rules.
Result<Shape> BorrowShape(InferenceContext& ctx, const char* op, const std::vector<size_t>& inputs, DType as) {
  const OpSchema* s = OpRegistry::Global().Find("", op);
  if (!s || !s->infer) return ctx.Error("no ", op, " schema to infer the shape with");
  std::vector<TensorType> types;
  types.reserve(inputs.size());
  for (size_t i : inputs) types.push_back(TensorType{as, ctx.input(i).shape});
  InferenceContext sub;
  sub.node = ctx.node;
  sub.opset = ctx.opset;
  for (const TensorType& t : types) sub.inputs.push_back(&t);
  sub.constants.assign(types.size(), nullptr);
  sub.outputs.resize(1);
  TSR_RETURN_IF_ERROR(s->infer(sub));
  return sub.outputs[0].shape;
}

Status RequireInput(const InferenceContext& ctx, size_t i, const char* what) {
  if (!ctx.has_input(i)) return ctx.Error("input ", i, " (", what, ") is required");
  return Status::Ok();
}

Status InferQuantizeLinear(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(RequireInput(ctx, 1, "y_scale"));
  DType out = DType::kU8;
  const int64_t attr = ctx.opset >= 21 ? ctx.node->GetInt("output_dtype", 0) : 0;
  if (attr != 0) {
    if (attr < 0 || attr > 1000 || !IsKnownDType(static_cast<int32_t>(attr)))
      return ctx.Error("attribute 'output_dtype' is ", attr, ", not a known dtype");
    out = static_cast<DType>(attr);
  }
  if (ctx.has_input(2) && ctx.input(2).dtype != DType::kUndefined) {
    const DType zp = ctx.input(2).dtype;
    if (attr != 0 && static_cast<DType>(attr) != zp)
      return ctx.Error("attribute 'output_dtype' (", DTypeName(static_cast<DType>(attr)),
                       ") differs from y_zero_point's dtype ", DTypeName(zp));
    out = zp;
  }
  if (!IsQuantType(out)) return ctx.Error("output dtype ", DTypeName(out), " is not a quantized type");
  ctx.outputs[0] = TensorType{out, ctx.input(0).shape};
  return Status::Ok();
}

Status InferDequantizeLinear(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(RequireInput(ctx, 1, "x_scale"));
  DType out = ctx.input(1).dtype;
  const int64_t attr = ctx.opset >= 23 ? ctx.node->GetInt("output_dtype", 0) : 0;
  if (attr != 0) {
    if (attr < 0 || attr > 1000 || !IsKnownDType(static_cast<int32_t>(attr)) ||
        !IsFloatDType(static_cast<DType>(attr)))
      return ctx.Error("attribute 'output_dtype' is ", attr, ", expected a float dtype");
    out = static_cast<DType>(attr);
  } else if (out == DType::kF8E8M0) {
    return ctx.Error("x_scale is f8e8m0, so attribute 'output_dtype' must name the float output type");
  }
  const DType x = ctx.input(0).dtype;
  if (x != DType::kUndefined && !IsQuantType(x) && x != DType::kI32)
    return ctx.Error("input x has dtype ", DTypeName(x), ", not a quantized type");
  ctx.outputs[0] = TensorType{out, ctx.input(0).shape};
  return Status::Ok();
}

Status InferDynamicQuantizeLinear(InferenceContext& ctx) {
  const DType x = ctx.input(0).dtype;
  if (x != DType::kUndefined && x != DType::kF32) return ctx.Error("input x has dtype ", DTypeName(x), ", expected f32");
  ctx.outputs.resize(3);
  ctx.outputs[0] = TensorType{DType::kU8, ctx.input(0).shape};
  ctx.outputs[1] = TensorType{DType::kF32, Shape()};
  ctx.outputs[2] = TensorType{DType::kU8, Shape()};
  return Status::Ok();
}

Status CheckInt8(const InferenceContext& ctx, size_t i, const char* what) {
  if (!ctx.has_input(i)) return Status::Ok();
  const DType t = ctx.input(i).dtype;
  if (t != DType::kUndefined && !Is8BitInt(t)) return ctx.Error(what, " has dtype ", DTypeName(t), ", expected u8 or i8");
  return Status::Ok();
}

Status InferMatMulInteger(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckInt8(ctx, 0, "A"));
  TSR_RETURN_IF_ERROR(CheckInt8(ctx, 1, "B"));
  TSR_ASSIGN_OR_RETURN(Shape s, BorrowShape(ctx, "MatMul", {0, 1}, DType::kF32));
  ctx.outputs[0] = TensorType{DType::kI32, s};
  return Status::Ok();
}

Status InferQLinearMatMul(InferenceContext& ctx) {
  for (size_t i : {1, 2, 4, 5, 6}) TSR_RETURN_IF_ERROR(RequireInput(ctx, i, "scale / zero point"));
  TSR_RETURN_IF_ERROR(CheckInt8(ctx, 0, "a"));
  TSR_RETURN_IF_ERROR(CheckInt8(ctx, 3, "b"));
  DType out = ctx.has_input(7) ? ctx.input(7).dtype : ctx.input(0).dtype;
  TSR_ASSIGN_OR_RETURN(Shape s, BorrowShape(ctx, "MatMul", {0, 3}, DType::kF32));
  ctx.outputs[0] = TensorType{out, s};
  return Status::Ok();
}

Status InferConvInteger(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckInt8(ctx, 0, "x"));
  TSR_RETURN_IF_ERROR(CheckInt8(ctx, 1, "w"));
  TSR_ASSIGN_OR_RETURN(Shape s, BorrowShape(ctx, "Conv", {0, 1}, DType::kF32));
  ctx.outputs[0] = TensorType{DType::kI32, s};
  return Status::Ok();
}

Status InferQLinearConv(InferenceContext& ctx) {
  for (size_t i : {1, 2, 4, 5, 6}) TSR_RETURN_IF_ERROR(RequireInput(ctx, i, "scale / zero point"));
  TSR_RETURN_IF_ERROR(CheckInt8(ctx, 0, "x"));
  TSR_RETURN_IF_ERROR(CheckInt8(ctx, 3, "w"));
  DType out = ctx.has_input(7) ? ctx.input(7).dtype : ctx.input(0).dtype;
  TSR_ASSIGN_OR_RETURN(Shape s, BorrowShape(ctx, "Conv", {0, 3}, DType::kF32));
  ctx.outputs[0] = TensorType{out, s};
  return Status::Ok();
}

}  // namespace

void RegisterQuantOps(OpRegistry& r) {
  r.Add("QuantizeLinear", 2, 3, 1, 1, InferQuantizeLinear);
  r.Add("DequantizeLinear", 2, 3, 1, 1, InferDequantizeLinear);
  r.Add("DynamicQuantizeLinear", 1, 1, 3, 3, InferDynamicQuantizeLinear);
  r.Add("MatMulInteger", 2, 4, 1, 1, InferMatMulInteger);
  r.Add("QLinearMatMul", 8, 8, 1, 1, InferQLinearMatMul);
  r.Add("ConvInteger", 2, 4, 1, 1, InferConvInteger);
  r.Add("QLinearConv", 8, 9, 1, 1, InferQLinearConv);
}

}  // namespace tessera
