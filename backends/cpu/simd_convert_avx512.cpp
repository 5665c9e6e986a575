// AVX-512 f32 <-> bf16 / f16 conversions (simd_convert.h); compiled with
// -mavx512f/bw/dq/vl. Bit-identical to plugin_util.h's scalar conversions:
// f32 -> bf16 is the scalar integer rounding done 16 lanes at a time (not
// vcvtneps2bf16, which flushes denormals); the f16 paths use vcvtps2ph /
// vcvtph2ps (round to nearest even, subnormals exact) with NaN lanes
// rewritten to the scalar results.
//
// ODR: no C++ library header and everything in an anonymous namespace (see
// simd_avx512.cpp); the only external symbol is detail::Avx512ConvertTable().
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <cstdint>

#include "backends/cpu/simd_convert.h"

namespace tessera::cpu::simd {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
namespace {

inline __mmask16 TailMask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }  // 0 <= n < 16
inline __m512i I32(uint32_t v) { return _mm512_set1_epi32(static_cast<int>(v)); }

// 16 f32 bit patterns -> 16 bf16 patterns in the low halves of 32-bit lanes.
inline __m512i Bf16Of(__m512i b) {
  const __m512i hi = _mm512_srli_epi32(b, 16);
  const __m512i bias = _mm512_add_epi32(_mm512_and_si512(hi, I32(1)), I32(0x7fffu));
  const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(b, bias), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, I32(0x7fffffffu)), I32(0x7f800000u));
  return _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(hi, I32(0x40u)));
}

void F32ToBf16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i a = Bf16Of(_mm512_loadu_si512(x + i));
    const __m512i b = Bf16Of(_mm512_loadu_si512(x + i + 16));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm512_cvtepi32_epi16(a));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i + 16), _mm512_cvtepi32_epi16(b));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : TailMask(n - i);
    const __m512i a = Bf16Of(_mm512_maskz_loadu_epi32(m, x + i));
    _mm512_mask_cvtepi32_storeu_epi16(y + i, m, a);
  }
}

inline __m512i WidenBf16(__m256i h) { return _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16); }

void Bf16ToF32(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm512_storeu_si512(y + i, WidenBf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
    _mm512_storeu_si512(y + i + 16, WidenBf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 16))));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : TailMask(n - i);
    _mm512_mask_storeu_epi32(y + i, m, WidenBf16(_mm256_maskz_loadu_epi16(m, x + i)));
  }
}

// vcvtps2ph with round to nearest even; NaN lanes become sign | 0x7e00.
inline __m256i HalfOf(__m512 v) {
  const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(v), 16), I32(0x8000u));
  const __m256i qnan = _mm512_cvtepi32_epi16(_mm512_or_si512(sign, I32(0x7e00u)));
  return _mm256_mask_mov_epi16(h, nan, qnan);
}

void F32ToF16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), HalfOf(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    _mm256_mask_storeu_epi16(y + i, m, HalfOf(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

// vcvtph2ps; NaN lanes get the payload shifted in without the quiet bit
// being forced (the scalar conversion keeps signalling NaNs signalling).
inline __m512 FloatOfHalf(__m256i h) {
  const __m512 f = _mm512_cvtph_ps(h);
  const __m512i w = _mm512_cvtepu16_epi32(h);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(w, I32(0x7fffu)), I32(0x7c00u));
  const __m512i bits = _mm512_or_si512(
      _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(w, I32(0x8000u)), 16), I32(0x7f800000u)),
      _mm512_slli_epi32(_mm512_and_si512(w, I32(0x3ffu)), 13));
  return _mm512_mask_mov_ps(f, nan, _mm512_castsi512_ps(bits));
}

void F16ToF32(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, FloatOfHalf(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, m, FloatOfHalf(_mm256_maskz_loadu_epi16(m, x + i)));
  }
}

const ConvertFns kAvx512 = {&F32ToBf16, &Bf16ToF32, &F32ToF16, &F16ToF32};

}  // namespace

namespace detail {
const ConvertFns* Avx512ConvertTable() { return &kAvx512; }
}  // namespace detail

#else

namespace detail {
const ConvertFns* Avx512ConvertTable() { return nullptr; }
}  // namespace detail

#endif

}  // namespace tessera::cpu::simd
