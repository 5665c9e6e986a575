// fold_constants: evaluates nodes whose inputs are all constants and replaces
// their outputs with constant values. Shape and Size of a statically shaped
// value fold without evaluation, which turns shape subgraphs (Shape -> Gather
// -> Concat -> Reshape) into constants whenever dims are known. Other nodes
// are evaluated through PassContext::evaluator (the CPU backend); when there
// is none they stay. Outputs larger than max_fold_bytes stay unfolded so a
// ConstantOfShape cannot blow up the plan.
#include <algorithm>

#include "compiler/pass.h"
#include "compiler/passes/pattern_util.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

// Shape(x) / Size(x) when x's shape is static.
bool FoldShapeOf(Node* n, Graph& g) {
  Value* x = n->input(0);
  if (!x || !x->shape().is_static() || n->num_outputs() != 1) return false;
  std::vector<int64_t> dims = *x->shape().AsInts();
  Tensor t;
  if (n->op_type() == "Shape") {
    int64_t r = static_cast<int64_t>(dims.size());
    int64_t start = n->GetInt("start", 0), end = n->GetInt("end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::clamp<int64_t>(start, 0, r);
    end = std::clamp<int64_t>(end, 0, r);
    std::vector<int64_t> sl(dims.begin() + start, dims.begin() + std::max(start, end));
    t = Tensor::FromVector<int64_t>(DType::kI64, {static_cast<int64_t>(sl.size())}, sl);
  } else {
    int64_t prod = 1;
    for (int64_t d : dims) prod *= d;
    t = Tensor::ScalarI64(prod);
  }
  Value* out = n->output(0);
  g.RemoveNode(n);
  out->set_constant(std::move(t));
  return true;
}

class FoldConstantsPass : public Pass {
 public:
  const char* name() const override { return "fold_constants"; }
  Status Run(Graph& g, PassContext& ctx) override {
    for (Node* n : g.nodes()) {
      // Earlier folds in this sweep may have made inputs constant, which can
      // settle this node's output shape (Range over a folded Size, Reshape to
      // a folded shape): re-infer before deciding, so one sweep folds whole
      // shape computations. A failure here is reported by infer_shapes later.
      if (!HasSubgraph(*n)) (void)InferNodeTypes(*n);
      if (n->op_type() == "Shape" || n->op_type() == "Size") {
        if (n->domain().empty() && FoldShapeOf(n, g)) ++ctx.changes;
        continue;
      }
      if (!ctx.evaluator || HasSubgraph(*n) || IsNonDeterministic(*n)) continue;
      bool all_const = n->num_inputs() > 0;
      for (Value* in : n->inputs())
        if (in && !in->is_constant()) all_const = false;
      if (!all_const) continue;
      // Outputs must be statically shaped and small enough to keep.
      bool ok = true;
      for (Value* o : n->outputs()) {
        if (!o) continue;
        auto ints = o->shape().AsInts();
        if (!ints || o->dtype() == DType::kUndefined || o->dtype() == DType::kString) { ok = false; break; }
        auto bytes = CheckedByteSize(*ints, o->dtype());
        if (!bytes.ok() || *bytes > ctx.max_fold_bytes) { ok = false; break; }
      }
      if (!ok) continue;
      auto r = ctx.evaluator(*n);
      if (!r.ok()) {
        // A node the evaluator cannot run stays in the graph; the partitioner
        // reports it properly if no device can run it either.
        continue;
      }
      std::vector<Tensor> outs = std::move(r).value();
      if (outs.size() != n->num_outputs())
        return Internal(n->Describe(), ": constant evaluation returned ", outs.size(), " outputs, expected ",
                        n->num_outputs());
      std::vector<Value*> vals = n->outputs();
      g.RemoveNode(n);
      for (size_t i = 0; i < vals.size(); ++i)
        if (vals[i]) vals[i]->set_constant(std::move(outs[i]));
      ++ctx.changes;
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Pass> CreateFoldConstantsPass() { return std::make_unique<FoldConstantsPass>(); }

}  // namespace tessera
