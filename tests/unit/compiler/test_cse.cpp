// eliminate_common_subexpressions: identical nodes and constants merge (to a
// fixed point), checked on the graph and on numbers (O0 vs O2 through the CPU
// backend); nodes that differ in any way stay apart.
#include <gtest/gtest.h>

#include <functional>

#include "tests/unit/compiler/pass_test_util.h"

namespace tessera {
namespace {

using testing::CountOps;
using testing::ExpectSameOutputsAtO0And;
using testing::RunPassOn;

using Body = std::function<void(Graph&, Value* x)>;  // adds nodes and graph outputs

Value* Op(Graph& g, const char* op, std::vector<Value*> ins) { return g.AddNode(op, ins, 1)->output(0); }
Value* F32(Graph& g, std::vector<int64_t> dims, std::vector<float> v) {
  return g.AddConstant(g.UniqueName("c"), Tensor::FromVector<float>(DType::kF32, std::move(dims), v));
}
Value* LeakyRelu(Graph& g, Value* x, float alpha) {
  Node* n = g.AddNode("LeakyRelu", {x}, 1);
  n->set_attr("alpha", Attribute::Float(alpha));
  return n->output(0);
}

std::unique_ptr<Graph> Build(const Body& body) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({2, 3})});
  g->AddInput(x);
  body(*g, x);
  return g;
}

std::unique_ptr<Graph> Cse(const Body& body, int64_t* changes = nullptr) {
  auto g = Build(body);
  PassContext ctx;
  RunPassOn(*g, CreateEliminateCommonSubexpressionsPass(), &ctx);
  if (changes) *changes = ctx.changes;
  ExpectSameOutputsAtO0And(2, [&] { return Build(body); });
  return g;
}

TEST(Cse, MergesIdenticalNodesToAFixedPoint) {
  int64_t changes = 0;
  // Two Relu(x) -> two Exp -> two Neg: merging the Relus makes the Exps, then
  // the Negs identical.
  auto g = Cse(
      [](Graph& g, Value* x) {
        Value* a = Op(g, "Neg", {Op(g, "Exp", {Op(g, "Relu", {x})})});
        Value* b = Op(g, "Neg", {Op(g, "Exp", {Op(g, "Relu", {x})})});
        g.AddOutput(Op(g, "Add", {a, b}));
      },
      &changes);
  EXPECT_EQ(changes, 3);
  EXPECT_EQ(CountOps(*g, "Relu"), 1);
  EXPECT_EQ(CountOps(*g, "Exp"), 1);
  EXPECT_EQ(CountOps(*g, "Neg"), 1);
  for (const Node* n : g->nodes())
    if (n->op_type() == "Add") {
      EXPECT_EQ(n->input(0), n->input(1));
    }
}

TEST(Cse, MergesIdenticalConstantsThenTheirUsers) {
  auto g = Cse([](Graph& g, Value* x) {
    Value* c1 = F32(g, {3}, {1, 2, 3});
    Value* c2 = F32(g, {3}, {1, 2, 3});
    g.AddOutput(Op(g, "Mul", {Op(g, "Add", {x, c1}), Op(g, "Add", {x, c2})}));
  });
  EXPECT_EQ(CountOps(*g, "Add"), 1);
  ASSERT_EQ(g->num_nodes(), 2u);
}

TEST(Cse, DifferentConstantsAttributesOrInputsStayApart) {
  auto g = Cse([](Graph& g, Value* x) {
    Value* y = Op(g, "Exp", {x});
    std::vector<Value*> outs = {
        Op(g, "Add", {x, F32(g, {3}, {1, 2, 3})}),
        Op(g, "Add", {x, F32(g, {3}, {1, 2, 4})}),      // different bytes
        Op(g, "Add", {x, F32(g, {1, 3}, {1, 2, 3})}),   // same bytes, different dims
        Op(g, "Sub", {x, y}), Op(g, "Sub", {y, x}),    // input order matters
        LeakyRelu(g, x, 0.1f), LeakyRelu(g, x, 0.2f),   // float attribute
    };
    for (Value* o : outs) g.AddOutput(o);
  });
  EXPECT_EQ(CountOps(*g, "Add"), 3);
  EXPECT_EQ(CountOps(*g, "Sub"), 2);
  EXPECT_EQ(CountOps(*g, "LeakyRelu"), 2);
}

TEST(Cse, TensorAttributesCompareByteWise) {
  auto body = [](Graph& g, Value* x) {
    Value* shape = g.AddConstant("shape", Tensor::FromVector<int64_t>(DType::kI64, {2}, {2, 3}));
    auto fill = [&](float v) {
      Node* n = g.AddNode("ConstantOfShape", {shape}, 1);
      n->set_attr("value", Attribute::FromTensor(Tensor::FromVector<float>(DType::kF32, {1}, {v})));
      return n->output(0);
    };
    Value* a = Op(g, "Add", {x, fill(2.f)});
    Value* b = Op(g, "Add", {x, fill(2.f)});
    Value* c = Op(g, "Add", {x, fill(3.f)});
    g.AddOutput(Op(g, "Sum", {a, b, c}));
  };
  auto g = Build(body);
  PassContext ctx;
  RunPassOn(*g, CreateEliminateCommonSubexpressionsPass(), &ctx);
  EXPECT_EQ(CountOps(*g, "ConstantOfShape"), 2);
  EXPECT_EQ(CountOps(*g, "Add"), 2);
  ExpectSameOutputsAtO0And(2, [&] { return Build(body); });
}

TEST(Cse, NonDeterministicOpsAreNotMerged) {
  auto g = Build([](Graph& g, Value* x) {
    g.AddOutput(Op(g, "Add", {Op(g, "RandomNormalLike", {x}), Op(g, "RandomNormalLike", {x})}));
    g.AddOutput(Op(g, "Add", {Op(g, "RandomUniformLike", {x}), Op(g, "RandomUniformLike", {x})}));
  });
  // Random*Like have no schema here; the pass does not need types.
  PassContext ctx;
  ASSERT_TRUE(CreateEliminateCommonSubexpressionsPass()->Run(*g, ctx).ok());
  EXPECT_EQ(ctx.changes, 0);
  EXPECT_EQ(CountOps(*g, "RandomNormalLike"), 2);
  EXPECT_EQ(CountOps(*g, "RandomUniformLike"), 2);
}

TEST(Cse, GraphOutputsKeepTheirValues) {
  // Both copies are graph outputs: both stay.
  auto g = Cse([](Graph& g, Value* x) {
    g.AddOutput(Op(g, "Relu", {x}));
    g.AddOutput(Op(g, "Relu", {x}));
  });
  EXPECT_EQ(CountOps(*g, "Relu"), 2);

  // The later copy is a graph output: the earlier one goes, its user reads the output.
  auto body = [](Graph& g, Value* x) {
    Value* inner = Op(g, "Relu", {x});
    g.AddOutput(Op(g, "Exp", {inner}));
    Node* out = g.AddNode("Relu", {x}, 1, "out_relu");
    g.AddOutput(out->output(0));
  };
  g = Cse(body);
  ASSERT_EQ(CountOps(*g, "Relu"), 1);
  ASSERT_EQ(g->outputs().size(), 2u);
  Value* relu_out = g->outputs()[1];
  ASSERT_NE(relu_out->producer(), nullptr);
  EXPECT_EQ(relu_out->producer()->name(), "out_relu");
  for (const Node* n : g->nodes())
    if (n->op_type() == "Exp") {
      EXPECT_EQ(n->input(0), relu_out);
    }
  EXPECT_TRUE(g->Verify().ok());
}

TEST(Cse, ConstantsThatAreGraphInputsAreNotMerged) {
  auto g = Build([](Graph& g, Value* x) {
    Value* c1 = F32(g, {3}, {1, 2, 3});
    Value* c2 = F32(g, {3}, {1, 2, 3});
    g.AddInput(c2);  // an overridable initializer
    g.AddOutput(Op(g, "Mul", {Op(g, "Add", {x, c1}), Op(g, "Add", {x, c2})}));
  });
  RunPassOn(*g, CreateEliminateCommonSubexpressionsPass());
  EXPECT_EQ(CountOps(*g, "Add"), 2);
}

TEST(Cse, NodesWithSubgraphsAreNotMerged) {
  Graph g;
  g.set_opset("", 17);
  Value* cond = g.AddValue("cond", TensorType{DType::kBool, Shape::FromInts({})});
  g.AddInput(cond);
  Value* x = g.AddValue("x", TensorType{DType::kF32, Shape::FromInts({2})});
  g.AddInput(x);
  auto branch = std::make_shared<Graph>();
  branch->set_parent(&g);
  branch->AddOutput(branch->AddNode("Neg", {x}, 1)->output(0));
  for (int i = 0; i < 2; ++i) {
    Node* n = g.AddNode("If", {cond}, 1);
    n->set_attr("then_branch", Attribute::FromGraph(branch));
    n->set_attr("else_branch", Attribute::FromGraph(branch));
    g.AddOutput(g.AddNode("Relu", {n->output(0)}, 1)->output(0));
  }
  PassContext ctx;
  ASSERT_TRUE(CreateEliminateCommonSubexpressionsPass()->Run(g, ctx).ok());
  EXPECT_EQ(ctx.changes, 0);
  EXPECT_EQ(CountOps(g, "If"), 2);
  EXPECT_EQ(CountOps(g, "Relu"), 2);
}

}  // namespace
}  // namespace tessera
