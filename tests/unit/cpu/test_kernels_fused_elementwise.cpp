// tessera.FusedElementwise kernel against an op-by-op double-precision
// reference interpreter of the same program.
#include <gtest/gtest.h>

#include <cmath>
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

// Opcodes (graph/ops_fused_elementwise.cpp).
enum : int64_t {
  kAdd = 0, kSub, kMul, kDiv, kMax, kMin, kPow,
  kNeg, kAbs, kRelu, kLeakyRelu, kSigmoid, kTanh, kExp, kLog, kSqrt, kReciprocal, kErf,
  kGelu, kGeluTanh, kClip, kHardSigmoid, kHardSwish, kSoftplus,
};

struct In {
  std::vector<int64_t> dims;
  std::vector<float> data;
};

double RefOp(int64_t op, double a, double b, double p0, double p1) {
  switch (op) {
    case kAdd: return a + b;
    case kSub: return a - b;
    case kMul: return a * b;
    case kDiv: return a / b;
    case kMax: return std::max(a, b);
    case kMin: return std::min(a, b);
    case kPow: return std::pow(a, b);
    case kNeg: return -a;
    case kAbs: return std::fabs(a);
    case kRelu: return a > 0 ? a : 0;
    case kLeakyRelu: return a >= 0 ? a : p0 * a;
    case kSigmoid: return 1 / (1 + std::exp(-a));
    case kTanh: return std::tanh(a);
    case kExp: return std::exp(a);
    case kLog: return std::log(a);
    case kSqrt: return std::sqrt(a);
    case kReciprocal: return 1 / a;
    case kErf: return std::erf(a);
    case kGelu: return 0.5 * a * (1 + std::erf(a / std::sqrt(2.0)));
    case kGeluTanh: return 0.5 * a * (1 + std::tanh(std::sqrt(2 / M_PI) * (a + 0.044715 * a * a * a)));
    case kClip: return std::min(std::max(a, p0), p1);
    case kHardSigmoid: return std::min(1.0, std::max(0.0, p0 * a + p1));
    case kHardSwish: return a * std::min(1.0, std::max(0.0, a / 6 + 0.5));
    case kSoftplus: return std::log1p(std::exp(a));
    default: ADD_FAILURE() << "bad opcode " << op; return 0;
  }
}

bool IsBinary(int64_t op) { return op <= kPow; }
int NumParams(int64_t op) { return op == kLeakyRelu ? 1 : (op == kClip || op == kHardSigmoid) ? 2 : 0; }

// Evaluates the program instruction by instruction over whole tensors of the
// output shape (inputs broadcast, constants splatted), in double.
std::vector<float> Reference(const std::vector<In>& ins, const std::vector<float>& constants,
                             const std::vector<int64_t>& program, const std::vector<int64_t>& out_dims) {
  const int64_t n = NumElements(out_dims);
  std::vector<std::vector<double>> regs;
  for (const In& x : ins) {
    std::vector<double> r(static_cast<size_t>(n));
    for (int64_t e = 0; e < n; ++e) r[e] = x.data[BroadcastIndex(Unravel(e, out_dims), x.dims)];
    regs.push_back(std::move(r));
  }
  for (float c : constants) regs.emplace_back(static_cast<size_t>(n), static_cast<double>(c));
  for (size_t i = 0; i < program.size(); i += 5) {
    const int64_t op = program[i];
    std::vector<double> r(static_cast<size_t>(n));
    const std::vector<double>& a = regs[program[i + 2]];
    const bool bin = IsBinary(op);
    const int np = NumParams(op);
    for (int64_t e = 0; e < n; ++e) {
      double b = bin ? regs[program[i + 3]][e] : 0;
      double p0 = np >= 1 ? regs[program[i + 3]][0] : 0;
      double p1 = np >= 2 ? regs[program[i + 4]][0] : 0;
      r[e] = RefOp(op, a[e], b, p0, p1);
    }
    regs.push_back(std::move(r));
  }
  std::vector<float> out(regs.back().begin(), regs.back().end());
  return out;
}

// Runs the kernel and compares with the reference.
void Check(const std::vector<In>& ins, const std::vector<float>& constants, const std::vector<int64_t>& program,
           const std::vector<int64_t>& out_dims, float rtol = 2e-5f, float atol = 2e-6f) {
  OpTest t("FusedElementwise", "tessera");
  for (const In& x : ins) t.AddInput<float>(x.dims, x.data);
  t.AddOutput(TSR_DTYPE_F32, out_dims);
  t.SetAttrInts("program", program);
  if (!constants.empty()) t.SetAttrFloats("constants", constants);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), Reference(ins, constants, program, out_dims), rtol, atol));
}

In Rand(std::vector<int64_t> dims, float lo, float hi, uint32_t seed) {
  In x;
  x.data = RandomFloats(NumElements(dims), lo, hi, seed);
  x.dims = std::move(dims);
  return x;
}

TEST(FusedElementwiseKernel, EveryUnaryOpcode) {
  const std::vector<int64_t> dims = {3, 171};  // 513 elements: two full tiles and a tail
  for (int64_t op = kNeg; op <= kSoftplus; ++op) {
    SCOPED_TRACE("opcode " + std::to_string(op));
    const bool positive = op == kLog || op == kSqrt || op == kReciprocal;
    In x = Rand(dims, positive ? 0.05f : -4.f, 4.f, static_cast<uint32_t>(op));
    std::vector<float> constants;
    std::vector<int64_t> program = {op, 1, 0, -1, -1};
    if (op == kLeakyRelu) {
      constants = {0.3f};
      program = {op, 2, 0, 1, -1};
    } else if (op == kClip) {
      constants = {-1.5f, 0.75f};
      program = {op, 3, 0, 1, 2};
    } else if (op == kHardSigmoid) {
      constants = {0.25f, 0.4f};
      program = {op, 3, 0, 1, 2};
    }
    Check({x}, constants, program, dims);
  }
}

TEST(FusedElementwiseKernel, EveryBinaryOpcodeWithBroadcastAndScalars) {
  const std::vector<int64_t> dims = {4, 5, 67};
  for (int64_t op = kAdd; op <= kPow; ++op) {
    SCOPED_TRACE("opcode " + std::to_string(op));
    const float lo = op == kPow ? 0.1f : -2.f;
    In a = Rand(dims, lo, 2.f, 11);
    In b = Rand({5, 1}, op == kDiv ? 0.5f : -2.f, 2.f, 12);  // column broadcast (gathered)
    In c = Rand({67}, op == kDiv ? 0.5f : -2.f, 2.f, 13);    // trailing broadcast (gathered)
    In s = {{1}, {1.75f}};                                   // runtime one-element input
    // r4 = a op b; r5 = r4 op c (c is b's role for pow: keep the base positive);
    // r6 = s op r5 / r5 op s; r7 = r6 op const; r8 = const op a.
    if (op == kPow) {
      Check({a, b, c, s}, {2.f, 3.f},
            {kPow, 6, 0, 4, -1,      // a ^ 2 (fast path)
             kPow, 7, 0, 1, -1,      // a ^ b (broadcast exponent)
             kPow, 8, 0, 5, -1,      // a ^ 3
             kAdd, 9, 6, 7, -1, kAdd, 10, 9, 8, -1},
            dims, 1e-4f, 1e-5f);
      continue;
    }
    Check({a, b, c, s}, {0.5f},
          {op, 5, 0, 1, -1, op, 6, 5, 2, -1, op, 7, 3, 6, -1, op, 8, 7, 4, -1, op, 9, 4, 8, -1, op, 10, 9, 3, -1},
          dims, 1e-4f, 1e-5f);
  }
}

TEST(FusedElementwiseKernel, SiluAndGeluChains) {
  In x = Rand({2, 1000}, -6.f, 6.f, 3);
  Check({x}, {}, {kSigmoid, 1, 0, -1, -1, kMul, 2, 0, 1, -1}, {2, 1000});
  // x * 0.5 * (1 + erf(x / sqrt(2))) written out as a chain.
  Check({x}, {0.5f, 1.f, 0.70710678f},
        {kMul, 4, 0, 3, -1, kErf, 5, 4, -1, -1, kAdd, 6, 5, 2, -1, kMul, 7, 0, 6, -1, kMul, 8, 7, 1, -1}, {2, 1000});
}

TEST(FusedElementwiseKernel, AddMulSubWithLeadingBroadcast) {
  // (a + b) * c - d with a [2,3,4], b [4], c [3,1], d [1,3,4].
  In a = Rand({2, 3, 4}, -1.f, 1.f, 21), b = Rand({4}, -1.f, 1.f, 22), c = Rand({3, 1}, -1.f, 1.f, 23),
     d = Rand({1, 3, 4}, -1.f, 1.f, 24);
  Check({a, b, c, d}, {}, {kAdd, 4, 0, 1, -1, kMul, 5, 4, 2, -1, kSub, 6, 5, 3, -1}, {2, 3, 4});
}

TEST(FusedElementwiseKernel, DeepTreeReusesSlotsAndMatchesReference) {
  // Balanced tree of 5 gathered/direct inputs and 40 instructions over an odd size.
  const std::vector<int64_t> dims = {7, 13, 37};
  std::vector<In> ins = {Rand(dims, -1.f, 1.f, 31), Rand({13, 37}, -1.f, 1.f, 32), Rand({7, 1, 1}, -1.f, 1.f, 33),
                         Rand({1, 13, 1}, -1.f, 1.f, 34), Rand(dims, -1.f, 1.f, 35)};
  const std::vector<float> constants = {0.25f, -0.5f};
  const int64_t base = 7;
  std::vector<int64_t> program;
  std::vector<int64_t> level = {0, 1, 2, 3, 4, 0, 4, 2};
  const int64_t ops[] = {kAdd, kMul, kSub, kMax, kMin};
  int64_t next = base, k = 0;
  while (level.size() > 1) {
    std::vector<int64_t> up;
    for (size_t i = 0; i + 1 < level.size(); i += 2) {
      program.insert(program.end(), {ops[k++ % 5], next, level[i], level[i + 1], -1});
      int64_t r = next++;
      program.insert(program.end(), {kTanh, next, r, -1, -1});
      r = next++;
      program.insert(program.end(), {kMul, next, r, 5 + (k % 2), -1});
      up.push_back(next++);
    }
    level = up;
  }
  Check(ins, constants, program, dims, 1e-4f, 1e-5f);
}

TEST(FusedElementwiseKernel, ScalarOnlyProgramFillsOutput) {
  // One-element input and constants only: evaluated once, broadcast into [2,3].
  Check({{{1}, {0.3f}}}, {2.f}, {kMul, 2, 0, 1, -1, kExp, 3, 2, -1, -1}, {2, 3});
  Check({{{1, 1}, {-0.7f}}}, {}, {kAbs, 1, 0, -1, -1}, {1, 1});
}

TEST(FusedElementwiseKernel, RunAgainUsesNewInputs) {
  OpTest t("FusedElementwise", "tessera");
  t.AddInput<float>({600}, RandomFloats(600, -1.f, 1.f, 5));
  t.AddInput<float>({1}, {2.f});
  t.AddOutput(TSR_DTYPE_F32, {600});
  t.SetAttrInts("program", {kMul, 2, 0, 1, -1, kRelu, 3, 2, -1, -1});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  for (int i = 0; i < 600; ++i) t.InputData<float>(0)[i] = static_cast<float>(i % 7) - 3.f;
  t.InputData<float>(1)[0] = -1.5f;
  ASSERT_TRUE(t.RunAgain().ok()) << t.last_error();
  std::vector<float> y = t.Output<float>(0);
  for (int i = 0; i < 600; ++i) {
    float x = static_cast<float>(i % 7) - 3.f;
    ASSERT_FLOAT_EQ(y[i], std::max(0.f, x * -1.5f)) << i;
  }
}

// The fused opcodes give the same results as the standalone ONNX kernels,
// including NaN, infinities and signed zeros.
TEST(FusedElementwiseKernel, MatchesOnnxKernelsOnSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> xs = {nan, inf, -inf, 0.f, -0.f, 1e-30f, -3.f, -0.5f, 0.5f, 2.9f, 3.f, 6.f, 100.f, -100.f};
  const std::vector<int64_t> dims = {static_cast<int64_t>(xs.size())};
  struct Case {
    const char* onnx;
    int64_t op;
    std::vector<float> params;  // attributes for the ONNX op, constants for the fused one
  };
  const std::vector<Case> cases = {
      {"Relu", kRelu, {}},           {"LeakyRelu", kLeakyRelu, {0.1f}}, {"HardSigmoid", kHardSigmoid, {0.2f, 0.5f}},
      {"HardSwish", kHardSwish, {}}, {"Sigmoid", kSigmoid, {}},        {"Tanh", kTanh, {}},
      {"Exp", kExp, {}},             {"Erf", kErf, {}},                {"Softplus", kSoftplus, {}},
      {"Abs", kAbs, {}},             {"Neg", kNeg, {}},                {"Sqrt", kSqrt, {}},
      {"Log", kLog, {}},             {"Reciprocal", kReciprocal, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.onnx);
    OpTest ref(c.onnx);
    ref.AddInput<float>(dims, xs);
    ref.AddOutput(TSR_DTYPE_F32, dims);
    if (c.op == kLeakyRelu) ref.SetAttrFloat("alpha", c.params[0]);
    if (c.op == kHardSigmoid) {
      ref.SetAttrFloat("alpha", c.params[0]);
      ref.SetAttrFloat("beta", c.params[1]);
    }
    ASSERT_TRUE(ref.Run().ok()) << ref.last_error();
    OpTest f("FusedElementwise", "tessera");
    f.AddInput<float>(dims, xs);
    f.AddOutput(TSR_DTYPE_F32, dims);
    const int64_t k = static_cast<int64_t>(c.params.size());
    f.SetAttrInts("program", {c.op, 1 + k, 0, k >= 1 ? 1 : -1, k >= 2 ? 2 : -1});
    if (k) f.SetAttrFloats("constants", c.params);
    ASSERT_TRUE(f.Run().ok()) << f.last_error();
    std::vector<float> a = f.Output<float>(0), e = ref.Output<float>(0);
    for (size_t i = 0; i < xs.size(); ++i) {
      if (std::isnan(e[i])) {
        EXPECT_TRUE(std::isnan(a[i])) << "x=" << xs[i];
      } else {
        EXPECT_EQ(a[i], e[i]) << "x=" << xs[i];
      }
    }
  }
  // Clip bounds: ONNX Clip with scalar inputs vs opcode Clip with constants.
  OpTest ref("Clip");
  ref.AddInput<float>(dims, xs);
  ref.AddInput<float>({}, {-1.f}, true);
  ref.AddInput<float>({}, {2.f}, true);
  ref.AddOutput(TSR_DTYPE_F32, dims);
  ASSERT_TRUE(ref.Run().ok()) << ref.last_error();
  OpTest f("FusedElementwise", "tessera");
  f.AddInput<float>(dims, xs);
  f.AddOutput(TSR_DTYPE_F32, dims);
  f.SetAttrFloats("constants", {-1.f, 2.f});
  f.SetAttrInts("program", {kClip, 3, 0, 1, 2});
  ASSERT_TRUE(f.Run().ok()) << f.last_error();
  EXPECT_TRUE(AllClose(f.Output<float>(0), ref.Output<float>(0), 0.f, 0.f));
}

// ---- bad inputs ---------------------------------------------------------------------

struct BadCase {
  const char* what;
  std::vector<int64_t> program;
  std::vector<float> constants;
  const char* expect;  // substring of the message
};

TEST(FusedElementwiseKernel, RejectsMalformedPrograms) {
  const std::vector<BadCase> cases = {
      {"empty", {}, {}, "non-empty multiple of 5"},
      {"not multiple of 5", {kAdd, 2, 0, 1}, {}, "non-empty multiple of 5"},
      {"unknown opcode", {99, 2, 0, 1, -1}, {}, "unknown opcode 99"},
      {"negative opcode", {-1, 2, 0, 1, -1}, {}, "unknown opcode"},
      {"wrong dst", {kAdd, 5, 0, 1, -1}, {}, "dst must be register 2"},
      {"forward reference", {kAdd, 2, 0, 3, -1, kNeg, 3, 2, -1, -1}, {}, "not defined before it"},
      {"self reference", {kNeg, 2, 2, -1, -1}, {}, "not defined before it"},
      {"negative operand", {kAdd, 2, 0, -1, -1}, {}, "not defined before it"},
      {"param from input", {kLeakyRelu, 3, 0, 1, -1}, {0.1f}, "must be a constant register"},
      {"missing param", {kClip, 3, 0, 2, -1}, {0.1f}, "must be a constant register"},
      {"unused operand set", {kRelu, 2, 0, 1, -1}, {}, "unused operand 1 must be -1"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.what);
    OpTest t("FusedElementwise", "tessera");
    t.SetName("fused_bad");
    t.AddInput<float>({4}, {1, 2, 3, 4});
    t.AddInput<float>({4}, {1, 2, 3, 4});
    t.AddOutput(TSR_DTYPE_F32, {4});
    t.SetAttrInts("program", c.program);
    if (!c.constants.empty()) t.SetAttrFloats("constants", c.constants);
    Err e = t.Create();
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("fused_bad"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find(c.expect), std::string::npos) << e.message;
  }
}

TEST(FusedElementwiseKernel, RejectsMissingProgramAndBadAttributeTypes) {
  {
    OpTest t("FusedElementwise", "tessera");
    t.AddInput<float>({4}, {1, 2, 3, 4});
    t.AddOutput(TSR_DTYPE_F32, {4});
    Err e = t.Create();
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.message.find("'program' (ints) is required"), std::string::npos) << e.message;
  }
  {
    OpTest t("FusedElementwise", "tessera");
    t.AddInput<float>({4}, {1, 2, 3, 4});
    t.AddOutput(TSR_DTYPE_F32, {4});
    t.SetAttrInts("program", {kNeg, 1, 0, -1, -1});
    t.SetAttrInts("constants", {1});
    Err e = t.Create();
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.message.find("'constants' must be floats"), std::string::npos) << e.message;
  }
}

TEST(FusedElementwiseKernel, RejectsBadTensors) {
  {
    OpTest t("FusedElementwise", "tessera");
    t.AddInput<int32_t>({4}, {1, 2, 3, 4});
    t.AddOutput(TSR_DTYPE_F32, {4});
    t.SetAttrInts("program", {kNeg, 1, 0, -1, -1});
    Err e = t.Create();
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("input 0 must be f32"), std::string::npos) << e.message;
    EXPECT_FALSE(t.Claim().empty());
  }
  {
    OpTest t("FusedElementwise", "tessera");
    t.AddInput<float>({2, 3}, {1, 2, 3, 4, 5, 6});
    t.AddInput<float>({2}, {1, 2});
    t.AddOutput(TSR_DTYPE_F32, {2, 3});
    t.SetAttrInts("program", {kAdd, 2, 0, 1, -1});
    Err e = t.Create();
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("input 1"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("do not broadcast"), std::string::npos) << e.message;
  }
  {
    OpTest t("FusedElementwise", "tessera");
    t.AddInput<float>({4}, {1, 2, 3, 4});
    t.AddOutput(TSR_DTYPE_I32, {4});
    t.SetAttrInts("program", {kNeg, 1, 0, -1, -1});
    Err e = t.Create();
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.message.find("output must be f32"), std::string::npos) << e.message;
  }
  {
    OpTest t("FusedElementwise", "tessera");
    t.AddOutput(TSR_DTYPE_F32, {4});
    t.SetAttrInts("program", {kNeg, 1, 0, -1, -1});
    Err e = t.Create();
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.message.find("at least one input"), std::string::npos) << e.message;
  }
}

TEST(FusedElementwiseKernel, ClaimAcceptsF32) {
  OpTest t("FusedElementwise", "tessera");
  t.AddInput<float>({4}, {1, 2, 3, 4});
  t.AddOutput(TSR_DTYPE_F32, {4});
  t.SetAttrInts("program", {kNeg, 1, 0, -1, -1});
  EXPECT_EQ(t.Claim(), "");
}

}  // namespace
}  // namespace tessera::cpu
