// simplify_algebra: removes nodes that compute nothing and merges chains of
// data-movement ops. Runs after shape inference; dims may be symbolic, so a
// rewrite happens only when its condition is provable from the types:
//   - Identity; Dropout in inference (ratio absent/constant, training_mode
//     absent or constant false, mask output unused); Cast to the input's
//     dtype; Transpose with the identity perm; Reshape/Flatten/Squeeze/
//     Unsqueeze whose output shape provably equals the input shape.
//   - Transpose -> Transpose: one Transpose with the composed perm (none when
//     the composition is the identity).
//   - Reshape-like -> Reshape-like (Reshape, Flatten, Squeeze, Unsqueeze): one
//     Reshape, when the second is a Reshape whose constant shape does not
//     depend on its input (no 0 entries unless allowzero=1), or when the final
//     shape is static (a constant i64 shape is created).
//   - Cast(A->B) -> Cast(B->C) where A->B is exact (a widening): Cast(A->C),
//     removed entirely when C == A.
// Merges only swallow an intermediate whose single use is the next node.
// Graph output Values are never renamed or replaced: a removable node whose
// output is a graph output is removed only when the producer of its input can
// produce that output Value directly; otherwise it stays.
// Only the top-level graph is rewritten; values read by subgraphs are left alone.
#include <algorithm>
#include <unordered_set>

#include "compiler/pass.h"

namespace tessera {
namespace {

bool IsOnnx(const Node* n, const char* op) { return n && n->domain().empty() && n->op_type() == op; }

bool IsReshapeLike(const Node* n) {
  return n && n->domain().empty() &&
         (n->op_type() == "Reshape" || n->op_type() == "Flatten" || n->op_type() == "Squeeze" ||
          n->op_type() == "Unsqueeze");
}

// Equal shapes, dim by dim, where every dim is a known integer or a named
// symbol (an unnamed unknown dim proves nothing).
bool ProvablySameShape(const Shape& a, const Shape& b) {
  if (!a.has_rank() || !b.has_rank() || a.rank() != b.rank()) return false;
  for (int i = 0; i < a.rank(); ++i) {
    const Dim &x = a.dim(i), &y = b.dim(i);
    if (x.is_known() != y.is_known()) return false;
    if (x.is_known() ? x.value != y.value : (x.symbol.empty() || x.symbol != y.symbol)) return false;
  }
  return true;
}

// True when every value of dtype `a` converts to `b` and back exactly.
bool IsExactWidening(DType a, DType b) {
  switch (a) {
    case DType::kU8:
      return b == DType::kU16 || b == DType::kU32 || b == DType::kU64 || b == DType::kI16 || b == DType::kI32 ||
             b == DType::kI64 || b == DType::kF16 || b == DType::kBF16 || b == DType::kF32 || b == DType::kF64;
    case DType::kI8:
      return b == DType::kI16 || b == DType::kI32 || b == DType::kI64 || b == DType::kF16 || b == DType::kBF16 ||
             b == DType::kF32 || b == DType::kF64;
    case DType::kU16:
      return b == DType::kU32 || b == DType::kU64 || b == DType::kI32 || b == DType::kI64 || b == DType::kF32 ||
             b == DType::kF64;
    case DType::kI16:
      return b == DType::kI32 || b == DType::kI64 || b == DType::kF32 || b == DType::kF64;
    case DType::kU32:
      return b == DType::kU64 || b == DType::kI64 || b == DType::kF64;
    case DType::kI32:
      return b == DType::kI64 || b == DType::kF64;
    case DType::kF16:
    case DType::kBF16:
      return b == DType::kF32 || b == DType::kF64;
    case DType::kF32:
      return b == DType::kF64;
    default:
      return false;
  }
}

std::optional<std::vector<int64_t>> TransposePerm(const Node* n) {
  if (const Attribute* a = n->attr("perm"); a && a->type == AttrType::kInts) return a->ints;
  const Shape& s = n->input(0)->shape();
  if (!s.has_rank()) return std::nullopt;
  std::vector<int64_t> p(static_cast<size_t>(s.rank()));
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<int64_t>(p.size() - 1 - i);
  return p;
}

bool IsIdentityPerm(const std::vector<int64_t>& p) {
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != static_cast<int64_t>(i)) return false;
  return true;
}

bool IsValidPerm(const std::vector<int64_t>& p) {
  std::vector<bool> seen(p.size(), false);
  for (int64_t v : p) {
    if (v < 0 || v >= static_cast<int64_t>(p.size()) || seen[static_cast<size_t>(v)]) return false;
    seen[static_cast<size_t>(v)] = true;
  }
  return true;
}

class Simplifier {
 public:
  Simplifier(Graph& g, PassContext& ctx) : g_(g), ctx_(ctx) { captured_ = g.SubgraphCaptures(); }

  // One sweep over the nodes; true when something changed.
  bool Sweep() {
    bool changed = false;
    for (Node* n : g_.nodes()) {
      if (n->is_dead()) continue;
      if (TryNode(n)) {
        ++ctx_.changes;
        changed = true;
      }
    }
    return changed;
  }

  Status Finish() {
    if (need_sort_) return g_.TopoSort();
    return Status::Ok();
  }

 private:
  // Node inputs, graph outputs and subgraph reads of v.
  int Uses(const Value* v) const {
    return static_cast<int>(g_.Consumers(v).size()) + (v->is_graph_output() ? 1 : 0) +
           (captured_.count(v) ? 1 : 0);
  }
  // v is an intermediate whose only use is one input of one node.
  bool SingleUse(const Value* v) const { return Uses(v) == 1 && !v->is_graph_output() && !captured_.count(v); }

  bool TryNode(Node* n) {
    if (!n->domain().empty() || n->num_outputs() == 0 || !n->output(0) || !n->input(0)) return false;
    const std::string& op = n->op_type();
    Value* in = n->input(0);
    Value* out = n->output(0);
    if (op == "Identity") return Forward(n, in, out);
    if (op == "Dropout") return IsInferenceDropout(n) && Forward(n, in, out);
    if (op == "Cast") return SimplifyCast(n);
    if (op == "Transpose") return SimplifyTranspose(n);
    if (IsReshapeLike(n)) {
      if (ProvablySameShape(in->shape(), out->shape()) && in->dtype() == out->dtype()) return Forward(n, in, out);
      return MergeReshapes(n);
    }
    return false;
  }

  bool IsInferenceDropout(const Node* n) const {
    int64_t opset = g_.OpsetFor("");
    if (opset < 7 && n->GetInt("is_test", 0) == 0) return false;  // opset 1-6 default to training
    if (Value* ratio = n->input(1); ratio && !ratio->is_constant()) return false;
    if (Value* tm = n->input(2)) {
      const Tensor* t = tm->constant();
      if (!t || t->num_elements() != 1 || t->GetAsInt64(0) != 0) return false;
    }
    for (size_t i = 1; i < n->num_outputs(); ++i)
      if (n->output(i) && Uses(n->output(i)) != 0) return false;
    return true;
  }

  // Removes `n`, whose output `out` equals its input `in` (same type).
  bool Forward(Node* n, Value* in, Value* out) {
    if (captured_.count(out) || !(in->type() == out->type())) return false;
    if (!out->is_graph_output()) {
      g_.ReplaceAllUsesWith(out, in);
      g_.RemoveNode(n);
      return true;
    }
    // `out` names a graph output: make in's producer produce `out` instead.
    Node* p = in->producer();
    if (!p || p->is_dead() || in->is_graph_input() || in->is_graph_output() || in->is_constant() ||
        captured_.count(in) || p->owner() != &g_)
      return false;
    g_.RemoveNode(n);
    std::vector<Value*> outs = p->outputs();
    for (Value*& o : outs)
      if (o == in) o = out;
    std::string name = p->name(), domain = p->domain(), op = p->op_type();
    std::vector<Value*> inputs = p->inputs();
    auto attrs = p->attrs();
    g_.RemoveNode(p);
    Node* q = g_.AddNodeWithOutputs(op, inputs, outs, name, domain);
    for (auto& [k, a] : attrs) q->set_attr(k, a);
    g_.ReplaceAllUsesWith(in, out);
    need_sort_ = true;
    return true;
  }

  bool SimplifyCast(Node* n) {
    Value* in = n->input(0);
    Value* out = n->output(0);
    DType to = static_cast<DType>(n->GetInt("to", 0));
    if (in->dtype() == DType::kUndefined || to == DType::kUndefined) return false;
    if (in->dtype() == to) return Forward(n, in, out);
    Node* first = in->producer();
    if (!IsOnnx(first, "Cast") || first->is_dead() || !SingleUse(in) || !first->input(0)) return false;
    Value* x = first->input(0);
    DType a = x->dtype(), b = in->dtype();
    if (a == DType::kUndefined || static_cast<DType>(first->GetInt("to", 0)) != b || !IsExactWidening(a, b))
      return false;
    // Cast(A->B) is exact, so Cast(B->C) of it equals Cast(A->C).
    n->set_input(0, x);
    g_.RemoveNode(first);
    if (a == to) Forward(n, x, out);  // may stay when `out` is a graph output it cannot re-home
    return true;
  }

  bool SimplifyTranspose(Node* n) {
    Value* in = n->input(0);
    Value* out = n->output(0);
    auto p2 = TransposePerm(n);
    if (!p2 || !IsValidPerm(*p2)) return false;
    if (IsIdentityPerm(*p2)) return Forward(n, in, out);
    Node* first = in->producer();
    if (!IsOnnx(first, "Transpose") || first->is_dead() || !SingleUse(in) || !first->input(0)) return false;
    auto p1 = TransposePerm(first);
    if (!p1 || !IsValidPerm(*p1) || p1->size() != p2->size()) return false;
    // out[i] = in[p2[i]] = x[p1[p2[i]]].
    std::vector<int64_t> p(p2->size());
    for (size_t i = 0; i < p.size(); ++i) p[i] = (*p1)[static_cast<size_t>((*p2)[i])];
    Value* x = first->input(0);
    n->set_input(0, x);
    n->set_attr("perm", Attribute::Ints(p));
    g_.RemoveNode(first);
    if (IsIdentityPerm(p)) Forward(n, x, out);
    return true;
  }

  // Reshape-like `n` fed by another reshape-like node used only by it.
  bool MergeReshapes(Node* n) {
    Value* in = n->input(0);
    Value* out = n->output(0);
    Node* first = in->producer();
    if (!IsReshapeLike(first) || first->is_dead() || !SingleUse(in) || !first->input(0)) return false;
    if (first->num_outputs() != 1 || n->num_outputs() != 1) return false;
    Value* x = first->input(0);
    if (IsOnnx(n, "Reshape") && n->input(1)) {
      const Tensor* shape = n->input(1)->constant();
      if (shape && IsIntegerDType(shape->dtype())) {
        bool has_zero = false;
        for (int64_t i = 0; i < shape->num_elements(); ++i) has_zero |= shape->GetAsInt64(i) == 0;
        // A 0 copies the input's dim (allowzero=0); that depends on the input.
        if (!has_zero || n->GetInt("allowzero", 0) != 0) {
          n->set_input(0, x);
          g_.RemoveNode(first);
          return true;
        }
      }
    }
    auto dims = out->shape().AsInts();
    if (!dims) return false;
    for (int64_t d : *dims)
      if (d == 0) return false;  // would need allowzero; not worth it
    Value* shape = g_.AddConstant(g_.UniqueName(n->name() + "_shape"),
                                  Tensor::FromVector<int64_t>(DType::kI64, {static_cast<int64_t>(dims->size())}, *dims));
    std::string name = n->name();
    g_.RemoveNode(n);
    g_.RemoveNode(first);
    g_.AddNodeWithOutputs("Reshape", {x, shape}, {out}, name);
    need_sort_ = true;
    return true;
  }

  Graph& g_;
  PassContext& ctx_;
  std::unordered_set<const Value*> captured_;
  bool need_sort_ = false;
};

class SimplifyAlgebraPass : public Pass {
 public:
  const char* name() const override { return "simplify_algebra"; }
  Status Run(Graph& g, PassContext& ctx) override {
    Simplifier s(g, ctx);
    // Each productive sweep removes at least one node, so this terminates; the
    // cap only bounds pathological inputs.
    for (int i = 0; i < 64 && s.Sweep(); ++i) {
    }
    return s.Finish();
  }
};

}  // namespace

std::unique_ptr<Pass> CreateSimplifyAlgebraPass() { return std::make_unique<SimplifyAlgebraPass>(); }

}  // namespace tessera
