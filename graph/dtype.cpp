#include "graph/dtype.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tessera {

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF32: case DType::kI32: case DType::kU32: return 4;
    case DType::kU8: case DType::kI8: case DType::kBool: return 1;
    case DType::kF8E4M3FN: case DType::kF8E4M3FNUZ: case DType::kF8E5M2: case DType::kF8E5M2FNUZ:
    case DType::kU4: case DType::kI4: case DType::kF4E2M1: case DType::kF8E8M0: return 1;
    case DType::kU16: case DType::kI16: case DType::kF16: case DType::kBF16: return 2;
    case DType::kI64: case DType::kF64: case DType::kU64: return 8;
    case DType::kString: case DType::kUndefined: return 0;
  }
  return 0;
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kUndefined: return "undefined";
    case DType::kF32: return "f32";
    case DType::kU8: return "u8";
    case DType::kI8: return "i8";
    case DType::kU16: return "u16";
    case DType::kI16: return "i16";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kString: return "string";
    case DType::kBool: return "bool";
    case DType::kF16: return "f16";
    case DType::kF64: return "f64";
    case DType::kU32: return "u32";
    case DType::kU64: return "u64";
    case DType::kBF16: return "bf16";
    case DType::kF8E4M3FN: return "f8e4m3fn";
    case DType::kF8E4M3FNUZ: return "f8e4m3fnuz";
    case DType::kF8E5M2: return "f8e5m2";
    case DType::kF8E5M2FNUZ: return "f8e5m2fnuz";
    case DType::kU4: return "u4";
    case DType::kI4: return "i4";
    case DType::kF4E2M1: return "f4e2m1";
    case DType::kF8E8M0: return "f8e8m0";
  }
  return "undefined";
}

DType DTypeFromName(const std::string& n) {
  static const struct { const char* a; const char* b; DType t; } kNames[] = {
      {"f32", "float", DType::kF32},   {"u8", "uint8", DType::kU8},     {"i8", "int8", DType::kI8},
      {"u16", "uint16", DType::kU16},  {"i16", "int16", DType::kI16},   {"i32", "int32", DType::kI32},
      {"i64", "int64", DType::kI64},   {"string", "str", DType::kString}, {"bool", "boolean", DType::kBool},
      {"f16", "float16", DType::kF16}, {"f64", "double", DType::kF64},  {"u32", "uint32", DType::kU32},
      {"u64", "uint64", DType::kU64},  {"bf16", "bfloat16", DType::kBF16}, {"fp32", "float32", DType::kF32},
      {"fp16", "half", DType::kF16},   {"f64", "float64", DType::kF64},
      {"f8e4m3fn", "float8e4m3fn", DType::kF8E4M3FN}, {"f8e4m3fnuz", "float8e4m3fnuz", DType::kF8E4M3FNUZ},
      {"f8e5m2", "float8e5m2", DType::kF8E5M2},     {"f8e5m2fnuz", "float8e5m2fnuz", DType::kF8E5M2FNUZ},
      {"u4", "uint4", DType::kU4},                  {"i4", "int4", DType::kI4},
      {"f4e2m1", "float4e2m1", DType::kF4E2M1},     {"f8e8m0", "float8e8m0", DType::kF8E8M0},
  };
  for (const auto& e : kNames)
    if (n == e.a || n == e.b) return e.t;
  return DType::kUndefined;
}

bool IsKnownDType(int32_t id) {
  return (id >= 1 && id <= 13) || (id >= 16 && id <= 24);
}

bool IsFloatDType(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64;
}

bool IsIntegerDType(DType t) {
  switch (t) {
    case DType::kU8: case DType::kI8: case DType::kU16: case DType::kI16: case DType::kI32:
    case DType::kI64: case DType::kU32: case DType::kU64: case DType::kU4: case DType::kI4: return true;
    default: return false;
  }
}

bool IsFloat8DType(DType t) {
  return t == DType::kF8E4M3FN || t == DType::kF8E4M3FNUZ || t == DType::kF8E5M2 || t == DType::kF8E5M2FNUZ ||
         t == DType::kF8E8M0;
}

bool IsSubByteDType(DType t) { return t == DType::kU4 || t == DType::kI4 || t == DType::kF4E2M1; }

bool IsAnyFloatDType(DType t) { return IsFloatDType(t) || IsFloat8DType(t) || t == DType::kF4E2M1; }

float HalfToFloat(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) { mant <<= 1; --exp; }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf or nan
    return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  }
  if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // overflow -> inf
  if (absx < 0x38800000u) {  // subnormal or zero in half
    if (absx < 0x33000000u) return (uint16_t)sign;
    uint32_t e = absx >> 23;
    uint32_t m = (absx & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 113 - e + 13
    uint32_t half_m = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_m & 1u))) ++half_m;
    return (uint16_t)(sign | half_m);
  }
  uint32_t e = (absx >> 23) - 127 + 15;
  uint32_t m = absx & 0x7fffffu;
  uint32_t h = (e << 10) | (m >> 13);
  uint32_t rem = m & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return (uint16_t)(sign | h);
}

float BF16ToFloat(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);  // quiet nan
  uint32_t lsb = (x >> 16) & 1u;
  x += 0x7fffu + lsb;
  return (uint16_t)(x >> 16);
}

void FloatToBF16Array(const float* src, uint16_t* dst, int64_t n) {
  // The scalar rule without branches, so the loop vectorizes.
  for (int64_t i = 0; i < n; ++i) {
    uint32_t x;
    std::memcpy(&x, src + i, 4);
    const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (x >> 16) | 0x40u;
    dst[i] = (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
  }
}

void FloatToHalfArray(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = FloatToHalf(src[i]);
}

// ---- minifloats -------------------------------------------------------------------
// (A second copy of these conversions lives in backends/common/plugin_util.h,
// which may not include graph/; tests/unit/graph/test_dtypes.cpp checks that
// the two agree on every bit pattern.)

namespace {

enum class MiniKind { kIeee, kFn, kFnuz, kFinite };

struct MiniFormat {
  int exp_bits, man_bits, bias;
  MiniKind kind;
  bool ok;
};

MiniFormat FormatOf(DType t) {
  switch (t) {
    case DType::kF8E4M3FN: return {4, 3, 7, MiniKind::kFn, true};
    case DType::kF8E4M3FNUZ: return {4, 3, 8, MiniKind::kFnuz, true};
    case DType::kF8E5M2: return {5, 2, 15, MiniKind::kIeee, true};
    case DType::kF8E5M2FNUZ: return {5, 2, 16, MiniKind::kFnuz, true};
    case DType::kF4E2M1: return {2, 1, 1, MiniKind::kFinite, true};
    default: return {0, 0, 0, MiniKind::kFinite, false};
  }
}

// Largest finite magnitude's bit pattern (sign clear).
uint32_t MaxCode(const MiniFormat& f) {
  const uint32_t all = (1u << (f.exp_bits + f.man_bits)) - 1;
  switch (f.kind) {
    case MiniKind::kFn: return all - 1;
    case MiniKind::kIeee: return all - (1u << f.man_bits);  // exponent all-ones minus one, mantissa all ones
    default: return all;
  }
}

double Decode(const MiniFormat& f, uint32_t bits) {
  const int width = f.exp_bits + f.man_bits;
  const uint32_t sign = (bits >> width) & 1u;
  const uint32_t mag = bits & ((1u << width) - 1);
  const uint32_t exp_all = (1u << f.exp_bits) - 1;
  const uint32_t e = mag >> f.man_bits;
  const uint32_t m = mag & ((1u << f.man_bits) - 1);
  if (f.kind == MiniKind::kFnuz && sign && mag == 0) return std::nan("");
  if (f.kind == MiniKind::kFn && mag == (1u << width) - 1) return sign ? -std::nan("") : std::nan("");
  if (f.kind == MiniKind::kIeee && e == exp_all) {
    if (m != 0) return sign ? -std::nan("") : std::nan("");
    return sign ? -HUGE_VAL : HUGE_VAL;
  }
  double v = e == 0 ? std::ldexp(static_cast<double>(m), 1 - f.bias - f.man_bits)
                    : std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -f.man_bits), static_cast<int>(e) - f.bias);
  return sign ? -v : v;
}

uint8_t Encode(const MiniFormat& f, double x, bool saturate) {
  const int width = f.exp_bits + f.man_bits;
  const uint32_t sign_bit = 1u << width;
  const bool neg = std::signbit(x);
  const uint32_t sign = neg ? sign_bit : 0;
  const uint32_t max_code = MaxCode(f);
  const double max_val = Decode(f, max_code);
  auto nan_code = [&]() -> uint8_t {
    switch (f.kind) {
      case MiniKind::kFn: return static_cast<uint8_t>(sign | (sign_bit - 1));
      case MiniKind::kFnuz: return static_cast<uint8_t>(sign_bit);
      case MiniKind::kIeee: return static_cast<uint8_t>(sign | (sign_bit - 1 - ((1u << (f.man_bits - 1)) - 1)));
      default: return static_cast<uint8_t>(sign_bit);  // f4e2m1: -0, as the reference
    }
  };
  auto overflow_code = [&]() -> uint8_t {
    switch (f.kind) {
      case MiniKind::kIeee: return static_cast<uint8_t>(sign | (max_code + 1));  // inf
      case MiniKind::kFinite: return static_cast<uint8_t>(sign | max_code);
      default: return nan_code();
    }
  };
  if (std::isnan(x)) return nan_code();
  double a = std::fabs(x);
  if (saturate || f.kind == MiniKind::kFinite) {
    if (a > max_val) a = max_val;  // also +-inf
  } else if (std::isinf(a)) {
    return overflow_code();
  }
  const int emin = 1 - f.bias;
  double v = 0;
  if (a != 0) {
    int ex = 0;
    std::frexp(a, &ex);  // a = fr * 2^ex, fr in [0.5, 1)
    const int scale = std::max(ex - 1, emin) - f.man_bits;
    v = std::ldexp(std::nearbyint(std::ldexp(a, -scale)), scale);  // round to nearest even
  }
  if (v > max_val) return overflow_code();
  if (v == 0) return static_cast<uint8_t>(f.kind == MiniKind::kFnuz ? 0 : sign);
  int ex = 0;
  std::frexp(v, &ex);
  const int ue = ex - 1;
  uint32_t code;
  if (ue < emin) {
    code = static_cast<uint32_t>(std::ldexp(v, f.man_bits - emin));
  } else {
    const uint32_t man = static_cast<uint32_t>(std::ldexp(v, f.man_bits - ue)) - (1u << f.man_bits);
    code = (static_cast<uint32_t>(ue + f.bias) << f.man_bits) | man;
  }
  return static_cast<uint8_t>(sign | code);
}

}  // namespace

float MiniFloatToFloat(DType t, uint8_t bits) {
  const MiniFormat f = FormatOf(t);
  if (!f.ok) return std::nanf("");
  return static_cast<float>(Decode(f, bits));
}

uint8_t FloatToMiniFloat(DType t, float x, bool saturate) {
  const MiniFormat f = FormatOf(t);
  if (!f.ok) return 0;
  return Encode(f, x, saturate);
}

float E8M0ToFloat(uint8_t bits) {
  if (bits == 0xFF) return std::nanf("");
  return std::ldexp(1.0f, static_cast<int>(bits) - 127);
}

uint8_t FloatToE8M0(float f, bool saturate, E8M0Round mode) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t e = (x >> 23) & 0xFFu;
  if (e == 0xFFu) return 0xFF;
  bool up = false;
  if (mode == E8M0Round::kUp) {
    up = (x & 0x7FFFFFu) != 0;
  } else if (mode == E8M0Round::kNearest) {
    const bool g = (x & 0x400000u) != 0, r = (x & 0x200000u) != 0, s = (x & 0x1FFFFFu) != 0;
    up = g && (r || s || e > 0);
  }
  if (up && saturate && e == 0xFEu) up = false;
  return static_cast<uint8_t>(e + (up ? 1 : 0));
}

size_t PackedByteSize(int64_t n) { return n <= 0 ? 0 : static_cast<size_t>((n + 1) / 2); }

void PackNibbles(const uint8_t* src, int64_t n, uint8_t* dst) {
  for (int64_t i = 0; i + 1 < n; i += 2)
    dst[i / 2] = static_cast<uint8_t>((src[i] & 0x0Fu) | ((src[i + 1] & 0x0Fu) << 4));
  if (n > 0 && (n & 1)) dst[n / 2] = static_cast<uint8_t>(src[n - 1] & 0x0Fu);
}

void UnpackNibbles(const uint8_t* src, int64_t n, DType t, uint8_t* dst) {
  const bool sign_extend = t == DType::kI4;
  for (int64_t i = 0; i < n; ++i) {
    uint8_t v = static_cast<uint8_t>((i & 1) ? (src[i / 2] >> 4) : (src[i / 2] & 0x0Fu));
    if (sign_extend && (v & 0x8u)) v = static_cast<uint8_t>(v | 0xF0u);
    dst[i] = v;
  }
}

}  // namespace tessera
