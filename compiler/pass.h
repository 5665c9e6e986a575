// Passes and the pass manager.
//
// A pass is `Status Run(Graph&, PassContext&)`: one file per pass under
// compiler/passes/. A pipeline is a named list of passes (compiler/pipelines.cpp).
// After every pass the manager records node counts and time, verifies the graph
// (always in debug builds, or when PassContext::verify is set) and prints the
// graph when the pass is named by `dump_after`.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace tessera {

// Evaluates one node whose inputs are all constants, returning its outputs.
// Supplied by the runtime (it runs the node on the CPU backend); may be empty,
// in which case constant folding folds only what it can compute itself.
using ConstantEvaluator = std::function<Result<std::vector<Tensor>>(const Node& node)>;

struct PassStat {
  std::string pass;
  int64_t nodes_before = 0;
  int64_t nodes_after = 0;
  int64_t changes = 0;      // pass-defined: nodes folded, removed, fused ...
  double millis = 0;
};

struct PassContext {
  int opt_level = 2;
  std::string dump_after;               // pass name, or "all"
  std::ostream* dump_stream = nullptr;  // default std::cerr
  bool verify = false;                  // verify after each pass even in release builds
  ConstantEvaluator evaluator;
  int64_t max_fold_bytes = int64_t{64} << 20;  // don't materialize bigger constants
  // fuse_bias_activation: also fold a residual Add into FusedConv. On by
  // default since the CPU backend keeps oneDNN's conv layout (nhwc) between
  // convs (compiler/assign_layouts.h): the residual then needs no reorder, and
  // ResNet-50 b1 with both (single thread, 2-core AVX-512 VM, oneDNN 2.6, min
  // of 21 runs) took 78.6 ms against 93 ms for neither. Before layouts it
  // measured 3-4 ms slower (min 46 vs 43 ms at 2 threads), so a backend
  // without `choose_layouts` may prefer it off.
  bool fuse_conv_residual = true;
  std::vector<PassStat> stats;
  int64_t changes = 0;                  // a pass adds to this; the manager resets it per pass
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual const char* name() const = 0;
  virtual Status Run(Graph& g, PassContext& ctx) = 0;
};

class PassManager {
 public:
  void Add(std::unique_ptr<Pass> p) { passes_.push_back(std::move(p)); }
  std::vector<std::string> PassNames() const;
  // Runs each pass in order; stops at the first failure, naming the pass.
  Status Run(Graph& g, PassContext& ctx) const;

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
};

// Pass factories (one file each in compiler/passes/).
std::unique_ptr<Pass> CreateInferShapesPass();
std::unique_ptr<Pass> CreateFoldConstantsPass();
std::unique_ptr<Pass> CreateEliminateDeadCodePass();
std::unique_ptr<Pass> CreateSimplifyAlgebraPass();            // passes/simplify_algebra.cpp
std::unique_ptr<Pass> CreateInlineControlFlowPass();          // passes/inline_control_flow.cpp
std::unique_ptr<Pass> CreateEliminateCommonSubexpressionsPass();  // passes/eliminate_common_subexpressions.cpp
std::unique_ptr<Pass> CreateFuseConvBatchNormPass();          // passes/fuse_conv_batchnorm.cpp
std::unique_ptr<Pass> CreateFuseLayerNormPass();              // passes/fuse_layernorm.cpp
std::unique_ptr<Pass> CreateFuseGeluPass();                   // passes/fuse_gelu.cpp
std::unique_ptr<Pass> CreateFuseAttentionPass();              // passes/fuse_attention.cpp
std::unique_ptr<Pass> CreateFuseBiasActivationPass();         // passes/fuse_bias_activation.cpp
std::unique_ptr<Pass> CreateFuseElementwisePass();            // passes/fuse_elementwise.cpp

// Pipelines by optimization level, like ONNX Runtime's levels:
//   O0: infer_shapes, inline_control_flow
//   O1: infer_shapes, simplify_algebra, fold_constants, inline_control_flow, fold_constants,
//       eliminate_common_subexpressions,
//       eliminate_dead_code, infer_shapes
//   O2: O1 + fuse_conv_batchnorm, fuse_layernorm, fuse_gelu, fuse_attention,
//       fuse_bias_activation, fuse_elementwise, eliminate_dead_code, infer_shapes
Result<PassManager> BuildPipeline(int opt_level);
// Names of every known pass (for --dump-after validation).
std::vector<std::string> KnownPassNames();

}  // namespace tessera
