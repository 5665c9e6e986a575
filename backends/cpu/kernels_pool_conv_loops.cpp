// Own-loop CPU kernels of the pooling/convolution family, for what the oneDNN
// primitives do not cover: MaxPool with the Indices output or a non-f32
// dtype, LpPool/GlobalLpPool, ConvTranspose (oneDNN deconvolution when it
// applies, else a direct loop), MaxUnpool and DeformConv.
#include "backends/cpu/dnnl_kernel.h"

namespace tessera::cpu {

using namespace dnnlk;

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

}  // namespace

bool dnnlk::MaxPoolLoopDType(int32_t t) {
  return t == TSR_DTYPE_F32 || t == TSR_DTYPE_F64 || t == TSR_DTYPE_I8 || t == TSR_DTYPE_U8;
}

// MaxPool through the own loop: the Indices output or a dtype other than f32.
Err dnnlk::CreateMaxPoolLoop(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
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
  *out = MakeVoidFnKernel([=](const void* const* in, void* const* o) {
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

namespace {

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
  *out = MakeVoidFnKernel([=](const void* const* in, void* const* o) {
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
  Err e = RequireAndCheckOperands(a, "X", "W", "B", &CheckF32);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const TensorArg& W = *a.inputs[1];
  const TensorArg* B = a.has_input(2) ? a.inputs[2] : nullptr;
  const TensorArg& Y = *a.outputs[0];
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
  *out = MakeVoidFnKernel([=](const void* const* in, void* const* o) {
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
  *out = MakeVoidFnKernel([=](const void* const* in, void* const* o) {
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

// ---- claim checks (shapes may be unknown here) ------------------------------------------

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

}  // namespace

void RegisterPoolConvLoopKernels(KernelRegistry& r) {
  r.Add({"", "LpPool", &CreateLpPool, &ClaimLpPool});
  r.Add({"", "GlobalLpPool", &CreateGlobalLpPool, &ClaimLpPool});
  r.Add({"", "ConvTranspose", &CreateConvTranspose, &ClaimF32Only});
  r.Add({"", "MaxUnpool", &CreateMaxUnpool, &ClaimF32Only});
  r.Add({"", "DeformConv", &CreateDeformConv, &ClaimDeformConv});
}

}  // namespace tessera::cpu
