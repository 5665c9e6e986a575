// CPU kernels: Cast/CastLike over all dtypes, (de)quantization, integer matmul/conv.
//
// Element storage follows include/tessera/backend.h: float8 types are one
// byte of bit pattern; i4/u4/f4e2m1 are unpacked, one element per byte.
// String tensors have no arena representation, so Cast to/from string is
// reported as unsupported by the claim check and the factory.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/simd_convert.h"

namespace tessera::cpu {
namespace {

using plugin::E8M0Round;

const char* DT(int32_t dt) { return plugin::DTypeName(dt); }

// ---- element codecs --------------------------------------------------------------------------

bool IsIntLike(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_U8: case TSR_DTYPE_I8: case TSR_DTYPE_U16: case TSR_DTYPE_I16: case TSR_DTYPE_U32:
    case TSR_DTYPE_I32: case TSR_DTYPE_U64: case TSR_DTYPE_I64: case TSR_DTYPE_BOOL: case TSR_DTYPE_U4:
    case TSR_DTYPE_I4:
      return true;
    default:
      return false;
  }
}

// Every numeric dtype the codecs handle (all fixed-size ONNX types).
bool IsCastable(int32_t dt) { return dt != TSR_DTYPE_STRING && plugin::DTypeSize(dt) != 0; }

struct CastOpts {
  bool saturate = true;              // float8 targets only
  E8M0Round round = E8M0Round::kUp;  // f8e8m0 targets only
};

template <typename T>
void LoadAs(const void* src, int64_t n, double* out) {
  const T* s = static_cast<const T*>(src);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<double>(s[i]);
}

// src[0..n) of dtype dt -> doubles (exact for every type except 64-bit ints beyond 2^53).
void LoadF(int32_t dt, const void* src, int64_t n, double* out) {
  const uint8_t* b = static_cast<const uint8_t*>(src);
  const uint16_t* h = static_cast<const uint16_t*>(src);
  switch (dt) {
    case TSR_DTYPE_F32: LoadAs<float>(src, n, out); return;
    case TSR_DTYPE_F64: LoadAs<double>(src, n, out); return;
    case TSR_DTYPE_F16: for (int64_t i = 0; i < n; ++i) out[i] = plugin::HalfBitsToFloat(h[i]); return;
    case TSR_DTYPE_BF16: for (int64_t i = 0; i < n; ++i) out[i] = plugin::BF16BitsToFloat(h[i]); return;
    case TSR_DTYPE_U8: case TSR_DTYPE_U4: LoadAs<uint8_t>(src, n, out); return;
    case TSR_DTYPE_I8: case TSR_DTYPE_I4: LoadAs<int8_t>(src, n, out); return;
    case TSR_DTYPE_BOOL: for (int64_t i = 0; i < n; ++i) out[i] = b[i] ? 1.0 : 0.0; return;
    case TSR_DTYPE_U16: LoadAs<uint16_t>(src, n, out); return;
    case TSR_DTYPE_I16: LoadAs<int16_t>(src, n, out); return;
    case TSR_DTYPE_U32: LoadAs<uint32_t>(src, n, out); return;
    case TSR_DTYPE_I32: LoadAs<int32_t>(src, n, out); return;
    case TSR_DTYPE_U64: LoadAs<uint64_t>(src, n, out); return;
    case TSR_DTYPE_I64: LoadAs<int64_t>(src, n, out); return;
    case TSR_DTYPE_F8E8M0: for (int64_t i = 0; i < n; ++i) out[i] = plugin::E8M0ToFloat(b[i]); return;
    default:  // minifloats: decode through a 256-entry table
      if (plugin::IsMiniFloatDType(dt)) {
        float lut[256];
        for (int v = 0; v < 256; ++v) lut[v] = plugin::MiniFloatToFloat(dt, static_cast<uint8_t>(v));
        for (int64_t i = 0; i < n; ++i) out[i] = lut[b[i]];
      }
      return;
  }
}

// Float -> integer: truncation toward zero (C / numpy astype); NaN -> 0;
// beyond int64 saturates. The caller then wraps to the target width.
inline int64_t TruncToI64(double d) {
  if (std::isnan(d)) return 0;
  if (d >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
  if (d <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(d);
}

template <typename T>
void StoreIntAs(const int64_t* in, int64_t n, void* dst) {
  T* d = static_cast<T*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<T>(in[i]);  // modular (C++20)
}

// int64 -> integer dtype, wrapping to the target width (i4: sign-extended low nibble).
void StoreI(int32_t dt, const int64_t* in, int64_t n, void* dst) {
  uint8_t* b = static_cast<uint8_t*>(dst);
  switch (dt) {
    case TSR_DTYPE_U8: StoreIntAs<uint8_t>(in, n, dst); return;
    case TSR_DTYPE_I8: StoreIntAs<int8_t>(in, n, dst); return;
    case TSR_DTYPE_U16: StoreIntAs<uint16_t>(in, n, dst); return;
    case TSR_DTYPE_I16: StoreIntAs<int16_t>(in, n, dst); return;
    case TSR_DTYPE_U32: StoreIntAs<uint32_t>(in, n, dst); return;
    case TSR_DTYPE_I32: StoreIntAs<int32_t>(in, n, dst); return;
    case TSR_DTYPE_U64: StoreIntAs<uint64_t>(in, n, dst); return;
    case TSR_DTYPE_I64: StoreIntAs<int64_t>(in, n, dst); return;
    case TSR_DTYPE_BOOL: for (int64_t i = 0; i < n; ++i) b[i] = in[i] != 0; return;
    case TSR_DTYPE_U4: for (int64_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(in[i] & 0xF); return;
    case TSR_DTYPE_I4:
      for (int64_t i = 0; i < n; ++i) {
        const int64_t v = in[i] & 0xF;
        b[i] = static_cast<uint8_t>(static_cast<int8_t>(v >= 8 ? v - 16 : v));
      }
      return;
    default: return;
  }
}

void LoadI(int32_t dt, const void* src, int64_t n, int64_t* out) {
  const uint8_t* b = static_cast<const uint8_t*>(src);
  auto load = [&](auto tag) {
    using T = decltype(tag);
    const T* s = static_cast<const T*>(src);
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int64_t>(s[i]);
  };
  switch (dt) {
    case TSR_DTYPE_U8: case TSR_DTYPE_U4: load(uint8_t{}); return;
    case TSR_DTYPE_I8: case TSR_DTYPE_I4: load(int8_t{}); return;
    case TSR_DTYPE_U16: load(uint16_t{}); return;
    case TSR_DTYPE_I16: load(int16_t{}); return;
    case TSR_DTYPE_U32: load(uint32_t{}); return;
    case TSR_DTYPE_I32: load(int32_t{}); return;
    case TSR_DTYPE_U64: load(uint64_t{}); return;  // bit pattern kept: wraps back on store
    case TSR_DTYPE_I64: load(int64_t{}); return;
    case TSR_DTYPE_BOOL: for (int64_t i = 0; i < n; ++i) out[i] = b[i] != 0; return;
    default: return;
  }
}

template <typename T>
void StoreFloatAs(const double* in, int64_t n, void* dst) {
  T* d = static_cast<T*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<T>(in[i]);
}

// doubles -> dtype dt (rounding to nearest even for floats, truncation for ints).
void StoreF(int32_t dt, const double* in, int64_t n, void* dst, const CastOpts& o) {
  uint8_t* b = static_cast<uint8_t*>(dst);
  uint16_t* h = static_cast<uint16_t*>(dst);
  switch (dt) {
    case TSR_DTYPE_F32: StoreFloatAs<float>(in, n, dst); return;
    case TSR_DTYPE_F64: StoreFloatAs<double>(in, n, dst); return;
    case TSR_DTYPE_F16: for (int64_t i = 0; i < n; ++i) h[i] = plugin::FloatToHalfBits(static_cast<float>(in[i])); return;
    case TSR_DTYPE_BF16:
      for (int64_t i = 0; i < n; ++i) h[i] = plugin::FloatToBF16Bits(static_cast<float>(in[i]));
      return;
    case TSR_DTYPE_BOOL: for (int64_t i = 0; i < n; ++i) b[i] = in[i] != 0; return;  // NaN -> true
    case TSR_DTYPE_F8E8M0:
      for (int64_t i = 0; i < n; ++i) b[i] = plugin::FloatToE8M0(static_cast<float>(in[i]), o.saturate, o.round);
      return;
    case TSR_DTYPE_U64: {
      uint64_t* d = static_cast<uint64_t*>(dst);
      for (int64_t i = 0; i < n; ++i) {
        const double v = in[i];
        if (v >= 9.2233720368547758e18)
          d[i] = v >= 1.8446744073709552e19 ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(v);
        else
          d[i] = static_cast<uint64_t>(TruncToI64(v));
      }
      return;
    }
    default:
      if (plugin::IsMiniFloatDType(dt)) {  // encoded from the double: no double rounding for f64 sources
        const plugin::minifloat::Format f = plugin::minifloat::FormatOf(dt);
        for (int64_t i = 0; i < n; ++i) b[i] = plugin::minifloat::Encode(f, in[i], o.saturate);
        return;
      }
      if (IsIntLike(dt)) {
        int64_t tmp[256];
        for (int64_t i0 = 0; i0 < n; i0 += 256) {
          const int64_t m = std::min<int64_t>(256, n - i0);
          for (int64_t i = 0; i < m; ++i) tmp[i] = TruncToI64(in[i0 + i]);
          StoreI(dt, tmp, m, b + i0 * static_cast<int64_t>(plugin::DTypeSize(dt)));
        }
      }
      return;
  }
}

// Converts n elements from `from` to `to`.
void ConvertRange(int32_t from, const void* src, int32_t to, void* dst, int64_t n, const CastOpts& o) {
  const int64_t fs = static_cast<int64_t>(plugin::DTypeSize(from)), ts = static_cast<int64_t>(plugin::DTypeSize(to));
  const uint8_t* s = static_cast<const uint8_t*>(src);
  uint8_t* d = static_cast<uint8_t*>(dst);
  constexpr int64_t kChunk = 256;
  if (IsIntLike(from) && IsIntLike(to)) {
    int64_t buf[kChunk];
    for (int64_t i = 0; i < n; i += kChunk) {
      const int64_t m = std::min(kChunk, n - i);
      LoadI(from, s + i * fs, m, buf);
      StoreI(to, buf, m, d + i * ts);
    }
    return;
  }
  double buf[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = std::min(kChunk, n - i);
    LoadF(from, s + i * fs, m, buf);
    StoreF(to, buf, m, d + i * ts, o);
  }
}

// ---- Cast / CastLike ------------------------------------------------------------------------

class CastKernel : public Kernel {
 public:
  CastKernel(int32_t from, int32_t to, int64_t n, CastOpts o) : from_(from), to_(to), n_(n), o_(o) {}
  Err Run(const void* const* in, void* const* out) const override {
    if (from_ == to_) {
      if (n_ > 0 && in[0] != out[0]) std::memmove(out[0], in[0], static_cast<size_t>(n_) * plugin::DTypeSize(to_));
      return Err::Ok();
    }
    const int64_t fs = static_cast<int64_t>(plugin::DTypeSize(from_)), ts = static_cast<int64_t>(plugin::DTypeSize(to_));
    const uint8_t* s = static_cast<const uint8_t*>(in[0]);
    uint8_t* d = static_cast<uint8_t*>(out[0]);
    if (FastPath fast = FastPathFor(from_, to_)) {
      // Bit-identical to ConvertRange (simd_convert.h), without the trip through doubles.
      ParallelFor(n_, 1 << 14, [&](int64_t b, int64_t e) { fast(s + b * fs, d + b * ts, e - b); });
      return Err::Ok();
    }
    ParallelFor(n_, 1 << 14, [&](int64_t b, int64_t e) { ConvertRange(from_, s + b * fs, to_, d + b * ts, e - b, o_); });
    return Err::Ok();
  }

 private:
  using FastPath = void (*)(const void* src, void* dst, int64_t n);
  // The vectorized conversion of this pair of dtypes, or null.
  static FastPath FastPathFor(int32_t from, int32_t to) {
    if (from == TSR_DTYPE_F32 && to == TSR_DTYPE_BF16)
      return [](const void* s, void* d, int64_t n) {
        simd::Converts().f32_to_bf16(static_cast<const float*>(s), static_cast<uint16_t*>(d), n);
      };
    if (from == TSR_DTYPE_BF16 && to == TSR_DTYPE_F32)
      return [](const void* s, void* d, int64_t n) {
        simd::Converts().bf16_to_f32(static_cast<const uint16_t*>(s), static_cast<float*>(d), n);
      };
    if (from == TSR_DTYPE_F32 && to == TSR_DTYPE_F16)
      return [](const void* s, void* d, int64_t n) {
        simd::Converts().f32_to_f16(static_cast<const float*>(s), static_cast<uint16_t*>(d), n);
      };
    if (from == TSR_DTYPE_F16 && to == TSR_DTYPE_F32)
      return [](const void* s, void* d, int64_t n) {
        simd::Converts().f16_to_f32(static_cast<const uint16_t*>(s), static_cast<float*>(d), n);
      };
    return nullptr;
  }

  int32_t from_, to_;
  int64_t n_;
  CastOpts o_;
};

std::string CastSupport(int32_t from, int32_t to, const char* op) {
  if (from == TSR_DTYPE_STRING || to == TSR_DTYPE_STRING)
    return std::string("CPU ") + op + " from " + DT(from) + " to " + DT(to) +
           " is not supported: string tensors have no CPU arena representation";
  if (!IsCastable(from)) return std::string("CPU ") + op + " does not support input dtype " + DT(from);
  if (!IsCastable(to)) return std::string("CPU ") + op + " does not support target dtype " + DT(to);
  return "";
}

std::string ClaimCast(const tsr_node_view& n, const tsr_graph_view& g) {
  int32_t to = static_cast<int32_t>(plugin::NodeAttrs(n).Int("to", 0));
  if (std::strcmp(n.op_type, "CastLike") == 0) to = ClaimInputDType(n, g, 1);
  return CastSupport(ClaimInputDType(n, g, 0), to, n.op_type);
}

Err ReadCastOpts(const NodeArgs& args, CastOpts* o) {
  auto a = args.attrs();
  o->saturate = a.Int("saturate", 1) != 0;
  const std::string mode = a.String("round_mode", "up");
  if (mode == "up") o->round = E8M0Round::kUp;
  else if (mode == "down") o->round = E8M0Round::kDown;
  else if (mode == "nearest") o->round = E8M0Round::kNearest;
  else
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'round_mode' is '%s', expected 'up', 'down' or 'nearest'",
                   args.Describe().c_str(), mode.c_str());
  return Err::Ok();
}

Err CreateCastCommon(const NodeArgs& args, int32_t to, std::unique_ptr<Kernel>* out) {
  const TensorArg& x = *args.inputs[0];
  const TensorArg& y = *args.outputs[0];
  std::string why = CastSupport(x.dtype, to, args.node->op_type);
  if (!why.empty()) return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s", args.Describe().c_str(), why.c_str());
  if (y.dtype != to)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dtype %s differs from the cast target %s",
                   args.Describe().c_str(), DT(y.dtype), DT(to));
  if (y.numel != x.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output has %lld elements, input %lld", args.Describe().c_str(),
                   static_cast<long long>(y.numel), static_cast<long long>(x.numel));
  CastOpts o;
  Err e = ReadCastOpts(args, &o);
  if (!e.ok()) return e;
  *out = std::make_unique<CastKernel>(x.dtype, to, x.numel, o);
  return Err::Ok();
}

Err CreateCast(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  auto a = args.attrs();
  if (!a.Has("to")) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'to' is required", args.Describe().c_str());
  return CreateCastCommon(args, static_cast<int32_t>(a.Int("to", 0)), out);
}

Err CreateCastLike(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  return CreateCastCommon(args, args.inputs[1]->dtype, out);
}

// ---- QuantizeLinear / DequantizeLinear ---------------------------------------------------------

// Maps a flat element index of x to the index of its scale / zero point:
// per-tensor (one value), per-axis (1-D along `axis`) or blocked (scale has
// x's shape with dim `axis` = ceil(D / block)).
struct ParamMap {
  enum Mode { kTensor, kAxis, kBlocked } mode = kTensor;
  int64_t axis_dim = 1, inner = 1, block = 1, nblocks = 1;
  int64_t count = 1;  // number of scale values
  int64_t Index(int64_t i) const {
    switch (mode) {
      case kTensor: return 0;
      case kAxis: return (i / inner) % axis_dim;
      case kBlocked: {
        const int64_t o = i / (axis_dim * inner), a = (i / inner) % axis_dim, in = i % inner;
        return (o * nblocks + a / block) * inner + in;
      }
    }
    return 0;
  }
};

// Validates the scale's shape against x (and the zero point's against the
// scale) and builds the index map. `what` names the scale input.
Err MakeParamMap(const NodeArgs& args, const TensorArg& x, const TensorArg& scale, const TensorArg* zp,
                 const char* what, ParamMap* pm) {
  const std::string desc = args.Describe();
  auto a = args.attrs();
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const int64_t block = a.Int("block_size", 0);
  if (block < 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'block_size' is %lld, expected >= 0", desc.c_str(),
                   static_cast<long long>(block));
  if (zp && zp->numel != scale.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: zero point has shape %s, %s has %s (they must match)", desc.c_str(),
                   DimsToString(zp->dims).c_str(), what, DimsToString(scale.dims).c_str());
  pm->count = scale.numel;
  if (scale.numel == 1 && block == 0) {
    pm->mode = ParamMap::kTensor;
    return Err::Ok();
  }
  int64_t axis = 0;
  if (!NormalizeAxis(a.Int("axis", 1), rank, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'axis' %lld is out of range for x of rank %lld",
                   desc.c_str(), static_cast<long long>(a.Int("axis", 1)), static_cast<long long>(rank));
  pm->axis_dim = x.dims[axis];
  pm->inner = 1;
  for (int64_t d = axis + 1; d < rank; ++d) pm->inner *= x.dims[d];
  if (block == 0) {
    if (scale.dims.size() != 1 || scale.dims[0] != x.dims[axis])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                     "%s: %s has shape %s; per-axis quantization needs a 1-D tensor of %lld (x%s, axis %lld)",
                     desc.c_str(), what, DimsToString(scale.dims).c_str(), static_cast<long long>(x.dims[axis]),
                     DimsToString(x.dims).c_str(), static_cast<long long>(axis));
    pm->mode = ParamMap::kAxis;
    return Err::Ok();
  }
  pm->block = block;
  pm->nblocks = (x.dims[axis] + block - 1) / block;
  bool ok = static_cast<int64_t>(scale.dims.size()) == rank;
  for (int64_t d = 0; ok && d < rank; ++d) ok = scale.dims[d] == (d == axis ? pm->nblocks : x.dims[d]);
  if (!ok)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                   "%s: %s has shape %s; blocked quantization (block_size %lld, axis %lld) of x%s needs x's shape "
                   "with dim %lld = %lld",
                   desc.c_str(), what, DimsToString(scale.dims).c_str(), static_cast<long long>(block),
                   static_cast<long long>(axis), DimsToString(x.dims).c_str(), static_cast<long long>(axis),
                   static_cast<long long>(pm->nblocks));
  pm->mode = ParamMap::kBlocked;
  return Err::Ok();
}

bool IsFloatScale(int32_t dt) {
  return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_F16 || dt == TSR_DTYPE_BF16 || dt == TSR_DTYPE_F64;
}

// Scale dtypes: floats, f8e8m0 (MX block scales) and i32 (QuantizeLinear opset 24).
bool IsScaleType(int32_t dt) { return IsFloatScale(dt) || dt == TSR_DTYPE_F8E8M0 || dt == TSR_DTYPE_I32; }

// Integer range of a quantized output type; false for float quant types.
bool IntRange(int32_t dt, int64_t* lo, int64_t* hi) {
  switch (dt) {
    case TSR_DTYPE_U8: *lo = 0; *hi = 255; return true;
    case TSR_DTYPE_I8: *lo = -128; *hi = 127; return true;
    case TSR_DTYPE_U16: *lo = 0; *hi = 65535; return true;
    case TSR_DTYPE_I16: *lo = -32768; *hi = 32767; return true;
    case TSR_DTYPE_U4: *lo = 0; *hi = 15; return true;
    case TSR_DTYPE_I4: *lo = -8; *hi = 7; return true;
    case TSR_DTYPE_I32: *lo = std::numeric_limits<int32_t>::min(); *hi = std::numeric_limits<int32_t>::max(); return true;
    default: return false;
  }
}

bool IsQuantOutput(int32_t dt) {
  int64_t lo, hi;
  return (IntRange(dt, &lo, &hi) && dt != TSR_DTYPE_I32) || plugin::IsMiniFloatDType(dt);
}

// Rounds a float result to the precision of `dt` (f16/bf16 arithmetic is
// float arithmetic rounded to the narrow type after each operation).
inline float RoundTo(int32_t dt, float v) {
  if (dt == TSR_DTYPE_F16) return plugin::HalfBitsToFloat(plugin::FloatToHalfBits(v));
  if (dt == TSR_DTYPE_BF16) return plugin::BF16BitsToFloat(plugin::FloatToBF16Bits(v));
  return v;
}

std::vector<double> LoadAll(const TensorArg* t, const void* data) {
  std::vector<double> v;
  if (!t || !data) return v;
  v.resize(static_cast<size_t>(t->numel));
  LoadF(t->dtype, data, t->numel, v.data());
  return v;
}

class QuantizeKernel : public Kernel {
 public:
  QuantizeKernel(const TensorArg& x, const TensorArg& scale, const TensorArg* zp, int32_t out_dt, int32_t compute_dt,
                 ParamMap pm, bool saturate)
      : x_(x), scale_(scale), zp_(zp ? *zp : TensorArg{}), has_zp_(zp != nullptr), out_(out_dt),
        compute_(compute_dt), pm_(pm), saturate_(saturate) {}

  Err Run(const void* const* in, void* const* out) const override {
    const std::vector<double> scale = LoadAll(&scale_, in[1]);
    const std::vector<double> zp = has_zp_ ? LoadAll(&zp_, in[2]) : std::vector<double>(scale.size(), 0.0);
    const uint8_t* xs = static_cast<const uint8_t*>(in[0]);
    uint8_t* ys = static_cast<uint8_t*>(out[0]);
    const int64_t xes = x_.elem_size();
    int64_t lo = 0, hi = 0;
    const bool is_int = IntRange(out_, &lo, &hi);
    CastOpts o;
    o.saturate = saturate_;
    ParallelFor(x_.numel, 1 << 13, [&](int64_t b, int64_t e) {
      constexpr int64_t kChunk = 256;
      double buf[kChunk];
      int64_t ibuf[kChunk];
      for (int64_t i0 = b; i0 < e; i0 += kChunk) {
        const int64_t m = std::min(kChunk, e - i0);
        LoadF(x_.dtype, xs + i0 * xes, m, buf);
        for (int64_t j = 0; j < m; ++j) {
          const int64_t p = pm_.Index(i0 + j);
          double q;
          if (compute_ == TSR_DTYPE_F64) q = buf[j] / scale[p];
          else q = RoundTo(compute_, static_cast<float>(buf[j]) / static_cast<float>(scale[p]));
          if (is_int) {
            double r = std::nearbyint(q) + zp[p];
            r = std::isnan(r) ? 0.0 : std::min(std::max(r, static_cast<double>(lo)), static_cast<double>(hi));
            ibuf[j] = static_cast<int64_t>(r);
          } else if (out_ == TSR_DTYPE_F4E2M1) {
            buf[j] = static_cast<float>(q) + static_cast<float>(zp[p]);
          } else {
            buf[j] = q;  // float8: the zero point is zero by definition
          }
        }
        if (is_int) StoreI(out_, ibuf, m, ys + i0);
        else StoreF(out_, buf, m, ys + i0, o);
      }
    });
    return Err::Ok();
  }

 private:
  TensorArg x_, scale_, zp_;
  bool has_zp_;
  int32_t out_, compute_;
  ParamMap pm_;
  bool saturate_;
};

std::string ClaimQuantize(const tsr_node_view& n, const tsr_graph_view& g) {
  const int32_t x = ClaimInputDType(n, g, 0);
  if (!IsFloatScale(x) && x != TSR_DTYPE_I32)
    return std::string("CPU QuantizeLinear does not support x of dtype ") + DT(x);
  const int32_t s = ClaimInputDType(n, g, 1);
  if (!IsScaleType(s)) return std::string("CPU QuantizeLinear does not support y_scale of dtype ") + DT(s);
  return "";
}

Err CreateQuantize(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 3, 1, 1);
  if (!e.ok()) return e;
  const std::string desc = args.Describe();
  const TensorArg& x = *args.inputs[0];
  const TensorArg& scale = *args.inputs[1];
  const TensorArg* zp = args.has_input(2) ? args.inputs[2] : nullptr;
  const int32_t out_dt = args.outputs[0]->dtype;
  if (!IsFloatScale(x.dtype) && x.dtype != TSR_DTYPE_I32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: x has dtype %s, expected f32, f16, bf16, f64 or i32", desc.c_str(),
                   DT(x.dtype));
  if (!IsScaleType(scale.dtype))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: y_scale has dtype %s, expected a float, f8e8m0 or i32 type", desc.c_str(),
                   DT(scale.dtype));
  if (!IsQuantOutput(out_dt))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: output dtype %s is not a quantized type", desc.c_str(), DT(out_dt));
  if (zp && zp->dtype != out_dt)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: y_zero_point has dtype %s but the output is %s", desc.c_str(),
                   DT(zp->dtype), DT(out_dt));
  if (args.outputs[0]->numel != x.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s differs from x%s", desc.c_str(),
                   DimsToString(args.outputs[0]->dims).c_str(), DimsToString(x.dims).c_str());
  ParamMap pm;
  e = MakeParamMap(args, x, scale, zp, "y_scale", &pm);
  if (!e.ok()) return e;
  auto a = args.attrs();
  // numpy promotion of x / y_scale: the common type when they differ (f16 and
  // bf16 only stay narrow when both operands are), x's type for e8m0 scales
  // (powers of two divide exactly).
  int32_t compute = x.dtype == TSR_DTYPE_I32 ? TSR_DTYPE_F32 : x.dtype;
  if (scale.dtype != x.dtype && IsFloatScale(scale.dtype))
    compute = (x.dtype == TSR_DTYPE_F64 || scale.dtype == TSR_DTYPE_F64) ? TSR_DTYPE_F64 : TSR_DTYPE_F32;
  if (const int64_t prec = a.Int("precision", 0); prec != 0) {
    if (!IsFloatScale(static_cast<int32_t>(prec)))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'precision' is %lld, expected a float dtype",
                     desc.c_str(), static_cast<long long>(prec));
    compute = static_cast<int32_t>(prec);
  }
  *out = std::make_unique<QuantizeKernel>(x, scale, zp, out_dt, compute, pm, a.Int("saturate", 1) != 0);
  return Err::Ok();
}

class DequantizeKernel : public Kernel {
 public:
  DequantizeKernel(const TensorArg& x, const TensorArg& scale, const TensorArg* zp, int32_t out_dt, ParamMap pm)
      : x_(x), scale_(scale), zp_(zp ? *zp : TensorArg{}), has_zp_(zp != nullptr), out_(out_dt), pm_(pm) {}

  Err Run(const void* const* in, void* const* out) const override {
    const std::vector<double> scale = LoadAll(&scale_, in[1]);
    // Float8/float4 inputs have no zero point (it must be zero).
    const bool use_zp = has_zp_ && !plugin::IsMiniFloatDType(x_.dtype);
    const std::vector<double> zp = use_zp ? LoadAll(&zp_, in[2]) : std::vector<double>(scale.size(), 0.0);
    const uint8_t* xs = static_cast<const uint8_t*>(in[0]);
    uint8_t* ys = static_cast<uint8_t*>(out[0]);
    const int64_t xes = x_.elem_size(), yes = static_cast<int64_t>(plugin::DTypeSize(out_));
    const bool wide = x_.dtype == TSR_DTYPE_I32 || scale_.dtype == TSR_DTYPE_F64;
    CastOpts o;
    ParallelFor(x_.numel, 1 << 13, [&](int64_t b, int64_t e) {
      constexpr int64_t kChunk = 256;
      double buf[kChunk];
      for (int64_t i0 = b; i0 < e; i0 += kChunk) {
        const int64_t m = std::min(kChunk, e - i0);
        LoadF(x_.dtype, xs + i0 * xes, m, buf);
        for (int64_t j = 0; j < m; ++j) {
          const int64_t p = pm_.Index(i0 + j);
          const double v = (buf[j] - zp[p]) * scale[p];
          buf[j] = wide ? v : static_cast<double>(static_cast<float>(v));  // f32 arithmetic otherwise
        }
        StoreF(out_, buf, m, ys + i0 * yes, o);
      }
    });
    return Err::Ok();
  }

 private:
  TensorArg x_, scale_, zp_;
  bool has_zp_;
  int32_t out_;
  ParamMap pm_;
};

std::string ClaimDequantize(const tsr_node_view& n, const tsr_graph_view& g) {
  const int32_t x = ClaimInputDType(n, g, 0);
  if (!IsQuantOutput(x) && x != TSR_DTYPE_I32)
    return std::string("CPU DequantizeLinear does not support x of dtype ") + DT(x);
  const int32_t s = ClaimInputDType(n, g, 1);
  if (!IsScaleType(s)) return std::string("CPU DequantizeLinear does not support x_scale of dtype ") + DT(s);
  return "";
}

Err CreateDequantize(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 3, 1, 1);
  if (!e.ok()) return e;
  const std::string desc = args.Describe();
  const TensorArg& x = *args.inputs[0];
  const TensorArg& scale = *args.inputs[1];
  const TensorArg* zp = args.has_input(2) ? args.inputs[2] : nullptr;
  const int32_t out_dt = args.outputs[0]->dtype;
  if (!IsQuantOutput(x.dtype) && x.dtype != TSR_DTYPE_I32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: x has dtype %s, which is not a quantized type", desc.c_str(), DT(x.dtype));
  if (!IsScaleType(scale.dtype))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: x_scale has dtype %s, expected a float, f8e8m0 or i32 type", desc.c_str(),
                   DT(scale.dtype));
  if (!IsFloatScale(out_dt))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: output dtype %s is not a float type", desc.c_str(), DT(out_dt));
  if (zp && zp->dtype != x.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: x_zero_point has dtype %s but x is %s", desc.c_str(),
                   DT(zp->dtype), DT(x.dtype));
  if (args.outputs[0]->numel != x.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s differs from x%s", desc.c_str(),
                   DimsToString(args.outputs[0]->dims).c_str(), DimsToString(x.dims).c_str());
  ParamMap pm;
  e = MakeParamMap(args, x, scale, zp, "x_scale", &pm);
  if (!e.ok()) return e;
  *out = std::make_unique<DequantizeKernel>(x, scale, zp, out_dt, pm);
  return Err::Ok();
}

// ---- DynamicQuantizeLinear ----------------------------------------------------------------------

class DynamicQuantizeKernel : public Kernel {
 public:
  explicit DynamicQuantizeKernel(int64_t n) : n_(n) {}
  Err Run(const void* const* in, void* const* out) const override {
    const float* x = static_cast<const float*>(in[0]);
    float lo = 0.f, hi = 0.f;  // the range always includes 0
    for (int64_t i = 0; i < n_; ++i) {
      if (x[i] < lo) lo = x[i];
      if (x[i] > hi) hi = x[i];
    }
    const float scale = (hi == lo ? 1.0f : hi - lo) / 255.0f;
    const float zp_f = std::min(255.0f, std::max(0.0f, 0.0f - lo / scale));
    const float zp = std::nearbyint(zp_f);
    uint8_t* y = static_cast<uint8_t*>(out[0]);
    ParallelFor(n_, 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float v = std::nearbyint(x[i] / scale) + zp;
        y[i] = static_cast<uint8_t>(std::isnan(v) ? 0.f : std::min(255.f, std::max(0.f, v)));
      }
    });
    if (out[1]) *static_cast<float*>(out[1]) = scale;
    if (out[2]) *static_cast<uint8_t*>(out[2]) = static_cast<uint8_t>(zp);
    return Err::Ok();
  }

 private:
  int64_t n_;
};

Err CreateDynamicQuantize(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 3);
  if (!e.ok()) return e;
  const TensorArg& x = *args.inputs[0];
  if (x.dtype != TSR_DTYPE_F32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: x has dtype %s, expected f32", args.Describe().c_str(), DT(x.dtype));
  const int32_t want[3] = {TSR_DTYPE_U8, TSR_DTYPE_F32, TSR_DTYPE_U8};
  for (size_t i = 0; i < args.outputs.size(); ++i)
    if (args.outputs[i] && (args.outputs[i]->dtype != want[i] || (i > 0 && args.outputs[i]->numel != 1)))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu is %s%s, expected %s%s", args.Describe().c_str(), i,
                     DT(args.outputs[i]->dtype), DimsToString(args.outputs[i]->dims).c_str(), DT(want[i]),
                     i == 0 ? DimsToString(x.dims).c_str() : " scalar");
  *out = std::make_unique<DynamicQuantizeKernel>(x.numel);
  return Err::Ok();
}

}  // namespace

void RegisterQuantLinearKernels(KernelRegistry& r) {
  r.Add({"", "QuantizeLinear", &CreateQuantize, &ClaimQuantize});
  r.Add({"", "DequantizeLinear", &CreateDequantize, &ClaimDequantize});
  r.Add({"", "DynamicQuantizeLinear", &CreateDynamicQuantize, nullptr});
}

namespace {

// ---- integer MatMul (MatMulInteger, QLinearMatMul) ------------------------------------------------

// numpy matmul geometry: 1-D operands promoted, batch dims broadcast. For
// each output batch b, a_off[b] / b_off[b] are the element offsets of A's and
// B's matrices.
struct MatMulPlan {
  int64_t m = 0, k = 0, n = 0;
  std::vector<int64_t> a_off, b_off;
};

bool MakeMatMulPlan(const std::vector<int64_t>& ad_in, const std::vector<int64_t>& bd_in, int64_t out_numel,
                    MatMulPlan* p, std::string* why) {
  if (ad_in.empty() || bd_in.empty()) {
    *why = "inputs must have rank >= 1";
    return false;
  }
  std::vector<int64_t> ad = ad_in, bd = bd_in;
  if (ad.size() == 1) ad.insert(ad.begin(), 1);
  if (bd.size() == 1) bd.push_back(1);
  p->m = ad[ad.size() - 2];
  p->k = ad[ad.size() - 1];
  p->n = bd[bd.size() - 1];
  if (bd[bd.size() - 2] != p->k) {
    *why = "inner dims differ: A" + DimsToString(ad_in) + ", B" + DimsToString(bd_in);
    return false;
  }
  std::vector<int64_t> ab(ad.begin(), ad.end() - 2), bb(bd.begin(), bd.end() - 2);
  const size_t r = std::max(ab.size(), bb.size());
  ab.insert(ab.begin(), r - ab.size(), 1);
  bb.insert(bb.begin(), r - bb.size(), 1);
  std::vector<int64_t> ob(r);
  int64_t batches = 1;
  for (size_t i = 0; i < r; ++i) {
    if (ab[i] != bb[i] && ab[i] != 1 && bb[i] != 1) {
      *why = "batch dims do not broadcast: A" + DimsToString(ad_in) + ", B" + DimsToString(bd_in);
      return false;
    }
    ob[i] = ab[i] == 1 ? bb[i] : ab[i];
    batches *= ob[i];
  }
  if (batches * p->m * p->n != out_numel) {
    *why = "output element count does not match the matmul of A" + DimsToString(ad_in) + " and B" + DimsToString(bd_in);
    return false;
  }
  p->a_off.resize(static_cast<size_t>(batches));
  p->b_off.resize(static_cast<size_t>(batches));
  for (int64_t bi = 0; bi < batches; ++bi) {
    int64_t rem = bi, ao = 0, bo = 0, as = 1, bs = 1;
    for (int64_t d = static_cast<int64_t>(r) - 1; d >= 0; --d) {
      const int64_t idx = rem % ob[d];
      rem /= ob[d];
      if (ab[d] != 1) ao += idx * as;
      if (bb[d] != 1) bo += idx * bs;
      as *= ab[d];
      bs *= bb[d];
    }
    p->a_off[bi] = ao * p->m * p->k;
    p->b_off[bi] = bo * p->k * p->n;
  }
  return true;
}

// Loads an 8-bit integer tensor as int32.
void LoadI32(int32_t dt, const void* src, int64_t n, int32_t* out) {
  if (dt == TSR_DTYPE_I8) {
    const int8_t* s = static_cast<const int8_t*>(src);
    for (int64_t i = 0; i < n; ++i) out[i] = s[i];
  } else {
    const uint8_t* s = static_cast<const uint8_t*>(src);
    for (int64_t i = 0; i < n; ++i) out[i] = s[i];
  }
}

// acc[b][i][j] = sum_k (A[i][k] - azp[i]) * (B[k][j] - bzp[j]); zero points
// have 1 (per-tensor) or m / n (per-row / per-column) entries.
void IntMatMul(const MatMulPlan& p, int32_t adt, const void* a, const std::vector<int32_t>& azp, int32_t bdt,
               const void* b, const std::vector<int32_t>& bzp, int32_t* acc) {
  const int64_t batches = static_cast<int64_t>(p.a_off.size());
  ParallelFor(batches * p.m, 4, [&](int64_t r0, int64_t r1) {
    std::vector<int32_t> arow(static_cast<size_t>(p.k)), bmat;
    int64_t cached_b = -1;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t bi = r / p.m, i = r % p.m;
      if (p.b_off[bi] != cached_b) {
        bmat.resize(static_cast<size_t>(p.k * p.n));
        const int64_t es = static_cast<int64_t>(plugin::DTypeSize(bdt));
        LoadI32(bdt, static_cast<const uint8_t*>(b) + p.b_off[bi] * es, p.k * p.n, bmat.data());
        for (int64_t kk = 0; kk < p.k; ++kk)
          for (int64_t j = 0; j < p.n; ++j) bmat[kk * p.n + j] -= bzp.size() == 1 ? bzp[0] : bzp[j];
        cached_b = p.b_off[bi];
      }
      const int64_t es = static_cast<int64_t>(plugin::DTypeSize(adt));
      LoadI32(adt, static_cast<const uint8_t*>(a) + (p.a_off[bi] + i * p.k) * es, p.k, arow.data());
      const int32_t z = azp.size() == 1 ? azp[0] : azp[i];
      int32_t* out = acc + (bi * p.m + i) * p.n;
      for (int64_t j = 0; j < p.n; ++j) out[j] = 0;
      for (int64_t kk = 0; kk < p.k; ++kk) {
        const int32_t av = arow[kk] - z;
        const int32_t* brow = bmat.data() + kk * p.n;
        for (int64_t j = 0; j < p.n; ++j) out[j] += av * brow[j];
      }
    }
  });
}

std::vector<int32_t> ZeroPoints(const TensorArg* t, const void* data) {
  if (!t || !data) return {0};
  std::vector<int32_t> v(static_cast<size_t>(t->numel));
  LoadI32(t->dtype, data, t->numel, v.data());
  return v;
}

bool Is8BitInt(int32_t dt) { return dt == TSR_DTYPE_U8 || dt == TSR_DTYPE_I8; }

// Checks an optional per-tensor / per-row(col) parameter: 1 or `n` values, of dtype `dt` (0: any float).
Err CheckParam(const NodeArgs& args, size_t i, const char* what, int64_t n, int32_t dt) {
  if (!args.has_input(i)) return Err::Ok();
  const TensorArg& t = *args.inputs[i];
  if (dt == 0 ? !IsFloatScale(t.dtype) : t.dtype != dt)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s has dtype %s, expected %s", args.Describe().c_str(), what,
                   DT(t.dtype), dt == 0 ? "a float type" : DT(dt));
  if (t.numel != 1 && t.numel != n)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s has %lld values, expected 1 or %lld", args.Describe().c_str(),
                   what, static_cast<long long>(t.numel), static_cast<long long>(n));
  return Err::Ok();
}

class MatMulIntegerKernel : public Kernel {
 public:
  MatMulIntegerKernel(MatMulPlan p, int32_t adt, int32_t bdt, const TensorArg* azp, const TensorArg* bzp)
      : p_(std::move(p)), adt_(adt), bdt_(bdt), azp_(azp ? *azp : TensorArg{}), bzp_(bzp ? *bzp : TensorArg{}),
        has_azp_(azp), has_bzp_(bzp) {}
  Err Run(const void* const* in, void* const* out) const override {
    IntMatMul(p_, adt_, in[0], ZeroPoints(has_azp_ ? &azp_ : nullptr, in[2]), bdt_, in[1],
              ZeroPoints(has_bzp_ ? &bzp_ : nullptr, in[3]), static_cast<int32_t*>(out[0]));
    return Err::Ok();
  }

 private:
  MatMulPlan p_;
  int32_t adt_, bdt_;
  TensorArg azp_, bzp_;
  bool has_azp_, has_bzp_;
};

std::string ClaimInt8Inputs(const tsr_node_view& n, const tsr_graph_view& g, uint32_t a, uint32_t b) {
  for (uint32_t i : {a, b}) {
    const int32_t dt = ClaimInputDType(n, g, i);
    if (!Is8BitInt(dt))
      return std::string("CPU ") + n.op_type + " supports u8/i8 operands, input " + std::to_string(i) + " is " + DT(dt);
  }
  return "";
}
std::string ClaimMatMulInteger(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimInt8Inputs(n, g, 0, 1); }
std::string ClaimQLinear(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimInt8Inputs(n, g, 0, 3); }

Err CreateMatMulInteger(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 4, 1, 1);
  if (!e.ok()) return e;
  const TensorArg& a = *args.inputs[0];
  const TensorArg& b = *args.inputs[1];
  if (!Is8BitInt(a.dtype) || !Is8BitInt(b.dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: A is %s and B is %s, expected u8 or i8", args.Describe().c_str(),
                   DT(a.dtype), DT(b.dtype));
  if (args.outputs[0]->dtype != TSR_DTYPE_I32)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dtype is %s, expected i32", args.Describe().c_str(),
                   DT(args.outputs[0]->dtype));
  MatMulPlan p;
  std::string why;
  if (!MakeMatMulPlan(a.dims, b.dims, args.outputs[0]->numel, &p, &why))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), why.c_str());
  e = CheckParam(args, 2, "a_zero_point", p.m, a.dtype);
  if (e.ok()) e = CheckParam(args, 3, "b_zero_point", p.n, b.dtype);
  if (!e.ok()) return e;
  *out = std::make_unique<MatMulIntegerKernel>(std::move(p), a.dtype, b.dtype, args.has_input(2) ? args.inputs[2] : nullptr,
                                               args.has_input(3) ? args.inputs[3] : nullptr);
  return Err::Ok();
}

// Requantization shared by QLinearMatMul / QLinearConv: y = sat(rint(acc *
// (s_a * s_b / s_y) + zp_y)). The multiplier is computed in the scales' dtype
// (f16 scales round after each operation), the rest in double.
inline float Multiplier(int32_t scale_dt, float sa, float sb, float sy) {
  return RoundTo(scale_dt, RoundTo(scale_dt, sa * sb) / sy);
}

inline void Requantize(const int32_t* acc, int64_t n, double mult, double zp, int32_t out_dt, void* dst) {
  const double lo = out_dt == TSR_DTYPE_I8 ? -128.0 : 0.0, hi = out_dt == TSR_DTYPE_I8 ? 127.0 : 255.0;
  for (int64_t i = 0; i < n; ++i) {
    double v = std::nearbyint(static_cast<double>(acc[i]) * mult + zp);
    v = std::isnan(v) ? lo : std::min(hi, std::max(lo, v));
    if (out_dt == TSR_DTYPE_I8) static_cast<int8_t*>(dst)[i] = static_cast<int8_t>(v);
    else static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(v);
  }
}

class QLinearMatMulKernel : public Kernel {
 public:
  QLinearMatMulKernel(MatMulPlan p, const NodeArgs& args) : p_(std::move(p)) {
    for (size_t i = 0; i < 8; ++i) t_[i] = *args.inputs[i];
    out_dt_ = args.outputs[0]->dtype;
  }
  Err Run(const void* const* in, void* const* out) const override {
    const int64_t total = static_cast<int64_t>(p_.a_off.size()) * p_.m * p_.n;
    std::vector<int32_t> acc(static_cast<size_t>(total));
    IntMatMul(p_, t_[0].dtype, in[0], ZeroPoints(&t_[2], in[2]), t_[3].dtype, in[3], ZeroPoints(&t_[5], in[5]),
              acc.data());
    const std::vector<double> sa = LoadAll(&t_[1], in[1]), sb = LoadAll(&t_[4], in[4]), sy = LoadAll(&t_[6], in[6]);
    const std::vector<int32_t> zy = ZeroPoints(&t_[7], in[7]);
    const int32_t sdt = t_[1].dtype;
    for (int64_t r = 0; r < total / std::max<int64_t>(p_.n, 1); ++r) {
      const int64_t i = r % p_.m;
      for (int64_t j = 0; j < p_.n; ++j) {
        const float m = Multiplier(sdt, static_cast<float>(sa.size() == 1 ? sa[0] : sa[i]),
                                   static_cast<float>(sb.size() == 1 ? sb[0] : sb[j]),
                                   static_cast<float>(sy.size() == 1 ? sy[0] : sy[j]));
        const int64_t o = r * p_.n + j;
        Requantize(acc.data() + o, 1, m, zy.size() == 1 ? zy[0] : zy[j], out_dt_,
                   static_cast<uint8_t*>(out[0]) + o);
      }
    }
    return Err::Ok();
  }

 private:
  MatMulPlan p_;
  TensorArg t_[8];
  int32_t out_dt_;
};

Err CreateQLinearMatMul(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 8, 8, 1, 1);
  if (!e.ok()) return e;
  for (size_t i = 0; i < 8; ++i)
    if (!args.inputs[i])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is required", args.Describe().c_str(), i);
  const TensorArg& a = *args.inputs[0];
  const TensorArg& b = *args.inputs[3];
  const int32_t ydt = args.outputs[0]->dtype;
  if (!Is8BitInt(a.dtype) || !Is8BitInt(b.dtype) || !Is8BitInt(ydt))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: a is %s, b is %s, y is %s; expected u8 or i8", args.Describe().c_str(),
                   DT(a.dtype), DT(b.dtype), DT(ydt));
  MatMulPlan p;
  std::string why;
  if (!MakeMatMulPlan(a.dims, b.dims, args.outputs[0]->numel, &p, &why))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), why.c_str());
  e = CheckParam(args, 1, "a_scale", p.m, 0);
  if (e.ok()) e = CheckParam(args, 2, "a_zero_point", p.m, a.dtype);
  if (e.ok()) e = CheckParam(args, 4, "b_scale", p.n, 0);
  if (e.ok()) e = CheckParam(args, 5, "b_zero_point", p.n, b.dtype);
  if (e.ok()) e = CheckParam(args, 6, "y_scale", p.n, 0);
  if (e.ok()) e = CheckParam(args, 7, "y_zero_point", p.n, ydt);
  if (!e.ok()) return e;
  *out = std::make_unique<QLinearMatMulKernel>(std::move(p), args);
  return Err::Ok();
}

// ---- integer Conv (ConvInteger, QLinearConv) ------------------------------------------------------

struct ConvGeom {
  int64_t n = 0, c = 0, m = 0, group = 1;
  std::vector<int64_t> in, k, out, stride, dil, pad_begin;
  int64_t in_sp = 1, k_sp = 1, out_sp = 1;
};

Err MakeConvGeom(const NodeArgs& args, const TensorArg& x, const TensorArg& w, const TensorArg& y, ConvGeom* g) {
  const std::string desc = args.Describe();
  auto a = args.attrs();
  if (x.dims.size() < 3 || w.dims.size() != x.dims.size() || y.dims.size() != x.dims.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: x%s, w%s and y%s must have the same rank >= 3", desc.c_str(),
                   DimsToString(x.dims).c_str(), DimsToString(w.dims).c_str(), DimsToString(y.dims).c_str());
  const size_t sd = x.dims.size() - 2;
  g->n = x.dims[0];
  g->c = x.dims[1];
  g->m = w.dims[0];
  g->group = a.Int("group", 1);
  if (g->group <= 0 || g->c % g->group != 0 || g->m % g->group != 0 || w.dims[1] * g->group != g->c)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: group %lld does not fit x%s and w%s", desc.c_str(),
                   static_cast<long long>(g->group), DimsToString(x.dims).c_str(), DimsToString(w.dims).c_str());
  if (y.dims[0] != g->n || y.dims[1] != g->m)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s does not match x%s and w%s", desc.c_str(),
                   DimsToString(y.dims).c_str(), DimsToString(x.dims).c_str(), DimsToString(w.dims).c_str());
  g->in.assign(x.dims.begin() + 2, x.dims.end());
  g->k.assign(w.dims.begin() + 2, w.dims.end());
  g->out.assign(y.dims.begin() + 2, y.dims.end());
  g->stride = a.Ints("strides", std::vector<int64_t>(sd, 1));
  g->dil = a.Ints("dilations", std::vector<int64_t>(sd, 1));
  std::vector<int64_t> pads = a.Ints("pads", std::vector<int64_t>(2 * sd, 0));
  if (g->stride.size() != sd || g->dil.size() != sd || pads.size() != 2 * sd)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: strides/dilations/pads have the wrong length for %zu spatial dims",
                   desc.c_str(), sd);
  const std::string auto_pad = a.String("auto_pad", "NOTSET");
  g->pad_begin.assign(sd, 0);
  for (size_t d = 0; d < sd; ++d) {
    if (g->stride[d] <= 0 || g->dil[d] <= 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: strides and dilations must be positive", desc.c_str());
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t total =
          std::max<int64_t>(0, (g->out[d] - 1) * g->stride[d] + (g->k[d] - 1) * g->dil[d] + 1 - g->in[d]);
      g->pad_begin[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else if (auto_pad == "VALID") {
      g->pad_begin[d] = 0;
    } else if (auto_pad == "NOTSET") {
      g->pad_begin[d] = pads[d];
    } else {
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'auto_pad' is '%s'", desc.c_str(), auto_pad.c_str());
    }
  }
  for (size_t d = 0; d < sd; ++d) {
    g->in_sp *= g->in[d];
    g->k_sp *= g->k[d];
    g->out_sp *= g->out[d];
  }
  return Err::Ok();
}

// acc[n][m][o] = bias[m] + sum (x - xzp) * (w - wzp[m]) over the receptive
// field (padding contributes zero in the shifted domain).
void IntConv(const ConvGeom& g, int32_t xdt, const void* x, int32_t xzp, int32_t wdt, const void* w,
             const std::vector<int32_t>& wzp, const int32_t* bias, int32_t* acc) {
  const size_t sd = g.in.size();
  const int64_t cg = g.c / g.group, mg = g.m / g.group;
  std::vector<int32_t> xs(static_cast<size_t>(g.n * g.c * g.in_sp)), ws(static_cast<size_t>(g.m * cg * g.k_sp));
  LoadI32(xdt, x, static_cast<int64_t>(xs.size()), xs.data());
  LoadI32(wdt, w, static_cast<int64_t>(ws.size()), ws.data());
  for (int32_t& v : xs) v -= xzp;
  for (int64_t mm = 0; mm < g.m; ++mm)
    for (int64_t i = 0; i < cg * g.k_sp; ++i) ws[mm * cg * g.k_sp + i] -= wzp.size() == 1 ? wzp[0] : wzp[mm];
  ParallelFor(g.n * g.m, 1, [&](int64_t b, int64_t e) {
    std::vector<int64_t> oi(sd), ki(sd);
    for (int64_t nm = b; nm < e; ++nm) {
      const int64_t nn = nm / g.m, mm = nm % g.m, grp = mm / mg;
      for (int64_t o = 0; o < g.out_sp; ++o) {
        int64_t rem = o;
        for (int64_t d = static_cast<int64_t>(sd) - 1; d >= 0; --d) {
          oi[d] = rem % g.out[d];
          rem /= g.out[d];
        }
        int32_t sum = bias ? bias[mm] : 0;
        for (int64_t kk = 0; kk < g.k_sp; ++kk) {
          int64_t r2 = kk, off = 0;
          bool inside = true;
          for (int64_t d = static_cast<int64_t>(sd) - 1; d >= 0; --d) {
            ki[d] = r2 % g.k[d];
            r2 /= g.k[d];
          }
          for (size_t d = 0; d < sd && inside; ++d) {
            const int64_t p = oi[d] * g.stride[d] - g.pad_begin[d] + ki[d] * g.dil[d];
            inside = p >= 0 && p < g.in[d];
            off = off * g.in[d] + p;
          }
          if (!inside) continue;
          for (int64_t ci = 0; ci < cg; ++ci) {
            const int64_t cc = grp * cg + ci;
            sum += xs[(nn * g.c + cc) * g.in_sp + off] * ws[(mm * cg + ci) * g.k_sp + kk];
          }
        }
        acc[nm * g.out_sp + o] = sum;
      }
    }
  });
}

class ConvIntegerKernel : public Kernel {
 public:
  ConvIntegerKernel(ConvGeom g, int32_t xdt, int32_t wdt, const TensorArg* xzp, const TensorArg* wzp)
      : g_(std::move(g)), xdt_(xdt), wdt_(wdt), xzp_(xzp ? *xzp : TensorArg{}), wzp_(wzp ? *wzp : TensorArg{}),
        has_xzp_(xzp), has_wzp_(wzp) {}
  Err Run(const void* const* in, void* const* out) const override {
    IntConv(g_, xdt_, in[0], ZeroPoints(has_xzp_ ? &xzp_ : nullptr, in[2])[0], wdt_, in[1],
            ZeroPoints(has_wzp_ ? &wzp_ : nullptr, in[3]), nullptr, static_cast<int32_t*>(out[0]));
    return Err::Ok();
  }

 private:
  ConvGeom g_;
  int32_t xdt_, wdt_;
  TensorArg xzp_, wzp_;
  bool has_xzp_, has_wzp_;
};

Err CreateConvInteger(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 4, 1, 1);
  if (!e.ok()) return e;
  const TensorArg& x = *args.inputs[0];
  const TensorArg& w = *args.inputs[1];
  if (!Is8BitInt(x.dtype) || !Is8BitInt(w.dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: x is %s and w is %s, expected u8 or i8", args.Describe().c_str(),
                   DT(x.dtype), DT(w.dtype));
  if (args.outputs[0]->dtype != TSR_DTYPE_I32)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dtype is %s, expected i32", args.Describe().c_str(),
                   DT(args.outputs[0]->dtype));
  ConvGeom g;
  e = MakeConvGeom(args, x, w, *args.outputs[0], &g);
  if (e.ok()) e = CheckParam(args, 2, "x_zero_point", 1, x.dtype);
  if (e.ok()) e = CheckParam(args, 3, "w_zero_point", g.m, w.dtype);
  if (!e.ok()) return e;
  *out = std::make_unique<ConvIntegerKernel>(std::move(g), x.dtype, w.dtype, args.has_input(2) ? args.inputs[2] : nullptr,
                                             args.has_input(3) ? args.inputs[3] : nullptr);
  return Err::Ok();
}

class QLinearConvKernel : public Kernel {
 public:
  QLinearConvKernel(ConvGeom g, const NodeArgs& args) : g_(std::move(g)) {
    for (size_t i = 0; i < 8; ++i) t_[i] = *args.inputs[i];
    has_bias_ = args.has_input(8);
    out_dt_ = args.outputs[0]->dtype;
  }
  Err Run(const void* const* in, void* const* out) const override {
    std::vector<int32_t> acc(static_cast<size_t>(g_.n * g_.m * g_.out_sp));
    IntConv(g_, t_[0].dtype, in[0], ZeroPoints(&t_[2], in[2])[0], t_[3].dtype, in[3], ZeroPoints(&t_[5], in[5]),
            has_bias_ ? static_cast<const int32_t*>(in[8]) : nullptr, acc.data());
    const std::vector<double> sx = LoadAll(&t_[1], in[1]), sw = LoadAll(&t_[4], in[4]), sy = LoadAll(&t_[6], in[6]);
    const double zy = ZeroPoints(&t_[7], in[7])[0];
    for (int64_t nm = 0; nm < g_.n * g_.m; ++nm) {
      const int64_t mm = nm % g_.m;
      const float mult = Multiplier(t_[1].dtype, static_cast<float>(sx[0]),
                                    static_cast<float>(sw.size() == 1 ? sw[0] : sw[mm]), static_cast<float>(sy[0]));
      Requantize(acc.data() + nm * g_.out_sp, g_.out_sp, mult, zy, out_dt_,
                 static_cast<uint8_t*>(out[0]) + nm * g_.out_sp);
    }
    return Err::Ok();
  }

 private:
  ConvGeom g_;
  TensorArg t_[8];
  bool has_bias_ = false;
  int32_t out_dt_;
};

Err CreateQLinearConv(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 8, 9, 1, 1);
  if (!e.ok()) return e;
  for (size_t i = 0; i < 8; ++i)
    if (!args.inputs[i])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is required", args.Describe().c_str(), i);
  const TensorArg& x = *args.inputs[0];
  const TensorArg& w = *args.inputs[3];
  const int32_t ydt = args.outputs[0]->dtype;
  if (!Is8BitInt(x.dtype) || !Is8BitInt(w.dtype) || !Is8BitInt(ydt))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: x is %s, w is %s, y is %s; expected u8 or i8", args.Describe().c_str(),
                   DT(x.dtype), DT(w.dtype), DT(ydt));
  ConvGeom g;
  e = MakeConvGeom(args, x, w, *args.outputs[0], &g);
  if (e.ok()) e = CheckParam(args, 1, "x_scale", 1, 0);
  if (e.ok()) e = CheckParam(args, 2, "x_zero_point", 1, x.dtype);
  if (e.ok()) e = CheckParam(args, 4, "w_scale", g.m, 0);
  if (e.ok()) e = CheckParam(args, 5, "w_zero_point", g.m, w.dtype);
  if (e.ok()) e = CheckParam(args, 6, "y_scale", 1, 0);
  if (e.ok()) e = CheckParam(args, 7, "y_zero_point", 1, ydt);
  if (e.ok() && args.has_input(8) && (args.inputs[8]->dtype != TSR_DTYPE_I32 || args.inputs[8]->numel != g.m))
    e = MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: bias B is %s%s, expected i32[%lld]", args.Describe().c_str(),
                DT(args.inputs[8]->dtype), DimsToString(args.inputs[8]->dims).c_str(), static_cast<long long>(g.m));
  if (!e.ok()) return e;
  *out = std::make_unique<QLinearConvKernel>(std::move(g), args);
  return Err::Ok();
}

}  // namespace

void RegisterIntegerMatMulConvKernels(KernelRegistry& r) {
  r.Add({"", "MatMulInteger", &CreateMatMulInteger, &ClaimMatMulInteger});
  r.Add({"", "QLinearMatMul", &CreateQLinearMatMul, &ClaimQLinear});
  r.Add({"", "ConvInteger", &CreateConvInteger, &ClaimMatMulInteger});
  r.Add({"", "QLinearConv", &CreateQLinearConv, &ClaimQLinear});
}


void RegisterQuantKernels(KernelRegistry& r) {
  r.Add({"", "Cast", &CreateCast, &ClaimCast});
  r.Add({"", "CastLike", &CreateCastLike, &ClaimCast});
  RegisterQuantLinearKernels(r);
  RegisterIntegerMatMulConvKernels(r);
}

}  // namespace tessera::cpu
