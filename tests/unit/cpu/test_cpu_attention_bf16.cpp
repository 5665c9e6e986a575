// bf16 storage with f32 math on the transformer path: tessera.FusedAttention
// with bf16 Q/K/V/Y and LayerNormalization with bf16 X/Y, each against a
// double reference computed on the bf16-rounded inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/simd.h"
#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu::testing {
namespace {

std::vector<uint16_t> ToBf16(const std::vector<float>& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = plugin::FloatToBF16Bits(v[i]);
  return r;
}
std::vector<float> FromBf16(const std::vector<uint16_t>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = plugin::BF16BitsToFloat(v[i]);
  return r;
}
// v rounded to bf16 and back (what a bf16 tensor can hold).
std::vector<float> RoundBf16(const std::vector<float>& v) { return FromBf16(ToBf16(v)); }

// ---- FusedAttention in bf16 --------------------------------------------------------------------------

struct Case {
  int64_t B = 2, H = 3, Sq = 5, Sk = 7, D = 8, Dv = 6;
  bool causal = false;
  int mask_kind = 0;  // 0 none, 1 f32 additive, 2 bool, 3 bf16 additive
  std::vector<int64_t> mask_dims;
};

// softmax(Q K^T / sqrt(D) + mask [, causal]) V in double on already-rounded inputs.
std::vector<float> Reference(const Case& c, const std::vector<float>& q, const std::vector<float>& k,
                             const std::vector<float>& v, const std::vector<float>& fmask,
                             const std::vector<bool>& bmask) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.D));
  std::vector<float> y(static_cast<size_t>(c.B * c.H * c.Sq * c.Dv));
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
          if (c.mask_kind == 1 || c.mask_kind == 3) acc += fmask[BroadcastIndex({b, h, i, j}, c.mask_dims)];
          if (c.mask_kind == 2 && !bmask[BroadcastIndex({b, h, i, j}, c.mask_dims)])
            acc = -std::numeric_limits<double>::infinity();
          if (c.causal && j > i) acc = -std::numeric_limits<double>::infinity();
          s[static_cast<size_t>(j)] = acc;
          mx = std::max(mx, acc);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t o = 0; o < c.Dv; ++o) {
          double acc = 0;
          for (int64_t j = 0; j < c.Sk; ++j)
            acc += s[static_cast<size_t>(j)] * v[((b * c.H + h) * c.Sk + j) * c.Dv + o];
          y[static_cast<size_t>(((b * c.H + h) * c.Sq + i) * c.Dv + o)] = static_cast<float>(acc / sum);
        }
      }
  return y;
}

// Sets TESSERA_CPU_ATTN_BF16_DOT for the kernels created in its scope, then restores it.
class DotMode {
 public:
  explicit DotMode(bool on) {
    if (const char* e = std::getenv(kVar)) saved_ = e, had_ = true;
    setenv(kVar, on ? "1" : "0", 1);
  }
  ~DotMode() {
    if (had_) setenv(kVar, saved_.c_str(), 1);
    else unsetenv(kVar);
  }

 private:
  static constexpr const char* kVar = "TESSERA_CPU_ATTN_BF16_DOT";
  std::string saved_;
  bool had_ = false;
};

void CheckBf16(const Case& c, bool dot) {
  DotMode mode(dot);
  OpTest t("FusedAttention", "tessera");
  auto q = RoundBf16(RandomFloats(c.B * c.H * c.Sq * c.D, -1.f, 1.f, 11));
  auto k = RoundBf16(RandomFloats(c.B * c.H * c.Sk * c.D, -1.f, 1.f, 12));
  auto v = RoundBf16(RandomFloats(c.B * c.H * c.Sk * c.Dv, -1.f, 1.f, 13));
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {c.B, c.H, c.Sq, c.D}, ToBf16(q));
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {c.B, c.H, c.Sk, c.D}, ToBf16(k));
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {c.B, c.H, c.Sk, c.Dv}, ToBf16(v));
  std::vector<float> fmask;
  std::vector<bool> bmask;
  if (c.mask_kind == 1 || c.mask_kind == 3) {
    fmask = RoundBf16(RandomFloats(NumElements(c.mask_dims), -3.f, 1.f, 14));
    if (c.mask_dims.back() != 1) fmask[0] = -1e4f;  // a strongly masked key (exact in bf16: -9984)
    fmask = RoundBf16(fmask);
    if (c.mask_kind == 1) t.AddInput<float>(c.mask_dims, fmask);
    else t.AddInput<uint16_t>(TSR_DTYPE_BF16, c.mask_dims, ToBf16(fmask));
  } else if (c.mask_kind == 2) {
    bmask.resize(static_cast<size_t>(NumElements(c.mask_dims)));
    for (size_t i = 0; i < bmask.size(); ++i) bmask[i] = (i * 7 + 3) % 5 != 0;
    std::vector<int64_t> full{c.B, c.H, c.Sq, c.Sk};
    for (int64_t f = 0; f < NumElements(full); ++f) {
      auto idx = Unravel(f, full);
      if (idx[3] == 0) bmask[static_cast<size_t>(BroadcastIndex(idx, c.mask_dims))] = true;
    }
    t.AddInputBool(c.mask_dims, bmask);
  }
  if (c.causal) t.SetAttrInt("causal", 1);
  t.AddOutput(TSR_DTYPE_BF16, {c.B, c.H, c.Sq, c.Dv});
  EXPECT_EQ(t.Claim(), "");
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  const auto want = Reference(c, q, k, v, fmask, bmask);
  // Rounding the output (2^-9 relative) and, on the vdpbf16ps path, the
  // probabilities before the P V product (each 2^-9 relative, so at most
  // 2^-9 * max|V| = 2e-3 absolute, |V| <= 1) separate kernel and reference.
  EXPECT_TRUE(AllClose(FromBf16(t.Output<uint16_t>(0)), want, 1.0f / 256, dot ? 2e-3f : 1e-4f));
  // Reuse gives the same bits.
  const auto first = t.Output<uint16_t>(0);
  ASSERT_TRUE(t.RunAgain().ok()) << t.last_error();
  EXPECT_EQ(t.Output<uint16_t>(0), first);
}

class FusedAttentionBf16Modes : public ::testing::TestWithParam<bool> {};

TEST_P(FusedAttentionBf16Modes, NoMask) { CheckBf16(Case{}, GetParam()); }

TEST_P(FusedAttentionBf16Modes, F32AdditiveMaskBroadcast) {
  Case c;
  c.mask_kind = 1;
  c.mask_dims = {c.B, 1, 1, c.Sk};
  CheckBf16(c, GetParam());
}

TEST_P(FusedAttentionBf16Modes, Bf16AdditiveMaskFull) {
  Case c;
  c.mask_kind = 3;
  c.mask_dims = {c.B, c.H, c.Sq, c.Sk};
  CheckBf16(c, GetParam());
}

TEST_P(FusedAttentionBf16Modes, Bf16MaskColumnBroadcast) {
  Case c;
  c.mask_kind = 3;
  c.mask_dims = {c.Sq, 1};
  CheckBf16(c, GetParam());
}

TEST_P(FusedAttentionBf16Modes, BoolMask) {
  Case c;
  c.mask_kind = 2;
  c.mask_dims = {c.B, 1, c.Sq, c.Sk};
  CheckBf16(c, GetParam());
}

TEST_P(FusedAttentionBf16Modes, CausalLongerKeysManyBlocks) {
  Case c;
  c.B = 1;
  c.H = 2;
  c.Sq = 150;  // three query blocks, the last partial
  c.Sk = 170;
  c.D = 13;
  c.Dv = 5;
  c.causal = true;
  CheckBf16(c, GetParam());
}

// One head: its query blocks are split over tasks (each converting its own keys).
TEST_P(FusedAttentionBf16Modes, SingleHeadSplitsQueryBlocks) {
  Case c;
  c.B = 1;
  c.H = 1;
  c.Sq = 300;
  c.Sk = 300;
  c.D = 16;
  c.Dv = 16;
  c.causal = true;
  c.mask_kind = 1;
  c.mask_dims = {300, 300};
  CheckBf16(c, GetParam());
}

TEST_P(FusedAttentionBf16Modes, BertLikeShape) {
  Case c;
  c.B = 1;
  c.H = 4;
  c.Sq = c.Sk = 128;
  c.D = c.Dv = 64;
  c.mask_kind = 3;
  c.mask_dims = {1, 1, 1, 128};
  CheckBf16(c, GetParam());
}

// false: widened f32 products (TESSERA_CPU_ATTN_BF16_DOT=0); true: vdpbf16ps where available (the default).
INSTANTIATE_TEST_SUITE_P(Paths, FusedAttentionBf16Modes, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Dot" : "Widen"; });

TEST(FusedAttentionBf16, DefaultPathEqualsF32KernelOnRoundedInputs) {
  DotMode mode(false);
  const std::vector<int64_t> d = {2, 3, 70, 24};
  auto q = RoundBf16(RandomFloats(2 * 3 * 70 * 24, -1.f, 1.f, 51));
  auto k = RoundBf16(RandomFloats(2 * 3 * 70 * 24, -1.f, 1.f, 52));
  auto v = RoundBf16(RandomFloats(2 * 3 * 70 * 24, -1.f, 1.f, 53));
  OpTest ref("FusedAttention", "tessera");
  ref.AddInput<float>(d, q).AddInput<float>(d, k).AddInput<float>(d, v).AddOutput(TSR_DTYPE_F32, d);
  ref.SetAttrInt("causal", 1);
  ASSERT_TRUE(ref.Run().ok()) << ref.last_error();
  OpTest t("FusedAttention", "tessera");
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, d, ToBf16(q)).AddInput<uint16_t>(TSR_DTYPE_BF16, d, ToBf16(k));
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, d, ToBf16(v)).AddOutput(TSR_DTYPE_BF16, d);
  t.SetAttrInt("causal", 1);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<uint16_t>(0), ToBf16(ref.Output<float>(0)));
}

// The vdpbf16ps tile kernel against a double reference, odd sizes and tails.
TEST(Bf16PairGemm, MatchesReference) {
  simd::Bf16PairGemmFn gemm = simd::Bf16PairGemm();
  if (!gemm) GTEST_SKIP() << "no AVX-512 BF16 on this CPU (or the generic ISA is active)";
  for (int64_t m : {1, 3, 4, 7}) {
    for (int64_t n : {1, 16, 17, 64, 65, 130}) {
      const int64_t kp = 9, lda = kp + 2, ldb = (n + 63) / 64 * 64, ldc = n + 3;
      auto af = RoundBf16(RandomFloats(m * lda * 2, -2.f, 2.f, 61));
      auto bf = RoundBf16(RandomFloats(kp * ldb * 2, -2.f, 2.f, 62));
      std::vector<uint16_t> a = ToBf16(af), b = ToBf16(bf);
      std::vector<float> c(static_cast<size_t>(m * ldc), -7.f);
      gemm(reinterpret_cast<const uint32_t*>(a.data()), lda, reinterpret_cast<const uint32_t*>(b.data()), ldb,
           c.data(), ldc, m, n, kp, 0.5f);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < ldc; ++j) {
          if (j >= n) {
            EXPECT_EQ(c[i * ldc + j], -7.f) << "column " << j << " past n=" << n << " was written";
            continue;
          }
          double want = 0;
          for (int64_t p = 0; p < kp; ++p)
            for (int h = 0; h < 2; ++h)
              want += static_cast<double>(af[(i * lda + p) * 2 + h]) * bf[(p * ldb + j) * 2 + h];
          want *= 0.5;
          EXPECT_NEAR(c[i * ldc + j], want, 1e-4 * (1 + std::fabs(want)))
              << "m=" << m << " n=" << n << " " << i << "," << j;
        }
      }
    }
  }
}

TEST(FusedAttentionBf16, NoKeysGivesNaN) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {1, 1, 2, 2}, ToBf16({1, 2, 3, 4}));
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {1, 1, 0, 2}, {});
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {1, 1, 0, 3}, {});
  t.AddOutput(TSR_DTYPE_BF16, {1, 1, 2, 3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  for (float y : FromBf16(t.Output<uint16_t>(0))) EXPECT_TRUE(std::isnan(y));
}

TEST(FusedAttentionBf16, FullyMaskedRowIsNaN) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {1, 1, 2, 2}, ToBf16({1, 2, 3, 4}));
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {1, 1, 3, 2}, ToBf16({1, 0, 0, 1, 1, 1}));
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {1, 1, 3, 1}, ToBf16({1, 2, 3}));
  t.AddInputBool({1, 1, 2, 3}, {false, false, false, true, true, false});
  t.AddOutput(TSR_DTYPE_BF16, {1, 1, 2, 1});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto y = FromBf16(t.Output<uint16_t>(0));
  EXPECT_TRUE(std::isnan(y[0]));
  const double e0 = std::exp(3 / std::sqrt(2.0)), e1 = std::exp(4 / std::sqrt(2.0));
  EXPECT_NEAR(y[1], (1 * e0 + 2 * e1) / (e0 + e1), 1e-2);
}

// Mixed f32/bf16 tensors still run (f32 kernel through the adapter).
TEST(FusedAttentionBf16, MixedDTypesRunThroughAdapter) {
  OpTest t("FusedAttention", "tessera");
  auto q = RoundBf16(RandomFloats(1 * 2 * 3 * 4, -1.f, 1.f, 21));
  auto k = RandomFloats(1 * 2 * 5 * 4, -1.f, 1.f, 22);
  auto v = RandomFloats(1 * 2 * 5 * 4, -1.f, 1.f, 23);
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {1, 2, 3, 4}, ToBf16(q));
  t.AddInput<float>({1, 2, 5, 4}, k);
  t.AddInput<float>({1, 2, 5, 4}, v);
  t.AddOutput(TSR_DTYPE_F32, {1, 2, 3, 4});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  Case c;
  c.B = 1, c.H = 2, c.Sq = 3, c.Sk = 5, c.D = 4, c.Dv = 4;
  EXPECT_TRUE(AllClose(t.Output<float>(0), Reference(c, q, k, v, {}, {}), 1e-4f, 1e-5f));
}

TEST(FusedAttentionBf16, RejectsBf16WithOtherFloatTypes) {
  OpTest t("FusedAttention", "tessera");
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {1, 1, 2, 2}, ToBf16({1, 2, 3, 4}));
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {1, 1, 2, 2}, ToBf16({1, 2, 3, 4}));
  t.AddInput<double>({1, 1, 2, 2}, {1, 2, 3, 4});
  t.AddOutput(TSR_DTYPE_BF16, {1, 1, 2, 2});
  EXPECT_EQ(t.Create().code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(t.last_error().find("node_FusedAttention"), std::string::npos) << t.last_error();
  EXPECT_NE(t.last_error().find("f64"), std::string::npos) << t.last_error();
  EXPECT_NE(t.Claim(), "");
}

TEST(FusedAttentionBf16, RejectsWrongOutputShape) {
  OpTest t("FusedAttention", "tessera");
  for (int i = 0; i < 3; ++i) t.AddInput<uint16_t>(TSR_DTYPE_BF16, {1, 1, 2, 2}, ToBf16({1, 2, 3, 4}));
  t.AddOutput(TSR_DTYPE_BF16, {1, 1, 3, 2});
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("expected bf16 [1,1,2,2]"), std::string::npos) << t.last_error();
}

TEST(FusedAttentionBf16, RejectsIntegerMask) {
  OpTest t("FusedAttention", "tessera");
  for (int i = 0; i < 3; ++i) t.AddInput<uint16_t>(TSR_DTYPE_BF16, {1, 1, 2, 2}, ToBf16({1, 2, 3, 4}));
  t.AddInput<int32_t>({1, 1, 2, 2}, {0, 1, 0, 1});
  t.AddOutput(TSR_DTYPE_BF16, {1, 1, 2, 2});
  EXPECT_EQ(t.Create().code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(t.last_error().find("mask has dtype i32"), std::string::npos) << t.last_error();
}

// ---- LayerNormalization in bf16 --------------------------------------------------------------------------

// LayerNorm over the last `d` elements in double on already-rounded inputs.
std::vector<float> LnReference(const std::vector<float>& x, const std::vector<float>& s, const std::vector<float>& b,
                               int64_t rows, int64_t d, double eps, std::vector<float>* mean,
                               std::vector<float>* inv) {
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < d; ++j) m += x[r * d + j];
    m /= static_cast<double>(d);
    for (int64_t j = 0; j < d; ++j) v += (x[r * d + j] - m) * (x[r * d + j] - m);
    v /= static_cast<double>(d);
    const double is = 1.0 / std::sqrt(v + eps);
    for (int64_t j = 0; j < d; ++j)
      y[r * d + j] = static_cast<float>((x[r * d + j] - m) * is * (s.empty() ? 1.0 : s[j]) + (b.empty() ? 0.0 : b[j]));
    if (mean) mean->push_back(static_cast<float>(m));
    if (inv) inv->push_back(static_cast<float>(is));
  }
  return y;
}

void CheckLayerNormBf16(int64_t rows, int64_t d, bool params_bf16, bool with_bias, bool stats) {
  OpTest t("LayerNormalization");
  // An offset mean (as after a residual add) so the two-pass variance matters.
  std::vector<float> x = RandomFloats(rows * d, -2.f, 6.f, 31);
  x = RoundBf16(x);
  std::vector<float> s = RandomFloats(d, 0.5f, 1.5f, 32), b = RandomFloats(d, -0.5f, 0.5f, 33);
  if (params_bf16) s = RoundBf16(s), b = RoundBf16(b);
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {rows, d}, ToBf16(x));
  if (params_bf16) t.AddInput<uint16_t>(TSR_DTYPE_BF16, {d}, ToBf16(s), /*is_const=*/true);
  else t.AddInput<float>({d}, s, /*is_const=*/true);
  if (!with_bias) b.clear();
  else if (params_bf16) t.AddInput<uint16_t>(TSR_DTYPE_BF16, {d}, ToBf16(b));
  else t.AddInput<float>({d}, b);
  t.SetAttrFloat("epsilon", 1e-5f);
  t.AddOutput(TSR_DTYPE_BF16, {rows, d});
  if (stats) {
    t.AddOutput(TSR_DTYPE_F32, {rows, 1});
    t.AddOutput(TSR_DTYPE_F32, {rows, 1});
  }
  EXPECT_EQ(t.Claim(), "");
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> mean, inv;
  const auto want = LnReference(x, s, b, rows, d, 1e-5, &mean, &inv);
  EXPECT_TRUE(AllClose(FromBf16(t.Output<uint16_t>(0)), want, 1.0f / 256, 1e-4f));
  if (stats) {
    EXPECT_TRUE(AllClose(t.Output<float>(1), mean, 1e-5f, 1e-5f));
    EXPECT_TRUE(AllClose(t.Output<float>(2), inv, 1e-5f, 1e-5f));
  }
}

TEST(LayerNormBf16, F32ParamsBertWidth) { CheckLayerNormBf16(9, 768, false, true, false); }
TEST(LayerNormBf16, Bf16ParamsOddWidth) { CheckLayerNormBf16(5, 37, true, true, false); }
TEST(LayerNormBf16, NoBiasWithStatistics) { CheckLayerNormBf16(7, 20, true, false, true); }
TEST(LayerNormBf16, ManyRowsF32Stats) { CheckLayerNormBf16(300, 64, false, true, true); }

// bf16 X with an f16 scale is neither fast path: the double path still runs it.
TEST(LayerNormBf16, OtherParamTypesUseTheGeneralPath) {
  OpTest t("LayerNormalization");
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {2, 2}, ToBf16({1, 3, -1, 1}));
  t.AddInput<uint16_t>(TSR_DTYPE_F16, {2}, {plugin::FloatToHalfBits(1.f), plugin::FloatToHalfBits(2.f)});
  t.AddOutput(TSR_DTYPE_BF16, {2, 2});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto y = FromBf16(t.Output<uint16_t>(0));
  EXPECT_NEAR(y[0], -1.f, 1e-2f);
  EXPECT_NEAR(y[1], 2.f, 1e-2f);
}

TEST(LayerNormBf16, RejectsOutputOfAnotherSize) {
  OpTest t("LayerNormalization");
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {2, 4}, ToBf16(std::vector<float>(8, 1.f)));
  t.AddInput<float>({4}, {1, 1, 1, 1});
  t.AddOutput(TSR_DTYPE_BF16, {2, 3});
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("node_LayerNormalization"), std::string::npos) << t.last_error();
}

}  // namespace
}  // namespace tessera::cpu::testing
