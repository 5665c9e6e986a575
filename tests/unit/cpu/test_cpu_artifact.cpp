// The CPU plugin's artifact format (backends/cpu/cpu_artifact.h).
#include <gtest/gtest.h>

#include <vector>

#include "backends/cpu/cpu_artifact.h"

namespace tessera::cpu {
namespace {

TEST(CpuArtifact, EncodeDecodeRoundTrip) {
  std::vector<ArtifactEntry> in = {{"conv1", 0x1234, std::string("\x01\x02\x00\x03", 4)}, {"relu", 77, ""}};
  std::string bytes = EncodeArtifact(in);
  std::vector<ArtifactEntry> out;
  Err e = DecodeArtifact(bytes.data(), bytes.size(), &out);
  ASSERT_TRUE(e.ok()) << e.message;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].node, "conv1");
  EXPECT_EQ(out[0].signature, 0x1234u);
  EXPECT_EQ(out[0].prepared, in[0].prepared);
  EXPECT_EQ(out[1].node, "relu");
  EXPECT_TRUE(out[1].prepared.empty());
}

TEST(CpuArtifact, CorruptOrTruncatedIsInvalidArgument) {
  std::string bytes = EncodeArtifact({{"n", 1, "payload"}});
  std::vector<ArtifactEntry> out;
  std::string bad = bytes;
  bad[14] ^= 0x40;
  Err e = DecodeArtifact(bad.data(), bad.size(), &out);
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("corrupt"), std::string::npos) << e.message;
  e = DecodeArtifact(bytes.data(), 10, &out);
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("truncated"), std::string::npos) << e.message;
}

TEST(CpuArtifact, OtherFormatDoesNotFit) {
  std::string other = "NOTCPUA1xxxxxxxxxxxxxxxx";
  std::vector<ArtifactEntry> out;
  Err e = DecodeArtifact(other.data(), other.size(), &out);
  EXPECT_EQ(e.code, TSR_ERR_FAILED_PRECONDITION);
}

// A one-node view: Relu over a value of `dims`.
struct ReluView {
  explicit ReluView(std::vector<int64_t> d) : dims(std::move(d)) {
    values[0] = {"x", TSR_DTYPE_F32, static_cast<int32_t>(dims.size()), dims.data(), nullptr, 0, TSR_VALUE_GRAPH_INPUT};
    values[1] = {"y", TSR_DTYPE_F32, static_cast<int32_t>(dims.size()), dims.data(), nullptr, 0,
                 TSR_VALUE_GRAPH_OUTPUT};
    node = {"relu", "", "Relu", 17, 1, &in, 1, &out, 0, nullptr};
    view = {sizeof(tsr_graph_view), 2, values, 1, &node, 1, &in, 1, &out};
  }
  std::vector<int64_t> dims;
  int32_t in = 0, out = 1;
  tsr_value_view values[2];
  tsr_node_view node;
  tsr_graph_view view;
};

TEST(CpuArtifact, SignatureFollowsTypesAndMatchChecksEveryNode) {
  ReluView a({2, 3}), b({3, 2});
  EXPECT_NE(NodeSignature(a.node, a.view), NodeSignature(b.node, b.view));
  EXPECT_EQ(NodeSignature(a.node, a.view), NodeSignature(a.node, a.view));
  std::vector<ArtifactEntry> entries = {{"relu", NodeSignature(a.node, a.view), ""}};
  EXPECT_TRUE(MatchArtifact(entries, a.view).ok());
  Err e = MatchArtifact(entries, b.view);
  EXPECT_EQ(e.code, TSR_ERR_FAILED_PRECONDITION);
  EXPECT_NE(e.message.find("differs"), std::string::npos) << e.message;
  entries.push_back(entries[0]);
  EXPECT_EQ(MatchArtifact(entries, a.view).code, TSR_ERR_FAILED_PRECONDITION);
}

TEST(CpuArtifact, PreparedBlobIsScopedToTheThread) {
  EXPECT_EQ(PreparedBlob(), nullptr);
  std::string blob = "abc";
  {
    ScopedPreparedBlob s(&blob);
    EXPECT_EQ(PreparedBlob(), &blob);
  }
  EXPECT_EQ(PreparedBlob(), nullptr);
}

}  // namespace
}  // namespace tessera::cpu
