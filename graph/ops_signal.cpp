// Schemas of signal-processing ops: HannWindow/HammingWindow/BlackmanWindow,
// DFT (opset 17: dft_length input, axis attribute; opset 20: axis input),
// STFT and MelWeightMatrix. Lengths given by inputs are used when constant.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "graph/op_schema.h"

namespace tessera {
namespace {

// Scalar (or 1-element) integer constant input i; nullopt if absent/not constant.
Result<std::optional<int64_t>> ConstScalar(const InferenceContext& ctx, size_t i, const char* what) {
  if (!ctx.has_input(i) || !ctx.constant(i)) return std::optional<int64_t>();
  const Tensor* t = ctx.constant(i);
  if (t->num_elements() != 1) return ctx.Error(what, " must be a scalar, got shape ", Shape::FromInts(t->dims()).ToString());
  if (!IsIntegerDType(t->dtype())) return ctx.Error(what, " has dtype ", DTypeName(t->dtype()), ", expected an integer");
  return std::optional<int64_t>(t->GetAsInt64(0));
}

Result<DType> OutputDType(const InferenceContext& ctx) {
  int64_t id = ctx.node->GetInt("output_datatype", 1);
  if (!IsKnownDType(static_cast<int32_t>(id))) return ctx.Error("unknown output_datatype ", id);
  DType t = static_cast<DType>(id);
  if (!IsFloatDType(t) && !IsIntegerDType(t)) return ctx.Error("output_datatype ", DTypeName(t), " is not numeric");
  return t;
}

Status InferWindow(InferenceContext& ctx) {
  TSR_ASSIGN_OR_RETURN(DType dt, OutputDType(ctx));
  TSR_ASSIGN_OR_RETURN(std::optional<int64_t> n, ConstScalar(ctx, 0, "size"));
  if (n && *n < 0) return ctx.Error("size ", *n, " is negative");
  ctx.outputs[0] = TensorType{dt, Shape({n ? Dim::Known(*n) : Dim::Unknown()})};
  return Status::Ok();
}

Status InferMelWeightMatrix(InferenceContext& ctx) {
  TSR_ASSIGN_OR_RETURN(DType dt, OutputDType(ctx));
  TSR_ASSIGN_OR_RETURN(std::optional<int64_t> mel, ConstScalar(ctx, 0, "num_mel_bins"));
  TSR_ASSIGN_OR_RETURN(std::optional<int64_t> dft, ConstScalar(ctx, 1, "dft_length"));
  if (mel && *mel <= 0) return ctx.Error("num_mel_bins ", *mel, " must be positive");
  if (dft && *dft <= 0) return ctx.Error("dft_length ", *dft, " must be positive");
  ctx.outputs[0] = TensorType{dt, Shape({dft ? Dim::Known(*dft / 2 + 1) : Dim::Unknown(),
                                         mel ? Dim::Known(*mel) : Dim::Unknown()})};
  return Status::Ok();
}

Status InferDft(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.dtype != DType::kUndefined && !IsFloatDType(x.dtype))
    return ctx.Error("input has dtype ", DTypeName(x.dtype), ", expected a floating-point type");
  ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
  if (!x.shape.has_rank()) return Status::Ok();
  const int64_t rank = x.shape.rank();
  if (rank < 2) return ctx.Error("input must have rank >= 2 (signal dims + a trailing real/complex dim), got ", rank);
  const Dim& last = x.shape.dim(static_cast<int>(rank - 1));
  if (last.is_known() && last.value != 1 && last.value != 2)
    return ctx.Error("the last dim must be 1 (real) or 2 (complex), got ", last.value);
  int64_t axis = 0;
  if (ctx.opset >= 20) {
    if (ctx.has_input(2)) {
      TSR_ASSIGN_OR_RETURN(std::optional<int64_t> a, ConstScalar(ctx, 2, "axis"));
      if (!a) {
        ctx.outputs[0].shape = Shape(std::vector<Dim>(static_cast<size_t>(rank), Dim::Unknown()));
        ctx.outputs[0].shape.dim(static_cast<int>(rank - 1)) = Dim::Known(2);
        return Status::Ok();
      }
      axis = *a;
    } else {
      axis = -2;
    }
  } else {
    axis = ctx.node->GetInt("axis", 1);
  }
  if (axis < -rank || axis >= rank - 1) return ctx.Error("axis ", axis, " is out of range for input rank ", rank);
  if (axis < 0) axis += rank;
  const bool onesided = ctx.node->GetInt("onesided", 0) != 0;
  std::vector<Dim> out = x.shape.dims();
  out[static_cast<size_t>(rank - 1)] = Dim::Known(2);
  Dim n = x.shape.dim(static_cast<int>(axis));
  if (ctx.has_input(1)) {
    TSR_ASSIGN_OR_RETURN(std::optional<int64_t> len, ConstScalar(ctx, 1, "dft_length"));
    if (len && *len <= 0) return ctx.Error("dft_length ", *len, " must be positive");
    n = len ? Dim::Known(*len) : Dim::Unknown();
  }
  if (onesided) n = n.is_known() ? Dim::Known(n.value / 2 + 1) : Dim::Unknown();
  out[static_cast<size_t>(axis)] = n;
  ctx.outputs[0].shape = Shape(std::move(out));
  return Status::Ok();
}

Status InferStft(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.dtype != DType::kUndefined && !IsFloatDType(x.dtype))
    return ctx.Error("signal has dtype ", DTypeName(x.dtype), ", expected a floating-point type");
  ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
  if (x.shape.has_rank() && x.shape.rank() != 3)
    return ctx.Error("signal must have shape [batch, length, 1 or 2], got ", x.shape.ToString());
  TSR_ASSIGN_OR_RETURN(std::optional<int64_t> step, ConstScalar(ctx, 1, "frame_step"));
  if (step && *step <= 0) return ctx.Error("frame_step ", *step, " must be positive");
  std::optional<int64_t> flen;
  if (ctx.has_input(3)) {
    TSR_ASSIGN_OR_RETURN(flen, ConstScalar(ctx, 3, "frame_length"));
  } else if (ctx.has_input(2)) {
    const Shape& ws = ctx.input(2).shape;
    if (ws.has_rank() && ws.rank() != 1) return ctx.Error("window must be 1-D, got ", ws.ToString());
    if (ws.has_rank() && ws.dim(0).is_known()) flen = ws.dim(0).value;
  } else if (x.shape.has_rank() && x.shape.dim(1).is_known()) {
    flen = x.shape.dim(1).value;
  }
  if (flen && *flen <= 0) return ctx.Error("frame_length ", *flen, " must be positive");
  const bool onesided = ctx.node->GetInt("onesided", 1) != 0;
  Dim batch = x.shape.has_rank() ? x.shape.dim(0) : Dim::Unknown();
  Dim frames = Dim::Unknown();
  if (flen && step && x.shape.has_rank() && x.shape.dim(1).is_known()) {
    int64_t len = x.shape.dim(1).value;
    if (len < *flen) return ctx.Error("signal length ", len, " is shorter than frame_length ", *flen);
    frames = Dim::Known((len - *flen) / *step + 1);
  }
  Dim bins = flen ? Dim::Known(onesided ? *flen / 2 + 1 : *flen) : Dim::Unknown();
  ctx.outputs[0].shape = Shape({batch, frames, bins, Dim::Known(2)});
  return Status::Ok();
}

}  // namespace

void RegisterSignalOps(OpRegistry& r) {
  r.Register({"", "HannWindow", 1, 1, 1, 1, InferWindow});
  r.Register({"", "HammingWindow", 1, 1, 1, 1, InferWindow});
  r.Register({"", "BlackmanWindow", 1, 1, 1, 1, InferWindow});
  r.Register({"", "MelWeightMatrix", 5, 5, 1, 1, InferMelWeightMatrix});
  r.Register({"", "DFT", 1, 3, 1, 1, InferDft});
  r.Register({"", "STFT", 2, 4, 1, 1, InferStft});
}

}  // namespace tessera
