// Inputs whose values set shapes or parameters (compiler/specialize.h): the
// session compiles one variant per distinct value and keys variants by it.
#include <gtest/gtest.h>

#include "compiler/specialize.h"
#include "graph/op_schema.h"
#include "runtime/backend_registry.h"
#include "runtime/session.h"

namespace tessera {
namespace {

bool HaveCpu() {
  const LoadedBackend* b = BackendRegistry::Get().Find("cpu");
  return b && b->usable();
}

// y = ReduceSum(x, axes) with x f32[2,3] and axes an i64[1] graph input.
std::unique_ptr<Graph> ReduceWithAxesInput() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 18);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape({Dim::Known(2), Dim::Known(3)})});
  Value* axes = g->AddValue("axes", TensorType{DType::kI64, Shape({Dim::Known(1)})});
  g->AddInput(x);
  g->AddInput(axes);
  Node* r = g->AddNode("ReduceSum", {x, axes}, 1, "sum");
  r->set_attr("keepdims", Attribute::Int(0));
  g->AddOutput(r->output(0));
  return g;
}

TEST(ValueSpecialization, FindsGraphInputsFeedingValueInputs) {
  auto g = ReduceWithAxesInput();
  ASSERT_TRUE(InferGraphTypes(*g).ok());
  auto names = FindValueInputs(*g);
  EXPECT_EQ(names, std::set<std::string>{"axes"});  // not x: only its shape matters
}

TEST(ValueSpecialization, ShapeOfAnInputIsNotAValueDependency) {
  // Reshape(x, Shape(x)): the shape comes from x's shape, never its values.
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape({Dim::Known(2), Dim::Known(3)})});
  g->AddInput(x);
  Node* sh = g->AddNode("Shape", {x}, 1, "shape");
  Node* r = g->AddNode("Reshape", {x, sh->output(0)}, 1, "reshape");
  g->AddOutput(r->output(0));
  ASSERT_TRUE(InferGraphTypes(*g).ok());
  EXPECT_TRUE(FindValueInputs(*g).empty());
}

TEST(ValueSpecialization, SpecializeChecksDtypeAndShape) {
  auto g = ReduceWithAxesInput();
  Tensor bad = Tensor::FromVector<int32_t>(DType::kI32, {1}, {0});
  Status st = SpecializeInputs(*g, {{"axes", &bad}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("axes"), std::string::npos) << st.message();
  Tensor two = Tensor::FromVector<int64_t>(DType::kI64, {2}, {0, 1});
  st = SpecializeInputs(*g, {{"axes", &two}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  Tensor ok = Tensor::FromVector<int64_t>(DType::kI64, {1}, {1});
  ASSERT_TRUE(SpecializeInputs(*g, {{"axes", &ok}}).ok());
  EXPECT_TRUE(g->FindValue("axes")->is_constant());
  EXPECT_EQ(g->RuntimeInputs().size(), 1u);
}

TEST(ValueSpecialization, SessionCompilesOneVariantPerValue) {
  if (!HaveCpu()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  auto s = Session::FromGraph(ReduceWithAxesInput(), SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Tensor x = Tensor::FromVector<float>(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  struct Case {
    int64_t axis;
    std::vector<int64_t> dims;
    std::vector<float> want;
  };
  // Each axis twice: the second run of a value reuses its variant.
  for (const Case& c : {Case{0, {3}, {5, 7, 9}}, Case{1, {2}, {6, 15}}, Case{0, {3}, {5, 7, 9}},
                        Case{-1, {2}, {6, 15}}}) {
    Tensor axes = Tensor::FromVector<int64_t>(DType::kI64, {1}, {c.axis});
    std::vector<Tensor> out;
    Status st = (*s)->Run({{"x", &x}, {"axes", &axes}}, {}, &out);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].dims(), c.dims) << "axis " << c.axis;
    for (size_t i = 0; i < c.want.size(); ++i) EXPECT_FLOAT_EQ(out[0].data<float>()[i], c.want[i]);
  }
  auto stats = (*s)->DescribeJson();
  ASSERT_TRUE(stats.ok());
  // A plan file cannot hold the built-in value of 'axes': saving says so.
  Status st = (*s)->SavePlan(::testing::TempDir() + "/specialized.tplan");
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("axes"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace tessera
