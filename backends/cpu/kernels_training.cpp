// CPU kernels of the tessera-domain training ops (graph/ops_training.cpp):
// losses and their gradients, optimizer updates, global-norm clipping, and the
// gradient ops autodiff emits (ReluGrad, GeluGrad, SoftmaxGrad, LayerNormGrad,
// BatchNormGrad, MaxPoolGrad, AveragePoolGrad, ConvGradInput/Weight,
// GatherGrad, SliceGrad). Every kernel supports f32 and f64 (one template); reductions
// accumulate in double.
//
// Threading: kernels go parallel only above kTrainGrain elements of work (a
// step is many small kernels); per-channel/per-row statistics are summed per
// independent slice and reduced in a fixed order, so results do not depend on
// the thread count.
//
// In-place contract (optimizers, GlobalNormClip): an output may share its
// buffer with the state input it replaces (SGDUpdate param->param_out,
// momentum_buf->momentum_out; AdamWUpdate param/m/v; GlobalNormClip g_i->g_i'):
// each element is read before the same element is written and no other
// element of that buffer is read afterwards.
//
// Conv gradients: f32 runs oneDNN's convolution_backward_data /
// convolution_backward_weights on plain (row-major) layouts; f64, and any
// geometry oneDNN has no implementation for, runs direct loops (exact,
// parallel over independent output slices). The int attribute
// tessera_force_loops=1 selects the loops for f32 too (tests compare both).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/dnnl_util.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

// Elements of work below which a kernel stays on the calling thread: a
// training step runs many small kernels, and on a shared CPU each parallel
// region's fork/join costs more than it saves for less work than this.
constexpr int64_t kTrainGrain = 32768;

const char* DT(int32_t dt) { return plugin::DTypeName(dt); }
bool IsF(int32_t dt) { return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_F64; }

Err CheckCount(const NodeArgs& a, size_t min_in, size_t max_in, size_t min_out, size_t max_out) {
  size_t nin = 0, nout = 0;
  for (size_t i = 0; i < a.inputs.size(); ++i)
    if (a.inputs[i]) nin = i + 1;
  for (size_t i = 0; i < a.outputs.size(); ++i)
    if (a.outputs[i]) nout = i + 1;
  for (size_t i = 0; i < min_in; ++i)
    if (!a.has_input(i)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu is required", a.Describe().c_str(), i);
  if (nin > max_in || nout < min_out || nout > max_out || a.outputs.empty() || !a.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects %zu..%zu inputs and %zu..%zu outputs (output 0 required)",
                   a.Describe().c_str(), min_in, max_in, min_out, max_out);
  return Err::Ok();
}

// Inputs `idx` and output 0 are f32 or f64 and all the same dtype.
Err CheckFloatSame(const NodeArgs& a, std::initializer_list<size_t> idx) {
  const int32_t dt = a.outputs[0]->dtype;
  if (!IsF(dt))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s is not supported (f32, f64)", a.Describe().c_str(), DT(dt));
  for (size_t i : idx)
    if (a.has_input(i) && a.inputs[i]->dtype != dt)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu has dtype %s, expected %s", a.Describe().c_str(), i,
                     DT(a.inputs[i]->dtype), DT(dt));
  return Err::Ok();
}

Err CheckSameNumel(const NodeArgs& a, size_t i, size_t j) {
  if (a.inputs[i]->dims != a.inputs[j]->dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inputs %zu and %zu have different shapes", a.Describe().c_str(), i, j);
  return Err::Ok();
}

// One element of a numeric buffer as double.
double ReadScalar(int32_t dt, const void* p) {
  switch (dt) {
    case TSR_DTYPE_F32: return *static_cast<const float*>(p);
    case TSR_DTYPE_F64: return *static_cast<const double*>(p);
    case TSR_DTYPE_I32: return *static_cast<const int32_t*>(p);
    case TSR_DTYPE_I64: return static_cast<double>(*static_cast<const int64_t*>(p));
    case TSR_DTYPE_U32: return *static_cast<const uint32_t*>(p);
    case TSR_DTYPE_U64: return static_cast<double>(*static_cast<const uint64_t*>(p));
    default: return std::nan("");
  }
}
bool ScalarDTypeOk(int32_t dt) {
  return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_F64 || dt == TSR_DTYPE_I32 || dt == TSR_DTYPE_I64 ||
         dt == TSR_DTYPE_U32 || dt == TSR_DTYPE_U64;
}

int64_t Label(int32_t dt, const void* p, int64_t i) {
  return dt == TSR_DTYPE_I32 ? static_cast<const int32_t*>(p)[i] : static_cast<const int64_t*>(p)[i];
}

// ---- SoftmaxCrossEntropy (+Grad) -----------------------------------------------------------

enum class Red { kMean, kSum, kNone };

struct SceParams {
  std::string who;
  Red red = Red::kMean;
  bool has_ignore = false;
  int64_t ignore = -100;
  double eps = 0.0;
  int64_t n = 0, c = 0;
  int32_t dt = TSR_DTYPE_F32, label_dt = TSR_DTYPE_I64;
};

Err ParseReduction(const NodeArgs& a, Red* r) {
  std::string s = a.attrs().String("reduction", "mean");
  if (s == "mean") *r = Red::kMean;
  else if (s == "sum") *r = Red::kSum;
  else if (s == "none") *r = Red::kNone;
  else return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: reduction must be mean, sum or none, got '%s'", a.Describe().c_str(), s.c_str());
  return Err::Ok();
}

Err ParseSce(const NodeArgs& a, size_t logits, SceParams* p) {
  p->who = a.Describe();
  Err e = ParseReduction(a, &p->red);
  if (!e.ok()) return e;
  const TensorArg& x = *a.inputs[logits];
  const TensorArg& l = *a.inputs[logits + 1];
  if (!IsF(x.dtype)) return MakeErr(TSR_ERR_UNSUPPORTED, "%s: logits dtype %s is not supported (f32, f64)", p->who.c_str(), DT(x.dtype));
  if (l.dtype != TSR_DTYPE_I32 && l.dtype != TSR_DTYPE_I64)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: labels have dtype %s, expected i32 or i64", p->who.c_str(), DT(l.dtype));
  if (x.dims.size() != 2 || l.dims.size() != 1 || l.dims[0] != x.dims[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects logits [N, C] and labels [N]", p->who.c_str());
  p->has_ignore = a.attrs().Has("ignore_index");
  p->ignore = a.attrs().Int("ignore_index", -100);
  p->eps = a.attrs().Float("label_smoothing", 0.f);
  if (!(p->eps >= 0.0 && p->eps < 1.0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: label_smoothing must be in [0, 1)", p->who.c_str());
  p->n = x.dims[0];
  p->c = x.dims[1];
  p->dt = x.dtype;
  p->label_dt = l.dtype;
  return Err::Ok();
}

// Labels valid; count = number of non-ignored samples.
Err CheckLabels(const SceParams& p, const void* labels, int64_t* count) {
  int64_t cnt = 0;
  for (int64_t i = 0; i < p.n; ++i) {
    int64_t y = Label(p.label_dt, labels, i);
    if (p.has_ignore && y == p.ignore) continue;
    if (y < 0 || y >= p.c)
      return MakeErr(TSR_ERR_OUT_OF_RANGE, "%s: label %lld of sample %lld is outside [0, %lld)", p.who.c_str(),
                     static_cast<long long>(y), static_cast<long long>(i), static_cast<long long>(p.c));
    ++cnt;
  }
  *count = cnt;
  return Err::Ok();
}

// A kernel over f32 or f64 data: Run calls the derived class's
// `template <typename T> Err Go(in, out) const` for the node's dtype.
template <class Derived>
class FloatKernel : public Kernel {
 public:
  explicit FloatKernel(int32_t dt) : dt_(dt) {}
  Err Run(const void* const* in, void* const* out) const override {
    const Derived& d = static_cast<const Derived&>(*this);
    return dt_ == TSR_DTYPE_F64 ? d.template Go<double>(in, out) : d.template Go<float>(in, out);
  }

 protected:
  int32_t dt_;
};

class SceKernel : public Kernel {
 public:
  explicit SceKernel(SceParams p) : p_(std::move(p)) {}
  Err Run(const void* const* in, void* const* out) const override {
    return p_.dt == TSR_DTYPE_F64 ? Go<double>(in, out) : Go<float>(in, out);
  }

 private:
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    int64_t count = 0;
    Err e = CheckLabels(p_, in[1], &count);
    if (!e.ok()) return e;
    const T* x = static_cast<const T*>(in[0]);
    std::vector<double> per(p_.n, 0.0);
    const int64_t C = p_.c;
    ParallelFor(p_.n, std::max<int64_t>(1, kTrainGrain / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t end) {
      for (int64_t i = b; i < end; ++i) {
        int64_t y = Label(p_.label_dt, in[1], i);
        if (p_.has_ignore && y == p_.ignore) continue;
        const T* row = x + i * C;
        double mx = row[0];
        for (int64_t j = 1; j < C; ++j) mx = std::max(mx, static_cast<double>(row[j]));
        double s = 0, sum_logp = 0;
        for (int64_t j = 0; j < C; ++j) s += std::exp(row[j] - mx);
        const double lse = mx + std::log(s);
        for (int64_t j = 0; j < C; ++j) sum_logp += row[j] - lse;
        per[i] = -((1.0 - p_.eps) * (row[y] - lse) + p_.eps / C * sum_logp);
      }
    });
    T* o = static_cast<T*>(out[0]);
    if (p_.red == Red::kNone) {
      for (int64_t i = 0; i < p_.n; ++i) o[i] = static_cast<T>(per[i]);
    } else {
      double s = 0;
      for (double v : per) s += v;
      o[0] = static_cast<T>(p_.red == Red::kSum ? s : (count > 0 ? s / count : 0.0));
    }
    return Err::Ok();
  }
  SceParams p_;
};

class SceGradKernel : public Kernel {
 public:
  explicit SceGradKernel(SceParams p) : p_(std::move(p)) {}
  Err Run(const void* const* in, void* const* out) const override {
    return p_.dt == TSR_DTYPE_F64 ? Go<double>(in, out) : Go<float>(in, out);
  }

 private:
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    int64_t count = 0;
    Err e = CheckLabels(p_, in[2], &count);
    if (!e.ok()) return e;
    const T* dl = static_cast<const T*>(in[0]);
    const T* x = static_cast<const T*>(in[1]);
    T* dx = static_cast<T*>(out[0]);
    const int64_t C = p_.c;
    ParallelFor(p_.n, std::max<int64_t>(1, kTrainGrain / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t end) {
      std::vector<double> ex_row(static_cast<size_t>(C));  // exp(x - max) of the current row
      for (int64_t i = b; i < end; ++i) {
        T* drow = dx + i * C;
        int64_t y = Label(p_.label_dt, in[2], i);
        if (p_.has_ignore && y == p_.ignore) {
          std::fill(drow, drow + C, T(0));
          continue;
        }
        double g = p_.red == Red::kNone ? static_cast<double>(dl[i])
                   : p_.red == Red::kSum ? static_cast<double>(dl[0])
                                         : static_cast<double>(dl[0]) / static_cast<double>(count);
        const T* row = x + i * C;
        double mx = row[0];
        for (int64_t j = 1; j < C; ++j) mx = std::max(mx, static_cast<double>(row[j]));
        double s = 0;
        for (int64_t j = 0; j < C; ++j) {
          const double ex = std::exp(row[j] - mx);
          ex_row[j] = ex;
          s += ex;
        }
        const double gs = g / s, base = p_.eps / C;
        for (int64_t j = 0; j < C; ++j) drow[j] = static_cast<T>(gs * ex_row[j] - g * base);
        drow[y] = static_cast<T>(gs * ex_row[y] - g * (base + 1.0 - p_.eps));
      }
    });
    return Err::Ok();
  }
  SceParams p_;
};

Err CreateSce(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 2, 2, 1, 1);
  if (!e.ok()) return e;
  SceParams p;
  e = ParseSce(a, 0, &p);
  if (!e.ok()) return e;
  if (a.outputs[0]->dtype != p.dt)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: the loss dtype must match the logits", p.who.c_str());
  *out = std::make_unique<SceKernel>(std::move(p));
  return Err::Ok();
}

Err CreateSceGrad(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 3, 3, 1, 1);
  if (!e.ok()) return e;
  SceParams p;
  e = ParseSce(a, 1, &p);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0, 1});
  if (!e.ok()) return e;
  const int64_t want = p.red == Red::kNone ? p.n : 1;
  if (a.inputs[0]->numel != want)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dloss has %lld elements, expected %lld", p.who.c_str(),
                   static_cast<long long>(a.inputs[0]->numel), static_cast<long long>(want));
  *out = std::make_unique<SceGradKernel>(std::move(p));
  return Err::Ok();
}

// ---- MSE (+Grad) ----------------------------------------------------------------------------

class MseKernel : public FloatKernel<MseKernel> {
 public:
  MseKernel(int32_t dt, Red r, int64_t n, bool grad) : FloatKernel(dt), red_(r), n_(n), grad_(grad) {}

 private:
  friend FloatKernel<MseKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    if (!grad_) {
      const T* p = static_cast<const T*>(in[0]);
      const T* t = static_cast<const T*>(in[1]);
      T* o = static_cast<T*>(out[0]);
      if (red_ == Red::kNone) {
        for (int64_t i = 0; i < n_; ++i) o[i] = (p[i] - t[i]) * (p[i] - t[i]);
        return Err::Ok();
      }
      double s = 0;
      for (int64_t i = 0; i < n_; ++i) s += (static_cast<double>(p[i]) - t[i]) * (static_cast<double>(p[i]) - t[i]);
      o[0] = static_cast<T>(red_ == Red::kSum ? s : s / static_cast<double>(n_));
      return Err::Ok();
    }
    const T* dl = static_cast<const T*>(in[0]);
    const T* p = static_cast<const T*>(in[1]);
    const T* t = static_cast<const T*>(in[2]);
    T* d = static_cast<T*>(out[0]);
    const double g0 = red_ == Red::kNone ? 0.0 : red_ == Red::kSum ? dl[0] : static_cast<double>(dl[0]) / n_;
    for (int64_t i = 0; i < n_; ++i) {
      double g = red_ == Red::kNone ? static_cast<double>(dl[i]) : g0;
      d[i] = static_cast<T>(2.0 * g * (static_cast<double>(p[i]) - t[i]));
    }
    return Err::Ok();
  }
  Red red_;
  int64_t n_;
  bool grad_;
};

template <bool kGrad>
Err CreateMse(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const size_t base = kGrad ? 1 : 0;
  Err e = CheckCount(a, 2 + base, 2 + base, 1, 1);
  if (!e.ok()) return e;
  Red r;
  e = ParseReduction(a, &r);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0, 1, 2});
  if (!e.ok()) return e;
  e = CheckSameNumel(a, base, base + 1);
  if (!e.ok()) return e;
  const int64_t n = a.inputs[base]->numel;
  if (kGrad && a.inputs[0]->numel != (r == Red::kNone ? n : 1))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dloss has the wrong number of elements", a.Describe().c_str());
  *out = std::make_unique<MseKernel>(a.outputs[0]->dtype, r, n, kGrad);
  return Err::Ok();
}

// ---- optimizers -----------------------------------------------------------------------------

class SgdKernel : public FloatKernel<SgdKernel> {
 public:
  SgdKernel(int32_t dt, int32_t lr_dt, int64_t n, double mom, double damp, bool nesterov, double wd, bool has_buf,
            bool has_buf_out)
      : FloatKernel(dt), lr_dt_(lr_dt), n_(n), mom_(mom), damp_(damp), nesterov_(nesterov), wd_(wd), has_buf_(has_buf),
        has_buf_out_(has_buf_out) {}

 private:
  friend FloatKernel<SgdKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    const double lr = ReadScalar(lr_dt_, in[2]);
    const T* p = static_cast<const T*>(in[0]);
    const T* g = static_cast<const T*>(in[1]);
    const T* buf = has_buf_ ? static_cast<const T*>(in[3]) : nullptr;
    T* po = static_cast<T*>(out[0]);
    T* bo = has_buf_out_ ? static_cast<T*>(out[1]) : nullptr;
    if (mom_ != 0.0 && bo && !nesterov_) {
      // The common momentum case, branch-free. `omp simd` is valid under the
      // in-place contract: element i reads only p[i], g[i], buf[i] and writes
      // only po[i], bo[i] (lanes never depend on each other).
      const double mom = mom_, keep = 1.0 - damp_, wd = wd_;
      ParallelFor(n_, kTrainGrain, [&](int64_t b, int64_t e) {
#pragma omp simd
        for (int64_t i = b; i < e; ++i) {
          const double pi = p[i];
          const double nb = mom * static_cast<double>(buf[i]) + keep * (static_cast<double>(g[i]) + wd * pi);
          bo[i] = static_cast<T>(nb);
          po[i] = static_cast<T>(pi - lr * nb);
        }
      });
      return Err::Ok();
    }
    ParallelFor(n_, kTrainGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const double pi = p[i];
        double d = static_cast<double>(g[i]) + wd_ * pi;
        if (mom_ != 0.0) {
          const double nb = mom_ * static_cast<double>(buf[i]) + (1.0 - damp_) * d;
          if (bo) bo[i] = static_cast<T>(nb);
          d = nesterov_ ? d + mom_ * nb : nb;
        } else if (bo) {
          bo[i] = buf[i];
        }
        po[i] = static_cast<T>(pi - lr * d);
      }
    });
    return Err::Ok();
  }
  int32_t lr_dt_;
  int64_t n_;
  double mom_, damp_;
  bool nesterov_;
  double wd_;
  bool has_buf_, has_buf_out_;  // input 3 present; output 1 present (then out[1] exists)
};

Err CreateSgd(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 3, 4, 1, 2);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0, 1, 3});
  if (!e.ok()) return e;
  e = CheckSameNumel(a, 0, 1);
  if (!e.ok()) return e;
  const auto at = a.attrs();
  const double mom = at.Float("momentum", 0.f), damp = at.Float("dampening", 0.f), wd = at.Float("weight_decay", 0.f);
  const bool nesterov = at.Int("nesterov", 0) != 0;
  const bool has_buf = a.has_input(3);
  if (mom < 0) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: momentum must be >= 0", a.Describe().c_str());
  if (mom != 0 && !has_buf)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: momentum > 0 needs input 3 (momentum_buf)", a.Describe().c_str());
  if (nesterov && (mom == 0 || damp != 0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: nesterov needs momentum > 0 and dampening 0", a.Describe().c_str());
  if (has_buf) {
    e = CheckSameNumel(a, 0, 3);
    if (!e.ok()) return e;
  }
  if (a.outputs.size() > 1 && a.outputs[1] && !has_buf)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: momentum_out needs input 3 (momentum_buf)", a.Describe().c_str());
  if (a.inputs[2]->numel != 1 || !IsF(a.inputs[2]->dtype))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: lr must be one f32/f64 element", a.Describe().c_str());
  const bool has_buf_out = a.outputs.size() > 1 && a.outputs[1] != nullptr;
  *out = std::make_unique<SgdKernel>(a.outputs[0]->dtype, a.inputs[2]->dtype, a.inputs[0]->numel, mom, damp, nesterov,
                                     wd, has_buf, has_buf_out);
  return Err::Ok();
}

// PyTorch's AdamW: p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
class AdamWKernel : public FloatKernel<AdamWKernel> {
 public:
  AdamWKernel(int32_t dt, int32_t lr_dt, int32_t step_dt, int64_t n, double b1, double b2, double eps, double wd,
              std::string who)
      : FloatKernel(dt), lr_dt_(lr_dt), step_dt_(step_dt), n_(n), b1_(b1), b2_(b2), eps_(eps), wd_(wd), who_(std::move(who)) {}

 private:
  friend FloatKernel<AdamWKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    const double lr = ReadScalar(lr_dt_, in[4]);
    const double t = ReadScalar(step_dt_, in[5]);
    if (!(t >= 1.0))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: step must be >= 1 (1-based), got %g", who_.c_str(), t);
    const double bc1 = 1.0 - std::pow(b1_, t), bc2 = 1.0 - std::pow(b2_, t);
    const double step_size = lr / bc1, sbc2 = std::sqrt(bc2), decay = 1.0 - lr * wd_;
    const T* p = static_cast<const T*>(in[0]);
    const T* g = static_cast<const T*>(in[1]);
    const T* m = static_cast<const T*>(in[2]);
    const T* v = static_cast<const T*>(in[3]);
    T* po = static_cast<T*>(out[0]);
    T* mo = static_cast<T*>(out[1]);
    T* vo = static_cast<T*>(out[2]);
    ParallelFor(n_, kTrainGrain, [&](int64_t b, int64_t e) {
#pragma omp simd  // valid under the in-place contract: lane i touches only element i
      for (int64_t i = b; i < e; ++i) {
        const double gi = g[i];
        const T nm = static_cast<T>(b1_ * m[i] + (1.0 - b1_) * gi);
        const T nv = static_cast<T>(b2_ * v[i] + (1.0 - b2_) * gi * gi);
        const double pi = static_cast<double>(p[i]) * decay;
        mo[i] = nm;
        vo[i] = nv;
        po[i] = static_cast<T>(pi - step_size * static_cast<double>(nm) / (std::sqrt(static_cast<double>(nv)) / sbc2 + eps_));
      }
    });
    return Err::Ok();
  }
  int32_t lr_dt_, step_dt_;
  int64_t n_;
  double b1_, b2_, eps_, wd_;
  std::string who_;
};

Err CreateAdamW(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 6, 6, 3, 3);
  if (!e.ok()) return e;
  for (size_t i = 0; i < 3; ++i)
    if (!a.outputs[i]) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: outputs param_out, m_out and v_out are required", a.Describe().c_str());
  e = CheckFloatSame(a, {0, 1, 2, 3});
  if (!e.ok()) return e;
  for (size_t i = 1; i < 4; ++i) {
    e = CheckSameNumel(a, 0, i);
    if (!e.ok()) return e;
  }
  if (a.inputs[4]->numel != 1 || !IsF(a.inputs[4]->dtype))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: lr must be one f32/f64 element", a.Describe().c_str());
  if (a.inputs[5]->numel != 1 || !ScalarDTypeOk(a.inputs[5]->dtype))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: step must be one numeric element", a.Describe().c_str());
  const auto at = a.attrs();
  const double b1 = at.Float("beta1", 0.9f), b2 = at.Float("beta2", 0.999f), eps = at.Float("epsilon", 1e-8f),
               wd = at.Float("weight_decay", 0.01f);
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1 && eps > 0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: need 0 <= beta1, beta2 < 1 and epsilon > 0", a.Describe().c_str());
  *out = std::make_unique<AdamWKernel>(a.outputs[0]->dtype, a.inputs[4]->dtype, a.inputs[5]->dtype,
                                       a.inputs[0]->numel, b1, b2, eps, wd, a.Describe());
  return Err::Ok();
}

// g_i' = g_i * min(1, max_norm / (||(g_1..g_N)||_2 + 1e-6)) (PyTorch's clip_grad_norm_).
class ClipKernel : public FloatKernel<ClipKernel> {
 public:
  ClipKernel(int32_t dt, std::vector<int64_t> n, double max_norm) : FloatKernel(dt), n_(std::move(n)), max_(max_norm) {}

 private:
  friend FloatKernel<ClipKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    double ss = 0;
    for (size_t k = 0; k < n_.size(); ++k) {
      const T* g = static_cast<const T*>(in[k]);
      for (int64_t i = 0; i < n_[k]; ++i) ss += static_cast<double>(g[i]) * g[i];
    }
    const double norm = std::sqrt(ss);
    const double scale = std::min(1.0, max_ / (norm + 1e-6));
    for (size_t k = 0; k < n_.size(); ++k) {
      if (!out[k]) continue;
      const T* g = static_cast<const T*>(in[k]);
      T* o = static_cast<T*>(out[k]);
      for (int64_t i = 0; i < n_[k]; ++i) o[i] = static_cast<T>(g[i] * scale);
    }
    if (out[n_.size()]) *static_cast<T*>(out[n_.size()]) = static_cast<T>(norm);
    return Err::Ok();
  }
  std::vector<int64_t> n_;
  double max_;
};

Err CreateClip(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const size_t n = a.inputs.size();
  if (n == 0 || a.outputs.size() != n + 1 || !a.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects N inputs and N+1 outputs", a.Describe().c_str());
  std::vector<int64_t> sizes;
  const int32_t dt = a.inputs[0] ? a.inputs[0]->dtype : TSR_DTYPE_UNDEFINED;
  if (!IsF(dt)) return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s is not supported (f32, f64)", a.Describe().c_str(), DT(dt));
  for (size_t i = 0; i < n; ++i) {
    if (!a.inputs[i] || a.inputs[i]->dtype != dt)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: every input must be present with dtype %s", a.Describe().c_str(), DT(dt));
    if (a.outputs[i] && a.outputs[i]->numel != a.inputs[i]->numel)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu must match input %zu", a.Describe().c_str(), i, i);
    sizes.push_back(a.inputs[i]->numel);
  }
  const auto* mn = a.attrs().Find("max_norm");
  if (!mn || mn->type != TSR_ATTR_FLOAT || !(mn->f > 0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute max_norm (float > 0) is required", a.Describe().c_str());
  *out = std::make_unique<ClipKernel>(dt, std::move(sizes), mn->f);
  return Err::Ok();
}

// ---- GeluGrad, SoftmaxGrad -------------------------------------------------------------------

class GeluGradKernel : public FloatKernel<GeluGradKernel> {
 public:
  GeluGradKernel(int32_t dt, int64_t n, bool tanh_approx) : FloatKernel(dt), n_(n), tanh_(tanh_approx) {}

 private:
  friend FloatKernel<GeluGradKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    const T* dy = static_cast<const T*>(in[0]);
    const T* x = static_cast<const T*>(in[1]);
    T* dx = static_cast<T*>(out[0]);
    ParallelFor(n_, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const double v = x[i];
        double d;
        if (tanh_) {
          const double k = std::sqrt(2.0 / M_PI);
          const double u = k * (v + 0.044715 * v * v * v);
          const double t = std::tanh(u);
          d = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * v * v);
        } else {
          const double cdf = 0.5 * (1.0 + std::erf(v / std::sqrt(2.0)));
          const double pdf = std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
          d = cdf + v * pdf;
        }
        dx[i] = static_cast<T>(dy[i] * d);
      }
    });
    return Err::Ok();
  }
  int64_t n_;
  bool tanh_;
};

Err CreateGeluGrad(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 2, 2, 1, 1);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0, 1});
  if (!e.ok()) return e;
  e = CheckSameNumel(a, 0, 1);
  if (!e.ok()) return e;
  std::string ap = a.attrs().String("approximate", "none");
  if (ap != "none" && ap != "tanh")
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: approximate must be none or tanh", a.Describe().c_str());
  *out = std::make_unique<GeluGradKernel>(a.outputs[0]->dtype, a.inputs[0]->numel, ap == "tanh");
  return Err::Ok();
}

// dx = dy where x_or_y > 0, else 0 (also 0 where x_or_y is NaN).
class ReluGradKernel : public FloatKernel<ReluGradKernel> {
 public:
  ReluGradKernel(int32_t dt, int64_t n) : FloatKernel(dt), n_(n) {}

 private:
  friend FloatKernel<ReluGradKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    const T* dy = static_cast<const T*>(in[0]);
    const T* x = static_cast<const T*>(in[1]);
    T* dx = static_cast<T*>(out[0]);
    ParallelFor(n_, kTrainGrain, [&](int64_t b, int64_t e) {
      // dy is loaded unconditionally so the select vectorizes (no branch).
      for (int64_t i = b; i < e; ++i) {
        const T g = dy[i];
        dx[i] = x[i] > T(0) ? g : T(0);
      }
    });
    return Err::Ok();
  }
  int64_t n_;
};

Err CreateReluGrad(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 2, 2, 1, 1);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0, 1});
  if (!e.ok()) return e;
  e = CheckSameNumel(a, 0, 1);
  if (!e.ok()) return e;
  if (a.outputs[0]->numel != a.inputs[0]->numel)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dx must have as many elements as dy", a.Describe().c_str());
  *out = std::make_unique<ReluGradKernel>(a.outputs[0]->dtype, a.inputs[0]->numel);
  return Err::Ok();
}

// Softmax: dx = y * (dy - sum(dy * y)); LogSoftmax: dx = dy - exp(y) * sum(dy).
class SoftmaxGradKernel : public FloatKernel<SoftmaxGradKernel> {
 public:
  SoftmaxGradKernel(int32_t dt, int64_t outer, int64_t len, int64_t inner, bool log)
      : FloatKernel(dt), outer_(outer), len_(len), inner_(inner), log_(log) {}

 private:
  friend FloatKernel<SoftmaxGradKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    const T* dy = static_cast<const T*>(in[0]);
    const T* y = static_cast<const T*>(in[1]);
    T* dx = static_cast<T*>(out[0]);
    ParallelFor(outer_ * inner_, std::max<int64_t>(1, kTrainGrain / std::max<int64_t>(len_, 1)), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t o = r / inner_, in_ = r % inner_;
        const int64_t base = o * len_ * inner_ + in_;
        double s = 0;
        for (int64_t j = 0; j < len_; ++j) {
          const int64_t k = base + j * inner_;
          s += log_ ? static_cast<double>(dy[k]) : static_cast<double>(dy[k]) * y[k];
        }
        for (int64_t j = 0; j < len_; ++j) {
          const int64_t k = base + j * inner_;
          dx[k] = static_cast<T>(log_ ? dy[k] - std::exp(static_cast<double>(y[k])) * s : y[k] * (dy[k] - s));
        }
      }
    });
    return Err::Ok();
  }
  int64_t outer_, len_, inner_;
  bool log_;
};

Err CreateSoftmaxGrad(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 2, 2, 1, 1);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0, 1});
  if (!e.ok()) return e;
  e = CheckSameNumel(a, 0, 1);
  if (!e.ok()) return e;
  const auto& d = a.inputs[1]->dims;
  const int64_t r = static_cast<int64_t>(d.size());
  int64_t axis = a.attrs().Int("axis", -1);
  if (axis < 0) axis += r;
  if (r == 0 || axis < 0 || axis >= r)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis is out of range for rank %lld", a.Describe().c_str(), static_cast<long long>(r));
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= d[i];
  if (a.attrs().Int("coerce_2d", 0) != 0) {
    for (int64_t i = axis; i < r; ++i) len *= d[i];
  } else {
    len = d[axis];
    for (int64_t i = axis + 1; i < r; ++i) inner *= d[i];
  }
  *out = std::make_unique<SoftmaxGradKernel>(a.outputs[0]->dtype, outer, len, inner, a.attrs().Int("log", 0) != 0);
  return Err::Ok();
}

// ---- LayerNormGrad, BatchNormGrad ---------------------------------------------------------------

class LayerNormGradKernel : public FloatKernel<LayerNormGradKernel> {
 public:
  LayerNormGradKernel(int32_t dt, int64_t rows, int64_t d, double eps, size_t nout)
      : FloatKernel(dt), rows_(rows), d_(d), eps_(eps), nout_(nout) {}

 private:
  friend FloatKernel<LayerNormGradKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    const T* dy = static_cast<const T*>(in[0]);
    const T* x = static_cast<const T*>(in[1]);
    const T* sc = static_cast<const T*>(in[2]);
    T* dx = static_cast<T*>(out[0]);
    const int64_t D = d_;
    std::vector<double> mean(rows_), inv(rows_);
    ParallelFor(rows_, std::max<int64_t>(1, kTrainGrain / std::max<int64_t>(D, 1)), [&](int64_t b, int64_t e) {
      std::vector<double> xh(D);
      for (int64_t r = b; r < e; ++r) {
        const T* xr = x + r * D;
        const T* dyr = dy + r * D;
        double m = 0, v = 0;
        for (int64_t j = 0; j < D; ++j) m += xr[j];
        m /= D;
        for (int64_t j = 0; j < D; ++j) v += (xr[j] - m) * (xr[j] - m);
        v /= D;
        const double is = 1.0 / std::sqrt(v + eps_);
        mean[r] = m;
        inv[r] = is;
        double s1 = 0, s2 = 0;
        for (int64_t j = 0; j < D; ++j) {
          xh[j] = (xr[j] - m) * is;
          const double g = static_cast<double>(dyr[j]) * sc[j];
          s1 += g;
          s2 += g * xh[j];
        }
        s1 /= D;
        s2 /= D;
        for (int64_t j = 0; j < D; ++j)
          dx[r * D + j] = static_cast<T>(is * (static_cast<double>(dyr[j]) * sc[j] - s1 - xh[j] * s2));
      }
    });
    T* ds = nout_ > 1 && out[1] ? static_cast<T*>(out[1]) : nullptr;
    T* db = nout_ > 2 && out[2] ? static_cast<T*>(out[2]) : nullptr;
    if (ds || db) {
      ParallelFor(D, std::max<int64_t>(1, kTrainGrain / std::max<int64_t>(rows_, 1)), [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; ++j) {
          double s = 0, t = 0;
          for (int64_t r = 0; r < rows_; ++r) {
            const double g = dy[r * D + j];
            s += g * (x[r * D + j] - mean[r]) * inv[r];
            t += g;
          }
          if (ds) ds[j] = static_cast<T>(s);
          if (db) db[j] = static_cast<T>(t);
        }
      });
    }
    return Err::Ok();
  }
  int64_t rows_, d_;
  double eps_;
  size_t nout_;  // the node's output count (out[] has this many entries)
};

Err CreateLayerNormGrad(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 3, 3, 1, 3);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0, 1, 2});
  if (!e.ok()) return e;
  e = CheckSameNumel(a, 0, 1);
  if (!e.ok()) return e;
  const auto& d = a.inputs[1]->dims;
  const int64_t r = static_cast<int64_t>(d.size());
  int64_t axis = a.attrs().Int("axis", -1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis is out of range", a.Describe().c_str());
  int64_t rows = 1, D = 1;
  for (int64_t i = 0; i < axis; ++i) rows *= d[i];
  for (int64_t i = axis; i < r; ++i) D *= d[i];
  if (a.inputs[2]->numel != D)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: scale must have the %lld elements of the normalized dims (no broadcasting)",
                   a.Describe().c_str(), static_cast<long long>(D));
  for (size_t i = 1; i < a.outputs.size(); ++i)
    if (a.outputs[i] && a.outputs[i]->numel != D)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %zu must have scale's shape", a.Describe().c_str(), i);
  *out = std::make_unique<LayerNormGradKernel>(a.outputs[0]->dtype, rows, D, a.attrs().Float("epsilon", 1e-5f),
                                               a.outputs.size());
  return Err::Ok();
}

// Sums over one contiguous plane of S elements, shifted by k (d = x - k):
// out = {sum d, sum d^2, sum dy, sum dy * d}, in double. `omp simd reduction`
// lets the compiler vectorize (a fixed lane split, so the result depends only
// on the plane, not on threading).
template <typename T>
void BnPlaneSums(const T* x, const T* dy, int64_t S, double k, double* out) {
  double a1 = 0, a2 = 0, a3 = 0, a4 = 0;
#pragma omp simd reduction(+ : a1, a2, a3, a4)
  for (int64_t i = 0; i < S; ++i) {
    const double d = static_cast<double>(x[i]) - k, g = static_cast<double>(dy[i]);
    a1 += d;
    a2 += d * d;
    a3 += g;
    a4 += g * d;
  }
  out[0] = a1;
  out[1] = a2;
  out[2] = a3;
  out[3] = a4;
}

// X [N, C, *]; per channel. Training mode uses the batch statistics (biased variance).
// Two parallel passes over the N*C planes (per-plane sums, then dx), each
// plane's sums reduced per channel in a fixed order: results do not depend on
// the thread count.
class BatchNormGradKernel : public FloatKernel<BatchNormGradKernel> {
 public:
  BatchNormGradKernel(int32_t dt, int64_t n, int64_t c, int64_t s, double eps, bool training, size_t nout)
      : FloatKernel(dt), n_(n), c_(c), s_(s), eps_(eps), training_(training), nout_(nout) {}

 private:
  friend FloatKernel<BatchNormGradKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    const T* dy = static_cast<const T*>(in[0]);
    const T* x = static_cast<const T*>(in[1]);
    const T* sc = static_cast<const T*>(in[2]);
    const T* rm = training_ ? nullptr : static_cast<const T*>(in[3]);
    const T* rv = training_ ? nullptr : static_cast<const T*>(in[4]);
    T* dx = static_cast<T*>(out[0]);
    T* ds = nout_ > 1 && out[1] ? static_cast<T*>(out[1]) : nullptr;
    T* db = nout_ > 2 && out[2] ? static_cast<T*>(out[2]) : nullptr;
    const int64_t N = n_, C = c_, S = s_, P = N * C;
    if (C == 0) return Err::Ok();
    const double m = static_cast<double>(N * S), inv_m = m > 0 ? 1.0 / m : 0.0;
    // Shift per channel: the running mean (inference) or the channel's first
    // element (training), so the one-pass variance does not cancel.
    std::vector<double> shift(static_cast<size_t>(C), 0.0);
    for (int64_t ch = 0; ch < C; ++ch)
      shift[ch] = training_ ? (N * S > 0 ? static_cast<double>(x[ch * S]) : 0.0) : static_cast<double>(rm[ch]);
    std::vector<double> sums(static_cast<size_t>(P) * 4);
    const int64_t grain = std::max<int64_t>(1, kTrainGrain / std::max<int64_t>(S, 1));
    ParallelFor(P, grain, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) BnPlaneSums(x + p * S, dy + p * S, S, shift[p % C], &sums[p * 4]);
    });
    // Per channel: dx = A * dy + B * (x - mean) + D.
    std::vector<T> ca(C), cb(C), cd(C), cmean(C);
    for (int64_t ch = 0; ch < C; ++ch) {
      double s1 = 0, s2 = 0, sdy = 0, sdyd = 0;
      for (int64_t i = 0; i < N; ++i) {
        const double* q = &sums[(i * C + ch) * 4];
        s1 += q[0];
        s2 += q[1];
        sdy += q[2];
        sdyd += q[3];
      }
      double mean, var;
      if (training_) {
        const double dm = s1 * inv_m;
        mean = shift[ch] + dm;
        var = std::max(0.0, s2 * inv_m - dm * dm);
      } else {
        mean = rm[ch];
        var = rv[ch];
      }
      const double inv = 1.0 / std::sqrt(var + eps_);
      const double sdyx = (sdyd - (mean - shift[ch]) * sdy) * inv;  // sum dy * (x - mean) * inv
      if (ds) ds[ch] = static_cast<T>(sdyx);
      if (db) db[ch] = static_cast<T>(sdy);
      const double a = static_cast<double>(sc[ch]) * inv;
      ca[ch] = static_cast<T>(a);
      cb[ch] = static_cast<T>(training_ ? -a * inv * sdyx * inv_m : 0.0);
      cd[ch] = static_cast<T>(training_ ? -a * sdy * inv_m : 0.0);
      cmean[ch] = static_cast<T>(mean);
    }
    ParallelFor(P, grain, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        const int64_t ch = p % C;
        const T a = ca[ch], bb = cb[ch], d = cd[ch], mu = cmean[ch];
        const T* xp = x + p * S;
        const T* gp = dy + p * S;
        T* op = dx + p * S;
        for (int64_t k = 0; k < S; ++k) op[k] = a * gp[k] + bb * (xp[k] - mu) + d;
      }
    });
    return Err::Ok();
  }
  int64_t n_, c_, s_;
  double eps_;
  bool training_;
  size_t nout_;  // the node's output count (out[] has this many entries)
};

Err CreateBatchNormGrad(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 3, 5, 1, 3);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0, 1, 2, 3, 4});
  if (!e.ok()) return e;
  e = CheckSameNumel(a, 0, 1);
  if (!e.ok()) return e;
  const auto& d = a.inputs[1]->dims;
  if (d.size() < 2) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: X must have rank >= 2", a.Describe().c_str());
  const int64_t N = d[0], C = d[1];
  int64_t S = 1;
  for (size_t i = 2; i < d.size(); ++i) S *= d[i];
  const bool training = a.attrs().Int("training_mode", 0) != 0;
  if (!training && (!a.has_input(3) || !a.has_input(4)))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inference mode needs the running mean and var (inputs 3, 4)", a.Describe().c_str());
  for (size_t i : {size_t{2}, size_t{3}, size_t{4}})
    if (a.has_input(i) && a.inputs[i]->numel != C)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %zu must have C=%lld elements", a.Describe().c_str(), i, static_cast<long long>(C));
  *out = std::make_unique<BatchNormGradKernel>(a.outputs[0]->dtype, N, C, S, a.attrs().Float("epsilon", 1e-5f), training,
                                               a.outputs.size());
  return Err::Ok();
}

// ---- pooling and convolution gradients -------------------------------------------------------------

// Window geometry for N-d pooling/convolution over X [N, C, in...] -> Y [N, M, out...].
struct Window {
  int nd = 0;
  std::vector<int64_t> in, out, k, stride, pad, dil;  // pad: begins only
  int64_t in_size() const { int64_t s = 1; for (auto v : in) s *= v; return s; }
  int64_t out_size() const { int64_t s = 1; for (auto v : out) s *= v; return s; }
  int64_t k_size() const { int64_t s = 1; for (auto v : k) s *= v; return s; }
  // Input flat index of output position o and kernel offset kk, or -1 when in padding.
  int64_t InIndex(int64_t o, int64_t kk) const {
    int64_t idx = 0;
    int64_t orem = o, krem = kk;
    std::vector<int64_t> oc(nd), kc(nd);
    for (int d = nd - 1; d >= 0; --d) {
      oc[d] = orem % out[d];
      orem /= out[d];
      kc[d] = krem % k[d];
      krem /= k[d];
    }
    for (int d = 0; d < nd; ++d) {
      const int64_t p = oc[d] * stride[d] - pad[d] + kc[d] * dil[d];
      if (p < 0 || p >= in[d]) return -1;
      idx = idx * in[d] + p;
    }
    return idx;
  }
  // table[o * k_size() + kk] = InIndex(o, kk), built once per kernel.
  std::vector<int64_t> IndexTable() const {
    const int64_t OS = out_size(), KS = k_size();
    std::vector<int64_t> t(OS * KS);
    for (int64_t o = 0; o < OS; ++o)
      for (int64_t kk = 0; kk < KS; ++kk) t[o * KS + kk] = InIndex(o, kk);
    return t;
  }
  // Window positions of output o that fall inside [-pad_begin, in + pad_end).
  int64_t PaddedCount(int64_t o, const std::vector<int64_t>& pad_end) const {
    int64_t orem = o, cnt = 1;
    std::vector<int64_t> oc(nd);
    for (int d = nd - 1; d >= 0; --d) {
      oc[d] = orem % out[d];
      orem /= out[d];
    }
    for (int d = 0; d < nd; ++d) {
      int64_t c = 0;
      for (int64_t kk = 0; kk < k[d]; ++kk) {
        const int64_t p = oc[d] * stride[d] - pad[d] + kk * dil[d];
        if (p >= -pad[d] && p < in[d] + pad_end[d]) ++c;
      }
      cnt *= c;
    }
    return cnt;
  }
};

// Reads strides/pads/dilations; `k` given. Checks sizes.
Err ParseWindow(const NodeArgs& a, const std::vector<int64_t>& xdims, const std::vector<int64_t>& ydims,
                std::vector<int64_t> k, Window* w, std::vector<int64_t>* pad_end) {
  if (xdims.size() < 3 || ydims.size() != xdims.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expects X and dY of the same rank >= 3", a.Describe().c_str());
  const int nd = static_cast<int>(xdims.size()) - 2;
  const auto at = a.attrs();
  std::vector<int64_t> s = at.Ints("strides"), p = at.Ints("pads"), d = at.Ints("dilations");
  if (s.empty()) s.assign(nd, 1);
  if (p.empty()) p.assign(2 * nd, 0);
  if (d.empty()) d.assign(nd, 1);
  if (static_cast<int>(k.size()) != nd || static_cast<int>(s.size()) != nd || static_cast<int>(p.size()) != 2 * nd ||
      static_cast<int>(d.size()) != nd)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: kernel_shape/strides/pads/dilations do not match %d spatial dims",
                   a.Describe().c_str(), nd);
  for (int i = 0; i < nd; ++i)
    if (k[i] <= 0 || s[i] <= 0 || d[i] <= 0 || p[i] < 0 || p[nd + i] < 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: kernel, strides and dilations must be > 0 and pads >= 0", a.Describe().c_str());
  w->nd = nd;
  w->in.assign(xdims.begin() + 2, xdims.end());
  w->out.assign(ydims.begin() + 2, ydims.end());
  w->k = k;
  w->stride = s;
  w->pad.assign(p.begin(), p.begin() + nd);
  w->dil = d;
  pad_end->assign(p.begin() + nd, p.end());
  return Err::Ok();
}

class PoolGradKernel : public FloatKernel<PoolGradKernel> {
 public:
  PoolGradKernel(int32_t dt, int64_t planes, Window w, std::vector<int64_t> pad_end, bool max, bool include_pad)
      : FloatKernel(dt), planes_(planes), w_(std::move(w)), pad_end_(std::move(pad_end)), max_(max), include_pad_(include_pad) {
    idx_ = w_.IndexTable();
    const int64_t OS = w_.out_size(), KS = w_.k_size();
    vidx_.assign(idx_.size(), 0);
    vcnt_.assign(OS, 0);
    for (int64_t o = 0; o < OS; ++o)
      for (int64_t kk = 0; kk < KS; ++kk)
        if (idx_[o * KS + kk] >= 0) vidx_[o * KS + vcnt_[o]++] = idx_[o * KS + kk];
    div_.assign(OS, 0);
    for (int64_t o = 0; o < OS; ++o) {
      int64_t cnt = 0;
      for (int64_t kk = 0; kk < KS; ++kk)
        if (idx_[o * KS + kk] >= 0) ++cnt;
      div_[o] = include_pad_ ? w_.PaddedCount(o, pad_end_) : cnt;
    }
  }

 private:
  friend FloatKernel<PoolGradKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    const T* dy = static_cast<const T*>(in[0]);
    const T* x = static_cast<const T*>(in[1]);
    T* dx = static_cast<T*>(out[0]);
    const int64_t IS = w_.in_size(), OS = w_.out_size(), KS = w_.k_size();
    ParallelFor(planes_, std::max<int64_t>(1, kTrainGrain / std::max<int64_t>(IS, 1)), [&](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl) {
        T* dxp = dx + pl * IS;
        const T* xp = x + pl * IS;
        const T* dyp = dy + pl * OS;
        std::fill(dxp, dxp + IS, T(0));
        for (int64_t o = 0; o < OS; ++o) {
          const int64_t* ip = idx_.data() + o * KS;
          if (max_) {
            // The first maximum of the window's in-bounds positions (NaN never
            // wins over an earlier element), without data-dependent branches:
            // those mispredict about half the time on real activations.
            const int64_t cnt = vcnt_[o];
            if (cnt == 0) continue;
            const int64_t* vp = vidx_.data() + o * KS;
            int64_t best = vp[0];
            T bv = xp[best];
            for (int64_t kk = 1; kk < cnt; ++kk) {
              const int64_t i = vp[kk];
              const T v = xp[i];
              const int64_t gt = v > bv;
              best += (i - best) & -gt;
              bv = v > bv ? v : bv;
            }
            dxp[best] += dyp[o];
          } else {
            if (div_[o] == 0) continue;
            const double g = static_cast<double>(dyp[o]) / static_cast<double>(div_[o]);
            for (int64_t kk = 0; kk < KS; ++kk)
              if (ip[kk] >= 0) dxp[ip[kk]] = static_cast<T>(dxp[ip[kk]] + g);
          }
        }
      }
    });
    return Err::Ok();
  }
  int64_t planes_;
  Window w_;
  std::vector<int64_t> pad_end_;
  bool max_, include_pad_;
  std::vector<int64_t> idx_;  // Window::IndexTable()
  std::vector<int64_t> div_;  // average-pool divisor per output position
  // Per output position o: its vcnt_[o] in-bounds input indices, in window
  // order, at vidx_[o * k_size() ...].
  std::vector<int64_t> vidx_, vcnt_;
};

template <bool kMax>
Err CreatePoolGrad(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 2, 2, 1, 1);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0, 1});
  if (!e.ok()) return e;
  const auto& xd = a.inputs[1]->dims;
  const auto& yd = a.inputs[0]->dims;
  Window w;
  std::vector<int64_t> pe;
  e = ParseWindow(a, xd, yd, a.attrs().Ints("kernel_shape"), &w, &pe);
  if (!e.ok()) return e;
  if (xd[0] != yd[0] || xd[1] != yd[1])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dY and X differ in N or C", a.Describe().c_str());
  *out = std::make_unique<PoolGradKernel>(a.outputs[0]->dtype, xd[0] * xd[1], std::move(w), std::move(pe), kMax,
                                          a.attrs().Int("count_include_pad", 0) != 0);
  return Err::Ok();
}

// dX[n, g*Cg+c, i] += dY[n, g*Mg+m, o] * W[g*Mg+m, c, k]  and
// dW[g*Mg+m, c, k]  += dY[n, g*Mg+m, o] * X[n, g*Cg+c, i]  over (o, k) with i = InIndex(o, k).
class ConvGradKernel : public FloatKernel<ConvGradKernel> {
 public:
  ConvGradKernel(int32_t dt, bool weight, int64_t n, int64_t c, int64_t m, int64_t groups, Window w)
      : FloatKernel(dt), weight_(weight), n_(n), c_(c), m_(m), g_(groups), w_(std::move(w)), idx_(w_.IndexTable()) {}

 private:
  friend FloatKernel<ConvGradKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    const T* dy = static_cast<const T*>(in[0]);
    const T* other = static_cast<const T*>(in[1]);  // W for dX, X for dW
    T* res = static_cast<T*>(out[0]);
    const int64_t IS = w_.in_size(), OS = w_.out_size(), KS = w_.k_size();
    const int64_t Cg = c_ / g_, Mg = m_ / g_;
    const std::vector<int64_t>& idx = idx_;  // input index per (output position, kernel offset)
    if (!weight_) {
      ParallelFor(n_ * g_, 1, [&](int64_t b, int64_t e) {
        std::vector<double> acc(Cg * IS);
        for (int64_t ng = b; ng < e; ++ng) {
          const int64_t n = ng / g_, g = ng % g_;
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int64_t mm = 0; mm < Mg; ++mm) {
            const int64_t m = g * Mg + mm;
            const T* dyp = dy + (n * m_ + m) * OS;
            for (int64_t c = 0; c < Cg; ++c) {
              const T* wp = other + (m * Cg + c) * KS;
              double* ap = acc.data() + c * IS;
              for (int64_t o = 0; o < OS; ++o) {
                const double gy = dyp[o];
                if (gy == 0.0) continue;
                const int64_t* ip = idx.data() + o * KS;
                for (int64_t kk = 0; kk < KS; ++kk)
                  if (ip[kk] >= 0) ap[ip[kk]] += gy * wp[kk];
              }
            }
          }
          for (int64_t c = 0; c < Cg; ++c) {
            T* dst = res + (n * c_ + g * Cg + c) * IS;
            for (int64_t i = 0; i < IS; ++i) dst[i] = static_cast<T>(acc[c * IS + i]);
          }
        }
      });
    } else {
      ParallelFor(m_, 1, [&](int64_t b, int64_t e) {
        std::vector<double> acc(Cg * KS);
        for (int64_t m = b; m < e; ++m) {
          const int64_t g = m / Mg;
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int64_t n = 0; n < n_; ++n) {
            const T* dyp = dy + (n * m_ + m) * OS;
            for (int64_t c = 0; c < Cg; ++c) {
              const T* xp = other + (n * c_ + g * Cg + c) * IS;
              double* ap = acc.data() + c * KS;
              for (int64_t o = 0; o < OS; ++o) {
                const double gy = dyp[o];
                if (gy == 0.0) continue;
                const int64_t* ip = idx.data() + o * KS;
                for (int64_t kk = 0; kk < KS; ++kk)
                  if (ip[kk] >= 0) ap[kk] += gy * xp[ip[kk]];
              }
            }
          }
          T* dst = res + m * Cg * KS;
          for (int64_t i = 0; i < Cg * KS; ++i) dst[i] = static_cast<T>(acc[i]);
        }
      });
    }
    return Err::Ok();
  }
  bool weight_;
  int64_t n_, c_, m_, g_;
  Window w_;
  std::vector<int64_t> idx_;
};

// f32 convolution gradients through oneDNN (plain layouts, no reorders).
class DnnlConvGradKernel : public Kernel {
 public:
  DnnlConvGradKernel(bool weight, dnnl::primitive prim, dnnl::memory::desc dy_md, dnnl::memory::desc other_md,
                     dnnl::memory::desc res_md, std::string who)
      : weight_(weight), prim_(std::move(prim)), dy_md_(dy_md), other_md_(other_md), res_md_(res_md), who_(std::move(who)) {}
  Err Run(const void* const* in, void* const* out) const override {
    try {
      namespace du = dnnl_util;
      dnnl::stream& s = du::ThreadStream();
      dnnl::memory dy(dy_md_, du::Engine(), const_cast<void*>(in[0]));
      dnnl::memory other(other_md_, du::Engine(), const_cast<void*>(in[1]));
      dnnl::memory res(res_md_, du::Engine(), out[0]);
      if (weight_)
        prim_.execute(s, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_SRC, other}, {DNNL_ARG_DIFF_WEIGHTS, res}});
      else
        prim_.execute(s, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, other}, {DNNL_ARG_DIFF_SRC, res}});
      s.wait();
    } catch (const dnnl::error& e) {
      return MakeErr(TSR_ERR_INTERNAL, "%s: oneDNN failed: %s", who_.c_str(), e.what());
    }
    return Err::Ok();
  }

 private:
  bool weight_;
  dnnl::primitive prim_;
  dnnl::memory::desc dy_md_, other_md_, res_md_;
  std::string who_;
};

// Builds the oneDNN backward primitive; false when oneDNN has none for this geometry.
bool MakeDnnlConvGrad(bool weight, const std::vector<int64_t>& xd, const std::vector<int64_t>& wd,
                      const std::vector<int64_t>& yd, int64_t groups, const Window& w, const std::vector<int64_t>& pe,
                      const std::string& who, std::unique_ptr<Kernel>* out) {
  namespace du = dnnl_util;
  using dnnl::memory;
  try {
    memory::dims wdims(wd.begin(), wd.end());
    if (groups > 1) {
      wdims.insert(wdims.begin(), groups);
      wdims[1] /= groups;
    }
    const memory::desc x_md = du::PlainDesc(memory::dims(xd.begin(), xd.end()));
    const memory::desc y_md = du::PlainDesc(memory::dims(yd.begin(), yd.end()));
    const memory::desc w_md = du::PlainDesc(wdims);
    memory::dims st(w.stride.begin(), w.stride.end()), dil, pl(w.pad.begin(), w.pad.end()), pr(pe.begin(), pe.end());
    for (int64_t d : w.dil) dil.push_back(d - 1);
    using cf = dnnl::convolution_forward;
    cf::desc fdesc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, x_md, w_md, y_md, st, dil,
                   pl, pr);
    cf::primitive_desc fpd(fdesc, du::Engine());
    if (weight) {
      using bw = dnnl::convolution_backward_weights;
      bw::desc d(dnnl::algorithm::convolution_direct, x_md, w_md, y_md, st, dil, pl, pr);
      bw::primitive_desc pd(d, du::Engine(), fpd);
      if (pd.diff_weights_desc() != w_md || pd.src_desc() != x_md || pd.diff_dst_desc() != y_md) return false;
      *out = std::make_unique<DnnlConvGradKernel>(true, bw(pd), y_md, x_md, w_md, who);
    } else {
      using bd = dnnl::convolution_backward_data;
      bd::desc d(dnnl::algorithm::convolution_direct, x_md, w_md, y_md, st, dil, pl, pr);
      bd::primitive_desc pd(d, du::Engine(), fpd);
      if (pd.diff_src_desc() != x_md || pd.weights_desc() != w_md || pd.diff_dst_desc() != y_md) return false;
      *out = std::make_unique<DnnlConvGradKernel>(false, bd(pd), y_md, w_md, x_md, who);
    }
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

template <bool kWeight>
Err CreateConvGrad(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 2, 2, 1, 1);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0, 1});
  if (!e.ok()) return e;
  const auto& yd = a.inputs[0]->dims;
  std::vector<int64_t> xd = kWeight ? a.inputs[1]->dims : a.outputs[0]->dims;
  std::vector<int64_t> wd = kWeight ? a.outputs[0]->dims : a.inputs[1]->dims;
  const int64_t groups = a.attrs().Int("group", 1);
  if (xd.size() < 3 || wd.size() != xd.size() || yd.size() != xd.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: X, W and dY must have the same rank >= 3", a.Describe().c_str());
  const int64_t N = xd[0], C = xd[1], M = wd[0];
  if (groups <= 0 || C % groups != 0 || M % groups != 0 || wd[1] != C / groups || yd[0] != N || yd[1] != M)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inconsistent shapes for group=%lld (X channels %lld, W %lld x %lld, dY channels %lld)",
                   a.Describe().c_str(), static_cast<long long>(groups), static_cast<long long>(C),
                   static_cast<long long>(M), static_cast<long long>(wd[1]), static_cast<long long>(yd[1]));
  Window w;
  std::vector<int64_t> pe;
  e = ParseWindow(a, xd, yd, std::vector<int64_t>(wd.begin() + 2, wd.end()), &w, &pe);
  if (!e.ok()) return e;
  for (int d = 0; d < w.nd; ++d) {
    const int64_t expect = (w.in[d] + w.pad[d] + pe[d] - (w.k[d] - 1) * w.dil[d] - 1) / w.stride[d] + 1;
    if (expect != w.out[d])
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dY spatial dim %d is %lld, the forward Conv gives %lld",
                     a.Describe().c_str(), d, static_cast<long long>(w.out[d]), static_cast<long long>(expect));
  }
  if (a.outputs[0]->dtype == TSR_DTYPE_F32 && a.attrs().Int("tessera_force_loops", 0) == 0 && a.outputs[0]->numel > 0 &&
      a.inputs[0]->numel > 0 && MakeDnnlConvGrad(kWeight, xd, wd, yd, groups, w, pe, a.Describe(), out))
    return Err::Ok();
  *out = std::make_unique<ConvGradKernel>(a.outputs[0]->dtype, kWeight, N, C, M, groups, std::move(w));
  return Err::Ok();
}

// ---- GatherGrad ---------------------------------------------------------------------------------

class GatherGradKernel : public FloatKernel<GatherGradKernel> {
 public:
  GatherGradKernel(int32_t dt, int32_t idt, int64_t outer, int64_t axis_len, int64_t ni, int64_t inner, std::string who)
      : FloatKernel(dt), idt_(idt), outer_(outer), len_(axis_len), ni_(ni), inner_(inner), who_(std::move(who)) {}

 private:
  friend FloatKernel<GatherGradKernel>;
  template <typename T>
  Err Go(const void* const* in, void* const* out) const {
    const T* dy = static_cast<const T*>(in[0]);
    T* dx = static_cast<T*>(out[0]);
    std::vector<int64_t> ix(ni_);
    for (int64_t j = 0; j < ni_; ++j) {
      int64_t v = Label(idt_, in[1], j);
      if (v < 0) v += len_;
      if (v < 0 || v >= len_)
        return MakeErr(TSR_ERR_OUT_OF_RANGE, "%s: index %lld is outside [-%lld, %lld)", who_.c_str(),
                       static_cast<long long>(Label(idt_, in[1], j)), static_cast<long long>(len_),
                       static_cast<long long>(len_));
      ix[j] = v;
    }
    std::fill(dx, dx + outer_ * len_ * inner_, T(0));
    ParallelFor(outer_, std::max<int64_t>(1, kTrainGrain / std::max<int64_t>(ni_ * inner_, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o)
        for (int64_t j = 0; j < ni_; ++j) {
          const T* src = dy + (o * ni_ + j) * inner_;
          T* dst = dx + (o * len_ + ix[j]) * inner_;
          for (int64_t k = 0; k < inner_; ++k) dst[k] += src[k];
        }
    });
    return Err::Ok();
  }
  int32_t idt_;
  int64_t outer_, len_, ni_, inner_;
  std::string who_;
};

Err CreateGatherGrad(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 2, 2, 1, 1);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0});
  if (!e.ok()) return e;
  const int32_t idt = a.inputs[1]->dtype;
  if (idt != TSR_DTYPE_I32 && idt != TSR_DTYPE_I64)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: indices have dtype %s, expected i32 or i64", a.Describe().c_str(), DT(idt));
  const auto& xd = a.outputs[0]->dims;
  const int64_t r = static_cast<int64_t>(xd.size());
  int64_t axis = a.attrs().Int("axis", 0);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis is out of range", a.Describe().c_str());
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= xd[i];
  for (int64_t i = axis + 1; i < r; ++i) inner *= xd[i];
  const int64_t ni = a.inputs[1]->numel;
  if (a.inputs[0]->numel != outer * ni * inner)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dY has %lld elements, expected %lld", a.Describe().c_str(),
                   static_cast<long long>(a.inputs[0]->numel), static_cast<long long>(outer * ni * inner));
  *out = std::make_unique<GatherGradKernel>(a.outputs[0]->dtype, idt, outer, xd[axis], ni, inner, a.Describe());
  return Err::Ok();
}

// ---- SliceGrad -----------------------------------------------------------------------------------

// dx = zeros of x's shape with dy written at the positions Slice read
// (ONNX Slice semantics: negative starts/ends count from the end, clamping,
// any non-zero step). Parameters must be constant at kernel creation.
class SliceGradKernel : public Kernel {
 public:
  SliceGradKernel(int64_t elem, std::vector<int64_t> xd, std::vector<int64_t> yd, std::vector<int64_t> start,
                  std::vector<int64_t> step)
      : elem_(elem), xd_(std::move(xd)), yd_(std::move(yd)), start_(std::move(start)), step_(std::move(step)) {}
  Err Run(const void* const* in, void* const* out) const override {
    const int r = static_cast<int>(xd_.size());
    int64_t xn = 1, yn = 1;
    for (int i = 0; i < r; ++i) xn *= xd_[i], yn *= yd_[i];
    std::memset(out[0], 0, static_cast<size_t>(xn * elem_));
    const auto* src = static_cast<const uint8_t*>(in[0]);
    auto* dst = static_cast<uint8_t*>(out[0]);
    std::vector<int64_t> xs(r, 1);
    for (int i = r - 2; i >= 0; --i) xs[i] = xs[i + 1] * xd_[i + 1];
    std::vector<int64_t> idx(r, 0);
    for (int64_t k = 0; k < yn; ++k) {
      int64_t off = 0;
      for (int i = 0; i < r; ++i) off += (start_[i] + idx[i] * step_[i]) * xs[i];
      std::memcpy(dst + off * elem_, src + k * elem_, static_cast<size_t>(elem_));
      for (int i = r - 1; i >= 0; --i) {
        if (++idx[i] < yd_[i]) break;
        idx[i] = 0;
      }
    }
    return Err::Ok();
  }

 private:
  int64_t elem_;
  std::vector<int64_t> xd_, yd_, start_, step_;
};

bool ConstInts(const TensorArg* t, std::vector<int64_t>* v) {
  if (!t || !t->const_data || (t->dtype != TSR_DTYPE_I64 && t->dtype != TSR_DTYPE_I32)) return false;
  v->resize(t->numel);
  for (int64_t i = 0; i < t->numel; ++i) (*v)[i] = Label(t->dtype, t->const_data, i);
  return true;
}

Err CreateSliceGrad(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = CheckCount(a, 4, 6, 1, 1);
  if (!e.ok()) return e;
  e = CheckFloatSame(a, {0, 1});
  if (!e.ok()) return e;
  const std::vector<int64_t>& xd = a.inputs[1]->dims;
  const std::vector<int64_t>& yd = a.inputs[0]->dims;
  const int64_t r = static_cast<int64_t>(xd.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (!ConstInts(a.inputs[2], &starts) || !ConstInts(a.inputs[3], &ends) ||
      (a.has_input(4) && !ConstInts(a.inputs[4], &axes)) || (a.has_input(5) && !ConstInts(a.inputs[5], &steps)))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: starts/ends/axes/steps must be constant i32/i64 tensors", a.Describe().c_str());
  if (!a.has_input(4)) {
    axes.resize(starts.size());
    for (size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int64_t>(i);
  }
  if (!a.has_input(5)) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size() ||
      yd.size() != xd.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inconsistent Slice parameters", a.Describe().c_str());
  std::vector<int64_t> start(r, 0), step(r, 1), count(xd);
  std::vector<bool> seen(r, false);
  for (size_t k = 0; k < starts.size(); ++k) {
    int64_t ax = axes[k] < 0 ? axes[k] + r : axes[k];
    if (ax < 0 || ax >= r || seen[ax] || steps[k] == 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: bad axis %lld or zero step", a.Describe().c_str(),
                     static_cast<long long>(axes[k]));
    seen[ax] = true;
    const int64_t d = xd[ax], st = steps[k];
    const plugin::SliceAxis sa = plugin::ResolveSliceAxis(starts[k], ends[k], st, d);
    start[ax] = sa.first;
    step[ax] = st;
    count[ax] = sa.count;
  }
  if (count != yd)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dY's shape does not match the slice of X", a.Describe().c_str());
  *out = std::make_unique<SliceGradKernel>(a.inputs[0]->elem_size(), xd, yd, std::move(start), std::move(step));
  return Err::Ok();
}

}  // namespace

void RegisterTrainingKernels(KernelRegistry& r) {
  r.Add({"tessera", "SoftmaxCrossEntropy", &CreateSce, nullptr});
  r.Add({"tessera", "SoftmaxCrossEntropyGrad", &CreateSceGrad, nullptr});
  r.Add({"tessera", "MSE", &CreateMse<false>, nullptr});
  r.Add({"tessera", "MSEGrad", &CreateMse<true>, nullptr});
  r.Add({"tessera", "SGDUpdate", &CreateSgd, nullptr});
  r.Add({"tessera", "AdamWUpdate", &CreateAdamW, nullptr});
  r.Add({"tessera", "GlobalNormClip", &CreateClip, nullptr});
  r.Add({"tessera", "GeluGrad", &CreateGeluGrad, nullptr});
  r.Add({"tessera", "ReluGrad", &CreateReluGrad, nullptr});
  r.Add({"tessera", "SoftmaxGrad", &CreateSoftmaxGrad, nullptr});
  r.Add({"tessera", "LayerNormGrad", &CreateLayerNormGrad, nullptr});
  r.Add({"tessera", "BatchNormGrad", &CreateBatchNormGrad, nullptr});
  r.Add({"tessera", "MaxPoolGrad", &CreatePoolGrad<true>, nullptr});
  r.Add({"tessera", "AveragePoolGrad", &CreatePoolGrad<false>, nullptr});
  r.Add({"tessera", "ConvGradInput", &CreateConvGrad<false>, nullptr});
  r.Add({"tessera", "ConvGradWeight", &CreateConvGrad<true>, nullptr});
  r.Add({"tessera", "GatherGrad", &CreateGatherGrad, nullptr});
  r.Add({"tessera", "SliceGrad", &CreateSliceGrad, nullptr});
}

}  // namespace tessera::cpu
