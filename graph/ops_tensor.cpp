// Schemas of data-movement and shape ops (Reshape, Slice, Concat, Gather,
// ...), type conversions, constants, and control flow (If, Loop, Scan).
//
// Ops whose output shape depends on the values of an input (Reshape's shape,
// Slice's starts/ends, Expand/Tile/ConstantOfShape/Range, Pad's pads) compute
// it when that input is a known constant; otherwise they give what can be
// known without the values (usually the rank) and leave dims unknown.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "graph/op_schema.h"

namespace tessera {
namespace {

using OptInts = std::optional<std::vector<int64_t>>;
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

bool IsNumeric(DType t) { return IsFloatDType(t) || IsIntegerDType(t); }

Result<int64_t> AxisFor(const InferenceContext& ctx, int64_t axis, int64_t rank, const char* what = "") {
  auto a = NormalizeAxis(axis, rank);
  if (!a.ok()) return ctx.Error(what, a.status().message());
  return a;
}

// Checks that input i, when its dtype is known, is i64 (or i32 when allowed).
Status CheckIndexDType(const InferenceContext& ctx, size_t i, const char* what, bool allow_i32) {
  DType t = ctx.input(i).dtype;
  if (t == DType::kUndefined || t == DType::kI64 || (allow_i32 && t == DType::kI32)) return Status::Ok();
  return ctx.Error(what, " has dtype ", DTypeName(t), ", expected ", allow_i32 ? "i32 or i64" : "i64");
}

// The integer data of input i when it is a known constant; nullopt when the
// input is absent or not constant.
Result<OptInts> ConstInts(const InferenceContext& ctx, size_t i, const char* what) {
  if (!ctx.has_input(i)) return OptInts();
  const Tensor* t = ctx.constant(i);
  if (!t) return OptInts();
  if (t->rank() > 1) return ctx.Error(what, " must be 1-D, got shape ", Shape::FromInts(t->dims()).ToString());
  auto v = t->ToInt64Vector();
  if (!v.ok()) return ctx.Error(what, ": ", v.status().message());
  return OptInts(std::move(v).value());
}

// Length of a 1-D input when its shape says so; -1 when unknown.
int64_t KnownLength(const InferenceContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return -1;
  const Shape& s = ctx.input(i).shape;
  if (s.has_rank() && s.rank() == 1 && s.dim(0).is_known()) return s.dim(0).value;
  if (s.has_rank() && s.rank() == 0) return 1;
  return -1;
}

Shape UnknownDims(int64_t rank) { return Shape(std::vector<Dim>(static_cast<size_t>(rank), Dim::Unknown())); }

Status CheckStaticSize(const InferenceContext& ctx, const Shape& s) {
  if (auto ints = s.AsInts()) {
    auto n = CheckedNumElements(*ints);
    if (!n.ok()) return Status(n.status().code(), StrCat(ctx.node->Describe(), ": output shape ", s.ToString(), ": ",
                                                         n.status().message()));
  }
  return Status::Ok();
}

// Splits dims into the product of the known ones (overflow checked) and the
// rest (symbolic or unknown).
struct Factored {
  int64_t known = 1;
  std::vector<Dim> rest;
};

Result<Factored> Factor(const InferenceContext& ctx, const std::vector<Dim>& dims, int skip = -1) {
  Factored f;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (static_cast<int>(i) == skip) continue;
    if (!dims[i].is_known()) {
      f.rest.push_back(dims[i]);
    } else if (dims[i].value != 0 && f.known > kI64Max / dims[i].value) {
      return Status(StatusCode::kOutOfRange,
                    StrCat(ctx.node->Describe(), ": element count of ", Shape(dims).ToString(), " overflows int64"));
    } else {
      f.known *= dims[i].value;
    }
  }
  return f;
}

// True when the non-known dims of `a` and `b` are the same named symbols
// (as multisets), so their element counts differ only by the known factors.
bool SymbolsCancel(std::vector<Dim> a, const std::vector<Dim>& b) {
  for (const Dim& d : b) {
    if (d.symbol.empty()) return false;
    auto it = std::find_if(a.begin(), a.end(), [&](const Dim& x) { return x.symbol == d.symbol; });
    if (it == a.end()) return false;
    a.erase(it);
  }
  return a.empty();
}

// Product of dims as one Dim: known when all are known, the one non-known
// dim when the others multiply to 1, else unknown.
Result<Dim> DimProduct(const InferenceContext& ctx, const std::vector<Dim>& dims) {
  TSR_ASSIGN_OR_RETURN(Factored f, Factor(ctx, dims));
  if (f.rest.empty()) return Dim::Known(f.known);
  if (f.known == 0) return Dim::Known(0);
  if (f.rest.size() == 1 && f.known == 1) return f.rest[0];
  return Dim::Unknown();
}

// ---- Reshape, Flatten, Transpose, Squeeze, Unsqueeze ----

// Reshape: 0 copies the input dim (unless allowzero, opset 14+), one -1 is
// inferred from the element count.
Status InferReshape(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "shape", false));
  const Shape& ss = ctx.input(1).shape;
  if (ss.has_rank() && ss.rank() != 1) return ctx.Error("shape input must be 1-D, got shape ", ss.ToString());
  bool allowzero = ctx.opset >= 14 && ctx.node->GetInt("allowzero", 0) != 0;
  TSR_ASSIGN_OR_RETURN(OptInts target, ConstInts(ctx, 1, "shape"));
  if (!target) {
    int64_t n = KnownLength(ctx, 1);
    ctx.outputs[0] = TensorType{x.dtype, n >= 0 ? UnknownDims(n) : Shape::UnknownRank()};
    return Status::Ok();
  }
  std::vector<Dim> out;
  int infer_at = -1;
  bool has_zero = false;
  for (size_t i = 0; i < target->size(); ++i) {
    int64_t v = (*target)[i];
    if (v == -1) {
      if (infer_at >= 0) return ctx.Error("shape ", Shape::FromInts(*target).ToString(), " has more than one -1");
      infer_at = static_cast<int>(i);
      out.push_back(Dim::Unknown());
    } else if (v == 0 && !allowzero) {
      if (x.shape.has_rank() && static_cast<int>(i) >= x.shape.rank())
        return ctx.Error("shape ", Shape::FromInts(*target).ToString(), " has 0 at index ", i,
                         " but the input ", x.shape.ToString(), " has no dim to copy there");
      out.push_back(x.shape.has_rank() ? x.shape.dim(static_cast<int>(i)) : Dim::Unknown());
    } else if (v < 0) {
      return ctx.Error("shape ", Shape::FromInts(*target).ToString(), " has invalid dim ", v, " at index ", i);
    } else {
      has_zero = has_zero || v == 0;
      out.push_back(Dim::Known(v));
    }
  }
  if (allowzero && has_zero && infer_at >= 0)
    return ctx.Error("shape ", Shape::FromInts(*target).ToString(), " has both 0 and -1 with allowzero=1");
  if (x.shape.has_rank()) {
    TSR_ASSIGN_OR_RETURN(Factored in, Factor(ctx, x.shape.dims()));
    TSR_ASSIGN_OR_RETURN(Factored o, Factor(ctx, out, infer_at));
    auto mismatch = [&]() {
      return ctx.Error("cannot reshape ", x.shape.ToString(), " to ", Shape::FromInts(*target).ToString(),
                       ": element counts differ");
    };
    if (SymbolsCancel(in.rest, o.rest)) {
      if (infer_at >= 0) {
        if (o.known == 0) {
          if (in.known != 0) return mismatch();  // -1 is undetermined when the rest is empty
        } else {
          if (in.known % o.known != 0) return mismatch();
          out[static_cast<size_t>(infer_at)] = Dim::Known(in.known / o.known);
        }
      } else if (in.known != o.known) {
        return mismatch();
      }
    }
  }
  Shape s(std::move(out));
  TSR_RETURN_IF_ERROR(CheckStaticSize(ctx, s));
  ctx.outputs[0] = TensorType{x.dtype, std::move(s)};
  return Status::Ok();
}

Status InferFlatten(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!x.shape.has_rank()) {
    ctx.outputs[0] = TensorType{x.dtype, UnknownDims(2)};
    return Status::Ok();
  }
  int64_t r = x.shape.rank();
  int64_t axis = ctx.node->GetInt("axis", 1);
  if (axis < -r || axis > r)
    return ctx.Error("axis ", axis, " is out of range for rank ", r, " (valid: ", -r, " to ", r, ")");
  if (axis < 0) axis += r;
  const auto& d = x.shape.dims();
  TSR_ASSIGN_OR_RETURN(Dim outer, DimProduct(ctx, std::vector<Dim>(d.begin(), d.begin() + axis)));
  TSR_ASSIGN_OR_RETURN(Dim inner, DimProduct(ctx, std::vector<Dim>(d.begin() + axis, d.end())));
  ctx.outputs[0] = TensorType{x.dtype, Shape({outer, inner})};
  return Status::Ok();
}

Status InferTranspose(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  std::vector<int64_t> perm = ctx.node->GetInts("perm");
  if (!x.shape.has_rank()) {
    Shape s = perm.empty() ? Shape::UnknownRank() : UnknownDims(static_cast<int64_t>(perm.size()));
    ctx.outputs[0] = TensorType{x.dtype, std::move(s)};
    return Status::Ok();
  }
  int r = x.shape.rank();
  if (perm.empty())
    for (int i = r - 1; i >= 0; --i) perm.push_back(i);
  if (static_cast<int>(perm.size()) != r)
    return ctx.Error("perm has ", perm.size(), " entries, input ", x.shape.ToString(), " has rank ", r);
  std::vector<bool> seen(static_cast<size_t>(r), false);
  std::vector<Dim> out;
  for (int64_t p : perm) {
    if (p < 0 || p >= r || seen[static_cast<size_t>(p)])
      return ctx.Error("perm ", Shape::FromInts(perm).ToString(), " is not a permutation of 0..", r - 1);
    seen[static_cast<size_t>(p)] = true;
    out.push_back(x.shape.dim(static_cast<int>(p)));
  }
  ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(out))};
  return Status::Ok();
}

// Reads `axes` for Squeeze/Unsqueeze: an attribute before opset 13, input 1
// from 13 on. Sets *known=false when the input is not constant.
Result<std::vector<int64_t>> ReadAxes13(const InferenceContext& ctx, bool* known) {
  *known = true;
  if (ctx.opset < 13) {
    if (ctx.num_inputs() > 1) return ctx.Error("takes axes as an attribute before opset 13, not as an input");
    return ctx.node->GetInts("axes");
  }
  if (ctx.node->has_attr("axes")) return ctx.Error("takes axes as input 1 since opset 13, not as an attribute");
  if (!ctx.has_input(1)) return std::vector<int64_t>();
  TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "axes", false));
  TSR_ASSIGN_OR_RETURN(OptInts axes, ConstInts(ctx, 1, "axes"));
  if (!axes) {
    *known = false;
    return std::vector<int64_t>();
  }
  return std::move(*axes);
}

// Normalizes axes for `rank` into a mask; errors on out-of-range or repeated axes.
Result<std::vector<bool>> AxesMask(const InferenceContext& ctx, const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<bool> mask(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    TSR_ASSIGN_OR_RETURN(int64_t n, AxisFor(ctx, a, rank, "axes: "));
    if (mask[static_cast<size_t>(n)]) return ctx.Error("axes: axis ", a, " appears twice");
    mask[static_cast<size_t>(n)] = true;
  }
  return mask;
}

Status InferSqueeze(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  bool known = true;
  TSR_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ReadAxes13(ctx, &known));
  if (!x.shape.has_rank()) {
    ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
    return Status::Ok();
  }
  int r = x.shape.rank();
  if (!known) {
    int64_t k = KnownLength(ctx, 1);
    ctx.outputs[0] = TensorType{x.dtype, k >= 0 && k <= r ? UnknownDims(r - k) : Shape::UnknownRank()};
    return Status::Ok();
  }
  std::vector<Dim> out;
  if (axes.empty()) {  // squeeze every dim of size 1; unknowable with non-static dims
    for (const Dim& d : x.shape.dims()) {
      if (!d.is_known()) {
        ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
        return Status::Ok();
      }
      if (d.value != 1) out.push_back(d);
    }
  } else {
    TSR_ASSIGN_OR_RETURN(std::vector<bool> mask, AxesMask(ctx, axes, r));
    for (int i = 0; i < r; ++i) {
      const Dim& d = x.shape.dim(i);
      if (!mask[static_cast<size_t>(i)]) {
        out.push_back(d);
      } else if (d.is_known() && d.value != 1) {
        return ctx.Error("cannot squeeze axis ", i, " of size ", d.value, " in shape ", x.shape.ToString());
      }
    }
  }
  ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(out))};
  return Status::Ok();
}

Status InferUnsqueeze(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  bool known = true;
  TSR_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ReadAxes13(ctx, &known));
  if (ctx.opset >= 13 ? !ctx.has_input(1) : !ctx.node->has_attr("axes"))
    return ctx.Error(ctx.opset >= 13 ? "input 1 (axes) is required" : "attribute axes is required");
  if (!x.shape.has_rank()) {
    ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
    return Status::Ok();
  }
  int64_t r = x.shape.rank();
  if (!known) {
    int64_t k = KnownLength(ctx, 1);
    ctx.outputs[0] = TensorType{x.dtype, k >= 0 ? UnknownDims(r + k) : Shape::UnknownRank()};
    return Status::Ok();
  }
  int64_t out_rank = r + static_cast<int64_t>(axes.size());
  TSR_ASSIGN_OR_RETURN(std::vector<bool> mask, AxesMask(ctx, axes, out_rank));
  std::vector<Dim> out;
  int next = 0;
  for (int64_t i = 0; i < out_rank; ++i)
    out.push_back(mask[static_cast<size_t>(i)] ? Dim::Known(1) : x.shape.dim(next++));
  ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(out))};
  return Status::Ok();
}

// ---- Concat, Split, Slice ----

Status InferConcat(InferenceContext& ctx) {
  if (!ctx.node->has_attr("axis")) return ctx.Error("attribute axis is required");
  DType dt = DType::kUndefined;
  int rank = -1;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return ctx.Error("input ", i, " is missing");
    const TensorType& t = ctx.input(i);
    if (t.dtype != DType::kUndefined) {
      if (dt != DType::kUndefined && dt != t.dtype)
        return ctx.Error("input dtypes differ: ", DTypeName(dt), " vs ", DTypeName(t.dtype), " (input ", i, ")");
      dt = t.dtype;
    }
    if (t.shape.has_rank()) {
      if (rank >= 0 && rank != t.shape.rank())
        return ctx.Error("input ranks differ: ", rank, " vs ", t.shape.rank(), " (input ", i, ")");
      rank = t.shape.rank();
    }
  }
  if (rank < 0) {
    ctx.outputs[0] = TensorType{dt, Shape::UnknownRank()};
    return Status::Ok();
  }
  TSR_ASSIGN_OR_RETURN(int64_t axis, AxisFor(ctx, ctx.node->GetInt("axis", 0), rank));
  std::vector<Dim> out(static_cast<size_t>(rank), Dim::Unknown());
  bool first = true;
  bool sum_known = true;
  int64_t sum = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Shape& s = ctx.input(i).shape;
    if (!s.has_rank()) {
      sum_known = false;
      continue;
    }
    for (int d = 0; d < rank; ++d) {
      const Dim& v = s.dim(d);
      if (d == axis) {
        if (!v.is_known()) sum_known = false;
        else if (__builtin_add_overflow(sum, v.value, &sum))
          return Status(StatusCode::kOutOfRange, StrCat(ctx.node->Describe(), ": concatenated dim overflows int64"));
        continue;
      }
      Dim& o = out[static_cast<size_t>(d)];
      if (first) {
        o = v;
      } else if (o.is_known() && v.is_known() && o.value != v.value) {
        return ctx.Error("input ", i, " has shape ", s.ToString(), ", which differs at dim ", d, " from ",
                         o.value, " (only axis ", axis, " may differ)");
      } else if (!o.is_known() && (v.is_known() || o.symbol.empty())) {
        o = v;
      }
    }
    first = false;
  }
  out[static_cast<size_t>(axis)] = sum_known ? Dim::Known(sum) : Dim::Unknown();
  ctx.outputs[0] = TensorType{dt, Shape(std::move(out))};
  return Status::Ok();
}

// Split: sizes from the `split` attribute (before 13) or input (13+); with no
// sizes, an equal split into the outputs (opset 18: num_outputs, the last
// chunk may be smaller; before 18 the dim must divide evenly).
Status InferSplit(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  size_t n = ctx.outputs.size();
  OptInts sizes;
  bool sizes_unknown = false;
  if (ctx.opset < 13) {
    if (ctx.num_inputs() > 1) return ctx.Error("takes split as an attribute before opset 13, not as an input");
    if (ctx.node->has_attr("split")) sizes = ctx.node->GetInts("split");
  } else {
    if (ctx.node->has_attr("split")) return ctx.Error("takes split as input 1 since opset 13, not as an attribute");
    if (ctx.has_input(1)) {
      TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "split", false));
      TSR_ASSIGN_OR_RETURN(sizes, ConstInts(ctx, 1, "split"));
      sizes_unknown = !sizes;
      if (sizes && sizes->empty()) sizes.reset();
    }
  }
  if (ctx.opset >= 18 && ctx.node->has_attr("num_outputs")) {
    if (ctx.has_input(1)) return ctx.Error("takes either the split input or num_outputs, not both");
    int64_t k = ctx.node->GetInt("num_outputs", 0);
    if (k < 1 || static_cast<size_t>(k) != n)
      return ctx.Error("num_outputs is ", k, " but the node has ", n, " outputs");
  }
  if (!x.shape.has_rank()) {
    for (auto& o : ctx.outputs) o = TensorType{x.dtype, Shape::UnknownRank()};
    return Status::Ok();
  }
  TSR_ASSIGN_OR_RETURN(int64_t axis, AxisFor(ctx, ctx.node->GetInt("axis", 0), x.shape.rank()));
  const Dim& d = x.shape.dim(static_cast<int>(axis));
  std::vector<Dim> parts(n, Dim::Unknown());
  if (sizes) {
    if (sizes->size() != n) return ctx.Error("split has ", sizes->size(), " sizes but the node has ", n, " outputs");
    int64_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      int64_t s = (*sizes)[i];
      if (s < 0) return ctx.Error("split size ", s, " at index ", i, " is negative");
      if (__builtin_add_overflow(total, s, &total)) return ctx.Error("split sizes overflow int64");
      parts[i] = Dim::Known(s);
    }
    if (d.is_known() && total != d.value)
      return ctx.Error("split sizes ", Shape::FromInts(*sizes).ToString(), " add up to ", total, ", but axis ", axis,
                       " of ", x.shape.ToString(), " has ", d.value);
  } else if (!sizes_unknown && d.is_known()) {
    int64_t k = static_cast<int64_t>(n);
    if (ctx.opset >= 18) {
      int64_t chunk = d.value / k + (d.value % k != 0 ? 1 : 0);
      int64_t last = d.value - chunk * (k - 1);
      if (last < 0) return ctx.Error("cannot split dim of size ", d.value, " into ", k, " outputs");
      for (size_t i = 0; i < n; ++i) parts[i] = Dim::Known(i + 1 == n ? last : chunk);
    } else {
      if (d.value % k != 0)
        return ctx.Error("cannot split dim of size ", d.value, " evenly into ", k, " outputs (opset ", ctx.opset, ")");
      for (auto& p : parts) p = Dim::Known(d.value / k);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    std::vector<Dim> dims = x.shape.dims();
    dims[static_cast<size_t>(axis)] = parts[i];
    ctx.outputs[i] = TensorType{x.dtype, Shape(std::move(dims))};
  }
  return Status::Ok();
}

// Number of elements a slice selects from a dim of size `dim` (ONNX clamping).
int64_t SliceLength(int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (dim == 0) return 0;
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    if (end <= start) return 0;
    return static_cast<int64_t>((static_cast<uint64_t>(end - start) - 1) / static_cast<uint64_t>(step) + 1);
  }
  start = std::clamp<int64_t>(start, 0, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  if (start <= end) return 0;
  uint64_t astep = uint64_t{0} - static_cast<uint64_t>(step);
  return static_cast<int64_t>((static_cast<uint64_t>(start - end) - 1) / astep + 1);
}

// Slice: starts/ends/axes are attributes before opset 10; from 10 they are
// inputs 1..3 and steps input 4.
Status InferSlice(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  OptInts starts, ends, axes, steps;
  bool axes_given = false;
  bool values_known = true;  // false when steps is given but not constant
  if (ctx.opset < 10) {
    if (ctx.num_inputs() > 1) return ctx.Error("takes starts/ends/axes as attributes before opset 10, not as inputs");
    if (!ctx.node->has_attr("starts") || !ctx.node->has_attr("ends"))
      return ctx.Error("attributes starts and ends are required");
    starts = ctx.node->GetInts("starts");
    ends = ctx.node->GetInts("ends");
    axes_given = ctx.node->has_attr("axes");
    if (axes_given) axes = ctx.node->GetInts("axes");
  } else {
    if (!ctx.has_input(1) || !ctx.has_input(2)) return ctx.Error("inputs starts and ends are required");
    static const char* kNames[] = {"", "starts", "ends", "axes", "steps"};
    for (size_t i = 1; i < 5; ++i)
      if (ctx.has_input(i)) TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, i, kNames[i], true));
    TSR_ASSIGN_OR_RETURN(starts, ConstInts(ctx, 1, "starts"));
    TSR_ASSIGN_OR_RETURN(ends, ConstInts(ctx, 2, "ends"));
    axes_given = ctx.has_input(3);
    TSR_ASSIGN_OR_RETURN(axes, ConstInts(ctx, 3, "axes"));
    TSR_ASSIGN_OR_RETURN(steps, ConstInts(ctx, 4, "steps"));
    values_known = !ctx.has_input(4) || steps.has_value();
  }
  if (!x.shape.has_rank()) {
    ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
    return Status::Ok();
  }
  int r = x.shape.rank();
  std::vector<Dim> out = x.shape.dims();
  if (!starts || !ends || !values_known || (axes_given && !axes)) {
    // Which elements is unknown: the sliced axes (all, unless axes is known) lose their size.
    std::vector<bool> touched(static_cast<size_t>(r), !axes_given || !axes);
    if (axes_given && axes) {
      TSR_ASSIGN_OR_RETURN(touched, AxesMask(ctx, *axes, r));
    }
    for (int i = 0; i < r; ++i)
      if (touched[static_cast<size_t>(i)]) out[static_cast<size_t>(i)] = Dim::Unknown();
    ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(out))};
    return Status::Ok();
  }
  size_t k = starts->size();
  if (ends->size() != k) return ctx.Error("starts has ", k, " values but ends has ", ends->size());
  if (!axes_given) {
    axes = std::vector<int64_t>();
    for (size_t i = 0; i < k; ++i) axes->push_back(static_cast<int64_t>(i));
  }
  if (axes->size() != k) return ctx.Error("axes has ", axes->size(), " values, starts has ", k);
  if (!steps) steps = std::vector<int64_t>(k, 1);
  if (steps->size() != k) return ctx.Error("steps has ", steps->size(), " values, starts has ", k);
  TSR_RETURN_IF_ERROR(AxesMask(ctx, *axes, r).status());
  for (size_t i = 0; i < k; ++i) {
    int64_t a = (*axes)[i] < 0 ? (*axes)[i] + r : (*axes)[i];
    int64_t st = (*steps)[i];
    if (st == 0) return ctx.Error("step at index ", i, " is 0");
    Dim& d = out[static_cast<size_t>(a)];
    if (d.is_known()) {
      d = Dim::Known(SliceLength(d.value, (*starts)[i], (*ends)[i], st));
    } else if (!((*starts)[i] == 0 && st == 1 && (*ends)[i] >= std::numeric_limits<int32_t>::max())) {
      d = Dim::Unknown();  // a full slice keeps a symbolic dim; anything else does not
    }
  }
  ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(out))};
  return Status::Ok();
}

// ---- Gather, GatherElements, Expand, Tile, Pad, Trilu ----

Status InferGather(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& idx = ctx.input(1);
  TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "indices", true));
  if (!x.shape.has_rank() || !idx.shape.has_rank()) {
    ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
    return Status::Ok();
  }
  TSR_ASSIGN_OR_RETURN(int64_t axis, AxisFor(ctx, ctx.node->GetInt("axis", 0), x.shape.rank()));
  const Dim& d = x.shape.dim(static_cast<int>(axis));
  if (const Tensor* t = ctx.constant(1); t && d.is_known()) {
    for (int64_t i = 0; i < t->num_elements(); ++i) {
      int64_t v = t->GetAsInt64(i);
      if (v < -d.value || v >= d.value)
        return Status(StatusCode::kOutOfRange, StrCat(ctx.node->Describe(), ": index ", v, " is out of range for axis ",
                                                      axis, " of size ", d.value));
    }
  }
  std::vector<Dim> out(x.shape.dims().begin(), x.shape.dims().begin() + axis);
  out.insert(out.end(), idx.shape.dims().begin(), idx.shape.dims().end());
  out.insert(out.end(), x.shape.dims().begin() + axis + 1, x.shape.dims().end());
  ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(out))};
  return Status::Ok();
}

Status InferGatherElements(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& idx = ctx.input(1);
  TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "indices", true));
  if (x.shape.has_rank() && idx.shape.has_rank() && x.shape.rank() != idx.shape.rank())
    return ctx.Error("data ", x.shape.ToString(), " and indices ", idx.shape.ToString(), " must have the same rank");
  if (x.shape.has_rank()) TSR_RETURN_IF_ERROR(AxisFor(ctx, ctx.node->GetInt("axis", 0), x.shape.rank()).status());
  ctx.outputs[0] = TensorType{x.dtype, idx.shape};
  return Status::Ok();
}

Status InferExpand(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "shape", false));
  TSR_ASSIGN_OR_RETURN(OptInts target, ConstInts(ctx, 1, "shape"));
  Shape t = Shape::UnknownRank();
  if (target) {
    for (int64_t v : *target)
      if (v < 0) return ctx.Error("shape ", Shape::FromInts(*target).ToString(), " has a negative dim");
    t = Shape::FromInts(*target);
  } else if (int64_t n = KnownLength(ctx, 1); n >= 0) {
    t = UnknownDims(n);
  }
  auto b = BroadcastShapes(x.shape, t);
  if (!b.ok()) return ctx.Error(b.status().message());
  TSR_RETURN_IF_ERROR(CheckStaticSize(ctx, *b));
  ctx.outputs[0] = TensorType{x.dtype, std::move(b).value()};
  return Status::Ok();
}

Status InferTile(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "repeats", false));
  TSR_ASSIGN_OR_RETURN(OptInts reps, ConstInts(ctx, 1, "repeats"));
  if (!x.shape.has_rank()) {
    int64_t n = reps ? static_cast<int64_t>(reps->size()) : KnownLength(ctx, 1);
    ctx.outputs[0] = TensorType{x.dtype, n >= 0 ? UnknownDims(n) : Shape::UnknownRank()};
    return Status::Ok();
  }
  int r = x.shape.rank();
  int64_t len = reps ? static_cast<int64_t>(reps->size()) : KnownLength(ctx, 1);
  if (len >= 0 && len != r)
    return ctx.Error("repeats has ", len, " values, input ", x.shape.ToString(), " has rank ", r);
  if (!reps) {
    ctx.outputs[0] = TensorType{x.dtype, UnknownDims(r)};
    return Status::Ok();
  }
  std::vector<Dim> out;
  for (int i = 0; i < r; ++i) {
    int64_t k = (*reps)[static_cast<size_t>(i)];
    const Dim& d = x.shape.dim(i);
    if (k < 0) return ctx.Error("repeats has negative value ", k, " at index ", i);
    int64_t prod = 0;
    if (d.is_known()) {
      if (__builtin_mul_overflow(d.value, k, &prod))
        return Status(StatusCode::kOutOfRange, StrCat(ctx.node->Describe(), ": tiled dim ", i, " overflows int64"));
      out.push_back(Dim::Known(prod));
    } else {
      out.push_back(k == 1 ? d : k == 0 ? Dim::Known(0) : Dim::Unknown());
    }
  }
  Shape s(std::move(out));
  TSR_RETURN_IF_ERROR(CheckStaticSize(ctx, s));
  ctx.outputs[0] = TensorType{x.dtype, std::move(s)};
  return Status::Ok();
}

// Pad: pads (and value) are attributes before opset 11; from 11 pads and
// constant_value are inputs, and from 18 an optional axes input.
// pads = [begin of each axis..., end of each axis...]; negative pads crop.
Status InferPad(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  std::string mode = ctx.node->GetString("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && !(mode == "wrap" && ctx.opset >= 19))
    return ctx.Error("unknown mode \"", mode, "\"");
  OptInts pads, axes;
  bool axes_given = false;
  if (ctx.opset < 11) {
    if (ctx.num_inputs() > 1) return ctx.Error("takes pads as an attribute before opset 11, not as an input");
    if (!ctx.node->has_attr("pads")) return ctx.Error("attribute pads is required");
    pads = ctx.node->GetInts("pads");
  } else {
    if (!ctx.has_input(1)) return ctx.Error("input 1 (pads) is required");
    TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "pads", false));
    TSR_ASSIGN_OR_RETURN(pads, ConstInts(ctx, 1, "pads"));
    if (ctx.has_input(2)) {
      DType v = ctx.input(2).dtype;
      if (v != DType::kUndefined && x.dtype != DType::kUndefined && v != x.dtype)
        return ctx.Error("constant_value has dtype ", DTypeName(v), ", input has ", DTypeName(x.dtype));
    }
    if (ctx.has_input(3)) {
      if (ctx.opset < 18) return ctx.Error("has no axes input before opset 18");
      TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 3, "axes", true));
      axes_given = true;
      TSR_ASSIGN_OR_RETURN(axes, ConstInts(ctx, 3, "axes"));
    }
  }
  if (!x.shape.has_rank()) {
    ctx.outputs[0] = TensorType{x.dtype, Shape::UnknownRank()};
    return Status::Ok();
  }
  int r = x.shape.rank();
  std::vector<int64_t> ax;
  if (axes_given && axes) {
    TSR_RETURN_IF_ERROR(AxesMask(ctx, *axes, r).status());
    for (int64_t a : *axes) ax.push_back(a < 0 ? a + r : a);
  } else if (!axes_given) {
    for (int i = 0; i < r; ++i) ax.push_back(i);
  }
  std::vector<Dim> out = x.shape.dims();
  if (!pads || (axes_given && !axes)) {
    if (axes_given && !axes) ax.clear();
    if (ax.empty()) {  // which axes is unknown: all may change
      for (int i = 0; i < r; ++i) ax.push_back(i);
    }
    for (int64_t a : ax) out[static_cast<size_t>(a)] = Dim::Unknown();
    ctx.outputs[0] = TensorType{x.dtype, Shape(std::move(out))};
    return Status::Ok();
  }
  size_t k = ax.size();
  if (pads->size() != 2 * k)
    return ctx.Error("pads has ", pads->size(), " values, expected ", 2 * k, " (2 per padded axis)");
  for (size_t i = 0; i < k; ++i) {
    int64_t b = (*pads)[i], e = (*pads)[i + k];
    Dim& d = out[static_cast<size_t>(ax[i])];
    if (d.is_known()) {
      int64_t v = 0;
      if (__builtin_add_overflow(d.value, b, &v) || __builtin_add_overflow(v, e, &v))
        return Status(StatusCode::kOutOfRange, StrCat(ctx.node->Describe(), ": padded dim overflows int64"));
      if (v < 0)
        return ctx.Error("pads ", b, " and ", e, " on axis ", ax[i], " of size ", d.value, " give a negative size");
      d = Dim::Known(v);
    } else if (b != 0 || e != 0) {
      d = Dim::Unknown();
    }
  }
  if (mode != "constant") {
    for (size_t i = 0; i < k; ++i) {
      const Dim& d = x.shape.dim(static_cast<int>(ax[i]));
      if (d.is_known() && d.value == 0 && ((*pads)[i] > 0 || (*pads)[i + k] > 0))
        return ctx.Error("mode \"", mode, "\" cannot pad axis ", ax[i], " of size 0");
    }
  }
  Shape s(std::move(out));
  TSR_RETURN_IF_ERROR(CheckStaticSize(ctx, s));
  ctx.outputs[0] = TensorType{x.dtype, std::move(s)};
  return Status::Ok();
}

Status InferTrilu(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.shape.has_rank() && x.shape.rank() < 2)
    return ctx.Error("input must have rank >= 2, got shape ", x.shape.ToString());
  if (ctx.has_input(1)) {
    TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 1, "k", false));
    const Shape& ks = ctx.input(1).shape;
    if (ks.has_rank() && ks.rank() != 0) return ctx.Error("k must be a scalar, got shape ", ks.ToString());
  }
  ctx.outputs[0] = x;
  return Status::Ok();
}

// ---- Cast, CastLike, Identity, Shape, Size, Constant, ConstantOfShape, Range ----

Status InferCast(InferenceContext& ctx) {
  if (!ctx.node->has_attr("to")) return ctx.Error("attribute 'to' is required");
  int64_t to = ctx.node->GetInt("to", 0);
  if (to < 1 || to > std::numeric_limits<int32_t>::max() || !IsKnownDType(static_cast<int32_t>(to)))
    return ctx.Error("attribute 'to' is ", to, ", not a supported dtype");
  ctx.outputs[0] = TensorType{static_cast<DType>(to), ctx.input(0).shape};
  return Status::Ok();
}

Status InferCastLike(InferenceContext& ctx) {
  ctx.outputs[0] = TensorType{ctx.input(1).dtype, ctx.input(0).shape};
  return Status::Ok();
}

Status InferIdentity(InferenceContext& ctx) {
  ctx.outputs[0] = ctx.input(0);
  return Status::Ok();
}

// Shape: from opset 15, start/end select a range of dims (negative counts from
// the back, clamped to [0, rank]).
Status InferShape(InferenceContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  if (!x.has_rank()) {
    ctx.outputs[0] = TensorType{DType::kI64, UnknownDims(1)};
    return Status::Ok();
  }
  int64_t r = x.rank();
  int64_t start = 0, end = r;
  if (ctx.opset >= 15) {
    start = ctx.node->GetInt("start", 0);
    end = ctx.node->GetInt("end", r);
  }
  auto norm = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  start = norm(start);
  end = norm(end);
  ctx.outputs[0] = TensorType{DType::kI64, Shape::FromInts({std::max<int64_t>(end - start, 0)})};
  return Status::Ok();
}

Status InferSize(InferenceContext& ctx) {
  ctx.outputs[0] = TensorType{DType::kI64, Shape()};
  return Status::Ok();
}

Status InferConstant(InferenceContext& ctx) {
  const auto& attrs = ctx.node->attrs();
  if (attrs.size() != 1)
    return ctx.Error("needs exactly one of value, value_float(s), value_int(s), value_string(s); got ", attrs.size(),
                     " attributes");
  const auto& [name, a] = *attrs.begin();
  auto n = [](size_t k) { return Shape::FromInts({static_cast<int64_t>(k)}); };
  if (name == "value" && a.type == AttrType::kTensor) ctx.outputs[0] = a.t.type();
  else if (name == "value_float" && a.type == AttrType::kFloat) ctx.outputs[0] = TensorType{DType::kF32, Shape()};
  else if (name == "value_floats" && a.type == AttrType::kFloats)
    ctx.outputs[0] = TensorType{DType::kF32, n(a.floats.size())};
  else if (name == "value_int" && a.type == AttrType::kInt) ctx.outputs[0] = TensorType{DType::kI64, Shape()};
  else if (name == "value_ints" && a.type == AttrType::kInts)
    ctx.outputs[0] = TensorType{DType::kI64, n(a.ints.size())};
  else if (name == "value_string" && a.type == AttrType::kString) ctx.outputs[0] = TensorType{DType::kString, Shape()};
  else if (name == "value_strings" && a.type == AttrType::kStrings)
    ctx.outputs[0] = TensorType{DType::kString, n(a.strings.size())};
  else if (name == "sparse_value") return Unsupported(ctx.node->Describe(), ": sparse_value is not supported");
  else return ctx.Error("unexpected attribute '", name, "'");
  return Status::Ok();
}

Status InferConstantOfShape(InferenceContext& ctx) {
  TSR_RETURN_IF_ERROR(CheckIndexDType(ctx, 0, "shape", false));
  DType dt = DType::kF32;
  if (const Attribute* v = ctx.node->attr("value")) {
    if (v->type != AttrType::kTensor || v->t.num_elements() != 1)
      return ctx.Error("attribute 'value' must be a one-element tensor");
    dt = v->t.dtype();
  }
  const Shape& ss = ctx.input(0).shape;
  if (ss.has_rank() && ss.rank() != 1) return ctx.Error("shape input must be 1-D, got shape ", ss.ToString());
  TSR_ASSIGN_OR_RETURN(OptInts dims, ConstInts(ctx, 0, "shape"));
  if (!dims) {
    int64_t n = KnownLength(ctx, 0);
    ctx.outputs[0] = TensorType{dt, n >= 0 ? UnknownDims(n) : Shape::UnknownRank()};
    return Status::Ok();
  }
  for (int64_t d : *dims)
    if (d < 0) return ctx.Error("shape ", Shape::FromInts(*dims).ToString(), " has a negative dim");
  Shape s = Shape::FromInts(*dims);
  TSR_RETURN_IF_ERROR(CheckStaticSize(ctx, s));
  ctx.outputs[0] = TensorType{dt, std::move(s)};
  return Status::Ok();
}

// Range(start, limit, delta): max(ceil((limit - start) / delta), 0) elements.
Status InferRange(InferenceContext& ctx) {
  static const char* kNames[] = {"start", "limit", "delta"};
  DType dt = DType::kUndefined;
  for (size_t i = 0; i < 3; ++i) {
    const TensorType& t = ctx.input(i);
    if (t.dtype != DType::kUndefined) {
      if (!IsNumeric(t.dtype))
        return ctx.Error(kNames[i], " has dtype ", DTypeName(t.dtype), ", expected a numeric type");
      if (dt != DType::kUndefined && dt != t.dtype)
        return ctx.Error(kNames[i], " has dtype ", DTypeName(t.dtype), ", expected ", DTypeName(dt));
      dt = t.dtype;
    }
    // A scalar; a one-element tensor is tolerated. Only a known dim != 1 is an error.
    for (const Dim& d : t.shape.has_rank() ? t.shape.dims() : std::vector<Dim>())
      if (d.is_known() && d.value != 1)
        return ctx.Error(kNames[i], " must be a scalar, got shape ", t.shape.ToString());
  }
  const Tensor* c[3] = {ctx.constant(0), ctx.constant(1), ctx.constant(2)};
  if (!c[0] || !c[1] || !c[2] || c[0]->num_elements() != 1 || c[1]->num_elements() != 1 ||
      c[2]->num_elements() != 1) {
    ctx.outputs[0] = TensorType{dt, UnknownDims(1)};
    return Status::Ok();
  }
  int64_t n = 0;
  if (IsFloatDType(c[0]->dtype())) {
    double s = c[0]->GetAsDouble(0), l = c[1]->GetAsDouble(0), d = c[2]->GetAsDouble(0);
    if (d == 0) return ctx.Error("delta is 0");
    double count = std::ceil((l - s) / d);
    if (!(count < 9.2e18)) return ctx.Error("range has too many elements (", count, ")");
    n = count > 0 ? static_cast<int64_t>(count) : 0;
  } else {
    __int128 s = c[0]->GetAsInt64(0), l = c[1]->GetAsInt64(0), d = c[2]->GetAsInt64(0);
    if (d == 0) return ctx.Error("delta is 0");
    __int128 diff = l - s;
    __int128 count = diff / d + ((diff % d != 0 && ((diff > 0) == (d > 0))) ? 1 : 0);
    if (count > kI64Max) return ctx.Error("range has too many elements");
    n = count > 0 ? static_cast<int64_t>(count) : 0;
  }
  ctx.outputs[0] = TensorType{dt, Shape::FromInts({n})};
  return Status::Ok();
}

// ---- Control flow ----

const Graph* GraphAttr(const InferenceContext& ctx, const char* name, Status* st) {
  const Attribute* a = ctx.node->attr(name);
  if (!a || a->type != AttrType::kGraph || !a->g) {
    *st = ctx.Error("attribute '", name, "' (a graph) is required");
    return nullptr;
  }
  return a->g.get();
}

bool IsUnset(const TensorType& t) { return t.dtype == DType::kUndefined && !t.shape.has_rank(); }

// If: outputs take the branches' output types; dims where the branches
// disagree become unknown.
Status InferIf(InferenceContext& ctx) {
  const TensorType& cond = ctx.input(0);
  if (cond.dtype != DType::kUndefined && cond.dtype != DType::kBool)
    return ctx.Error("cond has dtype ", DTypeName(cond.dtype), ", expected bool");
  auto cond_dims = cond.shape.AsInts();
  if (cond_dims && CheckedNumElements(*cond_dims).ok() && CheckedNumElements(*cond_dims).value() != 1)
    return ctx.Error("cond must have one element, got shape ", cond.shape.ToString());
  Status st;
  const Graph* then_g = GraphAttr(ctx, "then_branch", &st);
  if (!then_g) return st;
  const Graph* else_g = GraphAttr(ctx, "else_branch", &st);
  if (!else_g) return st;
  size_t n = ctx.outputs.size();
  if (then_g->outputs().size() != n || else_g->outputs().size() != n)
    return ctx.Error("has ", n, " outputs but then_branch has ", then_g->outputs().size(), " and else_branch ",
                     else_g->outputs().size());
  for (size_t i = 0; i < n; ++i) {
    const TensorType& a = then_g->outputs()[i]->type();
    const TensorType& b = else_g->outputs()[i]->type();
    if (IsUnset(b)) { ctx.outputs[i] = a; continue; }
    if (IsUnset(a)) { ctx.outputs[i] = b; continue; }
    if (a.dtype != DType::kUndefined && b.dtype != DType::kUndefined && a.dtype != b.dtype)
      return ctx.Error("output ", i, " is ", DTypeName(a.dtype), " in then_branch but ", DTypeName(b.dtype),
                       " in else_branch");
    TensorType t{a.dtype != DType::kUndefined ? a.dtype : b.dtype, Shape::UnknownRank()};
    if (a.shape.has_rank() && b.shape.has_rank() && a.shape.rank() == b.shape.rank()) {
      std::vector<Dim> d;
      for (int j = 0; j < a.shape.rank(); ++j)
        d.push_back(a.shape.dim(j) == b.shape.dim(j) ? a.shape.dim(j) : Dim::Unknown());
      t.shape = Shape(std::move(d));
    }
    ctx.outputs[i] = std::move(t);
  }
  return Status::Ok();
}

// A loop-carried value's final type: the initial type merged with the body's
// output type (dims that differ may change across iterations: unknown).
Result<TensorType> CarriedType(const InferenceContext& ctx, const TensorType& init, const TensorType& body,
                               size_t i) {
  if (IsUnset(body)) return init;
  if (IsUnset(init)) return body;
  if (init.dtype != DType::kUndefined && body.dtype != DType::kUndefined && init.dtype != body.dtype)
    return ctx.Error("loop-carried value ", i, " enters as ", DTypeName(init.dtype), " but the body returns ",
                     DTypeName(body.dtype));
  TensorType t{body.dtype != DType::kUndefined ? body.dtype : init.dtype, Shape::UnknownRank()};
  if (init.shape.has_rank() && body.shape.has_rank() && init.shape.rank() == body.shape.rank()) {
    std::vector<Dim> d;
    for (int j = 0; j < init.shape.rank(); ++j)
      d.push_back(init.shape.dim(j) == body.shape.dim(j) ? init.shape.dim(j) : Dim::Unknown());
    t.shape = Shape(std::move(d));
  }
  return t;
}

// Loop(M?, cond?, v_initial...): outputs N final carried values then K scan
// outputs, each a stack of per-iteration body outputs (leading dim unknown).
Status InferLoop(InferenceContext& ctx) {
  Status st;
  const Graph* body = GraphAttr(ctx, "body", &st);
  if (!body) return st;
  if (ctx.has_input(0) && ctx.input(0).dtype != DType::kUndefined && ctx.input(0).dtype != DType::kI64)
    return ctx.Error("M has dtype ", DTypeName(ctx.input(0).dtype), ", expected i64");
  if (ctx.has_input(1) && ctx.input(1).dtype != DType::kUndefined && ctx.input(1).dtype != DType::kBool)
    return ctx.Error("cond has dtype ", DTypeName(ctx.input(1).dtype), ", expected bool");
  size_t n_carried = ctx.num_inputs() > 2 ? ctx.num_inputs() - 2 : 0;
  const auto& bouts = body->outputs();
  if (bouts.size() < 1 + n_carried || ctx.outputs.size() != bouts.size() - 1)
    return ctx.Error("has ", n_carried, " loop-carried inputs and ", ctx.outputs.size(), " outputs, but the body has ",
                     bouts.size(), " outputs (expected 1 + carried + scan outputs)");
  for (size_t i = 0; i < n_carried; ++i) {
    if (!ctx.has_input(2 + i)) return ctx.Error("loop-carried input ", 2 + i, " is missing");
    TSR_ASSIGN_OR_RETURN(ctx.outputs[i], CarriedType(ctx, ctx.input(2 + i), bouts[1 + i]->type(), i));
  }
  for (size_t k = n_carried; k < ctx.outputs.size(); ++k) {
    const TensorType& b = bouts[1 + k]->type();
    TensorType t{b.dtype, Shape::UnknownRank()};
    if (b.shape.has_rank()) {
      std::vector<Dim> d{Dim::Unknown()};
      d.insert(d.end(), b.shape.dims().begin(), b.shape.dims().end());
      t.shape = Shape(std::move(d));
    }
    ctx.outputs[k] = std::move(t);
  }
  return Status::Ok();
}

// Scan, opset 9+: inputs N states then M scan inputs; outputs N final states
// then K scan outputs whose scan dim (length of the first scan input along
// its scan axis) is inserted at scan_output_axes[k] (default 0).
// Scan, opset 8: input 0 is the optional sequence_lens and every other input
// and output has a leading batch dim; scan inputs are [batch, seq, ...] and
// scan outputs [batch, seq, ...body output...].
Status InferScan(InferenceContext& ctx) {
  Status st;
  const Graph* body = GraphAttr(ctx, "body", &st);
  if (!body) return st;
  if (!ctx.node->has_attr("num_scan_inputs")) return ctx.Error("attribute num_scan_inputs is required");
  bool v8 = ctx.opset < 9;
  size_t first_in = v8 ? 1 : 0;
  int64_t m = ctx.node->GetInt("num_scan_inputs", 0);
  int64_t nin = static_cast<int64_t>(ctx.num_inputs()) - static_cast<int64_t>(first_in);
  if (m < 1 || m > nin) return ctx.Error("num_scan_inputs is ", m, " but the node has ", nin, " state and scan inputs");
  size_t n_state = static_cast<size_t>(nin - m);
  for (size_t i = first_in; i < ctx.num_inputs(); ++i)
    if (!ctx.has_input(i)) return ctx.Error("input ", i, " is missing");
  const auto& bouts = body->outputs();
  if (bouts.size() != ctx.outputs.size() || bouts.size() < n_state)
    return ctx.Error("has ", ctx.outputs.size(), " outputs but the body has ", bouts.size(), " (", n_state,
                     " states + scan outputs)");
  Dim seq = Dim::Unknown(), batch = Dim::Unknown();
  const Shape& first = ctx.input(first_in + n_state).shape;
  std::vector<int64_t> in_axes = ctx.node->GetInts("scan_input_axes");
  if (first.has_rank() && v8) {
    if (first.rank() < 2) return ctx.Error("scan input must be [batch, seq, ...], got shape ", first.ToString());
    batch = first.dim(0);
    seq = first.dim(1);
  } else if (first.has_rank()) {
    TSR_ASSIGN_OR_RETURN(int64_t a, AxisFor(ctx, in_axes.empty() ? 0 : in_axes[0], first.rank(), "scan_input_axes: "));
    seq = first.dim(static_cast<int>(a));
  }
  std::vector<int64_t> out_axes = ctx.node->GetInts("scan_output_axes");
  for (size_t i = 0; i < bouts.size(); ++i) {
    const TensorType& b = bouts[i]->type();
    TensorType t{b.dtype, Shape::UnknownRank()};
    if (i < n_state) {
      if (IsUnset(b) || !v8) {
        TSR_ASSIGN_OR_RETURN(ctx.outputs[i], CarriedType(ctx, ctx.input(first_in + i), b, i));
        continue;
      }
      if (b.shape.has_rank()) {  // opset 8: the batch dim in front
        std::vector<Dim> d{batch};
        d.insert(d.end(), b.shape.dims().begin(), b.shape.dims().end());
        t.shape = Shape(std::move(d));
      }
      ctx.outputs[i] = std::move(t);
      continue;
    }
    if (b.shape.has_rank()) {
      std::vector<Dim> d = b.shape.dims();
      if (v8) {
        d.insert(d.begin(), {batch, seq});
      } else {
        size_t k = i - n_state;
        int64_t axis = k < out_axes.size() ? out_axes[k] : 0;
        TSR_ASSIGN_OR_RETURN(int64_t a, AxisFor(ctx, axis, b.shape.rank() + 1, "scan_output_axes: "));
        d.insert(d.begin() + a, seq);
      }
      t.shape = Shape(std::move(d));
    }
    ctx.outputs[i] = std::move(t);
  }
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

void RegisterTensorOps(OpRegistry& r) {
  constexpr int kMany = 1 << 20;
  Reg(r, "Reshape", 2, 2, InferReshape);
  Reg(r, "Flatten", 1, 1, InferFlatten);
  Reg(r, "Transpose", 1, 1, InferTranspose);
  Reg(r, "Squeeze", 1, 2, InferSqueeze);
  Reg(r, "Unsqueeze", 1, 2, InferUnsqueeze);
  Reg(r, "Concat", 1, kMany, InferConcat);
  Reg(r, "Split", 1, 2, InferSplit, 1, kMany);
  Reg(r, "Slice", 1, 5, InferSlice);
  Reg(r, "Gather", 2, 2, InferGather);
  Reg(r, "GatherElements", 2, 2, InferGatherElements);
  Reg(r, "Expand", 2, 2, InferExpand);
  Reg(r, "Tile", 2, 2, InferTile);
  Reg(r, "Pad", 1, 4, InferPad);
  Reg(r, "Trilu", 1, 2, InferTrilu);
  Reg(r, "Cast", 1, 1, InferCast);
  Reg(r, "CastLike", 2, 2, InferCastLike);
  Reg(r, "Identity", 1, 1, InferIdentity);
  Reg(r, "Shape", 1, 1, InferShape);
  Reg(r, "Size", 1, 1, InferSize);
  Reg(r, "Constant", 0, 0, InferConstant);
  Reg(r, "ConstantOfShape", 1, 1, InferConstantOfShape);
  Reg(r, "Range", 3, 3, InferRange);
  Reg(r, "If", 1, 1, InferIf, 1, kMany);
  Reg(r, "Loop", 0, kMany, InferLoop, 1, kMany);
  Reg(r, "Scan", 0, kMany, InferScan, 1, kMany);
}

}  // namespace tessera
