// Resize/Upsample, GridSample, AffineGrid, CenterCropPad, Col2Im and RoiAlign
// CPU kernels against naive references, plus their input validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu {
namespace {

using testing::AllClose;
using testing::OpTest;
using Dims = std::vector<int64_t>;

std::vector<float> Iota(int64_t n, float start = 0.f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + static_cast<float>(i);
  return v;
}

// ---- Resize ------------------------------------------------------------------------

// Bilinear half_pixel reference on one [H, W] plane (edge-clamped).
std::vector<float> BilinearRef(const std::vector<float>& x, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  std::vector<float> y(static_cast<size_t>(OH * OW));
  const double sh = static_cast<double>(OH) / static_cast<double>(H), sw = static_cast<double>(OW) / static_cast<double>(W);
  for (int64_t i = 0; i < OH; ++i) {
    for (int64_t j = 0; j < OW; ++j) {
      double fy = (static_cast<double>(i) + 0.5) / sh - 0.5, fx = (static_cast<double>(j) + 0.5) / sw - 0.5;
      fy = std::clamp(fy, 0.0, static_cast<double>(H - 1));
      fx = std::clamp(fx, 0.0, static_cast<double>(W - 1));
      int64_t y0 = static_cast<int64_t>(std::floor(fy)), x0 = static_cast<int64_t>(std::floor(fx));
      int64_t y1 = std::min(y0 + 1, H - 1), x1 = std::min(x0 + 1, W - 1);
      double ly = fy - static_cast<double>(y0), lx = fx - static_cast<double>(x0);
      auto at = [&](int64_t a, int64_t b) { return static_cast<double>(x[static_cast<size_t>(a * W + b)]); };
      y[static_cast<size_t>(i * OW + j)] = static_cast<float>((1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) +
                                                              ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1)));
    }
  }
  return y;
}

TEST(ResizeKernel, LinearHalfPixelMatchesBilinearReference) {
  for (auto [oh, ow] : std::vector<std::pair<int64_t, int64_t>>{{6, 10}, {2, 3}, {5, 5}}) {
    OpTest t("Resize", "", 19);
    std::vector<float> x = testing::RandomFloats(3 * 5, -2.f, 2.f, 1);
    t.AddInput<float>({1, 1, 3, 5}, x);
    t.AddMissingInput();
    t.AddMissingInput();
    t.AddInput<int64_t>({4}, {1, 1, oh, ow}, true);
    t.AddOutput(TSR_DTYPE_F32, {1, 1, oh, ow});
    t.SetAttrString("mode", "linear");
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    EXPECT_TRUE(AllClose(t.Output<float>(0), BilinearRef(x, 3, 5, oh, ow), 1e-5f, 1e-6f)) << oh << "x" << ow;
  }
}

TEST(ResizeKernel, NearestAsymmetricFloorRepeatsPixels) {
  OpTest t("Resize", "", 13);
  t.AddInput<float>({1, 2, 2}, {1, 2, 3, 4});
  t.AddMissingInput();
  t.AddInput<float>({3}, {1.f, 2.f, 3.f}, true);
  t.AddOutput(TSR_DTYPE_F32, {1, 4, 6});
  t.SetAttrString("coordinate_transformation_mode", "asymmetric");
  t.SetAttrString("nearest_mode", "floor");
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> expect;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 6; ++j) expect.push_back(static_cast<float>(1 + (i / 2) * 2 + j / 3));
  EXPECT_EQ(t.Output<float>(0), expect);
}

TEST(ResizeKernel, UpsampleOpset9MatchesRepeat) {
  OpTest t("Upsample", "", 9);
  t.AddInput<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  t.AddInput<float>({4}, {1.f, 1.f, 2.f, 3.f}, true);
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 4, 6});
  t.SetAttrString("mode", "nearest");
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> y = t.Output<float>(0);
  EXPECT_EQ(y[0], 1.f);
  EXPECT_EQ(y[3], 2.f);
  EXPECT_EQ(y[12], 3.f);
  EXPECT_EQ(y[23], 4.f);
}

// Cubic (A = -0.75) on a 1-D axis: the reference evaluates the Keys kernel
// directly with edge clamping.
TEST(ResizeKernel, CubicMatchesKeysKernelReference) {
  const int64_t W = 6, OW = 9;
  std::vector<float> x = testing::RandomFloats(W, -1.f, 1.f, 7);
  OpTest t("Resize", "", 19);
  t.AddInput<float>({1, W}, x);
  t.AddMissingInput();
  t.AddMissingInput();
  t.AddInput<int64_t>({1}, {OW}, true);
  t.AddOutput(TSR_DTYPE_F32, {1, OW});
  t.SetAttrString("mode", "cubic");
  t.SetAttrInts("axes", {1});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  auto keys = [](double d) {
    const double A = -0.75;
    d = std::fabs(d);
    if (d <= 1) return ((A + 2) * d - (A + 3)) * d * d + 1;
    if (d < 2) return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
    return 0.0;
  };
  std::vector<float> expect;
  for (int64_t o = 0; o < OW; ++o) {
    double src = (static_cast<double>(o) + 0.5) * W / OW - 0.5;
    int64_t f = static_cast<int64_t>(std::floor(src));
    double acc = 0;
    for (int64_t k = f - 1; k <= f + 2; ++k)
      acc += keys(src - static_cast<double>(k)) * x[static_cast<size_t>(std::clamp<int64_t>(k, 0, W - 1))];
    expect.push_back(static_cast<float>(acc));
  }
  EXPECT_TRUE(AllClose(t.Output<float>(0), expect, 1e-5f, 1e-6f));
}

TEST(ResizeKernel, Opset10NearestDownsampleRoundsUp) {
  OpTest t("Resize", "", 10);
  t.AddInput<float>({1, 6}, Iota(6));
  t.AddInput<float>({2}, {1.f, 0.4f}, true);
  t.AddOutput(TSR_DTYPE_F32, {1, 2});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  // Source coordinates 0 and 2.5 -> ceil -> 0 and 3.
  EXPECT_EQ(t.Output<float>(0), (std::vector<float>{0, 3}));
}

TEST(ResizeKernel, F16LinearUpsampleKeepsExactValues) {
  // 1.0 and 3.0 in f16 bits; align_corners x3 gives 1, 1.5, 2, 2.5, 3 ... all exact in f16.
  OpTest t("Resize", "", 19);
  t.AddInput<uint16_t>(TSR_DTYPE_F16, {1, 2}, {0x3C00, 0x4200});
  t.AddMissingInput();
  t.AddMissingInput();
  t.AddInput<int64_t>({2}, {1, 5}, true);
  t.AddOutput(TSR_DTYPE_F16, {1, 5});
  t.SetAttrString("mode", "linear");
  t.SetAttrString("coordinate_transformation_mode", "align_corners");
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  // 1.0, 1.5, 2.0, 2.5, 3.0
  EXPECT_EQ(t.Output<uint16_t>(0), (std::vector<uint16_t>{0x3C00, 0x3E00, 0x4000, 0x4100, 0x4200}));
}

TEST(ResizeKernel, TfCropAndResizeExtrapolates) {
  OpTest t("Resize", "", 19);
  t.AddInput<float>({1, 4}, {0, 1, 2, 3});
  t.AddInput<float>({2}, {0.5f, 1.5f}, true);
  t.AddMissingInput();
  t.AddInput<int64_t>({1}, {3}, true);
  t.AddOutput(TSR_DTYPE_F32, {1, 3});
  t.SetAttrString("mode", "linear");
  t.SetAttrString("coordinate_transformation_mode", "tf_crop_and_resize");
  t.SetAttrInts("axes", {1});
  t.SetAttrFloat("extrapolation_value", -7.f);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  // Source coordinates 1.5, 3.0, 4.5 -> 1.5, 3, out of range.
  EXPECT_TRUE(AllClose(t.Output<float>(0), {1.5f, 3.f, -7.f}));
}

TEST(ResizeKernel, U8RoundsAndSaturates) {
  OpTest t("Resize", "", 19);
  t.AddInput<uint8_t>({1, 2}, {0, 255});
  t.AddMissingInput();
  t.AddInput<float>({2}, {1.f, 2.f}, true);
  t.AddOutput(TSR_DTYPE_U8, {1, 4});
  t.SetAttrString("mode", "cubic");
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<uint8_t> y = t.Output<uint8_t>(0);
  EXPECT_EQ(y[0], 0);  // cubic overshoot below 0 saturates
  EXPECT_EQ(y[3], 255);
  EXPECT_GT(y[1], 0);
  EXPECT_LT(y[1], y[2]);
}

TEST(ResizeKernel, RejectsBadInputs) {
  {  // both scales and sizes
    OpTest t("Resize", "", 19);
    t.AddInput<float>({1, 2}, {1, 2});
    t.AddMissingInput();
    t.AddInput<float>({2}, {1.f, 2.f}, true);
    t.AddInput<int64_t>({2}, {1, 4}, true);
    t.AddOutput(TSR_DTYPE_F32, {1, 4});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("only one of scales and sizes"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("node_Resize"), std::string::npos) << e.message;
  }
  {  // sizes not constant
    OpTest t("Resize", "", 19);
    t.AddInput<float>({1, 2}, {1, 2});
    t.AddMissingInput();
    t.AddMissingInput();
    t.AddInput<int64_t>({2}, {1, 4}, false);
    t.AddOutput(TSR_DTYPE_F32, {1, 4});
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("constant"), std::string::npos) << e.message;
  }
  {  // bad mode
    OpTest t("Resize", "", 19);
    t.AddInput<float>({1, 2}, {1, 2});
    t.AddMissingInput();
    t.AddInput<float>({2}, {1.f, 2.f}, true);
    t.AddOutput(TSR_DTYPE_F32, {1, 4});
    t.SetAttrString("mode", "area");
    Err e = t.Create();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("mode 'area'"), std::string::npos) << e.message;
  }
  {  // scales of the wrong length
    OpTest t("Resize", "", 19);
    t.AddInput<float>({1, 2}, {1, 2});
    t.AddMissingInput();
    t.AddInput<float>({3}, {1.f, 2.f, 1.f}, true);
    t.AddOutput(TSR_DTYPE_F32, {1, 4});
    EXPECT_EQ(t.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
}

TEST(ResizeKernel, ClaimNamesNonConstantSizesAndDType) {
  OpTest t("Resize", "", 19);
  t.AddInput<float>({1, 2}, {1, 2});
  t.AddMissingInput();
  t.AddMissingInput();
  t.AddInput<int64_t>({2}, {1, 4}, false);
  t.AddOutput(TSR_DTYPE_F32, {1, 4});
  EXPECT_NE(t.Claim().find("needs input 3 to be a constant"), std::string::npos) << t.Claim();
  OpTest c("Resize", "", 19);
  c.AddInput<float>({1, 2}, {1, 2});
  c.AddMissingInput();
  c.AddMissingInput();
  c.AddInput<int64_t>({2}, {1, 4}, true);
  c.AddOutput(TSR_DTYPE_F32, {1, 4});
  EXPECT_EQ(c.Claim(), "");
  OpTest b("Resize", "", 19);
  b.AddInputBool({1, 2}, {true, false});
  b.AddMissingInput();
  b.AddMissingInput();
  b.AddInput<int64_t>({2}, {1, 4}, true);
  b.AddOutput(TSR_DTYPE_BOOL, {1, 4});
  EXPECT_NE(b.Claim().find("bool"), std::string::npos) << b.Claim();
}

// ---- GridSample ---------------------------------------------------------------------

TEST(GridSampleKernel, BilinearZerosMatchesReference) {
  const int64_t H = 3, W = 4, OH = 2, OW = 5;
  std::vector<float> x = testing::RandomFloats(2 * H * W, -1.f, 1.f, 3);
  std::vector<float> g = testing::RandomFloats(OH * OW * 2, -1.3f, 1.3f, 4);
  OpTest t("GridSample", "", 20);
  t.AddInput<float>({1, 2, H, W}, x);
  t.AddInput<float>({1, OH, OW, 2}, g);
  t.AddOutput(TSR_DTYPE_F32, {1, 2, OH, OW});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  std::vector<float> expect;
  for (int64_t c = 0; c < 2; ++c) {
    for (int64_t p = 0; p < OH * OW; ++p) {
      double gx = g[static_cast<size_t>(2 * p)], gy = g[static_cast<size_t>(2 * p + 1)];
      double fx = ((gx + 1) * W - 1) / 2, fy = ((gy + 1) * H - 1) / 2;
      int64_t x0 = static_cast<int64_t>(std::floor(fx)), y0 = static_cast<int64_t>(std::floor(fy));
      double acc = 0;
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx) {
          int64_t yy = y0 + dy, xx = x0 + dx;
          if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
          double w = (dy ? fy - static_cast<double>(y0) : 1 - (fy - static_cast<double>(y0))) *
                     (dx ? fx - static_cast<double>(x0) : 1 - (fx - static_cast<double>(x0)));
          acc += w * x[static_cast<size_t>((c * H + yy) * W + xx)];
        }
      expect.push_back(static_cast<float>(acc));
    }
  }
  EXPECT_TRUE(AllClose(t.Output<float>(0), expect, 1e-5f, 1e-6f));
}

TEST(GridSampleKernel, NearestBorderAlignCornersPicksCorners) {
  OpTest t("GridSample", "", 20);
  t.AddInput<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  t.AddInput<float>({1, 1, 3, 2}, {-1.f, -1.f, 5.f, -1.f, 1.f, 1.f});
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 1, 3});
  t.SetAttrString("mode", "nearest");
  t.SetAttrString("padding_mode", "border");
  t.SetAttrInt("align_corners", 1);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1, 2, 4}));
}

TEST(GridSampleKernel, RejectsMismatchedGrid) {
  OpTest t("GridSample", "", 20);
  t.AddInput<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  t.AddInput<float>({1, 1, 1, 3}, {0, 0, 0});
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 1, 1});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("grid"), std::string::npos) << e.message;
  OpTest m("GridSample", "", 20);
  m.AddInput<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  m.AddInput<float>({1, 1, 1, 2}, {0, 0});
  m.AddOutput(TSR_DTYPE_F32, {1, 1, 1, 1});
  m.SetAttrString("padding_mode", "wrap");
  EXPECT_EQ(m.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

// ---- AffineGrid ------------------------------------------------------------------------

TEST(AffineGridKernel, IdentityGivesNormalizedCoordinates) {
  for (int align = 0; align <= 1; ++align) {
    OpTest t("AffineGrid", "", 20);
    t.AddInput<float>({1, 2, 3}, {1, 0, 0, 0, 1, 0});
    t.AddInput<int64_t>({4}, {1, 1, 2, 3}, true);
    t.AddOutput(TSR_DTYPE_F32, {1, 2, 3, 2});
    t.SetAttrInt("align_corners", align);
    ASSERT_TRUE(t.Run().ok()) << t.last_error();
    std::vector<float> expect;
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t w = 0; w < 3; ++w) {
        float xs = align ? -1.f + static_cast<float>(w) : (2.f * static_cast<float>(w) + 1.f) / 3.f - 1.f;
        float ys = align ? -1.f + 2.f * static_cast<float>(h) : (2.f * static_cast<float>(h) + 1.f) / 2.f - 1.f;
        expect.push_back(xs);
        expect.push_back(ys);
      }
    EXPECT_TRUE(AllClose(t.Output<float>(0), expect, 1e-5f, 1e-6f)) << "align " << align;
  }
}

TEST(AffineGridKernel, RejectsBadTheta) {
  OpTest t("AffineGrid", "", 20);
  t.AddInput<float>({1, 3, 4}, std::vector<float>(12, 0.f));
  t.AddInput<int64_t>({4}, {1, 1, 2, 3}, true);
  t.AddOutput(TSR_DTYPE_F32, {1, 2, 3, 2});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("theta"), std::string::npos) << e.message;
}

// ---- CenterCropPad ----------------------------------------------------------------------

TEST(CenterCropPadKernel, CropsAndPadsAroundTheCenter) {
  OpTest t("CenterCropPad", "", 18);
  t.AddInput<float>({5, 2}, Iota(10));
  t.AddInput<int64_t>({2}, {2, 5}, true);
  t.AddOutput(TSR_DTYPE_F32, {2, 5});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  // Rows 1..2 of the input (crop 5 -> 2 starts at 1); columns padded 1 before, 2 after.
  EXPECT_EQ(t.Output<float>(0), (std::vector<float>{0, 2, 3, 0, 0, 0, 4, 5, 0, 0}));
}

TEST(CenterCropPadKernel, RejectsShapeOfWrongLength) {
  OpTest t("CenterCropPad", "", 18);
  t.AddInput<float>({5, 2}, Iota(10));
  t.AddInput<int64_t>({1}, {2}, true);
  t.AddOutput(TSR_DTYPE_F32, {2, 2});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("one per axis"), std::string::npos) << e.message;
}

// ---- Col2Im -------------------------------------------------------------------------------

TEST(Col2ImKernel, SumsOverlappingBlocks) {
  // 1 channel, image 3x3, block 2x2, stride 1: 4 blocks; every column of ones.
  OpTest t("Col2Im", "", 18);
  t.AddInput<float>({1, 4, 4}, std::vector<float>(16, 1.f));
  t.AddInput<int64_t>({2}, {3, 3}, true);
  t.AddInput<int64_t>({2}, {2, 2}, true);
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 3, 3});
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  // Each pixel counts how many 2x2 blocks cover it.
  EXPECT_EQ(t.Output<float>(0), (std::vector<float>{1, 2, 1, 2, 4, 2, 1, 2, 1}));
}

TEST(Col2ImKernel, RejectsWrongBlockCount) {
  OpTest t("Col2Im", "", 18);
  t.AddInput<float>({1, 4, 5}, std::vector<float>(20, 1.f));
  t.AddInput<int64_t>({2}, {3, 3}, true);
  t.AddInput<int64_t>({2}, {2, 2}, true);
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 3, 3});
  Err e = t.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("blocks"), std::string::npos) << e.message;
}

// ---- RoiAlign -------------------------------------------------------------------------------

TEST(RoiAlignKernel, AveragesALinearRamp) {
  // X[h][w] = w: bilinear sampling of a ramp returns the sample x positions.
  std::vector<float> x;
  for (int64_t h = 0; h < 6; ++h)
    for (int64_t w = 0; w < 6; ++w) x.push_back(static_cast<float>(w));
  OpTest t("RoiAlign", "", 16);
  t.AddInput<float>({1, 1, 6, 6}, x);
  t.AddInput<float>({1, 4}, {1.f, 1.f, 3.f, 3.f});
  t.AddInput<int64_t>({1}, {0});
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 2, 2});
  t.SetAttrInt("output_height", 2);
  t.SetAttrInt("output_width", 2);
  t.SetAttrInt("sampling_ratio", 2);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  // half_pixel: roi [0.5, 2.5]; bins [0.5,1.5], [1.5,2.5]; sample means 1.0 and 2.0.
  EXPECT_TRUE(AllClose(t.Output<float>(0), {1.f, 2.f, 1.f, 2.f}, 1e-5f, 1e-6f));
}

TEST(RoiAlignKernel, RejectsOutOfRangeBatchIndexAtRun) {
  OpTest t("RoiAlign", "", 16);
  t.AddInput<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  t.AddInput<float>({1, 4}, {0.f, 0.f, 1.f, 1.f});
  t.AddInput<int64_t>({1}, {3});
  t.AddOutput(TSR_DTYPE_F32, {1, 1, 1, 1});
  Err e = t.Run();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("batch index 3"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace tessera::cpu
