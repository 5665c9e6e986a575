// tessera.FusedAttention on the CPU (f32):
//   Y = softmax(Q K^T * scale + mask [, causal]) V
// Q [B,H,Sq,D], K [B,H,Sk,D], V [B,H,Sk,Dv], optional mask broadcastable to
// [B,H,Sq,Sk]: bool (true = keep, false = the score becomes -inf) or f32
// (added to the scaled scores). Attributes: scale (float, default 1/sqrt(D)),
// causal (int, 0/1): query row i sees keys j <= i (top-left aligned, like
// torch's tril(ones(Sq, Sk))). A row whose keys are all masked gives NaN, as
// the unfused Softmax does.
//
// Work is split over (batch, head, block of kQueryBlock query rows); a task
// computes its block of scores with one oneDNN sgemm (Q_blk K^T, JIT-dispatched
// to the machine's vector ISA; single-threaded inside the parallel region),
// masks and softmaxes the rows in place, and multiplies by V with a second
// sgemm. Causal blocks only compute keys up to their last row. At most one
// block of scores (thread-local scratch) lives per thread; nothing mutable is
// shared, so Run is reentrant.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <oneapi/dnnl/dnnl.h>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/bf16_adapter.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/simd.h"

namespace tessera::cpu {
namespace {

constexpr int64_t kQueryBlock = 64;  // query rows per parallel task

struct AttnParams {
  int64_t B = 0, H = 0, Sq = 0, Sk = 0, D = 0, Dv = 0;
  float scale = 1.f;
  bool causal = false;
  int32_t mask_dtype = TSR_DTYPE_UNDEFINED;  // undefined = no mask
  int64_t mstride[4] = {0, 0, 0, 0};          // element strides of the mask, 0 where broadcast
};

// Adds the mask row / applies causal to the scores of query row i (n keys visible).
inline void MaskRow(const AttnParams& p, const void* mask, int64_t b, int64_t h, int64_t i, float* sp, int64_t n) {
  const float ninf = -std::numeric_limits<float>::infinity();
  if (p.mask_dtype == TSR_DTYPE_F32) {
    const float* mr = static_cast<const float*>(mask) + b * p.mstride[0] + h * p.mstride[1] + i * p.mstride[2];
    if (p.mstride[3] == 1) {
      for (int64_t j = 0; j < n; ++j) sp[j] += mr[j];
    } else {
      const float m0 = mr[0];
      for (int64_t j = 0; j < n; ++j) sp[j] += m0;
    }
  } else if (p.mask_dtype == TSR_DTYPE_BOOL) {
    const uint8_t* mr = static_cast<const uint8_t*>(mask) + b * p.mstride[0] + h * p.mstride[1] + i * p.mstride[2];
    const int64_t js = p.mstride[3];
    for (int64_t j = 0; j < n; ++j) sp[j] = mr[j * js] ? sp[j] : ninf;
  }
}

// One (batch, head, query block) task. The two products are oneDNN sgemm
// calls on the block (single-threaded inside the parallel region);
// `s` holds the block's scores (rows x nk), then its probabilities.
bool AttendBlock(const AttnParams& p, const float* q, const float* k, const float* v, const void* mask, float* y,
                 int64_t b, int64_t h, int64_t i0, int64_t i1, std::vector<float>& s) {
  const int64_t Sk = p.Sk, D = p.D, Dv = p.Dv, rows = i1 - i0;
  const int64_t bh = b * p.H + h;
  const float* qb = q + (bh * p.Sq + i0) * D;
  const float* kb = k + bh * Sk * D;
  const float* vb = v + bh * Sk * Dv;
  float* yb = y + (bh * p.Sq + i0) * Dv;
  // Keys any row of this block can see (>= 1: Run handles Sk == 0).
  const int64_t nk = p.causal ? std::min(Sk, i1) : Sk;
  s.resize(static_cast<size_t>(rows * nk));
  float* sp = s.data();
  // S = scale * Q_blk K^T   [rows, nk]
  const int64_t ld = std::max<int64_t>(D, 1);  // D == 0 is legal (all scores 0); sgemm wants ld >= 1
  if (dnnl_sgemm('N', 'T', rows, nk, D, p.scale, qb, ld, kb, ld, 0.f, sp, nk) != dnnl_success) return false;
  float inv[kQueryBlock];
  const simd::RowFns& f = simd::Fns();  // run-time dispatched row kernels (AVX-512 or portable)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r;
    float* sr = sp + r * nk;
    const int64_t n = p.causal ? std::min(Sk, i + 1) : nk;  // keys this row sees
    MaskRow(p, mask, b, h, i, sr, n);
    const float m = f.max(sr, n);
    const float shift = std::isinf(m) ? 0.f : m;  // all -inf: sum is 0 and the row becomes NaN
    inv[r] = 1.f / f.exp_shift_inplace(sr, n, shift);
    std::fill(sr + n, sr + nk, 0.f);  // causal: keys after i get probability 0
  }
  // Y_blk = P V   [rows, Dv], then the softmax normalisation per row.
  if (dnnl_sgemm('N', 'N', rows, Dv, nk, 1.f, sp, nk, vb, Dv, 0.f, yb, Dv) != dnnl_success) return false;
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = yb + r * Dv;
    const float f = inv[r];
    for (int64_t c = 0; c < Dv; ++c) yr[c] *= f;
  }
  return true;
}

class FusedAttentionKernel final : public Kernel {
 public:
  FusedAttentionKernel(AttnParams p, std::string describe) : p_(p), describe_(std::move(describe)) {}
  Err Run(const void* const* in, void* const* out) const override {
    const AttnParams& p = p_;
    const float* q = static_cast<const float*>(in[0]);
    const float* k = static_cast<const float*>(in[1]);
    const float* v = static_cast<const float*>(in[2]);
    const void* mask = p.mask_dtype != TSR_DTYPE_UNDEFINED ? in[3] : nullptr;
    float* y = static_cast<float*>(out[0]);
    if (p.Sq == 0 || p.Dv == 0 || p.B * p.H == 0) return Err::Ok();
    if (p.Sk == 0) {  // softmax over no keys: NaN, like the unfused graph
      std::fill(y, y + p.B * p.H * p.Sq * p.Dv, std::numeric_limits<float>::quiet_NaN());
      return Err::Ok();
    }
    const int64_t blocks = (p.Sq + kQueryBlock - 1) / kQueryBlock;
    const int64_t tasks = p.B * p.H * blocks;
    std::atomic<bool> failed{false};
    ParallelFor(tasks, 1, [&](int64_t t0, int64_t t1) {
      thread_local std::vector<float> s;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t blk = t % blocks, bh = t / blocks;
        const int64_t i0 = blk * kQueryBlock, i1 = std::min(p.Sq, i0 + kQueryBlock);
        if (!AttendBlock(p, q, k, v, mask, y, bh / p.H, bh % p.H, i0, i1, s)) failed = true;
      }
    });
    if (failed) return MakeErr(TSR_ERR_INTERNAL, "%s: oneDNN sgemm failed", describe_.c_str());
    return Err::Ok();
  }

 private:
  AttnParams p_;
  std::string describe_;  // for error messages
};

Err CreateFusedAttention(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  // bf16 tensors (precision policy): the f32 kernel (softmax in f32) through the adapter.
  if (Bf16Adapter::Needed(args)) return Bf16Adapter::Create(args, &CreateFusedAttention, out);
  const std::string w = args.Describe();
  const size_t nin = args.inputs.size();
  if (nin < 3 || nin > 4 || !args.has_input(0) || !args.has_input(1) || !args.has_input(2))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected inputs Q, K, V and an optional mask, got %zu inputs",
                   w.c_str(), nin);
  if (args.outputs.size() != 1 || !args.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected exactly one output", w.c_str());
  static const char* kNames[] = {"Q", "K", "V"};
  for (size_t i = 0; i < 3; ++i) {
    const TensorArg& t = *args.inputs[i];
    if (t.dtype != TSR_DTYPE_F32)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s has dtype %s; the CPU kernel supports f32 only", w.c_str(),
                     kNames[i], plugin::DTypeName(t.dtype));
    if (t.dims.size() != 4)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s must have rank 4 ([batch, heads, seq, head_dim]), got %s",
                     w.c_str(), kNames[i], DimsToString(t.dims).c_str());
  }
  const auto& qd = args.inputs[0]->dims;
  const auto& kd = args.inputs[1]->dims;
  const auto& vd = args.inputs[2]->dims;
  if (qd[0] != kd[0] || qd[0] != vd[0] || qd[1] != kd[1] || qd[1] != vd[1])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: batch/head dims of Q %s, K %s and V %s differ", w.c_str(),
                   DimsToString(qd).c_str(), DimsToString(kd).c_str(), DimsToString(vd).c_str());
  if (qd[3] != kd[3])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Q and K head dims differ (Q %s, K %s)", w.c_str(),
                   DimsToString(qd).c_str(), DimsToString(kd).c_str());
  if (kd[2] != vd[2])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: K and V sequence lengths differ (K %s, V %s)", w.c_str(),
                   DimsToString(kd).c_str(), DimsToString(vd).c_str());
  AttnParams p;
  p.B = qd[0];
  p.H = qd[1];
  p.Sq = qd[2];
  p.D = qd[3];
  p.Sk = kd[2];
  p.Dv = vd[3];
  const TensorArg& y = *args.outputs[0];
  const std::vector<int64_t> want{p.B, p.H, p.Sq, p.Dv};
  if (y.dtype != TSR_DTYPE_F32 || y.dims != want)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output is %s %s, expected f32 %s", w.c_str(),
                   plugin::DTypeName(y.dtype), DimsToString(y.dims).c_str(), DimsToString(want).c_str());

  plugin::NodeAttrs attrs = args.attrs();
  if (const tsr_attr_view* a = attrs.Find("scale"); a && a->type != TSR_ATTR_FLOAT)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'scale' must be a float", w.c_str());
  p.scale = attrs.Float("scale", p.D > 0 ? 1.f / std::sqrt(static_cast<float>(p.D)) : 1.f);
  if (!std::isfinite(p.scale))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'scale' must be finite, got %g", w.c_str(),
                   static_cast<double>(p.scale));
  const int64_t causal = attrs.Int("causal", 0);
  if (causal != 0 && causal != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'causal' must be 0 or 1, got %lld", w.c_str(),
                   static_cast<long long>(causal));
  p.causal = causal == 1;

  if (args.has_input(3)) {
    const TensorArg& m = *args.inputs[3];
    if (m.dtype != TSR_DTYPE_F32 && m.dtype != TSR_DTYPE_BOOL)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: mask has dtype %s; expected bool (keep where true) or f32 (additive)",
                     w.c_str(), plugin::DTypeName(m.dtype));
    const std::vector<int64_t> scores{p.B, p.H, p.Sq, p.Sk};
    if (m.dims.size() > 4)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: mask %s does not broadcast to the scores %s", w.c_str(),
                     DimsToString(m.dims).c_str(), DimsToString(scores).c_str());
    const size_t shift = 4 - m.dims.size();
    int64_t stride = 1;
    for (int d = 3; d >= 0; --d) {
      if (static_cast<size_t>(d) < shift) {
        p.mstride[d] = 0;
        continue;
      }
      const int64_t md = m.dims[static_cast<size_t>(d) - shift];
      if (md != 1 && md != scores[static_cast<size_t>(d)])
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: mask %s does not broadcast to the scores %s", w.c_str(),
                       DimsToString(m.dims).c_str(), DimsToString(scores).c_str());
      p.mstride[d] = md == 1 ? 0 : stride;
      stride *= md;
    }
    p.mask_dtype = m.dtype;
  }
  *out = std::make_unique<FusedAttentionKernel>(p, w);
  return Err::Ok();
}

std::string ClaimFusedAttention(const tsr_node_view& node, const tsr_graph_view& g) {
  for (uint32_t i = 0; i < 3; ++i) {
    int32_t dt = ClaimInputDType(node, g, i);
    if (dt != TSR_DTYPE_F32 && dt != TSR_DTYPE_BF16)
      return std::string("FusedAttention input ") + std::to_string(i) + " has dtype " + plugin::DTypeName(dt) +
             "; the CPU kernel supports f32 and bf16 only";
  }
  int32_t mt = ClaimInputDType(node, g, 3);
  if (mt != TSR_DTYPE_UNDEFINED && mt != TSR_DTYPE_F32 && mt != TSR_DTYPE_BF16 && mt != TSR_DTYPE_BOOL)
    return std::string("FusedAttention mask has dtype ") + plugin::DTypeName(mt) + "; expected bool, f32 or bf16";
  return "";
}

}  // namespace

void RegisterAttentionKernels(KernelRegistry& r) {
  r.Add({"tessera", "FusedAttention", &CreateFusedAttention, &ClaimFusedAttention});
}

}  // namespace tessera::cpu
