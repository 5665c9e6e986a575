// The CPU backend's convolution layout preference (layouts.h ConvLayoutMode):
// which convs get the 16-channel blocked layout, with padded-block sizes, and
// that FusedConv computes the plain numbers when it reads and writes blocked
// memory, including with Y bound to the same memory as its residual Z (the
// in-place contract in backend.h) and with channel counts that are not a
// multiple of 16.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <deque>
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

// ---- a small graph view for ChooseLayouts ---------------------------------------------

class ViewBuilder {
 public:
  // Adds a value; constants get zero-filled f32 data.
  int32_t Value(Dims d, bool is_const = false, int32_t dtype = TSR_DTYPE_F32) {
    dims_.push_back(std::move(d));
    dtypes_.push_back(dtype);
    consts_.emplace_back(is_const ? static_cast<size_t>(NumElements(dims_.back())) : 0, 0.f);
    return static_cast<int32_t>(dims_.size() - 1);
  }
  // A node; `ints` are INTS attributes, `int1` INT attributes.
  void Node(const char* domain, const char* op, std::vector<int32_t> in, std::vector<int32_t> out,
            std::vector<std::pair<std::string, std::vector<int64_t>>> ints = {},
            std::vector<std::pair<std::string, int64_t>> int1 = {}) {
    nodes_.push_back({domain, op, std::move(in), std::move(out), std::move(ints), std::move(int1)});
  }
  // Runs ChooseLayouts in `mode`; out/acc are per value / per node input.
  Err Choose(ConvLayoutMode mode, std::vector<tsr_layout_choice>* out, std::vector<uint8_t>* acc) {
    std::vector<tsr_value_view> vals(dims_.size());
    for (size_t i = 0; i < dims_.size(); ++i) {
      vals[i].name = "v";
      vals[i].dtype = dtypes_[i];
      vals[i].rank = static_cast<int32_t>(dims_[i].size());
      vals[i].dims = dims_[i].data();
      if (!consts_[i].empty()) {
        vals[i].const_data = consts_[i].data();
        vals[i].flags = TSR_VALUE_CONSTANT;
      }
    }
    std::deque<std::vector<tsr_attr_view>> attrs;
    std::vector<tsr_node_view> nv;
    size_t total_inputs = 0;
    for (NodeSpec& n : nodes_) {
      attrs.emplace_back();
      for (auto& [name, v] : n.ints) {
        tsr_attr_view a{};
        a.name = name.c_str();
        a.type = TSR_ATTR_INTS;
        a.count = v.size();
        a.ints = v.data();
        attrs.back().push_back(a);
      }
      for (auto& [name, v] : n.int1) {
        tsr_attr_view a{};
        a.name = name.c_str();
        a.type = TSR_ATTR_INT;
        a.i = v;
        attrs.back().push_back(a);
      }
      tsr_node_view v{};
      v.name = n.op;
      v.domain = n.domain;
      v.op_type = n.op;
      v.opset = 17;
      v.num_inputs = static_cast<uint32_t>(n.in.size());
      v.inputs = n.in.data();
      v.num_outputs = static_cast<uint32_t>(n.out.size());
      v.outputs = n.out.data();
      v.num_attrs = static_cast<uint32_t>(attrs.back().size());
      v.attrs = attrs.back().data();
      nv.push_back(v);
      total_inputs += n.in.size();
    }
    tsr_graph_view g{};
    g.struct_size = sizeof(tsr_graph_view);
    g.num_values = static_cast<uint32_t>(vals.size());
    g.values = vals.data();
    g.num_nodes = static_cast<uint32_t>(nv.size());
    g.nodes = nv.data();
    out->assign(vals.size(), tsr_layout_choice{});
    for (auto& c : *out) std::memset(&c, 0, sizeof(c));
    acc->assign(total_inputs, 0);
    return ChooseLayouts(g, mode, out->data(), acc->data());
  }

 private:
  struct NodeSpec {
    const char* domain;
    const char* op;
    std::vector<int32_t> in, out;
    std::vector<std::pair<std::string, std::vector<int64_t>>> ints;
    std::vector<std::pair<std::string, int64_t>> int1;
  };
  std::vector<Dims> dims_;
  std::vector<int32_t> dtypes_;
  std::vector<std::vector<float>> consts_;
  std::vector<NodeSpec> nodes_;
};

std::string L(const tsr_layout_choice& c) { return std::string(c.layout, strnlen(c.layout, sizeof(c.layout))); }

uint64_t PaddedBytes(const Dims& d, int64_t elem) {
  const int64_t cp = (d[1] + 15) / 16 * 16;
  int64_t n = d[0] * cp * elem;
  for (size_t i = 2; i < d.size(); ++i) n *= d[i];
  return static_cast<uint64_t>(n);
}

// X [1,C,8,8] -> conv (k x k, pad k/2, group g) -> Y [1,M,8,8] -> MaxPool 2x2 -> P.
struct ConvPool {
  ViewBuilder b;
  int32_t x, y, p;
  ConvPool(int64_t C, int64_t M, int64_t k = 1, int64_t group = 1, int32_t dtype = TSR_DTYPE_F32) {
    x = b.Value({1, C, 8, 8}, false, dtype);
    int32_t w = b.Value({M, C / group, k, k}, true, dtype);
    y = b.Value({1, M, 8, 8}, false, dtype);
    p = b.Value({1, M, 4, 4}, false, dtype);
    b.Node("", "Conv", {x, w}, {y}, {{"pads", {k / 2, k / 2, k / 2, k / 2}}}, {{"group", group}});
    b.Node("", "MaxPool", {y}, {p}, {{"kernel_shape", {2, 2}}, {"strides", {2, 2}}});
  }
};

TEST(CpuConvLayouts, BlockedModePicksNChw16cAndThePoolFollows) {
  ConvPool c(16, 32);
  std::vector<tsr_layout_choice> out;
  std::vector<uint8_t> acc;
  Err e = c.b.Choose(ConvLayoutMode::kBlocked, &out, &acc);
  ASSERT_TRUE(e.ok()) << e.message;
  EXPECT_EQ(L(out[c.y]), "nChw16c");
  EXPECT_EQ(out[c.y].bytes, PaddedBytes({1, 32, 8, 8}, 4));
  EXPECT_EQ(L(out[c.p]), "nChw16c");
  EXPECT_EQ(out[c.p].bytes, PaddedBytes({1, 32, 4, 4}, 4));
  EXPECT_EQ(acc[2], 1);  // the pool reads the blocked conv output
}

TEST(CpuConvLayouts, OneDnnPickModeKeepsOneDnnsChoice) {
  ConvPool c(16, 32);
  std::vector<tsr_layout_choice> out;
  std::vector<uint8_t> acc;
  Err e = c.b.Choose(ConvLayoutMode::kOneDnnPick, &out, &acc);
  ASSERT_TRUE(e.ok()) << e.message;
  EXPECT_FALSE(L(out[c.y]).empty());
  EXPECT_NE(L(out[c.y]), "nChw16c");  // oneDNN 2.6 on AVX-512 picks nhwc with format_tag::any
  EXPECT_EQ(L(out[c.p]), L(out[c.y]));
}

TEST(CpuConvLayouts, PaddedChannelsFirstConvAndBf16AreBlocked) {
  struct Case {
    int64_t C, M, k, group;
    int32_t dtype;
    const char* what;
  } cases[] = {{16, 24, 1, 1, TSR_DTYPE_F32, "24 output channels (padded to 32)"},
               {24, 144, 1, 1, TSR_DTYPE_F32, "24 input channels"},
               {3, 32, 3, 1, TSR_DTYPE_F32, "first conv (3 input channels)"},
               {32, 64, 3, 1, TSR_DTYPE_BF16, "bf16"}};
  for (const Case& k : cases) {
    ConvPool c(k.C, k.M, k.k, k.group, k.dtype);
    std::vector<tsr_layout_choice> out;
    std::vector<uint8_t> acc;
    Err e = c.b.Choose(ConvLayoutMode::kBlocked, &out, &acc);
    ASSERT_TRUE(e.ok()) << k.what << ": " << e.message;
    EXPECT_EQ(L(out[c.y]), "nChw16c") << k.what;
    EXPECT_EQ(out[c.y].bytes, PaddedBytes({1, k.M, 8, 8}, k.dtype == TSR_DTYPE_BF16 ? 2 : 4)) << k.what;
  }
}

TEST(CpuConvLayouts, DepthwiseIsBlockedWhenItsInputIs) {
  for (int64_t C : {32, 144}) {
    // X -> 1x1 conv -> A (blocked) -> depthwise 3x3 -> Y: blocked too.
    ViewBuilder b;
    int32_t x = b.Value({1, 16, 8, 8}), w1 = b.Value({C, 16, 1, 1}, true), a = b.Value({1, C, 8, 8});
    int32_t w2 = b.Value({C, 1, 3, 3}, true), y = b.Value({1, C, 8, 8});
    b.Node("", "Conv", {x, w1}, {a});
    b.Node("", "Conv", {a, w2}, {y}, {{"pads", {1, 1, 1, 1}}}, {{"group", C}});
    std::vector<tsr_layout_choice> out;
    std::vector<uint8_t> acc;
    ASSERT_TRUE(b.Choose(ConvLayoutMode::kBlocked, &out, &acc).ok());
    EXPECT_EQ(L(out[a]), "nChw16c") << C;
    EXPECT_EQ(L(out[y]), "nChw16c") << C;
    EXPECT_EQ(acc[2], 1) << C;
    // Reading a plain segment input, oneDNN 2.6 has only its reference
    // depthwise kernel for a blocked dst: keep oneDNN's pick there.
    ConvPool alone(C, C, 3, C);
    ASSERT_TRUE(alone.b.Choose(ConvLayoutMode::kBlocked, &out, &acc).ok());
    EXPECT_NE(L(out[alone.y]), "nChw16c") << C;
  }
}

TEST(CpuConvLayouts, GroupsOfFewerThan16ChannelsKeepOneDnnsChoice) {
  // 4 groups of 8 channels: no whole blocks per group.
  ConvPool blocked(32, 32, 3, 4);
  ConvPool pick(32, 32, 3, 4);
  std::vector<tsr_layout_choice> ob, op;
  std::vector<uint8_t> ab, ap;
  ASSERT_TRUE(blocked.b.Choose(ConvLayoutMode::kBlocked, &ob, &ab).ok());
  ASSERT_TRUE(pick.b.Choose(ConvLayoutMode::kOneDnnPick, &op, &ap).ok());
  EXPECT_EQ(L(ob[blocked.y]), L(op[pick.y]));
  EXPECT_EQ(ob[blocked.y].bytes, op[pick.y].bytes);
}

TEST(CpuConvLayouts, ChainOfConvsStaysBlockedAndOtherRanksUseTheirBlockedName) {
  // X -> c1 -> A -> c2 -> B: c2 reads A blocked.
  ViewBuilder b;
  int32_t x = b.Value({2, 16, 6, 6}), w1 = b.Value({32, 16, 3, 3}, true), a = b.Value({2, 32, 6, 6});
  int32_t w2 = b.Value({32, 32, 1, 1}, true), y = b.Value({2, 32, 6, 6});
  b.Node("", "Conv", {x, w1}, {a}, {{"pads", {1, 1, 1, 1}}});
  b.Node("tessera", "FusedConv", {a, w2}, {y});
  std::vector<tsr_layout_choice> out;
  std::vector<uint8_t> acc;
  ASSERT_TRUE(b.Choose(ConvLayoutMode::kBlocked, &out, &acc).ok());
  EXPECT_EQ(L(out[a]), "nChw16c");
  EXPECT_EQ(L(out[y]), "nChw16c");
  EXPECT_EQ(acc[0], 0);  // X: no preferred layout
  EXPECT_EQ(acc[2], 1);  // c2 reads A as it is

  // 1-D: nCw16c.
  ViewBuilder b1;
  int32_t x1 = b1.Value({1, 16, 20}), w = b1.Value({32, 16, 3}, true), y1 = b1.Value({1, 32, 18});
  b1.Node("", "Conv", {x1, w}, {y1});
  ASSERT_TRUE(b1.Choose(ConvLayoutMode::kBlocked, &out, &acc).ok());
  EXPECT_EQ(L(out[y1]), "nCw16c");
}

TEST(CpuConvLayouts, BadConvsGetNoPreferenceAndNoError) {
  // W does not match X's channels; a rank-2 input: both are the kernel
  // factory's errors to report, so ChooseLayouts stays silent.
  ViewBuilder b;
  int32_t x = b.Value({1, 16, 8, 8}), w = b.Value({32, 12, 1, 1}, true), y = b.Value({1, 32, 8, 8});
  int32_t x2 = b.Value({4, 16}), w2 = b.Value({8, 16}, true), y2 = b.Value({4, 8});
  b.Node("", "Conv", {x, w}, {y});
  b.Node("", "Conv", {x2, w2}, {y2});
  std::vector<tsr_layout_choice> out;
  std::vector<uint8_t> acc;
  Err e = b.Choose(ConvLayoutMode::kBlocked, &out, &acc);
  ASSERT_TRUE(e.ok()) << e.message;
  EXPECT_EQ(L(out[y]), "");
  EXPECT_EQ(L(out[y2]), "");
}

// ---- FusedConv kernels on blocked memory ------------------------------------------------

// NCHW <-> nChw16c (channels padded with zeros to a multiple of 16).
std::vector<float> ToBlocked(const std::vector<float>& x, const Dims& d) {
  const int64_t N = d[0], C = d[1], HW = d[2] * d[3], CB = (C + 15) / 16;
  std::vector<float> y(static_cast<size_t>(N * CB * 16 * HW), 0.f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) y[((n * CB + c / 16) * HW + p) * 16 + c % 16] = x[(n * C + c) * HW + p];
  return y;
}
std::vector<float> FromBlocked(const std::vector<float>& y, const Dims& d) {
  const int64_t N = d[0], C = d[1], HW = d[2] * d[3], CB = (C + 15) / 16;
  std::vector<float> x(static_cast<size_t>(N * C * HW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) x[(n * C + c) * HW + p] = y[((n * CB + c / 16) * HW + p) * 16 + c % 16];
  return x;
}

uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}
float FromBf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Direct NCHW convolution + bias + Z, then relu: the reference.
std::vector<float> RefFusedConv(const std::vector<float>& x, const Dims& xd, const std::vector<float>& w, int64_t M,
                                int64_t k, int64_t group, const std::vector<float>& b, const std::vector<float>& z) {
  const int64_t N = xd[0], C = xd[1], H = xd[2], W = xd[3], pad = k / 2, cg = C / group, mg = M / group;
  std::vector<float> y(static_cast<size_t>(N * M * H * W));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < H; ++oh)
        for (int64_t ow = 0; ow < W; ++ow) {
          double acc = b[m];
          const int64_t g = m / mg;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t kh = 0; kh < k; ++kh)
              for (int64_t kw = 0; kw < k; ++kw) {
                const int64_t ih = oh + kh - pad, iw = ow + kw - pad;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += double(x[((n * C + g * cg + ci) * H + ih) * W + iw]) * w[((m * cg + ci) * k + kh) * k + kw];
              }
          const size_t o = static_cast<size_t>(((n * M + m) * H + oh) * W + ow);
          acc += z[o];
          y[o] = static_cast<float>(acc > 0 ? acc : 0);
        }
  return y;
}

// Runs tessera.FusedConv(X, W, B, Z) + Relu once with X, Z and Y in
// nChw16c; `in_place` binds Y to Z's memory. Returns Y in NCHW.
struct BlockedFusedConv {
  Dims xd, yd;
  int64_t k = 1, group = 1;
  int32_t dtype = TSR_DTYPE_F32;
  std::vector<float> x, w, b, z;

  Err Run(bool in_place, std::vector<float>* y) const {
    const int64_t M = yd[1];
    std::vector<int64_t> pads(4, k / 2), ks{k, k};
    const char* in_layouts[] = {"nChw16c", "", "", "nChw16c"};
    const char* out_layouts[] = {"nChw16c"};
    const char* act = "Relu";
    std::vector<tsr_attr_view> attrs(7, tsr_attr_view{});
    for (size_t i = 0; i < attrs.size(); ++i)
      attrs[i].name = std::array<const char*, 7>{"pads", "kernel_shape", "group", "has_residual", "activation",
                                                  "_tsr_in_layouts", "_tsr_out_layouts"}[i];
    attrs[0].type = TSR_ATTR_INTS;
    attrs[0].count = 4;
    attrs[0].ints = pads.data();
    attrs[1].type = TSR_ATTR_INTS;
    attrs[1].count = 2;
    attrs[1].ints = ks.data();
    attrs[2].type = TSR_ATTR_INT;
    attrs[2].i = group;
    attrs[3].type = TSR_ATTR_INT;
    attrs[3].i = 1;
    attrs[4].type = TSR_ATTR_STRING;
    attrs[4].s = act;
    attrs[4].s_len = std::strlen(act);
    attrs[5].type = TSR_ATTR_STRINGS;
    attrs[5].count = 4;
    attrs[5].strings = in_layouts;
    attrs[6].type = TSR_ATTR_STRINGS;
    attrs[6].count = 1;
    attrs[6].strings = out_layouts;
    int32_t ins[] = {0, 1, 2, 3}, outs[] = {4};
    tsr_node_view n{};
    n.name = "fc";
    n.domain = "tessera";
    n.op_type = "FusedConv";
    n.opset = 17;
    n.num_inputs = 4;
    n.inputs = ins;
    n.num_outputs = 1;
    n.outputs = outs;
    n.num_attrs = static_cast<uint32_t>(attrs.size());
    n.attrs = attrs.data();

    const Dims wd{M, xd[1] / group, k, k};
    const int64_t es = dtype == TSR_DTYPE_BF16 ? 2 : 4;
    // Buffers: X, Z/Y blocked (padded), W and B plain (W in `dtype`, B f32).
    auto encode = [&](const std::vector<float>& v, AlignedBuffer* buf) {
      if (dtype == TSR_DTYPE_BF16) {
        for (size_t i = 0; i < v.size(); ++i) reinterpret_cast<uint16_t*>(buf->data())[i] = ToBf16(v[i]);
      } else {
        std::memcpy(buf->data(), v.data(), v.size() * 4);
      }
    };
    const std::vector<float> xb = ToBlocked(x, xd), zb = ToBlocked(z, yd);
    AlignedBuffer xbuf(xb.size() * es), wbuf(w.size() * es), bbuf(b.size() * 4), zbuf(zb.size() * es),
        ybuf(zb.size() * es);
    encode(xb, &xbuf);
    encode(w, &wbuf);
    std::memcpy(bbuf.data(), b.data(), b.size() * 4);
    encode(zb, &zbuf);
    auto arg = [](int32_t t, const Dims& d, const void* c) {
      TensorArg r{};
      r.dtype = t;
      r.dims = d;
      r.numel = NumElements(d);
      r.const_data = c;
      return r;
    };
    TensorArg X = arg(dtype, xd, nullptr), Wt = arg(dtype, wd, wbuf.data()), B = arg(TSR_DTYPE_F32, {M}, bbuf.data());
    TensorArg Z = arg(dtype, yd, nullptr), Y = Z;
    NodeArgs a;
    a.node = &n;
    a.inputs = {&X, &Wt, &B, &Z};
    a.outputs = {&Y};
    const KernelEntry* e = KernelRegistry::Get().Find("tessera", "FusedConv");
    if (!e) return MakeErr(TSR_ERR_NOT_FOUND, "FusedConv is not registered");
    std::unique_ptr<Kernel> kern;
    Err err = e->create(a, &kern);
    if (!err.ok()) return err;
    void* yptr = in_place ? zbuf.data() : ybuf.data();
    const void* in[] = {xbuf.data(), wbuf.data(), bbuf.data(), zbuf.data()};
    void* out[] = {yptr};
    err = kern->Run(in, out);
    if (!err.ok()) return err;
    std::vector<float> got(zb.size());
    for (size_t i = 0; i < got.size(); ++i)
      got[i] = dtype == TSR_DTYPE_BF16 ? FromBf16(reinterpret_cast<const uint16_t*>(yptr)[i])
                                       : reinterpret_cast<const float*>(yptr)[i];
    *y = FromBlocked(got, yd);
    return Err::Ok();
  }
};

std::vector<float> Rand(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = d(rng);
  return v;
}

std::vector<float> RoundBf16(std::vector<float> v) {
  for (float& f : v) f = FromBf16(ToBf16(f));
  return v;
}

BlockedFusedConv MakeCase(Dims xd, int64_t M, int64_t k, int64_t group, int32_t dtype, uint32_t seed) {
  BlockedFusedConv c;
  c.xd = xd;
  c.yd = {xd[0], M, xd[2], xd[3]};
  c.k = k;
  c.group = group;
  c.dtype = dtype;
  c.x = Rand(static_cast<size_t>(NumElements(xd)), seed);
  c.w = Rand(static_cast<size_t>(M * (xd[1] / group) * k * k), seed + 1, -0.3f, 0.3f);
  c.b = Rand(static_cast<size_t>(M), seed + 2);
  c.z = Rand(static_cast<size_t>(NumElements(c.yd)), seed + 3);
  if (dtype == TSR_DTYPE_BF16) {
    c.x = RoundBf16(c.x);
    c.w = RoundBf16(c.w);
    c.z = RoundBf16(c.z);
  }
  return c;
}

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, float tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1.f + std::fabs(want[i]))) << what << " at " << i;
}

TEST(CpuConvLayouts, BlockedFusedConvWithResidualInPlaceMatchesReference) {
  struct Case {
    Dims xd;
    int64_t M, k, group;
    int32_t dtype;
    const char* what;
  } cases[] = {{{2, 32, 7, 7}, 32, 1, 1, TSR_DTYPE_F32, "1x1 f32"},
               {{1, 16, 6, 6}, 16, 3, 1, TSR_DTYPE_F32, "3x3 f32"},
               {{1, 24, 6, 6}, 24, 1, 1, TSR_DTYPE_F32, "24 channels (padded blocks)"},
               {{1, 144, 5, 5}, 24, 1, 1, TSR_DTYPE_F32, "144 -> 24 channels"},
               {{1, 32, 6, 6}, 32, 3, 32, TSR_DTYPE_F32, "depthwise"},
               {{2, 32, 7, 7}, 64, 1, 1, TSR_DTYPE_BF16, "1x1 bf16"},
               {{1, 24, 6, 6}, 24, 3, 1, TSR_DTYPE_BF16, "3x3 bf16, 24 channels"}};
  uint32_t seed = 100;
  for (const Case& k : cases) {
    BlockedFusedConv c = MakeCase(k.xd, k.M, k.k, k.group, k.dtype, seed += 10);
    const std::vector<float> want = RefFusedConv(c.x, c.xd, c.w, k.M, k.k, k.group, c.b, c.z);
    const float tol = k.dtype == TSR_DTYPE_BF16 ? 1e-2f : 1e-4f;
    for (bool in_place : {false, true}) {
      std::vector<float> got;
      Err e = c.Run(in_place, &got);
      ASSERT_TRUE(e.ok()) << k.what << ": " << e.message;
      ExpectClose(got, want, tol, std::string(k.what) + (in_place ? " (Y over Z)" : " (separate Y)"));
    }
  }
}

}  // namespace
}  // namespace tessera::cpu::testing
