// simplify_algebra: no-op removal and chain merging, checked on the graph and
// on numbers (O0 vs O2 through the CPU backend); near-misses stay.
#include <gtest/gtest.h>

#include <functional>

#include "tests/unit/compiler/pass_test_util.h"

namespace tessera {
namespace {

using testing::CountOps;
using testing::ExpectSameOutputsAtO0And;
using testing::RunPassOn;

using Body = std::function<Value*(Graph&, Value* x)>;

Value* Op(Graph& g, const char* op, std::vector<Value*> ins) { return g.AddNode(op, ins, 1)->output(0); }
Value* I64(Graph& g, std::vector<int64_t> v) {
  return g.AddConstant(g.UniqueName("shape"), Tensor::FromVector<int64_t>(DType::kI64, {static_cast<int64_t>(v.size())}, v));
}
Value* Transpose(Graph& g, Value* x, std::vector<int64_t> perm) {
  Node* n = g.AddNode("Transpose", {x}, 1);
  n->set_attr("perm", Attribute::Ints(std::move(perm)));
  return n->output(0);
}
Value* Cast(Graph& g, Value* x, DType to) {
  Node* n = g.AddNode("Cast", {x}, 1);
  n->set_attr("to", Attribute::Int(static_cast<int64_t>(to)));
  return n->output(0);
}

// x f32[2,3,4] -> body -> Relu -> "y" (or body -> "y" directly).
std::unique_ptr<Graph> Build(const Body& body, bool output_direct = false) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({2, 3, 4})});
  g->AddInput(x);
  Value* r = body(*g, x);
  if (!output_direct) r = Op(*g, "Relu", {r});
  g->AddOutput(r);
  return g;
}

// Runs the pass; returns the graph for inspection and checks numbers.
std::unique_ptr<Graph> Simplify(const Body& body, bool output_direct = false, int64_t* changes = nullptr) {
  auto g = Build(body, output_direct);
  PassContext ctx;
  RunPassOn(*g, CreateSimplifyAlgebraPass(), &ctx);
  if (changes) *changes = ctx.changes;
  ExpectSameOutputsAtO0And(2, [&] { return Build(body, output_direct); });
  return g;
}

// The only node is Relu reading x directly.
void ExpectOnlyReluOfX(const Graph& g) {
  ASSERT_EQ(g.num_nodes(), 1u);
  const Node* n = g.nodes()[0];
  EXPECT_EQ(n->op_type(), "Relu");
  EXPECT_EQ(n->input(0)->name(), "x");
}

TEST(SimplifyAlgebra, RemovesNoOps) {
  int64_t changes = 0;
  auto g = Simplify(
      [](Graph& g, Value* x) {
        Value* v = Op(g, "Identity", {x});
        v = Op(g, "Dropout", {v, g.AddConstant("ratio", Tensor::ScalarF32(0.3f))});
        Value* f = g.AddConstant("train", Tensor::FromVector<uint8_t>(DType::kBool, {}, {0}));
        Node* d2 = g.AddNode("Dropout", {v, g.AddConstant("ratio2", Tensor::ScalarF32(0.1f)), f}, 2);
        v = Cast(g, d2->output(0), DType::kF32);
        v = Transpose(g, v, {0, 1, 2});
        v = Op(g, "Reshape", {v, I64(g, {2, 3, 4})});
        v = Op(g, "Reshape", {v, I64(g, {0, 3, -1})});
        return v;
      },
      false, &changes);
  ExpectOnlyReluOfX(*g);
  EXPECT_GE(changes, 7);
}

TEST(SimplifyAlgebra, NoOpFeedingAGraphOutputKeepsTheOutputValue) {
  auto g = Build([](Graph& g, Value* x) { return Op(g, "Identity", {Op(g, "Exp", {x})}); }, true);
  Value* out = g->outputs()[0];
  std::string name = out->name();
  RunPassOn(*g, CreateSimplifyAlgebraPass());
  ASSERT_EQ(g->num_nodes(), 1u);
  EXPECT_EQ(g->outputs()[0], out);
  EXPECT_EQ(out->name(), name);
  ASSERT_NE(out->producer(), nullptr);
  EXPECT_EQ(out->producer()->op_type(), "Exp");
  ExpectSameOutputsAtO0And(2, [] { return Build([](Graph& g, Value* x) { return Op(g, "Identity", {Op(g, "Exp", {x})}); }, true); });
}

TEST(SimplifyAlgebra, IdentityOfAGraphInputToAGraphOutputStays) {
  auto g = Build([](Graph& g, Value* x) { return Op(g, "Identity", {x}); }, true);
  RunPassOn(*g, CreateSimplifyAlgebraPass());
  EXPECT_EQ(CountOps(*g, "Identity"), 1);
  EXPECT_EQ(g->outputs()[0]->producer()->op_type(), "Identity");
}

TEST(SimplifyAlgebra, DropoutThatMayTrainOrWhoseMaskIsUsedStays) {
  {
    SCOPED_TRACE("training_mode constant true");
    auto g = Build([](Graph& g, Value* x) {
      Value* t = g.AddConstant("train", Tensor::FromVector<uint8_t>(DType::kBool, {}, {1}));
      return g.AddNode("Dropout", {x, g.AddConstant("ratio", Tensor::ScalarF32(0.f)), t}, 1)->output(0);
    });
    RunPassOn(*g, CreateSimplifyAlgebraPass());
    EXPECT_EQ(CountOps(*g, "Dropout"), 1);
  }
  {
    SCOPED_TRACE("training_mode is a graph input");
    auto g = Build([](Graph& g, Value* x) {
      Value* t = g.AddValue("train", TensorType{DType::kBool, Shape::FromInts({})});
      g.AddInput(t);
      return g.AddNode("Dropout", {x, g.AddConstant("ratio", Tensor::ScalarF32(0.f)), t}, 1)->output(0);
    });
    RunPassOn(*g, CreateSimplifyAlgebraPass());
    EXPECT_EQ(CountOps(*g, "Dropout"), 1);
  }
  {
    SCOPED_TRACE("mask output is used");
    auto build = [] {
      auto g = std::make_unique<Graph>();
      g->set_opset("", 17);
      Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({2, 3})});
      g->AddInput(x);
      Node* d = g->AddNode("Dropout", {x}, 2);
      g->AddOutput(d->output(0));
      g->AddOutput(d->output(1));
      return g;
    };
    auto g = build();
    RunPassOn(*g, CreateSimplifyAlgebraPass());
    EXPECT_EQ(CountOps(*g, "Dropout"), 1);
  }
}

TEST(SimplifyAlgebra, MergesTransposes) {
  auto g = Simplify([](Graph& g, Value* x) { return Transpose(g, Transpose(g, x, {1, 0, 2}), {0, 2, 1}); });
  ASSERT_EQ(CountOps(*g, "Transpose"), 1);
  const Node* t = g->nodes()[0];
  EXPECT_EQ(t->input(0)->name(), "x");
  EXPECT_EQ(t->GetInts("perm"), (std::vector<int64_t>{1, 2, 0}));
  // Default perm (reverse) composed with an explicit one.
  g = Simplify([](Graph& g, Value* x) { return Transpose(g, Op(g, "Transpose", {x}), {2, 0, 1}); });
  ASSERT_EQ(CountOps(*g, "Transpose"), 1);
  EXPECT_EQ(g->nodes()[0]->GetInts("perm"), (std::vector<int64_t>{0, 2, 1}));
  // Inverse perms cancel.
  g = Simplify([](Graph& g, Value* x) { return Transpose(g, Transpose(g, x, {1, 2, 0}), {2, 0, 1}); });
  ExpectOnlyReluOfX(*g);
}

TEST(SimplifyAlgebra, SharedOrOutputIntermediatesBlockMerges) {
  {
    SCOPED_TRACE("first transpose also feeds another node");
    auto body = [](Graph& g, Value* x) {
      Value* t1 = Transpose(g, x, {1, 0, 2});
      return Op(g, "Add", {Transpose(g, t1, {1, 0, 2}), Transpose(g, Op(g, "Exp", {t1}), {1, 0, 2})});
    };
    auto g = Simplify(body);
    EXPECT_EQ(CountOps(*g, "Transpose"), 3);
  }
  {
    SCOPED_TRACE("first reshape is a graph output");
    auto build = [] {
      auto g = Build([](Graph& g, Value* x) {
        Value* r1 = Op(g, "Reshape", {x, I64(g, {6, 4})});
        g.AddOutput(r1);
        return Op(g, "Reshape", {r1, I64(g, {4, 6})});
      });
      return g;
    };
    auto g = build();
    RunPassOn(*g, CreateSimplifyAlgebraPass());
    EXPECT_EQ(CountOps(*g, "Reshape"), 2);
    ExpectSameOutputsAtO0And(2, build);
  }
  {
    SCOPED_TRACE("reshape to a different shape");
    auto g = Simplify([](Graph& g, Value* x) { return Op(g, "Reshape", {x, I64(g, {4, 3, 2})}); });
    EXPECT_EQ(CountOps(*g, "Reshape"), 1);
  }
}

TEST(SimplifyAlgebra, MergesReshapeChains) {
  auto g = Simplify([](Graph& g, Value* x) {
    return Op(g, "Reshape", {Op(g, "Reshape", {x, I64(g, {6, 4})}), I64(g, {4, -1})});
  });
  ASSERT_EQ(g->num_nodes(), 2u);
  EXPECT_EQ(CountOps(*g, "Reshape"), 1);
  for (const Node* n : g->nodes())
    if (n->op_type() == "Reshape") {
      EXPECT_EQ(n->input(0)->name(), "x");
    }

  // A 0 in the second shape copies a dim of the first's output: replaced by
  // the static result shape.
  g = Simplify([](Graph& g, Value* x) {
    return Op(g, "Reshape", {Op(g, "Reshape", {x, I64(g, {6, 4})}), I64(g, {0, 2, 2})});
  });
  ASSERT_EQ(CountOps(*g, "Reshape"), 1);
  for (const Node* n : g->nodes()) {
    if (n->op_type() != "Reshape") continue;
    EXPECT_EQ(n->input(0)->name(), "x");
    ASSERT_NE(n->input(1)->constant(), nullptr);
    EXPECT_EQ(*n->input(1)->constant()->ToInt64Vector(), (std::vector<int64_t>{6, 2, 2}));
  }

  // Flatten -> Unsqueeze -> Squeeze: one Reshape with a constant shape.
  g = Simplify([](Graph& g, Value* x) {
    Node* f = g.AddNode("Flatten", {x}, 1);
    f->set_attr("axis", Attribute::Int(1));
    Value* u = Op(g, "Unsqueeze", {f->output(0), I64(g, {1})});
    return Op(g, "Unsqueeze", {u, I64(g, {0})});
  });
  ASSERT_EQ(g->num_nodes(), 2u);
  ASSERT_EQ(CountOps(*g, "Reshape"), 1);
  for (const Node* n : g->nodes()) {
    if (n->op_type() != "Reshape") continue;
    EXPECT_EQ(n->input(0)->name(), "x");
    EXPECT_EQ(*n->input(1)->constant()->ToInt64Vector(), (std::vector<int64_t>{1, 2, 1, 12}));
  }
}

TEST(SimplifyAlgebra, SymbolicDimsAreOnlyTrustedWhenNamed) {
  for (bool named : {true, false}) {
    Graph g;
    g.set_opset("", 17);
    Dim batch = named ? Dim::Symbol("batch") : Dim::Unknown();
    Value* x = g.AddValue("x", TensorType{DType::kF32, Shape({batch, Dim::Known(4)})});
    g.AddInput(x);
    Value* y = g.AddValue("y", TensorType{DType::kF32, Shape({batch, Dim::Known(4)})});
    g.AddNodeWithOutputs("Reshape", {x, I64(g, {-1, 4})}, {y}, "reshape");
    g.AddOutput(g.AddNode("Relu", {y}, 1)->output(0));
    RunPassOn(g, CreateSimplifyAlgebraPass());
    EXPECT_EQ(CountOps(g, "Reshape"), named ? 0 : 1) << (named ? "named" : "unnamed");
  }
}

TEST(SimplifyAlgebra, MergesOnlyExactCastChains) {
  // f32 -> f64 -> f32: every f32 is exact in f64, so the round trip is a no-op.
  auto g = Simplify([](Graph& g, Value* x) { return Cast(g, Cast(g, x, DType::kF64), DType::kF32); });
  ExpectOnlyReluOfX(*g);
  // f32 -> f16 -> f32 rounds: stays.
  g = Simplify([](Graph& g, Value* x) { return Cast(g, Cast(g, x, DType::kF16), DType::kF32); });
  EXPECT_EQ(CountOps(*g, "Cast"), 2);
  // f32 -> i64 -> f32 truncates: stays.
  g = Simplify([](Graph& g, Value* x) { return Cast(g, Cast(g, x, DType::kI64), DType::kF32); }, true);
  EXPECT_EQ(CountOps(*g, "Cast"), 2);
  // f32 -> i32 -> i64 -> i32: the widening round trip goes, f32 -> i32 stays.
  g = Simplify([](Graph& g, Value* x) { return Cast(g, Cast(g, Cast(g, x, DType::kI32), DType::kI64), DType::kI32); },
               true);
  ASSERT_EQ(CountOps(*g, "Cast"), 1);
  EXPECT_EQ(g->nodes()[0]->input(0)->name(), "x");
  EXPECT_EQ(g->outputs()[0]->dtype(), DType::kI32);
  // f32 -> f64 -> i64: Cast(f32 -> i64) directly.
  g = Simplify([](Graph& g, Value* x) { return Cast(g, Cast(g, x, DType::kF64), DType::kI64); }, true);
  ASSERT_EQ(CountOps(*g, "Cast"), 1);
  EXPECT_EQ(g->nodes()[0]->input(0)->name(), "x");
  EXPECT_EQ(g->nodes()[0]->GetInt("to", 0), static_cast<int64_t>(DType::kI64));
}

}  // namespace
}  // namespace tessera
