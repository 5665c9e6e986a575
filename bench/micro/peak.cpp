// Peak loops (see peak.h). The FMA and dot-product loops keep many
// independent accumulators in registers so that the loop is bound by the
// vector units' throughput, not by the FMA latency: 16 zmm accumulators cover
// a 4-cycle latency at two 512-bit FMAs per cycle (Intel server cores) and
// Zen 4's double-pumped 512-bit FMA alike.
#include "bench/micro/peak.h"

#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

namespace tessera::bench {
namespace {

constexpr int64_t kInner = 4096;  // inner iterations per chunk
constexpr int64_t kMinComputeChunks = 128;

uint64_t Xgetbv0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures Detect() {
  CpuFeatures f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1u, avx = (c >> 28) & 1u, fma = (c >> 12) & 1u;
  const uint64_t xcr0 = osxsave ? Xgetbv0() : 0;
  const bool ymm_os = (xcr0 & 0x6u) == 0x6u;    // SSE + AVX state
  const bool zmm_os = (xcr0 & 0xE6u) == 0xE6u;  // + opmask, zmm0-15 high, zmm16-31
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  unsigned b7 = 0, d7 = 0, a71 = 0;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    b7 = b;
    d7 = d;
    const unsigned sub_leaves = a;
    if (sub_leaves >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      a71 = a;
    }
  }
  const bool avx2 = (b7 >> 5) & 1u;
  f.avx2_fma = avx && avx2 && fma && ymm_os;
  f.avx512f = ((b7 >> 16) & 1u) && zmm_os;
  f.avx512_bf16 = f.avx512f && ((a71 >> 5) & 1u);
  f.amx_bf16 = (d7 >> 22) & 1u;
  char brand[49] = {};
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002u + i, &a, &b, &c, &d);
      std::memcpy(brand + 16 * i, &a, 4);
      std::memcpy(brand + 16 * i + 4, &b, 4);
      std::memcpy(brand + 16 * i + 8, &c, 4);
      std::memcpy(brand + 16 * i + 12, &d, 4);
    }
  }
  f.brand = brand;
  while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  while (!f.brand.empty() && f.brand.front() == ' ') f.brand.erase(f.brand.begin());
  return f;
}

// Results land here so the loops cannot be optimised away.
volatile float g_sink = 0;

// Sum of the 16 lanes (not _mm512_reduce_add_ps: GCC 12 warns about its
// _mm256_undefined_pd with -Wuninitialized).
__attribute__((target("avx512f"))) float Sum16(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float r = 0;
  for (float x : lanes) r += x;
  return r;
}

// Accumulator i starts at 1 + i/64 (read through a volatile, so the compiler
// cannot see the values either).
volatile float g_start_step = 1.f / 64;
__attribute__((target("avx512f"))) __m512 Start512(int i) { return _mm512_set1_ps(1.f + g_start_step * i); }
__attribute__((target("avx2"))) __m256 Start256(int i) { return _mm256_set1_ps(1.f + g_start_step * i); }

// ---- fp32 FMA ------------------------------------------------------------------
constexpr double kFlopsPerInner512 = 16.0 * 16 * 2;  // 16 accumulators x 16 lanes x (mul + add)
constexpr double kFlopsPerInner256 = 10.0 * 8 * 2;   // 10 ymm accumulators (16 ymm registers in all)

__attribute__((target("avx512f"))) float FmaLoop512(int64_t chunks) {
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  // Distinct starting values: identical recurrences would be merged into one
  // by the compiler's value numbering.
  __m512 a0 = Start512(0), a1 = Start512(1), a2 = Start512(2), a3 = Start512(3), a4 = Start512(4);
  __m512 a5 = Start512(5), a6 = Start512(6), a7 = Start512(7), a8 = Start512(8), a9 = Start512(9);
  __m512 a10 = Start512(10), a11 = Start512(11), a12 = Start512(12), a13 = Start512(13), a14 = Start512(14);
  __m512 a15 = Start512(15);
  for (int64_t i = 0; i < chunks * kInner; ++i) {
    a0 = _mm512_fmadd_ps(a0, m, c);
    a1 = _mm512_fmadd_ps(a1, m, c);
    a2 = _mm512_fmadd_ps(a2, m, c);
    a3 = _mm512_fmadd_ps(a3, m, c);
    a4 = _mm512_fmadd_ps(a4, m, c);
    a5 = _mm512_fmadd_ps(a5, m, c);
    a6 = _mm512_fmadd_ps(a6, m, c);
    a7 = _mm512_fmadd_ps(a7, m, c);
    a8 = _mm512_fmadd_ps(a8, m, c);
    a9 = _mm512_fmadd_ps(a9, m, c);
    a10 = _mm512_fmadd_ps(a10, m, c);
    a11 = _mm512_fmadd_ps(a11, m, c);
    a12 = _mm512_fmadd_ps(a12, m, c);
    a13 = _mm512_fmadd_ps(a13, m, c);
    a14 = _mm512_fmadd_ps(a14, m, c);
    a15 = _mm512_fmadd_ps(a15, m, c);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                                     _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
  return Sum16(s);
}

__attribute__((target("avx2,fma"))) float FmaLoop256(int64_t chunks) {
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  __m256 a0 = Start256(0), a1 = Start256(1), a2 = Start256(2), a3 = Start256(3), a4 = Start256(4);
  __m256 a5 = Start256(5), a6 = Start256(6), a7 = Start256(7), a8 = Start256(8), a9 = Start256(9);
  for (int64_t i = 0; i < chunks * kInner; ++i) {
    a0 = _mm256_fmadd_ps(a0, m, c);
    a1 = _mm256_fmadd_ps(a1, m, c);
    a2 = _mm256_fmadd_ps(a2, m, c);
    a3 = _mm256_fmadd_ps(a3, m, c);
    a4 = _mm256_fmadd_ps(a4, m, c);
    a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c);
    a7 = _mm256_fmadd_ps(a7, m, c);
    a8 = _mm256_fmadd_ps(a8, m, c);
    a9 = _mm256_fmadd_ps(a9, m, c);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(a8, a9));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float r = 0;
  for (float v : lanes) r += v;
  return r;
}

// ---- bf16 dot products ------------------------------------------------------------
constexpr double kFlopsPerInnerBf16 = 16.0 * 32 * 2;  // 16 accumulators x 32 bf16 products x (mul + add)

__attribute__((target("avx512f,avx512bf16"))) float DotLoopBf16(int64_t chunks) {
  const __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(2e-3f));
  const __m512bh y = _mm512_cvtne2ps_pbh(_mm512_set1_ps(3e-3f), _mm512_set1_ps(1e-3f));
  // Distinct starting values: identical recurrences would be merged into one
  // by the compiler's value numbering.
  __m512 a0 = Start512(0), a1 = Start512(1), a2 = Start512(2), a3 = Start512(3), a4 = Start512(4);
  __m512 a5 = Start512(5), a6 = Start512(6), a7 = Start512(7), a8 = Start512(8), a9 = Start512(9);
  __m512 a10 = Start512(10), a11 = Start512(11), a12 = Start512(12), a13 = Start512(13), a14 = Start512(14);
  __m512 a15 = Start512(15);
  for (int64_t i = 0; i < chunks * kInner; ++i) {
    a0 = _mm512_dpbf16_ps(a0, x, y);
    a1 = _mm512_dpbf16_ps(a1, x, y);
    a2 = _mm512_dpbf16_ps(a2, x, y);
    a3 = _mm512_dpbf16_ps(a3, x, y);
    a4 = _mm512_dpbf16_ps(a4, x, y);
    a5 = _mm512_dpbf16_ps(a5, x, y);
    a6 = _mm512_dpbf16_ps(a6, x, y);
    a7 = _mm512_dpbf16_ps(a7, x, y);
    a8 = _mm512_dpbf16_ps(a8, x, y);
    a9 = _mm512_dpbf16_ps(a9, x, y);
    a10 = _mm512_dpbf16_ps(a10, x, y);
    a11 = _mm512_dpbf16_ps(a11, x, y);
    a12 = _mm512_dpbf16_ps(a12, x, y);
    a13 = _mm512_dpbf16_ps(a13, x, y);
    a14 = _mm512_dpbf16_ps(a14, x, y);
    a15 = _mm512_dpbf16_ps(a15, x, y);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                                     _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
  return Sum16(s);
}

double FlopsPerInnerF32() {
  if (Features().avx512f) return kFlopsPerInner512;
  if (Features().avx2_fma) return kFlopsPerInner256;
  return 0;
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best rate over 10 trials of about seconds / 10 each; work(chunks) returns
// the amount of work (FLOPs or bytes) it did. Many short trials rather than a
// few long ones: on a shared machine the best short window is the closest to
// what the hardware can do.
// min_chunks: the smallest call worth timing (the FMA loops start at
// kMinComputeChunks, about 1 ms of work per thread, so that the parallel
// region's fork/join cost, large when threads must wait for a busy core,
// does not count as lost FLOPs).
template <typename Work>
double BestRate(double seconds, int64_t min_chunks, Work&& work) {
  constexpr int kTrials = 10;
  int64_t chunks = min_chunks;
  double t = 0;
  for (;;) {  // calibrate: grow until one call takes >= 5 ms
    auto t0 = std::chrono::steady_clock::now();
    work(chunks);
    t = Seconds(t0);
    if (t >= 0.005 || chunks >= (int64_t{1} << 40)) break;
    chunks *= t > 0.0005 ? 2 : 8;
  }
  const int64_t reps_per_trial = std::max<int64_t>(1, static_cast<int64_t>(seconds / kTrials / t));
  double best = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    double done = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t r = 0; r < reps_per_trial; ++r) done += work(chunks);
    const double s = Seconds(t0);
    if (s > 0) best = std::max(best, done / s);
  }
  return best;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<void, AlignedFree>;

// 64-byte aligned buffer of `bytes`, every page touched (so page faults stay
// out of the timed loops).
Buffer TouchedBuffer(size_t bytes, unsigned char fill) {
  const size_t cap = std::max<size_t>(64, (bytes + 63) / 64 * 64);
  Buffer b(std::aligned_alloc(64, cap));
  if (b) std::memset(b.get(), fill, cap);
  return b;
}

}  // namespace

const CpuFeatures& Features() {
  static const CpuFeatures f = Detect();
  return f;
}

double FmaF32Flops(int threads, int64_t chunks) {
  return FlopsPerInnerF32() * static_cast<double>(kInner) * static_cast<double>(chunks) * threads;
}

double DotBf16Flops(int threads, int64_t chunks) {
  return Features().avx512_bf16
             ? kFlopsPerInnerBf16 * static_cast<double>(kInner) * static_cast<double>(chunks) * threads
             : 0;
}

void FmaChunkF32(int threads, int64_t chunks) {
  const bool z = Features().avx512f, y = Features().avx2_fma;
  if (!z && !y) return;
#pragma omp parallel num_threads(threads)
  {
    const float r = z ? FmaLoop512(chunks) : FmaLoop256(chunks);
    if (r == 12345.f) g_sink = r;  // practically never true; keeps r alive
  }
}

void DotChunkBf16(int threads, int64_t chunks) {
  if (!Features().avx512_bf16) return;
#pragma omp parallel num_threads(threads)
  {
    const float r = DotLoopBf16(chunks);
    if (r == 12345.f) g_sink = r;
  }
}

double CopyOnce(void* dst, const void* src, size_t bytes, int threads) {
  // Slices of whole cache lines; a slice below 16 KiB is not worth a thread.
  const int64_t lines = static_cast<int64_t>((bytes + 63) / 64);
  const int t = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, lines / 256)));
  if (t <= 1) {
    std::memcpy(dst, src, bytes);
  } else {
#pragma omp parallel for num_threads(t) schedule(static)
    for (int i = 0; i < t; ++i) {
      const size_t b = std::min(bytes, static_cast<size_t>(lines * i / t) * 64);
      const size_t e = std::min(bytes, static_cast<size_t>(lines * (i + 1) / t) * 64);
      if (b < e) std::memcpy(static_cast<char*>(dst) + b, static_cast<const char*>(src) + b, e - b);
    }
  }
  return 2.0 * static_cast<double>(bytes);
}

PeakResult MeasureFmaF32(int threads, double seconds) {
  PeakResult r;
  const CpuFeatures& f = Features();
  if (!f.avx512f && !f.avx2_fma) {
    r.what = "no AVX2/FMA on this CPU: fp32 peak not measured";
    return r;
  }
  r.value = 1e-9 * BestRate(seconds, kMinComputeChunks, [&](int64_t chunks) {
              FmaChunkF32(threads, chunks);
              return FmaF32Flops(threads, chunks);
            });
  r.what =
      f.avx512f ? "avx512 vfmadd, 16 independent zmm accumulators" : "avx2 vfmadd, 10 independent ymm accumulators";
  return r;
}

PeakResult MeasureDotBf16(int threads, double seconds) {
  PeakResult r;
  if (!Features().avx512_bf16) {
    r.what = "no AVX512_BF16 on this CPU: bf16 peak not measured";
    return r;
  }
  r.value = 1e-9 * BestRate(seconds, kMinComputeChunks, [&](int64_t chunks) {
              DotChunkBf16(threads, chunks);
              return DotBf16Flops(threads, chunks);
            });
  r.what = "avx512_bf16 vdpbf16ps, 16 independent zmm accumulators";
  if (Features().amx_bf16) r.what += " (AMX-BF16 present but not measured: oneDNN's AMX peak is higher)";
  return r;
}

PeakResult MeasureCopy(int threads, size_t bytes, double seconds) {
  PeakResult r;
  Buffer src = TouchedBuffer(bytes, 1), dst = TouchedBuffer(bytes, 2);
  if (!src || !dst) {
    r.what = "could not allocate the copy buffers";
    return r;
  }
  r.value = 1e-9 * BestRate(seconds, 1, [&](int64_t chunks) {
              double moved = 0;
              for (int64_t i = 0; i < chunks; ++i) moved += CopyOnce(dst.get(), src.get(), bytes, threads);
              return moved;
            });
  r.what = "memcpy of " + std::to_string(bytes >> 20) + " MiB split over the threads (read + write bytes)";
  return r;
}

const Peaks& MachinePeaks(int threads) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<Peaks>> cache;
  std::lock_guard<std::mutex> lock(mu);
  std::unique_ptr<Peaks>& p = cache[threads];
  if (!p) {
    p = std::make_unique<Peaks>();
    p->threads = threads;
    p->fp32 = MeasureFmaF32(threads);
    p->bf16 = MeasureDotBf16(threads);
    p->copy = MeasureCopy(threads);
  }
  return *p;
}

double CopyBandwidthFor(size_t bytes, int threads) {
  static std::mutex mu;
  static std::map<std::pair<size_t, int>, double> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find({bytes, threads});
  if (it != cache.end()) return it->second;
  Buffer src = TouchedBuffer(bytes, 1), dst = TouchedBuffer(bytes, 2);
  double gbps = 0;
  if (src && dst)
    gbps = 1e-9 * BestRate(0.2, 1, [&](int64_t chunks) {
             double moved = 0;
             for (int64_t i = 0; i < chunks; ++i) moved += CopyOnce(dst.get(), src.get(), bytes, threads);
             return moved;
           });
  cache[{bytes, threads}] = gbps;
  return gbps;
}

}  // namespace tessera::bench
