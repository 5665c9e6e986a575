#include <gtest/gtest.h>

#include <sstream>

#include "compiler/pass.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

Value* Input(Graph& g, const std::string& name, std::vector<int64_t> dims) {
  Value* v = g.AddValue(name, TensorType{DType::kF32, Shape::FromInts(dims)});
  g.AddInput(v);
  return v;
}

// x -> Shape -> Gather(0) ... ; plus Add(c1, c2) -> Mul(x, .) and a dead Relu.
std::unique_ptr<Graph> FoldableGraph() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = Input(*g, "x", {2, 3});
  Value* c1 = g->AddConstant("c1", Tensor::FromVector<float>(DType::kF32, {3}, {1, 2, 3}));
  Value* c2 = g->AddConstant("c2", Tensor::FromVector<float>(DType::kF32, {3}, {10, 20, 30}));
  Node* add = g->AddNode("Add", {c1, c2}, 1, "const_add");
  Node* mul = g->AddNode("Mul", {x, add->output(0)}, 1, "mul");
  Node* shape = g->AddNode("Shape", {x}, 1, "shape");
  Node* cast = g->AddNode("Cast", {shape->output(0)}, 1, "cast");
  cast->set_attr("to", Attribute::Int(1));
  Node* dead = g->AddNode("Relu", {x}, 1, "dead_relu");
  (void)dead;
  g->AddOutput(mul->output(0));
  g->AddOutput(cast->output(0));
  return g;
}

// A tiny evaluator for the test: Add and Cast of f32/i64 constants.
Result<std::vector<Tensor>> TestEvaluator(const Node& n) {
  if (n.op_type() == "Add") {
    const Tensor* a = n.input(0)->constant();
    const Tensor* b = n.input(1)->constant();
    std::vector<float> out(a->num_elements());
    for (size_t i = 0; i < out.size(); ++i) out[i] = a->data<float>()[i] + b->data<float>()[i];
    return std::vector<Tensor>{Tensor::FromVector<float>(DType::kF32, a->dims(), out)};
  }
  if (n.op_type() == "Cast") {
    const Tensor* a = n.input(0)->constant();
    std::vector<float> out(a->num_elements());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(a->GetAsDouble(i));
    return std::vector<Tensor>{Tensor::FromVector<float>(DType::kF32, a->dims(), out)};
  }
  return Unsupported("test evaluator cannot run ", n.op_type());
}

TEST(Passes, O1FoldsConstantsAndShapesAndRemovesDeadCode) {
  auto g = FoldableGraph();
  ASSERT_EQ(g->num_nodes(), 5u);
  auto pm = BuildPipeline(1);
  ASSERT_TRUE(pm.ok());
  PassContext ctx;
  ctx.evaluator = TestEvaluator;
  ctx.verify = true;
  ASSERT_TRUE(pm->Run(*g, ctx).ok());
  // Only Mul survives: Add and Shape->Cast folded, Relu dead.
  auto nodes = g->nodes();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0]->op_type(), "Mul");
  const Tensor* folded = nodes[0]->input(1)->constant();
  ASSERT_NE(folded, nullptr);
  EXPECT_FLOAT_EQ(folded->data<float>()[0], 11.f);
  EXPECT_FLOAT_EQ(folded->data<float>()[2], 33.f);
  const Tensor* shape = g->outputs()[1]->constant();
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(shape->dtype(), DType::kF32);
  EXPECT_FLOAT_EQ(shape->data<float>()[0], 2.f);
  EXPECT_FLOAT_EQ(shape->data<float>()[1], 3.f);
  // Stats recorded per pass.
  auto stat = [&](const std::string& name) -> const PassStat* {
    for (const auto& st : ctx.stats)
      if (st.pass == name) return &st;
    return nullptr;
  };
  ASSERT_NE(stat("fold_constants"), nullptr);
  EXPECT_EQ(stat("fold_constants")->changes, 3);
  ASSERT_NE(stat("eliminate_dead_code"), nullptr);
  EXPECT_EQ(stat("eliminate_dead_code")->nodes_after, 1);
}

TEST(Passes, O0OnlyInfersShapes) {
  auto g = FoldableGraph();
  auto pm = BuildPipeline(0);
  ASSERT_TRUE(pm.ok());
  PassContext ctx;
  ASSERT_TRUE(pm->Run(*g, ctx).ok());
  EXPECT_EQ(g->num_nodes(), 5u);
  EXPECT_EQ(g->outputs()[0]->type().ToString(), "f32[2,3]");
}

TEST(Passes, FoldingWithoutEvaluatorStillFoldsShapes) {
  auto g = FoldableGraph();
  auto pm = BuildPipeline(1);
  PassContext ctx;
  ASSERT_TRUE(pm->Run(*g, ctx).ok());
  // Add and Cast need an evaluator and stay; Shape folds; Relu is removed.
  EXPECT_EQ(g->num_nodes(), 3u);
  EXPECT_EQ(g->FindNode("shape"), nullptr);
}

TEST(Passes, DumpAfterPrintsTheGraph) {
  auto g = FoldableGraph();
  auto pm = BuildPipeline(1);
  std::ostringstream os;
  PassContext ctx;
  ctx.dump_after = "eliminate_dead_code";
  ctx.dump_stream = &os;
  ctx.evaluator = TestEvaluator;
  ASSERT_TRUE(pm->Run(*g, ctx).ok());
  EXPECT_NE(os.str().find("after pass 'eliminate_dead_code'"), std::string::npos);
  EXPECT_NE(os.str().find("Mul"), std::string::npos);
}

TEST(Passes, BadOptLevelIsAnError) {
  auto pm = BuildPipeline(7);
  ASSERT_FALSE(pm.ok());
  EXPECT_NE(pm.status().message().find("optimization level"), std::string::npos);
}

TEST(Passes, InferenceFailureNamesNodeAndPass) {
  Graph g;
  g.set_opset("", 17);
  Value* a = Input(g, "a", {2, 3});
  Value* b = Input(g, "b", {4, 5});
  g.AddOutput(g.AddNode("MatMul", {a, b}, 1, "bad_matmul")->output(0));
  auto pm = BuildPipeline(1);
  PassContext ctx;
  Status s = pm->Run(g, ctx);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bad_matmul"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("MatMul"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("infer_shapes"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace tessera
