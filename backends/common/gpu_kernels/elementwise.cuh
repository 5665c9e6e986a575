// Elementwise GPU kernels written once for CUDA and HIP: a register-program
// interpreter (single ops, tessera.FusedElementwise chains, GEMM/conv
// epilogues), comparisons and logic (bool output), integer arithmetic, Where,
// Cast, strided copies (Transpose/Expand/Slice/Concat/Split), Gather,
// GatherElements, Trilu and the per-channel affine of BatchNormalization.
// Float types compute in float. Every kernel is a grid-stride loop, so any
// grid size is correct; in-place (out == an input of the same layout) is safe
// because each element is read before it is written by the same thread.
#pragma once

#include "backends/common/gpu_kernels/geometry.h"
#include "backends/common/gpu_kernels/gpu_macros.cuh"

namespace tessera::gpu {

TSR_GPU_DEVICE float EwApply(int32_t op, float a, float b, float p1, float p2) {
  switch (op) {
    case kEwAdd: return a + b;
    case kEwSub: return a - b;
    case kEwMul: return a * b;
    case kEwDiv: return a / b;
    case kEwMax: return (a != a || b != b) ? a + b : fmaxf(a, b);
    case kEwMin: return (a != a || b != b) ? a + b : fminf(a, b);
    case kEwPow: return powf(a, b);
    case kEwNeg: return -a;
    case kEwAbs: return fabsf(a);
    case kEwRelu: return a > 0.f ? a : (a != a ? a : 0.f);
    case kEwLeakyRelu: return a >= 0.f ? a : a * p1;
    case kEwSigmoid: return 1.f / (1.f + expf(-a));
    case kEwTanh: return tanhf(a);
    case kEwExp: return expf(a);
    case kEwLog: return logf(a);
    case kEwSqrt: return sqrtf(a);
    case kEwReciprocal: return 1.f / a;
    case kEwErf: return erff(a);
    case kEwGelu: return 0.5f * a * (1.f + erff(a * 0.70710678118654752f));
    case kEwGeluTanh: return 0.5f * a * (1.f + tanhf(0.79788456080286536f * (a + 0.044715f * a * a * a)));
    case kEwClip: return a != a ? a : fminf(fmaxf(a, p1), p2);
    case kEwHardSigmoid: return fmaxf(0.f, fminf(1.f, p1 * a + p2));
    case kEwHardSwish: return a * fmaxf(0.f, fminf(1.f, a / 6.f + 0.5f));
    case kEwSoftplus: return a > 20.f ? a : log1pf(expf(a));
    case kEwSilu: return a / (1.f + expf(-a));
    case kEwSwish: return a / (1.f + expf(-p1 * a));
    default: return a;  // kEwCopy
  }
}

template <typename T>
TSR_GPU_DEVICE float EwLoad(const T* p, const EwProgram& g, int j, int64_t i) {
  if (g.flat[j] == 1) return TsrToF(p[i]);
  if (g.flat[j] == 2) return TsrToF(p[0]);
  int64_t off = 0, rem = i;
  for (int d = g.rank - 1; d >= 0; --d) {
    const int64_t q = rem / g.dims[d];
    off += (rem - q * g.dims[d]) * g.strides[j][d];
    rem = q;
  }
  return TsrToF(p[off]);
}

// Inputs are a small array of pointers passed by value.
template <typename T>
struct EwInputs {
  const T* p[kMaxEwInputs];
};

// out[i] = program(inputs at i). `residual_scale`: none; see EwProgram.
template <typename T>
TSR_GPU_GLOBAL void EwProgramKernel(EwProgram g, EwInputs<T> in, T* out, int64_t n) {
  TSR_GPU_FOR(i, n) {
    float r[kMaxEwInputs + kMaxEwConsts + kMaxEwInstr];
    for (int j = 0; j < g.num_inputs; ++j) r[j] = EwLoad(in.p[j], g, j, i);
    for (int c = 0; c < g.num_consts; ++c) r[g.num_inputs + c] = g.consts[c];
    const int base = g.num_inputs + g.num_consts;
    for (int k = 0; k < g.num_instr; ++k) {
      const float a = r[g.a[k]];
      const float b = g.b[k] >= 0 ? r[g.b[k]] : 0.f;
      r[base + k] = EwApply(g.op[k], a, b, g.p1[k], g.p2[k]);
    }
    out[i] = TsrFromF<T>(r[base + g.num_instr - 1]);
  }
}

// Fast path of EwProgramKernel for one instruction over inputs that are
// laid out like the output or scalars (flat[j] != 0): no register file.
template <typename T>
TSR_GPU_GLOBAL void EwSimpleKernel(EwProgram g, EwInputs<T> in, T* out, int64_t n) {
  const int32_t op = g.op[0];
  const bool binary = g.b[0] >= 0;
  const T* pa = in.p[g.a[0]];
  const T* pb = binary ? in.p[g.b[0]] : nullptr;
  const bool sa = g.flat[g.a[0]] == 2, sb = binary && g.flat[g.b[0]] == 2;
  const float p1 = g.p1[0], p2 = g.p2[0];
  TSR_GPU_FOR(i, n) {
    const float a = TsrToF(pa[sa ? 0 : i]);
    const float b = binary ? TsrToF(pb[sb ? 0 : i]) : 0.f;
    out[i] = TsrFromF<T>(EwApply(op, a, b, p1, p2));
  }
}

// True when EwSimpleKernel computes the same as EwProgramKernel for `g`.
TSR_GPU_HOST_DEVICE bool EwIsSimple(const EwProgram& g) {
  if (g.num_instr != 1 || g.num_consts != 0) return false;
  if (g.a[0] < 0 || g.a[0] >= g.num_inputs || g.b[0] >= g.num_inputs) return false;
  for (int j = 0; j < g.num_inputs; ++j)
    if (g.flat[j] == 0) return false;
  return true;
}

TSR_GPU_DEVICE void BcastOffsets(const BcastGeom& g, int64_t i, int nops, int64_t* off) {
  off[0] = off[1] = off[2] = 0;
  int64_t rem = i;
  for (int d = g.rank - 1; d >= 0; --d) {
    const int64_t q = rem / g.dims[d];
    const int64_t idx = rem - q * g.dims[d];
    for (int k = 0; k < nops; ++k) off[k] += idx * g.strides[k][d];
    rem = q;
  }
}

// Float-type comparison: C = compute type (float for float types, the type itself for integers).
template <typename T, typename C>
TSR_GPU_DEVICE C CmpLoad(const T* p, int64_t o);
template <>
TSR_GPU_DEVICE float CmpLoad<float, float>(const float* p, int64_t o) { return p[o]; }
template <>
TSR_GPU_DEVICE float CmpLoad<TsrHalf, float>(const TsrHalf* p, int64_t o) { return TsrToF(p[o]); }
template <>
TSR_GPU_DEVICE float CmpLoad<TsrBF16, float>(const TsrBF16* p, int64_t o) { return TsrToF(p[o]); }
template <>
TSR_GPU_DEVICE int32_t CmpLoad<int32_t, int32_t>(const int32_t* p, int64_t o) { return p[o]; }
template <>
TSR_GPU_DEVICE int64_t CmpLoad<int64_t, int64_t>(const int64_t* p, int64_t o) { return p[o]; }
template <>
TSR_GPU_DEVICE uint8_t CmpLoad<uint8_t, uint8_t>(const uint8_t* p, int64_t o) { return p[o]; }

template <typename T, typename C>
TSR_GPU_GLOBAL void CompareKernel(int32_t op, BcastGeom g, const T* a, const T* b, uint8_t* out, int64_t n) {
  TSR_GPU_FOR(i, n) {
    int64_t off[3];
    BcastOffsets(g, i, 2, off);
    const C x = CmpLoad<T, C>(a, off[0]), y = CmpLoad<T, C>(b, off[1]);
    bool r;
    switch (op) {
      case kCmpEqual: r = x == y; break;
      case kCmpGreater: r = x > y; break;
      case kCmpGreaterOrEqual: r = x >= y; break;
      case kCmpLess: r = x < y; break;
      case kCmpLessOrEqual: r = x <= y; break;
      case kCmpAnd: r = (x != C(0)) && (y != C(0)); break;
      case kCmpOr: r = (x != C(0)) || (y != C(0)); break;
      default: r = (x != C(0)) != (y != C(0)); break;
    }
    out[i] = r ? 1 : 0;
  }
}

// Integer arithmetic (Add Sub Mul Div Max Min); Div truncates toward zero
// (ONNX integer Div); division by zero yields 0 instead of trapping.
template <typename T>
TSR_GPU_GLOBAL void IntBinaryKernel(int32_t op, BcastGeom g, const T* a, const T* b, T* out, int64_t n) {
  TSR_GPU_FOR(i, n) {
    int64_t off[3];
    BcastOffsets(g, i, 2, off);
    const T x = a[off[0]], y = b[off[1]];
    T r;
    switch (op) {
      case kEwAdd: r = x + y; break;
      case kEwSub: r = x - y; break;
      case kEwMul: r = x * y; break;
      case kEwDiv: r = y == T(0) ? T(0) : x / y; break;
      case kEwMax: r = x > y ? x : y; break;
      case kEwMin: r = x < y ? x : y; break;
      case kEwNeg: r = -x; break;
      case kEwAbs: r = x < T(0) ? -x : x; break;
      default: r = x; break;
    }
    out[i] = r;
  }
}

TSR_GPU_GLOBAL void NotKernel(const uint8_t* a, uint8_t* out, int64_t n) {
  TSR_GPU_FOR(i, n) out[i] = a[i] ? 0 : 1;
}

// Where(cond, x, y) on elements of any type of size sizeof(E).
template <typename E>
TSR_GPU_GLOBAL void WhereKernel(BcastGeom g, const uint8_t* c, const E* x, const E* y, E* out, int64_t n) {
  TSR_GPU_FOR(i, n) {
    int64_t off[3];
    BcastOffsets(g, i, 3, off);
    out[i] = c[off[0]] ? x[off[1]] : y[off[2]];
  }
}

// Cast: through double for integer<->float exactness of i32; bool = (x != 0).
template <typename S>
TSR_GPU_DEVICE double CastIn(S v) { return static_cast<double>(v); }
template <>
TSR_GPU_DEVICE double CastIn<TsrHalf>(TsrHalf v) { return static_cast<double>(TsrToF(v)); }
template <>
TSR_GPU_DEVICE double CastIn<TsrBF16>(TsrBF16 v) { return static_cast<double>(TsrToF(v)); }
template <typename D>
TSR_GPU_DEVICE D CastOut(double v) {
  // Float -> integer: truncation (C semantics, as ONNX Cast); NaN -> 0.
  return v != v ? D(0) : static_cast<D>(v);
}
template <>
TSR_GPU_DEVICE float CastOut<float>(double v) { return static_cast<float>(v); }
template <>
TSR_GPU_DEVICE double CastOut<double>(double v) { return v; }
template <>
TSR_GPU_DEVICE TsrHalf CastOut<TsrHalf>(double v) { return TsrFromF<TsrHalf>(static_cast<float>(v)); }
template <>
TSR_GPU_DEVICE TsrBF16 CastOut<TsrBF16>(double v) { return TsrFromF<TsrBF16>(static_cast<float>(v)); }

template <typename S, typename D, bool kToBool>
TSR_GPU_GLOBAL void CastKernel(const S* in, D* out, int64_t n) {
  TSR_GPU_FOR(i, n) {
    const double v = CastIn<S>(in[i]);
    if constexpr (kToBool) {
      out[i] = static_cast<D>(v != 0.0 ? 1 : 0);
    } else {
      out[i] = CastOut<D>(v);
    }
  }
}

// Strided element copy (see CopyGeom).
template <typename E>
TSR_GPU_GLOBAL void StridedCopyKernel(CopyGeom g, const E* src, E* dst, int64_t n) {
  TSR_GPU_FOR(i, n) {
    int64_t so = g.src_offset, dof = g.dst_offset, rem = i;
    for (int d = g.rank - 1; d >= 0; --d) {
      const int64_t q = rem / g.dims[d];
      const int64_t idx = rem - q * g.dims[d];
      so += idx * g.src_strides[d];
      dof += idx * g.dst_strides[d];
      rem = q;
    }
    dst[dof] = src[so];
  }
}

// Gather along an axis: data viewed as [outer, axis_dim, inner], indices
// flattened to [num_idx]; out = [outer, num_idx, inner]. Negative indices
// count from the end; an index out of range sets *bad (the host reports it)
// and writes zeros.
template <typename E, typename I>
TSR_GPU_GLOBAL void GatherKernel(const E* data, const I* idx, E* out, int64_t outer, int64_t axis_dim,
                                 int64_t num_idx, int64_t inner, int32_t* bad) {
  const int64_t n = outer * num_idx * inner;
  TSR_GPU_FOR(i, n) {
    const int64_t in_ = i % inner;
    const int64_t j = (i / inner) % num_idx;
    const int64_t o = i / (inner * num_idx);
    int64_t k = static_cast<int64_t>(idx[j]);
    if (k < 0) k += axis_dim;
    if (k < 0 || k >= axis_dim) {
      if (bad) *bad = 1;
      out[i] = E{};
      continue;
    }
    out[i] = data[(o * axis_dim + k) * inner + in_];
  }
}

// GatherElements: out[..., j, ...] = data[..., idx[..., j, ...], ...] along
// `axis`; index and output share dims (out_dims), data has data_dims.
template <typename E, typename I>
TSR_GPU_GLOBAL void GatherElementsKernel(const E* data, const I* idx, E* out, int32_t rank, int32_t axis,
                                         BcastGeom dims_pair, int64_t n, int32_t* bad) {
  // dims_pair.dims = output dims; dims_pair.strides[0] = data strides (elements).
  TSR_GPU_FOR(i, n) {
    int64_t rem = i, off = 0, k = static_cast<int64_t>(idx[i]);
    const int64_t axis_dim = dims_pair.strides[1][axis];  // data's axis dim
    if (k < 0) k += axis_dim;
    if (k < 0 || k >= axis_dim) {
      if (bad) *bad = 1;
      out[i] = E{};
      continue;
    }
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t q = rem / dims_pair.dims[d];
      const int64_t c = rem - q * dims_pair.dims[d];
      off += (d == axis ? k : c) * dims_pair.strides[0][d];
      rem = q;
    }
    out[i] = data[off];
  }
}

// Trilu over the last two dims [rows, cols]: keeps j - i <= k (lower) or
// j - i >= k (upper), zero elsewhere.
template <typename E>
TSR_GPU_GLOBAL void TriluKernel(const E* in, E* out, int64_t rows, int64_t cols, int64_t k, int32_t upper, int64_t n) {
  TSR_GPU_FOR(i, n) {
    const int64_t c = i % cols, r = (i / cols) % rows;
    const bool keep = upper ? (c - r >= k) : (c - r <= k);
    out[i] = keep ? in[i] : E{};
  }
}

// BatchNormalization (inference): y = (x - mean) * scale / sqrt(var + eps) + bias
// over x = [N, C, inner]; per-channel params are in float (precomputed by the
// host as a = scale/sqrt(var+eps), b = bias - mean*a).
template <typename T>
TSR_GPU_GLOBAL void ChannelAffineKernel(const T* x, const float* a, const float* b, T* y, int64_t C, int64_t inner,
                                        int64_t n) {
  TSR_GPU_FOR(i, n) {
    const int64_t c = (i / inner) % C;
    y[i] = TsrFromF<T>(TsrToF(x[i]) * a[c] + b[c]);
  }
}

// Fills out[0..n) with one value of size sizeof(E).
template <typename E>
TSR_GPU_GLOBAL void FillKernel(E* out, E v, int64_t n) {
  TSR_GPU_FOR(i, n) out[i] = v;
}

}  // namespace tessera::gpu
