#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "compiler/lower.h"
#include "compiler/partition.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

// A fake device that claims the ops in `ops`.
DeviceCandidate FakeDevice(const std::string& role, std::vector<std::string> ops) {
  return {role, [ops, role](const tsr_graph_view& v, std::vector<tsr_claim>* claims) -> Status {
            for (uint32_t i = 0; i < v.num_nodes; ++i) {
              bool ok = std::find(ops.begin(), ops.end(), v.nodes[i].op_type) != ops.end();
              (*claims)[i].supported = ok;
              if (!ok) std::snprintf((*claims)[i].reason, sizeof((*claims)[i].reason), "%s has no %s kernel",
                                     role.c_str(), v.nodes[i].op_type);
            }
            return Status::Ok();
          }};
}

std::unique_ptr<Graph> Chain() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({4, 8})});
  g->AddInput(x);
  Node* a = g->AddNode("Relu", {x}, 1, "relu1");
  Node* b = g->AddNode("Sigmoid", {a->output(0)}, 1, "sig");
  Node* c = g->AddNode("Relu", {b->output(0)}, 1, "relu2");
  g->AddOutput(c->output(0));
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

TEST(Partition, SingleDeviceOneSegment) {
  auto g = Chain();
  auto p = PartitionGraph(*g, {FakeDevice("cpu", {"Relu", "Sigmoid"})}, false);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->segments.size(), 1u);
  EXPECT_EQ(p->segments[0].nodes.size(), 3u);
}

TEST(Partition, FallbackMakesSegmentsAndTransfers) {
  auto g = Chain();
  auto p = PartitionGraph(*g, {FakeDevice("gpu", {"Relu"}), FakeDevice("cpu", {"Relu", "Sigmoid"})}, false);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->segments.size(), 3u);
  EXPECT_EQ(p->segments[1].device, 1);
  EXPECT_NE(p->node_reason[1].find("fallback"), std::string::npos);
  auto plan = LowerToPlan(std::move(g), *p, {{"gpu", "gpu", 0}, {"cpu", "cpu", 0}}, 0);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->transfers.size(), 2u);  // relu1 out gpu->cpu, sig out cpu->gpu
  EXPECT_EQ(plan->steps.size(), 5u);
  // Every value used on a device has a buffer there.
  EXPECT_NE(plan->FindBuffer("x", 0), nullptr);
  EXPECT_NE(plan->FindBuffer(plan->graph->FindNode("relu1")->output(0)->name(), 1), nullptr);
}

TEST(Partition, UnclaimedNodesAreAllListed) {
  auto g = Chain();
  auto p = PartitionGraph(*g, {FakeDevice("cpu", {"Sigmoid"})}, false);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(p.status().message().find("'relu1' (Relu)"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find("'relu2' (Relu)"), std::string::npos);
  EXPECT_NE(p.status().message().find("cpu has no Relu kernel"), std::string::npos);
}

TEST(Partition, StrictModeRefusesFallback) {
  auto g = Chain();
  auto p = PartitionGraph(*g, {FakeDevice("gpu", {"Relu"}), FakeDevice("cpu", {"Relu", "Sigmoid"})}, true);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("strict"), std::string::npos);
  EXPECT_NE(p.status().message().find("'sig' (Sigmoid)"), std::string::npos);
}

TEST(Lower, ArenaCapIsEnforced) {
  auto g = Chain();
  auto p = PartitionGraph(*g, {FakeDevice("cpu", {"Relu", "Sigmoid"})}, false);
  ASSERT_TRUE(p.ok());
  auto plan = LowerToPlan(std::move(g), *p, {{"cpu", "cpu", 0}}, 100);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(plan.status().message().find("max_alloc_bytes"), std::string::npos);
}

TEST(Lower, ChainReusesMemory) {
  auto g = Chain();
  auto p = PartitionGraph(*g, {FakeDevice("cpu", {"Relu", "Sigmoid"})}, false);
  auto plan = LowerToPlan(std::move(g), *p, {{"cpu", "cpu", 0}}, 0);
  ASSERT_TRUE(plan.ok());
  // x -> relu1 -> sig -> relu2: each input dies at the elementwise node that
  // reads it, so all four values share one 128-byte buffer (in-place).
  EXPECT_EQ(plan->devices[0].arena_bytes, 128u);
  uint64_t off = plan->FindBuffer("x", 0)->offset;
  for (const auto& b : plan->buffers) EXPECT_EQ(b.offset, off) << b.value;
}

TEST(Lower, NoInPlaceWhenTheInputIsStillNeeded) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({4, 8})});
  g->AddInput(x);
  Node* a = g->AddNode("Relu", {x}, 1, "relu");
  Node* b = g->AddNode("Add", {a->output(0), x}, 1, "add");  // x still live at relu
  g->AddOutput(b->output(0));
  ASSERT_TRUE(InferGraphTypes(*g).ok());
  auto p = PartitionGraph(*g, {FakeDevice("cpu", {"Relu", "Add"})}, false);
  ASSERT_TRUE(p.ok());
  auto plan = LowerToPlan(std::move(g), *p, {{"cpu", "cpu", 0}}, 0);
  ASSERT_TRUE(plan.ok());
  const std::string relu_out = plan->graph->FindNode("relu")->output(0)->name();
  EXPECT_NE(plan->FindBuffer("x", 0)->offset, plan->FindBuffer(relu_out, 0)->offset);
  // The Add may reuse either dying input; its output overlaps exactly one of them.
  EXPECT_EQ(plan->devices[0].arena_bytes, 256u);
}

}  // namespace
}  // namespace tessera
