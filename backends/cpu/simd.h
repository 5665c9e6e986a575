// Run-time dispatched f32 row kernels for the CPU backend (softmax, layernorm,
// GELU and friends).
//
// Two implementations exist: a portable one (simd_generic.cpp, baseline
// x86-64 / any ISA; GCC vector extensions from broadcast.h) and an AVX-512 one
// (simd_avx512.cpp, the only TU compiled with -mavx512*). The ISA is chosen
// once, on first use: AVX-512 when the CPU reports avx512f/bw/dq/vl + fma and
// TESSERA_CPU_SIMD is not "generic"; TESSERA_CPU_SIMD=avx512 asks for AVX-512
// but still falls back when the CPU lacks it. Tests may override the choice
// with SetIsaForTesting.
//
// ODR rule for this header: declarations and plain data only. Nothing inline
// may be defined here, because simd_avx512.cpp includes it and any inline
// function it instantiated could be picked by the linker for all callers.
//
// All functions: x/y are f32 arrays of n elements (n >= 0, n == 0 is a no-op
// unless stated), y may equal x (in place) but must not partially overlap.
// Results of the two ISAs agree to a few ulp (different summation order and
// FMA contraction), not bit-for-bit.
#pragma once

#include <cstdint>

namespace tessera::cpu::simd {

enum class Isa : int { kGeneric = 0, kAvx512 = 1 };

// The table of row functions one ISA provides.
struct RowFns {
  // Elementwise y[i] = f(x[i]); the accuracy contract is the one of
  // broadcast.h's ExpV/TanhV/ErfV/SigmoidV/GeluV/GeluTanhV (relative error
  // ~3e-7; exp: x < -87.3 gives 0, overflow gives +inf, NaN stays NaN).
  void (*exp)(const float* x, float* y, int64_t n);
  void (*tanh)(const float* x, float* y, int64_t n);
  void (*erf)(const float* x, float* y, int64_t n);
  void (*sigmoid)(const float* x, float* y, int64_t n);
  void (*gelu)(const float* x, float* y, int64_t n);       // 0.5 x (1 + erf(x / sqrt 2))
  void (*gelu_tanh)(const float* x, float* y, int64_t n);  // tanh approximation
  // Softmax / log-softmax of one contiguous row of n >= 1 elements, shifted by
  // the row max (an all -inf row uses shift 0: softmax gives NaN, log-softmax
  // -inf - log(0) = NaN; a +inf element gives NaN as in the scalar formula).
  void (*softmax)(const float* x, float* y, int64_t n);
  void (*log_softmax)(const float* x, float* y, int64_t n);
  // x[j] = exp(x[j] - shift) in place; returns the sum (attention rows).
  float (*exp_shift_inplace)(float* x, int64_t n, float shift);
  // Max (-inf for n == 0; NaN elements are ignored, like `acc < v ? v : acc`)
  // and sum (0 for n == 0).
  float (*max)(const float* x, int64_t n);
  float (*sum)(const float* x, int64_t n);
  // LayerNormalization of one row of d >= 1 elements in f32 (two-pass mean
  // and population variance): y = (x - mean) * inv * scale + bias, inv =
  // 1 / sqrt(var + eps); scale/bias may be null (1 / 0). Writes *mean and
  // *inv_std when those are non-null.
  void (*layer_norm)(const float* x, const float* scale, const float* bias, float* y, int64_t d, float eps,
                     float* mean, float* inv_std);
  // e = exp(x[i] - shift[i]); y[i] = e (y may be null or x); sum[i] += e
  // (softmax over a non-last axis, vectorised over the inner elements).
  void (*exp_shift_accumulate)(const float* x, const float* shift, float* y, float* sum, int64_t n);
};

// C = alpha * A B on bf16 pairs with f32 accumulation (avx512_bf16
// vdpbf16ps). A: m rows of kp dwords (row stride lda dwords), each dword a
// bf16 pair (low half = even k). B: kp rows of ldb dwords (ldb a multiple of
// 64 and every dword up to ldb readable), dword (p, j) = the pair (B[2p][j],
// B[2p+1][j]). C: m x n f32 (row stride ldc), written (not accumulated), only
// its first n columns. Products are exact in f32; sums are f32.
using Bf16PairGemmFn = void (*)(const uint32_t* a, int64_t lda, const uint32_t* b, int64_t ldb, float* c,
                                int64_t ldc, int64_t m, int64_t n, int64_t kp, float alpha);
// The kernel when the active ISA is AVX-512 and the CPU has avx512_bf16, else null.
Bf16PairGemmFn Bf16PairGemm();

// The table of the active ISA (selected once; cheap to call per row).
const RowFns& Fns();
// The active ISA and its name ("generic" / "avx512").
Isa ActiveIsa();
const char* IsaName(Isa isa);
// True when this CPU (and OS) can run the AVX-512 path.
bool Avx512Supported();
// Forces an ISA (tests). Returns false and changes nothing when `isa` is not
// supported on this CPU. Not meant to be called while kernels run.
bool SetIsaForTesting(Isa isa);
// The tables themselves (tests compare them directly). Avx512Fns() is null
// when the CPU lacks AVX-512 (its code must never run there).
const RowFns& GenericFns();
const RowFns* Avx512Fns();

}  // namespace tessera::cpu::simd
