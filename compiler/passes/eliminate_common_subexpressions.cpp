// eliminate_common_subexpressions: merges constants with the same dtype, dims
// and bytes, and nodes with the same op, domain, attributes (compared by
// content, tensors byte-wise) and inputs (the same Values). Repeats until
// nothing changes, since a merge can make downstream nodes identical.
//
// Not merged: nodes with subgraph attributes, non-deterministic ops (Random*,
// Multinomial, Bernoulli, Dropout), constants that are graph inputs (a user may
// override them), string constants. Graph outputs keep their Values: of two
// identical nodes the one whose outputs are not graph outputs (nor read by a
// subgraph) is removed; when both are, both stay.
#include <algorithm>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "compiler/pass.h"
#include "compiler/passes/pattern_util.h"

namespace tessera {
namespace {

void HashCombine(size_t* h, size_t v) { *h ^= v + 0x9e3779b97f4a7c15ULL + (*h << 6) + (*h >> 2); }

size_t HashBytes(const void* p, size_t n) {
  return std::hash<std::string_view>{}(std::string_view(static_cast<const char*>(p), n));
}

size_t HashTensor(const Tensor& t) {
  size_t h = std::hash<int32_t>{}(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.dims()) HashCombine(&h, std::hash<int64_t>{}(d));
  if (t.dtype() == DType::kString) {
    for (const std::string& s : t.strings()) HashCombine(&h, std::hash<std::string>{}(s));
  } else if (t.nbytes() > 0) {
    HashCombine(&h, HashBytes(t.raw(), t.nbytes()));
  }
  return h;
}

bool SameTensor(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.dims() != b.dims()) return false;
  if (a.dtype() == DType::kString) return a.strings() == b.strings();
  if (a.nbytes() != b.nbytes()) return false;
  return a.raw() == b.raw() || a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Floats compare by bit pattern: 0.0 and -0.0 differ, a NaN equals itself.
bool SameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

bool SameAttr(const Attribute& a, const Attribute& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case AttrType::kFloat: return std::memcmp(&a.f, &b.f, sizeof(float)) == 0;
    case AttrType::kInt: return a.i == b.i;
    case AttrType::kString: return a.s == b.s;
    case AttrType::kTensor: return SameTensor(a.t, b.t);
    case AttrType::kFloats: return SameFloats(a.floats, b.floats);
    case AttrType::kInts: return a.ints == b.ints;
    case AttrType::kStrings: return a.strings == b.strings;
    case AttrType::kGraph: return false;
    case AttrType::kUndefined: return true;
  }
  return false;
}

size_t HashAttr(const Attribute& a) {
  size_t h = std::hash<int32_t>{}(static_cast<int32_t>(a.type));
  switch (a.type) {
    case AttrType::kFloat: HashCombine(&h, HashBytes(&a.f, sizeof(float))); break;
    case AttrType::kInt: HashCombine(&h, std::hash<int64_t>{}(a.i)); break;
    case AttrType::kString: HashCombine(&h, std::hash<std::string>{}(a.s)); break;
    case AttrType::kTensor: HashCombine(&h, HashTensor(a.t)); break;
    case AttrType::kFloats:
      if (!a.floats.empty()) HashCombine(&h, HashBytes(a.floats.data(), a.floats.size() * sizeof(float)));
      break;
    case AttrType::kInts:
      for (int64_t v : a.ints) HashCombine(&h, std::hash<int64_t>{}(v));
      break;
    case AttrType::kStrings:
      for (const std::string& s : a.strings) HashCombine(&h, std::hash<std::string>{}(s));
      break;
    default: break;
  }
  return h;
}

size_t HashNode(const Node& n) {
  size_t h = std::hash<std::string>{}(n.op_type());
  HashCombine(&h, std::hash<std::string>{}(n.domain()));
  for (const Value* v : n.inputs()) HashCombine(&h, std::hash<const void*>{}(v));
  HashCombine(&h, n.num_outputs());
  for (const auto& [k, a] : n.attrs()) {
    HashCombine(&h, std::hash<std::string>{}(k));
    HashCombine(&h, HashAttr(a));
  }
  return h;
}

bool SameNode(const Node& a, const Node& b) {
  if (a.op_type() != b.op_type() || a.domain() != b.domain() || a.inputs() != b.inputs() ||
      a.num_outputs() != b.num_outputs() || a.attrs().size() != b.attrs().size())
    return false;
  for (size_t i = 0; i < a.num_outputs(); ++i)
    if ((a.output(i) == nullptr) != (b.output(i) == nullptr)) return false;
  auto ia = a.attrs().begin();
  for (auto ib = b.attrs().begin(); ib != b.attrs().end(); ++ia, ++ib)
    if (ia->first != ib->first || !SameAttr(ia->second, ib->second)) return false;
  return true;
}

// Rewires node inputs (not graph outputs) from `from` to `to`.
void ReplaceNodeUses(Graph& g, const Value* from, Value* to) {
  for (Node* n : g.nodes())
    for (size_t i = 0; i < n->num_inputs(); ++i)
      if (n->input(i) == from) n->set_input(i, to);
}

class CsePass : public Pass {
 public:
  const char* name() const override { return "eliminate_common_subexpressions"; }
  Status Run(Graph& g, PassContext& ctx) override {
    captured_ = g.SubgraphCaptures();
    bool need_sort = false;
    MergeConstants(g, ctx);
    for (;;) {
      int64_t merged = MergeNodes(g, &need_sort);
      ctx.changes += merged;
      if (merged == 0) break;
    }
    if (need_sort) return g.TopoSort();
    return Status::Ok();
  }

 private:
  // Pinned outputs must keep their Value: graph outputs and subgraph reads.
  bool Pinned(const Node& n) const {
    for (const Value* o : n.outputs())
      if (o && (o->is_graph_output() || captured_.count(o))) return true;
    return false;
  }

  void MergeConstants(Graph& g, PassContext& ctx) {
    std::unordered_map<size_t, std::vector<Value*>> seen;
    for (Value* v : g.values()) {
      const Tensor* t = v->constant();
      if (!t || v->is_graph_input() || t->dtype() == DType::kString) continue;
      std::vector<Value*>& bucket = seen[HashTensor(*t)];
      Value* same = nullptr;
      for (Value* c : bucket)
        if (SameTensor(*c->constant(), *t)) {
          same = c;
          break;
        }
      if (!same) {
        bucket.push_back(v);
        continue;
      }
      // Graph outputs and subgraph reads keep using `v` (still a constant).
      ReplaceNodeUses(g, v, same);
      ++ctx.changes;
    }
  }

  int64_t MergeNodes(Graph& g, bool* need_sort) {
    int64_t merged = 0;
    std::unordered_map<size_t, std::vector<Node*>> seen;
    for (Node* n : g.nodes()) {
      // Dropout may be random (training_mode): two of them are never one.
      if (n->is_dead() || n->num_outputs() == 0 || HasSubgraph(*n) || IsNonDeterministic(*n) ||
          n->op_type() == "Dropout")
        continue;
      std::vector<Node*>& bucket = seen[HashNode(*n)];
      Node* same = nullptr;
      for (Node* c : bucket)
        if (!c->is_dead() && SameNode(*c, *n)) {
          same = c;
          break;
        }
      if (!same) {
        bucket.push_back(n);
        continue;
      }
      Node* keep = same;
      Node* drop = n;
      if (Pinned(*drop)) {
        if (Pinned(*keep)) continue;
        std::swap(keep, drop);
        // `keep` comes later in the order than the users of `drop`.
        *need_sort = true;
        std::replace(bucket.begin(), bucket.end(), drop, keep);
      }
      for (size_t i = 0; i < drop->num_outputs(); ++i)
        if (drop->output(i)) ReplaceNodeUses(g, drop->output(i), keep->output(i));
      g.RemoveNode(drop);
      ++merged;
    }
    return merged;
  }

  std::unordered_set<const Value*> captured_;
};

}  // namespace

std::unique_ptr<Pass> CreateEliminateCommonSubexpressionsPass() { return std::make_unique<CsePass>(); }

}  // namespace tessera
