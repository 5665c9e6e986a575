// CPU kernels: scatter/gather/one-hot/space-depth/data-dependent indexing ops
// (Scatter, ScatterElements, ScatterND, TensorScatter, GatherND, OneHot,
// DepthToSpace, SpaceToDepth, Compress, NonZero, Unique, EyeLike,
// ReverseSequence, Einsum, Det, NonMaxSuppression).
//
// Data movement works on element sizes, so every fixed-size dtype is
// handled; ops that compute (scatter reductions, Einsum, Det, Unique's
// ordering, NMS) dispatch over a small set of dtypes. Index inputs are read at
// run time and checked; an out-of-range index is an error naming the node.
// Ops with data-dependent output sizes (Compress, NonZero, Unique, NMS) get
// their output dims from the compiler and fail at run time, naming the node,
// when the data implies a different size.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

const char* DT(int32_t dt) { return plugin::DTypeName(dt); }

template <typename F>
bool BySize(int64_t es, F&& f) {
  switch (es) {
    case 1: f(uint8_t{}); return true;
    case 2: f(uint16_t{}); return true;
    case 4: f(uint32_t{}); return true;
    case 8: f(uint64_t{}); return true;
    default: return false;
  }
}

// Calls f(T{}) for dtypes we compute on; false for others.
template <typename F>
bool ByArith(int32_t dt, F&& f) {
  switch (dt) {
    case TSR_DTYPE_F32: f(float{}); return true;
    case TSR_DTYPE_F64: f(double{}); return true;
    case TSR_DTYPE_I32: f(int32_t{}); return true;
    case TSR_DTYPE_I64: f(int64_t{}); return true;
    case TSR_DTYPE_I8: f(int8_t{}); return true;
    case TSR_DTYPE_U8: f(uint8_t{}); return true;
    default: return false;
  }
}

Err Unsupported(const NodeArgs& args, int32_t dt) {
  return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported", args.Describe().c_str(), DT(dt));
}

Err Invalid(const NodeArgs& args, const std::string& what) {
  return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), what.c_str());
}

int64_t Prod(const std::vector<int64_t>& d, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e && i < d.size(); ++i) p *= d[i];
  return p;
}

std::vector<int64_t> Strides(const std::vector<int64_t>& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (int64_t i = static_cast<int64_t>(d.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * d[i + 1];
  return s;
}

inline int64_t IndexAt(const void* p, bool is64, int64_t i) {
  return is64 ? static_cast<const int64_t*>(p)[i] : static_cast<const int32_t*>(p)[i];
}

bool IsIndexType(int32_t dt) { return dt == TSR_DTYPE_I32 || dt == TSR_DTYPE_I64; }

Err OutOfRange(const std::string& desc, int64_t v, int64_t bound) {
  return MakeErr(TSR_ERR_OUT_OF_RANGE, "%s: index %lld is out of range [-%lld, %lld)", desc.c_str(),
                 static_cast<long long>(v), static_cast<long long>(bound), static_cast<long long>(bound));
}

Err CheckOutputLike(const NodeArgs& args, const TensorArg& x, const TensorArg& y) {
  if (x.dtype != y.dtype || x.dims != y.dims)
    return Invalid(args, std::string("output ") + DT(y.dtype) + DimsToString(y.dims) + " does not match input " +
                             DT(x.dtype) + DimsToString(x.dims));
  return Err::Ok();
}

// ---- scatter reductions ----------------------------------------------------------------------------

enum class Red { kNone, kAdd, kMul, kMax, kMin };

bool ParseRed(const std::string& s, Red* r) {
  if (s == "none") *r = Red::kNone;
  else if (s == "add") *r = Red::kAdd;
  else if (s == "mul") *r = Red::kMul;
  else if (s == "max") *r = Red::kMax;
  else if (s == "min") *r = Red::kMin;
  else return false;
  return true;
}

template <typename T>
inline void Apply(Red r, T& d, T u) {
  switch (r) {
    case Red::kNone: d = u; break;
    case Red::kAdd: d = static_cast<T>(d + u); break;
    case Red::kMul: d = static_cast<T>(d * u); break;
    case Red::kMax: d = std::max(d, u); break;
    case Red::kMin: d = std::min(d, u); break;
  }
}

// Scatter / ScatterElements(data, indices, updates): out = data, then
// out[... idx ...] (op)= updates[...] along axis, in index order.
Err CreateScatterElements(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 3, 3, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &ind = *args.inputs[1], &upd = *args.inputs[2], &y = *args.outputs[0];
  if (Err r = CheckOutputLike(args, x, y); !r.ok()) return r;
  if (!IsIndexType(ind.dtype)) return Invalid(args, std::string("indices must be i32 or i64, got ") + DT(ind.dtype));
  if (upd.dtype != x.dtype || upd.dims != ind.dims)
    return Invalid(args, "updates " + std::string(DT(upd.dtype)) + DimsToString(upd.dims) +
                             " must have the data's dtype and the indices' shape " + DimsToString(ind.dims));
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (rank == 0 || static_cast<int64_t>(ind.dims.size()) != rank)
    return Invalid(args, "data " + DimsToString(x.dims) + " and indices " + DimsToString(ind.dims) +
                             " must have the same rank >= 1");
  int64_t axis;
  if (!NormalizeAxis(args.attrs().Int("axis", 0), rank, &axis))
    return Invalid(args, "axis " + std::to_string(args.attrs().Int("axis", 0)) + " is out of range");
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis && ind.dims[d] > x.dims[d])
      return Invalid(args, "indices " + DimsToString(ind.dims) + " exceed data " + DimsToString(x.dims));
  Red red = Red::kNone;
  std::string rs = args.attrs().String("reduction", "none");
  if (!ParseRed(rs, &red)) return Invalid(args, "unknown reduction '" + rs + "'");
  const std::vector<int64_t> xs = Strides(x.dims), idims = ind.dims;
  const int64_t n = x.dims[axis], ni = ind.numel, nb = x.nbytes();
  const bool is64 = ind.dtype == TSR_DTYPE_I64;
  const std::string desc = args.Describe();
  auto make = [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      if (o[0] != in[0]) std::memcpy(o[0], in[0], static_cast<size_t>(nb));
      T* dst = static_cast<T*>(o[0]);
      const T* u = static_cast<const T*>(in[2]);
      const int r = static_cast<int>(idims.size());
      std::vector<int64_t> id(static_cast<size_t>(r), 0);
      for (int64_t p = 0; p < ni; ++p) {
        int64_t v = IndexAt(in[1], is64, p);
        if (v < -n || v >= n) return OutOfRange(desc, v, n);
        if (v < 0) v += n;
        int64_t off = 0;
        for (int d = 0; d < r; ++d) off += (d == axis ? v : id[d]) * xs[d];
        Apply(red, dst[off], u[p]);
        for (int d = r - 1; d >= 0; --d) {
          if (++id[d] < idims[d]) break;
          id[d] = 0;
        }
      }
      return Err::Ok();
    });
  };
  if (red == Red::kNone) {
    if (!BySize(x.elem_size(), make)) return Unsupported(args, x.dtype);
  } else if (!ByArith(x.dtype, make)) {
    return Unsupported(args, x.dtype);
  }
  return Err::Ok();
}

// ScatterND(data, indices [..., k], updates [..., data.dims[k:]]).
Err CreateScatterND(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 3, 3, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &ind = *args.inputs[1], &upd = *args.inputs[2], &y = *args.outputs[0];
  if (Err r = CheckOutputLike(args, x, y); !r.ok()) return r;
  if (!IsIndexType(ind.dtype)) return Invalid(args, std::string("indices must be i32 or i64, got ") + DT(ind.dtype));
  if (ind.dims.empty()) return Invalid(args, "indices must have rank >= 1");
  const int64_t k = ind.dims.back(), rank = static_cast<int64_t>(x.dims.size());
  if (k > rank) return Invalid(args, "indices' last dim " + std::to_string(k) + " exceeds the data rank");
  std::vector<int64_t> want(ind.dims.begin(), ind.dims.end() - 1);
  want.insert(want.end(), x.dims.begin() + k, x.dims.end());
  if (upd.dtype != x.dtype || upd.dims != want)
    return Invalid(args, "updates " + std::string(DT(upd.dtype)) + DimsToString(upd.dims) + " must be " +
                             DT(x.dtype) + DimsToString(want));
  Red red = Red::kNone;
  std::string rs = args.attrs().String("reduction", "none");
  if (!ParseRed(rs, &red)) return Invalid(args, "unknown reduction '" + rs + "'");
  const std::vector<int64_t> xs = Strides(x.dims), xd = x.dims;
  const int64_t slice = Prod(x.dims, static_cast<size_t>(k), x.dims.size());
  const int64_t nt = k == 0 ? Prod(ind.dims, 0, ind.dims.size() - 1) : ind.numel / k, nb = x.nbytes();
  const bool is64 = ind.dtype == TSR_DTYPE_I64;
  const std::string desc = args.Describe();
  auto make = [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      if (o[0] != in[0]) std::memcpy(o[0], in[0], static_cast<size_t>(nb));
      T* dst = static_cast<T*>(o[0]);
      const T* u = static_cast<const T*>(in[2]);
      for (int64_t t = 0; t < nt; ++t) {
        int64_t off = 0;
        for (int64_t j = 0; j < k; ++j) {
          int64_t v = IndexAt(in[1], is64, t * k + j);
          if (v < -xd[j] || v >= xd[j]) return OutOfRange(desc, v, xd[j]);
          if (v < 0) v += xd[j];
          off += v * xs[j];
        }
        for (int64_t i = 0; i < slice; ++i) Apply(red, dst[off + i], u[t * slice + i]);
      }
      return Err::Ok();
    });
  };
  if (red == Red::kNone) {
    if (!BySize(x.elem_size(), make)) return Unsupported(args, x.dtype);
  } else if (!ByArith(x.dtype, make)) {
    return Unsupported(args, x.dtype);
  }
  return Err::Ok();
}

// TensorScatter(past_cache, update, write_indices?): writes update into the
// cache along `axis` (default -2) at write_indices[batch] (+ mod in circular mode).
Err CreateTensorScatter(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 3, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &upd = *args.inputs[1], &y = *args.outputs[0];
  if (Err r = CheckOutputLike(args, x, y); !r.ok()) return r;
  const int64_t rank = static_cast<int64_t>(x.dims.size()), es = x.elem_size();
  if (es == 0) return Unsupported(args, x.dtype);
  int64_t axis;
  if (rank < 2 || !NormalizeAxis(args.attrs().Int("axis", -2), rank, &axis) || axis == 0)
    return Invalid(args, "axis " + std::to_string(args.attrs().Int("axis", -2)) + " is invalid for rank " +
                             std::to_string(rank) + " (must not be the batch axis 0)");
  bool ok = upd.dtype == x.dtype && upd.dims.size() == x.dims.size();
  for (int64_t d = 0; ok && d < rank; ++d) ok = d == axis ? upd.dims[d] <= x.dims[d] : upd.dims[d] == x.dims[d];
  if (!ok)
    return Invalid(args, "update " + DimsToString(upd.dims) + " does not fit past_cache " + DimsToString(x.dims) +
                             " on axis " + std::to_string(axis));
  std::string mode = args.attrs().String("mode", "linear");
  if (mode != "linear" && mode != "circular") return Invalid(args, "unknown mode '" + mode + "'");
  const bool circular = mode == "circular", has_idx = args.has_input(2);
  if (has_idx && (!IsIndexType(args.inputs[2]->dtype) || args.inputs[2]->numel != x.dims[0]))
    return Invalid(args, "write_indices must be i32/i64 with one entry per batch");
  const bool is64 = has_idx && args.inputs[2]->dtype == TSR_DTYPE_I64;
  const int64_t batch = x.dims[0], mid = Prod(x.dims, 1, static_cast<size_t>(axis)), seq = x.dims[axis],
                len = upd.dims[axis], inner = Prod(x.dims, static_cast<size_t>(axis) + 1, x.dims.size()) * es,
                nb = x.nbytes();
  const std::string desc = args.Describe();
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    if (o[0] != in[0]) std::memcpy(o[0], in[0], static_cast<size_t>(nb));
    uint8_t* dst = static_cast<uint8_t*>(o[0]);
    const uint8_t* u = static_cast<const uint8_t*>(in[1]);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t w = has_idx ? IndexAt(in[2], is64, b) : 0;
      for (int64_t m = 0; m < mid; ++m)
        for (int64_t s = 0; s < len; ++s) {
          int64_t t = w + s;
          if (circular) t = ((t % seq) + seq) % seq;
          if (t < 0 || t >= seq) return OutOfRange(desc, t, seq);
          std::memcpy(dst + ((b * mid + m) * seq + t) * inner, u + ((b * mid + m) * len + s) * inner,
                      static_cast<size_t>(inner));
        }
    }
    return Err::Ok();
  });
  return Err::Ok();
}

// GatherND(data, indices [..., k]) with batch_dims b.
Err CreateGatherND(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &ind = *args.inputs[1], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return Unsupported(args, x.dtype);
  if (!IsIndexType(ind.dtype)) return Invalid(args, std::string("indices must be i32 or i64, got ") + DT(ind.dtype));
  if (ind.dims.empty()) return Invalid(args, "indices must have rank >= 1");
  const int64_t b = args.attrs().Int("batch_dims", 0), k = ind.dims.back(), rank = static_cast<int64_t>(x.dims.size());
  const int64_t iq = static_cast<int64_t>(ind.dims.size());
  if (b < 0 || b >= std::min(rank, iq)) return Invalid(args, "batch_dims " + std::to_string(b) + " is out of range");
  if (b + k > rank) return Invalid(args, "indices' last dim plus batch_dims exceeds the data rank");
  for (int64_t d = 0; d < b; ++d)
    if (x.dims[d] != ind.dims[d]) return Invalid(args, "batch dims of data and indices differ");
  std::vector<int64_t> want(ind.dims.begin(), ind.dims.end() - 1);
  want.insert(want.end(), x.dims.begin() + b + k, x.dims.end());
  if (y.dtype != x.dtype || y.dims != want)
    return Invalid(args, "output " + DimsToString(y.dims) + " should be " + DimsToString(want));
  const std::vector<int64_t> xs = Strides(x.dims), xd = x.dims;
  const int64_t batch = Prod(x.dims, 0, static_cast<size_t>(b));
  const int64_t per_batch = Prod(ind.dims, static_cast<size_t>(b), ind.dims.size() - 1);
  const int64_t slice = Prod(x.dims, static_cast<size_t>(b + k), x.dims.size()) * es;
  const int64_t bstride = Prod(x.dims, static_cast<size_t>(b), x.dims.size());
  const bool is64 = ind.dtype == TSR_DTYPE_I64;
  const std::string desc = args.Describe();
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    const uint8_t* src = static_cast<const uint8_t*>(in[0]);
    uint8_t* dst = static_cast<uint8_t*>(o[0]);
    for (int64_t bi = 0; bi < batch; ++bi)
      for (int64_t t = 0; t < per_batch; ++t) {
        const int64_t row = bi * per_batch + t;
        int64_t off = bi * bstride;
        for (int64_t j = 0; j < k; ++j) {
          int64_t v = IndexAt(in[1], is64, row * k + j);
          const int64_t dim = xd[b + j];
          if (v < -dim || v >= dim) return OutOfRange(desc, v, dim);
          if (v < 0) v += dim;
          off += v * xs[b + j];
        }
        std::memcpy(dst + row * slice, src + off * es, static_cast<size_t>(slice));
      }
    return Err::Ok();
  });
  return Err::Ok();
}

// Reads element i of a numeric tensor as double (for OneHot indices and depth).
double ReadAsDouble(const void* p, int32_t dt, int64_t i) {
  switch (dt) {
    case TSR_DTYPE_F32: return static_cast<const float*>(p)[i];
    case TSR_DTYPE_F64: return static_cast<const double*>(p)[i];
    case TSR_DTYPE_I8: return static_cast<const int8_t*>(p)[i];
    case TSR_DTYPE_U8: return static_cast<const uint8_t*>(p)[i];
    case TSR_DTYPE_I16: return static_cast<const int16_t*>(p)[i];
    case TSR_DTYPE_U16: return static_cast<const uint16_t*>(p)[i];
    case TSR_DTYPE_I32: return static_cast<const int32_t*>(p)[i];
    case TSR_DTYPE_U32: return static_cast<const uint32_t*>(p)[i];
    case TSR_DTYPE_I64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case TSR_DTYPE_U64: return static_cast<double>(static_cast<const uint64_t*>(p)[i]);
    default: return 0;
  }
}

bool IsPlainNumeric(int32_t dt) {
  return dt != TSR_DTYPE_F16 && dt != TSR_DTYPE_BF16 && dt != TSR_DTYPE_BOOL && plugin::DTypeSize(dt) != 0;
}

// OneHot(indices, depth, values[off, on]): depth is the output's dim at axis.
Err CreateOneHot(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 3, 3, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &ind = *args.inputs[0], &vals = *args.inputs[2], &y = *args.outputs[0];
  if (!IsPlainNumeric(ind.dtype)) return Unsupported(args, ind.dtype);
  if (!IsPlainNumeric(args.inputs[1]->dtype)) return Unsupported(args, args.inputs[1]->dtype);
  if (vals.numel != 2 || vals.dtype != y.dtype || y.elem_size() == 0)
    return Invalid(args, "values must be 2 elements of the output dtype");
  const int64_t r = static_cast<int64_t>(ind.dims.size());
  int64_t axis = args.attrs().Int("axis", -1);
  if (axis < -r - 1 || axis > r) return Invalid(args, "axis " + std::to_string(axis) + " is out of range");
  if (axis < 0) axis += r + 1;
  if (static_cast<int64_t>(y.dims.size()) != r + 1) return Invalid(args, "output rank must be indices rank + 1");
  const int64_t depth = y.dims[axis];
  std::vector<int64_t> want = ind.dims;
  want.insert(want.begin() + axis, depth);
  if (y.dims != want) return Invalid(args, "output " + DimsToString(y.dims) + " does not fit indices " +
                                               DimsToString(ind.dims));
  if (const void* dc = args.inputs[1]->const_data) {
    const double d = ReadAsDouble(dc, args.inputs[1]->dtype, 0);
    if (static_cast<int64_t>(d) != depth)
      return Invalid(args, "depth " + std::to_string(d) + " does not match the output dim " + std::to_string(depth));
  }
  const int64_t outer = Prod(ind.dims, 0, static_cast<size_t>(axis)), inner = Prod(ind.dims, axis, ind.dims.size());
  const int32_t idt = ind.dtype;
  BySize(y.elem_size(), [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      const T off = static_cast<const T*>(in[2])[0], on = static_cast<const T*>(in[2])[1];
      T* dst = static_cast<T*>(o[0]);
      std::fill(dst, dst + outer * depth * inner, off);
      for (int64_t a = 0; a < outer; ++a)
        for (int64_t i = 0; i < inner; ++i) {
          int64_t v = static_cast<int64_t>(ReadAsDouble(in[0], idt, a * inner + i));
          if (v < 0) v += depth;
          if (v >= 0 && v < depth) dst[(a * depth + v) * inner + i] = on;
        }
      return Err::Ok();
    });
  });
  return Err::Ok();
}

// DepthToSpace / SpaceToDepth on [N, C, H, W]: an index permutation, written
// as out[n, c, h, w] = in[src(n, c, h, w)].
Err CreateSpaceDepth(const NodeArgs& args, std::unique_ptr<Kernel>* out, bool to_space) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return Unsupported(args, x.dtype);
  const int64_t b = args.attrs().Int("blocksize", 0);
  if (b < 1) return Invalid(args, "blocksize must be >= 1");
  if (x.dims.size() != 4) return Invalid(args, "input must be 4-D, got " + DimsToString(x.dims));
  const std::string mode = args.attrs().String("mode", "DCR");
  if (to_space && mode != "DCR" && mode != "CRD") return Invalid(args, "unknown mode '" + mode + "'");
  const bool crd = to_space && mode == "CRD";
  const int64_t N = x.dims[0], C = x.dims[1], H = x.dims[2], W = x.dims[3];
  std::vector<int64_t> want;
  if (to_space) {
    if (C % (b * b) != 0) return Invalid(args, "channels not divisible by blocksize^2");
    want = {N, C / (b * b), H * b, W * b};
  } else {
    if (H % b != 0 || W % b != 0) return Invalid(args, "H and W must be divisible by blocksize");
    want = {N, C * b * b, H / b, W / b};
  }
  if (y.dtype != x.dtype || y.dims != want)
    return Invalid(args, "output " + DimsToString(y.dims) + " should be " + DimsToString(want));
  BySize(es, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      const T* src = static_cast<const T*>(in[0]);
      T* dst = static_cast<T*>(o[0]);
      if (to_space) {
        const int64_t oc = C / (b * b), oh = H * b, ow = W * b;
        ParallelFor(N * oc * oh, std::max<int64_t>(1, 32768 / std::max<int64_t>(ow, 1)), [&](int64_t rb, int64_t re) {
          for (int64_t row = rb; row < re; ++row) {
            const int64_t h = row % oh, c = row / oh % oc, n = row / (oh * oc), bh = h % b;
            T* d = dst + row * ow;
            for (int64_t w = 0; w < ow; ++w) {
              const int64_t bw = w % b;
              const int64_t ic = crd ? c * b * b + bh * b + bw : (bh * b + bw) * oc + c;
              d[w] = src[((n * C + ic) * H + h / b) * W + w / b];
            }
          }
        });
      } else {
        const int64_t oh = H / b, ow = W / b;
        ParallelFor(N * C * H, std::max<int64_t>(1, 32768 / std::max<int64_t>(W, 1)), [&](int64_t rb, int64_t re) {
          for (int64_t row = rb; row < re; ++row) {
            const int64_t h = row % H, c = row / H % C, n = row / (H * C);
            const T* s = src + row * W;
            for (int64_t w = 0; w < W; ++w) {
              const int64_t oc = (h % b * b + w % b) * C + c;
              dst[((n * C * b * b + oc) * oh + h / b) * ow + w / b] = s[w];
            }
          }
        });
      }
      return Err::Ok();
    });
  });
  return Err::Ok();
}
Err CreateDepthToSpace(const NodeArgs& a, std::unique_ptr<Kernel>* o) { return CreateSpaceDepth(a, o, true); }
Err CreateSpaceToDepth(const NodeArgs& a, std::unique_ptr<Kernel>* o) { return CreateSpaceDepth(a, o, false); }

// Compress(input, condition): slices along axis (or flattened elements) where
// condition is true.
Err CreateCompress(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &c = *args.inputs[1], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return Unsupported(args, x.dtype);
  if (c.dtype != TSR_DTYPE_BOOL) return Invalid(args, std::string("condition must be bool, got ") + DT(c.dtype));
  const bool has_axis = args.attrs().Has("axis");
  int64_t axis = 0;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (has_axis && !NormalizeAxis(args.attrs().Int("axis", 0), rank, &axis))
    return Invalid(args, "axis is out of range");
  const int64_t outer = has_axis ? Prod(x.dims, 0, static_cast<size_t>(axis)) : 1;
  const int64_t n = has_axis ? x.dims[axis] : x.numel;
  const int64_t inner = has_axis ? Prod(x.dims, static_cast<size_t>(axis) + 1, x.dims.size()) * es : es;
  if (c.numel > n) return Invalid(args, "condition is longer than the selected dim");
  int64_t sel = 0;
  if (has_axis) {
    std::vector<int64_t> want = x.dims;
    sel = y.dims.size() == x.dims.size() ? y.dims[axis] : -1;
    want[axis] = sel;
    if (y.dims != want) return Invalid(args, "output " + DimsToString(y.dims) + " does not fit input");
  } else {
    if (y.dims.size() != 1) return Invalid(args, "output must be 1-D without axis");
    sel = y.dims[0];
  }
  if (y.dtype != x.dtype) return Invalid(args, "output dtype differs from input");
  const int64_t clen = c.numel;
  const std::string desc = args.Describe();
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    const uint8_t* cond = static_cast<const uint8_t*>(in[1]);
    int64_t cnt = 0;
    for (int64_t i = 0; i < clen; ++i) cnt += cond[i] != 0;
    if (cnt != sel)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: condition selects %lld slices, output has %lld", desc.c_str(),
                     static_cast<long long>(cnt), static_cast<long long>(sel));
    const uint8_t* src = static_cast<const uint8_t*>(in[0]);
    uint8_t* dst = static_cast<uint8_t*>(o[0]);
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t i = 0; i < clen; ++i)
        if (cond[i]) {
          std::memcpy(dst, src + (a * n + i) * inner, static_cast<size_t>(inner));
          dst += inner;
        }
    return Err::Ok();
  });
  return Err::Ok();
}

// Bits of an element are "nonzero" when any byte is nonzero, except -0.0 for floats.
bool ElemNonZero(const uint8_t* p, int64_t es, int32_t dt) {
  if (dt == TSR_DTYPE_F32) { float v; std::memcpy(&v, p, 4); return v != 0.f; }
  if (dt == TSR_DTYPE_F64) { double v; std::memcpy(&v, p, 8); return v != 0.0; }
  if (dt == TSR_DTYPE_F16 || dt == TSR_DTYPE_BF16) {
    uint16_t v; std::memcpy(&v, p, 2); return (v & 0x7fff) != 0;
  }
  for (int64_t i = 0; i < es; ++i)
    if (p[i]) return true;
  return false;
}

Err CreateNonZero(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return Unsupported(args, x.dtype);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (y.dtype != TSR_DTYPE_I64 || y.dims.size() != 2 || y.dims[0] != rank)
    return Invalid(args, "output must be i64 [rank, nnz], got " + DimsToString(y.dims));
  const int64_t nnz = y.dims[1], n = x.numel;
  const int32_t dt = x.dtype;
  const std::vector<int64_t> xd = x.dims;
  const std::string desc = args.Describe();
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    const uint8_t* src = static_cast<const uint8_t*>(in[0]);
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; ++i) cnt += ElemNonZero(src + i * es, es, dt);
    if (cnt != nnz)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input has %lld nonzeros, output has %lld", desc.c_str(),
                     static_cast<long long>(cnt), static_cast<long long>(nnz));
    int64_t* dst = static_cast<int64_t*>(o[0]);
    int64_t j = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!ElemNonZero(src + i * es, es, dt)) continue;
      int64_t rem = i;
      for (int64_t d = rank - 1; d >= 0; --d) {
        dst[d * nnz + j] = rem % xd[d];
        rem /= xd[d];
      }
      ++j;
    }
    return Err::Ok();
  });
  return Err::Ok();
}

// A strict weak order with NaN after every number and equal to other NaNs
// (as numpy.unique orders them), so sorting never sees an invalid comparator.
template <typename T>
inline bool Lt(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
  }
  return a < b;
}

// Unique(X): unique values (or slices along axis), first-occurrence indices,
// inverse indices and counts; sorted ascending (lexicographic for slices)
// or in order of first occurrence.
Err CreateUnique(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 4);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  const bool has_axis = args.attrs().Has("axis"), sorted = args.attrs().Int("sorted", 1) != 0;
  int64_t axis = 0;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (has_axis && !NormalizeAxis(args.attrs().Int("axis", 0), rank, &axis)) return Invalid(args, "axis is out of range");
  const int64_t outer = has_axis ? Prod(x.dims, 0, static_cast<size_t>(axis)) : 1;
  const int64_t n = has_axis ? x.dims[axis] : x.numel;
  const int64_t inner = has_axis ? Prod(x.dims, static_cast<size_t>(axis) + 1, x.dims.size()) : 1;
  if (y.dtype != x.dtype) return Invalid(args, "output dtype differs from input");
  const int64_t u = has_axis ? (y.dims.size() == x.dims.size() ? y.dims[axis] : -1) : (y.dims.size() == 1 ? y.dims[0] : -1);
  if (u < 0) return Invalid(args, "output Y " + DimsToString(y.dims) + " does not fit the input");
  for (size_t i = 1; i < args.outputs.size(); ++i) {
    const TensorArg* t = args.outputs[i];
    if (t && (t->dtype != TSR_DTYPE_I64 || t->numel != (i == 2 ? n : u)))
      return Invalid(args, "output " + std::to_string(i) + " must be i64 with " + std::to_string(i == 2 ? n : u) +
                               " elements");
  }
  const std::string desc = args.Describe();
  const size_t nout = args.outputs.size();
  auto make = [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      const T* src = static_cast<const T*>(in[0]);
      auto at = [&](int64_t j, int64_t a, int64_t i) { return src[(a * n + j) * inner + i]; };
      auto less = [&](int64_t p, int64_t q) {
        for (int64_t a = 0; a < outer; ++a)
          for (int64_t i = 0; i < inner; ++i) {
            const T vp = at(p, a, i), vq = at(q, a, i);
            if (Lt(vp, vq)) return true;
            if (Lt(vq, vp)) return false;
          }
        return false;
      };
      // Group equal slices: a stable sort keeps each group's first occurrence in front.
      std::vector<int64_t> by_value(static_cast<size_t>(n));
      std::iota(by_value.begin(), by_value.end(), 0);
      std::stable_sort(by_value.begin(), by_value.end(), less);
      std::vector<int64_t> firsts, group(static_cast<size_t>(n)), counts;
      for (int64_t k = 0; k < n; ++k) {
        const int64_t j = by_value[k];
        if (k == 0 || less(by_value[k - 1], j)) {
          firsts.push_back(j);
          counts.push_back(0);
        }
        group[j] = static_cast<int64_t>(firsts.size()) - 1;
        ++counts.back();
      }
      if (static_cast<int64_t>(firsts.size()) != u)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input has %zu unique entries, output has %lld", desc.c_str(),
                       firsts.size(), static_cast<long long>(u));
      // Groups are in ascending value order; unsorted output orders them by first occurrence.
      std::vector<int64_t> order(firsts.size());
      std::iota(order.begin(), order.end(), 0);
      if (!sorted)
        std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return firsts[a] < firsts[b]; });
      std::vector<int64_t> rank_of(order.size());
      for (size_t r = 0; r < order.size(); ++r) rank_of[order[r]] = static_cast<int64_t>(r);
      T* dy = static_cast<T*>(o[0]);
      for (int64_t a = 0; a < outer; ++a)
        for (int64_t r = 0; r < u; ++r)
          for (int64_t i = 0; i < inner; ++i) dy[(a * u + r) * inner + i] = at(firsts[order[r]], a, i);
      if (nout > 1 && o[1])
        for (int64_t r = 0; r < u; ++r) static_cast<int64_t*>(o[1])[r] = firsts[order[r]];
      if (nout > 2 && o[2])
        for (int64_t j = 0; j < n; ++j) static_cast<int64_t*>(o[2])[j] = rank_of[group[j]];
      if (nout > 3 && o[3])
        for (int64_t r = 0; r < u; ++r) static_cast<int64_t*>(o[3])[r] = counts[order[r]];
      return Err::Ok();
    });
  };
  if (!ByArith(x.dtype, make)) return Unsupported(args, x.dtype);
  return Err::Ok();
}

// EyeLike(x): zeros with ones on diagonal k, in attribute dtype (else x's).
Err CreateEyeLike(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (x.dims.size() != 2 || y.dims != x.dims) return Invalid(args, "input and output must be 2-D of one shape");
  uint64_t one = 0;
  switch (y.dtype) {
    case TSR_DTYPE_F32: { float v = 1.f; std::memcpy(&one, &v, 4); break; }
    case TSR_DTYPE_F64: { double v = 1.0; std::memcpy(&one, &v, 8); break; }
    case TSR_DTYPE_F16: one = 0x3C00; break;
    case TSR_DTYPE_BF16: one = 0x3F80; break;
    default:
      if (plugin::DTypeSize(y.dtype) == 0) return Unsupported(args, y.dtype);
      one = 1;  // integers and bool (little-endian)
  }
  const int64_t rows = y.dims[0], cols = y.dims[1], k = args.attrs().Int("k", 0);
  BySize(y.elem_size(), [&](auto tag) {
    using T = decltype(tag);
    T v;
    std::memcpy(&v, &one, sizeof(T));
    *out = MakeFnKernel([=](const void* const*, void* const* o) -> Err {
      T* dst = static_cast<T*>(o[0]);
      std::fill(dst, dst + rows * cols, T(0));
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t j = i + k;
        if (j >= 0 && j < cols) dst[i * cols + j] = v;
      }
      return Err::Ok();
    });
  });
  return Err::Ok();
}

// ReverseSequence(x, sequence_lens): reverses the first lens[b] steps along
// time_axis of each batch entry b.
Err CreateReverseSequence(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &lens = *args.inputs[1], &y = *args.outputs[0];
  if (Err r = CheckOutputLike(args, x, y); !r.ok()) return r;
  const int64_t es = x.elem_size();
  if (es == 0) return Unsupported(args, x.dtype);
  const int64_t ba = args.attrs().Int("batch_axis", 1), ta = args.attrs().Int("time_axis", 0);
  if (x.dims.size() < 2 || !((ba == 0 && ta == 1) || (ba == 1 && ta == 0)))
    return Invalid(args, "needs rank >= 2 and batch_axis/time_axis 0 and 1 in some order");
  if (!IsIndexType(lens.dtype) || lens.numel != x.dims[ba])
    return Invalid(args, "sequence_lens must be i32/i64 with one entry per batch");
  const int64_t B = x.dims[ba], Tn = x.dims[ta], inner = Prod(x.dims, 2, x.dims.size()) * es, nb = x.nbytes();
  const bool is64 = lens.dtype == TSR_DTYPE_I64, batch_first = ba == 0;
  const std::string desc = args.Describe();
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    const uint8_t* src = static_cast<const uint8_t*>(in[0]);
    uint8_t* dst = static_cast<uint8_t*>(o[0]);
    std::memcpy(dst, src, static_cast<size_t>(nb));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t L = IndexAt(in[1], is64, b);
      if (L < 0 || L > Tn)
        return MakeErr(TSR_ERR_OUT_OF_RANGE, "%s: sequence_lens[%lld] = %lld is outside [0, %lld]", desc.c_str(),
                       static_cast<long long>(b), static_cast<long long>(L), static_cast<long long>(Tn));
      for (int64_t t = 0; t < L; ++t) {
        const int64_t from = batch_first ? b * Tn + t : t * B + b;
        const int64_t to = batch_first ? b * Tn + (L - 1 - t) : (L - 1 - t) * B + b;
        std::memcpy(dst + to * inner, src + from * inner, static_cast<size_t>(inner));
      }
    }
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- Einsum ----

// Each distinct label gets an id; an ellipsis becomes as many ids as the
// broadcast ellipsis rank. The kernel loops over all label values: output
// labels outer, summed labels inner, multiplying operand elements addressed
// by per-operand strides (a repeated label sums its strides: diagonals; a
// broadcast size-1 dim has stride 0).
struct EinsumPlan {
  int nops = 0;
  std::vector<int64_t> sizes;                // per label id
  int nout = 0;                              // the first nout ids are the output's, in order
  std::vector<std::vector<int64_t>> stride;  // [op][label id]
};

std::string BuildEinsum(const std::string& eq, const std::vector<const TensorArg*>& ins,
                        const std::vector<int64_t>& out_dims, EinsumPlan* p) {
  std::string s;
  for (char c : eq)
    if (c != ' ') s += c;
  size_t arrow = s.find("->");
  std::string lhs = arrow == std::string::npos ? s : s.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t q = 0;;) {
    size_t c = lhs.find(',', q);
    terms.push_back(lhs.substr(q, c == std::string::npos ? std::string::npos : c - q));
    if (c == std::string::npos) break;
    q = c + 1;
  }
  if (terms.size() != ins.size()) return "equation operand count differs from the inputs";
  // Replace "..." with '.', validate letters.
  auto norm = [](std::string& t) {
    std::string r;
    for (size_t i = 0; i < t.size(); ++i) {
      if (t.compare(i, 3, "...") == 0) { r += '.'; i += 2; }
      else if (std::isalpha(static_cast<unsigned char>(t[i]))) r += t[i];
      else return false;
    }
    t = r;
    return true;
  };
  for (auto& t : terms)
    if (!norm(t)) return "malformed term in equation";
  int ell_rank = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    int nl = static_cast<int>(terms[i].size());
    if (terms[i].find('.') != std::string::npos) {
      int e = static_cast<int>(ins[i]->dims.size()) - (nl - 1);
      if (e < 0) return "operand rank is below its term's labels";
      ell_rank = std::max(ell_rank, e);
    } else if (nl != static_cast<int>(ins[i]->dims.size())) {
      return "operand rank differs from its term";
    }
  }
  std::string outs;
  if (arrow != std::string::npos) {
    outs = s.substr(arrow + 2);
    if (!norm(outs)) return "malformed output term";
  } else {
    std::map<char, int> cnt;
    bool dots = false;
    for (auto& t : terms)
      for (char c : t) {
        if (c == '.') dots = true;
        else ++cnt[c];
      }
    if (dots) outs = ".";
    for (auto& [c, k] : cnt)
      if (k == 1) outs += c;
  }
  // Label ids: ellipsis dims are ids named by '0'+i.
  std::vector<std::string> names;
  auto id_of = [&](const std::string& nm) {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == nm) return static_cast<int>(i);
    names.push_back(nm);
    return static_cast<int>(names.size() - 1);
  };
  auto expand = [&](const std::string& t, int erank) {
    std::vector<std::string> v;
    for (char c : t) {
      if (c == '.')
        for (int k = ell_rank - erank; k < ell_rank; ++k) v.push_back(std::string("#") + std::to_string(k));
      else v.push_back(std::string(1, c));
    }
    return v;
  };
  for (const auto& nm : expand(outs, ell_rank)) id_of(nm);
  p->nout = static_cast<int>(names.size());
  if (static_cast<size_t>(p->nout) != out_dims.size()) return "output rank differs from the equation";
  std::vector<std::vector<std::string>> ex;
  for (size_t i = 0; i < terms.size(); ++i) {
    int e = terms[i].find('.') != std::string::npos
                ? static_cast<int>(ins[i]->dims.size()) - static_cast<int>(terms[i].size() - 1)
                : 0;
    ex.push_back(expand(terms[i], e));
    for (const auto& nm : ex.back()) id_of(nm);
  }
  p->nops = static_cast<int>(ins.size());
  p->sizes.assign(names.size(), 1);
  for (int i = 0; i < p->nout; ++i) p->sizes[i] = out_dims[i];
  for (size_t i = 0; i < ex.size(); ++i)
    for (size_t d = 0; d < ex[i].size(); ++d) {
      int id = id_of(ex[i][d]);
      int64_t v = ins[i]->dims[d];
      if (v != 1) {
        if (p->sizes[id] != 1 && p->sizes[id] != v) return "label '" + ex[i][d] + "' has inconsistent sizes";
        p->sizes[id] = v;
      }
    }
  for (int i = 0; i < p->nout; ++i)
    if (p->sizes[i] != out_dims[i]) return "output dims do not match the equation";
  p->stride.assign(ins.size(), std::vector<int64_t>(names.size(), 0));
  for (size_t i = 0; i < ex.size(); ++i) {
    std::vector<int64_t> st = Strides(ins[i]->dims);
    for (size_t d = 0; d < ex[i].size(); ++d)
      if (ins[i]->dims[d] != 1) p->stride[i][id_of(ex[i][d])] += st[d];
  }
  return "";
}

Err CreateEinsum(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1u << 20, 1, 1);
  if (!e.ok()) return e;
  const TensorArg& y = *args.outputs[0];
  for (const TensorArg* t : args.inputs)
    if (!t || t->dtype != y.dtype) return Invalid(args, "all inputs must be present and of the output dtype");
  EinsumPlan plan;
  std::string why = BuildEinsum(args.attrs().String("equation", ""), args.inputs, y.dims, &plan);
  if (!why.empty()) return Invalid(args, "equation '" + args.attrs().String("equation", "") + "': " + why);
  auto make = [&](auto tag) {
    using T = decltype(tag);
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
    *out = MakeFnKernel([plan](const void* const* in, void* const* o) -> Err {
      const int nl = static_cast<int>(plan.sizes.size()), nops = plan.nops;
      int64_t out_n = 1, sum_n = 1;
      for (int i = 0; i < nl; ++i) (i < plan.nout ? out_n : sum_n) *= plan.sizes[i];
      T* dst = static_cast<T*>(o[0]);
      const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(sum_n * nops, 1));
      ParallelFor(out_n, grain, [&](int64_t ob, int64_t oe) {
        std::vector<int64_t> idx(static_cast<size_t>(nl), 0);
        for (int64_t oi = ob; oi < oe; ++oi) {
          int64_t rem = oi;
          for (int i = plan.nout - 1; i >= 0; --i) {
            idx[i] = rem % plan.sizes[i];
            rem /= plan.sizes[i];
          }
          Acc acc = 0;
          for (int64_t si = 0; si < sum_n; ++si) {
            rem = si;
            for (int i = nl - 1; i >= plan.nout; --i) {
              idx[i] = rem % plan.sizes[i];
              rem /= plan.sizes[i];
            }
            Acc prod = 1;
            for (int k = 0; k < nops; ++k) {
              int64_t off = 0;
              for (int i = 0; i < nl; ++i) off += idx[i] * plan.stride[k][i];
              prod = static_cast<Acc>(prod * static_cast<Acc>(static_cast<const T*>(in[k])[off]));
            }
            acc = static_cast<Acc>(acc + prod);
          }
          dst[oi] = static_cast<T>(acc);
        }
      });
      return Err::Ok();
    });
  };
  if (!ByArith(y.dtype, make)) return Unsupported(args, y.dtype);
  return Err::Ok();
}

// Det: LU with partial pivoting (in double) of each trailing [M, M] matrix.
Err CreateDet(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  const size_t r = x.dims.size();
  if (r < 2 || x.dims[r - 1] != x.dims[r - 2]) return Invalid(args, "input must be [..., M, M], got " + DimsToString(x.dims));
  std::vector<int64_t> want(x.dims.begin(), x.dims.end() - 2);
  if (y.dtype != x.dtype || y.dims != want) return Invalid(args, "output must be " + DimsToString(want));
  const int64_t m = x.dims[r - 1], batch = y.numel;
  auto make = [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      std::vector<double> a(static_cast<size_t>(m * m));
      for (int64_t b = 0; b < batch; ++b) {
        const T* src = static_cast<const T*>(in[0]) + b * m * m;
        for (int64_t i = 0; i < m * m; ++i) a[i] = static_cast<double>(src[i]);
        double det = 1;
        for (int64_t c = 0; c < m && det != 0; ++c) {
          int64_t piv = c;
          for (int64_t i = c + 1; i < m; ++i)
            if (std::fabs(a[i * m + c]) > std::fabs(a[piv * m + c])) piv = i;
          if (a[piv * m + c] == 0) { det = 0; break; }
          if (piv != c) {
            for (int64_t j = 0; j < m; ++j) std::swap(a[piv * m + j], a[c * m + j]);
            det = -det;
          }
          det *= a[c * m + c];
          for (int64_t i = c + 1; i < m; ++i) {
            const double f = a[i * m + c] / a[c * m + c];
            for (int64_t j = c; j < m; ++j) a[i * m + j] -= f * a[c * m + j];
          }
        }
        static_cast<T*>(o[0])[b] = static_cast<T>(det);
      }
      return Err::Ok();
    });
  };
  if (x.dtype == TSR_DTYPE_F32) make(float{});
  else if (x.dtype == TSR_DTYPE_F64) make(double{});
  else return Unsupported(args, x.dtype);
  return Err::Ok();
}

// ---- NonMaxSuppression ----

// True when box j is suppressed by box i (IoU > threshold). Boxes are
// [y1, x1, y2, x2] (any corner order) or, with center_point_box, [xc, yc, w, h].
bool Suppress(const float* bi, const float* bj, bool center, float thr) {
  float ax0, ax1, ay0, ay1, bx0, bx1, by0, by1;
  if (center) {
    ax0 = bi[0] - bi[2] / 2; ax1 = bi[0] + bi[2] / 2; ay0 = bi[1] - bi[3] / 2; ay1 = bi[1] + bi[3] / 2;
    bx0 = bj[0] - bj[2] / 2; bx1 = bj[0] + bj[2] / 2; by0 = bj[1] - bj[3] / 2; by1 = bj[1] + bj[3] / 2;
  } else {
    ay0 = std::min(bi[0], bi[2]); ay1 = std::max(bi[0], bi[2]); ax0 = std::min(bi[1], bi[3]); ax1 = std::max(bi[1], bi[3]);
    by0 = std::min(bj[0], bj[2]); by1 = std::max(bj[0], bj[2]); bx0 = std::min(bj[1], bj[3]); bx1 = std::max(bj[1], bj[3]);
  }
  const float ix0 = std::max(ax0, bx0), ix1 = std::min(ax1, bx1), iy0 = std::max(ay0, by0), iy1 = std::min(ay1, by1);
  if (ix1 <= ix0 || iy1 <= iy0) return false;
  const float inter = (ix1 - ix0) * (iy1 - iy0);
  const float a1 = (ax1 - ax0) * (ay1 - ay0), a2 = (bx1 - bx0) * (by1 - by0), uni = a1 + a2 - inter;
  if (inter <= 0 || a1 <= 0 || a2 <= 0 || uni <= 0) return false;
  return inter / uni > thr;
}

Err CreateNms(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 5, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &boxes = *args.inputs[0], &scores = *args.inputs[1], &y = *args.outputs[0];
  if (boxes.dtype != TSR_DTYPE_F32 || scores.dtype != TSR_DTYPE_F32) return Unsupported(args, boxes.dtype);
  if (boxes.dims.size() != 3 || boxes.dims[2] != 4 || scores.dims.size() != 3 || scores.dims[0] != boxes.dims[0] ||
      scores.dims[2] != boxes.dims[1])
    return Invalid(args, "boxes " + DimsToString(boxes.dims) + " must be [B, N, 4] and scores " +
                             DimsToString(scores.dims) + " [B, C, N]");
  if (y.dtype != TSR_DTYPE_I64 || y.dims.size() != 2 || y.dims[1] != 3)
    return Invalid(args, "output must be i64 [n, 3], got " + DimsToString(y.dims));
  const bool has_max = args.has_input(2) && args.inputs[2]->numel > 0, has_iou = args.has_input(3) && args.inputs[3]->numel > 0,
             has_score = args.has_input(4) && args.inputs[4]->numel > 0;
  if (has_max && args.inputs[2]->dtype != TSR_DTYPE_I64) return Invalid(args, "max_output_boxes_per_class must be i64");
  if ((has_iou && args.inputs[3]->dtype != TSR_DTYPE_F32) || (has_score && args.inputs[4]->dtype != TSR_DTYPE_F32))
    return Invalid(args, "iou_threshold and score_threshold must be f32");
  const bool center = args.attrs().Int("center_point_box", 0) != 0;
  const int64_t B = boxes.dims[0], N = boxes.dims[1], C = scores.dims[1], want = y.dims[0];
  const std::string desc = args.Describe();
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    const float* bx = static_cast<const float*>(in[0]);
    const float* sc = static_cast<const float*>(in[1]);
    const int64_t maxn = has_max ? std::max<int64_t>(static_cast<const int64_t*>(in[2])[0], 0) : 0;
    const float iou = has_iou ? static_cast<const float*>(in[3])[0] : 0.f;
    std::vector<int64_t> sel;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c) {
        const float* s = sc + (b * C + c) * N;
        std::vector<int64_t> cand;
        for (int64_t i = 0; i < N; ++i)
          if (!has_score || s[i] > static_cast<const float*>(in[4])[0]) cand.push_back(i);
        // Highest score first; ties: lower index first.
        std::stable_sort(cand.begin(), cand.end(), [&](int64_t p, int64_t q) { return s[p] > s[q]; });
        std::vector<int64_t> kept;
        for (int64_t i : cand) {
          if (static_cast<int64_t>(kept.size()) >= maxn) break;
          bool ok = true;
          for (int64_t k : kept)
            if (Suppress(bx + (b * N + i) * 4, bx + (b * N + k) * 4, center, iou)) { ok = false; break; }
          if (!ok) continue;
          kept.push_back(i);
          sel.insert(sel.end(), {b, c, i});
        }
      }
    if (static_cast<int64_t>(sel.size()) != want * 3)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: selected %zu boxes, output has %lld", desc.c_str(), sel.size() / 3,
                     static_cast<long long>(want));
    if (!sel.empty()) std::memcpy(o[0], sel.data(), sel.size() * sizeof(int64_t));
    return Err::Ok();
  });
  return Err::Ok();
}

std::string ClaimArith(const tsr_node_view& n, const tsr_graph_view& g) {
  return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32, TSR_DTYPE_F64, TSR_DTYPE_I32, TSR_DTYPE_I64, TSR_DTYPE_I8, TSR_DTYPE_U8});
}
std::string ClaimScatter(const tsr_node_view& n, const tsr_graph_view& g) {
  if (plugin::NodeAttrs(n).String("reduction", "none") != "none") return ClaimArith(n, g);
  return ClaimFixedSize(n, g, 0);
}
std::string ClaimData(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimFixedSize(n, g, 0); }
std::string ClaimF32F64(const tsr_node_view& n, const tsr_graph_view& g) {
  return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32, TSR_DTYPE_F64});
}
std::string ClaimF32(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32}); }
std::string ClaimOneHot(const tsr_node_view& n, const tsr_graph_view& g) {
  for (uint32_t i = 0; i < 2; ++i) {
    int32_t dt = ClaimInputDType(n, g, i);
    if (!IsPlainNumeric(dt)) return std::string("CPU OneHot does not support ") + DT(dt) + " for input " + std::to_string(i);
  }
  return ClaimFixedSize(n, g, 2);
}

}  // namespace

void RegisterIndexingKernels(KernelRegistry& r) {
  r.Add({"", "Scatter", &CreateScatterElements, &ClaimScatter});
  r.Add({"", "ScatterElements", &CreateScatterElements, &ClaimScatter});
  r.Add({"", "ScatterND", &CreateScatterND, &ClaimScatter});
  r.Add({"", "TensorScatter", &CreateTensorScatter, &ClaimData});
  r.Add({"", "GatherND", &CreateGatherND, &ClaimData});
  r.Add({"", "OneHot", &CreateOneHot, &ClaimOneHot});
  r.Add({"", "DepthToSpace", &CreateDepthToSpace, &ClaimData});
  r.Add({"", "SpaceToDepth", &CreateSpaceToDepth, &ClaimData});
  r.Add({"", "Compress", &CreateCompress, &ClaimData});
  r.Add({"", "NonZero", &CreateNonZero, &ClaimData});
  r.Add({"", "Unique", &CreateUnique, &ClaimArith});
  r.Add({"", "EyeLike", &CreateEyeLike, nullptr});
  r.Add({"", "ReverseSequence", &CreateReverseSequence, &ClaimData});
  r.Add({"", "Einsum", &CreateEinsum, &ClaimArith});
  r.Add({"", "Det", &CreateDet, &ClaimF32F64});
  r.Add({"", "NonMaxSuppression", &CreateNms, &ClaimF32});
}

}  // namespace tessera::cpu
