// Training on the OpenCL plugin (issue 9: "training runs through the same
// plugin ABI on the OpenCL backend, matching the CPU loss curve within 1e-3").
//
// 1. Every training op the OpenCL plugin implements (kernels_training.cpp),
//    through the ABI, against the CPU plugin as the reference, with the
//    in-place bindings a training session uses (param and param.next in one
//    buffer), plus bad inputs that must fail with the node's name.
// 2. Graph-level training loops built with the compiler's autodiff and
//    optimizer passes (an MLP with SGD + momentum, a small CNN with
//    Conv/BatchNorm(training)/MaxPool and AdamW + clipping): N steps on
//    opencl:0 with strict placement against the same steps on the CPU.
// Every test skips with the plugin's reason when there is no OpenCL device.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compiler/autodiff/autodiff.h"
#include "compiler/autodiff/optimizer.h"
#include "compiler/autodiff/params.h"
#include "compiler/pass.h"
#include "graph/onnx/onnx_import.h"
#include "graph/graph.h"
#include "runtime/datasets.h"
#include "runtime/session.h"
#include "runtime/training_session.h"
#include "tessera/backend.h"
#include "tests/unit/opencl/abi_harness.h"

namespace {

// A segment of training ops: nodes default to the "tessera" domain.
struct TSeg : Seg {
  TSeg() : Seg("tessera") {}
};

// 8-byte-aligned offsets (the in-place bindings of a training session).
RunResult RunSeg(Plugin* p, TSeg& s) { return RunSeg(p, s, RunOptions{.misalign = false}); }

// |got - want| <= tol * (1 + |want|) per element; with `scaled`, <= tol * max |want| (for long float sums
// whose rounding error grows with the summands, not with the result).
::testing::AssertionResult Close(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, float tol,
                                 bool scaled = false) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  auto g = As<float>(got), w = As<float>(want);
  float mx = 0;
  for (float v : w) mx = std::max(mx, std::fabs(v));
  for (size_t i = 0; i < g.size(); ++i)
    if (!(std::fabs(g[i] - w[i]) <= (scaled ? tol * mx : tol + tol * std::fabs(w[i]))))
      return ::testing::AssertionFailure() << "element " << i << ": opencl " << g[i] << ", cpu " << w[i];
  return ::testing::AssertionSuccess();
}

class OpenCLTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    ocl_ = Load("opencl");
    if (!ocl_->error.empty()) GTEST_SKIP() << "OpenCL plugin unusable: " << ocl_->error;
    cpu_ = Load("cpu");
    ASSERT_TRUE(cpu_->error.empty()) << "the CPU plugin is the reference: " << cpu_->error;
  }
  // Runs `s` on both plugins (same inputs, same bindings) and compares every output.
  void Compare(TSeg& s, float tol = 1e-5f, bool scaled = false) {
    RunResult a = RunSeg(ocl_, s);
    ASSERT_TRUE(a.ok()) << "opencl " << a.Describe();
    RunResult b = RunSeg(cpu_, s);
    ASSERT_TRUE(b.ok()) << "cpu " << b.Describe();
    for (int o : s.outputs()) {
      ASSERT_EQ(a.outputs[o].size(), s.NBytes(o)) << "output value " << o;
      EXPECT_TRUE(Close(a.outputs[o], b.outputs[o], tol, scaled)) << "output value " << o;
    }
  }
  // Expects the OpenCL plugin to fail at `stage` with a message containing `what`.
  void ExpectError(TSeg& s, const std::string& stage, const std::string& what) {
    RunResult a = RunSeg(ocl_, s);
    ASSERT_FALSE(a.ok()) << "expected an error mentioning '" << what << "'";
    EXPECT_EQ(a.stage, stage) << a.Describe();
    EXPECT_NE(a.message.find(what), std::string::npos) << a.Describe();
  }
  Plugin* ocl_ = nullptr;
  Plugin* cpu_ = nullptr;
};

std::vector<int64_t> Labels(int64_t n, int64_t c, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<int64_t>(g() % static_cast<uint32_t>(c));
  return v;
}

// ---- losses ---------------------------------------------------------------------------------------

TEST_F(OpenCLTraining, SoftmaxCrossEntropyAndGrad) {
  struct Case {
    const char* red;
    bool ignore, smooth, i32;
  };
  for (const Case& c : {Case{"mean", false, false, false}, Case{"sum", true, false, false},
                        Case{"mean", true, true, true}, Case{"none", true, true, false}}) {
    SCOPED_TRACE(std::string(c.red) + (c.ignore ? " ignore" : "") + (c.smooth ? " smoothing" : "") +
                 (c.i32 ? " i32" : ""));
    const int64_t N = 13, C = 7;
    std::vector<int64_t> lab = Labels(N, C, 5);
    if (c.ignore) lab[2] = lab[9] = -1;
    std::vector<Attr> attrs = {AStr("reduction", c.red)};
    if (c.ignore) attrs.push_back(AInt("ignore_index", -1));
    if (c.smooth) attrs.push_back(AFloat("label_smoothing", 0.1f));
    const std::vector<int64_t> ld = c.red == std::string("none") ? std::vector<int64_t>{N} : std::vector<int64_t>{};
    TSeg s;
    int x = s.InF({N, C}, 1, -4, 4);
    int l = c.i32 ? s.In(TSR_DTYPE_I32, {N}, Bytes(std::vector<int32_t>(lab.begin(), lab.end()))) : s.InI64(lab);
    int dl = s.InF(ld, 2, 0.5f, 1.5f);
    int loss = s.OutF(ld);
    int dx = s.OutF({N, C});
    s.Node("sce", "SoftmaxCrossEntropy", {x, l}, {loss}, attrs);
    s.Node("sce_grad", "SoftmaxCrossEntropyGrad", {dl, x, l}, {dx}, attrs);
    Compare(s, 2e-6f);
  }
}

TEST_F(OpenCLTraining, MseAndGrad) {
  for (const char* red : {"mean", "sum", "none"}) {
    SCOPED_TRACE(red);
    const bool none = std::string(red) == "none";
    const std::vector<int64_t> d = {5, 9}, ld = none ? d : std::vector<int64_t>{};
    TSeg s;
    int p = s.InF(d, 3), t = s.InF(d, 4), dl = s.InF(ld, 5);
    int loss = s.OutF(ld), dp = s.OutF(d);
    s.Node("mse", "MSE", {p, t}, {loss}, {AStr("reduction", red)});
    s.Node("mse_grad", "MSEGrad", {dl, p, t}, {dp}, {AStr("reduction", red)});
    Compare(s, 2e-6f);
  }
}

// ---- optimizers --------------------------------------------------------------------------------------

TEST_F(OpenCLTraining, SgdUpdateInPlace) {
  struct Case {
    float mom, damp, wd;
    int nesterov;
  };
  for (const Case& c : {Case{0.9f, 0.f, 0.f, 0}, Case{0.9f, 0.f, 0.01f, 1}, Case{0.5f, 0.1f, 0.f, 0},
                        Case{0.f, 0.f, 0.001f, 0}}) {
    SCOPED_TRACE("momentum " + std::to_string(c.mom) + " nesterov " + std::to_string(c.nesterov));
    const std::vector<int64_t> d = {37, 11};
    TSeg s;
    int p = s.InF(d, 10), g = s.InF(d, 11);
    int lr = s.In(TSR_DTYPE_F32, {}, Bytes(std::vector<float>{0.05f}));
    std::vector<int32_t> in = {p, g, lr}, out;
    int po = s.OutF(d);
    s.Alias(po, p);
    out.push_back(po);
    if (c.mom != 0) {
      int buf = s.InF(d, 12);
      int bo = s.OutF(d);
      s.Alias(bo, buf);
      in.push_back(buf);
      out.push_back(bo);
    }
    s.Node("sgd", "SGDUpdate", in, out,
           {AFloat("momentum", c.mom), AFloat("dampening", c.damp), AFloat("weight_decay", c.wd),
            AInt("nesterov", c.nesterov)});
    Compare(s, 1e-6f);
  }
}

TEST_F(OpenCLTraining, AdamWUpdateInPlace) {
  for (int32_t step_dt : {TSR_DTYPE_F32, TSR_DTYPE_I64}) {
    SCOPED_TRACE(step_dt == TSR_DTYPE_F32 ? "f32 step" : "i64 step");
    const std::vector<int64_t> d = {129};
    TSeg s;
    int p = s.InF(d, 20), g = s.InF(d, 21), m = s.InF(d, 22, -0.1f, 0.1f), v = s.InF(d, 23, 0.f, 0.01f);
    int lr = s.In(TSR_DTYPE_F32, {1}, Bytes(std::vector<float>{1e-3f}));
    int st = step_dt == TSR_DTYPE_F32 ? s.In(TSR_DTYPE_F32, {}, Bytes(std::vector<float>{3.f}))
                                      : s.In(TSR_DTYPE_I64, {}, Bytes(std::vector<int64_t>{3}));
    int po = s.OutF(d), mo = s.OutF(d), vo = s.OutF(d);
    s.Alias(po, p);
    s.Alias(mo, m);
    s.Alias(vo, v);
    s.Node("adamw", "AdamWUpdate", {p, g, m, v, lr, st}, {po, mo, vo}, {AFloat("weight_decay", 0.01f)});
    Compare(s, 1e-6f);
  }
}

TEST_F(OpenCLTraining, GlobalNormClipInPlace) {
  for (float max_norm : {0.5f, 1000.f}) {  // clipping, and a norm below the limit (scale 1)
    SCOPED_TRACE(max_norm);
    TSeg s;
    int a = s.InF({300}, 30), b = s.InF({7, 3}, 31), c = s.InF({1}, 32);
    int ao = s.OutF({300}), bo = s.OutF({7, 3}), co = s.OutF({1}), norm = s.OutF({});
    s.Alias(ao, a);
    s.Node("clip", "GlobalNormClip", {a, b, c}, {ao, bo, co, norm}, {AFloat("max_norm", max_norm)});
    Compare(s, 1e-6f);
  }
}

// ---- BatchNormalization (training) and gradient ops ------------------------------------------------

TEST_F(OpenCLTraining, BatchNormTrainingModeWithRunningStatsInPlace) {
  const std::vector<int64_t> d = {6, 5, 4, 3};
  TSeg s;
  int x = s.InF(d, 40, -2, 3), sc = s.InF({5}, 41), bb = s.InF({5}, 42), rm = s.InF({5}, 43),
      rv = s.InF({5}, 44, 0.5f, 2.f);
  int y = s.OutF(d), rmo = s.OutF({5}), rvo = s.OutF({5});
  s.Alias(rmo, rm);
  s.Alias(rvo, rv);
  s.Node("bn", "BatchNormalization", {x, sc, bb, rm, rv}, {y, rmo, rvo},
         {AInt("training_mode", 1), AFloat("momentum", 0.8f), AFloat("epsilon", 1e-3f)}, "", 15);
  Compare(s, 2e-6f);
  // Inference mode still runs (the kernels_nn.cpp kernel).
  TSeg t;
  int xi = t.InF(d, 45), si = t.InF({5}, 46), bi = t.InF({5}, 47), mi = t.InF({5}, 48), vi = t.InF({5}, 49, 0.5f, 2);
  int yi = t.OutF(d);
  t.Node("bn_inf", "BatchNormalization", {xi, si, bi, mi, vi}, {yi}, {}, "", 15);
  Compare(t, 2e-6f);
}

TEST_F(OpenCLTraining, BatchNormGrad) {
  for (int training : {1, 0}) {
    SCOPED_TRACE(training ? "training" : "inference");
    const std::vector<int64_t> d = {4, 3, 5, 2};
    TSeg s;
    int dy = s.InF(d, 50), x = s.InF(d, 51, -1, 2), sc = s.InF({3}, 52), m = s.InF({3}, 53),
        v = s.InF({3}, 54, 0.5f, 2);
    int dx = s.OutF(d), ds = s.OutF({3}), db = s.OutF({3});
    s.Node("bng", "BatchNormGrad", {dy, x, sc, m, v}, {dx, ds, db},
           {AFloat("epsilon", 1e-5f), AInt("training_mode", training)});
    Compare(s, 1e-5f);
  }
}

TEST_F(OpenCLTraining, PoolGrads) {
  struct Case {
    std::vector<int64_t> x, y, k, strides, pads, dil;
    int include_pad;
  };
  const std::vector<Case> cases = {
      {{2, 3, 8, 8}, {2, 3, 4, 4}, {2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 0},
      {{2, 2, 7, 6}, {2, 2, 7, 6}, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 0},
      {{1, 2, 9, 9}, {1, 2, 4, 4}, {3, 3}, {2, 2}, {1, 1, 0, 0}, {1, 1}, 1},
      {{1, 2, 9, 9}, {1, 2, 5, 5}, {2, 2}, {2, 2}, {1, 1, 1, 1}, {2, 2}, 0},
      {{2, 3, 10}, {2, 3, 5}, {2}, {2}, {0, 0}, {1}, 0},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    for (const char* op : {"MaxPoolGrad", "AveragePoolGrad"}) {
      if (std::string(op) == "MaxPoolGrad" && c.include_pad) continue;
      SCOPED_TRACE(std::string(op) + " case " + std::to_string(k));
      TSeg s;
      int dy = s.InF(c.y, 60 + static_cast<uint32_t>(k));
      // Quantized x: ties inside windows check the first-maximum rule.
      std::vector<float> xv = Rand(Numel(c.x), 70 + static_cast<uint32_t>(k), -2, 2);
      for (float& f : xv) f = std::round(f * 2.f) / 2.f;
      int x = s.In(TSR_DTYPE_F32, c.x, Bytes(xv));
      int dx = s.OutF(c.x);
      std::vector<Attr> attrs = {AInts("kernel_shape", c.k), AInts("strides", c.strides), AInts("pads", c.pads),
                                 AInts("dilations", c.dil)};
      if (std::string(op) == "AveragePoolGrad") attrs.push_back(AInt("count_include_pad", c.include_pad));
      s.Node("pg", op, {dy, x}, {dx}, attrs);
      Compare(s, 1e-6f);
    }
  }
}

TEST_F(OpenCLTraining, ConvGrads) {
  struct Case {
    std::vector<int64_t> x, w, y, strides, pads, dil;
    int64_t group;
  };
  const std::vector<Case> cases = {
      {{3, 2, 8, 8}, {4, 2, 3, 3}, {3, 4, 8, 8}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1},
      {{2, 3, 9, 7}, {5, 3, 3, 2}, {2, 5, 4, 4}, {2, 2}, {0, 1, 1, 0}, {1, 1}, 1},
      {{2, 4, 9, 9}, {6, 2, 3, 3}, {2, 6, 5, 5}, {1, 1}, {0, 0, 0, 0}, {2, 2}, 2},
      {{2, 3, 11}, {4, 3, 3}, {2, 4, 5}, {2}, {1, 0}, {1}, 1},
      {{0, 2, 5, 5}, {3, 2, 3, 3}, {0, 3, 5, 5}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1},  // no images: dW = 0
      // 9 images of 2.4 MB of columns each: dX runs in two chunks (16 MiB of scratch).
      {{9, 16, 64, 64}, {4, 16, 3, 3}, {9, 4, 64, 64}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    SCOPED_TRACE("case " + std::to_string(k));
    std::vector<Attr> base = {AInts("strides", c.strides), AInts("pads", c.pads), AInts("dilations", c.dil),
                              AInt("group", c.group)};
    TSeg s;
    int dy = s.InF(c.y, 80 + static_cast<uint32_t>(k)), w = s.InF(c.w, 90 + static_cast<uint32_t>(k)),
        x = s.InF(c.x, 100 + static_cast<uint32_t>(k));
    int dx = s.OutF(c.x), dw = s.OutF(c.w);
    auto ai = base;
    ai.push_back(AInts("input_shape", c.x));
    auto aw = base;
    aw.push_back(AInts("weight_shape", c.w));
    s.Node("cgi", "ConvGradInput", {dy, w}, {dx}, ai);
    s.Node("cgw", "ConvGradWeight", {dy, x}, {dw}, aw);
    Compare(s, 1e-5f, /*scaled=*/true);
    if (c.group == 1 && k < 2) {  // the direct kernels (used for groups) on the same geometry
      SCOPED_TRACE("tessera_force_loops=1");
      TSeg d;
      int dy2 = d.InF(c.y, 80 + static_cast<uint32_t>(k)), w2 = d.InF(c.w, 90 + static_cast<uint32_t>(k)),
          x2 = d.InF(c.x, 100 + static_cast<uint32_t>(k));
      int dx2 = d.OutF(c.x), dw2 = d.OutF(c.w);
      ai.push_back(AInt("tessera_force_loops", 1));
      aw.push_back(AInt("tessera_force_loops", 1));
      d.Node("cgi_loops", "ConvGradInput", {dy2, w2}, {dx2}, ai);
      d.Node("cgw_loops", "ConvGradWeight", {dy2, x2}, {dw2}, aw);
      Compare(d, 1e-5f, /*scaled=*/true);
    }
  }
}

TEST_F(OpenCLTraining, GeluSoftmaxLayerNormGrads) {
  for (const char* ap : {"none", "tanh"}) {
    SCOPED_TRACE(std::string("GeluGrad ") + ap);
    TSeg s;
    int dy = s.InF({6, 17}, 110), x = s.InF({6, 17}, 111, -4, 4);
    int dx = s.OutF({6, 17});
    s.Node("gelu_grad", "GeluGrad", {dy, x}, {dx}, {AStr("approximate", ap)});
    Compare(s, 1e-6f);
  }
  struct Sm {
    int64_t axis;
    int log, coerce;
  };
  for (const Sm& c : {Sm{-1, 0, 0}, Sm{1, 0, 0}, Sm{1, 1, 0}, Sm{1, 0, 1}, Sm{2, 1, 0}}) {
    SCOPED_TRACE("SoftmaxGrad axis " + std::to_string(c.axis) + " log " + std::to_string(c.log) + " coerce_2d " +
                 std::to_string(c.coerce));
    const std::vector<int64_t> d = {3, 5, 7};
    // y must be a softmax (or log-softmax) output for the formula to matter; any values test the arithmetic.
    TSeg s;
    int dy = s.InF(d, 120), y = s.InF(d, 121, c.log ? -3.f : 0.f, c.log ? 0.f : 1.f);
    int dx = s.OutF(d);
    s.Node("softmax_grad", "SoftmaxGrad", {dy, y}, {dx},
           {AInt("axis", c.axis), AInt("log", c.log), AInt("coerce_2d", c.coerce)});
    Compare(s, 1e-6f);
  }
  struct Ln {
    std::vector<int64_t> x;
    int64_t axis;
    bool grads;
  };
  for (const Ln& c : {Ln{{4, 6, 10}, -1, true}, Ln{{4, 6, 10}, 1, true}, Ln{{5, 8}, -1, false}}) {
    SCOPED_TRACE("LayerNormGrad axis " + std::to_string(c.axis));
    int64_t dd = 1;
    for (size_t i = static_cast<size_t>(c.axis < 0 ? c.x.size() - 1 : c.axis); i < c.x.size(); ++i) dd *= c.x[i];
    TSeg s;
    int dy = s.InF(c.x, 130), x = s.InF(c.x, 131, -2, 3), sc = s.InF({dd}, 132);
    int dx = s.OutF(c.x);
    std::vector<int32_t> outs = {dx};
    if (c.grads) {
      outs.push_back(s.OutF({dd}));
      outs.push_back(s.OutF({dd}));
    }
    s.Node("ln_grad", "LayerNormGrad", {dy, x, sc}, outs, {AInt("axis", c.axis), AFloat("epsilon", 1e-5f)});
    Compare(s, 1e-5f);
  }
}

TEST_F(OpenCLTraining, SumAndPadOfGradientGraphs) {
  for (int n : {1, 2, 3, 4, 6}) {
    SCOPED_TRACE("Sum of " + std::to_string(n));
    TSeg s;
    std::vector<int32_t> ins;
    for (int i = 0; i < n; ++i) ins.push_back(s.InF({5, 7}, 140 + static_cast<uint32_t>(i)));
    int y = s.OutF({5, 7});
    s.Node("sum", "Sum", ins, {y}, {}, "", 13);
    Compare(s, 1e-6f);
  }
  {
    TSeg s;  // pads as a constant input (opset 13), a constant value, negative pads crop
    int x = s.InF({3, 4, 5}, 150);
    const std::vector<int64_t> pads = {0, 1, -1, 2, 0, 2};
    int p = s.Const(TSR_DTYPE_I64, {6}, Bytes(pads));
    int v = s.Const(TSR_DTYPE_F32, {}, Bytes(std::vector<float>{0.5f}));
    int y = s.OutF({5, 5, 6});
    s.Node("pad", "Pad", {x, p, v}, {y}, {}, "", 13);
    Compare(s, 0.f);
  }
  {
    TSeg s;  // attribute pads (opset 2)
    int x = s.InF({2, 3}, 151);
    int y = s.OutF({3, 7});
    s.Node("pad2", "Pad", {x}, {y}, {AInts("pads", {1, 2, 0, 2})}, "", 2);
    Compare(s, 0.f);
  }
}

TEST_F(OpenCLTraining, GatherAndSliceGrads) {
  {
    TSeg s;  // embedding rows: axis 0, repeated and negative indices
    int dy = s.InF({6, 4}, 160);
    int ix = s.InI64({2, 0, 2, -1, 4, 2});
    int dx = s.OutF({5, 4});
    s.Node("gg0", "GatherGrad", {dy, ix}, {dx}, {AInt("axis", 0), AInts("data_shape", {5, 4})});
    Compare(s, 1e-6f);
  }
  {
    TSeg s;  // axis 1, i32 indices of shape [2, 2]
    int dy = s.InF({3, 2, 2, 5}, 161);
    int ix = s.In(TSR_DTYPE_I32, {2, 2}, Bytes(std::vector<int32_t>{1, 0, 1, 3}));
    int dx = s.OutF({3, 4, 5});
    s.Node("gg1", "GatherGrad", {dy, ix}, {dx}, {AInt("axis", 1), AInts("data_shape", {3, 4, 5})});
    Compare(s, 1e-6f);
  }
  struct Sl {
    std::vector<int64_t> x, y, starts, ends, axes, steps;
  };
  for (const Sl& c : {Sl{{6, 8}, {2, 8}, {1}, {3}, {0}, {1}}, Sl{{6, 8}, {6, 3}, {-7}, {8}, {1}, {3}},
                      Sl{{5, 7, 4}, {2, 4, 4}, {4, 6}, {0, -100}, {0, 1}, {-2, -2}},
                      Sl{{5, 7}, {5, 0}, {3}, {2}, {1}, {1}}}) {
    SCOPED_TRACE("SliceGrad x " + std::to_string(c.x.size()) + "-D, y " + std::to_string(Numel(c.y)));
    TSeg s;
    int dy = s.InF(c.y, 170), x = s.InF(c.x, 171);
    const int64_t k = static_cast<int64_t>(c.starts.size());
    int st = s.Const(TSR_DTYPE_I64, {k}, Bytes(c.starts)), en = s.Const(TSR_DTYPE_I64, {k}, Bytes(c.ends));
    int ax = s.Const(TSR_DTYPE_I64, {k}, Bytes(c.axes)), sp = s.Const(TSR_DTYPE_I64, {k}, Bytes(c.steps));
    int dx = s.OutF(c.x);
    s.Node("sg", "SliceGrad", {dy, x, st, en, ax, sp}, {dx});
    Compare(s, 0.f);
  }
}

// ---- bad inputs --------------------------------------------------------------------------------------

TEST_F(OpenCLTraining, LabelOrIndexOutOfRangeFailsNamingTheNode) {
  TSeg s;
  int x = s.InF({4, 3}, 1);
  int l = s.InI64({0, 1, 3, 2});  // 3 is outside [0, 3)
  int loss = s.OutF({});
  s.Node("my_loss", "SoftmaxCrossEntropy", {x, l}, {loss});
  ExpectError(s, "execute", "my_loss");
  TSeg g;
  int dl = g.InF({}, 2), xg = g.InF({4, 3}, 3), lg = g.InI64({0, -5, 1, 2});
  int dx = g.OutF({4, 3});
  g.Node("my_grad", "SoftmaxCrossEntropyGrad", {dl, xg, lg}, {dx});
  ExpectError(g, "execute", "my_grad");
  TSeg e;
  int dy = e.InF({3, 2}, 4), ix = e.InI64({0, 7, 1});  // 7 is outside [-5, 5)
  int dx2 = e.OutF({5, 2});
  e.Node("embed_grad", "GatherGrad", {dy, ix}, {dx2}, {AInts("data_shape", {5, 2})});
  ExpectError(e, "execute", "embed_grad");
}

TEST_F(OpenCLTraining, AdamWStepBelowOneFails) {
  TSeg s;
  int p = s.InF({4}, 1), g = s.InF({4}, 2), m = s.InF({4}, 3), v = s.InF({4}, 4, 0, 1);
  int lr = s.In(TSR_DTYPE_F32, {}, Bytes(std::vector<float>{0.1f}));
  int st = s.In(TSR_DTYPE_F32, {}, Bytes(std::vector<float>{0.f}));
  int po = s.OutF({4}), mo = s.OutF({4}), vo = s.OutF({4});
  s.Node("adam_step0", "AdamWUpdate", {p, g, m, v, lr, st}, {po, mo, vo});
  ExpectError(s, "execute", "adam_step0");
}

TEST_F(OpenCLTraining, BadAttributesAndShapesFailAtCompile) {
  {
    TSeg s;  // momentum without a momentum buffer
    int p = s.InF({4}, 1), g = s.InF({4}, 2);
    int lr = s.In(TSR_DTYPE_F32, {}, Bytes(std::vector<float>{0.1f}));
    int po = s.OutF({4});
    s.Node("sgd_nobuf", "SGDUpdate", {p, g, lr}, {po}, {AFloat("momentum", 0.9f)});
    ExpectError(s, "compile", "momentum_buf");
  }
  {
    TSeg s;  // param and grad of different shapes
    int p = s.InF({4}, 1), g = s.InF({5}, 2);
    int lr = s.In(TSR_DTYPE_F32, {}, Bytes(std::vector<float>{0.1f}));
    int po = s.OutF({4});
    s.Node("sgd_shape", "SGDUpdate", {p, g, lr}, {po});
    ExpectError(s, "compile", "same shape");
  }
  {
    TSeg s;  // dY does not fit the forward convolution
    int dy = s.InF({1, 2, 5, 5}, 1), w = s.InF({2, 1, 3, 3}, 2);
    int dx = s.OutF({1, 1, 8, 8});
    s.Node("cgi_bad", "ConvGradInput", {dy, w}, {dx}, {AInts("input_shape", {1, 1, 8, 8})});
    ExpectError(s, "compile", "cgi_bad");
  }
  {
    TSeg s;  // input_shape attribute that differs from the output
    int dy = s.InF({1, 2, 8, 8}, 1), w = s.InF({2, 1, 3, 3}, 2);
    int dx = s.OutF({1, 1, 8, 8});
    s.Node("cgi_attr", "ConvGradInput", {dy, w}, {dx},
           {AInts("input_shape", {1, 1, 9, 9}), AInts("pads", {1, 1, 1, 1})});
    ExpectError(s, "compile", "input_shape");
  }
  {
    TSeg s;  // clipping without max_norm
    int a = s.InF({4}, 1);
    int ao = s.OutF({4}), n = s.OutF({});
    s.Node("clip_nomax", "GlobalNormClip", {a}, {ao, n});
    ExpectError(s, "compile", "max_norm");
  }
  {
    TSeg s;  // f64 step: not claimed, with the reason
    int p = s.InF({4}, 1), g = s.InF({4}, 2), m = s.InF({4}, 3), v = s.InF({4}, 4, 0, 1);
    int lr = s.In(TSR_DTYPE_F32, {}, Bytes(std::vector<float>{0.1f}));
    int st = s.In(TSR_DTYPE_F64, {}, Bytes(std::vector<double>{1.0}));
    int po = s.OutF({4}), mo = s.OutF({4}), vo = s.OutF({4});
    s.Node("adam_f64", "AdamWUpdate", {p, g, m, v, lr, st}, {po, mo, vo});
    ExpectError(s, "claim", "step must be f32, i32 or i64");
  }
}

// ---- graph-level training loops: opencl:0 (strict) vs cpu ---------------------------------------------

using tessera::DType;
using tessera::Graph;
using tessera::Node;
using tessera::Session;
using tessera::SessionOptions;
using tessera::Shape;
using tessera::Tensor;
using tessera::TensorType;
using tessera::Value;

Tensor RandTensor(std::vector<int64_t> dims, uint32_t seed, float scale) {
  std::vector<float> v = Rand(Numel(dims), seed, -scale, scale);
  return Tensor::FromVector<float>(DType::kF32, dims, v);
}

Value* Input(Graph& g, const std::string& n, std::vector<int64_t> d, DType dt = DType::kF32) {
  Value* v = g.AddValue(n, TensorType{dt, Shape::FromInts(d)});
  g.AddInput(v);
  return v;
}

struct Loop {
  std::vector<float> losses;
  std::string error;
};

// Lifts the trainable initializers, differentiates `loss`, appends the
// optimizer, then runs `steps` steps on `device`, copying every state output
// back to its input, with batches from `batch(step, &feeds)`.
Loop RunLoop(std::unique_ptr<Graph> g, const std::string& loss, const tessera::autodiff::OptimizerConfig& cfg,
             const std::string& device, int steps, float lr,
             const std::function<void(int, std::map<std::string, Tensor>*)>& batch) {
  namespace ad = tessera::autodiff;
  Loop out;
  auto fail = [&](const std::string& what, const tessera::Status& st) {
    out.error = what + ": " + st.ToString();
    return out;
  };
  std::vector<std::string> names = ad::TrainableInitializers(*g);
  auto init = ad::LiftParameters(*g, names);
  if (!init.ok()) return fail("LiftParameters", init.status());
  auto grads = ad::BuildGradientGraph(*g, loss, names);
  if (!grads.ok()) return fail("BuildGradientGraph", grads.status());
  auto opt = ad::AppendOptimizer(*g, *grads, cfg);
  if (!opt.ok()) return fail("AppendOptimizer", opt.status());
  SessionOptions so;
  so.devices = {device};
  so.strict = true;
  auto s = Session::FromGraph(std::move(g), so);
  if (!s.ok()) return fail("Session::FromGraph(" + device + ")", s.status());
  std::map<std::string, Tensor> state;
  for (auto& [n, t] : *init) state[n] = t;
  for (const auto& b : opt->state)
    if (!state.count(b.input)) {  // moments start at zero, shaped like their parameter
      std::string param;
      for (const auto& [p, ms] : opt->moments_of)
        if (std::find(ms.begin(), ms.end(), b.input) != ms.end()) param = p;
      const Tensor& pt = state[param];
      const std::vector<float> zeros(static_cast<size_t>(pt.num_elements()), 0.f);
      state[b.input] = Tensor::FromVector<float>(DType::kF32, pt.dims(), zeros);
    }
  for (int k = 0; k < steps; ++k) {
    std::map<std::string, Tensor> feeds_t;
    batch(k, &feeds_t);
    feeds_t[opt->lr_input] = Tensor::FromVector<float>(DType::kF32, {}, {lr});
    if (!opt->step_input.empty())
      feeds_t[opt->step_input] = Tensor::FromVector<float>(DType::kF32, {}, {static_cast<float>(k + 1)});
    std::vector<std::pair<std::string, const Tensor*>> feeds;
    for (auto& [n, t] : feeds_t) feeds.push_back({n, &t});
    std::vector<std::string> outs = {loss};
    for (const auto& b : opt->state) {
      feeds.push_back({b.input, &state[b.input]});
      outs.push_back(b.output);
    }
    std::vector<Tensor> r;
    tessera::Status st = (*s)->Run(feeds, outs, &r);
    if (!st.ok()) return fail("step " + std::to_string(k) + " on " + device, st);
    out.losses.push_back(static_cast<float>(r[0].GetAsDouble(0)));
    for (size_t i = 0; i < opt->state.size(); ++i) state[opt->state[i].input] = r[i + 1];
  }
  return out;
}

// Losses of both runs agree within `rel` (relative); prints the largest difference.
void ExpectSameCurve(const Loop& ocl, const Loop& cpu, double rel, const char* what) {
  ASSERT_TRUE(ocl.error.empty()) << ocl.error;
  ASSERT_TRUE(cpu.error.empty()) << cpu.error;
  ASSERT_EQ(ocl.losses.size(), cpu.losses.size());
  double worst = 0;
  for (size_t k = 0; k < cpu.losses.size(); ++k) {
    const double d = std::fabs(ocl.losses[k] - cpu.losses[k]) / std::max(1e-6, std::fabs(double(cpu.losses[k])));
    worst = std::max(worst, d);
    EXPECT_LE(d, rel) << "step " << k << ": opencl " << ocl.losses[k] << ", cpu " << cpu.losses[k];
  }
  // The loop must train: a curve that does not move would hide a broken update.
  EXPECT_LT(cpu.losses.back(), cpu.losses.front() * 0.9f) << what << ": the loss did not fall";
  std::printf("[ %s ] %zu steps, loss %.5f -> %.5f, max relative difference opencl vs cpu %.3g\n", what,
              cpu.losses.size(), cpu.losses.front(), cpu.losses.back(), worst);
}

bool HaveOpenCL(std::string* why) {
  Plugin* p = Load("opencl");
  *why = p->error;
  return p->error.empty();
}

// MLP 64-32-10 (Gemm, Relu, Gemm) + softmax cross-entropy, SGD with momentum 0.9.
std::unique_ptr<Graph> Mlp(int64_t batch) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  g->set_opset("tessera", 1);
  Value* x = Input(*g, "x", {batch, 64});
  Value* y = Input(*g, "labels", {batch}, DType::kI64);
  Value* w1 = g->AddConstant("w1", RandTensor({64, 32}, 1, 0.125f));
  Value* b1 = g->AddConstant("b1", RandTensor({32}, 2, 0.1f));
  Value* w2 = g->AddConstant("w2", RandTensor({10, 32}, 3, 0.17f));
  Value* b2 = g->AddConstant("b2", RandTensor({10}, 4, 0.1f));
  Node* h = g->AddNode("Gemm", {x, w1, b1}, 1, "fc1");
  Node* r = g->AddNode("Relu", {h->output(0)}, 1, "relu");
  Node* o = g->AddNode("Gemm", {r->output(0), w2, b2}, 1, "fc2");
  o->set_attr("transB", tessera::Attribute::Int(1));
  Value* loss = g->AddValue("loss");
  g->AddNodeWithOutputs("SoftmaxCrossEntropy", {o->output(0), y}, {loss}, "loss", "tessera");
  g->AddOutput(loss);
  return g;
}

void DigitsLikeBatch(int k, int64_t batch, std::vector<int64_t> xdims, std::map<std::string, Tensor>* feeds) {
  // Class-dependent means so that the loss falls within a few steps.
  std::mt19937 rng(1000 + static_cast<uint32_t>(k));
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t per = Numel(xdims) / batch;
  std::vector<float> xs(static_cast<size_t>(Numel(xdims)));
  std::vector<int64_t> ys(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) {
    ys[i] = static_cast<int64_t>(rng() % 10);
    for (int64_t j = 0; j < per; ++j)
      xs[i * per + j] = 0.5f * nd(rng) + ((j % 10) == ys[i] ? 1.5f : 0.f);
  }
  (*feeds)["x"] = Tensor::FromVector<float>(DType::kF32, xdims, xs);
  (*feeds)["labels"] = Tensor::FromVector<int64_t>(DType::kI64, {batch}, ys);
}

TEST(OpenCLTrainingLoop, MlpSgdMomentumMatchesCpu) {
  std::string why;
  if (!HaveOpenCL(&why)) GTEST_SKIP() << "OpenCL plugin unusable: " << why;
  tessera::autodiff::OptimizerConfig cfg;
  cfg.momentum = 0.9f;
  auto batch = [](int k, std::map<std::string, Tensor>* f) { DigitsLikeBatch(k, 32, {32, 64}, f); };
  Loop cpu = RunLoop(Mlp(32), "loss", cfg, "cpu", 20, 0.05f, batch);
  Loop ocl = RunLoop(Mlp(32), "loss", cfg, "opencl:0", 20, 0.05f, batch);
  ExpectSameCurve(ocl, cpu, 1e-3, "MLP SGD momentum");
}

// Conv(1->4, 3x3, pad 1) -> BatchNorm (training mode) -> Relu -> MaxPool 2 ->
// Flatten -> Gemm(64->10) + cross-entropy, AdamW with gradient clipping.
std::unique_ptr<Graph> Cnn(int64_t batch) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  g->set_opset("tessera", 1);
  Value* x = Input(*g, "x", {batch, 1, 8, 8});
  Value* y = Input(*g, "labels", {batch}, DType::kI64);
  Value* cw = g->AddConstant("conv.w", RandTensor({4, 1, 3, 3}, 11, 0.33f));
  Value* cb = g->AddConstant("conv.b", RandTensor({4}, 12, 0.1f));
  Value* bs = g->AddConstant("bn.scale", Tensor::FromVector<float>(DType::kF32, {4}, {1.f, 0.9f, 1.1f, 1.f}));
  Value* bb = g->AddConstant("bn.bias", RandTensor({4}, 13, 0.1f));
  Value* bm = g->AddConstant("bn.mean", Tensor::FromVector<float>(DType::kF32, {4}, std::vector<float>(4, 0.f)));
  Value* bv = g->AddConstant("bn.var", Tensor::FromVector<float>(DType::kF32, {4}, std::vector<float>(4, 1.f)));
  Value* fw = g->AddConstant("fc.w", RandTensor({64, 10}, 14, 0.125f));
  Value* fb = g->AddConstant("fc.b", RandTensor({10}, 15, 0.1f));
  Node* conv = g->AddNode("Conv", {x, cw, cb}, 1, "conv");
  conv->set_attr("kernel_shape", tessera::Attribute::Ints({3, 3}));
  conv->set_attr("pads", tessera::Attribute::Ints({1, 1, 1, 1}));
  Node* bn = g->AddNode("BatchNormalization", {conv->output(0), bs, bb, bm, bv}, 1, "bn");
  bn->set_attr("training_mode", tessera::Attribute::Int(1));
  Node* relu = g->AddNode("Relu", {bn->output(0)}, 1, "relu");
  Node* pool = g->AddNode("MaxPool", {relu->output(0)}, 1, "pool");
  pool->set_attr("kernel_shape", tessera::Attribute::Ints({2, 2}));
  pool->set_attr("strides", tessera::Attribute::Ints({2, 2}));
  Node* flat = g->AddNode("Flatten", {pool->output(0)}, 1, "flatten");
  Node* fc = g->AddNode("Gemm", {flat->output(0), fw, fb}, 1, "fc");
  Value* loss = g->AddValue("loss");
  g->AddNodeWithOutputs("SoftmaxCrossEntropy", {fc->output(0), y}, {loss}, "loss", "tessera");
  g->AddOutput(loss);
  return g;
}

TEST(OpenCLTrainingLoop, CnnAdamWWithClippingMatchesCpu) {
  std::string why;
  if (!HaveOpenCL(&why)) GTEST_SKIP() << "OpenCL plugin unusable: " << why;
  tessera::autodiff::OptimizerConfig cfg;
  cfg.kind = "adamw";
  cfg.weight_decay = 0.01f;
  cfg.clip_norm = 1.f;
  auto batch = [](int k, std::map<std::string, Tensor>* f) { DigitsLikeBatch(k, 16, {16, 1, 8, 8}, f); };
  Loop cpu = RunLoop(Cnn(16), "loss", cfg, "cpu", 20, 0.01f, batch);
  Loop ocl = RunLoop(Cnn(16), "loss", cfg, "opencl:0", 20, 0.01f, batch);
  ExpectSameCurve(ocl, cpu, 1e-3, "CNN AdamW clip");
}

// ---- transformer block: gradients on opencl:0 vs cpu ----------------------------------------------------

// Constant folding's evaluator: runs the node (all inputs constant) as a one-node graph on the CPU.
tessera::Result<std::vector<Tensor>> EvaluateOnCpu(const Node& n, int64_t opset) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", opset);
  g->set_opset("tessera", 1);
  std::vector<Value*> ins;
  for (size_t i = 0; i < n.num_inputs(); ++i) {
    const Value* v = n.input(i);
    if (!v) {
      ins.push_back(nullptr);
      continue;
    }
    if (!v->constant()) return tessera::Unsupported(n.Describe(), ": input ", i, " is not constant");
    ins.push_back(g->AddConstant("in" + std::to_string(i), *v->constant()));
  }
  Node* c = g->AddNode(n.op_type(), ins, n.num_outputs(), "", n.domain());
  for (const auto& [k, a] : n.attrs()) c->set_attr(k, a);
  std::vector<std::string> names;
  for (size_t o = 0; o < c->num_outputs(); ++o) {
    g->AddOutput(c->output(o));
    names.push_back(c->output(o)->name());
  }
  TSR_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::FromGraph(std::move(g), SessionOptions{}));
  std::vector<Tensor> res;
  TSR_RETURN_IF_ERROR(s->Run({}, names, &res));
  return res;
}

// d(sum(block(x) * w)) / d(every trainable initializer) of models/train_block on `device` (strict).
struct BlockGrads {
  std::vector<std::string> names;
  std::vector<Tensor> grads;
  std::string error;
};

BlockGrads RunBlock(const std::string& device) {
  namespace ad = tessera::autodiff;
  BlockGrads out;
  const std::string dir = std::string(TESSERA_MODELS_DIR) + "/train_block/";
  auto fail = [&](const std::string& what, const tessera::Status& st) {
    out.error = what + ": " + st.ToString();
    return out;
  };
  auto gr = tessera::ImportOnnxFile(dir + "model.onnx");
  if (!gr.ok()) return fail("import", gr.status());
  std::unique_ptr<Graph> g = std::move(gr).value();
  auto x = tessera::LoadNpy(dir + "x.npy");
  auto w = tessera::LoadNpy(dir + "w.npy");
  if (!x.ok() || !w.ok()) return fail("x.npy / w.npy", x.ok() ? w.status() : x.status());
  const std::vector<std::string> params = ad::TrainableInitializers(*g);
  auto init = ad::LiftParameters(*g, params);
  if (!init.ok()) return fail("LiftParameters", init.status());
  {
    tessera::PassManager pm;  // static reshape targets (the export computes them from Shape(x))
    pm.Add(tessera::CreateInferShapesPass());
    pm.Add(tessera::CreateFoldConstantsPass());
    pm.Add(tessera::CreateEliminateDeadCodePass());
    pm.Add(tessera::CreateInferShapesPass());
    tessera::PassContext ctx;
    ctx.evaluator = [opset = g->OpsetFor("")](const Node& n) { return EvaluateOnCpu(n, opset); };
    tessera::Status fs = pm.Run(*g, ctx);
    if (!fs.ok()) return fail("folding", fs);
  }
  Value* y = g->outputs()[0];
  Value* wv = g->AddConstant("opencl_test.w", *w);
  Node* mul = g->AddNode("Mul", {y, wv}, 1);
  Node* sum = g->AddNode("ReduceSum", {mul->output(0)}, 1);
  sum->set_attr("keepdims", tessera::Attribute::Int(0));
  g->AddOutput(sum->output(0));
  auto info = ad::BuildGradientGraph(*g, sum->output(0)->name(), params);
  if (!info.ok()) return fail("BuildGradientGraph", info.status());
  SessionOptions so;
  so.devices = {device};
  so.strict = true;
  auto s = Session::FromGraph(std::move(g), so);
  if (!s.ok()) return fail("Session::FromGraph(" + device + ")", s.status());
  std::vector<std::pair<std::string, const Tensor*>> feeds{{"x", &*x}};
  for (const auto& [n, t] : *init) feeds.push_back({n, &t});
  tessera::Status st = (*s)->Run(feeds, info->grads, &out.grads);
  if (!st.ok()) return fail("run on " + device, st);
  out.names = params;
  return out;
}

TEST(OpenCLTrainingLoop, TransformerBlockGradientsMatchCpu) {
  std::string why;
  if (!HaveOpenCL(&why)) GTEST_SKIP() << "OpenCL plugin unusable: " << why;
  if (!std::ifstream(std::string(TESSERA_MODELS_DIR) + "/train_block/model.onnx").good())
    GTEST_SKIP() << "models/train_block is missing (.venv/bin/python scripts/gen_train_refs.py --out models makes it)";
  BlockGrads cpu = RunBlock("cpu");
  ASSERT_TRUE(cpu.error.empty()) << cpu.error;
  BlockGrads ocl = RunBlock("opencl:0");
  ASSERT_TRUE(ocl.error.empty()) << ocl.error;
  ASSERT_EQ(ocl.grads.size(), cpu.grads.size());
  double worst = 0;
  for (size_t i = 0; i < cpu.grads.size(); ++i) {
    ASSERT_EQ(ocl.grads[i].num_elements(), cpu.grads[i].num_elements()) << cpu.names[i];
    double mx = 0, diff = 0;
    for (int64_t k = 0; k < cpu.grads[i].num_elements(); ++k) {
      mx = std::max(mx, std::fabs(cpu.grads[i].GetAsDouble(k)));
      diff = std::max(diff, std::fabs(ocl.grads[i].GetAsDouble(k) - cpu.grads[i].GetAsDouble(k)));
    }
    EXPECT_GT(mx, 0) << cpu.names[i] << ": an all-zero gradient tests nothing";
    EXPECT_LE(diff, 1e-4 * mx) << cpu.names[i];
    worst = std::max(worst, mx > 0 ? diff / mx : diff);
  }
  std::printf("[ transformer block ] %zu gradients, max |opencl - cpu| / max |cpu| = %.3g\n", cpu.grads.size(), worst);
}

// ---- TrainingSession on opencl:0 vs cpu: the models of scripts/gen_train_refs.py ---------------------

// 50 steps of models/<model> with the optimizer of its torch_ref.json (MLP:
// SGD lr 0.05 momentum 0.9; CNN: AdamW lr 1e-3 weight_decay 0.01), digits
// "train" rows [32k, 32k + 32), through TrainingSession with devices {device}.
Loop SessionLoop(const std::string& model, bool image_shape, const std::string& device) {
  Loop out;
  const std::string onnx = std::string(TESSERA_MODELS_DIR) + "/" + model + "/model.onnx";
  tessera::TrainingOptions t;
  t.loss.kind = "cross_entropy";
  t.loss.output = "logits";
  t.loss.label_input = "labels";
  if (model == "train_mlp") {
    t.optimizer.kind = "sgd";
    t.optimizer.momentum = 0.9f;
    t.lr.base_lr = 0.05;
  } else {
    t.optimizer.kind = "adamw";
    t.optimizer.weight_decay = 0.01f;
    t.lr.base_lr = 1e-3;
  }
  t.lr.kind = "constant";
  SessionOptions so;
  so.devices = {device};
  so.strict = true;
  auto ts = tessera::TrainingSession::FromFile(onnx, t, so);
  if (!ts.ok()) {
    out.error = "TrainingSession::FromFile(" + device + "): " + ts.status().ToString();
    return out;
  }
  auto data = tessera::LoadDigits("train", image_shape);
  if (!data.ok()) {
    out.error = data.status().ToString();
    return out;
  }
  for (int64_t k = 0; k < 50; ++k) {
    auto x = tessera::TakeRows(data->features, k * 32, 32);
    auto y = tessera::TakeRows(data->labels, k * 32, 32);
    if (!x.ok() || !y.ok()) {
      out.error = "TakeRows failed";
      return out;
    }
    auto r = (*ts)->Step({{"x", &*x}, {"labels", &*y}});
    if (!r.ok()) {
      out.error = "step " + std::to_string(k) + " on " + device + ": " + r.status().ToString();
      return out;
    }
    out.losses.push_back(static_cast<float>(r->loss));
  }
  return out;
}

// The "losses" array of models/<model>/torch_ref.json (empty when absent or unreadable).
std::vector<double> TorchLosses(const std::string& model) {
  std::ifstream f(std::string(TESSERA_MODELS_DIR) + "/" + model + "/torch_ref.json");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<double> out;
  size_t at = text.find("\"losses\"");
  if (at == std::string::npos || (at = text.find('[', at)) == std::string::npos) return out;
  const char* p = text.c_str() + at + 1;
  while (*p && *p != ']') {
    char* end = nullptr;
    const double v = std::strtod(p, &end);
    if (end == p) {
      ++p;
      continue;
    }
    out.push_back(v);
    p = end;
  }
  return out;
}

void SessionMatch(const std::string& model, bool image_shape) {
  std::string why;
  if (!HaveOpenCL(&why)) GTEST_SKIP() << "OpenCL plugin unusable: " << why;
  const std::string onnx = std::string(TESSERA_MODELS_DIR) + "/" + model + "/model.onnx";
  if (!std::ifstream(onnx).good())
    GTEST_SKIP() << onnx << " is missing (.venv/bin/python scripts/gen_train_refs.py --out models makes it)";
  Loop cpu = SessionLoop(model, image_shape, "cpu");
  if (!cpu.error.empty() && cpu.error.find("digits") != std::string::npos) GTEST_SKIP() << cpu.error;
  Loop ocl = SessionLoop(model, image_shape, "opencl:0");
  ExpectSameCurve(ocl, cpu, 1e-3, ("TrainingSession " + model).c_str());
  // For information (the CPU is held to PyTorch's curve by tests/unit/training/test_torch_match.cpp).
  const std::vector<double> torch = TorchLosses(model);
  if (torch.size() == ocl.losses.size()) {
    double worst = 0;
    for (size_t k = 0; k < torch.size(); ++k)
      worst = std::max(worst, std::fabs(ocl.losses[k] - torch[k]) / std::fabs(torch[k]));
    std::printf("[ TrainingSession %s ] max relative difference opencl vs PyTorch 1.13: %.3g\n", model.c_str(), worst);
  }
}

TEST(OpenCLTrainingSession, MlpMatchesCpu) { SessionMatch("train_mlp", false); }
TEST(OpenCLTrainingSession, CnnMatchesCpu) { SessionMatch("train_cnn", true); }

}  // namespace
