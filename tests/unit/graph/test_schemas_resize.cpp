// Shape inference of the resampling and signal op schemas (graph/ops_resize.cpp,
// graph/ops_signal.cpp): output dims from constant scales/sizes/shape inputs,
// unknown dims otherwise, and errors naming the node.
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

class ResizeInferTest : public ::testing::Test {
 protected:
  Graph g;
  void SetUp() override { g.set_name("test"); g.set_opset("", 19); }
  Value* In(const std::string& type) {
    Value* v = g.AddValue("", TT(type));
    g.AddInput(v);
    return v;
  }
  Value* I64(std::vector<int64_t> v) {
    return g.AddConstant("", Tensor::FromVector<int64_t>(DType::kI64, {static_cast<int64_t>(v.size())}, v));
  }
  Value* F32(std::vector<float> v) {
    return g.AddConstant("", Tensor::FromVector<float>(DType::kF32, {static_cast<int64_t>(v.size())}, v));
  }
  Value* ScalarI64(int64_t v) { return g.AddConstant("", Tensor::ScalarI64(v)); }
  Node* Op(const std::string& op, std::vector<Value*> ins) { return g.AddNode(op, ins, 1, "n", ""); }
  std::string Run(Node* n) {
    Status st = InferNodeTypes(*n);
    if (!st.ok()) return "error: " + st.message();
    return n->output(0)->type().ToString();
  }
  std::string Expect(const std::string& type) { return TT(type).ToString(); }
};

#define EXPECT_INFER_ERROR(result, op, what)                                             \
  do {                                                                                   \
    std::string _r = (result);                                                           \
    EXPECT_EQ(_r.rfind("error: ", 0), 0u) << _r;                                          \
    EXPECT_NE(_r.find(std::string("node 'n' (") + (op) + ")"), std::string::npos) << _r; \
    EXPECT_NE(_r.find(what), std::string::npos) << _r;                                   \
  } while (0)

TEST_F(ResizeInferTest, ResizeFromScalesAndSizes) {
  EXPECT_EQ(Run(Op("Resize", {In("f32[1,3,4,5]"), nullptr, F32({1, 1, 2, 0.5f})})), Expect("f32[1,3,8,2]"));
  EXPECT_EQ(Run(Op("Resize", {In("u8[1,3,4,5]"), nullptr, nullptr, I64({1, 3, 7, 9})})), Expect("u8[1,3,7,9]"));
  EXPECT_EQ(Run(Op("Resize", {In("f32[1,3,4,5]"), nullptr, nullptr, In("i64[4]")})), Expect("f32[?,?,?,?]"));
}

TEST_F(ResizeInferTest, ResizeAxesAndKeepAspectRatio) {
  Node* n = Op("Resize", {In("f32[1,1,2,4]"), nullptr, nullptr, I64({1, 3})});
  n->set_attr("axes", Attribute::Ints({2, 3}));
  n->set_attr("keep_aspect_ratio_policy", Attribute::String("not_larger"));
  EXPECT_EQ(Run(n), Expect("f32[1,1,1,2]"));
  Node* s = Op("Resize", {In("f32[1,1,2,4]"), nullptr, nullptr, I64({1, 3})});
  s->set_attr("axes", Attribute::Ints({2, 3}));
  s->set_attr("keep_aspect_ratio_policy", Attribute::String("not_smaller"));
  EXPECT_EQ(Run(s), Expect("f32[1,1,2,3]"));
}

TEST_F(ResizeInferTest, ResizeErrors) {
  EXPECT_INFER_ERROR(Run(Op("Resize", {In("f32[1,4]"), nullptr, F32({1, 2}), I64({1, 8})})), "Resize",
                     "only one of scales and sizes");
  EXPECT_INFER_ERROR(Run(Op("Resize", {In("f32[1,4]"), nullptr, F32({1, 2, 3})})), "Resize", "scales has 3");
  Node* m = Op("Resize", {In("f32[1,4]"), nullptr, F32({1, 2})});
  m->set_attr("mode", Attribute::String("area"));
  EXPECT_INFER_ERROR(Run(m), "Resize", "mode 'area'");
  Node* a = Op("Resize", {In("f32[1,4]"), nullptr, F32({2})});
  a->set_attr("axes", Attribute::Ints({2}));
  EXPECT_INFER_ERROR(Run(a), "Resize", "out of range");
}

TEST_F(ResizeInferTest, UpsampleOpset9) {
  g.set_opset("", 9);
  EXPECT_EQ(Run(Op("Upsample", {In("f32[1,1,2,2]"), F32({1, 1, 2, 3})})), Expect("f32[1,1,4,6]"));
}

TEST_F(ResizeInferTest, GridSampleAndAffineGrid) {
  EXPECT_EQ(Run(Op("GridSample", {In("f32[2,3,4,5]"), In("f32[2,6,7,2]")})), Expect("f32[2,3,6,7]"));
  EXPECT_INFER_ERROR(Run(Op("GridSample", {In("f32[2,3,4,5]"), In("f32[2,6,7,3]")})), "GridSample", "last dim");
  EXPECT_EQ(Run(Op("AffineGrid", {In("f32[2,2,3]"), I64({2, 3, 5, 6})})), Expect("f32[2,5,6,2]"));
  EXPECT_EQ(Run(Op("AffineGrid", {In("f32[2,3,4]"), I64({2, 3, 4, 5, 6})})), Expect("f32[2,4,5,6,3]"));
  EXPECT_INFER_ERROR(Run(Op("AffineGrid", {In("f32[2,3,4]"), I64({2, 3, 5, 6})})), "AffineGrid", "theta");
}

TEST_F(ResizeInferTest, CenterCropPadCol2ImRoiAlign) {
  Node* c = Op("CenterCropPad", {In("f32[20,8,3]"), I64({10, 9})});
  c->set_attr("axes", Attribute::Ints({-3, -2}));
  EXPECT_EQ(Run(c), Expect("f32[10,9,3]"));
  EXPECT_INFER_ERROR(Run(Op("CenterCropPad", {In("f32[20,8,3]"), I64({10, 9})})), "CenterCropPad", "one per axis");
  EXPECT_EQ(Run(Op("Col2Im", {In("f32[1,10,12]"), I64({2, 3, 4}), I64({1, 2, 5})})), Expect("f32[1,1,2,3,4]"));
  EXPECT_INFER_ERROR(Run(Op("Col2Im", {In("f32[1,7,12]"), I64({3, 4}), I64({2, 2})})), "Col2Im", "multiple");
  Node* r = Op("RoiAlign", {In("f32[1,3,10,10]"), In("f32[5,4]"), In("i64[5]")});
  r->set_attr("output_height", Attribute::Int(2));
  r->set_attr("output_width", Attribute::Int(3));
  EXPECT_EQ(Run(r), Expect("f32[5,3,2,3]"));
  EXPECT_INFER_ERROR(Run(Op("RoiAlign", {In("f32[1,3,10,10]"), In("f32[5,5]"), In("i64[5]")})), "RoiAlign", "rois");
}

TEST_F(ResizeInferTest, SignalOps) {
  g.set_opset("", 20);
  EXPECT_EQ(Run(Op("HannWindow", {ScalarI64(10)})), Expect("f32[10]"));
  Node* w = Op("BlackmanWindow", {ScalarI64(4)});
  w->set_attr("output_datatype", Attribute::Int(11));
  EXPECT_EQ(Run(w), Expect("f64[4]"));
  EXPECT_EQ(Run(Op("MelWeightMatrix", {ScalarI64(8), ScalarI64(16), ScalarI64(8000), In("f32[]"), In("f32[]")})),
            Expect("f32[9,8]"));
  EXPECT_EQ(Run(Op("DFT", {In("f32[1,10,10,1]"), nullptr, ScalarI64(2)})), Expect("f32[1,10,10,2]"));
  Node* d = Op("DFT", {In("f32[3,16,1]"), ScalarI64(16), ScalarI64(1)});
  d->set_attr("onesided", Attribute::Int(1));
  EXPECT_EQ(Run(d), Expect("f32[3,9,2]"));
  EXPECT_INFER_ERROR(Run(Op("DFT", {In("f32[3,16,4]")})), "DFT", "last dim");
  EXPECT_EQ(Run(Op("STFT", {In("f32[1,128,1]"), ScalarI64(8), In("f32[16]")})), Expect("f32[1,15,9,2]"));
  EXPECT_INFER_ERROR(Run(Op("STFT", {In("f32[1,128,1]"), ScalarI64(0), In("f32[16]")})), "STFT", "frame_step");
}

TEST_F(ResizeInferTest, Dft17UsesAxisAttribute) {
  g.set_opset("", 17);
  Node* d = Op("DFT", {In("f32[2,5,7,1]")});
  d->set_attr("axis", Attribute::Int(2));
  d->set_attr("onesided", Attribute::Int(1));
  EXPECT_EQ(Run(d), Expect("f32[2,5,4,2]"));
}

}  // namespace
}  // namespace tessera
