// Shape and data-movement CPU kernels against naive references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using testing::AllClose;
using testing::NumElements;
using testing::OpTest;
using testing::StridesOf;
using testing::Unravel;

using Dims = std::vector<int64_t>;

template <typename T>
std::vector<T> Iota(int64_t n, T start = T(0)) {
  std::vector<T> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<T>(start + static_cast<T>(i));
  return v;
}

int64_t Offset(const Dims& idx, const Dims& dims) {
  Dims s = StridesOf(dims);
  int64_t o = 0;
  for (size_t d = 0; d < dims.size(); ++d) o += idx[d] * s[d];
  return o;
}

// ---- Reshape family --------------------------------------------------------------------------

TEST(ReshapeKernel, CopiesBytesForAllFourOps) {
  auto x = Iota<float>(24);
  struct C {
    const char* op;
    Dims out;
  } cases[] = {{"Reshape", {4, 6}}, {"Flatten", {2, 12}}, {"Squeeze", {2, 3, 4}}, {"Unsqueeze", {2, 1, 3, 4}}};
  for (const C& c : cases) {
    OpTest t(c.op);
    t.AddInput<float>({2, 3, 4}, x);
    if (std::string(c.op) == "Reshape") t.AddInput<int64_t>({2}, {4, -1});  // need not be constant
    t.AddOutput(TSR_DTYPE_F32, c.out);
    ASSERT_TRUE(t.Run().ok()) << c.op << ": " << t.last_error();
    EXPECT_EQ(t.Output<float>(0), x) << c.op;
  }
  OpTest bad("Reshape");
  bad.SetName("rs");
  bad.AddInput<float>({2, 3}, Iota<float>(6)).AddOutput(TSR_DTYPE_F32, {5});
  Err e = bad.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("rs"), std::string::npos);
}

// ---- Transpose -----------------------------------------------------------------------------------

template <typename T>
void CheckTranspose(int32_t dtype, const Dims& dims, const std::vector<int64_t>& perm) {
  const int64_t n = NumElements(dims);
  std::vector<T> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<T>(i * 7 + 3);
  Dims od;
  std::vector<int64_t> p = perm;
  if (p.empty())
    for (int64_t d = static_cast<int64_t>(dims.size()) - 1; d >= 0; --d) p.push_back(d);
  for (int64_t a : p) od.push_back(dims[a]);
  std::vector<T> ref(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    Dims oi = Unravel(i, od), ii(dims.size());
    for (size_t k = 0; k < p.size(); ++k) ii[p[k]] = oi[k];
    ref[i] = x[Offset(ii, dims)];
  }
  OpTest t("Transpose");
  t.AddInput<T>(dtype, dims, x);
  t.AddOutput(dtype, od);
  if (!perm.empty()) t.SetAttrInts("perm", perm);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<T>(0), ref) << "dims " << ::testing::PrintToString(dims) << " perm "
                                 << ::testing::PrintToString(perm);
}

TEST(TransposeKernel, PermutationsMatchReference) {
  CheckTranspose<float>(TSR_DTYPE_F32, {37, 53}, {1, 0});          // 2-D tiled, ragged tiles
  CheckTranspose<float>(TSR_DTYPE_F32, {3, 4}, {});                 // default: reverse
  CheckTranspose<float>(TSR_DTYPE_F32, {4, 33, 17}, {0, 2, 1});     // batched last-two swap
  CheckTranspose<float>(TSR_DTYPE_F32, {2, 3, 4}, {2, 0, 1});
  CheckTranspose<float>(TSR_DTYPE_F32, {2, 3, 4, 5}, {0, 2, 3, 1});  // NCHW -> NHWC
  CheckTranspose<float>(TSR_DTYPE_F32, {2, 3, 4, 5}, {0, 1, 3, 2});
  CheckTranspose<float>(TSR_DTYPE_F32, {2, 3, 4, 5}, {1, 0, 2, 3});  // keeps the last axis
  CheckTranspose<float>(TSR_DTYPE_F32, {2, 3, 4, 5}, {0, 1, 2, 3});  // identity
  CheckTranspose<float>(TSR_DTYPE_F32, {2, 1, 3, 1}, {3, 2, 1, 0});  // size-1 axes
  CheckTranspose<uint8_t>(TSR_DTYPE_U8, {5, 7, 3}, {2, 1, 0});
  CheckTranspose<uint16_t>(TSR_DTYPE_F16, {6, 10}, {1, 0});
  CheckTranspose<int64_t>(TSR_DTYPE_I64, {3, 2, 4}, {1, 2, 0});
  CheckTranspose<int32_t>(TSR_DTYPE_I32, {2, 2, 3, 2, 2, 3, 2, 2}, {7, 0, 5, 2, 6, 1, 4, 3});  // rank 8
  CheckTranspose<float>(TSR_DTYPE_F32, {64, 300}, {1, 0});  // parallel tiles
}

TEST(TransposeKernel, RejectsBadPerm) {
  OpTest t("Transpose");
  t.SetName("tp");
  t.AddInput<float>({2, 3}, Iota<float>(6)).AddOutput(TSR_DTYPE_F32, {3, 2}).SetAttrInts("perm", {0, 0});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("tp"), std::string::npos);
  OpTest u("Transpose");  // output dims inconsistent with perm
  u.AddInput<float>({2, 3}, Iota<float>(6)).AddOutput(TSR_DTYPE_F32, {2, 3}).SetAttrInts("perm", {1, 0});
  EXPECT_EQ(u.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- Concat / Split --------------------------------------------------------------------------------

TEST(ConcatKernel, AxesAndEmptyInputs) {
  // a [2,1,3], b [2,2,3], c [2,0,3] on axis 1 -> [2,3,3]
  auto a = Iota<int64_t>(6, 100), b = Iota<int64_t>(12, 200);
  OpTest t("Concat");
  t.AddInput<int64_t>({2, 1, 3}, a).AddInput<int64_t>({2, 2, 3}, b).AddInput<int64_t>({2, 0, 3}, {});
  t.SetAttrInt("axis", -2).AddOutput(TSR_DTYPE_I64, {2, 3, 3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<int64_t> want;
  for (int n = 0; n < 2; ++n) {
    for (int j = 0; j < 3; ++j) want.push_back(a[n * 3 + j]);
    for (int j = 0; j < 6; ++j) want.push_back(b[n * 6 + j]);
  }
  EXPECT_EQ(t.Output<int64_t>(0), want);

  OpTest u("Concat");
  u.AddInput<uint8_t>({2}, {1, 2}).AddInput<uint8_t>({3}, {3, 4, 5}).SetAttrInt("axis", 0);
  u.AddOutput(TSR_DTYPE_U8, {5});
  ASSERT_TRUE(u.Run().ok()) << u.last_error();
  EXPECT_EQ(u.Output<uint8_t>(0), (std::vector<uint8_t>{1, 2, 3, 4, 5}));
}

TEST(ConcatKernel, MismatchedInputsAreRejected) {
  OpTest t("Concat");
  t.SetName("cat");
  t.AddInput<float>({2, 3}, Iota<float>(6)).AddInput<float>({3, 2}, Iota<float>(6)).SetAttrInt("axis", 0);
  t.AddOutput(TSR_DTYPE_F32, {5, 3});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("cat"), std::string::npos);
  OpTest u("Concat");
  u.AddInput<float>({2}, {1, 2}).AddOutput(TSR_DTYPE_F32, {2});
  EXPECT_EQ(u.Create().code, TSR_ERR_INVALID_ARGUMENT);  // axis is required
}

TEST(SplitKernel, AttributeInputAndEqualSplits) {
  auto x = Iota<float>(12);  // [2, 6]
  auto check = [&](OpTest& t) {
    t.AddOutput(TSR_DTYPE_F32, {2, 1}).AddOutput(TSR_DTYPE_F32, {2, 2}).AddOutput(TSR_DTYPE_F32, {2, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{0, 6}));
    EXPECT_EQ(t.Output<float>(1), (std::vector<float>{1, 2, 7, 8}));
    EXPECT_EQ(t.Output<float>(2), (std::vector<float>{3, 4, 5, 9, 10, 11}));
  };
  OpTest a("Split", "", 11);
  a.AddInput<float>({2, 6}, x).SetAttrInt("axis", 1).SetAttrInts("split", {1, 2, 3});
  check(a);
  OpTest b("Split", "", 13);
  b.AddInput<float>({2, 6}, x).AddInput<int64_t>({3}, {1, 2, 3}, true).SetAttrInt("axis", -1);
  check(b);
  OpTest c("Split", "", 18);
  c.AddInput<float>({2, 6}, x).SetAttrInt("num_outputs", 2);
  c.AddOutput(TSR_DTYPE_F32, {1, 6}).AddOutput(TSR_DTYPE_F32, {1, 6});
  ASSERT_TRUE(c.Run().ok()) << c.last_error();
  EXPECT_EQ(c.Output<float>(1), Iota<float>(6, 6.f));
}

TEST(SplitKernel, SplitDisagreeingWithOutputsIsRejected) {
  OpTest t("Split", "", 13);
  t.SetName("sp");
  t.AddInput<float>({6}, Iota<float>(6)).AddInput<int64_t>({2}, {2, 4}, true);
  t.AddOutput(TSR_DTYPE_F32, {3}).AddOutput(TSR_DTYPE_F32, {3});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("sp"), std::string::npos);
}

// ---- Slice -----------------------------------------------------------------------------------------------

// Python slice semantics (the same as ONNX Slice), written independently.
std::vector<int64_t> PySlice(int64_t dim, int64_t start, int64_t stop, int64_t step) {
  const int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? dim : dim - 1;
  auto fix = [&](int64_t v) {
    if (v < 0) {
      v += dim;
      if (v < lower) v = lower;
    } else if (v > upper) {
      v = upper;
    }
    return v;
  };
  start = fix(start);
  stop = fix(stop);
  std::vector<int64_t> r;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) r.push_back(i);
  return r;
}

struct SliceCase {
  Dims dims;
  std::vector<int64_t> starts, ends, axes, steps;  // axes/steps may be empty (defaults)
};

class SliceRef : public ::testing::TestWithParam<SliceCase> {};

TEST_P(SliceRef, MatchesPythonSlicing) {
  const SliceCase& c = GetParam();
  const int64_t rank = static_cast<int64_t>(c.dims.size());
  std::vector<std::vector<int64_t>> sel(rank);
  for (int64_t d = 0; d < rank; ++d) sel[d] = PySlice(c.dims[d], 0, c.dims[d], 1);
  for (size_t i = 0; i < c.starts.size(); ++i) {
    int64_t a = c.axes.empty() ? static_cast<int64_t>(i) : c.axes[i];
    if (a < 0) a += rank;
    sel[a] = PySlice(c.dims[a], c.starts[i], c.ends[i], c.steps.empty() ? 1 : c.steps[i]);
  }
  Dims od;
  for (auto& s : sel) od.push_back(static_cast<int64_t>(s.size()));
  auto x = Iota<float>(NumElements(c.dims));
  std::vector<float> ref;
  for (int64_t i = 0; i < NumElements(od); ++i) {
    Dims oi = Unravel(i, od), ii(rank);
    for (int64_t d = 0; d < rank; ++d) ii[d] = sel[d][oi[d]];
    ref.push_back(x[Offset(ii, c.dims)]);
  }
  const int64_t k = static_cast<int64_t>(c.starts.size());
  OpTest t("Slice", "", 13);
  t.AddInput<float>(c.dims, x).AddInput<int64_t>({k}, c.starts, true).AddInput<int64_t>({k}, c.ends, true);
  if (!c.axes.empty() || !c.steps.empty()) {
    if (c.axes.empty()) t.AddMissingInput();
    else t.AddInput<int64_t>({k}, c.axes, true);
  }
  if (!c.steps.empty()) t.AddInput<int64_t>({k}, c.steps, true);
  t.AddOutput(TSR_DTYPE_F32, od);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<float>(0), ref);
}

constexpr int64_t kBig = std::numeric_limits<int64_t>::max();
constexpr int64_t kSmall = std::numeric_limits<int64_t>::min();

INSTANTIATE_TEST_SUITE_P(
    Cases, SliceRef,
    ::testing::Values(SliceCase{{5, 6}, {1, 2}, {4, 5}, {}, {}},
                      SliceCase{{5, 6}, {-3}, {kBig}, {1}, {}},
                      SliceCase{{5, 6}, {4}, {kSmall}, {0}, {-1}},         // full reverse
                      SliceCase{{5, 6}, {-1, 5}, {-6, 0}, {0, 1}, {-2, -2}},
                      SliceCase{{2, 3, 4}, {0, 1}, {2, 3}, {-1, 0}, {2, 1}},
                      SliceCase{{2, 3, 4}, {10}, {20}, {2}, {}},           // empty result
                      SliceCase{{2, 3, 4}, {0, 0, 3}, {2, 3, -5}, {}, {1, 1, -1}},
                      SliceCase{{7}, {-100}, {100}, {}, {3}}));

TEST(SliceKernel, Opset9AttributesAndEveryElementSize) {
  OpTest t("Slice", "", 9);
  t.AddInput<uint16_t>(TSR_DTYPE_BF16, {3, 4}, Iota<uint16_t>(12)).SetAttrInts("starts", {1, -2});
  t.SetAttrInts("ends", {3, kBig}).AddOutput(TSR_DTYPE_BF16, {2, 2});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<uint16_t>(0), (std::vector<uint16_t>{6, 7, 10, 11}));
  OpTest u("Slice", "", 13);
  u.AddInput<uint8_t>({6}, Iota<uint8_t>(6)).AddInput<int32_t>({1}, {5}, true).AddInput<int32_t>({1}, {0}, true);
  u.AddInput<int32_t>({1}, {0}, true).AddInput<int32_t>({1}, {-2}, true).AddOutput(TSR_DTYPE_U8, {3});
  ASSERT_TRUE(u.Run().ok()) << u.last_error();
  EXPECT_EQ(u.Output<uint8_t>(0), (std::vector<uint8_t>{5, 3, 1}));
}

TEST(SliceKernel, NonConstantParametersAndBadInputsAreRejected) {
  {
    OpTest t("Slice", "", 13);
    t.SetName("sl");
    t.AddInput<float>({4}, Iota<float>(4)).AddInput<int64_t>({1}, {1}).AddInput<int64_t>({1}, {3}, true);
    t.AddOutput(TSR_DTYPE_F32, {2});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("sl"), std::string::npos);
    EXPECT_NE(e.message.find("constant"), std::string::npos);
  }
  {
    OpTest t("Slice", "", 13);  // zero step
    t.AddInput<float>({4}, Iota<float>(4)).AddInput<int64_t>({1}, {0}, true).AddInput<int64_t>({1}, {3}, true);
    t.AddInput<int64_t>({1}, {0}, true).AddInput<int64_t>({1}, {0}, true).AddOutput(TSR_DTYPE_F32, {3});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
  {
    OpTest t("Slice", "", 13);  // output shape does not match
    t.AddInput<float>({4}, Iota<float>(4)).AddInput<int64_t>({1}, {0}, true).AddInput<int64_t>({1}, {3}, true);
    t.AddOutput(TSR_DTYPE_F32, {4});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
}

// ---- Gather / GatherElements --------------------------------------------------------------------------------

TEST(GatherKernel, AxesNegativeIndicesAndScalarIndex) {
  auto x = Iota<float>(24);  // [2, 3, 4]
  {
    OpTest t("Gather");
    t.AddInput<float>({2, 3, 4}, x).AddInput<int64_t>({2, 2}, {0, -1, 2, 1}).SetAttrInt("axis", 1);
    t.AddOutput(TSR_DTYPE_F32, {2, 2, 2, 4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> ref;
    int64_t idx[4] = {0, 2, 2, 1};
    for (int n = 0; n < 2; ++n)
      for (int64_t j : idx)
        for (int k = 0; k < 4; ++k) ref.push_back(x[(n * 3 + j) * 4 + k]);
    EXPECT_EQ(t.Output<float>(0), ref);
  }
  {
    OpTest t("Gather");  // scalar index on the last axis drops it
    t.AddInput<float>({2, 3, 4}, x).AddInput<int32_t>({}, {-2}).SetAttrInt("axis", -1);
    t.AddOutput(TSR_DTYPE_F32, {2, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{2, 6, 10, 14, 18, 22}));
  }
  {
    OpTest t("Gather");  // embedding lookup, 2-byte dtype
    t.AddInput<uint16_t>(TSR_DTYPE_F16, {4, 2}, Iota<uint16_t>(8)).AddInput<int64_t>({3}, {3, 0, 3});
    t.AddOutput(TSR_DTYPE_F16, {3, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<uint16_t>(0), (std::vector<uint16_t>{6, 7, 0, 1, 6, 7}));
  }
}

TEST(GatherKernel, OutOfRangeIndexFailsAtRunTime) {
  OpTest t("Gather");
  t.SetName("embed_lookup");
  t.AddInput<float>({4, 2}, Iota<float>(8)).AddInput<int64_t>({3}, {1, 4, 0}).AddOutput(TSR_DTYPE_F32, {3, 2});
  ASSERT_TRUE(t.Create().ok()) << t.last_error();  // indices are data: only run time knows
  Err e = t.Run();
  EXPECT_EQ(e.code, TSR_ERR_OUT_OF_RANGE);
  EXPECT_NE(e.message.find("embed_lookup"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("index 4"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("4)"), std::string::npos) << e.message;  // the bound
  t.InputData<int64_t>(1)[1] = -5;
  e = t.RunAgain();
  EXPECT_EQ(e.code, TSR_ERR_OUT_OF_RANGE);
  EXPECT_NE(e.message.find("-5"), std::string::npos) << e.message;
  t.InputData<int64_t>(1)[1] = -4;  // the most negative valid index
  ASSERT_TRUE(t.RunAgain().ok());
  EXPECT_EQ(t.Output<float>(0), (std::vector<float>{2, 3, 0, 1, 0, 1}));
}

TEST(GatherElementsKernel, MatchesReferenceAndChecksRange) {
  auto x = Iota<int32_t>(12);  // [3, 4]
  {
    OpTest t("GatherElements");
    t.AddInput<int32_t>({3, 4}, x).AddInput<int64_t>({2, 4}, {0, 1, 2, -1, 2, 2, 0, 0}).SetAttrInt("axis", 0);
    t.AddOutput(TSR_DTYPE_I32, {2, 4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{0, 5, 10, 11, 8, 9, 2, 3}));
  }
  {
    OpTest t("GatherElements");
    t.AddInput<int32_t>({3, 4}, x).AddInput<int32_t>({3, 2}, {3, 0, 1, 1, -4, 2}).SetAttrInt("axis", -1);
    t.AddOutput(TSR_DTYPE_I32, {3, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{3, 0, 5, 5, 8, 10}));
  }
  {
    OpTest t("GatherElements");
    t.SetName("ge");
    t.AddInput<int32_t>({3, 4}, x).AddInput<int64_t>({1, 1}, {3}).SetAttrInt("axis", 0);
    t.AddOutput(TSR_DTYPE_I32, {1, 1});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_OUT_OF_RANGE);
    EXPECT_NE(e.message.find("ge"), std::string::npos);
    EXPECT_NE(e.message.find("index 3"), std::string::npos) << e.message;
  }
}

// ---- Expand / Tile --------------------------------------------------------------------------------------------

TEST(ExpandKernel, BroadcastsAnyElementSize) {
  OpTest t("Expand");
  t.AddInput<int64_t>({3, 1}, {1, 2, 3}).AddInput<int64_t>({3}, {2, 1, 4}).AddOutput(TSR_DTYPE_I64, {2, 3, 4});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<int64_t> want;
  for (int n = 0; n < 2; ++n)
    for (int64_t v = 1; v <= 3; ++v)
      for (int k = 0; k < 4; ++k) want.push_back(v);
  EXPECT_EQ(t.Output<int64_t>(0), want);
  OpTest u("Expand");
  u.AddInputBool({1}, {true}).AddInput<int64_t>({1}, {3}).AddOutput(TSR_DTYPE_BOOL, {3});
  ASSERT_TRUE(u.Run().ok());
  EXPECT_EQ(u.Output<bool>(0), std::vector<bool>(3, true));
  OpTest bad("Expand");
  bad.AddInput<float>({3}, {1, 2, 3}).AddOutput(TSR_DTYPE_F32, {4});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(TileKernel, RepeatsEveryAxis) {
  OpTest t("Tile");
  t.AddInput<float>({2, 3}, Iota<float>(6)).AddInput<int64_t>({2}, {2, 2}, true).AddOutput(TSR_DTYPE_F32, {4, 6});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> want;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 6; ++j) want.push_back(static_cast<float>((i % 2) * 3 + (j % 3)));
  EXPECT_EQ(t.Output<float>(0), want);
  OpTest u("Tile");
  u.AddInput<uint8_t>({2, 1, 2}, {1, 2, 3, 4}).AddInput<int64_t>({3}, {1, 3, 1}).AddOutput(TSR_DTYPE_U8, {2, 3, 2});
  ASSERT_TRUE(u.Run().ok()) << u.last_error();
  EXPECT_EQ(u.Output<uint8_t>(0), (std::vector<uint8_t>{1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}));
  OpTest bad("Tile");
  bad.SetName("tile");
  bad.AddInput<float>({2}, {1, 2}).AddInput<int64_t>({1}, {3}, true).AddOutput(TSR_DTYPE_F32, {4});
  Err e = bad.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("tile"), std::string::npos);
}

// ---- Shape / Size / ConstantOfShape / Range -----------------------------------------------------------------------

TEST(ShapeKernel, StartEndAndSize) {
  OpTest t("Shape", "", 15);
  t.AddInput<float>({2, 3, 4, 5}, std::vector<float>(120)).AddOutput(TSR_DTYPE_I64, {4});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{2, 3, 4, 5}));
  OpTest s("Shape", "", 15);
  s.AddInput<float>({2, 3, 4, 5}, std::vector<float>(120)).SetAttrInt("start", 1).SetAttrInt("end", -1);
  s.AddOutput(TSR_DTYPE_I64, {2});
  ASSERT_TRUE(s.Run().ok()) << s.last_error();
  EXPECT_EQ(s.Output<int64_t>(0), (std::vector<int64_t>{3, 4}));
  OpTest z("Size");
  z.AddInput<float>({2, 3, 4, 5}, std::vector<float>(120)).AddOutput(TSR_DTYPE_I64, {});
  ASSERT_TRUE(z.Run().ok()) << z.last_error();
  EXPECT_EQ(z.Output<int64_t>(0), (std::vector<int64_t>{120}));
  OpTest bad("Shape");
  bad.AddInput<float>({2}, {1, 2}).AddOutput(TSR_DTYPE_I32, {1});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(ConstantOfShapeKernel, DefaultAndTypedValues) {
  OpTest a("ConstantOfShape");
  a.AddInput<int64_t>({2}, {2, 3}).AddOutput(TSR_DTYPE_F32, {2, 3});
  ASSERT_TRUE(a.Run().ok()) << a.last_error();
  EXPECT_EQ(a.Output<float>(0), std::vector<float>(6, 0.f));
  OpTest b("ConstantOfShape");
  int64_t seven = 7;
  b.AddInput<int64_t>({1}, {4}).SetAttrTensor("value", TSR_DTYPE_I64, {1}, &seven).AddOutput(TSR_DTYPE_I64, {4});
  ASSERT_TRUE(b.Run().ok()) << b.last_error();
  EXPECT_EQ(b.Output<int64_t>(0), std::vector<int64_t>(4, 7));
  OpTest c("ConstantOfShape");
  uint16_t one = 0x3c00;
  c.AddInput<int64_t>({1}, {3}).SetAttrTensor("value", TSR_DTYPE_F16, {1}, &one).AddOutput(TSR_DTYPE_F16, {3});
  ASSERT_TRUE(c.Run().ok()) << c.last_error();
  EXPECT_EQ(c.Output<uint16_t>(0), std::vector<uint16_t>(3, 0x3c00));
  OpTest bad("ConstantOfShape");  // value dtype must match the output
  bad.AddInput<int64_t>({1}, {3}).SetAttrTensor("value", TSR_DTYPE_I64, {1}, &seven).AddOutput(TSR_DTYPE_F32, {3});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(RangeKernel, FloatAndIntegerAndBadCounts) {
  OpTest a("Range");
  a.AddInput<float>({}, {1.f}).AddInput<float>({}, {2.f}).AddInput<float>({}, {0.25f}).AddOutput(TSR_DTYPE_F32, {4});
  ASSERT_TRUE(a.Run().ok()) << a.last_error();
  EXPECT_EQ(a.Output<float>(0), (std::vector<float>{1.f, 1.25f, 1.5f, 1.75f}));
  OpTest b("Range");
  b.AddInput<int64_t>({}, {10}).AddInput<int64_t>({}, {3}).AddInput<int64_t>({}, {-3}).AddOutput(TSR_DTYPE_I64, {3});
  ASSERT_TRUE(b.Run().ok()) << b.last_error();
  EXPECT_EQ(b.Output<int64_t>(0), (std::vector<int64_t>{10, 7, 4}));
  OpTest c("Range");
  c.SetName("rg");
  c.AddInput<int32_t>({}, {0}).AddInput<int32_t>({}, {10}).AddInput<int32_t>({}, {2}).AddOutput(TSR_DTYPE_I32, {4});
  Err e = c.Run();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("rg"), std::string::npos);
  OpTest d("Range");
  d.AddInput<int32_t>({}, {0}).AddInput<int32_t>({}, {10}).AddInput<int32_t>({}, {0}).AddOutput(TSR_DTYPE_I32, {4});
  EXPECT_EQ(d.Run().code, TSR_ERR_INVALID_ARGUMENT);
  OpTest f("Range");  // f64 and i16 too
  f.AddInput<double>({}, {0.5}).AddInput<double>({}, {-0.6}).AddInput<double>({}, {-0.5}).AddOutput(TSR_DTYPE_F64, {3});
  ASSERT_TRUE(f.Run().ok()) << f.last_error();
  EXPECT_EQ(f.Output<double>(0), (std::vector<double>{0.5, 0.0, -0.5}));
  OpTest h("Range");
  h.AddInput<int16_t>({}, {-3}).AddInput<int16_t>({}, {4}).AddInput<int16_t>({}, {3}).AddOutput(TSR_DTYPE_I16, {3});
  ASSERT_TRUE(h.Run().ok()) << h.last_error();
  EXPECT_EQ(h.Output<int16_t>(0), (std::vector<int16_t>{-3, 0, 3}));
}

// ---- Trilu --------------------------------------------------------------------------------------------------------

TEST(TriluKernel, UpperLowerWithK) {
  const int64_t B = 2, N = 3, M = 4;
  auto x = Iota<float>(B * N * M, 1.f);
  for (int upper : {1, 0})
    for (int64_t k : {0, 1, -1, 5, -5}) {
      OpTest t("Trilu");
      t.AddInput<float>({B, N, M}, x).AddInput<int64_t>({}, {k}).SetAttrInt("upper", upper);
      t.AddOutput(TSR_DTYPE_F32, {B, N, M});
      ASSERT_TRUE(t.Run().ok()) << t.last_error();
      std::vector<float> ref(x.size());
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < N; ++i)
          for (int64_t j = 0; j < M; ++j) {
            bool keep = upper ? j - i >= k : j - i <= k;
            ref[(b * N + i) * M + j] = keep ? x[(b * N + i) * M + j] : 0.f;
          }
      EXPECT_EQ(t.Output<float>(0), ref) << "upper " << upper << " k " << k;
    }
  OpTest d("Trilu");  // no k input: k = 0; 8-byte dtype
  d.AddInput<int64_t>({2, 2}, {1, 2, 3, 4}).SetAttrInt("upper", 0).AddOutput(TSR_DTYPE_I64, {2, 2});
  ASSERT_TRUE(d.Run().ok()) << d.last_error();
  EXPECT_EQ(d.Output<int64_t>(0), (std::vector<int64_t>{1, 0, 3, 4}));
}

// ---- Pad --------------------------------------------------------------------------------------------------------------

// numpy.pad semantics for pads smaller than the dim (reflect: no edge repeat).
float PadRef(const std::vector<float>& x, const Dims& dims, const Dims& oi, const std::vector<int64_t>& begin,
             const std::string& mode, float value) {
  Dims ii(dims.size());
  for (size_t d = 0; d < dims.size(); ++d) {
    int64_t i = oi[d] - begin[d], n = dims[d];
    if (i < 0 || i >= n) {
      if (mode == "constant") return value;
      if (mode == "edge") i = i < 0 ? 0 : n - 1;
      else i = i < 0 ? -i : 2 * (n - 1) - i;
    }
    ii[d] = i;
  }
  return x[Offset(ii, dims)];
}

TEST(PadKernel, ConstantReflectEdge) {
  Dims d{3, 4};
  auto x = Iota<float>(12, 1.f);
  std::vector<int64_t> pads{1, 2, 2, 3};  // begin (1, 2), end (2, 3)
  Dims od{6, 9};
  for (const char* mode : {"constant", "reflect", "edge"}) {
    OpTest t("Pad", "", 13);
    t.AddInput<float>(d, x).AddInput<int64_t>({4}, pads, true).AddInput<float>({}, {-7.5f});
    t.SetAttrString("mode", mode).AddOutput(TSR_DTYPE_F32, od);
    ASSERT_TRUE(t.Run().ok()) << mode << ": " << t.last_error();
    std::vector<float> ref;
    for (int64_t i = 0; i < NumElements(od); ++i) ref.push_back(PadRef(x, d, Unravel(i, od), {1, 2}, mode, -7.5f));
    EXPECT_EQ(t.Output<float>(0), ref) << mode;
  }
}

TEST(PadKernel, NegativePadsOldOpsetAndAxes) {
  {
    OpTest t("Pad", "", 2);  // opset < 11: attributes; negative pads crop
    t.AddInput<float>({2, 4}, Iota<float>(8)).SetAttrInts("pads", {0, -1, 1, 1}).SetAttrFloat("value", 9.f);
    t.AddOutput(TSR_DTYPE_F32, {3, 4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1, 2, 3, 9, 5, 6, 7, 9, 9, 9, 9, 9}));
  }
  {
    OpTest t("Pad", "", 18);  // axes input: pad only the last axis
    t.AddInput<float>({2, 2}, {1, 2, 3, 4}).AddInput<int64_t>({2}, {1, 0}, true).AddMissingInput();
    t.AddInput<int64_t>({1}, {-1}, true).SetAttrString("mode", "edge").AddOutput(TSR_DTYPE_F32, {2, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1, 1, 2, 3, 3, 4}));
  }
}

TEST(PadKernel, WrapAndIntegerDTypes) {
  {
    OpTest t("Pad", "", 19);  // wrap: x = [1 2 3], pads (2, 4) -> 2 3 | 1 2 3 | 1 2 3 1
    t.AddInput<int32_t>({3}, {1, 2, 3}).AddInput<int64_t>({2}, {2, 4}, true).SetAttrString("mode", "wrap");
    t.AddOutput(TSR_DTYPE_I32, {9});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{2, 3, 1, 2, 3, 1, 2, 3, 1}));
  }
  {
    OpTest t("Pad", "", 13);  // i64 constant pad with a constant_value input
    t.AddInput<int64_t>({1, 2}, {5, 6}).AddInput<int64_t>({4}, {1, 1, 0, 1}, true).AddInput<int64_t>({}, {-9});
    t.AddOutput(TSR_DTYPE_I64, {2, 4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{-9, -9, -9, -9, -9, 5, 6, -9}));
  }
  {
    OpTest t("Pad", "", 2);  // old opset: float value attribute converted to i8; edge and reflect on u8 too
    t.AddInput<int8_t>({2}, {1, 2}).SetAttrInts("pads", {1, 1}).SetAttrFloat("value", 3.f);
    t.AddOutput(TSR_DTYPE_I8, {4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int8_t>(0), (std::vector<int8_t>{3, 1, 2, 3}));
  }
  {
    OpTest t("Pad", "", 13);
    t.AddInput<uint8_t>({3}, {1, 2, 3}).AddInput<int64_t>({2}, {2, 2}, true).SetAttrString("mode", "reflect");
    t.AddOutput(TSR_DTYPE_U8, {7});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<uint8_t>(0), (std::vector<uint8_t>{3, 2, 1, 2, 3, 2, 1}));
  }
  {
    OpTest t("Pad", "", 13);  // constant_value of another dtype is rejected
    t.AddInput<int32_t>({2}, {1, 2}).AddInput<int64_t>({2}, {1, 1}, true).AddInput<float>({}, {0.f});
    t.AddOutput(TSR_DTYPE_I32, {4});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
}

TEST(PadKernel, BadModeAndNonConstantPads) {
  {
    OpTest t("Pad", "", 13);
    t.SetName("pad1");
    t.AddInput<float>({2}, {1, 2}).AddInput<int64_t>({2}, {1, 1}, true).SetAttrString("mode", "mirror");
    t.AddOutput(TSR_DTYPE_F32, {4});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("pad1"), std::string::npos);
    EXPECT_NE(e.message.find("mirror"), std::string::npos);
  }
  {
    OpTest t("Pad", "", 13);
    t.AddInput<float>({2}, {1, 2}).AddInput<int64_t>({2}, {1, 1}).AddOutput(TSR_DTYPE_F32, {4});
    EXPECT_EQ(t.Create().code, TSR_ERR_UNSUPPORTED);
  }
  {
    OpTest t("Pad", "", 13);  // output does not match pads
    t.AddInput<float>({2}, {1, 2}).AddInput<int64_t>({2}, {1, 1}, true).AddOutput(TSR_DTYPE_F32, {5});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
}

TEST(TensorClaims, RejectNonConstantParametersAndUnsupportedDtypes) {
  OpTest slice("Slice", "", 13);
  slice.AddInput<float>({4}, Iota<float>(4)).AddInput<int64_t>({1}, {1}).AddInput<int64_t>({1}, {3}, true);
  slice.AddOutput(TSR_DTYPE_F32, {2});
  EXPECT_NE(slice.Claim().find("constant"), std::string::npos) << slice.Claim();
  OpTest ok("Slice", "", 13);
  ok.AddInput<float>({4}, Iota<float>(4)).AddInput<int64_t>({1}, {1}, true).AddInput<int64_t>({1}, {3}, true);
  ok.AddOutput(TSR_DTYPE_F32, {2});
  EXPECT_EQ(ok.Claim(), "");
  OpTest pad("Pad", "", 13);  // i32 is supported; an unknown mode is not, and the claim says which
  pad.AddInput<int32_t>({2}, {1, 2}).AddInput<int64_t>({2}, {1, 1}, true).AddOutput(TSR_DTYPE_I32, {4});
  EXPECT_EQ(pad.Claim(), "");
  OpTest pad_mode("Pad", "", 13);
  pad_mode.AddInput<int32_t>({2}, {1, 2}).AddInput<int64_t>({2}, {1, 1}, true).SetAttrString("mode", "mirror");
  pad_mode.AddOutput(TSR_DTYPE_I32, {4});
  EXPECT_NE(pad_mode.Claim().find("mirror"), std::string::npos) << pad_mode.Claim();
  OpTest gather("Gather");
  gather.AddInput<float>({2}, {1, 2}).AddInput<float>({1}, {0}).AddOutput(TSR_DTYPE_F32, {1});
  EXPECT_NE(gather.Claim(), "");
  OpTest tr("Transpose");
  tr.AddInput<uint16_t>(TSR_DTYPE_BF16, {2}, {1, 2}).AddOutput(TSR_DTYPE_BF16, {2});
  EXPECT_EQ(tr.Claim(), "");
}

}  // namespace
}  // namespace tessera::cpu
