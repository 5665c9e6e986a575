// graph/dtype.h bulk conversions: FloatToBF16Array / FloatToHalfArray equal
// the scalar FloatToBF16 / FloatToHalf on every rule (NaNs, ties, denormals,
// overflow), over special values, a sweep of all exponents and random bits.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "graph/dtype.h"

namespace tessera {
namespace {

std::vector<float> Patterns() {
  std::vector<uint32_t> bits = {0x00000000u, 0x00000001u, 0x00007fffu, 0x00008000u, 0x00018000u, 0x007fffffu,
                                0x00800000u, 0x3f800000u, 0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u,
                                0x7f7fffffu, 0x7f7f8000u, 0x7f7f7fffu, 0x7f800000u, 0x7fc00000u, 0x7f800001u,
                                0x7fbfffffu, 0x7fffffffu, 0x477fefffu, 0x477ff000u, 0x33000000u, 0x33000001u};
  const size_t k = bits.size();
  for (size_t i = 0; i < k; ++i) bits.push_back(bits[i] | 0x80000000u);
  for (uint64_t b = 0; b <= 0xffffffffull; b += 65521ull * 13) bits.push_back(static_cast<uint32_t>(b));
  std::mt19937 gen(7);
  for (int i = 0; i < 10000; ++i) bits.push_back(gen());
  std::vector<float> f(bits.size());
  std::memcpy(f.data(), bits.data(), bits.size() * 4);
  return f;
}

TEST(DTypeBulk, FloatToBF16ArrayMatchesScalar) {
  std::vector<float> x = Patterns();
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, x.size()}) {
    std::vector<uint16_t> y(n + 4, 0xbeef);
    FloatToBF16Array(x.data(), y.data(), static_cast<int64_t>(n));
    for (size_t i = 0; i < n; ++i) {
      uint32_t b;
      std::memcpy(&b, &x[i], 4);
      ASSERT_EQ(y[i], FloatToBF16(x[i])) << "bits 0x" << std::hex << b;
    }
    for (size_t i = n; i < n + 4; ++i) ASSERT_EQ(y[i], 0xbeef) << "wrote past n = " << n;
  }
}

TEST(DTypeBulk, FloatToHalfArrayMatchesScalar) {
  std::vector<float> x = Patterns();
  std::vector<uint16_t> y(x.size() + 4, 0xbeef);
  FloatToHalfArray(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], FloatToHalf(x[i])) << "element " << i;
  for (size_t i = x.size(); i < y.size(); ++i) ASSERT_EQ(y[i], 0xbeef);
}

}  // namespace
}  // namespace tessera
