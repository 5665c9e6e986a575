// Gradient rules of the loss ops (tessera.SoftmaxCrossEntropy, tessera.MSE and
// ONNX SoftmaxCrossEntropyLoss in its 2-D, unweighted form).
#include "compiler/autodiff/autodiff.h"

namespace tessera::autodiff {
namespace {

std::map<std::string, Attribute> LossAttrs(const Node& n) {
  std::map<std::string, Attribute> a;
  a["reduction"] = Attribute::String(n.GetString("reduction", "mean"));
  if (n.has_attr("ignore_index")) a["ignore_index"] = Attribute::Int(n.GetInt("ignore_index", -100));
  if (n.has_attr("label_smoothing")) a["label_smoothing"] = Attribute::Float(n.GetFloat("label_smoothing", 0.f));
  return a;
}

Status GradSoftmaxCrossEntropy(GradContext& c) {
  if (c.need(1)) return c.b.Error("labels are not differentiable");
  c.dx[0] = c.b.Op("SoftmaxCrossEntropyGrad", {c.dy[0], c.in(0), c.in(1)}, LossAttrs(c.node), "tessera");
  return Status::Ok();
}

Status GradOnnxSoftmaxCrossEntropyLoss(GradContext& c) {
  if (c.node.num_inputs() > 2 && c.in(2))
    return c.b.Error("gradients of SoftmaxCrossEntropyLoss with class weights are not supported");
  if (c.in(0)->shape().rank() != 2)
    return c.b.Error("gradients of SoftmaxCrossEntropyLoss support 2-D scores [N, C], got ",
                     c.in(0)->shape().ToString());
  if (!c.dy[0]) return c.b.Error("only output 0 (the loss) of SoftmaxCrossEntropyLoss is differentiable here");
  c.dx[0] = c.b.Op("SoftmaxCrossEntropyGrad", {c.dy[0], c.in(0), c.in(1)}, LossAttrs(c.node), "tessera");
  return Status::Ok();
}

Status GradMSE(GradContext& c) {
  Value* d = c.b.Op("MSEGrad", {c.dy[0], c.in(0), c.in(1)}, LossAttrs(c.node), "tessera");
  if (c.need(0)) c.dx[0] = d;
  if (c.need(1)) c.dx[1] = c.b.Op("Neg", {d});
  return Status::Ok();
}

}  // namespace

void RegisterLossGrads(std::map<std::string, GradRule>& r) {
  r["tessera.SoftmaxCrossEntropy"] = GradSoftmaxCrossEntropy;
  r["SoftmaxCrossEntropyLoss"] = GradOnnxSoftmaxCrossEntropyLoss;
  r["tessera.MSE"] = GradMSE;
}

}  // namespace tessera::autodiff
