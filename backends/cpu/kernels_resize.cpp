// CPU kernels: Resize/Upsample, GridSample, AffineGrid, CenterCropPad, Col2Im,
// RoiAlign.
//
// Resize is separable: the factory builds, per resized axis, a table of taps
// (source index, weight) for every output coordinate following the ONNX
// definition (coordinate transformation, nearest rounding, linear/cubic
// kernels with optional antialias, exclude_outside, tf_crop_and_resize
// extrapolation); Run applies one axis at a time on a double scratch buffer.
// Element types other than f32/f64 go through that double buffer too (f16 and
// bf16 by bit conversion; integers are rounded half-to-even and saturated, as
// ONNX's reference does).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/dtype_convert.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

// Reads a constant integer input (i32/i64) into v.
bool ConstInts(const TensorArg* t, std::vector<int64_t>* v) {
  if (!t || !t->const_data) return false;
  v->resize(static_cast<size_t>(t->numel));
  for (int64_t i = 0; i < t->numel; ++i) {
    if (t->dtype == TSR_DTYPE_I64) (*v)[static_cast<size_t>(i)] = static_cast<const int64_t*>(t->const_data)[i];
    else if (t->dtype == TSR_DTYPE_I32) (*v)[static_cast<size_t>(i)] = static_cast<const int32_t*>(t->const_data)[i];
    else return false;
  }
  return true;
}

Err NotConstant(const NodeArgs& a, int i, const char* what) {
  return MakeErr(TSR_ERR_UNSUPPORTED, "%s: needs input %d (%s) to be a constant", a.Describe().c_str(), i, what);
}

Err CheckDType(const NodeArgs& a, int32_t dt, const char* what, bool float_only) {
  if (float_only ? IsFloatDT(dt) : IsNumericDT(dt)) return Err::Ok();
  return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s has unsupported dtype %s", a.Describe().c_str(), what,
                 plugin::DTypeName(dt));
}

// Product of d[from, to) (to clipped to d.size()).
int64_t Product(const std::vector<int64_t>& d, size_t from = 0, size_t to = static_cast<size_t>(-1)) {
  int64_t p = 1;
  const int64_t* e = d.data() + std::min(to, d.size());
  for (const int64_t* q = d.data() + std::min(from, d.size()); q < e; ++q) p *= *q;
  return p;
}

// ---- Resize ---------------------------------------------------------------------

// Per resized axis: for each output coordinate, `taps` (index, weight) pairs
// starting at tap_index/tap_weight[o * taps], and whether the coordinate lies
// outside the crop box (tf_crop_and_resize: output is extrapolation_value).
struct AxisPlan {
  int axis = 0;
  int64_t in = 0, out = 0;
  int taps = 1;
  std::vector<int64_t> index;
  std::vector<double> weight;
  std::vector<uint8_t> extrapolate;
};

struct ResizeParams {
  std::string mode = "nearest";    // nearest | linear | cubic
  std::string ctm = "half_pixel";  // coordinate_transformation_mode
  std::string nearest_mode = "round_prefer_floor";  // or "simple" (opset < 11): floor up, ceil down
  double cubic_a = -0.75;
  bool exclude_outside = false;
  bool antialias = false;
  double extrapolation = 0.0;
};

double CubicKernel(double x, double A) {
  x = std::fabs(x);
  if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0.0;
}

// Source coordinate of output coordinate x on one axis (ONNX's definitions).
// Returns false when tf_crop_and_resize maps it outside the input.
bool SourceCoord(const ResizeParams& p, double x, int64_t in, int64_t out_int, double scale, double roi_s,
                 double roi_e, double* x_ori) {
  const double in_w = static_cast<double>(in);
  const double out_w = scale * in_w;
  const std::string& c = p.ctm;
  if (c == "align_corners") {
    *x_ori = out_w == 1 ? 0.0 : x * (in_w - 1) / (out_w - 1);
  } else if (c == "asymmetric") {
    *x_ori = x / scale;
  } else if (c == "tf_crop_and_resize") {
    double v = out_w == 1 ? (roi_e - roi_s) * (in_w - 1) / 2 : x * (roi_e - roi_s) * (in_w - 1) / (out_w - 1);
    v += roi_s * (in_w - 1);
    *x_ori = v;
    if (v < 0 || v > in_w - 1) return false;
  } else if (c == "pytorch_half_pixel") {
    *x_ori = out_w == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
  } else if (c == "half_pixel_symmetric") {
    double adjustment = static_cast<double>(out_int) / out_w;
    double center = in_w / 2;
    double offset = center * (1 - adjustment);
    *x_ori = offset + (x + 0.5) / scale - 0.5;
  } else if (c == "tf_half_pixel_for_nn") {
    *x_ori = (x + 0.5) / scale;
  } else {  // half_pixel
    *x_ori = (x + 0.5) / scale - 0.5;
  }
  return true;
}

// Builds the tap table of one axis.
void PlanAxis(const ResizeParams& p, double scale, double roi_s, double roi_e, AxisPlan* ap) {
  const int64_t in = ap->in, out = ap->out;
  // Number of taps: nearest 1; linear 2; cubic 4; antialias widens the
  // kernel by 1/scale when downsampling.
  int n = 1;
  int start = 0;  // offset of the first tap relative to base
  double s_aa = std::min(scale, 1.0);
  if (p.mode == "linear") {
    start = p.antialias ? static_cast<int>(std::floor(-1.0 / s_aa) + 1) : 0;
    n = 2 - 2 * start;
  } else if (p.mode == "cubic") {
    start = p.antialias ? static_cast<int>(std::floor(-2.0 / s_aa) + 1) : -1;
    n = 2 - 2 * start;
  }
  ap->taps = n;
  ap->index.assign(static_cast<size_t>(out * n), 0);
  ap->weight.assign(static_cast<size_t>(out * n), 0.0);
  ap->extrapolate.assign(static_cast<size_t>(out), 0);
  std::vector<double> w(static_cast<size_t>(n));
  for (int64_t o = 0; o < out; ++o) {
    double x = 0;
    int64_t* idx = &ap->index[static_cast<size_t>(o * n)];
    double* wt = &ap->weight[static_cast<size_t>(o * n)];
    if (!SourceCoord(p, static_cast<double>(o), in, out, scale, roi_s, roi_e, &x)) {
      ap->extrapolate[static_cast<size_t>(o)] = 1;
      continue;
    }
    // base = the pixel left of x (x itself counts as right when integral),
    // ratio in (0, 1].
    double fl = std::floor(x);
    double base = (x == fl) ? x - 1 : fl;
    double ratio = x - base;
    if (p.mode == "nearest") {
      bool right;
      if (ratio == 1.0) right = true;
      else if (p.nearest_mode == "round_prefer_ceil") right = ratio >= 0.5;
      else if (p.nearest_mode == "floor") right = false;
      else if (p.nearest_mode == "ceil") right = true;
      else if (p.nearest_mode == "simple") right = scale < 1.0;
      else right = ratio > 0.5;  // round_prefer_floor
      int64_t i = static_cast<int64_t>(base) + (right ? 1 : 0);
      idx[0] = std::clamp<int64_t>(i, 0, in - 1);
      wt[0] = 1.0;
      continue;
    }
    double sum = 0;
    for (int j = 0; j < n; ++j) {
      double d = static_cast<double>(start + j) - ratio;  // tap position minus x
      double v;
      if (p.mode == "linear") {
        v = p.antialias ? std::clamp(1.0 - std::fabs(d * s_aa), 0.0, 1.0) : (j == 0 ? 1.0 - ratio : ratio);
      } else {
        v = p.antialias ? CubicKernel(d * s_aa, p.cubic_a) : CubicKernel(d, p.cubic_a);
      }
      w[static_cast<size_t>(j)] = v;
      sum += v;
    }
    if (p.antialias && sum != 0)
      for (double& v : w) v /= sum;
    double kept = 0;
    for (int j = 0; j < n; ++j) {
      int64_t i = static_cast<int64_t>(base) + start + j;
      if (p.exclude_outside && (i < 0 || i >= in)) w[static_cast<size_t>(j)] = 0;
      kept += w[static_cast<size_t>(j)];
      idx[j] = std::clamp<int64_t>(i, 0, in - 1);
    }
    for (int j = 0; j < n; ++j) wt[j] = p.exclude_outside && kept != 0 ? w[static_cast<size_t>(j)] / kept : w[static_cast<size_t>(j)];
  }
}

class ResizeKernel : public Kernel {
 public:
  ResizeKernel(int32_t dt, std::vector<int64_t> in_dims, std::vector<AxisPlan> plans, double extrapolation)
      : dt_(dt), in_dims_(std::move(in_dims)), plans_(std::move(plans)), extrapolation_(extrapolation) {}

  Err Run(const void* const* in, void* const* out) const override {
    std::vector<int64_t> dims = in_dims_;
    int64_t n = Product(dims);
    std::vector<double> cur(static_cast<size_t>(std::max<int64_t>(n, 1)));
    LoadDoubles(dt_, in[0], n, cur.data());
    std::vector<double> next;
    for (const AxisPlan& ap : plans_) {
      const int64_t outer = Product(dims, 0, static_cast<size_t>(ap.axis));
      const int64_t inner = Product(dims, static_cast<size_t>(ap.axis) + 1);
      next.assign(static_cast<size_t>(std::max<int64_t>(outer * ap.out * inner, 1)), 0.0);
      const double* src = cur.data();
      double* dst = next.data();
      const int taps = ap.taps;
      ParallelFor(outer * ap.out, std::max<int64_t>(1, 4096 / std::max<int64_t>(inner * taps, 1)),
                  [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          const int64_t o_idx = t / ap.out, o = t % ap.out;
          double* d = dst + t * inner;
          if (ap.extrapolate[static_cast<size_t>(o)]) {
            for (int64_t k = 0; k < inner; ++k) d[k] = extrapolation_;
            continue;
          }
          const int64_t* ix = &ap.index[static_cast<size_t>(o * taps)];
          const double* w = &ap.weight[static_cast<size_t>(o * taps)];
          const double* s0 = src + o_idx * ap.in * inner;
          if (inner == 1) {
            double acc = 0;
            for (int j = 0; j < taps; ++j) acc += w[j] * s0[ix[j]];
            d[0] = acc;
            continue;
          }
          for (int64_t k = 0; k < inner; ++k) d[k] = 0;
          for (int j = 0; j < taps; ++j) {
            if (w[j] == 0) continue;
            const double* s = s0 + ix[j] * inner;
            const double wj = w[j];
            for (int64_t k = 0; k < inner; ++k) d[k] += wj * s[k];
          }
        }
      });
      dims[static_cast<size_t>(ap.axis)] = ap.out;
      cur.swap(next);
    }
    StoreDoubles(dt_, cur.data(), Product(dims), out[0]);
    return Err::Ok();
  }

 private:
  int32_t dt_;
  std::vector<int64_t> in_dims_;
  std::vector<AxisPlan> plans_;
  double extrapolation_;
};

bool ConstDoubles(const TensorArg* t, std::vector<double>* v) {
  if (!t || !t->const_data) return false;
  if (t->dtype != TSR_DTYPE_F32 && t->dtype != TSR_DTYPE_F64 && t->dtype != TSR_DTYPE_F16 && t->dtype != TSR_DTYPE_BF16)
    return false;
  v->resize(static_cast<size_t>(t->numel));
  LoadDoubles(t->dtype, t->const_data, t->numel, v->data());
  return true;
}

Err CreateResize(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const std::string desc = a.Describe();
  const bool upsample = std::string(a.node->op_type) == "Upsample";
  const int64_t opset = a.node->opset;
  plugin::NodeAttrs at = a.attrs();
  if (!a.has_input(0) || a.outputs.empty() || !a.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: needs input X and output Y", desc.c_str());
  const TensorArg& x = *a.inputs[0];
  const TensorArg& y = *a.outputs[0];
  Err e = CheckDType(a, x.dtype, "X", false);
  if (!e.ok()) return e;
  if (y.dtype != x.dtype) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Y dtype differs from X", desc.c_str());
  const int rank = static_cast<int>(x.dims.size());
  if (static_cast<int>(y.dims.size()) != rank)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Y rank %zu differs from X rank %d", desc.c_str(), y.dims.size(), rank);

  ResizeParams p;
  p.mode = at.String("mode", "nearest");
  if (p.mode == "bilinear" || p.mode == "trilinear") p.mode = "linear";
  if (p.mode != "nearest" && p.mode != "linear" && p.mode != "cubic")
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unsupported mode '%s'", desc.c_str(), p.mode.c_str());
  if (upsample || opset < 11) {
    // Upsample and Resize-10: asymmetric coordinates; nearest rounds down
    // when upsampling and up when downsampling (ONNX Runtime's "simple").
    p.ctm = "asymmetric";
    p.nearest_mode = "simple";
  } else {
    p.ctm = at.String("coordinate_transformation_mode", "half_pixel");
    p.nearest_mode = at.String("nearest_mode", "round_prefer_floor");
    p.cubic_a = at.Float("cubic_coeff_a", -0.75f);
    p.exclude_outside = at.Int("exclude_outside", 0) != 0;
    p.antialias = at.Int("antialias", 0) != 0;
    p.extrapolation = at.Float("extrapolation_value", 0.f);
  }
  static const char* kCtm[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                               "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn"};
  if (std::none_of(std::begin(kCtm), std::end(kCtm), [&](const char* c) { return p.ctm == c; }))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unsupported coordinate_transformation_mode '%s'", desc.c_str(),
                   p.ctm.c_str());
  if (p.nearest_mode != "round_prefer_floor" && p.nearest_mode != "round_prefer_ceil" && p.nearest_mode != "floor" &&
      p.nearest_mode != "ceil" && p.nearest_mode != "simple")
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unsupported nearest_mode '%s'", desc.c_str(), p.nearest_mode.c_str());
  if (p.mode == "nearest") p.antialias = false;

  // Axes (opset 18+).
  std::vector<int64_t> axes;
  if (!upsample && at.Has("axes")) {
    axes = at.Ints("axes");
    std::vector<bool> seen(static_cast<size_t>(rank), false);
    for (int64_t& ax : axes) {
      if (ax < -rank || ax >= rank)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for rank %d", desc.c_str(),
                       static_cast<long long>(ax), rank);
      if (ax < 0) ax += rank;
      if (seen[static_cast<size_t>(ax)])
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld repeated", desc.c_str(), static_cast<long long>(ax));
      seen[static_cast<size_t>(ax)] = true;
    }
  } else {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  }
  const size_t na = axes.size();

  // Scales / sizes / roi.
  std::vector<double> scales, roi;
  std::vector<int64_t> sizes;
  int scales_idx = 2, sizes_idx = 3, roi_idx = 1;
  if (upsample || opset < 11) scales_idx = 1, sizes_idx = -1, roi_idx = -1;
  if (upsample && opset < 9) {
    std::vector<float> f = at.Floats("scales");
    scales.assign(f.begin(), f.end());
  } else if (a.has_input(static_cast<size_t>(scales_idx)) && a.inputs[static_cast<size_t>(scales_idx)]->numel > 0) {
    if (!ConstDoubles(a.inputs[static_cast<size_t>(scales_idx)], &scales)) {
      if (a.inputs[static_cast<size_t>(scales_idx)]->const_data)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: scales must be floating-point", desc.c_str());
      return NotConstant(a, scales_idx, "scales");
    }
  }
  if (sizes_idx > 0 && a.has_input(static_cast<size_t>(sizes_idx)) && a.inputs[static_cast<size_t>(sizes_idx)]->numel > 0) {
    if (!ConstInts(a.inputs[static_cast<size_t>(sizes_idx)], &sizes)) {
      if (a.inputs[static_cast<size_t>(sizes_idx)]->const_data)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: sizes must be i64", desc.c_str());
      return NotConstant(a, sizes_idx, "sizes");
    }
  }
  if (!scales.empty() && !sizes.empty())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: only one of scales and sizes may be given", desc.c_str());
  if (scales.empty() && sizes.empty())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: one of scales and sizes must be given", desc.c_str());
  if (p.ctm == "tf_crop_and_resize" && roi_idx > 0 && a.has_input(static_cast<size_t>(roi_idx)) &&
      a.inputs[static_cast<size_t>(roi_idx)]->numel > 0) {
    if (!ConstDoubles(a.inputs[static_cast<size_t>(roi_idx)], &roi)) return NotConstant(a, roi_idx, "roi");
    if (roi.size() != 2 * na)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: roi has %zu elements, expected %zu", desc.c_str(), roi.size(),
                     2 * na);
  }

  std::vector<double> scale(static_cast<size_t>(rank), 1.0), rs(static_cast<size_t>(rank), 0.0),
      re(static_cast<size_t>(rank), 1.0);
  std::vector<int64_t> out_dims = x.dims;
  if (!scales.empty()) {
    if (scales.size() != na)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: scales has %zu elements, expected %zu", desc.c_str(),
                     scales.size(), na);
    for (size_t k = 0; k < na; ++k) {
      if (!(scales[k] > 0))
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: scales[%zu] = %g must be positive", desc.c_str(), k, scales[k]);
      scale[static_cast<size_t>(axes[k])] = scales[k];
      out_dims[static_cast<size_t>(axes[k])] =
          static_cast<int64_t>(std::floor(scales[k] * static_cast<double>(x.dims[static_cast<size_t>(axes[k])])));
    }
  } else {
    if (sizes.size() != na)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: sizes has %zu elements, expected %zu", desc.c_str(), sizes.size(),
                     na);
    std::string kp = at.String("keep_aspect_ratio_policy", "stretch");
    if (kp != "stretch" && kp != "not_larger" && kp != "not_smaller")
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unsupported keep_aspect_ratio_policy '%s'", desc.c_str(),
                     kp.c_str());
    for (size_t k = 0; k < na; ++k) {
      const int64_t in_d = x.dims[static_cast<size_t>(axes[k])];
      if (sizes[k] < 0 || in_d == 0)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: sizes[%zu] = %lld invalid for input dim %lld", desc.c_str(), k,
                       static_cast<long long>(sizes[k]), static_cast<long long>(in_d));
      scale[static_cast<size_t>(axes[k])] = static_cast<double>(sizes[k]) / static_cast<double>(in_d);
      out_dims[static_cast<size_t>(axes[k])] = sizes[k];
    }
    if (kp != "stretch") {
      double s = kp == "not_larger" ? 1e300 : 0.0;
      for (int64_t ax : axes) s = kp == "not_larger" ? std::min(s, scale[static_cast<size_t>(ax)]) : std::max(s, scale[static_cast<size_t>(ax)]);
      for (int64_t ax : axes) {
        scale[static_cast<size_t>(ax)] = s;
        out_dims[static_cast<size_t>(ax)] = static_cast<int64_t>(s * static_cast<double>(x.dims[static_cast<size_t>(ax)]) + 0.5);
      }
    }
  }
  for (size_t k = 0; k < roi.size() / 2; ++k) {
    rs[static_cast<size_t>(axes[k])] = roi[k];
    re[static_cast<size_t>(axes[k])] = roi[na + k];
  }
  if (out_dims != y.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dims do not match the dims implied by scales/sizes",
                   desc.c_str());

  // Plans for every axis that is not an identity, innermost first.
  std::vector<AxisPlan> plans;
  for (int ax = rank - 1; ax >= 0; --ax) {
    const size_t u = static_cast<size_t>(ax);
    const bool identity = x.dims[u] == out_dims[u] && scale[u] == 1.0 && p.ctm != "tf_crop_and_resize" &&
                          p.ctm != "tf_half_pixel_for_nn";
    if (identity) continue;
    if (x.dims[u] == 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: cannot resize an empty axis %d", desc.c_str(), ax);
    AxisPlan ap;
    ap.axis = ax;
    ap.in = x.dims[u];
    ap.out = out_dims[u];
    PlanAxis(p, scale[u], rs[u], re[u], &ap);
    plans.push_back(std::move(ap));
  }
  *out = std::make_unique<ResizeKernel>(x.dtype, x.dims, std::move(plans), p.extrapolation);
  return Err::Ok();
}

std::string ClaimNumericInput0(const tsr_node_view& n, const tsr_graph_view& g) {
  if (n.num_inputs < 1 || n.inputs[0] < 0) return "missing input 0";
  int32_t dt = g.values[n.inputs[0]].dtype;
  if (!IsNumericDT(dt)) return std::string("CPU ") + n.op_type + " does not support dtype " + plugin::DTypeName(dt);
  return "";
}

std::string ClaimResize(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimNumericInput0(n, g);
  if (!r.empty()) return r;
  const bool upsample = std::string(n.op_type) == "Upsample";
  if (upsample && n.opset < 9) return "";
  if (upsample || n.opset < 11) return ClaimConstInputs(n, g, 1, 1);
  r = ClaimConstInputs(n, g, 2, 3);
  if (!r.empty()) return r;
  if (plugin::NodeAttrs(n).String("coordinate_transformation_mode", "") == "tf_crop_and_resize")
    return ClaimConstInputs(n, g, 1, 1);
  return "";
}

// ---- GridSample -------------------------------------------------------------------

struct GridParams {
  int mode = 1;     // 0 nearest, 1 linear, 2 cubic
  int padding = 0;  // 0 zeros, 1 border, 2 reflection
  bool align = false;
};

// Reflects x into [lo, hi] by repeated mirroring at the borders.
double Reflect(double x, double lo, double hi) {
  double rng = hi - lo;
  if (rng <= 0) return lo;
  if (x < lo) {
    double dx = lo - x;
    int64_t n = static_cast<int64_t>(dx / rng);
    double r = dx - static_cast<double>(n) * rng;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    double dx = x - hi;
    int64_t n = static_cast<int64_t>(dx / rng);
    double r = dx - static_cast<double>(n) * rng;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

class GridSampleKernel : public Kernel {
 public:
  GridSampleKernel(int32_t dt, int32_t gdt, std::vector<int64_t> xd, std::vector<int64_t> yd, GridParams p)
      : dt_(dt), gdt_(gdt), xd_(std::move(xd)), yd_(std::move(yd)), p_(p) {}

  Err Run(const void* const* in, void* const* out) const override {
    const int r = static_cast<int>(xd_.size()) - 2;
    const int64_t N = xd_[0], C = xd_[1];
    const int64_t in_sp = Product(xd_, 2), out_sp = Product(yd_, 2);
    std::vector<double> x(static_cast<size_t>(N * C * in_sp)), grid(static_cast<size_t>(N * out_sp * r)),
        y(static_cast<size_t>(N * C * out_sp));
    LoadDoubles(dt_, in[0], static_cast<int64_t>(x.size()), x.data());
    LoadDoubles(gdt_, in[1], static_cast<int64_t>(grid.size()), grid.data());
    const int taps1 = p_.mode == 0 ? 1 : p_.mode == 1 ? 2 : 4;
    int64_t combos = 1;
    for (int d = 0; d < r; ++d) combos *= taps1;
    std::vector<int64_t> strides(static_cast<size_t>(r));
    for (int d = r - 1; d >= 0; --d)
      strides[static_cast<size_t>(d)] = d == r - 1 ? 1 : strides[static_cast<size_t>(d) + 1] * xd_[static_cast<size_t>(d) + 3];
    ParallelFor(N * out_sp, 64, [&](int64_t b, int64_t e) {
      std::vector<int64_t> idx(static_cast<size_t>(r * taps1));
      std::vector<double> wt(static_cast<size_t>(r * taps1));
      for (int64_t t = b; t < e; ++t) {
        const int64_t n = t / out_sp, o = t % out_sp;
        const double* g = &grid[static_cast<size_t>(t * r)];
        for (int d = 0; d < r; ++d) {
          const int64_t len = xd_[static_cast<size_t>(d) + 2];
          const double nv = g[r - 1 - d];  // grid holds (x, y, z): innermost dim first
          // Denormalized coordinate (rounded to f32 like the reference).
          float xf = p_.align ? static_cast<float>((nv + 1) / 2.0 * static_cast<double>(len - 1))
                              : static_cast<float>(((nv + 1) * static_cast<double>(len) - 1) / 2.0);
          double xv = xf;
          if (p_.mode == 0) xv = std::nearbyint(xv);
          const double lo = p_.align ? 0.0 : -0.5, hi = p_.align ? static_cast<double>(len - 1) : static_cast<double>(len) - 0.5;
          if (xv < lo || xv > hi) {
            if (p_.padding == 1) xv = std::clamp(xv, 0.0, static_cast<double>(len - 1));
            else if (p_.padding == 2) xv = static_cast<float>(Reflect(xv, lo, hi));
          }
          auto resolve = [&](int64_t i) -> int64_t {
            if (i >= 0 && i < len) return i;
            if (p_.padding == 0) return -1;
            if (p_.padding == 1) return std::clamp<int64_t>(i, 0, len - 1);
            return std::clamp<int64_t>(static_cast<int64_t>(Reflect(static_cast<double>(i), lo, hi)), 0, len - 1);
          };
          int64_t* ix = &idx[static_cast<size_t>(d * taps1)];
          double* w = &wt[static_cast<size_t>(d * taps1)];
          if (p_.mode == 0) {
            ix[0] = resolve(static_cast<int64_t>(xv));
            w[0] = 1;
          } else {
            const double x0 = std::floor(xv);
            const double f = xv - x0;
            const int64_t i0 = static_cast<int64_t>(x0);
            if (p_.mode == 1) {
              ix[0] = resolve(i0), ix[1] = resolve(i0 + 1);
              w[0] = 1 - f, w[1] = f;
            } else {
              for (int j = 0; j < 4; ++j) {
                ix[j] = resolve(i0 - 1 + j);
                w[j] = CubicKernel(f - (j - 1), -0.75);
              }
            }
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          const double* xs = &x[static_cast<size_t>((n * C + c) * in_sp)];
          double acc = 0;
          for (int64_t k = 0; k < combos; ++k) {
            int64_t rem = k, off = 0;
            double w = 1;
            bool zero = false;
            for (int d = r - 1; d >= 0; --d) {
              const int j = static_cast<int>(rem % taps1);
              rem /= taps1;
              const int64_t i = idx[static_cast<size_t>(d * taps1 + j)];
              if (i < 0) { zero = true; break; }
              off += i * strides[static_cast<size_t>(d)];
              w *= wt[static_cast<size_t>(d * taps1 + j)];
            }
            if (!zero) acc += w * xs[off];
          }
          y[static_cast<size_t>((n * C + c) * out_sp + o)] = acc;
        }
      }
    });
    StoreDoubles(dt_, y.data(), static_cast<int64_t>(y.size()), out[0]);
    return Err::Ok();
  }

 private:
  int32_t dt_, gdt_;
  std::vector<int64_t> xd_, yd_;
  GridParams p_;
};

Err CreateGridSample(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const std::string desc = a.Describe();
  if (!a.has_input(0) || !a.has_input(1) || a.outputs.empty() || !a.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: needs inputs X, grid and output Y", desc.c_str());
  const TensorArg& x = *a.inputs[0];
  const TensorArg& g = *a.inputs[1];
  Err e = CheckDType(a, x.dtype, "X", true);
  if (!e.ok()) return e;
  e = CheckDType(a, g.dtype, "grid", true);
  if (!e.ok()) return e;
  plugin::NodeAttrs at = a.attrs();
  GridParams p;
  std::string mode = at.String("mode", a.node->opset >= 20 ? "linear" : "bilinear");
  if (mode == "nearest") p.mode = 0;
  else if (mode == "linear" || mode == "bilinear") p.mode = 1;
  else if (mode == "cubic" || mode == "bicubic") p.mode = 2;
  else return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unsupported mode '%s'", desc.c_str(), mode.c_str());
  std::string pm = at.String("padding_mode", "zeros");
  if (pm == "zeros") p.padding = 0;
  else if (pm == "border") p.padding = 1;
  else if (pm == "reflection") p.padding = 2;
  else return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unsupported padding_mode '%s'", desc.c_str(), pm.c_str());
  p.align = at.Int("align_corners", 0) != 0;
  const size_t rank = x.dims.size();
  if (rank < 3 || g.dims.size() != rank || g.dims[0] != x.dims[0] || g.dims[rank - 1] != static_cast<int64_t>(rank - 2))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: grid must have shape [N, spatial..., %zu] matching X of rank %zu",
                   desc.c_str(), rank >= 2 ? rank - 2 : 0, rank);
  std::vector<int64_t> yd{x.dims[0], x.dims[1]};
  for (size_t i = 1; i + 1 < rank; ++i) yd.push_back(g.dims[i]);
  if (a.outputs[0]->dims != yd)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dims do not match [N, C, grid spatial dims]", desc.c_str());
  *out = std::make_unique<GridSampleKernel>(x.dtype, g.dtype, x.dims, yd, p);
  return Err::Ok();
}

// "" when inputs [0, last] that are present have float dtypes.
std::string ClaimFloatInputs(const tsr_node_view& n, const tsr_graph_view& g, uint32_t last) {
  if (n.num_inputs < 1 || n.inputs[0] < 0) return "missing input 0";
  for (uint32_t i = 0; i <= last && i < n.num_inputs; ++i) {
    if (n.inputs[i] < 0) continue;
    int32_t dt = g.values[n.inputs[i]].dtype;
    if (!IsFloatDT(dt))
      return std::string("CPU ") + n.op_type + " input " + std::to_string(i) + " has dtype " + plugin::DTypeName(dt) +
             ", not a float type";
  }
  return "";
}
std::string ClaimGridSample(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimFloatInputs(n, g, 1); }
std::string ClaimRoiAlign(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimFloatInputs(n, g, 1); }
std::string ClaimAffineGrid(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimFloatInputs(n, g, 0);
  return r.empty() ? ClaimConstInputs(n, g, 1, 1) : r;
}
std::string ClaimCenterCropPad(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimFixedSize(n, g, 0);
  return r.empty() ? ClaimConstInputs(n, g, 1, 1) : r;
}
std::string ClaimCol2Im(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimNumericInput0(n, g);
  return r.empty() ? ClaimConstInputs(n, g, 1, 2) : r;
}

// ---- AffineGrid -----------------------------------------------------------------

class AffineGridKernel : public Kernel {
 public:
  AffineGridKernel(int32_t dt, std::vector<int64_t> size, bool align) : dt_(dt), size_(std::move(size)), align_(align) {}

  Err Run(const void* const* in, void* const* out) const override {
    const int r = static_cast<int>(size_.size()) - 2;
    const int64_t N = size_[0];
    const int64_t sp = Product(size_, 2);
    std::vector<double> theta(static_cast<size_t>(N * r * (r + 1)));
    LoadDoubles(dt_, in[0], static_cast<int64_t>(theta.size()), theta.data());
    std::vector<double> y(static_cast<size_t>(N * sp * r));
    auto coord = [&](int64_t i, int64_t len) {
      if (align_) return len == 1 ? -1.0 : -1.0 + static_cast<double>(i) * 2.0 / static_cast<double>(len - 1);
      double step = 2.0 / static_cast<double>(len);
      return -1.0 + step / 2 + static_cast<double>(i) * step;
    };
    std::vector<double> base(static_cast<size_t>(r + 1));
    for (int64_t n = 0; n < N; ++n) {
      const double* th = &theta[static_cast<size_t>(n * r * (r + 1))];
      for (int64_t s = 0; s < sp; ++s) {
        int64_t rem = s;
        // base = (x, y[, z], 1) with x along the innermost dim.
        for (int d = r - 1; d >= 0; --d) {
          const int64_t len = size_[static_cast<size_t>(d) + 2];
          base[static_cast<size_t>(r - 1 - d)] = coord(rem % len, len);
          rem /= len;
        }
        base[static_cast<size_t>(r)] = 1.0;
        for (int k = 0; k < r; ++k) {
          double acc = 0;
          for (int j = 0; j <= r; ++j) acc += th[k * (r + 1) + j] * base[static_cast<size_t>(j)];
          y[static_cast<size_t>((n * sp + s) * r + k)] = acc;
        }
      }
    }
    StoreDoubles(dt_, y.data(), static_cast<int64_t>(y.size()), out[0]);
    return Err::Ok();
  }

 private:
  int32_t dt_;
  std::vector<int64_t> size_;
  bool align_;
};

Err CreateAffineGrid(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const std::string desc = a.Describe();
  if (!a.has_input(0) || !a.has_input(1) || a.outputs.empty() || !a.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: needs inputs theta, size and output grid", desc.c_str());
  const TensorArg& th = *a.inputs[0];
  Err e = CheckDType(a, th.dtype, "theta", true);
  if (!e.ok()) return e;
  std::vector<int64_t> size;
  if (!ConstInts(a.inputs[1], &size)) return NotConstant(a, 1, "size");
  if (size.size() != 4 && size.size() != 5)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: size must have 4 or 5 elements, got %zu", desc.c_str(), size.size());
  const int64_t r = static_cast<int64_t>(size.size()) - 2;
  if (th.dims.size() != 3 || th.dims[0] != size[0] || th.dims[1] != r || th.dims[2] != r + 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: theta must have shape [%lld, %lld, %lld]", desc.c_str(),
                   static_cast<long long>(size[0]), static_cast<long long>(r), static_cast<long long>(r + 1));
  std::vector<int64_t> yd{size[0]};
  for (size_t i = 2; i < size.size(); ++i) yd.push_back(size[i]);
  yd.push_back(r);
  if (a.outputs[0]->dims != yd)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dims do not match size", desc.c_str());
  *out = std::make_unique<AffineGridKernel>(th.dtype, size, a.attrs().Int("align_corners", 0) != 0);
  return Err::Ok();
}

// ---- CenterCropPad ----------------------------------------------------------------

class CenterCropPadKernel : public Kernel {
 public:
  CenterCropPadKernel(int64_t esize, std::vector<int64_t> in, std::vector<int64_t> out, std::vector<int64_t> off)
      : es_(esize), in_(std::move(in)), out_(std::move(out)), off_(std::move(off)) {}

  // off_[d] = out index - in index along d (positive: padding, negative: crop).
  Err Run(const void* const* in, void* const* out) const override {
    const int r = static_cast<int>(in_.size());
    const uint8_t* src = static_cast<const uint8_t*>(in[0]);
    uint8_t* dst = static_cast<uint8_t*>(out[0]);
    std::memset(dst, 0, static_cast<size_t>(Product(out_) * es_));
    if (Product(out_) == 0 || Product(in_) == 0) return Err::Ok();
    if (r == 0) {
      std::memcpy(dst, src, static_cast<size_t>(es_));
      return Err::Ok();
    }
    // Copy rows along the last axis.
    const int64_t rows = Product(out_, 0, static_cast<size_t>(r - 1));
    const int64_t last_in = in_[static_cast<size_t>(r - 1)], last_out = out_[static_cast<size_t>(r - 1)];
    const int64_t lo = off_[static_cast<size_t>(r - 1)];
    const int64_t o_begin = std::max<int64_t>(0, lo), o_end = std::min(last_out, last_in + lo);
    if (o_end <= o_begin) return Err::Ok();
    for (int64_t row = 0; row < rows; ++row) {
      int64_t rem = row, src_off = 0, mul = 1;
      bool inside = true;
      for (int d = r - 2; d >= 0; --d) {
        const int64_t od = rem % out_[static_cast<size_t>(d)];
        rem /= out_[static_cast<size_t>(d)];
        const int64_t id = od - off_[static_cast<size_t>(d)];
        if (id < 0 || id >= in_[static_cast<size_t>(d)]) { inside = false; break; }
        src_off += id * mul;
        mul *= in_[static_cast<size_t>(d)];
      }
      if (!inside) continue;
      std::memcpy(dst + (row * last_out + o_begin) * es_, src + (src_off * last_in + (o_begin - lo)) * es_,
                  static_cast<size_t>((o_end - o_begin) * es_));
    }
    return Err::Ok();
  }

 private:
  int64_t es_;
  std::vector<int64_t> in_, out_, off_;
};

Err CreateCenterCropPad(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const std::string desc = a.Describe();
  if (!a.has_input(0) || !a.has_input(1) || a.outputs.empty() || !a.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: needs inputs input_data, shape and an output", desc.c_str());
  const TensorArg& x = *a.inputs[0];
  if (x.elem_size() == 0)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s is not supported", desc.c_str(), plugin::DTypeName(x.dtype));
  std::vector<int64_t> shape;
  if (!ConstInts(a.inputs[1], &shape)) return NotConstant(a, 1, "shape");
  const int r = static_cast<int>(x.dims.size());
  std::vector<int64_t> axes = a.attrs().Ints("axes");
  if (!a.attrs().Has("axes"))
    for (int i = 0; i < r; ++i) axes.push_back(i);
  if (axes.size() != shape.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: shape has %zu elements, expected %zu (one per axis)", desc.c_str(),
                   shape.size(), axes.size());
  std::vector<int64_t> od = x.dims, off(static_cast<size_t>(r), 0);
  for (size_t k = 0; k < axes.size(); ++k) {
    int64_t ax = axes[k];
    if (ax < -r || ax >= r)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for rank %d", desc.c_str(),
                     static_cast<long long>(ax), r);
    if (ax < 0) ax += r;
    if (shape[k] < 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: shape[%zu] = %lld is negative", desc.c_str(), k,
                     static_cast<long long>(shape[k]));
    const int64_t dim = x.dims[static_cast<size_t>(ax)];
    od[static_cast<size_t>(ax)] = shape[k];
    // Crop starts at floor((dim - s) / 2); padding puts floor((s - dim) / 2) before.
    off[static_cast<size_t>(ax)] = shape[k] < dim ? -((dim - shape[k]) / 2) : (shape[k] - dim) / 2;
  }
  if (od != a.outputs[0]->dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dims do not match shape", desc.c_str());
  *out = std::make_unique<CenterCropPadKernel>(x.elem_size(), x.dims, od, off);
  return Err::Ok();
}

// ---- Col2Im -------------------------------------------------------------------------

class Col2ImKernel : public Kernel {
 public:
  Col2ImKernel(int32_t dt, int64_t N, int64_t C, std::vector<int64_t> img, std::vector<int64_t> blk,
               std::vector<int64_t> dil, std::vector<int64_t> pads, std::vector<int64_t> strides,
               std::vector<int64_t> nblocks)
      : dt_(dt), N_(N), C_(C), img_(std::move(img)), blk_(std::move(blk)), dil_(std::move(dil)),
        pads_(std::move(pads)), str_(std::move(strides)), nb_(std::move(nblocks)) {}

  Err Run(const void* const* in, void* const* out) const override {
    const int r = static_cast<int>(img_.size());
    const int64_t K = Product(blk_), L = Product(nb_), S = Product(img_);
    std::vector<double> x(static_cast<size_t>(N_ * C_ * K * L)), y(static_cast<size_t>(N_ * C_ * S), 0.0);
    LoadDoubles(dt_, in[0], static_cast<int64_t>(x.size()), x.data());
    std::vector<int64_t> kk(static_cast<size_t>(r)), bb(static_cast<size_t>(r));
    for (int64_t nc = 0; nc < N_ * C_; ++nc) {
      for (int64_t k = 0; k < K; ++k) {
        int64_t rem = k;
        for (int d = r - 1; d >= 0; --d) kk[static_cast<size_t>(d)] = rem % blk_[static_cast<size_t>(d)], rem /= blk_[static_cast<size_t>(d)];
        const double* src = &x[static_cast<size_t>((nc * K + k) * L)];
        for (int64_t l = 0; l < L; ++l) {
          rem = l;
          int64_t off = 0, mul = 1;
          bool inside = true;
          for (int d = r - 1; d >= 0; --d) {
            const size_t u = static_cast<size_t>(d);
            const int64_t b = rem % nb_[u];
            rem /= nb_[u];
            const int64_t pos = b * str_[u] - pads_[u] + kk[u] * dil_[u];
            if (pos < 0 || pos >= img_[u]) { inside = false; break; }
            off += pos * mul;
            mul *= img_[u];
          }
          if (inside) y[static_cast<size_t>(nc * S + off)] += src[l];
        }
      }
    }
    StoreDoubles(dt_, y.data(), static_cast<int64_t>(y.size()), out[0]);
    return Err::Ok();
  }

 private:
  int32_t dt_;
  int64_t N_, C_;
  std::vector<int64_t> img_, blk_, dil_, pads_, str_, nb_;
};

Err CreateCol2Im(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const std::string desc = a.Describe();
  if (!a.has_input(0) || !a.has_input(1) || !a.has_input(2) || a.outputs.empty() || !a.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: needs inputs input, image_shape, block_shape and an output",
                   desc.c_str());
  const TensorArg& x = *a.inputs[0];
  Err e = CheckDType(a, x.dtype, "input", false);
  if (!e.ok()) return e;
  std::vector<int64_t> img, blk;
  if (!ConstInts(a.inputs[1], &img)) return NotConstant(a, 1, "image_shape");
  if (!ConstInts(a.inputs[2], &blk)) return NotConstant(a, 2, "block_shape");
  const size_t r = img.size();
  if (r == 0 || blk.size() != r)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: image_shape and block_shape must have the same non-zero length",
                   desc.c_str());
  if (x.dims.size() != 3) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input must have rank 3", desc.c_str());
  plugin::NodeAttrs at = a.attrs();
  std::vector<int64_t> dil = at.Ints("dilations", std::vector<int64_t>(r, 1));
  std::vector<int64_t> str = at.Ints("strides", std::vector<int64_t>(r, 1));
  std::vector<int64_t> pads = at.Ints("pads", std::vector<int64_t>(2 * r, 0));
  if (dil.size() != r || str.size() != r || pads.size() != 2 * r)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dilations/strides need %zu values and pads %zu", desc.c_str(), r,
                   2 * r);
  int64_t K = 1, L = 1;
  std::vector<int64_t> nb(r), pb(r);
  for (size_t d = 0; d < r; ++d) {
    if (blk[d] <= 0 || img[d] <= 0 || dil[d] <= 0 || str[d] <= 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: image_shape, block_shape, dilations and strides must be positive",
                     desc.c_str());
    K *= blk[d];
    nb[d] = (img[d] + pads[d] + pads[d + r] - (dil[d] * (blk[d] - 1) + 1)) / str[d] + 1;
    if (nb[d] <= 0) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: the block does not fit the padded image", desc.c_str());
    L *= nb[d];
    pb[d] = pads[d];
  }
  if (x.dims[1] % K != 0 || x.dims[2] != L)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                   "%s: input shape [%lld,%lld,%lld] needs dim 1 a multiple of %lld and dim 2 = %lld blocks",
                   desc.c_str(), static_cast<long long>(x.dims[0]), static_cast<long long>(x.dims[1]),
                   static_cast<long long>(x.dims[2]), static_cast<long long>(K), static_cast<long long>(L));
  std::vector<int64_t> yd{x.dims[0], x.dims[1] / K};
  yd.insert(yd.end(), img.begin(), img.end());
  if (a.outputs[0]->dims != yd)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dims do not match [N, C, image_shape]", desc.c_str());
  *out = std::make_unique<Col2ImKernel>(x.dtype, x.dims[0], x.dims[1] / K, img, blk, dil, pb, str, nb);
  return Err::Ok();
}

// ---- RoiAlign -------------------------------------------------------------------------

struct RoiParams {
  bool max_mode = false;
  bool half_pixel = true;
  int64_t oh = 1, ow = 1;
  int64_t sampling = 0;
  double spatial_scale = 1.0;
};

class RoiAlignKernel : public Kernel {
 public:
  RoiAlignKernel(std::string desc, int32_t dt, int32_t bdt, std::vector<int64_t> xd, int64_t R, RoiParams p)
      : desc_(std::move(desc)), dt_(dt), bdt_(bdt), xd_(std::move(xd)), R_(R), p_(p) {}

  Err Run(const void* const* in, void* const* out) const override {
    const int64_t N = xd_[0], C = xd_[1], H = xd_[2], W = xd_[3];
    std::vector<double> x(static_cast<size_t>(N * C * H * W)), rois(static_cast<size_t>(R_ * 4)),
        y(static_cast<size_t>(R_ * C * p_.oh * p_.ow));
    LoadDoubles(dt_, in[0], static_cast<int64_t>(x.size()), x.data());
    LoadDoubles(dt_, in[1], static_cast<int64_t>(rois.size()), rois.data());
    for (int64_t r = 0; r < R_; ++r) {
      const int64_t b = bdt_ == TSR_DTYPE_I64 ? static_cast<const int64_t*>(in[2])[r]
                                              : static_cast<const int32_t*>(in[2])[r];
      if (b < 0 || b >= N)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: batch index %lld out of range [0, %lld)", desc_.c_str(),
                       static_cast<long long>(b), static_cast<long long>(N));
      const double off = p_.half_pixel ? 0.5 : 0.0;
      const double* rr = &rois[static_cast<size_t>(r * 4)];
      const double sw = rr[0] * p_.spatial_scale - off, sh = rr[1] * p_.spatial_scale - off;
      double rw = rr[2] * p_.spatial_scale - off - sw, rh = rr[3] * p_.spatial_scale - off - sh;
      if (!p_.half_pixel) rw = std::max(rw, 1.0), rh = std::max(rh, 1.0);
      const double bh = rh / static_cast<double>(p_.oh), bw = rw / static_cast<double>(p_.ow);
      const int64_t gh = p_.sampling > 0 ? p_.sampling : static_cast<int64_t>(std::ceil(rh / static_cast<double>(p_.oh)));
      const int64_t gw = p_.sampling > 0 ? p_.sampling : static_cast<int64_t>(std::ceil(rw / static_cast<double>(p_.ow)));
      const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));
      for (int64_t c = 0; c < C; ++c) {
        const double* img = &x[static_cast<size_t>((b * C + c) * H * W)];
        for (int64_t ph = 0; ph < p_.oh; ++ph) {
          for (int64_t pw = 0; pw < p_.ow; ++pw) {
            double acc = 0;
            bool first = true;
            for (int64_t iy = 0; iy < gh; ++iy) {
              for (int64_t ix = 0; ix < gw; ++ix) {
                double yy = sh + static_cast<double>(ph) * bh + (static_cast<double>(iy) + 0.5) * bh / static_cast<double>(gh);
                double xx = sw + static_cast<double>(pw) * bw + (static_cast<double>(ix) + 0.5) * bw / static_cast<double>(gw);
                double v1 = 0, v2 = 0, v3 = 0, v4 = 0;
                if (!(yy < -1.0 || yy > static_cast<double>(H) || xx < -1.0 || xx > static_cast<double>(W))) {
                  yy = std::max(yy, 0.0), xx = std::max(xx, 0.0);
                  int64_t yl = static_cast<int64_t>(yy), xl = static_cast<int64_t>(xx), yh, xh;
                  if (yl >= H - 1) yh = yl = H - 1, yy = static_cast<double>(yl);
                  else yh = yl + 1;
                  if (xl >= W - 1) xh = xl = W - 1, xx = static_cast<double>(xl);
                  else xh = xl + 1;
                  const double ly = yy - static_cast<double>(yl), lx = xx - static_cast<double>(xl);
                  const double hy = 1 - ly, hx = 1 - lx;
                  v1 = hy * hx * img[yl * W + xl];
                  v2 = hy * lx * img[yl * W + xh];
                  v3 = ly * hx * img[yh * W + xl];
                  v4 = ly * lx * img[yh * W + xh];
                }
                if (p_.max_mode) {
                  double v = std::max(std::max(v1, v2), std::max(v3, v4));
                  acc = first ? v : std::max(acc, v);
                  first = false;
                } else {
                  acc += v1 + v2 + v3 + v4;
                }
              }
            }
            y[static_cast<size_t>(((r * C + c) * p_.oh + ph) * p_.ow + pw)] = p_.max_mode ? acc : acc / count;
          }
        }
      }
    }
    StoreDoubles(dt_, y.data(), static_cast<int64_t>(y.size()), out[0]);
    return Err::Ok();
  }

 private:
  std::string desc_;
  int32_t dt_, bdt_;
  std::vector<int64_t> xd_;
  int64_t R_;
  RoiParams p_;
};

Err CreateRoiAlign(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const std::string desc = a.Describe();
  if (!a.has_input(0) || !a.has_input(1) || !a.has_input(2) || a.outputs.empty() || !a.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: needs inputs X, rois, batch_indices and an output", desc.c_str());
  const TensorArg& x = *a.inputs[0];
  const TensorArg& rois = *a.inputs[1];
  const TensorArg& bi = *a.inputs[2];
  Err e = CheckDType(a, x.dtype, "X", true);
  if (!e.ok()) return e;
  if (rois.dtype != x.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: rois dtype %s differs from X dtype %s", desc.c_str(),
                   plugin::DTypeName(rois.dtype), plugin::DTypeName(x.dtype));
  if (bi.dtype != TSR_DTYPE_I64 && bi.dtype != TSR_DTYPE_I32)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: batch_indices must be i64", desc.c_str());
  if (x.dims.size() != 4 || rois.dims.size() != 2 || rois.dims[1] != 4 || bi.dims.size() != 1 ||
      bi.dims[0] != rois.dims[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                   "%s: expected X [N,C,H,W], rois [R,4] and batch_indices [R]", desc.c_str());
  plugin::NodeAttrs at = a.attrs();
  RoiParams p;
  std::string mode = at.String("mode", "avg");
  if (mode != "avg" && mode != "max")
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unsupported mode '%s'", desc.c_str(), mode.c_str());
  p.max_mode = mode == "max";
  std::string ctm = at.String("coordinate_transformation_mode", "half_pixel");
  if (ctm != "half_pixel" && ctm != "output_half_pixel")
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unsupported coordinate_transformation_mode '%s'", desc.c_str(),
                   ctm.c_str());
  p.half_pixel = a.node->opset >= 16 ? ctm == "half_pixel" : false;
  p.oh = at.Int("output_height", 1);
  p.ow = at.Int("output_width", 1);
  p.sampling = at.Int("sampling_ratio", 0);
  p.spatial_scale = at.Float("spatial_scale", 1.0f);
  if (p.oh <= 0 || p.ow <= 0 || p.sampling < 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output_height/width must be positive and sampling_ratio >= 0",
                   desc.c_str());
  std::vector<int64_t> yd{rois.dims[0], x.dims[1], p.oh, p.ow};
  if (a.outputs[0]->dims != yd)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dims do not match [R, C, output_height, output_width]",
                   desc.c_str());
  *out = std::make_unique<RoiAlignKernel>(desc, x.dtype, bi.dtype, x.dims, rois.dims[0], p);
  return Err::Ok();
}

}  // namespace

void RegisterResizeKernels(KernelRegistry& r) {
  r.Add({"", "Resize", &CreateResize, &ClaimResize});
  r.Add({"", "Upsample", &CreateResize, &ClaimResize});
  r.Add({"", "GridSample", &CreateGridSample, &ClaimGridSample});
  r.Add({"", "AffineGrid", &CreateAffineGrid, &ClaimAffineGrid});
  r.Add({"", "CenterCropPad", &CreateCenterCropPad, &ClaimCenterCropPad});
  r.Add({"", "Col2Im", &CreateCol2Im, &ClaimCol2Im});
  r.Add({"", "RoiAlign", &CreateRoiAlign, &ClaimRoiAlign});
}

}  // namespace tessera::cpu
