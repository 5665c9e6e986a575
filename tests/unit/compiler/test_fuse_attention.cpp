// fuse_attention: graph shape after the pass, numbers at O0 vs O2, near misses
// left alone, and the exported transformer models.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "graph/onnx/onnx_export.h"
#include "graph/onnx/onnx_import.h"
#include "graph/onnx/tensor_proto.h"
#include "tests/unit/compiler/pass_test_util.h"

namespace tessera {
namespace {

using testing::CountOps;
using testing::ExpectSameOutputsAtO0And;
using testing::RunPassOn;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

Value* Input(Graph& g, const std::string& name, std::vector<int64_t> dims, DType dt = DType::kF32) {
  Value* v = g.AddValue(name, TensorType{dt, Shape::FromInts(dims)});
  g.AddInput(v);
  return v;
}

Value* Op(Graph& g, const std::string& op, std::vector<Value*> ins, const std::string& name) {
  return g.AddNode(op, ins, 1, name)->output(0);
}

Value* Scalar(Graph& g, const std::string& name, float v) { return g.AddConstant(name, Tensor::ScalarF32(v)); }

Value* TransposeOf(Graph& g, Value* x, std::vector<int64_t> perm, const std::string& name) {
  Node* n = g.AddNode("Transpose", {x}, 1, name);
  n->set_attr("perm", Attribute::Ints(std::move(perm)));
  return n->output(0);
}

Value* SoftmaxOf(Graph& g, Value* x, int64_t axis = -1) {
  Node* n = g.AddNode("Softmax", {x}, 1, "softmax");
  n->set_attr("axis", Attribute::Int(axis));
  return n->output(0);
}

// [sq, sk] causal mask (0 on/below the diagonal, `fill` above) with `lead` leading 1-dims.
Value* CausalConst(Graph& g, const std::string& name, int64_t sq, int64_t sk, float fill, int lead = 2) {
  std::vector<float> m(static_cast<size_t>(sq * sk));
  for (int64_t i = 0; i < sq; ++i)
    for (int64_t j = 0; j < sk; ++j) m[static_cast<size_t>(i * sk + j)] = j > i ? fill : 0.f;
  std::vector<int64_t> dims(static_cast<size_t>(lead), 1);
  dims.push_back(sq);
  dims.push_back(sk);
  return g.AddConstant(name, Tensor::FromVector<float>(DType::kF32, dims, m));
}

const Node* FindFused(const Graph& g) {
  for (const Node* n : g.nodes())
    if (n->op_type() == "FusedAttention" && n->domain() == "tessera") return n;
  return nullptr;
}

// Q, K, V [2,3,5,8]; K^T by Transpose [0,1,3,2]; scores * 0.35 + mask[2,1,1,5].
std::unique_ptr<Graph> Bhsd4D() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* q = Input(*g, "q", {2, 3, 5, 8});
  Value* k = Input(*g, "k", {2, 3, 5, 8});
  Value* v = Input(*g, "v", {2, 3, 5, 8});
  Value* mask = Input(*g, "mask", {2, 1, 1, 5});
  Value* kt = TransposeOf(*g, k, {0, 1, 3, 2}, "kt");
  Value* s = Op(*g, "MatMul", {q, kt}, "qk");
  s = Op(*g, "Mul", {s, Scalar(*g, "c", 0.35f)}, "scale");
  s = Op(*g, "Add", {mask, s}, "add_mask");  // mask on the left
  Value* y = Op(*g, "MatMul", {SoftmaxOf(*g, s), v}, "pv");
  g->AddOutput(y);
  return g;
}

TEST(FuseAttention, FusesBhsdWithScaleAndMask) {
  auto g = Bhsd4D();
  Value* out = g->outputs()[0];
  PassContext ctx;
  RunPassOn(*g, CreateFuseAttentionPass(), &ctx);
  EXPECT_EQ(ctx.changes, 1);
  ASSERT_EQ(g->num_nodes(), 1u);  // the K transpose became dead and was removed
  const Node* fa = FindFused(*g);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->input(0)->name(), "q");
  EXPECT_EQ(fa->input(1)->name(), "k");  // [0,1,3,2] swapped back is the identity
  EXPECT_EQ(fa->input(2)->name(), "v");
  ASSERT_EQ(fa->num_inputs(), 4u);
  EXPECT_EQ(fa->input(3)->name(), "mask");
  EXPECT_FLOAT_EQ(fa->GetFloat("scale", 0), 0.35f);
  EXPECT_EQ(fa->GetInt("causal", -1), 0);
  EXPECT_EQ(g->outputs()[0], out);  // the graph output Value is kept
  EXPECT_EQ(fa->output(0), out);
  EXPECT_EQ(out->shape().ToString(), "[2,3,5,8]");
  ExpectSameOutputsAtO0And(2, Bhsd4D);
}

// x [2,5,24] -> Reshape [2,5,3,8]; Q,V Transpose [0,2,1,3]; K Transpose [0,2,3,1];
// scores / sqrt(8) + causal(-inf); V head dim differs (reshape of a 12-wide projection).
std::unique_ptr<Graph> BshdReshaped(float causal_fill, bool scale_on_q) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = Input(*g, "x", {2, 5, 24});
  Value* xv = Input(*g, "xv", {2, 5, 12});
  Value* shape = g->AddConstant("shape", Tensor::FromVector<int64_t>(DType::kI64, {4}, {2, 5, 3, 8}));
  Value* vshape = g->AddConstant("vshape", Tensor::FromVector<int64_t>(DType::kI64, {4}, {2, 5, 3, 4}));
  Value* qx = Op(*g, "Relu", {x}, "qproj");
  Value* kx = Op(*g, "Sigmoid", {x}, "kproj");
  Value* q = TransposeOf(*g, Op(*g, "Reshape", {qx, shape}, "q_r"), {0, 2, 1, 3}, "q_t");
  Value* kt = TransposeOf(*g, Op(*g, "Reshape", {kx, shape}, "k_r"), {0, 2, 3, 1}, "k_t");
  Value* v = TransposeOf(*g, Op(*g, "Reshape", {xv, vshape}, "v_r"), {0, 2, 1, 3}, "v_t");
  if (scale_on_q) q = Op(*g, "Div", {q, Scalar(*g, "sqrt_d", std::sqrt(8.f))}, "q_scale");
  Value* s = Op(*g, "MatMul", {q, kt}, "qk");
  if (!scale_on_q) s = Op(*g, "Div", {s, Scalar(*g, "sqrt_d", std::sqrt(8.f))}, "scale");
  s = Op(*g, "Add", {s, CausalConst(*g, "causal", 5, 5, causal_fill)}, "add_causal");
  Value* y = Op(*g, "MatMul", {SoftmaxOf(*g, s), v}, "pv");
  Value* y2 = TransposeOf(*g, y, {0, 2, 1, 3}, "y_t");
  g->AddOutput(y2);
  return g;
}

TEST(FuseAttention, FusesReshapedKTransposeAndDetectsCausal) {
  for (bool scale_on_q : {false, true}) {
    SCOPED_TRACE(scale_on_q ? "scale on Q" : "scale on scores");
    auto g = BshdReshaped(kNegInf, scale_on_q);
    RunPassOn(*g, CreateFuseAttentionPass());
    const Node* fa = FindFused(*g);
    ASSERT_NE(fa, nullptr);
    EXPECT_EQ(fa->num_inputs(), 3u);  // the causal constant became causal = 1
    EXPECT_EQ(fa->GetInt("causal", 0), 1);
    EXPECT_NEAR(fa->GetFloat("scale", 0), 1.0 / std::sqrt(8.0), 1e-7);
    EXPECT_EQ(CountOps(*g, "MatMul"), 0);
    EXPECT_EQ(CountOps(*g, "Softmax"), 0);
    EXPECT_EQ(CountOps(*g, "Div"), 0);
    // K is Transpose(reshape, [0,2,1,3]); the old [0,2,3,1] transpose is gone.
    const Node* kt = fa->input(1)->producer();
    ASSERT_NE(kt, nullptr);
    EXPECT_EQ(kt->op_type(), "Transpose");
    EXPECT_EQ(kt->GetInts("perm"), (std::vector<int64_t>{0, 2, 1, 3}));
    EXPECT_EQ(kt->input(0)->producer()->name(), "k_r");
    EXPECT_EQ(fa->output(0)->shape().ToString(), "[2,3,5,4]");
    ExpectSameOutputsAtO0And(2, [&] { return BshdReshaped(kNegInf, scale_on_q); });
  }
}

TEST(FuseAttention, FiniteCausalMaskStaysAdditive) {
  auto g = BshdReshaped(-1e4f, false);
  RunPassOn(*g, CreateFuseAttentionPass());
  const Node* fa = FindFused(*g);
  ASSERT_NE(fa, nullptr);
  ASSERT_EQ(fa->num_inputs(), 4u);
  EXPECT_EQ(fa->input(3)->name(), "causal");
  EXPECT_EQ(fa->GetInt("causal", -1), 0);
  ExpectSameOutputsAtO0And(2, [] { return BshdReshaped(-1e4f, false); });
}

// nn.MultiheadAttention's export: [b*h, s, d] batched matmuls, Q scaled by Div,
// K^T = Transpose([s, b*h, d], perm [1,2,0]), additive mask [b*h, 1, sk], Mul by 1.
std::unique_ptr<Graph> Mha3D() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* q = Input(*g, "q", {6, 5, 8});
  Value* k_sbd = Input(*g, "k_sbd", {7, 6, 8});
  Value* v = Input(*g, "v", {6, 7, 4});
  Value* mask = Input(*g, "mask", {6, 1, 7});
  Value* qs = Op(*g, "Div", {q, Scalar(*g, "four", 4.f)}, "q_div");
  Value* kt = TransposeOf(*g, k_sbd, {1, 2, 0}, "kt");
  Value* s = Op(*g, "MatMul", {qs, kt}, "qk");
  s = Op(*g, "Mul", {Scalar(*g, "one", 1.f), s}, "mul_one");
  s = Op(*g, "Add", {s, mask}, "add_mask");
  Value* y = Op(*g, "MatMul", {SoftmaxOf(*g, s, 2), v}, "pv");
  g->AddOutput(y);
  return g;
}

TEST(FuseAttention, FusesRank3BatchedMatMuls) {
  auto g = Mha3D();
  Value* out = g->outputs()[0];
  RunPassOn(*g, CreateFuseAttentionPass());
  const Node* fa = FindFused(*g);
  ASSERT_NE(fa, nullptr);
  EXPECT_FLOAT_EQ(fa->GetFloat("scale", 0), 0.25f);
  EXPECT_EQ(CountOps(*g, "Unsqueeze"), 3);
  EXPECT_EQ(CountOps(*g, "Squeeze"), 1);
  EXPECT_EQ(CountOps(*g, "Transpose"), 1);  // K: [7,6,8] -> [6,7,8]
  EXPECT_EQ(CountOps(*g, "Div"), 0);
  EXPECT_EQ(CountOps(*g, "MatMul"), 0);
  EXPECT_EQ(fa->output(0)->shape().ToString(), "[1,6,5,4]");
  EXPECT_EQ(fa->input(3)->name(), "mask");
  ASSERT_EQ(g->outputs()[0], out);
  EXPECT_EQ(out->producer()->op_type(), "Squeeze");
  EXPECT_EQ(out->shape().ToString(), "[6,5,4]");
  ExpectSameOutputsAtO0And(2, Mha3D);
}

// Where(cond, scores, -inf) (bool keep mask) or Where(cond, -inf, scores) (Not).
std::unique_ptr<Graph> WhereMasked(bool scores_in_then, bool with_additive) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* q = Input(*g, "q", {1, 2, 4, 8});
  Value* k = Input(*g, "k", {1, 2, 6, 8});
  Value* v = Input(*g, "v", {1, 2, 6, 8});
  std::vector<uint8_t> keep(24);
  for (size_t i = 0; i < keep.size(); ++i) keep[i] = (i % 6 == 0 || i % 4 == 1) ? 1 : 0;
  if (!scores_in_then)
    for (auto& b : keep) b = b ? 0 : 1;  // cond = "drop": column 0 must stay kept
  for (size_t r = 0; r < 4; ++r) keep[r * 6] = scores_in_then ? 1 : 0;
  Value* cond = g->AddConstant("cond", Tensor::FromBytes(DType::kBool, {4, 6}, keep.data(), keep.size()).value());
  Value* s = Op(*g, "MatMul", {q, TransposeOf(*g, k, {0, 1, 3, 2}, "kt")}, "qk");
  s = Op(*g, "Mul", {s, Scalar(*g, "c", 0.5f)}, "scale");
  Value* ninf = Scalar(*g, "ninf", kNegInf);
  s = scores_in_then ? Op(*g, "Where", {cond, s, ninf}, "where") : Op(*g, "Where", {cond, ninf, s}, "where");
  if (with_additive) s = Op(*g, "Add", {s, Input(*g, "pad", {1, 1, 1, 6})}, "add_pad");
  Value* y = Op(*g, "MatMul", {SoftmaxOf(*g, s), v}, "pv");
  g->AddOutput(y);
  return g;
}

TEST(FuseAttention, FusesWhereMasks) {
  for (bool then : {true, false}) {
    SCOPED_TRACE(then ? "Where(cond, scores, -inf)" : "Where(cond, -inf, scores)");
    auto g = WhereMasked(then, false);
    RunPassOn(*g, CreateFuseAttentionPass());
    const Node* fa = FindFused(*g);
    ASSERT_NE(fa, nullptr);
    ASSERT_EQ(fa->num_inputs(), 4u);
    EXPECT_EQ(fa->input(3)->dtype(), DType::kBool);
    EXPECT_EQ(CountOps(*g, "Not"), then ? 0 : 1);
    EXPECT_EQ(CountOps(*g, "Where"), 0);
    ExpectSameOutputsAtO0And(2, [&] { return WhereMasked(then, false); });
  }
  // Where plus an additive mask: one f32 mask, Where(keep, 0, -inf) + pad.
  auto g = WhereMasked(true, true);
  RunPassOn(*g, CreateFuseAttentionPass());
  const Node* fa = FindFused(*g);
  ASSERT_NE(fa, nullptr);
  ASSERT_EQ(fa->num_inputs(), 4u);
  EXPECT_EQ(fa->input(3)->dtype(), DType::kF32);
  EXPECT_EQ(CountOps(*g, "Where"), 1);
  EXPECT_EQ(CountOps(*g, "Add"), 1);
  ExpectSameOutputsAtO0And(2, [] { return WhereMasked(true, true); });
}

TEST(FuseAttention, FusedNodeRoundTripsThroughOnnx) {
  auto g = BshdReshaped(kNegInf, false);
  RunPassOn(*g, CreateFuseAttentionPass());
  auto bytes = ExportOnnx(*g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto back = ImportOnnxBytes(bytes->data(), bytes->size(), "");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const Node* fa = FindFused(**back);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->GetInt("causal", 0), 1);
  EXPECT_NEAR(fa->GetFloat("scale", 0), 1.0 / std::sqrt(8.0), 1e-7);
}

// ---- near misses: the graph stays as it was ----------------------------------------

struct NearMiss {
  const char* what;
  std::function<std::unique_ptr<Graph>()> build;
};

std::unique_ptr<Graph> Basic(const std::function<void(Graph&, Value*&, Value*&, Value*&, Value*&)>& edit,
                             std::vector<int64_t> kdims = {2, 3, 5, 8}) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* q = Input(*g, "q", {2, 3, 5, 8});
  Value* k = Input(*g, "k", kdims);
  Value* v = Input(*g, "v", {2, 3, 5, 8});
  Value* s = Op(*g, "MatMul", {q, TransposeOf(*g, k, {0, 1, 3, 2}, "kt")}, "qk");
  Value* p = nullptr;
  Value* extra = nullptr;
  edit(*g, s, p, v, extra);
  if (!p) p = SoftmaxOf(*g, s);
  g->AddOutput(Op(*g, "MatMul", {p, v}, "pv"));
  if (extra) g->AddOutput(extra);
  return g;
}

TEST(FuseAttention, LeavesNearMissesAlone) {
  std::vector<NearMiss> cases = {
      {"softmax over a non-last axis",
       [] { return Basic([](Graph& g, Value*& s, Value*& p, Value*&, Value*&) { p = SoftmaxOf(g, s, 2); }); }},
      {"scores are also a graph output",
       [] { return Basic([](Graph&, Value*& s, Value*&, Value*&, Value*& extra) { extra = s; }); }},
      {"softmax output used twice",
       [] {
         return Basic([](Graph& g, Value*& s, Value*& p, Value*&, Value*& extra) {
           p = SoftmaxOf(g, s);
           extra = Op(g, "Relu", {p}, "other_user");
         });
       }},
      {"scale by a non-scalar constant",
       [] {
         return Basic([](Graph& g, Value*& s, Value*&, Value*&, Value*&) {
           Value* c = g.AddConstant("c5", Tensor::FromVector<float>(DType::kF32, {5}, {1, 2, 3, 4, 5}));
           s = Op(g, "Mul", {s, c}, "vec_scale");
         });
       }},
      {"scale after the mask",
       [] {
         return Basic([](Graph& g, Value*& s, Value*&, Value*&, Value*&) {
           s = Op(g, "Add", {s, Input(g, "m", {2, 1, 1, 5})}, "add_mask");
           s = Op(g, "Mul", {s, Scalar(g, "c", 0.5f)}, "late_scale");
         });
       }},
      {"mask that enlarges the scores",
       [] {
         return Basic([](Graph& g, Value*& s, Value*&, Value*&, Value*&) {
           s = Op(g, "Add", {s, Input(g, "m", {4, 2, 3, 5, 5})}, "add_big_mask");
         });
       }},
      {"Where with a finite fill",
       [] {
         return Basic([](Graph& g, Value*& s, Value*&, Value*&, Value*&) {
           s = Op(g, "Where", {Input(g, "cond", {5, 5}, DType::kBool), s, Scalar(g, "fill", -1e9f)}, "where");
         });
       }},
      {"K broadcast over batch by MatMul",
       [] { return Basic([](Graph&, Value*&, Value*&, Value*&, Value*&) {}, {1, 3, 5, 8}); }},
      {"softmax then a Relu before the second MatMul",
       [] {
         return Basic([](Graph& g, Value*& s, Value*& p, Value*&, Value*&) {
           p = Op(g, "Relu", {SoftmaxOf(g, s)}, "relu");
         });
       }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto g = c.build();
    size_t before = g->num_nodes();
    PassContext ctx;
    RunPassOn(*g, CreateFuseAttentionPass(), &ctx);
    EXPECT_EQ(ctx.changes, 0);
    EXPECT_EQ(g->num_nodes(), before);
    EXPECT_EQ(FindFused(*g), nullptr);
  }
  // f64 attention is left alone as well.
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* q = Input(*g, "q", {1, 1, 2, 2}, DType::kF64);
  Value* s = Op(*g, "MatMul", {q, TransposeOf(*g, q, {0, 1, 3, 2}, "kt")}, "qk");
  g->AddOutput(Op(*g, "MatMul", {SoftmaxOf(*g, s), q}, "pv"));
  RunPassOn(*g, CreateFuseAttentionPass());
  EXPECT_EQ(FindFused(*g), nullptr);
  EXPECT_EQ(CountOps(*g, "MatMul"), 2);
}

// Opset 11: Softmax's default axis is 1 (flattening), so only an explicit last axis
// matches; rank 3 uses the attribute forms of Unsqueeze/Squeeze.
std::unique_ptr<Graph> Opset11(bool explicit_axis) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 11);
  Value* q = Input(*g, "q", {4, 5, 8});
  Value* k = Input(*g, "k", {4, 6, 8});
  Value* v = Input(*g, "v", {4, 6, 3});
  Value* s = Op(*g, "MatMul", {q, TransposeOf(*g, k, {0, 2, 1}, "kt")}, "qk");
  Node* sm = g->AddNode("Softmax", {s}, 1, "softmax");
  if (explicit_axis) sm->set_attr("axis", Attribute::Int(2));
  g->AddOutput(Op(*g, "MatMul", {sm->output(0), v}, "pv"));
  return g;
}

TEST(FuseAttention, Opset11SoftmaxAxis) {
  auto g = Opset11(false);
  RunPassOn(*g, CreateFuseAttentionPass());
  EXPECT_EQ(FindFused(*g), nullptr);
  g = Opset11(true);
  RunPassOn(*g, CreateFuseAttentionPass());
  const Node* fa = FindFused(*g);
  ASSERT_NE(fa, nullptr);
  EXPECT_NEAR(fa->GetFloat("scale", 0), 1.0, 1e-7);  // no scale in the graph
  for (const Node* n : g->nodes())
    if (n->op_type() == "Unsqueeze" || n->op_type() == "Squeeze") {
      EXPECT_EQ(n->num_inputs(), 1u);
      EXPECT_EQ(n->GetInts("axes"), (std::vector<int64_t>{0}));
    }
  EXPECT_EQ(CountOps(*g, "Unsqueeze"), 3);
  EXPECT_EQ(CountOps(*g, "Transpose"), 0);  // kt's input is K already
  ExpectSameOutputsAtO0And(2, [] { return Opset11(true); });
}

// ---- exported models ------------------------------------------------------------------

std::string ModelPath(const std::string& name) { return std::string(TESSERA_MODELS_DIR) + "/" + name + "/model.onnx"; }

bool HaveModel(const std::string& name) { return std::ifstream(ModelPath(name)).good(); }

std::unique_ptr<Graph> LoadModel(const std::string& name) {
  auto g = ImportOnnxFile(ModelPath(name));
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? std::move(g).value() : std::make_unique<Graph>();
}

// Runs the model at O2 on its test_data_set_0 inputs and compares with
// PyTorch's outputs stored next to them (atol 1e-4 + rtol 1e-3, as the CLI's --check).
void ExpectMatchesReference(const std::string& name) {
  if (!testing::HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  const std::string dir = std::string(TESSERA_MODELS_DIR) + "/" + name + "/test_data_set_0/";
  auto g = LoadModel(name);
  std::vector<Tensor> inputs;
  std::vector<std::string> names;
  for (size_t i = 0; i < g->RuntimeInputs().size(); ++i) {
    std::string n;
    auto t = LoadTensorProtoFile(dir + "input_" + std::to_string(i) + ".pb", &n);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    inputs.push_back(std::move(t).value());
    names.push_back(n);
  }
  std::vector<std::pair<std::string, const Tensor*>> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) feeds.push_back({names[i], &inputs[i]});
  SessionOptions o;
  o.opt_level = 2;
  auto s = Session::FromGraph(std::move(g), o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::vector<Tensor> outs;
  Status st = (*s)->Run(feeds, {}, &outs);
  ASSERT_TRUE(st.ok()) << st.ToString();
  for (size_t i = 0; i < outs.size(); ++i) {
    auto want = LoadTensorProtoFile(dir + "output_" + std::to_string(i) + ".pb");
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    ASSERT_EQ(outs[i].dims(), want->dims());
    for (int64_t e = 0; e < want->num_elements(); ++e) {
      double a = outs[i].GetAsDouble(e), b = want->GetAsDouble(e);
      ASSERT_LE(std::fabs(a - b), 1e-4 + 1e-3 * std::fabs(b)) << "output " << i << " element " << e;
    }
  }
}

// o0_runs: the model runs at O0 too (bert_tiny's MultiheadAttention export
// needs constant folding before its Slices run on the CPU).
void CheckModel(const std::string& name, int expected_fused, bool expect_causal, bool o0_runs) {
  if (!HaveModel(name)) GTEST_SKIP() << ModelPath(name) << " missing (run scripts/gen_models.py --out models)";
  auto g = LoadModel(name);
  auto pm = BuildPipeline(2);
  ASSERT_TRUE(pm.ok());
  PassContext ctx;
  ctx.verify = true;
  Status st = pm->Run(*g, ctx);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(CountOps(*g, "FusedAttention", "tessera"), expected_fused);
  EXPECT_EQ(CountOps(*g, "Softmax"), 0);
  for (const Node* n : g->nodes())
    if (n->op_type() == "FusedAttention") {
      EXPECT_EQ(n->GetInt("causal", 0), expect_causal ? 1 : 0) << n->name();
    }
  ExpectMatchesReference(name);
  if (o0_runs) ExpectSameOutputsAtO0And(2, [&] { return LoadModel(name); }, 1e-4f, 1e-4f);
}

TEST(FuseAttention, TransformerModel) { CheckModel("transformer", 1, false, true); }
TEST(FuseAttention, BertTinyModel) { CheckModel("bert_tiny", 2, false, false); }
TEST(FuseAttention, GptTinyModel) { CheckModel("gpt_tiny", 2, true, true); }

}  // namespace
}  // namespace tessera
