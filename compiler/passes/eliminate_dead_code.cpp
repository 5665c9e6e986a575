// eliminate_dead_code: removes nodes none of whose outputs reach a graph
// output, then frees unused values (and unused constants).
#include <unordered_set>

#include "compiler/pass.h"

namespace tessera {
namespace {

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
    }
    g.Compact();
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Pass> CreateEliminateDeadCodePass() { return std::make_unique<EliminateDeadCodePass>(); }

}  // namespace tessera
