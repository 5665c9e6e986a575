// Shape inference of ConvTranspose, LpPool/GlobalLpPool, MaxUnpool,
// DeformConv, MaxPool's Indices output and RNN/GRU/LSTM.
#include <gtest/gtest.h>

#include <cctype>
#include <sstream>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/op_schema.h"
#include "tests/unit/graph/type_text.h"

namespace tessera {
namespace {

TensorType TT(const std::string& text) { return testing::ParseTensorType(text); }

class NnSchemaTest : public ::testing::Test {
 protected:
  Graph g;
  void SetUp() override {
    g.set_name("test");
    g.set_opset("", 22);
  }
  Value* In(const std::string& type) {
    Value* v = g.AddValue("", TT(type));
    g.AddInput(v);
    return v;
  }
  Node* Op(const std::string& op, std::vector<Value*> ins, size_t nout = 1) {
    return g.AddNode(op, ins, nout, "n" + std::to_string(counter_++), "");
  }
  // Output types joined by " ", or "error: <message>".
  std::string Run(Node* n) {
    Status st = InferNodeTypes(*n);
    if (!st.ok()) return "error: " + st.message();
    std::string r;
    for (size_t i = 0; i < n->num_outputs(); ++i) r += (i ? " " : "") + n->output(i)->type().ToString();
    return r;
  }
  int counter_ = 0;
};

bool IsErrorWith(const std::string& r, const std::string& op, const std::string& what) {
  return r.rfind("error: ", 0) == 0 && r.find("(" + op + ")") != std::string::npos &&
         r.find(what) != std::string::npos;
}

TEST_F(NnSchemaTest, ConvTransposeShapes) {
  Value* x = In("f32[batch,1,3,3]");
  Value* w = In("f32[1,2,3,3]");
  EXPECT_EQ(Run(Op("ConvTranspose", {x, w})), "f32[batch,2,5,5]");
  Node* n = Op("ConvTranspose", {x, w});
  n->set_attr("strides", Attribute::Ints({3, 2}));
  n->set_attr("output_padding", Attribute::Ints({1, 1}));
  EXPECT_EQ(Run(n), "f32[batch,2,10,8]");
  n = Op("ConvTranspose", {x, w});
  n->set_attr("strides", Attribute::Ints({3, 2}));
  n->set_attr("pads", Attribute::Ints({1, 2, 1, 2}));
  EXPECT_EQ(Run(n), "f32[batch,2,7,3]");
  n = Op("ConvTranspose", {x, w});
  n->set_attr("strides", Attribute::Ints({2, 2}));
  n->set_attr("auto_pad", Attribute::String("SAME_UPPER"));
  EXPECT_EQ(Run(n), "f32[batch,2,6,6]");
  n = Op("ConvTranspose", {x, w});
  n->set_attr("output_shape", Attribute::Ints({10, 8}));
  EXPECT_EQ(Run(n), "f32[batch,2,10,8]");
  // groups: M = W.dim(1) * group; dilations
  n = Op("ConvTranspose", {In("f32[1,4,3,3]"), In("f32[4,3,2,2]")});
  n->set_attr("group", Attribute::Int(2));
  n->set_attr("dilations", Attribute::Ints({2, 2}));
  EXPECT_EQ(Run(n), "f32[1,6,5,5]");
}

TEST_F(NnSchemaTest, ConvTransposeErrors) {
  EXPECT_TRUE(IsErrorWith(Run(Op("ConvTranspose", {In("f32[1,2,3,3]"), In("f32[3,2,3,3]")})), "ConvTranspose",
                          "channels"));
  Node* n = Op("ConvTranspose", {In("f32[1,1,3,3]"), In("f32[1,2,3,3]")});
  n->set_attr("output_shape", Attribute::Ints({10}));
  EXPECT_TRUE(IsErrorWith(Run(n), "ConvTranspose", "output_shape has 1 values"));
  EXPECT_TRUE(IsErrorWith(Run(Op("ConvTranspose", {In("i32[1,1,3,3]"), In("i32[1,2,3,3]")})), "ConvTranspose",
                          "floating-point"));
}

TEST_F(NnSchemaTest, LpPoolAndGlobalLpPool) {
  Node* n = Op("LpPool", {In("f32[1,3,32,32]")});
  n->set_attr("kernel_shape", Attribute::Ints({5, 5}));
  n->set_attr("strides", Attribute::Ints({3, 3}));
  EXPECT_EQ(Run(n), "f32[1,3,10,10]");
  EXPECT_EQ(Run(Op("GlobalLpPool", {In("f32[2,3,7,5,4]")})), "f32[2,3,1,1,1]");
  EXPECT_TRUE(IsErrorWith(Run(Op("LpPool", {In("f32[1,3,8,8]")})), "LpPool", "kernel_shape is required"));
}

TEST_F(NnSchemaTest, MaxPoolIndicesAndUint8) {
  Node* n = Op("MaxPool", {In("u8[1,1,5,5]")}, 2);
  n->set_attr("kernel_shape", Attribute::Ints({2, 2}));
  n->set_attr("strides", Attribute::Ints({2, 2}));
  EXPECT_EQ(Run(n), "u8[1,1,2,2] i64[1,1,2,2]");
}

TEST_F(NnSchemaTest, MaxUnpool) {
  Node* n = Op("MaxUnpool", {In("f32[1,1,2,2]"), In("i64[1,1,2,2]")});
  n->set_attr("kernel_shape", Attribute::Ints({2, 2}));
  n->set_attr("strides", Attribute::Ints({2, 2}));
  EXPECT_EQ(Run(n), "f32[1,1,4,4]");
  Value* shape = g.AddConstant("", Tensor::FromVector<int64_t>(DType::kI64, {4}, {1, 1, 5, 5}));
  n = Op("MaxUnpool", {In("f32[1,1,2,2]"), In("i64[1,1,2,2]"), shape});
  n->set_attr("kernel_shape", Attribute::Ints({2, 2}));
  n->set_attr("strides", Attribute::Ints({2, 2}));
  EXPECT_EQ(Run(n), "f32[1,1,5,5]");
  n = Op("MaxUnpool", {In("f32[1,1,2,2]"), In("i64[1,1,2,2]"), In("i64[4]")});
  n->set_attr("kernel_shape", Attribute::Ints({2, 2}));
  EXPECT_EQ(Run(n), "f32[?,?,?,?]");
  n = Op("MaxUnpool", {In("f32[1,1,2,2]"), In("i32[1,1,2,2]")});
  n->set_attr("kernel_shape", Attribute::Ints({2, 2}));
  EXPECT_TRUE(IsErrorWith(Run(n), "MaxUnpool", "expected i64"));
}

TEST_F(NnSchemaTest, DeformConv) {
  Node* n = Op("DeformConv", {In("f32[1,1,3,3]"), In("f32[4,1,2,2]"), In("f32[1,8,4,4]")});
  n->set_attr("pads", Attribute::Ints({1, 1, 1, 1}));
  EXPECT_EQ(Run(n), "f32[1,4,4,4]");
  EXPECT_TRUE(IsErrorWith(Run(Op("DeformConv", {In("f32[1,1,3,3]"), In("f32[4,1,2,2]"), In("f64[1,8,2,2]")})),
                          "DeformConv", "offset"));
}

TEST_F(NnSchemaTest, RecurrentShapes) {
  // layout 0, bidirectional GRU: Y [seq, 2, batch, H], Y_h [2, batch, H]
  Node* n = Op("GRU", {In("f32[5,batch,3]"), In("f32[2,12,3]"), In("f32[2,12,4]")}, 2);
  n->set_attr("hidden_size", Attribute::Int(4));
  n->set_attr("direction", Attribute::String("bidirectional"));
  EXPECT_EQ(Run(n), "f32[5,2,batch,4] f32[2,batch,4]");
  // layout 1 LSTM with three outputs; hidden size taken from R
  n = Op("LSTM", {In("f32[3,1,2]"), In("f32[1,28,2]"), In("f32[1,28,7]")}, 3);
  n->set_attr("layout", Attribute::Int(1));
  EXPECT_EQ(Run(n), "f32[3,1,1,7] f32[3,1,7] f32[3,1,7]");
  n = Op("RNN", {In("f32[2,3,3]"), In("f32[1,5,3]"), In("f32[1,5,5]"), In("f32[1,10]")}, 2);
  n->set_attr("hidden_size", Attribute::Int(5));
  EXPECT_EQ(Run(n), "f32[2,1,3,5] f32[1,3,5]");
}

TEST_F(NnSchemaTest, RecurrentErrors) {
  Node* n = Op("LSTM", {In("f32[2,1,3]"), In("f32[1,12,3]"), In("f32[1,16,4]")}, 2);
  n->set_attr("hidden_size", Attribute::Int(4));
  EXPECT_TRUE(IsErrorWith(Run(n), "LSTM", "expected 16"));
  n = Op("RNN", {In("f32[2,1,3]"), In("f32[1,4,3]"), In("f32[1,4,4]")}, 2);
  n->set_attr("direction", Attribute::String("sideways"));
  EXPECT_TRUE(IsErrorWith(Run(n), "RNN", "unknown direction"));
  n = Op("GRU", {In("f32[2,1,3]"), In("f32[1,12,3]"), In("f32[1,12,4]"), nullptr, In("i64[1]")}, 2);
  EXPECT_TRUE(IsErrorWith(Run(n), "GRU", "sequence_lens has dtype i64"));
  n = Op("RNN", {In("f32[2,1]"), In("f32[1,4,3]"), In("f32[1,4,4]")}, 2);
  EXPECT_TRUE(IsErrorWith(Run(n), "RNN", "X must have rank 3"));
}

}  // namespace
}  // namespace tessera
