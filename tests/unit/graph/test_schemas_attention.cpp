// Shape inference of ONNX Attention (opset 23/24) and RotaryEmbedding.
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

class AttentionSchemaTest : public ::testing::Test {
 protected:
  Graph g;
  void SetUp() override {
    g.set_name("test");
    g.set_opset("", 23);
  }
  // "" = an omitted optional input.
  Node* Op(const std::string& op, const std::vector<std::string>& in_types, size_t nout) {
    std::vector<Value*> ins;
    for (const std::string& t : in_types) {
      if (t.empty()) {
        ins.push_back(nullptr);
        continue;
      }
      Value* v = g.AddValue("", TT(t));
      g.AddInput(v);
      ins.push_back(v);
    }
    return g.AddNode(op, ins, nout, "n", "");
  }
  std::string Run(Node* n) {
    Status st = InferNodeTypes(*n);
    if (!st.ok()) return "error: " + st.message();
    std::string r;
    for (size_t i = 0; i < n->num_outputs(); ++i) r += (i ? " " : "") + n->output(i)->type().ToString();
    return r;
  }
};

#define EXPECT_ERROR_HAS(result, what)                                          \
  do {                                                                          \
    std::string _r = (result);                                                  \
    EXPECT_EQ(_r.rfind("error: ", 0), 0u) << _r;                                 \
    EXPECT_NE(_r.find("node 'n' ("), std::string::npos) << _r;                  \
    EXPECT_NE(_r.find(what), std::string::npos) << _r;                          \
  } while (0)

TEST_F(AttentionSchemaTest, FourDimWithPastAndQkOutput) {
  Node* n = Op("Attention", {"f32[2,9,4,8]", "f32[2,3,6,8]", "f32[2,3,6,10]", "f32[4,18]", "f32[2,3,12,8]",
                             "f32[2,3,12,10]"}, 4);
  EXPECT_EQ(Run(n), "f32[2,9,4,10] f32[2,3,18,8] f32[2,3,18,10] f32[2,9,4,18]");
}

TEST_F(AttentionSchemaTest, ThreeDimUsesHeadAttributes) {
  Node* n = Op("Attention", {"f16[2,4,72]", "f16[2,6,24]", "f16[2,6,30]"}, 3);
  n->set_attr("q_num_heads", Attribute::Int(9));
  n->set_attr("kv_num_heads", Attribute::Int(3));
  EXPECT_EQ(Run(n), "f16[2,4,90] f16[2,3,6,8] f16[2,3,6,10]");
}

TEST_F(AttentionSchemaTest, SymbolicDimsPropagate) {
  Node* n = Op("Attention", {"f32[batch,3,sq,8]", "f32[batch,3,skv,8]", "f32[batch,3,skv,8]"}, 4);
  EXPECT_EQ(Run(n), "f32[batch,3,sq,8] f32[batch,3,skv,8] f32[batch,3,skv,8] f32[batch,3,sq,skv]");
}

TEST_F(AttentionSchemaTest, NonpadKvSeqlenNeedsOpset24) {
  Node* n = Op("Attention", {"f32[2,3,4,8]", "f32[2,3,6,8]", "f32[2,3,6,8]", "f32[2,3,4,4]", "", "", "i64[2]"}, 1);
  EXPECT_ERROR_HAS(Run(n), "opset 24");
  g.set_opset("", 24);
  EXPECT_EQ(Run(n), "f32[2,3,4,8]");
}

TEST_F(AttentionSchemaTest, BadInputsAreErrors) {
  EXPECT_ERROR_HAS(Run(Op("Attention", {"f32[2,4,24]", "f32[2,6,24]", "f32[2,6,24]"}, 1)), "q_num_heads");
  EXPECT_ERROR_HAS(Run(Op("Attention", {"i32[2,3,4,8]", "i32[2,3,6,8]", "i32[2,3,6,8]"}, 1)), "Q has dtype i32");
  EXPECT_ERROR_HAS(Run(Op("Attention", {"f32[2,3,4,8]", "f32[2,2,6,8]", "f32[2,2,6,8]"}, 1)), "not a multiple");
  EXPECT_ERROR_HAS(Run(Op("Attention", {"f32[2,3,4,8]", "f32[2,3,6,4]", "f32[2,3,6,8]"}, 1)), "head sizes differ");
  EXPECT_ERROR_HAS(Run(Op("Attention", {"f32[2,3,4,8]", "f32[2,3,6,8]", "f32[2,3,6,8]", "f32[5,6]"}, 1)),
                   "does not fit the query sequence length 4");
  EXPECT_ERROR_HAS(Run(Op("Attention", {"f32[2,3,4,8]", "f32[2,3,6,8]", "f32[2,3,6,8]", "f32[4,7]"}, 1)),
                   "does not fit the total sequence length 6");
  EXPECT_ERROR_HAS(Run(Op("Attention", {"f32[2,3,4,8]", "f32[2,3,6,8]", "f32[2,3,6,8]", "", "f32[2,3,1,8]"}, 1)),
                   "past_key and past_value must be given together");
  Node* m = Op("Attention", {"f32[2,3,4,8]", "f32[2,3,6,8]", "f32[2,3,6,8]"}, 1);
  m->set_attr("qk_matmul_output_mode", Attribute::Int(7));
  EXPECT_ERROR_HAS(Run(m), "qk_matmul_output_mode");
}

TEST_F(AttentionSchemaTest, RotaryKeepsInputType) {
  Node* a = Op("RotaryEmbedding", {"f32[2,4,3,8]", "f32[50,4]", "f32[50,4]", "i64[2,3]"}, 1);
  EXPECT_EQ(Run(a), "f32[2,4,3,8]");
  Node* b = Op("RotaryEmbedding", {"f32[2,3,32]", "f32[2,3,2]", "f32[2,3,2]"}, 1);
  b->set_attr("num_heads", Attribute::Int(4));
  b->set_attr("rotary_embedding_dim", Attribute::Int(4));
  EXPECT_EQ(Run(b), "f32[2,3,32]");
}

TEST_F(AttentionSchemaTest, RotaryBadInputsAreErrors) {
  EXPECT_ERROR_HAS(Run(Op("RotaryEmbedding", {"f32[2,3,32]", "f32[50,4]", "f32[50,4]", "i64[2,3]"}, 1)),
                   "num_heads");
  EXPECT_ERROR_HAS(Run(Op("RotaryEmbedding", {"f32[2,4,3,8]", "f32[50,3]", "f32[50,3]", "i64[2,3]"}, 1)),
                   "rotary_dim / 2");
  EXPECT_ERROR_HAS(Run(Op("RotaryEmbedding", {"f32[2,4,3,8]", "f32[50,4]", "f32[50,4]"}, 1)), "without position_ids");
  EXPECT_ERROR_HAS(Run(Op("RotaryEmbedding", {"i32[2,4,3,8]", "i32[50,4]", "i32[50,4]"}, 1)), "dtype i32");
  Node* n = Op("RotaryEmbedding", {"f32[2,4,3,8]", "f32[50,4]", "f32[50,4]", "i64[2,3]"}, 1);
  n->set_attr("rotary_embedding_dim", Attribute::Int(10));
  EXPECT_ERROR_HAS(Run(n), "exceeds the head size 8");
}

}  // namespace
}  // namespace tessera
