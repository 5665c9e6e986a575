// fuse_attention: rewrites scaled dot-product attention into one
// tessera.FusedAttention node.
//
// Pattern (f32, rank 3 or 4, found from each Softmax backwards):
//
//   S  = MatMul(Q', KT)                 Q' = Q, optionally Mul/Div by scalar constants
//   S  = Mul(S, c) | Div(S, c)          any number, scalar f32 constants (before any mask)
//   S  = Add(S, M) | Add(M, S)          any number of additive f32 masks
//   S  = Where(C, S, -inf) | Where(C, -inf, S)   at most one, bool condition
//   P  = Softmax(S, axis = last)
//   Y  = MatMul(P, V)
//
// KT is K transposed over its last two dims: usually Transpose(X, perm) whose
// perm, with its last two entries swapped, gives K = Transpose(X, perm')
// ([b,s,h,d] -> perm [0,2,3,1] becomes [0,2,1,3]; [b,h,s,d] -> [0,1,3,2]
// becomes the identity, so X is K). Any other KT gets a Transpose swapping
// its last two dims. Scalar scales on the K side are peeled too.
//
// Result: Y = FusedAttention(Q, K, V [, mask]) with scale = product of the
// peeled factors and causal = 1 when one additive mask is the constant
// top-left causal mask (0 on and below the diagonal, -inf above), which is
// then dropped. Several additive masks are summed into one (Add nodes); a
// Where gives a bool keep-mask (Not when the scores are the else branch); a
// Where together with additive masks becomes Where(keep, 0, -inf) and is
// summed with them.
//
// Rank 3 (nn.MultiheadAttention exports batched matmuls over [b*h, s, d]):
// the FusedAttention schema and kernels are 4-D, so Q, K and V get an
// Unsqueeze(axis 0) to [1, b*h, s, d] and the result a Squeeze(axis 0); a mask
// of rank <= 3 broadcasts to [1, b*h, sq, sk] unchanged.
//
// Conditions: every intermediate (scores, each scale/mask step, P) has exactly
// one use, the next node of the pattern, and is not a graph output; leading
// (batch, head) dims of Q, K and V are equal (known or the same symbol, no
// MatMul broadcasting); masks must not enlarge the scores; Y keeps its Value
// (it may be a graph output). Anything else leaves the graph untouched.
#include <cmath>
#include <limits>
#include <optional>
#include <unordered_map>

#include "compiler/pass.h"
#include "compiler/passes/pattern_util.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

using UseMap = std::unordered_map<const Value*, int>;

bool IsOnnx(const Node* n, const char* op) { return n && n->domain().empty() && n->op_type() == op; }

// Every dim known or a named symbol (so equal shapes really are equal).
bool Definite(const Shape& s) {
  if (!s.has_rank()) return false;
  for (const Dim& d : s.dims())
    if (!SameRuntimeDim(d, d)) return false;
  return true;
}

// Mul(x, c) / Mul(c, x) / Div(x, c) with a scalar constant c whose broadcast
// leaves x's shape unchanged: returns x and multiplies *scale by c (or 1/c).
Value* PeelScale(const Node* n, double* scale) {
  if (!n || n->num_inputs() != 2 || n->num_outputs() != 1) return nullptr;
  const Value* out = n->output(0);
  bool mul = IsOnnx(n, "Mul"), div = IsOnnx(n, "Div");
  if (!mul && !div) return nullptr;
  for (int side = 0; side < (mul ? 2 : 1); ++side) {
    Value* x = n->input(side);
    auto c = ScalarConstant(n->input(1 - side));
    if (!c || !IsF32(x) || !x->shape().has_rank() || x->shape() != out->shape()) continue;
    if (!std::isfinite(*c) || *c == 0) return nullptr;
    *scale *= mul ? *c : 1.0 / *c;
    return x;
  }
  return nullptr;
}

struct Match {
  Node* qk = nullptr;
  Node* softmax = nullptr;
  Node* pv = nullptr;
  std::vector<Node*> chain;  // scale/mask nodes between qk and softmax
  Value* q = nullptr;
  Value* k_src = nullptr;
  std::vector<int64_t> k_perm;  // Transpose k_src by this to get K (empty: k_src is K)
  Value* v = nullptr;
  double scale = 1.0;
  std::vector<Value*> add_masks;
  Value* where_cond = nullptr;
  bool where_negate = false;
  int rank = 0;
};

class Matcher {
 public:
  Matcher(const Graph& g, const UseMap& uses) : g_(g), uses_(uses) {}

  // Fills m from a Softmax node; false when it is not the head of the pattern.
  bool FromSoftmax(Node* sm, Match* m) {
    if (sm->num_inputs() != 1 || sm->num_outputs() != 1) return false;
    Value* p = sm->output(0);
    Value* s = sm->input(0);
    if (!IsF32(s) || !Definite(s->shape())) return false;
    const int r = s->shape().rank();
    if (r != 3 && r != 4) return false;
    // Before opset 13 Softmax flattens to 2-D at `axis` (default 1): only
    // axis = last is a last-axis softmax there.
    int64_t axis = sm->GetInt("axis", g_.OpsetFor("") >= 13 ? -1 : 1);
    if (axis != -1 && axis != r - 1) return false;
    if (!SingleInternalUse(p)) return false;
    std::vector<Node*> cons = g_.Consumers(p);
    if (cons.size() != 1 || !IsOnnx(cons[0], "MatMul") || cons[0]->input(0) != p || cons[0]->input(1) == p)
      return false;
    m->softmax = sm;
    m->pv = cons[0];
    m->rank = r;
    m->v = m->pv->input(1);
    if (!IsF32(m->v) || !m->v->shape().has_rank() || m->v->shape().rank() != r) return false;
    if (!IsF32(m->pv->output(0))) return false;
    return MatchScores(s, false, m) && CheckShapes(m);
  }

 private:
  bool SingleInternalUse(const Value* v) const {
    auto it = uses_.find(v);
    return it != uses_.end() && it->second == 1 && !v->is_graph_output();
  }

  // x is (a step of) the scores, consumed only by the pattern's next node.
  // seen_scale: a scale step was already seen closer to the Softmax, so a
  // mask here would be scaled too (not allowed).
  bool MatchScores(Value* x, bool seen_scale, Match* m) {
    if (!SingleInternalUse(x) || !IsF32(x)) return false;
    Node* n = x->producer();
    if (!n || n->num_outputs() != 1) return false;
    if (IsOnnx(n, "MatMul")) return MatchQK(n, m);
    if (IsOnnx(n, "Mul") || IsOnnx(n, "Div")) {
      double sc = 1.0;
      Value* y = PeelScale(n, &sc);
      if (!y) return false;
      m->chain.push_back(n);
      m->scale *= sc;
      return MatchScores(y, true, m);
    }
    if (IsOnnx(n, "Add") && n->num_inputs() == 2) {
      if (seen_scale) return false;
      for (int side = 0; side < 2; ++side) {
        Value* path = n->input(side);
        Value* mask = n->input(1 - side);
        if (path == mask || !IsF32(mask) || !mask->shape().has_rank() || !path->shape().has_rank()) continue;
        if (path->shape() != x->shape() || mask->shape().rank() > x->shape().rank()) continue;
        Match trial = *m;
        trial.chain.push_back(n);
        trial.add_masks.push_back(mask);
        if (MatchScores(path, false, &trial)) {
          *m = std::move(trial);
          return true;
        }
      }
      return false;
    }
    if (IsOnnx(n, "Where") && n->num_inputs() == 3 && !m->where_cond) {
      if (seen_scale) return false;
      Value* cond = n->input(0);
      if (!cond || cond->dtype() != DType::kBool || !cond->shape().has_rank() ||
          cond->shape().rank() > x->shape().rank())
        return false;
      for (int side = 1; side <= 2; ++side) {
        Value* path = n->input(side);
        auto fill = ScalarConstant(n->input(3 - side));
        if (!fill || !std::isinf(*fill) || *fill > 0) continue;
        if (!path || path->shape() != x->shape()) continue;
        Match trial = *m;
        trial.chain.push_back(n);
        trial.where_cond = cond;
        trial.where_negate = side == 2;
        if (MatchScores(path, false, &trial)) {
          *m = std::move(trial);
          return true;
        }
      }
      return false;
    }
    return false;
  }

  bool MatchQK(Node* mm, Match* m) {
    if (mm->num_inputs() != 2) return false;
    m->qk = mm;
    // Q side: scalar scales peeled (the scaled value may have other users).
    Value* q = mm->input(0);
    while (q && q->producer()) {
      Value* y = PeelScale(q->producer(), &m->scale);
      if (!y) break;
      q = y;
    }
    Value* kt = mm->input(1);
    while (kt && kt->producer()) {
      Value* y = PeelScale(kt->producer(), &m->scale);
      if (!y) break;
      kt = y;
    }
    if (!IsF32(q) || !IsF32(kt)) return false;
    const int r = m->rank;
    if (!q->shape().has_rank() || q->shape().rank() != r) return false;
    if (!kt->shape().has_rank() || kt->shape().rank() != r) return false;
    m->q = q;
    std::vector<int64_t> perm;
    Node* tr = kt->producer();
    if (IsOnnx(tr, "Transpose") && tr->num_inputs() == 1 && tr->input(0) && tr->input(0)->shape().has_rank() &&
        tr->input(0)->shape().rank() == r) {
      perm = tr->GetInts("perm");
      if (perm.empty())
        for (int i = r - 1; i >= 0; --i) perm.push_back(i);
      if (static_cast<int>(perm.size()) != r) return false;
      std::swap(perm[static_cast<size_t>(r - 2)], perm[static_cast<size_t>(r - 1)]);
      m->k_src = tr->input(0);
    } else {
      for (int i = 0; i < r; ++i) perm.push_back(i);
      std::swap(perm[static_cast<size_t>(r - 2)], perm[static_cast<size_t>(r - 1)]);
      m->k_src = kt;
    }
    bool identity = true;
    for (int i = 0; i < r; ++i)
      if (perm[static_cast<size_t>(i)] != i) identity = false;
    if (!identity) m->k_perm = perm;
    return IsF32(m->k_src);
  }

  // Q [.., sq, d], K [.., sk, d], V [.., sk, dv] with identical leading dims.
  bool CheckShapes(const Match* m) const {
    const int r = m->rank;
    const Shape& q = m->q->shape();
    const Shape& ks = m->k_src->shape();
    std::vector<Dim> k;
    for (int i = 0; i < r; ++i) {
      int64_t src = m->k_perm.empty() ? i : m->k_perm[static_cast<size_t>(i)];
      if (src < 0 || src >= r) return false;
      k.push_back(ks.dim(static_cast<int>(src)));
    }
    const Shape& v = m->v->shape();
    for (int i = 0; i < r - 2; ++i)
      if (!SameRuntimeDim(q.dim(i), k[static_cast<size_t>(i)]) || !SameRuntimeDim(q.dim(i), v.dim(i))) return false;
    if (!SameRuntimeDim(q.dim(r - 1), k[static_cast<size_t>(r - 1)])) return false;
    if (!SameRuntimeDim(k[static_cast<size_t>(r - 2)], v.dim(r - 2))) return false;
    return true;
  }

  const Graph& g_;
  const UseMap& uses_;
};

// True when c is the constant top-left causal mask for scores [.., sq, sk]:
// leading dims 1, 0 where j <= i and -inf where j > i.
bool IsCausalMask(const Value* c, const Shape& scores) {
  if (!c || !c->is_constant() || c->dtype() != DType::kF32) return false;
  const Tensor* t = c->constant();
  const int r = scores.rank();
  if (t->rank() < 2 || t->rank() > r) return false;
  const Dim& sq = scores.dim(r - 2);
  const Dim& sk = scores.dim(r - 1);
  const auto& d = t->dims();
  if (!sq.is_known() || !sk.is_known() || d[d.size() - 2] != sq.value || d[d.size() - 1] != sk.value) return false;
  for (size_t i = 0; i + 2 < d.size(); ++i)
    if (d[i] != 1) return false;
  const float* x = t->data<float>();
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < sq.value; ++i)
    for (int64_t j = 0; j < sk.value; ++j) {
      float e = x[i * sk.value + j];
      if (j > i ? e != ninf : e != 0.f) return false;
    }
  return true;
}

class FuseAttentionPass : public Pass {
 public:
  const char* name() const override { return "fuse_attention"; }
  Status Run(Graph& g, PassContext& ctx) override {
    UseMap uses = g.UseCounts();
    bool changed = false;
    for (Node* n : g.nodes()) {
      if (n->is_dead() || !IsOnnx(n, "Softmax")) continue;
      Match m;
      Matcher matcher(g, uses);
      if (!matcher.FromSoftmax(n, &m)) continue;
      TSR_RETURN_IF_ERROR(Rewrite(g, m));
      ++ctx.changes;
      changed = true;
      uses = g.UseCounts();
    }
    if (changed) TSR_RETURN_IF_ERROR(g.TopoSort());
    return Status::Ok();
  }

 private:
  // Adds a node, infers its output types, and returns its single output.
  static Result<Value*> AddOp(Graph& g, const std::string& op, const std::vector<Value*>& ins,
                              const std::string& base, const std::map<std::string, Attribute>& attrs = {}) {
    Node* n = g.AddNode(op, ins, 1, g.UniqueName(base));
    for (const auto& [k, a] : attrs) n->set_attr(k, a);
    TSR_RETURN_IF_ERROR(InferNodeTypes(*n));
    return n->output(0);
  }

  // Unsqueeze/Squeeze along axis 0, in the form the graph's opset expects.
  static Result<Value*> AxisZeroOp(Graph& g, const char* op, Value* x, const std::string& base, Value* out) {
    std::vector<Value*> ins{x};
    Node* n;
    const bool as_input = g.OpsetFor("") >= 13;
    if (as_input)
      ins.push_back(g.AddConstant(g.UniqueName(base + "_axes"), Tensor::FromVector<int64_t>(DType::kI64, {1}, {0})));
    if (out) n = g.AddNodeWithOutputs(op, ins, {out}, g.UniqueName(base));
    else n = g.AddNode(op, ins, 1, g.UniqueName(base));
    if (!as_input) n->set_attr("axes", Attribute::Ints({0}));
    TSR_RETURN_IF_ERROR(InferNodeTypes(*n));
    return n->output(0);
  }

  static void RemoveIfUnused(Graph& g, Value* v) {
    while (v && v->producer() && !v->is_graph_output() && g.Consumers(v).empty()) {
      Node* p = v->producer();
      if (p->num_outputs() != 1) return;
      Value* next = p->num_inputs() >= 1 ? p->input(0) : nullptr;
      // Only peeled scale/transpose nodes are chased; their data input is input 0 or 1.
      if (IsOnnx(p, "Mul") && p->input(0) && p->input(0)->is_constant()) next = p->input(1);
      if (!IsOnnx(p, "Mul") && !IsOnnx(p, "Div") && !IsOnnx(p, "Transpose")) return;
      g.RemoveNode(p);
      v = next;
    }
  }

  static Status Rewrite(Graph& g, Match& m) {
    const std::string base = m.pv->name().empty() ? std::string("attention") : m.pv->name() + "_attention";
    const Shape scores = m.softmax->input(0)->shape();
    Value* y = m.pv->output(0);
    Value* old_q_in = m.qk->input(0);
    Value* old_kt_in = m.qk->input(1);

    // Causal detection: drop the one constant causal mask among the additive ones.
    bool causal = false;
    for (size_t i = 0; i < m.add_masks.size(); ++i)
      if (IsCausalMask(m.add_masks[i], scores)) {
        m.add_masks.erase(m.add_masks.begin() + static_cast<std::ptrdiff_t>(i));
        causal = true;
        break;
      }

    // The mask input.
    Value* mask = nullptr;
    Value* keep = m.where_cond;
    if (keep && m.where_negate) {
      TSR_ASSIGN_OR_RETURN(keep, AddOp(g, "Not", {keep}, base + "_keep"));
    }
    if (keep && m.add_masks.empty()) {
      mask = keep;
    } else {
      if (keep) {
        Value* zero = g.AddConstant(g.UniqueName(base + "_zero"), Tensor::ScalarF32(0.f));
        Value* ninf = g.AddConstant(g.UniqueName(base + "_ninf"),
                                    Tensor::ScalarF32(-std::numeric_limits<float>::infinity()));
        TSR_ASSIGN_OR_RETURN(Value* add, AddOp(g, "Where", {keep, zero, ninf}, base + "_keep_mask"));
        m.add_masks.push_back(add);
      }
      for (Value* am : m.add_masks) {
        if (!mask) {
          mask = am;
        } else {
          TSR_ASSIGN_OR_RETURN(mask, AddOp(g, "Add", {mask, am}, base + "_mask"));
        }
      }
    }

    Value* k = m.k_src;
    if (!m.k_perm.empty()) {
      TSR_ASSIGN_OR_RETURN(k, AddOp(g, "Transpose", {k}, base + "_k", {{"perm", Attribute::Ints(m.k_perm)}}));
    }
    Value* q = m.q;
    Value* v = m.v;
    const bool rank3 = m.rank == 3;
    if (rank3) {
      TSR_ASSIGN_OR_RETURN(q, AxisZeroOp(g, "Unsqueeze", q, base + "_q4", nullptr));
      TSR_ASSIGN_OR_RETURN(k, AxisZeroOp(g, "Unsqueeze", k, base + "_k4", nullptr));
      TSR_ASSIGN_OR_RETURN(v, AxisZeroOp(g, "Unsqueeze", v, base + "_v4", nullptr));
    }

    // Remove the pattern (Y loses its producer and is reattached below).
    g.RemoveNode(m.pv);
    g.RemoveNode(m.softmax);
    for (Node* c : m.chain) g.RemoveNode(c);
    g.RemoveNode(m.qk);

    std::vector<Value*> ins{q, k, v};
    if (mask) ins.push_back(mask);
    const std::string fname = g.UniqueName(base);
    Node* fa = rank3 ? g.AddNode("FusedAttention", ins, 1, fname, "tessera")
                     : g.AddNodeWithOutputs("FusedAttention", ins, {y}, fname, "tessera");
    fa->set_attr("scale", Attribute::Float(static_cast<float>(m.scale)));
    fa->set_attr("causal", Attribute::Int(causal ? 1 : 0));
    TSR_RETURN_IF_ERROR(InferNodeTypes(*fa));
    if (rank3) TSR_RETURN_IF_ERROR(AxisZeroOp(g, "Squeeze", fa->output(0), base + "_y3", y).status());

    // The peeled Q/K-side nodes whose results nobody reads any more.
    RemoveIfUnused(g, old_q_in);
    RemoveIfUnused(g, old_kt_in);
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseAttentionPass() { return std::make_unique<FuseAttentionPass>(); }

}  // namespace tessera
