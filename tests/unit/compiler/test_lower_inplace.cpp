// In-place buffers in the plan (compiler/lower.cpp): tessera.FusedConv writes
// Y over its residual Z (input 3) only when Z dies at the node and has Y's
// type and the same non-plain layout; the CPU backend then computes the
// numbers of an unfused, unaliased run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
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

Node* Conv1x1(Graph& g, Value* x, int64_t m, int64_t c, const std::string& name, uint32_t seed) {
  return g.AddNode("Conv", {x, Weight(g, name + "_w", {m, c, 1, 1}, seed)}, 1, name);
}

Node* FusedConv(Graph& g, Value* x, Value* z, int64_t m, int64_t c, const std::string& name, uint32_t seed) {
  Node* n = g.AddNode("FusedConv", {x, Weight(g, name + "_w", {m, c, 1, 1}, seed), nullptr, z}, 1, name, "tessera");
  n->set_attr("has_residual", Attribute::Int(1));
  n->set_attr("activation", Attribute::String("Relu"));
  return n;
}

// A fake device: Conv/FusedConv outputs prefer `layout` (the plain size in
// bytes); a conv accepts X and Z in any preferred layout. An empty layout
// asks for nothing.
LayoutChooser Chooser(const std::string& layout) {
  return [layout](const tsr_graph_view& v, std::vector<tsr_layout_choice>* vals, std::vector<uint8_t>* acc) {
    size_t k = 0;
    for (uint32_t i = 0; i < v.num_nodes; ++i) {
      const tsr_node_view& n = v.nodes[i];
      const std::string op = n.op_type;
      if (!layout.empty() && (op == "Conv" || op == "FusedConv")) {
        const tsr_value_view& y = v.values[n.outputs[0]];
        int64_t numel = 1;
        for (int32_t d = 0; d < y.rank; ++d) numel *= y.dims[d];
        std::snprintf((*vals)[n.outputs[0]].layout, sizeof(tsr_layout_choice::layout), "%s", layout.c_str());
        (*vals)[n.outputs[0]].bytes = static_cast<uint64_t>(numel) * 4;
        (*acc)[k] = 1;
        if (n.num_inputs > 3) (*acc)[k + 3] = 1;
      }
      k += n.num_inputs;
    }
    return Status::Ok();
  };
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

// X -> a -> A ; A -> b -> B ; f = FusedConv(B, Z=A) -> Y ; Y -> c -> out.
// `z_read_later`: A is also read by a conv after f (so A outlives f).
// `z_is_x`: f reads A as both X and Z.
std::unique_ptr<Graph> Chain(bool z_read_later = false, bool z_is_x = false) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("X", TensorType{DType::kF32, Shape::FromInts({1, 16, 4, 4})});
  g->AddInput(x);
  Node* a = Conv1x1(*g, x, 16, 16, "a", 1);
  Node* b = Conv1x1(*g, a->output(0), 16, 16, "b", 2);
  Node* f = FusedConv(*g, z_is_x ? a->output(0) : b->output(0), a->output(0), 16, 16, "f", 3);
  Node* c = Conv1x1(*g, f->output(0), 16, 16, "c", 4);
  g->AddOutput(c->output(0));
  if (z_read_later) {
    Node* d = Conv1x1(*g, a->output(0), 16, 16, "d", 5);
    g->AddOutput(d->output(0));
  }
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

struct Buffers {
  const PlanBuffer* z = nullptr;
  const PlanBuffer* y = nullptr;
};

// Lowers `g` with layouts from `chooser`; returns the plan (and Z/Y buffers).
Result<Plan> Lower(std::unique_ptr<Graph> g, const LayoutChooser& chooser) {
  Partition part = OneSegment(*g);
  TSR_ASSIGN_OR_RETURN(LayoutStats st, AssignLayouts(*g, part, {chooser}));
  (void)st;
  return LowerToPlan(std::move(g), part, {{"cpu", "cpu", 0}}, 0);
}

Buffers Find(const Plan& p) {
  Buffers b;
  const Node* f = p.graph->FindNode("f");
  if (!f) return b;
  b.z = p.FindBuffer(f->input(3)->name(), 0);
  b.y = p.FindBuffer(f->output(0)->name(), 0);
  return b;
}

TEST(LowerInPlace, FusedConvWritesOverDyingResidualInTheSameLayout) {
  auto plan = Lower(Chain(), Chooser("nChw16c"));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  Buffers b = Find(*plan);
  ASSERT_TRUE(b.z && b.y);
  EXPECT_EQ(b.z->layout, "nChw16c");
  EXPECT_EQ(b.y->layout, "nChw16c");
  EXPECT_EQ(b.z->offset, b.y->offset);
  // Without the alias Z and Y overlap in time (both live at f): the arena
  // would need a third 1 KiB slot.
  auto plain = Lower(Chain(), Chooser(""));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_LT(plan->devices[0].arena_bytes, plain->devices[0].arena_bytes);
}

TEST(LowerInPlace, PlainLayoutsKeepSeparateBuffers) {
  // Plain layouts never alias (the CPU's plain f32 1x1 path adds Z after the
  // convolution wrote Y).
  auto plan = Lower(Chain(), Chooser(""));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  Buffers b = Find(*plan);
  ASSERT_TRUE(b.z && b.y);
  EXPECT_EQ(b.z->layout, "");
  EXPECT_NE(b.z->offset, b.y->offset);
}

TEST(LowerInPlace, ResidualStillReadLaterKeepsItsBuffer) {
  auto plan = Lower(Chain(/*z_read_later=*/true), Chooser("nChw16c"));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  Buffers b = Find(*plan);
  ASSERT_TRUE(b.z && b.y);
  EXPECT_EQ(b.z->layout, "nChw16c");
  EXPECT_NE(b.z->offset, b.y->offset);
}

TEST(LowerInPlace, ResidualThatIsAlsoXKeepsItsBuffer) {
  auto plan = Lower(Chain(false, /*z_is_x=*/true), Chooser("nChw16c"));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  Buffers b = Find(*plan);
  ASSERT_TRUE(b.z && b.y);
  EXPECT_NE(b.z->offset, b.y->offset);
}

TEST(LowerInPlace, DifferentLayoutsKeepSeparateBuffers) {
  // Z's producer writes nhwc, f writes nChw16c.
  LayoutChooser mixed = [](const tsr_graph_view& v, std::vector<tsr_layout_choice>* vals, std::vector<uint8_t>* acc) {
    TSR_RETURN_IF_ERROR(Chooser("nChw16c")(v, vals, acc));
    for (uint32_t i = 0; i < v.num_nodes; ++i)
      if (std::string(v.nodes[i].name) == "a")
        std::snprintf((*vals)[v.nodes[i].outputs[0]].layout, sizeof(tsr_layout_choice::layout), "nhwc");
    return Status::Ok();
  };
  auto plan = Lower(Chain(), mixed);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  Buffers b = Find(*plan);
  ASSERT_TRUE(b.z && b.y);
  EXPECT_EQ(b.z->layout, "nhwc");
  EXPECT_EQ(b.y->layout, "nChw16c");
  EXPECT_NE(b.z->offset, b.y->offset);
}

TEST(LowerInPlace, FusedMatMulNeverAliasesItsResidual) {
  // FusedMatMul with a dying residual in the output's non-plain layout is
  // excluded by op (CUDA's GEMM epilogue reads Z after writing Y).
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("X", TensorType{DType::kF32, Shape::FromInts({4, 8})});
  g->AddInput(x);
  Node* r = g->AddNode("Relu", {x}, 1, "r");
  Node* q = g->AddNode("Relu", {r->output(0)}, 1, "q");
  Node* mm = g->AddNode("FusedMatMul", {q->output(0), Weight(*g, "w", {8, 8}, 7), nullptr, r->output(0)}, 1, "mm",
                        "tessera");
  mm->set_attr("has_residual", Attribute::Int(1));
  Node* r2 = g->AddNode("Relu", {mm->output(0)}, 1, "r2");
  g->AddOutput(r2->output(0));
  ASSERT_TRUE(InferGraphTypes(*g).ok());
  LayoutChooser all = [](const tsr_graph_view& v, std::vector<tsr_layout_choice>* vals, std::vector<uint8_t>* acc) {
    size_t k = 0;
    for (uint32_t i = 0; i < v.num_nodes; ++i) {
      const tsr_node_view& n = v.nodes[i];
      std::snprintf((*vals)[n.outputs[0]].layout, sizeof(tsr_layout_choice::layout), "blk");
      for (uint32_t j = 0; j < n.num_inputs; ++j) (*acc)[k + j] = 1;
      k += n.num_inputs;
    }
    return Status::Ok();
  };
  auto plan = Lower(std::move(g), all);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const Node* n = plan->graph->FindNode("mm");
  ASSERT_NE(n, nullptr);
  const PlanBuffer* z = plan->FindBuffer(n->input(3)->name(), 0);
  const PlanBuffer* y = plan->FindBuffer(n->output(0)->name(), 0);
  ASSERT_TRUE(z && y);
  EXPECT_EQ(z->layout, "blk");
  EXPECT_EQ(y->layout, "blk");
  EXPECT_NE(z->offset, y->offset);
}

// ResNet-style identity blocks on the CPU backend: A -> 1x1 -> relu -> 3x3
// -> relu -> 1x1 (+ A) -> relu, twice, then a global average pool. At O2 the
// last conv of each block is a FusedConv whose Y shares Z's buffer.
std::unique_ptr<Graph> IdentityBlocks() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("X", TensorType{DType::kF32, Shape::FromInts({2, 3, 12, 12})});
  g->AddInput(x);
  Node* stem = g->AddNode("Conv", {x, Weight(*g, "w0", {32, 3, 3, 3}, 30)}, 1, "stem");
  stem->set_attr("pads", Attribute::Ints({1, 1, 1, 1}));
  Value* a = g->AddNode("Relu", {stem->output(0)}, 1, "r0")->output(0);
  for (int blk = 0; blk < 2; ++blk) {
    const std::string p = "b" + std::to_string(blk) + "_";
    Node* c1 = Conv1x1(*g, a, 16, 32, p + "c1", 31 + 3 * blk);
    Node* r1 = g->AddNode("Relu", {c1->output(0)}, 1, p + "r1");
    Node* c2 = g->AddNode("Conv", {r1->output(0), Weight(*g, p + "w2", {16, 16, 3, 3}, 32 + 3 * blk)}, 1, p + "c2");
    c2->set_attr("pads", Attribute::Ints({1, 1, 1, 1}));
    Node* r2 = g->AddNode("Relu", {c2->output(0)}, 1, p + "r2");
    Node* c3 = Conv1x1(*g, r2->output(0), 32, 16, p + "c3", 33 + 3 * blk);
    Node* add = g->AddNode("Add", {c3->output(0), a}, 1, p + "add");
    a = g->AddNode("Relu", {add->output(0)}, 1, p + "r3")->output(0);
  }
  Node* gap = g->AddNode("GlobalAveragePool", {a}, 1, "gap");
  g->AddOutput(gap->output(0));
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

TEST(LowerInPlace, CpuIdentityBlocksAliasResidualAndComputeTheSameNumbers) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  ExpectSameOutputsAtO0And(2, IdentityBlocks, 1e-4f, 1e-4f);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("tessera_inplace_" + std::to_string(::getpid()) + ".tplan")).string();
  {
    SessionOptions o;
    o.opt_level = 2;
    auto s = Session::FromGraph(IdentityBlocks(), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    Status st = (*s)->SavePlan(path, false);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  auto lp = LoadPlanFile(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(lp.ok()) << lp.status().ToString();
  const Plan& plan = lp->plan;
  int residual_convs = 0, aliased = 0;
  for (const Node* n : plan.graph->nodes()) {
    if (n->QualifiedOp() != "tessera.FusedConv" || n->GetInt("has_residual", 0) == 0) continue;
    ++residual_convs;
    const PlanBuffer* z = plan.FindBuffer(n->input(3)->name(), 0);
    const PlanBuffer* y = plan.FindBuffer(n->output(0)->name(), 0);
    ASSERT_TRUE(z && y) << n->name();
    if (!z->layout.empty() && z->layout == y->layout) {
      EXPECT_EQ(z->offset, y->offset) << n->name();
      ++aliased;
    }
  }
  EXPECT_EQ(residual_convs, 2);
  // The first block's Z (the stem's output) and Y share a layout; the second
  // block's Y feeds only the global pool, so it is written plain.
  EXPECT_GE(aliased, 1);
}

}  // namespace
}  // namespace tessera::testing
