#include "compiler/specialize.h"

#include <vector>

#include "graph/op_schema.h"

namespace tessera {

namespace {

bool IsStatic(const Value* v) { return v->is_constant() || v->shape().AsInts().has_value(); }

// Adds the runtime inputs that `v` depends on, walking producers but not
// through Shape/Size.
void CollectSources(const Value* v, std::set<const Value*>* seen, std::set<std::string>* out) {
  std::vector<const Value*> stack{v};
  while (!stack.empty()) {
    const Value* x = stack.back();
    stack.pop_back();
    if (!x || x->is_constant() || !seen->insert(x).second) continue;
    if (x->is_graph_input()) {
      out->insert(x->name());
      continue;
    }
    const Node* p = x->producer();
    if (!p || p->op_type() == "Shape" || p->op_type() == "Size") continue;
    for (const Value* in : p->inputs()) stack.push_back(in);
  }
}

}  // namespace

std::set<std::string> FindValueInputs(const Graph& g) {
  std::set<std::string> out;
  std::set<const Value*> seen;
  for (const Node* n : g.nodes()) {
    const OpSchema* s = OpRegistry::Global().Find(n->domain(), n->op_type());
    const std::vector<int> declared = s ? s->value_inputs : std::vector<int>{};
    const bool data_dependent = declared.size() == 1 && declared[0] < 0;
    if (!declared.empty() && !data_dependent) {
      // The op's shapes and parameters depend on these inputs' values only.
      for (int i : declared)
        if (static_cast<size_t>(i) < n->num_inputs() && n->input(i) && !n->input(i)->is_constant())
          CollectSources(n->input(i), &seen, &out);
      continue;
    }
    if (!data_dependent) continue;
    // Output shapes that depend on the data: every input's value matters.
    bool outputs_static = true;
    for (const Value* o : n->outputs()) outputs_static = outputs_static && (!o || IsStatic(o));
    if (!outputs_static)
      for (const Value* in : n->inputs()) CollectSources(in, &seen, &out);
  }
  return out;
}

Status SpecializeInputs(Graph& g, const std::map<std::string, const Tensor*>& values) {
  for (Value* in : g.RuntimeInputs()) {
    auto it = values.find(in->name());
    if (it == values.end()) continue;
    const Tensor& t = *it->second;
    if (t.dtype() != in->dtype())
      return InvalidArgument("input '", in->name(), "' has dtype ", DTypeName(t.dtype()), ", expected ",
                             DTypeName(in->dtype()));
    auto dims = in->shape().AsInts();
    if (dims && *dims != t.dims())
      return InvalidArgument("input '", in->name(), "' has shape ", t.type().shape.ToString(), ", expected ",
                             in->shape().ToString());
    in->set_constant(t);
    in->set_type(t.type());
  }
  return Status::Ok();
}

}  // namespace tessera
