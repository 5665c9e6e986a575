// Gradient rules of neural-network ops: Conv, pooling, normalizations,
// Softmax/LogSoftmax and Dropout. Most map to tessera-domain gradient ops
// (graph/ops_training.cpp) whose CPU kernels recompute what they need from the
// forward inputs (batch statistics, pooling argmax).
#include "compiler/autodiff/autodiff.h"

namespace tessera::autodiff {
namespace {

Status CheckNoAutoPad(GradContext& c) {
  std::string ap = c.node.GetString("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "VALID")
    return c.b.Error("gradients of auto_pad=", ap, " are not supported; give explicit pads");
  return Status::Ok();
}

// Forward window attributes with defaults filled in, for `spatial` dims.
std::map<std::string, Attribute> WindowAttrs(const Node& n, size_t spatial, bool with_kernel) {
  std::map<std::string, Attribute> a;
  std::vector<int64_t> strides = n.GetInts("strides"), pads = n.GetInts("pads"), dil = n.GetInts("dilations");
  if (strides.empty()) strides.assign(spatial, 1);
  if (pads.empty()) pads.assign(2 * spatial, 0);
  if (dil.empty()) dil.assign(spatial, 1);
  a["strides"] = Attribute::Ints(strides);
  a["pads"] = Attribute::Ints(pads);
  a["dilations"] = Attribute::Ints(dil);
  if (with_kernel) a["kernel_shape"] = Attribute::Ints(n.GetInts("kernel_shape"));
  return a;
}

Status GradConv(GradContext& c) {
  TSR_RETURN_IF_ERROR(CheckNoAutoPad(c));
  std::vector<int64_t> xd = c.b.StaticDims(c.in(0), "X");
  std::vector<int64_t> wd = c.b.StaticDims(c.in(1), "W");
  if (!c.b.ok()) return c.b.status();
  if (xd.size() < 3) return c.b.Error("Conv gradients need X of rank >= 3");
  auto attrs = WindowAttrs(c.node, xd.size() - 2, false);
  attrs["group"] = Attribute::Int(c.node.GetInt("group", 1));
  if (c.need(0)) {
    auto a = attrs;
    a["input_shape"] = Attribute::Ints(xd);
    c.dx[0] = c.b.Op("ConvGradInput", {c.dy[0], c.in(1)}, a, "tessera");
  }
  if (c.need(1)) {
    auto a = attrs;
    a["weight_shape"] = Attribute::Ints(wd);
    c.dx[1] = c.b.Op("ConvGradWeight", {c.dy[0], c.in(0)}, a, "tessera");
  }
  if (c.need(2)) {
    std::vector<int64_t> axes{0};
    for (size_t i = 2; i < xd.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    c.dx[2] = c.b.ReduceSum(c.dy[0], axes, false);
  }
  return Status::Ok();
}

Status GradMaxPool(GradContext& c) {
  TSR_RETURN_IF_ERROR(CheckNoAutoPad(c));
  if (!c.dy[0]) return c.b.Error("only output 0 of MaxPool is differentiable");
  const size_t spatial = c.in(0)->shape().rank() - 2;
  c.dx[0] = c.b.Op("MaxPoolGrad", {c.dy[0], c.in(0)}, WindowAttrs(c.node, spatial, true), "tessera");
  return Status::Ok();
}

Status GradAveragePool(GradContext& c) {
  TSR_RETURN_IF_ERROR(CheckNoAutoPad(c));
  const size_t spatial = c.in(0)->shape().rank() - 2;
  auto a = WindowAttrs(c.node, spatial, true);
  a["count_include_pad"] = Attribute::Int(c.node.GetInt("count_include_pad", 0));
  c.dx[0] = c.b.Op("AveragePoolGrad", {c.dy[0], c.in(0)}, a, "tessera");
  return Status::Ok();
}

Status GradGlobalAveragePool(GradContext& c) {
  std::vector<int64_t> xd = c.b.StaticDims(c.in(0), "X");
  if (!c.b.ok()) return c.b.status();
  int64_t count = 1;
  for (size_t i = 2; i < xd.size(); ++i) count *= xd[i];
  Value* d = c.b.Op("Div", {c.dy[0], c.b.Scalar(static_cast<double>(count), c.dy[0]->dtype())});
  c.dx[0] = c.b.Op("Expand", {d, c.b.Int64s(xd)});
  return Status::Ok();
}

Status GradBatchNorm(GradContext& c) {
  if (!c.dy[0]) return Status::Ok();  // only Y carries gradients; running stats do not
  const bool training = c.node.owner() && c.node.owner()->OpsetFor("") < 14
                            ? c.node.num_outputs() > 1
                            : c.node.GetInt("training_mode", 0) != 0;
  std::vector<Value*> outs =
      c.b.OpN("BatchNormGrad", {c.dy[0], c.in(0), c.in(1), c.in(3), c.in(4)}, 3,
              {{"epsilon", Attribute::Float(c.node.GetFloat("epsilon", 1e-5f))},
               {"training_mode", Attribute::Int(training ? 1 : 0)}},
              "tessera");
  if (outs.empty()) return c.b.status();
  c.dx[0] = outs[0];
  c.dx[1] = outs[1];
  c.dx[2] = outs[2];
  if (c.need(3) || c.need(4)) {
    if (training) return c.b.Error("gradients w.r.t. the running mean/var of a training-mode BatchNormalization are undefined");
  }
  return Status::Ok();
}

Status GradLayerNorm(GradContext& c) {
  if (!c.dy[0] || (c.dy.size() > 1 && c.dy[1]) || (c.dy.size() > 2 && c.dy[2]))
    return c.b.Error("only output 0 (Y) of LayerNormalization is differentiable; Mean/InvStdDev lie on the gradient path");
  const int r = c.in(0)->shape().rank();
  int64_t axis = c.node.GetInt("axis", -1);
  if (axis < 0) axis += r;
  std::vector<Value*> outs = c.b.OpN("LayerNormGrad", {c.dy[0], c.in(0), c.in(1)}, 3,
                                     {{"axis", Attribute::Int(axis)},
                                      {"epsilon", Attribute::Float(c.node.GetFloat("epsilon", 1e-5f))}},
                                     "tessera");
  if (outs.empty()) return c.b.status();
  c.dx[0] = outs[0];
  c.dx[1] = outs[1];
  if (c.node.num_inputs() > 2) c.dx[2] = outs[2];
  return Status::Ok();
}

template <bool kLog>
Status GradSoftmax(GradContext& c) {
  const int64_t opset = c.node.owner() ? c.node.owner()->OpsetFor("") : 17;
  const int r = c.in(0)->shape().rank();
  int64_t axis = c.node.GetInt("axis", opset < 13 ? 1 : -1);
  if (axis < 0) axis += r;
  c.dx[0] = c.b.Op("SoftmaxGrad", {c.dy[0], c.out(0)},
                   {{"axis", Attribute::Int(axis)},
                    {"log", Attribute::Int(kLog ? 1 : 0)},
                    {"coerce_2d", Attribute::Int(opset < 13 ? 1 : 0)}},
                   "tessera");
  return Status::Ok();
}

// Inference-mode Dropout is the identity. Training mode multiplies by the
// mask the forward node produced (output 1, required) over (1 - ratio).
Status GradDropout(GradContext& c) {
  const int64_t opset = c.node.owner() ? c.node.owner()->OpsetFor("") : 17;
  bool training = false;
  double ratio = c.node.GetFloat("ratio", 0.5f);
  if (opset >= 12) {
    if (Value* t = c.in(2)) {
      if (!t->constant()) return c.b.Error("Dropout gradients need a constant training_mode input");
      training = t->constant()->GetAsInt64(0) != 0;
    }
    if (Value* rv = c.in(1)) {
      if (!rv->constant()) return c.b.Error("Dropout gradients need a constant ratio input");
      ratio = rv->constant()->GetAsDouble(0);
    }
  } else {
    training = c.node.GetInt("is_test", 0) == 0 && opset < 7;
  }
  if (!training) {
    c.dx[0] = c.dy[0];
    return Status::Ok();
  }
  if (!c.out(1)) return c.b.Error("the gradient of training-mode Dropout needs its mask output (output 1)");
  DType dt = c.in(0)->dtype();
  Value* m = c.b.Op("Cast", {c.out(1)}, {{"to", Attribute::Int(static_cast<int64_t>(dt))}});
  Value* scaled = c.b.Op("Mul", {c.dy[0], c.b.Scalar(ratio < 1.0 ? 1.0 / (1.0 - ratio) : 0.0, dt)});
  c.dx[0] = c.b.Op("Mul", {scaled, m});
  return Status::Ok();
}

}  // namespace

void RegisterNnGrads(std::map<std::string, GradRule>& r) {
  r["Conv"] = GradConv;
  r["MaxPool"] = GradMaxPool;
  r["AveragePool"] = GradAveragePool;
  r["GlobalAveragePool"] = GradGlobalAveragePool;
  r["BatchNormalization"] = GradBatchNorm;
  r["LayerNormalization"] = GradLayerNorm;
  r["Softmax"] = GradSoftmax<false>;
  r["LogSoftmax"] = GradSoftmax<true>;
  r["Dropout"] = GradDropout;
}

}  // namespace tessera::autodiff
