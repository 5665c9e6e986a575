// Run-time dispatched row kernels (backends/cpu/simd.h): every table (the
// portable one, and AVX-512 when this CPU has it) against double-precision
// references and against each other, on odd sizes and special values; the
// dispatch override; and the kernels (Softmax, LayerNormalization, Gelu)
// really running the selected table.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/simd.h"
#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using simd::Isa;
using simd::RowFns;
using testing::AllClose;
using testing::OpTest;
using testing::RandomFloats;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
const int64_t kSizes[] = {1, 15, 16, 17, 1000, 32000};

struct Table {
  std::string name;
  const RowFns* fns;
};

// The tables this CPU can run.
std::vector<Table> Tables() {
  std::vector<Table> t = {{"generic", &simd::GenericFns()}};
  if (simd::Avx512Fns()) t.push_back({"avx512", simd::Avx512Fns()});
  return t;
}

// Restores the ISA active when constructed.
class IsaGuard {
 public:
  IsaGuard() : saved_(simd::ActiveIsa()) {}
  ~IsaGuard() { simd::SetIsaForTesting(saved_); }

 private:
  Isa saved_;
};

using Unary = void (*)(const float*, float*, int64_t);
using Ref = std::function<double(double)>;

struct UnaryCase {
  const char* name;
  Unary RowFns::*fn;
  Ref ref;
  float lo, hi;  // input range for the random test
  float rtol;    // GELU's deep negative tail (|y| ~ 1e-20) is ill-conditioned in the f32
                 // argument (relative error ~ x^2 * eps), so it gets more room
};

double GeluRef(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }
// 0.5 x (1 + tanh(u)) written as x * sigmoid(2u): no cancellation in the negative tail.
double GeluTanhRef(double x) {
  const double u = 0.79788456080286535588 * (x + 0.044715 * x * x * x);
  return x / (1.0 + std::exp(-2.0 * u));
}

std::vector<UnaryCase> UnaryCases() {
  return {
      {"exp", &RowFns::exp, [](double x) { return std::exp(x); }, -87.f, 88.f, 2e-6f},
      {"tanh", &RowFns::tanh, [](double x) { return std::tanh(x); }, -9.f, 9.f, 2e-6f},
      {"erf", &RowFns::erf, [](double x) { return std::erf(x); }, -5.f, 5.f, 2e-6f},
      {"sigmoid", &RowFns::sigmoid, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, -30.f, 30.f, 2e-6f},
      {"gelu", &RowFns::gelu, &GeluRef, -9.f, 9.f, 1e-5f},
      {"gelu_tanh", &RowFns::gelu_tanh, &GeluTanhRef, -9.f, 9.f, 1e-5f},
  };
}

TEST(SimdDispatch, SelectsSupportedIsaAndOverrides) {
  IsaGuard guard;
  const bool avx = simd::Avx512Supported();
  EXPECT_EQ(simd::Avx512Fns() != nullptr, avx);
  const char* env = std::getenv("TESSERA_CPU_SIMD");
  const bool forced_generic = env && std::string(env) == "generic";
  EXPECT_EQ(simd::ActiveIsa(), avx && !forced_generic ? Isa::kAvx512 : Isa::kGeneric);
  EXPECT_STREQ(simd::IsaName(Isa::kGeneric), "generic");
  EXPECT_STREQ(simd::IsaName(Isa::kAvx512), "avx512");

  ASSERT_TRUE(simd::SetIsaForTesting(Isa::kGeneric));
  EXPECT_EQ(simd::ActiveIsa(), Isa::kGeneric);
  EXPECT_EQ(&simd::Fns(), &simd::GenericFns());
  EXPECT_EQ(simd::SetIsaForTesting(Isa::kAvx512), avx);
  if (avx) {
    EXPECT_EQ(simd::ActiveIsa(), Isa::kAvx512);
    EXPECT_EQ(&simd::Fns(), simd::Avx512Fns());
  } else {
    EXPECT_EQ(simd::ActiveIsa(), Isa::kGeneric);  // refused: unchanged
  }
}

TEST(SimdRows, ElementwiseMatchDoubleReference) {
  for (const Table& t : Tables())
    for (const UnaryCase& c : UnaryCases())
      for (int64_t n : kSizes) {
        SCOPED_TRACE(t.name + " " + c.name + " n=" + std::to_string(n));
        std::vector<float> x = RandomFloats(n, c.lo, c.hi, static_cast<uint32_t>(n) + 7);
        if (n > 100)  // also the small-argument branches
          for (int64_t i = 0; i < n; i += 3) x[i] *= 1e-3f;
        std::vector<float> y(x.size(), -1.f), ref(x.size());
        (t.fns->*c.fn)(x.data(), y.data(), n);
        for (size_t i = 0; i < x.size(); ++i) ref[i] = static_cast<float>(c.ref(x[i]));
        EXPECT_TRUE(AllClose(y, ref, c.rtol, 1e-30f));
        // In place gives the same.
        std::vector<float> z = x;
        (t.fns->*c.fn)(z.data(), z.data(), n);
        EXPECT_EQ(z, y);
      }
}

TEST(SimdRows, ExpIsWithinTwoUlpOverSoftmaxRange) {
  const int64_t n = 100000;
  for (const Table& t : Tables()) {
    SCOPED_TRACE(t.name);
    std::vector<float> x = RandomFloats(n, -87.f, 0.f, 99), y(n);
    t.fns->exp(x.data(), y.data(), n);
    double worst = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double r = std::exp(static_cast<double>(x[i]));
      const double ulp = std::nextafter(static_cast<float>(r), kInf) - static_cast<float>(r);
      worst = std::max(worst, std::fabs(y[i] - r) / ulp);
    }
    EXPECT_LE(worst, 2.0);
  }
}

// Tables agree with each other on special values (NaN where the other gives NaN).
TEST(SimdRows, SpecialValuesAgreeAcrossTables) {
  const std::vector<float> x = {0.f,   -0.f,   kInf,   -kInf,  kNaN,  -100.f, 100.f, 87.f, -87.29f,
                                -87.31f, 1e-30f, -1e-30f, 0.55f, -0.55f, 0.95f, 1.f,   -1.f, 10.f,
                                -10.f, 11.f,   -11.f,  3e38f,  -3e38f};
  const RowFns& g = simd::GenericFns();
  for (const Table& t : Tables())
    for (const UnaryCase& c : UnaryCases()) {
      SCOPED_TRACE(t.name + " " + c.name);
      std::vector<float> a(x.size()), b(x.size());
      (g.*c.fn)(x.data(), a.data(), static_cast<int64_t>(x.size()));
      (t.fns->*c.fn)(x.data(), b.data(), static_cast<int64_t>(x.size()));
      EXPECT_TRUE(AllClose(b, a, 2e-6f, 1e-30f));
      for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(std::isnan(a[i]), std::isnan(b[i])) << "x=" << x[i];
    }
  for (const Table& t : Tables()) {
    SCOPED_TRACE(t.name);
    const std::vector<float> e = {-kInf, kInf, kNaN, -200.f, 200.f, 0.f};
    std::vector<float> y(e.size());
    t.fns->exp(e.data(), y.data(), 6);
    EXPECT_EQ(y[0], 0.f);
    EXPECT_EQ(y[1], kInf);
    EXPECT_TRUE(std::isnan(y[2]));
    EXPECT_EQ(y[3], 0.f);
    EXPECT_EQ(y[4], kInf);
    EXPECT_EQ(y[5], 1.f);
    t.fns->tanh(e.data(), y.data(), 6);
    EXPECT_EQ(y[0], -1.f);
    EXPECT_EQ(y[1], 1.f);
    EXPECT_TRUE(std::isnan(y[2]));
    t.fns->erf(e.data(), y.data(), 6);
    EXPECT_EQ(y[0], -1.f);
    EXPECT_EQ(y[1], 1.f);
    EXPECT_TRUE(std::isnan(y[2]));
    t.fns->sigmoid(e.data(), y.data(), 6);
    EXPECT_EQ(y[0], 0.f);
    EXPECT_EQ(y[1], 1.f);
  }
}

std::vector<float> RefSoftmaxRow(const std::vector<float>& x, bool log) {
  double m = -std::numeric_limits<double>::infinity(), s = 0;
  for (float v : x) m = std::max(m, static_cast<double>(v));
  for (float v : x) s += std::exp(v - m);
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    y[i] = static_cast<float>(log ? (x[i] - m) - std::log(s) : std::exp(x[i] - m) / s);
  return y;
}

TEST(SimdRows, SoftmaxAndLogSoftmaxMatchDoubleReference) {
  for (const Table& t : Tables())
    for (int64_t n : kSizes)
      for (float scale : {1.f, 30.f, 1e4f})
        for (bool log : {false, true}) {
          SCOPED_TRACE(t.name + " n=" + std::to_string(n) + " scale=" + std::to_string(scale) +
                       (log ? " log" : ""));
          std::vector<float> x = RandomFloats(n, -scale, scale, static_cast<uint32_t>(n * 3 + 1));
          std::vector<float> y(x.size(), -1.f);
          (log ? t.fns->log_softmax : t.fns->softmax)(x.data(), y.data(), n);
          const std::vector<float> ref = RefSoftmaxRow(x, log);
          if (log) {
            EXPECT_TRUE(AllClose(y, ref, 1e-6f, 2e-5f));
          } else {
            EXPECT_TRUE(AllClose(y, ref, 2e-5f, 1e-9f));
          }
          std::vector<float> z = x;  // in place
          (log ? t.fns->log_softmax : t.fns->softmax)(z.data(), z.data(), n);
          EXPECT_EQ(z, y);
        }
}

// Rows with infinities / NaN behave like the portable kernel (and the scalar formula).
TEST(SimdRows, SoftmaxSpecialRowsMatchGeneric) {
  const std::vector<std::vector<float>> rows = {
      std::vector<float>(17, -kInf),                       // all -inf: NaN
      {1.f, -kInf, 2.f, -kInf, 0.5f},                      // masked keys: 0
      {1.f, kInf, 2.f},                                    // +inf: NaN at inf, 0 elsewhere
      {1.f, kNaN, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f}, // NaN: all NaN
      {88.f, -88.f, 80.f, 0.f},
      {-1e30f, 1e30f, 3.f},
  };
  const RowFns& g = simd::GenericFns();
  for (const Table& t : Tables())
    for (size_t r = 0; r < rows.size(); ++r)
      for (bool log : {false, true}) {
        SCOPED_TRACE(t.name + " row " + std::to_string(r) + (log ? " log" : ""));
        const std::vector<float>& x = rows[r];
        const int64_t n = static_cast<int64_t>(x.size());
        std::vector<float> a(x.size()), b(x.size());
        (log ? g.log_softmax : g.softmax)(x.data(), a.data(), n);
        (log ? t.fns->log_softmax : t.fns->softmax)(x.data(), b.data(), n);
        EXPECT_TRUE(AllClose(b, a, 1e-6f, 1e-7f));
        for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(std::isnan(a[i]), std::isnan(b[i])) << i;
      }
  for (const Table& t : Tables()) {
    SCOPED_TRACE(t.name);
    std::vector<float> y(17);
    t.fns->softmax(rows[0].data(), y.data(), 17);
    for (float v : y) EXPECT_TRUE(std::isnan(v));
    std::vector<float> z(5);
    t.fns->softmax(rows[1].data(), z.data(), 5);
    EXPECT_EQ(z[1], 0.f);
    EXPECT_EQ(z[3], 0.f);
    EXPECT_NEAR(z[0] + z[2] + z[4], 1.f, 1e-6f);
  }
}

TEST(SimdRows, ExpShiftInPlaceMaxAndSum) {
  for (const Table& t : Tables())
    for (int64_t n : kSizes) {
      SCOPED_TRACE(t.name + " n=" + std::to_string(n));
      std::vector<float> x = RandomFloats(n, -20.f, 20.f, static_cast<uint32_t>(n) + 11);
      double s = 0, m = -1e300, sum = 0;
      for (float v : x) {
        m = std::max(m, static_cast<double>(v));
        sum += v;
      }
      EXPECT_EQ(t.fns->max(x.data(), n), static_cast<float>(m));
      EXPECT_NEAR(t.fns->sum(x.data(), n), sum, 1e-5 * n * 20);
      std::vector<float> e = x, ref(x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        ref[i] = static_cast<float>(std::exp(static_cast<double>(x[i]) - 3.0));
        s += std::exp(static_cast<double>(x[i]) - 3.0);
      }
      const float got = t.fns->exp_shift_inplace(e.data(), n, 3.f);
      EXPECT_NEAR(got, s, 1e-5 * s);
      EXPECT_TRUE(AllClose(e, ref, 2e-6f, 1e-30f));
      // NaN elements are ignored by max; an empty row gives -inf / 0.
      if (n > 3) {
        x[2] = kNaN;
        EXPECT_FALSE(std::isnan(t.fns->max(x.data(), n)));
      }
      EXPECT_EQ(t.fns->max(x.data(), 0), -kInf);
      EXPECT_EQ(t.fns->sum(x.data(), 0), 0.f);
    }
}

TEST(SimdRows, ExpShiftAccumulate) {
  for (const Table& t : Tables())
    for (int64_t n : kSizes)
      for (bool store : {false, true}) {
        SCOPED_TRACE(t.name + " n=" + std::to_string(n) + (store ? " store" : ""));
        const std::vector<float> x = RandomFloats(n, -20.f, 20.f, static_cast<uint32_t>(n) + 21);
        std::vector<float> shift = RandomFloats(n, -5.f, 5.f, 22), sum = RandomFloats(n, 0.f, 3.f, 23);
        std::vector<float> y(x.size(), -1.f), ref_y(x.size()), ref_sum(x.size());
        for (size_t i = 0; i < x.size(); ++i) {
          const double e = std::exp(static_cast<double>(x[i]) - shift[i]);
          ref_y[i] = static_cast<float>(e);
          ref_sum[i] = static_cast<float>(sum[i] + e);
        }
        t.fns->exp_shift_accumulate(x.data(), shift.data(), store ? y.data() : nullptr, sum.data(), n);
        EXPECT_TRUE(AllClose(sum, ref_sum, 4e-6f, 1e-30f));
        if (store) {
          EXPECT_TRUE(AllClose(y, ref_y, 2e-6f, 1e-30f));
        } else {
          EXPECT_EQ(y, std::vector<float>(x.size(), -1.f));  // y == nullptr: nothing stored
        }
      }
}

TEST(SimdRows, LayerNormMatchesDoubleReference) {
  for (const Table& t : Tables())
    for (int64_t d : kSizes)
      for (int variant = 0; variant < 4; ++variant) {
        const bool with_scale = variant & 1, with_bias = variant & 2;
        SCOPED_TRACE(t.name + " d=" + std::to_string(d) + " variant=" + std::to_string(variant));
        std::vector<float> x = RandomFloats(d, -3.f, 5.f, static_cast<uint32_t>(d) + 5);
        for (float& v : x) v += 100.f;  // an offset mean: two-pass statistics keep precision
        const std::vector<float> sc = RandomFloats(d, 0.5f, 2.f, 17), bi = RandomFloats(d, -1.f, 1.f, 19);
        double mean = 0, var = 0;
        for (float v : x) mean += v;
        mean /= static_cast<double>(d);
        for (float v : x) var += (v - mean) * (v - mean);
        var /= static_cast<double>(d);
        const double inv = 1.0 / std::sqrt(var + 1e-5);
        std::vector<float> ref(x.size());
        for (int64_t j = 0; j < d; ++j) {
          double r = (x[j] - mean) * inv;
          if (with_scale) r *= sc[j];
          if (with_bias) r += bi[j];
          ref[j] = static_cast<float>(r);
        }
        std::vector<float> y(x.size(), -1.f);
        float got_mean = 0, got_inv = 0;
        t.fns->layer_norm(x.data(), with_scale ? sc.data() : nullptr, with_bias ? bi.data() : nullptr, y.data(), d,
                          1e-5f, &got_mean, &got_inv);
        EXPECT_TRUE(AllClose(y, ref, 1e-4f, 1e-4f));
        EXPECT_NEAR(got_mean, mean, 1e-5 * std::fabs(mean));
        if (d > 1) {
          EXPECT_NEAR(got_inv, inv, 1e-4 * inv);
        }
        // Optional statistics outputs may be omitted.
        std::vector<float> y2(x.size());
        t.fns->layer_norm(x.data(), with_scale ? sc.data() : nullptr, with_bias ? bi.data() : nullptr, y2.data(), d,
                          1e-5f, nullptr, nullptr);
        EXPECT_EQ(y2, y);
      }
}

// ---- the kernels run the selected table -----------------------------------------------------------

std::vector<float> RunSoftmaxKernel(const std::vector<float>& x, int64_t rows, int64_t n, const char* op) {
  OpTest t(op);
  t.AddInput<float>({rows, n}, x);
  t.AddOutput(TSR_DTYPE_F32, {rows, n});
  Err e = t.Run();
  EXPECT_TRUE(e.ok()) << t.last_error();
  return t.Output<float>(0);
}

std::vector<float> RunLayerNormKernel(const std::vector<float>& x, const std::vector<float>& s,
                                      const std::vector<float>& b, int64_t rows, int64_t d) {
  OpTest t("LayerNormalization");
  t.AddInput<float>({rows, d}, x);
  t.AddInput<float>({d}, s);
  t.AddInput<float>({d}, b);
  t.AddOutput(TSR_DTYPE_F32, {rows, d});
  Err e = t.Run();
  EXPECT_TRUE(e.ok()) << t.last_error();
  return t.Output<float>(0);
}

std::vector<float> RunGeluKernel(const std::vector<float>& x, const char* approx) {
  OpTest t("Gelu", "", 20);
  t.AddInput<float>({static_cast<int64_t>(x.size())}, x);
  t.AddOutput(TSR_DTYPE_F32, {static_cast<int64_t>(x.size())});
  t.SetAttrString("approximate", approx);
  Err e = t.Run();
  EXPECT_TRUE(e.ok()) << t.last_error();
  return t.Output<float>(0);
}

TEST(SimdDispatch, KernelsUseTheSelectedTable) {
  IsaGuard guard;
  const int64_t rows = 7, n = 333;
  const std::vector<float> x = RandomFloats(rows * n, -8.f, 8.f, 5);
  const std::vector<float> sc = RandomFloats(n, 0.5f, 2.f, 6), bi = RandomFloats(n, -1.f, 1.f, 7);
  for (const Table& t : Tables()) {
    SCOPED_TRACE(t.name);
    ASSERT_TRUE(simd::SetIsaForTesting(t.fns == &simd::GenericFns() ? Isa::kGeneric : Isa::kAvx512));
    // Row by row through the table directly: the kernels must give exactly this.
    std::vector<float> sm(x.size()), lsm(x.size()), ln(x.size()), ge(x.size()), gt(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      t.fns->softmax(x.data() + r * n, sm.data() + r * n, n);
      t.fns->log_softmax(x.data() + r * n, lsm.data() + r * n, n);
      t.fns->layer_norm(x.data() + r * n, sc.data(), bi.data(), ln.data() + r * n, n, 1e-5f, nullptr, nullptr);
    }
    t.fns->gelu(x.data(), ge.data(), rows * n);
    t.fns->gelu_tanh(x.data(), gt.data(), rows * n);
    EXPECT_EQ(RunSoftmaxKernel(x, rows, n, "Softmax"), sm);
    EXPECT_EQ(RunSoftmaxKernel(x, rows, n, "LogSoftmax"), lsm);
    EXPECT_EQ(RunLayerNormKernel(x, sc, bi, rows, n), ln);
    EXPECT_EQ(RunGeluKernel(x, "none"), ge);
    EXPECT_EQ(RunGeluKernel(x, "tanh"), gt);
  }
}

// The forced portable path and the default one agree within the kernels' tolerances.
TEST(SimdDispatch, ForcedGenericMatchesDefault) {
  IsaGuard guard;
  const int64_t rows = 5, n = 1000;
  const std::vector<float> x = RandomFloats(rows * n, -10.f, 10.f, 8);
  const std::vector<float> sc(n, 1.5f), bi(n, 0.25f);
  const std::vector<float> def_sm = RunSoftmaxKernel(x, rows, n, "Softmax");
  const std::vector<float> def_ln = RunLayerNormKernel(x, sc, bi, rows, n);
  const std::vector<float> def_ge = RunGeluKernel(x, "none");
  // Softmax over a middle axis (the strided path): [5, 40, 25], axis 1.
  auto strided = [&](const char* op) {
    OpTest t(op);
    t.AddInput<float>({5, 40, 25}, std::vector<float>(x.begin(), x.begin() + 5000));
    t.AddOutput(TSR_DTYPE_F32, {5, 40, 25});
    t.SetAttrInt("axis", 1);
    Err e = t.Run();
    EXPECT_TRUE(e.ok()) << t.last_error();
    return t.Output<float>(0);
  };
  const std::vector<float> def_st = strided("Softmax"), def_lst = strided("LogSoftmax");
  std::vector<float> ref_st(5000), ref_lst(5000);
  for (int64_t o = 0; o < 5; ++o)
    for (int64_t i = 0; i < 25; ++i) {
      std::vector<float> col(40);
      for (int64_t a = 0; a < 40; ++a) col[a] = x[(o * 40 + a) * 25 + i];
      const std::vector<float> p = RefSoftmaxRow(col, false), lp = RefSoftmaxRow(col, true);
      for (int64_t a = 0; a < 40; ++a) {
        ref_st[(o * 40 + a) * 25 + i] = p[a];
        ref_lst[(o * 40 + a) * 25 + i] = lp[a];
      }
    }
  EXPECT_TRUE(AllClose(def_st, ref_st, 2e-5f, 1e-9f));
  EXPECT_TRUE(AllClose(def_lst, ref_lst, 1e-6f, 2e-5f));
  ASSERT_TRUE(simd::SetIsaForTesting(Isa::kGeneric));
  EXPECT_TRUE(AllClose(strided("Softmax"), def_st, 1e-5f, 1e-9f));
  EXPECT_TRUE(AllClose(strided("LogSoftmax"), def_lst, 1e-6f, 1e-5f));
  EXPECT_TRUE(AllClose(RunSoftmaxKernel(x, rows, n, "Softmax"), def_sm, 1e-5f, 1e-9f));
  EXPECT_TRUE(AllClose(RunLayerNormKernel(x, sc, bi, rows, n), def_ln, 1e-5f, 1e-5f));
  EXPECT_TRUE(AllClose(RunGeluKernel(x, "none"), def_ge, 2e-6f, 1e-30f));
}

}  // namespace
}  // namespace tessera::cpu
