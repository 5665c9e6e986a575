// ONNX importer tests: models are built with the protobuf API, written to a
// fresh temp folder and imported.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <onnx/onnx_pb.h>

#include "graph/onnx/onnx_import.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

class OnnxImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           StrCat("tessera_import_", ::getpid(), "_", info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "model");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The folder the model file goes in.
  fs::path ModelDir() const { return dir_ / "model"; }

  static onnx::ModelProto NewModel(int64_t opset = 17) {
    onnx::ModelProto m;
    m.set_ir_version(8);
    auto* op = m.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
    m.mutable_graph()->set_name("main");
    return m;
  }

  std::string Write(const onnx::ModelProto& m, const std::string& name = "model.onnx") {
    std::string bytes;
    EXPECT_TRUE(m.SerializeToString(&bytes));
    return WriteBytes(bytes, name);
  }
  std::string WriteBytes(const std::string& bytes, const std::string& name) {
    fs::path p = ModelDir() / name;
    std::ofstream f(p, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p.string();
  }

  Result<std::unique_ptr<Graph>> Import(const onnx::ModelProto& m, const ImportOptions& opts = {}) {
    return ImportOnnxFile(Write(m), opts);
  }

  fs::path dir_;
};

void AddInput(onnx::GraphProto* g, const std::string& name, int elem, const std::vector<int64_t>& dims) {
  auto* vi = g->add_input();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* sh = tt->mutable_shape();
  for (int64_t d : dims) sh->add_dim()->set_dim_value(d);
}

void AddOutput(onnx::GraphProto* g, const std::string& name, int elem = onnx::TensorProto::FLOAT) {
  auto* vi = g->add_output();
  vi->set_name(name);
  vi->mutable_type()->mutable_tensor_type()->set_elem_type(elem);
}

onnx::NodeProto* AddNode(onnx::GraphProto* g, const std::string& op, std::vector<std::string> ins,
                         std::vector<std::string> outs, const std::string& name = "") {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto& i : ins) n->add_input(i);
  for (auto& o : outs) n->add_output(o);
  return n;
}

onnx::TensorProto* AddF32Init(onnx::GraphProto* g, const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<float>& vals) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(vals.data(), vals.size() * sizeof(float));
  return t;
}

// A model "y = Add(x, w)" whose w is external data with the given location.
onnx::ModelProto ExternalModel(const std::string& location, int64_t offset, int64_t n = 4) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("main");
  AddInput(g, "x", onnx::TensorProto::FLOAT, {n});
  auto* t = g->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(n);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto kv = [&](const std::string& k, const std::string& v) {
    auto* e = t->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  kv("location", location);
  kv("offset", std::to_string(offset));
  kv("length", std::to_string(n * 4));
  AddNode(g, "Add", {"x", "w"}, {"y"}, "add");
  AddOutput(g, "y");
  return m;
}

void WriteFloats(const fs::path& p, int64_t pad_bytes, const std::vector<float>& v) {
  std::ofstream f(p, std::ios::binary);
  std::string pad(static_cast<size_t>(pad_bytes), 'P');
  f.write(pad.data(), static_cast<std::streamsize>(pad.size()));
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
}

void ExpectError(const Status& st, StatusCode code, const std::vector<std::string>& needles) {
  EXPECT_EQ(st.code(), code) << st.ToString();
  for (const auto& n : needles)
    EXPECT_NE(st.message().find(n), std::string::npos) << "missing '" << n << "' in: " << st.ToString();
}

// ---- file-level errors ----

TEST_F(OnnxImportTest, MissingFileIsNotFound) {
  std::string path = (ModelDir() / "nope.onnx").string();
  auto r = ImportOnnxFile(path);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kNotFound, {path});
}

TEST_F(OnnxImportTest, TruncatedFileIsInvalid) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2, 3});
  AddF32Init(g, "w", {2, 3}, {1, 2, 3, 4, 5, 6});
  AddNode(g, "Add", {"x", "w"}, {"y"}, "add");
  AddOutput(g, "y");
  std::string bytes;
  ASSERT_TRUE(m.SerializeToString(&bytes));
  bytes.resize(bytes.size() - 5);
  auto r = ImportOnnxFile(WriteBytes(bytes, "cut.onnx"));
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"cut.onnx", "is not a valid ONNX model"});
}

TEST_F(OnnxImportTest, GarbageBytesAreInvalid) {
  auto r = ImportOnnxFile(WriteBytes("this is certainly not a protobuf \xff\xfe\x01", "junk.onnx"));
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"junk.onnx", "is not a valid ONNX model"});
  // Bytes that parse as protobuf but are no model (no graph, no ir_version).
  onnx::TensorProto t;
  t.set_name("t");
  std::string bytes;
  ASSERT_TRUE(t.SerializeToString(&bytes));
  auto r2 = ImportOnnxBytes(bytes.data(), bytes.size(), "");
  ASSERT_FALSE(r2.ok());
  ExpectError(r2.status(), StatusCode::kInvalidArgument, {"is not a valid ONNX model"});
}

TEST_F(OnnxImportTest, EmptyGraphIsFine) {
  auto r = Import(NewModel());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->num_nodes(), 0u);
  EXPECT_EQ((*r)->name(), "main");
  EXPECT_EQ((*r)->OpsetFor(""), 17);
}

TEST_F(OnnxImportTest, BadOpsetIsUnsupported) {
  for (int64_t v : {6, 25}) {
    auto r = Import(NewModel(v));
    ASSERT_FALSE(r.ok());
    ExpectError(r.status(), StatusCode::kUnsupported, {StrCat("opset ", v)});
  }
  auto ok = Import(NewModel(7));
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  ok = Import(NewModel(24));
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST_F(OnnxImportTest, OpsetsOfAllDomainsAreRecorded) {
  auto m = NewModel();
  m.mutable_opset_import(0)->set_domain("ai.onnx");
  auto* ms = m.add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  auto* ts = m.add_opset_import();
  ts->set_domain("tessera");
  ts->set_version(2);
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  AddNode(g, "Relu", {"x"}, {"y"}, "r")->set_domain("ai.onnx");
  AddNode(g, "FusedAttention", {"y", "y", "y"}, {"z"}, "fa")->set_domain("tessera");
  AddOutput(g, "z");
  auto r = Import(m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Graph& gr = **r;
  EXPECT_EQ(gr.OpsetFor(""), 17);
  EXPECT_EQ(gr.OpsetFor("com.microsoft"), 1);
  EXPECT_EQ(gr.OpsetFor("tessera"), 2);
  EXPECT_EQ(gr.FindNode("r")->domain(), "");
  EXPECT_EQ(gr.FindNode("fa")->domain(), "tessera");
}

TEST_F(OnnxImportTest, MissingDefaultOpsetIsInvalid) {
  auto m = NewModel();
  m.clear_opset_import();
  AddInput(m.mutable_graph(), "x", onnx::TensorProto::FLOAT, {2});
  AddNode(m.mutable_graph(), "Relu", {"x"}, {"y"}, "r");
  AddOutput(m.mutable_graph(), "y");
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"opset"});
}

TEST_F(OnnxImportTest, ModelLocalFunctionsAreUnsupported) {
  auto m = NewModel();
  auto* f = m.add_functions();
  f->set_name("MyGelu");
  f->set_domain("custom");
  AddInput(m.mutable_graph(), "x", onnx::TensorProto::FLOAT, {2});
  AddNode(m.mutable_graph(), "MyGelu", {"x"}, {"y"}, "gelu")->set_domain("custom");
  AddOutput(m.mutable_graph(), "y");
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kUnsupported, {"'gelu'", "function"});
}

// ---- names and structure ----

TEST_F(OnnxImportTest, UndefinedInputNamesNodeAndName) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  AddNode(g, "Add", {"x", "ghost"}, {"y"}, "adder");
  AddOutput(g, "y");
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"adder", "Add", "'ghost'"});
}

TEST_F(OnnxImportTest, UndefinedGraphOutputIsInvalid) {
  auto m = NewModel();
  AddInput(m.mutable_graph(), "x", onnx::TensorProto::FLOAT, {2});
  AddOutput(m.mutable_graph(), "nowhere");
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"'nowhere'"});
}

TEST_F(OnnxImportTest, ValueDefinedTwiceIsInvalid) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  AddNode(g, "Relu", {"x"}, {"y"}, "a");
  AddNode(g, "Neg", {"x"}, {"y"}, "b");
  AddOutput(g, "y");
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"'b'", "'y'"});
}

TEST_F(OnnxImportTest, CycleIsInvalid) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  AddNode(g, "Add", {"x", "b"}, {"a"}, "n1");
  AddNode(g, "Relu", {"a"}, {"b"}, "n2");
  AddOutput(g, "b");
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"cycle"});
}

TEST_F(OnnxImportTest, UnsortedNodesAreSortedAndUnnamedNodesNamed) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  AddNode(g, "Neg", {"b"}, {"c"});   // index 0, consumes the output of index 2
  AddNode(g, "Relu", {"x"}, {"a"});  // index 1
  AddNode(g, "Abs", {"a"}, {"b"}, "Neg_0");  // a name that collides with the generated one
  AddOutput(g, "c");
  auto r = Import(m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto nodes = (*r)->nodes();
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0]->op_type(), "Relu");
  EXPECT_EQ(nodes[0]->name(), "Relu_1");
  EXPECT_EQ(nodes[1]->op_type(), "Abs");
  EXPECT_EQ(nodes[1]->name(), "Neg_0");
  EXPECT_EQ(nodes[2]->op_type(), "Neg");
  EXPECT_NE(nodes[2]->name(), "Neg_0");
  EXPECT_NE(nodes[2]->name(), "");
  EXPECT_TRUE((*r)->Verify().ok());
}

TEST_F(OnnxImportTest, InitializerInputsAreConstantsNotRuntimeInputs) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {3});
  AddInput(g, "w", onnx::TensorProto::FLOAT, {3});
  AddF32Init(g, "w", {3}, {1, 2, 3});
  AddNode(g, "Add", {"x", "w"}, {"y"}, "add");
  AddOutput(g, "y");
  auto r = Import(m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto rt = (*r)->RuntimeInputs();
  ASSERT_EQ(rt.size(), 1u);
  EXPECT_EQ(rt[0]->name(), "x");
  Value* w = (*r)->FindValue("w");
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->is_constant());
  EXPECT_EQ(w->constant()->data<float>()[2], 3.f);
  EXPECT_EQ((*r)->FindNode("add")->input(1), w);
}

TEST_F(OnnxImportTest, OmittedOptionalInputsAndOutputsAreNull) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {3});
  AddNode(g, "Clip", {"x", "", "hi"}, {"y"}, "clip");
  AddF32Init(g, "hi", {}, {6});
  AddNode(g, "Dropout", {"y"}, {"z", ""}, "drop");
  AddOutput(g, "z");
  auto r = Import(m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Node* clip = (*r)->FindNode("clip");
  ASSERT_EQ(clip->num_inputs(), 3u);
  EXPECT_EQ(clip->input(1), nullptr);
  EXPECT_EQ(clip->input(2)->name(), "hi");
  Node* drop = (*r)->FindNode("drop");
  ASSERT_EQ(drop->num_outputs(), 2u);
  EXPECT_EQ(drop->output(1), nullptr);
}

// ---- initializers ----

TEST_F(OnnxImportTest, InitializerSizeMismatchNamesTensor) {
  auto m = NewModel();
  AddF32Init(m.mutable_graph(), "weights", {2, 3}, {1, 2, 3, 4, 5});  // 5 of 6
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"'weights'", "raw_data"});

  auto m2 = NewModel();
  auto* t = m2.mutable_graph()->add_initializer();
  t->set_name("ints");
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_dims(3);
  t->add_int64_data(1);
  t->add_int64_data(2);
  auto r2 = Import(m2);
  ASSERT_FALSE(r2.ok());
  ExpectError(r2.status(), StatusCode::kInvalidArgument, {"'ints'", "int64_data"});

  // Data in the wrong typed field counts as missing.
  auto m3 = NewModel();
  auto* t3 = m3.mutable_graph()->add_initializer();
  t3->set_name("wrongfield");
  t3->set_data_type(onnx::TensorProto::INT64);
  t3->add_dims(1);
  t3->add_float_data(1.f);
  auto r3 = Import(m3);
  ASSERT_FALSE(r3.ok());
  ExpectError(r3.status(), StatusCode::kInvalidArgument, {"'wrongfield'"});
}

TEST_F(OnnxImportTest, DimsOverflowIsOutOfRange) {
  auto m = NewModel();
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name("huge");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(int64_t{1} << 40);
  t->add_dims(int64_t{1} << 40);
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kOutOfRange, {"'huge'", "overflow"});

  auto m2 = NewModel();
  auto* t2 = m2.mutable_graph()->add_initializer();
  t2->set_name("neg");
  t2->set_data_type(onnx::TensorProto::FLOAT);
  t2->add_dims(-2);
  auto r2 = Import(m2);
  ASSERT_FALSE(r2.ok());
  ExpectError(r2.status(), StatusCode::kOutOfRange, {"'neg'", "-2"});

  // Element count fits but bytes do not.
  auto m3 = NewModel();
  auto* t3 = m3.mutable_graph()->add_initializer();
  t3->set_name("bytes");
  t3->set_data_type(onnx::TensorProto::DOUBLE);
  t3->add_dims(int64_t{1} << 61);
  auto r3 = Import(m3);
  ASSERT_FALSE(r3.ok());
  ExpectError(r3.status(), StatusCode::kOutOfRange, {"'bytes'"});
}

TEST_F(OnnxImportTest, TensorOverCapIsOutOfMemory) {
  auto m = NewModel();
  AddF32Init(m.mutable_graph(), "big", {300}, std::vector<float>(300, 1.f));  // 1200 bytes
  ImportOptions opts;
  opts.max_tensor_bytes = 1024;
  auto r = Import(m, opts);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kOutOfMemory, {"'big'", "1024", "1200"});
  opts.max_tensor_bytes = 1200;
  auto ok = Import(m, opts);
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST_F(OnnxImportTest, SparseInitializerIsUnsupported) {
  auto m = NewModel();
  auto* sp = m.mutable_graph()->add_sparse_initializer();
  sp->mutable_values()->set_name("sp");
  sp->mutable_values()->set_data_type(onnx::TensorProto::FLOAT);
  sp->add_dims(4);
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kUnsupported, {"sparse", "'sp'"});
}

TEST_F(OnnxImportTest, UnknownDataTypeIsUnsupported) {
  auto m = NewModel();
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name("cplx");
  t->set_data_type(onnx::TensorProto::COMPLEX64);
  t->add_dims(1);
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kUnsupported, {"'cplx'", "COMPLEX64"});
}

TEST_F(OnnxImportTest, TypedDataFieldsFollowOnnxRules) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  auto add = [&](const std::string& name, int dt, int64_t n) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(dt);
    t->add_dims(n);
    return t;
  };
  auto* f = add("f", onnx::TensorProto::FLOAT, 2);
  f->add_float_data(1.5f);
  f->add_float_data(-2.f);
  auto* h = add("h", onnx::TensorProto::FLOAT16, 2);
  h->add_int32_data(FloatToHalf(1.5f));
  h->add_int32_data(FloatToHalf(-3.f));
  auto* bf = add("bf", onnx::TensorProto::BFLOAT16, 1);
  bf->add_int32_data(FloatToBF16(2.5f));
  auto* b = add("b", onnx::TensorProto::BOOL, 3);
  b->add_int32_data(1);
  b->add_int32_data(0);
  b->add_int32_data(7);
  auto* i8 = add("i8", onnx::TensorProto::INT8, 2);
  i8->add_int32_data(-5);
  i8->add_int32_data(100);
  auto* u16 = add("u16", onnx::TensorProto::UINT16, 1);
  u16->add_int32_data(65000);
  auto* i32 = add("i32", onnx::TensorProto::INT32, 1);
  i32->add_int32_data(-123456);
  auto* i64 = add("i64", onnx::TensorProto::INT64, 1);
  i64->add_int64_data(int64_t{1} << 40);
  auto* d = add("d", onnx::TensorProto::DOUBLE, 1);
  d->add_double_data(0.125);
  auto* u32 = add("u32", onnx::TensorProto::UINT32, 1);
  u32->add_uint64_data(4000000000u);
  auto* u64 = add("u64", onnx::TensorProto::UINT64, 1);
  u64->add_uint64_data(uint64_t{1} << 63);
  auto* s = add("s", onnx::TensorProto::STRING, 2);
  s->add_string_data("hello");
  s->add_string_data("");
  auto r = Import(m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto c = [&](const std::string& n) -> const Tensor& { return *(*r)->FindValue(n)->constant(); };
  EXPECT_EQ(c("f").GetAsDouble(1), -2.0);
  EXPECT_EQ(c("h").dtype(), DType::kF16);
  EXPECT_EQ(c("h").GetAsDouble(0), 1.5);
  EXPECT_EQ(c("h").GetAsDouble(1), -3.0);
  EXPECT_EQ(c("bf").GetAsDouble(0), 2.5);
  EXPECT_EQ(c("b").dtype(), DType::kBool);
  EXPECT_EQ(c("b").data<uint8_t>()[0], 1);
  EXPECT_EQ(c("b").data<uint8_t>()[1], 0);
  EXPECT_EQ(c("b").data<uint8_t>()[2], 1);
  EXPECT_EQ(c("i8").GetAsInt64(0), -5);
  EXPECT_EQ(c("i8").GetAsInt64(1), 100);
  EXPECT_EQ(c("u16").GetAsInt64(0), 65000);
  EXPECT_EQ(c("i32").GetAsInt64(0), -123456);
  EXPECT_EQ(c("i64").GetAsInt64(0), int64_t{1} << 40);
  EXPECT_EQ(c("d").GetAsDouble(0), 0.125);
  EXPECT_EQ(c("u32").GetAsInt64(0), 4000000000);
  EXPECT_EQ(c("u64").data<uint64_t>()[0], uint64_t{1} << 63);
  ASSERT_EQ(c("s").strings().size(), 2u);
  EXPECT_EQ(c("s").strings()[0], "hello");
  EXPECT_EQ((*r)->FindValue("s")->type().ToString(), "string[2]");
}

// ---- external data ----

TEST_F(OnnxImportTest, ExternalDataAlignedAndUnaligned) {
  const std::vector<float> vals = {1.f, -2.f, 3.5f, 4.25f};
  WriteFloats(ModelDir() / "w.bin", 0, vals);
  auto r = Import(ExternalModel("w.bin", 0));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Tensor* w = (*r)->FindValue("w")->constant();
  ASSERT_NE(w, nullptr);
  ASSERT_EQ(w->nbytes(), 16u);
  EXPECT_EQ(std::memcmp(w->raw(), vals.data(), 16), 0);
  EXPECT_EQ((*r)->RuntimeInputs().size(), 1u);

  // In a subfolder, at an offset that is not 64-byte aligned (copied).
  fs::create_directories(ModelDir() / "data");
  WriteFloats(ModelDir() / "data" / "w2.bin", 12, vals);
  auto r2 = Import(ExternalModel("data/w2.bin", 12));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  const Tensor* w2 = (*r2)->FindValue("w")->constant();
  EXPECT_EQ(std::memcmp(w2->raw(), vals.data(), 16), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w2->raw()) % 64, 0u);

  // At an aligned, non-zero offset beyond the first page (mapped).
  WriteFloats(ModelDir() / "w3.bin", 8192 + 64, vals);
  auto r3 = Import(ExternalModel("w3.bin", 8192 + 64));
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_EQ(std::memcmp((*r3)->FindValue("w")->constant()->raw(), vals.data(), 16), 0);
}

TEST_F(OnnxImportTest, ExternalDataOutlivesTheGraph) {
  const std::vector<float> vals = {9.f, 8.f, 7.f, 6.f};
  WriteFloats(ModelDir() / "w.bin", 0, vals);
  Tensor kept;
  {
    auto r = Import(ExternalModel("w.bin", 0));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    kept = *(*r)->FindValue("w")->constant();
  }
  EXPECT_EQ(kept.data<float>()[3], 6.f);
}

TEST_F(OnnxImportTest, ExternalDataParentPathIsRejected) {
  WriteFloats(dir_ / "outside.bin", 0, {1, 2, 3, 4});
  auto r = Import(ExternalModel("../outside.bin", 0));
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"'w'", "escapes"});
  auto r2 = Import(ExternalModel("data/../../outside.bin", 0));
  ASSERT_FALSE(r2.ok());
  ExpectError(r2.status(), StatusCode::kInvalidArgument, {"'w'"});
}

TEST_F(OnnxImportTest, ExternalDataAbsolutePathIsRejected) {
  WriteFloats(ModelDir() / "w.bin", 0, {1, 2, 3, 4});
  auto r = Import(ExternalModel((ModelDir() / "w.bin").string(), 0));
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"'w'", "absolute"});
}

TEST_F(OnnxImportTest, ExternalDataSymlinkOutsideIsRejected) {
  WriteFloats(dir_ / "outside.bin", 0, {1, 2, 3, 4});
  fs::create_symlink(dir_ / "outside.bin", ModelDir() / "link.bin");
  auto r = Import(ExternalModel("link.bin", 0));
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"'w'", "symbolic link"});

  // A symlinked folder that leads outside.
  fs::create_directories(dir_ / "elsewhere");
  WriteFloats(dir_ / "elsewhere" / "x.bin", 0, {1, 2, 3, 4});
  fs::create_directory_symlink(dir_ / "elsewhere", ModelDir() / "sub");
  auto r2 = Import(ExternalModel("sub/x.bin", 0));
  ASSERT_FALSE(r2.ok());
  ExpectError(r2.status(), StatusCode::kInvalidArgument, {"'w'", "outside"});
}

TEST_F(OnnxImportTest, ExternalDataOffsetBeyondFileIsRejected) {
  WriteFloats(ModelDir() / "w.bin", 0, {1, 2, 3, 4});
  auto r = Import(ExternalModel("w.bin", 64));
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"'w'", "offset 64", "beyond"});
  auto r2 = Import(ExternalModel("w.bin", 4));  // 4 + 16 > 16
  ASSERT_FALSE(r2.ok());
  ExpectError(r2.status(), StatusCode::kInvalidArgument, {"'w'", "beyond"});
}

TEST_F(OnnxImportTest, ExternalDataMissingFileIsRejected) {
  auto r = Import(ExternalModel("absent.bin", 0));
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"'w'", "absent.bin", "does not exist"});
}

TEST_F(OnnxImportTest, ExternalDataLengthMismatchIsRejected) {
  WriteFloats(ModelDir() / "w.bin", 0, {1, 2, 3, 4, 5});
  auto m = ExternalModel("w.bin", 0);
  auto* t = m.mutable_graph()->mutable_initializer(0);
  for (auto& kv : *t->mutable_external_data())
    if (kv.key() == "length") kv.set_value("20");
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kInvalidArgument, {"'w'", "length 20"});
}

TEST_F(OnnxImportTest, ExternalResolverIsUsedInsteadOfFiles) {
  std::string seen_loc;
  int64_t seen_off = -1, seen_len = -1;
  ImportOptions opts;
  opts.external_resolver = [&](const std::string& loc, int64_t off, int64_t len, DType dt,
                               const std::vector<int64_t>& dims) -> Result<Tensor> {
    seen_loc = loc;
    seen_off = off;
    seen_len = len;
    return Tensor::FromVector<float>(dt, dims, {5, 6, 7, 8});
  };
  // The location need not exist as a file: the resolver owns it.
  auto r = Import(ExternalModel("plan-weights", 128), opts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(seen_loc, "plan-weights");
  EXPECT_EQ(seen_off, 128);
  EXPECT_EQ(seen_len, 16);
  EXPECT_EQ((*r)->FindValue("w")->constant()->data<float>()[3], 8.f);

  opts.external_resolver = [](const std::string&, int64_t, int64_t, DType, const std::vector<int64_t>&)
      -> Result<Tensor> { return Tensor::FromVector<float>(DType::kF32, {2}, {1, 2}); };
  auto bad = Import(ExternalModel("plan-weights", 0), opts);
  ASSERT_FALSE(bad.ok());
  ExpectError(bad.status(), StatusCode::kInvalidArgument, {"'w'", "resolver"});
}

TEST_F(OnnxImportTest, ExternalDataFromBytesNeedsAFolder) {
  WriteFloats(ModelDir() / "w.bin", 0, {1, 2, 3, 4});
  std::string bytes;
  ASSERT_TRUE(ExternalModel("w.bin", 0).SerializeToString(&bytes));
  auto no_dir = ImportOnnxBytes(bytes.data(), bytes.size(), "");
  ASSERT_FALSE(no_dir.ok());
  ExpectError(no_dir.status(), StatusCode::kInvalidArgument, {"'w'"});
  auto with_dir = ImportOnnxBytes(bytes.data(), bytes.size(), ModelDir().string());
  ASSERT_TRUE(with_dir.ok()) << with_dir.status().ToString();
  EXPECT_EQ((*with_dir)->model_dir(), ModelDir().string());
  EXPECT_EQ((*with_dir)->FindValue("w")->constant()->data<float>()[1], 2.f);
}

// ---- Constant nodes, types, attributes ----

TEST_F(OnnxImportTest, ConstantNodesBecomeConstants) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  auto* c1 = AddNode(g, "Constant", {}, {"c_tensor"}, "c1");
  auto* a1 = c1->add_attribute();
  a1->set_name("value");
  a1->set_type(onnx::AttributeProto::TENSOR);
  a1->mutable_t()->set_data_type(onnx::TensorProto::INT64);
  a1->mutable_t()->add_dims(2);
  a1->mutable_t()->add_int64_data(4);
  a1->mutable_t()->add_int64_data(-1);
  auto* c2 = AddNode(g, "Constant", {}, {"c_float"});
  auto* a2 = c2->add_attribute();
  a2->set_name("value_float");
  a2->set_type(onnx::AttributeProto::FLOAT);
  a2->set_f(0.5f);
  auto* c3 = AddNode(g, "Constant", {}, {"c_ints"});
  auto* a3 = c3->add_attribute();
  a3->set_name("value_ints");
  a3->set_type(onnx::AttributeProto::INTS);
  a3->add_ints(1);
  a3->add_ints(2);
  a3->add_ints(3);
  auto* c4 = AddNode(g, "Constant", {}, {"c_str"});
  auto* a4 = c4->add_attribute();
  a4->set_name("value_string");
  a4->set_type(onnx::AttributeProto::STRING);
  a4->set_s("abc");
  auto* c5 = AddNode(g, "Constant", {}, {"c_int"});
  auto* a5 = c5->add_attribute();
  a5->set_name("value_int");
  a5->set_type(onnx::AttributeProto::INT);
  a5->set_i(-7);
  auto* c6 = AddNode(g, "Constant", {}, {"c_floats"});
  auto* a6 = c6->add_attribute();
  a6->set_name("value_floats");
  a6->set_type(onnx::AttributeProto::FLOATS);
  a6->add_floats(1.f);
  a6->add_floats(2.f);
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  AddNode(g, "Reshape", {"x", "c_tensor"}, {"y"}, "reshape");
  AddOutput(g, "y");
  AddOutput(g, "c_float");
  auto r = Import(m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Graph& gr = **r;
  EXPECT_EQ(gr.num_nodes(), 1u);  // only the Reshape
  const Value* ct = gr.FindValue("c_tensor");
  ASSERT_TRUE(ct && ct->is_constant());
  EXPECT_EQ(ct->type().ToString(), "i64[2]");
  EXPECT_EQ(ct->constant()->GetAsInt64(1), -1);
  EXPECT_EQ(gr.FindNode("reshape")->input(1), ct);
  const Value* cf = gr.FindValue("c_float");
  EXPECT_EQ(cf->type().ToString(), "f32[]");
  EXPECT_EQ(cf->constant()->GetAsDouble(0), 0.5);
  EXPECT_TRUE(cf->is_graph_output());
  EXPECT_EQ(gr.FindValue("c_ints")->type().ToString(), "i64[3]");
  EXPECT_EQ(gr.FindValue("c_ints")->constant()->GetAsInt64(2), 3);
  EXPECT_EQ(gr.FindValue("c_str")->constant()->strings().at(0), "abc");
  EXPECT_EQ(gr.FindValue("c_int")->type().ToString(), "i64[]");
  EXPECT_EQ(gr.FindValue("c_int")->constant()->GetAsInt64(0), -7);
  EXPECT_EQ(gr.FindValue("c_floats")->constant()->GetAsDouble(1), 2.0);

  // A Constant with no value attribute is an error naming it.
  auto m2 = NewModel();
  AddNode(m2.mutable_graph(), "Constant", {}, {"k"}, "empty_const");
  auto r2 = Import(m2);
  ASSERT_FALSE(r2.ok());
  ExpectError(r2.status(), StatusCode::kInvalidArgument, {"empty_const", "Constant"});
}

TEST_F(OnnxImportTest, SymbolicDimsAndDeclaredTypes) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  auto* vi = g->add_input();
  vi->set_name("x");
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("batch");
  tt->mutable_shape()->add_dim()->set_dim_value(3);
  tt->mutable_shape()->add_dim();  // neither
  auto* vr = g->add_input();
  vr->set_name("r");
  vr->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);  // no shape
  AddNode(g, "Relu", {"x"}, {"h"}, "relu");
  AddNode(g, "Neg", {"h"}, {"y"}, "neg");
  auto* info = g->add_value_info();
  info->set_name("h");
  auto* ht = info->mutable_type()->mutable_tensor_type();
  ht->set_elem_type(onnx::TensorProto::FLOAT);
  ht->mutable_shape()->add_dim()->set_dim_param("batch");
  ht->mutable_shape()->add_dim()->set_dim_value(3);
  ht->mutable_shape()->add_dim()->set_dim_value(5);
  AddOutput(g, "y", onnx::TensorProto::FLOAT);  // dtype only, no shape
  auto r = Import(m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Value* x = (*r)->FindValue("x");
  ASSERT_EQ(x->shape().rank(), 3);
  EXPECT_EQ(x->shape().dim(0), Dim::Symbol("batch"));
  EXPECT_EQ(x->shape().dim(1), Dim::Known(3));
  EXPECT_EQ(x->shape().dim(2), Dim::Unknown());
  EXPECT_EQ(x->type().ToString(), "f32[batch,3,?]");
  const Value* rv = (*r)->FindValue("r");
  EXPECT_EQ(rv->dtype(), DType::kI64);
  EXPECT_FALSE(rv->shape().has_rank());
  EXPECT_EQ((*r)->FindValue("h")->type().ToString(), "f32[batch,3,5]");
  const Value* y = (*r)->FindValue("y");
  EXPECT_EQ(y->dtype(), DType::kF32);
  EXPECT_FALSE(y->shape().has_rank());
}

TEST_F(OnnxImportTest, NonTensorTypesAreUnsupported) {
  auto m = NewModel();
  auto* vi = m.mutable_graph()->add_input();
  vi->set_name("seq");
  vi->mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(1);
  auto r = Import(m);
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), StatusCode::kUnsupported, {"'seq'", "sequence"});
}

TEST_F(OnnxImportTest, AttributesOfEveryType) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {1, 1, 4, 4});
  auto* n = AddNode(g, "Custom", {"x"}, {"y"}, "c");
  n->set_domain("tessera");
  auto attr = [&](const std::string& name, onnx::AttributeProto::AttributeType t) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(t);
    return a;
  };
  attr("f", onnx::AttributeProto::FLOAT)->set_f(0.25f);
  attr("i", onnx::AttributeProto::INT)->set_i(-3);
  attr("s", onnx::AttributeProto::STRING)->set_s("SAME_UPPER");
  auto* fs_ = attr("fs", onnx::AttributeProto::FLOATS);
  fs_->add_floats(1.f);
  fs_->add_floats(2.f);
  auto* is = attr("is", onnx::AttributeProto::INTS);
  is->add_ints(1);
  is->add_ints(1);
  auto* ss = attr("ss", onnx::AttributeProto::STRINGS);
  ss->add_strings("a");
  auto* t = attr("t", onnx::AttributeProto::TENSOR)->mutable_t();
  t->set_data_type(onnx::TensorProto::INT32);
  t->add_dims(2);
  t->add_int32_data(10);
  t->add_int32_data(20);
  auto* untyped = n->add_attribute();  // very old files: no type, one field set
  untyped->set_name("old");
  untyped->set_i(9);
  m.add_opset_import()->set_domain("tessera");
  AddOutput(g, "y");
  auto r = Import(m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Node* c = (*r)->FindNode("c");
  EXPECT_EQ(c->GetFloat("f", 0), 0.25f);
  EXPECT_EQ(c->GetInt("i", 0), -3);
  EXPECT_EQ(c->GetString("s", ""), "SAME_UPPER");
  EXPECT_EQ(c->GetFloats("fs"), (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(c->GetInts("is"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(c->attr("ss")->strings, (std::vector<std::string>{"a"}));
  ASSERT_EQ(c->attr("t")->type, AttrType::kTensor);
  EXPECT_EQ(c->attr("t")->t.GetAsInt64(1), 20);
  EXPECT_EQ(c->GetInt("old", 0), 9);

  // Unsupported attribute kinds name the node and the attribute.
  attr("gs", onnx::AttributeProto::GRAPHS)->add_graphs();
  auto bad = Import(m);
  ASSERT_FALSE(bad.ok());
  ExpectError(bad.status(), StatusCode::kUnsupported, {"'c'", "'gs'"});
}

// If node whose branches use outer values; the producer of one of them comes
// after the If in the file, so only the subgraph reference orders them.
TEST_F(OnnxImportTest, SubgraphsResolveOuterNames) {
  auto m = NewModel();
  auto* g = m.mutable_graph();
  AddInput(g, "cond", onnx::TensorProto::BOOL, {});
  AddInput(g, "x", onnx::TensorProto::FLOAT, {2});
  auto* iff = AddNode(g, "If", {"cond"}, {"out"}, "if");
  AddNode(g, "Relu", {"x"}, {"rx"}, "relu");  // after the If; used inside its branches
  auto* then_a = iff->add_attribute();
  then_a->set_name("then_branch");
  then_a->set_type(onnx::AttributeProto::GRAPH);
  auto* tg = then_a->mutable_g();
  tg->set_name("then");
  AddNode(tg, "Add", {"rx", "x"}, {"t_out"}, "t_add");
  AddOutput(tg, "t_out");
  auto* else_a = iff->add_attribute();
  else_a->set_name("else_branch");
  else_a->set_type(onnx::AttributeProto::GRAPH);
  auto* eg = else_a->mutable_g();
  eg->set_name("else");
  AddOutput(eg, "rx");  // an outer value returned directly
  AddOutput(g, "out");
  auto r = Import(m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Graph& gr = **r;
  auto nodes = gr.nodes();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0]->name(), "relu");
  EXPECT_EQ(nodes[1]->name(), "if");
  const Attribute* ta = nodes[1]->attr("then_branch");
  ASSERT_TRUE(ta && ta->type == AttrType::kGraph && ta->g);
  Graph& then_g = *ta->g;
  EXPECT_EQ(then_g.parent(), &gr);
  EXPECT_EQ(then_g.name(), "then");
  // No placeholders for outer names inside the branch.
  EXPECT_EQ(then_g.FindValue("rx"), nullptr);
  EXPECT_EQ(then_g.FindValue("x"), nullptr);
  const Node* add = then_g.FindNode("t_add");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->input(0), gr.FindValue("rx"));
  EXPECT_EQ(add->input(1), gr.FindValue("x"));
  EXPECT_EQ(then_g.LookupValue("x"), gr.FindValue("x"));
  ASSERT_EQ(then_g.outputs().size(), 1u);
  EXPECT_EQ(then_g.outputs()[0]->name(), "t_out");
  EXPECT_EQ(then_g.OpsetFor(""), 17);
  EXPECT_TRUE(then_g.Verify().ok());
  Graph& else_g = *nodes[1]->attr("else_branch")->g;
  ASSERT_EQ(else_g.outputs().size(), 1u);
  ASSERT_NE(else_g.outputs()[0]->producer(), nullptr);
  EXPECT_EQ(else_g.outputs()[0]->producer()->op_type(), "Identity");
  EXPECT_EQ(else_g.outputs()[0]->producer()->input(0), gr.FindValue("rx"));
  EXPECT_FALSE(gr.FindValue("rx")->is_graph_output());
  EXPECT_TRUE(else_g.Verify().ok()) << else_g.Verify().ToString();

  // A name defined nowhere, inside a branch: the error names the inner node.
  tg->mutable_node(0)->set_input(1, "missing_outer");
  auto bad = Import(m);
  ASSERT_FALSE(bad.ok());
  ExpectError(bad.status(), StatusCode::kInvalidArgument, {"t_add", "'missing_outer'", "then_branch"});
}

}  // namespace
}  // namespace tessera
