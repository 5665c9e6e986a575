// MatMul / tessera.FusedMatMul with a single [K, N] weight (B of rank 2, or
// batch dims all 1) and A of rank >= 3 run as one 2-D GEMM over A's rows
// (kernels_dnnl.cpp CreateMatMulWithPostOps): checked against a naive
// reference for the BERT/GPT shapes, bias/activation/residual post-ops, bf16,
// non-constant B, 4-D A, and the batched-B path that must stay unfolded.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using testing::AllClose;
using testing::OpTest;
using testing::RandomFloats;
using Dims = std::vector<int64_t>;

uint16_t Bf16Bits(float f) {  // round to nearest even (finite inputs)
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float Bf16Value(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

std::vector<uint16_t> ToBf16(const std::vector<float>& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = Bf16Bits(v[i]);
  return r;
}

std::vector<float> FromBf16(const std::vector<uint16_t>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = Bf16Value(v[i]);
  return r;
}

float Gelu(float x) { return 0.5f * x * (1.f + std::erf(x / std::sqrt(2.f))); }

// Y[rows, N] = A[rows, K] B[K, N] (+ bias[N]) (+ Z[rows, N]), then `act`
// ("" or "Gelu"); accumulated in double.
std::vector<float> RefRows(const std::vector<float>& a, const std::vector<float>& b, int64_t rows, int64_t K,
                           int64_t N, const std::vector<float>* bias = nullptr, const std::vector<float>* z = nullptr,
                           const std::string& act = "") {
  std::vector<float> y(static_cast<size_t>(rows * N));
  std::vector<double> acc(static_cast<size_t>(N));
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t n = 0; n < N; ++n) acc[static_cast<size_t>(n)] = bias ? (*bias)[static_cast<size_t>(n)] : 0.0;
    for (int64_t k = 0; k < K; ++k) {
      const double av = a[static_cast<size_t>(i * K + k)];
      const float* brow = b.data() + k * N;
      for (int64_t n = 0; n < N; ++n) acc[static_cast<size_t>(n)] += av * brow[n];
    }
    for (int64_t n = 0; n < N; ++n) {
      float v = static_cast<float>(acc[static_cast<size_t>(n)]);
      if (z) v += (*z)[static_cast<size_t>(i * N + n)];
      y[static_cast<size_t>(i * N + n)] = act == "Gelu" ? Gelu(v) : v;
    }
  }
  return y;
}

// BERT's QKV in-projection as exported: A [S, B, D] = [128, 1, 768] with a
// constant [768, 2304] weight (128 matrix-vector products unless folded).
TEST(MatMulFold, BertQkvShapeConstWeight) {
  const int64_t S = 128, D = 768, N = 2304;
  auto a = RandomFloats(S * D, -1.f, 1.f, 101);
  auto b = RandomFloats(D * N, -0.05f, 0.05f, 102);
  OpTest t("MatMul");
  t.AddInput<float>({S, 1, D}, a);
  t.AddInput<float>({D, N}, b, /*is_const=*/true);
  t.AddOutput(TSR_DTYPE_F32, {S, 1, N});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), RefRows(a, b, S, D, N), 1e-4f, 1e-4f));
  // Reentrant: the pre-packed weight is reused by a second run on new data.
  auto a2 = RandomFloats(S * D, -1.f, 1.f, 103);
  std::memcpy(t.InputData<float>(0), a2.data(), a2.size() * sizeof(float));
  ASSERT_TRUE(t.RunAgain().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), RefRows(a2, b, S, D, N), 1e-4f, 1e-4f));
}

// GPT/BERT FFN up-projection: [1, 128, 768] x [768, 3072] + bias, Gelu.
TEST(MatMulFold, FusedBiasGeluFfnShape) {
  const int64_t S = 128, D = 768, N = 3072;
  auto a = RandomFloats(S * D, -1.f, 1.f, 111);
  auto b = RandomFloats(D * N, -0.05f, 0.05f, 112);
  auto bias = RandomFloats(N, -0.5f, 0.5f, 113);
  OpTest t("FusedMatMul", "tessera");
  t.AddInput<float>({1, S, D}, a);
  t.AddInput<float>({D, N}, b, true);
  t.AddInput<float>({N}, bias, true);
  t.AddOutput(TSR_DTYPE_F32, {1, S, N});
  t.SetAttrString("activation", "Gelu");
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), RefRows(a, b, S, D, N, &bias, nullptr, "Gelu"), 1e-4f, 1e-4f));
}

// Residual (Y's full shape) + bias over a folded [2, 6, K] A, constant and
// non-constant weight, with and without an activation.
TEST(MatMulFold, ResidualBiasActivation) {
  const int64_t Bt = 2, M = 6, K = 40, N = 24;
  auto a = RandomFloats(Bt * M * K, -1.f, 1.f, 121);
  auto b = RandomFloats(K * N, -1.f, 1.f, 122);
  auto bias = RandomFloats(N, -1.f, 1.f, 123);
  auto z = RandomFloats(Bt * M * N, -1.f, 1.f, 124);
  for (bool const_b : {true, false})
    for (bool const_z : {false, true})
      for (const char* act : {"", "Gelu"}) {
        SCOPED_TRACE(std::string(act) + (const_b ? " constB" : " varB") + (const_z ? " constZ" : " varZ"));
        OpTest t("FusedMatMul", "tessera");
        t.AddInput<float>({Bt, M, K}, a);
        t.AddInput<float>({K, N}, b, const_b);
        t.AddInput<float>({N}, bias, true);
        t.AddInput<float>({Bt, M, N}, z, const_z);
        t.AddOutput(TSR_DTYPE_F32, {Bt, M, N});
        t.SetAttrString("activation", act);
        t.SetAttrInt("has_residual", 1);
        ASSERT_TRUE(t.Run().ok()) << t.last_error();
        EXPECT_TRUE(AllClose(t.Output<float>(0), RefRows(a, b, Bt * M, K, N, &bias, &z, act), 1e-4f, 1e-4f));
      }
}

// The precision pass makes A, B and Y bf16: same fold; reference from the
// bf16-rounded inputs, compared at bf16 resolution.
TEST(MatMulFold, Bf16ConstWeightBiasResidual) {
  const int64_t S = 64, D = 96, N = 80;
  auto af = RandomFloats(S * D, -1.f, 1.f, 131);
  auto bf = RandomFloats(D * N, -0.2f, 0.2f, 132);
  auto bias = RandomFloats(N, -0.5f, 0.5f, 133);
  auto zf = RandomFloats(S * N, -1.f, 1.f, 134);
  const auto ab = ToBf16(af), bb = ToBf16(bf), zb = ToBf16(zf);
  const auto ar = FromBf16(ab), br = FromBf16(bb), zr = FromBf16(zb);
  for (bool fused : {false, true}) {
    SCOPED_TRACE(fused ? "FusedMatMul bias+residual+Gelu" : "MatMul");
    OpTest t(fused ? "FusedMatMul" : "MatMul", fused ? "tessera" : "");
    t.AddInput<uint16_t>(TSR_DTYPE_BF16, {S, 1, D}, ab);
    t.AddInput<uint16_t>(TSR_DTYPE_BF16, {D, N}, bb, true);
    if (fused) {
      t.AddInput<float>({N}, bias, true);
      t.AddInput<uint16_t>(TSR_DTYPE_BF16, {S, 1, N}, zb);
      t.SetAttrInt("has_residual", 1);
      t.SetAttrString("activation", "Gelu");
    }
    t.AddOutput(TSR_DTYPE_BF16, {S, 1, N});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> ref = fused ? RefRows(ar, br, S, D, N, &bias, &zr, "Gelu") : RefRows(ar, br, S, D, N);
    EXPECT_TRUE(AllClose(FromBf16(t.Output<uint16_t>(0)), ref, 2e-2f, 2e-2f));
  }
}

// A non-constant 2-D B (e.g. a weight computed at run time): folded too,
// plain layout, no pre-packing.
TEST(MatMulFold, NonConstantWeight) {
  const int64_t Bt = 4, M = 8, K = 16, N = 12;
  auto a = RandomFloats(Bt * M * K, -1.f, 1.f, 141);
  auto b = RandomFloats(K * N, -1.f, 1.f, 142);
  OpTest t("MatMul");
  t.AddInput<float>({Bt, M, K}, a);
  t.AddInput<float>({K, N}, b);
  t.AddOutput(TSR_DTYPE_F32, {Bt, M, N});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), RefRows(a, b, Bt * M, K, N), 1e-4f, 1e-5f));
}

// 4-D A with a 2-D weight and with a weight whose batch dims are all 1; a
// 2-D A with a [1, K, N] weight (Y gets the leading 1).
TEST(MatMulFold, FourDimAAndUnitBatchWeight) {
  const int64_t K = 20, N = 9;
  auto b = RandomFloats(K * N, -1.f, 1.f, 151);
  auto a = RandomFloats(2 * 3 * 5 * K, -1.f, 1.f, 152);
  auto bias = RandomFloats(N, -1.f, 1.f, 153);
  for (const Dims& bdims : {Dims{K, N}, Dims{1, 1, K, N}})
    for (bool const_b : {true, false}) {
      SCOPED_TRACE(std::string("B rank ") + std::to_string(bdims.size()) + (const_b ? " const" : ""));
      OpTest t("FusedMatMul", "tessera");
      t.AddInput<float>({2, 3, 5, K}, a);
      t.AddInput<float>(bdims, b, const_b);
      t.AddInput<float>({N}, bias, true);
      t.AddOutput(TSR_DTYPE_F32, {2, 3, 5, N});
      ASSERT_TRUE(t.Run().ok()) << t.last_error();
      EXPECT_TRUE(AllClose(t.Output<float>(0), RefRows(a, b, 30, K, N, &bias), 1e-4f, 1e-5f));
    }
  OpTest t("MatMul");
  std::vector<float> a2(a.begin(), a.begin() + 7 * K);
  t.AddInput<float>({7, K}, a2);
  t.AddInput<float>({1, K, N}, b, true);
  t.AddOutput(TSR_DTYPE_F32, {1, 7, N});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), RefRows(a2, b, 7, K, N), 1e-4f, 1e-5f));
}

// A batched constant B ([2, K, N]: one weight per batch) is not a single
// matrix and must keep the batched path.
TEST(MatMulFold, BatchedWeightStaysBatched) {
  const int64_t Bt = 2, M = 3, K = 5, N = 4;
  auto a = RandomFloats(Bt * M * K, -1.f, 1.f, 161);
  auto b = RandomFloats(Bt * K * N, -1.f, 1.f, 162);
  OpTest t("MatMul");
  t.AddInput<float>({Bt, M, K}, a);
  t.AddInput<float>({Bt, K, N}, b, true);
  t.AddOutput(TSR_DTYPE_F32, {Bt, M, N});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> ref;
  for (int64_t i = 0; i < Bt; ++i) {
    std::vector<float> ai(a.begin() + i * M * K, a.begin() + (i + 1) * M * K);
    std::vector<float> bi(b.begin() + i * K * N, b.begin() + (i + 1) * K * N);
    auto yi = RefRows(ai, bi, M, K, N);
    ref.insert(ref.end(), yi.begin(), yi.end());
  }
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-4f, 1e-5f));
}

// Bad shapes are still rejected with errors naming the node and the shapes.
TEST(MatMulFold, BadShapesAreClearErrors) {
  const int64_t K = 8, N = 6;
  {  // inner dims differ
    OpTest t("MatMul");
    t.SetName("qkv");
    t.AddInput<float>({4, 1, K}, RandomFloats(4 * K));
    t.AddInput<float>({K + 1, N}, RandomFloats((K + 1) * N), true);
    t.AddOutput(TSR_DTYPE_F32, {4, 1, N});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(t.last_error().find("qkv"), std::string::npos) << t.last_error();
    EXPECT_NE(t.last_error().find("inner dimensions"), std::string::npos) << t.last_error();
  }
  {  // output shape of the folded view, not Y's real shape
    OpTest t("MatMul");
    t.AddInput<float>({4, 1, K}, RandomFloats(4 * K));
    t.AddInput<float>({K, N}, RandomFloats(K * N), true);
    t.AddOutput(TSR_DTYPE_F32, {4, N});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(t.last_error().find("output shape"), std::string::npos) << t.last_error();
  }
  {  // bias not over N
    OpTest t("FusedMatMul", "tessera");
    t.AddInput<float>({2, 3, K}, RandomFloats(2 * 3 * K));
    t.AddInput<float>({K, N}, RandomFloats(K * N), true);
    t.AddInput<float>({N + 1}, RandomFloats(N + 1), true);
    t.AddOutput(TSR_DTYPE_F32, {2, 3, N});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(t.last_error().find("bias"), std::string::npos) << t.last_error();
  }
  {  // residual of the folded shape instead of Y's
    OpTest t("FusedMatMul", "tessera");
    t.AddInput<float>({2, 3, K}, RandomFloats(2 * 3 * K));
    t.AddInput<float>({K, N}, RandomFloats(K * N), true);
    t.AddMissingInput();
    t.AddInput<float>({6, N}, RandomFloats(6 * N));
    t.SetAttrInt("has_residual", 1);
    t.AddOutput(TSR_DTYPE_F32, {2, 3, N});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(t.last_error().find("residual"), std::string::npos) << t.last_error();
  }
}

}  // namespace
}  // namespace tessera::cpu
