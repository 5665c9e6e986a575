// ONNX exporter tests: round trips through the importer, external-data
// export, and TensorProto files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <onnx/onnx_pb.h>

#include "graph/onnx/onnx_export.h"
#include "graph/onnx/onnx_import.h"
#include "graph/onnx/tensor_proto.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

class OnnxExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / StrCat("tessera_export_", ::getpid(), "_", info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

bool SameTensor(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.dims() != b.dims()) return false;
  if (a.dtype() == DType::kString) return a.strings() == b.strings();
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

bool SameAttr(const Attribute& a, const Attribute& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case AttrType::kFloat: return a.f == b.f;
    case AttrType::kInt: return a.i == b.i;
    case AttrType::kString: return a.s == b.s;
    case AttrType::kFloats: return a.floats == b.floats;
    case AttrType::kInts: return a.ints == b.ints;
    case AttrType::kStrings: return a.strings == b.strings;
    case AttrType::kTensor: return SameTensor(a.t, b.t);
    case AttrType::kGraph: return a.g && b.g;  // compared structurally by ExpectSameGraph
    default: return false;
  }
}

std::string Name(const Value* v) { return v ? v->name() : "<none>"; }

void ExpectSameGraph(const Graph& a, const Graph& b) {
  ASSERT_EQ(a.inputs().size(), b.inputs().size());
  for (size_t i = 0; i < a.inputs().size(); ++i) {
    EXPECT_EQ(a.inputs()[i]->name(), b.inputs()[i]->name());
    EXPECT_EQ(a.inputs()[i]->type(), b.inputs()[i]->type()) << a.inputs()[i]->name();
  }
  ASSERT_EQ(a.outputs().size(), b.outputs().size());
  for (size_t i = 0; i < a.outputs().size(); ++i) {
    EXPECT_EQ(a.outputs()[i]->name(), b.outputs()[i]->name());
    EXPECT_EQ(a.outputs()[i]->type(), b.outputs()[i]->type()) << a.outputs()[i]->name();
  }
  for (Value* v : a.values()) {
    if (!v->is_constant()) continue;
    Value* w = b.FindValue(v->name());
    ASSERT_NE(w, nullptr) << v->name();
    ASSERT_TRUE(w->is_constant()) << v->name();
    EXPECT_TRUE(SameTensor(*v->constant(), *w->constant())) << v->name();
  }
  auto an = a.nodes(), bn = b.nodes();
  ASSERT_EQ(an.size(), bn.size());
  for (size_t i = 0; i < an.size(); ++i) {
    const Node* x = an[i];
    const Node* y = bn[i];
    EXPECT_EQ(x->name(), y->name());
    EXPECT_EQ(x->op_type(), y->op_type());
    EXPECT_EQ(x->domain(), y->domain());
    ASSERT_EQ(x->num_inputs(), y->num_inputs()) << x->name();
    for (size_t k = 0; k < x->num_inputs(); ++k) EXPECT_EQ(Name(x->input(k)), Name(y->input(k))) << x->name();
    ASSERT_EQ(x->num_outputs(), y->num_outputs()) << x->name();
    for (size_t k = 0; k < x->num_outputs(); ++k) {
      EXPECT_EQ(Name(x->output(k)), Name(y->output(k))) << x->name();
      if (x->output(k) && y->output(k)) {
        EXPECT_EQ(x->output(k)->type(), y->output(k)->type()) << x->name();
      }
    }
    ASSERT_EQ(x->attrs().size(), y->attrs().size()) << x->name();
    for (const auto& [name, attr] : x->attrs()) {
      const Attribute* other = y->attr(name);
      ASSERT_NE(other, nullptr) << x->name() << "." << name;
      EXPECT_TRUE(SameAttr(attr, *other)) << x->name() << "." << name;
      if (attr.type == AttrType::kGraph && attr.g && other->g) {
        EXPECT_EQ(other->g->parent(), &b);
        ExpectSameGraph(*attr.g, *other->g);
      }
    }
  }
}

// A graph using every attribute kind, symbolic dims, constants of several
// dtypes, an omitted optional input and a subgraph with an outer reference.
std::unique_ptr<Graph> BuildRichGraph() {
  auto g = std::make_unique<Graph>();
  g->set_name("rich");
  g->set_opset("", 13);
  g->set_opset("tessera", 1);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape({Dim::Symbol("batch"), Dim::Known(4)})});
  g->AddInput(x);
  Value* cond = g->AddValue("cond", TensorType{DType::kBool, Shape()});
  g->AddInput(cond);
  Value* w = g->AddConstant("w", Tensor::FromVector<float>(DType::kF32, {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8}));
  Value* shape = g->AddConstant("shape", Tensor::FromVector<int64_t>(DType::kI64, {2}, {-1, 2}));
  g->AddConstant("labels", Tensor::Strings({2}, {"cat", "dog"}));
  g->AddConstant("half", Tensor::FromVector<uint16_t>(DType::kF16, {1}, {FloatToHalf(0.5f)}));

  Node* mm = g->AddNode("MatMul", {x, w}, 1, "mm");
  mm->output(0)->set_type(TensorType{DType::kF32, Shape({Dim::Symbol("batch"), Dim::Known(2)})});
  Node* clip = g->AddNode("Clip", {mm->output(0), nullptr, nullptr}, 1, "clip");
  clip->set_input(2, g->AddConstant("hi", Tensor::ScalarF32(6.f)));
  Node* rs = g->AddNode("Reshape", {clip->output(0), shape}, 1, "reshape");
  Node* custom = g->AddNode("FusedThing", {rs->output(0)}, 2, "custom", "tessera");
  custom->set_attr("f", Attribute::Float(0.125f));
  custom->set_attr("i", Attribute::Int(-9));
  custom->set_attr("s", Attribute::String("mode"));
  custom->set_attr("fs", Attribute::Floats({1.5f, -2.f}));
  custom->set_attr("is", Attribute::Ints({3, 1, 4}));
  custom->set_attr("ss", Attribute::Strings({"a", "b"}));
  custom->set_attr("t", Attribute::FromTensor(Tensor::FromVector<int32_t>(DType::kI32, {3}, {7, 8, 9})));

  auto then_g = std::make_shared<Graph>();
  then_g->set_name("then");
  then_g->set_parent(g.get());
  Node* inner = then_g->AddNode("Relu", {custom->output(0)}, 1, "inner_relu");
  inner->output(0)->set_type(TensorType{DType::kF32, Shape::UnknownRank()});
  then_g->AddOutput(inner->output(0));
  auto else_g = std::make_shared<Graph>();
  else_g->set_name("else");
  else_g->set_parent(g.get());
  Node* neg = else_g->AddNode("Neg", {custom->output(0)}, 1, "inner_neg");
  else_g->AddOutput(neg->output(0));
  Node* iff = g->AddNode("If", {cond}, 1, "if");
  iff->set_attr("then_branch", Attribute::FromGraph(then_g));
  iff->set_attr("else_branch", Attribute::FromGraph(else_g));
  g->AddOutput(iff->output(0));
  g->AddOutput(custom->output(1));
  return g;
}

TEST_F(OnnxExportTest, RoundTripKeepsNodesAttrsTypesAndConstants) {
  auto g = BuildRichGraph();
  ASSERT_TRUE(g->Verify().ok());
  auto bytes = ExportOnnx(*g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto back = ImportOnnxBytes(bytes->data(), bytes->size(), dir_.string());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameGraph(*g, **back);
  EXPECT_EQ((*back)->name(), "rich");
  EXPECT_EQ((*back)->OpsetFor(""), 13);
  EXPECT_EQ((*back)->OpsetFor("tessera"), 1);
  EXPECT_EQ((*back)->FindNode("clip")->input(1), nullptr);
  EXPECT_EQ((*back)->FindValue("x")->type().ToString(), "f32[batch,4]");

  // Export of the re-imported graph gives the same bytes.
  auto again = ExportOnnx(**back);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *bytes);
}

TEST_F(OnnxExportTest, ModelProtoFieldsAreSet) {
  auto g = BuildRichGraph();
  ExportOptions opts;
  opts.ir_version = 7;
  auto bytes = ExportOnnx(*g, opts);
  ASSERT_TRUE(bytes.ok());
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(*bytes));
  EXPECT_EQ(m.ir_version(), 7);
  EXPECT_EQ(m.producer_name(), "tessera");
  std::map<std::string, int64_t> opsets;
  for (const auto& op : m.opset_import()) opsets[op.domain()] = op.version();
  EXPECT_EQ(opsets[""], 13);
  EXPECT_EQ(opsets["tessera"], 1);
  EXPECT_EQ(m.graph().initializer_size(), 5);
  EXPECT_EQ(m.graph().input_size(), 2);
  EXPECT_EQ(m.graph().output_size(), 2);
  EXPECT_EQ(m.graph().node_size(), 5);
  const auto& x = m.graph().input(0);
  EXPECT_EQ(x.type().tensor_type().shape().dim(0).dim_param(), "batch");
  EXPECT_EQ(x.type().tensor_type().shape().dim(1).dim_value(), 4);
  // The MatMul output's declared type goes to value_info.
  bool found = false;
  for (const auto& vi : m.graph().value_info()) found |= vi.name() == g->FindNode("mm")->output(0)->name();
  EXPECT_TRUE(found);
}

TEST_F(OnnxExportTest, ConstantSinkWritesExternalData) {
  auto g = BuildRichGraph();
  const fs::path bin = dir_ / "weights.bin";
  std::ofstream out(bin, std::ios::binary);
  int64_t pos = 0;
  std::vector<std::string> sunk;
  ExportOptions opts;
  opts.constant_sink = [&](const Value& v, const Tensor& t, std::string* loc, int64_t* off, int64_t* len) {
    // 64-byte aligned records so that the importer maps them.
    int64_t pad = (64 - pos % 64) % 64;
    out.write(std::string(static_cast<size_t>(pad), '\0').data(), pad);
    pos += pad;
    out.write(static_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
    *loc = "weights.bin";
    *off = pos;
    *len = static_cast<int64_t>(t.nbytes());
    pos += *len;
    sunk.push_back(v.name());
    return Status::Ok();
  };
  const std::string model = (dir_ / "m.onnx").string();
  ASSERT_TRUE(ExportOnnxFile(*g, model, opts).ok());
  out.close();
  // Every constant except the string one went to the sink.
  EXPECT_EQ(sunk.size(), 4u);
  onnx::ModelProto m;
  std::ifstream in(model, std::ios::binary);
  ASSERT_TRUE(m.ParseFromIstream(&in));
  int external = 0;
  for (const auto& t : m.graph().initializer()) {
    external += t.data_location() == onnx::TensorProto::EXTERNAL;
    EXPECT_FALSE(t.data_location() == onnx::TensorProto::EXTERNAL && t.has_raw_data()) << t.name();
  }
  EXPECT_EQ(external, 4);
  auto back = ImportOnnxFile(model);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameGraph(*g, **back);
}

TEST_F(OnnxExportTest, ConstantSinkErrorIsReturned) {
  auto g = BuildRichGraph();
  ExportOptions opts;
  opts.constant_sink = [](const Value&, const Tensor&, std::string*, int64_t*, int64_t*) {
    return IoError("disk full");
  };
  auto r = ExportOnnx(*g, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_NE(r.status().message().find("disk full"), std::string::npos);
  EXPECT_NE(r.status().message().find("constant '"), std::string::npos);
}

TEST_F(OnnxExportTest, UntypedAttributeIsInternalError) {
  Graph g;
  Value* x = g.AddValue("x", TensorType{DType::kF32, Shape::FromInts({2})});
  g.AddInput(x);
  Node* n = g.AddNode("Relu", {x}, 1, "relu");
  n->set_attr("broken", Attribute{});
  g.AddOutput(n->output(0));
  auto r = ExportOnnx(g);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("'relu'"), std::string::npos);
  EXPECT_NE(r.status().message().find("'broken'"), std::string::npos);
}

TEST_F(OnnxExportTest, ExportToUnwritablePathIsIoError) {
  auto g = BuildRichGraph();
  std::string path = (dir_ / "no_such_dir" / "m.onnx").string();
  Status st = ExportOnnxFile(*g, path);
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_NE(st.message().find(path), std::string::npos);
}

// ---- TensorProto files ----

TEST_F(OnnxExportTest, TensorProtoFileRoundTrip) {
  std::vector<Tensor> cases = {
      Tensor::FromVector<float>(DType::kF32, {2, 3}, {1.f, -2.f, 3.5f, 0.f, 1e-7f, 1e30f}),
      Tensor::FromVector<int64_t>(DType::kI64, {3}, {int64_t{1} << 50, -1, 0}),
      Tensor::FromVector<uint8_t>(DType::kBool, {2, 2}, {1, 0, 0, 1}),
      Tensor::FromVector<uint16_t>(DType::kF16, {2}, {FloatToHalf(1.5f), FloatToHalf(-0.25f)}),
      Tensor::FromVector<float>(DType::kF32, {0, 3}, {}),
      Tensor::ScalarI64(42),
      Tensor::Strings({2}, {"x", "yz"}),
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string path = (dir_ / StrCat("input_", i, ".pb")).string();
    const std::string name = StrCat("t", i);
    ASSERT_TRUE(SaveTensorProtoFile(path, cases[i], name).ok());
    std::string got_name;
    auto back = LoadTensorProtoFile(path, &got_name);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(got_name, name);
    EXPECT_TRUE(SameTensor(cases[i], *back)) << "case " << i << " " << cases[i].type().ToString();
  }
  auto f16 = LoadTensorProtoFile((dir_ / "input_3.pb").string());
  ASSERT_TRUE(f16.ok());
  EXPECT_EQ(f16->dtype(), DType::kF16);
  EXPECT_EQ(f16->GetAsDouble(1), -0.25);
}

TEST_F(OnnxExportTest, TensorProtoFileErrors) {
  auto missing = LoadTensorProtoFile((dir_ / "nope.pb").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.pb"), std::string::npos);

  const std::string junk = (dir_ / "junk.pb").string();
  std::ofstream(junk, std::ios::binary) << "\xff\xff\xff\xff garbage";
  auto bad = LoadTensorProtoFile(junk);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("junk.pb"), std::string::npos);

  // Size mismatch in a TensorProto held in memory.
  onnx::TensorProto p;
  p.set_name("odd");
  p.set_data_type(onnx::TensorProto::FLOAT);
  p.add_dims(3);
  p.set_raw_data(std::string(8, '\0'));
  std::string bytes;
  ASSERT_TRUE(p.SerializeToString(&bytes));
  std::string name;
  auto mismatch = TensorFromProtoBytes(bytes.data(), bytes.size(), "", &name);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.status().message().find("'odd'"), std::string::npos);

  // Typed int32_data for f16 (bit patterns), as the ONNX test data uses.
  onnx::TensorProto h;
  h.set_name("h");
  h.set_data_type(onnx::TensorProto::FLOAT16);
  h.add_dims(1);
  h.add_int32_data(FloatToHalf(2.f));
  ASSERT_TRUE(h.SerializeToString(&bytes));
  auto hf = TensorFromProtoBytes(bytes.data(), bytes.size(), "", &name);
  ASSERT_TRUE(hf.ok()) << hf.status().ToString();
  EXPECT_EQ(name, "h");
  EXPECT_EQ(hf->GetAsDouble(0), 2.0);

  Status st = SaveTensorProtoFile((dir_ / "undef.pb").string(), Tensor(), "u");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  st = SaveTensorProtoFile((dir_ / "no_dir" / "x.pb").string(), Tensor::ScalarF32(1), "x");
  EXPECT_EQ(st.code(), StatusCode::kIoError);
}

}  // namespace
}  // namespace tessera
