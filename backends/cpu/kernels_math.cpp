// CPU kernels: elementwise math over every ONNX numeric dtype (i8..i64,
// u8..u64, f16, bf16, f32, f64): broadcasting arithmetic (Add Sub Mul Div Mod
// Pow), comparisons, variadic Max/Min/Sum/Mean, bitwise ops and BitShift,
// unary math (trig, hyperbolic, exp/log family, rounding), activations,
// PRelu, Clip, IsNaN/IsInf and Dropout (inference and training).
//
// These registrations come before kernels_elementwise.cpp's, so for ops both
// files register, the kernels here are the ones used.
//
// f16 and bf16 are stored as their 16-bit patterns and computed in float
// (rounded back after every op, as numpy does); f64 is computed in double.
// Integer arithmetic wraps on overflow (computed in an unsigned type, no UB);
// integer Div/Mod by zero is a run-time error naming the node.
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <type_traits>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/simd.h"

namespace tessera::cpu {
namespace {

constexpr int64_t kCheapGrain = 32768;  // elements per task for trivial ops
constexpr int64_t kMathGrain = 4096;    // for libm-class ops

const char* DT(int32_t dt) { return plugin::DTypeName(dt); }

// ---- storage types and f16 / bf16 conversion (round to nearest even) ------------------------

struct F16 { uint16_t bits; };
struct BF16 { uint16_t bits; };

inline uint32_t FBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsF(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t ToHalfBits(float f) {
  uint32_t x = FBits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u)
    return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (ax < 0x38800000u) {  // half subnormal or zero: the FPU rounds when adding 0.5f
    float r = BitsF(ax) + 0.5f;
    return static_cast<uint16_t>(sign | (FBits(r) - 0x3f000000u));
  }
  uint32_t odd = (ax >> 13) & 1u;
  ax += 0xc8000fffu + odd;
  return static_cast<uint16_t>(sign | (ax >> 13));
}

inline float FromHalfBits(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) return BitsF(FBits(static_cast<float>(mant) * 5.9604644775390625e-8f) | sign);
  if (exp == 31) return BitsF(sign | 0x7f800000u | (mant << 13));
  return BitsF(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t ToBF16Bits(float f) {
  // Branch-free (a select) so loops over it vectorize; a NaN keeps its
  // payload's top bits and becomes quiet.
  const uint32_t x = FBits(f);
  const uint16_t nan = static_cast<uint16_t>((x >> 16) | 0x40u);
  const uint16_t rounded = static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
  return (x & 0x7fffffffu) > 0x7f800000u ? nan : rounded;
}
inline float FromBF16Bits(uint16_t b) { return BitsF(static_cast<uint32_t>(b) << 16); }

template <typename T> struct CalcOf { using type = T; };
template <> struct CalcOf<F16> { using type = float; };
template <> struct CalcOf<BF16> { using type = float; };
// The type a storage type T is computed in.
template <typename T> using Calc = typename CalcOf<T>::type;

template <typename T>
constexpr bool kIsFloat = std::is_floating_point_v<T> || std::is_same_v<T, F16> || std::is_same_v<T, BF16>;

template <typename T>
inline Calc<T> Ld(T v) {
  if constexpr (std::is_same_v<T, F16>) return FromHalfBits(v.bits);
  else if constexpr (std::is_same_v<T, BF16>) return FromBF16Bits(v.bits);
  else return v;
}
template <typename T>
inline T St(Calc<T> v) {
  if constexpr (std::is_same_v<T, F16>) return F16{ToHalfBits(v)};
  else if constexpr (std::is_same_v<T, BF16>) return BF16{ToBF16Bits(v)};
  else return v;
}

// ---- dtype sets and dispatch --------------------------------------------------------------------

enum : unsigned {
  kSInt = 1u,   // i8 i16 i32 i64
  kUInt = 2u,   // u8 u16 u32 u64
  kFlt = 4u,    // f32 f64 f16 bf16
  kBool = 8u,   // bool (as uint8_t)
  kInt = kSInt | kUInt,
  kSigned = kSInt | kFlt,
  kNum = kInt | kFlt,
};

bool InSet(int32_t dt, unsigned set) {
  switch (dt) {
    case TSR_DTYPE_I8: case TSR_DTYPE_I16: case TSR_DTYPE_I32: case TSR_DTYPE_I64: return set & kSInt;
    case TSR_DTYPE_U8: case TSR_DTYPE_U16: case TSR_DTYPE_U32: case TSR_DTYPE_U64: return set & kUInt;
    case TSR_DTYPE_F32: case TSR_DTYPE_F64: case TSR_DTYPE_F16: case TSR_DTYPE_BF16: return set & kFlt;
    case TSR_DTYPE_BOOL: return set & kBool;
    default: return false;
  }
}

std::string SetNames(unsigned set) {
  std::string s;
  auto add = [&](const char* n) { s += s.empty() ? n : std::string(" ") + n; };
  if (set & kFlt) add("f32 f64 f16 bf16");
  if (set & kSInt) add("i8 i16 i32 i64");
  if (set & kUInt) add("u8 u16 u32 u64");
  if (set & kBool) add("bool");
  return s;
}

// Calls f(T{}) for dtype dt's storage type when dt is in Set; false otherwise.
// Only the types in Set are instantiated.
template <unsigned Set, typename F>
bool Dispatch(int32_t dt, F&& f) {
  switch (dt) {
    case TSR_DTYPE_F32: if constexpr ((Set & kFlt) != 0) { f(float{}); return true; } break;
    case TSR_DTYPE_F64: if constexpr ((Set & kFlt) != 0) { f(double{}); return true; } break;
    case TSR_DTYPE_F16: if constexpr ((Set & kFlt) != 0) { f(F16{}); return true; } break;
    case TSR_DTYPE_BF16: if constexpr ((Set & kFlt) != 0) { f(BF16{}); return true; } break;
    case TSR_DTYPE_I8: if constexpr ((Set & kSInt) != 0) { f(int8_t{}); return true; } break;
    case TSR_DTYPE_I16: if constexpr ((Set & kSInt) != 0) { f(int16_t{}); return true; } break;
    case TSR_DTYPE_I32: if constexpr ((Set & kSInt) != 0) { f(int32_t{}); return true; } break;
    case TSR_DTYPE_I64: if constexpr ((Set & kSInt) != 0) { f(int64_t{}); return true; } break;
    case TSR_DTYPE_U8: if constexpr ((Set & kUInt) != 0) { f(uint8_t{}); return true; } break;
    case TSR_DTYPE_U16: if constexpr ((Set & kUInt) != 0) { f(uint16_t{}); return true; } break;
    case TSR_DTYPE_U32: if constexpr ((Set & kUInt) != 0) { f(uint32_t{}); return true; } break;
    case TSR_DTYPE_U64: if constexpr ((Set & kUInt) != 0) { f(uint64_t{}); return true; } break;
    case TSR_DTYPE_BOOL: if constexpr ((Set & kBool) != 0) { f(uint8_t{}); return true; } break;
    default: break;
  }
  return false;
}

Err Unsupported(const NodeArgs& args, int32_t dt, unsigned set) {
  return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (supports %s)", args.Describe().c_str(), DT(dt),
                 SetNames(set).c_str());
}

// Claim check: input `In` has a dtype in Set.
template <unsigned Set, uint32_t In = 0>
std::string ClaimSet(const tsr_node_view& n, const tsr_graph_view& g) {
  int32_t dt = ClaimInputDType(n, g, In);
  if (InSet(dt, Set)) return "";
  return std::string("CPU ") + n.op_type + " does not support " + DT(dt) + " (supports " + SetNames(Set) + ")";
}

// ---- scalar ops on computation types -----------------------------------------------------------

// Unsigned type used for wrapping integer arithmetic (at least 32 bits so
// small types do not promote to int and overflow there).
template <typename C>
using Wrap = std::conditional_t<(sizeof(C) < 4), uint32_t, std::make_unsigned_t<C>>;

struct AddF {
  template <typename C> C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<Wrap<C>>(a) + static_cast<Wrap<C>>(b));
    else return a + b;
  }
};
struct SubF {
  template <typename C> C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<Wrap<C>>(a) - static_cast<Wrap<C>>(b));
    else return a - b;
  }
};
struct MulF {
  template <typename C> C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<Wrap<C>>(a) * static_cast<Wrap<C>>(b));
    else return a * b;
  }
};
// Integer division truncates; the divisor was checked for zero; MIN / -1 wraps.
struct DivF {
  template <typename C> C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C> && std::is_signed_v<C>) {
      if (b == -1) return static_cast<C>(Wrap<C>{0} - static_cast<Wrap<C>>(a));
    }
    return static_cast<C>(a / b);
  }
};
// NaN propagates (as numpy's maximum/minimum).
struct MaxF {
  template <typename C> C operator()(C a, C b) const { return (a < b || b != b) ? b : a; }
};
struct MinF {
  template <typename C> C operator()(C a, C b) const { return (b < a || b != b) ? b : a; }
};
// Mod, fmod=0: integer remainder with the divisor's sign (Python %).
struct ModF {
  template <typename C> C operator()(C a, C b) const {
    if constexpr (std::is_signed_v<C>) {
      if (b == -1) return C(0);
      C r = static_cast<C>(a % b);
      if (r != 0 && ((r < 0) != (b < 0))) r = static_cast<C>(r + b);
      return r;
    } else {
      return static_cast<C>(a % b);
    }
  }
};
// Mod, fmod=1: remainder with the dividend's sign (C fmod / truncating %).
struct FModF {
  template <typename C> C operator()(C a, C b) const {
    if constexpr (std::is_floating_point_v<C>) return std::fmod(a, b);
    else if constexpr (std::is_signed_v<C>) return b == -1 ? C(0) : static_cast<C>(a % b);
    else return static_cast<C>(a % b);
  }
};
struct BitAndF { template <typename C> C operator()(C a, C b) const { return static_cast<C>(a & b); } };
struct BitOrF { template <typename C> C operator()(C a, C b) const { return static_cast<C>(a | b); } };
struct BitXorF { template <typename C> C operator()(C a, C b) const { return static_cast<C>(a ^ b); } };
// Shifts by the type's width or more give 0.
struct ShlF {
  template <typename C> C operator()(C a, C b) const {
    return b >= sizeof(C) * 8 ? C(0) : static_cast<C>(static_cast<Wrap<C>>(a) << b);
  }
};
struct ShrF {
  template <typename C> C operator()(C a, C b) const { return b >= sizeof(C) * 8 ? C(0) : static_cast<C>(a >> b); }
};

struct EqF { template <typename C> bool operator()(C a, C b) const { return a == b; } };
struct GtF { template <typename C> bool operator()(C a, C b) const { return a > b; } };
struct GeF { template <typename C> bool operator()(C a, C b) const { return a >= b; } };
struct LtF { template <typename C> bool operator()(C a, C b) const { return a < b; } };
struct LeF { template <typename C> bool operator()(C a, C b) const { return a <= b; } };

// Storage-level adapters: load, compute, store.
template <typename T, typename Op>
struct Lift {
  Op op;
  T operator()(T a, T b) const { return St<T>(op(Ld(a), Ld(b))); }
};
template <typename T, typename Op>
struct LiftCmp {
  Op op;
  uint8_t operator()(T a, T b) const {
    if constexpr (std::is_same_v<T, uint8_t>) return op(a, b);  // also bool: truth values are 0/1 by contract
    else return op(Ld(a), Ld(b));
  }
};

Err BroadcastOrErr(const NodeArgs& args, const std::vector<int64_t>& out,
                   std::initializer_list<const std::vector<int64_t>*> ins, Broadcast* bc) {
  std::string why = MakeBroadcast(out, ins, bc);
  if (!why.empty()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), why.c_str());
  return Err::Ok();
}

// ---- broadcasting binary ops -----------------------------------------------------------------

// Divisor check for integer Div / Mod: any zero element is a run-time error.
template <typename T>
Err CheckNoZero(const T* b, int64_t n, const std::string& desc) {
  for (int64_t i = 0; i < n; ++i)
    if (b[i] == T(0))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: integer division by zero (divisor element %lld)", desc.c_str(),
                     static_cast<long long>(i));
  return Err::Ok();
}

template <unsigned Set, typename Op, bool kZeroCheck = false>
Err CreateBinary(const NodeArgs& args, std::unique_ptr<Kernel>* out, Op op = Op{}) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &a = *args.inputs[0], &b = *args.inputs[1], &y = *args.outputs[0];
  if (b.dtype != a.dtype || y.dtype != a.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input/output dtypes differ (%s, %s -> %s)", args.Describe().c_str(),
                   DT(a.dtype), DT(b.dtype), DT(y.dtype));
  Broadcast bc;
  e = BroadcastOrErr(args, y.dims, {&a.dims, &b.dims}, &bc);
  if (!e.ok()) return e;
  const std::string desc = args.Describe();
  const int64_t nb = b.numel;
  bool ok = Dispatch<Set>(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([bc, op, desc, nb](const void* const* in, void* const* o) -> Err {
      const T* pb = static_cast<const T*>(in[1]);
      if constexpr (kZeroCheck && std::is_integral_v<T>) {
        Err z = CheckNoZero(pb, nb, desc);
        if (!z.ok()) return z;
      }
      BroadcastBinary(bc, static_cast<const T*>(in[0]), pb, static_cast<T*>(o[0]), Lift<T, Op>{op}, kCheapGrain);
      return Err::Ok();
    });
  });
  return ok ? Err::Ok() : Unsupported(args, a.dtype, Set);
}

template <typename Op> Err CreateArith(const NodeArgs& a, std::unique_ptr<Kernel>* o) { return CreateBinary<kNum, Op>(a, o); }
Err CreateDiv(const NodeArgs& a, std::unique_ptr<Kernel>* o) { return CreateBinary<kNum, DivF, true>(a, o); }
template <typename Op> Err CreateBitwise(const NodeArgs& a, std::unique_ptr<Kernel>* o) { return CreateBinary<kInt, Op>(a, o); }

Err CreateMod(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  int64_t fmod = args.attrs().Int("fmod", 0);
  if (fmod != 0 && fmod != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: fmod must be 0 or 1, got %lld", args.Describe().c_str(),
                   static_cast<long long>(fmod));
  if (fmod == 1) return CreateBinary<kNum, FModF, true>(args, out);
  if (!args.inputs.empty() && args.inputs[0] && InSet(args.inputs[0]->dtype, kFlt))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: fmod must be 1 for floating-point inputs (%s)",
                   args.Describe().c_str(), DT(args.inputs[0]->dtype));
  return CreateBinary<kInt, ModF, true>(args, out);
}
std::string ClaimMod(const tsr_node_view& n, const tsr_graph_view& g) {
  if (plugin::NodeAttrs(n).Int("fmod", 0) == 1) return ClaimSet<kNum>(n, g);
  return ClaimSet<kInt>(n, g);  // float with fmod=0 is invalid (the factory says so)
}

Err CreateBitShift(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  std::string dir = args.attrs().String("direction", "");
  if (dir == "LEFT") return CreateBinary<kUInt, ShlF>(args, out);
  if (dir == "RIGHT") return CreateBinary<kUInt, ShrF>(args, out);
  return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'direction' must be \"LEFT\" or \"RIGHT\", got \"%s\"",
                 args.Describe().c_str(), dir.c_str());
}

template <typename Op>
Err CreateCompare(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &a = *args.inputs[0], &b = *args.inputs[1], &y = *args.outputs[0];
  if (b.dtype != a.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input dtypes differ (%s vs %s)", args.Describe().c_str(), DT(a.dtype),
                   DT(b.dtype));
  if (y.dtype != TSR_DTYPE_BOOL)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output must be bool, got %s", args.Describe().c_str(), DT(y.dtype));
  Broadcast bc;
  e = BroadcastOrErr(args, y.dims, {&a.dims, &b.dims}, &bc);
  if (!e.ok()) return e;
  const bool is_bool = a.dtype == TSR_DTYPE_BOOL;
  bool ok = Dispatch<kNum | kBool>(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([bc, is_bool](const void* const* in, void* const* o) -> Err {
      if constexpr (std::is_same_v<T, uint8_t>) {
        if (is_bool) {  // compare truth values, not raw bytes
          BroadcastBinary(bc, static_cast<const uint8_t*>(in[0]), static_cast<const uint8_t*>(in[1]),
                          static_cast<uint8_t*>(o[0]),
                          [](uint8_t x, uint8_t z) -> uint8_t { return Op{}(x != 0, z != 0); }, kCheapGrain);
          return Err::Ok();
        }
      }
      BroadcastBinary(bc, static_cast<const T*>(in[0]), static_cast<const T*>(in[1]), static_cast<uint8_t*>(o[0]),
                      LiftCmp<T, Op>{Op{}}, kCheapGrain);
      return Err::Ok();
    });
  });
  return ok ? Err::Ok() : Unsupported(args, a.dtype, kNum | kBool);
}

// PRelu(X, slope): slope broadcasts unidirectionally to X.
Err CreatePRelu(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &s = *args.inputs[1], &y = *args.outputs[0];
  if (s.dtype != x.dtype || y.dtype != x.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: X, slope and output dtypes differ (%s, %s -> %s)",
                   args.Describe().c_str(), DT(x.dtype), DT(s.dtype), DT(y.dtype));
  if (y.dims != x.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dims %s differ from X dims %s", args.Describe().c_str(),
                   DimsToString(y.dims).c_str(), DimsToString(x.dims).c_str());
  Broadcast bc;
  e = BroadcastOrErr(args, x.dims, {&x.dims, &s.dims}, &bc);
  if (!e.ok()) return e;
  bool ok = Dispatch<kSigned | kUInt>(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    auto f = [](T a, T b) -> T {
      auto xa = Ld(a);
      (void)b;
      if constexpr (std::is_unsigned_v<decltype(xa)>) return a;
      else return xa < 0 ? St<T>(MulF{}(Ld(b), xa)) : a;
    };
    *out = MakeFnKernel([bc, f](const void* const* in, void* const* o) -> Err {
      BroadcastBinary(bc, static_cast<const T*>(in[0]), static_cast<const T*>(in[1]), static_cast<T*>(o[0]), f,
                      kCheapGrain);
      return Err::Ok();
    });
  });
  return ok ? Err::Ok() : Unsupported(args, x.dtype, kNum);
}

// Pow(X, Y): X in f32 f64 f16 bf16 i32 i64; Y any numeric dtype. Computed
// in float for f32^f32, else in double, then converted to X's dtype (float ->
// integer truncates, like numpy's astype).
template <typename E>
double AsDouble(const void* p, int64_t i) {
  return static_cast<double>(Ld(static_cast<const E*>(p)[i]));
}
using LoadFn = double (*)(const void*, int64_t);
LoadFn LoaderFor(int32_t dt) {
  LoadFn f = nullptr;
  Dispatch<kNum>(dt, [&](auto tag) { f = &AsDouble<decltype(tag)>; });
  return f;
}

template <typename T>
T FromDouble(double v) {
  if constexpr (std::is_integral_v<T>) {
    if (!(v == v)) return T(0);
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return St<T>(static_cast<Calc<T>>(v));
  }
}

constexpr unsigned kPowBase = kFlt | kSInt;

Err CreatePow(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &a = *args.inputs[0], &b = *args.inputs[1], &y = *args.outputs[0];
  if (y.dtype != a.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dtype %s differs from base dtype %s", args.Describe().c_str(),
                   DT(y.dtype), DT(a.dtype));
  LoadFn load_e = LoaderFor(b.dtype);
  if (!load_e) return MakeErr(TSR_ERR_UNSUPPORTED, "%s: exponent dtype %s not supported", args.Describe().c_str(), DT(b.dtype));
  Broadcast bc;
  e = BroadcastOrErr(args, y.dims, {&a.dims, &b.dims}, &bc);
  if (!e.ok()) return e;
  if (a.dtype == TSR_DTYPE_F32 && b.dtype == TSR_DTYPE_F32) {
    // Fast path: a row-constant exponent of 2 or 1 skips std::pow.
    *out = MakeFnKernel([bc](const void* const* in, void* const* o) -> Err {
      const float* pa = static_cast<const float*>(in[0]);
      const float* pb = static_cast<const float*>(in[1]);
      float* py = static_cast<float*>(o[0]);
      const int64_t sa = bc.inner_stride(0), sb = bc.inner_stride(1);
      ForEachRun(bc, kMathGrain, [&](int64_t yo, const int64_t* off, int64_t n) {
        const float* x = pa + off[0];
        const float* p = pb + off[1];
        float* yy = py + yo;
        if (!sb && sa && *p == 2.f) {
          for (int64_t i = 0; i < n; ++i) yy[i] = x[i] * x[i];
        } else if (!sb && sa && *p == 1.f) {
          std::copy(x, x + n, yy);
        } else {
          for (int64_t i = 0; i < n; ++i) yy[i] = std::pow(x[sa * i], p[sb * i]);
        }
      });
      return Err::Ok();
    });
    return Err::Ok();
  }
  bool ok = Dispatch<kPowBase>(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([bc, load_e](const void* const* in, void* const* o) -> Err {
      const T* pa = static_cast<const T*>(in[0]);
      const void* pb = in[1];
      T* py = static_cast<T*>(o[0]);
      const int64_t sa = bc.inner_stride(0), sb = bc.inner_stride(1);
      ForEachRun(bc, kMathGrain, [&](int64_t yo, const int64_t* off, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          double base = static_cast<double>(Ld(pa[off[0] + sa * i]));
          py[yo + i] = FromDouble<T>(std::pow(base, load_e(pb, off[1] + sb * i)));
        }
      });
      return Err::Ok();
    });
  });
  return ok ? Err::Ok() : Unsupported(args, a.dtype, kPowBase);
}

// ---- variadic Max / Min / Sum / Mean -------------------------------------------------------

template <unsigned Set, typename Op, bool kMean = false>
Err CreateVariadic(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1u << 20, 1, 1);
  if (!e.ok()) return e;
  const TensorArg& y = *args.outputs[0];
  if (!InSet(y.dtype, Set)) return Unsupported(args, y.dtype, Set);
  // Plan: out = broadcast(in0); then out = op(out, in_k) for k >= 1 in place.
  std::vector<Broadcast> plans(args.inputs.size());
  for (size_t k = 0; k < args.inputs.size(); ++k) {
    const TensorArg* t = args.inputs[k];
    if (!t) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is missing", args.Describe().c_str(), k);
    if (t->dtype != y.dtype)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu dtype %s differs from output %s", args.Describe().c_str(),
                     k, DT(t->dtype), DT(y.dtype));
    e = k == 0 ? BroadcastOrErr(args, y.dims, {&t->dims}, &plans[k])
               : BroadcastOrErr(args, y.dims, {&y.dims, &t->dims}, &plans[k]);
    if (!e.ok()) return e;
  }
  Dispatch<Set>(y.dtype, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([plans](const void* const* in, void* const* o) -> Err {
      T* py = static_cast<T*>(o[0]);
      BroadcastCopy(plans[0], static_cast<const T*>(in[0]), py);
      for (size_t k = 1; k < plans.size(); ++k)
        BroadcastBinary(plans[k], static_cast<const T*>(py), static_cast<const T*>(in[k]), py, Lift<T, Op>{Op{}},
                        kCheapGrain);
      if constexpr (kMean) {
        const auto cnt = static_cast<Calc<T>>(plans.size());
        ParallelFor(plans[0].numel, kCheapGrain, [&](int64_t b, int64_t en) {
          for (int64_t i = b; i < en; ++i) py[i] = St<T>(Ld(py[i]) / cnt);
        });
      }
      return Err::Ok();
    });
  });
  return Err::Ok();
}

// ---- unary ops ------------------------------------------------------------------------------

Err CheckUnaryArgs(const NodeArgs& args, size_t max_in, int32_t out_dtype) {
  Err e = CheckArity(args, 1, max_in, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (y.dtype != out_dtype || y.numel != x.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not match input %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  return Err::Ok();
}

// y[i] = St(f(Ld(x[i]))), with R the output storage type.
template <typename T, typename R, typename F>
std::unique_ptr<Kernel> MakeMap(int64_t n, F f, int64_t grain) {
  return MakeFnKernel([n, f, grain](const void* const* in, void* const* o) -> Err {
    const T* x = static_cast<const T*>(in[0]);
    R* y = static_cast<R*>(o[0]);
    ParallelFor(n, grain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        if constexpr (std::is_same_v<R, T>) y[i] = St<T>(f(Ld(x[i])));
        else y[i] = f(Ld(x[i]));
      }
    });
    return Err::Ok();
  });
}

// Unary op over dtype set Set; Op has a templated operator()(C) -> C.
template <unsigned Set, typename Op>
Err MakeUnaryOp(const NodeArgs& args, std::unique_ptr<Kernel>* out, Op op, int64_t grain) {
  Err e = CheckUnaryArgs(args, 1, args.inputs.empty() || !args.inputs[0] ? 0 : args.inputs[0]->dtype);
  if (!e.ok()) return e;
  const int32_t dt = args.inputs[0]->dtype;
  const int64_t n = args.inputs[0]->numel;
  bool ok = Dispatch<Set>(dt, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeMap<T, T>(n, [op](Calc<T> v) { return op(v); }, grain);
  });
  return ok ? Err::Ok() : Unsupported(args, dt, Set);
}

template <unsigned Set, typename Op, bool kCheap = false>
Err CreateUnary(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  return MakeUnaryOp<Set>(args, out, Op{}, kCheap ? kCheapGrain : kMathGrain);
}

#define TSR_FLOAT_FN(Name, expr) \
  struct Name { template <typename C> C operator()(C x) const { return expr; } };
TSR_FLOAT_FN(SqrtF, std::sqrt(x))
TSR_FLOAT_FN(ExpF, std::exp(x))
TSR_FLOAT_FN(LogF, std::log(x))
TSR_FLOAT_FN(ErfF, std::erf(x))
TSR_FLOAT_FN(TanhF, std::tanh(x))
TSR_FLOAT_FN(SigmoidF, x >= C(0) ? C(1) / (C(1) + std::exp(-x)) : std::exp(x) / (C(1) + std::exp(x)))
TSR_FLOAT_FN(ReciprocalF, C(1) / x)
TSR_FLOAT_FN(FloorF, std::floor(x))
TSR_FLOAT_FN(CeilF, std::ceil(x))
TSR_FLOAT_FN(RoundF, std::nearbyint(x))  // half to even under the default rounding mode
TSR_FLOAT_FN(SinF, std::sin(x))
TSR_FLOAT_FN(CosF, std::cos(x))
TSR_FLOAT_FN(TanF, std::tan(x))
TSR_FLOAT_FN(AsinF, std::asin(x))
TSR_FLOAT_FN(AcosF, std::acos(x))
TSR_FLOAT_FN(AtanF, std::atan(x))
TSR_FLOAT_FN(SinhF, std::sinh(x))
TSR_FLOAT_FN(CoshF, std::cosh(x))
TSR_FLOAT_FN(AsinhF, std::asinh(x))
TSR_FLOAT_FN(AcoshF, std::acosh(x))
TSR_FLOAT_FN(AtanhF, std::atanh(x))
TSR_FLOAT_FN(SoftsignF, x / (C(1) + std::fabs(x)))
// log(1 + e^x) without overflow for large x.
TSR_FLOAT_FN(SoftplusF, x > C(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)))
TSR_FLOAT_FN(MishF, x * std::tanh(SoftplusF{}(x)))
TSR_FLOAT_FN(HardSwishF, x * std::min(C(1), std::max(C(0), x / C(6) + C(0.5))))
#undef TSR_FLOAT_FN

template <typename C>
C NegC(C x) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(Wrap<C>{0} - static_cast<Wrap<C>>(x));
  else return -x;
}
struct NegF { template <typename C> C operator()(C x) const { return NegC(x); } };
struct AbsF {
  template <typename C> C operator()(C x) const {
    if constexpr (std::is_unsigned_v<C>) return x;
    else if constexpr (std::is_integral_v<C>) return x < 0 ? NegC(x) : x;
    else return std::fabs(x);
  }
};
struct SignF {
  template <typename C> C operator()(C x) const {
    if constexpr (std::is_unsigned_v<C>) return static_cast<C>(x != 0);
    else if constexpr (std::is_integral_v<C>) return static_cast<C>((x > 0) - (x < 0));
    else return x > C(0) ? C(1) : (x < C(0) ? C(-1) : x);  // 0 and NaN map to themselves
  }
};
struct ReluF {
  template <typename C> C operator()(C x) const { return x > C(0) ? x : C(0); }
};
struct BitNotF { template <typename C> C operator()(C x) const { return static_cast<C>(~x); } };

// f32 ops with a SIMD implementation (broadcast.h) and a libm form for others.
template <typename V, typename F>
Err CreateVecUnary(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  if (!args.inputs.empty() && args.inputs[0] && args.inputs[0]->dtype == TSR_DTYPE_F32) {
    Err e = CheckUnaryArgs(args, 1, TSR_DTYPE_F32);
    if (!e.ok()) return e;
    const int64_t n = args.inputs[0]->numel;
    *out = MakeFnKernel([n](const void* const* in, void* const* o) -> Err {
      const float* x = static_cast<const float*>(in[0]);
      float* y = static_cast<float*>(o[0]);
      // V::kRow: the run-time dispatched row function (simd.h; AVX-512 or the
      // same V4 math through MapV4).
      const auto row = simd::Fns().*V::kRow;
      ParallelFor(n, kMathGrain, [&](int64_t b, int64_t e) { row(x + b, y + b, e - b); });
      return Err::Ok();
    });
    return Err::Ok();
  }
  return CreateUnary<kFlt, F>(args, out);
}
struct ExpV4 {
  static constexpr auto kRow = &simd::RowFns::exp;
  V4 operator()(V4 x) const { return ExpV(x); }
};
struct SigmoidV4 {
  static constexpr auto kRow = &simd::RowFns::sigmoid;
  V4 operator()(V4 x) const { return SigmoidV(x); }
};
struct TanhV4 {
  static constexpr auto kRow = &simd::RowFns::tanh;
  V4 operator()(V4 x) const { return TanhV(x); }
};
struct ErfV4 {
  static constexpr auto kRow = &simd::RowFns::erf;
  V4 operator()(V4 x) const { return ErfV(x); }
};
struct GeluV4 {
  static constexpr auto kRow = &simd::RowFns::gelu;
  V4 operator()(V4 x) const { return GeluV(x); }
};
struct GeluTanhV4 {
  static constexpr auto kRow = &simd::RowFns::gelu_tanh;
  V4 operator()(V4 x) const { return GeluTanhV(x); }
};

struct GeluF {
  template <typename C> C operator()(C x) const { return C(0.5) * x * (C(1) + std::erf(x * C(0.70710678118654752440))); }
};
struct GeluTanhF {
  template <typename C> C operator()(C x) const {
    return C(0.5) * x * (C(1) + std::tanh(C(0.79788456080286535588) * (x + C(0.044715) * x * x * x)));
  }
};

Err CreateGelu(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  std::string approx = args.attrs().String("approximate", "none");
  if (approx == "none") return CreateVecUnary<GeluV4, GeluF>(args, out);
  if (approx == "tanh") return CreateVecUnary<GeluTanhV4, GeluTanhF>(args, out);
  return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'approximate' must be \"none\" or \"tanh\", got \"%s\"",
                 args.Describe().c_str(), approx.c_str());
}

// Activations with float attributes (converted to the computation type per element).
struct LeakyReluF { double a; template <typename C> C operator()(C x) const { return x >= C(0) ? x : static_cast<C>(a) * x; } };
struct EluF { double a; template <typename C> C operator()(C x) const { return x >= C(0) ? x : static_cast<C>(a) * std::expm1(x); } };
struct SeluF {
  double a, g;
  template <typename C> C operator()(C x) const {
    return x > C(0) ? static_cast<C>(g) * x : static_cast<C>(g) * (static_cast<C>(a) * std::exp(x) - static_cast<C>(a));
  }
};
struct CeluF {
  double a;
  template <typename C> C operator()(C x) const {
    const C al = static_cast<C>(a);
    return std::max(C(0), x) + std::min(C(0), al * std::expm1(x / al));
  }
};
struct HardSigmoidF {
  double a, b;
  template <typename C> C operator()(C x) const {
    return std::min(C(1), std::max(C(0), static_cast<C>(a) * x + static_cast<C>(b)));
  }
};
struct ThresholdedReluF { double a; template <typename C> C operator()(C x) const { return x > static_cast<C>(a) ? x : C(0); } };
struct SwishF { double a; template <typename C> C operator()(C x) const { return x * SigmoidF{}(static_cast<C>(a) * x); } };

Err CreateLeakyRelu(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  return MakeUnaryOp<kFlt>(args, out, LeakyReluF{args.attrs().Float("alpha", 0.01f)}, kCheapGrain);
}
Err CreateElu(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  return MakeUnaryOp<kFlt>(args, out, EluF{args.attrs().Float("alpha", 1.f)}, kMathGrain);
}
Err CreateSelu(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  return MakeUnaryOp<kFlt>(args, out,
                           SeluF{args.attrs().Float("alpha", 1.67326319217681884765625f),
                                 args.attrs().Float("gamma", 1.05070102214813232421875f)},
                           kMathGrain);
}
Err CreateCelu(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  const double alpha = args.attrs().Float("alpha", 1.f);
  if (alpha == 0.0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'alpha' must not be 0", args.Describe().c_str());
  return MakeUnaryOp<kFlt>(args, out, CeluF{alpha}, kMathGrain);
}
Err CreateHardSigmoid(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  return MakeUnaryOp<kFlt>(args, out, HardSigmoidF{args.attrs().Float("alpha", 0.2f), args.attrs().Float("beta", 0.5f)},
                           kCheapGrain);
}
Err CreateThresholdedRelu(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  return MakeUnaryOp<kFlt>(args, out, ThresholdedReluF{args.attrs().Float("alpha", 1.f)}, kCheapGrain);
}
Err CreateSwish(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  return MakeUnaryOp<kFlt>(args, out, SwishF{args.attrs().Float("alpha", 1.f)}, kMathGrain);
}
// Shrink over every numeric type; integers are compared and shifted in double
// and converted back (saturating).
Err CreateShrink(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  const double lambd = args.attrs().Float("lambd", 0.5f), bias = args.attrs().Float("bias", 0.f);
  if (lambd < 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'lambd' must be >= 0, got %g", args.Describe().c_str(), lambd);
  Err e = CheckUnaryArgs(args, 1, args.inputs.empty() || !args.inputs[0] ? 0 : args.inputs[0]->dtype);
  if (!e.ok()) return e;
  const int32_t dt = args.inputs[0]->dtype;
  const int64_t n = args.inputs[0]->numel;
  bool ok = Dispatch<kNum>(dt, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([n, lambd, bias](const void* const* in, void* const* o) -> Err {
      const T* x = static_cast<const T*>(in[0]);
      T* y = static_cast<T*>(o[0]);
      ParallelFor(n, kCheapGrain, [&](int64_t b, int64_t en) {
        for (int64_t i = b; i < en; ++i) {
          if constexpr (std::is_integral_v<T>) {
            double v = static_cast<double>(x[i]);
            y[i] = v < -lambd ? FromDouble<T>(v + bias) : (v > lambd ? FromDouble<T>(v - bias) : T(0));
          } else {
            using C = Calc<T>;
            C v = Ld(x[i]);
            const C l = static_cast<C>(lambd), bb = static_cast<C>(bias);
            y[i] = St<T>(v < -l ? v + bb : (v > l ? v - bb : C(0)));
          }
        }
      });
      return Err::Ok();
    });
  });
  return ok ? Err::Ok() : Unsupported(args, dt, kNum);
}

// IsNaN / IsInf: float -> bool.
Err CreateIsNaN(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckUnaryArgs(args, 1, TSR_DTYPE_BOOL);
  if (!e.ok()) return e;
  const int32_t dt = args.inputs[0]->dtype;
  const int64_t n = args.inputs[0]->numel;
  bool ok = Dispatch<kFlt>(dt, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeMap<T, uint8_t>(n, [](Calc<T> v) -> uint8_t { return v != v; }, kCheapGrain);
  });
  return ok ? Err::Ok() : Unsupported(args, dt, kFlt);
}
Err CreateIsInf(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckUnaryArgs(args, 1, TSR_DTYPE_BOOL);
  if (!e.ok()) return e;
  const bool neg = args.attrs().Int("detect_negative", 1) != 0, pos = args.attrs().Int("detect_positive", 1) != 0;
  const int32_t dt = args.inputs[0]->dtype;
  const int64_t n = args.inputs[0]->numel;
  bool ok = Dispatch<kFlt>(dt, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeMap<T, uint8_t>(n, [neg, pos](Calc<T> v) -> uint8_t {
      return std::isinf(v) && ((v > 0 && pos) || (v < 0 && neg));
    }, kCheapGrain);
  });
  return ok ? Err::Ok() : Unsupported(args, dt, kFlt);
}

// Clip: bounds from attributes (opset < 11, floats) or optional scalar inputs
// 1 and 2 (read at run time, so they need not be constants).
Err CreateClip(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckUnaryArgs(args, 3, args.inputs.empty() || !args.inputs[0] ? 0 : args.inputs[0]->dtype);
  if (!e.ok()) return e;
  const int32_t dt = args.inputs[0]->dtype;
  const int64_t n = args.inputs[0]->numel;
  for (size_t i = 1; i < args.inputs.size(); ++i) {
    if (!args.has_input(i)) continue;
    const TensorArg& t = *args.inputs[i];
    if (t.dtype != dt || t.numel != 1)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s must be a %s scalar, got %s with %lld elements",
                     args.Describe().c_str(), i == 1 ? "min" : "max", DT(dt), DT(t.dtype),
                     static_cast<long long>(t.numel));
  }
  const bool attr_form = args.node->opset < 11;
  if (attr_form && args.inputs.size() > 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: opset %lld Clip takes min/max as attributes, not inputs",
                   args.Describe().c_str(), static_cast<long long>(args.node->opset));
  const double alo = args.attrs().Float("min", -std::numeric_limits<float>::max());
  const double ahi = args.attrs().Float("max", std::numeric_limits<float>::max());
  const bool has_lo = args.has_input(1), has_hi = args.has_input(2);
  bool ok = Dispatch<kNum>(dt, [&](auto tag) {
    using T = decltype(tag);
    using C = Calc<T>;
    if (attr_form && !kIsFloat<T>) return;
    C lo0 = std::numeric_limits<C>::lowest(), hi0 = std::numeric_limits<C>::max();
    if (attr_form) {
      lo0 = static_cast<C>(alo);
      hi0 = static_cast<C>(ahi);
    }
    *out = MakeFnKernel([n, has_lo, has_hi, lo0, hi0](const void* const* in, void* const* o) -> Err {
      const C lo = has_lo ? Ld(*static_cast<const T*>(in[1])) : lo0;
      const C hi = has_hi ? Ld(*static_cast<const T*>(in[2])) : hi0;
      const T* x = static_cast<const T*>(in[0]);
      T* y = static_cast<T*>(o[0]);
      ParallelFor(n, kCheapGrain, [&](int64_t b, int64_t en) {
        for (int64_t i = b; i < en; ++i) y[i] = St<T>(std::min(std::max(Ld(x[i]), lo), hi));
      });
      return Err::Ok();
    });
  });
  if (ok && !*out) return Unsupported(args, dt, kFlt);
  return ok ? Err::Ok() : Unsupported(args, dt, kNum);
}
std::string ClaimClip(const tsr_node_view& n, const tsr_graph_view& g) {
  if (n.opset < 11) return ClaimSet<kFlt>(n, g);
  return ClaimSet<kNum>(n, g);
}

// ---- Dropout -------------------------------------------------------------------------------

// Dropout(X [, ratio [, training_mode]]) -> Y [, mask]. Inference (training
// mode false or absent, or ratio 0): Y = X, mask all true. Training: mask =
// u >= ratio with u uniform in [0, 1), Y = X * mask / (1 - ratio). The
// uniforms are numpy's legacy RandomState(seed).random_sample() stream
// (MT19937, 53-bit doubles), so with the `seed` attribute the result is
// reproducible (and equal to numpy's); without it each run draws a fresh seed.
// ratio and training_mode must be constants (they are value inputs).
Err CreateDropout(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 3, 1, 2);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (x.dtype != y.dtype || x.numel != y.numel || x.elem_size() == 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not match input %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  const TensorArg* mask = args.outputs.size() > 1 ? args.outputs[1] : nullptr;
  if (mask && (mask->dtype != TSR_DTYPE_BOOL || mask->numel != x.numel))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: mask output must be bool with the input's shape",
                   args.Describe().c_str());
  double ratio = args.attrs().Float("ratio", 0.5f);
  if (args.has_input(1)) {
    const TensorArg& r = *args.inputs[1];
    if (r.numel != 1 || !InSet(r.dtype, kFlt))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: ratio must be a float scalar, got %s with %lld elements",
                     args.Describe().c_str(), DT(r.dtype), static_cast<long long>(r.numel));
    if (!r.const_data)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: input 1 (ratio) must be a constant for the CPU backend",
                     args.Describe().c_str());
    ratio = LoaderFor(r.dtype)(r.const_data, 0);
  }
  bool training = args.node->opset < 7 && args.attrs().Int("is_test", 0) == 0;
  if (args.has_input(2)) {
    const TensorArg& tm = *args.inputs[2];
    if (tm.dtype != TSR_DTYPE_BOOL || tm.numel != 1)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: training_mode must be a bool scalar", args.Describe().c_str());
    if (!tm.const_data)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: input 2 (training_mode) must be a constant for the CPU backend",
                     args.Describe().c_str());
    training = *static_cast<const uint8_t*>(tm.const_data) != 0;
  }
  const int64_t nbytes = x.nbytes(), n = x.numel;
  if (!training || ratio == 0.0) {
    const bool has_mask = mask != nullptr;
    *out = MakeFnKernel([nbytes, n, has_mask](const void* const* in, void* const* o) -> Err {
      if (in[0] != o[0] && nbytes > 0) std::memcpy(o[0], in[0], static_cast<size_t>(nbytes));
      if (has_mask && o[1]) std::memset(o[1], 1, static_cast<size_t>(n));
      return Err::Ok();
    });
    return Err::Ok();
  }
  if (!(ratio > 0.0 && ratio < 1.0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: ratio %g must be in [0, 1)", args.Describe().c_str(), ratio);
  const bool has_seed = args.attrs().Has("seed");
  const uint32_t seed = static_cast<uint32_t>(args.attrs().Int("seed", 0));
  const bool has_mask = mask != nullptr;
  bool ok = Dispatch<kFlt>(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = Calc<T>;
    const C scale = static_cast<C>(1) / (static_cast<C>(1) - static_cast<C>(ratio));
    *out = MakeFnKernel([n, ratio, scale, has_seed, seed, has_mask](const void* const* in, void* const* o) -> Err {
      static std::atomic<uint32_t> counter{0};
      uint32_t s = has_seed ? seed : static_cast<uint32_t>(std::random_device{}()) ^ counter.fetch_add(0x9e3779b9u);
      std::mt19937 gen(s);  // seeding matches numpy's RandomState(int)
      const T* px = static_cast<const T*>(in[0]);
      T* py = static_cast<T*>(o[0]);
      uint8_t* pm = has_mask ? static_cast<uint8_t*>(o[1]) : nullptr;
      for (int64_t i = 0; i < n; ++i) {  // sequential: one random stream
        const uint32_t a = gen() >> 5, b = gen() >> 6;
        const double u = (a * 67108864.0 + b) / 9007199254740992.0;
        const bool keep = u >= ratio;
        py[i] = St<T>(keep ? Ld(px[i]) * scale : C(0));
        if (pm) pm[i] = keep;
      }
      return Err::Ok();
    });
  });
  return ok ? Err::Ok() : Unsupported(args, x.dtype, kFlt);
}

// Dropout: any fixed-size dtype; ratio and training_mode must be constants
// (the factory reads them), and training needs a float input.
std::string ClaimDropout(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimConstInputs(n, g, 1, 2);
  if (!r.empty()) return r;
  if (ClaimInputDType(n, g, 2) == TSR_DTYPE_BOOL) return ClaimSet<kFlt>(n, g);  // may train
  return ClaimFixedSize(n, g, 0);
}

}  // namespace

void RegisterMathKernels(KernelRegistry& r) {
  r.Add({"", "Add", &CreateArith<AddF>, &ClaimSet<kNum>});
  r.Add({"", "Sub", &CreateArith<SubF>, &ClaimSet<kNum>});
  r.Add({"", "Mul", &CreateArith<MulF>, &ClaimSet<kNum>});
  r.Add({"", "Div", &CreateDiv, &ClaimSet<kNum>});
  r.Add({"", "Mod", &CreateMod, &ClaimMod});
  r.Add({"", "Pow", &CreatePow, &ClaimSet<kPowBase>});
  r.Add({"", "BitwiseAnd", &CreateBitwise<BitAndF>, &ClaimSet<kInt>});
  r.Add({"", "BitwiseOr", &CreateBitwise<BitOrF>, &ClaimSet<kInt>});
  r.Add({"", "BitwiseXor", &CreateBitwise<BitXorF>, &ClaimSet<kInt>});
  r.Add({"", "BitShift", &CreateBitShift, &ClaimSet<kUInt>});
  r.Add({"", "PRelu", &CreatePRelu, &ClaimSet<kNum>});

  r.Add({"", "Equal", &CreateCompare<EqF>, &ClaimSet<kNum | kBool>});
  r.Add({"", "Greater", &CreateCompare<GtF>, &ClaimSet<kNum | kBool>});
  r.Add({"", "GreaterOrEqual", &CreateCompare<GeF>, &ClaimSet<kNum | kBool>});
  r.Add({"", "Less", &CreateCompare<LtF>, &ClaimSet<kNum | kBool>});
  r.Add({"", "LessOrEqual", &CreateCompare<LeF>, &ClaimSet<kNum | kBool>});

  r.Add({"", "Max", &CreateVariadic<kNum, MaxF>, &ClaimSet<kNum>});
  r.Add({"", "Min", &CreateVariadic<kNum, MinF>, &ClaimSet<kNum>});
  r.Add({"", "Sum", &CreateVariadic<kNum, AddF>, &ClaimSet<kNum>});
  r.Add({"", "Mean", &CreateVariadic<kFlt, AddF, true>, &ClaimSet<kFlt>});

  r.Add({"", "Exp", &CreateVecUnary<ExpV4, ExpF>, &ClaimSet<kFlt>});
  r.Add({"", "Erf", &CreateVecUnary<ErfV4, ErfF>, &ClaimSet<kFlt>});
  r.Add({"", "Tanh", &CreateVecUnary<TanhV4, TanhF>, &ClaimSet<kFlt>});
  r.Add({"", "Sigmoid", &CreateVecUnary<SigmoidV4, SigmoidF>, &ClaimSet<kFlt>});
  r.Add({"", "Gelu", &CreateGelu, &ClaimSet<kFlt>});
  r.Add({"tessera", "Gelu", &CreateGelu, &ClaimSet<kFlt>});
  r.Add({"", "Sqrt", &CreateUnary<kFlt, SqrtF>, &ClaimSet<kFlt>});
  r.Add({"", "Log", &CreateUnary<kFlt, LogF>, &ClaimSet<kFlt>});
  r.Add({"", "Reciprocal", &CreateUnary<kFlt, ReciprocalF, true>, &ClaimSet<kFlt>});
  r.Add({"", "Floor", &CreateUnary<kFlt, FloorF, true>, &ClaimSet<kFlt>});
  r.Add({"", "Ceil", &CreateUnary<kFlt, CeilF, true>, &ClaimSet<kFlt>});
  r.Add({"", "Round", &CreateUnary<kFlt, RoundF, true>, &ClaimSet<kFlt>});
  r.Add({"", "Sin", &CreateUnary<kFlt, SinF>, &ClaimSet<kFlt>});
  r.Add({"", "Cos", &CreateUnary<kFlt, CosF>, &ClaimSet<kFlt>});
  r.Add({"", "Tan", &CreateUnary<kFlt, TanF>, &ClaimSet<kFlt>});
  r.Add({"", "Asin", &CreateUnary<kFlt, AsinF>, &ClaimSet<kFlt>});
  r.Add({"", "Acos", &CreateUnary<kFlt, AcosF>, &ClaimSet<kFlt>});
  r.Add({"", "Atan", &CreateUnary<kFlt, AtanF>, &ClaimSet<kFlt>});
  r.Add({"", "Sinh", &CreateUnary<kFlt, SinhF>, &ClaimSet<kFlt>});
  r.Add({"", "Cosh", &CreateUnary<kFlt, CoshF>, &ClaimSet<kFlt>});
  r.Add({"", "Asinh", &CreateUnary<kFlt, AsinhF>, &ClaimSet<kFlt>});
  r.Add({"", "Acosh", &CreateUnary<kFlt, AcoshF>, &ClaimSet<kFlt>});
  r.Add({"", "Atanh", &CreateUnary<kFlt, AtanhF>, &ClaimSet<kFlt>});
  r.Add({"", "Softsign", &CreateUnary<kFlt, SoftsignF>, &ClaimSet<kFlt>});
  r.Add({"", "Softplus", &CreateUnary<kFlt, SoftplusF>, &ClaimSet<kFlt>});
  r.Add({"", "Mish", &CreateUnary<kFlt, MishF>, &ClaimSet<kFlt>});
  r.Add({"", "HardSwish", &CreateUnary<kFlt, HardSwishF, true>, &ClaimSet<kFlt>});
  r.Add({"", "HardSigmoid", &CreateHardSigmoid, &ClaimSet<kFlt>});
  r.Add({"", "LeakyRelu", &CreateLeakyRelu, &ClaimSet<kFlt>});
  r.Add({"", "Elu", &CreateElu, &ClaimSet<kFlt>});
  r.Add({"", "Selu", &CreateSelu, &ClaimSet<kFlt>});
  r.Add({"", "Celu", &CreateCelu, &ClaimSet<kFlt>});
  r.Add({"", "ThresholdedRelu", &CreateThresholdedRelu, &ClaimSet<kFlt>});
  r.Add({"", "Swish", &CreateSwish, &ClaimSet<kFlt>});
  r.Add({"", "Shrink", &CreateShrink, &ClaimSet<kNum>});
  r.Add({"", "IsNaN", &CreateIsNaN, &ClaimSet<kFlt>});
  r.Add({"", "IsInf", &CreateIsInf, &ClaimSet<kFlt>});

  r.Add({"", "Neg", &CreateUnary<kSigned, NegF, true>, &ClaimSet<kSigned>});
  r.Add({"", "Abs", &CreateUnary<kNum, AbsF, true>, &ClaimSet<kNum>});
  r.Add({"", "Sign", &CreateUnary<kNum, SignF, true>, &ClaimSet<kNum>});
  r.Add({"", "Relu", &CreateUnary<kSigned, ReluF, true>, &ClaimSet<kSigned>});
  r.Add({"", "BitwiseNot", &CreateUnary<kInt, BitNotF, true>, &ClaimSet<kInt>});
  r.Add({"", "Clip", &CreateClip, &ClaimClip});
  r.Add({"", "Dropout", &CreateDropout, &ClaimDropout});
}

}  // namespace tessera::cpu
