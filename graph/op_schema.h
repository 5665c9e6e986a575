// Op schemas: arity and type/shape inference per op, keyed by (domain, op).
// Version-dependent forms (e.g. Squeeze axes as attribute before opset 13, as
// input after) are handled inside each schema's inference function, which
// sees the node's opset in InferenceContext::opset.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace tessera {

struct InferenceContext {
  const Node* node = nullptr;
  int64_t opset = 0;
  // Per input: its type (nullptr when an optional input is omitted) and, when
  // the input is a known constant, its data (else nullptr).
  std::vector<const TensorType*> inputs;
  std::vector<const Tensor*> constants;
  // Filled by the inference function, one per node output.
  std::vector<TensorType> outputs;

  size_t num_inputs() const { return inputs.size(); }
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  const TensorType& input(size_t i) const { return *inputs[i]; }
  const Tensor* constant(size_t i) const { return i < constants.size() ? constants[i] : nullptr; }
  // An error that names the node and op: "node 'x' (Reshape): <msg>".
  template <typename... Args>
  Status Error(Args&&... a) const {
    return InvalidArgument(node->Describe(), ": ", std::forward<Args>(a)...);
  }
};

using InferFn = std::function<Status(InferenceContext&)>;

struct OpSchema {
  std::string domain;  // "" = ai.onnx, "tessera" for our own ops
  std::string name;
  int min_inputs = 0;
  int max_inputs = 1 << 20;
  int min_outputs = 1;
  int max_outputs = 1;
  InferFn infer;  // sets ctx.outputs; may leave dims symbolic/unknown
  // Inputs whose values (not only shapes) the op needs when it is compiled:
  // shape-setting and parameter inputs (Reshape's shape, Reduce* axes, Slice
  // starts/ends, TopK's K, ...). -1 means every input: the output shape
  // depends on the data (NonZero, Unique, Compress). The runtime specializes
  // a graph input that feeds one of these to a constant per distinct value
  // (compiler/specialize.h). Set from one table, graph/op_value_inputs.cpp.
  std::vector<int> value_inputs;
};

class OpRegistry {
 public:
  // The process-wide registry with every built-in schema registered.
  static const OpRegistry& Global();
  void Register(OpSchema s);
  // Register() for the common case: a default-domain op with these arities.
  void Add(const std::string& name, int min_inputs, int max_inputs, int min_outputs, int max_outputs, InferFn infer);
  OpSchema* FindMutable(const std::string& domain, const std::string& op);
  const OpSchema* Find(const std::string& domain, const std::string& op) const;
  std::vector<std::string> ListOps() const;  // "Conv", "tessera.FusedAttention", ...

 private:
  std::vector<OpSchema> schemas_;
};

// Built-in schema groups, one file each (graph/ops_*.cpp).
void RegisterElementwiseOps(OpRegistry& r);
void RegisterNnOps(OpRegistry& r);
void RegisterTensorOps(OpRegistry& r);
void RegisterReductionOps(OpRegistry& r);
void RegisterFusedOps(OpRegistry& r);  // graph/ops_fused.cpp: tessera-domain fused ops
void RegisterMathOps(OpRegistry& r);  // graph/ops_math.cpp
void RegisterLossNormOps(OpRegistry& r);  // graph/ops_loss_norm.cpp
void RegisterIndexingOps(OpRegistry& r);  // graph/ops_indexing.cpp
void RegisterResizeOps(OpRegistry& r);  // graph/ops_resize.cpp
void RegisterQuantOps(OpRegistry& r);  // graph/ops_quant.cpp
void RegisterAttentionOps(OpRegistry& r);  // graph/ops_attention.cpp
void RegisterRnnOps(OpRegistry& r);  // graph/ops_rnn.cpp
void RegisterSignalOps(OpRegistry& r);  // graph/ops_signal.cpp
void RegisterTrainingOps(OpRegistry& r);  // graph/ops_training.cpp (losses, optimizers, gradient ops)
// Sets OpSchema::value_inputs of the registered ops; runs after every Register*Ops.
void ApplyValueInputs(OpRegistry& r);  // graph/op_value_inputs.cpp

// Checks arity and runs inference for one node; sets its outputs' types.
// Inferred info is merged with what the value already declares (a declared
// known dim wins over an unknown inferred one; a conflict is an error).
Status InferNodeTypes(Node& node);
// Runs InferNodeTypes over the graph in order. Fails on the first node whose
// inference fails, naming it. Unknown ops are reported all at once.
Status InferGraphTypes(Graph& g);

// Helpers for inference functions.
// ONNX multidirectional broadcasting of two shapes.
Result<Shape> BroadcastShapes(const Shape& a, const Shape& b);
// Normalizes a possibly negative axis for `rank`; error if out of range.
Result<int64_t> NormalizeAxis(int64_t axis, int64_t rank);

}  // namespace tessera
