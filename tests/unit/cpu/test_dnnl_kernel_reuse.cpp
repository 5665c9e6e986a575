// DnnlKernel keeps its oneDNN memory objects between runs (binding slots,
// dnnl_kernel.h). These tests check that reuse never mixes up buffers: the
// same kernel run from several threads at once, more threads than slots,
// buffers that move between runs, scratch clobbered by another kernel
// between two runs, padded blocked layouts, and a bad run followed by a good one.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu::testing {
namespace {

// NCHW conv, stride 1, symmetric padding `pad`, optional bias, group 1.
std::vector<float> RefConv(const std::vector<float>& x, int64_t n, int64_t c, int64_t h, int64_t w,
                           const std::vector<float>& wt, int64_t oc, int64_t k, int64_t pad,
                           const std::vector<float>* bias) {
  const int64_t oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
  std::vector<float> y(static_cast<size_t>(n * oc * oh * ow), 0.f);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = bias ? (*bias)[o] : 0.0;
          for (int64_t ci = 0; ci < c; ++ci)
            for (int64_t ki = 0; ki < k; ++ki)
              for (int64_t kj = 0; kj < k; ++kj) {
                const int64_t yi = i + ki - pad, xj = j + kj - pad;
                if (yi < 0 || yi >= h || xj < 0 || xj >= w) continue;
                acc += static_cast<double>(x[((b * c + ci) * h + yi) * w + xj]) *
                       wt[((o * c + ci) * k + ki) * k + kj];
              }
          y[((b * oc + o) * oh + i) * ow + j] = static_cast<float>(acc);
        }
  return y;
}

// A conv node whose channel counts (24 -> 40) are not multiples of oneDNN's
// 16-channel blocks: the primitive works on padded blocked copies, so every
// run reorders input and output through scratch.
struct ConvFixture {
  static constexpr int64_t kN = 1, kC = 24, kH = 9, kW = 7, kOC = 40, kK = 3, kPad = 1;
  std::vector<float> w = RandomFloats(kOC * kC * kK * kK, -0.5f, 0.5f, 7);
  std::vector<float> b = RandomFloats(kOC, -1.f, 1.f, 8);
  OpTest t{"Conv"};

  ConvFixture() {
    t.AddInput<float>({kN, kC, kH, kW}, RandomFloats(kN * kC * kH * kW));
    t.AddInput<float>({kOC, kC, kK, kK}, w, /*is_const=*/true);
    t.AddInput<float>({kOC}, b, /*is_const=*/true);
    t.SetAttrInts("pads", {kPad, kPad, kPad, kPad});
    t.AddOutput(TSR_DTYPE_F32, {kN, kOC, kH, kW});
  }
  int64_t in_numel() const { return kN * kC * kH * kW; }
  int64_t out_numel() const { return kN * kOC * kH * kW; }
  std::vector<float> Ref(const std::vector<float>& x) const { return RefConv(x, kN, kC, kH, kW, w, kOC, kK, kPad, &b); }
};

// Largest |a - b| relative to max(1, |b|).
double MaxRelErr(const float* a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(double(b[i]))));
  return m;
}

Err RunOn(const Kernel& k, const float* x, float* y) {
  const void* in[3] = {x, nullptr, nullptr};  // weights and bias are constants (not read from in[])
  void* out[1] = {y};
  return k.Run(in, out);
}

TEST(DnnlKernelReuse, SameBuffersAcrossRunsWithScratchClobbered) {
  ConvFixture f;
  ASSERT_TRUE(f.t.Create().ok()) << f.t.last_error();
  // A second kernel with a different shape, to reuse this thread's scratch in between.
  OpTest other("Conv");
  other.AddInput<float>({1, 20, 6, 6}, RandomFloats(720, -1.f, 1.f, 99));
  other.AddInput<float>({36, 20, 3, 3}, RandomFloats(36 * 180, -1.f, 1.f, 98), true);
  other.AddOutput(TSR_DTYPE_F32, {1, 36, 4, 4});
  ASSERT_TRUE(other.Create().ok()) << other.last_error();

  AlignedBuffer x(f.in_numel() * 4), y(f.out_numel() * 4);
  float* xp = reinterpret_cast<float*>(x.data());
  float* yp = reinterpret_cast<float*>(y.data());
  for (int round = 0; round < 4; ++round) {
    std::vector<float> xv = RandomFloats(f.in_numel(), -1.f, 1.f, 100 + round);
    std::copy(xv.begin(), xv.end(), xp);
    std::fill(yp, yp + f.out_numel(), std::nanf(""));
    ASSERT_TRUE(RunOn(*f.t.kernel(), xp, yp).ok());
    EXPECT_LT(MaxRelErr(yp, f.Ref(xv)), 1e-4) << "round " << round;
    // Clobber the shared scratch (padding included) with the other kernel.
    ASSERT_TRUE(other.Run().ok()) << other.last_error();
  }
}

TEST(DnnlKernelReuse, BuffersThatMoveBetweenRuns) {
  ConvFixture f;
  ASSERT_TRUE(f.t.Create().ok()) << f.t.last_error();
  std::vector<AlignedBuffer> xs, ys;
  for (int i = 0; i < 3; ++i) {
    xs.emplace_back(f.in_numel() * 4);
    ys.emplace_back(f.out_numel() * 4);
  }
  for (int round = 0; round < 6; ++round) {
    const int i = round % 3;
    float* xp = reinterpret_cast<float*>(xs[i].data());
    float* yp = reinterpret_cast<float*>(ys[i].data());
    std::vector<float> xv = RandomFloats(f.in_numel(), -1.f, 1.f, 200 + round);
    std::copy(xv.begin(), xv.end(), xp);
    std::fill(yp, yp + f.out_numel(), 0.f);
    ASSERT_TRUE(RunOn(*f.t.kernel(), xp, yp).ok());
    EXPECT_LT(MaxRelErr(yp, f.Ref(xv)), 1e-4) << "round " << round;
  }
}

// `threads` threads run the one kernel `iters` times each, every thread on
// its own input and output, and check every result.
void RunConcurrently(int threads, int iters) {
  ConvFixture f;
  ASSERT_TRUE(f.t.Create().ok()) << f.t.last_error();
  const Kernel& k = *f.t.kernel();
  std::vector<std::vector<float>> xs, refs;
  for (int t = 0; t < threads; ++t) {
    xs.push_back(RandomFloats(f.in_numel(), -1.f, 1.f, 300 + t));
    refs.push_back(f.Ref(xs.back()));
  }
  std::atomic<int> ready{0};
  std::vector<int> bad(threads, 0), failed(threads, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      AlignedBuffer x(f.in_numel() * 4), y(f.out_numel() * 4);
      float* xp = reinterpret_cast<float*>(x.data());
      float* yp = reinterpret_cast<float*>(y.data());
      std::copy(xs[t].begin(), xs[t].end(), xp);
      ready.fetch_add(1);
      while (ready.load() < threads) std::this_thread::yield();  // start together
      for (int i = 0; i < iters; ++i) {
        std::fill(yp, yp + f.out_numel(), -7.f);
        if (!RunOn(k, xp, yp).ok()) ++failed[t];
        else if (MaxRelErr(yp, refs[t]) > 1e-4) ++bad[t];
      }
    });
  for (std::thread& th : pool) th.join();
  for (int t = 0; t < threads; ++t) {
    EXPECT_EQ(failed[t], 0) << "thread " << t;
    EXPECT_EQ(bad[t], 0) << "thread " << t << ": wrong results";
  }
}

TEST(DnnlKernelReuse, TwoThreadsAtOnce) { RunConcurrently(2, 200); }

// More threads than binding slots: some runs take the one-off binding path.
TEST(DnnlKernelReuse, MoreThreadsThanSlots) { RunConcurrently(7, 60); }

TEST(DnnlKernelReuse, MissingBufferIsAnErrorAndTheKernelStillWorks) {
  ConvFixture f;
  ASSERT_TRUE(f.t.Create().ok()) << f.t.last_error();
  AlignedBuffer x(f.in_numel() * 4), y(f.out_numel() * 4);
  float* xp = reinterpret_cast<float*>(x.data());
  float* yp = reinterpret_cast<float*>(y.data());
  Err e = RunOn(*f.t.kernel(), nullptr, yp);
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("node_Conv"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("input 0 has no data"), std::string::npos) << e.message;
  e = RunOn(*f.t.kernel(), xp, nullptr);
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("output 0 has no data"), std::string::npos) << e.message;
  std::vector<float> xv = RandomFloats(f.in_numel(), -1.f, 1.f, 400);
  std::copy(xv.begin(), xv.end(), xp);
  ASSERT_TRUE(RunOn(*f.t.kernel(), xp, yp).ok());
  EXPECT_LT(MaxRelErr(yp, f.Ref(xv)), 1e-4);
}

// A MatMul (plain layouts, no reorders) run on alternating buffers: the
// directly bound operands must follow the buffers too.
TEST(DnnlKernelReuse, MatMulAlternatingBuffers) {
  const int64_t m = 5, k = 12, n = 9;
  std::vector<float> bw = RandomFloats(k * n, -1.f, 1.f, 11);
  OpTest t("MatMul");
  t.AddInput<float>({m, k}, RandomFloats(m * k));
  t.AddInput<float>({k, n}, bw, true);
  t.AddOutput(TSR_DTYPE_F32, {m, n});
  ASSERT_TRUE(t.Create().ok()) << t.last_error();
  AlignedBuffer a0(m * k * 4), a1(m * k * 4), y0(m * n * 4), y1(m * n * 4);
  for (int round = 0; round < 4; ++round) {
    AlignedBuffer& a = round % 2 ? a1 : a0;
    AlignedBuffer& y = round % 2 ? y1 : y0;
    std::vector<float> av = RandomFloats(m * k, -1.f, 1.f, 500 + round);
    std::memcpy(a.data(), av.data(), av.size() * 4);
    const void* in[2] = {a.data(), nullptr};
    void* out[1] = {y.data()};
    ASSERT_TRUE(t.kernel()->Run(in, out).ok());
    std::vector<float> ref(m * n, 0.f);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p) acc += double(av[i * k + p]) * bw[p * n + j];
        ref[i * n + j] = static_cast<float>(acc);
      }
    EXPECT_LT(MaxRelErr(reinterpret_cast<const float*>(y.data()), ref), 1e-5) << "round " << round;
  }
}

}  // namespace
}  // namespace tessera::cpu::testing
