// fuse_bias_activation: folds what follows a Conv, MatMul or Gemm into one
// tessera-domain node the CPU backend runs as a single oneDNN primitive with
// post-ops (graph/ops_fused_conv_gemm.cpp describes the fused ops):
//   Conv   [-> Add(Z)] [-> act]                       => tessera.FusedConv(X, W, B, Z)
//   MatMul [-> Add(const 1-D bias)] [-> Add(Z)] [-> act] => tessera.FusedMatMul(A, B, bias, Z)
//   Gemm   -> act                                      => tessera.FusedGemm(A, B, C)
// (at least one of the bracketed parts must be present). `act` is one of
// Relu, LeakyRelu, Clip (constant bounds; Clip(0, 6) is Relu6), Sigmoid, Tanh,
// HardSwish, Gelu (ONNX or tessera domain, erf or tanh form) and SiLU written
// as Mul(x, Sigmoid(x)). Z is any other value of exactly the same (static or
// symbolic) shape and dtype: the residual branch of a ResNet block.
//
// Rules: f32 only; every swallowed intermediate is used only by the next node
// of the pattern (SiLU: by its Sigmoid and Mul) and is no graph output and no
// subgraph read; the fused node produces the last swallowed node's output
// value, so graph outputs keep their Value objects and names; the graph is
// topologically re-sorted afterwards (Z may be produced after the Conv).
#include <limits>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "compiler/pass.h"
#include "compiler/passes/pattern_util.h"

namespace tessera {
namespace {

using ValueSet = std::unordered_set<const Value*>;

struct Activation {
  std::string name;  // the `activation` attribute value
  std::optional<float> alpha, beta;
};

// The activation that node `n` applies to `x` (its data input), if fusable.
std::optional<Activation> MatchUnaryActivation(const Node& n, const Value* x) {
  if (n.num_outputs() != 1 || !IsF32(n.output(0)) || n.input(0) != x) return std::nullopt;
  const std::string& op = n.op_type();
  if (n.domain() == "tessera") {
    if (op != "Gelu" || n.num_inputs() != 1) return std::nullopt;
    std::string approx = n.GetString("approximate", "none");
    if (approx == "none") return Activation{"Gelu", {}, {}};
    if (approx == "tanh") return Activation{"GeluTanh", {}, {}};
    return std::nullopt;
  }
  if (!n.domain().empty()) return std::nullopt;
  if (op == "Relu" || op == "Sigmoid" || op == "Tanh") {
    if (n.num_inputs() != 1) return std::nullopt;
    return Activation{op, {}, {}};
  }
  if (op == "HardSwish") {
    if (n.num_inputs() != 1) return std::nullopt;
    return Activation{"HardSwish", {}, {}};
  }
  if (op == "LeakyRelu") {
    if (n.num_inputs() != 1) return std::nullopt;
    return Activation{"LeakyRelu", n.GetFloat("alpha", 0.01f), {}};
  }
  if (op == "Gelu") {
    if (n.num_inputs() != 1) return std::nullopt;
    std::string approx = n.GetString("approximate", "none");
    if (approx == "none") return Activation{"Gelu", {}, {}};
    if (approx == "tanh") return Activation{"GeluTanh", {}, {}};
    return std::nullopt;
  }
  if (op == "Clip") {
    // Bounds: inputs 1/2 (opset >= 11, must be constant) or attributes min/max (older opsets).
    Activation a{"Clip", {}, {}};
    if (n.input(1)) {
      a.alpha = ScalarConstant(n.input(1));
      if (!a.alpha) return std::nullopt;
    } else if (n.has_attr("min")) {
      a.alpha = n.GetFloat("min", std::numeric_limits<float>::lowest());
    }
    if (n.input(2)) {
      a.beta = ScalarConstant(n.input(2));
      if (!a.beta) return std::nullopt;
    } else if (n.has_attr("max")) {
      a.beta = n.GetFloat("max", std::numeric_limits<float>::max());
    }
    if (n.num_inputs() > 3) return std::nullopt;
    if (a.alpha && a.beta && !(*a.alpha <= *a.beta)) return std::nullopt;  // ONNX: all outputs = max; keep as is
    return a;
  }
  return std::nullopt;
}

class FuseBiasActivationPass : public Pass {
 public:
  const char* name() const override { return "fuse_bias_activation"; }

  Status Run(Graph& g, PassContext& ctx) override {
    outer_ = g.SubgraphCaptures();
    bool changed = false;
    for (Node* n : g.nodes()) {
      if (n->is_dead() || !n->domain().empty()) continue;
      bool fused = false;
      if (n->op_type() == "Conv") fused = TryConv(g, n, ctx.fuse_conv_residual);
      else if (n->op_type() == "MatMul") fused = TryMatMul(g, n);
      else if (n->op_type() == "Gemm") fused = TryGemm(g, n);
      if (fused) {
        ++ctx.changes;
        changed = true;
      }
    }
    if (changed) TSR_RETURN_IF_ERROR(g.TopoSort());
    return Status::Ok();
  }

 private:
  // v may be swallowed: its uses are all inside the pattern being matched.
  bool Internal(const Value* v) const { return v && !v->is_graph_output() && !outer_.count(v); }

  // An activation consuming v (only use), or SiLU as {Sigmoid(v), Mul(v, s)}.
  // On success appends the swallowed nodes and sets *out to the result value.
  bool MatchActivation(const Graph& g, Value* v, Activation* act, std::vector<Node*>* nodes, Value** out) const {
    if (!Internal(v)) return false;
    std::vector<Node*> cons = g.Consumers(v);
    if (cons.size() == 1) {
      auto a = MatchUnaryActivation(*cons[0], v);
      if (!a) return false;
      *act = *a;
      nodes->push_back(cons[0]);
      *out = cons[0]->output(0);
      return true;
    }
    if (cons.size() != 2) return false;
    Node* sig = cons[0]->op_type() == "Sigmoid" ? cons[0] : cons[1];
    Node* mul = sig == cons[0] ? cons[1] : cons[0];
    if (sig->op_type() != "Sigmoid" || !sig->domain().empty() || sig->num_inputs() != 1 || sig->input(0) != v ||
        sig->num_outputs() != 1)
      return false;
    if (mul->op_type() != "Mul" || !mul->domain().empty() || mul->num_inputs() != 2 || mul->num_outputs() != 1)
      return false;
    Value* s = sig->output(0);
    bool operands = (mul->input(0) == v && mul->input(1) == s) || (mul->input(0) == s && mul->input(1) == v);
    if (!operands || !Internal(s) || g.Consumers(s).size() != 1 || !IsF32(mul->output(0))) return false;
    if (!(mul->output(0)->shape() == v->shape())) return false;
    *act = Activation{"Silu", {}, {}};
    nodes->push_back(sig);
    nodes->push_back(mul);
    *out = mul->output(0);
    return true;
  }

  // v's only consumer is Add(v, z) with z another f32 value of v's exact
  // shape (no broadcasting either way); returns that Add and z.
  bool MatchResidual(const Graph& g, Value* v, Node** add, Value** z) const {
    if (!Internal(v) || !v->shape().has_rank()) return false;
    std::vector<Node*> cons = g.Consumers(v);
    if (cons.size() != 1) return false;
    Node* n = cons[0];
    if (n->op_type() != "Add" || !n->domain().empty() || n->num_inputs() != 2 || n->num_outputs() != 1) return false;
    Value* other = n->input(0) == v ? n->input(1) : n->input(0);
    if (!other || other == v || !IsF32(other) || !IsF32(n->output(0))) return false;
    if (!(other->shape() == v->shape()) || !(n->output(0)->shape() == v->shape())) return false;
    *add = n;
    *z = other;
    return true;
  }

  static void SetActivationAttrs(Node* n, const Activation& act) {
    n->set_attr("activation", Attribute::String(act.name));
    if (act.alpha) n->set_attr("activation_alpha", Attribute::Float(*act.alpha));
    if (act.beta) n->set_attr("activation_beta", Attribute::Float(*act.beta));
  }

  // Removes the matched nodes and adds the fused node producing `out`.
  static Node* Replace(Graph& g, Node* base, const std::vector<Node*>& swallowed, const std::string& op,
                       std::vector<Value*> inputs, Value* out) {
    const std::string name = base->name();
    const auto attrs = base->attrs();
    g.RemoveNode(base);
    for (Node* n : swallowed) g.RemoveNode(n);
    while (!inputs.empty() && !inputs.back()) inputs.pop_back();
    Node* fused = g.AddNodeWithOutputs(op, inputs, {out}, name, "tessera");
    for (const auto& [k, a] : attrs) fused->set_attr(k, a);
    return fused;
  }

  bool TryConv(Graph& g, Node* conv, bool allow_residual) {
    Value* y = conv->output(0);
    if (conv->num_outputs() != 1 || conv->num_inputs() < 2 || !IsF32(y) || !IsF32(conv->input(0))) return false;
    std::vector<Node*> swallowed;
    Value* cur = y;
    Node* add = nullptr;
    Value* z = nullptr;
    if (allow_residual && MatchResidual(g, cur, &add, &z)) {
      swallowed.push_back(add);
      cur = add->output(0);
    }
    Activation act;
    bool has_act = MatchActivation(g, cur, &act, &swallowed, &cur);
    if (!add && !has_act) return false;
    Node* fused = Replace(g, conv, swallowed, "FusedConv", {conv->input(0), conv->input(1), conv->input(2), z}, cur);
    SetActivationAttrs(fused, has_act ? act : Activation{});
    fused->set_attr("has_residual", Attribute::Int(add ? 1 : 0));
    return true;
  }

  bool TryMatMul(Graph& g, Node* mm) {
    Value* y = mm->output(0);
    Value* a = mm->input(0);
    Value* b = mm->input(1);
    if (mm->num_outputs() != 1 || mm->num_inputs() != 2 || !IsF32(y) || !IsF32(a) || !IsF32(b)) return false;
    // 1-D operands drop dims from Y; only the plain (rank >= 2) form is fused.
    if (!a->shape().has_rank() || !b->shape().has_rank() || a->shape().rank() < 2 || b->shape().rank() < 2 ||
        !y->shape().has_rank())
      return false;
    std::vector<Node*> swallowed;
    Value* cur = y;
    Value* bias = nullptr;
    if (Value* bv = MatchBias(g, cur, &swallowed)) {
      bias = bv;
      cur = swallowed.back()->output(0);
    }
    Node* add = nullptr;
    Value* z = nullptr;
    if (MatchResidual(g, cur, &add, &z)) {
      swallowed.push_back(add);
      cur = add->output(0);
    }
    Activation act;
    bool has_act = MatchActivation(g, cur, &act, &swallowed, &cur);
    if (!bias && !add && !has_act) return false;
    Node* fused = Replace(g, mm, swallowed, "FusedMatMul", {a, b, bias, z}, cur);
    SetActivationAttrs(fused, has_act ? act : Activation{});
    fused->set_attr("has_residual", Attribute::Int(add ? 1 : 0));
    return true;
  }

  // v's only consumer is Add(v, c) with c a constant f32 of shape [.., 1, N]
  // (N = v's last dim, known; rank <= v's) that does not broadcast v. Returns
  // the bias as a 1-D [N] value (a new constant when c is not 1-D).
  Value* MatchBias(Graph& g, Value* v, std::vector<Node*>* swallowed) const {
    if (!Internal(v)) return nullptr;
    std::vector<Node*> cons = g.Consumers(v);
    if (cons.size() != 1) return nullptr;
    Node* n = cons[0];
    if (n->op_type() != "Add" || !n->domain().empty() || n->num_inputs() != 2 || n->num_outputs() != 1) return nullptr;
    Value* c = n->input(0) == v ? n->input(1) : n->input(0);
    if (!c || c == v || !c->is_constant() || !IsF32(n->output(0))) return nullptr;
    const Tensor* t = c->constant();
    const Shape& ys = v->shape();
    const Dim& last = ys.dim(ys.rank() - 1);
    if (t->dtype() != DType::kF32 || t->rank() < 1 || t->rank() > ys.rank() || !last.is_known() ||
        t->dims().back() != last.value)
      return nullptr;
    for (int i = 0; i + 1 < t->rank(); ++i)
      if (t->dims()[static_cast<size_t>(i)] != 1) return nullptr;
    if (!(n->output(0)->shape() == ys)) return nullptr;
    swallowed->push_back(n);
    if (t->rank() == 1) return c;
    auto flat = Tensor::FromBytes(DType::kF32, {last.value}, t->raw(), t->nbytes());
    if (!flat.ok()) {
      swallowed->pop_back();
      return nullptr;
    }
    return g.AddConstant(g.UniqueName(c->name() + "_1d"), std::move(flat).value());
  }

  bool TryGemm(Graph& g, Node* gemm) {
    Value* y = gemm->output(0);
    if (gemm->num_outputs() != 1 || !IsF32(y) || !IsF32(gemm->input(0))) return false;
    std::vector<Node*> swallowed;
    Activation act;
    Value* cur = y;
    if (!MatchActivation(g, cur, &act, &swallowed, &cur)) return false;
    std::vector<Value*> ins(gemm->inputs().begin(), gemm->inputs().end());
    Node* fused = Replace(g, gemm, swallowed, "FusedGemm", ins, cur);
    SetActivationAttrs(fused, act);
    return true;
  }

  ValueSet outer_;
};

}  // namespace

std::unique_ptr<Pass> CreateFuseBiasActivationPass() { return std::make_unique<FuseBiasActivationPass>(); }

}  // namespace tessera
