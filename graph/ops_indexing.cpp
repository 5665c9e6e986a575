// Op schemas of scatter/gather/one-hot/space-depth and data-dependent
// indexing ops: Scatter, ScatterElements, ScatterND, TensorScatter, GatherND,
// OneHot, DepthToSpace, SpaceToDepth, Compress, NonZero, Unique, EyeLike,
// ReverseSequence, Einsum, Det, NonMaxSuppression.
//
// Ops whose output size depends on input values (Compress, NonZero, Unique,
// NonMaxSuppression, OneHot's depth) compute it when those inputs are known
// constants, else leave the dim unknown (a declared graph output shape, or the
// runtime's value specialization, fills it in).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "graph/op_schema.h"

namespace tessera {
namespace {

Shape UnknownDims(int64_t rank) { return Shape(std::vector<Dim>(static_cast<size_t>(rank), Dim::Unknown())); }

Result<int64_t> AxisFor(const InferenceContext& ctx, int64_t axis, int64_t rank) {
  auto a = NormalizeAxis(axis, rank);
  if (!a.ok()) return ctx.Error(a.status().message());
  return a;
}

Status CheckIndexDType(const InferenceContext& ctx, size_t i, const char* what) {
  DType t = ctx.input(i).dtype;
  if (t == DType::kUndefined || t == DType::kI64 || t == DType::kI32) return Status::Ok();
  return ctx.Error(what, " has dtype ", DTypeName(t), ", expected i32 or i64");
}

// Scatter, ScatterElements: data, indices, updates; indices and updates have
// one shape and data's rank.
Status InferScatterElements(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "indices"));
  const Shape &is = ctx.input(1).shape, &us = ctx.input(2).shape;
  if (is.has_rank() && us.has_rank() && is != us && is.is_static() && us.is_static())
    return ctx.Error("indices ", is.ToString(), " and updates ", us.ToString(), " must have the same shape");
  if (x.shape.has_rank() && is.has_rank() && x.shape.rank() != is.rank())
    return ctx.Error("data ", x.shape.ToString(), " and indices ", is.ToString(), " must have the same rank");
  if (x.shape.has_rank()) TSR_RETURN_IF_ERROR(AxisFor(ctx, ctx.node->GetInt("axis", 0), x.shape.rank()).status());
  DType ut = ctx.input(2).dtype;
  if (ut != DType::kUndefined && x.dtype != DType::kUndefined && ut != x.dtype)
    return ctx.Error("updates have dtype ", DTypeName(ut), ", data has ", DTypeName(x.dtype));
  std::string red = ctx.node->GetString("reduction", "none");
  if (red != "none" && red != "add" && red != "mul" && red != "max" && red != "min")
    return ctx.Error("unknown reduction \"", red, "\"");
  ctx.outputs[0] = x;
  return Status::Ok();
}

// ScatterND: updates shape = indices.shape[:-1] + data.shape[k:].
Status InferScatterND(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "indices"));
  const Shape& is = ctx.input(1).shape;
  if (is.has_rank() && is.rank() == 0) return ctx.Error("indices must have rank >= 1");
  if (x.shape.has_rank() && is.has_rank() && is.dim(is.rank() - 1).is_known() &&
      is.dim(is.rank() - 1).value > x.shape.rank())
    return ctx.Error("indices' last dim ", is.dim(is.rank() - 1).value, " exceeds the data rank ", x.shape.rank());
  std::string red = ctx.node->GetString("reduction", "none");
  if (red != "none" && red != "add" && red != "mul" && red != "max" && red != "min")
    return ctx.Error("unknown reduction \"", red, "\"");
  ctx.outputs[0] = x;
  return Status::Ok();
}

// TensorScatter(past_cache, update, write_indices?): output = past_cache.
Status InferTensorScatter(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  std::string mode = ctx.node->GetString("mode", "linear");
  if (mode != "linear" && mode != "circular") return ctx.Error("unknown mode \"", mode, "\"");
  const Shape& us = ctx.input(1).shape;
  if (x.shape.has_rank() && us.has_rank() && x.shape.rank() != us.rank())
    return ctx.Error("past_cache ", x.shape.ToString(), " and update ", us.ToString(), " must have the same rank");
  if (ctx.has_input(2)) TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 2, "write_indices"));
  ctx.outputs[0] = x;
  return Status::Ok();
}

// GatherND: out = indices.shape[:-1] + data.shape[batch_dims + k:].
Status InferGatherND(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "indices"));
  const Shape& is = ctx.input(1).shape;
  int64_t b = ctx.node->GetInt("batch_dims", 0);
  if (is.has_rank() && is.rank() < 1) return ctx.Error("indices must have rank >= 1");
  if (!x.shape.has_rank() || !is.has_rank() || !is.dim(is.rank() - 1).is_known()) {
    ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
    return Status::Ok();
  }
  int64_t k = is.dim(is.rank() - 1).value;
  if (b < 0 || b >= std::min<int64_t>(x.shape.rank(), is.rank()))
    return ctx.Error("batch_dims ", b, " must be in [0, min(data rank, indices rank))");
  if (b + k > x.shape.rank())
    return ctx.Error("indices' last dim ", k, " plus batch_dims ", b, " exceeds the data rank ", x.shape.rank());
  std::vector<Dim> out(is.dims().begin(), is.dims().end() - 1);
  out.insert(out.end(), x.shape.dims().begin() + b + k, x.shape.dims().end());
  ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(out))};
  return Status::Ok();
}

// OneHot(indices, depth, values): depth inserted at axis; dtype of values.
Status InferOneHot(InferenceContext& ctx) {
  const TensorType& ind = ctx.input(0);
  DType dt = ctx.input(2).dtype;
  const Shape& vs = ctx.input(2).shape;
  if (vs.has_rank() && vs.is_static() && vs.NumElements().value() != 2)
    return ctx.Error("values must have 2 elements (off, on), got shape ", vs.ToString());
  if (!ind.shape.has_rank()) {
    ctx.outputs[0] = TensorType{dt, Shape::UnknownRank()};
    return Status::Ok();
  }
  int64_t r = ind.shape.rank();
  int64_t axis = ctx.node->GetInt("axis", -1);
  if (axis < -r - 1 || axis > r) return ctx.Error("axis ", axis, " is out of range for output rank ", r + 1);
  if (axis < 0) axis += r + 1;
  Dim depth = Dim::Unknown();
  if (const Tensor* t = ctx.constant(1)) {
    if (t->num_elements() != 1) return ctx.Error("depth must have one element");
    double d = t->GetAsDouble(0);
    if (!(d >= 1)) return ctx.Error("depth must be >= 1, got ", d);
    depth = Dim::Known(static_cast<int64_t>(d));
  }
  std::vector<Dim> out = ind.shape.dims();
  out.insert(out.begin() + axis, depth);
  ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
  return Status::Ok();
}

Result<int64_t> BlockSize(const InferenceContext& ctx) {
  if (!ctx.node->has_attr("blocksize")) return ctx.Error("attribute blocksize is required");
  int64_t b = ctx.node->GetInt("blocksize", 0);
  if (b < 1) return ctx.Error("blocksize must be >= 1, got ", b);
  return b;
}

Status InferDepthToSpace(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_ASSIGN_OR_RETURN(int64_t b, BlockSize(ctx));
  std::string mode = ctx.node->GetString("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") return ctx.Error("unknown mode \"", mode, "\"");
  if (!x.shape.has_rank()) {
    ctx.outputs[0] = TensorType{x.dtype, UnknownDims(4)};
    return Status::Ok();
  }
  if (x.shape.rank() != 4) return ctx.Error("input must be 4-D [N, C, H, W], got ", x.shape.ToString());
  std::vector<Dim> d = x.shape.dims();
  if (d[1].is_known()) {
    if (d[1].value % (b * b) != 0) return ctx.Error("channels ", d[1].value, " not divisible by blocksize^2 ", b * b);
    d[1] = Dim::Known(d[1].value / (b * b));
  }
  for (int i = 2; i < 4; ++i) d[i] = d[i].is_known() ? Dim::Known(d[i].value * b) : Dim::Unknown();
  ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(d))};
  return Status::Ok();
}

Status InferSpaceToDepth(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_ASSIGN_OR_RETURN(int64_t b, BlockSize(ctx));
  if (!x.shape.has_rank()) {
    ctx.outputs[0] = TensorType{x.dtype, UnknownDims(4)};
    return Status::Ok();
  }
  if (x.shape.rank() != 4) return ctx.Error("input must be 4-D [N, C, H, W], got ", x.shape.ToString());
  std::vector<Dim> d = x.shape.dims();
  d[1] = d[1].is_known() ? Dim::Known(d[1].value * b * b) : Dim::Unknown();
  for (int i = 2; i < 4; ++i) {
    if (!d[i].is_known()) continue;
    if (d[i].value % b != 0) return ctx.Error("dim ", i, " (", d[i].value, ") not divisible by blocksize ", b);
    d[i] = Dim::Known(d[i].value / b);
  }
  ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(d))};
  return Status::Ok();
}

// Compress(input, condition): selects slices along axis (or elements of the
// flattened input) where condition is true; condition may be shorter.
Status InferCompress(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  DType ct = ctx.input(1).dtype;
  if (ct != DType::kUndefined && ct != DType::kBool)
    return ctx.Error("condition has dtype ", DTypeName(ct), ", expected bool");
  Dim n = Dim::Unknown();
  bool has_axis = ctx.node->has_attr("axis");
  int64_t axis = 0;
  if (has_axis && x.shape.has_rank()) {
    TSR_ASSIGN_OR_RETURN(axis, AxisFor(ctx, ctx.node->GetInt("axis", 0), x.shape.rank()));
  }
  if (const Tensor* c = ctx.constant(1)) {
    int64_t limit = -1;
    if (has_axis && x.shape.has_rank() && x.shape.dim(static_cast<int>(axis)).is_known())
      limit = x.shape.dim(static_cast<int>(axis)).value;
    if (!has_axis && x.shape.is_static()) limit = x.shape.NumElements().value();
    int64_t len = c->num_elements();
    if (limit >= 0 && len > limit)
      return ctx.Error("condition has ", len, " elements, more than the ", limit, " it selects from");
    int64_t cnt = 0;
    for (int64_t i = 0; i < len; ++i) cnt += c->GetAsDouble(i) != 0 ? 1 : 0;
    n = Dim::Known(cnt);
  }
  if (!has_axis) {
    ctx.outputs[0] = TensorType{x.dtype, Shape({n})};
    return Status::Ok();
  }
  if (!x.shape.has_rank()) {
    ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
    return Status::Ok();
  }
  std::vector<Dim> d = x.shape.dims();
  d[static_cast<size_t>(axis)] = n;
  ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(d))};
  return Status::Ok();
}

Status InferNonZero(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  Dim n = Dim::Unknown();
  if (const Tensor* c = ctx.constant(0)) {
    int64_t cnt = 0;
    for (int64_t i = 0; i < c->num_elements(); ++i) cnt += c->GetAsDouble(i) != 0 ? 1 : 0;
    n = Dim::Known(cnt);
  }
  Dim r = x.shape.has_rank() ? Dim::Known(x.shape.rank()) : Dim::Unknown();
  ctx.outputs[0] = TensorType{DType::kI64, Shape({r, n})};
  return Status::Ok();
}

// Unique: Y (unique values or slices), indices, inverse_indices, counts.
Status InferUnique(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  bool has_axis = ctx.node->has_attr("axis");
  int64_t axis = 0;
  if (has_axis && x.shape.has_rank()) {
    TSR_ASSIGN_OR_RETURN(axis, AxisFor(ctx, ctx.node->GetInt("axis", 0), x.shape.rank()));
  }
  Dim u = Dim::Unknown();
  Dim total = Dim::Unknown();
  if (!has_axis && x.shape.is_static()) total = Dim::Known(x.shape.NumElements().value());
  if (has_axis && x.shape.has_rank()) total = x.shape.dim(static_cast<int>(axis));
  if (const Tensor* c = ctx.constant(0); c && x.shape.is_static()) {
    // Count distinct slices along axis (or distinct elements).
    std::vector<int64_t> dims = c->dims();
    int64_t outer = 1, n = c->num_elements(), inner = 1;
    if (has_axis) {
      for (int64_t i = 0; i < axis; ++i) outer *= dims[static_cast<size_t>(i)];
      for (size_t i = static_cast<size_t>(axis) + 1; i < dims.size(); ++i) inner *= dims[i];
      n = dims[static_cast<size_t>(axis)];
    }
    // Keys (is_nan, value): all NaNs compare equal, as the CPU kernel groups them.
    std::set<std::vector<std::pair<int, double>>> seen;
    for (int64_t j = 0; j < n; ++j) {
      std::vector<std::pair<int, double>> key;
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          double v = c->GetAsDouble((o * n + j) * inner + i);
          key.emplace_back(std::isnan(v) ? 1 : 0, std::isnan(v) ? 0.0 : v);
        }
      seen.insert(std::move(key));
    }
    u = Dim::Known(static_cast<int64_t>(seen.size()));
  }
  if (!has_axis) {
    ctx.outputs[0] = TensorType{x.dtype, Shape({u})};
  } else if (x.shape.has_rank()) {
    std::vector<Dim> d = x.shape.dims();
    d[static_cast<size_t>(axis)] = u;
    ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(d))};
  } else {
    ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
  }
  for (size_t i = 1; i < ctx.outputs.size(); ++i)
    ctx.outputs[i] = TensorType{DType::kI64, Shape({i == 2 ? total : u})};
  return Status::Ok();
}

Status InferEyeLike(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.shape.has_rank() && x.shape.rank() != 2) return ctx.Error("input must be 2-D, got ", x.shape.ToString());
  DType dt = x.dtype;
  if (ctx.node->has_attr("dtype")) {
    int64_t v = ctx.node->GetInt("dtype", 0);
    if (v < 1 || v > 1000 || !IsKnownDType(static_cast<int32_t>(v))) return ctx.Error("dtype ", v, " is not supported");
    dt = static_cast<DType>(v);
  }
  ctx.outputs[0] = TensorType{dt, x.shape.has_rank() ? x.shape : UnknownDims(2)};
  return Status::Ok();
}

Status InferReverseSequence(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "sequence_lens"));
  int64_t ba = ctx.node->GetInt("batch_axis", 1), ta = ctx.node->GetInt("time_axis", 0);
  if (x.shape.has_rank()) {
    if (x.shape.rank() < 2) return ctx.Error("input must have rank >= 2, got ", x.shape.ToString());
    if ((ba != 0 && ba != 1) || (ta != 0 && ta != 1) || ba == ta)
      return ctx.Error("batch_axis ", ba, " and time_axis ", ta, " must be 0 and 1 in some order");
  }
  ctx.outputs[0] = x;
  return Status::Ok();
}

Status InferDet(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.dtype != DType::kUndefined && !IsFloatDType(x.dtype))
    return ctx.Error("dtype ", DTypeName(x.dtype), " is not a float type");
  if (!x.shape.has_rank()) {
    ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
    return Status::Ok();
  }
  int r = x.shape.rank();
  if (r < 2) return ctx.Error("input must have rank >= 2, got ", x.shape.ToString());
  const Dim &a = x.shape.dim(r - 2), &b = x.shape.dim(r - 1);
  if (a.is_known() && b.is_known() && a.value != b.value)
    return ctx.Error("input matrices must be square, got ", x.shape.ToString());
  ctx.outputs[0] = TensorType{x.dtype, Shape(std::vector<Dim>(x.shape.dims().begin(), x.shape.dims().end() - 2))};
  return Status::Ok();
}

Status InferNms(InferenceContext& ctx) {
  const Shape &bs = ctx.input(0).shape, &ss = ctx.input(1).shape;
  if (bs.has_rank() && bs.rank() != 3) return ctx.Error("boxes must be 3-D, got ", bs.ToString());
  if (ss.has_rank() && ss.rank() != 3) return ctx.Error("scores must be 3-D, got ", ss.ToString());
  if (bs.has_rank() && bs.dim(2).is_known() && bs.dim(2).value != 4)
    return ctx.Error("boxes' last dim must be 4, got ", bs.ToString());
  Dim n = Dim::Unknown();
  if (!ctx.has_input(2)) n = Dim::Known(0);
  else if (const Tensor* t = ctx.constant(2); t && t->num_elements() == 1 && t->GetAsInt64(0) <= 0)
    n = Dim::Known(0);
  ctx.outputs[0] = TensorType{DType::kI64, Shape({n, Dim::Known(3)})};
  return Status::Ok();
}

// ---- Einsum ----

// Parses an Einsum equation into per-input label lists and the output label
// list. Labels are letters; an ellipsis becomes the label '.', expanded by
// the caller. Returns "" or the reason the equation is malformed.
std::string ParseEinsumEquation(const std::string& eq, std::vector<std::string>* inputs, std::string* output,
                                bool* explicit_out) {
  std::string s;
  for (char c : eq)
    if (c != ' ') s += c;
  size_t arrow = s.find("->");
  std::string lhs = arrow == std::string::npos ? s : s.substr(0, arrow);
  *explicit_out = arrow != std::string::npos;
  inputs->clear();
  size_t p = 0;
  while (true) {
    size_t c = lhs.find(',', p);
    inputs->push_back(lhs.substr(p, c == std::string::npos ? std::string::npos : c - p));
    if (c == std::string::npos) break;
    p = c + 1;
  }
  auto norm = [](std::string& t) -> std::string {
    std::string r;
    int dots = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      if (t.compare(i, 3, "...") == 0) {
        if (++dots > 1) return "more than one ellipsis in a term";
        r += '.';
        i += 2;
      } else if ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z')) {
        r += t[i];
      } else {
        return std::string("unexpected character '") + t[i] + "'";
      }
    }
    t = r;
    return "";
  };
  for (auto& t : *inputs)
    if (std::string why = norm(t); !why.empty()) return why;
  if (*explicit_out) {
    *output = s.substr(arrow + 2);
    if (std::string why = norm(*output); !why.empty()) return why;
  } else {
    std::map<char, int> count;
    bool dots = false;
    for (const auto& t : *inputs)
      for (char c : t) {
        if (c == '.') dots = true;
        else ++count[c];
      }
    *output = dots ? "." : "";
    for (auto& [c, k] : count)
      if (k == 1) *output += c;
  }
  return "";
}

Status InferEinsum(InferenceContext& ctx) {
  if (!ctx.node->has_attr("equation")) return ctx.Error("attribute equation is required");
  std::vector<std::string> terms;
  std::string out;
  bool explicit_out = false;
  std::string why = ParseEinsumEquation(ctx.node->GetString("equation", ""), &terms, &out, &explicit_out);
  if (!why.empty()) return ctx.Error("equation: ", why);
  if (terms.size() != ctx.num_inputs())
    return ctx.Error("equation has ", terms.size(), " operands, node has ", ctx.num_inputs(), " inputs");
  DType dt = ctx.input(0).dtype;
  std::map<char, Dim> dims;
  std::vector<Dim> ell;  // broadcast ellipsis dims (right-aligned)
  bool ell_known = true;
  for (size_t i = 0; i < terms.size(); ++i) {
    const Shape& s = ctx.input(i).shape;
    if (!s.has_rank()) {
      ell_known = false;
      continue;
    }
    const std::string& t = terms[i];
    bool has_dots = t.find('.') != std::string::npos;
    int64_t nl = static_cast<int64_t>(t.size()) - (has_dots ? 1 : 0);
    if (has_dots ? s.rank() < nl : s.rank() != nl)
      return ctx.Error("operand ", i, " has shape ", s.ToString(), " but term '", t, "'");
    int64_t ne = s.rank() - nl;
    int d = 0;
    for (char c : t) {
      if (c == '.') {
        std::vector<Dim> e(s.dims().begin() + d, s.dims().begin() + d + ne);
        if (e.size() > ell.size()) ell.insert(ell.begin(), e.size() - ell.size(), Dim::Known(1));
        size_t off = ell.size() - e.size();
        for (size_t k = 0; k < e.size(); ++k) {
          Dim& o = ell[off + k];
          if (o.is_known() && o.value == 1) o = e[k];
          else if (e[k].is_known() && e[k].value != 1 && o.is_known() && o.value != e[k].value)
            return ctx.Error("ellipsis dims of operand ", i, " do not broadcast");
        }
        d += static_cast<int>(ne);
        continue;
      }
      const Dim& v = s.dim(d++);
      auto it = dims.find(c);
      if (it == dims.end() || !it->second.is_known()) dims[c] = v;
      else if (v.is_known() && v.value != it->second.value && !(v.value == 1 || it->second.value == 1))
        return ctx.Error("label '", c, "' has sizes ", it->second.value, " and ", v.value);
      else if (v.is_known() && it->second.value == 1) dims[c] = v;
    }
  }
  std::vector<Dim> od;
  for (char c : out) {
    if (c == '.') {
      if (!ell_known) {
        ctx.outputs[0] = TensorType{dt, Shape::UnknownRank()};
        return Status::Ok();
      }
      od.insert(od.end(), ell.begin(), ell.end());
    } else {
      auto it = dims.find(c);
      if (it == dims.end() && explicit_out) {
        bool any_unranked = false;
        for (size_t i = 0; i < ctx.num_inputs(); ++i) any_unranked |= !ctx.input(i).shape.has_rank();
        if (!any_unranked) return ctx.Error("output label '", c, "' does not appear in any input");
      }
      od.push_back(it == dims.end() ? Dim::Unknown() : it->second);
    }
  }
  ctx.outputs[0] = TensorType{dt, Shape(std::move(od))};
  return Status::Ok();
}

void Reg(OpRegistry& r, const char* name, int min_in, int max_in, InferFn fn, int min_out = 1, int max_out = 1) {
  OpSchema s;
  s.name = name;
  s.min_inputs = min_in;
  s.max_inputs = max_in;
  s.min_outputs = min_out;
  s.max_outputs = max_out;
  s.infer = std::move(fn);
  r.Register(std::move(s));
}

}  // namespace

void RegisterIndexingOps(OpRegistry& r) {
  Reg(r, "Scatter", 3, 3, InferScatterElements);
  Reg(r, "ScatterElements", 3, 3, InferScatterElements);
  Reg(r, "ScatterND", 3, 3, InferScatterND);
  Reg(r, "TensorScatter", 2, 3, InferTensorScatter);
  Reg(r, "GatherND", 2, 2, InferGatherND);
  Reg(r, "OneHot", 3, 3, InferOneHot);
  Reg(r, "DepthToSpace", 1, 1, InferDepthToSpace);
  Reg(r, "SpaceToDepth", 1, 1, InferSpaceToDepth);
  Reg(r, "Compress", 2, 2, InferCompress);
  Reg(r, "NonZero", 1, 1, InferNonZero);
  Reg(r, "Unique", 1, 1, InferUnique, 1, 4);
  Reg(r, "EyeLike", 1, 1, InferEyeLike);
  Reg(r, "ReverseSequence", 2, 2, InferReverseSequence);
  Reg(r, "Einsum", 1, 1 << 20, InferEinsum);
  Reg(r, "Det", 1, 1, InferDet);
  Reg(r, "NonMaxSuppression", 2, 5, InferNms);
}

}  // namespace tessera
