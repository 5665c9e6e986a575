// Schemas of the tessera-domain normalization/activation ops that the fusion
// passes create (fuse_gelu).
#include <string>

#include "graph/op_schema.h"

namespace tessera {
namespace {

// tessera.Gelu(X) -> Y: Y = X * Phi(X) (approximate="none", the exact erf
// form) or the tanh approximation (approximate="tanh"). Y has X's type; X is
// a floating-point tensor.
Status InferTesseraGelu(InferenceContext& ctx) {
  std::string approx = ctx.node->GetString("approximate", "none");
  if (approx != "none" && approx != "tanh")
    return ctx.Error("attribute 'approximate' must be \"none\" or \"tanh\", got \"", approx, "\"");
  DType t = ctx.input(0).dtype;
  if (t != DType::kUndefined && !IsFloatDType(t))
    return ctx.Error("input 0 has dtype ", DTypeName(t), ", expected a floating-point type");
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

}  // namespace

void RegisterFusedNormOps(OpRegistry& r) {
  OpSchema gelu;
  gelu.domain = "tessera";
  gelu.name = "Gelu";
  gelu.min_inputs = 1;
  gelu.max_inputs = 1;
  gelu.infer = InferTesseraGelu;
  r.Register(std::move(gelu));
}

}  // namespace tessera
