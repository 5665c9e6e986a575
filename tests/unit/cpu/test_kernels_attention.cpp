// tessera.FusedAttention CPU kernel against a naive double-precision reference.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu::testing {
namespace {

struct AttnCase {
  int64_t B = 2, H = 3, Sq = 5, Sk = 7, D = 8, Dv = 6;
  bool causal = false;
  bool has_scale = false;
  float scale = 0.f;
  int mask_kind = 0;  // 0 none, 1 f32 additive, 2 bool
  std::vector<int64_t> mask_dims;
};

// softmax(Q K^T * scale + mask) V computed in double, element by element.
std::vector<float> Reference(const AttnCase& c, const std::vector<float>& q, const std::vector<float>& k,
                             const std::vector<float>& v, const std::vector<float>& fmask,
                             const std::vector<bool>& bmask) {
  const double scale = c.has_scale ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.D));
  std::vector<float> y(static_cast<size_t>(c.B * c.H * c.Sq * c.Dv));
  const std::vector<int64_t> sdims{c.B, c.H, c.Sq, c.Sk};
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < c.Sq; ++i) {
        std::vector<double> s(static_cast<size_t>(c.Sk));
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < c.Sk; ++j) {
          double acc = 0;
          for (int64_t d = 0; d < c.D; ++d)
            acc += static_cast<double>(q[((b * c.H + h) * c.Sq + i) * c.D + d]) *
                   k[((b * c.H + h) * c.Sk + j) * c.D + d];
          acc *= scale;
          if (c.mask_kind != 0) {
            int64_t mi = BroadcastIndex({b, h, i, j}, c.mask_dims);
            if (c.mask_kind == 1) acc += fmask[static_cast<size_t>(mi)];
            else if (!bmask[static_cast<size_t>(mi)]) acc = -std::numeric_limits<double>::infinity();
          }
          if (c.causal && j > i) acc = -std::numeric_limits<double>::infinity();
          s[static_cast<size_t>(j)] = acc;
          mx = std::max(mx, acc);
        }
        double sum = 0;
        for (double& e : s) {
          e = std::exp(e - mx);
          sum += e;
        }
        for (int64_t c2 = 0; c2 < c.Dv; ++c2) {
          double acc = 0;
          for (int64_t j = 0; j < c.Sk; ++j)
            acc += s[static_cast<size_t>(j)] * v[((b * c.H + h) * c.Sk + j) * c.Dv + c2];
          y[static_cast<size_t>(((b * c.H + h) * c.Sq + i) * c.Dv + c2)] = static_cast<float>(acc / sum);
        }
      }
  return y;
}

void CheckCase(const AttnCase& c) {
  OpTest t("FusedAttention", "tessera");
  auto q = RandomFloats(c.B * c.H * c.Sq * c.D, -1.f, 1.f, 1);
  auto k = RandomFloats(c.B * c.H * c.Sk * c.D, -1.f, 1.f, 2);
  auto v = RandomFloats(c.B * c.H * c.Sk * c.Dv, -1.f, 1.f, 3);
  t.AddInput<float>({c.B, c.H, c.Sq, c.D}, q);
  t.AddInput<float>({c.B, c.H, c.Sk, c.D}, k);
  t.AddInput<float>({c.B, c.H, c.Sk, c.Dv}, v);
  std::vector<float> fmask;
  std::vector<bool> bmask;
  if (c.mask_kind == 1) {
    fmask = RandomFloats(NumElements(c.mask_dims), -3.f, 1.f, 4);
    // A strongly masked key (only where the mask varies along keys: a -1e4 offset on a whole
    // row is softmax-invariant but costs f32 precision in the scores).
    if (c.mask_dims.back() != 1) fmask[0] = -1e4f;
    t.AddInput<float>(c.mask_dims, fmask);
  } else if (c.mask_kind == 2) {
    bmask.resize(static_cast<size_t>(NumElements(c.mask_dims)));
    for (size_t i = 0; i < bmask.size(); ++i) bmask[i] = (i * 7 + 3) % 5 != 0;
    // Keep at least the first key of every row so no row is fully masked.
    std::vector<int64_t> full{c.B, c.H, c.Sq, c.Sk};
    for (int64_t f = 0; f < NumElements(full); ++f) {
      auto idx = Unravel(f, full);
      if (idx[3] == 0) bmask[static_cast<size_t>(BroadcastIndex(idx, c.mask_dims))] = true;
    }
    t.AddInputBool(c.mask_dims, bmask);
  }
  if (c.causal) t.SetAttrInt("causal", 1);
  if (c.has_scale) t.SetAttrFloat("scale", c.scale);
  t.AddOutput(TSR_DTYPE_F32, {c.B, c.H, c.Sq, c.Dv});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto want = Reference(c, q, k, v, fmask, bmask);
  EXPECT_TRUE(AllClose(t.Output<float>(0), want, 1e-4f, 1e-5f));
  // A second run (kernel reuse) gives the same result.
  ASSERT_TRUE(t.RunAgain().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), want, 1e-4f, 1e-5f));
}

TEST(FusedAttentionKernel, NoMask) { CheckCase(AttnCase{}); }

TEST(FusedAttentionKernel, ExplicitScale) {
  AttnCase c;
  c.has_scale = true;
  c.scale = 0.7f;
  CheckCase(c);
}

TEST(FusedAttentionKernel, AdditiveMaskFull) {
  AttnCase c;
  c.mask_kind = 1;
  c.mask_dims = {c.B, c.H, c.Sq, c.Sk};
  CheckCase(c);
}

TEST(FusedAttentionKernel, AdditiveMaskBroadcastPadding) {
  AttnCase c;
  c.mask_kind = 1;
  c.mask_dims = {c.B, 1, 1, c.Sk};  // key padding mask
  CheckCase(c);
}

TEST(FusedAttentionKernel, AdditiveMaskRank2) {
  AttnCase c;
  c.mask_kind = 1;
  c.mask_dims = {c.Sq, c.Sk};
  CheckCase(c);
}

TEST(FusedAttentionKernel, AdditiveMaskPerQueryColumnBroadcast) {
  AttnCase c;
  c.mask_kind = 1;
  c.mask_dims = {1, c.H, c.Sq, 1};  // constant along keys: must not change the result shape
  CheckCase(c);
}

TEST(FusedAttentionKernel, BoolMask) {
  AttnCase c;
  c.mask_kind = 2;
  c.mask_dims = {c.B, 1, c.Sq, c.Sk};
  CheckCase(c);
}

TEST(FusedAttentionKernel, BoolMaskKeyPadding) {
  AttnCase c;
  c.mask_kind = 2;
  c.mask_dims = {c.B, 1, 1, c.Sk};
  CheckCase(c);
}

TEST(FusedAttentionKernel, Causal) {
  AttnCase c;
  c.causal = true;
  c.Sq = c.Sk = 9;
  CheckCase(c);
}

TEST(FusedAttentionKernel, CausalWithMaskAndLongerKeys) {
  AttnCase c;
  c.causal = true;
  c.Sq = 80;  // more than one query block (64 rows each)
  c.Sk = 85;
  c.mask_kind = 1;
  c.mask_dims = {c.B, 1, 1, c.Sk};
  CheckCase(c);
}

TEST(FusedAttentionKernel, ManyBlocksOddSizes) {
  AttnCase c;
  c.B = 1;
  c.H = 2;
  c.Sq = 150;  // three query blocks, the last one partial
  c.Sk = 33;
  c.D = 13;
  c.Dv = 5;
  CheckCase(c);
}

TEST(FusedAttentionKernel, FullyMaskedRowIsNaN) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  t.AddInput<float>({1, 1, 3, 2}, {1, 0, 0, 1, 1, 1});
  t.AddInput<float>({1, 1, 3, 1}, {1, 2, 3});
  t.AddInputBool({1, 1, 2, 3}, {false, false, false, true, true, false});
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 1});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto y = t.Output<float>(0);
  EXPECT_TRUE(std::isnan(y[0]));
  // Row 1 sees keys 0 and 1: scores (3, 4) * 1/sqrt(2).
  double e0 = std::exp(3 / std::sqrt(2.0)), e1 = std::exp(4 / std::sqrt(2.0));
  EXPECT_NEAR(y[1], (1 * e0 + 2 * e1) / (e0 + e1), 1e-5);
}

TEST(FusedAttentionKernel, ZeroHeadDimAveragesV) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<float>({1, 1, 2, 0}, {});
  t.AddInput<float>({1, 1, 3, 0}, {});
  t.AddInput<float>({1, 1, 3, 2}, {1, 2, 3, 4, 5, 9});
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
  t.SetAttrFloat("scale", 1.f);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), {3, 5, 3, 5}));
}

// ---- bad inputs ---------------------------------------------------------------

TEST(FusedAttentionKernel, RejectsNonF32) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<double>({1, 1, 2, 2}, {1, 2, 3, 4});
  t.AddInput<double>({1, 1, 2, 2}, {1, 2, 3, 4});
  t.AddInput<double>({1, 1, 2, 2}, {1, 2, 3, 4});
  t.AddOutput(TSR_DTYPE_F64, {1, 1, 2, 2});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(t.last_error().find("f32"), std::string::npos) << t.last_error();
  EXPECT_NE(t.last_error().find("node_FusedAttention"), std::string::npos) << t.last_error();
  EXPECT_NE(t.Claim(), "");
}

TEST(FusedAttentionKernel, RejectsWrongRank) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<float>({2, 2, 2}, std::vector<float>(8));
  t.AddInput<float>({2, 2, 2}, std::vector<float>(8));
  t.AddInput<float>({2, 2, 2}, std::vector<float>(8));
  t.AddOutput(TSR_DTYPE_F32, {2, 2, 2});
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("rank 4"), std::string::npos) << t.last_error();
}

TEST(FusedAttentionKernel, RejectsHeadDimMismatch) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<float>({1, 1, 2, 3}, std::vector<float>(6));
  t.AddInput<float>({1, 1, 2, 2}, std::vector<float>(4));
  t.AddInput<float>({1, 1, 2, 2}, std::vector<float>(4));
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("head dims"), std::string::npos) << t.last_error();
}

TEST(FusedAttentionKernel, RejectsSeqMismatchAndBadOutput) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<float>({1, 1, 2, 2}, std::vector<float>(4));
  t.AddInput<float>({1, 1, 3, 2}, std::vector<float>(6));
  t.AddInput<float>({1, 1, 2, 2}, std::vector<float>(4));
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("sequence lengths"), std::string::npos) << t.last_error();

  OpTest o("FusedAttention", "tessera");
  o.AddInput<float>({1, 1, 2, 2}, std::vector<float>(4));
  o.AddInput<float>({1, 1, 3, 2}, std::vector<float>(6));
  o.AddInput<float>({1, 1, 3, 4}, std::vector<float>(12));
  o.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
  EXPECT_EQ(o.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(o.last_error().find("output"), std::string::npos) << o.last_error();
}

TEST(FusedAttentionKernel, RejectsBadMask) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<float>({1, 2, 2, 2}, std::vector<float>(8));
  t.AddInput<float>({1, 2, 3, 2}, std::vector<float>(12));
  t.AddInput<float>({1, 2, 3, 2}, std::vector<float>(12));
  t.AddInput<float>({2, 3}, std::vector<float>(6), false);  // [2,3] vs scores [1,2,2,3]: ok
  t.AddOutput(TSR_DTYPE_F32, {1, 2, 2, 2});
  EXPECT_TRUE(t.Create().ok()) << t.last_error();

  OpTest m("FusedAttention", "tessera");
  m.AddInput<float>({1, 2, 2, 2}, std::vector<float>(8));
  m.AddInput<float>({1, 2, 3, 2}, std::vector<float>(12));
  m.AddInput<float>({1, 2, 3, 2}, std::vector<float>(12));
  m.AddInput<float>({3, 3}, std::vector<float>(9));  // 3 query rows vs 2
  m.AddOutput(TSR_DTYPE_F32, {1, 2, 2, 2});
  EXPECT_EQ(m.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(m.last_error().find("mask"), std::string::npos) << m.last_error();

  OpTest d("FusedAttention", "tessera");
  d.AddInput<float>({1, 2, 2, 2}, std::vector<float>(8));
  d.AddInput<float>({1, 2, 3, 2}, std::vector<float>(12));
  d.AddInput<float>({1, 2, 3, 2}, std::vector<float>(12));
  d.AddInput<int32_t>({2, 3}, std::vector<int32_t>(6));
  d.AddOutput(TSR_DTYPE_F32, {1, 2, 2, 2});
  EXPECT_EQ(d.Create().code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(d.last_error().find("mask has dtype"), std::string::npos) << d.last_error();
  EXPECT_NE(d.Claim(), "");
}

TEST(FusedAttentionKernel, RejectsBadAttributes) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<float>({1, 1, 2, 2}, std::vector<float>(4));
  t.AddInput<float>({1, 1, 2, 2}, std::vector<float>(4));
  t.AddInput<float>({1, 1, 2, 2}, std::vector<float>(4));
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
  t.SetAttrInt("causal", 2);
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("causal"), std::string::npos) << t.last_error();
  t.Reset();
  t.SetAttrInt("causal", 0);
  t.SetAttrInt("scale", 3);
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("scale"), std::string::npos) << t.last_error();
}

TEST(FusedAttentionKernel, RejectsMissingInputs) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<float>({1, 1, 2, 2}, std::vector<float>(4));
  t.AddInput<float>({1, 1, 2, 2}, std::vector<float>(4));
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("Q, K, V"), std::string::npos) << t.last_error();
}

}  // namespace
}  // namespace tessera::cpu::testing
