// ONNX Attention and RotaryEmbedding CPU kernels against naive references
// written here (double precision, straight from the ONNX definitions), plus
// bad-input tests that expect clear errors naming the node.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu::testing {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// [B, S, H*D] -> [B, H, S, D]
std::vector<float> To4D(const std::vector<float>& x, int64_t B, int64_t S, int64_t H, int64_t D) {
  std::vector<float> y(x.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t d = 0; d < D; ++d) y[((b * H + h) * S + s) * D + d] = x[((b * S + s) * H + h) * D + d];
  return y;
}
// [B, H, S, D] -> [B, S, H*D]
std::vector<float> To3D(const std::vector<float>& x, int64_t B, int64_t H, int64_t S, int64_t D) {
  std::vector<float> y(x.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t d = 0; d < D; ++d) y[((b * S + s) * H + h) * D + d] = x[((b * H + h) * S + s) * D + d];
  return y;
}
// concat([B,H,P,D], [B,H,S,D]) along the sequence.
std::vector<float> ConcatSeq(const std::vector<float>& a, const std::vector<float>& b, int64_t B, int64_t H,
                             int64_t P, int64_t S, int64_t D) {
  std::vector<float> y;
  for (int64_t bh = 0; bh < B * H; ++bh) {
    y.insert(y.end(), a.begin() + bh * P * D, a.begin() + (bh + 1) * P * D);
    y.insert(y.end(), b.begin() + bh * S * D, b.begin() + (bh + 1) * S * D);
  }
  return y;
}

struct RefParams {
  int64_t B, Hq, Hkv, Sq, T, Dk, Dv, P = 0;
  double scale = -1;  // < 0: 1/sqrt(Dk)
  double softcap = 0;
  bool causal = false;
  int mode = 0;
  // Added bias of score (b, h, i, j) from the mask (0 when none); -inf masks.
  std::function<double(int64_t, int64_t, int64_t, int64_t)> mask;
  std::vector<int64_t> nonpad;  // empty = none
};

// Naive attention in double over 4-D q [B,Hq,Sq,Dk], k [B,Hkv,T,Dk], v [B,Hkv,T,Dv].
// Returns Y [B,Hq,Sq,Dv]; *qk gets the mode's intermediate [B,Hq,Sq,T].
std::vector<float> RefAttention(const RefParams& p, const std::vector<float>& q, const std::vector<float>& k,
                                const std::vector<float>& v, std::vector<float>* qk = nullptr) {
  const double scale = p.scale < 0 ? 1.0 / std::sqrt(static_cast<double>(p.Dk)) : p.scale;
  std::vector<float> y(static_cast<size_t>(p.B * p.Hq * p.Sq * p.Dv));
  if (qk) qk->assign(static_cast<size_t>(p.B * p.Hq * p.Sq * p.T), 0.f);
  const int64_t group = p.Hq / p.Hkv;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.Hq; ++h)
      for (int64_t i = 0; i < p.Sq; ++i) {
        const int64_t kh = h / group;
        std::vector<double> s(static_cast<size_t>(p.T));
        const int64_t row = ((b * p.Hq + h) * p.Sq + i) * p.T;
        for (int64_t j = 0; j < p.T; ++j) {
          double acc = 0;
          for (int64_t d = 0; d < p.Dk; ++d)
            acc += double(q[((b * p.Hq + h) * p.Sq + i) * p.Dk + d]) * k[((b * p.Hkv + kh) * p.T + j) * p.Dk + d];
          s[j] = acc * scale;
          if (qk && p.mode == 0) (*qk)[row + j] = static_cast<float>(s[j]);
          if (p.mask) s[j] += p.mask(b, h, i, j);
          if (p.causal && j > i + p.P) s[j] = -INFINITY;
          if (!p.nonpad.empty() && j >= p.nonpad[b]) s[j] = -INFINITY;
          if (qk && p.mode == 1) (*qk)[row + j] = static_cast<float>(s[j]);
          if (p.softcap > 0) s[j] = p.softcap * std::tanh(s[j] / p.softcap);
          if (qk && p.mode == 2) (*qk)[row + j] = static_cast<float>(s[j]);
        }
        double m = -INFINITY, sum = 0;
        for (double x : s) m = std::max(m, x);
        for (double& x : s) sum += (x = std::exp(x - m));
        for (int64_t j = 0; j < p.T; ++j) {
          s[j] /= sum;
          if (qk && p.mode == 3) (*qk)[row + j] = static_cast<float>(s[j]);
        }
        for (int64_t d = 0; d < p.Dv; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < p.T; ++j) acc += s[j] * v[((b * p.Hkv + kh) * p.T + j) * p.Dv + d];
          y[((b * p.Hq + h) * p.Sq + i) * p.Dv + d] = static_cast<float>(acc);
        }
      }
  return y;
}

std::vector<uint16_t> ToHalf(const std::vector<float>& x) {
  std::vector<uint16_t> y;
  for (float f : x) {
    // Exact for the values used here: round to 10 mantissa bits via the float formula.
    uint32_t u;
    std::memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, ax = u & 0x7fffffffu;
    if (ax < 0x38800000u) {
      y.push_back(static_cast<uint16_t>(sign));  // tiny values flush to zero in these tests
      continue;
    }
    ax += 0xc8000fffu + ((ax >> 13) & 1u);
    y.push_back(static_cast<uint16_t>(sign | (ax >> 13)));
  }
  return y;
}
float HalfBitsToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) return (sign ? -1.f : 1.f) * static_cast<float>(mant) * 5.9604644775390625e-8f;
  uint32_t u = sign | ((exp + 112) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
std::vector<float> HalfRound(const std::vector<float>& x) {
  std::vector<float> y;
  for (uint16_t h : ToHalf(x)) y.push_back(HalfBitsToFloat(h));
  return y;
}

void ExpectErrorMentions(OpTest& t, int32_t code, const std::string& what) {
  Err e = t.Create();
  EXPECT_EQ(e.code, code) << e.message;
  EXPECT_NE(e.message.find("node '" + t.name() + "'"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find(what), std::string::npos) << e.message;
}

// ---- Attention ---------------------------------------------------------------------

TEST(OnnxAttentionTest, FourDimMultiHeadMatchesReference) {
  const int64_t B = 2, H = 3, Sq = 4, Skv = 6, D = 8;
  auto q = RandomFloats(B * H * Sq * D, -1, 1, 1), k = RandomFloats(B * H * Skv * D, -1, 1, 2),
       v = RandomFloats(B * H * Skv * D, -1, 1, 3);
  OpTest t("Attention", "", 23);
  t.AddInput<float>({B, H, Sq, D}, q).AddInput<float>({B, H, Skv, D}, k).AddInput<float>({B, H, Skv, D}, v);
  t.AddOutput(TSR_DTYPE_F32, {B, H, Sq, D});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  RefParams p{B, H, H, Sq, Skv, D, D};
  EXPECT_TRUE(AllClose(t.Output<float>(0), RefAttention(p, q, k, v), 1e-5f, 1e-6f));
}

TEST(OnnxAttentionTest, ThreeDimGqaCausalScaledSoftcapWithFloatMask) {
  const int64_t B = 2, Hq = 6, Hkv = 2, Sq = 5, Skv = 7, Dk = 4, Dv = 3;
  auto q3 = RandomFloats(B * Sq * Hq * Dk, -2, 2, 4), k3 = RandomFloats(B * Skv * Hkv * Dk, -2, 2, 5),
       v3 = RandomFloats(B * Skv * Hkv * Dv, -1, 1, 6), mask = RandomFloats(Sq * Skv, -1, 1, 7);
  OpTest t("Attention", "", 23);
  t.AddInput<float>({B, Sq, Hq * Dk}, q3).AddInput<float>({B, Skv, Hkv * Dk}, k3).AddInput<float>({B, Skv, Hkv * Dv}, v3);
  t.AddInput<float>({Sq, Skv}, mask);
  t.AddOutput(TSR_DTYPE_F32, {B, Sq, Hq * Dv});
  t.SetAttrInt("q_num_heads", Hq).SetAttrInt("kv_num_heads", Hkv).SetAttrInt("is_causal", 1);
  t.SetAttrFloat("scale", 0.3f).SetAttrFloat("softcap", 1.5f);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  RefParams p{B, Hq, Hkv, Sq, Skv, Dk, Dv};
  p.scale = 0.3;
  p.softcap = 1.5;
  p.causal = true;
  p.mask = [&](int64_t, int64_t, int64_t i, int64_t j) { return double(mask[i * Skv + j]); };
  auto y4 = RefAttention(p, To4D(q3, B, Sq, Hq, Dk), To4D(k3, B, Skv, Hkv, Dk), To4D(v3, B, Skv, Hkv, Dv));
  EXPECT_TRUE(AllClose(t.Output<float>(0), To3D(y4, B, Hq, Sq, Dv), 1e-5f, 1e-6f));
}

// Past/present key/value concatenation and every qk_matmul_output_mode, with a 3-D (broadcast head) mask.
TEST(OnnxAttentionTest, PastPresentAndQkOutputModes) {
  const int64_t B = 2, Hq = 4, Hkv = 2, Sq = 3, Skv = 2, P = 4, T = P + Skv, Dk = 5, Dv = 6;
  auto q = RandomFloats(B * Hq * Sq * Dk, -1, 1, 10), k = RandomFloats(B * Hkv * Skv * Dk, -1, 1, 11),
       v = RandomFloats(B * Hkv * Skv * Dv, -1, 1, 12), pk = RandomFloats(B * Hkv * P * Dk, -1, 1, 13),
       pv = RandomFloats(B * Hkv * P * Dv, -1, 1, 14), mask = RandomFloats(B * Sq * T, -2, 2, 15);
  const auto kc = ConcatSeq(pk, k, B, Hkv, P, Skv, Dk), vc = ConcatSeq(pv, v, B, Hkv, P, Skv, Dv);
  for (int mode = 0; mode <= 3; ++mode) {
    SCOPED_TRACE("mode " + std::to_string(mode));
    OpTest t("Attention", "", 23);
    t.AddInput<float>({B, Hq, Sq, Dk}, q).AddInput<float>({B, Hkv, Skv, Dk}, k).AddInput<float>({B, Hkv, Skv, Dv}, v);
    t.AddInput<float>({B, 1, Sq, T}, mask).AddInput<float>({B, Hkv, P, Dk}, pk).AddInput<float>({B, Hkv, P, Dv}, pv);
    t.AddOutput(TSR_DTYPE_F32, {B, Hq, Sq, Dv}).AddOutput(TSR_DTYPE_F32, {B, Hkv, T, Dk});
    t.AddOutput(TSR_DTYPE_F32, {B, Hkv, T, Dv}).AddOutput(TSR_DTYPE_F32, {B, Hq, Sq, T});
    t.SetAttrInt("qk_matmul_output_mode", mode).SetAttrFloat("softcap", 2.f).SetAttrInt("is_causal", 1);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    RefParams p{B, Hq, Hkv, Sq, T, Dk, Dv, P};
    p.softcap = 2;
    p.causal = true;
    p.mode = mode;
    p.mask = [&](int64_t b, int64_t, int64_t i, int64_t j) { return double(mask[(b * Sq + i) * T + j]); };
    std::vector<float> qk;
    auto y = RefAttention(p, q, kc, vc, &qk);
    EXPECT_TRUE(AllClose(t.Output<float>(0), y, 1e-5f, 1e-6f));
    EXPECT_EQ(t.Output<float>(1), kc);
    EXPECT_EQ(t.Output<float>(2), vc);
    EXPECT_TRUE(AllClose(t.Output<float>(3), qk, 1e-5f, 1e-6f));
  }
}

TEST(OnnxAttentionTest, ThreeDimPresentIsFourDim) {
  const int64_t B = 1, H = 2, Sq = 2, Skv = 3, P = 1, T = P + Skv, D = 2;
  auto q3 = RandomFloats(B * Sq * H * D, -1, 1, 20), k3 = RandomFloats(B * Skv * H * D, -1, 1, 21),
       v3 = RandomFloats(B * Skv * H * D, -1, 1, 22), pk = RandomFloats(B * H * P * D, -1, 1, 23),
       pv = RandomFloats(B * H * P * D, -1, 1, 24);
  OpTest t("Attention", "", 23);
  t.AddInput<float>({B, Sq, H * D}, q3).AddInput<float>({B, Skv, H * D}, k3).AddInput<float>({B, Skv, H * D}, v3);
  t.AddMissingInput().AddInput<float>({B, H, P, D}, pk).AddInput<float>({B, H, P, D}, pv);
  t.AddOutput(TSR_DTYPE_F32, {B, Sq, H * D}).AddOutput(TSR_DTYPE_F32, {B, H, T, D}).AddOutput(TSR_DTYPE_F32, {B, H, T, D});
  t.SetAttrInt("q_num_heads", H).SetAttrInt("kv_num_heads", H);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  const auto kc = ConcatSeq(pk, To4D(k3, B, Skv, H, D), B, H, P, Skv, D);
  const auto vc = ConcatSeq(pv, To4D(v3, B, Skv, H, D), B, H, P, Skv, D);
  EXPECT_EQ(t.Output<float>(1), kc);
  EXPECT_EQ(t.Output<float>(2), vc);
  RefParams p{B, H, H, Sq, T, D, D, P};
  EXPECT_TRUE(AllClose(t.Output<float>(0), To3D(RefAttention(p, To4D(q3, B, Sq, H, D), kc, vc), B, H, Sq, D)));
}

// A bool mask shorter than the key length (padded with masked keys) plus nonpad_kv_seqlen (opset 24).
TEST(OnnxAttentionTest, BoolMaskPaddedAndNonpadKvSeqlen) {
  const int64_t B = 2, H = 2, Sq = 3, Skv = 6, Dk = 4, Dv = 2, M = 5;
  auto q = RandomFloats(B * H * Sq * Dk, -1, 1, 30), k = RandomFloats(B * H * Skv * Dk, -1, 1, 31),
       v = RandomFloats(B * H * Skv * Dv, -1, 1, 32);
  std::vector<bool> mask(static_cast<size_t>(H * Sq * M));
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = (i * 7 + 3) % 5 != 0;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < Sq; ++i) mask[static_cast<size_t>((h * Sq + i) * M)] = true;  // key 0 always visible
  const std::vector<int64_t> nonpad{4, 6};
  OpTest t("Attention", "", 24);
  t.AddInput<float>({B, H, Sq, Dk}, q).AddInput<float>({B, H, Skv, Dk}, k).AddInput<float>({B, H, Skv, Dv}, v);
  t.AddInputBool({H, Sq, M}, mask).AddMissingInput().AddMissingInput().AddInput<int64_t>({B}, nonpad);
  t.AddOutput(TSR_DTYPE_F32, {B, H, Sq, Dv});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  RefParams p{B, H, H, Sq, Skv, Dk, Dv};
  p.nonpad = nonpad;
  p.mask = [&](int64_t, int64_t h, int64_t i, int64_t j) {
    return j < M && mask[static_cast<size_t>((h * Sq + i) * M + j)] ? 0.0 : -INFINITY;
  };
  EXPECT_TRUE(AllClose(t.Output<float>(0), RefAttention(p, q, k, v), 1e-5f, 1e-6f));
}

TEST(OnnxAttentionTest, FullyMaskedRowIsNaN) {
  OpTest t("Attention", "", 23);
  t.AddInput<float>({1, 1, 2, 2}, {1, 2, 3, 4}).AddInput<float>({1, 1, 2, 2}, {1, 0, 0, 1});
  t.AddInput<float>({1, 1, 2, 2}, {5, 6, 7, 8}).AddInput<float>({2, 2}, {-kInf, -kInf, 0, 0});
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto y = t.Output<float>(0);
  EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1]));
  EXPECT_FALSE(std::isnan(y[2]));
}

TEST(OnnxAttentionTest, HalfInputsComputeInF32) {
  const int64_t B = 1, Hq = 4, Hkv = 2, Sq = 3, Skv = 5, D = 8;
  auto q = HalfRound(RandomFloats(B * Hq * Sq * D, -1, 1, 40)), k = HalfRound(RandomFloats(B * Hkv * Skv * D, -1, 1, 41)),
       v = HalfRound(RandomFloats(B * Hkv * Skv * D, -1, 1, 42));
  OpTest t("Attention", "", 23);
  t.AddInput<uint16_t>(TSR_DTYPE_F16, {B, Hq, Sq, D}, ToHalf(q)).AddInput<uint16_t>(TSR_DTYPE_F16, {B, Hkv, Skv, D}, ToHalf(k));
  t.AddInput<uint16_t>(TSR_DTYPE_F16, {B, Hkv, Skv, D}, ToHalf(v));
  t.AddOutput(TSR_DTYPE_F16, {B, Hq, Sq, D}).AddMissingOutput().AddOutput(TSR_DTYPE_F16, {B, Hkv, Skv, D});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  RefParams p{B, Hq, Hkv, Sq, Skv, D, D};
  auto want = HalfRound(RefAttention(p, q, k, v));
  std::vector<float> got;
  for (uint16_t h : t.Output<uint16_t>(0)) got.push_back(HalfBitsToFloat(h));
  EXPECT_TRUE(AllClose(got, want, 1e-3f, 1e-3f));
  EXPECT_EQ(t.Output<uint16_t>(2), ToHalf(v));  // present_value is an exact copy
}

TEST(OnnxAttentionTest, ClaimNamesUnsupportedDtype) {
  OpTest t("Attention", "", 23);
  t.AddInput<int32_t>({1, 1, 1, 1}, {1}).AddInput<int32_t>({1, 1, 1, 1}, {1}).AddInput<int32_t>({1, 1, 1, 1}, {1});
  t.AddOutput(TSR_DTYPE_I32, {1, 1, 1, 1});
  EXPECT_NE(t.Claim().find("i32"), std::string::npos) << t.Claim();
  ExpectErrorMentions(t, TSR_ERR_UNSUPPORTED, "Q has dtype i32");
}

TEST(OnnxAttentionTest, BadInputsAreClearErrors) {
  auto base = [](OpTest& t, std::vector<int64_t> q, std::vector<int64_t> k, std::vector<int64_t> v) {
    t.AddInput<float>(q, std::vector<float>(NumElements(q)));
    t.AddInput<float>(k, std::vector<float>(NumElements(k)));
    t.AddInput<float>(v, std::vector<float>(NumElements(v)));
  };
  {
    OpTest t("Attention", "", 23);
    base(t, {1, 2, 6}, {1, 2, 6}, {1, 2, 6});
    t.AddOutput(TSR_DTYPE_F32, {1, 2, 6});
    ExpectErrorMentions(t, TSR_ERR_INVALID_ARGUMENT, "q_num_heads");
  }
  {
    OpTest t("Attention", "", 23);
    base(t, {1, 3, 2, 4}, {1, 2, 2, 4}, {1, 2, 2, 4});
    t.AddOutput(TSR_DTYPE_F32, {1, 3, 2, 4});
    ExpectErrorMentions(t, TSR_ERR_INVALID_ARGUMENT, "not a multiple");
  }
  {
    OpTest t("Attention", "", 23);
    base(t, {1, 2, 2, 4}, {1, 2, 3, 4}, {1, 2, 3, 4});
    t.AddInput<float>({3, 3}, std::vector<float>(9));
    t.AddOutput(TSR_DTYPE_F32, {1, 2, 2, 4});
    ExpectErrorMentions(t, TSR_ERR_INVALID_ARGUMENT, "attn_mask [3,3] does not broadcast");
  }
  {
    OpTest t("Attention", "", 23);
    base(t, {1, 2, 2, 4}, {1, 2, 3, 4}, {1, 2, 3, 4});
    t.AddMissingInput().AddInput<float>({1, 2, 1, 4}, std::vector<float>(8));
    t.AddOutput(TSR_DTYPE_F32, {1, 2, 2, 4});
    ExpectErrorMentions(t, TSR_ERR_INVALID_ARGUMENT, "past_key and past_value must be given together");
  }
  {
    OpTest t("Attention", "", 23);
    base(t, {1, 2, 2, 4}, {1, 2, 3, 4}, {1, 2, 3, 4});
    t.AddMissingInput().AddMissingInput().AddMissingInput().AddInput<int64_t>({1}, {3});
    t.AddOutput(TSR_DTYPE_F32, {1, 2, 2, 4});
    ExpectErrorMentions(t, TSR_ERR_INVALID_ARGUMENT, "opset 24");
  }
  {
    OpTest t("Attention", "", 23);
    base(t, {1, 2, 2, 4}, {1, 2, 3, 4}, {1, 2, 3, 4});
    t.AddOutput(TSR_DTYPE_F32, {1, 2, 2, 4}).SetAttrInt("qk_matmul_output_mode", 4);
    ExpectErrorMentions(t, TSR_ERR_INVALID_ARGUMENT, "qk_matmul_output_mode");
  }
  {
    OpTest t("Attention", "", 23);
    base(t, {1, 2, 2, 4}, {1, 2, 3, 4}, {1, 2, 3, 4});
    t.AddOutput(TSR_DTYPE_F32, {1, 2, 2, 4}).AddMissingOutput().AddMissingOutput().AddOutput(TSR_DTYPE_F32, {1, 2, 2, 2});
    ExpectErrorMentions(t, TSR_ERR_INVALID_ARGUMENT, "qk_matmul_output is f32 [1,2,2,2], expected f32 [1,2,2,3]");
  }
  {
    OpTest t("Attention", "", 23);
    base(t, {1, 2, 2, 4}, {1, 2, 3, 5}, {1, 2, 3, 4});
    t.AddOutput(TSR_DTYPE_F32, {1, 2, 2, 4});
    ExpectErrorMentions(t, TSR_ERR_INVALID_ARGUMENT, "head size");
  }
}

// ---- RotaryEmbedding --------------------------------------------------------------

// Reference over [B, S, H, D] rows; cos/sin row for (b, s) given by `crow`.
std::vector<float> RefRotary(const std::vector<float>& x, int64_t B, int64_t H, int64_t S, int64_t D, bool is3d,
                             int64_t rd, bool interleaved, const std::vector<float>& cs, const std::vector<float>& sn,
                             const std::function<int64_t(int64_t, int64_t)>& crow) {
  std::vector<float> y = x;
  const int64_t half = rd / 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t off = is3d ? ((b * S + s) * H + h) * D : ((b * H + h) * S + s) * D;
        const int64_t c = crow(b, s) * half;
        for (int64_t kk = 0; kk < half; ++kk) {
          const int64_t i1 = interleaved ? 2 * kk : kk, i2 = interleaved ? 2 * kk + 1 : kk + half;
          const double x1 = x[off + i1], x2 = x[off + i2];
          y[off + i1] = static_cast<float>(cs[c + kk] * x1 - sn[c + kk] * x2);
          y[off + i2] = static_cast<float>(sn[c + kk] * x1 + cs[c + kk] * x2);
        }
      }
  return y;
}

TEST(RotaryEmbeddingTest, FourDimWithPositionIds) {
  const int64_t B = 2, H = 3, S = 4, D = 8, Mx = 10;
  for (int inter = 0; inter <= 1; ++inter) {
    SCOPED_TRACE("interleaved " + std::to_string(inter));
    auto x = RandomFloats(B * H * S * D, -1, 1, 50), cs = RandomFloats(Mx * D / 2, -1, 1, 51),
         sn = RandomFloats(Mx * D / 2, -1, 1, 52);
    std::vector<int64_t> pos{0, 3, 9, 2, 5, 5, 1, 7};
    OpTest t("RotaryEmbedding", "", 23);
    t.AddInput<float>({B, H, S, D}, x).AddInput<float>({Mx, D / 2}, cs).AddInput<float>({Mx, D / 2}, sn);
    t.AddInput<int64_t>({B, S}, pos).AddOutput(TSR_DTYPE_F32, {B, H, S, D}).SetAttrInt("interleaved", inter);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    auto want = RefRotary(x, B, H, S, D, false, D, inter == 1, cs, sn, [&](int64_t b, int64_t s) { return pos[b * S + s]; });
    EXPECT_TRUE(AllClose(t.Output<float>(0), want, 1e-6f, 1e-6f));
  }
}

TEST(RotaryEmbeddingTest, ThreeDimPartialRotationWithoutPositionIds) {
  const int64_t B = 2, H = 2, S = 3, D = 6, rd = 4;
  for (int inter = 0; inter <= 1; ++inter) {
    SCOPED_TRACE("interleaved " + std::to_string(inter));
    auto x = RandomFloats(B * S * H * D, -1, 1, 60), cs = RandomFloats(B * S * rd / 2, -1, 1, 61),
         sn = RandomFloats(B * S * rd / 2, -1, 1, 62);
    OpTest t("RotaryEmbedding", "", 23);
    t.AddInput<float>({B, S, H * D}, x).AddInput<float>({B, S, rd / 2}, cs).AddInput<float>({B, S, rd / 2}, sn);
    t.AddOutput(TSR_DTYPE_F32, {B, S, H * D});
    t.SetAttrInt("num_heads", H).SetAttrInt("rotary_embedding_dim", rd).SetAttrInt("interleaved", inter);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    auto want = RefRotary(x, B, H, S, D, true, rd, inter == 1, cs, sn, [&](int64_t b, int64_t s) { return b * S + s; });
    auto got = t.Output<float>(0);
    EXPECT_TRUE(AllClose(got, want, 1e-6f, 1e-6f));
    EXPECT_EQ(got[4], x[4]);  // channels past rotary_embedding_dim pass through
  }
}

TEST(RotaryEmbeddingTest, PositionOutsideCacheIsRunTimeError) {
  OpTest t("RotaryEmbedding", "", 23);
  t.AddInput<float>({1, 1, 2, 2}, {1, 2, 3, 4}).AddInput<float>({3, 1}, {1, 1, 1}).AddInput<float>({3, 1}, {0, 0, 0});
  t.AddInput<int64_t>({1, 2}, {0, 3}).AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
  Err e = t.Run();
  EXPECT_EQ(e.code, TSR_ERR_OUT_OF_RANGE) << e.message;
  EXPECT_NE(e.message.find("position_ids[0][1] = 3"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("node 'node_RotaryEmbedding'"), std::string::npos) << e.message;
}

TEST(RotaryEmbeddingTest, BadInputsAreClearErrors) {
  {
    OpTest t("RotaryEmbedding", "", 23);
    t.AddInput<float>({1, 2, 8}, std::vector<float>(16)).AddInput<float>({1, 2, 2}, std::vector<float>(4));
    t.AddInput<float>({1, 2, 2}, std::vector<float>(4)).AddOutput(TSR_DTYPE_F32, {1, 2, 8});
    ExpectErrorMentions(t, TSR_ERR_INVALID_ARGUMENT, "num_heads");
  }
  {
    OpTest t("RotaryEmbedding", "", 23);
    t.AddInput<float>({1, 1, 2, 4}, std::vector<float>(8)).AddInput<float>({1, 2, 2}, std::vector<float>(4));
    t.AddInput<float>({1, 2, 2}, std::vector<float>(4)).AddOutput(TSR_DTYPE_F32, {1, 1, 2, 4});
    t.SetAttrInt("rotary_embedding_dim", 3);
    ExpectErrorMentions(t, TSR_ERR_INVALID_ARGUMENT, "must be even");
  }
  {
    OpTest t("RotaryEmbedding", "", 23);
    t.AddInput<float>({1, 1, 2, 4}, std::vector<float>(8)).AddInput<float>({5, 3}, std::vector<float>(15));
    t.AddInput<float>({5, 3}, std::vector<float>(15)).AddInput<int64_t>({1, 2}, {0, 1});
    t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 4});
    ExpectErrorMentions(t, TSR_ERR_INVALID_ARGUMENT, "[max_position, 2]");
  }
  {
    OpTest t("RotaryEmbedding", "", 23);
    t.AddInput<int32_t>({1, 1, 1, 2}, {1, 2}).AddInput<int32_t>({1, 1, 1}, {1}).AddInput<int32_t>({1, 1, 1}, {1});
    t.AddOutput(TSR_DTYPE_I32, {1, 1, 1, 2});
    EXPECT_NE(t.Claim().find("i32"), std::string::npos) << t.Claim();
    ExpectErrorMentions(t, TSR_ERR_UNSUPPORTED, "input has dtype i32");
  }
}

}  // namespace
}  // namespace tessera::cpu::testing
