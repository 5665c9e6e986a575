// Tests of the RNN/GRU/LSTM kernels against a naive double-precision
// reference written here (ONNX formulas, one batch row and time step at a time).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/unit/cpu/kernel_test_util.h"

namespace tessera::cpu::testing {
namespace {

using Dims = std::vector<int64_t>;

double Sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }

struct RnnCase {
  std::string op = "RNN";       // RNN | GRU | LSTM
  std::string direction = "forward";
  int64_t seq = 3, batch = 2, input = 3, hidden = 4;
  int layout = 0;
  bool bias = true, init_h = false, init_c = false, peep = false, lens = false, lbr = false;
  std::vector<int32_t> seq_lens;  // when lens
};

struct RnnData {
  std::vector<float> x, w, r, b, h0, c0, p;
};

int64_t Gates(const std::string& op) { return op == "RNN" ? 1 : op == "GRU" ? 3 : 4; }

// Returns Y (layout of c), Y_h, Y_c.
void Reference(const RnnCase& c, const RnnData& d, std::vector<float>* Y, std::vector<float>* YH,
               std::vector<float>* YC) {
  const int64_t S = c.seq, N = c.batch, I = c.input, H = c.hidden, G = Gates(c.op);
  const int64_t D = c.direction == "bidirectional" ? 2 : 1;
  Y->assign(static_cast<size_t>(S * D * N * H), 0.f);
  YH->assign(static_cast<size_t>(D * N * H), 0.f);
  YC->assign(static_cast<size_t>(D * N * H), 0.f);
  auto f = [&](double v) { return std::tanh(v); };  // RNN's default activation
  for (int64_t dir = 0; dir < D; ++dir) {
    bool rev = c.direction == "reverse" || dir == 1;
    for (int64_t n = 0; n < N; ++n) {
      int64_t st = c.layout ? (n * D + dir) * H : (dir * N + n) * H;
      std::vector<double> h(H, 0.0), cs(H, 0.0);
      for (int64_t j = 0; j < H; ++j) {
        if (c.init_h) h[j] = d.h0[st + j];
        if (c.init_c) cs[j] = d.c0[st + j];
      }
      int64_t len = c.lens ? c.seq_lens[n] : S;
      for (int64_t step = 0; step < len; ++step) {
        int64_t t = rev ? len - 1 - step : step;
        const float* x = &d.x[(c.layout ? n * S + t : t * N + n) * I];
        // xw[g*H+j] = W x + Wb; hr = R h + Rb
        auto xw = [&](int64_t row) {
          double s = c.bias ? d.b[dir * 2 * G * H + row] : 0.0;
          for (int64_t k = 0; k < I; ++k) s += d.w[(dir * G * H + row) * I + k] * x[k];
          return s;
        };
        auto hr = [&](int64_t row, const std::vector<double>& hv) {
          double s = c.bias ? d.b[dir * 2 * G * H + G * H + row] : 0.0;
          for (int64_t k = 0; k < H; ++k) s += d.r[(dir * G * H + row) * H + k] * hv[k];
          return s;
        };
        std::vector<double> hn(H);
        if (c.op == "RNN") {
          for (int64_t j = 0; j < H; ++j) hn[j] = f(xw(j) + hr(j, h));
        } else if (c.op == "GRU") {
          std::vector<double> z(H), rr(H), rh(H);
          for (int64_t j = 0; j < H; ++j) {
            z[j] = Sig(xw(j) + hr(j, h));
            rr[j] = Sig(xw(H + j) + hr(H + j, h));
            rh[j] = rr[j] * h[j];
          }
          for (int64_t j = 0; j < H; ++j) {
            double ht = c.lbr ? std::tanh(xw(2 * H + j) + rr[j] * hr(2 * H + j, h))
                              : std::tanh(xw(2 * H + j) + hr(2 * H + j, rh));
            hn[j] = (1 - z[j]) * ht + z[j] * h[j];
          }
        } else {
          for (int64_t j = 0; j < H; ++j) {
            double pi = c.peep ? d.p[dir * 3 * H + j] : 0, po = c.peep ? d.p[dir * 3 * H + H + j] : 0,
                   pf = c.peep ? d.p[dir * 3 * H + 2 * H + j] : 0;
            double ig = Sig(xw(j) + hr(j, h) + pi * cs[j]);
            double fg = Sig(xw(2 * H + j) + hr(2 * H + j, h) + pf * cs[j]);
            double cc = std::tanh(xw(3 * H + j) + hr(3 * H + j, h));
            double cn = fg * cs[j] + ig * cc;
            double og = Sig(xw(H + j) + hr(H + j, h) + po * cn);
            hn[j] = og * std::tanh(cn);
            cs[j] = cn;
          }
        }
        h = hn;
        int64_t yo = c.layout ? ((n * S + t) * D + dir) * H : ((t * D + dir) * N + n) * H;
        for (int64_t j = 0; j < H; ++j) (*Y)[yo + j] = static_cast<float>(h[j]);
      }
      for (int64_t j = 0; j < H; ++j) {
        (*YH)[st + j] = static_cast<float>(h[j]);
        (*YC)[st + j] = static_cast<float>(cs[j]);
      }
    }
  }
}

void Check(const RnnCase& c) {
  const int64_t S = c.seq, N = c.batch, I = c.input, H = c.hidden, G = Gates(c.op);
  const int64_t D = c.direction == "bidirectional" ? 2 : 1;
  RnnData d;
  d.x = RandomFloats(S * N * I, -1, 1, 1);
  d.w = RandomFloats(D * G * H * I, -0.7f, 0.7f, 2);
  d.r = RandomFloats(D * G * H * H, -0.7f, 0.7f, 3);
  d.b = RandomFloats(D * 2 * G * H, -0.5f, 0.5f, 4);
  d.h0 = RandomFloats(D * N * H, -1, 1, 5);
  d.c0 = RandomFloats(D * N * H, -1, 1, 6);
  d.p = RandomFloats(D * 3 * H, -0.5f, 0.5f, 7);
  std::vector<float> ry, rh, rc;
  Reference(c, d, &ry, &rh, &rc);
  Dims xd = c.layout ? Dims{N, S, I} : Dims{S, N, I};
  Dims sd = c.layout ? Dims{N, D, H} : Dims{D, N, H};
  Dims yd = c.layout ? Dims{N, S, D, H} : Dims{S, D, N, H};
  OpTest t(c.op);
  t.AddInput<float>(xd, d.x).AddInput<float>({D, G * H, I}, d.w, true).AddInput<float>({D, G * H, H}, d.r, true);
  if (c.bias) t.AddInput<float>({D, 2 * G * H}, d.b, true);
  else t.AddMissingInput();
  if (c.lens) t.AddInput<int32_t>({N}, c.seq_lens);
  else t.AddMissingInput();
  if (c.init_h) t.AddInput<float>(sd, d.h0);
  else t.AddMissingInput();
  if (c.op == "LSTM") {
    if (c.init_c) t.AddInput<float>(sd, d.c0);
    else t.AddMissingInput();
    if (c.peep) t.AddInput<float>({D, 3 * H}, d.p, true);
  }
  t.AddOutput(TSR_DTYPE_F32, yd).AddOutput(TSR_DTYPE_F32, sd);
  if (c.op == "LSTM") t.AddOutput(TSR_DTYPE_F32, sd);
  t.SetAttrInt("hidden_size", H).SetAttrString("direction", c.direction).SetAttrInt("layout", c.layout);
  if (c.lbr) t.SetAttrInt("linear_before_reset", 1);
  ASSERT_TRUE(t.Run().ok()) << t.last_error();
  EXPECT_TRUE(AllClose(t.Output<float>(0), ry, 1e-4f, 1e-5f)) << "Y";
  EXPECT_TRUE(AllClose(t.Output<float>(1), rh, 1e-4f, 1e-5f)) << "Y_h";
  if (c.op == "LSTM") {
    EXPECT_TRUE(AllClose(t.Output<float>(2), rc, 1e-4f, 1e-5f)) << "Y_c";
  }
}

TEST(CpuRnn, Forward) { Check({}); }
TEST(CpuRnn, ReverseNoBiasInitialH) {
  RnnCase c;
  c.direction = "reverse";
  c.bias = false;
  c.init_h = true;
  Check(c);
}
TEST(CpuRnn, BidirectionalSeqLensLayout1) {
  RnnCase c;
  c.direction = "bidirectional";
  c.lens = true;
  c.batch = 3;
  c.seq_lens = {3, 1, 0};
  c.layout = 1;
  c.init_h = true;
  Check(c);
}
// OpTest has no strings attributes: these build the node view by hand.
// Runs RNN (forward, hidden 2, input 1, 2 steps, batch 1, no bias) with the
// given activations attribute; W = [1, -1], R = 0.
Err RunRnnWithActivations(const std::vector<const char*>& acts, std::vector<float>* y_h) {
  static const int32_t kIn[3] = {0, 1, 2}, kOut[2] = {-1, 3};
  tsr_attr_view attrs[2]{};
  attrs[0].name = "hidden_size";
  attrs[0].type = TSR_ATTR_INT;
  attrs[0].i = 2;
  attrs[1].name = "activations";
  attrs[1].type = TSR_ATTR_STRINGS;
  attrs[1].count = acts.size();
  attrs[1].strings = acts.data();
  tsr_node_view node{};
  node.name = "rnn_acts";
  node.domain = "";
  node.op_type = "RNN";
  node.opset = 22;
  node.num_inputs = 3;
  node.inputs = kIn;
  node.num_outputs = 2;
  node.outputs = kOut;
  node.num_attrs = 2;
  node.attrs = attrs;
  TensorArg x{TSR_DTYPE_F32, {2, 1, 1}, 2}, w{TSR_DTYPE_F32, {1, 2, 1}, 2}, r{TSR_DTYPE_F32, {1, 2, 2}, 4},
      yh{TSR_DTYPE_F32, {1, 1, 2}, 2};
  NodeArgs args;
  args.node = &node;
  args.inputs = {&x, &w, &r};
  args.outputs = {nullptr, &yh};
  std::unique_ptr<Kernel> k;
  Err e = KernelRegistry::Get().Find("", "RNN")->create(args, &k);
  if (!e.ok()) return e;
  alignas(64) float xd[2] = {0.5f, 3.f}, wd[2] = {1.f, -1.f}, rd[4] = {0, 0, 0, 0}, out[2] = {0, 0};
  const void* in[3] = {xd, wd, rd};
  void* o[2] = {nullptr, out};
  e = k->Run(in, o);
  y_h->assign(out, out + 2);
  return e;
}

TEST(CpuRnn, ActivationsAttribute) {
  std::vector<float> yh;
  Err e = RunRnnWithActivations({"Relu"}, &yh);
  ASSERT_TRUE(e.ok()) << e.message;
  EXPECT_EQ(yh, (std::vector<float>{3.f, 0.f}));  // relu(W x_1) with R = 0
  e = RunRnnWithActivations({"Gelu"}, &yh);
  EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(e.message.find("Gelu"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("rnn_acts"), std::string::npos) << e.message;
  e = RunRnnWithActivations({"Relu", "Tanh"}, &yh);  // two for one direction
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("activations"), std::string::npos) << e.message;
}
TEST(CpuGru, Forward) {
  RnnCase c;
  c.op = "GRU";
  Check(c);
}
TEST(CpuGru, LinearBeforeResetBidirectional) {
  RnnCase c;
  c.op = "GRU";
  c.lbr = true;
  c.direction = "bidirectional";
  c.init_h = true;
  Check(c);
}
TEST(CpuGru, SeqLensReverseLayout1) {
  RnnCase c;
  c.op = "GRU";
  c.direction = "reverse";
  c.lens = true;
  c.seq_lens = {2, 3};
  c.layout = 1;
  Check(c);
}
TEST(CpuLstm, Forward) {
  RnnCase c;
  c.op = "LSTM";
  Check(c);
}
TEST(CpuLstm, PeepholesInitialStatesBidirectional) {
  RnnCase c;
  c.op = "LSTM";
  c.direction = "bidirectional";
  c.init_h = c.init_c = c.peep = true;
  c.lens = true;
  c.seq_lens = {2, 3};
  Check(c);
}
TEST(CpuLstm, Layout1NoBias) {
  RnnCase c;
  c.op = "LSTM";
  c.layout = 1;
  c.bias = false;
  c.init_c = true;
  Check(c);
}

TEST(CpuRnn, Errors) {
  {
    OpTest t("LSTM");
    t.SetName("lstm_w");
    t.AddInput<float>({2, 1, 3}, RandomFloats(6)).AddInput<float>({1, 12, 2}, RandomFloats(24));
    t.AddInput<float>({1, 16, 4}, RandomFloats(64));
    t.AddOutput(TSR_DTYPE_F32, {2, 1, 1, 4});
    t.SetAttrInt("hidden_size", 4);
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("lstm_w"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("W has shape"), std::string::npos) << e.message;
  }
  {
    OpTest t("GRU");
    t.SetName("gru_dir");
    t.AddInput<float>({2, 1, 3}, RandomFloats(6)).AddInput<float>({1, 12, 3}, RandomFloats(36));
    t.AddInput<float>({1, 12, 4}, RandomFloats(48));
    t.AddOutput(TSR_DTYPE_F32, {2, 1, 1, 4});
    t.SetAttrInt("hidden_size", 4).SetAttrString("direction", "sideways");
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("sideways"), std::string::npos) << e.message;
  }
  {
    OpTest t("RNN");
    t.SetName("rnn_f64");
    t.AddInput<double>({1, 1, 1}, {1.0}).AddInput<double>({1, 1, 1}, {1.0}).AddInput<double>({1, 1, 1}, {1.0});
    t.AddOutput(TSR_DTYPE_F64, {1, 1, 1, 1});
    EXPECT_NE(t.Claim().find("f64"), std::string::npos) << t.Claim();
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("rnn_f64"), std::string::npos) << e.message;
  }
  {
    OpTest t("RNN");
    t.SetName("rnn_lens");
    t.AddInput<float>({2, 1, 1}, {1, 2}).AddInput<float>({1, 1, 1}, {1}).AddInput<float>({1, 1, 1}, {1});
    t.AddMissingInput().AddInput<int32_t>({1}, {5});
    t.AddOutput(TSR_DTYPE_F32, {2, 1, 1, 1});
    Err e = t.Run();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("sequence_lens"), std::string::npos) << e.message;
  }
}

}  // namespace
}  // namespace tessera::cpu::testing
