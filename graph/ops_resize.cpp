// Schemas of spatial resampling ops: Resize, Upsample, GridSample, AffineGrid,
// CenterCropPad, Col2Im, RoiAlign.
//
// Output dims that depend on input values (Resize's scales/sizes, AffineGrid's
// size, CenterCropPad's shape, Col2Im's image_shape) are computed when that
// input is a known constant; otherwise the rank is kept and the dims are
// unknown.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "graph/op_schema.h"

namespace tessera {
namespace {

using OptInts = std::optional<std::vector<int64_t>>;

Shape UnknownDims(int64_t rank) { return Shape(std::vector<Dim>(static_cast<size_t>(rank), Dim::Unknown())); }

Status CheckFloatInput(const InferenceContext& ctx, size_t i, const char* what) {
  DType t = ctx.input(i).dtype;
  if (t == DType::kUndefined || IsFloatDType(t)) return Status::Ok();
  return ctx.Error(what, " has dtype ", DTypeName(t), ", expected a floating-point type");
}

Status CheckIntInput(const InferenceContext& ctx, size_t i, const char* what) {
  DType t = ctx.input(i).dtype;
  if (t == DType::kUndefined || t == DType::kI64 || t == DType::kI32) return Status::Ok();
  return ctx.Error(what, " has dtype ", DTypeName(t), ", expected i32 or i64");
}

// Integer data of input i when present and constant.
Result<OptInts> ConstInts(const InferenceContext& ctx, size_t i, const char* what) {
  if (!ctx.has_input(i)) return OptInts();
  const Tensor* t = ctx.constant(i);
  if (!t) return OptInts();
  if (t->rank() > 1) return ctx.Error(what, " must be 1-D, got shape ", Shape::FromInts(t->dims()).ToString());
  auto v = t->ToInt64Vector();
  if (!v.ok()) return ctx.Error(what, ": ", v.status().message());
  return OptInts(std::move(v).value());
}

// Float data of input i when present and constant.
std::optional<std::vector<double>> ConstDoubles(const InferenceContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return std::nullopt;
  const Tensor* t = ctx.constant(i);
  if (!t) return std::nullopt;
  std::vector<double> v(static_cast<size_t>(t->num_elements()));
  for (size_t k = 0; k < v.size(); ++k) v[k] = t->GetAsDouble(static_cast<int64_t>(k));
  return v;
}

// Normalized, duplicate-free axes (attribute `axes`, default all).
Result<std::vector<int64_t>> ResizeAxes(const InferenceContext& ctx, int64_t rank) {
  std::vector<int64_t> axes = ctx.node->GetInts("axes");
  if (!ctx.node->has_attr("axes")) {
    axes.resize(static_cast<size_t>(rank));
    for (int64_t i = 0; i < rank; ++i) axes[static_cast<size_t>(i)] = i;
    return axes;
  }
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) return ctx.Error("axis ", a, " is out of range for rank ", rank);
    if (a < 0) a += rank;
    if (seen[static_cast<size_t>(a)]) return ctx.Error("axis ", a, " is repeated in axes");
    seen[static_cast<size_t>(a)] = true;
  }
  return axes;
}

Status CheckOneOf(const InferenceContext& ctx, const char* attr, const std::string& v,
                  std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (v == a) return Status::Ok();
  return ctx.Error("unsupported ", attr, " '", v, "'");
}

// Output shape of Resize from input dims and scales or sizes (per `axes`).
// Mirrors the ONNX definition: floor(in * scale) for scales; sizes with the
// keep_aspect_ratio_policy (round-half-up of in * policy scale).
Status InferResize(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  std::string mode = ctx.node->GetString("mode", "nearest");
  TSR_RETURN_IF_ERROR(CheckOneOf(ctx, "mode", mode, {"nearest", "linear", "cubic", "bilinear", "trilinear"}));
  if (ctx.node->op_type() == "Resize") {
    std::string ctm = ctx.node->GetString("coordinate_transformation_mode", "half_pixel");
    TSR_RETURN_IF_ERROR(CheckOneOf(ctx, "coordinate_transformation_mode", ctm,
                                   {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                    "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn"}));
    std::string nm = ctx.node->GetString("nearest_mode", "round_prefer_floor");
    TSR_RETURN_IF_ERROR(
        CheckOneOf(ctx, "nearest_mode", nm, {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}));
    std::string kp = ctx.node->GetString("keep_aspect_ratio_policy", "stretch");
    TSR_RETURN_IF_ERROR(CheckOneOf(ctx, "keep_aspect_ratio_policy", kp, {"stretch", "not_larger", "not_smaller"}));
  }
  ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
  if (!x.shape.has_rank()) return Status::Ok();
  const int64_t rank = x.shape.rank();
  ctx.outputs[0].shape = UnknownDims(rank);

  // Where the scales and sizes come from for this op/opset.
  const bool is_upsample = ctx.node->op_type() == "Upsample";
  const bool attr_scales = is_upsample && ctx.opset < 9;
  size_t scales_idx = 2, sizes_idx = 3;
  if (is_upsample || ctx.opset < 11) scales_idx = 1, sizes_idx = 99;
  if (ctx.has_input(scales_idx)) TSR_RETURN_IF_ERROR(CheckFloatInput(ctx, scales_idx, "scales"));
  if (ctx.has_input(sizes_idx)) TSR_RETURN_IF_ERROR(CheckIntInput(ctx, sizes_idx, "sizes"));

  auto axes_or = ResizeAxes(ctx, rank);
  TSR_RETURN_IF_ERROR(axes_or.status());
  std::vector<int64_t> axes = attr_scales ? std::vector<int64_t>() : *axes_or;
  if (attr_scales) {
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  }

  std::optional<std::vector<double>> scales;
  if (attr_scales) {
    std::vector<float> f = ctx.node->GetFloats("scales");
    scales = std::vector<double>(f.begin(), f.end());
  } else {
    scales = ConstDoubles(ctx, scales_idx);
  }
  if (scales && scales->empty()) scales.reset();
  auto sizes_or = ConstInts(ctx, sizes_idx, "sizes");
  TSR_RETURN_IF_ERROR(sizes_or.status());
  OptInts sizes = *sizes_or;
  if (sizes && sizes->empty()) sizes.reset();
  if (scales && sizes) return ctx.Error("only one of scales and sizes may be given");

  const size_t na = axes.size();
  std::vector<Dim> out = x.shape.dims();
  if (scales) {
    if (scales->size() != na)
      return ctx.Error("scales has ", scales->size(), " elements, expected ", na);
    for (size_t k = 0; k < na; ++k) {
      double s = (*scales)[k];
      if (!(s > 0)) return ctx.Error("scales[", k, "] = ", s, " must be positive");
      const Dim& d = x.shape.dim(static_cast<int>(axes[k]));
      out[static_cast<size_t>(axes[k])] =
          d.is_known() ? Dim::Known(static_cast<int64_t>(std::floor(static_cast<double>(d.value) * s))) : Dim::Unknown();
    }
  } else if (sizes) {
    if (sizes->size() != na) return ctx.Error("sizes has ", sizes->size(), " elements, expected ", na);
    for (size_t k = 0; k < na; ++k)
      if ((*sizes)[k] < 0) return ctx.Error("sizes[", k, "] = ", (*sizes)[k], " is negative");
    std::string kp = ctx.node->GetString("keep_aspect_ratio_policy", "stretch");
    if (kp == "stretch") {
      for (size_t k = 0; k < na; ++k) out[static_cast<size_t>(axes[k])] = Dim::Known((*sizes)[k]);
    } else {
      bool known = true;
      double scale = kp == "not_larger" ? 1e300 : 0.0;
      for (size_t k = 0; k < na; ++k) {
        const Dim& d = x.shape.dim(static_cast<int>(axes[k]));
        if (!d.is_known() || d.value == 0) { known = false; break; }
        double s = static_cast<double>((*sizes)[k]) / static_cast<double>(d.value);
        scale = kp == "not_larger" ? std::min(scale, s) : std::max(scale, s);
      }
      for (size_t k = 0; k < na; ++k) {
        const Dim& d = x.shape.dim(static_cast<int>(axes[k]));
        out[static_cast<size_t>(axes[k])] =
            known ? Dim::Known(static_cast<int64_t>(scale * static_cast<double>(d.value) + 0.5)) : Dim::Unknown();
      }
    }
  } else {
    // Neither known: dims on the resized axes are unknown.
    for (int64_t a : axes) out[static_cast<size_t>(a)] = Dim::Unknown();
  }
  ctx.outputs[0].shape = Shape(std::move(out));
  return Status::Ok();
}

Status InferGridSample(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& g = ctx.input(1);
  TSR_RETURN_IF_ERROR(CheckFloatInput(ctx, 1, "grid"));
  std::string mode = ctx.node->GetString("mode", ctx.opset >= 20 ? "linear" : "bilinear");
  TSR_RETURN_IF_ERROR(CheckOneOf(ctx, "mode", mode, {"linear", "bilinear", "nearest", "cubic", "bicubic"}));
  std::string pm = ctx.node->GetString("padding_mode", "zeros");
  TSR_RETURN_IF_ERROR(CheckOneOf(ctx, "padding_mode", pm, {"zeros", "border", "reflection"}));
  ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
  int64_t rank = x.shape.has_rank() ? x.shape.rank() : (g.shape.has_rank() ? g.shape.rank() : -1);
  if (rank < 0) return Status::Ok();
  if (rank < 3) return ctx.Error("X must have rank >= 3, got ", rank);
  if (x.shape.has_rank() && g.shape.has_rank()) {
    if (g.shape.rank() != rank) return ctx.Error("grid rank ", g.shape.rank(), " differs from X rank ", rank);
    const Dim& last = g.shape.dim(static_cast<int>(rank - 1));
    if (last.is_known() && last.value != rank - 2)
      return ctx.Error("grid's last dim is ", last.value, ", expected ", rank - 2, " (the spatial rank of X)");
  }
  std::vector<Dim> out(static_cast<size_t>(rank), Dim::Unknown());
  if (x.shape.has_rank()) out[0] = x.shape.dim(0), out[1] = x.shape.dim(1);
  if (g.shape.has_rank()) {
    if (!out[0].is_known()) out[0] = g.shape.dim(0);
    for (int64_t i = 2; i < rank; ++i) out[static_cast<size_t>(i)] = g.shape.dim(static_cast<int>(i - 1));
  }
  ctx.outputs[0].shape = Shape(std::move(out));
  return Status::Ok();
}

Status InferAffineGrid(InferenceContext& ctx) {
  const TensorType& t = ctx.input(0);
  TSR_RETURN_IF_ERROR(CheckFloatInput(ctx, 0, "theta"));
  TSR_RETURN_IF_ERROR(CheckIntInput(ctx, 1, "size"));
  ctx.outputs[0] = TensorType{t.dtype, Shape::UnknownRank()};
  auto size_or = ConstInts(ctx, 1, "size");
  TSR_RETURN_IF_ERROR(size_or.status());
  if (t.shape.has_rank() && t.shape.rank() != 3) return ctx.Error("theta must have rank 3, got ", t.shape.rank());
  if (!*size_or) {
    const Shape& ss = ctx.input(1).shape;
    if (ss.has_rank() && ss.rank() == 1 && ss.dim(0).is_known()) {
      int64_t n = ss.dim(0).value;
      if (n != 4 && n != 5) return ctx.Error("size must have 4 or 5 elements, got ", n);
      ctx.outputs[0].shape = UnknownDims(n);
    }
    return Status::Ok();
  }
  const std::vector<int64_t>& sz = **size_or;
  if (sz.size() != 4 && sz.size() != 5) return ctx.Error("size must have 4 or 5 elements, got ", sz.size());
  const int64_t sr = static_cast<int64_t>(sz.size()) - 2;
  for (int64_t v : sz)
    if (v < 0) return ctx.Error("size has a negative value ", v);
  if (t.shape.has_rank()) {
    const Dim& r1 = t.shape.dim(1);
    const Dim& r2 = t.shape.dim(2);
    if ((r1.is_known() && r1.value != sr) || (r2.is_known() && r2.value != sr + 1))
      return ctx.Error("theta has shape ", t.shape.ToString(), ", expected [N,", sr, ",", sr + 1, "] for size of ",
                       sz.size(), " elements");
    if (t.shape.dim(0).is_known() && t.shape.dim(0).value != sz[0])
      return ctx.Error("theta's batch ", t.shape.dim(0).value, " differs from size[0] = ", sz[0]);
  }
  std::vector<Dim> out{Dim::Known(sz[0])};
  for (size_t i = 2; i < sz.size(); ++i) out.push_back(Dim::Known(sz[i]));
  out.push_back(Dim::Known(sr));
  ctx.outputs[0].shape = Shape(std::move(out));
  return Status::Ok();
}

Status InferCenterCropPad(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_RETURN_IF_ERROR(CheckIntInput(ctx, 1, "shape"));
  ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
  if (!x.shape.has_rank()) return Status::Ok();
  const int64_t rank = x.shape.rank();
  ctx.outputs[0].shape = UnknownDims(rank);
  auto axes_or = ResizeAxes(ctx, rank);
  TSR_RETURN_IF_ERROR(axes_or.status());
  auto shape_or = ConstInts(ctx, 1, "shape");
  TSR_RETURN_IF_ERROR(shape_or.status());
  std::vector<Dim> out = x.shape.dims();
  if (!*shape_or) {
    for (int64_t a : *axes_or) out[static_cast<size_t>(a)] = Dim::Unknown();
  } else {
    const std::vector<int64_t>& s = **shape_or;
    if (s.size() != axes_or->size())
      return ctx.Error("shape has ", s.size(), " elements, expected ", axes_or->size(), " (one per axis)");
    for (size_t k = 0; k < s.size(); ++k) {
      if (s[k] < 0) return ctx.Error("shape[", k, "] = ", s[k], " is negative");
      out[static_cast<size_t>((*axes_or)[k])] = Dim::Known(s[k]);
    }
  }
  ctx.outputs[0].shape = Shape(std::move(out));
  return Status::Ok();
}

Status InferCol2Im(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_RETURN_IF_ERROR(CheckIntInput(ctx, 1, "image_shape"));
  TSR_RETURN_IF_ERROR(CheckIntInput(ctx, 2, "block_shape"));
  ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
  if (x.shape.has_rank() && x.shape.rank() != 3) return ctx.Error("input must have rank 3, got ", x.shape.rank());
  auto img_or = ConstInts(ctx, 1, "image_shape");
  TSR_RETURN_IF_ERROR(img_or.status());
  auto blk_or = ConstInts(ctx, 2, "block_shape");
  TSR_RETURN_IF_ERROR(blk_or.status());
  if (!*img_or) return Status::Ok();
  const std::vector<int64_t>& img = **img_or;
  if (img.empty()) return ctx.Error("image_shape is empty");
  std::vector<Dim> out(2 + img.size(), Dim::Unknown());
  if (x.shape.has_rank()) out[0] = x.shape.dim(0);
  if (*blk_or) {
    const std::vector<int64_t>& blk = **blk_or;
    if (blk.size() != img.size())
      return ctx.Error("block_shape has ", blk.size(), " elements but image_shape has ", img.size());
    int64_t prod = 1;
    for (int64_t b : blk) {
      if (b <= 0) return ctx.Error("block_shape has a non-positive value ", b);
      prod *= b;
    }
    if (x.shape.has_rank() && x.shape.dim(1).is_known()) {
      if (x.shape.dim(1).value % prod != 0)
        return ctx.Error("input dim 1 (", x.shape.dim(1).value, ") is not a multiple of the block size ", prod);
      out[1] = Dim::Known(x.shape.dim(1).value / prod);
    }
  }
  for (size_t i = 0; i < img.size(); ++i) {
    if (img[i] <= 0) return ctx.Error("image_shape has a non-positive value ", img[i]);
    out[2 + i] = Dim::Known(img[i]);
  }
  ctx.outputs[0].shape = Shape(std::move(out));
  return Status::Ok();
}

Status InferRoiAlign(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_RETURN_IF_ERROR(CheckFloatInput(ctx, 0, "X"));
  TSR_RETURN_IF_ERROR(CheckFloatInput(ctx, 1, "rois"));
  TSR_RETURN_IF_ERROR(CheckIntInput(ctx, 2, "batch_indices"));
  std::string mode = ctx.node->GetString("mode", "avg");
  TSR_RETURN_IF_ERROR(CheckOneOf(ctx, "mode", mode, {"avg", "max"}));
  std::string ctm = ctx.node->GetString("coordinate_transformation_mode", "half_pixel");
  TSR_RETURN_IF_ERROR(CheckOneOf(ctx, "coordinate_transformation_mode", ctm, {"half_pixel", "output_half_pixel"}));
  int64_t oh = ctx.node->GetInt("output_height", 1), ow = ctx.node->GetInt("output_width", 1);
  if (oh <= 0 || ow <= 0) return ctx.Error("output_height/output_width must be positive, got ", oh, "x", ow);
  if (x.shape.has_rank() && x.shape.rank() != 4) return ctx.Error("X must have rank 4, got ", x.shape.rank());
  const Shape& rs = ctx.input(1).shape;
  if (rs.has_rank() && (rs.rank() != 2 || (rs.dim(1).is_known() && rs.dim(1).value != 4)))
    return ctx.Error("rois must have shape [num_rois, 4], got ", rs.ToString());
  Dim r = rs.has_rank() ? rs.dim(0) : Dim::Unknown();
  Dim c = x.shape.has_rank() ? x.shape.dim(1) : Dim::Unknown();
  ctx.outputs[0] = TensorType{x.dtype, Shape({r, c, Dim::Known(oh), Dim::Known(ow)})};
  return Status::Ok();
}

}  // namespace

void RegisterResizeOps(OpRegistry& r) {
  r.Register({"", "Resize", 1, 4, 1, 1, InferResize});
  r.Register({"", "Upsample", 1, 2, 1, 1, InferResize});
  r.Register({"", "GridSample", 2, 2, 1, 1, InferGridSample});
  r.Register({"", "AffineGrid", 2, 2, 1, 1, InferAffineGrid});
  r.Register({"", "CenterCropPad", 2, 2, 1, 1, InferCenterCropPad});
  r.Register({"", "Col2Im", 3, 3, 1, 1, InferCol2Im});
  r.Register({"", "RoiAlign", 3, 3, 1, 1, InferRoiAlign});
}

}  // namespace tessera
