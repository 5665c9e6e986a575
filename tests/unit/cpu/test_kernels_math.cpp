// kernels_math.cpp: elementwise math over every numeric dtype, against naive
// references computed here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

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

// Runs a binary op on T inputs with broadcasting and returns output R.
template <typename T, typename R = T>
std::vector<R> RunBinary(const std::string& op, const std::vector<T>& a, const Dims& da, const std::vector<T>& b,
                         const Dims& db, const Dims& out, int32_t out_dt = testing::DTypeOf<R>(),
                         const std::function<void(OpTest&)>& attrs = nullptr) {
  OpTest t(op);
  t.AddInput<T>(da, a);
  t.AddInput<T>(db, b);
  t.AddOutput(out_dt, out);
  if (attrs) attrs(t);
  Err e = t.Run();
  EXPECT_TRUE(e.ok()) << op << ": " << e.message;
  return t.Output<R>(0);
}

// ---- integer arithmetic over all widths ----------------------------------------------------

template <typename T>
void CheckIntArith() {
  const Dims da{2, 3}, db{3}, out{2, 3};
  std::vector<T> a, b;
  const T hi = std::numeric_limits<T>::max(), lo = std::numeric_limits<T>::lowest();
  a = {hi, lo, T(7), T(100), T(3), T(9)};
  b = {T(1), T(2), T(3)};
  auto wrap = [](auto v) { return static_cast<T>(v); };  // modular conversion (C++20)
  EXPECT_EQ(RunBinary<T>("Add", a, da, b, db, out),
            (RefBinary<T, T>(a, da, b, db, out, [&](T x, T y) { return wrap(uint64_t(x) + uint64_t(y)); })));
  EXPECT_EQ(RunBinary<T>("Sub", a, da, b, db, out),
            (RefBinary<T, T>(a, da, b, db, out, [&](T x, T y) { return wrap(uint64_t(x) - uint64_t(y)); })));
  EXPECT_EQ(RunBinary<T>("Mul", a, da, b, db, out),
            (RefBinary<T, T>(a, da, b, db, out, [&](T x, T y) { return wrap(uint64_t(x) * uint64_t(y)); })));
  EXPECT_EQ(RunBinary<T>("Div", a, da, b, db, out),
            (RefBinary<T, T>(a, da, b, db, out, [&](T x, T y) { return static_cast<T>(x / y); })));
  EXPECT_EQ((RunBinary<T, bool>("Greater", a, da, b, db, out, TSR_DTYPE_BOOL)),
            (RefBinary<T, bool>(a, da, b, db, out, [](T x, T y) { return x > y; })));
  EXPECT_EQ((RunBinary<T, bool>("LessOrEqual", a, da, b, db, out, TSR_DTYPE_BOOL)),
            (RefBinary<T, bool>(a, da, b, db, out, [](T x, T y) { return x <= y; })));
  EXPECT_EQ((RunBinary<T, bool>("Equal", a, da, b, db, out, TSR_DTYPE_BOOL)),
            (RefBinary<T, bool>(a, da, b, db, out, [](T x, T y) { return x == y; })));
}

TEST(MathArith, AllIntegerWidthsWrapAndBroadcast) {
  CheckIntArith<int8_t>();
  CheckIntArith<int16_t>();
  CheckIntArith<int32_t>();
  CheckIntArith<int64_t>();
  CheckIntArith<uint8_t>();
  CheckIntArith<uint16_t>();
  CheckIntArith<uint32_t>();
  CheckIntArith<uint64_t>();
}

TEST(MathArith, U16MultiplyDoesNotOverflowThroughInt) {
  std::vector<uint16_t> a{65535, 40000}, b{65535, 3};
  auto y = RunBinary<uint16_t>("Mul", a, {2}, b, {2}, {2});
  EXPECT_EQ(y, (std::vector<uint16_t>{1, static_cast<uint16_t>(120000u)}));
}

TEST(MathArith, DoubleAndHalf) {
  std::vector<double> a{1.5, -2.25, 6.0}, b{0.5, 4.0, 4.0};
  EXPECT_EQ(RunBinary<double>("Div", a, {3}, b, {3}, {3}), (std::vector<double>{3.0, -0.5625, 1.5}));
  // f16 bit patterns: 1.0 = 0x3c00, 2.0 = 0x4000, 3.0 = 0x4200, -1.5 = 0xbe00, 0.5 = 0x3800.
  OpTest t("Add");
  t.AddInput<uint16_t>(TSR_DTYPE_F16, {3}, {0x3c00, 0x4000, 0xbe00}).AddInput<uint16_t>(TSR_DTYPE_F16, {1}, {0x3c00});
  t.AddOutput(TSR_DTYPE_F16, {3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<uint16_t>(0), (std::vector<uint16_t>{0x4000, 0x4200, 0xb800}));
  // bf16: 1.0 = 0x3f80, 2.0 = 0x4000, 3.0 = 0x4040.
  OpTest m("Mul");
  m.AddInput<uint16_t>(TSR_DTYPE_BF16, {2}, {0x3f80, 0x4040}).AddInput<uint16_t>(TSR_DTYPE_BF16, {2}, {0x4000, 0x4000});
  m.AddOutput(TSR_DTYPE_BF16, {2});
  ASSERT_TRUE(m.Run().ok()) << m.last_error();
  EXPECT_EQ(m.Output<uint16_t>(0), (std::vector<uint16_t>{0x4000, 0x40c0}));
}

TEST(MathArith, IntegerDivisionByZeroAndDtypeMismatchFail) {
  OpTest t("Div");
  t.SetName("dz");
  t.AddInput<uint8_t>({2}, {4, 5}).AddInput<uint8_t>({2}, {2, 0}).AddOutput(TSR_DTYPE_U8, {2});
  Err e = t.Run();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("dz"), std::string::npos);
  EXPECT_NE(e.message.find("division by zero"), std::string::npos);
  OpTest m("Add");
  m.SetName("mix");
  m.AddInput<int8_t>({2}, {1, 2}).AddInput<int16_t>({2}, {1, 2}).AddOutput(TSR_DTYPE_I8, {2});
  e = m.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("mix"), std::string::npos);
  OpTest s("Add");
  s.AddInput<int8_t>({3}, {1, 2, 3}).AddInput<int8_t>({2}, {1, 2}).AddOutput(TSR_DTYPE_I8, {3});
  EXPECT_EQ(s.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- Mod ---------------------------------------------------------------------------------------

TEST(MathMod, IntegerSignFollowsDivisorUnlessFmod) {
  std::vector<int32_t> a{-4, 7, 5, 4, -7, 8}, b{2, -3, 8, -2, 3, 5};
  auto py = RefBinary<int32_t, int32_t>(a, {6}, b, {6}, {6}, [](int32_t x, int32_t y) {
    int32_t r = x % y;
    return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
  });
  EXPECT_EQ(RunBinary<int32_t>("Mod", a, {6}, b, {6}, {6}), py);
  EXPECT_EQ(py, (std::vector<int32_t>{0, -2, 5, 0, 2, 3}));
  auto c = RunBinary<int32_t>("Mod", a, {6}, b, {6}, {6}, TSR_DTYPE_I32, [](OpTest& t) { t.SetAttrInt("fmod", 1); });
  EXPECT_EQ(c, (std::vector<int32_t>{0, 1, 5, 0, -1, 3}));
  std::vector<int8_t> a8{-128, 127}, b8{-1, -1};
  EXPECT_EQ(RunBinary<int8_t>("Mod", a8, {2}, b8, {2}, {2}), (std::vector<int8_t>{0, 0}));
  std::vector<uint64_t> au{10, 7}, bu{3};
  EXPECT_EQ(RunBinary<uint64_t>("Mod", au, {2}, bu, {1}, {2}), (std::vector<uint64_t>{1, 1}));
}

TEST(MathMod, FloatNeedsFmodAndMatchesStdFmod) {
  std::vector<float> a{-4.3f, 7.2f, 5.0f}, b{2.1f, -3.4f, 8.0f};
  auto y = RunBinary<float>("Mod", a, {3}, b, {3}, {3}, TSR_DTYPE_F32, [](OpTest& t) { t.SetAttrInt("fmod", 1); });
  for (int i = 0; i < 3; ++i) EXPECT_EQ(y[i], std::fmod(a[i], b[i]));
  OpTest t("Mod");
  t.SetName("m0");
  t.AddInput<float>({1}, {1.f}).AddInput<float>({1}, {2.f}).AddOutput(TSR_DTYPE_F32, {1});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("fmod"), std::string::npos);
  EXPECT_NE(t.Claim(), "");
  OpTest z("Mod");
  z.AddInput<int64_t>({1}, {3}).AddInput<int64_t>({1}, {0}).AddOutput(TSR_DTYPE_I64, {1});
  EXPECT_EQ(z.Run().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- bitwise --------------------------------------------------------------------------------

TEST(MathBitwise, AndOrXorNotShift) {
  std::vector<int16_t> a{0x0f0f, -1, 0x1234}, b{0x00ff};
  EXPECT_EQ(RunBinary<int16_t>("BitwiseAnd", a, {3}, b, {1}, {3}), (std::vector<int16_t>{0x000f, 0x00ff, 0x0034}));
  EXPECT_EQ(RunBinary<int16_t>("BitwiseOr", a, {3}, b, {1}, {3}),
            (std::vector<int16_t>{0x0fff, -1, 0x12ff}));
  EXPECT_EQ(RunBinary<int16_t>("BitwiseXor", a, {3}, b, {1}, {3}),
            (std::vector<int16_t>{0x0ff0, static_cast<int16_t>(0xff00), 0x12cb}));
  OpTest n("BitwiseNot");
  n.AddInput<uint8_t>({3}, {0, 0x0f, 0xff}).AddOutput(TSR_DTYPE_U8, {3});
  ASSERT_TRUE(n.Run().ok()) << n.last_error();
  EXPECT_EQ(n.Output<uint8_t>(0), (std::vector<uint8_t>{0xff, 0xf0, 0}));

  std::vector<uint8_t> x{16, 4, 1}, s{1, 2, 7};
  auto left = RunBinary<uint8_t>("BitShift", x, {3}, s, {3}, {3}, TSR_DTYPE_U8,
                                 [](OpTest& t) { t.SetAttrString("direction", "LEFT"); });
  EXPECT_EQ(left, (std::vector<uint8_t>{32, 16, 128}));
  std::vector<uint64_t> x64{1ull << 63, 255}, s64{63, 64};
  auto right = RunBinary<uint64_t>("BitShift", x64, {2}, s64, {2}, {2}, TSR_DTYPE_U64,
                                   [](OpTest& t) { t.SetAttrString("direction", "RIGHT"); });
  EXPECT_EQ(right, (std::vector<uint64_t>{1, 0}));  // shifting by the width gives 0

  OpTest bad("BitShift");
  bad.SetName("bs");
  bad.AddInput<uint8_t>({1}, {1}).AddInput<uint8_t>({1}, {1}).AddOutput(TSR_DTYPE_U8, {1});
  bad.SetAttrString("direction", "UP");
  Err e = bad.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("direction"), std::string::npos);
  OpTest f("BitwiseAnd");
  f.AddInput<float>({1}, {1}).AddInput<float>({1}, {1}).AddOutput(TSR_DTYPE_F32, {1});
  EXPECT_EQ(f.Create().code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(f.Claim(), "");
}

// ---- variadic, Pow ----------------------------------------------------------------------------

TEST(MathVariadic, MaxMinOverNarrowTypesAndMeanF64) {
  OpTest mx("Max");
  mx.AddInput<uint8_t>({3}, {1, 200, 3}).AddInput<uint8_t>({1}, {100}).AddInput<uint8_t>({3}, {0, 0, 250});
  mx.AddOutput(TSR_DTYPE_U8, {3});
  ASSERT_TRUE(mx.Run().ok()) << mx.last_error();
  EXPECT_EQ(mx.Output<uint8_t>(0), (std::vector<uint8_t>{100, 200, 250}));
  OpTest mn("Min");
  mn.AddInput<uint16_t>(TSR_DTYPE_F16, {2}, {0x3c00, 0xbe00}).AddInput<uint16_t>(TSR_DTYPE_F16, {2}, {0x3800, 0x4000});
  mn.AddOutput(TSR_DTYPE_F16, {2});
  ASSERT_TRUE(mn.Run().ok()) << mn.last_error();
  EXPECT_EQ(mn.Output<uint16_t>(0), (std::vector<uint16_t>{0x3800, 0xbe00}));
  OpTest me("Mean");
  me.AddInput<double>({2}, {1.0, 2.0}).AddInput<double>({2}, {2.0, 2.0}).AddInput<double>({1}, {0.0});
  me.AddOutput(TSR_DTYPE_F64, {2});
  ASSERT_TRUE(me.Run().ok()) << me.last_error();
  EXPECT_EQ(me.Output<double>(0), (std::vector<double>{1.0, 4.0 / 3.0}));
  OpTest mi("Mean");
  mi.AddInput<int32_t>({1}, {1}).AddOutput(TSR_DTYPE_I32, {1});
  EXPECT_EQ(mi.Create().code, TSR_ERR_UNSUPPORTED);
}

TEST(MathPow, MixedBaseAndExponentTypes) {
  {
    OpTest t("Pow");
    t.AddInput<int32_t>({3}, {1, 2, 3}).AddInput<float>({3}, {4.f, 5.f, 6.f}).AddOutput(TSR_DTYPE_I32, {3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{1, 32, 729}));
  }
  {
    OpTest t("Pow");
    t.AddInput<int64_t>({2}, {3, -2}).AddInput<int64_t>({1}, {3}).AddOutput(TSR_DTYPE_I64, {2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{27, -8}));
  }
  {
    OpTest t("Pow");
    t.AddInput<float>({2}, {2.f, 0.5f}).AddInput<uint64_t>({2}, {10, 2}).AddOutput(TSR_DTYPE_F32, {2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1024.f, 0.25f}));
  }
  OpTest bad("Pow");
  bad.AddInput<uint8_t>({1}, {2}).AddInput<uint8_t>({1}, {2}).AddOutput(TSR_DTYPE_U8, {1});
  EXPECT_EQ(bad.Create().code, TSR_ERR_UNSUPPORTED);
}

// ---- unary math and activations ----------------------------------------------------------------

struct UnaryCase {
  const char* op;
  double (*ref)(double);
  float lo, hi;
};

double Softsign(double x) { return x / (1 + std::fabs(x)); }

TEST(MathUnary, TrigAndHyperbolicF32F64) {
  const UnaryCase cases[] = {
      {"Sin", [](double x) { return std::sin(x); }, -6, 6},     {"Cos", [](double x) { return std::cos(x); }, -6, 6},
      {"Tan", [](double x) { return std::tan(x); }, -1.2f, 1.2f}, {"Asin", [](double x) { return std::asin(x); }, -1, 1},
      {"Acos", [](double x) { return std::acos(x); }, -1, 1},   {"Atan", [](double x) { return std::atan(x); }, -9, 9},
      {"Sinh", [](double x) { return std::sinh(x); }, -5, 5},   {"Cosh", [](double x) { return std::cosh(x); }, -5, 5},
      {"Asinh", [](double x) { return std::asinh(x); }, -9, 9}, {"Acosh", [](double x) { return std::acosh(x); }, 1, 9},
      {"Atanh", [](double x) { return std::atanh(x); }, -0.99f, 0.99f},
      {"Softsign", &Softsign, -9, 9},
      {"Exp", [](double x) { return std::exp(x); }, -20, 20},   {"Log", [](double x) { return std::log(x); }, 0.01f, 50},
      {"Erf", [](double x) { return std::erf(x); }, -3, 3},     {"Sqrt", [](double x) { return std::sqrt(x); }, 0, 9},
  };
  for (const UnaryCase& c : cases) {
    SCOPED_TRACE(c.op);
    auto x = RandomFloats(37, c.lo, c.hi);
    OpTest t(c.op);
    t.AddInput<float>({37}, x).AddOutput(TSR_DTYPE_F32, {37});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> ref;
    for (float v : x) ref.push_back(static_cast<float>(c.ref(v)));
    EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-5f, 1e-6f));
    std::vector<double> xd(x.begin(), x.end());
    OpTest d(c.op);
    d.AddInput<double>({37}, xd).AddOutput(TSR_DTYPE_F64, {37});
    ASSERT_TRUE(d.Run().ok()) << d.last_error();
    auto yd = d.Output<double>(0);
    for (size_t i = 0; i < xd.size(); ++i) EXPECT_NEAR(yd[i], c.ref(xd[i]), 1e-12 * (1 + std::fabs(c.ref(xd[i]))));
  }
}

TEST(MathUnary, HalfComputesInFloatAndRoundsBack) {
  OpTest t("Sqrt");
  // 4.0 = 0x4400, 2.0 = 0x3c00 + 1 exponent = 0x4000; 0.25 = 0x3400 -> 0.5 = 0x3800.
  t.AddInput<uint16_t>(TSR_DTYPE_F16, {2}, {0x4400, 0x3400}).AddOutput(TSR_DTYPE_F16, {2});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<uint16_t>(0), (std::vector<uint16_t>{0x4000, 0x3800}));
}

TEST(MathUnary, RoundHalfToEvenAndSign) {
  OpTest t("Round");
  t.AddInput<float>({6}, {0.5f, 1.5f, 2.5f, -2.5f, 2.6f, -0.4f}).AddOutput(TSR_DTYPE_F32, {6});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto y = t.Output<float>(0);
  EXPECT_EQ(y, (std::vector<float>{0.f, 2.f, 2.f, -2.f, 3.f, -0.f}));
  OpTest s("Sign");
  s.AddInput<uint32_t>({3}, {0, 5, 7}).AddOutput(TSR_DTYPE_U32, {3});
  ASSERT_TRUE(s.Run().ok()) << s.last_error();
  EXPECT_EQ(s.Output<uint32_t>(0), (std::vector<uint32_t>{0, 1, 1}));
  OpTest a("Abs");
  a.AddInput<int8_t>({3}, {-128, -5, 7}).AddOutput(TSR_DTYPE_I8, {3});
  ASSERT_TRUE(a.Run().ok()) << a.last_error();
  EXPECT_EQ(a.Output<int8_t>(0), (std::vector<int8_t>{-128, 5, 7}));  // |MIN| wraps
  OpTest n("Neg");
  n.AddInput<uint8_t>({1}, {1}).AddOutput(TSR_DTYPE_U8, {1});
  EXPECT_EQ(n.Create().code, TSR_ERR_UNSUPPORTED);
}

TEST(MathUnary, ParameterisedActivations) {
  auto x = RandomFloats(64, -4.f, 4.f);
  struct Act {
    const char* op;
    std::function<void(OpTest&)> attrs;
    std::function<double(double)> ref;
  };
  const Act acts[] = {
      {"Selu", [](OpTest& t) { t.SetAttrFloat("alpha", 2.f).SetAttrFloat("gamma", 3.f); },
       [](double v) { return v > 0 ? 3 * v : 3 * (2 * std::exp(v) - 2); }},
      {"Celu", [](OpTest& t) { t.SetAttrFloat("alpha", 2.f); },
       [](double v) { return std::max(0.0, v) + std::min(0.0, 2 * (std::exp(v / 2) - 1)); }},
      {"ThresholdedRelu", [](OpTest& t) { t.SetAttrFloat("alpha", 2.f); }, [](double v) { return v > 2 ? v : 0; }},
      {"Shrink", [](OpTest& t) { t.SetAttrFloat("lambd", 1.5f).SetAttrFloat("bias", 0.5f); },
       [](double v) { return v < -1.5 ? v + 0.5 : (v > 1.5 ? v - 0.5 : 0); }},
      {"Swish", [](OpTest& t) { t.SetAttrFloat("alpha", 0.5f); }, [](double v) { return v / (1 + std::exp(-0.5 * v)); }},
      {"HardSwish", nullptr, [](double v) { return v * std::min(1.0, std::max(0.0, v / 6 + 0.5)); }},
      {"HardSigmoid", [](OpTest& t) { t.SetAttrFloat("alpha", 0.5f).SetAttrFloat("beta", 0.6f); },
       [](double v) { return std::min(1.0, std::max(0.0, 0.5 * v + 0.6)); }},
      {"LeakyRelu", [](OpTest& t) { t.SetAttrFloat("alpha", 0.1f); }, [](double v) { return v >= 0 ? v : 0.1 * v; }},
      {"Elu", [](OpTest& t) { t.SetAttrFloat("alpha", 2.f); }, [](double v) { return v >= 0 ? v : 2 * std::expm1(v); }},
      {"Softplus", nullptr, [](double v) { return std::log1p(std::exp(v)); }},
      {"Mish", nullptr, [](double v) { return v * std::tanh(std::log1p(std::exp(v))); }},
      {"Gelu", [](OpTest& t) { t.SetAttrString("approximate", "tanh"); },
       [](double v) { return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); }},
  };
  for (const Act& a : acts) {
    SCOPED_TRACE(a.op);
    OpTest t(a.op);
    t.AddInput<float>({64}, x).AddOutput(TSR_DTYPE_F32, {64});
    if (a.attrs) a.attrs(t);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> ref;
    for (float v : x) ref.push_back(static_cast<float>(a.ref(v)));
    EXPECT_TRUE(AllClose(t.Output<float>(0), ref, 1e-5f, 1e-6f));
    std::vector<double> xd(x.begin(), x.end());
    OpTest d(a.op);
    d.AddInput<double>({64}, xd).AddOutput(TSR_DTYPE_F64, {64});
    if (a.attrs) a.attrs(d);
    ASSERT_TRUE(d.Run().ok()) << d.last_error();
    auto yd = d.Output<double>(0);
    for (size_t i = 0; i < xd.size(); ++i) EXPECT_NEAR(yd[i], a.ref(xd[i]), 1e-6 * (1 + std::fabs(a.ref(xd[i]))));
  }
}

TEST(MathUnary, IsNaNIsInfAttributes) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x{1.f, inf, -inf, nan};
  OpTest n("IsNaN");
  n.AddInput<float>({4}, x).AddOutput(TSR_DTYPE_BOOL, {4});
  ASSERT_TRUE(n.Run().ok()) << n.last_error();
  EXPECT_EQ(n.Output<bool>(0), (std::vector<bool>{false, false, false, true}));
  OpTest i("IsInf");
  i.AddInput<float>({4}, x).AddOutput(TSR_DTYPE_BOOL, {4}).SetAttrInt("detect_positive", 0);
  ASSERT_TRUE(i.Run().ok()) << i.last_error();
  EXPECT_EQ(i.Output<bool>(0), (std::vector<bool>{false, false, true, false}));
  OpTest h("IsInf");  // f16 +inf = 0x7c00
  h.AddInput<uint16_t>(TSR_DTYPE_F16, {2}, {0x7c00, 0x3c00}).AddOutput(TSR_DTYPE_BOOL, {2});
  ASSERT_TRUE(h.Run().ok()) << h.last_error();
  EXPECT_EQ(h.Output<bool>(0), (std::vector<bool>{true, false}));
  OpTest bad("IsNaN");
  bad.AddInput<float>({4}, x).AddOutput(TSR_DTYPE_F32, {4});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- PRelu, Clip -------------------------------------------------------------------------------

TEST(MathPRelu, SlopeBroadcastsToX) {
  const Dims dx{2, 3, 2}, ds{3, 1};
  auto x = RandomFloats(12, -2.f, 2.f);
  std::vector<float> s{0.1f, 0.2f, 0.3f};
  OpTest t("PRelu");
  t.AddInput<float>(dx, x).AddInput<float>(ds, s).AddOutput(TSR_DTYPE_F32, dx);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto ref = RefBinary<float, float>(x, dx, s, ds, dx, [](float v, float a) { return v < 0 ? a * v : v; });
  EXPECT_EQ(t.Output<float>(0), ref);
  OpTest i("PRelu");
  i.AddInput<int32_t>({3}, {-4, 0, 5}).AddInput<int32_t>({1}, {3}).AddOutput(TSR_DTYPE_I32, {3});
  ASSERT_TRUE(i.Run().ok()) << i.last_error();
  EXPECT_EQ(i.Output<int32_t>(0), (std::vector<int32_t>{-12, 0, 5}));
  OpTest bad("PRelu");
  bad.SetName("pr");
  bad.AddInput<float>({2}, {1, 2}).AddInput<float>({3}, {1, 2, 3}).AddOutput(TSR_DTYPE_F32, {2});
  Err e = bad.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("pr"), std::string::npos);
}

TEST(MathClip, Int8WithOptionalBounds) {
  OpTest t("Clip", "", 13);
  t.AddInput<int8_t>({4}, {-100, -5, 5, 100}).AddMissingInput().AddInput<int8_t>({}, {10}, true);
  t.AddOutput(TSR_DTYPE_I8, {4});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int8_t>(0), (std::vector<int8_t>{-100, -5, 5, 10}));
  OpTest u("Clip", "", 13);
  u.AddInput<uint64_t>({3}, {1, 50, 1000}).AddInput<uint64_t>({}, {10}).AddInput<uint64_t>({}, {100});
  u.AddOutput(TSR_DTYPE_U64, {3});
  ASSERT_TRUE(u.Run().ok()) << u.last_error();
  EXPECT_EQ(u.Output<uint64_t>(0), (std::vector<uint64_t>{10, 50, 100}));
  OpTest bad("Clip", "", 13);
  bad.AddInput<int8_t>({1}, {1}).AddInput<int16_t>({}, {1}).AddOutput(TSR_DTYPE_I8, {1});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
  OpTest old("Clip", "", 6);
  old.AddInput<int32_t>({1}, {1}).AddOutput(TSR_DTYPE_I32, {1});
  EXPECT_EQ(old.Create().code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(old.Claim(), "");
}

// ---- Dropout ------------------------------------------------------------------------------------

TEST(MathDropout, TrainingMatchesNumpyLegacyStreamForSeed) {
  // numpy: np.random.seed(0); np.random.uniform(0, 1, 10) >= 0.5
  const std::vector<bool> mask{true, true, true, true, false, true, false, true, true, false};
  std::vector<float> x(10);
  for (int i = 0; i < 10; ++i) x[i] = static_cast<float>(i + 1);
  OpTest t("Dropout", "", 13);
  t.SetAttrInt("seed", 0);
  t.AddInput<float>({10}, x).AddInput<float>({}, {0.5f}, true).AddInputBool({}, {true}, true);
  t.AddOutput(TSR_DTYPE_F32, {10}).AddOutput(TSR_DTYPE_BOOL, {10});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<bool>(1), mask);
  auto y = t.Output<float>(0);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(y[i], mask[i] ? x[i] * 2.f : 0.f);
  // Ratio 0 in training mode is the identity.
  OpTest z("Dropout", "", 13);
  z.AddInput<float>({3}, {1, 2, 3}).AddInput<float>({}, {0.f}, true).AddInputBool({}, {true}, true);
  z.AddOutput(TSR_DTYPE_F32, {3}).AddOutput(TSR_DTYPE_BOOL, {3});
  ASSERT_TRUE(z.Run().ok()) << z.last_error();
  EXPECT_EQ(z.Output<float>(0), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(z.Output<bool>(1), std::vector<bool>(3, true));
  // A ratio outside [0, 1) is rejected.
  OpTest r("Dropout", "", 13);
  r.AddInput<float>({1}, {1}).AddInput<float>({}, {1.5f}, true).AddInputBool({}, {true}, true);
  r.AddOutput(TSR_DTYPE_F32, {1});
  EXPECT_EQ(r.Create().code, TSR_ERR_INVALID_ARGUMENT);
  // training_mode that is not a constant is neither claimed nor compiled.
  OpTest c("Dropout", "", 13);
  c.AddInput<float>({1}, {1}).AddMissingInput().AddInputBool({}, {true}).AddOutput(TSR_DTYPE_F32, {1});
  EXPECT_NE(c.Claim(), "");
  EXPECT_EQ(c.Create().code, TSR_ERR_UNSUPPORTED);
  OpTest ok("Dropout", "", 13);
  ok.AddInput<float>({1}, {1}).AddMissingInput().AddInputBool({}, {false}, true).AddOutput(TSR_DTYPE_F32, {1});
  EXPECT_EQ(ok.Claim(), "");
}

}  // namespace
}  // namespace tessera::cpu
