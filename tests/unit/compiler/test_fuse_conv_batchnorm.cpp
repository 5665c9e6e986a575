// fuse_conv_batchnorm: the folded graph has one Conv with folded constants,
// computes the same numbers, and near-miss graphs stay untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "tests/unit/compiler/pass_test_util.h"

namespace tessera {
namespace {

using testing::CountOps;
using testing::ExpectSameOutputsAtO0And;
using testing::RunPassOn;

Tensor RandomTensor(std::vector<int64_t> dims, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(rng);
  return Tensor::FromVector<float>(DType::kF32, std::move(dims), v);
}

struct Options {
  bool conv_bias = true;
  bool const_w = true;
  bool const_scale = true;
  bool extra_use = false;       // the Conv output also feeds a Relu that is a graph output
  bool conv_is_output = false;  // the Conv output is itself a graph output
  int64_t training_mode = 0;
  int64_t group = 1;
  bool relu_after = false;
};

// x[1,4,6,6] -> Conv(W[6,4/g,3,3], B) -> BatchNormalization -> (Relu) -> y
std::unique_ptr<Graph> ConvBn(const Options& o) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({1, 4, 6, 6})});
  g->AddInput(x);
  const int64_t m = 6;
  Value* w;
  if (o.const_w) {
    w = g->AddConstant("W", RandomTensor({m, 4 / o.group, 3, 3}, -0.5f, 0.5f, 1));
  } else {
    w = g->AddValue("W", TensorType{DType::kF32, Shape::FromInts({m, 4 / o.group, 3, 3})});
    g->AddInput(w);
  }
  std::vector<Value*> conv_in{x, w};
  if (o.conv_bias) conv_in.push_back(g->AddConstant("B", RandomTensor({m}, -0.5f, 0.5f, 2)));
  Node* conv = g->AddNode("Conv", conv_in, 1, "conv");
  conv->set_attr("pads", Attribute::Ints({1, 1, 1, 1}));
  conv->set_attr("group", Attribute::Int(o.group));
  Value* scale;
  if (o.const_scale) {
    scale = g->AddConstant("scale", RandomTensor({m}, 0.5f, 1.5f, 3));
  } else {
    scale = g->AddValue("scale", TensorType{DType::kF32, Shape::FromInts({m})});
    g->AddInput(scale);
  }
  Value* beta = g->AddConstant("beta", RandomTensor({m}, -0.5f, 0.5f, 4));
  Value* mean = g->AddConstant("mean", RandomTensor({m}, -0.5f, 0.5f, 5));
  Value* var = g->AddConstant("var", RandomTensor({m}, 0.1f, 2.f, 6));
  Node* bn = g->AddNode("BatchNormalization", {conv->output(0), scale, beta, mean, var}, 1, "bn");
  bn->set_attr("epsilon", Attribute::Float(1e-3f));
  if (o.training_mode) bn->set_attr("training_mode", Attribute::Int(o.training_mode));
  Value* y = bn->output(0);
  if (o.relu_after) y = g->AddNode("Relu", {y}, 1, "relu")->output(0);
  g->AddOutput(y);
  if (o.extra_use) g->AddOutput(g->AddNode("Relu", {conv->output(0)}, 1, "side")->output(0));
  if (o.conv_is_output) g->AddOutput(conv->output(0));
  return g;
}

TEST(FuseConvBatchNorm, FoldsIntoOneConvWithSameNumbers) {
  for (bool bias : {true, false}) {
    SCOPED_TRACE(bias ? "with conv bias" : "without conv bias");
    Options o;
    o.conv_bias = bias;
    o.relu_after = true;
    auto g = ConvBn(o);
    const Value* out = g->outputs()[0];
    PassContext ctx;
    RunPassOn(*g, CreateFuseConvBatchNormPass(), &ctx);
    EXPECT_EQ(ctx.changes, 1);
    EXPECT_EQ(CountOps(*g, "BatchNormalization"), 0);
    ASSERT_EQ(CountOps(*g, "Conv"), 1);
    const Node* conv = g->FindNode("conv");
    ASSERT_NE(conv, nullptr);
    EXPECT_EQ(conv->GetInts("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
    ASSERT_EQ(conv->num_inputs(), 3u);
    ASSERT_TRUE(conv->input(1)->is_constant());
    ASSERT_TRUE(conv->input(2)->is_constant());
    EXPECT_EQ(g->outputs()[0], out);  // the graph output Value is kept

    // Spot-check the folded constants against the formula.
    auto ref = ConvBn(o);
    const Tensor& w0 = *ref->FindValue("W")->constant();
    const Tensor& sc = *ref->FindValue("scale")->constant();
    const Tensor& va = *ref->FindValue("var")->constant();
    const Tensor& mu = *ref->FindValue("mean")->constant();
    const Tensor& be = *ref->FindValue("beta")->constant();
    const Tensor& w1 = *conv->input(1)->constant();
    const Tensor& b1 = *conv->input(2)->constant();
    const int64_t per = w0.num_elements() / 6;
    for (int64_t m = 0; m < 6; ++m) {
      double s = sc.data<float>()[m] / std::sqrt(static_cast<double>(va.data<float>()[m]) + 1e-3);
      EXPECT_NEAR(w1.data<float>()[m * per + 5], w0.data<float>()[m * per + 5] * s, 1e-5);
      double b0 = bias ? ref->FindValue("B")->constant()->data<float>()[m] : 0.0;
      EXPECT_NEAR(b1.data<float>()[m], (b0 - mu.data<float>()[m]) * s + be.data<float>()[m], 1e-5);
    }
    ExpectSameOutputsAtO0And(2, [&] { return ConvBn(o); });
  }
}

TEST(FuseConvBatchNorm, GroupedConvFolds) {
  Options o;
  o.group = 2;
  auto g = ConvBn(o);
  RunPassOn(*g, CreateFuseConvBatchNormPass());
  EXPECT_EQ(CountOps(*g, "BatchNormalization"), 0);
  EXPECT_EQ(CountOps(*g, "Conv"), 1);
  EXPECT_EQ(g->FindNode("conv")->GetInt("group", 1), 2);
  ExpectSameOutputsAtO0And(2, [&] { return ConvBn(o); });
}

TEST(FuseConvBatchNorm, NearMissesAreLeftAlone) {
  struct Case {
    const char* what;
    Options o;
  };
  std::vector<Case> cases;
  { Options o; o.const_w = false; cases.push_back({"non-constant W", o}); }
  { Options o; o.const_scale = false; cases.push_back({"non-constant scale", o}); }
  { Options o; o.extra_use = true; cases.push_back({"conv output used twice", o}); }
  { Options o; o.conv_is_output = true; cases.push_back({"conv output is a graph output", o}); }
  { Options o; o.training_mode = 1; cases.push_back({"training mode", o}); }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto g = ConvBn(c.o);
    size_t before = g->num_nodes();
    PassContext ctx;
    RunPassOn(*g, CreateFuseConvBatchNormPass(), &ctx);
    EXPECT_EQ(ctx.changes, 0);
    EXPECT_EQ(g->num_nodes(), before);
    EXPECT_EQ(CountOps(*g, "BatchNormalization"), 1);
    if (c.o.training_mode == 0 && c.o.const_w && c.o.const_scale)
      ExpectSameOutputsAtO0And(2, [&] { return ConvBn(c.o); });
  }
}

TEST(FuseConvBatchNorm, NonF32IsLeftAlone) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF64, Shape::FromInts({1, 1, 2, 2})});
  g->AddInput(x);
  Value* w = g->AddConstant("W", Tensor::FromVector<double>(DType::kF64, {1, 1, 1, 1}, {2.0}));
  Node* conv = g->AddNode("Conv", {x, w}, 1, "conv");
  std::vector<Value*> bn_in{conv->output(0)};
  for (const char* n : {"s", "b", "m", "v"})
    bn_in.push_back(g->AddConstant(n, Tensor::FromVector<double>(DType::kF64, {1}, {1.0})));
  g->AddOutput(g->AddNode("BatchNormalization", bn_in, 1, "bn")->output(0));
  PassContext ctx;
  RunPassOn(*g, CreateFuseConvBatchNormPass(), &ctx);
  EXPECT_EQ(ctx.changes, 0);
  EXPECT_EQ(CountOps(*g, "BatchNormalization"), 1);
}

}  // namespace
}  // namespace tessera
