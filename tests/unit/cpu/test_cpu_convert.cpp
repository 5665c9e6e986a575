// simd_convert.h: the bulk f32 <-> bf16 / f16 conversions must equal the
// scalar conversions of plugin_util.h bit for bit (NaN payloads, signed
// zeros, denormals, ties, overflow), on both ISAs and every tail length;
// Cast's fast paths must give what the double-staged path gives.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "backends/common/plugin_util.h"
#include "backends/cpu/simd_convert.h"
#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu::testing {
namespace {

float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t BitsOf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// f32 bit patterns that exercise every rule of the scalar conversions.
std::vector<uint32_t> InterestingF32() {
  std::vector<uint32_t> v = {
      0x00000000u, 0x80000000u,              // +-0
      0x00000001u, 0x80000001u, 0x00007fffu, 0x00008000u, 0x00018000u, 0x00008001u,  // denormals, ties
      0x007fffffu, 0x807fffffu, 0x00800000u, 0x80800000u,                            // denormal max, FLT_MIN
      0x3f800000u, 0xbf800000u, 0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u,  // 1 and bf16 ties
      0x7f7fffffu, 0xff7fffffu, 0x7f7f8000u, 0x7f7f7fffu,                            // overflow to inf / not
      0x7f800000u, 0xff800000u,                                                      // +-inf
      0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fa00000u, 0x7fbfffffu,  // NaNs (quiet, signalling)
      0x7fffffffu, 0xffffffffu, 0x7f810000u, 0x7f80ffffu,
      // f16 boundaries: max 65504, 65519 (rounds to max), 65520 (rounds to inf),
      // min normal 2^-14, subnormals 2^-24 and the ties around them.
      0x477fe000u, 0x477fefffu, 0x477ff000u, 0x477fffffu, 0x47800000u, 0x38800000u, 0x387fe000u, 0x33800000u,
      0x33000000u, 0x33000001u, 0x32ffffffu, 0x33c00000u, 0x34200000u, 0x38801000u, 0x38803000u, 0x387ff000u};
  std::vector<uint32_t> out;
  for (uint32_t b : v) {
    out.push_back(b);
    out.push_back(b ^ 0x80000000u);
  }
  // A strided sweep over all patterns (every exponent, varied mantissas).
  for (uint64_t b = 0; b <= 0xffffffffull; b += 65521ull * 7) out.push_back(static_cast<uint32_t>(b));
  std::mt19937 gen(42);
  for (int i = 0; i < 20000; ++i) out.push_back(gen());
  return out;
}

std::vector<const simd::ConvertFns*> Tables() {
  std::vector<const simd::ConvertFns*> t = {&simd::GenericConverts()};
  if (const simd::ConvertFns* a = simd::Avx512Converts()) t.push_back(a);
  return t;
}

const char* TableName(size_t i) { return i == 0 ? "generic" : "avx512"; }

TEST(SimdConvert, F32ToBf16MatchesScalar) {
  std::vector<uint32_t> bits = InterestingF32();
  std::vector<float> x(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) x[i] = FromBits(bits[i]);
  std::vector<uint16_t> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = plugin::FloatToBF16Bits(x[i]);
  auto tables = Tables();
  for (size_t t = 0; t < tables.size(); ++t) {
    std::vector<uint16_t> got(x.size(), 0xdead);
    tables[t]->f32_to_bf16(x.data(), got.data(), static_cast<int64_t>(x.size()));
    int bad = 0;
    for (size_t i = 0; i < x.size() && bad < 5; ++i)
      if (got[i] != want[i]) {
        ++bad;
        ADD_FAILURE() << TableName(t) << ": f32 0x" << std::hex << bits[i] << " -> 0x" << got[i] << ", want 0x"
                      << want[i];
      }
  }
}

TEST(SimdConvert, F32ToF16MatchesScalar) {
  std::vector<uint32_t> bits = InterestingF32();
  std::vector<float> x(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) x[i] = FromBits(bits[i]);
  std::vector<uint16_t> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = plugin::FloatToHalfBits(x[i]);
  auto tables = Tables();
  for (size_t t = 0; t < tables.size(); ++t) {
    std::vector<uint16_t> got(x.size(), 0xdead);
    tables[t]->f32_to_f16(x.data(), got.data(), static_cast<int64_t>(x.size()));
    int bad = 0;
    for (size_t i = 0; i < x.size() && bad < 5; ++i)
      if (got[i] != want[i]) {
        ++bad;
        ADD_FAILURE() << TableName(t) << ": f32 0x" << std::hex << bits[i] << " -> 0x" << got[i] << ", want 0x"
                      << want[i];
      }
  }
}

// Every 16-bit pattern, both formats.
TEST(SimdConvert, Bf16AndF16ToF32AllPatterns) {
  std::vector<uint16_t> h(65536);
  for (uint32_t i = 0; i < 65536; ++i) h[i] = static_cast<uint16_t>(i);
  auto tables = Tables();
  for (size_t t = 0; t < tables.size(); ++t) {
    std::vector<float> got(h.size());
    tables[t]->bf16_to_f32(h.data(), got.data(), 65536);
    int bad = 0;
    for (uint32_t i = 0; i < 65536 && bad < 5; ++i)
      if (BitsOf(got[i]) != BitsOf(plugin::BF16BitsToFloat(h[i]))) {
        ++bad;
        ADD_FAILURE() << TableName(t) << ": bf16 0x" << std::hex << i << " -> 0x" << BitsOf(got[i]);
      }
    tables[t]->f16_to_f32(h.data(), got.data(), 65536);
    bad = 0;
    for (uint32_t i = 0; i < 65536 && bad < 5; ++i)
      if (BitsOf(got[i]) != BitsOf(plugin::HalfBitsToFloat(h[i]))) {
        ++bad;
        ADD_FAILURE() << TableName(t) << ": f16 0x" << std::hex << i << " -> 0x" << BitsOf(got[i]) << ", want 0x"
                      << BitsOf(plugin::HalfBitsToFloat(h[i]));
      }
  }
}

// Tails of every length up to two vectors plus some: no element is missed
// and nothing past n is written.
TEST(SimdConvert, TailsWriteExactlyN) {
  const std::vector<float> src = RandomFloats(80, -3.f, 3.f, 5);
  std::vector<uint16_t> hsrc(80);
  for (int i = 0; i < 80; ++i) hsrc[i] = plugin::FloatToBF16Bits(src[i]);
  auto tables = Tables();
  for (size_t t = 0; t < tables.size(); ++t)
    for (int64_t n = 0; n <= 70; ++n) {
      std::vector<uint16_t> h(n + 8, 0xbeef);
      tables[t]->f32_to_bf16(src.data(), h.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[i], plugin::FloatToBF16Bits(src[i])) << TableName(t) << " n=" << n;
      for (int64_t i = n; i < n + 8; ++i) ASSERT_EQ(h[i], 0xbeef) << TableName(t) << " n=" << n << " wrote past the end";
      std::fill(h.begin(), h.end(), 0xbeef);
      tables[t]->f32_to_f16(src.data(), h.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[i], plugin::FloatToHalfBits(src[i])) << TableName(t) << " n=" << n;
      for (int64_t i = n; i < n + 8; ++i) ASSERT_EQ(h[i], 0xbeef) << TableName(t) << " n=" << n << " wrote past the end";
      std::vector<float> f(n + 8, 123.f);
      tables[t]->bf16_to_f32(hsrc.data(), f.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(f[i], plugin::BF16BitsToFloat(hsrc[i])) << TableName(t) << " n=" << n;
      for (int64_t i = n; i < n + 8; ++i) ASSERT_EQ(f[i], 123.f) << TableName(t) << " n=" << n << " wrote past the end";
      std::fill(f.begin(), f.end(), 123.f);
      tables[t]->f16_to_f32(hsrc.data(), f.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(BitsOf(f[i]), BitsOf(plugin::HalfBitsToFloat(hsrc[i]))) << TableName(t) << " n=" << n;
      for (int64_t i = n; i < n + 8; ++i) ASSERT_EQ(f[i], 123.f) << TableName(t) << " n=" << n << " wrote past the end";
    }
}

TEST(SimdConvert, IsaSelection) {
  EXPECT_TRUE(simd::SetConvertIsaForTesting(simd::Isa::kGeneric));
  EXPECT_EQ(&simd::Converts(), &simd::GenericConverts());
  if (simd::Avx512Converts()) {
    EXPECT_TRUE(simd::SetConvertIsaForTesting(simd::Isa::kAvx512));
    EXPECT_EQ(&simd::Converts(), simd::Avx512Converts());
  } else {
    EXPECT_FALSE(simd::SetConvertIsaForTesting(simd::Isa::kAvx512));
    EXPECT_EQ(&simd::Converts(), &simd::GenericConverts());
  }
}

// ---- Cast through the kernel (fast paths, both ISAs, several threads' chunks) ----

// Cast of `bits` (f32 patterns) from f32 to `to` and back, compared with the scalar conversions.
void CheckCastRoundTrip(int32_t to, const std::vector<uint32_t>& bits) {
  const int64_t n = static_cast<int64_t>(bits.size());
  std::vector<float> x(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) x[i] = FromBits(bits[i]);
  auto narrow = [&](float f) { return to == TSR_DTYPE_BF16 ? plugin::FloatToBF16Bits(f) : plugin::FloatToHalfBits(f); };
  auto widen = [&](uint16_t h) { return to == TSR_DTYPE_BF16 ? plugin::BF16BitsToFloat(h) : plugin::HalfBitsToFloat(h); };

  OpTest down("Cast");
  down.AddInput<float>({n}, x);
  down.SetAttrInt("to", to);
  down.AddOutput(to, {n});
  ASSERT_TRUE(down.Run().ok()) << down.last_error();
  std::vector<uint16_t> h = down.Output<uint16_t>(0);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[i], narrow(x[i])) << "element " << i << " bits 0x" << std::hex << bits[i];

  OpTest up("Cast");
  up.AddInput<uint16_t>(to, {n}, h);
  up.SetAttrInt("to", TSR_DTYPE_F32);
  up.AddOutput(TSR_DTYPE_F32, {n});
  ASSERT_TRUE(up.Run().ok()) << up.last_error();
  std::vector<float> y = up.Output<float>(0);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(BitsOf(y[i]), BitsOf(widen(h[i]))) << "element " << i;
}

class CastFastPath : public ::testing::TestWithParam<simd::Isa> {
 protected:
  void SetUp() override {
    if (!simd::SetConvertIsaForTesting(GetParam())) GTEST_SKIP() << "ISA not supported on this CPU";
  }
  void TearDown() override {
    if (!simd::SetConvertIsaForTesting(simd::Isa::kAvx512)) simd::SetConvertIsaForTesting(simd::Isa::kGeneric);
  }
};

TEST_P(CastFastPath, Bf16RoundTrip) {
  std::vector<uint32_t> bits = InterestingF32();  // > 2 x 16384 elements: split across ParallelFor chunks
  CheckCastRoundTrip(TSR_DTYPE_BF16, bits);
}

TEST_P(CastFastPath, F16RoundTrip) { CheckCastRoundTrip(TSR_DTYPE_F16, InterestingF32()); }

// Odd sizes (tails inside ParallelFor chunks) and 0 elements.
TEST_P(CastFastPath, OddSizes) {
  for (int64_t n : {0, 1, 17, 16385, 40001}) {
    std::vector<float> x = RandomFloats(n, -100.f, 100.f, static_cast<uint32_t>(n) + 1);
    std::vector<uint32_t> bits(x.size());
    for (size_t i = 0; i < x.size(); ++i) bits[i] = BitsOf(x[i]);
    CheckCastRoundTrip(TSR_DTYPE_BF16, bits);
    CheckCastRoundTrip(TSR_DTYPE_F16, bits);
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, CastFastPath, ::testing::Values(simd::Isa::kGeneric, simd::Isa::kAvx512),
                         [](const ::testing::TestParamInfo<simd::Isa>& i) {
                           return std::string(simd::IsaName(i.param));
                         });

// f64 -> bf16 is not a fast path: it keeps rounding through f32 as before.
TEST(CastFastPath, F64ToBf16StillRoundsThroughF32) {
  std::vector<double> x = {1.0 + 1e-12, -3.00390625, 1e300, std::numeric_limits<double>::quiet_NaN()};
  OpTest t("Cast");
  t.AddInput<double>({4}, x);
  t.SetAttrInt("to", TSR_DTYPE_BF16);
  t.AddOutput(TSR_DTYPE_BF16, {4});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<uint16_t> h = t.Output<uint16_t>(0);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(h[i], plugin::FloatToBF16Bits(static_cast<float>(x[i]))) << i;
}

TEST(CastFastPath, MismatchedOutputIsAnError) {
  OpTest t("Cast");
  t.AddInput<float>({4}, {1, 2, 3, 4});
  t.SetAttrInt("to", TSR_DTYPE_BF16);
  t.AddOutput(TSR_DTYPE_BF16, {5});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("node_Cast"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("5 elements"), std::string::npos) << e.message;

  OpTest u("Cast");
  u.AddInput<float>({4}, {1, 2, 3, 4});
  u.SetAttrInt("to", TSR_DTYPE_BF16);
  u.AddOutput(TSR_DTYPE_F16, {4});
  e = u.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("differs from the cast target"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace tessera::cpu::testing
