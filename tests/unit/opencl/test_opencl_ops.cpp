// OpenCL plugin tests through the plugin ABI only: each op runs on the OpenCL
// plugin and on the CPU plugin (the reference) with random inputs, bound at
// non-zero offsets inside one arena buffer; plus the on-disk program cache
// (miss, hit, corrupt entry) and bad inputs that must give clear errors.
// Every test skips with the plugin's reason when there is no OpenCL device.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tessera/backend.h"
#include "tests/unit/opencl/abi_harness.h"

namespace {

using Result = RunResult;

::testing::AssertionResult Close(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, int32_t dt,
                                 float tol) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  if (dt != TSR_DTYPE_F32) {
    if (got == want) return ::testing::AssertionSuccess();
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != want[i]) return ::testing::AssertionFailure() << "byte " << i << " differs";
  }
  auto g = As<float>(got), w = As<float>(want);
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(w[i]) && std::isnan(g[i])) continue;
    if (!(std::fabs(g[i] - w[i]) <= tol + tol * std::fabs(w[i])))
      return ::testing::AssertionFailure() << "element " << i << ": opencl " << g[i] << ", cpu " << w[i];
  }
  return ::testing::AssertionSuccess();
}

class OpenCL : public ::testing::Test {
 protected:
  void SetUp() override {
    ocl_ = Load("opencl");
    if (!ocl_->error.empty()) GTEST_SKIP() << "OpenCL plugin unusable: " << ocl_->error;
    cpu_ = Load("cpu");
    ASSERT_TRUE(cpu_->error.empty()) << "the CPU plugin is the reference: " << cpu_->error;
  }
  // Runs `s` on both plugins and compares every output.
  void Compare(Seg& s, float tol = 1e-4f) {
    Result a = RunSeg(ocl_, s);
    ASSERT_TRUE(a.ok()) << "opencl " << a.Describe();
    Result b = RunSeg(cpu_, s);
    ASSERT_TRUE(b.ok()) << "cpu " << b.Describe();
    for (int o : s.outputs()) {
      ASSERT_EQ(a.outputs[o].size(), s.NBytes(o)) << "output value " << o;
      EXPECT_TRUE(Close(a.outputs[o], b.outputs[o], s.dtype(o), tol)) << "output value " << o;
    }
  }
  Plugin* ocl_ = nullptr;
  Plugin* cpu_ = nullptr;
};

// ---- elementwise ---------------------------------------------------------------------------

TEST_F(OpenCL, UnaryOps) {
  struct U {
    const char* op;
    std::vector<Attr> attrs;
    float lo, hi;
    const char* domain;
  };
  const std::vector<U> ops = {
      {"Relu", {}, -2, 2, ""},         {"Sigmoid", {}, -30, 30, ""},  {"Tanh", {}, -5, 5, ""},
      {"Exp", {}, -5, 5, ""},          {"Log", {}, 0.01f, 5, ""},     {"Sqrt", {}, 0, 5, ""},
      {"Erf", {}, -3, 3, ""},          {"Neg", {}, -2, 2, ""},        {"Abs", {}, -2, 2, ""},
      {"Reciprocal", {}, 0.5f, 3, ""}, {"LeakyRelu", {AFloat("alpha", 0.2f)}, -2, 2, ""},
      {"Gelu", {}, -4, 4, "tessera"},  {"Gelu", {AStr("approximate", "tanh")}, -4, 4, "tessera"},
      {"Softplus", {}, -5, 5, ""},     {"HardSigmoid", {}, -4, 4, ""}, {"HardSwish", {}, -4, 4, ""},
  };
  for (size_t k = 0; k < ops.size(); ++k) {
    SCOPED_TRACE(ops[k].op);
    Seg s;
    int x = s.InF({3, 7, 11}, 100 + static_cast<uint32_t>(k), ops[k].lo, ops[k].hi);
    int y = s.Out(TSR_DTYPE_F32, {3, 7, 11});
    s.Node("u", ops[k].op, {x}, {y}, ops[k].attrs, ops[k].domain, 20);
    Compare(s, 2e-5f);
  }
}

TEST_F(OpenCL, ClipWithConstantBoundsAndOldAttributes) {
  Seg s;
  int x = s.InF({5, 9}, 1, -3, 3);
  float lo = -0.5f, hi = 1.25f;
  int mn = s.Const(TSR_DTYPE_F32, {}, Bytes(std::vector<float>{lo}));
  int mx = s.Const(TSR_DTYPE_F32, {}, Bytes(std::vector<float>{hi}));
  int y = s.Out(TSR_DTYPE_F32, {5, 9});
  s.Node("clip", "Clip", {x, mn, mx}, {y}, {}, "", 13);
  Result r = RunSeg(ocl_, s);
  ASSERT_TRUE(r.ok()) << r.Describe();
  auto in = As<float>(s.feeds().at(x));
  auto out = As<float>(r.outputs[y]);
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(out[i], std::min(std::max(in[i], lo), hi));
  Seg s6;
  int x6 = s6.InF({4}, 2, -3, 3);
  int y6 = s6.Out(TSR_DTYPE_F32, {4});
  s6.Node("clip6", "Clip", {x6}, {y6}, {AFloat("min", 0.f), AFloat("max", 0.5f)}, "", 6);
  Compare(s6);
}

TEST_F(OpenCL, BinaryBroadcastOddSizes) {
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> shapes = {
      {{7, 13}, {7, 13}}, {{7, 13}, {13}}, {{2, 1, 5}, {3, 1}}, {{3, 1, 4, 1}, {1, 6, 1, 5}}, {{17}, {}}, {{}, {9}}};
  int k = 0;
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"}) {
    for (const auto& [a, b] : shapes) {
      SCOPED_TRACE(std::string(op) + " case " + std::to_string(k));
      std::vector<int64_t> out;
      size_t r = std::max(a.size(), b.size());
      for (size_t i = 0; i < r; ++i) {
        int64_t x = i + a.size() >= r ? a[i + a.size() - r] : 1;
        int64_t z = i + b.size() >= r ? b[i + b.size() - r] : 1;
        out.push_back(std::max(x, z));
      }
      Seg s;
      bool pos = std::string(op) == "Pow" || std::string(op) == "Div";
      int x = s.InF(a, 200 + k, pos ? 0.5f : -2.f, 2.f);
      int z = s.InF(b, 300 + k, pos ? 0.5f : -2.f, 2.f);
      int y = s.Out(TSR_DTYPE_F32, out);
      s.Node("bin", op, {x, z}, {y});
      Compare(s, 1e-5f);
      ++k;
    }
  }
}

TEST_F(OpenCL, ComparisonsWhereNotAndCast) {
  Seg s;
  int a = s.InF({4, 6}, 1);
  int b = s.InF({6}, 2);
  int gt = s.Out(TSR_DTYPE_BOOL, {4, 6});
  int ls = s.Tmp(TSR_DTYPE_BOOL, {4, 6});
  int nl = s.Out(TSR_DTYPE_BOOL, {4, 6});
  int both = s.Out(TSR_DTYPE_BOOL, {4, 6});
  int w = s.Out(TSR_DTYPE_F32, {4, 6});
  int c64 = s.Tmp(TSR_DTYPE_I64, {4, 6});
  int back = s.Out(TSR_DTYPE_F32, {4, 6});
  int eq = s.Out(TSR_DTYPE_BOOL, {4, 6});
  s.Node("gt", "Greater", {a, b}, {gt});
  s.Node("ls", "Less", {a, b}, {ls});
  s.Node("not", "Not", {ls}, {nl});
  s.Node("and", "And", {gt, nl}, {both});
  s.Node("where", "Where", {gt, a, b}, {w});
  s.Node("cast", "Cast", {a}, {c64}, {AInt("to", TSR_DTYPE_I64)});
  s.Node("cast2", "Cast", {c64}, {back}, {AInt("to", TSR_DTYPE_F32)});
  s.Node("eq", "Equal", {a, a}, {eq});
  Compare(s);
}

TEST_F(OpenCL, FusedElementwiseProgram) {
  // y = Relu((x0 * 2 + x1) - 0.5), x1 broadcast, then Clip(., 0, 1.5) and Tanh.
  Seg s;
  int x0 = s.InF({3, 5, 7}, 1);
  int x1 = s.InF({5, 1}, 2);
  int y = s.Out(TSR_DTYPE_F32, {3, 5, 7});
  // registers: 0 x0, 1 x1, 2 c=2, 3 c=0.5, 4 c=0, 5 c=1.5; instr from 6.
  std::vector<int64_t> prog = {2, 6, 0, 2, -1,   // r6 = x0 * 2
                               0, 7, 6, 1, -1,   // r7 = r6 + x1
                               1, 8, 7, 3, -1,   // r8 = r7 - 0.5
                               9, 9, 8, -1, -1,  // r9 = relu
                               20, 10, 9, 4, 5,  // r10 = clip(r9, 0, 1.5)
                               12, 11, 10, -1, -1};
  s.Node("fe", "FusedElementwise", {x0, x1}, {y}, {AInts("program", prog), AFloats("constants", {2.f, 0.5f, 0.f, 1.5f})},
         "tessera");
  Compare(s, 1e-5f);
}

// ---- GEMM / conv ------------------------------------------------------------------------------

TEST_F(OpenCL, MatMulShapes) {
  struct C {
    std::vector<int64_t> a, b, y;
  };
  const std::vector<C> cases = {{{5, 7}, {7, 9}, {5, 9}},
                                {{2, 1, 5, 7}, {3, 7, 9}, {2, 3, 5, 9}},
                                {{7}, {7, 9}, {9}},
                                {{4, 5, 7}, {7}, {4, 5}},
                                {{33, 47}, {47, 19}, {33, 19}}};
  for (size_t k = 0; k < cases.size(); ++k) {
    SCOPED_TRACE(k);
    Seg s;
    int a = s.InF(cases[k].a, 10 + k);
    int b = s.InF(cases[k].b, 20 + k);
    int y = s.Out(TSR_DTYPE_F32, cases[k].y);
    s.Node("mm", "MatMul", {a, b}, {y});
    Compare(s, 1e-4f);
  }
}

TEST_F(OpenCL, GemmTransposesAndBias) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      SCOPED_TRACE(std::to_string(ta) + std::to_string(tb));
      const int64_t M = 6, K = 19, N = 21;
      Seg s;
      int a = s.InF(ta ? std::vector<int64_t>{K, M} : std::vector<int64_t>{M, K}, 1);
      int b = s.ConstF(tb ? std::vector<int64_t>{N, K} : std::vector<int64_t>{K, N}, 2);
      int c = s.ConstF({N}, 3);
      int y = s.Out(TSR_DTYPE_F32, {M, N});
      s.Node("gemm", "Gemm", {a, b, c}, {y},
             {AInt("transA", ta), AInt("transB", tb), AFloat("alpha", 0.7f), AFloat("beta", 1.5f)});
      Compare(s, 1e-4f);
    }
}

TEST_F(OpenCL, GemmWithRuntimeTransposedB) {
  // B is not a constant: the strided (non-vector) B path, with M and N not multiples of 4.
  Seg s;
  int a = s.InF({7, 5}, 1);
  int b = s.InF({9, 5}, 2);
  int c = s.InF({7, 1}, 3);
  int y = s.Out(TSR_DTYPE_F32, {7, 9});
  s.Node("gemm_rt", "Gemm", {a, b, c}, {y}, {AInt("transB", 1)});
  Compare(s, 1e-5f);
}

TEST_F(OpenCL, CopiesOfAnyDtype) {
  Seg s;
  int x = s.In(TSR_DTYPE_I64, {2, 1, 3}, Bytes(std::vector<int64_t>{1, -2, 3, 1LL << 40, 5, -6}));
  int sq = s.Out(TSR_DTYPE_I64, {2, 3});
  s.Node("squeeze", "Squeeze", {x, s.ConstI({1})}, {sq}, {}, "", 13);
  int un = s.Out(TSR_DTYPE_I64, {1, 2, 1, 3});
  s.Node("unsqueeze", "Unsqueeze", {x}, {un}, {AInts("axes", {0})}, "", 11);
  int id = s.Out(TSR_DTYPE_I64, {2, 1, 3});
  s.Node("identity", "Identity", {x}, {id});
  int f = s.InF({3, 4}, 4);
  int dr = s.Out(TSR_DTYPE_F32, {3, 4});
  int mask = s.Out(TSR_DTYPE_BOOL, {3, 4});
  s.Node("dropout", "Dropout", {f}, {dr, mask}, {}, "", 13);
  int gmp = s.Out(TSR_DTYPE_F32, {1, 1, 1});
  s.Node("gmp", "GlobalMaxPool", {s.InF({1, 1, 7}, 5)}, {gmp});
  int rmin = s.Out(TSR_DTYPE_F32, {3});
  s.Node("rmin", "ReduceMin", {f}, {rmin}, {AInts("axes", {1}), AInt("keepdims", 0)}, "", 13);
  Result r = RunSeg(ocl_, s);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.outputs[sq], s.feeds().at(x));
  EXPECT_EQ(r.outputs[un], s.feeds().at(x));
  EXPECT_EQ(r.outputs[id], s.feeds().at(x));
  EXPECT_EQ(r.outputs[dr], s.feeds().at(f));
  EXPECT_EQ(r.outputs[mask], std::vector<uint8_t>(12, 1));
  Compare(s, 0.f);
}

TEST_F(OpenCL, FusedMatMulAndGemmEpilogues) {
  Seg s;
  int a = s.InF({2, 5, 8}, 1);
  int w = s.ConstF({8, 6}, 2);
  int bias = s.ConstF({6}, 3);
  int z = s.InF({2, 5, 6}, 4);
  int y = s.Out(TSR_DTYPE_F32, {2, 5, 6});
  s.Node("fmm", "FusedMatMul", {a, w, bias, z}, {y}, {AStr("activation", "Relu"), AInt("has_residual", 1)}, "tessera");
  int a2 = s.InF({4, 8}, 5);
  int w2 = s.ConstF({6, 8}, 6);
  int c2 = s.ConstF({6}, 7);
  int y2 = s.Out(TSR_DTYPE_F32, {4, 6});
  s.Node("fgemm", "FusedGemm", {a2, w2, c2}, {y2}, {AInt("transB", 1), AStr("activation", "Gelu")}, "tessera");
  Compare(s, 1e-4f);
}

TEST_F(OpenCL, ConvVariants) {
  struct C {
    std::vector<int64_t> x, w, y;
    std::vector<Attr> attrs;
  };
  const std::vector<C> cases = {
      {{1, 3, 9, 9}, {4, 3, 3, 3}, {1, 4, 9, 9}, {AInts("pads", {1, 1, 1, 1})}},
      {{2, 4, 10, 7}, {6, 2, 3, 2}, {2, 6, 4, 3}, {AInts("strides", {2, 2}), AInt("group", 2)}},
      {{1, 2, 11, 11}, {3, 2, 3, 3}, {1, 3, 7, 7}, {AInts("dilations", {2, 2})}},
      {{1, 2, 8, 8}, {2, 2, 3, 3}, {1, 2, 4, 4}, {AStr("auto_pad", "SAME_UPPER"), AInts("strides", {2, 2})}},
      {{2, 3, 12}, {5, 3, 3}, {2, 5, 12}, {AInts("pads", {1, 1})}},
      {{2, 6, 5, 7}, {4, 6, 1, 1}, {2, 4, 5, 7}, {}},  // 1x1: GEMM straight on X (no im2col)
      {{1, 4, 6, 6}, {4, 1, 3, 3}, {1, 4, 6, 6}, {AInt("group", 4), AInts("pads", {1, 1, 1, 1})}},  // depthwise
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    SCOPED_TRACE(k);
    Seg s;
    int x = s.InF(cases[k].x, 40 + k);
    int w = s.ConstF(cases[k].w, 50 + k);
    int b = s.ConstF({cases[k].w[0]}, 60 + k);
    int y = s.Out(TSR_DTYPE_F32, cases[k].y);
    s.Node("conv", "Conv", {x, w, b}, {y}, cases[k].attrs);
    Compare(s, 1e-4f);
  }
}

TEST_F(OpenCL, FusedConvResidualRelu) {
  Seg s;
  int x = s.InF({1, 4, 6, 6}, 1);
  int w = s.ConstF({4, 4, 3, 3}, 2);
  int b = s.ConstF({4}, 3);
  int z = s.InF({1, 4, 6, 6}, 4);
  int y = s.Out(TSR_DTYPE_F32, {1, 4, 6, 6});
  s.Node("fconv", "FusedConv", {x, w, b, z}, {y},
         {AInts("pads", {1, 1, 1, 1}), AInts("kernel_shape", {3, 3}), AStr("activation", "Relu"),
          AInt("has_residual", 1)},
         "tessera");
  Compare(s, 1e-4f);
}

// ---- pooling / normalization / reductions ------------------------------------------------------

TEST_F(OpenCL, Pools) {
  Seg s;
  int x = s.InF({2, 3, 9, 8}, 1);
  int m = s.Out(TSR_DTYPE_F32, {2, 3, 5, 4});
  int a0 = s.Out(TSR_DTYPE_F32, {2, 3, 5, 4});
  int a1 = s.Out(TSR_DTYPE_F32, {2, 3, 5, 4});
  int g = s.Out(TSR_DTYPE_F32, {2, 3, 1, 1});
  std::vector<Attr> win = {AInts("kernel_shape", {3, 3}), AInts("strides", {2, 2}), AInts("pads", {1, 1, 1, 1})};
  s.Node("max", "MaxPool", {x}, {m}, win);
  s.Node("avg", "AveragePool", {x}, {a0}, win);
  auto win1 = win;
  win1.push_back(AInt("count_include_pad", 1));
  s.Node("avg1", "AveragePool", {x}, {a1}, win1);
  s.Node("gap", "GlobalAveragePool", {x}, {g});
  Compare(s, 1e-5f);
}

TEST_F(OpenCL, BatchNormLayerNormSoftmax) {
  Seg s;
  int x = s.InF({2, 5, 3, 4}, 1);
  int sc = s.ConstF({5}, 2);
  int bi = s.ConstF({5}, 3);
  int mean = s.ConstF({5}, 4);
  std::vector<float> var = Rand(5, 5, 0.5f, 2.f);
  int vv = s.Const(TSR_DTYPE_F32, {5}, Bytes(var));
  int bn = s.Out(TSR_DTYPE_F32, {2, 5, 3, 4});
  s.Node("bn", "BatchNormalization", {x, sc, bi, mean, vv}, {bn}, {AFloat("epsilon", 1e-3f)});
  int x2 = s.InF({3, 7, 10}, 6, -3, 3);
  int g = s.ConstF({10}, 7);
  int b = s.ConstF({10}, 8);
  int ln = s.Out(TSR_DTYPE_F32, {3, 7, 10});
  s.Node("ln", "LayerNormalization", {x2, g, b}, {ln}, {AInt("axis", -1), AFloat("epsilon", 1e-5f)});
  int ln2 = s.Out(TSR_DTYPE_F32, {3, 7, 10});
  int g2 = s.ConstF({7, 10}, 9);
  s.Node("ln2", "LayerNormalization", {x2, g2}, {ln2}, {AInt("axis", 1)});
  int sm = s.Out(TSR_DTYPE_F32, {3, 7, 10});
  s.Node("sm", "Softmax", {x2}, {sm}, {AInt("axis", 1)}, "", 13);
  int lsm = s.Out(TSR_DTYPE_F32, {3, 7, 10});
  s.Node("lsm", "LogSoftmax", {x2}, {lsm}, {AInt("axis", -1)}, "", 13);
  int sm11 = s.Out(TSR_DTYPE_F32, {3, 7, 10});  // opset < 13: softmax over the flattened dims from axis on
  s.Node("sm11", "Softmax", {x2}, {sm11}, {AInt("axis", 1)}, "", 11);
  Compare(s, 1e-4f);
}

TEST_F(OpenCL, Reductions) {
  Seg s;
  int x = s.InF({3, 4, 5, 6}, 1);
  int a = s.Out(TSR_DTYPE_F32, {3, 1, 5, 1});
  s.Node("rmean", "ReduceMean", {x}, {a}, {AInts("axes", {1, -1})}, "", 13);
  int ax = s.ConstI({0, 2});
  int b = s.Out(TSR_DTYPE_F32, {4, 6});
  s.Node("rsum", "ReduceSum", {x, ax}, {b}, {AInt("keepdims", 0)}, "", 13);
  int c = s.Out(TSR_DTYPE_F32, {1, 1, 1, 1});
  s.Node("rmax", "ReduceMax", {x}, {c}, {}, "", 13);
  Compare(s, 1e-4f);
}

// ---- data movement ------------------------------------------------------------------------------

TEST_F(OpenCL, DataMovement) {
  Seg s;
  int x = s.InF({2, 3, 4}, 1);
  int t = s.Out(TSR_DTYPE_F32, {4, 2, 3});
  s.Node("tr", "Transpose", {x}, {t}, {AInts("perm", {2, 0, 1})});
  int c1 = s.InF({2, 1, 4}, 2);
  int cat = s.Out(TSR_DTYPE_F32, {2, 4, 4});
  s.Node("cat", "Concat", {x, c1}, {cat}, {AInt("axis", 1)});
  int sp0 = s.Out(TSR_DTYPE_F32, {2, 3, 1});
  int sp1 = s.Out(TSR_DTYPE_F32, {2, 3, 3});
  s.Node("split", "Split", {x, s.ConstI({1, 3})}, {sp0, sp1}, {AInt("axis", 2)}, "", 13);
  int sl = s.Out(TSR_DTYPE_F32, {2, 2, 2});
  s.Node("slice", "Slice", {x, s.ConstI({-1, 3}), s.ConstI({-100, 0}), s.ConstI({1, 2}), s.ConstI({-2, -2})}, {sl});
  int ex = s.Out(TSR_DTYPE_F32, {3, 2, 3, 4});
  s.Node("expand", "Expand", {x, s.ConstI({3, 1, 1, 1})}, {ex});
  int rs = s.Out(TSR_DTYPE_F32, {6, 4});
  s.Node("reshape", "Reshape", {x, s.ConstI({6, 4})}, {rs});
  int fl = s.Out(TSR_DTYPE_F32, {2, 12});
  s.Node("flatten", "Flatten", {x}, {fl}, {AInt("axis", 1)});
  int tri = s.Out(TSR_DTYPE_F32, {2, 3, 4});
  s.Node("trilu", "Trilu", {x, s.Const(TSR_DTYPE_I64, {}, Bytes(std::vector<int64_t>{1}))}, {tri}, {AInt("upper", 0)});
  int shp = s.Out(TSR_DTYPE_I64, {2});
  s.Node("shape", "Shape", {x}, {shp}, {AInt("start", 1)}, "", 15);
  int cos = s.Out(TSR_DTYPE_F32, {2, 3});
  s.Node("cos", "ConstantOfShape", {s.ConstI({2, 3})}, {cos});
  int rg = s.Out(TSR_DTYPE_I64, {5});
  s.Node("range", "Range",
         {s.Const(TSR_DTYPE_I64, {}, Bytes(std::vector<int64_t>{3})), s.Const(TSR_DTYPE_I64, {}, Bytes(std::vector<int64_t>{-7})),
          s.Const(TSR_DTYPE_I64, {}, Bytes(std::vector<int64_t>{-2}))},
         {rg});
  Compare(s, 0.f);
}

TEST_F(OpenCL, GatherRuntimeAndConstantIndices) {
  Seg s;
  int x = s.InF({4, 5, 3}, 1);
  int idx = s.In(TSR_DTYPE_I64, {2, 3}, Bytes(std::vector<int64_t>{4, 0, -1, 2, 2, -5}));
  int g = s.Out(TSR_DTYPE_F32, {4, 2, 3, 3});
  s.Node("gather", "Gather", {x, idx}, {g}, {AInt("axis", 1)});
  int g0 = s.Out(TSR_DTYPE_F32, {5, 3});
  s.Node("gather0", "Gather", {x, s.Const(TSR_DTYPE_I64, {}, Bytes(std::vector<int64_t>{-2}))}, {g0}, {AInt("axis", 0)});
  int ei = s.In(TSR_DTYPE_I64, {4, 2, 3}, Bytes(std::vector<int64_t>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1,
                                                                     -1, 2, 0, 1, 1, 1, 4, 4, 3, 2, 1, 0}));
  int ge = s.Out(TSR_DTYPE_F32, {4, 2, 3});
  s.Node("ge", "GatherElements", {x, ei}, {ge}, {AInt("axis", 1)});
  Compare(s, 0.f);
}

TEST_F(OpenCL, FusedAttentionMasks) {
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant);
    Seg s;
    int q = s.InF({2, 3, 5, 8}, 1);
    int k = s.InF({2, 3, 7, 8}, 2);
    int v = s.InF({2, 3, 7, 6}, 3);
    std::vector<int32_t> ins = {q, k, v};
    std::vector<Attr> attrs = {AFloat("scale", 0.3f)};
    if (variant == 0) {
      std::vector<uint8_t> m(2 * 7, 1);
      m[3] = 0;
      m[7 + 6] = 0;
      ins.push_back(s.In(TSR_DTYPE_BOOL, {2, 1, 1, 7}, m));
    } else if (variant == 1) {
      ins.push_back(s.InF({5, 7}, 4, -2, 0));
    } else {
      attrs.push_back(AInt("causal", 1));
    }
    int y = s.Out(TSR_DTYPE_F32, {2, 3, 5, 6});
    s.Node("attn", "FusedAttention", ins, {y}, attrs, "tessera");
    Compare(s, 1e-4f);
  }
}

TEST_F(OpenCL, MultiNodeSegmentWithIntermediates) {
  Seg s;
  int x = s.InF({4, 16}, 1);
  int w = s.ConstF({16, 8}, 2);
  int b = s.ConstF({8}, 3);
  int t1 = s.Tmp(TSR_DTYPE_F32, {4, 8});
  int t2 = s.Tmp(TSR_DTYPE_F32, {4, 8});
  int y = s.Out(TSR_DTYPE_F32, {4, 8});
  s.Node("fc", "MatMul", {x, w}, {t1});
  s.Node("bias", "Add", {t1, b}, {t2});
  s.Node("sm", "Softmax", {t2}, {y}, {AInt("axis", -1)}, "", 13);
  Compare(s, 1e-5f);
}

// ---- errors ---------------------------------------------------------------------------------------

TEST_F(OpenCL, GatherOutOfRangeFailsAtExecuteNamingTheNode) {
  Seg s;
  int x = s.InF({5, 3}, 1);
  int idx = s.In(TSR_DTYPE_I64, {2}, Bytes(std::vector<int64_t>{1, 7}));
  int y = s.Out(TSR_DTYPE_F32, {2, 3});
  s.Node("bad_gather", "Gather", {x, idx}, {y}, {AInt("axis", 0)});
  Result r = RunSeg(ocl_, s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.stage, "execute") << r.Describe();
  EXPECT_EQ(r.code, TSR_ERR_OUT_OF_RANGE) << r.Describe();
  EXPECT_NE(r.message.find("bad_gather"), std::string::npos) << r.Describe();
  // In range again: the flag is cleared per execute.
  s.mutable_feeds()[idx] = Bytes(std::vector<int64_t>{1, -5});
  Result ok = RunSeg(ocl_, s);
  EXPECT_TRUE(ok.ok()) << ok.Describe();
}

TEST_F(OpenCL, ConcurrentExecutesKeepTheirOwnErrorFlags) {
  // One executable, two threads with their own streams, arenas and scratch:
  // the thread with a bad index fails every time, the other never does.
  Seg s;
  int x = s.InF({5, 3}, 1);
  int idx = s.In(TSR_DTYPE_I64, {2}, Bytes(std::vector<int64_t>{0, 0}));
  int y = s.Out(TSR_DTYPE_F32, {2, 3});
  s.Node("cgather", "Gather", {x, idx}, {y}, {AInt("axis", 0)});
  const tsr_graph_view* v = s.View();
  tsr_executable_t* exe = nullptr;
  tsr_error err{};
  ASSERT_EQ(ocl_->api->compile(ocl_->device, v, nullptr, &exe, &err), TSR_OK) << err.message;
  uint64_t scratch = 0;
  ASSERT_EQ(ocl_->api->executable_scratch_bytes(exe, &scratch, &err), TSR_OK);
  ASSERT_GT(scratch, 0u) << "runtime indices need the error flag in scratch";
  const std::vector<float> data = As<float>(s.feeds().at(x));
  std::vector<int> failures(2, 0), wrong(2, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      tsr_error e{};
      tsr_stream_t* st = nullptr;
      tsr_buffer_t *bx = nullptr, *bi = nullptr, *by = nullptr, *bs = nullptr;
      ocl_->api->stream_create(ocl_->device, &st, &e);
      ocl_->api->buffer_alloc(ocl_->device, 60, 64, &bx, &e);
      ocl_->api->buffer_alloc(ocl_->device, 16, 64, &bi, &e);
      ocl_->api->buffer_alloc(ocl_->device, 24, 64, &by, &e);
      ocl_->api->buffer_alloc(ocl_->device, scratch, 64, &bs, &e);
      std::vector<int64_t> ids = t == 0 ? std::vector<int64_t>{4, -5} : std::vector<int64_t>{1, 5};
      ocl_->api->copy_h2d(st, bx, 0, data.data(), 60, &e);
      ocl_->api->copy_h2d(st, bi, 0, ids.data(), 16, &e);
      std::vector<tsr_binding> b = {{bx, 0}, {bi, 0}, {by, 0}, {bs, 0}};
      for (int rep = 0; rep < 10; ++rep) {
        tsr_error e2{};
        if (ocl_->api->execute(exe, st, b.data(), 4, &e2) != TSR_OK) {
          ++failures[t];
          continue;
        }
        std::vector<float> out(6);
        ocl_->api->copy_d2h(st, out.data(), by, 0, 24, &e2);
        for (int k = 0; k < 3; ++k)
          if (out[k] != data[4 * 3 + k] || out[3 + k] != data[k]) ++wrong[t];
      }
      ocl_->api->stream_destroy(st);
      for (tsr_buffer_t* p : {bx, bi, by, bs}) ocl_->api->buffer_free(p);
    });
  for (auto& th : threads) th.join();
  ocl_->api->executable_destroy(exe);
  EXPECT_EQ(failures[0], 0);
  EXPECT_EQ(wrong[0], 0);
  EXPECT_EQ(failures[1], 10);
}

TEST_F(OpenCL, ConstantIndexOutOfRangeFailsAtCompile) {
  Seg s;
  int x = s.InF({5, 3}, 1);
  int y = s.Out(TSR_DTYPE_F32, {2, 3});
  s.Node("const_gather", "Gather", {x, s.ConstI({0, 5})}, {y}, {AInt("axis", 0)});
  Result r = RunSeg(ocl_, s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.stage, "compile");
  EXPECT_NE(r.message.find("const_gather"), std::string::npos) << r.Describe();
  EXPECT_NE(r.message.find("out of range"), std::string::npos) << r.Describe();
}

TEST_F(OpenCL, BadShapesAndAttributesAreClearCompileErrors) {
  struct Case {
    const char* name;
    std::function<void(Seg&)> build;
    const char* needle;
  };
  std::vector<Case> cases = {
      {"mm_k", [](Seg& s) {
         s.Node("mm_k", "MatMul", {s.InF({2, 3}, 1), s.InF({4, 5}, 2)}, {s.Out(TSR_DTYPE_F32, {2, 5})});
       }, "inner dims"},
      {"conv_c", [](Seg& s) {
         s.Node("conv_c", "Conv", {s.InF({1, 3, 4, 4}, 1), s.ConstF({2, 2, 3, 3}, 2)}, {s.Out(TSR_DTYPE_F32, {1, 2, 2, 2})});
       }, "group"},
      {"act", [](Seg& s) {
         s.Node("act", "FusedMatMul", {s.InF({2, 3}, 1), s.ConstF({3, 4}, 2)}, {s.Out(TSR_DTYPE_F32, {2, 4})},
                {AStr("activation", "Mystery")}, "tessera");
       }, "Mystery"},
      {"perm", [](Seg& s) {
         s.Node("perm", "Transpose", {s.InF({2, 3}, 1)}, {s.Out(TSR_DTYPE_F32, {3, 2})}, {AInts("perm", {0, 0})});
       }, "permutation"},
      {"bcast", [](Seg& s) {
         s.Node("bcast", "Add", {s.InF({2, 3}, 1), s.InF({4}, 2)}, {s.Out(TSR_DTYPE_F32, {2, 3})});
       }, "broadcast"},
      {"prog", [](Seg& s) {
         s.Node("prog", "FusedElementwise", {s.InF({4}, 1)}, {s.Out(TSR_DTYPE_F32, {4})},
                {AInts("program", {99, 1, 0, -1, -1})}, "tessera");
       }, "opcode"},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    Seg s;
    c.build(s);
    Result r = RunSeg(ocl_, s, RunOptions{.check_claim = false});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.stage, "compile") << r.Describe();
    EXPECT_NE(r.message.find(c.name), std::string::npos) << r.Describe();
    EXPECT_NE(r.message.find(c.needle), std::string::npos) << r.Describe();
  }
}

TEST_F(OpenCL, ClaimGivesReasons) {
  Seg s;
  int x = s.InF({2, 3}, 1);
  int starts = s.In(TSR_DTYPE_I64, {1}, Bytes(std::vector<int64_t>{0}));
  int y = s.Out(TSR_DTYPE_F32, {1, 3});
  s.Node("dyn_slice", "Slice", {x, starts, s.ConstI({1})}, {y});
  int xi = s.In(TSR_DTYPE_I32, {2, 3}, Bytes(std::vector<int32_t>(6, 1)));
  int yi = s.Out(TSR_DTYPE_I32, {2, 3});
  s.Node("int_relu", "Relu", {xi}, {yi});
  int z = s.Out(TSR_DTYPE_F32, {2, 3});
  s.Node("unknown", "NoSuchOp", {x}, {z});
  int axes = s.In(TSR_DTYPE_I64, {1}, Bytes(std::vector<int64_t>{1}));
  int rs = s.Out(TSR_DTYPE_F32, {2, 1});
  s.Node("dyn_reduce", "ReduceSum", {x, axes}, {rs}, {}, "", 13);
  const tsr_graph_view* v = s.View();
  std::vector<tsr_claim> claims(v->num_nodes);
  tsr_error err{};
  ASSERT_EQ(ocl_->api->claim(ocl_->device, v, claims.data(), &err), TSR_OK) << err.message;
  EXPECT_EQ(claims[0].supported, 0);
  EXPECT_NE(std::string(claims[0].reason).find("constant"), std::string::npos) << claims[0].reason;
  EXPECT_EQ(claims[1].supported, 0);
  EXPECT_NE(std::string(claims[1].reason).find("f32"), std::string::npos) << claims[1].reason;
  EXPECT_EQ(claims[2].supported, 0);
  EXPECT_NE(std::string(claims[2].reason).find("NoSuchOp"), std::string::npos) << claims[2].reason;
  EXPECT_EQ(claims[3].supported, 0);
  EXPECT_NE(std::string(claims[3].reason).find("axes must be a constant"), std::string::npos) << claims[3].reason;
  // Compiling it anyway is a clear error naming the node.
  tsr_executable_t* exe = nullptr;
  EXPECT_EQ(ocl_->api->compile(ocl_->device, v, nullptr, &exe, &err), TSR_ERR_UNSUPPORTED);
  EXPECT_EQ(exe, nullptr);
  EXPECT_NE(std::string(err.message).find("dyn_reduce"), std::string::npos) << err.message;
  EXPECT_NE(std::string(err.message).find("dyn_slice"), std::string::npos) << err.message;
}

TEST_F(OpenCL, ExecuteChecksBindings) {
  Seg s;
  int x = s.InF({8}, 1);
  int y = s.Out(TSR_DTYPE_F32, {8});
  s.Node("relu", "Relu", {x}, {y});
  const tsr_graph_view* v = s.View();
  tsr_executable_t* exe = nullptr;
  tsr_error err{};
  ASSERT_EQ(ocl_->api->compile(ocl_->device, v, nullptr, &exe, &err), TSR_OK) << err.message;
  tsr_buffer_t* small = nullptr;
  tsr_stream_t* st = nullptr;
  ASSERT_EQ(ocl_->api->buffer_alloc(ocl_->device, 40, 64, &small, &err), TSR_OK);
  ASSERT_EQ(ocl_->api->stream_create(ocl_->device, &st, &err), TSR_OK);
  std::vector<tsr_binding> b = {{small, 0}, {small, 16}};  // y: 32 bytes at 16 > 40
  EXPECT_EQ(ocl_->api->execute(exe, st, b.data(), 2, &err), TSR_ERR_OUT_OF_RANGE);
  EXPECT_NE(std::string(err.message).find("does not fit"), std::string::npos) << err.message;
  EXPECT_NE(ocl_->api->execute(exe, st, b.data(), 1, &err), TSR_OK);
  EXPECT_EQ(ocl_->api->buffer_host_ptr(small), nullptr);
  ocl_->api->stream_destroy(st);
  ocl_->api->buffer_free(small);
  ocl_->api->executable_destroy(exe);
}

TEST_F(OpenCL, EventsOrderTwoStreams) {
  tsr_error err{};
  tsr_stream_t *s1 = nullptr, *s2 = nullptr;
  tsr_event_t* ev = nullptr;
  tsr_buffer_t *a = nullptr, *b = nullptr;
  ASSERT_EQ(ocl_->api->stream_create(ocl_->device, &s1, &err), TSR_OK);
  ASSERT_EQ(ocl_->api->stream_create(ocl_->device, &s2, &err), TSR_OK);
  ASSERT_EQ(ocl_->api->event_create(ocl_->device, &ev, &err), TSR_OK);
  EXPECT_EQ(ocl_->api->event_synchronize(ev, &err), TSR_OK) << "an unrecorded event is complete";
  ASSERT_EQ(ocl_->api->buffer_alloc(ocl_->device, 4096, 64, &a, &err), TSR_OK);
  ASSERT_EQ(ocl_->api->buffer_alloc(ocl_->device, 4096, 64, &b, &err), TSR_OK);
  std::vector<uint8_t> src(4096), dst(4096, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 13 + 1);
  ASSERT_EQ(ocl_->api->copy_h2d(s1, a, 0, src.data(), src.size(), &err), TSR_OK);
  ASSERT_EQ(ocl_->api->copy_d2d(s1, b, 0, a, 0, 4096, &err), TSR_OK);
  ASSERT_EQ(ocl_->api->event_record(ev, s1, &err), TSR_OK);
  if (ocl_->api->struct_size >= offsetof(tsr_backend_api, event_elapsed_us) + sizeof(void*) &&
      ocl_->api->event_elapsed_us) {
    tsr_event_t* ev0 = nullptr;
    ASSERT_EQ(ocl_->api->event_create(ocl_->device, &ev0, &err), TSR_OK);
    double us = -1;
    EXPECT_EQ(ocl_->api->event_elapsed_us(ev0, ev, &us, &err), TSR_ERR_FAILED_PRECONDITION) << "unrecorded start";
    ASSERT_EQ(ocl_->api->event_record(ev0, s1, &err), TSR_OK);
    ASSERT_EQ(ocl_->api->copy_d2d(s1, a, 0, b, 0, 4096, &err), TSR_OK);
    tsr_event_t* ev1 = nullptr;
    ASSERT_EQ(ocl_->api->event_create(ocl_->device, &ev1, &err), TSR_OK);
    ASSERT_EQ(ocl_->api->event_record(ev1, s1, &err), TSR_OK);
    ASSERT_EQ(ocl_->api->event_synchronize(ev1, &err), TSR_OK);
    ASSERT_EQ(ocl_->api->event_elapsed_us(ev0, ev1, &us, &err), TSR_OK) << err.message;
    EXPECT_GE(us, 0.0);
    EXPECT_LT(us, 60e6);
    ocl_->api->event_destroy(ev0);
    ocl_->api->event_destroy(ev1);
  }
  ASSERT_EQ(ocl_->api->stream_wait_event(s2, ev, &err), TSR_OK);
  // Overlapping same-buffer copy goes through a temporary.
  ASSERT_EQ(ocl_->api->copy_d2d(s2, b, 100, b, 0, 1000, &err), TSR_OK) << err.message;
  ASSERT_EQ(ocl_->api->copy_d2h(s2, dst.data(), b, 0, dst.size(), &err), TSR_OK);
  ASSERT_EQ(ocl_->api->event_synchronize(ev, &err), TSR_OK);
  std::vector<uint8_t> want = src;
  std::memmove(want.data() + 100, src.data(), 1000);
  EXPECT_EQ(dst, want);
  EXPECT_NE(ocl_->api->copy_d2h(s2, dst.data(), b, 4000, 200, &err), TSR_OK);
  EXPECT_NE(std::string(err.message).find("exceed"), std::string::npos) << err.message;
  ocl_->api->event_destroy(ev);
  ocl_->api->buffer_free(a);
  ocl_->api->buffer_free(b);
  ocl_->api->stream_destroy(s1);
  ocl_->api->stream_destroy(s2);
}

// ---- program cache -------------------------------------------------------------------------------

std::vector<std::string> ListClbin(const std::string& dir) {
  std::vector<std::string> out;
  std::string cmd = "ls " + dir + " 2>/dev/null";
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char line[512];
    while (fgets(line, sizeof(line), f)) {
      std::string s = line;
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      if (s.size() > 6 && s.compare(s.size() - 6, 6, ".clbin") == 0) out.push_back(dir + "/" + s);
    }
    pclose(f);
  }
  return out;
}

// A generated program (unique constants) so the test controls its cache entry.
void FusedSeg(Seg& s, float c) {
  int x = s.InF({16}, 1);
  int y = s.Out(TSR_DTYPE_F32, {16});
  s.Node("fe_cache", "FusedElementwise", {x}, {y}, {AInts("program", {2, 2, 0, 1, -1}), AFloats("constants", {c})},
         "tessera");
}

TEST_F(OpenCL, DiskCacheMissHitAndCorruptEntry) {
  char tmpl[] = "/tmp/tessera_ocl_cache_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const char* old = std::getenv("TESSERA_CACHE_DIR");
  std::string saved = old ? old : "";
  setenv("TESSERA_CACHE_DIR", dir.c_str(), 1);
  const float c = 1.5f + static_cast<float>(getpid() % 1000) * 1e-3f;
  auto fresh_device_run = [&](Result* out) {
    // A new device has an empty in-memory cache: the disk decides.
    tsr_device_t* d = nullptr;
    tsr_error err{};
    ASSERT_EQ(ocl_->api->device_open(ocl_->backend, 0, &d, &err), TSR_OK) << err.message;
    Plugin tmp = *ocl_;
    tmp.device = d;
    Seg s;
    FusedSeg(s, c);
    *out = RunSeg(&tmp, s);
    if (out->ok()) {
      auto in = As<float>(s.feeds().at(0));
      auto y = As<float>(out->outputs[1]);
      for (size_t i = 0; i < in.size(); ++i) EXPECT_FLOAT_EQ(y[i], in[i] * c);
    }
    ocl_->api->device_close(d);
  };
  Result r;
  fresh_device_run(&r);  // miss: builds, writes the entry
  ASSERT_TRUE(r.ok()) << r.Describe();
  auto files = ListClbin(dir);
  ASSERT_EQ(files.size(), 1u) << "one program built, one cache entry in " << dir;
  struct stat st1 {};
  ASSERT_EQ(stat(files[0].c_str(), &st1), 0);
  sleep(1);
  fresh_device_run(&r);  // hit: the entry is read, not rewritten
  ASSERT_TRUE(r.ok()) << r.Describe();
  struct stat st2 {};
  ASSERT_EQ(stat(files[0].c_str(), &st2), 0);
  EXPECT_EQ(st1.st_mtime, st2.st_mtime) << "a cache hit must not rewrite the entry";
  // Corrupt: same size, garbage bytes past the header; and a truncated file.
  for (int mode = 0; mode < 2; ++mode) {
    SCOPED_TRACE(mode);
    {
      std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
      ASSERT_TRUE(f.good());
      if (mode == 0) {
        f.seekp(40);
        const char junk[] = "this is not a program binary at all";
        f.write(junk, sizeof(junk));
      }
    }
    if (mode == 1) {
      ASSERT_EQ(truncate(files[0].c_str(), 20), 0);
    }
    fresh_device_run(&r);  // the bad entry is ignored, rebuilt and rewritten
    ASSERT_TRUE(r.ok()) << r.Describe();
    std::ifstream f(files[0], std::ios::binary);
    char magic[8] = {};
    f.read(magic, 8);
    EXPECT_EQ(std::string(magic, 7), "TSRCLB1") << "the entry was rewritten";
    struct stat st3 {};
    ASSERT_EQ(stat(files[0].c_str(), &st3), 0);
    EXPECT_GT(st3.st_size, 24);
  }
  if (saved.empty()) {
    unsetenv("TESSERA_CACHE_DIR");
  } else {
    setenv("TESSERA_CACHE_DIR", saved.c_str(), 1);
  }
  std::string rm = "rm -rf " + dir;
  EXPECT_EQ(system(rm.c_str()), 0);
}

TEST(OpenCLPlugin, NoPlatformIsReportedNotFatal) {
  // With no ICD visible (ocl-icd reads OCL_ICD_VENDORS), the plugin still
  // initializes and reports 0 devices with a reason; `tessera devices` shows it.
  std::string cmd = std::string("OCL_ICD_VENDORS=/nonexistent_tessera_icd_dir TESSERA_BACKEND_PATH=") +
                    TESSERA_BACKEND_BUILD_DIR + " " + TESSERA_CLI + " devices 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof(buf), f)) out += buf;
  int rc = pclose(f);
  EXPECT_EQ(WEXITSTATUS(rc), 0) << out;
  EXPECT_NE(out.find("opencl"), std::string::npos) << out;
  EXPECT_NE(out.find("no OpenCL platform"), std::string::npos) << out;
}

}  // namespace
