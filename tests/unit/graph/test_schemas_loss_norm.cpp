// Shape inference of graph/ops_loss_norm.cpp: Hardmax, CumSum, TopK, the
// losses and the normalizations.
#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/op_schema.h"
#include "tests/unit/graph/type_text.h"

namespace tessera {
namespace {

TensorType T(const std::string& text) { return testing::ParseTensorType(text); }

class LossNormInfer : public ::testing::Test {
 protected:
  Graph g;
  void SetUp() override { g.set_opset("", 22); }
  Value* In(const std::string& type) {
    Value* v = g.AddValue("", T(type));
    g.AddInput(v);
    return v;
  }
  Value* I64(std::vector<int64_t> v) {
    return g.AddConstant("", Tensor::FromVector<int64_t>(DType::kI64, {static_cast<int64_t>(v.size())}, v));
  }
  std::string Run(Node* n) {
    Status st = InferNodeTypes(*n);
    if (!st.ok()) return "error: " + st.message();
    std::string r;
    for (size_t i = 0; i < n->num_outputs(); ++i) r += (i ? " " : "") + n->output(i)->type().ToString();
    return r;
  }
};

TEST_F(LossNormInfer, TopKShapesFromConstantK) {
  Node* n = g.AddNode("TopK", {In("f32[3,5]"), I64({2})}, 2, "n");
  EXPECT_EQ(Run(n), "f32[3,2] i64[3,2]");
  Node* a = g.AddNode("TopK", {In("u64[3,5]"), I64({3})}, 2, "n");
  a->set_attr("axis", Attribute::Int(0));
  EXPECT_EQ(Run(a), "u64[3,5] i64[3,5]");
  Node* u = g.AddNode("TopK", {In("f32[3,5]"), In("i64[1]")}, 2, "n");
  EXPECT_EQ(Run(u), "f32[3,?] i64[3,?]");
  std::string big = Run(g.AddNode("TopK", {In("f32[3,5]"), I64({6})}, 2, "n"));
  EXPECT_NE(big.find("node 'n' (TopK)"), std::string::npos) << big;
  EXPECT_NE(big.find("exceeds"), std::string::npos) << big;
}

TEST_F(LossNormInfer, LossShapesByReduction) {
  Node* none = g.AddNode("NegativeLogLikelihoodLoss", {In("f32[2,3,4]"), In("i64[2,4]")}, 1, "n");
  none->set_attr("reduction", Attribute::String("none"));
  EXPECT_EQ(Run(none), "f32[2,4]");
  Node* mean = g.AddNode("SoftmaxCrossEntropyLoss", {In("f32[2,3]"), In("i64[2]")}, 2, "n");
  EXPECT_EQ(Run(mean), "f32[] f32[2,3]");
  std::string bad = Run(g.AddNode("NegativeLogLikelihoodLoss", {In("f32[2,3,4]"), In("i64[2,5]")}, 1, "n"));
  EXPECT_NE(bad.find("node 'n' (NegativeLogLikelihoodLoss)"), std::string::npos) << bad;
  EXPECT_NE(bad.find("does not match"), std::string::npos) << bad;
  Node* r = g.AddNode("SoftmaxCrossEntropyLoss", {In("f32[2,3]"), In("i64[2]")}, 1, "n");
  r->set_attr("reduction", Attribute::String("avg"));
  EXPECT_NE(Run(r).find("reduction 'avg'"), std::string::npos);
}

TEST_F(LossNormInfer, NormalizationsKeepShapeAndCheckAttributes) {
  EXPECT_EQ(Run(g.AddNode("RMSNormalization", {In("f32[2,3]"), In("f32[3]")}, 1, "n")), "f32[2,3]");
  EXPECT_EQ(Run(g.AddNode("MeanVarianceNormalization", {In("f64[2,3,4,5]")}, 1, "n")), "f64[2,3,4,5]");
  EXPECT_EQ(Run(g.AddNode("InstanceNormalization", {In("f32[2,3,4]"), In("f32[3]"), In("f32[3]")}, 1, "n")),
            "f32[2,3,4]");
  Node* gn = g.AddNode("GroupNormalization", {In("f32[2,6,4]"), In("f32[6]"), In("f32[6]")}, 1, "n");
  gn->set_attr("num_groups", Attribute::Int(4));
  std::string e = Run(gn);
  EXPECT_NE(e.find("not divisible"), std::string::npos) << e;
  Node* lp = g.AddNode("LpNormalization", {In("f32[2,3]")}, 1, "n");
  lp->set_attr("p", Attribute::Int(3));
  EXPECT_NE(Run(lp).find("p 3"), std::string::npos);
  std::string lrn = Run(g.AddNode("LRN", {In("f32[1,3,4,4]")}, 1, "n"));
  EXPECT_NE(lrn.find("size"), std::string::npos) << lrn;
  Node* hm = g.AddNode("Hardmax", {In("f32[2,3]")}, 1, "n");
  hm->set_attr("axis", Attribute::Int(2));
  EXPECT_NE(Run(hm).find("out of range"), std::string::npos);
  EXPECT_EQ(Run(g.AddNode("CumSum", {In("i32[2,3]"), In("i32[]")}, 1, "n")), "i32[2,3]");
  std::string cs = Run(g.AddNode("CumSum", {In("i32[2,3]"), In("f32[]")}, 1, "n"));
  EXPECT_NE(cs.find("axis has dtype f32"), std::string::npos) << cs;
}

}  // namespace
}  // namespace tessera
