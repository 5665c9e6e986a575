// Reduction-class CPU kernels: Reduce{Mean,Sum,Max,Min,Prod}, ArgMax/ArgMin,
// Softmax/LogSoftmax, LayerNormalization, inference BatchNormalization and
// Global{Average,Max}Pool.
//
// Reductions collapse the input into alternating groups of kept and reduced
// dims and run one pass per reduced group (innermost first); every pass is
// out[o, i] = reduce_r in[o, r, i], with a contiguous fast path when i has
// size 1 and an inner-vectorised path otherwise.
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/simd.h"
#include "backends/cpu/simd_convert.h"

namespace tessera::cpu {
namespace {

constexpr int64_t kGrain = 16384;  // elements per parallel task
constexpr int kLanes = 16;         // independent accumulators (lets GCC vectorise without -ffast-math)

const char* DT(int32_t dt) { return plugin::DTypeName(dt); }

// Softmax rows, exp sums, LayerNorm rows and float sum/max over contiguous
// data run the dispatched row kernels of simd.h (AVX-512 or portable).

// ---- reduction operators ------------------------------------------------------------------

enum class RKind { kSum, kMean, kMax, kMin, kProd };

template <typename T>
T Identity(RKind k) {
  switch (k) {
    case RKind::kSum: case RKind::kMean: return T(0);
    case RKind::kProd: return T(1);
    case RKind::kMax:
      return std::is_floating_point_v<T> ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
    default:
      return std::is_floating_point_v<T> ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
  }
}

template <typename T, RKind K>
inline T Combine(T a, T b) {
  if constexpr (K == RKind::kSum || K == RKind::kMean) return a + b;
  else if constexpr (K == RKind::kProd) return a * b;
  else if constexpr (K == RKind::kMax) return a < b ? b : a;
  else return b < a ? b : a;
}

// Reduces x[0..n) with kLanes partial accumulators.
template <typename T, RKind K>
T ReduceContig(const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float> && (K == RKind::kSum || K == RKind::kMean)) {
    return simd::Fns().sum(x, n);  // run-time dispatched (simd.h)
  } else if constexpr (std::is_same_v<T, float> && K == RKind::kMax) {
    return simd::Fns().max(x, n);
  }
  T acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = Identity<T>(K);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] = Combine<T, K>(acc[l], x[i + l]);
  T r = Identity<T>(K);
  for (; i < n; ++i) r = Combine<T, K>(r, x[i]);
  for (int l = 0; l < kLanes; ++l) r = Combine<T, K>(r, acc[l]);
  return r;
}

// out[o, i] = reduce_r in[o, r, i] for o < outer, r < rn, i < inner.
template <typename T, RKind K>
void ReducePass(const T* in, T* out, int64_t outer, int64_t rn, int64_t inner) {
  if (rn == 0) {
    std::fill(out, out + outer * inner, Identity<T>(K));
    return;
  }
  if (inner == 1) {
    if (outer == 1 && rn >= 4 * kGrain) {  // one long row: partial results per chunk
      const int64_t chunks = std::min<int64_t>(64, rn / kGrain);
      std::vector<T> part(static_cast<size_t>(chunks));
      ParallelFor(chunks, 1, [&](int64_t b, int64_t e) {
        for (int64_t c = b; c < e; ++c) {
          int64_t s = rn * c / chunks, t = rn * (c + 1) / chunks;
          part[c] = ReduceContig<T, K>(in + s, t - s);
        }
      });
      *out = ReduceContig<T, K>(part.data(), chunks);
      return;
    }
    ParallelFor(outer, std::max<int64_t>(1, kGrain / rn), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) out[o] = ReduceContig<T, K>(in + o * rn, rn);
    });
    return;
  }
  // Vectorised over i; parallel over (o, i) ranges.
  ParallelFor(outer * inner, std::max<int64_t>(64, kGrain / rn), [&](int64_t b, int64_t e) {
    for (int64_t pos = b; pos < e;) {
      int64_t o = pos / inner, i0 = pos % inner, i1 = std::min(inner, i0 + (e - pos));
      const T* src = in + o * rn * inner;
      T* dst = out + o * inner;
      for (int64_t i = i0; i < i1; ++i) dst[i] = src[i];
      for (int64_t r = 1; r < rn; ++r) {
        const T* row = src + r * inner;
        for (int64_t i = i0; i < i1; ++i) dst[i] = Combine<T, K>(dst[i], row[i]);
      }
      pos += i1 - i0;
    }
  });
}

// One pass of a reduction plan.
struct Pass {
  int64_t outer, rn, inner;
};

template <typename T, RKind K>
void RunReducePlan(const std::vector<Pass>& passes, int64_t count, const T* x, T* y) {
  std::vector<T> a, b;  // scratch for intermediate passes
  const T* src = x;
  for (size_t p = 0; p < passes.size(); ++p) {
    const Pass& ps = passes[p];
    T* dst = y;
    if (p + 1 < passes.size()) {
      std::vector<T>& buf = (p % 2 == 0) ? a : b;
      buf.resize(static_cast<size_t>(ps.outer * ps.inner));
      dst = buf.data();
    }
    ReducePass<T, K>(src, dst, ps.outer, ps.rn, ps.inner);
    src = dst;
  }
  if constexpr (K == RKind::kMean) {
    const int64_t n = passes.empty() ? 0 : passes.back().outer * passes.back().inner;
    if constexpr (std::is_floating_point_v<T>) {
      const T inv = count ? T(1) / static_cast<T>(count) : std::numeric_limits<T>::quiet_NaN();
      for (int64_t i = 0; i < n; ++i) y[i] *= inv;
    } else {
      for (int64_t i = 0; i < n; ++i) y[i] = count ? static_cast<T>(y[i] / count) : T(0);
    }
  }
}

// Normalises `axes` against `rank` into a per-dim mask; errors name the node.
Err AxesMask(const NodeArgs& args, const std::vector<int64_t>& axes, int64_t rank, std::vector<bool>* mask) {
  mask->assign(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    int64_t n;
    if (!NormalizeAxis(a, rank, &n))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                     static_cast<long long>(a), static_cast<long long>(rank));
    if ((*mask)[n])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is repeated", args.Describe().c_str(),
                     static_cast<long long>(a));
    (*mask)[n] = true;
  }
  return Err::Ok();
}

template <RKind K>
Err CreateReduce(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (x.dtype != TSR_DTYPE_F32 && x.dtype != TSR_DTYPE_I32 && x.dtype != TSR_DTYPE_I64)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (f32, i32, i64)", args.Describe().c_str(), DT(x.dtype));
  if (y.dtype != x.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dtype %s differs from input %s", args.Describe().c_str(),
                   DT(y.dtype), DT(x.dtype));
  std::vector<int64_t> axes;
  bool has_axes = false;
  e = ReadIntsParam(args, "axes", 1, &axes, &has_axes);
  if (!e.ok()) return e;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const bool noop = args.attrs().Int("noop_with_empty_axes", 0) != 0;
  if (axes.empty() && noop) {  // identity
    if (y.numel != x.numel)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: empty axes with noop_with_empty_axes needs output shape = input shape",
                     args.Describe().c_str());
    const int64_t nb = x.nbytes();
    *out = MakeFnKernel([nb](const void* const* in, void* const* o) -> Err {
      if (nb) std::memcpy(o[0], in[0], static_cast<size_t>(nb));
      return Err::Ok();
    });
    return Err::Ok();
  }
  std::vector<bool> mask;
  if (axes.empty()) mask.assign(static_cast<size_t>(rank), true);
  else if (Err m = AxesMask(args, axes, rank, &mask); !m.ok()) return m;
  // Collapse into groups (size, reduced); drop size-1 dims.
  std::vector<std::pair<int64_t, bool>> groups;
  int64_t count = 1, kept = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (mask[d]) count *= x.dims[d];
    else kept *= x.dims[d];
    if (x.dims[d] == 1) continue;
    if (!groups.empty() && groups.back().second == mask[d]) groups.back().first *= x.dims[d];
    else groups.push_back({x.dims[d], mask[d]});
  }
  if (y.numel != kept)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s has %lld elements, expected %lld", args.Describe().c_str(),
                   DimsToString(y.dims).c_str(), static_cast<long long>(y.numel), static_cast<long long>(kept));
  std::vector<Pass> passes;
  while (true) {
    int g = -1;
    for (int i = static_cast<int>(groups.size()) - 1; i >= 0; --i)
      if (groups[i].second) { g = i; break; }
    if (g < 0) break;
    Pass p{1, groups[g].first, 1};
    for (int i = 0; i < g; ++i) p.outer *= groups[i].first;
    for (size_t i = g + 1; i < groups.size(); ++i) p.inner *= groups[i].first;
    passes.push_back(p);
    groups.erase(groups.begin() + g);
  }
  if (passes.empty()) passes.push_back({kept, 1, 1});  // only size-1 dims reduced: a copy
  if (x.numel == 0 && count != 0) passes = {{0, 1, 1}};
  auto make = [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([passes, count](const void* const* in, void* const* o) -> Err {
      RunReducePlan<T, K>(passes, count, static_cast<const T*>(in[0]), static_cast<T*>(o[0]));
      return Err::Ok();
    });
  };
  switch (x.dtype) {
    case TSR_DTYPE_F32: make(float{}); break;
    case TSR_DTYPE_I32: make(int32_t{}); break;
    default: make(int64_t{}); break;
  }
  return Err::Ok();
}

// ---- generic reductions (every dtype and every Reduce* op) --------------------------------------------

enum class GKind { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

using plugin::FloatToHalfBits;
using plugin::HalfBitsToFloat;

bool IsFloatDT(int32_t dt) {
  return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_F64 || dt == TSR_DTYPE_F16 || dt == TSR_DTYPE_BF16;
}

template <typename T>
double GetAs(const void* p, int64_t i) {
  return static_cast<double>(static_cast<const T*>(p)[i]);
}

// Element i of p (dtype dt) as double.
double LoadElem(int32_t dt, const void* p, int64_t i) {
  switch (dt) {
    case TSR_DTYPE_F32: return GetAs<float>(p, i);
    case TSR_DTYPE_F64: return GetAs<double>(p, i);
    case TSR_DTYPE_I8: return GetAs<int8_t>(p, i);
    case TSR_DTYPE_I16: return GetAs<int16_t>(p, i);
    case TSR_DTYPE_I32: return GetAs<int32_t>(p, i);
    case TSR_DTYPE_I64: return GetAs<int64_t>(p, i);
    case TSR_DTYPE_U8: case TSR_DTYPE_BOOL: return GetAs<uint8_t>(p, i);
    case TSR_DTYPE_U16: return GetAs<uint16_t>(p, i);
    case TSR_DTYPE_U32: return GetAs<uint32_t>(p, i);
    case TSR_DTYPE_U64: return GetAs<uint64_t>(p, i);
    case TSR_DTYPE_F16: return HalfBitsToFloat(static_cast<const uint16_t*>(p)[i]);
    case TSR_DTYPE_BF16: return std::bit_cast<float>(static_cast<uint32_t>(static_cast<const uint16_t*>(p)[i]) << 16);
    default: return 0.0;
  }
}

template <typename T>
void PutAs(void* p, int64_t i, double v) {
  T r;
  if constexpr (std::is_integral_v<T>) {  // clamp: empty Max/Min give +-inf
    if (!(v == v)) r = 0;
    else if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) r = std::numeric_limits<T>::lowest();
    else if (v >= static_cast<double>(std::numeric_limits<T>::max())) r = std::numeric_limits<T>::max();
    else r = static_cast<T>(v);
  } else {
    r = static_cast<T>(v);
  }
  static_cast<T*>(p)[i] = r;
}

void StoreElem(int32_t dt, void* p, int64_t i, double v) {
  switch (dt) {
    case TSR_DTYPE_F32: PutAs<float>(p, i, v); break;
    case TSR_DTYPE_F64: PutAs<double>(p, i, v); break;
    case TSR_DTYPE_I8: PutAs<int8_t>(p, i, v); break;
    case TSR_DTYPE_I16: PutAs<int16_t>(p, i, v); break;
    case TSR_DTYPE_I32: PutAs<int32_t>(p, i, v); break;
    case TSR_DTYPE_I64: PutAs<int64_t>(p, i, v); break;
    case TSR_DTYPE_U8: PutAs<uint8_t>(p, i, v); break;
    case TSR_DTYPE_U16: PutAs<uint16_t>(p, i, v); break;
    case TSR_DTYPE_U32: PutAs<uint32_t>(p, i, v); break;
    case TSR_DTYPE_U64: PutAs<uint64_t>(p, i, v); break;
    case TSR_DTYPE_BOOL: static_cast<uint8_t*>(p)[i] = v != 0.0; break;
    case TSR_DTYPE_F16: static_cast<uint16_t*>(p)[i] = FloatToHalfBits(static_cast<float>(v)); break;
    case TSR_DTYPE_BF16: {
      uint32_t x = std::bit_cast<uint32_t>(static_cast<float>(v));
      if ((x & 0x7fffffffu) > 0x7f800000u) x |= 0x400000u;
      else x += 0x7fffu + ((x >> 16) & 1u);
      static_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(x >> 16);
      break;
    }
    default: break;
  }
}

// Reduces the values x[roff[j]]. Empty sets give
// the identity: 0 for sums and norms, 1 for Prod, -inf/+inf for Max/Min
// (clamped to the integer range on store), -inf for LogSum/LogSumExp, NaN for Mean.
double ReduceOne(GKind k, const double* x, const std::vector<int64_t>& roff) {
  const double inf = std::numeric_limits<double>::infinity();
  const size_t n = roff.size();
  double acc;
  switch (k) {
    case GKind::kMax: {
      acc = -inf;
      for (size_t j = 0; j < n; ++j) {
        const double v = x[roff[j]];
        if (v > acc || v != v) acc = v;
        if (acc != acc) break;
      }
      return acc;
    }
    case GKind::kMin: {
      acc = inf;
      for (size_t j = 0; j < n; ++j) {
        const double v = x[roff[j]];
        if (v < acc || v != v) acc = v;
        if (acc != acc) break;
      }
      return acc;
    }
    case GKind::kProd:
      acc = 1.0;
      for (size_t j = 0; j < n; ++j) acc *= x[roff[j]];
      return acc;
    case GKind::kLogSumExp: {
      double m = -inf;
      for (size_t j = 0; j < n; ++j) m = std::max(m, x[roff[j]]);
      if (std::isinf(m)) return m;
      double s = 0;
      for (size_t j = 0; j < n; ++j) s += std::exp(x[roff[j]] - m);
      return m + std::log(s);
    }
    default: break;
  }
  acc = 0;
  for (size_t j = 0; j < n; ++j) {
    const double v = x[roff[j]];
    acc += k == GKind::kL1 ? std::fabs(v) : (k == GKind::kL2 || k == GKind::kSumSquare) ? v * v : v;
  }
  switch (k) {
    case GKind::kMean: return acc / static_cast<double>(n);
    case GKind::kL2: return std::sqrt(acc);
    case GKind::kLogSum: return std::log(acc);
    default: return acc;
  }
}

// Axis handling shared with CreateReduce: attribute or constant input 1;
// noop_with_empty_axes with no axes is an identity.
template <GKind K>
Err CreateReduceAny(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  constexpr bool kSimple = K == GKind::kSum || K == GKind::kMean || K == GKind::kMax || K == GKind::kMin ||
                           K == GKind::kProd;
  if (kSimple && (x.dtype == TSR_DTYPE_F32 || x.dtype == TSR_DTYPE_I32 || x.dtype == TSR_DTYPE_I64)) {
    constexpr RKind rk = K == GKind::kSum ? RKind::kSum : K == GKind::kMean ? RKind::kMean
                         : K == GKind::kMax ? RKind::kMax : K == GKind::kMin ? RKind::kMin : RKind::kProd;
    return CreateReduce<rk>(args, out);
  }
  if (plugin::DTypeSize(x.dtype) == 0 || x.dtype == TSR_DTYPE_STRING ||
      (x.dtype == TSR_DTYPE_BOOL && K != GKind::kMax && K != GKind::kMin))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported", args.Describe().c_str(), DT(x.dtype));
  if (y.dtype != x.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dtype %s differs from input %s", args.Describe().c_str(),
                   DT(y.dtype), DT(x.dtype));
  std::vector<int64_t> axes;
  bool has_axes = false;
  e = ReadIntsParam(args, "axes", 1, &axes, &has_axes);
  if (!e.ok()) return e;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const bool noop = args.attrs().Int("noop_with_empty_axes", 0) != 0;
  const int32_t dt = x.dtype;
  if (axes.empty() && noop) {  // identity
    if (y.numel != x.numel)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: empty axes with noop_with_empty_axes needs output shape = input shape",
                     args.Describe().c_str());
    const int64_t nb = x.nbytes();
    *out = MakeFnKernel([nb](const void* const* in, void* const* o) -> Err {
      if (nb) std::memcpy(o[0], in[0], static_cast<size_t>(nb));
      return Err::Ok();
    });
    return Err::Ok();
  }
  std::vector<bool> mask;
  if (axes.empty()) mask.assign(static_cast<size_t>(rank), true);
  else if (Err m = AxesMask(args, axes, rank, &mask); !m.ok()) return m;
  // Element strides; output bases enumerate the kept dims, roff the reduced ones.
  std::vector<int64_t> stride(static_cast<size_t>(rank), 1);
  for (int64_t d = rank - 2; d >= 0; --d) stride[d] = stride[d + 1] * x.dims[d + 1];
  std::vector<int64_t> bases{0}, roff{0};
  for (int64_t d = 0; d < rank; ++d) {
    std::vector<int64_t>& v = mask[d] ? roff : bases;
    std::vector<int64_t> next;
    next.reserve(v.size() * static_cast<size_t>(x.dims[d]));
    for (int64_t b : v)
      for (int64_t i = 0; i < x.dims[d]; ++i) next.push_back(b + i * stride[d]);
    v.swap(next);
  }
  if (y.numel != static_cast<int64_t>(bases.size()))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s has %lld elements, expected %zu", args.Describe().c_str(),
                   DimsToString(y.dims).c_str(), static_cast<long long>(y.numel), bases.size());
  const int64_t numel = x.numel;
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    std::vector<double> xd(static_cast<size_t>(numel));  // converted once; reductions run in double
    ParallelFor(numel, kGrain, [&](int64_t b, int64_t e2) {
      for (int64_t i = b; i < e2; ++i) xd[i] = LoadElem(dt, in[0], i);
    });
    const int64_t nout = static_cast<int64_t>(bases.size());
    ParallelFor(nout, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, static_cast<int64_t>(roff.size()))),
                [&](int64_t b, int64_t e2) {
                  for (int64_t i = b; i < e2; ++i) StoreElem(dt, o[0], i, ReduceOne(K, xd.data() + bases[i], roff));
                });
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- ArgMax / ArgMin ------------------------------------------------------------------------------

template <typename T, bool kMax>
void RunArg(const T* x, int64_t* y, int64_t outer, int64_t rn, int64_t inner, bool last) {
  auto better = [last](T v, T best) {
    if constexpr (kMax) return last ? v >= best : v > best;
    else return last ? v <= best : v < best;
  };
  if (inner == 1) {
    ParallelFor(outer, std::max<int64_t>(1, kGrain / rn), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* row = x + o * rn;
        T best = row[0];
        int64_t bi = 0;
        for (int64_t r = 1; r < rn; ++r)
          if (better(row[r], best)) { best = row[r]; bi = r; }
        y[o] = bi;
      }
    });
    return;
  }
  ParallelFor(outer, 1, [&](int64_t b, int64_t e) {
    std::vector<T> best(static_cast<size_t>(inner));
    for (int64_t o = b; o < e; ++o) {
      const T* src = x + o * rn * inner;
      int64_t* dst = y + o * inner;
      for (int64_t i = 0; i < inner; ++i) { best[i] = src[i]; dst[i] = 0; }
      for (int64_t r = 1; r < rn; ++r) {
        const T* row = src + r * inner;
        for (int64_t i = 0; i < inner; ++i) {
          bool bt = better(row[i], best[i]);
          best[i] = bt ? row[i] : best[i];
          dst[i] = bt ? r : dst[i];
        }
      }
    }
  });
}

template <bool kMax>
Err CreateArg(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (plugin::DTypeSize(x.dtype) == 0 || x.dtype == TSR_DTYPE_BOOL)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (numeric types)", args.Describe().c_str(),
                   DT(x.dtype));
  if (y.dtype != TSR_DTYPE_I64)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output must be i64, got %s", args.Describe().c_str(), DT(y.dtype));
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis;
  if (!NormalizeAxis(args.attrs().Int("axis", 0), std::max<int64_t>(rank, 1), &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                   static_cast<long long>(args.attrs().Int("axis", 0)), static_cast<long long>(rank));
  int64_t outer = 1, inner = 1, rn = rank ? x.dims[axis] : 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dims[d];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= x.dims[d];
  if (rn == 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: cannot take the arg of an empty axis", args.Describe().c_str());
  if (y.numel != outer * inner)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s does not match input %s reduced on axis %lld",
                   args.Describe().c_str(), DimsToString(y.dims).c_str(), DimsToString(x.dims).c_str(),
                   static_cast<long long>(axis));
  const bool last = args.attrs().Int("select_last_index", 0) != 0;
  auto make = [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      RunArg<T, kMax>(static_cast<const T*>(in[0]), static_cast<int64_t*>(o[0]), outer, rn, inner, last);
      return Err::Ok();
    });
  };
  switch (x.dtype) {
    case TSR_DTYPE_F32: make(float{}); break;
    case TSR_DTYPE_F64: make(double{}); break;
    case TSR_DTYPE_I32: make(int32_t{}); break;
    case TSR_DTYPE_I64: make(int64_t{}); break;
    case TSR_DTYPE_U64: make(uint64_t{}); break;
    default: {  // narrower ints and f16/bf16 are exact in double
      const int32_t dt = x.dtype;
      const int64_t numel = x.numel;
      *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
        std::vector<double> v(static_cast<size_t>(numel));
        for (int64_t i = 0; i < numel; ++i) v[i] = LoadElem(dt, in[0], i);
        RunArg<double, kMax>(v.data(), static_cast<int64_t*>(o[0]), outer, rn, inner, last);
        return Err::Ok();
      });
    }
  }
  return Err::Ok();
}

// ---- Softmax / LogSoftmax ------------------------------------------------------------------------------

// Rows of n contiguous elements: the run-time dispatched row kernel (simd.h;
// AVX-512 or the portable V4 code).
template <bool kLog>
void SoftmaxRows(const float* x, float* y, int64_t rows, int64_t n) {
  const simd::RowFns& f = simd::Fns();
  auto row = kLog ? f.log_softmax : f.softmax;
  ParallelFor(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) row(x + r * n, y + r * n, n);
  });
}

// Softmax over the middle axis of [outer, n, inner] (inner > 1), vectorised over inner.
template <bool kLog>
void SoftmaxStrided(const float* x, float* y, int64_t outer, int64_t n, int64_t inner) {
  const auto acc = simd::Fns().exp_shift_accumulate;  // run-time dispatched (simd.h)
  ParallelFor(outer, 1, [&](int64_t b, int64_t e) {
    std::vector<float> mx(static_cast<size_t>(inner)), sum(static_cast<size_t>(inner));
    for (int64_t o = b; o < e; ++o) {
      const float* xo = x + o * n * inner;
      float* yo = y + o * n * inner;
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<float>::infinity());
      std::fill(sum.begin(), sum.end(), 0.f);
      for (int64_t a = 0; a < n; ++a)
        for (int64_t i = 0; i < inner; ++i) mx[i] = std::max(mx[i], xo[a * inner + i]);
      for (int64_t i = 0; i < inner; ++i) mx[i] = std::isinf(mx[i]) ? 0.f : mx[i];
      for (int64_t a = 0; a < n; ++a)
        acc(xo + a * inner, mx.data(), kLog ? nullptr : yo + a * inner, sum.data(), inner);
      if constexpr (kLog) {
        for (int64_t i = 0; i < inner; ++i) sum[i] = std::log(sum[i]);
        for (int64_t a = 0; a < n; ++a)
          for (int64_t i = 0; i < inner; ++i) yo[a * inner + i] = (xo[a * inner + i] - mx[i]) - sum[i];
      } else {
        for (int64_t i = 0; i < inner; ++i) sum[i] = 1.f / sum[i];
        for (int64_t a = 0; a < n; ++a)
          for (int64_t i = 0; i < inner; ++i) yo[a * inner + i] *= sum[i];
      }
    }
  });
}

template <bool kLog>
Err CreateSoftmax(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (!IsFloatDT(x.dtype) || y.dtype != x.dtype)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (f16, bf16, f32, f64)", args.Describe().c_str(),
                   DT(x.dtype));
  if (y.numel != x.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s does not match input %s", args.Describe().c_str(),
                   DimsToString(y.dims).c_str(), DimsToString(x.dims).c_str());
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const bool old = args.node->opset < 13;
  int64_t axis = args.attrs().Int("axis", old ? 1 : -1), a = 0;
  // A scalar is treated as one row of one element.
  if (rank > 0 && !NormalizeAxis(axis, rank, &a))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                   static_cast<long long>(axis), static_cast<long long>(rank));
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t d = 0; d < a; ++d) outer *= x.dims[d];
  if (old) {  // opset < 13: coerce to 2-D [outer, rest] and normalise each row
    for (int64_t d = a; d < rank; ++d) n *= x.dims[d];
  } else {
    n = rank ? x.dims[a] : 1;
    for (int64_t d = a + 1; d < rank; ++d) inner *= x.dims[d];
  }
  if (x.dtype != TSR_DTYPE_F32) {  // other float types: in double
    const int32_t dt = x.dtype;
    const int64_t numel = x.numel;
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      std::vector<double> v(static_cast<size_t>(numel));
      for (int64_t i = 0; i < numel; ++i) v[i] = LoadElem(dt, in[0], i);
      for (int64_t b = 0; b < outer; ++b)
        for (int64_t i = 0; i < inner; ++i) {
          double* base = v.data() + b * n * inner + i;
          double m = -std::numeric_limits<double>::infinity(), sum = 0;
          for (int64_t j = 0; j < n; ++j) m = std::max(m, base[j * inner]);
          if (std::isinf(m)) m = 0;
          for (int64_t j = 0; j < n; ++j) sum += std::exp(base[j * inner] - m);
          for (int64_t j = 0; j < n; ++j)
            base[j * inner] = kLog ? base[j * inner] - m - std::log(sum) : std::exp(base[j * inner] - m) / sum;
        }
      for (int64_t i = 0; i < numel; ++i) StoreElem(dt, o[0], i, v[i]);
      return Err::Ok();
    });
    return Err::Ok();
  }
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    const float* px = static_cast<const float*>(in[0]);
    float* py = static_cast<float*>(o[0]);
    if (n == 0 || outer == 0 || inner == 0) return Err::Ok();
    if (inner == 1) SoftmaxRows<kLog>(px, py, outer, n);
    else SoftmaxStrided<kLog>(px, py, outer, n, inner);
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- LayerNormalization ------------------------------------------------------------------------------

// Expands an optional per-feature parameter (broadcastable to the normalised
// dims) to d floats; returns false when the shape does not broadcast.
bool ExpandParam(const TensorArg* t, const std::vector<int64_t>& norm_dims, int64_t d, Broadcast* bc, bool* direct) {
  *direct = true;
  if (!t) return true;
  if (t->numel == d && t->dims.size() <= norm_dims.size()) {
    bool same = true;  // ignoring leading 1s, the dims must match
    size_t shift = norm_dims.size() - t->dims.size();
    for (size_t i = 0; i < t->dims.size(); ++i) same = same && t->dims[i] == norm_dims[i + shift];
    if (same) return true;
  }
  *direct = false;
  return MakeBroadcast(norm_dims, {&t->dims}, bc).empty();
}

// LayerNormalization over any float dtypes (X, scale, bias, the Mean and
// InvStdDev outputs may each differ, e.g. f16 data with f32 statistics), in double.
Err CreateLayerNormAny(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  const TensorArg& x = *args.inputs[0];
  const TensorArg& y = *args.outputs[0];
  for (size_t k = 0; k < args.inputs.size(); ++k)
    if (args.inputs[k] && !IsFloatDT(args.inputs[k]->dtype))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: input %zu has dtype %s (expected f16, bf16, f32 or f64)",
                     args.Describe().c_str(), k, DT(args.inputs[k]->dtype));
  if (y.dtype != x.dtype || y.numel != x.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s %s does not match input %s %s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis;
  if (!NormalizeAxis(args.attrs().Int("axis", -1), rank, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                   static_cast<long long>(args.attrs().Int("axis", -1)), static_cast<long long>(rank));
  const double eps = args.attrs().Float("epsilon", 1e-5f);
  int64_t rows = 1, d = 1;
  for (int64_t i = 0; i < axis; ++i) rows *= x.dims[i];
  for (int64_t i = axis; i < rank; ++i) d *= x.dims[i];
  std::vector<int64_t> norm_dims(x.dims.begin() + axis, x.dims.end());
  Broadcast bc[2];
  bool present[2] = {false, false};
  int32_t pdt[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    const TensorArg* t = args.has_input(k + 1) ? args.inputs[k + 1] : nullptr;
    if (!t) continue;
    present[k] = true;
    pdt[k] = t->dtype;
    if (!MakeBroadcast(norm_dims, {&t->dims}, &bc[k]).empty())
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s %s does not broadcast to the normalised shape %s",
                     args.Describe().c_str(), k == 0 ? "scale" : "bias", DimsToString(t->dims).c_str(),
                     DimsToString(norm_dims).c_str());
  }
  int32_t odt[3] = {y.dtype, 0, 0};
  for (size_t k = 1; k < args.outputs.size(); ++k) {
    const TensorArg* t = args.outputs[k];
    if (!t) continue;
    if (!IsFloatDT(t->dtype) || t->numel != rows)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu (%s) must be a float type with %lld elements",
                     args.Describe().c_str(), k, k == 1 ? "Mean" : "InvStdDev", static_cast<long long>(rows));
    odt[k] = t->dtype;
  }
  const int32_t xdt = x.dtype;
  const int64_t pn[2] = {present[0] ? args.inputs[1]->numel : 0, present[1] ? args.inputs[2]->numel : 0};
  const size_t nout = args.outputs.size();
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    std::vector<double> par[2];
    for (int k = 0; k < 2; ++k) {
      if (!present[k]) continue;
      std::vector<double> raw(static_cast<size_t>(pn[k]));
      for (int64_t i = 0; i < pn[k]; ++i) raw[i] = LoadElem(pdt[k], in[k + 1], i);
      par[k].resize(static_cast<size_t>(d));
      BroadcastCopy(bc[k], raw.data(), par[k].data());
    }
    for (int64_t r = 0; r < rows; ++r) {
      double m = 0, v = 0;
      for (int64_t j = 0; j < d; ++j) m += LoadElem(xdt, in[0], r * d + j);
      m /= static_cast<double>(std::max<int64_t>(d, 1));
      for (int64_t j = 0; j < d; ++j) {
        const double t = LoadElem(xdt, in[0], r * d + j) - m;
        v += t * t;
      }
      v /= static_cast<double>(std::max<int64_t>(d, 1));
      const double inv = 1.0 / std::sqrt(v + eps);
      for (int64_t j = 0; j < d; ++j) {
        double t = (LoadElem(xdt, in[0], r * d + j) - m) * inv;
        if (present[0]) t *= par[0][j];
        if (present[1]) t += par[1][j];
        StoreElem(xdt, o[0], r * d + j, t);
      }
      if (nout > 1 && o[1]) StoreElem(odt[1], o[1], r, m);
      if (nout > 2 && o[2]) StoreElem(odt[2], o[2], r, inv);
    }
    return Err::Ok();
  });
  return Err::Ok();
}

Err CreateLayerNorm(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 3, 1, 3);
  if (!e.ok()) return e;
  const TensorArg& x = *args.inputs[0];
  const TensorArg& y = *args.outputs[0];
  // Fast path: X/Y both f32, or both bf16 (the precision policy's bf16
  // regions: rows widened to f32, statistics and normalisation in f32, rounded
  // back on store) with f32 or bf16 scale/bias; Mean/InvStdDev f32. Anything
  // else: the double path.
  const bool bf16_io = x.dtype == TSR_DTYPE_BF16 && y.dtype == TSR_DTYPE_BF16;
  bool all_f32 = (x.dtype == TSR_DTYPE_F32 && y.dtype == TSR_DTYPE_F32) || bf16_io;
  for (size_t k = 1; k < args.inputs.size(); ++k)
    if (args.inputs[k])
      all_f32 = all_f32 && (args.inputs[k]->dtype == TSR_DTYPE_F32 ||
                            (bf16_io && args.inputs[k]->dtype == TSR_DTYPE_BF16));
  for (size_t k = 1; k < args.outputs.size(); ++k)
    if (args.outputs[k]) all_f32 = all_f32 && args.outputs[k]->dtype == TSR_DTYPE_F32;
  if (!all_f32) return CreateLayerNormAny(args, out);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis;
  if (!NormalizeAxis(args.attrs().Int("axis", -1), rank, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                   static_cast<long long>(args.attrs().Int("axis", -1)), static_cast<long long>(rank));
  const float eps = args.attrs().Float("epsilon", 1e-5f);
  int64_t rows = 1, d = 1;
  for (int64_t i = 0; i < axis; ++i) rows *= x.dims[i];
  for (int64_t i = axis; i < rank; ++i) d *= x.dims[i];
  std::vector<int64_t> norm_dims(x.dims.begin() + axis, x.dims.end());
  if (y.numel != x.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s does not match input %s", args.Describe().c_str(),
                   DimsToString(y.dims).c_str(), DimsToString(x.dims).c_str());
  const TensorArg* scale = args.has_input(1) ? args.inputs[1] : nullptr;
  const TensorArg* bias = args.has_input(2) ? args.inputs[2] : nullptr;
  Broadcast sbc, bbc;
  bool sdirect, bdirect;
  for (const TensorArg* t : {scale, bias})
    if (t && t->dtype != TSR_DTYPE_F32 && !(bf16_io && t->dtype == TSR_DTYPE_BF16))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: scale/bias dtype %s not supported (f32, or bf16 with bf16 X)",
                     args.Describe().c_str(), DT(t->dtype));
  const bool scale_bf16 = scale && scale->dtype == TSR_DTYPE_BF16, bias_bf16 = bias && bias->dtype == TSR_DTYPE_BF16;
  const int64_t scale_n = scale ? scale->numel : 0, bias_n = bias ? bias->numel : 0;
  if (!ExpandParam(scale, norm_dims, d, &sbc, &sdirect) || !ExpandParam(bias, norm_dims, d, &bbc, &bdirect))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: scale/bias do not broadcast to the normalised shape %s",
                   args.Describe().c_str(), DimsToString(norm_dims).c_str());
  for (size_t k = 1; k < args.outputs.size(); ++k) {
    const TensorArg* t = args.outputs[k];
    if (t && (t->dtype != TSR_DTYPE_F32 || t->numel != rows))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu (%s) must be f32 with %lld elements",
                     args.Describe().c_str(), k, k == 1 ? "Mean" : "InvStdDev", static_cast<long long>(rows));
  }
  const bool has_scale = scale != nullptr, has_bias = bias != nullptr;
  const size_t nout = args.outputs.size();
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    const float* px = static_cast<const float*>(in[0]);
    float* py = static_cast<float*>(o[0]);
    float* pmean = nout > 1 ? static_cast<float*>(o[1]) : nullptr;
    float* pinv = nout > 2 ? static_cast<float*>(o[2]) : nullptr;
    std::vector<float> sv, bv;  // expanded scale/bias when not laid out per feature
    std::vector<float> sw, bw;  // bf16 scale/bias widened to f32
    const float* ps = has_scale ? static_cast<const float*>(in[1]) : nullptr;
    const float* pb = has_bias ? static_cast<const float*>(in[2]) : nullptr;
    if (scale_bf16) {
      sw.resize(static_cast<size_t>(scale_n));
      simd::Converts().bf16_to_f32(static_cast<const uint16_t*>(in[1]), sw.data(), scale_n);
      ps = sw.data();
    }
    if (bias_bf16) {
      bw.resize(static_cast<size_t>(bias_n));
      simd::Converts().bf16_to_f32(static_cast<const uint16_t*>(in[2]), bw.data(), bias_n);
      pb = bw.data();
    }
    if (has_scale && !sdirect) {
      sv.resize(static_cast<size_t>(d));
      BroadcastCopy(sbc, ps, sv.data());
      ps = sv.data();
    }
    if (has_bias && !bdirect) {
      bv.resize(static_cast<size_t>(d));
      BroadcastCopy(bbc, pb, bv.data());
      pb = bv.data();
    }
    if (d == 0) return Err::Ok();
    const auto row = simd::Fns().layer_norm;  // run-time dispatched (simd.h)
    if (bf16_io) {
      const uint16_t* bx = static_cast<const uint16_t*>(in[0]);
      uint16_t* by = static_cast<uint16_t*>(o[0]);
      const simd::ConvertFns& f = simd::Converts();  // bit-exact bf16 <-> f32
      ParallelFor(rows, std::max<int64_t>(1, kGrain / d), [&](int64_t b, int64_t e) {
        thread_local std::vector<float> buf;  // one f32 row (Run stays reentrant)
        if (static_cast<int64_t>(buf.size()) < d) buf.resize(static_cast<size_t>(d));
        float* t = buf.data();
        for (int64_t r = b; r < e; ++r) {
          f.bf16_to_f32(bx + r * d, t, d);
          row(t, ps, pb, t, d, eps, pmean ? pmean + r : nullptr, pinv ? pinv + r : nullptr);
          f.f32_to_bf16(t, by + r * d, d);
        }
      });
      return Err::Ok();
    }
    ParallelFor(rows, std::max<int64_t>(1, kGrain / d), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        row(px + r * d, ps, pb, py + r * d, d, eps, pmean ? pmean + r : nullptr, pinv ? pinv + r : nullptr);
    });
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- BatchNormalization (inference) ----------------------------------------------------------------------

// Training mode (opset 14+): normalizes with the batch statistics (mean and
// population variance over N and the spatial dims, accumulated in double) and outputs
// running_mean = mean_in * momentum + batch_mean * (1 - momentum), likewise
// running_var with the batch variance.
Err CreateBatchNormTrain(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  const TensorArg& x = *args.inputs[0];
  if (args.node->opset < 14)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: training_mode before opset 14 (5 outputs) is not supported",
                   args.Describe().c_str());
  if (args.outputs.size() > 3)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: has at most 3 outputs in training mode, got %zu",
                   args.Describe().c_str(), args.outputs.size());
  const int64_t n = x.dims[0], c = x.dims[1];
  const int64_t sp = (n * c != 0) ? x.numel / (n * c) : 0;
  static const char* kNames[] = {"", "scale", "B", "input_mean", "input_var"};
  for (size_t k = 1; k < 5; ++k) {
    const TensorArg& t = *args.inputs[k];
    if (t.dtype != TSR_DTYPE_F32 || t.numel != c)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s must be f32 with %lld elements (C), got %s%s",
                     args.Describe().c_str(), kNames[k], static_cast<long long>(c), DT(t.dtype),
                     DimsToString(t.dims).c_str());
  }
  for (size_t k = 1; k < args.outputs.size(); ++k)
    if (args.outputs[k] && (args.outputs[k]->dtype != TSR_DTYPE_F32 || args.outputs[k]->numel != c))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu must be f32 with %lld elements (C)",
                     args.Describe().c_str(), k, static_cast<long long>(c));
  const double eps = args.attrs().Float("epsilon", 1e-5f), mom = args.attrs().Float("momentum", 0.9f);
  const size_t nout = args.outputs.size();
  std::vector<bool> present(nout);
  for (size_t k = 0; k < nout; ++k) present[k] = args.outputs[k] != nullptr;
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    const float* px = static_cast<const float*>(in[0]);
    const float* sc = static_cast<const float*>(in[1]);
    const float* bb = static_cast<const float*>(in[2]);
    const float* im = static_cast<const float*>(in[3]);
    const float* iv = static_cast<const float*>(in[4]);
    float* py = static_cast<float*>(o[0]);
    if (c == 0) return Err::Ok();
    const double cnt = static_cast<double>(std::max<int64_t>(n * sp, 1));
    // Pass 1, parallel over the n*c planes: per-plane sums of d and d^2 with
    // d = x - shift[ch] (the channel's first element, so the one-pass variance
    // does not cancel), in double (`omp simd reduction` vectorizes with a fixed
    // lane split). Planes are then reduced per channel in a fixed order, so
    // results do not depend on the thread count.
    const int64_t planes = n * c;
    std::vector<double> shift(static_cast<size_t>(c), 0.0), sums(static_cast<size_t>(planes) * 2);
    if (n * sp > 0)
      for (int64_t ch = 0; ch < c; ++ch) shift[ch] = px[ch * sp];
    const int64_t grain = std::max<int64_t>(1, 2 * kGrain / std::max<int64_t>(sp, 1));
    ParallelFor(planes, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const float* xs = px + p * sp;
        const double k = shift[p % c];
        double a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
        for (int64_t s = 0; s < sp; ++s) {
          const double d = static_cast<double>(xs[s]) - k;
          a1 += d;
          a2 += d * d;
        }
        sums[p * 2] = a1;
        sums[p * 2 + 1] = a2;
      }
    });
    // Per channel: y = (x - mean) * a + B, a = scale / sqrt(var + eps).
    std::vector<float> fa(static_cast<size_t>(c)), fm(static_cast<size_t>(c));
    for (int64_t ch = 0; ch < c; ++ch) {
      double s1 = 0, s2 = 0;
      for (int64_t b = 0; b < n; ++b) {
        s1 += sums[(b * c + ch) * 2];
        s2 += sums[(b * c + ch) * 2 + 1];
      }
      const double dm = s1 / cnt;
      const double m = shift[ch] + dm, v = std::max(0.0, s2 / cnt - dm * dm);
      fa[ch] = static_cast<float>(sc[ch] / std::sqrt(v + eps));
      fm[ch] = static_cast<float>(m);
      if (nout > 1 && present[1]) static_cast<float*>(o[1])[ch] = static_cast<float>(im[ch] * mom + m * (1 - mom));
      if (nout > 2 && present[2]) static_cast<float*>(o[2])[ch] = static_cast<float>(iv[ch] * mom + v * (1 - mom));
    }
    // Pass 2: normalize, parallel over planes.
    ParallelFor(planes, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t ch = p % c;
        const float a = fa[ch], m = fm[ch], bv = bb[ch];
        const float* xs = px + p * sp;
        float* ys = py + p * sp;
        for (int64_t s = 0; s < sp; ++s) ys[s] = (xs[s] - m) * a + bv;
      }
    });
    return Err::Ok();
  });
  return Err::Ok();
}

// y[n, c, s] = x[n, c, s] * a[c] + b[c], a = scale / sqrt(var + eps),
// b = B - mean * a. The per-channel factors are folded at compile time when
// all four parameters are constants, else per Run.
Err CreateBatchNorm(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 5, 5, 1, 5);
  if (!e.ok()) return e;
  const TensorArg& x = *args.inputs[0];
  const TensorArg& y = *args.outputs[0];
  if (x.dtype != TSR_DTYPE_F32 || y.dtype != TSR_DTYPE_F32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (f32)", args.Describe().c_str(), DT(x.dtype));
  if (x.dims.size() < 2)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input must have rank >= 2 (N, C, ...), got %s",
                   args.Describe().c_str(), DimsToString(x.dims).c_str());
  if (y.numel != x.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s does not match input %s", args.Describe().c_str(),
                   DimsToString(y.dims).c_str(), DimsToString(x.dims).c_str());
  if (args.attrs().Int("training_mode", 0) != 0) return CreateBatchNormTrain(args, out);
  for (size_t k = 1; k < args.outputs.size(); ++k)
    if (args.outputs[k])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: outputs running_mean/running_var need training_mode=1",
                     args.Describe().c_str());
  if (args.attrs().Has("spatial") && args.attrs().Int("spatial", 1) == 0)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: spatial=0 is not supported", args.Describe().c_str());
  const int64_t n = x.dims[0], c = x.dims[1];
  const int64_t sp = c ? x.numel / std::max<int64_t>(n * c, 1) : 0;
  bool all_const = true;
  static const char* kNames[] = {"", "scale", "B", "input_mean", "input_var"};
  for (size_t k = 1; k < 5; ++k) {
    const TensorArg& t = *args.inputs[k];
    if (t.dtype != TSR_DTYPE_F32 || t.numel != c)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s must be f32 with %lld elements (C), got %s%s",
                     args.Describe().c_str(), kNames[k], static_cast<long long>(c), DT(t.dtype),
                     DimsToString(t.dims).c_str());
    all_const = all_const && t.const_data;
  }
  const float eps = args.attrs().Float("epsilon", 1e-5f);
  auto fold = [c, eps](const float* s, const float* bb, const float* m, const float* v, float* a, float* b) {
    for (int64_t i = 0; i < c; ++i) {
      a[i] = s[i] / std::sqrt(v[i] + eps);
      b[i] = bb[i] - m[i] * a[i];
    }
  };
  std::vector<float> fa, fb;
  if (all_const) {
    fa.resize(static_cast<size_t>(c));
    fb.resize(static_cast<size_t>(c));
    fold(static_cast<const float*>(args.inputs[1]->const_data), static_cast<const float*>(args.inputs[2]->const_data),
         static_cast<const float*>(args.inputs[3]->const_data), static_cast<const float*>(args.inputs[4]->const_data),
         fa.data(), fb.data());
  }
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    std::vector<float> ra, rb;
    const float* a = fa.data();
    const float* b = fb.data();
    if (!all_const) {
      ra.resize(static_cast<size_t>(c));
      rb.resize(static_cast<size_t>(c));
      fold(static_cast<const float*>(in[1]), static_cast<const float*>(in[2]), static_cast<const float*>(in[3]),
           static_cast<const float*>(in[4]), ra.data(), rb.data());
      a = ra.data();
      b = rb.data();
    }
    const float* px = static_cast<const float*>(in[0]);
    float* py = static_cast<float*>(o[0]);
    ParallelFor(n * c, std::max<int64_t>(1, kGrain / std::max<int64_t>(sp, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const float av = a[p % c], bv = b[p % c];
        const float* xs = px + p * sp;
        float* ys = py + p * sp;
        for (int64_t s = 0; s < sp; ++s) ys[s] = xs[s] * av + bv;
      }
    });
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- GlobalAveragePool / GlobalMaxPool ---------------------------------------------------------------------

template <RKind K>
Err CreateGlobalPool(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (x.dtype != TSR_DTYPE_F32 || y.dtype != TSR_DTYPE_F32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (f32)", args.Describe().c_str(), DT(x.dtype));
  if (x.dims.size() < 2)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input must have rank >= 2 (N, C, ...), got %s",
                   args.Describe().c_str(), DimsToString(x.dims).c_str());
  const int64_t nc = x.dims[0] * x.dims[1];
  int64_t sp = 1;
  for (size_t i = 2; i < x.dims.size(); ++i) sp *= x.dims[i];
  if (y.numel != nc)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s must have N*C = %lld elements", args.Describe().c_str(),
                   DimsToString(y.dims).c_str(), static_cast<long long>(nc));
  if (sp == 0 && nc > 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: empty spatial extent", args.Describe().c_str());
  std::vector<Pass> passes{{nc, sp, 1}};
  *out = MakeFnKernel([passes, sp](const void* const* in, void* const* o) -> Err {
    RunReducePlan<float, K>(passes, sp, static_cast<const float*>(in[0]), static_cast<float*>(o[0]));
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- claim checks ----------------------------------------------------------------------------------------

std::string ClaimF32(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32}); }
std::string ClaimFloatAny(const tsr_node_view& n, const tsr_graph_view& g) {
  return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32, TSR_DTYPE_F64, TSR_DTYPE_F16, TSR_DTYPE_BF16});
}
std::string ClaimNumericAny(const tsr_node_view& n, const tsr_graph_view& g) {
  return ClaimDTypeIn(n, g, 0,
                      {TSR_DTYPE_F32, TSR_DTYPE_F64, TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_I8, TSR_DTYPE_I16,
                       TSR_DTYPE_I32, TSR_DTYPE_I64, TSR_DTYPE_U8, TSR_DTYPE_U16, TSR_DTYPE_U32, TSR_DTYPE_U64});
}
// Reduce*: axes input (when no attribute) must be a constant.
std::string ClaimReduce(const tsr_node_view& n, const tsr_graph_view& g) {
  const bool minmax = std::strcmp(n.op_type, "ReduceMax") == 0 || std::strcmp(n.op_type, "ReduceMin") == 0;
  std::string r = minmax ? ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32, TSR_DTYPE_F64, TSR_DTYPE_F16, TSR_DTYPE_BF16,
                                                   TSR_DTYPE_I8, TSR_DTYPE_I16, TSR_DTYPE_I32, TSR_DTYPE_I64,
                                                   TSR_DTYPE_U8, TSR_DTYPE_U16, TSR_DTYPE_U32, TSR_DTYPE_U64,
                                                   TSR_DTYPE_BOOL})
                         : ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32, TSR_DTYPE_F64, TSR_DTYPE_F16, TSR_DTYPE_BF16,
                                                   TSR_DTYPE_I8, TSR_DTYPE_I16, TSR_DTYPE_I32, TSR_DTYPE_I64,
                                                   TSR_DTYPE_U8, TSR_DTYPE_U16, TSR_DTYPE_U32, TSR_DTYPE_U64});
  if (!r.empty() || plugin::NodeAttrs(n).Has("axes")) return r;
  return ClaimConstInputs(n, g, 1, 1);
}
std::string ClaimLayerNorm(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimFloatAny(n, g);
  for (uint32_t i = 1; r.empty() && i < 3; ++i)
    if (ClaimInputDType(n, g, i) != TSR_DTYPE_UNDEFINED)
      r = ClaimDTypeIn(n, g, i, {TSR_DTYPE_F32, TSR_DTYPE_F64, TSR_DTYPE_F16, TSR_DTYPE_BF16});
  return r;
}
std::string ClaimBatchNorm(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimF32(n, g);
  if (!r.empty()) return r;
  if (plugin::NodeAttrs(n).Int("training_mode", 0) != 0) {
    for (uint32_t i = 1; i < 5; ++i)
      if (ClaimInputDType(n, g, i) != TSR_DTYPE_F32) return "CPU BatchNormalization training mode needs f32 parameters";
    if (n.num_outputs > 3 || n.opset < 14) return "CPU BatchNormalization training mode supports opset 14+ (3 outputs)";
    return "";
  }
  for (uint32_t i = 1; i < n.num_outputs; ++i)
    if (n.outputs[i] >= 0) return "CPU BatchNormalization produces running mean/var only with training_mode=1";
  return "";
}

}  // namespace

void RegisterReductionKernels(KernelRegistry& r) {
  r.Add({"", "ReduceSum", &CreateReduceAny<GKind::kSum>, &ClaimReduce});
  r.Add({"", "ReduceMean", &CreateReduceAny<GKind::kMean>, &ClaimReduce});
  r.Add({"", "ReduceMax", &CreateReduceAny<GKind::kMax>, &ClaimReduce});
  r.Add({"", "ReduceMin", &CreateReduceAny<GKind::kMin>, &ClaimReduce});
  r.Add({"", "ReduceProd", &CreateReduceAny<GKind::kProd>, &ClaimReduce});
  r.Add({"", "ReduceL1", &CreateReduceAny<GKind::kL1>, &ClaimReduce});
  r.Add({"", "ReduceL2", &CreateReduceAny<GKind::kL2>, &ClaimReduce});
  r.Add({"", "ReduceLogSum", &CreateReduceAny<GKind::kLogSum>, &ClaimReduce});
  r.Add({"", "ReduceLogSumExp", &CreateReduceAny<GKind::kLogSumExp>, &ClaimReduce});
  r.Add({"", "ReduceSumSquare", &CreateReduceAny<GKind::kSumSquare>, &ClaimReduce});
  r.Add({"", "ArgMax", &CreateArg<true>, &ClaimNumericAny});
  r.Add({"", "ArgMin", &CreateArg<false>, &ClaimNumericAny});
  r.Add({"", "Softmax", &CreateSoftmax<false>, &ClaimFloatAny});
  r.Add({"", "LogSoftmax", &CreateSoftmax<true>, &ClaimFloatAny});
  r.Add({"", "LayerNormalization", &CreateLayerNorm, &ClaimLayerNorm});
  r.Add({"", "BatchNormalization", &CreateBatchNorm, &ClaimBatchNorm});
  r.Add({"", "GlobalAveragePool", &CreateGlobalPool<RKind::kMean>, &ClaimF32});
  r.Add({"", "GlobalMaxPool", &CreateGlobalPool<RKind::kMax>, &ClaimF32});
}

}  // namespace tessera::cpu
