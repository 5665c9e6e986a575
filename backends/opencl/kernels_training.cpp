// Training ops on OpenCL: every tessera-domain op of graph/ops_training.cpp,
// with the semantics of the CPU kernels in backends/cpu/kernels_training.cpp:
//   SoftmaxCrossEntropy(+Grad), MSE(+Grad), SGDUpdate, AdamWUpdate,
//   GlobalNormClip, BatchNormGrad, MaxPoolGrad, AveragePoolGrad,
//   ConvGradInput, ConvGradWeight, ReluGrad, GeluGrad, SoftmaxGrad, LayerNormGrad,
//   GatherGrad, SliceGrad; the ONNX ops Sum (same shapes) and Pad (constant
//   mode) that gradient graphs emit; and BatchNormalization in training mode
//   (batch statistics + running mean/var outputs; inference mode is delegated
//   to the kernels_nn.cpp entry).
//
// Reductions and optimizer arithmetic accumulate in double where the device
// has cl_khr_fp64, else in float. Reductions over a whole tensor (loss means,
// global norms, per-channel statistics) run as a few work-items each: the
// shapes of training graphs are small; correctness first.
//
// In-place contract (as on the CPU): SGDUpdate, AdamWUpdate, GlobalNormClip
// and the running-statistics outputs of BatchNormalization may be bound to
// the buffer of the state input they replace: every work-item reads element i
// of such an input before it writes element i of the output and touches no
// other element of it (GlobalNormClip reads all gradients in launches that
// finish before the scaling launch, in stream order).
//
// Data-dependent errors (a label outside [0, C), an AdamW step < 1, a
// GatherGrad index outside [-len, len)) set the executable's error flag, so
// execute fails with the node's name.
//
// The OpenCL C of these kernels (kTrainingSource) is in kernels_training_cl.cpp;
// this file holds the host side: checks, launch plans, claims, registration.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backends/opencl/ocl.h"

namespace tessera::ocl {

namespace {

bool IsF32(const TensorArg* t) { return t && t->dtype == TSR_DTYPE_F32; }
bool IsLabel(int32_t dt) { return dt == TSR_DTYPE_I32 || dt == TSR_DTYPE_I64; }

// Present inputs [0, max_in), required [0, min_in); outputs likewise; output 0 required.
Err CheckArity(const NodeArgs& a, size_t min_in, size_t max_in, size_t min_out, size_t max_out) {
  size_t nin = 0, nout = 0;
  for (size_t i = 0; i < a.inputs.size(); ++i)
    if (a.inputs[i]) nin = i + 1;
  for (size_t i = 0; i < a.outputs.size(); ++i)
    if (a.outputs[i]) nout = i + 1;
  for (size_t i = 0; i < min_in; ++i)
    if (!a.has_input(i)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is required", a.Describe().c_str(), i);
  if (nin > max_in || nout < min_out || nout > max_out || !a.has_output(0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects %zu..%zu inputs and %zu..%zu outputs (output 0 required)",
                   a.Describe().c_str(), min_in, max_in, min_out, max_out);
  return Err::Ok();
}

// The listed inputs (when present) and every present output are f32.
Err NeedF32(const NodeArgs& a, std::initializer_list<size_t> inputs) {
  for (size_t i : inputs)
    if (a.has_input(i) && !IsF32(a.inputs[i]))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: input %zu has dtype %s; the OpenCL kernel supports f32 only",
                     a.Describe().c_str(), i, plugin::DTypeName(a.inputs[i]->dtype));
  for (size_t i = 0; i < a.outputs.size(); ++i)
    if (a.outputs[i] && !IsF32(a.outputs[i]))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: output %zu has dtype %s; the OpenCL kernel supports f32 only",
                     a.Describe().c_str(), i, plugin::DTypeName(a.outputs[i]->dtype));
  return Err::Ok();
}

Err SameShape(const NodeArgs& a, size_t i, size_t j) {
  if (a.inputs[i]->dims != a.inputs[j]->dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inputs %zu %s and %zu %s must have the same shape",
                   a.Describe().c_str(), i, DimsStr(a.inputs[i]->dims).c_str(), j, DimsStr(a.inputs[j]->dims).c_str());
  return Err::Ok();
}

Err OutputLike(const NodeArgs& a, size_t out, size_t in) {
  if (a.has_output(out) && a.outputs[out]->numel != a.inputs[in]->numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu %s must have the shape of input %zu %s",
                   a.Describe().c_str(), out, DimsStr(a.outputs[out]->dims).c_str(), in,
                   DimsStr(a.inputs[in]->dims).c_str());
  return Err::Ok();
}

// reduction attribute: 0 mean, 1 sum, 2 none.
Err ParseReduction(const NodeArgs& a, int64_t* red) {
  const std::string r = a.attrs().String("reduction", "mean");
  if (r == "mean") *red = 0;
  else if (r == "sum") *red = 1;
  else if (r == "none") *red = 2;
  else
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: reduction must be mean, sum or none, got '%s'", a.Describe().c_str(),
                   r.c_str());
  return Err::Ok();
}

KArg Unused(int slot) { return TArg(slot); }  // an absent optional tensor: any bound tensor (never accessed)

// ---- losses ----------------------------------------------------------------------------------

struct Sce {
  int64_t n = 0, c = 0, red = 0, has_ignore = 0, ignore = -100;
  float eps = 0;
  int32_t i64 = 1;
};

Err ParseSce(const NodeArgs& a, size_t logits, Sce* s) {
  Err e = ParseReduction(a, &s->red);
  if (!e.ok()) return e;
  const TensorArg& x = *a.inputs[logits];
  const TensorArg& l = *a.inputs[logits + 1];
  if (!IsLabel(l.dtype))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: labels have dtype %s, expected i32 or i64", a.Describe().c_str(),
                   plugin::DTypeName(l.dtype));
  if (x.dims.size() != 2 || l.dims.size() != 1 || l.dims[0] != x.dims[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects logits [N, C] and labels [N], got %s and %s",
                   a.Describe().c_str(), DimsStr(x.dims).c_str(), DimsStr(l.dims).c_str());
  plugin::NodeAttrs at = a.attrs();
  s->has_ignore = at.Has("ignore_index") ? 1 : 0;
  s->ignore = at.Int("ignore_index", -100);
  s->eps = at.Float("label_smoothing", 0.f);
  if (!(s->eps >= 0.f && s->eps < 1.f))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: label_smoothing must be in [0, 1), got %g", a.Describe().c_str(),
                   static_cast<double>(s->eps));
  s->n = x.dims[0];
  s->c = x.dims[1];
  s->i64 = l.dtype == TSR_DTYPE_I64 ? 1 : 0;
  if (s->c < 1 && s->n > 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: logits have no classes", a.Describe().c_str());
  return Err::Ok();
}

Err BuildSce(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 2, 2, 1, 1);
  if (e.ok()) e = NeedF32(a, {0});
  Sce s;
  if (e.ok()) e = ParseSce(a, 0, &s);
  if (!e.ok()) return e;
  const int64_t want = s.red == 2 ? s.n : 1;
  if (a.outputs[0]->numel != want)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: the loss has %lld elements, expected %lld", a.Describe().c_str(),
                   static_cast<long long>(a.outputs[0]->numel), static_cast<long long>(want));
  // Scratch: per-sample losses (unless "none" writes them to the output) and the counted flags.
  const uint64_t nb = static_cast<uint64_t>(s.n) * sizeof(float);
  plan->scratch_bytes = 2 * nb;
  plan->checks_indices = true;
  Launch rows;
  rows.kernel = "sce_rows_f32";
  rows.params = {s.n, s.c, s.has_ignore, s.ignore};
  KArg per = s.red == 2 ? TArg(a.out_slot(0)) : ScratchArg(0);
  rows.args = {TArg(0), TArg(1), per, ScratchArg(nb), ParamsArg(), F32(s.eps), I32(s.i64), FlagArg(), StepCodeArg()};
  rows.global = static_cast<uint64_t>(s.n);
  plan->launches.push_back(std::move(rows));
  if (s.red != 2) {
    Launch r;
    r.kernel = "sum_ratio_f32";
    r.params = {s.n};
    r.args = {ScratchArg(0), ScratchArg(nb), TArg(a.out_slot(0)), ParamsArg(), I32(s.red == 0 ? 1 : 0)};
    r.global = 1;
    plan->launches.push_back(std::move(r));
  }
  return Err::Ok();
}

Err BuildSceGrad(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 3, 3, 1, 1);
  if (e.ok()) e = NeedF32(a, {0, 1});
  Sce s;
  if (e.ok()) e = ParseSce(a, 1, &s);
  if (!e.ok()) return e;
  const int64_t want = s.red == 2 ? s.n : 1;
  if (a.inputs[0]->numel != want)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dloss has %lld elements, expected %lld", a.Describe().c_str(),
                   static_cast<long long>(a.inputs[0]->numel), static_cast<long long>(want));
  if ((e = OutputLike(a, 0, 1)).ok() == false) return e;
  plan->scratch_bytes = sizeof(float);
  plan->checks_indices = true;
  Launch cnt;
  cnt.kernel = "sce_count";
  cnt.params = {s.n, s.c, s.has_ignore, s.ignore};
  cnt.args = {TArg(2), ScratchArg(0), ParamsArg(), I32(s.i64), FlagArg(), StepCodeArg()};
  cnt.global = 1;
  plan->launches.push_back(std::move(cnt));
  Launch g;
  g.kernel = "sce_grad_f32";
  g.params = {s.n, s.c, s.has_ignore, s.ignore, s.red};
  g.args = {TArg(0), TArg(1), TArg(2), ScratchArg(0), TArg(a.out_slot(0)), ParamsArg(), F32(s.eps), I32(s.i64)};
  g.global = static_cast<uint64_t>(s.n);
  plan->launches.push_back(std::move(g));
  return Err::Ok();
}

std::string ClaimSce(const tsr_node_view& n, const tsr_graph_view& g) {
  const bool grad = std::strcmp(n.op_type, "SoftmaxCrossEntropyGrad") == 0;
  const uint32_t lab = grad ? 2 : 1;
  for (uint32_t k = 0; k < n.num_inputs; ++k) {
    if (n.inputs[k] < 0) continue;
    const int32_t dt = g.values[n.inputs[k]].dtype;
    if (k == lab ? !IsLabel(dt) : dt != TSR_DTYPE_F32)
      return std::string("input ") + std::to_string(k) + " has dtype " + plugin::DTypeName(dt) +
             (k == lab ? "; labels must be i32 or i64" : "; the OpenCL kernel supports f32 only");
  }
  for (uint32_t k = 0; k < n.num_outputs; ++k)
    if (n.outputs[k] >= 0 && g.values[n.outputs[k]].dtype != TSR_DTYPE_F32)
      return "the OpenCL kernel supports f32 only";
  return "";
}

template <bool kGrad>
Err BuildMse(const NodeArgs& a, OpPlan* plan) {
  const size_t base = kGrad ? 1 : 0;
  Err e = CheckArity(a, 2 + base, 2 + base, 1, 1);
  if (e.ok()) e = NeedF32(a, {0, 1, 2});
  if (e.ok()) e = SameShape(a, base, base + 1);
  int64_t red = 0;
  if (e.ok()) e = ParseReduction(a, &red);
  if (!e.ok()) return e;
  const int64_t n = a.inputs[base]->numel;
  const int64_t want = red == 2 ? n : 1;
  if (kGrad && a.inputs[0]->numel != want)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dloss has %lld elements, expected %lld", a.Describe().c_str(),
                   static_cast<long long>(a.inputs[0]->numel), static_cast<long long>(want));
  if (a.outputs[0]->numel != (kGrad ? n : want))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output has %lld elements, expected %lld", a.Describe().c_str(),
                   static_cast<long long>(a.outputs[0]->numel), static_cast<long long>(kGrad ? n : want));
  Launch l;
  if (kGrad) {
    l.kernel = "mse_grad_f32";
    l.params = {n, red};
    l.args = {TArg(0), TArg(1), TArg(2), TArg(a.out_slot(0)), ParamsArg()};
    l.global = static_cast<uint64_t>(n);
  } else if (red == 2) {
    l.kernel = "sq_err_f32";
    l.args = {TArg(0), TArg(1), TArg(a.out_slot(0))};
    l.global = static_cast<uint64_t>(n);
  } else {
    l.kernel = "mse_sum_f32";
    l.params = {n};
    l.args = {TArg(0), TArg(1), TArg(a.out_slot(0)), ParamsArg(), I32(red == 0 ? 1 : 0)};
    l.global = 1;
  }
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

// ---- optimizers and clipping ------------------------------------------------------------------

Err BuildSgd(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 3, 4, 1, 2);
  if (e.ok()) e = NeedF32(a, {0, 1, 2, 3});
  if (e.ok()) e = SameShape(a, 0, 1);
  if (!e.ok()) return e;
  plugin::NodeAttrs at = a.attrs();
  const float mom = at.Float("momentum", 0.f), damp = at.Float("dampening", 0.f), wd = at.Float("weight_decay", 0.f);
  const bool nesterov = at.Int("nesterov", 0) != 0;
  const bool has_buf = a.has_input(3), has_bo = a.has_output(1);
  const std::string who = a.Describe();
  if (mom < 0) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: momentum must be >= 0, got %g", who.c_str(), mom);
  if (mom != 0 && !has_buf)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: momentum > 0 needs input 3 (momentum_buf)", who.c_str());
  if (nesterov && (mom == 0 || damp != 0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: nesterov needs momentum > 0 and dampening 0", who.c_str());
  if (has_bo && !has_buf)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: momentum_out needs input 3 (momentum_buf)", who.c_str());
  if (has_buf && (e = SameShape(a, 0, 3)).ok() == false) return e;
  if (a.inputs[2]->numel != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: lr must hold one element, got %s", who.c_str(),
                   DimsStr(a.inputs[2]->dims).c_str());
  if ((e = OutputLike(a, 0, 0)).ok() == false || (e = OutputLike(a, 1, 0)).ok() == false) return e;
  Launch l;
  l.kernel = "sgd_update_f32";
  l.args = {TArg(0),   TArg(1),    TArg(2),   has_buf ? TArg(3) : Unused(0), TArg(a.out_slot(0)),
            has_bo ? TArg(a.out_slot(1)) : Unused(a.out_slot(0)), F32(mom), F32(damp), F32(wd),
            I32(nesterov ? 1 : 0), I32(has_bo ? 1 : 0)};
  l.global = static_cast<uint64_t>(a.inputs[0]->numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

int32_t StepKind(int32_t dt) {
  return dt == TSR_DTYPE_F32 ? 0 : dt == TSR_DTYPE_I32 ? 1 : dt == TSR_DTYPE_I64 ? 2 : -1;
}

Err BuildAdamW(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 6, 6, 3, 3);
  if (e.ok()) e = NeedF32(a, {0, 1, 2, 3, 4});
  for (size_t i = 1; e.ok() && i < 4; ++i) e = SameShape(a, 0, i);
  if (!e.ok()) return e;
  const std::string who = a.Describe();
  for (size_t i = 0; i < 3; ++i) {
    if (!a.has_output(i))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: outputs param_out, m_out and v_out are required", who.c_str());
    if ((e = OutputLike(a, i, 0)).ok() == false) return e;
  }
  if (a.inputs[4]->numel != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: lr must hold one element", who.c_str());
  const int32_t sk = StepKind(a.inputs[5]->dtype);
  if (a.inputs[5]->numel != 1 || sk < 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: step must be one f32, i32 or i64 element, got %s %s", who.c_str(),
                   plugin::DTypeName(a.inputs[5]->dtype), DimsStr(a.inputs[5]->dims).c_str());
  plugin::NodeAttrs at = a.attrs();
  const float b1 = at.Float("beta1", 0.9f), b2 = at.Float("beta2", 0.999f), eps = at.Float("epsilon", 1e-8f),
              wd = at.Float("weight_decay", 0.01f);
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1 && eps > 0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: need 0 <= beta1, beta2 < 1 and epsilon > 0", who.c_str());
  plan->checks_indices = true;  // step < 1 sets the error flag
  Launch l;
  l.kernel = "adamw_update_f32";
  l.args = {TArg(0), TArg(1), TArg(2), TArg(3), TArg(4), TArg(5), TArg(a.out_slot(0)), TArg(a.out_slot(1)),
            TArg(a.out_slot(2)), F32(b1), F32(b2), F32(eps), F32(wd), I32(sk), FlagArg(), StepCodeArg()};
  l.global = static_cast<uint64_t>(a.inputs[0]->numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

std::string ClaimAdamW(const tsr_node_view& n, const tsr_graph_view& g) {
  for (uint32_t k = 0; k < n.num_inputs; ++k) {
    if (n.inputs[k] < 0) continue;
    const int32_t dt = g.values[n.inputs[k]].dtype;
    if (k == 5 ? StepKind(dt) < 0 : dt != TSR_DTYPE_F32)
      return std::string("input ") + std::to_string(k) + " has dtype " + plugin::DTypeName(dt) +
             (k == 5 ? "; step must be f32, i32 or i64" : "; the OpenCL kernel supports f32 only");
  }
  for (uint32_t k = 0; k < n.num_outputs; ++k)
    if (n.outputs[k] >= 0 && g.values[n.outputs[k]].dtype != TSR_DTYPE_F32)
      return "the OpenCL kernel supports f32 only";
  return "";
}

constexpr int64_t kNormParts = 256;  // partial sums per gradient

Err BuildClip(const NodeArgs& a, OpPlan* plan) {
  const size_t n = a.inputs.size();
  const std::string who = a.Describe();
  if (n == 0 || a.outputs.size() != n + 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects N inputs and N+1 outputs, got %zu and %zu", who.c_str(), n,
                   a.outputs.size());
  for (size_t i = 0; i < n; ++i) {
    if (!a.has_input(i)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is missing", who.c_str(), i);
    if (!IsF32(a.inputs[i]))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: input %zu has dtype %s; the OpenCL kernel supports f32 only",
                     who.c_str(), i, plugin::DTypeName(a.inputs[i]->dtype));
  }
  Err e = NeedF32(a, {});
  for (size_t i = 0; e.ok() && i < n; ++i) e = OutputLike(a, i, i);
  if (!e.ok()) return e;
  if (a.has_output(n) && a.outputs[n]->numel != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: the total norm output must hold one element", who.c_str());
  const tsr_attr_view* mn = a.attrs().Find("max_norm");
  if (!mn || mn->type != TSR_ATTR_FLOAT || !(mn->f > 0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute max_norm (float > 0) is required", who.c_str());
  // Scratch: n * kNormParts partial sums, then the scale factor.
  const uint64_t scale_off = static_cast<uint64_t>(n * kNormParts) * sizeof(float);
  plan->scratch_bytes = scale_off + sizeof(float);
  for (size_t i = 0; i < n; ++i) {
    Launch l;
    l.kernel = "sumsq_part_f32";
    l.params = {a.inputs[i]->numel};
    l.args = {TArg(static_cast<int>(i)), ScratchArg(static_cast<uint64_t>(i * kNormParts) * sizeof(float)),
              ParamsArg(), I32(static_cast<int32_t>(kNormParts))};
    l.global = static_cast<uint64_t>(kNormParts);
    plan->launches.push_back(std::move(l));
  }
  Launch s;
  s.kernel = "clip_scale_f32";
  s.params = {static_cast<int64_t>(n) * kNormParts};
  const bool has_norm = a.has_output(n);
  s.args = {ScratchArg(0), ScratchArg(scale_off), has_norm ? TArg(a.out_slot(n)) : ScratchArg(scale_off), ParamsArg(),
            F32(mn->f), I32(has_norm ? 1 : 0)};
  s.global = 1;
  plan->launches.push_back(std::move(s));
  for (size_t i = 0; i < n; ++i) {
    if (!a.has_output(i)) continue;
    Launch l;
    l.kernel = "scale_by_f32";
    l.args = {TArg(static_cast<int>(i)), ScratchArg(scale_off), TArg(a.out_slot(i))};
    l.global = static_cast<uint64_t>(a.inputs[i]->numel);
    plan->launches.push_back(std::move(l));
  }
  return Err::Ok();
}

// ---- BatchNormalization (training mode) and BatchNormGrad ------------------------------------

Err BuildBatchNormOp(const NodeArgs& a, OpPlan* plan);

// The kernels_nn.cpp entry (inference mode), found once.
const OpEntry* InferenceBatchNorm() {
  static const OpEntry* e = [] {
    for (const OpEntry& x : OpTable())
      if (std::strcmp(x.op, "BatchNormalization") == 0 && x.domain[0] == '\0' && x.build != &BuildBatchNormOp)
        return &x;
    return static_cast<const OpEntry*>(nullptr);
  }();
  return e;
}

Err BuildBatchNormOp(const NodeArgs& a, OpPlan* plan) {
  if (a.attrs().Int("training_mode", 0) == 0) {
    const OpEntry* inf = InferenceBatchNorm();
    if (!inf) return MakeErr(TSR_ERR_UNSUPPORTED, "%s: no inference BatchNormalization kernel", a.Describe().c_str());
    return inf->build(a, plan);
  }
  Err e = CheckArity(a, 5, 5, 1, 3);
  if (e.ok()) e = NeedF32(a, {0, 1, 2, 3, 4});
  if (!e.ok()) return e;
  const std::string who = a.Describe();
  if (a.node->opset < 14)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: training_mode before opset 14 (5 outputs) is not supported", who.c_str());
  const TensorArg& X = *a.inputs[0];
  if (X.dims.size() < 2)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input must have rank >= 2 (N, C, ...), got %s", who.c_str(),
                   DimsStr(X.dims).c_str());
  const int64_t N = X.dims[0], C = X.dims[1];
  const int64_t S = N * C > 0 ? X.numel / (N * C) : 0;
  for (size_t k = 1; k < 5; ++k)
    if (a.inputs[k]->numel != C)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu has %lld elements, expected C = %lld", who.c_str(), k,
                     static_cast<long long>(a.inputs[k]->numel), static_cast<long long>(C));
  if ((e = OutputLike(a, 0, 0)).ok() == false) return e;
  for (size_t k = 1; k < 3; ++k)
    if (a.has_output(k) && a.outputs[k]->numel != C)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu must have C = %lld elements", who.c_str(), k,
                     static_cast<long long>(C));
  plugin::NodeAttrs at = a.attrs();
  const bool has_rm = a.has_output(1), has_rv = a.has_output(2);
  plan->scratch_bytes = static_cast<uint64_t>(2 * C) * sizeof(float);
  Launch st;
  st.kernel = "bn_stats_f32";
  st.params = {N, C, S};
  st.args = {TArg(0), TArg(3), TArg(4), ScratchArg(0), has_rm ? TArg(a.out_slot(1)) : ScratchArg(0),
             has_rv ? TArg(a.out_slot(2)) : ScratchArg(0), ParamsArg(), F32(at.Float("momentum", 0.9f)),
             I32(has_rm ? 1 : 0), I32(has_rv ? 1 : 0)};
  st.global = static_cast<uint64_t>(C);
  plan->launches.push_back(std::move(st));
  Launch ap;
  ap.kernel = "bn_apply_f32";
  ap.params = {C, S};
  ap.args = {TArg(0), TArg(1), TArg(2), ScratchArg(0), TArg(a.out_slot(0)), ParamsArg(),
             F32(at.Float("epsilon", 1e-5f))};
  ap.global = static_cast<uint64_t>(X.numel);
  plan->launches.push_back(std::move(ap));
  return Err::Ok();
}

std::string ClaimBatchNormOp(const tsr_node_view& n, const tsr_graph_view& g) {
  if (plugin::NodeAttrs(n).Int("training_mode", 0) == 0) {
    const OpEntry* inf = InferenceBatchNorm();
    if (!inf) return "no inference BatchNormalization kernel";
    return inf->claim ? inf->claim(n, g) : "";
  }
  for (uint32_t k = 0; k < n.num_inputs + n.num_outputs; ++k) {
    const int32_t vi = k < n.num_inputs ? n.inputs[k] : n.outputs[k - n.num_inputs];
    if (vi >= 0 && g.values[vi].dtype != TSR_DTYPE_F32) return "the OpenCL kernel supports f32 only";
  }
  if (n.num_outputs > 3 || n.opset < 14) return "training mode is supported from opset 14 (at most 3 outputs)";
  return "";
}

Err BuildBatchNormGrad(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 3, 5, 1, 3);
  if (e.ok()) e = NeedF32(a, {0, 1, 2, 3, 4});
  if (e.ok()) e = SameShape(a, 0, 1);
  if (!e.ok()) return e;
  const std::string who = a.Describe();
  const auto& d = a.inputs[1]->dims;
  if (d.size() < 2)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: X must have rank >= 2, got %s", who.c_str(), DimsStr(d).c_str());
  const int64_t N = d[0], C = d[1];
  int64_t S = 1;
  for (size_t i = 2; i < d.size(); ++i) S *= d[i];
  const bool training = a.attrs().Int("training_mode", 0) != 0;
  if (!training && (!a.has_input(3) || !a.has_input(4)))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inference mode needs the running mean and var (inputs 3, 4)",
                   who.c_str());
  for (size_t i : {size_t{2}, size_t{3}, size_t{4}})
    if (a.has_input(i) && a.inputs[i]->numel != C)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu must have C = %lld elements", who.c_str(), i,
                     static_cast<long long>(C));
  if ((e = OutputLike(a, 0, 1)).ok() == false) return e;
  for (size_t k = 1; k < 3; ++k)
    if (a.has_output(k) && a.outputs[k]->numel != C)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu must have C = %lld elements", who.c_str(), k,
                     static_cast<long long>(C));
  const bool has_ds = a.has_output(1), has_db = a.has_output(2);
  plan->scratch_bytes = static_cast<uint64_t>(4 * C) * sizeof(float);
  Launch st;
  st.kernel = "bng_stats_f32";
  st.params = {N, C, S};
  st.args = {TArg(0), TArg(1), a.has_input(3) ? TArg(3) : Unused(1), a.has_input(4) ? TArg(4) : Unused(1),
             ScratchArg(0), has_ds ? TArg(a.out_slot(1)) : ScratchArg(0), has_db ? TArg(a.out_slot(2)) : ScratchArg(0),
             ParamsArg(), F32(a.attrs().Float("epsilon", 1e-5f)), I32(training ? 1 : 0), I32(has_ds ? 1 : 0),
             I32(has_db ? 1 : 0)};
  st.global = static_cast<uint64_t>(C);
  plan->launches.push_back(std::move(st));
  Launch ap;
  ap.kernel = "bng_apply_f32";
  ap.params = {C, S, N * S};
  ap.args = {TArg(0), TArg(1), TArg(2), ScratchArg(0), TArg(a.out_slot(0)), ParamsArg(), I32(training ? 1 : 0)};
  ap.global = static_cast<uint64_t>(a.inputs[1]->numel);
  plan->launches.push_back(std::move(ap));
  return Err::Ok();
}

// ---- pooling and convolution gradients -----------------------------------------------------------

// 1-D (as H = 1) or 2-D window of a pool / conv gradient over X [N, C, sp...] and dY [N, M, osp...].
struct Win {
  int64_t H = 1, W = 1, OH = 1, OW = 1, kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, peh = 0, pew = 0, dh = 1,
          dw = 1;
};

Err ParseWin(const NodeArgs& a, const std::vector<int64_t>& xd, const std::vector<int64_t>& yd,
             const std::vector<int64_t>& kernel, Win* w) {
  const std::string who = a.Describe();
  if ((xd.size() != 3 && xd.size() != 4) || yd.size() != xd.size())
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: the OpenCL kernel supports 1-D and 2-D windows (X %s, dY %s)",
                   who.c_str(), DimsStr(xd).c_str(), DimsStr(yd).c_str());
  const size_t nd = xd.size() - 2;
  plugin::NodeAttrs at = a.attrs();
  if (at.String("auto_pad", "NOTSET") != "NOTSET" && at.String("auto_pad", "NOTSET") != "VALID")
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: auto_pad is not supported (give explicit pads)", who.c_str());
  std::vector<int64_t> s = at.Ints("strides"), p = at.Ints("pads"), d = at.Ints("dilations");
  if (s.empty()) s.assign(nd, 1);
  if (p.empty()) p.assign(2 * nd, 0);
  if (d.empty()) d.assign(nd, 1);
  if (kernel.size() != nd || s.size() != nd || p.size() != 2 * nd || d.size() != nd)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: kernel_shape/strides/pads/dilations do not match %zu spatial dims",
                   who.c_str(), nd);
  for (size_t i = 0; i < nd; ++i)
    if (kernel[i] <= 0 || s[i] <= 0 || d[i] <= 0 || p[i] < 0 || p[nd + i] < 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: kernel, strides and dilations must be > 0 and pads >= 0",
                     who.c_str());
  const size_t o = nd == 2 ? 1 : 0;  // index of the last spatial dim in the per-dim lists
  if (nd == 2) {
    w->H = xd[2];
    w->OH = yd[2];
    w->kh = kernel[0];
    w->sh = s[0];
    w->ph = p[0];
    w->peh = p[2];
    w->dh = d[0];
  }
  w->W = xd.back();
  w->OW = yd.back();
  w->kw = kernel[o];
  w->sw = s[o];
  w->pw = p[o];
  w->pew = p[nd + o];
  w->dw = d[o];
  return Err::Ok();
}

template <bool kMax>
Err BuildPoolGrad(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 2, 2, 1, 1);
  if (e.ok()) e = NeedF32(a, {0, 1});
  if (!e.ok()) return e;
  const auto& xd = a.inputs[1]->dims;
  const auto& yd = a.inputs[0]->dims;
  Win w;
  if (!(e = ParseWin(a, xd, yd, a.attrs().Ints("kernel_shape"), &w)).ok()) return e;
  if (xd[0] != yd[0] || xd[1] != yd[1])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dY %s and X %s differ in N or C", a.Describe().c_str(),
                   DimsStr(yd).c_str(), DimsStr(xd).c_str());
  if ((e = OutputLike(a, 0, 1)).ok() == false) return e;
  Launch l;
  l.kernel = "pool_grad_f32";
  l.params = {xd[0] * xd[1], w.H,  w.W,  w.OH, w.OW, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw,
              a.attrs().Int("count_include_pad", 0) != 0 ? 1 : 0, w.peh, w.pew};
  l.args = {TArg(0), TArg(1), TArg(a.out_slot(0)), ParamsArg(), I32(kMax ? 1 : 0)};
  l.global = static_cast<uint64_t>(a.inputs[1]->numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

// One launch of kernels_nn.cpp's GEMM: Y[b] = A[b] B[b] (+ Z), row-major Y [batch, M, N].
// Parameters as documented at gemm_f32 (P = [M, N, K, a_sm, a_sk, b_sk, b_sn, c_sm, c_sn, has_c, has_z, br, ...]).
struct Gemm {
  int64_t M = 0, N = 0, K = 0, a_sm = 0, a_sk = 0, b_sk = 0, b_sn = 0;
  int64_t batch = 1, a_bs = 0, b_bs = 0;  // batch count and batch strides of A and B (elements)
  KArg a, b, y, z;
  bool has_z = false;
};

Launch GemmLaunch(const Gemm& g) {
  Launch l;
  l.kernel = g.b_sn == 1 ? "gemm_f32_bn1" : "gemm_f32";
  l.params = {g.M, g.N, g.K, g.a_sm, g.a_sk, g.b_sk, g.b_sn, 0, 0, 0, g.has_z ? 1 : 0};
  if (g.batch > 1) {
    l.params.insert(l.params.end(), {1, g.batch, g.a_bs, g.b_bs});
  } else {
    l.params.push_back(0);
  }
  l.args = {g.a, g.b, g.a, g.has_z ? g.z : g.a, g.y, ParamsArg(), F32(1.f), F32(0.f), I32(kOpIdentity), F32(0.f),
            F32(0.f)};
  l.nd_global = {static_cast<size_t>((g.N + 7) / 8), static_cast<size_t>((g.M + 3) / 4), static_cast<size_t>(g.batch)};
  l.global = g.M * g.N * g.batch > 0 ? 1 : 0;
  return l;
}

// Images per chunk so that a chunk's columns [chunk, C*KH*KW, OH*OW] fit kConvScratchBytes (at least 1).
constexpr uint64_t kConvScratchBytes = uint64_t{16} << 20;

// Group-1 convolution gradients as im2col / col2im + GEMM, a chunk of images at a time:
//   dX: Col[img] = W^T dY[img] ([C*KH*KW, M] x [M, OH*OW], one batched GEMM per chunk), then col2im;
//   dW: for each image, Col = im2col(X[img]); dW (+)= dY[img] Col^T ([M, OH*OW] x [OH*OW, C*KH*KW]).
void ConvGradGemm(bool weight, int64_t N, int64_t C, int64_t M, const Win& w, int out_slot, OpPlan* plan) {
  const int64_t ckk = C * w.kh * w.kw, sp = w.OH * w.OW, xs = C * w.H * w.W;
  const uint64_t per_img = static_cast<uint64_t>(ckk * sp) * sizeof(float);
  const int64_t chunk =
      weight ? 1 : std::max<int64_t>(1, static_cast<int64_t>(kConvScratchBytes / std::max<uint64_t>(per_img, 1)));
  plan->scratch_bytes = per_img * static_cast<uint64_t>(std::min(chunk, N));
  const std::vector<int64_t> win = {C, w.H, w.W, w.OH, w.OW, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw};
  if (weight && N == 0) {  // no images: dW = 0
    Launch f;
    f.kind = Launch::kFill;
    f.dst.index = out_slot;
    f.bytes = static_cast<uint64_t>(M * ckk) * sizeof(float);
    f.pattern.assign(sizeof(float), 0);
    plan->launches.push_back(std::move(f));
    return;
  }
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t cn = std::min(chunk, N - n0);
    const uint64_t dy_off = static_cast<uint64_t>(n0 * M * sp) * sizeof(float);
    const uint64_t x_off = static_cast<uint64_t>(n0 * xs) * sizeof(float);
    if (!weight) {
      Gemm g;
      g.M = ckk;
      g.N = sp;
      g.K = M;
      g.a_sm = 1;  // A = W^T: W is [M, ckk]
      g.a_sk = ckk;
      g.b_sk = sp;
      g.b_sn = 1;
      g.batch = cn;
      g.a_bs = 0;
      g.b_bs = M * sp;
      g.a = TArg(1);
      g.b = TArgAt(0, dy_off);
      g.y = ScratchArg(0);
      plan->launches.push_back(GemmLaunch(g));
      Launch c2i;
      c2i.kernel = "col2im_f32";
      c2i.params = win;
      c2i.args = {ScratchArg(0), TArgAt(out_slot, x_off), ParamsArg()};
      c2i.global = static_cast<uint64_t>(cn * xs);
      plan->launches.push_back(std::move(c2i));
      continue;
    }
    Launch ic;
    ic.kernel = "im2col_f32";  // kernels_nn.cpp: Col [ckk, OH*OW] of one image
    ic.params = win;
    ic.args = {TArgAt(1, x_off), ScratchArg(0), ParamsArg()};
    ic.nd_global = {static_cast<size_t>(w.OW), static_cast<size_t>(w.OH), static_cast<size_t>(ckk)};
    ic.global = static_cast<uint64_t>(ckk * sp);
    plan->launches.push_back(std::move(ic));
    Gemm g;
    g.M = M;
    g.N = ckk;
    g.K = sp;
    g.a_sm = sp;  // A = dY[img] [M, sp]
    g.a_sk = 1;
    g.b_sk = 1;  // B = Col^T: Col is [ckk, sp]
    g.b_sn = sp;
    g.a = TArgAt(0, dy_off);
    g.b = ScratchArg(0);
    g.y = TArg(out_slot);
    g.has_z = n0 > 0;  // accumulate into dW (each element read, then written, by one work-item)
    g.z = TArg(out_slot);
    plan->launches.push_back(GemmLaunch(g));
  }
}

template <bool kWeight>
Err BuildConvGrad(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 2, 2, 1, 1);
  if (e.ok()) e = NeedF32(a, {0, 1});
  if (!e.ok()) return e;
  const std::string who = a.Describe();
  const char* shape_attr = kWeight ? "weight_shape" : "input_shape";
  const std::vector<int64_t> attr_shape = a.attrs().Ints(shape_attr);
  if (attr_shape != a.outputs[0]->dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute %s %s differs from the output shape %s", who.c_str(),
                   shape_attr, DimsStr(attr_shape).c_str(), DimsStr(a.outputs[0]->dims).c_str());
  const auto& yd = a.inputs[0]->dims;
  const std::vector<int64_t> xd = kWeight ? a.inputs[1]->dims : a.outputs[0]->dims;
  const std::vector<int64_t> wd = kWeight ? a.outputs[0]->dims : a.inputs[1]->dims;
  const int64_t groups = a.attrs().Int("group", 1);
  if (xd.size() < 3 || wd.size() != xd.size() || yd.size() != xd.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: X %s, W %s and dY %s must have the same rank >= 3", who.c_str(),
                   DimsStr(xd).c_str(), DimsStr(wd).c_str(), DimsStr(yd).c_str());
  const int64_t N = xd[0], C = xd[1], M = wd[0];
  if (groups <= 0 || C % groups != 0 || M % groups != 0 || wd[1] != C / groups || yd[0] != N || yd[1] != M)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: shapes X %s, W %s, dY %s do not fit group=%lld", who.c_str(),
                   DimsStr(xd).c_str(), DimsStr(wd).c_str(), DimsStr(yd).c_str(), static_cast<long long>(groups));
  Win w;
  if (!(e = ParseWin(a, xd, yd, std::vector<int64_t>(wd.begin() + 2, wd.end()), &w)).ok()) return e;
  auto osz = [](int64_t in, int64_t k, int64_t st, int64_t p0, int64_t p1, int64_t dl) {
    return (in + p0 + p1 - (k - 1) * dl - 1) / st + 1;
  };
  if (osz(w.H, w.kh, w.sh, w.ph, w.peh, w.dh) != w.OH || osz(w.W, w.kw, w.sw, w.pw, w.pew, w.dw) != w.OW)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dY %s does not match the forward Conv over X %s", who.c_str(),
                   DimsStr(yd).c_str(), DimsStr(xd).c_str());
  if (groups == 1 && a.attrs().Int("tessera_force_loops", 0) == 0) {
    ConvGradGemm(kWeight, N, C, M, w, a.out_slot(0), plan);
    return Err::Ok();
  }
  // Grouped convolutions (and tessera_force_loops=1, for tests): direct kernels.
  Launch l;
  l.kernel = kWeight ? "conv_grad_weight_f32" : "conv_grad_input_f32";
  l.params = {N, C, w.H, w.W, M, w.OH, w.OW, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw, groups};
  l.args = {TArg(0), TArg(1), TArg(a.out_slot(0)), ParamsArg()};
  l.global = static_cast<uint64_t>(a.outputs[0]->numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

std::string ClaimWindowGrad(const tsr_node_view& n, const tsr_graph_view& g) {
  for (uint32_t k = 0; k < n.num_inputs + n.num_outputs; ++k) {
    const int32_t vi = k < n.num_inputs ? n.inputs[k] : n.outputs[k - n.num_inputs];
    if (vi >= 0 && g.values[vi].dtype != TSR_DTYPE_F32) return "the OpenCL kernel supports f32 only";
  }
  if (n.num_inputs > 0 && n.inputs[0] >= 0) {
    const int32_t r = g.values[n.inputs[0]].rank;
    if (r > 4) return "3-D windows are not supported by the OpenCL kernel";
  }
  return "";
}

// ---- GeluGrad, SoftmaxGrad, LayerNormGrad (transformer blocks) ----------------------------------

Err BuildReluGrad(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 2, 2, 1, 1);
  if (e.ok()) e = NeedF32(a, {0, 1});
  if (e.ok()) e = SameShape(a, 0, 1);
  if (e.ok()) e = OutputLike(a, 0, 1);
  if (!e.ok()) return e;
  Launch l;
  l.kernel = "relu_grad_f32";
  l.args = {TArg(0), TArg(1), TArg(a.out_slot(0))};
  l.global = static_cast<uint64_t>(a.inputs[1]->numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

Err BuildGeluGrad(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 2, 2, 1, 1);
  if (e.ok()) e = NeedF32(a, {0, 1});
  if (e.ok()) e = SameShape(a, 0, 1);
  if (e.ok()) e = OutputLike(a, 0, 1);
  if (!e.ok()) return e;
  const std::string ap = a.attrs().String("approximate", "none");
  if (ap != "none" && ap != "tanh")
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: approximate must be none or tanh, got '%s'", a.Describe().c_str(),
                   ap.c_str());
  Launch l;
  l.kernel = "gelu_grad_f32";
  l.args = {TArg(0), TArg(1), TArg(a.out_slot(0)), I32(ap == "tanh" ? 1 : 0)};
  l.global = static_cast<uint64_t>(a.inputs[1]->numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

Err BuildSoftmaxGrad(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 2, 2, 1, 1);
  if (e.ok()) e = NeedF32(a, {0, 1});
  if (e.ok()) e = SameShape(a, 0, 1);
  if (e.ok()) e = OutputLike(a, 0, 1);
  if (!e.ok()) return e;
  const auto& d = a.inputs[1]->dims;
  const int64_t r = static_cast<int64_t>(d.size());
  int64_t axis = 0;
  if (r == 0 || !NormAxis(a.attrs().Int("axis", -1), r, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", a.Describe().c_str(),
                   static_cast<long long>(a.attrs().Int("axis", -1)), static_cast<long long>(r));
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= d[i];
  if (a.attrs().Int("coerce_2d", 0) != 0) {
    for (int64_t i = axis; i < r; ++i) len *= d[i];
  } else {
    len = d[axis];
    for (int64_t i = axis + 1; i < r; ++i) inner *= d[i];
  }
  Launch l;
  l.kernel = "softmax_grad_f32";
  l.params = {outer, len, inner};
  l.args = {TArg(0), TArg(1), TArg(a.out_slot(0)), ParamsArg(), I32(a.attrs().Int("log", 0) != 0 ? 1 : 0)};
  l.global = static_cast<uint64_t>(len > 0 ? outer * inner : 0);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

Err BuildLayerNormGrad(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 3, 3, 1, 3);
  if (e.ok()) e = NeedF32(a, {0, 1, 2});
  if (e.ok()) e = SameShape(a, 0, 1);
  if (e.ok()) e = OutputLike(a, 0, 1);
  if (!e.ok()) return e;
  const auto& d = a.inputs[1]->dims;
  const int64_t r = static_cast<int64_t>(d.size());
  int64_t axis = 0;
  if (!NormAxis(a.attrs().Int("axis", -1), r, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", a.Describe().c_str(),
                   static_cast<long long>(a.attrs().Int("axis", -1)), static_cast<long long>(r));
  int64_t rows = 1, D = 1;
  for (int64_t i = 0; i < axis; ++i) rows *= d[i];
  for (int64_t i = axis; i < r; ++i) D *= d[i];
  if (a.inputs[2]->numel != D)
    return MakeErr(TSR_ERR_UNSUPPORTED,
                   "%s: scale must have the %lld elements of the normalized dims (no broadcasting)",
                   a.Describe().c_str(), static_cast<long long>(D));
  for (size_t k = 1; k < 3; ++k)
    if (a.has_output(k) && a.outputs[k]->numel != D)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu must have scale's %lld elements", a.Describe().c_str(),
                     k,
                     static_cast<long long>(D));
  const bool has_ds = a.has_output(1), has_db = a.has_output(2);
  plan->scratch_bytes = static_cast<uint64_t>(2 * rows) * sizeof(float);
  Launch rl;
  rl.kernel = "ln_grad_rows_f32";
  rl.params = {rows, D};
  rl.args = {TArg(0), TArg(1), TArg(2), TArg(a.out_slot(0)), ScratchArg(0), ParamsArg(),
             F32(a.attrs().Float("epsilon", 1e-5f))};
  rl.global = static_cast<uint64_t>(D > 0 ? rows : 0);
  plan->launches.push_back(std::move(rl));
  if (has_ds || has_db) {
    Launch cl;
    cl.kernel = "ln_grad_cols_f32";
    cl.params = {rows, D};
    cl.args = {TArg(0), TArg(1), ScratchArg(0), has_ds ? TArg(a.out_slot(1)) : TArg(a.out_slot(2)),
               has_db ? TArg(a.out_slot(2)) : TArg(a.out_slot(1)), ParamsArg(), I32(has_ds ? 1 : 0),
               I32(has_db ? 1 : 0)};
    cl.global = static_cast<uint64_t>(D);
    plan->launches.push_back(std::move(cl));
  }
  return Err::Ok();
}

// ---- Sum and Pad (ONNX ops that gradient graphs use: gradient accumulation, Slice gradients) --------

// Sum of same-shaped f32 operands (no broadcasting); groups of up to 4 per launch, accumulating in Y.
Err BuildSum(const NodeArgs& a, OpPlan* plan) {
  const size_t n = a.inputs.size();
  if (n == 0 || !a.has_output(0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects at least one input and one output", a.Describe().c_str());
  for (size_t i = 0; i < n; ++i)
    if (!a.has_input(i)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is missing", a.Describe().c_str(), i);
  Err e = Err::Ok();
  for (size_t i = 0; e.ok() && i < n; ++i) {
    e = NeedF32(a, {i});
    if (e.ok() && a.inputs[i]->dims != a.outputs[0]->dims)
      e = MakeErr(TSR_ERR_UNSUPPORTED,
                  "%s: input %zu %s differs from the output %s (broadcasting Sum is not supported)",
                  a.Describe().c_str(), i, DimsStr(a.inputs[i]->dims).c_str(), DimsStr(a.outputs[0]->dims).c_str());
  }
  if (!e.ok()) return e;
  const uint64_t numel = static_cast<uint64_t>(a.outputs[0]->numel);
  const int y = a.out_slot(0);
  if (n == 1) {
    plan->launches.push_back(CopyLaunch(0, y, numel * sizeof(float)));
    return Err::Ok();
  }
  // First launch: inputs 0..3; then Y + the next three (each launch reads element i of every operand before
  // writing element i of Y).
  size_t next = 0;
  bool first = true;
  while (next < n) {
    std::vector<KArg> ops;
    if (!first) ops.push_back(TArg(y));
    while (ops.size() < 4 && next < n) ops.push_back(TArg(static_cast<int>(next++)));
    const int32_t cnt = static_cast<int32_t>(ops.size());
    while (ops.size() < 4) ops.push_back(ops[0]);
    Launch l;
    l.kernel = "sum4_f32";
    l.args = {ops[0], ops[1], ops[2], ops[3], TArg(y), I32(cnt)};
    l.global = numel;
    plan->launches.push_back(std::move(l));
    first = false;
  }
  return Err::Ok();
}

std::string ClaimSum(const tsr_node_view& n, const tsr_graph_view& g) {
  if (n.num_outputs < 1 || n.outputs[0] < 0) return "Sum needs an output";
  const tsr_value_view& y = g.values[n.outputs[0]];
  for (uint32_t k = 0; k < n.num_inputs; ++k) {
    if (n.inputs[k] < 0) return "Sum inputs must be present";
    const tsr_value_view& v = g.values[n.inputs[k]];
    if (v.dtype != TSR_DTYPE_F32 || y.dtype != TSR_DTYPE_F32) return "the OpenCL kernel supports f32 only";
    if (v.rank >= 0 && y.rank >= 0) {
      bool same = v.rank == y.rank;
      for (int32_t d = 0; same && d < v.rank; ++d) same = v.dims[d] == y.dims[d];
      if (!same) return "broadcasting Sum is not supported by the OpenCL kernel";
    }
  }
  return "";
}

Err BuildPad(const NodeArgs& a, OpPlan* plan) {
  const std::string who = a.Describe();
  if (!a.has_input(0) || !a.has_output(0) || a.inputs.size() > 4)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects data, pads, optional constant_value and axes", who.c_str());
  Err e = NeedF32(a, {0, 2});
  if (!e.ok()) return e;
  plugin::NodeAttrs at = a.attrs();
  const std::string mode = at.String("mode", "constant");
  if (mode != "constant")
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: mode '%s' is not supported (constant only)", who.c_str(), mode.c_str());
  const TensorArg& X = *a.inputs[0];
  const int64_t r = static_cast<int64_t>(X.dims.size());
  std::vector<int64_t> pads, axes;
  float value = at.Float("value", 0.f);
  if (at.Has("pads")) {
    pads = at.Ints("pads");
  } else if (!a.has_input(1) || !ConstInts(*a.inputs[1], &pads)) {
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: pads must be a constant for the OpenCL kernel", who.c_str());
  }
  if (a.has_input(2)) {
    if (!a.inputs[2]->const_data || a.inputs[2]->numel != 1)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: constant_value must be a constant scalar", who.c_str());
    std::memcpy(&value, a.inputs[2]->const_data, sizeof(float));
  }
  if (a.has_input(3)) {
    if (!ConstInts(*a.inputs[3], &axes))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: axes must be a constant", who.c_str());
  } else {
    for (int64_t d = 0; d < r; ++d) axes.push_back(d);
  }
  if (pads.size() != 2 * axes.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %zu pads for %zu axes", who.c_str(), pads.size(), axes.size());
  std::vector<int64_t> begin(static_cast<size_t>(r), 0), want = X.dims;
  for (size_t k = 0; k < axes.size(); ++k) {
    int64_t ax = 0;
    if (!NormAxis(axes[k], r, &ax))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range", who.c_str(),
                     static_cast<long long>(axes[k]));
    begin[ax] = pads[k];
    want[ax] += pads[k] + pads[k + axes.size()];
  }
  if (want != a.outputs[0]->dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s, expected %s", who.c_str(),
                   DimsStr(a.outputs[0]->dims).c_str(), DimsStr(want).c_str());
  Launch l;
  l.kernel = "pad_const_f32";
  l.params.push_back(r);
  l.params.insert(l.params.end(), want.begin(), want.end());
  l.params.insert(l.params.end(), X.dims.begin(), X.dims.end());
  l.params.insert(l.params.end(), begin.begin(), begin.end());
  l.args = {TArg(0), TArg(a.out_slot(0)), ParamsArg(), F32(value)};
  l.global = static_cast<uint64_t>(a.outputs[0]->numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

std::string ClaimPad(const tsr_node_view& n, const tsr_graph_view& g) {
  if (n.num_inputs < 1 || n.inputs[0] < 0 || g.values[n.inputs[0]].dtype != TSR_DTYPE_F32)
    return "the OpenCL kernel supports f32 only";
  if (plugin::NodeAttrs(n).String("mode", "constant") != "constant") return "only constant-mode Pad is supported";
  for (uint32_t k = 1; k < n.num_inputs; ++k)
    if (n.inputs[k] >= 0 && !(g.values[n.inputs[k]].flags & TSR_VALUE_CONSTANT))
      return "pads, constant_value and axes must be constants for the OpenCL kernel";
  return "";
}

// ---- GatherGrad, SliceGrad (embeddings, slices) ------------------------------------------------------

Err BuildGatherGrad(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 2, 2, 1, 1);
  if (e.ok()) e = NeedF32(a, {0});
  if (!e.ok()) return e;
  const std::string who = a.Describe();
  const int32_t idt = a.inputs[1]->dtype;
  if (!IsLabel(idt))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: indices have dtype %s, expected i32 or i64", who.c_str(),
                   plugin::DTypeName(idt));
  const auto& xd = a.outputs[0]->dims;
  if (a.attrs().Ints("data_shape") != xd)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute data_shape differs from the output shape %s", who.c_str(),
                   DimsStr(xd).c_str());
  const int64_t r = static_cast<int64_t>(xd.size());
  int64_t axis = 0;
  if (!NormAxis(a.attrs().Int("axis", 0), r, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld is out of range for rank %lld", who.c_str(),
                   static_cast<long long>(a.attrs().Int("axis", 0)), static_cast<long long>(r));
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= xd[i];
  for (int64_t i = axis + 1; i < r; ++i) inner *= xd[i];
  const int64_t ni = a.inputs[1]->numel;
  if (a.inputs[0]->numel != outer * ni * inner)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dY has %lld elements, expected %lld", who.c_str(),
                   static_cast<long long>(a.inputs[0]->numel), static_cast<long long>(outer * ni * inner));
  const int32_t i64 = idt == TSR_DTYPE_I64 ? 1 : 0;
  plan->checks_indices = true;
  Launch c;
  c.kernel = "gather_grad_check";
  c.params = {ni, xd[axis]};
  c.args = {TArg(1), ParamsArg(), I32(i64), FlagArg(), StepCodeArg()};
  c.global = 1;
  plan->launches.push_back(std::move(c));
  Launch l;
  l.kernel = "gather_grad_f32";
  l.params = {outer, xd[axis], ni, inner};
  l.args = {TArg(0), TArg(1), TArg(a.out_slot(0)), ParamsArg(), I32(i64)};
  l.global = static_cast<uint64_t>(a.outputs[0]->numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

std::string ClaimGatherGrad(const tsr_node_view& n, const tsr_graph_view& g) {
  if (n.num_inputs < 2 || n.inputs[0] < 0 || n.inputs[1] < 0) return "GatherGrad needs dY and indices";
  if (g.values[n.inputs[0]].dtype != TSR_DTYPE_F32) return "the OpenCL kernel supports f32 only";
  if (!IsLabel(g.values[n.inputs[1]].dtype)) return "indices must be i32 or i64";
  return "";
}

Err BuildSliceGrad(const NodeArgs& a, OpPlan* plan) {
  Err e = CheckArity(a, 4, 6, 1, 1);
  if (e.ok()) e = NeedF32(a, {0, 1});
  if (e.ok()) e = OutputLike(a, 0, 1);
  if (!e.ok()) return e;
  const std::string who = a.Describe();
  const std::vector<int64_t>& xd = a.inputs[1]->dims;
  const std::vector<int64_t>& yd = a.inputs[0]->dims;
  const int64_t r = static_cast<int64_t>(xd.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (!ConstInts(*a.inputs[2], &starts) || !ConstInts(*a.inputs[3], &ends) ||
      (a.has_input(4) && !ConstInts(*a.inputs[4], &axes)) || (a.has_input(5) && !ConstInts(*a.inputs[5], &steps)))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: starts/ends/axes/steps must be constant i32/i64 tensors", who.c_str());
  if (!a.has_input(4))
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (!a.has_input(5)) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size() ||
      yd.size() != xd.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inconsistent Slice parameters", who.c_str());
  std::vector<int64_t> start(static_cast<size_t>(r), 0), step(static_cast<size_t>(r), 1), count(xd);
  std::vector<bool> seen(static_cast<size_t>(r), false);
  for (size_t k = 0; k < starts.size(); ++k) {
    int64_t ax = 0;
    if (!NormAxis(axes[k], r, &ax) || seen[ax] || steps[k] == 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: bad axis %lld or zero step", who.c_str(),
                     static_cast<long long>(axes[k]));
    seen[ax] = true;
    const int64_t d = xd[ax], st = steps[k];
    const plugin::SliceAxis sa = plugin::ResolveSliceAxis(starts[k], ends[k], st, d);
    start[ax] = sa.first;
    step[ax] = st;
    count[ax] = sa.count;
  }
  if (count != yd)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dY %s does not match the slice %s of X %s", who.c_str(),
                   DimsStr(yd).c_str(), DimsStr(count).c_str(), DimsStr(xd).c_str());
  Launch l;
  l.kernel = "slice_grad_f32";
  l.params.push_back(r);
  for (const std::vector<int64_t>* v : std::initializer_list<const std::vector<int64_t>*>{&xd, &start, &step, &count})
    l.params.insert(l.params.end(), v->begin(), v->end());
  l.args = {TArg(0), TArg(a.out_slot(0)), ParamsArg()};
  l.global = static_cast<uint64_t>(a.inputs[1]->numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

std::string ClaimSliceGrad(const tsr_node_view& n, const tsr_graph_view& g) {
  for (uint32_t k = 0; k < n.num_inputs; ++k) {
    if (n.inputs[k] < 0) continue;
    const tsr_value_view& v = g.values[n.inputs[k]];
    if (k < 2 && v.dtype != TSR_DTYPE_F32) return "the OpenCL kernel supports f32 only";
    if (k >= 2 && !(v.flags & TSR_VALUE_CONSTANT)) return "starts/ends/axes/steps must be constants";
  }
  return "";
}

}  // namespace

void RegisterTrainingOps(std::vector<OpEntry>& r) {
  r.push_back({"tessera", "SoftmaxCrossEntropy", &BuildSce, &ClaimSce});
  r.push_back({"tessera", "SoftmaxCrossEntropyGrad", &BuildSceGrad, &ClaimSce});
  r.push_back({"tessera", "MSE", &BuildMse<false>, nullptr});
  r.push_back({"tessera", "MSEGrad", &BuildMse<true>, nullptr});
  r.push_back({"tessera", "SGDUpdate", &BuildSgd, nullptr});
  r.push_back({"tessera", "AdamWUpdate", &BuildAdamW, &ClaimAdamW});
  r.push_back({"tessera", "GlobalNormClip", &BuildClip, nullptr});
  r.push_back({"tessera", "BatchNormGrad", &BuildBatchNormGrad, nullptr});
  r.push_back({"tessera", "MaxPoolGrad", &BuildPoolGrad<true>, &ClaimWindowGrad});
  r.push_back({"tessera", "AveragePoolGrad", &BuildPoolGrad<false>, &ClaimWindowGrad});
  r.push_back({"tessera", "ConvGradInput", &BuildConvGrad<false>, &ClaimWindowGrad});
  r.push_back({"tessera", "ConvGradWeight", &BuildConvGrad<true>, &ClaimWindowGrad});
  r.push_back({"tessera", "ReluGrad", &BuildReluGrad, nullptr});
  r.push_back({"tessera", "GeluGrad", &BuildGeluGrad, nullptr});
  r.push_back({"tessera", "SoftmaxGrad", &BuildSoftmaxGrad, nullptr});
  r.push_back({"tessera", "LayerNormGrad", &BuildLayerNormGrad, nullptr});
  r.push_back({"tessera", "GatherGrad", &BuildGatherGrad, &ClaimGatherGrad});
  r.push_back({"tessera", "SliceGrad", &BuildSliceGrad, &ClaimSliceGrad});
  r.push_back({"", "Sum", &BuildSum, &ClaimSum});
  r.push_back({"", "Pad", &BuildPad, &ClaimPad});
  // Before kernels_nn.cpp's inference-only entry (FindOp returns the first match); delegates inference mode to it.
  r.push_back({"", "BatchNormalization", &BuildBatchNormOp, &ClaimBatchNormOp});
}

}  // namespace tessera::ocl
