#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "graph/op_schema.h"
#include "runtime/backend_registry.h"
#include "runtime/session.h"

namespace tessera {
namespace {

bool HaveCpu() {
  const LoadedBackend* b = BackendRegistry::Get().Find("cpu");
  return b && b->usable();
}

#define REQUIRE_CPU() \
  if (!HaveCpu()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable"

// y = Relu(x @ W + b) with a symbolic batch dim; W, b constants.
std::unique_ptr<Graph> Mlp(bool symbolic_batch = true) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Shape xs({symbolic_batch ? Dim::Symbol("batch") : Dim::Known(2), Dim::Known(3)});
  Value* x = g->AddValue("x", TensorType{DType::kF32, xs});
  g->AddInput(x);
  Value* w = g->AddConstant("W", Tensor::FromVector<float>(DType::kF32, {3, 2}, {1, -1, 2, 0.5f, -3, 1}));
  Value* b = g->AddConstant("b", Tensor::FromVector<float>(DType::kF32, {2}, {0.5f, -0.25f}));
  Node* mm = g->AddNode("MatMul", {x, w}, 1, "mm");
  Node* add = g->AddNode("Add", {mm->output(0), b}, 1, "add");
  Node* relu = g->AddNode("Relu", {add->output(0)}, 1, "relu");
  relu->output(0)->set_type(TensorType{DType::kF32, Shape::UnknownRank()});
  g->AddOutput(relu->output(0));
  return g;
}

std::vector<float> MlpReference(const std::vector<float>& x, int64_t batch) {
  const float w[6] = {1, -1, 2, 0.5f, -3, 1}, b[2] = {0.5f, -0.25f};
  std::vector<float> y(batch * 2);
  for (int64_t i = 0; i < batch; ++i)
    for (int j = 0; j < 2; ++j) {
      float s = b[j];
      for (int k = 0; k < 3; ++k) s += x[i * 3 + k] * w[k * 2 + j];
      y[i * 2 + j] = std::max(s, 0.f);
    }
  return y;
}

Tensor Input(int64_t batch) {
  std::vector<float> v(batch * 3);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.7f * static_cast<float>(i)) * 2.f;
  return Tensor::FromVector<float>(DType::kF32, {batch, 3}, v);
}

TEST(Session, RunsAndMatchesReferenceAtSeveralBatchSizes) {
  REQUIRE_CPU();
  auto s = Session::FromGraph(Mlp(), SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (int64_t batch : {1, 4, 2}) {
    Tensor x = Input(batch);
    std::vector<Tensor> out;
    Status st = (*s)->Run({{"x", &x}}, {}, &out);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].dims(), (std::vector<int64_t>{batch, 2}));
    auto ref = MlpReference(std::vector<float>(x.data<float>(), x.data<float>() + batch * 3), batch);
    for (int64_t i = 0; i < batch * 2; ++i) EXPECT_NEAR(out[0].data<float>()[i], ref[i], 1e-5);
  }
}

TEST(Session, DimBindingCompilesAtCreation) {
  REQUIRE_CPU();
  SessionOptions o;
  ASSERT_TRUE(o.Set("dim.batch", "3").ok());
  auto s = Session::FromGraph(Mlp(), o);
  ASSERT_TRUE(s.ok());
  auto j = (*s)->DescribeJson();
  ASSERT_TRUE(j.ok());
  EXPECT_NE(j->find("\"compiled\": true"), std::string::npos);
  EXPECT_NE(j->find("\"cpu\""), std::string::npos);
}

TEST(Session, WrongInputNameDtypeAndShapeAreClearErrors) {
  REQUIRE_CPU();
  auto s = Session::FromGraph(Mlp(), SessionOptions{});
  ASSERT_TRUE(s.ok());
  std::vector<Tensor> out;
  Tensor x = Input(2);
  Status st = (*s)->Run({{"nope", &x}}, {}, &out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("unknown input 'nope'"), std::string::npos);
  EXPECT_NE(st.message().find("x"), std::string::npos);

  Tensor xi = Tensor::FromVector<int64_t>(DType::kI64, {2, 3}, {1, 2, 3, 4, 5, 6});
  st = (*s)->Run({{"x", &xi}}, {}, &out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("dtype i64"), std::string::npos) << st.message();

  Tensor bad = Tensor::FromVector<float>(DType::kF32, {2, 4}, std::vector<float>(8, 1.f));
  st = (*s)->Run({{"x", &bad}}, {}, &out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("dim 1 is 4, expected 3"), std::string::npos) << st.message();

  st = (*s)->Run({}, {}, &out);
  EXPECT_NE(st.message().find("missing input 'x'"), std::string::npos) << st.message();

  st = (*s)->Run({{"x", &x}}, {"not_an_output"}, &out);
  EXPECT_NE(st.message().find("unknown output"), std::string::npos) << st.message();
}

TEST(Session, UnsupportedOpsAreListedTogether) {
  REQUIRE_CPU();
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({2})});
  g->AddInput(x);
  Node* a = g->AddNode("FooBar", {x}, 1, "first_bad");
  Node* b = g->AddNode("Bazz", {a->output(0)}, 1, "second_bad");
  g->AddOutput(b->output(0));
  auto s = Session::FromGraph(std::move(g), SessionOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(s.status().message().find("first_bad"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("second_bad"), std::string::npos) << s.status().message();
}

TEST(Session, AllocationCapIsEnforced) {
  REQUIRE_CPU();
  SessionOptions o;
  ASSERT_TRUE(o.Set("max_alloc_bytes", "64").ok());
  ASSERT_TRUE(o.Set("dim.batch", "1000").ok());
  auto s = Session::FromGraph(Mlp(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(s.status().message().find("cap"), std::string::npos) << s.status().message();
}

TEST(Session, PerDeviceMemoryCapIsEnforced) {
  REQUIRE_CPU();
  SessionOptions o;
  ASSERT_TRUE(o.Set("dim.batch", "1000").ok());
  ASSERT_TRUE(o.Set("memory.cpu", "64").ok());
  auto s = Session::FromGraph(Mlp(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(s.status().message().find("memory cap of 64 bytes"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("cpu"), std::string::npos) << s.status().message();

  ASSERT_TRUE(o.Set("memory.cpu", "1MiB").ok());
  auto ok = Session::FromGraph(Mlp(), o);
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(Session, BackendOptionsReachTheirBackendFirst) {
  REQUIRE_CPU();
  SessionOptions o;
  ASSERT_TRUE(o.Set("dim.batch", "2").ok());
  // The CPU plugin validates "precision"; a backend option comes before the session-wide one.
  ASSERT_TRUE(o.Set("backend.cpu.precision", "f7").ok());
  auto s = Session::FromGraph(Mlp(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("precision='f7'"), std::string::npos) << s.status().message();
  // Options for another backend do not reach the CPU plugin.
  SessionOptions o2;
  ASSERT_TRUE(o2.Set("dim.batch", "2").ok());
  ASSERT_TRUE(o2.Set("backend.opencl.precision", "f7").ok());
  auto s2 = Session::FromGraph(Mlp(), o2);
  EXPECT_TRUE(s2.ok()) << s2.status().ToString();
}

TEST(Session, UnknownDeviceAndOptionAreErrors) {
  SessionOptions o;
  EXPECT_FALSE(o.Set("no_such_option", "1").ok());
  EXPECT_FALSE(o.Set("threads", "many").ok());
  ASSERT_TRUE(o.Set("devices", "warp_drive:0").ok());
  ASSERT_TRUE(o.Set("dim.batch", "2").ok());
  auto s = Session::FromGraph(Mlp(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_NE(s.status().message().find("warp_drive"), std::string::npos);
}

TEST(Session, ConcurrentRunsGiveTheSameAnswers) {
  REQUIRE_CPU();
  SessionOptions o;
  ASSERT_TRUE(o.Set("dim.batch", "8").ok());
  auto s = Session::FromGraph(Mlp(), o);
  ASSERT_TRUE(s.ok());
  Tensor x = Input(8);
  auto ref = MlpReference(std::vector<float>(x.data<float>(), x.data<float>() + 24), 8);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        std::vector<Tensor> out;
        if (!(*s)->Run({{"x", &x}}, {}, &out).ok()) { bad++; continue; }
        for (int k = 0; k < 16; ++k)
          if (std::fabs(out[0].data<float>()[k] - ref[k]) > 1e-5) bad++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Session, NullBackendIsLoadedButClaimsNothing) {
  const LoadedBackend* b = BackendRegistry::Get().Find("null");
  if (!b) GTEST_SKIP() << "the null backend plugin is not built";
  SessionOptions o;
  ASSERT_TRUE(o.Set("devices", "null").ok());
  ASSERT_TRUE(o.Set("dim.batch", "2").ok());
  auto s = Session::FromGraph(Mlp(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("null"), std::string::npos) << s.status().message();
}

}  // namespace
}  // namespace tessera
