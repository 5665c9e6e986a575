// oneDNN-backed kernels: Conv, MatMul, Gemm, MaxPool, AveragePool (f32 or
// bf16 per tensor; bf16 computes with f32 accumulation inside oneDNN). The
// own-loop kernels (ConvTranspose, LpPool/GlobalLpPool, MaxUnpool, DeformConv,
// MaxPool with Indices or other dtypes) live in kernels_pool_conv_loops.cpp.
//
// Every primitive descriptor and primitive is built once in the factory
// (shapes are static). Activations cross the kernel boundary in plain
// row-major layout unless the compiler assigned another one (Conv/FusedConv
// X, Y and residual, pool X and Y: node attributes _tsr_in_layouts /
// _tsr_out_layouts, see layouts.h and compiler/assign_layouts.h); inside, a
// primitive may prefer yet another layout, in which case the kernel reorders
// in and out through per-thread scratch memory. Constant weights are reordered
// once, at create time, into the layout (and dtype) the primitive prefers.
// Primitives use user-managed scratchpads (carved from the per-thread scratch
// buffer), so Run() is reentrant and may be called from several threads at once.
//
// Layout choice for Conv at plain edges (measured with the ResNet-50 conv
// shapes, batch 1 and 4, on a 2-core AVX-512 VM, AMD EPYC Zen 4; medians of 30
// runs): plain NCHW src/dst gets oneDNN's GEMM-based convolution, which wins
// for 1x1 kernels over images of >= 14x14 outputs (by 10-50%); for every other
// shape (3x3, 7x7 stem, 1x1 on 7x7) letting oneDNN pick its layout (brgconv,
// NHWC) and reordering at the boundaries is 18-40% faster end to end.
// Grouped/depthwise convolutions always let oneDNN pick. With assigned
// layouts the primitive is built on exactly those (no reorders at all).
// Pools run on the caller's layouts directly (they are memory bound).
#include "backends/cpu/dnnl_kernel.h"

namespace tessera::cpu {

using namespace dnnlk;

namespace {

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
  if (z.dtype != a.outputs[0]->dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: residual input %d has dtype %s, the output has %s",
                   a.Describe().c_str(), sum_input, plugin::DTypeName(z.dtype), plugin::DTypeName(a.outputs[0]->dtype));
  if (z.dims != a.outputs[0]->dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: residual input %d has shape %s, expected the output shape %s",
                   a.Describe().c_str(), sum_input, DimsStr(z.dims).c_str(), DimsStr(a.outputs[0]->dims).c_str());
  return Err::Ok();
}

}  // namespace

namespace {

// Conv geometry, validated (shared by the kernel and PreferredConvLayout).
struct ConvGeo {
  Window win;
  Dims osp;
  int64_t N = 0, C = 0, M = 0, G = 1;
  size_t rank = 0;
  memory::dims wdims;  // W as oneDNN sees it ([G, M/G, C/G, k...] when grouped)
};

// Checks X, W, B, Y (f32 or bf16 each; oneDNN accumulates in f32) and the
// window; `sum_input` >= 0 is also checked (Z: Y's dtype and shape).
Err ValidateConv(const NodeArgs& a, int sum_input, ConvGeo* g) {
  const std::string what = a.Describe();
  const char* w_ = what.c_str();
  Err e = RequireAndCheckOperands(a, "X", "W", "B", &CheckF32OrBf16);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const TensorArg& W = *a.inputs[1];
  const TensorArg* B = a.has_input(2) ? a.inputs[2] : nullptr;
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
  Window& win = g->win;
  win.in.assign(X.dims.begin() + 2, X.dims.end());
  win.k.assign(W.dims.begin() + 2, W.dims.end());
  if (a.attrs().Has("kernel_shape") && a.attrs().Ints("kernel_shape") != win.k)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: kernel_shape %s does not match W's spatial dims %s", w_,
                   DimsStr(a.attrs().Ints("kernel_shape")).c_str(), DimsStr(win.k).c_str());
  e = ResolveWindow(a, win);
  if (!e.ok()) return e;
  e = WindowOutput(a, win, false, &g->osp);
  if (!e.ok()) return e;
  Dims ydims{N, M};
  ydims.insert(ydims.end(), g->osp.begin(), g->osp.end());
  e = CheckOutputDims(a, ydims);
  if (e.ok()) e = CheckSumInput(a, sum_input);
  if (!e.ok()) return e;
  g->N = N;
  g->C = C;
  g->M = M;
  g->G = G;
  g->rank = rank;
  g->wdims = W.dims;
  if (G > 1) {  // [M, C/G, k...] -> [G, M/G, C/G, k...]: same bytes
    g->wdims.insert(g->wdims.begin(), G);
    g->wdims[1] = M / G;
  }
  return Err::Ok();
}

memory::desc AnyDescOf(const Dims& dims, memory::data_type dt) {
  return memory::desc(dims, dt, memory::format_tag::any);
}

}  // namespace

Err PreferredConvLayout(const NodeArgs& a, std::string* layout, uint64_t* bytes) {
  ConvGeo g;
  Err e = ValidateConv(a, -1, &g);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const TensorArg& Y = *a.outputs[0];
  if (X.numel == 0 || Y.numel == 0) {
    layout->clear();
    *bytes = 0;
    return Err::Ok();
  }
  return GuardDnnl(a, [&]() -> Err {
    const memory::data_type xdt = DnnlType(X.dtype), ydt = DnnlType(Y.dtype);
    using cf = dnnl::convolution_forward;
    cf::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, AnyDescOf(X.dims, xdt),
                  AnyDescOf(g.wdims, xdt), AnyDescOf(Y.dims, ydt), g.win.s, Minus1(g.win.d), g.win.pl, g.win.pr);
    cf::primitive_desc pd(desc, MakeAttr(a), du::Engine());
    *layout = LayoutName(pd.dst_desc());
    *bytes = pd.dst_desc().get_size();
    return Err::Ok();
  });
}

// Conv with extra post-ops after the bias; `sum_input` >= 0 names the node
// input that dst starts from (po must then begin with a sum). Used by
// kernels_fused_dnnl.cpp; CreateConv is the plain case.
//
// Layouts: X, Y and the residual Z are read/written in the layouts the
// compiler assigned (node attributes, dnnl_kernel.h InputLayout); the
// primitive is built on exactly those layouts when oneDNN has an
// implementation for them, else on its own choice with reorders at the edges.
// Types: f32 or bf16 per tensor (bf16 src/weights compute in f32 inside
// oneDNN); weights are reordered into the primitive's dtype and layout once.
Err CreateConvWithPostOps(const NodeArgs& a, const dnnl::post_ops& po, int sum_input, std::unique_ptr<Kernel>* out) {
  const std::string what = a.Describe();
  ConvGeo geo;
  Err e = ValidateConv(a, sum_input, &geo);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const TensorArg& W = *a.inputs[1];
  const TensorArg* B = a.has_input(2) ? a.inputs[2] : nullptr;
  const TensorArg& Y = *a.outputs[0];
  const Window& win = geo.win;
  const int64_t M = geo.M;
  if (Y.numel == 0) {
    *out = NoopKernel();
    return Err::Ok();
  }
  if (X.numel == 0 || W.numel == 0)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: empty X or W with a non-empty output is not supported", what.c_str());
  const memory::data_type xdt = DnnlType(X.dtype), ydt = DnnlType(Y.dtype);
  memory::desc x_user, y_user, z_user;
  e = InputDesc(a, 0, xdt, &x_user);
  if (e.ok()) e = OutputDesc(a, 0, ydt, &y_user);
  if (e.ok() && sum_input >= 0) e = InputDesc(a, static_cast<size_t>(sum_input), ydt, &z_user);
  if (!e.ok()) return e;
  const bool x_assigned = !InputLayout(a, 0).empty(), y_assigned = !OutputLayout(a, 0).empty();
  const bool assigned = x_assigned || y_assigned || (sum_input >= 0 && !InputLayout(a, static_cast<size_t>(sum_input)).empty());
  const bool all_f32 = X.dtype == TSR_DTYPE_F32 && W.dtype == TSR_DTYPE_F32 && Y.dtype == TSR_DTYPE_F32;

  return GuardDnnl(a, [&]() -> Err {
    const memory::dims& wdims = geo.wdims;
    // Layout choice (plain layouts at the edges): see the header comment.
    int64_t out_spatial = Numel(geo.osp);
    bool pointwise = geo.G == 1 && geo.rank == 4 && Numel(win.k) == 1;
    bool plain = all_f32 && !assigned && pointwise && out_spatial >= 14 * 14;
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
    const memory::data_type bdt = B ? DnnlType(B->dtype) : memory::data_type::f32;
    using cf = dnnl::convolution_forward;
    // `fixed`: src/dst in the assigned layouts; else oneDNN's choice.
    auto make_pd = [&](bool fixed) {
      memory::desc src_md = plain || (fixed && x_assigned) ? x_user : AnyDescOf(X.dims, xdt);
      memory::desc dst_md = plain || (fixed && y_assigned) ? y_user : AnyDescOf(Y.dims, ydt);
      memory::desc w_md = AnyDescOf(wdims, xdt);
      memory::dims dil = Minus1(win.d);
      cf::desc desc = B ? cf::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                   w_md, PlainDescOf({M}, bdt), dst_md, win.s, dil, win.pl, win.pr)
                        : cf::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                   w_md, dst_md, win.s, dil, win.pl, win.pr);
      dnnl::primitive_attr attr = MakeAttr(a);
      if (prim_po.len() > 0) attr.set_post_ops(prim_po);
      return cf::primitive_desc(desc, attr, du::Engine());
    };
    cf::primitive_desc pd;
    if (assigned) {
      try {
        pd = make_pd(true);
      } catch (const dnnl::error&) {
        pd = make_pd(false);  // no implementation on those layouts: reorder at the edges
      }
    } else {
      pd = make_pd(false);
    }
    auto k = std::make_unique<DnnlKernel>(what);
    k->AddInput(DNNL_ARG_SRC, 0, x_user, pd.src_desc(), X.const_data);
    k->AddInput(DNNL_ARG_WEIGHTS, 1, PlainDescOf(wdims, DnnlType(W.dtype)), pd.weights_desc(), W.const_data);
    if (B) k->AddInput(DNNL_ARG_BIAS, 2, PlainDescOf({M}, bdt), pd.bias_desc(), B->const_data);
    k->AddOutput(DNNL_ARG_DST, 0, y_user, pd.dst_desc());
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
      k->InitOutputFromInput(DNNL_ARG_DST, sum_input, z_const, &z_user);
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
  Err e = RequireAndCheckOperands(a, "A", "B", nullptr, &CheckF32OrBf16);
  if (!e.ok()) return e;
  const TensorArg& A = *a.inputs[0];
  const TensorArg& B = *a.inputs[1];
  const TensorArg& Y = *a.outputs[0];
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
    e = CheckF32OrBf16(a, bias, "bias");
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
    *out = MakeVoidFnKernel([bytes](const void* const*, void* const* o) { std::memset(o[0], 0, bytes); });
    return Err::Ok();
  }
  // Fold: B is one [K, N] matrix (rank >= 2, every batch dim 1) and A has
  // rank >= 2 -> Y's rows are A's rows, so run one 2-D GEMM
  // [prod(A.dims[:-1]), K] x [K, N] = [prod(Y.dims[:-1]), N] over the same
  // row-major memory (no copy). This is the Gemm path's primitive: one big M
  // instead of a batch of small ones re-reading B, and a constant B is
  // pre-packed once (format_tag::any over a 2-D B). The bias stays [1, N]
  // (broadcast over all rows); a residual has Y's full shape, so its folded
  // view is the folded Y.
  if (r > 2 && A.dims.size() >= 2 && B.dims.size() >= 2) {
    bool b_is_matrix = true;
    for (size_t i = 0; i + 2 < r; ++i) b_is_matrix = b_is_matrix && bd[i] == 1;
    if (b_is_matrix) {
      const int64_t rows = Numel(Dims(ad.begin(), ad.end() - 1));
      ad = Dims{rows, K};
      bd = Dims{K, N};
      dd = Dims{rows, N};
      r = 2;
    }
  }
  if (static_cast<int>(r) > kMaxDnnlRank)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: rank %zu exceeds oneDNN's limit of %d", w_, r, kMaxDnnlRank);

  return GuardDnnl(a, [&]() -> Err {
    // A constant B is prepacked into oneDNN's preferred layout.
    // Types: f32 or bf16 per tensor; a constant B is converted to A's type
    // with its prepacking.
    const memory::data_type adt = DnnlType(A.dtype), ydt = DnnlType(Y.dtype);
    const memory::data_type bdt = B.const_data ? adt : DnnlType(B.dtype);
    const memory::data_type biasdt = bias ? DnnlType(bias->dtype) : memory::data_type::f32;
    memory::desc b_md = B.const_data ? memory::desc(bd, bdt, memory::format_tag::any) : PlainDescOf(bd, bdt);
    Dims bias_dims(r, 1);
    bias_dims[r - 1] = N;
    dnnl::matmul::desc desc = bias ? dnnl::matmul::desc(PlainDescOf(ad, adt), b_md, PlainDescOf(bias_dims, biasdt),
                                                        PlainDescOf(dd, ydt))
                                   : dnnl::matmul::desc(PlainDescOf(ad, adt), b_md, PlainDescOf(dd, ydt));
    dnnl::primitive_attr attr = MakeAttr(a);
    if (po.len() > 0) attr.set_post_ops(po);
    dnnl::matmul::primitive_desc pd(desc, attr, du::Engine());
    auto k = std::make_unique<DnnlKernel>(what);
    k->AddInput(DNNL_ARG_SRC, 0, PlainDescOf(ad, adt), pd.src_desc(), A.const_data);
    k->AddInput(DNNL_ARG_WEIGHTS, 1, PlainDescOf(bd, DnnlType(B.dtype)), pd.weights_desc(), B.const_data);
    if (bias)
      k->AddInput(DNNL_ARG_BIAS, bias_input, PlainDescOf(bias_dims, biasdt), pd.bias_desc(), bias->const_data);
    k->AddOutput(DNNL_ARG_DST, 0, PlainDescOf(dd, ydt), pd.dst_desc());
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
  Err e = RequireAndCheckOperands(a, "A", "B", "C", &CheckF32OrBf16);
  if (!e.ok()) return e;
  const TensorArg& A = *a.inputs[0];
  const TensorArg& B = *a.inputs[1];
  const TensorArg* C = a.has_input(2) ? a.inputs[2] : nullptr;
  const TensorArg& Y = *a.outputs[0];
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
  // C is added by an f32 loop (general path) or folded into an f32 bias
  // (constant C, alpha == 1); with bf16 only the latter exists.
  const bool f32_c = !C || (C->dtype == TSR_DTYPE_F32 && Y.dtype == TSR_DTYPE_F32);
  if (use_c && !f32_c && (K == 0 || !C->const_data || alpha != 1.f))
    return MakeErr(TSR_ERR_UNSUPPORTED,
                   "%s: with bf16, C must be a constant and alpha 1 (C is %s%s, alpha %g, Y is %s)", w_,
                   plugin::DTypeName(C->dtype), C->const_data ? "" : ", not constant", static_cast<double>(alpha),
                   plugin::DTypeName(Y.dtype));
  if (K == 0) {
    size_t bytes = static_cast<size_t>(Y.nbytes());
    *out = MakeVoidFnKernel([=](const void* const* in, void* const* o) {
      if (use_c)
        fill_c(static_cast<const float*>(in[2]), static_cast<float*>(o[0]), beta);
      else
        std::memset(o[0], 0, bytes);
    });
    return Err::Ok();
  }

  return GuardDnnl(a, [&]() -> Err {
    // Types: f32 or bf16 per tensor; constant operands are converted to the
    // compute type (A's, or B's when only A is constant) with their prepacking.
    const memory::data_type adt = DnnlType(A.dtype), bdt_user = DnnlType(B.dtype), ydt = DnnlType(Y.dtype);
    const memory::data_type cdt = A.const_data && !B.const_data ? bdt_user : adt;
    memory::desc a_user(Dims{M, K}, adt, ta ? memory::dims{1, M} : memory::dims{K, 1});
    memory::desc b_user(Dims{K, N}, bdt_user, tb ? memory::dims{1, K} : memory::dims{N, 1});
    memory::desc a_md = A.const_data ? memory::desc({M, K}, cdt, memory::format_tag::any) : a_user;
    memory::desc b_md = B.const_data ? memory::desc({K, N}, cdt, memory::format_tag::any) : b_user;
    memory::desc y_md = PlainDescOf({M, N}, ydt);
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
        std::vector<float> bias(static_cast<size_t>(cm * cn));
        if (C->dtype == TSR_DTYPE_BF16) {
          const uint16_t* c = static_cast<const uint16_t*>(C->const_data);
          for (size_t i = 0; i < bias.size(); ++i) {
            uint32_t bits = static_cast<uint32_t>(c[i]) << 16;
            float f;
            std::memcpy(&f, &bits, sizeof(f));
            bias[i] = beta * f;
          }
        } else {
          const float* c = static_cast<const float*>(C->const_data);
          for (size_t i = 0; i < bias.size(); ++i) bias[i] = beta * c[i];
        }
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
    if (use_c && !f32_c)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: oneDNN has no bf16 matmul with this bias shape", w_);
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
  // MaxPool with the Indices output or a dtype other than f32/bf16 runs the own loop.
  if (is_max && ((a.outputs.size() > 1 && a.outputs[1]) || (X.dtype != TSR_DTYPE_F32 && X.dtype != TSR_DTYPE_BF16)))
    return CreateMaxPoolLoop(a, out);
  for (auto [t, name] : {std::pair{&X, "X"}, {&Y, "Y"}}) {
    e = CheckF32OrBf16(a, t, name);
    if (!e.ok()) return e;
  }
  if (X.dtype != Y.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Y has dtype %s, X has %s", w_, plugin::DTypeName(Y.dtype),
                   plugin::DTypeName(X.dtype));
  const memory::data_type dt = DnnlType(X.dtype);
  memory::desc x_user, y_user;
  e = InputDesc(a, 0, dt, &x_user);
  if (e.ok()) e = OutputDesc(a, 0, dt, &y_user);
  if (!e.ok()) return e;
  const bool x_assigned = !InputLayout(a, 0).empty(), y_assigned = !OutputLayout(a, 0).empty();
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
  if (!fixup.empty() && X.dtype != TSR_DTYPE_F32)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: count_include_pad with ceil_mode supports only f32 (X is %s)", w_,
                   plugin::DTypeName(X.dtype));
  // Elements of one spatial position are `inner` apart in Y's layout: 1 when
  // plain, C when channels-last, the block size when channel-blocked.
  int64_t inner = 1;
  if (y_assigned) {
    const std::string yl = OutputLayout(a, 0);
    if (yl.find("16c") != std::string::npos) inner = 16;
    else if (yl.find("8c") != std::string::npos) inner = 8;
    else inner = Y.dims[1];
  }

  return GuardDnnl(a, [&]() -> Err {
    dnnl::algorithm alg = is_max ? dnnl::algorithm::pooling_max
                                 : include_pad ? dnnl::algorithm::pooling_avg_include_padding
                                               : dnnl::algorithm::pooling_avg_exclude_padding;
    using pf = dnnl::pooling_v2_forward;
    // Pools run on the caller's layouts directly (plain unless assigned).
    memory::desc y_md = y_assigned || !x_assigned ? y_user : memory::desc(Y.dims, dt, memory::format_tag::any);
    pf::desc desc(dnnl::prop_kind::forward_inference, alg, x_user, y_md, win.s, win.k, Minus1(win.d), win.pl, pr_use);
    pf::primitive_desc pd(desc, MakeAttr(a), du::Engine());
    auto k = std::make_unique<DnnlKernel>(what);
    k->AddInput(DNNL_ARG_SRC, 0, x_user, pd.src_desc(), X.const_data);
    k->AddOutput(DNNL_ARG_DST, 0, y_user, pd.dst_desc());
    if (!fixup.empty()) {
      const int64_t total = static_cast<int64_t>(y_user.get_size() / sizeof(float));
      k->SetHooks(nullptr, [fix = std::move(fixup), total, inner](const void* const*, void* const* o) {
        const int64_t plane = static_cast<int64_t>(fix.size());
        float* y = static_cast<float*>(o[0]);
        ParallelFor(total, 16384, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) y[i] *= fix[static_cast<size_t>((i / inner) % plane)];
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

std::string ClaimConv(const tsr_node_view& node, const tsr_graph_view& g) {
  std::string r = CheckF32OrBf16Inputs(node, g, 3);
  return r.empty() ? CheckSpatialRank(node, g) : r;
}

std::string ClaimMatMul(const tsr_node_view& node, const tsr_graph_view& g) { return CheckF32OrBf16Inputs(node, g, 3); }

std::string ClaimGemm(const tsr_node_view& node, const tsr_graph_view& g) {
  std::string r = CheckF32OrBf16Inputs(node, g, 3);
  return r.empty() ? CheckGemmBf16C(node, g) : r;
}

std::string ClaimMaxPool(const tsr_node_view& node, const tsr_graph_view& g) {
  const bool indices = node.num_outputs > 1 && node.outputs[1] >= 0;
  if (node.num_inputs > 0 && node.inputs[0] >= 0 && static_cast<uint32_t>(node.inputs[0]) < g.num_values) {
    const int32_t t = g.values[node.inputs[0]].dtype;
    if (!MaxPoolLoopDType(t) && !(t == TSR_DTYPE_BF16 && !indices))
      return std::string("MaxPool supports f32, f64, i8 and u8 (and bf16 without Indices) on the CPU backend; X is ") +
             plugin::DTypeName(t);
  }
  return CheckSpatialRank(node, g);
}

std::string ClaimAveragePool(const tsr_node_view& node, const tsr_graph_view& g) {
  std::string r = CheckF32OrBf16Inputs(node, g, 1);
  return r.empty() ? CheckSpatialRank(node, g) : r;
}

}  // namespace

void RegisterDnnlKernels(KernelRegistry& r) {
  r.Add({"", "Conv", &CreateConv, &ClaimConv});
  r.Add({"", "MatMul", &CreateMatMul, &ClaimMatMul});
  r.Add({"", "Gemm", &CreateGemm, &ClaimGemm});
  r.Add({"", "MaxPool", &CreateMaxPool, &ClaimMaxPool});
  r.Add({"", "AveragePool", &CreateAveragePool, &ClaimAveragePool});
}

}  // namespace tessera::cpu
