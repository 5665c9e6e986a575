#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "runtime/backend_registry.h"
#include "runtime/plan_file.h"
#include "runtime/session.h"

namespace tessera {
namespace {
namespace fs = std::filesystem;

std::unique_ptr<Graph> SmallModel() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({2, 4})});
  g->AddInput(x);
  std::vector<float> w(16);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.25f * static_cast<float>(i) - 1.f;
  Value* wv = g->AddConstant("W", Tensor::FromVector<float>(DType::kF32, {4, 4}, w));
  Node* mm = g->AddNode("MatMul", {x, wv}, 1, "mm");
  Node* t = g->AddNode("Tanh", {mm->output(0)}, 1, "tanh");
  g->AddOutput(t->output(0));
  return g;
}

class PlanFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const LoadedBackend* b = BackendRegistry::Get().Find("cpu");
    if (!b || !b->usable()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
    dir_ = fs::temp_directory_path() / ("tsr_plan_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "m.tplan").string();
    auto s = Session::FromGraph(SmallModel(), SessionOptions{});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->SavePlan(path_).ok());
    x_ = Tensor::FromVector<float>(DType::kF32, {2, 4}, {1, 2, 3, 4, -1, -2, 0.5f, 0});
    ASSERT_TRUE((*s)->Run({{"x", &x_}}, {}, &ref_).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Bytes() {
    std::ifstream f(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  void Write(const std::string& p, const std::string& b) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << b;
  }
  fs::path dir_;
  std::string path_;
  Tensor x_;
  std::vector<Tensor> ref_;
};

TEST_F(PlanFileTest, RoundTripGivesIdenticalOutputs) {
  auto s = Session::FromFile(path_, SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::vector<Tensor> out;
  ASSERT_TRUE((*s)->Run({{"x", &x_}}, {}, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].nbytes(), ref_[0].nbytes());
  EXPECT_EQ(std::memcmp(out[0].raw(), ref_[0].raw(), out[0].nbytes()), 0);
}

TEST_F(PlanFileTest, FromBytesWorks) {
  std::string b = Bytes();
  auto s = Session::FromBytes(b.data(), b.size(), SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::vector<Tensor> out;
  Status st = (*s)->Run({{"x", &x_}}, {}, &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::memcmp(out[0].raw(), ref_[0].raw(), out[0].nbytes()), 0);
}

TEST_F(PlanFileTest, TruncatedFileIsRejected) {
  std::string b = Bytes();
  std::string p = (dir_ / "trunc.tplan").string();
  Write(p, b.substr(0, b.size() / 2));
  auto s = Session::FromFile(p, SessionOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("truncated"), std::string::npos) << s.status().message();
  Write(p, b.substr(0, 20));
  s = Session::FromFile(p, SessionOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("truncated"), std::string::npos) << s.status().message();
}

TEST_F(PlanFileTest, CorruptedWeightsFailTheChecksum) {
  std::string b = Bytes();
  b[b.size() - 3] ^= 0x5a;
  std::string p = (dir_ / "corrupt.tplan").string();
  Write(p, b);
  auto s = Session::FromFile(p, SessionOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("checksum"), std::string::npos) << s.status().message();
}

TEST_F(PlanFileTest, OtherFormatVersionIsRejected) {
  std::string b = Bytes();
  b[8] = 99;  // version field
  std::string p = (dir_ / "ver.tplan").string();
  Write(p, b);
  auto s = Session::FromFile(p, SessionOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("format version 99"), std::string::npos) << s.status().message();
}

TEST_F(PlanFileTest, WrongShapeForAPlanIsAClearError) {
  auto s = Session::FromFile(path_, SessionOptions{});
  ASSERT_TRUE(s.ok());
  Tensor x = Tensor::FromVector<float>(DType::kF32, {3, 4}, std::vector<float>(12, 1.f));
  std::vector<Tensor> out;
  Status st = (*s)->Run({{"x", &x}}, {}, &out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("expected 2"), std::string::npos) << st.message();
}

TEST(PlanFile, MissingFileIsNotFound) {
  auto s = Session::FromFile("/nonexistent/dir/model.tplan", SessionOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace tessera
