// fuse_layernorm: not implemented yet (placeholder that changes nothing).
#include "compiler/pass.h"

namespace tessera {
namespace {

class Pass_fuse_layernorm : public Pass {
 public:
  const char* name() const override { return "fuse_layernorm"; }
  Status Run(Graph& g, PassContext& ctx) override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseLayerNormPass() { return std::make_unique<Pass_fuse_layernorm>(); }

}  // namespace tessera
