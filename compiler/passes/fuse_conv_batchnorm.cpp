// fuse_conv_batchnorm: folds an inference-mode BatchNormalization into the
// Conv that feeds it:
//   Conv(X, W [, B]) -> BatchNormalization(scale, beta, mean, var, epsilon)
//   => Conv(X, W', B') with, per output channel m,
//      s[m] = scale[m] / sqrt(var[m] + epsilon)
//      W'[m, ...] = W[m, ...] * s[m]
//      B'[m] = (B[m] - mean[m]) * s[m] + beta[m]       (B = 0 when absent)
// Preconditions checked per match: f32 throughout; W constant of rank >= 3;
// B absent or a constant [M]; scale/beta/mean/var constants of M elements;
// the Conv output is used only by the BatchNormalization (and is no graph
// output); the BatchNormalization is in inference mode (training_mode 0, no
// used running-stat outputs, spatial 1 where that attribute exists). The new
// Conv produces the BatchNormalization's output value, so graph outputs keep
// their names. Folding is computed in double and rounded once to f32.
#include <cmath>
#include <unordered_set>
#include <vector>

#include "compiler/pass.h"

namespace tessera {
namespace {

// A constant f32 tensor with exactly m elements, or nullptr.
const Tensor* ConstantVector(const Value* v, int64_t m) {
  if (!v || !v->is_constant()) return nullptr;
  const Tensor* t = v->constant();
  if (t->dtype() != DType::kF32 || t->num_elements() != m || t->rank() > 1) return nullptr;
  return t;
}

class FuseConvBatchNormPass : public Pass {
 public:
  const char* name() const override { return "fuse_conv_batchnorm"; }

  Status Run(Graph& g, PassContext& ctx) override {
    const std::unordered_set<const Value*> outer = g.SubgraphCaptures();
    bool changed = false;
    for (Node* bn : g.nodes()) {
      if (bn->is_dead() || bn->op_type() != "BatchNormalization" || !bn->domain().empty()) continue;
      if (TryFold(g, bn, outer)) {
        ++ctx.changes;
        changed = true;
      }
    }
    if (changed) TSR_RETURN_IF_ERROR(g.TopoSort());
    return Status::Ok();
  }

 private:
  static bool TryFold(Graph& g, Node* bn, const std::unordered_set<const Value*>& outer) {
    if (bn->num_inputs() != 5 || bn->num_outputs() < 1 || !bn->output(0)) return false;
    if (bn->GetInt("training_mode", 0) != 0 || bn->GetInt("spatial", 1) != 1) return false;
    // The running-stat outputs (training only) must be unused.
    for (size_t i = 1; i < bn->num_outputs(); ++i) {
      Value* o = bn->output(i);
      if (o && (o->is_graph_output() || outer.count(o) || !g.Consumers(o).empty())) return false;
    }
    Value* y = bn->input(0);
    Node* conv = y ? y->producer() : nullptr;
    if (!conv || conv->op_type() != "Conv" || !conv->domain().empty() || conv->num_outputs() != 1) return false;
    if (y->is_graph_output() || outer.count(y) || g.Consumers(y).size() != 1) return false;
    if (y->dtype() != DType::kF32 || bn->output(0)->dtype() != DType::kF32) return false;
    Value* x = conv->input(0);
    Value* wv = conv->input(1);
    Value* bv = conv->input(2);
    if (!x || !wv || !wv->is_constant()) return false;
    const Tensor& w = *wv->constant();
    if (w.dtype() != DType::kF32 || w.rank() < 3 || w.dims()[0] <= 0) return false;
    const int64_t m = w.dims()[0];
    const Tensor* b = nullptr;
    if (bv) {
      b = ConstantVector(bv, m);
      if (!b) return false;
    }
    const Tensor* scale = ConstantVector(bn->input(1), m);
    const Tensor* beta = ConstantVector(bn->input(2), m);
    const Tensor* mean = ConstantVector(bn->input(3), m);
    const Tensor* var = ConstantVector(bn->input(4), m);
    if (!scale || !beta || !mean || !var) return false;
    const double eps = bn->GetFloat("epsilon", 1e-5f);

    std::vector<double> s(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) {
      double v = static_cast<double>(var->data<float>()[i]) + eps;
      if (!(v > 0)) return false;  // a negative variance would make the fold NaN; keep the graph as it is
      s[static_cast<size_t>(i)] = static_cast<double>(scale->data<float>()[i]) / std::sqrt(v);
    }
    const int64_t per_channel = w.num_elements() / m;
    auto new_w = Tensor::Zeros(DType::kF32, w.dims());
    auto new_b = Tensor::Zeros(DType::kF32, {m});
    if (!new_w.ok() || !new_b.ok()) return false;
    float* pw = static_cast<float*>(new_w->mutable_raw());
    float* pb = static_cast<float*>(new_b->mutable_raw());
    const float* src = w.data<float>();
    for (int64_t c = 0; c < m; ++c) {
      const double sc = s[static_cast<size_t>(c)];
      for (int64_t k = 0; k < per_channel; ++k) {
        const int64_t i = c * per_channel + k;
        pw[i] = static_cast<float>(static_cast<double>(src[i]) * sc);
      }
      const double bias = b ? static_cast<double>(b->data<float>()[c]) : 0.0;
      pb[c] = static_cast<float>((bias - mean->data<float>()[c]) * sc + beta->data<float>()[c]);
    }

    Value* w_folded = g.AddConstant(g.UniqueName(wv->name() + "_bnfold"), std::move(new_w).value());
    Value* b_folded = g.AddConstant(g.UniqueName((bv ? bv->name() : conv->name() + "_bias") + "_bnfold"),
                                    std::move(new_b).value());
    Value* out = bn->output(0);
    const std::string name = conv->name();
    const auto attrs = conv->attrs();
    g.RemoveNode(bn);
    g.RemoveNode(conv);
    Node* fused = g.AddNodeWithOutputs("Conv", {x, w_folded, b_folded}, {out}, name, "");
    for (const auto& [k, a] : attrs) fused->set_attr(k, a);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseConvBatchNormPass() { return std::make_unique<FuseConvBatchNormPass>(); }

}  // namespace tessera
