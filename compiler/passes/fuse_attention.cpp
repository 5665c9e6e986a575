// fuse_attention: not implemented yet (placeholder that changes nothing).
#include "compiler/pass.h"

namespace tessera {
namespace {

class Pass_fuse_attention : public Pass {
 public:
  const char* name() const override { return "fuse_attention"; }
  Status Run(Graph& g, PassContext& ctx) override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseAttentionPass() { return std::make_unique<Pass_fuse_attention>(); }

}  // namespace tessera
