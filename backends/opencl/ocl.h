// OpenCL backend internals shared by ocl_backend.cpp and the op builders in
// kernels_*.cpp.
//
// A node compiles to an OpPlan: a list of Launches (an OpenCL kernel with its
// arguments, a buffer copy or a buffer fill) that reference the node's
// tensors by slot (inputs first, then outputs), host data computed at compile
// time (uploaded once), the segment's scratch, or the error flag. Kernels take
// every tensor as two arguments: (global char* buffer, ulong byte offset), so
// bindings at any offset work without sub-buffers (whose origin would have to
// be aligned to CL_DEVICE_MEM_BASE_ADDR_ALIGN). Shape metadata travels in a
// small int64 "params" buffer per launch, uploaded at compile time.
//
// Kernels live in three library programs (prelude + one of the k*Source
// strings below) and generated programs (tessera.FusedElementwise), each
// built once per device and cached in memory and on disk.
#pragma once

#include <CL/cl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backends/common/plugin_util.h"
#include "backends/common/segment_values.h"
#include "tessera/backend.h"

namespace tessera::ocl {

using plugin::Err;
using plugin::MakeErr;

// One input or output of a node at compile time (static shape; const_data is
// the host data of constants, valid while the executable lives).
using TensorArg = plugin::TensorArg;

// node, inputs, outputs, attrs(), has_input(), has_output(): plugin::NodeArgsBase.
struct NodeArgs : plugin::NodeArgsBase {
  int out_slot(size_t i) const { return static_cast<int>(inputs.size() + i); }
  std::string Describe() const {
    return std::string("node '") + (node->name ? node->name : "") + "' (" + (node->op_type ? node->op_type : "?") +
           ")";
  }
};

// Where a tensor argument's memory comes from.
struct TensorRef {
  enum Kind : uint8_t { kSlot, kHostConst, kScratch, kErrFlag } kind = kSlot;
  int index = 0;         // kSlot: node slot; kHostConst: index into OpPlan::host_consts
  uint64_t offset = 0;   // extra byte offset (kScratch: offset into the scratch area)
};

struct KArg {
  enum Kind : uint8_t { kTensor, kParams, kI32, kF32, kStepCode } kind = kI32;  // kStepCode: int, 1 + the node's step index (error flag value)
  TensorRef ref;     // kTensor
  int32_t i32 = 0;
  float f32 = 0;
};

struct Launch {
  enum Kind : uint8_t { kKernel, kCopy, kFill } kind = kKernel;
  // kKernel
  std::string program;              // "" = the library program defining `kernel`, else a key of OpPlan::programs
  std::string kernel;
  std::vector<KArg> args;
  std::vector<int64_t> params;      // bound where an arg is kParams
  uint64_t global = 0;              // 1-D work size (0 = nothing to do)
  // N-D launch when nd_global is non-empty (then `global` only needs to be non-zero):
  // nd_local empty = the driver picks the work-group size.
  std::vector<size_t> nd_global, nd_local;
  // kCopy: bytes from src to dst; kFill: pattern repeated over bytes at dst.
  TensorRef src, dst;
  uint64_t bytes = 0;
  std::vector<uint8_t> pattern;
};

struct OpPlan {
  std::vector<Launch> launches;
  std::vector<std::vector<uint8_t>> host_consts;
  std::vector<std::pair<std::string, std::string>> programs;  // generated programs: key -> source
  bool checks_indices = false;  // some launch may set the error flag (execute reads it back)
  uint64_t scratch_bytes = 0;   // bytes of scratch the node uses (from offset 0 of the node's area)
};

using OpBuilder = Err (*)(const NodeArgs& args, OpPlan* plan);
// Claim-time check (shapes may be unknown: rank -1 / dims -1): "" = supported, else the reason.
using ClaimCheck = std::string (*)(const tsr_node_view& node, const tsr_graph_view& graph);

struct OpEntry {
  const char* domain;  // "" = ai.onnx
  const char* op;
  OpBuilder build;
  ClaimCheck claim;  // may be nullptr
};

// All registered ops (built once; thread-safe after the first call).
const std::vector<OpEntry>& OpTable();
const OpEntry* FindOp(const char* domain, const char* op);

void RegisterElementwiseOps(std::vector<OpEntry>& r);  // kernels_elementwise.cpp
void RegisterTensorOps(std::vector<OpEntry>& r);       // kernels_tensor.cpp
void RegisterNnOps(std::vector<OpEntry>& r);           // kernels_nn.cpp
void RegisterTrainingOps(std::vector<OpEntry>& r);     // kernels_training.cpp (registered first: its
                                                       // BatchNormalization handles training mode)

extern const char* const kElementwiseSource;  // OpenCL C
extern const char* const kTensorSource;
extern const char* const kNnSource;
extern const char* const kTrainingSource;
// The library program holding `kernel`: the prelude (pointer macros, tsr_unop/tsr_binop,
// tsr_bidx) + the one k*Source above that defines it; *group names it. "" when none does.
// Programs are per group so a segment builds only the groups it uses.
std::string LibrarySource(const std::string& kernel, std::string* group);
extern const char* const kPreludeSource;

// ---- helpers for builders -------------------------------------------------------------

inline KArg TArg(int slot) {
  KArg a;
  a.kind = KArg::kTensor;
  a.ref.kind = TensorRef::kSlot;
  a.ref.index = slot;
  return a;
}
inline KArg TArgAt(int slot, uint64_t byte_offset) {
  KArg a = TArg(slot);
  a.ref.offset = byte_offset;
  return a;
}
// Scratch of the node at `byte_offset` (the plan's scratch_bytes must cover it).
inline KArg ScratchArg(uint64_t byte_offset) {
  KArg a;
  a.kind = KArg::kTensor;
  a.ref.kind = TensorRef::kScratch;
  a.ref.offset = byte_offset;
  return a;
}
inline KArg HostArg(int index) {
  KArg a;
  a.kind = KArg::kTensor;
  a.ref.kind = TensorRef::kHostConst;
  a.ref.index = index;
  return a;
}
inline KArg FlagArg() {
  KArg a;
  a.kind = KArg::kTensor;
  a.ref.kind = TensorRef::kErrFlag;
  return a;
}
inline KArg StepCodeArg() {
  KArg a;
  a.kind = KArg::kStepCode;
  return a;
}
inline KArg ParamsArg() {
  KArg a;
  a.kind = KArg::kParams;
  return a;
}
inline KArg I32(int32_t v) {
  KArg a;
  a.kind = KArg::kI32;
  a.i32 = v;
  return a;
}
inline KArg F32(float v) {
  KArg a;
  a.kind = KArg::kF32;
  a.f32 = v;
  return a;
}

inline int64_t Numel(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}
std::string DimsStr(const std::vector<int64_t>& d);

// Row-major element strides of `in` broadcast to `out` (0 where broadcast).
// Returns false when `in` does not broadcast to `out`.
bool BroadcastStrides(const std::vector<int64_t>& in, const std::vector<int64_t>& out, std::vector<int64_t>* strides);
std::vector<int64_t> ContiguousStrides(const std::vector<int64_t>& d);

// Params for tsr_bidx: [rank, out dims..., strides of operand 0..., operand 1..., ...]
// with dims merged where every operand stays contiguous across them.
std::vector<int64_t> BroadcastParams(const std::vector<int64_t>& out, const std::vector<std::vector<int64_t>>& strides);

// Reads an int64 list from a constant tensor (i64 or i32).
bool ConstInts(const TensorArg& t, std::vector<int64_t>* out);
// Normalizes an axis into [0, rank); false when out of range.
bool NormAxis(int64_t axis, int64_t rank, int64_t* out);

// Activation codes of the fused ops (unary opcodes of tsr_unop in the common source).
enum ActCode : int32_t {
  kOpNeg = 7, kOpAbs = 8, kOpRelu = 9, kOpLeakyRelu = 10, kOpSigmoid = 11, kOpTanh = 12, kOpExp = 13, kOpLog = 14,
  kOpSqrt = 15, kOpReciprocal = 16, kOpErf = 17, kOpGelu = 18, kOpGeluTanh = 19, kOpClip = 20,
  kOpHardSigmoid = 21, kOpHardSwish = 22, kOpSoftplus = 23, kOpIdentity = 24, kOpSilu = 25, kOpSwish = 26
};
// Activation of a fused op from attributes activation / activation_alpha / activation_beta.
Err ParseActivation(const NodeArgs& a, int32_t* code, float* p0, float* p1);

// One f32 elementwise unary kernel launch over n elements (slots in -> out).
Launch UnaryLaunch(int in_slot, int out_slot, int64_t n, int32_t op, float p0, float p1);
// A contiguous byte copy between slots (skipped at execute when src and dst are the same memory).
Launch CopyLaunch(int src_slot, int dst_slot, uint64_t bytes);

}  // namespace tessera::ocl
