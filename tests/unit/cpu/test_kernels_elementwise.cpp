// Elementwise CPU kernels against naive references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/broadcast.h"
#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using testing::AllClose;
using testing::BroadcastIndex;
using testing::NumElements;
using testing::OpTest;
using testing::RandomFloats;
using testing::Unravel;

using Dims = std::vector<int64_t>;

// out[i] = f(a[bcast], b[bcast]) over `out` dims.
template <typename T, typename R>
std::vector<R> RefBinary(const std::vector<T>& a, const Dims& da, const std::vector<T>& b, const Dims& db,
                         const Dims& out, const std::function<R(T, T)>& f) {
  std::vector<R> y(static_cast<size_t>(NumElements(out)));
  for (int64_t i = 0; i < NumElements(out); ++i) {
    Dims idx = Unravel(i, out);
    y[i] = f(a[BroadcastIndex(idx, da)], b[BroadcastIndex(idx, db)]);
  }
  return y;
}

// ---- the broadcast plan itself -------------------------------------------------------------

TEST(BroadcastPlan, CollapsesSameShapeScalarAndBias) {
  Broadcast bc;
  Dims out{2, 3, 4}, same{2, 3, 4}, scalar{}, bias{4}, col{3, 1};
  ASSERT_EQ(MakeBroadcast(out, {&same, &same}, &bc), "");
  EXPECT_EQ(bc.rank, 1);
  EXPECT_EQ(bc.inner(), 24);
  EXPECT_TRUE(bc.is_full(0));
  ASSERT_EQ(MakeBroadcast(out, {&same, &scalar}, &bc), "");
  EXPECT_EQ(bc.rank, 1);
  EXPECT_EQ(bc.inner_stride(1), 0);
  ASSERT_EQ(MakeBroadcast(out, {&same, &bias}, &bc), "");
  EXPECT_EQ(bc.rank, 2);
  EXPECT_EQ(bc.dims[0], 6);
  EXPECT_EQ(bc.inner_stride(1), 1);
  EXPECT_EQ(bc.strides[1][0], 0);
  ASSERT_EQ(MakeBroadcast(out, {&same, &col}, &bc), "");
  EXPECT_EQ(bc.rank, 3);
  EXPECT_EQ(bc.inner_stride(1), 0);
  Dims bad{5};
  EXPECT_NE(MakeBroadcast(out, {&same, &bad}, &bc), "");
}

// ---- binary arithmetic -----------------------------------------------------------------------

struct BinCase {
  Dims a, b, out;
};

class ArithBroadcast : public ::testing::TestWithParam<BinCase> {};

TEST_P(ArithBroadcast, F32AllOpsMatchReference) {
  const BinCase& c = GetParam();
  auto a = RandomFloats(NumElements(c.a), -2.f, 2.f, 1);
  auto b = RandomFloats(NumElements(c.b), 0.5f, 3.f, 2);
  struct Op {
    const char* name;
    std::function<float(float, float)> f;
  } ops[] = {{"Add", [](float x, float y) { return x + y; }},
             {"Sub", [](float x, float y) { return x - y; }},
             {"Mul", [](float x, float y) { return x * y; }},
             {"Div", [](float x, float y) { return x / y; }},
             {"Pow", [](float x, float y) { return std::pow(std::fabs(x), y); }}};
  for (const Op& op : ops) {
    OpTest t(op.name);
    std::vector<float> av = a;
    if (std::string(op.name) == "Pow")
      for (float& v : av) v = std::fabs(v);
    t.AddInput<float>(c.a, av).AddInput<float>(c.b, b).AddOutput(TSR_DTYPE_F32, c.out);
    ASSERT_TRUE(t.Run().ok()) << op.name << ": " << t.last_error();
    EXPECT_TRUE(AllClose(t.Output<float>(0), RefBinary<float, float>(a, c.a, b, c.b, c.out, op.f), 1e-5f))
        << op.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ArithBroadcast,
                         ::testing::Values(BinCase{{2, 3, 4}, {2, 3, 4}, {2, 3, 4}},  // same shape
                                           BinCase{{2, 3, 4}, {3, 1}, {2, 3, 4}},     // middle broadcast
                                           BinCase{{1}, {2, 2}, {2, 2}},             // [1] + [2,2]
                                           BinCase{{}, {2, 3}, {2, 3}},              // scalar first
                                           BinCase{{4, 5}, {}, {4, 5}},              // scalar second
                                           BinCase{{5, 7}, {7}, {5, 7}},             // bias
                                           BinCase{{2, 1, 4}, {3, 1}, {2, 3, 4}},    // both broadcast
                                           BinCase{{3, 1}, {1, 4}, {3, 4}},          // outer product
                                           BinCase{{1, 1}, {1}, {1, 1}},             // all ones
                                           BinCase{{0, 3}, {3}, {0, 3}},             // empty
                                           BinCase{{2, 1, 3, 1, 2}, {1, 4, 1, 5, 1}, {2, 4, 3, 5, 2}},
                                           BinCase{{300, 257}, {257}, {300, 257}}));  // parallel path

TEST(ArithKernel, IntegerAddMulWrapAndDivTruncates) {
  {
    OpTest t("Add");
    t.AddInput<int32_t>({3}, {1, std::numeric_limits<int32_t>::max(), -5})
        .AddInput<int32_t>({}, {1})
        .AddOutput(TSR_DTYPE_I32, {3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{2, std::numeric_limits<int32_t>::min(), -4}));
  }
  {
    OpTest t("Mul");
    t.AddInput<int64_t>({2, 2}, {1, 2, 3, 4}).AddInput<int64_t>({2}, {10, -1}).AddOutput(TSR_DTYPE_I64, {2, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{10, -2, 30, -4}));
  }
  {
    OpTest t("Div");
    t.AddInput<int64_t>({4}, {-7, 7, 9, std::numeric_limits<int64_t>::min()})
        .AddInput<int64_t>({4}, {2, -2, 3, -1})
        .AddOutput(TSR_DTYPE_I64, {4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{-3, -3, 3, std::numeric_limits<int64_t>::min()}));
  }
  {
    OpTest t("Sub");
    t.AddInput<int32_t>({2}, {5, 6}).AddInput<int32_t>({2, 1}, {1, 2}).AddOutput(TSR_DTYPE_I32, {2, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{4, 5, 3, 4}));
  }
}

TEST(ArithKernel, IntegerDivisionByZeroFailsAtRunTime) {
  OpTest t("Div");
  t.SetName("div_node");
  t.AddInput<int32_t>({2}, {4, 5}).AddInput<int32_t>({2}, {1, 0}).AddOutput(TSR_DTYPE_I32, {2});
  Err e = t.Run();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("div_node"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("division by zero"), std::string::npos) << e.message;
}

TEST(ArithKernel, BadShapesAndDtypesAreRejected) {
  {
    OpTest t("Add");
    t.SetName("bad_add");
    t.AddInput<float>({2, 3}, std::vector<float>(6)).AddInput<float>({4}, std::vector<float>(4));
    t.AddOutput(TSR_DTYPE_F32, {2, 4});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("bad_add"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("Add"), std::string::npos) << e.message;
  }
  {
    OpTest t("Mul");
    t.AddInput<float>({2}, {1, 2}).AddInput<int32_t>({2}, {1, 2}).AddOutput(TSR_DTYPE_F32, {2});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
  {
    OpTest t("Add");
    t.AddInputBool({2}, {true, false}).AddInputBool({2}, {true, true}).AddOutput(TSR_DTYPE_BOOL, {2});
    EXPECT_EQ(t.Create().code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(t.Claim(), "");
  }
  {
    OpTest t("Add");
    t.AddInput<float>({2}, {1, 2}).AddOutput(TSR_DTYPE_F32, {2});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
}

TEST(PowKernel, IntegerAndScalarExponents) {
  {
    OpTest t("Pow");
    t.AddInput<float>({2, 2}, {1.5f, -2.f, 3.f, 0.5f}).AddInput<int64_t>({2}, {2, 3}).AddOutput(TSR_DTYPE_F32, {2, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_TRUE(AllClose(t.Output<float>(0), {2.25f, -8.f, 9.f, 0.125f}));
  }
  for (float p : {2.f, 1.f, 0.5f, -1.f}) {
    OpTest t("Pow");
    auto x = RandomFloats(50, 0.1f, 4.f);
    t.AddInput<float>({5, 10}, x).AddInput<float>({}, {p}, true).AddOutput(TSR_DTYPE_F32, {5, 10});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> ref;
    for (float v : x) ref.push_back(std::pow(v, p));
    EXPECT_TRUE(AllClose(t.Output<float>(0), ref)) << "p=" << p;
  }
  {
    OpTest t("Pow");  // scalar base, tensor exponent
    t.AddInput<float>({}, {2.f}).AddInput<float>({3}, {0.f, 1.f, 10.f}).AddOutput(TSR_DTYPE_F32, {3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_TRUE(AllClose(t.Output<float>(0), {1.f, 2.f, 1024.f}));
  }
  {
    OpTest t("Pow");
    t.AddInput<uint8_t>({1}, {2}).AddInput<uint8_t>({1}, {2}).AddOutput(TSR_DTYPE_U8, {1});
    EXPECT_EQ(t.Create().code, TSR_ERR_UNSUPPORTED);
  }
}

// ---- unary ----------------------------------------------------------------------------------------

struct UnaryCase {
  const char* op;
  float lo, hi;
  std::function<float(float)> ref;
};

class UnaryMath : public ::testing::TestWithParam<UnaryCase> {};

TEST_P(UnaryMath, MatchesStdReference) {
  const UnaryCase& c = GetParam();
  auto x = RandomFloats(1000, c.lo, c.hi, 7);
  x[0] = c.lo;  // include the interval ends
  x[1] = c.hi;
  OpTest t(c.op);
  t.AddInput<float>({10, 100}, x).AddOutput(TSR_DTYPE_F32, {10, 100});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> ref;
  for (float v : x) ref.push_back(c.ref(v));
  EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-5f, 1e-6f)) << c.op;
}

double SoftplusRef(double x) { return x > 30 ? x : std::log(1.0 + std::exp(x)); }

INSTANTIATE_TEST_SUITE_P(
    Ops, UnaryMath,
    ::testing::Values(
        UnaryCase{"Sqrt", 0.f, 100.f, [](float x) { return std::sqrt(x); }},
        UnaryCase{"Exp", -20.f, 20.f, [](float x) { return static_cast<float>(std::exp(double(x))); }},
        UnaryCase{"Log", 1e-3f, 1e3f, [](float x) { return static_cast<float>(std::log(double(x))); }},
        UnaryCase{"Erf", -4.f, 4.f, [](float x) { return static_cast<float>(std::erf(double(x))); }},
        UnaryCase{"Tanh", -10.f, 10.f, [](float x) { return static_cast<float>(std::tanh(double(x))); }},
        UnaryCase{"Sigmoid", -30.f, 30.f, [](float x) { return static_cast<float>(1.0 / (1.0 + std::exp(-double(x)))); }},
        UnaryCase{"Relu", -5.f, 5.f, [](float x) { return x > 0 ? x : 0.f; }},
        UnaryCase{"Neg", -5.f, 5.f, [](float x) { return -x; }},
        UnaryCase{"Abs", -5.f, 5.f, [](float x) { return std::fabs(x); }},
        UnaryCase{"Reciprocal", 0.1f, 10.f, [](float x) { return 1.f / x; }},
        UnaryCase{"Floor", -5.f, 5.f, [](float x) { return std::floor(x); }},
        UnaryCase{"Ceil", -5.f, 5.f, [](float x) { return std::ceil(x); }},
        UnaryCase{"Sign", -5.f, 5.f, [](float x) { return x > 0 ? 1.f : (x < 0 ? -1.f : 0.f); }},
        UnaryCase{"HardSigmoid", -6.f, 6.f, [](float x) { return std::min(1.f, std::max(0.f, 0.2f * x + 0.5f)); }},
        UnaryCase{"HardSwish", -6.f, 6.f,
                  [](float x) { return x * std::min(1.f, std::max(0.f, x / 6.f + 0.5f)); }},
        UnaryCase{"Softplus", -50.f, 50.f, [](float x) { return static_cast<float>(SoftplusRef(x)); }},
        UnaryCase{"Elu", -5.f, 5.f, [](float x) { return x >= 0 ? x : static_cast<float>(std::expm1(double(x))); }},
        UnaryCase{"Mish", -10.f, 10.f,
                  [](float x) { return static_cast<float>(x * std::tanh(SoftplusRef(x))); }},
        UnaryCase{"LeakyRelu", -5.f, 5.f, [](float x) { return x >= 0 ? x : 0.01f * x; }},
        UnaryCase{"Gelu", -6.f, 6.f,
                  [](float x) { return static_cast<float>(0.5 * x * (1.0 + std::erf(double(x) / std::sqrt(2.0)))); }}),
    [](const ::testing::TestParamInfo<UnaryCase>& i) { return std::string(i.param.op); });

TEST(UnaryKernel, AttributesAreHonoured) {
  auto x = RandomFloats(64, -4.f, 4.f, 3);
  auto check = [&](const char* op, std::function<void(OpTest&)> attrs, std::function<float(float)> ref) {
    OpTest t(op);
    t.AddInput<float>({64}, x).AddOutput(TSR_DTYPE_F32, {64});
    attrs(t);
    ASSERT_TRUE(t.Run().ok()) << op << ": " << t.last_error();
    std::vector<float> r;
    for (float v : x) r.push_back(ref(v));
    EXPECT_TRUE(AllClose(t.Output<float>(0), r)) << op;
  };
  check("LeakyRelu", [](OpTest& t) { t.SetAttrFloat("alpha", 0.3f); }, [](float v) { return v >= 0 ? v : 0.3f * v; });
  check("Elu", [](OpTest& t) { t.SetAttrFloat("alpha", 2.f); },
        [](float v) { return v >= 0 ? v : static_cast<float>(2.0 * std::expm1(double(v))); });
  check("HardSigmoid", [](OpTest& t) { t.SetAttrFloat("alpha", 0.5f).SetAttrFloat("beta", 0.25f); },
        [](float v) { return std::min(1.f, std::max(0.f, 0.5f * v + 0.25f)); });
  check("Gelu", [](OpTest& t) { t.SetAttrString("approximate", "tanh"); }, [](float v) {
    double d = v;
    return static_cast<float>(0.5 * d * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (d + 0.044715 * d * d * d))));
  });
}

// The SIMD paths (Exp, Sigmoid, Tanh, Erf, Gelu) against double references on
// dense ranges including tails, with a length that leaves a partial vector.
TEST(UnaryKernel, VectorMathIsAccurateAcrossRanges) {
  struct C {
    const char* op;
    const char* approx;
    double lo, hi;
    double (*ref)(double);
  } cases[] = {
      {"Exp", nullptr, -87.0, 88.0, [](double x) { return std::exp(x); }},
      {"Sigmoid", nullptr, -80.0, 30.0, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }},
      {"Tanh", nullptr, -10.0, 10.0, [](double x) { return std::tanh(x); }},
      {"Tanh", nullptr, -1e-3, 1e-3, [](double x) { return std::tanh(x); }},
      {"Erf", nullptr, -6.0, 6.0, [](double x) { return std::erf(x); }},
      {"Erf", nullptr, -1e-3, 1e-3, [](double x) { return std::erf(x); }},
      // Gelu's negative tail is tiny but must stay relatively accurate.
      {"Gelu", "none", -9.0, 10.0, [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }},
      {"Gelu", "tanh", -5.0, 10.0, [](double x) {
         double u = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
         return x / (1.0 + std::exp(-2.0 * u));
       }},
  };
  const int64_t n = 20001;
  for (const C& c : cases) {
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(c.lo + (c.hi - c.lo) * static_cast<double>(i) / (n - 1));
    OpTest t(c.op);
    t.AddInput<float>({n}, x).AddOutput(TSR_DTYPE_F32, {n});
    if (c.approx) t.SetAttrString("approximate", c.approx);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> ref;
    for (float v : x) ref.push_back(static_cast<float>(c.ref(v)));
    EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-5f, 0.f)) << c.op << (c.approx ? c.approx : "") << " on [" << c.lo
                                                                << ", " << c.hi << "]";
  }
}

TEST(UnaryKernel, VectorMathSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x{-inf, inf, nan, -200.f, 200.f, 0.f, -0.f};
  auto run = [&](const char* op) {
    OpTest t(op);
    t.AddInput<float>({7}, x).AddOutput(TSR_DTYPE_F32, {7});
    EXPECT_TRUE(t.Run().ok()) << t.last_error();
    return t.Output<float>(0);
  };
  auto e = run("Exp");
  EXPECT_EQ(e[0], 0.f);
  EXPECT_EQ(e[1], inf);
  EXPECT_TRUE(std::isnan(e[2]));
  EXPECT_EQ(e[3], 0.f);
  EXPECT_EQ(e[4], inf);
  EXPECT_EQ(e[5], 1.f);
  auto s = run("Sigmoid");
  EXPECT_EQ(s[0], 0.f);
  EXPECT_EQ(s[1], 1.f);
  EXPECT_TRUE(std::isnan(s[2]));
  EXPECT_EQ(s[5], 0.5f);
  for (const char* op : {"Tanh", "Erf"}) {
    auto y = run(op);
    EXPECT_EQ(y[0], -1.f) << op;
    EXPECT_EQ(y[1], 1.f) << op;
    EXPECT_TRUE(std::isnan(y[2])) << op;
    EXPECT_EQ(y[3], -1.f) << op;
    EXPECT_EQ(y[4], 1.f) << op;
    EXPECT_EQ(y[5], 0.f) << op;
  }
}

TEST(UnaryKernel, GeluRejectsUnknownApproximation) {
  OpTest t("Gelu");
  t.SetName("g1");
  t.AddInput<float>({2}, {1, 2}).AddOutput(TSR_DTYPE_F32, {2}).SetAttrString("approximate", "fast");
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("g1"), std::string::npos);
  EXPECT_NE(e.message.find("fast"), std::string::npos);
}

TEST(UnaryKernel, IntegerNegAbsSignRelu) {
  std::vector<int64_t> x{-3, 0, 7, std::numeric_limits<int64_t>::min()};
  struct C {
    const char* op;
    std::vector<int64_t> want;
  } cases[] = {{"Neg", {3, 0, -7, std::numeric_limits<int64_t>::min()}},
               {"Abs", {3, 0, 7, std::numeric_limits<int64_t>::min()}},
               {"Sign", {-1, 0, 1, -1}},
               {"Relu", {0, 0, 7, 0}}};
  for (const C& c : cases) {
    OpTest t(c.op);
    t.AddInput<int64_t>({4}, x).AddOutput(TSR_DTYPE_I64, {4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), c.want) << c.op;
  }
  OpTest t("Abs");
  t.AddInput<int32_t>({3}, {-1, 2, -3}).AddOutput(TSR_DTYPE_I32, {3});
  ASSERT_TRUE(t.Run().ok());
  EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{1, 2, 3}));
}

TEST(UnaryKernel, FloatOnlyOpsRejectIntegers) {
  OpTest t("Exp");
  t.SetName("e1");
  t.AddInput<int32_t>({2}, {1, 2}).AddOutput(TSR_DTYPE_I32, {2});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(e.message.find("e1"), std::string::npos);
  EXPECT_NE(t.Claim(), "");
}

// ---- Clip ----------------------------------------------------------------------------------------------

TEST(ClipKernel, AttributesBeforeOpset11) {
  OpTest t("Clip", "", 6);
  t.AddInput<float>({5}, {-3, -1, 0, 1, 3}).AddOutput(TSR_DTYPE_F32, {5});
  t.SetAttrFloat("min", -1.5f).SetAttrFloat("max", 2.f);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<float>(0), (std::vector<float>{-1.5f, -1, 0, 1, 2}));
}

TEST(ClipKernel, InputsConstantRuntimeAndOmitted) {
  {
    OpTest t("Clip", "", 13);
    t.AddInput<float>({5}, {-3, -1, 0, 1, 3}).AddInput<float>({}, {-0.5f}, true).AddInput<float>({}, {0.5f});
    t.AddOutput(TSR_DTYPE_F32, {5});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{-0.5f, -0.5f, 0, 0.5f, 0.5f}));
    t.InputData<float>(2)[0] = 2.f;  // non-constant max is read at run time
    ASSERT_TRUE(t.RunAgain().ok());
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{-0.5f, -0.5f, 0, 1, 2}));
  }
  {
    OpTest t("Clip", "", 13);
    t.AddInput<int64_t>({4}, {-9, 0, 5, 100}).AddMissingInput().AddInput<int64_t>({}, {6}, true);
    t.AddOutput(TSR_DTYPE_I64, {4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{-9, 0, 5, 6}));
  }
  {
    OpTest t("Clip", "", 13);
    t.AddInput<float>({2}, {1, 2}).AddInput<float>({2}, {0, 1}).AddOutput(TSR_DTYPE_F32, {2});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);  // min must be a scalar
  }
}

// ---- variadic Max / Min ------------------------------------------------------------------------------

TEST(VariadicKernel, MaxMinSumMeanBroadcastThreeInputs) {
  Dims d0{2, 1, 3}, d1{4, 1}, d2{}, out{2, 4, 3};
  auto a = RandomFloats(6, -1, 1, 10), b = RandomFloats(4, -1, 1, 11);
  std::vector<float> c{0.1f};
  for (const char* op : {"Max", "Min"}) {
    bool is_max = std::string(op) == "Max";
    OpTest t(op);
    t.AddInput<float>(d0, a).AddInput<float>(d1, b).AddInput<float>(d2, c).AddOutput(TSR_DTYPE_F32, out);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> ref(NumElements(out));
    for (int64_t i = 0; i < NumElements(out); ++i) {
      Dims idx = Unravel(i, out);
      float x = a[BroadcastIndex(idx, d0)], y = b[BroadcastIndex(idx, d1)];
      ref[i] = is_max ? std::max({x, y, c[0]}) : std::min({x, y, c[0]});
    }
    EXPECT_EQ(t.Output<float>(0), ref) << op;
  }
  for (const char* op : {"Sum", "Mean"}) {
    OpTest t(op);
    t.AddInput<float>(d0, a).AddInput<float>(d1, b).AddInput<float>(d2, c).AddOutput(TSR_DTYPE_F32, out);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> ref(NumElements(out));
    for (int64_t i = 0; i < NumElements(out); ++i) {
      Dims idx = Unravel(i, out);
      float s = a[BroadcastIndex(idx, d0)] + b[BroadcastIndex(idx, d1)] + c[0];
      ref[i] = std::string(op) == "Mean" ? s / 3.f : s;
    }
    EXPECT_TRUE(AllClose(t.Output<float>(0), ref)) << op;
  }
  OpTest one("Max");
  one.AddInput<int32_t>({1}, {4}).AddOutput(TSR_DTYPE_I32, {3});
  ASSERT_TRUE(one.Run().ok()) << one.last_error();
  EXPECT_EQ(one.Output<int32_t>(0), (std::vector<int32_t>{4, 4, 4}));
}

// ---- comparisons and logic ----------------------------------------------------------------------------

template <typename T>
void CheckCompares(const std::vector<T>& a, const Dims& da, const std::vector<T>& b, const Dims& db, const Dims& out) {
  struct C {
    const char* op;
    std::function<bool(T, T)> f;
  } cases[] = {{"Equal", [](T x, T y) { return x == y; }},
               {"Greater", [](T x, T y) { return x > y; }},
               {"GreaterOrEqual", [](T x, T y) { return x >= y; }},
               {"Less", [](T x, T y) { return x < y; }},
               {"LessOrEqual", [](T x, T y) { return x <= y; }}};
  for (const C& c : cases) {
    OpTest t(c.op);
    t.AddInput<T>(da, a);
    t.AddInput<T>(db, b);
    t.AddOutput(TSR_DTYPE_BOOL, out);
    ASSERT_TRUE(t.Run().ok()) << c.op << ": " << t.last_error();
    auto ref = RefBinary<T, bool>(a, da, b, db, out, c.f);
    EXPECT_EQ(t.Output<bool>(0), std::vector<bool>(ref.begin(), ref.end())) << c.op;
    // Output bytes are exactly 0/1.
    for (int64_t i = 0; i < NumElements(out); ++i) EXPECT_LE(t.OutputBytes(0)[i], 1);
  }
}

TEST(CompareKernel, AllTypesWithBroadcast) {
  CheckCompares<float>({1, 2, 3, 4, 5, 6}, {2, 3}, {2, 5, 3}, {3}, {2, 3});
  CheckCompares<int32_t>({1, 2, 3, 4}, {4, 1}, {2, 3}, {1, 2}, {4, 2});
  CheckCompares<int64_t>({1, 2, 3}, {3}, {2}, {}, {3});
}

TEST(CompareKernel, BoolInputsCompareTruthValues) {
  OpTest t("Equal");
  std::vector<uint8_t> a{0, 1, 2, 0}, b{0, 1, 1, 1};  // 2 reads as true
  t.AddInput<uint8_t>(TSR_DTYPE_BOOL, {4}, a).AddInput<uint8_t>(TSR_DTYPE_BOOL, {4}, b).AddOutput(TSR_DTYPE_BOOL, {4});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<bool>(0), (std::vector<bool>{true, true, true, false}));
}

TEST(CompareKernel, RejectsNonBoolOutput) {
  OpTest t("Less");
  t.AddInput<float>({1}, {1}).AddInput<float>({1}, {2}).AddOutput(TSR_DTYPE_F32, {1});
  EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(LogicKernel, AndOrXorNot) {
  std::vector<bool> a{false, true, false, true}, b{false, true};
  Dims da{2, 2}, db{2};
  struct C {
    const char* op;
    std::function<bool(bool, bool)> f;
  } cases[] = {{"And", [](bool x, bool y) { return x && y; }},
               {"Or", [](bool x, bool y) { return x || y; }},
               {"Xor", [](bool x, bool y) { return x != y; }}};
  for (const C& c : cases) {
    OpTest t(c.op);
    t.AddInputBool(da, a).AddInputBool(db, b).AddOutput(TSR_DTYPE_BOOL, da);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<bool> ref;
    for (int i = 0; i < 4; ++i) ref.push_back(c.f(a[i], b[i % 2]));
    EXPECT_EQ(t.Output<bool>(0), ref) << c.op;
  }
  OpTest n("Not");
  n.AddInputBool({3}, {true, false, true}).AddOutput(TSR_DTYPE_BOOL, {3});
  ASSERT_TRUE(n.Run().ok());
  EXPECT_EQ(n.Output<bool>(0), (std::vector<bool>{false, true, false}));
  OpTest bad("And");
  bad.AddInput<float>({1}, {1}).AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_BOOL, {1});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- Where -----------------------------------------------------------------------------------------------

template <typename T>
void CheckWhere(int32_t dtype, const std::vector<T>& x, const std::vector<T>& y) {
  Dims dc{2, 1}, dx{1, 3}, dy{}, out{2, 3};
  std::vector<bool> c{true, false};
  OpTest t("Where");
  t.AddInputBool(dc, c);
  t.AddInput<T>(dtype, dx, x);
  t.AddInput<T>(dtype, dy, y);
  t.AddOutput(dtype, out);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<T> ref;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) ref.push_back(c[i] ? x[j] : y[0]);
  EXPECT_EQ(t.Output<T>(0), ref);
}

TEST(WhereKernel, BroadcastsEveryElementSize) {
  CheckWhere<float>(TSR_DTYPE_F32, {1, 2, 3}, {-1});
  CheckWhere<int64_t>(TSR_DTYPE_I64, {1, 2, 3}, {-1});
  CheckWhere<uint16_t>(TSR_DTYPE_F16, {0x3c00, 0x4000, 0x4200}, {0xbc00});
  CheckWhere<uint8_t>(TSR_DTYPE_U8, {1, 2, 3}, {9});
}

TEST(WhereKernel, SameShapeFastPathAndErrors) {
  auto x = RandomFloats(1000), y = RandomFloats(1000, -1, 1, 99);
  std::vector<bool> c(1000);
  for (int i = 0; i < 1000; ++i) c[i] = (i * 7) % 3 == 0;
  OpTest t("Where");
  t.AddInputBool({1000}, c).AddInput<float>({1000}, x).AddInput<float>({1000}, y).AddOutput(TSR_DTYPE_F32, {1000});
  ASSERT_TRUE(t.Run().ok());
  auto got = t.Output<float>(0);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(got[i], c[i] ? x[i] : y[i]);

  OpTest bad("Where");
  bad.AddInput<float>({1}, {1}).AddInput<float>({1}, {1}).AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_F32, {1});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);  // condition not bool
}

// ---- Cast ---------------------------------------------------------------------------------------------------

TEST(CastKernel, FloatToIntTruncatesTowardZero) {
  OpTest t("Cast");
  t.AddInput<float>({5}, {-2.7f, -0.5f, 0.f, 0.9f, 2.5f}).AddOutput(TSR_DTYPE_I32, {5});
  t.SetAttrInt("to", TSR_DTYPE_I32);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{-2, 0, 0, 0, 2}));
}

TEST(CastKernel, ToAndFromBool) {
  {
    OpTest t("Cast");
    t.AddInput<float>({4}, {0.f, -0.f, 0.1f, -3.f}).AddOutput(TSR_DTYPE_BOOL, {4}).SetAttrInt("to", TSR_DTYPE_BOOL);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<uint8_t>(0), (std::vector<uint8_t>{0, 0, 1, 1}));
  }
  {
    OpTest t("Cast");
    t.AddInput<uint8_t>(TSR_DTYPE_BOOL, {3}, {0, 1, 5}).AddOutput(TSR_DTYPE_F32, {3}).SetAttrInt("to", TSR_DTYPE_F32);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{0, 1, 1}));
  }
  {
    OpTest t("Cast");
    t.AddInput<int64_t>({3}, {0, 256, -1}).AddOutput(TSR_DTYPE_BOOL, {3}).SetAttrInt("to", TSR_DTYPE_BOOL);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<uint8_t>(0), (std::vector<uint8_t>{0, 1, 1}));
  }
}

TEST(CastKernel, IntegerAndDoubleConversions) {
  {
    OpTest t("Cast");
    t.AddInput<int64_t>({3}, {-1, 300, 1LL << 40}).AddOutput(TSR_DTYPE_F64, {3}).SetAttrInt("to", TSR_DTYPE_F64);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<double>(0), (std::vector<double>{-1, 300, double(1LL << 40)}));
  }
  {
    OpTest t("Cast");  // integer narrowing wraps like static_cast
    t.AddInput<int32_t>({3}, {-1, 300, 65}).AddOutput(TSR_DTYPE_U8, {3}).SetAttrInt("to", TSR_DTYPE_U8);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<uint8_t>(0), (std::vector<uint8_t>{255, 44, 65}));
  }
  {
    OpTest t("Cast");
    t.AddInput<int8_t>({2}, {-128, 127}).AddOutput(TSR_DTYPE_I16, {2}).SetAttrInt("to", TSR_DTYPE_I16);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int16_t>(0), (std::vector<int16_t>{-128, 127}));
  }
  {
    OpTest t("Cast");  // same dtype: a copy
    t.AddInput<int64_t>({2}, {7, -7}).AddOutput(TSR_DTYPE_I64, {2}).SetAttrInt("to", TSR_DTYPE_I64);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{7, -7}));
  }
}

TEST(CastKernel, HalfKnownBitPatterns) {
  std::vector<float> x{1.f, -2.f, 65504.f, 65520.f, 0.1f, 6e-8f, 1e-8f, std::numeric_limits<float>::infinity(),
                       0.33325195f, 1.00048828125f /* tie: rounds to even 1.0 */};
  std::vector<uint16_t> want{0x3c00, 0xc000, 0x7bff, 0x7c00, 0x2e66, 0x0001, 0x0000, 0x7c00, 0x3555, 0x3c00};
  OpTest t("Cast");
  t.AddInput<float>({static_cast<int64_t>(x.size())}, x).AddOutput(TSR_DTYPE_F16, {static_cast<int64_t>(x.size())});
  t.SetAttrInt("to", TSR_DTYPE_F16);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<uint16_t>(0), want);

  OpTest back("Cast");
  std::vector<uint16_t> h{0x3c00, 0x0001, 0x8400, 0x7c00, 0x7e00, 0x3555};
  back.AddInput<uint16_t>(TSR_DTYPE_F16, {6}, h).AddOutput(TSR_DTYPE_F32, {6}).SetAttrInt("to", TSR_DTYPE_F32);
  ASSERT_TRUE(back.Run().ok()) << back.last_error();
  auto f = back.Output<float>(0);
  EXPECT_EQ(f[0], 1.f);
  EXPECT_EQ(f[1], std::ldexp(1.f, -24));
  EXPECT_EQ(f[2], -std::ldexp(1.f, -14));
  EXPECT_TRUE(std::isinf(f[3]));
  EXPECT_TRUE(std::isnan(f[4]));
  EXPECT_EQ(f[5], 0.33325195f);
}

TEST(CastKernel, BF16KnownBitPatterns) {
  std::vector<float> x{1.f, 0.1f, -3.f, std::numeric_limits<float>::quiet_NaN()};
  OpTest t("Cast");
  t.AddInput<float>({4}, x).AddOutput(TSR_DTYPE_BF16, {4}).SetAttrInt("to", TSR_DTYPE_BF16);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto b = t.Output<uint16_t>(0);
  EXPECT_EQ(b[0], 0x3f80);
  EXPECT_EQ(b[1], 0x3dcd);
  EXPECT_EQ(b[2], 0xc040);
  EXPECT_EQ(b[3] & 0x7f80, 0x7f80);
  EXPECT_NE(b[3] & 0x7f, 0);  // still NaN
}

// f32 -> f16/bf16 -> f32: within half an ULP of the narrow type; values that
// are exactly representable come back unchanged.
void RoundTrip(int32_t narrow, float rel) {
  auto x = RandomFloats(2000, -1000.f, 1000.f, 5);
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(i - 32) * 0.25f;  // exact in both
  OpTest a("Cast");
  a.AddInput<float>({2000}, x).AddOutput(narrow, {2000}).SetAttrInt("to", narrow);
  ASSERT_TRUE(a.Run().ok()) << a.last_error();
  auto bits = a.Output<uint16_t>(0);
  OpTest b("Cast");
  b.AddInput<uint16_t>(narrow, {2000}, bits).AddOutput(TSR_DTYPE_F32, {2000}).SetAttrInt("to", TSR_DTYPE_F32);
  ASSERT_TRUE(b.Run().ok()) << b.last_error();
  auto y = b.Output<float>(0);
  for (int i = 0; i < 2000; ++i) {
    if (i < 64) {
      ASSERT_EQ(y[i], x[i]) << i;
    }
    ASSERT_LE(std::fabs(y[i] - x[i]), rel * std::fabs(x[i])) << i << ": " << x[i] << " -> " << y[i];
  }
}

TEST(CastKernel, F16RoundTrip) { RoundTrip(TSR_DTYPE_F16, 1.f / 2048); }
TEST(CastKernel, BF16RoundTrip) { RoundTrip(TSR_DTYPE_BF16, 1.f / 256); }

TEST(CastKernel, F16ToIntAndBF16ToF16) {
  OpTest t("Cast");
  t.AddInput<uint16_t>(TSR_DTYPE_F16, {2}, {0xc0e0 /* -2.4375 */, 0x4500 /* 5 */})
      .AddOutput(TSR_DTYPE_I32, {2})
      .SetAttrInt("to", TSR_DTYPE_I32);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{-2, 5}));
  OpTest u("Cast");
  u.AddInput<uint16_t>(TSR_DTYPE_BF16, {1}, {0x3f80}).AddOutput(TSR_DTYPE_F16, {1}).SetAttrInt("to", TSR_DTYPE_F16);
  ASSERT_TRUE(u.Run().ok()) << u.last_error();
  EXPECT_EQ(u.Output<uint16_t>(0)[0], 0x3c00);
}

TEST(CastKernel, ErrorsNameTheNode) {
  {
    OpTest t("Cast");
    t.SetName("cast_no_to");
    t.AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_I32, {1});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("cast_no_to"), std::string::npos);
  }
  {
    OpTest t("Cast");  // output dtype disagrees with `to`
    t.AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_I64, {1}).SetAttrInt("to", TSR_DTYPE_I32);
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
}

TEST(CastLikeKernel, UsesTargetDtype) {
  OpTest t("CastLike");
  t.AddInput<float>({3}, {1.5f, -1.5f, 2.f}).AddInput<int64_t>({1}, {0}).AddOutput(TSR_DTYPE_I64, {3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{1, -1, 2}));
}

// ---- Identity / Dropout -----------------------------------------------------------------------------------

TEST(IdentityKernel, CopiesAnyDtype) {
  OpTest t("Identity");
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {3}, {1, 2, 3}).AddOutput(TSR_DTYPE_BF16, {3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<uint16_t>(0), (std::vector<uint16_t>{1, 2, 3}));
}

TEST(DropoutKernel, InferenceCopiesAndMaskIsTrue) {
  auto x = RandomFloats(10);
  OpTest t("Dropout", "", 13);
  t.AddInput<float>({2, 5}, x).AddInput<float>({}, {0.5f}, true).AddInputBool({}, {false}, true);
  t.AddOutput(TSR_DTYPE_F32, {2, 5}).AddOutput(TSR_DTYPE_BOOL, {2, 5});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<float>(0), x);
  EXPECT_EQ(t.Output<bool>(1), std::vector<bool>(10, true));
}

TEST(DropoutKernel, NonConstantTrainingModeIsRejected) {
  OpTest t("Dropout", "", 13);
  t.SetName("drop");
  t.AddInput<float>({2}, {1, 2}).AddMissingInput().AddInputBool({}, {true}).AddOutput(TSR_DTYPE_F32, {2});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(e.message.find("drop"), std::string::npos);
  EXPECT_NE(e.message.find("constant"), std::string::npos);
}

TEST(ElementwiseClaims, DtypeChecks) {
  OpTest cast_ok("Cast");
  cast_ok.AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_BF16, {1}).SetAttrInt("to", TSR_DTYPE_BF16);
  EXPECT_EQ(cast_ok.Claim(), "");
  OpTest eq("Equal");
  eq.AddInput<double>({1}, {1}).AddInput<double>({1}, {1}).AddOutput(TSR_DTYPE_BOOL, {1});
  EXPECT_EQ(eq.Claim(), "");
  OpTest ex("Exp");
  ex.AddInput<int8_t>({1}, {1}).AddOutput(TSR_DTYPE_I8, {1});
  EXPECT_NE(ex.Claim(), "");
  OpTest lt("Less");
  lt.AddInput<int64_t>({1}, {1}).AddInput<int64_t>({1}, {1}).AddOutput(TSR_DTYPE_BOOL, {1});
  EXPECT_EQ(lt.Claim(), "");
  OpTest nt("Not");
  nt.AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_F32, {1});
  EXPECT_NE(nt.Claim(), "");
}

}  // namespace
}  // namespace tessera::cpu
