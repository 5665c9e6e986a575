// BuildGradientGraph structure and errors, an MLP's gradients vs PyTorch
// autograd, and the learning-rate schedules.
#include <cmath>

#include "compiler/autodiff/lr_schedule.h"
#include "tests/unit/training/gradcheck_util.h"

namespace tessera::training_test {
namespace {

#include "tests/unit/training/torch_refs.inc"

using A = Attribute;

std::vector<double> Seq(int n, double a, double b, double scale = 1.0) {
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i) v[i] = std::sin(a * i + b) * scale;
  return v;
}

std::unique_ptr<Graph> NewGraph() {
  auto g = std::make_unique<Graph>();
  g->set_name("g");
  g->set_opset("", 17);
  g->set_opset("tessera", 1);
  return g;
}

Value* In(Graph& g, const std::string& name, std::vector<int64_t> dims, DType dt = DType::kF32) {
  Value* v = g.AddValue(name, TensorType{dt, Shape::FromInts(dims)});
  g.AddInput(v);
  return v;
}

Value* Add1(Graph& g, const std::string& op, std::vector<Value*> in, std::map<std::string, A> attrs = {},
            const std::string& domain = "") {
  Node* n = g.AddNode(op, in, 1, "", domain);
  for (auto& [k, a] : attrs) n->set_attr(k, a);
  return n->output(0);
}

TEST(Autodiff, GradientsAreNamedOutputsOfTheParamsTypes) {
  auto g = NewGraph();
  Value* x = In(*g, "x", {2, 3});
  Value* w = In(*g, "w", {3, 4});
  Value* y = Add1(*g, "MatMul", {x, w});
  Value* l = Add1(*g, "ReduceSum", {y}, {{"keepdims", A::Int(0)}});
  g->AddOutput(l);
  auto info = autodiff::BuildGradientGraph(*g, l->name(), {"w", "x"});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_EQ(info->grads.size(), 2u);
  EXPECT_EQ(info->grads[0], "grad.w");
  EXPECT_EQ(info->grad_of.at("x"), "grad.x");
  EXPECT_GT(info->num_backward_nodes, 2);
  Value* gw = g->FindValue("grad.w");
  ASSERT_NE(gw, nullptr);
  EXPECT_TRUE(gw->is_graph_output());
  EXPECT_EQ(gw->type(), w->type());
  EXPECT_TRUE(g->Verify().ok());
}

TEST(Autodiff, ParamTheLossDoesNotDependOnGetsZeros) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  auto g = NewGraph();
  Value* x = In(*g, "x", {3});
  In(*g, "unused", {2});
  Value* l = Add1(*g, "ReduceSum", {Add1(*g, "Mul", {x, x})}, {{"keepdims", A::Int(0)}});
  g->AddOutput(l);
  auto info = autodiff::BuildGradientGraph(*g, l->name(), {"x", "unused"});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  SessionOptions o;
  o.opt_level = 0;
  auto s = Session::FromGraph(std::move(g), o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Tensor xv = Tensor::FromVector<float>(DType::kF32, {3}, {1, -2, 3});
  Tensor uv = Tensor::FromVector<float>(DType::kF32, {2}, {5, 6});
  std::vector<Tensor> r;
  ASSERT_TRUE((*s)->Run({{"x", &xv}, {"unused", &uv}}, {"grad.x", "grad.unused"}, &r).ok());
  EXPECT_EQ(r[0].GetAsDouble(1), -4.0);  // d(sum x^2)/dx = 2x, x used twice by Mul
  EXPECT_EQ(r[1].GetAsDouble(0), 0.0);
  EXPECT_EQ(r[1].GetAsDouble(1), 0.0);
}

TEST(Autodiff, OpWithoutARuleIsAnErrorNamingTheNodeAndOp) {
  auto g = NewGraph();
  Value* x = In(*g, "x", {4});
  Node* n = g->AddNode("Sin", {x}, 1, "the_sin");
  Value* l = Add1(*g, "ReduceSum", {n->output(0)}, {{"keepdims", A::Int(0)}});
  auto info = autodiff::BuildGradientGraph(*g, l->name(), {"x"});
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(info.status().message().find("the_sin"), std::string::npos) << info.status().message();
  EXPECT_NE(info.status().message().find("Sin"), std::string::npos) << info.status().message();
}

TEST(Autodiff, BadLossAndParamsAreRejected) {
  auto g = NewGraph();
  Value* x = In(*g, "x", {4});
  Value* y = Add1(*g, "Relu", {x});
  Value* ids = In(*g, "ids", {4}, DType::kI64);
  (void)ids;
  auto r1 = autodiff::BuildGradientGraph(*g, y->name(), {"x"});  // 4 elements
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.status().message().find("one element"), std::string::npos) << r1.status().message();
  Value* l = Add1(*g, "ReduceSum", {y}, {{"keepdims", A::Int(0)}});
  auto r2 = autodiff::BuildGradientGraph(*g, "nope", {"x"});
  EXPECT_EQ(r2.status().code(), StatusCode::kNotFound);
  auto r3 = autodiff::BuildGradientGraph(*g, l->name(), {"missing"});
  EXPECT_EQ(r3.status().code(), StatusCode::kNotFound);
  auto r4 = autodiff::BuildGradientGraph(*g, l->name(), {"ids"});
  ASSERT_FALSE(r4.ok());
  EXPECT_NE(r4.status().message().find("floating-point"), std::string::npos) << r4.status().message();
  auto r5 = autodiff::BuildGradientGraph(*g, l->name(), {"x", "x"});
  EXPECT_EQ(r5.status().code(), StatusCode::kInvalidArgument);
  auto r6 = autodiff::BuildGradientGraph(*g, l->name(), {});
  EXPECT_EQ(r6.status().code(), StatusCode::kInvalidArgument);
}

// x[4,3] -> Gemm(W1, b1) -> Relu -> MatMul(W2) + b2 -> SoftmaxCrossEntropy(label_smoothing 0.1), vs torch.
TEST(Autodiff, MlpGradientsMatchPyTorch) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  auto g = NewGraph();
  auto F = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  Value* x = g->AddConstant("x", Tensor::FromVector<float>(DType::kF32, {4, 3}, F(Seq(12, 0.7, 0.1))));
  Value* w1 = In(*g, "w1", {3, 5});
  Value* b1 = In(*g, "b1", {5});
  Value* w2 = In(*g, "w2", {5, 3});
  Value* b2 = In(*g, "b2", {3});
  Value* labels = g->AddConstant("labels", Tensor::FromVector<int64_t>(DType::kI64, {4}, {0, 2, 1, 2}));
  Value* h = Add1(*g, "Relu", {Add1(*g, "Gemm", {x, w1, b1})});
  Value* logits = Add1(*g, "Add", {Add1(*g, "MatMul", {h, w2}), b2});
  Value* loss = Add1(*g, "SoftmaxCrossEntropy", {logits, labels}, {{"label_smoothing", A::Float(0.1f)}}, "tessera");
  g->AddOutput(loss);
  auto info = autodiff::BuildGradientGraph(*g, loss->name(), {"w1", "b1", "w2", "b2"});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  SessionOptions o;
  o.opt_level = 2;  // the optimizing pipeline must keep gradients intact
  auto s = Session::FromGraph(std::move(g), o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Tensor tw1 = Tensor::FromVector<float>(DType::kF32, {3, 5}, F(Seq(15, 1.3, 0.2)));
  Tensor tb1 = Tensor::FromVector<float>(DType::kF32, {5}, F(Seq(5, 0.9, 0.3, 0.1)));
  Tensor tw2 = Tensor::FromVector<float>(DType::kF32, {5, 3}, F(Seq(15, 0.5, 0.4)));
  Tensor tb2 = Tensor::FromVector<float>(DType::kF32, {3}, F(Seq(3, 1.1, 0.5, 0.1)));
  std::vector<Tensor> r;
  Status st = (*s)->Run({{"w1", &tw1}, {"b1", &tb1}, {"w2", &tw2}, {"b2", &tb2}},
                        {loss->name(), "grad.w1", "grad.b1", "grad.w2", "grad.b2"}, &r);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto expect = [&](const Tensor& t, const double* ref, int n, const char* what) {
    ASSERT_EQ(t.num_elements(), n) << what;
    for (int i = 0; i < n; ++i) EXPECT_NEAR(t.GetAsDouble(i), ref[i], 2e-6 + 1e-5 * std::fabs(ref[i])) << what << "[" << i << "]";
  };
  expect(r[0], kMlpLoss, 1, "loss");
  expect(r[1], kMlpGradW1, 15, "dW1");
  expect(r[2], kMlpGradB1, 5, "db1");
  expect(r[3], kMlpGradW2, 15, "dW2");
  expect(r[4], kMlpGradB2, 3, "db2");
}

// ---- LR schedules ---------------------------------------------------------------------------

TEST(LrSchedule, ConstantStepCosine) {
  autodiff::LrScheduleConfig c;
  c.base_lr = 0.1;
  auto k = autodiff::LrSchedule::Create(c);
  ASSERT_TRUE(k.ok());
  EXPECT_DOUBLE_EQ(k->Rate(0), 0.1);
  EXPECT_DOUBLE_EQ(k->Rate(1000), 0.1);

  c.kind = "step";
  c.step_size = 3;
  c.gamma = 0.5;
  auto s = autodiff::LrSchedule::Create(c);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->Rate(2), 0.1);
  EXPECT_DOUBLE_EQ(s->Rate(3), 0.05);
  EXPECT_DOUBLE_EQ(s->Rate(7), 0.025);

  c.kind = "cosine";
  c.warmup_steps = 4;
  c.total_steps = 14;
  c.min_lr = 0.01;
  auto cs = autodiff::LrSchedule::Create(c);
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  EXPECT_DOUBLE_EQ(cs->Rate(0), 0.025);
  EXPECT_DOUBLE_EQ(cs->Rate(3), 0.1);
  EXPECT_DOUBLE_EQ(cs->Rate(4), 0.1);
  EXPECT_NEAR(cs->Rate(9), 0.01 + 0.09 * 0.5, 1e-12);  // halfway
  EXPECT_NEAR(cs->Rate(14), 0.01, 1e-12);
  EXPECT_NEAR(cs->Rate(100), 0.01, 1e-12);
}

TEST(LrSchedule, InvalidConfigsAreRejected) {
  autodiff::LrScheduleConfig c;
  c.kind = "linear";
  EXPECT_FALSE(autodiff::LrSchedule::Create(c).ok());
  c.kind = "step";
  c.step_size = 0;
  EXPECT_FALSE(autodiff::LrSchedule::Create(c).ok());
  c.kind = "cosine";
  c.warmup_steps = 5;
  c.total_steps = 5;
  auto r = autodiff::LrSchedule::Create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("total_steps"), std::string::npos);
  c.kind = "constant";
  c.base_lr = -1;
  EXPECT_FALSE(autodiff::LrSchedule::Create(c).ok());
}

}  // namespace
}  // namespace tessera::training_test
