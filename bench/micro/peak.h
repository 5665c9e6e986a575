// Measured machine peaks for the microbenchmarks (bench/micro/): the fp32 FMA
// rate, the bf16 dot-product rate (AVX512_BF16 vdpbf16ps) and the memory copy
// bandwidth, each on `threads` OpenMP threads (the pool the CPU backend and
// oneDNN use). The vector code is compiled per function for its ISA
// (target attributes) and chosen at run time from cpuid, so the binary runs on
// any x86-64 CPU; a rate that cannot be measured here is 0 with a reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tessera::bench {

// What cpuid (and the OS, via xgetbv) says this CPU can run.
struct CpuFeatures {
  bool avx2_fma = false;     // AVX2 + FMA3, with OS support for ymm state
  bool avx512f = false;      // AVX-512F, with OS support for zmm state
  bool avx512_bf16 = false;  // AVX512_BF16 (vdpbf16ps)
  bool amx_bf16 = false;     // AMX-BF16 tiles (reported only; not measured)
  std::string brand;         // cpuid brand string, e.g. "AMD EPYC 9654 96-Core Processor"
};
const CpuFeatures& Features();

// One peak measurement. value: GFLOP/s or GB/s (0 when not measured);
// what: the loop that produced it ("avx512 fma, 16 accumulators"), or why
// there is none ("no AVX512_BF16 on this CPU").
struct PeakResult {
  double value = 0;
  std::string what;
};

// Each runs the loop `chunks` times inside one OpenMP parallel region of
// `threads` threads and returns the work done per call; the caller times it.
// (Used by the BM_Peak* benchmarks: one benchmark iteration = one call.)
// fp32 FLOPs (multiply + add = 2) per call of FmaChunkF32 / DotChunkBf16:
double FmaF32Flops(int threads, int64_t chunks);
double DotBf16Flops(int threads, int64_t chunks);
void FmaChunkF32(int threads, int64_t chunks);
void DotChunkBf16(int threads, int64_t chunks);  // no-op without AVX512_BF16

// Copies `bytes` from src to dst split over `threads` threads (memcpy per
// slice). Returns the bytes moved (read + write = 2 * bytes).
double CopyOnce(void* dst, const void* src, size_t bytes, int threads);

// Best-of-trials rates, all trials together running for about `seconds`.
PeakResult MeasureFmaF32(int threads, double seconds = 0.5);
PeakResult MeasureDotBf16(int threads, double seconds = 0.5);
// Memory copy bandwidth (read + write bytes per second, GB/s) over two
// buffers of `bytes` each (default 128 MiB: far beyond any L3 here).
PeakResult MeasureCopy(int threads, size_t bytes = size_t{128} << 20, double seconds = 1.0);

// The peaks every benchmark divides by, measured once per process (first call
// measures, later calls return the same numbers; thread-safe).
struct Peaks {
  int threads = 0;
  PeakResult fp32;  // GFLOP/s
  PeakResult bf16;  // GFLOP/s (0 without AVX512_BF16)
  PeakResult copy;  // GB/s, DRAM-sized buffers
};
const Peaks& MachinePeaks(int threads);

// Copy bandwidth (GB/s, read + write) for buffers of exactly `bytes` on
// `threads` threads, memoised per size: the yardstick of memory-bound kernels
// whose tensors fit in cache (a kernel moving the same bytes as fast as
// memcpy scores 1.0).
double CopyBandwidthFor(size_t bytes, int threads);

}  // namespace tessera::bench
