// fuse_gelu: recognizes decomposed GELU and replaces it with tessera.Gelu(x)
// (attribute approximate = "none" | "tanh"):
//   erf form:  x * 0.5 * (1 + Erf(x / sqrt(2)))   [or Erf(x * 1/sqrt(2))]
//   tanh form: 0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
//              with x^3 as Pow(x, 3), Mul(Mul(x, x), x) or Mul(x, Mul(x, x))
// The tail  x * 0.5 * a  (a = 1 + Erf/Tanh(...)) is matched in the orderings
// Mul(Mul(x, a), 0.5), Div(Mul(x, a), 2), Mul(Mul(a, 0.5), x) and
// Mul(Mul(x, 0.5), a), operands of Mul/Add in either order.
// Conditions: x is f32; constants are one-element constants within 1e-4
// (relative) of the expected value and of rank <= x's rank (so the result has
// x's shape); every intermediate has exactly one use and is neither a graph
// output nor read by a subgraph. The pattern's last output
// Value is kept (it may be a graph output).
#include <cmath>
#include <unordered_set>

#include "compiler/pass.h"

namespace tessera {
namespace {

bool IsOnnx(const Node* n, const char* op) {
  return n && !n->is_dead() && n->domain().empty() && n->op_type() == op && n->num_inputs() == 2 &&
         n->num_outputs() == 1 && n->input(0) && n->input(1);
}

bool IsUnary(const Node* n, const char* op) {
  return n && !n->is_dead() && n->domain().empty() && n->op_type() == op && n->num_inputs() == 1 &&
         n->num_outputs() == 1 && n->input(0);
}

constexpr double kSqrt2 = 1.4142135623730951;
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kTanhCubic = 0.044715;

class GeluFuser {
 public:
  explicit GeluFuser(Graph& g) : g_(g) { captured_ = g.SubgraphCaptures(); }

  // `erf` is an Erf node.
  bool TryErf(Node* erf) {
    nodes_.clear();
    Node* scale = erf->input(0)->producer();
    if (!scale || OnlyUser(erf->input(0)) != erf) return false;
    Value* x = nullptr;
    if (IsOnnx(scale, "Div")) {
      if (!IsConst(scale->input(1), kSqrt2)) return false;
      x = scale->input(0);
    } else if (IsOnnx(scale, "Mul")) {
      x = OtherOperandOfConst(scale, 1.0 / kSqrt2);
    }
    if (!x || !IsF32WithRank(x)) return false;
    nodes_.push_back(scale);
    nodes_.push_back(erf);
    return MatchTail(erf, x) && Rewrite(x, "none");
  }

  // `tanh` is a Tanh node.
  bool TryTanh(Node* tanh) {
    nodes_.clear();
    Node* outer = tanh->input(0)->producer();
    if (!IsOnnx(outer, "Mul") || OnlyUser(tanh->input(0)) != tanh) return false;
    Value* inner_v = OtherOperandOfConst(outer, kSqrt2OverPi);
    Node* inner = inner_v ? inner_v->producer() : nullptr;
    if (!IsOnnx(inner, "Add") || OnlyUser(inner_v) != outer) return false;
    // inner = x + 0.044715 * x^3, either order.
    for (int k = 0; k < 2; ++k) {
      Value* x = inner->input(k);
      Value* c3_v = inner->input(1 - k);
      Node* c3 = c3_v->producer();
      if (!IsOnnx(c3, "Mul") || OnlyUser(c3_v) != inner || !IsF32WithRank(x)) continue;
      Value* cube_v = OtherOperandOfConst(c3, kTanhCubic);
      if (!cube_v || OnlyUser(cube_v) != c3) continue;
      std::vector<Node*> cube_nodes;
      if (!MatchCube(cube_v, x, &cube_nodes)) continue;
      nodes_ = {outer, inner, c3};
      nodes_.insert(nodes_.end(), cube_nodes.begin(), cube_nodes.end());
      nodes_.push_back(tanh);
      return MatchTail(tanh, x) && Rewrite(x, "tanh");
    }
    return false;
  }

 private:
  bool Pinned(const Value* v) const { return v->is_graph_output() || captured_.count(v); }

  Node* OnlyUser(const Value* v) const {
    if (!v || Pinned(v)) return nullptr;
    std::vector<Node*> users = g_.Consumers(v);
    return users.size() == 1 ? users[0] : nullptr;
  }

  bool IsF32WithRank(const Value* x) const { return x->dtype() == DType::kF32 && x->shape().has_rank(); }

  // A one-element f32 constant within 1e-4 relative of `expected`.
  static bool IsConst(const Value* v, double expected) {
    const Tensor* t = v ? v->constant() : nullptr;
    if (!t || t->dtype() != DType::kF32 || t->num_elements() != 1) return false;
    double c = t->GetAsDouble(0);
    return std::fabs(c - expected) <= 1e-4 * std::fabs(expected);
  }

  // For binary `n` with one operand a constant ~ `expected`: the other operand.
  static Value* OtherOperandOfConst(const Node* n, double expected) {
    if (IsConst(n->input(1), expected)) return n->input(0);
    if (IsConst(n->input(0), expected)) return n->input(1);
    return nullptr;
  }

  // x^3 as Pow(x, 3), Mul(Mul(x, x), x) or Mul(x, Mul(x, x)).
  bool MatchCube(Value* cube_v, Value* x, std::vector<Node*>* nodes) const {
    Node* c = cube_v->producer();
    if (IsOnnx(c, "Pow")) {
      const Tensor* e = c->input(1)->constant();
      if (c->input(0) != x || !e || e->num_elements() != 1 || e->GetAsDouble(0) != 3.0) return false;
      nodes->push_back(c);
      return true;
    }
    if (!IsOnnx(c, "Mul")) return false;
    for (int k = 0; k < 2; ++k) {
      if (c->input(k) != x) continue;
      Value* sq_v = c->input(1 - k);
      Node* sq = sq_v->producer();
      if (IsOnnx(sq, "Mul") && sq->input(0) == x && sq->input(1) == x && OnlyUser(sq_v) == c) {
        nodes->push_back(sq);
        nodes->push_back(c);
        return true;
      }
    }
    return false;
  }

  // From the Erf/Tanh node `f`: a = Add(f, 1), then x * 0.5 * a.
  bool MatchTail(Node* f, Value* x) {
    Node* add = OnlyUser(f->output(0));
    if (!IsOnnx(add, "Add")) return false;
    Value* other = add->input(0) == f->output(0) ? add->input(1) : add->input(0);
    if (!IsConst(other, 1.0)) return false;
    nodes_.push_back(add);
    Value* a = add->output(0);
    Node* m1 = OnlyUser(a);
    if (!IsOnnx(m1, "Mul")) return false;
    Value* o1 = m1->input(0) == a ? m1->input(1) : m1->input(0);
    nodes_.push_back(m1);
    if (o1 == x || IsConst(o1, 0.5)) {
      // (x * a) * 0.5 | (x * a) / 2 | (a * 0.5) * x
      Node* m2 = OnlyUser(m1->output(0));
      if (!m2) return false;
      Value* o2 = m2->input(0) == m1->output(0) ? m2->input(1) : m2->input(0);
      bool ok = false;
      if (o1 == x)
        ok = (IsOnnx(m2, "Mul") && IsConst(o2, 0.5)) ||
             (IsOnnx(m2, "Div") && m2->input(0) == m1->output(0) && IsConst(m2->input(1), 2.0));
      else
        ok = IsOnnx(m2, "Mul") && o2 == x;
      if (!ok) return false;
      nodes_.push_back(m2);
      return true;
    }
    // (x * 0.5) * a
    Node* half = o1->producer();
    if (!IsOnnx(half, "Mul") || OnlyUser(o1) != m1) return false;
    if (OtherOperandOfConst(half, 0.5) != x) return false;
    nodes_.push_back(half);
    return true;
  }

  // nodes_ holds the matched pattern; the last-produced Value among their
  // outputs that is not consumed inside the pattern is the result.
  bool Rewrite(Value* x, const char* approximate) {
    std::unordered_set<const Node*> in_pattern(nodes_.begin(), nodes_.end());
    Value* y = nullptr;
    for (Node* n : nodes_) {
      bool internal = false;
      for (Node* u : g_.Consumers(n->output(0))) internal |= in_pattern.count(u) != 0;
      if (!internal) {
        if (y) return false;
        y = n->output(0);
      }
    }
    if (!y || captured_.count(y) || y->dtype() != DType::kF32) return false;
    // Every other operand is x or a pattern value; a constant of higher rank
    // than x would broadcast the result past x's shape.
    for (Node* n : nodes_)
      for (Value* in : n->inputs())
        if (in->is_constant() && in->constant()->rank() > x->shape().rank()) return false;
    std::string name = y->producer()->name();
    for (Node* n : nodes_) g_.RemoveNode(n);
    Node* gelu = g_.AddNodeWithOutputs("Gelu", {x}, {y}, name, "tessera");
    gelu->set_attr("approximate", Attribute::String(approximate));
    return true;
  }

  Graph& g_;
  std::unordered_set<const Value*> captured_;
  std::vector<Node*> nodes_;
};

class FuseGeluPass : public Pass {
 public:
  const char* name() const override { return "fuse_gelu"; }
  Status Run(Graph& g, PassContext& ctx) override {
    GeluFuser f(g);
    bool changed = false;
    for (Node* n : g.nodes()) {
      bool fused = false;
      if (IsUnary(n, "Erf"))
        fused = f.TryErf(n);
      else if (IsUnary(n, "Tanh"))
        fused = f.TryTanh(n);
      if (fused) {
        ++ctx.changes;
        changed = true;
      }
    }
    if (changed) return g.TopoSort();
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseGeluPass() { return std::make_unique<FuseGeluPass>(); }

}  // namespace tessera
