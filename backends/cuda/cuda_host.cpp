// Host-only logic of the CUDA backend (see cuda_host.h).
#include "backends/cuda/cuda_host.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>

namespace tessera::cuda {

// ---- options ---------------------------------------------------------------------------

bool ParseByteSize(const std::string& s, uint64_t* out) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return false;
  char* end = nullptr;
  const std::string num = s.substr(0, i);
  const double v = std::strtod(num.c_str(), &end);
  if (!end || *end != '\0' || !(v >= 0)) return false;
  std::string suf = s.substr(i);
  while (!suf.empty() && suf.front() == ' ') suf.erase(suf.begin());
  for (char& c : suf) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mult = 1;
  if (suf.empty() || suf == "B") {
    mult = 1;
  } else {
    const char u = suf[0];
    const std::string rest = suf.substr(1);
    if (!(rest.empty() || rest == "B" || rest == "IB")) return false;
    const double base = rest == "B" ? 1000.0 : 1024.0;  // KB = 1000, KiB and K = 1024
    int power = 0;
    if (u == 'K') power = 1;
    else if (u == 'M') power = 2;
    else if (u == 'G') power = 3;
    else if (u == 'T') power = 4;
    else return false;
    mult = std::pow(base, power);
  }
  const double bytes = v * mult;
  if (bytes >= 18446744073709551615.0) return false;
  if (mult == 1 && num.find('.') != std::string::npos) return false;  // fractional bytes
  *out = static_cast<uint64_t>(bytes);
  return true;
}

bool ParseBool(const std::string& s, bool* out) {
  std::string l;
  for (char c : s) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "1" || l == "true" || l == "on" || l == "yes") { *out = true; return true; }
  if (l == "0" || l == "false" || l == "off" || l == "no") { *out = false; return true; }
  return false;
}

Err ParseCudaOptions(const tsr_compile_options* o, CudaOptions* opts) {
  for (const char* key : {"tf32", "cuda_graphs"}) {
    const char* v = FindOption(o, key);
    if (!v) continue;
    bool b = false;
    if (!ParseBool(v, &b))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: option %s='%s' is not a boolean (expected 0/1/true/false/on/off)",
                     key, v);
    (std::strcmp(key, "tf32") == 0 ? opts->tf32 : opts->cuda_graphs) = b;
  }
  if (opts->tf32 && opts->f32_math == F32Math::kExact) opts->f32_math = F32Math::kTf32;
  if (!opts->tf32 && opts->f32_math == F32Math::kTf32) opts->f32_math = F32Math::kExact;
  if (const char* p = FindOption(o, "precision")) {
    const std::string prec = p;
    if (prec == "bf16") opts->f32_math = F32Math::kBf16;
    else if (prec == "f16") opts->f32_math = F32Math::kF16;
    else if (prec != "f32")
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: option precision='%s' (expected f32, bf16 or f16)", p);
  }
  for (const char* key : {"memory_cap", "max_alloc_bytes", "release_threshold"}) {
    const char* v = FindOption(o, key);
    if (!v) continue;
    uint64_t n = 0;
    if (!ParseByteSize(v, &n))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                     "cuda backend: option %s='%s' is not a byte size (expected e.g. 1073741824, 512M or 8GiB)", key, v);
    if (std::strcmp(key, "release_threshold") == 0) opts->release_threshold = n;
    else if (std::strcmp(key, "max_alloc_bytes") == 0) opts->max_alloc_bytes = n;
    else opts->memory_cap = n;
  }
  return Err::Ok();
}

// ---- memory accounting ------------------------------------------------------------------

Err MemoryAccounting::Reserve(uint64_t bytes, const char* who) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t cap = cap_.load(), used = used_.load();
  if (cap != 0 && (bytes > cap || used > cap - bytes))
    return MakeErr(TSR_ERR_OUT_OF_MEMORY,
                   "cuda backend: %s: allocating %llu bytes would exceed the memory cap of %llu bytes (%llu in use); "
                   "raise the backend option memory_cap or reduce the batch",
                   who, static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(cap),
                   static_cast<unsigned long long>(used));
  used_.store(used + bytes);
  if (used + bytes > peak_.load()) peak_.store(used + bytes);
  return Err::Ok();
}

void MemoryAccounting::Release(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t used = used_.load();
  used_.store(bytes > used ? 0 : used - bytes);
}

std::vector<uint64_t> StagingChunks(uint64_t bytes, uint64_t chunk) {
  std::vector<uint64_t> out;
  if (chunk == 0) chunk = 1;
  for (uint64_t done = 0; done < bytes; done += chunk) out.push_back(std::min(chunk, bytes - done));
  return out;
}

// ---- CUDA-graph cache policy --------------------------------------------------------------

GraphPolicy::Action GraphPolicy::Decide(const std::vector<const void*>& key, size_t* slot, bool* reused) {
  ++clock_;
  *reused = false;
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].valid && slots_[i].key == key) {
      slots_[i].last_use = clock_;
      *slot = i;
      return kReplay;
    }
  auto it = std::find(seen_.begin(), seen_.end(), key);
  if (it == seen_.end() || slots_.empty()) {
    if (it == seen_.end()) seen_.push_back(key);
    if (seen_.size() > 2 * slots_.size() + 1) seen_.erase(seen_.begin());
    return kEager;
  }
  seen_.erase(it);
  size_t pick = 0;
  bool found_free = false;
  for (size_t i = 0; i < slots_.size(); ++i)
    if (!slots_[i].valid) {
      pick = i;
      found_free = true;
      break;
    }
  if (!found_free) {
    for (size_t i = 1; i < slots_.size(); ++i)
      if (slots_[i].last_use < slots_[pick].last_use) pick = i;
    *reused = true;
  }
  slots_[pick].key = key;
  slots_[pick].valid = true;
  slots_[pick].last_use = clock_;
  *slot = pick;
  return kCapture;
}

void GraphPolicy::Invalidate(size_t slot) {
  if (slot < slots_.size()) {
    slots_[slot].valid = false;
    slots_[slot].key.clear();
  }
}

// ---- claim ----------------------------------------------------------------------------

namespace {

using DTypes = std::initializer_list<int32_t>;
const DTypes kFloat = {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16};
const DTypes kFloatInt = {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_I32, TSR_DTYPE_I64};
const DTypes kCompare = {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_I32, TSR_DTYPE_I64, TSR_DTYPE_BOOL};
const DTypes kBool = {TSR_DTYPE_BOOL};
const DTypes kCast = {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_F64, TSR_DTYPE_I32,
                      TSR_DTYPE_I64, TSR_DTYPE_I8,  TSR_DTYPE_U8,   TSR_DTYPE_BOOL};
const DTypes kIndex = {TSR_DTYPE_I32, TSR_DTYPE_I64};
const DTypes kAny = {};  // any dtype of 1, 2, 4 or 8 bytes

enum Family {
  kEwFloat,      // unary float math
  kEwFloatInt,   // Add Sub Mul Div Max Min Neg Abs
  kEwPow,
  kCompareOp,
  kLogic,
  kNotOp,
  kWhereOp,
  kCastOp,
  kGemmOp,
  kConvOp,
  kPoolOp,
  kNormOp,       // BatchNormalization, LayerNormalization
  kSoftmaxOp,
  kReduceOp,
  kDataMove,     // Reshape Flatten Squeeze Unsqueeze Identity Dropout Transpose Expand Slice Concat Split Trilu
  kGatherOp,
  kShapeOp,      // Shape ConstantOfShape Range
  kAttention,
  kFusedEw,
};

const std::map<std::string, Family>& OpTable() {
  static const std::map<std::string, Family> t = {
      {"Sqrt", kEwFloat}, {"Exp", kEwFloat}, {"Log", kEwFloat}, {"Erf", kEwFloat}, {"Tanh", kEwFloat},
      {"Sigmoid", kEwFloat}, {"Relu", kEwFloat}, {"LeakyRelu", kEwFloat}, {"Clip", kEwFloat}, {"Gelu", kEwFloat},
      {"Reciprocal", kEwFloat}, {"HardSigmoid", kEwFloat}, {"HardSwish", kEwFloat}, {"Softplus", kEwFloat},
      {"tessera.Gelu", kEwFloat},
      {"Add", kEwFloatInt}, {"Sub", kEwFloatInt}, {"Mul", kEwFloatInt}, {"Div", kEwFloatInt},
      {"Max", kEwFloatInt}, {"Min", kEwFloatInt}, {"Neg", kEwFloatInt}, {"Abs", kEwFloatInt},
      {"Pow", kEwPow},
      {"Equal", kCompareOp}, {"Greater", kCompareOp}, {"GreaterOrEqual", kCompareOp}, {"Less", kCompareOp},
      {"LessOrEqual", kCompareOp},
      {"And", kLogic}, {"Or", kLogic}, {"Xor", kLogic}, {"Not", kNotOp},
      {"Where", kWhereOp}, {"Cast", kCastOp},
      {"MatMul", kGemmOp}, {"Gemm", kGemmOp}, {"tessera.FusedMatMul", kGemmOp}, {"tessera.FusedGemm", kGemmOp},
      {"Conv", kConvOp}, {"tessera.FusedConv", kConvOp},
      {"MaxPool", kPoolOp}, {"AveragePool", kPoolOp}, {"GlobalAveragePool", kPoolOp},
      {"BatchNormalization", kNormOp}, {"LayerNormalization", kNormOp},
      {"Softmax", kSoftmaxOp}, {"LogSoftmax", kSoftmaxOp},
      {"ReduceMean", kReduceOp}, {"ReduceSum", kReduceOp}, {"ReduceMax", kReduceOp}, {"ReduceMin", kReduceOp},
      {"Reshape", kDataMove}, {"Flatten", kDataMove}, {"Squeeze", kDataMove}, {"Unsqueeze", kDataMove},
      {"Identity", kDataMove}, {"Dropout", kDataMove}, {"Transpose", kDataMove}, {"Expand", kDataMove},
      {"Slice", kDataMove}, {"Concat", kDataMove}, {"Split", kDataMove}, {"Trilu", kDataMove},
      {"Gather", kGatherOp}, {"GatherElements", kGatherOp},
      {"Shape", kShapeOp}, {"ConstantOfShape", kShapeOp}, {"Range", kShapeOp},
      {"tessera.FusedAttention", kAttention}, {"tessera.FusedElementwise", kFusedEw},
  };
  return t;
}

const tsr_value_view* Val(const tsr_graph_view& g, const tsr_node_view& n, uint32_t i, bool input) {
  const uint32_t count = input ? n.num_inputs : n.num_outputs;
  if (i >= count) return nullptr;
  const int32_t vi = input ? n.inputs[i] : n.outputs[i];
  return vi >= 0 && static_cast<uint32_t>(vi) < g.num_values ? &g.values[vi] : nullptr;
}

bool In(int32_t dt, DTypes set) {
  if (set.size() == 0) {
    const size_t s = plugin::DTypeSize(dt);
    return dt != TSR_DTYPE_STRING && (s == 1 || s == 2 || s == 4 || s == 8);
  }
  return std::find(set.begin(), set.end(), dt) != set.end();
}

std::string SetName(DTypes set) {
  if (set.size() == 0) return "a 1/2/4/8-byte type";
  std::string s;
  for (int32_t d : set) s += (s.empty() ? "" : "/") + std::string(plugin::DTypeName(d));
  return s;
}

// Checks input i's dtype (absent optional inputs pass).
std::string CheckIn(const tsr_graph_view& g, const tsr_node_view& n, uint32_t i, DTypes set) {
  const tsr_value_view* v = Val(g, n, i, true);
  if (!v) return "";
  if (!In(v->dtype, set))
    return std::string("input ") + std::to_string(i) + " is " + plugin::DTypeName(v->dtype) + "; the CUDA kernel takes " +
           SetName(set);
  return "";
}

std::string SameDType(const tsr_graph_view& g, const tsr_node_view& n, uint32_t a, uint32_t b) {
  const tsr_value_view* x = Val(g, n, a, true);
  const tsr_value_view* y = Val(g, n, b, true);
  if (x && y && x->dtype != y->dtype)
    return std::string("inputs ") + std::to_string(a) + " and " + std::to_string(b) + " differ in dtype (" +
           plugin::DTypeName(x->dtype) + " vs " + plugin::DTypeName(y->dtype) + ")";
  return "";
}

bool IsConst(const tsr_graph_view& g, const tsr_node_view& n, uint32_t i) {
  const tsr_value_view* v = Val(g, n, i, true);
  return v && (v->flags & TSR_VALUE_CONSTANT) && (v->const_data || v->const_bytes == 0);
}

// Input i, when present, must be a constant (it parameterizes the kernel).
std::string NeedConst(const tsr_graph_view& g, const tsr_node_view& n, uint32_t i, const char* what) {
  if (!Val(g, n, i, true) || IsConst(g, n, i)) return "";
  return std::string(what) + " (input " + std::to_string(i) + ") must be a constant on the CUDA backend";
}

// Dims of a value when its rank and every dim are known.
bool StaticDims(const tsr_value_view* v, std::vector<int64_t>* dims) {
  if (!v || v->rank < 0) return false;
  dims->assign(v->dims, v->dims + v->rank);
  for (int64_t d : *dims)
    if (d < 0) return false;
  return true;
}

// Shape-dependent limits compile would hit, checked here when shapes are
// known so that the partitioner does not hand the node to this device.
std::string ShapeLimits(const tsr_node_view& n, const tsr_graph_view& g, const std::string& op) {
  plugin::NodeAttrs at(n);
  const tsr_value_view* y = Val(g, n, 0, false);
  if (y && y->rank > gpu::kMaxRank && op != "MatMul" && op != "Gemm")
    return "rank " + std::to_string(y->rank) + " exceeds the CUDA kernels' limit of " + std::to_string(gpu::kMaxRank);
  std::vector<int64_t> xd;
  const bool x_static = StaticDims(Val(g, n, 0, true), &xd);
  if (op == "LayerNormalization" && x_static) {
    const int64_t r = static_cast<int64_t>(xd.size());
    int64_t axis = at.Int("axis", -1);
    if (axis < 0) axis += r;
    if (axis >= 0 && axis < r) {
      int64_t c = 1;
      for (int64_t i = axis; i < r; ++i) c *= xd[i];
      for (uint32_t k = 1; k <= 2; ++k) {
        std::vector<int64_t> sd;
        if (StaticDims(Val(g, n, k, true), &sd)) {
          int64_t m = 1;
          for (int64_t d : sd) m *= d;
          if (m != c) return "LayerNormalization scale/bias that broadcast over the normalized shape are not supported on CUDA";
        }
      }
    }
  }
  if (op == "Conv" || op == "tessera.FusedConv") {
    const std::vector<int64_t> p = at.Ints("pads");
    for (size_t i = 0; i < p.size() / 2; ++i)
      if (p[i] != p[i + p.size() / 2]) return "asymmetric convolution padding is not supported on CUDA (cuDNN)";
  }
  if ((op == "ReduceMean" || op == "ReduceSum" || op == "ReduceMax" || op == "ReduceMin") && x_static) {
    std::vector<int64_t> axes = at.Ints("axes");
    const tsr_value_view* av = Val(g, n, 1, true);
    if (axes.empty() && av && (av->flags & TSR_VALUE_CONSTANT) && av->const_data) {
      std::vector<int64_t> ad;
      if (StaticDims(av, &ad)) {
        int64_t cnt = 1;
        for (int64_t d : ad) cnt *= d;
        for (int64_t i = 0; i < cnt; ++i)
          axes.push_back(av->dtype == TSR_DTYPE_I32 ? static_cast<const int32_t*>(av->const_data)[i]
                                                    : static_cast<const int64_t*>(av->const_data)[i]);
      }
    }
    if (!axes.empty()) {
      int64_t o, rr, in;
      Err e = ReduceShape(xd, axes, &o, &rr, &in);
      if (!e.ok() && e.code == TSR_ERR_UNSUPPORTED) return "reduction over non-adjacent axes is not supported on CUDA";
    }
  }
  if (op == "Split")
    for (uint32_t k = 0; k < n.num_outputs; ++k)
      if (n.outputs[k] < 0) return "Split with an unused output is not supported on CUDA";
  if (op == "MatMul" || op == "tessera.FusedMatMul") {
    std::vector<int64_t> bd, yd;
    if (x_static && StaticDims(Val(g, n, 1, true), &bd) && StaticDims(y, &yd) && xd.size() >= 2 && bd.size() >= 2) {
      const std::vector<int64_t> yb(yd.begin(), yd.end() - 2);
      auto kind = [&](const std::vector<int64_t>& d) {  // 0: no batch, 1: full batch, 2: partial
        std::vector<int64_t> b(d.begin(), d.end() - 2);
        int64_t nb = 1;
        for (int64_t v : b) nb *= v;
        if (nb == 1) return 0;
        std::vector<int64_t> pad(yb.size() - std::min(yb.size(), b.size()), 1);
        pad.insert(pad.end(), b.begin(), b.end());
        return pad == yb ? 1 : 2;
      };
      const int ka = kind(xd), kb = kind(bd);
      if (kb != 0 && (ka == 2 || kb == 2))
        return "MatMul batch broadcasting where an operand broadcasts partially is not supported on CUDA";
    }
  }
  if (op == "tessera.FusedAttention" && x_static && xd.size() == 4 && xd[0] * xd[1] > 65535)
    return "FusedAttention with batch*heads > 65535 is not supported on CUDA";
  return "";
}

std::string ClaimImpl(const tsr_node_view& n, const tsr_graph_view& g, Family f, const std::string& op) {
  plugin::NodeAttrs at(n);
  std::string why;
  auto first = [&](std::initializer_list<std::string> rs) {
    for (const std::string& r : rs)
      if (!r.empty()) return r;
    return std::string();
  };
  switch (f) {
    case kEwFloat:
      if (op == "Clip")
        return first({CheckIn(g, n, 0, kFloat), NeedConst(g, n, 1, "Clip min"), NeedConst(g, n, 2, "Clip max")});
      return CheckIn(g, n, 0, kFloat);
    case kEwFloatInt: {
      if (n.num_inputs > static_cast<uint32_t>(gpu::kMaxEwInputs))
        return op + " with more than " + std::to_string(gpu::kMaxEwInputs) + " inputs is not supported on CUDA";
      why = CheckIn(g, n, 0, kFloatInt);
      for (uint32_t k = 1; why.empty() && k < n.num_inputs; ++k) why = SameDType(g, n, 0, k);
      if (why.empty() && n.num_inputs > 2) {
        const tsr_value_view* x = Val(g, n, 0, true);
        if (x && (x->dtype == TSR_DTYPE_I32 || x->dtype == TSR_DTYPE_I64))
          return "integer " + op + " with more than two inputs is not supported on CUDA";
      }
      return why;
    }
    case kEwPow: return first({CheckIn(g, n, 0, kFloat), SameDType(g, n, 0, 1)});
    case kCompareOp: return first({CheckIn(g, n, 0, kCompare), SameDType(g, n, 0, 1)});
    case kLogic: return first({CheckIn(g, n, 0, kBool), CheckIn(g, n, 1, kBool)});
    case kNotOp: return CheckIn(g, n, 0, kBool);
    case kWhereOp: return first({CheckIn(g, n, 0, kBool), CheckIn(g, n, 1, kAny), SameDType(g, n, 1, 2)});
    case kCastOp: {
      why = CheckIn(g, n, 0, kCast);
      if (!why.empty()) return why;
      const tsr_value_view* y = Val(g, n, 0, false);
      if (y && !In(y->dtype, kCast))
        return std::string("Cast to ") + plugin::DTypeName(y->dtype) + " is not supported (the CUDA kernel casts to " +
               SetName(kCast) + ")";
      return "";
    }
    case kGemmOp: {
      why = first({CheckIn(g, n, 0, kFloat), SameDType(g, n, 0, 1)});
      if (!why.empty()) return why;
      const tsr_value_view* a = Val(g, n, 0, true);
      const tsr_value_view* b = Val(g, n, 1, true);
      if (op == "MatMul" || op == "tessera.FusedMatMul") {
        if ((a && a->rank == 1) || (b && b->rank == 1)) return "MatMul with a 1-D operand is not supported on CUDA";
        if (at.Int("has_residual", 0) && n.num_inputs > 3) why = CheckIn(g, n, 3, kFloat);
      }
      return why;
    }
    case kConvOp: {
      why = first({CheckIn(g, n, 0, kFloat), SameDType(g, n, 0, 1)});
      if (!why.empty()) return why;
      const tsr_value_view* x = Val(g, n, 0, true);
      if (x && x->rank >= 0 && x->rank != 3 && x->rank != 4)
        return "only 1-D and 2-D convolutions (rank 3 or 4 input) are supported on CUDA, got rank " +
               std::to_string(x->rank);
      const std::string pad = at.String("auto_pad", "NOTSET");
      if (pad != "NOTSET" && pad != "VALID" && pad != "SAME_UPPER" && pad != "SAME_LOWER")
        return "auto_pad '" + pad + "' is not supported";
      return "";
    }
    case kPoolOp: {
      why = CheckIn(g, n, 0, kFloat);
      if (!why.empty()) return why;
      if (op == "GlobalAveragePool") return "";
      const tsr_value_view* x = Val(g, n, 0, true);
      if (x && x->rank >= 0 && x->rank != 4) return "only 2-D pooling (rank 4 input) is supported on CUDA";
      if (op == "MaxPool" && n.num_outputs > 1 && n.outputs[1] >= 0)
        return "MaxPool's Indices output is not supported on CUDA";
      return "";
    }
    case kNormOp:
      if (op == "BatchNormalization") {
        if (at.Int("training_mode", 0) != 0) return "BatchNormalization training_mode=1 is not supported on CUDA";
        for (uint32_t k = 1; k < n.num_outputs; ++k)
          if (n.outputs[k] >= 0) return "BatchNormalization's running mean/var outputs are not supported on CUDA";
        return first({CheckIn(g, n, 0, kFloat), NeedConst(g, n, 1, "scale"), NeedConst(g, n, 2, "bias"),
                      NeedConst(g, n, 3, "mean"), NeedConst(g, n, 4, "var")});
      }
      why = first({CheckIn(g, n, 0, kFloat), SameDType(g, n, 0, 1), SameDType(g, n, 0, 2)});
      if (!why.empty()) return why;
      for (uint32_t k = 1; k < n.num_outputs; ++k) {
        const tsr_value_view* o = Val(g, n, k, false);
        if (o && o->dtype != TSR_DTYPE_F32) return "LayerNormalization Mean/InvStdDev outputs must be f32 on CUDA";
      }
      return "";
    case kSoftmaxOp: return CheckIn(g, n, 0, kFloat);
    case kReduceOp:
      return first({CheckIn(g, n, 0, kFloat), NeedConst(g, n, 1, "axes")});
    case kDataMove: {
      why = CheckIn(g, n, 0, kAny);
      if (!why.empty()) return why;
      // Reshape/Squeeze/Unsqueeze/Expand read their shape/axes input nowhere:
      // compile sees the static output shape, so that input may be computed.
      if (op == "Slice")
        return first({NeedConst(g, n, 1, "starts"), NeedConst(g, n, 2, "ends"), NeedConst(g, n, 3, "axes"),
                      NeedConst(g, n, 4, "steps")});
      if (op == "Split") return NeedConst(g, n, 1, "split");
      if (op == "Trilu") return NeedConst(g, n, 1, "k");
      if (op == "Dropout") {
        if (n.num_inputs > 2 && IsConst(g, n, 2) == false && Val(g, n, 2, true))
          return "Dropout training_mode (input 2) must be a constant false on CUDA";
        if (n.num_outputs > 1 && n.outputs[1] >= 0) {
          const tsr_value_view* m = Val(g, n, 1, false);
          if (m && m->dtype != TSR_DTYPE_BOOL) return "Dropout mask output must be bool";
        }
      }
      if (op == "Concat")
        for (uint32_t k = 1; k < n.num_inputs; ++k)
          if (!(why = SameDType(g, n, 0, k)).empty()) return why;
      return "";
    }
    case kGatherOp: return first({CheckIn(g, n, 0, kAny), CheckIn(g, n, 1, kIndex)});
    case kShapeOp:
      if (op == "Range") {
        const tsr_value_view* y = Val(g, n, 0, false);
        if (y && !In(y->dtype, {TSR_DTYPE_F32, TSR_DTYPE_F64, TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_I32, TSR_DTYPE_I64}))
          return std::string("Range of ") + plugin::DTypeName(y->dtype) + " is not supported on CUDA";
        return first({NeedConst(g, n, 0, "start"), NeedConst(g, n, 1, "limit"), NeedConst(g, n, 2, "delta")});
      }
      if (op == "ConstantOfShape") {
        const tsr_value_view* y = Val(g, n, 0, false);
        if (y && !In(y->dtype, kAny)) return "ConstantOfShape of this dtype is not supported";
      }
      return "";
    case kAttention: {
      why = first({CheckIn(g, n, 0, kFloat), SameDType(g, n, 0, 1), SameDType(g, n, 0, 2)});
      if (!why.empty()) return why;
      const tsr_value_view* q = Val(g, n, 0, true);
      const tsr_value_view* v = Val(g, n, 2, true);
      if (q && q->rank >= 0 && q->rank != 4) return "FusedAttention needs rank-4 [B,H,S,D] inputs on CUDA";
      if (q && q->rank == 4 && q->dims[3] > gpu::kAttnMaxHeadDim)
        return "FusedAttention head dim " + std::to_string(q->dims[3]) + " exceeds the CUDA kernel's limit of " +
               std::to_string(gpu::kAttnMaxHeadDim);
      if (v && v->rank == 4 && v->dims[3] > gpu::kAttnMaxHeadDim)
        return "FusedAttention value head dim exceeds the CUDA kernel's limit of " + std::to_string(gpu::kAttnMaxHeadDim);
      const tsr_value_view* m = Val(g, n, 3, true);
      if (m && m->dtype != TSR_DTYPE_BOOL && m->dtype != TSR_DTYPE_F32 && m->dtype != q->dtype)
        return std::string("FusedAttention mask of dtype ") + plugin::DTypeName(m->dtype) + " is not supported";
      return "";
    }
    case kFusedEw: {
      for (uint32_t k = 0; k < n.num_inputs; ++k) {
        why = CheckIn(g, n, k, kFloat);
        if (!why.empty()) return why;
        if (k > 0 && !(why = SameDType(g, n, 0, k)).empty()) return why;
      }
      if (n.num_inputs > static_cast<uint32_t>(gpu::kMaxEwInputs))
        return "FusedElementwise with more than " + std::to_string(gpu::kMaxEwInputs) + " inputs";
      const size_t instr = at.Ints("program").size() / 5;
      if (instr > static_cast<size_t>(gpu::kMaxEwInstr))
        return "FusedElementwise program longer than " + std::to_string(gpu::kMaxEwInstr) + " instructions";
      if (at.Floats("constants").size() > static_cast<size_t>(gpu::kMaxEwConsts))
        return "FusedElementwise with more than " + std::to_string(gpu::kMaxEwConsts) + " constants";
      return "";
    }
  }
  return "";
}

}  // namespace

std::string ClaimNode(const tsr_node_view& n, const tsr_graph_view& g) {
  const std::string domain = n.domain ? n.domain : "";
  const std::string op = n.op_type ? n.op_type : "";
  if (domain != "" && domain != "ai.onnx" && domain != "tessera")
    return "no CUDA kernel for op " + domain + "." + op;
  const std::string key = domain == "tessera" ? "tessera." + op : op;
  auto it = OpTable().find(key);
  if (it == OpTable().end()) return "no CUDA kernel for op " + key;
  for (uint32_t i = 0; i < n.num_inputs + n.num_outputs; ++i) {
    const int32_t vi = i < n.num_inputs ? n.inputs[i] : n.outputs[i - n.num_inputs];
    if (vi >= static_cast<int32_t>(g.num_values)) return "refers to a value index outside the graph";
  }
  const std::string why = ClaimImpl(n, g, it->second, key);
  return why.empty() ? ShapeLimits(n, g, key) : why;
}

std::vector<std::string> SupportedOps() {
  std::vector<std::string> v;
  for (const auto& [k, f] : OpTable()) v.push_back(k);
  return v;
}

// ---- attention tiling --------------------------------------------------------------------

AttentionTiling ChooseAttentionTiling(int64_t D, int64_t Dv, int64_t Sq, uint64_t smem_limit) {
  AttentionTiling t;
  if (D <= 0 || Dv <= 0 || D > gpu::kAttnMaxHeadDim || Dv > gpu::kAttnMaxHeadDim) {
    t.error = "head dims D=" + std::to_string(D) + ", Dv=" + std::to_string(Dv) + " must be in [1, " +
              std::to_string(gpu::kAttnMaxHeadDim) + "]";
    return t;
  }
  for (int rows : {8, 4, 2, 1}) {
    if (rows > 1 && Sq > 0 && rows / 2 >= Sq) continue;  // don't idle warps on tiny Sq
    const uint64_t bytes = static_cast<uint64_t>(
                               gpu::kAttnKeyTile * (D + 1) + gpu::kAttnKeyTile * (Dv + 1) + static_cast<int64_t>(rows) * D) *
                           sizeof(float);
    if (bytes <= smem_limit) {
      t.rows_per_block = rows;
      t.smem_bytes = bytes;
      return t;
    }
  }
  t.error = "head dims D=" + std::to_string(D) + ", Dv=" + std::to_string(Dv) + " need more than the device's " +
            std::to_string(smem_limit) + " bytes of shared memory per block";
  return t;
}

// ---- geometry ----------------------------------------------------------------------------

int64_t Numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::vector<int64_t> RowMajorStrides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int64_t i = static_cast<int64_t>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

Err BroadcastStrides(const std::vector<int64_t>& out, const std::vector<int64_t>& in, std::vector<int64_t>* strides) {
  if (in.size() > out.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: rank-%zu operand does not broadcast to rank %zu", in.size(),
                   out.size());
  const std::vector<int64_t> rs = RowMajorStrides(in);
  strides->assign(out.size(), 0);
  const size_t lead = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == out[lead + i]) {
      (*strides)[lead + i] = in[i] == 1 ? 0 : rs[i];
    } else if (in[i] == 1) {
      (*strides)[lead + i] = 0;
    } else {
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: dim %zu of size %lld does not broadcast to %lld", i,
                     static_cast<long long>(in[i]), static_cast<long long>(out[lead + i]));
    }
  }
  return Err::Ok();
}

Err MakeBcastGeom(const std::vector<int64_t>& out, const std::vector<std::vector<int64_t>>& ins, gpu::BcastGeom* g) {
  if (ins.size() > 3) return MakeErr(TSR_ERR_INTERNAL, "cuda backend: MakeBcastGeom takes at most 3 operands");
  std::vector<std::vector<int64_t>> st(ins.size());
  for (size_t k = 0; k < ins.size(); ++k) {
    Err e = BroadcastStrides(out, ins[k], &st[k]);
    if (!e.ok()) return e;
  }
  // Merge axis d into d-1 when, for every operand, stride[d-1] == stride[d] * dims[d].
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> ms(ins.size());
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1 && out.size() > 1) continue;  // size-1 axes contribute nothing
    bool merge = !dims.empty();
    for (size_t k = 0; merge && k < ins.size(); ++k) merge = ms[k].back() == st[k][d] * out[d];
    if (merge) {
      dims.back() *= out[d];
      for (size_t k = 0; k < ins.size(); ++k) ms[k].back() = st[k][d];
    } else {
      dims.push_back(out[d]);
      for (size_t k = 0; k < ins.size(); ++k) ms[k].push_back(st[k][d]);
    }
  }
  if (dims.empty()) {
    dims.push_back(1);
    for (auto& m : ms) m.push_back(0);
  }
  if (dims.size() > static_cast<size_t>(gpu::kMaxRank))
    return MakeErr(TSR_ERR_UNSUPPORTED, "cuda backend: broadcast of rank %zu exceeds the kernel limit of %d", dims.size(),
                   gpu::kMaxRank);
  *g = gpu::BcastGeom{};
  g->rank = static_cast<int32_t>(dims.size());
  for (size_t d = 0; d < dims.size(); ++d) {
    g->dims[d] = dims[d];
    for (size_t k = 0; k < ins.size(); ++k) g->strides[k][d] = ms[k][d];
  }
  return Err::Ok();
}

Err MakeTransposeGeom(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& perm, gpu::CopyGeom* g) {
  const size_t r = in_dims.size();
  if (perm.size() != r)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: perm has %zu entries for a rank-%zu tensor", perm.size(), r);
  if (r > static_cast<size_t>(gpu::kMaxRank))
    return MakeErr(TSR_ERR_UNSUPPORTED, "cuda backend: transpose of rank %zu exceeds the kernel limit of %d", r,
                   gpu::kMaxRank);
  std::vector<bool> seen(r, false);
  const std::vector<int64_t> is = RowMajorStrides(in_dims);
  std::vector<int64_t> od(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t p = perm[i];
    if (p < 0 || p >= static_cast<int64_t>(r) || seen[p])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: perm is not a permutation of 0..%zu", r - 1);
    seen[p] = true;
    od[i] = in_dims[p];
  }
  const std::vector<int64_t> os = RowMajorStrides(od);
  *g = gpu::CopyGeom{};
  g->rank = static_cast<int32_t>(r);
  for (size_t i = 0; i < r; ++i) {
    g->dims[i] = od[i];
    g->src_strides[i] = is[perm[i]];
    g->dst_strides[i] = os[i];
  }
  return Err::Ok();
}

Err ReduceShape(const std::vector<int64_t>& dims, const std::vector<int64_t>& axes, int64_t* outer, int64_t* R,
                int64_t* inner) {
  const int64_t r = static_cast<int64_t>(dims.size());
  std::vector<bool> red(dims.size(), false);
  for (int64_t a : axes) {
    const int64_t x = a < 0 ? a + r : a;
    if (x < 0 || x >= r)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: reduce axis %lld out of range for rank %lld",
                     static_cast<long long>(a), static_cast<long long>(r));
    red[x] = true;
  }
  // The reduced axes with size > 1 must form one contiguous run.
  int64_t first = -1, last = -1;
  for (int64_t i = 0; i < r; ++i)
    if (red[i] && dims[i] != 1) {
      if (first < 0) first = i;
      last = i;
    }
  *outer = 1;
  *R = 1;
  *inner = 1;
  if (first < 0) {
    *outer = Numel(dims);
    return Err::Ok();
  }
  for (int64_t i = first; i <= last; ++i)
    if (!red[i] && dims[i] != 1)
      return MakeErr(TSR_ERR_UNSUPPORTED, "cuda backend: reduction over non-adjacent axes is not supported");
  for (int64_t i = 0; i < first; ++i) *outer *= dims[i];
  for (int64_t i = first; i <= last; ++i) *R *= dims[i];
  for (int64_t i = last + 1; i < r; ++i) *inner *= dims[i];
  return Err::Ok();
}

}  // namespace tessera::cuda
