// infer_shapes: type and shape inference over the whole graph (graph/op_schema).
#include "compiler/pass.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

class InferShapesPass : public Pass {
 public:
  const char* name() const override { return "infer_shapes"; }
  Status Run(Graph& g, PassContext& ctx) override { return InferGraphTypes(g); }
};

}  // namespace

std::unique_ptr<Pass> CreateInferShapesPass() { return std::make_unique<InferShapesPass>(); }

}  // namespace tessera
