// AVX-512 row kernels (the only TU compiled with -mavx512f/bw/dq/vl -mfma).
//
// ODR: this file includes no C++ library header and defines everything in an
// anonymous namespace, so no inline function compiled for AVX-512 here can be
// merged with (and picked over) a baseline copy elsewhere. The only external
// symbol is detail::Avx512Table(), which the dispatcher in simd_generic.cpp
// calls only after checking the CPU. Math mirrors broadcast.h's V4 functions
// (same polynomials and range handling), 16 lanes wide with FMA.
// GCC 12 flags the deliberately undefined pass-through operand of unmasked
// AVX-512 intrinsics (_mm512_undefined_ps) as (maybe-)uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <cstdint>

#include "backends/cpu/simd.h"

namespace tessera::cpu::simd {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__) && defined(__FMA__)
namespace {

using V = __m512;

inline V Set1(float f) { return _mm512_set1_ps(f); }
inline __mmask16 TailMask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }  // 0 <= n < 16
inline V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline __mmask16 Lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
inline V Blend(__mmask16 take_b, V a, V b) { return _mm512_mask_blend_ps(take_b, a, b); }
inline V Neg(V x) { return _mm512_sub_ps(_mm512_setzero_ps(), x); }

// exp(x): k = round(x / ln2), r = x - k ln2 (two-part ln2), degree-7 Taylor
// polynomial, then scalef (p * 2^k; overflows to +inf past ln(FLT_MAX)).
// x < -87.3 (and -inf) gives 0 like ExpV; NaN propagates.
inline V Exp16(V x) {
  const V lo = Set1(-87.3f);
  V xc = _mm512_max_ps(lo, x);  // NaN x: max_ps returns its second operand, so NaN stays
  xc = _mm512_min_ps(Set1(88.8f), xc);
  const V kf = _mm512_roundscale_ps(_mm512_mul_ps(xc, Set1(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  V r = _mm512_fnmadd_ps(kf, Set1(0.693145751953125f), xc);
  r = _mm512_fnmadd_ps(kf, Set1(1.42860682030941723212e-6f), r);
  V p = Set1(1.f / 5040.f);
  p = Fma(p, r, Set1(1.f / 720.f));
  p = Fma(p, r, Set1(1.f / 120.f));
  p = Fma(p, r, Set1(1.f / 24.f));
  p = Fma(p, r, Set1(1.f / 6.f));
  p = Fma(p, r, Set1(0.5f));
  p = Fma(p, r, Set1(1.f));
  p = Fma(p, r, Set1(1.f));
  const V y = _mm512_scalef_ps(p, kf);
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ), y);  // x < lo -> 0 (NaN kept)
}

inline V Sigmoid16(V x) { return _mm512_div_ps(Set1(1.f), _mm512_add_ps(Set1(1.f), Exp16(Neg(x)))); }

inline V Tanh16(V x) {
  const V a = _mm512_abs_ps(x);
  const V z = _mm512_mul_ps(x, x);
  V p = Set1(-0.006268214931742843f);
  p = Fma(p, z, Set1(0.02106602879931721f));
  p = Fma(p, z, Set1(-0.05385033538258816f));
  p = Fma(p, z, Set1(0.1333255489362054f));
  p = Fma(p, z, Set1(-0.3333331543341419f));
  p = Fma(p, z, Set1(0.999999999556539f));
  const V small = _mm512_mul_ps(x, p);
  V big = _mm512_sub_ps(Set1(1.f), _mm512_div_ps(Set1(2.f), _mm512_add_ps(Exp16(_mm512_add_ps(a, a)), Set1(1.f))));
  big = Blend(Lt(x, _mm512_setzero_ps()), big, Neg(big));
  return Blend(Lt(a, Set1(0.55f)), big, small);
}

inline V ErfSmall16(V x) {
  const V z = _mm512_mul_ps(x, x);
  V p = Set1(7.896816025707021e-05f);
  p = Fma(p, z, Set1(-0.0008023893252846054f));
  p = Fma(p, z, Set1(0.0051899949388365535f));
  p = Fma(p, z, Set1(-0.026854772762965773f));
  p = Fma(p, z, Set1(0.11283611374145355f));
  p = Fma(p, z, Set1(-0.3761262871351559f));
  p = Fma(p, z, Set1(1.1283791664694236f));
  return _mm512_mul_ps(x, p);
}

// erfc(a) for a >= 0.95 (a >= 0): e^{-a^2} Q(1 / (1 + a/2)); 0 beyond a = 10.
inline V ErfcTail16(V a) {
  const __mmask16 far = _mm512_cmp_ps_mask(a, Set1(10.f), _CMP_GT_OQ);
  const V ac = Blend(far, a, Set1(10.f));
  const V t = _mm512_div_ps(Set1(1.f), Fma(Set1(0.5f), ac, Set1(1.f)));
  V q = Set1(0.08089925129531951f);
  q = Fma(q, t, Set1(-0.1855426515615253f));
  q = Fma(q, t, Set1(0.02637825138338436f));
  q = Fma(q, t, Set1(0.10388308832184381f));
  q = Fma(q, t, Set1(0.15891220423885855f));
  q = Fma(q, t, Set1(0.25266634881526395f));
  q = Fma(q, t, Set1(0.28105093390709346f));
  q = Fma(q, t, Set1(0.282192974589621f));
  q = Fma(q, t, Set1(-3.81954702665481e-06f));
  const V y = _mm512_mul_ps(Exp16(Neg(_mm512_mul_ps(ac, ac))), q);
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~far), y);
}

inline V Erf16(V x) {
  const V a = _mm512_abs_ps(x);
  V big = _mm512_sub_ps(Set1(1.f), ErfcTail16(a));
  big = Blend(Lt(x, _mm512_setzero_ps()), big, Neg(big));
  const V y = Blend(Lt(a, Set1(1.f)), big, ErfSmall16(x));
  return Blend(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

// 1 + erf(z), accurate for negative z (erfc(-z) there).
inline V OnePlusErf16(V z) {
  const V a = _mm512_abs_ps(z);
  const V tail = ErfcTail16(a);
  const V y = Blend(Lt(z, _mm512_setzero_ps()), _mm512_sub_ps(Set1(2.f), tail), tail);
  return Blend(Lt(a, Set1(1.f)), y, _mm512_add_ps(Set1(1.f), ErfSmall16(z)));
}

inline V Gelu16(V x) {
  return _mm512_mul_ps(_mm512_mul_ps(Set1(0.5f), x), OnePlusErf16(_mm512_mul_ps(x, Set1(0.70710678118654752f))));
}

inline V GeluTanh16(V x) {
  const V x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  const V u = _mm512_mul_ps(Set1(0.79788456080286536f), Fma(Set1(0.044715f), x3, x));
  return _mm512_mul_ps(x, Sigmoid16(_mm512_add_ps(u, u)));
}

// y[i] = F(x[i]); the tail runs masked (inactive lanes read 0, are not stored).
template <V (*F)(V)>
void Map16(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const V a = F(_mm512_loadu_ps(x + i)), b = F(_mm512_loadu_ps(x + i + 16));
    _mm512_storeu_ps(y + i, a);
    _mm512_storeu_ps(y + i + 16, b);
  }
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, F(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, m, F(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

// max_ps returns its second operand when either is NaN: NaN elements are
// ignored, as in the scalar `acc < v ? v : acc` loop.
float Max16(const float* x, int64_t n) {
  const V ninf = Set1(-__builtin_inff());
  V m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0);
    m1 = _mm512_max_ps(_mm512_loadu_ps(x + i + 16), m1);
    m2 = _mm512_max_ps(_mm512_loadu_ps(x + i + 32), m2);
    m3 = _mm512_max_ps(_mm512_loadu_ps(x + i + 48), m3);
  }
  for (; i + 16 <= n; i += 16) m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0);
  if (i < n) m1 = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, TailMask(n - i), x + i), m1);
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

float Sum16(const float* x, int64_t n) {
  V s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + i + 48));
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
  if (i < n) s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(TailMask(n - i), x + i));
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// y[i] = exp(x[i] - shift) (stored when kStore; y may be x); returns the sum.
template <bool kStore>
float ExpShiftSum16(const float* x, float shift, float* y, int64_t n) {
  const V s = Set1(shift);
  V a0 = _mm512_setzero_ps(), a1 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const V e0 = Exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
    const V e1 = Exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), s));
    if constexpr (kStore) {
      _mm512_storeu_ps(y + i, e0);
      _mm512_storeu_ps(y + i + 16, e1);
    }
    a0 = _mm512_add_ps(a0, e0);
    a1 = _mm512_add_ps(a1, e1);
  }
  for (; i + 16 <= n; i += 16) {
    const V e = Exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
    if constexpr (kStore) _mm512_storeu_ps(y + i, e);
    a0 = _mm512_add_ps(a0, e);
  }
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    const V e = Exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
    if constexpr (kStore) _mm512_mask_storeu_ps(y + i, m, e);
    a1 = _mm512_mask_add_ps(a1, m, a1, e);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

// Row shift: the max, or 0 when it is infinite (all -inf rows, +inf elements).
inline float Shift(float m) { return __builtin_isinf(m) ? 0.f : m; }

void Scale16(float* y, int64_t n, float f) {
  const V s = Set1(f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), s));
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), s));
  }
}

void Softmax16(const float* x, float* y, int64_t n) {
  const float mm = Shift(Max16(x, n));
  Scale16(y, n, 1.f / ExpShiftSum16<true>(x, mm, y, n));
}

void LogSoftmax16(const float* x, float* y, int64_t n) {
  const float mm = Shift(Max16(x, n));
  const V lse = Set1(__builtin_logf(ExpShiftSum16<false>(x, mm, nullptr, n)));
  const V s = Set1(mm);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), s), lse));
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s), lse));
  }
}

float ExpShiftInPlace16(float* x, int64_t n, float shift) { return ExpShiftSum16<true>(x, shift, x, n); }

void ExpShiftAccumulate16(const float* x, const float* shift, float* y, float* sum, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const V e = Exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(shift + i)));
    if (y) _mm512_storeu_ps(y + i, e);
    _mm512_storeu_ps(sum + i, _mm512_add_ps(_mm512_loadu_ps(sum + i), e));
  }
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    const V e = Exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, shift + i)));
    if (y) _mm512_mask_storeu_ps(y + i, m, e);
    _mm512_mask_storeu_ps(sum + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, sum + i), e));
  }
}

// y = (x - mean) * inv [* scale] [+ bias] over d elements.
template <bool kScale, bool kBias>
void Normalize16(const float* x, const float* ps, const float* pb, float* y, int64_t d, float mean, float inv) {
  const V vm = Set1(mean), vi = Set1(inv);
  auto one = [&](V xv, int64_t i, __mmask16 m) {
    V t = _mm512_mul_ps(_mm512_sub_ps(xv, vm), vi);
    if constexpr (kScale && kBias) t = Fma(t, _mm512_maskz_loadu_ps(m, ps + i), _mm512_maskz_loadu_ps(m, pb + i));
    else if constexpr (kScale) t = _mm512_mul_ps(t, _mm512_maskz_loadu_ps(m, ps + i));
    else if constexpr (kBias) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(m, pb + i));
    return t;
  };
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) _mm512_storeu_ps(y + i, one(_mm512_loadu_ps(x + i), i, 0xFFFF));
  if (i < d) {
    const __mmask16 m = TailMask(d - i);
    _mm512_mask_storeu_ps(y + i, m, one(_mm512_maskz_loadu_ps(m, x + i), i, m));
  }
}

void LayerNorm16(const float* x, const float* ps, const float* pb, float* y, int64_t d, float eps, float* pmean,
                 float* pinv) {
  const float mean = Sum16(x, d) / static_cast<float>(d);
  const V vm = Set1(mean);
  V a0 = _mm512_setzero_ps(), a1 = a0;
  int64_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const V t0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm), t1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm);
    a0 = Fma(t0, t0, a0);
    a1 = Fma(t1, t1, a1);
  }
  for (; i + 16 <= d; i += 16) {
    const V t = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
    a0 = Fma(t, t, a0);
  }
  if (i < d) {
    const __mmask16 m = TailMask(d - i);
    const V t = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vm);
    a1 = Fma(t, t, a1);
  }
  const float var = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) / static_cast<float>(d);
  const float inv = 1.f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(var + eps)));
  if (ps && pb) Normalize16<true, true>(x, ps, pb, y, d, mean, inv);
  else if (ps) Normalize16<true, false>(x, ps, pb, y, d, mean, inv);
  else if (pb) Normalize16<false, true>(x, ps, pb, y, d, mean, inv);
  else Normalize16<false, false>(x, ps, pb, y, d, mean, inv);
  if (pmean) *pmean = mean;
  if (pinv) *pinv = inv;
}

const RowFns kAvx512 = {&Map16<Exp16>,  &Map16<Tanh16>,     &Map16<Erf16>,      &Map16<Sigmoid16>,
                        &Map16<Gelu16>, &Map16<GeluTanh16>, &Softmax16,         &LogSoftmax16,
                        &ExpShiftInPlace16, &Max16,         &Sum16,             &LayerNorm16,
                        &ExpShiftAccumulate16};

// ---- bf16 pair GEMM (vdpbf16ps; needs avx512_bf16, checked by the dispatcher) ----

#define TSR_BF16_TARGET __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))

// Rows [0, MR) x columns [n0, n0 + 64) of C; columns at or past n are not stored.
template <int MR>
TSR_BF16_TARGET void Bf16Tile(const uint32_t* a, int64_t lda, const uint32_t* b, int64_t ldb, float* c, int64_t ldc,
                              int64_t n0, int64_t n, int64_t kp, float alpha) {
  __m512 acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_setzero_ps();
  const uint32_t* bp = b + n0;
  for (int64_t p = 0; p < kp; ++p, bp += ldb) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + 16);
    const __m512bh b2 = (__m512bh)_mm512_loadu_si512(bp + 32);
    const __m512bh b3 = (__m512bh)_mm512_loadu_si512(bp + 48);
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[r * lda + p]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], av, b2);
      acc[r][3] = _mm512_dpbf16_ps(acc[r][3], av, b3);
    }
  }
  const V al = Set1(alpha);
  for (int v = 0; v < 4; ++v) {
    const int64_t col = n0 + 16 * v;
    if (col >= n) break;
    const __mmask16 m = n - col >= 16 ? static_cast<__mmask16>(0xFFFF) : TailMask(n - col);
    for (int r = 0; r < MR; ++r) _mm512_mask_storeu_ps(c + r * ldc + col, m, _mm512_mul_ps(acc[r][v], al));
  }
}

TSR_BF16_TARGET void Bf16PairGemm16(const uint32_t* a, int64_t lda, const uint32_t* b, int64_t ldb, float* c,
                                    int64_t ldc, int64_t m, int64_t n, int64_t kp, float alpha) {
  for (int64_t n0 = 0; n0 < n; n0 += 64) {
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) Bf16Tile<4>(a + i * lda, lda, b, ldb, c + i * ldc, ldc, n0, n, kp, alpha);
    for (; i < m; ++i) Bf16Tile<1>(a + i * lda, lda, b, ldb, c + i * ldc, ldc, n0, n, kp, alpha);
  }
}

#undef TSR_BF16_TARGET

}  // namespace

namespace detail {
const RowFns* Avx512Table() { return &kAvx512; }
Bf16PairGemmFn Avx512Bf16PairGemm() { return &Bf16PairGemm16; }
}  // namespace detail

#else  // built without the AVX-512 flags (non-x86 target): no table, dispatch stays generic

namespace detail {
const RowFns* Avx512Table() { return nullptr; }
Bf16PairGemmFn Avx512Bf16PairGemm() { return nullptr; }
}  // namespace detail

#endif

}  // namespace tessera::cpu::simd
