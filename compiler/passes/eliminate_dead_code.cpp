// eliminate_dead_code: removes nodes none of whose outputs reach a graph
// output, then frees unused values (and unused constants).
#include <unordered_set>

#include "compiler/pass.h"

namespace tessera {
namespace {

// Values of enclosing graphs that a node's subgraphs (If/Loop/Scan bodies) read.
void AddOuterReads(const Node& n, std::unordered_set<const Value*>* live) {
  for (const auto& [name, a] : n.attrs()) {
    if (a.type != AttrType::kGraph || !a.g) continue;
    for (const Node* inner : a.g->nodes()) {
      for (const Value* v : inner->inputs())
        if (v && v->owner() != a.g.get()) live->insert(v);
      AddOuterReads(*inner, live);
    }
  }
}

bool HasSideEffects(const Node& n) {
  // Nothing in the supported op set has side effects; keep the hook explicit.
  return false;
}

class EliminateDeadCodePass : public Pass {
 public:
  const char* name() const override { return "eliminate_dead_code"; }
  Status Run(Graph& g, PassContext& ctx) override {
    std::unordered_set<const Value*> live(g.outputs().begin(), g.outputs().end());
    std::vector<Node*> order = g.nodes();
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      Node* n = *it;
      bool needed = HasSideEffects(*n);
      for (Value* o : n->outputs())
        if (o && live.count(o)) needed = true;
      if (!needed) {
        g.RemoveNode(n);
        ++ctx.changes;
        continue;
      }
      for (Value* in : n->inputs())
        if (in) live.insert(in);
      AddOuterReads(*n, &live);
    }
    g.Compact();
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Pass> CreateEliminateDeadCodePass() { return std::make_unique<EliminateDeadCodePass>(); }

}  // namespace tessera
