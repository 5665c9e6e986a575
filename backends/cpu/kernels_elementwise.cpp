// Elementwise CPU kernels: broadcasting binary arithmetic and comparisons,
// logical ops, unary math/activations, variadic Max/Min/Sum/Mean, Where,
// Cast/CastLike, Identity and inference-mode Dropout. Bool tensors are one
// byte per element (0 = false; any other value reads as true; kernels write
// 0 or 1). Exp, Sigmoid, Tanh, Erf and Gelu use the SIMD approximations of
// broadcast.h (relative error < 1e-6); the other float functions call libm.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

constexpr int64_t kCheapGrain = 32768;    // elements per task for trivial ops
constexpr int64_t kMathGrain = 4096;      // for exp/erf/tanh-class ops

const char* DT(int32_t dt) { return plugin::DTypeName(dt); }

// ---- f16 / bf16 conversions (round to nearest even; NaN stays NaN) -----------------

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t FloatToHalf(float f) {
  uint32_t x = FloatBits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u)  // inf / NaN (keep a quiet NaN payload bit)
    return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (ax < 0x38800000u) {
    // Result is a half subnormal or zero: adding 0.5f aligns the half
    // subnormal's LSB with the float's LSB, and the FPU rounds to nearest even.
    float r = BitsFloat(ax) + 0.5f;
    return static_cast<uint16_t>(sign | (FloatBits(r) - 0x3f000000u));
  }
  uint32_t odd = (ax >> 13) & 1u;
  ax += 0xc8000fffu + odd;  // rebias exponent (-112 << 23, mod 2^32) and round
  return static_cast<uint16_t>(sign | (ax >> 13));
}

inline float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // mant * 2^-24
    return BitsFloat(FloatBits(v) | sign);
  }
  if (exp == 31) return BitsFloat(sign | 0x7f800000u | (mant << 13));
  return BitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t FloatToBF16(float f) {
  uint32_t x = FloatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
inline float BF16ToFloat(uint16_t b) { return BitsFloat(static_cast<uint32_t>(b) << 16); }

// ---- dtype groups ------------------------------------------------------------------------

bool IsArith(int32_t dt) { return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_I32 || dt == TSR_DTYPE_I64; }

std::string ClaimF32(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32}); }
std::string ClaimArith(const tsr_node_view& n, const tsr_graph_view& g) {
  return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32, TSR_DTYPE_I32, TSR_DTYPE_I64});
}
std::string ClaimCompare(const tsr_node_view& n, const tsr_graph_view& g) {
  return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32, TSR_DTYPE_I32, TSR_DTYPE_I64, TSR_DTYPE_BOOL});
}
std::string ClaimBool(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_BOOL}); }
std::string ClaimData0(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimFixedSize(n, g, 0); }
std::string ClaimWhere(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimFixedSize(n, g, 1); }
constexpr std::initializer_list<int32_t> kCastTypes = {TSR_DTYPE_F32, TSR_DTYPE_F64, TSR_DTYPE_F16, TSR_DTYPE_BF16,
                                                       TSR_DTYPE_I8,  TSR_DTYPE_U8,  TSR_DTYPE_I16, TSR_DTYPE_I32,
                                                       TSR_DTYPE_I64, TSR_DTYPE_BOOL};
std::string ClaimCast(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimDTypeIn(n, g, 0, kCastTypes);
  if (!r.empty()) return r;
  int32_t to = static_cast<int32_t>(plugin::NodeAttrs(n).Int("to", 0));
  if (std::string(n.op_type) == "CastLike") to = ClaimInputDType(n, g, 1);
  for (int32_t t : kCastTypes)
    if (t == to) return "";
  return std::string("CPU cast to ") + DT(to) + " is not supported";
}

// ---- binary arithmetic -------------------------------------------------------------------

// Integer ops wrap on overflow (computed in the unsigned type) instead of UB.
template <typename T>
using Unsigned = std::make_unsigned_t<T>;

template <typename T>
struct AddOp {
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<Unsigned<T>>(a) + static_cast<Unsigned<T>>(b));
    else return a + b;
  }
};
template <typename T>
struct SubOp {
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<Unsigned<T>>(a) - static_cast<Unsigned<T>>(b));
    else return a - b;
  }
};
template <typename T>
struct MulOp {
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<Unsigned<T>>(a) * static_cast<Unsigned<T>>(b));
    else return a * b;
  }
};
// Integer division truncates toward zero; the divisor was checked for zero
// before the loop, and MIN / -1 wraps to MIN (x86 would trap).
template <typename T>
struct DivOp {
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if (b == -1) return static_cast<T>(Unsigned<T>{0} - static_cast<Unsigned<T>>(a));
      return a / b;
    } else {
      return a / b;
    }
  }
};
template <typename T>
struct MaxOp {
  T operator()(T a, T b) const { return a < b ? b : a; }
};
template <typename T>
struct MinOp {
  T operator()(T a, T b) const { return b < a ? b : a; }
};

template <template <typename> class OpT>
Err CreateArith(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &a = *args.inputs[0], &b = *args.inputs[1], &y = *args.outputs[0];
  if (!IsArith(a.dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (f32, i32, i64)", args.Describe().c_str(), DT(a.dtype));
  if (b.dtype != a.dtype || y.dtype != a.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input/output dtypes differ (%s, %s -> %s)", args.Describe().c_str(),
                   DT(a.dtype), DT(b.dtype), DT(y.dtype));
  Broadcast bc;
  std::string why = MakeBroadcast(y.dims, {&a.dims, &b.dims}, &bc);
  if (!why.empty()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), why.c_str());
  constexpr bool kIsDiv = std::is_same_v<OpT<int32_t>, DivOp<int32_t>>;
  std::string desc = args.Describe();
  auto make = [&](auto tag) {
    using T = decltype(tag);
    const int64_t nb = b.numel;
    *out = MakeFnKernel([bc, nb, desc](const void* const* in, void* const* o) -> Err {
      const T* pa = static_cast<const T*>(in[0]);
      const T* pb = static_cast<const T*>(in[1]);
      if constexpr (kIsDiv && std::is_integral_v<T>) {
        for (int64_t i = 0; i < nb; ++i)
          if (pb[i] == 0)
            return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: integer division by zero (divisor element %lld)",
                           desc.c_str(), static_cast<long long>(i));
      }
      BroadcastBinary(bc, pa, pb, static_cast<T*>(o[0]), OpT<T>{}, kCheapGrain);
      return Err::Ok();
    });
  };
  switch (a.dtype) {
    case TSR_DTYPE_F32: make(float{}); break;
    case TSR_DTYPE_I32: make(int32_t{}); break;
    default: make(int64_t{}); break;
  }
  return Err::Ok();
}

// Pow: f32 base; f32, i32 or i64 exponent. A row-constant exponent of 2 or 1
// (the common decomposed-norm case) skips std::pow.
Err CreatePow(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &a = *args.inputs[0], &b = *args.inputs[1], &y = *args.outputs[0];
  if (a.dtype != TSR_DTYPE_F32 || y.dtype != TSR_DTYPE_F32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: base must be f32, got %s", args.Describe().c_str(), DT(a.dtype));
  if (b.dtype != TSR_DTYPE_F32 && b.dtype != TSR_DTYPE_I64 && b.dtype != TSR_DTYPE_I32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: exponent must be f32, i32 or i64, got %s", args.Describe().c_str(),
                   DT(b.dtype));
  Broadcast bc;
  std::string why = MakeBroadcast(y.dims, {&a.dims, &b.dims}, &bc);
  if (!why.empty()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), why.c_str());
  auto make = [&](auto tag) {
    using E = decltype(tag);
    *out = MakeFnKernel([bc](const void* const* in, void* const* o) -> Err {
      const float* pa = static_cast<const float*>(in[0]);
      const E* pb = static_cast<const E*>(in[1]);
      float* py = static_cast<float*>(o[0]);
      const int64_t sa = bc.inner_stride(0), sb = bc.inner_stride(1);
      ForEachRun(bc, kMathGrain, [&](int64_t yo, const int64_t* off, int64_t n) {
        const float* x = pa + off[0];
        const E* p = pb + off[1];
        float* yy = py + yo;
        if (!sb) {
          const float pv = static_cast<float>(*p);
          if (!sa) {
            std::fill(yy, yy + n, std::pow(*x, pv));
          } else if (pv == 2.f) {
            for (int64_t i = 0; i < n; ++i) yy[i] = x[i] * x[i];
          } else if (pv == 1.f) {
            std::copy(x, x + n, yy);
          } else {
            for (int64_t i = 0; i < n; ++i) yy[i] = std::pow(x[i], pv);
          }
        } else {
          for (int64_t i = 0; i < n; ++i) yy[i] = std::pow(x[sa * i], static_cast<float>(p[i]));
        }
      });
      return Err::Ok();
    });
  };
  switch (b.dtype) {
    case TSR_DTYPE_F32: make(float{}); break;
    case TSR_DTYPE_I32: make(int32_t{}); break;
    default: make(int64_t{}); break;
  }
  return Err::Ok();
}

// ---- comparisons and logic ------------------------------------------------------------------

template <typename T> struct EqOp { uint8_t operator()(T a, T b) const { return a == b; } };
template <typename T> struct GtOp { uint8_t operator()(T a, T b) const { return a > b; } };
template <typename T> struct GeOp { uint8_t operator()(T a, T b) const { return a >= b; } };
template <typename T> struct LtOp { uint8_t operator()(T a, T b) const { return a < b; } };
template <typename T> struct LeOp { uint8_t operator()(T a, T b) const { return a <= b; } };

template <template <typename> class OpT>
Err CreateCompare(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &a = *args.inputs[0], &b = *args.inputs[1], &y = *args.outputs[0];
  if (!IsArith(a.dtype) && a.dtype != TSR_DTYPE_BOOL)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (f32, i32, i64, bool)", args.Describe().c_str(),
                   DT(a.dtype));
  if (b.dtype != a.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input dtypes differ (%s vs %s)", args.Describe().c_str(), DT(a.dtype),
                   DT(b.dtype));
  if (y.dtype != TSR_DTYPE_BOOL)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output must be bool, got %s", args.Describe().c_str(), DT(y.dtype));
  Broadcast bc;
  std::string why = MakeBroadcast(y.dims, {&a.dims, &b.dims}, &bc);
  if (!why.empty()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), why.c_str());
  auto make = [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([bc](const void* const* in, void* const* o) -> Err {
      if constexpr (std::is_same_v<T, bool>) {  // compare truth values, not raw bytes
        BroadcastBinary(bc, static_cast<const uint8_t*>(in[0]), static_cast<const uint8_t*>(in[1]),
                        static_cast<uint8_t*>(o[0]),
                        [](uint8_t x, uint8_t y) { return OpT<uint8_t>{}(x != 0, y != 0); }, kCheapGrain);
      } else {
        BroadcastBinary(bc, static_cast<const T*>(in[0]), static_cast<const T*>(in[1]), static_cast<uint8_t*>(o[0]),
                        OpT<T>{}, kCheapGrain);
      }
      return Err::Ok();
    });
  };
  switch (a.dtype) {
    case TSR_DTYPE_F32: make(float{}); break;
    case TSR_DTYPE_I32: make(int32_t{}); break;
    case TSR_DTYPE_I64: make(int64_t{}); break;
    default: make(bool{}); break;
  }
  return Err::Ok();
}

struct AndOp { uint8_t operator()(uint8_t a, uint8_t b) const { return (a != 0) & (b != 0); } };
struct OrOp { uint8_t operator()(uint8_t a, uint8_t b) const { return (a != 0) | (b != 0); } };
struct XorOp { uint8_t operator()(uint8_t a, uint8_t b) const { return (a != 0) ^ (b != 0); } };

template <typename Op>
Err CreateLogical(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &a = *args.inputs[0], &b = *args.inputs[1], &y = *args.outputs[0];
  if (a.dtype != TSR_DTYPE_BOOL || b.dtype != TSR_DTYPE_BOOL || y.dtype != TSR_DTYPE_BOOL)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inputs and output must be bool (got %s, %s -> %s)",
                   args.Describe().c_str(), DT(a.dtype), DT(b.dtype), DT(y.dtype));
  Broadcast bc;
  std::string why = MakeBroadcast(y.dims, {&a.dims, &b.dims}, &bc);
  if (!why.empty()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), why.c_str());
  *out = MakeFnKernel([bc](const void* const* in, void* const* o) -> Err {
    BroadcastBinary(bc, static_cast<const uint8_t*>(in[0]), static_cast<const uint8_t*>(in[1]),
                    static_cast<uint8_t*>(o[0]), Op{}, kCheapGrain);
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- variadic Max / Min ---------------------------------------------------------------------

// Max, Min, Sum and Mean (kMean: Sum, then divide by the input count; f32 only).
template <template <typename> class OpT, bool kMean = false>
Err CreateVariadic(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1u << 20, 1, 1);
  if (!e.ok()) return e;
  const TensorArg& y = *args.outputs[0];
  if (kMean ? y.dtype != TSR_DTYPE_F32 : !IsArith(y.dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (%s)", args.Describe().c_str(), DT(y.dtype),
                   kMean ? "f32" : "f32, i32, i64");
  // Plan: out = broadcast(in0); then out = op(out, in_k) for k >= 1 in place.
  std::vector<Broadcast> plans(args.inputs.size());
  for (size_t k = 0; k < args.inputs.size(); ++k) {
    const TensorArg* t = args.inputs[k];
    if (!t) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is missing", args.Describe().c_str(), k);
    if (t->dtype != y.dtype)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu dtype %s differs from output %s", args.Describe().c_str(),
                     k, DT(t->dtype), DT(y.dtype));
    std::string why = k == 0 ? MakeBroadcast(y.dims, {&t->dims}, &plans[k])
                             : MakeBroadcast(y.dims, {&y.dims, &t->dims}, &plans[k]);
    if (!why.empty()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu: %s", args.Describe().c_str(), k, why.c_str());
  }
  auto make = [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([plans](const void* const* in, void* const* o) -> Err {
      T* py = static_cast<T*>(o[0]);
      BroadcastCopy(plans[0], static_cast<const T*>(in[0]), py);
      for (size_t k = 1; k < plans.size(); ++k)
        BroadcastBinary(plans[k], static_cast<const T*>(py), static_cast<const T*>(in[k]), py, OpT<T>{}, kCheapGrain);
      if constexpr (kMean && std::is_same_v<T, float>) {
        const float inv = 1.f / static_cast<float>(plans.size());
        const int64_t n = plans[0].numel;
        ParallelFor(n, kCheapGrain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) py[i] *= inv;
        });
      }
      return Err::Ok();
    });
  };
  switch (y.dtype) {
    case TSR_DTYPE_F32: make(float{}); break;
    case TSR_DTYPE_I32: make(int32_t{}); break;
    default: make(int64_t{}); break;
  }
  return Err::Ok();
}

// ---- unary ------------------------------------------------------------------------------------

template <typename T, typename Op>
std::unique_ptr<Kernel> MakeUnary(int64_t n, Op op, int64_t grain) {
  return MakeFnKernel([n, op, grain](const void* const* in, void* const* o) -> Err {
    const T* x = static_cast<const T*>(in[0]);
    T* y = static_cast<T*>(o[0]);
    ParallelFor(n, grain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) y[i] = op(x[i]);
    });
    return Err::Ok();
  });
}

Err CheckUnary(const NodeArgs& args, bool f32_only, size_t max_in = 1) {
  Err e = CheckArity(args, 1, max_in, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (f32_only ? x.dtype != TSR_DTYPE_F32 : !IsArith(x.dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (%s)", args.Describe().c_str(), DT(x.dtype),
                   f32_only ? "f32" : "f32, i32, i64");
  if (y.dtype != x.dtype || y.numel != x.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not match input %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  return Err::Ok();
}

// Parameterless f32 functions.
struct SqrtF { float operator()(float x) const { return std::sqrt(x); } };
struct LogF { float operator()(float x) const { return std::log(x); } };
struct ReciprocalF { float operator()(float x) const { return 1.f / x; } };
struct FloorF { float operator()(float x) const { return std::floor(x); } };
struct CeilF { float operator()(float x) const { return std::ceil(x); } };
struct HardSwishF {
  float operator()(float x) const { return x * std::min(1.f, std::max(0.f, x * (1.f / 6.f) + 0.5f)); }
};
// log(1 + e^x) without overflow for large x.
inline float Softplus(float x) { return x > 0.f ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
struct SoftplusF { float operator()(float x) const { return Softplus(x); } };
struct MishF { float operator()(float x) const { return x * std::tanh(Softplus(x)); } };

template <typename F>
Err CreateMathF32(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckUnary(args, true);
  if (!e.ok()) return e;
  *out = MakeUnary<float>(args.inputs[0]->numel, F{}, kMathGrain);
  return Err::Ok();
}

// f32 ops with a SIMD implementation (broadcast.h): V4 -> V4 functors.
template <typename F>
std::unique_ptr<Kernel> MakeUnaryV(int64_t n, F f) {
  return MakeFnKernel([n, f](const void* const* in, void* const* o) -> Err {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(o[0]);
    ParallelFor(n, kMathGrain, [&](int64_t b, int64_t e) { MapV4(x + b, y + b, e - b, f); });
    return Err::Ok();
  });
}

struct ExpV4 { V4 operator()(V4 x) const { return ExpV(x); } };
struct SigmoidV4 { V4 operator()(V4 x) const { return SigmoidV(x); } };
struct TanhV4 { V4 operator()(V4 x) const { return TanhV(x); } };
struct ErfV4 { V4 operator()(V4 x) const { return ErfV(x); } };

template <typename F>
Err CreateVecF32(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckUnary(args, true);
  if (!e.ok()) return e;
  *out = MakeUnaryV(args.inputs[0]->numel, F{});
  return Err::Ok();
}

// f32 / i32 / i64 ops.
template <typename T> struct NegOp {
  T operator()(T x) const {
    if constexpr (std::is_integral_v<T>) return static_cast<T>(Unsigned<T>{0} - static_cast<Unsigned<T>>(x));
    else return -x;
  }
};
template <typename T> struct AbsOp {
  T operator()(T x) const {
    if constexpr (std::is_integral_v<T>) return x < 0 ? NegOp<T>{}(x) : x;
    else return std::fabs(x);
  }
};
template <typename T> struct SignOp {
  T operator()(T x) const { return static_cast<T>((x > T(0)) - (x < T(0))); }
};
template <typename T> struct ReluOp {
  T operator()(T x) const { return x > T(0) ? x : T(0); }
};

template <template <typename> class OpT>
Err CreateNumericUnary(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckUnary(args, false);
  if (!e.ok()) return e;
  int64_t n = args.inputs[0]->numel;
  switch (args.inputs[0]->dtype) {
    case TSR_DTYPE_F32: *out = MakeUnary<float>(n, OpT<float>{}, kCheapGrain); break;
    case TSR_DTYPE_I32: *out = MakeUnary<int32_t>(n, OpT<int32_t>{}, kCheapGrain); break;
    default: *out = MakeUnary<int64_t>(n, OpT<int64_t>{}, kCheapGrain); break;
  }
  return Err::Ok();
}

Err CreateLeakyRelu(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckUnary(args, true);
  if (!e.ok()) return e;
  float alpha = args.attrs().Float("alpha", 0.01f);
  *out = MakeUnary<float>(args.inputs[0]->numel, [alpha](float x) { return x >= 0.f ? x : alpha * x; }, kCheapGrain);
  return Err::Ok();
}

Err CreateElu(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckUnary(args, true);
  if (!e.ok()) return e;
  float alpha = args.attrs().Float("alpha", 1.f);
  *out = MakeUnary<float>(args.inputs[0]->numel, [alpha](float x) { return x >= 0.f ? x : alpha * std::expm1(x); },
                          kMathGrain);
  return Err::Ok();
}

Err CreateHardSigmoid(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckUnary(args, true);
  if (!e.ok()) return e;
  float alpha = args.attrs().Float("alpha", 0.2f), beta = args.attrs().Float("beta", 0.5f);
  *out = MakeUnary<float>(args.inputs[0]->numel,
                          [alpha, beta](float x) { return std::min(1.f, std::max(0.f, alpha * x + beta)); }, kCheapGrain);
  return Err::Ok();
}

Err CreateGelu(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckUnary(args, true);
  if (!e.ok()) return e;
  std::string approx = args.attrs().String("approximate", "none");
  int64_t n = args.inputs[0]->numel;
  if (approx == "none") {
    *out = MakeUnaryV(n, [](V4 x) { return GeluV(x); });
  } else if (approx == "tanh") {
    *out = MakeUnaryV(n, [](V4 x) { return GeluTanhV(x); });
  } else {
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: approximate must be 'none' or 'tanh', got '%s'",
                   args.Describe().c_str(), approx.c_str());
  }
  return Err::Ok();
}

// Clip: bounds from attributes (opset < 11, f32) or optional scalar inputs 1
// and 2 (constant: read once; otherwise read at run time).
Err CreateClip(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckUnary(args, false, 3);
  if (!e.ok()) return e;
  const int32_t dt = args.inputs[0]->dtype;
  const int64_t n = args.inputs[0]->numel;
  for (size_t i = 1; i < 3; ++i) {
    if (!args.has_input(i)) continue;
    const TensorArg& t = *args.inputs[i];
    if (t.dtype != dt || t.numel != 1)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s must be a %s scalar, got %s with %lld elements",
                     args.Describe().c_str(), i == 1 ? "min" : "max", DT(dt), DT(t.dtype),
                     static_cast<long long>(t.numel));
  }
  if (args.node->opset < 11) {
    if (dt != TSR_DTYPE_F32)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: opset %lld Clip supports f32 only", args.Describe().c_str(),
                     static_cast<long long>(args.node->opset));
    float lo = args.attrs().Float("min", -std::numeric_limits<float>::max());
    float hi = args.attrs().Float("max", std::numeric_limits<float>::max());
    *out = MakeUnary<float>(n, [lo, hi](float x) { return std::min(std::max(x, lo), hi); }, kCheapGrain);
    return Err::Ok();
  }
  bool has_lo = args.has_input(1), has_hi = args.has_input(2);
  auto make = [&](auto tag) {
    using T = decltype(tag);
    T lo0 = std::numeric_limits<T>::lowest(), hi0 = std::numeric_limits<T>::max();
    *out = MakeFnKernel([n, has_lo, has_hi, lo0, hi0](const void* const* in, void* const* o) -> Err {
      const T lo = has_lo ? *static_cast<const T*>(in[1]) : lo0;
      const T hi = has_hi ? *static_cast<const T*>(in[2]) : hi0;
      const T* x = static_cast<const T*>(in[0]);
      T* y = static_cast<T*>(o[0]);
      ParallelFor(n, kCheapGrain, [&](int64_t b, int64_t en) {
        for (int64_t i = b; i < en; ++i) y[i] = std::min(std::max(x[i], lo), hi);
      });
      return Err::Ok();
    });
  };
  switch (dt) {
    case TSR_DTYPE_F32: make(float{}); break;
    case TSR_DTYPE_I32: make(int32_t{}); break;
    default: make(int64_t{}); break;
  }
  return Err::Ok();
}

Err CreateNot(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  if (args.inputs[0]->dtype != TSR_DTYPE_BOOL || args.outputs[0]->dtype != TSR_DTYPE_BOOL)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input and output must be bool, got %s -> %s", args.Describe().c_str(),
                   DT(args.inputs[0]->dtype), DT(args.outputs[0]->dtype));
  *out = MakeUnary<uint8_t>(args.inputs[0]->numel, [](uint8_t x) -> uint8_t { return x == 0; }, kCheapGrain);
  return Err::Ok();
}

// ---- Where --------------------------------------------------------------------------------------

template <typename T>
void RunWhere(const Broadcast& bc, const uint8_t* c, const T* x, const T* yv, T* out) {
  const int64_t sc = bc.inner_stride(0), sx = bc.inner_stride(1), sy = bc.inner_stride(2);
  ForEachRun(bc, kCheapGrain, [&](int64_t oo, const int64_t* off, int64_t n) {
    const uint8_t* pc = c + off[0];
    const T* px = x + off[1];
    const T* py = yv + off[2];
    T* po = out + oo;
    if (sc && sx && sy) {
      for (int64_t i = 0; i < n; ++i) po[i] = pc[i] ? px[i] : py[i];
    } else {
      for (int64_t i = 0; i < n; ++i) po[i] = pc[sc * i] ? px[sx * i] : py[sy * i];
    }
  });
}

Err CreateWhere(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 3, 3, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &c = *args.inputs[0], &x = *args.inputs[1], &yv = *args.inputs[2], &o = *args.outputs[0];
  if (c.dtype != TSR_DTYPE_BOOL)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: condition must be bool, got %s", args.Describe().c_str(), DT(c.dtype));
  if (x.dtype != yv.dtype || o.dtype != x.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: X, Y and output dtypes differ (%s, %s -> %s)", args.Describe().c_str(),
                   DT(x.dtype), DT(yv.dtype), DT(o.dtype));
  Broadcast bc;
  std::string why = MakeBroadcast(o.dims, {&c.dims, &x.dims, &yv.dims}, &bc);
  if (!why.empty()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), why.c_str());
  auto make = [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([bc](const void* const* in, void* const* op) -> Err {
      RunWhere(bc, static_cast<const uint8_t*>(in[0]), static_cast<const T*>(in[1]), static_cast<const T*>(in[2]),
               static_cast<T*>(op[0]));
      return Err::Ok();
    });
  };
  switch (x.elem_size()) {
    case 1: make(uint8_t{}); break;
    case 2: make(uint16_t{}); break;
    case 4: make(uint32_t{}); break;
    case 8: make(uint64_t{}); break;
    default:
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported", args.Describe().c_str(), DT(x.dtype));
  }
  return Err::Ok();
}

// ---- Cast -----------------------------------------------------------------------------------------

// Storage wrappers so f16/bf16/bool get their own conversion rules.
struct Half { uint16_t bits; };
struct BF16 { uint16_t bits; };
struct Bool8 { uint8_t v; };

template <typename S>
inline auto Decode(S s) {
  if constexpr (std::is_same_v<S, Half>) return HalfToFloat(s.bits);
  else if constexpr (std::is_same_v<S, BF16>) return BF16ToFloat(s.bits);
  else if constexpr (std::is_same_v<S, Bool8>) return static_cast<uint8_t>(s.v != 0);
  else return s;
}

// float -> integer: truncate toward zero, saturate out-of-range values, NaN -> 0
// (ONNX leaves these undefined; this keeps them defined in C++).
template <typename D, typename F>
inline D FloatToInt(F f) {
  if (!(f == f)) return D(0);
  constexpr F lo = static_cast<F>(std::numeric_limits<D>::lowest());
  constexpr F hi = static_cast<F>(std::numeric_limits<D>::max());
  if (f <= lo) return std::numeric_limits<D>::lowest();
  if (f >= hi) return std::numeric_limits<D>::max();
  return static_cast<D>(f);
}

template <typename D, typename S>
inline D Convert(S s) {
  auto v = Decode(s);  // float, double, an integer, or uint8_t 0/1 for bool
  using V = decltype(v);
  if constexpr (std::is_same_v<D, Half>) return Half{FloatToHalf(static_cast<float>(v))};
  else if constexpr (std::is_same_v<D, BF16>) return BF16{FloatToBF16(static_cast<float>(v))};
  else if constexpr (std::is_same_v<D, Bool8>) return Bool8{static_cast<uint8_t>(v != V(0))};
  else if constexpr (std::is_floating_point_v<V> && std::is_integral_v<D>) return FloatToInt<D>(v);
  else return static_cast<D>(v);
}

template <typename S, typename D>
std::unique_ptr<Kernel> MakeCast(int64_t n) {
  return MakeFnKernel([n](const void* const* in, void* const* o) -> Err {
    const S* x = static_cast<const S*>(in[0]);
    D* y = static_cast<D*>(o[0]);
    ParallelFor(n, kCheapGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) y[i] = Convert<D>(x[i]);
    });
    return Err::Ok();
  });
}

template <typename S>
bool MakeCastTo(int32_t to, int64_t n, std::unique_ptr<Kernel>* out) {
  switch (to) {
    case TSR_DTYPE_F32: *out = MakeCast<S, float>(n); return true;
    case TSR_DTYPE_F64: *out = MakeCast<S, double>(n); return true;
    case TSR_DTYPE_F16: *out = MakeCast<S, Half>(n); return true;
    case TSR_DTYPE_BF16: *out = MakeCast<S, BF16>(n); return true;
    case TSR_DTYPE_I8: *out = MakeCast<S, int8_t>(n); return true;
    case TSR_DTYPE_U8: *out = MakeCast<S, uint8_t>(n); return true;
    case TSR_DTYPE_I16: *out = MakeCast<S, int16_t>(n); return true;
    case TSR_DTYPE_I32: *out = MakeCast<S, int32_t>(n); return true;
    case TSR_DTYPE_I64: *out = MakeCast<S, int64_t>(n); return true;
    case TSR_DTYPE_BOOL: *out = MakeCast<S, Bool8>(n); return true;
    default: return false;
  }
}

bool MakeCastFrom(int32_t from, int32_t to, int64_t n, std::unique_ptr<Kernel>* out) {
  switch (from) {
    case TSR_DTYPE_F32: return MakeCastTo<float>(to, n, out);
    case TSR_DTYPE_F64: return MakeCastTo<double>(to, n, out);
    case TSR_DTYPE_F16: return MakeCastTo<Half>(to, n, out);
    case TSR_DTYPE_BF16: return MakeCastTo<BF16>(to, n, out);
    case TSR_DTYPE_I8: return MakeCastTo<int8_t>(to, n, out);
    case TSR_DTYPE_U8: return MakeCastTo<uint8_t>(to, n, out);
    case TSR_DTYPE_I16: return MakeCastTo<int16_t>(to, n, out);
    case TSR_DTYPE_I32: return MakeCastTo<int32_t>(to, n, out);
    case TSR_DTYPE_I64: return MakeCastTo<int64_t>(to, n, out);
    case TSR_DTYPE_BOOL: return MakeCastTo<Bool8>(to, n, out);
    default: return false;
  }
}

std::unique_ptr<Kernel> MakeCopy(int64_t nbytes) {
  return MakeFnKernel([nbytes](const void* const* in, void* const* o) -> Err {
    if (in[0] != o[0] && nbytes > 0) std::memcpy(o[0], in[0], static_cast<size_t>(nbytes));
    return Err::Ok();
  });
}

Err CastTo(const NodeArgs& args, int32_t to, std::unique_ptr<Kernel>* out) {
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (y.dtype != to || y.numel != x.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not match target %s and input shape %s",
                   args.Describe().c_str(), DT(y.dtype), DimsToString(y.dims).c_str(), DT(to),
                   DimsToString(x.dims).c_str());
  if (x.dtype == to && x.elem_size() > 0) {
    *out = MakeCopy(x.nbytes());
    return Err::Ok();
  }
  if (!MakeCastFrom(x.dtype, to, x.numel, out))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: cast %s -> %s not supported", args.Describe().c_str(), DT(x.dtype), DT(to));
  return Err::Ok();
}

Err CreateCast(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  if (!args.attrs().Has("to"))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: missing attribute 'to'", args.Describe().c_str());
  return CastTo(args, static_cast<int32_t>(args.attrs().Int("to", 0)), out);
}

// CastLike(input, target_type): the target's dtype is the output dtype.
Err CreateCastLike(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  return CastTo(args, args.inputs[1]->dtype, out);
}

// ---- Identity / Dropout -------------------------------------------------------------------------

Err CreateIdentity(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (x.dtype != y.dtype || x.numel != y.numel || x.elem_size() == 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not match input %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  *out = MakeCopy(x.nbytes());
  return Err::Ok();
}

// Inference-mode Dropout: output = input, optional mask = all true. A
// training_mode input that is true fails (constant: at compile; else at run).
Err CreateDropout(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 3, 1, 2);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (x.dtype != y.dtype || x.numel != y.numel || x.elem_size() == 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not match input %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  const TensorArg* mask = args.outputs.size() > 1 ? args.outputs[1] : nullptr;
  if (mask && (mask->dtype != TSR_DTYPE_BOOL || mask->numel != x.numel))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: mask output must be bool with the input's shape", args.Describe().c_str());
  bool check_training = false;
  if (args.has_input(2)) {
    const TensorArg& tm = *args.inputs[2];
    if (tm.dtype != TSR_DTYPE_BOOL || tm.numel != 1)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: training_mode must be a bool scalar", args.Describe().c_str());
    if (tm.const_data) {
      if (*static_cast<const uint8_t*>(tm.const_data))
        return MakeErr(TSR_ERR_UNSUPPORTED, "%s: training_mode=true is not supported (inference only)",
                       args.Describe().c_str());
    } else {
      check_training = true;
    }
  }
  if (args.node->opset < 7 && args.attrs().Int("is_test", 0) == 0)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: is_test=0 (training) is not supported", args.Describe().c_str());
  const int64_t nbytes = x.nbytes(), n = x.numel;
  const bool has_mask = mask != nullptr;
  std::string desc = args.Describe();
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    if (check_training && *static_cast<const uint8_t*>(in[2]))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: training_mode=true is not supported (inference only)", desc.c_str());
    if (in[0] != o[0] && nbytes > 0) std::memcpy(o[0], in[0], static_cast<size_t>(nbytes));
    if (has_mask && o[1]) std::memset(o[1], 1, static_cast<size_t>(n));
    return Err::Ok();
  });
  return Err::Ok();
}

}  // namespace

void RegisterElementwiseKernels(KernelRegistry& r) {
  r.Add({"", "Add", &CreateArith<AddOp>, &ClaimArith});
  r.Add({"", "Sub", &CreateArith<SubOp>, &ClaimArith});
  r.Add({"", "Mul", &CreateArith<MulOp>, &ClaimArith});
  r.Add({"", "Div", &CreateArith<DivOp>, &ClaimArith});
  r.Add({"", "Pow", &CreatePow, &ClaimF32});
  r.Add({"", "Max", &CreateVariadic<MaxOp>, &ClaimArith});
  r.Add({"", "Min", &CreateVariadic<MinOp>, &ClaimArith});
  r.Add({"", "Sum", &CreateVariadic<AddOp>, &ClaimArith});
  r.Add({"", "Mean", &CreateVariadic<AddOp, true>, &ClaimF32});

  r.Add({"", "Equal", &CreateCompare<EqOp>, &ClaimCompare});
  r.Add({"", "Greater", &CreateCompare<GtOp>, &ClaimCompare});
  r.Add({"", "GreaterOrEqual", &CreateCompare<GeOp>, &ClaimCompare});
  r.Add({"", "Less", &CreateCompare<LtOp>, &ClaimCompare});
  r.Add({"", "LessOrEqual", &CreateCompare<LeOp>, &ClaimCompare});
  r.Add({"", "And", &CreateLogical<AndOp>, &ClaimBool});
  r.Add({"", "Or", &CreateLogical<OrOp>, &ClaimBool});
  r.Add({"", "Xor", &CreateLogical<XorOp>, &ClaimBool});
  r.Add({"", "Not", &CreateNot, &ClaimBool});

  r.Add({"", "Sqrt", &CreateMathF32<SqrtF>, &ClaimF32});
  r.Add({"", "Exp", &CreateVecF32<ExpV4>, &ClaimF32});
  r.Add({"", "Log", &CreateMathF32<LogF>, &ClaimF32});
  r.Add({"", "Erf", &CreateVecF32<ErfV4>, &ClaimF32});
  r.Add({"", "Tanh", &CreateVecF32<TanhV4>, &ClaimF32});
  r.Add({"", "Sigmoid", &CreateVecF32<SigmoidV4>, &ClaimF32});
  r.Add({"", "Reciprocal", &CreateMathF32<ReciprocalF>, &ClaimF32});
  r.Add({"", "Floor", &CreateMathF32<FloorF>, &ClaimF32});
  r.Add({"", "Ceil", &CreateMathF32<CeilF>, &ClaimF32});
  r.Add({"", "HardSwish", &CreateMathF32<HardSwishF>, &ClaimF32});
  r.Add({"", "Softplus", &CreateMathF32<SoftplusF>, &ClaimF32});
  r.Add({"", "Mish", &CreateMathF32<MishF>, &ClaimF32});
  r.Add({"", "Relu", &CreateNumericUnary<ReluOp>, &ClaimArith});
  r.Add({"", "Neg", &CreateNumericUnary<NegOp>, &ClaimArith});
  r.Add({"", "Abs", &CreateNumericUnary<AbsOp>, &ClaimArith});
  r.Add({"", "Sign", &CreateNumericUnary<SignOp>, &ClaimArith});
  r.Add({"", "LeakyRelu", &CreateLeakyRelu, &ClaimF32});
  r.Add({"", "Elu", &CreateElu, &ClaimF32});
  r.Add({"", "HardSigmoid", &CreateHardSigmoid, &ClaimF32});
  r.Add({"", "Gelu", &CreateGelu, &ClaimF32});
  r.Add({"tessera", "Gelu", &CreateGelu, &ClaimF32});
  r.Add({"", "Clip", &CreateClip, &ClaimArith});

  r.Add({"", "Where", &CreateWhere, &ClaimWhere});
  r.Add({"", "Cast", &CreateCast, &ClaimCast});
  r.Add({"", "CastLike", &CreateCastLike, &ClaimCast});
  r.Add({"", "Identity", &CreateIdentity, &ClaimData0});
  r.Add({"", "Dropout", &CreateDropout, &ClaimData0});
}

}  // namespace tessera::cpu
