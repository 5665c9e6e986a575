// Reverse-mode automatic differentiation on the graph IR.
//
// BuildGradientGraph appends the backward nodes of `loss` with respect to
// `wrt` (parameters: graph inputs or initializers) to the same graph and makes
// each parameter's gradient a new graph output. The forward graph is kept
// (backward nodes read forward values), so one run of the resulting graph
// computes the loss and every gradient.
//
// How: nodes the loss depends on AND that depend on a parameter are visited in
// reverse topological order. Each op's gradient rule (a registry keyed by
// domain + op type; one file per op family, grad_*.cpp) emits nodes that map
// the gradients of the node's outputs to gradients of its inputs. Gradients
// reaching one value from several consumers are summed (Sum); a gradient whose
// shape is a broadcast of its value's shape is reduced (ReduceSum + Reshape).
// Rules use existing ONNX ops where that is exact and cheap and tessera-domain
// gradient ops (graph/ops_training.cpp) otherwise.
//
// Requirements: static shapes for values whose gradient needs a broadcast
// reduction or a reshape (the usual case: training graphs are built per
// batch shape). The graph is type-inferred first. Errors name the node and op
// (e.g. an op without a gradient rule, a 1-D MatMul operand).
//
// Not thread-safe: mutates `g`.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/op_schema.h"

namespace tessera::autodiff {

struct GradientInfo {
  std::string loss;                 // the loss value's name
  std::vector<std::string> params;  // as passed in `wrt`
  std::vector<std::string> grads;   // grads[i] = name of d(loss)/d(params[i]) (a graph output, params[i]'s type)
  std::map<std::string, std::string> grad_of;  // param name -> gradient value name
  int num_backward_nodes = 0;       // nodes appended
};

// The options a caller may change.
struct GradientOptions {
  // Value name of each gradient output: prefix + param name (made unique if taken).
  std::string grad_prefix = "grad.";
};

// Appends the backward graph of `loss_value` (a floating-point value with one
// element) w.r.t. the values named in `wrt`. A parameter the loss does not
// depend on gets a zero gradient. On error the graph may hold dead backward
// nodes; callers discard it.
Result<GradientInfo> BuildGradientGraph(Graph& g, const std::string& loss_value, const std::vector<std::string>& wrt,
                                        const GradientOptions& opts = {});

// ---- for gradient rules ------------------------------------------------------------

// Emits backward nodes next to a forward node. Errors are sticky: after the
// first failure (shape inference of an emitted node, a non-static shape where
// one is needed) every method returns nullptr and status() holds the error;
// rules return status() after emitting.
class GradBuilder {
 public:
  GradBuilder(Graph& g, const Node& fwd) : g_(g), fwd_(fwd) {}
  Graph& graph() { return g_; }
  const Node& fwd() const { return fwd_; }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  void Fail(Status s) { if (status_.ok()) status_ = std::move(s); }
  int num_nodes() const { return num_nodes_; }
  int64_t onnx_opset() const { return g_.OpsetFor(""); }

  // A node of `op` (domain "" = ai.onnx) with one output; its type is inferred.
  Value* Op(const std::string& op, const std::vector<Value*>& inputs, const std::map<std::string, Attribute>& attrs = {},
            const std::string& domain = "");
  // Same with `num_outputs` outputs (empty vector on error).
  std::vector<Value*> OpN(const std::string& op, const std::vector<Value*>& inputs, size_t num_outputs,
                          const std::map<std::string, Attribute>& attrs = {}, const std::string& domain = "");
  Value* Scalar(double v, DType dtype);               // rank-0 constant
  Value* Int64s(const std::vector<int64_t>& values);  // 1-D i64 constant
  Value* Zeros(const TensorType& t);                  // constant zeros (static shape)
  // Sum over `axes` (kept as size-1 dims when keepdims), in the opset's form.
  Value* ReduceSum(Value* x, const std::vector<int64_t>& axes, bool keepdims);
  // Reshape to a static shape.
  Value* ReshapeTo(Value* x, const std::vector<int64_t>& dims);
  // Sums a gradient of a broadcast shape down to the shape of `like` (no-op
  // when equal). Symbolic dims are fine where the broadcast axes can be told
  // from known dims (a target dim of 1 against a known dim > 1, extra leading
  // axes); the result is reshaped with Shape(like) when `like` is not static.
  Value* ReduceToShape(Value* grad, Value* like);
  // x reshaped to like's shape: a static Reshape, or Reshape(x, Shape(like));
  // the result is declared with like's type.
  Value* ReshapeLike(Value* x, Value* like);
  // Static dims of v; fails (sticky) naming `what` when not static.
  std::vector<int64_t> StaticDims(const Value* v, const char* what);
  // "node 'x' (Op): <msg>" for the forward node.
  template <typename... Args>
  Status Error(Args&&... a) const { return Unsupported(fwd_.Describe(), ": ", std::forward<Args>(a)...); }

 private:
  Graph& g_;
  const Node& fwd_;
  Status status_;
  int num_nodes_ = 0;
};

struct GradContext {
  GradBuilder& b;
  const Node& node;
  std::vector<Value*> dy;  // per output; nullptr when no gradient reaches it (rules treat it as zero)
  std::vector<Value*> dx;  // per input; filled by the rule (nullptr = none / not needed)
  std::vector<bool> needs;  // per input: its gradient is wanted
  Value* in(size_t i) const { return node.input(i); }
  Value* out(size_t i) const { return node.output(i); }
  bool need(size_t i) const { return i < needs.size() && needs[i]; }
};

// Fills ctx.dx; returns an error naming the node when the case is unsupported.
using GradRule = Status (*)(GradContext& ctx);

// Rule for (domain, op) ("" = ai.onnx), or nullptr.
GradRule FindGradRule(const std::string& domain, const std::string& op);
// Every registered "domain:op" ("Relu", "tessera.Gelu") for tests and docs.
std::vector<std::string> ListGradRules();

// Registration, one function per rule file (called once by the registry).
void RegisterElementwiseGrads(std::map<std::string, GradRule>& r);  // grad_elementwise.cpp
void RegisterMatMulGrads(std::map<std::string, GradRule>& r);       // grad_matmul.cpp
void RegisterShapeGrads(std::map<std::string, GradRule>& r);        // grad_shape.cpp
void RegisterNnGrads(std::map<std::string, GradRule>& r);           // grad_nn.cpp
void RegisterLossGrads(std::map<std::string, GradRule>& r);         // grad_loss.cpp

}  // namespace tessera::autodiff
