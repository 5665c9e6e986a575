// Data movement and shape ops on OpenCL: Reshape/Flatten/Squeeze/Unsqueeze/
// Identity/Dropout (buffer copies), Transpose/Concat/Split/Slice/Expand (one
// strided-copy kernel), Gather, GatherElements, Trilu, Shape, ConstantOfShape,
// Range. Output shapes come from the compiler; builders check consistency.
// Kernels copy elements by size (1, 4 or 8 bytes), so they serve every dtype
// of that size.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backends/opencl/ocl.h"

namespace tessera::ocl {

const char* const kTensorSource = R"CLC(
/* P = [rank, dims[rank], in strides[rank], out strides[rank], in base, out base] (elements). */
#define TSR_STRIDED_COPY(NAME, T)                                           \
  kernel void NAME(TSR_INPUT(x), TSR_OUTPUT(y), global const long* P) {     \
    long t = get_global_id(0);                                              \
    int r = (int)P[0];                                                      \
    long io = P[1 + 3 * r], oo = P[2 + 3 * r];                              \
    for (int d = r - 1; d >= 0; --d) {                                      \
      long c = t % P[1 + d];                                                \
      t /= P[1 + d];                                                        \
      io += c * P[1 + r + d];                                               \
      oo += c * P[1 + 2 * r + d];                                           \
    }                                                                       \
    PTR(T, y, y_o)[oo] = CPTR(T, x, x_o)[io];                               \
  }
TSR_STRIDED_COPY(copy_b1, uchar)
TSR_STRIDED_COPY(copy_b4, uint)
TSR_STRIDED_COPY(copy_b8, ulong)

/* P = [outer, num indices, inner, axis dim]. An out-of-range index sets the
   error flag to `code` (the first one wins) and writes 0. */
#define TSR_GATHER(NAME, T, IT)                                                                     \
  kernel void NAME(TSR_INPUT(x), TSR_INPUT(ix), TSR_OUTPUT(y), global const long* P,                \
                   global char* flag, ulong flag_o, int code) {                                     \
    long i = get_global_id(0);                                                                      \
    long inner = P[2], nidx = P[1], ad = P[3];                                                      \
    long in_ = i % inner, t = i / inner;                                                            \
    long j = t % nidx, o = t / nidx;                                                                \
    long k = (long)CPTR(IT, ix, ix_o)[j];                                                           \
    if (k < 0) k += ad;                                                                             \
    if (k < 0 || k >= ad) {                                                                         \
      atomic_cmpxchg(PTR(int, flag, flag_o), 0, code);                                              \
      PTR(T, y, y_o)[i] = 0;                                                                        \
      return;                                                                                       \
    }                                                                                               \
    PTR(T, y, y_o)[i] = CPTR(T, x, x_o)[(o * ad + k) * inner + in_];                                \
  }
TSR_GATHER(gather_b1_i64, uchar, long)
TSR_GATHER(gather_b4_i64, uint, long)
TSR_GATHER(gather_b8_i64, ulong, long)
TSR_GATHER(gather_b1_i32, uchar, int)
TSR_GATHER(gather_b4_i32, uint, int)
TSR_GATHER(gather_b8_i32, ulong, int)

/* P = [rank, index dims[rank], data strides[rank], axis, axis dim]. */
#define TSR_GATHER_ELEMENTS(NAME, T, IT)                                                            \
  kernel void NAME(TSR_INPUT(x), TSR_INPUT(ix), TSR_OUTPUT(y), global const long* P,                \
                   global char* flag, ulong flag_o, int code) {                                     \
    long i = get_global_id(0);                                                                      \
    int r = (int)P[0];                                                                              \
    int axis = (int)P[1 + 2 * r];                                                                   \
    long ad = P[2 + 2 * r];                                                                         \
    long k = (long)CPTR(IT, ix, ix_o)[i];                                                           \
    if (k < 0) k += ad;                                                                             \
    if (k < 0 || k >= ad) {                                                                         \
      atomic_cmpxchg(PTR(int, flag, flag_o), 0, code);                                              \
      PTR(T, y, y_o)[i] = 0;                                                                        \
      return;                                                                                       \
    }                                                                                               \
    long t = i, off = 0;                                                                            \
    for (int d = r - 1; d >= 0; --d) {                                                              \
      long c = t % P[1 + d];                                                                        \
      t /= P[1 + d];                                                                                \
      off += (d == axis ? k : c) * P[1 + r + d];                                                    \
    }                                                                                               \
    PTR(T, y, y_o)[i] = CPTR(T, x, x_o)[off];                                                       \
  }
TSR_GATHER_ELEMENTS(gather_elements_b1_i64, uchar, long)
TSR_GATHER_ELEMENTS(gather_elements_b4_i64, uint, long)
TSR_GATHER_ELEMENTS(gather_elements_b8_i64, ulong, long)
TSR_GATHER_ELEMENTS(gather_elements_b1_i32, uchar, int)
TSR_GATHER_ELEMENTS(gather_elements_b4_i32, uint, int)
TSR_GATHER_ELEMENTS(gather_elements_b8_i32, ulong, int)

/* P = [rows M, cols N, k, upper]: keeps x where (upper ? j - i >= k : j - i <= k), else 0. */
#define TSR_TRILU(NAME, T)                                                  \
  kernel void NAME(TSR_INPUT(x), TSR_OUTPUT(y), global const long* P) {     \
    long i = get_global_id(0);                                              \
    long col = i % P[1], row = (i / P[1]) % P[0];                           \
    long diff = col - row;                                                  \
    int keep = P[3] ? diff >= P[2] : diff <= P[2];                          \
    PTR(T, y, y_o)[i] = keep ? CPTR(T, x, x_o)[i] : (T)0;                   \
  }
TSR_TRILU(trilu_b1, uchar)
TSR_TRILU(trilu_b4, uint)
TSR_TRILU(trilu_b8, ulong)

kernel void range_f32(TSR_INPUT(s), TSR_INPUT(d), TSR_OUTPUT(y)) {
  size_t i = get_global_id(0);
  PTR(float, y, y_o)[i] = CPTR(float, s, s_o)[0] + (float)i * CPTR(float, d, d_o)[0];
}
kernel void range_i64(TSR_INPUT(s), TSR_INPUT(d), TSR_OUTPUT(y)) {
  size_t i = get_global_id(0);
  PTR(long, y, y_o)[i] = CPTR(long, s, s_o)[0] + (long)i * CPTR(long, d, d_o)[0];
}
)CLC";

namespace {

int32_t ValDType(const tsr_graph_view& g, int32_t vi) {
  return vi >= 0 && static_cast<uint32_t>(vi) < g.num_values ? g.values[vi].dtype : TSR_DTYPE_UNDEFINED;
}
int32_t InDType(const tsr_node_view& n, const tsr_graph_view& g, uint32_t k) {
  return k < n.num_inputs ? ValDType(g, n.inputs[k]) : TSR_DTYPE_UNDEFINED;
}
int32_t OutDType(const tsr_node_view& n, const tsr_graph_view& g, uint32_t k) {
  return k < n.num_outputs ? ValDType(g, n.outputs[k]) : TSR_DTYPE_UNDEFINED;
}
bool InConst(const tsr_node_view& n, const tsr_graph_view& g, uint32_t k) {
  if (k >= n.num_inputs || n.inputs[k] < 0 || static_cast<uint32_t>(n.inputs[k]) >= g.num_values) return false;
  return (g.values[n.inputs[k]].flags & TSR_VALUE_CONSTANT) != 0;
}
bool SizeOk(int32_t dt) {
  size_t s = plugin::DTypeSize(dt);
  return s == 1 || s == 4 || s == 8;
}

std::string ClaimSized(const tsr_node_view& n, const tsr_graph_view& g) {
  if (!SizeOk(InDType(n, g, 0))) return std::string("dtype ") + plugin::DTypeName(InDType(n, g, 0)) + " is not supported";
  return "";
}

Err NeedIO(const NodeArgs& a, size_t min_in) {
  if (!a.has_input(0) || a.inputs.size() < min_in)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected at least %zu input(s)", a.Describe().c_str(), min_in);
  if (!a.has_output(0)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output 0 is missing", a.Describe().c_str());
  if (!SizeOk(a.inputs[0]->dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s is not supported by the OpenCL kernels", a.Describe().c_str(),
                   plugin::DTypeName(a.inputs[0]->dtype));
  return Err::Ok();
}

Launch StridedCopy(int src_slot, int dst_slot, int64_t elem, const std::vector<int64_t>& dims,
                   const std::vector<int64_t>& istr, const std::vector<int64_t>& ostr, int64_t ibase, int64_t obase) {
  Launch l;
  l.kernel = "copy_b" + std::to_string(elem);
  l.params.push_back(static_cast<int64_t>(dims.size()));
  l.params.insert(l.params.end(), dims.begin(), dims.end());
  l.params.insert(l.params.end(), istr.begin(), istr.end());
  l.params.insert(l.params.end(), ostr.begin(), ostr.end());
  l.params.push_back(ibase);
  l.params.push_back(obase);
  l.args = {TArg(src_slot), TArg(dst_slot), ParamsArg()};
  l.global = static_cast<uint64_t>(Numel(dims));
  return l;
}

// Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout (inference): the bytes as they are.
Err BuildCopy(const NodeArgs& a, OpPlan* plan) {
  if (!a.has_input(0) || !a.has_output(0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input 0 and output 0 are required", a.Describe().c_str());
  const TensorArg& x = *a.inputs[0];
  const TensorArg& y = *a.outputs[0];
  if (x.numel != y.numel || x.dtype != y.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s %s does not hold the input %s %s", a.Describe().c_str(),
                   plugin::DTypeName(y.dtype), DimsStr(y.dims).c_str(), plugin::DTypeName(x.dtype),
                   DimsStr(x.dims).c_str());
  if (std::strcmp(a.node->op_type, "Dropout") == 0) {
    if (a.has_input(2)) {
      const TensorArg& tm = *a.inputs[2];
      if (!tm.const_data)
        return MakeErr(TSR_ERR_UNSUPPORTED, "%s: training_mode must be a constant for the OpenCL kernel",
                       a.Describe().c_str());
      if (tm.numel >= 1 && *static_cast<const uint8_t*>(tm.const_data) != 0)
        return MakeErr(TSR_ERR_UNSUPPORTED, "%s: training mode is not supported (inference only)",
                       a.Describe().c_str());
    }
    if (a.has_output(1)) {  // the mask: all true
      Launch f;
      f.kind = Launch::kFill;
      f.dst.index = a.out_slot(1);
      f.bytes = static_cast<uint64_t>(a.outputs[1]->nbytes());
      f.pattern = {1};
      plan->launches.push_back(std::move(f));
    }
  }
  plan->launches.push_back(CopyLaunch(0, a.out_slot(0), static_cast<uint64_t>(y.nbytes())));
  return Err::Ok();
}

std::string ClaimCopy(const tsr_node_view& n, const tsr_graph_view& g) {
  if (std::strcmp(n.op_type, "Dropout") == 0 && n.num_inputs > 2 && n.inputs[2] >= 0 && !InConst(n, g, 2))
    return "Dropout's training_mode must be a constant (inference only)";
  return "";
}

Err BuildTranspose(const NodeArgs& a, OpPlan* plan) {
  Err e = NeedIO(a, 1);
  if (!e.ok()) return e;
  const TensorArg& x = *a.inputs[0];
  const TensorArg& y = *a.outputs[0];
  const int64_t r = static_cast<int64_t>(x.dims.size());
  std::vector<int64_t> perm = a.attrs().Ints("perm");
  if (perm.empty())
    for (int64_t d = r - 1; d >= 0; --d) perm.push_back(d);
  std::vector<int64_t> seen(static_cast<size_t>(r), 0);
  if (static_cast<int64_t>(perm.size()) != r)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: perm has %zu entries for rank %lld", a.Describe().c_str(),
                   perm.size(), static_cast<long long>(r));
  std::vector<int64_t> is = ContiguousStrides(x.dims), dims, istr;
  for (int64_t d = 0; d < r; ++d) {
    int64_t p = perm[d];
    if (p < 0) p += r;
    if (p < 0 || p >= r || seen[p]++)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: perm is not a permutation of 0..%lld", a.Describe().c_str(),
                     static_cast<long long>(r - 1));
    dims.push_back(x.dims[p]);
    istr.push_back(is[p]);
  }
  if (dims != y.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s, expected %s", a.Describe().c_str(),
                   DimsStr(y.dims).c_str(), DimsStr(dims).c_str());
  plan->launches.push_back(StridedCopy(0, a.out_slot(0), x.elem_size(), dims, istr, ContiguousStrides(dims), 0, 0));
  return Err::Ok();
}

Err BuildConcat(const NodeArgs& a, OpPlan* plan) {
  Err e = NeedIO(a, 1);
  if (!e.ok()) return e;
  const TensorArg& y = *a.outputs[0];
  const int64_t r = static_cast<int64_t>(y.dims.size());
  int64_t axis = 0;
  if (!NormAxis(a.attrs().Int("axis", 0), r, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for rank %lld", a.Describe().c_str(),
                   static_cast<long long>(a.attrs().Int("axis", 0)), static_cast<long long>(r));
  std::vector<int64_t> ostr = ContiguousStrides(y.dims);
  int64_t at = 0;
  for (size_t k = 0; k < a.inputs.size(); ++k) {
    if (!a.inputs[k]) continue;
    const TensorArg& x = *a.inputs[k];
    if (x.dtype != y.dtype || static_cast<int64_t>(x.dims.size()) != r)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is %s %s, output is %s %s", a.Describe().c_str(), k,
                     plugin::DTypeName(x.dtype), DimsStr(x.dims).c_str(), plugin::DTypeName(y.dtype),
                     DimsStr(y.dims).c_str());
    for (int64_t d = 0; d < r; ++d)
      if (d != axis && x.dims[d] != y.dims[d])
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu shape %s does not match the output %s off axis %lld",
                       a.Describe().c_str(), k, DimsStr(x.dims).c_str(), DimsStr(y.dims).c_str(),
                       static_cast<long long>(axis));
    if (x.numel > 0)
      plan->launches.push_back(StridedCopy(static_cast<int>(k), a.out_slot(0), x.elem_size(), x.dims,
                                           ContiguousStrides(x.dims), ostr, 0, at * ostr[axis]));
    at += x.dims[axis];
  }
  if (at != y.dims[axis])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inputs sum to %lld along axis %lld, the output has %lld",
                   a.Describe().c_str(), static_cast<long long>(at), static_cast<long long>(axis),
                   static_cast<long long>(y.dims[axis]));
  return Err::Ok();
}

Err BuildSplit(const NodeArgs& a, OpPlan* plan) {
  Err e = NeedIO(a, 1);
  if (!e.ok()) return e;
  const TensorArg& x = *a.inputs[0];
  const int64_t r = static_cast<int64_t>(x.dims.size());
  int64_t axis = 0;
  if (!NormAxis(a.attrs().Int("axis", 0), r, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis out of range for rank %lld", a.Describe().c_str(),
                   static_cast<long long>(r));
  std::vector<int64_t> istr = ContiguousStrides(x.dims);
  int64_t at = 0;
  for (size_t k = 0; k < a.outputs.size(); ++k) {
    if (!a.outputs[k]) continue;
    const TensorArg& y = *a.outputs[k];
    if (y.dtype != x.dtype || static_cast<int64_t>(y.dims.size()) != r)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu is %s %s, input is %s %s", a.Describe().c_str(), k,
                     plugin::DTypeName(y.dtype), DimsStr(y.dims).c_str(), plugin::DTypeName(x.dtype),
                     DimsStr(x.dims).c_str());
    if (y.numel > 0)
      plan->launches.push_back(
          StridedCopy(0, a.out_slot(k), x.elem_size(), y.dims, istr, ContiguousStrides(y.dims), at * istr[axis], 0));
    at += y.dims[axis];
  }
  if (at > x.dims[axis])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: outputs take %lld along axis %lld, the input has %lld",
                   a.Describe().c_str(), static_cast<long long>(at), static_cast<long long>(axis),
                   static_cast<long long>(x.dims[axis]));
  return Err::Ok();
}

Err BuildSlice(const NodeArgs& a, OpPlan* plan) {
  Err e = NeedIO(a, 1);
  if (!e.ok()) return e;
  const TensorArg& x = *a.inputs[0];
  const TensorArg& y = *a.outputs[0];
  const int64_t r = static_cast<int64_t>(x.dims.size());
  std::vector<int64_t> starts, ends, axes, steps;
  plugin::NodeAttrs at = a.attrs();
  if (a.node->opset < 10) {
    starts = at.Ints("starts");
    ends = at.Ints("ends");
    axes = at.Ints("axes");
  } else {
    const char* names[] = {"starts", "ends", "axes", "steps"};
    std::vector<int64_t>* outs[] = {&starts, &ends, &axes, &steps};
    for (size_t k = 1; k <= 4; ++k) {
      if (!a.has_input(k)) {
        if (k <= 2) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %s is required", a.Describe().c_str(), names[k - 1]);
        continue;
      }
      if (!ConstInts(*a.inputs[k], outs[k - 1]))
        return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s must be a constant i64/i32 tensor for the OpenCL kernel",
                       a.Describe().c_str(), names[k - 1]);
    }
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: starts/ends/axes/steps have different lengths", a.Describe().c_str());
  std::vector<int64_t> start(static_cast<size_t>(r), 0), step(static_cast<size_t>(r), 1), dims = x.dims;
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t ax = 0;
    if (!NormAxis(axes[i], r, &ax))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range", a.Describe().c_str(),
                     static_cast<long long>(axes[i]));
    const int64_t d = x.dims[ax], st = steps[i];
    if (st == 0) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: step 0", a.Describe().c_str());
    const plugin::SliceAxis sa = plugin::ResolveSliceAxis(starts[i], ends[i], st, d);
    start[ax] = sa.first;
    step[ax] = st;
    dims[ax] = sa.count;
  }
  if (dims != y.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s, expected %s", a.Describe().c_str(),
                   DimsStr(y.dims).c_str(), DimsStr(dims).c_str());
  std::vector<int64_t> is = ContiguousStrides(x.dims), istr(static_cast<size_t>(r));
  int64_t base = 0;
  for (int64_t d = 0; d < r; ++d) {
    istr[d] = is[d] * step[d];
    if (dims[d] > 0) base += start[d] * is[d];
  }
  if (y.numel > 0)
    plan->launches.push_back(StridedCopy(0, a.out_slot(0), x.elem_size(), dims, istr, ContiguousStrides(dims), base, 0));
  return Err::Ok();
}

std::string ClaimConstInputs(const tsr_node_view& n, const tsr_graph_view& g, uint32_t first, uint32_t last,
                             const char* what) {
  std::string s = ClaimSized(n, g);
  if (!s.empty()) return s;
  for (uint32_t k = first; k <= last && k < n.num_inputs; ++k)
    if (n.inputs[k] >= 0 && !InConst(n, g, k)) return std::string(what) + " must be constants for the OpenCL kernel";
  return "";
}
std::string ClaimSlice(const tsr_node_view& n, const tsr_graph_view& g) {
  return ClaimConstInputs(n, g, 1, 4, "Slice's starts/ends/axes/steps");
}
std::string ClaimTrilu(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimConstInputs(n, g, 1, 1, "Trilu's k"); }

Err BuildExpand(const NodeArgs& a, OpPlan* plan) {
  Err e = NeedIO(a, 1);
  if (!e.ok()) return e;
  const TensorArg& x = *a.inputs[0];
  const TensorArg& y = *a.outputs[0];
  std::vector<int64_t> s;
  if (!BroadcastStrides(x.dims, y.dims, &s))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %s does not broadcast to the output %s", a.Describe().c_str(),
                   DimsStr(x.dims).c_str(), DimsStr(y.dims).c_str());
  if (y.numel > 0)
    plan->launches.push_back(StridedCopy(0, a.out_slot(0), x.elem_size(), y.dims, s, ContiguousStrides(y.dims), 0, 0));
  return Err::Ok();
}

Err BuildGather(const NodeArgs& a, OpPlan* plan) {
  Err e = NeedIO(a, 2);
  if (!e.ok()) return e;
  if (!a.has_input(1)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: indices are missing", a.Describe().c_str());
  const bool elements = std::strcmp(a.node->op_type, "GatherElements") == 0;
  const TensorArg& x = *a.inputs[0];
  const TensorArg& ix = *a.inputs[1];
  const TensorArg& y = *a.outputs[0];
  if (ix.dtype != TSR_DTYPE_I64 && ix.dtype != TSR_DTYPE_I32)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: indices must be i64 or i32, got %s", a.Describe().c_str(),
                   plugin::DTypeName(ix.dtype));
  const int64_t r = static_cast<int64_t>(x.dims.size());
  int64_t axis = 0;
  if (!NormAxis(a.attrs().Int("axis", 0), r, &axis))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for rank %lld", a.Describe().c_str(),
                   static_cast<long long>(a.attrs().Int("axis", 0)), static_cast<long long>(r));
  const int64_t ad = x.dims[axis];
  // Constant indices are checked now; runtime ones by the kernel (error flag).
  if (ix.const_data) {
    std::vector<int64_t> v;
    ConstInts(ix, &v);
    for (int64_t k : v)
      if (k < -ad || k >= ad)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: index %lld is out of range for axis %lld of size %lld",
                       a.Describe().c_str(), static_cast<long long>(k), static_cast<long long>(axis),
                       static_cast<long long>(ad));
  } else {
    plan->checks_indices = true;
  }
  Launch l;
  const std::string suffix = std::string("_b") + std::to_string(x.elem_size()) + (ix.dtype == TSR_DTYPE_I64 ? "_i64" : "_i32");
  if (elements) {
    if (ix.dims.size() != x.dims.size() || y.dims != ix.dims)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: indices %s must have the data's rank and the output's shape %s",
                     a.Describe().c_str(), DimsStr(ix.dims).c_str(), DimsStr(y.dims).c_str());
    l.kernel = "gather_elements" + suffix;
    l.params.push_back(r);
    l.params.insert(l.params.end(), ix.dims.begin(), ix.dims.end());
    std::vector<int64_t> xs = ContiguousStrides(x.dims);
    l.params.insert(l.params.end(), xs.begin(), xs.end());
    l.params.push_back(axis);
    l.params.push_back(ad);
  } else {
    std::vector<int64_t> want(x.dims.begin(), x.dims.begin() + axis);
    want.insert(want.end(), ix.dims.begin(), ix.dims.end());
    want.insert(want.end(), x.dims.begin() + axis + 1, x.dims.end());
    if (want != y.dims)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s, expected %s", a.Describe().c_str(),
                     DimsStr(y.dims).c_str(), DimsStr(want).c_str());
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.dims[d];
    for (int64_t d = axis + 1; d < r; ++d) inner *= x.dims[d];
    l.kernel = "gather" + suffix;
    l.params = {outer, ix.numel, inner, ad};
  }
  l.args = {TArg(0), TArg(1), TArg(a.out_slot(0)), ParamsArg(), FlagArg(), StepCodeArg()};
  l.global = static_cast<uint64_t>(y.numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

std::string ClaimGather(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string s = ClaimSized(n, g);
  if (!s.empty()) return s;
  int32_t it = InDType(n, g, 1);
  return it == TSR_DTYPE_I64 || it == TSR_DTYPE_I32 ? "" : "indices must be i64 or i32";
}

Err BuildTrilu(const NodeArgs& a, OpPlan* plan) {
  Err e = NeedIO(a, 1);
  if (!e.ok()) return e;
  const TensorArg& x = *a.inputs[0];
  if (x.dims.size() < 2)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input must have rank >= 2, got %s", a.Describe().c_str(),
                   DimsStr(x.dims).c_str());
  int64_t k = 0;
  if (a.has_input(1)) {
    std::vector<int64_t> v;
    if (!ConstInts(*a.inputs[1], &v) || v.size() != 1)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: k must be one constant integer for the OpenCL kernel",
                     a.Describe().c_str());
    k = v[0];
  }
  Launch l;
  l.kernel = "trilu_b" + std::to_string(x.elem_size());
  l.params = {x.dims[x.dims.size() - 2], x.dims.back(), k, a.attrs().Int("upper", 1) != 0 ? 1 : 0};
  l.args = {TArg(0), TArg(a.out_slot(0)), ParamsArg()};
  l.global = static_cast<uint64_t>(x.numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}

// Output computed at compile time: uploaded once, copied into the output on every execute.
void HostOutput(OpPlan* plan, int out_slot, std::vector<uint8_t> bytes) {
  Launch l;
  l.kind = Launch::kCopy;
  l.src.kind = TensorRef::kHostConst;
  l.src.index = static_cast<int>(plan->host_consts.size());
  l.dst.index = out_slot;
  l.bytes = bytes.size();
  plan->host_consts.push_back(std::move(bytes));
  plan->launches.push_back(std::move(l));
}

template <typename T>
std::vector<uint8_t> AsBytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

Err BuildShape(const NodeArgs& a, OpPlan* plan) {
  if (!a.has_input(0) || !a.has_output(0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input 0 and output 0 are required", a.Describe().c_str());
  const std::vector<int64_t>& d = a.inputs[0]->dims;
  const int64_t r = static_cast<int64_t>(d.size());
  int64_t s = a.attrs().Int("start", 0), e = a.attrs().Int("end", r);
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = std::clamp<int64_t>(s, 0, r);
  e = std::clamp<int64_t>(e, 0, r);
  std::vector<int64_t> v(d.begin() + s, d.begin() + std::max(s, e));
  const TensorArg& y = *a.outputs[0];
  if (y.dtype != TSR_DTYPE_I64 || y.numel != static_cast<int64_t>(v.size()))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output is %s %s, expected i64 [%zu]", a.Describe().c_str(),
                   plugin::DTypeName(y.dtype), DimsStr(y.dims).c_str(), v.size());
  HostOutput(plan, a.out_slot(0), AsBytes(v));
  return Err::Ok();
}
std::string ClaimAny(const tsr_node_view&, const tsr_graph_view&) { return ""; }

Err BuildConstantOfShape(const NodeArgs& a, OpPlan* plan) {
  if (!a.has_output(0)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output 0 is missing", a.Describe().c_str());
  const TensorArg& y = *a.outputs[0];
  std::vector<uint8_t> pattern(static_cast<size_t>(std::max<int64_t>(y.elem_size(), 1)), 0);
  if (const tsr_tensor_view* t = a.attrs().Tensor("value")) {
    if (t->dtype != y.dtype || t->nbytes < pattern.size() || !t->data)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: value is %s, the output %s", a.Describe().c_str(),
                     plugin::DTypeName(t->dtype), plugin::DTypeName(y.dtype));
    std::memcpy(pattern.data(), t->data, pattern.size());
  } else if (y.dtype != TSR_DTYPE_F32) {
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: without a value the output must be f32", a.Describe().c_str());
  }
  if (!SizeOk(y.dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s is not supported", a.Describe().c_str(),
                   plugin::DTypeName(y.dtype));
  Launch f;
  f.kind = Launch::kFill;
  f.dst.index = a.out_slot(0);
  f.bytes = static_cast<uint64_t>(y.nbytes());
  f.pattern = std::move(pattern);
  plan->launches.push_back(std::move(f));
  return Err::Ok();
}
std::string ClaimConstantOfShape(const tsr_node_view& n, const tsr_graph_view& g) {
  return SizeOk(OutDType(n, g, 0)) ? "" : "unsupported output dtype";
}

Err BuildRange(const NodeArgs& a, OpPlan* plan) {
  if (a.inputs.size() != 3 || !a.has_input(0) || !a.has_input(1) || !a.has_input(2) || !a.has_output(0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected start, limit, delta and one output", a.Describe().c_str());
  const TensorArg& y = *a.outputs[0];
  const int32_t dt = y.dtype;
  if (dt != TSR_DTYPE_F32 && dt != TSR_DTYPE_I64)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s is not supported (f32, i64)", a.Describe().c_str(),
                   plugin::DTypeName(dt));
  for (size_t k = 0; k < 3; ++k)
    if (a.inputs[k]->dtype != dt || a.inputs[k]->numel != 1)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu must be one %s value", a.Describe().c_str(), k,
                     plugin::DTypeName(dt));
  if (y.numel == 0) return Err::Ok();
  if (a.inputs[0]->const_data && a.inputs[2]->const_data) {
    if (dt == TSR_DTYPE_F32) {
      float s = *static_cast<const float*>(a.inputs[0]->const_data), d = *static_cast<const float*>(a.inputs[2]->const_data);
      std::vector<float> v(static_cast<size_t>(y.numel));
      for (int64_t i = 0; i < y.numel; ++i) v[i] = s + static_cast<float>(i) * d;
      HostOutput(plan, a.out_slot(0), AsBytes(v));
    } else {
      int64_t s = *static_cast<const int64_t*>(a.inputs[0]->const_data),
              d = *static_cast<const int64_t*>(a.inputs[2]->const_data);
      std::vector<int64_t> v(static_cast<size_t>(y.numel));
      for (int64_t i = 0; i < y.numel; ++i) v[i] = s + i * d;
      HostOutput(plan, a.out_slot(0), AsBytes(v));
    }
    return Err::Ok();
  }
  Launch l;
  l.kernel = dt == TSR_DTYPE_F32 ? "range_f32" : "range_i64";
  l.args = {TArg(0), TArg(2), TArg(a.out_slot(0))};
  l.global = static_cast<uint64_t>(y.numel);
  plan->launches.push_back(std::move(l));
  return Err::Ok();
}
std::string ClaimRange(const tsr_node_view& n, const tsr_graph_view& g) {
  int32_t dt = OutDType(n, g, 0);
  return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_I64 ? "" : "Range supports f32 and i64";
}

}  // namespace

void RegisterTensorOps(std::vector<OpEntry>& r) {
  for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
    r.push_back({"", op, &BuildCopy, &ClaimCopy});
  r.push_back({"", "Transpose", &BuildTranspose, &ClaimSized});
  r.push_back({"", "Concat", &BuildConcat, &ClaimSized});
  r.push_back({"", "Split", &BuildSplit, &ClaimSized});
  r.push_back({"", "Slice", &BuildSlice, &ClaimSlice});
  r.push_back({"", "Expand", &BuildExpand, &ClaimSized});
  r.push_back({"", "Gather", &BuildGather, &ClaimGather});
  r.push_back({"", "GatherElements", &BuildGather, &ClaimGather});
  r.push_back({"", "Trilu", &BuildTrilu, &ClaimTrilu});
  r.push_back({"", "Shape", &BuildShape, &ClaimAny});
  r.push_back({"", "ConstantOfShape", &BuildConstantOfShape, &ClaimConstantOfShape});
  r.push_back({"", "Range", &BuildRange, &ClaimRange});
}

}  // namespace tessera::ocl
