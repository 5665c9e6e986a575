// Helpers for backend plugins: error reporting across the ABI and read-only
// accessors over tsr_graph_view. Header-only; plugins include this and
// include/tessera/backend.h, never the core's graph/compiler/runtime headers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "tessera/backend.h"

namespace tessera::plugin {

// A plugin-side status: code + message. ok() when code == TSR_OK.
struct Err {
  int32_t code = TSR_OK;
  std::string message;
  bool ok() const { return code == TSR_OK; }
  static Err Ok() { return {}; }
};

inline Err MakeErr(int32_t code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
inline Err MakeErr(int32_t code, const char* fmt, ...) {
  char buf[TSR_ERROR_MESSAGE_CAPACITY];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return Err{code, buf};
}

// Writes `e` into the ABI error (may be NULL) and returns its code.
inline int32_t Report(const Err& e, tsr_error* err) {
  if (err && !e.ok()) {
    err->code = e.code;
    std::snprintf(err->message, sizeof(err->message), "%s", e.message.c_str());
  }
  return e.code;
}

// Exception barrier for ABI entry points: `TSR_PLUGIN_GUARD_BEGIN ... body ...
// TSR_PLUGIN_GUARD_END(err, "cpu backend", "out of memory")` turns an escaping
// exception into an error: "<name>: <oom> in <function>" (TSR_ERR_OUT_OF_MEMORY)
// for std::bad_alloc, "<name>: <function>: <what>" or "... unknown exception"
// (TSR_ERR_INTERNAL) otherwise.
#define TSR_PLUGIN_GUARD_BEGIN try {
#define TSR_PLUGIN_GUARD_END(err, name, oom)                                                                        \
  }                                                                                                                 \
  catch (const std::bad_alloc&) {                                                                                   \
    return ::tessera::plugin::Report(                                                                               \
        ::tessera::plugin::MakeErr(TSR_ERR_OUT_OF_MEMORY, "%s: %s in %s", name, oom, __func__), err);               \
  }                                                                                                                 \
  catch (const std::exception& e) {                                                                                 \
    return ::tessera::plugin::Report(                                                                               \
        ::tessera::plugin::MakeErr(TSR_ERR_INTERNAL, "%s: %s: %s", name, __func__, e.what()), err);                 \
  }                                                                                                                 \
  catch (...) {                                                                                                     \
    return ::tessera::plugin::Report(                                                                               \
        ::tessera::plugin::MakeErr(TSR_ERR_INTERNAL, "%s: %s: unknown exception", name, __func__), err);            \
  }

// The value of compile option `key` (the first one), or NULL when absent.
inline const char* FindOption(const tsr_compile_options* o, const char* key) {
  if (!o || !o->options) return nullptr;
  for (uint32_t i = 0; i < o->num_options; ++i)
    if (o->options[i].key && std::strcmp(o->options[i].key, key) == 0) return o->options[i].value;
  return nullptr;
}

inline size_t DTypeSize(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_F32: case TSR_DTYPE_I32: case TSR_DTYPE_U32: return 4;
    case TSR_DTYPE_U8: case TSR_DTYPE_I8: case TSR_DTYPE_BOOL: return 1;
    case TSR_DTYPE_U16: case TSR_DTYPE_I16: case TSR_DTYPE_F16: case TSR_DTYPE_BF16: return 2;
    case TSR_DTYPE_I64: case TSR_DTYPE_F64: case TSR_DTYPE_U64: return 8;
    // One byte each: float8 patterns; i4/u4/f4e2m1 unpacked (see backend.h).
    case TSR_DTYPE_F8E4M3FN: case TSR_DTYPE_F8E4M3FNUZ: case TSR_DTYPE_F8E5M2: case TSR_DTYPE_F8E5M2FNUZ:
    case TSR_DTYPE_U4: case TSR_DTYPE_I4: case TSR_DTYPE_F4E2M1: case TSR_DTYPE_F8E8M0: return 1;
    default: return 0;
  }
}

inline const char* DTypeName(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_F32: return "f32";   case TSR_DTYPE_U8: return "u8";    case TSR_DTYPE_I8: return "i8";
    case TSR_DTYPE_U16: return "u16";   case TSR_DTYPE_I16: return "i16";  case TSR_DTYPE_I32: return "i32";
    case TSR_DTYPE_I64: return "i64";   case TSR_DTYPE_STRING: return "string"; case TSR_DTYPE_BOOL: return "bool";
    case TSR_DTYPE_F16: return "f16";   case TSR_DTYPE_F64: return "f64";  case TSR_DTYPE_U32: return "u32";
    case TSR_DTYPE_U64: return "u64";   case TSR_DTYPE_BF16: return "bf16";
    case TSR_DTYPE_F8E4M3FN: return "f8e4m3fn";   case TSR_DTYPE_F8E4M3FNUZ: return "f8e4m3fnuz";
    case TSR_DTYPE_F8E5M2: return "f8e5m2";       case TSR_DTYPE_F8E5M2FNUZ: return "f8e5m2fnuz";
    case TSR_DTYPE_U4: return "u4";               case TSR_DTYPE_I4: return "i4";
    case TSR_DTYPE_F4E2M1: return "f4e2m1";       case TSR_DTYPE_F8E8M0: return "f8e8m0";
    default: return "undefined";
  }
}

// ---- narrow float formats ---------------------------------------------------------
// Plugin-side copy of graph/dtype.h's MiniFloatToFloat / FloatToMiniFloat /
// E8M0 conversions (plugins may not include graph/; a unit test checks both
// copies agree on every bit pattern). Minifloats: the four float8 formats and
// f4e2m1. Encoding rounds to nearest even; saturate clamps overflow and +-inf
// to +-max, else overflow becomes inf (e5m2) or NaN; f4e2m1 always saturates
// and maps NaN to 0x8, as ONNX's reference does.

inline bool IsMiniFloatDType(int32_t dt) {
  return dt == TSR_DTYPE_F8E4M3FN || dt == TSR_DTYPE_F8E4M3FNUZ || dt == TSR_DTYPE_F8E5M2 ||
         dt == TSR_DTYPE_F8E5M2FNUZ || dt == TSR_DTYPE_F4E2M1;
}

namespace minifloat {

enum Kind { kIeee, kFn, kFnuz, kFinite };
struct Format {
  int exp_bits, man_bits, bias;
  Kind kind;
};

inline Format FormatOf(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_F8E4M3FN: return {4, 3, 7, kFn};
    case TSR_DTYPE_F8E4M3FNUZ: return {4, 3, 8, kFnuz};
    case TSR_DTYPE_F8E5M2: return {5, 2, 15, kIeee};
    case TSR_DTYPE_F8E5M2FNUZ: return {5, 2, 16, kFnuz};
    default: return {2, 1, 1, kFinite};  // f4e2m1
  }
}

inline uint32_t MaxCode(const Format& f) {
  const uint32_t all = (1u << (f.exp_bits + f.man_bits)) - 1;
  if (f.kind == kFn) return all - 1;
  if (f.kind == kIeee) return all - (1u << f.man_bits);
  return all;
}

inline double Decode(const Format& f, uint32_t bits) {
  const int width = f.exp_bits + f.man_bits;
  const uint32_t sign = (bits >> width) & 1u;
  const uint32_t mag = bits & ((1u << width) - 1);
  const uint32_t e = mag >> f.man_bits;
  const uint32_t m = mag & ((1u << f.man_bits) - 1);
  if (f.kind == kFnuz && sign && mag == 0) return std::nan("");
  if (f.kind == kFn && mag == (1u << width) - 1) return sign ? -std::nan("") : std::nan("");
  if (f.kind == kIeee && e == (1u << f.exp_bits) - 1) {
    if (m != 0) return sign ? -std::nan("") : std::nan("");
    return sign ? -HUGE_VAL : HUGE_VAL;
  }
  const double v = e == 0 ? std::ldexp(static_cast<double>(m), 1 - f.bias - f.man_bits)
                          : std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -f.man_bits),
                                       static_cast<int>(e) - f.bias);
  return sign ? -v : v;
}

inline uint8_t Encode(const Format& f, double x, bool saturate) {
  const int width = f.exp_bits + f.man_bits;
  const uint32_t sign_bit = 1u << width;
  const uint32_t sign = std::signbit(x) ? sign_bit : 0;
  const uint32_t max_code = MaxCode(f);
  const double max_val = Decode(f, max_code);
  uint32_t nan_code = sign_bit;  // fnuz; f4e2m1 (-0, as the reference)
  if (f.kind == kFn) nan_code = sign | (sign_bit - 1);
  if (f.kind == kIeee) nan_code = sign | (sign_bit - (1u << (f.man_bits - 1)));
  uint32_t overflow_code = nan_code;
  if (f.kind == kIeee) overflow_code = sign | (max_code + 1);
  if (f.kind == kFinite) overflow_code = sign | max_code;
  if (std::isnan(x)) return static_cast<uint8_t>(nan_code);
  double a = std::fabs(x);
  if (saturate || f.kind == kFinite) {
    if (a > max_val) a = max_val;
  } else if (std::isinf(a)) {
    return static_cast<uint8_t>(overflow_code);
  }
  const int emin = 1 - f.bias;
  double v = 0;
  if (a != 0) {
    int ex = 0;
    std::frexp(a, &ex);
    const int scale = std::max(ex - 1, emin) - f.man_bits;
    v = std::ldexp(std::nearbyint(std::ldexp(a, -scale)), scale);
  }
  if (v > max_val) return static_cast<uint8_t>(overflow_code);
  if (v == 0) return static_cast<uint8_t>(f.kind == kFnuz ? 0 : sign);
  int ex = 0;
  std::frexp(v, &ex);
  const int ue = ex - 1;
  uint32_t code;
  if (ue < emin) {
    code = static_cast<uint32_t>(std::ldexp(v, f.man_bits - emin));
  } else {
    code = (static_cast<uint32_t>(ue + f.bias) << f.man_bits) |
           (static_cast<uint32_t>(std::ldexp(v, f.man_bits - ue)) - (1u << f.man_bits));
  }
  return static_cast<uint8_t>(sign | code);
}

}  // namespace minifloat

// `dt` must satisfy IsMiniFloatDType.
inline float MiniFloatToFloat(int32_t dt, uint8_t bits) {
  return static_cast<float>(minifloat::Decode(minifloat::FormatOf(dt), bits));
}
inline uint8_t FloatToMiniFloat(int32_t dt, float x, bool saturate) {
  return minifloat::Encode(minifloat::FormatOf(dt), x, saturate);
}

// f8e8m0: 2^(bits-127), 0xFF = NaN. Encoding ignores the sign; NaN/inf -> 0xFF.
enum class E8M0Round { kUp, kDown, kNearest };
inline float E8M0ToFloat(uint8_t bits) {
  return bits == 0xFF ? std::nanf("") : std::ldexp(1.0f, static_cast<int>(bits) - 127);
}
inline uint8_t FloatToE8M0(float f, bool saturate, E8M0Round mode) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t e = (x >> 23) & 0xFFu;
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

// IEEE half / bfloat16 <-> float (round to nearest even; NaN stays NaN).
inline float HalfBitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  float f;
  if (e == 0) {
    f = std::ldexp(static_cast<float>(m), -24);
    return sign ? -f : f;
  }
  uint32_t bits = e == 0x1f ? (sign | 0x7f800000u | (m << 13)) : (sign | ((e + 112) << 23) | (m << 13));
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint16_t FloatToHalfBits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0));
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (a < 0x38800000u) {  // half subnormal or zero
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t e = a >> 23;
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;
    uint32_t hm = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (hm & 1u))) ++hm;
    return static_cast<uint16_t>(sign | hm);
  }
  uint32_t h = (((a >> 23) - 112) << 10) | ((a & 0x7fffffu) >> 13);
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}
inline float BF16BitsToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint16_t FloatToBF16Bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// One axis of ONNX Slice: for an axis of length `dim` and step != 0, the
// first index taken and the number of elements (starts/ends are negative
// from the end, then clamped as the spec says: [0, dim] for a positive step,
// start to [0, dim - 1] and end to [-1, dim - 1] for a negative one).
struct SliceAxis {
  int64_t first = 0, count = 0;
};
inline SliceAxis ResolveSliceAxis(int64_t start, int64_t end, int64_t step, int64_t dim) {
  SliceAxis r;
  if (dim <= 0) return r;  // nothing to take (and no valid index to clamp to)
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    r.first = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    r.count = end > r.first ? (end - r.first + step - 1) / step : 0;
  } else {
    r.first = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    r.count = r.first > end ? (r.first - end + (-step) - 1) / (-step) : 0;
  }
  return r;
}

// Attribute lookup on a node view.
class NodeAttrs {
 public:
  explicit NodeAttrs(const tsr_node_view& n) : n_(n) {}
  const tsr_attr_view* Find(const char* name) const {
    for (uint32_t i = 0; i < n_.num_attrs; ++i)
      if (std::strcmp(n_.attrs[i].name, name) == 0) return &n_.attrs[i];
    return nullptr;
  }
  bool Has(const char* name) const { return Find(name) != nullptr; }
  int64_t Int(const char* name, int64_t def) const {
    const tsr_attr_view* a = Find(name);
    return a && a->type == TSR_ATTR_INT ? a->i : def;
  }
  float Float(const char* name, float def) const {
    const tsr_attr_view* a = Find(name);
    return a && a->type == TSR_ATTR_FLOAT ? a->f : def;
  }
  std::string String(const char* name, const std::string& def) const {
    const tsr_attr_view* a = Find(name);
    return a && a->type == TSR_ATTR_STRING ? std::string(a->s, a->s_len) : def;
  }
  std::vector<int64_t> Ints(const char* name, std::vector<int64_t> def = {}) const {
    const tsr_attr_view* a = Find(name);
    if (!a || a->type != TSR_ATTR_INTS) return def;
    return std::vector<int64_t>(a->ints, a->ints + a->count);
  }
  std::vector<float> Floats(const char* name, std::vector<float> def = {}) const {
    const tsr_attr_view* a = Find(name);
    if (!a || a->type != TSR_ATTR_FLOATS) return def;
    return std::vector<float>(a->floats, a->floats + a->count);
  }
  const tsr_tensor_view* Tensor(const char* name) const {
    const tsr_attr_view* a = Find(name);
    return a && a->type == TSR_ATTR_TENSOR ? a->tensor : nullptr;
  }

 private:
  const tsr_node_view& n_;
};

}  // namespace tessera::plugin
