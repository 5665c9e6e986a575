// Shape inference of the indexing op schemas (graph/ops_indexing.cpp):
// scatter/gather, one-hot, space-depth, data-dependent ops with constant
// inputs, Einsum equations, and their errors.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/op_schema.h"
#include "tests/unit/graph/type_text.h"

namespace tessera {
namespace {

TensorType TT(const std::string& text) { return testing::ParseTensorType(text); }

class IndexingInferTest : public ::testing::Test {
 protected:
  Graph g;
  void SetUp() override { g.set_name("test"); g.set_opset("", 18); }
  Value* In(const std::string& type) {
    Value* v = g.AddValue("", TT(type));
    g.AddInput(v);
    return v;
  }
  template <typename T>
  Value* Const(DType dt, std::vector<int64_t> dims, std::vector<T> v) {
    return g.AddConstant("", Tensor::FromVector<T>(dt, std::move(dims), v));
  }
  Node* Op(const std::string& op, std::vector<Value*> ins, size_t nout = 1) { return g.AddNode(op, ins, nout, "n", ""); }
  std::string Run(Node* n) {
    Status st = InferNodeTypes(*n);
    if (!st.ok()) return "error: " + st.message();
    std::string r;
    for (size_t i = 0; i < n->num_outputs(); ++i) r += (i ? " " : "") + n->output(i)->type().ToString();
    return r;
  }
  std::string Expect(const std::string& type) {  // canonical printing of a type
    return TT(type).ToString();
  }
};

#define EXPECT_INFER_ERROR(result, op, what)                                             \
  do {                                                                                   \
    std::string _r = (result);                                                           \
    EXPECT_EQ(_r.rfind("error: ", 0), 0u) << _r;                                          \
    EXPECT_NE(_r.find(std::string("node 'n' (") + (op) + ")"), std::string::npos) << _r; \
    EXPECT_NE(_r.find(what), std::string::npos) << _r;                                   \
  } while (0)

TEST_F(IndexingInferTest, ScatterOpsKeepDataType) {
  Node* n = Op("ScatterElements", {In("f32[2,3]"), In("i64[2,2]"), In("f32[2,2]")});
  EXPECT_EQ(Run(n), Expect("f32[2,3]"));
  Node* bad = Op("ScatterElements", {In("f32[2,3]"), In("f32[2,2]"), In("f32[2,2]")});
  EXPECT_INFER_ERROR(Run(bad), "ScatterElements", "indices");
  Node* nd = Op("ScatterND", {In("f32[4,4]"), In("i64[2,3]"), In("f32[2]")});
  EXPECT_INFER_ERROR(Run(nd), "ScatterND", "exceeds the data rank");
  Node* red = Op("ScatterND", {In("f32[4,4]"), In("i64[2,1]"), In("f32[2,4]")});
  red->set_attr("reduction", Attribute::String("avg"));
  EXPECT_INFER_ERROR(Run(red), "ScatterND", "reduction");
}

TEST_F(IndexingInferTest, GatherNDWithBatchDims) {
  EXPECT_EQ(Run(Op("GatherND", {In("f32[2,2,2]"), In("i64[2,1,2]")})), Expect("f32[2,1,2]"));
  Node* b = Op("GatherND", {In("i32[2,2,2]"), In("i64[2,1]")});
  b->set_attr("batch_dims", Attribute::Int(1));
  EXPECT_EQ(Run(b), Expect("i32[2,2]"));
  EXPECT_INFER_ERROR(Run(Op("GatherND", {In("f32[2,2]"), In("i64[1,3]")})), "GatherND", "exceeds the data rank");
}

TEST_F(IndexingInferTest, OneHotDepthFromConstant) {
  Node* n = Op("OneHot", {In("i64[3]"), Const<float>(DType::kF32, {}, {10.f}), In("f32[2]")});
  n->set_attr("axis", Attribute::Int(0));
  EXPECT_EQ(Run(n), Expect("f32[10,3]"));
  EXPECT_EQ(Run(Op("OneHot", {In("i64[2,2]"), In("i64[]"), In("i32[2]")})), Expect("i32[2,2,?]"));
  Node* bad = Op("OneHot", {In("i64[3]"), In("i64[]"), In("f32[2]")});
  bad->set_attr("axis", Attribute::Int(3));
  EXPECT_INFER_ERROR(Run(bad), "OneHot", "axis");
}

TEST_F(IndexingInferTest, SpaceDepth) {
  Node* d = Op("DepthToSpace", {In("f32[1,8,2,3]")});
  d->set_attr("blocksize", Attribute::Int(2));
  EXPECT_EQ(Run(d), Expect("f32[1,2,4,6]"));
  Node* s = Op("SpaceToDepth", {In("f32[1,1,4,6]")});
  s->set_attr("blocksize", Attribute::Int(2));
  EXPECT_EQ(Run(s), Expect("f32[1,4,2,3]"));
  Node* bad = Op("SpaceToDepth", {In("f32[1,1,3,6]")});
  bad->set_attr("blocksize", Attribute::Int(2));
  EXPECT_INFER_ERROR(Run(bad), "SpaceToDepth", "divisible");
  EXPECT_INFER_ERROR(Run(Op("DepthToSpace", {In("f32[1,8,2,3]")})), "DepthToSpace", "blocksize");
}

TEST_F(IndexingInferTest, DataDependentShapesFromConstants) {
  Value* cond = g.AddConstant("", Tensor::FromVector<uint8_t>(DType::kBool, {3}, {1, 0, 1}));
  Node* c = Op("Compress", {In("f32[3,2]"), cond});
  c->set_attr("axis", Attribute::Int(0));
  EXPECT_EQ(Run(c), Expect("f32[2,2]"));
  EXPECT_EQ(Run(Op("Compress", {In("f32[3,2]"), In("bool[?]")})), Expect("f32[?]"));
  Node* nz = Op("NonZero", {Const<float>(DType::kF32, {2, 2}, {1, 0, 2, 3})});
  EXPECT_EQ(Run(nz), Expect("i64[2,3]"));
  Node* u = Op("Unique", {Const<float>(DType::kF32, {6}, {2, 1, 1, 3, 4, 3})}, 4);
  EXPECT_EQ(Run(u), Expect("f32[4]") + " " + Expect("i64[4]") + " " + Expect("i64[6]") + " " + Expect("i64[4]"));
  Node* nms = Op("NonMaxSuppression", {In("f32[1,6,4]"), In("f32[1,1,6]")});
  EXPECT_EQ(Run(nms), Expect("i64[0,3]"));
  Node* bad = Op("Compress", {In("f32[3,2]"), In("f32[3]")});
  EXPECT_INFER_ERROR(Run(bad), "Compress", "bool");
}

TEST_F(IndexingInferTest, EinsumEquations) {
  Node* mm = Op("Einsum", {In("f64[5,2,3]"), In("f64[5,3,4]")});
  mm->set_attr("equation", Attribute::String("bij, bjk -> bik"));
  EXPECT_EQ(Run(mm), Expect("f64[5,2,4]"));
  Node* diag = Op("Einsum", {In("f64[3,5,5]")});
  diag->set_attr("equation", Attribute::String("...ii ->...i"));
  EXPECT_EQ(Run(diag), Expect("f64[3,5]"));
  Node* implicit = Op("Einsum", {In("f32[3,4]"), In("f32[4]")});
  implicit->set_attr("equation", Attribute::String("ij,j"));
  EXPECT_EQ(Run(implicit), Expect("f32[3]"));
  Node* bad = Op("Einsum", {In("f32[3,4]")});
  bad->set_attr("equation", Attribute::String("ijk->i"));
  EXPECT_INFER_ERROR(Run(bad), "Einsum", "term");
}

TEST_F(IndexingInferTest, MiscOps) {
  Node* e = Op("EyeLike", {In("i32[3,4]")});
  e->set_attr("dtype", Attribute::Int(11));
  EXPECT_EQ(Run(e), Expect("f64[3,4]"));
  EXPECT_EQ(Run(Op("Det", {In("f32[3,2,2]")})), Expect("f32[3]"));
  EXPECT_INFER_ERROR(Run(Op("Det", {In("f32[2,3]")})), "Det", "square");
  EXPECT_EQ(Run(Op("ReverseSequence", {In("f32[4,4]"), In("i64[4]")})), Expect("f32[4,4]"));
  EXPECT_EQ(Run(Op("TensorScatter", {In("f32[2,4,5]"), In("f32[2,1,5]"), In("i64[2]")})), Expect("f32[2,4,5]"));
}

}  // namespace
}  // namespace tessera
