// inline_control_flow: If/Loop/Scan with compile-time control become their
// bodies inline; the graph has no control-flow node left and the numbers
// match a reference computed here.
#include "tests/unit/compiler/pass_test_util.h"

namespace tessera {
namespace {

using testing::CountOps;
using testing::HaveCpuBackend;
using testing::RunPassOn;

Value* In(Graph& g, const std::string& name, DType t, std::vector<int64_t> dims) {
  Value* v = g.AddValue(name, TensorType{t, Shape::FromInts(dims)});
  g.AddInput(v);
  return v;
}

std::vector<Tensor> RunO0(std::unique_ptr<Graph> g, const std::vector<std::pair<std::string, const Tensor*>>& feeds) {
  SessionOptions o;
  o.opt_level = 0;
  auto s = Session::FromGraph(std::move(g), o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  std::vector<Tensor> out;
  if (!s.ok()) return out;
  Status st = (*s)->Run(feeds, {}, &out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

// Scan (opset 9): running sum of the rows of x, starting from `init`.
std::unique_ptr<Graph> ScanSum() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 11);
  Value* init = In(*g, "init", DType::kF32, {2});
  Value* x = In(*g, "x", DType::kF32, {3, 2});
  auto body = std::make_shared<Graph>();
  body->set_parent(g.get());
  Value* s_in = body->AddValue("sum_in", TensorType{DType::kF32, Shape::FromInts({2})});
  Value* row = body->AddValue("row", TensorType{DType::kF32, Shape::FromInts({2})});
  body->AddInput(s_in);
  body->AddInput(row);
  Node* add = body->AddNode("Add", {s_in, row}, 1, "add");
  Node* id = body->AddNode("Identity", {add->output(0)}, 1, "id");
  body->AddOutput(add->output(0));
  body->AddOutput(id->output(0));
  Node* scan = g->AddNode("Scan", {init, x}, 2, "scan");
  scan->set_attr("body", Attribute::FromGraph(body));
  scan->set_attr("num_scan_inputs", Attribute::Int(1));
  g->AddOutput(scan->output(0));
  g->AddOutput(scan->output(1));
  return g;
}

TEST(InlineControlFlow, ScanIsUnrolledOverItsAxis) {
  auto g = ScanSum();
  RunPassOn(*g, CreateInlineControlFlowPass());
  EXPECT_EQ(CountOps(*g, "Scan"), 0);
  EXPECT_EQ(CountOps(*g, "Add"), 3);  // one body copy per row
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  Tensor init = Tensor::FromVector<float>(DType::kF32, {2}, {1, -1});
  Tensor x = Tensor::FromVector<float>(DType::kF32, {3, 2}, {1, 2, 3, 4, 5, 6});
  auto out = RunO0(ScanSum(), {{"init", &init}, {"x", &x}});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].dims(), (std::vector<int64_t>{2}));
  EXPECT_EQ(out[1].dims(), (std::vector<int64_t>{3, 2}));
  const float final_sum[] = {10, 11}, running[] = {2, 1, 5, 5, 10, 11};
  for (int i = 0; i < 2; ++i) EXPECT_FLOAT_EQ(out[0].data<float>()[i], final_sum[i]);
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(out[1].data<float>()[i], running[i]);
}

// Loop: y <- y * 2 `trip` times; the body passes its condition through.
std::unique_ptr<Graph> Doubling(bool trip_is_input, bool body_computes_cond = false) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  Value* trip = trip_is_input ? In(*g, "trip", DType::kI64, {})
                              : g->AddConstant("trip", Tensor::ScalarI64(3));
  Value* y = In(*g, "y", DType::kF32, {2});
  Value* cond = g->AddConstant("cond", Tensor::FromVector<uint8_t>(DType::kBool, {}, {1}));
  auto body = std::make_shared<Graph>();
  body->set_parent(g.get());
  Value* it = body->AddValue("it", TensorType{DType::kI64, Shape::FromInts({})});
  Value* c_in = body->AddValue("c_in", TensorType{DType::kBool, Shape::FromInts({})});
  Value* y_in = body->AddValue("y_in", TensorType{DType::kF32, Shape::FromInts({2})});
  body->AddInput(it);
  body->AddInput(c_in);
  body->AddInput(y_in);
  Value* two = body->AddConstant("two", Tensor::ScalarF32(2));
  Node* mul = body->AddNode("Mul", {y_in, two}, 1, "mul");
  Node* c_out = body_computes_cond ? body->AddNode("Not", {c_in}, 1, "not") : body->AddNode("Identity", {c_in}, 1, "c");
  Node* scan_out = body->AddNode("Identity", {mul->output(0)}, 1, "scan_out");
  body->AddOutput(c_out->output(0));
  body->AddOutput(mul->output(0));
  body->AddOutput(scan_out->output(0));
  Node* loop = g->AddNode("Loop", {trip, cond, y}, 2, "loop");
  loop->set_attr("body", Attribute::FromGraph(body));
  g->AddOutput(loop->output(0));
  g->AddOutput(loop->output(1));
  return g;
}

TEST(InlineControlFlow, LoopWithConstantTripCountIsUnrolled) {
  auto g = Doubling(false);
  RunPassOn(*g, CreateInlineControlFlowPass());
  EXPECT_EQ(CountOps(*g, "Loop"), 0);
  EXPECT_EQ(CountOps(*g, "Mul"), 3);
  EXPECT_EQ(CountOps(*g, "Concat"), 1);  // the stacked scan output
}

TEST(InlineControlFlow, LoopWhoseBodyComputesItsConditionIsLeftAlone) {
  auto g = Doubling(false, /*body_computes_cond=*/true);
  RunPassOn(*g, CreateInlineControlFlowPass());
  EXPECT_EQ(CountOps(*g, "Loop"), 1);
}

TEST(InlineControlFlow, TripCountFromAnInputIsSpecializedPerValue) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  auto s = Session::FromGraph(Doubling(true), SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Tensor y = Tensor::FromVector<float>(DType::kF32, {2}, {1, -0.5f});
  for (int64_t trip : {1, 4, 2}) {
    Tensor t = Tensor::ScalarI64(trip);
    std::vector<Tensor> out;
    Status st = (*s)->Run({{"trip", &t}, {"y", &y}}, {}, &out);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(out.size(), 2u);
    float f = static_cast<float>(1 << trip);
    EXPECT_FLOAT_EQ(out[0].data<float>()[0], f);
    EXPECT_FLOAT_EQ(out[0].data<float>()[1], -0.5f * f);
    EXPECT_EQ(out[1].dims(), (std::vector<int64_t>{trip, 2}));
    EXPECT_FLOAT_EQ(out[1].data<float>()[2 * (trip - 1)], f);
  }
}

// If on a condition input: then = x + 1, else = x * 3 (bodies read x from the
// enclosing graph).
std::unique_ptr<Graph> Branch() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  Value* c = In(*g, "c", DType::kBool, {});
  Value* x = In(*g, "x", DType::kF32, {3});
  auto branch = [&](const char* op, float k) {
    auto b = std::make_shared<Graph>();
    b->set_parent(g.get());
    Value* kv = b->AddConstant(std::string("k_") + op, Tensor::ScalarF32(k));
    Node* n = b->AddNode(op, {x, kv}, 1, op);
    b->AddOutput(n->output(0));
    return b;
  };
  Node* n = g->AddNode("If", {c}, 1, "if");
  n->set_attr("then_branch", Attribute::FromGraph(branch("Add", 1)));
  n->set_attr("else_branch", Attribute::FromGraph(branch("Mul", 3)));
  g->AddOutput(n->output(0));
  return g;
}

TEST(InlineControlFlow, IfOnAConditionInputRunsEitherBranch) {
  auto g = Branch();
  RunPassOn(*g, CreateInlineControlFlowPass());
  EXPECT_EQ(CountOps(*g, "If"), 1);  // not a constant: left for specialization
  // Inlining a clone's branch (as the session does) reads the clone's x.
  auto copy = Branch()->Clone();
  Tensor one = Tensor::FromVector<uint8_t>(DType::kBool, {}, {1});
  copy->FindValue("c")->set_constant(one);
  RunPassOn(*copy, CreateInlineControlFlowPass());
  EXPECT_EQ(CountOps(*copy, "If"), 0);
  EXPECT_TRUE(copy->Verify().ok()) << copy->Verify().ToString();
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  auto s = Session::FromGraph(Branch(), SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Tensor x = Tensor::FromVector<float>(DType::kF32, {3}, {1, 2, 3});
  for (uint8_t c : {1, 0, 1}) {
    Tensor ct = Tensor::FromVector<uint8_t>(DType::kBool, {}, {c});
    std::vector<Tensor> out;
    Status st = (*s)->Run({{"c", &ct}, {"x", &x}}, {}, &out);
    ASSERT_TRUE(st.ok()) << st.ToString();
    for (int i = 0; i < 3; ++i)
      EXPECT_FLOAT_EQ(out[0].data<float>()[i], c ? x.data<float>()[i] + 1 : x.data<float>()[i] * 3);
  }
}

}  // namespace
}  // namespace tessera
