// fuse_elementwise: graph shape after the pass and numbers at O0 vs O2.
#include <gtest/gtest.h>

#include <limits>

#include "compiler/pass.h"
#include "graph/onnx/onnx_export.h"
#include "graph/onnx/onnx_import.h"
#include "graph/op_schema.h"
#include "tests/unit/compiler/pass_test_util.h"

namespace tessera {
namespace {

using testing::CountOps;
using testing::ExpectSameOutputsAtO0And;
using testing::RunPassOn;

// Opcodes (graph/ops_fused_elementwise.cpp).
enum : int64_t {
  kAdd = 0, kSub, kMul, kDiv, kMax, kMin, kPow,
  kNeg, kAbs, kRelu, kLeakyRelu, kSigmoid, kTanh, kExp, kLog, kSqrt, kReciprocal, kErf,
  kGelu, kGeluTanh, kClip, kHardSigmoid, kHardSwish, kSoftplus,
};

Value* Input(Graph& g, const std::string& name, std::vector<int64_t> dims, DType dt = DType::kF32) {
  Value* v = g.AddValue(name, TensorType{dt, Shape::FromInts(dims)});
  g.AddInput(v);
  return v;
}

Value* Op(Graph& g, const std::string& op, std::vector<Value*> ins, const std::string& name = "",
          const std::string& domain = "") {
  return g.AddNode(op, ins, 1, name, domain)->output(0);
}

Value* ConstF(Graph& g, const std::string& name, std::vector<int64_t> dims, std::vector<float> v) {
  return g.AddConstant(name, Tensor::FromVector<float>(DType::kF32, dims, v));
}

std::unique_ptr<Graph> NewGraph() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  return g;
}

std::unique_ptr<Pass> MakePass() { return CreateFuseElementwisePass(); }

const Node* OnlyFused(const Graph& g) {
  const Node* found = nullptr;
  for (const Node* n : g.nodes())
    if (n->domain() == "tessera" && n->op_type() == "FusedElementwise") {
      EXPECT_EQ(found, nullptr) << "more than one FusedElementwise";
      found = n;
    }
  return found;
}

// ---- SiLU ---------------------------------------------------------------------------------

std::unique_ptr<Graph> SiluGraph() {
  auto g = NewGraph();
  Value* x = Input(*g, "x", {2, 300});
  Value* s = Op(*g, "Sigmoid", {x});
  Value* y = Op(*g, "Mul", {x, s}, "silu_mul");
  g->AddOutput(y);
  return g;
}

TEST(FuseElementwise, SiluBecomesOneNode) {
  auto g = SiluGraph();
  Value* out = g->outputs()[0];
  PassContext ctx;
  RunPassOn(*g, MakePass(), &ctx);
  EXPECT_EQ(ctx.changes, 1);
  ASSERT_EQ(g->num_nodes(), 1u);
  const Node* f = OnlyFused(*g);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->num_inputs(), 1u);
  EXPECT_EQ(f->input(0)->name(), "x");
  EXPECT_EQ(f->output(0), out);  // the graph output Value is kept
  EXPECT_EQ(g->outputs()[0], out);
  EXPECT_EQ(f->GetInts("program"), (std::vector<int64_t>{kSigmoid, 1, 0, -1, -1, kMul, 2, 0, 1, -1}));
  EXPECT_FALSE(f->has_attr("constants"));
  EXPECT_EQ(out->type().ToString(), "f32[2,300]");
  ExpectSameOutputsAtO0And(2, SiluGraph);
}

// ---- (a + b) * c - d with broadcasting and a scalar constant ------------------------------

std::unique_ptr<Graph> AffineGraph() {
  auto g = NewGraph();
  Value* a = Input(*g, "a", {2, 3, 4});
  Value* b = Input(*g, "b", {4});
  Value* d = Input(*g, "d", {3, 1});
  Value* c = ConstF(*g, "c", {}, {2.5f});
  Value* s = Op(*g, "Add", {a, b});
  Value* m = Op(*g, "Mul", {s, c});
  Value* y = Op(*g, "Sub", {m, d});
  g->AddOutput(y);
  return g;
}

TEST(FuseElementwise, BroadcastChainWithScalarImmediate) {
  auto g = AffineGraph();
  RunPassOn(*g, MakePass());
  ASSERT_EQ(g->num_nodes(), 1u);
  const Node* f = OnlyFused(*g);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->num_inputs(), 3u);  // a, b, d; c is an immediate
  EXPECT_EQ(f->input(0)->name(), "a");
  EXPECT_EQ(f->input(1)->name(), "b");
  EXPECT_EQ(f->input(2)->name(), "d");
  EXPECT_EQ(f->GetFloats("constants"), (std::vector<float>{2.5f}));
  // registers: a=0 b=1 d=2 c=3, then 4, 5, 6
  EXPECT_EQ(f->GetInts("program"),
            (std::vector<int64_t>{kAdd, 4, 0, 1, -1, kMul, 5, 4, 3, -1, kSub, 6, 5, 2, -1}));
  EXPECT_EQ(g->outputs()[0]->type().ToString(), "f32[2,3,4]");
  ExpectSameOutputsAtO0And(2, AffineGraph);
}

// ---- a graph output in the middle splits the chain --------------------------------------

std::unique_ptr<Graph> MidOutputGraph() {
  auto g = NewGraph();
  Value* x = Input(*g, "x", {4, 33});
  Value* n = Op(*g, "Neg", {x});
  Value* e = Op(*g, "Exp", {n}, "exp_out");
  Value* m = Op(*g, "Mul", {e, ConstF(*g, "two", {1}, {2.f})});
  Value* r = Op(*g, "Tanh", {m});
  g->AddOutput(r);
  g->AddOutput(e);  // exported in the middle of the chain
  return g;
}

TEST(FuseElementwise, GraphOutputInTheMiddleSplitsTheChain) {
  auto g = MidOutputGraph();
  Value* out0 = g->outputs()[0];
  Value* out1 = g->outputs()[1];
  const std::string name0 = out0->name(), name1 = out1->name();
  PassContext ctx;
  RunPassOn(*g, MakePass(), &ctx);
  EXPECT_EQ(ctx.changes, 2);
  EXPECT_EQ(g->num_nodes(), 2u);
  EXPECT_EQ(CountOps(*g, "FusedElementwise", "tessera"), 2);
  ASSERT_EQ(g->outputs().size(), 2u);
  EXPECT_EQ(g->outputs()[0], out0);
  EXPECT_EQ(g->outputs()[1], out1);
  EXPECT_EQ(out0->name(), name0);
  EXPECT_EQ(out1->name(), name1);
  // exp(-x) is produced by the first fused node and read by the second.
  ASSERT_NE(out1->producer(), nullptr);
  EXPECT_EQ(out1->producer()->op_type(), "FusedElementwise");
  EXPECT_EQ(out1->producer()->GetInts("program"), (std::vector<int64_t>{kNeg, 1, 0, -1, -1, kExp, 2, 1, -1, -1}));
  ASSERT_NE(out0->producer(), nullptr);
  ASSERT_EQ(out0->producer()->num_inputs(), 1u);
  EXPECT_EQ(out0->producer()->input(0), out1);
  ExpectSameOutputsAtO0And(2, MidOutputGraph);
}

// ---- a value with two consumers is not swallowed -----------------------------------------

std::unique_ptr<Graph> SharedValueGraph() {
  auto g = NewGraph();
  Value* x = Input(*g, "x", {3, 50});
  Value* t = Op(*g, "Tanh", {x}, "shared_tanh");
  Value* e = Op(*g, "Exp", {t});
  Value* y = Op(*g, "Mul", {e, x});
  Value* r = Op(*g, "Relu", {t}, "lone_relu");
  g->AddOutput(y);
  g->AddOutput(r);
  return g;
}

TEST(FuseElementwise, ValueWithTwoConsumersStaysAvailable) {
  auto g = SharedValueGraph();
  RunPassOn(*g, MakePass());
  EXPECT_EQ(g->num_nodes(), 3u);
  EXPECT_EQ(CountOps(*g, "Tanh"), 1);
  EXPECT_EQ(CountOps(*g, "Relu"), 1);
  EXPECT_EQ(CountOps(*g, "Exp"), 0);
  EXPECT_EQ(CountOps(*g, "Mul"), 0);
  const Node* f = OnlyFused(*g);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->num_inputs(), 2u);
  EXPECT_EQ(f->input(0)->name(), g->FindNode("shared_tanh")->output(0)->name());
  EXPECT_EQ(f->input(1)->name(), "x");
  EXPECT_EQ(g->FindNode("lone_relu")->input(0), f->input(0));
  ExpectSameOutputsAtO0And(2, SharedValueGraph);
}

// Two consumers that are both inside the tree (t feeds Sigmoid and Relu, which
// meet in Add): t still stays a separate value (conservative), the rest fuses.
std::unique_ptr<Graph> DiamondGraph() {
  auto g = NewGraph();
  Value* x = Input(*g, "x", {64});
  Value* t = Op(*g, "Abs", {x}, "diamond_top");
  Value* y = Op(*g, "Add", {Op(*g, "Sigmoid", {t}), Op(*g, "Relu", {t})});
  g->AddOutput(y);
  return g;
}

TEST(FuseElementwise, DiamondKeepsTheSharedValue) {
  auto g = DiamondGraph();
  RunPassOn(*g, MakePass());
  EXPECT_EQ(g->num_nodes(), 2u);
  EXPECT_EQ(CountOps(*g, "Abs"), 1);
  const Node* f = OnlyFused(*g);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->num_inputs(), 1u);
  EXPECT_EQ(f->input(0)->producer()->name(), "diamond_top");
  EXPECT_EQ(f->GetInts("program").size(), 15u);
  ExpectSameOutputsAtO0And(2, DiamondGraph);
}

// x*x where x is an intermediate: both uses are by the same node, so it fuses.
std::unique_ptr<Graph> SquareGraph() {
  auto g = NewGraph();
  Value* x = Input(*g, "x", {5, 7});
  Value* r = Op(*g, "Relu", {x});
  g->AddOutput(Op(*g, "Mul", {r, r}));
  return g;
}

TEST(FuseElementwise, SameConsumerTwiceFuses) {
  auto g = SquareGraph();
  RunPassOn(*g, MakePass());
  ASSERT_EQ(g->num_nodes(), 1u);
  const Node* f = OnlyFused(*g);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->GetInts("program"), (std::vector<int64_t>{kRelu, 1, 0, -1, -1, kMul, 2, 1, 1, -1}));
  ExpectSameOutputsAtO0And(2, SquareGraph);
}

// ---- every supported op, with parameters, in one tree -----------------------------------

std::unique_ptr<Graph> AllOpsGraph() {
  auto g = NewGraph();
  const std::vector<int64_t> full = {3, 4, 20};
  Value* x = Input(*g, "x", full);
  Value* b = Input(*g, "b", {20});  // read twice: a leaf may be shared
  Value* col = ConstF(*g, "col", {4, 1}, {0.5f, 1.f, 1.5f, 2.f});  // a non-scalar constant: an input
  Node* lr = g->AddNode("LeakyRelu", {Op(*g, "Mul", {Op(*g, "Add", {x, b}), col})}, 1);
  lr->set_attr("alpha", Attribute::Float(0.2f));
  Node* hs = g->AddNode("HardSigmoid", {Op(*g, "Sub", {Input(*g, "y", {4, 20}), b})}, 1);
  hs->set_attr("alpha", Attribute::Float(0.3f));
  Value* clip = g->AddNode("Clip", {Input(*g, "z", full), ConstF(*g, "lo", {}, {-0.5f}), ConstF(*g, "hi", {}, {0.8f})}, 1)
                    ->output(0);
  Value* clip_lo = g->AddNode("Clip", {Input(*g, "w", {3, 1, 20}), ConstF(*g, "lo2", {}, {-0.25f})}, 1)->output(0);
  Value* p2 = Op(*g, "Pow", {clip, ConstF(*g, "two", {}, {2.f})});
  Value* p3 = Op(*g, "Pow", {Op(*g, "Abs", {clip_lo}),
                             g->AddConstant("three", Tensor::FromVector<int64_t>(DType::kI64, {}, {3}))});
  auto pos = [&](const std::string& name) {  // |q| + 1
    return Op(*g, "Add", {Op(*g, "Abs", {Input(*g, name, full)}), ConstF(*g, name + "_one", {}, {1.f})});
  };
  Value* acc = Op(*g, "Add", {lr->output(0), hs->output(0)});
  acc = Op(*g, "Max", {acc, p2});
  acc = Op(*g, "Min", {acc, p3});
  acc = Op(*g, "Add", {acc, Op(*g, "HardSwish", {Input(*g, "u", full)})});
  acc = Op(*g, "Add", {acc, Op(*g, "Softplus", {Op(*g, "Neg", {Input(*g, "u2", full)})})});
  acc = Op(*g, "Sub", {acc, Op(*g, "Log", {pos("q1")})});
  acc = Op(*g, "Add", {acc, Op(*g, "Sqrt", {pos("q2")})});
  acc = Op(*g, "Add", {acc, Op(*g, "Reciprocal", {pos("q3")})});
  acc = Op(*g, "Div", {acc, pos("q4")});
  acc = Op(*g, "Erf", {Op(*g, "Tanh", {acc})});
  Node* gelu = g->AddNode("Gelu", {Op(*g, "Relu", {acc})}, 1, "", "tessera");
  gelu->set_attr("approximate", Attribute::String("tanh"));
  Value* r = Op(*g, "Gelu", {Op(*g, "Exp", {Op(*g, "Sigmoid", {Input(*g, "r", {1, 20})})})}, "", "tessera");
  acc = Op(*g, "Add", {gelu->output(0), r});
  g->AddOutput(acc);
  return g;
}

TEST(FuseElementwise, EveryOpKindFusesIntoOneNode) {
  auto g = AllOpsGraph();
  const size_t before = g->num_nodes();
  RunPassOn(*g, MakePass());
  EXPECT_GT(before, 30u);
  ASSERT_EQ(g->num_nodes(), 1u) << "every op should have fused";
  const Node* f = OnlyFused(*g);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->num_inputs(), 13u);  // x b col y z w u u2 q1..q4 r
  EXPECT_EQ(f->GetInts("program").size(), before * 5);
  // Parameters and scalar constants are immediates, deduplicated.
  std::vector<float> c = f->GetFloats("constants");
  for (float want : {0.2f, 0.3f, 0.5f, -0.5f, 0.8f, -0.25f, 2.f, 3.f, 1.f}) {
    EXPECT_EQ(std::count(c.begin(), c.end(), want), 1) << want;
  }
  EXPECT_EQ(std::count(c.begin(), c.end(), std::numeric_limits<float>::max()), 1);  // Clip without max
  EXPECT_EQ(c.size(), 10u);
  ExpectSameOutputsAtO0And(2, AllOpsGraph, 1e-4f, 1e-4f);
}

TEST(FuseElementwise, ClipAttributesInOldOpsets) {
  auto build = [] {
    auto g = NewGraph();
    g->set_opset("", 6);
    Value* x = Input(*g, "x", {16});
    Node* c = g->AddNode("Clip", {Op(*g, "Neg", {x})}, 1);
    c->set_attr("min", Attribute::Float(-0.3f));
    c->set_attr("max", Attribute::Float(0.4f));
    g->AddOutput(c->output(0));
    return g;
  };
  auto g = build();
  RunPassOn(*g, MakePass());
  ASSERT_EQ(g->num_nodes(), 1u);
  const Node* f = OnlyFused(*g);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->GetFloats("constants"), (std::vector<float>{-0.3f, 0.4f}));
  EXPECT_EQ(f->GetInts("program"), (std::vector<int64_t>{kNeg, 3, 0, -1, -1, kClip, 4, 3, 1, 2}));
}

// ---- a one-element constant that decides the output rank stays an input --------------------

std::unique_ptr<Graph> RankRaisingConstantGraph() {
  auto g = NewGraph();
  Value* x = Input(*g, "x", {6});
  Value* y = Op(*g, "Relu", {Op(*g, "Add", {x, ConstF(*g, "c11", {1, 1}, {0.25f})})});
  g->AddOutput(y);
  return g;
}

TEST(FuseElementwise, RankRaisingScalarConstantBecomesAnInput) {
  auto g = RankRaisingConstantGraph();
  RunPassOn(*g, MakePass());
  ASSERT_EQ(g->num_nodes(), 1u);
  const Node* f = OnlyFused(*g);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->num_inputs(), 2u);
  EXPECT_EQ(f->input(1)->name(), "c11");
  EXPECT_FALSE(f->has_attr("constants"));
  EXPECT_EQ(f->output(0)->type().ToString(), "f32[1,6]");
  ExpectSameOutputsAtO0And(2, RankRaisingConstantGraph);
}

// ---- near misses stay untouched ---------------------------------------------------------

void ExpectUntouched(std::unique_ptr<Graph> g) {
  std::vector<std::string> before;
  for (const Node* n : g->nodes()) before.push_back(n->QualifiedOp() + ":" + n->name());
  PassContext ctx;
  RunPassOn(*g, MakePass(), &ctx);
  std::vector<std::string> after;
  for (const Node* n : g->nodes()) after.push_back(n->QualifiedOp() + ":" + n->name());
  EXPECT_EQ(before, after);
  EXPECT_EQ(ctx.changes, 0);
}

TEST(FuseElementwise, NearMissesAreLeftAlone) {
  {
    SCOPED_TRACE("separated by Softmax");
    auto g = NewGraph();
    Value* x = Input(*g, "x", {2, 4});
    g->AddOutput(Op(*g, "Exp", {Op(*g, "Softmax", {Op(*g, "Relu", {x})})}));
    ExpectUntouched(std::move(g));
  }
  {
    SCOPED_TRACE("integer dtype");
    auto g = NewGraph();
    Value* a = Input(*g, "a", {4}, DType::kI32);
    Value* b = Input(*g, "b", {4}, DType::kI32);
    g->AddOutput(Op(*g, "Neg", {Op(*g, "Add", {a, b})}));
    ExpectUntouched(std::move(g));
  }
  {
    SCOPED_TRACE("symbolic dim");
    auto g = NewGraph();
    Value* x = g->AddValue("x", TensorType{DType::kF32, Shape({Dim::Symbol("n"), Dim::Known(4)})});
    g->AddInput(x);
    g->AddOutput(Op(*g, "Exp", {Op(*g, "Relu", {x})}));
    ExpectUntouched(std::move(g));
  }
  {
    SCOPED_TRACE("runtime Pow exponent and runtime Clip bound");
    auto g = NewGraph();
    Value* x = Input(*g, "x", {4});
    Value* p = Input(*g, "p", {4});
    Value* lo = Input(*g, "lo", {});
    Value* y = Op(*g, "Pow", {Op(*g, "Relu", {x}), p});
    g->AddOutput(Op(*g, "Clip", {y, lo}));
    Value* z = Op(*g, "Clip", {Op(*g, "Abs", {x}), lo});
    g->AddOutput(z);
    ExpectUntouched(std::move(g));
  }
  {
    SCOPED_TRACE("single ops and three-input Max");
    auto g = NewGraph();
    Value* x = Input(*g, "x", {4});
    Value* m = Op(*g, "Max", {Op(*g, "Relu", {x}), x, x});
    g->AddOutput(m);
    ExpectUntouched(std::move(g));
  }
  {
    SCOPED_TRACE("unknown Gelu approximation");
    auto g = NewGraph();
    Value* x = Input(*g, "x", {4});
    Node* gl = g->AddNode("Gelu", {Op(*g, "Relu", {x})}, 1, "", "tessera");
    gl->set_attr("approximate", Attribute::String("fast"));
    g->AddOutput(gl->output(0));
    auto ok = InferGraphTypes(*g);
    EXPECT_FALSE(ok.ok());  // the schema itself rejects it; the pass must not crash on it either
    PassContext ctx;
    ASSERT_TRUE(MakePass()->Run(*g, ctx).ok());
    EXPECT_EQ(ctx.changes, 0);
  }
}

// ---- the fused node round-trips through ONNX export/import ---------------------------------

TEST(FuseElementwise, FusedNodeRoundTripsThroughOnnx) {
  auto g = AffineGraph();
  RunPassOn(*g, MakePass());
  auto bytes = ExportOnnx(*g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto back = ImportOnnxBytes(bytes->data(), bytes->size(), "");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_TRUE(InferGraphTypes(**back).ok());
  const Node* f = OnlyFused(**back);
  ASSERT_NE(f, nullptr);
  const Node* orig = OnlyFused(*g);
  EXPECT_EQ(f->GetInts("program"), orig->GetInts("program"));
  EXPECT_EQ(f->GetFloats("constants"), orig->GetFloats("constants"));
  EXPECT_EQ((*back)->outputs()[0]->type().ToString(), "f32[2,3,4]");
}

// ---- the schema rejects malformed programs ---------------------------------------------------

TEST(FusedElementwiseSchema, RejectsMalformedPrograms) {
  struct Case {
    std::vector<int64_t> program;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {{kAdd, 2, 0, 1}, "multiple of 5"},
      {{77, 2, 0, 1, -1}, "unknown opcode 77"},
      {{kAdd, 3, 0, 1, -1}, "dst must be register 2"},
      {{kNeg, 2, 2, -1, -1}, "not defined before it"},
      {{kLeakyRelu, 2, 0, 1, -1}, "must be a constant register"},
      {{kExp, 2, 0, 1, -1}, "unused operand 1 must be -1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expect);
    Graph g;
    Value* a = Input(g, "a", {4});
    Value* b = Input(g, "b", {4});
    Node* n = g.AddNode("FusedElementwise", {a, b}, 1, "bad_fused", "tessera");
    n->set_attr("program", Attribute::Ints(c.program));
    Status s = InferNodeTypes(*n);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("bad_fused"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.ToString();
  }
  Graph g;
  Value* a = Input(g, "a", {2, 3});
  Value* b = Input(g, "b", {2});
  Node* n = g.AddNode("FusedElementwise", {a, b}, 1, "bad_bcast", "tessera");
  n->set_attr("program", Attribute::Ints({kAdd, 2, 0, 1, -1}));
  EXPECT_FALSE(InferNodeTypes(*n).ok());
  Node* m = g.AddNode("FusedElementwise", {a}, 1, "no_program", "tessera");
  Status s = InferNodeTypes(*m);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'program'"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace tessera
