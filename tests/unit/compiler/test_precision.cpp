// The precision policy step (compiler/precision.h): graph structure with fake
// devices, and numbers against f32 through the CPU plugin on the model files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "compiler/partition.h"
#include "compiler/precision.h"
#include "graph/onnx/onnx_import.h"
#include "graph/op_schema.h"
#include "runtime/backend_registry.h"
#include "runtime/session.h"

namespace tessera {
namespace {

bool HasReducedInput(const tsr_graph_view& v, const tsr_node_view& n) {
  for (uint32_t k = 0; k < n.num_inputs; ++k)
    if (n.inputs[k] >= 0 && v.values[n.inputs[k]].dtype == TSR_DTYPE_BF16) return true;
  return false;
}

// Claims every node; refuses the ops in `no_bf16` when an input is bf16.
DeviceCandidate Device(const std::string& role, std::set<std::string> no_bf16 = {}, int* claim_calls = nullptr) {
  return {role, [no_bf16, claim_calls](const tsr_graph_view& v, std::vector<tsr_claim>* claims) -> Status {
            if (claim_calls) ++*claim_calls;
            for (uint32_t i = 0; i < v.num_nodes; ++i) {
              const tsr_node_view& n = v.nodes[i];
              bool refuse = no_bf16.count(n.op_type) && HasReducedInput(v, n);
              (*claims)[i].supported = refuse ? 0 : 1;
              if (refuse) std::snprintf((*claims)[i].reason, sizeof((*claims)[i].reason), "no bf16 %s here", n.op_type);
            }
            return Status::Ok();
          }};
}

Value* Weight(Graph& g, const std::string& name, std::vector<int64_t> dims, float scale) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> w(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) w[i] = scale * static_cast<float>((i * 7) % 13 - 6);
  return g.AddConstant(name, Tensor::FromVector<float>(DType::kF32, dims, w));
}

// x[2,8] -> MatMul W1 -> Add b1 -> Relu -> Softmax -> MatMul W2 -> y
std::unique_ptr<Graph> Mlp() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({2, 8})});
  g->AddInput(x);
  Node* mm1 = g->AddNode("MatMul", {x, Weight(*g, "W1", {8, 16}, 0.1f)}, 1, "mm1");
  Node* add = g->AddNode("Add", {mm1->output(0), Weight(*g, "b1", {16}, 0.01f)}, 1, "add");
  Node* relu = g->AddNode("Relu", {add->output(0)}, 1, "relu");
  Node* sm = g->AddNode("Softmax", {relu->output(0)}, 1, "softmax");
  Value* y = g->AddValue("y");
  g->AddNodeWithOutputs("MatMul", {sm->output(0), Weight(*g, "W2", {16, 4}, 0.2f)}, {y}, "mm2b");
  g->AddOutput(y);
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

const Node* Producer(const Graph& g, const std::string& node) { return g.FindNode(node); }

int CountCasts(const Graph& g) {
  int c = 0;
  for (const Node* n : g.nodes()) c += n->op_type() == "Cast";
  return c;
}

// No Cast reads another Cast's result.
void ExpectNoCastChains(const Graph& g) {
  for (const Node* n : g.nodes()) {
    if (n->op_type() != "Cast") continue;
    const Node* up = n->input(0)->producer();
    EXPECT_FALSE(up && up->op_type() == "Cast") << n->name() << " reads cast " << up->name();
  }
}

void ExpectPartitionCovers(const Graph& g, const Partition& p) {
  size_t total = 0;
  for (const auto& s : p.segments) total += s.nodes.size();
  EXPECT_EQ(total, g.num_nodes());
  EXPECT_EQ(p.node_device.size(), g.num_nodes());
  std::set<const Node*> seen;
  for (const auto& s : p.segments)
    for (const Node* n : s.nodes) EXPECT_TRUE(seen.insert(n).second);
  for (const Node* n : g.nodes()) EXPECT_TRUE(seen.count(n)) << n->name() << " is in no segment";
}

TEST(Precision, ParsePrecision) {
  EXPECT_EQ(*ParsePrecision("bf16"), DType::kBF16);
  EXPECT_EQ(*ParsePrecision("fp32"), DType::kF32);
  EXPECT_EQ(*ParsePrecision("f16"), DType::kF16);
  auto bad = ParsePrecision("int8");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().ToString().find("int8"), std::string::npos);
}

TEST(Precision, Bf16RegionCastsOnlyAtEdgesSoftmaxStaysF32) {
  auto g = Mlp();
  std::vector<DeviceCandidate> devs = {Device("cpu")};
  auto part = PartitionGraph(*g, devs, false);
  ASSERT_TRUE(part.ok());
  PrecisionReport rep;
  auto p = ApplyPrecision(*g, *part, devs, DType::kBF16, &rep);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(g->Verify().ok()) << g->Verify().ToString();
  ASSERT_TRUE(InferGraphTypes(*g).ok()) << InferGraphTypes(*g).ToString();  // schemas accept the retyped nodes
  ExpectPartitionCovers(*g, *p);

  // MatMul/Add/Relu compute in bf16 with bf16 weights; Softmax stays f32.
  for (const char* name : {"mm1", "add", "relu", "mm2b"}) {
    const Node* n = Producer(*g, name);
    ASSERT_NE(n, nullptr) << name;
    for (const Value* v : n->inputs()) EXPECT_EQ(v->dtype(), DType::kBF16) << name << " input " << v->name();
    EXPECT_EQ(n->output(0)->dtype(), DType::kBF16) << name;
  }
  EXPECT_TRUE(Producer(*g, "mm1")->input(1)->is_constant());
  EXPECT_EQ(Producer(*g, "mm1")->input(1)->constant()->dtype(), DType::kBF16);
  // Weights were converted once, with the right values (0.1 * (7i mod 13 - 6)).
  const Tensor* w = Producer(*g, "mm1")->input(1)->constant();
  EXPECT_NEAR(BF16ToFloat(w->data<uint16_t>()[1]), 0.1f * 1.f, 1e-3f);
  const Node* sm = Producer(*g, "softmax");
  EXPECT_EQ(sm->input(0)->dtype(), DType::kF32);
  EXPECT_EQ(sm->output(0)->dtype(), DType::kF32);
  EXPECT_EQ(sm->input(0)->producer()->op_type(), "Cast");

  // Casts: x in, before softmax, after softmax, y out.
  EXPECT_EQ(rep.casts_inserted, 4);
  EXPECT_EQ(CountCasts(*g), 4);
  EXPECT_EQ(rep.weights_converted, 3);
  EXPECT_EQ(rep.nodes_retyped, 4);
  ExpectNoCastChains(*g);
  // The graph output keeps its name and f32.
  ASSERT_EQ(g->outputs().size(), 1u);
  EXPECT_EQ(g->outputs()[0]->name(), "y");
  EXPECT_EQ(g->outputs()[0]->dtype(), DType::kF32);
  EXPECT_EQ(g->outputs()[0]->producer()->op_type(), "Cast");
  // The input is still f32 (the cast is inside the graph).
  EXPECT_EQ(g->FindValue("x")->dtype(), DType::kF32);

  PassStat st = PrecisionPassStat(rep, 5, static_cast<int64_t>(g->num_nodes()), 0.1);
  EXPECT_EQ(st.pass, "apply_precision");
  EXPECT_EQ(st.changes, 4);
}

TEST(Precision, NodeTheDeviceRefusesStaysF32) {
  auto g = Mlp();
  std::vector<DeviceCandidate> devs = {Device("cpu", {"MatMul"})};
  auto part = PartitionGraph(*g, devs, false);
  ASSERT_TRUE(part.ok());
  PrecisionReport rep;
  auto p = ApplyPrecision(*g, *part, devs, DType::kBF16, &rep);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  // Nothing computes in bf16: the elementwise ops follow only reduced producers.
  EXPECT_EQ(rep.nodes_retyped, 0);
  EXPECT_EQ(rep.nodes_refused, 2);
  EXPECT_EQ(CountCasts(*g), 0);
  for (const Node* n : g->nodes())
    for (const Value* v : n->outputs()) EXPECT_EQ(v->dtype(), DType::kF32) << n->name();
  ASSERT_EQ(rep.notes.size(), 2u);
  EXPECT_NE(rep.notes[0].find("'mm1' (MatMul) stays f32 on cpu: no bf16 MatMul here"), std::string::npos)
      << rep.notes[0];
  ExpectPartitionCovers(*g, *p);
}

TEST(Precision, DeviceWithoutCastsKeepsF32) {
  auto g = Mlp();
  std::vector<DeviceCandidate> devs = {Device("cpu", {"Cast"})};
  // Cast refused only with a bf16 input: the step asks for both directions.
  auto part = PartitionGraph(*g, devs, false);
  ASSERT_TRUE(part.ok());
  PrecisionReport rep;
  auto p = ApplyPrecision(*g, *part, devs, DType::kBF16, &rep);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(rep.nodes_retyped, 0);
  EXPECT_EQ(CountCasts(*g), 0);
  ASSERT_FALSE(rep.notes.empty());
  EXPECT_NE(rep.notes[0].find("cannot run Cast"), std::string::npos) << rep.notes[0];
}

TEST(Precision, F32IsANoOp) {
  auto g = Mlp();
  std::vector<DeviceCandidate> devs = {Device("cpu")};
  auto part = PartitionGraph(*g, devs, false);
  ASSERT_TRUE(part.ok());
  size_t before = g->num_nodes();
  auto p = ApplyPrecision(*g, *part, devs, DType::kF32, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(g->num_nodes(), before);
  EXPECT_EQ(CountCasts(*g), 0);
  auto bad = ApplyPrecision(*g, *part, devs, DType::kI8, nullptr);
  EXPECT_FALSE(bad.ok());
}

// xb (bf16) -> Cast f32 -> Cast bf16 -> Cast f32 -> MatMul W -> y: the
// bf16->f32->bf16 pairs collapse and MatMul reads xb directly.
TEST(Precision, RedundantCastPairsCollapse) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* xb = g->AddValue("xb", TensorType{DType::kBF16, Shape::FromInts({2, 8})});
  g->AddInput(xb);
  auto cast = [&](Value* in, DType to, const char* name) {
    Node* c = g->AddNode("Cast", {in}, 1, name);
    c->set_attr("to", Attribute::Int(static_cast<int64_t>(to)));
    return c->output(0);
  };
  Value* c3 = cast(cast(cast(xb, DType::kF32, "c1"), DType::kBF16, "c2"), DType::kF32, "c3");
  Node* mm = g->AddNode("MatMul", {c3, Weight(*g, "W", {8, 4}, 0.1f)}, 1, "mm");
  g->AddOutput(mm->output(0));
  ASSERT_TRUE(InferGraphTypes(*g).ok());
  std::vector<DeviceCandidate> devs = {Device("cpu")};
  auto part = PartitionGraph(*g, devs, false);
  ASSERT_TRUE(part.ok());
  PrecisionReport rep;
  auto p = ApplyPrecision(*g, *part, devs, DType::kBF16, &rep);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(g->Verify().ok());
  EXPECT_EQ(rep.cast_pairs_removed, 2);
  EXPECT_EQ(g->FindNode("mm")->input(0), g->FindValue("xb"));
  EXPECT_EQ(CountCasts(*g), 1);  // only the output's cast back to f32
  ExpectNoCastChains(*g);
  ExpectPartitionCovers(*g, *p);
  EXPECT_EQ(g->outputs()[0]->dtype(), DType::kF32);
}

// Two devices: the casts join the segment of the node they serve.
TEST(Precision, TwoDevicesCastsOnTheServedDevice) {
  auto g = Mlp();
  // "acc" runs only MatMul (any dtype); the rest falls back to cpu.
  DeviceCandidate acc = {"acc", [](const tsr_graph_view& v, std::vector<tsr_claim>* claims) -> Status {
                           for (uint32_t i = 0; i < v.num_nodes; ++i) {
                             std::string op = v.nodes[i].op_type;
                             (*claims)[i].supported = op == "MatMul" || op == "Cast";
                             if (!(*claims)[i].supported) std::snprintf((*claims)[i].reason, 32, "no");
                           }
                           return Status::Ok();
                         }};
  std::vector<DeviceCandidate> devs = {acc, Device("cpu")};
  auto part = PartitionGraph(*g, devs, false);
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  PrecisionReport rep;
  auto p = ApplyPrecision(*g, *part, devs, DType::kBF16, &rep);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ExpectPartitionCovers(*g, *p);
  std::map<const Node*, int32_t> dev;
  for (const auto& s : p->segments)
    for (const Node* n : s.nodes) dev[n] = s.device;
  EXPECT_EQ(dev[g->FindNode("mm1")], 0);
  // x's cast feeds mm1 on acc; mm1's result goes back to f32 on acc too.
  const Node* xin = g->FindNode("mm1")->input(0)->producer();
  ASSERT_NE(xin, nullptr);
  EXPECT_EQ(xin->op_type(), "Cast");
  EXPECT_EQ(dev[xin], 0);
}

// ---- numbers through the CPU plugin --------------------------------------------

bool HaveCpu() {
  const LoadedBackend* b = BackendRegistry::Get().Find("cpu");
  return b && b->usable();
}

std::vector<Tensor> RunModel(const std::string& path, const std::string& precision,
                             std::vector<std::pair<std::string, Tensor>>* inputs, std::string* describe) {
  SessionOptions o;
  EXPECT_TRUE(o.Set("precision", precision).ok());
  auto s = Session::FromFile(path, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return {};
  if (inputs->empty()) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (const IoInfo& in : (*s)->inputs()) {
      std::vector<int64_t> dims = in.dims;
      for (auto& d : dims)
        if (d < 0) d = 1;
      Tensor t = Tensor::Zeros(in.dtype, dims).value();
      if (in.dtype == DType::kF32)
        for (int64_t i = 0; i < t.num_elements(); ++i) static_cast<float*>(t.mutable_raw())[i] = u(rng);
      if (in.dtype == DType::kI64)
        for (int64_t i = 0; i < t.num_elements(); ++i) static_cast<int64_t*>(t.mutable_raw())[i] = i % 7;
      inputs->push_back({in.name, std::move(t)});
    }
  }
  std::vector<std::pair<std::string, const Tensor*>> feeds;
  for (auto& [n, t] : *inputs) feeds.push_back({n, &t});
  std::vector<Tensor> outs;
  Status st = (*s)->Run(feeds, {}, &outs);
  EXPECT_TRUE(st.ok()) << st.ToString();
  if (describe) {
    auto d = (*s)->DescribeJson();
    *describe = d.ok() ? *d : "{}";
  }
  return outs;
}

void ExpectCloseToF32(const std::string& model) {
  if (!HaveCpu()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  const std::string path = std::string(TESSERA_MODELS_DIR) + "/" + model + "/model.onnx";
  std::vector<std::pair<std::string, Tensor>> inputs;
  std::string desc;
  auto ref = RunModel(path, "f32", &inputs, nullptr);
  auto got = RunModel(path, "bf16", &inputs, &desc);
  ASSERT_EQ(ref.size(), got.size());
  ASSERT_FALSE(ref.empty());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_EQ(got[i].dtype(), ref[i].dtype()) << "outputs stay in their f32 type";
    ASSERT_EQ(got[i].dims(), ref[i].dims());
    double max_ref = 0, max_err = 0;
    for (int64_t e = 0; e < ref[i].num_elements(); ++e) {
      max_ref = std::max(max_ref, std::fabs(ref[i].GetAsDouble(e)));
      max_err = std::max(max_err, std::fabs(ref[i].GetAsDouble(e) - got[i].GetAsDouble(e)));
    }
    // bf16 keeps 8 significant bits (relative rounding 2^-9 per value); a few
    // layers of accumulated rounding stay within a few percent of the range.
    EXPECT_LE(max_err, 5e-2 * std::max(max_ref, 1e-3)) << model << " output " << i;
  }
  // The compiled graph: softmax / normalizations keep f32 outputs (a
  // LayerNormalization may store Y in bf16 — its kernel computes in f32 —
  // but its Mean/InvStdDev stay f32); the step ran.
  auto j = nlohmann::json::parse(desc);
  bool ran = false;
  for (const auto& p : j["passes"]) ran |= p["pass"] == "apply_precision";
  EXPECT_TRUE(ran) << "apply_precision is not in the pass statistics";
  for (const auto& n : j["nodes"]) {
    std::string op = n["op"];
    if (op == "Softmax" || op == "LayerNormalization" || op == "BatchNormalization" || op == "ReduceMean" ||
        op == "tessera.FusedLayerNorm" || op == "LogSoftmax") {
      size_t k = 0;
      for (const auto& t : n["outputs"]) {
        if (k++ == 0 && op == "LayerNormalization") continue;
        EXPECT_EQ(std::string(t).rfind("bf16", 0), std::string::npos) << op;
      }
    }
  }
}

TEST(PrecisionModels, MlpBf16CloseToF32) { ExpectCloseToF32("mlp"); }
TEST(PrecisionModels, CnnBf16CloseToF32) { ExpectCloseToF32("cnn"); }
TEST(PrecisionModels, TransformerBf16CloseToF32) { ExpectCloseToF32("transformer"); }

}  // namespace
}  // namespace tessera
