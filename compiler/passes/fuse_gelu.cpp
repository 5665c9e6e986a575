// fuse_gelu: not implemented yet (placeholder that changes nothing).
#include "compiler/pass.h"

namespace tessera {
namespace {

class Pass_fuse_gelu : public Pass {
 public:
  const char* name() const override { return "fuse_gelu"; }
  Status Run(Graph& g, PassContext& ctx) override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseGeluPass() { return std::make_unique<Pass_fuse_gelu>(); }

}  // namespace tessera
