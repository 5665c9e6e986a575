// Tests of the oneDNN-backed kernels (Conv, MatMul, Gemm, MaxPool,
// AveragePool) and the own-loop ones (ConvTranspose, LpPool, MaxPool Indices,
// MaxUnpool, DeformConv) against naive references written here.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu::testing {
namespace {

using Dims = std::vector<int64_t>;

// ---- references ----------------------------------------------------------------------

struct WindowSpec {
  Dims k, s, d, pl, pr;  // per spatial dim; pr is the ONNX end padding
};

// Spatial output sizes per ONNX (ceil_mode: a window may not start in the end padding).
Dims OutSpatial(const Dims& in, const WindowSpec& w, bool ceil_mode) {
  Dims o;
  for (size_t i = 0; i < in.size(); ++i) {
    int64_t eff = (w.k[i] - 1) * w.d[i] + 1;
    int64_t span = in[i] + w.pl[i] + w.pr[i] - eff;
    int64_t n = (ceil_mode ? (span + w.s[i] - 1) / w.s[i] : span / w.s[i]) + 1;
    if (ceil_mode && (n - 1) * w.s[i] >= in[i] + w.pl[i]) --n;
    o.push_back(n);
  }
  return o;
}

// Direct convolution, any spatial rank. w: [M, C/G, k...], b: [M] or empty.
std::vector<float> RefConv(const std::vector<float>& x, const Dims& xd, const std::vector<float>& w, const Dims& wd,
                           const std::vector<float>& b, int64_t G, const WindowSpec& ws, Dims* yd_out) {
  const int64_t N = xd[0], C = xd[1], M = wd[0], CG = C / G, MG = M / G;
  Dims in(xd.begin() + 2, xd.end());
  Dims osp = OutSpatial(in, ws, false);
  Dims yd{N, M};
  yd.insert(yd.end(), osp.begin(), osp.end());
  *yd_out = yd;
  Dims kd(wd.begin() + 2, wd.end());
  const int64_t ksz = NumElements(kd), isz = NumElements(in), osz = NumElements(osp);
  std::vector<float> y(static_cast<size_t>(NumElements(yd)));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t op = 0; op < osz; ++op) {
        Dims oi = Unravel(op, osp);
        double acc = b.empty() ? 0.0 : b[m];
        int64_t g = m / MG;
        for (int64_t c = 0; c < CG; ++c)
          for (int64_t kp = 0; kp < ksz; ++kp) {
            Dims ki = Unravel(kp, kd);
            int64_t flat = 0;
            bool inside = true;
            for (size_t s = 0; s < in.size(); ++s) {
              int64_t pos = oi[s] * ws.s[s] - ws.pl[s] + ki[s] * ws.d[s];
              if (pos < 0 || pos >= in[s]) inside = false;
              flat = flat * in[s] + pos;
            }
            if (!inside) continue;
            acc += static_cast<double>(x[(n * C + g * CG + c) * isz + flat]) * w[(m * CG + c) * ksz + kp];
          }
        y[(n * M + m) * osz + op] = static_cast<float>(acc);
      }
  return y;
}

// Max / average pooling per ONNX, any spatial rank. count_include_pad counts
// taps in [-pad_begin, in + pad_end) (not the ceil_mode extension).
std::vector<float> RefPool(const std::vector<float>& x, const Dims& xd, const WindowSpec& ws, bool is_max,
                           bool ceil_mode, bool include_pad, Dims* yd_out) {
  const int64_t NC = xd[0] * xd[1];
  Dims in(xd.begin() + 2, xd.end());
  Dims osp = OutSpatial(in, ws, ceil_mode);
  Dims yd{xd[0], xd[1]};
  yd.insert(yd.end(), osp.begin(), osp.end());
  *yd_out = yd;
  const int64_t ksz = NumElements(ws.k), isz = NumElements(in), osz = NumElements(osp);
  std::vector<float> y(static_cast<size_t>(NumElements(yd)));
  for (int64_t p = 0; p < NC; ++p)
    for (int64_t op = 0; op < osz; ++op) {
      Dims oi = Unravel(op, osp);
      double acc = 0;
      float mx = -std::numeric_limits<float>::infinity();
      int64_t cnt = 0, cnt_pad = 0;
      for (int64_t kp = 0; kp < ksz; ++kp) {
        Dims ki = Unravel(kp, ws.k);
        int64_t flat = 0;
        bool inside = true, in_padded = true;
        for (size_t s = 0; s < in.size(); ++s) {
          int64_t pos = oi[s] * ws.s[s] - ws.pl[s] + ki[s] * ws.d[s];
          if (pos < 0 || pos >= in[s]) inside = false;
          if (pos >= in[s] + ws.pr[s]) in_padded = false;
          flat = flat * in[s] + pos;
        }
        cnt_pad += in_padded;
        if (!inside) continue;
        float v = x[p * isz + flat];
        mx = std::max(mx, v);
        acc += v;
        ++cnt;
      }
      y[p * osz + op] = is_max ? mx : static_cast<float>(acc / static_cast<double>(include_pad ? cnt_pad : cnt));
    }
  return y;
}

// Batched matmul with numpy broadcasting (operands already >= 2-D, equal rank).
std::vector<float> RefMatMul(const std::vector<float>& a, const Dims& ad, const std::vector<float>& b, const Dims& bd,
                             Dims* yd_out) {
  size_t r = ad.size();
  int64_t M = ad[r - 2], K = ad[r - 1], N = bd[r - 1];
  Dims batch;
  for (size_t i = 0; i + 2 < r; ++i) batch.push_back(std::max(ad[i], bd[i]));
  Dims yd = batch;
  yd.push_back(M);
  yd.push_back(N);
  *yd_out = yd;
  Dims abatch(ad.begin(), ad.end() - 2), bbatch(bd.begin(), bd.end() - 2);
  std::vector<float> y(static_cast<size_t>(NumElements(yd)));
  for (int64_t bi = 0; bi < NumElements(batch); ++bi) {
    Dims idx = Unravel(bi, batch);
    int64_t ao = BroadcastIndex(idx, abatch) * M * K, bo = BroadcastIndex(idx, bbatch) * K * N;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(a[ao + m * K + k]) * b[bo + k * N + n];
        y[(bi * M + m) * N + n] = static_cast<float>(acc);
      }
  }
  return y;
}

// ---- Conv ------------------------------------------------------------------------------

struct ConvCase {
  Dims xd, wd;
  int64_t group = 1;
  Dims strides, dilations, pads;  // empty = attribute absent
  bool bias = true;
  bool const_w = true;
  bool const_b = true;
};

void CheckConv(const ConvCase& c) {
  size_t nsp = c.xd.size() - 2;
  WindowSpec ws;
  ws.k.assign(c.wd.begin() + 2, c.wd.end());
  ws.s = c.strides.empty() ? Dims(nsp, 1) : c.strides;
  ws.d = c.dilations.empty() ? Dims(nsp, 1) : c.dilations;
  ws.pl = c.pads.empty() ? Dims(nsp, 0) : Dims(c.pads.begin(), c.pads.begin() + nsp);
  ws.pr = c.pads.empty() ? Dims(nsp, 0) : Dims(c.pads.begin() + nsp, c.pads.end());
  auto x = RandomFloats(NumElements(c.xd), -1, 1, 1);
  auto w = RandomFloats(NumElements(c.wd), -1, 1, 2);
  std::vector<float> b = c.bias ? RandomFloats(c.wd[0], -1, 1, 3) : std::vector<float>{};
  Dims yd;
  auto ref = RefConv(x, c.xd, w, c.wd, b, c.group, ws, &yd);

  OpTest t("Conv");
  t.AddInput<float>(c.xd, x).AddInput<float>(c.wd, w, c.const_w);
  if (c.bias) t.AddInput<float>({c.wd[0]}, b, c.const_b);
  t.AddOutput(TSR_DTYPE_F32, yd);
  if (c.group != 1) t.SetAttrInt("group", c.group);
  if (!c.strides.empty()) t.SetAttrInts("strides", c.strides);
  if (!c.dilations.empty()) t.SetAttrInts("dilations", c.dilations);
  if (!c.pads.empty()) t.SetAttrInts("pads", c.pads);
  t.SetAttrInts("kernel_shape", ws.k);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-4f));

  // A second run with different data must not reuse anything stale.
  auto x2 = RandomFloats(NumElements(c.xd), -2, 2, 7);
  std::copy(x2.begin(), x2.end(), t.InputData<float>(0));
  auto ref2 = RefConv(x2, c.xd, w, c.wd, b, c.group, ws, &yd);
  ASSERT_TRUE(t.RunAgain().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref2, 1e-4f, 1e-4f));
}

TEST(DnnlConv, Stride2PadsBias) { CheckConv({{2, 3, 7, 6}, {4, 3, 3, 3}, 1, {2, 2}, {}, {1, 1, 1, 1}}); }
TEST(DnnlConv, DilationAsymmetricPadsNoBias) {
  ConvCase c{{1, 2, 9, 8}, {3, 2, 3, 2}, 1, {1, 1}, {2, 3}, {0, 1, 2, 0}};
  c.bias = false;
  CheckConv(c);
}
TEST(DnnlConv, Groups) { CheckConv({{2, 4, 6, 6}, {6, 2, 3, 3}, 2, {1, 1}, {}, {1, 1, 1, 1}}); }
TEST(DnnlConv, Depthwise) { CheckConv({{1, 8, 10, 9}, {8, 1, 3, 3}, 8, {2, 1}, {}, {1, 1, 1, 1}}); }
TEST(DnnlConv, DepthwiseMultiplier) { CheckConv({{1, 4, 7, 7}, {8, 1, 3, 3}, 4, {}, {}, {1, 1, 1, 1}}); }
TEST(DnnlConv, RuntimeWeightsAndBias) {
  ConvCase c{{2, 3, 8, 8}, {5, 3, 3, 3}, 1, {2, 2}, {}, {1, 0, 1, 0}};
  c.const_w = false;
  c.const_b = false;
  CheckConv(c);
}
TEST(DnnlConv, PointwiseLargeImage) { CheckConv({{1, 16, 16, 15}, {8, 16, 1, 1}}); }
TEST(DnnlConv, PointwiseStride2) { CheckConv({{2, 8, 9, 9}, {16, 8, 1, 1}, 1, {2, 2}}); }
TEST(DnnlConv, OneD) { CheckConv({{2, 3, 11}, {4, 3, 3}, 1, {2}, {2}, {1, 2}}); }
TEST(DnnlConv, ThreeD) { CheckConv({{1, 2, 5, 6, 4}, {3, 2, 3, 3, 2}, 1, {1, 2, 1}, {}, {1, 1, 0, 1, 1, 1}}); }
TEST(DnnlConv, ResNetStem) { CheckConv({{1, 3, 32, 32}, {16, 3, 7, 7}, 1, {2, 2}, {}, {3, 3, 3, 3}}); }

TEST(DnnlConv, AutoPadSameUpperAndLower) {
  // in 7, k 4, s 2: out 4, total pad 3 -> UPPER (1, 2), LOWER (2, 1).
  for (const char* mode : {"SAME_UPPER", "SAME_LOWER"}) {
    bool upper = std::string(mode) == "SAME_UPPER";
    Dims xd{1, 2, 7, 7}, wd{3, 2, 4, 4};
    auto x = RandomFloats(NumElements(xd), -1, 1, 4);
    auto w = RandomFloats(NumElements(wd), -1, 1, 5);
    WindowSpec ws{{4, 4}, {2, 2}, {1, 1}, upper ? Dims{1, 1} : Dims{2, 2}, upper ? Dims{2, 2} : Dims{1, 1}};
    Dims yd;
    auto ref = RefConv(x, xd, w, wd, {}, 1, ws, &yd);
    ASSERT_EQ(yd, (Dims{1, 3, 4, 4}));
    OpTest t("Conv");
    t.AddInput<float>(xd, x).AddInput<float>(wd, w, true).AddOutput(TSR_DTYPE_F32, yd);
    t.SetAttrString("auto_pad", mode).SetAttrInts("strides", {2, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-4f)) << mode;
  }
}

TEST(DnnlConv, ConcurrentRunsAgree) {
  Dims xd{2, 8, 12, 12}, wd{16, 8, 3, 3};
  auto x = RandomFloats(NumElements(xd), -1, 1, 9);
  auto w = RandomFloats(NumElements(wd), -1, 1, 10);
  WindowSpec ws{{3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}};
  Dims yd;
  auto ref = RefConv(x, xd, w, wd, {}, 1, ws, &yd);
  OpTest t("Conv");
  t.AddInput<float>(xd, x).AddInput<float>(wd, w, true).AddOutput(TSR_DTYPE_F32, yd);
  t.SetAttrInts("pads", {1, 1, 1, 1});
  ASSERT_TRUE(t.Create().ok()) << t.last_error();
  const Kernel* k = t.kernel();
  std::vector<std::vector<float>> outs(4, std::vector<float>(ref.size()));
  std::vector<Err> errs(4);
  std::vector<std::thread> th;
  for (int i = 0; i < 4; ++i)
    th.emplace_back([&, i] {
      for (int rep = 0; rep < 5; ++rep) {
        const void* in[] = {x.data(), nullptr};
        void* o[] = {outs[i].data()};
        errs[i] = k->Run(in, o);
        if (!errs[i].ok()) return;
      }
    });
  for (auto& tt : th) tt.join();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(errs[i].ok()) << errs[i].message;
    EXPECT_TRUE(AllClose(outs[i], ref, 1e-4f, 1e-4f)) << "thread " << i;
  }
}

TEST(DnnlConv, Errors) {
  auto x = RandomFloats(2 * 3 * 5 * 5), w = RandomFloats(4 * 3 * 3 * 3);
  {
    OpTest t("Conv");
    t.SetName("conv_rank");
    t.AddInput<float>({6, 25}, RandomFloats(150)).AddInput<float>({4, 25}, RandomFloats(100), true);
    t.AddOutput(TSR_DTYPE_F32, {6, 4});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("conv_rank"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("rank"), std::string::npos) << e.message;
  }
  {
    OpTest t("Conv");
    t.SetName("conv_ch");
    t.AddInput<float>({2, 3, 5, 5}, x).AddInput<float>({4, 2, 3, 3}, RandomFloats(72), true);
    t.AddOutput(TSR_DTYPE_F32, {2, 4, 3, 3});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("conv_ch"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("channels"), std::string::npos) << e.message;
  }
  {
    OpTest t("Conv");
    t.SetName("conv_bias");
    t.AddInput<float>({2, 3, 5, 5}, x).AddInput<float>({4, 3, 3, 3}, w, true).AddInput<float>({3}, {1, 2, 3}, true);
    t.AddOutput(TSR_DTYPE_F32, {2, 4, 3, 3});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("bias"), std::string::npos) << e.message;
  }
  {
    OpTest t("Conv");
    t.SetName("conv_out");
    t.AddInput<float>({2, 3, 5, 5}, x).AddInput<float>({4, 3, 3, 3}, w, true);
    t.AddOutput(TSR_DTYPE_F32, {2, 4, 5, 5});  // would need pads
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("conv_out"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("[2,4,3,3]"), std::string::npos) << e.message;
  }
  {
    OpTest t("Conv");
    t.SetName("conv_group");
    t.AddInput<float>({2, 3, 5, 5}, x).AddInput<float>({4, 3, 3, 3}, w, true);
    t.AddOutput(TSR_DTYPE_F32, {2, 4, 3, 3});
    t.SetAttrInt("group", 0);
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("group"), std::string::npos) << e.message;
  }
  {
    OpTest t("Conv");
    t.AddInput<float>({2, 3, 5, 5}, x).AddInput<float>({4, 3, 3, 3}, w, true);
    t.AddOutput(TSR_DTYPE_F32, {2, 4, 3, 3});
    t.SetAttrString("auto_pad", "SOMETIMES");
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("SOMETIMES"), std::string::npos) << e.message;
  }
  {
    OpTest t("Conv");
    t.AddInput<float>({2, 3, 5, 5}, x).AddInput<float>({4, 3, 3, 3}, w, true);
    t.AddOutput(TSR_DTYPE_F32, {2, 4, 3, 3});
    t.SetAttrInts("strides", {1, 0});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("strides"), std::string::npos) << e.message;
  }
  {
    OpTest t("Conv");
    t.AddInput<int32_t>({1, 1, 3, 3}, std::vector<int32_t>(9, 1)).AddInput<int32_t>({1, 1, 1, 1}, {1}, true);
    t.AddOutput(TSR_DTYPE_I32, {1, 1, 3, 3});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("i32"), std::string::npos) << e.message;
    EXPECT_NE(t.Claim(), "");
  }
  {
    OpTest t("Conv");
    t.AddInput<float>({2, 3, 2, 2}, RandomFloats(24)).AddInput<float>({4, 3, 3, 3}, w, true);
    t.AddOutput(TSR_DTYPE_F32, {2, 4, 1, 1});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("larger than the padded input"), std::string::npos) << e.message;
  }
}

// ---- MatMul ----------------------------------------------------------------------------

void CheckMatMul(const Dims& ad, const Dims& bd, const Dims& yd_expected, bool const_b) {
  auto a = RandomFloats(NumElements(ad), -1, 1, 11);
  auto b = RandomFloats(NumElements(bd), -1, 1, 12);
  Dims a2 = ad.size() == 1 ? Dims{1, ad[0]} : ad, b2 = bd.size() == 1 ? Dims{bd[0], 1} : bd;
  while (a2.size() < b2.size()) a2.insert(a2.begin(), 1);
  while (b2.size() < a2.size()) b2.insert(b2.begin(), 1);
  Dims yfull;
  auto ref = RefMatMul(a, a2, b, b2, &yfull);
  OpTest t("MatMul");
  t.AddInput<float>(ad, a).AddInput<float>(bd, b, const_b).AddOutput(TSR_DTYPE_F32, yd_expected);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-5f));
}

TEST(DnnlMatMul, BroadcastBatch) {
  CheckMatMul({2, 1, 3, 4}, {5, 4, 6}, {2, 5, 3, 6}, false);
  CheckMatMul({2, 1, 3, 4}, {5, 4, 6}, {2, 5, 3, 6}, true);
}
TEST(DnnlMatMul, VectorTimesMatrix) {
  CheckMatMul({4}, {4, 3}, {3}, false);
  CheckMatMul({4}, {4, 3}, {3}, true);
}
TEST(DnnlMatMul, MatrixTimesVector) { CheckMatMul({2, 3, 4}, {4}, {2, 3}, false); }
TEST(DnnlMatMul, VectorDot) { CheckMatMul({5}, {5}, {}, false); }
TEST(DnnlMatMul, Plain2D) {
  CheckMatMul({7, 9}, {9, 5}, {7, 5}, false);
  CheckMatMul({33, 64}, {64, 17}, {33, 17}, true);
}
TEST(DnnlMatMul, SameBatch) { CheckMatMul({3, 2, 5}, {3, 5, 4}, {3, 2, 4}, false); }
TEST(DnnlMatMul, ConstantWeightsBroadcastOverBatch) { CheckMatMul({2, 3, 8}, {8, 5}, {2, 3, 5}, true); }
TEST(DnnlMatMul, BatchOnBOnly) { CheckMatMul({3, 4}, {2, 4, 5}, {2, 3, 5}, false); }

TEST(DnnlMatMul, EmptyInnerDimGivesZeros) {
  OpTest t("MatMul");
  const float none = 0.f;  // AddInputBytes reads 0 bytes from it
  t.AddInputBytes(TSR_DTYPE_F32, {2, 0}, &none).AddInputBytes(TSR_DTYPE_F32, {0, 3}, &none);
  t.AddOutput(TSR_DTYPE_F32, {2, 3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<float>(0), std::vector<float>(6, 0.f));
}

TEST(DnnlMatMul, Errors) {
  {
    OpTest t("MatMul");
    t.SetName("mm_k");
    t.AddInput<float>({2, 3}, RandomFloats(6)).AddInput<float>({4, 5}, RandomFloats(20));
    t.AddOutput(TSR_DTYPE_F32, {2, 5});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("mm_k"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("inner dimensions"), std::string::npos) << e.message;
  }
  {
    OpTest t("MatMul");
    t.SetName("mm_batch");
    t.AddInput<float>({2, 2, 3}, RandomFloats(12)).AddInput<float>({3, 3, 5}, RandomFloats(45));
    t.AddOutput(TSR_DTYPE_F32, {3, 2, 5});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("broadcast"), std::string::npos) << e.message;
  }
  {
    OpTest t("MatMul");
    t.AddInput<float>({2, 3}, RandomFloats(6)).AddInput<float>({3, 5}, RandomFloats(15));
    t.AddOutput(TSR_DTYPE_F32, {2, 6});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("does not match"), std::string::npos) << e.message;
  }
  {
    OpTest t("MatMul");
    t.AddInput<double>({2, 3}, std::vector<double>(6, 1.0)).AddInput<double>({3, 5}, std::vector<double>(15, 1.0));
    t.AddOutput(TSR_DTYPE_F64, {2, 5});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("f64"), std::string::npos) << e.message;
    EXPECT_NE(t.Claim().find("f32"), std::string::npos);
  }
}

// ---- Gemm ------------------------------------------------------------------------------

struct GemmCase {
  int64_t M, K, N;
  bool ta, tb;
  float alpha, beta;
  Dims cdims;  // {-1} = no C
  bool const_b, const_c;
};

void CheckGemm(const GemmCase& g) {
  Dims ad = g.ta ? Dims{g.K, g.M} : Dims{g.M, g.K};
  Dims bd = g.tb ? Dims{g.N, g.K} : Dims{g.K, g.N};
  bool has_c = !(g.cdims.size() == 1 && g.cdims[0] == -1);
  auto a = RandomFloats(NumElements(ad), -1, 1, 21);
  auto b = RandomFloats(NumElements(bd), -1, 1, 22);
  auto c = has_c ? RandomFloats(NumElements(g.cdims), -1, 1, 23) : std::vector<float>{};
  std::vector<float> ref(static_cast<size_t>(g.M * g.N));
  for (int64_t m = 0; m < g.M; ++m)
    for (int64_t n = 0; n < g.N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < g.K; ++k)
        acc += static_cast<double>(g.ta ? a[k * g.M + m] : a[m * g.K + k]) * (g.tb ? b[n * g.K + k] : b[k * g.N + n]);
      double cv = has_c ? c[BroadcastIndex({m, n}, g.cdims)] : 0.0;
      ref[m * g.N + n] = static_cast<float>(g.alpha * acc + (has_c ? g.beta * cv : 0.0));
    }
  OpTest t("Gemm");
  t.AddInput<float>(ad, a).AddInput<float>(bd, b, g.const_b);
  if (has_c) t.AddInput<float>(g.cdims, c, g.const_c);
  t.AddOutput(TSR_DTYPE_F32, {g.M, g.N});
  t.SetAttrInt("transA", g.ta).SetAttrInt("transB", g.tb).SetAttrFloat("alpha", g.alpha).SetAttrFloat("beta", g.beta);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-5f))
      << "M" << g.M << " K" << g.K << " N" << g.N << " ta" << g.ta << " tb" << g.tb << " alpha " << g.alpha
      << " beta " << g.beta << " C rank " << g.cdims.size() << " const_b " << g.const_b << " const_c " << g.const_c;
}

TEST(DnnlGemm, TransposesAlphaBetaBroadcastC) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (bool cb : {false, true}) {
        CheckGemm({5, 7, 6, ta, tb, 0.5f, 2.f, {6}, cb, false});
        CheckGemm({5, 7, 6, ta, tb, 1.f, 1.f, {5, 1}, cb, true});
        CheckGemm({5, 7, 6, ta, tb, 1.5f, -1.f, {5, 6}, cb, true});
      }
}

TEST(DnnlGemm, ConstantCBiasPath) {
  for (Dims cd : {Dims{6}, Dims{1, 6}, Dims{5, 1}, Dims{5, 6}, Dims{}, Dims{1}})
    CheckGemm({5, 7, 6, false, true, 1.f, 0.75f, cd, true, true});
}

TEST(DnnlGemm, NoCAndBetaZero) {
  CheckGemm({4, 3, 5, false, false, 2.f, 1.f, {-1}, false, false});
  CheckGemm({4, 3, 5, true, false, 1.f, 0.f, {4, 5}, true, true});
  CheckGemm({4, 3, 5, false, true, 1.f, 0.f, {5}, false, false});
}

TEST(DnnlGemm, FullyConnectedShape) { CheckGemm({3, 256, 100, false, true, 1.f, 1.f, {100}, true, true}); }

TEST(DnnlGemm, ScalarRuntimeC) { CheckGemm({3, 4, 2, false, false, 1.f, 3.f, {}, false, false}); }

TEST(DnnlGemm, EmptyInnerDimGivesBetaC) {
  const float none = 0.f;
  OpTest t("Gemm");
  t.AddInputBytes(TSR_DTYPE_F32, {2, 0}, &none).AddInputBytes(TSR_DTYPE_F32, {0, 3}, &none);
  t.AddInput<float>({3}, {1, 2, 3}).AddOutput(TSR_DTYPE_F32, {2, 3});
  t.SetAttrFloat("beta", 2.f);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<float>(0), (std::vector<float>{2, 4, 6, 2, 4, 6}));
}

TEST(DnnlGemm, Errors) {
  {
    OpTest t("Gemm");
    t.SetName("gemm_c");
    t.AddInput<float>({2, 3}, RandomFloats(6)).AddInput<float>({3, 4}, RandomFloats(12));
    t.AddInput<float>({3}, RandomFloats(3)).AddOutput(TSR_DTYPE_F32, {2, 4});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("gemm_c"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("does not broadcast"), std::string::npos) << e.message;
  }
  {
    OpTest t("Gemm");
    t.SetName("gemm_k");
    t.AddInput<float>({2, 3}, RandomFloats(6)).AddInput<float>({3, 4}, RandomFloats(12)).AddOutput(TSR_DTYPE_F32, {2, 4});
    t.SetAttrInt("transB", 1);
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("inner dimensions"), std::string::npos) << e.message;
  }
  {
    OpTest t("Gemm");
    t.AddInput<float>({2, 3, 1}, RandomFloats(6)).AddInput<float>({3, 4}, RandomFloats(12)).AddOutput(TSR_DTYPE_F32, {2, 4});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("2-D"), std::string::npos) << e.message;
  }
}

// ---- pools ---------------------------------------------------------------------------------

struct PoolCase {
  Dims xd, k, s, d, pads;  // empty s/d/pads = attribute absent
  bool ceil_mode = false;
  bool include_pad = false;
};

void CheckPool(const char* op, const PoolCase& c) {
  bool is_max = std::string(op) == "MaxPool";
  size_t nsp = c.xd.size() - 2;
  WindowSpec ws;
  ws.k = c.k;
  ws.s = c.s.empty() ? Dims(nsp, 1) : c.s;
  ws.d = c.d.empty() ? Dims(nsp, 1) : c.d;
  ws.pl = c.pads.empty() ? Dims(nsp, 0) : Dims(c.pads.begin(), c.pads.begin() + nsp);
  ws.pr = c.pads.empty() ? Dims(nsp, 0) : Dims(c.pads.begin() + nsp, c.pads.end());
  auto x = RandomFloats(NumElements(c.xd), -3, 3, 31);
  Dims yd;
  auto ref = RefPool(x, c.xd, ws, is_max, c.ceil_mode, c.include_pad, &yd);
  OpTest t(op, "", 19);
  t.AddInput<float>(c.xd, x).AddOutput(TSR_DTYPE_F32, yd);
  t.SetAttrInts("kernel_shape", c.k);
  if (!c.s.empty()) t.SetAttrInts("strides", c.s);
  if (!c.d.empty()) t.SetAttrInts("dilations", c.d);
  if (!c.pads.empty()) t.SetAttrInts("pads", c.pads);
  if (c.ceil_mode) t.SetAttrInt("ceil_mode", 1);
  if (!is_max) t.SetAttrInt("count_include_pad", c.include_pad);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-5f, 1e-6f)) << op << " out " << ::testing::PrintToString(yd);
}

TEST(DnnlMaxPool, Basic2x2) { CheckPool("MaxPool", {{2, 3, 8, 8}, {2, 2}, {2, 2}}); }
TEST(DnnlMaxPool, PadsStrideCeilMode) {
  CheckPool("MaxPool", {{1, 2, 7, 7}, {3, 3}, {2, 2}, {}, {1, 1, 1, 1}, true});
  CheckPool("MaxPool", {{1, 2, 6, 9}, {3, 2}, {2, 3}, {}, {0, 0, 0, 0}, true});
}
TEST(DnnlMaxPool, Dilation) { CheckPool("MaxPool", {{1, 2, 9, 9}, {2, 3}, {1, 2}, {2, 2}, {1, 0, 0, 1}}); }
TEST(DnnlMaxPool, ResNetStem) { CheckPool("MaxPool", {{1, 4, 16, 16}, {3, 3}, {2, 2}, {}, {1, 1, 1, 1}}); }
TEST(DnnlMaxPool, OneDAndThreeD) {
  CheckPool("MaxPool", {{2, 3, 10}, {3}, {2}, {}, {1, 1}});
  CheckPool("MaxPool", {{1, 2, 5, 6, 4}, {2, 2, 2}, {2, 2, 2}, {}, {}, true});
}

TEST(DnnlMaxPool, AutoPadSameUpper) {
  Dims xd{1, 1, 5, 5};
  auto x = RandomFloats(25, -1, 1, 40);
  WindowSpec ws{{2, 2}, {2, 2}, {1, 1}, {0, 0}, {1, 1}};  // out 3: total pad 1, all at the end
  Dims yd;
  auto ref = RefPool(x, xd, ws, true, false, false, &yd);
  OpTest t("MaxPool");
  t.AddInput<float>(xd, x).AddOutput(TSR_DTYPE_F32, yd);
  t.SetAttrInts("kernel_shape", {2, 2}).SetAttrInts("strides", {2, 2}).SetAttrString("auto_pad", "SAME_UPPER");
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref));
}

// With the Indices output MaxPool runs the own loop: its values must match the
// oneDNN path and every index must point at its value in X.
TEST(DnnlMaxPool, IndicesOutputAgreesWithOneDnnPath) {
  auto x = RandomFloats(2 * 3 * 7 * 6, -1, 1, 77);
  OpTest plain("MaxPool"), idx("MaxPool");
  for (OpTest* t : {&plain, &idx}) {
    t->AddInput<float>({2, 3, 7, 6}, x).AddOutput(TSR_DTYPE_F32, {2, 3, 4, 3});
    t->SetAttrInts("kernel_shape", {3, 2}).SetAttrInts("strides", {2, 2}).SetAttrInts("pads", {1, 0, 0, 0});
    t->SetAttrInt("ceil_mode", 1);
  }
  idx.AddOutput(TSR_DTYPE_I64, {2, 3, 4, 3});
  EXPECT_EQ(idx.Claim(), "");
  ASSERT_TRUE(plain.Run().ok()) << plain.last_error();
  ASSERT_TRUE(idx.Run().ok()) << idx.last_error();
  std::vector<float> y = idx.Output<float>(0);
  EXPECT_EQ(y, plain.Output<float>(0));
  std::vector<int64_t> ind = idx.Output<int64_t>(1);
  ASSERT_EQ(ind.size(), y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_TRUE(ind[i] >= 0 && ind[i] < static_cast<int64_t>(x.size())) << i;
    EXPECT_EQ(x[static_cast<size_t>(ind[i])], y[i]) << i;
    EXPECT_EQ(ind[i] / 42, static_cast<int64_t>(i) / 12) << "index outside its (n, c) plane at " << i;
  }
}

TEST(DnnlMaxPool, Errors) {
  {
    OpTest t("MaxPool");
    t.SetName("mp_noks");
    t.AddInput<float>({1, 1, 4, 4}, RandomFloats(16)).AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("kernel_shape"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("mp_noks"), std::string::npos) << e.message;
  }
  {
    OpTest t("MaxPool");
    t.AddInput<float>({1, 1, 4, 4}, RandomFloats(16)).AddOutput(TSR_DTYPE_F32, {1, 1, 3, 3});
    t.SetAttrInts("kernel_shape", {2, 2}).SetAttrInts("strides", {2, 2});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("[1,1,2,2]"), std::string::npos) << e.message;
  }
  {
    OpTest t("MaxPool");
    t.AddInput<float>({1, 1, 4, 4}, RandomFloats(16)).AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
    t.SetAttrInts("kernel_shape", {2, 2, 2});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("kernel_shape"), std::string::npos) << e.message;
  }
  {
    OpTest t("MaxPool");
    t.AddInput<float>({4, 4}, RandomFloats(16)).AddOutput(TSR_DTYPE_F32, {2, 2});
    t.SetAttrInts("kernel_shape", {2});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("rank"), std::string::npos) << e.message;
  }
}

TEST(DnnlAveragePool, ExcludeAndIncludePad) {
  for (bool inc : {false, true}) {
    CheckPool("AveragePool", {{2, 3, 7, 7}, {3, 3}, {2, 2}, {}, {1, 1, 1, 1}, false, inc});
    CheckPool("AveragePool", {{1, 2, 6, 5}, {2, 3}, {1, 2}, {}, {0, 1, 1, 2}, false, inc});
  }
}

TEST(DnnlAveragePool, CeilModeCountIncludePad) {
  for (bool inc : {false, true}) {
    CheckPool("AveragePool", {{1, 2, 6, 6}, {3, 3}, {2, 2}, {}, {1, 1, 1, 1}, true, inc});
    CheckPool("AveragePool", {{1, 2, 5, 5}, {3, 3}, {2, 2}, {}, {1, 1, 1, 1}, true, inc});
    CheckPool("AveragePool", {{2, 1, 7, 8}, {2, 2}, {3, 3}, {}, {}, true, inc});
    CheckPool("AveragePool", {{1, 1, 9}, {4}, {3}, {}, {1, 0}, true, inc});
  }
}

// Values from PyTorch's avg_pool2d(x, 3, 2, 1, ceil_mode=True,
// count_include_pad=True) on x = 1..36 as 6x6 (the ONNX reference agrees).
TEST(DnnlAveragePool, CeilModeIncludePadMatchesPyTorch) {
  std::vector<float> x(36);
  for (int i = 0; i < 36; ++i) x[i] = static_cast<float>(i + 1);
  OpTest t("AveragePool");
  t.AddInput<float>({1, 1, 6, 6}, x).AddOutput(TSR_DTYPE_F32, {1, 1, 4, 4});
  t.SetAttrInts("kernel_shape", {3, 3}).SetAttrInts("strides", {2, 2}).SetAttrInts("pads", {1, 1, 1, 1});
  t.SetAttrInt("ceil_mode", 1).SetAttrInt("count_include_pad", 1);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> want{2, 4, 16.f / 3, 3, 9, 15, 17, 9, 17, 27, 29, 15, 10.5f, 16.5f, 17.5f, 9};
  EXPECT_TRUE(AllClose(t.Output<float>(0), want, 1e-5f, 1e-5f));
}

TEST(DnnlAveragePool, GlobalLikeAndThreeD) {
  CheckPool("AveragePool", {{2, 4, 7, 7}, {7, 7}});
  CheckPool("AveragePool", {{1, 2, 4, 5, 6}, {2, 2, 3}, {2, 2, 2}, {}, {0, 1, 1, 1, 0, 1}, false, true});
}


// ---- ConvTranspose (oneDNN deconvolution, else own loop); own-loop LpPool, MaxPool Indices/u8, MaxUnpool, DeformConv ----

// ConvTranspose in gather form (independent of the kernel's scatter form):
// y[n, oc, o] = b[oc] + sum_{c in group, k} x[n, c, (o + pl - k*d) / s] * w[c, oc % Mg, k]
// where the division is exact and in range. 2-D only.
std::vector<float> RefConvTranspose2D(const std::vector<float>& x, const Dims& xd, const std::vector<float>& w,
                                      const Dims& wd, const std::vector<float>& b, int64_t G, const Dims& s,
                                      const Dims& d, const Dims& pl, const Dims& osp) {
  const int64_t N = xd[0], C = xd[1], IH = xd[2], IW = xd[3], Mg = wd[1], M = Mg * G, Cg = C / G, KH = wd[2],
                KW = wd[3], OH = osp[0], OW = osp[1];
  std::vector<float> y(static_cast<size_t>(N * M * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < M; ++oc)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b.empty() ? 0.0 : b[oc];
          const int64_t g = oc / Mg;
          for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                int64_t th = oh + pl[0] - kh * d[0], tw = ow + pl[1] - kw * d[1];
                if (th < 0 || tw < 0 || th % s[0] || tw % s[1]) continue;
                int64_t ih = th / s[0], iw = tw / s[1];
                if (ih >= IH || iw >= IW) continue;
                acc += static_cast<double>(x[((n * C + c) * IH + ih) * IW + iw]) *
                       w[((c * Mg + oc % Mg) * KH + kh) * KW + kw];
              }
          y[((n * M + oc) * OH + oh) * OW + ow] = static_cast<float>(acc);
        }
  return y;
}

struct ConvTCase {
  Dims xd, wd;
  int64_t group = 1;
  Dims strides{1, 1}, dilations{1, 1}, pads{0, 0, 0, 0}, output_padding{0, 0};
  bool bias = false;
};

void CheckConvTranspose(const ConvTCase& c) {
  auto x = RandomFloats(NumElements(c.xd), -1, 1, 11);
  auto w = RandomFloats(NumElements(c.wd), -1, 1, 12);
  const int64_t M = c.wd[1] * c.group;
  std::vector<float> b = c.bias ? RandomFloats(M, -1, 1, 13) : std::vector<float>{};
  Dims osp;
  for (int i = 0; i < 2; ++i)
    osp.push_back(c.strides[i] * (c.xd[i + 2] - 1) + c.output_padding[i] + (c.wd[i + 2] - 1) * c.dilations[i] + 1 -
                  c.pads[i] - c.pads[i + 2]);
  auto ref = RefConvTranspose2D(x, c.xd, w, c.wd, b, c.group, c.strides, c.dilations, {c.pads[0], c.pads[1]}, osp);
  OpTest t("ConvTranspose");
  t.AddInput<float>(c.xd, x).AddInput<float>(c.wd, w, true);
  if (c.bias) t.AddInput<float>({M}, b, true);
  t.AddOutput(TSR_DTYPE_F32, {c.xd[0], M, osp[0], osp[1]});
  t.SetAttrInt("group", c.group).SetAttrInts("strides", c.strides).SetAttrInts("dilations", c.dilations);
  t.SetAttrInts("pads", c.pads).SetAttrInts("output_padding", c.output_padding);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-5f));
}

TEST(CpuConvTranspose, Basic) { CheckConvTranspose({{1, 1, 3, 3}, {1, 2, 3, 3}}); }
TEST(CpuConvTranspose, StridesPadsOutputPaddingBias) {
  ConvTCase c{{2, 3, 4, 5}, {3, 2, 3, 2}};
  c.strides = {3, 2};
  c.pads = {1, 0, 0, 1};
  c.output_padding = {1, 1};
  c.bias = true;
  CheckConvTranspose(c);
}
TEST(CpuConvTranspose, GroupsDilations) {
  ConvTCase c{{1, 4, 3, 3}, {4, 3, 2, 2}};
  c.group = 2;
  c.dilations = {2, 3};
  c.strides = {2, 1};
  CheckConvTranspose(c);
}
// Non-negative end padding: the oneDNN deconvolution path (with bias, groups).
TEST(CpuConvTranspose, OneDnnPathBiasGroupsPads) {
  ConvTCase c{{2, 6, 5, 4}, {6, 2, 3, 3}};
  c.group = 3;
  c.strides = {2, 2};
  c.pads = {1, 1, 1, 0};
  c.bias = true;
  CheckConvTranspose(c);
}

TEST(CpuConvTranspose, OutputShapeAndSameUpper) {
  // output_shape [10, 8] with strides [3, 2] on a 3x3 input, 3x3 kernel:
  // total padding is -1 per dim, i.e. one extra row/column past the last tap.
  auto x = RandomFloats(9, -1, 1, 21), w = RandomFloats(18, -1, 1, 22);
  auto ref = RefConvTranspose2D(x, {1, 1, 3, 3}, w, {1, 2, 3, 3}, {}, 1, {3, 2}, {1, 1}, {0, 0}, {10, 8});
  OpTest t("ConvTranspose");
  t.AddInput<float>({1, 1, 3, 3}, x).AddInput<float>({1, 2, 3, 3}, w, true);
  t.AddOutput(TSR_DTYPE_F32, {1, 2, 10, 8});
  t.SetAttrInts("strides", {3, 2}).SetAttrInts("output_shape", {10, 8});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-5f));

  // SAME_UPPER, stride 2: out = 6, total padding 1 -> pad_begin 0.
  auto ref2 = RefConvTranspose2D(x, {1, 1, 3, 3}, w, {1, 2, 3, 3}, {}, 1, {2, 2}, {1, 1}, {0, 0}, {6, 6});
  OpTest t2("ConvTranspose");
  t2.AddInput<float>({1, 1, 3, 3}, x).AddInput<float>({1, 2, 3, 3}, w);
  t2.AddOutput(TSR_DTYPE_F32, {1, 2, 6, 6});
  t2.SetAttrInts("strides", {2, 2}).SetAttrString("auto_pad", "SAME_UPPER");
  ASSERT_TRUE(t2.Run().ok()) << t2.last_error();
  EXPECT_TRUE(AllClose(t2.Output<float>(0), ref2, 1e-4f, 1e-5f));
}

TEST(CpuConvTranspose, OneDMatchesHandComputed) {
  // x = [1, 2, 3], w = [1, 1, 1] (1 in, 1 out channel): full correlation sums.
  OpTest t("ConvTranspose");
  t.AddInput<float>({1, 1, 3}, {1, 2, 3}).AddInput<float>({1, 1, 3}, {1, 1, 1});
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 5});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1, 3, 6, 5, 3}));
}

TEST(CpuConvTranspose, Errors) {
  {
    OpTest t("ConvTranspose");
    t.SetName("ct_ch");
    t.AddInput<float>({1, 2, 3, 3}, RandomFloats(18)).AddInput<float>({3, 1, 3, 3}, RandomFloats(27));
    t.AddOutput(TSR_DTYPE_F32, {1, 1, 5, 5});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("ct_ch"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("channels"), std::string::npos) << e.message;
  }
  {
    OpTest t("ConvTranspose");
    t.SetName("ct_out");
    t.AddInput<float>({1, 1, 3, 3}, RandomFloats(9)).AddInput<float>({1, 1, 3, 3}, RandomFloats(9));
    t.AddOutput(TSR_DTYPE_F32, {1, 1, 4, 4});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("[1,1,5,5]"), std::string::npos) << e.message;
  }
  {
    OpTest t("ConvTranspose");
    t.SetName("ct_f64");
    t.AddInput<double>({1, 1, 3}, {1, 2, 3}).AddInput<double>({1, 1, 3}, {1, 1, 1});
    t.AddOutput(TSR_DTYPE_F64, {1, 1, 5});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("f64"), std::string::npos) << e.message;
  }
}

// LpPool reference: (sum over in-bounds taps |x|^p)^(1/p), 2-D.
std::vector<float> RefLpPool2D(const std::vector<float>& x, const Dims& xd, const Dims& k, const Dims& s,
                               const Dims& d, const Dims& pl, const Dims& osp, double p) {
  const int64_t P = xd[0] * xd[1], IH = xd[2], IW = xd[3];
  std::vector<float> y;
  for (int64_t pl_ = 0; pl_ < P; ++pl_)
    for (int64_t oh = 0; oh < osp[0]; ++oh)
      for (int64_t ow = 0; ow < osp[1]; ++ow) {
        double acc = 0;
        for (int64_t a = 0; a < k[0]; ++a)
          for (int64_t b = 0; b < k[1]; ++b) {
            int64_t ih = oh * s[0] - pl[0] + a * d[0], iw = ow * s[1] - pl[1] + b * d[1];
            if (ih < 0 || iw < 0 || ih >= IH || iw >= IW) continue;
            acc += std::pow(std::fabs(x[(pl_ * IH + ih) * IW + iw]), p);
          }
        y.push_back(static_cast<float>(std::pow(acc, 1.0 / p)));
      }
  return y;
}

TEST(OwnLoopLpPool, PadsStridesDilations) {
  auto x = RandomFloats(2 * 3 * 7 * 6, -2, 2, 31);
  // kernel 3x2, strides 2x1, dilations 1x2, pads 1,0,1,2 -> out (7+2-3)/2+1 = 4, (6+2-3)/1+1 = 6
  auto ref = RefLpPool2D(x, {2, 3, 7, 6}, {3, 2}, {2, 1}, {1, 2}, {1, 0}, {4, 6}, 3.0);
  OpTest t("LpPool");
  t.AddInput<float>({2, 3, 7, 6}, x).AddOutput(TSR_DTYPE_F32, {2, 3, 4, 6});
  t.SetAttrInts("kernel_shape", {3, 2}).SetAttrInts("strides", {2, 1}).SetAttrInts("dilations", {1, 2});
  t.SetAttrInts("pads", {1, 0, 1, 2}).SetAttrInt("p", 3);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-5f));
}

TEST(OwnLoopLpPool, GlobalDefaultP2) {
  OpTest t("GlobalLpPool");
  t.AddInput<float>({1, 2, 2, 2}, {3, 4, 0, 0, 1, 1, 1, -1}).AddOutput(TSR_DTYPE_F32, {1, 2, 1, 1});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), {5.f, 2.f}));
}

TEST(OwnLoopLpPool, Errors) {
  OpTest t("LpPool");
  t.SetName("lp_dtype");
  t.AddInput<int32_t>({1, 1, 4}, {1, 2, 3, 4}).AddOutput(TSR_DTYPE_I32, {1, 1, 3});
  t.SetAttrInts("kernel_shape", {2});
  EXPECT_NE(t.Claim().find("i32"), std::string::npos) << t.Claim();
  Err e = t.Run();
  EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(e.message.find("lp_dtype"), std::string::npos) << e.message;
}

TEST(OwnLoopMaxPool, IndicesRowAndColumnMajor) {
  // 1x1x3x4, kernel 2, stride 2 -> 1x2 outputs (rows 0-1 only).
  std::vector<float> x{1, 9, 2, 3,  //
                       4, 5, 8, 7,  //
                       6, 0, 1, 1};
  for (int order = 0; order < 2; ++order) {
    OpTest t("MaxPool");
    t.AddInput<float>({1, 1, 3, 4}, x).AddOutput(TSR_DTYPE_F32, {1, 1, 1, 2}).AddOutput(TSR_DTYPE_I64, {1, 1, 1, 2});
    t.SetAttrInts("kernel_shape", {2, 2}).SetAttrInts("strides", {2, 2}).SetAttrInt("storage_order", order);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{9, 8}));
    // 9 at (0,1), 8 at (1,2): row-major 1 and 6; column-major (h + w*H) 3 and 7.
    EXPECT_EQ(t.Output<int64_t>(1), order == 0 ? (std::vector<int64_t>{1, 6}) : (std::vector<int64_t>{3, 7}));
  }
}

TEST(OwnLoopMaxPool, Uint8WithPadsAndSecondPlaneIndices) {
  std::vector<uint8_t> x{1, 200, 3, 4, 5, 6, 7, 8};  // 1x2x2x2
  OpTest t("MaxPool");
  t.AddInput<uint8_t>({1, 2, 2, 2}, x).AddOutput(TSR_DTYPE_U8, {1, 2, 1, 1}).AddOutput(TSR_DTYPE_I64, {1, 2, 1, 1});
  t.SetAttrInts("kernel_shape", {3, 3}).SetAttrInts("pads", {1, 1, 0, 0});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<uint8_t>(0), (std::vector<uint8_t>{200, 8}));
  EXPECT_EQ(t.Output<int64_t>(1), (std::vector<int64_t>{1, 7}));  // flat over N, C and spatial
}

TEST(OwnLoopMaxPool, Errors) {
  OpTest t("MaxPool");
  t.SetName("mp_i32");
  t.AddInput<int32_t>({1, 1, 4}, {1, 2, 3, 4}).AddOutput(TSR_DTYPE_I32, {1, 1, 3});
  t.SetAttrInts("kernel_shape", {2});
  EXPECT_NE(t.Claim(), "");
  Err e = t.Run();
  EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(e.message.find("mp_i32"), std::string::npos) << e.message;
}

TEST(OwnLoopMaxUnpool, WithAndWithoutOutputShape) {
  {
    OpTest t("MaxUnpool");
    t.AddInput<float>({1, 1, 2, 2}, {1, 2, 3, 4}).AddInput<int64_t>({1, 1, 2, 2}, {5, 7, 13, 15});
    t.AddOutput(TSR_DTYPE_F32, {1, 1, 4, 4});
    t.SetAttrInts("kernel_shape", {2, 2}).SetAttrInts("strides", {2, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4}));
  }
  {
    OpTest t("MaxUnpool");
    t.AddInput<float>({1, 1, 2, 2}, {5, 6, 7, 8}).AddInput<int64_t>({1, 1, 2, 2}, {5, 7, 13, 15});
    t.AddInput<int64_t>({4}, {1, 1, 5, 5}, true);
    t.AddOutput(TSR_DTYPE_F32, {1, 1, 5, 5});
    t.SetAttrInts("kernel_shape", {2, 2}).SetAttrInts("strides", {2, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> want(25, 0.f);
    want[6] = 5;
    want[8] = 6;
    want[16] = 7;
    want[18] = 8;
    EXPECT_EQ(t.Output<float>(0), want);
  }
}

TEST(OwnLoopMaxUnpool, Errors) {
  {
    OpTest t("MaxUnpool");
    t.SetName("unpool_idx");
    t.AddInput<float>({1, 1, 1, 2}, {1, 2}).AddInput<int64_t>({1, 1, 1, 2}, {0, 99});
    t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 4});
    t.SetAttrInts("kernel_shape", {2, 2}).SetAttrInts("strides", {2, 2});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("unpool_idx"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("99"), std::string::npos) << e.message;
  }
  {
    OpTest t("MaxUnpool");
    t.SetName("unpool_itype");
    t.AddInput<float>({1, 1, 1, 2}, {1, 2}).AddInput<int32_t>({1, 1, 1, 2}, {0, 1});
    t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 4});
    t.SetAttrInts("kernel_shape", {2, 2}).SetAttrInts("strides", {2, 2});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("i64"), std::string::npos) << e.message;
  }
}

TEST(OwnLoopDeformConv, ZeroOffsetsEqualConv) {
  Dims xd{2, 4, 6, 5}, wd{6, 2, 3, 2};
  auto x = RandomFloats(NumElements(xd), -1, 1, 41), w = RandomFloats(NumElements(wd), -1, 1, 42);
  auto b = RandomFloats(6, -1, 1, 43);
  WindowSpec ws{{3, 2}, {2, 1}, {1, 2}, {1, 0}, {1, 1}};
  Dims yd;
  auto ref = RefConv(x, xd, w, wd, b, 2, ws, &yd);
  const int64_t OH = yd[2], OW = yd[3];
  OpTest t("DeformConv");
  t.AddInput<float>(xd, x).AddInput<float>(wd, w);
  t.AddInput<float>({2, 2 * 6 * 2, OH, OW}, std::vector<float>(static_cast<size_t>(2 * 24 * OH * OW), 0.f));
  t.AddInput<float>({6}, b);
  t.AddOutput(TSR_DTYPE_F32, yd);
  t.SetAttrInt("group", 2).SetAttrInt("offset_group", 2).SetAttrInts("strides", {2, 1});
  t.SetAttrInts("dilations", {1, 2}).SetAttrInts("pads", {1, 0, 1, 1});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-5f));
}

TEST(OwnLoopDeformConv, FractionalOffsetAndMask) {
  // 1x1 kernel of weight 1 on [[1, 2], [3, 4]]: output (0,0) samples (0.5, 0.5)
  // = 2.5, output (1,1) samples (1.5, 1) = half of X[1,1] (the other corner is
  // outside) = 2; mask 0.5 everywhere halves them.
  OpTest t("DeformConv");
  t.AddInput<float>({1, 1, 2, 2}, {1, 2, 3, 4}).AddInput<float>({1, 1, 1, 1}, {1});
  t.AddInput<float>({1, 2, 2, 2}, {0.5f, 0, 0, 0.5f, /*dx*/ 0.5f, 0, 0, 0});
  t.AddMissingInput();
  t.AddInput<float>({1, 1, 2, 2}, {0.5f, 0.5f, 0.5f, 0.5f});
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), {1.25f, 1.f, 1.5f, 1.f}));
}

TEST(OwnLoopDeformConv, Errors) {
  OpTest t("DeformConv");
  t.SetName("dc_off");
  t.AddInput<float>({1, 1, 3, 3}, RandomFloats(9)).AddInput<float>({1, 1, 2, 2}, RandomFloats(4));
  t.AddInput<float>({1, 4, 2, 2}, RandomFloats(16));  // needs 8 channels
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
  Err e = t.Run();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("dc_off"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("offset"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace tessera::cpu::testing
