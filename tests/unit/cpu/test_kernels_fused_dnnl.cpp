// tessera.FusedConv / FusedMatMul / FusedGemm against naive references:
// conv/matmul + bias + residual, then the activation.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using testing::AllClose;
using testing::OpTest;
using testing::RandomFloats;
using Dims = std::vector<int64_t>;

float RefAct(const std::string& act, float x, float alpha, float beta) {
  if (act.empty()) return x;
  if (act == "Relu") return x > 0 ? x : 0.f;
  if (act == "LeakyRelu") return x > 0 ? x : alpha * x;
  if (act == "Clip") return std::min(std::max(x, alpha), beta);
  if (act == "Sigmoid") return 1.f / (1.f + std::exp(-x));
  if (act == "Tanh") return std::tanh(x);
  if (act == "Gelu") return 0.5f * x * (1.f + std::erf(x / std::sqrt(2.f)));
  if (act == "GeluTanh")
    return 0.5f * x * (1.f + std::tanh(std::sqrt(2.f / static_cast<float>(M_PI)) * (x + 0.044715f * x * x * x)));
  if (act == "Silu") return x / (1.f + std::exp(-x));
  if (act == "Swish") return x / (1.f + std::exp(-alpha * x));
  if (act == "HardSwish") return x * std::max(0.f, std::min(1.f, x / 6.f + 0.5f));
  ADD_FAILURE() << "no reference for " << act;
  return 0.f;
}

// Naive 2-D convolution, NCHW, symmetric explicit pads.
std::vector<float> RefConv2d(const std::vector<float>& x, const Dims& xd, const std::vector<float>& w, const Dims& wd,
                             const std::vector<float>* b, int64_t stride, int64_t pad, int64_t group, const Dims& yd) {
  const int64_t N = xd[0], C = xd[1], H = xd[2], W = xd[3];
  const int64_t M = wd[0], CG = wd[1], KH = wd[2], KW = wd[3];
  const int64_t OH = yd[2], OW = yd[3], MG = M / group;
  std::vector<float> y(static_cast<size_t>(N * M * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m) {
      const int64_t g = m / MG;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b ? (*b)[static_cast<size_t>(m)] : 0.0;
          for (int64_t c = 0; c < CG; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                int64_t ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += static_cast<double>(x[static_cast<size_t>(((n * C + g * CG + c) * H + ih) * W + iw)]) *
                       w[static_cast<size_t>(((m * CG + c) * KH + kh) * KW + kw)];
              }
          y[static_cast<size_t>(((n * M + m) * OH + oh) * OW + ow)] = static_cast<float>(acc);
        }
    }
  return y;
}

struct ConvCase {
  Dims xd, wd;
  int64_t stride = 1, pad = 0, group = 1;
  bool bias = true, residual = false;
  std::string act;
  float alpha = 0.f, beta = 0.f;
  bool const_w = true;
};

Dims ConvOut(const ConvCase& c) {
  int64_t oh = (c.xd[2] + 2 * c.pad - c.wd[2]) / c.stride + 1;
  int64_t ow = (c.xd[3] + 2 * c.pad - c.wd[3]) / c.stride + 1;
  return {c.xd[0], c.wd[0], oh, ow};
}

void SetConvAttrs(OpTest& t, const ConvCase& c) {
  t.SetAttrInts("strides", {c.stride, c.stride});
  t.SetAttrInts("pads", {c.pad, c.pad, c.pad, c.pad});
  t.SetAttrInt("group", c.group);
  t.SetAttrString("activation", c.act);
  if (c.act == "LeakyRelu" || c.act == "Clip" || c.act == "Swish") t.SetAttrFloat("activation_alpha", c.alpha);
  if (c.act == "Clip") t.SetAttrFloat("activation_beta", c.beta);
  t.SetAttrInt("has_residual", c.residual ? 1 : 0);
}

void CheckFusedConv(const ConvCase& c) {
  SCOPED_TRACE("act=" + c.act + " residual=" + std::to_string(c.residual));
  const Dims yd = ConvOut(c);
  auto x = RandomFloats(testing::NumElements(c.xd), -1.f, 1.f, 1);
  auto w = RandomFloats(testing::NumElements(c.wd), -0.5f, 0.5f, 2);
  auto b = RandomFloats(c.wd[0], -0.5f, 0.5f, 3);
  auto z = RandomFloats(testing::NumElements(yd), -1.f, 1.f, 4);
  OpTest t("FusedConv", "tessera");
  t.AddInput<float>(c.xd, x);
  t.AddInput<float>(c.wd, w, c.const_w);
  if (c.bias) t.AddInput<float>({c.wd[0]}, b, true);
  else t.AddMissingInput();
  if (c.residual) t.AddInput<float>(yd, z);
  t.AddOutput(TSR_DTYPE_F32, yd);
  SetConvAttrs(t, c);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> ref = RefConv2d(x, c.xd, w, c.wd, c.bias ? &b : nullptr, c.stride, c.pad, c.group, yd);
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = RefAct(c.act, ref[i] + (c.residual ? z[i] : 0.f), c.alpha, c.beta);
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-4f));
  // Reentrancy: a second run with the same inputs gives the same result.
  ASSERT_TRUE(t.RunAgain().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-4f));
}

TEST(FusedConvKernel, EveryActivationWithBias3x3) {
  for (const char* act : {"", "Relu", "Sigmoid", "Tanh", "Gelu", "GeluTanh", "Silu", "HardSwish"}) {
    ConvCase c;
    c.xd = {1, 4, 9, 9};
    c.wd = {8, 4, 3, 3};
    c.pad = 1;
    c.act = act;
    CheckFusedConv(c);
  }
}

TEST(FusedConvKernel, ParameterisedActivations) {
  ConvCase c;
  c.xd = {2, 3, 7, 7};
  c.wd = {5, 3, 3, 3};
  c.act = "LeakyRelu";
  c.alpha = 0.2f;
  CheckFusedConv(c);
  c.act = "Clip";  // Relu6
  c.alpha = 0.f;
  c.beta = 6.f;
  CheckFusedConv(c);
  c.act = "Clip";
  c.alpha = -0.25f;
  c.beta = 0.3f;
  CheckFusedConv(c);
  c.act = "Swish";
  c.alpha = 1.7f;
  CheckFusedConv(c);
}

TEST(FusedConvKernel, ResidualThenReluBlockedLayout) {
  ConvCase c;  // 3x3: oneDNN picks a blocked layout, Z is reordered into it
  c.xd = {1, 16, 8, 8};
  c.wd = {16, 16, 3, 3};
  c.pad = 1;
  c.residual = true;
  c.act = "Relu";
  CheckFusedConv(c);
  c.act = "";  // residual only
  CheckFusedConv(c);
}

TEST(FusedConvKernel, ResidualPlainLayoutPointwise) {
  // 1x1 over 16x16 outputs: plain NCHW (GEMM convolution); residual + relu/clip
  // run as an epilogue after the primitive, other activations fall back to
  // oneDNN's layout with a sum post-op.
  ConvCase c;
  c.xd = {1, 8, 16, 16};
  c.wd = {12, 8, 1, 1};
  c.residual = true;
  c.bias = false;
  c.act = "Relu";
  CheckFusedConv(c);
  c.bias = true;
  c.act = "";
  CheckFusedConv(c);
  c.act = "LeakyRelu";
  c.alpha = 0.1f;
  CheckFusedConv(c);
  c.act = "Clip";
  c.alpha = -0.2f;
  c.beta = 0.4f;
  CheckFusedConv(c);
  c.act = "Sigmoid";
  CheckFusedConv(c);
  c.act = "Relu";  // no residual: relu as a GEMM-convolution post-op
  c.residual = false;
  CheckFusedConv(c);
}

TEST(FusedConvKernel, StridedGroupedNonConstantWeights) {
  ConvCase c;
  c.xd = {1, 6, 10, 10};
  c.wd = {6, 2, 3, 3};
  c.stride = 2;
  c.pad = 1;
  c.group = 3;
  c.const_w = false;
  c.residual = true;
  c.act = "Tanh";
  CheckFusedConv(c);
}

// ---- errors ---------------------------------------------------------------------

void AddSmallConv(OpTest& t, bool with_z, const Dims& zd = {1, 2, 3, 3}) {
  t.AddInput<float>({1, 1, 3, 3}, std::vector<float>(9, 1.f));
  t.AddInput<float>({2, 1, 1, 1}, {1.f, 2.f}, true);
  t.AddMissingInput();
  if (with_z) t.AddInput<float>(zd, std::vector<float>(static_cast<size_t>(testing::NumElements(zd)), 1.f));
  t.AddOutput(TSR_DTYPE_F32, {1, 2, 3, 3});
}

TEST(FusedConvKernel, UnknownActivationIsAnError) {
  OpTest t("FusedConv", "tessera");
  t.SetName("fc");
  AddSmallConv(t, false);
  t.SetAttrString("activation", "Softplus");
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(t.last_error().find("Softplus"), std::string::npos) << t.last_error();
  EXPECT_NE(t.last_error().find("'fc'"), std::string::npos) << t.last_error();
}

TEST(FusedConvKernel, ResidualFlagMustMatchInputs) {
  OpTest t("FusedConv", "tessera");
  AddSmallConv(t, false);
  t.SetAttrInt("has_residual", 1);
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("has_residual"), std::string::npos) << t.last_error();

  OpTest u("FusedConv", "tessera");
  AddSmallConv(u, true);
  EXPECT_EQ(u.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(u.last_error().find("has_residual=0"), std::string::npos) << u.last_error();
}

TEST(FusedConvKernel, ResidualOfWrongShapeIsAnError) {
  OpTest t("FusedConv", "tessera");
  AddSmallConv(t, true, {1, 2, 1, 3});
  t.SetAttrInt("has_residual", 1);
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("residual"), std::string::npos) << t.last_error();
}

TEST(FusedConvKernel, ClipWithMinAboveMaxIsAnError) {
  OpTest t("FusedConv", "tessera");
  AddSmallConv(t, false);
  t.SetAttrString("activation", "Clip");
  t.SetAttrFloat("activation_alpha", 2.f);
  t.SetAttrFloat("activation_beta", 1.f);
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("min"), std::string::npos) << t.last_error();
}

TEST(FusedConvKernel, NonF32IsRejected) {
  OpTest t("FusedConv", "tessera");
  t.AddInput<double>({1, 1, 3, 3}, std::vector<double>(9, 1.0));
  t.AddInput<double>({1, 1, 1, 1}, {1.0}, true);
  t.AddOutput(TSR_DTYPE_F64, {1, 1, 3, 3});
  t.SetAttrString("activation", "Relu");
  EXPECT_EQ(t.Create().code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(t.Claim(), "");
}

// ---- FusedMatMul ------------------------------------------------------------------

// Y[b, m, n] = act(sum_k A[b, m, k] B[k, n] + bias[n] + Z[b, m, n]).
TEST(FusedMatMulKernel, BiasResidualActivation3D) {
  const int64_t Bt = 2, M = 5, K = 7, N = 6;
  auto a = RandomFloats(Bt * M * K, -1.f, 1.f, 11);
  auto b = RandomFloats(K * N, -1.f, 1.f, 12);
  auto bias = RandomFloats(N, -1.f, 1.f, 13);
  auto z = RandomFloats(Bt * M * N, -1.f, 1.f, 14);
  for (bool residual : {false, true})
    for (bool const_b : {false, true})
      for (const char* act : {"", "Gelu", "Relu"}) {
        SCOPED_TRACE(std::string(act) + (residual ? " residual" : "") + (const_b ? " constB" : ""));
        OpTest t("FusedMatMul", "tessera");
        t.AddInput<float>({Bt, M, K}, a);
        t.AddInput<float>({K, N}, b, const_b);
        t.AddInput<float>({N}, bias, true);
        if (residual) t.AddInput<float>({Bt, M, N}, z);
        t.AddOutput(TSR_DTYPE_F32, {Bt, M, N});
        t.SetAttrString("activation", act);
        t.SetAttrInt("has_residual", residual);
        ASSERT_TRUE(t.Run().ok()) << t.last_error();
        std::vector<float> ref(static_cast<size_t>(Bt * M * N));
        for (int64_t i = 0; i < Bt * M; ++i)
          for (int64_t n = 0; n < N; ++n) {
            double acc = bias[static_cast<size_t>(n)];
            for (int64_t k = 0; k < K; ++k)
              acc += static_cast<double>(a[static_cast<size_t>(i * K + k)]) * b[static_cast<size_t>(k * N + n)];
            float v = static_cast<float>(acc) + (residual ? z[static_cast<size_t>(i * N + n)] : 0.f);
            ref[static_cast<size_t>(i * N + n)] = RefAct(act, v, 0.f, 0.f);
          }
        EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-4f));
      }
}

TEST(FusedMatMulKernel, NoBiasActivationOnly) {
  auto a = RandomFloats(3 * 4, -1.f, 1.f, 21);
  auto b = RandomFloats(4 * 2, -1.f, 1.f, 22);
  OpTest t("FusedMatMul", "tessera");
  t.AddInput<float>({3, 4}, a);
  t.AddInput<float>({4, 2}, b, true);
  t.AddOutput(TSR_DTYPE_F32, {3, 2});
  t.SetAttrString("activation", "Sigmoid");
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> ref(6);
  for (int m = 0; m < 3; ++m)
    for (int n = 0; n < 2; ++n) {
      float acc = 0;
      for (int k = 0; k < 4; ++k) acc += a[static_cast<size_t>(m * 4 + k)] * b[static_cast<size_t>(k * 2 + n)];
      ref[static_cast<size_t>(m * 2 + n)] = RefAct("Sigmoid", acc, 0, 0);
    }
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-5f, 1e-6f));
}

TEST(FusedMatMulKernel, BiasOfWrongSizeIsAnError) {
  OpTest t("FusedMatMul", "tessera");
  t.AddInput<float>({3, 4}, std::vector<float>(12, 1.f));
  t.AddInput<float>({4, 2}, std::vector<float>(8, 1.f), true);
  t.AddInput<float>({3}, {1.f, 2.f, 3.f}, true);
  t.AddOutput(TSR_DTYPE_F32, {3, 2});
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("bias"), std::string::npos) << t.last_error();
}

TEST(FusedMatMulKernel, EmptyInnerDimWithActivationIsUnsupported) {
  OpTest t("FusedMatMul", "tessera");
  t.AddInput<float>({3, 0}, std::vector<float>{});
  t.AddInput<float>({0, 2}, std::vector<float>{}, true);
  t.AddOutput(TSR_DTYPE_F32, {3, 2});
  t.SetAttrString("activation", "Sigmoid");
  EXPECT_EQ(t.Create().code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(t.last_error().find("K = 0"), std::string::npos) << t.last_error();
}

// ---- FusedGemm ----------------------------------------------------------------------

TEST(FusedGemmKernel, TransBAlphaBetaCAndActivation) {
  const int64_t M = 4, K = 5, N = 3;
  auto a = RandomFloats(M * K, -1.f, 1.f, 31);
  auto bt = RandomFloats(N * K, -1.f, 1.f, 32);  // B given as [N, K], transB = 1
  auto c = RandomFloats(N, -1.f, 1.f, 33);
  for (bool const_c : {true, false})
    for (float alpha : {1.f, 0.5f}) {
      SCOPED_TRACE(std::string(const_c ? "const C" : "C input") + " alpha " + std::to_string(alpha));
      OpTest t("FusedGemm", "tessera");
      t.AddInput<float>({M, K}, a);
      t.AddInput<float>({N, K}, bt, true);
      t.AddInput<float>({N}, c, const_c);
      t.AddOutput(TSR_DTYPE_F32, {M, N});
      t.SetAttrInt("transB", 1);
      t.SetAttrFloat("alpha", alpha);
      t.SetAttrFloat("beta", 2.f);
      t.SetAttrString("activation", "LeakyRelu");
      t.SetAttrFloat("activation_alpha", 0.1f);
      ASSERT_TRUE(t.Run().ok()) << t.last_error();
      std::vector<float> ref(static_cast<size_t>(M * N));
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          float acc = 0;
          for (int64_t k = 0; k < K; ++k) acc += a[static_cast<size_t>(m * K + k)] * bt[static_cast<size_t>(n * K + k)];
          ref[static_cast<size_t>(m * N + n)] = RefAct("LeakyRelu", alpha * acc + 2.f * c[static_cast<size_t>(n)], 0.1f, 0);
        }
      EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-5f, 1e-5f));
    }
}

TEST(FusedGemmKernel, ResidualIsNotSupported) {
  OpTest t("FusedGemm", "tessera");
  t.AddInput<float>({2, 2}, std::vector<float>(4, 1.f));
  t.AddInput<float>({2, 2}, std::vector<float>(4, 1.f), true);
  t.AddOutput(TSR_DTYPE_F32, {2, 2});
  t.SetAttrInt("has_residual", 1);
  EXPECT_EQ(t.Create().code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(t.last_error().find("has_residual"), std::string::npos) << t.last_error();
}

}  // namespace
}  // namespace tessera::cpu
