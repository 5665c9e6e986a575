// The shared GPU kernels (backends/common/gpu_kernels/*.cuh) built as plain
// C++ through the host emulation of the macro layer (host_emulation.h) and run
// on the CPU: every block as real threads with real barriers and warp
// shuffles. This checks the kernels' indexing, reductions, online softmax
// and masking logic against naive references on a machine without a GPU;
// the same sources are compiled by nvcc for the plugin.
#define TSR_GPU_HOST_EMULATION 1
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backends/common/gpu_kernels/attention.cuh"
#include "backends/common/gpu_kernels/elementwise.cuh"
#include "backends/common/gpu_kernels/reduce.cuh"
#include "backends/cuda/cuda_host.h"

namespace tessera::gpu {
namespace {

using emu::Dim3;
using emu::Launch;

std::vector<float> Random(size_t n, unsigned seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

void Near(const std::vector<float>& got, const std::vector<float>& want, float tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    if (std::isnan(got[i]) && std::isnan(want[i])) continue;
    if (!(std::fabs(got[i] - want[i]) <= tol * (1.f + std::fabs(want[i])))) {
      ADD_FAILURE() << what << ": element " << i << " = " << got[i] << ", expected " << want[i];
      ++bad;
    }
  }
}

std::vector<TsrHalf> ToHalf(const std::vector<float>& f) {
  std::vector<TsrHalf> h(f.size());
  for (size_t i = 0; i < f.size(); ++i) h[i] = TsrFromF<TsrHalf>(f[i]);
  return h;
}
std::vector<float> FromHalf(const std::vector<TsrHalf>& h) {
  std::vector<float> f(h.size());
  for (size_t i = 0; i < h.size(); ++i) f[i] = TsrToF(h[i]);
  return f;
}

TEST(GpuKernelsEmulated, EwProgramBroadcastChainInFloatAndHalf) {
  // y = gelu(x + b) * 2 with b broadcast over the last dim, x [3, 5, 7].
  const std::vector<int64_t> out = {3, 5, 7};
  const std::vector<float> x = Random(105, 1), b = Random(7, 2);
  EwProgram p;
  p.num_inputs = 2;
  p.num_consts = 1;
  p.consts[0] = 2.f;
  p.rank = 3;
  for (int d = 0; d < 3; ++d) p.dims[d] = out[d];
  p.flat[0] = 1;
  std::vector<int64_t> st;
  ASSERT_TRUE(cuda::BroadcastStrides(out, {7}, &st).ok());
  for (int d = 0; d < 3; ++d) p.strides[1][d] = st[d];
  p.op[0] = kEwAdd; p.a[0] = 0; p.b[0] = 1;         // r3
  p.op[1] = kEwGelu; p.a[1] = 3; p.b[1] = -1;       // r4
  p.op[2] = kEwMul; p.a[2] = 4; p.b[2] = 2;         // r5
  p.num_instr = 3;
  std::vector<float> want(105);
  for (int i = 0; i < 105; ++i) {
    const float v = x[i] + b[i % 7];
    want[i] = 0.5f * v * (1.f + std::erf(v / std::sqrt(2.f))) * 2.f;
  }
  std::vector<float> y(105, -1.f);
  EwInputs<float> in{};
  in.p[0] = x.data();
  in.p[1] = b.data();
  Launch({2}, {32}, 0, [&] { EwProgramKernel<float>(p, in, y.data(), 105); });  // grid-stride: 64 threads, 105 items
  Near(y, want, 1e-6f, "f32");
  const std::vector<TsrHalf> xh = ToHalf(x), bh = ToHalf(b);
  std::vector<TsrHalf> yh(105);
  EwInputs<TsrHalf> inh{};
  inh.p[0] = xh.data();
  inh.p[1] = bh.data();
  Launch({1}, {64}, 0, [&] { EwProgramKernel<TsrHalf>(p, inh, yh.data(), 105); });
  Near(FromHalf(yh), want, 5e-3f, "f16");
}

TEST(GpuKernelsEmulated, SimpleFastPathMatchesTheInterpreter) {
  const std::vector<float> x = Random(50, 20), z = {0.75f};
  for (int32_t op : {kEwSub, kEwDiv, kEwPow, kEwMax}) {
    for (int scalar_first : {0, 1}) {
      EwProgram p;
      p.num_inputs = 2;
      p.rank = 1;
      p.dims[0] = 50;
      p.flat[0] = scalar_first ? 2 : 1;
      p.flat[1] = scalar_first ? 1 : 2;
      p.op[0] = op;
      p.a[0] = 0;
      p.b[0] = 1;
      p.num_instr = 1;
      ASSERT_TRUE(EwIsSimple(p));
      EwInputs<float> in{};
      in.p[0] = scalar_first ? z.data() : x.data();
      in.p[1] = scalar_first ? x.data() : z.data();
      std::vector<float> y1(50), y2(50);
      Launch({2}, {32}, 0, [&] { EwSimpleKernel<float>(p, in, y1.data(), 50); });
      Launch({1}, {32}, 0, [&] { EwProgramKernel<float>(p, in, y2.data(), 50); });
      for (int i = 0; i < 50; ++i) {
        if (std::isnan(y2[i])) {
          EXPECT_TRUE(std::isnan(y1[i]));
        } else {
          EXPECT_EQ(y1[i], y2[i]) << op << " " << i;
        }
      }
    }
  }
  EwProgram chain;
  chain.num_inputs = 1;
  chain.num_instr = 2;
  chain.flat[0] = 1;
  EXPECT_FALSE(EwIsSimple(chain));
  EwProgram bcast;
  bcast.num_inputs = 2;
  bcast.num_instr = 1;
  bcast.flat[0] = 1;
  bcast.b[0] = 1;
  EXPECT_FALSE(EwIsSimple(bcast)) << "input 1 needs strides";
}

TEST(GpuKernelsEmulated, CompareWhereCastAndIntegerOps) {
  const std::vector<float> a = Random(24, 3), c = Random(4, 4);
  BcastGeom g;
  ASSERT_TRUE(cuda::MakeBcastGeom({2, 3, 4}, {{2, 3, 4}, {4}}, &g).ok());
  std::vector<uint8_t> gt(24);
  Launch({1}, {32}, 0, [&] { CompareKernel<float, float>(kCmpGreater, g, a.data(), c.data(), gt.data(), 24); });
  BcastGeom g3;
  ASSERT_TRUE(cuda::MakeBcastGeom({2, 3, 4}, {{2, 3, 4}, {2, 3, 4}, {4}}, &g3).ok());
  std::vector<float> wh(24);
  Launch({1}, {32}, 0, [&] { WhereKernel<float>(g3, gt.data(), a.data(), c.data(), wh.data(), 24); });
  for (int i = 0; i < 24; ++i) {
    EXPECT_EQ(gt[i], a[i] > c[i % 4] ? 1 : 0) << i;
    EXPECT_EQ(wh[i], std::max(a[i], c[i % 4])) << i;
  }
  std::vector<int64_t> ci(24);
  std::vector<float> big = {2.7f, -2.7f, 1e10f, NAN};
  std::vector<int64_t> bi(4);
  Launch({1}, {32}, 0, [&] { CastKernel<float, int64_t, false>(big.data(), bi.data(), 4); });
  EXPECT_EQ(bi, (std::vector<int64_t>{2, -2, 10000000000LL, 0}));
  std::vector<uint8_t> bb(4);
  Launch({1}, {32}, 0, [&] { CastKernel<float, uint8_t, true>(big.data(), bb.data(), 4); });
  EXPECT_EQ(bb, (std::vector<uint8_t>{1, 1, 1, 1}));
  const std::vector<int64_t> ia = {7, -7, 9, 5}, ib = {2, 2, -4, 0};
  BcastGeom gi;
  ASSERT_TRUE(cuda::MakeBcastGeom({4}, {{4}, {4}}, &gi).ok());
  std::vector<int64_t> q(4);
  Launch({1}, {32}, 0, [&] { IntBinaryKernel<int64_t>(kEwDiv, gi, ia.data(), ib.data(), q.data(), 4); });
  EXPECT_EQ(q, (std::vector<int64_t>{3, -3, -2, 0}));
}

TEST(GpuKernelsEmulated, StridedCopyGatherAndTrilu) {
  std::vector<float> x(60);
  for (int i = 0; i < 60; ++i) x[i] = static_cast<float>(i);
  CopyGeom g;
  ASSERT_TRUE(cuda::MakeTransposeGeom({3, 4, 5}, {1, 2, 0}, &g).ok());
  std::vector<float> t(60);
  Launch({1}, {32}, 0, [&] { StridedCopyKernel<float>(g, x.data(), t.data(), 60); });
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 4; ++b)
      for (int c = 0; c < 5; ++c) ASSERT_EQ(t[(b * 5 + c) * 3 + a], x[(a * 4 + b) * 5 + c]);
  // Gather axis 1 of [3, 4, 5] with indices {3, -4, 9 (out of range)}.
  const std::vector<int64_t> idx = {3, -4, 9};
  std::vector<float> ga(45, -1.f);
  int32_t bad = 0;
  Launch({1}, {32}, 0, [&] { GatherKernel<float, int64_t>(x.data(), idx.data(), ga.data(), 3, 4, 3, 5, &bad); });
  EXPECT_EQ(bad, 1);
  for (int a = 0; a < 3; ++a)
    for (int c = 0; c < 5; ++c) {
      EXPECT_EQ(ga[(a * 3 + 0) * 5 + c], x[(a * 4 + 3) * 5 + c]);
      EXPECT_EQ(ga[(a * 3 + 1) * 5 + c], x[(a * 4 + 0) * 5 + c]);
      EXPECT_EQ(ga[(a * 3 + 2) * 5 + c], 0.f);
    }
  std::vector<float> tr(60);
  Launch({1}, {32}, 0, [&] { TriluKernel<float>(x.data(), tr.data(), 4, 5, -1, 1, 60); });
  for (int i = 0; i < 60; ++i) {
    const int c = i % 5, r = (i / 5) % 4;
    EXPECT_EQ(tr[i], c - r >= -1 ? x[i] : 0.f) << i;
  }
}

TEST(GpuKernelsEmulated, ReductionsSoftmaxAndLayerNorm) {
  const int64_t rows = 6, C = 100;
  std::vector<float> x = Random(rows * C, 5, -4, 4);
  x[3 * C + 17] = NAN;  // row 3 has a NaN: max/min must give NaN
  std::vector<float> sum(rows), mx(rows), mn(rows), mean(rows);
  Launch({static_cast<unsigned>(rows)}, {64}, 0, [&] { ReduceRowsKernel<float>(kRedSum, x.data(), sum.data(), C); });
  Launch({static_cast<unsigned>(rows)}, {128}, 0, [&] { ReduceRowsKernel<float>(kRedMax, x.data(), mx.data(), C); });
  Launch({static_cast<unsigned>(rows)}, {32}, 0, [&] { ReduceRowsKernel<float>(kRedMin, x.data(), mn.data(), C); });
  Launch({static_cast<unsigned>(rows)}, {64}, 0, [&] { ReduceRowsKernel<float>(kRedMean, x.data(), mean.data(), C); });
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    float a = -INFINITY, b = INFINITY;
    for (int64_t c = 0; c < C; ++c) {
      s += x[r * C + c];
      a = std::max(a, x[r * C + c]);
      b = std::min(b, x[r * C + c]);
    }
    if (r == 3) {
      EXPECT_TRUE(std::isnan(mx[r]) && std::isnan(mn[r]) && std::isnan(sum[r]));
      continue;
    }
    EXPECT_NEAR(sum[r], s, 1e-3);
    EXPECT_NEAR(mean[r], s / C, 1e-5);
    EXPECT_EQ(mx[r], a);
    EXPECT_EQ(mn[r], b);
  }
  x[3 * C + 17] = 0.5f;
  // Strided reduction over the middle axis of [2, 3, 50].
  std::vector<float> rs(100);
  Launch({1}, {32}, 0, [&] { ReduceStridedKernel<float>(kRedMean, x.data(), rs.data(), 2, 3, 50); });
  for (int o = 0; o < 2; ++o)
    for (int k = 0; k < 50; ++k)
      EXPECT_NEAR(rs[o * 50 + k], (x[(o * 3 + 0) * 50 + k] + x[(o * 3 + 1) * 50 + k] + x[(o * 3 + 2) * 50 + k]) / 3, 1e-5);
  // Softmax rows and LogSoftmax over the middle axis.
  std::vector<float> sm(rows * C), lsm(rows * C);
  Launch({static_cast<unsigned>(rows)}, {128}, 0, [&] { SoftmaxRowsKernel<float>(x.data(), sm.data(), C, 0); });
  Launch({2}, {32}, 0, [&] { SoftmaxStridedKernel<float>(x.data(), lsm.data(), 2, 3, 100, 1); });
  std::vector<float> w_sm(rows * C), w_lsm(rows * C);
  for (int64_t r = 0; r < rows; ++r) {
    double m = -INFINITY, s = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max<double>(m, x[r * C + c]);
    for (int64_t c = 0; c < C; ++c) s += std::exp(x[r * C + c] - m);
    for (int64_t c = 0; c < C; ++c) w_sm[r * C + c] = static_cast<float>(std::exp(x[r * C + c] - m) / s);
  }
  for (int o = 0; o < 2; ++o)
    for (int k = 0; k < 100; ++k) {
      double m = -INFINITY, s = 0;
      for (int j = 0; j < 3; ++j) m = std::max<double>(m, x[(o * 3 + j) * 100 + k]);
      for (int j = 0; j < 3; ++j) s += std::exp(x[(o * 3 + j) * 100 + k] - m);
      for (int j = 0; j < 3; ++j) w_lsm[(o * 3 + j) * 100 + k] = static_cast<float>(x[(o * 3 + j) * 100 + k] - m - std::log(s));
    }
  Near(sm, w_sm, 1e-5f, "softmax rows");
  Near(lsm, w_lsm, 1e-5f, "log-softmax strided");
  // LayerNorm with optional outputs.
  const std::vector<float> scale = Random(C, 6), bias = Random(C, 7);
  std::vector<float> ln(rows * C), mu(rows), inv(rows);
  Launch({static_cast<unsigned>(rows)}, {64}, 0, [&] {
    LayerNormRowsKernel<float>(x.data(), scale.data(), bias.data(), ln.data(), mu.data(), inv.data(), C, 1e-5f);
  });
  std::vector<float> w_ln(rows * C);
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < C; ++c) m += x[r * C + c] / static_cast<double>(C);
    for (int64_t c = 0; c < C; ++c) v += (x[r * C + c] - m) * (x[r * C + c] - m) / static_cast<double>(C);
    for (int64_t c = 0; c < C; ++c)
      w_ln[r * C + c] = static_cast<float>((x[r * C + c] - m) / std::sqrt(v + 1e-5) * scale[c] + bias[c]);
    EXPECT_NEAR(mu[r], m, 1e-5);
    EXPECT_NEAR(inv[r], 1 / std::sqrt(v + 1e-5), 1e-4);
  }
  Near(ln, w_ln, 1e-4f, "layernorm");
}

TEST(GpuKernelsEmulated, PoolingWithAsymmetricPadsAndCeilMode) {
  const std::vector<float> x = Random(2 * 5 * 5, 8);
  PoolArgs p;
  p.NC = 2; p.H = 5; p.W = 5; p.OH = 3; p.OW = 3;
  p.kh = p.kw = 3; p.sh = p.sw = 2; p.pt = p.pl = 1; p.pb = p.pr = 0;
  for (int is_max : {1, 0})
    for (int cip : {0, 1}) {
      p.is_max = is_max;
      p.count_include_pad = cip;
      std::vector<float> y(18);
      Launch({1}, {32}, 0, [&] { Pool2dKernel<float>(p, x.data(), y.data()); });
      for (int nc = 0; nc < 2; ++nc)
        for (int oh = 0; oh < 3; ++oh)
          for (int ow = 0; ow < 3; ++ow) {
            double acc = is_max ? -INFINITY : 0;
            int cnt = 0, padded = 0;
            for (int kh = 0; kh < 3; ++kh)
              for (int kw = 0; kw < 3; ++kw) {
                const int ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
                if (ih >= -1 && ih < 5 && iw >= -1 && iw < 5) ++padded;
                if (ih < 0 || ih >= 5 || iw < 0 || iw >= 5) continue;
                const float v = x[(nc * 5 + ih) * 5 + iw];
                acc = is_max ? std::max<double>(acc, v) : acc + v;
                ++cnt;
              }
            if (!is_max) acc /= cip ? padded : cnt;
            EXPECT_NEAR(y[(nc * 3 + oh) * 3 + ow], acc, 1e-6) << is_max << cip << " " << nc << oh << ow;
          }
    }
}

TEST(GpuKernelsEmulated, FallbackGemmTransposesBatchesAndC) {
  const int64_t M = 5, N = 7, K = 6, batch = 3;
  for (int ta : {0, 1})
    for (int tb : {0, 1}) {
      const std::vector<float> A = Random(batch * M * K, 30 + ta), B = Random(K * N, 32 + tb), C = Random(M * N, 34);
      GemmArgs g;
      g.M = M; g.N = N; g.K = K; g.batch = batch;
      g.ta = ta; g.tb = tb;
      g.lda = ta ? M : K;
      g.ldb = tb ? K : N;
      g.ldc = N;
      g.stride_a = M * K;
      g.stride_b = 0;  // B shared by every batch
      g.stride_c = 0;  // C too
      g.alpha = 0.5f;
      g.beta = 2.f;
      std::vector<float> Y(batch * M * N);
      Launch({2}, {32}, 0, [&] { GemmNaiveKernel<float>(g, A.data(), B.data(), C.data(), Y.data()); });
      std::vector<float> want(batch * M * N);
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            double acc = 0;
            for (int64_t k = 0; k < K; ++k) {
              const float x = ta ? A[b * M * K + k * M + m] : A[b * M * K + m * K + k];
              const float y = tb ? B[n * K + k] : B[k * N + n];
              acc += x * y;
            }
            want[(b * M + m) * N + n] = static_cast<float>(0.5 * acc + 2.0 * C[m * N + n]);
          }
      Near(Y, want, 1e-5f, "fallback GEMM");
    }
}

// Naive attention reference (double accumulation; masked rows give NaN).
std::vector<float> RefAttention(const AttnArgs& a, const std::vector<float>& q, const std::vector<float>& k,
                                const std::vector<float>& v, const std::vector<uint8_t>* mask) {
  std::vector<float> y(a.B * a.H * a.Sq * a.Dv);
  for (int64_t bh = 0; bh < a.B * a.H; ++bh) {
    const int64_t b = bh / a.H, h = bh % a.H;
    for (int64_t i = 0; i < a.Sq; ++i) {
      std::vector<double> s(a.Sk, -INFINITY);
      double m = -INFINITY;
      for (int64_t j = 0; j < a.Sk; ++j) {
        if (a.causal && j > i) continue;
        if (mask && !(*mask)[b * a.mstride[0] + h * a.mstride[1] + i * a.mstride[2] + j * a.mstride[3]]) continue;
        double d = 0;
        for (int64_t t = 0; t < a.D; ++t) d += q[(bh * a.Sq + i) * a.D + t] * k[(bh * a.Sk + j) * a.D + t];
        s[j] = d * a.scale;
        m = std::max(m, s[j]);
      }
      double sum = 0;
      for (double x : s) sum += x == -INFINITY ? 0 : std::exp(x - m);
      for (int64_t t = 0; t < a.Dv; ++t) {
        double acc = 0;
        for (int64_t j = 0; j < a.Sk; ++j)
          if (s[j] != -INFINITY) acc += std::exp(s[j] - m) * v[(bh * a.Sk + j) * a.Dv + t];
        y[(bh * a.Sq + i) * a.Dv + t] = sum > 0 ? static_cast<float>(acc / sum) : NAN;
      }
    }
  }
  return y;
}

TEST(GpuKernelsEmulated, FlashAttentionMatchesNaive) {
  struct Case {
    int64_t B, H, Sq, Sk, D, Dv;
    int causal;
    bool mask;
  };
  for (const Case& c : {Case{1, 2, 5, 40, 16, 8, 0, false}, Case{2, 1, 9, 9, 32, 32, 1, true},
                        Case{1, 1, 3, 70, 40, 24, 0, true}}) {
    AttnArgs a;
    a.B = c.B; a.H = c.H; a.Sq = c.Sq; a.Sk = c.Sk; a.D = c.D; a.Dv = c.Dv;
    a.scale = 1.f / std::sqrt(static_cast<float>(c.D));
    a.causal = c.causal;
    std::vector<uint8_t> mask;
    if (c.mask) {  // [B, 1, 1, Sk] key-padding mask; batch 1 masks key 0 (row 0 fully masked when causal)
      a.mask_kind = 1;
      a.mstride[0] = c.Sk;
      a.mstride[3] = 1;
      mask.assign(c.B * c.Sk, 1);
      for (int64_t j = 0; j < c.Sk; j += 3) mask[j] = 0;
      if (c.B > 1) mask[c.Sk] = 0;
    }
    const std::vector<float> q = Random(c.B * c.H * c.Sq * c.D, 10), k = Random(c.B * c.H * c.Sk * c.D, 11),
                             v = Random(c.B * c.H * c.Sk * c.Dv, 12);
    const cuda::AttentionTiling t = cuda::ChooseAttentionTiling(c.D, c.Dv, c.Sq, 48 * 1024);
    ASSERT_TRUE(t.error.empty()) << t.error;
    a.rows_per_block = t.rows_per_block;
    ASSERT_EQ(static_cast<uint64_t>(AttnSharedFloats(c.D, c.Dv, t.rows_per_block)) * 4, t.smem_bytes);
    std::vector<float> y(c.B * c.H * c.Sq * c.Dv, -7.f);
    const Dim3 grid{static_cast<unsigned>((c.Sq + t.rows_per_block - 1) / t.rows_per_block),
                    static_cast<unsigned>(c.B * c.H), 1};
    Launch(grid, {static_cast<unsigned>(t.rows_per_block * 32)}, t.smem_bytes, [&] {
      FlashAttentionKernel<float>(a, q.data(), k.data(), v.data(), c.mask ? mask.data() : nullptr, y.data());
    });
    const std::vector<float> want = RefAttention(a, q, k, v, c.mask ? &mask : nullptr);
    Near(y, want, 2e-5f, "attention");
    if (c.causal && c.mask) {
      EXPECT_TRUE(std::isnan(y[(1 * c.H * c.Sq) * c.Dv])) << "fully masked row gives NaN";
    }
    // f16 inputs through the same kernel.
    const std::vector<TsrHalf> qh = ToHalf(q), kh = ToHalf(k), vh = ToHalf(v);
    std::vector<TsrHalf> yh(y.size());
    Launch(grid, {static_cast<unsigned>(t.rows_per_block * 32)}, t.smem_bytes, [&] {
      FlashAttentionKernel<TsrHalf>(a, qh.data(), kh.data(), vh.data(), c.mask ? mask.data() : nullptr, yh.data());
    });
    Near(FromHalf(yh), RefAttention(a, FromHalf(qh), FromHalf(kh), FromHalf(vh), c.mask ? &mask : nullptr), 2e-3f,
         "attention f16");
  }
}

}  // namespace
}  // namespace tessera::gpu
