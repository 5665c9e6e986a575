// Scatter/gather/one-hot/space-depth/data-dependent indexing CPU kernels
// against naive references, plus bad-input tests per op family.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using testing::OpTest;
using Dims = std::vector<int64_t>;

template <typename T>
std::vector<T> Iota(int64_t n, T start = T(0)) {
  std::vector<T> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<T>(start + static_cast<T>(i));
  return v;
}

bool Mentions(const Err& e, const std::string& s) { return e.message.find(s) != std::string::npos; }

// ---- Scatter family -------------------------------------------------------------------------------

TEST(ScatterElementsKernel, ReductionsAndNegativeIndices) {
  // data [2, 3], indices/updates [2, 2] along axis 1; reference computed by hand-rolled loop.
  const std::vector<float> data = {1, 2, 3, 4, 5, 6}, upd = {10, 20, 30, 40};
  const std::vector<int64_t> idx = {0, -1, 2, 2};
  for (const char* red : {"none", "add", "mul", "max", "min"}) {
    std::vector<float> ref = data;
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 2; ++c) {
        int64_t j = idx[r * 2 + c] < 0 ? idx[r * 2 + c] + 3 : idx[r * 2 + c];
        float& d = ref[r * 3 + j];
        float u = upd[r * 2 + c];
        std::string s = red;
        d = s == "none" ? u : s == "add" ? d + u : s == "mul" ? d * u : s == "max" ? std::max(d, u) : std::min(d, u);
      }
    OpTest t("ScatterElements", "", 18);
    t.AddInput<float>({2, 3}, data).AddInput<int64_t>({2, 2}, idx).AddInput<float>({2, 2}, upd);
    t.SetAttrInt("axis", 1).SetAttrString("reduction", red).AddOutput(TSR_DTYPE_F32, {2, 3});
    ASSERT_TRUE(t.Run().ok()) << red << ": " << t.last_error();
    EXPECT_EQ(t.Output<float>(0), ref) << red;
  }
}

TEST(ScatterElementsKernel, OldScatterAndErrors) {
  OpTest t("Scatter", "", 10);
  t.AddInput<int32_t>({3}, {1, 2, 3}).AddInput<int32_t>({2}, {2, 0}).AddInput<int32_t>({2}, {7, 8});
  t.AddOutput(TSR_DTYPE_I32, {3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{8, 2, 7}));

  OpTest bad("ScatterElements", "", 18);
  bad.SetName("se");
  bad.AddInput<float>({3}, {1, 2, 3}).AddInput<int64_t>({1}, {3}).AddInput<float>({1}, {1});
  bad.AddOutput(TSR_DTYPE_F32, {3});
  Err e = bad.Run();
  EXPECT_EQ(e.code, TSR_ERR_OUT_OF_RANGE);
  EXPECT_TRUE(Mentions(e, "se")) << e.message;

  OpTest red("ScatterElements", "", 18);
  red.AddInput<float>({3}, {1, 2, 3}).AddInput<int64_t>({1}, {0}).AddInput<float>({1}, {1});
  red.SetAttrString("reduction", "avg").AddOutput(TSR_DTYPE_F32, {3});
  EXPECT_EQ(red.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(ScatterNDKernel, SlicesWithReduction) {
  // data [3, 2]; indices [[2], [0], [2]] replace/add whole rows.
  const std::vector<float> data = {1, 2, 3, 4, 5, 6}, upd = {10, 20, 30, 40, 50, 60};
  {
    OpTest t("ScatterND", "", 18);
    t.AddInput<float>({3, 2}, data).AddInput<int64_t>({2, 1}, {2, 0}).AddInput<float>({2, 2}, {10, 20, 30, 40});
    t.AddOutput(TSR_DTYPE_F32, {3, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{30, 40, 3, 4, 10, 20}));
  }
  {
    OpTest t("ScatterND", "", 18);
    t.AddInput<float>({3, 2}, data).AddInput<int64_t>({3, 1}, {2, 0, 2}).AddInput<float>({3, 2}, upd);
    t.SetAttrString("reduction", "add").AddOutput(TSR_DTYPE_F32, {3, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{31, 42, 3, 4, 65, 86}));
  }
  {
    OpTest t("ScatterND", "", 18);  // full index: single elements
    t.AddInput<int64_t>({2, 2}, {1, 2, 3, 4}).AddInput<int64_t>({1, 2}, {1, -1}).AddInput<int64_t>({1}, {9});
    t.SetAttrString("reduction", "mul").AddOutput(TSR_DTYPE_I64, {2, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{1, 2, 3, 36}));
  }
  OpTest bad("ScatterND", "", 18);  // updates of the wrong shape
  bad.AddInput<float>({3, 2}, data).AddInput<int64_t>({2, 1}, {2, 0}).AddInput<float>({2, 3}, Iota<float>(6));
  bad.AddOutput(TSR_DTYPE_F32, {3, 2});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(TensorScatterKernel, LinearAndCircular) {
  // cache [2, 4, 1], update [2, 2, 1], write at [1, 3].
  const std::vector<float> cache = Iota<float>(8), upd = {100, 101, 200, 201};
  for (const char* mode : {"linear", "circular"}) {
    OpTest t("TensorScatter", "", 24);
    t.AddInput<float>({2, 4, 1}, cache).AddInput<float>({2, 2, 1}, upd);
    t.AddInput<int64_t>({2}, {1, std::string(mode) == "linear" ? 2 : 3});
    t.SetAttrString("mode", mode).AddOutput(TSR_DTYPE_F32, {2, 4, 1});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> ref = cache;
    ref[1] = 100, ref[2] = 101;
    if (std::string(mode) == "linear") ref[6] = 200, ref[7] = 201;
    else ref[7] = 200, ref[4] = 201;
    EXPECT_EQ(t.Output<float>(0), ref) << mode;
  }
  OpTest bad("TensorScatter", "", 24);  // linear write past the end
  bad.AddInput<float>({1, 2, 1}, {1, 2}).AddInput<float>({1, 2, 1}, {3, 4}).AddInput<int64_t>({1}, {1});
  bad.AddOutput(TSR_DTYPE_F32, {1, 2, 1});
  EXPECT_EQ(bad.Run().code, TSR_ERR_OUT_OF_RANGE);
}

// ---- GatherND / OneHot ---------------------------------------------------------------------------

TEST(GatherNDKernel, BatchDimsAndErrors) {
  {
    OpTest t("GatherND", "", 13);
    t.AddInput<int32_t>({2, 2}, {0, 1, 2, 3}).AddInput<int64_t>({2, 2}, {0, 0, 1, 1}).AddOutput(TSR_DTYPE_I32, {2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{0, 3}));
  }
  {
    OpTest t("GatherND", "", 13);  // batch_dims = 1: data [2, 2, 2], indices [2, 1]
    t.AddInput<float>({2, 2, 2}, Iota<float>(8)).AddInput<int64_t>({2, 1}, {1, 0});
    t.SetAttrInt("batch_dims", 1).AddOutput(TSR_DTYPE_F32, {2, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{2, 3, 4, 5}));
  }
  OpTest bad("GatherND", "", 13);
  bad.AddInput<float>({2, 2}, Iota<float>(4)).AddInput<int64_t>({1, 2}, {0, 2}).AddOutput(TSR_DTYPE_F32, {1});
  EXPECT_EQ(bad.Run().code, TSR_ERR_OUT_OF_RANGE);
}

TEST(OneHotKernel, AxisNegativeIndicesAndDTypes) {
  {
    OpTest t("OneHot", "", 11);  // indices [2] float, axis 0, depth 3
    t.AddInput<float>({2}, {1, -1}).AddInput<float>({}, {3}).AddInput<int32_t>({2}, {0, 5});
    t.SetAttrInt("axis", 0).AddOutput(TSR_DTYPE_I32, {3, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int32_t>(0), (std::vector<int32_t>{0, 0, 5, 0, 0, 5}));
  }
  {
    OpTest t("OneHot", "", 11);  // out-of-range index: all off; default axis -1
    t.AddInput<int64_t>({2}, {4, 0}).AddInput<int64_t>({}, {3}).AddInput<float>({2}, {-1, 1});
    t.AddOutput(TSR_DTYPE_F32, {2, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{-1, -1, -1, 1, -1, -1}));
  }
  OpTest bad("OneHot", "", 11);  // constant depth disagrees with the output
  bad.AddInput<int64_t>({2}, {0, 1}).AddInput<int64_t>({}, {4}, true).AddInput<float>({2}, {0, 1});
  bad.AddOutput(TSR_DTYPE_F32, {2, 3});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- DepthToSpace / SpaceToDepth -------------------------------------------------------------------

TEST(SpaceDepthKernel, RoundTripAndModes) {
  const int64_t b = 2, N = 1, C = 8, H = 2, W = 3;
  auto x = Iota<float>(N * C * H * W);
  for (const char* mode : {"DCR", "CRD"}) {
    OpTest t("DepthToSpace", "", 13);
    t.AddInput<float>({N, C, H, W}, x).SetAttrInt("blocksize", b).SetAttrString("mode", mode);
    t.AddOutput(TSR_DTYPE_F32, {N, C / 4, H * 2, W * 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> y = t.Output<float>(0), ref(y.size());
    const int64_t oc = C / 4;
    for (int64_t c = 0; c < oc; ++c)
      for (int64_t h = 0; h < H * b; ++h)
        for (int64_t w = 0; w < W * b; ++w) {
          int64_t ic = std::string(mode) == "DCR" ? ((h % b) * b + w % b) * oc + c : c * b * b + (h % b) * b + w % b;
          ref[(c * H * b + h) * W * b + w] = x[(ic * H + h / b) * W + w / b];
        }
    EXPECT_EQ(y, ref) << mode;
    if (std::string(mode) == "DCR") {  // SpaceToDepth inverts DCR DepthToSpace
      OpTest s("SpaceToDepth", "", 13);
      s.AddInput<float>({N, C / 4, H * 2, W * 2}, y).SetAttrInt("blocksize", b).AddOutput(TSR_DTYPE_F32, {N, C, H, W});
      ASSERT_TRUE(s.Run().ok()) << s.last_error();
      EXPECT_EQ(s.Output<float>(0), x);
    }
  }
  OpTest bad("SpaceToDepth", "", 13);
  bad.AddInput<float>({1, 1, 3, 3}, Iota<float>(9)).SetAttrInt("blocksize", 2).AddOutput(TSR_DTYPE_F32, {1, 4, 1, 1});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- Compress / NonZero / Unique -------------------------------------------------------------------

TEST(CompressKernel, AxisAndFlattened) {
  {
    OpTest t("Compress", "", 11);
    t.AddInput<float>({3, 2}, Iota<float>(6)).AddInputBool({2}, {false, true}).SetAttrInt("axis", -1);
    t.AddOutput(TSR_DTYPE_F32, {3, 1});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1, 3, 5}));
  }
  {
    OpTest t("Compress", "", 11);
    t.AddInput<float>({3, 2}, Iota<float>(6)).AddInputBool({5}, {false, true, true, false, true});
    t.AddOutput(TSR_DTYPE_F32, {3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1, 2, 4}));
  }
  OpTest bad("Compress", "", 11);  // output size disagrees with the condition
  bad.AddInput<float>({3}, Iota<float>(3)).AddInputBool({3}, {true, true, true}).AddOutput(TSR_DTYPE_F32, {2});
  EXPECT_EQ(bad.Run().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(NonZeroKernel, CoordinatesRowMajor) {
  OpTest t("NonZero", "", 13);
  t.AddInput<float>({2, 3}, {0, 1, 0, -2, 0, 3}).AddOutput(TSR_DTYPE_I64, {2, 3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{0, 1, 1, 1, 0, 2}));
  OpTest bad("NonZero", "", 13);
  bad.AddInput<int32_t>({3}, {1, 0, 1}).AddOutput(TSR_DTYPE_I64, {1, 3});
  EXPECT_EQ(bad.Run().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(UniqueKernel, SortedUnsortedAndAxis) {
  const std::vector<float> x = {2, 1, 1, 3, 4, 3};
  {
    OpTest t("Unique", "", 11);
    t.AddInput<float>({6}, x).SetAttrInt("sorted", 0);
    t.AddOutput(TSR_DTYPE_F32, {4}).AddOutput(TSR_DTYPE_I64, {4}).AddOutput(TSR_DTYPE_I64, {6});
    t.AddOutput(TSR_DTYPE_I64, {4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{2, 1, 3, 4}));
    EXPECT_EQ(t.Output<int64_t>(1), (std::vector<int64_t>{0, 1, 3, 4}));
    EXPECT_EQ(t.Output<int64_t>(2), (std::vector<int64_t>{0, 1, 1, 2, 3, 2}));
    EXPECT_EQ(t.Output<int64_t>(3), (std::vector<int64_t>{1, 2, 2, 1}));
  }
  {
    OpTest t("Unique", "", 11);
    t.AddInput<float>({6}, x);
    t.AddOutput(TSR_DTYPE_F32, {4}).AddOutput(TSR_DTYPE_I64, {4}).AddOutput(TSR_DTYPE_I64, {6});
    t.AddOutput(TSR_DTYPE_I64, {4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1, 2, 3, 4}));
    EXPECT_EQ(t.Output<int64_t>(1), (std::vector<int64_t>{1, 0, 3, 4}));
    EXPECT_EQ(t.Output<int64_t>(2), (std::vector<int64_t>{1, 0, 0, 2, 3, 2}));
    EXPECT_EQ(t.Output<int64_t>(3), (std::vector<int64_t>{2, 1, 2, 1}));
  }
  {
    OpTest t("Unique", "", 11);  // rows along axis 0: [1 0], [0 1], [1 0] -> [0 1], [1 0]
    t.AddInput<int64_t>({3, 2}, {1, 0, 0, 1, 1, 0}).SetAttrInt("axis", 0);
    t.AddOutput(TSR_DTYPE_I64, {2, 2}).AddMissingOutput().AddOutput(TSR_DTYPE_I64, {3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{0, 1, 1, 0}));
    EXPECT_EQ(t.Output<int64_t>(2), (std::vector<int64_t>{1, 0, 1}));
  }
  {
    OpTest t("Unique", "", 11);  // NaNs sort last and count as one value
    const float nan = std::nanf("");
    t.AddInput<float>({5}, {nan, 1, nan, 0, 1});
    t.AddOutput(TSR_DTYPE_F32, {3}).AddOutput(TSR_DTYPE_I64, {3}).AddMissingOutput().AddOutput(TSR_DTYPE_I64, {3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> y = t.Output<float>(0);
    EXPECT_EQ(y[0], 0.f);
    EXPECT_EQ(y[1], 1.f);
    EXPECT_TRUE(std::isnan(y[2]));
    EXPECT_EQ(t.Output<int64_t>(1), (std::vector<int64_t>{3, 1, 0}));
    EXPECT_EQ(t.Output<int64_t>(3), (std::vector<int64_t>{1, 2, 2}));
  }
  OpTest bad("Unique", "", 11);
  bad.AddInput<float>({6}, x).AddOutput(TSR_DTYPE_F32, {3});
  EXPECT_EQ(bad.Run().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- EyeLike / ReverseSequence ---------------------------------------------------------------------

TEST(EyeLikeKernel, OffsetDiagonalAndDType) {
  OpTest t("EyeLike", "", 22);
  t.AddInput<int32_t>({3, 4}, std::vector<int32_t>(12, 7)).SetAttrInt("k", 1).AddOutput(TSR_DTYPE_F64, {3, 4});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<double> ref(12, 0);
  for (int i = 0; i < 3; ++i) ref[i * 4 + i + 1] = 1;
  EXPECT_EQ(t.Output<double>(0), ref);
  OpTest bad("EyeLike", "", 22);
  bad.AddInput<float>({2, 2, 2}, Iota<float>(8)).AddOutput(TSR_DTYPE_F32, {2, 2, 2});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(ReverseSequenceKernel, BatchAndTimeMajor) {
  {
    OpTest t("ReverseSequence", "", 10);  // [batch 2, time 3]
    t.AddInput<float>({2, 3}, Iota<float>(6)).AddInput<int64_t>({2}, {3, 2});
    t.SetAttrInt("batch_axis", 0).SetAttrInt("time_axis", 1).AddOutput(TSR_DTYPE_F32, {2, 3});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{2, 1, 0, 4, 3, 5}));
  }
  {
    OpTest t("ReverseSequence", "", 10);  // [time 3, batch 2]
    t.AddInput<float>({3, 2}, Iota<float>(6)).AddInput<int64_t>({2}, {1, 3});
    t.AddOutput(TSR_DTYPE_F32, {3, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{0, 5, 2, 3, 4, 1}));
  }
  OpTest bad("ReverseSequence", "", 10);
  bad.AddInput<float>({2, 3}, Iota<float>(6)).AddInput<int64_t>({2}, {4, 1});
  bad.SetAttrInt("batch_axis", 0).SetAttrInt("time_axis", 1).AddOutput(TSR_DTYPE_F32, {2, 3});
  EXPECT_EQ(bad.Run().code, TSR_ERR_OUT_OF_RANGE);
}

// ---- Einsum / Det ----------------------------------------------------------------------------------

TEST(EinsumKernel, MatmulDiagonalSumAndImplicit) {
  {
    OpTest t("Einsum", "", 12);  // batched matmul against a naive loop
    auto a = Iota<double>(12, 1), b = Iota<double>(24, -5);
    t.AddInput<double>({2, 2, 3}, a).AddInput<double>({2, 3, 4}, b).SetAttrString("equation", "bij, bjk -> bik");
    t.AddOutput(TSR_DTYPE_F64, {2, 2, 4});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<double> ref(16, 0);
    for (int n = 0; n < 2; ++n)
      for (int i = 0; i < 2; ++i)
        for (int k = 0; k < 4; ++k)
          for (int j = 0; j < 3; ++j) ref[(n * 2 + i) * 4 + k] += a[(n * 2 + i) * 3 + j] * b[(n * 3 + j) * 4 + k];
    EXPECT_EQ(t.Output<double>(0), ref);
  }
  {
    OpTest t("Einsum", "", 12);  // batch diagonal with ellipsis
    t.AddInput<float>({2, 2, 2}, Iota<float>(8)).SetAttrString("equation", "...ii ->...i");
    t.AddOutput(TSR_DTYPE_F32, {2, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{0, 3, 4, 7}));
  }
  {
    OpTest t("Einsum", "", 12);  // implicit output: "ij,j" -> "i"; "ji" transposes implicitly
    t.AddInput<int64_t>({2, 3}, Iota<int64_t>(6)).AddInput<int64_t>({3}, {1, 1, 2}).SetAttrString("equation", "ij,j");
    t.AddOutput(TSR_DTYPE_I64, {2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{5, 17}));
  }
  {
    OpTest t("Einsum", "", 12);
    t.AddInput<float>({2, 3}, Iota<float>(6)).SetAttrString("equation", "ji");
    t.AddOutput(TSR_DTYPE_F32, {3, 2});
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_EQ(t.Output<float>(0), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  }
  OpTest bad("Einsum", "", 12);
  bad.SetName("ein");
  bad.AddInput<float>({2, 3}, Iota<float>(6)).SetAttrString("equation", "ijk->i").AddOutput(TSR_DTYPE_F32, {2});
  Err e = bad.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(Mentions(e, "ein")) << e.message;
}

TEST(DetKernel, BatchedAgainstCofactor) {
  const std::vector<float> x = {1, 2, 3, 4, 2, 0, 0, 3, 0, 1, 1, 0};  // dets -2, 6, -1
  OpTest t("Det", "", 22);
  t.AddInput<float>({3, 2, 2}, x).AddOutput(TSR_DTYPE_F32, {3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> y = t.Output<float>(0);
  for (int b = 0; b < 3; ++b) {
    const float* m = x.data() + b * 4;
    EXPECT_NEAR(y[b], m[0] * m[3] - m[1] * m[2], 1e-5) << b;
  }
  OpTest t3("Det", "", 22);
  t3.AddInput<double>({3, 3}, {2, -3, 1, 2, 0, -1, 1, 4, 5}).AddOutput(TSR_DTYPE_F64, {});
  ASSERT_TRUE(t3.Run().ok()) << t3.last_error();
  EXPECT_NEAR(t3.Output<double>(0)[0], 49.0, 1e-9);
  OpTest bad("Det", "", 22);
  bad.AddInput<float>({2, 3}, Iota<float>(6)).AddOutput(TSR_DTYPE_F32, {});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- NonMaxSuppression -----------------------------------------------------------------------------

TEST(NmsKernel, SuppressesOverlapsByScore) {
  // Boxes [y1, x1, y2, x2]: 0 and 1 overlap heavily, 2 is apart.
  const std::vector<float> boxes = {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, 10, 1, 11};
  OpTest t("NonMaxSuppression", "", 11);
  t.AddInput<float>({1, 3, 4}, boxes).AddInput<float>({1, 1, 3}, {0.9f, 0.95f, 0.5f});
  t.AddInput<int64_t>({1}, {3}).AddInput<float>({1}, {0.5f}).AddInput<float>({1}, {0.f});
  t.AddOutput(TSR_DTYPE_I64, {2, 3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<int64_t>(0), (std::vector<int64_t>{0, 0, 1, 0, 0, 2}));
  OpTest bad("NonMaxSuppression", "", 11);  // output count disagrees
  bad.AddInput<float>({1, 3, 4}, boxes).AddInput<float>({1, 1, 3}, {0.9f, 0.95f, 0.5f});
  bad.AddInput<int64_t>({1}, {3}).AddInput<float>({1}, {0.5f}).AddOutput(TSR_DTYPE_I64, {3, 3});
  EXPECT_EQ(bad.Run().code, TSR_ERR_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace tessera::cpu
