// tessera.FusedAttention, flash-attention style (one pass over the keys with
// an online softmax; the [Sq, Sk] score matrix is never materialized),
// written once for CUDA and HIP. Correctness over speed: no tensor cores.
//
// Block = rows_per_block warps; warp w owns query row i = blockIdx.x *
// rows_per_block + w of head (b, h) = blockIdx.y. Keys are processed in tiles
// of kAttnKeyTile (= 32) staged in shared memory as float ([tile][D+1], padded
// against bank conflicts); lane l scores key l of the tile, the warp takes the
// tile max, rescales its running sum and output, and every lane accumulates
// the output dims d = lane + 32 t. Causal blocks stop at their last row's key.
// A row whose keys are all masked yields NaN (as the unfused Softmax would).
// Dynamic shared memory: AttnSharedFloats floats (the host's
// ChooseAttentionTiling in backends/cuda/cuda_host.h computes the same size).
// Assumes 32-lane warps (a HIP build for 64-wide wavefronts needs
// kAttnKeyTile = 64 and 64-lane output striding).
#pragma once

#include "backends/common/gpu_kernels/geometry.h"
#include "backends/common/gpu_kernels/gpu_macros.cuh"

namespace tessera::gpu {

TSR_GPU_HOST_DEVICE int64_t AttnSharedFloats(int64_t D, int64_t Dv, int rows) {
  return kAttnKeyTile * (D + 1) + kAttnKeyTile * (Dv + 1) + static_cast<int64_t>(rows) * D;
}

template <typename T>
TSR_GPU_DEVICE float AttnMask(const AttnArgs& a, const void* mask, int64_t b, int64_t h, int64_t i, int64_t j) {
  const int64_t off = b * a.mstride[0] + h * a.mstride[1] + i * a.mstride[2] + j * a.mstride[3];
  switch (a.mask_kind) {
    case 1: return static_cast<const uint8_t*>(mask)[off] ? 0.f : -INFINITY;
    case 2: return static_cast<const float*>(mask)[off];
    case 3: return TsrToF(static_cast<const T*>(mask)[off]);
    default: return 0.f;
  }
}

template <typename T>
TSR_GPU_GLOBAL void FlashAttentionKernel(AttnArgs a, const T* q, const T* k, const T* v, const void* mask, T* y) {
  TSR_GPU_DYNAMIC_SHARED(float, smem);
  const int64_t D = a.D, Dv = a.Dv;
  float* ks = smem;                                  // [tile][D+1]
  float* vs = ks + kAttnKeyTile * (D + 1);           // [tile][Dv+1]
  float* qs = vs + kAttnKeyTile * (Dv + 1);          // [rows][D]
  const int lane = TSR_GPU_TID_X % TSR_GPU_WARP, warp = TSR_GPU_TID_X / TSR_GPU_WARP;
  const int64_t bh = TSR_GPU_BID_Y, b = bh / a.H, h = bh % a.H;
  const int64_t row0 = TSR_GPU_BID_X * a.rows_per_block;
  const int64_t i = row0 + warp;
  const bool active = i < a.Sq;
  const T* qb = q + (bh * a.Sq) * D;
  const T* kb = k + (bh * a.Sk) * D;
  const T* vb = v + (bh * a.Sk) * Dv;

  // Stage this block's query rows, pre-scaled.
  for (int64_t e = TSR_GPU_TID_X; e < a.rows_per_block * D; e += TSR_GPU_BDIM_X) {
    const int64_t r = row0 + e / D;
    qs[e] = r < a.Sq ? TsrToF(qb[r * D + e % D]) * a.scale : 0.f;
  }
  float acc[kAttnMaxHeadDim / 32];
  for (int t = 0; t < kAttnMaxHeadDim / 32; ++t) acc[t] = 0.f;
  float run_max = -INFINITY, run_sum = 0.f;

  int64_t kv_end = a.Sk;
  if (a.causal) {
    const int64_t last_row = row0 + a.rows_per_block - 1;
    kv_end = last_row + 1 < a.Sk ? last_row + 1 : a.Sk;
  }
  const float* qrow = qs + static_cast<int64_t>(warp) * D;
  for (int64_t j0 = 0; j0 < kv_end; j0 += kAttnKeyTile) {
    TSR_GPU_SYNC();  // previous tile fully consumed (and qs staged on the first pass)
    for (int64_t e = TSR_GPU_TID_X; e < kAttnKeyTile * D; e += TSR_GPU_BDIM_X) {
      const int64_t r = e / D, c = e % D;
      ks[r * (D + 1) + c] = j0 + r < a.Sk ? TsrToF(kb[(j0 + r) * D + c]) : 0.f;
    }
    for (int64_t e = TSR_GPU_TID_X; e < kAttnKeyTile * Dv; e += TSR_GPU_BDIM_X) {
      const int64_t r = e / Dv, c = e % Dv;
      vs[r * (Dv + 1) + c] = j0 + r < a.Sk ? TsrToF(vb[(j0 + r) * Dv + c]) : 0.f;
    }
    TSR_GPU_SYNC();
    if (!active) continue;
    const int64_t j = j0 + lane;
    float s = -INFINITY;
    if (j < a.Sk && !(a.causal && j > i)) {
      const float* krow = ks + static_cast<int64_t>(lane) * (D + 1);
      float dot = 0.f;
      for (int64_t d = 0; d < D; ++d) dot += qrow[d] * krow[d];
      s = dot + AttnMask<T>(a, mask, b, h, i, j);
    }
    const float tile_max = WarpMax(s);
    const float new_max = fmaxf(run_max, tile_max);
    if (new_max == -INFINITY) continue;  // nothing visible yet
    const float alpha = run_max == -INFINITY ? 0.f : expf(run_max - new_max);
    const float p = s == -INFINITY ? 0.f : expf(s - new_max);
    run_sum = run_sum * alpha + WarpSum(p);
    run_max = new_max;
    for (int t = 0; t < kAttnMaxHeadDim / 32; ++t) acc[t] *= alpha;
    for (int l = 0; l < kAttnKeyTile; ++l) {
      const float pl = TSR_GPU_SHFL(p, l);
      if (pl == 0.f) continue;
      const float* vrow = vs + static_cast<int64_t>(l) * (Dv + 1);
      for (int t = 0; t < kAttnMaxHeadDim / 32; ++t) {
        const int64_t d = lane + 32 * t;
        if (d < Dv) acc[t] += pl * vrow[d];
      }
    }
  }
  if (!active) return;
  const float inv = run_sum > 0.f ? 1.f / run_sum : NAN;
  T* yrow = y + (bh * a.Sq + i) * Dv;
  for (int t = 0; t < kAttnMaxHeadDim / 32; ++t) {
    const int64_t d = lane + 32 * t;
    if (d < Dv) yrow[d] = TsrFromF<T>(acc[t] * inv);
  }
}

}  // namespace tessera::gpu
