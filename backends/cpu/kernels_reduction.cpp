// Reduction-class CPU kernels: Reduce{Mean,Sum,Max,Min,Prod}, ArgMax/ArgMin,
// Softmax/LogSoftmax, LayerNormalization, inference BatchNormalization and
// Global{Average,Max}Pool.
//
// Reductions collapse the input into alternating groups of kept and reduced
// dims and run one pass per reduced group (innermost first); every pass is
// out[o, i] = reduce_r in[o, r, i], with a contiguous fast path when i has
// size 1 and an inner-vectorised path otherwise.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

constexpr int64_t kGrain = 16384;  // elements per parallel task
constexpr int kLanes = 16;         // independent accumulators (lets GCC vectorise without -ffast-math)

const char* DT(int32_t dt) { return plugin::DTypeName(dt); }

// ---- exp sums for softmax -------------------------------------------------------------------

// ExpV, V4, Load4 and Store4 come from broadcast.h.

// Loads the first n < 4 floats of p, padding with `pad`.
inline V4 LoadTail(const float* p, int64_t n, float pad) {
  V4 v = Splat(pad);
  for (int64_t i = 0; i < n; ++i) v[i] = p[i];
  return v;
}

// y[i] = exp(x[i] - shift) for i < n (y may be null); returns the sum.
float ExpShiftSum(const float* x, float shift, float* y, int64_t n) {
  V4 acc0 = V4{}, acc1 = V4{};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    V4 e0 = ExpV(Load4(x + i) - shift), e1 = ExpV(Load4(x + i + 4) - shift);
    if (y) {
      Store4(y + i, e0);
      Store4(y + i + 4, e1);
    }
    acc0 += e0;
    acc1 += e1;
  }
  for (; i < n; i += 4) {
    int64_t m = std::min<int64_t>(4, n - i);
    V4 e = ExpV(LoadTail(x + i, m, -std::numeric_limits<float>::infinity()) - shift);
    if (y)
      for (int64_t j = 0; j < m; ++j) y[i + j] = e[j];
    acc0 += e;
  }
  acc0 += acc1;
  return (acc0[0] + acc0[1]) + (acc0[2] + acc0[3]);
}

// y[i] = exp(x[i] - shift[i]) (y may be null); sum[i] += that, for i < n.
void ExpShiftAccumulate(const float* x, const float* shift, float* y, float* sum, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    V4 e = ExpV(Load4(x + i) - Load4(shift + i));
    if (y) Store4(y + i, e);
    Store4(sum + i, Load4(sum + i) + e);
  }
  for (; i < n; ++i) {
    float e = ExpV(Splat(x[i] - shift[i]))[0];
    if (y) y[i] = e;
    sum[i] += e;
  }
}

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
  if (x.dtype != TSR_DTYPE_F32 && x.dtype != TSR_DTYPE_I32 && x.dtype != TSR_DTYPE_I64)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (f32, i32, i64)", args.Describe().c_str(), DT(x.dtype));
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
    case TSR_DTYPE_I32: make(int32_t{}); break;
    default: make(int64_t{}); break;
  }
  return Err::Ok();
}

// ---- Softmax / LogSoftmax ------------------------------------------------------------------------------

// Rows of n contiguous elements.
template <bool kLog>
void SoftmaxRows(const float* x, float* y, int64_t rows, int64_t n) {
  ParallelFor(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * n;
      float* yr = y + r * n;
      const float m = ReduceContig<float, RKind::kMax>(xr, n);
      const float mm = std::isinf(m) ? 0.f : m;  // all -inf rows: avoid -inf - -inf
      if constexpr (kLog) {
        // (x - max) first: exact for values near the max, so large inputs keep precision.
        const float lse = std::log(ExpShiftSum(xr, mm, nullptr, n));
        for (int64_t j = 0; j < n; ++j) yr[j] = (xr[j] - mm) - lse;
      } else {
        const float inv = 1.f / ExpShiftSum(xr, mm, yr, n);
        for (int64_t j = 0; j < n; ++j) yr[j] *= inv;
      }
    }
  });
}

// Softmax over the middle axis of [outer, n, inner] (inner > 1), vectorised over inner.
template <bool kLog>
void SoftmaxStrided(const float* x, float* y, int64_t outer, int64_t n, int64_t inner) {
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
        ExpShiftAccumulate(xo + a * inner, mx.data(), kLog ? nullptr : yo + a * inner, sum.data(), inner);
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
  if (x.dtype != TSR_DTYPE_F32 || y.dtype != TSR_DTYPE_F32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (f32)", args.Describe().c_str(), DT(x.dtype));
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

Err CreateLayerNorm(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 3, 1, 3);
  if (!e.ok()) return e;
  const TensorArg& x = *args.inputs[0];
  const TensorArg& y = *args.outputs[0];
  if (x.dtype != TSR_DTYPE_F32 || y.dtype != TSR_DTYPE_F32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (f32)", args.Describe().c_str(), DT(x.dtype));
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
    if (t && t->dtype != TSR_DTYPE_F32)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: scale/bias dtype %s not supported (f32)", args.Describe().c_str(),
                     DT(t->dtype));
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
    const float* ps = has_scale ? static_cast<const float*>(in[1]) : nullptr;
    const float* pb = has_bias ? static_cast<const float*>(in[2]) : nullptr;
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
    ParallelFor(rows, std::max<int64_t>(1, kGrain / d), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* xr = px + r * d;
        float* yr = py + r * d;
        const float mean = ReduceContig<float, RKind::kSum>(xr, d) / static_cast<float>(d);
        float acc[kLanes] = {};
        int64_t i = 0;
        for (; i + kLanes <= d; i += kLanes)
          for (int l = 0; l < kLanes; ++l) acc[l] += (xr[i + l] - mean) * (xr[i + l] - mean);
        float ss = 0.f;
        for (; i < d; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
        for (int l = 0; l < kLanes; ++l) ss += acc[l];
        const float inv = 1.f / std::sqrt(ss / static_cast<float>(d) + eps);
        if (ps && pb) {
          for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * inv * ps[j] + pb[j];
        } else if (ps) {
          for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * inv * ps[j];
        } else if (pb) {
          for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * inv + pb[j];
        } else {
          for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * inv;
        }
        if (pmean) pmean[r] = mean;
        if (pinv) pinv[r] = inv;
      }
    });
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- BatchNormalization (inference) ----------------------------------------------------------------------

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
  for (size_t k = 1; k < args.outputs.size(); ++k)
    if (args.outputs[k])
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: training outputs (running mean/var) are not supported",
                     args.Describe().c_str());
  if (args.attrs().Int("training_mode", 0) != 0)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: training_mode=1 is not supported", args.Describe().c_str());
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
std::string ClaimArith(const tsr_node_view& n, const tsr_graph_view& g) {
  return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32, TSR_DTYPE_I32, TSR_DTYPE_I64});
}
// Reduce*: axes input (when no attribute) must be a constant.
std::string ClaimReduce(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimArith(n, g);
  if (!r.empty() || plugin::NodeAttrs(n).Has("axes")) return r;
  return ClaimConstInputs(n, g, 1, 1);
}
std::string ClaimLayerNorm(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimF32(n, g);
  for (uint32_t i = 1; r.empty() && i < 3; ++i)
    if (ClaimInputDType(n, g, i) != TSR_DTYPE_UNDEFINED) r = ClaimDTypeIn(n, g, i, {TSR_DTYPE_F32});
  return r;
}
std::string ClaimBatchNorm(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimF32(n, g);
  if (!r.empty()) return r;
  if (plugin::NodeAttrs(n).Int("training_mode", 0) != 0) return "CPU BatchNormalization supports inference only";
  for (uint32_t i = 1; i < n.num_outputs; ++i)
    if (n.outputs[i] >= 0) return "CPU BatchNormalization does not produce training outputs";
  return "";
}

}  // namespace

void RegisterReductionKernels(KernelRegistry& r) {
  r.Add({"", "ReduceSum", &CreateReduce<RKind::kSum>, &ClaimReduce});
  r.Add({"", "ReduceMean", &CreateReduce<RKind::kMean>, &ClaimReduce});
  r.Add({"", "ReduceMax", &CreateReduce<RKind::kMax>, &ClaimReduce});
  r.Add({"", "ReduceMin", &CreateReduce<RKind::kMin>, &ClaimReduce});
  r.Add({"", "ReduceProd", &CreateReduce<RKind::kProd>, &ClaimReduce});
  r.Add({"", "ArgMax", &CreateArg<true>, &ClaimArith});
  r.Add({"", "ArgMin", &CreateArg<false>, &ClaimArith});
  r.Add({"", "Softmax", &CreateSoftmax<false>, &ClaimF32});
  r.Add({"", "LogSoftmax", &CreateSoftmax<true>, &ClaimF32});
  r.Add({"", "LayerNormalization", &CreateLayerNorm, &ClaimLayerNorm});
  r.Add({"", "BatchNormalization", &CreateBatchNorm, &ClaimBatchNorm});
  r.Add({"", "GlobalAveragePool", &CreateGlobalPool<RKind::kMean>, &ClaimF32});
  r.Add({"", "GlobalMaxPool", &CreateGlobalPool<RKind::kMax>, &ClaimF32});
}

}  // namespace tessera::cpu
