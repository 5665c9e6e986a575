// CPU kernels: ONNX Attention (opset 23/24) and RotaryEmbedding (opset 23).
//
// Attention(Q, K, V [, attn_mask, past_key, past_value, nonpad_kv_seqlen])
//   -> Y [, present_key, present_value, qk_matmul_output]
// Semantics follow ONNX's reference implementation:
//   K' = concat(past_key, K), V' = concat(past_value, V)   (present_* outputs)
//   S  = scale * Q K'^T                (qk_matmul_output_mode 0)
//   S += bias                          (mode 1); bias = attn_mask (bool: 0 where
//        true, -inf where false; numeric: added), columns past the mask's last
//        dim are -inf, is_causal masks key j > i + past_len, nonpad_kv_seqlen
//        masks key j >= nonpad_kv_seqlen[b]
//   S  = softcap * tanh(S / softcap)   when softcap > 0 (mode 2)
//   P  = softmax(S) over keys          (mode 3); a row with every key masked is NaN
//   Y  = P V'
// Query head h uses key/value head h / (q_heads / kv_heads) (GQA/MQA).
// Compute is f32 (f16/bf16/f64 inputs are converted; present_* are exact
// copies). Both products are oneDNN sgemm calls over (batch, head, block of
// query rows) tasks, reading 3-D ([batch, seq, heads*size]) or 4-D
// ([batch, heads, seq, size]) f32 tensors in place through leading dimensions.
// The mask, nonpad_kv_seqlen and position_ids are runtime data (no constant needed).
//
// RotaryEmbedding(X, cos_cache, sin_cache [, position_ids]) -> Y rotates the
// first rotary_embedding_dim (default: head size) channels of every head,
// either as halves (x[k], x[k + rd/2]) or interleaved pairs (x[2k], x[2k+1]),
// by the angle whose cos/sin are cos_cache[pos][k] / sin_cache[pos][k]
// (pos = position_ids[b][s]; without position_ids the caches are
// [batch, seq, rd/2]). Position ids outside the cache are a run-time error.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.h>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {
namespace {

const char* DT(int32_t dt) { return plugin::DTypeName(dt); }

// ---- f16 / bf16 conversions (round to nearest even; NaN stays NaN) ----------------

inline uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float HalfToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) return FromBits(Bits(static_cast<float>(mant) * 5.9604644775390625e-8f) | sign);  // mant * 2^-24
  if (exp == 31) return FromBits(sign | 0x7f800000u | (mant << 13));
  return FromBits(sign | ((exp + 112) << 23) | (mant << 13));
}
inline uint16_t F32ToHalf(float f) {
  const uint32_t x = Bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u)
    return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (ax < 0x38800000u) {  // half subnormal or zero: let the FPU round at the 2^-24 position
    const float r = FromBits(ax) + 0.5f;
    return static_cast<uint16_t>(sign | (Bits(r) - 0x3f000000u));
  }
  ax += 0xc8000fffu + ((ax >> 13) & 1u);  // rebias exponent and round to nearest even
  return static_cast<uint16_t>(sign | (ax >> 13));
}
inline float BF16ToF32(uint16_t b) { return FromBits(static_cast<uint32_t>(b) << 16); }
inline uint16_t F32ToBF16(float f) {
  const uint32_t x = Bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

bool IsFloatDt(int32_t dt) {
  return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_F16 || dt == TSR_DTYPE_BF16 || dt == TSR_DTYPE_F64;
}

// Mask dtypes ToF32 reads: bool, the float types and the 8..64-bit integers.
bool IsMaskDt(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_BOOL: case TSR_DTYPE_F32: case TSR_DTYPE_F16: case TSR_DTYPE_BF16: case TSR_DTYPE_F64:
    case TSR_DTYPE_I8: case TSR_DTYPE_U8: case TSR_DTYPE_I16: case TSR_DTYPE_U16: case TSR_DTYPE_I32:
    case TSR_DTYPE_U32: case TSR_DTYPE_I64: case TSR_DTYPE_U64: return true;
    default: return false;
  }
}

template <typename T>
void CastRow(const T* s, int64_t n, float* d) {
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<float>(s[i]);
}

// d[0..n) = src elements [off, off + n) as f32. dt: a float type, an integer type or bool (0/1).
void ToF32(const void* src, int32_t dt, int64_t off, int64_t n, float* d) {
  switch (dt) {
    case TSR_DTYPE_F32: std::memcpy(d, static_cast<const float*>(src) + off, static_cast<size_t>(n) * 4); return;
    case TSR_DTYPE_F16: {
      const uint16_t* s = static_cast<const uint16_t*>(src) + off;
      for (int64_t i = 0; i < n; ++i) d[i] = HalfToF32(s[i]);
      return;
    }
    case TSR_DTYPE_BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src) + off;
      for (int64_t i = 0; i < n; ++i) d[i] = BF16ToF32(s[i]);
      return;
    }
    case TSR_DTYPE_F64: return CastRow(static_cast<const double*>(src) + off, n, d);
    case TSR_DTYPE_I8: return CastRow(static_cast<const int8_t*>(src) + off, n, d);
    case TSR_DTYPE_U8: return CastRow(static_cast<const uint8_t*>(src) + off, n, d);
    case TSR_DTYPE_I16: return CastRow(static_cast<const int16_t*>(src) + off, n, d);
    case TSR_DTYPE_U16: return CastRow(static_cast<const uint16_t*>(src) + off, n, d);
    case TSR_DTYPE_I32: return CastRow(static_cast<const int32_t*>(src) + off, n, d);
    case TSR_DTYPE_U32: return CastRow(static_cast<const uint32_t*>(src) + off, n, d);
    case TSR_DTYPE_I64: return CastRow(static_cast<const int64_t*>(src) + off, n, d);
    case TSR_DTYPE_U64: return CastRow(static_cast<const uint64_t*>(src) + off, n, d);
    case TSR_DTYPE_BOOL: {
      const uint8_t* s = static_cast<const uint8_t*>(src) + off;
      for (int64_t i = 0; i < n; ++i) d[i] = s[i] ? 1.f : 0.f;
      return;
    }
    default: std::fill(d, d + n, 0.f); return;  // factories admit no other dtype
  }
}

// dst elements [off, off + n) = s[0..n) converted to dt (a float type).
void FromF32(const float* s, int64_t n, int32_t dt, void* dst, int64_t off) {
  switch (dt) {
    case TSR_DTYPE_F32: std::memcpy(static_cast<float*>(dst) + off, s, static_cast<size_t>(n) * 4); return;
    case TSR_DTYPE_F16: {
      uint16_t* d = static_cast<uint16_t*>(dst) + off;
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToHalf(s[i]);
      return;
    }
    case TSR_DTYPE_BF16: {
      uint16_t* d = static_cast<uint16_t*>(dst) + off;
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToBF16(s[i]);
      return;
    }
    case TSR_DTYPE_F64: {
      double* d = static_cast<double*>(dst) + off;
      for (int64_t i = 0; i < n; ++i) d[i] = s[i];
      return;
    }
    default: return;
  }
}

// Converts n elements in parallel chunks.
void ToF32Par(const void* src, int32_t dt, int64_t n, float* d) {
  ParallelFor(n, 65536, [&](int64_t b, int64_t e) { ToF32(src, dt, b, e - b, d + b); });
}
void FromF32Par(const float* s, int64_t n, int32_t dt, void* dst) {
  ParallelFor(n, 65536, [&](int64_t b, int64_t e) { FromF32(s + b, e - b, dt, dst, b); });
}

// ---- Attention ----------------------------------------------------------------------

// A Q/K/V/Y tensor seen as [batch, heads, seq, size] whatever its layout:
// 4-D is [B, H, S, D]; 3-D is [B, S, H * D]. Rows (one (b, h, s)) are contiguous.
struct HeadLayout {
  bool is3d = false;
  int64_t H = 0, S = 0, D = 0;
  int64_t Row(int64_t b, int64_t h, int64_t s) const {
    return is3d ? ((b * S + s) * H + h) * D : ((b * H + h) * S + s) * D;
  }
  int64_t ld() const { return is3d ? H * D : D; }  // elements between consecutive seq rows of one head
};

struct AttnParams {
  int64_t B = 0, Hq = 0, Hkv = 0, Sq = 0, Skv = 0, P = 0, T = 0, Dk = 0, Dv = 0;
  bool is3d = false;
  float scale = 1.f, softcap = 0.f;
  bool causal = false;
  int mode = 0;
  int32_t t1 = TSR_DTYPE_F32, t2 = TSR_DTYPE_F32;  // Q/K/past_key/Y dtype, V/past_value dtype
  int32_t mask_dt = TSR_DTYPE_UNDEFINED;           // undefined = no mask
  int64_t mstride[3] = {0, 0, 0};                  // mask strides for batch, head, query row (0 = broadcast)
  int64_t mlen = 0;                                // mask's last dim (<= T; keys past it are masked)
  bool nonpad = false;
  size_t nin = 3, nout = 1;  // lengths of Run's in/out arrays
};

constexpr int64_t kQueryBlock = 64;  // query rows per task

// Bias row for query row i of (b, h): the mask, causal and nonpad masking added to s[0..T).
void AddBias(const AttnParams& p, const void* mask, const int64_t* nonpad, int64_t b, int64_t h, int64_t i,
             float* s, float* tmp) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const int64_t T = p.T;
  if (p.mask_dt != TSR_DTYPE_UNDEFINED) {
    const int64_t off = b * p.mstride[0] + h * p.mstride[1] + i * p.mstride[2];
    const int64_t n = std::min(p.mlen, T);
    if (p.mask_dt == TSR_DTYPE_BOOL) {
      const uint8_t* m = static_cast<const uint8_t*>(mask) + off;
      for (int64_t j = 0; j < n; ++j) s[j] = m[j] ? s[j] : ninf;
    } else {
      ToF32(mask, p.mask_dt, off, n, tmp);
      for (int64_t j = 0; j < n; ++j) s[j] += tmp[j];
    }
    for (int64_t j = n; j < T; ++j) s[j] = ninf;
  }
  if (p.causal) {
    for (int64_t j = std::max<int64_t>(i + p.P + 1, 0); j < T; ++j) s[j] = ninf;
  }
  if (p.nonpad) {
    for (int64_t j = std::max<int64_t>(nonpad[b], 0); j < T; ++j) s[j] = ninf;
  }
}

void SoftmaxRow(float* s, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) m = std::max(m, s[j]);
  // m == -inf (every key masked): s - m is NaN, and so is the row, as in ONNX's reference.
  float sum = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    sum += s[j];
  }
  const float inv = 1.f / sum;
  for (int64_t j = 0; j < n; ++j) s[j] *= inv;
}

class OnnxAttentionKernel final : public Kernel {
 public:
  OnnxAttentionKernel(AttnParams p, std::string describe) : p_(p), describe_(std::move(describe)) {}

  Err Run(const void* const* in, void* const* out) const override {
    const AttnParams& p = p_;
    const HeadLayout qL{p.is3d, p.Hq, p.Sq, p.Dk}, yL{p.is3d, p.Hq, p.Sq, p.Dv};
    const HeadLayout kL{p.is3d, p.Hkv, p.Skv, p.Dk}, vL{p.is3d, p.Hkv, p.Skv, p.Dv};
    const HeadLayout pkL{false, p.Hkv, p.P, p.Dk}, pvL{false, p.Hkv, p.P, p.Dv};
    const HeadLayout kcL{false, p.Hkv, p.T, p.Dk}, vcL{false, p.Hkv, p.T, p.Dv};
    const bool past = p.P > 0;
    const void* pk_in = p.nin > 4 ? in[4] : nullptr;
    const void* pv_in = p.nin > 5 ? in[5] : nullptr;
    void* pk_out = p.nout > 1 ? out[1] : nullptr;
    void* pv_out = p.nout > 2 ? out[2] : nullptr;
    void* qk = p.nout > 3 ? out[3] : nullptr;

    // present_key / present_value: exact byte copies of concat(past, new) in 4-D.
    if (pk_out) Concat(pk_in, pkL, in[1], kL, p.t1, pk_out);
    if (pv_out) Concat(pv_in, pvL, in[2], vL, p.t2, pv_out);

    // f32 views of Q, K', V' and Y.
    std::vector<float> qbuf, kbuf, vbuf, ybuf;
    const float* q = F32View(in[0], p.t1, p.B * p.Sq * p.Hq * p.Dk, &qbuf);
    const float* k;
    const float* v;
    HeadLayout kU = kL, vU = vL;  // layouts of the key/value views (T keys)
    if (past) {
      // Concat into f32 [B, Hkv, T, D].
      if (pk_out && p.t1 == TSR_DTYPE_F32) {
        k = static_cast<const float*>(pk_out);
      } else {
        kbuf.resize(static_cast<size_t>(p.B * p.Hkv * p.T * p.Dk));
        ConcatF32(pk_in, pkL, in[1], kL, p.t1, kbuf.data());
        k = kbuf.data();
      }
      if (pv_out && p.t2 == TSR_DTYPE_F32) {
        v = static_cast<const float*>(pv_out);
      } else {
        vbuf.resize(static_cast<size_t>(p.B * p.Hkv * p.T * p.Dv));
        ConcatF32(pv_in, pvL, in[2], vL, p.t2, vbuf.data());
        v = vbuf.data();
      }
      kU = kcL;
      vU = vcL;
    } else {
      k = F32View(in[1], p.t1, p.B * p.Skv * p.Hkv * p.Dk, &kbuf);
      v = F32View(in[2], p.t2, p.B * p.Skv * p.Hkv * p.Dv, &vbuf);
    }
    const int64_t ynum = p.B * p.Sq * p.Hq * p.Dv;
    float* y;
    if (p.t1 == TSR_DTYPE_F32) {
      y = static_cast<float*>(out[0]);
    } else {
      ybuf.resize(static_cast<size_t>(ynum));
      y = ybuf.data();
    }
    const void* mask = p.mask_dt != TSR_DTYPE_UNDEFINED ? in[3] : nullptr;
    const int64_t* nonpad = p.nonpad ? static_cast<const int64_t*>(in[6]) : nullptr;

    const int64_t group = p.Hq / p.Hkv;
    const int64_t blocks = (p.Sq + kQueryBlock - 1) / kQueryBlock;
    const int64_t tasks = p.B * p.Hq * blocks;
    std::atomic<bool> failed{false};
    ParallelFor(tasks, 1, [&](int64_t t0, int64_t t1) {
      thread_local std::vector<float> sbuf, tmp;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t blk = t % blocks, bh = t / blocks;
        const int64_t b = bh / p.Hq, h = bh % p.Hq, kh = h / group;
        const int64_t i0 = blk * kQueryBlock, rows = std::min(p.Sq, i0 + kQueryBlock) - i0;
        const int64_t T = p.T;
        sbuf.resize(static_cast<size_t>(std::max<int64_t>(rows * T, 1)));
        tmp.resize(static_cast<size_t>(std::max<int64_t>(T, 1)));
        float* s = sbuf.data();
        float* yb = y + yL.Row(b, h, i0);
        if (T == 0) {  // no keys: an empty softmax times an empty V is 0
          for (int64_t r = 0; r < rows; ++r) std::fill(yb + r * yL.ld(), yb + r * yL.ld() + p.Dv, 0.f);
          continue;
        }
        // S = scale * Q_blk K'^T   [rows, T]
        if (p.Dk == 0) {
          std::fill(s, s + rows * T, 0.f);
        } else if (dnnl_sgemm('N', 'T', rows, T, p.Dk, p.scale, q + qL.Row(b, h, i0), qL.ld(), k + kU.Row(b, kh, 0),
                              kU.ld(), 0.f, s, T) != dnnl_success) {
          failed = true;
          continue;
        }
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = i0 + r;
          float* sr = s + r * T;
          const int64_t qk_off = ((b * p.Hq + h) * p.Sq + i) * T;
          if (qk && p.mode == 0) FromF32(sr, T, p.t1, qk, qk_off);
          AddBias(p, mask, nonpad, b, h, i, sr, tmp.data());
          if (qk && p.mode == 1) FromF32(sr, T, p.t1, qk, qk_off);
          if (p.softcap > 0.f) {
            const float c = p.softcap, ic = 1.f / p.softcap;
            for (int64_t j = 0; j < T; ++j) sr[j] = c * std::tanh(sr[j] * ic);
          }
          if (qk && p.mode == 2) FromF32(sr, T, p.t1, qk, qk_off);
          SoftmaxRow(sr, T);
          if (qk && p.mode == 3) FromF32(sr, T, p.t1, qk, qk_off);
        }
        // Y_blk = P V'   [rows, Dv]
        if (p.Dv == 0) continue;
        if (dnnl_sgemm('N', 'N', rows, p.Dv, T, 1.f, s, T, v + vU.Row(b, kh, 0), vU.ld(), 0.f, yb, yL.ld()) !=
            dnnl_success)
          failed = true;
      }
    });
    if (failed) return MakeErr(TSR_ERR_INTERNAL, "%s: oneDNN sgemm failed", describe_.c_str());
    if (p.t1 != TSR_DTYPE_F32) FromF32Par(y, ynum, p.t1, out[0]);
    return Err::Ok();
  }

 private:
  // `src` itself when it is f32, else its f32 conversion in *buf.
  static const float* F32View(const void* src, int32_t dt, int64_t n, std::vector<float>* buf) {
    if (dt == TSR_DTYPE_F32) return static_cast<const float*>(src);
    buf->resize(static_cast<size_t>(std::max<int64_t>(n, 1)));
    ToF32Par(src, dt, n, buf->data());
    return buf->data();
  }
  // dst [B, H, P + S, D] (dtype dt) = concat(past [B, H, P, D], x (layout xl)) along the sequence.
  void Concat(const void* past, const HeadLayout& pl, const void* x, const HeadLayout& xl, int32_t dt,
              void* dst) const {
    const int64_t es = static_cast<int64_t>(plugin::DTypeSize(dt));
    const int64_t T = pl.S + xl.S, D = xl.D;
    const size_t row = static_cast<size_t>(D * es);
    uint8_t* d = static_cast<uint8_t*>(dst);
    ParallelFor(p_.B * xl.H, 1, [&](int64_t bh0, int64_t bh1) {
      for (int64_t bh = bh0; bh < bh1; ++bh) {
        const int64_t b = bh / xl.H, h = bh % xl.H;
        uint8_t* o = d + bh * T * D * es;
        if (pl.S > 0) std::memcpy(o, static_cast<const uint8_t*>(past) + pl.Row(b, h, 0) * es, row * pl.S);
        for (int64_t s = 0; s < xl.S; ++s)
          std::memcpy(o + (pl.S + s) * D * es, static_cast<const uint8_t*>(x) + xl.Row(b, h, s) * es, row);
      }
    });
  }
  // As Concat, converting to f32.
  void ConcatF32(const void* past, const HeadLayout& pl, const void* x, const HeadLayout& xl, int32_t dt,
                 float* dst) const {
    const int64_t T = pl.S + xl.S, D = xl.D;
    ParallelFor(p_.B * xl.H, 1, [&](int64_t bh0, int64_t bh1) {
      for (int64_t bh = bh0; bh < bh1; ++bh) {
        const int64_t b = bh / xl.H, h = bh % xl.H;
        float* o = dst + bh * T * D;
        if (pl.S > 0) ToF32(past, dt, pl.Row(b, h, 0), pl.S * D, o);
        for (int64_t s = 0; s < xl.S; ++s) ToF32(x, dt, xl.Row(b, h, s), D, o + (pl.S + s) * D);
      }
    });
  }

  AttnParams p_;
  std::string describe_;
};

Err CheckOutput(const NodeArgs& args, size_t i, const char* name, int32_t dt, const std::vector<int64_t>& want) {
  if (i >= args.outputs.size() || !args.outputs[i]) return Err::Ok();
  const TensorArg& o = *args.outputs[i];
  if (o.dtype != dt || o.dims != want)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output %s is %s %s, expected %s %s", args.Describe().c_str(), name,
                   DT(o.dtype), DimsToString(o.dims).c_str(), DT(dt), DimsToString(want).c_str());
  return Err::Ok();
}

Err CreateOnnxAttention(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  const std::string w = args.Describe();
  const char* ws = w.c_str();
  if (args.inputs.size() < 3 || args.inputs.size() > 7 || !args.has_input(0) || !args.has_input(1) ||
      !args.has_input(2))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected inputs Q, K, V and up to 4 optional ones, got %zu inputs",
                   ws, args.inputs.size());
  if (args.outputs.empty() || args.outputs.size() > 4 || !args.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: expected output Y and up to 3 optional ones", ws);
  const int64_t opset = args.node->opset;
  if (args.has_input(6) && opset > 0 && opset < 24)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input 6 (nonpad_kv_seqlen) exists from opset 24 on (model: %lld)",
                   ws, static_cast<long long>(opset));
  static const char* kNames[] = {"Q", "K", "V"};
  const TensorArg& Q = *args.inputs[0];
  const TensorArg& K = *args.inputs[1];
  const TensorArg& V = *args.inputs[2];
  for (size_t i = 0; i < 3; ++i) {
    const TensorArg& t = *args.inputs[i];
    if (!IsFloatDt(t.dtype))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s has dtype %s; expected f32, f16, bf16 or f64", ws, kNames[i],
                     DT(t.dtype));
    if (t.dims.size() != 3 && t.dims.size() != 4)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s must have rank 3 or 4, got %s", ws, kNames[i],
                     DimsToString(t.dims).c_str());
  }
  if (K.dtype != Q.dtype)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Q is %s but K is %s (they must match)", ws, DT(Q.dtype),
                   DT(K.dtype));
  if (K.dims.size() != Q.dims.size() || V.dims.size() != Q.dims.size())
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Q %s, K %s and V %s must have the same rank", ws,
                   DimsToString(Q.dims).c_str(), DimsToString(K.dims).c_str(), DimsToString(V.dims).c_str());
  plugin::NodeAttrs at = args.attrs();
  AttnParams p;
  p.t1 = Q.dtype;
  p.t2 = V.dtype;
  p.is3d = Q.dims.size() == 3;
  p.B = Q.dims[0];
  if (K.dims[0] != p.B || V.dims[0] != p.B)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: batch sizes of Q %s, K %s and V %s differ", ws,
                   DimsToString(Q.dims).c_str(), DimsToString(K.dims).c_str(), DimsToString(V.dims).c_str());
  if (p.is3d) {
    p.Hq = at.Int("q_num_heads", 0);
    p.Hkv = at.Int("kv_num_heads", 0);
    if (p.Hq <= 0 || p.Hkv <= 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                     "%s: 3-D Q/K/V need the attributes q_num_heads and kv_num_heads > 0 (got %lld and %lld)", ws,
                     static_cast<long long>(p.Hq), static_cast<long long>(p.Hkv));
    if (Q.dims[2] % p.Hq != 0 || K.dims[2] % p.Hkv != 0 || V.dims[2] % p.Hkv != 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                     "%s: hidden sizes Q %lld, K %lld, V %lld are not multiples of q_num_heads %lld / kv_num_heads %lld",
                     ws, static_cast<long long>(Q.dims[2]), static_cast<long long>(K.dims[2]),
                     static_cast<long long>(V.dims[2]), static_cast<long long>(p.Hq), static_cast<long long>(p.Hkv));
    p.Sq = Q.dims[1];
    p.Skv = K.dims[1];
    p.Dk = Q.dims[2] / p.Hq;
    p.Dv = V.dims[2] / p.Hkv;
    if (K.dims[2] / p.Hkv != p.Dk)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Q head size %lld differs from K head size %lld", ws,
                     static_cast<long long>(p.Dk), static_cast<long long>(K.dims[2] / p.Hkv));
    if (V.dims[1] != p.Skv)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: K %s and V %s sequence lengths differ", ws,
                     DimsToString(K.dims).c_str(), DimsToString(V.dims).c_str());
  } else {
    p.Hq = Q.dims[1];
    p.Hkv = K.dims[1];
    p.Sq = Q.dims[2];
    p.Skv = K.dims[2];
    p.Dk = Q.dims[3];
    p.Dv = V.dims[3];
    if (V.dims[1] != p.Hkv || V.dims[2] != p.Skv || K.dims[3] != p.Dk)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                     "%s: K %s and V %s must share heads and sequence length, and K's head size must be Q's (%lld)",
                     ws, DimsToString(K.dims).c_str(), DimsToString(V.dims).c_str(), static_cast<long long>(p.Dk));
  }
  if (p.Hkv <= 0 || p.Hq % p.Hkv != 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: the query head count %lld is not a multiple of the key/value head "
                   "count %lld", ws, static_cast<long long>(p.Hq), static_cast<long long>(p.Hkv));

  // Past key/value.
  if (args.has_input(4) != args.has_input(5))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: past_key and past_value must be given together", ws);
  if (args.has_input(4)) {
    const TensorArg& pk = *args.inputs[4];
    const TensorArg& pv = *args.inputs[5];
    if (pk.dtype != p.t1 || pv.dtype != p.t2)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: past_key %s / past_value %s must have K's %s / V's %s dtype", ws,
                     DT(pk.dtype), DT(pv.dtype), DT(p.t1), DT(p.t2));
    const std::vector<int64_t> wk{p.B, p.Hkv, pk.dims.size() == 4 ? pk.dims[2] : -1, p.Dk};
    if (pk.dims != wk)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: past_key %s must be [batch %lld, kv_heads %lld, past, %lld]", ws,
                     DimsToString(pk.dims).c_str(), static_cast<long long>(p.B), static_cast<long long>(p.Hkv),
                     static_cast<long long>(p.Dk));
    p.P = pk.dims[2];
    const std::vector<int64_t> wv{p.B, p.Hkv, p.P, p.Dv};
    if (pv.dims != wv)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: past_value %s, expected %s", ws, DimsToString(pv.dims).c_str(),
                     DimsToString(wv).c_str());
  }
  p.T = p.P + p.Skv;

  // Attributes.
  if (const tsr_attr_view* a = at.Find("scale"); a && a->type != TSR_ATTR_FLOAT)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'scale' must be a float", ws);
  p.scale = at.Float("scale", p.Dk > 0 ? 1.f / std::sqrt(static_cast<float>(p.Dk)) : 1.f);
  if (!std::isfinite(p.scale))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'scale' must be finite, got %g", ws,
                   static_cast<double>(p.scale));
  p.softcap = at.Float("softcap", 0.f);
  if (!(p.softcap >= 0.f) || std::isinf(p.softcap))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'softcap' must be finite and >= 0, got %g", ws,
                   static_cast<double>(p.softcap));
  const int64_t causal = at.Int("is_causal", 0);
  if (causal != 0 && causal != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'is_causal' must be 0 or 1, got %lld", ws,
                   static_cast<long long>(causal));
  p.causal = causal == 1;
  const int64_t mode = at.Int("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'qk_matmul_output_mode' must be 0..3, got %lld", ws,
                   static_cast<long long>(mode));
  p.mode = static_cast<int>(mode);
  // softmax_precision only names a wider type for the softmax; the kernel always computes in f32 (>= every T1
  // except f64, where f32 stays well inside ONNX's tolerance).
  if (const tsr_attr_view* a = at.Find("softmax_precision")) {
    const int64_t sp = a->type == TSR_ATTR_INT ? a->i : -1;
    if (sp != TSR_DTYPE_F32 && sp != TSR_DTYPE_F16 && sp != TSR_DTYPE_BF16 && sp != TSR_DTYPE_F64)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                     "%s: attribute 'softmax_precision' must be a float dtype id (1, 10, 11 or 16), got %lld", ws,
                     static_cast<long long>(sp));
  }

  // Mask: right-aligned against [B, Hq, Sq, T]; the last dim may be shorter (padded with masked keys).
  if (args.has_input(3)) {
    const TensorArg& m = *args.inputs[3];
    if (!IsMaskDt(m.dtype))
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: attn_mask has dtype %s; expected bool or a numeric type", ws,
                     DT(m.dtype));
    const std::vector<int64_t> target{p.B, p.Hq, p.Sq, p.T};
    const size_t r = m.dims.size();
    bool ok = r >= 1 && r <= 4;
    int64_t stride = 1;
    if (ok) {
      p.mlen = m.dims[r - 1];
      ok = p.mlen <= p.T;
      stride = p.mlen;
    }
    for (int d = 2; ok && d >= 0; --d) {
      const int md = d - static_cast<int>(4 - r);
      if (md < 0) {
        p.mstride[d] = 0;
        continue;
      }
      const int64_t v = m.dims[static_cast<size_t>(md)];
      if (v != 1 && v != target[static_cast<size_t>(d)]) ok = false;
      p.mstride[d] = v == 1 ? 0 : stride;
      stride *= v;
    }
    if (!ok)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                     "%s: attn_mask %s does not broadcast to [batch, q_heads, q_seq, total_seq] = %s (the last dim may "
                     "be shorter than total_seq)", ws, DimsToString(m.dims).c_str(), DimsToString(target).c_str());
    p.mask_dt = m.dtype;
  }
  if (args.has_input(6)) {
    const TensorArg& s = *args.inputs[6];
    if (s.dtype != TSR_DTYPE_I64 || s.dims != std::vector<int64_t>{p.B})
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: nonpad_kv_seqlen is %s %s, expected i64 [%lld]", ws, DT(s.dtype),
                     DimsToString(s.dims).c_str(), static_cast<long long>(p.B));
    if (p.P > 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: nonpad_kv_seqlen cannot be used together with past_key/past_value",
                     ws);
    p.nonpad = true;
  }

  // Outputs (shapes given by the compiler; checked for consistency).
  const std::vector<int64_t> ydims = p.is3d ? std::vector<int64_t>{p.B, p.Sq, p.Hq * p.Dv}
                                            : std::vector<int64_t>{p.B, p.Hq, p.Sq, p.Dv};
  Err e = CheckOutput(args, 0, "Y", p.t1, ydims);
  if (e.ok()) e = CheckOutput(args, 1, "present_key", p.t1, {p.B, p.Hkv, p.T, p.Dk});
  if (e.ok()) e = CheckOutput(args, 2, "present_value", p.t2, {p.B, p.Hkv, p.T, p.Dv});
  if (e.ok()) e = CheckOutput(args, 3, "qk_matmul_output", p.t1, {p.B, p.Hq, p.Sq, p.T});
  if (!e.ok()) return e;
  p.nin = args.inputs.size();
  p.nout = args.outputs.size();
  *out = std::make_unique<OnnxAttentionKernel>(p, w);
  return Err::Ok();
}

std::string ClaimOnnxAttention(const tsr_node_view& n, const tsr_graph_view& g) {
  static const char* kNames[] = {"Q", "K", "V"};
  for (uint32_t i = 0; i < 3; ++i) {
    const int32_t dt = ClaimInputDType(n, g, i);
    if (!IsFloatDt(dt))
      return std::string("CPU Attention: ") + kNames[i] + " has dtype " + DT(dt) + " (supports f32 f16 bf16 f64)";
  }
  const int32_t mt = ClaimInputDType(n, g, 3);
  if (mt != TSR_DTYPE_UNDEFINED && !IsMaskDt(mt))
    return std::string("CPU Attention: attn_mask has dtype ") + DT(mt) + " (supports bool and numeric types)";
  const int32_t st = ClaimInputDType(n, g, 6);
  if (st != TSR_DTYPE_UNDEFINED && st != TSR_DTYPE_I64)
    return std::string("CPU Attention: nonpad_kv_seqlen has dtype ") + DT(st) + " (supports i64)";
  return "";
}

// ---- RotaryEmbedding ---------------------------------------------------------------

struct RotaryParams {
  int64_t B = 0, H = 0, S = 0, D = 0, rd = 0;  // rd: rotated channels per head (even, <= D)
  bool is3d = false, interleaved = false, has_pos = false;
  int64_t max_pos = 0;  // cache rows when position_ids are given
  int32_t dt = TSR_DTYPE_F32;
};

class RotaryKernel final : public Kernel {
 public:
  RotaryKernel(RotaryParams p, std::string describe) : p_(p), describe_(std::move(describe)) {}

  Err Run(const void* const* in, void* const* out) const override {
    const RotaryParams& p = p_;
    const int64_t* pos = p.has_pos ? static_cast<const int64_t*>(in[3]) : nullptr;
    if (pos) {
      for (int64_t i = 0; i < p.B * p.S; ++i)
        if (pos[i] < 0 || pos[i] >= p.max_pos)
          return MakeErr(TSR_ERR_OUT_OF_RANGE, "%s: position_ids[%lld][%lld] = %lld is outside the cache's %lld rows",
                         describe_.c_str(), static_cast<long long>(i / p.S), static_cast<long long>(i % p.S),
                         static_cast<long long>(pos[i]), static_cast<long long>(p.max_pos));
    }
    const int64_t half = p.rd / 2, D = p.D;
    const int64_t rows = p.B * p.S * p.H;  // ordered (b, s, h)
    ParallelFor(rows, 64, [&](int64_t r0, int64_t r1) {
      thread_local std::vector<float> buf;
      buf.resize(static_cast<size_t>(D + 2 * half + 1));
      float* x = buf.data();
      float* c = x + D;
      float* sn = c + half;
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t h = r % p.H, bs = r / p.H, b = bs / p.S, s = bs % p.S;
        const int64_t off = p.is3d ? r * D : ((b * p.H + h) * p.S + s) * D;
        const int64_t crow = (pos ? pos[bs] : bs) * half;
        ToF32(in[0], p.dt, off, D, x);
        ToF32(in[1], p.dt, crow, half, c);
        ToF32(in[2], p.dt, crow, half, sn);
        if (p.interleaved) {
          for (int64_t k = 0; k < half; ++k) {
            const float x1 = x[2 * k], x2 = x[2 * k + 1];
            x[2 * k] = c[k] * x1 - sn[k] * x2;
            x[2 * k + 1] = sn[k] * x1 + c[k] * x2;
          }
        } else {
          for (int64_t k = 0; k < half; ++k) {
            const float x1 = x[k], x2 = x[k + half];
            x[k] = c[k] * x1 - sn[k] * x2;
            x[k + half] = sn[k] * x1 + c[k] * x2;
          }
        }
        FromF32(x, D, p.dt, out[0], off);
      }
    });
    return Err::Ok();
  }

 private:
  RotaryParams p_;
  std::string describe_;
};

Err CreateRotary(const NodeArgs& args, std::unique_ptr<Kernel>* out) {
  const std::string w = args.Describe();
  const char* ws = w.c_str();
  if (args.inputs.size() < 3 || args.inputs.size() > 4 || !args.has_input(0) || !args.has_input(1) ||
      !args.has_input(2) || args.outputs.size() != 1 || !args.outputs[0])
    return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                   "%s: expected inputs X, cos_cache, sin_cache [, position_ids] and one output", ws);
  const TensorArg& X = *args.inputs[0];
  const TensorArg& C = *args.inputs[1];
  const TensorArg& S = *args.inputs[2];
  RotaryParams p;
  p.dt = X.dtype;
  if (p.dt != TSR_DTYPE_F32 && p.dt != TSR_DTYPE_F16 && p.dt != TSR_DTYPE_BF16)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: input has dtype %s; expected f32, f16 or bf16", ws, DT(p.dt));
  if (C.dtype != p.dt || S.dtype != p.dt)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: cos_cache (%s) and sin_cache (%s) must have the input's dtype %s",
                   ws, DT(C.dtype), DT(S.dtype), DT(p.dt));
  plugin::NodeAttrs at = args.attrs();
  const int64_t num_heads = at.Int("num_heads", 0);
  const int64_t rot = at.Int("rotary_embedding_dim", 0);
  const int64_t inter = at.Int("interleaved", 0);
  if (inter != 0 && inter != 1)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'interleaved' must be 0 or 1, got %lld", ws,
                   static_cast<long long>(inter));
  p.interleaved = inter == 1;
  if (X.dims.size() == 4) {
    p.B = X.dims[0];
    p.H = X.dims[1];
    p.S = X.dims[2];
    p.D = X.dims[3];
  } else if (X.dims.size() == 3) {
    if (num_heads <= 0 || X.dims[2] % num_heads != 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                     "%s: a 3-D input %s needs the attribute num_heads > 0 dividing its hidden size (got %lld)", ws,
                     DimsToString(X.dims).c_str(), static_cast<long long>(num_heads));
    p.is3d = true;
    p.B = X.dims[0];
    p.S = X.dims[1];
    p.H = num_heads;
    p.D = X.dims[2] / num_heads;
  } else {
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input must have rank 3 or 4, got %s", ws,
                   DimsToString(X.dims).c_str());
  }
  p.rd = rot == 0 ? p.D : rot;
  if (rot < 0 || p.rd > p.D || p.rd % 2 != 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                   "%s: the rotary dimension %lld must be even and at most the head size %lld", ws,
                   static_cast<long long>(p.rd), static_cast<long long>(p.D));
  p.has_pos = args.has_input(3);
  const int64_t half = p.rd / 2;
  if (p.has_pos) {
    const TensorArg& P = *args.inputs[3];
    if (P.dtype != TSR_DTYPE_I64 || P.dims != std::vector<int64_t>{p.B, p.S})
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: position_ids is %s %s, expected i64 [%lld, %lld]", ws,
                     DT(P.dtype), DimsToString(P.dims).c_str(), static_cast<long long>(p.B),
                     static_cast<long long>(p.S));
    if (C.dims.size() != 2 || C.dims[1] != half || S.dims != C.dims)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                     "%s: with position_ids, cos_cache %s and sin_cache %s must both be [max_position, %lld]", ws,
                     DimsToString(C.dims).c_str(), DimsToString(S.dims).c_str(), static_cast<long long>(half));
    p.max_pos = C.dims[0];
  } else {
    const std::vector<int64_t> want{p.B, p.S, half};
    if (C.dims != want || S.dims != want)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT,
                     "%s: without position_ids, cos_cache %s and sin_cache %s must both be [batch, seq, rotary_dim/2] "
                     "= %s", ws, DimsToString(C.dims).c_str(), DimsToString(S.dims).c_str(),
                     DimsToString(want).c_str());
  }
  const TensorArg& Y = *args.outputs[0];
  if (Y.dtype != p.dt || Y.dims != X.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output is %s %s, expected the input's %s %s", ws, DT(Y.dtype),
                   DimsToString(Y.dims).c_str(), DT(p.dt), DimsToString(X.dims).c_str());
  *out = std::make_unique<RotaryKernel>(p, w);
  return Err::Ok();
}

std::string ClaimRotary(const tsr_node_view& n, const tsr_graph_view& g) {
  std::string r = ClaimDTypeIn(n, g, 0, {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16});
  if (!r.empty()) return r;
  const int32_t pt = ClaimInputDType(n, g, 3);
  if (pt != TSR_DTYPE_UNDEFINED && pt != TSR_DTYPE_I64)
    return std::string("CPU RotaryEmbedding: position_ids has dtype ") + DT(pt) + " (supports i64)";
  return "";
}

}  // namespace

void RegisterOnnxAttentionKernels(KernelRegistry& r) {
  r.Add({"", "Attention", &CreateOnnxAttention, &ClaimOnnxAttention});
  r.Add({"", "RotaryEmbedding", &CreateRotary, &ClaimRotary});
}

}  // namespace tessera::cpu
