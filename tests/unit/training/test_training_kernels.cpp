// CPU kernels of the training ops against closed-form references and PyTorch
// 1.13 results (torch_refs.inc, from gen_torch_refs.py), plus bad inputs.
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

}  // namespace
}  // namespace tessera::cpu
