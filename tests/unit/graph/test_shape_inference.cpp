// Op schemas: registry, BroadcastShapes/NormalizeAxis, per-op type and shape
// inference (including opset differences), merging with declared types, and
// graph-wide inference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/op_schema.h"
#include "tests/unit/graph/type_text.h"

namespace tessera {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

TensorType TT(const std::string& text) { return testing::ParseTensorType(text); }

Shape S(const std::string& text) { return TT("f32" + text).shape; }

class InferTest : public ::testing::Test {
 protected:
  Graph g;

  void SetUp() override { g.set_name("test"); g.set_opset("", 17); }

  Value* In(const std::string& type) {
    Value* v = g.AddValue("", TT(type));
    g.AddInput(v);
    return v;
  }
  Value* I64(std::vector<int64_t> v) {
    return g.AddConstant("", Tensor::FromVector<int64_t>(DType::kI64, {static_cast<int64_t>(v.size())}, v));
  }
  Value* ScalarI64(int64_t v) { return g.AddConstant("", Tensor::ScalarI64(v)); }
  Value* ScalarF32(float v) { return g.AddConstant("", Tensor::ScalarF32(v)); }
  Node* Op(const std::string& op, std::vector<Value*> ins, size_t nout = 1, const std::string& name = "n",
           const std::string& domain = "") {
    return g.AddNode(op, ins, nout, name, domain);
  }
  // Runs inference on n: its output types joined by " ", or "error: <message>".
  std::string Run(Node* n) {
    Status st = InferNodeTypes(*n);
    if (!st.ok()) return "error: " + st.message();
    std::string r;
    for (size_t i = 0; i < n->num_outputs(); ++i) r += (i ? " " : "") + n->output(i)->type().ToString();
    return r;
  }
};

// Asserts that `result` is an error naming node 'n' with its op and containing `what`.
#define EXPECT_INFER_ERROR(result, op, what)                                             \
  do {                                                                                   \
    std::string _r = (result);                                                           \
    EXPECT_EQ(_r.rfind("error: ", 0), 0u) << _r;                                          \
    EXPECT_NE(_r.find(std::string("node 'n' (") + (op) + ")"), std::string::npos) << _r; \
    EXPECT_NE(_r.find(what), std::string::npos) << _r;                                   \
  } while (0)

// ---------------------------------------------------------------- registry

TEST(OpRegistryTest, FindTreatsEmptyAndAiOnnxDomainsAlike) {
  const OpRegistry& r = OpRegistry::Global();
  const OpSchema* a = r.Find("", "Conv");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, r.Find("ai.onnx", "Conv"));
  EXPECT_EQ(a->name, "Conv");
  EXPECT_EQ(r.Find("", "NoSuchOp"), nullptr);
  EXPECT_EQ(r.Find("", "FusedAttention"), nullptr);
  EXPECT_NE(r.Find("tessera", "FusedAttention"), nullptr);
}

TEST(OpRegistryTest, ListOpsCoversEveryRequiredOp) {
  std::vector<std::string> ops = OpRegistry::Global().ListOps();
  const char* required[] = {
      "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Erf", "Tanh", "Sigmoid", "Relu", "LeakyRelu",
      "Clip", "Gelu", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Max", "Min", "Mod", "Sign", "HardSigmoid",
      "HardSwish", "Softplus", "Elu", "Selu", "Mish", "MatMul", "Gemm", "Conv", "MaxPool", "AveragePool",
      "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "LayerNormalization", "Softmax", "LogSoftmax",
      "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ArgMax", "ArgMin",
      "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather",
      "GatherElements", "Expand", "Where", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "And",
      "Or", "Xor", "Not", "Cast", "CastLike", "Shape", "Size", "ConstantOfShape", "Range", "Trilu", "Identity",
      "Dropout", "Constant", "Tile", "Pad", "If", "tessera.FusedAttention"};
  for (const char* op : required)
    EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op << " has no schema";
}

TEST(OpRegistryTest, RegisterReplacesSameDomainAndName) {
  OpRegistry r;
  OpSchema s;
  s.domain = "ai.onnx";
  s.name = "Foo";
  s.max_inputs = 1;
  r.Register(s);
  s.max_inputs = 3;
  r.Register(s);
  ASSERT_NE(r.Find("", "Foo"), nullptr);
  EXPECT_EQ(r.Find("", "Foo")->max_inputs, 3);
  EXPECT_EQ(r.ListOps(), std::vector<std::string>{"Foo"});
}

// ---------------------------------------------------------------- helpers

TEST(BroadcastShapesTest, KnownDims) {
  EXPECT_EQ(BroadcastShapes(S("[2,3]"), S("[3]"))->ToString(), "[2,3]");
  EXPECT_EQ(BroadcastShapes(S("[2,1,4]"), S("[3,1]"))->ToString(), "[2,3,4]");
  EXPECT_EQ(BroadcastShapes(S("[]"), S("[5,6]"))->ToString(), "[5,6]");
  EXPECT_EQ(BroadcastShapes(S("[0,3]"), S("[1,3]"))->ToString(), "[0,3]");
  auto bad = BroadcastShapes(S("[2,3]"), S("[4]"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("[2,3]"), std::string::npos);
  EXPECT_NE(bad.status().message().find("3 vs 4"), std::string::npos);
}

TEST(BroadcastShapesTest, SymbolicDims) {
  EXPECT_EQ(BroadcastShapes(S("[batch,3]"), S("[batch,1]"))->ToString(), "[batch,3]");  // equal symbols
  EXPECT_EQ(BroadcastShapes(S("[1,3]"), S("[batch,3]"))->ToString(), "[batch,3]");      // 1 vs sym = sym
  EXPECT_EQ(BroadcastShapes(S("[batch]"), S("[7]"))->ToString(), "[7]");                // sym vs known>1
  EXPECT_EQ(BroadcastShapes(S("[a]"), S("[b]"))->ToString(), "[?]");                    // either may be 1
  EXPECT_EQ(BroadcastShapes(S("[?]"), S("[seq]"))->ToString(), "[?]");
  EXPECT_FALSE(BroadcastShapes(S("[batch,2]"), S("[batch,3]")).ok());
  EXPECT_FALSE(BroadcastShapes(S("[*]"), S("[2]"))->has_rank());
}

TEST(NormalizeAxisTest, RangeAndNegative) {
  EXPECT_EQ(*NormalizeAxis(-1, 4), 3);
  EXPECT_EQ(*NormalizeAxis(-4, 4), 0);
  EXPECT_EQ(*NormalizeAxis(2, 4), 2);
  EXPECT_FALSE(NormalizeAxis(4, 4).ok());
  EXPECT_FALSE(NormalizeAxis(-5, 4).ok());
  EXPECT_FALSE(NormalizeAxis(0, 0).ok());
  EXPECT_NE(NormalizeAxis(7, 3).status().message().find("axis 7"), std::string::npos);
}

// ---------------------------------------------------------------- InferNodeTypes mechanics

TEST_F(InferTest, UnknownOpIsUnsupported) {
  Node* n = Op("Frobnicate", {In("f32[2]")});
  Status st = InferNodeTypes(*n);
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("node 'n' (Frobnicate)"), std::string::npos);
}

TEST_F(InferTest, ArityErrorsNameExpectedAndGot) {
  Value* a = In("f32[2]");
  EXPECT_INFER_ERROR(Run(Op("Add", {a, a, a})), "Add", "expects 2 inputs, got 3");
}

TEST_F(InferTest, ArityRangeAndMissingRequiredInput) {
  Value* a = In("f32[1,1,4,4]");
  EXPECT_INFER_ERROR(Run(Op("Conv", {a})), "Conv", "expects 2 to 3 inputs, got 1");
}

TEST_F(InferTest, MissingRequiredInput) {
  Value* a = In("f32[2]");
  EXPECT_INFER_ERROR(Run(Op("Add", {nullptr, a})), "Add", "required input 0 is missing");
}

TEST_F(InferTest, OutputArity) {
  Value* a = In("f32[1,1,4,4]");
  Node* n = Op("MaxPool", {a}, 3);
  n->set_attr("kernel_shape", Attribute::Ints({2, 2}));
  EXPECT_INFER_ERROR(Run(n), "MaxPool", "expects 1 to 2 outputs, got 3");
}

TEST_F(InferTest, DeclaredKnownDimsWinOverUnknownInferred) {
  Value* x = In("f32[2,64]");
  Value* shape = In("i64[2]");  // not constant: inferred dims unknown
  Node* n = Op("Reshape", {x, shape});
  n->output(0)->set_type(TT("f32[batch,128]"));
  EXPECT_EQ(Run(n), "f32[batch,128]");
}

TEST_F(InferTest, DeclaredUnknownRankTakesInferred) {
  Value* x = In("f32[2,3]");
  Node* n = Op("Relu", {x});
  n->output(0)->set_type(TT("f32[*]"));
  EXPECT_EQ(Run(n), "f32[2,3]");
}

TEST_F(InferTest, DeclaredDimConflictIsError) {
  Node* n = Op("Relu", {In("f32[2,3]")});
  n->output(0)->set_type(TT("f32[2,4]"));
  EXPECT_INFER_ERROR(Run(n), "Relu", "declared as f32[2,4] but inferred as f32[2,3]");
}

TEST_F(InferTest, DeclaredDtypeConflictIsError) {
  Node* n = Op("Relu", {In("f32[2,3]")});
  n->output(0)->set_type(TT("f16[*]"));
  EXPECT_INFER_ERROR(Run(n), "Relu", "declared as f16");
}

TEST_F(InferTest, DeclaredRankConflictIsError) {
  Node* n = Op("Relu", {In("f32[2,3]")});
  n->output(0)->set_type(TT("f32[6]"));
  EXPECT_INFER_ERROR(Run(n), "Relu", "inferred as f32[2,3]");
}

TEST_F(InferTest, UnknownInputTypeGivesUnknownOutput) {
  Node* n = Op("Relu", {In("?")});
  EXPECT_EQ(Run(n), "undefined[*]");
}

// ---------------------------------------------------------------- elementwise

TEST_F(InferTest, UnaryFloatOpsKeepType) {
  for (const char* op : {"Sqrt", "Exp", "Log", "Erf", "Tanh", "Sigmoid", "Relu", "LeakyRelu", "Gelu", "Neg", "Abs",
                         "Reciprocal", "Floor", "Ceil", "Sign", "HardSigmoid", "HardSwish", "Softplus", "Elu",
                         "Selu", "Mish"}) {
    Graph g2;
    Value* x = g2.AddValue("x", TT("f16[batch,3,?]"));
    Node* n = g2.AddNode(op, {x}, 1, "n");
    ASSERT_TRUE(InferNodeTypes(*n).ok()) << op;
    EXPECT_EQ(n->output(0)->type().ToString(), "f16[batch,3,?]") << op;
  }
}

TEST_F(InferTest, FloatOnlyUnaryRejectsIntegers) {
  EXPECT_INFER_ERROR(Run(Op("Sqrt", {In("i64[3]")})), "Sqrt", "expected a floating-point type");
}

TEST_F(InferTest, NotRequiresBool) {
  EXPECT_EQ(Run(Op("Not", {In("bool[2]")})), "bool[2]");
  EXPECT_INFER_ERROR(Run(Op("Not", {In("f32[2]")})), "Not", "expected bool");
}

TEST_F(InferTest, BinaryArithmeticBroadcasts) {
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min"}) {
    Graph g2;
    Value* a = g2.AddValue("a", TT("f32[batch,1,4]"));
    Value* b = g2.AddValue("b", TT("f32[3,1]"));
    Node* n = g2.AddNode(op, {a, b}, 1, "n");
    ASSERT_TRUE(InferNodeTypes(*n).ok()) << op;
    EXPECT_EQ(n->output(0)->type().ToString(), "f32[batch,3,4]") << op;
  }
}

TEST_F(InferTest, AddDtypeMismatchNamesNode) {
  Node* n = Op("Add", {In("f32[2]"), In("i64[2]")}, 1, "add1");
  Status st = InferNodeTypes(*n);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("node 'add1' (Add)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("f32"), std::string::npos);
  EXPECT_NE(st.message().find("i64"), std::string::npos);
}

TEST_F(InferTest, AddIncompatibleShapes) {
  EXPECT_INFER_ERROR(Run(Op("Add", {In("f32[2,3]"), In("f32[4]")})), "Add", "cannot broadcast");
}

TEST_F(InferTest, VariadicMaxOfThree) {
  EXPECT_EQ(Run(Op("Max", {In("i32[4,1]"), In("i32[5]"), In("i32[]")})), "i32[4,5]");
}

TEST_F(InferTest, PowAllowsDifferentExponentType) {
  EXPECT_EQ(Run(Op("Pow", {In("f32[2,3]"), In("i64[]")})), "f32[2,3]");
  g.set_opset("", 11);
  EXPECT_INFER_ERROR(Run(Op("Pow", {In("f32[2,3]"), In("i64[]")})), "Pow", "dtypes differ");
}

TEST_F(InferTest, ModNeedsFmodForFloats) {
  EXPECT_EQ(Run(Op("Mod", {In("i32[3]"), In("i32[3]")})), "i32[3]");
  EXPECT_INFER_ERROR(Run(Op("Mod", {In("f32[3]"), In("f32[3]")})), "Mod", "fmod must be 1");
  Node* n = Op("Mod", {In("f32[3]"), In("f32[1]")});
  n->set_attr("fmod", Attribute::Int(1));
  EXPECT_EQ(Run(n), "f32[3]");
}

TEST_F(InferTest, ClipInputsFromOpset11AttributesBefore) {
  Value* x = In("f32[2,2]");
  EXPECT_EQ(Run(Op("Clip", {x, ScalarF32(0.f), ScalarF32(6.f)})), "f32[2,2]");
  EXPECT_EQ(Run(Op("Clip", {x, nullptr, ScalarF32(6.f)}, 1, "m")), "f32[2,2]");
  EXPECT_INFER_ERROR(Run(Op("Clip", {x, ScalarI64(0)}, 1, "n")), "Clip", "min has dtype i64");
  g.set_opset("", 10);
  EXPECT_INFER_ERROR(Run(Op("Clip", {x, ScalarF32(0.f)})), "Clip", "before opset 11");
  Node* n = Op("Clip", {x});
  n->set_attr("min", Attribute::Float(0.f));
  EXPECT_EQ(Run(n), "f32[2,2]");
}

TEST_F(InferTest, GeluApproximateIsValidated) {
  Node* n = Op("Gelu", {In("f32[4]")});
  n->set_attr("approximate", Attribute::String("tanh"));
  EXPECT_EQ(Run(n), "f32[4]");
  n->set_attr("approximate", Attribute::String("fast"));
  EXPECT_INFER_ERROR(Run(n), "Gelu", "approximate");
}

TEST_F(InferTest, ComparisonsGiveBool) {
  for (const char* op : {"Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual"}) {
    Graph g2;
    Value* a = g2.AddValue("a", TT("i64[seq,1]"));
    Value* b = g2.AddValue("b", TT("i64[4]"));
    Node* n = g2.AddNode(op, {a, b}, 1, "n");
    ASSERT_TRUE(InferNodeTypes(*n).ok()) << op;
    EXPECT_EQ(n->output(0)->type().ToString(), "bool[seq,4]") << op;
  }
  EXPECT_INFER_ERROR(Run(Op("Less", {In("f32[2]"), In("f16[2]")})), "Less", "dtypes differ");
}

TEST_F(InferTest, LogicOpsNeedBool) {
  for (const char* op : {"And", "Or", "Xor"}) {
    Graph g2;
    Node* n = g2.AddNode(op, {g2.AddValue("a", TT("bool[2,1]")), g2.AddValue("b", TT("bool[3]"))}, 1, "n");
    ASSERT_TRUE(InferNodeTypes(*n).ok()) << op;
    EXPECT_EQ(n->output(0)->type().ToString(), "bool[2,3]");
  }
  EXPECT_INFER_ERROR(Run(Op("And", {In("i32[2]"), In("i32[2]")})), "And", "expected bool");
}

TEST_F(InferTest, WhereBroadcastsAllThree) {
  EXPECT_EQ(Run(Op("Where", {In("bool[2,1]"), In("f32[1,3]"), In("f32[]")})), "f32[2,3]");
  EXPECT_INFER_ERROR(Run(Op("Where", {In("f32[2]"), In("f32[2]"), In("f32[2]")})), "Where", "condition");
  EXPECT_INFER_ERROR(Run(Op("Where", {In("bool[2]"), In("f32[2]"), In("i32[2]")})), "Where", "dtypes differ");
}

// ---------------------------------------------------------------- MatMul / Gemm

TEST_F(InferTest, MatMulShapes) {
  EXPECT_EQ(Run(Op("MatMul", {In("f32[2,3]"), In("f32[3,4]")}, 1, "a")), "f32[2,4]");
  EXPECT_EQ(Run(Op("MatMul", {In("f32[3]"), In("f32[3,4]")}, 1, "b")), "f32[4]");
  EXPECT_EQ(Run(Op("MatMul", {In("f32[2,3]"), In("f32[3]")}, 1, "c")), "f32[2]");
  EXPECT_EQ(Run(Op("MatMul", {In("f32[3]"), In("f32[3]")}, 1, "d")), "f32[]");
  EXPECT_EQ(Run(Op("MatMul", {In("f32[5,1,2,3]"), In("f32[4,3,6]")}, 1, "e")), "f32[5,4,2,6]");
  EXPECT_EQ(Run(Op("MatMul", {In("f32[batch,seq,64]"), In("f32[64,128]")}, 1, "f")), "f32[batch,seq,128]");
  EXPECT_EQ(Run(Op("MatMul", {In("f32[batch,seq,k]"), In("f32[k,7]")}, 1, "h")), "f32[batch,seq,7]");
}

TEST_F(InferTest, MatMulErrors) {
  EXPECT_INFER_ERROR(Run(Op("MatMul", {In("f32[2,3]"), In("f32[4,5]")})), "MatMul", "inner dims differ");
  EXPECT_INFER_ERROR(Run(Op("MatMul", {In("f32[2,2,3]"), In("f32[3,3,5]")})), "MatMul", "batch dims");
  EXPECT_INFER_ERROR(Run(Op("MatMul", {In("f32[]"), In("f32[3]")})), "MatMul", "rank >= 1");
  EXPECT_INFER_ERROR(Run(Op("MatMul", {In("f32[2,3]"), In("f16[3,2]")})), "MatMul", "dtype");
}

TEST_F(InferTest, GemmTransposes) {
  Node* n = Op("Gemm", {In("f32[4,3]"), In("f32[5,4]"), In("f32[5]")});
  n->set_attr("transA", Attribute::Int(1));
  n->set_attr("transB", Attribute::Int(1));
  EXPECT_EQ(Run(n), "f32[3,5]");
  EXPECT_EQ(Run(Op("Gemm", {In("f32[batch,8]"), In("f32[8,10]")}, 1, "m")), "f32[batch,10]");
}

TEST_F(InferTest, GemmErrors) {
  EXPECT_INFER_ERROR(Run(Op("Gemm", {In("f32[4,3]"), In("f32[4,5]")})), "Gemm", "inner dims differ");
  EXPECT_INFER_ERROR(Run(Op("Gemm", {In("f32[2,4,3]"), In("f32[3,5]")})), "Gemm", "rank 2");
  EXPECT_INFER_ERROR(Run(Op("Gemm", {In("f32[4,3]"), In("f32[3,5]"), In("f32[4]")})), "Gemm", "does not broadcast");
  g.set_opset("", 9);
  EXPECT_INFER_ERROR(Run(Op("Gemm", {In("f32[4,3]"), In("f32[3,5]")})), "Gemm", "C is required");
}

// ---------------------------------------------------------------- Conv and pooling

TEST_F(InferTest, ConvStridePadBatchSymbolic) {
  Node* n = Op("Conv", {In("f32[batch,3,224,224]"), In("f32[64,3,7,7]"), In("f32[64]")});
  n->set_attr("strides", Attribute::Ints({2, 2}));
  n->set_attr("pads", Attribute::Ints({3, 3, 3, 3}));
  EXPECT_EQ(Run(n), "f32[batch,64,112,112]");
}

TEST_F(InferTest, ConvAutoPad) {
  Value* x = In("f32[1,3,225,224]");
  Value* w = In("f32[8,3,7,7]");
  const char* cases[][2] = {{"SAME_UPPER", "f32[1,8,113,112]"}, {"SAME_LOWER", "f32[1,8,113,112]"},
                            {"VALID", "f32[1,8,110,109]"},      {"NOTSET", "f32[1,8,110,109]"}};
  int i = 0;
  for (auto& c : cases) {
    Node* n = Op("Conv", {x, w}, 1, StrCat("n", i++));
    n->set_attr("strides", Attribute::Ints({2, 2}));
    n->set_attr("auto_pad", Attribute::String(c[0]));
    EXPECT_EQ(Run(n), c[1]) << c[0];
  }
}

TEST_F(InferTest, ConvDilationGroupsAnd1D) {
  Node* n = Op("Conv", {In("f32[1,8,10,10]"), In("f32[16,2,3,3]")});
  n->set_attr("group", Attribute::Int(4));
  n->set_attr("dilations", Attribute::Ints({2, 1}));
  EXPECT_EQ(Run(n), "f32[1,16,6,8]");
  EXPECT_EQ(Run(Op("Conv", {In("f32[2,4,10]"), In("f32[8,4,3]")}, 1, "m")), "f32[2,8,8]");
  Node* k = Op("Conv", {In("f32[1,4,9,9,9]"), In("f32[2,4,3,3,3]")}, 1, "k");
  k->set_attr("kernel_shape", Attribute::Ints({3, 3, 3}));
  EXPECT_EQ(Run(k), "f32[1,2,7,7,7]");
}

TEST_F(InferTest, ConvErrors) {
  EXPECT_INFER_ERROR(Run(Op("Conv", {In("f32[3,5]"), In("f32[2,3]")})), "Conv", "X must have rank >= 3");
  EXPECT_INFER_ERROR(Run(Op("Conv", {In("f32[1,8,5,5]"), In("f32[16,3,3,3]")})), "Conv", "8 channels");
  EXPECT_INFER_ERROR(Run(Op("Conv", {In("f32[1,3,2,2]"), In("f32[4,3,3,3]")})), "Conv", "larger than the padded input");
  EXPECT_INFER_ERROR(Run(Op("Conv", {In("f32[1,3,8,8]"), In("f32[4,3,3,3]"), In("f32[5]")})), "Conv", "B size");
  Node* n = Op("Conv", {In("f32[1,3,8,8]"), In("f32[4,3,3,3]")});
  n->set_attr("strides", Attribute::Ints({1}));
  EXPECT_INFER_ERROR(Run(n), "Conv", "strides has 1 values");
  n->set_attr("strides", Attribute::Ints({0, 1}));
  EXPECT_INFER_ERROR(Run(n), "Conv", "must be >= 1");
  n->set_attr("strides", Attribute::Ints({1, 1}));
  n->set_attr("auto_pad", Attribute::String("SAME"));
  EXPECT_INFER_ERROR(Run(n), "Conv", "unknown auto_pad");
  EXPECT_INFER_ERROR(Run(Op("Conv", {In("i32[1,3,8,8]"), In("i32[4,3,3,3]")})), "Conv", "floating-point");
}

TEST_F(InferTest, MaxPoolCeilModeAndIndices) {
  Value* x = In("f32[1,1,5,5]");
  Node* a = Op("MaxPool", {x}, 2, "a");
  a->set_attr("kernel_shape", Attribute::Ints({2, 2}));
  a->set_attr("strides", Attribute::Ints({2, 2}));
  EXPECT_EQ(Run(a), "f32[1,1,2,2] i64[1,1,2,2]");
  Node* b = Op("MaxPool", {x}, 1, "b");
  b->set_attr("kernel_shape", Attribute::Ints({2, 2}));
  b->set_attr("strides", Attribute::Ints({2, 2}));
  b->set_attr("ceil_mode", Attribute::Int(1));
  EXPECT_EQ(Run(b), "f32[1,1,3,3]");
  // The last window would start past the input: dropped (ONNX reference).
  Node* c = Op("MaxPool", {In("f32[1,1,2,2]")}, 1, "c");
  c->set_attr("kernel_shape", Attribute::Ints({1, 1}));
  c->set_attr("strides", Attribute::Ints({2, 2}));
  c->set_attr("ceil_mode", Attribute::Int(1));
  EXPECT_EQ(Run(c), "f32[1,1,1,1]");
}

TEST_F(InferTest, AveragePoolPadsAndSymbolicSpatial) {
  Node* n = Op("AveragePool", {In("f32[batch,3,32,w]")});
  n->set_attr("kernel_shape", Attribute::Ints({3, 3}));
  n->set_attr("pads", Attribute::Ints({1, 1, 1, 1}));
  EXPECT_EQ(Run(n), "f32[batch,3,32,?]");
}

TEST_F(InferTest, PoolErrors) {
  EXPECT_INFER_ERROR(Run(Op("MaxPool", {In("f32[1,1,4,4]")})), "MaxPool", "kernel_shape is required");
  Node* n = Op("AveragePool", {In("f32[1,4]")});
  n->set_attr("kernel_shape", Attribute::Ints({2}));
  EXPECT_INFER_ERROR(Run(n), "AveragePool", "rank >= 3");
  Node* m = Op("MaxPool", {In("f32[1,1,2,2]")});
  m->set_attr("kernel_shape", Attribute::Ints({3, 3}));
  EXPECT_INFER_ERROR(Run(m), "MaxPool", "larger than the padded input");
}

TEST_F(InferTest, GlobalPools) {
  EXPECT_EQ(Run(Op("GlobalAveragePool", {In("f32[batch,8,7,7]")}, 1, "a")), "f32[batch,8,1,1]");
  EXPECT_EQ(Run(Op("GlobalMaxPool", {In("f32[2,8,5]")}, 1, "b")), "f32[2,8,1]");
  EXPECT_INFER_ERROR(Run(Op("GlobalMaxPool", {In("f32[2,8]")})), "GlobalMaxPool", "rank >= 3");
}

// ---------------------------------------------------------------- normalization, softmax, dropout

TEST_F(InferTest, BatchNormalization) {
  Value* c = In("f32[16]");
  EXPECT_EQ(Run(Op("BatchNormalization", {In("f32[batch,16,8,8]"), c, c, c, c}, 1, "a")), "f32[batch,16,8,8]");
  g.set_opset("", 15);
  EXPECT_EQ(Run(Op("BatchNormalization", {In("f32[2,16]"), c, c, c, c}, 3, "b")), "f32[2,16] f32[16] f32[16]");
  EXPECT_INFER_ERROR(Run(Op("BatchNormalization", {In("f32[2,16]"), c, c, c, c}, 5, "n")), "BatchNormalization",
                     "at most 3 outputs");
  EXPECT_INFER_ERROR(Run(Op("BatchNormalization", {In("f32[2,15,4]"), c, c, c, c}, 1, "n")), "BatchNormalization",
                     "channel count");
}

TEST_F(InferTest, LayerNormalization) {
  Node* n = Op("LayerNormalization", {In("f16[2,3,4]"), In("f16[3,4]")}, 3);
  n->set_attr("axis", Attribute::Int(1));
  EXPECT_EQ(Run(n), "f16[2,3,4] f32[2,1,1] f32[2,1,1]");
  Node* m = Op("LayerNormalization", {In("f32[batch,seq,768]"), In("f32[768]"), In("f32[768]")}, 1, "m");
  EXPECT_EQ(Run(m), "f32[batch,seq,768]");
  Node* bad = Op("LayerNormalization", {In("f32[2,3,4]"), In("f32[5]")}, 1, "n");
  EXPECT_INFER_ERROR(Run(bad), "LayerNormalization", "does not broadcast");
  bad->set_attr("axis", Attribute::Int(3));
  EXPECT_INFER_ERROR(Run(bad), "LayerNormalization", "out of range");
}

TEST_F(InferTest, SoftmaxDefaultAxisDependsOnOpset) {
  EXPECT_EQ(Run(Op("Softmax", {In("f32[10]")}, 1, "a")), "f32[10]");  // opset 17: axis -1
  EXPECT_EQ(Run(Op("LogSoftmax", {In("f32[2,10]")}, 1, "b")), "f32[2,10]");
  g.set_opset("", 11);  // axis 1 by default: invalid for rank 1
  EXPECT_INFER_ERROR(Run(Op("Softmax", {In("f32[10]")})), "Softmax", "out of range");
}

TEST_F(InferTest, DropoutVersions) {
  g.set_opset("", 13);
  EXPECT_EQ(Run(Op("Dropout", {In("f32[4,5]"), ScalarF32(0.1f)}, 2, "a")), "f32[4,5] bool[4,5]");
  EXPECT_INFER_ERROR(Run(Op("Dropout", {In("f32[4]"), ScalarF32(1.5f)})), "Dropout", "must be in [0, 1)");
  Graph g2;
  g2.set_opset("", 7);
  Node* old = g2.AddNode("Dropout", {g2.AddValue("x", TT("f16[3]"))}, 2, "old");
  ASSERT_TRUE(InferNodeTypes(*old).ok());
  EXPECT_EQ(old->output(1)->type().ToString(), "f16[3]");  // mask had the input's type before opset 10
  Graph g3;
  g3.set_opset("", 10);
  Node* bad = g3.AddNode("Dropout", {g3.AddValue("x", TT("f16[3]")), g3.AddConstant("r", Tensor::ScalarF32(.5f))},
                         1, "n");
  Status st = InferNodeTypes(*bad);
  EXPECT_NE(st.message().find("before opset 12"), std::string::npos) << st.message();
}

TEST_F(InferTest, FusedAttention) {
  Node* n = Op("FusedAttention", {In("f16[b,8,s,64]"), In("f16[b,8,t,64]"), In("f16[b,8,t,32]"), In("bool[1,1,s,t]")},
               1, "n", "tessera");
  EXPECT_EQ(Run(n), "f16[b,8,s,32]");
  Node* e = Op("FusedAttention", {In("f16[1,8,4,64]"), In("f16[1,8,4,32]"), In("f16[1,8,4,32]")}, 1, "n", "tessera");
  EXPECT_INFER_ERROR(Run(e), "tessera.FusedAttention", "head dims differ");
  Node* r = Op("FusedAttention", {In("f16[8,4,64]"), In("f16[8,4,64]"), In("f16[8,4,64]")}, 1, "n", "tessera");
  EXPECT_INFER_ERROR(Run(r), "tessera.FusedAttention", "rank 4");
  Node* m = Op("FusedAttention", {In("f16[1,8,4,64]"), In("f16[1,8,5,64]"), In("f16[1,8,5,64]"), In("bool[4,4]")},
               1, "n", "tessera");
  EXPECT_INFER_ERROR(Run(m), "tessera.FusedAttention", "mask");
}

// ---------------------------------------------------------------- reductions

TEST_F(InferTest, ReduceSumAxesAttributeBeforeOpset13InputAfter) {
  g.set_opset("", 11);
  Node* a = Op("ReduceSum", {In("f32[2,3,4]")}, 1, "a");
  a->set_attr("axes", Attribute::Ints({1}));
  a->set_attr("keepdims", Attribute::Int(0));
  EXPECT_EQ(Run(a), "f32[2,4]");
  EXPECT_INFER_ERROR(Run(Op("ReduceSum", {In("f32[2,3,4]"), I64({1})})), "ReduceSum",
                     "as an attribute before opset 13");

  Graph g13;
  g13.set_opset("", 13);
  Node* b = g13.AddNode("ReduceSum", {g13.AddValue("x", TT("f32[2,3,4]")),
                                      g13.AddConstant("ax", Tensor::FromVector<int64_t>(DType::kI64, {2}, {-1, 0}))},
                        1, "b");
  ASSERT_TRUE(InferNodeTypes(*b).ok());
  EXPECT_EQ(b->output(0)->type().ToString(), "f32[1,3,1]");
  Node* c = g13.AddNode("ReduceSum", {g13.FindValue("x")}, 1, "n");
  c->set_attr("axes", Attribute::Ints({1}));
  Status st = InferNodeTypes(*c);
  EXPECT_NE(st.message().find("as input 1 since opset 13"), std::string::npos) << st.message();
}

TEST_F(InferTest, ReduceNoopWithEmptyAxesAndAllAxes) {
  g.set_opset("", 13);
  Node* a = Op("ReduceSum", {In("f32[2,3]")}, 1, "a");
  a->set_attr("noop_with_empty_axes", Attribute::Int(1));
  EXPECT_EQ(Run(a), "f32[2,3]");
  EXPECT_EQ(Run(Op("ReduceSum", {In("f32[2,3]")}, 1, "b")), "f32[1,1]");
  EXPECT_EQ(Run(Op("ReduceSum", {In("f32[2,3]"), In("i64[1]")}, 1, "c")), "f32[?,?]");  // axes not constant
}

TEST_F(InferTest, ReduceMeanAxesInputFromOpset18) {
  g.set_opset("", 17);
  Node* a = Op("ReduceMean", {In("f32[batch,3,4]")}, 1, "a");
  a->set_attr("axes", Attribute::Ints({-1}));
  EXPECT_EQ(Run(a), "f32[batch,3,1]");
  g.set_opset("", 18);
  Node* b = Op("ReduceMax", {In("f32[batch,3,4]"), I64({1, 2})}, 1, "b");
  b->set_attr("keepdims", Attribute::Int(0));
  EXPECT_EQ(Run(b), "f32[batch]");
  EXPECT_INFER_ERROR(Run(Op("ReduceMin", {In("f32[2,3]"), I64({1, -1})})), "ReduceMin", "appears twice");
  EXPECT_INFER_ERROR(Run(Op("ReduceProd", {In("f32[2,3]"), I64({2})})), "ReduceProd", "out of range");
}

TEST_F(InferTest, ReduceL2AllAxes) {
  EXPECT_EQ(Run(Op("ReduceL2", {In("f32[2,3,4]")})), "f32[1,1,1]");
}

TEST_F(InferTest, ArgMaxArgMin) {
  Node* a = Op("ArgMax", {In("f32[2,3,4]")}, 1, "a");
  a->set_attr("axis", Attribute::Int(1));
  a->set_attr("keepdims", Attribute::Int(0));
  EXPECT_EQ(Run(a), "i64[2,4]");
  EXPECT_EQ(Run(Op("ArgMin", {In("f32[seq,3]")}, 1, "b")), "i64[1,3]");
  Node* c = Op("ArgMax", {In("f32[2,3]")});
  c->set_attr("axis", Attribute::Int(-3));
  EXPECT_INFER_ERROR(Run(c), "ArgMax", "out of range");
}

// ---------------------------------------------------------------- Reshape, Flatten, Transpose

TEST_F(InferTest, ReshapeZeroAndMinusOne) {
  EXPECT_EQ(Run(Op("Reshape", {In("f32[2,3,4]"), I64({0, -1})}, 1, "a")), "f32[2,12]");
  EXPECT_EQ(Run(Op("Reshape", {In("f32[2,3,4]"), I64({-1})}, 1, "b")), "f32[24]");
  EXPECT_EQ(Run(Op("Reshape", {In("f32[2,3,4]"), I64({4, 0, 2})}, 1, "c")), "f32[4,3,2]");
}

TEST_F(InferTest, ReshapeSymbolic) {
  // The symbol is copied by 0, so -1 can still be computed.
  EXPECT_EQ(Run(Op("Reshape", {In("f32[batch,3,4]"), I64({0, -1})}, 1, "a")), "f32[batch,12]");
  // -1 absorbs the symbolic dim: unknown.
  EXPECT_EQ(Run(Op("Reshape", {In("f32[batch,3,4]"), I64({-1, 12})}, 1, "b")), "f32[?,12]");
  EXPECT_EQ(Run(Op("Reshape", {In("f32[*]"), I64({3, -1})}, 1, "c")), "f32[3,?]");
}

TEST_F(InferTest, ReshapeNonConstantShapeGivesRank) {
  EXPECT_EQ(Run(Op("Reshape", {In("f32[2,3,4]"), In("i64[3]")}, 1, "a")), "f32[?,?,?]");
  EXPECT_EQ(Run(Op("Reshape", {In("f32[2,3,4]"), In("i64[n]")}, 1, "b")), "f32[*]");
}

TEST_F(InferTest, ReshapeAllowZero) {
  g.set_opset("", 14);
  Node* a = Op("Reshape", {In("f32[0,3]"), I64({3, 0})}, 1, "a");
  a->set_attr("allowzero", Attribute::Int(1));
  EXPECT_EQ(Run(a), "f32[3,0]");
  Node* b = Op("Reshape", {In("f32[0,3]"), I64({0, -1})}, 1, "n");
  b->set_attr("allowzero", Attribute::Int(1));
  EXPECT_INFER_ERROR(Run(b), "Reshape", "both 0 and -1");
}

TEST_F(InferTest, ReshapeErrors) {
  EXPECT_INFER_ERROR(Run(Op("Reshape", {In("f32[2,3,4]"), I64({5, -1})})), "Reshape", "element counts differ");
  EXPECT_INFER_ERROR(Run(Op("Reshape", {In("f32[2,3,4]"), I64({5, 5})})), "Reshape", "element counts differ");
  EXPECT_INFER_ERROR(Run(Op("Reshape", {In("f32[batch,12]"), I64({0, 13})})), "Reshape", "element counts differ");
  EXPECT_INFER_ERROR(Run(Op("Reshape", {In("f32[24]"), I64({-1, -1})})), "Reshape", "more than one -1");
  EXPECT_INFER_ERROR(Run(Op("Reshape", {In("f32[24]"), I64({-2, 12})})), "Reshape", "invalid dim -2");
  EXPECT_INFER_ERROR(Run(Op("Reshape", {In("f32[24]"), I64({4, 0})})), "Reshape", "no dim to copy");
  Status st = InferNodeTypes(*Op("Reshape", {In("f32[*]"), I64({int64_t{1} << 40, int64_t{1} << 40})}));
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
  EXPECT_NE(st.message().find("node 'n' (Reshape)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("overflows"), std::string::npos) << st.message();
}

TEST_F(InferTest, Flatten) {
  Node* a = Op("Flatten", {In("f32[2,3,4,5]")}, 1, "a");
  a->set_attr("axis", Attribute::Int(2));
  EXPECT_EQ(Run(a), "f32[6,20]");
  Node* b = Op("Flatten", {In("f32[2,3,4,5]")}, 1, "b");
  b->set_attr("axis", Attribute::Int(0));
  EXPECT_EQ(Run(b), "f32[1,120]");
  EXPECT_EQ(Run(Op("Flatten", {In("f32[batch,3,4]")}, 1, "c")), "f32[batch,12]");
  EXPECT_EQ(Run(Op("Flatten", {In("f32[3,batch,4]")}, 1, "d")), "f32[3,?]");
  Node* e = Op("Flatten", {In("f32[2,3]")});
  e->set_attr("axis", Attribute::Int(3));
  EXPECT_INFER_ERROR(Run(e), "Flatten", "out of range");
}

TEST_F(InferTest, Transpose) {
  EXPECT_EQ(Run(Op("Transpose", {In("f32[2,batch,4]")}, 1, "a")), "f32[4,batch,2]");
  Node* b = Op("Transpose", {In("f32[2,3,4,5]")}, 1, "b");
  b->set_attr("perm", Attribute::Ints({0, 2, 3, 1}));
  EXPECT_EQ(Run(b), "f32[2,4,5,3]");
  Node* c = Op("Transpose", {In("f32[2,3]")});
  c->set_attr("perm", Attribute::Ints({0, 0}));
  EXPECT_INFER_ERROR(Run(c), "Transpose", "not a permutation");
  c->set_attr("perm", Attribute::Ints({0, 1, 2}));
  EXPECT_INFER_ERROR(Run(c), "Transpose", "perm has 3 entries");
}

// ---------------------------------------------------------------- Squeeze / Unsqueeze

TEST_F(InferTest, SqueezeOpset11AttributeVsOpset13Input) {
  g.set_opset("", 11);
  Node* a = Op("Squeeze", {In("f32[1,3,1,4]")}, 1, "a");
  a->set_attr("axes", Attribute::Ints({0, -2}));
  EXPECT_EQ(Run(a), "f32[3,4]");
  EXPECT_INFER_ERROR(Run(Op("Squeeze", {In("f32[1,3]"), I64({0})})), "Squeeze", "before opset 13");

  g.set_opset("", 13);
  EXPECT_EQ(Run(Op("Squeeze", {In("f32[1,3,1,4]"), I64({2})}, 1, "b")), "f32[1,3,4]");
  Node* c = Op("Squeeze", {In("f32[1,3]")}, 1, "n");
  c->set_attr("axes", Attribute::Ints({0}));
  EXPECT_INFER_ERROR(Run(c), "Squeeze", "since opset 13");
}

TEST_F(InferTest, SqueezeWithoutAxesAndErrors) {
  EXPECT_EQ(Run(Op("Squeeze", {In("f32[1,3,1]")}, 1, "a")), "f32[3]");
  EXPECT_EQ(Run(Op("Squeeze", {In("f32[1,batch]")}, 1, "b")), "f32[*]");  // batch might be 1
  EXPECT_EQ(Run(Op("Squeeze", {In("f32[batch,3]"), I64({0})}, 1, "c")), "f32[3]");
  EXPECT_INFER_ERROR(Run(Op("Squeeze", {In("f32[2,3]"), I64({1})})), "Squeeze", "cannot squeeze axis 1 of size 3");
}

TEST_F(InferTest, UnsqueezeVersions) {
  g.set_opset("", 11);
  Node* a = Op("Unsqueeze", {In("f32[3,4]")}, 1, "a");
  a->set_attr("axes", Attribute::Ints({0, 3}));
  EXPECT_EQ(Run(a), "f32[1,3,4,1]");
  EXPECT_INFER_ERROR(Run(Op("Unsqueeze", {In("f32[3]")})), "Unsqueeze", "axes is required");
  g.set_opset("", 13);
  EXPECT_EQ(Run(Op("Unsqueeze", {In("f32[batch,4]"), I64({-1, 1})}, 1, "b")), "f32[batch,1,4,1]");
  EXPECT_EQ(Run(Op("Unsqueeze", {In("f32[]"), I64({0})}, 1, "c")), "f32[1]");
  EXPECT_INFER_ERROR(Run(Op("Unsqueeze", {In("f32[3]"), I64({0, 0})})), "Unsqueeze", "appears twice");
  EXPECT_INFER_ERROR(Run(Op("Unsqueeze", {In("f32[3]"), I64({2})})), "Unsqueeze", "out of range");
}

// ---------------------------------------------------------------- Concat / Split / Slice

TEST_F(InferTest, Concat) {
  Node* a = Op("Concat", {In("f32[2,3]"), In("f32[2,5]"), In("f32[2,1]")}, 1, "a");
  a->set_attr("axis", Attribute::Int(-1));
  EXPECT_EQ(Run(a), "f32[2,9]");
  Node* b = Op("Concat", {In("f32[batch,3]"), In("f32[?,5]")}, 1, "b");
  b->set_attr("axis", Attribute::Int(1));
  EXPECT_EQ(Run(b), "f32[batch,8]");
  Node* c = Op("Concat", {In("f32[seq,3]"), In("f32[2,3]")}, 1, "c");
  c->set_attr("axis", Attribute::Int(0));
  EXPECT_EQ(Run(c), "f32[?,3]");
}

TEST_F(InferTest, ConcatErrors) {
  Node* a = Op("Concat", {In("f32[2,3]"), In("f32[4,5]")});
  a->set_attr("axis", Attribute::Int(1));
  EXPECT_INFER_ERROR(Run(a), "Concat", "differs at dim 0");
  Node* b = Op("Concat", {In("f32[2,3]"), In("i64[2,3]")});
  b->set_attr("axis", Attribute::Int(0));
  EXPECT_INFER_ERROR(Run(b), "Concat", "dtypes differ");
  EXPECT_INFER_ERROR(Run(Op("Concat", {In("f32[2,3]")})), "Concat", "axis is required");
  Node* c = Op("Concat", {In("f32[2,3]"), In("f32[2,3,1]")});
  c->set_attr("axis", Attribute::Int(0));
  EXPECT_INFER_ERROR(Run(c), "Concat", "ranks differ");
}

TEST_F(InferTest, SplitOpset13InputVsOpset11Attribute) {
  g.set_opset("", 13);
  Node* a = Op("Split", {In("f32[4,5]"), I64({2, 3})}, 2, "a");
  a->set_attr("axis", Attribute::Int(1));
  EXPECT_EQ(Run(a), "f32[4,2] f32[4,3]");
  EXPECT_EQ(Run(Op("Split", {In("f32[6,batch]")}, 3, "b")), "f32[2,batch] f32[2,batch] f32[2,batch]");
  EXPECT_INFER_ERROR(Run(Op("Split", {In("f32[5]")}, 2)), "Split", "evenly");
  EXPECT_INFER_ERROR(Run(Op("Split", {In("f32[5]"), I64({2, 2})}, 2)), "Split", "add up to 4");
  EXPECT_INFER_ERROR(Run(Op("Split", {In("f32[5]"), I64({5})}, 2)), "Split", "1 sizes but the node has 2");
  g.set_opset("", 11);
  Node* c = Op("Split", {In("f32[7]")}, 2, "c");
  c->set_attr("split", Attribute::Ints({3, 4}));
  EXPECT_EQ(Run(c), "f32[3] f32[4]");
}

TEST_F(InferTest, SplitOpset18NumOutputs) {
  g.set_opset("", 18);
  Node* a = Op("Split", {In("f32[2,5]")}, 2, "a");
  a->set_attr("axis", Attribute::Int(1));
  a->set_attr("num_outputs", Attribute::Int(2));
  EXPECT_EQ(Run(a), "f32[2,3] f32[2,2]");  // opset 18: the last chunk is smaller
  Node* b = Op("Split", {In("f32[5]")}, 3);
  b->set_attr("num_outputs", Attribute::Int(2));
  EXPECT_INFER_ERROR(Run(b), "Split", "num_outputs is 2 but the node has 3");
  EXPECT_EQ(Run(Op("Split", {In("f32[5]"), In("i64[2]")}, 2, "c")), "f32[?] f32[?]");
}

TEST_F(InferTest, SliceConstantInputs) {
  g.set_opset("", 13);
  EXPECT_EQ(Run(Op("Slice", {In("f32[4,10]"), I64({1}), I64({kMax}), I64({1}), I64({2})}, 1, "a")), "f32[4,5]");
  // Reverse the whole axis: start -1, end INT64_MIN, step -1.
  EXPECT_EQ(Run(Op("Slice", {In("f32[4,10]"), I64({-1}), I64({kMin}), I64({0}), I64({-1})}, 1, "b")), "f32[4,10]");
  // Out-of-range starts/ends are clamped.
  EXPECT_EQ(Run(Op("Slice", {In("f32[4,10]"), I64({-100, 2}), I64({100, -2})}, 1, "c")), "f32[4,6]");
  EXPECT_EQ(Run(Op("Slice", {In("f32[4,10]"), I64({5}), I64({2}), I64({1})}, 1, "d")), "f32[4,0]");
  EXPECT_EQ(Run(Op("Slice", {In("f32[10]"), I64({8}), I64({1}), I64({0}), I64({-3})}, 1, "e")), "f32[3]");
  EXPECT_EQ(Run(Op("Slice", {In("f32[batch,10]"), I64({0, 2}), I64({kMax, 4})}, 1, "f")), "f32[batch,2]");
  EXPECT_EQ(Run(Op("Slice", {In("f32[batch,10]"), I64({1}), I64({kMax})}, 1, "h")), "f32[?,10]");
}

TEST_F(InferTest, SliceNonConstantAndOldOpset) {
  g.set_opset("", 13);
  EXPECT_EQ(Run(Op("Slice", {In("f32[4,10,3]"), In("i64[1]"), In("i64[1]"), I64({1})}, 1, "a")), "f32[4,?,3]");
  EXPECT_EQ(Run(Op("Slice", {In("f32[4,10]"), In("i64[1]"), In("i64[1]")}, 1, "b")), "f32[?,?]");
  g.set_opset("", 9);
  Node* c = Op("Slice", {In("f32[4,10]")}, 1, "c");
  c->set_attr("starts", Attribute::Ints({1}));
  c->set_attr("ends", Attribute::Ints({-1}));
  c->set_attr("axes", Attribute::Ints({1}));
  EXPECT_EQ(Run(c), "f32[4,8]");
}

TEST_F(InferTest, SliceErrors) {
  g.set_opset("", 13);
  EXPECT_INFER_ERROR(Run(Op("Slice", {In("f32[4]"), I64({0}), I64({2}), I64({0}), I64({0})})), "Slice", "step");
  EXPECT_INFER_ERROR(Run(Op("Slice", {In("f32[4]"), I64({0}), I64({2, 3})})), "Slice", "ends has 2");
  EXPECT_INFER_ERROR(Run(Op("Slice", {In("f32[4]"), I64({0}), I64({2}), I64({1})})), "Slice", "out of range");
  EXPECT_INFER_ERROR(Run(Op("Slice", {In("f32[4]")})), "Slice", "starts and ends are required");
}

TEST_F(InferTest, HostileValuesGiveErrorsNotCrashes) {
  g.set_opset("", 13);
  // Negative step over an empty axis.
  EXPECT_EQ(Run(Op("Slice", {In("f32[0,3]"), I64({-1}), I64({kMin}), I64({0}), I64({-1})}, 1, "a")), "f32[0,3]");
  EXPECT_EQ(Run(Op("Slice", {In("f32[6]"), I64({kMax}), I64({kMin}), I64({0}), I64({kMin})}, 1, "b")), "f32[1]");
  Node* conv = Op("Conv", {In("f32[1,1,8]"), In("f32[1,1,?]")});
  conv->set_attr("kernel_shape", Attribute::Ints({int64_t{1} << 62}));
  conv->set_attr("dilations", Attribute::Ints({8}));
  Status st = InferNodeTypes(*conv);
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange) << st.message();
  EXPECT_NE(st.message().find("node 'n' (Conv)"), std::string::npos) << st.message();
  EXPECT_INFER_ERROR(Run(Op("Range", {ScalarI64(kMin), ScalarI64(kMax), ScalarI64(1)})), "Range", "too many");
  EXPECT_INFER_ERROR(Run(Op("Range", {ScalarF32(0.f), ScalarF32(1.f), ScalarF32(1e-30f)})), "Range", "too many");
  Node* split = Op("Split", {In("f32[9223372036854775807]")}, 2);
  EXPECT_INFER_ERROR(Run(split), "Split", "evenly");
  g.set_opset("", 18);
  EXPECT_EQ(Run(Op("Split", {In("f32[9223372036854775807]")}, 2, "c")),
            "f32[4611686018427387904] f32[4611686018427387903]");
  EXPECT_EQ(Run(Op("Conv", {In("f32[batch,3,8,8]"), In("f32[*]")}, 1, "d")), "f32[batch,?,?,?]");
}

// ---------------------------------------------------------------- Gather / Expand / Tile / Pad / Trilu

TEST_F(InferTest, Gather) {
  Node* a = Op("Gather", {In("f32[5,6]"), In("i64[2,3]")}, 1, "a");
  a->set_attr("axis", Attribute::Int(1));
  EXPECT_EQ(Run(a), "f32[5,2,3]");
  EXPECT_EQ(Run(Op("Gather", {In("f32[vocab,768]"), In("i32[batch,seq]")}, 1, "b")), "f32[batch,seq,768]");
  EXPECT_EQ(Run(Op("Gather", {In("f32[5,6]"), ScalarI64(-5)}, 1, "c")), "f32[6]");
  EXPECT_INFER_ERROR(Run(Op("Gather", {In("f32[5,6]"), ScalarI64(5)})), "Gather", "index 5 is out of range");
  EXPECT_INFER_ERROR(Run(Op("Gather", {In("f32[5,6]"), In("f32[2]")})), "Gather", "indices has dtype f32");
}

TEST_F(InferTest, GatherElements) {
  Node* a = Op("GatherElements", {In("f32[3,4]"), In("i64[3,2]")}, 1, "a");
  a->set_attr("axis", Attribute::Int(1));
  EXPECT_EQ(Run(a), "f32[3,2]");
  EXPECT_INFER_ERROR(Run(Op("GatherElements", {In("f32[3,4]"), In("i64[3]")})), "GatherElements", "same rank");
}

TEST_F(InferTest, Expand) {
  EXPECT_EQ(Run(Op("Expand", {In("f32[3,1]"), I64({2, 1, 6})}, 1, "a")), "f32[2,3,6]");
  EXPECT_EQ(Run(Op("Expand", {In("f32[3,1]"), In("i64[2]")}, 1, "b")), "f32[3,?]");
  EXPECT_INFER_ERROR(Run(Op("Expand", {In("f32[3,2]"), I64({4})})), "Expand", "cannot broadcast");
  EXPECT_INFER_ERROR(Run(Op("Expand", {In("f32[3,2]"), I64({-1, 2})})), "Expand", "negative");
}

TEST_F(InferTest, Tile) {
  EXPECT_EQ(Run(Op("Tile", {In("f32[2,3]"), I64({2, 1})}, 1, "a")), "f32[4,3]");
  EXPECT_EQ(Run(Op("Tile", {In("f32[batch,3]"), I64({1, 4})}, 1, "b")), "f32[batch,12]");
  EXPECT_EQ(Run(Op("Tile", {In("f32[batch,3]"), In("i64[2]")}, 1, "c")), "f32[?,?]");
  EXPECT_INFER_ERROR(Run(Op("Tile", {In("f32[2,3]"), I64({2})})), "Tile", "repeats has 1 values");
  EXPECT_INFER_ERROR(Run(Op("Tile", {In("f32[2,3]"), I64({2, -1})})), "Tile", "negative");
  Status st = InferNodeTypes(*Op("Tile", {In("f32[4611686018427387904]"), I64({4})}, 1, "n"));
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
}

TEST_F(InferTest, PadVersions) {
  g.set_opset("", 10);
  Node* a = Op("Pad", {In("f32[3,4]")}, 1, "a");
  a->set_attr("pads", Attribute::Ints({1, 0, 1, 2}));
  EXPECT_EQ(Run(a), "f32[5,6]");
  g.set_opset("", 13);
  EXPECT_EQ(Run(Op("Pad", {In("f32[3,4]"), I64({0, 1, 0, 2}), ScalarF32(0.f)}, 1, "b")), "f32[3,7]");
  EXPECT_EQ(Run(Op("Pad", {In("f32[3,4]"), I64({0, -1, 0, -1})}, 1, "c")), "f32[3,2]");  // negative pads crop
  EXPECT_EQ(Run(Op("Pad", {In("f32[batch,4]"), In("i64[4]")}, 1, "d")), "f32[?,?]");
  g.set_opset("", 18);
  EXPECT_EQ(Run(Op("Pad", {In("f32[batch,4]"), I64({1, 1}), nullptr, I64({-1})}, 1, "e")), "f32[batch,6]");
}

TEST_F(InferTest, PadErrors) {
  EXPECT_INFER_ERROR(Run(Op("Pad", {In("f32[3,4]"), I64({1, 1})})), "Pad", "expected 4");
  EXPECT_INFER_ERROR(Run(Op("Pad", {In("f32[3,4]"), I64({0, -3, 0, -3})})), "Pad", "negative size");
  EXPECT_INFER_ERROR(Run(Op("Pad", {In("f32[3,4]"), I64({0, 0, 0, 0}), ScalarI64(1)})), "Pad", "constant_value");
  Node* m = Op("Pad", {In("f32[3,4]"), I64({0, 0, 0, 0})});
  m->set_attr("mode", Attribute::String("mirror"));
  EXPECT_INFER_ERROR(Run(m), "Pad", "unknown mode");
  g.set_opset("", 13);
  EXPECT_INFER_ERROR(Run(Op("Pad", {In("f32[3,4]"), I64({1, 1}), nullptr, I64({0})})), "Pad", "before opset 18");
}

TEST_F(InferTest, Trilu) {
  EXPECT_EQ(Run(Op("Trilu", {In("f32[batch,4,4]"), ScalarI64(1)}, 1, "a")), "f32[batch,4,4]");
  EXPECT_INFER_ERROR(Run(Op("Trilu", {In("f32[4]")})), "Trilu", "rank >= 2");
}

// ---------------------------------------------------------------- Cast, Shape, constants, Range

TEST_F(InferTest, CastAndCastLike) {
  Node* a = Op("Cast", {In("f32[2,batch]")}, 1, "a");
  a->set_attr("to", Attribute::Int(static_cast<int64_t>(DType::kF16)));
  EXPECT_EQ(Run(a), "f16[2,batch]");
  EXPECT_EQ(Run(Op("CastLike", {In("i32[3]"), In("bf16[]")}, 1, "b")), "bf16[3]");
  Node* c = Op("Cast", {In("f32[2]")});
  c->set_attr("to", Attribute::Int(99));
  EXPECT_INFER_ERROR(Run(c), "Cast", "not a supported dtype");
  c->remove_attr("to");
  EXPECT_INFER_ERROR(Run(c), "Cast", "'to' is required");
}

TEST_F(InferTest, ShapeStartEndFromOpset15) {
  g.set_opset("", 15);
  Node* a = Op("Shape", {In("f32[1,2,3,4]")}, 1, "a");
  a->set_attr("start", Attribute::Int(1));
  a->set_attr("end", Attribute::Int(-1));
  EXPECT_EQ(Run(a), "i64[2]");
  Node* b = Op("Shape", {In("f32[1,2,3,4]")}, 1, "b");
  b->set_attr("start", Attribute::Int(-100));
  b->set_attr("end", Attribute::Int(100));
  EXPECT_EQ(Run(b), "i64[4]");
  EXPECT_EQ(Run(Op("Shape", {In("f32[*]")}, 1, "c")), "i64[?]");
  g.set_opset("", 13);
  Node* d = Op("Shape", {In("f32[1,2,3,4]")}, 1, "d");
  d->set_attr("start", Attribute::Int(1));
  EXPECT_EQ(Run(d), "i64[4]");  // start/end did not exist before opset 15
}

TEST_F(InferTest, SizeIdentityConstant) {
  EXPECT_EQ(Run(Op("Size", {In("f32[2,3]")}, 1, "a")), "i64[]");
  EXPECT_EQ(Run(Op("Identity", {In("u8[batch]")}, 1, "b")), "u8[batch]");
  Node* c = Op("Constant", {}, 1, "c");
  c->set_attr("value", Attribute::FromTensor(Tensor::FromVector<float>(DType::kF32, {2, 2}, {1, 2, 3, 4})));
  EXPECT_EQ(Run(c), "f32[2,2]");
  Node* d = Op("Constant", {}, 1, "d");
  d->set_attr("value_ints", Attribute::Ints({1, 2, 3}));
  EXPECT_EQ(Run(d), "i64[3]");
  Node* e = Op("Constant", {}, 1, "e");
  e->set_attr("value_float", Attribute::Float(1.f));
  EXPECT_EQ(Run(e), "f32[]");
  Node* f = Op("Constant", {});
  EXPECT_INFER_ERROR(Run(f), "Constant", "exactly one");
}

TEST_F(InferTest, ConstantOfShape) {
  Node* a = Op("ConstantOfShape", {I64({2, 3})}, 1, "a");
  a->set_attr("value", Attribute::FromTensor(Tensor::FromVector<int64_t>(DType::kI64, {1}, {7})));
  EXPECT_EQ(Run(a), "i64[2,3]");
  EXPECT_EQ(Run(Op("ConstantOfShape", {I64({})}, 1, "b")), "f32[]");
  EXPECT_EQ(Run(Op("ConstantOfShape", {In("i64[3]")}, 1, "c")), "f32[?,?,?]");
  EXPECT_INFER_ERROR(Run(Op("ConstantOfShape", {I64({2, -3})})), "ConstantOfShape", "negative");
}

TEST_F(InferTest, Range) {
  EXPECT_EQ(Run(Op("Range", {ScalarI64(0), ScalarI64(10), ScalarI64(3)}, 1, "a")), "i64[4]");
  EXPECT_EQ(Run(Op("Range", {ScalarI64(10), ScalarI64(0), ScalarI64(-3)}, 1, "b")), "i64[4]");
  EXPECT_EQ(Run(Op("Range", {ScalarI64(5), ScalarI64(0), ScalarI64(1)}, 1, "c")), "i64[0]");
  EXPECT_EQ(Run(Op("Range", {ScalarF32(1.f), ScalarF32(2.f), ScalarF32(0.3f)}, 1, "d")), "f32[4]");
  EXPECT_EQ(Run(Op("Range", {ScalarI64(0), In("i64[]"), ScalarI64(1)}, 1, "e")), "i64[?]");
  EXPECT_EQ(Run(Op("Range", {ScalarI64(0), In("i64[?]"), ScalarI64(1)}, 1, "f")), "i64[?]");  // may be [1]
  EXPECT_INFER_ERROR(Run(Op("Range", {ScalarI64(0), In("i64[2]"), ScalarI64(1)})), "Range", "must be a scalar");
  EXPECT_INFER_ERROR(Run(Op("Range", {ScalarI64(0), ScalarI64(5), ScalarI64(0)})), "Range", "delta is 0");
  EXPECT_INFER_ERROR(Run(Op("Range", {ScalarI64(0), ScalarF32(5), ScalarI64(1)})), "Range", "limit has dtype f32");
}

// ---------------------------------------------------------------- control flow

std::shared_ptr<Graph> Branch(const std::string& type, Graph* parent) {
  auto b = std::make_shared<Graph>();
  b->set_parent(parent);
  Value* v = b->AddValue("out", TT(type));
  b->AddInput(v);  // stands in for a producer; only the declared output type matters here
  b->AddOutput(v);
  return b;
}

TEST_F(InferTest, IfOutputsFromBranchTypes) {
  Node* n = Op("If", {In("bool[]")}, 1, "a");
  n->set_attr("then_branch", Attribute::FromGraph(Branch("f32[2,3]", &g)));
  n->set_attr("else_branch", Attribute::FromGraph(Branch("f32[2,4]", &g)));
  EXPECT_EQ(Run(n), "f32[2,?]");
  Node* m = Op("If", {In("bool[1]")}, 1, "b");
  m->set_attr("then_branch", Attribute::FromGraph(Branch("i64[batch]", &g)));
  m->set_attr("else_branch", Attribute::FromGraph(Branch("?", &g)));
  EXPECT_EQ(Run(m), "i64[batch]");
}

TEST_F(InferTest, IfErrors) {
  Node* n = Op("If", {In("bool[]")});
  n->set_attr("then_branch", Attribute::FromGraph(Branch("f32[2]", &g)));
  EXPECT_INFER_ERROR(Run(n), "If", "else_branch");
  n->set_attr("else_branch", Attribute::FromGraph(Branch("i32[2]", &g)));
  EXPECT_INFER_ERROR(Run(n), "If", "f32 in then_branch but i32 in else_branch");
  Node* m = Op("If", {In("f32[]")});
  m->set_attr("then_branch", Attribute::FromGraph(Branch("f32[2]", &g)));
  m->set_attr("else_branch", Attribute::FromGraph(Branch("f32[2]", &g)));
  EXPECT_INFER_ERROR(Run(m), "If", "cond has dtype f32");
}

TEST_F(InferTest, LoopOutputsFromBody) {
  // body(iter, cond, acc) -> (cond, acc, scan); the scan output stacks [3] per iteration.
  auto body = std::make_shared<Graph>();
  body->set_parent(&g);
  Value* it = body->AddValue("it", TT("i64[]"));
  Value* cond = body->AddValue("c", TT("bool[]"));
  Value* acc = body->AddValue("acc", TT("f32[3]"));
  for (Value* v : {it, cond, acc}) body->AddInput(v);
  Node* add = body->AddNode("Add", {acc, acc}, 1, "add");
  body->SetOutputs({cond, add->output(0), add->output(0)});
  ASSERT_TRUE(InferGraphTypes(*body).ok());
  Node* n = Op("Loop", {ScalarI64(5), nullptr, In("f32[3]")}, 2, "n");
  n->set_attr("body", Attribute::FromGraph(body));
  EXPECT_EQ(Run(n), "f32[3] f32[?,3]");
  // A carried value whose shape differs between entry and body output: unknown dims.
  Node* grow = Op("Loop", {ScalarI64(5), nullptr, In("f32[2]")}, 2, "grow");
  grow->set_attr("body", Attribute::FromGraph(body));
  EXPECT_EQ(Run(grow), "f32[?] f32[?,3]");
  Node* bad = Op("Loop", {ScalarI64(5), nullptr, In("i32[3]")}, 2, "n");
  bad->set_attr("body", Attribute::FromGraph(body));
  EXPECT_INFER_ERROR(Run(bad), "Loop", "enters as i32 but the body returns f32");
}

// ---------------------------------------------------------------- whole graphs

TEST(InferGraphTypesTest, ConvNetWithSymbolicBatch) {
  Graph g;
  g.set_name("net");
  Value* x = g.AddValue("x", TT("f32[batch,3,32,32]"));
  g.AddInput(x);
  Value* w = g.AddConstant("w", Tensor::Zeros(DType::kF32, {8, 3, 3, 3}).value());
  Value* fcw = g.AddConstant("fcw", Tensor::Zeros(DType::kF32, {8, 10}).value());
  Node* conv = g.AddNode("Conv", {x, w}, 1, "conv");
  conv->set_attr("pads", Attribute::Ints({1, 1, 1, 1}));
  Node* relu = g.AddNode("Relu", {conv->output(0)}, 1, "relu");
  Node* gap = g.AddNode("GlobalAveragePool", {relu->output(0)}, 1, "gap");
  Node* flat = g.AddNode("Flatten", {gap->output(0)}, 1, "flat");
  Node* fc = g.AddNode("MatMul", {flat->output(0), fcw}, 1, "fc");
  Node* sm = g.AddNode("Softmax", {fc->output(0)}, 1, "sm");
  g.AddOutput(sm->output(0));
  ASSERT_TRUE(InferGraphTypes(g).ok());
  EXPECT_EQ(conv->output(0)->type().ToString(), "f32[batch,8,32,32]");
  EXPECT_EQ(flat->output(0)->type().ToString(), "f32[batch,8]");
  EXPECT_EQ(sm->output(0)->type().ToString(), "f32[batch,10]");
}

TEST(InferGraphTypesTest, ListsEveryUnknownOpAtOnce) {
  Graph g;
  g.set_name("m");
  Value* x = g.AddValue("x", TT("f32[2]"));
  g.AddInput(x);
  Node* a = g.AddNode("Foo", {x}, 1, "a");
  Node* r = g.AddNode("Relu", {a->output(0)}, 1, "r");
  g.AddNode("Bar", {r->output(0)}, 1, "b", "com.example");
  Status st = InferGraphTypes(g);
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("'a' (Foo)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("'b' (com.example.Bar)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("2 nodes"), std::string::npos) << st.message();
  EXPECT_FALSE(r->output(0)->type().shape.has_rank());  // nothing was inferred
}

TEST(InferGraphTypesTest, StopsAtFirstFailingNode) {
  Graph g;
  Value* a = g.AddValue("a", TT("f32[2,3]"));
  Value* b = g.AddValue("b", TT("f32[4]"));
  g.AddInput(a);
  g.AddInput(b);
  Node* r = g.AddNode("Relu", {a}, 1, "r");
  Node* add = g.AddNode("Add", {r->output(0), b}, 1, "bad_add");
  Node* after = g.AddNode("Relu", {add->output(0)}, 1, "after");
  Status st = InferGraphTypes(g);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("node 'bad_add' (Add)"), std::string::npos) << st.message();
  EXPECT_EQ(r->output(0)->type().ToString(), "f32[2,3]");
  EXPECT_FALSE(after->output(0)->type().shape.has_rank());
}

TEST(InferGraphTypesTest, InfersInsideIfBranchesFirst) {
  Graph g;
  g.set_opset("", 17);
  Value* cond = g.AddValue("cond", TT("bool[]"));
  Value* x = g.AddValue("x", TT("f32[batch,4]"));
  g.AddInput(cond);
  g.AddInput(x);
  auto then_g = std::make_shared<Graph>();
  then_g->set_name("then");
  Node* t = then_g->AddNode("Relu", {x}, 1, "t");  // reads x from the enclosing graph
  then_g->AddOutput(t->output(0));
  auto else_g = std::make_shared<Graph>();
  else_g->set_name("else");
  Node* e = else_g->AddNode("Transpose", {x}, 1, "e");
  else_g->AddOutput(e->output(0));
  Node* n = g.AddNode("If", {cond}, 1, "if");
  n->set_attr("then_branch", Attribute::FromGraph(then_g));
  n->set_attr("else_branch", Attribute::FromGraph(else_g));
  ASSERT_TRUE(InferGraphTypes(g).ok());
  EXPECT_EQ(then_g->parent(), &g);
  EXPECT_EQ(t->output(0)->type().ToString(), "f32[batch,4]");
  EXPECT_EQ(e->output(0)->type().ToString(), "f32[4,batch]");
  EXPECT_EQ(n->output(0)->type().ToString(), "f32[?,?]");

  // A shape error inside an If branch does not fail inference (the branch may
  // never be taken with these shapes); the If still gets its types.
  Node* inner = then_g->AddNode("Add", {x, g.AddValue("y", TT("i64[1]"))}, 1, "inner");
  ASSERT_TRUE(InferGraphTypes(g).ok());
  EXPECT_FALSE(inner->output(0)->type().shape.has_rank());
  EXPECT_EQ(n->output(0)->type().ToString(), "f32[?,?]");
}

TEST(InferGraphTypesTest, ErrorInsideLoopBodyNamesBodyAndNode) {
  Graph g;
  Value* x = g.AddValue("x", TT("f32[3]"));
  g.AddInput(x);
  auto body = std::make_shared<Graph>();
  Value* it = body->AddValue("it");  // untyped: seeded from the Loop (i64 scalar)
  Value* c = body->AddValue("c");    // bool scalar
  Value* acc = body->AddValue("acc");  // the carried value's type
  for (Value* v : {it, c, acc}) body->AddInput(v);
  Node* add = body->AddNode("Add", {acc, acc}, 1, "inner_add");
  body->SetOutputs({c, add->output(0)});
  Node* loop = g.AddNode("Loop", {g.AddConstant("M", Tensor::ScalarI64(4)), nullptr, x}, 1, "loop");
  loop->set_attr("body", Attribute::FromGraph(body));
  ASSERT_TRUE(InferGraphTypes(g).ok());
  EXPECT_EQ(it->type().ToString(), "i64[]");
  EXPECT_EQ(c->type().ToString(), "bool[]");
  EXPECT_EQ(add->output(0)->type().ToString(), "f32[3]");
  EXPECT_EQ(loop->output(0)->type().ToString(), "f32[3]");

  body->AddNode("Add", {acc, body->AddValue("bad", TT("i64[3]"))}, 1, "inner_bad");
  Status st = InferGraphTypes(g);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("in subgraph 'body' of node 'loop' (Loop)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("node 'inner_bad' (Add)"), std::string::npos) << st.message();
}

TEST(InferGraphTypesTest, ScanOpset9And8) {
  for (int opset : {9, 8}) {
    Graph g;
    g.set_opset("", opset);
    // State s: [4]; scan input xs: opset 9 [seq=5, 4], opset 8 [batch=2, seq=5, 4].
    Value* s0 = g.AddValue("s0", TT(opset == 9 ? "f32[4]" : "f32[2,4]"));
    Value* xs = g.AddValue("xs", TT(opset == 9 ? "f32[5,4]" : "f32[2,5,4]"));
    g.AddInput(s0);
    g.AddInput(xs);
    auto body = std::make_shared<Graph>();
    Value* s = body->AddValue("s");
    Value* xi = body->AddValue("xi");
    body->AddInput(s);
    body->AddInput(xi);
    Node* add = body->AddNode("Add", {s, xi}, 1, "add");
    body->SetOutputs({add->output(0), add->output(0)});
    std::vector<Value*> ins{s0, xs};
    if (opset == 8) ins.insert(ins.begin(), nullptr);  // no sequence_lens
    Node* scan = g.AddNode("Scan", ins, 2, "scan");
    scan->set_attr("body", Attribute::FromGraph(body));
    scan->set_attr("num_scan_inputs", Attribute::Int(1));
    ASSERT_TRUE(InferGraphTypes(g).ok()) << opset;
    EXPECT_EQ(xi->type().ToString(), "f32[4]") << opset;
    EXPECT_EQ(scan->output(0)->type().ToString(), opset == 9 ? "f32[4]" : "f32[2,4]");
    EXPECT_EQ(scan->output(1)->type().ToString(), opset == 9 ? "f32[5,4]" : "f32[2,5,4]");
  }
}

TEST(InferGraphTypesTest, UnknownOpInsideSubgraphIsListed) {
  Graph g;
  Value* cond = g.AddValue("cond", TT("bool[]"));
  g.AddInput(cond);
  auto body = std::make_shared<Graph>();
  Node* inner = body->AddNode("Mystery", {cond}, 1, "deep");
  body->AddOutput(inner->output(0));
  Node* n = g.AddNode("If", {cond}, 1, "if");
  n->set_attr("then_branch", Attribute::FromGraph(body));
  n->set_attr("else_branch", Attribute::FromGraph(body));
  Status st = InferGraphTypes(g);
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("'deep' (Mystery)"), std::string::npos) << st.message();
}

TEST(InferGraphTypesTest, RerunIsStable) {
  Graph g;
  Value* x = g.AddValue("x", TT("f32[batch,6]"));
  g.AddInput(x);
  Value* shape = g.AddConstant("s", Tensor::FromVector<int64_t>(DType::kI64, {3}, {0, 2, 3}));
  Node* r = g.AddNode("Reshape", {x, shape}, 1, "r");
  ASSERT_TRUE(InferGraphTypes(g).ok());
  ASSERT_TRUE(InferGraphTypes(g).ok());
  EXPECT_EQ(r->output(0)->type().ToString(), "f32[batch,2,3]");
}

}  // namespace
}  // namespace tessera
