// fuse_layernorm: recognizes the decomposed layer normalization that
// PyTorch/TF exporters emit when they do not use the ONNX op,
//   mean = ReduceMean(X, axes=[-1]); d = Sub(X, mean)
//   var  = ReduceMean(Pow(d, 2) | Mul(d, d), axes=[-1])
//   y    = Div(d, Sqrt(Add(var, eps)))  [ -> Mul(y, gamma) ] [ -> Add(y, beta) ]
// and replaces it with LayerNormalization(X, gamma, beta, axis=-1,
// epsilon=eps). Without gamma a ones constant [D] is created (D = last dim,
// must be known). ReduceMean axes may be an attribute (opset < 18) or a
// constant input (>= 18), as -1 or rank-1, with keepdims=1. The op is emitted
// whatever the graph's opset (the CPU backend has the kernel).
// Conditions: X is f32 with a known rank; gamma/beta are f32 of shape [D];
// eps is a one-element constant (rank <= X's, so nothing broadcasts past X's
// shape); every intermediate has exactly one use (d: the
// squaring node and the Div) and is neither a graph output nor read by a
// subgraph. The pattern's last output Value is kept
// (it may be a graph output).
#include <unordered_set>

#include "compiler/pass.h"
#include "compiler/passes/pattern_util.h"

namespace tessera {
namespace {

bool IsOnnx(const Node* n, const char* op) {
  return n && !n->is_dead() && n->domain().empty() && n->op_type() == op;
}

class LayerNormFuser {
 public:
  LayerNormFuser(Graph& g) : g_(g) { captured_ = g.SubgraphCaptures(); }

  bool TryFuse(Node* m1) {
    Value* x = m1->input(0);
    if (!x || x->dtype() != DType::kF32 || !x->shape().has_rank() || x->shape().rank() < 1) return false;
    const int rank = x->shape().rank();
    if (!IsLastAxisMean(m1, rank)) return false;
    std::vector<Node*> nodes{m1};

    Node* sub = OnlyUser(m1->output(0));
    if (!IsOnnx(sub, "Sub") || sub->input(0) != x || sub->input(1) != m1->output(0)) return false;
    nodes.push_back(sub);
    Value* d = sub->output(0);
    if (Pinned(d)) return false;

    // d feeds the squaring node and the Div, nothing else.
    Node* square = nullptr;
    Node* div = nullptr;
    std::vector<Node*> users = g_.Consumers(d);
    for (Node* u : users) {
      if (IsOnnx(u, "Div") && u->input(0) == d && u->input(1) != d) {
        if (div && div != u) return false;
        div = u;
      } else if (IsOnnx(u, "Pow") && u->input(0) == d && ScalarConstant(u->input(1)) == 2.0 &&
                 u->input(1)->constant()->rank() <= rank) {
        if (square && square != u) return false;
        square = u;
      } else if (IsOnnx(u, "Mul") && u->input(0) == d && u->input(1) == d) {
        if (square && square != u) return false;
        square = u;
      } else {
        return false;
      }
    }
    if (!div || !square) return false;
    size_t expected_uses = square->op_type() == "Mul" ? 3 : 2;
    if (users.size() != expected_uses) return false;
    nodes.push_back(square);

    Node* m2 = OnlyUser(square->output(0));
    if (!IsOnnx(m2, "ReduceMean") || !IsLastAxisMean(m2, rank)) return false;
    nodes.push_back(m2);
    Node* add = OnlyUser(m2->output(0));
    if (!IsOnnx(add, "Add")) return false;
    Value* eps_v = add->input(0) == m2->output(0) ? add->input(1) : add->input(0);
    std::optional<double> eps = ScalarConstant(eps_v);
    if (!eps || eps_v->dtype() != DType::kF32 || !(*eps >= 0.0) || eps_v->constant()->rank() > rank) return false;
    nodes.push_back(add);
    Node* sqrt = OnlyUser(add->output(0));
    if (!IsOnnx(sqrt, "Sqrt")) return false;
    nodes.push_back(sqrt);
    if (OnlyUser(sqrt->output(0)) != div || div->input(1) != sqrt->output(0)) return false;
    nodes.push_back(div);

    Node* last = div;
    Value* gamma = nullptr;
    Value* beta = nullptr;
    if (Node* mul = OnlyUser(last->output(0)); IsOnnx(mul, "Mul")) {
      Value* other = mul->input(0) == last->output(0) ? mul->input(1) : mul->input(0);
      if (IsParam(other, *x, nodes)) {
        gamma = other;
        last = mul;
        nodes.push_back(mul);
      }
    }
    if (Node* add_b = OnlyUser(last->output(0)); IsOnnx(add_b, "Add")) {
      Value* other = add_b->input(0) == last->output(0) ? add_b->input(1) : add_b->input(0);
      if (IsParam(other, *x, nodes)) {
        beta = other;
        last = add_b;
        nodes.push_back(add_b);
      }
    }
    Value* y = last->output(0);
    if (captured_.count(y) || y->dtype() != DType::kF32) return false;
    if (!gamma) {
      const Dim& dlast = x->shape().dim(rank - 1);
      if (!dlast.is_known()) return false;
      std::vector<float> ones(static_cast<size_t>(dlast.value), 1.f);
      gamma = g_.AddConstant(g_.UniqueName(m1->name() + "_ln_scale"),
                             Tensor::FromVector<float>(DType::kF32, {dlast.value}, ones));
    }

    std::string name = last->name();
    for (Node* n : nodes) g_.RemoveNode(n);
    std::vector<Value*> inputs{x, gamma};
    if (beta) inputs.push_back(beta);
    Node* ln = g_.AddNodeWithOutputs("LayerNormalization", inputs, {y}, name);
    ln->set_attr("axis", Attribute::Int(-1));
    ln->set_attr("epsilon", Attribute::Float(static_cast<float>(*eps)));
    return true;
  }

 private:
  bool Pinned(const Value* v) const { return v->is_graph_output() || captured_.count(v); }

  // The node that is v's only use, or null.
  Node* OnlyUser(const Value* v) const {
    if (!v || Pinned(v)) return nullptr;
    std::vector<Node*> users = g_.Consumers(v);
    return users.size() == 1 ? users[0] : nullptr;
  }

  // ReduceMean over exactly the last axis, keepdims=1.
  bool IsLastAxisMean(const Node* n, int rank) const {
    if (n->GetInt("keepdims", 1) != 1 || n->num_outputs() != 1) return false;
    std::vector<int64_t> axes;
    if (n->has_attr("axes")) {
      axes = n->GetInts("axes");
    } else if (const Tensor* t = n->input(1) ? n->input(1)->constant() : nullptr) {
      auto v = t->ToInt64Vector();
      if (!v.ok()) return false;
      axes = std::move(v).value();
    } else {
      return false;
    }
    return axes.size() == 1 && (axes[0] == -1 || axes[0] == rank - 1);
  }

  // gamma/beta: f32 of shape [D] (X's last dim), not computed by the pattern.
  bool IsParam(const Value* v, const Value& x, const std::vector<Node*>& pattern) const {
    if (!v || v->dtype() != DType::kF32 || !v->shape().has_rank() || v->shape().rank() != 1) return false;
    if (!SameRuntimeDim(v->shape().dim(0), x.shape().dim(x.shape().rank() - 1))) return false;
    for (const Node* n : pattern)
      if (v->producer() == n) return false;
    return true;
  }

  Graph& g_;
  std::unordered_set<const Value*> captured_;
};

class FuseLayerNormPass : public Pass {
 public:
  const char* name() const override { return "fuse_layernorm"; }
  Status Run(Graph& g, PassContext& ctx) override {
    LayerNormFuser f(g);
    bool changed = false;
    for (Node* n : g.nodes()) {
      if (!IsOnnx(n, "ReduceMean")) continue;
      if (f.TryFuse(n)) {
        ++ctx.changes;
        changed = true;
      }
    }
    if (changed) return g.TopoSort();
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseLayerNormPass() { return std::make_unique<FuseLayerNormPass>(); }

}  // namespace tessera
