#include "compiler/autodiff/params.h"

#include <unordered_set>

#include "graph/op_schema.h"

namespace tessera::autodiff {

std::vector<std::string> TrainableInitializers(const Graph& g) {
  std::vector<std::string> order;
  std::unordered_set<const Value*> seen, excluded;
  for (const Node* n : g.nodes()) {
    const OpSchema* s = OpRegistry::Global().Find(n->domain(), n->op_type());
    for (size_t i = 0; i < n->num_inputs(); ++i) {
      const Value* v = n->input(i);
      if (!v || !v->is_constant() || !IsFloatDType(v->dtype())) continue;
      bool value_input = false;
      if (s)
        for (int k : s->value_inputs)
          if (k == -1 || k == static_cast<int>(i)) value_input = true;
      if (n->domain().empty() && n->op_type() == "BatchNormalization" && (i == 3 || i == 4)) value_input = true;
      if (value_input) {
        excluded.insert(v);
        continue;
      }
      if (seen.insert(v).second) order.push_back(v->name());
    }
  }
  std::vector<std::string> r;
  for (const std::string& name : order)
    if (!excluded.count(g.FindValue(name))) r.push_back(name);
  return r;
}

Result<std::vector<std::pair<std::string, Tensor>>> LiftParameters(Graph& g, const std::vector<std::string>& names) {
  std::vector<Value*> vals;
  for (const std::string& n : names) {
    Value* v = g.FindValue(n);
    if (!v) return NotFound("parameter '", n, "' is not a value of graph '", g.name(), "'");
    if (!v->is_constant()) return InvalidArgument("parameter '", n, "' is not an initializer (constant)");
    if (!IsFloatDType(v->dtype()))
      return InvalidArgument("parameter '", n, "' has dtype ", DTypeName(v->dtype()), "; only floating-point initializers are trainable");
    vals.push_back(v);
  }
  std::vector<std::pair<std::string, Tensor>> r;
  for (Value* v : vals) {
    r.push_back({v->name(), *v->constant()});
    v->clear_constant();
    if (!v->is_graph_input()) g.AddInput(v);
  }
  return r;
}

}  // namespace tessera::autodiff
