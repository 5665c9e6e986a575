// Gradient rules of elementwise ops. Inputs may broadcast: rules return
// gradients of the output's shape and the driver sums them down to each
// input's shape.
#include "compiler/autodiff/autodiff.h"

namespace tessera::autodiff {
namespace {

DType DT(const Value* v) { return v->dtype(); }

Status GradAdd(GradContext& c) {
  c.dx[0] = c.dy[0];
  c.dx[1] = c.dy[0];
  return Status::Ok();
}

Status GradSum(GradContext& c) {
  for (size_t i = 0; i < c.node.num_inputs(); ++i) c.dx[i] = c.dy[0];
  return Status::Ok();
}

Status GradSub(GradContext& c) {
  c.dx[0] = c.dy[0];
  if (c.need(1)) c.dx[1] = c.b.Op("Neg", {c.dy[0]});
  return Status::Ok();
}

Status GradMul(GradContext& c) {
  if (c.need(0)) c.dx[0] = c.b.Op("Mul", {c.dy[0], c.in(1)});
  if (c.need(1)) c.dx[1] = c.b.Op("Mul", {c.dy[0], c.in(0)});
  return Status::Ok();
}

// y = a / b: da = dy / b, db = -dy * y / b.
Status GradDiv(GradContext& c) {
  if (c.need(0)) c.dx[0] = c.b.Op("Div", {c.dy[0], c.in(1)});
  if (c.need(1)) c.dx[1] = c.b.Op("Neg", {c.b.Op("Div", {c.b.Op("Mul", {c.dy[0], c.out(0)}), c.in(1)})});
  return Status::Ok();
}

Status GradNeg(GradContext& c) {
  c.dx[0] = c.b.Op("Neg", {c.dy[0]});
  return Status::Ok();
}

Status GradIdentity(GradContext& c) {
  c.dx[0] = c.dy[0];
  return Status::Ok();
}

Status GradExp(GradContext& c) {
  c.dx[0] = c.b.Op("Mul", {c.dy[0], c.out(0)});
  return Status::Ok();
}

Status GradLog(GradContext& c) {
  c.dx[0] = c.b.Op("Div", {c.dy[0], c.in(0)});
  return Status::Ok();
}

// y = sqrt(x): dx = dy * 0.5 / y.
Status GradSqrt(GradContext& c) {
  c.dx[0] = c.b.Op("Div", {c.b.Op("Mul", {c.dy[0], c.b.Scalar(0.5, DT(c.in(0)))}), c.out(0)});
  return Status::Ok();
}

// y = a ^ b: da = dy * b * a^(b-1), db = dy * y * ln(a) (a > 0 where db matters).
Status GradPow(GradContext& c) {
  Value* a = c.in(0);
  Value* e = c.in(1);
  if (c.need(0)) {
    Value* em1 = c.b.Op("Sub", {e, c.b.Scalar(1.0, DT(e))});
    Value* p = c.b.Op("Pow", {a, em1});
    Value* scale = DT(e) == DT(a) ? c.b.Op("Mul", {p, e}) : c.b.Op("Mul", {p, c.b.Op("Cast", {e}, {{"to", Attribute::Int(static_cast<int64_t>(DT(a)))}})});
    c.dx[0] = c.b.Op("Mul", {c.dy[0], scale});
  }
  if (c.need(1)) c.dx[1] = c.b.Op("Mul", {c.b.Op("Mul", {c.dy[0], c.out(0)}), c.b.Op("Log", {a})});
  return Status::Ok();
}

// dx = dy where x > 0, else 0 (the subgradient 0 at x == 0, like PyTorch).
// One fused tessera.ReluGrad on the output y (y > 0 exactly where x > 0, as
// torch's threshold_backward does), so the pre-activation x need not be kept.
Status GradRelu(GradContext& c) {
  c.dx[0] = c.b.Op("ReluGrad", {c.dy[0], c.out(0)}, {}, "tessera");
  return Status::Ok();
}

Status GradLeakyRelu(GradContext& c) {
  const double alpha = c.node.GetFloat("alpha", 0.01f);
  Value* pos = c.b.Op("Greater", {c.in(0), c.b.Scalar(0.0, DT(c.in(0)))});
  Value* neg = c.b.Op("Mul", {c.dy[0], c.b.Scalar(alpha, DT(c.in(0)))});
  c.dx[0] = c.b.Op("Where", {pos, c.dy[0], neg});
  return Status::Ok();
}

// y = sigmoid(x): dx = dy * y * (1 - y).
Status GradSigmoid(GradContext& c) {
  Value* one_minus = c.b.Op("Sub", {c.b.Scalar(1.0, DT(c.in(0))), c.out(0)});
  c.dx[0] = c.b.Op("Mul", {c.b.Op("Mul", {c.dy[0], c.out(0)}), one_minus});
  return Status::Ok();
}

// y = tanh(x): dx = dy * (1 - y^2).
Status GradTanh(GradContext& c) {
  Value* y2 = c.b.Op("Mul", {c.out(0), c.out(0)});
  c.dx[0] = c.b.Op("Mul", {c.dy[0], c.b.Op("Sub", {c.b.Scalar(1.0, DT(c.in(0))), y2})});
  return Status::Ok();
}

Status GradGelu(GradContext& c) {
  c.dx[0] = c.b.Op("GeluGrad", {c.dy[0], c.in(0)},
                   {{"approximate", Attribute::String(c.node.GetString("approximate", "none"))}}, "tessera");
  return Status::Ok();
}

// Float-to-float casts pass the gradient back in the input's dtype.
Status GradCast(GradContext& c) {
  if (!IsFloatDType(DT(c.out(0))))
    return c.b.Error("the gradient of a cast to the non-float dtype ", DTypeName(DT(c.out(0))), " is undefined");
  c.dx[0] = DT(c.out(0)) == DT(c.in(0))
                ? c.dy[0]
                : c.b.Op("Cast", {c.dy[0]}, {{"to", Attribute::Int(static_cast<int64_t>(DT(c.in(0))))}});
  return Status::Ok();
}

// erf'(x) = 2/sqrt(pi) * exp(-x^2).
Status GradErf(GradContext& c) {
  Value* x = c.in(0);
  Value* e = c.b.Op("Exp", {c.b.Op("Neg", {c.b.Op("Mul", {x, x})})});
  c.dx[0] = c.b.Op("Mul", {c.dy[0], c.b.Op("Mul", {e, c.b.Scalar(1.1283791670955126, DT(x))})});
  return Status::Ok();
}

// |x|' = sign(x) (0 at 0, like PyTorch).
Status GradAbs(GradContext& c) {
  c.dx[0] = c.b.Op("Mul", {c.dy[0], c.b.Op("Sign", {c.in(0)})});
  return Status::Ok();
}

// y = 1/x: dx = -dy * y^2.
Status GradReciprocal(GradContext& c) {
  c.dx[0] = c.b.Op("Neg", {c.b.Op("Mul", {c.dy[0], c.b.Op("Mul", {c.out(0), c.out(0)})})});
  return Status::Ok();
}

Status GradSoftplus(GradContext& c) {
  c.dx[0] = c.b.Op("Mul", {c.dy[0], c.b.Op("Sigmoid", {c.in(0)})});
  return Status::Ok();
}

// Clip: dy flows to x where min <= x <= max (PyTorch's clamp convention), to
// min where x < min and to max where x > max.
Status GradClip(GradContext& c) {
  Value* x = c.in(0);
  const DType dt = DT(x);
  Value* lo = nullptr;
  Value* hi = nullptr;
  if (c.b.onnx_opset() >= 11) {
    lo = c.in(1);
    hi = c.in(2);
  } else {
    if (c.node.has_attr("min")) lo = c.b.Scalar(c.node.GetFloat("min", 0.f), dt);
    if (c.node.has_attr("max")) hi = c.b.Scalar(c.node.GetFloat("max", 0.f), dt);
  }
  Value* zero = c.b.Scalar(0.0, dt);
  Value* inside = nullptr;
  if (lo) inside = c.b.Op("GreaterOrEqual", {x, lo});
  if (hi) {
    Value* le = c.b.Op("LessOrEqual", {x, hi});
    inside = inside ? c.b.Op("And", {inside, le}) : le;
  }
  c.dx[0] = inside ? c.b.Op("Where", {inside, c.dy[0], zero}) : c.dy[0];
  if (c.need(1) && lo) c.dx[1] = c.b.Op("Where", {c.b.Op("Less", {x, lo}), c.dy[0], zero});
  if (c.need(2) && hi) c.dx[2] = c.b.Op("Where", {c.b.Op("Greater", {x, hi}), c.dy[0], zero});
  return Status::Ok();
}

Status GradWhere(GradContext& c) {
  Value* zero = c.b.Scalar(0.0, DT(c.out(0)));
  if (c.need(1)) c.dx[1] = c.b.Op("Where", {c.in(0), c.dy[0], zero});
  if (c.need(2)) c.dx[2] = c.b.Op("Where", {c.in(0), zero, c.dy[0]});
  return Status::Ok();
}

// Elementwise Max/Min (any number of inputs): dy flows to every input equal
// to the result (ties, a measure-zero case, pass the full gradient to each).
Status GradMaxMin(GradContext& c) {
  Value* zero = c.b.Scalar(0.0, DT(c.out(0)));
  for (size_t i = 0; i < c.node.num_inputs(); ++i)
    if (c.need(i)) c.dx[i] = c.b.Op("Where", {c.b.Op("Equal", {c.in(i), c.out(0)}), c.dy[0], zero});
  return Status::Ok();
}

}  // namespace

void RegisterElementwiseGrads(std::map<std::string, GradRule>& r) {
  r["Add"] = GradAdd;
  r["Sum"] = GradSum;
  r["Sub"] = GradSub;
  r["Mul"] = GradMul;
  r["Div"] = GradDiv;
  r["Neg"] = GradNeg;
  r["Identity"] = GradIdentity;
  r["Exp"] = GradExp;
  r["Log"] = GradLog;
  r["Sqrt"] = GradSqrt;
  r["Pow"] = GradPow;
  r["Relu"] = GradRelu;
  r["LeakyRelu"] = GradLeakyRelu;
  r["Sigmoid"] = GradSigmoid;
  r["Tanh"] = GradTanh;
  r["Gelu"] = GradGelu;
  r["tessera.Gelu"] = GradGelu;
  r["Cast"] = GradCast;
  r["Erf"] = GradErf;
  r["Abs"] = GradAbs;
  r["Reciprocal"] = GradReciprocal;
  r["Softplus"] = GradSoftplus;
  r["Clip"] = GradClip;
  r["Where"] = GradWhere;
  r["Max"] = GradMaxMin;
  r["Min"] = GradMaxMin;
}

}  // namespace tessera::autodiff
