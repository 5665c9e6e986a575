// TrainingSession (runtime/training_session.h).
//
// Graphs:
//   forward_  the model as given (parameters are initializers): Eval's and
//             ExportOnnx's source.
//   base_     forward_ with the parameters and the BatchNormalization running
//             statistics lifted to graph inputs, BatchNormalization switched to
//             training mode (running statistics become outputs), each Dropout
//             replaced by X * mask (a per-step input "<node>.dropout_mask"),
//             and the loss appended (input loss.label_input).
//   per batch shape: base_ with static input shapes + BuildGradientGraph +
//             [gradient accumulation] + AppendOptimizer -> one Session whose
//             parameters, moments, running statistics and accumulators are
//             Session state (updated in place on the device).
// Only one training Session exists at a time: a new batch shape builds a new
// one and moves the state over through the host.
//
// State names ("canonical", used in checkpoints): parameters by name, moments
// "<p>.momentum" / "<p>.adam_m" / "<p>.adam_v", running statistics by the
// initializer's name, accumulators "<p>.grad_accum".
//
// Gradient accumulation (grad_accum_steps = N > 1): accumulators acc_p are
// state; each call computes s = acc_p + grad_p, the optimizer reads s / N,
// and inputs apply (1 on the N-th call, else 0) and keep (= 1 - apply) select
//   acc_p'   = s * keep
//   state'   = update * apply + state * keep     (parameters and moments)
// which is exact for apply in {0, 1}. The update is computed (and discarded)
// on every micro-batch: correct, not the fastest.
//
// PyTorch semantics: BatchNormalization's running variance is updated with
// the unbiased batch variance like PyTorch (ONNX's kernel uses the biased
// one; UnbiasedRunningVar corrects its output in the graph); the ONNX
// momentum attribute of an exported model already is 1 - torch momentum. Dropout masks come from std::mt19937_64 seeded with
// (TrainingOptions::seed, step, micro-step, Dropout index): a new mask every
// step, the same ones after a checkpoint resume (not PyTorch's stream).
#include "runtime/training_session.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "compiler/autodiff/autodiff.h"
#include "compiler/autodiff/params.h"
#include "graph/onnx/onnx_export.h"
#include "graph/onnx/onnx_import.h"
#include "graph/op_schema.h"
#include "runtime/safetensors.h"
#include "runtime/session.h"

namespace tessera {

namespace {

using json = nlohmann::json;
using Feeds = std::vector<std::pair<std::string, const Tensor*>>;

Result<Tensor> Copy(const Tensor& t) { return Tensor::FromBytes(t.dtype(), t.dims(), t.raw(), t.nbytes()); }

std::string Dims(const std::vector<int64_t>& d) { return Shape::FromInts(d).ToString(); }

Tensor Scalar(DType dt, double v) {
  if (dt == DType::kF64) return Tensor::FromVector<double>(DType::kF64, {}, {v});
  return Tensor::FromVector<float>(DType::kF32, {}, {static_cast<float>(v)});
}

json OptimizerJson(const autodiff::OptimizerConfig& o) {
  return {{"kind", o.kind},       {"momentum", o.momentum}, {"dampening", o.dampening},
          {"nesterov", o.nesterov}, {"beta1", o.beta1},     {"beta2", o.beta2},
          {"epsilon", o.epsilon}, {"weight_decay", o.weight_decay}, {"clip_norm", o.clip_norm}};
}

}  // namespace

struct TrainingSession::Impl {
  TrainingOptions topts;
  SessionOptions opts;
  autodiff::LrSchedule schedule = autodiff::LrSchedule::Create({}).value();
  std::unique_ptr<Graph> forward, base;
  std::string loss_name;
  std::vector<std::string> params;     // trainable parameters
  std::vector<std::string> bn_stats;   // running mean/var inputs (read-write state)
  std::map<std::string, std::string> bn_next;  // running stat -> its updated output in base
  std::vector<std::string> batch_inputs;
  std::map<std::string, TensorType> batch_types;  // declared (possibly symbolic) types
  std::vector<std::string> state_names;  // canonical, in declaration order
  std::map<std::string, Tensor> host;    // values while no training session exists
  DType param_dtype = DType::kF32;

  // The training session for one batch shape.
  std::unique_ptr<Session> train;
  std::string train_key;
  std::map<std::string, std::string> session_name;  // canonical -> input name in `train`
  autodiff::OptimizerInfo opt;
  std::string apply_input, keep_input;  // accumulation only

  std::unique_ptr<Session> eval;
  int64_t version = 0, eval_version = -1;  // bumps whenever parameters/statistics change

  // Training Dropouts (Prepare): mask input, ratio, and its dims in the current training graph.
  struct DropoutMask {
    std::string input;
    std::string x;  // the Dropout's input: the mask has its shape
    double ratio = 0;
    DType dtype = DType::kF32;
    std::vector<int64_t> dims;
  };
  std::vector<DropoutMask> dropouts;
  Result<std::vector<Tensor>> DropoutMasks() const;

  int64_t step = 0;   // optimizer steps done
  int64_t micro = 0;  // micro-batches since the last update

  std::vector<std::string> MomentNames(const std::string& p) const {
    if (topts.optimizer.kind == "adamw") return {p + ".adam_m", p + ".adam_v"};
    if (topts.optimizer.momentum > 0.f) return {p + ".momentum"};
    return {};
  }
  Result<Tensor> Get(const std::string& name) {
    if (train) return train->GetState(session_name.at(name));
    return Copy(host.at(name));
  }
  Status Put(const std::string& name, const Tensor& t) {
    if (train) return train->SetState(session_name.at(name), t);
    TSR_ASSIGN_OR_RETURN(host[name], Copy(t));
    return Status::Ok();
  }
  Status Prepare(std::unique_ptr<Graph> model);
  Status BuildTrain(const std::map<std::string, std::vector<int64_t>>& shapes, const std::string& key);
  Status EnsureEval();
  Status CheckBatch(const Feeds& batch, bool label_optional, std::map<std::string, std::vector<int64_t>>* shapes,
                    std::string* key) const;
};

// ---- construction ------------------------------------------------------------------

namespace {

// ONNX's training BatchNormalization updates the running variance with the
// biased batch variance v; PyTorch (whose exports we train) uses the unbiased
// v * c, c = n / (n - 1), n = elements per channel. With momentum mo (ONNX:
// running' = mo * running + (1 - mo) * v):
//   torch' = mo * running + (1 - mo) * c * v = c * onnx' + (1 - c) * mo * running
// computed here from the node's output (onnx') and input (running) into
// `var_next`; n comes from Shape(X), folded to a constant once shapes are static.
Status UnbiasedRunningVar(Graph& g, const Node& bn, Value* var_next) {
  Value* x = bn.input(0);
  Value* running = bn.input(4);
  const DType dt = running->dtype();
  if (!x->shape().has_rank() || x->shape().rank() < 2)
    return Unsupported(bn.Describe(), ": training needs the input's rank (got shape ", x->shape().ToString(), ")");
  std::vector<int64_t> axes{0};
  for (int64_t i = 2; i < x->shape().rank(); ++i) axes.push_back(i);
  const std::string p = bn.name() + "/unbiased_var/";
  auto op = [&](const std::string& type, std::vector<Value*> in) -> Result<Value*> {
    Node* n = g.AddNode(type, in, 1, g.UniqueName(p + type));
    TSR_RETURN_IF_ERROR(InferNodeTypes(*n));
    return n->output(0);
  };
  auto scalar = [&](const std::string& what, double v) { return g.AddConstant(g.UniqueName(p + what), Scalar(dt, v)); };
  TSR_ASSIGN_OR_RETURN(Value* shape, op("Shape", {x}));
  Value* idx = g.AddConstant(g.UniqueName(p + "axes"),
                             Tensor::FromVector<int64_t>(DType::kI64, {static_cast<int64_t>(axes.size())}, axes));
  TSR_ASSIGN_OR_RETURN(Value* dims, op("Gather", {shape, idx}));
  Node* prod = g.AddNode("ReduceProd", {dims}, 1, g.UniqueName(p + "ReduceProd"));
  prod->set_attr("keepdims", Attribute::Int(0));
  TSR_RETURN_IF_ERROR(InferNodeTypes(*prod));
  Node* cast = g.AddNode("Cast", {prod->output(0)}, 1, g.UniqueName(p + "Cast"));
  cast->set_attr("to", Attribute::Int(static_cast<int64_t>(dt)));
  TSR_RETURN_IF_ERROR(InferNodeTypes(*cast));
  Value* n = cast->output(0);
  TSR_ASSIGN_OR_RETURN(Value* n1, op("Sub", {n, scalar("one", 1.0)}));
  TSR_ASSIGN_OR_RETURN(Value* n1c, op("Max", {n1, scalar("one", 1.0)}));  // n = 1: keep the biased value
  TSR_ASSIGN_OR_RETURN(Value* c, op("Div", {n, n1c}));
  TSR_ASSIGN_OR_RETURN(Value* scaled, op("Mul", {bn.output(2), c}));
  TSR_ASSIGN_OR_RETURN(Value* one_minus_c, op("Sub", {scalar("one", 1.0), c}));
  TSR_ASSIGN_OR_RETURN(Value* coef, op("Mul", {one_minus_c, scalar("momentum", bn.GetFloat("momentum", 0.9f))}));
  TSR_ASSIGN_OR_RETURN(Value* keep, op("Mul", {running, coef}));
  Node* add = g.AddNodeWithOutputs("Add", {scaled, keep}, {var_next}, g.UniqueName(p + "Add"));
  return InferNodeTypes(*add);
}

}  // namespace

Status TrainingSession::Impl::Prepare(std::unique_ptr<Graph> model) {
  TSR_ASSIGN_OR_RETURN(schedule, autodiff::LrSchedule::Create(topts.lr));
  if (topts.grad_accum_steps < 1)
    return InvalidArgument("grad_accum_steps must be >= 1, got ", topts.grad_accum_steps);
  const LossSpec& ls = topts.loss;
  if (ls.kind != "cross_entropy" && ls.kind != "mse")
    return InvalidArgument("loss kind '", ls.kind, "' is unknown (expected cross_entropy or mse)");
  if (!(ls.label_smoothing >= 0.f && ls.label_smoothing < 1.f))
    return InvalidArgument("loss label_smoothing must be in [0, 1), got ", ls.label_smoothing);
  if (ls.label_input.empty()) return InvalidArgument("loss label_input must not be empty");
  if (model->outputs().empty()) return InvalidArgument("the model has no outputs");
  TSR_RETURN_IF_ERROR(InferGraphTypes(*model));
  forward = model->Clone();
  base = std::move(model);
  Graph& g = *base;

  params = topts.params.empty() ? autodiff::TrainableInitializers(g) : topts.params;
  if (params.empty()) return InvalidArgument("the model has no trainable parameters (floating-point initializers)");
  std::set<std::string> seen;
  for (const auto& p : params)
    if (!seen.insert(p).second) return InvalidArgument("parameter '", p, "' is listed twice");
  // BatchNormalization running statistics (inputs 3, 4), when constants.
  for (Node* n : g.nodes()) {
    if (n->domain() != "" || n->op_type() != "BatchNormalization") continue;
    for (size_t i = 3; i < 5; ++i) {
      Value* v = n->input(i);
      if (!v) return InvalidArgument(n->Describe(), ": input ", i, " (running statistics) is missing");
      if (!v->is_constant())
        return Unsupported(n->Describe(), ": running statistics '", v->name(),
                           "' are not initializers; training needs them as initializers");
      if (seen.insert(v->name()).second) bn_stats.push_back(v->name());
    }
  }
  std::vector<std::string> lift = params;
  lift.insert(lift.end(), bn_stats.begin(), bn_stats.end());
  TSR_ASSIGN_OR_RETURN(auto init, autodiff::LiftParameters(g, lift));
  param_dtype = init.front().second.dtype();
  for (size_t i = 0; i < params.size(); ++i)
    if (init[i].second.dtype() != param_dtype)
      return Unsupported("parameters have different dtypes (", init[0].first, " is ", DTypeName(param_dtype), ", ",
                         init[i].first, " is ", DTypeName(init[i].second.dtype()), ")");
  for (auto& [name, t] : init) host[name] = std::move(t);

  // BatchNormalization in training mode with running statistics as outputs.
  std::vector<Node*> bns;
  for (Node* n : g.nodes())
    if (n->domain().empty() && n->op_type() == "BatchNormalization") bns.push_back(n);
  for (Node* n : bns) {
    if (g.OpsetFor("") < 14)
      return Unsupported(n->Describe(), ": training BatchNormalization needs opset 14 or later (the model has ",
                         g.OpsetFor(""), ")");
    if (n->num_outputs() > 1 && (n->output(1) || (n->num_outputs() > 2 && n->output(2))))
      return Unsupported(n->Describe(), ": already has running-statistics outputs");
    std::vector<Value*> ins = n->inputs();
    std::map<std::string, Attribute> attrs = n->attrs();
    const std::string name = n->name();
    Value* y = n->output(0);
    g.RemoveNode(n);
    Value* mean_next = g.AddValue(g.UniqueName(ins[3]->name() + ".bn_next"), ins[3]->type());
    Value* var_next = g.AddValue(g.UniqueName(ins[4]->name() + ".bn_next"), ins[4]->type());
    Value* var_biased = g.AddValue(g.UniqueName(ins[4]->name() + ".bn_biased"), ins[4]->type());
    Node* m = g.AddNodeWithOutputs("BatchNormalization", ins, {y, mean_next, var_biased}, name);
    for (const auto& [k, a] : attrs) m->set_attr(k, a);
    m->set_attr("training_mode", Attribute::Int(1));
    if (bn_next.count(ins[3]->name()) || bn_next.count(ins[4]->name()))
      return Unsupported(m->Describe(), ": running statistics shared by several BatchNormalization nodes");
    TSR_RETURN_IF_ERROR(UnbiasedRunningVar(g, *m, var_next));
    bn_next[ins[3]->name()] = mean_next->name();
    bn_next[ins[4]->name()] = var_next->name();
  }
  if (!bns.empty()) TSR_RETURN_IF_ERROR(g.TopoSort());  // the rebuilt nodes were appended at the end
  // Dropout in training mode: Y = X * M, where M is a per-step mask input
  // (0 or 1/(1-ratio)) that Step draws from (seed, step, micro-step, node):
  // a fresh mask every step, reproducible across checkpoint resumes.
  std::vector<Node*> drops;
  for (Node* n : g.nodes())
    if (n->domain().empty() && n->op_type() == "Dropout") drops.push_back(n);
  for (Node* n : drops) {
    if (n->num_outputs() > 1 && n->output(1) && (!g.Consumers(n->output(1)).empty() || n->output(1)->is_graph_output()))
      return Unsupported(n->Describe(), ": training with a Dropout whose mask output is used is not supported");
    double ratio = 0.5;
    if (n->num_inputs() > 1 && n->input(1)) {
      const Tensor* c = n->input(1)->constant();
      if (!c || c->num_elements() != 1) return Unsupported(n->Describe(), ": training needs a constant Dropout ratio");
      ratio = c->GetAsDouble(0);
    } else if (g.OpsetFor("") < 12) {
      ratio = n->GetFloat("ratio", 0.5f);
    }
    if (!(ratio >= 0.0 && ratio < 1.0)) return InvalidArgument(n->Describe(), ": Dropout ratio ", ratio, " is not in [0, 1)");
    Value* x = n->input(0);
    Value* y = n->output(0);
    if (x->dtype() != DType::kF32 && x->dtype() != DType::kF64)
      return Unsupported(n->Describe(), ": training Dropout supports f32 and f64 inputs, not ", DTypeName(x->dtype()));
    const std::string name = n->name();
    Value* mask = g.AddValue(g.UniqueName(name + ".dropout_mask"), x->type());
    g.AddInput(mask);
    g.RemoveNode(n);
    Node* mul = g.AddNodeWithOutputs("Mul", {x, mask}, {y}, name);
    TSR_RETURN_IF_ERROR(InferNodeTypes(*mul));
    dropouts.push_back({mask->name(), x->name(), ratio, x->dtype(), {}});
    seen.insert(mask->name());  // fed by Step, not a batch input
  }
  if (!drops.empty()) TSR_RETURN_IF_ERROR(g.TopoSort());

  // The loss.
  Value* out = nullptr;
  if (ls.output.empty()) {
    out = g.outputs()[0];
  } else {
    for (Value* o : g.outputs())
      if (o->name() == ls.output) out = o;
    if (!out) {
      std::string names;
      for (Value* o : g.outputs()) names += " " + o->name();
      return InvalidArgument("loss output '", ls.output, "' is not an output of the model; its outputs are:", names);
    }
  }
  if (!IsFloatDType(out->dtype()))
    return InvalidArgument("loss output '", out->name(), "' has dtype ", DTypeName(out->dtype()),
                           "; a loss needs a floating-point output");
  if (g.FindValue(ls.label_input))
    return InvalidArgument("label input '", ls.label_input, "' is already a value of the model");
  Value* label = nullptr;
  Node* loss = nullptr;
  if (ls.kind == "cross_entropy") {
    if (!out->shape().has_rank() || out->shape().rank() != 2)
      return InvalidArgument("cross_entropy loss: output '", out->name(), "' has shape ", out->shape().ToString(),
                             "; it must be logits [N, C]");
    label = g.AddValue(ls.label_input, TensorType{DType::kI64, Shape({out->shape().dims()[0]})});
    g.AddInput(label);
    loss = g.AddNode("SoftmaxCrossEntropy", {out, label}, 1, g.UniqueName("loss/SoftmaxCrossEntropy"), "tessera");
    loss->set_attr("reduction", Attribute::String("mean"));
    loss->set_attr("ignore_index", Attribute::Int(ls.ignore_index));
    loss->set_attr("label_smoothing", Attribute::Float(ls.label_smoothing));
  } else {
    label = g.AddValue(ls.label_input, out->type());
    g.AddInput(label);
    loss = g.AddNode("MSE", {out, label}, 1, g.UniqueName("loss/MSE"), "tessera");
    loss->set_attr("reduction", Attribute::String("mean"));
  }
  if (g.OpsetFor("tessera") <= 0) g.set_opset("tessera", 1);
  TSR_RETURN_IF_ERROR(InferNodeTypes(*loss));
  loss_name = loss->output(0)->name();
  std::vector<Value*> outs{loss->output(0)};
  for (const auto& s : bn_stats) outs.push_back(g.FindValue(bn_next.at(s)));
  g.SetOutputs(outs);

  for (Value* in : g.RuntimeInputs()) {
    if (seen.count(in->name())) continue;
    batch_inputs.push_back(in->name());
    batch_types[in->name()] = in->type();
  }
  for (const auto& p : params) {
    state_names.push_back(p);
    for (const auto& m : MomentNames(p)) {
      state_names.push_back(m);
      TSR_ASSIGN_OR_RETURN(host[m], Tensor::Zeros(host.at(p).dtype(), host.at(p).dims()));
    }
  }
  for (const auto& s : bn_stats) state_names.push_back(s);
  if (topts.grad_accum_steps > 1)
    for (const auto& p : params) {
      state_names.push_back(p + ".grad_accum");
      TSR_ASSIGN_OR_RETURN(host[p + ".grad_accum"], Tensor::Zeros(host.at(p).dtype(), host.at(p).dims()));
    }
  return Status::Ok();
}

// Builds the training session for one set of batch shapes and moves the state into it.
Status TrainingSession::Impl::BuildTrain(const std::map<std::string, std::vector<int64_t>>& shapes,
                                         const std::string& key) {
  std::unique_ptr<Graph> g = base->Clone();
  for (const auto& name : batch_inputs) {
    Value* v = g->FindValue(name);
    v->set_type(TensorType{v->dtype(), Shape::FromInts(shapes.at(name))});
  }
  TSR_RETURN_IF_ERROR(InferGraphTypes(*g).WithContext("training graph"));
  for (auto& d : dropouts) {  // a mask has its Dropout input's (now static) shape
    Value* mv = g->FindValue(d.input);
    const Value* x = g->FindValue(d.x);
    if (!mv || !x) return Internal("dropout mask '", d.input, "' or its input '", d.x, "' is missing");
    auto dims = x->shape().AsInts();
    if (!dims) return Unsupported("Dropout input '", x->name(), "' has no static shape for batch shape ", key);
    mv->set_type(x->type());
    d.dims = *dims;
  }
  TSR_RETURN_IF_ERROR(InferGraphTypes(*g).WithContext("training graph"));
  TSR_ASSIGN_OR_RETURN(autodiff::GradientInfo info, autodiff::BuildGradientGraph(*g, loss_name, params));
  const int n_acc = topts.grad_accum_steps;
  std::map<std::string, std::string> acc_in, acc_out;
  std::string apply_name, keep_name;
  Value* apply = nullptr;
  Value* keep = nullptr;
  if (n_acc > 1) {
    TensorType st{param_dtype, Shape::FromInts({})};
    apply = g->AddValue(g->UniqueName("optimizer.apply"), st);
    keep = g->AddValue(g->UniqueName("optimizer.keep"), st);
    g->AddInput(apply);
    g->AddInput(keep);
    Value* inv_n = g->AddConstant(g->UniqueName("optimizer.inv_accum"), Scalar(param_dtype, 1.0 / n_acc));
    std::vector<Value*> outs = g->outputs();
    for (size_t i = 0; i < info.params.size(); ++i) {
      const std::string& p = info.params[i];
      Value* gv = g->FindValue(info.grads[i]);
      Value* acc = g->AddValue(g->UniqueName(p + ".grad_accum"), gv->type());
      g->AddInput(acc);
      Node* sum = g->AddNode("Add", {acc, gv}, 1, g->UniqueName("accum/Add"));
      Node* next = g->AddNode("Mul", {sum->output(0), keep}, 1, g->UniqueName("accum/Keep"));
      Node* mean = g->AddNode("Mul", {sum->output(0), inv_n}, 1, g->UniqueName("accum/Mean"));
      for (Node* n : {sum, next, mean}) TSR_RETURN_IF_ERROR(InferNodeTypes(*n));
      outs.push_back(next->output(0));
      acc_in[p] = acc->name();
      acc_out[p] = next->output(0)->name();
      info.grads[i] = mean->output(0)->name();
      info.grad_of[p] = info.grads[i];
    }
    g->SetOutputs(outs);
    apply_name = apply->name();
    keep_name = keep->name();
  }
  TSR_ASSIGN_OR_RETURN(autodiff::OptimizerInfo oi, autodiff::AppendOptimizer(*g, info, topts.optimizer));
  if (n_acc > 1) {
    // state' = update * apply + state * keep
    std::vector<Value*> outs;
    std::set<std::string> replaced;
    for (auto& b : oi.state) {
      Value* upd = g->FindValue(b.output);
      Value* old = g->FindValue(b.input);
      Node* a = g->AddNode("Mul", {upd, apply}, 1, g->UniqueName("accum/Apply"));
      Node* k = g->AddNode("Mul", {old, keep}, 1, g->UniqueName("accum/Hold"));
      Node* s = g->AddNode("Add", {a->output(0), k->output(0)}, 1, g->UniqueName("accum/Select"));
      for (Node* n : {a, k, s}) TSR_RETURN_IF_ERROR(InferNodeTypes(*n));
      replaced.insert(b.output);
      b.output = s->output(0)->name();
      outs.push_back(s->output(0));
    }
    for (Value* o : g->outputs())
      if (!replaced.count(o->name())) outs.push_back(o);
    g->SetOutputs(outs);
  }
  // Canonical state name -> session input, and the state specs.
  std::map<std::string, std::string> names;
  std::vector<StateSpec> specs;
  std::map<std::string, std::string> out_of;
  for (const auto& b : oi.state) out_of[b.input] = b.output;
  for (const auto& p : params) {
    names[p] = p;
    auto mit = oi.moments_of.find(p);
    std::vector<std::string> session_moments = mit == oi.moments_of.end() ? std::vector<std::string>{} : mit->second;
    std::vector<std::string> canon = MomentNames(p);
    if (canon.size() != session_moments.size())
      return Internal("optimizer '", topts.optimizer.kind, "' made ", session_moments.size(), " moment(s) for '", p,
                      "', expected ", canon.size());
    for (size_t i = 0; i < canon.size(); ++i) names[canon[i]] = session_moments[i];
  }
  for (const auto& s : bn_stats) {
    names[s] = s;
    out_of[s] = bn_next.at(s);
  }
  for (const auto& [p, in] : acc_in) {
    names[p + ".grad_accum"] = in;
    out_of[in] = acc_out[p];
  }
  for (const auto& c : state_names) {
    auto it = names.find(c);
    if (it == names.end()) return Internal("training state '", c, "' has no input in the training graph");
    auto oit = out_of.find(it->second);
    if (oit == out_of.end()) return Internal("training state '", c, "' has no updated output");
    specs.push_back({it->second, oit->second});
  }
  // Move the state: the current values go through the host.
  std::map<std::string, Tensor> values;
  for (const auto& c : state_names) {
    TSR_ASSIGN_OR_RETURN(values[c], Get(c));
  }
  TSR_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::FromGraph(std::move(g), opts));
  TSR_RETURN_IF_ERROR(s->DeclareState(specs));
  for (const auto& c : state_names) TSR_RETURN_IF_ERROR(s->SetState(names.at(c), values.at(c)));
  train = std::move(s);
  train_key = key;
  session_name = std::move(names);
  opt = std::move(oi);
  apply_input = apply_name;
  keep_input = keep_name;
  host.clear();
  return Status::Ok();
}

Status TrainingSession::Impl::EnsureEval() {
  if (!eval) {
    std::unique_ptr<Graph> g = forward->Clone();
    std::vector<std::string> lift = params;
    lift.insert(lift.end(), bn_stats.begin(), bn_stats.end());
    TSR_RETURN_IF_ERROR(autodiff::LiftParameters(*g, lift).status().WithContext("eval graph"));
    TSR_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::FromGraph(std::move(g), opts));
    std::vector<StateSpec> specs;
    for (const auto& n : lift) specs.push_back({n, ""});
    TSR_RETURN_IF_ERROR(s->DeclareState(specs));
    eval = std::move(s);
    eval_version = -1;
  }
  if (eval_version != version) {
    for (const auto& n : params) {
      TSR_ASSIGN_OR_RETURN(Tensor t, Get(n));
      TSR_RETURN_IF_ERROR(eval->SetState(n, t));
    }
    for (const auto& n : bn_stats) {
      TSR_ASSIGN_OR_RETURN(Tensor t, Get(n));
      TSR_RETURN_IF_ERROR(eval->SetState(n, t));
    }
    eval_version = version;
  }
  return Status::Ok();
}

// Checks a batch against the batch inputs; fills the concrete shapes and a key.
Status TrainingSession::Impl::CheckBatch(const Feeds& batch, bool label_optional,
                                         std::map<std::string, std::vector<int64_t>>* shapes,
                                         std::string* key) const {
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : batch) {
    auto it = batch_types.find(name);
    if (it == batch_types.end()) {
      std::string names;
      for (const auto& b : batch_inputs) names += " " + b;
      return InvalidArgument("'", name, "' is not a batch input of the training session; they are:", names);
    }
    if (!t) return InvalidArgument("batch input '", name, "' is null");
    if (!by_name.emplace(name, t).second) return InvalidArgument("batch input '", name, "' is given twice");
    const TensorType& want = it->second;
    if (t->dtype() != want.dtype)
      return InvalidArgument("batch input '", name, "' has dtype ", DTypeName(t->dtype()), ", expected ",
                             DTypeName(want.dtype), name == topts.loss.label_input ? " (the labels)" : "");
    if (want.shape.has_rank()) {
      bool ok = static_cast<int>(t->dims().size()) == want.shape.rank();
      for (int i = 0; ok && i < want.shape.rank(); ++i)
        ok = !want.shape.dims()[i].is_known() || want.shape.dims()[i].value == t->dims()[i];
      if (!ok)
        return InvalidArgument("batch input '", name, "' has shape ", Dims(t->dims()), ", expected ",
                               want.shape.ToString());
    }
  }
  shapes->clear();
  key->clear();
  for (const auto& name : batch_inputs) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      if (label_optional && name == topts.loss.label_input) continue;
      return InvalidArgument("missing batch input '", name, "' (", batch_types.at(name).ToString(), ")",
                             name == topts.loss.label_input ? ": the loss's labels" : "");
    }
    (*shapes)[name] = it->second->dims();
    *key += name + Dims(it->second->dims()) + ";";
  }
  return Status::Ok();
}

// ---- TrainingSession -----------------------------------------------------------------

TrainingSession::TrainingSession() : impl_(std::make_unique<Impl>()) {}
TrainingSession::~TrainingSession() = default;

Result<std::unique_ptr<TrainingSession>> TrainingSession::FromFile(const std::string& onnx_path,
                                                                   const TrainingOptions& topts,
                                                                   const SessionOptions& opts) {
  TSR_ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxFile(onnx_path, ImportOptions{opts.max_alloc_bytes, {}}));
  auto s = FromGraph(std::move(g), topts, opts);
  if (!s.ok()) return s.status().WithContext(StrCat("training '", onnx_path, "'"));
  return s;
}

Result<std::unique_ptr<TrainingSession>> TrainingSession::FromGraph(std::unique_ptr<Graph> model,
                                                                    const TrainingOptions& topts,
                                                                    const SessionOptions& opts) {
  if (!model) return InvalidArgument("model is null");
  auto s = std::unique_ptr<TrainingSession>(new TrainingSession());
  s->impl_->topts = topts;
  s->impl_->opts = opts;
  TSR_RETURN_IF_ERROR(s->impl_->Prepare(std::move(model)));
  return s;
}

const std::vector<std::string>& TrainingSession::batch_inputs() const { return impl_->batch_inputs; }
const std::vector<std::string>& TrainingSession::param_names() const { return impl_->params; }
int64_t TrainingSession::step() const { return impl_->step; }
std::string TrainingSession::StatsJson() const { return impl_->train ? impl_->train->StatsJson() : "{}"; }

// One mask per training Dropout for the current micro-step: element kept
// with probability 1 - ratio and scaled by 1 / (1 - ratio). The generator is
// seeded from (seed, optimizer step, micro-step, Dropout index) only, so a
// resumed run draws the same masks as an uninterrupted one.
Result<std::vector<Tensor>> TrainingSession::Impl::DropoutMasks() const {
  std::vector<Tensor> masks;
  for (size_t k = 0; k < dropouts.size(); ++k) {
    const DropoutMask& d = dropouts[k];
    uint64_t s = topts.seed ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(step + 1)) ^
                 (0xbf58476d1ce4e5b9ull * static_cast<uint64_t>(micro + 1)) ^ (0x94d049bb133111ebull * (k + 1));
    std::mt19937_64 gen(s);
    std::bernoulli_distribution keep(1.0 - d.ratio);
    TSR_ASSIGN_OR_RETURN(Tensor t, Tensor::Zeros(d.dtype, d.dims));
    const double scale = 1.0 / (1.0 - d.ratio);
    const int64_t n = t.num_elements();
    if (t.dtype() == DType::kF64) {
      double* p = static_cast<double*>(t.mutable_raw());
      for (int64_t i = 0; i < n; ++i) p[i] = keep(gen) ? scale : 0.0;
    } else {
      float* p = static_cast<float*>(t.mutable_raw());
      for (int64_t i = 0; i < n; ++i) p[i] = keep(gen) ? static_cast<float>(scale) : 0.f;
    }
    masks.push_back(std::move(t));
  }
  return masks;
}

Result<StepResult> TrainingSession::Step(const std::vector<std::pair<std::string, const Tensor*>>& batch) {
  Impl& m = *impl_;
  std::map<std::string, std::vector<int64_t>> shapes;
  std::string key;
  TSR_RETURN_IF_ERROR(m.CheckBatch(batch, false, &shapes, &key));
  if (!m.train || m.train_key != key) TSR_RETURN_IF_ERROR(m.BuildTrain(shapes, key));
  const bool update = m.micro + 1 >= m.topts.grad_accum_steps;
  const double lr = m.schedule.Rate(m.step);
  Tensor lr_t = Scalar(m.param_dtype, lr);
  Tensor step_t = Scalar(m.param_dtype, static_cast<double>(m.step + 1));
  Tensor apply_t = Scalar(m.param_dtype, update ? 1.0 : 0.0);
  Tensor keep_t = Scalar(m.param_dtype, update ? 0.0 : 1.0);
  TSR_ASSIGN_OR_RETURN(std::vector<Tensor> masks, m.DropoutMasks());
  Feeds feeds = batch;
  for (size_t i = 0; i < masks.size(); ++i) feeds.push_back({m.dropouts[i].input, &masks[i]});
  feeds.push_back({m.opt.lr_input, &lr_t});
  if (!m.opt.step_input.empty()) feeds.push_back({m.opt.step_input, &step_t});
  if (!m.apply_input.empty()) {
    feeds.push_back({m.apply_input, &apply_t});
    feeds.push_back({m.keep_input, &keep_t});
  }
  std::vector<std::string> outs{m.loss_name};
  if (!m.opt.grad_norm.empty()) outs.push_back(m.opt.grad_norm);
  std::vector<Tensor> res;
  // A failed run may have updated part of the state; the step count is not advanced.
  TSR_RETURN_IF_ERROR(m.train->Run(feeds, outs, &res));
  StepResult r;
  r.loss = res[0].GetAsDouble(0);
  if (outs.size() > 1) r.grad_norm = res[1].GetAsDouble(0);
  ++m.version;  // running statistics change on every call
  if (update) {
    ++m.step;
    m.micro = 0;
    r.updated = true;
    r.lr = lr;
  } else {
    ++m.micro;
  }
  r.step = m.step;
  return r;
}

Result<EvalResult> TrainingSession::Eval(const std::vector<std::pair<std::string, const Tensor*>>& batch) {
  Impl& m = *impl_;
  std::map<std::string, std::vector<int64_t>> shapes;
  std::string key;
  TSR_RETURN_IF_ERROR(m.CheckBatch(batch, true, &shapes, &key));
  TSR_RETURN_IF_ERROR(m.EnsureEval());
  Feeds feeds;
  const Tensor* label = nullptr;
  for (const auto& f : batch) {
    if (f.first == m.topts.loss.label_input) label = f.second;
    else feeds.push_back(f);
  }
  EvalResult r;
  TSR_RETURN_IF_ERROR(m.eval->Run(feeds, {}, &r.outputs));
  r.loss = std::numeric_limits<double>::quiet_NaN();
  if (!label) return r;
  // The loss on the host, in double, with the training loss's definition.
  size_t oi = 0;
  if (!m.topts.loss.output.empty())
    for (size_t i = 0; i < m.eval->outputs().size(); ++i)
      if (m.eval->outputs()[i].name == m.topts.loss.output) oi = i;
  const Tensor& out = r.outputs[oi];
  if (m.topts.loss.kind == "mse") {
    if (label->dims() != out.dims())
      return InvalidArgument("label input '", m.topts.loss.label_input, "' has shape ", Dims(label->dims()),
                             ", the output has ", Dims(out.dims()));
    double s = 0;
    for (int64_t i = 0; i < out.num_elements(); ++i) {
      const double d = out.GetAsDouble(i) - label->GetAsDouble(i);
      s += d * d;
    }
    r.loss = out.num_elements() ? s / static_cast<double>(out.num_elements()) : 0.0;
    return r;
  }
  if (out.rank() != 2 || label->rank() != 1 || label->dims()[0] != out.dims()[0])
    return InvalidArgument("label input '", m.topts.loss.label_input, "' has shape ", Dims(label->dims()),
                           ", expected [", out.rank() > 0 ? out.dims()[0] : 0, "] for logits ", Dims(out.dims()));
  const int64_t n = out.dims()[0], c = out.dims()[1];
  const double eps = m.topts.loss.label_smoothing;
  double total = 0;
  int64_t counted = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = label->GetAsInt64(i);
    if (y == m.topts.loss.ignore_index) continue;
    if (y < 0 || y >= c)
      return InvalidArgument("label input '", m.topts.loss.label_input, "': label ", y, " of row ", i,
                             " is outside [0, ", c, ")");
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < c; ++k) mx = std::max(mx, out.GetAsDouble(i * c + k));
    double se = 0;
    for (int64_t k = 0; k < c; ++k) se += std::exp(out.GetAsDouble(i * c + k) - mx);
    const double lse = mx + std::log(se);
    double l = 0;
    for (int64_t k = 0; k < c; ++k) {
      const double target = (k == y ? 1.0 - eps : 0.0) + eps / static_cast<double>(c);
      l -= target * (out.GetAsDouble(i * c + k) - lse);
    }
    total += l;
    ++counted;
  }
  r.loss = counted ? total / static_cast<double>(counted) : 0.0;
  return r;
}

Result<std::vector<std::pair<std::string, Tensor>>> TrainingSession::Parameters() {
  std::vector<std::pair<std::string, Tensor>> r;
  for (const auto& p : impl_->params) {
    TSR_ASSIGN_OR_RETURN(Tensor t, impl_->Get(p));
    r.emplace_back(p, std::move(t));
  }
  return r;
}

Status TrainingSession::SetParameters(const std::vector<std::pair<std::string, Tensor>>& values) {
  Impl& m = *impl_;
  for (const auto& [name, t] : values) {
    if (std::find(m.params.begin(), m.params.end(), name) == m.params.end())
      return InvalidArgument("'", name, "' is not a parameter of the training session");
    TSR_ASSIGN_OR_RETURN(Tensor cur, m.Get(name));
    if (cur.dtype() != t.dtype() || cur.dims() != t.dims())
      return InvalidArgument("parameter '", name, "' is ", DTypeName(cur.dtype()), Dims(cur.dims()), ", got ",
                             DTypeName(t.dtype()), Dims(t.dims()));
  }
  for (const auto& [name, t] : values) TSR_RETURN_IF_ERROR(m.Put(name, t));
  ++m.version;
  return Status::Ok();
}

Status TrainingSession::SaveCheckpoint(const std::string& path) {
  Impl& m = *impl_;
  std::vector<Tensor> values;
  for (const auto& c : m.state_names) {
    TSR_ASSIGN_OR_RETURN(Tensor t, m.Get(c));
    values.push_back(std::move(t));
  }
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  for (size_t i = 0; i < m.state_names.size(); ++i) tensors.push_back({m.state_names[i], &values[i]});
  std::map<std::string, std::string> meta = {
      {"tessera.format", "1"},
      {"tessera.step", std::to_string(m.step)},
      {"tessera.micro_step", std::to_string(m.micro)},
      {"tessera.optimizer", OptimizerJson(m.topts.optimizer).dump()},
      {"tessera.loss", m.topts.loss.kind}};
  return WriteSafetensors(path, tensors, meta);
}

Status TrainingSession::LoadCheckpoint(const std::string& path) {
  Impl& m = *impl_;
  TSR_ASSIGN_OR_RETURN(SafetensorsContents c, ReadSafetensors(path));
  auto meta = [&](const std::string& k) -> const std::string* {
    auto it = c.metadata.find(k);
    return it == c.metadata.end() ? nullptr : &it->second;
  };
  const std::string* fmt = meta("tessera.format");
  if (!fmt || *fmt != "1")
    return InvalidArgument("checkpoint '", path, "' is not a tessera checkpoint of format 1 (metadata tessera.format is ",
                           fmt ? "'" + *fmt + "'" : std::string("missing"), ")");
  const std::string* optj = meta("tessera.optimizer");
  const std::string* step = meta("tessera.step");
  if (!optj || !step) return InvalidArgument("checkpoint '", path, "' lacks tessera.optimizer or tessera.step");
  json saved = json::parse(*optj, nullptr, false);
  const std::string saved_kind = saved.is_object() && saved.contains("kind") && saved["kind"].is_string()
                                     ? saved["kind"].get<std::string>() : "?";
  if (saved_kind != m.topts.optimizer.kind)
    return InvalidArgument("checkpoint '", path, "' was saved with optimizer '", saved_kind, "', this session uses '",
                           m.topts.optimizer.kind, "'");
  char* end = nullptr;
  const long long st = std::strtoll(step->c_str(), &end, 10);
  if (step->empty() || *end != '\0' || st < 0)
    return InvalidArgument("checkpoint '", path, "': tessera.step '", *step, "' is not a step count");
  long long micro = 0;
  if (const std::string* ms = meta("tessera.micro_step")) micro = std::strtoll(ms->c_str(), nullptr, 10);
  if (micro < 0 || micro >= m.topts.grad_accum_steps) micro = 0;
  std::set<std::string> want(m.state_names.begin(), m.state_names.end());
  for (const auto& [name, t] : c.tensors)
    if (!want.count(name)) return InvalidArgument("checkpoint '", path, "' has tensor '", name, "', which this training session does not have");
  std::vector<std::pair<std::string, const Tensor*>> todo;
  for (const auto& name : m.state_names) {
    const Tensor* t = c.Find(name);
    if (!t) return InvalidArgument("checkpoint '", path, "' lacks tensor '", name, "'");
    TSR_ASSIGN_OR_RETURN(Tensor cur, m.Get(name));
    if (cur.dtype() != t->dtype() || cur.dims() != t->dims())
      return InvalidArgument("checkpoint '", path, "': tensor '", name, "' is ", DTypeName(t->dtype()), Dims(t->dims()),
                             ", the session has ", DTypeName(cur.dtype()), Dims(cur.dims()));
    todo.push_back({name, t});
  }
  for (const auto& [name, t] : todo) TSR_RETURN_IF_ERROR(m.Put(name, *t));
  m.step = st;
  m.micro = micro;
  ++m.version;
  return Status::Ok();
}

Status TrainingSession::ExportOnnx(const std::string& path) {
  Impl& m = *impl_;
  std::unique_ptr<Graph> g = m.forward->Clone();
  std::vector<std::string> names = m.params;
  names.insert(names.end(), m.bn_stats.begin(), m.bn_stats.end());
  for (const auto& n : names) {
    Value* v = g->FindValue(n);
    if (!v || !v->is_constant()) return Internal("export: '", n, "' is not an initializer of the forward model");
    TSR_ASSIGN_OR_RETURN(Tensor t, m.Get(n));
    v->set_constant(std::move(t));
  }
  return ExportOnnxFile(*g, path);
}

}  // namespace tessera
