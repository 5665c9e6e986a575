// Portable row kernels (baseline ISA; GCC vector extensions through
// broadcast.h) and the run-time ISA dispatch of simd.h.
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/simd.h"

namespace tessera::cpu::simd {
namespace detail {
// Defined in simd_avx512.cpp (compiled with AVX-512 flags); null when that
// file was built without them. Its code may run only after DetectAvx512().
const RowFns* Avx512Table();
// Same file; null without the AVX-512 build. Its code may run only after
// DetectAvx512() and an avx512_bf16 check.
Bf16PairGemmFn Avx512Bf16PairGemm();
}  // namespace detail

namespace {

constexpr int kLanes = 16;  // independent accumulators (vectorisable without -ffast-math)

template <typename F>
void Map(const float* x, float* y, int64_t n, F f) {
  MapV4(x, y, n, f);
}

void ExpG(const float* x, float* y, int64_t n) { Map(x, y, n, [](V4 v) { return ExpV(v); }); }
void TanhG(const float* x, float* y, int64_t n) { Map(x, y, n, [](V4 v) { return TanhV(v); }); }
void ErfG(const float* x, float* y, int64_t n) { Map(x, y, n, [](V4 v) { return ErfV(v); }); }
void SigmoidG(const float* x, float* y, int64_t n) { Map(x, y, n, [](V4 v) { return SigmoidV(v); }); }
void GeluG(const float* x, float* y, int64_t n) { Map(x, y, n, [](V4 v) { return GeluV(v); }); }
void GeluTanhG(const float* x, float* y, int64_t n) { Map(x, y, n, [](V4 v) { return GeluTanhV(v); }); }

float MaxG(const float* x, int64_t n) {
  float acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] = acc[l] < x[i + l] ? x[i + l] : acc[l];
  float r = -std::numeric_limits<float>::infinity();
  for (; i < n; ++i) r = r < x[i] ? x[i] : r;
  for (int l = 0; l < kLanes; ++l) r = r < acc[l] ? acc[l] : r;
  return r;
}

float SumG(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l];
  float r = 0.f;
  for (; i < n; ++i) r += x[i];
  for (int l = 0; l < kLanes; ++l) r += acc[l];
  return r;
}

// Loads the first n < 4 floats of p, padding with `pad`.
inline V4 LoadTail(const float* p, int64_t n, float pad) {
  V4 v = Splat(pad);
  for (int64_t i = 0; i < n; ++i) v[i] = p[i];
  return v;
}

// y[i] = exp(x[i] - shift) for i < n (y may be null or x); returns the sum.
float ExpShiftSum(const float* x, float shift, float* y, int64_t n) {
  V4 acc0 = V4{}, acc1 = V4{};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    V4 e0 = ExpV(Load4(x + i) - shift), e1 = ExpV(Load4(x + i + 4) - shift);
    if (y) {
      Store4(y + i, e0);
      Store4(y + i + 4, e1);
    }
    acc0 += e0;
    acc1 += e1;
  }
  for (; i < n; i += 4) {
    int64_t m = std::min<int64_t>(4, n - i);
    V4 e = ExpV(LoadTail(x + i, m, -std::numeric_limits<float>::infinity()) - shift);
    if (y)
      for (int64_t j = 0; j < m; ++j) y[i + j] = e[j];
    acc0 += e;
  }
  acc0 += acc1;
  return (acc0[0] + acc0[1]) + (acc0[2] + acc0[3]);
}

float ExpShiftInPlaceG(float* x, int64_t n, float shift) { return ExpShiftSum(x, shift, x, n); }

void SoftmaxG(const float* x, float* y, int64_t n) {
  const float m = MaxG(x, n);
  const float mm = std::isinf(m) ? 0.f : m;  // all -inf rows: avoid -inf - -inf
  const float inv = 1.f / ExpShiftSum(x, mm, y, n);
  for (int64_t j = 0; j < n; ++j) y[j] *= inv;
}

void LogSoftmaxG(const float* x, float* y, int64_t n) {
  const float m = MaxG(x, n);
  const float mm = std::isinf(m) ? 0.f : m;
  // (x - max) first: exact for values near the max, so large inputs keep precision.
  const float lse = std::log(ExpShiftSum(x, mm, nullptr, n));
  for (int64_t j = 0; j < n; ++j) y[j] = (x[j] - mm) - lse;
}

void LayerNormG(const float* xr, const float* ps, const float* pb, float* yr, int64_t d, float eps, float* pmean,
                float* pinv) {
  const float mean = SumG(xr, d) / static_cast<float>(d);
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= d; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += (xr[i + l] - mean) * (xr[i + l] - mean);
  float ss = 0.f;
  for (; i < d; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
  for (int l = 0; l < kLanes; ++l) ss += acc[l];
  const float inv = 1.f / std::sqrt(ss / static_cast<float>(d) + eps);
  if (ps && pb) {
    for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * inv * ps[j] + pb[j];
  } else if (ps) {
    for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * inv * ps[j];
  } else if (pb) {
    for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * inv + pb[j];
  } else {
    for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * inv;
  }
  if (pmean) *pmean = mean;
  if (pinv) *pinv = inv;
}

// y[i] = exp(x[i] - shift[i]) (y may be null or x); sum[i] += that, for i < n.
void ExpShiftAccumulateG(const float* x, const float* shift, float* y, float* sum, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    V4 e = ExpV(Load4(x + i) - Load4(shift + i));
    if (y) Store4(y + i, e);
    Store4(sum + i, Load4(sum + i) + e);
  }
  for (; i < n; ++i) {
    float e = ExpV(Splat(x[i] - shift[i]))[0];
    if (y) y[i] = e;
    sum[i] += e;
  }
}

const RowFns kGeneric = {&ExpG,     &TanhG,        &ErfG,  &SigmoidG, &GeluG,      &GeluTanhG,
                         &SoftmaxG, &LogSoftmaxG, &ExpShiftInPlaceG, &MaxG, &SumG, &LayerNormG, &ExpShiftAccumulateG};

bool DetectAvx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // GCC's checks include the OS enabling the zmm/opmask state (XCR0).
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

bool CachedAvx512() {
  static const bool ok = DetectAvx512() && detail::Avx512Table() != nullptr;
  return ok;
}

const RowFns* TableFor(Isa isa) {
  if (isa == Isa::kAvx512) return CachedAvx512() ? detail::Avx512Table() : nullptr;
  return &kGeneric;
}

Isa InitialIsa() {
  const char* env = std::getenv("TESSERA_CPU_SIMD");
  if (env && std::strcmp(env, "generic") == 0) return Isa::kGeneric;
  return CachedAvx512() ? Isa::kAvx512 : Isa::kGeneric;
}

struct Active {
  explicit Active(Isa i) : fns(TableFor(i)), isa(static_cast<int>(i)) {}
  std::atomic<const RowFns*> fns;
  std::atomic<int> isa;
};

Active& State() {
  static Active s(InitialIsa());
  return s;
}

}  // namespace

const RowFns& Fns() { return *State().fns.load(std::memory_order_relaxed); }
Isa ActiveIsa() { return static_cast<Isa>(State().isa.load(std::memory_order_relaxed)); }
const char* IsaName(Isa isa) { return isa == Isa::kAvx512 ? "avx512" : "generic"; }
bool Avx512Supported() { return CachedAvx512(); }
const RowFns& GenericFns() { return kGeneric; }
const RowFns* Avx512Fns() { return TableFor(Isa::kAvx512); }

Bf16PairGemmFn Bf16PairGemm() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool bf16 = CachedAvx512() && __builtin_cpu_supports("avx512bf16");
  if (bf16 && ActiveIsa() == Isa::kAvx512) return detail::Avx512Bf16PairGemm();
#endif
  return nullptr;
}

bool SetIsaForTesting(Isa isa) {
  const RowFns* t = TableFor(isa);
  if (!t) return false;
  State().fns.store(t);
  State().isa.store(static_cast<int>(isa));
  return true;
}

}  // namespace tessera::cpu::simd
