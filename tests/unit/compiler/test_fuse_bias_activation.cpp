// fuse_bias_activation: Conv/MatMul/Gemm + bias + residual + activation become
// tessera.FusedConv / FusedMatMul / FusedGemm with the right attributes and the
// same numbers; near misses stay untouched.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "graph/onnx/onnx_export.h"
#include "graph/onnx/onnx_import.h"
#include "tests/unit/compiler/pass_test_util.h"

namespace tessera {
namespace {

using testing::CountOps;
using testing::ExpectSameOutputsAtO0And;
using testing::RunPassOn;

Tensor RandomTensor(std::vector<int64_t> dims, uint32_t seed, float lo = -0.5f, float hi = 0.5f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(rng);
  return Tensor::FromVector<float>(DType::kF32, std::move(dims), v);
}

Value* Input(Graph& g, const std::string& name, std::vector<int64_t> dims, DType dt = DType::kF32) {
  Value* v = g.AddValue(name, TensorType{dt, Shape::FromInts(dims)});
  g.AddInput(v);
  return v;
}

// Appends an activation of kind `act` to v; returns its output.
using ActFn = std::function<Value*(Graph&, Value*)>;

Value* Unary(Graph& g, Value* v, const char* op, const char* domain = "") {
  return g.AddNode(op, {v}, 1, "", domain)->output(0);
}

ActFn Relu() { return [](Graph& g, Value* v) { return Unary(g, v, "Relu"); }; }

// x[1,8,6,6] -> Conv(W[8,8,3,3], B, pads 1) [-> Add(z)] [-> act] -> y
std::unique_ptr<Graph> ConvGraph(bool residual, ActFn act, bool z_first = false) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 20);
  Value* x = Input(*g, "x", {1, 8, 6, 6});
  Value* z = residual ? Input(*g, "z", {1, 8, 6, 6}) : nullptr;
  Value* w = g->AddConstant("W", RandomTensor({8, 8, 3, 3}, 1, -0.2f, 0.2f));
  Value* b = g->AddConstant("B", RandomTensor({8}, 2));
  Node* conv = g->AddNode("Conv", {x, w, b}, 1, "conv");
  conv->set_attr("pads", Attribute::Ints({1, 1, 1, 1}));
  Value* y = conv->output(0);
  if (residual) y = g->AddNode("Add", z_first ? std::vector<Value*>{z, y} : std::vector<Value*>{y, z}, 1, "add")->output(0);
  if (act) y = act(*g, y);
  g->AddOutput(y);
  return g;
}

const Node* OnlyFused(const Graph& g, const std::string& op) {
  const Node* r = nullptr;
  for (const Node* n : g.nodes())
    if (n->domain() == "tessera" && n->op_type() == op) {
      EXPECT_EQ(r, nullptr) << "more than one " << op;
      r = n;
    }
  return r;
}

TEST(FuseBiasActivation, ConvRelu) {
  auto g = ConvGraph(false, Relu());
  const Value* out = g->outputs()[0];
  PassContext ctx;
  RunPassOn(*g, CreateFuseBiasActivationPass(), &ctx);
  EXPECT_EQ(ctx.changes, 1);
  EXPECT_EQ(g->num_nodes(), 1u);
  const Node* f = OnlyFused(*g, "FusedConv");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->name(), "conv");
  EXPECT_EQ(f->GetString("activation", "?"), "Relu");
  EXPECT_EQ(f->GetInt("has_residual", -1), 0);
  EXPECT_EQ(f->GetInts("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(f->num_inputs(), 3u);
  EXPECT_EQ(g->outputs()[0], out);
  EXPECT_EQ(f->output(0), out);
  ExpectSameOutputsAtO0And(2, [] { return ConvGraph(false, Relu()); });
}

TEST(FuseBiasActivation, ConvResidualRelu) {
  for (bool z_first : {false, true}) {
    SCOPED_TRACE(z_first ? "Add(z, conv)" : "Add(conv, z)");
    auto g = ConvGraph(true, Relu(), z_first);
    RunPassOn(*g, CreateFuseBiasActivationPass());
    EXPECT_EQ(g->num_nodes(), 1u);
    const Node* f = OnlyFused(*g, "FusedConv");
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->GetString("activation", "?"), "Relu");
    EXPECT_EQ(f->GetInt("has_residual", -1), 1);
    ASSERT_EQ(f->num_inputs(), 4u);
    EXPECT_EQ(f->input(3)->name(), "z");
    ExpectSameOutputsAtO0And(2, [z_first] { return ConvGraph(true, Relu(), z_first); });
  }
}

TEST(FuseBiasActivation, ConvResidualWithoutActivationAndWithoutBias) {
  auto build = [] {
    auto g = std::make_unique<Graph>();
    g->set_opset("", 17);
    Value* x = Input(*g, "x", {1, 4, 5, 5});
    Value* z = Input(*g, "z", {1, 6, 5, 5});
    Node* conv = g->AddNode("Conv", {x, g->AddConstant("W", RandomTensor({6, 4, 1, 1}, 3))}, 1, "conv");
    g->AddOutput(g->AddNode("Add", {conv->output(0), z}, 1, "add")->output(0));
    return g;
  };
  auto g = build();
  RunPassOn(*g, CreateFuseBiasActivationPass());
  const Node* f = OnlyFused(*g, "FusedConv");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(g->num_nodes(), 1u);
  EXPECT_EQ(f->GetString("activation", "?"), "");
  EXPECT_EQ(f->GetInt("has_residual", -1), 1);
  ASSERT_EQ(f->num_inputs(), 4u);
  EXPECT_EQ(f->input(2), nullptr);  // no bias: an omitted optional input
  ExpectSameOutputsAtO0And(2, build);
}

struct ActCase {
  const char* what;
  ActFn fn;
  std::string activation;
  float alpha = 0, beta = 0;
  bool has_alpha = false, has_beta = false;
};

std::vector<ActCase> ActivationCases() {
  std::vector<ActCase> r;
  r.push_back({"Sigmoid", [](Graph& g, Value* v) { return Unary(g, v, "Sigmoid"); }, "Sigmoid"});
  r.push_back({"Tanh", [](Graph& g, Value* v) { return Unary(g, v, "Tanh"); }, "Tanh"});
  r.push_back({"HardSwish", [](Graph& g, Value* v) { return Unary(g, v, "HardSwish"); }, "HardSwish"});
  r.push_back({"LeakyRelu",
               [](Graph& g, Value* v) {
                 Node* n = g.AddNode("LeakyRelu", {v}, 1);
                 n->set_attr("alpha", Attribute::Float(0.2f));
                 return n->output(0);
               },
               "LeakyRelu", 0.2f, 0, true, false});
  r.push_back({"Clip(0,6) inputs",
               [](Graph& g, Value* v) {
                 Value* lo = g.AddConstant(g.UniqueName("lo"), Tensor::ScalarF32(0.f));
                 Value* hi = g.AddConstant(g.UniqueName("hi"), Tensor::ScalarF32(0.3f));
                 return g.AddNode("Clip", {v, lo, hi}, 1)->output(0);
               },
               "Clip", 0.f, 0.3f, true, true});
  r.push_back({"Clip min only",
               [](Graph& g, Value* v) {
                 Value* lo = g.AddConstant(g.UniqueName("lo"), Tensor::ScalarF32(-0.1f));
                 return g.AddNode("Clip", {v, lo}, 1)->output(0);
               },
               "Clip", -0.1f, 0, true, false});
  r.push_back({"ONNX Gelu",
               [](Graph& g, Value* v) { return Unary(g, v, "Gelu"); }, "Gelu"});
  r.push_back({"ONNX Gelu tanh",
               [](Graph& g, Value* v) {
                 Node* n = g.AddNode("Gelu", {v}, 1);
                 n->set_attr("approximate", Attribute::String("tanh"));
                 return n->output(0);
               },
               "GeluTanh"});
  r.push_back({"tessera Gelu", [](Graph& g, Value* v) { return Unary(g, v, "Gelu", "tessera"); }, "Gelu"});
  r.push_back({"SiLU as Mul(x, Sigmoid(x))",
               [](Graph& g, Value* v) {
                 Value* s = Unary(g, v, "Sigmoid");
                 return g.AddNode("Mul", {v, s}, 1)->output(0);
               },
               "Silu"});
  r.push_back({"SiLU as Mul(Sigmoid(x), x)",
               [](Graph& g, Value* v) {
                 Value* s = Unary(g, v, "Sigmoid");
                 return g.AddNode("Mul", {s, v}, 1)->output(0);
               },
               "Silu"});
  return r;
}

TEST(FuseBiasActivation, ConvWithEveryActivation) {
  for (const ActCase& c : ActivationCases()) {
    SCOPED_TRACE(c.what);
    for (bool residual : {false, true}) {
      auto g = ConvGraph(residual, c.fn);
      RunPassOn(*g, CreateFuseBiasActivationPass());
      EXPECT_EQ(g->num_nodes(), 1u);
      const Node* f = OnlyFused(*g, "FusedConv");
      ASSERT_NE(f, nullptr);
      EXPECT_EQ(f->GetString("activation", "?"), c.activation);
      EXPECT_EQ(f->has_attr("activation_alpha"), c.has_alpha);
      EXPECT_EQ(f->has_attr("activation_beta"), c.has_beta);
      if (c.has_alpha) {
        EXPECT_FLOAT_EQ(f->GetFloat("activation_alpha", -99), c.alpha);
      }
      if (c.has_beta) {
        EXPECT_FLOAT_EQ(f->GetFloat("activation_beta", -99), c.beta);
      }
      EXPECT_EQ(f->GetInt("has_residual", -1), residual ? 1 : 0);
      ExpectSameOutputsAtO0And(2, [&] { return ConvGraph(residual, c.fn); }, 1e-4f, 2e-5f);
    }
  }
}

// x[2,5,16] -> MatMul(W[16,12]) [-> Add(bias)] [-> Add(z)] [-> act] -> y
std::unique_ptr<Graph> MatMulGraph(bool bias, bool bias_first, std::vector<int64_t> bias_dims, bool residual,
                                   ActFn act) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 20);
  Value* x = Input(*g, "x", {2, 5, 16});
  Value* z = residual ? Input(*g, "z", {2, 5, 12}) : nullptr;
  Node* mm = g->AddNode("MatMul", {x, g->AddConstant("W", RandomTensor({16, 12}, 7))}, 1, "mm");
  Value* y = mm->output(0);
  if (bias) {
    Value* b = g->AddConstant("bias", RandomTensor(bias_dims, 8));
    y = g->AddNode("Add", bias_first ? std::vector<Value*>{b, y} : std::vector<Value*>{y, b}, 1, "add_bias")->output(0);
  }
  if (residual) y = g->AddNode("Add", {z, y}, 1, "add_res")->output(0);
  if (act) y = act(*g, y);
  g->AddOutput(y);
  return g;
}

TEST(FuseBiasActivation, MatMulBiasGelu) {
  auto build = [] { return MatMulGraph(true, false, {12}, false, [](Graph& g, Value* v) { return Unary(g, v, "Gelu", "tessera"); }); };
  auto g = build();
  RunPassOn(*g, CreateFuseBiasActivationPass());
  EXPECT_EQ(g->num_nodes(), 1u);
  const Node* f = OnlyFused(*g, "FusedMatMul");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->GetString("activation", "?"), "Gelu");
  ASSERT_EQ(f->num_inputs(), 3u);
  EXPECT_EQ(f->input(2)->name(), "bias");
  ExpectSameOutputsAtO0And(2, build);
}

TEST(FuseBiasActivation, MatMulBiasResidualAnd2DBias) {
  // bias given as [1, 12] and first operand of the Add; then a residual Add.
  auto build = [] { return MatMulGraph(true, true, {1, 12}, true, nullptr); };
  auto g = build();
  RunPassOn(*g, CreateFuseBiasActivationPass());
  EXPECT_EQ(g->num_nodes(), 1u);
  const Node* f = OnlyFused(*g, "FusedMatMul");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->GetString("activation", "?"), "");
  EXPECT_EQ(f->GetInt("has_residual", -1), 1);
  ASSERT_EQ(f->num_inputs(), 4u);
  ASSERT_TRUE(f->input(2)->is_constant());
  EXPECT_EQ(f->input(2)->constant()->dims(), (std::vector<int64_t>{12}));
  EXPECT_EQ(f->input(3)->name(), "z");
  ExpectSameOutputsAtO0And(2, build);
}

TEST(FuseBiasActivation, MatMulActivationOnly) {
  auto build = [] { return MatMulGraph(false, false, {}, false, Relu()); };
  auto g = build();
  RunPassOn(*g, CreateFuseBiasActivationPass());
  const Node* f = OnlyFused(*g, "FusedMatMul");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(g->num_nodes(), 1u);
  EXPECT_EQ(f->num_inputs(), 2u);
  ExpectSameOutputsAtO0And(2, build);
}

std::unique_ptr<Graph> GemmGraph(bool relu) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = Input(*g, "x", {3, 10});
  Node* gemm = g->AddNode("Gemm", {x, g->AddConstant("W", RandomTensor({4, 10}, 9)), g->AddConstant("C", RandomTensor({4}, 10))},
                          1, "gemm");
  gemm->set_attr("transB", Attribute::Int(1));
  gemm->set_attr("alpha", Attribute::Float(0.5f));
  Value* y = gemm->output(0);
  if (relu) y = Unary(*g, y, "Relu");
  g->AddOutput(y);
  return g;
}

TEST(FuseBiasActivation, GemmRelu) {
  auto g = GemmGraph(true);
  RunPassOn(*g, CreateFuseBiasActivationPass());
  EXPECT_EQ(g->num_nodes(), 1u);
  const Node* f = OnlyFused(*g, "FusedGemm");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->GetString("activation", "?"), "Relu");
  EXPECT_EQ(f->GetInt("transB", 0), 1);
  EXPECT_FLOAT_EQ(f->GetFloat("alpha", 0), 0.5f);
  EXPECT_EQ(f->num_inputs(), 3u);
  ExpectSameOutputsAtO0And(2, [] { return GemmGraph(true); });
}

// ---- near misses ----------------------------------------------------------------------

void ExpectUntouched(std::unique_ptr<Graph> g, const char* what) {
  SCOPED_TRACE(what);
  size_t before = g->num_nodes();
  PassContext ctx;
  RunPassOn(*g, CreateFuseBiasActivationPass(), &ctx);
  EXPECT_EQ(ctx.changes, 0);
  EXPECT_EQ(g->num_nodes(), before);
  for (const Node* n : g->nodes()) EXPECT_NE(n->domain(), "tessera") << n->Describe();
}

TEST(FuseBiasActivation, NearMissesAreLeftAlone) {
  {  // Conv output also a graph output
    auto g = ConvGraph(false, Relu());
    g->AddOutput(g->FindNode("conv")->output(0));
    ExpectUntouched(std::move(g), "conv output is a graph output");
  }
  {  // Conv output used twice
    auto g = ConvGraph(false, Relu());
    g->AddOutput(Unary(*g, g->FindNode("conv")->output(0), "Tanh"));
    ExpectUntouched(std::move(g), "conv output used twice");
  }
  {  // residual that broadcasts: z [1,8,1,1]
    auto g = std::make_unique<Graph>();
    g->set_opset("", 17);
    Value* x = Input(*g, "x", {1, 8, 6, 6});
    Value* z = Input(*g, "z", {1, 8, 1, 1});
    Node* conv = g->AddNode("Conv", {x, g->AddConstant("W", RandomTensor({8, 8, 1, 1}, 1))}, 1, "conv");
    g->AddOutput(g->AddNode("Add", {conv->output(0), z}, 1)->output(0));
    ExpectUntouched(std::move(g), "broadcasting residual");
  }
  {  // Conv followed by an op that is no activation
    auto g = ConvGraph(false, [](Graph& g, Value* v) { return Unary(g, v, "Softplus"); });
    ExpectUntouched(std::move(g), "Softplus");
  }
  {  // Clip with non-constant bounds
    auto g = ConvGraph(false, nullptr);
    Value* y = g->outputs()[0];
    Value* lo = Input(*g, "lo", {});
    Node* clip = g->AddNode("Clip", {y, lo}, 1, "clip");
    g->SetOutputs({clip->output(0)});
    ExpectUntouched(std::move(g), "Clip with a runtime min");
  }
  {  // Sigmoid output used elsewhere too: not a SiLU
    auto g = ConvGraph(false, nullptr);
    Value* y = g->outputs()[0];
    Value* s = Unary(*g, y, "Sigmoid");
    Value* m = g->AddNode("Mul", {y, s}, 1)->output(0);
    g->SetOutputs({m, s});
    ExpectUntouched(std::move(g), "Sigmoid used twice");
  }
  {  // MatMul + Add of a runtime (non-constant) 1-D bias
    auto g = MatMulGraph(false, false, {}, false, nullptr);
    Value* y = g->outputs()[0];
    Value* b = Input(*g, "b", {12});
    g->SetOutputs({g->AddNode("Add", {y, b}, 1)->output(0)});
    ExpectUntouched(std::move(g), "non-constant bias");
  }
  {  // MatMul with a bias over the wrong axis: [5, 1] broadcasts along rows
    auto g = MatMulGraph(true, false, {5, 1}, false, nullptr);
    ExpectUntouched(std::move(g), "bias over the wrong axis");
  }
  {  // Gemm without an activation
    ExpectUntouched(GemmGraph(false), "Gemm alone");
  }
  {  // f64 Conv + Relu
    auto g = std::make_unique<Graph>();
    g->set_opset("", 17);
    Value* x = Input(*g, "x", {1, 1, 3, 3}, DType::kF64);
    Value* w = g->AddConstant("W", Tensor::FromVector<double>(DType::kF64, {1, 1, 1, 1}, {2.0}));
    Node* conv = g->AddNode("Conv", {x, w}, 1, "conv");
    g->AddOutput(Unary(*g, conv->output(0), "Relu"));
    ExpectUntouched(std::move(g), "f64");
  }
}

TEST(FuseBiasActivation, NearMissNumbersStillMatch) {
  // The conv output used twice: no fusion, numbers unchanged through O2.
  ExpectSameOutputsAtO0And(2, [] {
    auto g = ConvGraph(false, Relu());
    g->AddOutput(Unary(*g, g->FindNode("conv")->output(0), "Tanh"));
    return g;
  });
}

TEST(FuseBiasActivation, ResNetBlockFusesBothConvs) {
  // x -> Conv1 -> Relu -> Conv2 -> Add(x) -> Relu: two FusedConvs, the second with x as residual.
  auto build = [] {
    auto g = std::make_unique<Graph>();
    g->set_opset("", 17);
    Value* x = Input(*g, "x", {1, 8, 6, 6});
    Node* c1 = g->AddNode("Conv", {x, g->AddConstant("W1", RandomTensor({8, 8, 3, 3}, 11, -0.2f, 0.2f)),
                                   g->AddConstant("B1", RandomTensor({8}, 12))},
                          1, "c1");
    c1->set_attr("pads", Attribute::Ints({1, 1, 1, 1}));
    Value* r1 = Unary(*g, c1->output(0), "Relu");
    Node* c2 = g->AddNode("Conv", {r1, g->AddConstant("W2", RandomTensor({8, 8, 3, 3}, 13, -0.2f, 0.2f))}, 1, "c2");
    c2->set_attr("pads", Attribute::Ints({1, 1, 1, 1}));
    Value* s = g->AddNode("Add", {x, c2->output(0)}, 1)->output(0);
    g->AddOutput(Unary(*g, s, "Relu"));
    return g;
  };
  auto g = build();
  PassContext ctx;
  RunPassOn(*g, CreateFuseBiasActivationPass(), &ctx);
  EXPECT_EQ(ctx.changes, 2);
  EXPECT_EQ(g->num_nodes(), 2u);
  EXPECT_EQ(CountOps(*g, "FusedConv", "tessera"), 2);
  const Node* f2 = g->FindNode("c2");
  ASSERT_NE(f2, nullptr);
  EXPECT_EQ(f2->GetInt("has_residual", 0), 1);
  EXPECT_EQ(f2->input(3)->name(), "x");
  ExpectSameOutputsAtO0And(2, build);
}

TEST(FuseBiasActivation, FusedNodesRoundTripThroughOnnx) {
  auto g = ConvGraph(true, [](Graph& g, Value* v) {
    Value* lo = g.AddConstant(g.UniqueName("lo"), Tensor::ScalarF32(0.f));
    Value* hi = g.AddConstant(g.UniqueName("hi"), Tensor::ScalarF32(6.f));
    return g.AddNode("Clip", {v, lo, hi}, 1)->output(0);
  });
  RunPassOn(*g, CreateFuseBiasActivationPass());
  auto bytes = ExportOnnx(*g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto back = ImportOnnxBytes(bytes->data(), bytes->size(), "");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const Node* f = OnlyFused(**back, "FusedConv");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->GetString("activation", "?"), "Clip");
  EXPECT_FLOAT_EQ(f->GetFloat("activation_alpha", -1), 0.f);
  EXPECT_FLOAT_EQ(f->GetFloat("activation_beta", -1), 6.f);
  EXPECT_EQ(f->GetInt("has_residual", 0), 1);
  EXPECT_EQ(f->num_inputs(), 4u);
  EXPECT_TRUE(InferGraphTypes(**back).ok());
}

TEST(FuseBiasActivation, SchemaRejectsBadFusedNodes) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = Input(*g, "x", {1, 2, 4, 4});
  Value* w = g->AddConstant("W", RandomTensor({3, 2, 1, 1}, 1));
  Node* f = g->AddNode("FusedConv", {x, w}, 1, "f", "tessera");
  f->set_attr("activation", Attribute::String("Softplus"));
  g->AddOutput(f->output(0));
  Status s = InferGraphTypes(*g);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Softplus"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("'f'"), std::string::npos) << s.ToString();
  f->set_attr("activation", Attribute::String("Relu"));
  f->set_attr("has_residual", Attribute::Int(1));
  s = InferGraphTypes(*g);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("residual"), std::string::npos) << s.ToString();
  f->set_attr("has_residual", Attribute::Int(0));
  ASSERT_TRUE(InferGraphTypes(*g).ok());
  EXPECT_EQ(f->output(0)->shape(), Shape::FromInts({1, 3, 4, 4}));
}

}  // namespace
}  // namespace tessera
