// Schemas of the recurrent ops RNN, GRU and LSTM.
//
// Inputs: X, W, R, B?, sequence_lens?, initial_h? (+ initial_c?, P? for LSTM).
// layout 0: X [seq, batch, input], Y [seq, dirs, batch, hidden],
//           Y_h/Y_c [dirs, batch, hidden];
// layout 1: X [batch, seq, input], Y [batch, seq, dirs, hidden],
//           Y_h/Y_c [batch, dirs, hidden].
// W is [dirs, gates * hidden, input], R [dirs, gates * hidden, hidden],
// B [dirs, 2 * gates * hidden]; gates = 1 (RNN), 3 (GRU), 4 (LSTM).
#include <string>
#include <vector>

#include "graph/op_schema.h"

namespace tessera {
namespace {

Status CheckDim(const InferenceContext& ctx, const Shape& s, int axis, int64_t want, const char* what) {
  if (want < 0 || !s.has_rank() || axis >= s.rank()) return Status::Ok();
  const Dim& d = s.dim(axis);
  if (d.is_known() && d.value != want)
    return ctx.Error(what, " ", s.ToString(), " has ", d.value, " at dim ", axis, ", expected ", want);
  return Status::Ok();
}

Status InferRecurrent(InferenceContext& ctx, int64_t gates, size_t num_outputs) {
  const Node& n = *ctx.node;
  if (ctx.outputs.size() > num_outputs) return ctx.Error("has at most ", num_outputs, " outputs, got ", ctx.outputs.size());
  DType dt = ctx.input(0).dtype;
  if (dt != DType::kUndefined && !IsFloatDType(dt))
    return ctx.Error("X has dtype ", DTypeName(dt), ", expected a floating-point type");
  static const char* kNames[] = {"X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"};
  for (size_t i = 1; i < ctx.num_inputs() && i < 8; ++i) {
    if (!ctx.has_input(i) || i == 4) continue;
    DType t = ctx.input(i).dtype;
    if (t != DType::kUndefined && dt != DType::kUndefined && t != dt)
      return ctx.Error(kNames[i], " has dtype ", DTypeName(t), " but X has ", DTypeName(dt));
  }
  if (ctx.has_input(4)) {
    DType t = ctx.input(4).dtype;
    if (t != DType::kUndefined && t != DType::kI32)
      return ctx.Error("sequence_lens has dtype ", DTypeName(t), ", expected i32");
  }
  std::string direction = n.GetString("direction", "forward");
  int64_t dirs = 0;
  if (direction == "forward" || direction == "reverse") dirs = 1;
  else if (direction == "bidirectional") dirs = 2;
  else return ctx.Error("unknown direction \"", direction, "\" (forward, reverse, bidirectional)");
  int64_t layout = n.GetInt("layout", 0);
  if (layout != 0 && layout != 1) return ctx.Error("layout must be 0 or 1, got ", layout);
  const Shape& x = ctx.input(0).shape;
  const Shape& w = ctx.input(1).shape;
  const Shape& r = ctx.input(2).shape;
  if (x.has_rank() && x.rank() != 3) return ctx.Error("X must have rank 3, got shape ", x.ToString());
  if (w.has_rank() && w.rank() != 3) return ctx.Error("W must have rank 3, got shape ", w.ToString());
  if (r.has_rank() && r.rank() != 3) return ctx.Error("R must have rank 3, got shape ", r.ToString());
  int64_t hidden = n.GetInt("hidden_size", -1);
  if (n.has_attr("hidden_size") && hidden < 1) return ctx.Error("hidden_size must be >= 1, got ", hidden);
  if (hidden < 0 && r.has_rank() && r.dim(2).is_known()) hidden = r.dim(2).value;
  if (hidden < 0 && w.has_rank() && w.dim(1).is_known()) {
    if (w.dim(1).value % gates != 0)
      return ctx.Error("W ", w.ToString(), ": dim 1 is not a multiple of ", gates, " gates");
    hidden = w.dim(1).value / gates;
  }
  TSR_RETURN_IF_ERROR(CheckDim(ctx, w, 0, dirs, "W"));
  TSR_RETURN_IF_ERROR(CheckDim(ctx, r, 0, dirs, "R"));
  TSR_RETURN_IF_ERROR(CheckDim(ctx, w, 1, hidden < 0 ? -1 : gates * hidden, "W"));
  TSR_RETURN_IF_ERROR(CheckDim(ctx, r, 1, hidden < 0 ? -1 : gates * hidden, "R"));
  TSR_RETURN_IF_ERROR(CheckDim(ctx, r, 2, hidden, "R"));
  if (x.has_rank() && x.dim(2).is_known()) TSR_RETURN_IF_ERROR(CheckDim(ctx, w, 2, x.dim(2).value, "W"));
  if (ctx.has_input(3)) {
    const Shape& b = ctx.input(3).shape;
    if (b.has_rank() && b.rank() != 2) return ctx.Error("B must have rank 2, got shape ", b.ToString());
    TSR_RETURN_IF_ERROR(CheckDim(ctx, b, 0, dirs, "B"));
    TSR_RETURN_IF_ERROR(CheckDim(ctx, b, 1, hidden < 0 ? -1 : 2 * gates * hidden, "B"));
  }
  if (gates == 4 && ctx.has_input(7)) {
    const Shape& p = ctx.input(7).shape;
    if (p.has_rank() && p.rank() != 2) return ctx.Error("P must have rank 2, got shape ", p.ToString());
    TSR_RETURN_IF_ERROR(CheckDim(ctx, p, 0, dirs, "P"));
    TSR_RETURN_IF_ERROR(CheckDim(ctx, p, 1, hidden < 0 ? -1 : 3 * hidden, "P"));
  }
  Dim seq = Dim::Unknown(), batch = Dim::Unknown();
  if (x.has_rank()) {
    seq = x.dim(layout == 0 ? 0 : 1);
    batch = x.dim(layout == 0 ? 1 : 0);
  }
  Dim h = hidden < 0 ? Dim::Unknown() : Dim::Known(hidden);
  Dim d = Dim::Known(dirs);
  Shape y = layout == 0 ? Shape({seq, d, batch, h}) : Shape({batch, seq, d, h});
  Shape yh = layout == 0 ? Shape({d, batch, h}) : Shape({batch, d, h});
  for (size_t i = 0; i < ctx.outputs.size(); ++i) ctx.outputs[i] = TensorType{dt, i == 0 ? y : yh};
  return Status::Ok();
}

void Reg(OpRegistry& r, const char* name, int max_in, int max_out, InferFn fn) {
  OpSchema s;
  s.name = name;
  s.min_inputs = 3;
  s.max_inputs = max_in;
  s.min_outputs = 0;
  s.max_outputs = max_out;
  s.infer = std::move(fn);
  r.Register(std::move(s));
}

}  // namespace

void RegisterRnnOps(OpRegistry& r) {
  Reg(r, "RNN", 6, 2, [](InferenceContext& ctx) { return InferRecurrent(ctx, 1, 2); });
  Reg(r, "GRU", 6, 2, [](InferenceContext& ctx) { return InferRecurrent(ctx, 3, 2); });
  Reg(r, "LSTM", 8, 3, [](InferenceContext& ctx) { return InferRecurrent(ctx, 4, 3); });
}

}  // namespace tessera
