// Schemas of elementwise ops: unary math and activations, broadcasting
// arithmetic, comparisons and logic, Where. An input whose dtype is still
// unknown (kUndefined) is not checked; its dtype is taken from the others.
#include <string>
#include <vector>

#include "graph/op_schema.h"

namespace tessera {
namespace {

bool IsNumeric(DType t) { return IsFloatDType(t) || IsIntegerDType(t); }
bool IsSignedNumeric(DType t) {
  return IsFloatDType(t) || t == DType::kI8 || t == DType::kI16 || t == DType::kI32 || t == DType::kI64;
}
bool IsBool(DType t) { return t == DType::kBool; }
bool IsAny(DType) { return true; }

using DTypePred = bool (*)(DType);

Status CheckDType(const InferenceContext& ctx, size_t i, DTypePred ok, const char* expected) {
  DType t = ctx.input(i).dtype;
  if (t == DType::kUndefined || ok(t)) return Status::Ok();
  return ctx.Error("input ", i, " has dtype ", DTypeName(t), ", expected ", expected);
}

// The dtype that inputs [first, last) share; an error names the two that differ.
Result<DType> SharedDType(const InferenceContext& ctx, size_t first, size_t last) {
  DType common = DType::kUndefined;
  size_t from = first;
  for (size_t i = first; i < last; ++i) {
    DType t = ctx.input(i).dtype;
    if (t == DType::kUndefined) continue;
    if (common == DType::kUndefined) {
      common = t;
      from = i;
    } else if (t != common) {
      return ctx.Error("input dtypes differ: input ", from, " is ", DTypeName(common), ", input ", i, " is ",
                       DTypeName(t));
    }
  }
  return common;
}

Result<Shape> BroadcastInputs(const InferenceContext& ctx, size_t first, size_t last) {
  Shape s = ctx.input(first).shape;
  for (size_t i = first + 1; i < last; ++i) {
    auto r = BroadcastShapes(s, ctx.input(i).shape);
    if (!r.ok()) return ctx.Error(r.status().message());
    s = std::move(r).value();
  }
  return s;
}

Status RequireAllPresent(const InferenceContext& ctx) {
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (!ctx.has_input(i)) return ctx.Error("input ", i, " is missing");
  return Status::Ok();
}

// Unary op: output type = input type, input dtype restricted by `ok`.
InferFn Unary(DTypePred ok, const char* expected) {
  return [ok, expected](InferenceContext& ctx) -> Status {
    TSR_RETURN_IF_ERROR(CheckDType(ctx, 0, ok, expected));
    ctx.outputs[0] = ctx.input(0);
    return Status::Ok();
  };
}

// Broadcasting op over all inputs that share one dtype; output dtype is that
// dtype, or `out` when given (comparisons give bool).
InferFn Broadcasting(DTypePred ok, const char* expected, DType out = DType::kUndefined) {
  return [ok, expected, out](InferenceContext& ctx) -> Status {
    TSR_RETURN_IF_ERROR(RequireAllPresent(ctx));
    for (size_t i = 0; i < ctx.num_inputs(); ++i) TSR_RETURN_IF_ERROR(CheckDType(ctx, i, ok, expected));
    TSR_ASSIGN_OR_RETURN(DType dt, SharedDType(ctx, 0, ctx.num_inputs()));
    TSR_ASSIGN_OR_RETURN(Shape s, BroadcastInputs(ctx, 0, ctx.num_inputs()));
    ctx.outputs[0] = TensorType{out == DType::kUndefined ? dt : out, std::move(s)};
    return Status::Ok();
  };
}

Status InferPow(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckDType(ctx, 0, IsNumeric, "a numeric type"));
  TSR_RETURN_IF_ERROR(CheckDType(ctx, 1, IsNumeric, "a numeric type"));
  if (ctx.opset < 12) TSR_RETURN_IF_ERROR(SharedDType(ctx, 0, 2).status());
  TSR_ASSIGN_OR_RETURN(Shape s, BroadcastInputs(ctx, 0, 2));
  ctx.outputs[0] = TensorType{ctx.input(0).dtype, std::move(s)};  // base's dtype
  return Status::Ok();
}

Status InferMod(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckDType(ctx, 0, IsNumeric, "a numeric type"));
  TSR_ASSIGN_OR_RETURN(DType dt, SharedDType(ctx, 0, 2));
  if (IsFloatDType(dt) && ctx.node->GetInt("fmod", 0) != 1)
    return ctx.Error("fmod must be 1 for floating-point inputs (got ", ctx.node->GetInt("fmod", 0), ")");
  TSR_ASSIGN_OR_RETURN(Shape s, BroadcastInputs(ctx, 0, 2));
  ctx.outputs[0] = TensorType{dt, std::move(s)};
  return Status::Ok();
}

Status InferPRelu(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckDType(ctx, 0, IsSignedNumeric, "a signed numeric type"));
  TSR_RETURN_IF_ERROR(SharedDType(ctx, 0, 2).status());
  // Slope broadcasts unidirectionally to X: the output keeps X's shape.
  TSR_ASSIGN_OR_RETURN(Shape s, BroadcastInputs(ctx, 0, 2));
  const Shape& x = ctx.input(0).shape;
  if (x.has_rank() && s.has_rank() && s.rank() != x.rank())
    return ctx.Error("slope ", ctx.input(1).shape.ToString(), " does not broadcast to X ", x.ToString());
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

// Clip: min/max are attributes before opset 11, optional scalar inputs after.
Status InferClip(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckDType(ctx, 0, IsNumeric, "a numeric type"));
  if (ctx.opset < 11) {
    if (ctx.num_inputs() > 1) return ctx.Error("takes min/max as attributes before opset 11, not as inputs");
  } else {
    for (size_t i = 1; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i)) continue;
      DType a = ctx.input(0).dtype, b = ctx.input(i).dtype;
      if (a != DType::kUndefined && b != DType::kUndefined && a != b)
        return ctx.Error(i == 1 ? "min" : "max", " has dtype ", DTypeName(b), ", input has ", DTypeName(a));
      const Shape& s = ctx.input(i).shape;
      if (s.has_rank() && s.rank() > 0 && !(s.rank() == 1 && s.dim(0).is_known() && s.dim(0).value == 1))
        return ctx.Error(i == 1 ? "min" : "max", " must be a scalar, got shape ", s.ToString());
    }
  }
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

Status InferGelu(InferenceContext& ctx) {
  std::string approx = ctx.node->GetString("approximate", "none");
  if (approx != "none" && approx != "tanh")
    return ctx.Error("attribute 'approximate' must be \"none\" or \"tanh\", got \"", approx, "\"");
  TSR_RETURN_IF_ERROR(CheckDType(ctx, 0, IsFloatDType, "a floating-point type"));
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

Status InferWhere(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckDType(ctx, 0, IsBool, "bool (the condition)"));
  TSR_ASSIGN_OR_RETURN(DType dt, SharedDType(ctx, 1, 3));
  TSR_ASSIGN_OR_RETURN(Shape s, BroadcastInputs(ctx, 0, 3));
  ctx.outputs[0] = TensorType{dt, std::move(s)};
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

void RegisterElementwiseOps(OpRegistry& r) {
  constexpr int kMany = 1 << 20;
  const char* kFloat = "a floating-point type";
  const char* kNumeric = "a numeric type";
  const char* kSigned = "a signed numeric type";

  // Float-only unary math and activations.
  for (const char* op : {"Sqrt", "Exp", "Log", "Erf", "Tanh", "Sigmoid", "Reciprocal", "Floor", "Ceil", "LeakyRelu",
                         "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Elu", "Selu", "Mish", "Celu", "Sin",
                         "Cos", "Round"})
    Reg(r, op, 1, 1, Unary(IsFloatDType, kFloat));
  Reg(r, "Gelu", 1, 1, InferGelu);
  Reg(r, "Relu", 1, 1, Unary(IsSignedNumeric, kSigned));  // ints since opset 14
  Reg(r, "Neg", 1, 1, Unary(IsSignedNumeric, kSigned));
  Reg(r, "Abs", 1, 1, Unary(IsNumeric, kNumeric));
  Reg(r, "Sign", 1, 1, Unary(IsNumeric, kNumeric));
  Reg(r, "Clip", 1, 3, InferClip);
  Reg(r, "PRelu", 2, 2, InferPRelu);

  // Broadcasting arithmetic: all inputs share a dtype.
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) Reg(r, op, 2, 2, Broadcasting(IsNumeric, kNumeric));
  for (const char* op : {"Max", "Min", "Sum", "Mean"}) Reg(r, op, 1, kMany, Broadcasting(IsNumeric, kNumeric));
  Reg(r, "Pow", 2, 2, InferPow);
  Reg(r, "Mod", 2, 2, InferMod);

  // Comparisons and logic give bool.
  Reg(r, "Equal", 2, 2, Broadcasting(IsAny, "any type", DType::kBool));
  for (const char* op : {"Greater", "GreaterOrEqual", "Less", "LessOrEqual"})
    Reg(r, op, 2, 2, Broadcasting(IsNumeric, kNumeric, DType::kBool));
  for (const char* op : {"And", "Or", "Xor"}) Reg(r, op, 2, 2, Broadcasting(IsBool, "bool"));
  Reg(r, "Not", 1, 1, Unary(IsBool, "bool"));
  Reg(r, "Where", 3, 3, InferWhere);
}

}  // namespace tessera
