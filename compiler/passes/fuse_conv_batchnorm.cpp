// fuse_conv_batchnorm: not implemented yet (placeholder that changes nothing).
#include "compiler/pass.h"

namespace tessera {
namespace {

class Pass_fuse_conv_batchnorm : public Pass {
 public:
  const char* name() const override { return "fuse_conv_batchnorm"; }
  Status Run(Graph& g, PassContext& ctx) override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseConvBatchNormPass() { return std::make_unique<Pass_fuse_conv_batchnorm>(); }

}  // namespace tessera
