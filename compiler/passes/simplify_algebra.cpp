// simplify_algebra: not implemented yet (placeholder that changes nothing).
#include "compiler/pass.h"

namespace tessera {
namespace {

class Pass_simplify_algebra : public Pass {
 public:
  const char* name() const override { return "simplify_algebra"; }
  Status Run(Graph& g, PassContext& ctx) override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<Pass> CreateSimplifyAlgebraPass() { return std::make_unique<Pass_simplify_algebra>(); }

}  // namespace tessera
