// The graph IR: SSA values, nodes and graphs.
//
// Ownership: a Graph owns its Values and Nodes (stable addresses for the
// Graph's lifetime; removed objects are destroyed at Compact()). A Value has at
// most one producer. Node order in nodes() is a topological order; passes that
// insert nodes out of order call TopoSort(). Not thread-safe for mutation;
// concurrent const access is fine.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "graph/attribute.h"
#include "graph/shape.h"
#include "graph/status.h"
#include "graph/tensor.h"

namespace tessera {

class Node;
class Graph;

class Value {
 public:
  const std::string& name() const { return name_; }
  const TensorType& type() const { return type_; }
  TensorType& mutable_type() { return type_; }
  void set_type(TensorType t) { type_ = std::move(t); }
  DType dtype() const { return type_.dtype; }
  const Shape& shape() const { return type_.shape; }

  Node* producer() const { return producer_; }
  int producer_output() const { return producer_output_; }
  // Non-null for initializers and folded constants.
  const Tensor* constant() const { return constant_ ? &*constant_ : nullptr; }
  bool is_constant() const { return constant_.has_value(); }
  void set_constant(Tensor t);
  void clear_constant() { constant_.reset(); }
  bool is_graph_input() const { return is_input_; }
  bool is_graph_output() const { return is_output_; }
  Graph* owner() const { return owner_; }

 private:
  friend class Graph;
  friend class Node;
  std::string name_;
  TensorType type_;
  Node* producer_ = nullptr;
  int producer_output_ = -1;
  std::optional<Tensor> constant_;
  bool is_input_ = false;
  bool is_output_ = false;
  Graph* owner_ = nullptr;
};

class Node {
 public:
  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  const std::string& domain() const { return domain_; }   // "" = ai.onnx
  const std::string& op_type() const { return op_type_; }
  // "Conv" for ai.onnx, "tessera.FusedAttention" otherwise; for messages.
  std::string QualifiedOp() const;
  // "node 'conv1' (Conv)"; for error messages.
  std::string Describe() const;

  const std::vector<Value*>& inputs() const { return inputs_; }  // nullptr = omitted optional input
  const std::vector<Value*>& outputs() const { return outputs_; }
  Value* input(size_t i) const { return i < inputs_.size() ? inputs_[i] : nullptr; }
  Value* output(size_t i) const { return i < outputs_.size() ? outputs_[i] : nullptr; }
  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_.size(); }
  void set_input(size_t i, Value* v);
  void add_input(Value* v) { inputs_.push_back(v); }
  void remove_trailing_absent_inputs();

  const std::map<std::string, Attribute>& attrs() const { return attrs_; }
  bool has_attr(const std::string& n) const { return attrs_.count(n) != 0; }
  const Attribute* attr(const std::string& n) const;
  void set_attr(const std::string& n, Attribute a) { attrs_[n] = std::move(a); }
  void remove_attr(const std::string& n) { attrs_.erase(n); }
  int64_t GetInt(const std::string& n, int64_t def) const;
  float GetFloat(const std::string& n, float def) const;
  std::string GetString(const std::string& n, const std::string& def) const;
  std::vector<int64_t> GetInts(const std::string& n, const std::vector<int64_t>& def = {}) const;
  std::vector<float> GetFloats(const std::string& n, const std::vector<float>& def = {}) const;

  Graph* owner() const { return owner_; }
  bool is_dead() const { return dead_; }

 private:
  friend class Graph;
  std::string name_, domain_, op_type_;
  std::vector<Value*> inputs_, outputs_;
  std::map<std::string, Attribute> attrs_;
  Graph* owner_ = nullptr;
  bool dead_ = false;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }

  // Opset per domain ("" = ai.onnx). Subgraphs look up their parent's.
  const std::map<std::string, int64_t>& opset_imports() const;
  void set_opset(const std::string& domain, int64_t version) { opsets_[domain] = version; }
  int64_t OpsetFor(const std::string& domain) const;

  // Creates a value. The name must be unique within this graph (empty = auto).
  Value* AddValue(const std::string& name, TensorType type = {});
  // Creates a constant (initializer) value.
  Value* AddConstant(const std::string& name, Tensor t);
  // Creates a node appended at the end of the order; outputs are fresh values.
  Node* AddNode(const std::string& op_type, const std::vector<Value*>& inputs, size_t num_outputs,
                const std::string& name = "", const std::string& domain = "");
  // Same, with given (existing, producer-less) output values.
  Node* AddNodeWithOutputs(const std::string& op_type, const std::vector<Value*>& inputs,
                           const std::vector<Value*>& outputs, const std::string& name = "",
                           const std::string& domain = "");

  void AddInput(Value* v);
  void AddOutput(Value* v);
  void SetOutputs(std::vector<Value*> outs);
  const std::vector<Value*>& inputs() const { return inputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  // Graph inputs that are not constants (the ones a user feeds).
  std::vector<Value*> RuntimeInputs() const;

  // Live nodes in topological order.
  std::vector<Node*> nodes() const;
  size_t num_nodes() const;
  std::vector<Value*> values() const;
  Value* FindValue(const std::string& name) const;
  Node* FindNode(const std::string& name) const;

  // Marks the node dead; its outputs lose their producer. Compact() frees it.
  void RemoveNode(Node* n);
  // Every use of `from` (node inputs, graph outputs) becomes `to`.
  void ReplaceAllUsesWith(Value* from, Value* to);
  // Nodes that use v (for each use, one entry), in order.
  std::vector<Node*> Consumers(const Value* v) const;
  // Map value -> number of uses (node inputs + graph outputs); rebuilt on each call.
  std::unordered_map<const Value*, int> UseCounts() const;
  // Values that nodes of this graph's subgraphs (If/Loop/Scan bodies, at any
  // depth) read from enclosing scopes, including subgraph outputs defined
  // outside them. Consumers() and UseCounts() do not see these uses, so passes
  // must not remove or replace these values.
  std::unordered_set<const Value*> SubgraphCaptures() const;

  // Reorders nodes topologically; fails on a cycle (names a node on it).
  Status TopoSort();
  // Frees dead nodes and values that are neither used (by a node here or in a
  // subgraph), produced nor graph I/O. Unused constants are freed too.
  void Compact();
  // Structural check: SSA, order, every input defined; names the offending node.
  Status Verify() const;
  std::string UniqueName(const std::string& prefix);

  // Values of an enclosing graph visible to a subgraph (If/Loop bodies).
  Graph* parent() const { return parent_; }
  void set_parent(Graph* p) { parent_ = p; }
  // Looks up a name here, then in enclosing graphs.
  Value* LookupValue(const std::string& name) const;

  // Deep copy (values, nodes, constants share tensor storage). Subgraphs
  // (If/Loop/Scan bodies) are copied too, and their reads of enclosing values
  // point into the copy.
  std::unique_ptr<Graph> Clone() const;

  // Where external data and relative paths resolve (the model's folder).
  const std::string& model_dir() const { return model_dir_; }
  void set_model_dir(std::string d) { model_dir_ = std::move(d); }

 private:
  // Clone() with `vmap` (original value -> copy) shared across nesting levels.
  std::unique_ptr<Graph> CloneMapped(std::unordered_map<const Value*, Value*>* vmap, Graph* parent) const;

  std::string name_;
  std::map<std::string, int64_t> opsets_;
  std::vector<std::unique_ptr<Value>> values_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unordered_map<std::string, Value*> by_name_;
  std::vector<Value*> inputs_, outputs_;
  Graph* parent_ = nullptr;
  std::string model_dir_;
  int64_t name_counter_ = 0;
};

}  // namespace tessera
