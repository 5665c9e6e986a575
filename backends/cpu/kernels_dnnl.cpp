// oneDNN-backed kernels: Conv, MatMul, Gemm, MaxPool, AveragePool (f32).
//
// Every primitive descriptor and primitive is built once in the factory
// (shapes are static). Activations cross the kernel boundary in plain
// row-major layout; inside, a primitive may prefer a blocked layout, in which
// case the kernel reorders in and out through per-thread scratch memory.
// Constant weights are reordered once, at create time, into the layout the
// primitive prefers. Primitives use user-managed scratchpads (carved from the
// per-thread scratch buffer), so Run() is reentrant and may be called from
// several threads at once.
//
// Layout choice for Conv (measured with the ResNet-50 conv shapes, batch 1
// and 4, on a 2-core AVX-512 VM, AMD EPYC Zen 4; medians of 30 runs): plain
// NCHW src/dst gets oneDNN's GEMM-based convolution, which wins for 1x1
// kernels over images of >= 14x14 outputs (by 10-50%); for every other shape
// (3x3, 7x7 stem, 1x1 on 7x7) letting oneDNN pick its layout (brgconv,
// blocked/NHWC) and reordering at the boundaries is 18-40% faster end to end.
// Grouped/depthwise convolutions always let oneDNN pick. Pools run on plain
// layouts directly (they are memory bound; a reorder would cost as much).
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/cpu/dnnl_util.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

namespace du = dnnl_util;
using dnnl::memory;
using Dims = std::vector<int64_t>;

constexpr int kMaxDnnlRank = DNNL_MAX_NDIMS;

int64_t Numel(const Dims& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

std::string DimsStr(const Dims& d) {
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
  memory fixed;              // kFixed: constant data in prim_md layout
  int init_input = -1;       // kOutput: node input copied into dst before the primitive (sum post-op)
  const void* init_const = nullptr;  // that input's constant data, when it is constant
  dnnl::reorder init_reorder;  // user->prim reorder of that input (when needs_reorder)
};

// A primitive plus its operands. Immutable after Finish(); Run() is reentrant.
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
  // nullptr. Call after AddOutput, before Finish.
  void InitOutputFromInput(int dnnl_arg, int input_index, const void* const_data) {
    for (Operand& op : ops_) {
      if (op.source != Operand::kOutput || op.dnnl_arg != dnnl_arg) continue;
      op.init_input = input_index;
      op.init_const = const_data;
      if (op.needs_reorder) {
        const dnnl::engine& eng = du::Engine();
        dnnl::reorder::primitive_desc pd(eng, op.user_md, eng, op.prim_md, UserScratchpadAttr());
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
    for (Operand& op : ops_)
      if (op.needs_reorder) {
        op.scratch_offset = off;
        off += du::AlignUp(op.prim_md.get_size());
      }
    scratch_total_ = off;
  }

  Err Run(const void* const* in, void* const* out) const override {
    try {
      uint8_t* scratch = scratch_total_ ? du::ThreadScratch(scratch_total_) : nullptr;
      if (scratch_total_ && !scratch)
        return MakeErr(TSR_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes of scratch", what_.c_str(),
                       scratch_total_);
      const dnnl::engine& eng = du::Engine();
      dnnl::stream& st = du::ThreadStream();
      if (pre_) pre_(in, out);
      std::unordered_map<int, memory> args;
      memory sp;
      if (scratchpad_bytes_) {
        sp = memory(memory::desc({static_cast<int64_t>(scratchpad_bytes_)}, memory::data_type::u8,
                                 memory::format_tag::x),
                    eng, scratch);
      }
      // Output reorders to run after the primitive.
      std::vector<std::pair<const Operand*, std::pair<memory, memory>>> outs;
      for (const Operand& op : ops_) {
        if (op.source == Operand::kFixed) {
          args[op.dnnl_arg] = op.fixed;
          continue;
        }
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
        memory user(op.user_md, eng, p);
        if (!op.needs_reorder) {
          if (init && init != p) std::memcpy(p, init, op.user_md.get_size());
          args[op.dnnl_arg] = user;
          continue;
        }
        memory staged(op.prim_md, eng, scratch + op.scratch_offset);
        if (init) {
          memory from(op.user_md, eng, const_cast<void*>(init));
          std::unordered_map<int, memory> rargs{{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, staged}};
          if (scratchpad_bytes_) rargs[DNNL_ARG_SCRATCHPAD] = sp;
          op.init_reorder.execute(st, rargs);
        }
        if (op.source == Operand::kInput) {
          std::unordered_map<int, memory> rargs{{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, staged}};
          if (scratchpad_bytes_) rargs[DNNL_ARG_SCRATCHPAD] = sp;
          op.reorder.execute(st, rargs);
        } else {
          outs.push_back({&op, {staged, user}});
        }
        args[op.dnnl_arg] = staged;
      }
      if (scratchpad_bytes_) args[DNNL_ARG_SCRATCHPAD] = sp;
      prim_.execute(st, args);
      for (auto& [op, mems] : outs) {
        std::unordered_map<int, memory> rargs{{DNNL_ARG_FROM, mems.first}, {DNNL_ARG_TO, mems.second}};
        if (scratchpad_bytes_) rargs[DNNL_ARG_SCRATCHPAD] = sp;
        op->reorder.execute(st, rargs);
      }
      st.wait();
      if (post_) post_(in, out);
      return Err::Ok();
    } catch (const dnnl::error& e) {
      return MakeErr(TSR_ERR_INTERNAL, "%s: oneDNN failed: %s", what_.c_str(), e.what());
    } catch (const std::exception& e) {
      return MakeErr(TSR_ERR_INTERNAL, "%s: %s", what_.c_str(), e.what());
    }
  }

 private:
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
};

// A kernel that is a plain function (empty outputs, K == 0 products).
class FnKernel final : public Kernel {
 public:
  using Fn = std::function<void(const void* const* in, void* const* out)>;
  explicit FnKernel(Fn fn) : fn_(std::move(fn)) {}
  Err Run(const void* const* in, void* const* out) const override {
    fn_(in, out);
    return Err::Ok();
  }

 private:
  Fn fn_;
};

dnnl::primitive_attr MakeAttr(const NodeArgs& a) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  // "bf16" lets oneDNN compute f32 primitives with bf16 arithmetic.
  if (a.precision == "bf16") attr.set_fpmath_mode(dnnl::fpmath_mode::bf16);
  return attr;
}

// `base` followed by the eltwise and sum entries of `extra` (the only kinds
// the fused kernels use); other kinds throw and surface as UNSUPPORTED.
dnnl::post_ops ConcatPostOps(const dnnl::post_ops& base, const dnnl::post_ops& extra) {
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

Err CheckF32(const NodeArgs& a, const TensorArg* t, const char* what) {
  if (t && t->dtype != TSR_DTYPE_F32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s has dtype %s; only f32 is supported", a.Describe().c_str(), what,
                   plugin::DTypeName(t->dtype));
  return Err::Ok();
}

Err RequireInput(const NodeArgs& a, size_t i, const char* what) {
  if (!a.has_input(i))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: required input %zu (%s) is missing", a.Describe().c_str(), i, what);
  return Err::Ok();
}

Err RequireOutput(const NodeArgs& a) {
  if (a.outputs.empty() || !a.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output 0 is missing", a.Describe().c_str());
  return Err::Ok();
}

// A per-spatial-dim ints attribute: `def` when absent; must have `n` entries.
Err SpatialInts(const NodeArgs& a, const char* name, size_t n, int64_t def, int64_t min_value, Dims* out) {
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
Err ResolveWindow(const NodeArgs& a, Window& w) {
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
Err WindowOutput(const NodeArgs& a, const Window& w, bool ceil_mode, Dims* out) {
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

Err CheckOutputDims(const NodeArgs& a, const Dims& expected) {
  if (a.outputs[0]->dims != expected)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s does not match the computed shape %s",
                   a.Describe().c_str(), DimsStr(a.outputs[0]->dims).c_str(), DimsStr(expected).c_str());
  return Err::Ok();
}

memory::dims Minus1(const Dims& d) {
  memory::dims r(d.size());
  for (size_t i = 0; i < d.size(); ++i) r[i] = d[i] - 1;
  return r;
}

std::unique_ptr<Kernel> NoopKernel() {
  return std::make_unique<FnKernel>([](const void* const*, void* const*) {});
}

// ---- Conv ------------------------------------------------------------------------------

// y = act(y [+ z]) applied after a primitive without post-ops: `ok` when the
// post-op chain is an optional sum(1) followed by an optional relu (any slope)
// or clip, and is not empty.
struct ResidualEpilogue {
  enum Act { kNone, kRelu, kClip };
  bool ok = false;
  bool sum = false;
  Act act = kNone;
  float lo = 0.f, hi = 0.f;  // kRelu: lo = negative slope; kClip: bounds
};

ResidualEpilogue PlainResidualEpilogue(const dnnl::post_ops& po) {
  ResidualEpilogue e;
  int i = 0;
  if (po.len() > 0 && po.kind(0) == dnnl::primitive::kind::sum) {
    float scale = 0.f;
    po.get_params_sum(0, scale);
    if (scale != 1.f) return e;
    e.sum = true;
    i = 1;
  }
  if (i < po.len()) {
    if (po.kind(i) != dnnl::primitive::kind::eltwise || i + 1 != po.len()) return e;
    float s = 0.f, alpha = 0.f, beta = 0.f;
    dnnl::algorithm alg;
    po.get_params_eltwise(i, s, alg, alpha, beta);
    if (s != 1.f) return e;
    if (alg == dnnl::algorithm::eltwise_relu) {
      e.act = ResidualEpilogue::kRelu;
      e.lo = alpha;
    } else if (alg == dnnl::algorithm::eltwise_clip) {
      e.act = ResidualEpilogue::kClip;
      e.lo = alpha;
      e.hi = beta;
    } else {
      return e;
    }
  }
  e.ok = e.sum || e.act != ResidualEpilogue::kNone;
  return e;
}

// A node input that initialises dst for a leading `sum` post-op must be an
// f32 tensor of exactly the output's shape.
Err CheckSumInput(const NodeArgs& a, int sum_input) {
  if (sum_input < 0) return Err::Ok();
  if (!a.has_input(static_cast<size_t>(sum_input)))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: residual input %d is missing", a.Describe().c_str(), sum_input);
  const TensorArg& z = *a.inputs[static_cast<size_t>(sum_input)];
  Err e = CheckF32(a, &z, "the residual input");
  if (!e.ok()) return e;
  if (z.dims != a.outputs[0]->dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: residual input %d has shape %s, expected the output shape %s",
                   a.Describe().c_str(), sum_input, DimsStr(z.dims).c_str(), DimsStr(a.outputs[0]->dims).c_str());
  return Err::Ok();
}

}  // namespace

// Conv with extra post-ops after the bias; `sum_input` >= 0 names the node
// input that dst starts from (po must then begin with a sum). Used by
// kernels_fused_dnnl.cpp; CreateConv is the plain case.
Err CreateConvWithPostOps(const NodeArgs& a, const dnnl::post_ops& po, int sum_input, std::unique_ptr<Kernel>* out) {
  const std::string what = a.Describe();
  const char* w_ = what.c_str();
  Err e = RequireInput(a, 0, "X");
  if (e.ok()) e = RequireInput(a, 1, "W");
  if (e.ok()) e = RequireOutput(a);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const TensorArg& W = *a.inputs[1];
  const TensorArg* B = a.has_input(2) ? a.inputs[2] : nullptr;
  const TensorArg& Y = *a.outputs[0];
  for (auto [t, name] : {std::pair{&X, "X"}, {&W, "W"}, {B, "B"}, {&Y, "Y"}}) {
    e = CheckF32(a, t, name);
    if (!e.ok()) return e;
  }
  const size_t rank = X.dims.size();
  if (rank < 3 || rank > 5)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: X has rank %zu; only 1-D, 2-D and 3-D convolutions (rank 3 to 5) are supported",
                   w_, rank);
  if (W.dims.size() != rank)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: W has rank %zu, X has rank %zu; they must match", w_, W.dims.size(),
                   rank);
  const int64_t N = X.dims[0], C = X.dims[1], M = W.dims[0];
  const int64_t G = a.attrs().Int("group", 1);
  if (G < 1) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: group must be >= 1, got %lld", w_, static_cast<long long>(G));
  if (C % G != 0 || W.dims[1] * G != C)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                   "%s: X has %lld channels but W expects %lld per group with group=%lld (W shape %s)", w_,
                   static_cast<long long>(C), static_cast<long long>(W.dims[1]), static_cast<long long>(G),
                   DimsStr(W.dims).c_str());
  if (M % G != 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %lld output channels are not divisible by group=%lld", w_,
                   static_cast<long long>(M), static_cast<long long>(G));
  if (B && B->dims != Dims{M})
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: bias B has shape %s, expected [%lld]", w_, DimsStr(B->dims).c_str(),
                   static_cast<long long>(M));
  Window win;
  win.in.assign(X.dims.begin() + 2, X.dims.end());
  win.k.assign(W.dims.begin() + 2, W.dims.end());
  if (a.attrs().Has("kernel_shape") && a.attrs().Ints("kernel_shape") != win.k)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: kernel_shape %s does not match W's spatial dims %s", w_,
                   DimsStr(a.attrs().Ints("kernel_shape")).c_str(), DimsStr(win.k).c_str());
  e = ResolveWindow(a, win);
  if (!e.ok()) return e;
  Dims osp;
  e = WindowOutput(a, win, false, &osp);
  if (!e.ok()) return e;
  Dims ydims{N, M};
  ydims.insert(ydims.end(), osp.begin(), osp.end());
  e = CheckOutputDims(a, ydims);
  if (e.ok()) e = CheckSumInput(a, sum_input);
  if (!e.ok()) return e;
  if (Y.numel == 0) {
    *out = NoopKernel();
    return Err::Ok();
  }
  if (X.numel == 0 || W.numel == 0)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: empty X or W with a non-empty output is not supported", w_);

  return GuardDnnl(a, [&]() -> Err {
    memory::dims wdims = W.dims;
    if (G > 1) {  // [M, C/G, k...] -> [G, M/G, C/G, k...]: same bytes
      wdims.insert(wdims.begin(), G);
      wdims[1] = M / G;
    }
    // Layout choice: see the header comment.
    int64_t out_spatial = Numel(osp);
    bool pointwise = G == 1 && rank == 4 && Numel(win.k) == 1;
    bool plain = pointwise && out_spatial >= 14 * 14;
    // Plain layouts get oneDNN's GEMM convolution, whose `sum` post-op takes a
    // reference path (measured ~10x slower on the ResNet-50 1x1 shapes). There
    // the residual and a relu/clip activation run after the primitive in one
    // vectorised pass instead; any other residual chain uses oneDNN's layout.
    // Activation-only chains (relu/clip) take the same epilogue there.
    ResidualEpilogue epi;
    dnnl::post_ops prim_po = po;
    if (plain && po.len() > 0) {
      epi = PlainResidualEpilogue(po);
      if (epi.ok) prim_po = dnnl::post_ops();
      else if (sum_input >= 0) plain = false;
    }
    memory::desc src_md = plain ? du::PlainDesc(X.dims) : du::AnyDesc(X.dims);
    memory::desc dst_md = plain ? du::PlainDesc(Y.dims) : du::AnyDesc(Y.dims);
    memory::desc w_md = du::AnyDesc(wdims);
    memory::dims dil = Minus1(win.d);
    using cf = dnnl::convolution_forward;
    cf::desc desc = B ? cf::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                 w_md, du::PlainDesc({M}), dst_md, win.s, dil, win.pl, win.pr)
                      : cf::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                 w_md, dst_md, win.s, dil, win.pl, win.pr);
    dnnl::primitive_attr attr = MakeAttr(a);
    if (prim_po.len() > 0) attr.set_post_ops(prim_po);
    cf::primitive_desc pd(desc, attr, du::Engine());
    auto k = std::make_unique<DnnlKernel>(what);
    k->AddInput(DNNL_ARG_SRC, 0, du::PlainDesc(X.dims), pd.src_desc(), X.const_data);
    k->AddInput(DNNL_ARG_WEIGHTS, 1, du::PlainDesc(wdims), pd.weights_desc(), W.const_data);
    if (B) k->AddInput(DNNL_ARG_BIAS, 2, du::PlainDesc({M}), pd.bias_desc(), B->const_data);
    k->AddOutput(DNNL_ARG_DST, 0, du::PlainDesc(Y.dims), pd.dst_desc());
    const void* z_const = sum_input >= 0 ? a.inputs[static_cast<size_t>(sum_input)]->const_data : nullptr;
    if (epi.ok) {
      const int64_t n = Y.numel;
      k->SetHooks(nullptr, [epi, n, sum_input, z_const](const void* const* in, void* const* o) {
        const float* z =
            epi.sum ? static_cast<const float*>(z_const ? z_const : in[sum_input]) : nullptr;
        float* y = static_cast<float*>(o[0]);
        ParallelFor(n, 16384, [&](int64_t b, int64_t e) {
          if (z) {
            for (int64_t i = b; i < e; ++i) y[i] += z[i];
          }
          if (epi.act == ResidualEpilogue::kRelu) {
            const float s = epi.lo;
            for (int64_t i = b; i < e; ++i) y[i] = y[i] > 0.f ? y[i] : s * y[i];
          } else if (epi.act == ResidualEpilogue::kClip) {
            for (int64_t i = b; i < e; ++i) y[i] = std::min(std::max(y[i], epi.lo), epi.hi);
          }
        });
      });
    } else if (sum_input >= 0) {
      k->InitOutputFromInput(DNNL_ARG_DST, sum_input, z_const);
    }
    k->Finish(cf(pd), pd.scratchpad_desc());
    *out = std::move(k);
    return Err::Ok();
  });
}

namespace {

Err CreateConv(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  return CreateConvWithPostOps(a, dnnl::post_ops(), -1, out);
}

}  // namespace

// ---- MatMul ------------------------------------------------------------------------------

// MatMul with an optional bias (node input `bias_input`, 1-D over the last
// dim of Y) and extra post-ops; `sum_input` >= 0 names the node input dst
// starts from (po must then begin with a sum). Used by kernels_fused_dnnl.cpp.
Err CreateMatMulWithPostOps(const NodeArgs& a, const dnnl::post_ops& po, int bias_input, int sum_input,
                            std::unique_ptr<Kernel>* out) {
  const std::string what = a.Describe();
  const char* w_ = what.c_str();
  Err e = RequireInput(a, 0, "A");
  if (e.ok()) e = RequireInput(a, 1, "B");
  if (e.ok()) e = RequireOutput(a);
  if (!e.ok()) return e;
  const TensorArg& A = *a.inputs[0];
  const TensorArg& B = *a.inputs[1];
  const TensorArg& Y = *a.outputs[0];
  for (auto [t, name] : {std::pair{&A, "A"}, {&B, "B"}, {&Y, "Y"}}) {
    e = CheckF32(a, t, name);
    if (!e.ok()) return e;
  }
  if (A.dims.empty() || B.dims.empty())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: MatMul operands must have rank >= 1 (A %s, B %s)", w_,
                   DimsStr(A.dims).c_str(), DimsStr(B.dims).c_str());
  // numpy matmul: a 1-D A is [1, K] (M dropped from Y), a 1-D B is [K, 1] (N dropped).
  Dims ad = A.dims.size() == 1 ? Dims{1, A.dims[0]} : A.dims;
  Dims bd = B.dims.size() == 1 ? Dims{B.dims[0], 1} : B.dims;
  size_t r = std::max(ad.size(), bd.size());
  ad.insert(ad.begin(), r - ad.size(), 1);
  bd.insert(bd.begin(), r - bd.size(), 1);
  const int64_t M = ad[r - 2], K = ad[r - 1], N = bd[r - 1];
  if (bd[r - 2] != K)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inner dimensions differ: A %s, B %s", w_, DimsStr(A.dims).c_str(),
                   DimsStr(B.dims).c_str());
  Dims dd(r);
  for (size_t i = 0; i + 2 < r; ++i) {
    if (ad[i] != bd[i] && ad[i] != 1 && bd[i] != 1)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: batch dimensions do not broadcast: A %s, B %s", w_,
                     DimsStr(A.dims).c_str(), DimsStr(B.dims).c_str());
    dd[i] = ad[i] == 1 ? bd[i] : ad[i];
  }
  dd[r - 2] = M;
  dd[r - 1] = N;
  Dims ydims(dd.begin(), dd.end() - 2);
  if (A.dims.size() > 1) ydims.push_back(M);
  if (B.dims.size() > 1) ydims.push_back(N);
  e = CheckOutputDims(a, ydims);
  if (e.ok()) e = CheckSumInput(a, sum_input);
  if (!e.ok()) return e;
  const TensorArg* bias = bias_input >= 0 && a.has_input(static_cast<size_t>(bias_input))
                              ? a.inputs[static_cast<size_t>(bias_input)]
                              : nullptr;
  if (bias) {
    e = CheckF32(a, bias, "bias");
    if (!e.ok()) return e;
    if (B.dims.size() < 2 || bias->dims != Dims{N})
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: bias has shape %s; expected [%lld] over the last dim of a B of rank >= 2 (B %s)",
                     w_, DimsStr(bias->dims).c_str(), static_cast<long long>(N), DimsStr(B.dims).c_str());
  }
  const bool fused = bias || po.len() > 0 || sum_input >= 0;
  if (Y.numel == 0) {
    *out = NoopKernel();
    return Err::Ok();
  }
  if (K == 0 && fused)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: an empty inner dimension (K = 0) with a fused bias/activation is not supported",
                   w_);
  if (K == 0) {  // an empty sum
    size_t bytes = static_cast<size_t>(Y.nbytes());
    *out = std::make_unique<FnKernel>([bytes](const void* const*, void* const* o) { std::memset(o[0], 0, bytes); });
    return Err::Ok();
  }
  if (static_cast<int>(r) > kMaxDnnlRank)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: rank %zu exceeds oneDNN's limit of %d", w_, r, kMaxDnnlRank);

  return GuardDnnl(a, [&]() -> Err {
    // A constant B is prepacked into oneDNN's preferred layout.
    memory::desc b_md = B.const_data ? du::AnyDesc(bd) : du::PlainDesc(bd);
    Dims bias_dims(r, 1);
    bias_dims[r - 1] = N;
    dnnl::matmul::desc desc = bias ? dnnl::matmul::desc(du::PlainDesc(ad), b_md, du::PlainDesc(bias_dims),
                                                        du::PlainDesc(dd))
                                   : dnnl::matmul::desc(du::PlainDesc(ad), b_md, du::PlainDesc(dd));
    dnnl::primitive_attr attr = MakeAttr(a);
    if (po.len() > 0) attr.set_post_ops(po);
    dnnl::matmul::primitive_desc pd(desc, attr, du::Engine());
    auto k = std::make_unique<DnnlKernel>(what);
    k->AddInput(DNNL_ARG_SRC, 0, du::PlainDesc(ad), pd.src_desc(), A.const_data);
    k->AddInput(DNNL_ARG_WEIGHTS, 1, du::PlainDesc(bd), pd.weights_desc(), B.const_data);
    if (bias)
      k->AddInput(DNNL_ARG_BIAS, bias_input, du::PlainDesc(bias_dims), pd.bias_desc(), bias->const_data);
    k->AddOutput(DNNL_ARG_DST, 0, du::PlainDesc(dd), pd.dst_desc());
    if (sum_input >= 0)
      k->InitOutputFromInput(DNNL_ARG_DST, sum_input, a.inputs[static_cast<size_t>(sum_input)]->const_data);
    k->Finish(dnnl::matmul(pd), pd.scratchpad_desc());
    *out = std::move(k);
    return Err::Ok();
  });
}

// Gemm with extra post-ops after alpha*A'B' + beta*C. Used by kernels_fused_dnnl.cpp.
Err CreateGemmWithPostOps(const NodeArgs& a, const dnnl::post_ops& po, std::unique_ptr<Kernel>* out);

namespace {

Err CreateMatMul(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  return CreateMatMulWithPostOps(a, dnnl::post_ops(), -1, -1, out);
}

Err CreateGemm(const NodeArgs& a, std::unique_ptr<Kernel>* out) { return CreateGemmWithPostOps(a, dnnl::post_ops(), out); }

}  // namespace

// ---- Gemm --------------------------------------------------------------------------------

// Y = alpha * A' * B' + beta * C, with C unidirectionally broadcast to [M, N].
Err CreateGemmWithPostOps(const NodeArgs& a, const dnnl::post_ops& po, std::unique_ptr<Kernel>* out) {
  const std::string what = a.Describe();
  const char* w_ = what.c_str();
  Err e = RequireInput(a, 0, "A");
  if (e.ok()) e = RequireInput(a, 1, "B");
  if (e.ok()) e = RequireOutput(a);
  if (!e.ok()) return e;
  const TensorArg& A = *a.inputs[0];
  const TensorArg& B = *a.inputs[1];
  const TensorArg* C = a.has_input(2) ? a.inputs[2] : nullptr;
  const TensorArg& Y = *a.outputs[0];
  for (auto [t, name] : {std::pair{&A, "A"}, {&B, "B"}, {C, "C"}, {&Y, "Y"}}) {
    e = CheckF32(a, t, name);
    if (!e.ok()) return e;
  }
  if (A.dims.size() != 2 || B.dims.size() != 2)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: A and B must be 2-D, got A %s, B %s", w_, DimsStr(A.dims).c_str(),
                   DimsStr(B.dims).c_str());
  plugin::NodeAttrs at = a.attrs();
  const bool ta = at.Int("transA", 0) != 0, tb = at.Int("transB", 0) != 0;
  const float alpha = at.Float("alpha", 1.f), beta = at.Float("beta", 1.f);
  const int64_t M = ta ? A.dims[1] : A.dims[0], K = ta ? A.dims[0] : A.dims[1];
  const int64_t KB = tb ? B.dims[1] : B.dims[0], N = tb ? B.dims[0] : B.dims[1];
  if (K != KB)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inner dimensions differ: A %s (transA=%d), B %s (transB=%d)", w_,
                   DimsStr(A.dims).c_str(), ta, DimsStr(B.dims).c_str(), tb);
  // C as [cm, cn], each 1 (broadcast) or the full size.
  int64_t cm = 1, cn = 1;
  if (C) {
    if (C->dims.size() > 2)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: C has rank %zu, at most 2 allowed", w_, C->dims.size());
    if (C->dims.size() == 2) cm = C->dims[0];
    if (!C->dims.empty()) cn = C->dims.back();
    if ((cm != 1 && cm != M) || (cn != 1 && cn != N))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: C of shape %s does not broadcast to [%lld, %lld]", w_,
                     DimsStr(C->dims).c_str(), static_cast<long long>(M), static_cast<long long>(N));
  }
  e = CheckOutputDims(a, Dims{M, N});
  if (!e.ok()) return e;
  if (Y.numel == 0) {
    *out = NoopKernel();
    return Err::Ok();
  }
  const bool use_c = C && beta != 0.f;
  // Writes beta_scale * broadcast(C) into Y (C = in[2]).
  auto fill_c = [M, N, cm, cn](const float* c, float* y, float scale) {
    ParallelFor(M, std::max<int64_t>(1, 16384 / std::max<int64_t>(N, 1)), [&](int64_t b, int64_t e) {
      for (int64_t m = b; m < e; ++m) {
        const float* crow = c + (cm == 1 ? 0 : m * cn);
        float* yrow = y + m * N;
        if (cn == 1)
          for (int64_t n = 0; n < N; ++n) yrow[n] = scale * crow[0];
        else
          for (int64_t n = 0; n < N; ++n) yrow[n] = scale * crow[n];
      }
    });
  };
  if (K == 0 && po.len() > 0)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: an empty inner dimension (K = 0) with a fused activation is not supported",
                   w_);
  if (K == 0) {
    size_t bytes = static_cast<size_t>(Y.nbytes());
    *out = std::make_unique<FnKernel>([=](const void* const* in, void* const* o) {
      if (use_c)
        fill_c(static_cast<const float*>(in[2]), static_cast<float*>(o[0]), beta);
      else
        std::memset(o[0], 0, bytes);
    });
    return Err::Ok();
  }

  return GuardDnnl(a, [&]() -> Err {
    memory::desc a_user(Dims{M, K}, memory::data_type::f32, ta ? memory::dims{1, M} : memory::dims{K, 1});
    memory::desc b_user(Dims{K, N}, memory::data_type::f32, tb ? memory::dims{1, K} : memory::dims{N, 1});
    memory::desc a_md = A.const_data ? du::AnyDesc({M, K}) : a_user;
    memory::desc b_md = B.const_data ? du::AnyDesc({K, N}) : b_user;
    memory::desc y_md = du::PlainDesc({M, N});
    // Fast path: constant C and alpha == 1 -> bias = beta * C.
    if (use_c && C->const_data && alpha == 1.f) {
      memory::desc bias_md = du::PlainDesc({cm, cn});
      dnnl::matmul::primitive_desc pd;
      bool ok = true;
      try {
        dnnl::primitive_attr attr = MakeAttr(a);
        if (po.len() > 0) attr.set_post_ops(po);
        pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, bias_md, y_md), attr, du::Engine());
      } catch (const dnnl::error&) {
        ok = false;  // fall through to the general path
      }
      if (ok) {
        const float* c = static_cast<const float*>(C->const_data);
        std::vector<float> bias(static_cast<size_t>(cm * cn));
        for (size_t i = 0; i < bias.size(); ++i) bias[i] = beta * c[i];
        auto k = std::make_unique<DnnlKernel>(what);
        k->AddInput(DNNL_ARG_SRC, 0, a_user, pd.src_desc(), A.const_data);
        k->AddInput(DNNL_ARG_WEIGHTS, 1, b_user, pd.weights_desc(), B.const_data);
        k->AddOwned(DNNL_ARG_BIAS, bias_md, std::move(bias));
        k->AddOutput(DNNL_ARG_DST, 0, y_md, pd.dst_desc());
        k->Finish(dnnl::matmul(pd), pd.scratchpad_desc());
        *out = std::move(k);
        return Err::Ok();
      }
    }
    // General path: Y = C (broadcast), then Y = alpha * A*B + beta * Y (sum post-op).
    dnnl::primitive_attr attr = MakeAttr(a);
    if (alpha != 1.f) attr.set_output_scales(0, {alpha});
    dnnl::post_ops all;
    if (use_c) all.append_sum(beta);
    all = ConcatPostOps(all, po);
    if (all.len() > 0) attr.set_post_ops(all);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, y_md), attr, du::Engine());
    auto k = std::make_unique<DnnlKernel>(what);
    k->AddInput(DNNL_ARG_SRC, 0, a_user, pd.src_desc(), A.const_data);
    k->AddInput(DNNL_ARG_WEIGHTS, 1, b_user, pd.weights_desc(), B.const_data);
    k->AddOutput(DNNL_ARG_DST, 0, y_md, pd.dst_desc());
    if (use_c)
      k->SetHooks(
          [fill_c](const void* const* in, void* const* o) {
            fill_c(static_cast<const float*>(in[2]), static_cast<float*>(o[0]), 1.f);
          },
          nullptr);
    k->Finish(dnnl::matmul(pd), pd.scratchpad_desc());
    *out = std::move(k);
    return Err::Ok();
  });
}

namespace {

// ---- MaxPool / AveragePool ---------------------------------------------------------------

Err CreatePool(const NodeArgs& a, std::unique_ptr<Kernel>* out, bool is_max) {
  const std::string what = a.Describe();
  const char* w_ = what.c_str();
  Err e = RequireInput(a, 0, "X");
  if (e.ok()) e = RequireOutput(a);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const TensorArg& Y = *a.outputs[0];
  for (auto [t, name] : {std::pair{&X, "X"}, {&Y, "Y"}}) {
    e = CheckF32(a, t, name);
    if (!e.ok()) return e;
  }
  if (is_max && a.outputs.size() > 1 && a.outputs[1])
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: the Indices output of MaxPool is not supported by the CPU backend", w_);
  const size_t rank = X.dims.size();
  if (rank < 3 || rank > 5)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: X has rank %zu; only 1-D, 2-D and 3-D pooling (rank 3 to 5) is supported",
                   w_, rank);
  plugin::NodeAttrs at = a.attrs();
  if (!at.Has("kernel_shape"))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute kernel_shape is required", w_);
  Window win;
  win.in.assign(X.dims.begin() + 2, X.dims.end());
  e = SpatialInts(a, "kernel_shape", rank - 2, 1, 1, &win.k);
  if (e.ok()) e = ResolveWindow(a, win);
  if (!e.ok()) return e;
  const bool ceil_mode = at.Int("ceil_mode", 0) != 0;
  const bool include_pad = !is_max && at.Int("count_include_pad", 0) != 0;
  Dims osp;
  e = WindowOutput(a, win, ceil_mode, &osp);
  if (!e.ok()) return e;
  Dims ydims{X.dims[0], X.dims[1]};
  ydims.insert(ydims.end(), osp.begin(), osp.end());
  e = CheckOutputDims(a, ydims);
  if (!e.ok()) return e;
  if (Y.numel == 0) {
    *out = NoopKernel();
    return Err::Ok();
  }
  if (X.numel == 0) return MakeErr(TSR_ERR_UNSUPPORTED, "%s: empty input with a non-empty output", w_);
  // ceil_mode: extend the end padding so the last (partial) window exists.
  Dims pr_use = win.pr;
  bool extended = false;
  for (size_t i = 0; i < osp.size(); ++i) {
    int64_t need = (osp[i] - 1) * win.s[i] + win.eff(i) - win.in[i] - win.pl[i];
    if (need > pr_use[i]) {
      pr_use[i] = need;
      extended = true;
    }
  }
  // With count_include_pad, oneDNN divides by the full kernel size, but taps
  // in the ceil_mode extension are not padding (ONNX, PyTorch): rescale those
  // outputs by taps / taps-within-[-pad_begin, in + pad_end).
  std::vector<float> fixup;
  if (include_pad && extended) {
    const int64_t taps = Numel(win.k);
    const int64_t plane = Numel(osp);
    fixup.assign(static_cast<size_t>(plane), 1.f);
    bool any = false;
    for (int64_t p = 0; p < plane; ++p) {
      int64_t rem = p, cnt = 1;
      for (int64_t d = static_cast<int64_t>(osp.size()) - 1; d >= 0; --d) {
        int64_t o = rem % osp[d];
        rem /= osp[d];
        int64_t start = o * win.s[d] - win.pl[d], c = 0;
        for (int64_t j = 0; j < win.k[d]; ++j) c += start + j * win.d[d] < win.in[d] + win.pr[d];
        cnt *= c;
      }
      if (cnt != taps && cnt > 0) {
        fixup[p] = static_cast<float>(taps) / static_cast<float>(cnt);
        any = true;
      }
    }
    if (!any) fixup.clear();
  }

  return GuardDnnl(a, [&]() -> Err {
    dnnl::algorithm alg = is_max ? dnnl::algorithm::pooling_max
                                 : include_pad ? dnnl::algorithm::pooling_avg_include_padding
                                               : dnnl::algorithm::pooling_avg_exclude_padding;
    using pf = dnnl::pooling_v2_forward;
    memory::desc x_md = du::PlainDesc(X.dims), y_md = du::PlainDesc(Y.dims);
    pf::desc desc(dnnl::prop_kind::forward_inference, alg, x_md, y_md, win.s, win.k, Minus1(win.d), win.pl, pr_use);
    pf::primitive_desc pd(desc, MakeAttr(a), du::Engine());
    auto k = std::make_unique<DnnlKernel>(what);
    k->AddInput(DNNL_ARG_SRC, 0, x_md, pd.src_desc(), X.const_data);
    k->AddOutput(DNNL_ARG_DST, 0, y_md, pd.dst_desc());
    if (!fixup.empty()) {
      const int64_t planes = Y.dims[0] * Y.dims[1];
      k->SetHooks(nullptr, [fix = std::move(fixup), planes](const void* const*, void* const* o) {
        const int64_t plane = static_cast<int64_t>(fix.size());
        float* y = static_cast<float*>(o[0]);
        ParallelFor(planes, std::max<int64_t>(1, 16384 / plane), [&](int64_t b, int64_t e) {
          for (int64_t p = b; p < e; ++p) {
            float* yp = y + p * plane;
            for (int64_t i = 0; i < plane; ++i) yp[i] *= fix[static_cast<size_t>(i)];
          }
        });
      });
    }
    k->Finish(pf(pd), pd.scratchpad_desc());
    *out = std::move(k);
    return Err::Ok();
  });
}

Err CreateMaxPool(const NodeArgs& a, std::unique_ptr<Kernel>* out) { return CreatePool(a, out, true); }
Err CreateAveragePool(const NodeArgs& a, std::unique_ptr<Kernel>* out) { return CreatePool(a, out, false); }

// ---- claim checks (shapes may be unknown here) ------------------------------------------

std::string CheckF32Inputs(const tsr_node_view& node, const tsr_graph_view& g, uint32_t n) {
  for (uint32_t i = 0; i < node.num_inputs && i < n; ++i) {
    int32_t v = node.inputs[i];
    if (v < 0 || static_cast<uint32_t>(v) >= g.num_values) continue;
    if (g.values[v].dtype != TSR_DTYPE_F32)
      return std::string(node.op_type) + " supports only f32 on the CPU backend; input " + std::to_string(i) +
             " is " + plugin::DTypeName(g.values[v].dtype);
  }
  return "";
}

std::string CheckSpatialRank(const tsr_node_view& node, const tsr_graph_view& g) {
  if (node.num_inputs == 0 || node.inputs[0] < 0 || static_cast<uint32_t>(node.inputs[0]) >= g.num_values) return "";
  int32_t r = g.values[node.inputs[0]].rank;
  if (r >= 0 && (r < 3 || r > 5))
    return std::string(node.op_type) + " supports 1-D, 2-D and 3-D spatial inputs (rank 3 to 5); got rank " +
           std::to_string(r);
  return "";
}

std::string ClaimConv(const tsr_node_view& node, const tsr_graph_view& g) {
  std::string r = CheckF32Inputs(node, g, 3);
  return r.empty() ? CheckSpatialRank(node, g) : r;
}

std::string ClaimMatMul(const tsr_node_view& node, const tsr_graph_view& g) { return CheckF32Inputs(node, g, 3); }

std::string ClaimMaxPool(const tsr_node_view& node, const tsr_graph_view& g) {
  if (node.num_outputs > 1 && node.outputs[1] >= 0) return "the Indices output of MaxPool is not supported";
  std::string r = CheckF32Inputs(node, g, 1);
  return r.empty() ? CheckSpatialRank(node, g) : r;
}

std::string ClaimAveragePool(const tsr_node_view& node, const tsr_graph_view& g) {
  std::string r = CheckF32Inputs(node, g, 1);
  return r.empty() ? CheckSpatialRank(node, g) : r;
}

}  // namespace

void RegisterDnnlKernels(KernelRegistry& r) {
  r.Add({"", "Conv", &CreateConv, &ClaimConv});
  r.Add({"", "MatMul", &CreateMatMul, &ClaimMatMul});
  r.Add({"", "Gemm", &CreateGemm, &ClaimMatMul});
  r.Add({"", "MaxPool", &CreateMaxPool, &ClaimMaxPool});
  r.Add({"", "AveragePool", &CreateAveragePool, &ClaimAveragePool});
}

}  // namespace tessera::cpu
