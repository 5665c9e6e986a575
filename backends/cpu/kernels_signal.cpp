// CPU kernels: DFT/STFT, window functions (Hann/Hamming/Blackman),
// MelWeightMatrix.
//
// DFT and STFT compute in double: a radix-2 FFT when the transform length is a
// power of two, else a direct O(n^2) DFT with a precomputed twiddle table.
// Values are loaded to / stored from double buffers, so every float dtype
// (f32, f64, f16, bf16) takes the same path.
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/dtype_convert.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

bool ScalarInt(const TensorArg* t, int64_t* v) {
  if (!t || !t->const_data || t->numel != 1) return false;
  if (t->dtype == TSR_DTYPE_I64) *v = *static_cast<const int64_t*>(t->const_data);
  else if (t->dtype == TSR_DTYPE_I32) *v = *static_cast<const int32_t*>(t->const_data);
  else return false;
  return true;
}

bool ScalarDouble(const TensorArg* t, double* v) {
  if (!t || !t->const_data || t->numel != 1) return false;
  if (!IsNumericDT(t->dtype)) return false;
  LoadDoubles(t->dtype, t->const_data, 1, v);
  return true;
}

Err NeedConstScalar(const NodeArgs& a, int i, const char* what) {
  if (a.has_input(static_cast<size_t>(i)) && a.inputs[static_cast<size_t>(i)]->const_data)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %d (%s) must be a scalar of an integer type", a.Describe().c_str(),
                   i, what);
  return MakeErr(TSR_ERR_UNSUPPORTED, "%s: needs input %d (%s) to be a constant", a.Describe().c_str(), i, what);
}

Err CheckOutput(const NodeArgs& a, const std::vector<int64_t>& dims) {
  if (a.outputs.empty() || !a.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output 0 is required", a.Describe().c_str());
  if (a.outputs[0]->dims != dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dims do not match the computed shape", a.Describe().c_str());
  if (!IsNumericDT(a.outputs[0]->dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: output dtype %s is not supported", a.Describe().c_str(),
                   plugin::DTypeName(a.outputs[0]->dtype));
  return Err::Ok();
}

// A kernel whose output is fixed at compile time (windows, mel matrix).
class ConstOutputKernel : public Kernel {
 public:
  explicit ConstOutputKernel(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  Err Run(const void* const*, void* const* out) const override {
    if (!bytes_.empty()) std::memcpy(out[0], bytes_.data(), bytes_.size());
    return Err::Ok();
  }

 private:
  std::vector<uint8_t> bytes_;
};

std::unique_ptr<Kernel> MakeConst(int32_t dt, const std::vector<double>& v) {
  std::vector<uint8_t> b(v.size() * plugin::DTypeSize(dt));
  StoreDoubles(dt, v.data(), static_cast<int64_t>(v.size()), b.data());
  return std::make_unique<ConstOutputKernel>(std::move(b));
}

// ---- windows -------------------------------------------------------------------

Err CreateWindow(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  int64_t n = 0;
  if (!ScalarInt(a.has_input(0) ? a.inputs[0] : nullptr, &n)) return NeedConstScalar(a, 0, "size");
  if (n < 0) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: size %lld is negative", a.Describe().c_str(), static_cast<long long>(n));
  Err e = CheckOutput(a, {n});
  if (!e.ok()) return e;
  const bool periodic = a.attrs().Int("periodic", 1) != 0;
  const double N1 = static_cast<double>(periodic ? n : n - 1);
  const std::string op = a.node->op_type;
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double x = static_cast<double>(i);
    double w;
    if (op == "HannWindow") {
      double s = std::sin(M_PI * x / N1);
      w = s * s;
    } else if (op == "HammingWindow") {
      const double alpha = 25.0 / 46.0;
      w = alpha - (1 - alpha) * std::cos(2 * M_PI * x / N1);
    } else {  // BlackmanWindow
      w = 0.42 - 0.5 * std::cos(2 * M_PI * x / N1) + 0.08 * std::cos(4 * M_PI * x / N1);
    }
    v[static_cast<size_t>(i)] = w;
  }
  *out = MakeConst(a.outputs[0]->dtype, v);
  return Err::Ok();
}

// ---- MelWeightMatrix --------------------------------------------------------------

Err CreateMelWeightMatrix(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const std::string desc = a.Describe();
  int64_t mel = 0, dft = 0;
  double sr = 0, lo = 0, hi = 0;
  if (!ScalarInt(a.has_input(0) ? a.inputs[0] : nullptr, &mel)) return NeedConstScalar(a, 0, "num_mel_bins");
  if (!ScalarInt(a.has_input(1) ? a.inputs[1] : nullptr, &dft)) return NeedConstScalar(a, 1, "dft_length");
  if (!ScalarDouble(a.has_input(2) ? a.inputs[2] : nullptr, &sr)) return NeedConstScalar(a, 2, "sample_rate");
  if (!ScalarDouble(a.has_input(3) ? a.inputs[3] : nullptr, &lo)) return NeedConstScalar(a, 3, "lower_edge_hertz");
  if (!ScalarDouble(a.has_input(4) ? a.inputs[4] : nullptr, &hi)) return NeedConstScalar(a, 4, "upper_edge_hertz");
  if (mel <= 0 || dft <= 0 || sr <= 0 || lo < 0 || hi < lo)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                   "%s: needs num_mel_bins > 0, dft_length > 0, sample_rate > 0 and 0 <= lower_edge <= upper_edge",
                   desc.c_str());
  const int64_t bins = dft / 2 + 1;
  Err e = CheckOutput(a, {bins, mel});
  if (!e.ok()) return e;
  // Mel points are computed in the edges' precision (f32 for f32 inputs), as
  // the ONNX reference does; bin positions are floor((dft+1) * hz / sr).
  const bool f32 = a.inputs[3]->dtype == TSR_DTYPE_F32;
  auto to_mel = [&](double hz) {
    if (f32) return static_cast<double>(2595.0f * std::log10(1.0f + static_cast<float>(hz) / 700.0f));
    return 2595.0 * std::log10(1.0 + hz / 700.0);
  };
  const double lmel = to_mel(lo), hmel = to_mel(hi);
  const double step = f32 ? static_cast<double>(static_cast<float>(hmel - lmel) / static_cast<float>(mel + 2))
                          : (hmel - lmel) / static_cast<double>(mel + 2);
  std::vector<int64_t> fb(static_cast<size_t>(mel + 2));
  for (int64_t i = 0; i < mel + 2; ++i) {
    double m = static_cast<double>(i) * step + lmel;
    double hz = 700.0 * (std::pow(10.0, m / 2595.0) - 1.0);
    fb[static_cast<size_t>(i)] = static_cast<int64_t>(std::floor(static_cast<double>(dft + 1) * hz / sr));
  }
  std::vector<double> w(static_cast<size_t>(bins * mel), 0.0);
  auto at = [&](int64_t j, int64_t i) -> double* {
    if (j < 0 || j >= bins) return nullptr;
    return &w[static_cast<size_t>(j * mel + i)];
  };
  for (int64_t i = 0; i < mel; ++i) {
    const int64_t l = fb[static_cast<size_t>(i)], c = fb[static_cast<size_t>(i) + 1], r = fb[static_cast<size_t>(i) + 2];
    if (c - l == 0) {
      if (double* p = at(c, i)) *p = 1;
    } else {
      for (int64_t j = l; j <= c; ++j)
        if (double* p = at(j, i)) *p = static_cast<double>(j - l) / static_cast<double>(c - l);
    }
    if (r - c > 0)
      for (int64_t j = c; j < r; ++j)
        if (double* p = at(j, i)) *p = static_cast<double>(r - j) / static_cast<double>(r - c);
  }
  *out = MakeConst(a.outputs[0]->dtype, w);
  return Err::Ok();
}

// ---- DFT core ----------------------------------------------------------------------

using Cplx = std::complex<double>;

// Transform of one complex sequence of length n (input zero-padded or
// truncated to n by the caller); sign -1 forward, +1 inverse (unscaled).
class Transform {
 public:
  Transform(int64_t n, bool inverse) : n_(n), inverse_(inverse) {
    pow2_ = n > 0 && (n & (n - 1)) == 0;
    tw_.resize(static_cast<size_t>(n));
    const double sgn = inverse ? 1.0 : -1.0;
    for (int64_t k = 0; k < n; ++k) {
      double ang = sgn * 2.0 * M_PI * static_cast<double>(k) / static_cast<double>(n);
      tw_[static_cast<size_t>(k)] = Cplx(std::cos(ang), std::sin(ang));
    }
  }

  // In-place on `x` (length n); `tmp` is scratch of length n.
  void Apply(std::vector<Cplx>& x, std::vector<Cplx>& tmp) const {
    const int64_t n = n_;
    if (n <= 1) return;
    if (pow2_) {
      // Iterative radix-2 Cooley-Tukey with bit-reversal permutation.
      for (int64_t i = 1, j = 0; i < n; ++i) {
        int64_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) std::swap(x[static_cast<size_t>(i)], x[static_cast<size_t>(j)]);
      }
      for (int64_t len = 2; len <= n; len <<= 1) {
        const int64_t step = n / len;
        for (int64_t i = 0; i < n; i += len) {
          for (int64_t k = 0; k < len / 2; ++k) {
            Cplx w = tw_[static_cast<size_t>(k * step)];
            Cplx u = x[static_cast<size_t>(i + k)], v = x[static_cast<size_t>(i + k + len / 2)] * w;
            x[static_cast<size_t>(i + k)] = u + v;
            x[static_cast<size_t>(i + k + len / 2)] = u - v;
          }
        }
      }
      return;
    }
    tmp.assign(static_cast<size_t>(n), Cplx(0, 0));
    for (int64_t k = 0; k < n; ++k) {
      Cplx acc(0, 0);
      int64_t idx = 0;
      for (int64_t j = 0; j < n; ++j) {
        acc += x[static_cast<size_t>(j)] * tw_[static_cast<size_t>(idx)];
        idx += k;
        if (idx >= n) idx -= n;
      }
      tmp[static_cast<size_t>(k)] = acc;
    }
    x.swap(tmp);
  }
  bool inverse() const { return inverse_; }

 private:
  int64_t n_;
  bool inverse_;
  bool pow2_ = false;
  std::vector<Cplx> tw_;
};

// ---- DFT ---------------------------------------------------------------------------

class DftKernel : public Kernel {
 public:
  // Input viewed as [outer, len, inner, comps]; output [outer, out_len, inner, 2].
  DftKernel(int32_t dt, int64_t outer, int64_t len, int64_t inner, int64_t comps, int64_t n, int64_t out_len,
            bool inverse)
      : dt_(dt), outer_(outer), len_(len), inner_(inner), comps_(comps), n_(n), out_len_(out_len), tr_(n, inverse) {}

  Err Run(const void* const* in, void* const* out) const override {
    std::vector<double> x(static_cast<size_t>(outer_ * len_ * inner_ * comps_));
    std::vector<double> y(static_cast<size_t>(outer_ * out_len_ * inner_ * 2));
    LoadDoubles(dt_, in[0], static_cast<int64_t>(x.size()), x.data());
    const double scale = tr_.inverse() ? 1.0 / static_cast<double>(n_) : 1.0;
    ParallelFor(outer_ * inner_, 16, [&](int64_t b, int64_t e) {
      std::vector<Cplx> buf(static_cast<size_t>(n_)), tmp;
      for (int64_t t = b; t < e; ++t) {
        const int64_t o = t / inner_, i = t % inner_;
        const int64_t m = std::min(len_, n_);
        std::fill(buf.begin(), buf.end(), Cplx(0, 0));
        for (int64_t k = 0; k < m; ++k) {
          const double* p = &x[static_cast<size_t>(((o * len_ + k) * inner_ + i) * comps_)];
          buf[static_cast<size_t>(k)] = Cplx(p[0], comps_ == 2 ? p[1] : 0.0);
        }
        tr_.Apply(buf, tmp);
        for (int64_t k = 0; k < out_len_; ++k) {
          double* q = &y[static_cast<size_t>(((o * out_len_ + k) * inner_ + i) * 2)];
          q[0] = buf[static_cast<size_t>(k)].real() * scale;
          q[1] = buf[static_cast<size_t>(k)].imag() * scale;
        }
      }
    });
    StoreDoubles(dt_, y.data(), static_cast<int64_t>(y.size()), out[0]);
    return Err::Ok();
  }

 private:
  int32_t dt_;
  int64_t outer_, len_, inner_, comps_, n_, out_len_;
  Transform tr_;
};

Err CreateDft(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const std::string desc = a.Describe();
  if (!a.has_input(0)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input 0 is required", desc.c_str());
  const TensorArg& x = *a.inputs[0];
  if (!IsFloatDT(x.dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: input dtype %s is not a float type", desc.c_str(),
                   plugin::DTypeName(x.dtype));
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (rank < 2 || (x.dims.back() != 1 && x.dims.back() != 2))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input must have rank >= 2 with a last dim of 1 or 2", desc.c_str());
  plugin::NodeAttrs at = a.attrs();
  int64_t axis = 1;
  if (a.node->opset >= 20) {
    axis = -2;
    if (a.has_input(2) && !ScalarInt(a.inputs[2], &axis)) return NeedConstScalar(a, 2, "axis");
  } else {
    axis = at.Int("axis", 1);
  }
  if (axis < -rank || axis >= rank - 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for input rank %lld", desc.c_str(),
                   static_cast<long long>(axis), static_cast<long long>(rank));
  if (axis < 0) axis += rank;
  const int64_t len = x.dims[static_cast<size_t>(axis)];
  int64_t n = len;
  if (a.has_input(1)) {
    if (!ScalarInt(a.inputs[1], &n)) return NeedConstScalar(a, 1, "dft_length");
    if (n <= 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: dft_length %lld must be positive", desc.c_str(),
                     static_cast<long long>(n));
  }
  const bool inverse = at.Int("inverse", 0) != 0;
  const bool onesided = at.Int("onesided", 0) != 0;
  const int64_t out_len = onesided ? n / 2 + 1 : n;
  std::vector<int64_t> yd = x.dims;
  yd[static_cast<size_t>(axis)] = out_len;
  yd.back() = 2;
  Err e = CheckOutput(a, yd);
  if (!e.ok()) return e;
  if (a.outputs[0]->dtype != x.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output dtype differs from input", desc.c_str());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dims[static_cast<size_t>(d)];
  for (int64_t d = axis + 1; d < rank - 1; ++d) inner *= x.dims[static_cast<size_t>(d)];
  *out = std::make_unique<DftKernel>(x.dtype, outer, len, inner, x.dims.back(), n, out_len, inverse);
  return Err::Ok();
}

// ---- STFT ---------------------------------------------------------------------------

class StftKernel : public Kernel {
 public:
  StftKernel(int32_t dt, int32_t wdt, int64_t batch, int64_t len, int64_t comps, int64_t step, int64_t flen,
             int64_t frames, int64_t bins, bool has_window)
      : dt_(dt), wdt_(wdt), batch_(batch), len_(len), comps_(comps), step_(step), flen_(flen), frames_(frames),
        bins_(bins), has_window_(has_window), tr_(flen, false) {}

  Err Run(const void* const* in, void* const* out) const override {
    std::vector<double> x(static_cast<size_t>(batch_ * len_ * comps_)), w(static_cast<size_t>(flen_), 1.0);
    LoadDoubles(dt_, in[0], static_cast<int64_t>(x.size()), x.data());
    if (has_window_) LoadDoubles(wdt_, in[2], flen_, w.data());
    std::vector<double> y(static_cast<size_t>(batch_ * frames_ * bins_ * 2));
    ParallelFor(batch_ * frames_, 4, [&](int64_t b, int64_t e) {
      std::vector<Cplx> buf(static_cast<size_t>(flen_)), tmp;
      for (int64_t t = b; t < e; ++t) {
        const int64_t bi = t / frames_, f = t % frames_;
        for (int64_t k = 0; k < flen_; ++k) {
          const int64_t s = f * step_ + k;
          if (s < len_) {
            const double* p = &x[static_cast<size_t>((bi * len_ + s) * comps_)];
            buf[static_cast<size_t>(k)] = Cplx(p[0], comps_ == 2 ? p[1] : 0.0) * w[static_cast<size_t>(k)];
          } else {
            buf[static_cast<size_t>(k)] = Cplx(0, 0);
          }
        }
        tr_.Apply(buf, tmp);
        for (int64_t k = 0; k < bins_; ++k) {
          double* q = &y[static_cast<size_t>((t * bins_ + k) * 2)];
          q[0] = buf[static_cast<size_t>(k)].real();
          q[1] = buf[static_cast<size_t>(k)].imag();
        }
      }
    });
    StoreDoubles(dt_, y.data(), static_cast<int64_t>(y.size()), out[0]);
    return Err::Ok();
  }

 private:
  int32_t dt_, wdt_;
  int64_t batch_, len_, comps_, step_, flen_, frames_, bins_;
  bool has_window_;
  Transform tr_;
};

Err CreateStft(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  const std::string desc = a.Describe();
  if (!a.has_input(0)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: signal is required", desc.c_str());
  const TensorArg& x = *a.inputs[0];
  if (!IsFloatDT(x.dtype))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: signal dtype %s is not a float type", desc.c_str(),
                   plugin::DTypeName(x.dtype));
  if (x.dims.size() != 3 || (x.dims[2] != 1 && x.dims[2] != 2))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: signal must have shape [batch, length, 1 or 2]", desc.c_str());
  int64_t step = 0;
  if (!ScalarInt(a.has_input(1) ? a.inputs[1] : nullptr, &step)) return NeedConstScalar(a, 1, "frame_step");
  if (step <= 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: frame_step %lld must be positive", desc.c_str(),
                   static_cast<long long>(step));
  const bool has_window = a.has_input(2);
  int64_t flen = x.dims[1];
  if (has_window) {
    const TensorArg& w = *a.inputs[2];
    if (w.dims.size() != 1 || !IsFloatDT(w.dtype))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: window must be a 1-D float tensor", desc.c_str());
    flen = w.dims[0];
  }
  if (a.has_input(3)) {
    int64_t fl = 0;
    if (!ScalarInt(a.inputs[3], &fl)) return NeedConstScalar(a, 3, "frame_length");
    if (has_window && fl != flen)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: frame_length %lld differs from the window length %lld",
                     desc.c_str(), static_cast<long long>(fl), static_cast<long long>(flen));
    flen = fl;
  }
  if (flen <= 0 || flen > x.dims[1])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: frame_length %lld must be in [1, signal length %lld]", desc.c_str(),
                   static_cast<long long>(flen), static_cast<long long>(x.dims[1]));
  const bool onesided = a.attrs().Int("onesided", 1) != 0;
  if (onesided && x.dims[2] == 2)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: onesided output needs a real signal", desc.c_str());
  const int64_t frames = (x.dims[1] - flen) / step + 1;
  const int64_t bins = onesided ? flen / 2 + 1 : flen;
  Err e = CheckOutput(a, {x.dims[0], frames, bins, 2});
  if (!e.ok()) return e;
  *out = std::make_unique<StftKernel>(x.dtype, has_window ? a.inputs[2]->dtype : x.dtype, x.dims[0], x.dims[1],
                                      x.dims[2], step, flen, frames, bins, has_window);
  return Err::Ok();
}

std::string ClaimFloatSignal(const tsr_node_view& n, const tsr_graph_view& g) {
  if (n.num_inputs < 1 || n.inputs[0] < 0) return "missing input 0";
  int32_t dt = g.values[n.inputs[0]].dtype;
  if (!IsFloatDT(dt)) return std::string("CPU ") + n.op_type + " does not support dtype " + plugin::DTypeName(dt);
  return "";
}
std::string ClaimDft(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimFloatSignal(n, g);
  return r.empty() ? ClaimConstInputs(n, g, 1, 2) : r;
}
std::string ClaimStft(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimFloatSignal(n, g);
  if (!r.empty()) return r;
  r = ClaimConstInputs(n, g, 1, 1);
  return r.empty() ? ClaimConstInputs(n, g, 3, 3) : r;
}
// Windows and MelWeightMatrix: every input is a constant; the output dtype is numeric.
std::string ClaimGenerator(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimConstInputs(n, g, 0, n.num_inputs ? n.num_inputs - 1 : 0);
  if (!r.empty()) return r;
  if (n.num_outputs < 1 || n.outputs[0] < 0) return "";
  int32_t dt = g.values[n.outputs[0]].dtype;
  if (!IsNumericDT(dt)) return std::string("CPU ") + n.op_type + " does not support output dtype " + plugin::DTypeName(dt);
  return "";
}

}  // namespace

void RegisterSignalKernels(KernelRegistry& r) {
  r.Add({"", "HannWindow", &CreateWindow, &ClaimGenerator});
  r.Add({"", "HammingWindow", &CreateWindow, &ClaimGenerator});
  r.Add({"", "BlackmanWindow", &CreateWindow, &ClaimGenerator});
  r.Add({"", "MelWeightMatrix", &CreateMelWeightMatrix, &ClaimGenerator});
  r.Add({"", "DFT", &CreateDft, &ClaimDft});
  r.Add({"", "STFT", &CreateStft, &ClaimStft});
}

}  // namespace tessera::cpu
