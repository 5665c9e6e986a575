// CPU kernels: losses (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss),
// normalizations (RMS, Lp, MeanVariance, Group, Instance, LRN) and the
// reduction-like Hardmax, CumSum and TopK.
//
// Floating-point work is done in double on converted copies of the inputs
// (every float dtype, f16/bf16 included, shares one code path) and converted
// back on store; integer CumSum accumulates in 64-bit integers and TopK
// compares exact keys (i64/u64/float/double), so integers stay exact.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

const char* DT(int32_t dt) { return plugin::DTypeName(dt); }

// ---- dtype conversion -----------------------------------------------------------------------------

float HalfToFloat(uint16_t h) { return plugin::HalfBitsToFloat(h); }
uint16_t FloatToHalf(float f) { return plugin::FloatToHalfBits(f); }
float BF16ToFloat(uint16_t b) { return plugin::BF16BitsToFloat(b); }
uint16_t FloatToBF16(float f) { return plugin::FloatToBF16Bits(f); }

bool IsFloatDT(int32_t dt) {
  return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_F64 || dt == TSR_DTYPE_F16 || dt == TSR_DTYPE_BF16;
}
bool IsIntDT(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_I8: case TSR_DTYPE_I16: case TSR_DTYPE_I32: case TSR_DTYPE_I64:
    case TSR_DTYPE_U8: case TSR_DTYPE_U16: case TSR_DTYPE_U32: case TSR_DTYPE_U64: return true;
    default: return false;
  }
}
bool IsSignedDT(int32_t dt) {
  return dt == TSR_DTYPE_I8 || dt == TSR_DTYPE_I16 || dt == TSR_DTYPE_I32 || dt == TSR_DTYPE_I64;
}

template <typename T>
void CopyIn(const void* p, int64_t n, double* y) {
  const T* x = static_cast<const T*>(p);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<double>(x[i]);
}

// y[i] = element i of p (dtype dt) as double.
void ToDouble(int32_t dt, const void* p, int64_t n, double* y) {
  switch (dt) {
    case TSR_DTYPE_F32: CopyIn<float>(p, n, y); break;
    case TSR_DTYPE_F64: CopyIn<double>(p, n, y); break;
    case TSR_DTYPE_I8: CopyIn<int8_t>(p, n, y); break;
    case TSR_DTYPE_I16: CopyIn<int16_t>(p, n, y); break;
    case TSR_DTYPE_I32: CopyIn<int32_t>(p, n, y); break;
    case TSR_DTYPE_I64: CopyIn<int64_t>(p, n, y); break;
    case TSR_DTYPE_U8: case TSR_DTYPE_BOOL: CopyIn<uint8_t>(p, n, y); break;
    case TSR_DTYPE_U16: CopyIn<uint16_t>(p, n, y); break;
    case TSR_DTYPE_U32: CopyIn<uint32_t>(p, n, y); break;
    case TSR_DTYPE_U64: CopyIn<uint64_t>(p, n, y); break;
    case TSR_DTYPE_F16: {
      const uint16_t* x = static_cast<const uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) y[i] = HalfToFloat(x[i]);
      break;
    }
    case TSR_DTYPE_BF16: {
      const uint16_t* x = static_cast<const uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) y[i] = BF16ToFloat(x[i]);
      break;
    }
    default: std::fill(y, y + n, 0.0);
  }
}

template <typename T>
void CopyOut(const double* x, int64_t n, void* p) {
  T* y = static_cast<T*>(p);
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_integral_v<T>) {
      const double v = x[i];  // clamp (non-finite results of empty reductions included)
      if (!(v == v)) y[i] = 0;
      else if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) y[i] = std::numeric_limits<T>::lowest();
      else if (v >= static_cast<double>(std::numeric_limits<T>::max())) y[i] = std::numeric_limits<T>::max();
      else y[i] = static_cast<T>(v);
    } else {
      y[i] = static_cast<T>(x[i]);
    }
  }
}

void FromDouble(int32_t dt, const double* x, int64_t n, void* p) {
  switch (dt) {
    case TSR_DTYPE_F32: CopyOut<float>(x, n, p); break;
    case TSR_DTYPE_F64: CopyOut<double>(x, n, p); break;
    case TSR_DTYPE_I8: CopyOut<int8_t>(x, n, p); break;
    case TSR_DTYPE_I16: CopyOut<int16_t>(x, n, p); break;
    case TSR_DTYPE_I32: CopyOut<int32_t>(x, n, p); break;
    case TSR_DTYPE_I64: CopyOut<int64_t>(x, n, p); break;
    case TSR_DTYPE_U8: CopyOut<uint8_t>(x, n, p); break;
    case TSR_DTYPE_U16: CopyOut<uint16_t>(x, n, p); break;
    case TSR_DTYPE_U32: CopyOut<uint32_t>(x, n, p); break;
    case TSR_DTYPE_U64: CopyOut<uint64_t>(x, n, p); break;
    case TSR_DTYPE_BOOL: {
      uint8_t* y = static_cast<uint8_t*>(p);
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] != 0.0;
      break;
    }
    case TSR_DTYPE_F16: {
      uint16_t* y = static_cast<uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) y[i] = FloatToHalf(static_cast<float>(x[i]));
      break;
    }
    case TSR_DTYPE_BF16: {
      uint16_t* y = static_cast<uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) y[i] = FloatToBF16(static_cast<float>(x[i]));
      break;
    }
    default: break;
  }
}

std::vector<double> LoadD(const TensorArg& t, const void* p) {
  std::vector<double> v(static_cast<size_t>(t.numel));
  ToDouble(t.dtype, p, t.numel, v.data());
  return v;
}

Err Bad(const NodeArgs& a, const char* what) {
  return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", a.Describe().c_str(), what);
}

Err NeedFloat(const NodeArgs& args, const TensorArg& t, const char* name) {
  if (IsFloatDT(t.dtype)) return Err::Ok();
  return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s has dtype %s, expected f16, bf16, f32 or f64", args.Describe().c_str(),
                 name, DT(t.dtype));
}

Err SameShapeOut(const NodeArgs& args, const TensorArg& x, const TensorArg& y) {
  if (y.numel != x.numel || y.dtype != x.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s %s does not match input %s %s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  return Err::Ok();
}

// Splits dims around `axis` into [outer, dims[axis], inner].
void Split3(const std::vector<int64_t>& d, int64_t axis, int64_t* outer, int64_t* n, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int64_t i = 0; i < axis; ++i) *outer *= d[i];
  *n = d.empty() ? 1 : d[axis];
  for (size_t i = static_cast<size_t>(axis) + 1; i < d.size(); ++i) *inner *= d[i];
}

Err ReadAxis(const NodeArgs& args, int64_t def, int64_t rank, int64_t* axis) {
  const int64_t a = args.attrs().Int("axis", def);
  if (!NormalizeAxis(a, std::max<int64_t>(rank, 1), axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                   static_cast<long long>(a), static_cast<long long>(rank));
  return Err::Ok();
}

// Expands `src` (shape sdims) to `dims` by numpy broadcasting; false if it does not broadcast.
bool ExpandTo(const std::vector<int64_t>& dims, const std::vector<int64_t>& sdims, const std::vector<double>& src,
              std::vector<double>* out) {
  if (sdims.size() > dims.size()) {
    for (size_t i = 0; i < sdims.size() - dims.size(); ++i)
      if (sdims[i] != 1) return false;
  }
  const size_t r = dims.size();
  std::vector<int64_t> stride(r, 0);
  int64_t s = 1;
  for (size_t k = 0; k < std::min(r, sdims.size()); ++k) {
    const size_t di = r - 1 - k, si = sdims.size() - 1 - k;
    if (sdims[si] != dims[di] && sdims[si] != 1) return false;
    stride[di] = sdims[si] == 1 ? 0 : s;
    s *= sdims[si];
  }
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  out->assign(static_cast<size_t>(n), 0.0);
  std::vector<int64_t> idx(r, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (size_t k = 0; k < r; ++k) off += idx[k] * stride[k];
    (*out)[static_cast<size_t>(i)] = src[static_cast<size_t>(off)];
    for (size_t k = r; k-- > 0;) {
      if (++idx[k] < dims[k]) break;
      idx[k] = 0;
    }
  }
  return true;
}

// ---- Hardmax ----------------------------------------------------------------------------------------

// 1 at the first maximum of each row along the axis (opset < 13: of each
// row of the input coerced to 2-D at axis), 0 elsewhere.
Err CreateHardmax(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (Err f = NeedFloat(args, x, "input"); !f.ok()) return f;
  if (Err f = SameShapeOut(args, x, y); !f.ok()) return f;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const bool old = args.node->opset < 13;
  int64_t axis;
  if (Err f = ReadAxis(args, old ? 1 : -1, rank, &axis); !f.ok()) return f;
  int64_t outer, n, inner;
  Split3(x.dims, rank ? axis : 0, &outer, &n, &inner);
  if (old) {
    n *= inner;
    inner = 1;
  }
  const int32_t dt = x.dtype;
  const int64_t numel = x.numel;
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    std::vector<double> v(static_cast<size_t>(numel)), r(static_cast<size_t>(numel), 0.0);
    ToDouble(dt, in[0], numel, v.data());
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t i = 0; i < inner; ++i) {
        if (n == 0) continue;
        const int64_t base = a * n * inner + i;
        int64_t best = 0;
        for (int64_t j = 1; j < n; ++j)
          if (v[base + j * inner] > v[base + best * inner]) best = j;
        r[base + best * inner] = 1.0;
      }
    FromDouble(dt, r.data(), numel, o[0]);
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- CumSum ----------------------------------------------------------------------------------------

template <typename T, typename Acc>
void RunCumSum(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool exclusive, bool reverse) {
  ParallelFor(outer, 1, [&](int64_t b, int64_t e) {
    std::vector<Acc> acc(static_cast<size_t>(inner));
    for (int64_t o = b; o < e; ++o) {
      std::fill(acc.begin(), acc.end(), Acc(0));
      const T* src = x + o * n * inner;
      T* dst = y + o * n * inner;
      for (int64_t s = 0; s < n; ++s) {
        const int64_t j = reverse ? n - 1 - s : s;
        for (int64_t i = 0; i < inner; ++i) {
          const Acc v = static_cast<Acc>(src[j * inner + i]);
          if (exclusive) {
            dst[j * inner + i] = static_cast<T>(acc[i]);
            acc[i] += v;
          } else {
            acc[i] += v;
            dst[j * inner + i] = static_cast<T>(acc[i]);
          }
        }
      }
    }
  });
}

Err CreateCumSum(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0], &ax = *args.inputs[1];
  if (!IsFloatDT(x.dtype) && !IsIntDT(x.dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (numeric types)", args.Describe().c_str(),
                   DT(x.dtype));
  if (Err f = SameShapeOut(args, x, y); !f.ok()) return f;
  std::vector<int64_t> axv;
  bool has = false;
  if (Err f = ReadIntsParam(args, nullptr, 1, &axv, &has); !f.ok()) return f;
  if (axv.size() != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis must have exactly one element, got %lld", args.Describe().c_str(),
                   static_cast<long long>(ax.numel));
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis;
  if (rank == 0 || !NormalizeAxis(axv[0], rank, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                   static_cast<long long>(axv[0]), static_cast<long long>(rank));
  int64_t outer, n, inner;
  Split3(x.dims, axis, &outer, &n, &inner);
  const bool exclusive = args.attrs().Int("exclusive", 0) != 0, reverse = args.attrs().Int("reverse", 0) != 0;
  auto make = [&](auto tag, auto acc_tag) {
    using T = decltype(tag);
    using Acc = decltype(acc_tag);
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      RunCumSum<T, Acc>(static_cast<const T*>(in[0]), static_cast<T*>(o[0]), outer, n, inner, exclusive, reverse);
      return Err::Ok();
    });
  };
  switch (x.dtype) {
    case TSR_DTYPE_F32: make(float{}, double{}); break;
    case TSR_DTYPE_F64: make(double{}, double{}); break;
    case TSR_DTYPE_I8: make(int8_t{}, int64_t{}); break;
    case TSR_DTYPE_I16: make(int16_t{}, int64_t{}); break;
    case TSR_DTYPE_I32: make(int32_t{}, int64_t{}); break;
    case TSR_DTYPE_I64: make(int64_t{}, int64_t{}); break;
    case TSR_DTYPE_U8: make(uint8_t{}, uint64_t{}); break;
    case TSR_DTYPE_U16: make(uint16_t{}, uint64_t{}); break;
    case TSR_DTYPE_U32: make(uint32_t{}, uint64_t{}); break;
    case TSR_DTYPE_U64: make(uint64_t{}, uint64_t{}); break;
    default: {  // f16 / bf16: through double
      const int32_t dt = x.dtype;
      const int64_t numel = x.numel;
      *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
        std::vector<double> v(static_cast<size_t>(numel)), r(static_cast<size_t>(numel));
        ToDouble(dt, in[0], numel, v.data());
        RunCumSum<double, double>(v.data(), r.data(), outer, n, inner, exclusive, reverse);
        FromDouble(dt, r.data(), numel, o[0]);
        return Err::Ok();
      });
    }
  }
  return Err::Ok();
}

// ---- TopK ----------------------------------------------------------------------------------------

// Indices of the top k of each [outer, n, inner] line by key; ties keep the
// lower index first. Sorted output (sorted=0 leaves the order unspecified,
// so sorting is valid there too).
template <typename K>
void TopKIndices(const K* key, int64_t* idx, int64_t outer, int64_t n, int64_t inner, int64_t k, bool largest) {
  ParallelFor(outer * inner, 1, [&](int64_t b, int64_t e) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t p = b; p < e; ++p) {
      const int64_t o = p / inner, i = p % inner;
      const K* line = key + o * n * inner + i;
      std::iota(order.begin(), order.end(), int64_t{0});
      auto cmp = [&](int64_t a, int64_t c) {
        const K va = line[a * inner], vc = line[c * inner];
        if (largest ? va > vc : va < vc) return true;
        if (va == vc) return a < c;
        // NaN sorts as the largest value (numpy order).
        if constexpr (std::is_floating_point_v<K>) {
          const bool na = va != va, nc = vc != vc;
          if (na != nc) return largest ? na : nc;
          if (na && nc) return a < c;
        }
        return false;
      };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
      int64_t* dst = idx + o * k * inner + i;
      for (int64_t j = 0; j < k; ++j) dst[j * inner] = order[j];
    }
  });
}

Err CreateTopK(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 2, 2, 2);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &vals = *args.outputs[0], &inds = *args.outputs[1];
  if (!IsFloatDT(x.dtype) && !IsIntDT(x.dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported (numeric types)", args.Describe().c_str(),
                   DT(x.dtype));
  std::vector<int64_t> kv;
  bool has = false;
  if (Err f = ReadIntsParam(args, "k", 1, &kv, &has); !f.ok()) return f;
  if (!has || kv.size() != 1) return Bad(args, "K must be given as exactly one value");
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (rank == 0) return Bad(args, "input must have rank >= 1");
  int64_t axis;
  if (Err f = ReadAxis(args, -1, rank, &axis); !f.ok()) return f;
  int64_t outer, n, inner;
  Split3(x.dims, axis, &outer, &n, &inner);
  const int64_t k = kv[0];
  if (k < 0 || k > n)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: K %lld is out of range [0, %lld] for axis %lld",
                   args.Describe().c_str(), static_cast<long long>(k), static_cast<long long>(n),
                   static_cast<long long>(axis));
  if (vals.dtype != x.dtype || inds.dtype != TSR_DTYPE_I64 || vals.numel != outer * k * inner ||
      inds.numel != outer * k * inner)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: outputs must be %s and i64 with %lld elements",
                   args.Describe().c_str(), DT(x.dtype), static_cast<long long>(outer * k * inner));
  const bool largest = args.attrs().Int("largest", 1) != 0;
  const int32_t dt = x.dtype;
  const int64_t es = x.elem_size(), numel = x.numel;
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    int64_t* idx = static_cast<int64_t*>(o[1]);
    if (numel == 0 || k == 0) return Err::Ok();
    auto run = [&](auto tag) {
      using K = decltype(tag);
      std::vector<K> key(static_cast<size_t>(numel));
      std::vector<double> tmp;
      switch (dt) {
        case TSR_DTYPE_I64: std::memcpy(key.data(), in[0], numel * 8); break;
        case TSR_DTYPE_U64: std::memcpy(key.data(), in[0], numel * 8); break;
        case TSR_DTYPE_F64: std::memcpy(key.data(), in[0], numel * 8); break;
        case TSR_DTYPE_F32: {
          const float* p = static_cast<const float*>(in[0]);
          for (int64_t i = 0; i < numel; ++i) key[i] = static_cast<K>(p[i]);
          break;
        }
        default:  // narrower types are exact in double / i64 / u64
          tmp.resize(static_cast<size_t>(numel));
          ToDouble(dt, in[0], numel, tmp.data());
          for (int64_t i = 0; i < numel; ++i) key[i] = static_cast<K>(tmp[i]);
      }
      TopKIndices<K>(key.data(), idx, outer, n, inner, k, largest);
    };
    if (dt == TSR_DTYPE_U64 || dt == TSR_DTYPE_U32 || dt == TSR_DTYPE_U16 || dt == TSR_DTYPE_U8) run(uint64_t{});
    else if (IsSignedDT(dt)) run(int64_t{});
    else run(double{});
    // Values: gather the original elements by index.
    const char* src = static_cast<const char*>(in[0]);
    char* dst = static_cast<char*>(o[0]);
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t j = 0; j < k; ++j)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t p = (a * k + j) * inner + i;
          std::memcpy(dst + p * es, src + ((a * n + idx[p]) * inner + i) * es, static_cast<size_t>(es));
        }
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss -----------------------------------------------

// input [N, C, D...], target [N, D...], weight [C]. loss[n, d] =
// -input[n, target[n, d], d] * weight[target] (0 where target == ignore_index).
// mean divides by the sum of the applied weights.
Err CreateLoss(const NodeArgs& args, std::unique_ptr<Kernel>* out, bool sce) {
  Err e = CheckArity(args, 2, 3, 1, sce ? 2 : 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &t = *args.inputs[1], &y = *args.outputs[0];
  if (Err f = NeedFloat(args, x, sce ? "scores" : "input"); !f.ok()) return f;
  if (t.dtype != TSR_DTYPE_I32 && t.dtype != TSR_DTYPE_I64)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: target has dtype %s, expected i32 or i64", args.Describe().c_str(),
                   DT(t.dtype));
  if (x.dims.size() < 2) return Bad(args, "input must have rank >= 2 ([N, C, ...])");
  const int64_t nb = x.dims[0], c = x.dims[1];
  const int64_t d = c ? x.numel / std::max<int64_t>(nb * c, 1) : 0;
  bool match = t.dims.size() + 1 == x.dims.size() && t.dims[0] == nb;
  for (size_t i = 1; match && i < t.dims.size(); ++i) match = t.dims[i] == x.dims[i + 1];
  if (!match)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: target %s does not match input %s (expected [N, d1, ...])",
                   args.Describe().c_str(), DimsToString(t.dims).c_str(), DimsToString(x.dims).c_str());
  const TensorArg* w = args.has_input(2) ? args.inputs[2] : nullptr;
  if (w) {
    if (Err f = NeedFloat(args, *w, "weight"); !f.ok()) return f;
    if (w->numel != c)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: weight %s must have C = %lld elements", args.Describe().c_str(),
                     DimsToString(w->dims).c_str(), static_cast<long long>(c));
  }
  const std::string red = args.attrs().String("reduction", "mean");
  if (red != "none" && red != "sum" && red != "mean")
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: reduction '%s' is not one of none, sum, mean",
                   args.Describe().c_str(), red.c_str());
  const int64_t expect = red == "none" ? t.numel : 1;
  if (y.numel != expect || y.dtype != x.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: loss output must be %s with %lld elements, got %s %s",
                   args.Describe().c_str(), DT(x.dtype), static_cast<long long>(expect), DT(y.dtype),
                   DimsToString(y.dims).c_str());
  const bool want_logp = sce && args.outputs.size() > 1 && args.outputs[1];
  if (want_logp && (args.outputs[1]->numel != x.numel || args.outputs[1]->dtype != x.dtype))
    return Bad(args, "log_prob output must match the scores");
  const bool has_ii = args.attrs().Has("ignore_index");
  const int64_t ii = args.attrs().Int("ignore_index", 0);
  const int32_t xdt = x.dtype, tdt = t.dtype, wdt = w ? w->dtype : 0;
  const int64_t xn = x.numel, tn = t.numel, mode = red == "none" ? 0 : red == "sum" ? 1 : 2;
  const bool has_w = w != nullptr;
  const std::string desc = args.Describe();
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    std::vector<double> v(static_cast<size_t>(xn)), tg(static_cast<size_t>(tn)), wt;
    ToDouble(xdt, in[0], xn, v.data());
    ToDouble(tdt, in[1], tn, tg.data());
    if (has_w) {
      wt.resize(static_cast<size_t>(c));
      ToDouble(wdt, in[2], c, wt.data());
    }
    if (sce) {  // log-softmax over C
      for (int64_t a = 0; a < nb; ++a)
        for (int64_t i = 0; i < d; ++i) {
          double* base = v.data() + a * c * d + i;
          double m = -std::numeric_limits<double>::infinity();
          for (int64_t j = 0; j < c; ++j) m = std::max(m, base[j * d]);
          double s = 0;
          for (int64_t j = 0; j < c; ++j) s += std::exp(base[j * d] - m);
          const double lse = m + std::log(s);
          for (int64_t j = 0; j < c; ++j) base[j * d] -= lse;
        }
      if (want_logp) FromDouble(xdt, v.data(), xn, o[1]);
    }
    std::vector<double> loss(static_cast<size_t>(tn));
    double wsum = 0, lsum = 0;
    for (int64_t a = 0; a < nb; ++a)
      for (int64_t i = 0; i < d; ++i) {
        const int64_t p = a * d + i;
        const int64_t cls = static_cast<int64_t>(tg[p]);
        if (has_ii && cls == ii) {
          loss[p] = 0;
          continue;
        }
        if (cls < 0 || cls >= c)
          return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: target value %lld is out of range [0, %lld)", desc.c_str(),
                         static_cast<long long>(cls), static_cast<long long>(c));
        const double wv = has_w ? wt[cls] : 1.0;
        loss[p] = -v[(a * c + cls) * d + i] * wv;
        wsum += wv;
        lsum += loss[p];
      }
    if (mode == 0) {
      FromDouble(xdt, loss.data(), tn, o[0]);
    } else {
      double r = mode == 1 ? lsum : lsum / ((has_w || has_ii) ? wsum : static_cast<double>(tn));
      FromDouble(xdt, &r, 1, o[0]);
    }
    return Err::Ok();
  });
  return Err::Ok();
}

Err CreateNll(const NodeArgs& args, std::unique_ptr<Kernel>* out) { return CreateLoss(args, out, false); }
Err CreateSce(const NodeArgs& args, std::unique_ptr<Kernel>* out) { return CreateLoss(args, out, true); }

// ---- normalizations ----------------------------------------------------------------------------------

// RMSNormalization: y = x / sqrt(mean(x^2 over dims [axis, rank)) + eps) * scale,
// scale broadcast to the normalized dims.
Err CreateRmsNorm(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &s = *args.inputs[1], &y = *args.outputs[0];
  if (Err f = NeedFloat(args, x, "X"); !f.ok()) return f;
  if (Err f = NeedFloat(args, s, "scale"); !f.ok()) return f;
  if (Err f = SameShapeOut(args, x, y); !f.ok()) return f;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis;
  if (rank == 0) return Bad(args, "X must have rank >= 1");
  if (Err f = ReadAxis(args, -1, rank, &axis); !f.ok()) return f;
  std::vector<int64_t> nd(x.dims.begin() + axis, x.dims.end());
  int64_t dn = 1;
  for (int64_t v : nd) dn *= v;
  std::vector<double> probe(static_cast<size_t>(std::max<int64_t>(s.numel, 0))), tmp;
  if (!ExpandTo(nd, s.dims, probe, &tmp))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: scale %s does not broadcast to the normalized dims %s",
                   args.Describe().c_str(), DimsToString(s.dims).c_str(), DimsToString(nd).c_str());
  const double eps = args.attrs().Float("epsilon", 1e-5f);
  const int64_t rows = dn ? x.numel / dn : 0;
  const TensorArg xa = x, sa = s;
  if (x.dtype == TSR_DTYPE_F32 && s.dtype == TSR_DTYPE_F32 && s.numel == dn) {
    // Fast path: f32 data and a per-feature scale laid out like the normalized dims.
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      const float* px = static_cast<const float*>(in[0]);
      const float* ps = static_cast<const float*>(in[1]);
      float* py = static_cast<float*>(o[0]);
      ParallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(dn, 1)), [&](int64_t b, int64_t e2) {
        for (int64_t r = b; r < e2; ++r) {
          const float* xr = px + r * dn;
          float* yr = py + r * dn;
          double ss = 0;
          for (int64_t j = 0; j < dn; ++j) ss += static_cast<double>(xr[j]) * xr[j];
          const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dn) + eps));
          for (int64_t j = 0; j < dn; ++j) yr[j] = xr[j] * inv * ps[j];
        }
      });
      return Err::Ok();
    });
    return Err::Ok();
  }
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    std::vector<double> v = LoadD(xa, in[0]), sv = LoadD(sa, in[1]), sc;
    ExpandTo(nd, sa.dims, sv, &sc);
    ParallelFor(rows, 1, [&](int64_t b, int64_t e2) {
      for (int64_t r = b; r < e2; ++r) {
        double* row = v.data() + r * dn;
        double ss = 0;
        for (int64_t j = 0; j < dn; ++j) ss += row[j] * row[j];
        const double inv = 1.0 / std::sqrt(ss / static_cast<double>(dn) + eps);
        for (int64_t j = 0; j < dn; ++j) row[j] = row[j] * inv * sc[j];
      }
    });
    FromDouble(xa.dtype, v.data(), xa.numel, o[0]);
    return Err::Ok();
  });
  return Err::Ok();
}

// LpNormalization: x / ||x||_p along axis (p = 1 or 2).
Err CreateLpNorm(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (Err f = NeedFloat(args, x, "input"); !f.ok()) return f;
  if (Err f = SameShapeOut(args, x, y); !f.ok()) return f;
  const int64_t p = args.attrs().Int("p", 2);
  if (p != 1 && p != 2)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: p %lld must be 1 or 2", args.Describe().c_str(),
                   static_cast<long long>(p));
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis, outer, n, inner;
  if (Err f = ReadAxis(args, -1, rank, &axis); !f.ok()) return f;
  Split3(x.dims, rank ? axis : 0, &outer, &n, &inner);
  const TensorArg xa = x;
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    std::vector<double> v = LoadD(xa, in[0]);
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t i = 0; i < inner; ++i) {
        double* base = v.data() + a * n * inner + i;
        double s = 0;
        for (int64_t j = 0; j < n; ++j) s += p == 1 ? std::fabs(base[j * inner]) : base[j * inner] * base[j * inner];
        const double norm = p == 1 ? s : std::sqrt(s);
        for (int64_t j = 0; j < n; ++j) base[j * inner] /= norm;
      }
    FromDouble(xa.dtype, v.data(), xa.numel, o[0]);
    return Err::Ok();
  });
  return Err::Ok();
}

// Mean and variance over the elements of x selected by `mask` dims, for each
// combination of the other dims; returns per-element group ids.
struct Groups {
  std::vector<int64_t> gid;  // per element of x
  int64_t count = 0;         // number of groups
  int64_t size = 0;          // elements per group
};

Groups GroupByKept(const std::vector<int64_t>& dims, const std::vector<bool>& reduced) {
  Groups g;
  int64_t numel = 1;
  g.count = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    numel *= dims[i];
    if (!reduced[i]) g.count *= dims[i];
  }
  g.size = g.count ? numel / g.count : 0;
  g.gid.resize(static_cast<size_t>(numel));
  std::vector<int64_t> idx(dims.size(), 0);
  for (int64_t e = 0; e < numel; ++e) {
    int64_t id = 0;
    for (size_t k = 0; k < dims.size(); ++k)
      if (!reduced[k]) id = id * dims[k] + idx[k];
    g.gid[static_cast<size_t>(e)] = id;
    for (size_t k = dims.size(); k-- > 0;) {
      if (++idx[k] < dims[k]) break;
      idx[k] = 0;
    }
  }
  return g;
}

// MeanVarianceNormalization: (x - mean) / (sqrt(mean(x^2) - mean^2) + 1e-9) over `axes` (default 0, 2, 3).
Err CreateMvn(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (Err f = NeedFloat(args, x, "X"); !f.ok()) return f;
  if (Err f = SameShapeOut(args, x, y); !f.ok()) return f;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  std::vector<int64_t> axes = args.attrs().Ints("axes", {0, 2, 3});
  std::vector<bool> mask(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    int64_t na;
    if (!NormalizeAxis(a, rank, &na))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                     static_cast<long long>(a), static_cast<long long>(rank));
    mask[static_cast<size_t>(na)] = true;
  }
  Groups g = GroupByKept(x.dims, mask);
  const TensorArg xa = x;
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    std::vector<double> v = LoadD(xa, in[0]);
    std::vector<double> s(static_cast<size_t>(g.count), 0.0), s2(static_cast<size_t>(g.count), 0.0);
    for (size_t i = 0; i < v.size(); ++i) {
      s[g.gid[i]] += v[i];
      s2[g.gid[i]] += v[i] * v[i];
    }
    const double inv = g.size ? 1.0 / static_cast<double>(g.size) : 0.0;
    for (int64_t k = 0; k < g.count; ++k) {
      s[k] *= inv;
      s2[k] = std::sqrt(std::max(0.0, s2[k] * inv - s[k] * s[k])) + 1e-9;
    }
    for (size_t i = 0; i < v.size(); ++i) v[i] = (v[i] - s[g.gid[i]]) / s2[g.gid[i]];
    FromDouble(xa.dtype, v.data(), xa.numel, o[0]);
    return Err::Ok();
  });
  return Err::Ok();
}

// GroupNormalization (num_groups G; scale/bias per channel from opset 21, per
// group before) and InstanceNormalization (G = C, scale/bias per channel).
Err CreateGroupNormImpl(const NodeArgs& args, std::unique_ptr<Kernel>* out, bool instance) {
  Err e = CheckArity(args, 3, 3, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &s = *args.inputs[1], &b = *args.inputs[2], &y = *args.outputs[0];
  if (Err f = NeedFloat(args, x, "X"); !f.ok()) return f;
  if (Err f = NeedFloat(args, s, "scale"); !f.ok()) return f;
  if (Err f = NeedFloat(args, b, "bias"); !f.ok()) return f;
  if (Err f = SameShapeOut(args, x, y); !f.ok()) return f;
  if (x.dims.size() < 2) return Bad(args, "X must have rank >= 2 ([N, C, ...])");
  const int64_t nb = x.dims[0], c = x.dims[1];
  const int64_t sp = (nb * c != 0) ? x.numel / (nb * c) : 0;
  int64_t groups = c;
  if (!instance) {
    groups = args.attrs().Int("num_groups", 0);
    if (groups <= 0 || c % groups != 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: num_groups %lld must be > 0 and divide the channel count %lld",
                     args.Describe().c_str(), static_cast<long long>(groups), static_cast<long long>(c));
  }
  const bool per_group = !instance && args.node->opset < 21;
  const int64_t pn = per_group ? groups : c;
  if (s.numel != pn || b.numel != pn)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: scale and bias must have %lld elements (%s), got %lld and %lld",
                   args.Describe().c_str(), static_cast<long long>(pn), per_group ? "num_groups" : "C",
                   static_cast<long long>(s.numel), static_cast<long long>(b.numel));
  const double eps = args.attrs().Float("epsilon", 1e-5f);
  const TensorArg xa = x, sa = s, ba = b;
  const int64_t cpg = c / groups, gsize = cpg * sp;
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    std::vector<double> v = LoadD(xa, in[0]), sv = LoadD(sa, in[1]), bv = LoadD(ba, in[2]);
    ParallelFor(nb * groups, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t q = lo; q < hi; ++q) {
        double* base = v.data() + q * gsize;
        double m = 0, var = 0;
        for (int64_t j = 0; j < gsize; ++j) m += base[j];
        m /= static_cast<double>(std::max<int64_t>(gsize, 1));
        for (int64_t j = 0; j < gsize; ++j) var += (base[j] - m) * (base[j] - m);
        var /= static_cast<double>(std::max<int64_t>(gsize, 1));
        const double inv = 1.0 / std::sqrt(var + eps);
        const int64_t g = q % groups;
        for (int64_t cc = 0; cc < cpg; ++cc) {
          const int64_t pi = per_group ? g : g * cpg + cc;
          double* ch = base + cc * sp;
          for (int64_t j = 0; j < sp; ++j) ch[j] = (ch[j] - m) * inv * sv[pi] + bv[pi];
        }
      }
    });
    FromDouble(xa.dtype, v.data(), xa.numel, o[0]);
    return Err::Ok();
  });
  return Err::Ok();
}

Err CreateGroupNorm(const NodeArgs& args, std::unique_ptr<Kernel>* out) { return CreateGroupNormImpl(args, out, false); }
Err CreateInstanceNorm(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  return CreateGroupNormImpl(args, out, true);
}

// LRN over channels: y = x / (bias + alpha / size * sum of x^2 over
// channels [c - floor((size-1)/2), c + ceil((size-1)/2)]) ^ beta.
Err CreateLrn(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (Err f = NeedFloat(args, x, "X"); !f.ok()) return f;
  if (Err f = SameShapeOut(args, x, y); !f.ok()) return f;
  if (x.dims.size() < 2) return Bad(args, "X must have rank >= 2 ([N, C, ...])");
  const int64_t size = args.attrs().Int("size", 0);
  if (size <= 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: size %lld must be > 0", args.Describe().c_str(),
                   static_cast<long long>(size));
  const double alpha = args.attrs().Float("alpha", 1e-4f), beta = args.attrs().Float("beta", 0.75f),
               bias = args.attrs().Float("bias", 1.0f);
  const int64_t nb = x.dims[0], c = x.dims[1];
  const int64_t sp = (nb * c != 0) ? x.numel / (nb * c) : 0;
  const int64_t lo_off = (size - 1) / 2, hi_off = size / 2;  // floor and ceil of (size-1)/2
  const TensorArg xa = x;
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    std::vector<double> v = LoadD(xa, in[0]), r(v.size());
    for (int64_t a = 0; a < nb; ++a)
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t c0 = std::max<int64_t>(0, ch - lo_off), c1 = std::min<int64_t>(c - 1, ch + hi_off);
        for (int64_t j = 0; j < sp; ++j) {
          double ss = 0;
          for (int64_t k = c0; k <= c1; ++k) {
            const double t = v[(a * c + k) * sp + j];
            ss += t * t;
          }
          const int64_t p = (a * c + ch) * sp + j;
          r[p] = v[p] / std::pow(bias + alpha / static_cast<double>(size) * ss, beta);
        }
      }
    FromDouble(xa.dtype, r.data(), xa.numel, o[0]);
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- claim checks ----------------------------------------------------------------------------------

std::string ClaimFloat(const tsr_node_view& n, const tsr_graph_view& g) {
  return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32, TSR_DTYPE_F64, TSR_DTYPE_F16, TSR_DTYPE_BF16});
}
std::string ClaimNumeric(const tsr_node_view& n, const tsr_graph_view& g) {
  return ClaimDTypeIn(n, g, 0,
                      {TSR_DTYPE_F32, TSR_DTYPE_F64, TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_I8, TSR_DTYPE_I16,
                       TSR_DTYPE_I32, TSR_DTYPE_I64, TSR_DTYPE_U8, TSR_DTYPE_U16, TSR_DTYPE_U32, TSR_DTYPE_U64});
}
std::string ClaimNumericConst1(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimNumeric(n, g);
  if (!r.empty() || plugin::NodeAttrs(n).Has("k")) return r;
  return ClaimConstInputs(n, g, 1, 1);
}

}  // namespace

void RegisterLossNormKernels(KernelRegistry& r) {
  r.Add({"", "Hardmax", &CreateHardmax, &ClaimFloat});
  r.Add({"", "CumSum", &CreateCumSum, &ClaimNumericConst1});
  r.Add({"", "TopK", &CreateTopK, &ClaimNumericConst1});
  r.Add({"", "NegativeLogLikelihoodLoss", &CreateNll, &ClaimFloat});
  r.Add({"", "SoftmaxCrossEntropyLoss", &CreateSce, &ClaimFloat});
  r.Add({"", "RMSNormalization", &CreateRmsNorm, &ClaimFloat});
  r.Add({"", "LpNormalization", &CreateLpNorm, &ClaimFloat});
  r.Add({"", "MeanVarianceNormalization", &CreateMvn, &ClaimFloat});
  r.Add({"", "GroupNormalization", &CreateGroupNorm, &ClaimFloat});
  r.Add({"", "InstanceNormalization", &CreateInstanceNorm, &ClaimFloat});
  r.Add({"", "LRN", &CreateLrn, &ClaimFloat});
}

}  // namespace tessera::cpu
