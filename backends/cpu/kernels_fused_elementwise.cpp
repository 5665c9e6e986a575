// tessera.FusedElementwise: runs a small register program (see the schema in
// graph/ops_fused_elementwise.cpp for the attribute format and the opcode
// table, repeated below) over the output in tiles.
//
// Build time: registers are classified as
//   - scalar: constants, inputs with one element, and instructions whose
//     data operands are all scalar (evaluated once per Run, in a prologue);
//   - direct: inputs laid out exactly like the output (read in place);
//   - gathered: other broadcast inputs (copied into a tile slot per tile);
//   - temporaries: one tile slot each, reused by later instructions once
//     their last reader ran (never written in place: that would defeat the
//     compiler's alias checks and leave the loops scalar).
// The last instruction writes straight into the output.
// Run: ParallelFor over tiles of kTile floats; each chunk keeps its slots in
// a stack array (heap when a program needs more than kStackSlots slots).
// Run keeps no state in the kernel object (reentrant).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backends/common/fused_program.h"
#include "backends/cpu/bf16_adapter.h"
#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/simd.h"

namespace tessera::cpu {
namespace {

// Must match graph/ops_fused_elementwise.cpp.
enum Opcode : int {
  kAdd = 0, kSub, kMul, kDiv, kMax, kMin, kPow,
  kNeg, kAbs, kRelu, kLeakyRelu, kSigmoid, kTanh, kExp, kLog, kSqrt, kReciprocal, kErf,
  kGelu, kGeluTanh, kClip, kHardSigmoid, kHardSwish, kSoftplus,
  kNumOpcodes
};

struct OpcodeInfo {
  const char* name;
  int data;    // data operands (1 or 2)
  int params;  // constant parameter operands after them
};

const OpcodeInfo kOpcodes[kNumOpcodes] = {
    {"Add", 2, 0},     {"Sub", 2, 0},      {"Mul", 2, 0},        {"Div", 2, 0},        {"Max", 2, 0},
    {"Min", 2, 0},     {"Pow", 2, 0},      {"Neg", 1, 0},        {"Abs", 1, 0},        {"Relu", 1, 0},
    {"LeakyRelu", 1, 1}, {"Sigmoid", 1, 0}, {"Tanh", 1, 0},       {"Exp", 1, 0},        {"Log", 1, 0},
    {"Sqrt", 1, 0},    {"Reciprocal", 1, 0}, {"Erf", 1, 0},       {"Gelu", 1, 0},       {"GeluTanh", 1, 0},
    {"Clip", 1, 2},    {"HardSigmoid", 1, 2}, {"HardSwish", 1, 0}, {"Softplus", 1, 0},
};

constexpr int kInstrWidth = 5;
constexpr int64_t kTile = 256;
constexpr int kStackSlots = 16;

// Where a register's values live during a tile.
enum class Loc : uint8_t { kScalar, kDirect, kSlot };

struct Operand {
  Loc loc = Loc::kScalar;
  int index = 0;  // kScalar: register (index into the scalar array); kDirect: input; kSlot: slot
};

struct Instr {
  int op = 0;
  int reg = 0;        // the register it writes
  Operand a, b;       // data operands (b unused for unary ops)
  float p0 = 0, p1 = 0;  // constant parameters
  bool scalar = false;   // evaluated once per Run in the prologue
  int out_slot = -1;     // tile instructions: destination slot (-1: the output)
};

// An input that needs copying per tile: its single-operand broadcast plan.
struct Gather {
  int input = 0;
  int slot = 0;
  Broadcast bc;
};

inline float SoftplusScalar(float x) { return x > 0.f ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

// y[i] = f(a[i], b[i]) where a/b are either length-n arrays or one value
// (a_s/b_s). y may alias a or b.
template <typename F>
inline void Binary(int64_t n, const float* a, bool a_s, const float* b, bool b_s, float* y, F f) {
  if (!a_s && !b_s) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  } else if (!a_s) {
    const float bv = *b;
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], bv);
  } else if (!b_s) {
    const float av = *a;
    for (int64_t i = 0; i < n; ++i) y[i] = f(av, b[i]);
  } else {
    const float v = f(*a, *b);
    for (int64_t i = 0; i < n; ++i) y[i] = v;
  }
}

template <typename F>
inline void Unary(int64_t n, const float* a, float* y, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(a[i]);
}

// Transcendentals (sigmoid, tanh, exp, erf, GELU) run the dispatched row
// functions of simd.h (AVX-512 when available, else the V4 math).
// Clamps and activations with branches use V4 selects (same results as the
// std::min/std::max forms, NaN included) so that they run as SIMD.
// Executes one instruction on n elements. a_s/b_s: the operand is a single
// value repeated (only binary ops see a_s; unary ops on a scalar operand are
// scalar instructions, run with n == 1).
void Exec(const Instr& in, int64_t n, const float* a, bool a_s, const float* b, bool b_s, float* y) {
  switch (in.op) {
    case kAdd: Binary(n, a, a_s, b, b_s, y, [](float u, float v) { return u + v; }); break;
    case kSub: Binary(n, a, a_s, b, b_s, y, [](float u, float v) { return u - v; }); break;
    case kMul: Binary(n, a, a_s, b, b_s, y, [](float u, float v) { return u * v; }); break;
    case kDiv: Binary(n, a, a_s, b, b_s, y, [](float u, float v) { return u / v; }); break;
    case kMax: Binary(n, a, a_s, b, b_s, y, [](float u, float v) { return u < v ? v : u; }); break;
    case kMin: Binary(n, a, a_s, b, b_s, y, [](float u, float v) { return v < u ? v : u; }); break;
    case kPow:
      if (b_s && !a_s && *b == 2.f) {
        for (int64_t i = 0; i < n; ++i) y[i] = a[i] * a[i];
      } else if (b_s && !a_s && *b == 1.f) {
        if (y != a) std::memmove(y, a, static_cast<size_t>(n) * sizeof(float));
      } else {
        Binary(n, a, a_s, b, b_s, y, [](float u, float v) { return std::pow(u, v); });
      }
      break;
    case kNeg: Unary(n, a, y, [](float x) { return -x; }); break;
    case kAbs: Unary(n, a, y, [](float x) { return std::fabs(x); }); break;
    case kRelu: MapV4(a, y, n, [](V4 x) { return Select(x > 0.f, x, V4{}); }); break;
    case kLeakyRelu: {
      const float alpha = in.p0;
      MapV4(a, y, n, [alpha](V4 x) { return Select(x >= 0.f, x, alpha * x); });
      break;
    }
    case kSigmoid: simd::Fns().sigmoid(a, y, n); break;
    case kTanh: simd::Fns().tanh(a, y, n); break;
    case kExp: simd::Fns().exp(a, y, n); break;
    case kLog: Unary(n, a, y, [](float x) { return std::log(x); }); break;
    case kSqrt: Unary(n, a, y, [](float x) { return std::sqrt(x); }); break;
    case kReciprocal: Unary(n, a, y, [](float x) { return 1.f / x; }); break;
    case kErf: simd::Fns().erf(a, y, n); break;
    case kGelu: simd::Fns().gelu(a, y, n); break;
    case kGeluTanh: simd::Fns().gelu_tanh(a, y, n); break;
    case kClip: {
      const float lo = in.p0, hi = in.p1;
      Unary(n, a, y, [lo, hi](float x) {
        const float t = x < lo ? lo : x;
        return hi < t ? hi : t;
      });
      break;
    }
    case kHardSigmoid: {
      const float alpha = in.p0, beta = in.p1;
      MapV4(a, y, n, [alpha, beta](V4 x) {
        V4 t = alpha * x + beta;
        t = Select(0.f < t, t, V4{});
        return Select(t < 1.f, t, Splat(1.f));
      });
      break;
    }
    case kHardSwish:
      MapV4(a, y, n, [](V4 x) {
        V4 t = x * (1.f / 6.f) + 0.5f;
        t = Select(0.f < t, t, V4{});
        return x * Select(t < 1.f, t, Splat(1.f));
      });
      break;
    case kSoftplus: Unary(n, a, y, [](float x) { return SoftplusScalar(x); }); break;
    default: break;  // validated at build time
  }
}

// Copies elements [start, start + n) of `in` broadcast by plan `bc` into dst.
void GatherTile(const Broadcast& bc, const float* in, int64_t start, int64_t n, float* dst) {
  const int64_t inner = bc.inner();
  const int64_t s_inner = bc.inner_stride(0);
  int64_t idx[kMaxBroadcastRank] = {};
  int64_t off = 0;
  int64_t row = start / inner, col = start % inner;
  for (int d = bc.rank - 2; d >= 0; --d) {
    idx[d] = row % bc.dims[d];
    row /= bc.dims[d];
    off += idx[d] * bc.strides[0][d];
  }
  while (n > 0) {
    const int64_t run = std::min(inner - col, n);
    if (s_inner) std::memcpy(dst, in + off + col, static_cast<size_t>(run) * sizeof(float));
    else std::fill(dst, dst + run, in[off]);
    dst += run;
    n -= run;
    col = 0;
    for (int d = bc.rank - 2; d >= 0; --d) {
      ++idx[d];
      off += bc.strides[0][d];
      if (idx[d] < bc.dims[d]) break;
      off -= bc.strides[0][d] * bc.dims[d];
      idx[d] = 0;
    }
  }
}

class FusedElementwiseKernel final : public Kernel {
 public:
  // Everything below is fixed at build time (see Build).
  int num_inputs = 0;
  int num_regs = 0;
  int64_t numel = 0;
  int num_slots = 0;
  int64_t grain_tiles = 1;
  std::vector<float> const_regs;            // register -> value for constant registers (others 0)
  std::vector<int> scalar_inputs;           // inputs with one element (register == input index)
  std::vector<Instr> prologue;              // scalar instructions
  std::vector<Instr> body;                  // tile instructions
  std::vector<Gather> gathers;
  int final_scalar_reg = -1;                // >= 0: the output is this scalar register, filled

  Err Run(const void* const* in, void* const* out) const override {
    const float* const* inputs = reinterpret_cast<const float* const*>(in);
    float* y = static_cast<float*>(out[0]);
    // Scalar registers: constants, one-element inputs, scalar instructions.
    constexpr int kStackRegs = 64;
    float sbuf[kStackRegs];
    std::vector<float> sheap;
    float* sv = sbuf;
    if (num_regs > kStackRegs) {
      sheap.resize(static_cast<size_t>(num_regs));
      sv = sheap.data();
    }
    std::copy(const_regs.begin(), const_regs.end(), sv);
    for (int k : scalar_inputs) sv[k] = inputs[k][0];
    for (const Instr& ins : prologue) Exec(ins, 1, &sv[ins.a.index], false, &sv[ins.b.index], false, &sv[ins.reg]);
    if (final_scalar_reg >= 0) {
      const float v = sv[final_scalar_reg];
      ParallelFor(numel, 65536, [&](int64_t b, int64_t e) { std::fill(y + b, y + e, v); });
      return Err::Ok();
    }
    const int64_t tiles = (numel + kTile - 1) / kTile;
    ParallelFor(tiles, grain_tiles, [&](int64_t tb, int64_t te) {
      alignas(64) float stack_slots[kStackSlots * kTile];
      std::vector<float> heap_slots;
      float* slots = stack_slots;
      if (num_slots > kStackSlots) {
        heap_slots.resize(static_cast<size_t>(num_slots * kTile));
        slots = heap_slots.data();
      }
      for (int64_t t = tb; t < te; ++t) {
        const int64_t start = t * kTile;
        const int64_t n = std::min(kTile, numel - start);
        for (const Gather& g : gathers) GatherTile(g.bc, inputs[g.input], start, n, slots + g.slot * kTile);
        auto ptr = [&](const Operand& o) -> const float* {
          switch (o.loc) {
            case Loc::kScalar: return &sv[o.index];
            case Loc::kDirect: return inputs[o.index] + start;
            default: return slots + o.index * kTile;
          }
        };
        for (const Instr& ins : body) {
          float* dst = ins.out_slot >= 0 ? slots + ins.out_slot * kTile : y + start;
          Exec(ins, n, ptr(ins.a), ins.a.loc == Loc::kScalar, ptr(ins.b), ins.b.loc == Loc::kScalar, dst);
        }
      }
    });
    return Err::Ok();
  }
};

Err Build(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  // bf16 tensors (precision policy): the f32 program through the adapter.
  if (Bf16Adapter::Needed(args)) return Bf16Adapter::Create(args, &Build, out);
  const std::string who = args.Describe();
  if (args.inputs.empty())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects at least one input", who.c_str());
  Err e = CheckArity(args, args.inputs.size(), args.inputs.size(), 1, 1);
  if (!e.ok()) return e;
  const TensorArg& y = *args.outputs[0];
  if (y.dtype != TSR_DTYPE_F32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: output must be f32, got %s", who.c_str(), plugin::DTypeName(y.dtype));
  auto k = std::make_unique<FusedElementwiseKernel>();
  const int n_in = static_cast<int>(args.inputs.size());
  k->num_inputs = n_in;
  k->numel = y.numel;

  std::vector<int64_t> prog;
  std::vector<float> consts;
  e = plugin::ReadFusedProgram(args.attrs(), who, kInstrWidth, &prog, &consts);
  if (!e.ok()) return e;
  const int n_const = static_cast<int>(consts.size());
  const int first_temp = n_in + n_const;
  const int n_instr = static_cast<int>(prog.size() / kInstrWidth);
  if (static_cast<int64_t>(first_temp) + n_instr > (1 << 20))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: program too large", who.c_str());
  k->num_regs = first_temp + n_instr;

  // Register locations. Slots of gathered inputs stay reserved for the whole tile.
  std::vector<Operand> loc(static_cast<size_t>(k->num_regs));
  int next_slot = 0;
  std::vector<int> free_slots;
  for (int i = 0; i < n_in; ++i) {
    const TensorArg& x = *args.inputs[i];
    if (x.dtype != TSR_DTYPE_F32)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: input %d must be f32, got %s", who.c_str(), i,
                     plugin::DTypeName(x.dtype));
    Broadcast bc;
    std::string why = MakeBroadcast(y.dims, {&x.dims}, &bc);
    if (!why.empty())
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %d: %s", who.c_str(), i, why.c_str());
    if (x.numel == 1) {
      loc[i] = {Loc::kScalar, i};
      k->scalar_inputs.push_back(i);
    } else if (bc.is_full(0)) {
      loc[i] = {Loc::kDirect, i};
    } else {
      loc[i] = {Loc::kSlot, next_slot};
      k->gathers.push_back(Gather{i, next_slot, bc});
      ++next_slot;
    }
  }
  k->const_regs.assign(static_cast<size_t>(first_temp), 0.f);
  for (int c = 0; c < n_const; ++c) {
    k->const_regs[static_cast<size_t>(n_in + c)] = consts[static_cast<size_t>(c)];
    loc[static_cast<size_t>(n_in + c)] = {Loc::kScalar, n_in + c};
  }

  // Decode and validate; compute each register's last reader.
  std::vector<Instr> instrs(static_cast<size_t>(n_instr));
  std::vector<int> last_use(static_cast<size_t>(k->num_regs), -1);
  std::vector<bool> is_scalar(static_cast<size_t>(k->num_regs), false);
  for (int r = 0; r < first_temp; ++r) is_scalar[static_cast<size_t>(r)] = loc[static_cast<size_t>(r)].loc == Loc::kScalar;
  for (int i = 0; i < n_instr; ++i) {
    const int64_t* p = &prog[static_cast<size_t>(i) * kInstrWidth];
    const int64_t op = p[0];
    if (op < 0 || op >= kNumOpcodes)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: program instruction %d: unknown opcode %lld", who.c_str(), i,
                     static_cast<long long>(op));
    const OpcodeInfo& info = kOpcodes[op];
    const int64_t dst = p[1];
    if (dst != first_temp + i)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: program instruction %d (%s): dst must be register %d, got %lld",
                     who.c_str(), i, info.name, first_temp + i, static_cast<long long>(dst));
    Instr& ins = instrs[static_cast<size_t>(i)];
    ins.op = static_cast<int>(op);
    ins.reg = static_cast<int>(dst);
    float params[2] = {0.f, 0.f};
    bool all_scalar = true;
    for (int s = 0; s < 3; ++s) {
      const int64_t r = p[2 + s];
      if (s < info.data) {
        if (r < 0 || r >= dst)
          return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                         "%s: program instruction %d (%s): operand %d register %lld is not defined before it",
                         who.c_str(), i, info.name, s, static_cast<long long>(r));
        last_use[static_cast<size_t>(r)] = i;
        all_scalar = all_scalar && is_scalar[static_cast<size_t>(r)];
        (s == 0 ? ins.a : ins.b).index = static_cast<int>(r);  // register for now; located below
      } else if (s < info.data + info.params) {
        if (r < n_in || r >= first_temp)
          return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                         "%s: program instruction %d (%s): parameter operand %d register %lld must be a constant "
                         "register (%d..%d)",
                         who.c_str(), i, info.name, s, static_cast<long long>(r), n_in, first_temp - 1);
        params[s - info.data] = consts[static_cast<size_t>(r - n_in)];
      } else if (r != -1) {
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: program instruction %d (%s): unused operand %d must be -1, got %lld",
                       who.c_str(), i, info.name, s, static_cast<long long>(r));
      }
    }
    if (info.data == 1) ins.b.index = ins.a.index;  // unused; keeps pointers valid
    ins.p0 = params[0];
    ins.p1 = params[1];
    ins.scalar = all_scalar;
    is_scalar[static_cast<size_t>(dst)] = all_scalar;
  }

  // Locate operands and assign slots to tile temporaries.
  for (int i = 0; i < n_instr; ++i) {
    Instr ins = instrs[static_cast<size_t>(i)];
    const int ra = ins.a.index, rb = ins.b.index;
    ins.a = ins.scalar ? Operand{Loc::kScalar, ra} : loc[static_cast<size_t>(ra)];
    ins.b = ins.scalar ? Operand{Loc::kScalar, rb} : loc[static_cast<size_t>(rb)];
    if (ins.scalar) {
      loc[static_cast<size_t>(ins.reg)] = {Loc::kScalar, ins.reg};
      k->prologue.push_back(ins);
      if (i == n_instr - 1) k->final_scalar_reg = ins.reg;
      continue;
    }
    // Temporaries whose last reader is this instruction die here; their
    // slots are reused only by later instructions (writing in place would
    // defeat the compiler's vectorization alias checks).
    std::vector<int> dying;
    for (int r : {ra, rb}) {
      if (r < first_temp || last_use[static_cast<size_t>(r)] != i) continue;
      const Operand& o = loc[static_cast<size_t>(r)];
      if (o.loc == Loc::kSlot && std::find(dying.begin(), dying.end(), o.index) == dying.end())
        dying.push_back(o.index);
    }
    if (i == n_instr - 1) {
      ins.out_slot = -1;
    } else {
      if (!free_slots.empty()) {
        ins.out_slot = free_slots.back();
        free_slots.pop_back();
      } else {
        ins.out_slot = next_slot++;
      }
      loc[static_cast<size_t>(ins.reg)] = {Loc::kSlot, ins.out_slot};
      if (last_use[static_cast<size_t>(ins.reg)] < 0) free_slots.push_back(ins.out_slot);  // never read
    }
    free_slots.insert(free_slots.end(), dying.begin(), dying.end());
    k->body.push_back(ins);
  }
  k->num_slots = next_slot;
  // About 32K element-ops per chunk before splitting across threads.
  const int64_t work_per_tile = kTile * std::max<int64_t>(1, static_cast<int64_t>(k->body.size()));
  k->grain_tiles = std::max<int64_t>(1, 32768 / work_per_tile);
  *out = std::move(k);
  return Err::Ok();
}

std::string ClaimFusedElementwise(const tsr_node_view& node, const tsr_graph_view& graph) {
  for (uint32_t i = 0; i < node.num_inputs; ++i) {
    std::string why = ClaimDTypeIn(node, graph, i, {TSR_DTYPE_F32, TSR_DTYPE_BF16});
    if (!why.empty()) return why;
  }
  return "";
}

}  // namespace

void RegisterFusedElementwiseKernels(KernelRegistry& r) {
  r.Add({"tessera", "FusedElementwise", &Build, &ClaimFusedElementwise});
}

}  // namespace tessera::cpu
