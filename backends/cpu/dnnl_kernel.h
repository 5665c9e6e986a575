// Shared plumbing of the oneDNN-backed CPU kernels (kernels_dnnl.cpp,
// kernels_fused_dnnl.cpp, kernels_pool_conv_loops.cpp): the generic oneDNN
// kernel (DnnlKernel: a primitive plus its operands, with reorders between the
// caller's layout and the primitive's), MakeVoidFnKernel, sliding-window geometry and
// the validation helpers every factory uses. Only CPU kernel sources include
// this (the core never sees dnnl).
#pragma once

#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/dnnl_util.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace dnnlk {


namespace du = dnnl_util;
using dnnl::memory;
using Dims = std::vector<int64_t>;

constexpr int kMaxDnnlRank = DNNL_MAX_NDIMS;

inline int64_t Numel(const Dims& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

inline std::string DimsStr(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

// ---- a generic oneDNN kernel ----------------------------------------------------

// One argument of the primitive and where its data comes from at Run time.
struct Operand {
  enum Source { kInput, kOutput, kFixed };
  int dnnl_arg = 0;
  Source source = kInput;
  int index = 0;             // node input/output index (kInput/kOutput)
  memory::desc user_md;      // layout of the caller's buffer (plain row-major)
  memory::desc prim_md;      // layout the primitive wants
  bool needs_reorder = false;
  dnnl::reorder reorder;     // user->prim (inputs) or prim->user (outputs)
  size_t scratch_offset = 0; // the reordered copy's place in per-run scratch
  size_t prim_bytes = 0;     // prim_md.get_size()
  memory fixed;              // kFixed: constant data in prim_md layout
  int init_input = -1;       // kOutput: node input copied into dst before the primitive (sum post-op)
  const void* init_const = nullptr;  // that input's constant data, when it is constant
  memory::desc init_md;        // layout of that input's buffer
  bool init_needs_reorder = false;  // init_md differs from prim_md
  dnnl::reorder init_reorder;  // init_md -> prim_md (when init_needs_reorder)
};

// A primitive plus its operands. Immutable after Finish(); Run() is
// reentrant: the only state it touches is its binding slots (Bound), each
// held by one thread at a time, with a per-call fallback when all are busy.
class DnnlKernel final : public Kernel {
 public:
  using Hook = std::function<void(const void* const* in, void* const* out)>;

  explicit DnnlKernel(std::string what) : what_(std::move(what)) {}

  // An input of the node. `const_data` non-null: the input is constant and
  // is reordered (or wrapped, when layouts agree) now, once.
  void AddInput(int dnnl_arg, int index, const memory::desc& user_md, const memory::desc& prim_md,
                const void* const_data) {
    Operand op;
    op.dnnl_arg = dnnl_arg;
    op.index = index;
    op.user_md = user_md;
    op.prim_md = prim_md;
    if (const_data) {
      op.source = Operand::kFixed;
      memory user(user_md, du::Engine(), const_cast<void*>(const_data));
      if (user_md == prim_md) {
        op.fixed = user;  // const_data outlives the kernel (ABI contract)
      } else {
        op.fixed = memory(prim_md, du::Engine());
        ReorderNow(user, op.fixed);
      }
    } else {
      op.source = Operand::kInput;
      SetUpReorder(op, /*is_input=*/true);
    }
    ops_.push_back(std::move(op));
  }

  // Constant data the kernel owns (e.g. a pre-scaled bias), plain layout.
  void AddOwned(int dnnl_arg, const memory::desc& md, std::vector<float> data) {
    owned_.push_back(std::move(data));
    Operand op;
    op.dnnl_arg = dnnl_arg;
    op.source = Operand::kFixed;
    op.user_md = op.prim_md = md;
    op.fixed = memory(md, du::Engine(), owned_.back().data());
    ops_.push_back(std::move(op));
  }

  void AddOutput(int dnnl_arg, int index, const memory::desc& user_md, const memory::desc& prim_md) {
    Operand op;
    op.dnnl_arg = dnnl_arg;
    op.source = Operand::kOutput;
    op.index = index;
    op.user_md = user_md;
    op.prim_md = prim_md;
    SetUpReorder(op, /*is_input=*/false);
    ops_.push_back(std::move(op));
  }

  // The output operand `dnnl_arg` starts from node input `input_index`
  // (reordered into the primitive's dst layout when needed) instead of being
  // write-only: what a leading `sum` post-op accumulates into. `const_data`
  // is the input's data when it is a constant (outlives the kernel), else
  // nullptr; `init_md` is that input's layout (default: the output's user
  // layout). Call after AddOutput, before Finish.
  void InitOutputFromInput(int dnnl_arg, int input_index, const void* const_data,
                           const memory::desc* init_md = nullptr) {
    for (Operand& op : ops_) {
      if (op.source != Operand::kOutput || op.dnnl_arg != dnnl_arg) continue;
      op.init_input = input_index;
      op.init_const = const_data;
      op.init_md = init_md ? *init_md : op.user_md;
      op.init_needs_reorder = !(op.init_md == op.prim_md);
      if (op.init_needs_reorder) {
        const dnnl::engine& eng = du::Engine();
        dnnl::reorder::primitive_desc pd(eng, op.init_md, eng, op.prim_md, UserScratchpadAttr());
        scratchpad_bytes_ = std::max(scratchpad_bytes_, pd.scratchpad_desc().get_size());
        op.init_reorder = dnnl::reorder(pd);
      }
    }
  }

  // `pre` runs before the primitive (e.g. fills dst for a sum post-op),
  // `post` after it (e.g. a divisor fix-up). Both must be reentrant.
  void SetHooks(Hook pre, Hook post) {
    pre_ = std::move(pre);
    post_ = std::move(post);
  }

  void Finish(dnnl::primitive prim, const memory::desc& scratchpad_md) {
    prim_ = std::move(prim);
    scratchpad_md_ = scratchpad_md;
    scratchpad_bytes_ = std::max(scratchpad_bytes_, scratchpad_md.get_size());
    // Scratch layout: [scratchpad (shared by the primitive and reorders)]
    // [reordered operand 0] [reordered operand 1] ...
    size_t off = du::AlignUp(scratchpad_bytes_);
    for (Operand& op : ops_) {
      op.prim_bytes = op.prim_md.get_size();
      if (op.needs_reorder) {
        op.scratch_offset = off;
        off += du::AlignUp(op.prim_bytes);
      }
    }
    scratch_total_ = off;
  }

  // Run binds the caller's buffers to memory objects kept in a binding slot
  // (see Bound) instead of creating them per run: with the same buffers as
  // last time (a session's arena, this thread's scratch) a run is the
  // reorders and the primitive and nothing else.
  Err Run(const void* const* in, void* const* out) const override {
    SlotLease lease(*this);
    try {
      if (lease.slot >= 0) {
        std::unique_ptr<Bound>& b = slots_[lease.slot].bound;
        if (!b) b = std::make_unique<Bound>();
        return RunBound(*b, in, out);
      }
      Bound local;  // every slot is in use by other threads: a one-off binding
      return RunBound(local, in, out);
    } catch (const dnnl::error& e) {
      return MakeErr(TSR_ERR_INTERNAL, "%s: oneDNN failed: %s", what_.c_str(), e.what());
    } catch (const std::exception& e) {
      return MakeErr(TSR_ERR_INTERNAL, "%s: %s", what_.c_str(), e.what());
    }
  }

 private:
  // Memory objects over the caller's buffers, the staged (reordered) copies
  // in scratch and the scratchpad, with the argument arrays of the primitive
  // and of each reorder pointing at them. Built on first use; a handle is
  // re-pointed (dnnl_memory_set_data_handle_v2) only when its buffer moved.
  // (Binding does not touch the buffers: oneDNN 2.6 zero-fills the padding
  // of blocked layouts in its primitives' outputs, not when a memory object
  // is created or re-pointed, so padding is handled as before.)
  struct Bound {
    struct Mem {
      memory m;
      void* ptr = nullptr;  // the buffer m points at (nullptr: none yet)
    };
    struct OpMem {
      Mem user, staged, from;       // from: the init input (init_needs_reorder)
      dnnl_exec_arg_t reorder_args[3]{};  // user<->staged (+ scratchpad)
      dnnl_exec_arg_t init_args[3]{};     // from -> staged or user (+ scratchpad)
    };
    bool built = false;
    std::vector<OpMem> ops;  // parallel to ops_; never resized after Build
    Mem sp;
    int reorder_nargs = 2;
    std::vector<dnnl_exec_arg_t> prim_args;
  };

  // A binding slot: at most one thread uses it at a time (`busy`).
  static constexpr int kSlots = 4;
  struct Slot {
    std::atomic_flag busy;  // clear (C++20 default)
    std::unique_ptr<Bound> bound;
  };

  // Takes a free slot for the duration of a Run (the calling thread's
  // preferred one first, so one thread keeps finding its own bindings);
  // slot = -1 when all are taken.
  struct SlotLease {
    explicit SlotLease(const DnnlKernel& k) : kernel(k) {
      const int first = du::ThreadSlotHint() % kSlots;
      for (int i = 0; i < kSlots; ++i) {
        const int s = (first + i) % kSlots;
        if (!k.slots_[s].busy.test_and_set(std::memory_order_acquire)) {
          slot = s;
          break;
        }
      }
    }
    ~SlotLease() {
      if (slot >= 0) kernel.slots_[slot].busy.clear(std::memory_order_release);
    }
    SlotLease(const SlotLease&) = delete;
    SlotLease& operator=(const SlotLease&) = delete;
    const DnnlKernel& kernel;
    int slot = -1;
  };

  static void PutArg(std::vector<dnnl_exec_arg_t>& v, int arg, const memory& m) {
    for (dnnl_exec_arg_t& a : v)
      if (a.arg == arg) {
        a.memory = m.get();  // a later operand with the same argument wins (as in a map)
        return;
      }
    v.push_back({arg, m.get()});
  }

  void Build(Bound& b) const {
    const dnnl::engine& eng = du::Engine();
    b.ops.assign(ops_.size(), Bound::OpMem{});
    if (scratchpad_bytes_)
      b.sp.m = memory(memory::desc({static_cast<int64_t>(scratchpad_bytes_)}, memory::data_type::u8,
                                   memory::format_tag::x),
                      eng, DNNL_MEMORY_NONE);
    b.reorder_nargs = scratchpad_bytes_ ? 3 : 2;
    b.prim_args.clear();
    for (size_t i = 0; i < ops_.size(); ++i) {
      const Operand& op = ops_[i];
      if (op.source == Operand::kFixed) {
        PutArg(b.prim_args, op.dnnl_arg, op.fixed);
        continue;
      }
      Bound::OpMem& m = b.ops[i];
      m.user.m = memory(op.user_md, eng, DNNL_MEMORY_NONE);
      if (op.needs_reorder) m.staged.m = memory(op.prim_md, eng, DNNL_MEMORY_NONE);
      const memory& staged = op.needs_reorder ? m.staged.m : m.user.m;
      if (op.needs_reorder) {
        const bool in = op.source == Operand::kInput;
        m.reorder_args[0] = {DNNL_ARG_FROM, in ? m.user.m.get() : m.staged.m.get()};
        m.reorder_args[1] = {DNNL_ARG_TO, in ? m.staged.m.get() : m.user.m.get()};
        if (scratchpad_bytes_) m.reorder_args[2] = {DNNL_ARG_SCRATCHPAD, b.sp.m.get()};
      }
      if (op.init_input >= 0 && op.init_needs_reorder) {
        m.from.m = memory(op.init_md, eng, DNNL_MEMORY_NONE);
        m.init_args[0] = {DNNL_ARG_FROM, m.from.m.get()};
        m.init_args[1] = {DNNL_ARG_TO, staged.get()};
        if (scratchpad_bytes_) m.init_args[2] = {DNNL_ARG_SCRATCHPAD, b.sp.m.get()};
      }
      PutArg(b.prim_args, op.dnnl_arg, staged);
    }
    if (scratchpad_bytes_) PutArg(b.prim_args, DNNL_ARG_SCRATCHPAD, b.sp.m);
    b.built = true;
  }

  // Points `m` at `p` unless it already does.
  Err Rebind(Bound::Mem& m, void* p, dnnl::stream& st) const {
    if (m.ptr == p) return Err::Ok();
    dnnl_status_t s = dnnl_memory_set_data_handle_v2(m.m.get(), p, st.get());
    if (s != dnnl_success) {
      m.ptr = nullptr;
      return MakeErr(TSR_ERR_INTERNAL, "%s: oneDNN could not bind a buffer (status %d)", what_.c_str(),
                     static_cast<int>(s));
    }
    m.ptr = p;
    return Err::Ok();
  }

  Err Exec(const dnnl::primitive& p, dnnl::stream& st, int nargs, const dnnl_exec_arg_t* args,
           const char* what) const {
    dnnl_status_t s = dnnl_primitive_execute(p.get(), st.get(), nargs, args);
    if (s != dnnl_success)
      return MakeErr(TSR_ERR_INTERNAL, "%s: oneDNN %s failed (status %d)", what_.c_str(), what, static_cast<int>(s));
    return Err::Ok();
  }

  Err RunBound(Bound& b, const void* const* in, void* const* out) const {
    uint8_t* scratch = scratch_total_ ? du::ThreadScratch(scratch_total_) : nullptr;
    if (scratch_total_ && !scratch)
      return MakeErr(TSR_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes of scratch", what_.c_str(),
                     scratch_total_);
    dnnl::stream& st = du::ThreadStream();
    if (!b.built) Build(b);
    if (pre_) pre_(in, out);
    Err e = Err::Ok();
    if (scratchpad_bytes_ && !(e = Rebind(b.sp, scratch, st)).ok()) return e;
    for (size_t i = 0; i < ops_.size(); ++i) {
      const Operand& op = ops_[i];
      if (op.source == Operand::kFixed) continue;
      Bound::OpMem& m = b.ops[i];
      void* p = op.source == Operand::kInput ? const_cast<void*>(in[op.index]) : out[op.index];
      if (!p)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s %d has no data", what_.c_str(),
                       op.source == Operand::kInput ? "input" : "output", op.index);
      const void* init = nullptr;
      if (op.init_input >= 0) {
        init = op.init_const ? op.init_const : in[op.init_input];
        if (!init)
          return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %d has no data", what_.c_str(), op.init_input);
      }
      if (!(e = Rebind(m.user, p, st)).ok()) return e;
      void* staged = p;
      if (op.needs_reorder) {
        staged = scratch + op.scratch_offset;
        if (!(e = Rebind(m.staged, staged, st)).ok()) return e;
      }
      if (init && !op.init_needs_reorder) {
        if (init != staged) std::memcpy(staged, init, op.prim_bytes);
      } else if (init) {
        if (!(e = Rebind(m.from, const_cast<void*>(init), st)).ok()) return e;
        if (!(e = Exec(op.init_reorder, st, b.reorder_nargs, m.init_args, "reorder")).ok()) return e;
      }
      if (op.needs_reorder && op.source == Operand::kInput &&
          !(e = Exec(op.reorder, st, b.reorder_nargs, m.reorder_args, "reorder")).ok())
        return e;
    }
    if (!(e = Exec(prim_, st, static_cast<int>(b.prim_args.size()), b.prim_args.data(), "primitive")).ok())
      return e;
    for (size_t i = 0; i < ops_.size(); ++i) {
      const Operand& op = ops_[i];
      if (op.source == Operand::kOutput && op.needs_reorder &&
          !(e = Exec(op.reorder, st, b.reorder_nargs, b.ops[i].reorder_args, "reorder")).ok())
        return e;
    }
    st.wait();
    if (post_) post_(in, out);
    return Err::Ok();
  }

  static dnnl::primitive_attr UserScratchpadAttr() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  }

  void SetUpReorder(Operand& op, bool is_input) {
    op.needs_reorder = !(op.user_md == op.prim_md);
    if (!op.needs_reorder) return;
    const dnnl::engine& eng = du::Engine();
    const memory::desc& from = is_input ? op.user_md : op.prim_md;
    const memory::desc& to = is_input ? op.prim_md : op.user_md;
    dnnl::reorder::primitive_desc pd(eng, from, eng, to, UserScratchpadAttr());
    scratchpad_bytes_ = std::max(scratchpad_bytes_, pd.scratchpad_desc().get_size());
    op.reorder = dnnl::reorder(pd);
  }

  // A one-off reorder at create time (its scratchpad is a local buffer).
  static void ReorderNow(memory& from, memory& to) {
    const dnnl::engine& eng = du::Engine();
    dnnl::reorder::primitive_desc pd(eng, from.get_desc(), eng, to.get_desc(), UserScratchpadAttr());
    std::vector<uint8_t> sp_buf(pd.scratchpad_desc().get_size() + 64);
    std::unordered_map<int, memory> args{{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    if (pd.scratchpad_desc().get_size())
      args[DNNL_ARG_SCRATCHPAD] = memory(pd.scratchpad_desc(), eng, sp_buf.data());
    dnnl::stream st(eng);
    dnnl::reorder(pd).execute(st, args);
    st.wait();
  }

  std::string what_;
  dnnl::primitive prim_;
  std::vector<Operand> ops_;
  std::vector<std::vector<float>> owned_;  // inner buffers never move
  memory::desc scratchpad_md_;
  size_t scratchpad_bytes_ = 0;
  size_t scratch_total_ = 0;
  Hook pre_, post_;
  mutable Slot slots_[kSlots];  // Run's bindings (the only state Run touches; see SlotLease)
};

// A kernel that is a plain function that cannot fail (empty outputs, K == 0
// products, own loops): broadcast.h's FnKernel with an Ok result.
inline std::unique_ptr<Kernel> MakeVoidFnKernel(std::function<void(const void* const* in, void* const* out)> fn) {
  return MakeFnKernel([fn = std::move(fn)](const void* const* in, void* const* out) {
    fn(in, out);
    return Err::Ok();
  });
}

inline dnnl::primitive_attr MakeAttr(const NodeArgs& a) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  // "bf16" lets oneDNN compute f32 primitives with bf16 arithmetic.
  if (a.precision == "bf16") attr.set_fpmath_mode(dnnl::fpmath_mode::bf16);
  return attr;
}

// `base` followed by the eltwise and sum entries of `extra` (the only kinds
// the fused kernels use); other kinds throw and surface as UNSUPPORTED.
inline dnnl::post_ops ConcatPostOps(const dnnl::post_ops& base, const dnnl::post_ops& extra) {
  dnnl::post_ops r = base;
  for (int i = 0; i < extra.len(); ++i) {
    if (extra.kind(i) == dnnl::primitive::kind::eltwise) {
      float scale = 1.f, alpha = 0.f, beta = 0.f;
      dnnl::algorithm alg;
      extra.get_params_eltwise(i, scale, alg, alpha, beta);
      r.append_eltwise(scale, alg, alpha, beta);
    } else if (extra.kind(i) == dnnl::primitive::kind::sum) {
      float scale = 1.f;
      extra.get_params_sum(i, scale);
      r.append_sum(scale);
    } else {
      throw dnnl::error(dnnl_unimplemented, "post-op kind not supported by ConcatPostOps");
    }
  }
  return r;
}

// Runs `build` and turns oneDNN exceptions into an error naming the node.
template <typename Fn>
Err GuardDnnl(const NodeArgs& a, Fn&& build) {
  try {
    return build();
  } catch (const dnnl::error& e) {
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: oneDNN has no implementation for this configuration (%s)",
                   a.Describe().c_str(), e.what());
  } catch (const std::exception& e) {
    return MakeErr(TSR_ERR_INTERNAL, "%s: %s", a.Describe().c_str(), e.what());
  }
}

// ---- shared validation --------------------------------------------------------------

inline Err CheckF32(const NodeArgs& a, const TensorArg* t, const char* what) {
  if (t && t->dtype != TSR_DTYPE_F32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s has dtype %s; only f32 is supported", a.Describe().c_str(), what,
                   plugin::DTypeName(t->dtype));
  return Err::Ok();
}

// f32 or bf16 (the types the oneDNN compute primitives take; bf16 inputs
// accumulate in f32 inside oneDNN). A null `t` (omitted input) passes.
inline Err CheckF32OrBf16(const NodeArgs& a, const TensorArg* t, const char* what) {
  if (t && t->dtype != TSR_DTYPE_F32 && t->dtype != TSR_DTYPE_BF16)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s has dtype %s; only f32 and bf16 are supported", a.Describe().c_str(),
                   what, plugin::DTypeName(t->dtype));
  return Err::Ok();
}

inline Err RequireInput(const NodeArgs& a, size_t i, const char* what) {
  if (!a.has_input(i))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: required input %zu (%s) is missing", a.Describe().c_str(), i, what);
  return Err::Ok();
}

inline Err RequireOutput(const NodeArgs& a) {
  if (a.outputs.empty() || !a.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output 0 is missing", a.Describe().c_str());
  return Err::Ok();
}

// Operands of a Conv/ConvTranspose/MatMul/Gemm-like node: inputs 0 (`in0`)
// and 1 (`in1`) and output 0 are required; then `check` (CheckF32,
// CheckF32OrBf16) runs on in0, in1, the optional input 2 (`in2`; NULL = not
// checked) and Y, in that order.
inline Err RequireAndCheckOperands(const NodeArgs& a, const char* in0, const char* in1, const char* in2,
                                   Err (*check)(const NodeArgs&, const TensorArg*, const char*)) {
  Err e = RequireInput(a, 0, in0);
  if (e.ok()) e = RequireInput(a, 1, in1);
  if (e.ok()) e = RequireOutput(a);
  if (e.ok()) e = check(a, a.inputs[0], in0);
  if (e.ok()) e = check(a, a.inputs[1], in1);
  if (e.ok() && in2) e = check(a, a.has_input(2) ? a.inputs[2] : nullptr, in2);
  if (e.ok()) e = check(a, a.outputs[0], "Y");
  return e;
}

// A per-spatial-dim ints attribute: `def` when absent; must have `n` entries.
inline Err SpatialInts(const NodeArgs& a, const char* name, size_t n, int64_t def, int64_t min_value, Dims* out) {
  plugin::NodeAttrs at = a.attrs();
  if (!at.Has(name)) {
    out->assign(n, def);
    return Err::Ok();
  }
  *out = at.Ints(name);
  if (out->size() != n)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute %s has %zu values, expected %zu (one per spatial dim)",
                   a.Describe().c_str(), name, out->size(), n);
  for (int64_t v : *out)
    if (v < min_value)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute %s has value %lld, must be >= %lld",
                     a.Describe().c_str(), name, static_cast<long long>(v), static_cast<long long>(min_value));
  return Err::Ok();
}

// Sliding-window geometry over the spatial dims (shared by Conv and pools).
struct Window {
  Dims in;       // input spatial sizes
  Dims k;        // kernel taps
  Dims s;        // strides
  Dims d;        // dilations (ONNX convention: 1 = dense)
  Dims pl, pr;   // explicit/auto pads, begin and end
  int64_t eff(size_t i) const { return (k[i] - 1) * d[i] + 1; }
};

// Reads strides/dilations/pads/auto_pad; w.in and w.k must be set.
inline Err ResolveWindow(const NodeArgs& a, Window& w) {
  size_t n = w.in.size();
  Err e = SpatialInts(a, "strides", n, 1, 1, &w.s);
  if (!e.ok()) return e;
  e = SpatialInts(a, "dilations", n, 1, 1, &w.d);
  if (!e.ok()) return e;
  std::string auto_pad = a.attrs().String("auto_pad", "NOTSET");
  w.pl.assign(n, 0);
  w.pr.assign(n, 0);
  if (auto_pad == "NOTSET") {
    Dims pads;
    e = SpatialInts(a, "pads", 2 * n, 0, 0, &pads);
    if (!e.ok()) return e;
    for (size_t i = 0; i < n; ++i) {
      w.pl[i] = pads[i];
      w.pr[i] = pads[i + n];
    }
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (size_t i = 0; i < n; ++i) {
      int64_t out = (w.in[i] + w.s[i] - 1) / w.s[i];
      int64_t total = std::max<int64_t>(0, (out - 1) * w.s[i] + w.eff(i) - w.in[i]);
      int64_t small = total / 2, big = total - small;
      w.pl[i] = auto_pad == "SAME_UPPER" ? small : big;
      w.pr[i] = total - w.pl[i];
    }
  } else if (auto_pad != "VALID") {
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unknown auto_pad '%s' (NOTSET, SAME_UPPER, SAME_LOWER, VALID)",
                   a.Describe().c_str(), auto_pad.c_str());
  }
  return Err::Ok();
}

// Output spatial sizes; ceil_mode per ONNX (a window may not start in the end padding).
inline Err WindowOutput(const NodeArgs& a, const Window& w, bool ceil_mode, Dims* out) {
  out->clear();
  for (size_t i = 0; i < w.in.size(); ++i) {
    int64_t span = w.in[i] + w.pl[i] + w.pr[i] - w.eff(i);
    if (span < 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                     "%s: spatial dim %zu: the kernel (extent %lld) is larger than the padded input (%lld)",
                     a.Describe().c_str(), i, static_cast<long long>(w.eff(i)),
                     static_cast<long long>(w.in[i] + w.pl[i] + w.pr[i]));
    int64_t o = (ceil_mode ? (span + w.s[i] - 1) / w.s[i] : span / w.s[i]) + 1;
    if (ceil_mode && (o - 1) * w.s[i] >= w.in[i] + w.pl[i]) --o;
    out->push_back(o);
  }
  return Err::Ok();
}

inline Err CheckOutputDims(const NodeArgs& a, const Dims& expected) {
  if (a.outputs[0]->dims != expected)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s does not match the computed shape %s",
                   a.Describe().c_str(), DimsStr(a.outputs[0]->dims).c_str(), DimsStr(expected).c_str());
  return Err::Ok();
}

inline memory::dims Minus1(const Dims& d) {
  memory::dims r(d.size());
  for (size_t i = 0; i < d.size(); ++i) r[i] = d[i] - 1;
  return r;
}

inline std::unique_ptr<Kernel> NoopKernel() {
  return MakeVoidFnKernel([](const void* const*, void* const*) {});
}

// ---- claim-check helpers (shapes may be unknown here) ----------------------------------

inline std::string CheckF32Inputs(const tsr_node_view& node, const tsr_graph_view& g, uint32_t n) {
  for (uint32_t i = 0; i < node.num_inputs && i < n; ++i) {
    int32_t v = node.inputs[i];
    if (v < 0 || static_cast<uint32_t>(v) >= g.num_values) continue;
    if (g.values[v].dtype != TSR_DTYPE_F32)
      return std::string(node.op_type) + " supports only f32 on the CPU backend; input " + std::to_string(i) +
             " is " + plugin::DTypeName(g.values[v].dtype);
  }
  return "";
}

// Claim: the first `n` present inputs are f32 or bf16.
inline std::string CheckF32OrBf16Inputs(const tsr_node_view& node, const tsr_graph_view& g, uint32_t n) {
  for (uint32_t i = 0; i < node.num_inputs && i < n; ++i) {
    int32_t v = node.inputs[i];
    if (v < 0 || static_cast<uint32_t>(v) >= g.num_values) continue;
    if (g.values[v].dtype != TSR_DTYPE_F32 && g.values[v].dtype != TSR_DTYPE_BF16)
      return std::string(node.op_type) + " supports only f32 and bf16 on the CPU backend; input " + std::to_string(i) +
             " is " + plugin::DTypeName(g.values[v].dtype);
  }
  return "";
}

// Gemm/FusedGemm with bf16 values: C is folded into a bias, which needs a
// constant C (the f32 path adds a run-time C with its own loop). Refusing here
// lets the precision pass keep such a node in f32 (e.g. a trained bias).
inline std::string CheckGemmBf16C(const tsr_node_view& node, const tsr_graph_view& g) {
  if (node.num_inputs < 3 || node.inputs[2] < 0 || static_cast<uint32_t>(node.inputs[2]) >= g.num_values) return "";
  bool bf16 = false;
  for (uint32_t i = 0; i < node.num_inputs; ++i)
    if (node.inputs[i] >= 0 && static_cast<uint32_t>(node.inputs[i]) < g.num_values &&
        g.values[node.inputs[i]].dtype == TSR_DTYPE_BF16)
      bf16 = true;
  if (!bf16 || g.values[node.inputs[2]].const_data) return "";
  return std::string(node.op_type) + " with bf16 values needs a constant C on the CPU backend (C is computed at run time)";
}

inline std::string CheckSpatialRank(const tsr_node_view& node, const tsr_graph_view& g) {
  if (node.num_inputs == 0 || node.inputs[0] < 0 || static_cast<uint32_t>(node.inputs[0]) >= g.num_values) return "";
  int32_t r = g.values[node.inputs[0]].rank;
  if (r >= 0 && (r < 3 || r > 5))
    return std::string(node.op_type) + " supports 1-D, 2-D and 3-D spatial inputs (rank 3 to 5); got rank " +
           std::to_string(r);
  return "";
}


// ---- memory layouts (compiler/assign_layouts.h, backend.h choose_layouts) -----------------

// Node attributes carrying the layouts the compiler assigned (backend.h
// `choose_layouts`): strings, one per input / output, "" = plain.
inline constexpr const char* kInLayoutsAttrName = "_tsr_in_layouts";
inline constexpr const char* kOutLayoutsAttrName = "_tsr_out_layouts";

// oneDNN data type of a tessera dtype (f32, bf16, f16, i8, u8, i32), or
// data_type::undef.
inline memory::data_type DnnlType(int32_t dtype) {
  switch (dtype) {
    case TSR_DTYPE_F32: return memory::data_type::f32;
    case TSR_DTYPE_BF16: return memory::data_type::bf16;
    case TSR_DTYPE_F16: return memory::data_type::f16;
    case TSR_DTYPE_I8: return memory::data_type::s8;
    case TSR_DTYPE_U8: return memory::data_type::u8;
    case TSR_DTYPE_I32: return memory::data_type::s32;
    default: return memory::data_type::undef;
  }
}

// Row-major descriptor of `dims` with a given data type.
inline memory::desc PlainDescOf(const Dims& dims, memory::data_type dt) {
  return memory::desc(dims, dt, du::PlainStrides(dims));
}

// Descriptor of a value of `dims` in the layout named `layout` ("" = plain
// row-major; "nwc"/"nhwc"/"ndhwc", "nCw16c"/"nChw16c"/"nCdhw16c",
// "nCw8c"/"nChw8c"/"nCdhw8c"). Returns false for an unknown name or a name
// that does not fit the rank.
bool LayoutDesc(const Dims& dims, memory::data_type dt, const std::string& layout, memory::desc* out);
// The name of `md`'s layout among the ones above ("" when it is plain row-major
// or none of them).
std::string LayoutName(const memory::desc& md);
// Layout of node input / output `i` as the compiler assigned it ("" = plain).
std::string InputLayout(const NodeArgs& a, size_t i);
std::string OutputLayout(const NodeArgs& a, size_t i);
// Descriptor of node input / output `i` in its assigned layout (plain when
// none); an unknown layout name is an error naming the node.
Err InputDesc(const NodeArgs& a, size_t i, memory::data_type dt, memory::desc* out);
Err OutputDesc(const NodeArgs& a, size_t i, memory::data_type dt, memory::desc* out);

// Own-loop MaxPool (kernels_pool_conv_loops.cpp): the Indices output or a
// dtype other than f32; MaxPoolLoopDType says which dtypes it handles.
bool MaxPoolLoopDType(int32_t t);
Err CreateMaxPoolLoop(const NodeArgs& a, std::unique_ptr<Kernel>* out);

}  // namespace dnnlk

// Builders of the plain Conv/MatMul/Gemm kernels (kernels_dnnl.cpp), shared
// with the fused kernels. `sum_input` >= 0: node input that dst starts from,
// for a leading sum post-op; `bias_input` >= 0: MatMul's 1-D bias input.
Err CreateConvWithPostOps(const NodeArgs& a, const dnnl::post_ops& po, int sum_input, std::unique_ptr<Kernel>* out);
Err CreateMatMulWithPostOps(const NodeArgs& a, const dnnl::post_ops& po, int bias_input, int sum_input,
                            std::unique_ptr<Kernel>* out);
Err CreateGemmWithPostOps(const NodeArgs& a, const dnnl::post_ops& po, std::unique_ptr<Kernel>* out);
// The layout oneDNN's convolution picks for the Conv/FusedConv node's output
// with format_tag::any ("" = plain) and its size in bytes (kernels_dnnl.cpp).
Err PreferredConvLayout(const NodeArgs& a, std::string* layout, uint64_t* bytes);

}  // namespace tessera::cpu
