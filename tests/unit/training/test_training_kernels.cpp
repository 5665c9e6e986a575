// CPU kernels of the training ops against closed-form references and PyTorch
// 1.13 results (torch_refs.inc, from gen_torch_refs.py), plus bad inputs.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

#include "tests/unit/training/torch_refs.inc"

using testing::OpTest;

// sin(a*i + b), as gen_torch_refs.py's seq().
std::vector<double> Seq(int n, double a, double b, double scale = 1.0) {
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i) v[i] = std::sin(a * i + b) * scale;
  return v;
}

template <typename T>
void ExpectClose(const std::vector<T>& got, const double* want, size_t n, double tol, const char* what) {
  ASSERT_EQ(got.size(), n) << what;
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(got[i], want[i], tol * (1.0 + std::fabs(want[i]))) << what << "[" << i << "]";
}

// ---- SoftmaxCrossEntropy ---------------------------------------------------------------------

std::vector<double> Logits() { return Seq(15, 0.9, 0.3, 2.0); }

TEST(SoftmaxCrossEntropyKernel, MeanWithIgnoreIndexMatchesTorch) {
  OpTest t("SoftmaxCrossEntropy", "tessera");
  t.AddInput<double>({5, 3}, Logits()).AddInput<int64_t>({5}, {0, 2, -1, 1, 2});
  t.SetAttrInt("ignore_index", -1).AddOutput(TSR_DTYPE_F64, {});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  ExpectClose(t.Output<double>(0), kCeMeanIgnore, 1, 1e-12, "loss");
}

TEST(SoftmaxCrossEntropyKernel, SumWithLabelSmoothingMatchesTorch) {
  OpTest t("SoftmaxCrossEntropy", "tessera");
  t.AddInput<double>({5, 3}, Logits()).AddInput<int64_t>({5}, {0, 2, 0, 1, 2});
  t.SetAttrString("reduction", "sum").SetAttrFloat("label_smoothing", 0.2f).AddOutput(TSR_DTYPE_F64, {});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  ExpectClose(t.Output<double>(0), kCeSumSmooth, 1, 1e-7, "loss");  // 0.2f is not exactly 0.2
}

TEST(SoftmaxCrossEntropyKernel, NoneWithSmoothingAndIgnoreMatchesTorchAndF32) {
  for (int f32 = 0; f32 < 2; ++f32) {
    OpTest t("SoftmaxCrossEntropy", "tessera");
    auto lg = Logits();
    if (f32)
      t.AddInput<float>({5, 3}, std::vector<float>(lg.begin(), lg.end()));
    else
      t.AddInput<double>({5, 3}, lg);
    t.AddInput<int32_t>({5}, {0, 2, -1, 1, 2});
    t.SetAttrString("reduction", "none").SetAttrInt("ignore_index", -1).SetAttrFloat("label_smoothing", 0.3f);
    t.AddOutput(f32 ? TSR_DTYPE_F32 : TSR_DTYPE_F64, {5});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    if (f32)
      ExpectClose(t.Output<float>(0), kCeNoneSmoothIgnore, 5, 1e-6, "loss f32");
    else
      ExpectClose(t.Output<double>(0), kCeNoneSmoothIgnore, 5, 1e-7, "loss f64");
  }
}

TEST(SoftmaxCrossEntropyKernel, GradMatchesTorchAutograd) {
  OpTest t("SoftmaxCrossEntropyGrad", "tessera");
  t.AddInput<double>({}, {1.0}).AddInput<double>({5, 3}, Logits()).AddInput<int64_t>({5}, {0, 2, -1, 1, 2});
  t.SetAttrInt("ignore_index", -1).SetAttrFloat("label_smoothing", 0.3f).AddOutput(TSR_DTYPE_F64, {5, 3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  ExpectClose(t.Output<double>(0), kCeGradMeanSmoothIgnore, 15, 1e-7, "dlogits");
}

TEST(SoftmaxCrossEntropyKernel, AllIgnoredMeanIsZero) {
  OpTest t("SoftmaxCrossEntropy", "tessera");
  t.AddInput<double>({2, 3}, {1, 2, 3, 4, 5, 6}).AddInput<int64_t>({2}, {-100, -100});
  t.SetAttrInt("ignore_index", -100).AddOutput(TSR_DTYPE_F64, {});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<double>(0)[0], 0.0);
}

TEST(SoftmaxCrossEntropyKernel, LabelOutOfRangeIsAnErrorNamingTheNode) {
  OpTest t("SoftmaxCrossEntropy", "tessera");
  t.SetName("ce");
  t.AddInput<float>({2, 3}, {1, 2, 3, 4, 5, 6}).AddInput<int64_t>({2}, {0, 3}).AddOutput(TSR_DTYPE_F32, {});
  Err e = t.Run();
  ASSERT_EQ(e.code, TSR_ERR_OUT_OF_RANGE);
  EXPECT_NE(e.message.find("'ce'"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("label 3"), std::string::npos) << e.message;
}

TEST(SoftmaxCrossEntropyKernel, BadShapesAndDTypesAreRejected) {
  {
    OpTest t("SoftmaxCrossEntropy", "tessera");
    t.AddInput<float>({2, 3}, {1, 2, 3, 4, 5, 6}).AddInput<float>({2}, {0, 1}).AddOutput(TSR_DTYPE_F32, {});
    EXPECT_EQ(t.Run().code, TSR_ERR_INVALID_ARGUMENT);
  }
  {
    OpTest t("SoftmaxCrossEntropy", "tessera");
    t.AddInput<float>({2, 3}, {1, 2, 3, 4, 5, 6}).AddInput<int64_t>({3}, {0, 1, 2}).AddOutput(TSR_DTYPE_F32, {});
    EXPECT_EQ(t.Run().code, TSR_ERR_INVALID_ARGUMENT);
  }
  {
    OpTest t("SoftmaxCrossEntropy", "tessera");
    t.AddInput<float>({2, 3}, {1, 2, 3, 4, 5, 6}).AddInput<int64_t>({2}, {0, 1});
    t.SetAttrString("reduction", "avg").AddOutput(TSR_DTYPE_F32, {});
    EXPECT_EQ(t.Run().code, TSR_ERR_INVALID_ARGUMENT);
  }
}

// ---- MSE -------------------------------------------------------------------------------------

TEST(MSEKernel, ReductionsAndGrad) {
  std::vector<double> p{1, 2, 3, 4}, q{0.5, 2.5, 3, 2};
  double sum = 0.25 + 0.25 + 0 + 4;
  for (const char* red : {"mean", "sum"}) {
    OpTest t("MSE", "tessera");
    t.AddInput<double>({2, 2}, p).AddInput<double>({2, 2}, q).SetAttrString("reduction", red).AddOutput(TSR_DTYPE_F64, {});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_DOUBLE_EQ(t.Output<double>(0)[0], std::string(red) == "sum" ? sum : sum / 4);
  }
  OpTest g("MSEGrad", "tessera");
  g.AddInput<double>({}, {2.0}).AddInput<double>({2, 2}, p).AddInput<double>({2, 2}, q).AddOutput(TSR_DTYPE_F64, {2, 2});
  ASSERT_TRUE(g.Run().ok()) << g.last_error();
  auto d = g.Output<double>(0);
  for (int i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(d[i], 2.0 * 2.0 * (p[i] - q[i]) / 4.0);
}

TEST(MSEKernel, ShapeMismatchIsRejected) {
  OpTest t("MSE", "tessera");
  t.AddInput<float>({2, 2}, {1, 2, 3, 4}).AddInput<float>({4}, {1, 2, 3, 4}).AddOutput(TSR_DTYPE_F32, {});
  EXPECT_EQ(t.Run().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- optimizers: three steps vs torch.optim ------------------------------------------------------

// Runs `steps` updates of an optimizer node with state threaded through
// (outputs become the next step's inputs). kind: "sgd" or "adamw".
std::vector<double> RunSteps(const char* kind, const std::vector<std::pair<const char*, float>>& fattrs, int nesterov,
                             double lr, bool momentum) {
  std::vector<double> p = Seq(6, 0.8, 0.0), m(6, 0.0), v(6, 0.0);
  for (int k = 0; k < 3; ++k) {
    std::vector<double> g = Seq(6, 0.3 * (k + 1), k);
    OpTest t(std::string(kind) == "sgd" ? "SGDUpdate" : "AdamWUpdate", "tessera");
    for (auto& [n, val] : fattrs) t.SetAttrFloat(n, val);
    if (nesterov) t.SetAttrInt("nesterov", 1);
    t.AddInput<double>({6}, p).AddInput<double>({6}, g);
    if (std::string(kind) == "sgd") {
      t.AddInput<double>({}, {lr});
      if (momentum) t.AddInput<double>({6}, m);
      t.AddOutput(TSR_DTYPE_F64, {6});
      if (momentum) t.AddOutput(TSR_DTYPE_F64, {6});
    } else {
      t.AddInput<double>({6}, m).AddInput<double>({6}, v).AddInput<double>({}, {lr}).AddInput<int64_t>({}, {k + 1});
      t.AddOutput(TSR_DTYPE_F64, {6}).AddOutput(TSR_DTYPE_F64, {6}).AddOutput(TSR_DTYPE_F64, {6});
    }
    Err e = t.Run();
    EXPECT_TRUE(e.ok()) << e.message;
    if (!e.ok()) return {};
    p = t.Output<double>(0);
    if (std::string(kind) == "sgd") {
      if (momentum) m = t.Output<double>(1);
    } else {
      m = t.Output<double>(1);
      v = t.Output<double>(2);
    }
  }
  return p;
}

// Float attributes are f32, so 0.9f etc. differ from torch's doubles by ~1e-8.
constexpr double kOptTol = 1e-6;

TEST(SGDUpdateKernel, MomentumAndWeightDecayMatchTorch) {
  ExpectClose(RunSteps("sgd", {{"momentum", 0.9f}, {"weight_decay", 0.01f}}, 0, 0.1, true), kSgdMomentum, 6, kOptTol,
              "p");
}

TEST(SGDUpdateKernel, NesterovMatchesTorch) {
  ExpectClose(RunSteps("sgd", {{"momentum", 0.9f}}, 1, 0.1, true), kSgdNesterov, 6, kOptTol, "p");
}

TEST(SGDUpdateKernel, PlainMatchesTorch) { ExpectClose(RunSteps("sgd", {}, 0, 0.05, false), kSgdPlain, 6, 1e-12, "p"); }

TEST(AdamWUpdateKernel, MatchesTorch) {
  ExpectClose(RunSteps("adamw", {{"weight_decay", 0.01f}}, 0, 0.01, false), kAdamW, 6, kOptTol, "p");
}

TEST(AdamWUpdateKernel, OtherBetasNoDecayMatchTorch) {
  ExpectClose(RunSteps("adamw", {{"beta1", 0.8f}, {"beta2", 0.99f}, {"epsilon", 1e-6f}, {"weight_decay", 0.f}}, 0, 0.1,
                       false),
              kAdamWNoDecay, 6, kOptTol, "p");
}

TEST(AdamWUpdateKernel, ClosedFormFirstStepF32) {
  // Step 1: m = (1-b1) g, v = (1-b2) g^2, update = lr * g / (|g| + eps) (bias-corrected), decay first.
  OpTest t("AdamWUpdate", "tessera");
  std::vector<float> p{1.f, -2.f, 0.5f}, g{0.1f, -0.3f, 2.f};
  t.AddInput<float>({3}, p).AddInput<float>({3}, g).AddInput<float>({3}, {0, 0, 0}).AddInput<float>({3}, {0, 0, 0});
  t.AddInput<float>({}, {0.1f}).AddInput<float>({}, {1.f});
  t.SetAttrFloat("weight_decay", 0.5f);
  t.AddOutput(TSR_DTYPE_F32, {3}).AddOutput(TSR_DTYPE_F32, {3}).AddOutput(TSR_DTYPE_F32, {3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto po = t.Output<float>(0), mo = t.Output<float>(1), vo = t.Output<float>(2);
  for (int i = 0; i < 3; ++i) {
    double want = p[i] * (1 - 0.1 * 0.5) - 0.1 * g[i] / (std::fabs(g[i]) + 1e-8);
    EXPECT_NEAR(po[i], want, 1e-5);
    EXPECT_NEAR(mo[i], 0.1 * g[i], 1e-6);
    EXPECT_NEAR(vo[i], 0.001 * g[i] * g[i], 1e-7);
  }
}

TEST(OptimizerKernels, UpdateInPlaceGivesTheSameResult) {
  // param_out and momentum_out share the input buffers (the state-buffer contract).
  OpTest t("SGDUpdate", "tessera");
  std::vector<float> p{1, 2, 3, 4}, g{0.5f, -1, 2, 0.25f}, m{0.1f, 0.2f, -0.3f, 0};
  t.SetAttrFloat("momentum", 0.9f).SetAttrInt("nesterov", 1).SetAttrFloat("weight_decay", 0.1f);
  t.AddInput<float>({4}, p).AddInput<float>({4}, g).AddInput<float>({}, {0.5f}).AddInput<float>({4}, m);
  t.AddOutput(TSR_DTYPE_F32, {4}).AddOutput(TSR_DTYPE_F32, {4});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto want_p = t.Output<float>(0), want_m = t.Output<float>(1);
  std::vector<float> pp = p, mm = m, gg = g;
  float lr = 0.5f;
  const void* in[4] = {pp.data(), gg.data(), &lr, mm.data()};
  void* out[2] = {pp.data(), mm.data()};
  ASSERT_TRUE(t.kernel()->Run(in, out).ok());
  for (int i = 0; i < 4; ++i) {
    EXPECT_FLOAT_EQ(pp[i], want_p[i]);
    EXPECT_FLOAT_EQ(mm[i], want_m[i]);
    // closed form: d = g + wd p; buf = 0.9 m + d; p -= lr (d + 0.9 buf)
    double d = g[i] + 0.1 * p[i], buf = 0.9 * m[i] + d;
    EXPECT_NEAR(want_p[i], p[i] - 0.5 * (d + 0.9 * buf), 1e-5);
  }
}

TEST(OptimizerKernels, BadConfigurationsAreRejected) {
  {
    OpTest t("SGDUpdate", "tessera");  // momentum without a buffer
    t.SetAttrFloat("momentum", 0.9f);
    t.AddInput<float>({2}, {1, 2}).AddInput<float>({2}, {1, 2}).AddInput<float>({}, {0.1f}).AddOutput(TSR_DTYPE_F32, {2});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("momentum_buf"), std::string::npos) << e.message;
  }
  {
    OpTest t("SGDUpdate", "tessera");  // grad dtype differs
    t.AddInput<float>({2}, {1, 2}).AddInput<double>({2}, {1, 2}).AddInput<float>({}, {0.1f}).AddOutput(TSR_DTYPE_F32, {2});
    EXPECT_EQ(t.Run().code, TSR_ERR_INVALID_ARGUMENT);
  }
  {
    OpTest t("AdamWUpdate", "tessera");  // step 0 is not a valid 1-based step
    t.AddInput<float>({1}, {1}).AddInput<float>({1}, {1}).AddInput<float>({1}, {0}).AddInput<float>({1}, {0});
    t.AddInput<float>({}, {0.1f}).AddInput<int64_t>({}, {0});
    t.AddOutput(TSR_DTYPE_F32, {1}).AddOutput(TSR_DTYPE_F32, {1}).AddOutput(TSR_DTYPE_F32, {1});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("step"), std::string::npos) << e.message;
  }
}

// ---- GlobalNormClip ------------------------------------------------------------------------------

TEST(GlobalNormClipKernel, MatchesTorchClipGradNorm) {
  OpTest t("GlobalNormClip", "tessera");
  t.AddInput<double>({4}, Seq(4, 0.6, 0.2, 3.0)).AddInput<double>({3}, Seq(3, 0.4, 0.9, 3.0));
  t.SetAttrFloat("max_norm", 1.5f);
  t.AddOutput(TSR_DTYPE_F64, {4}).AddOutput(TSR_DTYPE_F64, {3}).AddOutput(TSR_DTYPE_F64, {});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  ExpectClose(t.Output<double>(0), kClipG1, 4, 1e-9, "g1");
  ExpectClose(t.Output<double>(1), kClipG2, 3, 1e-9, "g2");
  ExpectClose(t.Output<double>(2), kClipNorm, 1, 1e-12, "norm");
}

TEST(GlobalNormClipKernel, BelowTheLimitIsUnchangedAndMissingMaxNormFails) {
  OpTest t("GlobalNormClip", "tessera");
  t.AddInput<float>({2}, {0.3f, 0.4f}).SetAttrFloat("max_norm", 1.f).AddOutput(TSR_DTYPE_F32, {2}).AddOutput(TSR_DTYPE_F32, {});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_FLOAT_EQ(t.Output<float>(0)[0], 0.3f);
  EXPECT_FLOAT_EQ(t.Output<float>(1)[0], 0.5f);
  OpTest bad("GlobalNormClip", "tessera");
  bad.AddInput<float>({2}, {0.3f, 0.4f}).AddOutput(TSR_DTYPE_F32, {2}).AddOutput(TSR_DTYPE_F32, {});
  EXPECT_EQ(bad.Run().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- gradient ops: direct references --------------------------------------------------------------

TEST(GatherGradKernel, ScatterAddsRepeatsAndRejectsBadIndices) {
  OpTest t("GatherGrad", "tessera");
  t.AddInput<float>({3, 2}, {1, 2, 3, 4, 5, 6}).AddInput<int64_t>({3}, {2, 0, -1});
  t.SetAttrInt("axis", 0).SetAttrInts("data_shape", {3, 2}).AddOutput(TSR_DTYPE_F32, {3, 2});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<float>(0), (std::vector<float>{3, 4, 0, 0, 6, 8}));
  OpTest bad("GatherGrad", "tessera");
  bad.AddInput<float>({1, 2}, {1, 2}).AddInput<int64_t>({1}, {3});
  bad.SetAttrInt("axis", 0).SetAttrInts("data_shape", {3, 2}).AddOutput(TSR_DTYPE_F32, {3, 2});
  EXPECT_EQ(bad.Run().code, TSR_ERR_OUT_OF_RANGE);
}

TEST(ConvGradKernels, MatchNaiveReference1x1AndRejectWrongDy) {
  // 1x1 conv, no padding: dX[n,c,s] = sum_m dY[n,m,s] W[m,c]; dW[m,c] = sum_{n,s} dY[n,m,s] X[n,c,s].
  std::vector<float> x{1, 2, 3, 4, 5, 6, 7, 8}, w{1, -1, 2, 0.5f}, dy{0.1f, 0.2f, 0.3f, 0.4f, -1, 1, 2, -2};
  OpTest gi("ConvGradInput", "tessera");
  gi.AddInput<float>({1, 2, 2, 2}, dy).AddInput<float>({2, 2, 1, 1}, w).SetAttrInts("input_shape", {1, 2, 2, 2});
  gi.AddOutput(TSR_DTYPE_F32, {1, 2, 2, 2});
  ASSERT_TRUE(gi.Run().ok()) << gi.last_error();
  auto dx = gi.Output<float>(0);
  for (int c = 0; c < 2; ++c)
    for (int s = 0; s < 4; ++s) EXPECT_NEAR(dx[c * 4 + s], dy[s] * w[0 * 2 + c] + dy[4 + s] * w[1 * 2 + c], 1e-6);
  OpTest gw("ConvGradWeight", "tessera");
  gw.AddInput<float>({1, 2, 2, 2}, dy).AddInput<float>({1, 2, 2, 2}, x).SetAttrInts("weight_shape", {2, 2, 1, 1});
  gw.AddOutput(TSR_DTYPE_F32, {2, 2, 1, 1});
  ASSERT_TRUE(gw.Run().ok()) << gw.last_error();
  auto dw = gw.Output<float>(0);
  for (int m = 0; m < 2; ++m)
    for (int c = 0; c < 2; ++c) {
      double s = 0;
      for (int k = 0; k < 4; ++k) s += dy[m * 4 + k] * x[c * 4 + k];
      EXPECT_NEAR(dw[m * 2 + c], s, 1e-5);
    }
  OpTest bad("ConvGradInput", "tessera");
  bad.AddInput<float>({1, 2, 3, 3}, std::vector<float>(18, 1.f)).AddInput<float>({2, 2, 1, 1}, w);
  bad.SetAttrInts("input_shape", {1, 2, 2, 2}).AddOutput(TSR_DTYPE_F32, {1, 2, 2, 2});
  Err e = bad.Run();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("forward Conv"), std::string::npos) << e.message;
}

// The f32 path (oneDNN backward primitives) against the direct loops
// (tessera_force_loops=1) on a strided, padded, dilated, grouped geometry.
TEST(ConvGradKernels, OneDnnMatchesTheLoops) {
  const std::vector<int64_t> xd{2, 4, 7, 6}, wd{6, 2, 3, 2}, yd{2, 6, 4, 5};
  auto fill = [](size_t n, double a) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(std::sin(a * static_cast<double>(i) + 0.3));
    return v;
  };
  auto numel = [](const std::vector<int64_t>& d) { size_t n = 1; for (auto x : d) n *= static_cast<size_t>(x); return n; };
  std::vector<float> x = fill(numel(xd), 0.37), w = fill(numel(wd), 0.71), dy = fill(numel(yd), 0.13);
  for (int weight = 0; weight < 2; ++weight) {
    std::vector<float> res[2];
    for (int loops = 0; loops < 2; ++loops) {
      OpTest t(weight ? "ConvGradWeight" : "ConvGradInput", "tessera");
      t.AddInput<float>(yd, dy);
      if (weight) t.AddInput<float>(xd, x).SetAttrInts("weight_shape", wd);
      else t.AddInput<float>(wd, w).SetAttrInts("input_shape", xd);
      t.SetAttrInts("strides", {2, 1}).SetAttrInts("pads", {1, 1, 2, 0}).SetAttrInts("dilations", {1, 2});
      t.SetAttrInt("group", 2).SetAttrInt("tessera_force_loops", loops);
      t.AddOutput(TSR_DTYPE_F32, weight ? wd : xd);
      ASSERT_TRUE(t.Run().ok()) << t.last_error();
      res[loops] = t.Output<float>(0);
    }
    ASSERT_EQ(res[0].size(), res[1].size());
    double mx = 0;
    for (size_t i = 0; i < res[0].size(); ++i) {
      EXPECT_NEAR(res[0][i], res[1][i], 1e-4) << (weight ? "dW" : "dX") << "[" << i << "]";
      mx = std::max(mx, static_cast<double>(std::fabs(res[1][i])));
    }
    EXPECT_GT(mx, 0.1);
  }
}

TEST(GradOpKernels, OptionalOutputsMayBeOmitted) {
  std::vector<double> x{0.1, 0.5, -0.3, 2.0, 1.0, -1.0}, dy{1, 2, 3, -1, 0.5, 0.25}, sc{1.5, -0.5, 2};
  std::vector<double> dx[2];
  for (int full = 0; full < 2; ++full) {
    OpTest t("LayerNormGrad", "tessera");
    t.AddInput<double>({2, 3}, dy).AddInput<double>({2, 3}, x).AddInput<double>({3}, sc).AddOutput(TSR_DTYPE_F64, {2, 3});
    if (full) t.AddOutput(TSR_DTYPE_F64, {3}).AddOutput(TSR_DTYPE_F64, {3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    dx[full] = t.Output<double>(0);
    if (full) {
      auto db = t.Output<double>(2);
      EXPECT_DOUBLE_EQ(db[0], 0.0);  // dy[0][0] + dy[1][0] = 1 - 1
      EXPECT_DOUBLE_EQ(db[2], 3.25);
    }
  }
  EXPECT_EQ(dx[0], dx[1]);
  // Each row of dx sums to 0 (the mean is subtracted).
  EXPECT_NEAR(dx[0][0] + dx[0][1] + dx[0][2], 0.0, 1e-12);
  OpTest sgd("SGDUpdate", "tessera");  // a momentum buffer whose update is not kept
  sgd.SetAttrFloat("momentum", 0.5f);
  sgd.AddInput<float>({2}, {1, 2}).AddInput<float>({2}, {1, 1}).AddInput<float>({}, {0.1f}).AddInput<float>({2}, {2, 0});
  sgd.AddOutput(TSR_DTYPE_F32, {2});
  ASSERT_TRUE(sgd.Run().ok()) << sgd.last_error();
  EXPECT_FLOAT_EQ(sgd.Output<float>(0)[0], 1.f - 0.1f * (0.5f * 2 + 1));
}

TEST(SliceGradKernel, ScattersWithNegativeStepsAndNeedsConstantParameters) {
  OpTest t("SliceGrad", "tessera");
  t.AddInput<float>({2}, {10, 20}).AddInput<float>({5}, {0, 0, 0, 0, 0});
  t.AddInput<int64_t>({1}, {-1}, true).AddInput<int64_t>({1}, {0}, true).AddInput<int64_t>({1}, {0}, true);
  t.AddInput<int64_t>({1}, {-3}, true).AddOutput(TSR_DTYPE_F32, {5});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<float>(0), (std::vector<float>{0, 20, 0, 0, 10}));  // x[4], x[1]
  OpTest bad("SliceGrad", "tessera");
  bad.AddInput<float>({2}, {10, 20}).AddInput<float>({5}, {0, 0, 0, 0, 0});
  bad.AddInput<int64_t>({1}, {0}).AddInput<int64_t>({1}, {2}).AddOutput(TSR_DTYPE_F32, {5});  // not constant
  Err e = bad.Run();
  EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(e.message.find("constant"), std::string::npos) << e.message;
}

TEST(GradOpKernels, IntegerDTypesAreUnsupported) {
  OpTest t("GeluGrad", "tessera");
  t.AddInput<int32_t>({2}, {1, 2}).AddInput<int32_t>({2}, {1, 2}).AddOutput(TSR_DTYPE_I32, {2});
  Err e = t.Run();
  EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(e.message.find("GeluGrad"), std::string::npos) << e.message;
}

// ---- ReluGrad, and the BatchNorm kernels on shapes large enough to run in parallel -------------

TEST(ReluGradKernel, MatchesReferenceWithZeroAndNaNGivingZero) {
  // 100003 elements: above the parallel grain, and not a multiple of the vector width.
  const int64_t n = 100003;
  std::vector<float> x = testing::RandomFloats(n, -1, 1, 5), dy = testing::RandomFloats(n, -3, 3, 6);
  x[0] = 0.f;
  x[1] = -0.f;
  x[2] = std::nanf("");
  x[3] = 1e-30f;
  OpTest t("ReluGrad", "tessera");
  t.AddInput<float>({n}, dy).AddInput<float>({n}, x).AddOutput(TSR_DTYPE_F32, {n});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto dx = t.Output<float>(0);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(dx[i], x[i] > 0.f ? dy[i] : 0.f) << i;
  EXPECT_EQ(dx[0], 0.f);
  EXPECT_EQ(dx[2], 0.f);
  EXPECT_EQ(dx[3], dy[3]);

  OpTest t64("ReluGrad", "tessera");
  t64.AddInput<double>({2, 3}, {1, 2, 3, 4, 5, 6}).AddInput<double>({2, 3}, {-1, 0, 0.5, 2, -3, 1e-300});
  t64.AddOutput(TSR_DTYPE_F64, {2, 3});
  ASSERT_TRUE(t64.Run().ok()) << t64.last_error();
  EXPECT_EQ(t64.Output<double>(0), (std::vector<double>{0, 0, 3, 4, 0, 6}));
}

TEST(ReluGradKernel, BadInputsAreRejectedNamingTheOp) {
  {
    OpTest t("ReluGrad", "tessera");  // dtype mismatch
    t.AddInput<float>({3}, {1, 2, 3}).AddInput<double>({3}, {1, 2, 3}).AddOutput(TSR_DTYPE_F32, {3});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("ReluGrad"), std::string::npos) << e.message;
  }
  {
    OpTest t("ReluGrad", "tessera");  // shape mismatch
    t.AddInput<float>({3}, {1, 2, 3}).AddInput<float>({4}, {1, 2, 3, 4}).AddOutput(TSR_DTYPE_F32, {3});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("shapes"), std::string::npos) << e.message;
  }
  {
    OpTest t("ReluGrad", "tessera");  // integers
    t.AddInput<int32_t>({2}, {1, 2}).AddInput<int32_t>({2}, {1, 2}).AddOutput(TSR_DTYPE_I32, {2});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("ReluGrad"), std::string::npos) << e.message;
  }
  {
    OpTest t("ReluGrad", "tessera");  // one input
    t.AddInput<float>({2}, {1, 2}).AddOutput(TSR_DTYPE_F32, {2});
    EXPECT_EQ(t.Run().code, TSR_ERR_INVALID_ARGUMENT);
  }
}

// Naive BatchNormGrad in double: X [N, C, S].
struct BnGradRef {
  std::vector<double> dx, ds, db;
};
BnGradRef NaiveBnGrad(const std::vector<float>& dy, const std::vector<float>& x, const std::vector<float>& sc,
                      int64_t N, int64_t C, int64_t S, double eps) {
  BnGradRef r;
  r.dx.resize(x.size());
  r.ds.resize(C);
  r.db.resize(C);
  const double m = static_cast<double>(N * S);
  for (int64_t c = 0; c < C; ++c) {
    double mean = 0, var = 0, sdy = 0, sdyx = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) mean += x[(n * C + c) * S + s];
    mean /= m;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) var += (x[(n * C + c) * S + s] - mean) * (x[(n * C + c) * S + s] - mean);
    var /= m;
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = (n * C + c) * S + s;
        sdy += dy[i];
        sdyx += dy[i] * (x[i] - mean) * inv;
      }
    r.ds[c] = sdyx;
    r.db[c] = sdy;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = (n * C + c) * S + s;
        r.dx[i] = sc[c] * inv * (dy[i] - sdy / m - (x[i] - mean) * inv * sdyx / m);
      }
  }
  return r;
}

std::vector<float> OffsetData(int64_t n, uint32_t seed) {
  // A large per-element offset: the batch mean is far from 0 (one-pass variance must not cancel).
  std::vector<float> v = testing::RandomFloats(n, -2, 2, seed);
  for (float& f : v) f += 50.f;
  return v;
}

TEST(BatchNormGradKernel, LargeTrainingModeMatchesNaiveReferenceAndIsThreadCountIndependent) {
  const int64_t N = 48, C = 16, S = 64;  // 49152 elements: parallel over planes
  const int64_t n = N * C * S;
  auto x = OffsetData(n, 31), dy = testing::RandomFloats(n, -1, 1, 32), sc = testing::RandomFloats(C, 0.5f, 2.f, 33);
  auto run = [&](int threads, std::vector<float>* dx, std::vector<float>* ds, std::vector<float>* db) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    OpTest t("BatchNormGrad", "tessera");
    t.AddInput<float>({N, C, 8, 8}, dy).AddInput<float>({N, C, 8, 8}, x).AddInput<float>({C}, sc);
    t.SetAttrInt("training_mode", 1).SetAttrFloat("epsilon", 1e-5f);
    t.AddOutput(TSR_DTYPE_F32, {N, C, 8, 8}).AddOutput(TSR_DTYPE_F32, {C}).AddOutput(TSR_DTYPE_F32, {C});
    Err e = t.Run();
    omp_set_num_threads(saved);
    ASSERT_TRUE(e.ok()) << t.last_error();
    *dx = t.Output<float>(0);
    *ds = t.Output<float>(1);
    *db = t.Output<float>(2);
  };
  std::vector<float> dx1, ds1, db1, dx2, ds2, db2;
  run(1, &dx1, &ds1, &db1);
  run(2, &dx2, &ds2, &db2);
  EXPECT_EQ(dx1, dx2);
  EXPECT_EQ(ds1, ds2);
  EXPECT_EQ(db1, db2);
  BnGradRef ref = NaiveBnGrad(dy, x, sc, N, C, S, 1e-5);
  double max_dx = 0;
  for (double v : ref.dx) max_dx = std::max(max_dx, std::fabs(v));
  for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(dx2[i], ref.dx[i], 1e-4 * max_dx + 1e-6) << i;
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_NEAR(ds2[c], ref.ds[c], 1e-4 * (1 + std::fabs(ref.ds[c]))) << c;
    EXPECT_NEAR(db2[c], ref.db[c], 1e-4 * (1 + std::fabs(ref.db[c]))) << c;
  }
}

TEST(BatchNormGradKernel, InferenceModeF64MatchesClosedForm) {
  const int64_t N = 3, C = 2, S = 5;
  std::vector<double> x(N * C * S), dy(N * C * S);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = std::sin(0.7 * static_cast<double>(i)) * 3;
    dy[i] = std::cos(0.3 * static_cast<double>(i));
  }
  std::vector<double> sc{1.5, -0.5}, rm{0.2, -1}, rv{2, 0.5};
  OpTest t("BatchNormGrad", "tessera");
  t.AddInput<double>({N, C, S}, dy).AddInput<double>({N, C, S}, x).AddInput<double>({C}, sc);
  t.AddInput<double>({C}, rm).AddInput<double>({C}, rv).SetAttrFloat("epsilon", 1e-3f);
  t.AddOutput(TSR_DTYPE_F64, {N, C, S}).AddOutput(TSR_DTYPE_F64, {C}).AddOutput(TSR_DTYPE_F64, {C});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto dx = t.Output<double>(0), ds = t.Output<double>(1), db = t.Output<double>(2);
  const double eps = static_cast<double>(1e-3f);
  for (int64_t c = 0; c < C; ++c) {
    const double inv = 1.0 / std::sqrt(rv[c] + eps);
    double sdy = 0, sdyx = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = (n * C + c) * S + s;
        EXPECT_NEAR(dx[i], sc[c] * inv * dy[i], 1e-12) << i;
        sdy += dy[i];
        sdyx += dy[i] * (x[i] - rm[c]) * inv;
      }
    EXPECT_NEAR(ds[c], sdyx, 1e-12);
    EXPECT_NEAR(db[c], sdy, 1e-12);
  }
}

TEST(BatchNormTrainingKernel, LargeOffsetBatchMatchesNaiveReferenceAndIsThreadCountIndependent) {
  const int64_t N = 40, C = 12, S = 81;  // 38880 elements, S not a multiple of the vector width
  const int64_t n = N * C * S;
  auto x = OffsetData(n, 41), sc = testing::RandomFloats(C, 0.5f, 2.f, 42), b = testing::RandomFloats(C, -1, 1, 43);
  std::vector<float> im(C, 0.5f), iv(C, 2.f);
  auto run = [&](int threads, std::vector<float>* y, std::vector<float>* rm, std::vector<float>* rv) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    OpTest t("BatchNormalization", "", 15);
    t.AddInput<float>({N, C, 9, 9}, x).AddInput<float>({C}, sc).AddInput<float>({C}, b).AddInput<float>({C}, im);
    t.AddInput<float>({C}, iv).SetAttrInt("training_mode", 1).SetAttrFloat("momentum", 0.9f);
    t.AddOutput(TSR_DTYPE_F32, {N, C, 9, 9}).AddOutput(TSR_DTYPE_F32, {C}).AddOutput(TSR_DTYPE_F32, {C});
    Err e = t.Run();
    omp_set_num_threads(saved);
    ASSERT_TRUE(e.ok()) << t.last_error();
    *y = t.Output<float>(0);
    *rm = t.Output<float>(1);
    *rv = t.Output<float>(2);
  };
  std::vector<float> y1, rm1, rv1, y2, rm2, rv2;
  run(1, &y1, &rm1, &rv1);
  run(2, &y2, &rm2, &rv2);
  EXPECT_EQ(y1, y2);
  EXPECT_EQ(rm1, rm2);
  EXPECT_EQ(rv1, rv2);
  for (int64_t c = 0; c < C; ++c) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t s = 0; s < S; ++s) m += x[(i * C + c) * S + s];
    m /= static_cast<double>(N * S);
    for (int64_t i = 0; i < N; ++i)
      for (int64_t s = 0; s < S; ++s) v += (x[(i * C + c) * S + s] - m) * (x[(i * C + c) * S + s] - m);
    v /= static_cast<double>(N * S);
    EXPECT_NEAR(rm2[c], 0.5 * 0.9 + m * 0.1, 1e-4) << c;
    EXPECT_NEAR(rv2[c], 2.0 * 0.9 + v * 0.1, 1e-5) << c;
    const double a = sc[c] / std::sqrt(v + static_cast<double>(1e-5f));
    for (int64_t i = 0; i < N; ++i)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t p = (i * C + c) * S + s;
        ASSERT_NEAR(y2[p], (x[p] - m) * a + b[c], 2e-4) << p;
      }
  }
}

}  // namespace
}  // namespace tessera::cpu
