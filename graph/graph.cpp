#include "graph/graph.h"

#include <algorithm>
#include <functional>
#include <unordered_set>

namespace tessera {

void Value::set_constant(Tensor t) {
  type_ = t.type();
  constant_ = std::move(t);
}

std::string Node::QualifiedOp() const {
  if (domain_.empty() || domain_ == "ai.onnx") return op_type_;
  return domain_ + "." + op_type_;
}

std::string Node::Describe() const {
  return StrCat("node '", name_, "' (", QualifiedOp(), ")");
}

void Node::set_input(size_t i, Value* v) {
  if (i >= inputs_.size()) inputs_.resize(i + 1, nullptr);
  inputs_[i] = v;
}

void Node::remove_trailing_absent_inputs() {
  while (!inputs_.empty() && inputs_.back() == nullptr) inputs_.pop_back();
}

const Attribute* Node::attr(const std::string& n) const {
  auto it = attrs_.find(n);
  return it == attrs_.end() ? nullptr : &it->second;
}

int64_t Node::GetInt(const std::string& n, int64_t def) const {
  const Attribute* a = attr(n);
  return a && a->type == AttrType::kInt ? a->i : def;
}
float Node::GetFloat(const std::string& n, float def) const {
  const Attribute* a = attr(n);
  return a && a->type == AttrType::kFloat ? a->f : def;
}
std::string Node::GetString(const std::string& n, const std::string& def) const {
  const Attribute* a = attr(n);
  return a && a->type == AttrType::kString ? a->s : def;
}
std::vector<int64_t> Node::GetInts(const std::string& n, const std::vector<int64_t>& def) const {
  const Attribute* a = attr(n);
  return a && a->type == AttrType::kInts ? a->ints : def;
}
std::vector<float> Node::GetFloats(const std::string& n, const std::vector<float>& def) const {
  const Attribute* a = attr(n);
  return a && a->type == AttrType::kFloats ? a->floats : def;
}

const std::map<std::string, int64_t>& Graph::opset_imports() const {
  if (opsets_.empty() && parent_) return parent_->opset_imports();
  return opsets_;
}

int64_t Graph::OpsetFor(const std::string& domain) const {
  const auto& m = opset_imports();
  std::string d = domain == "ai.onnx" ? "" : domain;
  auto it = m.find(d);
  if (it != m.end()) return it->second;
  if (parent_) return parent_->OpsetFor(domain);
  return d.empty() ? 17 : 1;
}

std::string Graph::UniqueName(const std::string& prefix) {
  for (;;) {
    std::string n = StrCat(prefix, "__", name_counter_++);
    if (!by_name_.count(n) && !FindNode(n)) return n;
  }
}

Value* Graph::AddValue(const std::string& name, TensorType type) {
  auto v = std::make_unique<Value>();
  v->name_ = name.empty() ? UniqueName("v") : name;
  if (by_name_.count(v->name_)) v->name_ = UniqueName(v->name_);
  v->type_ = std::move(type);
  v->owner_ = this;
  Value* raw = v.get();
  by_name_[raw->name_] = raw;
  values_.push_back(std::move(v));
  return raw;
}

Value* Graph::AddConstant(const std::string& name, Tensor t) {
  Value* v = AddValue(name, t.type());
  v->set_constant(std::move(t));
  return v;
}

Node* Graph::AddNode(const std::string& op_type, const std::vector<Value*>& inputs, size_t num_outputs,
                     const std::string& name, const std::string& domain) {
  std::vector<Value*> outs;
  std::string base = name.empty() ? UniqueName(op_type) : name;
  for (size_t i = 0; i < num_outputs; ++i) outs.push_back(AddValue(UniqueName(base + "_out")));
  return AddNodeWithOutputs(op_type, inputs, outs, base, domain);
}

Node* Graph::AddNodeWithOutputs(const std::string& op_type, const std::vector<Value*>& inputs,
                                const std::vector<Value*>& outputs, const std::string& name,
                                const std::string& domain) {
  auto n = std::make_unique<Node>();
  n->op_type_ = op_type;
  n->domain_ = domain == "ai.onnx" ? "" : domain;
  n->name_ = name.empty() ? UniqueName(op_type) : name;
  n->inputs_ = inputs;
  n->outputs_ = outputs;
  n->owner_ = this;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i]) continue;
    outputs[i]->producer_ = n.get();
    outputs[i]->producer_output_ = static_cast<int>(i);
  }
  Node* raw = n.get();
  nodes_.push_back(std::move(n));
  return raw;
}

void Graph::AddInput(Value* v) {
  v->is_input_ = true;
  inputs_.push_back(v);
}

void Graph::AddOutput(Value* v) {
  v->is_output_ = true;
  outputs_.push_back(v);
}

void Graph::SetOutputs(std::vector<Value*> outs) {
  for (Value* v : outputs_) v->is_output_ = false;
  outputs_ = std::move(outs);
  for (Value* v : outputs_) v->is_output_ = true;
}

std::vector<Value*> Graph::RuntimeInputs() const {
  std::vector<Value*> r;
  for (Value* v : inputs_)
    if (!v->is_constant()) r.push_back(v);
  return r;
}

std::vector<Node*> Graph::nodes() const {
  std::vector<Node*> r;
  r.reserve(nodes_.size());
  for (const auto& n : nodes_)
    if (!n->dead_) r.push_back(n.get());
  return r;
}

size_t Graph::num_nodes() const {
  size_t c = 0;
  for (const auto& n : nodes_) c += n->dead_ ? 0 : 1;
  return c;
}

std::vector<Value*> Graph::values() const {
  std::vector<Value*> r;
  for (const auto& v : values_) r.push_back(v.get());
  return r;
}

Value* Graph::FindValue(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Value* Graph::LookupValue(const std::string& name) const {
  if (Value* v = FindValue(name)) return v;
  return parent_ ? parent_->LookupValue(name) : nullptr;
}

Node* Graph::FindNode(const std::string& name) const {
  for (const auto& n : nodes_)
    if (!n->dead_ && n->name_ == name) return n.get();
  return nullptr;
}

void Graph::RemoveNode(Node* n) {
  n->dead_ = true;
  for (Value* o : n->outputs_) {
    if (o && o->producer_ == n) {
      o->producer_ = nullptr;
      o->producer_output_ = -1;
    }
  }
}

void Graph::ReplaceAllUsesWith(Value* from, Value* to) {
  for (auto& n : nodes_) {
    if (n->dead_) continue;
    for (auto& in : n->inputs_)
      if (in == from) in = to;
  }
  for (auto& o : outputs_) {
    if (o == from) {
      o = to;
      from->is_output_ = false;
      to->is_output_ = true;
    }
  }
}

std::vector<Node*> Graph::Consumers(const Value* v) const {
  std::vector<Node*> r;
  for (const auto& n : nodes_) {
    if (n->dead_) continue;
    for (Value* in : n->inputs_)
      if (in == v) r.push_back(n.get());
  }
  return r;
}

std::unordered_map<const Value*, int> Graph::UseCounts() const {
  std::unordered_map<const Value*, int> c;
  for (const auto& n : nodes_) {
    if (n->dead_) continue;
    for (Value* in : n->inputs_)
      if (in) c[in]++;
  }
  for (Value* o : outputs_) c[o]++;
  return c;
}

Status Graph::TopoSort() {
  std::vector<Node*> live = nodes();
  std::unordered_map<const Node*, int> indeg;
  std::unordered_map<const Node*, std::vector<Node*>> succ;
  for (Node* n : live) {
    indeg[n] = 0;
  }
  for (Node* n : live) {
    std::unordered_set<const Node*> preds;
    for (Value* in : n->inputs_) {
      if (in && in->producer_ && !in->producer_->dead_ && in->owner_ == this) preds.insert(in->producer_);
    }
    for (const Node* p : preds) {
      succ[p].push_back(n);
      indeg[n]++;
    }
  }
  // Stable Kahn: keep the existing order among ready nodes.
  std::vector<Node*> order;
  std::vector<Node*> ready;
  std::unordered_map<const Node*, size_t> pos;
  for (size_t i = 0; i < live.size(); ++i) pos[live[i]] = i;
  auto cmp = [&](Node* a, Node* b) { return pos[a] > pos[b]; };
  for (Node* n : live)
    if (indeg[n] == 0) ready.push_back(n);
  std::make_heap(ready.begin(), ready.end(), cmp);
  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end(), cmp);
    Node* n = ready.back();
    ready.pop_back();
    order.push_back(n);
    for (Node* s : succ[n]) {
      if (--indeg[s] == 0) {
        ready.push_back(s);
        std::push_heap(ready.begin(), ready.end(), cmp);
      }
    }
  }
  if (order.size() != live.size()) {
    for (Node* n : live)
      if (indeg[n] > 0) return InvalidArgument("graph '", name_, "' has a cycle through ", n->Describe());
  }
  std::unordered_map<const Node*, std::unique_ptr<Node>> owned;
  std::vector<std::unique_ptr<Node>> dead;
  for (auto& n : nodes_) {
    if (n->dead_) dead.push_back(std::move(n));
    else owned[n.get()] = std::move(n);
  }
  nodes_.clear();
  for (Node* n : order) nodes_.push_back(std::move(owned[n]));
  for (auto& d : dead) nodes_.push_back(std::move(d));
  return Status::Ok();
}

namespace {

// Values that nodes of `g`'s subgraphs (at any depth) read from enclosing scopes.
void CollectSubgraphCaptures(const Graph& g, std::unordered_set<const Value*>* out) {
  for (const Node* n : g.nodes()) {
    for (const auto& [name, a] : n->attrs()) {
      if (a.type != AttrType::kGraph || !a.g) continue;
      for (const Node* sn : a.g->nodes())
        for (const Value* in : sn->inputs())
          if (in && in->owner() != a.g.get()) out->insert(in);
      for (const Value* o : a.g->outputs())
        if (o->owner() != a.g.get()) out->insert(o);
      CollectSubgraphCaptures(*a.g, out);
    }
  }
}

}  // namespace

std::unordered_set<const Value*> Graph::SubgraphCaptures() const {
  std::unordered_set<const Value*> r;
  CollectSubgraphCaptures(*this, &r);
  return r;
}

void Graph::Compact() {
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(), [](const auto& n) { return n->dead_; }),
               nodes_.end());
  auto uses = UseCounts();
  // A value read only by a subgraph (e.g. an initializer an If branch uses)
  // is still in use: freeing it would leave the subgraph a dangling pointer.
  std::unordered_set<const Value*> captured;
  CollectSubgraphCaptures(*this, &captured);
  std::vector<std::unique_ptr<Value>> keep;
  for (auto& v : values_) {
    bool used = uses.count(v.get()) || captured.count(v.get()) || v->producer_ || v->is_input_ || v->is_output_;
    if (used) {
      keep.push_back(std::move(v));
    } else {
      by_name_.erase(v->name_);
    }
  }
  values_ = std::move(keep);
}

Status Graph::Verify() const {
  std::unordered_set<const Value*> defined;
  for (Value* v : inputs_) defined.insert(v);
  for (const auto& v : values_)
    if (v->is_constant()) defined.insert(v.get());
  std::unordered_set<const Value*> produced;
  for (const auto& n : nodes_) {
    if (n->dead_) continue;
    for (size_t i = 0; i < n->inputs_.size(); ++i) {
      Value* in = n->inputs_[i];
      if (!in) continue;
      if (in->owner_ != this) {
        // Outer-scope reference from a subgraph.
        if (!parent_ || parent_->LookupValue(in->name_) != in)
          return Internal(n->Describe(), " input ", i, " '", in->name_, "' belongs to another graph");
        continue;
      }
      if (!defined.count(in))
        return Internal(n->Describe(), " input ", i, " '", in->name_, "' is used before it is defined");
    }
    for (Value* o : n->outputs_) {
      if (!o) continue;
      if (o->producer_ != n.get()) return Internal(n->Describe(), " output '", o->name_, "' has another producer");
      if (!produced.insert(o).second) return Internal("value '", o->name_, "' is produced twice");
      defined.insert(o);
    }
  }
  for (Value* o : outputs_)
    if (!defined.count(o)) return Internal("graph output '", o->name_, "' is never produced");
  return Status::Ok();
}

std::unique_ptr<Graph> Graph::Clone() const {
  std::unordered_map<const Value*, Value*> vmap;
  return CloneMapped(&vmap, parent_);
}

std::unique_ptr<Graph> Graph::CloneMapped(std::unordered_map<const Value*, Value*>* vmap, Graph* parent) const {
  auto g = std::make_unique<Graph>();
  g->name_ = name_;
  g->opsets_ = opsets_;
  g->model_dir_ = model_dir_;
  g->parent_ = parent;
  g->name_counter_ = name_counter_;
  for (const auto& v : values_) {
    Value* nv = g->AddValue(v->name_, v->type_);
    if (v->constant_) nv->constant_ = v->constant_;
    (*vmap)[v.get()] = nv;
  }
  auto map_v = [&](Value* v) -> Value* {
    if (!v) return nullptr;
    auto it = vmap->find(v);
    return it == vmap->end() ? v : it->second;  // values of scopes outside the copy stay as they are
  };
  for (const auto& n : nodes_) {
    if (n->dead_) continue;
    std::vector<Value*> ins, outs;
    for (Value* v : n->inputs_) ins.push_back(map_v(v));
    for (Value* v : n->outputs_) outs.push_back(map_v(v));
    Node* nn = g->AddNodeWithOutputs(n->op_type_, ins, outs, n->name_, n->domain_);
    nn->attrs_ = n->attrs_;
    for (auto& [name, a] : nn->attrs_)  // bodies are copied, reading the copy's values
      if (a.type == AttrType::kGraph && a.g) a.g = std::shared_ptr<Graph>(a.g->CloneMapped(vmap, g.get()));
  }
  for (Value* v : inputs_) g->AddInput(map_v(v));
  for (Value* v : outputs_) g->AddOutput(map_v(v));
  return g;
}

}  // namespace tessera
