// Host-side logic of the CUDA backend, tested without a GPU: options, the
// allocator's cap accounting, staging chunks, claim rules, attention tiling
// and broadcast / transpose / reduction geometry (backends/cuda/cuda_host.h).
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "backends/cuda/cuda_host.h"

namespace tessera::cuda {
namespace {

// ---- options ------------------------------------------------------------------------------

TEST(CudaOptions, ParsesByteSizes) {
  uint64_t v = 0;
  EXPECT_TRUE(ParseByteSize("1073741824", &v));
  EXPECT_EQ(v, 1073741824u);
  EXPECT_TRUE(ParseByteSize("512M", &v));
  EXPECT_EQ(v, 512ull << 20);
  EXPECT_TRUE(ParseByteSize("8GiB", &v));
  EXPECT_EQ(v, 8ull << 30);
  EXPECT_TRUE(ParseByteSize("1.5G", &v));
  EXPECT_EQ(v, 3ull << 29);
  EXPECT_TRUE(ParseByteSize("64kb", &v));
  EXPECT_EQ(v, 64000u) << "KB is a power of 1000, as in the deployment config";
  EXPECT_TRUE(ParseByteSize("512 MiB", &v));
  EXPECT_EQ(v, 512ull << 20);
  EXPECT_TRUE(ParseByteSize("2GB", &v));
  EXPECT_EQ(v, 2000000000u);
  EXPECT_TRUE(ParseByteSize("0", &v));
  EXPECT_EQ(v, 0u);
  for (const char* bad : {"", "abc", "12X", "-5", "1.5", "12 GiBs", "G"}) EXPECT_FALSE(ParseByteSize(bad, &v)) << bad;
}

TEST(CudaOptions, ParsesBooleans) {
  bool b = false;
  for (const char* t : {"1", "true", "ON", "yes"}) {
    b = false;
    EXPECT_TRUE(ParseBool(t, &b)) << t;
    EXPECT_TRUE(b) << t;
  }
  for (const char* f : {"0", "false", "Off", "no"}) {
    b = true;
    EXPECT_TRUE(ParseBool(f, &b)) << f;
    EXPECT_FALSE(b) << f;
  }
  EXPECT_FALSE(ParseBool("maybe", &b));
}

TEST(CudaOptions, ReadsBackendOptions) {
  tsr_option kv[] = {{"tf32", "1"}, {"cuda_graphs", "off"}, {"max_alloc_bytes", "2G"}, {"threads", "4"},
                     {"memory_cap", "8GiB"}};
  tsr_compile_options o{sizeof(o), 5, kv};
  CudaOptions opts;
  Err e = ParseCudaOptions(&o, &opts);
  ASSERT_TRUE(e.ok()) << e.message;
  EXPECT_TRUE(opts.tf32);
  EXPECT_FALSE(opts.cuda_graphs);
  EXPECT_EQ(opts.max_alloc_bytes, 2ull << 30);
  EXPECT_EQ(opts.memory_cap, 8ull << 30);
  EXPECT_EQ(opts.release_threshold, UINT64_MAX);
  // NULL options leave the defaults.
  CudaOptions d;
  EXPECT_TRUE(ParseCudaOptions(nullptr, &d).ok());
  EXPECT_FALSE(d.tf32);
  EXPECT_TRUE(d.cuda_graphs);
  EXPECT_EQ(d.memory_cap, 0u);
}

TEST(CudaOptions, PrecisionSelectsReducedF32Math) {
  CudaOptions o;
  tsr_option tf[] = {{"tf32", "1"}};
  tsr_compile_options c1{sizeof(c1), 1, tf};
  ASSERT_TRUE(ParseCudaOptions(&c1, &o).ok());
  EXPECT_EQ(o.f32_math, F32Math::kTf32);
  tsr_option bf[] = {{"precision", "bf16"}};
  tsr_compile_options c2{sizeof(c2), 1, bf};
  ASSERT_TRUE(ParseCudaOptions(&c2, &o).ok());
  EXPECT_EQ(o.f32_math, F32Math::kBf16) << "precision wins over tf32";
  tsr_option off[] = {{"tf32", "0"}, {"precision", "f32"}};
  tsr_compile_options c3{sizeof(c3), 2, off};
  CudaOptions fresh;
  fresh.tf32 = true;
  fresh.f32_math = F32Math::kTf32;
  ASSERT_TRUE(ParseCudaOptions(&c3, &fresh).ok());
  EXPECT_EQ(fresh.f32_math, F32Math::kExact) << "tf32=0 at compile turns the backend default off";
  tsr_option bad[] = {{"precision", "fp8"}};
  tsr_compile_options c4{sizeof(c4), 1, bad};
  Err e = ParseCudaOptions(&c4, &o);
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("precision='fp8'"), std::string::npos) << e.message;
}

TEST(CudaOptions, RejectsBadValuesWithTheKeyInTheMessage) {
  tsr_option kv1[] = {{"tf32", "maybe"}};
  tsr_compile_options o1{sizeof(o1), 1, kv1};
  CudaOptions opts;
  Err e = ParseCudaOptions(&o1, &opts);
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("tf32='maybe'"), std::string::npos) << e.message;
  tsr_option kv2[] = {{"memory_cap", "lots"}};
  tsr_compile_options o2{sizeof(o2), 1, kv2};
  e = ParseCudaOptions(&o2, &opts);
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("memory_cap='lots'"), std::string::npos) << e.message;
}

// ---- memory accounting ---------------------------------------------------------------------

TEST(CudaMemoryAccounting, EnforcesTheCapAndTracksPeak) {
  MemoryAccounting acct(1000);
  EXPECT_TRUE(acct.Reserve(600, "test").ok());
  EXPECT_EQ(acct.used(), 600u);
  Err e = acct.Reserve(500, "buffer_alloc");
  EXPECT_EQ(e.code, TSR_ERR_OUT_OF_MEMORY);
  EXPECT_NE(e.message.find("500 bytes"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("cap of 1000"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("buffer_alloc"), std::string::npos) << e.message;
  EXPECT_EQ(acct.used(), 600u) << "a failed reservation must not change the books";
  EXPECT_TRUE(acct.Reserve(400, "test").ok());
  EXPECT_EQ(acct.used(), 1000u);
  acct.Release(600);
  EXPECT_EQ(acct.used(), 400u);
  EXPECT_EQ(acct.peak(), 1000u);
  EXPECT_TRUE(acct.Reserve(600, "test").ok());  // usable again after the failure
  EXPECT_EQ(acct.Reserve(1, "test").code, TSR_ERR_OUT_OF_MEMORY);
}

TEST(CudaMemoryAccounting, NoCapMeansUnlimitedAndHugeRequestsDoNotWrap) {
  MemoryAccounting acct;
  EXPECT_TRUE(acct.Reserve(1ull << 62, "test").ok());
  EXPECT_TRUE(acct.Reserve(1ull << 62, "test").ok());
  MemoryAccounting capped(100);
  EXPECT_EQ(capped.Reserve(UINT64_MAX, "test").code, TSR_ERR_OUT_OF_MEMORY);
  capped.Release(50);  // releasing more than held clamps at 0
  EXPECT_EQ(capped.used(), 0u);
}

TEST(CudaStaging, SplitsCopiesIntoChunks) {
  EXPECT_EQ(StagingChunks(10, 4), (std::vector<uint64_t>{4, 4, 2}));
  EXPECT_EQ(StagingChunks(8, 4), (std::vector<uint64_t>{4, 4}));
  EXPECT_TRUE(StagingChunks(0, 4).empty());
  EXPECT_EQ(StagingChunks(3, 0), (std::vector<uint64_t>{1, 1, 1}));
}

// ---- CUDA-graph policy -----------------------------------------------------------------------

std::vector<const void*> Key(uintptr_t a) { return {reinterpret_cast<const void*>(a), nullptr}; }

TEST(CudaGraphPolicy, EagerThenCaptureThenReplay) {
  GraphPolicy p(2);
  size_t slot = 99;
  bool reused = true;
  EXPECT_EQ(p.Decide(Key(1), &slot, &reused), GraphPolicy::kEager);
  EXPECT_EQ(p.Decide(Key(1), &slot, &reused), GraphPolicy::kCapture);
  EXPECT_EQ(slot, 0u);
  EXPECT_FALSE(reused);
  EXPECT_EQ(p.Decide(Key(1), &slot, &reused), GraphPolicy::kReplay);
  EXPECT_EQ(slot, 0u);
}

TEST(CudaGraphPolicy, AlternatingBindingsAreBothCaptured) {
  GraphPolicy p(2);
  size_t s1 = 0, s2 = 0;
  bool reused = false;
  EXPECT_EQ(p.Decide(Key(1), &s1, &reused), GraphPolicy::kEager);
  EXPECT_EQ(p.Decide(Key(2), &s2, &reused), GraphPolicy::kEager);
  EXPECT_EQ(p.Decide(Key(1), &s1, &reused), GraphPolicy::kCapture);
  EXPECT_EQ(p.Decide(Key(2), &s2, &reused), GraphPolicy::kCapture);
  EXPECT_NE(s1, s2);
  size_t s = 0;
  EXPECT_EQ(p.Decide(Key(1), &s, &reused), GraphPolicy::kReplay);
  EXPECT_EQ(s, s1);
  EXPECT_EQ(p.Decide(Key(2), &s, &reused), GraphPolicy::kReplay);
  EXPECT_EQ(s, s2);
}

TEST(CudaGraphPolicy, FullCacheReusesTheLeastRecentlyUsedSlot) {
  GraphPolicy p(2);
  size_t s = 0, s1 = 0, s2 = 0;
  bool reused = false;
  for (uintptr_t k : {1, 1, 2, 2}) p.Decide(Key(k), &s, &reused);
  p.Decide(Key(1), &s1, &reused);  // replay 1: slot of 2 is now the LRU
  p.Decide(Key(2), &s2, &reused);
  p.Decide(Key(1), &s1, &reused);
  EXPECT_EQ(p.Decide(Key(3), &s, &reused), GraphPolicy::kEager);
  EXPECT_EQ(p.Decide(Key(3), &s, &reused), GraphPolicy::kCapture);
  EXPECT_TRUE(reused);
  EXPECT_EQ(s, s2) << "key 2 was used least recently";
  EXPECT_EQ(p.Decide(Key(2), &s, &reused), GraphPolicy::kEager) << "key 2 was evicted";
  EXPECT_EQ(p.Decide(Key(1), &s, &reused), GraphPolicy::kReplay);
  EXPECT_EQ(s, s1);
}

TEST(CudaGraphPolicy, InvalidatedSlotIsCapturedAgainLater) {
  GraphPolicy p(1);
  size_t s = 0;
  bool reused = false;
  p.Decide(Key(1), &s, &reused);
  ASSERT_EQ(p.Decide(Key(1), &s, &reused), GraphPolicy::kCapture);
  p.Invalidate(s);
  EXPECT_EQ(p.Decide(Key(1), &s, &reused), GraphPolicy::kEager);
  EXPECT_EQ(p.Decide(Key(1), &s, &reused), GraphPolicy::kCapture);
  EXPECT_FALSE(reused) << "an invalidated slot is free";
  GraphPolicy none(0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(none.Decide(Key(1), &s, &reused), GraphPolicy::kEager);
}

// ---- claim ---------------------------------------------------------------------------------

// A small graph view built by hand.
class ViewBuilder {
 public:
  int Value(const char* name, int32_t dtype, std::vector<int64_t> dims, bool constant = false) {
    dims_.push_back(std::move(dims));
    tsr_value_view v{};
    v.name = name;
    v.dtype = dtype;
    v.rank = static_cast<int32_t>(dims_.back().size());
    v.dims = dims_.back().data();
    if (constant) {
      data_.emplace_back(64, 0);
      v.const_data = data_.back().data();
      v.const_bytes = 64;
      v.flags = TSR_VALUE_CONSTANT;
    }
    values_.push_back(v);
    return static_cast<int>(values_.size()) - 1;
  }
  void AttrInt(const char* name, int64_t v) {
    tsr_attr_view a{};
    a.name = name;
    a.type = TSR_ATTR_INT;
    a.i = v;
    attrs_.push_back(a);
  }
  void AttrInts(const char* name, std::vector<int64_t> v) {
    ints_.push_back(std::move(v));
    tsr_attr_view a{};
    a.name = name;
    a.type = TSR_ATTR_INTS;
    a.ints = ints_.back().data();
    a.count = ints_.back().size();
    attrs_.push_back(a);
  }
  // The node takes the attributes added since the last Node call.
  void Node(const char* domain, const char* op, std::vector<int32_t> in, std::vector<int32_t> out, int64_t opset = 17) {
    io_.push_back(std::move(in));
    io_.push_back(std::move(out));
    tsr_node_view n{};
    n.name = op;
    n.domain = domain;
    n.op_type = op;
    n.opset = opset;
    n.num_inputs = static_cast<uint32_t>(io_[io_.size() - 2].size());
    n.inputs = io_[io_.size() - 2].data();
    n.num_outputs = static_cast<uint32_t>(io_.back().size());
    n.outputs = io_.back().data();
    node_attrs_.push_back(attrs_);
    attrs_.clear();
    n.num_attrs = static_cast<uint32_t>(node_attrs_.back().size());
    n.attrs = node_attrs_.back().data();
    nodes_.push_back(n);
  }
  tsr_graph_view View() {
    tsr_graph_view g{};
    g.struct_size = sizeof(g);
    g.num_values = static_cast<uint32_t>(values_.size());
    g.values = values_.data();
    g.num_nodes = static_cast<uint32_t>(nodes_.size());
    g.nodes = nodes_.data();
    return g;
  }
  std::string ClaimLast() {
    tsr_graph_view g = View();
    return ClaimNode(nodes_.back(), g);
  }

 private:
  std::deque<std::vector<int64_t>> dims_, ints_;
  std::deque<std::vector<uint8_t>> data_;
  std::deque<std::vector<int32_t>> io_;
  std::deque<std::vector<tsr_attr_view>> node_attrs_;
  std::vector<tsr_attr_view> attrs_;
  std::vector<tsr_value_view> values_;
  std::vector<tsr_node_view> nodes_;
};

TEST(CudaClaim, SupportsTheFoundationOpsInFloatTypes) {
  for (int32_t dt : {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16}) {
    for (const char* op : {"Relu", "Sqrt", "Exp", "Log", "Erf", "Tanh", "Sigmoid", "Gelu", "Neg", "Abs", "Reciprocal",
                           "Softmax", "LogSoftmax", "LayerNormalization", "GlobalAveragePool", "Identity"}) {
      ViewBuilder b;
      int x = b.Value("x", dt, {2, 8, 4, 4});
      int y = b.Value("y", dt, {2, 8, 4, 4});
      b.Node("", op, {x}, {y});
      EXPECT_EQ(b.ClaimLast(), "") << op << " " << plugin::DTypeName(dt);
    }
    for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "MatMul"}) {
      ViewBuilder b;
      int x = b.Value("x", dt, {4, 4});
      int z = b.Value("z", dt, {4, 4});
      int y = b.Value("y", dt, {4, 4});
      b.Node("", op, {x, z}, {y});
      EXPECT_EQ(b.ClaimLast(), "") << op << " " << plugin::DTypeName(dt);
    }
  }
}

TEST(CudaClaim, ListsEveryFoundationOp) {
  const std::vector<std::string> ops = SupportedOps();
  for (const char* op :
       {"Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Erf", "Tanh", "Sigmoid", "Relu", "LeakyRelu", "Clip",
        "Gelu", "Neg", "Abs", "Reciprocal", "MatMul", "Gemm", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
        "BatchNormalization", "LayerNormalization", "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceMax",
        "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather",
        "GatherElements", "Expand", "Where", "Equal", "Greater", "GreaterOrEqual", "Less", "And", "Not", "Cast",
        "Shape", "ConstantOfShape", "Range", "Trilu", "Identity", "Dropout", "tessera.FusedGemm",
        "tessera.FusedMatMul", "tessera.FusedConv", "tessera.FusedAttention", "tessera.FusedElementwise"})
    EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op;
}

TEST(CudaClaim, ReasonsNameWhatIsWrong) {
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_I64, {4});
    int y = b.Value("y", TSR_DTYPE_I64, {4});
    b.Node("", "Relu", {x}, {y});
    const std::string r = b.ClaimLast();
    EXPECT_NE(r.find("i64"), std::string::npos) << r;
    EXPECT_NE(r.find("f32/f16/bf16"), std::string::npos) << r;
  }
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {4});
    int y = b.Value("y", TSR_DTYPE_F32, {4});
    b.Node("", "NonMaxSuppression", {x}, {y});
    EXPECT_EQ(b.ClaimLast(), "no CUDA kernel for op NonMaxSuppression");
  }
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {4});
    int y = b.Value("y", TSR_DTYPE_F32, {4});
    b.Node("com.microsoft", "Relu", {x}, {y});
    EXPECT_NE(b.ClaimLast().find("com.microsoft.Relu"), std::string::npos);
  }
  {  // Slice's starts must be a constant...
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {2, 3});
    int st = b.Value("st", TSR_DTYPE_I64, {1});
    int en = b.Value("en", TSR_DTYPE_I64, {1}, true);
    int y = b.Value("y", TSR_DTYPE_F32, {1, 3});
    b.Node("", "Slice", {x, st, en}, {y});
    EXPECT_NE(b.ClaimLast().find("starts (input 1) must be a constant"), std::string::npos) << b.ClaimLast();
  }
  {  // ...while Reshape's shape need not be (compile sees the static output shape).
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {2, 3});
    int s = b.Value("s", TSR_DTYPE_I64, {1});
    int y = b.Value("y", TSR_DTYPE_F32, {6});
    b.Node("", "Reshape", {x, s}, {y});
    EXPECT_EQ(b.ClaimLast(), "");
  }
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {1, 1, 4, 4, 4});
    int w = b.Value("w", TSR_DTYPE_F32, {1, 1, 3, 3, 3});
    int y = b.Value("y", TSR_DTYPE_F32, {1, 1, 2, 2, 2});
    b.Node("", "Conv", {x, w}, {y});
    EXPECT_NE(b.ClaimLast().find("rank 5"), std::string::npos) << b.ClaimLast();
  }
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {4});
    int y = b.Value("y", TSR_DTYPE_STRING, {4});
    b.Node("", "Cast", {x}, {y});
    EXPECT_NE(b.ClaimLast().find("Cast to string"), std::string::npos) << b.ClaimLast();
  }
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {2, 3, 4, 4});
    std::vector<int> p;
    for (const char* n : {"s", "b", "m", "v"}) p.push_back(b.Value(n, TSR_DTYPE_F32, {3}, true));
    int y = b.Value("y", TSR_DTYPE_F32, {2, 3, 4, 4});
    b.AttrInt("training_mode", 1);
    b.Node("", "BatchNormalization", {x, p[0], p[1], p[2], p[3]}, {y});
    EXPECT_NE(b.ClaimLast().find("training_mode"), std::string::npos);
  }
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {1, 1, 4, 4});
    int y = b.Value("y", TSR_DTYPE_F32, {1, 1, 2, 2});
    int idx = b.Value("i", TSR_DTYPE_I64, {1, 1, 2, 2});
    b.AttrInts("kernel_shape", {2, 2});
    b.Node("", "MaxPool", {x}, {y, idx});
    EXPECT_NE(b.ClaimLast().find("Indices"), std::string::npos) << b.ClaimLast();
  }
  {  // Mixed dtypes of a binary op.
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {4});
    int z = b.Value("z", TSR_DTYPE_F16, {4});
    int y = b.Value("y", TSR_DTYPE_F32, {4});
    b.Node("", "Add", {x, z}, {y});
    EXPECT_NE(b.ClaimLast().find("differ in dtype"), std::string::npos);
  }
}

TEST(CudaClaim, ShapeLimitsThatCompileWouldHitAreClaimReasons) {
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {2, 8, 16});
    int s = b.Value("s", TSR_DTYPE_F32, {16});
    int y = b.Value("y", TSR_DTYPE_F32, {2, 8, 16});
    b.AttrInt("axis", 1);
    b.Node("", "LayerNormalization", {x, s}, {y});
    EXPECT_NE(b.ClaimLast().find("broadcast over the normalized shape"), std::string::npos) << b.ClaimLast();
  }
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {2, 8, 16});
    int s = b.Value("s", TSR_DTYPE_F32, {16});
    int y = b.Value("y", TSR_DTYPE_F32, {2, 8, 16});
    b.Node("", "LayerNormalization", {x, s}, {y});
    EXPECT_EQ(b.ClaimLast(), "");
  }
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {1, 3, 8, 8});
    int w = b.Value("w", TSR_DTYPE_F32, {4, 3, 3, 3}, true);
    int y = b.Value("y", TSR_DTYPE_F32, {1, 4, 7, 7});
    b.AttrInts("pads", {1, 1, 0, 0});
    b.Node("", "Conv", {x, w}, {y});
    EXPECT_NE(b.ClaimLast().find("asymmetric"), std::string::npos) << b.ClaimLast();
  }
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {2, 3, 4});
    int y = b.Value("y", TSR_DTYPE_F32, {1, 3, 1});
    b.AttrInts("axes", {0, 2});
    b.Node("", "ReduceSum", {x}, {y}, 11);
    EXPECT_NE(b.ClaimLast().find("non-adjacent"), std::string::npos) << b.ClaimLast();
  }
  {
    ViewBuilder b;
    int x = b.Value("x", TSR_DTYPE_F32, {2, 4});
    int y = b.Value("y", TSR_DTYPE_F32, {2, 2});
    b.Node("", "Split", {x}, {y, -1});
    EXPECT_NE(b.ClaimLast().find("unused output"), std::string::npos) << b.ClaimLast();
  }
  {
    ViewBuilder b;
    int a = b.Value("a", TSR_DTYPE_F32, {2, 1, 4, 8});
    int w = b.Value("w", TSR_DTYPE_F32, {1, 3, 8, 5});
    int y = b.Value("y", TSR_DTYPE_F32, {2, 3, 4, 5});
    b.Node("", "MatMul", {a, w}, {y});
    EXPECT_NE(b.ClaimLast().find("broadcasts partially"), std::string::npos) << b.ClaimLast();
  }
  {
    ViewBuilder b;
    int a = b.Value("a", TSR_DTYPE_F32, {2, 3, 4, 8});
    int w = b.Value("w", TSR_DTYPE_F32, {3, 8, 5});
    int y = b.Value("y", TSR_DTYPE_F32, {2, 3, 4, 5});
    b.Node("", "MatMul", {a, w}, {y});
    EXPECT_NE(b.ClaimLast().find("broadcasts partially"), std::string::npos) << "B [3] against Y's batch [2,3]";
    ViewBuilder c;
    int a2 = c.Value("a", TSR_DTYPE_F32, {2, 3, 4, 8});
    int w2 = c.Value("w", TSR_DTYPE_F32, {8, 5});
    int y2 = c.Value("y", TSR_DTYPE_F32, {2, 3, 4, 5});
    c.Node("", "MatMul", {a2, w2}, {y2});
    EXPECT_EQ(c.ClaimLast(), "");
  }
}

TEST(CudaClaim, AttentionLimits) {
  for (int64_t d : {64, 128, 256}) {
    ViewBuilder b;
    int q = b.Value("q", TSR_DTYPE_F16, {1, 2, 8, d});
    int k = b.Value("k", TSR_DTYPE_F16, {1, 2, 8, d});
    int v = b.Value("v", TSR_DTYPE_F16, {1, 2, 8, d});
    int y = b.Value("y", TSR_DTYPE_F16, {1, 2, 8, d});
    b.Node("tessera", "FusedAttention", {q, k, v}, {y});
    EXPECT_EQ(b.ClaimLast(), "") << d;
  }
  ViewBuilder b;
  int q = b.Value("q", TSR_DTYPE_BF16, {1, 2, 8, 512});
  int k = b.Value("k", TSR_DTYPE_BF16, {1, 2, 8, 512});
  int v = b.Value("v", TSR_DTYPE_BF16, {1, 2, 8, 512});
  int y = b.Value("y", TSR_DTYPE_BF16, {1, 2, 8, 512});
  b.Node("tessera", "FusedAttention", {q, k, v}, {y});
  EXPECT_NE(b.ClaimLast().find("head dim 512"), std::string::npos) << b.ClaimLast();
}

TEST(CudaClaim, SymbolicShapesAreClaimedOnDtypeAlone) {
  ViewBuilder b;
  int x = b.Value("x", TSR_DTYPE_F32, {-1, 16});
  int w = b.Value("w", TSR_DTYPE_F32, {16, 8}, true);
  int y = b.Value("y", TSR_DTYPE_F32, {-1, 8});
  b.Node("", "MatMul", {x, w}, {y});
  EXPECT_EQ(b.ClaimLast(), "");
}

// ---- attention tiling -------------------------------------------------------------------------

TEST(CudaAttentionTiling, FitsSharedMemory) {
  AttentionTiling t = ChooseAttentionTiling(64, 64, 128, 48 * 1024);
  ASSERT_TRUE(t.error.empty()) << t.error;
  EXPECT_EQ(t.rows_per_block, 8);
  EXPECT_EQ(t.smem_bytes, (32u * 65 * 2 + 8u * 64) * 4);
  EXPECT_LE(t.smem_bytes, 48u * 1024);
  // D = 256 needs the opt-in limit (H100: 227 KiB).
  t = ChooseAttentionTiling(256, 256, 1024, 48 * 1024);
  EXPECT_FALSE(t.error.empty());
  EXPECT_NE(t.error.find("shared memory"), std::string::npos) << t.error;
  t = ChooseAttentionTiling(256, 256, 1024, 227 * 1024);
  ASSERT_TRUE(t.error.empty()) << t.error;
  EXPECT_EQ(t.rows_per_block, 8);
  // Tiny Sq: do not idle warps.
  t = ChooseAttentionTiling(64, 64, 1, 48 * 1024);
  EXPECT_EQ(t.rows_per_block, 1);
  t = ChooseAttentionTiling(64, 64, 3, 48 * 1024);
  EXPECT_EQ(t.rows_per_block, 4);
  // Fewer rows when the tile barely fits.
  t = ChooseAttentionTiling(128, 128, 1024, (32 * 129 * 2 + 2 * 128) * 4);
  EXPECT_EQ(t.rows_per_block, 2);
  EXPECT_FALSE(ChooseAttentionTiling(0, 64, 8, 1 << 20).error.empty());
  EXPECT_FALSE(ChooseAttentionTiling(300, 64, 8, 1 << 20).error.empty());
}

// ---- geometry ------------------------------------------------------------------------------

TEST(CudaGeometry, BroadcastStrides) {
  std::vector<int64_t> st;
  ASSERT_TRUE(BroadcastStrides({2, 3, 4}, {3, 1}, &st).ok());
  EXPECT_EQ(st, (std::vector<int64_t>{0, 1, 0}));
  ASSERT_TRUE(BroadcastStrides({2, 3, 4}, {2, 3, 4}, &st).ok());
  EXPECT_EQ(st, (std::vector<int64_t>{12, 4, 1}));
  ASSERT_TRUE(BroadcastStrides({5}, {}, &st).ok());
  EXPECT_EQ(st, (std::vector<int64_t>{0}));
  Err e = BroadcastStrides({2, 3}, {4}, &st);
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("does not broadcast"), std::string::npos);
  EXPECT_FALSE(BroadcastStrides({3}, {1, 3}, &st).ok());
}

// Element offset of output index i under a BcastGeom (what the kernel computes).
int64_t Offset(const gpu::BcastGeom& g, int k, int64_t i) {
  int64_t off = 0;
  for (int d = g.rank - 1; d >= 0; --d) {
    off += (i % g.dims[d]) * g.strides[k][d];
    i /= g.dims[d];
  }
  return off;
}

TEST(CudaGeometry, BcastGeomMergesAxesAndKeepsOffsets) {
  gpu::BcastGeom g;
  // Same-shape operands merge to one axis.
  ASSERT_TRUE(MakeBcastGeom({2, 3, 4}, {{2, 3, 4}, {2, 3, 4}}, &g).ok());
  EXPECT_EQ(g.rank, 1);
  EXPECT_EQ(g.dims[0], 24);
  // Bias over the last dim: [2*3, 4] with strides (0, 1).
  ASSERT_TRUE(MakeBcastGeom({2, 3, 4}, {{2, 3, 4}, {4}}, &g).ok());
  EXPECT_EQ(g.rank, 2);
  // Offsets agree with the unmerged definition for every element.
  const std::vector<int64_t> out = {2, 1, 3, 4};
  const std::vector<std::vector<int64_t>> ins = {{2, 1, 1, 4}, {3, 1}, {1}};
  ASSERT_TRUE(MakeBcastGeom(out, ins, &g).ok());
  for (int64_t i = 0; i < 24; ++i) {
    const int64_t n = i % 4, h = (i / 4) % 3, b = i / 12;
    EXPECT_EQ(Offset(g, 0, i), b * 4 + n) << i;
    EXPECT_EQ(Offset(g, 1, i), h) << i;
    EXPECT_EQ(Offset(g, 2, i), 0) << i;
  }
  EXPECT_FALSE(MakeBcastGeom({2, 3}, {{3, 2}}, &g).ok());
  EXPECT_FALSE(MakeBcastGeom({2}, {{2}, {2}, {2}, {2}}, &g).ok());
}

TEST(CudaGeometry, TransposeGeom) {
  gpu::CopyGeom g;
  ASSERT_TRUE(MakeTransposeGeom({2, 3, 4}, {2, 0, 1}, &g).ok());
  EXPECT_EQ(g.rank, 3);
  EXPECT_EQ(g.dims[0], 4);
  EXPECT_EQ(g.dims[1], 2);
  EXPECT_EQ(g.dims[2], 3);
  EXPECT_EQ(g.src_strides[0], 1);
  EXPECT_EQ(g.src_strides[1], 12);
  EXPECT_EQ(g.src_strides[2], 4);
  EXPECT_EQ(g.dst_strides[0], 6);
  // Apply it on the host and compare with a direct transpose.
  std::vector<int> src(24), dst(24, -1);
  for (int i = 0; i < 24; ++i) src[i] = i;
  for (int64_t i = 0; i < 24; ++i) {
    int64_t rem = i, so = 0, dof = 0;
    for (int d = g.rank - 1; d >= 0; --d) {
      const int64_t idx = rem % g.dims[d];
      rem /= g.dims[d];
      so += idx * g.src_strides[d];
      dof += idx * g.dst_strides[d];
    }
    dst[dof] = src[so];
  }
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) EXPECT_EQ(dst[(c * 2 + a) * 3 + b], src[(a * 3 + b) * 4 + c]);
  EXPECT_EQ(MakeTransposeGeom({2, 3}, {0, 0}, &g).code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(MakeTransposeGeom({2, 3}, {0}, &g).code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(CudaGeometry, ReduceShape) {
  int64_t o, r, i;
  ASSERT_TRUE(ReduceShape({2, 3, 4, 5}, {-1}, &o, &r, &i).ok());
  EXPECT_EQ(o, 24);
  EXPECT_EQ(r, 5);
  EXPECT_EQ(i, 1);
  ASSERT_TRUE(ReduceShape({2, 3, 4, 5}, {1, 2}, &o, &r, &i).ok());
  EXPECT_EQ(o, 2);
  EXPECT_EQ(r, 12);
  EXPECT_EQ(i, 5);
  // Size-1 axes in between do not break adjacency.
  ASSERT_TRUE(ReduceShape({2, 3, 1, 5}, {1, 3}, &o, &r, &i).ok());
  EXPECT_EQ(r, 15);
  Err e = ReduceShape({2, 3, 4, 5}, {0, 2}, &o, &r, &i);
  EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
  EXPECT_NE(e.message.find("non-adjacent"), std::string::npos);
  EXPECT_EQ(ReduceShape({2, 3}, {2}, &o, &r, &i).code, TSR_ERR_INVALID_ARGUMENT);
  ASSERT_TRUE(ReduceShape({2, 3}, {}, &o, &r, &i).ok());
  EXPECT_EQ(o, 6);
  EXPECT_EQ(r, 1);
}

}  // namespace
}  // namespace tessera::cuda
