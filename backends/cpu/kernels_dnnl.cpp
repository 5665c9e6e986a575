// oneDNN-backed kernels: Conv, MatMul, Gemm, MaxPool, AveragePool (f32), plus
// own-loop kernels for ConvTranspose, LpPool/GlobalLpPool, MaxUnpool, DeformConv
// and MaxPool with Indices or non-f32 dtypes.
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

// ---- own-loop kernels: MaxPool (Indices output, non-f32 dtypes), LpPool,
// GlobalLpPool, ConvTranspose, MaxUnpool, DeformConv ------------------------------------
//
// Geometry is normalised to 3 spatial dims (missing leading dims have size 1,
// kernel 1, stride 1, dilation 1, no padding), so one loop nest serves 1-D,
// 2-D and 3-D.

struct Geo3 {
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1},
          pb[3] = {0, 0, 0};
  int64_t in_plane() const { return in[0] * in[1] * in[2]; }
  int64_t out_plane() const { return out[0] * out[1] * out[2]; }
};

// Fills a Geo3 from a Window (n <= 3 spatial dims) and the output spatial dims.
Geo3 ToGeo3(const Window& w, const Dims& osp) {
  Geo3 g;
  const size_t n = w.in.size(), off = 3 - n;
  for (size_t i = 0; i < n; ++i) {
    g.in[off + i] = w.in[i];
    g.out[off + i] = osp[i];
    g.k[off + i] = w.k[i];
    g.s[off + i] = w.s[i];
    g.d[off + i] = w.d[i];
    g.pb[off + i] = w.pl[i];
  }
  return g;
}

// Max over each window (padding never wins); optional Indices = flat index
// into X of the max (row-major, or column-major over the spatial dims with
// storage_order 1). `planes` = N * C.
template <typename T>
void MaxPoolLoop(const T* x, T* y, int64_t* ind, int64_t planes, const Geo3& g, bool col_major) {
  const int64_t ip = g.in_plane(), op = g.out_plane();
  ParallelFor(planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t pl = lo; pl < hi; ++pl) {
      const T* xp = x + pl * ip;
      for (int64_t o0 = 0; o0 < g.out[0]; ++o0)
        for (int64_t o1 = 0; o1 < g.out[1]; ++o1)
          for (int64_t o2 = 0; o2 < g.out[2]; ++o2) {
            bool found = false;
            T best{};
            int64_t bi = 0;
            for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
              int64_t i0 = o0 * g.s[0] - g.pb[0] + k0 * g.d[0];
              if (i0 < 0 || i0 >= g.in[0]) continue;
              for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
                int64_t i1 = o1 * g.s[1] - g.pb[1] + k1 * g.d[1];
                if (i1 < 0 || i1 >= g.in[1]) continue;
                for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
                  int64_t i2 = o2 * g.s[2] - g.pb[2] + k2 * g.d[2];
                  if (i2 < 0 || i2 >= g.in[2]) continue;
                  T v = xp[(i0 * g.in[1] + i1) * g.in[2] + i2];
                  if (!found || v > best) {
                    found = true;
                    best = v;
                    bi = col_major ? i2 * g.in[1] * g.in[0] + i1 * g.in[0] + i0 : (i0 * g.in[1] + i1) * g.in[2] + i2;
                  }
                }
              }
            }
            int64_t oi = pl * op + (o0 * g.out[1] + o1) * g.out[2] + o2;
            y[oi] = best;
            if (ind) ind[oi] = pl * ip + bi;
          }
    }
  });
}

// LpPool: (sum over in-bounds taps of |x|^p)^(1/p); padding contributes 0.
template <typename T>
void LpPoolLoop(const T* x, T* y, int64_t planes, const Geo3& g, double p) {
  const int64_t ip = g.in_plane(), op = g.out_plane();
  ParallelFor(planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t pl = lo; pl < hi; ++pl) {
      const T* xp = x + pl * ip;
      for (int64_t o0 = 0; o0 < g.out[0]; ++o0)
        for (int64_t o1 = 0; o1 < g.out[1]; ++o1)
          for (int64_t o2 = 0; o2 < g.out[2]; ++o2) {
            double acc = 0.0;
            for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
              int64_t i0 = o0 * g.s[0] - g.pb[0] + k0 * g.d[0];
              if (i0 < 0 || i0 >= g.in[0]) continue;
              for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
                int64_t i1 = o1 * g.s[1] - g.pb[1] + k1 * g.d[1];
                if (i1 < 0 || i1 >= g.in[1]) continue;
                for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
                  int64_t i2 = o2 * g.s[2] - g.pb[2] + k2 * g.d[2];
                  if (i2 < 0 || i2 >= g.in[2]) continue;
                  double v = std::fabs(static_cast<double>(xp[(i0 * g.in[1] + i1) * g.in[2] + i2]));
                  acc += p == 2.0 ? v * v : std::pow(v, p);
                }
              }
            }
            y[pl * op + (o0 * g.out[1] + o1) * g.out[2] + o2] =
                static_cast<T>(p == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / p));
          }
    }
  });
}

// Validates a pool's X/Y and reads its window (kernel_shape required).
Err PoolWindow(const NodeArgs& a, Window* win, Dims* osp, bool allow_ceil) {
  Err e = RequireInput(a, 0, "X");
  if (e.ok()) e = RequireOutput(a);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const size_t rank = X.dims.size();
  if (rank < 3 || rank > 5)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: X has rank %zu; only 1-D, 2-D and 3-D pooling (rank 3 to 5) is supported",
                   a.Describe().c_str(), rank);
  if (!a.attrs().Has("kernel_shape"))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute kernel_shape is required", a.Describe().c_str());
  win->in.assign(X.dims.begin() + 2, X.dims.end());
  e = SpatialInts(a, "kernel_shape", rank - 2, 1, 1, &win->k);
  if (e.ok()) e = ResolveWindow(a, *win);
  if (!e.ok()) return e;
  e = WindowOutput(a, *win, allow_ceil && a.attrs().Int("ceil_mode", 0) != 0, osp);
  if (!e.ok()) return e;
  Dims ydims{X.dims[0], X.dims[1]};
  ydims.insert(ydims.end(), osp->begin(), osp->end());
  e = CheckOutputDims(a, ydims);
  if (!e.ok()) return e;
  if (a.outputs[0]->dtype != X.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Y has dtype %s, X has %s", a.Describe().c_str(),
                   plugin::DTypeName(a.outputs[0]->dtype), plugin::DTypeName(X.dtype));
  return Err::Ok();
}

bool MaxPoolLoopDType(int32_t t) {
  return t == TSR_DTYPE_F32 || t == TSR_DTYPE_F64 || t == TSR_DTYPE_I8 || t == TSR_DTYPE_U8;
}

// MaxPool through the own loop: the Indices output or a dtype other than f32.
Err CreateMaxPoolLoop(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Window win;
  Dims osp;
  Err e = PoolWindow(a, &win, &osp, true);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  if (!MaxPoolLoopDType(X.dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: X has dtype %s; MaxPool supports f32, f64, i8 and u8",
                   a.Describe().c_str(), plugin::DTypeName(X.dtype));
  const bool with_ind = a.outputs.size() > 1 && a.outputs[1];
  if (with_ind) {
    const TensorArg& I = *a.outputs[1];
    if (I.dtype != TSR_DTYPE_I64 || I.dims != a.outputs[0]->dims)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Indices must be i64 with Y's shape %s, got %s %s",
                     a.Describe().c_str(), DimsStr(a.outputs[0]->dims).c_str(), plugin::DTypeName(I.dtype),
                     DimsStr(I.dims).c_str());
  }
  const int64_t order = a.attrs().Int("storage_order", 0);
  if (order != 0 && order != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: storage_order must be 0 or 1, got %lld", a.Describe().c_str(),
                   static_cast<long long>(order));
  const Geo3 g = ToGeo3(win, osp);
  const int64_t planes = X.dims[0] * X.dims[1];
  const int32_t dt = X.dtype;
  const bool col = order == 1;
  *out = std::make_unique<FnKernel>([=](const void* const* in, void* const* o) {
    int64_t* ind = with_ind ? static_cast<int64_t*>(o[1]) : nullptr;
    switch (dt) {
      case TSR_DTYPE_F32:
        MaxPoolLoop(static_cast<const float*>(in[0]), static_cast<float*>(o[0]), ind, planes, g, col);
        break;
      case TSR_DTYPE_F64:
        MaxPoolLoop(static_cast<const double*>(in[0]), static_cast<double*>(o[0]), ind, planes, g, col);
        break;
      case TSR_DTYPE_I8:
        MaxPoolLoop(static_cast<const int8_t*>(in[0]), static_cast<int8_t*>(o[0]), ind, planes, g, col);
        break;
      default:
        MaxPoolLoop(static_cast<const uint8_t*>(in[0]), static_cast<uint8_t*>(o[0]), ind, planes, g, col);
        break;
    }
  });
  return Err::Ok();
}

Err CreateLpPoolImpl(const NodeArgs& a, std::unique_ptr<Kernel>* out, bool global) {
  Window win;
  Dims osp;
  if (global) {
    Err e = RequireInput(a, 0, "X");
    if (e.ok()) e = RequireOutput(a);
    if (!e.ok()) return e;
    const TensorArg& X = *a.inputs[0];
    if (X.dims.size() < 3 || X.dims.size() > 5)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: X has rank %zu; only rank 3 to 5 is supported", a.Describe().c_str(),
                     X.dims.size());
    win.in.assign(X.dims.begin() + 2, X.dims.end());
    win.k = win.in;
    win.s.assign(win.in.size(), 1);
    win.d.assign(win.in.size(), 1);
    win.pl.assign(win.in.size(), 0);
    win.pr.assign(win.in.size(), 0);
    osp.assign(win.in.size(), 1);
    Dims ydims{X.dims[0], X.dims[1]};
    ydims.insert(ydims.end(), osp.begin(), osp.end());
    e = CheckOutputDims(a, ydims);
    if (!e.ok()) return e;
  } else {
    Err e = PoolWindow(a, &win, &osp, true);
    if (!e.ok()) return e;
  }
  const TensorArg& X = *a.inputs[0];
  if (X.dtype != TSR_DTYPE_F32 && X.dtype != TSR_DTYPE_F64)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: X has dtype %s; only f32 and f64 are supported", a.Describe().c_str(),
                   plugin::DTypeName(X.dtype));
  if (a.outputs[0]->dtype != X.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Y's dtype differs from X's", a.Describe().c_str());
  const int64_t p = a.attrs().Int("p", 2);
  if (p < 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: p must be >= 1, got %lld", a.Describe().c_str(),
                   static_cast<long long>(p));
  const Geo3 g = ToGeo3(win, osp);
  const int64_t planes = X.dims[0] * X.dims[1];
  const bool f64 = X.dtype == TSR_DTYPE_F64;
  const double pd = static_cast<double>(p);
  *out = std::make_unique<FnKernel>([=](const void* const* in, void* const* o) {
    if (f64) LpPoolLoop(static_cast<const double*>(in[0]), static_cast<double*>(o[0]), planes, g, pd);
    else LpPoolLoop(static_cast<const float*>(in[0]), static_cast<float*>(o[0]), planes, g, pd);
  });
  return Err::Ok();
}

Err CreateLpPool(const NodeArgs& a, std::unique_ptr<Kernel>* out) { return CreateLpPoolImpl(a, out, false); }
Err CreateGlobalLpPool(const NodeArgs& a, std::unique_ptr<Kernel>* out) { return CreateLpPoolImpl(a, out, true); }

// ConvTranspose: y[n, g*Mg + m, i*s - pad_begin + k*d] += x[n, g*Cg + c, i] * w[g*Cg + c, m, k].
// Pads come from pads / auto_pad, or, with output_shape, from the total
// padding stride*(in-1) + output_padding + eff_kernel - out (SAME_UPPER puts
// the odd unit at the end, otherwise at the start); a negative total simply
// extends the output past the last tap.
Err CreateConvTranspose(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
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
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: X has rank %zu; only 1-D, 2-D and 3-D (rank 3 to 5) are supported", w_,
                   rank);
  if (W.dims.size() != rank)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: W has rank %zu, X has rank %zu; they must match", w_, W.dims.size(),
                   rank);
  plugin::NodeAttrs at = a.attrs();
  const int64_t N = X.dims[0], C = X.dims[1];
  const int64_t G = at.Int("group", 1);
  if (G < 1) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: group must be >= 1, got %lld", w_, static_cast<long long>(G));
  if (W.dims[0] != C || C % G != 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: X has %lld channels but W %s expects %lld (group %lld)", w_,
                   static_cast<long long>(C), DimsStr(W.dims).c_str(), static_cast<long long>(W.dims[0]),
                   static_cast<long long>(G));
  const int64_t Mg = W.dims[1], M = Mg * G, Cg = C / G;
  if (B && B->dims != Dims{M})
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: bias B has shape %s, expected [%lld]", w_, DimsStr(B->dims).c_str(),
                   static_cast<long long>(M));
  const size_t n = rank - 2;
  Window win;
  win.in.assign(X.dims.begin() + 2, X.dims.end());
  win.k.assign(W.dims.begin() + 2, W.dims.end());
  if (at.Has("kernel_shape") && at.Ints("kernel_shape") != win.k)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: kernel_shape %s does not match W's spatial dims %s", w_,
                   DimsStr(at.Ints("kernel_shape")).c_str(), DimsStr(win.k).c_str());
  e = SpatialInts(a, "strides", n, 1, 1, &win.s);
  if (e.ok()) e = SpatialInts(a, "dilations", n, 1, 1, &win.d);
  Dims opad;
  if (e.ok()) e = SpatialInts(a, "output_padding", n, 0, 0, &opad);
  if (!e.ok()) return e;
  const std::string auto_pad = at.String("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" && auto_pad != "VALID")
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unknown auto_pad '%s' (NOTSET, SAME_UPPER, SAME_LOWER, VALID)", w_,
                   auto_pad.c_str());
  Dims oshape = at.Ints("output_shape");
  if (oshape.size() == n + 2) oshape.erase(oshape.begin(), oshape.begin() + 2);
  if (!oshape.empty() && oshape.size() != n)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output_shape has %zu values, expected %zu", w_, oshape.size(), n);
  win.pl.assign(n, 0);
  win.pr.assign(n, 0);
  Dims osp(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t full = win.s[i] * (win.in[i] - 1) + opad[i] + win.eff(i);
    if (!oshape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      osp[i] = oshape.empty() ? win.in[i] * win.s[i] : oshape[i];
      const int64_t total = full - osp[i];
      // floor division for a negative total, as Python's //
      const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
      win.pl[i] = auto_pad == "SAME_UPPER" ? half : total - half;
    } else {
      if (auto_pad == "NOTSET") {
        Dims pads;
        e = SpatialInts(a, "pads", 2 * n, 0, 0, &pads);
        if (!e.ok()) return e;
        win.pl[i] = pads[i];
        win.pr[i] = pads[i + n];
      }
      osp[i] = full - win.pl[i] - win.pr[i];
    }
    if (osp[i] < 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: spatial dim %zu: output size %lld is negative", w_, i,
                     static_cast<long long>(osp[i]));
  }
  Dims ydims{N, M};
  ydims.insert(ydims.end(), osp.begin(), osp.end());
  e = CheckOutputDims(a, ydims);
  if (!e.ok()) return e;
  if (Y.numel == 0) {
    *out = NoopKernel();
    return Err::Ok();
  }
  // oneDNN deconvolution when its end padding (which absorbs output_padding and
  // output_shape) is non-negative: dst = s*(in-1) + eff - pl - pr.
  bool dnnl_ok = X.numel > 0;
  Dims pr_dnnl(n);
  for (size_t i = 0; i < n; ++i) {
    pr_dnnl[i] = win.s[i] * (win.in[i] - 1) + win.eff(i) - win.pl[i] - osp[i];
    dnnl_ok = dnnl_ok && win.pl[i] >= 0 && pr_dnnl[i] >= 0;
  }
  if (dnnl_ok) {
    std::unique_ptr<Kernel> k;
    Err de = GuardDnnl(a, [&]() -> Err {
      // ONNX W [C, M/G, k...] = [G, C/G, M/G, k...] viewed as oneDNN's
      // [G, M/G, C/G, k...] (or [M, C, k...] when G == 1) through strides.
      const int64_t K = Numel(win.k);
      memory::dims wdims, wstrides;
      if (G > 1) wdims = {G, Mg, Cg}, wstrides = {Cg * Mg * K, K, Mg * K};
      else wdims = {Mg, Cg}, wstrides = {K, Mg * K};
      Dims kst = du::PlainStrides(win.k);
      for (size_t i = 0; i < n; ++i) {
        wdims.push_back(win.k[i]);
        wstrides.push_back(kst[i]);
      }
      memory::desc w_user(wdims, memory::data_type::f32, wstrides);
      using df = dnnl::deconvolution_forward;
      memory::desc src_md = du::AnyDesc(X.dims), dst_md = du::AnyDesc(Y.dims), w_md = du::AnyDesc(wdims);
      df::desc desc = B ? df::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct, src_md,
                                   w_md, du::PlainDesc({M}), dst_md, win.s, Minus1(win.d), win.pl, pr_dnnl)
                        : df::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct, src_md,
                                   w_md, dst_md, win.s, Minus1(win.d), win.pl, pr_dnnl);
      df::primitive_desc pd(desc, MakeAttr(a), du::Engine());
      auto dk = std::make_unique<DnnlKernel>(what);
      dk->AddInput(DNNL_ARG_SRC, 0, du::PlainDesc(X.dims), pd.src_desc(), X.const_data);
      dk->AddInput(DNNL_ARG_WEIGHTS, 1, w_user, pd.weights_desc(), W.const_data);
      if (B) dk->AddInput(DNNL_ARG_BIAS, 2, du::PlainDesc({M}), pd.bias_desc(), B->const_data);
      dk->AddOutput(DNNL_ARG_DST, 0, du::PlainDesc(Y.dims), pd.dst_desc());
      dk->Finish(df(pd), pd.scratchpad_desc());
      k = std::move(dk);
      return Err::Ok();
    });
    if (de.ok()) {
      *out = std::move(k);
      return Err::Ok();
    }
    // else: fall through to the own loop
  }
  const Geo3 g = ToGeo3(win, osp);
  const int64_t ksz = g.k[0] * g.k[1] * g.k[2];
  const bool has_b = B != nullptr;
  *out = std::make_unique<FnKernel>([=](const void* const* in, void* const* o) {
    const float* x = static_cast<const float*>(in[0]);
    const float* w = static_cast<const float*>(in[1]);
    const float* b = has_b ? static_cast<const float*>(in[2]) : nullptr;
    float* y = static_cast<float*>(o[0]);
    const int64_t ip = g.in_plane(), op = g.out_plane();
    // One job per (n, output channel): it owns that output plane.
    ParallelFor(N * M, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t job = lo; job < hi; ++job) {
        const int64_t nn = job / M, oc = job % M, gi = oc / Mg, m = oc % Mg;
        float* yp = y + job * op;
        const float bias = b ? b[oc] : 0.f;
        for (int64_t i = 0; i < op; ++i) yp[i] = bias;
        for (int64_t c = 0; c < Cg; ++c) {
          const int64_t ic = gi * Cg + c;
          const float* xp = x + (nn * C + ic) * ip;
          const float* wp = w + (ic * Mg + m) * ksz;
          for (int64_t i0 = 0; i0 < g.in[0]; ++i0)
            for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
              const int64_t o0 = i0 * g.s[0] - g.pb[0] + k0 * g.d[0];
              if (o0 < 0 || o0 >= g.out[0]) continue;
              for (int64_t i1 = 0; i1 < g.in[1]; ++i1)
                for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
                  const int64_t o1 = i1 * g.s[1] - g.pb[1] + k1 * g.d[1];
                  if (o1 < 0 || o1 >= g.out[1]) continue;
                  const float* xr = xp + (i0 * g.in[1] + i1) * g.in[2];
                  const float* wr = wp + (k0 * g.k[1] + k1) * g.k[2];
                  float* yr = yp + (o0 * g.out[1] + o1) * g.out[2];
                  for (int64_t i2 = 0; i2 < g.in[2]; ++i2) {
                    const float xv = xr[i2];
                    for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
                      const int64_t o2 = i2 * g.s[2] - g.pb[2] + k2 * g.d[2];
                      if (o2 >= 0 && o2 < g.out[2]) yr[o2] += xv * wr[k2];
                    }
                  }
                }
            }
        }
      }
    });
  });
  return Err::Ok();
}

// MaxUnpool(X, I [, output_shape]): scatters X into a zero tensor of the
// inferred shape ((in - 1) * stride + kernel - pads) at the flat indices I,
// then places that tensor at the origin of the output (the ONNX reference
// semantics when output_shape is larger).
Err CreateMaxUnpool(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const std::string what = a.Describe();
  const char* w_ = what.c_str();
  Err e = RequireInput(a, 0, "X");
  if (e.ok()) e = RequireInput(a, 1, "I");
  if (e.ok()) e = RequireOutput(a);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const TensorArg& I = *a.inputs[1];
  const TensorArg& Y = *a.outputs[0];
  e = CheckF32(a, &X, "X");
  if (e.ok()) e = CheckF32(a, &Y, "Y");
  if (!e.ok()) return e;
  if (I.dtype != TSR_DTYPE_I64 || I.dims != X.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: I must be i64 with X's shape %s, got %s %s", w_,
                   DimsStr(X.dims).c_str(), plugin::DTypeName(I.dtype), DimsStr(I.dims).c_str());
  const size_t rank = X.dims.size();
  if (rank < 3) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: X must have rank >= 3, got %zu", w_, rank);
  const size_t n = rank - 2;
  Dims k, s, pads;
  if (!a.attrs().Has("kernel_shape"))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute kernel_shape is required", w_);
  e = SpatialInts(a, "kernel_shape", n, 1, 1, &k);
  if (e.ok()) e = SpatialInts(a, "strides", n, 1, 1, &s);
  if (e.ok()) e = SpatialInts(a, "pads", 2 * n, 0, 0, &pads);
  if (!e.ok()) return e;
  Dims inferred{X.dims[0], X.dims[1]};
  for (size_t i = 0; i < n; ++i) inferred.push_back((X.dims[i + 2] - 1) * s[i] + k[i] - pads[i] - pads[i + n]);
  if (Y.dims.size() != rank)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output has rank %zu, X has rank %zu", w_, Y.dims.size(), rank);
  for (size_t i = 0; i < rank; ++i)
    if (Y.dims[i] < inferred[i] || inferred[i] < 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output shape %s is smaller than the unpooled shape %s", w_,
                     DimsStr(Y.dims).c_str(), DimsStr(inferred).c_str());
  struct UnpoolKernel final : Kernel {
    Dims inferred, ydims;
    int64_t total = 0, xn = 0, yn = 0;
    std::string what;
    Err Run(const void* const* in, void* const* o) const override {
      const float* x = static_cast<const float*>(in[0]);
      const int64_t* idx = static_cast<const int64_t*>(in[1]);
      float* y = static_cast<float*>(o[0]);
      std::memset(y, 0, sizeof(float) * static_cast<size_t>(yn));
      const size_t r = ydims.size();
      for (int64_t i = 0; i < xn; ++i) {
        int64_t f = idx[i];
        if (f < 0 || f >= total)
          return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: index %lld at position %lld is outside [0, %lld)",
                         what.c_str(), static_cast<long long>(f), static_cast<long long>(i),
                         static_cast<long long>(total));
        // Re-map the flat index from the inferred shape to the output shape.
        int64_t rem = f, off = 0, stride = 1;
        for (size_t d = r; d-- > 0;) {
          int64_t c = rem % inferred[d];
          rem /= inferred[d];
          off += c * stride;
          stride *= ydims[d];
        }
        y[off] = x[i];
      }
      return Err::Ok();
    }
  };
  auto kk = std::make_unique<UnpoolKernel>();
  kk->inferred = inferred;
  kk->ydims = Y.dims;
  kk->total = Numel(inferred);
  kk->xn = X.numel;
  kk->yn = Y.numel;
  kk->what = what;
  *out = std::move(kk);
  return Err::Ok();
}

// DeformConv (2-D): each tap samples X bilinearly at its regular position plus
// a learned offset (zero outside X, per corner), scaled by the optional mask.
// offset [N, og*kH*kW*2, oH, oW] holds (dy, dx) per tap; mask [N, og*kH*kW, oH, oW].
Err CreateDeformConv(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const std::string what = a.Describe();
  const char* w_ = what.c_str();
  Err e = RequireInput(a, 0, "X");
  if (e.ok()) e = RequireInput(a, 1, "W");
  if (e.ok()) e = RequireInput(a, 2, "offset");
  if (e.ok()) e = RequireOutput(a);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const TensorArg& W = *a.inputs[1];
  const TensorArg& OF = *a.inputs[2];
  const TensorArg* B = a.has_input(3) ? a.inputs[3] : nullptr;
  const TensorArg* MK = a.has_input(4) ? a.inputs[4] : nullptr;
  const TensorArg& Y = *a.outputs[0];
  for (auto [t, name] : {std::pair{&X, "X"}, {&W, "W"}, {&OF, "offset"}, {B, "B"}, {MK, "mask"}, {&Y, "Y"}}) {
    e = CheckF32(a, t, name);
    if (!e.ok()) return e;
  }
  if (X.dims.size() != 4 || W.dims.size() != 4)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: only 2-D DeformConv (X and W of rank 4) is supported; X %s, W %s", w_,
                   DimsStr(X.dims).c_str(), DimsStr(W.dims).c_str());
  plugin::NodeAttrs at = a.attrs();
  const int64_t N = X.dims[0], C = X.dims[1], IH = X.dims[2], IW = X.dims[3], M = W.dims[0];
  const int64_t G = at.Int("group", 1), OG = at.Int("offset_group", 1);
  if (G < 1 || OG < 1 || C % G != 0 || W.dims[1] * G != C || M % G != 0 || C % OG != 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                   "%s: inconsistent channels: X %s, W %s, group %lld, offset_group %lld", w_, DimsStr(X.dims).c_str(),
                   DimsStr(W.dims).c_str(), static_cast<long long>(G), static_cast<long long>(OG));
  Window win;
  win.in.assign(X.dims.begin() + 2, X.dims.end());
  win.k.assign(W.dims.begin() + 2, W.dims.end());
  if (at.Has("kernel_shape") && at.Ints("kernel_shape") != win.k)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: kernel_shape %s does not match W's spatial dims %s", w_,
                   DimsStr(at.Ints("kernel_shape")).c_str(), DimsStr(win.k).c_str());
  e = ResolveWindow(a, win);
  Dims osp;
  if (e.ok()) e = WindowOutput(a, win, false, &osp);
  if (!e.ok()) return e;
  const int64_t OH = osp[0], OW = osp[1], KH = win.k[0], KW = win.k[1], K = KH * KW;
  e = CheckOutputDims(a, Dims{N, M, OH, OW});
  if (!e.ok()) return e;
  if (OF.dims != Dims{N, OG * K * 2, OH, OW})
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: offset has shape %s, expected %s", w_, DimsStr(OF.dims).c_str(),
                   DimsStr(Dims{N, OG * K * 2, OH, OW}).c_str());
  if (MK && MK->dims != Dims{N, OG * K, OH, OW})
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: mask has shape %s, expected %s", w_, DimsStr(MK->dims).c_str(),
                   DimsStr(Dims{N, OG * K, OH, OW}).c_str());
  if (B && B->dims != Dims{M})
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: B has shape %s, expected [%lld]", w_, DimsStr(B->dims).c_str(),
                   static_cast<long long>(M));
  const int64_t SH = win.s[0], SW = win.s[1], DH = win.d[0], DW = win.d[1], PH = win.pl[0], PW = win.pl[1];
  const bool has_b = B != nullptr, has_m = MK != nullptr;
  *out = std::make_unique<FnKernel>([=](const void* const* in, void* const* o) {
    const float* x = static_cast<const float*>(in[0]);
    const float* w = static_cast<const float*>(in[1]);
    const float* off = static_cast<const float*>(in[2]);
    const float* b = has_b ? static_cast<const float*>(in[3]) : nullptr;
    const float* mk = has_m ? static_cast<const float*>(in[4]) : nullptr;
    float* y = static_cast<float*>(o[0]);
    const int64_t Cg = C / G, Mg = M / G, Cog = C / OG, plane = OH * OW;
    auto sample = [&](const float* xp, double h, double wv) {
      double h0 = std::floor(h), w0 = std::floor(wv);
      double fh = h - h0, fw = wv - w0;
      int64_t ih = static_cast<int64_t>(h0), iw = static_cast<int64_t>(w0);
      double v = 0.0;
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx) {
          int64_t yy = ih + dy, xx = iw + dx;
          if (yy < 0 || yy >= IH || xx < 0 || xx >= IW) continue;
          double wt = (dy ? fh : 1.0 - fh) * (dx ? fw : 1.0 - fw);
          v += wt * xp[yy * IW + xx];
        }
      return v;
    };
    ParallelFor(N * M, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t job = lo; job < hi; ++job) {
        const int64_t nn = job / M, oc = job % M, gi = oc / Mg;
        float* yp = y + job * plane;
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            double acc = b ? b[oc] : 0.0;
            for (int64_t c = 0; c < Cg; ++c) {
              const int64_t ic = gi * Cg + c, og = ic / Cog;
              const float* xp = x + (nn * C + ic) * IH * IW;
              for (int64_t kh = 0; kh < KH; ++kh)
                for (int64_t kw = 0; kw < KW; ++kw) {
                  const int64_t kk = kh * KW + kw;
                  const int64_t ob = ((nn * OG + og) * K + kk) * 2;
                  const double dy = off[(ob * OH + oh) * OW + ow], dx = off[((ob + 1) * OH + oh) * OW + ow];
                  double v = sample(xp, static_cast<double>(oh * SH - PH + kh * DH) + dy,
                                    static_cast<double>(ow * SW - PW + kw * DW) + dx);
                  if (mk) v *= mk[(((nn * OG + og) * K + kk) * OH + oh) * OW + ow];
                  acc += v * w[((oc * Cg + c) * KH + kh) * KW + kw];
                }
            }
            yp[oh * OW + ow] = static_cast<float>(acc);
          }
      }
    });
  });
  return Err::Ok();
}

// ---- MaxPool / AveragePool ---------------------------------------------------------------

Err CreatePool(const NodeArgs& a, std::unique_ptr<Kernel>* out, bool is_max) {
  const std::string what = a.Describe();
  const char* w_ = what.c_str();
  Err e = RequireInput(a, 0, "X");
  if (e.ok()) e = RequireOutput(a);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const TensorArg& Y = *a.outputs[0];
  // MaxPool with the Indices output or a non-f32 dtype runs the own loop.
  if (is_max && ((a.outputs.size() > 1 && a.outputs[1]) || X.dtype != TSR_DTYPE_F32))
    return CreateMaxPoolLoop(a, out);
  for (auto [t, name] : {std::pair{&X, "X"}, {&Y, "Y"}}) {
    e = CheckF32(a, t, name);
    if (!e.ok()) return e;
  }
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
  if (node.num_inputs > 0 && node.inputs[0] >= 0 && static_cast<uint32_t>(node.inputs[0]) < g.num_values &&
      !MaxPoolLoopDType(g.values[node.inputs[0]].dtype))
    return std::string("MaxPool supports f32, f64, i8 and u8 on the CPU backend; X is ") +
           plugin::DTypeName(g.values[node.inputs[0]].dtype);
  return CheckSpatialRank(node, g);
}

std::string ClaimLpPool(const tsr_node_view& node, const tsr_graph_view& g) {
  if (node.num_inputs > 0 && node.inputs[0] >= 0 && static_cast<uint32_t>(node.inputs[0]) < g.num_values) {
    int32_t t = g.values[node.inputs[0]].dtype;
    if (t != TSR_DTYPE_F32 && t != TSR_DTYPE_F64)
      return std::string(node.op_type) + " supports f32 and f64 on the CPU backend; X is " + plugin::DTypeName(t);
  }
  return CheckSpatialRank(node, g);
}

std::string ClaimF32Only(const tsr_node_view& node, const tsr_graph_view& g) {
  uint32_t n = std::string(node.op_type) == "MaxUnpool" ? 1 : 5;  // MaxUnpool's I is i64
  std::string r = CheckF32Inputs(node, g, n);
  return r.empty() ? CheckSpatialRank(node, g) : r;
}

std::string ClaimDeformConv(const tsr_node_view& node, const tsr_graph_view& g) {
  std::string r = CheckF32Inputs(node, g, 5);
  if (!r.empty()) return r;
  if (node.num_inputs > 0 && node.inputs[0] >= 0 && static_cast<uint32_t>(node.inputs[0]) < g.num_values) {
    int32_t rank = g.values[node.inputs[0]].rank;
    if (rank >= 0 && rank != 4) return "DeformConv supports only 2-D inputs (rank 4) on the CPU backend";
  }
  return "";
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
  r.Add({"", "LpPool", &CreateLpPool, &ClaimLpPool});
  r.Add({"", "GlobalLpPool", &CreateGlobalLpPool, &ClaimLpPool});
  r.Add({"", "ConvTranspose", &CreateConvTranspose, &ClaimF32Only});
  r.Add({"", "MaxUnpool", &CreateMaxUnpool, &ClaimF32Only});
  r.Add({"", "DeformConv", &CreateDeformConv, &ClaimDeformConv});
}

}  // namespace tessera::cpu
