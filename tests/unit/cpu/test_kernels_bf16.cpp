// bf16 in the non-oneDNN kernels that sit in the precision policy's bf16
// regions (compiler/precision.h): tessera.FusedElementwise and
// tessera.FusedAttention go through backends/cpu/bf16_adapter.h. Reference:
// the f32 kernel on the bf16-rounded inputs, rounded to bf16 — the adapter
// computes in f32, so the results must be bit-identical.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/bf16_adapter.h"
#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using testing::NumElements;
using testing::OpTest;
using testing::RandomFloats;

std::vector<uint16_t> ToBf16(const std::vector<float>& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = plugin::FloatToBF16Bits(v[i]);
  return r;
}
std::vector<float> Rounded(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = plugin::BF16BitsToFloat(plugin::FloatToBF16Bits(v[i]));
  return r;
}

// Add(x, y) -> Relu -> Mul(., 0.5) : program rows are {op, dst, a, b, c}; registers: x=0, y=1, const 0.5=2.
const std::vector<int64_t> kProgram = {0, 3, 0, 1, -1, /*Relu*/ 9, 4, 3, -1, -1, /*Mul*/ 2, 5, 4, 2, -1};

void FusedElementwise(OpTest& t) {
  t.SetAttrInts("program", kProgram);
  t.SetAttrFloats("constants", {0.5f});
}

TEST(Bf16RegionKernels, FusedElementwiseMatchesF32OnRoundedInputs) {
  const std::vector<int64_t> dx = {2, 3, 40}, dy = {3, 1};  // y broadcasts
  auto x = RandomFloats(NumElements(dx), -2.f, 2.f, 11);
  auto y = RandomFloats(NumElements(dy), -1.f, 1.f, 12);
  for (bool y_const : {false, true}) {
    OpTest ref("FusedElementwise", "tessera");
    ref.AddInput<float>(dx, Rounded(x));
    ref.AddInput<float>(dy, Rounded(y), y_const);
    ref.AddOutput(TSR_DTYPE_F32, dx);
    FusedElementwise(ref);
    ASSERT_TRUE(ref.Run().ok()) << ref.last_error();
    std::vector<uint16_t> want = ToBf16(ref.Output<float>(0));

    OpTest t("FusedElementwise", "tessera");
    t.AddInput<uint16_t>(TSR_DTYPE_BF16, dx, ToBf16(x));
    t.AddInput<uint16_t>(TSR_DTYPE_BF16, dy, ToBf16(y), y_const);
    t.AddOutput(TSR_DTYPE_BF16, dx);
    FusedElementwise(t);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<uint16_t>(0), want) << "constant y: " << y_const;
    ASSERT_TRUE(t.RunAgain().ok());
    EXPECT_EQ(t.Output<uint16_t>(0), want);
  }
}

TEST(Bf16RegionKernels, FusedElementwiseMixedF32AndBf16Inputs) {
  const std::vector<int64_t> d = {64};
  auto x = RandomFloats(64, -2.f, 2.f, 21), y = RandomFloats(64, -2.f, 2.f, 22);
  OpTest ref("FusedElementwise", "tessera");
  ref.AddInput<float>(d, Rounded(x));
  ref.AddInput<float>(d, y);
  ref.AddOutput(TSR_DTYPE_F32, d);
  FusedElementwise(ref);
  ASSERT_TRUE(ref.Run().ok()) << ref.last_error();
  OpTest t("FusedElementwise", "tessera");
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, d, ToBf16(x));
  t.AddInput<float>(d, y);
  t.AddOutput(TSR_DTYPE_F32, d);
  FusedElementwise(t);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<float>(0), ref.Output<float>(0));
}

// The output may share memory with an input (backend.h in-place rule).
TEST(Bf16RegionKernels, AdapterAllowsOutputAliasingAnInput) {
  const int64_t n = 100;
  auto xf = RandomFloats(n, -2.f, 2.f, 31), yf = RandomFloats(n, -2.f, 2.f, 32);
  OpTest ref("FusedElementwise", "tessera");
  ref.AddInput<float>({n}, Rounded(xf));
  ref.AddInput<float>({n}, Rounded(yf));
  ref.AddOutput(TSR_DTYPE_F32, {n});
  FusedElementwise(ref);
  ASSERT_TRUE(ref.Run().ok());
  OpTest t("FusedElementwise", "tessera");
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {n}, ToBf16(xf));
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {n}, ToBf16(yf));
  t.AddOutput(TSR_DTYPE_BF16, {n});
  FusedElementwise(t);
  ASSERT_TRUE(t.Create().ok()) << t.last_error();
  std::vector<uint16_t> x = ToBf16(xf), y = ToBf16(yf);
  const void* in[2] = {x.data(), y.data()};
  void* out[1] = {x.data()};  // in place over x
  ASSERT_TRUE(t.kernel()->Run(in, out).ok());
  EXPECT_EQ(x, ToBf16(ref.Output<float>(0)));
}

// The widening path (TESSERA_CPU_ATTN_BF16_DOT=0): bit-identical to the f32
// kernel on rounded inputs. The default vdpbf16ps path rounds the
// probabilities too; test_cpu_attention_bf16.cpp checks it with that bound.
TEST(Bf16RegionKernels, FusedAttentionBf16MatchesF32SoftmaxInside) {
  const char* saved = std::getenv("TESSERA_CPU_ATTN_BF16_DOT");
  const std::string restore = saved ? saved : "";
  setenv("TESSERA_CPU_ATTN_BF16_DOT", "0", 1);
  struct Restore {
    bool had;
    std::string value;
    ~Restore() {
      if (had) setenv("TESSERA_CPU_ATTN_BF16_DOT", value.c_str(), 1);
      else unsetenv("TESSERA_CPU_ATTN_BF16_DOT");
    }
  } restore_env{saved != nullptr, restore};
  const int64_t B = 1, H = 2, S = 8, D = 16;
  auto q = RandomFloats(B * H * S * D, -1.f, 1.f, 41), k = RandomFloats(B * H * S * D, -1.f, 1.f, 42),
       v = RandomFloats(B * H * S * D, -1.f, 1.f, 43), m = RandomFloats(S * S, -2.f, 0.f, 44);
  const std::vector<int64_t> d = {B, H, S, D};
  OpTest ref("FusedAttention", "tessera");
  ref.AddInput<float>(d, Rounded(q)).AddInput<float>(d, Rounded(k)).AddInput<float>(d, Rounded(v));
  ref.AddInput<float>({S, S}, Rounded(m));
  ref.AddOutput(TSR_DTYPE_F32, d);
  ASSERT_TRUE(ref.Run().ok()) << ref.last_error();
  OpTest t("FusedAttention", "tessera");
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, d, ToBf16(q))
      .AddInput<uint16_t>(TSR_DTYPE_BF16, d, ToBf16(k))
      .AddInput<uint16_t>(TSR_DTYPE_BF16, d, ToBf16(v));
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {S, S}, ToBf16(m));
  t.AddOutput(TSR_DTYPE_BF16, d);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<uint16_t>(0), ToBf16(ref.Output<float>(0)));
}

TEST(Bf16RegionKernels, ClaimsAcceptBf16AndStillRejectOthers) {
  OpTest t("FusedElementwise", "tessera");
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {4}, {0, 0, 0, 0});
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {4}, {0, 0, 0, 0});
  t.AddOutput(TSR_DTYPE_BF16, {4});
  FusedElementwise(t);
  EXPECT_EQ(t.Claim(), "");
  OpTest bad("FusedElementwise", "tessera");
  bad.AddInput<int32_t>({4}, {1, 2, 3, 4});
  bad.AddInput<int32_t>({4}, {1, 2, 3, 4});
  bad.AddOutput(TSR_DTYPE_I32, {4});
  FusedElementwise(bad);
  EXPECT_NE(bad.Claim(), "");
  // f16 is not covered by the adapter: the factory says so.
  OpTest f16("FusedElementwise", "tessera");
  f16.AddInput<uint16_t>(TSR_DTYPE_F16, {4}, {0, 0, 0, 0});
  f16.AddInput<uint16_t>(TSR_DTYPE_F16, {4}, {0, 0, 0, 0});
  f16.AddOutput(TSR_DTYPE_F16, {4});
  FusedElementwise(f16);
  Err e = f16.Run();
  EXPECT_FALSE(e.ok());
  EXPECT_NE(e.message.find("f32"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace tessera::cpu

namespace tessera::cpu {
namespace {

// Runs `setup` once with f32 tensors (on bf16-rounded values) and once with
// bf16 tensors; the bf16 output must be the f32 output rounded to bf16, within
// one bf16 ulp (kernels may evaluate transcendental functions differently per
// dtype; data movement must be exact: max_ulp 0).
using Setup = std::function<void(OpTest& t, bool bf16)>;

void ExpectBf16LikeF32(const char* op, const char* domain, const Setup& setup, int max_ulp = 1) {
  OpTest ref(op, domain), t(op, domain);
  setup(ref, false);
  setup(t, true);
  ASSERT_EQ(t.Claim(), "") << op;
  ASSERT_TRUE(ref.Run().ok()) << op << ": " << ref.last_error();
  ASSERT_TRUE(t.Run().ok()) << op << ": " << t.last_error();
  std::vector<uint16_t> want = ToBf16(ref.Output<float>(0)), got = t.Output<uint16_t>(0);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_LE(std::abs(static_cast<int>(got[i]) - static_cast<int>(want[i])), max_ulp)
        << op << " element " << i << ": " << plugin::BF16BitsToFloat(got[i]) << " vs "
        << plugin::BF16BitsToFloat(want[i]);
}

// Adds a float input holding `v` (rounded to bf16) as f32 or bf16.
void In(OpTest& t, bool bf16, std::vector<int64_t> dims, const std::vector<float>& v, bool is_const = false) {
  if (bf16) t.AddInput<uint16_t>(TSR_DTYPE_BF16, std::move(dims), ToBf16(v), is_const);
  else t.AddInput<float>(std::move(dims), Rounded(v), is_const);
}
void Out(OpTest& t, bool bf16, std::vector<int64_t> dims) {
  t.AddOutput(bf16 ? TSR_DTYPE_BF16 : TSR_DTYPE_F32, std::move(dims));
}

TEST(Bf16RegionKernels, ElementwiseMathOpsInBf16Regions) {
  const auto x = RandomFloats(96, -3.f, 3.f, 51), y = RandomFloats(96, 0.5f, 2.f, 52);
  for (const char* op : {"Relu", "Sigmoid", "Tanh", "Erf", "Gelu", "LeakyRelu", "Neg", "Abs"})
    ExpectBf16LikeF32(op, "", [&](OpTest& t, bool b) {
      In(t, b, {4, 24}, x);
      Out(t, b, {4, 24});
    });
  ExpectBf16LikeF32("Gelu", "tessera", [&](OpTest& t, bool b) {
    In(t, b, {4, 24}, x);
    Out(t, b, {4, 24});
  });
  for (const char* op : {"Add", "Sub", "Mul", "Div"})
    ExpectBf16LikeF32(op, "", [&](OpTest& t, bool b) {
      In(t, b, {4, 24}, x);
      In(t, b, {24}, std::vector<float>(y.begin(), y.begin() + 24), true);  // broadcast constant
      Out(t, b, {4, 24});
    });
}

TEST(Bf16RegionKernels, DataMovementOpsAreExactInBf16) {
  const auto x = RandomFloats(24, -3.f, 3.f, 61);
  ExpectBf16LikeF32("Transpose", "", [&](OpTest& t, bool b) {
    In(t, b, {2, 3, 4}, x);
    t.SetAttrInts("perm", {2, 0, 1});
    Out(t, b, {4, 2, 3});
  }, 0);
  ExpectBf16LikeF32("Reshape", "", [&](OpTest& t, bool b) {
    In(t, b, {2, 3, 4}, x);
    t.AddInput<int64_t>({2}, {6, 4}, true);
    Out(t, b, {6, 4});
  }, 0);
  ExpectBf16LikeF32("Concat", "", [&](OpTest& t, bool b) {
    In(t, b, {2, 3, 4}, x);
    In(t, b, {2, 3, 4}, x);
    t.SetAttrInt("axis", 1);
    Out(t, b, {2, 6, 4});
  }, 0);
  ExpectBf16LikeF32("Slice", "", [&](OpTest& t, bool b) {
    In(t, b, {2, 3, 4}, x);
    t.AddInput<int64_t>({1}, {1}, true).AddInput<int64_t>({1}, {4}, true).AddInput<int64_t>({1}, {2}, true);
    Out(t, b, {2, 3, 3});
  }, 0);
  ExpectBf16LikeF32("Gather", "", [&](OpTest& t, bool b) {
    In(t, b, {2, 3, 4}, x);
    t.AddInput<int64_t>({2}, {2, 0});
    t.SetAttrInt("axis", 1);
    Out(t, b, {2, 2, 4});
  }, 0);
}

}  // namespace
}  // namespace tessera::cpu
