// Session state (Session::DeclareState) and TrainingSession through the CPU
// backend: in-place state, a hand-computed SGD step, loss decrease, gradient
// accumulation, bf16, checkpoints that resume bit-exactly, ONNX export, and
// every error.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "graph/op_schema.h"
#include "runtime/backend_registry.h"
#include "runtime/datasets.h"
#include "runtime/safetensors.h"
#include "runtime/session.h"
#include "runtime/training_session.h"

namespace tessera {
namespace {

bool HaveCpu() {
  const LoadedBackend* b = BackendRegistry::Get().Find("cpu");
  return b && b->usable();
}

#define REQUIRE_CPU() \
  if (!HaveCpu()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable"

using Feeds = std::vector<std::pair<std::string, const Tensor*>>;

std::string TempPath(const std::string& name) {
  return (testing::TempDir().empty() ? std::string("/tmp/") : testing::TempDir()) + "tsession_" + name;
}

std::vector<float> Floats(const Tensor& t) {
  std::vector<float> v(t.num_elements());
  for (int64_t i = 0; i < t.num_elements(); ++i) v[i] = static_cast<float>(t.GetAsDouble(i));
  return v;
}

uint64_t Bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

// ---- Session state -------------------------------------------------------------------

// x (state, f32[4]) and d; z = x * d and y = x + d (y updates x). With
// `reader_first` z's node comes before y's, so y may update x in place.
std::unique_ptr<Graph> Counter(bool reader_first) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({4})});
  Value* d = g->AddValue("d", TensorType{DType::kF32, Shape::FromInts({4})});
  g->AddInput(x);
  g->AddInput(d);
  Node* z = nullptr;
  if (reader_first) z = g->AddNode("Mul", {x, d}, 1, "z");
  Node* y = g->AddNode("Add", {x, d}, 1, "y");
  if (!reader_first) z = g->AddNode("Mul", {x, d}, 1, "z");
  z->output(0)->set_type(TensorType{DType::kF32, Shape::FromInts({4})});
  y->output(0)->set_type(TensorType{DType::kF32, Shape::FromInts({4})});
  g->AddOutput(z->output(0));
  g->AddOutput(y->output(0));
  return g;
}

void RunCounter(bool reader_first, const std::string& want_mode, SessionOptions o = {},
                const std::string& want_device = "cpu") {
  o.opt_level = 0;
  auto s = Session::FromGraph(Counter(reader_first), o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const std::string zname = (*s)->outputs()[0].name, yname = (*s)->outputs()[1].name;
  ASSERT_TRUE((*s)->DeclareState({{"x", yname}}).ok());
  ASSERT_TRUE((*s)->SetState("x", Tensor::FromVector<float>(DType::kF32, {4}, {1, 2, 3, 4})).ok());
  Tensor d = Tensor::FromVector<float>(DType::kF32, {4}, {0.5f, -1, 2, 0});
  std::vector<float> x = {1, 2, 3, 4};
  const std::vector<float> dv = {0.5f, -1, 2, 0};
  for (int k = 0; k < 3; ++k) {
    std::vector<Tensor> r;
    Status st = (*s)->Run({{"d", &d}}, {}, &r);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(r.size(), 1u) << "state outputs are not returned unless asked for";
    for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(r[0].data<float>()[i], x[i] * dv[i]) << "run " << k << " z[" << i << "]";
    for (int i = 0; i < 4; ++i) x[i] += dv[i];
  }
  auto cur = (*s)->GetState("x");
  ASSERT_TRUE(cur.ok()) << cur.status().ToString();
  EXPECT_EQ(Floats(*cur), x);
  // Asking for the state output returns the new value.
  std::vector<Tensor> r;
  ASSERT_TRUE((*s)->Run({{"d", &d}}, {yname}, &r).ok());
  for (int i = 0; i < 4; ++i) x[i] += dv[i];
  EXPECT_EQ(Floats(r[0]), x);
  auto stats = nlohmann::json::parse((*s)->StatsJson());
  EXPECT_EQ(stats["state"]["x"], want_mode) << stats.dump();
  auto desc = (*s)->DescribeJson();
  ASSERT_TRUE(desc.ok());
  auto dj = nlohmann::json::parse(*desc);
  ASSERT_TRUE(dj.contains("state")) << *desc;
  EXPECT_EQ(dj["state"][0]["mode"], want_mode);
  EXPECT_EQ(dj["state"][0]["device"], want_device);
}

TEST(SessionState, InPlaceWhenEveryReaderRunsFirst) {
  REQUIRE_CPU();
  RunCounter(true, "in_place");
}

TEST(SessionState, CopiedWhenAReaderRunsAfterTheWriter) {
  REQUIRE_CPU();
  RunCounter(false, "copy");
}

// The writer on an accelerator, another reader on the CPU: the state lives on
// the accelerator and the CPU reads a copy made before each run.
TEST(SessionState, TwoDevicesKeepStateOnTheWriter) {
  REQUIRE_CPU();
  std::string accel;
  for (const auto& b : BackendRegistry::Get().backends())
    if (b->usable() && b->name != "cpu" && b->name != "null" && accel.empty()) accel = b->name + ":0";
  if (accel.empty()) GTEST_SKIP() << "needs a second usable backend (opencl, cuda, ...) besides cpu";
  SessionOptions o;
  o.devices = {accel, "cpu"};
  o.placement["z"] = "cpu";
  o.placement["y"] = accel;
  RunCounter(true, "in_place", o, accel);
}

TEST(SessionState, ReadOnlyStateAndZeroDefault) {
  REQUIRE_CPU();
  SessionOptions o;
  o.opt_level = 0;
  auto s = Session::FromGraph(Counter(true), o);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->DeclareState({{"x", ""}}).ok());
  Tensor d = Tensor::FromVector<float>(DType::kF32, {4}, {1, 2, 3, 4});
  std::vector<Tensor> r;
  ASSERT_TRUE((*s)->Run({{"d", &d}}, {}, &r).ok());
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(Floats(r[1]), (std::vector<float>{1, 2, 3, 4})) << "x starts at zero";
  ASSERT_TRUE((*s)->SetState("x", Tensor::FromVector<float>(DType::kF32, {4}, {1, 1, 1, 1})).ok());
  ASSERT_TRUE((*s)->Run({{"d", &d}}, {}, &r).ok());
  EXPECT_EQ(Floats(r[1]), (std::vector<float>{2, 3, 4, 5}));
  EXPECT_EQ(Floats((*s)->GetState("x").value()), (std::vector<float>{1, 1, 1, 1})) << "read-only state is unchanged";
  EXPECT_EQ(nlohmann::json::parse((*s)->StatsJson())["state"]["x"], "read_only");
}

TEST(SessionState, Errors) {
  REQUIRE_CPU();
  SessionOptions o;
  o.opt_level = 0;
  auto s = Session::FromGraph(Counter(true), o);
  ASSERT_TRUE(s.ok());
  const std::string yname = (*s)->outputs()[1].name;
  Status st = (*s)->DeclareState({{"nope", ""}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("'nope'"), std::string::npos) << st.message();
  st = (*s)->DeclareState({{"x", "missing_out"}});
  EXPECT_NE(st.message().find("'missing_out'"), std::string::npos) << st.message();
  st = (*s)->DeclareState({{"x", ""}, {"x", ""}});
  EXPECT_NE(st.message().find("twice"), std::string::npos) << st.message();
  ASSERT_TRUE((*s)->DeclareState({{"x", yname}}).ok());
  st = (*s)->DeclareState({{"d", ""}});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  st = (*s)->SetState("x", Tensor::FromVector<float>(DType::kF32, {3}, {1, 2, 3}));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("'x'"), std::string::npos) << st.message();
  EXPECT_EQ((*s)->SetState("d", Tensor::FromVector<float>(DType::kF32, {4}, {1, 2, 3, 4})).code(), StatusCode::kNotFound);
  EXPECT_FALSE((*s)->GetState("d").ok());
  Tensor d = Tensor::FromVector<float>(DType::kF32, {4}, {1, 2, 3, 4});
  std::vector<Tensor> r;
  st = (*s)->Run({{"d", &d}, {"x", &d}}, {}, &r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("'x' is session state"), std::string::npos) << st.message();
  ASSERT_TRUE((*s)->Run({{"d", &d}}, {}, &r).ok());
  st = (*s)->DeclareState({{"d", ""}});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
}

TEST(SessionState, ConcurrentRunsAreSerialized) {
  REQUIRE_CPU();
  auto s = Session::FromGraph(Counter(true), SessionOptions{});
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->DeclareState({{"x", (*s)->outputs()[1].name}}).ok());
  Tensor d = Tensor::FromVector<float>(DType::kF32, {4}, {1, 1, 1, 1});
  std::vector<std::thread> th;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&] {
      for (int k = 0; k < 25; ++k) {
        std::vector<Tensor> r;
        if (!(*s)->Run({{"d", &d}}, {}, &r).ok()) ++failures;
      }
    });
  for (auto& t : th) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Floats((*s)->GetState("x").value()), (std::vector<float>{100, 100, 100, 100}));
}

TEST(SessionState, ValueInputCannotBeState) {
  REQUIRE_CPU();
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({4})});
  Value* shape = g->AddValue("shape", TensorType{DType::kI64, Shape::FromInts({2})});
  g->AddInput(x);
  g->AddInput(shape);
  Node* r = g->AddNode("Reshape", {x, shape}, 1, "r");
  g->AddOutput(r->output(0));
  auto s = Session::FromGraph(std::move(g), SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*s)->DeclareState({{"shape", ""}}).ok());
  ASSERT_TRUE((*s)->SetState("shape", Tensor::FromVector<int64_t>(DType::kI64, {2}, {2, 2})).ok());
  Tensor xv = Tensor::FromVector<float>(DType::kF32, {4}, {1, 2, 3, 4});
  std::vector<Tensor> out;
  Status st = (*s)->Run({{"x", &xv}}, {}, &out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot be such an input"), std::string::npos) << st.message();
}

TEST(SessionState, OutputOfAnotherTypeIsRejected) {
  REQUIRE_CPU();
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({4})});
  g->AddInput(x);
  Node* r = g->AddNode("ReduceSum", {x}, 1, "r");
  r->set_attr("keepdims", Attribute::Int(0));
  g->AddOutput(r->output(0));
  auto s = Session::FromGraph(std::move(g), SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Status st = (*s)->DeclareState({{"x", (*s)->outputs()[0].name}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("has type"), std::string::npos) << st.message();
}

// ---- TrainingSession on tiny graphs ----------------------------------------------------

// logits = x @ W + b, x f32[batch, 3], W [3, 2], b [2] (initializers).
std::unique_ptr<Graph> Linear(const std::vector<float>& w, const std::vector<float>& b) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape({Dim::Symbol("batch"), Dim::Known(3)})});
  g->AddInput(x);
  Value* W = g->AddConstant("W", Tensor::FromVector<float>(DType::kF32, {3, 2}, w));
  Value* B = g->AddConstant("b", Tensor::FromVector<float>(DType::kF32, {2}, b));
  Node* mm = g->AddNode("MatMul", {x, W}, 1, "mm");
  Node* add = g->AddNode("Add", {mm->output(0), B}, 1, "add");
  g->AddOutput(add->output(0));
  return g;
}

// x [batch, 2] -> Gemm(2->8) -> [BatchNorm] -> Relu -> Gemm(8->2) -> logits.
// With `matmul`, MatMul + Add instead of Gemm.
// With `dropout`, Dropout(ratio 0.25) after the Relu.
std::unique_ptr<Graph> SmallMlp(bool batchnorm, bool matmul = false, bool dropout = false) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape({Dim::Symbol("batch"), Dim::Known(2)})});
  g->AddInput(x);
  std::vector<float> w1(16), b1(8), w2(16), b2(2, 0.f);
  for (int i = 0; i < 16; ++i) w1[i] = 0.6f * std::sin(1.3f * i + 0.2f);
  for (int i = 0; i < 8; ++i) b1[i] = 0.05f * i;
  for (int i = 0; i < 16; ++i) w2[i] = 0.5f * std::cos(0.7f * i + 0.4f);
  Value* W1 = g->AddConstant("fc1.weight", Tensor::FromVector<float>(DType::kF32, {2, 8}, w1));
  Value* B1 = g->AddConstant("fc1.bias", Tensor::FromVector<float>(DType::kF32, {8}, b1));
  Value* W2 = g->AddConstant("fc2.weight", Tensor::FromVector<float>(DType::kF32, {8, 2}, w2));
  Value* B2 = g->AddConstant("fc2.bias", Tensor::FromVector<float>(DType::kF32, {2}, b2));
  auto dense = [&](Value* in, Value* w, Value* bias, const std::string& name) {
    if (!matmul) return g->AddNode("Gemm", {in, w, bias}, 1, name)->output(0);
    Node* mm = g->AddNode("MatMul", {in, w}, 1, name + "/mm");
    return g->AddNode("Add", {mm->output(0), bias}, 1, name)->output(0);
  };
  Value* h = dense(x, W1, B1, "fc1");
  if (batchnorm) {
    Value* sc = g->AddConstant("bn.weight", Tensor::FromVector<float>(DType::kF32, {8}, std::vector<float>(8, 1.f)));
    Value* bb = g->AddConstant("bn.bias", Tensor::FromVector<float>(DType::kF32, {8}, std::vector<float>(8, 0.f)));
    Value* rm = g->AddConstant("bn.running_mean", Tensor::FromVector<float>(DType::kF32, {8}, std::vector<float>(8, 0.f)));
    Value* rv = g->AddConstant("bn.running_var", Tensor::FromVector<float>(DType::kF32, {8}, std::vector<float>(8, 1.f)));
    Node* bn = g->AddNode("BatchNormalization", {h, sc, bb, rm, rv}, 1, "bn");
    bn->set_attr("momentum", Attribute::Float(0.9f));
    h = bn->output(0);
  }
  Node* relu = g->AddNode("Relu", {h}, 1, "relu");
  if (dropout) {
    Value* ratio = g->AddConstant("drop.ratio", Tensor::FromVector<float>(DType::kF32, {}, {0.25f}));
    relu = g->AddNode("Dropout", {relu->output(0), ratio}, 1, "drop");
  }
  g->AddOutput(dense(relu->output(0), W2, B2, "fc2"));
  return g;
}

// Two separable blobs: class 0 around (-1, -1), class 1 around (1, 1).
void Blobs(int64_t n, int seed, Tensor* x, Tensor* y) {
  std::vector<float> xv(n * 2);
  std::vector<int64_t> yv(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = (i + seed) % 2;
    yv[i] = c;
    const float s = c ? 1.f : -1.f;
    xv[i * 2] = s + 0.3f * std::sin(1.7f * i + seed);
    xv[i * 2 + 1] = s + 0.3f * std::cos(2.3f * i + seed);
  }
  *x = Tensor::FromVector<float>(DType::kF32, {n, 2}, xv);
  *y = Tensor::FromVector<int64_t>(DType::kI64, {n}, yv);
}

TrainingOptions Sgd(double lr, float momentum = 0.f) {
  TrainingOptions t;
  t.optimizer.kind = "sgd";
  t.optimizer.momentum = momentum;
  t.lr.base_lr = lr;
  return t;
}

TrainingOptions AdamW(double lr) {
  TrainingOptions t;
  t.optimizer.kind = "adamw";
  t.optimizer.weight_decay = 0.01f;
  t.lr.base_lr = lr;
  return t;
}

TEST(TrainingSession, SgdStepMatchesHandComputedUpdate) {
  REQUIRE_CPU();
  const std::vector<float> w = {0.5f, -0.25f, 1.f, 0.75f, -0.5f, 0.2f}, b = {0.1f, -0.1f};
  TrainingOptions t = Sgd(0.1);
  t.loss.kind = "mse";
  t.loss.label_input = "target";
  auto ts = TrainingSession::FromGraph(Linear(w, b), t, SessionOptions{});
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  EXPECT_EQ((*ts)->param_names(), (std::vector<std::string>{"W", "b"}));
  EXPECT_EQ((*ts)->batch_inputs(), (std::vector<std::string>{"x", "target"}));
  const std::vector<float> xv = {1, 2, -1, 0.5f, -0.5f, 3}, tv = {1, 0, -1, 2};
  Tensor x = Tensor::FromVector<float>(DType::kF32, {2, 3}, xv);
  Tensor tg = Tensor::FromVector<float>(DType::kF32, {2, 2}, tv);
  // Reference: y = xW + b, L = mean((y - t)^2) over 4 elements, dy = 2 (y - t) / 4.
  double y[4], dy[4], loss = 0;
  for (int n = 0; n < 2; ++n)
    for (int j = 0; j < 2; ++j) {
      double s = b[j];
      for (int k = 0; k < 3; ++k) s += xv[n * 3 + k] * w[k * 2 + j];
      y[n * 2 + j] = s;
      loss += (s - tv[n * 2 + j]) * (s - tv[n * 2 + j]) / 4;
      dy[n * 2 + j] = 2 * (s - tv[n * 2 + j]) / 4;
    }
  auto r = (*ts)->Step({{"x", &x}, {"target", &tg}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(r->loss, loss, 1e-5);
  EXPECT_TRUE(r->updated);
  EXPECT_EQ(r->step, 1);
  EXPECT_DOUBLE_EQ(r->lr, 0.1);
  auto p = (*ts)->Parameters();
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->size(), 2u);
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < 2; ++j) {
      double g = 0;
      for (int n = 0; n < 2; ++n) g += xv[n * 3 + k] * dy[n * 2 + j];
      EXPECT_NEAR((*p)[0].second.data<float>()[k * 2 + j], w[k * 2 + j] - 0.1 * g, 1e-6) << "W[" << k << "," << j << "]";
    }
  for (int j = 0; j < 2; ++j)
    EXPECT_NEAR((*p)[1].second.data<float>()[j], b[j] - 0.1 * (dy[j] + dy[2 + j]), 1e-6) << "b[" << j << "]";
  // Parameters stay on the device and are updated in place.
  auto stats = nlohmann::json::parse((*ts)->StatsJson());
  EXPECT_EQ(stats["state"]["W"], "in_place") << stats.dump();
  EXPECT_EQ(stats["state"]["b"], "in_place") << stats.dump();
  (void)y;
}

double TrainBlobs(TrainingSession& ts, int steps, double* first) {
  double last = 0;
  for (int k = 0; k < steps; ++k) {
    Tensor x, y;
    Blobs(16, k, &x, &y);
    auto r = ts.Step({{"x", &x}, {"labels", &y}});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return NAN;
    if (k == 0) *first = r->loss;
    last = r->loss;
  }
  return last;
}

TEST(TrainingSession, LossDecreasesSgdMomentumAndAdamW) {
  REQUIRE_CPU();
  for (const TrainingOptions& t : {Sgd(0.1, 0.9f), AdamW(0.01)}) {
    auto ts = TrainingSession::FromGraph(SmallMlp(false), t, SessionOptions{});
    ASSERT_TRUE(ts.ok()) << ts.status().ToString();
    double first = 0, last = TrainBlobs(**ts, 40, &first);
    EXPECT_LT(last, 0.25 * first) << t.optimizer.kind << ": " << first << " -> " << last;
    EXPECT_EQ((*ts)->step(), 40);
    auto stats = nlohmann::json::parse((*ts)->StatsJson());
    for (const auto& [k, v] : stats["state"].items()) EXPECT_EQ(v, "in_place") << t.optimizer.kind << " " << k;
    // Eval agrees with the data: high accuracy on a fresh batch.
    Tensor x, y;
    Blobs(32, 7, &x, &y);
    auto e = (*ts)->Eval({{"x", &x}, {"labels", &y}});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    ASSERT_EQ(e->outputs.size(), 1u);
    int correct = 0;
    for (int i = 0; i < 32; ++i) {
      const float* l = e->outputs[0].data<float>() + i * 2;
      correct += (l[1] > l[0]) == (y.data<int64_t>()[i] == 1);
    }
    EXPECT_GE(correct, 30) << t.optimizer.kind;
    EXPECT_LT(e->loss, 0.5 * first);
    auto e2 = (*ts)->Eval({{"x", &x}});
    ASSERT_TRUE(e2.ok()) << e2.status().ToString();
    EXPECT_TRUE(std::isnan(e2->loss));
  }
}

TEST(TrainingSession, EvalLossEqualsStepLossBeforeTheUpdate) {
  REQUIRE_CPU();
  TrainingOptions t = Sgd(0.1);
  t.loss.label_smoothing = 0.1f;
  auto ts = TrainingSession::FromGraph(SmallMlp(false), t, SessionOptions{});
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  Tensor x, y;
  Blobs(8, 1, &x, &y);
  auto e = (*ts)->Eval({{"x", &x}, {"labels", &y}});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  auto r = (*ts)->Step({{"x", &x}, {"labels", &y}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(e->loss, r->loss, 1e-5);
  auto e2 = (*ts)->Eval({{"x", &x}, {"labels", &y}});
  ASSERT_TRUE(e2.ok());
  EXPECT_LT(e2->loss, e->loss) << "eval sees the updated parameters";
}

TEST(TrainingSession, GradientAccumulationEqualsTheFullBatch) {
  REQUIRE_CPU();
  Tensor x, y;
  Blobs(16, 3, &x, &y);
  auto half = [&](int64_t begin, Tensor* xs, Tensor* ys) {
    *xs = TakeRows(x, begin, 8).value();
    *ys = TakeRows(y, begin, 8).value();
  };
  auto full = TrainingSession::FromGraph(SmallMlp(false), Sgd(0.2), SessionOptions{});
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  ASSERT_TRUE((*full)->Step({{"x", &x}, {"labels", &y}}).ok());
  TrainingOptions t = Sgd(0.2);
  t.grad_accum_steps = 2;
  auto acc = TrainingSession::FromGraph(SmallMlp(false), t, SessionOptions{});
  ASSERT_TRUE(acc.ok()) << acc.status().ToString();
  Tensor x0, y0, x1, y1;
  half(0, &x0, &y0);
  half(8, &x1, &y1);
  auto r0 = (*acc)->Step({{"x", &x0}, {"labels", &y0}});
  ASSERT_TRUE(r0.ok()) << r0.status().ToString();
  EXPECT_FALSE(r0->updated);
  EXPECT_EQ(r0->step, 0);
  auto before = (*acc)->Parameters().value();
  auto r1 = (*acc)->Step({{"x", &x1}, {"labels", &y1}});
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_TRUE(r1->updated);
  EXPECT_EQ(r1->step, 1);
  auto pf = (*full)->Parameters().value(), pa = (*acc)->Parameters().value();
  auto p0 = SmallMlp(false);
  for (size_t i = 0; i < pf.size(); ++i) {
    // No update on the first micro-batch.
    const Tensor* init = p0->FindValue(before[i].first)->constant();
    EXPECT_EQ(Floats(before[i].second), Floats(*init)) << before[i].first;
    for (int64_t k = 0; k < pf[i].second.num_elements(); ++k)
      EXPECT_NEAR(pa[i].second.GetAsDouble(k), pf[i].second.GetAsDouble(k), 1e-5) << pf[i].first << "[" << k << "]";
  }
}

TEST(TrainingSession, Bf16Trains) {
  REQUIRE_CPU();
  SessionOptions o;
  o.precision = "bf16";
  // MatMul + Add: the CPU backend's bf16 Gemm needs a constant bias.
  auto ts = TrainingSession::FromGraph(SmallMlp(false, true), Sgd(0.1, 0.9f), o);
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  double first = 0, last = TrainBlobs(**ts, 40, &first);
  EXPECT_LT(last, 0.5 * first) << first << " -> " << last;
  auto p = (*ts)->Parameters();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)[0].second.dtype(), DType::kF32) << "master weights stay f32";
}

TEST(TrainingSession, BatchNormTrainsAndUpdatesRunningStatistics) {
  REQUIRE_CPU();
  auto ts = TrainingSession::FromGraph(SmallMlp(true), Sgd(0.1, 0.9f), SessionOptions{});
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  double first = 0, last = TrainBlobs(**ts, 30, &first);
  EXPECT_LT(last, 0.5 * first) << first << " -> " << last;
  // Running statistics moved off their initial values (0 / 1).
  const std::string ck = TempPath("bn.safetensors");
  ASSERT_TRUE((*ts)->SaveCheckpoint(ck).ok());
  auto c = ReadSafetensors(ck);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const Tensor* rm = c->Find("bn.running_mean");
  ASSERT_NE(rm, nullptr);
  double mag = 0;
  for (int64_t i = 0; i < rm->num_elements(); ++i) mag += std::fabs(rm->GetAsDouble(i));
  EXPECT_GT(mag, 1e-3);
  EXPECT_EQ(c->metadata["tessera.step"], "30");
  EXPECT_EQ(c->metadata["tessera.format"], "1");
  EXPECT_NE(c->Find("fc1.weight.momentum"), nullptr);
  std::remove(ck.c_str());
}

// Save at step k, load into a new session, 10 more steps: the same loss bits.
void CheckResume(const TrainingOptions& t, bool batchnorm, bool dropout = false) {
  auto a = TrainingSession::FromGraph(SmallMlp(batchnorm, false, dropout), t, SessionOptions{});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto batch = [](int k, Tensor* x, Tensor* y) { Blobs(8, k, x, y); };
  for (int k = 0; k < 5; ++k) {
    Tensor x, y;
    batch(k, &x, &y);
    ASSERT_TRUE((*a)->Step({{"x", &x}, {"labels", &y}}).ok());
  }
  const std::string ck = TempPath("resume.safetensors");
  Status st = (*a)->SaveCheckpoint(ck);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::vector<double> want;
  for (int k = 5; k < 15; ++k) {
    Tensor x, y;
    batch(k, &x, &y);
    auto r = (*a)->Step({{"x", &x}, {"labels", &y}});
    ASSERT_TRUE(r.ok());
    want.push_back(r->loss);
  }
  auto b = TrainingSession::FromGraph(SmallMlp(batchnorm, false, dropout), t, SessionOptions{});
  ASSERT_TRUE(b.ok());
  st = (*b)->LoadCheckpoint(ck);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ((*b)->step(), 5);
  for (int k = 5; k < 15; ++k) {
    Tensor x, y;
    batch(k, &x, &y);
    auto r = (*b)->Step({{"x", &x}, {"labels", &y}});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(Bits(r->loss), Bits(want[k - 5])) << "step " << k << ": " << r->loss << " vs " << want[k - 5];
  }
  auto pa = (*a)->Parameters().value(), pb = (*b)->Parameters().value();
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_EQ(std::memcmp(pa[i].second.raw(), pb[i].second.raw(), pa[i].second.nbytes()), 0) << pa[i].first;
  std::remove(ck.c_str());
}

TEST(TrainingSession, CheckpointResumesBitExactlySgdMomentum) {
  REQUIRE_CPU();
  CheckResume(Sgd(0.05, 0.9f), true);
}

TEST(TrainingSession, CheckpointResumesBitExactlyAdamW) {
  REQUIRE_CPU();
  CheckResume(AdamW(0.01), false);
}

TEST(TrainingSession, DropoutTrainsAndResumesBitExactly) {
  REQUIRE_CPU();
  TrainingOptions t = Sgd(0.1, 0.9f);
  t.seed = 5;
  auto ts = TrainingSession::FromGraph(SmallMlp(false, false, true), t, SessionOptions{});
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  double first = 0, last = TrainBlobs(**ts, 40, &first);
  EXPECT_LT(last, 0.5 * first) << first << " -> " << last;
  // Dropout is active in training: the first loss differs from the model without it.
  auto plain = TrainingSession::FromGraph(SmallMlp(false), t, SessionOptions{});
  ASSERT_TRUE(plain.ok());
  double plain_first = 0;
  TrainBlobs(**plain, 1, &plain_first);
  EXPECT_GT(std::fabs(plain_first - first), 1e-4) << first;
  // Eval has Dropout off: two evals of one batch agree, and match the exported model.
  Tensor x, y;
  Blobs(8, 3, &x, &y);
  auto e1 = (*ts)->Eval({{"x", &x}});
  auto e2 = (*ts)->Eval({{"x", &x}});
  ASSERT_TRUE(e1.ok() && e2.ok());
  EXPECT_EQ(Floats(e1->outputs[0]), Floats(e2->outputs[0]));
  CheckResume(t, false, true);
}

// Each step draws a new Dropout mask: with lr 0 (parameters fixed) the same
// batch gives a different loss at every step, and a new session with the same
// seed repeats the sequence exactly.
TEST(TrainingSession, DropoutMaskChangesEveryStep) {
  REQUIRE_CPU();
  TrainingOptions t = Sgd(0.0);
  t.seed = 11;
  Tensor x, y;
  Blobs(16, 4, &x, &y);
  std::vector<double> runs[2];
  for (auto& losses : runs) {
    auto ts = TrainingSession::FromGraph(SmallMlp(false, false, true), t, SessionOptions{});
    ASSERT_TRUE(ts.ok()) << ts.status().ToString();
    for (int i = 0; i < 4; ++i) {
      auto r = (*ts)->Step({{"x", &x}, {"labels", &y}});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      losses.push_back(r->loss);
    }
  }
  for (size_t i = 1; i < runs[0].size(); ++i) EXPECT_NE(runs[0][i], runs[0][i - 1]) << "step " << i;
  EXPECT_EQ(runs[0], runs[1]);
}

// The same training on an accelerator (with the CPU as fallback) follows the
// CPU's loss curve; the state lives on the devices that update it.
TEST(TrainingSession, AcceleratorFollowsCpu) {
  REQUIRE_CPU();
  std::string accel;
  for (const auto& b : BackendRegistry::Get().backends())
    if (b->usable() && b->name != "cpu" && b->name != "null" && accel.empty()) accel = b->name + ":0";
  if (accel.empty()) GTEST_SKIP() << "needs a second usable backend (opencl, cuda, ...) besides cpu";
  SessionOptions o;
  o.devices = {accel, "cpu"};
  // The forward layers on the accelerator; the rest where the cost model puts it.
  o.placement["Gemm"] = accel;
  o.placement["Relu"] = accel;
  auto cpu = TrainingSession::FromGraph(SmallMlp(true), Sgd(0.1, 0.9f), SessionOptions{});
  auto acc = TrainingSession::FromGraph(SmallMlp(true), Sgd(0.1, 0.9f), o);
  ASSERT_TRUE(cpu.ok() && acc.ok());
  for (int k = 0; k < 10; ++k) {
    Tensor x, y;
    Blobs(16, k, &x, &y);
    auto a = (*cpu)->Step({{"x", &x}, {"labels", &y}});
    auto b = (*acc)->Step({{"x", &x}, {"labels", &y}});
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_NEAR(b->loss, a->loss, 1e-3 * std::fabs(a->loss)) << "step " << k;
  }
  std::printf("%s state: %s\n", accel.c_str(), (*acc)->StatsJson().c_str());
}

TEST(TrainingSession, CheckpointErrors) {
  REQUIRE_CPU();
  auto a = TrainingSession::FromGraph(SmallMlp(false), Sgd(0.1, 0.9f), SessionOptions{});
  ASSERT_TRUE(a.ok());
  const std::string ck = TempPath("errors.safetensors");
  ASSERT_TRUE((*a)->SaveCheckpoint(ck).ok()) << "saving before the first step works";
  auto b = TrainingSession::FromGraph(SmallMlp(false), AdamW(0.01), SessionOptions{});
  ASSERT_TRUE(b.ok());
  Status st = (*b)->LoadCheckpoint(ck);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("optimizer 'sgd'"), std::string::npos) << st.message();
  auto c = TrainingSession::FromGraph(SmallMlp(true), Sgd(0.1, 0.9f), SessionOptions{});
  ASSERT_TRUE(c.ok());
  st = (*c)->LoadCheckpoint(ck);
  EXPECT_NE(st.message().find("lacks tensor 'bn."), std::string::npos) << st.message();
  auto d = TrainingSession::FromGraph(SmallMlp(false), Sgd(0.1), SessionOptions{});
  ASSERT_TRUE(d.ok());
  st = (*d)->LoadCheckpoint(ck);
  EXPECT_NE(st.message().find(".momentum'"), std::string::npos) << st.message();
  EXPECT_FALSE((*a)->LoadCheckpoint(TempPath("no_such_file.safetensors")).ok());
  std::remove(ck.c_str());
}

TEST(TrainingSession, ExportOnnxRoundTrip) {
  REQUIRE_CPU();
  auto ts = TrainingSession::FromGraph(SmallMlp(true), Sgd(0.1, 0.9f), SessionOptions{});
  ASSERT_TRUE(ts.ok());
  double first = 0;
  TrainBlobs(**ts, 10, &first);
  const std::string path = TempPath("export.onnx");
  Status st = (*ts)->ExportOnnx(path);
  ASSERT_TRUE(st.ok()) << st.ToString();
  Tensor x, y;
  Blobs(6, 5, &x, &y);
  auto e = (*ts)->Eval({{"x", &x}});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  auto s = Session::FromFile(path, SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::vector<Tensor> r;
  ASSERT_TRUE((*s)->Run({{"x", &x}}, {}, &r).ok());
  ASSERT_EQ(r.size(), 1u);
  auto a = Floats(r[0]), b = Floats(e->outputs[0]);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << i;
  // The export is not the initial model: training changed the logits.
  auto init = Session::FromGraph(SmallMlp(true), SessionOptions{});
  ASSERT_TRUE(init.ok());
  std::vector<Tensor> r0;
  ASSERT_TRUE((*init)->Run({{"x", &x}}, {}, &r0).ok());
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += std::fabs(a[i] - r0[0].data<float>()[i]);
  EXPECT_GT(diff, 1e-3);
  std::remove(path.c_str());
}

TEST(TrainingSession, SetParametersAndBatchShapeChange) {
  REQUIRE_CPU();
  auto ts = TrainingSession::FromGraph(Linear({0, 0, 0, 0, 0, 0}, {0, 0}), Sgd(0.1), SessionOptions{});
  ASSERT_TRUE(ts.ok());
  Tensor w = Tensor::FromVector<float>(DType::kF32, {3, 2}, {1, 2, 3, 4, 5, 6});
  ASSERT_TRUE((*ts)->SetParameters({{"W", w}}).ok());
  EXPECT_EQ(Floats((*ts)->Parameters().value()[0].second), Floats(w));
  Tensor x = Tensor::FromVector<float>(DType::kF32, {1, 3}, {1, 0, 0});
  auto e = (*ts)->Eval({{"x", &x}});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(Floats(e->outputs[0]), (std::vector<float>{1, 2}));
  Tensor l1 = Tensor::FromVector<int64_t>(DType::kI64, {1}, {0});
  ASSERT_TRUE((*ts)->Step({{"x", &x}, {"labels", &l1}}).ok());
  auto p1 = (*ts)->Parameters().value();
  // Another batch size: a new compiled step that keeps the trained values.
  Tensor x2 = Tensor::FromVector<float>(DType::kF32, {2, 3}, {0, 0, 0, 0, 0, 0});
  Tensor l2 = Tensor::FromVector<int64_t>(DType::kI64, {2}, {0, 1});
  ASSERT_TRUE((*ts)->Step({{"x", &x2}, {"labels", &l2}}).ok());
  auto p2 = (*ts)->Parameters().value();
  EXPECT_EQ(Floats(p2[0].second), Floats(p1[0].second)) << "x = 0: W's gradient is zero";
  EXPECT_EQ((*ts)->step(), 2);
  Status st = (*ts)->SetParameters({{"nope", w}});
  EXPECT_NE(st.message().find("'nope'"), std::string::npos) << st.message();
  st = (*ts)->SetParameters({{"b", w}});
  EXPECT_NE(st.message().find("parameter 'b'"), std::string::npos) << st.message();
}

TEST(TrainingSession, Errors) {
  REQUIRE_CPU();
  TrainingOptions t = Sgd(0.1);
  t.loss.kind = "hinge";
  auto bad = TrainingSession::FromGraph(SmallMlp(false), t, SessionOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'hinge'"), std::string::npos) << bad.status().message();
  t = Sgd(0.1);
  t.loss.output = "nope";
  bad = TrainingSession::FromGraph(SmallMlp(false), t, SessionOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'nope'"), std::string::npos) << bad.status().message();
  t = Sgd(0.1);
  t.grad_accum_steps = 0;
  EXPECT_FALSE(TrainingSession::FromGraph(SmallMlp(false), t, SessionOptions{}).ok());
  t = Sgd(0.1);
  t.loss.label_smoothing = 1.5f;
  EXPECT_FALSE(TrainingSession::FromGraph(SmallMlp(false), t, SessionOptions{}).ok());
  t = Sgd(-1);
  EXPECT_FALSE(TrainingSession::FromGraph(SmallMlp(false), t, SessionOptions{}).ok());
  t = Sgd(0.1);
  t.optimizer.kind = "lion";
  auto lion = TrainingSession::FromGraph(SmallMlp(false), t, SessionOptions{});
  if (lion.ok()) {  // the optimizer is checked when the first step compiles
    Tensor x, y;
    Blobs(4, 0, &x, &y);
    auto r = (*lion)->Step({{"x", &x}, {"labels", &y}});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("lion"), std::string::npos) << r.status().message();
  }
  t = Sgd(0.1);
  t.params = {"no_such_param"};
  EXPECT_FALSE(TrainingSession::FromGraph(SmallMlp(false), t, SessionOptions{}).ok());
  EXPECT_FALSE(TrainingSession::FromFile(TempPath("missing.onnx"), Sgd(0.1), SessionOptions{}).ok());

  auto ts = TrainingSession::FromGraph(SmallMlp(false), Sgd(0.1), SessionOptions{});
  ASSERT_TRUE(ts.ok());
  Tensor x, y;
  Blobs(4, 0, &x, &y);
  auto r = (*ts)->Step({{"x", &x}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("missing batch input 'labels'"), std::string::npos) << r.status().message();
  Tensor yf = Tensor::FromVector<float>(DType::kF32, {4}, {0, 1, 0, 1});
  r = (*ts)->Step({{"x", &x}, {"labels", &yf}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'labels' has dtype f32"), std::string::npos) << r.status().message();
  r = (*ts)->Step({{"x", &x}, {"labels", &y}, {"extra", &y}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'extra'"), std::string::npos) << r.status().message();
  Tensor x3 = Tensor::FromVector<float>(DType::kF32, {4, 3}, std::vector<float>(12, 0.f));
  r = (*ts)->Step({{"x", &x3}, {"labels", &y}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'x' has shape"), std::string::npos) << r.status().message();
  EXPECT_EQ((*ts)->step(), 0);
}

TEST(TrainingOptions, FromSettings) {
  auto t = TrainingOptions::FromSettings({{"optimizer", "adam"}, {"lr", "0.01"}, {"warmup_steps", "10"},
                                          {"steps", "100"}, {"loss", "mse"}, {"grad_clip", "1.5"},
                                          {"epochs", "3"}, {"batch_size", "32"}});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->optimizer.kind, "adamw");
  EXPECT_EQ(t->optimizer.weight_decay, 0.f);
  EXPECT_EQ(t->lr.kind, "cosine");
  EXPECT_EQ(t->lr.total_steps, 100);
  EXPECT_EQ(t->lr.warmup_steps, 10);
  EXPECT_DOUBLE_EQ(t->lr.base_lr, 0.01);
  EXPECT_EQ(t->loss.kind, "mse");
  EXPECT_FLOAT_EQ(t->optimizer.clip_norm, 1.5f);
  auto w = TrainingOptions::FromSettings({{"optimizer", "adamw"}});
  ASSERT_TRUE(w.ok());
  EXPECT_FLOAT_EQ(w->optimizer.weight_decay, 0.01f);
  EXPECT_EQ(w->lr.kind, "constant");
  auto s = TrainingOptions::FromSettings({{"optimizer", "sgd"}, {"momentum", "0.9"}, {"nesterov", "true"},
                                          {"label_smoothing", "0.1"}, {"ignore_index", "-1"}, {"seed", "7"}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->optimizer.nesterov);
  EXPECT_EQ(s->loss.ignore_index, -1);
  EXPECT_EQ(s->seed, 7u);
  auto e = TrainingOptions::FromSettings({{"warmup_steps", "10"}});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("training.steps"), std::string::npos) << e.status().message();
  e = TrainingOptions::FromSettings({{"optimizer", "lion"}});
  EXPECT_NE(e.status().message().find("'lion'"), std::string::npos);
  e = TrainingOptions::FromSettings({{"loss", "hinge"}});
  EXPECT_NE(e.status().message().find("training.loss"), std::string::npos);
  e = TrainingOptions::FromSettings({{"lr", "fast"}});
  EXPECT_NE(e.status().message().find("training.lr"), std::string::npos);
  e = TrainingOptions::FromSettings({{"bogus", "1"}});
  EXPECT_NE(e.status().message().find("training.bogus"), std::string::npos);
}

// ---- models/train_mlp against PyTorch's loss curve -------------------------------------

// PyTorch 1.13's fp32 losses for 50 steps (models/train_*/torch_ref.json).
void FollowTorch(const std::string& model, bool image_shape) {
  const std::string dir = std::string(TESSERA_MODELS_DIR) + "/" + model + "/";
  std::ifstream jf(dir + "torch_ref.json");
  if (!jf || !std::ifstream(dir + "model.onnx")) GTEST_SKIP() << dir << " is missing (scripts/gen_train_refs.py)";
  nlohmann::json ref = nlohmann::json::parse(jf, nullptr, false);
  ASSERT_TRUE(ref.is_object());
  // The reference's split of LoadDigits, in file order.
  auto digits = LoadDigits(ref["data"]["split"].get<std::string>(), image_shape);
  if (!digits.ok()) GTEST_SKIP() << "digits data set unavailable: " << digits.status().ToString();
  if (digits->size() != ref["data"]["rows"].get<int64_t>())
    GTEST_SKIP() << "the reference was made for another digits split (" << ref["data"]["rows"] << " rows, LoadDigits has "
                 << digits->size() << "); regenerate it with scripts/gen_train_refs.py";
  const auto& o = ref["optimizer"];
  TrainingOptions t;
  t.optimizer.kind = o["kind"].get<std::string>();
  t.lr.base_lr = ref["lr"].get<double>();
  if (t.optimizer.kind == "sgd") {
    t.optimizer.momentum = o["momentum"].get<float>();
    t.optimizer.nesterov = o["nesterov"].get<bool>();
  } else {
    t.optimizer.beta1 = o["beta1"].get<float>();
    t.optimizer.beta2 = o["beta2"].get<float>();
    t.optimizer.epsilon = o["epsilon"].get<float>();
  }
  t.optimizer.weight_decay = o["weight_decay"].get<float>();
  auto ts = TrainingSession::FromFile(dir + "model.onnx", t, SessionOptions{});
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  if (ref.contains("params")) {
    std::vector<std::string> want;
    for (const auto& p : ref["params"]) want.push_back(p.get<std::string>());
    std::vector<std::string> got = (*ts)->param_names();
    std::sort(want.begin(), want.end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, want);
  }
  const int64_t bs = ref["batch_size"].get<int64_t>();
  const auto& losses = ref["losses"];
  ASSERT_GE(losses.size(), 10u);
  for (size_t k = 0; k < losses.size(); ++k) {
    Tensor x = TakeRows(digits->features, static_cast<int64_t>(k) * bs, bs).value();
    Tensor y = TakeRows(digits->labels, static_cast<int64_t>(k) * bs, bs).value();
    auto r = (*ts)->Step({{"x", &x}, {"labels", &y}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const double want = losses[k].get<double>();
    EXPECT_NEAR(r->loss, want, 1e-4 * std::fabs(want)) << model << " step " << k;
  }
  // Parameters and moments are updated in place on the device.
  auto stats = nlohmann::json::parse((*ts)->StatsJson());
  for (const auto& p : (*ts)->param_names()) EXPECT_EQ(stats["state"][p], "in_place") << p << " " << stats.dump();
  std::printf("%s state: %s\n", model.c_str(), stats["state"].dump().c_str());
}

TEST(TrainingSession, TrainMlpFollowsTorch) {
  REQUIRE_CPU();
  FollowTorch("train_mlp", false);
}

TEST(TrainingSession, TrainCnnFollowsTorch) {
  REQUIRE_CPU();
  FollowTorch("train_cnn", true);
}

}  // namespace
}  // namespace tessera
