// Cached compiled artifacts in .tplan files (runtime/plan_file.h PlanArtifact,
// runtime/plan_artifacts.h, the CPU plugin's executable_serialize /
// compile_cached).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>

#include "runtime/backend_registry.h"
#include "runtime/plan_file.h"
#include "runtime/session.h"

namespace tessera {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

class PlanArtifactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const LoadedBackend* b = BackendRegistry::Get().Find("cpu");
    if (!b || !b->usable()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
    dir_ = fs::temp_directory_path() / ("tsr_artifacts_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "cnn.tplan").string();
    auto s = Session::FromFile(std::string(TESSERA_MODELS_DIR) + "/cnn/model.onnx", SessionOptions{});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (const IoInfo& in : (*s)->inputs()) {
      Tensor t = Tensor::Zeros(in.dtype, in.dims).value();
      for (int64_t i = 0; i < t.num_elements(); ++i) static_cast<float*>(t.mutable_raw())[i] = u(rng);
      inputs_.push_back({in.name, std::move(t)});
    }
    ASSERT_TRUE((*s)->Run(Feeds(), {}, &ref_).ok());
    Status st = (*s)->SavePlan(path_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    session_ = std::move(*s);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::vector<std::pair<std::string, const Tensor*>> Feeds() {
    std::vector<std::pair<std::string, const Tensor*>> f;
    for (auto& [n, t] : inputs_) f.push_back({n, &t});
    return f;
  }
  std::string Bytes(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  void Write(const std::string& p, const std::string& b) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << b;
  }
  json Artifacts(Session& s) {
    auto d = s.DescribeJson();
    EXPECT_TRUE(d.ok());
    return json::parse(*d).value("artifacts", json());
  }
  void ExpectSameOutputs(Session& s) {
    std::vector<Tensor> out;
    Status st = s.Run(Feeds(), {}, &out);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(out.size(), ref_.size());
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out[i].nbytes(), ref_[i].nbytes());
      EXPECT_EQ(std::memcmp(out[i].raw(), ref_[i].raw(), ref_[i].nbytes()), 0) << "output " << i;
    }
  }
  // Re-saves the plan at path_ with its artifacts edited by `edit`.
  std::string Resave(const std::function<void(std::vector<PlanArtifact>&)>& edit, const std::string& name) {
    auto lp = LoadPlanFile(path_);
    EXPECT_TRUE(lp.ok()) << lp.status().ToString();
    edit(lp->artifacts);
    std::string p = (dir_ / name).string();
    Status st = SavePlanFile(lp->plan, lp->options, p, &lp->artifacts);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return p;
  }

  fs::path dir_;
  std::string path_;
  std::vector<std::pair<std::string, Tensor>> inputs_;
  std::vector<Tensor> ref_;
  std::unique_ptr<Session> session_;
};

TEST_F(PlanArtifactsTest, FileHoldsOneArtifactPerCpuSegment) {
  auto lp = LoadPlanFile(path_);
  ASSERT_TRUE(lp.ok()) << lp.status().ToString();
  ASSERT_EQ(lp->artifacts.size(), lp->plan.segments.size());
  const LoadedBackend* b = BackendRegistry::Get().Find("cpu");
  for (size_t i = 0; i < lp->artifacts.size(); ++i) {
    const PlanArtifact& a = lp->artifacts[i];
    EXPECT_EQ(a.segment, static_cast<int32_t>(i));
    EXPECT_EQ(a.backend, "cpu");
    EXPECT_EQ(a.backend_version, b->api->version);
    EXPECT_EQ(a.device_name, b->devices[0].name);
    EXPECT_EQ(a.segment_hash, SegmentHash(lp->plan, a.segment));
    EXPECT_FALSE(a.blob.empty());
  }
}

TEST_F(PlanArtifactsTest, RoundTripUsesArtifactsAndGivesBitIdenticalOutputs) {
  auto s = Session::FromFile(path_, SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  json a = Artifacts(**s);
  ASSERT_TRUE(a.is_object());
  EXPECT_GE(a["present"].get<int64_t>(), 1);
  EXPECT_EQ(a["used"], a["present"]);
  EXPECT_EQ(a["ignored"], 0);
  ExpectSameOutputs(**s);
}

TEST_F(PlanArtifactsTest, WithoutArtifactsStillLoads) {
  std::string p = (dir_ / "plain.tplan").string();
  ASSERT_TRUE(session_->SavePlan(p, false).ok());
  auto lp = LoadPlanFile(p);
  ASSERT_TRUE(lp.ok());
  EXPECT_TRUE(lp->artifacts.empty());
  auto s = Session::FromFile(p, SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  json a = Artifacts(**s);
  EXPECT_EQ(a["present"], 0);
  EXPECT_EQ(a["used"], 0);
  ExpectSameOutputs(**s);
}

TEST_F(PlanArtifactsTest, OtherBackendVersionIsIgnoredAndReported) {
  std::string p = Resave([](std::vector<PlanArtifact>& arts) { arts[0].backend_version = "0.0.0-other"; }, "v.tplan");
  auto s = Session::FromFile(p, SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  json a = Artifacts(**s);
  EXPECT_EQ(a["ignored"], 1);
  EXPECT_EQ(a["used"].get<int64_t>(), a["present"].get<int64_t>() - 1);
  ASSERT_FALSE(a["notes"].empty());
  std::string note = a["notes"][0];
  EXPECT_NE(note.find("backend version '0.0.0-other'"), std::string::npos) << note;
  EXPECT_NE(note.find("compiled instead"), std::string::npos) << note;
  ExpectSameOutputs(**s);
}

TEST_F(PlanArtifactsTest, OtherDeviceOrSegmentIsIgnored) {
  std::string p = Resave([](std::vector<PlanArtifact>& arts) { arts[0].device_name = "Some Other CPU"; }, "d.tplan");
  auto s = Session::FromFile(p, SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::string note = Artifacts(**s)["notes"][0];
  EXPECT_NE(note.find("made for device 'Some Other CPU'"), std::string::npos) << note;

  p = Resave([](std::vector<PlanArtifact>& arts) { arts[0].segment_hash ^= 1; }, "h.tplan");
  s = Session::FromFile(p, SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  note = Artifacts(**s)["notes"][0];
  EXPECT_NE(note.find("nodes differ"), std::string::npos) << note;
  ExpectSameOutputs(**s);
}

TEST_F(PlanArtifactsTest, CorruptedArtifactBytesInTheFileAreAClearError) {
  std::string b = Bytes(path_);
  uint64_t art[3];
  std::memcpy(art, b.data() + 16 + 72, sizeof(art));  // header: artifacts (offset, size, checksum)
  ASSERT_GT(art[1], 0u);
  ASSERT_LE(art[0] + art[1], b.size());
  b[art[0] + art[1] - 3] ^= 0x5a;  // inside the last blob
  std::string p = (dir_ / "corrupt.tplan").string();
  Write(p, b);
  auto lp = LoadPlanFile(p);
  ASSERT_FALSE(lp.ok());
  EXPECT_NE(lp.status().ToString().find("corrupt"), std::string::npos) << lp.status().ToString();
  EXPECT_NE(lp.status().ToString().find("artifacts"), std::string::npos) << lp.status().ToString();
  auto s = Session::FromFile(p, SessionOptions{});
  EXPECT_FALSE(s.ok());
}

// A blob whose file checksums are right but whose content the backend finds
// corrupt (its own checksum) fails the load instead of being trusted.
TEST_F(PlanArtifactsTest, BlobTheBackendFindsCorruptFailsTheLoad) {
  std::string p = Resave([](std::vector<PlanArtifact>& arts) { arts[0].blob[arts[0].blob.size() / 2] ^= 0x11; },
                         "badblob.tplan");
  auto s = Session::FromFile(p, SessionOptions{});
  ASSERT_FALSE(s.ok());
  std::string msg = s.status().ToString();
  EXPECT_NE(msg.find("artifact"), std::string::npos) << msg;
  EXPECT_NE(msg.find("corrupt"), std::string::npos) << msg;
}

TEST_F(PlanArtifactsTest, TruncatedFileIsAClearError) {
  std::string b = Bytes(path_);
  std::string p = (dir_ / "short.tplan").string();
  Write(p, b.substr(0, b.size() - 100));
  auto lp = LoadPlanFile(p);
  ASSERT_FALSE(lp.ok());
  EXPECT_NE(lp.status().ToString().find("truncated"), std::string::npos) << lp.status().ToString();
  Write(p, b.substr(0, 100));
  lp = LoadPlanFile(p);
  ASSERT_FALSE(lp.ok());
  EXPECT_NE(lp.status().ToString().find("truncated"), std::string::npos) << lp.status().ToString();
}

TEST_F(PlanArtifactsTest, ArtifactForAMissingSegmentIsRejected) {
  std::string p = Resave([](std::vector<PlanArtifact>& arts) { arts[0].segment = 99; }, "seg.tplan");
  auto lp = LoadPlanFile(p);
  ASSERT_FALSE(lp.ok());
  EXPECT_NE(lp.status().ToString().find("segment 99"), std::string::npos) << lp.status().ToString();
}

}  // namespace
}  // namespace tessera
