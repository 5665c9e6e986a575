// Elementwise ops on OpenCL: unary math and activations, broadcasting binary
// arithmetic, comparisons and logic, Where, Cast, and tessera.FusedElementwise
// (OpenCL C generated from its register program, one program per distinct
// attribute set, cached like the common program).
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "backends/common/fused_program.h"
#include "backends/opencl/ocl.h"

namespace tessera::ocl {

// Shared by every program: pointer helpers (tensor = buffer + byte offset),
// the opcode functions (FusedElementwise's opcode numbers, plus 24 Identity,
// 25 Silu, 26 Swish(alpha)) and broadcast indexing.
const char* const kPreludeSource = R"CLC(
#define PTR(T, b, o) ((global T*)((global char*)(b) + (o)))
#define CPTR(T, b, o) ((global const T*)((global const char*)(b) + (o)))
#define TSR_INPUT(n) global const char* n, ulong n##_o
#define TSR_OUTPUT(n) global char* n, ulong n##_o

inline float tsr_unop(int op, float x, float p0, float p1) {
  switch (op) {
    case 7: return -x;
    case 8: return fabs(x);
    case 9: return x > 0.f ? x : 0.f;
    case 10: return x >= 0.f ? x : p0 * x;
    case 11: return 1.f / (1.f + exp(-x));
    case 12: return tanh(x);
    case 13: return exp(x);
    case 14: return log(x);
    case 15: return sqrt(x);
    case 16: return 1.f / x;
    case 17: return erf(x);
    case 18: return 0.5f * x * (1.f + erf(x * 0.70710678118654752f));
    case 19: return 0.5f * x * (1.f + tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case 20: { float t = x < p0 ? p0 : x; return p1 < t ? p1 : t; }
    case 21: { float t = p0 * x + p1; t = 0.f < t ? t : 0.f; return t < 1.f ? t : 1.f; }
    case 22: { float t = x * (1.f / 6.f) + 0.5f; t = 0.f < t ? t : 0.f; t = t < 1.f ? t : 1.f; return x * t; }
    case 23: return x > 0.f ? x + log1p(exp(-x)) : log1p(exp(x));
    case 25: return x / (1.f + exp(-x));
    case 26: return x / (1.f + exp(-p0 * x));
    default: return x;
  }
}

inline float tsr_binop(int op, float a, float b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return a < b ? b : a;
    case 5: return b < a ? b : a;
    case 6: return b == 2.f ? a * a : pow(a, b);
    default: return a;
  }
}

inline long tsr_binop_i64(int op, long a, long b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return b == 0 ? 0 : a / b;
    case 4: return a < b ? b : a;
    case 5: return b < a ? b : a;
    default: return a;
  }
}

/* P = [rank, dims[rank], strides of operand 0 [rank], operand 1, ...]: the
   element offset of operand k for flat output index i. */
inline long tsr_bidx(global const long* P, long i, int k) {
  int r = (int)P[0];
  global const long* st = P + 1 + (long)r * (1 + k);
  if (r == 1) return i * st[0];  /* merged to one dim: no division (slow for 64-bit on CPUs) */
  long off = 0;
  for (int d = r - 1; d >= 0; --d) {
    long c = i % P[1 + d];
    i /= P[1 + d];
    off += c * st[d];
  }
  return off;
}
)CLC";

const char* const kElementwiseSource = R"CLC(
kernel void unary_f32(TSR_INPUT(x), TSR_OUTPUT(y), int op, float p0, float p1) {
  size_t i = get_global_id(0);
  PTR(float, y, y_o)[i] = tsr_unop(op, CPTR(float, x, x_o)[i], p0, p1);
}

kernel void binary_f32(TSR_INPUT(a), TSR_INPUT(b), TSR_OUTPUT(y), global const long* P, int op) {
  long i = get_global_id(0);
  float u = CPTR(float, a, a_o)[tsr_bidx(P, i, 0)];
  float v = CPTR(float, b, b_o)[tsr_bidx(P, i, 1)];
  PTR(float, y, y_o)[i] = tsr_binop(op, u, v);
}

kernel void binary_i64(TSR_INPUT(a), TSR_INPUT(b), TSR_OUTPUT(y), global const long* P, int op) {
  long i = get_global_id(0);
  long u = CPTR(long, a, a_o)[tsr_bidx(P, i, 0)];
  long v = CPTR(long, b, b_o)[tsr_bidx(P, i, 1)];
  PTR(long, y, y_o)[i] = tsr_binop_i64(op, u, v);
}

/* op: 0 ==, 1 >, 2 >=, 3 <, 4 <=, 5 and, 6 or, 7 xor; the output is bool (uchar 0/1). */
#define TSR_COMPARE(NAME, T)                                                              \
  kernel void NAME(TSR_INPUT(a), TSR_INPUT(b), TSR_OUTPUT(y), global const long* P, int op) { \
    long i = get_global_id(0);                                                            \
    T u = CPTR(T, a, a_o)[tsr_bidx(P, i, 0)];                                             \
    T v = CPTR(T, b, b_o)[tsr_bidx(P, i, 1)];                                             \
    int r = 0;                                                                            \
    switch (op) {                                                                         \
      case 0: r = u == v; break;                                                          \
      case 1: r = u > v; break;                                                           \
      case 2: r = u >= v; break;                                                          \
      case 3: r = u < v; break;                                                           \
      case 4: r = u <= v; break;                                                          \
      case 5: r = (u != 0) && (v != 0); break;                                            \
      case 6: r = (u != 0) || (v != 0); break;                                            \
      case 7: r = (u != 0) != (v != 0); break;                                            \
    }                                                                                     \
    PTR(uchar, y, y_o)[i] = (uchar)r;                                                     \
  }
TSR_COMPARE(compare_f32, float)
TSR_COMPARE(compare_i64, long)
TSR_COMPARE(compare_i32, int)
TSR_COMPARE(compare_u8, uchar)

kernel void not_u8(TSR_INPUT(x), TSR_OUTPUT(y)) {
  size_t i = get_global_id(0);
  PTR(uchar, y, y_o)[i] = CPTR(uchar, x, x_o)[i] ? 0 : 1;
}

#define TSR_WHERE(NAME, T)                                                                          \
  kernel void NAME(TSR_INPUT(c), TSR_INPUT(a), TSR_INPUT(b), TSR_OUTPUT(y), global const long* P) { \
    long i = get_global_id(0);                                                                      \
    uchar cv = CPTR(uchar, c, c_o)[tsr_bidx(P, i, 0)];                                              \
    PTR(T, y, y_o)[i] = cv ? CPTR(T, a, a_o)[tsr_bidx(P, i, 1)] : CPTR(T, b, b_o)[tsr_bidx(P, i, 2)]; \
  }
TSR_WHERE(where_b1, uchar)
TSR_WHERE(where_b4, uint)
TSR_WHERE(where_b8, ulong)

#define TSR_CAST(NAME, S, D, EXPR)                         \
  kernel void NAME(TSR_INPUT(x), TSR_OUTPUT(y)) {          \
    size_t i = get_global_id(0);                           \
    S v = CPTR(S, x, x_o)[i];                              \
    PTR(D, y, y_o)[i] = EXPR;                              \
  }
TSR_CAST(cast_f32_i64, float, long, isnan(v) ? (long)0 : (long)v)
TSR_CAST(cast_f32_i32, float, int, isnan(v) ? 0 : (int)v)
TSR_CAST(cast_f32_bool, float, uchar, (uchar)(v != 0.f))
TSR_CAST(cast_i64_f32, long, float, (float)v)
TSR_CAST(cast_i64_i32, long, int, (int)v)
TSR_CAST(cast_i64_bool, long, uchar, (uchar)(v != 0))
TSR_CAST(cast_i32_f32, int, float, (float)v)
TSR_CAST(cast_i32_i64, int, long, (long)v)
TSR_CAST(cast_i32_bool, int, uchar, (uchar)(v != 0))
TSR_CAST(cast_bool_f32, uchar, float, v ? 1.f : 0.f)
TSR_CAST(cast_bool_i64, uchar, long, v ? (long)1 : (long)0)
TSR_CAST(cast_bool_i32, uchar, int, v ? 1 : 0)
)CLC";

namespace {

const char* DtName(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_F32: return "f32";
    case TSR_DTYPE_I64: return "i64";
    case TSR_DTYPE_I32: return "i32";
    case TSR_DTYPE_BOOL: return "bool";
    default: return nullptr;
  }
}

// Value view dtype of node input/output k (or UNDEFINED).
int32_t InDType(const tsr_node_view& n, const tsr_graph_view& g, uint32_t k) {
  if (k >= n.num_inputs || n.inputs[k] < 0 || static_cast<uint32_t>(n.inputs[k]) >= g.num_values)
    return TSR_DTYPE_UNDEFINED;
  return g.values[n.inputs[k]].dtype;
}
int32_t OutDType(const tsr_node_view& n, const tsr_graph_view& g, uint32_t k) {
  if (k >= n.num_outputs || n.outputs[k] < 0 || static_cast<uint32_t>(n.outputs[k]) >= g.num_values)
    return TSR_DTYPE_UNDEFINED;
  return g.values[n.outputs[k]].dtype;
}

Err CheckArity(const NodeArgs& a, size_t min_in, size_t max_in, size_t min_out = 1) {
  size_t present = 0;
  for (size_t i = 0; i < a.inputs.size(); ++i) present += a.inputs[i] != nullptr;
  if (a.inputs.size() > max_in || !a.has_input(0) || present < min_in)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected %zu to %zu inputs, got %zu", a.Describe().c_str(), min_in,
                   max_in, a.inputs.size());
  if (a.outputs.size() < min_out || !a.has_output(0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output 0 is missing", a.Describe().c_str());
  return Err::Ok();
}

Err RequireDType(const NodeArgs& a, const TensorArg* t, const char* what, int32_t dt) {
  if (t && t->dtype != dt)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s has dtype %s; the OpenCL kernel supports %s", a.Describe().c_str(),
                   what, plugin::DTypeName(t->dtype), plugin::DTypeName(dt));
  return Err::Ok();
}

// ---- unary -----------------------------------------------------------------------------

int32_t UnaryCode(const std::string& op) {
  static const struct {
    const char* name;
    int32_t code;
  } kTable[] = {{"Neg", kOpNeg},       {"Abs", kOpAbs},       {"Relu", kOpRelu},           {"LeakyRelu", kOpLeakyRelu},
                {"Sigmoid", kOpSigmoid}, {"Tanh", kOpTanh},   {"Exp", kOpExp},             {"Log", kOpLog},
                {"Sqrt", kOpSqrt},     {"Reciprocal", kOpReciprocal}, {"Erf", kOpErf},     {"Gelu", kOpGelu},
                {"Clip", kOpClip},     {"HardSigmoid", kOpHardSigmoid}, {"HardSwish", kOpHardSwish},
                {"Softplus", kOpSoftplus}};
  for (const auto& e : kTable)
    if (op == e.name) return e.code;
  return -1;
}

Err BuildUnary(const NodeArgs& a, OpPlan* plan) {
  const std::string op = a.node->op_type;
  const bool is_clip = op == "Clip";
  Err e = CheckArity(a, 1, is_clip ? 3 : 1);
  if (!e.ok()) return e;
  const TensorArg& x = *a.inputs[0];
  const TensorArg& y = *a.outputs[0];
  if (!(e = RequireDType(a, &x, "input 0", TSR_DTYPE_F32)).ok()) return e;
  if (!(e = RequireDType(a, &y, "output 0", TSR_DTYPE_F32)).ok()) return e;
  if (x.dims != y.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s differs from the input's %s", a.Describe().c_str(),
                   DimsStr(y.dims).c_str(), DimsStr(x.dims).c_str());
  plugin::NodeAttrs at = a.attrs();
  int32_t code = UnaryCode(op);
  float p0 = 0, p1 = 0;
  if (op == "Gelu") {  // ai.onnx (opset 20) and tessera.Gelu share the attribute
    std::string approx = at.String("approximate", "none");
    if (approx != "none" && approx != "tanh")
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: approximate must be \"none\" or \"tanh\", got \"%s\"",
                     a.Describe().c_str(), approx.c_str());
    code = approx == "tanh" ? kOpGeluTanh : kOpGelu;
  } else if (op == "LeakyRelu") {
    p0 = at.Float("alpha", 0.01f);
  } else if (op == "HardSigmoid") {
    p0 = at.Float("alpha", 0.2f);
    p1 = at.Float("beta", 0.5f);
  } else if (is_clip) {
    p0 = -std::numeric_limits<float>::infinity();
    p1 = std::numeric_limits<float>::infinity();
    if (a.node->opset < 11) {
      p0 = at.Float("min", p0);
      p1 = at.Float("max", p1);
    } else {
      for (size_t k = 1; k <= 2; ++k) {
        if (!a.has_input(k)) continue;
        const TensorArg& t = *a.inputs[k];
        if (!t.const_data)
          return MakeErr(TSR_ERR_UNSUPPORTED, "%s: Clip's %s must be a constant for the OpenCL kernel",
                         a.Describe().c_str(), k == 1 ? "min" : "max");
        if (t.dtype != TSR_DTYPE_F32 || t.numel != 1)
          return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Clip's %s must be one f32 value", a.Describe().c_str(),
                         k == 1 ? "min" : "max");
        (k == 1 ? p0 : p1) = *static_cast<const float*>(t.const_data);
      }
    }
  }
  if (code < 0) return MakeErr(TSR_ERR_UNSUPPORTED, "%s: no OpenCL unary kernel", a.Describe().c_str());
  plan->launches.push_back(UnaryLaunch(0, a.out_slot(0), y.numel, code, p0, p1));
  return Err::Ok();
}

std::string ClaimUnary(const tsr_node_view& n, const tsr_graph_view& g) {
  if (InDType(n, g, 0) != TSR_DTYPE_F32) return "input 0 must be f32 for the OpenCL kernel";
  if (OutDType(n, g, 0) != TSR_DTYPE_F32) return "output 0 must be f32 for the OpenCL kernel";
  if (std::strcmp(n.op_type, "Clip") == 0 && n.opset >= 11) {
    for (uint32_t k = 1; k < n.num_inputs && k <= 2; ++k) {
      int32_t vi = n.inputs[k];
      if (vi < 0) continue;
      if (!(g.values[vi].flags & TSR_VALUE_CONSTANT)) return "Clip min/max must be constants for the OpenCL kernel";
    }
  }
  return "";
}

// ---- binary ----------------------------------------------------------------------------

Err BroadcastOperands(const NodeArgs& a, const std::vector<size_t>& ins, std::vector<int64_t>* params) {
  const TensorArg& y = *a.outputs[0];
  std::vector<std::vector<int64_t>> strides;
  for (size_t k : ins) {
    std::vector<int64_t> s;
    if (!BroadcastStrides(a.inputs[k]->dims, y.dims, &s))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu of shape %s does not broadcast to the output %s",
                     a.Describe().c_str(), k, DimsStr(a.inputs[k]->dims).c_str(), DimsStr(y.dims).c_str());
    strides.push_back(std::move(s));
  }
  *params = BroadcastParams(y.dims, strides);
  return Err::Ok();
}

Err BuildBinary(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 2, 2);
  if (!e.ok()) return e;
  if (!a.has_input(1)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input 1 is missing", a.Describe().c_str());
  const std::string op = a.node->op_type;
  const TensorArg& x0 = *a.inputs[0];
  const TensorArg& x1 = *a.inputs[1];
  const TensorArg& y = *a.outputs[0];
  Launch l;
  int32_t code = 0;
  static const char* kArith[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"};
  static const char* kCmp[] = {"Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor"};
  bool arith = false, cmp = false;
  for (int i = 0; i < 7; ++i)
    if (op == kArith[i]) code = i, arith = true;
  for (int i = 0; i < 8; ++i)
    if (op == kCmp[i]) code = i, cmp = true;
  if (x0.dtype != x1.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inputs have dtypes %s and %s", a.Describe().c_str(),
                   plugin::DTypeName(x0.dtype), plugin::DTypeName(x1.dtype));
  if (arith) {
    if (x0.dtype == TSR_DTYPE_F32) {
      l.kernel = "binary_f32";
    } else if (x0.dtype == TSR_DTYPE_I64 && op != "Pow") {
      l.kernel = "binary_i64";
    } else {
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s is not supported by the OpenCL kernel", a.Describe().c_str(),
                     plugin::DTypeName(x0.dtype));
    }
    if (y.dtype != x0.dtype)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dtype %s differs from the inputs' %s", a.Describe().c_str(),
                     plugin::DTypeName(y.dtype), plugin::DTypeName(x0.dtype));
  } else if (cmp) {
    const char* k = x0.dtype == TSR_DTYPE_F32   ? "compare_f32"
                    : x0.dtype == TSR_DTYPE_I64 ? "compare_i64"
                    : x0.dtype == TSR_DTYPE_I32 ? "compare_i32"
                    : x0.dtype == TSR_DTYPE_BOOL ? "compare_u8"
                                                 : nullptr;
    if (!k || (code >= 5 && x0.dtype != TSR_DTYPE_BOOL))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s is not supported by the OpenCL kernel", a.Describe().c_str(),
                     plugin::DTypeName(x0.dtype));
    if (y.dtype != TSR_DTYPE_BOOL)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output must be bool, got %s", a.Describe().c_str(),
                     plugin::DTypeName(y.dtype));
    l.kernel = k;
  } else {
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: no OpenCL binary kernel", a.Describe().c_str());
  }
  if (!(e = BroadcastOperands(a, {0, 1}, &l.params)).ok()) return e;
  l.args = {TArg(0), TArg(1), TArg(a.out_slot(0)), ParamsArg(), I32(code)};
  l.global = static_cast<uint64_t>(y.numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

std::string ClaimBinary(const tsr_node_view& n, const tsr_graph_view& g) {
  const std::string op = n.op_type;
  if (n.num_inputs != 2) return "the OpenCL kernel takes exactly 2 inputs";
  int32_t dt = InDType(n, g, 0);
  if (dt != InDType(n, g, 1)) return "inputs have different dtypes";
  bool logic = op == "And" || op == "Or" || op == "Xor";
  bool cmp = op == "Equal" || op == "Greater" || op == "GreaterOrEqual" || op == "Less" || op == "LessOrEqual";
  if (logic) return dt == TSR_DTYPE_BOOL ? "" : "logical ops need bool inputs";
  if (cmp)
    return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_I64 || dt == TSR_DTYPE_I32 || dt == TSR_DTYPE_BOOL
               ? ""
               : std::string("dtype ") + plugin::DTypeName(dt) + " is not supported by the OpenCL kernel";
  if (dt == TSR_DTYPE_F32 || (dt == TSR_DTYPE_I64 && op != "Pow")) return "";
  return std::string("dtype ") + plugin::DTypeName(dt) + " is not supported by the OpenCL kernel";
}

Err BuildNot(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 1, 1);
  if (!e.ok()) return e;
  if (!(e = RequireDType(a, a.inputs[0], "input 0", TSR_DTYPE_BOOL)).ok()) return e;
  Launch l;
  l.kernel = "not_u8";
  l.args = {TArg(0), TArg(a.out_slot(0))};
  l.global = static_cast<uint64_t>(a.outputs[0]->numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}
std::string ClaimNot(const tsr_node_view& n, const tsr_graph_view& g) {
  return InDType(n, g, 0) == TSR_DTYPE_BOOL ? "" : "Not needs a bool input";
}

const char* SizedKernel(const char* prefix, int64_t elem, std::string* out) {
  if (elem != 1 && elem != 4 && elem != 8) return nullptr;
  *out = std::string(prefix) + "_b" + std::to_string(elem);
  return out->c_str();
}

Err BuildWhere(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 3, 3);
  if (!e.ok()) return e;
  if (!(e = RequireDType(a, a.inputs[0], "condition", TSR_DTYPE_BOOL)).ok()) return e;
  const TensorArg& y = *a.outputs[0];
  if (a.inputs[1]->dtype != y.dtype || a.inputs[2]->dtype != y.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: X and Y must have the output's dtype %s", a.Describe().c_str(),
                   plugin::DTypeName(y.dtype));
  Launch l;
  if (!SizedKernel("where", y.elem_size(), &l.kernel))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s is not supported", a.Describe().c_str(),
                   plugin::DTypeName(y.dtype));
  if (!(e = BroadcastOperands(a, {0, 1, 2}, &l.params)).ok()) return e;
  l.args = {TArg(0), TArg(1), TArg(2), TArg(a.out_slot(0)), ParamsArg()};
  l.global = static_cast<uint64_t>(y.numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}
std::string ClaimWhere(const tsr_node_view& n, const tsr_graph_view& g) {
  if (InDType(n, g, 0) != TSR_DTYPE_BOOL) return "Where needs a bool condition";
  size_t s = plugin::DTypeSize(InDType(n, g, 1));
  return s == 1 || s == 4 || s == 8 ? "" : "unsupported dtype";
}

Err BuildCast(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 1, 1);
  if (!e.ok()) return e;
  const TensorArg& x = *a.inputs[0];
  const TensorArg& y = *a.outputs[0];
  const char* s = DtName(x.dtype);
  const char* d = DtName(y.dtype);
  if (!s || !d)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: cast from %s to %s is not supported by the OpenCL kernels",
                   a.Describe().c_str(), plugin::DTypeName(x.dtype), plugin::DTypeName(y.dtype));
  if (x.dtype == y.dtype) {
    plan->launches.push_back(CopyLaunch(0, a.out_slot(0), static_cast<uint64_t>(y.nbytes())));
    return Err::Ok();
  }
  Launch l;
  l.kernel = std::string("cast_") + s + "_" + d;
  l.args = {TArg(0), TArg(a.out_slot(0))};
  l.global = static_cast<uint64_t>(y.numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}
std::string ClaimCast(const tsr_node_view& n, const tsr_graph_view& g) {
  if (!DtName(InDType(n, g, 0)) || !DtName(OutDType(n, g, 0)))
    return std::string("cast from ") + plugin::DTypeName(InDType(n, g, 0)) + " to " +
           plugin::DTypeName(OutDType(n, g, 0)) + " is not supported by the OpenCL kernels";
  return "";
}

// ---- tessera.FusedElementwise ------------------------------------------------------------

constexpr int kInstrWidth = 5;
constexpr int kNumOpcodes = 24;
// Data operands per opcode (1 or 2) and parameter operands.
const int kData[kNumOpcodes] = {2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
const int kParams[kNumOpcodes] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0};

std::string FloatLit(float f) {
  if (std::isnan(f)) return "NAN";
  if (std::isinf(f)) return f > 0 ? "INFINITY" : "(-INFINITY)";
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.9gf", static_cast<double>(f));
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s.insert(s.size() - 1, ".0");
  return "(" + s + ")";
}

Err BuildFusedElementwise(const NodeArgs& a, OpPlan* plan) {
  const std::string who = a.Describe();
  if (a.inputs.empty()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects at least one input", who.c_str());
  if (!a.has_output(0) || a.outputs.size() != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects exactly one output", who.c_str());
  const TensorArg& y = *a.outputs[0];
  if (y.dtype != TSR_DTYPE_F32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: output must be f32, got %s", who.c_str(), plugin::DTypeName(y.dtype));
  std::vector<int64_t> prog;
  std::vector<float> consts;
  Err pe = plugin::ReadFusedProgram(a.attrs(), who, kInstrWidth, &prog, &consts);
  if (!pe.ok()) return pe;
  const int n_in = static_cast<int>(a.inputs.size());
  const int n_const = static_cast<int>(consts.size());
  const int first_temp = n_in + n_const;
  const int n_instr = static_cast<int>(prog.size() / kInstrWidth);
  if (n_instr > 4096) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: program too large", who.c_str());

  std::vector<std::vector<int64_t>> strides;
  for (int i = 0; i < n_in; ++i) {
    if (!a.inputs[i]) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %d is missing", who.c_str(), i);
    if (a.inputs[i]->dtype != TSR_DTYPE_F32)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: input %d must be f32, got %s", who.c_str(), i,
                     plugin::DTypeName(a.inputs[i]->dtype));
    std::vector<int64_t> s;
    if (!BroadcastStrides(a.inputs[i]->dims, y.dims, &s))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %d of shape %s does not broadcast to the output %s",
                     who.c_str(), i, DimsStr(a.inputs[i]->dims).c_str(), DimsStr(y.dims).c_str());
    strides.push_back(std::move(s));
  }
  // Kernel body: one register per line. Constants are literals; parameter
  // operands must name constant registers.
  auto reg = [&](int r) { return "r" + std::to_string(r); };
  std::string body;
  for (int c = 0; c < n_const; ++c) body += "  const float " + reg(n_in + c) + " = " + FloatLit(consts[c]) + ";\n";
  for (int i = 0; i < n_instr; ++i) {
    const int64_t* in = &prog[static_cast<size_t>(i) * kInstrWidth];
    const int64_t op = in[0], dst = in[1];
    if (op < 0 || op >= kNumOpcodes)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: instruction %d has unknown opcode %lld", who.c_str(), i,
                     static_cast<long long>(op));
    if (dst != first_temp + i)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: instruction %d writes register %lld, expected %d", who.c_str(), i,
                     static_cast<long long>(dst), first_temp + i);
    const int nd = kData[op], np = kParams[op];
    for (int k = 0; k < nd; ++k)
      if (in[2 + k] < 0 || in[2 + k] >= dst)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: instruction %d reads register %lld (must be below %lld)",
                       who.c_str(), i, static_cast<long long>(in[2 + k]), static_cast<long long>(dst));
    float p[2] = {0, 0};
    for (int k = 0; k < np; ++k) {
      int64_t r = in[2 + nd + k];
      if (r < n_in || r >= first_temp)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: instruction %d: parameter operand %lld is not a constant",
                       who.c_str(), i, static_cast<long long>(r));
      p[k] = consts[static_cast<size_t>(r - n_in)];
    }
    std::string expr =
        nd == 2 ? "tsr_binop(" + std::to_string(op) + ", " + reg(static_cast<int>(in[2])) + ", " +
                      reg(static_cast<int>(in[3])) + ")"
                : "tsr_unop(" + std::to_string(op) + ", " + reg(static_cast<int>(in[2])) + ", " + FloatLit(p[0]) +
                      ", " + FloatLit(p[1]) + ")";
    body += "  const float " + reg(static_cast<int>(dst)) + " = " + expr + ";\n";
  }
  std::string sig = "kernel void fused_elementwise(TSR_OUTPUT(y), global const long* P";
  std::string loads;
  for (int i = 0; i < n_in; ++i) {
    sig += ", TSR_INPUT(x" + std::to_string(i) + ")";
    loads += "  const float " + reg(i) + " = CPTR(float, x" + std::to_string(i) + ", x" + std::to_string(i) +
             "_o)[tsr_bidx(P, i, " + std::to_string(i) + ")];\n";
  }
  std::string src = std::string(kPreludeSource) + sig + ") {\n  long i = get_global_id(0);\n" + loads + body +
                    "  PTR(float, y, y_o)[i] = " + reg(first_temp + n_instr - 1) + ";\n}\n";
  Launch l;
  l.program = "fused_elementwise";
  l.kernel = "fused_elementwise";
  l.params = BroadcastParams(y.dims, strides);
  l.args = {TArg(a.out_slot(0)), ParamsArg()};
  for (int i = 0; i < n_in; ++i) l.args.push_back(TArg(i));
  l.global = static_cast<uint64_t>(y.numel);
  plan->programs.emplace_back("fused_elementwise", std::move(src));
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

}  // namespace

void RegisterElementwiseOps(std::vector<OpEntry>& r) {
  for (const char* op : {"Neg", "Abs", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Reciprocal",
                         "Erf", "Gelu", "Clip", "HardSigmoid", "HardSwish", "Softplus"})
    r.push_back({"", op, &BuildUnary, &ClaimUnary});
  r.push_back({"tessera", "Gelu", &BuildUnary, &ClaimUnary});
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Equal", "Greater", "GreaterOrEqual", "Less",
                         "LessOrEqual", "And", "Or", "Xor"})
    r.push_back({"", op, &BuildBinary, &ClaimBinary});
  r.push_back({"", "Not", &BuildNot, &ClaimNot});
  r.push_back({"", "Where", &BuildWhere, &ClaimWhere});
  r.push_back({"", "Cast", &BuildCast, &ClaimCast});
  r.push_back({"tessera", "FusedElementwise", &BuildFusedElementwise, nullptr});
}

}  // namespace tessera::ocl
