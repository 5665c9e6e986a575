// eliminate_common_subexpressions: not implemented yet (placeholder that changes nothing).
#include "compiler/pass.h"

namespace tessera {
namespace {

class Pass_eliminate_common_subexpressions : public Pass {
 public:
  const char* name() const override { return "eliminate_common_subexpressions"; }
  Status Run(Graph& g, PassContext& ctx) override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<Pass> CreateEliminateCommonSubexpressionsPass() { return std::make_unique<Pass_eliminate_common_subexpressions>(); }

}  // namespace tessera
