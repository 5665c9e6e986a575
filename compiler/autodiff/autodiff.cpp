// The autodiff driver (BuildGradientGraph), GradBuilder and the rule registry.
#include "compiler/autodiff/autodiff.h"

#include <unordered_map>
#include <unordered_set>

namespace tessera::autodiff {
namespace {

std::string RuleKey(const std::string& domain, const std::string& op) {
  return domain.empty() || domain == "ai.onnx" ? op : domain + "." + op;
}

const std::map<std::string, GradRule>& Rules() {
  static const std::map<std::string, GradRule>* rules = [] {
    auto* r = new std::map<std::string, GradRule>();
    RegisterElementwiseGrads(*r);
    RegisterMatMulGrads(*r);
    RegisterShapeGrads(*r);
    RegisterNnGrads(*r);
    RegisterLossGrads(*r);
    return r;
  }();
  return *rules;
}

// A training-mode Dropout (constant training_mode input = true) whose mask
// output is absent is rebuilt with one, so its gradient can reuse the exact
// mask of the forward pass. The data output keeps its Value (and name).
Status MaterializeDropoutMasks(Graph& g) {
  bool changed = false;
  for (Node* n : g.nodes()) {
    if (n->op_type() != "Dropout" || !n->domain().empty()) continue;
    if (n->num_outputs() >= 2 && n->output(1)) continue;
    const Value* t = n->input(2);
    if (!t || !t->constant() || t->constant()->GetAsInt64(0) == 0) continue;
    std::vector<Value*> ins = n->inputs();
    std::map<std::string, Attribute> attrs = n->attrs();
    const std::string name = n->name();
    Value* out = n->output(0);
    g.RemoveNode(n);
    Value* mask = g.AddValue(g.UniqueName(name + "/mask"), TensorType{DType::kBool, out->shape()});
    Node* m = g.AddNodeWithOutputs("Dropout", ins, {out, mask}, name);
    for (const auto& [k, a] : attrs) m->set_attr(k, a);
    changed = true;
  }
  return changed ? g.TopoSort() : Status::Ok();
}

}  // namespace

GradRule FindGradRule(const std::string& domain, const std::string& op) {
  auto it = Rules().find(RuleKey(domain, op));
  return it == Rules().end() ? nullptr : it->second;
}

std::vector<std::string> ListGradRules() {
  std::vector<std::string> r;
  for (const auto& [k, v] : Rules()) r.push_back(k);
  return r;
}

// ---- GradBuilder -------------------------------------------------------------------------

std::vector<Value*> GradBuilder::OpN(const std::string& op, const std::vector<Value*>& inputs, size_t num_outputs,
                                     const std::map<std::string, Attribute>& attrs, const std::string& domain) {
  if (!ok()) return {};
  std::string name = g_.UniqueName(fwd_.name() + "/grad/" + op);
  Node* n = g_.AddNode(op, inputs, num_outputs, name, domain);
  for (const auto& [k, a] : attrs) n->set_attr(k, a);
  n->remove_trailing_absent_inputs();
  ++num_nodes_;
  Status st = InferNodeTypes(*n);
  if (!st.ok()) {
    Fail(st.WithContext(StrCat("gradient of ", fwd_.Describe())));
    return {};
  }
  return n->outputs();
}

Value* GradBuilder::Op(const std::string& op, const std::vector<Value*>& inputs,
                       const std::map<std::string, Attribute>& attrs, const std::string& domain) {
  std::vector<Value*> o = OpN(op, inputs, 1, attrs, domain);
  return o.empty() ? nullptr : o[0];
}

Value* GradBuilder::Scalar(double v, DType dtype) {
  if (!ok()) return nullptr;
  Result<Tensor> t = Tensor::Zeros(dtype, {});
  if (!t.ok()) {
    Fail(t.status());
    return nullptr;
  }
  Tensor x = std::move(t).value();
  switch (dtype) {
    case DType::kF32: *static_cast<float*>(x.mutable_raw()) = static_cast<float>(v); break;
    case DType::kF64: *static_cast<double*>(x.mutable_raw()) = v; break;
    case DType::kI64: *static_cast<int64_t*>(x.mutable_raw()) = static_cast<int64_t>(v); break;
    default:
      Fail(Error("gradient constants of dtype ", DTypeName(dtype), " are not supported (f32, f64)"));
      return nullptr;
  }
  return g_.AddConstant(g_.UniqueName(fwd_.name() + "/grad/const"), std::move(x));
}

Value* GradBuilder::Int64s(const std::vector<int64_t>& values) {
  if (!ok()) return nullptr;
  return g_.AddConstant(g_.UniqueName(fwd_.name() + "/grad/ints"),
                        Tensor::FromVector<int64_t>(DType::kI64, {static_cast<int64_t>(values.size())}, values));
}

Value* GradBuilder::Zeros(const TensorType& t) {
  if (!ok()) return nullptr;
  auto dims = t.shape.AsInts();
  if (!dims) {
    Fail(Error("a zero gradient of symbolic shape ", t.shape.ToString(), " is not supported"));
    return nullptr;
  }
  Result<Tensor> z = Tensor::Zeros(t.dtype, *dims);
  if (!z.ok()) {
    Fail(z.status());
    return nullptr;
  }
  return g_.AddConstant(g_.UniqueName(fwd_.name() + "/grad/zeros"), std::move(z).value());
}

Value* GradBuilder::ReduceSum(Value* x, const std::vector<int64_t>& axes, bool keepdims) {
  if (!ok()) return nullptr;
  std::map<std::string, Attribute> attrs{{"keepdims", Attribute::Int(keepdims ? 1 : 0)}};
  if (onnx_opset() >= 13) return Op("ReduceSum", {x, Int64s(axes)}, attrs);
  attrs["axes"] = Attribute::Ints(axes);
  return Op("ReduceSum", {x}, attrs);
}

Value* GradBuilder::ReshapeTo(Value* x, const std::vector<int64_t>& dims) {
  if (!ok()) return nullptr;
  if (x->shape().AsInts() == std::optional<std::vector<int64_t>>(dims)) return x;
  return Op("Reshape", {x, Int64s(dims)});
}

std::vector<int64_t> GradBuilder::StaticDims(const Value* v, const char* what) {
  if (!ok()) return {};
  auto d = v->shape().AsInts();
  if (!d) {
    Fail(Error(what, " '", v->name(), "' has shape ", v->shape().ToString(),
               "; its gradient needs a static shape"));
    return {};
  }
  return *d;
}

Value* GradBuilder::ReshapeLike(Value* x, Value* like) {
  if (!ok() || !x) return nullptr;
  if (x->shape() == like->shape() && like->shape().has_rank()) return x;
  if (auto d = like->shape().AsInts()) return ReshapeTo(x, *d);
  Value* r = Op("Reshape", {x, Op("Shape", {like})});
  if (r) r->set_type(TensorType{x->dtype(), like->shape()});
  return r;
}

Value* GradBuilder::ReduceToShape(Value* grad, Value* like) {
  if (!ok() || !grad) return grad;
  const Shape& gs = grad->shape();
  const Shape& ts = like->shape();
  if (gs == ts && ts.has_rank()) return grad;
  if (!gs.has_rank() || !ts.has_rank()) {
    Fail(Error("gradient of shape ", gs.ToString(), " must be reduced to ", ts.ToString(), "; that needs known ranks"));
    return nullptr;
  }
  const int gr = gs.rank(), tr = ts.rank();
  if (gr < tr) {
    Fail(Error("gradient of shape ", gs.ToString(), " has lower rank than its value ", ts.ToString()));
    return nullptr;
  }
  std::vector<int64_t> axes;
  for (int i = 0; i < gr; ++i) {
    const int ti = i - (gr - tr);
    if (ti < 0) {
      axes.push_back(i);
      continue;
    }
    const Dim& g = gs.dim(i);
    const Dim& t = ts.dim(ti);
    if (g == t && (g.is_known() || !g.symbol.empty())) continue;  // same known value or same symbol
    if (t.is_known() && t.value == 1 && g.is_known() && g.value != 1) {
      axes.push_back(i);
      continue;
    }
    if (t.is_known() && g.is_known() && t.value == g.value) continue;
    Fail(Error("gradient of shape ", gs.ToString(), " cannot be matched to its value's shape ", ts.ToString(),
               " (axis ", i, " is unknown on one side); static shapes are needed here"));
    return nullptr;
  }
  Value* r = axes.empty() ? grad : ReduceSum(grad, axes, true);
  return ReshapeLike(r, like);
}

// ---- the driver ----------------------------------------------------------------------------

Result<GradientInfo> BuildGradientGraph(Graph& g, const std::string& loss_value, const std::vector<std::string>& wrt,
                                        const GradientOptions& opts) {
  TSR_RETURN_IF_ERROR(MaterializeDropoutMasks(g));
  TSR_RETURN_IF_ERROR(InferGraphTypes(g));
  Value* loss = g.FindValue(loss_value);
  if (!loss) return NotFound("autodiff: the loss value '", loss_value, "' is not in graph '", g.name(), "'");
  if (!IsFloatDType(loss->dtype()))
    return InvalidArgument("autodiff: the loss '", loss_value, "' has dtype ", DTypeName(loss->dtype()),
                           "; it must be floating-point");
  auto loss_dims = loss->shape().AsInts();
  if (!loss_dims)
    return InvalidArgument("autodiff: the loss '", loss_value, "' has shape ", loss->shape().ToString(),
                           "; it must have one element");
  int64_t loss_numel = 1;
  for (int64_t d : *loss_dims) loss_numel *= d;
  if (loss_numel != 1)
    return InvalidArgument("autodiff: the loss '", loss_value, "' has shape ", loss->shape().ToString(),
                           "; it must have one element (reduce it first)");
  if (wrt.empty()) return InvalidArgument("autodiff: no parameters to differentiate with respect to");

  std::vector<Value*> params;
  std::unordered_set<const Value*> param_set;
  for (const std::string& p : wrt) {
    Value* v = g.FindValue(p);
    if (!v) return NotFound("autodiff: parameter '", p, "' is not a value of graph '", g.name(), "'");
    if (!IsFloatDType(v->dtype()))
      return InvalidArgument("autodiff: parameter '", p, "' has dtype ", DTypeName(v->dtype()),
                             "; only floating-point values have gradients");
    if (!param_set.insert(v).second) return InvalidArgument("autodiff: parameter '", p, "' is listed twice");
    params.push_back(v);
  }

  const std::vector<Node*> fwd_nodes = g.nodes();
  if (fwd_nodes.empty()) return InvalidArgument("autodiff: graph '", g.name(), "' has no nodes");

  // Values that depend on a parameter (forward sweep).
  std::unordered_set<const Value*> varies(param_set.begin(), param_set.end());
  for (const Node* n : fwd_nodes) {
    bool any = false;
    for (const Value* v : n->inputs())
      if (v && varies.count(v)) any = true;
    if (any)
      for (const Value* o : n->outputs())
        if (o && IsFloatDType(o->dtype())) varies.insert(o);
  }
  // Values the loss depends on (backward sweep).
  std::unordered_set<const Value*> useful{loss};
  for (auto it = fwd_nodes.rbegin(); it != fwd_nodes.rend(); ++it) {
    const Node* n = *it;
    bool any = false;
    for (const Value* o : n->outputs())
      if (o && useful.count(o)) any = true;
    if (any)
      for (const Value* v : n->inputs())
        if (v) useful.insert(v);
  }

  std::unordered_map<const Value*, std::vector<Value*>> contrib;
  GradientInfo info;
  info.loss = loss_value;
  info.params = wrt;
  int emitted = 0;

  // Seed: d loss / d loss = 1.
  Tensor one;
  {
    TSR_ASSIGN_OR_RETURN(one, Tensor::Zeros(loss->dtype(), *loss_dims));
    if (loss->dtype() == DType::kF32) *static_cast<float*>(one.mutable_raw()) = 1.f;
    else if (loss->dtype() == DType::kF64) *static_cast<double*>(one.mutable_raw()) = 1.0;
    else return Unsupported("autodiff: the loss '", loss_value, "' has dtype ", DTypeName(loss->dtype()),
                            "; f32 and f64 losses are supported");
  }
  contrib[loss].push_back(g.AddConstant(g.UniqueName(loss_value + "/grad_seed"), std::move(one)));

  // Sums the contributions of v into one value (nodes named after b's forward node).
  auto total = [&](GradBuilder& b, const Value* v) -> Value* {
    auto it = contrib.find(v);
    if (it == contrib.end() || it->second.empty()) return nullptr;
    std::vector<Value*>& c = it->second;
    if (c.size() == 1) return c[0];
    Value* s = b.Op("Sum", c);
    c.assign(1, s);
    return s;
  };

  for (auto it = fwd_nodes.rbegin(); it != fwd_nodes.rend(); ++it) {
    Node* n = *it;
    bool on_path = false;
    for (const Value* o : n->outputs())
      if (o && useful.count(o) && varies.count(o) && contrib.count(o)) on_path = true;
    if (!on_path) continue;
    GradBuilder b(g, *n);
    GradContext ctx{b, *n, {}, {}, {}};
    bool any_dy = false;
    for (const Value* o : n->outputs()) {
      Value* d = o ? total(b, o) : nullptr;
      ctx.dy.push_back(d);
      any_dy = any_dy || d;
    }
    if (!b.ok()) return b.status();
    bool any_need = false;
    for (const Value* v : n->inputs()) {
      bool need = v && varies.count(v) && IsFloatDType(v->dtype());
      ctx.needs.push_back(need);
      any_need = any_need || need;
    }
    if (!any_dy || !any_need) {
      emitted += b.num_nodes();
      continue;
    }
    GradRule rule = FindGradRule(n->domain(), n->op_type());
    if (!rule)
      return Unsupported(n->Describe(), ": autodiff has no gradient rule for op ", n->QualifiedOp(),
                         " (it lies between the loss '", loss_value, "' and a parameter)");
    ctx.dx.assign(n->num_inputs(), nullptr);
    Status st = rule(ctx);
    if (st.ok()) st = b.status();
    if (!st.ok()) return st;
    for (size_t i = 0; i < n->num_inputs(); ++i) {
      if (!ctx.need(i) || !ctx.dx[i]) continue;
      Value* d = b.ReduceToShape(ctx.dx[i], n->input(i));
      if (!b.ok()) return b.status();
      if (d->dtype() != n->input(i)->dtype())
        return Internal(n->Describe(), ": gradient of input ", i, " has dtype ", DTypeName(d->dtype()),
                        ", the input has ", DTypeName(n->input(i)->dtype()));
      contrib[n->input(i)].push_back(d);
    }
    emitted += b.num_nodes();
  }

  for (Value* p : params) {
    GradBuilder b(g, p->producer() ? *p->producer() : *fwd_nodes.front());
    Value* d = total(b, p);
    if (!d) d = b.Zeros(p->type());
    if (!b.ok()) return b.status();
    std::string name = opts.grad_prefix + p->name();
    if (g.FindValue(name)) name = g.UniqueName(name);
    Value* out = g.AddValue(name, p->type());
    g.AddNodeWithOutputs("Identity", {d}, {out}, g.UniqueName(p->name() + "/grad/out"));
    emitted += b.num_nodes() + 1;
    g.AddOutput(out);
    info.grads.push_back(name);
    info.grad_of[p->name()] = name;
  }
  info.num_backward_nodes = emitted;
  TSR_RETURN_IF_ERROR(g.TopoSort());
  TSR_RETURN_IF_ERROR(InferGraphTypes(g));
  TSR_RETURN_IF_ERROR(g.Verify());
  return info;
}

}  // namespace tessera::autodiff
