// tessera_microbench: the CPU backend's kernels against this machine's
// measured peaks (Google Benchmark).
//
//   tessera_microbench [--threads=N] [google benchmark flags]
//
// Threads: --threads=N (or --threads N), else $TESSERA_THREADS, else 2. The
// same count sizes the OpenMP pool the kernels and oneDNN run on and the peak
// loops.
//
// Peaks (measured at start, printed once to stderr, stored in the JSON
// context and re-measured as the Peak/* benchmarks): fp32 FMA GFLOP/s, bf16
// dot-product GFLOP/s (AVX512_BF16; skipped with a message without it) and
// memory copy GB/s (read + write bytes, 128 MiB buffers).
//
// Kernels are created through the CPU backend's KernelRegistry from a
// one-node view, as the backend's compile does (constant weights prepacked at
// creation), and each benchmark iteration is one Kernel::Run: no session,
// plan or arena overhead. Before timing, every case's output is spot-checked
// against a naive reference; a wrong result skips the case with an error.
//
// Counters (rates over wall time): GFLOP/s for GEMM, Conv and attention
// (frac_peak = achieved / fp32 FMA peak, or / bf16 dot peak for bf16 cases);
// GB/s for softmax and layernorm (bytes = inputs read + outputs written once;
// frac_peak = achieved / the measured DRAM copy bandwidth, above 1 when the
// tensors stay in cache; frac_memcpy = achieved / a memcpy of the same bytes
// on the same threads, so a kernel as fast as copying its tensors scores 1.0
// wherever they sit).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bench/micro/one_node.h"
#include "bench/micro/peak.h"

namespace tessera::bench {
namespace {

int g_threads = 2;

std::string Fmt(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

// Rate counters of a case doing `amount` (GFLOP or GB) per iteration:
// `rate` = amount x iterations / wall time of Google Benchmark's timed loop,
// frac_peak = rate / peak (when peak > 0). Google Benchmark computes them
// from its own timer (real time: every case uses UseRealTime), so they match
// the reported times; the console prints them with a "/s" suffix, the JSON
// as plain numbers.
void SetRates(benchmark::State& st, const char* rate, double amount, double peak) {
  using benchmark::Counter;
  st.counters[rate] = Counter(amount, Counter::kIsIterationInvariantRate);
  if (peak > 0) st.counters["frac_peak"] = Counter(amount / peak, Counter::kIsIterationInvariantRate);
}

// ---- a prepared case ------------------------------------------------------------------

enum class Basis { kFp32, kBf16, kCopy };

// A created kernel plus what one run does. Built once per process and reused
// by every repetition (creation prepacks weights, as the backend's compile does).
struct Prepared {
  std::unique_ptr<OneNode> node;
  double flops = 0;  // per run (compute-bound cases)
  double bytes = 0;  // per run (memory-bound cases)
  Basis basis = Basis::kFp32;
  std::string error;  // creation / run / check failure: the case is skipped with it
};

// Setup fills a Prepared's node (inputs, outputs, attributes) and its work
// per run; Check compares the node's output after one run with a naive
// reference and returns "" when it matches, else what is wrong.
using Setup = std::function<void(Prepared&)>;
using Check = std::function<std::string(const OneNode&)>;

// The case `name`, prepared on first use: Setup, Create, one Run, Check.

Prepared& GetPrepared(const std::string& name, const Setup& setup, const Check& check, const std::string& precision) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Prepared>> cache;
  std::lock_guard<std::mutex> lock(mu);
  std::unique_ptr<Prepared>& p = cache[name];
  if (p) return *p;
  p = std::make_unique<Prepared>();
  setup(*p);
  cpu::Err e = p->node->Create(g_threads, precision);
  if (e.ok()) e = p->node->Run();
  if (!e.ok()) {
    p->error = e.message;
    return *p;
  }
  std::string bad = check(*p->node);
  if (!bad.empty()) p->error = p->node->Describe() + ": wrong result: " + bad;
  return *p;
}

void RunCase(benchmark::State& st, const std::string& name, const Setup& setup, const Check& check,
             const std::string& precision = "f32") {
  Prepared& p = GetPrepared(name, setup, check, precision);
  if (!p.error.empty()) {
    st.SkipWithError(p.error.c_str());
    return;
  }
  const Peaks& peaks = MachinePeaks(g_threads);
  for (auto _ : st) {
    cpu::Err e = p.node->Run();
    if (!e.ok()) {
      st.SkipWithError(e.message.c_str());
      return;
    }
  }
  if (p.basis == Basis::kCopy) {
    const double copy = CopyBandwidthFor(static_cast<size_t>(p.node->InputBytes(0)), g_threads);
    SetRates(st, "GB/s", p.bytes * 1e-9, peaks.copy.value);
    if (copy > 0)
      st.counters["frac_memcpy"] =
          benchmark::Counter(p.bytes * 1e-9 / copy, benchmark::Counter::kIsIterationInvariantRate);
    st.SetLabel("vs DRAM copy " + Fmt("%.3g GB/s", peaks.copy.value) + "; memcpy of the same bytes " +
                Fmt("%.3g GB/s", copy));
  } else {
    const bool bf16 = p.basis == Basis::kBf16 && peaks.bf16.value > 0;
    const double peak = bf16 ? peaks.bf16.value : peaks.fp32.value;
    SetRates(st, "GFLOP/s", p.flops * 1e-9, peak);
    st.SetLabel(std::string(bf16 ? "vs bf16 dot peak " : "vs fp32 FMA peak ") + Fmt("%.4g GFLOP/s", peak));
  }
}

// |got - want| <= tol * scale, else a message naming the element.
std::string Compare(const char* what, int64_t i, double got, double want, double scale, double tol) {
  if (std::isfinite(got) && std::fabs(got - want) <= tol * scale + 1e-6) return "";
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%s element %lld: got %g, expected %g", what, static_cast<long long>(i), got, want);
  return buf;
}

// ---- GEMM (ai.onnx.MatMul, B constant = prepacked weights) -------------------------------
// bf16 cases: A, B and Y bf16 (what the precision policy's bf16 regions give
// the kernel), compiled with precision "bf16"; oneDNN accumulates in f32.

void RegisterGemm(int64_t M, int64_t N, int64_t K, bool bf16) {
  const int32_t dt = bf16 ? TSR_DTYPE_BF16 : TSR_DTYPE_F32;
  const std::string name = std::string("GEMM/") + (bf16 ? "bf16" : "f32") + "/M" + std::to_string(M) + "_N" +
                           std::to_string(N) + "_K" + std::to_string(K);
  Setup setup = [=](Prepared& p) {
    p.node = std::make_unique<OneNode>("", "MatMul", 17);
    p.node->AddInput(dt, {M, K}, false, 1).AddInput(dt, {K, N}, true, 2).AddOutput(dt, {M, N});
    p.flops = 2.0 * M * N * K;
    p.basis = bf16 ? Basis::kBf16 : Basis::kFp32;
  };
  Check check = [=](const OneNode& n) -> std::string {
    for (int s = 0; s < 16; ++s) {
      const int64_t i = (s * 7919) % M, j = (s * 104729 + 13) % N;
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double t = static_cast<double>(n.InputAt(0, i * K + k)) * n.InputAt(1, k * N + j);
        ref += t;
        mag += std::fabs(t);
      }
      std::string e = Compare("Y", i * N + j, n.OutputAt(0, i * N + j), ref, mag, bf16 ? 2e-2 : 1e-4);
      if (!e.empty()) return e;
    }
    return "";
  };
  benchmark::RegisterBenchmark(name.c_str(),
                               [=](benchmark::State& st) { RunCase(st, name, setup, check, bf16 ? "bf16" : "f32"); })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

// ---- Conv (ai.onnx.Conv, batch 1, constant W and bias) -------------------------------------

// layout "": plain NCHW X and Y (what a lone Conv at graph edges sees: the
// kernel reorders to oneDNN's preferred layout inside); "nhwc": X and Y in the
// layout the compiler assigns between convolutions (no reorders).
void RegisterConv(int64_t C, int64_t Co, int64_t HW, int64_t k, bool bf16, const std::string& layout) {
  const int32_t dt = bf16 ? TSR_DTYPE_BF16 : TSR_DTYPE_F32;
  const int64_t pad = k / 2, H = HW, W = HW, Ho = H, Wo = W;  // stride 1, "same" padding
  const std::string name = std::string("Conv/") + (bf16 ? "bf16" : "f32") + "/" + (layout.empty() ? "nchw" : layout) +
                           "/k" + std::to_string(k) + "_C" + std::to_string(C) + "_K" + std::to_string(Co) + "_" +
                           std::to_string(HW) + "x" + std::to_string(HW);
  const bool nhwc = layout == "nhwc";
  Setup setup = [=](Prepared& p) {
    p.node = std::make_unique<OneNode>("", "Conv", 17);
    p.node->AddInput(dt, {1, C, H, W}, false, 1)
        .AddInput(dt, {Co, C, k, k}, true, 2)
        .AddInput(TSR_DTYPE_F32, {Co}, true, 3)
        .AddOutput(dt, {1, Co, Ho, Wo})
        .SetAttrInts("kernel_shape", {k, k})
        .SetAttrInts("pads", {pad, pad, pad, pad})
        .SetAttrInts("strides", {1, 1});
    if (!layout.empty()) {
      p.node->SetAttrStrings("_tsr_in_layouts", {layout, "", ""});
      p.node->SetAttrStrings("_tsr_out_layouts", {layout});
    }
    p.flops = 2.0 * Co * Ho * Wo * C * k * k;
    p.basis = bf16 ? Basis::kBf16 : Basis::kFp32;
  };
  auto xi = [=](int64_t c, int64_t h, int64_t w) { return nhwc ? (h * W + w) * C + c : (c * H + h) * W + w; };
  auto yi = [=](int64_t c, int64_t h, int64_t w) { return nhwc ? (h * Wo + w) * Co + c : (c * Ho + h) * Wo + w; };
  Check check = [=](const OneNode& n) -> std::string {
    for (int s = 0; s < 16; ++s) {
      const int64_t co = (s * 37) % Co, oh = (s * 11) % Ho, ow = (s * 5 + (s == 3 ? Wo - 1 : 0)) % Wo;
      double ref = n.InputAt(2, co), mag = std::fabs(ref);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t r = 0; r < k; ++r)
          for (int64_t q = 0; q < k; ++q) {
            const int64_t ih = oh + r - pad, iw = ow + q - pad;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            const double t =
                static_cast<double>(n.InputAt(0, xi(c, ih, iw))) * n.InputAt(1, ((co * C + c) * k + r) * k + q);
            ref += t;
            mag += std::fabs(t);
          }
      std::string e = Compare("Y", yi(co, oh, ow), n.OutputAt(0, yi(co, oh, ow)), ref, mag, bf16 ? 2e-2 : 1e-4);
      if (!e.empty()) return e;
    }
    return "";
  };
  benchmark::RegisterBenchmark(name.c_str(),
                               [=](benchmark::State& st) { RunCase(st, name, setup, check, bf16 ? "bf16" : "f32"); })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

// ---- Softmax / LayerNormalization over the last axis (f32) ------------------------------------

int64_t Rows(const std::vector<int64_t>& dims) {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < dims.size(); ++i) r *= dims[i];
  return r;
}

std::string DimsName(const std::vector<int64_t>& dims) {
  std::string s;
  for (int64_t d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

void RegisterSoftmax(std::vector<int64_t> dims) {
  const std::string name = "Softmax/f32/" + DimsName(dims);
  const int64_t D = dims.back(), R = Rows(dims);
  Setup setup = [=](Prepared& p) {
    p.node = std::make_unique<OneNode>("", "Softmax", 17);
    p.node->AddInput(TSR_DTYPE_F32, dims, false, 1).AddOutput(TSR_DTYPE_F32, dims).SetAttrInt("axis", -1);
    p.bytes = 2.0 * 4 * R * D;
    p.basis = Basis::kCopy;
  };
  Check check = [=](const OneNode& n) -> std::string {
    for (int64_t r : {int64_t{0}, R / 2, R - 1}) {
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j < D; ++j) mx = std::max(mx, static_cast<double>(n.InputAt(0, r * D + j)));
      for (int64_t j = 0; j < D; ++j) sum += std::exp(n.InputAt(0, r * D + j) - mx);
      for (int64_t j = 0; j < D; ++j) {
        const double want = std::exp(n.InputAt(0, r * D + j) - mx) / sum;
        std::string e = Compare("Y", r * D + j, n.OutputAt(0, r * D + j), want, std::fabs(want), 1e-4);
        if (!e.empty()) return e;
      }
    }
    return "";
  };
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { RunCase(st, name, setup, check); })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

void RegisterLayerNorm(std::vector<int64_t> dims) {
  const std::string name = "LayerNorm/f32/" + DimsName(dims);
  const int64_t D = dims.back(), R = Rows(dims);
  Setup setup = [=](Prepared& p) {
    p.node = std::make_unique<OneNode>("", "LayerNormalization", 17);
    p.node->AddInput(TSR_DTYPE_F32, dims, false, 1)
        .AddInput(TSR_DTYPE_F32, {D}, true, 2)
        .AddInput(TSR_DTYPE_F32, {D}, true, 3)
        .AddOutput(TSR_DTYPE_F32, dims)
        .SetAttrInt("axis", -1)
        .SetAttrFloat("epsilon", 1e-5f);
    p.bytes = 2.0 * 4 * R * D + 2.0 * 4 * D;
    p.basis = Basis::kCopy;
  };
  Check check = [=](const OneNode& n) -> std::string {
    for (int64_t r : {int64_t{0}, R / 2, R - 1}) {
      double mean = 0, var = 0;
      for (int64_t j = 0; j < D; ++j) mean += n.InputAt(0, r * D + j);
      mean /= static_cast<double>(D);
      for (int64_t j = 0; j < D; ++j) var += (n.InputAt(0, r * D + j) - mean) * (n.InputAt(0, r * D + j) - mean);
      var /= static_cast<double>(D);
      const double inv = 1.0 / std::sqrt(var + 1e-5);
      for (int64_t j = 0; j < D; ++j) {
        const double want = (n.InputAt(0, r * D + j) - mean) * inv * n.InputAt(1, j) + n.InputAt(2, j);
        std::string e = Compare("Y", r * D + j, n.OutputAt(0, r * D + j), want, 1.0, 1e-4);
        if (!e.empty()) return e;
      }
    }
    return "";
  };
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { RunCase(st, name, setup, check); })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

// ---- tessera.FusedAttention (f32, no mask) -------------------------------------------------------

void RegisterAttention(int64_t B, int64_t H, int64_t S, int64_t D, bool causal) {
  const std::string name = "Attention/f32/b" + std::to_string(B) + "_h" + std::to_string(H) + "_s" + std::to_string(S) +
                           "_d" + std::to_string(D) + (causal ? "_causal" : "");
  Setup setup = [=](Prepared& p) {
    p.node = std::make_unique<OneNode>("tessera", "FusedAttention", 1);
    p.node->AddInput(TSR_DTYPE_F32, {B, H, S, D}, false, 1)
        .AddInput(TSR_DTYPE_F32, {B, H, S, D}, false, 2)
        .AddInput(TSR_DTYPE_F32, {B, H, S, D}, false, 3)
        .AddOutput(TSR_DTYPE_F32, {B, H, S, D});
    if (causal) p.node->SetAttrInt("causal", 1);
    // Q K^T and P V (causal: the kernel skips about half; counted as done).
    p.flops = 4.0 * B * H * S * S * D;
    p.basis = Basis::kFp32;
  };
  Check check = [=](const OneNode& n) -> std::string {
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    for (int64_t bh : {int64_t{0}, B * H - 1})
      for (int64_t i : {int64_t{0}, S / 2, S - 1}) {
        const int64_t base = bh * S * D, keys = causal ? i + 1 : S;
        std::vector<double> p(static_cast<size_t>(keys));
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < keys; ++j) {
          double s = 0;
          for (int64_t d = 0; d < D; ++d)
            s += static_cast<double>(n.InputAt(0, base + i * D + d)) * n.InputAt(1, base + j * D + d);
          p[j] = s * scale;
          mx = std::max(mx, p[j]);
        }
        for (double& v : p) sum += (v = std::exp(v - mx));
        for (int64_t d = 0; d < D; ++d) {
          double want = 0;
          for (int64_t j = 0; j < keys; ++j) want += p[j] / sum * n.InputAt(2, base + j * D + d);
          const int64_t o = base + i * D + d;
          std::string e = Compare("Y", o, n.OutputAt(0, o), want, 1.0, 1e-4);
          if (!e.empty()) return e;
        }
      }
    return "";
  };
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { RunCase(st, name, setup, check); })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

// ---- the peaks as benchmarks ------------------------------------------------------------------

// Peak/<name>: one iteration = one call of `step`, which does `amount` (GFLOP
// or GB) of work; `peak` is the startup measurement it is compared with.
// `prepare` (may be empty) runs before the timed loop.
void RegisterPeak(const char* name, const PeakResult& (*which)(const Peaks&), double amount, std::function<void()> step,
                  const char* unit, std::function<void()> prepare = {}) {
  auto body = [=](benchmark::State& st) {
    const PeakResult& pk = which(MachinePeaks(g_threads));
    if (pk.value <= 0) {
      st.SkipWithError(pk.what.c_str());
      return;
    }
    if (prepare) prepare();
    for (auto _ : st) step();
    SetRates(st, unit, amount, pk.value);
    st.SetLabel(pk.what);
  };
  benchmark::RegisterBenchmark(name, body)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

// Two 128 MiB buffers for Peak/copy_dram, allocated (and touched) on first use.
struct CopyBuffers {
  struct FreeAligned {
    void operator()(void* p) const { std::free(p); }
  };
  static constexpr size_t kBytes = size_t{128} << 20;
  std::unique_ptr<void, FreeAligned> src{std::aligned_alloc(64, kBytes)}, dst{std::aligned_alloc(64, kBytes)};
  CopyBuffers() {
    if (src) std::memset(src.get(), 1, kBytes);
    if (dst) std::memset(dst.get(), 2, kBytes);
  }
  static CopyBuffers& Get() {
    static CopyBuffers b;
    return b;
  }
};

void RegisterPeaks() {
  constexpr int64_t kChunks = 128;  // about 1 ms per thread and iteration
  const int t = g_threads;
  RegisterPeak(
      "Peak/fp32_fma", [](const Peaks& p) -> const PeakResult& { return p.fp32; }, FmaF32Flops(t, kChunks) * 1e-9,
      [t] { FmaChunkF32(t, kChunks); }, "GFLOP/s");
  RegisterPeak(
      "Peak/bf16_dot", [](const Peaks& p) -> const PeakResult& { return p.bf16; }, DotBf16Flops(t, kChunks) * 1e-9,
      [t] { DotChunkBf16(t, kChunks); }, "GFLOP/s");
  RegisterPeak(
      "Peak/copy_dram", [](const Peaks& p) -> const PeakResult& { return p.copy; }, 2.0 * CopyBuffers::kBytes * 1e-9,
      [t] {
        CopyBuffers& b = CopyBuffers::Get();
        if (b.src && b.dst) CopyOnce(b.dst.get(), b.src.get(), CopyBuffers::kBytes, t);
      },
      "GB/s", [] { CopyBuffers::Get(); });
}

void RegisterAll() {
  RegisterPeaks();
  // GEMM: M x N x K; the last two are BERT-base's QKV/out projection over 2048
  // tokens and the FFN up-projection over 128 tokens.
  const int64_t gemms[][3] = {{512, 512, 512}, {1024, 1024, 1024}, {2048, 768, 768}, {128, 3072, 768}};
  for (bool bf16 : {false, true})
    for (const auto& g : gemms) RegisterGemm(g[0], g[1], g[2], bf16);
  // ResNet-50 convolutions, batch 1: (C, K, HxW, kernel).
  const int64_t convs[][4] = {{64, 64, 56, 3}, {256, 64, 56, 1}, {512, 512, 7, 3}};
  for (const auto& c : convs) RegisterConv(c[0], c[1], c[2], c[3], false, "");
  for (const auto& c : convs) RegisterConv(c[0], c[1], c[2], c[3], false, "nhwc");
  for (const auto& c : convs) RegisterConv(c[0], c[1], c[2], c[3], true, "nhwc");
  RegisterSoftmax({12, 128, 128});
  RegisterSoftmax({1, 32000});
  RegisterLayerNorm({128, 768});
  RegisterLayerNorm({4096, 768});
  RegisterAttention(1, 12, 128, 64, false);
}

// --threads=N / --threads N (removed from argv), else $TESSERA_THREADS, else 2.
// Returns false (after printing why) on a malformed value.
bool ParseThreads(int* argc, char** argv, int* out) {
  const char* value = std::getenv("TESSERA_THREADS");
  const char* from = "TESSERA_THREADS";
  int w = 1;
  for (int r = 1; r < *argc; ++r) {
    if (std::strncmp(argv[r], "--threads=", 10) == 0) {
      value = argv[r] + 10;
      from = "--threads";
    } else if (std::strcmp(argv[r], "--threads") == 0 && r + 1 < *argc) {
      value = argv[++r];
      from = "--threads";
    } else {
      argv[w++] = argv[r];
    }
  }
  *argc = w;
  argv[w] = nullptr;
  if (!value || !*value) return true;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  if (*end != '\0' || n < 1 || n > 4096) {
    std::fprintf(stderr, "tessera_microbench: %s='%s' is not a thread count (a positive integer)\n", from, value);
    return false;
  }
  *out = static_cast<int>(n);
  return true;
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  using namespace tessera::bench;
  if (!ParseThreads(&argc, argv, &g_threads)) return 2;
  omp_set_num_threads(g_threads);
  bool listing = false;  // --benchmark_list_tests: no need to measure the peaks
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--benchmark_list_tests", 22) == 0)
      listing = std::strcmp(argv[i] + 22, "=false") != 0 && std::strcmp(argv[i] + 22, "=0") != 0;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  if (listing) {
    RegisterAll();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }

  const CpuFeatures& f = Features();
  const Peaks& pk = MachinePeaks(g_threads);
  std::fprintf(stderr,
               "tessera_microbench: %s, %d thread(s)\n"
               "  peak fp32 FMA : %8.1f GFLOP/s  (%s)\n"
               "  peak bf16 dot : %8.1f GFLOP/s  (%s)\n"
               "  copy bandwidth: %8.1f GB/s     (%s)\n",
               f.brand.c_str(), g_threads, pk.fp32.value, pk.fp32.what.c_str(), pk.bf16.value, pk.bf16.what.c_str(),
               pk.copy.value, pk.copy.what.c_str());
  benchmark::AddCustomContext("tessera_threads", std::to_string(g_threads));
  benchmark::AddCustomContext("cpu_brand", f.brand);
  benchmark::AddCustomContext("peak_fp32_gflops", Fmt("%.2f", pk.fp32.value));
  benchmark::AddCustomContext("peak_fp32_how", pk.fp32.what);
  benchmark::AddCustomContext("peak_bf16_gflops", Fmt("%.2f", pk.bf16.value));
  benchmark::AddCustomContext("peak_bf16_how", pk.bf16.what);
  benchmark::AddCustomContext("copy_gbps", Fmt("%.2f", pk.copy.value));
  benchmark::AddCustomContext("copy_how", pk.copy.what);
  RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
