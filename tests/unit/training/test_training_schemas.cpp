// Type/shape inference of the tessera-domain training ops (graph/ops_training.cpp).
#include <gtest/gtest.h>

#include "graph/graph.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

struct G {
  Graph g;
  G() {
    g.set_opset("", 17);
    g.set_opset("tessera", 1);
  }
  Value* V(const std::string& n, DType dt, std::vector<int64_t> dims) {
    return g.AddValue(n, TensorType{dt, Shape::FromInts(dims)});
  }
  Status Infer(const std::string& op, std::vector<Value*> in, size_t nout, std::map<std::string, Attribute> attrs = {},
               Node** out = nullptr) {
    Node* n = g.AddNode(op, in, nout, g.UniqueName(op), "tessera");
    for (auto& [k, a] : attrs) n->set_attr(k, a);
    if (out) *out = n;
    return InferNodeTypes(*n);
  }
};

TEST(TrainingSchemas, LossOutputs) {
  G t;
  Value* x = t.V("x", DType::kF32, {4, 3});
  Value* l = t.V("l", DType::kI64, {4});
  Node* n;
  ASSERT_TRUE(t.Infer("SoftmaxCrossEntropy", {x, l}, 1, {}, &n).ok());
  EXPECT_EQ(n->output(0)->type().ToString(), "f32[]");
  ASSERT_TRUE(t.Infer("SoftmaxCrossEntropy", {x, l}, 1, {{"reduction", Attribute::String("none")}}, &n).ok());
  EXPECT_EQ(n->output(0)->type().ToString(), "f32[4]");
  ASSERT_TRUE(t.Infer("MSE", {x, x}, 1, {{"reduction", Attribute::String("none")}}, &n).ok());
  EXPECT_EQ(n->output(0)->type().ToString(), "f32[4,3]");
}

TEST(TrainingSchemas, LossErrorsNameTheNode) {
  G t;
  Value* x = t.V("x", DType::kF32, {4, 3});
  Value* lf = t.V("lf", DType::kF32, {4});
  Value* l5 = t.V("l5", DType::kI64, {5});
  Status s = t.Infer("SoftmaxCrossEntropy", {x, lf}, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("SoftmaxCrossEntropy"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("labels"), std::string::npos) << s.message();
  EXPECT_FALSE(t.Infer("SoftmaxCrossEntropy", {x, l5}, 1).ok());
  Value* l = t.V("l", DType::kI64, {4});
  EXPECT_FALSE(t.Infer("SoftmaxCrossEntropy", {x, l}, 1, {{"label_smoothing", Attribute::Float(1.5f)}}).ok());
  EXPECT_FALSE(t.Infer("MSE", {x, t.V("y", DType::kF32, {3, 4})}, 1).ok());
  EXPECT_FALSE(t.Infer("MSE", {x, x}, 1, {{"reduction", Attribute::String("max")}}).ok());
}

TEST(TrainingSchemas, OptimizerArityAndAttributes) {
  G t;
  Value* p = t.V("p", DType::kF32, {3});
  Value* lr = t.V("lr", DType::kF32, {});
  Value* step = t.V("step", DType::kI64, {});
  Node* n;
  ASSERT_TRUE(t.Infer("SGDUpdate", {p, p, lr}, 1, {}, &n).ok());
  EXPECT_EQ(n->output(0)->type(), p->type());
  EXPECT_FALSE(t.Infer("SGDUpdate", {p, p, lr}, 1, {{"momentum", Attribute::Float(0.9f)}}).ok());
  EXPECT_FALSE(t.Infer("SGDUpdate", {p, p, lr, p}, 2, {{"nesterov", Attribute::Int(1)}}).ok());
  EXPECT_FALSE(t.Infer("SGDUpdate", {p, p, t.V("lr2", DType::kF32, {2})}, 1).ok());
  ASSERT_TRUE(t.Infer("AdamWUpdate", {p, p, p, p, lr, step}, 3, {}, &n).ok());
  EXPECT_EQ(n->output(2)->type(), p->type());
  EXPECT_FALSE(t.Infer("AdamWUpdate", {p, p, p, p, lr, step}, 3, {{"beta1", Attribute::Float(1.f)}}).ok());
  EXPECT_FALSE(t.Infer("AdamWUpdate", {p, p, t.V("m", DType::kF64, {3}), p, lr, step}, 3).ok());
}

TEST(TrainingSchemas, GlobalNormClipOutputs) {
  G t;
  Value* a = t.V("a", DType::kF32, {3});
  Value* b = t.V("b", DType::kF32, {2, 2});
  Node* n;
  ASSERT_TRUE(t.Infer("GlobalNormClip", {a, b}, 3, {{"max_norm", Attribute::Float(1.f)}}, &n).ok());
  EXPECT_EQ(n->output(1)->type(), b->type());
  EXPECT_EQ(n->output(2)->type().ToString(), "f32[]");
  EXPECT_FALSE(t.Infer("GlobalNormClip", {a, b}, 2, {{"max_norm", Attribute::Float(1.f)}}).ok());
  EXPECT_FALSE(t.Infer("GlobalNormClip", {a, b}, 3).ok());
  EXPECT_FALSE(t.Infer("GlobalNormClip", {a, b}, 3, {{"max_norm", Attribute::Float(-1.f)}}).ok());
}

TEST(TrainingSchemas, GradOpsTakeTheForwardInputsType) {
  G t;
  Value* dy = t.V("dy", DType::kF64, {2, 3, 4, 4});
  Value* x = t.V("x", DType::kF64, {2, 5, 6, 6});
  Value* w = t.V("w", DType::kF64, {3, 5, 3, 3});
  Node* n;
  ASSERT_TRUE(t.Infer("ConvGradInput", {dy, w}, 1, {{"input_shape", Attribute::Ints({2, 5, 6, 6})}}, &n).ok());
  EXPECT_EQ(n->output(0)->type(), x->type());
  ASSERT_TRUE(t.Infer("ConvGradWeight", {dy, x}, 1, {{"weight_shape", Attribute::Ints({3, 5, 3, 3})}}, &n).ok());
  EXPECT_EQ(n->output(0)->type(), w->type());
  EXPECT_FALSE(t.Infer("ConvGradWeight", {dy, x}, 1).ok());
  Value* s = t.V("s", DType::kF64, {4});
  Value* y = t.V("y", DType::kF64, {2, 3, 4});
  ASSERT_TRUE(t.Infer("LayerNormGrad", {y, y, s}, 3, {}, &n).ok());
  EXPECT_EQ(n->output(1)->type(), s->type());
  Value* iy = t.V("iy", DType::kI32, {2, 3, 4});
  EXPECT_FALSE(t.Infer("SoftmaxGrad", {iy, iy}, 1).ok());
}

}  // namespace
}  // namespace tessera
