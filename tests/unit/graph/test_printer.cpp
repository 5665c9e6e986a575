#include <gtest/gtest.h>

#include "graph/printer.h"

namespace tessera {
namespace {

bool Has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

TEST(PrinterTest, PrintsInputsNodesAttrsTypesAndOutputs) {
  Graph g;
  g.set_name("demo");
  g.set_opset("", 17);
  Value* x = g.AddValue("x", TensorType{DType::kF32, Shape({Dim::Symbol("batch"), Dim::Known(3)})});
  g.AddInput(x);
  Value* w = g.AddConstant("w", Tensor::FromVector<float>(DType::kF32, {3, 4}, std::vector<float>(12, 0.5f)));
  Value* b = g.AddConstant("b", Tensor::FromVector<int64_t>(DType::kI64, {2}, {1, -2}));
  Value* y = g.AddValue("y", TensorType{DType::kF32, Shape({Dim::Symbol("batch"), Dim::Known(4)})});
  Node* mm = g.AddNodeWithOutputs("MatMul", {x, w}, {y}, "matmul");
  Node* split = g.AddNodeWithOutputs(
      "Split", {mm->output(0), b},
      {g.AddValue("a", TensorType{DType::kF32, Shape::FromInts({1, 2})}), g.AddValue("c", TensorType{})}, "split");
  split->set_attr("axis", Attribute::Int(1));
  split->set_attr("mode", Attribute::String("fast \"q\""));
  split->set_attr("scales", Attribute::Floats({0.5f, 2.f}));
  Node* clip = g.AddNode("Clip", {split->output(0), nullptr, b}, 1, "clip", "tessera");
  g.AddOutput(clip->output(0));
  g.AddOutput(split->output(1));

  const std::string text = PrintGraph(g);
  SCOPED_TRACE(text);
  EXPECT_TRUE(Has(text, "graph demo (opset ai.onnx=17) {"));
  EXPECT_TRUE(Has(text, "input %x : f32[batch,3]\n"));
  EXPECT_TRUE(Has(text, "const %w : f32[3,4] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, ...}"));
  EXPECT_TRUE(Has(text, "const %b : i64[2] = {1, -2}"));
  EXPECT_TRUE(Has(text, "%y = MatMul(%x, %w) : f32[batch,4]  # matmul\n"));
  EXPECT_TRUE(Has(text, R"(%a, %c = Split[axis=1, mode="fast \"q\"", scales=[0.5,2]](%y, %b) : f32[1,2], undefined[*])"));
  EXPECT_TRUE(Has(text, "= tessera.Clip(%a, _, %b)"));
  EXPECT_TRUE(Has(text, "output %" + clip->output(0)->name() + ", %c\n"));
  // Inputs come before nodes, nodes in order, outputs last.
  EXPECT_LT(text.find("input %x"), text.find("MatMul"));
  EXPECT_LT(text.find("MatMul"), text.find("Split"));
  EXPECT_LT(text.find("Split"), text.find("output %"));
}

TEST(PrinterTest, PrintsSubgraphsIndentedAndTensorAttrs) {
  Graph g;
  g.set_name("outer");
  Value* cond = g.AddValue("cond", TensorType{DType::kBool, Shape()});
  g.AddInput(cond);
  Value* x = g.AddValue("x", TensorType{DType::kF32, Shape::FromInts({2})});
  g.AddInput(x);
  auto body = std::make_shared<Graph>();
  body->set_name("then_body");
  body->set_parent(&g);
  Node* inner = body->AddNode("Relu", {x}, 1, "inner");
  body->AddOutput(inner->output(0));
  Node* iff = g.AddNode("If", {cond}, 1, "if");
  iff->set_attr("then_branch", Attribute::FromGraph(body));
  iff->set_attr("pad", Attribute::FromTensor(Tensor::FromVector<uint8_t>(DType::kBool, {2}, {1, 0})));
  g.AddOutput(iff->output(0));

  const std::string text = PrintGraph(g);
  SCOPED_TRACE(text);
  EXPECT_TRUE(Has(text, "If[pad=bool[2] {true, false}](%cond)"));
  EXPECT_TRUE(Has(text, "    then_branch: graph then_body {\n"));
  EXPECT_TRUE(Has(text, "      " + ("%" + inner->output(0)->name()) + " = Relu(%x)"));
  // The subgraph's own output line is indented deeper than the outer one.
  EXPECT_TRUE(Has(text, "      output %" + inner->output(0)->name() + "\n"));
  EXPECT_TRUE(Has(text, "\n  output %" + iff->output(0)->name() + "\n"));
}

}  // namespace
}  // namespace tessera
