// The precision policy (compiler/precision.h) on LayerNormalization: kept in
// the reduced type when its X already is and the device claims it (X, scale,
// bias, Y reduced; Mean/InvStdDev stay f32), else left f32 behind casts.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include "compiler/partition.h"
#include "compiler/precision.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

bool HasReducedValue(const tsr_graph_view& v, const tsr_node_view& n) {
  for (uint32_t k = 0; k < n.num_inputs; ++k)
    if (n.inputs[k] >= 0 && v.values[n.inputs[k]].dtype == TSR_DTYPE_BF16) return true;
  for (uint32_t k = 0; k < n.num_outputs; ++k)
    if (n.outputs[k] >= 0 && v.values[n.outputs[k]].dtype == TSR_DTYPE_BF16) return true;
  return false;
}

// Claims every node; refuses the ops in `no_bf16` when a value is bf16.
// `seen_ln` (optional) records the dtypes of LayerNormalization's values in
// the views the policy asks about: X, scale, Y, then each further output.
DeviceCandidate Device(std::set<std::string> no_bf16 = {}, std::vector<std::vector<int32_t>>* seen_ln = nullptr) {
  return {"cpu", [no_bf16, seen_ln](const tsr_graph_view& v, std::vector<tsr_claim>* claims) -> Status {
            for (uint32_t i = 0; i < v.num_nodes; ++i) {
              const tsr_node_view& n = v.nodes[i];
              if (seen_ln && std::string(n.op_type) == "LayerNormalization" && v.num_nodes == 1) {
                std::vector<int32_t> d;
                for (uint32_t k = 0; k < n.num_inputs; ++k) d.push_back(v.values[n.inputs[k]].dtype);
                for (uint32_t k = 0; k < n.num_outputs; ++k) d.push_back(v.values[n.outputs[k]].dtype);
                seen_ln->push_back(d);
              }
              const bool refuse = no_bf16.count(n.op_type) && HasReducedValue(v, n);
              (*claims)[i].supported = refuse ? 0 : 1;
              if (refuse) std::snprintf((*claims)[i].reason, sizeof((*claims)[i].reason), "no bf16 %s", n.op_type);
            }
            return Status::Ok();
          }};
}

Value* Weight(Graph& g, const std::string& name, std::vector<int64_t> dims, float base) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> w(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) w[i] = base + 0.01f * static_cast<float>((i * 5) % 7 - 3);
  return g.AddConstant(name, Tensor::FromVector<float>(DType::kF32, dims, w));
}

// x[4,8] -> MatMul W1 -> Add x (residual) -> LayerNormalization(s, b) [-> Mean, InvStdDev]
//        -> MatMul W2 -> y.   With `ln_on_input`, the LN reads x directly instead.
std::unique_ptr<Graph> Block(bool with_stats, bool ln_on_input = false) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({4, 8})});
  g->AddInput(x);
  Node* mm1 = g->AddNode("MatMul", {x, Weight(*g, "W1", {8, 8}, 0.1f)}, 1, "mm1");
  Node* add = g->AddNode("Add", {mm1->output(0), x}, 1, "add");
  Value* ln_in = ln_on_input ? x : add->output(0);
  Node* ln = g->AddNode("LayerNormalization", {ln_in, Weight(*g, "s", {8}, 1.f), Weight(*g, "b", {8}, 0.f)},
                        with_stats ? 3 : 1, "ln");
  Value* y = g->AddValue("y");
  Value* ln_out = ln->output(0);
  if (ln_on_input) {  // the LN result joins the residual stream: y = (mm1 + x) @ W2 + ln(x)
    Node* mm2 = g->AddNode("MatMul", {add->output(0), Weight(*g, "W2", {8, 8}, 0.2f)}, 1, "mm2");
    g->AddNodeWithOutputs("Add", {mm2->output(0), ln_out}, {y}, "add2");
  } else {
    g->AddNodeWithOutputs("MatMul", {ln_out, Weight(*g, "W2", {8, 8}, 0.2f)}, {y}, "mm2");
  }
  g->AddOutput(y);
  if (with_stats) {
    g->AddOutput(ln->output(1));
    g->AddOutput(ln->output(2));
  }
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

Result<Partition> Apply(Graph& g, const std::vector<DeviceCandidate>& devs, PrecisionReport* rep) {
  TSR_ASSIGN_OR_RETURN(Partition part, PartitionGraph(g, devs, false));
  return ApplyPrecision(g, part, devs, DType::kBF16, rep);
}

bool IsCast(const Node* n) { return n && n->op_type() == "Cast"; }

TEST(PrecisionLayerNorm, StaysReducedAfterAReducedResidualAdd) {
  auto g = Block(false);
  std::vector<std::vector<int32_t>> seen;
  std::vector<DeviceCandidate> devs = {Device({}, &seen)};
  PrecisionReport rep;
  auto p = Apply(*g, devs, &rep);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(g->Verify().ok()) << g->Verify().ToString();
  ASSERT_TRUE(InferGraphTypes(*g).ok()) << InferGraphTypes(*g).ToString();  // the LN schema accepts it

  const Node* ln = g->FindNode("ln");
  ASSERT_NE(ln, nullptr);
  for (const Value* v : ln->inputs()) EXPECT_EQ(v->dtype(), DType::kBF16) << v->name();
  EXPECT_EQ(ln->output(0)->dtype(), DType::kBF16);
  // Scale/bias got converted copies; nothing around the LN is a Cast.
  EXPECT_TRUE(ln->input(1)->is_constant());
  EXPECT_NEAR(BF16ToFloat(ln->input(1)->constant()->data<uint16_t>()[0]), 1.f - 0.03f, 4e-3f);
  EXPECT_FALSE(IsCast(ln->input(0)->producer()));
  for (const Node* c : g->Consumers(ln->output(0))) EXPECT_FALSE(IsCast(c)) << c->name();
  // Casts: x in, y out, nothing else.
  int casts = 0;
  for (const Node* n : g->nodes()) casts += IsCast(n);
  EXPECT_EQ(casts, 2);
  EXPECT_EQ(rep.nodes_retyped, 4);  // mm1, add, ln, mm2
  // The device was asked about the LN with X, scale, bias and Y in bf16.
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), (std::vector<int32_t>{TSR_DTYPE_BF16, TSR_DTYPE_BF16, TSR_DTYPE_BF16, TSR_DTYPE_BF16}));
}

TEST(PrecisionLayerNorm, StatisticsOutputsStayF32) {
  auto g = Block(true);
  std::vector<std::vector<int32_t>> seen;
  std::vector<DeviceCandidate> devs = {Device({}, &seen)};
  PrecisionReport rep;
  auto p = Apply(*g, devs, &rep);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(InferGraphTypes(*g).ok()) << InferGraphTypes(*g).ToString();
  const Node* ln = g->FindNode("ln");
  ASSERT_NE(ln, nullptr);
  EXPECT_EQ(ln->input(0)->dtype(), DType::kBF16);
  EXPECT_EQ(ln->output(0)->dtype(), DType::kBF16);
  EXPECT_EQ(ln->output(1)->dtype(), DType::kF32);
  EXPECT_EQ(ln->output(2)->dtype(), DType::kF32);
  // The statistics are graph outputs straight from the LN (no Cast, names kept).
  ASSERT_EQ(g->outputs().size(), 3u);
  EXPECT_EQ(g->outputs()[1], ln->output(1));
  EXPECT_EQ(g->outputs()[2], ln->output(2));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), (std::vector<int32_t>{TSR_DTYPE_BF16, TSR_DTYPE_BF16, TSR_DTYPE_BF16, TSR_DTYPE_BF16,
                                               TSR_DTYPE_F32, TSR_DTYPE_F32}));
}

TEST(PrecisionLayerNorm, F32InputKeepsItF32) {
  auto g = Block(false, /*ln_on_input=*/true);
  std::vector<DeviceCandidate> devs = {Device()};
  PrecisionReport rep;
  auto p = Apply(*g, devs, &rep);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const Node* ln = g->FindNode("ln");
  ASSERT_NE(ln, nullptr);
  for (const Value* v : ln->inputs()) EXPECT_EQ(v->dtype(), DType::kF32) << v->name();
  EXPECT_EQ(ln->input(0), g->FindValue("x"));  // reads the graph input itself
  EXPECT_EQ(ln->output(0)->dtype(), DType::kF32);
}

TEST(PrecisionLayerNorm, DeviceThatRefusesBf16LayerNormKeepsCasts) {
  auto g = Block(false);
  std::vector<DeviceCandidate> devs = {Device({"LayerNormalization"})};
  PrecisionReport rep;
  auto p = Apply(*g, devs, &rep);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(InferGraphTypes(*g).ok()) << InferGraphTypes(*g).ToString();
  const Node* ln = g->FindNode("ln");
  ASSERT_NE(ln, nullptr);
  for (const Value* v : ln->inputs()) EXPECT_EQ(v->dtype(), DType::kF32) << v->name();
  EXPECT_EQ(ln->output(0)->dtype(), DType::kF32);
  EXPECT_TRUE(IsCast(ln->input(0)->producer()));
  EXPECT_EQ(rep.nodes_retyped, 3);  // mm1, add, mm2
  // Only compute ops leave refusal notes; a normalization that stays f32 is the old default.
  EXPECT_TRUE(rep.notes.empty());
}

}  // namespace
}  // namespace tessera
