// The partitioner's cost model: no ping-pong, maximal segments, overrides,
// strict-mode lists, reasons.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "compiler/partition.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

// A fake device claiming the ops in `est` (op type -> est_time_us; 0 = let
// the cost model estimate).
DeviceCandidate Dev(const std::string& role, std::map<std::string, double> est) {
  return {role, [est, role](const tsr_graph_view& v, std::vector<tsr_claim>* claims) -> Status {
            for (uint32_t i = 0; i < v.num_nodes; ++i) {
              auto it = est.find(v.nodes[i].op_type);
              (*claims)[i].supported = it != est.end();
              (*claims)[i].est_time_us = it != est.end() ? it->second : 0;
              if (it == est.end())
                std::snprintf((*claims)[i].reason, sizeof((*claims)[i].reason), "%s has no %s kernel", role.c_str(),
                              v.nodes[i].op_type);
            }
            return Status::Ok();
          }};
}

Value* Input(Graph& g, const std::string& name, std::vector<int64_t> dims) {
  Value* x = g.AddValue(name, TensorType{DType::kF32, Shape::FromInts(dims)});
  g.AddInput(x);
  return x;
}

Value* Weight(Graph& g, const std::string& name, std::vector<int64_t> dims) {
  return g.AddConstant(name, *Tensor::Zeros(DType::kF32, dims));
}

std::map<std::string, int32_t> DeviceOf(const Graph& g, const Partition& p) {
  std::map<std::string, int32_t> m;
  size_t i = 0;
  for (const Node* n : g.nodes()) m[n->name()] = p.node_device[i++];
  return m;
}

std::map<std::string, std::string> ReasonOf(const Graph& g, const Partition& p) {
  std::map<std::string, std::string> m;
  size_t i = 0;
  for (const Node* n : g.nodes()) m[n->name()] = p.node_reason[i++];
  return m;
}

// Segments cover every node once, in a topological order, each on one device,
// and adjacent segments differ in device (maximal).
void ExpectValidSegments(const Graph& g, const Partition& p) {
  std::set<const Value*> ready;
  for (const Value* v : g.inputs()) ready.insert(v);
  size_t count = 0;
  for (size_t s = 0; s < p.segments.size(); ++s) {
    if (s > 0) {
      EXPECT_NE(p.segments[s].device, p.segments[s - 1].device) << "segment " << s << " is not maximal";
    }
    for (const Node* n : p.segments[s].nodes) {
      for (const Value* in : n->inputs()) {
        if (in && !in->is_constant()) {
          EXPECT_TRUE(ready.count(in)) << n->name() << " runs before its input " << in->name();
        }
      }
      for (const Value* o : n->outputs()) ready.insert(o);
      ++count;
    }
  }
  EXPECT_EQ(count, g.num_nodes());
}

// x -> s1:Sigmoid -> r1:Relu -> r2:Relu -> s2:Sigmoid, "gpu" runs only Relu.
std::unique_ptr<Graph> SigReluReluSig() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = Input(*g, "x", {4, 8});
  Node* s1 = g->AddNode("Sigmoid", {x}, 1, "s1");
  Node* r1 = g->AddNode("Relu", {s1->output(0)}, 1, "r1");
  Node* r2 = g->AddNode("Relu", {r1->output(0)}, 1, "r2");
  Node* s2 = g->AddNode("Sigmoid", {r2->output(0)}, 1, "s2");
  g->AddOutput(s2->output(0));
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

TEST(PartitionCost, CheapOpsSandwichedByFallbackStayWithNeighbours) {
  auto g = SigReluReluSig();
  auto p = PartitionGraph(*g, {Dev("gpu", {{"Relu", 0}}), Dev("cpu", {{"Relu", 0}, {"Sigmoid", 0}})},
                          PartitionOptions{});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->segments.size(), 1u) << "the two cheap Relus should not go to the gpu and back";
  EXPECT_EQ(p->segments[0].device, 1);
  auto why = ReasonOf(*g, *p);
  EXPECT_EQ(why["r1"].rfind("kept on cpu: transfer of ", 0), 0u) << why["r1"];
  EXPECT_NE(why["r1"].find("gpu"), std::string::npos) << why["r1"];
  EXPECT_EQ(why["s1"], "fallback: gpu cannot run it (gpu has no Sigmoid kernel)");
  EXPECT_EQ(p->est_transfer_bytes, 0u);
  ExpectValidSegments(*g, *p);
}

TEST(PartitionCost, GreedyOverloadKeepsPriorityOnly) {
  auto g = SigReluReluSig();
  auto p = PartitionGraph(*g, {Dev("gpu", {{"Relu", 0}}), Dev("cpu", {{"Relu", 0}, {"Sigmoid", 0}})}, false);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->segments.size(), 3u);  // cpu, gpu, cpu: the old behaviour, kept for that overload
}

// x -> m1:MatMul -> s:Sigmoid -> m2:MatMul; the gpu is far faster at MatMul
// and cannot run Sigmoid.
std::unique_ptr<Graph> MatSigMat() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = Input(*g, "x", {64, 64});
  Node* m1 = g->AddNode("MatMul", {x, Weight(*g, "w1", {64, 64})}, 1, "m1");
  Node* s = g->AddNode("Sigmoid", {m1->output(0)}, 1, "s");
  Node* m2 = g->AddNode("MatMul", {s->output(0), Weight(*g, "w2", {64, 64})}, 1, "m2");
  g->AddOutput(m2->output(0));
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

TEST(PartitionCost, UnsupportedNodeBetweenExpensiveOnesGoesToFallback) {
  auto g = MatSigMat();
  auto p = PartitionGraph(*g, {Dev("gpu", {{"MatMul", 1}}), Dev("cpu", {{"MatMul", 1e6}, {"Sigmoid", 1}})},
                          PartitionOptions{});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto dev = DeviceOf(*g, *p);
  EXPECT_EQ(dev["m1"], 0);
  EXPECT_EQ(dev["s"], 1);
  EXPECT_EQ(dev["m2"], 0);
  EXPECT_EQ(p->segments.size(), 3u);
  auto why = ReasonOf(*g, *p);
  EXPECT_EQ(why["m1"], "preferred device");
  EXPECT_NE(why["s"].find("fallback: gpu cannot run it"), std::string::npos) << why["s"];
  EXPECT_EQ(p->est_transfer_bytes, 2u * 64 * 64 * 4);
  ExpectValidSegments(*g, *p);
}

TEST(PartitionCost, ExpensiveNodeStaysWhenTransfersAreCheaperThanItsCompute) {
  // Same shape of graph, but now both can run MatMul and the sandwiched nodes
  // are the MatMuls: moving m to the cpu saves two transfers but costs 1 s.
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = Input(*g, "x", {64, 64});
  Node* s1 = g->AddNode("Sigmoid", {x}, 1, "s1");
  Node* m = g->AddNode("MatMul", {s1->output(0), Weight(*g, "w", {64, 64})}, 1, "m");
  Node* s2 = g->AddNode("Sigmoid", {m->output(0)}, 1, "s2");
  g->AddOutput(s2->output(0));
  ASSERT_TRUE(InferGraphTypes(*g).ok());
  auto p = PartitionGraph(*g, {Dev("gpu", {{"MatMul", 1}}), Dev("cpu", {{"MatMul", 1e6}, {"Sigmoid", 1}})},
                          PartitionOptions{});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(DeviceOf(*g, *p)["m"], 0);
  EXPECT_EQ(p->segments.size(), 3u);
  // With a slow enough link the same MatMul is kept on the cpu.
  PartitionOptions slow;
  slow.link_gbps = 1e-6;  // 1 KB/s
  auto q = PartitionGraph(*g, {Dev("gpu", {{"MatMul", 1}}), Dev("cpu", {{"MatMul", 1e6}, {"Sigmoid", 1}})}, slow);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(DeviceOf(*g, *q)["m"], 1);
  EXPECT_EQ(q->segments.size(), 1u);
}

TEST(PartitionCost, PriorityWinsWithoutTransfersToSave) {
  // The cpu is estimated faster, but nothing crosses devices: the preferred
  // device keeps everything (speed alone is "auto"'s job).
  auto g = MatSigMat();
  auto p = PartitionGraph(*g, {Dev("gpu", {{"MatMul", 100}, {"Sigmoid", 100}}),
                               Dev("cpu", {{"MatMul", 1}, {"Sigmoid", 1}})},
                          PartitionOptions{});
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->segments.size(), 1u);
  EXPECT_EQ(p->segments[0].device, 0);
  for (const auto& r : p->node_reason) EXPECT_EQ(r, "preferred device");
}

// Two independent branches whose nodes are interleaved in the graph's order:
// a1, b1, a2, b2, then add(a2, b2).
std::unique_ptr<Graph> Interleaved() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = Input(*g, "x", {32, 32});
  Node* a1 = g->AddNode("MatMul", {x, Weight(*g, "wa1", {32, 32})}, 1, "a1");
  Node* b1 = g->AddNode("Sigmoid", {x}, 1, "b1");
  Node* a2 = g->AddNode("MatMul", {a1->output(0), Weight(*g, "wa2", {32, 32})}, 1, "a2");
  Node* b2 = g->AddNode("Sigmoid", {b1->output(0)}, 1, "b2");
  Node* add = g->AddNode("Add", {a2->output(0), b2->output(0)}, 1, "add");
  g->AddOutput(add->output(0));
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

TEST(PartitionCost, ReorderingMakesMaximalSegments) {
  auto g = Interleaved();
  std::vector<DeviceCandidate> devs = {Dev("gpu", {{"MatMul", 1}}),
                                       Dev("cpu", {{"MatMul", 1e6}, {"Sigmoid", 1}, {"Add", 1}})};
  PartitionOptions no_reorder;
  no_reorder.reorder = false;
  auto p0 = PartitionGraph(*g, devs, no_reorder);
  ASSERT_TRUE(p0.ok());
  EXPECT_EQ(p0->segments.size(), 4u);  // gpu a1 | cpu b1 | gpu a2 | cpu b2 add
  auto p = PartitionGraph(*g, devs, PartitionOptions{});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->segments.size(), 2u);
  EXPECT_EQ(p->segments[0].device, 0);
  EXPECT_EQ(p->segments[0].nodes.size(), 2u);
  EXPECT_EQ(p->segments[1].nodes.size(), 3u);
  EXPECT_EQ(p->segments[1].nodes.back()->name(), "add");
  ExpectValidSegments(*g, *p);
}

TEST(PartitionCost, EstimatesFromDevicePeaksWhenClaimsHaveNoTime) {
  auto g = MatSigMat();
  const Node* m1 = g->FindNode("m1");
  ASSERT_NE(m1, nullptr);
  // 2*64*64*64 FLOPs at 1 GFLOP/s = 524.288 us; memory time negligible.
  EXPECT_NEAR(EstimateNodeTimeUs(*m1, 1.0, 1e9), 524.288, 0.01);
  // 3 tensors of 16 KiB at 1 GB/s = 49.152 us; compute negligible.
  EXPECT_NEAR(EstimateNodeTimeUs(*m1, 1e9, 1.0), 49.152, 0.01);
  const Node* s = g->FindNode("s");
  EXPECT_NEAR(EstimateNodeTimeUs(*s, 1.0, 1e9), 4.096, 0.01);  // one op per output element
  // Unknown peaks fall back to defaults instead of dividing by zero.
  EXPECT_GT(EstimateNodeTimeUs(*m1, 0, 0), 0);
}

TEST(PartitionCost, StrictListsEveryNodeOffThePreferredDevice) {
  auto g = SigReluReluSig();
  PartitionOptions o;
  o.strict = true;
  auto p = PartitionGraph(*g, {Dev("gpu", {{"Relu", 0}}), Dev("cpu", {{"Relu", 0}, {"Sigmoid", 0}})}, o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kUnsupported);
  const std::string& m = p.status().message();
  EXPECT_NE(m.find("strict mode: 2 node(s)"), std::string::npos) << m;
  EXPECT_NE(m.find("'s1' (Sigmoid) - gpu: gpu has no Sigmoid kernel"), std::string::npos) << m;
  EXPECT_NE(m.find("'s2' (Sigmoid)"), std::string::npos) << m;
}

TEST(PartitionCost, UnclaimedEverywhereIsListed) {
  auto g = SigReluReluSig();
  auto p = PartitionGraph(*g, {Dev("gpu", {{"Relu", 0}}), Dev("cpu", {{"Relu", 0}})}, PartitionOptions{});
  ASSERT_FALSE(p.ok());
  const std::string& m = p.status().message();
  EXPECT_NE(m.find("2 node(s) are not supported by any device"), std::string::npos) << m;
  EXPECT_NE(m.find("'s1' (Sigmoid) - gpu: gpu has no Sigmoid kernel; cpu: cpu has no Sigmoid kernel"),
            std::string::npos)
      << m;
}

TEST(PartitionCost, PlacementOverrideForcesASplit) {
  auto g = Interleaved();
  std::vector<DeviceCandidate> devs = {Dev("cpu", {{"MatMul", 1}, {"Sigmoid", 1}, {"Add", 1}}),
                                       Dev("gpu", {{"MatMul", 1}, {"Sigmoid", 1}, {"Add", 1}})};
  PartitionOptions o;
  o.placement = {{"MatMul", "gpu"}, {"b2", "cpu"}, {"nothing_like_this", "gpu"}};
  auto p = PartitionGraph(*g, devs, o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto dev = DeviceOf(*g, *p);
  EXPECT_EQ(dev["a1"], 1);
  EXPECT_EQ(dev["a2"], 1);
  EXPECT_EQ(dev["b1"], 0);
  EXPECT_EQ(dev["add"], 0);
  auto why = ReasonOf(*g, *p);
  EXPECT_EQ(why["a1"], "placement override: 'MatMul' -> gpu");
  EXPECT_EQ(why["b2"], "placement override: 'b2' -> cpu");
  ASSERT_EQ(p->notes.size(), 1u);
  EXPECT_NE(p->notes[0].find("nothing_like_this"), std::string::npos);
  EXPECT_EQ(p->segments.size(), 2u);
  ExpectValidSegments(*g, *p);
}

TEST(PartitionCost, PlacementOverrideErrors) {
  auto g = Interleaved();
  std::vector<DeviceCandidate> devs = {Dev("cpu", {{"MatMul", 1}, {"Sigmoid", 1}, {"Add", 1}}),
                                       Dev("gpu", {{"MatMul", 1}})};
  PartitionOptions unknown;
  unknown.placement = {{"a1", "tpu:3"}};
  auto p = PartitionGraph(*g, devs, unknown);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("'tpu:3' is not one of the session's devices (cpu, gpu)"), std::string::npos)
      << p.status().message();
  PartitionOptions cannot;
  cannot.placement = {{"Sigmoid", "gpu"}};
  p = PartitionGraph(*g, devs, cannot);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(p.status().message().find("'b1' (Sigmoid) - placement 'Sigmoid' forces it onto gpu, which cannot run it: "
                                      "gpu has no Sigmoid kernel"),
            std::string::npos)
      << p.status().message();
  EXPECT_NE(p.status().message().find("'b2' (Sigmoid)"), std::string::npos);
}

TEST(PartitionCost, ForcedNodesAreNeverMovedByTheCostModel) {
  auto g = SigReluReluSig();
  PartitionOptions o;
  o.placement = {{"r1", "gpu"}};
  auto p = PartitionGraph(*g, {Dev("gpu", {{"Relu", 0}}), Dev("cpu", {{"Relu", 0}, {"Sigmoid", 0}})}, o);
  ASSERT_TRUE(p.ok());
  auto dev = DeviceOf(*g, *p);
  EXPECT_EQ(dev["r1"], 0);
  ExpectValidSegments(*g, *p);
}

}  // namespace
}  // namespace tessera
