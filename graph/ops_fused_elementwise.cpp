// Schema of tessera.FusedElementwise: a chain/tree of f32 elementwise ops
// evaluated by one kernel (created by compiler/passes/fuse_elementwise.cpp).
//
// Inputs X0..X(n-1): f32, each broadcastable (ONNX multidirectional rules) to
// the output. Output Y: f32, shape = broadcast of all inputs.
//
// Attributes:
//   constants (floats, optional, K values): immediate scalars.
//   program   (ints, required): instructions of exactly 5 ints each,
//             [opcode, dst, a, b, c]; unused operand slots are -1.
//
// Virtual registers: 0..n-1 hold the inputs, n..n+K-1 hold constants[k]
// (a scalar broadcast to every element), and instruction i writes register
// n+K+i (dst must equal n+K+i: every register is written once, in order).
// Data operands (a, and b for binary ops) may name any register below dst.
// Parameter operands must name constant registers (their value is read when
// the kernel is built). The last instruction's register is the output.
//
// Opcodes (the same table is repeated in backends/cpu/kernels_fused_elementwise.cpp
// and compiler/passes/fuse_elementwise.cpp; keep all three in sync):
//    0 Add(a,b)  1 Sub(a,b)  2 Mul(a,b)  3 Div(a,b)  4 Max(a,b)  5 Min(a,b)
//    6 Pow(a,b)  (b: data operand; the pass only emits constant exponents)
//    7 Neg(a)  8 Abs(a)  9 Relu(a)  10 LeakyRelu(a, alpha=b)  11 Sigmoid(a)
//   12 Tanh(a) 13 Exp(a) 14 Log(a) 15 Sqrt(a) 16 Reciprocal(a) 17 Erf(a)
//   18 Gelu(a) (erf form)  19 GeluTanh(a) (tanh approximation)
//   20 Clip(a, min=b, max=c)  21 HardSigmoid(a, alpha=b, beta=c)
//   22 HardSwish(a)  23 Softplus(a)
// Semantics follow the ONNX ops of the same name (Max/Min with two inputs).
#include <string>
#include <vector>

#include "graph/op_schema.h"

namespace tessera {
namespace {

constexpr int kInstrWidth = 5;
constexpr int kNumOpcodes = 24;

// Operand kinds per opcode: number of data operands (1 or 2) and number of
// constant parameters following them.
struct OpcodeInfo {
  const char* name;
  int data;
  int params;
};

const OpcodeInfo kOpcodes[kNumOpcodes] = {
    {"Add", 2, 0},     {"Sub", 2, 0},      {"Mul", 2, 0},        {"Div", 2, 0},        {"Max", 2, 0},
    {"Min", 2, 0},     {"Pow", 2, 0},      {"Neg", 1, 0},        {"Abs", 1, 0},        {"Relu", 1, 0},
    {"LeakyRelu", 1, 1}, {"Sigmoid", 1, 0}, {"Tanh", 1, 0},       {"Exp", 1, 0},        {"Log", 1, 0},
    {"Sqrt", 1, 0},    {"Reciprocal", 1, 0}, {"Erf", 1, 0},       {"Gelu", 1, 0},       {"GeluTanh", 1, 0},
    {"Clip", 1, 2},    {"HardSigmoid", 1, 2}, {"HardSwish", 1, 0}, {"Softplus", 1, 0},
};

// Checks the program against the register layout described above.
Status ValidateProgram(const InferenceContext& ctx, int64_t num_inputs) {
  const Node& n = *ctx.node;
  const Attribute* pa = n.attr("program");
  if (!pa || pa->type != AttrType::kInts) return ctx.Error("attribute 'program' (ints) is required");
  const std::vector<int64_t>& p = pa->ints;
  if (p.empty() || p.size() % kInstrWidth != 0)
    return ctx.Error("'program' must hold a non-empty multiple of ", kInstrWidth, " ints, got ", p.size());
  const Attribute* ca = n.attr("constants");
  if (ca && ca->type != AttrType::kFloats) return ctx.Error("attribute 'constants' must be floats");
  const int64_t k = ca ? static_cast<int64_t>(ca->floats.size()) : 0;
  const int64_t first_temp = num_inputs + k;
  const size_t count = p.size() / kInstrWidth;
  for (size_t i = 0; i < count; ++i) {
    const int64_t* ins = &p[i * kInstrWidth];
    const int64_t op = ins[0], dst = ins[1];
    if (op < 0 || op >= kNumOpcodes) return ctx.Error("program instruction ", i, ": unknown opcode ", op);
    const OpcodeInfo& info = kOpcodes[op];
    if (dst != first_temp + static_cast<int64_t>(i))
      return ctx.Error("program instruction ", i, " (", info.name, "): dst must be register ",
                       first_temp + static_cast<int64_t>(i), ", got ", dst);
    for (int s = 0; s < 3; ++s) {
      const int64_t r = ins[2 + s];
      if (s < info.data) {
        if (r < 0 || r >= dst)
          return ctx.Error("program instruction ", i, " (", info.name, "): operand ", s, " register ", r,
                           " is not defined before it");
      } else if (s < info.data + info.params) {
        if (r < num_inputs || r >= first_temp)
          return ctx.Error("program instruction ", i, " (", info.name, "): parameter operand ", s, " register ", r,
                           " must be a constant register (", num_inputs, "..", first_temp - 1, ")");
      } else if (r != -1) {
        return ctx.Error("program instruction ", i, " (", info.name, "): unused operand ", s, " must be -1, got ", r);
      }
    }
  }
  return Status::Ok();
}

Status InferFusedElementwise(InferenceContext& ctx) {
  const int64_t n = static_cast<int64_t>(ctx.num_inputs());
  Shape s;
  bool first = true;
  for (int64_t i = 0; i < n; ++i) {
    if (!ctx.has_input(static_cast<size_t>(i))) return ctx.Error("input ", i, " is missing");
    const TensorType& t = ctx.input(static_cast<size_t>(i));
    if (t.dtype != DType::kF32 && t.dtype != DType::kUndefined)
      return ctx.Error("input ", i, " has dtype ", DTypeName(t.dtype), ", expected f32");
    if (first) {
      s = t.shape;
      first = false;
      continue;
    }
    auto r = BroadcastShapes(s, t.shape);
    if (!r.ok()) return ctx.Error(r.status().message());
    s = std::move(r).value();
  }
  TSR_RETURN_IF_ERROR(ValidateProgram(ctx, n));
  ctx.outputs[0] = TensorType{DType::kF32, std::move(s)};
  return Status::Ok();
}

}  // namespace

void RegisterFusedElementwiseOps(OpRegistry& r) {
  OpSchema s;
  s.domain = "tessera";
  s.name = "FusedElementwise";
  s.min_inputs = 1;
  s.min_outputs = 1;
  s.max_outputs = 1;
  s.infer = InferFusedElementwise;
  r.Register(std::move(s));
}

}  // namespace tessera
