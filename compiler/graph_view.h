// Plain-C views (tsr_graph_view, backend.h) of a graph or of a subset of its
// nodes, handed to backends for `claim` and `compile`.
//
// Lifetime: a GraphView borrows names, attributes and constant data from the
// Graph; it must not outlive the Graph, and the Graph must not be mutated while
// the view is in use. Constant data pointers stay valid as long as the Graph's
// constant tensors (which the runtime keeps alive for its executables).
#pragma once

#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "graph/graph.h"
#include "tessera/backend.h"

namespace tessera {

class GraphView {
 public:
  const tsr_graph_view* view() const { return &view_; }
  // The graph value behind view value index i.
  const std::vector<const Value*>& values() const { return values_; }
  const std::vector<const Node*>& nodes() const { return nodes_; }
  // View index of a value, or -1.
  int IndexOf(const Value* v) const;
  std::vector<const Value*> InputValues() const;
  std::vector<const Value*> OutputValues() const;

  // A view of `nodes` (topologically ordered) of their graph. Values are every
  // value the nodes use or produce. Inputs are used-but-not-produced
  // non-constant values; outputs are produced values that are used outside the
  // subset, are graph outputs, or are listed in `extra_outputs`.
  static std::unique_ptr<GraphView> Build(const std::vector<const Node*>& nodes,
                                          const std::vector<const Value*>& extra_outputs = {});
  // A view of a whole graph (inputs/outputs = the graph's).
  static std::unique_ptr<GraphView> BuildWhole(const Graph& g);

 private:
  void Finish(const std::vector<const Value*>& inputs, const std::vector<const Value*>& outputs);
  int AddValue(const Value* v);
  void AddNode(const Node* n);

  tsr_graph_view view_{};
  std::vector<const Value*> values_;
  std::vector<const Node*> nodes_;
  std::unordered_map<const Value*, int> index_;
  std::vector<tsr_value_view> value_views_;
  std::vector<tsr_node_view> node_views_;
  std::deque<std::vector<int64_t>> dims_;
  std::deque<std::vector<int32_t>> ids_;
  std::deque<std::vector<tsr_attr_view>> attrs_;
  std::deque<std::vector<const char*>> strings_;
  std::deque<tsr_tensor_view> tensors_;
  std::deque<std::unique_ptr<GraphView>> subviews_;
  std::vector<int32_t> inputs_, outputs_;
};

}  // namespace tessera
