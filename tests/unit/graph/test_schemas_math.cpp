// Shape inference of graph/ops_math.cpp: trig/hyperbolic functions,
// ThresholdedRelu, Swish, Celu, Shrink, IsNaN/IsInf and the bitwise family.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/op_schema.h"
#include "tests/unit/graph/type_text.h"

namespace tessera {
namespace {

TensorType T(const std::string& text) { return testing::ParseTensorType(text); }

class MathInfer : public ::testing::Test {
 protected:
  Graph g;
  void SetUp() override { g.set_opset("", 24); }
  Value* In(const std::string& type) {
    Value* v = g.AddValue("", T(type));
    g.AddInput(v);
    return v;
  }
  std::string Run(Node* n) {
    Status st = InferNodeTypes(*n);
    if (!st.ok()) return "error: " + st.message();
    std::string r;
    for (size_t i = 0; i < n->num_outputs(); ++i) r += (i ? " " : "") + n->output(i)->type().ToString();
    return r;
  }
};

bool IsErrorNaming(const std::string& r, const std::string& op, const std::string& what) {
  return r.rfind("error: ", 0) == 0 && r.find("(" + op + ")") != std::string::npos && r.find(what) != std::string::npos;
}

TEST_F(MathInfer, FloatUnaryKeepsTypeAndRejectsIntegers) {
  for (const char* op : {"Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "ThresholdedRelu",
                         "Swish", "Celu"}) {
    SCOPED_TRACE(op);
    EXPECT_EQ(Run(g.AddNode(op, {In("f64[2,?]")}, 1, "n")), "f64[2,?]");
    EXPECT_EQ(Run(g.AddNode(op, {In("f16[3]")}, 1, "n")), "f16[3]");
    std::string r = Run(g.AddNode(op, {In("i32[3]")}, 1, "n"));
    EXPECT_TRUE(IsErrorNaming(r, op, "floating-point")) << r;
  }
}

TEST_F(MathInfer, IsNaNIsInfGiveBool) {
  EXPECT_EQ(Run(g.AddNode("IsNaN", {In("f16[2,3]")}, 1, "n")), "bool[2,3]");
  EXPECT_EQ(Run(g.AddNode("IsInf", {In("f64[4]")}, 1, "n")), "bool[4]");
  std::string r = Run(g.AddNode("IsInf", {In("i64[4]")}, 1, "n"));
  EXPECT_TRUE(IsErrorNaming(r, "IsInf", "i64")) << r;
}

TEST_F(MathInfer, BitwiseBroadcastsIntegersOnly) {
  EXPECT_EQ(Run(g.AddNode("BitwiseAnd", {In("u8[2,1,4]"), In("u8[3,1]")}, 1, "n")), "u8[2,3,4]");
  EXPECT_EQ(Run(g.AddNode("BitwiseXor", {In("i16[3]"), In("i16[3]")}, 1, "n")), "i16[3]");
  EXPECT_EQ(Run(g.AddNode("BitwiseNot", {In("i32[5]")}, 1, "n")), "i32[5]");
  std::string f = Run(g.AddNode("BitwiseOr", {In("f32[3]"), In("f32[3]")}, 1, "n"));
  EXPECT_TRUE(IsErrorNaming(f, "BitwiseOr", "integer")) << f;
  std::string mix = Run(g.AddNode("BitwiseOr", {In("i32[3]"), In("i64[3]")}, 1, "n"));
  EXPECT_TRUE(IsErrorNaming(mix, "BitwiseOr", "differ")) << mix;
  std::string bad = Run(g.AddNode("BitwiseAnd", {In("i32[3]"), In("i32[4]")}, 1, "n"));
  EXPECT_EQ(bad.rfind("error: ", 0), 0u) << bad;
}

TEST_F(MathInfer, BitShiftNeedsUnsignedAndDirection) {
  Node* n = g.AddNode("BitShift", {In("u32[2,3]"), In("u32[3]")}, 1, "n");
  n->set_attr("direction", Attribute::String("LEFT"));
  EXPECT_EQ(Run(n), "u32[2,3]");
  Node* s = g.AddNode("BitShift", {In("i32[3]"), In("i32[3]")}, 1, "n");
  s->set_attr("direction", Attribute::String("RIGHT"));
  std::string r = Run(s);
  EXPECT_TRUE(IsErrorNaming(r, "BitShift", "unsigned")) << r;
  Node* d = g.AddNode("BitShift", {In("u8[3]"), In("u8[3]")}, 1, "n");
  std::string rd = Run(d);
  EXPECT_TRUE(IsErrorNaming(rd, "BitShift", "direction")) << rd;
}

TEST_F(MathInfer, ShrinkAndCeluAttributes) {
  EXPECT_EQ(Run(g.AddNode("Shrink", {In("i8[4]")}, 1, "n")), "i8[4]");
  Node* s = g.AddNode("Shrink", {In("f32[4]")}, 1, "n");
  s->set_attr("lambd", Attribute::Float(-1.f));
  std::string r = Run(s);
  EXPECT_TRUE(IsErrorNaming(r, "Shrink", "lambd")) << r;
  Node* c = g.AddNode("Celu", {In("f32[4]")}, 1, "n");
  c->set_attr("alpha", Attribute::Float(0.f));
  std::string rc = Run(c);
  EXPECT_TRUE(IsErrorNaming(rc, "Celu", "alpha")) << rc;
}

}  // namespace
}  // namespace tessera
