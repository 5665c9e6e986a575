#include "compiler/assign_layouts.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "compiler/graph_view.h"

namespace tessera {
namespace {

struct Use {
  Node* node;
  size_t slot;
};

// Sets entry `index` of a strings attribute sized `count` (created with "").
void SetLayoutEntry(Node* n, const char* attr, size_t count, size_t index, const std::string& layout) {
  std::vector<std::string> v;
  if (const Attribute* a = n->attr(attr); a && a->type == AttrType::kStrings) v = a->strings;
  v.resize(std::max(v.size(), count));
  v[index] = layout;
  n->set_attr(attr, Attribute::Strings(std::move(v)));
}

void SetBytesEntry(Node* n, size_t count, size_t index, uint64_t bytes) {
  std::vector<int64_t> v;
  if (const Attribute* a = n->attr(kOutLayoutBytesAttr); a && a->type == AttrType::kInts) v = a->ints;
  v.resize(std::max(v.size(), count));
  v[index] = static_cast<int64_t>(bytes);
  n->set_attr(kOutLayoutBytesAttr, Attribute::Ints(std::move(v)));
}

}  // namespace

std::string OutputLayout(const Node* producer, int index) {
  if (!producer || index < 0) return "";
  const Attribute* a = producer->attr(kOutLayoutsAttr);
  if (!a || a->type != AttrType::kStrings || static_cast<size_t>(index) >= a->strings.size()) return "";
  return a->strings[static_cast<size_t>(index)];
}

uint64_t OutputLayoutBytes(const Node* producer, int index) {
  if (!producer || index < 0) return 0;
  const Attribute* a = producer->attr(kOutLayoutBytesAttr);
  if (!a || a->type != AttrType::kInts || static_cast<size_t>(index) >= a->ints.size()) return 0;
  return static_cast<uint64_t>(std::max<int64_t>(0, a->ints[static_cast<size_t>(index)]));
}

Result<LayoutStats> AssignLayouts(Graph& g, Partition& part, const std::vector<LayoutChooser>& choosers) {
  LayoutStats st;
  st.nodes_before = static_cast<int64_t>(g.num_nodes());
  st.nodes_after = st.nodes_before;
  // Every use of every value (node inputs), built once; rewiring below only
  // moves uses onto fresh plain values, which are never candidates.
  std::unordered_map<const Value*, std::vector<Use>> uses;
  for (Node* n : g.nodes())
    for (size_t k = 0; k < n->num_inputs(); ++k)
      if (n->input(k)) uses[n->input(k)].push_back({n, k});
  const std::unordered_set<const Value*> captured = g.SubgraphCaptures();
  bool inserted = false;

  for (auto& seg : part.segments) {
    if (seg.device < 0 || static_cast<size_t>(seg.device) >= choosers.size() || !choosers[seg.device]) continue;
    if (seg.nodes.empty()) continue;
    std::unordered_set<const Node*> in_seg(seg.nodes.begin(), seg.nodes.end());
    auto view = GraphView::Build(seg.nodes);
    const tsr_graph_view& gv = *view->view();
    std::vector<tsr_layout_choice> choice(gv.num_values);
    for (auto& c : choice) std::memset(&c, 0, sizeof(c));
    size_t total_inputs = 0;
    std::vector<size_t> first_input(gv.num_nodes);
    for (uint32_t i = 0; i < gv.num_nodes; ++i) {
      first_input[i] = total_inputs;
      total_inputs += gv.nodes[i].num_inputs;
    }
    std::vector<uint8_t> accepts(total_inputs, 0);
    TSR_RETURN_IF_ERROR(choosers[seg.device](gv, &choice, &accepts));
    if (choice.size() != gv.num_values || accepts.size() != total_inputs)
      return Internal("layout chooser resized its answer arrays");
    std::unordered_map<const Node*, size_t> node_pos;
    for (size_t i = 0; i < view->nodes().size(); ++i) node_pos[view->nodes()[i]] = i;

    std::vector<std::pair<const Node*, Node*>> converts;  // (producer, convert node)
    for (uint32_t vi = 0; vi < gv.num_values; ++vi) {
      char buf[sizeof(choice[vi].layout) + 1] = {};
      std::memcpy(buf, choice[vi].layout, sizeof(choice[vi].layout));
      const std::string layout = buf;
      if (layout.empty()) continue;
      Value* v = const_cast<Value*>(view->values()[vi]);
      Node* prod = v->producer();
      if (!prod || v->is_constant() || v->is_graph_input() || v->is_graph_output() || !in_seg.count(prod) ||
          captured.count(v))
        continue;
      std::vector<Use> accepting, plain;
      for (const Use& u : uses[v]) {
        auto it = node_pos.find(u.node);
        bool ok = it != node_pos.end() && in_seg.count(u.node) && accepts[first_input[it->second] + u.slot] != 0;
        (ok ? accepting : plain).push_back(u);
      }
      if (accepting.empty()) continue;
      const size_t out_index = static_cast<size_t>(v->producer_output());
      SetLayoutEntry(prod, kOutLayoutsAttr, prod->num_outputs(), out_index, layout);
      SetBytesEntry(prod, prod->num_outputs(), out_index, choice[vi].bytes);
      for (const Use& u : accepting) SetLayoutEntry(u.node, kInLayoutsAttr, u.node->num_inputs(), u.slot, layout);
      ++st.non_plain_values;
      if (plain.empty()) continue;
      Node* cv = g.AddNode("LayoutConvert", {v}, 1, g.UniqueName(v->name() + "_to_plain"), "tessera");
      cv->set_attr("from", Attribute::String(layout));
      cv->set_attr("to", Attribute::String(""));
      SetLayoutEntry(cv, kInLayoutsAttr, 1, 0, layout);
      Value* pv = cv->output(0);
      pv->set_type(v->type());
      for (const Use& u : plain) u.node->set_input(u.slot, pv);
      uses[v] = accepting;
      uses[v].push_back({cv, 0});
      converts.push_back({prod, cv});
      ++st.conversions;
      inserted = true;
    }
    // Each convert runs right after its producer.
    for (const auto& [prod, cv] : converts) {
      auto it = std::find(seg.nodes.begin(), seg.nodes.end(), prod);
      seg.nodes.insert(it == seg.nodes.end() ? it : it + 1, cv);
    }
  }
  if (inserted) TSR_RETURN_IF_ERROR(g.TopoSort());
  st.nodes_after = static_cast<int64_t>(g.num_nodes());
  return st;
}

}  // namespace tessera
