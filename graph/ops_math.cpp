// Schemas of elementwise math ops not in ops_elementwise.cpp: trig and
// hyperbolic functions, ThresholdedRelu, Swish, Shrink, IsNaN/IsInf and the
// bitwise family (BitwiseAnd/Or/Xor/Not, BitShift). An input whose dtype is
// still unknown (kUndefined) is not checked; its dtype comes from the others.
#include <string>
#include <utility>

#include "graph/op_schema.h"

namespace tessera {
namespace {

using DTypePred = bool (*)(DType);

bool IsNumeric(DType t) { return IsFloatDType(t) || IsIntegerDType(t); }
bool IsUnsignedInt(DType t) { return t == DType::kU8 || t == DType::kU16 || t == DType::kU32 || t == DType::kU64; }

Status CheckInputDType(const InferenceContext& ctx, size_t i, DTypePred ok, const char* expected) {
  DType t = ctx.input(i).dtype;
  if (t == DType::kUndefined || ok(t)) return Status::Ok();
  return ctx.Error("input ", i, " has dtype ", DTypeName(t), ", expected ", expected);
}

// Unary: output = input's type (or `out` dtype with the input's shape).
InferFn Unary(DTypePred ok, const char* expected, DType out = DType::kUndefined) {
  return [ok, expected, out](InferenceContext& ctx) -> Status {
    TSR_RETURN_IF_ERROR(CheckInputDType(ctx, 0, ok, expected));
    ctx.outputs[0] = ctx.input(0);
    if (out != DType::kUndefined) ctx.outputs[0].dtype = out;
    return Status::Ok();
  };
}

// Binary broadcasting op whose two inputs share a dtype in `ok`.
InferFn Binary(DTypePred ok, const char* expected) {
  return [ok, expected](InferenceContext& ctx) -> Status {
    for (size_t i = 0; i < 2; ++i) {
      if (!ctx.has_input(i)) return ctx.Error("input ", i, " is missing");
      TSR_RETURN_IF_ERROR(CheckInputDType(ctx, i, ok, expected));
    }
    DType a = ctx.input(0).dtype, b = ctx.input(1).dtype;
    if (a != DType::kUndefined && b != DType::kUndefined && a != b)
      return ctx.Error("input dtypes differ: input 0 is ", DTypeName(a), ", input 1 is ", DTypeName(b));
    auto s = BroadcastShapes(ctx.input(0).shape, ctx.input(1).shape);
    if (!s.ok()) return ctx.Error(s.status().message());
    ctx.outputs[0] = TensorType{a != DType::kUndefined ? a : b, std::move(s).value()};
    return Status::Ok();
  };
}

Status InferBitShift(InferenceContext& ctx) {
  std::string dir = ctx.node->GetString("direction", "");
  if (dir != "LEFT" && dir != "RIGHT")
    return ctx.Error("attribute 'direction' must be \"LEFT\" or \"RIGHT\", got \"", dir, "\"");
  return Binary(IsUnsignedInt, "an unsigned integer type")(ctx);
}

Status InferShrink(InferenceContext& ctx) {
  float lambd = ctx.node->GetFloat("lambd", 0.5f);
  if (!(lambd >= 0.f)) return ctx.Error("attribute 'lambd' must be >= 0, got ", lambd);
  return Unary(IsNumeric, "a numeric type")(ctx);
}

Status InferCelu(InferenceContext& ctx) {
  if (ctx.node->GetFloat("alpha", 1.f) == 0.f) return ctx.Error("attribute 'alpha' must not be 0");
  return Unary(IsFloatDType, "a floating-point type")(ctx);
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

void RegisterMathOps(OpRegistry& r) {
  const char* kFloat = "a floating-point type";
  const char* kInt = "an integer type";
  for (const char* op : {"Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "ThresholdedRelu",
                         "Swish"})
    Reg(r, op, 1, 1, Unary(IsFloatDType, kFloat));
  Reg(r, "Celu", 1, 1, InferCelu);
  Reg(r, "IsNaN", 1, 1, Unary(IsFloatDType, kFloat, DType::kBool));
  Reg(r, "IsInf", 1, 1, Unary(IsFloatDType, kFloat, DType::kBool));
  Reg(r, "Shrink", 1, 1, InferShrink);
  for (const char* op : {"BitwiseAnd", "BitwiseOr", "BitwiseXor"}) Reg(r, op, 2, 2, Binary(IsIntegerDType, kInt));
  Reg(r, "BitwiseNot", 1, 1, Unary(IsIntegerDType, kInt));
  Reg(r, "BitShift", 2, 2, InferBitShift);
}

}  // namespace tessera
