// CUDA kernels of the element-wise, reduction, normalization, pooling,
// attention and data-movement ops (the GEMM/conv ops that go through
// cuBLASLt/cuDNN are in cuda_blas_dnn.cpp). Each factory validates dtypes, ranks and attributes
// and precomputes the launch geometry; Run only enqueues launchers of
// cuda_launch.h on ctx.stream.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>

#include "backends/cuda/cuda_launch.h"
#include "backends/cuda/cuda_ops.h"

namespace tessera::cuda {

std::string CudaErrorText(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

Err LaunchErr(cudaError_t e, const std::string& who, const char* what) {
  if (e == cudaSuccess) return Err::Ok();
  const int32_t code = e == cudaErrorMemoryAllocation ? TSR_ERR_OUT_OF_MEMORY : TSR_ERR_INTERNAL;
  return MakeErr(code, "%s: %s failed: %s", who.c_str(), what, CudaErrorText(e).c_str());
}
Err LaunchErr(cudaError_t e, const NodeArgs& a, const char* what) { return LaunchErr(e, a.Describe(), what); }

namespace {

using plugin::NodeAttrs;

bool IsFloat(int32_t dt) { return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_F16 || dt == TSR_DTYPE_BF16; }

Err Need(bool cond, const NodeArgs& a, const char* fmt_what) {
  if (cond) return Err::Ok();
  return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", a.Describe().c_str(), fmt_what);
}

Err Unsupported(const NodeArgs& a, const std::string& why) {
  return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s", a.Describe().c_str(), why.c_str());
}

// Reads constant input i as int64 values (i32 or i64).
Err ConstInts(const NodeArgs& a, size_t i, const char* what, std::vector<int64_t>* out) {
  const TensorArg* t = a.inputs[i];
  if (!t->const_data)
    return Unsupported(a, std::string(what) + " (input " + std::to_string(i) + ") must be a constant on CUDA");
  out->clear();
  for (int64_t k = 0; k < t->numel; ++k) {
    if (t->dtype == TSR_DTYPE_I64) out->push_back(static_cast<const int64_t*>(t->const_data)[k]);
    else if (t->dtype == TSR_DTYPE_I32) out->push_back(static_cast<const int32_t*>(t->const_data)[k]);
    else return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s must be i32 or i64", a.Describe().c_str(), what);
  }
  return Err::Ok();
}

// Reads element 0 of a constant float/int input as double.
bool ConstScalar(const TensorArg* t, double* v) {
  if (!t || !t->const_data || t->numel < 1) return false;
  const void* p = t->const_data;
  switch (t->dtype) {
    case TSR_DTYPE_F32: *v = *static_cast<const float*>(p); return true;
    case TSR_DTYPE_F64: *v = *static_cast<const double*>(p); return true;
    case TSR_DTYPE_F16: *v = plugin::HalfBitsToFloat(*static_cast<const uint16_t*>(p)); return true;
    case TSR_DTYPE_BF16: *v = plugin::BF16BitsToFloat(*static_cast<const uint16_t*>(p)); return true;
    case TSR_DTYPE_I32: *v = *static_cast<const int32_t*>(p); return true;
    case TSR_DTYPE_I64: *v = static_cast<double>(*static_cast<const int64_t*>(p)); return true;
    default: return false;
  }
}

int64_t NormAxis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

int64_t Prod(const std::vector<int64_t>& d, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e && i < d.size(); ++i) p *= d[i];
  return p;
}

// Device memory owned by a kernel (constants it computes at compile time).
class DeviceBlob {
 public:
  DeviceBlob() = default;
  DeviceBlob(const DeviceBlob&) = delete;
  DeviceBlob& operator=(const DeviceBlob&) = delete;
  ~DeviceBlob() {
    if (p_) cudaFree(p_);
  }
  Err Upload(const void* host, size_t bytes, const std::string& who) {
    if (bytes == 0) return Err::Ok();
    cudaError_t e = cudaMalloc(&p_, bytes);
    if (e != cudaSuccess) {
      p_ = nullptr;
      cudaGetLastError();
      return LaunchErr(e, who, "cudaMalloc of a kernel constant");
    }
    e = cudaMemcpy(p_, host, bytes, cudaMemcpyHostToDevice);
    return LaunchErr(e, who, "uploading a kernel constant");
  }
  const void* get() const { return p_; }

 private:
  void* p_ = nullptr;
};

// ---- element-wise register programs -------------------------------------------------------

// Fills the input geometry of `p` for inputs broadcast to `out`.
Err EwGeometry(const NodeArgs& a, const std::vector<const TensorArg*>& ins, gpu::EwProgram* p) {
  const std::vector<int64_t>& out = a.outputs[0]->dims;
  if (ins.size() > static_cast<size_t>(gpu::kMaxEwInputs))
    return Unsupported(a, "more than " + std::to_string(gpu::kMaxEwInputs) + " inputs");
  if (out.size() > static_cast<size_t>(gpu::kMaxRank))
    return Unsupported(a, "rank " + std::to_string(out.size()) + " exceeds the kernel limit");
  p->num_inputs = static_cast<int32_t>(ins.size());
  p->rank = static_cast<int32_t>(out.size());
  for (size_t d = 0; d < out.size(); ++d) p->dims[d] = out[d];
  for (size_t j = 0; j < ins.size(); ++j) {
    if (ins[j]->dims == out) {
      p->flat[j] = 1;
      continue;
    }
    if (ins[j]->numel == 1) {
      p->flat[j] = 2;
      continue;
    }
    std::vector<int64_t> st;
    Err e = BroadcastStrides(out, ins[j]->dims, &st);
    if (!e.ok()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu: %s", a.Describe().c_str(), j, e.message.c_str());
    for (size_t d = 0; d < st.size(); ++d) p->strides[j][d] = st[d];
  }
  return Err::Ok();
}

class EwProgramKernel final : public GpuKernel {
 public:
  EwProgramKernel(const gpu::EwProgram& p, int32_t dtype, int64_t n, std::vector<int> in_map, std::string who)
      : p_(p), dtype_(dtype), n_(n), in_map_(std::move(in_map)), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    const void* ptrs[gpu::kMaxEwInputs] = {};
    for (size_t j = 0; j < in_map_.size(); ++j) ptrs[j] = in[in_map_[j]];
    return LaunchErr(LaunchEwProgram(dtype_, p_, ptrs, out[0], n_, c.stream), who_, "elementwise kernel");
  }

 private:
  gpu::EwProgram p_;
  int32_t dtype_;
  int64_t n_;
  std::vector<int> in_map_;  // program input j = node input in_map_[j]
  std::string who_;
};

// One-instruction programs: unary ops, and binary / variadic ops (chained).
int32_t UnaryOpcode(const std::string& op) {
  static const std::map<std::string, int32_t> m = {
      {"Sqrt", gpu::kEwSqrt}, {"Exp", gpu::kEwExp}, {"Log", gpu::kEwLog}, {"Erf", gpu::kEwErf},
      {"Tanh", gpu::kEwTanh}, {"Sigmoid", gpu::kEwSigmoid}, {"Relu", gpu::kEwRelu},
      {"LeakyRelu", gpu::kEwLeakyRelu}, {"Clip", gpu::kEwClip}, {"Gelu", gpu::kEwGelu}, {"Neg", gpu::kEwNeg},
      {"Abs", gpu::kEwAbs}, {"Reciprocal", gpu::kEwReciprocal}, {"HardSigmoid", gpu::kEwHardSigmoid},
      {"HardSwish", gpu::kEwHardSwish}, {"Softplus", gpu::kEwSoftplus}, {"Identity", gpu::kEwCopy}};
  auto it = m.find(op);
  return it == m.end() ? -1 : it->second;
}
int32_t BinaryOpcode(const std::string& op) {
  static const std::map<std::string, int32_t> m = {{"Add", gpu::kEwAdd}, {"Sub", gpu::kEwSub}, {"Mul", gpu::kEwMul},
                                                   {"Div", gpu::kEwDiv}, {"Max", gpu::kEwMax}, {"Min", gpu::kEwMin},
                                                   {"Pow", gpu::kEwPow}};
  auto it = m.find(op);
  return it == m.end() ? -1 : it->second;
}

Err CreateIntBinary(const NodeArgs& a, int32_t opcode, std::unique_ptr<GpuKernel>* out);

Err CreateElementwise(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const std::string op = a.node->op_type;
  if (a.inputs.empty() || !a.inputs[0] || !a.has_output(0)) return Need(false, a, "needs an input and an output");
  const int32_t dt = a.inputs[0]->dtype;
  const int32_t bop = BinaryOpcode(op);
  const bool unary = bop < 0;
  if (!IsFloat(dt)) {
    if (dt == TSR_DTYPE_I32 || dt == TSR_DTYPE_I64) {
      if (op == "Neg") return CreateIntBinary(a, gpu::kEwNeg, out);
      if (op == "Abs") return CreateIntBinary(a, gpu::kEwAbs, out);
      if (!unary && op != "Pow") {
        if (a.inputs.size() != 2 || !a.inputs[1])
          return Unsupported(a, "integer " + op + " takes exactly two inputs on CUDA");
        return CreateIntBinary(a, bop, out);
      }
    }
    return Unsupported(a, std::string("dtype ") + plugin::DTypeName(dt) + " (the CUDA kernel takes f32/f16/bf16)");
  }
  if (a.outputs[0]->dtype != dt) return Need(false, a, "output dtype differs from the input's");
  gpu::EwProgram p;
  std::vector<const TensorArg*> ins;
  std::vector<int> in_map;
  NodeAttrs at = a.attrs();
  if (unary) {
    int32_t code = UnaryOpcode(op);
    if (std::string(a.node->domain) == "tessera" && op == "Gelu") code = gpu::kEwGelu;
    if (code < 0) return Unsupported(a, "no CUDA elementwise kernel");
    float p1 = 0, p2 = 0;
    if (op == "LeakyRelu") p1 = at.Float("alpha", 0.01f);
    if (op == "HardSigmoid") {
      p1 = at.Float("alpha", 0.2f);
      p2 = at.Float("beta", 0.5f);
    }
    if (op == "Gelu") {
      const std::string approx = at.String("approximate", "none");
      if (approx == "tanh") code = gpu::kEwGeluTanh;
      else if (approx != "none")
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'approximate' must be \"none\" or \"tanh\", got \"%s\"",
                       a.Describe().c_str(), approx.c_str());
    }
    if (op == "Clip") {
      double lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
      if (at.Has("min")) lo = at.Float("min", 0.f);
      if (at.Has("max")) hi = at.Float("max", 0.f);
      for (size_t k = 1; k <= 2; ++k) {
        if (!a.has_input(k)) continue;
        double v = 0;
        if (!ConstScalar(a.inputs[k], &v))
          return Unsupported(a, std::string(k == 1 ? "min" : "max") + " must be a constant on CUDA");
        (k == 1 ? lo : hi) = v;
      }
      p1 = static_cast<float>(lo);
      p2 = static_cast<float>(hi);
    }
    ins.push_back(a.inputs[0]);
    in_map.push_back(0);
    p.op[0] = code;
    p.a[0] = 0;
    p.b[0] = -1;
    p.p1[0] = p1;
    p.p2[0] = p2;
    p.num_instr = 1;
  } else {
    // Binary, or variadic Max/Min chained left to right.
    for (size_t k = 0; k < a.inputs.size(); ++k) {
      if (!a.inputs[k]) continue;
      if (a.inputs[k]->dtype != dt) return Need(false, a, "inputs differ in dtype");
      ins.push_back(a.inputs[k]);
      in_map.push_back(static_cast<int>(k));
    }
    if (ins.size() < 2 && (op == "Max" || op == "Min")) {
      p.op[0] = gpu::kEwCopy;
      p.a[0] = 0;
      p.b[0] = -1;
      p.num_instr = 1;
    } else {
      if (ins.size() < 2) return Need(false, a, "needs two inputs");
      if (ins.size() > static_cast<size_t>(gpu::kMaxEwInputs)) return Unsupported(a, "too many inputs");
      const int n = static_cast<int>(ins.size());
      for (int k = 0; k < n - 1; ++k) {
        p.op[k] = bop;
        p.a[k] = static_cast<int16_t>(k == 0 ? 0 : n + k - 1);
        p.b[k] = static_cast<int16_t>(k + 1);
      }
      p.num_instr = n - 1;
    }
  }
  Err e = EwGeometry(a, ins, &p);
  if (!e.ok()) return e;
  *out = std::make_unique<EwProgramKernel>(p, dt, a.outputs[0]->numel, in_map, a.Describe());
  return Err::Ok();
}

// tessera.FusedElementwise: the node's program, translated 1:1.
Err CreateFusedElementwise(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  NodeAttrs at = a.attrs();
  const std::vector<int64_t> prog = at.Ints("program");
  const std::vector<float> consts = at.Floats("constants");
  const int n = static_cast<int>(a.inputs.size());
  const int K = static_cast<int>(consts.size());
  if (prog.empty() || prog.size() % 5 != 0) return Need(false, a, "attribute 'program' must hold 5 ints per instruction");
  const int num_instr = static_cast<int>(prog.size() / 5);
  if (num_instr > gpu::kMaxEwInstr || K > gpu::kMaxEwConsts || n > gpu::kMaxEwInputs)
    return Unsupported(a, "program exceeds the CUDA kernel's limits (32 instructions, 16 constants, 8 inputs)");
  if (!a.has_output(0)) return Need(false, a, "needs an output");
  const int32_t dt = a.outputs[0]->dtype;
  if (!IsFloat(dt)) return Unsupported(a, std::string("dtype ") + plugin::DTypeName(dt));
  std::vector<const TensorArg*> ins;
  std::vector<int> in_map;
  for (int k = 0; k < n; ++k) {
    if (!a.inputs[k] || a.inputs[k]->dtype != dt) return Need(false, a, "every input must be present with the output's dtype");
    ins.push_back(a.inputs[k]);
    in_map.push_back(k);
  }
  gpu::EwProgram p;
  p.num_consts = K;
  for (int c = 0; c < K; ++c) p.consts[c] = consts[c];
  auto const_val = [&](int64_t reg, float* v) {
    if (reg < n || reg >= n + K) return false;
    *v = consts[reg - n];
    return true;
  };
  for (int i = 0; i < num_instr; ++i) {
    const int64_t* ins5 = &prog[5 * i];
    const int64_t opc = ins5[0], dst = ins5[1], ra = ins5[2], rb = ins5[3], rc = ins5[4];
    if (opc < 0 || opc > gpu::kEwSoftplus) return Need(false, a, "program has an unknown opcode");
    if (dst != n + K + i) return Need(false, a, "program: instruction dst must be the next register");
    if (ra < 0 || ra >= dst) return Need(false, a, "program: operand a must name an earlier register");
    p.op[i] = static_cast<int32_t>(opc);
    p.a[i] = static_cast<int16_t>(ra);
    p.b[i] = -1;
    const bool binary = opc <= gpu::kEwPow;
    if (binary) {
      if (rb < 0 || rb >= dst) return Need(false, a, "program: operand b must name an earlier register");
      p.b[i] = static_cast<int16_t>(rb);
    } else if (opc == gpu::kEwLeakyRelu) {
      if (!const_val(rb, &p.p1[i])) return Need(false, a, "program: LeakyRelu alpha must be a constant register");
    } else if (opc == gpu::kEwClip || opc == gpu::kEwHardSigmoid) {
      if (!const_val(rb, &p.p1[i]) || !const_val(rc, &p.p2[i]))
        return Need(false, a, "program: Clip/HardSigmoid parameters must be constant registers");
    }
  }
  p.num_instr = num_instr;
  Err e = EwGeometry(a, ins, &p);
  if (!e.ok()) return e;
  *out = std::make_unique<EwProgramKernel>(p, dt, a.outputs[0]->numel, in_map, a.Describe());
  return Err::Ok();
}

// ---- comparisons, logic, integer arithmetic, Where, Cast ----------------------------------

class BcastKernel final : public GpuKernel {
 public:
  enum Kind { kCompare, kIntBinary, kWhere, kNot };
  BcastKernel(Kind k, int32_t op, int32_t dtype, size_t esize, const gpu::BcastGeom& g, int64_t n, std::string who)
      : kind_(k), op_(op), dtype_(dtype), esize_(esize), g_(g), n_(n), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    cudaError_t e = cudaSuccess;
    switch (kind_) {
      case kCompare: e = LaunchCompare(dtype_, op_, g_, in[0], in[1], out[0], n_, c.stream); break;
      case kIntBinary: {
        const bool unary = op_ == gpu::kEwNeg || op_ == gpu::kEwAbs;  // in[1] does not exist
        e = LaunchIntBinary(dtype_, op_, g_, in[0], unary ? in[0] : in[1], out[0], n_, c.stream);
        break;
      }
      case kWhere: e = LaunchWhere(esize_, g_, in[0], in[1], in[2], out[0], n_, c.stream); break;
      case kNot: e = LaunchNot(in[0], out[0], n_, c.stream); break;
    }
    return LaunchErr(e, who_, "kernel launch");
  }

 private:
  Kind kind_;
  int32_t op_, dtype_;
  size_t esize_;
  gpu::BcastGeom g_;
  int64_t n_;
  std::string who_;
};

Err MakeGeom(const NodeArgs& a, size_t nops, gpu::BcastGeom* g) {
  std::vector<std::vector<int64_t>> dims;
  for (size_t k = 0; k < nops; ++k) {
    if (!a.has_input(k)) return Need(false, a, "missing input");
    dims.push_back(a.inputs[k]->dims);
  }
  Err e = MakeBcastGeom(a.outputs[0]->dims, dims, g);
  if (!e.ok()) return MakeErr(e.code, "%s: %s", a.Describe().c_str(), e.message.c_str());
  return Err::Ok();
}

Err CreateIntBinary(const NodeArgs& a, int32_t opcode, std::unique_ptr<GpuKernel>* out) {
  gpu::BcastGeom g;
  const bool unary = opcode == gpu::kEwNeg || opcode == gpu::kEwAbs;
  Err e = MakeGeom(a, unary ? 1 : 2, &g);
  if (!e.ok()) return e;
  if (!unary && a.inputs[1]->dtype != a.inputs[0]->dtype) return Need(false, a, "inputs differ in dtype");
  *out = std::make_unique<BcastKernel>(BcastKernel::kIntBinary, opcode, a.inputs[0]->dtype, 0, g, a.outputs[0]->numel,
                                       a.Describe());
  return Err::Ok();
}

Err CreateCompare(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  static const std::map<std::string, int32_t> m = {
      {"Equal", gpu::kCmpEqual}, {"Greater", gpu::kCmpGreater}, {"GreaterOrEqual", gpu::kCmpGreaterOrEqual},
      {"Less", gpu::kCmpLess}, {"LessOrEqual", gpu::kCmpLessOrEqual}, {"And", gpu::kCmpAnd}, {"Or", gpu::kCmpOr},
      {"Xor", gpu::kCmpXor}};
  auto it = m.find(a.node->op_type);
  if (it == m.end()) return Unsupported(a, "no CUDA comparison kernel");
  gpu::BcastGeom g;
  Err e = MakeGeom(a, 2, &g);
  if (!e.ok()) return e;
  const int32_t dt = a.inputs[0]->dtype;
  if (a.inputs[1]->dtype != dt) return Need(false, a, "inputs differ in dtype");
  if (a.outputs[0]->dtype != TSR_DTYPE_BOOL) return Need(false, a, "output must be bool");
  const bool logic = it->second >= gpu::kCmpAnd;
  if (logic ? dt != TSR_DTYPE_BOOL
            : !(IsFloat(dt) || dt == TSR_DTYPE_I32 || dt == TSR_DTYPE_I64 || dt == TSR_DTYPE_BOOL))
    return Unsupported(a, std::string("dtype ") + plugin::DTypeName(dt));
  *out = std::make_unique<BcastKernel>(BcastKernel::kCompare, it->second, dt, 0, g, a.outputs[0]->numel, a.Describe());
  return Err::Ok();
}

Err CreateNot(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  if (!a.has_input(0) || a.inputs[0]->dtype != TSR_DTYPE_BOOL) return Need(false, a, "input must be bool");
  *out = std::make_unique<BcastKernel>(BcastKernel::kNot, 0, TSR_DTYPE_BOOL, 1, gpu::BcastGeom{}, a.outputs[0]->numel,
                                       a.Describe());
  return Err::Ok();
}

Err CreateWhere(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  gpu::BcastGeom g;
  Err e = MakeGeom(a, 3, &g);
  if (!e.ok()) return e;
  if (a.inputs[0]->dtype != TSR_DTYPE_BOOL) return Need(false, a, "condition must be bool");
  if (a.inputs[1]->dtype != a.inputs[2]->dtype) return Need(false, a, "X and Y differ in dtype");
  const size_t es = plugin::DTypeSize(a.inputs[1]->dtype);
  if (es != 1 && es != 2 && es != 4 && es != 8) return Unsupported(a, "element size");
  *out = std::make_unique<BcastKernel>(BcastKernel::kWhere, 0, a.inputs[1]->dtype, es, g, a.outputs[0]->numel,
                                       a.Describe());
  return Err::Ok();
}

// Plain device-to-device copy of input 0 into output 0 (Reshape & co., same-dtype Cast).
class CopyKernel final : public GpuKernel {
 public:
  CopyKernel(int64_t bytes, int64_t mask_elems, std::string who)
      : bytes_(bytes), mask_elems_(mask_elems), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    if (bytes_ > 0 && in[0] != out[0]) {
      Err e = LaunchErr(cudaMemcpyAsync(out[0], in[0], static_cast<size_t>(bytes_), cudaMemcpyDeviceToDevice, c.stream),
                        who_, "cudaMemcpyAsync");
      if (!e.ok()) return e;
    }
    if (mask_elems_ > 0 && out[1]) {  // Dropout's mask: all true in inference
      const uint8_t one = 1;
      return LaunchErr(LaunchFill(1, out[1], &one, mask_elems_, c.stream), who_, "mask fill");
    }
    return Err::Ok();
  }

 private:
  int64_t bytes_, mask_elems_;
  std::string who_;
};

Err CreateCopy(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  if (!a.has_input(0) || !a.has_output(0)) return Need(false, a, "needs an input and an output");
  if (a.inputs[0]->nbytes() != a.outputs[0]->nbytes() || a.inputs[0]->dtype != a.outputs[0]->dtype)
    return Need(false, a, "output size or dtype differs from the input's");
  int64_t mask = 0;
  const std::string op = a.node->op_type;
  if (op == "Dropout") {
    if (a.has_input(2)) {
      double tm = 0;
      if (!ConstScalar(a.inputs[2], &tm) && !(a.inputs[2]->const_data && a.inputs[2]->dtype == TSR_DTYPE_BOOL))
        return Unsupported(a, "training_mode must be a constant false on CUDA");
      if (a.inputs[2]->dtype == TSR_DTYPE_BOOL) tm = *static_cast<const uint8_t*>(a.inputs[2]->const_data);
      if (tm != 0) return Unsupported(a, "training_mode=true is not supported on CUDA");
    }
    if (a.has_output(1)) mask = a.outputs[1]->numel;
  }
  *out = std::make_unique<CopyKernel>(a.inputs[0]->nbytes(), mask, a.Describe());
  return Err::Ok();
}

class CastKernel final : public GpuKernel {
 public:
  CastKernel(int32_t s, int32_t d, int64_t n, std::string who) : s_(s), d_(d), n_(n), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    return LaunchErr(LaunchCast(s_, d_, in[0], out[0], n_, c.stream), who_, "cast kernel");
  }

 private:
  int32_t s_, d_;
  int64_t n_;
  std::string who_;
};

Err CreateCast(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  if (!a.has_input(0) || !a.has_output(0)) return Need(false, a, "needs an input and an output");
  const int32_t s = a.inputs[0]->dtype, d = a.outputs[0]->dtype;
  if (s == d) return CreateCopy(a, out);
  static const std::vector<int32_t> ok = {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_F64, TSR_DTYPE_I32,
                                          TSR_DTYPE_I64, TSR_DTYPE_I8,  TSR_DTYPE_U8,   TSR_DTYPE_BOOL};
  if (std::find(ok.begin(), ok.end(), s) == ok.end() || std::find(ok.begin(), ok.end(), d) == ok.end())
    return Unsupported(a, std::string("Cast ") + plugin::DTypeName(s) + " -> " + plugin::DTypeName(d));
  *out = std::make_unique<CastKernel>(s, d, a.outputs[0]->numel, a.Describe());
  return Err::Ok();
}

// ---- data movement ---------------------------------------------------------------------

class StridedCopyKernel final : public GpuKernel {
 public:
  StridedCopyKernel(size_t esize, const gpu::CopyGeom& g, int64_t n, std::string who)
      : esize_(esize), g_(g), n_(n), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    return LaunchErr(LaunchStridedCopy(esize_, g_, in[0], out[0], n_, c.stream), who_, "strided copy");
  }

 private:
  size_t esize_;
  gpu::CopyGeom g_;
  int64_t n_;
  std::string who_;
};

Err CheckEsize(const NodeArgs& a, size_t es) {
  if (es == 1 || es == 2 || es == 4 || es == 8) return Err::Ok();
  return Unsupported(a, "element size must be 1, 2, 4 or 8 bytes");
}

Err CreateTranspose(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const TensorArg& x = *a.inputs[0];
  std::vector<int64_t> perm = a.attrs().Ints("perm");
  if (perm.empty())
    for (int64_t i = static_cast<int64_t>(x.dims.size()) - 1; i >= 0; --i) perm.push_back(i);
  gpu::CopyGeom g;
  Err e = MakeTransposeGeom(x.dims, perm, &g);
  if (!e.ok()) return MakeErr(e.code, "%s: %s", a.Describe().c_str(), e.message.c_str());
  e = CheckEsize(a, x.elem_size());
  if (!e.ok()) return e;
  *out = std::make_unique<StridedCopyKernel>(x.elem_size(), g, a.outputs[0]->numel, a.Describe());
  return Err::Ok();
}

Err CreateExpand(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const TensorArg& x = *a.inputs[0];
  const std::vector<int64_t>& od = a.outputs[0]->dims;
  if (od.size() > static_cast<size_t>(gpu::kMaxRank)) return Unsupported(a, "rank exceeds the kernel limit");
  std::vector<int64_t> st;
  Err e = BroadcastStrides(od, x.dims, &st);
  if (!e.ok()) return MakeErr(e.code, "%s: %s", a.Describe().c_str(), e.message.c_str());
  e = CheckEsize(a, x.elem_size());
  if (!e.ok()) return e;
  gpu::CopyGeom g;
  g.rank = static_cast<int32_t>(od.size());
  const std::vector<int64_t> os = RowMajorStrides(od);
  for (size_t d = 0; d < od.size(); ++d) {
    g.dims[d] = od[d];
    g.src_strides[d] = st[d];
    g.dst_strides[d] = os[d];
  }
  if (g.rank == 0) {
    g.rank = 1;
    g.dims[0] = 1;
  }
  *out = std::make_unique<StridedCopyKernel>(x.elem_size(), g, a.outputs[0]->numel, a.Describe());
  return Err::Ok();
}

Err CreateSlice(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const TensorArg& x = *a.inputs[0];
  const int64_t r = static_cast<int64_t>(x.dims.size());
  NodeAttrs at = a.attrs();
  std::vector<int64_t> starts, ends, axes, steps;
  if (at.Has("starts")) {  // opset < 10
    starts = at.Ints("starts");
    ends = at.Ints("ends");
    axes = at.Ints("axes");
  } else {
    Err e = ConstInts(a, 1, "starts", &starts);
    if (e.ok()) e = ConstInts(a, 2, "ends", &ends);
    if (e.ok() && a.has_input(3)) e = ConstInts(a, 3, "axes", &axes);
    if (e.ok() && a.has_input(4)) e = ConstInts(a, 4, "steps", &steps);
    if (!e.ok()) return e;
  }
  if (axes.empty())
    for (int64_t i = 0; i < static_cast<int64_t>(starts.size()); ++i) axes.push_back(i);
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    return Need(false, a, "starts, ends, axes and steps differ in length");
  if (r > gpu::kMaxRank) return Unsupported(a, "rank exceeds the kernel limit");
  std::vector<int64_t> st(r, 0), step(r, 1);
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t ax = NormAxis(axes[k], r);
    if (ax < 0 || ax >= r) return Need(false, a, "axis out of range");
    const int64_t dim = x.dims[ax], s = steps[k];
    if (s == 0) return Need(false, a, "step 0");
    int64_t b = starts[k] < 0 ? starts[k] + dim : starts[k];
    b = s > 0 ? std::clamp<int64_t>(b, 0, dim) : std::clamp<int64_t>(b, 0, dim - 1);
    st[ax] = b;
    step[ax] = s;
  }
  const std::vector<int64_t>& od = a.outputs[0]->dims;
  if (static_cast<int64_t>(od.size()) != r) return Need(false, a, "output rank differs from the input's");
  Err e = CheckEsize(a, x.elem_size());
  if (!e.ok()) return e;
  const std::vector<int64_t> is = RowMajorStrides(x.dims), os = RowMajorStrides(od);
  gpu::CopyGeom g;
  g.rank = static_cast<int32_t>(std::max<int64_t>(r, 1));
  g.dims[0] = 1;
  for (int64_t d = 0; d < r; ++d) {
    g.dims[d] = od[d];
    g.src_strides[d] = is[d] * step[d];
    g.dst_strides[d] = os[d];
    g.src_offset += st[d] * is[d];
    if (od[d] > 0 && (st[d] + (od[d] - 1) * step[d] < 0 || st[d] + (od[d] - 1) * step[d] >= x.dims[d]))
      return Need(false, a, "the output shape does not match the slice parameters");
  }
  *out = std::make_unique<StridedCopyKernel>(x.elem_size(), g, a.outputs[0]->numel, a.Describe());
  return Err::Ok();
}

// Concat / Split as 2-D copies: [outer, extent_i * inner] blocks.
class BlockCopyKernel final : public GpuKernel {
 public:
  struct Part {
    int io;                 // input (Concat) or output (Split) index
    size_t width;           // bytes per row of the part
    size_t offset;          // byte offset of the part in the big tensor's row
  };
  BlockCopyKernel(bool concat, size_t rows, size_t big_pitch, std::vector<Part> parts, std::string who)
      : concat_(concat), rows_(rows), big_pitch_(big_pitch), parts_(std::move(parts)), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    for (const Part& p : parts_) {
      if (p.width == 0 || rows_ == 0) continue;
      cudaError_t e;
      if (concat_) {
        e = cudaMemcpy2DAsync(static_cast<char*>(out[0]) + p.offset, big_pitch_, in[p.io], p.width, p.width, rows_,
                              cudaMemcpyDeviceToDevice, c.stream);
      } else {
        if (!out[p.io]) continue;
        e = cudaMemcpy2DAsync(out[p.io], p.width, static_cast<const char*>(in[0]) + p.offset, big_pitch_, p.width,
                              rows_, cudaMemcpyDeviceToDevice, c.stream);
      }
      Err er = LaunchErr(e, who_, "cudaMemcpy2DAsync");
      if (!er.ok()) return er;
    }
    return Err::Ok();
  }

 private:
  bool concat_;
  size_t rows_, big_pitch_;
  std::vector<Part> parts_;
  std::string who_;
};

Err CreateConcatSplit(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const bool concat = std::string(a.node->op_type) == "Concat";
  const TensorArg* big = concat ? a.outputs[0] : a.inputs[0];
  const int64_t r = static_cast<int64_t>(big->dims.size());
  const int64_t axis = NormAxis(a.attrs().Int("axis", 0), r);
  if (axis < 0 || axis >= r) return Need(false, a, "axis out of range");
  const int64_t es = big->elem_size();
  const int64_t outer = Prod(big->dims, 0, axis), inner = Prod(big->dims, axis + 1, r);
  std::vector<BlockCopyKernel::Part> parts;
  int64_t off = 0;
  const auto& list = concat ? a.inputs : a.outputs;
  for (size_t k = 0; k < list.size(); ++k) {
    if (!list[k]) {
      if (concat) return Need(false, a, "missing input");
      continue;  // unused Split output: still occupies its extent below (unknown): reject
    }
    const TensorArg& t = *list[k];
    if (static_cast<int64_t>(t.dims.size()) != r || t.dtype != big->dtype)
      return Need(false, a, "parts differ in rank or dtype");
    for (int64_t d = 0; d < r; ++d)
      if (d != axis && t.dims[d] != big->dims[d])
        return Need(false, a, "parts differ in a dimension other than the axis");
    const int64_t ext = t.dims[axis];
    parts.push_back({static_cast<int>(k), static_cast<size_t>(ext * inner * es), static_cast<size_t>(off * inner * es)});
    off += ext;
  }
  if (off != big->dims[axis]) {
    // Split with an unused output: extents come from the split attribute/input.
    return Unsupported(a, "parts do not cover the axis (an unused Split output?)");
  }
  *out = std::make_unique<BlockCopyKernel>(concat, static_cast<size_t>(outer), static_cast<size_t>(big->dims[axis] * inner * es),
                                           std::move(parts), a.Describe());
  return Err::Ok();
}

class TriluKernel final : public GpuKernel {
 public:
  TriluKernel(size_t es, int64_t rows, int64_t cols, int64_t k, bool upper, int64_t n, std::string who)
      : es_(es), rows_(rows), cols_(cols), k_(k), upper_(upper), n_(n), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    return LaunchErr(LaunchTrilu(es_, in[0], out[0], rows_, cols_, k_, upper_, n_, c.stream), who_, "trilu kernel");
  }

 private:
  size_t es_;
  int64_t rows_, cols_, k_;
  bool upper_;
  int64_t n_;
  std::string who_;
};

Err CreateTrilu(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const TensorArg& x = *a.inputs[0];
  if (x.dims.size() < 2) return Need(false, a, "input must have rank >= 2");
  int64_t k = 0;
  if (a.has_input(1)) {
    std::vector<int64_t> kv;
    Err e = ConstInts(a, 1, "k", &kv);
    if (!e.ok()) return e;
    if (kv.size() != 1) return Need(false, a, "k must be a scalar");
    k = kv[0];
  }
  Err e = CheckEsize(a, x.elem_size());
  if (!e.ok()) return e;
  const size_t r = x.dims.size();
  *out = std::make_unique<TriluKernel>(x.elem_size(), x.dims[r - 2], x.dims[r - 1], k, a.attrs().Int("upper", 1) != 0,
                                       x.numel, a.Describe());
  return Err::Ok();
}

class GatherKernel final : public GpuKernel {
 public:
  GatherKernel(bool elements, size_t es, int32_t idt, int64_t outer, int64_t axis_dim, int64_t num_idx, int64_t inner,
               int32_t rank, int32_t axis, const gpu::BcastGeom& g, int64_t n, std::string who)
      : elements_(elements), es_(es), idt_(idt), outer_(outer), axis_dim_(axis_dim), num_idx_(num_idx), inner_(inner),
        rank_(rank), axis_(axis), g_(g), n_(n), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    cudaError_t e = elements_ ? LaunchGatherElements(es_, idt_, in[0], in[1], out[0], rank_, axis_, g_, n_, c.stream)
                              : LaunchGather(es_, idt_, in[0], in[1], out[0], outer_, axis_dim_, num_idx_, inner_,
                                             c.stream);
    return LaunchErr(e, who_, "gather kernel");
  }

 private:
  bool elements_;
  size_t es_;
  int32_t idt_;
  int64_t outer_, axis_dim_, num_idx_, inner_;
  int32_t rank_, axis_;
  gpu::BcastGeom g_;
  int64_t n_;
  std::string who_;
};

// Out-of-range indices cannot be reported from an asynchronous kernel: the
// GPU writes zeros for them (the CPU backend reports an error instead).
Err CreateGather(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const bool elements = std::string(a.node->op_type) == "GatherElements";
  const TensorArg& x = *a.inputs[0];
  const TensorArg& idx = *a.inputs[1];
  if (idx.dtype != TSR_DTYPE_I32 && idx.dtype != TSR_DTYPE_I64) return Need(false, a, "indices must be i32 or i64");
  const int64_t r = static_cast<int64_t>(x.dims.size());
  const int64_t axis = NormAxis(a.attrs().Int("axis", 0), r);
  if (axis < 0 || axis >= r) return Need(false, a, "axis out of range");
  Err e = CheckEsize(a, x.elem_size());
  if (!e.ok()) return e;
  gpu::BcastGeom g;
  if (elements) {
    if (idx.dims.size() != x.dims.size() || r > gpu::kMaxRank) return Need(false, a, "indices rank must equal data rank");
    const std::vector<int64_t> ds = RowMajorStrides(x.dims);
    g.rank = static_cast<int32_t>(r);
    for (int64_t d = 0; d < r; ++d) {
      g.dims[d] = idx.dims[d];
      g.strides[0][d] = ds[d];
      g.strides[1][d] = x.dims[d];
    }
  }
  *out = std::make_unique<GatherKernel>(elements, x.elem_size(), idx.dtype, Prod(x.dims, 0, axis), x.dims[axis],
                                        idx.numel, Prod(x.dims, axis + 1, r), static_cast<int32_t>(r),
                                        static_cast<int32_t>(axis), g, a.outputs[0]->numel, a.Describe());
  return Err::Ok();
}

// Outputs known at compile time (Shape, ConstantOfShape, Range): uploaded
// once, copied (or filled) on every run.
class ConstOutputKernel final : public GpuKernel {
 public:
  ConstOutputKernel(int64_t bytes, std::string who) : bytes_(bytes), who_(std::move(who)) {}
  Err Init(const void* host) { return blob_.Upload(host, static_cast<size_t>(bytes_), who_); }
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    if (bytes_ == 0) return Err::Ok();
    return LaunchErr(cudaMemcpyAsync(out[0], blob_.get(), static_cast<size_t>(bytes_), cudaMemcpyDeviceToDevice, c.stream),
                     who_, "cudaMemcpyAsync");
  }

 private:
  int64_t bytes_;
  std::string who_;
  DeviceBlob blob_;
};

class FillKernelOp final : public GpuKernel {
 public:
  FillKernelOp(size_t es, uint64_t bits, int64_t n, std::string who) : es_(es), bits_(bits), n_(n), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    return LaunchErr(LaunchFill(es_, out[0], &bits_, n_, c.stream), who_, "fill kernel");
  }

 private:
  size_t es_;
  uint64_t bits_;
  int64_t n_;
  std::string who_;
};

Err EncodeDouble(int32_t dt, double v, void* dst) {
  switch (dt) {
    case TSR_DTYPE_F32: { float f = static_cast<float>(v); std::memcpy(dst, &f, 4); return Err::Ok(); }
    case TSR_DTYPE_F64: std::memcpy(dst, &v, 8); return Err::Ok();
    case TSR_DTYPE_F16: { uint16_t h = plugin::FloatToHalfBits(static_cast<float>(v)); std::memcpy(dst, &h, 2); return Err::Ok(); }
    case TSR_DTYPE_BF16: { uint16_t h = plugin::FloatToBF16Bits(static_cast<float>(v)); std::memcpy(dst, &h, 2); return Err::Ok(); }
    case TSR_DTYPE_I32: { int32_t i = static_cast<int32_t>(v); std::memcpy(dst, &i, 4); return Err::Ok(); }
    case TSR_DTYPE_I64: { int64_t i = static_cast<int64_t>(v); std::memcpy(dst, &i, 8); return Err::Ok(); }
    default: return MakeErr(TSR_ERR_UNSUPPORTED, "dtype %s", plugin::DTypeName(dt));
  }
}

Err CreateShapeOps(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const std::string op = a.node->op_type;
  if (!a.has_output(0)) return Need(false, a, "needs an output");
  const TensorArg& y = *a.outputs[0];
  if (op == "ConstantOfShape") {
    uint64_t bits = 0;
    const tsr_tensor_view* v = a.attrs().Tensor("value");
    const size_t es = static_cast<size_t>(y.elem_size());
    Err e = CheckEsize(a, es);
    if (!e.ok()) return e;
    if (v) {
      if (v->dtype != y.dtype || v->nbytes < es || !v->data) return Need(false, a, "value's dtype differs from the output's");
      std::memcpy(&bits, v->data, es);
    }
    *out = std::make_unique<FillKernelOp>(es, bits, y.numel, a.Describe());
    return Err::Ok();
  }
  std::vector<uint8_t> host(static_cast<size_t>(y.nbytes()));
  if (op == "Shape") {
    const TensorArg& x = *a.inputs[0];
    const int64_t r = static_cast<int64_t>(x.dims.size());
    int64_t s = a.attrs().Int("start", 0), e = a.attrs().Int("end", r);
    s = std::clamp<int64_t>(s < 0 ? s + r : s, 0, r);
    e = std::clamp<int64_t>(e < 0 ? e + r : e, 0, r);
    if (y.dtype != TSR_DTYPE_I64 || y.numel != std::max<int64_t>(0, e - s)) return Need(false, a, "output must be i64 [end-start]");
    for (int64_t i = s; i < e; ++i) std::memcpy(&host[(i - s) * 8], &x.dims[i], 8);
  } else {  // Range
    double start = 0, delta = 0;
    if (!ConstScalar(a.inputs[0], &start) || !ConstScalar(a.inputs[2], &delta))
      return Unsupported(a, "start and delta must be constants on CUDA");
    const int64_t es = y.elem_size();
    for (int64_t i = 0; i < y.numel; ++i) {
      Err e = EncodeDouble(y.dtype, start + static_cast<double>(i) * delta, &host[i * es]);
      if (!e.ok()) return Unsupported(a, e.message);
    }
  }
  auto k = std::make_unique<ConstOutputKernel>(y.nbytes(), a.Describe());
  Err e = k->Init(host.data());
  if (!e.ok()) return e;
  *out = std::move(k);
  return Err::Ok();
}

// ---- reductions, softmax, normalization ---------------------------------------------------

class ReduceKernel final : public GpuKernel {
 public:
  ReduceKernel(int32_t dt, int32_t op, int64_t outer, int64_t R, int64_t inner, std::string who)
      : dt_(dt), op_(op), outer_(outer), R_(R), inner_(inner), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    return LaunchErr(LaunchReduce(dt_, op_, in[0], out[0], outer_, R_, inner_, c.stream), who_, "reduce kernel");
  }

 private:
  int32_t dt_, op_;
  int64_t outer_, R_, inner_;
  std::string who_;
};

Err CreateReduce(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const std::string op = a.node->op_type;
  const TensorArg& x = *a.inputs[0];
  if (!IsFloat(x.dtype)) return Unsupported(a, std::string("dtype ") + plugin::DTypeName(x.dtype));
  int32_t rop = gpu::kRedSum;
  if (op == "ReduceMean" || op == "GlobalAveragePool") rop = gpu::kRedMean;
  if (op == "ReduceMax") rop = gpu::kRedMax;
  if (op == "ReduceMin") rop = gpu::kRedMin;
  int64_t outer = 1, R = 1, inner = 1;
  if (op == "GlobalAveragePool") {
    if (x.dims.size() < 2) return Need(false, a, "input must have rank >= 2");
    outer = x.dims[0] * x.dims[1];
    R = Prod(x.dims, 2, x.dims.size());
  } else {
    NodeAttrs at = a.attrs();
    std::vector<int64_t> axes;
    if (at.Has("axes")) {
      axes = at.Ints("axes");
    } else if (a.has_input(1)) {
      Err e = ConstInts(a, 1, "axes", &axes);
      if (!e.ok()) return e;
    }
    if (axes.empty()) {
      if (at.Int("noop_with_empty_axes", 0)) return CreateCopy(a, out);
      for (int64_t i = 0; i < static_cast<int64_t>(x.dims.size()); ++i) axes.push_back(i);
    }
    Err e = ReduceShape(x.dims, axes, &outer, &R, &inner);
    if (!e.ok()) return MakeErr(e.code, "%s: %s", a.Describe().c_str(), e.message.c_str());
  }
  if (a.outputs[0]->numel != outer * inner) return Need(false, a, "output size does not match the reduction");
  *out = std::make_unique<ReduceKernel>(x.dtype, rop, outer, R, inner, a.Describe());
  return Err::Ok();
}

class SoftmaxKernel final : public GpuKernel {
 public:
  SoftmaxKernel(int32_t dt, int64_t outer, int64_t C, int64_t inner, bool log, std::string who)
      : dt_(dt), outer_(outer), C_(C), inner_(inner), log_(log), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    return LaunchErr(LaunchSoftmax(dt_, in[0], out[0], outer_, C_, inner_, log_, c.stream), who_, "softmax kernel");
  }

 private:
  int32_t dt_;
  int64_t outer_, C_, inner_;
  bool log_;
  std::string who_;
};

Err CreateSoftmax(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const TensorArg& x = *a.inputs[0];
  if (!IsFloat(x.dtype)) return Unsupported(a, std::string("dtype ") + plugin::DTypeName(x.dtype));
  const int64_t r = static_cast<int64_t>(x.dims.size());
  const bool old = a.node->opset > 0 && a.node->opset < 13;
  const int64_t axis = NormAxis(a.attrs().Int("axis", old ? 1 : -1), r);
  if (r == 0) return Need(false, a, "input must have rank >= 1");
  if (axis < 0 || axis >= r) return Need(false, a, "axis out of range");
  int64_t outer = Prod(x.dims, 0, axis), C, inner;
  if (old) {
    C = Prod(x.dims, axis, r);
    inner = 1;
  } else {
    C = x.dims[axis];
    inner = Prod(x.dims, axis + 1, r);
  }
  *out = std::make_unique<SoftmaxKernel>(x.dtype, outer, C, inner, std::string(a.node->op_type) == "LogSoftmax",
                                         a.Describe());
  return Err::Ok();
}

class LayerNormKernel final : public GpuKernel {
 public:
  LayerNormKernel(int32_t dt, int64_t rows, int64_t C, float eps, bool bias, bool mean, bool inv, std::string who)
      : dt_(dt), rows_(rows), C_(C), eps_(eps), bias_(bias), mean_(mean), inv_(inv), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    // in/out hold only the node's inputs/outputs: index 2 exists only when present.
    return LaunchErr(LaunchLayerNorm(dt_, in[0], in[1], bias_ ? in[2] : nullptr, out[0],
                                     mean_ ? static_cast<float*>(out[1]) : nullptr,
                                     inv_ ? static_cast<float*>(out[2]) : nullptr, rows_, C_, eps_, c.stream),
                     who_, "layernorm kernel");
  }

 private:
  int32_t dt_;
  int64_t rows_, C_;
  float eps_;
  bool bias_, mean_, inv_;
  std::string who_;
};

Err CreateLayerNorm(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const TensorArg& x = *a.inputs[0];
  if (!IsFloat(x.dtype)) return Unsupported(a, std::string("dtype ") + plugin::DTypeName(x.dtype));
  const int64_t r = static_cast<int64_t>(x.dims.size());
  const int64_t axis = NormAxis(a.attrs().Int("axis", -1), r);
  if (axis < 0 || axis >= r) return Need(false, a, "axis out of range");
  const int64_t C = Prod(x.dims, axis, r);
  if (!a.has_input(1) || a.inputs[1]->numel != C || a.inputs[1]->dtype != x.dtype)
    return Unsupported(a, "Scale must have the normalized shape and the input's dtype (no broadcasting on CUDA)");
  if (a.has_input(2) && (a.inputs[2]->numel != C || a.inputs[2]->dtype != x.dtype))
    return Unsupported(a, "B must have the normalized shape and the input's dtype (no broadcasting on CUDA)");
  for (size_t k = 1; k <= 2; ++k)
    if (a.has_output(k) && a.outputs[k]->dtype != TSR_DTYPE_F32)
      return Unsupported(a, "Mean/InvStdDev outputs must be f32 on CUDA");
  *out = std::make_unique<LayerNormKernel>(x.dtype, Prod(x.dims, 0, axis), C, a.attrs().Float("epsilon", 1e-5f),
                                           a.has_input(2), a.has_output(1), a.has_output(2), a.Describe());
  return Err::Ok();
}

class ChannelAffineKernel final : public GpuKernel {
 public:
  ChannelAffineKernel(int32_t dt, int64_t C, int64_t inner, int64_t n, std::string who)
      : dt_(dt), C_(C), inner_(inner), n_(n), who_(std::move(who)) {}
  Err Init(const std::vector<float>& ab) { return params_.Upload(ab.data(), ab.size() * sizeof(float), who_); }
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    const float* p = static_cast<const float*>(params_.get());
    return LaunchErr(LaunchChannelAffine(dt_, in[0], p, p + C_, out[0], C_, inner_, n_, c.stream), who_,
                     "batchnorm kernel");
  }

 private:
  int32_t dt_;
  int64_t C_, inner_, n_;
  std::string who_;
  DeviceBlob params_;
};

bool ReadFloats(const TensorArg* t, int64_t n, std::vector<double>* v) {
  if (!t || !t->const_data || t->numel != n) return false;
  v->resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const void* p = t->const_data;
    switch (t->dtype) {
      case TSR_DTYPE_F32: (*v)[i] = static_cast<const float*>(p)[i]; break;
      case TSR_DTYPE_F64: (*v)[i] = static_cast<const double*>(p)[i]; break;
      case TSR_DTYPE_F16: (*v)[i] = plugin::HalfBitsToFloat(static_cast<const uint16_t*>(p)[i]); break;
      case TSR_DTYPE_BF16: (*v)[i] = plugin::BF16BitsToFloat(static_cast<const uint16_t*>(p)[i]); break;
      default: return false;
    }
  }
  return true;
}

Err CreateBatchNorm(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const TensorArg& x = *a.inputs[0];
  if (!IsFloat(x.dtype)) return Unsupported(a, std::string("dtype ") + plugin::DTypeName(x.dtype));
  if (a.attrs().Int("training_mode", 0) != 0) return Unsupported(a, "training_mode=1 is not supported on CUDA");
  if (x.dims.size() < 2) return Need(false, a, "input must have rank >= 2");
  const int64_t C = x.dims[1];
  std::vector<double> sc, bi, mu, var;
  if (a.inputs.size() < 5 || !ReadFloats(a.inputs[1], C, &sc) || !ReadFloats(a.inputs[2], C, &bi) ||
      !ReadFloats(a.inputs[3], C, &mu) || !ReadFloats(a.inputs[4], C, &var))
    return Unsupported(a, "scale, B, mean and var must be constant float tensors of C elements on CUDA");
  const double eps = a.attrs().Float("epsilon", 1e-5f);
  std::vector<float> ab(2 * C);
  for (int64_t c = 0; c < C; ++c) {
    const double s = sc[c] / std::sqrt(var[c] + eps);
    ab[c] = static_cast<float>(s);
    ab[C + c] = static_cast<float>(bi[c] - mu[c] * s);
  }
  auto k = std::make_unique<ChannelAffineKernel>(x.dtype, C, Prod(x.dims, 2, x.dims.size()), x.numel, a.Describe());
  Err e = k->Init(ab);
  if (!e.ok()) return e;
  *out = std::move(k);
  return Err::Ok();
}

// ---- attention --------------------------------------------------------------------------

class AttentionKernel final : public GpuKernel {
 public:
  AttentionKernel(int32_t dt, const gpu::AttnArgs& args, uint64_t smem, std::string who)
      : dt_(dt), args_(args), smem_(smem), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    return LaunchErr(LaunchFlashAttention(dt_, args_, in[0], in[1], in[2], args_.mask_kind ? in[3] : nullptr, out[0],
                                          static_cast<size_t>(smem_), c.stream),
                     who_, "attention kernel");
  }

 private:
  int32_t dt_;
  gpu::AttnArgs args_;
  uint64_t smem_;
  std::string who_;
};

Err CreateAttention(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  if (a.inputs.size() < 3 || !a.inputs[0] || !a.inputs[1] || !a.inputs[2]) return Need(false, a, "needs Q, K and V");
  const TensorArg &q = *a.inputs[0], &k = *a.inputs[1], &v = *a.inputs[2];
  if (!IsFloat(q.dtype) || k.dtype != q.dtype || v.dtype != q.dtype)
    return Unsupported(a, "Q, K, V must share one of f32/f16/bf16");
  if (q.dims.size() != 4 || k.dims.size() != 4 || v.dims.size() != 4) return Unsupported(a, "Q, K, V must be rank 4");
  gpu::AttnArgs p;
  p.B = q.dims[0];
  p.H = q.dims[1];
  p.Sq = q.dims[2];
  p.D = q.dims[3];
  p.Sk = k.dims[2];
  p.Dv = v.dims[3];
  if (k.dims[0] != p.B || k.dims[1] != p.H || k.dims[3] != p.D || v.dims[0] != p.B || v.dims[1] != p.H ||
      v.dims[2] != p.Sk)
    return Need(false, a, "Q, K, V shapes are inconsistent (expected [B,H,Sq,D], [B,H,Sk,D], [B,H,Sk,Dv])");
  if (p.B * p.H > 65535) return Unsupported(a, "B*H exceeds 65535");
  NodeAttrs at = a.attrs();
  p.scale = at.Has("scale") ? at.Float("scale", 1.f) : 1.f / std::sqrt(static_cast<float>(p.D));
  p.causal = at.Int("causal", 0) != 0;
  if (a.has_input(3)) {
    const TensorArg& m = *a.inputs[3];
    p.mask_kind = m.dtype == TSR_DTYPE_BOOL ? 1 : m.dtype == TSR_DTYPE_F32 ? 2 : m.dtype == q.dtype ? 3 : 0;
    if (!p.mask_kind) return Unsupported(a, std::string("mask dtype ") + plugin::DTypeName(m.dtype));
    std::vector<int64_t> st;
    Err e = BroadcastStrides({p.B, p.H, p.Sq, p.Sk}, m.dims, &st);
    if (!e.ok()) return MakeErr(e.code, "%s: mask: %s", a.Describe().c_str(), e.message.c_str());
    for (int d = 0; d < 4; ++d) p.mstride[d] = st[d];
  }
  AttentionTiling t = ChooseAttentionTiling(p.D, p.Dv, p.Sq, a.device.smem_optin);
  if (!t.error.empty()) return Unsupported(a, t.error);
  p.rows_per_block = t.rows_per_block;
  Err pe = LaunchErr(PrepareFlashAttention(q.dtype, static_cast<size_t>(t.smem_bytes)), a, "raising the shared-memory limit");
  if (!pe.ok()) return pe;
  *out = std::make_unique<AttentionKernel>(q.dtype, p, t.smem_bytes, a.Describe());
  return Err::Ok();
}

// ---- pooling ---------------------------------------------------------------------------------
// Own kernel (gpu_kernels/reduce.cuh): handles asymmetric pads, ceil_mode
// (the output shape is given) and every float type.

class PoolKernel final : public GpuKernel {
 public:
  PoolKernel(int32_t dt, const gpu::PoolArgs& p, std::string who) : dt_(dt), p_(p), who_(std::move(who)) {}
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    return LaunchErr(LaunchPool(dt_, p_, in[0], out[0], c.stream), who_, "pool kernel");
  }

 private:
  int32_t dt_;
  gpu::PoolArgs p_;
  std::string who_;
};

Err CreatePool(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const TensorArg &X = *a.inputs[0], &Y = *a.outputs[0];
  const bool is_max = std::string(a.node->op_type) == "MaxPool";
  if (!IsFloat(X.dtype) || Y.dtype != X.dtype)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s (the CUDA kernel takes f32/f16/bf16)", a.Describe().c_str(),
                   plugin::DTypeName(X.dtype));
  if (X.dims.size() != 4 || Y.dims.size() != 4 || Y.dims[0] != X.dims[0] || Y.dims[1] != X.dims[1])
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: only 2-D pooling of [N,C,H,W] is supported on CUDA", a.Describe().c_str());
  if (a.has_output(1)) return MakeErr(TSR_ERR_UNSUPPORTED, "%s: MaxPool Indices output is not supported on CUDA", a.Describe().c_str());
  NodeAttrs at = a.attrs();
  const std::vector<int64_t> kernel = at.Ints("kernel_shape");
  if (kernel.size() != 2 || kernel[0] < 1 || kernel[1] < 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: kernel_shape must have 2 positive entries", a.Describe().c_str());
  const std::vector<int64_t> strides = at.Ints("strides", {1, 1});
  const std::vector<int64_t> dil = at.Ints("dilations", {1, 1});
  if (strides.size() != 2 || dil.size() != 2 || strides[0] < 1 || strides[1] < 1 || dil[0] < 1 || dil[1] < 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: strides/dilations must have 2 positive entries", a.Describe().c_str());
  gpu::PoolArgs p;
  p.NC = X.dims[0] * X.dims[1];
  p.H = X.dims[2];
  p.W = X.dims[3];
  p.OH = Y.dims[2];
  p.OW = Y.dims[3];
  p.kh = static_cast<int32_t>(kernel[0]);
  p.kw = static_cast<int32_t>(kernel[1]);
  p.sh = static_cast<int32_t>(strides[0]);
  p.sw = static_cast<int32_t>(strides[1]);
  p.dh = static_cast<int32_t>(dil[0]);
  p.dw = static_cast<int32_t>(dil[1]);
  const std::string ap = at.String("auto_pad", "NOTSET");
  std::vector<int64_t> pads = at.Ints("pads", {0, 0, 0, 0});
  if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
    const int64_t in[2] = {p.H, p.W}, o[2] = {p.OH, p.OW};
    for (int i = 0; i < 2; ++i) {
      const int64_t need = std::max<int64_t>(0, (o[i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - in[i]);
      pads[i] = ap == "SAME_UPPER" ? need / 2 : need - need / 2;
      pads[2 + i] = need - pads[i];
    }
  } else if (ap == "VALID") {
    pads = {0, 0, 0, 0};
  }
  if (pads.size() != 4) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: pads must have 4 entries", a.Describe().c_str());
  p.pt = static_cast<int32_t>(pads[0]);
  p.pl = static_cast<int32_t>(pads[1]);
  p.pb = static_cast<int32_t>(pads[2]);
  p.pr = static_cast<int32_t>(pads[3]);
  p.is_max = is_max ? 1 : 0;
  p.count_include_pad = static_cast<int32_t>(at.Int("count_include_pad", 0));
  *out = std::make_unique<PoolKernel>(X.dtype, p, a.Describe());
  return Err::Ok();
}

}  // namespace

// ---- activation helpers for GEMM/conv epilogues ---------------------------------------------

Err ParseActivation(const NodeArgs& a, int32_t* op, float* p1, float* p2) {
  NodeAttrs at = a.attrs();
  const std::string act = at.String("activation", "");
  const float alpha = at.Float("activation_alpha", 0.f), beta = at.Float("activation_beta", 0.f);
  *p1 = 0;
  *p2 = 0;
  if (act.empty()) *op = gpu::kEwCopy;
  else if (act == "Relu") *op = gpu::kEwRelu;
  else if (act == "LeakyRelu") { *op = gpu::kEwLeakyRelu; *p1 = at.Has("activation_alpha") ? alpha : 0.01f; }
  else if (act == "Clip") {
    *op = gpu::kEwClip;
    *p1 = at.Has("activation_alpha") ? alpha : -std::numeric_limits<float>::infinity();
    *p2 = at.Has("activation_beta") ? beta : std::numeric_limits<float>::infinity();
    if (!(*p1 <= *p2))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Clip activation has min %g > max %g", a.Describe().c_str(),
                     static_cast<double>(*p1), static_cast<double>(*p2));
  }
  else if (act == "Sigmoid") *op = gpu::kEwSigmoid;
  else if (act == "Tanh") *op = gpu::kEwTanh;
  else if (act == "Gelu") *op = gpu::kEwGelu;
  else if (act == "GeluTanh") *op = gpu::kEwGeluTanh;
  else if (act == "Silu") *op = gpu::kEwSilu;
  else if (act == "Swish") { *op = gpu::kEwSwish; *p1 = at.Has("activation_alpha") ? alpha : 1.f; }
  else if (act == "HardSwish") *op = gpu::kEwHardSwish;
  else
    return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                   "%s: unknown activation '%s' (expected one of Relu, LeakyRelu, Clip, Sigmoid, Tanh, Gelu, GeluTanh, "
                   "Silu, Swish, HardSwish)",
                   a.Describe().c_str(), act.c_str());
  return Err::Ok();
}

cudaError_t LaunchActivation(int32_t dtype, int32_t op, float p1, float p2, const void* x, const void* res, void* y,
                             int64_t n, cudaStream_t s) {
  gpu::EwProgram p;
  p.rank = 1;
  p.dims[0] = n;
  p.flat[0] = p.flat[1] = 1;
  const void* ins[gpu::kMaxEwInputs] = {x, res};
  p.num_inputs = res ? 2 : 1;
  int k = 0;
  int reg = 0;
  if (res) {
    p.op[k] = gpu::kEwAdd;
    p.a[k] = 0;
    p.b[k] = 1;
    reg = 2 + k;
    ++k;
  }
  p.op[k] = op;
  p.a[k] = static_cast<int16_t>(reg);
  p.b[k] = -1;
  p.p1[k] = p1;
  p.p2[k] = p2;
  p.num_instr = k + 1;
  return LaunchEwProgram(dtype, p, ins, y, n, s);
}

cudaError_t LaunchBiasActivation(int32_t dtype, int32_t op, float p1, float p2, const void* x, const void* bias,
                                 int64_t rows, int64_t cols, bool bias_per_row, const void* res, void* y,
                                 cudaStream_t s) {
  gpu::EwProgram p;
  p.rank = 2;
  p.dims[0] = rows;
  p.dims[1] = cols;
  p.flat[0] = 1;
  p.strides[1][0] = bias_per_row ? 1 : 0;
  p.strides[1][1] = bias_per_row ? 0 : 1;
  p.flat[2] = 1;
  const void* ins[gpu::kMaxEwInputs] = {x, bias, res};
  p.num_inputs = res ? 3 : 2;
  p.op[0] = gpu::kEwAdd;
  p.a[0] = 0;
  p.b[0] = 1;
  int k = 1, reg = p.num_inputs;  // register of instruction 0
  if (res) {
    p.op[k] = gpu::kEwAdd;
    p.a[k] = static_cast<int16_t>(reg);
    p.b[k] = 2;
    reg = p.num_inputs + k;
    ++k;
  }
  p.op[k] = op;
  p.a[k] = static_cast<int16_t>(reg);
  p.b[k] = -1;
  p.p1[k] = p1;
  p.p2[k] = p2;
  p.num_instr = k + 1;
  return LaunchEwProgram(dtype, p, ins, y, rows * cols, s);
}

void AppendElementwiseKernels(std::vector<KernelTableEntry>& t) {
  for (const char* op : {"Sqrt", "Exp", "Log", "Erf", "Tanh", "Sigmoid", "Relu", "LeakyRelu", "Clip", "Gelu",
                         "Reciprocal", "HardSigmoid", "HardSwish", "Softplus", "tessera.Gelu", "Add", "Sub", "Mul",
                         "Div", "Max", "Min", "Neg", "Abs", "Pow"})
    t.push_back({op, &CreateElementwise});
  t.push_back({"tessera.FusedElementwise", &CreateFusedElementwise});
  for (const char* op : {"Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor"})
    t.push_back({op, &CreateCompare});
  t.push_back({"Not", &CreateNot});
  t.push_back({"Where", &CreateWhere});
  t.push_back({"Cast", &CreateCast});
  for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
    t.push_back({op, &CreateCopy});
  t.push_back({"Transpose", &CreateTranspose});
  t.push_back({"Expand", &CreateExpand});
  t.push_back({"Slice", &CreateSlice});
  t.push_back({"Concat", &CreateConcatSplit});
  t.push_back({"Split", &CreateConcatSplit});
  t.push_back({"Trilu", &CreateTrilu});
  t.push_back({"Gather", &CreateGather});
  t.push_back({"GatherElements", &CreateGather});
  for (const char* op : {"Shape", "ConstantOfShape", "Range"}) t.push_back({op, &CreateShapeOps});
  for (const char* op : {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "GlobalAveragePool"})
    t.push_back({op, &CreateReduce});
  t.push_back({"Softmax", &CreateSoftmax});
  t.push_back({"LogSoftmax", &CreateSoftmax});
  t.push_back({"LayerNormalization", &CreateLayerNorm});
  t.push_back({"BatchNormalization", &CreateBatchNorm});
  t.push_back({"tessera.FusedAttention", &CreateAttention});
  t.push_back({"MaxPool", &CreatePool});
  t.push_back({"AveragePool", &CreatePool});
}

KernelFactory FindKernelFactory(const std::string& key) {
  static const std::map<std::string, KernelFactory> table = [] {
    std::vector<KernelTableEntry> t;
    AppendElementwiseKernels(t);
    AppendLibraryKernels(t);
    std::map<std::string, KernelFactory> m;
    for (const KernelTableEntry& e : t) m.emplace(e.key, e.create);
    return m;
  }();
  auto it = table.find(key);
  return it == table.end() ? nullptr : it->second;
}

}  // namespace tessera::cuda
