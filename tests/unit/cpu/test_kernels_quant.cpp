// CPU kernels of kernels_quant.cpp: Cast/CastLike over every fixed-size dtype
// (incl. float8, i4/u4, f4e2m1, e8m0), QuantizeLinear / DequantizeLinear
// (per-tensor, per-axis, blocked), DynamicQuantizeLinear, MatMulInteger,
// QLinearMatMul, ConvInteger, QLinearConv — each against a naive reference
// written here — and the errors for bad inputs.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using testing::OpTest;

// ---- an independent minifloat reference: enumerate codes, pick the nearest ----

struct Fmt {
  int e, m, bias;
  bool ieee, fnuz, finite;  // else "fn" (e4m3fn)
};
Fmt FmtOf(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_F8E4M3FN: return {4, 3, 7, false, false, false};
    case TSR_DTYPE_F8E4M3FNUZ: return {4, 3, 8, false, true, false};
    case TSR_DTYPE_F8E5M2: return {5, 2, 15, true, false, false};
    case TSR_DTYPE_F8E5M2FNUZ: return {5, 2, 16, false, true, false};
    default: return {2, 1, 1, false, false, true};
  }
}
// Value of a code; NaN for NaN codes, +-inf for e5m2's inf.
double RefDecode(int32_t dt, int code) {
  const Fmt f = FmtOf(dt);
  const int w = f.e + f.m;
  const int sign = (code >> w) & 1, mag = code & ((1 << w) - 1);
  const int ex = mag >> f.m, man = mag & ((1 << f.m) - 1);
  if (f.fnuz && sign && mag == 0) return NAN;
  if (!f.ieee && !f.fnuz && !f.finite && mag == (1 << w) - 1) return NAN;
  if (f.ieee && ex == (1 << f.e) - 1) return man ? NAN : (sign ? -INFINITY : INFINITY);
  double v = ex == 0 ? man * std::pow(2.0, 1 - f.bias - f.m) : (1 + man / std::pow(2.0, f.m)) * std::pow(2.0, ex - f.bias);
  return sign ? -v : v;
}
// Nearest finite code (ties to the even mantissa), with the saturate rule.
uint8_t RefEncode(int32_t dt, float x, bool sat) {
  const Fmt f = FmtOf(dt);
  const int w = f.e + f.m, codes = 1 << (w + 1);
  double maxv = 0;
  for (int c = 0; c < codes; ++c)
    if (std::isfinite(RefDecode(dt, c))) maxv = std::max(maxv, RefDecode(dt, c));
  auto nan_code = [&]() -> int {
    if (f.fnuz) return 0x80;
    if (f.finite) return 0x8;
    if (f.ieee) return (std::signbit(x) ? 0x80 : 0) | 0x7E;
    return (std::signbit(x) ? 0x80 : 0) | 0x7F;
  };
  if (std::isnan(x)) return static_cast<uint8_t>(nan_code());
  double a = x;
  if (sat || f.finite) a = std::max(-maxv, std::min(maxv, a));
  if (std::isinf(a)) return static_cast<uint8_t>(f.ieee ? ((x < 0 ? 0x80 : 0) | 0x7C) : nan_code());
  int max_code = 0;
  for (int c = 0; c < codes / 2; ++c)
    if (RefDecode(dt, c) == maxv) max_code = c;
  const double top_ulp = std::pow(2.0, std::floor(std::log2(maxv)) - f.m);
  if (std::fabs(a) > maxv) {  // the next code up would be max + top_ulp: overflow when RNE picks it
    const double d = std::fabs(a) - maxv;
    if (d > top_ulp / 2 || (d == top_ulp / 2 && (max_code & 1)))
      return static_cast<uint8_t>(f.ieee ? ((x < 0 ? 0x80 : 0) | 0x7C) : nan_code());
    return static_cast<uint8_t>((x < 0 ? (1 << w) : 0) | max_code);
  }
  int best = -1;
  double best_d = INFINITY;
  for (int c = 0; c < codes; ++c) {
    const double v = RefDecode(dt, c);
    if (!std::isfinite(v)) continue;
    const double d = std::fabs(v - a);
    if (d < best_d || (d == best_d && (c & 1) == 0 && (best & 1) == 1)) {
      best = c;
      best_d = d;
    }
  }
  // Signed zero: keep the sign unless the format has no -0.
  if (RefDecode(dt, best) == 0) return static_cast<uint8_t>((std::signbit(x) && !f.fnuz) ? (1 << w) : 0);
  return static_cast<uint8_t>(best);
}

std::vector<float> CastInputs() {
  std::vector<float> v = {0.f, -0.f, 0.3f, -0.3f, 1.f, 1.0625f, 1.125f, 1.1875f, 2.5f, 3.5f, 5.f, -5.f, 7.f, 100.f,
                          239.f, 241.f, 250.f, 448.f, 464.f, 470.f, 1000.f, 57344.f, 61440.f, 70000.f, 1e-3f, 1e-5f,
                          -1e-7f, 0.0009765625f, 0.001953125f, NAN, INFINITY, -INFINITY};
  std::vector<float> r = testing::RandomFloats(200, -300.f, 300.f, 7);
  v.insert(v.end(), r.begin(), r.end());
  return v;
}

TEST(QuantKernelsTest, CastFloatToEveryMiniFloatMatchesReference) {
  const std::vector<float> x = CastInputs();
  const int64_t n = static_cast<int64_t>(x.size());
  for (int32_t dt : {TSR_DTYPE_F8E4M3FN, TSR_DTYPE_F8E4M3FNUZ, TSR_DTYPE_F8E5M2, TSR_DTYPE_F8E5M2FNUZ, TSR_DTYPE_F4E2M1}) {
    for (int sat : {1, 0}) {
      OpTest t("Cast", "", 19);
      t.AddInput<float>({n}, x).AddOutput(dt, {n}).SetAttrInt("to", dt).SetAttrInt("saturate", sat);
      ASSERT_TRUE(t.Run().ok()) << t.last_error();
      const uint8_t* y = t.OutputBytes(0);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_EQ(static_cast<int>(y[i]), static_cast<int>(RefEncode(dt, x[i], sat != 0)))
            << plugin::DTypeName(dt) << " sat=" << sat << " x=" << x[i];
    }
  }
}

TEST(QuantKernelsTest, CastMiniFloatToFloatDecodesEveryCode) {
  for (int32_t dt : {TSR_DTYPE_F8E4M3FN, TSR_DTYPE_F8E4M3FNUZ, TSR_DTYPE_F8E5M2, TSR_DTYPE_F8E5M2FNUZ, TSR_DTYPE_F4E2M1}) {
    const int codes = dt == TSR_DTYPE_F4E2M1 ? 16 : 256;
    std::vector<uint8_t> in(codes);
    for (int c = 0; c < codes; ++c) in[c] = static_cast<uint8_t>(c);
    OpTest t("Cast", "", 19);
    t.AddInputBytes(dt, {codes}, in.data()).AddOutput(TSR_DTYPE_F32, {codes}).SetAttrInt("to", TSR_DTYPE_F32);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> y = t.Output<float>(0);
    for (int c = 0; c < codes; ++c) {
      const double want = RefDecode(dt, c);
      if (std::isnan(want)) EXPECT_TRUE(std::isnan(y[c])) << plugin::DTypeName(dt) << " code " << c;
      else EXPECT_EQ(y[c], static_cast<float>(want)) << plugin::DTypeName(dt) << " code " << c;
    }
  }
}

TEST(QuantKernelsTest, CastToInt4WrapsAndFromInt4SignExtends) {
  std::vector<float> x;
  for (int v = -9; v <= 15; ++v) x.push_back(static_cast<float>(v));
  x.push_back(2.7f);
  x.push_back(-2.7f);
  const int64_t n = static_cast<int64_t>(x.size());
  OpTest t("Cast", "", 21);
  t.AddInput<float>({n}, x).AddOutput(TSR_DTYPE_I4, {n}).SetAttrInt("to", TSR_DTYPE_I4);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  OpTest u("Cast", "", 21);
  u.AddInput<float>({n}, x).AddOutput(TSR_DTYPE_U4, {n}).SetAttrInt("to", TSR_DTYPE_U4);
  ASSERT_TRUE(u.Run().ok()) << u.last_error();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t tr = static_cast<int64_t>(x[i]);  // truncation, then wrap to 4 bits
    EXPECT_EQ(static_cast<int8_t>(t.OutputBytes(0)[i]), ((tr + 8) & 15) - 8) << x[i];
    EXPECT_EQ(u.OutputBytes(0)[i], tr & 15) << x[i];
  }
  const int8_t i4[] = {-8, -1, 0, 7};
  OpTest b("Cast", "", 21);
  b.AddInputBytes(TSR_DTYPE_I4, {4}, i4).AddOutput(TSR_DTYPE_I32, {4}).SetAttrInt("to", TSR_DTYPE_I32);
  ASSERT_TRUE(b.Run().ok()) << b.last_error();
  EXPECT_EQ(b.Output<int32_t>(0), (std::vector<int32_t>{-8, -1, 0, 7}));
}

TEST(QuantKernelsTest, CastBetweenStandardTypes) {
  // int64 -> u8 / i16 wrap; -> bool; float -> int truncates; u64 beyond 2^63.
  OpTest a("Cast");
  a.AddInput<int64_t>({4}, {300, -1, 0, 65537}).AddOutput(TSR_DTYPE_U8, {4}).SetAttrInt("to", TSR_DTYPE_U8);
  ASSERT_TRUE(a.Run().ok()) << a.last_error();
  EXPECT_EQ(a.Output<uint8_t>(0), (std::vector<uint8_t>{44, 255, 0, 1}));
  OpTest b("Cast");
  b.AddInput<int64_t>({3}, {5, 0, -2}).AddOutput(TSR_DTYPE_BOOL, {3}).SetAttrInt("to", TSR_DTYPE_BOOL);
  ASSERT_TRUE(b.Run().ok()) << b.last_error();
  EXPECT_EQ(b.Output<bool>(0), (std::vector<bool>{true, false, true}));
  OpTest c("Cast");
  c.AddInput<double>({4}, {2.9, -2.9, 1e19, NAN}).AddOutput(TSR_DTYPE_U64, {4}).SetAttrInt("to", TSR_DTYPE_U64);
  ASSERT_TRUE(c.Run().ok()) << c.last_error();
  std::vector<uint64_t> cu = c.Output<uint64_t>(0);
  EXPECT_EQ(cu[0], 2u);
  EXPECT_EQ(cu[1], static_cast<uint64_t>(-2));
  EXPECT_EQ(cu[2], 10000000000000000000ull);
  EXPECT_EQ(cu[3], 0u);
  OpTest d("Cast");
  d.AddInput<uint64_t>({2}, {std::numeric_limits<uint64_t>::max(), 7}).AddOutput(TSR_DTYPE_I64, {2}).SetAttrInt("to", TSR_DTYPE_I64);
  ASSERT_TRUE(d.Run().ok()) << d.last_error();
  EXPECT_EQ(d.Output<int64_t>(0), (std::vector<int64_t>{-1, 7}));
  // f32 -> f16 -> f32 keeps representable values; bool -> float.
  OpTest e("Cast");
  e.AddInputBool({3}, {true, false, true}).AddOutput(TSR_DTYPE_F64, {3}).SetAttrInt("to", TSR_DTYPE_F64);
  ASSERT_TRUE(e.Run().ok()) << e.last_error();
  EXPECT_EQ(e.Output<double>(0), (std::vector<double>{1, 0, 1}));
  OpTest f("Cast");
  f.AddInput<float>({3}, {1.5f, -65504.f, 1e6f}).AddOutput(TSR_DTYPE_F16, {3}).SetAttrInt("to", TSR_DTYPE_F16);
  ASSERT_TRUE(f.Run().ok()) << f.last_error();
  EXPECT_EQ(f.Output<uint16_t>(0), (std::vector<uint16_t>{0x3E00, 0xFBFF, 0x7C00}));
}

TEST(QuantKernelsTest, CastToE8M0UsesRoundMode) {
  const std::vector<float> x = {0.f, 0.124f, 0.25f, 1.1f, 1.6f, 8.f};
  for (const char* mode : {"up", "down", "nearest"}) {
    OpTest t("Cast", "", 24);
    t.AddInput<float>({6}, x).AddOutput(TSR_DTYPE_F8E8M0, {6}).SetAttrInt("to", TSR_DTYPE_F8E8M0);
    t.SetAttrString("round_mode", mode);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    const std::string m = mode;
    const std::vector<int> want = m == "up" ? std::vector<int>{0x00, 0x7c, 0x7d, 0x80, 0x80, 0x82}
                                  : m == "down" ? std::vector<int>{0x00, 0x7b, 0x7d, 0x7f, 0x7f, 0x82}
                                                : std::vector<int>{0x00, 0x7c, 0x7d, 0x7f, 0x80, 0x82};
    for (int i = 0; i < 6; ++i) EXPECT_EQ(t.OutputBytes(0)[i], want[i]) << mode << " x=" << x[i];
  }
}

TEST(QuantKernelsTest, CastLikeTakesTheSecondInputsType) {
  OpTest t("CastLike", "", 19);
  t.AddInput<float>({3}, {0.5f, 300.f, -1.f}).AddInputBytes(TSR_DTYPE_F8E5M2, {1}, "\0").AddOutput(TSR_DTYPE_F8E5M2, {3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(t.OutputBytes(0)[i], RefEncode(TSR_DTYPE_F8E5M2, std::vector<float>{0.5f, 300.f, -1.f}[i], true));
}

TEST(QuantKernelsTest, CastErrorsNameNodeAndReason) {
  OpTest s("Cast");
  s.AddInput<float>({2}, {1, 2}).AddOutput(TSR_DTYPE_STRING, {2}).SetAttrInt("to", TSR_DTYPE_STRING);
  EXPECT_EQ(s.Run().code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(s.last_error().find("node 'node_Cast' (Cast)"), std::string::npos) << s.last_error();
  EXPECT_NE(s.last_error().find("string"), std::string::npos) << s.last_error();
  EXPECT_NE(s.Claim().find("string"), std::string::npos);
  OpTest r("Cast", "", 24);
  r.AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_F8E8M0, {1}).SetAttrInt("to", TSR_DTYPE_F8E8M0).SetAttrString("round_mode", "sideways");
  EXPECT_EQ(r.Run().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(r.last_error().find("round_mode"), std::string::npos) << r.last_error();
  OpTest m("Cast");
  m.AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_I32, {1}).SetAttrInt("to", TSR_DTYPE_I64);
  EXPECT_EQ(m.Run().code, TSR_ERR_INVALID_ARGUMENT);
  OpTest a("Cast");
  a.AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_I32, {1});
  EXPECT_EQ(a.Run().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(a.last_error().find("'to'"), std::string::npos) << a.last_error();
}

// ---- QuantizeLinear / DequantizeLinear -------------------------------------------------------

int64_t RefQuant(float x, float s, int64_t zp, int64_t lo, int64_t hi) {
  double r = std::nearbyint(x / s) + static_cast<double>(zp);
  return static_cast<int64_t>(std::min<double>(hi, std::max<double>(lo, r)));
}

TEST(QuantKernelsTest, QuantizeLinearPerTensorPerAxisBlocked) {
  const std::vector<float> x = testing::RandomFloats(24, -20.f, 20.f, 3);  // [2, 4, 3]
  {  // per tensor, u8 default output (no zero point)
    OpTest t("QuantizeLinear", "", 13);
    t.AddInput<float>({2, 4, 3}, x).AddInput<float>({}, {0.1f}).AddOutput(TSR_DTYPE_U8, {2, 4, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<uint8_t> y = t.Output<uint8_t>(0);
    for (int i = 0; i < 24; ++i) EXPECT_EQ(y[i], RefQuant(x[i], 0.1f, 0, 0, 255)) << i;
  }
  {  // per axis 1, i8 with zero points
    const std::vector<float> s = {0.1f, 0.2f, 0.05f, 1.f};
    const std::vector<int8_t> zp = {0, 10, -10, 3};
    OpTest t("QuantizeLinear", "", 13);
    t.AddInput<float>({2, 4, 3}, x).AddInput<float>({4}, s).AddInput<int8_t>({4}, zp).AddOutput(TSR_DTYPE_I8, {2, 4, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<int8_t> y = t.Output<int8_t>(0);
    for (int i = 0; i < 24; ++i) {
      const int c = (i / 3) % 4;
      EXPECT_EQ(y[i], RefQuant(x[i], s[c], zp[c], -128, 127)) << i;
    }
  }
  {  // blocked along axis 2 (size 3) with block 2 -> 2 blocks; int4 output
    std::vector<float> s(16);
    std::vector<int8_t> zp(16);
    for (int i = 0; i < 16; ++i) {
      s[i] = 0.5f + 0.25f * static_cast<float>(i % 5);
      zp[i] = static_cast<int8_t>(i % 3 - 1);
    }
    OpTest t("QuantizeLinear", "", 21);
    t.AddInput<float>({2, 4, 3}, x).AddInput<float>({2, 4, 2}, s).AddInputBytes(TSR_DTYPE_I4, {2, 4, 2}, zp.data());
    t.AddOutput(TSR_DTYPE_I4, {2, 4, 3}).SetAttrInt("axis", 2).SetAttrInt("block_size", 2);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    for (int i = 0; i < 24; ++i) {
      const int p = (i / 3) * 2 + (i % 3) / 2;
      EXPECT_EQ(static_cast<int8_t>(t.OutputBytes(0)[i]), RefQuant(x[i], s[p], zp[p], -8, 7)) << i;
    }
  }
  {  // float8 output saturates by default and ignores no zero point
    OpTest t("QuantizeLinear", "", 19);
    t.AddInput<float>({3}, {1.f, 1000.f, -0.3f}).AddInput<float>({}, {0.5f});
    t.AddInputBytes(TSR_DTYPE_F8E4M3FN, {}, "\0").AddOutput(TSR_DTYPE_F8E4M3FN, {3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.OutputBytes(0)[0], RefEncode(TSR_DTYPE_F8E4M3FN, 2.f, true));
    EXPECT_EQ(t.OutputBytes(0)[1], 0x7E);
    EXPECT_EQ(t.OutputBytes(0)[2], RefEncode(TSR_DTYPE_F8E4M3FN, -0.6f, true));
  }
}

TEST(QuantKernelsTest, QuantizeLinearRoundsHalfToEven) {
  OpTest t("QuantizeLinear", "", 13);
  t.AddInput<float>({4}, {0.5f, 1.5f, 2.5f, -0.5f}).AddInput<float>({}, {1.f}).AddInput<int8_t>({}, {0});
  t.AddOutput(TSR_DTYPE_I8, {4});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int8_t>(0), (std::vector<int8_t>{0, 2, 2, 0}));
}

TEST(QuantKernelsTest, QuantizeLinearDividesInHalfPrecisionForHalfInputs) {
  // 0.25 / f16(0.1) = 2.50061 in f32 (rint -> 3) but 2.5 in f16 (rint -> 2).
  OpTest h("QuantizeLinear", "", 19);
  h.AddInput<uint16_t>(TSR_DTYPE_F16, {1}, {0x3400}).AddInput<uint16_t>(TSR_DTYPE_F16, {}, {0x2E66});
  h.AddOutput(TSR_DTYPE_U8, {1});
  ASSERT_TRUE(h.Run().ok()) << h.last_error();
  EXPECT_EQ(h.Output<uint8_t>(0)[0], 2);
  OpTest f("QuantizeLinear", "", 21);  // f16 x with an f32 scale divides in f32
  f.AddInput<uint16_t>(TSR_DTYPE_F16, {1}, {0x3400}).AddInput<float>({}, {0.0999755859375f});
  f.AddOutput(TSR_DTYPE_U8, {1});
  ASSERT_TRUE(f.Run().ok()) << f.last_error();
  EXPECT_EQ(f.Output<uint8_t>(0)[0], 3);
}

TEST(QuantKernelsTest, DequantizeLinearPerAxisAndF16Output) {
  const std::vector<uint8_t> x = {0, 10, 128, 255, 3, 7};
  OpTest t("DequantizeLinear", "", 13);
  t.AddInput<uint8_t>({2, 3}, x).AddInput<float>({3}, {0.5f, 2.f, 0.25f}).AddInput<uint8_t>({3}, {0, 10, 128});
  t.AddOutput(TSR_DTYPE_F32, {2, 3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> want(6);
  const float s[3] = {0.5f, 2.f, 0.25f};
  const int zp[3] = {0, 10, 128};
  for (int i = 0; i < 6; ++i) want[i] = static_cast<float>(x[i] - zp[i % 3]) * s[i % 3];
  EXPECT_TRUE(testing::AllClose(t.Output<float>(0), want, 0, 0));
  // i4 input, f16 scale -> f16 output.
  const int8_t q[] = {-8, -1, 0, 7};
  const uint16_t half_quarter = 0x3400;  // 0.25
  OpTest h("DequantizeLinear", "", 21);
  h.AddInputBytes(TSR_DTYPE_I4, {4}, q).AddInput<uint16_t>(TSR_DTYPE_F16, {}, {half_quarter}).AddOutput(TSR_DTYPE_F16, {4});
  ASSERT_TRUE(h.Run().ok()) << h.last_error();
  EXPECT_EQ(h.Output<uint16_t>(0), (std::vector<uint16_t>{0xC000, 0xB400, 0x0000, 0x3F00}));  // -2, -0.25, 0, 1.75
}

TEST(QuantKernelsTest, QuantizeErrorsNameTheProblem) {
  OpTest t("QuantizeLinear", "", 13);
  t.AddInput<float>({2, 3}, std::vector<float>(6, 1.f)).AddInput<float>({2}, {1.f, 1.f}).AddOutput(TSR_DTYPE_U8, {2, 3});
  EXPECT_EQ(t.Run().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(t.last_error().find("per-axis"), std::string::npos) << t.last_error();
  EXPECT_NE(t.last_error().find("node_QuantizeLinear"), std::string::npos) << t.last_error();
  OpTest z("QuantizeLinear", "", 13);
  z.AddInput<float>({2}, {1.f, 2.f}).AddInput<float>({}, {1.f}).AddInput<int8_t>({}, {0}).AddOutput(TSR_DTYPE_U8, {2});
  EXPECT_EQ(z.Run().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(z.last_error().find("y_zero_point"), std::string::npos) << z.last_error();
  OpTest b("DequantizeLinear", "", 21);
  b.AddInput<uint8_t>({2, 4}, std::vector<uint8_t>(8, 1)).AddInput<float>({2, 3}, std::vector<float>(6, 1.f));
  b.AddOutput(TSR_DTYPE_F32, {2, 4}).SetAttrInt("axis", 1).SetAttrInt("block_size", 2);
  EXPECT_EQ(b.Run().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(b.last_error().find("blocked"), std::string::npos) << b.last_error();
  OpTest f("DequantizeLinear", "", 13);
  f.AddInput<float>({2}, {1.f, 2.f}).AddInput<float>({}, {1.f}).AddOutput(TSR_DTYPE_F32, {2});
  EXPECT_EQ(f.Run().code, TSR_ERR_UNSUPPORTED);
}

TEST(QuantKernelsTest, DynamicQuantizeLinearMatchesReference) {
  const std::vector<float> x = {0.f, 2.f, -3.f, -2.5f, 1.34f, 0.5f};
  OpTest t("DynamicQuantizeLinear", "", 11);
  t.AddInput<float>({2, 3}, x).AddOutput(TSR_DTYPE_U8, {2, 3}).AddOutput(TSR_DTYPE_F32, {}).AddOutput(TSR_DTYPE_U8, {});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  const float scale = (2.f - -3.f) / 255.f;
  const float zp = std::nearbyint(std::min(255.f, std::max(0.f, 0.f - -3.f / scale)));
  EXPECT_EQ(t.Output<float>(1)[0], scale);
  EXPECT_EQ(t.Output<uint8_t>(2)[0], static_cast<uint8_t>(zp));
  std::vector<uint8_t> y = t.Output<uint8_t>(0);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(y[i], static_cast<uint8_t>(std::min(255.f, std::max(0.f, std::nearbyint(x[i] / scale) + zp)))) << i;
  OpTest bad("DynamicQuantizeLinear", "", 11);
  bad.AddInput<double>({1}, {1.0}).AddOutput(TSR_DTYPE_U8, {1}).AddOutput(TSR_DTYPE_F32, {}).AddOutput(TSR_DTYPE_U8, {});
  EXPECT_EQ(bad.Run().code, TSR_ERR_UNSUPPORTED);
}

// ---- integer matmul / conv ----------------------------------------------------------------------

TEST(QuantKernelsTest, MatMulIntegerBroadcastsBatchAndPerRowZeroPoints) {
  // A [2, 3, 4] u8, B [4, 2] i8, a_zp per row [3], b_zp per column [2].
  std::vector<uint8_t> a(24);
  std::vector<int8_t> b(8);
  for (int i = 0; i < 24; ++i) a[i] = static_cast<uint8_t>((i * 37) % 256);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<int8_t>(i * 29 - 100);
  const std::vector<uint8_t> azp = {1, 128, 255};
  const std::vector<int8_t> bzp = {-3, 5};
  OpTest t("MatMulInteger", "", 10);
  t.AddInput<uint8_t>({2, 3, 4}, a).AddInput<int8_t>({4, 2}, b).AddInput<uint8_t>({3}, azp).AddInput<int8_t>({2}, bzp);
  t.AddOutput(TSR_DTYPE_I32, {2, 3, 2});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<int32_t> y = t.Output<int32_t>(0);
  for (int bt = 0; bt < 2; ++bt)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 2; ++j) {
        int32_t s = 0;
        for (int k = 0; k < 4; ++k) s += (a[bt * 12 + i * 4 + k] - azp[i]) * (b[k * 2 + j] - bzp[j]);
        EXPECT_EQ(y[bt * 6 + i * 2 + j], s) << bt << "," << i << "," << j;
      }
  OpTest bad("MatMulInteger", "", 10);
  bad.AddInput<float>({1, 1}, {1.f}).AddInput<uint8_t>({1, 1}, {1}).AddOutput(TSR_DTYPE_I32, {1, 1});
  EXPECT_EQ(bad.Run().code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(bad.last_error().find("expected u8 or i8"), std::string::npos) << bad.last_error();
  OpTest k("MatMulInteger", "", 10);
  k.AddInput<uint8_t>({1, 3}, {1, 2, 3}).AddInput<uint8_t>({2, 1}, {1, 2}).AddOutput(TSR_DTYPE_I32, {1, 1});
  EXPECT_EQ(k.Run().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(k.last_error().find("inner dims"), std::string::npos) << k.last_error();
}

TEST(QuantKernelsTest, QLinearMatMulRequantizesAndSaturates) {
  const std::vector<uint8_t> a = {208, 236, 0, 238, 3, 214, 255, 29};
  const std::vector<uint8_t> b = {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247};
  OpTest t("QLinearMatMul", "", 10);
  t.AddInput<uint8_t>({2, 4}, a).AddInput<float>({}, {0.0066f}).AddInput<uint8_t>({}, {113});
  t.AddInput<uint8_t>({4, 3}, b).AddInput<float>({}, {0.00705f}).AddInput<uint8_t>({}, {114});
  t.AddInput<float>({}, {0.0107f}).AddInput<uint8_t>({}, {118}).AddOutput(TSR_DTYPE_U8, {2, 3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  // ONNX's own expected values (test_qlinearmatmul_2D_uint8_float32).
  EXPECT_EQ(t.Output<uint8_t>(0), (std::vector<uint8_t>{168, 115, 255, 1, 66, 151}));
  OpTest bad("QLinearMatMul", "", 10);
  bad.AddInput<uint8_t>({1, 1}, {1}).AddInput<float>({}, {1.f}).AddInput<uint8_t>({}, {0});
  bad.AddInput<uint8_t>({1, 1}, {1}).AddInput<float>({}, {1.f}).AddInput<int8_t>({}, {0});
  bad.AddInput<float>({}, {1.f}).AddInput<uint8_t>({}, {0}).AddOutput(TSR_DTYPE_U8, {1, 1});
  EXPECT_EQ(bad.Run().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(bad.last_error().find("b_zero_point"), std::string::npos) << bad.last_error();
}

// Naive grouped 2-D conv on shifted ints.
std::vector<int32_t> RefConv2D(const std::vector<int32_t>& x, const std::vector<int32_t>& w, int n, int c, int h, int wd,
                               int m, int kh, int kw, int group, int pad, int stride, int oh, int ow) {
  std::vector<int32_t> y(static_cast<size_t>(n * m * oh * ow), 0);
  const int cg = c / group, mg = m / group;
  for (int nn = 0; nn < n; ++nn)
    for (int mm = 0; mm < m; ++mm)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          int32_t s = 0;
          for (int ci = 0; ci < cg; ++ci)
            for (int a = 0; a < kh; ++a)
              for (int b = 0; b < kw; ++b) {
                const int ih = i * stride - pad + a, iw = j * stride - pad + b;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                const int cc = (mm / mg) * cg + ci;
                s += x[((nn * c + cc) * h + ih) * wd + iw] * w[((mm * cg + ci) * kh + a) * kw + b];
              }
          y[((nn * m + mm) * oh + i) * ow + j] = s;
        }
  return y;
}

TEST(QuantKernelsTest, ConvIntegerGroupsPadsStrides) {
  const int n = 1, c = 4, h = 5, wd = 5, m = 2, k = 3, group = 2, pad = 1, stride = 2, oh = 3, ow = 3;
  std::vector<uint8_t> x(n * c * h * wd), w(m * (c / group) * k * k);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<uint8_t>((i * 53) % 251);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<uint8_t>((i * 17) % 200);
  OpTest t("ConvInteger", "", 10);
  t.AddInput<uint8_t>({n, c, h, wd}, x).AddInput<uint8_t>({m, c / group, k, k}, w).AddInput<uint8_t>({}, {7});
  t.AddInput<uint8_t>({m}, {3, 100}).AddOutput(TSR_DTYPE_I32, {n, m, oh, ow});
  t.SetAttrInt("group", group).SetAttrInts("pads", {pad, pad, pad, pad}).SetAttrInts("strides", {stride, stride});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<int32_t> xs(x.begin(), x.end()), ws(w.begin(), w.end());
  for (int32_t& v : xs) v -= 7;
  for (size_t i = 0; i < ws.size(); ++i) ws[i] -= i < ws.size() / 2 ? 3 : 100;
  EXPECT_EQ(t.Output<int32_t>(0), RefConv2D(xs, ws, n, c, h, wd, m, k, k, group, pad, stride, oh, ow));
  OpTest bad("ConvInteger", "", 10);
  bad.AddInput<uint8_t>({1, 3, 2, 2}, std::vector<uint8_t>(12, 1)).AddInput<uint8_t>({2, 2, 1, 1}, {1, 1, 1, 1});
  bad.AddOutput(TSR_DTYPE_I32, {1, 2, 2, 2});
  EXPECT_EQ(bad.Run().code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(bad.last_error().find("group"), std::string::npos) << bad.last_error();
}

TEST(QuantKernelsTest, QLinearConvPerChannelScaleAndBias) {
  const int c = 2, h = 3, wd = 3, m = 2, k = 2, oh = 2, ow = 2;
  std::vector<int8_t> x(c * h * wd), w(m * c * k * k);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int8_t>(static_cast<int>(i * 23 % 255) - 127);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>(static_cast<int>(i * 41 % 255) - 127);
  const std::vector<float> ws = {0.01f, 0.002f};
  const std::vector<int32_t> bias = {100, -5000};
  OpTest t("QLinearConv", "", 10);
  t.AddInput<int8_t>({1, c, h, wd}, x).AddInput<float>({}, {0.05f}).AddInput<int8_t>({}, {-2});
  t.AddInput<int8_t>({m, c, k, k}, w).AddInput<float>({m}, ws).AddInput<int8_t>({m}, {0, 0});
  t.AddInput<float>({}, {0.5f}).AddInput<int8_t>({}, {4}).AddInput<int32_t>({m}, bias);
  t.AddOutput(TSR_DTYPE_I8, {1, m, oh, ow});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<int32_t> xs(x.begin(), x.end()), wsh(w.begin(), w.end());
  for (int32_t& v : xs) v += 2;
  std::vector<int32_t> acc = RefConv2D(xs, wsh, 1, c, h, wd, m, k, k, 1, 0, 1, oh, ow);
  std::vector<int8_t> y = t.Output<int8_t>(0);
  for (int i = 0; i < m * oh * ow; ++i) {
    const int mm = i / (oh * ow);
    const float mult = 0.05f * ws[mm] / 0.5f;
    const double v = std::nearbyint(static_cast<double>(acc[i] + bias[mm]) * mult + 4);
    EXPECT_EQ(y[i], static_cast<int8_t>(std::min(127.0, std::max(-128.0, v)))) << i;
  }
}

}  // namespace
}  // namespace tessera::cpu
