// Shape and data-movement CPU kernels: Reshape/Flatten/Squeeze/Unsqueeze
// (byte copies), Transpose, Concat, Split, Slice, Gather, GatherElements,
// Expand, Tile, Shape, Size, ConstantOfShape, Range, Trilu, Pad.
//
// Data movement works on element sizes (1, 2, 4, 8 bytes), so every
// fixed-size dtype is handled. Output shapes come from the compiler; the
// factories only check that they are consistent.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

constexpr int64_t kGrain = 32768;  // elements per parallel task
constexpr int kMaxRank = 8;

const char* DT(int32_t dt) { return plugin::DTypeName(dt); }

// Calls f(T{}) with the unsigned integer type of `es` bytes; false for other sizes.
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

Err UnsupportedDType(const NodeArgs& args, int32_t dt) {
  return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported", args.Describe().c_str(), DT(dt));
}

int64_t Prod(const std::vector<int64_t>& d, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e && i < d.size(); ++i) p *= d[i];
  return p;
}

// Parallel copy of n bytes.
void CopyBytes(void* dst, const void* src, int64_t n) {
  if (n <= 0 || dst == src) return;
  constexpr int64_t kChunk = 1 << 20;
  ParallelFor((n + kChunk - 1) / kChunk, 1, [&](int64_t b, int64_t e) {
    int64_t lo = b * kChunk, hi = std::min(n, e * kChunk);
    std::memcpy(static_cast<uint8_t*>(dst) + lo, static_cast<const uint8_t*>(src) + lo, static_cast<size_t>(hi - lo));
  });
}

// ---- Reshape / Flatten / Squeeze / Unsqueeze / Identity-like ---------------------------------

// The output is the input's bytes (the shape parameters only shape the output,
// which the compiler already inferred), so the shape/axes inputs need not be
// constants.
Err CreateReshapeLike(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (x.elem_size() == 0) return UnsupportedDType(args, x.dtype);
  if (x.dtype != y.dtype || x.numel != y.numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not hold the input %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  const int64_t nb = x.nbytes();
  *out = MakeFnKernel([nb](const void* const* in, void* const* o) -> Err {
    CopyBytes(o[0], in[0], nb);
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- Transpose -------------------------------------------------------------------------------

// out[c * rows + r] = in[r * cols + c], in tiles of 8 input rows x 64
// columns: few enough lines in flight that power-of-two strides do not thrash
// the cache sets.
template <typename T>
void Transpose2D(const T* in, T* out, int64_t rows, int64_t cols) {
  constexpr int64_t kTileR = 8, kTileC = 64;
  const int64_t tr = (rows + kTileR - 1) / kTileR, tc = (cols + kTileC - 1) / kTileC;
  ParallelFor(tr * tc, std::max<int64_t>(1, kGrain / (kTileR * kTileC)), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t r0 = (t / tc) * kTileR, c0 = (t % tc) * kTileC;
      const int64_t r1 = std::min(rows, r0 + kTileR), c1 = std::min(cols, c0 + kTileC);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) out[c * rows + r] = in[r * cols + c];
    }
  });
}

struct TransposePlan {
  int rank = 0;                 // collapsed rank
  int64_t out_dims[kMaxRank];   // collapsed output dims
  int64_t in_stride[kMaxRank];  // input stride (elements) of each output axis
};

// General path: rows of the output's last axis, read with the input stride.
template <typename T>
void TransposeGeneral(const TransposePlan& p, const T* in, T* out) {
  const int r = p.rank;
  const int64_t inner = p.out_dims[r - 1], s_inner = p.in_stride[r - 1];
  int64_t rows = 1;
  for (int d = 0; d < r - 1; ++d) rows *= p.out_dims[d];
  ParallelFor(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
    int64_t idx[kMaxRank] = {};
    int64_t off = 0, rem = b;
    for (int d = r - 2; d >= 0; --d) {
      idx[d] = rem % p.out_dims[d];
      rem /= p.out_dims[d];
      off += idx[d] * p.in_stride[d];
    }
    for (int64_t row = b; row < e; ++row) {
      T* dst = out + row * inner;
      if (s_inner == 1) {
        std::memcpy(dst, in + off, static_cast<size_t>(inner) * sizeof(T));
      } else {
        for (int64_t i = 0; i < inner; ++i) dst[i] = in[off + i * s_inner];
      }
      for (int d = r - 2; d >= 0; --d) {
        off += p.in_stride[d];
        if (++idx[d] < p.out_dims[d]) break;
        off -= p.in_stride[d] * p.out_dims[d];
        idx[d] = 0;
      }
    }
  });
}

Err CreateTranspose(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return UnsupportedDType(args, x.dtype);
  const int rank = static_cast<int>(x.dims.size());
  if (rank > kMaxRank)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: rank %d is above the supported %d", args.Describe().c_str(), rank, kMaxRank);
  std::vector<int64_t> perm = args.attrs().Ints("perm");
  if (perm.empty())
    for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  bool valid = static_cast<int>(perm.size()) == rank;
  for (size_t i = 0; valid && i < perm.size(); ++i) {
    if (perm[i] < 0) perm[i] += rank;  // tolerate negative axes
    valid = perm[i] >= 0 && perm[i] < rank && !seen[perm[i]];
    if (valid) seen[perm[i]] = true;
  }
  if (!valid)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: perm %s is not a permutation of %d axes", args.Describe().c_str(),
                   DimsToString(args.attrs().Ints("perm")).c_str(), rank);
  if (y.dtype != x.dtype || static_cast<int>(y.dims.size()) != rank)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not match input %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  for (int i = 0; i < rank; ++i)
    if (y.dims[i] != x.dims[perm[i]])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dims %s do not match input %s under perm %s",
                     args.Describe().c_str(), DimsToString(y.dims).c_str(), DimsToString(x.dims).c_str(),
                     DimsToString(perm).c_str());
  // Collapse: drop size-1 axes, then merge output axes whose input axes are adjacent.
  std::vector<int64_t> in_stride = std::vector<int64_t>(static_cast<size_t>(rank), 1);
  for (int d = rank - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * x.dims[d + 1];
  TransposePlan plan;
  for (int i = 0; i < rank; ++i) {
    const int64_t a = perm[i];
    if (x.dims[a] == 1) continue;
    // Merge when stepping the previous group once equals stepping axis a dims[a] times.
    if (plan.rank > 0 && plan.in_stride[plan.rank - 1] == in_stride[a] * x.dims[a]) {
      plan.out_dims[plan.rank - 1] *= x.dims[a];
      plan.in_stride[plan.rank - 1] = in_stride[a];
    } else {
      plan.out_dims[plan.rank] = x.dims[a];
      plan.in_stride[plan.rank] = in_stride[a];
      ++plan.rank;
    }
  }
  const int64_t n = x.numel, nb = x.nbytes();
  if (plan.rank <= 1 || n == 0) {  // the order of elements does not change
    *out = MakeFnKernel([nb](const void* const* in, void* const* o) -> Err {
      CopyBytes(o[0], in[0], nb);
      return Err::Ok();
    });
    return Err::Ok();
  }
  // 2-D [R, C] -> [C, R]: input strides of the output axes are (1, C).
  const bool is2d = plan.rank == 2 && plan.in_stride[1] != 1;
  // Batched last-two swap: [B, R, C] -> [B, C, R].
  const bool batched2d = plan.rank == 3 && plan.in_stride[2] != 1 && plan.in_stride[1] == 1 &&
                         plan.in_stride[0] == plan.out_dims[1] * plan.out_dims[2];
  BySize(es, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([plan, is2d, batched2d](const void* const* in, void* const* o) -> Err {
      const T* src = static_cast<const T*>(in[0]);
      T* dst = static_cast<T*>(o[0]);
      if (is2d) {
        Transpose2D(src, dst, plan.out_dims[1], plan.out_dims[0]);
      } else if (batched2d) {
        const int64_t rows = plan.out_dims[2], cols = plan.out_dims[1], blk = rows * cols;
        for (int64_t b = 0; b < plan.out_dims[0]; ++b) Transpose2D(src + b * blk, dst + b * blk, rows, cols);
      } else {
        TransposeGeneral(plan, src, dst);
      }
      return Err::Ok();
    });
  });
  return Err::Ok();
}

// ---- Concat ------------------------------------------------------------------------------------

Err CreateConcat(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1u << 20, 1, 1);
  if (!e.ok()) return e;
  const TensorArg& y = *args.outputs[0];
  const int64_t es = y.elem_size();
  if (es == 0) return UnsupportedDType(args, y.dtype);
  const int64_t rank = static_cast<int64_t>(y.dims.size());
  int64_t axis;
  if (!args.attrs().Has("axis"))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: missing attribute 'axis'", args.Describe().c_str());
  if (!NormalizeAxis(args.attrs().Int("axis", 0), rank, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                   static_cast<long long>(args.attrs().Int("axis", 0)), static_cast<long long>(rank));
  const int64_t outer = Prod(y.dims, 0, axis), inner = Prod(y.dims, axis + 1, rank);
  std::vector<int64_t> chunk;  // bytes per outer index, per input
  int64_t total = 0;
  for (size_t k = 0; k < args.inputs.size(); ++k) {
    const TensorArg* t = args.inputs[k];
    if (!t) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is missing", args.Describe().c_str(), k);
    bool ok = t->dtype == y.dtype && static_cast<int64_t>(t->dims.size()) == rank;
    for (int64_t d = 0; ok && d < rank; ++d) ok = d == axis || t->dims[d] == y.dims[d];
    if (!ok)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu %s%s does not fit output %s%s on axis %lld",
                     args.Describe().c_str(), k, DT(t->dtype), DimsToString(t->dims).c_str(), DT(y.dtype),
                     DimsToString(y.dims).c_str(), static_cast<long long>(axis));
    chunk.push_back(t->dims[axis] * inner * es);
    total += t->dims[axis];
  }
  if (total != y.dims[axis])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inputs add up to %lld on axis %lld, output has %lld",
                   args.Describe().c_str(), static_cast<long long>(total), static_cast<long long>(axis),
                   static_cast<long long>(y.dims[axis]));
  const int64_t row = total * inner * es;
  *out = MakeFnKernel([chunk, outer, row](const void* const* in, void* const* o) -> Err {
    uint8_t* dst = static_cast<uint8_t*>(o[0]);
    ParallelFor(outer, std::max<int64_t>(1, kGrain * 4 / std::max<int64_t>(row, 1)), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        uint8_t* d = dst + i * row;
        for (size_t k = 0; k < chunk.size(); ++k) {
          if (chunk[k] == 0) continue;
          std::memcpy(d, static_cast<const uint8_t*>(in[k]) + i * chunk[k], static_cast<size_t>(chunk[k]));
          d += chunk[k];
        }
      }
    });
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- Split -------------------------------------------------------------------------------------

// The outputs' dims on `axis` are the split sizes. A `split` attribute or
// constant input is checked against them; a non-constant split input is
// accepted because the (static) output shapes already fix the sizes.
Err CreateSplit(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 2, 1, 1u << 20);
  if (!e.ok()) return e;
  const TensorArg& x = *args.inputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return UnsupportedDType(args, x.dtype);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis;
  if (!NormalizeAxis(args.attrs().Int("axis", 0), rank, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                   static_cast<long long>(args.attrs().Int("axis", 0)), static_cast<long long>(rank));
  std::vector<int64_t> split;
  bool has_split = false;
  if (args.attrs().Has("split")) {
    split = args.attrs().Ints("split");
    has_split = true;
  } else if (args.has_input(1) && args.inputs[1]->const_data) {
    e = ReadIntsParam(args, nullptr, 1, &split, &has_split);
    if (!e.ok()) return e;
  }
  if (has_split && split.size() != args.outputs.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: split has %zu entries for %zu outputs", args.Describe().c_str(),
                   split.size(), args.outputs.size());
  const int64_t outer = Prod(x.dims, 0, axis), inner = Prod(x.dims, axis + 1, rank);
  std::vector<int64_t> chunk;
  int64_t total = 0;
  for (size_t k = 0; k < args.outputs.size(); ++k) {
    const TensorArg* t = args.outputs[k];
    if (!t) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu is missing", args.Describe().c_str(), k);
    bool ok = t->dtype == x.dtype && static_cast<int64_t>(t->dims.size()) == rank;
    for (int64_t d = 0; ok && d < rank; ++d) ok = d == axis || t->dims[d] == x.dims[d];
    if (ok && has_split) ok = split[k] == t->dims[axis];
    if (!ok)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu %s%s does not fit input %s%s split on axis %lld",
                     args.Describe().c_str(), k, DT(t->dtype), DimsToString(t->dims).c_str(), DT(x.dtype),
                     DimsToString(x.dims).c_str(), static_cast<long long>(axis));
    chunk.push_back(t->dims[axis] * inner * es);
    total += t->dims[axis];
  }
  if (total != x.dims[axis])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: outputs add up to %lld on axis %lld, input has %lld",
                   args.Describe().c_str(), static_cast<long long>(total), static_cast<long long>(axis),
                   static_cast<long long>(x.dims[axis]));
  const int64_t row = total * inner * es;
  *out = MakeFnKernel([chunk, outer, row](const void* const* in, void* const* o) -> Err {
    const uint8_t* src = static_cast<const uint8_t*>(in[0]);
    ParallelFor(outer, std::max<int64_t>(1, kGrain * 4 / std::max<int64_t>(row, 1)), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const uint8_t* s = src + i * row;
        for (size_t k = 0; k < chunk.size(); ++k) {
          if (chunk[k] && o[k]) std::memcpy(static_cast<uint8_t*>(o[k]) + i * chunk[k], s, static_cast<size_t>(chunk[k]));
          s += chunk[k];
        }
      }
    });
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- Slice -------------------------------------------------------------------------------------

struct StridedView {
  int rank = 0;
  int64_t dims[kMaxRank];    // output dims
  int64_t stride[kMaxRank];  // input stride (elements) per output step
  int64_t base = 0;          // input offset of output element 0
};

// out[i] = in[base + sum idx_d * stride_d], rows along the last axis.
template <typename T>
void RunStrided(const StridedView& v, const T* in, T* out) {
  const int r = v.rank;
  const int64_t inner = r ? v.dims[r - 1] : 1, s_inner = r ? v.stride[r - 1] : 1;
  int64_t rows = 1;
  for (int d = 0; d < r - 1; ++d) rows *= v.dims[d];
  if (inner == 0 || rows == 0) return;
  ParallelFor(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t b, int64_t e) {
    int64_t idx[kMaxRank] = {};
    int64_t off = v.base, rem = b;
    for (int d = r - 2; d >= 0; --d) {
      idx[d] = rem % v.dims[d];
      rem /= v.dims[d];
      off += idx[d] * v.stride[d];
    }
    for (int64_t row = b; row < e; ++row) {
      T* dst = out + row * inner;
      if (s_inner == 1) std::memcpy(dst, in + off, static_cast<size_t>(inner) * sizeof(T));
      else
        for (int64_t i = 0; i < inner; ++i) dst[i] = in[off + i * s_inner];
      for (int d = r - 2; d >= 0; --d) {
        off += v.stride[d];
        if (++idx[d] < v.dims[d]) break;
        off -= v.stride[d] * v.dims[d];
        idx[d] = 0;
      }
    }
  });
}

Err CreateSlice(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  const bool old = args.node->opset < 10;
  Err e = CheckArity(args, old ? 1 : 3, old ? 1 : 5, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return UnsupportedDType(args, x.dtype);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (rank > kMaxRank)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: rank %lld is above the supported %d", args.Describe().c_str(),
                   static_cast<long long>(rank), kMaxRank);
  std::vector<int64_t> starts, ends, axes, steps;
  bool has_s = false, has_e = false, has_a = false, has_st = false;
  if (old) {
    plugin::NodeAttrs at = args.attrs();
    starts = at.Ints("starts");
    ends = at.Ints("ends");
    axes = at.Ints("axes");
    has_s = at.Has("starts");
    has_e = at.Has("ends");
    has_a = at.Has("axes");
  } else {
    if (Err r = ReadIntsParam(args, nullptr, 1, &starts, &has_s); !r.ok()) return r;
    if (Err r = ReadIntsParam(args, nullptr, 2, &ends, &has_e); !r.ok()) return r;
    if (Err r = ReadIntsParam(args, nullptr, 3, &axes, &has_a); !r.ok()) return r;
    if (Err r = ReadIntsParam(args, nullptr, 4, &steps, &has_st); !r.ok()) return r;
  }
  if (!has_s || !has_e || starts.size() != ends.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: starts and ends must be given with equal lengths",
                   args.Describe().c_str());
  if (!has_a)
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (!has_st) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: starts, ends, axes and steps lengths differ (%zu, %zu, %zu, %zu)",
                   args.Describe().c_str(), starts.size(), ends.size(), axes.size(), steps.size());
  std::vector<int64_t> st(static_cast<size_t>(rank), 0), sp(static_cast<size_t>(rank), 1), len(x.dims);
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t a;
    if (!NormalizeAxis(axes[i], rank, &a) || seen[a])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range or repeated", args.Describe().c_str(),
                     static_cast<long long>(axes[i]));
    seen[a] = true;
    const int64_t dim = x.dims[a], step = steps[i];
    if (step == 0) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: step must not be 0", args.Describe().c_str());
    const plugin::SliceAxis ax = plugin::ResolveSliceAxis(starts[i], ends[i], step, dim);
    len[a] = ax.count;
    st[a] = ax.first;
    sp[a] = step;
  }
  if (y.dtype != x.dtype || y.dims != len)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not match the slice %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(len).c_str());
  StridedView v;
  v.rank = static_cast<int>(rank);
  int64_t stride = 1;
  for (int64_t d = rank - 1; d >= 0; --d) {
    v.dims[d] = len[d];
    v.stride[d] = sp[d] * stride;
    v.base += st[d] * stride;
    stride *= x.dims[d];
  }
  if (y.numel == 0) {
    *out = MakeFnKernel([](const void* const*, void* const*) -> Err { return Err::Ok(); });
    return Err::Ok();
  }
  BySize(es, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([v](const void* const* in, void* const* o) -> Err {
      RunStrided(v, static_cast<const T*>(in[0]), static_cast<T*>(o[0]));
      return Err::Ok();
    });
  });
  return Err::Ok();
}

// ---- Gather / GatherElements ---------------------------------------------------------------------

// Reads index i (i32 or i64) as int64.
inline int64_t IndexAt(const void* p, bool is64, int64_t i) {
  return is64 ? static_cast<const int64_t*>(p)[i] : static_cast<const int32_t*>(p)[i];
}

// Checks every index against [-bound, bound); names the node, value and bound.
Err CheckIndices(const void* idx, bool is64, int64_t n, int64_t bound, const std::string& desc) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = IndexAt(idx, is64, i);
    if (v < -bound || v >= bound)
      return MakeErr(TSR_ERR_OUT_OF_RANGE, "%s: index %lld (element %lld of indices) is out of range [-%lld, %lld)",
                     desc.c_str(), static_cast<long long>(v), static_cast<long long>(i),
                     static_cast<long long>(bound), static_cast<long long>(bound));
  }
  return Err::Ok();
}

Err CreateGather(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &ind = *args.inputs[1], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return UnsupportedDType(args, x.dtype);
  if (ind.dtype != TSR_DTYPE_I32 && ind.dtype != TSR_DTYPE_I64)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: indices must be i32 or i64, got %s", args.Describe().c_str(),
                   DT(ind.dtype));
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis;
  if (!NormalizeAxis(args.attrs().Int("axis", 0), rank, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                   static_cast<long long>(args.attrs().Int("axis", 0)), static_cast<long long>(rank));
  std::vector<int64_t> want(x.dims.begin(), x.dims.begin() + axis);
  want.insert(want.end(), ind.dims.begin(), ind.dims.end());
  want.insert(want.end(), x.dims.begin() + axis + 1, x.dims.end());
  if (y.dtype != x.dtype || y.dims != want)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not match expected %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(want).c_str());
  const int64_t outer = Prod(x.dims, 0, axis), n = x.dims[axis], inner = Prod(x.dims, axis + 1, rank) * es;
  const int64_t ni = ind.numel;
  const bool is64 = ind.dtype == TSR_DTYPE_I64;
  const std::string desc = args.Describe();
  *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
    const void* idx = in[1];
    Err err = CheckIndices(idx, is64, ni, n, desc);
    if (!err.ok()) return err;
    const uint8_t* src = static_cast<const uint8_t*>(in[0]);
    uint8_t* dst = static_cast<uint8_t*>(o[0]);
    ParallelFor(outer * ni, std::max<int64_t>(1, kGrain * 4 / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t en) {
      for (int64_t p = b; p < en; ++p) {
        const int64_t oi = p / ni, j = p % ni;
        int64_t v = IndexAt(idx, is64, j);
        if (v < 0) v += n;
        std::memcpy(dst + p * inner, src + (oi * n + v) * inner, static_cast<size_t>(inner));
      }
    });
    return Err::Ok();
  });
  return Err::Ok();
}

Err CreateGatherElements(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &ind = *args.inputs[1], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return UnsupportedDType(args, x.dtype);
  if (ind.dtype != TSR_DTYPE_I32 && ind.dtype != TSR_DTYPE_I64)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: indices must be i32 or i64, got %s", args.Describe().c_str(),
                   DT(ind.dtype));
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (rank == 0 || static_cast<int64_t>(ind.dims.size()) != rank)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: data %s and indices %s must have the same rank >= 1",
                   args.Describe().c_str(), DimsToString(x.dims).c_str(), DimsToString(ind.dims).c_str());
  if (rank > kMaxRank)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: rank %lld is above the supported %d", args.Describe().c_str(),
                   static_cast<long long>(rank), kMaxRank);
  int64_t axis;
  if (!NormalizeAxis(args.attrs().Int("axis", 0), rank, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", args.Describe().c_str(),
                   static_cast<long long>(args.attrs().Int("axis", 0)), static_cast<long long>(rank));
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis && ind.dims[d] > x.dims[d])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: indices %s exceed data %s on axis %lld", args.Describe().c_str(),
                     DimsToString(ind.dims).c_str(), DimsToString(x.dims).c_str(), static_cast<long long>(d));
  if (y.dtype != x.dtype || y.dims != ind.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s must have the indices' shape %s",
                   args.Describe().c_str(), DT(y.dtype), DimsToString(y.dims).c_str(), DimsToString(ind.dims).c_str());
  std::vector<int64_t> xs(static_cast<size_t>(rank), 1);
  for (int64_t d = rank - 2; d >= 0; --d) xs[d] = xs[d + 1] * x.dims[d + 1];
  const std::vector<int64_t> idims = ind.dims;
  const int64_t n = x.dims[axis], ni = ind.numel, ax = axis;
  const bool is64 = ind.dtype == TSR_DTYPE_I64;
  const std::string desc = args.Describe();
  BySize(es, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      const void* idx = in[1];
      Err err = CheckIndices(idx, is64, ni, n, desc);
      if (!err.ok()) return err;
      const T* src = static_cast<const T*>(in[0]);
      T* dst = static_cast<T*>(o[0]);
      const int r = static_cast<int>(idims.size());
      ParallelFor(ni, kGrain, [&](int64_t b, int64_t en) {
        int64_t id[kMaxRank] = {};
        int64_t rem = b;
        for (int d = r - 1; d >= 0; --d) {
          id[d] = rem % idims[d];
          rem /= idims[d];
        }
        for (int64_t p = b; p < en; ++p) {
          int64_t v = IndexAt(idx, is64, p);
          if (v < 0) v += n;
          int64_t off = 0;
          for (int d = 0; d < r; ++d) off += (d == ax ? v : id[d]) * xs[d];
          dst[p] = src[off];
          for (int d = r - 1; d >= 0; --d) {
            if (++id[d] < idims[d]) break;
            id[d] = 0;
          }
        }
      });
      return Err::Ok();
    });
  });
  return Err::Ok();
}

// ---- Expand / Tile ---------------------------------------------------------------------------------

// Expand's shape input only determines the output shape, which is given.
Err CreateExpand(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return UnsupportedDType(args, x.dtype);
  if (y.dtype != x.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dtype %s differs from input %s", args.Describe().c_str(),
                   DT(y.dtype), DT(x.dtype));
  Broadcast bc;
  std::string why = MakeBroadcast(y.dims, {&x.dims}, &bc);
  if (!why.empty()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), why.c_str());
  BySize(es, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([bc](const void* const* in, void* const* o) -> Err {
      BroadcastCopy(bc, static_cast<const T*>(in[0]), static_cast<T*>(o[0]));
      return Err::Ok();
    });
  });
  return Err::Ok();
}

// Tile: output dim d = input dim d * repeats[d]; repeats follow from the
// given output shape (and are checked against a constant repeats input).
Err CreateTile(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return UnsupportedDType(args, x.dtype);
  const int rank = static_cast<int>(x.dims.size());
  if (rank > kMaxRank)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: rank %d is above the supported %d", args.Describe().c_str(), rank, kMaxRank);
  bool ok = y.dtype == x.dtype && static_cast<int>(y.dims.size()) == rank;
  for (int d = 0; ok && d < rank; ++d) ok = x.dims[d] == 0 ? y.dims[d] == 0 : y.dims[d] % x.dims[d] == 0;
  if (ok && args.has_input(1) && args.inputs[1]->const_data) {
    std::vector<int64_t> rep;
    bool has = false;
    if (Err r = ReadIntsParam(args, nullptr, 1, &rep, &has); !r.ok()) return r;
    ok = static_cast<int>(rep.size()) == rank;
    for (int d = 0; ok && d < rank; ++d) ok = y.dims[d] == x.dims[d] * rep[d];
  }
  if (!ok)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s is not a tiling of input %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  if (y.numel == 0) {
    *out = MakeFnKernel([](const void* const*, void* const*) -> Err { return Err::Ok(); });
    return Err::Ok();
  }
  // Rows along the last output axis: each is the input row repeated.
  const std::vector<int64_t> xd = x.dims, yd = y.dims;
  *out = MakeFnKernel([xd, yd, es, rank](const void* const* in, void* const* o) -> Err {
    const uint8_t* src = static_cast<const uint8_t*>(in[0]);
    uint8_t* dst = static_cast<uint8_t*>(o[0]);
    const int64_t in_row = (rank ? xd[rank - 1] : 1) * es, out_row = (rank ? yd[rank - 1] : 1) * es;
    int64_t rows = 1;
    for (int d = 0; d < rank - 1; ++d) rows *= yd[d];
    ParallelFor(rows, std::max<int64_t>(1, kGrain * 4 / out_row), [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) {
        int64_t rem = row, in_off = 0, stride = 1;
        for (int d = rank - 2; d >= 0; --d) {
          in_off += (rem % yd[d]) % xd[d] * stride;
          rem /= yd[d];
          stride *= xd[d];
        }
        const uint8_t* s = src + in_off * in_row;
        uint8_t* t = dst + row * out_row;
        for (int64_t k = 0; k < out_row; k += in_row) std::memcpy(t + k, s, static_cast<size_t>(in_row));
      }
    });
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- Shape / Size / ConstantOfShape / Range ------------------------------------------------------

std::unique_ptr<Kernel> MakeConstOutput(std::vector<int64_t> values) {
  return MakeFnKernel([values](const void* const*, void* const* o) -> Err {
    if (!values.empty()) std::memcpy(o[0], values.data(), values.size() * sizeof(int64_t));
    return Err::Ok();
  });
}

Err CreateShape(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t start = args.attrs().Int("start", 0), end = args.attrs().Int("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  std::vector<int64_t> v;
  for (int64_t d = start; d < end; ++d) v.push_back(x.dims[d]);
  if (y.dtype != TSR_DTYPE_I64 || y.numel != static_cast<int64_t>(v.size()))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output must be i64 with %zu elements, got %s%s",
                   args.Describe().c_str(), v.size(), DT(y.dtype), DimsToString(y.dims).c_str());
  *out = MakeConstOutput(std::move(v));
  return Err::Ok();
}

Err CreateSize(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg& y = *args.outputs[0];
  if (y.dtype != TSR_DTYPE_I64 || y.numel != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output must be an i64 scalar, got %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str());
  *out = MakeConstOutput({args.inputs[0]->numel});
  return Err::Ok();
}

Err CreateConstantOfShape(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg& y = *args.outputs[0];
  uint64_t value = 0;  // bit pattern of one element (zero of any dtype is all-zero bits)
  const tsr_tensor_view* t = args.attrs().Tensor("value");
  if (t) {
    if (t->dtype != y.dtype || t->nbytes != plugin::DTypeSize(t->dtype) || !t->data)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: value must be one %s element, got %s with %llu bytes",
                     args.Describe().c_str(), DT(y.dtype), DT(t->dtype), static_cast<unsigned long long>(t->nbytes));
    std::memcpy(&value, t->data, t->nbytes);
  } else if (y.dtype != TSR_DTYPE_F32) {
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: without a value attribute the output must be f32, got %s",
                   args.Describe().c_str(), DT(y.dtype));
  }
  const int64_t n = y.numel;
  if (!BySize(y.elem_size(), [&](auto tag) {
        using T = decltype(tag);
        T v;
        std::memcpy(&v, &value, sizeof(T));
        *out = MakeFnKernel([n, v](const void* const*, void* const* o) -> Err {
          T* p = static_cast<T*>(o[0]);
          ParallelFor(n, kGrain, [&](int64_t b, int64_t e) { std::fill(p + b, p + e, v); });
          return Err::Ok();
        });
      }))
    return UnsupportedDType(args, y.dtype);
  return Err::Ok();
}

// Range(start, limit, delta): scalars read at run time; the element count
// they imply must equal the given output size.
Err CreateRange(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 3, 3, 1, 1);
  if (!e.ok()) return e;
  const TensorArg& y = *args.outputs[0];
  for (size_t k = 0; k < 3; ++k)
    if (args.inputs[k]->dtype != y.dtype || args.inputs[k]->numel != 1)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu must be a %s scalar", args.Describe().c_str(), k,
                     DT(y.dtype));
  if (y.dtype != TSR_DTYPE_F32 && y.dtype != TSR_DTYPE_F64 && y.dtype != TSR_DTYPE_I16 && y.dtype != TSR_DTYPE_I32 &&
      y.dtype != TSR_DTYPE_I64)
    return UnsupportedDType(args, y.dtype);
  const int64_t n = y.numel;
  const std::string desc = args.Describe();
  auto make = [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([n, desc](const void* const* in, void* const* o) -> Err {
      const T start = *static_cast<const T*>(in[0]), limit = *static_cast<const T*>(in[1]),
              delta = *static_cast<const T*>(in[2]);
      if (delta == T(0)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: delta is 0", desc.c_str());
      const double cnt = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) / static_cast<double>(delta));
      const int64_t want = cnt > 0 ? static_cast<int64_t>(cnt) : 0;
      if (want != n)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: start/limit/delta give %lld elements, output has %lld",
                       desc.c_str(), static_cast<long long>(want), static_cast<long long>(n));
      T* p = static_cast<T*>(o[0]);
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<T>(i) * delta);
      return Err::Ok();
    });
  };
  switch (y.dtype) {
    case TSR_DTYPE_F32: make(float{}); break;
    case TSR_DTYPE_F64: make(double{}); break;
    case TSR_DTYPE_I16: make(int16_t{}); break;
    case TSR_DTYPE_I32: make(int32_t{}); break;
    default: make(int64_t{}); break;
  }
  return Err::Ok();
}

// ---- Trilu -------------------------------------------------------------------------------------------

// Keeps elements with j - i >= k (upper) or j - i <= k (lower) of each
// trailing [N, M] matrix and zeroes the rest; k is read at run time.
Err CreateTrilu(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0) return UnsupportedDType(args, x.dtype);
  if (x.dims.size() < 2)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input must have rank >= 2, got %s", args.Describe().c_str(),
                   DimsToString(x.dims).c_str());
  if (y.dtype != x.dtype || y.dims != x.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not match input %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  const bool has_k = args.has_input(1);
  if (has_k && (args.inputs[1]->dtype != TSR_DTYPE_I64 || args.inputs[1]->numel != 1))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: k must be an i64 scalar", args.Describe().c_str());
  const bool upper = args.attrs().Int("upper", 1) != 0;
  const int64_t rows = x.dims[x.dims.size() - 2], cols = x.dims.back(), mats = x.numel / std::max<int64_t>(rows * cols, 1);
  BySize(es, [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([=](const void* const* in, void* const* o) -> Err {
      const int64_t k = has_k ? *static_cast<const int64_t*>(in[1]) : 0;
      const T* src = static_cast<const T*>(in[0]);
      T* dst = static_cast<T*>(o[0]);
      ParallelFor(mats * rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t b, int64_t en) {
        for (int64_t r = b; r < en; ++r) {
          const int64_t i = r % rows;
          // Kept columns: upper j >= i + k; lower j <= i + k.
          const int64_t lo = upper ? std::clamp<int64_t>(i + k, 0, cols) : 0;
          const int64_t hi = upper ? cols : std::clamp<int64_t>(i + k + 1, 0, cols);
          const T* s = src + r * cols;
          T* d = dst + r * cols;
          for (int64_t j = 0; j < cols; ++j) d[j] = (j >= lo && j < hi) ? s[j] : T(0);
        }
      });
      return Err::Ok();
    });
  });
  return Err::Ok();
}

// ---- Pad ----------------------------------------------------------------------------------------------

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

struct PadPlan {
  int rank = 0;
  int64_t in_dims[kMaxRank], out_dims[kMaxRank], begin[kMaxRank];
  PadMode mode = PadMode::kConstant;
};

// Maps an output coordinate to an input coordinate; -1 = padding value.
inline int64_t PadSource(int64_t o, int64_t begin, int64_t n, PadMode mode) {
  int64_t i = o - begin;
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::kConstant: return -1;
    case PadMode::kEdge: return i < 0 ? 0 : n - 1;
    case PadMode::kWrap: {
      int64_t m = i % n;
      return m < 0 ? m + n : m;
    }
    default: {  // reflect (without repeating the edge); period 2(n-1)
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      int64_t m = i % period;
      if (m < 0) m += period;
      return m < n ? m : period - m;
    }
  }
}

template <typename T>
void RunPad(const PadPlan& p, const T* in, T* out, T value) {
  const int r = p.rank;
  const int64_t inner = p.out_dims[r - 1], in_inner = p.in_dims[r - 1], b_inner = p.begin[r - 1];
  int64_t rows = 1;
  for (int d = 0; d < r - 1; ++d) rows *= p.out_dims[d];
  if (inner == 0 || rows == 0) return;
  // Columns of the last axis that copy straight from the input row.
  const int64_t c0 = std::clamp<int64_t>(b_inner, 0, inner), c1 = std::clamp<int64_t>(b_inner + in_inner, 0, inner);
  ParallelFor(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      T* dst = out + row * inner;
      int64_t rem = row, off = 0, stride = in_inner;
      bool pad_row = false;
      for (int d = r - 2; d >= 0; --d) {
        int64_t s = PadSource(rem % p.out_dims[d], p.begin[d], p.in_dims[d], p.mode);
        rem /= p.out_dims[d];
        if (s < 0) pad_row = true;
        off += s * stride;
        stride *= p.in_dims[d];
      }
      if (pad_row) {
        std::fill(dst, dst + inner, value);
        continue;
      }
      const T* src = in + off;
      if (c1 > c0) std::memcpy(dst + c0, src + (c0 - b_inner), static_cast<size_t>(c1 - c0) * sizeof(T));
      for (int64_t j = 0; j < c0; ++j) {
        int64_t s = PadSource(j, b_inner, in_inner, p.mode);
        dst[j] = s < 0 ? value : src[s];
      }
      for (int64_t j = std::max(c1, c0); j < inner; ++j) {
        int64_t s = PadSource(j, b_inner, in_inner, p.mode);
        dst[j] = s < 0 ? value : src[s];
      }
    }
  });
}

// Bit pattern of float `v` converted to dtype `dt` (for Pad's old `value`
// attribute); round-to-nearest-even for f16/bf16.
uint64_t FloatToBits(float v, int32_t dt) {
  uint64_t r = 0;
  uint32_t f;
  std::memcpy(&f, &v, 4);
  switch (dt) {
    case TSR_DTYPE_F32: r = f; break;
    case TSR_DTYPE_F64: { double d = v; std::memcpy(&r, &d, 8); break; }
    case TSR_DTYPE_BF16: r = (f + 0x7fff + ((f >> 16) & 1)) >> 16; break;
    case TSR_DTYPE_F16: {
      const uint32_t sign = (f >> 16) & 0x8000;
      const int32_t exp = static_cast<int32_t>((f >> 23) & 0xff) - 127 + 15;
      uint32_t man = f & 0x7fffff;
      if (((f >> 23) & 0xff) == 0xff) r = sign | 0x7c00 | (man ? 0x200 : 0);
      else if (exp >= 31) r = sign | 0x7c00;
      else if (exp <= 0) {
        if (exp < -10) r = sign;
        else {
          man |= 0x800000;
          const int shift = 14 - exp;
          uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
          if (rem > half || (rem == half && (h & 1))) ++h;
          r = sign | h;
        }
      } else {
        uint32_t h = sign | (static_cast<uint32_t>(exp) << 10) | (man >> 13), rem = man & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
        r = h;
      }
      break;
    }
    case TSR_DTYPE_BOOL: r = v != 0; break;
    case TSR_DTYPE_U8: case TSR_DTYPE_U16: case TSR_DTYPE_U32: case TSR_DTYPE_U64:
      r = static_cast<uint64_t>(v); break;
    default: r = static_cast<uint64_t>(static_cast<int64_t>(v)); break;  // signed ints (two's complement)
  }
  return r;
}

Err CreatePad(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  const bool old = args.node->opset < 11;
  Err e = CheckArity(args, old ? 1 : 2, old ? 1 : 4, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  const int64_t es = x.elem_size();
  if (es == 0 || y.dtype != x.dtype) return UnsupportedDType(args, x.dtype);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (rank == 0 || rank > kMaxRank)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: rank %lld is not supported (1..%d)", args.Describe().c_str(),
                   static_cast<long long>(rank), kMaxRank);
  const std::string mode_s = args.attrs().String("mode", "constant");
  PadPlan plan;
  if (mode_s == "constant") plan.mode = PadMode::kConstant;
  else if (mode_s == "reflect") plan.mode = PadMode::kReflect;
  else if (mode_s == "edge") plan.mode = PadMode::kEdge;
  else if (mode_s == "wrap") plan.mode = PadMode::kWrap;
  else
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: mode '%s' is not supported (constant, reflect, edge, wrap)",
                   args.Describe().c_str(), mode_s.c_str());
  std::vector<int64_t> pads, axes;
  bool has_pads = false, has_axes = false;
  if (Err r = ReadIntsParam(args, old ? "pads" : nullptr, 1, &pads, &has_pads); !r.ok()) return r;
  if (!has_pads) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: pads are missing", args.Describe().c_str());
  if (!old)
    if (Err r = ReadIntsParam(args, nullptr, 3, &axes, &has_axes); !r.ok()) return r;
  if (!has_axes)
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  if (pads.size() != 2 * axes.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: pads has %zu entries, expected %zu", args.Describe().c_str(),
                   pads.size(), 2 * axes.size());
  std::vector<int64_t> begin(static_cast<size_t>(rank), 0), end(static_cast<size_t>(rank), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t a;
    if (!NormalizeAxis(axes[i], rank, &a))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range", args.Describe().c_str(),
                     static_cast<long long>(axes[i]));
    begin[a] = pads[i];
    end[a] = pads[i + axes.size()];
  }
  plan.rank = static_cast<int>(rank);
  std::vector<int64_t> want;
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t n = x.dims[d], o = n + begin[d] + end[d];
    want.push_back(o);
    plan.in_dims[d] = n;
    plan.out_dims[d] = o;
    plan.begin[d] = begin[d];
    if (o < 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: pads on axis %lld remove more than the dim %lld",
                     args.Describe().c_str(), static_cast<long long>(d), static_cast<long long>(n));
    if (plan.mode != PadMode::kConstant && o > 0 && n == 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s padding of an empty axis %lld", args.Describe().c_str(),
                     mode_s.c_str(), static_cast<long long>(d));
  }
  if (y.dims != want)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s does not match padded shape %s", args.Describe().c_str(),
                   DimsToString(y.dims).c_str(), DimsToString(want).c_str());
  // Constant value: opset < 11 attribute 'value' (a float, converted to the
  // dtype); else optional scalar input 2 of the data's dtype (read at run time).
  const uint64_t attr_bits = FloatToBits(args.attrs().Float("value", 0.f), x.dtype);
  const bool value_input = !old && args.has_input(2);
  if (value_input && (args.inputs[2]->dtype != x.dtype || args.inputs[2]->numel != 1))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: constant_value must be a %s scalar", args.Describe().c_str(),
                   DT(x.dtype));
  BySize(es, [&](auto tag) {
    using T = decltype(tag);
    T attr_value;
    std::memcpy(&attr_value, &attr_bits, sizeof(T));
    *out = MakeFnKernel([plan, attr_value, value_input](const void* const* in, void* const* o) -> Err {
      T v = attr_value;
      if (value_input) std::memcpy(&v, in[2], sizeof(T));
      RunPad(plan, static_cast<const T*>(in[0]), static_cast<T*>(o[0]), v);
      return Err::Ok();
    });
  });
  return Err::Ok();
}

// ---- claim checks -------------------------------------------------------------------------------------------

std::string ClaimData(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimFixedSize(n, g, 0); }
std::string ClaimConcat(const tsr_node_view& n, const tsr_graph_view& g) {
  // Concat's inputs share one dtype; check the first present one.
  for (uint32_t i = 0; i < n.num_inputs; ++i)
    if (n.inputs[i] >= 0) return ClaimFixedSize(n, g, i);
  return "no inputs";
}
std::string ClaimSlice(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimFixedSize(n, g, 0);
  if (!r.empty() || n.opset < 10) return r;
  return ClaimConstInputs(n, g, 1, 4);
}
std::string ClaimGather(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimFixedSize(n, g, 0);
  return r.empty() ? ClaimDTypeIn(n, g, 1, {TSR_DTYPE_I32, TSR_DTYPE_I64}) : r;
}
std::string ClaimRange(const tsr_node_view& n, const tsr_graph_view& g) {
  return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32, TSR_DTYPE_F64, TSR_DTYPE_I16, TSR_DTYPE_I32, TSR_DTYPE_I64});
}
std::string ClaimPad(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimFixedSize(n, g, 0);
  if (!r.empty()) return r;
  std::string mode = plugin::NodeAttrs(n).String("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    return "CPU Pad does not support mode '" + mode + "'";
  if (n.opset < 11) return "";
  r = ClaimConstInputs(n, g, 1, 1);
  return r.empty() ? ClaimConstInputs(n, g, 3, 3) : r;
}

}  // namespace

void RegisterTensorKernels(KernelRegistry& r) {
  r.Add({"", "Reshape", &CreateReshapeLike, &ClaimData});
  r.Add({"", "Flatten", &CreateReshapeLike, &ClaimData});
  r.Add({"", "Squeeze", &CreateReshapeLike, &ClaimData});
  r.Add({"", "Unsqueeze", &CreateReshapeLike, &ClaimData});
  r.Add({"", "Transpose", &CreateTranspose, &ClaimData});
  r.Add({"", "Concat", &CreateConcat, &ClaimConcat});
  r.Add({"", "Split", &CreateSplit, &ClaimData});
  r.Add({"", "Slice", &CreateSlice, &ClaimSlice});
  r.Add({"", "Gather", &CreateGather, &ClaimGather});
  r.Add({"", "GatherElements", &CreateGatherElements, &ClaimGather});
  r.Add({"", "Expand", &CreateExpand, &ClaimData});
  r.Add({"", "Tile", &CreateTile, &ClaimData});
  r.Add({"", "Shape", &CreateShape, nullptr});
  r.Add({"", "Size", &CreateSize, nullptr});
  r.Add({"", "ConstantOfShape", &CreateConstantOfShape, nullptr});
  r.Add({"", "Range", &CreateRange, &ClaimRange});
  r.Add({"", "Trilu", &CreateTrilu, &ClaimData});
  r.Add({"", "Pad", &CreatePad, &ClaimPad});
}

}  // namespace tessera::cpu
