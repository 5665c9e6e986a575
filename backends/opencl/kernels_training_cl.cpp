// The OpenCL C source of the training kernels (program group "training"); the
// host side that checks nodes and plans the launches is kernels_training.cpp,
// which also states the semantics and the in-place contract.
#include "backends/opencl/ocl.h"

namespace tessera::ocl {

const char* const kTrainingSource = R"CLC(
#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double tsr_acc;
#define TSR_C(x) x
#else
typedef float tsr_acc;
#define TSR_C(x) x##f
#endif

inline long tsr_label(global const char* Lb, ulong Lb_o, int i64, long i) {
  return i64 ? CPTR(long, Lb, Lb_o)[i] : (long)CPTR(int, Lb, Lb_o)[i];
}

/* Softmax cross-entropy, one work-item per sample. P = [N, C, has_ignore, ignore_index].
   L[i] = the sample's loss (0 when ignored), V[i] = 1 when counted, else 0. */
kernel void sce_rows_f32(TSR_INPUT(X), TSR_INPUT(Lb), TSR_OUTPUT(L), TSR_OUTPUT(V), global const long* P, float eps,
                         int i64, global char* flag, ulong flag_o, int code) {
  const long i = get_global_id(0), C = P[1];
  const long y = tsr_label(Lb, Lb_o, i64, i);
  global float* l = PTR(float, L, L_o);
  global float* v = PTR(float, V, V_o);
  if (P[2] && y == P[3]) {
    l[i] = 0.f;
    v[i] = 0.f;
    return;
  }
  if (y < 0 || y >= C) {
    atomic_cmpxchg(PTR(int, flag, flag_o), 0, code);
    l[i] = 0.f;
    v[i] = 0.f;
    return;
  }
  global const float* row = CPTR(float, X, X_o) + i * C;
  tsr_acc mx = row[0];
  for (long j = 1; j < C; ++j) mx = fmax(mx, (tsr_acc)row[j]);
  tsr_acc s = 0, sl = 0;
  for (long j = 0; j < C; ++j) s += exp((tsr_acc)row[j] - mx);
  const tsr_acc lse = mx + log(s);
  for (long j = 0; j < C; ++j) sl += (tsr_acc)row[j] - lse;
  l[i] = (float)(-((1 - (tsr_acc)eps) * ((tsr_acc)row[y] - lse) + (tsr_acc)eps / (tsr_acc)C * sl));
  v[i] = 1.f;
}

/* One work-item: Y[0] = sum(L) (mean = 0) or sum(L) / sum(V) (mean = 1, 0 when nothing counted). P = [n]. */
kernel void sum_ratio_f32(TSR_INPUT(L), TSR_INPUT(V), TSR_OUTPUT(Y), global const long* P, int mean) {
  global const float* l = CPTR(float, L, L_o);
  global const float* v = CPTR(float, V, V_o);
  tsr_acc s = 0, c = 0;
  for (long i = 0; i < P[0]; ++i) {
    s += l[i];
    if (mean) c += v[i];
  }
  PTR(float, Y, Y_o)[0] = (float)(mean ? (c > 0 ? s / c : 0) : s);
}

/* One work-item: Cnt[0] = number of counted samples (as float); flags labels outside [0, C).
   P = [N, C, has_ignore, ignore_index]. */
kernel void sce_count(TSR_INPUT(Lb), TSR_OUTPUT(Cnt), global const long* P, int i64, global char* flag, ulong flag_o,
                      int code) {
  long cnt = 0;
  for (long i = 0; i < P[0]; ++i) {
    const long y = tsr_label(Lb, Lb_o, i64, i);
    if (P[2] && y == P[3]) continue;
    if (y < 0 || y >= P[1]) atomic_cmpxchg(PTR(int, flag, flag_o), 0, code);
    ++cnt;
  }
  PTR(float, Cnt, Cnt_o)[0] = (float)cnt;
}

/* dlogits, one work-item per sample. P = [N, C, has_ignore, ignore_index, reduction (0 mean, 1 sum, 2 none)]. */
kernel void sce_grad_f32(TSR_INPUT(DL), TSR_INPUT(X), TSR_INPUT(Lb), TSR_INPUT(Cnt), TSR_OUTPUT(DX),
                         global const long* P, float eps, int i64) {
  const long i = get_global_id(0), C = P[1];
  const long y = tsr_label(Lb, Lb_o, i64, i);
  global float* d = PTR(float, DX, DX_o) + i * C;
  if ((P[2] && y == P[3]) || y < 0 || y >= C) {
    for (long j = 0; j < C; ++j) d[j] = 0.f;
    return;
  }
  global const float* dl = CPTR(float, DL, DL_o);
  const tsr_acc g = P[4] == 2 ? (tsr_acc)dl[i] : P[4] == 1 ? (tsr_acc)dl[0]
                                                           : (tsr_acc)dl[0] / (tsr_acc)CPTR(float, Cnt, Cnt_o)[0];
  global const float* row = CPTR(float, X, X_o) + i * C;
  tsr_acc mx = row[0];
  for (long j = 1; j < C; ++j) mx = fmax(mx, (tsr_acc)row[j]);
  tsr_acc s = 0;
  for (long j = 0; j < C; ++j) s += exp((tsr_acc)row[j] - mx);
  for (long j = 0; j < C; ++j) {
    const tsr_acc target = (tsr_acc)eps / C + (j == y ? 1 - (tsr_acc)eps : 0);
    d[j] = (float)(g * (exp((tsr_acc)row[j] - mx) / s - target));
  }
}

/* Elementwise squared error. */
kernel void sq_err_f32(TSR_INPUT(A), TSR_INPUT(B), TSR_OUTPUT(Y)) {
  const long i = get_global_id(0);
  const float d = CPTR(float, A, A_o)[i] - CPTR(float, B, B_o)[i];
  PTR(float, Y, Y_o)[i] = d * d;
}

/* One work-item: Y[0] = sum((A - B)^2), divided by n when mean. P = [n]. */
kernel void mse_sum_f32(TSR_INPUT(A), TSR_INPUT(B), TSR_OUTPUT(Y), global const long* P, int mean) {
  global const float* a = CPTR(float, A, A_o);
  global const float* b = CPTR(float, B, B_o);
  tsr_acc s = 0;
  for (long i = 0; i < P[0]; ++i) {
    const tsr_acc d = (tsr_acc)a[i] - b[i];
    s += d * d;
  }
  PTR(float, Y, Y_o)[0] = (float)(mean ? s / P[0] : s);
}

/* dpred = 2 g (pred - target); g = DL[i] (red 2 = none), DL[0] (1 = sum) or DL[0] / n (0 = mean). P = [n, red]. */
kernel void mse_grad_f32(TSR_INPUT(DL), TSR_INPUT(A), TSR_INPUT(B), TSR_OUTPUT(Y), global const long* P) {
  const long i = get_global_id(0);
  global const float* dl = CPTR(float, DL, DL_o);
  const tsr_acc g = P[1] == 2 ? (tsr_acc)dl[i] : P[1] == 1 ? (tsr_acc)dl[0] : (tsr_acc)dl[0] / P[0];
  PTR(float, Y, Y_o)[i] = (float)(2 * g * ((tsr_acc)CPTR(float, A, A_o)[i] - CPTR(float, B, B_o)[i]));
}

/* SGD (PyTorch's): d = g + wd p; with momentum buf' = mom buf + (1 - damp) d, d = nesterov ? d + mom buf' : buf';
   p' = p - lr d. In-place safe. */
kernel void sgd_update_f32(TSR_INPUT(Pm), TSR_INPUT(G), TSR_INPUT(Lr), TSR_INPUT(Bf), TSR_OUTPUT(Po), TSR_OUTPUT(Bo),
                           float mom, float damp, float wd, int nesterov, int has_bo) {
  const long i = get_global_id(0);
  const tsr_acc lr = CPTR(float, Lr, Lr_o)[0];
  const tsr_acc p = CPTR(float, Pm, Pm_o)[i];
  tsr_acc d = (tsr_acc)CPTR(float, G, G_o)[i] + (tsr_acc)wd * p;
  if (mom != 0.f) {
    const tsr_acc nb = (tsr_acc)mom * CPTR(float, Bf, Bf_o)[i] + (1 - (tsr_acc)damp) * d;
    if (has_bo) PTR(float, Bo, Bo_o)[i] = (float)nb;
    d = nesterov ? d + (tsr_acc)mom * nb : nb;
  } else if (has_bo) {
    PTR(float, Bo, Bo_o)[i] = CPTR(float, Bf, Bf_o)[i];
  }
  PTR(float, Po, Po_o)[i] = (float)(p - lr * d);
}

/* AdamW (PyTorch's): p *= 1 - lr wd; m' = b1 m + (1-b1) g; v' = b2 v + (1-b2) g^2;
   p -= lr / (1 - b1^t) * m' / (sqrt(v') / sqrt(1 - b2^t) + eps). step_kind: 0 f32, 1 i32, 2 i64. In-place safe. */
kernel void adamw_update_f32(TSR_INPUT(Pm), TSR_INPUT(G), TSR_INPUT(M), TSR_INPUT(Vv), TSR_INPUT(Lr), TSR_INPUT(St),
                             TSR_OUTPUT(Po), TSR_OUTPUT(Mo), TSR_OUTPUT(Vo), float b1f, float b2f, float epsf,
                             float wdf,
                             int step_kind, global char* flag, ulong flag_o, int code) {
  const long i = get_global_id(0);
  const tsr_acc t = step_kind == 0 ? (tsr_acc)CPTR(float, St, St_o)[0]
                    : step_kind == 1 ? (tsr_acc)CPTR(int, St, St_o)[0] : (tsr_acc)CPTR(long, St, St_o)[0];
  if (!(t >= 1)) {
    if (i == 0) atomic_cmpxchg(PTR(int, flag, flag_o), 0, code);
    return;
  }
  const tsr_acc b1 = b1f, b2 = b2f, eps = epsf, wd = wdf;
  const tsr_acc lr = CPTR(float, Lr, Lr_o)[0];
  const tsr_acc bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
  const tsr_acc step_size = lr / bc1, sbc2 = sqrt(bc2), decay = 1 - lr * wd;
  const tsr_acc g = CPTR(float, G, G_o)[i];
  const float nm = (float)(b1 * CPTR(float, M, M_o)[i] + (1 - b1) * g);
  const float nv = (float)(b2 * CPTR(float, Vv, Vv_o)[i] + (1 - b2) * g * g);
  const tsr_acc p = (tsr_acc)CPTR(float, Pm, Pm_o)[i] * decay;
  PTR(float, Mo, Mo_o)[i] = nm;
  PTR(float, Vo, Vo_o)[i] = nv;
  PTR(float, Po, Po_o)[i] = (float)(p - step_size * (tsr_acc)nm / (sqrt((tsr_acc)nv) / sbc2 + eps));
}

/* Partial sums of squares: work-item j of `parts` sums elements j, j + parts, ... into Part[j]. P = [n]. */
kernel void sumsq_part_f32(TSR_INPUT(G), TSR_OUTPUT(Part), global const long* P, int parts) {
  const long j = get_global_id(0);
  global const float* g = CPTR(float, G, G_o);
  tsr_acc s = 0;
  for (long i = j; i < P[0]; i += parts) s += (tsr_acc)g[i] * g[i];
  PTR(float, Part, Part_o)[j] = (float)s;
}

/* One work-item: norm = sqrt(sum(Part[0..n))); S[0] = min(1, max_norm / (norm + 1e-6)); Nm[0] = norm when
   has_norm. P = [n]. */
kernel void clip_scale_f32(TSR_INPUT(Part), TSR_OUTPUT(S), TSR_OUTPUT(Nm), global const long* P, float max_norm,
                           int has_norm) {
  global const float* p = CPTR(float, Part, Part_o);
  tsr_acc s = 0;
  for (long i = 0; i < P[0]; ++i) s += p[i];
  const tsr_acc norm = sqrt(s);
  const tsr_acc sc = (tsr_acc)max_norm / (norm + TSR_C(1e-6));
  PTR(float, S, S_o)[0] = (float)(sc < 1 ? sc : 1);
  if (has_norm) PTR(float, Nm, Nm_o)[0] = (float)norm;
}

/* Y[i] = X[i] * S[0] (in-place safe). */
kernel void scale_by_f32(TSR_INPUT(X), TSR_INPUT(S), TSR_OUTPUT(Y)) {
  const long i = get_global_id(0);
  PTR(float, Y, Y_o)[i] = CPTR(float, X, X_o)[i] * CPTR(float, S, S_o)[0];
}

/* BatchNormalization training mode, one work-item per channel: batch mean and population variance into
   St[2c], St[2c+1]; running outputs Rm = Im mom + mean (1 - mom), Rv likewise. P = [N, C, S]. */
kernel void bn_stats_f32(TSR_INPUT(X), TSR_INPUT(Im), TSR_INPUT(Iv), TSR_OUTPUT(St), TSR_OUTPUT(Rm), TSR_OUTPUT(Rv),
                         global const long* P, float momf, int has_rm, int has_rv) {
  const long c = get_global_id(0), N = P[0], C = P[1], S = P[2];
  global const float* x = CPTR(float, X, X_o);
  const tsr_acc cnt = (tsr_acc)(N * S > 0 ? N * S : 1);
  tsr_acc m = 0, v = 0;
  for (long b = 0; b < N; ++b)
    for (long s = 0; s < S; ++s) m += x[(b * C + c) * S + s];
  m /= cnt;
  for (long b = 0; b < N; ++b)
    for (long s = 0; s < S; ++s) {
      const tsr_acc d = x[(b * C + c) * S + s] - m;
      v += d * d;
    }
  v /= cnt;
  PTR(float, St, St_o)[2 * c] = (float)m;
  PTR(float, St, St_o)[2 * c + 1] = (float)v;
  const tsr_acc mom = momf;
  if (has_rm) PTR(float, Rm, Rm_o)[c] = (float)(CPTR(float, Im, Im_o)[c] * mom + m * (1 - mom));
  if (has_rv) PTR(float, Rv, Rv_o)[c] = (float)(CPTR(float, Iv, Iv_o)[c] * mom + v * (1 - mom));
}

/* Y = (X - mean) scale / sqrt(var + eps) + B with St from bn_stats_f32. P = [C, S]. */
kernel void bn_apply_f32(TSR_INPUT(X), TSR_INPUT(Sc), TSR_INPUT(B), TSR_INPUT(St), TSR_OUTPUT(Y), global const long* P,
                         float eps) {
  const long i = get_global_id(0);
  const long c = (i / P[1]) % P[0];
  global const float* st = CPTR(float, St, St_o);
  const tsr_acc a = (tsr_acc)CPTR(float, Sc, Sc_o)[c] / sqrt((tsr_acc)st[2 * c + 1] + eps);
  PTR(float, Y, Y_o)[i] = (float)(((tsr_acc)CPTR(float, X, X_o)[i] - st[2 * c]) * a + CPTR(float, B, B_o)[c]);
}

/* BatchNormGrad, one work-item per channel: mean/var (batch statistics when training, else Rm/Rv), then
   St[4c..4c+3] = mean, 1/sqrt(var + eps), sum(dy), sum(dy xhat); dscale = sum(dy xhat), dbias = sum(dy).
   P = [N, C, S]. */
kernel void bng_stats_f32(TSR_INPUT(DY), TSR_INPUT(X), TSR_INPUT(Rm), TSR_INPUT(Rv), TSR_OUTPUT(St), TSR_OUTPUT(DS),
                          TSR_OUTPUT(DB), global const long* P, float eps, int training, int has_ds, int has_db) {
  const long c = get_global_id(0), N = P[0], C = P[1], S = P[2];
  global const float* x = CPTR(float, X, X_o);
  global const float* dy = CPTR(float, DY, DY_o);
  const tsr_acc cnt = (tsr_acc)(N * S);
  tsr_acc mean = 0, var = 0;
  if (training) {
    for (long b = 0; b < N; ++b)
      for (long s = 0; s < S; ++s) mean += x[(b * C + c) * S + s];
    mean /= cnt;
    for (long b = 0; b < N; ++b)
      for (long s = 0; s < S; ++s) {
        const tsr_acc d = x[(b * C + c) * S + s] - mean;
        var += d * d;
      }
    var /= cnt;
  } else {
    mean = CPTR(float, Rm, Rm_o)[c];
    var = CPTR(float, Rv, Rv_o)[c];
  }
  const tsr_acc inv = 1 / sqrt(var + (tsr_acc)eps);
  tsr_acc sdy = 0, sdyx = 0;
  for (long b = 0; b < N; ++b)
    for (long s = 0; s < S; ++s) {
      const long k = (b * C + c) * S + s;
      sdy += dy[k];
      sdyx += (tsr_acc)dy[k] * (x[k] - mean) * inv;
    }
  global float* st = PTR(float, St, St_o) + 4 * c;
  st[0] = (float)mean;
  st[1] = (float)inv;
  st[2] = (float)sdy;
  st[3] = (float)sdyx;
  if (has_ds) PTR(float, DS, DS_o)[c] = (float)sdyx;
  if (has_db) PTR(float, DB, DB_o)[c] = (float)sdy;
}

/* dx = scale inv (dy - [training] (sum(dy) + xhat sum(dy xhat)) / m). P = [C, S, m]. */
kernel void bng_apply_f32(TSR_INPUT(DY), TSR_INPUT(X), TSR_INPUT(Sc), TSR_INPUT(St), TSR_OUTPUT(DX),
                          global const long* P, int training) {
  const long i = get_global_id(0);
  const long c = (i / P[1]) % P[0];
  global const float* st = CPTR(float, St, St_o) + 4 * c;
  const tsr_acc mean = st[0], inv = st[1], m = (tsr_acc)P[2];
  tsr_acc v = CPTR(float, DY, DY_o)[i];
  if (training) v = v - (tsr_acc)st[2] / m - ((tsr_acc)CPTR(float, X, X_o)[i] - mean) * inv * (tsr_acc)st[3] / m;
  PTR(float, DX, DX_o)[i] = (float)((tsr_acc)CPTR(float, Sc, Sc_o)[c] * inv * v);
}

/* MaxPoolGrad (is_max = 1) / AveragePoolGrad (is_max = 0), one work-item per input element (no atomics): sums dY over
   the windows that cover it; for max only the windows whose first maximum it is.
   P = [NC, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, count_include_pad, peh, pew]. */
kernel void pool_grad_f32(TSR_INPUT(DY), TSR_INPUT(X), TSR_OUTPUT(DX), global const long* P, int is_max) {
  const long i = get_global_id(0);
  const long H = P[1], W = P[2], OH = P[3], OW = P[4], KH = P[5], KW = P[6];
  const long sh = P[7], sw = P[8], ph = P[9], pw = P[10], dh = P[11], dw = P[12];
  const long iw = i % W, t = i / W;
  const long ih = t % H, nc = t / H;
  global const float* x = CPTR(float, X, X_o) + nc * H * W;
  global const float* dy = CPTR(float, DY, DY_o) + nc * OH * OW;
  tsr_acc acc = 0;
  for (long kh = 0; kh < KH; ++kh) {
    const long th = ih + ph - kh * dh;
    if (th < 0 || th % sh != 0 || th / sh >= OH) continue;
    const long oh = th / sh;
    for (long kw = 0; kw < KW; ++kw) {
      const long tw = iw + pw - kw * dw;
      if (tw < 0 || tw % sw != 0 || tw / sw >= OW) continue;
      const long ow = tw / sw;
      if (is_max) {
        long best = -1;
        float bv = 0.f;
        for (long a = 0; a < KH; ++a) {
          const long y = oh * sh - ph + a * dh;
          if (y < 0 || y >= H) continue;
          for (long b = 0; b < KW; ++b) {
            const long z = ow * sw - pw + b * dw;
            if (z < 0 || z >= W) continue;
            const float v = x[y * W + z];
            if (best < 0 || v > bv) {
              best = y * W + z;
              bv = v;
            }
          }
        }
        if (best == ih * W + iw) acc += dy[oh * OW + ow];
      } else {
        long ch = 0, cw = 0;
        for (long a = 0; a < KH; ++a) {
          const long y = oh * sh - ph + a * dh;
          if (P[13] ? (y >= -ph && y < H + P[14]) : (y >= 0 && y < H)) ++ch;
        }
        for (long b = 0; b < KW; ++b) {
          const long z = ow * sw - pw + b * dw;
          if (P[13] ? (z >= -pw && z < W + P[15]) : (z >= 0 && z < W)) ++cw;
        }
        if (ch * cw > 0) acc += (tsr_acc)dy[oh * OW + ow] / (tsr_acc)(ch * cw);
      }
    }
  }
  PTR(float, DX, DX_o)[i] = (float)acc;
}

/* ConvGradInput, one work-item per element of dX [N, C, H, W]:
   dX[n,c,ih,iw] = sum over the group's m and the (kh, kw) that reach (ih, iw) of dY[n,m,oh,ow] W[m,c%Cg,kh,kw].
   P = [N, C, H, W, M, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, group]. */
kernel void conv_grad_input_f32(TSR_INPUT(DY), TSR_INPUT(Wt), TSR_OUTPUT(DX), global const long* P) {
  const long i = get_global_id(0);
  const long C = P[1], H = P[2], W = P[3], M = P[4], OH = P[5], OW = P[6], KH = P[7], KW = P[8];
  const long sh = P[9], sw = P[10], ph = P[11], pw = P[12], dh = P[13], dw = P[14], G = P[15];
  const long iw = i % W;
  long t = i / W;
  const long ih = t % H;
  t /= H;
  const long c = t % C, n = t / C;
  const long Cg = C / G, Mg = M / G, g = c / Cg, cc = c % Cg;
  global const float* dy = CPTR(float, DY, DY_o);
  global const float* w = CPTR(float, Wt, Wt_o);
  tsr_acc acc = 0;
  for (long kh = 0; kh < KH; ++kh) {
    const long th = ih + ph - kh * dh;
    if (th < 0 || th % sh != 0 || th / sh >= OH) continue;
    const long oh = th / sh;
    for (long kw = 0; kw < KW; ++kw) {
      const long tw = iw + pw - kw * dw;
      if (tw < 0 || tw % sw != 0 || tw / sw >= OW) continue;
      const long ow = tw / sw;
      for (long mm = 0; mm < Mg; ++mm) {
        const long m = g * Mg + mm;
        acc += (tsr_acc)dy[((n * M + m) * OH + oh) * OW + ow] * w[((m * Cg + cc) * KH + kh) * KW + kw];
      }
    }
  }
  PTR(float, DX, DX_o)[i] = (float)acc;
}

/* col2im for ConvGradInput (group 1): dX[img, c, ih, iw] = sum over the (kh, kw) that reach (ih, iw) of
   Col[img][(c*KH + kh)*KW + kw][oh*OW + ow]; one work-item per element of dX of a chunk of images.
   P = [C, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw]. */
kernel void col2im_f32(TSR_INPUT(Col), TSR_OUTPUT(DX), global const long* P) {
  const long i = get_global_id(0);
  const long C = P[0], H = P[1], W = P[2], OH = P[3], OW = P[4], KH = P[5], KW = P[6];
  const long sh = P[7], sw = P[8], ph = P[9], pw = P[10], dh = P[11], dw = P[12];
  const long iw = i % W;
  long t = i / W;
  const long ih = t % H;
  t /= H;
  const long c = t % C, img = t / C;
  global const float* col = CPTR(float, Col, Col_o) + img * C * KH * KW * OH * OW;
  float acc = 0.f;
  for (long kh = 0; kh < KH; ++kh) {
    const long th = ih + ph - kh * dh;
    if (th < 0 || th % sh != 0 || th / sh >= OH) continue;
    const long oh = th / sh;
    for (long kw = 0; kw < KW; ++kw) {
      const long tw = iw + pw - kw * dw;
      if (tw < 0 || tw % sw != 0 || tw / sw >= OW) continue;
      acc += col[((c * KH + kh) * KW + kw) * OH * OW + oh * OW + tw / sw];
    }
  }
  PTR(float, DX, DX_o)[i] = acc;
}

/* ConvGradWeight, one work-item per element of dW [M, C/group, KH, KW]:
   dW[m,cc,kh,kw] = sum over n, oh, ow of dY[n,m,oh,ow] X[n, g*Cg+cc, ih, iw]. P as conv_grad_input_f32. */
kernel void conv_grad_weight_f32(TSR_INPUT(DY), TSR_INPUT(X), TSR_OUTPUT(DW), global const long* P) {
  const long i = get_global_id(0);
  const long N = P[0], C = P[1], H = P[2], W = P[3], M = P[4], OH = P[5], OW = P[6], KH = P[7], KW = P[8];
  const long sh = P[9], sw = P[10], ph = P[11], pw = P[12], dh = P[13], dw = P[14], G = P[15];
  const long Cg = C / G, Mg = M / G;
  const long kw = i % KW;
  long t = i / KW;
  const long kh = t % KH;
  t /= KH;
  const long cc = t % Cg, m = t / Cg;
  const long c = (m / Mg) * Cg + cc;
  global const float* dy = CPTR(float, DY, DY_o);
  global const float* x = CPTR(float, X, X_o);
  tsr_acc acc = 0;
  for (long n = 0; n < N; ++n) {
    global const float* dyp = dy + (n * M + m) * OH * OW;
    global const float* xp = x + (n * C + c) * H * W;
    for (long oh = 0; oh < OH; ++oh) {
      const long ih = oh * sh - ph + kh * dh;
      if (ih < 0 || ih >= H) continue;
      for (long ow = 0; ow < OW; ++ow) {
        const long iw = ow * sw - pw + kw * dw;
        if (iw < 0 || iw >= W) continue;
        acc += (tsr_acc)dyp[oh * OW + ow] * xp[ih * W + iw];
      }
    }
  }
  PTR(float, DW, DW_o)[i] = (float)acc;
}
/* ReluGrad: dx = dy where x_or_y > 0, else 0. */
kernel void relu_grad_f32(TSR_INPUT(DY), TSR_INPUT(X), TSR_OUTPUT(DX)) {
  const long i = get_global_id(0);
  PTR(float, DX, DX_o)[i] = CPTR(float, X, X_o)[i] > 0.0f ? CPTR(float, DY, DY_o)[i] : 0.0f;
}
/* GeluGrad: dx = dy gelu'(x); approx = 1: the tanh form. */
kernel void gelu_grad_f32(TSR_INPUT(DY), TSR_INPUT(X), TSR_OUTPUT(DX), int approx) {
  const long i = get_global_id(0);
  const tsr_acc v = CPTR(float, X, X_o)[i];
  tsr_acc d;
  if (approx) {
    const tsr_acc k = TSR_C(0.79788456080286535588);  /* sqrt(2 / pi) */
    const tsr_acc t = tanh(k * (v + TSR_C(0.044715) * v * v * v));
    d = TSR_C(0.5) * (1 + t) + TSR_C(0.5) * v * (1 - t * t) * k * (1 + 3 * TSR_C(0.044715) * v * v);
  } else {
    d = TSR_C(0.5) * (1 + erf(v * TSR_C(0.70710678118654752440))) +
        v * exp(TSR_C(-0.5) * v * v) * TSR_C(0.39894228040143267794);  /* 1 / sqrt(2 pi) */
  }
  PTR(float, DX, DX_o)[i] = (float)((tsr_acc)CPTR(float, DY, DY_o)[i] * d);
}

/* SoftmaxGrad, one work-item per (outer, inner): softmax dx = y (dy - sum(dy y)); log-softmax
   dx = dy - exp(y) sum(dy). P = [outer, len, inner]. */
kernel void softmax_grad_f32(TSR_INPUT(DY), TSR_INPUT(Y), TSR_OUTPUT(DX), global const long* P, int is_log) {
  const long i = get_global_id(0), len = P[1], inner = P[2];
  const long base = (i / inner) * len * inner + i % inner;
  global const float* dy = CPTR(float, DY, DY_o) + base;
  global const float* y = CPTR(float, Y, Y_o) + base;
  global float* dx = PTR(float, DX, DX_o) + base;
  tsr_acc s = 0;
  for (long j = 0; j < len; ++j) s += is_log ? (tsr_acc)dy[j * inner] : (tsr_acc)dy[j * inner] * y[j * inner];
  for (long j = 0; j < len; ++j) {
    const long k = j * inner;
    dx[k] = (float)(is_log ? dy[k] - exp((tsr_acc)y[k]) * s : y[k] * (dy[k] - s));
  }
}

/* LayerNormGrad rows, one work-item per row of [rows, D]: dx = inv (g - mean(g) - xhat mean(g xhat)) with
   g = dy scale; St[2r] = mean, St[2r+1] = inv. P = [rows, D]. */
kernel void ln_grad_rows_f32(TSR_INPUT(DY), TSR_INPUT(X), TSR_INPUT(Sc), TSR_OUTPUT(DX), TSR_OUTPUT(St),
                             global const long* P, float eps) {
  const long r = get_global_id(0), D = P[1];
  global const float* x = CPTR(float, X, X_o) + r * D;
  global const float* dy = CPTR(float, DY, DY_o) + r * D;
  global const float* sc = CPTR(float, Sc, Sc_o);
  global float* dx = PTR(float, DX, DX_o) + r * D;
  tsr_acc m = 0, v = 0;
  for (long j = 0; j < D; ++j) m += x[j];
  m /= D;
  for (long j = 0; j < D; ++j) v += (x[j] - m) * (x[j] - m);
  v /= D;
  const tsr_acc is = 1 / sqrt(v + (tsr_acc)eps);
  tsr_acc s1 = 0, s2 = 0;
  for (long j = 0; j < D; ++j) {
    const tsr_acc g = (tsr_acc)dy[j] * sc[j];
    s1 += g;
    s2 += g * (x[j] - m) * is;
  }
  s1 /= D;
  s2 /= D;
  for (long j = 0; j < D; ++j) dx[j] = (float)(is * ((tsr_acc)dy[j] * sc[j] - s1 - (x[j] - m) * is * s2));
  PTR(float, St, St_o)[2 * r] = (float)m;
  PTR(float, St, St_o)[2 * r + 1] = (float)is;
}

/* LayerNormGrad columns, one work-item per feature j: dscale = sum_r dy xhat, dbias = sum_r dy. P = [rows, D]. */
kernel void ln_grad_cols_f32(TSR_INPUT(DY), TSR_INPUT(X), TSR_INPUT(St), TSR_OUTPUT(DS), TSR_OUTPUT(DB),
                             global const long* P, int has_ds, int has_db) {
  const long j = get_global_id(0), rows = P[0], D = P[1];
  global const float* x = CPTR(float, X, X_o);
  global const float* dy = CPTR(float, DY, DY_o);
  global const float* st = CPTR(float, St, St_o);
  tsr_acc s = 0, t = 0;
  for (long r = 0; r < rows; ++r) {
    const tsr_acc g = dy[r * D + j];
    s += g * ((tsr_acc)x[r * D + j] - st[2 * r]) * st[2 * r + 1];
    t += g;
  }
  if (has_ds) PTR(float, DS, DS_o)[j] = (float)s;
  if (has_db) PTR(float, DB, DB_o)[j] = (float)t;
}
/* Y = A + B + C + D over the first n (2..4) operands, same shapes; Y may be A (in place). */
kernel void sum4_f32(TSR_INPUT(A), TSR_INPUT(B), TSR_INPUT(C), TSR_INPUT(D), TSR_OUTPUT(Y), int n) {
  const long i = get_global_id(0);
  float v = CPTR(float, A, A_o)[i] + CPTR(float, B, B_o)[i];
  if (n > 2) v += CPTR(float, C, C_o)[i];
  if (n > 3) v += CPTR(float, D, D_o)[i];
  PTR(float, Y, Y_o)[i] = v;
}

/* Constant-mode Pad, one work-item per output element (negative pads crop).
   P = [rank, out dims[rank], in dims[rank], pad begins[rank]]. */
kernel void pad_const_f32(TSR_INPUT(X), TSR_OUTPUT(Y), global const long* P, float value) {
  const long i = get_global_id(0);
  const int r = (int)P[0];
  long t = i, off = 0, stride = 1;
  bool inside = true;
  for (int d = r - 1; d >= 0; --d) {
    const long c = t % P[1 + d] - P[1 + 2 * r + d];
    t /= P[1 + d];
    if (c < 0 || c >= P[1 + r + d]) inside = false;
    off += c * stride;
    stride *= P[1 + r + d];
  }
  PTR(float, Y, Y_o)[i] = inside ? CPTR(float, X, X_o)[off] : value;
}
/* GatherGrad index check, one work-item: flags an index outside [-len, len). P = [ni, len]. */
kernel void gather_grad_check(TSR_INPUT(I), global const long* P, int i64, global char* flag, ulong flag_o, int code) {
  for (long j = 0; j < P[0]; ++j) {
    const long v = tsr_label(I, I_o, i64, j);
    if (v < -P[1] || v >= P[1]) atomic_cmpxchg(PTR(int, flag, flag_o), 0, code);
  }
}

/* GatherGrad, one work-item per element (o, r, k) of dX [outer, len, inner]: the sum, in index order, of
   dY[o, j, k] over the j whose index (negative: + len) is r. P = [outer, len, ni, inner]. */
kernel void gather_grad_f32(TSR_INPUT(DY), TSR_INPUT(I), TSR_OUTPUT(DX), global const long* P, int i64) {
  const long i = get_global_id(0), len = P[1], ni = P[2], inner = P[3];
  const long k = i % inner, t = i / inner;
  const long r = t % len, o = t / len;
  global const float* dy = CPTR(float, DY, DY_o);
  float acc = 0.f;
  for (long j = 0; j < ni; ++j) {
    long v = tsr_label(I, I_o, i64, j);
    if (v < 0) v += len;
    if (v == r) acc += dy[(o * ni + j) * inner + k];
  }
  PTR(float, DX, DX_o)[i] = acc;
}

/* SliceGrad, one work-item per element of dX: dY's element where Slice read it, else 0.
   P = [rank, x dims[rank], start[rank], step[rank], count[rank]]. */
kernel void slice_grad_f32(TSR_INPUT(DY), TSR_OUTPUT(DX), global const long* P) {
  const long i = get_global_id(0);
  const int r = (int)P[0];
  long t = i, off = 0, stride = 1;
  bool inside = true;
  for (int d = r - 1; d >= 0; --d) {
    const long x = t % P[1 + d], start = P[1 + r + d], step = P[1 + 2 * r + d], cnt = P[1 + 3 * r + d];
    t /= P[1 + d];
    const long u = x - start;
    const long c = step > 0 ? (u >= 0 && u % step == 0 ? u / step : -1)
                            : (u <= 0 && (-u) % (-step) == 0 ? u / step : -1);
    if (c < 0 || c >= cnt) inside = false;
    off += c * stride;
    stride *= cnt;
  }
  PTR(float, DX, DX_o)[i] = inside ? CPTR(float, DY, DY_o)[off] : 0.f;
}
)CLC";

}  // namespace tessera::ocl
