// The optimizer pass end to end through the CPU backend: autodiff + update ops,
// state threaded across steps, compared with torch.optim (torch_refs.inc).
#include <cmath>

#include "compiler/autodiff/lr_schedule.h"
#include "compiler/autodiff/optimizer.h"
#include "compiler/autodiff/params.h"
#include "tests/unit/training/gradcheck_util.h"

namespace tessera::training_test {
namespace {

#include "tests/unit/training/torch_refs.inc"

std::vector<double> Seq(int n, double a, double b) {
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i) v[i] = std::sin(a * i + b);
  return v;
}

// loss = sum(p * G): the gradient of p is exactly the fed G, so torch's
// optimizer steps on given gradients are reproduced through the whole stack.
struct Trainer {
  std::unique_ptr<Session> session;
  autodiff::OptimizerInfo opt;
};

Trainer Build(const autodiff::OptimizerConfig& cfg) {
  Trainer t;
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  g->set_opset("tessera", 1);
  Value* p = g->AddValue("p", TensorType{DType::kF64, Shape::FromInts({6})});
  Value* G = g->AddValue("G", TensorType{DType::kF64, Shape::FromInts({6})});
  g->AddInput(p);
  g->AddInput(G);
  Node* mul = g->AddNode("Mul", {p, G}, 1);
  Node* sum = g->AddNode("ReduceSum", {mul->output(0)}, 1);
  sum->set_attr("keepdims", Attribute::Int(0));
  g->AddOutput(sum->output(0));
  auto info = autodiff::BuildGradientGraph(*g, sum->output(0)->name(), {"p"});
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return t;
  auto opt = autodiff::AppendOptimizer(*g, *info, cfg);
  EXPECT_TRUE(opt.ok()) << opt.status().ToString();
  if (!opt.ok()) return t;
  t.opt = *opt;
  SessionOptions o;
  o.opt_level = 0;
  auto s = Session::FromGraph(std::move(g), o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (s.ok()) t.session = std::move(*s);
  return t;
}

// Three steps with gradients g_k = seq(6, 0.3(k+1), k); returns the final p.
std::vector<double> Train(Trainer& t, double lr) {
  std::map<std::string, Tensor> state;
  for (const auto& b : t.opt.state)
    state[b.input] = Tensor::FromVector<double>(DType::kF64, {6}, b.input == "p" ? Seq(6, 0.8, 0.0) : std::vector<double>(6, 0.0));
  for (int k = 0; k < 3; ++k) {
    Tensor G = Tensor::FromVector<double>(DType::kF64, {6}, Seq(6, 0.3 * (k + 1), k));
    Tensor lr_t = Tensor::FromVector<double>(DType::kF64, {}, {lr});
    Tensor step_t = Tensor::FromVector<double>(DType::kF64, {}, {static_cast<double>(k + 1)});
    std::vector<std::pair<std::string, const Tensor*>> feeds{{"G", &G}, {t.opt.lr_input, &lr_t}};
    if (!t.opt.step_input.empty()) feeds.push_back({t.opt.step_input, &step_t});
    std::vector<std::string> outs;
    for (const auto& b : t.opt.state) {
      feeds.push_back({b.input, &state[b.input]});
      outs.push_back(b.output);
    }
    std::vector<Tensor> r;
    Status st = t.session->Run(feeds, outs, &r);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return {};
    for (size_t i = 0; i < outs.size(); ++i) state[t.opt.state[i].input] = r[i];
  }
  std::vector<double> p(6);
  for (int i = 0; i < 6; ++i) p[i] = state["p"].GetAsDouble(i);
  return p;
}

void ExpectNear(const std::vector<double>& got, const double* want) {
  ASSERT_EQ(got.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(got[i], want[i], 1e-6 * (1 + std::fabs(want[i]))) << "p[" << i << "]";
}

TEST(OptimizerPass, SgdMomentumWeightDecayMatchesTorch) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  autodiff::OptimizerConfig c;
  c.momentum = 0.9f;
  c.weight_decay = 0.01f;
  Trainer t = Build(c);
  ASSERT_TRUE(t.session);
  ASSERT_EQ(t.opt.state.size(), 2u);
  EXPECT_EQ(t.opt.state[0].input, "p");
  EXPECT_EQ(t.opt.state[0].output, "p.next");
  EXPECT_EQ(t.opt.state[1].input, "p.momentum");
  EXPECT_TRUE(t.opt.step_input.empty());
  ExpectNear(Train(t, 0.1), kSgdMomentum);
}

TEST(OptimizerPass, AdamWMatchesTorch) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  autodiff::OptimizerConfig c;
  c.kind = "adamw";
  c.weight_decay = 0.01f;
  Trainer t = Build(c);
  ASSERT_TRUE(t.session);
  ASSERT_EQ(t.opt.state.size(), 3u);
  EXPECT_EQ(t.opt.moments_of["p"].size(), 2u);
  ExpectNear(Train(t, 0.01), kAdamW);
}

TEST(OptimizerPass, ClippingReportsTheGlobalNorm) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  autodiff::OptimizerConfig c;
  c.clip_norm = 0.5f;
  Trainer t = Build(c);
  ASSERT_TRUE(t.session);
  ASSERT_FALSE(t.opt.grad_norm.empty());
  std::vector<double> g = Seq(6, 0.3, 0.0), p0 = Seq(6, 0.8, 0.0);
  Tensor G = Tensor::FromVector<double>(DType::kF64, {6}, g);
  Tensor P = Tensor::FromVector<double>(DType::kF64, {6}, p0);
  Tensor lr = Tensor::FromVector<double>(DType::kF64, {}, {1.0});
  std::vector<Tensor> r;
  Status st = t.session->Run({{"G", &G}, {"p", &P}, {t.opt.lr_input, &lr}}, {t.opt.grad_norm, "p.next"}, &r);
  ASSERT_TRUE(st.ok()) << st.ToString();
  double n = 0;
  for (double v : g) n += v * v;
  n = std::sqrt(n);
  EXPECT_NEAR(r[0].GetAsDouble(0), n, 1e-12);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(r[1].GetAsDouble(i), p0[i] - g[i] * 0.5 / (n + 1e-6), 1e-9);
}

// A whole training loop: MLP + SoftmaxCrossEntropy + autodiff + AdamW with
// clipping and a cosine schedule, f32 at opt level 2; the loss must fall.
TEST(OptimizerPass, MlpTrainingLoopReducesTheLoss) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  g->set_opset("tessera", 1);
  auto in = [&](const std::string& n, std::vector<int64_t> d, DType dt = DType::kF32) {
    Value* v = g->AddValue(n, TensorType{dt, Shape::FromInts(d)});
    g->AddInput(v);
    return v;
  };
  Value* x = in("x", {8, 4});
  Value* y = in("y", {8}, DType::kI64);
  Value* w1 = in("w1", {4, 16});
  Value* b1 = in("b1", {16});
  Value* w2 = in("w2", {16, 3});
  Node* h = g->AddNode("Gemm", {x, w1, b1}, 1);
  Node* r = g->AddNode("Relu", {h->output(0)}, 1);
  Node* lg = g->AddNode("MatMul", {r->output(0), w2}, 1);
  Node* loss = g->AddNode("SoftmaxCrossEntropy", {lg->output(0), y}, 1, "loss", "tessera");
  g->AddOutput(loss->output(0));
  auto info = autodiff::BuildGradientGraph(*g, loss->output(0)->name(), {"w1", "b1", "w2"});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  autodiff::OptimizerConfig oc;
  oc.kind = "adamw";
  oc.clip_norm = 5.f;
  auto opt = autodiff::AppendOptimizer(*g, *info, oc);
  ASSERT_TRUE(opt.ok()) << opt.status().ToString();
  autodiff::LrScheduleConfig lc;
  lc.kind = "cosine";
  lc.base_lr = 0.05;
  lc.warmup_steps = 2;
  lc.total_steps = 30;
  auto sched = autodiff::LrSchedule::Create(lc);
  ASSERT_TRUE(sched.ok());
  SessionOptions so;
  auto s = Session::FromGraph(std::move(g), so);
  ASSERT_TRUE(s.ok()) << s.status().ToString();

  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> xs(32);
  std::vector<int64_t> ys(8);
  for (int i = 0; i < 8; ++i) {
    ys[i] = i % 3;
    for (int j = 0; j < 4; ++j) xs[i * 4 + j] = (j == ys[i] ? 2.f : 0.f) + 0.3f * nd(rng);
  }
  Tensor X = Tensor::FromVector<float>(DType::kF32, {8, 4}, xs);
  Tensor Y = Tensor::FromVector<int64_t>(DType::kI64, {8}, ys);
  std::map<std::string, Tensor> state;
  for (const auto& b : opt->state) {
    std::vector<int64_t> dims = b.input.rfind("w1", 0) == 0 ? std::vector<int64_t>{4, 16}
                                : b.input.rfind("b1", 0) == 0 ? std::vector<int64_t>{16}
                                                                : std::vector<int64_t>{16, 3};
    int64_t n = 1;
    for (auto d : dims) n *= d;
    std::vector<float> vals(n, 0.f);
    if (b.input == "w1" || b.input == "w2")
      for (auto& f : vals) f = 0.3f * nd(rng);
    state[b.input] = Tensor::FromVector<float>(DType::kF32, dims, vals);
  }
  float first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    Tensor lr = Tensor::FromVector<float>(DType::kF32, {}, {static_cast<float>(sched->Rate(step))});
    Tensor st = Tensor::FromVector<float>(DType::kF32, {}, {static_cast<float>(step + 1)});
    std::vector<std::pair<std::string, const Tensor*>> feeds{
        {"x", &X}, {"y", &Y}, {opt->lr_input, &lr}, {opt->step_input, &st}};
    std::vector<std::string> outs{loss->output(0)->name()};
    for (const auto& b : opt->state) {
      feeds.push_back({b.input, &state[b.input]});
      outs.push_back(b.output);
    }
    std::vector<Tensor> res;
    Status rs = (*s)->Run(feeds, outs, &res);
    ASSERT_TRUE(rs.ok()) << rs.ToString();
    for (size_t i = 0; i < opt->state.size(); ++i) state[opt->state[i].input] = res[1 + i];
    if (step == 0) first = static_cast<float>(res[0].GetAsDouble(0));
    last = static_cast<float>(res[0].GetAsDouble(0));
  }
  EXPECT_GT(first, 0.5f);
  EXPECT_LT(last, 0.25f * first) << "first " << first << " last " << last;
}

TEST(LiftParameters, TrainableInitializersBecomeInputs) {
  Graph g;
  g.set_opset("", 17);
  Value* x = g.AddValue("x", TensorType{DType::kF32, Shape::FromInts({2, 3})});
  g.AddInput(x);
  Value* w = g.AddConstant("w", Tensor::FromVector<float>(DType::kF32, {3, 2}, {1, 2, 3, 4, 5, 6}));
  Value* shape = g.AddConstant("shape", Tensor::FromVector<int64_t>(DType::kI64, {1}, {4}));
  Value* lo = g.AddConstant("lo", Tensor::FromVector<float>(DType::kF32, {}, {0.f}));
  Value* y = g.AddNode("MatMul", {x, w}, 1)->output(0);
  y = g.AddNode("Reshape", {y, shape}, 1)->output(0);
  y = g.AddNode("Clip", {y, lo}, 1)->output(0);
  g.AddOutput(y);
  EXPECT_EQ(autodiff::TrainableInitializers(g), std::vector<std::string>{"w"});
  auto r = autodiff::LiftParameters(g, {"w"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].second.GetAsDouble(5), 6.0);
  EXPECT_FALSE(w->is_constant());
  EXPECT_TRUE(w->is_graph_input());
  EXPECT_EQ(g.RuntimeInputs().size(), 2u);
  EXPECT_EQ(autodiff::LiftParameters(g, {"w"}).status().code(), StatusCode::kInvalidArgument);  // no longer constant
  EXPECT_EQ(autodiff::LiftParameters(g, {"shape"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(autodiff::LiftParameters(g, {"nope"}).status().code(), StatusCode::kNotFound);
}

TEST(OptimizerPass, BadConfigsAndParamsAreRejected) {
  Graph g;
  g.set_opset("", 17);
  Value* w = g.AddConstant("w", Tensor::FromVector<float>(DType::kF32, {2}, {1, 2}));
  Node* n = g.AddNode("ReduceSum", {g.AddNode("Mul", {w, w}, 1)->output(0)}, 1);
  n->set_attr("keepdims", Attribute::Int(0));
  auto info = autodiff::BuildGradientGraph(g, n->output(0)->name(), {"w"});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  autodiff::OptimizerConfig c;
  auto r = autodiff::AppendOptimizer(g, *info, c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("non-constant graph input"), std::string::npos) << r.status().message();
  c.kind = "lamb";
  EXPECT_EQ(autodiff::AppendOptimizer(g, *info, c).status().code(), StatusCode::kInvalidArgument);
  c.kind = "sgd";
  c.nesterov = true;
  EXPECT_EQ(autodiff::AppendOptimizer(g, *info, c).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::training_test
