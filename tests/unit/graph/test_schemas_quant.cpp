// Shape/type inference of the quantization schemas (graph/ops_quant.cpp) and
// Cast's acceptance of the narrow dtypes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

class QuantSchemaTest : public ::testing::Test {
 protected:
  Graph g;
  void SetUp() override {
    g.set_name("test");
    g.set_opset("", 21);
  }
  Value* In(DType dt, std::vector<int64_t> dims) {
    Value* v = g.AddValue("", TensorType{dt, Shape::FromInts(dims)});
    g.AddInput(v);
    return v;
  }
  Node* Op(const std::string& op, std::vector<Value*> ins, size_t nout = 1) { return g.AddNode(op, ins, nout, "n"); }
  std::string Run(Node* n) {
    Status st = InferNodeTypes(*n);
    if (!st.ok()) return "error: " + st.message();
    std::string r;
    for (size_t i = 0; i < n->num_outputs(); ++i) r += (i ? " " : "") + n->output(i)->type().ToString();
    return r;
  }
};

TEST_F(QuantSchemaTest, QuantizeLinearOutputTypeFromZeroPointAttrOrDefault) {
  Value* x = In(DType::kF32, {2, 3});
  Value* s = In(DType::kF32, {});
  EXPECT_EQ(Run(Op("QuantizeLinear", {x, s})), "u8[2,3]");
  EXPECT_EQ(Run(Op("QuantizeLinear", {x, s, In(DType::kI4, {})})), "i4[2,3]");
  EXPECT_EQ(Run(Op("QuantizeLinear", {x, s, In(DType::kF8E4M3FN, {})})), "f8e4m3fn[2,3]");
  Node* n = Op("QuantizeLinear", {x, s});
  n->set_attr("output_dtype", Attribute::Int(static_cast<int64_t>(DType::kI16)));
  EXPECT_EQ(Run(n), "i16[2,3]");
}

TEST_F(QuantSchemaTest, QuantizeLinearRejectsMismatchAndNonQuantTypes) {
  Value* x = In(DType::kF32, {2});
  Value* s = In(DType::kF32, {});
  Node* n = Op("QuantizeLinear", {x, s, In(DType::kU8, {})});
  n->set_attr("output_dtype", Attribute::Int(static_cast<int64_t>(DType::kI8)));
  std::string r = Run(n);
  EXPECT_NE(r.find("error"), std::string::npos) << r;
  EXPECT_NE(r.find("output_dtype"), std::string::npos) << r;
  r = Run(Op("QuantizeLinear", {x, s, In(DType::kF32, {})}));
  EXPECT_NE(r.find("not a quantized type"), std::string::npos) << r;
}

TEST_F(QuantSchemaTest, DequantizeLinearOutputIsScaleType) {
  EXPECT_EQ(Run(Op("DequantizeLinear", {In(DType::kU4, {4, 5}), In(DType::kF16, {5})})), "f16[4,5]");
  std::string r = Run(Op("DequantizeLinear", {In(DType::kF32, {4}), In(DType::kF32, {})}));
  EXPECT_NE(r.find("not a quantized type"), std::string::npos) << r;
}

TEST_F(QuantSchemaTest, DynamicQuantizeLinearHasThreeOutputs) {
  EXPECT_EQ(Run(Op("DynamicQuantizeLinear", {In(DType::kF32, {3, 4})}, 3)), "u8[3,4] f32[] u8[]");
}

TEST_F(QuantSchemaTest, IntegerMatMulAndConvShapes) {
  EXPECT_EQ(Run(Op("MatMulInteger", {In(DType::kU8, {2, 3, 4}), In(DType::kI8, {4, 5})})), "i32[2,3,5]");
  Value* a = In(DType::kI8, {2, 4});
  Value* b = In(DType::kI8, {4, 3});
  Value* sc = In(DType::kF32, {});
  Value* zp = In(DType::kI8, {});
  EXPECT_EQ(Run(Op("QLinearMatMul", {a, sc, zp, b, sc, zp, sc, In(DType::kU8, {})})), "u8[2,3]");
  Node* c = Op("ConvInteger", {In(DType::kU8, {1, 1, 3, 3}), In(DType::kU8, {1, 1, 2, 2})});
  c->set_attr("pads", Attribute::Ints({1, 1, 1, 1}));
  EXPECT_EQ(Run(c), "i32[1,1,4,4]");
  Value* x = In(DType::kU8, {1, 2, 5, 5});
  Value* w = In(DType::kU8, {3, 2, 3, 3});
  Value* u8zp = In(DType::kU8, {});
  EXPECT_EQ(Run(Op("QLinearConv", {x, sc, u8zp, w, sc, u8zp, sc, u8zp})), "u8[1,3,3,3]");
  std::string r = Run(Op("MatMulInteger", {In(DType::kF32, {2, 2}), In(DType::kU8, {2, 2})}));
  EXPECT_NE(r.find("expected u8 or i8"), std::string::npos) << r;
}

TEST_F(QuantSchemaTest, CastAcceptsNarrowTypes) {
  Node* n = Op("Cast", {In(DType::kF32, {3})});
  n->set_attr("to", Attribute::Int(static_cast<int64_t>(DType::kF8E5M2FNUZ)));
  EXPECT_EQ(Run(n), "f8e5m2fnuz[3]");
  Node* m = Op("Cast", {In(DType::kF32, {3})});
  m->set_attr("to", Attribute::Int(14));  // complex64: not supported
  EXPECT_NE(Run(m).find("not a supported dtype"), std::string::npos);
}

}  // namespace
}  // namespace tessera
