// Layout negotiation (compiler/assign_layouts.h): where LayoutConvert nodes go,
// what the graph and plan record, and that a ResNet-like block computes the
// same numbers with the CPU backend's layouts (O2) as without (O0), also
// after a .tplan round trip.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "compiler/assign_layouts.h"
#include "compiler/lower.h"
#include "compiler/partition.h"
#include "runtime/plan_file.h"
#include "tests/unit/compiler/pass_test_util.h"

namespace tessera::testing {
namespace {

Value* Weight(Graph& g, const std::string& name, std::vector<int64_t> dims, uint32_t seed) {
  Tensor t = Tensor::Zeros(DType::kF32, dims).value();
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.3f, 0.3f);
  for (int64_t i = 0; i < t.num_elements(); ++i) static_cast<float*>(t.mutable_raw())[i] = u(rng);
  return g.AddConstant(name, std::move(t));
}

Node* Conv(Graph& g, Value* x, Value* w, const std::string& name, int64_t pad) {
  Node* n = g.AddNode("Conv", {x, w}, 1, name);
  n->set_attr("pads", Attribute::Ints({pad, pad, pad, pad}));
  return n;
}

// X -> c1 -> A -> c2 -> B -> relu_b -> out_b ; A -> relu_a -> out_a
std::unique_ptr<Graph> TwoConvs() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("X", TensorType{DType::kF32, Shape::FromInts({1, 8, 6, 6})});
  g->AddInput(x);
  Node* c1 = Conv(*g, x, Weight(*g, "w1", {16, 8, 3, 3}, 1), "c1", 1);
  Node* c2 = Conv(*g, c1->output(0), Weight(*g, "w2", {16, 16, 1, 1}, 2), "c2", 0);
  Node* rb = g->AddNode("Relu", {c2->output(0)}, 1, "relu_b");
  Node* ra = g->AddNode("Relu", {c1->output(0)}, 1, "relu_a");
  g->AddOutput(rb->output(0));
  g->AddOutput(ra->output(0));
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

// A fake device: every Conv output prefers "nhwc" with 256 bytes of padding;
// a Conv accepts its input 0 in any preferred layout.
Status FakeChooser(const tsr_graph_view& v, std::vector<tsr_layout_choice>* vals, std::vector<uint8_t>* acc) {
  size_t k = 0;
  for (uint32_t i = 0; i < v.num_nodes; ++i) {
    const tsr_node_view& n = v.nodes[i];
    if (std::string(n.op_type) == "Conv") {
      const tsr_value_view& y = v.values[n.outputs[0]];
      int64_t numel = 1;
      for (int32_t d = 0; d < y.rank; ++d) numel *= y.dims[d];
      std::snprintf((*vals)[n.outputs[0]].layout, sizeof(tsr_layout_choice::layout), "nhwc");
      (*vals)[n.outputs[0]].bytes = static_cast<uint64_t>(numel) * 4 + 256;
      (*acc)[k] = 1;
    }
    k += n.num_inputs;
  }
  return Status::Ok();
}

Partition OneSegment(const Graph& g) {
  Partition p;
  p.segments.push_back({0, {}});
  for (const Node* n : g.nodes()) {
    p.segments[0].nodes.push_back(n);
    p.node_device.push_back(0);
    p.node_reason.push_back("");
  }
  return p;
}

TEST(AssignLayouts, ConvertOnlyWherePlainReadersNeedIt) {
  auto g = TwoConvs();
  Partition part = OneSegment(*g);
  auto st = AssignLayouts(*g, part, {FakeChooser});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  // A (c1's output) is read by c2 (accepts) and relu_a (plain): one convert.
  // B (c2's output) is read only by relu_b (plain): stays plain, no convert.
  EXPECT_EQ(st->conversions, 1);
  EXPECT_EQ(st->non_plain_values, 1);
  EXPECT_EQ(st->nodes_after, st->nodes_before + 1);
  EXPECT_EQ(CountOps(*g, "LayoutConvert", "tessera"), 1);
  ASSERT_TRUE(g->Verify().ok()) << g->Verify().ToString();
  ASSERT_TRUE(InferGraphTypes(*g).ok());

  Node* c1 = g->FindNode("c1");
  Node* c2 = g->FindNode("c2");
  Node* ra = g->FindNode("relu_a");
  ASSERT_TRUE(c1 && c2 && ra);
  EXPECT_EQ(OutputLayout(c1, 0), "nhwc");
  EXPECT_EQ(OutputLayoutBytes(c1, 0), 16u * 36 * 4 + 256);
  EXPECT_EQ(OutputLayout(c2, 0), "");  // B stays plain
  // Consecutive convs: c2 reads c1's output directly, in nhwc.
  EXPECT_EQ(c2->input(0), c1->output(0));
  ASSERT_NE(c2->attr(kInLayoutsAttr), nullptr);
  EXPECT_EQ(c2->attr(kInLayoutsAttr)->strings.at(0), "nhwc");
  // relu_a reads the convert's plain output.
  Node* cv = ra->input(0)->producer();
  ASSERT_NE(cv, nullptr);
  EXPECT_EQ(cv->op_type(), "LayoutConvert");
  EXPECT_EQ(cv->GetString("from", "?"), "nhwc");
  EXPECT_EQ(cv->GetString("to", "?"), "");
  EXPECT_EQ(cv->input(0), c1->output(0));
  EXPECT_EQ(ra->attr(kInLayoutsAttr), nullptr);
  // The segment runs the convert right after its producer.
  const auto& nodes = part.segments[0].nodes;
  auto it = std::find(nodes.begin(), nodes.end(), c1);
  ASSERT_NE(it, nodes.end());
  ASSERT_NE(it + 1, nodes.end());
  EXPECT_EQ(*(it + 1), cv);

  // The plan records the layout and sizes the buffer by the device's bytes.
  auto plan = LowerToPlan(std::move(g), part, {{"cpu", "cpu", 0}}, 0);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const PlanBuffer* a = plan->FindBuffer(c1->output(0)->name(), 0);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->layout, "nhwc");
  EXPECT_GE(a->bytes, 16u * 36 * 4 + 256);
  const PlanBuffer* b = plan->FindBuffer(c2->output(0)->name(), 0);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->layout, "");
  EXPECT_EQ(b->bytes, 16u * 36 * 4);
}

TEST(AssignLayouts, GraphOutputsInputsAndOtherDevicesStayPlain) {
  // c1's output is a graph output too: it keeps the plain layout (graph
  // outputs are never renamed), even though c2 would accept nhwc.
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("X", TensorType{DType::kF32, Shape::FromInts({1, 8, 6, 6})});
  g->AddInput(x);
  Node* c1 = Conv(*g, x, Weight(*g, "w1", {8, 8, 1, 1}, 1), "c1", 0);
  Node* c2 = Conv(*g, c1->output(0), Weight(*g, "w2", {8, 8, 1, 1}, 2), "c2", 0);
  g->AddOutput(c1->output(0));
  g->AddOutput(c2->output(0));
  ASSERT_TRUE(InferGraphTypes(*g).ok());
  Partition part = OneSegment(*g);
  auto st = AssignLayouts(*g, part, {FakeChooser});
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->conversions, 0);
  EXPECT_EQ(st->non_plain_values, 0);
  EXPECT_FALSE(c1->has_attr(kOutLayoutsAttr));

  // A device without a chooser (or one across a segment boundary) changes nothing.
  auto g2 = TwoConvs();
  Partition p2 = OneSegment(*g2);
  auto st2 = AssignLayouts(*g2, p2, {LayoutChooser()});
  ASSERT_TRUE(st2.ok());
  EXPECT_EQ(st2->conversions, 0);
  EXPECT_EQ(CountOps(*g2, "LayoutConvert", "tessera"), 0);

  // Two segments: c1 | c2, relus. A crosses the boundary: plain.
  auto g3 = TwoConvs();
  Partition p3;
  p3.segments.push_back({0, {g3->FindNode("c1")}});
  p3.segments.push_back({0, {}});
  for (const Node* n : g3->nodes())
    if (n->name() != "c1") p3.segments[1].nodes.push_back(n);
  auto st3 = AssignLayouts(*g3, p3, {FakeChooser});
  ASSERT_TRUE(st3.ok());
  EXPECT_EQ(st3->conversions, 0);
  EXPECT_EQ(OutputLayout(g3->FindNode("c1"), 0), "");
}

TEST(AssignLayouts, ChooserErrorsSurface) {
  auto g = TwoConvs();
  Partition part = OneSegment(*g);
  auto st = AssignLayouts(*g, part, {[](const tsr_graph_view&, std::vector<tsr_layout_choice>*,
                                         std::vector<uint8_t>*) { return Internal("device 'cpu' choose_layouts: boom"); }});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().ToString().find("boom"), std::string::npos);
}

// A ResNet-like bottleneck: conv-relu, conv-relu, conv, + identity, relu,
// max pool, then a 1x1 conv and a global average pool.
std::unique_ptr<Graph> ResBlock() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("X", TensorType{DType::kF32, Shape::FromInts({1, 16, 10, 10})});
  g->AddInput(x);
  Node* stem = Conv(*g, x, Weight(*g, "w0", {32, 16, 3, 3}, 10), "stem", 1);
  Node* r0 = g->AddNode("Relu", {stem->output(0)}, 1, "r0");
  Node* c1 = Conv(*g, r0->output(0), Weight(*g, "w1", {16, 32, 1, 1}, 11), "c1", 0);
  Node* r1 = g->AddNode("Relu", {c1->output(0)}, 1, "r1");
  Node* c2 = Conv(*g, r1->output(0), Weight(*g, "w2", {16, 16, 3, 3}, 12), "c2", 1);
  Node* r2 = g->AddNode("Relu", {c2->output(0)}, 1, "r2");
  Node* c3 = Conv(*g, r2->output(0), Weight(*g, "w3", {32, 16, 1, 1}, 13), "c3", 0);
  Node* add = g->AddNode("Add", {c3->output(0), r0->output(0)}, 1, "add");
  Node* r3 = g->AddNode("Relu", {add->output(0)}, 1, "r3");
  Node* mp = g->AddNode("MaxPool", {r3->output(0)}, 1, "mp");
  mp->set_attr("kernel_shape", Attribute::Ints({2, 2}));
  mp->set_attr("strides", Attribute::Ints({2, 2}));
  Node* c4 = Conv(*g, mp->output(0), Weight(*g, "w4", {32, 32, 1, 1}, 14), "c4", 0);
  Node* gap = g->AddNode("GlobalAveragePool", {c4->output(0)}, 1, "gap");
  g->AddOutput(gap->output(0));
  g->AddOutput(r3->output(0));
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

TEST(AssignLayouts, ResNetBlockSameNumbersAtO0AndO2) {
  ExpectSameOutputsAtO0And(2, ResBlock, 1e-4f, 1e-4f);
}

// 1-D and 3-D conv chains (nwc / ndhwc on oneDNN 2.6) with a pool between
// and a conv output that is also a graph output.
std::unique_ptr<Graph> ConvChain(int spatial) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  std::vector<int64_t> xd{1, 8}, k3, k1, pads;
  for (int i = 0; i < spatial; ++i) {
    xd.push_back(spatial == 1 ? 12 : 6);
    k3.push_back(3);
    k1.push_back(1);
  }
  Value* x = g->AddValue("X", TensorType{DType::kF32, Shape::FromInts(xd)});
  g->AddInput(x);
  auto wdims = [](int64_t m, int64_t c, const std::vector<int64_t>& k) {
    std::vector<int64_t> d{m, c};
    d.insert(d.end(), k.begin(), k.end());
    return d;
  };
  auto conv = [&](Value* in, std::vector<int64_t> wd, const std::string& name, int64_t pad, uint32_t seed) {
    Node* n = g->AddNode("Conv", {in, Weight(*g, name + "_w", wd, seed)}, 1, name);
    n->set_attr("pads", Attribute::Ints(std::vector<int64_t>(2 * static_cast<size_t>(spatial), pad)));
    return n;
  };
  Node* c1 = conv(x, wdims(16, 8, k3), "c1", 1, 21);
  Node* c2 = conv(c1->output(0), wdims(16, 16, k1), "c2", 0, 22);
  Node* mp = g->AddNode("MaxPool", {c2->output(0)}, 1, "mp");
  mp->set_attr("kernel_shape", Attribute::Ints(std::vector<int64_t>(static_cast<size_t>(spatial), 2)));
  mp->set_attr("strides", Attribute::Ints(std::vector<int64_t>(static_cast<size_t>(spatial), 2)));
  Node* c3 = conv(mp->output(0), wdims(16, 16, k3), "c3", 1, 23);
  g->AddOutput(c3->output(0));
  g->AddOutput(c1->output(0));
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

// Compiles at O2, saves the plan and returns it (loaded back).
LoadedPlan CompiledPlan(std::unique_ptr<Graph> g, const std::string& tag) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tessera_layouts_" + tag + std::to_string(::getpid()) + ".tplan"))
                               .string();
  SessionOptions o;
  o.opt_level = 2;
  auto s = Session::FromGraph(std::move(g), o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (s.ok()) {
    Status st = (*s)->SavePlan(path, false);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  auto lp = LoadPlanFile(path);
  std::filesystem::remove(path);
  EXPECT_TRUE(lp.ok()) << lp.status().ToString();
  return lp.ok() ? std::move(*lp) : LoadedPlan{};
}

int NonPlainBuffers(const Plan& p) {
  int n = 0;
  for (const PlanBuffer& b : p.buffers) n += !b.layout.empty();
  return n;
}

TEST(AssignLayouts, OneAndThreeDimensionalChainsSameNumbers) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  ExpectSameOutputsAtO0And(2, [] { return ConvChain(1); }, 1e-4f, 1e-4f);
  ExpectSameOutputsAtO0And(2, [] { return ConvChain(3); }, 1e-4f, 1e-4f);
  // c2 -> mp -> c3 run in oneDNN's layout; c1's output is a graph output: plain.
  for (int sp : {1, 3}) {
    LoadedPlan lp = CompiledPlan(ConvChain(sp), "chain");
    ASSERT_TRUE(lp.plan.graph);
    EXPECT_GE(NonPlainBuffers(lp.plan), 2) << sp << "-D";
    EXPECT_EQ(OutputLayout(lp.plan.graph->FindNode("c1"), 0), "") << sp << "-D";
  }
}

TEST(AssignLayouts, PlanFileKeepsLayoutsAndRuns) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  auto inputs = RandomInputs(*ResBlock());
  std::vector<std::pair<std::string, const Tensor*>> feeds;
  for (auto& [n, t] : inputs) feeds.push_back({n, &t});
  std::vector<Tensor> want, got;
  {
    SessionOptions o;
    o.opt_level = 0;
    auto s = Session::FromGraph(ResBlock(), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->Run(feeds, {}, &want).ok());
  }
  const std::string path =
      (std::filesystem::temp_directory_path() / ("tessera_layouts_" + std::to_string(::getpid()) + ".tplan")).string();
  {
    SessionOptions o;
    o.opt_level = 2;
    auto s = Session::FromGraph(ResBlock(), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    Status st = (*s)->SavePlan(path, false);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  auto lp = LoadPlanFile(path);
  ASSERT_TRUE(lp.ok()) << lp.status().ToString();
  const Plan& plan = lp->plan;
  int non_plain = 0;
  for (const PlanBuffer& b : plan.buffers) {
    if (b.layout.empty()) continue;
    ++non_plain;
    const Value* v = plan.graph->FindValue(b.value);
    ASSERT_NE(v, nullptr) << b.value;
    EXPECT_GE(b.bytes, static_cast<uint64_t>(CheckedByteSize(*v->shape().AsInts(), v->dtype()).value()));
    // The graph's attributes agree with the buffer.
    EXPECT_EQ(OutputLayout(v->producer(), v->producer_output()), b.layout);
  }
  EXPECT_GT(non_plain, 0) << "the CPU backend asked for no non-plain layout in a conv chain";
  bool stat = false;
  for (const auto& s : plan.pass_stats)
    if (s.pass == "assign_layouts") stat = true;
  EXPECT_TRUE(stat);
  // Consecutive convs exchange data with no conversion between them: every
  // LayoutConvert feeds a node that is not a Conv/FusedConv.
  for (const Node* n : plan.graph->nodes()) {
    if (n->op_type() != "LayoutConvert") continue;
    for (const Node* c : plan.graph->Consumers(n->output(0)))
      EXPECT_TRUE(c->op_type() != "Conv" && c->op_type() != "FusedConv") << n->name() << " feeds " << c->name();
  }
  // The loaded plan runs and computes the O0 numbers.
  {
    SessionOptions o;
    auto s = Session::FromFile(path, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    Status st = (*s)->Run(feeds, {}, &got);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::filesystem::remove(path);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].dims(), got[i].dims());
    for (int64_t e = 0; e < want[i].num_elements(); ++e)
      ASSERT_NEAR(want[i].GetAsDouble(e), got[i].GetAsDouble(e), 1e-4 + 1e-4 * std::fabs(want[i].GetAsDouble(e)))
          << "output " << i << " element " << e;
  }
}

}  // namespace
}  // namespace tessera::testing
