// fuse_elementwise: not implemented yet (placeholder that changes nothing).
#include "compiler/pass.h"

namespace tessera {
namespace {

class Pass_fuse_elementwise : public Pass {
 public:
  const char* name() const override { return "fuse_elementwise"; }
  Status Run(Graph& g, PassContext& ctx) override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseElementwisePass() { return std::make_unique<Pass_fuse_elementwise>(); }

}  // namespace tessera
