// CPU kernels: RNN/GRU/LSTM (f32), own loops.
//
// Layouts and gate orders are ONNX's (see graph/ops_rnn.cpp): W [dirs, G*H, I],
// R [dirs, G*H, H], B [dirs, 2*G*H] (Wb then Rb), gates RNN: i; GRU: z, r, h;
// LSTM: i, o, f, c; peepholes P [dirs, 3*H] (i, o, f). Each batch row is run
// over its own sequence length (sequence_lens, else the full length); Y is
// zero past a row's length and Y_h / Y_c hold the state after the row's last
// step (for the reverse direction: after time 0). Run() keeps all state in
// locals, so it is reentrant.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

enum class Act { kRelu, kTanh, kSigmoid, kAffine, kLeakyRelu, kThresholdedRelu, kScaledTanh, kHardSigmoid, kElu,
                 kSoftsign, kSoftplus };

struct Activation {
  Act kind = Act::kTanh;
  float alpha = 0.f, beta = 0.f;
  float operator()(float x) const {
    switch (kind) {
      case Act::kRelu: return x > 0.f ? x : 0.f;
      case Act::kTanh: return std::tanh(x);
      case Act::kSigmoid: return 1.f / (1.f + std::exp(-x));
      case Act::kAffine: return alpha * x + beta;
      case Act::kLeakyRelu: return x >= 0.f ? x : alpha * x;
      case Act::kThresholdedRelu: return x > alpha ? x : 0.f;
      case Act::kScaledTanh: return alpha * std::tanh(beta * x);
      case Act::kHardSigmoid: return std::max(0.f, std::min(1.f, alpha * x + beta));
      case Act::kElu: return x >= 0.f ? x : alpha * (std::exp(x) - 1.f);
      case Act::kSoftsign: return x / (1.f + std::fabs(x));
      case Act::kSoftplus: return std::log1p(std::exp(x));
    }
    return x;
  }
};

// Parses one activation name; `uses_alpha`/`uses_beta` say whether it takes
// the next entries of activation_alpha / activation_beta.
bool ParseAct(const std::string& name, Activation* a, bool* uses_alpha, bool* uses_beta, float* def_alpha,
              float* def_beta) {
  std::string n;
  for (char c : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  *uses_alpha = *uses_beta = false;
  *def_alpha = *def_beta = 0.f;
  if (n == "relu") a->kind = Act::kRelu;
  else if (n == "tanh") a->kind = Act::kTanh;
  else if (n == "sigmoid") a->kind = Act::kSigmoid;
  else if (n == "affine") { a->kind = Act::kAffine; *uses_alpha = *uses_beta = true; *def_alpha = 1.f; }
  else if (n == "leakyrelu") { a->kind = Act::kLeakyRelu; *uses_alpha = true; *def_alpha = 0.01f; }
  else if (n == "thresholdedrelu") { a->kind = Act::kThresholdedRelu; *uses_alpha = true; *def_alpha = 1.f; }
  else if (n == "scaledtanh") { a->kind = Act::kScaledTanh; *uses_alpha = *uses_beta = true; *def_alpha = *def_beta = 1.f; }
  else if (n == "hardsigmoid") { a->kind = Act::kHardSigmoid; *uses_alpha = *uses_beta = true; *def_alpha = 0.2f; *def_beta = 0.5f; }
  else if (n == "elu") { a->kind = Act::kElu; *uses_alpha = true; *def_alpha = 1.f; }
  else if (n == "softsign") a->kind = Act::kSoftsign;
  else if (n == "softplus") a->kind = Act::kSoftplus;
  else return false;
  return true;
}

enum class Cell { kRnn, kGru, kLstm };

struct RnnParams {
  Cell cell = Cell::kRnn;
  int64_t seq = 0, batch = 0, input = 0, hidden = 0, dirs = 1, gates = 1;
  bool reverse_only = false;  // direction == "reverse"
  bool layout1 = false;
  bool linear_before_reset = false;
  bool input_forget = false;
  float clip = 0.f;  // 0 = no clip
  std::vector<Activation> acts;  // per direction: f (RNN), f g (GRU), f g h (LSTM)
};

class RnnKernel final : public Kernel {
 public:
  explicit RnnKernel(RnnParams p) : p_(std::move(p)) {}

  Err Run(const void* const* in, void* const* out) const override {
    const RnnParams& p = p_;
    const float* X = static_cast<const float*>(in[0]);
    const float* W = static_cast<const float*>(in[1]);
    const float* R = static_cast<const float*>(in[2]);
    const float* B = has_[3] ? static_cast<const float*>(in[3]) : nullptr;
    const int32_t* lens = has_[4] ? static_cast<const int32_t*>(in[4]) : nullptr;
    const float* H0 = has_[5] ? static_cast<const float*>(in[5]) : nullptr;
    const float* C0 = has_[6] ? static_cast<const float*>(in[6]) : nullptr;
    const float* P = has_[7] ? static_cast<const float*>(in[7]) : nullptr;
    float* Y = out_[0] ? static_cast<float*>(out[0]) : nullptr;
    float* YH = out_[1] ? static_cast<float*>(out[1]) : nullptr;
    float* YC = out_[2] ? static_cast<float*>(out[2]) : nullptr;
    const int64_t S = p.seq, N = p.batch, I = p.input, H = p.hidden, D = p.dirs, G = p.gates;
    if (lens) {
      for (int64_t b = 0; b < N; ++b)
        if (lens[b] < 0 || lens[b] > S)
          return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: sequence_lens[%lld] = %d is outside [0, %lld]", what_.c_str(),
                         static_cast<long long>(b), lens[b], static_cast<long long>(S));
    }
    if (Y) std::memset(Y, 0, sizeof(float) * static_cast<size_t>(S * D * N * H));
    // Index helpers for the two layouts.
    auto xrow = [&](int64_t t, int64_t b) { return X + (p.layout1 ? (b * S + t) : (t * N + b)) * I; };
    auto yrow = [&](int64_t t, int64_t d, int64_t b) {
      return Y + (p.layout1 ? ((b * S + t) * D + d) : ((t * D + d) * N + b)) * H;
    };
    auto strow = [&](int64_t d, int64_t b) { return (p.layout1 ? (b * D + d) : (d * N + b)) * H; };
    const size_t nacts = p.cell == Cell::kRnn ? 1 : p.cell == Cell::kGru ? 2 : 3;
    ParallelFor(D * N, 1, [&](int64_t lo, int64_t hi) {
      std::vector<float> h(static_cast<size_t>(H)), c(static_cast<size_t>(H)), g(static_cast<size_t>(G * H)),
          rh(static_cast<size_t>(G * H)), tmp(static_cast<size_t>(H)), rv(static_cast<size_t>(H));
      for (int64_t job = lo; job < hi; ++job) {
        const int64_t d = job / N, b = job % N;
        const bool reverse = p.reverse_only || d == 1;
        const float* Wd = W + d * G * H * I;
        const float* Rd = R + d * G * H * H;
        const float* Wb = B ? B + d * 2 * G * H : nullptr;
        const float* Rb = B ? Wb + G * H : nullptr;
        const float* Pd = P ? P + d * 3 * H : nullptr;
        const Activation* act = &p.acts[static_cast<size_t>(d) * nacts];
        if (H0) std::memcpy(h.data(), H0 + strow(d, b), sizeof(float) * static_cast<size_t>(H));
        else std::fill(h.begin(), h.end(), 0.f);
        if (C0) std::memcpy(c.data(), C0 + strow(d, b), sizeof(float) * static_cast<size_t>(H));
        else std::fill(c.begin(), c.end(), 0.f);
        const int64_t len = lens ? lens[b] : S;
        for (int64_t step = 0; step < len; ++step) {
          const int64_t t = reverse ? len - 1 - step : step;
          const float* x = xrow(t, b);
          // g = W x + Wb; rh = R h + Rb.
          for (int64_t r = 0; r < G * H; ++r) {
            const float* wr = Wd + r * I;
            float s = Wb ? Wb[r] : 0.f;
            for (int64_t k = 0; k < I; ++k) s += wr[k] * x[k];
            g[static_cast<size_t>(r)] = s;
            const float* rr = Rd + r * H;
            float q = Rb ? Rb[r] : 0.f;
            for (int64_t k = 0; k < H; ++k) q += rr[k] * h[static_cast<size_t>(k)];
            rh[static_cast<size_t>(r)] = q;
          }
          auto clip = [&](float v) { return p.clip > 0.f ? std::max(-p.clip, std::min(p.clip, v)) : v; };
          if (p.cell == Cell::kRnn) {
            for (int64_t j = 0; j < H; ++j) h[static_cast<size_t>(j)] = act[0](clip(g[j] + rh[j]));
          } else if (p.cell == Cell::kGru) {
            // gates z, r, h; rv = r (needed whole before h~ when !linear_before_reset)
            for (int64_t k = 0; k < H; ++k) rv[static_cast<size_t>(k)] = act[0](clip(g[H + k] + rh[H + k]));
            for (int64_t j = 0; j < H; ++j) {
              float z = act[0](clip(g[j] + rh[j]));
              float hh;
              if (p.linear_before_reset) {
                hh = act[1](clip(g[2 * H + j] + rv[static_cast<size_t>(j)] * rh[2 * H + j]));
              } else {
                const float* rr = Rd + (2 * H + j) * H;
                float q = Rb ? Rb[2 * H + j] : 0.f;
                for (int64_t k = 0; k < H; ++k) q += rr[k] * rv[static_cast<size_t>(k)] * h[static_cast<size_t>(k)];
                hh = act[1](clip(g[2 * H + j] + q));
              }
              tmp[static_cast<size_t>(j)] = (1.f - z) * hh + z * h[static_cast<size_t>(j)];
            }
            h = tmp;
          } else {
            // gates i, o, f, c
            for (int64_t j = 0; j < H; ++j) {
              const size_t js = static_cast<size_t>(j);
              float ig = g[j] + rh[j] + (Pd ? Pd[j] * c[js] : 0.f);
              float fg = g[2 * H + j] + rh[2 * H + j] + (Pd ? Pd[2 * H + j] * c[js] : 0.f);
              float i_ = act[0](clip(ig));
              float f_ = p.input_forget ? 1.f - i_ : act[0](clip(fg));
              float cc = act[1](clip(g[3 * H + j] + rh[3 * H + j]));
              float cn = f_ * c[js] + i_ * cc;
              float og = g[H + j] + rh[H + j] + (Pd ? Pd[H + j] * cn : 0.f);
              float o_ = act[0](clip(og));
              c[js] = cn;
              tmp[js] = o_ * act[2](cn);
            }
            h = tmp;
          }
          if (Y) std::memcpy(yrow(t, d, b), h.data(), sizeof(float) * static_cast<size_t>(H));
        }
        if (YH) std::memcpy(YH + strow(d, b), h.data(), sizeof(float) * static_cast<size_t>(H));
        if (YC) std::memcpy(YC + strow(d, b), c.data(), sizeof(float) * static_cast<size_t>(H));
      }
    });
    return Err::Ok();
  }

  bool has_[8] = {};
  bool out_[3] = {};
  std::string what_;

 private:
  RnnParams p_;
};

Err CheckShape(const NodeArgs& a, const TensorArg* t, const char* name, const std::vector<int64_t>& want) {
  if (t && t->dims != want) {
    std::string got = "[", exp = "[";
    for (size_t i = 0; i < t->dims.size(); ++i) got += (i ? "," : "") + std::to_string(t->dims[i]);
    for (size_t i = 0; i < want.size(); ++i) exp += (i ? "," : "") + std::to_string(want[i]);
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s has shape %s], expected %s]", a.Describe().c_str(), name,
                   got.c_str(), exp.c_str());
  }
  return Err::Ok();
}

Err CreateRecurrent(const NodeArgs& a, std::unique_ptr<Kernel>* out, Cell cell) {
  const std::string what = a.Describe();
  const char* w_ = what.c_str();
  for (size_t i = 0; i < 3; ++i)
    if (!a.has_input(i))
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: required input %zu (X, W, R) is missing", w_, i);
  static const char* kNames[] = {"X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"};
  const size_t max_in = cell == Cell::kLstm ? 8 : 6;
  if (a.inputs.size() > max_in)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: has %zu inputs, at most %zu allowed", w_, a.inputs.size(), max_in);
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    if (!a.has_input(i)) continue;
    int32_t want = i == 4 ? TSR_DTYPE_I32 : TSR_DTYPE_F32;
    if (a.inputs[i]->dtype != want)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s has dtype %s; the CPU backend supports %s here", w_, kNames[i],
                     plugin::DTypeName(a.inputs[i]->dtype), plugin::DTypeName(want));
  }
  plugin::NodeAttrs at = a.attrs();
  RnnParams p;
  p.cell = cell;
  p.gates = cell == Cell::kRnn ? 1 : cell == Cell::kGru ? 3 : 4;
  const std::string dir = at.String("direction", "forward");
  if (dir == "forward") p.dirs = 1;
  else if (dir == "reverse") p.dirs = 1, p.reverse_only = true;
  else if (dir == "bidirectional") p.dirs = 2;
  else return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: unknown direction '%s'", w_, dir.c_str());
  int64_t layout = at.Int("layout", 0);
  if (layout != 0 && layout != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: layout must be 0 or 1, got %lld", w_, static_cast<long long>(layout));
  p.layout1 = layout == 1;
  p.linear_before_reset = at.Int("linear_before_reset", 0) != 0;
  p.input_forget = at.Int("input_forget", 0) != 0;
  if (at.Has("clip")) {
    p.clip = at.Float("clip", 0.f);
    if (!(p.clip > 0.f)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: clip must be > 0, got %g", w_, p.clip);
  }
  const TensorArg& X = *a.inputs[0];
  const TensorArg& W = *a.inputs[1];
  if (X.dims.size() != 3)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: X must have rank 3, got rank %zu", w_, X.dims.size());
  if (W.dims.size() != 3)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: W must have rank 3, got rank %zu", w_, W.dims.size());
  p.seq = X.dims[p.layout1 ? 1 : 0];
  p.batch = X.dims[p.layout1 ? 0 : 1];
  p.input = X.dims[2];
  p.hidden = at.Int("hidden_size", W.dims[1] / p.gates);
  if (p.hidden < 1) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: hidden_size must be >= 1", w_);
  const int64_t D = p.dirs, H = p.hidden, G = p.gates, N = p.batch;
  Err e = CheckShape(a, &W, "W", {D, G * H, p.input});
  if (e.ok()) e = CheckShape(a, a.inputs[2], "R", {D, G * H, H});
  if (e.ok()) e = CheckShape(a, a.has_input(3) ? a.inputs[3] : nullptr, "B", {D, 2 * G * H});
  if (e.ok()) e = CheckShape(a, a.has_input(4) ? a.inputs[4] : nullptr, "sequence_lens", {N});
  std::vector<int64_t> st = p.layout1 ? std::vector<int64_t>{N, D, H} : std::vector<int64_t>{D, N, H};
  if (e.ok()) e = CheckShape(a, a.has_input(5) ? a.inputs[5] : nullptr, "initial_h", st);
  if (e.ok()) e = CheckShape(a, a.has_input(6) ? a.inputs[6] : nullptr, "initial_c", st);
  if (e.ok()) e = CheckShape(a, a.has_input(7) ? a.inputs[7] : nullptr, "P", {D, 3 * H});
  std::vector<int64_t> ydims = p.layout1 ? std::vector<int64_t>{N, p.seq, D, H} : std::vector<int64_t>{p.seq, D, N, H};
  const size_t max_out = cell == Cell::kLstm ? 3 : 2;
  if (a.outputs.size() > max_out)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: has %zu outputs, at most %zu allowed", w_, a.outputs.size(), max_out);
  for (size_t i = 0; e.ok() && i < a.outputs.size(); ++i) {
    if (!a.outputs[i]) continue;
    if (a.outputs[i]->dtype != TSR_DTYPE_F32)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: output %zu has dtype %s; only f32 is supported", w_, i,
                     plugin::DTypeName(a.outputs[i]->dtype));
    e = CheckShape(a, a.outputs[i], i == 0 ? "output Y" : i == 1 ? "output Y_h" : "output Y_c", i == 0 ? ydims : st);
  }
  if (!e.ok()) return e;
  // Activations: defaults per cell, one list per direction.
  const size_t nacts = cell == Cell::kRnn ? 1 : cell == Cell::kGru ? 2 : 3;
  std::vector<std::string> names;
  if (const tsr_attr_view* av = at.Find("activations"); av && av->type == TSR_ATTR_STRINGS) {
    for (uint64_t i = 0; i < av->count; ++i) names.emplace_back(av->strings[i]);
  }
  if (names.empty()) {
    std::vector<std::string> def = cell == Cell::kRnn   ? std::vector<std::string>{"Tanh"}
                                   : cell == Cell::kGru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                        : std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"};
    for (int64_t d = 0; d < D; ++d) names.insert(names.end(), def.begin(), def.end());
  }
  if (names.size() != nacts * static_cast<size_t>(D))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: activations has %zu entries, expected %zu (%zu per direction)", w_,
                   names.size(), nacts * static_cast<size_t>(D), nacts);
  std::vector<float> alphas = at.Floats("activation_alpha"), betas = at.Floats("activation_beta");
  size_t ai = 0, bi = 0;
  for (const std::string& n : names) {
    Activation act;
    bool ua = false, ub = false;
    float da = 0.f, db = 0.f;
    if (!ParseAct(n, &act, &ua, &ub, &da, &db))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: activation '%s' is not supported", w_, n.c_str());
    act.alpha = da;
    act.beta = db;
    if (ua && ai < alphas.size()) act.alpha = alphas[ai++];
    if (ub && bi < betas.size()) act.beta = betas[bi++];
    p.acts.push_back(act);
  }
  auto k = std::make_unique<RnnKernel>(std::move(p));
  for (size_t i = 0; i < 8; ++i) k->has_[i] = a.has_input(i);
  for (size_t i = 0; i < 3; ++i) k->out_[i] = i < a.outputs.size() && a.outputs[i] != nullptr;
  k->what_ = what;
  *out = std::move(k);
  return Err::Ok();
}

Err CreateRnn(const NodeArgs& a, std::unique_ptr<Kernel>* out) { return CreateRecurrent(a, out, Cell::kRnn); }
Err CreateGru(const NodeArgs& a, std::unique_ptr<Kernel>* out) { return CreateRecurrent(a, out, Cell::kGru); }
Err CreateLstm(const NodeArgs& a, std::unique_ptr<Kernel>* out) { return CreateRecurrent(a, out, Cell::kLstm); }

std::string ClaimRecurrent(const tsr_node_view& node, const tsr_graph_view& g) {
  for (uint32_t i = 0; i < node.num_inputs; ++i) {
    int32_t v = node.inputs[i];
    if (v < 0 || static_cast<uint32_t>(v) >= g.num_values) continue;
    int32_t want = i == 4 ? TSR_DTYPE_I32 : TSR_DTYPE_F32;
    if (g.values[v].dtype != want)
      return std::string(node.op_type) + " on the CPU backend supports " + plugin::DTypeName(want) + " for input " +
             std::to_string(i) + ", got " + plugin::DTypeName(g.values[v].dtype);
  }
  return "";
}

}  // namespace

void RegisterRnnKernels(KernelRegistry& r) {
  r.Add({"", "RNN", &CreateRnn, &ClaimRecurrent});
  r.Add({"", "GRU", &CreateGru, &ClaimRecurrent});
  r.Add({"", "LSTM", &CreateLstm, &ClaimRecurrent});
}

}  // namespace tessera::cpu
