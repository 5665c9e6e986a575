// The per-device kernel cache: keys tell apart everything a kernel depends
// on, and entries live exactly as long as some executable holds them.
#include <gtest/gtest.h>

#include "backends/cpu/kernel_cache.h"

namespace tessera::cpu {
namespace {

// A one-node view: y = Op(x[, c]) with shapes and an optional constant input.
struct View {
  std::vector<int64_t> xdims, ydims;
  std::vector<float> cdata;
  std::vector<tsr_value_view> values;
  std::vector<int32_t> ins, outs;
  std::vector<int64_t> perm;
  std::vector<tsr_attr_view> attrs;
  tsr_node_view node{};
  tsr_graph_view graph{};

  View(std::vector<int64_t> x, std::vector<int64_t> y, bool with_const, const void* const_ptr = nullptr)
      : xdims(std::move(x)), ydims(std::move(y)) {
    values.push_back(tsr_value_view{});
    values.back().dtype = TSR_DTYPE_F32;
    values.back().rank = static_cast<int32_t>(xdims.size());
    values.back().dims = xdims.data();
    ins.push_back(0);
    if (with_const) {
      cdata = {1.f, 2.f};
      tsr_value_view c{};
      c.dtype = TSR_DTYPE_F32;
      c.rank = 0;
      c.flags = TSR_VALUE_CONSTANT;
      c.const_data = const_ptr ? const_ptr : cdata.data();
      c.const_bytes = 4;
      values.push_back(c);
      ins.push_back(1);
    }
    tsr_value_view yv{};
    yv.dtype = TSR_DTYPE_F32;
    yv.rank = static_cast<int32_t>(ydims.size());
    yv.dims = ydims.data();
    values.push_back(yv);
    outs.push_back(static_cast<int32_t>(values.size() - 1));
    node.name = "n";
    node.domain = "";
    node.op_type = "Add";
    node.opset = 17;
    node.num_inputs = static_cast<uint32_t>(ins.size());
    node.inputs = ins.data();
    node.num_outputs = 1;
    node.outputs = outs.data();
    graph.struct_size = sizeof graph;
    graph.num_values = static_cast<uint32_t>(values.size());
    graph.values = values.data();
    graph.num_nodes = 1;
    graph.nodes = &node;
  }
  void SetPerm(std::vector<int64_t> p) {
    perm = std::move(p);
    tsr_attr_view a{};
    a.name = "perm";
    a.type = TSR_ATTR_INTS;
    a.count = perm.size();
    a.ints = perm.data();
    attrs = {a};
    node.num_attrs = 1;
    node.attrs = attrs.data();
  }
  std::string Key(int threads = 2, const std::string& precision = "f32") const {
    return KernelCache::Key(node, graph, threads, precision);
  }
};

TEST(KernelCache, KeysSeparateWhatKernelsDependOn) {
  View a({2, 3}, {2, 3}, false);
  EXPECT_EQ(a.Key(), View({2, 3}, {2, 3}, false).Key());
  EXPECT_NE(a.Key(), View({4, 3}, {4, 3}, false).Key());  // another shape
  EXPECT_NE(a.Key(), a.Key(1));                            // another thread count
  EXPECT_NE(a.Key(), a.Key(2, "bf16"));                    // another precision
  View b({2, 3}, {2, 3}, false);
  b.node.op_type = "Sub";
  EXPECT_NE(a.Key(), b.Key());
  View c({2, 3}, {2, 3}, false);
  c.node.name = "other";
  EXPECT_NE(a.Key(), c.Key());
  View p1({2, 3}, {3, 2}, false), p2({2, 3}, {3, 2}, false);
  p1.SetPerm({1, 0});
  p2.SetPerm({0, 1});
  EXPECT_NE(p1.Key(), p2.Key());  // attribute values
  // Constants are told apart by the tensor they are, not by equal bytes.
  float k1 = 1, k2 = 1;
  EXPECT_NE(View({2}, {2}, true, &k1).Key(), View({2}, {2}, true, &k2).Key());
  EXPECT_EQ(View({2}, {2}, true, &k1).Key(), View({2}, {2}, true, &k1).Key());
}

TEST(KernelCache, NodesWithSubgraphsAreNotCached) {
  View a({2}, {2}, false);
  tsr_graph_view body{};
  tsr_attr_view g{};
  g.name = "then_branch";
  g.type = TSR_ATTR_GRAPH;
  g.graph = &body;
  a.attrs = {g};
  a.node.num_attrs = 1;
  a.node.attrs = a.attrs.data();
  EXPECT_EQ(a.Key(), "");
}

TEST(KernelCache, EntriesLiveWhileAnExecutableHoldsThem) {
  KernelCache cache;
  auto k = std::make_shared<const CachedKernel>();
  cache.Put("key", k);
  EXPECT_EQ(cache.Find("key"), k);
  EXPECT_EQ(cache.hits(), 1);
  EXPECT_EQ(cache.Find("other"), nullptr);
  k.reset();  // the last holder is gone
  EXPECT_EQ(cache.Find("key"), nullptr);
  EXPECT_EQ(cache.hits(), 1);
}

}  // namespace
}  // namespace tessera::cpu
