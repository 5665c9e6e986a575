#include "compiler/graph_view.h"

#include <unordered_set>

namespace tessera {

int GraphView::IndexOf(const Value* v) const {
  auto it = index_.find(v);
  return it == index_.end() ? -1 : it->second;
}

std::vector<const Value*> GraphView::InputValues() const {
  std::vector<const Value*> r;
  for (int32_t i : inputs_) r.push_back(values_[i]);
  return r;
}

std::vector<const Value*> GraphView::OutputValues() const {
  std::vector<const Value*> r;
  for (int32_t i : outputs_) r.push_back(values_[i]);
  return r;
}

int GraphView::AddValue(const Value* v) {
  auto it = index_.find(v);
  if (it != index_.end()) return it->second;
  int idx = static_cast<int>(values_.size());
  index_[v] = idx;
  values_.push_back(v);
  tsr_value_view vv{};
  vv.name = v->name().c_str();
  vv.dtype = static_cast<int32_t>(v->dtype());
  if (v->shape().has_rank()) {
    auto& d = dims_.emplace_back();
    for (const Dim& dim : v->shape().dims()) d.push_back(dim.is_known() ? dim.value : -1);
    vv.rank = static_cast<int32_t>(d.size());
    vv.dims = d.data();
  } else {
    vv.rank = -1;
    vv.dims = nullptr;
  }
  if (const Tensor* t = v->constant()) {
    vv.const_data = t->raw();
    vv.const_bytes = t->nbytes();
    vv.flags |= TSR_VALUE_CONSTANT;
  }
  value_views_.push_back(vv);
  return idx;
}

void GraphView::AddNode(const Node* n) {
  nodes_.push_back(n);
  tsr_node_view nv{};
  nv.name = n->name().c_str();
  nv.domain = n->domain().c_str();
  nv.op_type = n->op_type().c_str();
  nv.opset = n->owner() ? n->owner()->OpsetFor(n->domain()) : 0;
  auto& ins = ids_.emplace_back();
  for (Value* v : n->inputs()) ins.push_back(v ? AddValue(v) : -1);
  auto& outs = ids_.emplace_back();
  for (Value* v : n->outputs()) outs.push_back(v ? AddValue(v) : -1);
  nv.num_inputs = static_cast<uint32_t>(ins.size());
  nv.inputs = ins.data();
  nv.num_outputs = static_cast<uint32_t>(outs.size());
  nv.outputs = outs.data();
  auto& attrs = attrs_.emplace_back();
  for (const auto& [name, a] : n->attrs()) {
    tsr_attr_view av{};
    av.name = name.c_str();
    av.type = static_cast<int32_t>(a.type);
    av.i = a.i;
    av.f = a.f;
    av.s = a.s.data();
    av.s_len = a.s.size();
    switch (a.type) {
      case AttrType::kInts: av.ints = a.ints.data(); av.count = a.ints.size(); break;
      case AttrType::kFloats: av.floats = a.floats.data(); av.count = a.floats.size(); break;
      case AttrType::kStrings: {
        auto& ss = strings_.emplace_back();
        for (const auto& s : a.strings) ss.push_back(s.c_str());
        av.strings = ss.data();
        av.count = ss.size();
        break;
      }
      case AttrType::kTensor: {
        auto& d = dims_.emplace_back(a.t.dims());
        tsr_tensor_view tv{};
        tv.dtype = static_cast<int32_t>(a.t.dtype());
        tv.rank = static_cast<int32_t>(d.size());
        tv.dims = d.data();
        tv.data = a.t.raw();
        tv.nbytes = a.t.nbytes();
        tensors_.push_back(tv);
        av.tensor = &tensors_.back();
        break;
      }
      case AttrType::kGraph:
        if (a.g) {
          subviews_.push_back(BuildWhole(*a.g));
          av.graph = subviews_.back()->view();
        }
        break;
      default: break;
    }
    attrs.push_back(av);
  }
  nv.num_attrs = static_cast<uint32_t>(attrs.size());
  nv.attrs = attrs.data();
  node_views_.push_back(nv);
}

void GraphView::Finish(const std::vector<const Value*>& inputs, const std::vector<const Value*>& outputs) {
  for (const Value* v : inputs) {
    int i = AddValue(v);
    inputs_.push_back(i);
    value_views_[i].flags |= TSR_VALUE_GRAPH_INPUT;
  }
  for (const Value* v : outputs) {
    int i = AddValue(v);
    outputs_.push_back(i);
    value_views_[i].flags |= TSR_VALUE_GRAPH_OUTPUT;
  }
  view_.struct_size = sizeof(tsr_graph_view);
  view_.num_values = static_cast<uint32_t>(value_views_.size());
  view_.values = value_views_.data();
  view_.num_nodes = static_cast<uint32_t>(node_views_.size());
  view_.nodes = node_views_.data();
  view_.num_inputs = static_cast<uint32_t>(inputs_.size());
  view_.inputs = inputs_.data();
  view_.num_outputs = static_cast<uint32_t>(outputs_.size());
  view_.outputs = outputs_.data();
}

std::unique_ptr<GraphView> GraphView::Build(const std::vector<const Node*>& nodes,
                                            const std::vector<const Value*>& extra_outputs) {
  auto gv = std::unique_ptr<GraphView>(new GraphView());
  std::unordered_set<const Node*> in_set(nodes.begin(), nodes.end());
  std::unordered_set<const Value*> produced;
  for (const Node* n : nodes) {
    gv->AddNode(n);
    for (Value* o : n->outputs())
      if (o) produced.insert(o);
  }
  std::vector<const Value*> inputs, outputs;
  std::unordered_set<const Value*> seen_in;
  for (const Node* n : nodes)
    for (Value* v : n->inputs())
      if (v && !v->is_constant() && !produced.count(v) && seen_in.insert(v).second) inputs.push_back(v);
  std::unordered_set<const Value*> extra(extra_outputs.begin(), extra_outputs.end());
  for (const Node* n : nodes) {
    for (Value* o : n->outputs()) {
      if (!o) continue;
      bool out = o->is_graph_output() || extra.count(o);
      if (!out && o->owner()) {
        for (Node* c : o->owner()->Consumers(o))
          if (!in_set.count(c)) { out = true; break; }
      }
      if (out) outputs.push_back(o);
    }
  }
  gv->Finish(inputs, outputs);
  return gv;
}

std::unique_ptr<GraphView> GraphView::BuildWhole(const Graph& g) {
  auto gv = std::unique_ptr<GraphView>(new GraphView());
  for (const Node* n : g.nodes()) gv->AddNode(n);
  std::vector<const Value*> ins, outs;
  for (Value* v : g.inputs()) ins.push_back(v);
  for (Value* v : g.outputs()) outs.push_back(v);
  gv->Finish(ins, outs);
  return gv;
}

}  // namespace tessera
