// The malformed-model corpus: models that are wrong in one way each, built
// with the protobuf API and pushed through import -> shape inference -> O1
// passes -> partition -> lowering (the fuzz target's path). Each must come
// back as an error whose code and message say what is wrong — never a crash.
// Cases already covered by test_onnx_import.cpp (truncated/garbage files,
// undefined inputs/outputs, a two-node cycle, initializer size mismatch,
// initializer dims overflow, unknown data types) are not repeated here.
//
// The last test replays every committed fuzzer finding in
// tests/fuzz/regressions/ through the same path.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <onnx/onnx_pb.h>

#include "compiler/lower.h"
#include "compiler/partition.h"
#include "compiler/pass.h"
#include "compiler/plan_memory.h"
#include "compiler/specialize.h"
#include "graph/onnx/onnx_import.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

onnx::ModelProto NewModel(int64_t opset = 17) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  m.mutable_graph()->set_name("main");
  return m;
}

onnx::ValueInfoProto* AddInput(onnx::GraphProto* g, const std::string& name, int elem,
                               const std::vector<int64_t>& dims) {
  auto* vi = g->add_input();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* sh = tt->mutable_shape();
  for (int64_t d : dims) sh->add_dim()->set_dim_value(d);
  return vi;
}

void AddOutput(onnx::GraphProto* g, const std::string& name, int elem = onnx::TensorProto::FLOAT) {
  auto* vi = g->add_output();
  vi->set_name(name);
  vi->mutable_type()->mutable_tensor_type()->set_elem_type(elem);
}

onnx::NodeProto* AddNode(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& ins,
                         const std::vector<std::string>& outs, const std::string& name) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto& i : ins) n->add_input(i);
  for (auto& o : outs) n->add_output(o);
  return n;
}

onnx::TensorProto* AddInit(onnx::GraphProto* g, const std::string& name, int dtype, const std::vector<int64_t>& dims,
                           const std::string& raw) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(dtype);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(raw);
  return t;
}

std::string RawI64(const std::vector<int64_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t));
}

// The fuzz target's path; returns the first error. Symbolic input dims are
// bound to 2, like a session binding concrete shapes.
Status Compile(const std::string& bytes) {
  ImportOptions opts;
  opts.max_tensor_bytes = int64_t{64} << 20;
  TSR_ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxBytes(bytes.data(), bytes.size(), "", opts));
  for (Value* in : g->RuntimeInputs()) {
    if (!in->shape().has_rank()) continue;
    std::vector<int64_t> dims;
    for (const Dim& d : in->shape().dims()) dims.push_back(d.is_known() ? d.value : 2);
    in->set_type(TensorType{in->dtype(), Shape::FromInts(dims)});
  }
  TSR_RETURN_IF_ERROR(InferGraphTypes(*g));
  TSR_ASSIGN_OR_RETURN(PassManager pm, BuildPipeline(1));
  PassContext ctx;
  ctx.opt_level = 1;
  ctx.verify = true;
  TSR_RETURN_IF_ERROR(pm.Run(*g, ctx));
  if (!FindValueInputs(*g).empty()) return Status::Ok();
  DeviceCandidate all{"cpu", [](const tsr_graph_view& v, std::vector<tsr_claim>* claims) -> Status {
                        for (uint32_t i = 0; i < v.num_nodes; ++i) (*claims)[i].supported = 1;
                        return Status::Ok();
                      }};
  TSR_ASSIGN_OR_RETURN(Partition part, PartitionGraph(*g, {all}, false));
  TSR_ASSIGN_OR_RETURN(Plan plan, LowerToPlan(std::move(g), part, {{"cpu", "cpu", 0}}, int64_t{1} << 30));
  (void)plan;
  return Status::Ok();
}

Status Compile(const onnx::ModelProto& m) {
  std::string bytes;
  EXPECT_TRUE(m.SerializeToString(&bytes));
  return Compile(bytes);
}

void ExpectError(const Status& st, StatusCode code, const std::vector<std::string>& needles) {
  ASSERT_FALSE(st.ok()) << "expected an error";
  EXPECT_EQ(st.code(), code) << st.ToString();
  for (const auto& n : needles)
    EXPECT_NE(st.message().find(n), std::string::npos) << "missing '" << n << "' in: " << st.ToString();
}

// A valid model: the baseline the malformed ones are cut from.
onnx::ModelProto GoodModel() {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2, 3});
  AddNode(g, "Relu", {"x"}, {"r"}, "relu");
  AddNode(g, "Neg", {"r"}, {"y"}, "neg");
  AddOutput(g, "y");
  return m;
}

TEST(MalformedModels, BaselineCompiles) {
  Status st = Compile(GoodModel());
  EXPECT_TRUE(st.ok()) << st.ToString();
}

// ---- bytes ----

TEST(MalformedModels, EveryTruncationIsRejectedOrHarmless) {
  std::string bytes;
  ASSERT_TRUE(GoodModel().SerializeToString(&bytes));
  int rejected = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    Status st = Compile(bytes.substr(0, n));
    if (!st.ok()) {
      ++rejected;
      EXPECT_FALSE(st.message().empty());
    }
  }
  // Most prefixes cut a field or drop the graph's output; every one returned.
  EXPECT_GT(rejected, static_cast<int>(bytes.size()) / 2);
  Status empty = Compile(std::string());
  ExpectError(empty, StatusCode::kInvalidArgument, {"not a valid ONNX model"});
}

// ---- types ----

TEST(MalformedModels, MixedElementTypesNameTheNode) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "a", onnx::TensorProto::FLOAT, {2});
  AddInput(g, "b", onnx::TensorProto::INT64, {2});
  AddNode(g, "Add", {"a", "b"}, {"y"}, "mixed_add");
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"mixed_add"});
}

TEST(MalformedModels, UnsupportedTypeForOpNamesTheNode) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::BOOL, {2});
  AddNode(g, "Relu", {"x"}, {"y"}, "bool_relu");
  AddOutput(g, "y", onnx::TensorProto::BOOL);
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"bool_relu"});
}

TEST(MalformedModels, DeclaredOutputTypeConflictIsRejected) {
  auto m = GoodModel();
  m.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::INT32);
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"'y'"});
}

TEST(MalformedModels, ElemTypeOutOfEnumIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", 12345, {2});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y");
  Status st = Compile(m);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'x'"), std::string::npos) << st.ToString();
}

TEST(MalformedModels, RawDataNotAMultipleOfElementSize) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {3});
  AddInit(g, "shape", onnx::TensorProto::INT64, {1}, std::string(7, '\1'));
  AddNode(g, "Reshape", {"x", "shape"}, {"y"}, "reshape");
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"'shape'"});
}

// ---- dims ----

TEST(MalformedModels, NegativeInputDimIsReadAsUnknown) {
  // Some exporters write dim_value -1 for a dynamic dim; the importer reads any
  // negative dim_value as an unknown dim (bound at run time), never as a size.
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2, -5});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y");
  std::string bytes;
  ASSERT_TRUE(m.SerializeToString(&bytes));
  auto r = ImportOnnxBytes(bytes.data(), bytes.size(), "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Value* x = (*r)->RuntimeInputs().at(0);
  ASSERT_EQ(x->shape().rank(), 2);
  EXPECT_EQ(x->shape().dim(0).value, 2);
  EXPECT_FALSE(x->shape().dim(1).is_known());
}

TEST(MalformedModels, InputDimsWhoseProductOverflowsAreRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {int64_t{1} << 40, int64_t{1} << 40});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y");
  Status st = Compile(m);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.code() == StatusCode::kOutOfRange || st.code() == StatusCode::kOutOfMemory) << st.ToString();
  EXPECT_NE(st.message().find("overflow"), std::string::npos) << st.ToString();
}

TEST(MalformedModels, HugeButRepresentableTensorIsOverTheArenaCap) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {int64_t{1} << 20, int64_t{1} << 20});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kOutOfMemory, {});
}

TEST(MalformedModels, ReshapeToOverflowingShapeIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {4});
  AddInit(g, "shape", onnx::TensorProto::INT64, {3},
          RawI64({int64_t{1} << 62, int64_t{1} << 62, int64_t{1} << 62}));
  AddNode(g, "Reshape", {"x", "shape"}, {"y"}, "reshape");
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kOutOfRange, {"'reshape'", "Reshape", "overflows int64"});
}

TEST(MalformedModels, ExpandToOverflowingShapeIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {1});
  AddInit(g, "shape", onnx::TensorProto::INT64, {2}, RawI64({int64_t{1} << 62, int64_t{1} << 62}));
  AddNode(g, "Expand", {"x", "shape"}, {"y"}, "expand");
  AddOutput(g, "y");
  Status st = Compile(m);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("overflow"), std::string::npos) << st.ToString();
}

// ---- graph structure ----

TEST(MalformedModels, SelfLoopIsACycle) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  AddNode(g, "Add", {"x", "y"}, {"y"}, "self");
  AddOutput(g, "y");
  Status st = Compile(m);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
}

TEST(MalformedModels, LongCycleIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  AddNode(g, "Add", {"x", "v99"}, {"v0"}, "n0");
  for (int i = 1; i < 100; ++i)
    AddNode(g, "Relu", {StrCat("v", i - 1)}, {StrCat("v", i)}, StrCat("n", i));
  AddOutput(g, "v99");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"cycle"});
}

TEST(MalformedModels, DanglingNameInsideSubgraphIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "c", onnx::TensorProto::BOOL, {});
  auto* n = AddNode(g, "If", {"c"}, {"y"}, "branch");
  for (const char* which : {"then_branch", "else_branch"}) {
    auto* a = n->add_attribute();
    a->set_name(which);
    a->set_type(onnx::AttributeProto::GRAPH);
    auto* sg = a->mutable_g();
    sg->set_name(which);
    AddNode(sg, "Relu", {"nowhere"}, {"o"}, StrCat(which, "_relu"));
    AddOutput(sg, "o");
  }
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"'nowhere'"});
}

TEST(MalformedModels, DuplicateGraphInputIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"'x'"});
}

TEST(MalformedModels, DuplicateInitializerIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {1});
  AddInit(g, "w", onnx::TensorProto::FLOAT, {1}, std::string(4, '\0'));
  AddInit(g, "w", onnx::TensorProto::FLOAT, {1}, std::string(4, '\0'));
  AddNode(g, "Add", {"x", "w"}, {"y"}, "add");
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"'w'"});
}

TEST(MalformedModels, NodeOutputShadowingAnInitializerIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {1});
  AddInit(g, "w", onnx::TensorProto::FLOAT, {1}, std::string(4, '\0'));
  AddNode(g, "Relu", {"x"}, {"w"}, "relu");
  AddOutput(g, "w");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"'w'"});
}

TEST(MalformedModels, EmptyOutputNameOfGraphIsRejected) {
  auto m = GoodModel();
  AddOutput(m.mutable_graph(), "");
  Status st = Compile(m);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
}

TEST(MalformedModels, DeeplyNestedSubgraphsAreRejected) {
  // 200 nested If bodies: past protobuf's recursion limit, so parsing fails
  // instead of the importer recursing without bound.
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "c", onnx::TensorProto::BOOL, {});
  AddInput(g, "x", onnx::TensorProto::FLOAT, {1});
  onnx::GraphProto* cur = g;
  for (int depth = 0; depth < 200; ++depth) {
    auto* n = AddNode(cur, "If", {"c"}, {StrCat("y", depth)}, StrCat("if", depth));
    AddOutput(cur, StrCat("y", depth));
    auto* e = n->add_attribute();
    e->set_name("else_branch");
    e->set_type(onnx::AttributeProto::GRAPH);
    AddNode(e->mutable_g(), "Identity", {"x"}, {"e"}, "id");
    AddOutput(e->mutable_g(), "e");
    auto* t = n->add_attribute();
    t->set_name("then_branch");
    t->set_type(onnx::AttributeProto::GRAPH);
    cur = t->mutable_g();
    cur->set_name(StrCat("then", depth));
  }
  AddNode(cur, "Identity", {"x"}, {"leaf"}, "leaf");
  AddOutput(cur, "leaf");
  Status st = Compile(m);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
}

TEST(MalformedModels, LongChainDoesNotExhaustTheStack) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  // Listed in reverse so the importer has to sort 5000 nodes.
  const int n = 5000;
  for (int i = n - 1; i >= 0; --i)
    AddNode(g, i % 2 ? "Relu" : "Neg", {i == 0 ? std::string("x") : StrCat("v", i - 1)}, {StrCat("v", i)},
            StrCat("n", i));
  AddOutput(g, StrCat("v", n - 1));
  Status st = Compile(m);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

// ---- arity, attributes ----

TEST(MalformedModels, NodeWithAHundredThousandInputs) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {1});
  std::vector<std::string> ins(100000, "x");
  AddNode(g, "Relu", ins, {"y"}, "wide_relu");
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"wide_relu", "Relu", "100000"});
}

TEST(MalformedModels, VariadicNodeWithAHundredThousandInputsIsHandled) {
  // Sum is variadic: 10^5 inputs are legal and must not blow the stack or hang.
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {1});
  std::vector<std::string> ins(100000, "x");
  AddNode(g, "Sum", ins, {"y"}, "wide_sum");
  AddOutput(g, "y");
  Status st = Compile(m);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(MalformedModels, HugeAttributeListIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2, 3});
  auto* n = AddNode(g, "Transpose", {"x"}, {"y"}, "transpose");
  auto* a = n->add_attribute();
  a->set_name("perm");
  a->set_type(onnx::AttributeProto::INTS);
  for (int i = 0; i < 1000000; ++i) a->add_ints(i);
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"transpose", "perm"});
}

TEST(MalformedModels, ManyAttributesOnOneNode) {
  auto m = GoodModel();
  auto* n = m.mutable_graph()->mutable_node(0);
  for (int i = 0; i < 50000; ++i) {
    auto* a = n->add_attribute();
    a->set_name(StrCat("junk", i));
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(i);
  }
  Status st = Compile(m);
  // Unknown attributes are either ignored or rejected by name; never a crash.
  if (!st.ok()) {
    EXPECT_NE(st.message().find("junk"), std::string::npos) << st.ToString();
  }
}

TEST(MalformedModels, DuplicateAttributeIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2, 3});
  auto* n = AddNode(g, "Softmax", {"x"}, {"y"}, "softmax");
  for (int v : {0, 1}) {
    auto* a = n->add_attribute();
    a->set_name("axis");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"softmax", "axis"});
}

TEST(MalformedModels, AxisOutOfRangeIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2, 3});
  auto* n = AddNode(g, "Softmax", {"x"}, {"y"}, "softmax");
  auto* a = n->add_attribute();
  a->set_name("axis");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(std::numeric_limits<int64_t>::min());
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"softmax", "axis"});
}

TEST(MalformedModels, UnknownOpIsNamed) {
  auto m = GoodModel();
  m.mutable_graph()->mutable_node(0)->set_op_type("NoSuchOp");
  Status st = Compile(m);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("NoSuchOp"), std::string::npos) << st.ToString();
}

// ---- fuzzer findings ----

// Found by fuzz_import (regressions/plan-arena-overflow-*): buffers of 2^62
// bytes alive together overflowed the arena planner's int64 sums (UB).
TEST(MalformedModels, ArenaPlanSaturatesInsteadOfOverflowing) {
  const uint64_t huge = uint64_t{1} << 62;
  std::vector<BufferRequest> reqs = {{huge, 0, 3}, {huge, 1, 3}, {huge, 2, 3}, {huge, 3, 3}, {huge, 3, 3}};
  ArenaPlan ap = PlanArena(reqs);
  EXPECT_EQ(ap.arena_bytes, UINT64_MAX);
  EXPECT_EQ(ap.lower_bound, UINT64_MAX);
  // Small requests are unaffected.
  ArenaPlan small = PlanArena({{100, 0, 1}, {100, 1, 2}});
  EXPECT_EQ(small.arena_bytes, 256u);
}

// Found by fuzz_import (regressions/gathernd-scalar-indices-*): GatherND read
// the last dim of rank-0 indices (index -1) before checking the rank.
TEST(MalformedModels, GatherNDWithScalarIndicesIsRejected) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "data", onnx::TensorProto::FLOAT, {2, 2});
  AddInput(g, "idx", onnx::TensorProto::INT64, {});
  AddNode(g, "GatherND", {"data", "idx"}, {"y"}, "gnd");
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kInvalidArgument, {"'gnd'", "GatherND", "indices must have rank >= 1"});
}

TEST(MalformedModels, ArenaOverflowIsOutOfMemory) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  const int64_t big = int64_t{1} << 60;  // f32: 2^62 bytes each
  AddInput(g, "x", onnx::TensorProto::FLOAT, {big});
  AddNode(g, "Relu", {"x"}, {"a"}, "relu_a");
  AddNode(g, "Neg", {"x"}, {"b"}, "neg_b");
  AddNode(g, "Abs", {"x"}, {"c"}, "abs_c");
  AddNode(g, "Sum", {"a", "b", "c", "x"}, {"y"}, "sum");
  AddOutput(g, "y");
  ExpectError(Compile(m), StatusCode::kOutOfMemory, {"arena"});
}


TEST(MalformedModels, FuzzRegressionsDoNotCrash) {
  fs::path dir = fs::path(TESSERA_TEST_DATA_DIR).parent_path() / "fuzz" / "regressions";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().extension() == ".md") continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(e.path().string());
    Status st = Compile(bytes);  // ok or an error: both fine; a crash is the failure
    if (!st.ok()) {
      EXPECT_FALSE(st.message().empty());
    }
    ++n;
  }
  std::cout << "replayed " << n << " fuzz regression inputs\n";
}

}  // namespace
}  // namespace tessera
