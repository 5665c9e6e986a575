#include "compiler/autodiff/optimizer.h"

namespace tessera::autodiff {
namespace {

std::string FreshName(Graph& g, const std::string& want) {
  return g.FindValue(want) ? g.UniqueName(want) : want;
}

Value* NewInput(Graph& g, const std::string& name, TensorType t) {
  Value* v = g.AddValue(FreshName(g, name), std::move(t));
  g.AddInput(v);
  return v;
}

Value* Emit(Graph& g, const std::string& op, const std::vector<Value*>& in, const std::vector<Value*>& out,
            const std::map<std::string, Attribute>& attrs, Status* st) {
  Node* n = g.AddNodeWithOutputs(op, in, out, g.UniqueName("optimizer/" + op), "tessera");
  for (const auto& [k, a] : attrs) n->set_attr(k, a);
  if (st->ok()) *st = InferNodeTypes(*n);
  return out.empty() ? nullptr : out[0];
}

}  // namespace

Result<OptimizerInfo> AppendOptimizer(Graph& g, const GradientInfo& grads, const OptimizerConfig& cfg) {
  const bool sgd = cfg.kind == "sgd";
  if (!sgd && cfg.kind != "adamw")
    return InvalidArgument("optimizer: unknown kind '", cfg.kind, "' (expected sgd or adamw)");
  if (grads.params.empty() || grads.params.size() != grads.grads.size())
    return InvalidArgument("optimizer: the gradient info lists no parameters");
  if (sgd && cfg.nesterov && (cfg.momentum <= 0.f || cfg.dampening != 0.f))
    return InvalidArgument("optimizer: nesterov needs momentum > 0 and dampening 0");
  if (cfg.clip_norm < 0.f) return InvalidArgument("optimizer: clip_norm must be >= 0");

  std::vector<Value*> params, gvals;
  DType dt = DType::kUndefined;
  for (size_t i = 0; i < grads.params.size(); ++i) {
    Value* p = g.FindValue(grads.params[i]);
    Value* gv = g.FindValue(grads.grads[i]);
    if (!p || !gv) return NotFound("optimizer: parameter '", grads.params[i], "' or its gradient is not in the graph");
    if (!p->is_graph_input() || p->is_constant())
      return InvalidArgument("optimizer: parameter '", p->name(),
                             "' must be a non-constant graph input (training state is fed and updated each step)");
    if (dt == DType::kUndefined) dt = p->dtype();
    if (p->dtype() != dt || (dt != DType::kF32 && dt != DType::kF64))
      return Unsupported("optimizer: parameter '", p->name(), "' has dtype ", DTypeName(p->dtype()),
                         "; every parameter must be f32, or every one f64");
    params.push_back(p);
    gvals.push_back(gv);
  }

  OptimizerInfo info;
  Status st;
  Value* lr = NewInput(g, "optimizer.lr", TensorType{dt, Shape()});
  info.lr_input = lr->name();
  Value* step = nullptr;
  if (!sgd) {
    step = NewInput(g, "optimizer.step", TensorType{dt, Shape()});
    info.step_input = step->name();
  }

  if (cfg.clip_norm > 0.f) {
    std::vector<Value*> outs;
    for (Value* gv : gvals) outs.push_back(g.AddValue(g.UniqueName(gv->name() + ".clipped"), gv->type()));
    Value* norm = g.AddValue(FreshName(g, "optimizer.grad_norm"), TensorType{dt, Shape()});
    outs.push_back(norm);
    Emit(g, "GlobalNormClip", gvals, outs, {{"max_norm", Attribute::Float(cfg.clip_norm)}}, &st);
    for (size_t i = 0; i < gvals.size(); ++i) gvals[i] = outs[i];
    g.AddOutput(norm);
    info.grad_norm = norm->name();
  }

  std::vector<StateBinding> moments;
  for (size_t i = 0; i < params.size(); ++i) {
    Value* p = params[i];
    Value* p_next = g.AddValue(FreshName(g, p->name() + ".next"), p->type());
    if (sgd) {
      std::vector<Value*> in{p, gvals[i], lr};
      std::vector<Value*> out{p_next};
      if (cfg.momentum > 0.f) {
        Value* buf = NewInput(g, p->name() + ".momentum", p->type());
        Value* buf_next = g.AddValue(FreshName(g, buf->name() + ".next"), p->type());
        in.push_back(buf);
        out.push_back(buf_next);
        moments.push_back({buf->name(), buf_next->name()});
        info.moments_of[p->name()] = {buf->name()};
        g.AddOutput(buf_next);
      }
      Emit(g, "SGDUpdate", in, out,
           {{"momentum", Attribute::Float(cfg.momentum)},
            {"dampening", Attribute::Float(cfg.dampening)},
            {"nesterov", Attribute::Int(cfg.nesterov ? 1 : 0)},
            {"weight_decay", Attribute::Float(cfg.weight_decay)}},
           &st);
    } else {
      Value* m = NewInput(g, p->name() + ".adam_m", p->type());
      Value* v = NewInput(g, p->name() + ".adam_v", p->type());
      Value* m_next = g.AddValue(FreshName(g, m->name() + ".next"), p->type());
      Value* v_next = g.AddValue(FreshName(g, v->name() + ".next"), p->type());
      Emit(g, "AdamWUpdate", {p, gvals[i], m, v, lr, step}, {p_next, m_next, v_next},
           {{"beta1", Attribute::Float(cfg.beta1)},
            {"beta2", Attribute::Float(cfg.beta2)},
            {"epsilon", Attribute::Float(cfg.epsilon)},
            {"weight_decay", Attribute::Float(cfg.weight_decay)}},
           &st);
      moments.push_back({m->name(), m_next->name()});
      moments.push_back({v->name(), v_next->name()});
      info.moments_of[p->name()] = {m->name(), v->name()};
      g.AddOutput(m_next);
      g.AddOutput(v_next);
    }
    g.AddOutput(p_next);
    info.state.push_back({p->name(), p_next->name()});
  }
  TSR_RETURN_IF_ERROR(st);
  info.state.insert(info.state.end(), moments.begin(), moments.end());
  TSR_RETURN_IF_ERROR(g.TopoSort());
  TSR_RETURN_IF_ERROR(g.Verify());
  return info;
}

}  // namespace tessera::autodiff
