// CPU kernels of backends/cpu/kernels_loss_norm.cpp against naive references:
// Hardmax, CumSum, TopK, NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss,
// RMS/Lp/MeanVariance/Group/Instance normalization and LRN.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using testing::OpTest;
using Dims = std::vector<int64_t>;

std::vector<float> Rand(size_t n, uint32_t seed, float lo = -2.f, float hi = 2.f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

void ExpectNear(const std::vector<float>& a, const std::vector<double>& b, double tol = 1e-5) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol * (1 + std::fabs(b[i]))) << "at " << i;
}

// ---- Hardmax ------------------------------------------------------------------------------------------

TEST(HardmaxKernel, AxisAndTiesAndOldCoercion) {
  std::vector<float> x{1, 3, 3, 0, 2, 1, 5, 5, 4, 0, 9, 1};  // [2, 2, 3]
  {
    OpTest t("Hardmax", "", 13);
    t.AddInput<float>({2, 2, 3}, x).AddOutput(TSR_DTYPE_F32, {2, 2, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0}));
  }
  {
    OpTest t("Hardmax", "", 13);  // axis 1: the middle axis
    t.AddInput<float>({2, 2, 3}, x).SetAttrInt("axis", 1).AddOutput(TSR_DTYPE_F32, {2, 2, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0}));
  }
  {
    OpTest t("Hardmax", "", 11);  // opset < 13: rows of the input coerced to [2, 6]
    t.AddInput<float>({2, 2, 3}, x).SetAttrInt("axis", 1).AddOutput(TSR_DTYPE_F32, {2, 2, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  }
  {
    OpTest t("Hardmax", "", 13);
    t.SetName("hm");
    t.AddInput<int32_t>({2}, {1, 2}).AddOutput(TSR_DTYPE_I32, {2});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("hm"), std::string::npos) << e.message;
  }
}

// ---- CumSum ------------------------------------------------------------------------------------------

std::vector<double> CumSumRef(const std::vector<double>& x, Dims d, int axis, bool excl, bool rev) {
  int64_t outer = 1, inner = 1, n = d[axis];
  for (int i = 0; i < axis; ++i) outer *= d[i];
  for (size_t i = axis + 1; i < d.size(); ++i) inner *= d[i];
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t k = 0; k < n; ++k) {
          bool take = rev ? (excl ? k > j : k >= j) : (excl ? k < j : k <= j);
          if (take) s += x[(o * n + k) * inner + i];
        }
        y[(o * n + j) * inner + i] = s;
      }
  return y;
}

TEST(CumSumKernel, ExclusiveReverseAxesAndDtypes) {
  Dims d{2, 3, 4};
  std::vector<int32_t> xi(24);
  std::vector<double> xd(24);
  for (int i = 0; i < 24; ++i) {
    xi[i] = (i * 7) % 11 - 5;
    xd[i] = xi[i] * 0.5;
  }
  for (int axis : {0, 1, 2, -1})
    for (int excl = 0; excl < 2; ++excl)
      for (int rev = 0; rev < 2; ++rev) {
        const int a = axis < 0 ? axis + 3 : axis;
        OpTest t("CumSum", "", 14);
        t.AddInput<int32_t>(d, xi).AddInput<int32_t>({}, {axis}, true).AddOutput(TSR_DTYPE_I32, d);
        t.SetAttrInt("exclusive", excl).SetAttrInt("reverse", rev);
        ASSERT_TRUE(t.Run().ok()) << t.last_error();
        std::vector<double> xdi(xi.begin(), xi.end());
        auto ref = CumSumRef(xdi, d, a, excl, rev);
        auto got = t.Output<int32_t>(0);
        for (int i = 0; i < 24; ++i) EXPECT_EQ(got[i], ref[i]) << axis << excl << rev << " at " << i;
        OpTest f("CumSum", "", 14);
        f.AddInput<double>(d, xd).AddInput<int64_t>({1}, {axis}, true).AddOutput(TSR_DTYPE_F64, d);
        f.SetAttrInt("exclusive", excl).SetAttrInt("reverse", rev);
        ASSERT_TRUE(f.Run().ok()) << f.last_error();
        auto reff = CumSumRef(xd, d, a, excl, rev);
        auto gotf = f.Output<double>(0);
        for (int i = 0; i < 24; ++i) EXPECT_DOUBLE_EQ(gotf[i], reff[i]);
      }
}

TEST(CumSumKernel, BadAxis) {
  {
    OpTest t("CumSum", "", 14);
    t.SetName("cs");
    t.AddInput<float>({3}, {1, 2, 3}).AddInput<int64_t>({}, {1}).AddOutput(TSR_DTYPE_F32, {3});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("constant"), std::string::npos) << e.message;
  }
  {
    OpTest t("CumSum", "", 14);
    t.SetName("cs");
    t.AddInput<float>({3}, {1, 2, 3}).AddInput<int64_t>({}, {1}, true).AddOutput(TSR_DTYPE_F32, {3});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("out of range"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("cs"), std::string::npos) << e.message;
  }
}

// ---- TopK ----------------------------------------------------------------------------------------------

TEST(TopKKernel, LargestSmallestTiesAndAxis) {
  std::vector<float> x{3, 1, 3, 2, 5, 0, 0, 7};  // [2, 4]
  {
    OpTest t("TopK", "", 11);
    t.AddInput<float>({2, 4}, x).AddInput<int64_t>({1}, {3}, true);
    t.AddOutput(TSR_DTYPE_F32, {2, 3}).AddOutput(TSR_DTYPE_I64, {2, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{3, 3, 2, 7, 5, 0}));
    EXPECT_EQ(t.Output<int64_t>(1), (std::vector<int64_t>{0, 2, 3, 3, 0, 1}));  // ties: lower index first
  }
  {
    OpTest t("TopK", "", 11);
    t.AddInput<float>({2, 4}, x).AddInput<int64_t>({1}, {2}, true).SetAttrInt("largest", 0);
    t.AddOutput(TSR_DTYPE_F32, {2, 2}).AddOutput(TSR_DTYPE_I64, {2, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1, 2, 0, 0}));
    EXPECT_EQ(t.Output<int64_t>(1), (std::vector<int64_t>{1, 3, 1, 2}));
  }
  {
    OpTest t("TopK", "", 11);  // axis 0
    t.AddInput<float>({2, 4}, x).AddInput<int64_t>({1}, {1}, true).SetAttrInt("axis", 0);
    t.AddOutput(TSR_DTYPE_F32, {1, 4}).AddOutput(TSR_DTYPE_I64, {1, 4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{5, 1, 3, 7}));
    EXPECT_EQ(t.Output<int64_t>(1), (std::vector<int64_t>{1, 0, 0, 1}));
  }
  {
    OpTest t("TopK", "", 11);  // u64 beyond 2^53 compares exactly
    const uint64_t big = (uint64_t{1} << 60);
    t.AddInput<uint64_t>({3}, {big + 1, big + 3, big + 2}).AddInput<int64_t>({1}, {2}, true);
    t.AddOutput(TSR_DTYPE_U64, {2}).AddOutput(TSR_DTYPE_I64, {2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<uint64_t>(0), (std::vector<uint64_t>{big + 3, big + 2}));
    EXPECT_EQ(t.Output<int64_t>(1), (std::vector<int64_t>{1, 2}));
  }
  {
    OpTest t("TopK", "", 1);  // k as an attribute (opset < 10)
    t.AddInput<int64_t>({3}, {4, 9, 1}).SetAttrInt("k", 1);
    t.AddOutput(TSR_DTYPE_I64, {1}).AddOutput(TSR_DTYPE_I64, {1});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{9}));
  }
}

TEST(TopKKernel, KOutOfRange) {
  OpTest t("TopK", "", 11);
  t.SetName("tk");
  t.AddInput<float>({4}, {1, 2, 3, 4}).AddInput<int64_t>({1}, {5}, true);
  t.AddOutput(TSR_DTYPE_F32, {5}).AddOutput(TSR_DTYPE_I64, {5});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("tk"), std::string::npos);
  EXPECT_NE(e.message.find("K 5"), std::string::npos) << e.message;
}

// ---- losses ----------------------------------------------------------------------------------------------

// input [N, C, D] (log-probabilities), target [N, D]; returns per-element losses and the mean denominator.
std::vector<double> NllRef(const std::vector<double>& x, const std::vector<int64_t>& t, int64_t n, int64_t c,
                           int64_t d, const std::vector<double>* w, int64_t ii, double* wsum) {
  std::vector<double> l(n * d, 0.0);
  *wsum = 0;
  for (int64_t a = 0; a < n; ++a)
    for (int64_t i = 0; i < d; ++i) {
      int64_t k = t[a * d + i];
      if (k == ii) continue;
      double wv = w ? (*w)[k] : 1.0;
      l[a * d + i] = -x[(a * c + k) * d + i] * wv;
      *wsum += wv;
    }
  return l;
}

TEST(LossKernel, NllReductionsWeightsIgnoreIndex) {
  const int64_t n = 3, c = 4, d = 2;
  auto xf = Rand(n * c * d, 3);
  std::vector<double> x(xf.begin(), xf.end());
  std::vector<int64_t> t{0, 3, 2, 1, 1, 1};
  std::vector<float> wf{0.5f, 1.f, 2.f, 0.25f};
  std::vector<double> w(wf.begin(), wf.end());
  for (const char* red : {"none", "sum", "mean"})
    for (int use_w = 0; use_w < 2; ++use_w) {
      double wsum;
      auto ref = NllRef(x, t, n, c, d, use_w ? &w : nullptr, 1, &wsum);
      OpTest k("NegativeLogLikelihoodLoss", "", 22);
      k.AddInput<float>({n, c, d}, xf).AddInput<int64_t>({n, d}, t);
      if (use_w) k.AddInput<float>({c}, wf);
      k.SetAttrString("reduction", red).SetAttrInt("ignore_index", 1);
      std::string r = red;
      k.AddOutput(TSR_DTYPE_F32, r == "none" ? Dims{n, d} : Dims{});
      ASSERT_TRUE(k.Run().ok()) << k.last_error();
      double s = 0;
      for (double v : ref) s += v;
      if (r == "none") ExpectNear(k.Output<float>(0), ref);
      else if (r == "sum") ExpectNear(k.Output<float>(0), {s});
      else ExpectNear(k.Output<float>(0), {s / wsum});
    }
}

TEST(LossKernel, SceMeanWithLogProb) {
  const int64_t n = 2, c = 3;
  auto xf = Rand(n * c, 9);
  std::vector<int64_t> t{2, 0};
  std::vector<double> lp(n * c);
  for (int64_t a = 0; a < n; ++a) {
    double m = -1e30, s = 0;
    for (int64_t j = 0; j < c; ++j) m = std::max<double>(m, xf[a * c + j]);
    for (int64_t j = 0; j < c; ++j) s += std::exp(xf[a * c + j] - m);
    for (int64_t j = 0; j < c; ++j) lp[a * c + j] = xf[a * c + j] - m - std::log(s);
  }
  OpTest k("SoftmaxCrossEntropyLoss", "", 13);
  k.AddInput<float>({n, c}, xf).AddInput<int64_t>({n}, t);
  k.AddOutput(TSR_DTYPE_F32, {}).AddOutput(TSR_DTYPE_F32, {n, c});
  ASSERT_TRUE(k.Run().ok()) << k.last_error();
  ExpectNear(k.Output<float>(0), {-(lp[2] + lp[3]) / 2});
  ExpectNear(k.Output<float>(1), lp);
}

TEST(LossKernel, BadTargets) {
  {
    OpTest k("NegativeLogLikelihoodLoss", "", 22);
    k.SetName("nll");
    k.AddInput<float>({2, 3}, Rand(6, 1)).AddInput<int64_t>({2}, {0, 3}).AddOutput(TSR_DTYPE_F32, {});
    Err e = k.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("nll"), std::string::npos);
    EXPECT_NE(e.message.find("out of range"), std::string::npos) << e.message;
  }
  {
    OpTest k("NegativeLogLikelihoodLoss", "", 22);
    k.AddInput<float>({2, 3}, Rand(6, 1)).AddInput<int64_t>({3}, {0, 1, 2}).AddOutput(TSR_DTYPE_F32, {});
    EXPECT_EQ(k.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
  {
    OpTest k("SoftmaxCrossEntropyLoss", "", 13);
    k.AddInput<float>({2, 3}, Rand(6, 1)).AddInput<int64_t>({2}, {0, 1}).SetAttrString("reduction", "avg");
    k.AddOutput(TSR_DTYPE_F32, {});
    Err e = k.Create();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("reduction"), std::string::npos) << e.message;
  }
}

// ---- normalizations ----------------------------------------------------------------------------------------

TEST(NormKernel, RmsNormWithBroadcastScale) {
  Dims d{2, 3, 4};
  auto x = Rand(24, 5);
  std::vector<float> s{0.5f, 1.f, 1.5f, 2.f};
  OpTest t("RMSNormalization", "", 23);
  t.AddInput<float>(d, x).AddInput<float>({4}, s).SetAttrInt("axis", 1).SetAttrFloat("epsilon", 1e-3f);
  t.AddOutput(TSR_DTYPE_F32, d);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<double> ref(24);
  for (int r = 0; r < 2; ++r) {
    double ss = 0;
    for (int j = 0; j < 12; ++j) ss += double(x[r * 12 + j]) * x[r * 12 + j];
    double inv = 1 / std::sqrt(ss / 12 + 1e-3);
    for (int j = 0; j < 12; ++j) ref[r * 12 + j] = x[r * 12 + j] * inv * s[j % 4];
  }
  ExpectNear(t.Output<float>(0), ref);
  OpTest bad("RMSNormalization", "", 23);
  bad.SetName("rms");
  bad.AddInput<float>(d, x).AddInput<float>({3}, {1, 1, 1}).AddOutput(TSR_DTYPE_F32, d);
  Err e = bad.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("broadcast"), std::string::npos) << e.message;
}

TEST(NormKernel, RmsNormF32FastPathAndF16) {
  Dims d{3, 8};
  auto x = Rand(24, 6);
  auto s = Rand(8, 7);
  OpTest t("RMSNormalization", "", 23);
  t.AddInput<float>(d, x).AddInput<float>({8}, s).AddOutput(TSR_DTYPE_F32, d);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<double> ref(24);
  for (int r = 0; r < 3; ++r) {
    double ss = 0;
    for (int j = 0; j < 8; ++j) ss += double(x[r * 8 + j]) * x[r * 8 + j];
    for (int j = 0; j < 8; ++j) ref[r * 8 + j] = x[r * 8 + j] / std::sqrt(ss / 8 + 1e-5) * s[j];
  }
  ExpectNear(t.Output<float>(0), ref);
  OpTest h("RMSNormalization", "", 23);
  h.AddInput<uint16_t>(TSR_DTYPE_F16, {1, 2}, {0x3C00, 0xBC00}).AddInput<uint16_t>(TSR_DTYPE_F16, {2}, {0x4000, 0x3800});
  h.AddOutput(TSR_DTYPE_F16, {1, 2});
  ASSERT_TRUE(h.Run().ok()) << h.last_error();
  // x = [1, -1], rms = 1: y = [1 * 2, -1 * 0.5] = [2, -0.5] (1/sqrt(1 + 1e-5) rounds away in f16).
  EXPECT_EQ(h.OutputBytes(0)[0] | (h.OutputBytes(0)[1] << 8), 0x4000);
  EXPECT_EQ(h.OutputBytes(0)[2] | (h.OutputBytes(0)[3] << 8), 0xB800);
}

TEST(NormKernel, LpNormalization) {
  Dims d{2, 3};
  std::vector<float> x{3, 4, 0, -1, 2, 2};
  OpTest t("LpNormalization", "", 22);
  t.AddInput<float>(d, x).SetAttrInt("axis", 0).SetAttrInt("p", 1).AddOutput(TSR_DTYPE_F32, d);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  ExpectNear(t.Output<float>(0), {0.75, 4.0 / 6, 0, -0.25, 2.0 / 6, 1});
  OpTest t2("LpNormalization", "", 22);
  t2.AddInput<float>(d, x).AddOutput(TSR_DTYPE_F32, d);
  ASSERT_TRUE(t2.Run().ok()) << t2.last_error();
  ExpectNear(t2.Output<float>(0), {0.6, 0.8, 0, -1 / 3.0, 2 / 3.0, 2 / 3.0});
  OpTest bad("LpNormalization", "", 22);
  bad.AddInput<float>(d, x).SetAttrInt("p", 3).AddOutput(TSR_DTYPE_F32, d);
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(NormKernel, MeanVarianceNormalization) {
  Dims d{2, 2, 1, 3};
  auto x = Rand(12, 8);
  OpTest t("MeanVarianceNormalization", "", 13);
  t.AddInput<float>(d, x).AddOutput(TSR_DTYPE_F32, d);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<double> ref(12);
  for (int c = 0; c < 2; ++c) {
    double s = 0, s2 = 0;
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 3; ++k) {
        double v = x[(n * 2 + c) * 3 + k];
        s += v;
        s2 += v * v;
      }
    double m = s / 6, sd = std::sqrt(s2 / 6 - m * m);
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 3; ++k) ref[(n * 2 + c) * 3 + k] = (x[(n * 2 + c) * 3 + k] - m) / (sd + 1e-9);
  }
  ExpectNear(t.Output<float>(0), ref, 1e-4);
}

std::vector<double> GroupNormRef(const std::vector<float>& x, int64_t n, int64_t c, int64_t sp, int64_t g,
                                 const std::vector<float>& s, const std::vector<float>& b, bool per_group, double eps) {
  std::vector<double> y(x.size());
  const int64_t cpg = c / g, gs = cpg * sp;
  for (int64_t q = 0; q < n * g; ++q) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < gs; ++j) m += x[q * gs + j];
    m /= gs;
    for (int64_t j = 0; j < gs; ++j) v += (x[q * gs + j] - m) * (x[q * gs + j] - m);
    v /= gs;
    for (int64_t j = 0; j < gs; ++j) {
      int64_t ch = (q % g) * cpg + j / sp, pi = per_group ? q % g : ch;
      y[q * gs + j] = (x[q * gs + j] - m) / std::sqrt(v + eps) * s[pi] + b[pi];
    }
  }
  return y;
}

TEST(NormKernel, GroupAndInstanceNormalization) {
  Dims d{2, 4, 3};
  auto x = Rand(24, 12);
  std::vector<float> s4{1, 2, 0.5f, -1}, b4{0, 1, 2, 3}, s2{2, 3}, b2{-1, 1};
  {
    OpTest t("GroupNormalization", "", 21);
    t.AddInput<float>(d, x).AddInput<float>({4}, s4).AddInput<float>({4}, b4).SetAttrInt("num_groups", 2);
    t.AddOutput(TSR_DTYPE_F32, d);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    ExpectNear(t.Output<float>(0), GroupNormRef(x, 2, 4, 3, 2, s4, b4, false, 1e-5), 1e-4);
  }
  {
    OpTest t("GroupNormalization", "", 18);  // scale/bias per group before opset 21
    t.AddInput<float>(d, x).AddInput<float>({2}, s2).AddInput<float>({2}, b2).SetAttrInt("num_groups", 2);
    t.AddOutput(TSR_DTYPE_F32, d);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    ExpectNear(t.Output<float>(0), GroupNormRef(x, 2, 4, 3, 2, s2, b2, true, 1e-5), 1e-4);
  }
  {
    OpTest t("InstanceNormalization", "", 22);
    t.AddInput<float>(d, x).AddInput<float>({4}, s4).AddInput<float>({4}, b4).SetAttrFloat("epsilon", 1e-2f);
    t.AddOutput(TSR_DTYPE_F32, d);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    ExpectNear(t.Output<float>(0), GroupNormRef(x, 2, 4, 3, 4, s4, b4, false, 1e-2), 1e-4);
  }
  {
    OpTest t("GroupNormalization", "", 21);
    t.SetName("gn");
    t.AddInput<float>(d, x).AddInput<float>({4}, s4).AddInput<float>({4}, b4).SetAttrInt("num_groups", 3);
    t.AddOutput(TSR_DTYPE_F32, d);
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("num_groups"), std::string::npos) << e.message;
  }
  {
    OpTest t("InstanceNormalization", "", 22);
    t.AddInput<float>(d, x).AddInput<float>({2}, s2).AddInput<float>({4}, b4).AddOutput(TSR_DTYPE_F32, d);
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
}

TEST(NormKernel, Lrn) {
  Dims d{1, 5, 2};
  auto x = Rand(10, 21);
  const int size = 4;
  const double alpha = 0.01, beta = 0.6, bias = 2.0;
  OpTest t("LRN", "", 13);
  t.AddInput<float>(d, x).SetAttrInt("size", size).SetAttrFloat("alpha", 0.01f).SetAttrFloat("beta", 0.6f);
  t.SetAttrFloat("bias", 2.f).AddOutput(TSR_DTYPE_F32, d);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<double> ref(10);
  for (int c = 0; c < 5; ++c)
    for (int s = 0; s < 2; ++s) {
      double ss = 0;
      for (int k = std::max(0, c - 1); k <= std::min(4, c + 2); ++k) ss += double(x[k * 2 + s]) * x[k * 2 + s];
      ref[c * 2 + s] = x[c * 2 + s] / std::pow(bias + alpha / size * ss, beta);
    }
  ExpectNear(t.Output<float>(0), ref);
  OpTest bad("LRN", "", 13);
  bad.AddInput<float>(d, x).AddOutput(TSR_DTYPE_F32, d);
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace tessera::cpu
