// Graph IR basics: values, nodes, attributes, TopoSort, Verify, Clone,
// Compact; dtype helpers and f16/bf16 conversions; Shape and checked sizes.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "graph/dtype.h"
#include "graph/graph.h"
#include "graph/shape.h"
#include "graph/tensor.h"

namespace tessera {
namespace {

TensorType F32(std::vector<int64_t> dims) { return TensorType{DType::kF32, Shape::FromInts(dims)}; }

// ---------------------------------------------------------------- values and nodes

TEST(GraphIrTest, ValuesGetUniqueNames) {
  Graph g;
  Value* a = g.AddValue("x", F32({2}));
  Value* b = g.AddValue("x", F32({3}));
  Value* c = g.AddValue("");
  EXPECT_EQ(a->name(), "x");
  EXPECT_NE(b->name(), "x");
  EXPECT_FALSE(c->name().empty());
  EXPECT_NE(c->name(), b->name());
  EXPECT_EQ(g.FindValue("x"), a);
  EXPECT_EQ(g.FindValue(b->name()), b);
  EXPECT_EQ(g.FindValue("nope"), nullptr);
  EXPECT_EQ(a->owner(), &g);
  EXPECT_EQ(a->producer(), nullptr);
}

TEST(GraphIrTest, AddNodeWiresProducersAndConsumers) {
  Graph g;
  Value* x = g.AddValue("x", F32({4}));
  g.AddInput(x);
  Node* relu = g.AddNode("Relu", {x}, 1, "relu");
  Node* add = g.AddNode("Add", {relu->output(0), x}, 1, "add");
  g.AddOutput(add->output(0));
  EXPECT_EQ(relu->output(0)->producer(), relu);
  EXPECT_EQ(relu->output(0)->producer_output(), 0);
  EXPECT_EQ(relu->owner(), &g);
  EXPECT_TRUE(x->is_graph_input());
  EXPECT_TRUE(add->output(0)->is_graph_output());
  EXPECT_EQ(g.num_nodes(), 2u);
  EXPECT_EQ(g.FindNode("add"), add);
  std::vector<Node*> consumers = g.Consumers(x);
  ASSERT_EQ(consumers.size(), 2u);
  EXPECT_EQ(consumers[0], relu);
  EXPECT_EQ(consumers[1], add);
  auto uses = g.UseCounts();
  EXPECT_EQ(uses[x], 2);
  EXPECT_EQ(uses[add->output(0)], 1);  // the graph output
  EXPECT_EQ(g.RuntimeInputs(), std::vector<Value*>{x});
}

TEST(GraphIrTest, DescribeAndQualifiedOp) {
  Graph g;
  Node* a = g.AddNode("Conv", {}, 1, "conv1");
  Node* b = g.AddNode("FusedAttention", {}, 1, "attn", "tessera");
  Node* c = g.AddNode("Relu", {}, 1, "r", "ai.onnx");
  EXPECT_EQ(a->QualifiedOp(), "Conv");
  EXPECT_EQ(a->Describe(), "node 'conv1' (Conv)");
  EXPECT_EQ(b->QualifiedOp(), "tessera.FusedAttention");
  EXPECT_EQ(b->Describe(), "node 'attn' (tessera.FusedAttention)");
  EXPECT_EQ(c->domain(), "");  // ai.onnx is stored as ""
  EXPECT_EQ(c->QualifiedOp(), "Relu");
}

TEST(GraphIrTest, AttributeGettersFallBackOnMissingOrWrongType) {
  Graph g;
  Node* n = g.AddNode("X", {}, 1, "n");
  n->set_attr("i", Attribute::Int(7));
  n->set_attr("f", Attribute::Float(0.5f));
  n->set_attr("s", Attribute::String("hi"));
  n->set_attr("is", Attribute::Ints({1, 2}));
  n->set_attr("fs", Attribute::Floats({1.5f}));
  EXPECT_EQ(n->GetInt("i", 0), 7);
  EXPECT_EQ(n->GetInt("missing", -3), -3);
  EXPECT_EQ(n->GetInt("f", 11), 11);  // wrong type: default
  EXPECT_FLOAT_EQ(n->GetFloat("f", 0.f), 0.5f);
  EXPECT_EQ(n->GetString("s", ""), "hi");
  EXPECT_EQ(n->GetInts("is"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(n->GetInts("nope", {9}), std::vector<int64_t>{9});
  EXPECT_EQ(n->GetFloats("fs"), std::vector<float>{1.5f});
  EXPECT_TRUE(n->has_attr("s"));
  n->remove_attr("s");
  EXPECT_FALSE(n->has_attr("s"));
  EXPECT_EQ(n->attr("s"), nullptr);
}

TEST(GraphIrTest, SetInputAndTrailingAbsentInputs) {
  Graph g;
  Value* x = g.AddValue("x");
  Node* n = g.AddNode("Clip", {x}, 1, "n");
  n->set_input(3, x);
  EXPECT_EQ(n->num_inputs(), 4u);
  EXPECT_EQ(n->input(1), nullptr);
  EXPECT_EQ(n->input(10), nullptr);
  n->set_input(3, nullptr);
  n->remove_trailing_absent_inputs();
  EXPECT_EQ(n->num_inputs(), 1u);
}

TEST(GraphIrTest, ConstantsCarryTheirType) {
  Graph g;
  Value* c = g.AddConstant("w", Tensor::FromVector<float>(DType::kF32, {2, 2}, {1, 2, 3, 4}));
  EXPECT_TRUE(c->is_constant());
  ASSERT_NE(c->constant(), nullptr);
  EXPECT_EQ(c->type().ToString(), "f32[2,2]");
  EXPECT_EQ(c->constant()->GetAsDouble(3), 4.0);
  c->clear_constant();
  EXPECT_FALSE(c->is_constant());
  EXPECT_EQ(c->constant(), nullptr);
}

TEST(GraphIrTest, OpsetLookupFallsBackToParentAndDefaults) {
  Graph parent;
  parent.set_opset("", 13);
  parent.set_opset("tessera", 2);
  Graph child;
  child.set_parent(&parent);
  EXPECT_EQ(child.OpsetFor(""), 13);
  EXPECT_EQ(child.OpsetFor("ai.onnx"), 13);
  EXPECT_EQ(child.OpsetFor("tessera"), 2);
  Graph lone;
  EXPECT_EQ(lone.OpsetFor(""), 17);
  EXPECT_EQ(lone.OpsetFor("custom"), 1);
}

TEST(GraphIrTest, ReplaceAllUsesWithUpdatesNodesAndOutputs) {
  Graph g;
  Value* x = g.AddValue("x");
  Value* y = g.AddValue("y");
  g.AddInput(x);
  g.AddInput(y);
  Node* n = g.AddNode("Relu", {x}, 1, "n");
  g.AddOutput(x);
  g.ReplaceAllUsesWith(x, y);
  EXPECT_EQ(n->input(0), y);
  EXPECT_EQ(g.outputs()[0], y);
  EXPECT_TRUE(y->is_graph_output());
  EXPECT_FALSE(x->is_graph_output());
}

TEST(GraphIrTest, LookupValueSearchesEnclosingGraphs) {
  Graph outer;
  Value* x = outer.AddValue("x");
  Graph inner;
  inner.set_parent(&outer);
  Value* y = inner.AddValue("y");
  EXPECT_EQ(inner.LookupValue("x"), x);
  EXPECT_EQ(inner.LookupValue("y"), y);
  EXPECT_EQ(outer.LookupValue("y"), nullptr);
}

// ---------------------------------------------------------------- TopoSort / Verify

TEST(GraphIrTest, TopoSortOrdersOutOfOrderNodesStably) {
  Graph g;
  Value* x = g.AddValue("x");
  g.AddInput(x);
  Value* mid = g.AddValue("mid");
  Value* out = g.AddValue("out");
  Node* late = g.AddNodeWithOutputs("Relu", {mid}, {out}, "late");   // consumer first
  Node* other = g.AddNode("Neg", {x}, 1, "other");                      // independent
  Node* early = g.AddNodeWithOutputs("Exp", {x}, {mid}, "early");
  g.AddOutput(out);
  EXPECT_FALSE(g.Verify().ok());
  ASSERT_TRUE(g.TopoSort().ok());
  std::vector<Node*> order = g.nodes();
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0], other);  // ready nodes keep their relative order
  EXPECT_EQ(order[1], early);
  EXPECT_EQ(order[2], late);
  EXPECT_TRUE(g.Verify().ok());
}

TEST(GraphIrTest, TopoSortReportsCycle) {
  Graph g;
  g.set_name("cyc");
  Value* a = g.AddValue("a");
  Value* b = g.AddValue("b");
  g.AddNodeWithOutputs("Relu", {b}, {a}, "first");
  g.AddNodeWithOutputs("Relu", {a}, {b}, "second");
  Status st = g.TopoSort();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cycle"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("node '"), std::string::npos) << st.message();
}

TEST(GraphIrTest, VerifyReportsUseBeforeDefinition) {
  Graph g;
  Value* x = g.AddValue("x");
  Node* n = g.AddNode("Relu", {x}, 1, "user");
  g.AddOutput(n->output(0));
  Status st = g.Verify();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("node 'user' (Relu)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("'x'"), std::string::npos) << st.message();
  g.AddInput(x);
  EXPECT_TRUE(g.Verify().ok());
}

TEST(GraphIrTest, VerifyReportsUnproducedOutputAndDoubleProducer) {
  Graph g;
  Value* x = g.AddValue("x");
  g.AddInput(x);
  Value* orphan = g.AddValue("orphan");
  g.AddOutput(orphan);
  Status st = g.Verify();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'orphan' is never produced"), std::string::npos) << st.message();

  Graph h;
  Value* y = h.AddValue("y");
  h.AddInput(y);
  Value* shared = h.AddValue("shared");
  h.AddNodeWithOutputs("Relu", {y}, {shared}, "p1");
  h.AddNodeWithOutputs("Neg", {y}, {shared}, "p2");
  st = h.Verify();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("node 'p1' (Relu)"), std::string::npos) << st.message();
}

TEST(GraphIrTest, VerifyAcceptsOuterScopeReferences) {
  Graph outer;
  Value* x = outer.AddValue("x");
  outer.AddInput(x);
  Graph body;
  body.set_parent(&outer);
  Node* n = body.AddNode("Relu", {x}, 1, "r");
  body.AddOutput(n->output(0));
  EXPECT_TRUE(body.Verify().ok());
  Graph stranger;
  Value* z = stranger.AddValue("z");
  Node* m = body.AddNode("Relu", {z}, 1, "bad");
  body.AddOutput(m->output(0));
  Status st = body.Verify();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("another graph"), std::string::npos) << st.message();
}

// ---------------------------------------------------------------- Clone / Compact

TEST(GraphIrTest, CloneIsDeepAndSharesConstantStorage) {
  Graph g;
  g.set_name("orig");
  g.set_opset("", 15);
  Value* x = g.AddValue("x", F32({2}));
  g.AddInput(x);
  Value* w = g.AddConstant("w", Tensor::FromVector<float>(DType::kF32, {2}, {1, 2}));
  Node* n = g.AddNode("Add", {x, w}, 1, "add");
  n->set_attr("k", Attribute::Int(3));
  g.AddOutput(n->output(0));

  std::unique_ptr<Graph> c = g.Clone();
  ASSERT_TRUE(c->Verify().ok());
  EXPECT_EQ(c->name(), "orig");
  EXPECT_EQ(c->OpsetFor(""), 15);
  ASSERT_EQ(c->num_nodes(), 1u);
  Node* cn = c->nodes()[0];
  EXPECT_NE(cn, n);
  EXPECT_EQ(cn->name(), "add");
  EXPECT_EQ(cn->GetInt("k", 0), 3);
  EXPECT_EQ(cn->owner(), c.get());
  EXPECT_EQ(cn->input(0), c->FindValue("x"));
  EXPECT_NE(cn->input(0), x);
  EXPECT_EQ(cn->input(0)->type().ToString(), "f32[2]");
  EXPECT_EQ(c->inputs().size(), 1u);
  EXPECT_EQ(c->outputs()[0], cn->output(0));
  EXPECT_EQ(c->FindValue("w")->constant()->raw(), w->constant()->raw());

  // Mutating the clone leaves the original alone.
  cn->set_attr("k", Attribute::Int(4));
  c->FindValue("x")->set_type(F32({9}));
  EXPECT_EQ(n->GetInt("k", 0), 3);
  EXPECT_EQ(x->type().ToString(), "f32[2]");
}

TEST(GraphIrTest, CompactFreesDeadNodesAndUnusedValues) {
  Graph g;
  Value* x = g.AddValue("x");
  g.AddInput(x);
  Value* unused_const = g.AddConstant("unused", Tensor::ScalarF32(1.f));
  (void)unused_const;
  Node* keep = g.AddNode("Relu", {x}, 1, "keep");
  Node* dead = g.AddNode("Neg", {x}, 1, "dead");
  g.AddOutput(keep->output(0));
  std::string dead_out = dead->output(0)->name();
  g.AddValue("floating");
  g.RemoveNode(dead);
  EXPECT_TRUE(dead->is_dead());
  EXPECT_EQ(g.num_nodes(), 1u);
  EXPECT_EQ(g.FindNode("dead"), nullptr);
  g.Compact();
  EXPECT_EQ(g.FindValue(dead_out), nullptr);
  EXPECT_EQ(g.FindValue("floating"), nullptr);
  // Unused initializers are freed too (dead-code elimination relies on this).
  EXPECT_EQ(g.FindValue("unused"), nullptr);
  EXPECT_EQ(g.FindValue("x"), x);
  EXPECT_NE(g.FindValue(keep->output(0)->name()), nullptr);
  EXPECT_TRUE(g.Verify().ok());
}

TEST(GraphIrTest, CompactKeepsValuesOnlySubgraphsRead) {
  Graph g;
  Value* cond = g.AddValue("cond", TensorType{DType::kBool, Shape()});
  g.AddInput(cond);
  Value* w = g.AddConstant("w", Tensor::ScalarF32(2.f));  // read only inside the branch
  auto branch = std::make_shared<Graph>();
  branch->set_parent(&g);
  Node* inner = branch->AddNode("Neg", {w}, 1, "inner");
  branch->AddOutput(inner->output(0));
  Node* n = g.AddNode("If", {cond}, 1, "if");
  n->set_attr("then_branch", Attribute::FromGraph(branch));
  n->set_attr("else_branch", Attribute::FromGraph(branch));
  g.AddOutput(n->output(0));
  g.Compact();
  EXPECT_EQ(g.FindValue("w"), w);
  EXPECT_TRUE(branch->Verify().ok());
}

TEST(GraphIrTest, UniqueNameAvoidsValuesAndNodes) {
  Graph g;
  std::string a = g.UniqueName("t");
  g.AddValue(a);
  std::string b = g.UniqueName("t");
  EXPECT_NE(a, b);
  EXPECT_EQ(b.rfind("t", 0), 0u);
}

// ---------------------------------------------------------------- dtypes

TEST(DTypeTest, SizesNamesAndClasses) {
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kI64), 8u);
  EXPECT_EQ(DTypeSize(DType::kBool), 1u);
  EXPECT_EQ(DTypeSize(DType::kString), 0u);
  EXPECT_STREQ(DTypeName(DType::kBF16), "bf16");
  EXPECT_EQ(DTypeFromName("float16"), DType::kF16);
  EXPECT_EQ(DTypeFromName("i64"), DType::kI64);
  EXPECT_EQ(DTypeFromName("double"), DType::kF64);
  EXPECT_EQ(DTypeFromName("complex64"), DType::kUndefined);
  EXPECT_TRUE(IsKnownDType(16));
  EXPECT_FALSE(IsKnownDType(14));
  EXPECT_FALSE(IsKnownDType(0));
  EXPECT_TRUE(IsFloatDType(DType::kBF16));
  EXPECT_FALSE(IsFloatDType(DType::kI32));
  EXPECT_TRUE(IsIntegerDType(DType::kU8));
  EXPECT_FALSE(IsIntegerDType(DType::kBool));
  for (DType t : {DType::kF32, DType::kU8, DType::kI8, DType::kU16, DType::kI16, DType::kI32, DType::kI64,
                  DType::kBool, DType::kF16, DType::kF64, DType::kU32, DType::kU64, DType::kBF16})
    EXPECT_EQ(DTypeFromName(DTypeName(t)), t) << DTypeName(t);
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(DTypeTest, HalfConversionExactValues) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.f), 0x7bff);            // largest finite half
  EXPECT_EQ(FloatToHalf(65520.f), 0x7c00);            // rounds to +inf
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.f, -25)), 0x0000);  // tie rounds to even (zero)
  EXPECT_EQ(FloatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(FloatToHalf(-0.f), 0x8000);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  uint16_t nan = FloatToHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  // Round to nearest even at the mantissa boundary: 1 + 2^-11 is a tie.
  EXPECT_EQ(FloatToHalf(1.f + std::ldexp(1.f, -11)), 0x3c00);
  EXPECT_EQ(FloatToHalf(1.f + 3 * std::ldexp(1.f, -11)), 0x3c02);
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.f, -24));
  EXPECT_EQ(HalfToFloat(0x03ff), std::ldexp(1023.f, -24));
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.f);
  EXPECT_TRUE(std::isinf(HalfToFloat(0xfc00)));
  EXPECT_LT(HalfToFloat(0xfc00), 0.f);
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_EQ(Bits(HalfToFloat(0x8000)), 0x80000000u);
}

TEST(DTypeTest, HalfRoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // inf/nan
    float f = HalfToFloat(static_cast<uint16_t>(h));
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << h;
  }
}

TEST(DTypeTest, BFloat16Conversion) {
  EXPECT_EQ(FloatToBF16(1.0f), 0x3f80);
  EXPECT_EQ(BF16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(BF16ToFloat(0xc0a0), -5.0f);
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: rounds to even (1).
  EXPECT_EQ(FloatToBF16(1.f + std::ldexp(1.f, -8)), 0x3f80);
  EXPECT_EQ(FloatToBF16(1.f + 3 * std::ldexp(1.f, -8)), 0x3f82);
  EXPECT_EQ(FloatToBF16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to inf
  EXPECT_EQ(FloatToBF16(std::numeric_limits<float>::infinity()), 0x7f80);
  uint16_t nan = FloatToBF16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(std::isnan(BF16ToFloat(nan)));
  uint16_t snan_like = FloatToBF16(std::bit_cast<float>(0x7f800001u));  // payload only in low bits
  EXPECT_TRUE(std::isnan(BF16ToFloat(snan_like)));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    if ((b & 0x7f80) == 0x7f80) continue;
    ASSERT_EQ(FloatToBF16(BF16ToFloat(static_cast<uint16_t>(b))), b) << std::hex << b;
  }
}

// ---------------------------------------------------------------- shapes and tensors

TEST(ShapeTest, DimsAndToString) {
  Shape s({Dim::Known(1), Dim::Symbol("batch"), Dim::Unknown()});
  EXPECT_EQ(s.ToString(), "[1,batch,?]");
  EXPECT_EQ(s.rank(), 3);
  EXPECT_TRUE(s.has_rank());
  EXPECT_FALSE(s.is_static());
  EXPECT_FALSE(s.AsInts().has_value());
  EXPECT_FALSE(s.NumElements().ok());
  EXPECT_EQ(Shape::UnknownRank().ToString(), "[*]");
  EXPECT_FALSE(Shape::UnknownRank().has_rank());
  EXPECT_NE(Shape::UnknownRank(), Shape());
  EXPECT_EQ(Shape().ToString(), "[]");
  EXPECT_EQ(*Shape().NumElements(), 1);
  EXPECT_EQ(*Shape::FromInts({2, 3, 4}).NumElements(), 24);
  EXPECT_EQ(Shape::FromInts({2, 3}), Shape({Dim::Known(2), Dim::Known(3)}));
  EXPECT_NE(Dim::Symbol("a"), Dim::Symbol("b"));
  EXPECT_EQ((TensorType{DType::kBF16, Shape::FromInts({4})}).ToString(), "bf16[4]");
}

TEST(ShapeTest, CheckedNumElementsOverflowAndNegative) {
  EXPECT_EQ(*CheckedNumElements({}), 1);
  EXPECT_EQ(*CheckedNumElements({0, std::numeric_limits<int64_t>::max()}), 0);
  EXPECT_EQ(*CheckedNumElements({int64_t{1} << 31, int64_t{1} << 31}), int64_t{1} << 62);
  auto over = CheckedNumElements({int64_t{1} << 32, int64_t{1} << 32});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(over.status().message().find("overflow"), std::string::npos);
  auto neg = CheckedNumElements({2, -1});
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(CheckedByteSize({int64_t{1} << 61}, DType::kF64).ok());
  EXPECT_EQ(*CheckedByteSize({3, 5}, DType::kF16), 30);
  EXPECT_FALSE(Shape::FromInts({int64_t{1} << 40, int64_t{1} << 40}).NumElements().ok());
}

TEST(TensorTest, CreationAndAccess) {
  Tensor t = Tensor::FromVector<int32_t>(DType::kI32, {3}, {1, -2, 3});
  EXPECT_EQ(t.num_elements(), 3);
  EXPECT_EQ(t.nbytes(), 12u);
  EXPECT_EQ(t.GetAsInt64(1), -2);
  EXPECT_EQ(t.GetAsDouble(2), 3.0);
  EXPECT_EQ(*t.ToInt64Vector(), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_FALSE(Tensor::ScalarF32(1.f).ToInt64Vector().ok());
  EXPECT_EQ(Tensor::ScalarI64(5).type().ToString(), "i64[]");
  uint16_t h = FloatToHalf(1.5f);
  Tensor half = Tensor::FromBytes(DType::kF16, {1}, &h, 2).value();
  EXPECT_EQ(half.GetAsDouble(0), 1.5);
  EXPECT_FALSE(Tensor::FromBytes(DType::kF32, {2}, &h, 2).ok());  // wrong byte count
  EXPECT_FALSE(Tensor::Zeros(DType::kF32, {-1}).ok());
  EXPECT_FALSE(Tensor::Zeros(DType::kString, {1}).ok());
  EXPECT_FALSE(Tensor::Zeros(DType::kF32, {int64_t{1} << 62, 4}).ok());
  Tensor z = Tensor::Zeros(DType::kF32, {2, 2}).value();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(z.raw()) % 64, 0u);
  Tensor copy = z;
  EXPECT_EQ(copy.raw(), z.raw());  // copies share storage
}

}  // namespace
}  // namespace tessera

namespace tessera {
namespace {

// A clone's If bodies are copies whose reads of enclosing values point into
// the clone, not into the original (which may be gone or compiled for other
// shapes).
TEST(GraphIrTest, CloneCopiesSubgraphsAndRemapsCapturedValues) {
  Graph g;
  g.set_opset("", 17);
  Value* c = g.AddValue("c", TensorType{DType::kBool, Shape::FromInts({})});
  Value* x = g.AddValue("x", TensorType{DType::kF32, Shape::FromInts({3})});
  g.AddInput(c);
  g.AddInput(x);
  auto body = std::make_shared<Graph>();
  body->set_parent(&g);
  Node* neg = body->AddNode("Neg", {x}, 1, "neg");  // reads x from the enclosing graph
  body->AddOutput(neg->output(0));
  Node* n = g.AddNode("If", {c}, 1, "if");
  n->set_attr("then_branch", Attribute::FromGraph(body));
  n->set_attr("else_branch", Attribute::FromGraph(body));
  g.AddOutput(n->output(0));

  auto copy = g.Clone();
  const Node* cif = copy->FindNode("if");
  ASSERT_NE(cif, nullptr);
  const Graph* cbody = cif->attr("then_branch")->g.get();
  ASSERT_NE(cbody, nullptr);
  EXPECT_NE(cbody, body.get());
  EXPECT_EQ(cbody->parent(), copy.get());
  ASSERT_EQ(cbody->nodes().size(), 1u);
  EXPECT_EQ(cbody->nodes()[0]->input(0), copy->FindValue("x"));
  EXPECT_NE(cbody->nodes()[0]->input(0), x);
  EXPECT_TRUE(copy->Verify().ok()) << copy->Verify().ToString();
}

}  // namespace
}  // namespace tessera
