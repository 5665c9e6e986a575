// Reduction, softmax and normalisation CPU kernels against naive references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using testing::AllClose;
using testing::NumElements;
using testing::OpTest;
using testing::RandomFloats;
using testing::StridesOf;
using testing::Unravel;

using Dims = std::vector<int64_t>;

// ---- naive references ----------------------------------------------------------------------

// Output dims of reducing `dims` over `axes` (already non-negative; empty = all).
Dims ReducedDims(const Dims& dims, const std::vector<int64_t>& axes, bool keep) {
  Dims out;
  for (int64_t d = 0; d < static_cast<int64_t>(dims.size()); ++d) {
    bool red = axes.empty() || std::find(axes.begin(), axes.end(), d) != axes.end();
    if (!red) out.push_back(dims[d]);
    else if (keep) out.push_back(1);
  }
  return out;
}

std::vector<double> RefReduce(const std::string& op, const std::vector<double>& x, const Dims& dims,
                              const std::vector<int64_t>& axes) {
  Dims kd = ReducedDims(dims, axes, true);
  int64_t n_out = NumElements(kd);
  double init = op == "ReduceProd" ? 1.0
                : op == "ReduceMax" ? -INFINITY
                : op == "ReduceMin" ? INFINITY
                                    : 0.0;
  std::vector<double> y(n_out, init);
  std::vector<int64_t> cnt(n_out, 0);
  Dims ks = StridesOf(kd);
  for (int64_t i = 0; i < NumElements(dims); ++i) {
    Dims idx = Unravel(i, dims);
    int64_t o = 0;
    for (size_t d = 0; d < dims.size(); ++d) o += (kd[d] == 1 ? 0 : idx[d]) * ks[d];
    double v = x[i];
    if (op == "ReduceSum" || op == "ReduceMean") y[o] += v;
    else if (op == "ReduceProd") y[o] *= v;
    else if (op == "ReduceMax") y[o] = std::max(y[o], v);
    else y[o] = std::min(y[o], v);
    ++cnt[o];
  }
  if (op == "ReduceMean")
    for (int64_t o = 0; o < n_out; ++o) y[o] /= static_cast<double>(cnt[o]);
  return y;
}

std::vector<float> ToFloat(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

// ---- Reduce* ------------------------------------------------------------------------------------

struct ReduceCase {
  Dims dims;
  std::vector<int64_t> axes;  // as given to the op (may be negative)
  bool keepdims;
};

class ReduceF32 : public ::testing::TestWithParam<ReduceCase> {};

TEST_P(ReduceF32, AllOpsMatchReference) {
  const ReduceCase& c = GetParam();
  const int64_t rank = static_cast<int64_t>(c.dims.size());
  std::vector<int64_t> norm;
  for (int64_t a : c.axes) norm.push_back(a < 0 ? a + rank : a);
  Dims out = ReducedDims(c.dims, norm, c.keepdims);
  auto xf = RandomFloats(NumElements(c.dims), 0.5f, 1.5f, 21);
  std::vector<double> xd(xf.begin(), xf.end());
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"}) {
    for (bool as_input : {false, true}) {
      OpTest t(op, "", as_input ? 18 : 11);
      t.AddInput<float>(c.dims, xf);
      if (as_input) {
        if (!c.axes.empty()) t.AddInput<int64_t>({static_cast<int64_t>(c.axes.size())}, c.axes, true);
      } else if (!c.axes.empty()) {
        t.SetAttrInts("axes", c.axes);
      }
      t.SetAttrInt("keepdims", c.keepdims ? 1 : 0);
      t.AddOutput(TSR_DTYPE_F32, out);
      ASSERT_TRUE(t.Run().ok()) << op << ": " << t.last_error();
      EXPECT_TRUE(AllClose(t.Output<float>(0), ToFloat(RefReduce(op, xd, c.dims, norm)), 2e-5f))
          << op << (as_input ? " (axes input)" : " (axes attribute)");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ReduceF32,
                         ::testing::Values(ReduceCase{{2, 3, 4}, {-1}, true},     // last axis
                                           ReduceCase{{2, 3, 4}, {2}, false},
                                           ReduceCase{{2, 3, 4}, {1}, true},      // middle axis (strided)
                                           ReduceCase{{2, 3, 4}, {0}, false},     // first axis
                                           ReduceCase{{2, 3, 4}, {0, -1}, true},  // two passes
                                           ReduceCase{{2, 3, 4, 5}, {0, 2}, false},
                                           ReduceCase{{2, 3, 4, 5}, {1, 3}, true},
                                           ReduceCase{{2, 3, 4}, {1, 2}, false},  // adjacent: one group
                                           ReduceCase{{2, 3, 4}, {}, true},       // all axes
                                           ReduceCase{{2, 3, 4}, {}, false},
                                           ReduceCase{{2, 1, 4}, {1}, false},     // size-1 axis
                                           ReduceCase{{7}, {0}, false},
                                           ReduceCase{{64, 300}, {1}, true},      // parallel rows
                                           ReduceCase{{300, 64}, {0}, true}));

TEST(ReduceKernel, NoopWithEmptyAxesCopies) {
  OpTest t("ReduceSum", "", 13);
  t.AddInput<float>({2, 2}, {1, 2, 3, 4}).AddOutput(TSR_DTYPE_F32, {2, 2}).SetAttrInt("noop_with_empty_axes", 1);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1, 2, 3, 4}));
  OpTest u("ReduceSum", "", 13);  // an empty constant axes input also means "no axes"
  u.AddInput<float>({2, 2}, {1, 2, 3, 4}).AddInput<int64_t>({0}, {}, true).AddOutput(TSR_DTYPE_F32, {1, 1});
  ASSERT_TRUE(u.Run().ok()) << u.last_error();
  EXPECT_EQ(u.Output<float>(0), (std::vector<float>{10}));
}

TEST(ReduceKernel, IntegerTypes) {
  OpTest t("ReduceSum", "", 13);
  t.AddInput<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6}).AddInput<int64_t>({1}, {0}, true).AddOutput(TSR_DTYPE_I64, {1, 3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{5, 7, 9}));
  OpTest m("ReduceMax", "", 13);
  m.AddInput<int32_t>({2, 3}, {1, -2, 3, -4, 5, -6}).SetAttrInts("axes", {1}).SetAttrInt("keepdims", 0);
  m.AddOutput(TSR_DTYPE_I32, {2});
  ASSERT_TRUE(m.Run().ok()) << m.last_error();
  EXPECT_EQ(m.Output<int32_t>(0), (std::vector<int32_t>{3, 5}));
  OpTest mean("ReduceMean", "", 13);
  mean.AddInput<int32_t>({4}, {1, 2, 3, 5}).SetAttrInt("keepdims", 0).AddOutput(TSR_DTYPE_I32, {});
  ASSERT_TRUE(mean.Run().ok()) << mean.last_error();
  EXPECT_EQ(mean.Output<int32_t>(0), (std::vector<int32_t>{2}));  // 11 / 4 truncated
}

TEST(ReduceKernel, LongSingleRowUsesPartialSums) {
  const int64_t n = 300000;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((i % 17) - 8) * 0.25f;
  x[123457] = 1000.f;
  OpTest t("ReduceSum", "", 13);
  t.AddInput<float>({n}, x).SetAttrInt("keepdims", 0).AddOutput(TSR_DTYPE_F32, {});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  double expect = 0;
  for (float v : x) expect += v;
  EXPECT_NEAR(t.Output<float>(0)[0], expect, 1e-2);
  OpTest m("ReduceMax", "", 13);
  m.AddInput<float>({n}, x).SetAttrInt("keepdims", 0).AddOutput(TSR_DTYPE_F32, {});
  ASSERT_TRUE(m.Run().ok()) << m.last_error();
  EXPECT_EQ(m.Output<float>(0)[0], 1000.f);
}

TEST(ReduceKernel, BadAxesAreRejected) {
  {
    OpTest t("ReduceMean", "", 13);
    t.SetName("rm");
    t.AddInput<float>({2, 3}, std::vector<float>(6)).SetAttrInts("axes", {2}).AddOutput(TSR_DTYPE_F32, {2, 3});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("rm"), std::string::npos);
    EXPECT_NE(e.message.find("out of range"), std::string::npos) << e.message;
  }
  {
    OpTest t("ReduceMean", "", 13);
    t.AddInput<float>({2, 3}, std::vector<float>(6)).SetAttrInts("axes", {1, -1}).AddOutput(TSR_DTYPE_F32, {2, 1});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
  {
    OpTest t("ReduceSum", "", 13);  // axes input that is not a constant
    t.SetName("rs");
    t.AddInput<float>({2, 3}, std::vector<float>(6)).AddInput<int64_t>({1}, {1}).AddOutput(TSR_DTYPE_F32, {2, 1});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("rs"), std::string::npos);
    EXPECT_NE(e.message.find("constant"), std::string::npos) << e.message;
  }
  {
    OpTest t("ReduceSum", "", 13);  // output shape inconsistent with the reduction
    t.AddInput<float>({2, 3}, std::vector<float>(6)).SetAttrInts("axes", {1}).AddOutput(TSR_DTYPE_F32, {3});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
}

// ---- ArgMax / ArgMin ------------------------------------------------------------------------------

TEST(ArgKernel, AxesKeepdimsAndTies) {
  // [2, 3, 2] with ties along axis 1.
  std::vector<float> x{1, 5, 3, 5, 3, 0,  // n=0
                       2, 2, 2, 2, 1, 9};  // n=1
  struct C {
    const char* op;
    int64_t axis;
    int64_t keep, last;
    Dims out;
    std::vector<int64_t> want;
  } cases[] = {
      {"ArgMax", 1, 1, 0, {2, 1, 2}, {1, 0, 0, 2}},
      {"ArgMax", 1, 0, 1, {2, 2}, {2, 1, 1, 2}},
      {"ArgMin", -2, 0, 0, {2, 2}, {0, 2, 2, 0}},
      {"ArgMin", 1, 0, 1, {2, 2}, {0, 2, 2, 1}},
      {"ArgMax", -1, 0, 0, {2, 3}, {1, 1, 0, 0, 0, 1}},
      {"ArgMax", 0, 1, 0, {1, 3, 2}, {1, 0, 0, 0, 0, 1}},
  };
  for (const C& c : cases) {
    OpTest t(c.op);
    t.AddInput<float>({2, 3, 2}, x).AddOutput(TSR_DTYPE_I64, c.out);
    t.SetAttrInt("axis", c.axis).SetAttrInt("keepdims", c.keep).SetAttrInt("select_last_index", c.last);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), c.want) << c.op << " axis " << c.axis << " last " << c.last;
  }
}

TEST(ArgKernel, IntegerInputAndErrors) {
  OpTest t("ArgMin");
  t.AddInput<int64_t>({4}, {3, -1, 7, -1}).SetAttrInt("keepdims", 0).AddOutput(TSR_DTYPE_I64, {});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{1}));
  OpTest bad("ArgMax");
  bad.SetName("am");
  bad.AddInput<float>({2, 2}, {1, 2, 3, 4}).SetAttrInt("axis", 2).AddOutput(TSR_DTYPE_I64, {2, 1});
  Err e = bad.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("am"), std::string::npos);
  OpTest bad2("ArgMax");
  bad2.AddInput<float>({2}, {1, 2}).AddOutput(TSR_DTYPE_I32, {1});
  EXPECT_EQ(bad2.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- Softmax / LogSoftmax ---------------------------------------------------------------------------

// Softmax over groups: `outer` x `n` x `inner` layout, normalising over n.
std::vector<float> RefSoftmax(const std::vector<float>& x, int64_t outer, int64_t n, int64_t inner, bool log) {
  std::vector<float> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double m = -INFINITY, s = 0;
      for (int64_t a = 0; a < n; ++a) m = std::max(m, double(x[(o * n + a) * inner + i]));
      for (int64_t a = 0; a < n; ++a) s += std::exp(double(x[(o * n + a) * inner + i]) - m);
      for (int64_t a = 0; a < n; ++a) {
        double v = double(x[(o * n + a) * inner + i]) - m;
        y[(o * n + a) * inner + i] = static_cast<float>(log ? v - std::log(s) : std::exp(v) / s);
      }
    }
  return y;
}

TEST(SoftmaxKernel, Opset11CoercesTo2DAndOpset13UsesOneAxis) {
  Dims d{2, 3, 4};
  auto x = RandomFloats(24, -3.f, 3.f, 4);
  for (bool log : {false, true}) {
    const char* op = log ? "LogSoftmax" : "Softmax";
    OpTest a(op, "", 11);
    a.AddInput<float>(d, x).SetAttrInt("axis", 1).AddOutput(TSR_DTYPE_F32, d);
    ASSERT_TRUE(a.Run().ok()) << a.last_error();
    OpTest b(op, "", 13);
    b.AddInput<float>(d, x).SetAttrInt("axis", 1).AddOutput(TSR_DTYPE_F32, d);
    ASSERT_TRUE(b.Run().ok()) << b.last_error();
    auto ya = a.Output<float>(0), yb = b.Output<float>(0);
    EXPECT_TRUE(AllClose(ya, RefSoftmax(x, 2, 12, 1, log), 1e-5f, 1e-6f)) << op << " opset 11";
    EXPECT_TRUE(AllClose(yb, RefSoftmax(x, 2, 3, 4, log), 1e-5f, 1e-6f)) << op << " opset 13";
    EXPECT_FALSE(AllClose(ya, yb, 1e-3f, 1e-4f)) << "opset 11 and 13 must differ for axis=1";
  }
}

TEST(SoftmaxKernel, DefaultAxesAndLastAxis) {
  Dims d{3, 2, 37};  // 37: exercises the vector tail
  auto x = RandomFloats(NumElements(d), -10.f, 10.f, 8);
  OpTest a("Softmax", "", 13);  // default axis -1
  a.AddInput<float>(d, x).AddOutput(TSR_DTYPE_F32, d);
  ASSERT_TRUE(a.Run().ok()) << a.last_error();
  EXPECT_TRUE(AllClose(a.Output<float>(0), RefSoftmax(x, 6, 37, 1, false), 1e-5f, 1e-7f));
  OpTest b("Softmax", "", 11);  // default axis 1: rows of 2*37
  b.AddInput<float>(d, x).AddOutput(TSR_DTYPE_F32, d);
  ASSERT_TRUE(b.Run().ok()) << b.last_error();
  EXPECT_TRUE(AllClose(b.Output<float>(0), RefSoftmax(x, 3, 74, 1, false), 1e-5f, 1e-7f));
  OpTest c("LogSoftmax", "", 13);
  c.AddInput<float>(d, x).SetAttrInt("axis", 0).AddOutput(TSR_DTYPE_F32, d);
  ASSERT_TRUE(c.Run().ok()) << c.last_error();
  EXPECT_TRUE(AllClose(c.Output<float>(0), RefSoftmax(x, 1, 3, 74, true), 1e-5f, 1e-6f));
}

TEST(SoftmaxKernel, NumericallyStableAndMasked) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x{1000.f, 1001.f, 1002.f, -inf, -1000.f, 0.f, -inf, 5.f};
  OpTest t("Softmax", "", 13);
  t.AddInput<float>({2, 4}, x).AddOutput(TSR_DTYPE_F32, {2, 4});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto y = t.Output<float>(0);
  for (float v : y) EXPECT_FALSE(std::isnan(v));
  EXPECT_TRUE(AllClose(y, RefSoftmax(x, 2, 4, 1, false), 1e-5f, 1e-7f));
  EXPECT_EQ(y[3], 0.f);  // masked position is exactly zero
  EXPECT_EQ(y[6], 0.f);
  OpTest l("LogSoftmax", "", 13);
  l.AddInput<float>({2, 4}, x).AddOutput(TSR_DTYPE_F32, {2, 4});
  ASSERT_TRUE(l.Run().ok());
  auto ly = l.Output<float>(0);
  EXPECT_NEAR(ly[2], -std::log(1 + std::exp(-1.0) + std::exp(-2.0)), 1e-5);
  EXPECT_TRUE(std::isinf(ly[3]) && ly[3] < 0);
}

TEST(SoftmaxKernel, DoubleAndOldOpsetCoercion) {
  std::vector<double> x{1, 2, 3, 4, -1, 0};  // [2, 3]
  for (bool lg : {false, true}) {
    OpTest t(lg ? "LogSoftmax" : "Softmax", "", 13);
    t.AddInput<double>({2, 3}, x).SetAttrInt("axis", 0).AddOutput(TSR_DTYPE_F64, {2, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    auto y = t.Output<double>(0);
    for (int j = 0; j < 3; ++j) {
      double m = std::max(x[j], x[3 + j]), s = std::exp(x[j] - m) + std::exp(x[3 + j] - m);
      for (int i = 0; i < 2; ++i) {
        double r = x[i * 3 + j] - m - std::log(s);
        EXPECT_NEAR(y[i * 3 + j], lg ? r : std::exp(r), 1e-12);
      }
    }
  }
  OpTest o("Softmax", "", 11);  // opset < 13, axis 0: the whole tensor is one row
  o.AddInput<double>({2, 3}, x).SetAttrInt("axis", 0).AddOutput(TSR_DTYPE_F64, {2, 3});
  ASSERT_TRUE(o.Run().ok()) << o.last_error();
  double s = 0;
  for (double v : x) s += std::exp(v);
  EXPECT_NEAR(o.Output<double>(0)[3], std::exp(4.0) / s, 1e-12);
}

TEST(ArgKernel, OtherDtypes) {
  OpTest t("ArgMax", "", 13);
  t.AddInput<double>({2, 2}, {1, 5, 7, 2}).SetAttrInt("axis", 1).AddOutput(TSR_DTYPE_I64, {2, 1});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{1, 0}));
  OpTest u("ArgMin", "", 13);
  u.AddInput<uint8_t>({4}, {9, 3, 3, 200}).SetAttrInt("select_last_index", 1).AddOutput(TSR_DTYPE_I64, {1});
  ASSERT_TRUE(u.Run().ok()) << u.last_error();
  EXPECT_EQ(u.Output<int64_t>(0), (std::vector<int64_t>{2}));
  OpTest b("ArgMax", "", 13);
  b.AddInputBool({2}, {true, false}).AddOutput(TSR_DTYPE_I64, {1});
  EXPECT_EQ(b.Create().code, TSR_ERR_UNSUPPORTED);
}

TEST(SoftmaxKernel, BadAxisAndDtype) {
  OpTest t("Softmax", "", 13);
  t.SetName("sm");
  t.AddInput<float>({2, 2}, {1, 2, 3, 4}).SetAttrInt("axis", 2).AddOutput(TSR_DTYPE_F32, {2, 2});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("sm"), std::string::npos);
  OpTest u("Softmax", "", 13);
  u.AddInput<int32_t>({2}, {1, 2}).AddOutput(TSR_DTYPE_I32, {2});
  EXPECT_EQ(u.Create().code, TSR_ERR_UNSUPPORTED);
}

// ---- LayerNormalization ------------------------------------------------------------------------------

std::vector<float> RefLayerNorm(const std::vector<float>& x, int64_t rows, int64_t d, const std::vector<float>& scale,
                                const std::vector<float>& bias, float eps, std::vector<float>* mean,
                                std::vector<float>* inv) {
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < d; ++j) m += x[r * d + j];
    m /= d;
    for (int64_t j = 0; j < d; ++j) v += (x[r * d + j] - m) * (x[r * d + j] - m);
    v /= d;
    double is = 1.0 / std::sqrt(v + eps);
    for (int64_t j = 0; j < d; ++j) {
      double s = scale.empty() ? 1.0 : scale[j % scale.size()];
      double b = bias.empty() ? 0.0 : bias[j % bias.size()];
      y[r * d + j] = static_cast<float>((x[r * d + j] - m) * is * s + b);
    }
    if (mean) mean->push_back(static_cast<float>(m));
    if (inv) inv->push_back(static_cast<float>(is));
  }
  return y;
}

TEST(LayerNormKernel, LastAxisWithScaleBiasAndStats) {
  Dims d{2, 3, 40};
  auto x = RandomFloats(240, -2.f, 5.f, 31), s = RandomFloats(40, 0.5f, 2.f, 32), b = RandomFloats(40, -1, 1, 33);
  OpTest t("LayerNormalization");
  t.AddInput<float>(d, x).AddInput<float>({40}, s, true).AddInput<float>({40}, b, true);
  t.AddOutput(TSR_DTYPE_F32, d).AddOutput(TSR_DTYPE_F32, {2, 3, 1}).AddOutput(TSR_DTYPE_F32, {2, 3, 1});
  t.SetAttrFloat("epsilon", 1e-3f);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> mean, inv;
  auto ref = RefLayerNorm(x, 6, 40, s, b, 1e-3f, &mean, &inv);
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-5f, 1e-5f));
  EXPECT_TRUE(AllClose(t.Output<float>(1), mean, 1e-5f, 1e-6f));
  EXPECT_TRUE(AllClose(t.Output<float>(2), inv, 1e-5f, 1e-6f));
}

TEST(LayerNormKernel, EarlierAxisBroadcastScaleNoBias) {
  Dims d{2, 3, 4};
  auto x = RandomFloats(24, -1.f, 1.f, 41);
  std::vector<float> s{1.f, 2.f, 3.f, 4.f};  // [4] broadcast over normalised dims [3, 4]
  OpTest t("LayerNormalization");
  t.AddInput<float>(d, x).AddInput<float>({4}, s).AddOutput(TSR_DTYPE_F32, d);
  t.SetAttrInt("axis", 1);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), RefLayerNorm(x, 2, 12, s, {}, 1e-5f, nullptr, nullptr), 1e-5f, 1e-5f));
  OpTest u("LayerNormalization");  // no scale, no bias, unused stats outputs omitted
  u.AddInput<float>(d, x).AddOutput(TSR_DTYPE_F32, d).AddMissingOutput().AddOutput(TSR_DTYPE_F32, {2, 3, 1});
  ASSERT_TRUE(u.Run().ok()) << u.last_error();
  std::vector<float> inv;
  EXPECT_TRUE(AllClose(u.Output<float>(0), RefLayerNorm(x, 6, 4, {}, {}, 1e-5f, nullptr, &inv), 1e-5f, 1e-5f));
  EXPECT_TRUE(AllClose(u.Output<float>(2), inv, 1e-5f));
}

TEST(LayerNormKernel, DoubleDataWithFloatStatistics) {
  Dims d{3, 5};
  auto xf = RandomFloats(15, -1.f, 1.f, 43);
  std::vector<float> s{1, 2, 3, 4, 5}, b{0.5f, 0, -0.5f, 1, 2};
  std::vector<double> x(xf.begin(), xf.end()), sd(s.begin(), s.end()), bd(b.begin(), b.end());
  OpTest t("LayerNormalization");
  t.AddInput<double>(d, x).AddInput<double>({5}, sd).AddInput<double>({5}, bd);
  t.AddOutput(TSR_DTYPE_F64, d).AddOutput(TSR_DTYPE_F32, {3, 1}).AddOutput(TSR_DTYPE_F32, {3, 1});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> mean, inv;
  auto ref = RefLayerNorm(xf, 3, 5, s, b, 1e-5f, &mean, &inv);
  auto y = t.Output<double>(0);
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(y[i], ref[i], 1e-5);
  EXPECT_TRUE(AllClose(t.Output<float>(1), mean, 1e-5f, 1e-6f));
  EXPECT_TRUE(AllClose(t.Output<float>(2), inv, 1e-5f, 1e-6f));
  OpTest bad("LayerNormalization");
  bad.AddInput<int32_t>({2}, {1, 2}).AddInput<int32_t>({2}, {1, 1}).AddOutput(TSR_DTYPE_I32, {2});
  EXPECT_EQ(bad.Create().code, TSR_ERR_UNSUPPORTED);
}

TEST(LayerNormKernel, BadScaleShapeIsRejected) {
  OpTest t("LayerNormalization");
  t.SetName("ln");
  t.AddInput<float>({2, 4}, std::vector<float>(8)).AddInput<float>({3}, {1, 1, 1}).AddOutput(TSR_DTYPE_F32, {2, 4});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("ln"), std::string::npos);
}

// ---- BatchNormalization --------------------------------------------------------------------------------

TEST(BatchNormKernel, InferenceConstantAndRuntimeParameters) {
  Dims d{2, 3, 2, 2};
  auto x = RandomFloats(24, -2, 2, 51);
  std::vector<float> sc{1.f, 2.f, 0.5f}, b{0.f, 1.f, -1.f}, m{0.1f, -0.2f, 0.3f}, v{1.f, 0.5f, 2.f};
  std::vector<float> ref(24);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int s = 0; s < 4; ++s) {
        int i = (n * 3 + c) * 4 + s;
        ref[i] = static_cast<float>((x[i] - m[c]) / std::sqrt(double(v[c]) + 1e-3) * sc[c] + b[c]);
      }
  for (bool is_const : {true, false}) {
    OpTest t("BatchNormalization", "", 15);
    t.AddInput<float>(d, x).AddInput<float>({3}, sc, is_const).AddInput<float>({3}, b, is_const);
    t.AddInput<float>({3}, m, is_const).AddInput<float>({3}, v, is_const).AddOutput(TSR_DTYPE_F32, d);
    t.SetAttrFloat("epsilon", 1e-3f);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-5f, 1e-6f)) << (is_const ? "const" : "runtime");
  }
  OpTest r2("BatchNormalization", "", 15);  // rank 2 [N, C]
  r2.AddInput<float>({2, 3}, {1, 2, 3, 4, 5, 6}).AddInput<float>({3}, sc).AddInput<float>({3}, b);
  r2.AddInput<float>({3}, m).AddInput<float>({3}, v).AddOutput(TSR_DTYPE_F32, {2, 3});
  ASSERT_TRUE(r2.Run().ok()) << r2.last_error();
  EXPECT_NEAR(r2.Output<float>(0)[4], (5 - (-0.2)) / std::sqrt(0.5 + 1e-5) * 2 + 1, 1e-4);
}

TEST(BatchNormKernel, RejectsTrainingAndBadParameters) {
  Dims d{1, 2, 2};
  std::vector<float> x(4, 1.f), p2{1, 1};
  {
    OpTest t("BatchNormalization", "", 15);
    t.SetName("bn");
    t.AddInput<float>(d, x).AddInput<float>({3}, {1, 1, 1}).AddInput<float>({2}, p2).AddInput<float>({2}, p2);
    t.AddInput<float>({2}, p2).AddOutput(TSR_DTYPE_F32, d);
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("bn"), std::string::npos);
    EXPECT_NE(e.message.find("scale"), std::string::npos) << e.message;
  }
  {
    OpTest t("BatchNormalization", "", 9);  // training before opset 14 (5 outputs) is not supported
    t.AddInput<float>(d, x).AddInput<float>({2}, p2).AddInput<float>({2}, p2).AddInput<float>({2}, p2);
    t.AddInput<float>({2}, p2).AddOutput(TSR_DTYPE_F32, d).SetAttrInt("training_mode", 1);
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED) << e.message << " opset " << t.node().opset;
  }
  {
    OpTest t("BatchNormalization", "", 15);  // running mean requested without training_mode
    t.SetName("bn");
    t.AddInput<float>(d, x).AddInput<float>({2}, p2).AddInput<float>({2}, p2).AddInput<float>({2}, p2);
    t.AddInput<float>({2}, p2).AddOutput(TSR_DTYPE_F32, d).AddOutput(TSR_DTYPE_F32, {2});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("training_mode"), std::string::npos) << e.message;
  }
}

TEST(BatchNormKernel, TrainingModeUsesBatchStatistics) {
  Dims d{2, 3, 2};
  auto x = RandomFloats(12, -2, 2, 17);
  std::vector<float> sc{1, 2, 0.5f}, b{0, 1, -1}, im{0.1f, 0.2f, 0.3f}, iv{1, 2, 3};
  OpTest t("BatchNormalization", "", 15);
  t.AddInput<float>(d, x).AddInput<float>({3}, sc).AddInput<float>({3}, b).AddInput<float>({3}, im);
  t.AddInput<float>({3}, iv).SetAttrInt("training_mode", 1).SetAttrFloat("momentum", 0.8f);
  t.AddOutput(TSR_DTYPE_F32, d).AddOutput(TSR_DTYPE_F32, {3}).AddOutput(TSR_DTYPE_F32, {3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto y = t.Output<float>(0), rm = t.Output<float>(1), rv = t.Output<float>(2);
  for (int c = 0; c < 3; ++c) {
    double m = 0, v = 0;
    for (int n = 0; n < 2; ++n)
      for (int s = 0; s < 2; ++s) m += x[(n * 3 + c) * 2 + s];
    m /= 4;
    for (int n = 0; n < 2; ++n)
      for (int s = 0; s < 2; ++s) v += (x[(n * 3 + c) * 2 + s] - m) * (x[(n * 3 + c) * 2 + s] - m);
    v /= 4;
    EXPECT_NEAR(rm[c], im[c] * 0.8 + m * 0.2, 1e-5);
    EXPECT_NEAR(rv[c], iv[c] * 0.8 + v * 0.2, 1e-5);
    for (int n = 0; n < 2; ++n)
      for (int s = 0; s < 2; ++s) {
        int p = (n * 3 + c) * 2 + s;
        EXPECT_NEAR(y[p], (x[p] - m) / std::sqrt(v + 1e-5) * sc[c] + b[c], 1e-4);
      }
  }
}

// ---- generic reductions (L1/L2/LogSum/LogSumExp/SumSquare, other dtypes, empty sets) ----------------------

TEST(ReduceKernel, NormsAndLogReductionsMatchReference) {
  Dims d{2, 3, 4};
  auto x = RandomFloats(24, -2, 2, 23);
  // Reduce over axes {0, 2}: 3 outputs of 8 values each.
  for (const char* op : {"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}) {
    OpTest t(op, "", 18);
    std::vector<float> xin = x;
    if (std::string(op) == "ReduceLogSum")
      for (float& v : xin) v = std::fabs(v) + 0.1f;
    t.AddInput<float>(d, xin).AddInput<int64_t>({2}, {0, -1}, true).AddOutput(TSR_DTYPE_F32, {1, 3, 1});
    ASSERT_TRUE(t.Run().ok()) << op << ": " << t.last_error();
    auto y = t.Output<float>(0);
    for (int c = 0; c < 3; ++c) {
      std::vector<double> v;
      for (int n = 0; n < 2; ++n)
        for (int k = 0; k < 4; ++k) v.push_back(xin[(n * 3 + c) * 4 + k]);
      double r = 0;
      std::string o = op;
      for (double e : v) r += o == "ReduceL1" ? std::fabs(e) : o == "ReduceLogSumExp" ? std::exp(e) : o == "ReduceLogSum" ? e : e * e;
      if (o == "ReduceL2") r = std::sqrt(r);
      if (o == "ReduceLogSum" || o == "ReduceLogSumExp") r = std::log(r);
      EXPECT_NEAR(y[c], r, 1e-5 * (1 + std::fabs(r))) << op << " c=" << c;
    }
  }
}

TEST(ReduceKernel, OtherDtypesAndEmptySets) {
  {
    OpTest t("ReduceLogSumExp", "", 18);  // f64, large values stay finite
    t.AddInput<double>({2, 2}, {1000, 1000, -1, 2}).AddInput<int64_t>({1}, {1}, true).AddOutput(TSR_DTYPE_F64, {2, 1});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    auto y = t.Output<double>(0);
    EXPECT_NEAR(y[0], 1000 + std::log(2.0), 1e-9);
    EXPECT_NEAR(y[1], std::log(std::exp(-1.0) + std::exp(2.0)), 1e-12);
  }
  {
    OpTest t("ReduceMax", "", 20);  // bool
    t.AddInputBool({2, 2}, {false, true, false, false}).AddInput<int64_t>({1}, {1}, true);
    t.AddOutput(TSR_DTYPE_BOOL, {2, 1});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<bool>(0), (std::vector<bool>{true, false}));
    OpTest m("ReduceMin", "", 20);
    m.AddInputBool({2, 2}, {true, true, false, true}).AddInput<int64_t>({1}, {1}, true);
    m.AddOutput(TSR_DTYPE_BOOL, {2, 1});
    ASSERT_TRUE(m.Run().ok()) << m.last_error();
    EXPECT_EQ(m.Output<bool>(0), (std::vector<bool>{true, false}));
  }
  {
    OpTest t("ReduceProd", "", 18);  // u8
    t.AddInput<uint8_t>({2, 3}, {1, 2, 3, 4, 5, 6}).AddInput<int64_t>({1}, {1}, true).AddOutput(TSR_DTYPE_U8, {2, 1});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<uint8_t>(0), (std::vector<uint8_t>{6, 120}));
  }
  // Zero-size reduced dims give the identity element.
  struct E {
    const char* op;
    float expect;
  };
  for (E e : {E{"ReduceSum", 0.f}, E{"ReduceProd", 1.f}, E{"ReduceL1", 0.f}, E{"ReduceL2", 0.f},
              E{"ReduceSumSquare", 0.f}, E{"ReduceMax", -INFINITY}, E{"ReduceMin", INFINITY},
              E{"ReduceLogSum", -INFINITY}, E{"ReduceLogSumExp", -INFINITY}}) {
    OpTest t(e.op, "", 18);
    t.AddInput<float>({2, 0, 4}, {}).AddInput<int64_t>({1}, {1}, true).AddOutput(TSR_DTYPE_F32, {2, 1, 4});
    ASSERT_TRUE(t.Run().ok()) << e.op << ": " << t.last_error();
    auto y = t.Output<float>(0);
    ASSERT_EQ(y.size(), 8u);
    for (float v : y) EXPECT_EQ(v, e.expect) << e.op;
  }
  {
    OpTest t("ReduceL2", "", 18);  // string-free but unsupported for bool
    t.SetName("rl2");
    t.AddInputBool({2}, {true, false}).AddOutput(TSR_DTYPE_BOOL, {1});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("rl2"), std::string::npos) << e.message;
  }
}

// ---- Global pools ----------------------------------------------------------------------------------------

TEST(GlobalPoolKernel, AverageAndMax) {
  Dims d{2, 3, 4, 5};
  auto x = RandomFloats(120, -1, 1, 61);
  std::vector<float> avg, mx;
  for (int p = 0; p < 6; ++p) {
    double s = 0;
    float m = -INFINITY;
    for (int i = 0; i < 20; ++i) {
      s += x[p * 20 + i];
      m = std::max(m, x[p * 20 + i]);
    }
    avg.push_back(static_cast<float>(s / 20));
    mx.push_back(m);
  }
  OpTest a("GlobalAveragePool");
  a.AddInput<float>(d, x).AddOutput(TSR_DTYPE_F32, {2, 3, 1, 1});
  ASSERT_TRUE(a.Run().ok()) << a.last_error();
  EXPECT_TRUE(AllClose(a.Output<float>(0), avg, 1e-5f, 1e-6f));
  OpTest m("GlobalMaxPool");
  m.AddInput<float>(d, x).AddOutput(TSR_DTYPE_F32, {2, 3, 1, 1});
  ASSERT_TRUE(m.Run().ok()) << m.last_error();
  EXPECT_EQ(m.Output<float>(0), mx);
  OpTest bad("GlobalAveragePool");
  bad.AddInput<float>({4}, {1, 2, 3, 4}).AddOutput(TSR_DTYPE_F32, {1});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(ReductionClaims, DtypesAndConstantAxes) {
  OpTest r("ReduceSum", "", 13);
  r.AddInput<float>({2, 3}, std::vector<float>(6)).AddInput<int64_t>({1}, {1}).AddOutput(TSR_DTYPE_F32, {2, 1});
  EXPECT_NE(r.Claim().find("constant"), std::string::npos) << r.Claim();
  OpTest ok("ReduceSum", "", 13);
  ok.AddInput<float>({2, 3}, std::vector<float>(6)).AddInput<int64_t>({1}, {1}, true).AddOutput(TSR_DTYPE_F32, {2, 1});
  EXPECT_EQ(ok.Claim(), "");
  OpTest sm("Softmax", "", 13);
  sm.AddInput<int32_t>({2}, {1, 2}).AddOutput(TSR_DTYPE_I32, {2});
  EXPECT_NE(sm.Claim(), "");
  OpTest sm64("Softmax", "", 13);
  sm64.AddInput<double>({2}, {1, 2}).AddOutput(TSR_DTYPE_F64, {2});
  EXPECT_EQ(sm64.Claim(), "");
  OpTest bn("BatchNormalization", "", 15);
  bn.AddInput<float>({1, 1}, {1}).AddInput<float>({1}, {1}).AddInput<float>({1}, {1}).AddInput<float>({1}, {1});
  bn.AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_F32, {1, 1}).AddOutput(TSR_DTYPE_F32, {1});
  EXPECT_NE(bn.Claim().find("training_mode"), std::string::npos) << bn.Claim();
  OpTest bt("BatchNormalization", "", 15);
  bt.AddInput<float>({1, 1}, {1}).AddInput<float>({1}, {1}).AddInput<float>({1}, {1}).AddInput<float>({1}, {1});
  bt.AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_F32, {1, 1}).SetAttrInt("training_mode", 1);
  EXPECT_EQ(bt.Claim(), "");
}

}  // namespace
}  // namespace tessera::cpu
