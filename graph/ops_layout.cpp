// Schema of tessera.LayoutConvert(X) -> Y, which compiler/assign_layouts.cpp
// inserts where a value a device keeps in a non-plain memory layout (its
// attribute `from`, e.g. "nhwc") is also read by nodes that need it plain
// (`to` = ""). Logically the identity: Y has X's type and the same elements;
// only the bytes' arrangement in memory differs.
#include "graph/op_schema.h"

namespace tessera {

namespace {

Status InferLayoutConvert(InferenceContext& ctx) {
  if (!ctx.node->has_attr("from") || !ctx.node->has_attr("to"))
    return ctx.Error("attributes 'from' and 'to' (layout names, \"\" = plain) are required");
  if (ctx.node->GetString("from", "") == ctx.node->GetString("to", ""))
    return ctx.Error("'from' and 'to' name the same layout \"", ctx.node->GetString("to", ""), "\"");
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

}  // namespace

void RegisterLayoutOps(OpRegistry& r) {
  OpSchema s;
  s.domain = "tessera";
  s.name = "LayoutConvert";
  s.min_inputs = 1;
  s.max_inputs = 1;
  s.infer = InferLayoutConvert;
  r.Register(std::move(s));
}

}  // namespace tessera
