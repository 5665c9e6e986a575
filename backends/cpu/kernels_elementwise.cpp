// Elementwise CPU kernels: logical ops (And/Or/Xor/Not), Where and
// Identity (Cast/CastLike are in kernels_quant.cpp). Bool tensors are one byte per element (0 =
// false; any other value reads as true; kernels write 0 or 1). Arithmetic,
// comparisons, unary math, activations, Clip and Dropout over every dtype
// live in kernels_math.cpp.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

constexpr int64_t kCheapGrain = 32768;    // elements per task for trivial ops

const char* DT(int32_t dt) { return plugin::DTypeName(dt); }

// ---- dtype groups ------------------------------------------------------------------------

std::string ClaimBool(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimDTypeIn(n, g, 0, {TSR_DTYPE_BOOL}); }
std::string ClaimData0(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimFixedSize(n, g, 0); }
std::string ClaimWhere(const tsr_node_view& n, const tsr_graph_view& g) { return ClaimFixedSize(n, g, 1); }

// ---- logic ---------------------------------------------------------------------------------------

struct AndOp { uint8_t operator()(uint8_t a, uint8_t b) const { return (a != 0) & (b != 0); } };
struct OrOp { uint8_t operator()(uint8_t a, uint8_t b) const { return (a != 0) | (b != 0); } };
struct XorOp { uint8_t operator()(uint8_t a, uint8_t b) const { return (a != 0) ^ (b != 0); } };

template <typename Op>
Err CreateLogical(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 2, 2, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &a = *args.inputs[0], &b = *args.inputs[1], &y = *args.outputs[0];
  if (a.dtype != TSR_DTYPE_BOOL || b.dtype != TSR_DTYPE_BOOL || y.dtype != TSR_DTYPE_BOOL)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inputs and output must be bool (got %s, %s -> %s)",
                   args.Describe().c_str(), DT(a.dtype), DT(b.dtype), DT(y.dtype));
  Broadcast bc;
  std::string why = MakeBroadcast(y.dims, {&a.dims, &b.dims}, &bc);
  if (!why.empty()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), why.c_str());
  *out = MakeFnKernel([bc](const void* const* in, void* const* o) -> Err {
    BroadcastBinary(bc, static_cast<const uint8_t*>(in[0]), static_cast<const uint8_t*>(in[1]),
                    static_cast<uint8_t*>(o[0]), Op{}, kCheapGrain);
    return Err::Ok();
  });
  return Err::Ok();
}

// ---- unary ------------------------------------------------------------------------------------

template <typename T, typename Op>
std::unique_ptr<Kernel> MakeUnary(int64_t n, Op op, int64_t grain) {
  return MakeFnKernel([n, op, grain](const void* const* in, void* const* o) -> Err {
    const T* x = static_cast<const T*>(in[0]);
    T* y = static_cast<T*>(o[0]);
    ParallelFor(n, grain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) y[i] = op(x[i]);
    });
    return Err::Ok();
  });
}

Err CreateNot(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  if (args.inputs[0]->dtype != TSR_DTYPE_BOOL || args.outputs[0]->dtype != TSR_DTYPE_BOOL)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input and output must be bool, got %s -> %s", args.Describe().c_str(),
                   DT(args.inputs[0]->dtype), DT(args.outputs[0]->dtype));
  *out = MakeUnary<uint8_t>(args.inputs[0]->numel, [](uint8_t x) -> uint8_t { return x == 0; }, kCheapGrain);
  return Err::Ok();
}

// ---- Where --------------------------------------------------------------------------------------

template <typename T>
void RunWhere(const Broadcast& bc, const uint8_t* c, const T* x, const T* yv, T* out) {
  const int64_t sc = bc.inner_stride(0), sx = bc.inner_stride(1), sy = bc.inner_stride(2);
  ForEachRun(bc, kCheapGrain, [&](int64_t oo, const int64_t* off, int64_t n) {
    const uint8_t* pc = c + off[0];
    const T* px = x + off[1];
    const T* py = yv + off[2];
    T* po = out + oo;
    if (sc && sx && sy) {
      for (int64_t i = 0; i < n; ++i) po[i] = pc[i] ? px[i] : py[i];
    } else {
      for (int64_t i = 0; i < n; ++i) po[i] = pc[sc * i] ? px[sx * i] : py[sy * i];
    }
  });
}

Err CreateWhere(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 3, 3, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &c = *args.inputs[0], &x = *args.inputs[1], &yv = *args.inputs[2], &o = *args.outputs[0];
  if (c.dtype != TSR_DTYPE_BOOL)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: condition must be bool, got %s", args.Describe().c_str(), DT(c.dtype));
  if (x.dtype != yv.dtype || o.dtype != x.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: X, Y and output dtypes differ (%s, %s -> %s)", args.Describe().c_str(),
                   DT(x.dtype), DT(yv.dtype), DT(o.dtype));
  Broadcast bc;
  std::string why = MakeBroadcast(o.dims, {&c.dims, &x.dims, &yv.dims}, &bc);
  if (!why.empty()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s", args.Describe().c_str(), why.c_str());
  auto make = [&](auto tag) {
    using T = decltype(tag);
    *out = MakeFnKernel([bc](const void* const* in, void* const* op) -> Err {
      RunWhere(bc, static_cast<const uint8_t*>(in[0]), static_cast<const T*>(in[1]), static_cast<const T*>(in[2]),
               static_cast<T*>(op[0]));
      return Err::Ok();
    });
  };
  switch (x.elem_size()) {
    case 1: make(uint8_t{}); break;
    case 2: make(uint16_t{}); break;
    case 4: make(uint32_t{}); break;
    case 8: make(uint64_t{}); break;
    default:
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s not supported", args.Describe().c_str(), DT(x.dtype));
  }
  return Err::Ok();
}

// ---- Identity -------------------------------------------------------------------------

std::unique_ptr<Kernel> MakeCopy(int64_t nbytes) {
  return MakeFnKernel([nbytes](const void* const* in, void* const* o) -> Err {
    if (in[0] != o[0] && nbytes > 0) std::memcpy(o[0], in[0], static_cast<size_t>(nbytes));
    return Err::Ok();
  });
}

Err CreateIdentity(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  Err e = CheckArity(args, 1, 1, 1, 1);
  if (!e.ok()) return e;
  const TensorArg &x = *args.inputs[0], &y = *args.outputs[0];
  if (x.dtype != y.dtype || x.numel != y.numel || x.elem_size() == 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s%s does not match input %s%s", args.Describe().c_str(),
                   DT(y.dtype), DimsToString(y.dims).c_str(), DT(x.dtype), DimsToString(x.dims).c_str());
  *out = MakeCopy(x.nbytes());
  return Err::Ok();
}

}  // namespace

void RegisterElementwiseKernels(KernelRegistry& r) {
  r.Add({"", "And", &CreateLogical<AndOp>, &ClaimBool});
  r.Add({"", "Or", &CreateLogical<OrOp>, &ClaimBool});
  r.Add({"", "Xor", &CreateLogical<XorOp>, &ClaimBool});
  r.Add({"", "Not", &CreateNot, &ClaimBool});
  r.Add({"", "Where", &CreateWhere, &ClaimWhere});
  r.Add({"", "Identity", &CreateIdentity, &ClaimData0});
}

}  // namespace tessera::cpu
