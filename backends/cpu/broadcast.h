// Broadcast iteration for elementwise CPU kernels, plus helpers shared by the
// kernel files: a closure-backed Kernel, axis normalisation, reading constant
// integer inputs, SIMD float math (exp, sigmoid, tanh, erf, gelu) and claim
// checks. Header-only: CMake compiles only kernels_*.cpp. Other kernels may
// use any of it (include only backends/cpu headers and the plugin ABI).
//
// Broadcasting follows ONNX multidirectional rules: operand shapes are
// right-aligned against the output shape, and each operand dim is either
// equal to the output dim or 1.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {

constexpr int kMaxBroadcastOperands = 3;
constexpr int kMaxBroadcastRank = 16;

// An iteration plan over an output of `numel` elements whose operands
// broadcast to it. Dims are collapsed: output dims of 1 are dropped, and
// adjacent dims merge when every operand is full in both or broadcast in both.
// So identical shapes become one dim, a scalar operand has stride 0
// everywhere, and a trailing bias ([N,C] + [C]) becomes [N,C] with strides
// (0,1). The innermost collapsed dim is a "row"; along it every operand's
// stride (inner_stride) is 1 (full) or 0 (one element repeated).
struct Broadcast {
  int num_operands = 0;
  int rank = 1;  // collapsed rank, >= 1
  int64_t numel = 0;
  int64_t dims[kMaxBroadcastRank] = {};
  int64_t strides[kMaxBroadcastOperands][kMaxBroadcastRank] = {};

  int64_t inner() const { return dims[rank - 1]; }
  int64_t inner_stride(int k) const { return strides[k][rank - 1]; }
  // True when operand k is laid out exactly like the output.
  bool is_full(int k) const {
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; --d) {
      if (strides[k][d] != s) return false;
      s *= dims[d];
    }
    return true;
  }
};

// Builds the plan for operands `ins` (at most kMaxBroadcastOperands) against
// output dims `out`. Returns "" on success, else why the shapes do not
// broadcast (for the caller's error message).
inline std::string MakeBroadcast(const std::vector<int64_t>& out,
                                 std::initializer_list<const std::vector<int64_t>*> ins, Broadcast* bc) {
  auto fmt = [](const std::vector<int64_t>& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) {
      if (i) s += ',';
      s += std::to_string(d[i]);
    }
    s += ']';
    return s;
  };
  *bc = Broadcast{};
  if (ins.size() == 0 || ins.size() > static_cast<size_t>(kMaxBroadcastOperands)) return "bad operand count";
  bc->num_operands = static_cast<int>(ins.size());
  const size_t R = out.size();
  bc->numel = 1;
  for (int64_t d : out) bc->numel *= d;
  // Per kept output dim: size and a bit mask of the operands that are full there.
  std::vector<int64_t> kd;
  std::vector<unsigned> km;
  for (size_t d = 0; d < R; ++d) {
    unsigned mask = 0;
    int k = 0;
    for (const std::vector<int64_t>* in : ins) {
      if (in->size() > R) return "operand " + std::to_string(k) + " dims " + fmt(*in) + " have higher rank than output " + fmt(out);
      size_t shift = R - in->size();
      int64_t id = d < shift ? 1 : (*in)[d - shift];
      if (id == out[d] && out[d] != 1) mask |= 1u << k;
      else if (id != 1 && id != out[d])
        return "operand " + std::to_string(k) + " dims " + fmt(*in) + " do not broadcast to output " + fmt(out);
      ++k;
    }
    if (out[d] == 1) continue;
    if (!kd.empty() && km.back() == mask) {
      kd.back() *= out[d];
    } else {
      kd.push_back(out[d]);
      km.push_back(mask);
    }
  }
  if (kd.empty()) {  // all dims 1 (or a scalar)
    kd.push_back(1);
    km.push_back((1u << bc->num_operands) - 1);
  }
  if (kd.size() > static_cast<size_t>(kMaxBroadcastRank)) return "broadcast pattern too complex (rank after collapsing > 16)";
  bc->rank = static_cast<int>(kd.size());
  for (int d = 0; d < bc->rank; ++d) bc->dims[d] = kd[d];
  for (int k = 0; k < bc->num_operands; ++k) {
    int64_t s = 1;
    for (int d = bc->rank - 1; d >= 0; --d) {
      bool full = (km[d] >> k) & 1u;
      bc->strides[k][d] = full ? s : 0;
      if (full) s *= bc->dims[d];
    }
  }
  return "";
}

// Calls fn(out_offset, in_offsets, n) over the output in contiguous runs that
// never cross a row: out elements [out_offset, out_offset + n) read operand k
// at in_offsets[k] + i * bc.inner_stride(k). Runs in parallel chunks of at
// least `grain` elements; fn must be safe to call concurrently.
template <typename Fn>
void ForEachRun(const Broadcast& bc, int64_t grain, Fn&& fn) {
  if (bc.numel <= 0) return;
  const int64_t inner = bc.inner();
  const int nops = bc.num_operands;
  ParallelFor(bc.numel, grain, [&](int64_t b, int64_t e) {
    int64_t idx[kMaxBroadcastRank] = {};
    int64_t offs[kMaxBroadcastOperands] = {};
    int64_t row = b / inner, col = b % inner;
    for (int d = bc.rank - 2; d >= 0; --d) {
      idx[d] = row % bc.dims[d];
      row /= bc.dims[d];
      for (int k = 0; k < nops; ++k) offs[k] += idx[d] * bc.strides[k][d];
    }
    while (b < e) {
      int64_t n = std::min(inner - col, e - b);
      int64_t run_offs[kMaxBroadcastOperands];
      for (int k = 0; k < nops; ++k) run_offs[k] = offs[k] + col * bc.strides[k][bc.rank - 1];
      fn(b, static_cast<const int64_t*>(run_offs), n);
      b += n;
      col = 0;
      for (int d = bc.rank - 2; d >= 0; --d) {  // odometer step to the next row
        ++idx[d];
        for (int k = 0; k < nops; ++k) offs[k] += bc.strides[k][d];
        if (idx[d] < bc.dims[d]) break;
        for (int k = 0; k < nops; ++k) offs[k] -= bc.strides[k][d] * bc.dims[d];
        idx[d] = 0;
      }
    }
  });
}

// y[i] = op(a[i], b[i]) with broadcasting, specialised for the fast paths
// (both full along the row, one repeated along the row). TA/TB/TY are the
// element types; op is a cheap, pure functor.
template <typename TA, typename TB, typename TY, typename Op>
void BroadcastBinary(const Broadcast& bc, const TA* a, const TB* b, TY* y, Op op, int64_t grain = 32768) {
  const int64_t sa = bc.inner_stride(0), sb = bc.inner_stride(1);
  ForEachRun(bc, grain, [&](int64_t yo, const int64_t* o, int64_t n) {
    const TA* pa = a + o[0];
    const TB* pb = b + o[1];
    TY* py = y + yo;
    if (sa && sb) {
      for (int64_t i = 0; i < n; ++i) py[i] = op(pa[i], pb[i]);
    } else if (sa) {
      const TB bv = *pb;
      for (int64_t i = 0; i < n; ++i) py[i] = op(pa[i], bv);
    } else if (sb) {
      const TA av = *pa;
      for (int64_t i = 0; i < n; ++i) py[i] = op(av, pb[i]);
    } else {
      const TY v = op(*pa, *pb);
      for (int64_t i = 0; i < n; ++i) py[i] = v;
    }
  });
}

// Copies `in` (broadcast) into an output of the plan's shape (one operand).
template <typename T>
void BroadcastCopy(const Broadcast& bc, const T* in, T* y, int64_t grain = 65536) {
  const int64_t s = bc.inner_stride(0);
  ForEachRun(bc, grain, [&](int64_t yo, const int64_t* o, int64_t n) {
    if (s) std::memcpy(y + yo, in + o[0], static_cast<size_t>(n) * sizeof(T));
    else std::fill(y + yo, y + yo + n, in[o[0]]);
  });
}

// ---- helpers shared by the kernel files -----------------------------------------

// A kernel whose Run is a closure built by the factory. The closure must not
// mutate its captures (Run is called concurrently).
class FnKernel final : public Kernel {
 public:
  using Fn = std::function<Err(const void* const* in, void* const* out)>;
  explicit FnKernel(Fn fn) : fn_(std::move(fn)) {}
  Err Run(const void* const* in, void* const* out) const override { return fn_(in, out); }

 private:
  Fn fn_;
};

inline std::unique_ptr<Kernel> MakeFnKernel(FnKernel::Fn fn) { return std::make_unique<FnKernel>(std::move(fn)); }

// Maps a possibly negative axis into [0, rank); false when out of range.
inline bool NormalizeAxis(int64_t axis, int64_t rank, int64_t* out) {
  if (axis < -rank || axis >= rank) return false;
  *out = axis < 0 ? axis + rank : axis;
  return true;
}

inline std::string DimsToString(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(d[i]);
  }
  s += ']';
  return s;
}

// Reads an integer parameter that is an attribute in old opsets and an input
// in new ones. Order: attribute `attr` when present; else input `input` when
// present, which must be a constant i32/i64 tensor; else *present = false.
// Errors name the node.
inline Err ReadIntsParam(const NodeArgs& args, const char* attr, size_t input, std::vector<int64_t>* out,
                         bool* present) {
  *present = false;
  out->clear();
  plugin::NodeAttrs at = args.attrs();
  if (attr && at.Has(attr)) {
    *out = at.Ints(attr);
    if (out->empty() && at.Find(attr)->type == TSR_ATTR_INT) out->push_back(at.Int(attr, 0));
    *present = true;
    return Err::Ok();
  }
  if (!args.has_input(input)) return Err::Ok();
  const TensorArg* t = args.inputs[input];
  if (!t->const_data)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: input %zu must be a constant for the CPU backend", args.Describe().c_str(),
                   input);
  if (t->dtype == TSR_DTYPE_I64) {
    const int64_t* p = static_cast<const int64_t*>(t->const_data);
    out->assign(p, p + t->numel);
  } else if (t->dtype == TSR_DTYPE_I32) {
    const int32_t* p = static_cast<const int32_t*>(t->const_data);
    out->assign(p, p + t->numel);
  } else {
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu must be i32 or i64, got %s", args.Describe().c_str(), input,
                   plugin::DTypeName(t->dtype));
  }
  *present = true;
  return Err::Ok();
}

// Checks input/output counts (present inputs/outputs are counted by index:
// at least `min_in` leading inputs and `min_out` leading outputs must exist).
inline Err CheckArity(const NodeArgs& args, size_t min_in, size_t max_in, size_t min_out, size_t max_out) {
  size_t ni = args.inputs.size(), no = args.outputs.size();
  if (ni < min_in || ni > max_in)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects %zu..%zu inputs, got %zu", args.Describe().c_str(), min_in,
                   max_in, ni);
  if (no < min_out || no > max_out)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects %zu..%zu outputs, got %zu", args.Describe().c_str(), min_out,
                   max_out, no);
  for (size_t i = 0; i < min_in; ++i)
    if (!args.inputs[i])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: required input %zu is missing", args.Describe().c_str(), i);
  for (size_t i = 0; i < min_out; ++i)
    if (!args.outputs[i])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: required output %zu is missing", args.Describe().c_str(), i);
  return Err::Ok();
}

// ---- vectorised float math ----------------------------------------------------------------

// GCC vector extensions (16 bytes: SSE2 / NEON width) give SIMD math without
// -ffast-math; libm calls and float clamps otherwise keep loops scalar.
// Polynomial coefficients were fitted for this file (weighted least squares
// on Chebyshev nodes against 30-digit references). Accuracy, measured against
// double-precision references: relative error below 3e-7 for ExpV, SigmoidV,
// TanhV, ErfV, ErfcV; GeluV/GeluTanhV stay relatively accurate in the negative
// tail too (they never form 1 + erf(x) by cancellation).
typedef float V4 __attribute__((vector_size(16)));
typedef int32_t I4 __attribute__((vector_size(16)));

inline V4 Splat(float v) { return V4{} + v; }
inline V4 Load4(const float* p) {
  V4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store4(float* p, V4 v) { std::memcpy(p, &v, sizeof(v)); }
inline V4 Select(I4 mask, V4 a, V4 b) { return mask ? a : b; }
inline V4 AbsV(V4 x) { return Select(x < 0.f, -x, x); }

// exp(x): x = k ln2 + r (|r| <= ln2/2, ln2 split so k*ln2_hi is exact), a
// degree-7 Taylor polynomial for e^r, then 2^k through the exponent bits.
// Below -87.3 (including -inf) gives 0, above 88.7 gives +inf, NaN stays NaN.
inline V4 ExpV(V4 x) {
  const V4 lo = Splat(-87.3f), hi = Splat(88.7f);
  V4 xc = Select(x < lo, lo, x);
  xc = Select(xc > hi, hi, xc);
  V4 kf = (xc * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest (1.5 * 2^23 trick)
  V4 r = xc - kf * 0.693145751953125f;
  r = r - kf * 1.42860682030941723212e-6f;
  V4 p = Splat(1.f / 5040.f);
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  I4 bits = (__builtin_convertvector(kf, I4) + 127) << 23;
  V4 y = p * reinterpret_cast<V4>(bits);
  y = Select(x < lo, V4{}, y);
  y = Select(x > hi, Splat(__builtin_inff()), y);
  return Select(x != x, x, y);
}

inline V4 SigmoidV(V4 x) { return 1.f / (1.f + ExpV(-x)); }

// tanh: odd polynomial for |x| < 0.55, else sign(x) (1 - 2 / (e^{2|x|} + 1)).
inline V4 TanhV(V4 x) {
  const V4 a = AbsV(x);
  const V4 z = x * x;
  V4 p = Splat(-0.006268214931742843f);
  p = p * z + 0.02106602879931721f;
  p = p * z - 0.05385033538258816f;
  p = p * z + 0.1333255489362054f;
  p = p * z - 0.3333331543341419f;
  p = p * z + 0.999999999556539f;
  const V4 small = x * p;
  V4 big = 1.f - 2.f / (ExpV(a + a) + 1.f);
  big = Select(x < 0.f, -big, big);
  return Select(a < 0.55f, small, big);
}

// erf(x) for |x| < 1: x * P(x^2).
inline V4 ErfSmallV(V4 x) {
  const V4 z = x * x;
  V4 p = Splat(7.896816025707021e-05f);
  p = p * z - 0.0008023893252846054f;
  p = p * z + 0.0051899949388365535f;
  p = p * z - 0.026854772762965773f;
  p = p * z + 0.11283611374145355f;
  p = p * z - 0.3761262871351559f;
  p = p * z + 1.1283791664694236f;
  return x * p;
}

// erfc(a) for a >= 0.95: e^{-a^2} Q(t), t = 1 / (1 + a/2); 0 beyond a = 10.
inline V4 ErfcTailV(V4 a) {
  const V4 ac = Select(a > 10.f, Splat(10.f), a);
  const V4 t = 1.f / (1.f + 0.5f * ac);
  V4 q = Splat(0.08089925129531951f);
  q = q * t - 0.1855426515615253f;
  q = q * t + 0.02637825138338436f;
  q = q * t + 0.10388308832184381f;
  q = q * t + 0.15891220423885855f;
  q = q * t + 0.25266634881526395f;
  q = q * t + 0.28105093390709346f;
  q = q * t + 0.282192974589621f;
  q = q * t - 3.81954702665481e-06f;
  const V4 y = ExpV(-(ac * ac)) * q;
  return Select(a > 10.f, V4{}, y);
}

inline V4 ErfV(V4 x) {
  const V4 a = AbsV(x);
  V4 big = 1.f - ErfcTailV(a);
  big = Select(x < 0.f, -big, big);
  V4 y = Select(a < 1.f, ErfSmallV(x), big);
  return Select(x != x, x, y);
}

// 1 + erf(z), accurate for negative z (computed as erfc(-z) there).
inline V4 OnePlusErfV(V4 z) {
  const V4 a = AbsV(z);
  const V4 tail = ErfcTailV(a);
  V4 y = Select(z < 0.f, tail, 2.f - tail);
  return Select(a < 1.f, 1.f + ErfSmallV(z), y);
}

inline V4 GeluV(V4 x) { return 0.5f * x * OnePlusErfV(x * 0.70710678118654752f); }
// 0.5 x (1 + tanh(u)) == x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
inline V4 GeluTanhV(V4 x) {
  const V4 u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return x * SigmoidV(u + u);
}

// y[i] = f(x[i]) for i < n with a V4 -> V4 functor (tail lanes padded with 0).
template <typename F>
void MapV4(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) Store4(y + i, f(Load4(x + i)));
  if (i < n) {
    V4 v = V4{};
    for (int64_t j = 0; i + j < n; ++j) v[j] = x[i + j];
    v = f(v);
    for (int64_t j = 0; i + j < n; ++j) y[i + j] = v[j];
  }
}

// ---- claim-time helpers (shapes may be symbolic there; only dtypes and constness are known) ----

// dtype of node input i, or TSR_DTYPE_UNDEFINED when omitted.
inline int32_t ClaimInputDType(const tsr_node_view& n, const tsr_graph_view& g, uint32_t i) {
  if (i >= n.num_inputs || n.inputs[i] < 0 || static_cast<uint32_t>(n.inputs[i]) >= g.num_values)
    return TSR_DTYPE_UNDEFINED;
  return g.values[n.inputs[i]].dtype;
}

// True when node input i is omitted or a constant.
inline bool ClaimInputConstOrAbsent(const tsr_node_view& n, const tsr_graph_view& g, uint32_t i) {
  if (i >= n.num_inputs || n.inputs[i] < 0 || static_cast<uint32_t>(n.inputs[i]) >= g.num_values) return true;
  return (g.values[n.inputs[i]].flags & TSR_VALUE_CONSTANT) != 0;
}

// "" when input i's dtype is one of `allowed`, else the reason.
inline std::string ClaimDTypeIn(const tsr_node_view& n, const tsr_graph_view& g, uint32_t i,
                                std::initializer_list<int32_t> allowed) {
  int32_t dt = ClaimInputDType(n, g, i);
  for (int32_t a : allowed)
    if (a == dt) return "";
  std::string r = std::string("CPU ") + n.op_type + " does not support " + plugin::DTypeName(dt) + " (supports";
  for (int32_t a : allowed) {
    r += ' ';
    r += plugin::DTypeName(a);
  }
  r += ')';
  return r;
}

// "" when input i has a fixed-size dtype (data movement by element size).
inline std::string ClaimFixedSize(const tsr_node_view& n, const tsr_graph_view& g, uint32_t i) {
  int32_t dt = ClaimInputDType(n, g, i);
  if (plugin::DTypeSize(dt) != 0) return "";
  return std::string("CPU ") + n.op_type + " does not support " + plugin::DTypeName(dt);
}

// "" when inputs [first, last] are constants or omitted, else which one is not.
inline std::string ClaimConstInputs(const tsr_node_view& n, const tsr_graph_view& g, uint32_t first, uint32_t last) {
  for (uint32_t i = first; i <= last; ++i)
    if (!ClaimInputConstOrAbsent(n, g, i))
      return std::string("CPU ") + n.op_type + " needs input " + std::to_string(i) + " to be a constant";
  return "";
}

}  // namespace tessera::cpu
