#include <chrono>
#include <iostream>

#include "compiler/pass.h"
#include "graph/printer.h"

namespace tessera {

std::vector<std::string> PassManager::PassNames() const {
  std::vector<std::string> r;
  for (const auto& p : passes_) r.push_back(p->name());
  return r;
}

Status PassManager::Run(Graph& g, PassContext& ctx) const {
#ifndef NDEBUG
  const bool verify = true;
#else
  const bool verify = ctx.verify;
#endif
  std::ostream& dump = ctx.dump_stream ? *ctx.dump_stream : std::cerr;
  for (const auto& p : passes_) {
    PassStat st;
    st.pass = p->name();
    st.nodes_before = static_cast<int64_t>(g.num_nodes());
    ctx.changes = 0;
    auto t0 = std::chrono::steady_clock::now();
    Status s = p->Run(g, ctx);
    auto t1 = std::chrono::steady_clock::now();
    if (!s.ok()) return s.WithContext(StrCat("pass '", p->name(), "'"));
    if (verify) {
      Status v = g.Verify();
      if (!v.ok()) return Internal("graph is invalid after pass '", p->name(), "': ", v.message());
    }
    st.nodes_after = static_cast<int64_t>(g.num_nodes());
    st.changes = ctx.changes;
    st.millis = std::chrono::duration<double, std::milli>(t1 - t0).count();
    ctx.stats.push_back(st);
    if (ctx.dump_after == "all" || ctx.dump_after == p->name()) {
      dump << "=== graph after pass '" << p->name() << "' (" << st.nodes_after << " nodes) ===\n"
           << PrintGraph(g) << "\n";
    }
  }
  return Status::Ok();
}

std::vector<std::string> KnownPassNames() {
  return {"infer_shapes",        "simplify_algebra", "fold_constants", "inline_control_flow",
          "eliminate_common_subexpressions", "eliminate_dead_code", "fuse_conv_batchnorm", "fuse_layernorm", "fuse_gelu",
          "fuse_attention",      "fuse_bias_activation", "fuse_elementwise"};
}

Result<PassManager> BuildPipeline(int opt_level) {
  if (opt_level < 0 || opt_level > 2)
    return InvalidArgument("optimization level must be 0, 1 or 2, got ", opt_level);
  PassManager pm;
  pm.Add(CreateInferShapesPass());
  if (opt_level == 0) pm.Add(CreateInlineControlFlowPass());
  if (opt_level >= 1) {
    pm.Add(CreateSimplifyAlgebraPass());
    pm.Add(CreateFoldConstantsPass());
    pm.Add(CreateInlineControlFlowPass());  // after folding: trip counts and conditions are constants
    pm.Add(CreateFoldConstantsPass());      // inlined bodies often compute on constants (loop counters)
    pm.Add(CreateEliminateCommonSubexpressionsPass());
    pm.Add(CreateEliminateDeadCodePass());
    pm.Add(CreateInferShapesPass());
  }
  if (opt_level >= 2) {
    pm.Add(CreateFuseConvBatchNormPass());
    pm.Add(CreateFuseLayerNormPass());
    pm.Add(CreateFuseGeluPass());
    pm.Add(CreateFuseAttentionPass());
    pm.Add(CreateFuseBiasActivationPass());
    pm.Add(CreateFuseElementwisePass());
    pm.Add(CreateEliminateDeadCodePass());
    pm.Add(CreateInferShapesPass());
  }
  return pm;
}

}  // namespace tessera
