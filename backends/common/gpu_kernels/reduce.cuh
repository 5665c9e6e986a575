// Reductions, softmax and layer normalization, written once for CUDA and HIP.
// Shapes are viewed as [outer, R, inner] (R = the reduced/normalized extent).
// inner == 1 (the common last-axis case): one block per row, block-wide
// reductions; otherwise one thread per (outer, inner) pair walks R with a
// stride of `inner` (coalesced across threads). Accumulation is in float.
#pragma once

#include "backends/common/gpu_kernels/geometry.h"
#include "backends/common/gpu_kernels/gpu_macros.cuh"

namespace tessera::gpu {

// ReduceSum/Mean/Max/Min, rows of length R (inner == 1): grid.x = rows.
template <typename T>
TSR_GPU_GLOBAL void ReduceRowsKernel(int32_t op, const T* in, T* out, int64_t R) {
  TSR_GPU_SHARED float scratch[32];
  const int64_t row = TSR_GPU_BID_X;
  const T* x = in + row * R;
  const bool is_max = op == kRedMax, is_min = op == kRedMin;
  float acc = (is_max ? -INFINITY : is_min ? INFINITY : 0.f);
  bool nan = false;
  for (int64_t j = TSR_GPU_TID_X; j < R; j += TSR_GPU_BDIM_X) {
    const float v = TsrToF(x[j]);
    if (v != v) nan = true;
    acc = is_max ? fmaxf(acc, v) : is_min ? fminf(acc, v) : acc + v;
  }
  if (is_min) acc = -acc;
  float r = BlockReduce(acc, is_max || is_min, scratch);
  const float any_nan = BlockReduce(nan ? 1.f : 0.f, true, scratch);
  if (is_min) r = -r;
  if (op == kRedMean) r = R > 0 ? r / static_cast<float>(R) : NAN;
  if ((is_max || is_min) && any_nan > 0.f) r = NAN;
  if (TSR_GPU_TID_X == 0) out[row] = TsrFromF<T>(r);
}

// General [outer, R, inner]: one thread per output element.
template <typename T>
TSR_GPU_GLOBAL void ReduceStridedKernel(int32_t op, const T* in, T* out, int64_t outer, int64_t R, int64_t inner) {
  TSR_GPU_FOR(i, outer * inner) {
    const int64_t o = i / inner, k = i % inner;
    const T* x = in + o * R * inner + k;
    const bool is_max = op == kRedMax, is_min = op == kRedMin;
    float acc = (is_max ? -INFINITY : is_min ? INFINITY : 0.f);
    bool nan = false;
    for (int64_t j = 0; j < R; ++j) {
      const float v = TsrToF(x[j * inner]);
      if (v != v) nan = true;
      acc = is_max ? fmaxf(acc, v) : is_min ? fminf(acc, v) : acc + v;
    }
    if (op == kRedMean) acc = R > 0 ? acc / static_cast<float>(R) : NAN;
    if ((is_max || is_min) && nan) acc = NAN;
    out[i] = TsrFromF<T>(acc);
  }
}

// Softmax / LogSoftmax over rows (inner == 1): grid.x = rows.
template <typename T>
TSR_GPU_GLOBAL void SoftmaxRowsKernel(const T* in, T* out, int64_t C, int32_t log_softmax) {
  TSR_GPU_SHARED float scratch[32];
  const int64_t row = TSR_GPU_BID_X;
  const T* x = in + row * C;
  T* y = out + row * C;
  float m = -INFINITY;
  for (int64_t j = TSR_GPU_TID_X; j < C; j += TSR_GPU_BDIM_X) m = fmaxf(m, TsrToF(x[j]));
  m = BlockReduce(m, true, scratch);
  float s = 0.f;
  for (int64_t j = TSR_GPU_TID_X; j < C; j += TSR_GPU_BDIM_X) s += expf(TsrToF(x[j]) - m);
  s = BlockReduce(s, false, scratch);
  const float inv = 1.f / s, logs = logf(s);
  for (int64_t j = TSR_GPU_TID_X; j < C; j += TSR_GPU_BDIM_X) {
    const float v = TsrToF(x[j]) - m;
    y[j] = TsrFromF<T>(log_softmax ? v - logs : expf(v) * inv);
  }
}

// Softmax over the middle axis of [outer, C, inner]: one thread per (outer, inner).
template <typename T>
TSR_GPU_GLOBAL void SoftmaxStridedKernel(const T* in, T* out, int64_t outer, int64_t C, int64_t inner,
                                         int32_t log_softmax) {
  TSR_GPU_FOR(i, outer * inner) {
    const int64_t o = i / inner, k = i % inner;
    const T* x = in + o * C * inner + k;
    T* y = out + o * C * inner + k;
    float m = -INFINITY;
    for (int64_t j = 0; j < C; ++j) m = fmaxf(m, TsrToF(x[j * inner]));
    float s = 0.f;
    for (int64_t j = 0; j < C; ++j) s += expf(TsrToF(x[j * inner]) - m);
    const float inv = 1.f / s, logs = logf(s);
    for (int64_t j = 0; j < C; ++j) {
      const float v = TsrToF(x[j * inner]) - m;
      y[j * inner] = TsrFromF<T>(log_softmax ? v - logs : expf(v) * inv);
    }
  }
}

// LayerNormalization over rows of length C: y = (x - mean) / sqrt(var + eps)
// * scale + bias (scale/bias length C, bias may be null). Two-pass in float
// (mean, then centred variance). Optional mean / inv_std outputs (float, one
// per row) may be null. grid.x = rows.
template <typename T>
TSR_GPU_GLOBAL void LayerNormRowsKernel(const T* in, const T* scale, const T* bias, T* out, float* mean_out,
                                        float* inv_std_out, int64_t C, float eps) {
  TSR_GPU_SHARED float scratch[32];
  const int64_t row = TSR_GPU_BID_X;
  const T* x = in + row * C;
  T* y = out + row * C;
  float s = 0.f;
  for (int64_t j = TSR_GPU_TID_X; j < C; j += TSR_GPU_BDIM_X) s += TsrToF(x[j]);
  const float mean = BlockReduce(s, false, scratch) / static_cast<float>(C);
  float v = 0.f;
  for (int64_t j = TSR_GPU_TID_X; j < C; j += TSR_GPU_BDIM_X) {
    const float d = TsrToF(x[j]) - mean;
    v += d * d;
  }
  const float var = BlockReduce(v, false, scratch) / static_cast<float>(C);
  const float inv = rsqrtf(var + eps);
  for (int64_t j = TSR_GPU_TID_X; j < C; j += TSR_GPU_BDIM_X) {
    float r = (TsrToF(x[j]) - mean) * inv * TsrToF(scale[j]);
    if (bias) r += TsrToF(bias[j]);
    y[j] = TsrFromF<T>(r);
  }
  if (TSR_GPU_TID_X == 0) {
    if (mean_out) mean_out[row] = mean;
    if (inv_std_out) inv_std_out[row] = inv;
  }
}

}  // namespace tessera::gpu

namespace tessera::gpu {

template <typename T>
TSR_GPU_GLOBAL void Pool2dKernel(PoolArgs a, const T* x, T* y) {
  TSR_GPU_FOR(i, a.NC * a.OH * a.OW) {
    const int64_t ow = i % a.OW, oh = (i / a.OW) % a.OH, nc = i / (a.OW * a.OH);
    const T* xp = x + nc * a.H * a.W;
    float acc = a.is_max ? -INFINITY : 0.f;
    int64_t cnt = 0, padded = 0;
    for (int32_t r = 0; r < a.kh; ++r) {
      const int64_t ih = oh * a.sh - a.pt + static_cast<int64_t>(r) * a.dh;
      for (int32_t c = 0; c < a.kw; ++c) {
        const int64_t iw = ow * a.sw - a.pl + static_cast<int64_t>(c) * a.dw;
        if (ih >= -a.pt && ih < a.H + a.pb && iw >= -a.pl && iw < a.W + a.pr) ++padded;
        if (ih < 0 || ih >= a.H || iw < 0 || iw >= a.W) continue;
        const float v = TsrToF(xp[ih * a.W + iw]);
        acc = a.is_max ? (v != v || v > acc ? v : acc) : acc + v;
        ++cnt;
      }
    }
    if (!a.is_max) {
      const int64_t div = a.count_include_pad ? padded : cnt;
      acc = div > 0 ? acc / static_cast<float>(div) : NAN;
    }
    y[i] = TsrFromF<T>(acc);
  }
}

}  // namespace tessera::gpu

namespace tessera::gpu {

// One thread per output element; float accumulation. Correct for any shape
// and alignment, not fast: the fallback GEMM.
template <typename T>
TSR_GPU_GLOBAL void GemmNaiveKernel(GemmArgs g, const T* A, const T* B, const T* C, T* Y) {
  TSR_GPU_FOR(i, g.batch * g.M * g.N) {
    const int64_t n = i % g.N, m = (i / g.N) % g.M, b = i / (g.M * g.N);
    const T* a = A + b * g.stride_a;
    const T* bb = B + b * g.stride_b;
    float acc = 0.f;
    for (int64_t k = 0; k < g.K; ++k) {
      const float x = TsrToF(g.ta ? a[k * g.lda + m] : a[m * g.lda + k]);
      const float y = TsrToF(g.tb ? bb[n * g.ldb + k] : bb[k * g.ldb + n]);
      acc += x * y;
    }
    float r = g.alpha * acc;
    if (C) r += g.beta * TsrToF(C[b * g.stride_c + m * g.ldc + n]);
    Y[i] = TsrFromF<T>(r);
  }
}

}  // namespace tessera::gpu
