// Neural-network ops on OpenCL: MatMul/Gemm (+ tessera.FusedMatMul/FusedGemm)
// through one tiled GEMM kernel with bias/residual/activation epilogue, Conv
// (+ tessera.FusedConv) as a direct kernel, pooling, BatchNormalization
// (inference), LayerNormalization, Softmax/LogSoftmax, ReduceMean/Sum/Max/Min
// and tessera.FusedAttention (one work-item per query row, online softmax).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backends/opencl/ocl.h"

namespace tessera::ocl {

const char* const kNnSource = R"CLC(
/* Y[b,m,n] = act(alpha * sum_k A[b,m,k] B[b,k,n] + beta * C[m,n] + Z[b,m,n]).
   P = [M, N, K, a_sm, a_sk, b_sk, b_sn, c_sm, c_sn, has_c, has_z,
        batch rank br, batch dims[br], A batch strides[br], B batch strides[br]].
   Each work-item computes a 4x8 block: work (ceil(N/8), ceil(M/4), batch).
   gemm_f32_bn1 requires b_sn == 1 (rows of B contiguous: vector loads). */
inline void tsr_gemm_store(global char* Y, ulong Y_o, global const char* C, ulong C_o, global const char* Z,
                           ulong Z_o, global const long* P, long bt, long m, long n, float v, float alpha,
                           float beta, int act, float p0, float p1) {
  if (m >= P[0] || n >= P[1]) return;
  const long i = (bt * P[0] + m) * P[1] + n;
  float r = alpha * v;
  if (P[9]) r += beta * CPTR(float, C, C_o)[m * P[7] + n * P[8]];
  if (P[10]) r += CPTR(float, Z, Z_o)[i];
  PTR(float, Y, Y_o)[i] = tsr_unop(act, r, p0, p1);
}

#define TSR_GEMM(NAME, LOADB8)                                                                                \
  kernel void NAME(TSR_INPUT(A), TSR_INPUT(B), TSR_INPUT(C), TSR_INPUT(Z), TSR_OUTPUT(Y), global const long* P, \
                   float alpha, float beta, int act, float p0, float p1) {                                    \
    const long M = P[0], N = P[1], K = P[2], a_sm = P[3], a_sk = P[4], b_sk = P[5], b_sn = P[6];               \
    const long n0 = get_global_id(0) * 8, m0 = get_global_id(1) * 4, bt = get_global_id(2);                  \
    const int br = (int)P[11];                                                                                \
    long aoff = 0, boff = 0, u = bt;                                                                          \
    for (int d = br - 1; d >= 0; --d) {                                                                       \
      long c = u % P[12 + d];                                                                                 \
      u /= P[12 + d];                                                                                         \
      aoff += c * P[12 + br + d];                                                                             \
      boff += c * P[12 + 2 * br + d];                                                                         \
    }                                                                                                         \
    global const float* a = CPTR(float, A, A_o) + aoff;                                                      \
    global const float* b = CPTR(float, B, B_o) + boff;                                                      \
    float8 acc[4] = {(float8)(0.f), (float8)(0.f), (float8)(0.f), (float8)(0.f)};                            \
    if (m0 + 3 < M && n0 + 7 < N) {                                                                           \
      global const float* a0 = a + m0 * a_sm;                                                                \
      global const float* a1 = a0 + a_sm;                                                                    \
      global const float* a2 = a1 + a_sm;                                                                    \
      global const float* a3 = a2 + a_sm;                                                                    \
      for (long k = 0; k < K; ++k) {                                                                          \
        global const float* bk = b + k * b_sk;                                                               \
        const float8 bv = LOADB8;                                                                             \
        const long ak = k * a_sk;                                                                             \
        acc[0] += a0[ak] * bv;                                                                                \
        acc[1] += a1[ak] * bv;                                                                                \
        acc[2] += a2[ak] * bv;                                                                                \
        acc[3] += a3[ak] * bv;                                                                                \
      }                                                                                                       \
    } else {                                                                                                  \
      for (long k = 0; k < K; ++k) {                                                                          \
        global const float* bk = b + k * b_sk;                                                               \
        float bb[8];                                                                                          \
        for (int j = 0; j < 8; ++j) bb[j] = n0 + j < N ? bk[(n0 + j) * b_sn] : 0.f;                           \
        const float8 bv = vload8(0, bb);                                                                      \
        for (int r = 0; r < 4; ++r)                                                                           \
          if (m0 + r < M) acc[r] += a[(m0 + r) * a_sm + k * a_sk] * bv;                                       \
      }                                                                                                       \
    }                                                                                                         \
    for (int r = 0; r < 4; ++r) {                                                                             \
      float out[8];                                                                                           \
      vstore8(acc[r], 0, out);                                                                                \
      for (int j = 0; j < 8; ++j)                                                                             \
        tsr_gemm_store(Y, Y_o, C, C_o, Z, Z_o, P, bt, m0 + r, n0 + j, out[j], alpha, beta, act, p0, p1);      \
    }                                                                                                         \
  }
TSR_GEMM(gemm_f32_bn1, vload8(0, bk + n0))
TSR_GEMM(gemm_f32, ((float8)(bk[n0 * b_sn], bk[(n0 + 1) * b_sn], bk[(n0 + 2) * b_sn], bk[(n0 + 3) * b_sn],     \
                             bk[(n0 + 4) * b_sn], bk[(n0 + 5) * b_sn], bk[(n0 + 6) * b_sn], bk[(n0 + 7) * b_sn])))

/* im2col of one image (and group) for Conv as GEMM: col[(c*KH + kh)*KW + kw][oh*OW + ow].
   P = [C (of the group), H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw]. Work: (OW, OH, C*KH*KW)
   (3-D so that no work-item divides 64-bit indices, which is slow on CPUs). */
kernel void im2col_f32(TSR_INPUT(X), TSR_OUTPUT(Col), global const long* P) {
  const long ow = get_global_id(0), oh = get_global_id(1);
  const int row = (int)get_global_id(2);
  const long H = P[1], W = P[2], OH = P[3], OW = P[4];
  const int KH = (int)P[5], KW = (int)P[6];
  const int kw = row % KW, t = row / KW;
  const int kh = t % KH, c = t / KH;
  const long ih = oh * P[7] - P[9] + kh * P[11], iw = ow * P[8] - P[10] + kw * P[12];
  float v = 0.f;
  if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = CPTR(float, X, X_o)[(c * H + ih) * W + iw];
  PTR(float, Col, Col_o)[(long)row * OH * OW + oh * OW + ow] = v;
}

/* Direct 2-D convolution, NCHW. P = [N, C, H, W, M, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, group, has_b, has_z]. */
kernel void conv2d_f32(TSR_INPUT(X), TSR_INPUT(W), TSR_INPUT(B), TSR_INPUT(Z), TSR_OUTPUT(Y), global const long* P,
                       int act, float p0, float p1) {
  const long i = get_global_id(0);
  const long C = P[1], H = P[2], Wd = P[3], M = P[4], OH = P[5], OW = P[6], KH = P[7], KW = P[8];
  const long sh = P[9], sw = P[10], ph = P[11], pw = P[12], dh = P[13], dw = P[14], G = P[15];
  long ow = i % OW, t = i / OW;
  long oh = t % OH;
  t /= OH;
  long m = t % M, n = t / M;
  long cpg = C / G, mpg = M / G, g = m / mpg;
  global const float* x = CPTR(float, X, X_o);
  global const float* w = CPTR(float, W, W_o) + m * cpg * KH * KW;
  float acc = 0.f;
  const long ih0 = oh * sh - ph, iw0 = ow * sw - pw;
  for (long c = 0; c < cpg; ++c) {
    global const float* xc = x + ((n * C + g * cpg + c) * H) * Wd;
    global const float* wc = w + c * KH * KW;
    for (long kh = 0; kh < KH; ++kh) {
      long ih = ih0 + kh * dh;
      if (ih < 0 || ih >= H) continue;
      for (long kw = 0; kw < KW; ++kw) {
        long iw = iw0 + kw * dw;
        if (iw < 0 || iw >= Wd) continue;
        acc += xc[ih * Wd + iw] * wc[kh * KW + kw];
      }
    }
  }
  if (P[16]) acc += CPTR(float, B, B_o)[m];
  if (P[17]) acc += CPTR(float, Z, Z_o)[i];
  PTR(float, Y, Y_o)[i] = tsr_unop(act, acc, p0, p1);
}

/* 2-D pooling, NCHW. P = [NC, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, count_include_pad, pe_h, pe_w].
   op 0 = max, 1 = average. */
kernel void pool2d_f32(TSR_INPUT(X), TSR_OUTPUT(Y), global const long* P, int op) {
  const long i = get_global_id(0);
  const long H = P[1], W = P[2], OH = P[3], OW = P[4], KH = P[5], KW = P[6];
  long ow = i % OW, t = i / OW;
  long oh = t % OH, nc = t / OH;
  global const float* x = CPTR(float, X, X_o) + nc * H * W;
  long ih0 = oh * P[7] - P[9], iw0 = ow * P[8] - P[10];
  float acc = op == 0 ? -INFINITY : 0.f;
  long cnt = 0, padded = 0;
  for (long kh = 0; kh < KH; ++kh) {
    long ih = ih0 + kh * P[11];
    for (long kw = 0; kw < KW; ++kw) {
      long iw = iw0 + kw * P[12];
      if (ih >= -P[9] && ih < H + P[14] && iw >= -P[10] && iw < W + P[15]) ++padded;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      float v = x[ih * W + iw];
      if (op == 0) acc = (v > acc || isnan(v)) ? v : acc;
      else acc += v;
      ++cnt;
    }
  }
  if (op == 1) acc = acc / (float)(P[13] ? padded : (cnt > 0 ? cnt : 1));
  PTR(float, Y, Y_o)[i] = acc;
}

/* P = [rows, n]: per row, op 0 = mean, 1 = max. */
kernel void global_pool_f32(TSR_INPUT(X), TSR_OUTPUT(Y), global const long* P, int op) {
  const long r = get_global_id(0), n = P[1];
  global const float* x = CPTR(float, X, X_o) + r * n;
  float acc = op == 1 ? -INFINITY : 0.f;
  for (long j = 0; j < n; ++j) acc = op == 1 ? fmax(acc, x[j]) : acc + x[j];
  PTR(float, Y, Y_o)[r] = op == 1 ? acc : acc / (float)n;
}

/* P = [C, inner]. */
kernel void batchnorm_f32(TSR_INPUT(X), TSR_INPUT(S), TSR_INPUT(B), TSR_INPUT(Mn), TSR_INPUT(V), TSR_OUTPUT(Y),
                          global const long* P, float eps) {
  const long i = get_global_id(0);
  const long c = (i / P[1]) % P[0];
  float inv = CPTR(float, S, S_o)[c] / sqrt(CPTR(float, V, V_o)[c] + eps);
  PTR(float, Y, Y_o)[i] = (CPTR(float, X, X_o)[i] - CPTR(float, Mn, Mn_o)[c]) * inv + CPTR(float, B, B_o)[c];
}

/* One work-item per row. P = [rows, n, scale numel, bias numel (0 = none)]. */
kernel void layernorm_f32(TSR_INPUT(X), TSR_INPUT(S), TSR_INPUT(B), TSR_OUTPUT(Y), global const long* P, float eps) {
  const long r = get_global_id(0), n = P[1];
  global const float* x = CPTR(float, X, X_o) + r * n;
  global float* y = PTR(float, Y, Y_o) + r * n;
  float mean = 0.f;
  for (long j = 0; j < n; ++j) mean += x[j];
  mean /= (float)n;
  float var = 0.f;
  for (long j = 0; j < n; ++j) {
    float d = x[j] - mean;
    var += d * d;
  }
  var /= (float)n;
  const float inv = 1.f / sqrt(var + eps);
  global const float* s = CPTR(float, S, S_o);
  global const float* b = CPTR(float, B, B_o);
  for (long j = 0; j < n; ++j) {
    float v = (x[j] - mean) * inv * s[j % P[2]];
    if (P[3]) v += b[j % P[3]];
    y[j] = v;
  }
}

/* P = [outer, axis length, inner]; one work-item per (outer, inner). */
kernel void softmax_f32(TSR_INPUT(X), TSR_OUTPUT(Y), global const long* P, int log_softmax) {
  const long i = get_global_id(0), n = P[1], inner = P[2];
  const long base = (i / inner) * n * inner + i % inner;
  global const float* x = CPTR(float, X, X_o) + base;
  global float* y = PTR(float, Y, Y_o) + base;
  float mx = -INFINITY;
  for (long j = 0; j < n; ++j) mx = fmax(mx, x[j * inner]);
  float s = 0.f;
  for (long j = 0; j < n; ++j) s += exp(x[j * inner] - mx);
  if (log_softmax) {
    float ls = log(s);
    for (long j = 0; j < n; ++j) y[j * inner] = x[j * inner] - mx - ls;
  } else {
    float inv = 1.f / s;
    for (long j = 0; j < n; ++j) y[j * inner] = exp(x[j * inner] - mx) * inv;
  }
}

/* P = [rank, dims[rank], strides[rank], reduced[rank], reduced count]; op 0 sum, 1 mean, 2 max, 3 min, 4 prod. */
kernel void reduce_f32(TSR_INPUT(X), TSR_OUTPUT(Y), global const long* P, int op) {
  const long i = get_global_id(0);
  const int r = (int)P[0];
  global const long* dims = P + 1;
  global const long* str = P + 1 + r;
  global const long* red = P + 1 + 2 * r;
  const long cnt = P[1 + 3 * r];
  long t = i, base = 0;
  for (int d = r - 1; d >= 0; --d) {
    if (red[d]) continue;
    long c = t % dims[d];
    t /= dims[d];
    base += c * str[d];
  }
  global const float* x = CPTR(float, X, X_o);
  float acc = op == 2 ? -INFINITY : op == 3 ? INFINITY : op == 4 ? 1.f : 0.f;
  for (long j = 0; j < cnt; ++j) {
    long u = j, off = base;
    for (int d = r - 1; d >= 0; --d) {
      if (!red[d]) continue;
      long c = u % dims[d];
      u /= dims[d];
      off += c * str[d];
    }
    float v = x[off];
    if (op == 2) acc = (v > acc || isnan(v)) ? v : acc;
    else if (op == 3) acc = (v < acc || isnan(v)) ? v : acc;
    else if (op == 4) acc *= v;
    else acc += v;
  }
  if (op == 1) acc /= (float)cnt;
  PTR(float, Y, Y_o)[i] = acc;
}

/* softmax(Q K^T * scale + mask [causal]) V, one work-item per (b, h, query).
   P = [B, H, Sq, Sk, D, Dv, causal, mask kind (0 none, 1 bool, 2 f32), mask strides b, h, q, k]. Dv <= 256. */
kernel void attention_f32(TSR_INPUT(Q), TSR_INPUT(Kt), TSR_INPUT(V), TSR_INPUT(Mk), TSR_OUTPUT(Y),
                          global const long* P, float scale) {
  const long i = get_global_id(0);
  const long H = P[1], Sq = P[2], Sk = P[3], D = P[4], Dv = P[5];
  const long qi = i % Sq, bh = i / Sq, b = bh / H, h = bh % H;
  global const float* q = CPTR(float, Q, Q_o) + (bh * Sq + qi) * D;
  global const float* k = CPTR(float, Kt, Kt_o) + bh * Sk * D;
  global const float* v = CPTR(float, V, V_o) + bh * Sk * Dv;
  float acc[256];
  for (long d = 0; d < Dv; ++d) acc[d] = 0.f;
  float mx = -INFINITY, s = 0.f;
  const long kend = P[6] ? min(Sk, qi + 1) : Sk;
  for (long j = 0; j < kend; ++j) {
    float sc = 0.f;
    for (long d = 0; d < D; ++d) sc += q[d] * k[j * D + d];
    sc *= scale;
    if (P[7]) {
      long mo = b * P[8] + h * P[9] + qi * P[10] + j * P[11];
      if (P[7] == 1) {
        if (!CPTR(uchar, Mk, Mk_o)[mo]) continue;
      } else {
        sc += CPTR(float, Mk, Mk_o)[mo];
      }
    }
    if (sc == -INFINITY) continue;
    float nm = fmax(mx, sc);
    float corr = exp(mx - nm), p = exp(sc - nm);
    s = s * corr + p;
    for (long d = 0; d < Dv; ++d) acc[d] = acc[d] * corr + p * v[j * Dv + d];
    mx = nm;
  }
  global float* y = PTR(float, Y, Y_o) + (bh * Sq + qi) * Dv;
  for (long d = 0; d < Dv; ++d) y[d] = acc[d] / s;
}
)CLC";

namespace {

bool IsF32(const TensorArg* t) { return t && t->dtype == TSR_DTYPE_F32; }

Err NeedF32(const NodeArgs& a, size_t min_in, size_t max_in) {
  if (a.inputs.size() > max_in || a.inputs.size() < min_in)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected %zu to %zu inputs, got %zu", a.Describe().c_str(), min_in,
                   max_in, a.inputs.size());
  for (size_t i = 0; i < min_in; ++i)
    if (!a.has_input(i)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is missing", a.Describe().c_str(), i);
  if (!a.has_output(0)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output 0 is missing", a.Describe().c_str());
  for (size_t i = 0; i < a.inputs.size(); ++i)
    if (a.inputs[i] && !IsF32(a.inputs[i]))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: input %zu has dtype %s; the OpenCL kernel supports f32 only",
                     a.Describe().c_str(), i, plugin::DTypeName(a.inputs[i]->dtype));
  if (!IsF32(a.outputs[0]))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: output has dtype %s; the OpenCL kernel supports f32 only",
                   a.Describe().c_str(), plugin::DTypeName(a.outputs[0]->dtype));
  return Err::Ok();
}

// Residual input `z` of a fused op: present iff has_residual.
Err Residual(const NodeArgs& a, size_t z, bool* has) {
  const bool residual = a.attrs().Int("has_residual", 0) != 0;
  *has = a.has_input(z);
  if (residual && !*has)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: has_residual=1 but the residual input %zu is missing",
                   a.Describe().c_str(), z);
  if (!residual && *has)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is given but has_residual=0", a.Describe().c_str(), z);
  if (*has && a.inputs[z]->dims != a.outputs[0]->dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: residual %s must have the output's shape %s", a.Describe().c_str(),
                   DimsStr(a.inputs[z]->dims).c_str(), DimsStr(a.outputs[0]->dims).c_str());
  return Err::Ok();
}

struct GemmSpec {
  int64_t M = 0, N = 0, K = 0, a_sm = 0, a_sk = 0, b_sk = 0, b_sn = 0, c_sm = 0, c_sn = 0;
  bool has_c = false, has_z = false;
  float alpha = 1, beta = 1;
  std::vector<int64_t> bdims, astr, bstr;  // batch
  KArg a = TArg(0), b = TArg(1), c = TArg(0), z = TArg(0), y;  // absent C / Z: any tensor (never read)
};

Launch GemmLaunch(const GemmSpec& g, int32_t act, float p0, float p1) {
  Launch l;
  l.kernel = g.b_sn == 1 ? "gemm_f32_bn1" : "gemm_f32";
  const int64_t br = static_cast<int64_t>(g.bdims.size());
  l.params = {g.M, g.N, g.K, g.a_sm, g.a_sk, g.b_sk, g.b_sn, g.c_sm, g.c_sn, g.has_c, g.has_z, br};
  l.params.insert(l.params.end(), g.bdims.begin(), g.bdims.end());
  l.params.insert(l.params.end(), g.astr.begin(), g.astr.end());
  l.params.insert(l.params.end(), g.bstr.begin(), g.bstr.end());
  l.args = {g.a, g.b, g.c, g.z, g.y, ParamsArg(), F32(g.alpha), F32(g.beta), I32(act), F32(p0), F32(p1)};
  const int64_t batch = Numel(g.bdims);
  l.nd_global = {static_cast<size_t>((g.N + 7) / 8), static_cast<size_t>((g.M + 3) / 4), static_cast<size_t>(batch)};
  l.global = g.M * g.N * batch > 0 ? 1 : 0;
  return l;
}

// MatMul / FusedMatMul (bias = input 2, Z = input 3).
Err BuildMatMul(const NodeArgs& a, OpPlan* plan) {
  const bool fused = std::strcmp(a.node->op_type, "FusedMatMul") == 0;
  Err e = NeedF32(a, 2, fused ? 4 : 2);
  if (!e.ok()) return e;
  const TensorArg& A = *a.inputs[0];
  const TensorArg& B = *a.inputs[1];
  const TensorArg& Y = *a.outputs[0];
  std::vector<int64_t> ad = A.dims, bd = B.dims;
  if (ad.empty() || bd.empty())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: MatMul inputs must have rank >= 1", a.Describe().c_str());
  const bool a1 = ad.size() == 1, b1 = bd.size() == 1;
  if (a1) ad.insert(ad.begin(), 1);
  if (b1) bd.push_back(1);
  GemmSpec g;
  g.M = ad[ad.size() - 2];
  g.K = ad.back();
  g.N = bd.back();
  if (bd[bd.size() - 2] != g.K)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inner dims differ: A %s, B %s", a.Describe().c_str(),
                   DimsStr(A.dims).c_str(), DimsStr(B.dims).c_str());
  std::vector<int64_t> abat(ad.begin(), ad.end() - 2), bbat(bd.begin(), bd.end() - 2);
  const size_t br = std::max(abat.size(), bbat.size());
  std::vector<int64_t> ybat(br, 1);
  for (size_t i = 0; i < br; ++i) {
    int64_t x = i + abat.size() >= br ? abat[i + abat.size() - br] : 1;
    int64_t z = i + bbat.size() >= br ? bbat[i + bbat.size() - br] : 1;
    if (x != z && x != 1 && z != 1)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: batch dims of A %s and B %s do not broadcast", a.Describe().c_str(),
                     DimsStr(A.dims).c_str(), DimsStr(B.dims).c_str());
    ybat[i] = std::max(x, z);
  }
  std::vector<int64_t> want = ybat;
  if (!a1) want.push_back(g.M);
  if (!b1) want.push_back(g.N);
  if (want != Y.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s, expected %s", a.Describe().c_str(),
                   DimsStr(Y.dims).c_str(), DimsStr(want).c_str());
  std::vector<int64_t> as, bs;
  BroadcastStrides(abat, ybat, &as);
  BroadcastStrides(bbat, ybat, &bs);
  for (auto& s : as) s *= g.M * g.K;
  for (auto& s : bs) s *= g.K * g.N;
  bool b_shared = true;
  for (int64_t s : bs) b_shared &= s == 0;
  if (b_shared && Numel(abat) == Numel(ybat)) {
    // One B for every batch and A not broadcast: fold the batch into M ([b*M, K] x [K, N]),
    // which keeps the 4-row blocks full when M is small (e.g. [S, 1, K] x [K, N]).
    g.M *= Numel(ybat);
  } else {
    g.bdims = ybat;
    g.astr = as;
    g.bstr = bs;
  }
  g.a_sm = g.K;
  g.a_sk = 1;
  g.b_sk = g.N;
  g.b_sn = 1;
  int32_t act = kOpIdentity;
  float p0 = 0, p1 = 0;
  if (fused) {
    if (a.has_input(2)) {
      const TensorArg& bias = *a.inputs[2];
      if (bias.dims.size() != 1 || bias.dims[0] != g.N)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: bias %s must be 1-D of the last dim %lld", a.Describe().c_str(),
                       DimsStr(bias.dims).c_str(), static_cast<long long>(g.N));
      g.has_c = true;
      g.c = TArg(2);
      g.c_sm = 0;
      g.c_sn = 1;
    }
    if (!(e = Residual(a, 3, &g.has_z)).ok()) return e;
    if (g.has_z) g.z = TArg(3);
    if (!(e = ParseActivation(a, &act, &p0, &p1)).ok()) return e;
  }
  g.y = TArg(a.out_slot(0));
  plan->launches.push_back(GemmLaunch(g, act, p0, p1));
  return Err::Ok();
}

// Gemm / FusedGemm.
Err BuildGemm(const NodeArgs& a, OpPlan* plan) {
  const bool fused = std::strcmp(a.node->op_type, "FusedGemm") == 0;
  Err e = NeedF32(a, 2, 3);
  if (!e.ok()) return e;
  const TensorArg& A = *a.inputs[0];
  const TensorArg& B = *a.inputs[1];
  const TensorArg& Y = *a.outputs[0];
  if (A.dims.size() != 2 || B.dims.size() != 2)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: A %s and B %s must be 2-D", a.Describe().c_str(),
                   DimsStr(A.dims).c_str(), DimsStr(B.dims).c_str());
  plugin::NodeAttrs at = a.attrs();
  const bool ta = at.Int("transA", 0) != 0, tb = at.Int("transB", 0) != 0;
  GemmSpec g;
  g.M = ta ? A.dims[1] : A.dims[0];
  g.K = ta ? A.dims[0] : A.dims[1];
  const int64_t kb = tb ? B.dims[1] : B.dims[0];
  g.N = tb ? B.dims[0] : B.dims[1];
  if (kb != g.K)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inner dims differ: A %s (transA=%d), B %s (transB=%d)",
                   a.Describe().c_str(), DimsStr(A.dims).c_str(), ta, DimsStr(B.dims).c_str(), tb);
  if (Y.dims != std::vector<int64_t>{g.M, g.N})
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s, expected [%lld,%lld]", a.Describe().c_str(),
                   DimsStr(Y.dims).c_str(), static_cast<long long>(g.M), static_cast<long long>(g.N));
  g.a_sm = ta ? 1 : g.K;
  g.a_sk = ta ? g.M : 1;
  g.b_sk = tb ? 1 : g.N;
  g.b_sn = tb ? g.K : 1;
  g.alpha = at.Float("alpha", 1.f);
  g.beta = at.Float("beta", 1.f);
  if (a.has_input(2)) {
    std::vector<int64_t> cs;
    if (!BroadcastStrides(a.inputs[2]->dims, {g.M, g.N}, &cs))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: C %s does not broadcast to [%lld,%lld]", a.Describe().c_str(),
                     DimsStr(a.inputs[2]->dims).c_str(), static_cast<long long>(g.M), static_cast<long long>(g.N));
    g.has_c = true;
    g.c = TArg(2);
    g.c_sm = cs[0];
    g.c_sn = cs[1];
  }
  int32_t act = kOpIdentity;
  float p0 = 0, p1 = 0;
  if (fused) {
    if (at.Int("has_residual", 0) != 0)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: FusedGemm has no residual input (has_residual must be 0)",
                     a.Describe().c_str());
    if (!(e = ParseActivation(a, &act, &p0, &p1)).ok()) return e;
  }
  if (tb && B.const_data) {
    // Constant transposed weights: transpose once now so rows of B are contiguous (vector loads).
    std::vector<float> bt(static_cast<size_t>(g.K * g.N));
    const float* src = static_cast<const float*>(B.const_data);
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t k = 0; k < g.K; ++k) bt[static_cast<size_t>(k * g.N + n)] = src[n * g.K + k];
    std::vector<uint8_t> bytes(bt.size() * sizeof(float));
    if (!bt.empty()) std::memcpy(bytes.data(), bt.data(), bytes.size());
    g.b = HostArg(static_cast<int>(plan->host_consts.size()));
    plan->host_consts.push_back(std::move(bytes));
    g.b_sk = g.N;
    g.b_sn = 1;
  }
  g.y = TArg(a.out_slot(0));
  plan->launches.push_back(GemmLaunch(g, act, p0, p1));
  return Err::Ok();
}

// Spatial attributes of Conv / pooling for 1-D or 2-D windows (1-D as H = 1).
struct Window {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, peh = 0, pew = 0, dh = 1, dw = 1;
};

Err ParseWindow(const NodeArgs& a, const std::vector<int64_t>& in_sp, const std::vector<int64_t>& out_sp,
                const std::vector<int64_t>& kernel, Window* w) {
  plugin::NodeAttrs at = a.attrs();
  const size_t nd = in_sp.size();
  std::vector<int64_t> strides = at.Ints("strides", std::vector<int64_t>(nd, 1));
  std::vector<int64_t> dil = at.Ints("dilations", std::vector<int64_t>(nd, 1));
  std::vector<int64_t> pads = at.Ints("pads", std::vector<int64_t>(2 * nd, 0));
  if (strides.size() != nd || dil.size() != nd || pads.size() != 2 * nd || kernel.size() != nd)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: strides/dilations/pads/kernel_shape do not match %zu spatial dims",
                   a.Describe().c_str(), nd);
  const std::string ap = at.String("auto_pad", "NOTSET");
  for (size_t d = 0; d < nd; ++d) {
    if (strides[d] < 1 || dil[d] < 1 || kernel[d] < 1)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: strides, dilations and kernel sizes must be >= 1",
                     a.Describe().c_str());
    if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      int64_t total = std::max<int64_t>(0, (out_sp[d] - 1) * strides[d] + (kernel[d] - 1) * dil[d] + 1 - in_sp[d]);
      pads[d] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
      pads[d + nd] = total - pads[d];
    } else if (ap == "VALID") {
      pads[d] = pads[d + nd] = 0;
    } else if (ap != "NOTSET" && !ap.empty()) {
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unknown auto_pad '%s'", a.Describe().c_str(), ap.c_str());
    }
  }
  if (nd == 1) {
    w->kw = kernel[0];
    w->sw = strides[0];
    w->pw = pads[0];
    w->pew = pads[1];
    w->dw = dil[0];
  } else {
    w->kh = kernel[0];
    w->kw = kernel[1];
    w->sh = strides[0];
    w->sw = strides[1];
    w->ph = pads[0];
    w->pw = pads[1];
    w->peh = pads[2];
    w->pew = pads[3];
    w->dh = dil[0];
    w->dw = dil[1];
  }
  return Err::Ok();
}

// Conv / FusedConv (bias = input 2, Z = input 3).
Err BuildConv(const NodeArgs& a, OpPlan* plan) {
  const bool fused = std::strcmp(a.node->op_type, "FusedConv") == 0;
  Err e = NeedF32(a, 2, fused ? 4 : 3);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const TensorArg& W = *a.inputs[1];
  const TensorArg& Y = *a.outputs[0];
  const size_t r = X.dims.size();
  if ((r != 3 && r != 4) || W.dims.size() != r || Y.dims.size() != r)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: the OpenCL kernel supports 1-D and 2-D convolutions (X %s, W %s)",
                   a.Describe().c_str(), DimsStr(X.dims).c_str(), DimsStr(W.dims).c_str());
  const int64_t group = a.attrs().Int("group", 1);
  const int64_t C = X.dims[1], M = W.dims[0];
  if (group < 1 || C % group != 0 || M % group != 0 || W.dims[1] != C / group)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: W %s does not fit X %s with group %lld", a.Describe().c_str(),
                   DimsStr(W.dims).c_str(), DimsStr(X.dims).c_str(), static_cast<long long>(group));
  if (Y.dims[0] != X.dims[0] || Y.dims[1] != M)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s does not match X %s and W %s", a.Describe().c_str(),
                   DimsStr(Y.dims).c_str(), DimsStr(X.dims).c_str(), DimsStr(W.dims).c_str());
  std::vector<int64_t> in_sp(X.dims.begin() + 2, X.dims.end()), out_sp(Y.dims.begin() + 2, Y.dims.end());
  std::vector<int64_t> wk(W.dims.begin() + 2, W.dims.end());
  std::vector<int64_t> ks = a.attrs().Ints("kernel_shape", wk);
  if (ks != wk)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: kernel_shape %s differs from the weights' %s", a.Describe().c_str(),
                   DimsStr(ks).c_str(), DimsStr(wk).c_str());
  Window w;
  if (!(e = ParseWindow(a, in_sp, out_sp, wk, &w)).ok()) return e;
  const int64_t H = r == 4 ? in_sp[0] : 1, Wd = in_sp.back(), OH = r == 4 ? out_sp[0] : 1, OW = out_sp.back();
  // Check the output size the window implies.
  auto osz = [](int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d) {
    return (in + p0 + p1 - (k - 1) * d - 1) / s + 1;
  };
  if (osz(H, w.kh, w.sh, w.ph, w.peh, w.dh) != OH || osz(Wd, w.kw, w.sw, w.pw, w.pew, w.dw) != OW)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s does not match the window over X %s",
                   a.Describe().c_str(), DimsStr(Y.dims).c_str(), DimsStr(X.dims).c_str());
  bool has_b = a.has_input(2);
  if (has_b && a.inputs[2]->numel != M)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: bias has %lld elements, expected %lld", a.Describe().c_str(),
                   static_cast<long long>(a.inputs[2]->numel), static_cast<long long>(M));
  bool has_z = false;
  int32_t act = kOpIdentity;
  float p0 = 0, p1 = 0;
  if (fused) {
    if (!(e = Residual(a, 3, &has_z)).ok()) return e;
    if (!(e = ParseActivation(a, &act, &p0, &p1)).ok()) return e;
  }
  if (group == 1) {
    // im2col (into scratch; skipped for 1x1/stride 1/no pad) + GEMM, one image at a time.
    const int64_t ckk = C * w.kh * w.kw, sp = OH * OW;
    const bool direct_b = w.kh == 1 && w.kw == 1 && w.sh == 1 && w.sw == 1 && w.ph == 0 && w.pw == 0 &&
                          w.peh == 0 && w.pew == 0 && H * Wd == sp;
    if (!direct_b) plan->scratch_bytes = static_cast<uint64_t>(ckk * sp) * sizeof(float);
    for (int64_t n = 0; n < X.dims[0]; ++n) {
      const uint64_t x_off = static_cast<uint64_t>(n * C * H * Wd) * sizeof(float);
      const uint64_t y_off = static_cast<uint64_t>(n * M * sp) * sizeof(float);
      KArg col;
      if (direct_b) {
        col = TArgAt(0, x_off);
      } else {
        col = ScratchArg(0);
        Launch ic;
        ic.kernel = "im2col_f32";
        ic.params = {C, H, Wd, OH, OW, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw};
        ic.args = {TArgAt(0, x_off), col, ParamsArg()};
        ic.nd_global = {static_cast<size_t>(OW), static_cast<size_t>(OH), static_cast<size_t>(ckk)};
        ic.global = static_cast<uint64_t>(ckk * sp);
        plan->launches.push_back(std::move(ic));
      }
      GemmSpec g;
      g.M = M;
      g.N = sp;
      g.K = ckk;
      g.a_sm = ckk;
      g.a_sk = 1;
      g.b_sk = sp;
      g.b_sn = 1;
      g.a = TArg(1);
      g.b = col;
      if (has_b) {
        g.has_c = true;
        g.c = TArg(2);
        g.c_sm = 1;
        g.c_sn = 0;
      }
      if (has_z) {
        g.has_z = true;
        g.z = TArgAt(3, y_off);
      }
      g.y = TArgAt(a.out_slot(0), y_off);
      plan->launches.push_back(GemmLaunch(g, act, p0, p1));
    }
    return Err::Ok();
  }
  Launch l;
  l.kernel = "conv2d_f32";
  l.params = {X.dims[0], C, H, Wd, M, OH, OW, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw, group, has_b, has_z};
  l.args = {TArg(0),          TArg(1),      TArg(has_b ? 2 : 0), TArg(has_z ? 3 : 0), TArg(a.out_slot(0)),
            ParamsArg(),      I32(act),     F32(p0),             F32(p1)};
  l.global = static_cast<uint64_t>(Y.numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

Err BuildPool(const NodeArgs& a, OpPlan* plan) {
  const std::string op = a.node->op_type;
  Err e = NeedF32(a, 1, 1);
  if (!e.ok()) return e;
  if (a.has_output(1))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: the Indices output is not supported by the OpenCL kernel",
                   a.Describe().c_str());
  const TensorArg& X = *a.inputs[0];
  const TensorArg& Y = *a.outputs[0];
  const size_t r = X.dims.size();
  if (r < 3 || Y.dims.size() != r || Y.dims[0] != X.dims[0] || Y.dims[1] != X.dims[1])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %s / output %s are not N,C,spatial...", a.Describe().c_str(),
                   DimsStr(X.dims).c_str(), DimsStr(Y.dims).c_str());
  const int64_t NC = X.dims[0] * X.dims[1];
  if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
    Launch l;
    l.kernel = "global_pool_f32";
    l.params = {NC, X.numel / std::max<int64_t>(NC, 1)};
    l.args = {TArg(0), TArg(a.out_slot(0)), ParamsArg(), I32(op == "GlobalMaxPool" ? 1 : 0)};
    l.global = static_cast<uint64_t>(NC);
    plan->launches.push_back(std::move(l));
    return Err::Ok();
  }
  if (r != 3 && r != 4)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: the OpenCL kernel supports 1-D and 2-D pooling", a.Describe().c_str());
  plugin::NodeAttrs at = a.attrs();
  std::vector<int64_t> ks = at.Ints("kernel_shape");
  std::vector<int64_t> in_sp(X.dims.begin() + 2, X.dims.end()), out_sp(Y.dims.begin() + 2, Y.dims.end());
  Window w;
  if (!(e = ParseWindow(a, in_sp, out_sp, ks, &w)).ok()) return e;
  Launch l;
  l.kernel = "pool2d_f32";
  l.params = {NC,   r == 4 ? in_sp[0] : 1, in_sp.back(), r == 4 ? out_sp[0] : 1, out_sp.back(), w.kh, w.kw, w.sh,
              w.sw, w.ph, w.pw, w.dh, w.dw, at.Int("count_include_pad", 0), w.peh, w.pew};
  l.args = {TArg(0), TArg(a.out_slot(0)), ParamsArg(), I32(op == "MaxPool" ? 0 : 1)};
  l.global = static_cast<uint64_t>(Y.numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

std::string ClaimPool(const tsr_node_view& n, const tsr_graph_view& g) {
  if (n.num_outputs > 1 && n.outputs[1] >= 0) return "MaxPool's Indices output is not supported by the OpenCL kernel";
  for (uint32_t k = 0; k < n.num_inputs; ++k)
    if (n.inputs[k] >= 0 && g.values[n.inputs[k]].dtype != TSR_DTYPE_F32) return "the OpenCL kernel supports f32 only";
  int32_t rank = n.num_inputs ? g.values[n.inputs[0]].rank : -1;
  std::string op = n.op_type;
  if (op != "GlobalAveragePool" && op != "GlobalMaxPool" && rank > 4) return "3-D pooling is not supported";
  return "";
}

std::string ClaimConv(const tsr_node_view& n, const tsr_graph_view& g) {
  for (uint32_t k = 0; k < n.num_inputs; ++k)
    if (n.inputs[k] >= 0 && g.values[n.inputs[k]].dtype != TSR_DTYPE_F32) return "the OpenCL kernel supports f32 only";
  int32_t rank = n.num_inputs ? g.values[n.inputs[0]].rank : -1;
  if (rank > 4) return "3-D convolution is not supported by the OpenCL kernel";
  return "";
}

Err BuildBatchNorm(const NodeArgs& a, OpPlan* plan) {
  Err e = NeedF32(a, 5, 5);
  if (!e.ok()) return e;
  for (size_t k = 1; k < a.outputs.size(); ++k)
    if (a.outputs[k])
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: training outputs are not supported (inference only)",
                     a.Describe().c_str());
  if (a.attrs().Int("training_mode", 0) != 0)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: training_mode=1 is not supported", a.Describe().c_str());
  const TensorArg& X = *a.inputs[0];
  if (X.dims.size() < 2)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input must have rank >= 2", a.Describe().c_str());
  const int64_t C = X.dims[1];
  for (size_t k = 1; k < 5; ++k)
    if (a.inputs[k]->numel != C)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu has %lld elements, expected C = %lld",
                     a.Describe().c_str(), k, static_cast<long long>(a.inputs[k]->numel), static_cast<long long>(C));
  Launch l;
  l.kernel = "batchnorm_f32";
  l.params = {C, X.numel / std::max<int64_t>(1, X.dims[0] * C)};
  l.args = {TArg(0), TArg(1), TArg(2), TArg(3), TArg(4), TArg(a.out_slot(0)), ParamsArg(),
            F32(a.attrs().Float("epsilon", 1e-5f))};
  l.global = static_cast<uint64_t>(X.numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

Err BuildLayerNorm(const NodeArgs& a, OpPlan* plan) {
  Err e = NeedF32(a, 2, 3);
  if (!e.ok()) return e;
  for (size_t k = 1; k < a.outputs.size(); ++k)
    if (a.outputs[k])
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: the Mean/InvStdDev outputs are not supported by the OpenCL kernel",
                     a.Describe().c_str());
  const TensorArg& X = *a.inputs[0];
  const int64_t r = static_cast<int64_t>(X.dims.size());
  int64_t axis = 0;
  if (!NormAxis(a.attrs().Int("axis", -1), r, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis out of range for rank %lld", a.Describe().c_str(),
                   static_cast<long long>(r));
  int64_t rows = 1, n = 1;
  for (int64_t d = 0; d < r; ++d) (d < axis ? rows : n) *= X.dims[d];
  // Scale and bias broadcast over the normalized dims as trailing-aligned suffixes.
  std::vector<int64_t> norm(X.dims.begin() + axis, X.dims.end());
  for (size_t k = 1; k <= 2; ++k) {
    if (!a.has_input(k)) continue;
    const TensorArg& t = *a.inputs[k];
    // Modulo indexing: the tensor, without leading 1s, must be a trailing block of the normalized dims.
    size_t lead1 = 0;
    while (lead1 < t.dims.size() && t.dims[lead1] == 1) ++lead1;
    std::vector<int64_t> td(t.dims.begin() + lead1, t.dims.end());
    bool suffix = td.size() <= norm.size() && std::equal(td.begin(), td.end(), norm.end() - td.size());
    if (!suffix)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s %s does not broadcast to the normalized shape %s",
                     a.Describe().c_str(), k == 1 ? "scale" : "bias", DimsStr(t.dims).c_str(), DimsStr(norm).c_str());
  }
  Launch l;
  l.kernel = "layernorm_f32";
  l.params = {rows, n, a.inputs[1]->numel, a.has_input(2) ? a.inputs[2]->numel : 0};
  l.args = {TArg(0), TArg(1), TArg(a.has_input(2) ? 2 : 1), TArg(a.out_slot(0)), ParamsArg(),
            F32(a.attrs().Float("epsilon", 1e-5f))};
  l.global = static_cast<uint64_t>(rows);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

Err BuildSoftmax(const NodeArgs& a, OpPlan* plan) {
  Err e = NeedF32(a, 1, 1);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const int64_t r = static_cast<int64_t>(X.dims.size());
  const bool old = a.node->opset < 13;
  int64_t axis = 0;
  if (!NormAxis(a.attrs().Int("axis", old ? 1 : -1), std::max<int64_t>(r, 1), &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis out of range for rank %lld", a.Describe().c_str(),
                   static_cast<long long>(r));
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t d = 0; d < r; ++d) {
    if (d < axis) outer *= X.dims[d];
    else if (d == axis || old) n *= X.dims[d];
    else inner *= X.dims[d];
  }
  Launch l;
  l.kernel = "softmax_f32";
  l.params = {outer, n, inner};
  l.args = {TArg(0), TArg(a.out_slot(0)), ParamsArg(), I32(std::strcmp(a.node->op_type, "LogSoftmax") == 0)};
  l.global = static_cast<uint64_t>(n > 0 ? outer * inner : 0);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

Err BuildReduce(const NodeArgs& a, OpPlan* plan) {
  const std::string op = a.node->op_type;
  // Inputs: data and, from opset 13 (ReduceSum) / 18 (the others), optional constant axes.
  if (a.inputs.size() > 2 || !a.has_input(0) || !a.has_output(0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected data, optional axes and one output, got %zu inputs",
                   a.Describe().c_str(), a.inputs.size());
  if (!IsF32(a.inputs[0]) || !IsF32(a.outputs[0]))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: data and output must be f32 for the OpenCL kernel", a.Describe().c_str());
  const TensorArg& X = *a.inputs[0];
  const TensorArg& Y = *a.outputs[0];
  const int64_t r = static_cast<int64_t>(X.dims.size());
  plugin::NodeAttrs at = a.attrs();
  std::vector<int64_t> axes;
  if (at.Has("axes")) {
    axes = at.Ints("axes");
  } else if (a.has_input(1)) {
    if (!ConstInts(*a.inputs[1], &axes))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: axes must be a constant for the OpenCL kernel", a.Describe().c_str());
  }
  const bool keep = at.Int("keepdims", 1) != 0;
  std::vector<int64_t> red(static_cast<size_t>(r), 0);
  if (axes.empty()) {
    if (at.Int("noop_with_empty_axes", 0) != 0) {
      plan->launches.push_back(CopyLaunch(0, a.out_slot(0), static_cast<uint64_t>(X.nbytes())));
      return Err::Ok();
    }
    std::fill(red.begin(), red.end(), 1);
  }
  for (int64_t ax : axes) {
    int64_t d = 0;
    if (!NormAxis(ax, r, &d))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for rank %lld", a.Describe().c_str(),
                     static_cast<long long>(ax), static_cast<long long>(r));
    red[d] = 1;
  }
  std::vector<int64_t> want;
  int64_t cnt = 1;
  for (int64_t d = 0; d < r; ++d) {
    if (red[d]) {
      cnt *= X.dims[d];
      if (keep) want.push_back(1);
    } else {
      want.push_back(X.dims[d]);
    }
  }
  if (want != Y.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s, expected %s", a.Describe().c_str(),
                   DimsStr(Y.dims).c_str(), DimsStr(want).c_str());
  int32_t code = op == "ReduceSum" ? 0 : op == "ReduceMean" ? 1 : op == "ReduceMax" ? 2 : op == "ReduceMin" ? 3 : 4;
  Launch l;
  l.kernel = "reduce_f32";
  l.params.push_back(r);
  l.params.insert(l.params.end(), X.dims.begin(), X.dims.end());
  std::vector<int64_t> s = ContiguousStrides(X.dims);
  l.params.insert(l.params.end(), s.begin(), s.end());
  l.params.insert(l.params.end(), red.begin(), red.end());
  l.params.push_back(cnt);
  l.args = {TArg(0), TArg(a.out_slot(0)), ParamsArg(), I32(code)};
  l.global = static_cast<uint64_t>(Y.numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

std::string ClaimReduce(const tsr_node_view& n, const tsr_graph_view& g) {
  if (n.num_inputs < 1 || n.inputs[0] < 0 || g.values[n.inputs[0]].dtype != TSR_DTYPE_F32)
    return "the OpenCL kernel supports f32 only";
  if (plugin::NodeAttrs(n).Has("axes")) return "";
  if (n.num_inputs > 1 && n.inputs[1] >= 0 && !(g.values[n.inputs[1]].flags & TSR_VALUE_CONSTANT))
    return "axes must be a constant for the OpenCL kernel";
  return "";
}

Err BuildAttention(const NodeArgs& a, OpPlan* plan) {
  const std::string who = a.Describe();
  if (a.inputs.size() < 3 || a.inputs.size() > 4 || !a.has_input(0) || !a.has_input(1) || !a.has_input(2))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected inputs Q, K, V and an optional mask, got %zu inputs",
                   who.c_str(), a.inputs.size());
  if (!a.has_output(0)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output 0 is missing", who.c_str());
  const char* names[] = {"Q", "K", "V"};
  for (int i = 0; i < 3; ++i) {
    if (!IsF32(a.inputs[i]))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s must be f32", who.c_str(), names[i]);
    if (a.inputs[i]->dims.size() != 4)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s must have rank 4 ([batch, heads, seq, head_dim]), got %s",
                     who.c_str(), names[i], DimsStr(a.inputs[i]->dims).c_str());
  }
  const auto& qd = a.inputs[0]->dims;
  const auto& kd = a.inputs[1]->dims;
  const auto& vd = a.inputs[2]->dims;
  if (qd[0] != kd[0] || qd[0] != vd[0] || qd[1] != kd[1] || qd[1] != vd[1] || qd[3] != kd[3] || kd[2] != vd[2])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Q %s, K %s and V %s do not fit together", who.c_str(),
                   DimsStr(qd).c_str(), DimsStr(kd).c_str(), DimsStr(vd).c_str());
  const int64_t B = qd[0], H = qd[1], Sq = qd[2], D = qd[3], Sk = kd[2], Dv = vd[3];
  if (Dv > 256)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: value head dim %lld exceeds the OpenCL kernel's 256", who.c_str(),
                   static_cast<long long>(Dv));
  const TensorArg& Y = *a.outputs[0];
  if (!IsF32(&Y) || Y.dims != std::vector<int64_t>{B, H, Sq, Dv})
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output is %s %s, expected f32 [%lld,%lld,%lld,%lld]", who.c_str(),
                   plugin::DTypeName(Y.dtype), DimsStr(Y.dims).c_str(), static_cast<long long>(B),
                   static_cast<long long>(H), static_cast<long long>(Sq), static_cast<long long>(Dv));
  plugin::NodeAttrs at = a.attrs();
  const tsr_attr_view* sa = at.Find("scale");
  if (sa && sa->type != TSR_ATTR_FLOAT)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'scale' must be a float", who.c_str());
  const float scale = at.Float("scale", D > 0 ? 1.f / std::sqrt(static_cast<float>(D)) : 1.f);
  if (!std::isfinite(scale))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'scale' must be finite", who.c_str());
  const int64_t causal = at.Int("causal", 0);
  if (causal != 0 && causal != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'causal' must be 0 or 1, got %lld", who.c_str(),
                   static_cast<long long>(causal));
  int64_t kind = 0;
  std::vector<int64_t> ms(4, 0);
  if (a.has_input(3)) {
    const TensorArg& m = *a.inputs[3];
    if (m.dtype != TSR_DTYPE_BOOL && m.dtype != TSR_DTYPE_F32)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: mask has dtype %s; expected bool or f32", who.c_str(),
                     plugin::DTypeName(m.dtype));
    if (!BroadcastStrides(m.dims, {B, H, Sq, Sk}, &ms))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: mask %s does not broadcast to the scores [%lld,%lld,%lld,%lld]",
                     who.c_str(), DimsStr(m.dims).c_str(), static_cast<long long>(B), static_cast<long long>(H),
                     static_cast<long long>(Sq), static_cast<long long>(Sk));
    kind = m.dtype == TSR_DTYPE_BOOL ? 1 : 2;
  }
  Launch l;
  l.kernel = "attention_f32";
  l.params = {B, H, Sq, Sk, D, Dv, causal, kind, ms[0], ms[1], ms[2], ms[3]};
  l.args = {TArg(0), TArg(1), TArg(2), TArg(kind ? 3 : 0), TArg(a.out_slot(0)), ParamsArg(), F32(scale)};
  l.global = static_cast<uint64_t>(B * H * Sq);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

std::string ClaimAttention(const tsr_node_view& n, const tsr_graph_view& g) {
  for (uint32_t k = 0; k < 3 && k < n.num_inputs; ++k)
    if (n.inputs[k] < 0 || g.values[n.inputs[k]].dtype != TSR_DTYPE_F32) return "Q, K and V must be f32";
  if (n.num_inputs > 3 && n.inputs[3] >= 0) {
    int32_t mt = g.values[n.inputs[3]].dtype;
    if (mt != TSR_DTYPE_BOOL && mt != TSR_DTYPE_F32) return "the mask must be bool or f32";
  }
  if (n.num_inputs > 2 && n.inputs[2] >= 0) {
    const tsr_value_view& v = g.values[n.inputs[2]];
    if (v.rank == 4 && v.dims[3] > 256) return "value head dim > 256 is not supported by the OpenCL kernel";
  }
  return "";
}

std::string ClaimF32Inputs(const tsr_node_view& n, const tsr_graph_view& g) {
  for (uint32_t k = 0; k < n.num_inputs; ++k)
    if (n.inputs[k] >= 0 && g.values[n.inputs[k]].dtype != TSR_DTYPE_F32) return "the OpenCL kernel supports f32 only";
  for (uint32_t k = 1; k < n.num_outputs; ++k)
    if (n.outputs[k] >= 0) return std::string("optional output ") + std::to_string(k) + " is not supported";
  return "";
}

}  // namespace

void RegisterNnOps(std::vector<OpEntry>& r) {
  r.push_back({"", "MatMul", &BuildMatMul, nullptr});
  r.push_back({"tessera", "FusedMatMul", &BuildMatMul, nullptr});
  r.push_back({"", "Gemm", &BuildGemm, nullptr});
  r.push_back({"tessera", "FusedGemm", &BuildGemm, nullptr});
  r.push_back({"", "Conv", &BuildConv, &ClaimConv});
  r.push_back({"tessera", "FusedConv", &BuildConv, &ClaimConv});
  for (const char* op : {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"})
    r.push_back({"", op, &BuildPool, &ClaimPool});
  r.push_back({"", "BatchNormalization", &BuildBatchNorm, &ClaimF32Inputs});
  r.push_back({"", "LayerNormalization", &BuildLayerNorm, &ClaimF32Inputs});
  r.push_back({"", "Softmax", &BuildSoftmax, nullptr});
  r.push_back({"", "LogSoftmax", &BuildSoftmax, nullptr});
  for (const char* op : {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"})
    r.push_back({"", op, &BuildReduce, &ClaimReduce});
  r.push_back({"tessera", "FusedAttention", &BuildAttention, &ClaimAttention});
}

}  // namespace tessera::ocl
