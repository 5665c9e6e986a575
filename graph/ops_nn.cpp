// Schemas of neural-network ops: MatMul, Gemm, Conv, ConvTranspose, DeformConv,
// pooling (incl. LpPool, MaxUnpool), normalization,
// softmax, Dropout, and tessera.FusedAttention.
#include <string>
#include <vector>

#include "graph/op_schema.h"

namespace tessera {
namespace {

bool IsNumeric(DType t) { return IsFloatDType(t) || IsIntegerDType(t); }

Status CheckFloat(const InferenceContext& ctx, size_t i) {
  DType t = ctx.input(i).dtype;
  if (t == DType::kUndefined || IsFloatDType(t)) return Status::Ok();
  return ctx.Error("input ", i, " has dtype ", DTypeName(t), ", expected a floating-point type");
}

Status CheckSameDType(const InferenceContext& ctx, size_t a, size_t b, const char* what_a, const char* what_b) {
  DType x = ctx.input(a).dtype, y = ctx.input(b).dtype;
  if (x == DType::kUndefined || y == DType::kUndefined || x == y) return Status::Ok();
  return ctx.Error(what_a, " has dtype ", DTypeName(x), " but ", what_b, " has ", DTypeName(y));
}

// NormalizeAxis with the error naming the node.
Result<int64_t> AxisFor(const InferenceContext& ctx, int64_t axis, int64_t rank) {
  auto a = NormalizeAxis(axis, rank);
  if (!a.ok()) return ctx.Error(a.status().message());
  return a;
}

DType FirstKnownDType(DType a, DType b) { return a != DType::kUndefined ? a : b; }

// Two dims that must be equal: error if both known and different; otherwise
// the more informative of the two.
Result<Dim> UnifyDims(const InferenceContext& ctx, const Dim& a, const Dim& b, const std::string& what) {
  if (a.is_known() && b.is_known() && a.value != b.value)
    return ctx.Error(what, ": ", a.value, " vs ", b.value);
  if (a.is_known()) return a;
  if (b.is_known()) return b;
  return a.symbol.empty() ? b : a;
}

Status InferMatMul(InferenceContext& ctx) {
  const TensorType& a = ctx.input(0);
  const TensorType& b = ctx.input(1);
  if (!IsNumeric(a.dtype) && a.dtype != DType::kUndefined)
    return ctx.Error("input 0 has dtype ", DTypeName(a.dtype), ", expected a numeric type");
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 1, "A", "B"));
  DType dt = FirstKnownDType(a.dtype, b.dtype);
  if (!a.shape.has_rank() || !b.shape.has_rank()) {
    ctx.outputs[0] = TensorType{dt, Shape::UnknownRank()};
    return Status::Ok();
  }
  if (a.shape.rank() == 0 || b.shape.rank() == 0) return ctx.Error("inputs must have rank >= 1 (scalars given)");
  // 1-D operands are promoted (A: prepend 1, B: append 1) and the added dim is
  // removed from the result.
  std::vector<Dim> ad = a.shape.dims(), bd = b.shape.dims();
  bool a1 = ad.size() == 1, b1 = bd.size() == 1;
  if (a1) ad.insert(ad.begin(), Dim::Known(1));
  if (b1) bd.push_back(Dim::Known(1));
  const Dim& ka = ad[ad.size() - 1];
  const Dim& kb = bd[bd.size() - 2];
  TSR_RETURN_IF_ERROR(UnifyDims(ctx, ka, kb,
                                StrCat("inner dims differ for shapes ", a.shape.ToString(), " and ",
                                       b.shape.ToString()))
                          .status());
  Shape abatch(std::vector<Dim>(ad.begin(), ad.end() - 2));
  Shape bbatch(std::vector<Dim>(bd.begin(), bd.end() - 2));
  auto batch = BroadcastShapes(abatch, bbatch);
  if (!batch.ok()) return ctx.Error("batch dims: ", batch.status().message());
  std::vector<Dim> out = batch->dims();
  if (!a1) out.push_back(ad[ad.size() - 2]);
  if (!b1) out.push_back(bd[bd.size() - 1]);
  ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
  return Status::Ok();
}

Status InferGemm(InferenceContext& ctx) {
  if (ctx.opset < 11 && !ctx.has_input(2)) return ctx.Error("input C is required before opset 11");
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 1, "A", "B"));
  if (ctx.has_input(2)) TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 2, "A", "C"));
  DType dt = FirstKnownDType(ctx.input(0).dtype, ctx.input(1).dtype);
  const Shape& a = ctx.input(0).shape;
  const Shape& b = ctx.input(1).shape;
  if (a.has_rank() && a.rank() != 2) return ctx.Error("A must have rank 2, got shape ", a.ToString());
  if (b.has_rank() && b.rank() != 2) return ctx.Error("B must have rank 2, got shape ", b.ToString());
  bool ta = ctx.node->GetInt("transA", 0) != 0, tb = ctx.node->GetInt("transB", 0) != 0;
  Dim m = Dim::Unknown(), n = Dim::Unknown();
  if (a.has_rank()) m = a.dim(ta ? 1 : 0);
  if (b.has_rank()) n = b.dim(tb ? 0 : 1);
  if (a.has_rank() && b.has_rank()) {
    TSR_RETURN_IF_ERROR(UnifyDims(ctx, a.dim(ta ? 0 : 1), b.dim(tb ? 1 : 0),
                                  StrCat("inner dims differ for A ", a.ToString(), " (transA=", ta, ") and B ",
                                         b.ToString(), " (transB=", tb, ")"))
                            .status());
  }
  if (ctx.has_input(2)) {
    // C broadcasts unidirectionally to [M, N].
    const Shape& c = ctx.input(2).shape;
    if (c.has_rank()) {
      if (c.rank() > 2) return ctx.Error("C must have rank <= 2, got shape ", c.ToString());
      const Dim* mn[2] = {&m, &n};
      for (int i = 0; i < c.rank(); ++i) {
        const Dim& cd = c.dim(i);
        const Dim& od = *mn[2 - c.rank() + i];
        if (cd.is_known() && cd.value != 1 && od.is_known() && cd.value != od.value)
          return ctx.Error("C ", c.ToString(), " does not broadcast to [", m.ToString(), ",", n.ToString(), "]");
      }
    }
  }
  ctx.outputs[0] = TensorType{dt, Shape({m, n})};
  return Status::Ok();
}

// Output size of one spatial dim of a convolution or pooling window.
// auto_pad SAME_*: ceil(in / stride). VALID: no padding. NOTSET: explicit pads.
// With ceil_mode the last window must start inside the input or the leading
// padding, else it is dropped (the ONNX reference semantics).
Result<Dim> WindowOutput(const InferenceContext& ctx, const Dim& in, int64_t kernel, int64_t stride, int64_t dilation,
                         int64_t pad_begin, int64_t pad_end, const std::string& auto_pad, bool ceil_mode, int axis) {
  if (!in.is_known()) return Dim::Unknown();
  int64_t size = in.value;
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") return Dim::Known((size + stride - 1) / stride);
  if (auto_pad == "VALID") pad_begin = pad_end = 0;
  int64_t eff_kernel = 0, padded = 0;
  if (__builtin_mul_overflow(kernel - 1, dilation, &eff_kernel) || __builtin_add_overflow(eff_kernel, 1, &eff_kernel) ||
      __builtin_add_overflow(size, pad_begin, &padded) || __builtin_add_overflow(padded, pad_end, &padded))
    return Status(StatusCode::kOutOfRange, StrCat(ctx.node->Describe(), ": spatial dim ", axis,
                                                  ": window or padded size overflows int64"));
  int64_t span = padded - eff_kernel;
  if (span < 0)
    return ctx.Error("spatial dim ", axis, ": window of ", eff_kernel, " (kernel ", kernel, ", dilation ", dilation,
                     ") is larger than the padded input ", padded);
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= size + pad_begin) --out;
  return Dim::Known(out);
}

struct WindowAttrs {
  std::vector<int64_t> kernel, strides, dilations, pads;
  std::string auto_pad;
  bool ceil_mode = false;
};

// Reads and validates kernel/strides/dilations/pads/auto_pad for `nsp` spatial dims.
Result<WindowAttrs> ReadWindowAttrs(const InferenceContext& ctx, size_t nsp, std::vector<int64_t> kernel) {
  WindowAttrs w;
  const Node& n = *ctx.node;
  w.kernel = std::move(kernel);
  w.strides = n.GetInts("strides", std::vector<int64_t>(nsp, 1));
  w.dilations = n.GetInts("dilations", std::vector<int64_t>(nsp, 1));
  w.pads = n.GetInts("pads", std::vector<int64_t>(2 * nsp, 0));
  w.auto_pad = n.GetString("auto_pad", "NOTSET");
  w.ceil_mode = n.GetInt("ceil_mode", 0) != 0;
  if (w.kernel.size() != nsp)
    return ctx.Error("kernel_shape has ", w.kernel.size(), " values, input has ", nsp, " spatial dims");
  if (w.strides.size() != nsp) return ctx.Error("strides has ", w.strides.size(), " values, expected ", nsp);
  if (w.dilations.size() != nsp) return ctx.Error("dilations has ", w.dilations.size(), " values, expected ", nsp);
  if (w.pads.size() != 2 * nsp) return ctx.Error("pads has ", w.pads.size(), " values, expected ", 2 * nsp);
  if (w.auto_pad != "NOTSET" && w.auto_pad != "SAME_UPPER" && w.auto_pad != "SAME_LOWER" && w.auto_pad != "VALID")
    return ctx.Error("unknown auto_pad \"", w.auto_pad, "\"");
  for (size_t i = 0; i < nsp; ++i) {
    if (w.kernel[i] < 1) return ctx.Error("kernel size ", w.kernel[i], " at spatial dim ", i, " must be >= 1");
    if (w.strides[i] < 1) return ctx.Error("stride ", w.strides[i], " at spatial dim ", i, " must be >= 1");
    if (w.dilations[i] < 1) return ctx.Error("dilation ", w.dilations[i], " at spatial dim ", i, " must be >= 1");
    if (w.pads[i] < 0 || w.pads[i + nsp] < 0) return ctx.Error("pads must be >= 0 at spatial dim ", i);
  }
  return w;
}

Result<std::vector<Dim>> SpatialOutputs(const InferenceContext& ctx, const Shape& x, const WindowAttrs& w) {
  std::vector<Dim> out;
  size_t nsp = w.kernel.size();
  for (size_t i = 0; i < nsp; ++i) {
    TSR_ASSIGN_OR_RETURN(Dim d, WindowOutput(ctx, x.dim(static_cast<int>(i + 2)), w.kernel[i], w.strides[i],
                                             w.dilations[i], w.pads[i], w.pads[i + nsp], w.auto_pad, w.ceil_mode,
                                             static_cast<int>(i)));
    out.push_back(std::move(d));
  }
  return out;
}

Status InferConv(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 1, "X", "W"));
  if (ctx.has_input(2)) TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 2, "X", "B"));
  const Shape& x = ctx.input(0).shape;
  const Shape& wsh = ctx.input(1).shape;
  DType dt = FirstKnownDType(ctx.input(0).dtype, ctx.input(1).dtype);
  if (x.has_rank() && x.rank() < 3)
    return ctx.Error("X must have rank >= 3 ([N, C, spatial...]), got shape ", x.ToString());
  if (wsh.has_rank() && wsh.rank() < 3)
    return ctx.Error("W must have rank >= 3 ([M, C/group, kernel...]), got shape ", wsh.ToString());
  if (x.has_rank() && wsh.has_rank() && x.rank() != wsh.rank())
    return ctx.Error("X ", x.ToString(), " and W ", wsh.ToString(), " have different ranks");
  int64_t group = ctx.node->GetInt("group", 1);
  if (group < 1) return ctx.Error("group must be >= 1, got ", group);
  if (!x.has_rank()) {
    ctx.outputs[0] = TensorType{dt, Shape::UnknownRank()};
    return Status::Ok();
  }
  size_t nsp = static_cast<size_t>(x.rank() - 2);
  std::vector<int64_t> kernel = ctx.node->GetInts("kernel_shape");
  if (wsh.has_rank()) {
    for (size_t i = 0; i < nsp; ++i) {
      const Dim& kd = wsh.dim(static_cast<int>(i + 2));
      if (kernel.size() == nsp && kd.is_known() && kd.value != kernel[i])
        return ctx.Error("kernel_shape ", Shape::FromInts(kernel).ToString(), " does not match W ", wsh.ToString());
    }
    if (kernel.empty()) {
      for (size_t i = 0; i < nsp; ++i) {
        const Dim& kd = wsh.dim(static_cast<int>(i + 2));
        if (!kd.is_known()) {  // kernel size unknown: spatial output unknown
          std::vector<Dim> out{x.dim(0), wsh.dim(0)};
          out.resize(nsp + 2, Dim::Unknown());
          ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
          return Status::Ok();
        }
        kernel.push_back(kd.value);
      }
    }
    const Dim& cin = x.dim(1);
    const Dim& wc = wsh.dim(1);
    if (cin.is_known() && wc.is_known() && cin.value != wc.value * group)
      return ctx.Error("X has ", cin.value, " channels but W ", wsh.ToString(), " with group ", group, " expects ",
                       wc.value * group);
    const Dim& m = wsh.dim(0);
    if (m.is_known() && m.value % group != 0)
      return ctx.Error("W has ", m.value, " output channels, not divisible by group ", group);
  } else if (kernel.empty()) {  // W's rank unknown and no kernel_shape: only the rank is known
    std::vector<Dim> out{x.dim(0)};
    out.resize(nsp + 2, Dim::Unknown());
    ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
    return Status::Ok();
  }
  Dim m = wsh.has_rank() ? wsh.dim(0) : Dim::Unknown();
  if (ctx.has_input(2)) {
    const Shape& b = ctx.input(2).shape;
    if (b.has_rank() && b.rank() != 1) return ctx.Error("B must have rank 1, got shape ", b.ToString());
    if (b.has_rank()) {
      TSR_ASSIGN_OR_RETURN(m, UnifyDims(ctx, m, b.dim(0), "B size differs from output channels"));
    }
  }
  TSR_ASSIGN_OR_RETURN(WindowAttrs w, ReadWindowAttrs(ctx, nsp, kernel));
  if (w.ceil_mode) return ctx.Error("attribute ceil_mode is not valid for Conv");
  TSR_ASSIGN_OR_RETURN(std::vector<Dim> sp, SpatialOutputs(ctx, x, w));
  std::vector<Dim> out{x.dim(0), m};
  out.insert(out.end(), sp.begin(), sp.end());
  ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
  return Status::Ok();
}

// MaxPool (Y, optional Indices) and AveragePool.
Status InferPool(InferenceContext& ctx) {
  DType dt = ctx.input(0).dtype;
  bool is_max = ctx.node->op_type() == "MaxPool";
  if (dt != DType::kUndefined && !IsFloatDType(dt) && !(is_max && (dt == DType::kI8 || dt == DType::kU8)))
    return ctx.Error("input 0 has dtype ", DTypeName(dt), ", expected a floating-point type");
  const Shape& x = ctx.input(0).shape;
  if (!ctx.node->has_attr("kernel_shape")) return ctx.Error("attribute kernel_shape is required");
  std::vector<int64_t> kernel = ctx.node->GetInts("kernel_shape");
  Shape out_shape = Shape::UnknownRank();
  if (x.has_rank()) {
    if (x.rank() < 3) return ctx.Error("X must have rank >= 3 ([N, C, spatial...]), got shape ", x.ToString());
    size_t nsp = static_cast<size_t>(x.rank() - 2);
    TSR_ASSIGN_OR_RETURN(WindowAttrs w, ReadWindowAttrs(ctx, nsp, kernel));
    TSR_ASSIGN_OR_RETURN(std::vector<Dim> sp, SpatialOutputs(ctx, x, w));
    std::vector<Dim> out{x.dim(0), x.dim(1)};
    out.insert(out.end(), sp.begin(), sp.end());
    out_shape = Shape(std::move(out));
  }
  ctx.outputs[0] = TensorType{dt, out_shape};
  if (ctx.outputs.size() > 1) {
    if (!is_max) return ctx.Error("has 1 output, got ", ctx.outputs.size());
    ctx.outputs[1] = TensorType{DType::kI64, out_shape};
  }
  return Status::Ok();
}

Status InferGlobalPool(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0));
  const Shape& x = ctx.input(0).shape;
  Shape out = Shape::UnknownRank();
  if (x.has_rank()) {
    if (x.rank() < 3) return ctx.Error("X must have rank >= 3 ([N, C, spatial...]), got shape ", x.ToString());
    std::vector<Dim> d{x.dim(0), x.dim(1)};
    d.resize(static_cast<size_t>(x.rank()), Dim::Known(1));
    out = Shape(std::move(d));
  }
  ctx.outputs[0] = TensorType{ctx.input(0).dtype, std::move(out)};
  return Status::Ok();
}

// ConvTranspose(X [N, C, in...], W [C, M/group, k...], B [M]?) -> [N, M, out...].
// out = output_shape when given, else in * stride for auto_pad SAME_*, else
// stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - pad_begin - pad_end.
Status InferConvTranspose(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 1, "X", "W"));
  if (ctx.has_input(2)) TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 2, "X", "B"));
  const Shape& x = ctx.input(0).shape;
  const Shape& wsh = ctx.input(1).shape;
  DType dt = FirstKnownDType(ctx.input(0).dtype, ctx.input(1).dtype);
  if (x.has_rank() && x.rank() < 3)
    return ctx.Error("X must have rank >= 3 ([N, C, spatial...]), got shape ", x.ToString());
  if (wsh.has_rank() && wsh.rank() < 3)
    return ctx.Error("W must have rank >= 3 ([C, M/group, kernel...]), got shape ", wsh.ToString());
  if (x.has_rank() && wsh.has_rank() && x.rank() != wsh.rank())
    return ctx.Error("X ", x.ToString(), " and W ", wsh.ToString(), " have different ranks");
  int64_t group = ctx.node->GetInt("group", 1);
  if (group < 1) return ctx.Error("group must be >= 1, got ", group);
  if (!x.has_rank()) {
    ctx.outputs[0] = TensorType{dt, Shape::UnknownRank()};
    return Status::Ok();
  }
  size_t nsp = static_cast<size_t>(x.rank() - 2);
  Dim m = Dim::Unknown();
  std::vector<int64_t> kernel = ctx.node->GetInts("kernel_shape");
  if (wsh.has_rank()) {
    const Dim& cin = x.dim(1);
    const Dim& wc = wsh.dim(0);
    if (cin.is_known() && wc.is_known() && cin.value != wc.value)
      return ctx.Error("X has ", cin.value, " channels but W ", wsh.ToString(), " expects ", wc.value);
    if (wc.is_known() && wc.value % group != 0)
      return ctx.Error("W has ", wc.value, " input channels, not divisible by group ", group);
    if (wsh.dim(1).is_known()) m = Dim::Known(wsh.dim(1).value * group);
    if (kernel.empty()) {
      for (size_t i = 0; i < nsp; ++i) {
        const Dim& kd = wsh.dim(static_cast<int>(i + 2));
        kernel.push_back(kd.is_known() ? kd.value : -1);
      }
    }
  }
  if (ctx.has_input(2)) {
    const Shape& b = ctx.input(2).shape;
    if (b.has_rank() && b.rank() != 1) return ctx.Error("B must have rank 1, got shape ", b.ToString());
    if (b.has_rank()) {
      TSR_ASSIGN_OR_RETURN(m, UnifyDims(ctx, m, b.dim(0), "B size differs from output channels"));
    }
  }
  std::vector<Dim> out{x.dim(0), m};
  std::vector<int64_t> oshape = ctx.node->GetInts("output_shape");
  if (!oshape.empty()) {
    if (oshape.size() == nsp + 2) oshape.erase(oshape.begin(), oshape.begin() + 2);
    if (oshape.size() != nsp)
      return ctx.Error("output_shape has ", oshape.size(), " values, expected ", nsp, " (one per spatial dim)");
    for (int64_t v : oshape) {
      if (v < 0) return ctx.Error("output_shape values must be >= 0");
      out.push_back(Dim::Known(v));
    }
    ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
    return Status::Ok();
  }
  bool kernel_known = kernel.size() == nsp;
  for (int64_t k : kernel) kernel_known = kernel_known && k >= 1;
  if (!kernel_known) {
    out.resize(nsp + 2, Dim::Unknown());
    ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
    return Status::Ok();
  }
  TSR_ASSIGN_OR_RETURN(WindowAttrs w, ReadWindowAttrs(ctx, nsp, kernel));
  if (w.ceil_mode) return ctx.Error("attribute ceil_mode is not valid for ConvTranspose");
  std::vector<int64_t> opad = ctx.node->GetInts("output_padding", std::vector<int64_t>(nsp, 0));
  if (opad.size() != nsp) return ctx.Error("output_padding has ", opad.size(), " values, expected ", nsp);
  for (size_t i = 0; i < nsp; ++i) {
    const Dim& in = x.dim(static_cast<int>(i + 2));
    if (!in.is_known()) {
      out.push_back(Dim::Unknown());
      continue;
    }
    if (opad[i] < 0) return ctx.Error("output_padding must be >= 0 at spatial dim ", i);
    int64_t o;
    if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
      o = in.value * w.strides[i];
    } else {
      int64_t pb = w.auto_pad == "VALID" ? 0 : w.pads[i], pe = w.auto_pad == "VALID" ? 0 : w.pads[i + nsp];
      o = w.strides[i] * (in.value - 1) + opad[i] + (w.kernel[i] - 1) * w.dilations[i] + 1 - pb - pe;
    }
    if (o < 0) return ctx.Error("spatial dim ", i, ": computed output size ", o, " is negative");
    out.push_back(Dim::Known(o));
  }
  ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
  return Status::Ok();
}

// MaxUnpool(X, I [, output_shape]): output_shape (a constant) when given, else
// (in - 1) * stride + kernel - pad_begin - pad_end per spatial dim.
Status InferMaxUnpool(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0));
  DType it = ctx.input(1).dtype;
  if (it != DType::kUndefined && it != DType::kI64)
    return ctx.Error("indices I have dtype ", DTypeName(it), ", expected i64");
  DType dt = ctx.input(0).dtype;
  const Shape& x = ctx.input(0).shape;
  if (x.has_rank() && x.rank() < 3)
    return ctx.Error("X must have rank >= 3 ([N, C, spatial...]), got shape ", x.ToString());
  if (!ctx.node->has_attr("kernel_shape")) return ctx.Error("attribute kernel_shape is required");
  if (ctx.has_input(2)) {
    if (const Tensor* t = ctx.constant(2)) {
      std::vector<Dim> d;
      for (int64_t i = 0; i < t->num_elements(); ++i) {
        int64_t v = static_cast<int64_t>(t->GetAsDouble(i));
        if (v < 0) return ctx.Error("output_shape has a negative value ", v);
        d.push_back(Dim::Known(v));
      }
      if (x.has_rank() && static_cast<int64_t>(d.size()) != x.rank())
        return ctx.Error("output_shape has ", d.size(), " values, X has rank ", x.rank());
      ctx.outputs[0] = TensorType{dt, Shape(std::move(d))};
    } else {
      ctx.outputs[0] = TensorType{dt, x.has_rank() ? Shape(std::vector<Dim>(static_cast<size_t>(x.rank()),
                                                                              Dim::Unknown()))
                                                   : Shape::UnknownRank()};
    }
    return Status::Ok();
  }
  if (!x.has_rank()) {
    ctx.outputs[0] = TensorType{dt, Shape::UnknownRank()};
    return Status::Ok();
  }
  size_t nsp = static_cast<size_t>(x.rank() - 2);
  TSR_ASSIGN_OR_RETURN(WindowAttrs w, ReadWindowAttrs(ctx, nsp, ctx.node->GetInts("kernel_shape")));
  std::vector<Dim> out{x.dim(0), x.dim(1)};
  for (size_t i = 0; i < nsp; ++i) {
    const Dim& in = x.dim(static_cast<int>(i + 2));
    if (!in.is_known()) {
      out.push_back(Dim::Unknown());
      continue;
    }
    int64_t o = (in.value - 1) * w.strides[i] + w.kernel[i] - w.pads[i] - w.pads[i + nsp];
    if (o < 0) return ctx.Error("spatial dim ", i, ": computed output size ", o, " is negative");
    out.push_back(Dim::Known(o));
  }
  ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
  return Status::Ok();
}

// DeformConv(X [N, C, H, W], W [M, C/group, kH, kW], offset, B?, mask?) -> [N, M, oH, oW].
Status InferDeformConv(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 1, "X", "W"));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 2, "X", "offset"));
  DType dt = FirstKnownDType(ctx.input(0).dtype, ctx.input(1).dtype);
  const Shape& x = ctx.input(0).shape;
  const Shape& wsh = ctx.input(1).shape;
  if (x.has_rank() && x.rank() < 3)
    return ctx.Error("X must have rank >= 3 ([N, C, spatial...]), got shape ", x.ToString());
  if (x.has_rank() && wsh.has_rank() && x.rank() != wsh.rank())
    return ctx.Error("X ", x.ToString(), " and W ", wsh.ToString(), " have different ranks");
  if (!x.has_rank()) {
    ctx.outputs[0] = TensorType{dt, Shape::UnknownRank()};
    return Status::Ok();
  }
  size_t nsp = static_cast<size_t>(x.rank() - 2);
  std::vector<int64_t> kernel = ctx.node->GetInts("kernel_shape");
  Dim m = wsh.has_rank() ? wsh.dim(0) : Dim::Unknown();
  if (kernel.empty() && wsh.has_rank())
    for (size_t i = 0; i < nsp; ++i) {
      const Dim& kd = wsh.dim(static_cast<int>(i + 2));
      kernel.push_back(kd.is_known() ? kd.value : -1);
    }
  bool kernel_known = kernel.size() == nsp;
  for (int64_t k : kernel) kernel_known = kernel_known && k >= 1;
  std::vector<Dim> out{x.dim(0), m};
  if (!kernel_known) {
    out.resize(nsp + 2, Dim::Unknown());
  } else {
    TSR_ASSIGN_OR_RETURN(WindowAttrs w, ReadWindowAttrs(ctx, nsp, kernel));
    TSR_ASSIGN_OR_RETURN(std::vector<Dim> sp, SpatialOutputs(ctx, x, w));
    out.insert(out.end(), sp.begin(), sp.end());
  }
  ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
  return Status::Ok();
}

// Inputs X, scale, B, mean, var. Outputs Y and, in training mode, running
// mean/var (opset 14+) or mean, var, saved mean, saved var (before 14).
Status InferBatchNorm(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0));
  size_t max_out = ctx.opset >= 14 ? 3 : 5;
  if (ctx.outputs.size() > max_out)
    return ctx.Error("has at most ", max_out, " outputs at opset ", ctx.opset, ", got ", ctx.outputs.size());
  const Shape& x = ctx.input(0).shape;
  if (x.has_rank() && x.rank() < 2) return ctx.Error("X must have rank >= 2 ([N, C, ...]), got shape ", x.ToString());
  Dim c = x.has_rank() ? x.dim(1) : Dim::Unknown();
  static const char* kNames[] = {"X", "scale", "B", "mean", "var"};
  for (size_t i = 1; i < 5; ++i) {
    const Shape& s = ctx.input(i).shape;
    if (!s.has_rank()) continue;
    if (s.rank() != 1) return ctx.Error(kNames[i], " must have rank 1, got shape ", s.ToString());
    TSR_ASSIGN_OR_RETURN(c, UnifyDims(ctx, c, s.dim(0), StrCat(kNames[i], " size differs from channel count")));
  }
  if (ctx.opset < 15) TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 1, "X", "scale"));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 1, 2, "scale", "B"));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 3, 4, "mean", "var"));
  ctx.outputs[0] = ctx.input(0);
  DType stat = FirstKnownDType(ctx.input(3).dtype, ctx.input(0).dtype);
  for (size_t i = 1; i < ctx.outputs.size(); ++i) ctx.outputs[i] = TensorType{stat, Shape({c})};
  return Status::Ok();
}

// Normalizes over dims [axis, rank). Mean/InvStdDev keep the leading dims
// and have 1 for the normalized ones; their dtype is stash_type.
Status InferLayerNorm(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 1, "X", "scale"));
  if (ctx.has_input(2)) TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 2, "X", "B"));
  int64_t stash = ctx.node->GetInt("stash_type", 1);
  if (stash < 1 || stash > 16 || !IsKnownDType(static_cast<int32_t>(stash)) || !IsFloatDType(static_cast<DType>(stash)))
    return ctx.Error("stash_type ", stash, " is not a floating-point dtype");
  const Shape& x = ctx.input(0).shape;
  Shape stat = Shape::UnknownRank();
  if (x.has_rank()) {
    TSR_ASSIGN_OR_RETURN(int64_t axis, AxisFor(ctx, ctx.node->GetInt("axis", -1), x.rank()));
    for (size_t i = 1; i < 3; ++i) {
      if (!ctx.has_input(i) || !ctx.input(i).shape.has_rank()) continue;
      Shape norm(std::vector<Dim>(x.dims().begin() + axis, x.dims().end()));
      auto b = BroadcastShapes(norm, ctx.input(i).shape);
      if (!b.ok() || b->rank() != norm.rank())
        return ctx.Error(i == 1 ? "scale " : "B ", ctx.input(i).shape.ToString(),
                         " does not broadcast to the normalized dims ", norm.ToString());
    }
    std::vector<Dim> d = x.dims();
    for (size_t i = static_cast<size_t>(axis); i < d.size(); ++i) d[i] = Dim::Known(1);
    stat = Shape(std::move(d));
  }
  ctx.outputs[0] = ctx.input(0);
  for (size_t i = 1; i < ctx.outputs.size(); ++i) ctx.outputs[i] = TensorType{static_cast<DType>(stash), stat};
  return Status::Ok();
}

// Softmax/LogSoftmax: default axis 1 before opset 13, -1 after.
Status InferSoftmax(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0));
  const Shape& x = ctx.input(0).shape;
  if (x.has_rank()) {
    TSR_RETURN_IF_ERROR(AxisFor(ctx, ctx.node->GetInt("axis", ctx.opset >= 13 ? -1 : 1), x.rank()).status());
  }
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

// Dropout: ratio is an attribute before opset 12, an optional input (with
// training_mode) after. The optional mask is bool from opset 10 on.
Status InferDropout(InferenceContext& ctx) {
  if (ctx.opset < 12 && ctx.num_inputs() > 1)
    return ctx.Error("takes ratio as an attribute before opset 12, not as an input");
  if (ctx.opset >= 12 && ctx.has_input(1)) {
    DType r = ctx.input(1).dtype;
    if (r != DType::kUndefined && !IsFloatDType(r))
      return ctx.Error("ratio has dtype ", DTypeName(r), ", expected a floating-point type");
  }
  if (ctx.has_input(2) && ctx.input(2).dtype != DType::kUndefined && ctx.input(2).dtype != DType::kBool)
    return ctx.Error("training_mode has dtype ", DTypeName(ctx.input(2).dtype), ", expected bool");
  float ratio = ctx.node->GetFloat("ratio", 0.5f);
  if (const Tensor* t = ctx.constant(1); t && t->num_elements() == 1) ratio = static_cast<float>(t->GetAsDouble(0));
  if (!(ratio >= 0.f && ratio < 1.f)) return ctx.Error("ratio ", ratio, " must be in [0, 1)");
  ctx.outputs[0] = ctx.input(0);
  if (ctx.outputs.size() > 1)
    ctx.outputs[1] = TensorType{ctx.opset >= 10 ? DType::kBool : ctx.input(0).dtype, ctx.input(0).shape};
  return Status::Ok();
}

// tessera.FusedAttention(Q, K, V [, mask]) = softmax(Q K^T * scale + mask) V.
// Layout: Q [batch, heads, seq_q, head_dim], K [batch, heads, seq_k, head_dim],
// V [batch, heads, seq_k, v_dim]; mask (bool or Q's dtype, additive when
// float) broadcasts to [batch, heads, seq_q, seq_k]. Output
// [batch, heads, seq_q, v_dim]. Attributes: scale (float, default
// 1/sqrt(head_dim)), causal (int, default 0).
Status InferFusedAttention(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckFloat(ctx, 0));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 1, "Q", "K"));
  TSR_RETURN_IF_ERROR(CheckSameDType(ctx, 0, 2, "Q", "V"));
  DType dt = FirstKnownDType(FirstKnownDType(ctx.input(0).dtype, ctx.input(1).dtype), ctx.input(2).dtype);
  static const char* kNames[] = {"Q", "K", "V"};
  for (size_t i = 0; i < 3; ++i) {
    const Shape& s = ctx.input(i).shape;
    if (s.has_rank() && s.rank() != 4)
      return ctx.Error(kNames[i], " must have rank 4 ([batch, heads, seq, head_dim]), got shape ", s.ToString());
  }
  const Shape& q = ctx.input(0).shape;
  const Shape& k = ctx.input(1).shape;
  const Shape& v = ctx.input(2).shape;
  std::vector<Dim> out(4, Dim::Unknown());
  if (q.has_rank()) out = q.dims();
  Dim seq_k = k.has_rank() ? k.dim(2) : Dim::Unknown();
  if (v.has_rank()) {
    TSR_ASSIGN_OR_RETURN(seq_k, UnifyDims(ctx, seq_k, v.dim(2), "K and V sequence lengths differ"));
    out[3] = v.dim(3);
  } else {
    out[3] = Dim::Unknown();
  }
  for (int i = 0; i < 2; ++i) {
    static const char* kWhat[] = {"batch sizes differ", "head counts differ"};
    Dim d = out[static_cast<size_t>(i)];
    if (k.has_rank()) {
      TSR_ASSIGN_OR_RETURN(d, UnifyDims(ctx, d, k.dim(i), StrCat("Q and K ", kWhat[i])));
    }
    if (v.has_rank()) {
      TSR_ASSIGN_OR_RETURN(d, UnifyDims(ctx, d, v.dim(i), StrCat("Q and V ", kWhat[i])));
    }
    out[static_cast<size_t>(i)] = d;
  }
  if (q.has_rank() && k.has_rank())
    TSR_RETURN_IF_ERROR(UnifyDims(ctx, q.dim(3), k.dim(3), "Q and K head dims differ").status());
  if (ctx.has_input(3)) {
    DType mt = ctx.input(3).dtype;
    if (mt != DType::kUndefined && mt != DType::kBool && mt != dt)
      return ctx.Error("mask has dtype ", DTypeName(mt), ", expected bool or ", DTypeName(dt));
    const Shape& m = ctx.input(3).shape;
    Shape scores({out[0], out[1], out[2], seq_k});
    auto b = BroadcastShapes(m, scores);
    if (m.has_rank() && (!b.ok() || b->rank() != 4))
      return ctx.Error("mask ", m.ToString(), " does not broadcast to the scores ", scores.ToString());
  }
  ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
  return Status::Ok();
}

void Reg(OpRegistry& r, const char* name, int min_in, int max_in, int min_out, int max_out, InferFn fn,
         const char* domain = "") {
  OpSchema s;
  s.domain = domain;
  s.name = name;
  s.min_inputs = min_in;
  s.max_inputs = max_in;
  s.min_outputs = min_out;
  s.max_outputs = max_out;
  s.infer = std::move(fn);
  r.Register(std::move(s));
}

}  // namespace

void RegisterNnOps(OpRegistry& r) {
  Reg(r, "MatMul", 2, 2, 1, 1, InferMatMul);
  Reg(r, "Gemm", 2, 3, 1, 1, InferGemm);
  Reg(r, "Conv", 2, 3, 1, 1, InferConv);
  Reg(r, "MaxPool", 1, 1, 1, 2, InferPool);
  Reg(r, "AveragePool", 1, 1, 1, 1, InferPool);
  Reg(r, "GlobalAveragePool", 1, 1, 1, 1, InferGlobalPool);
  Reg(r, "GlobalMaxPool", 1, 1, 1, 1, InferGlobalPool);
  Reg(r, "LpPool", 1, 1, 1, 1, InferPool);
  Reg(r, "GlobalLpPool", 1, 1, 1, 1, InferGlobalPool);
  Reg(r, "ConvTranspose", 2, 3, 1, 1, InferConvTranspose);
  Reg(r, "MaxUnpool", 2, 3, 1, 1, InferMaxUnpool);
  Reg(r, "DeformConv", 3, 5, 1, 1, InferDeformConv);
  Reg(r, "BatchNormalization", 5, 5, 1, 5, InferBatchNorm);
  Reg(r, "LayerNormalization", 2, 3, 1, 3, InferLayerNorm);
  Reg(r, "Softmax", 1, 1, 1, 1, InferSoftmax);
  Reg(r, "LogSoftmax", 1, 1, 1, 1, InferSoftmax);
  Reg(r, "Dropout", 1, 3, 1, 2, InferDropout);
  Reg(r, "FusedAttention", 3, 4, 1, 1, InferFusedAttention, "tessera");
}

}  // namespace tessera
