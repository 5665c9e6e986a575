// The narrow dtypes (float8 family, i4/u4/f4e2m1): names, sizes, minifloat
// and e8m0 conversions (checked against values from ONNX's reference /
// ml_dtypes and against the plugin-side copy in backends/common/plugin_util.h),
// nibble packing, and TensorProto round trips that pack/unpack sub-byte types.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "backends/common/plugin_util.h"
#include "graph/dtype.h"
#include "graph/graph.h"
#include "graph/onnx/onnx_export.h"
#include "graph/onnx/onnx_import.h"
#include "graph/onnx/tensor_proto.h"
#include "graph/tensor.h"

namespace tessera {
namespace {

const DType kMini[] = {DType::kF8E4M3FN, DType::kF8E4M3FNUZ, DType::kF8E5M2, DType::kF8E5M2FNUZ, DType::kF4E2M1};

TEST(DTypesTest, NewTypesAreKnownOneByteAndNamed) {
  struct {
    DType t;
    int id;
    const char* name;
    const char* onnx;
  } cases[] = {{DType::kF8E4M3FN, 17, "f8e4m3fn", "float8e4m3fn"}, {DType::kF8E4M3FNUZ, 18, "f8e4m3fnuz", "float8e4m3fnuz"},
               {DType::kF8E5M2, 19, "f8e5m2", "float8e5m2"},       {DType::kF8E5M2FNUZ, 20, "f8e5m2fnuz", "float8e5m2fnuz"},
               {DType::kU4, 21, "u4", "uint4"},                    {DType::kI4, 22, "i4", "int4"},
               {DType::kF4E2M1, 23, "f4e2m1", "float4e2m1"},       {DType::kF8E8M0, 24, "f8e8m0", "float8e8m0"}};
  for (const auto& c : cases) {
    EXPECT_EQ(static_cast<int>(c.t), c.id);
    EXPECT_TRUE(IsKnownDType(c.id)) << c.name;
    EXPECT_EQ(DTypeSize(c.t), 1u) << c.name;  // unpacked storage
    EXPECT_EQ(plugin::DTypeSize(c.id), 1u) << c.name;
    EXPECT_STREQ(DTypeName(c.t), c.name);
    EXPECT_STREQ(plugin::DTypeName(c.id), c.name);
    EXPECT_EQ(DTypeFromName(c.name), c.t);
    EXPECT_EQ(DTypeFromName(c.onnx), c.t);
  }
  EXPECT_FALSE(IsKnownDType(14));  // complex types stay unsupported
  EXPECT_FALSE(IsKnownDType(15));
  EXPECT_FALSE(IsKnownDType(25));
  EXPECT_TRUE(IsIntegerDType(DType::kI4));
  EXPECT_TRUE(IsIntegerDType(DType::kU4));
  EXPECT_FALSE(IsFloatDType(DType::kF8E4M3FN));  // no native arithmetic
  EXPECT_TRUE(IsAnyFloatDType(DType::kF8E4M3FN));
  EXPECT_TRUE(IsAnyFloatDType(DType::kF4E2M1));
  EXPECT_TRUE(IsFloat8DType(DType::kF8E8M0));
  EXPECT_TRUE(IsSubByteDType(DType::kF4E2M1));
  EXPECT_FALSE(IsSubByteDType(DType::kF8E5M2));
}

TEST(DTypesTest, MiniFloatDecodeKnownValues) {
  EXPECT_EQ(MiniFloatToFloat(DType::kF8E4M3FN, 0x7E), 448.f);
  EXPECT_TRUE(std::isnan(MiniFloatToFloat(DType::kF8E4M3FN, 0x7F)));
  EXPECT_TRUE(std::isnan(MiniFloatToFloat(DType::kF8E4M3FN, 0xFF)));
  EXPECT_EQ(MiniFloatToFloat(DType::kF8E4M3FN, 0x01), std::ldexp(1.f, -9));  // smallest subnormal
  EXPECT_EQ(MiniFloatToFloat(DType::kF8E4M3FN, 0x38), 1.f);
  EXPECT_EQ(MiniFloatToFloat(DType::kF8E4M3FNUZ, 0x7F), 240.f);
  EXPECT_TRUE(std::isnan(MiniFloatToFloat(DType::kF8E4M3FNUZ, 0x80)));
  EXPECT_EQ(MiniFloatToFloat(DType::kF8E5M2, 0x7B), 57344.f);
  EXPECT_EQ(MiniFloatToFloat(DType::kF8E5M2, 0x7C), std::numeric_limits<float>::infinity());
  EXPECT_EQ(MiniFloatToFloat(DType::kF8E5M2, 0xFC), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(MiniFloatToFloat(DType::kF8E5M2FNUZ, 0x7F), 57344.f);
  EXPECT_EQ(MiniFloatToFloat(DType::kF4E2M1, 0x7), 6.f);
  EXPECT_EQ(MiniFloatToFloat(DType::kF4E2M1, 0xF), -6.f);
  EXPECT_EQ(MiniFloatToFloat(DType::kF4E2M1, 0x1), 0.5f);
}

TEST(DTypesTest, MiniFloatEncodeMatchesOnnxReference) {
  // Saturating casts, from the ONNX test data (test_cast_FLOAT_to_FLOAT8E4M3FN).
  const float in[] = {0.47892547f, 0.48033667f, 0.49968487f, 0.81910545f, 0.47031248f,
                      0.7229038f,  1000000.f,   1e-7f,       NAN,         INFINITY,
                      INFINITY,    -INFINITY,   -1e-7f,      1e-7f,       -1000000.f};
  const uint8_t e4m3fn[] = {0x2f, 0x2f, 0x30, 0x35, 0x2f, 0x34, 0x7e, 0x00,
                            0x7f, 0x7e, 0x7e, 0xfe, 0x80, 0x00, 0xfe};
  const uint8_t e4m3fn_nosat[] = {0x2f, 0x2f, 0x30, 0x35, 0x2f, 0x34, 0x7f, 0x00,
                                  0x7f, 0x7f, 0x7f, 0xff, 0x80, 0x00, 0xff};
  const uint8_t e5m2fnuz[] = {0x3c, 0x3c, 0x3c, 0x3f, 0x3c, 0x3e, 0x7f, 0x00,
                              0x80, 0x7f, 0x7f, 0xff, 0x00, 0x00, 0xff};
  for (size_t i = 0; i < std::size(in); ++i) {
    EXPECT_EQ(FloatToMiniFloat(DType::kF8E4M3FN, in[i], true), e4m3fn[i]) << i;
    EXPECT_EQ(FloatToMiniFloat(DType::kF8E4M3FN, in[i], false), e4m3fn_nosat[i]) << i;
    EXPECT_EQ(FloatToMiniFloat(DType::kF8E5M2FNUZ, in[i], true), e5m2fnuz[i]) << i;
  }
  // Ties round to even; overflow without saturation.
  EXPECT_EQ(FloatToMiniFloat(DType::kF8E4M3FN, 464.f, false), 0x7E);  // tie 448 / 480 -> 448
  EXPECT_EQ(FloatToMiniFloat(DType::kF8E4M3FN, 470.f, false), 0x7F);  // NaN
  EXPECT_EQ(FloatToMiniFloat(DType::kF8E5M2, 61440.f, false), 0x7C);  // tie rounds up into inf
  EXPECT_EQ(FloatToMiniFloat(DType::kF8E5M2, 61440.f, true), 0x7B);
  EXPECT_EQ(FloatToMiniFloat(DType::kF8E5M2, NAN, false), 0x7E);
  EXPECT_EQ(FloatToMiniFloat(DType::kF8E4M3FNUZ, 250.f, false), 0x80);
  EXPECT_EQ(FloatToMiniFloat(DType::kF8E4M3FNUZ, -0.f, true), 0x00);  // no negative zero
  // f4e2m1 (test_cast_FLOAT_to_FLOAT4E2M1): always saturating, NaN -> 0x8.
  const float f4_in[] = {0.48f, 0.25f, 1.05f, -3.5f, -8.f, 9.f, 1e6f, 1e-7f, NAN, INFINITY, -INFINITY, -4.f, 0.01f, -0.f,
                         5.f,   2.5f,  0.75f};
  const uint8_t f4_out[] = {1, 0, 2, 14, 15, 7, 7, 0, 8, 7, 15, 14, 0, 8, 6, 4, 2};
  for (size_t i = 0; i < std::size(f4_in); ++i) EXPECT_EQ(FloatToMiniFloat(DType::kF4E2M1, f4_in[i], false), f4_out[i]) << i;
}

TEST(DTypesTest, MiniFloatRoundTripsEveryCodeAndAgreesWithPluginCopy) {
  for (DType t : kMini) {
    const int codes = t == DType::kF4E2M1 ? 16 : 256;
    for (int c = 0; c < codes; ++c) {
      const float f = MiniFloatToFloat(t, static_cast<uint8_t>(c));
      const float pf = plugin::MiniFloatToFloat(static_cast<int32_t>(t), static_cast<uint8_t>(c));
      if (std::isnan(f)) {
        EXPECT_TRUE(std::isnan(pf)) << DTypeName(t) << " code " << c;
        continue;
      }
      EXPECT_EQ(f, pf) << DTypeName(t) << " code " << c;
      // Every non-NaN code re-encodes to itself (fnuz 0x80 is NaN, handled above).
      EXPECT_EQ(FloatToMiniFloat(t, f, false), c) << DTypeName(t) << " code " << c;
    }
    // Encoders agree on a sweep of values (incl. ties, subnormals, overflow).
    for (int i = -4000; i <= 4000; ++i) {
      const float x = std::ldexp(static_cast<float>(i) * 0.37f, (i % 23) - 11);
      for (bool sat : {true, false})
        EXPECT_EQ(FloatToMiniFloat(t, x, sat), plugin::FloatToMiniFloat(static_cast<int32_t>(t), x, sat))
            << DTypeName(t) << " x=" << x << " sat=" << sat;
    }
  }
}

TEST(DTypesTest, E8M0ConversionsFollowRoundMode) {
  // test_cast_e8m0_FLOAT_to_FLOAT8E8M0 (round_mode "up", saturate).
  const float in[] = {0.0f, 0.124f, 0.25f, 0.5f, 1.1f, 2.0f, 4.0f, 8.0f};
  const uint8_t up[] = {0x00, 0x7c, 0x7d, 0x7e, 0x80, 0x80, 0x81, 0x82};
  for (size_t i = 0; i < std::size(in); ++i) {
    EXPECT_EQ(FloatToE8M0(in[i], true, E8M0Round::kUp), up[i]) << i;
    EXPECT_EQ(plugin::FloatToE8M0(in[i], true, plugin::E8M0Round::kUp), up[i]) << i;
  }
  EXPECT_EQ(FloatToE8M0(1.1f, true, E8M0Round::kDown), 0x7F);
  EXPECT_EQ(FloatToE8M0(1.6f, true, E8M0Round::kNearest), 0x80);
  EXPECT_EQ(FloatToE8M0(1.4f, true, E8M0Round::kNearest), 0x7F);
  EXPECT_EQ(FloatToE8M0(NAN, true, E8M0Round::kUp), 0xFF);
  const float big = std::ldexp(1.5f, 127);
  EXPECT_EQ(FloatToE8M0(big, true, E8M0Round::kUp), 0xFE);   // saturates at 2^127
  EXPECT_EQ(FloatToE8M0(big, false, E8M0Round::kUp), 0xFF);  // rounds into NaN
  EXPECT_EQ(E8M0ToFloat(0x7F), 1.0f);
  EXPECT_EQ(E8M0ToFloat(0x82), 8.0f);
  EXPECT_TRUE(std::isnan(E8M0ToFloat(0xFF)));
  EXPECT_EQ(plugin::E8M0ToFloat(0x80), 2.0f);
}

TEST(DTypesTest, NibblePackingLowNibbleFirstAndSignExtends) {
  const uint8_t unpacked[] = {7, static_cast<uint8_t>(-8), 1, 0xF, 3};
  uint8_t packed[3] = {0xAA, 0xAA, 0xAA};
  EXPECT_EQ(PackedByteSize(5), 3u);
  EXPECT_EQ(PackedByteSize(0), 0u);
  PackNibbles(unpacked, 5, packed);
  EXPECT_EQ(packed[0], 0x87);
  EXPECT_EQ(packed[1], 0xF1);
  EXPECT_EQ(packed[2], 0x03);  // odd count: high nibble zero
  uint8_t back[5];
  UnpackNibbles(packed, 5, DType::kI4, back);
  EXPECT_EQ(static_cast<int8_t>(back[0]), 7);
  EXPECT_EQ(static_cast<int8_t>(back[1]), -8);
  EXPECT_EQ(static_cast<int8_t>(back[3]), -1);
  UnpackNibbles(packed, 5, DType::kU4, back);
  EXPECT_EQ(back[1], 8);
  EXPECT_EQ(back[3], 15);
}

TEST(DTypesTest, TensorGetAsDecodesNarrowTypes) {
  auto t = Tensor::FromBytes(DType::kF8E4M3FN, {3}, "\x38\x7e\xff", 3);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->GetAsDouble(0), 1.0);
  EXPECT_EQ(t->GetAsDouble(1), 448.0);
  EXPECT_TRUE(std::isnan(t->GetAsDouble(2)));
  EXPECT_EQ(t->GetAsInt64(1), 448);
  EXPECT_EQ(t->GetAsInt64(2), 0);  // NaN
  const int8_t i4[] = {-8, 7};
  auto u = Tensor::FromBytes(DType::kI4, {2}, i4, 2);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->GetAsInt64(0), -8);
  EXPECT_EQ(u->GetAsDouble(1), 7.0);
  auto v = u->ToInt64Vector();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)[0], -8);
}

class TensorProtoSubByteTest : public ::testing::Test {
 protected:
  std::string path_;
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("tessera_dtypes_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".pb"))
                .string();
  }
  void TearDown() override { std::remove(path_.c_str()); }
};

TEST_F(TensorProtoSubByteTest, Int4RoundTripsPackedOnDisk) {
  const int8_t vals[] = {-8, -1, 0, 3, 7};
  auto t = Tensor::FromBytes(DType::kI4, {5}, vals, 5);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(SaveTensorProtoFile(path_, *t, "x").ok());
  EXPECT_LT(std::filesystem::file_size(path_), 5u + 16u);  // 3 packed bytes plus the header
  auto r = LoadTensorProtoFile(path_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->dtype(), DType::kI4);
  ASSERT_EQ(r->nbytes(), 5u);
  EXPECT_EQ(std::memcmp(r->raw(), vals, 5), 0);
}

TEST_F(TensorProtoSubByteTest, Float8RoundTripsAsBytes) {
  const uint8_t vals[] = {0x00, 0x38, 0x7e, 0xfe};
  auto t = Tensor::FromBytes(DType::kF8E5M2, {2, 2}, vals, 4);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(SaveTensorProtoFile(path_, *t, "x").ok());
  auto r = LoadTensorProtoFile(path_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->dtype(), DType::kF8E5M2);
  EXPECT_EQ(std::memcmp(r->raw(), vals, 4), 0);
}

TEST(TensorProtoSubByteErrors, WrongPackedSizeIsRejectedWithReason) {
  // TensorProto{dims: [5], data_type: INT4 (22), raw_data: 2 bytes} - 5 int4 need 3.
  const unsigned char bytes[] = {0x08, 0x05, 0x10, 0x16, 0x4a, 0x02, 0x12, 0x34};
  auto r = TensorFromProtoBytes(bytes, sizeof(bytes), "", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("needs 3"), std::string::npos) << r.status().message();
}

TEST(OnnxNarrowTypesTest, ExportImportRoundTripsInt4ConstantAndFloat8Io) {
  Graph g;
  g.set_name("narrow");
  g.set_opset("", 21);
  Value* x = g.AddValue("x", TensorType{DType::kF8E4M3FN, Shape::FromInts({3})});
  g.AddInput(x);
  const int8_t w[] = {-8, 7, -1};
  auto wt = Tensor::FromBytes(DType::kI4, {3}, w, 3);
  ASSERT_TRUE(wt.ok());
  Value* wv = g.AddConstant("w", *wt);
  Node* c = g.AddNode("Cast", {x}, 1, "cast");
  c->set_attr("to", Attribute::Int(static_cast<int64_t>(DType::kF32)));
  c->output(0)->set_type(TensorType{DType::kF32, Shape::FromInts({3})});
  Node* d = g.AddNode("Cast", {wv}, 1, "cast_w");
  d->set_attr("to", Attribute::Int(static_cast<int64_t>(DType::kF32)));
  d->output(0)->set_type(TensorType{DType::kF32, Shape::FromInts({3})});
  g.AddOutput(c->output(0));
  g.AddOutput(d->output(0));
  auto bytes = ExportOnnx(g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto back = ImportOnnxBytes(bytes->data(), bytes->size(), "");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)->FindValue("x")->type().ToString(), "f8e4m3fn[3]");
  const Value* bw = (*back)->FindValue("w");
  ASSERT_NE(bw, nullptr);
  ASSERT_NE(bw->constant(), nullptr);
  EXPECT_EQ(bw->constant()->dtype(), DType::kI4);
  ASSERT_EQ(bw->constant()->nbytes(), 3u);
  EXPECT_EQ(std::memcmp(bw->constant()->raw(), w, 3), 0);
}

}  // namespace
}  // namespace tessera
