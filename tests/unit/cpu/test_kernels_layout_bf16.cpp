// Tests of non-plain memory layouts in the oneDNN kernels (Conv/FusedConv,
// MaxPool/AveragePool reading and writing nhwc / nChw16c as the compiler
// assigns them through _tsr_in_layouts/_tsr_out_layouts), tessera.LayoutConvert,
// the CPU backend's layout preferences, and bf16 in Conv, FusedConv, MatMul,
// FusedMatMul, Gemm, FusedGemm and the pools (checked against the f32 kernel on
// bf16-rounded inputs).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cpu/layouts.h"
#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu::testing {
namespace {

using Dims = std::vector<int64_t>;

// ---- a one-node harness that also carries string-list attributes ------------------

struct Tensor {
  int32_t dtype = TSR_DTYPE_F32;
  Dims dims;
  std::vector<uint8_t> bytes;  // data in the tensor's layout
  bool is_const = false;
  bool present = true;
};

struct StrAttr {
  std::string name;
  std::vector<std::string> values;
};

class LayoutNode {
 public:
  LayoutNode(std::string op, std::string domain = "") : op_(std::move(op)), domain_(std::move(domain)) {}
  std::vector<Tensor> in, out;
  std::vector<StrAttr> strs;
  struct IntAttr {
    std::string name;
    int64_t v = 0;
    std::vector<int64_t> vs;
    bool list = false;
  };
  std::vector<IntAttr> ints;
  std::vector<std::pair<std::string, std::string>> strings;  // single string attributes
  std::vector<std::pair<std::string, float>> floats;

  // Creates the kernel (error message in *msg on failure) and runs it once.
  bool Run(std::string* msg) {
    // Attributes.
    std::vector<tsr_attr_view> av;
    std::vector<std::vector<const char*>> ptrs(strs.size());
    for (size_t i = 0; i < strs.size(); ++i) {
      for (const auto& s : strs[i].values) ptrs[i].push_back(s.c_str());
      tsr_attr_view a{};
      a.name = strs[i].name.c_str();
      a.type = TSR_ATTR_STRINGS;
      a.count = ptrs[i].size();
      a.strings = ptrs[i].data();
      av.push_back(a);
    }
    for (const auto& x : ints) {
      tsr_attr_view a{};
      a.name = x.name.c_str();
      if (x.list) {
        a.type = TSR_ATTR_INTS;
        a.count = x.vs.size();
        a.ints = x.vs.data();
      } else {
        a.type = TSR_ATTR_INT;
        a.i = x.v;
      }
      av.push_back(a);
    }
    for (const auto& [n, s] : strings) {
      tsr_attr_view a{};
      a.name = n.c_str();
      a.type = TSR_ATTR_STRING;
      a.s = s.c_str();
      a.s_len = s.size();
      av.push_back(a);
    }
    for (const auto& [n, f] : floats) {
      tsr_attr_view a{};
      a.name = n.c_str();
      a.type = TSR_ATTR_FLOAT;
      a.f = f;
      av.push_back(a);
    }
    std::vector<int32_t> ins, outs;
    for (size_t i = 0; i < in.size(); ++i) ins.push_back(in[i].present ? static_cast<int32_t>(i) : -1);
    for (size_t i = 0; i < out.size(); ++i) outs.push_back(static_cast<int32_t>(in.size() + i));
    tsr_node_view n{};
    n.name = "n";
    n.domain = domain_.c_str();
    n.op_type = op_.c_str();
    n.opset = 17;
    n.num_inputs = static_cast<uint32_t>(ins.size());
    n.inputs = ins.data();
    n.num_outputs = static_cast<uint32_t>(outs.size());
    n.outputs = outs.data();
    n.num_attrs = static_cast<uint32_t>(av.size());
    n.attrs = av.data();
    std::vector<TensorArg> args(in.size() + out.size());
    NodeArgs na;
    na.node = &n;
    std::vector<AlignedBuffer> bufs;
    std::vector<const void*> inp;
    std::vector<void*> outp;
    for (size_t i = 0; i < in.size() + out.size(); ++i) {
      Tensor& t = i < in.size() ? in[i] : out[i - in.size()];
      TensorArg& a = args[i];
      a.dtype = t.dtype;
      a.dims = t.dims;
      a.numel = NumElements(t.dims);
      size_t bytes = std::max(t.bytes.size(), static_cast<size_t>(a.nbytes()));
      bufs.emplace_back(bytes);
      if (i < in.size()) {
        std::memcpy(bufs.back().data(), t.bytes.data(), t.bytes.size());
        if (t.is_const) a.const_data = bufs.back().data();
        na.inputs.push_back(t.present ? &a : nullptr);
        inp.push_back(t.present ? bufs.back().data() : nullptr);
      } else {
        na.outputs.push_back(&a);
        outp.push_back(bufs.back().data());
      }
    }
    const KernelEntry* e = KernelRegistry::Get().Find(domain_.c_str(), op_.c_str());
    if (!e) {
      *msg = "no kernel";
      return false;
    }
    std::unique_ptr<Kernel> k;
    Err err = e->create(na, &k);
    if (!err.ok()) {
      *msg = err.message;
      return false;
    }
    err = k->Run(inp.data(), outp.data());
    if (!err.ok()) {
      *msg = err.message;
      return false;
    }
    for (size_t i = 0; i < out.size(); ++i) {
      const AlignedBuffer& b = bufs[in.size() + i];
      out[i].bytes.assign(b.data(), b.data() + b.size());
    }
    return true;
  }

  void SetInts(const std::string& name, std::vector<int64_t> v) { ints.push_back({name, 0, std::move(v), true}); }
  void SetInt(const std::string& name, int64_t v) { ints.push_back({name, v, {}, false}); }

 private:
  std::string op_, domain_;
};

std::vector<float> Random(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

template <typename T>
std::vector<uint8_t> Bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<float> Floats(const std::vector<uint8_t>& b, size_t n) {
  std::vector<float> v(n);
  std::memcpy(v.data(), b.data(), n * sizeof(float));
  return v;
}

// NCHW <-> NHWC.
std::vector<float> ToNhwc(const std::vector<float>& x, const Dims& d) {
  const int64_t N = d[0], C = d[1], HW = d[2] * d[3];
  std::vector<float> y(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) y[(n * HW + p) * C + c] = x[(n * C + c) * HW + p];
  return y;
}
std::vector<float> FromNhwc(const std::vector<float>& y, const Dims& d) {
  const int64_t N = d[0], C = d[1], HW = d[2] * d[3];
  std::vector<float> x(y.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) x[(n * C + c) * HW + p] = y[(n * HW + p) * C + c];
  return x;
}
// NCHW -> nChw16c (channels padded to 16 with zeros).
std::vector<float> ToBlocked16(const std::vector<float>& x, const Dims& d) {
  const int64_t N = d[0], C = d[1], HW = d[2] * d[3], CB = (C + 15) / 16;
  std::vector<float> y(static_cast<size_t>(N * CB * 16 * HW), 0.f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) y[((n * CB + c / 16) * HW + p) * 16 + c % 16] = x[(n * C + c) * HW + p];
  return y;
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, float tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1.f + std::fabs(want[i]))) << what << " at " << i;
}

Tensor T(Dims d, const std::vector<float>& v, bool is_const = false) {
  Tensor t;
  t.dims = std::move(d);
  t.bytes = Bytes(v);
  t.is_const = is_const;
  return t;
}
Tensor Out(Dims d, int32_t dtype = TSR_DTYPE_F32) {
  Tensor t;
  t.dims = std::move(d);
  t.dtype = dtype;
  return t;
}

// A 3x3 conv (pad 1) with bias: plain reference through the same op, no layouts.
struct ConvCase {
  Dims xd{2, 16, 6, 6}, wd{32, 16, 3, 3}, yd{2, 32, 6, 6};
  std::vector<float> x = Random(2 * 16 * 36, 1), w = Random(32 * 16 * 9, 2, -0.2f, 0.2f), b = Random(32, 3);
  void Setup(LayoutNode& n) {
    n.SetInts("pads", {1, 1, 1, 1});
    n.SetInts("kernel_shape", {3, 3});
  }
};

std::vector<float> PlainConv(ConvCase& c, const std::vector<float>* z, const std::string& act) {
  LayoutNode n(z || !act.empty() ? "FusedConv" : "Conv", z || !act.empty() ? "tessera" : "");
  c.Setup(n);
  n.in = {T(c.xd, c.x), T(c.wd, c.w, true), T({32}, c.b, true)};
  if (z) {
    n.in.push_back(T(c.yd, *z));
    n.SetInt("has_residual", 1);
  }
  if (!act.empty()) n.strings.push_back({"activation", act});
  n.out = {Out(c.yd)};
  std::string msg;
  EXPECT_TRUE(n.Run(&msg)) << msg;
  return Floats(n.out[0].bytes, static_cast<size_t>(NumElements(c.yd)));
}

TEST(LayoutKernels, ConvReadsAndWritesNhwc) {
  ConvCase c;
  std::vector<float> want = PlainConv(c, nullptr, "");
  LayoutNode n("Conv");
  c.Setup(n);
  n.in = {T(c.xd, ToNhwc(c.x, c.xd)), T(c.wd, c.w, true), T({32}, c.b, true)};
  n.out = {Out(c.yd)};
  n.strs = {{"_tsr_in_layouts", {"nhwc", "", ""}}, {"_tsr_out_layouts", {"nhwc"}}};
  std::string msg;
  ASSERT_TRUE(n.Run(&msg)) << msg;
  std::vector<float> got = FromNhwc(Floats(n.out[0].bytes, want.size()), c.yd);
  ExpectNear(got, want, 1e-4f, "nhwc conv");
}

TEST(LayoutKernels, ConvPlainInBlockedOut) {
  ConvCase c;
  std::vector<float> want = PlainConv(c, nullptr, "");
  LayoutNode n("Conv");
  c.Setup(n);
  n.in = {T(c.xd, c.x), T(c.wd, c.w, true), T({32}, c.b, true)};
  n.out = {Out(c.yd)};
  n.strs = {{"_tsr_out_layouts", {"nChw16c"}}};
  std::string msg;
  ASSERT_TRUE(n.Run(&msg)) << msg;
  // 32 channels: no padding, blocked = 2 blocks of 16.
  std::vector<float> got = Floats(n.out[0].bytes, want.size());
  ExpectNear(got, ToBlocked16(want, c.yd), 1e-4f, "nChw16c conv");
}

TEST(LayoutKernels, FusedConvResidualInNhwcWithRelu) {
  ConvCase c;
  std::vector<float> z = Random(static_cast<size_t>(NumElements(c.yd)), 9);
  std::vector<float> want = PlainConv(c, &z, "Relu");
  LayoutNode n("FusedConv", "tessera");
  c.Setup(n);
  n.in = {T(c.xd, ToNhwc(c.x, c.xd)), T(c.wd, c.w, true), T({32}, c.b, true), T(c.yd, ToNhwc(z, c.yd))};
  n.SetInt("has_residual", 1);
  n.strings.push_back({"activation", "Relu"});
  n.out = {Out(c.yd)};
  n.strs = {{"_tsr_in_layouts", {"nhwc", "", "", "nhwc"}}, {"_tsr_out_layouts", {"nhwc"}}};
  std::string msg;
  ASSERT_TRUE(n.Run(&msg)) << msg;
  ExpectNear(FromNhwc(Floats(n.out[0].bytes, want.size()), c.yd), want, 1e-4f, "fused nhwc");
}

TEST(LayoutKernels, FusedConvResidualPlainOutputNhwc) {
  // Residual plain, output nhwc: the residual is reordered into dst's layout.
  ConvCase c;
  std::vector<float> z = Random(static_cast<size_t>(NumElements(c.yd)), 10);
  std::vector<float> want = PlainConv(c, &z, "");
  LayoutNode n("FusedConv", "tessera");
  c.Setup(n);
  n.in = {T(c.xd, c.x), T(c.wd, c.w, true), T({32}, c.b, true), T(c.yd, z)};
  n.SetInt("has_residual", 1);
  n.out = {Out(c.yd)};
  n.strs = {{"_tsr_out_layouts", {"nhwc"}}};
  std::string msg;
  ASSERT_TRUE(n.Run(&msg)) << msg;
  ExpectNear(FromNhwc(Floats(n.out[0].bytes, want.size()), c.yd), want, 1e-4f, "fused plain z");
}

std::vector<float> PlainPool(const char* op, const Dims& xd, const Dims& yd, const std::vector<float>& x,
                             bool ceil_include_pad) {
  LayoutNode n(op);
  n.SetInts("kernel_shape", {3, 3});
  n.SetInts("strides", {2, 2});
  n.SetInts("pads", {1, 1, 1, 1});
  if (ceil_include_pad) {
    n.SetInt("ceil_mode", 1);
    n.SetInt("count_include_pad", 1);
  }
  n.in = {T(xd, x)};
  n.out = {Out(yd)};
  std::string msg;
  EXPECT_TRUE(n.Run(&msg)) << msg;
  return Floats(n.out[0].bytes, static_cast<size_t>(NumElements(yd)));
}

TEST(LayoutKernels, PoolsReadAndWriteNhwc) {
  for (const char* op : {"MaxPool", "AveragePool"}) {
    for (bool ceil_pad : {false, true}) {
      if (ceil_pad && std::string(op) == "MaxPool") continue;
      // 8x8, k3 s2 p1: 4x4 (floor) or 5x5 with ceil_mode... (8+2-3)/2+1 = 4 either way;
      // use 9x9: floor 5, ceil 5 -> choose 10x10: floor 5, ceil 6 (last window starts at 10 >= 10+1? no).
      Dims xd{1, 16, 10, 10};
      Dims yd{1, 16, ceil_pad ? 6 : 5, ceil_pad ? 6 : 5};
      std::vector<float> x = Random(static_cast<size_t>(NumElements(xd)), 4);
      std::vector<float> want = PlainPool(op, xd, yd, x, ceil_pad);
      LayoutNode n(op);
      n.SetInts("kernel_shape", {3, 3});
      n.SetInts("strides", {2, 2});
      n.SetInts("pads", {1, 1, 1, 1});
      if (ceil_pad) {
        n.SetInt("ceil_mode", 1);
        n.SetInt("count_include_pad", 1);
      }
      n.in = {T(xd, ToNhwc(x, xd))};
      n.out = {Out(yd)};
      n.strs = {{"_tsr_in_layouts", {"nhwc"}}, {"_tsr_out_layouts", {"nhwc"}}};
      std::string msg;
      ASSERT_TRUE(n.Run(&msg)) << op << ": " << msg;
      ExpectNear(FromNhwc(Floats(n.out[0].bytes, want.size()), yd), want, 1e-5f, op);
    }
  }
}

TEST(LayoutKernels, LayoutConvertRoundTripsPaddedBlocks) {
  // 20 channels: nChw16c pads to 32.
  Dims d{2, 20, 3, 3};
  std::vector<float> x = Random(static_cast<size_t>(NumElements(d)), 5);
  LayoutNode to("LayoutConvert", "tessera");
  to.strings = {{"from", ""}, {"to", "nChw16c"}};
  to.in = {T(d, x)};
  to.out = {Out(d)};
  to.out[0].bytes.resize(2 * 32 * 9 * sizeof(float));  // the padded size
  std::string msg;
  ASSERT_TRUE(to.Run(&msg)) << msg;
  std::vector<float> blocked = Floats(to.out[0].bytes, 2 * 32 * 9);
  ExpectNear(blocked, ToBlocked16(x, d), 0.f, "to nChw16c");
  LayoutNode back("LayoutConvert", "tessera");
  back.strings = {{"from", "nChw16c"}, {"to", ""}};
  back.in = {T(d, blocked)};
  back.out = {Out(d)};
  ASSERT_TRUE(back.Run(&msg)) << msg;
  ExpectNear(Floats(back.out[0].bytes, x.size()), x, 0.f, "back to plain");
}

TEST(LayoutKernels, LayoutConvertNhwcToPlain) {
  Dims d{1, 3, 2, 4};
  std::vector<float> x = Random(static_cast<size_t>(NumElements(d)), 6);
  LayoutNode n("LayoutConvert", "tessera");
  n.strings = {{"from", "nhwc"}, {"to", ""}};
  n.in = {T(d, ToNhwc(x, d))};
  n.out = {Out(d)};
  std::string msg;
  ASSERT_TRUE(n.Run(&msg)) << msg;
  ExpectNear(Floats(n.out[0].bytes, x.size()), x, 0.f, "nhwc -> plain");
}

TEST(LayoutKernels, UnknownLayoutIsAClearError) {
  ConvCase c;
  LayoutNode n("Conv");
  c.Setup(n);
  n.in = {T(c.xd, c.x), T(c.wd, c.w, true), T({32}, c.b, true)};
  n.out = {Out(c.yd)};
  n.strs = {{"_tsr_in_layouts", {"nchw_weird", "", ""}}};
  std::string msg;
  EXPECT_FALSE(n.Run(&msg));
  EXPECT_NE(msg.find("nchw_weird"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Conv"), std::string::npos) << msg;

  LayoutNode bad("LayoutConvert", "tessera");
  bad.strings = {{"from", "nhwc"}, {"to", ""}};
  bad.in = {T({2, 3}, Random(6, 1))};  // rank 2: nhwc does not fit
  bad.out = {Out({2, 3})};
  EXPECT_FALSE(bad.Run(&msg));
  EXPECT_NE(msg.find("nhwc"), std::string::npos) << msg;

  LayoutNode mismatch("LayoutConvert", "tessera");
  mismatch.strings = {{"from", "nhwc"}, {"to", ""}};
  mismatch.in = {T({1, 2, 2, 2}, Random(8, 1))};
  mismatch.out = {Out({1, 2, 2, 1})};
  EXPECT_FALSE(mismatch.Run(&msg));
  EXPECT_NE(msg.find("must have X's type"), std::string::npos) << msg;
}

// ---- the backend's preferences --------------------------------------------------------

TEST(LayoutKernels, ChooseLayoutsPrefersConvLayoutAndPropagatesThroughPools) {
  // Values: 0 X [1,16,8,8], 1 W, 2 Y conv [1,32,8,8], 3 P pool [1,32,4,4], 4 W2, 5 Y2 [1,32,4,4], 6 Z [1,32,4,4] (FusedConv residual)
  std::vector<Dims> dims = {{1, 16, 8, 8}, {32, 16, 1, 1}, {1, 32, 8, 8}, {1, 32, 4, 4}, {32, 32, 1, 1}, {1, 32, 4, 4},
                            {1, 32, 4, 4}};
  std::vector<float> w1(32 * 16, 0.1f), w2(32 * 32, 0.1f);
  std::vector<tsr_value_view> vals(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    vals[i].name = "v";
    vals[i].dtype = TSR_DTYPE_F32;
    vals[i].rank = 4;
    vals[i].dims = dims[i].data();
  }
  vals[1].const_data = w1.data();
  vals[1].flags = TSR_VALUE_CONSTANT;
  vals[4].const_data = w2.data();
  vals[4].flags = TSR_VALUE_CONSTANT;
  int32_t c1_in[] = {0, 1}, c1_out[] = {2}, p_in[] = {2}, p_out[] = {3}, c2_in[] = {3, 4, -1, 6}, c2_out[] = {5};
  int64_t k[] = {2, 2}, s[] = {2, 2};
  tsr_attr_view pool_attrs[2] = {};
  pool_attrs[0].name = "kernel_shape";
  pool_attrs[0].type = TSR_ATTR_INTS;
  pool_attrs[0].count = 2;
  pool_attrs[0].ints = k;
  pool_attrs[1].name = "strides";
  pool_attrs[1].type = TSR_ATTR_INTS;
  pool_attrs[1].count = 2;
  pool_attrs[1].ints = s;
  tsr_attr_view res{};
  res.name = "has_residual";
  res.type = TSR_ATTR_INT;
  res.i = 1;
  tsr_node_view nodes[3] = {};
  nodes[0] = {"c1", "", "Conv", 17, 2, c1_in, 1, c1_out, 0, nullptr};
  nodes[1] = {"p", "", "MaxPool", 17, 1, p_in, 1, p_out, 2, pool_attrs};
  nodes[2] = {"c2", "tessera", "FusedConv", 17, 4, c2_in, 1, c2_out, 1, &res};
  int32_t gin[] = {0, 6}, gout[] = {5};
  tsr_graph_view g{sizeof(tsr_graph_view), static_cast<uint32_t>(vals.size()), vals.data(), 3, nodes, 2, gin, 1, gout};
  std::vector<tsr_layout_choice> out(vals.size());
  std::memset(out.data(), 0, out.size() * sizeof(out[0]));
  std::vector<uint8_t> acc(7, 0);
  Err e = ChooseLayouts(g, out.data(), acc.data());
  ASSERT_TRUE(e.ok()) << e.message;
  const std::string conv_layout = out[2].layout;
  ASSERT_FALSE(conv_layout.empty()) << "oneDNN picked a plain layout for a 16->32 channel conv";
  EXPECT_EQ(std::string(out[3].layout), conv_layout);  // the pool follows its input
  EXPECT_EQ(std::string(out[5].layout), conv_layout);
  EXPECT_GE(out[2].bytes, static_cast<uint64_t>(32 * 64 * 4));
  EXPECT_EQ(std::string(out[0].layout), "");  // a segment input: no producer here
  EXPECT_EQ(acc[0], 0);                        // c1 reads X (no preferred layout)
  EXPECT_EQ(acc[2], 1);                        // the pool reads the conv output
  EXPECT_EQ(acc[3], 1);                        // c2 reads the pool output
  EXPECT_EQ(acc[6], 0);                        // c2's residual is a segment input
}

// ---- bf16 -----------------------------------------------------------------------------------

uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFF + ((u >> 16) & 1);  // round to nearest even
  return static_cast<uint16_t>(u >> 16);
}
float FromBf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
std::vector<float> RoundBf16(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = FromBf16(ToBf16(v[i]));
  return r;
}
Tensor TB(Dims d, const std::vector<float>& v, bool is_const = false) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = ToBf16(v[i]);
  Tensor t;
  t.dtype = TSR_DTYPE_BF16;
  t.dims = std::move(d);
  t.bytes = Bytes(h);
  t.is_const = is_const;
  return t;
}
std::vector<float> Bf16Floats(const std::vector<uint8_t>& b, size_t n) {
  std::vector<uint16_t> h(n);
  std::memcpy(h.data(), b.data(), n * 2);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = FromBf16(h[i]);
  return v;
}

// Tolerance for bf16 outputs: the inputs are identical (bf16-rounded) in both
// runs and oneDNN accumulates in f32, so the difference is the rounding of the
// output to bf16 (relative 2^-9) plus f32 summation-order noise:
// |got - want| <= 8e-3 * (1 + |want|).
constexpr float kBf16Tol = 8e-3f;

struct Bf16Case {
  std::string op, domain;
  std::vector<std::pair<Dims, std::vector<float>>> inputs;  // f32 values (rounded to bf16 below)
  std::vector<bool> is_const;
  std::vector<bool> keep_f32;  // this input stays f32 in the bf16 run (e.g. a bias)
  Dims ydims;
  std::function<void(LayoutNode&)> attrs;
};

void CheckBf16(const Bf16Case& c) {
  SCOPED_TRACE(c.op);
  LayoutNode ref(c.op, c.domain), got(c.op, c.domain);
  c.attrs(ref);
  c.attrs(got);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    std::vector<float> r = RoundBf16(c.inputs[i].second);
    ref.in.push_back(T(c.inputs[i].first, r, c.is_const[i]));
    got.in.push_back(c.keep_f32[i] ? T(c.inputs[i].first, r, c.is_const[i]) : TB(c.inputs[i].first, r, c.is_const[i]));
  }
  ref.out = {Out(c.ydims)};
  got.out = {Out(c.ydims, TSR_DTYPE_BF16)};
  std::string msg;
  ASSERT_TRUE(ref.Run(&msg)) << msg;
  ASSERT_TRUE(got.Run(&msg)) << msg;
  const size_t n = static_cast<size_t>(NumElements(c.ydims));
  ExpectNear(Bf16Floats(got.out[0].bytes, n), Floats(ref.out[0].bytes, n), kBf16Tol, c.op.c_str());
}

TEST(Bf16Kernels, ConvAndFusedConv) {
  for (bool fused : {false, true}) {
    Bf16Case c;
    c.op = fused ? "FusedConv" : "Conv";
    c.domain = fused ? "tessera" : "";
    c.inputs = {{{1, 16, 6, 6}, Random(16 * 36, 1)}, {{32, 16, 3, 3}, Random(32 * 16 * 9, 2, -0.2f, 0.2f)},
                {{32}, Random(32, 3)}};
    c.is_const = {false, true, true};
    c.keep_f32 = {false, false, true};  // bias f32
    if (fused) {
      c.inputs.push_back({{1, 32, 6, 6}, Random(32 * 36, 4)});
      c.is_const.push_back(false);
      c.keep_f32.push_back(false);
    }
    c.ydims = {1, 32, 6, 6};
    c.attrs = [fused](LayoutNode& n) {
      n.SetInts("pads", {1, 1, 1, 1});
      if (fused) {
        n.SetInt("has_residual", 1);
        n.strings.push_back({"activation", "Relu"});
      }
    };
    CheckBf16(c);
  }
}

TEST(Bf16Kernels, MatMulFusedMatMulGemmFusedGemm) {
  {
    Bf16Case c;
    c.op = "MatMul";
    c.inputs = {{{2, 5, 24}, Random(240, 1)}, {{24, 7}, Random(168, 2)}};
    c.is_const = {false, true};
    c.keep_f32 = {false, false};
    c.ydims = {2, 5, 7};
    c.attrs = [](LayoutNode&) {};
    CheckBf16(c);
  }
  {
    Bf16Case c;
    c.op = "FusedMatMul";
    c.domain = "tessera";
    c.inputs = {{{5, 24}, Random(120, 3)}, {{24, 7}, Random(168, 4)}, {{7}, Random(7, 5)}};
    c.is_const = {false, false, true};
    c.keep_f32 = {false, false, true};
    c.ydims = {5, 7};
    c.attrs = [](LayoutNode& n) { n.strings.push_back({"activation", "Relu"}); };
    CheckBf16(c);
  }
  for (bool fused : {false, true}) {
    Bf16Case c;
    c.op = fused ? "FusedGemm" : "Gemm";
    c.domain = fused ? "tessera" : "";
    c.inputs = {{{5, 24}, Random(120, 6)}, {{7, 24}, Random(168, 7)}, {{7}, Random(7, 8)}};
    c.is_const = {false, true, true};
    c.keep_f32 = {false, false, true};
    c.ydims = {5, 7};
    c.attrs = [fused](LayoutNode& n) {
      n.SetInt("transB", 1);
      n.floats.push_back({"beta", 0.5f});
      if (fused) n.strings.push_back({"activation", "Relu"});
    };
    CheckBf16(c);
  }
}

TEST(Bf16Kernels, Pools) {
  for (const char* op : {"MaxPool", "AveragePool"}) {
    Bf16Case c;
    c.op = op;
    c.inputs = {{{1, 8, 9, 9}, Random(8 * 81, 9)}};
    c.is_const = {false};
    c.keep_f32 = {false};
    c.ydims = {1, 8, 5, 5};
    c.attrs = [](LayoutNode& n) {
      n.SetInts("kernel_shape", {3, 3});
      n.SetInts("strides", {2, 2});
      n.SetInts("pads", {1, 1, 1, 1});
    };
    CheckBf16(c);
  }
}

TEST(Bf16Kernels, BadTypesAreClearErrors) {
  LayoutNode n("Conv");
  n.SetInts("pads", {0, 0, 0, 0});
  Tensor x = T({1, 2, 3, 3}, Random(18, 1));
  x.dtype = TSR_DTYPE_F16;
  n.in = {x, T({4, 2, 1, 1}, Random(8, 2), true)};
  n.out = {Out({1, 4, 3, 3})};
  std::string msg;
  EXPECT_FALSE(n.Run(&msg));
  EXPECT_NE(msg.find("f32 and bf16"), std::string::npos) << msg;

  // bf16 Gemm with a non-constant C has no path.
  LayoutNode g("Gemm");
  g.in = {TB({2, 3}, Random(6, 1)), TB({3, 4}, Random(12, 2), true), TB({4}, Random(4, 3))};
  g.out = {Out({2, 4}, TSR_DTYPE_BF16)};
  EXPECT_FALSE(g.Run(&msg));
  EXPECT_NE(msg.find("bf16"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Gemm"), std::string::npos) << msg;
}

}  // namespace
}  // namespace tessera::cpu::testing
