// Gradient rules of shape and data-movement ops, and of the sum/mean
// reductions. Parameters that newer opsets take as inputs (Slice starts,
// Reduce* axes, Split sizes) must be constants here.
#include <algorithm>
#include <numeric>

#include "compiler/autodiff/autodiff.h"

namespace tessera::autodiff {
namespace {

// dx = dy reshaped to x's shape (Reshape, Flatten, Squeeze, Unsqueeze);
// Reshape(dy, Shape(x)) when x's shape is not static.
Status GradReshapeLike(GradContext& c) {
  c.dx[0] = c.b.ReshapeLike(c.dy[0], c.in(0));
  return Status::Ok();
}

Status GradTranspose(GradContext& c) {
  const int r = c.in(0)->shape().rank();
  std::vector<int64_t> perm = c.node.GetInts("perm");
  if (perm.empty()) {
    perm.resize(r);
    for (int i = 0; i < r; ++i) perm[i] = r - 1 - i;
  }
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    int64_t p = perm[i] < 0 ? perm[i] + r : perm[i];
    if (p < 0 || p >= r) return c.b.Error("perm entry ", perm[i], " is out of range for rank ", r);
    inv[p] = static_cast<int64_t>(i);
  }
  c.dx[0] = c.b.Op("Transpose", {c.dy[0]}, {{"perm", Attribute::Ints(inv)}});
  return Status::Ok();
}

Value* SliceAxis(GradBuilder& b, Value* x, int64_t axis, int64_t start, int64_t end) {
  return b.Op("Slice", {x, b.Int64s({start}), b.Int64s({end}), b.Int64s({axis})});
}

// dx_i = the slice of dy along `axis` that input i filled.
Status GradConcat(GradContext& c) {
  const int r = c.out(0)->shape().rank();
  int64_t axis = c.node.GetInt("axis", 0);
  if (axis < 0) axis += r;
  int64_t off = 0;
  for (size_t i = 0; i < c.node.num_inputs(); ++i) {
    std::vector<int64_t> d = c.b.StaticDims(c.in(i), "input");
    if (!c.b.ok()) return c.b.status();
    const int64_t len = d[axis];
    if (c.need(i)) c.dx[i] = SliceAxis(c.b, c.dy[0], axis, off, off + len);
    off += len;
  }
  return Status::Ok();
}

// dx = Concat of the outputs' gradients (zeros where an output got none).
Status GradSplit(GradContext& c) {
  const int r = c.in(0)->shape().rank();
  int64_t axis = c.node.GetInt("axis", 0);
  if (axis < 0) axis += r;
  std::vector<Value*> parts;
  for (size_t i = 0; i < c.node.num_outputs(); ++i) {
    Value* d = c.dy[i];
    if (!d) d = c.b.Zeros(c.out(i)->type());
    parts.push_back(d);
  }
  c.dx[0] = c.b.Op("Concat", parts, {{"axis", Attribute::Int(axis)}});
  return Status::Ok();
}

// Reads parameter `name`: attribute (old opsets) or constant input `idx`.
bool ReadInts(GradContext& c, const char* name, size_t idx, std::vector<int64_t>* out, bool* present) {
  if (c.node.has_attr(name)) {
    *out = c.node.GetInts(name);
    *present = true;
    return true;
  }
  Value* v = c.in(idx);
  *present = v != nullptr;
  if (!v) return true;
  if (!v->constant()) return false;
  auto r = v->constant()->ToInt64Vector();
  if (!r.ok()) return false;
  *out = *r;
  return true;
}

// Constant step-1 slices of a static input: dx = Pad(dy) with zeros outside
// the slice. Otherwise (parameters computed at run time by shape subgraphs,
// steps != 1, symbolic input shape) tessera.SliceGrad scatters dy back; its
// kernel needs the parameters constant by compile time, which the session's
// folding provides for shape subgraphs, as the forward Slice kernel does.
Status GradSlice(GradContext& c) {
  std::vector<int64_t> starts, ends, axes, steps;
  bool has_s = false, has_e = false, has_a = false, has_st = false;
  const bool attr_form = c.node.has_attr("starts");
  const bool consts = ReadInts(c, "starts", 1, &starts, &has_s) && ReadInts(c, "ends", 2, &ends, &has_e) &&
                      ReadInts(c, "axes", 3, &axes, &has_a) && (attr_form || ReadInts(c, "steps", 4, &steps, &has_st));
  const bool unit_steps = std::all_of(steps.begin(), steps.end(), [](int64_t v) { return v == 1; });
  if (!consts || !unit_steps || !c.in(0)->shape().is_static()) {
    if (attr_form) return c.b.Error("Slice (attribute form) gradients need a static input shape");
    std::vector<Value*> in{c.dy[0], c.in(0)};
    for (size_t i = 1; i < c.node.num_inputs(); ++i) in.push_back(c.in(i));
    c.dx[0] = c.b.Op("SliceGrad", in, {}, "tessera");
    return Status::Ok();
  }
  std::vector<int64_t> xd = *c.in(0)->shape().AsInts();
  const int64_t r = static_cast<int64_t>(xd.size());
  if (!has_a) {
    axes.resize(starts.size());
    std::iota(axes.begin(), axes.end(), 0);
  }
  if (!has_st) steps.assign(starts.size(), 1);
  if (starts.size() != ends.size() || axes.size() != starts.size() || steps.size() != starts.size())
    return c.b.Error("Slice starts/ends/axes/steps have different lengths");
  std::vector<int64_t> pads(2 * r, 0);
  for (size_t k = 0; k < starts.size(); ++k) {
    int64_t ax = axes[k] < 0 ? axes[k] + r : axes[k];
    if (ax < 0 || ax >= r) return c.b.Error("Slice axis ", axes[k], " is out of range");
    if (steps[k] != 1) return c.b.Error("Slice gradients support step 1 only, got step ", steps[k]);
    const int64_t dim = xd[ax];
    int64_t s = starts[k] < 0 ? starts[k] + dim : starts[k];
    int64_t e = ends[k] < 0 ? ends[k] + dim : ends[k];
    s = std::clamp<int64_t>(s, 0, dim);
    e = std::clamp<int64_t>(e, 0, dim);
    const int64_t len = std::max<int64_t>(0, e - s);
    pads[ax] = s;
    pads[r + ax] = dim - s - len;
  }
  if (c.b.onnx_opset() >= 11)
    c.dx[0] = c.b.Op("Pad", {c.dy[0], c.b.Int64s(pads)});
  else
    c.dx[0] = c.b.Op("Pad", {c.dy[0]}, {{"pads", Attribute::Ints(pads)}});
  return Status::Ok();
}

// Gather (embedding lookup and general axis): scatter-add dy into zeros of data's shape.
Status GradGather(GradContext& c) {
  std::vector<int64_t> xd = c.b.StaticDims(c.in(0), "data");
  if (!c.b.ok()) return c.b.status();
  int64_t axis = c.node.GetInt("axis", 0);
  if (axis < 0) axis += static_cast<int64_t>(xd.size());
  c.dx[0] = c.b.Op("GatherGrad", {c.dy[0], c.in(1)},
                   {{"axis", Attribute::Int(axis)}, {"data_shape", Attribute::Ints(xd)}}, "tessera");
  return Status::Ok();
}

// Expand: the driver sums dy back to the input's shape.
Status GradExpand(GradContext& c) {
  c.dx[0] = c.dy[0];
  return Status::Ok();
}

// ReduceSum / ReduceMean: dy (keepdims form) expanded back to x's shape.
template <bool kMean>
Status GradReduce(GradContext& c) {
  std::vector<int64_t> xd = c.b.StaticDims(c.in(0), "input");
  if (!c.b.ok()) return c.b.status();
  const int64_t r = static_cast<int64_t>(xd.size());
  std::vector<int64_t> axes;
  bool present = false;
  if (!ReadInts(c, "axes", 1, &axes, &present))
    return c.b.Error("Reduce gradients need constant axes");
  if (axes.empty()) {
    if (c.node.GetInt("noop_with_empty_axes", 0) != 0) {
      c.dx[0] = c.dy[0];
      return Status::Ok();
    }
    axes.resize(r);
    std::iota(axes.begin(), axes.end(), 0);
  }
  std::vector<int64_t> kd = xd;
  int64_t count = 1;
  for (int64_t a : axes) {
    int64_t ax = a < 0 ? a + r : a;
    if (ax < 0 || ax >= r) return c.b.Error("axis ", a, " is out of range for rank ", r);
    kd[ax] = 1;
    count *= xd[ax];
  }
  Value* d = c.b.ReshapeTo(c.dy[0], kd);
  if (kMean) d = c.b.Op("Div", {d, c.b.Scalar(static_cast<double>(count), c.dy[0]->dtype())});
  c.dx[0] = c.b.Op("Expand", {d, c.b.Int64s(xd)});
  return Status::Ok();
}

// Constant-mode Pad with non-negative pads: dx = the un-padded window of dy.
Status GradPad(GradContext& c) {
  if (c.node.GetString("mode", "constant") != "constant")
    return c.b.Error("Pad gradients support mode=constant only");
  if (c.node.num_inputs() > 3 && c.in(3)) return c.b.Error("Pad gradients do not support the axes input");
  std::vector<int64_t> xd = c.b.StaticDims(c.in(0), "input");
  if (!c.b.ok()) return c.b.status();
  std::vector<int64_t> pads;
  bool present = false;
  if (!ReadInts(c, "pads", 1, &pads, &present) || !present)
    return c.b.Error("Pad gradients need constant pads");
  const size_t r = xd.size();
  if (pads.size() != 2 * r) return c.b.Error("pads has ", pads.size(), " entries, expected ", 2 * r);
  std::vector<int64_t> starts(r), ends(r), axes(r);
  for (size_t i = 0; i < r; ++i) {
    if (pads[i] < 0 || pads[r + i] < 0) return c.b.Error("Pad gradients need non-negative pads");
    starts[i] = pads[i];
    ends[i] = pads[i] + xd[i];
    axes[i] = static_cast<int64_t>(i);
  }
  c.dx[0] = c.b.Op("Slice", {c.dy[0], c.b.Int64s(starts), c.b.Int64s(ends), c.b.Int64s(axes)});
  return Status::Ok();
}

// Tile: dy viewed as [r0, d0, r1, d1, ...] summed over the repeat axes.
Status GradTile(GradContext& c) {
  std::vector<int64_t> xd = c.b.StaticDims(c.in(0), "input");
  if (!c.b.ok()) return c.b.status();
  if (!c.in(1) || !c.in(1)->constant()) return c.b.Error("Tile gradients need constant repeats");
  auto rep = c.in(1)->constant()->ToInt64Vector();
  if (!rep.ok() || rep->size() != xd.size()) return c.b.Error("Tile repeats do not match the input rank");
  std::vector<int64_t> view, axes;
  for (size_t i = 0; i < xd.size(); ++i) {
    axes.push_back(static_cast<int64_t>(view.size()));
    view.push_back((*rep)[i]);
    view.push_back(xd[i]);
  }
  c.dx[0] = c.b.ReshapeTo(c.b.ReduceSum(c.b.ReshapeTo(c.dy[0], view), axes, false), xd);
  return Status::Ok();
}

}  // namespace

void RegisterShapeGrads(std::map<std::string, GradRule>& r) {
  r["Reshape"] = GradReshapeLike;
  r["Flatten"] = GradReshapeLike;
  r["Squeeze"] = GradReshapeLike;
  r["Unsqueeze"] = GradReshapeLike;
  r["Transpose"] = GradTranspose;
  r["Concat"] = GradConcat;
  r["Split"] = GradSplit;
  r["Slice"] = GradSlice;
  r["Gather"] = GradGather;
  r["Expand"] = GradExpand;
  r["ReduceSum"] = GradReduce<false>;
  r["ReduceMean"] = GradReduce<true>;
  r["Pad"] = GradPad;
  r["Tile"] = GradTile;
}

}  // namespace tessera::autodiff
