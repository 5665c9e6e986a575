// DFT, STFT, window and MelWeightMatrix CPU kernels against naive references,
// plus their input validation.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using testing::AllClose;
using testing::OpTest;
using Cplx = std::complex<double>;

// Naive DFT of n points (x zero-padded/truncated to n).
std::vector<Cplx> NaiveDft(const std::vector<Cplx>& x, int64_t n, bool inverse) {
  std::vector<Cplx> y(static_cast<size_t>(n));
  const double sgn = inverse ? 1.0 : -1.0;
  for (int64_t k = 0; k < n; ++k) {
    Cplx acc(0, 0);
    for (int64_t j = 0; j < n && j < static_cast<int64_t>(x.size()); ++j)
      acc += x[static_cast<size_t>(j)] * std::polar(1.0, sgn * 2 * M_PI * static_cast<double>(j * k) / static_cast<double>(n));
    y[static_cast<size_t>(k)] = inverse ? acc / static_cast<double>(n) : acc;
  }
  return y;
}

TEST(DftKernel, RealForwardAlongAxisMatchesNaive) {
  // Lengths 8 (radix-2 path) and 6 (direct path), with dft_length padding.
  for (int64_t len : {8, 6}) {
    for (int64_t n : {len, len + 3}) {
      const int64_t B = 2;
      std::vector<float> x = testing::RandomFloats(B * len, -1.f, 1.f, static_cast<uint32_t>(len + n));
      OpTest t("DFT", "", 20);
      t.AddInput<float>({B, len, 1}, x);
      t.AddInput<int64_t>({}, {n}, true);
      t.AddInput<int64_t>({}, {1}, true);
      t.AddOutput(TSR_DTYPE_F32, {B, n, 2});
      ASSERT_TRUE(t.Run().ok()) << t.last_error();
      std::vector<float> expect;
      for (int64_t b = 0; b < B; ++b) {
        std::vector<Cplx> s;
        for (int64_t i = 0; i < len; ++i) s.emplace_back(x[static_cast<size_t>(b * len + i)], 0.0);
        for (const Cplx& c : NaiveDft(s, n, false)) {
          expect.push_back(static_cast<float>(c.real()));
          expect.push_back(static_cast<float>(c.imag()));
        }
      }
      EXPECT_TRUE(AllClose(t.Output<float>(0), expect, 1e-4f, 1e-5f)) << len << " " << n;
    }
  }
}

TEST(DftKernel, InverseOnesidedAndOpset17AxisAttribute) {
  const int64_t R = 3, N = 5;
  std::vector<float> x = testing::RandomFloats(R * N * 2, -1.f, 1.f, 9);
  OpTest t("DFT", "", 17);
  t.AddInput<float>({N, R, 2}, x);  // transform along axis 0
  t.AddOutput(TSR_DTYPE_F32, {N, R, 2});
  t.SetAttrInt("axis", 0);
  t.SetAttrInt("inverse", 1);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> expect(static_cast<size_t>(N * R * 2));
  for (int64_t r = 0; r < R; ++r) {
    std::vector<Cplx> s;
    for (int64_t i = 0; i < N; ++i)
      s.emplace_back(x[static_cast<size_t>((i * R + r) * 2)], x[static_cast<size_t>((i * R + r) * 2 + 1)]);
    std::vector<Cplx> y = NaiveDft(s, N, true);
    for (int64_t i = 0; i < N; ++i) {
      expect[static_cast<size_t>((i * R + r) * 2)] = static_cast<float>(y[static_cast<size_t>(i)].real());
      expect[static_cast<size_t>((i * R + r) * 2 + 1)] = static_cast<float>(y[static_cast<size_t>(i)].imag());
    }
  }
  EXPECT_TRUE(AllClose(t.Output<float>(0), expect, 1e-4f, 1e-5f));

  OpTest o("DFT", "", 17);
  o.AddInput<float>({1, 8, 1}, {1, 0, 0, 0, 0, 0, 0, 0});
  o.AddOutput(TSR_DTYPE_F32, {1, 5, 2});
  o.SetAttrInt("onesided", 1);
  ASSERT_TRUE(o.Run().ok()) << o.last_error();
  EXPECT_TRUE(AllClose(o.Output<float>(0), {1, 0, 1, 0, 1, 0, 1, 0, 1, 0}));  // impulse -> flat spectrum
}

TEST(DftKernel, RejectsBadInputs) {
  OpTest t("DFT", "", 20);
  t.AddInput<float>({2, 4, 3}, std::vector<float>(24, 0.f));
  t.AddOutput(TSR_DTYPE_F32, {2, 4, 2});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("last dim of 1 or 2"), std::string::npos) << e.message;

  OpTest a("DFT", "", 20);
  a.AddInput<float>({2, 4, 1}, std::vector<float>(8, 0.f));
  a.AddMissingInput();
  a.AddInput<int64_t>({}, {2}, true);  // the last dim cannot be the signal axis
  a.AddOutput(TSR_DTYPE_F32, {2, 4, 2});
  e = a.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("axis 2 out of range"), std::string::npos) << e.message;

  OpTest c("DFT", "", 20);
  c.AddInput<float>({2, 4, 1}, std::vector<float>(8, 0.f));
  c.AddInput<int64_t>({}, {4}, false);
  c.AddOutput(TSR_DTYPE_F32, {2, 4, 2});
  EXPECT_EQ(c.Create().code, TSR_ERR_UNSUPPORTED);
}

TEST(StftKernel, WindowedFramesMatchNaive) {
  const int64_t L = 20, step = 4, F = 8;
  std::vector<float> x = testing::RandomFloats(L, -1.f, 1.f, 5);
  std::vector<float> w = testing::RandomFloats(F, 0.f, 1.f, 6);
  OpTest t("STFT", "", 17);
  t.AddInput<float>({1, L, 1}, x);
  t.AddInput<int64_t>({}, {step}, true);
  t.AddInput<float>({F}, w);
  t.AddOutput(TSR_DTYPE_F32, {1, 4, 5, 2});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> expect;
  for (int64_t f = 0; f < 4; ++f) {
    std::vector<Cplx> s;
    for (int64_t k = 0; k < F; ++k)
      s.emplace_back(static_cast<double>(x[static_cast<size_t>(f * step + k)]) * w[static_cast<size_t>(k)], 0.0);
    std::vector<Cplx> y = NaiveDft(s, F, false);
    for (int64_t k = 0; k < 5; ++k) {
      expect.push_back(static_cast<float>(y[static_cast<size_t>(k)].real()));
      expect.push_back(static_cast<float>(y[static_cast<size_t>(k)].imag()));
    }
  }
  EXPECT_TRUE(AllClose(t.Output<float>(0), expect, 1e-4f, 1e-5f));
}

TEST(StftKernel, RejectsFrameLongerThanSignal) {
  OpTest t("STFT", "", 17);
  t.AddInput<float>({1, 4, 1}, {1, 2, 3, 4});
  t.AddInput<int64_t>({}, {1}, true);
  t.AddMissingInput();
  t.AddInput<int64_t>({}, {8}, true);
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 5, 2});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("frame_length 8"), std::string::npos) << e.message;
}

TEST(WindowKernels, MatchFormulas) {
  const int64_t N = 7;
  for (const char* op : {"HannWindow", "HammingWindow", "BlackmanWindow"}) {
    for (int periodic = 0; periodic <= 1; ++periodic) {
      OpTest t(op, "", 17);
      t.AddInput<int32_t>({}, {static_cast<int32_t>(N)}, true);
      t.AddOutput(TSR_DTYPE_F32, {N});
      t.SetAttrInt("periodic", periodic);
      ASSERT_TRUE(t.Run().ok()) << t.last_error();
      const double d = periodic ? N : N - 1;
      std::vector<float> expect;
      for (int64_t i = 0; i < N; ++i) {
        const double a = 2 * M_PI * static_cast<double>(i) / d;
        double v = std::string(op) == "HannWindow"      ? 0.5 - 0.5 * std::cos(a)
                   : std::string(op) == "HammingWindow" ? 25.0 / 46.0 - 21.0 / 46.0 * std::cos(a)
                                                        : 0.42 - 0.5 * std::cos(a) + 0.08 * std::cos(2 * a);
        expect.push_back(static_cast<float>(v));
      }
      EXPECT_TRUE(AllClose(t.Output<float>(0), expect, 1e-5f, 1e-6f)) << op << " periodic " << periodic;
    }
  }
}

TEST(WindowKernels, RejectNonConstantOrNegativeSize) {
  OpTest t("HannWindow", "", 17);
  t.AddInput<int64_t>({}, {4}, false);
  t.AddOutput(TSR_DTYPE_F32, {4});
  EXPECT_EQ(t.Create().code, TSR_ERR_UNSUPPORTED);
  OpTest n("HannWindow", "", 17);
  n.AddInput<int64_t>({}, {-2}, true);
  n.AddOutput(TSR_DTYPE_F32, {0});
  Err e = n.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("negative"), std::string::npos) << e.message;
}

TEST(MelWeightMatrixKernel, TrianglesPeakAtOne) {
  OpTest t("MelWeightMatrix", "", 17);
  t.AddInput<int64_t>({}, {4}, true);
  t.AddInput<int64_t>({}, {32}, true);
  t.AddInput<int64_t>({}, {8000}, true);
  t.AddInput<float>({}, {0.f}, true);
  t.AddInput<float>({}, {4000.f}, true);
  t.AddOutput(TSR_DTYPE_F32, {17, 4});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> y = t.Output<float>(0);
  for (int64_t m = 0; m < 4; ++m) {
    float peak = 0.f;
    for (int64_t b = 0; b < 17; ++b) {
      float v = y[static_cast<size_t>(b * 4 + m)];
      EXPECT_GE(v, 0.f);
      EXPECT_LE(v, 1.f);
      peak = std::max(peak, v);
    }
    EXPECT_EQ(peak, 1.f) << "mel bin " << m;
  }
  OpTest bad("MelWeightMatrix", "", 17);
  bad.AddInput<int64_t>({}, {0}, true);
  bad.AddInput<int64_t>({}, {32}, true);
  bad.AddInput<int64_t>({}, {8000}, true);
  bad.AddInput<float>({}, {0.f}, true);
  bad.AddInput<float>({}, {4000.f}, true);
  bad.AddOutput(TSR_DTYPE_F32, {17, 0});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace tessera::cpu
