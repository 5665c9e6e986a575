// fuse_bias_activation: not implemented yet (placeholder that changes nothing).
#include "compiler/pass.h"

namespace tessera {
namespace {

class Pass_fuse_bias_activation : public Pass {
 public:
  const char* name() const override { return "fuse_bias_activation"; }
  Status Run(Graph& g, PassContext& ctx) override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseBiasActivationPass() { return std::make_unique<Pass_fuse_bias_activation>(); }

}  // namespace tessera
