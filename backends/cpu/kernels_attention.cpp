// tessera.FusedAttention on the CPU (f32, or bf16 storage with f32 math):
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
//
// bf16 (Q, K, V and Y all bf16; the mask may be bool, f32 or bf16): a task
// is one (batch, head) (or, with fewer heads than twice the threads, a run of
// its query blocks); it widens the keys and values its rows can see to f32
// once, then each query block is widened, attended exactly as above (scores,
// softmax and accumulation in f32) and rounded back to bf16 (nearest even),
// so results equal the f32 kernel's on the same values rounded once. Where
// the CPU has avx512_bf16 the two products use vdpbf16ps on packed bf16 pairs
// instead (f32 scores, softmax and sums; the probabilities are rounded to bf16
// for P V); TESSERA_CPU_ATTN_BF16_DOT=0 keeps the widening path. Other mixes that involve bf16
// run the f32 kernel through Bf16Adapter.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/bf16_adapter.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/simd.h"
#include "backends/cpu/simd_convert.h"

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
  if (p.mask_dtype == TSR_DTYPE_BF16) {
    const uint16_t* mr = static_cast<const uint16_t*>(mask) + b * p.mstride[0] + h * p.mstride[1] + i * p.mstride[2];
    const int64_t js = p.mstride[3];
    for (int64_t j = 0; j < n; ++j) sp[j] += plugin::BF16BitsToFloat(mr[j * js]);
  } else if (p.mask_dtype == TSR_DTYPE_F32) {
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

// Query rows [i0, i1) of one (batch, head): qb is row i0 of Q ([rows, D]),
// kb/vb key 0 of K ([Sk, D]) and V ([Sk, Dv]), yb row i0 of Y ([rows, Dv]),
// all f32 and contiguous. The two products are oneDNN sgemm calls on the
// block (single-threaded inside the parallel region); `s` holds the block's
// scores (rows x nk), then its probabilities.
bool AttendRows(const AttnParams& p, const float* qb, const float* kb, const float* vb, const void* mask, float* yb,
                int64_t b, int64_t h, int64_t i0, int64_t i1, std::vector<float>& s) {
  const int64_t Sk = p.Sk, D = p.D, Dv = p.Dv, rows = i1 - i0;
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

// One (batch, head, query block) task on f32 tensors.
bool AttendBlock(const AttnParams& p, const float* q, const float* k, const float* v, const void* mask, float* y,
                 int64_t b, int64_t h, int64_t i0, int64_t i1, std::vector<float>& s) {
  const int64_t bh = b * p.H + h;
  return AttendRows(p, q + (bh * p.Sq + i0) * p.D, k + bh * p.Sk * p.D, v + bh * p.Sk * p.Dv, mask,
                    y + (bh * p.Sq + i0) * p.Dv, b, h, i0, i1, s);
}

// Thread-local staging for the bf16 kernel (one (batch, head) at a time).
struct Bf16Scratch {
  std::vector<float> q, k, v, y, s;  // f32 copies (sgemm path), scores
  std::vector<uint32_t> qp, kp, vp;   // bf16 pairs (vdpbf16ps path)
  std::vector<uint16_t> pb;           // probabilities in bf16
};

inline int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Query rows [r0, r1) (r0 a multiple of kQueryBlock) of one (batch, head)
// with vdpbf16ps products (`gemm`):
// K is packed once as pairs along D ([ceil(D/2)][ldk] dwords, zero padded),
// V as pairs along the keys ([ceil(nk/2)][ldv]); per query block the scores
// are Q K^T * scale in f32, masked and exponentiated in f32, the
// probabilities rounded to bf16 for the second product (f32 accumulation),
// and each output row scaled by 1/sum in f32 before rounding to bf16.
void AttendHeadBf16Dp(const AttnParams& p, simd::Bf16PairGemmFn gemm, const uint16_t* q, const uint16_t* k,
                      const uint16_t* v, const void* mask, uint16_t* y, int64_t b, int64_t h, int64_t r0, int64_t r1,
                      Bf16Scratch& w) {
  const simd::RowFns& f = simd::Fns();
  const simd::ConvertFns& cv = simd::Converts();
  const int64_t bh = b * p.H + h, D = p.D, Dv = p.Dv;
  const int64_t nk = p.causal ? std::min(p.Sk, r1) : p.Sk;  // keys any of these rows sees
  const int64_t dp = (D + 1) / 2, kpairs = (nk + 1) / 2;
  const int64_t ldk = RoundUp(std::max<int64_t>(nk, 1), 64), ldv = RoundUp(std::max<int64_t>(Dv, 1), 64);
  const uint16_t* kb = k + bh * p.Sk * D;
  const uint16_t* vb = v + bh * p.Sk * Dv;
  // K pairs: dword (d2, j) = (K[j][2 d2], K[j][2 d2 + 1]).
  w.kp.assign(static_cast<size_t>(std::max<int64_t>(dp, 1) * ldk), 0u);
  for (int64_t j = 0; j < nk; ++j) {
    const uint16_t* kr = kb + j * D;
    for (int64_t d2 = 0; d2 < dp; ++d2) {
      const uint32_t lo = kr[2 * d2], hi = 2 * d2 + 1 < D ? kr[2 * d2 + 1] : 0u;
      w.kp[static_cast<size_t>(d2 * ldk + j)] = lo | hi << 16;
    }
  }
  // V pairs: dword (j2, c) = (V[2 j2][c], V[2 j2 + 1][c]).
  w.vp.assign(static_cast<size_t>(std::max<int64_t>(kpairs, 1) * ldv), 0u);
  for (int64_t j2 = 0; j2 < kpairs; ++j2) {
    const uint16_t* v0 = vb + 2 * j2 * Dv;
    const uint16_t* v1 = 2 * j2 + 1 < nk ? v0 + Dv : nullptr;
    uint32_t* dst = w.vp.data() + j2 * ldv;
    for (int64_t c = 0; c < Dv; ++c)
      dst[c] = static_cast<uint32_t>(v0[c]) | (v1 ? static_cast<uint32_t>(v1[c]) << 16 : 0u);
  }
  const int64_t rows_max = std::min(p.Sq, kQueryBlock);
  const int64_t ldp = RoundUp(std::max<int64_t>(nk, 1), 2);  // bf16 probabilities per row (even: whole pairs)
  w.s.resize(static_cast<size_t>(rows_max * ldk));
  w.y.resize(static_cast<size_t>(std::max<int64_t>(rows_max * Dv, 1)));
  w.pb.resize(static_cast<size_t>(rows_max * ldp));
  if (D % 2 != 0) w.qp.resize(static_cast<size_t>(rows_max * dp));
  float inv[kQueryBlock];
  for (int64_t i0 = r0; i0 < r1; i0 += kQueryBlock) {
    const int64_t i1 = std::min(r1, i0 + kQueryBlock), rows = i1 - i0;
    const int64_t nkb = p.causal ? std::min(p.Sk, i1) : nk;  // keys this block sees (>= 1)
    const uint16_t* qb = q + (bh * p.Sq + i0) * D;
    const uint32_t* qa;
    if (D % 2 == 0) {
      qa = reinterpret_cast<const uint32_t*>(qb);  // even D: every row starts on a pair (4-byte aligned)
    } else {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t d2 = 0; d2 < dp; ++d2) {
          const uint32_t lo = qb[r * D + 2 * d2], hi = 2 * d2 + 1 < D ? qb[r * D + 2 * d2 + 1] : 0u;
          w.qp[static_cast<size_t>(r * dp + d2)] = lo | hi << 16;
        }
      qa = w.qp.data();
    }
    float* sp = w.s.data();
    if (dp > 0) {
      gemm(qa, dp, w.kp.data(), ldk, sp, ldk, rows, nkb, dp, p.scale);
    } else {
      for (int64_t r = 0; r < rows; ++r) std::fill(sp + r * ldk, sp + r * ldk + nkb, 0.f);  // D == 0: scores 0
    }
    const int64_t ldpb = RoundUp(nkb, 2);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      float* sr = sp + r * ldk;
      const int64_t n = p.causal ? std::min(p.Sk, i + 1) : nkb;
      MaskRow(p, mask, b, h, i, sr, n);
      const float m = f.max(sr, n);
      const float shift = std::isinf(m) ? 0.f : m;  // all -inf: sum is 0 and the row becomes NaN
      inv[r] = 1.f / f.exp_shift_inplace(sr, n, shift);
      std::fill(sr + n, sr + ldpb, 0.f);  // later keys (causal) and the pad key get probability 0
      cv.f32_to_bf16(sr, w.pb.data() + r * ldpb, ldpb);
    }
    float* yb = w.y.data();
    gemm(reinterpret_cast<const uint32_t*>(w.pb.data()), ldpb / 2, w.vp.data(), ldv, yb, Dv, rows, Dv, ldpb / 2, 1.f);
    for (int64_t r = 0; r < rows; ++r) {
      float* yr = yb + r * Dv;
      const float fr = inv[r];
      for (int64_t c = 0; c < Dv; ++c) yr[c] *= fr;
    }
    cv.f32_to_bf16(yb, y + (bh * p.Sq + i0) * Dv, rows * Dv);
  }
}

// Query rows [r0, r1) (r0 a multiple of kQueryBlock) of one (batch, head) on
// bf16 Q/K/V/Y: the keys these rows can see are widened to f32 once, each
// query block is widened, attended in f32 (AttendRows) and rounded back to
// bf16 (nearest even).
bool AttendHeadBf16(const AttnParams& p, const uint16_t* q, const uint16_t* k, const uint16_t* v, const void* mask,
                    uint16_t* y, int64_t b, int64_t h, int64_t r0, int64_t r1, Bf16Scratch& w) {
  const simd::ConvertFns& f = simd::Converts();  // bit-exact bf16 <-> f32 (simd_convert.h)
  const int64_t bh = b * p.H + h;
  const int64_t nk = p.causal ? std::min(p.Sk, r1) : p.Sk;  // keys any of these rows sees
  const int64_t rows_max = std::min(p.Sq, kQueryBlock);
  w.k.resize(static_cast<size_t>(std::max<int64_t>(nk * p.D, 1)));
  w.v.resize(static_cast<size_t>(std::max<int64_t>(nk * p.Dv, 1)));
  w.q.resize(static_cast<size_t>(std::max<int64_t>(rows_max * p.D, 1)));
  w.y.resize(static_cast<size_t>(std::max<int64_t>(rows_max * p.Dv, 1)));
  f.bf16_to_f32(k + bh * p.Sk * p.D, w.k.data(), nk * p.D);
  f.bf16_to_f32(v + bh * p.Sk * p.Dv, w.v.data(), nk * p.Dv);
  for (int64_t i0 = r0; i0 < r1; i0 += kQueryBlock) {
    const int64_t i1 = std::min(r1, i0 + kQueryBlock);
    f.bf16_to_f32(q + (bh * p.Sq + i0) * p.D, w.q.data(), (i1 - i0) * p.D);
    if (!AttendRows(p, w.q.data(), w.k.data(), w.v.data(), mask, w.y.data(), b, h, i0, i1, w.s)) return false;
    f.f32_to_bf16(w.y.data(), y + (bh * p.Sq + i0) * p.Dv, (i1 - i0) * p.Dv);
  }
  return true;
}

class FusedAttentionKernel final : public Kernel {
 public:
  FusedAttentionKernel(AttnParams p, bool bf16, simd::Bf16PairGemmFn dot, std::string describe)
      : p_(p), bf16_(bf16), dot_(dot), describe_(std::move(describe)) {}
  Err Run(const void* const* in, void* const* out) const override {
    const AttnParams& p = p_;
    const void* mask = p.mask_dtype != TSR_DTYPE_UNDEFINED ? in[3] : nullptr;
    if (p.Sq == 0 || p.Dv == 0 || p.B * p.H == 0) return Err::Ok();
    if (bf16_) return RunBf16(in, mask, out);
    const float* q = static_cast<const float*>(in[0]);
    const float* k = static_cast<const float*>(in[1]);
    const float* v = static_cast<const float*>(in[2]);
    float* y = static_cast<float*>(out[0]);
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
  // bf16 Q/K/V/Y: a task is one (batch, head), so its keys are widened or
  // packed once, or, when there are too few heads to keep every thread busy,
  // a run of that head's query blocks (each task converting its own keys).
  Err RunBf16(const void* const* in, const void* mask, void* const* out) const {
    const AttnParams& p = p_;
    const uint16_t* q = static_cast<const uint16_t*>(in[0]);
    const uint16_t* k = static_cast<const uint16_t*>(in[1]);
    const uint16_t* v = static_cast<const uint16_t*>(in[2]);
    uint16_t* y = static_cast<uint16_t*>(out[0]);
    if (p.Sk == 0) {
      std::fill(y, y + p.B * p.H * p.Sq * p.Dv, plugin::FloatToBF16Bits(std::numeric_limits<float>::quiet_NaN()));
      return Err::Ok();
    }
    std::atomic<bool> failed{false};
    const simd::Bf16PairGemmFn gemm = dot_;  // null: widen to f32 and use sgemm
    const int64_t heads = p.B * p.H, blocks = (p.Sq + kQueryBlock - 1) / kQueryBlock;
    const int64_t want = 2 * static_cast<int64_t>(omp_get_max_threads());
    const int64_t parts = heads >= want ? 1 : std::min(blocks, (want + heads - 1) / heads);  // per head
    ParallelFor(heads * parts, 1, [&](int64_t t0, int64_t t1) {
      thread_local Bf16Scratch w;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t bh = t / parts, part = t % parts;
        const int64_t r0 = blocks * part / parts * kQueryBlock;
        const int64_t r1 = std::min(p.Sq, blocks * (part + 1) / parts * kQueryBlock);
        if (r0 >= r1) continue;
        if (gemm) AttendHeadBf16Dp(p, gemm, q, k, v, mask, y, bh / p.H, bh % p.H, r0, r1, w);
        else if (!AttendHeadBf16(p, q, k, v, mask, y, bh / p.H, bh % p.H, r0, r1, w)) failed = true;
      }
    });
    if (failed) return MakeErr(TSR_ERR_INTERNAL, "%s: oneDNN sgemm failed", describe_.c_str());
    return Err::Ok();
  }

  AttnParams p_;
  bool bf16_ = false;                   // Q, K, V and Y are bf16 (math in f32)
  simd::Bf16PairGemmFn dot_ = nullptr;  // bf16: vdpbf16ps products (opt-in), else widen + sgemm
  std::string describe_;                // for error messages
};

Err CreateFusedAttention(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  const std::string w = args.Describe();
  const size_t nin = args.inputs.size();
  if (nin < 3 || nin > 4 || !args.has_input(0) || !args.has_input(1) || !args.has_input(2))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected inputs Q, K, V and an optional mask, got %zu inputs",
                   w.c_str(), nin);
  if (args.outputs.size() != 1 || !args.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected exactly one output", w.c_str());
  // Q, K, V and Y all bf16 (the precision policy's bf16 regions): the native
  // bf16 kernel (f32 math). Other mixes with bf16: the f32 kernel through the adapter.
  bool all_bf16 = args.outputs[0]->dtype == TSR_DTYPE_BF16;
  for (size_t i = 0; i < 3; ++i) all_bf16 = all_bf16 && args.inputs[i]->dtype == TSR_DTYPE_BF16;
  if (!all_bf16 && Bf16Adapter::Needed(args)) return Bf16Adapter::Create(args, &CreateFusedAttention, out);
  const int32_t dt = all_bf16 ? TSR_DTYPE_BF16 : TSR_DTYPE_F32;
  static const char* kNames[] = {"Q", "K", "V"};
  for (size_t i = 0; i < 3; ++i) {
    const TensorArg& t = *args.inputs[i];
    if (t.dtype != dt)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s has dtype %s; the CPU kernel supports f32 and bf16 only",
                     w.c_str(), kNames[i], plugin::DTypeName(t.dtype));
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
  if (y.dtype != dt || y.dims != want)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output is %s %s, expected %s %s", w.c_str(),
                   plugin::DTypeName(y.dtype), DimsToString(y.dims).c_str(), plugin::DTypeName(dt),
                   DimsToString(want).c_str());

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
    // A bf16 mask only comes with bf16 Q/K/V (f32 kernels see it widened by the adapter).
    if (m.dtype != TSR_DTYPE_F32 && m.dtype != TSR_DTYPE_BOOL && !(all_bf16 && m.dtype == TSR_DTYPE_BF16))
      return MakeErr(TSR_ERR_UNSUPPORTED,
                     "%s: mask has dtype %s; expected bool (keep where true) or f32/bf16 (additive)", w.c_str(),
                     plugin::DTypeName(m.dtype));
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
  // The bf16 products run with vdpbf16ps where the CPU has avx512_bf16
  // (about 1.5x faster than widening; the probabilities are rounded to bf16
  // before P V, f32 statistics and accumulation as everywhere). Read when the
  // kernel is created: TESSERA_CPU_ATTN_BF16_DOT=0 widens to f32 instead, whose
  // results equal the f32 kernel's on the same (rounded) inputs.
  simd::Bf16PairGemmFn dot = nullptr;
  if (all_bf16) {
    const char* e = std::getenv("TESSERA_CPU_ATTN_BF16_DOT");
    if (!(e && std::strcmp(e, "0") == 0)) dot = simd::Bf16PairGemm();
  }
  *out = std::make_unique<FusedAttentionKernel>(p, all_bf16, dot, w);
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
