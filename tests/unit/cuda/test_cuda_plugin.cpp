// The CUDA plugin through the ABI. Without a GPU: it loads, initializes and
// reports "no device" with cudaGetDeviceCount's reason, and every GPU test
// skips with "no CUDA device: <reason>". With a GPU (scripts/gpu_tests.sh on
// an H100): each op runs on the device and is compared with a naive CPU
// reference computed here.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backends/common/plugin_util.h"
#include "tessera/backend.h"

namespace {

using tessera::plugin::BF16BitsToFloat;
using tessera::plugin::FloatToBF16Bits;
using tessera::plugin::FloatToHalfBits;
using tessera::plugin::HalfBitsToFloat;

struct Plugin {
  void* lib = nullptr;
  const tsr_backend_api* api = nullptr;
  tsr_backend_t* backend = nullptr;
  int32_t count = 0;
  int32_t count_code = TSR_OK;
  std::string reason;
  std::string load_error;
};

Plugin& Loaded() {
  static Plugin p = [] {
    Plugin q;
    q.lib = dlopen(TESSERA_CUDA_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    if (!q.lib) {
      q.load_error = dlerror();
      return q;
    }
    auto entry = reinterpret_cast<tsr_backend_entry_fn>(dlsym(q.lib, TSR_BACKEND_ENTRY_SYMBOL));
    if (!entry) {
      q.load_error = "no tsr_backend_entry";
      return q;
    }
    q.api = entry(TSR_BACKEND_ABI_VERSION);
    if (!q.api) return q;
    tsr_error err{};
    if (q.api->init(nullptr, &q.backend, &err) != TSR_OK) {
      q.load_error = err.message;
      return q;
    }
    err = tsr_error{};
    q.count_code = q.api->device_count(q.backend, &q.count, &err);
    q.reason = err.message;
    return q;
  }();
  return p;
}

TEST(CudaPlugin, LoadsAndExportsTheAbi) {
  Plugin& p = Loaded();
  ASSERT_TRUE(p.lib) << p.load_error;
  ASSERT_TRUE(p.api) << p.load_error;
  EXPECT_STREQ(p.api->name, "cuda");
  EXPECT_EQ(p.api->struct_size, sizeof(tsr_backend_api));
  EXPECT_EQ(TSR_BACKEND_ABI_MAJOR(p.api->abi_version), TSR_BACKEND_ABI_MAJOR(TSR_BACKEND_ABI_VERSION));
  for (const void* slot : {(const void*)p.api->init, (const void*)p.api->claim, (const void*)p.api->compile,
                           (const void*)p.api->execute, (const void*)p.api->buffer_alloc, (const void*)p.api->copy_h2d,
                           (const void*)p.api->copy_d2h, (const void*)p.api->copy_d2d, (const void*)p.api->event_create,
                           (const void*)p.api->stream_wait_event})
    EXPECT_NE(slot, nullptr);
  auto entry = reinterpret_cast<tsr_backend_entry_fn>(dlsym(p.lib, TSR_BACKEND_ENTRY_SYMBOL));
  EXPECT_EQ(entry(TSR_BACKEND_ABI_VERSION + (1u << 16)), nullptr) << "a different ABI major must be refused";
}

TEST(CudaPlugin, ReportsNoDeviceWithAReasonOrListsDevices) {
  Plugin& p = Loaded();
  ASSERT_TRUE(p.backend) << p.load_error;
  tsr_error err{};
  tsr_device_props props{};
  if (p.count == 0) {
    EXPECT_EQ(p.count_code, TSR_ERR_NO_DEVICE);
    EXPECT_FALSE(p.reason.empty());
    EXPECT_NE(p.reason.find("cudaGetDeviceCount"), std::string::npos) << p.reason;
    EXPECT_EQ(p.api->device_props(p.backend, 0, &props, &err), TSR_ERR_NO_DEVICE);
    tsr_device_t* d = nullptr;
    err = tsr_error{};
    EXPECT_NE(p.api->device_open(p.backend, 0, &d, &err), TSR_OK);
    EXPECT_EQ(d, nullptr);
    EXPECT_NE(std::string(err.message).find("out of range (0 device(s)"), std::string::npos) << err.message;
    return;
  }
  EXPECT_EQ(p.count_code, TSR_OK);
  for (int32_t i = 0; i < p.count; ++i) {
    ASSERT_EQ(p.api->device_props(p.backend, i, &props, &err), TSR_OK) << err.message;
    EXPECT_STREQ(props.kind, "gpu");
    EXPECT_NE(std::string(props.name).find("(sm_"), std::string::npos) << props.name;
    EXPECT_GT(props.memory_bytes, 0u);
    EXPECT_GT(props.compute_units, 0);
    EXPECT_GT(props.peak_gflops_f32, 1000.0);
    EXPECT_GT(props.memory_gbps, 100.0);
  }
  EXPECT_NE(p.api->device_props(p.backend, p.count, &props, &err), TSR_OK);
}

TEST(CudaPlugin, InitRejectsBadOptions) {
  Plugin& p = Loaded();
  ASSERT_TRUE(p.api) << p.load_error;
  tsr_option kv[] = {{"memory_cap", "a lot"}};
  tsr_compile_options o{sizeof(o), 1, kv};
  tsr_backend_t* b = nullptr;
  tsr_error err{};
  EXPECT_EQ(p.api->init(&o, &b, &err), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("memory_cap"), std::string::npos) << err.message;
  EXPECT_EQ(b, nullptr);
}

TEST(CudaPlugin, ClaimIsHostLogicAndWorksWithoutADevice) {
  Plugin& p = Loaded();
  ASSERT_TRUE(p.api) << p.load_error;
  // claim with device == NULL: the rules need no GPU (estimates are then 0).
  const int64_t dims[2] = {4, 8};
  tsr_value_view v[3] = {};
  for (int i = 0; i < 3; ++i) {
    v[i].name = i == 0 ? "x" : i == 1 ? "y" : "z";
    v[i].dtype = i == 2 ? TSR_DTYPE_I64 : TSR_DTYPE_F32;
    v[i].rank = 2;
    v[i].dims = dims;
  }
  const int32_t in0[1] = {0}, out1[1] = {1}, in2[1] = {2}, out2[1] = {2};
  tsr_node_view n[2] = {};
  n[0].name = "relu";
  n[0].domain = "";
  n[0].op_type = "Relu";
  n[0].num_inputs = 1;
  n[0].inputs = in0;
  n[0].num_outputs = 1;
  n[0].outputs = out1;
  n[1].name = "sqrt_i64";
  n[1].domain = "";
  n[1].op_type = "Sqrt";
  n[1].num_inputs = 1;
  n[1].inputs = in2;
  n[1].num_outputs = 1;
  n[1].outputs = out2;
  tsr_graph_view g{};
  g.struct_size = sizeof(g);
  g.num_values = 3;
  g.values = v;
  g.num_nodes = 2;
  g.nodes = n;
  tsr_claim c[2];
  tsr_error err{};
  ASSERT_EQ(p.api->claim(nullptr, &g, c, &err), TSR_OK) << err.message;
  EXPECT_EQ(c[0].supported, 1) << c[0].reason;
  EXPECT_EQ(c[1].supported, 0);
  EXPECT_NE(std::string(c[1].reason).find("i64"), std::string::npos) << c[1].reason;
  EXPECT_EQ(p.api->claim(nullptr, nullptr, c, &err), TSR_ERR_INVALID_ARGUMENT);
}

// ---- GPU tests ---------------------------------------------------------------------------------

// One-node (or few-node) segments built by hand.
class Seg {
 public:
  int Value(const char* name, int32_t dtype, std::vector<int64_t> dims, const void* data = nullptr, size_t bytes = 0) {
    dims_.push_back(std::move(dims));
    tsr_value_view v{};
    v.name = name;
    v.dtype = dtype;
    v.rank = static_cast<int32_t>(dims_.back().size());
    v.dims = dims_.back().data();
    if (data) {
      blobs_.emplace_back(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + bytes);
      v.const_data = blobs_.back().data();
      v.const_bytes = bytes;
      v.flags = TSR_VALUE_CONSTANT;
    }
    values_.push_back(v);
    return static_cast<int>(values_.size()) - 1;
  }
  void Int(const char* n, int64_t v) { Attr(n, TSR_ATTR_INT).i = v; }
  void Float(const char* n, float v) { Attr(n, TSR_ATTR_FLOAT).f = v; }
  void Ints(const char* n, std::vector<int64_t> v) {
    ints_.push_back(std::move(v));
    tsr_attr_view& a = Attr(n, TSR_ATTR_INTS);
    a.ints = ints_.back().data();
    a.count = ints_.back().size();
  }
  void Floats(const char* n, std::vector<float> v) {
    floats_.push_back(std::move(v));
    tsr_attr_view& a = Attr(n, TSR_ATTR_FLOATS);
    a.floats = floats_.back().data();
    a.count = floats_.back().size();
  }
  void Str(const char* n, const char* s) {
    tsr_attr_view& a = Attr(n, TSR_ATTR_STRING);
    a.s = s;
    a.s_len = std::strlen(s);
  }
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
    node_attrs_.push_back(pending_);
    pending_.clear();
    n.num_attrs = static_cast<uint32_t>(node_attrs_.back().size());
    n.attrs = node_attrs_.back().data();
    nodes_.push_back(n);
  }
  tsr_graph_view View() const {
    tsr_graph_view g{};
    g.struct_size = sizeof(g);
    g.num_values = static_cast<uint32_t>(values_.size());
    g.values = values_.data();
    g.num_nodes = static_cast<uint32_t>(nodes_.size());
    g.nodes = nodes_.data();
    return g;
  }
  const tsr_value_view& value(int i) const { return values_[i]; }
  size_t num_values() const { return values_.size(); }

 private:
  tsr_attr_view& Attr(const char* n, int32_t type) {
    tsr_attr_view a{};
    a.name = n;
    a.type = type;
    pending_.push_back(a);
    return pending_.back();
  }
  std::deque<std::vector<int64_t>> dims_, ints_;
  std::deque<std::vector<float>> floats_;
  std::deque<std::vector<uint8_t>> blobs_;
  std::deque<std::vector<int32_t>> io_;
  std::deque<std::vector<tsr_attr_view>> node_attrs_;
  std::vector<tsr_attr_view> pending_;
  std::vector<tsr_value_view> values_;
  std::vector<tsr_node_view> nodes_;
};

size_t Bytes(const tsr_value_view& v) {
  size_t n = tessera::plugin::DTypeSize(v.dtype);
  for (int32_t i = 0; i < v.rank; ++i) n *= static_cast<size_t>(v.dims[i]);
  return n;
}

// Host data in the value's dtype from floats.
std::vector<uint8_t> Encode(int32_t dt, const std::vector<float>& f) {
  const size_t es = tessera::plugin::DTypeSize(dt);
  std::vector<uint8_t> out(f.size() * es);
  for (size_t i = 0; i < f.size(); ++i) {
    if (dt == TSR_DTYPE_F32) std::memcpy(&out[i * 4], &f[i], 4);
    else if (dt == TSR_DTYPE_F16) { uint16_t h = FloatToHalfBits(f[i]); std::memcpy(&out[i * 2], &h, 2); }
    else if (dt == TSR_DTYPE_BF16) { uint16_t h = FloatToBF16Bits(f[i]); std::memcpy(&out[i * 2], &h, 2); }
    else if (dt == TSR_DTYPE_I64) { int64_t v = static_cast<int64_t>(f[i]); std::memcpy(&out[i * 8], &v, 8); }
    else if (dt == TSR_DTYPE_I32) { int32_t v = static_cast<int32_t>(f[i]); std::memcpy(&out[i * 4], &v, 4); }
    else if (dt == TSR_DTYPE_BOOL) out[i] = f[i] != 0;
  }
  return out;
}
std::vector<float> Decode(int32_t dt, const std::vector<uint8_t>& b) {
  const size_t es = tessera::plugin::DTypeSize(dt);
  std::vector<float> f(b.size() / es);
  for (size_t i = 0; i < f.size(); ++i) {
    if (dt == TSR_DTYPE_F32) std::memcpy(&f[i], &b[i * 4], 4);
    else if (dt == TSR_DTYPE_F16) { uint16_t h; std::memcpy(&h, &b[i * 2], 2); f[i] = HalfBitsToFloat(h); }
    else if (dt == TSR_DTYPE_BF16) { uint16_t h; std::memcpy(&h, &b[i * 2], 2); f[i] = BF16BitsToFloat(h); }
    else if (dt == TSR_DTYPE_I64) { int64_t v; std::memcpy(&v, &b[i * 8], 8); f[i] = static_cast<float>(v); }
    else if (dt == TSR_DTYPE_I32) { int32_t v; std::memcpy(&v, &b[i * 4], 4); f[i] = static_cast<float>(v); }
    else if (dt == TSR_DTYPE_BOOL) f[i] = b[i] ? 1.f : 0.f;
  }
  return f;
}
// Rounds through the dtype (so references see the inputs the GPU sees).
std::vector<float> Round(int32_t dt, const std::vector<float>& f) { return Decode(dt, Encode(dt, f)); }

std::vector<float> Random(size_t n, unsigned seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

class CudaGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    Plugin& p = Loaded();
    if (!p.backend) GTEST_SKIP() << "no CUDA device: the plugin did not load: " << p.load_error;
    if (p.count == 0) GTEST_SKIP() << "no CUDA device: " << p.reason;
    api_ = p.api;
    tsr_error err{};
    ASSERT_EQ(api_->device_open(p.backend, 0, &dev_, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->stream_create(dev_, &stream_, &err), TSR_OK) << err.message;
  }
  void TearDown() override {
    if (!api_) return;
    for (tsr_buffer_t* b : buffers_) api_->buffer_free(b);
    if (stream_) api_->stream_destroy(stream_);
    if (dev_) api_->device_close(dev_);
  }

  // Compiles `seg`, feeds `inputs` (value index -> host bytes), runs it
  // `runs` times and returns the bytes of `outputs`.
  std::vector<std::vector<uint8_t>> Run(const Seg& seg, const std::vector<std::pair<int, std::vector<uint8_t>>>& inputs,
                                        const std::vector<int>& outputs, const std::vector<tsr_option>& opts = {},
                                        int runs = 1) {
    std::vector<std::vector<uint8_t>> result;
    tsr_error err{};
    tsr_graph_view g = seg.View();
    tsr_compile_options co{sizeof(co), static_cast<uint32_t>(opts.size()), opts.data()};
    tsr_executable_t* exe = nullptr;
    EXPECT_EQ(api_->compile(dev_, &g, &co, &exe, &err), TSR_OK) << err.message;
    if (!exe) return result;
    uint64_t scratch = 0;
    EXPECT_EQ(api_->executable_scratch_bytes(exe, &scratch, &err), TSR_OK);
    std::vector<tsr_binding> bind(seg.num_values() + 1);
    for (size_t i = 0; i < seg.num_values(); ++i) {
      if (seg.value(static_cast<int>(i)).flags & TSR_VALUE_CONSTANT) continue;
      bind[i].buffer = Alloc(std::max<size_t>(Bytes(seg.value(static_cast<int>(i))), 1));
    }
    if (scratch) bind[seg.num_values()].buffer = Alloc(scratch);
    for (const auto& [vi, bytes] : inputs)
      EXPECT_EQ(api_->copy_h2d(stream_, bind[vi].buffer, 0, bytes.data(), bytes.size(), &err), TSR_OK) << err.message;
    for (int r = 0; r < runs; ++r)
      EXPECT_EQ(api_->execute(exe, stream_, bind.data(), static_cast<uint32_t>(bind.size()), &err), TSR_OK)
          << err.message;
    for (int vi : outputs) {
      result.emplace_back(Bytes(seg.value(vi)));
      EXPECT_EQ(api_->copy_d2h(stream_, result.back().data(), bind[vi].buffer, 0, result.back().size(), &err), TSR_OK)
          << err.message;
    }
    EXPECT_EQ(api_->stream_synchronize(stream_, &err), TSR_OK) << err.message;
    api_->executable_destroy(exe);
    return result;
  }

  tsr_buffer_t* Alloc(size_t bytes) {
    tsr_buffer_t* b = nullptr;
    tsr_error err{};
    EXPECT_EQ(api_->buffer_alloc(dev_, bytes, 64, &b, &err), TSR_OK) << err.message;
    if (b) buffers_.push_back(b);
    return b;
  }

  static void Near(const std::vector<float>& got, const std::vector<float>& want, float atol, float rtol,
                   const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    int bad = 0;
    for (size_t i = 0; i < got.size() && bad < 5; ++i) {
      const bool both_nan = std::isnan(got[i]) && std::isnan(want[i]);
      if (!both_nan && !(std::fabs(got[i] - want[i]) <= atol + rtol * std::fabs(want[i]))) {
        ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", expected " << want[i];
        ++bad;
      }
    }
  }
  static float Tol(int32_t dt) { return dt == TSR_DTYPE_F32 ? 1e-4f : dt == TSR_DTYPE_F16 ? 2e-2f : 8e-2f; }

  const tsr_backend_api* api_ = nullptr;
  tsr_device_t* dev_ = nullptr;
  tsr_stream_t* stream_ = nullptr;
  std::vector<tsr_buffer_t*> buffers_;
};

const int32_t kFloatTypes[] = {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16};

TEST_F(CudaGpu, CopiesRoundTripThroughStaging) {
  const size_t n = (10u << 20) + 12345;  // larger than a staging block, odd size
  std::vector<uint8_t> src(n), back(n, 0);
  for (size_t i = 0; i < n; ++i) src[i] = static_cast<uint8_t>(i * 131 + 7);
  tsr_buffer_t* a = Alloc(n);
  tsr_buffer_t* b = Alloc(n);
  tsr_error err{};
  ASSERT_EQ(api_->copy_h2d(stream_, a, 0, src.data(), n, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->copy_d2d(stream_, b, 0, a, 0, n, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->copy_d2h(stream_, back.data(), b, 0, n, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->stream_synchronize(stream_, &err), TSR_OK) << err.message;
  EXPECT_EQ(src, back);
  EXPECT_EQ(api_->copy_h2d(stream_, a, n - 1, src.data(), 2, &err), TSR_ERR_OUT_OF_RANGE);
}

TEST_F(CudaGpu, MemoryCapGivesOutOfMemoryAndTheDeviceStaysUsable) {
  tsr_option kv[] = {{"memory_cap", "64M"}};
  tsr_compile_options o{sizeof(o), 1, kv};
  tsr_backend_t* b = nullptr;
  tsr_error err{};
  ASSERT_EQ(api_->init(&o, &b, &err), TSR_OK) << err.message;
  tsr_device_t* d = nullptr;
  ASSERT_EQ(api_->device_open(b, 0, &d, &err), TSR_OK) << err.message;
  tsr_buffer_t* x = nullptr;
  ASSERT_EQ(api_->buffer_alloc(d, 48u << 20, 256, &x, &err), TSR_OK) << err.message;
  tsr_buffer_t* y = nullptr;
  EXPECT_EQ(api_->buffer_alloc(d, 32u << 20, 256, &y, &err), TSR_ERR_OUT_OF_MEMORY);
  EXPECT_NE(std::string(err.message).find("memory cap"), std::string::npos) << err.message;
  api_->buffer_free(x);
  err = tsr_error{};
  ASSERT_EQ(api_->buffer_alloc(d, 32u << 20, 256, &y, &err), TSR_OK) << err.message;
  api_->buffer_free(y);
  {  // Per-allocation limit.
    tsr_option kv3[] = {{"max_alloc_bytes", "1MiB"}};
    tsr_compile_options o3{sizeof(o3), 1, kv3};
    tsr_backend_t* b3 = nullptr;
    ASSERT_EQ(api_->init(&o3, &b3, &err), TSR_OK);
    tsr_device_t* d3 = nullptr;
    ASSERT_EQ(api_->device_open(b3, 0, &d3, &err), TSR_OK) << err.message;
    EXPECT_EQ(api_->buffer_alloc(d3, 2u << 20, 256, &y, &err), TSR_ERR_OUT_OF_MEMORY);
    EXPECT_NE(std::string(err.message).find("max_alloc_bytes"), std::string::npos) << err.message;
    ASSERT_EQ(api_->buffer_alloc(d3, 1u << 20, 256, &y, &err), TSR_OK) << err.message;
    api_->buffer_free(y);
    api_->device_close(d3);
    api_->shutdown(b3);
  }
  // Larger than the whole device: a device-level OOM, also recoverable.
  tsr_option none[] = {{"memory_cap", "0"}};
  tsr_compile_options o2{sizeof(o2), 1, none};
  tsr_backend_t* b2 = nullptr;
  ASSERT_EQ(api_->init(&o2, &b2, &err), TSR_OK);
  tsr_device_t* d2 = nullptr;
  ASSERT_EQ(api_->device_open(b2, 0, &d2, &err), TSR_OK) << err.message;
  EXPECT_EQ(api_->buffer_alloc(d2, 1ull << 50, 256, &y, &err), TSR_ERR_OUT_OF_MEMORY);
  ASSERT_EQ(api_->buffer_alloc(d2, 1u << 20, 256, &y, &err), TSR_OK) << err.message;
  api_->buffer_free(y);
  api_->device_close(d2);
  api_->shutdown(b2);
  api_->device_close(d);
  api_->shutdown(b);
}

TEST_F(CudaGpu, ElementwiseWithBroadcastInEveryFloatType) {
  for (int32_t dt : kFloatTypes) {
    Seg s;
    const int x = s.Value("x", dt, {2, 3, 4});
    const int bias = s.Value("b", dt, {4});
    const int t = s.Value("t", dt, {2, 3, 4});
    const int y = s.Value("y", dt, {2, 3, 4});
    s.Node("", "Add", {x, bias}, {t});
    s.Node("", "Gelu", {t}, {y}, 20);
    const std::vector<float> xv = Round(dt, Random(24, 1)), bv = Round(dt, Random(4, 2));
    auto out = Run(s, {{x, Encode(dt, xv)}, {bias, Encode(dt, bv)}}, {y});
    ASSERT_EQ(out.size(), 1u);
    std::vector<float> want(24);
    for (int i = 0; i < 24; ++i) {
      const float v = Round(dt, {xv[i] + bv[i % 4]})[0];
      want[i] = 0.5f * v * (1.f + std::erf(v / std::sqrt(2.f)));
    }
    Near(Decode(dt, out[0]), want, Tol(dt), Tol(dt), tessera::plugin::DTypeName(dt));
  }
}

TEST_F(CudaGpu, FusedElementwiseProgram) {
  Seg s;
  const int x = s.Value("x", TSR_DTYPE_F32, {64});
  const int z = s.Value("z", TSR_DTYPE_F32, {1});
  const int y = s.Value("y", TSR_DTYPE_F32, {64});
  // r0 = x, r1 = z, r2 = 0.5 (const), r3 = x*z, r4 = clip(r3, -0.5, 0.5)... constants: [0.5, -0.25, 0.25]
  s.Floats("constants", {0.5f, -0.25f, 0.25f});
  s.Ints("program", {2, 5, 0, 1, -1, 20, 6, 5, 3, 4, 0, 7, 6, 2, -1});
  s.Node("tessera", "FusedElementwise", {x, z}, {y});
  const std::vector<float> xv = Random(64, 3), zv = {1.5f};
  auto out = Run(s, {{x, Encode(TSR_DTYPE_F32, xv)}, {z, Encode(TSR_DTYPE_F32, zv)}}, {y});
  std::vector<float> want(64);
  for (int i = 0; i < 64; ++i) want[i] = std::min(std::max(xv[i] * 1.5f, -0.25f), 0.25f) + 0.5f;
  Near(Decode(TSR_DTYPE_F32, out.at(0)), want, 1e-6f, 1e-6f, "FusedElementwise");
}

TEST_F(CudaGpu, SoftmaxLayerNormAndReductions) {
  for (int32_t dt : kFloatTypes) {
    Seg s;
    const int x = s.Value("x", dt, {3, 5, 70});
    const int sm = s.Value("sm", dt, {3, 5, 70});
    const int mid = s.Value("mid", dt, {3, 5, 70});
    const int sc = s.Value("sc", dt, {70});
    const int bi = s.Value("bi", dt, {70});
    const int ln = s.Value("ln", dt, {3, 5, 70});
    const int rm = s.Value("rm", dt, {3, 1, 70});
    const int rx = s.Value("rx", dt, {3, 5});
    s.Node("", "Softmax", {x}, {sm}, 13);
    s.Int("axis", 1);
    s.Node("", "LogSoftmax", {x}, {mid}, 13);
    s.Node("", "LayerNormalization", {x, sc, bi}, {ln});
    s.Ints("axes", {1});
    s.Node("", "ReduceMean", {x}, {rm}, 13);
    s.Ints("axes", {2});
    s.Int("keepdims", 0);
    s.Node("", "ReduceMax", {x}, {rx}, 13);
    const std::vector<float> xv = Round(dt, Random(1050, 4, -3, 3)), sv = Round(dt, Random(70, 5)),
                             bv = Round(dt, Random(70, 6));
    auto out = Run(s, {{x, Encode(dt, xv)}, {sc, Encode(dt, sv)}, {bi, Encode(dt, bv)}}, {sm, mid, ln, rm, rx});
    ASSERT_EQ(out.size(), 5u);
    std::vector<float> w_sm(1050), w_mid(1050), w_ln(1050), w_rm(210), w_rx(15);
    for (int a = 0; a < 3; ++a) {
      for (int b = 0; b < 5; ++b) {
        const float* r = &xv[(a * 5 + b) * 70];
        double m = -1e30, sum = 0, mean = 0, var = 0;
        for (int c = 0; c < 70; ++c) m = std::max<double>(m, r[c]);
        for (int c = 0; c < 70; ++c) sum += std::exp(r[c] - m);
        for (int c = 0; c < 70; ++c) mean += r[c] / 70.0;
        for (int c = 0; c < 70; ++c) var += (r[c] - mean) * (r[c] - mean) / 70.0;
        for (int c = 0; c < 70; ++c) {
          w_sm[(a * 5 + b) * 70 + c] = static_cast<float>(std::exp(r[c] - m) / sum);
          w_ln[(a * 5 + b) * 70 + c] = static_cast<float>((r[c] - mean) / std::sqrt(var + 1e-5) * sv[c] + bv[c]);
        }
        w_rx[a * 5 + b] = static_cast<float>(m);
      }
      for (int c = 0; c < 70; ++c) {
        double m = -1e30, sum = 0, mean = 0;
        for (int b = 0; b < 5; ++b) m = std::max<double>(m, xv[(a * 5 + b) * 70 + c]);
        for (int b = 0; b < 5; ++b) sum += std::exp(xv[(a * 5 + b) * 70 + c] - m);
        for (int b = 0; b < 5; ++b) {
          w_mid[(a * 5 + b) * 70 + c] = static_cast<float>(xv[(a * 5 + b) * 70 + c] - m - std::log(sum));
          mean += xv[(a * 5 + b) * 70 + c] / 5.0;
        }
        w_rm[a * 70 + c] = static_cast<float>(mean);
      }
    }
    const float t = Tol(dt);
    Near(Decode(dt, out[0]), w_sm, t, t, "Softmax");
    Near(Decode(dt, out[1]), w_mid, 4 * t, t, "LogSoftmax axis 1");
    Near(Decode(dt, out[2]), w_ln, 4 * t, 4 * t, "LayerNormalization");
    Near(Decode(dt, out[3]), w_rm, t, t, "ReduceMean");
    Near(Decode(dt, out[4]), w_rx, 0, 0, "ReduceMax");
  }
}

// Row-major reference GEMM.
std::vector<float> RefMatMul(const std::vector<float>& a, const std::vector<float>& b, int64_t batch, int64_t M,
                             int64_t K, int64_t N, bool b_shared) {
  std::vector<float> y(batch * M * N, 0.f);
  for (int64_t p = 0; p < batch; ++p)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += a[(p * M + i) * K + k] * b[(b_shared ? 0 : p) * K * N + k * N + j];
        y[(p * M + i) * N + j] = static_cast<float>(acc);
      }
  return y;
}

TEST_F(CudaGpu, MatMulBatchedAndBroadcast) {
  for (int32_t dt : kFloatTypes) {
    for (bool shared : {true, false}) {
      Seg s;
      const int64_t B = 3, M = 33, K = 40, N = 24;
      const int a = s.Value("a", dt, {B, M, K});
      const int b = shared ? s.Value("b", dt, {K, N}) : s.Value("b", dt, {B, K, N});
      const int y = s.Value("y", dt, {B, M, N});
      s.Node("", "MatMul", {a, b}, {y});
      const std::vector<float> av = Round(dt, Random(B * M * K, 7)), bv = Round(dt, Random((shared ? 1 : B) * K * N, 8));
      auto out = Run(s, {{a, Encode(dt, av)}, {b, Encode(dt, bv)}}, {y});
      Near(Decode(dt, out.at(0)), RefMatMul(av, bv, B, M, K, N, shared), 8 * Tol(dt), 4 * Tol(dt),
           shared ? "MatMul shared B" : "MatMul batched");
    }
  }
}

TEST_F(CudaGpu, GemmTransBBiasAndFusedMatMulActivations) {
  const int64_t M = 17, K = 32, N = 20;
  const std::vector<float> av = Random(M * K, 9), bv = Random(N * K, 10), cv = Random(N, 11);
  {
    Seg s;
    const int a = s.Value("a", TSR_DTYPE_F32, {M, K});
    const int b = s.Value("b", TSR_DTYPE_F32, {N, K}, bv.data(), bv.size() * 4);
    const int c = s.Value("c", TSR_DTYPE_F32, {N}, cv.data(), cv.size() * 4);
    const int y = s.Value("y", TSR_DTYPE_F32, {M, N});
    s.Int("transB", 1);
    s.Float("alpha", 0.5f);
    s.Node("", "Gemm", {a, b, c}, {y});
    auto out = Run(s, {{a, Encode(TSR_DTYPE_F32, av)}}, {y});
    std::vector<float> want(M * N);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += av[i * K + k] * bv[j * K + k];
        want[i * N + j] = static_cast<float>(0.5 * acc + cv[j]);
      }
    Near(Decode(TSR_DTYPE_F32, out.at(0)), want, 1e-4f, 1e-4f, "Gemm transB + bias");
  }
  for (const char* act : {"Relu", "Gelu", "GeluTanh", "Sigmoid"}) {
    Seg s;
    const int a = s.Value("a", TSR_DTYPE_F32, {M, K});
    const int b = s.Value("b", TSR_DTYPE_F32, {K, N}, bv.data(), bv.size() * 4);
    const int c = s.Value("c", TSR_DTYPE_F32, {N}, cv.data(), cv.size() * 4);
    const int y = s.Value("y", TSR_DTYPE_F32, {M, N});
    s.Str("activation", act);
    s.Node("tessera", "FusedMatMul", {a, b, c}, {y});
    auto out = Run(s, {{a, Encode(TSR_DTYPE_F32, av)}}, {y});
    std::vector<float> want = RefMatMul(av, bv, 1, M, K, N, true);
    for (int64_t i = 0; i < M * N; ++i) {
      const float v = want[i] + cv[i % N];
      const std::string an = act;
      want[i] = an == "Relu" ? std::max(v, 0.f)
                : an == "Gelu" ? 0.5f * v * (1.f + std::erf(v / std::sqrt(2.f)))
                : an == "GeluTanh" ? 0.5f * v * (1.f + std::tanh(0.7978845608f * (v + 0.044715f * v * v * v)))
                                   : 1.f / (1.f + std::exp(-v));
    }
    Near(Decode(TSR_DTYPE_F32, out.at(0)), want, 1e-4f, 1e-3f, act);
  }
}

TEST_F(CudaGpu, Tf32OptionStaysClose) {
  const int64_t M = 64, K = 256, N = 64;
  const std::vector<float> av = Random(M * K, 12), bv = Random(K * N, 13);
  Seg s;
  const int a = s.Value("a", TSR_DTYPE_F32, {M, K});
  const int b = s.Value("b", TSR_DTYPE_F32, {K, N});
  const int y = s.Value("y", TSR_DTYPE_F32, {M, N});
  s.Node("", "MatMul", {a, b}, {y});
  auto out = Run(s, {{a, Encode(TSR_DTYPE_F32, av)}, {b, Encode(TSR_DTYPE_F32, bv)}}, {y}, {{"tf32", "1"}});
  Near(Decode(TSR_DTYPE_F32, out.at(0)), RefMatMul(av, bv, 1, M, K, N, true), 2e-2f, 1e-2f, "MatMul tf32");
}

// Direct NCHW convolution reference.
std::vector<float> RefConv(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& bias,
                           int64_t N, int64_t C, int64_t H, int64_t W, int64_t M, int64_t k, int64_t stride,
                           int64_t pad, int64_t OH, int64_t OW) {
  std::vector<float> y(N * M * OH * OW);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = bias.empty() ? 0 : bias[m];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t kh = 0; kh < k; ++kh)
              for (int64_t kw = 0; kw < k; ++kw) {
                const int64_t ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x[((n * C + c) * H + ih) * W + iw] * w[((m * C + c) * k + kh) * k + kw];
              }
          y[((n * M + m) * OH + oh) * OW + ow] = static_cast<float>(acc);
        }
  return y;
}

TEST_F(CudaGpu, ConvFusedConvAndPooling) {
  for (int32_t dt : kFloatTypes) {
    const int64_t N = 2, C = 3, H = 9, W = 9, M = 8, k = 3, OH = 5, OW = 5;
    const std::vector<float> xv = Round(dt, Random(N * C * H * W, 14)), wv = Round(dt, Random(M * C * k * k, 15)),
                             bv = Round(dt, Random(M, 16)), zv = Round(dt, Random(N * M * OH * OW, 17));
    const std::vector<uint8_t> wb = Encode(dt, wv), bb = Encode(dt, bv);
    Seg s;
    const int x = s.Value("x", dt, {N, C, H, W});
    const int w = s.Value("w", dt, {M, C, k, k}, wb.data(), wb.size());
    const int b = s.Value("b", dt, {M}, bb.data(), bb.size());
    const int z = s.Value("z", dt, {N, M, OH, OW});
    const int y = s.Value("y", dt, {N, M, OH, OW});
    const int fy = s.Value("fy", dt, {N, M, OH, OW});
    const int py = s.Value("py", dt, {N, M, 3, 3});
    s.Ints("strides", {2, 2});
    s.Ints("pads", {1, 1, 1, 1});
    s.Node("", "Conv", {x, w, b}, {y});
    s.Ints("strides", {2, 2});
    s.Ints("pads", {1, 1, 1, 1});
    s.Str("activation", "Relu");
    s.Int("has_residual", 1);
    s.Node("tessera", "FusedConv", {x, w, b, z}, {fy});
    s.Ints("kernel_shape", {3, 3});
    s.Ints("strides", {2, 2});
    s.Ints("pads", {1, 1, 1, 1});
    s.Node("", "MaxPool", {y}, {py});
    auto out = Run(s, {{x, Encode(dt, xv)}, {z, Encode(dt, zv)}}, {y, fy, py});
    ASSERT_EQ(out.size(), 3u);
    const std::vector<float> want = RefConv(xv, wv, bv, N, C, H, W, M, k, 2, 1, OH, OW);
    const float t = 4 * Tol(dt);
    Near(Decode(dt, out[0]), want, t, t, "Conv");
    std::vector<float> fwant(want.size());
    for (size_t i = 0; i < want.size(); ++i) fwant[i] = std::max(0.f, want[i] + zv[i]);
    Near(Decode(dt, out[1]), fwant, t, t, "FusedConv");
    const std::vector<float> yv = Decode(dt, out[0]);  // pool the GPU's conv output
    std::vector<float> pwant(N * M * 9);
    for (int64_t nm = 0; nm < N * M; ++nm)
      for (int64_t oh = 0; oh < 3; ++oh)
        for (int64_t ow = 0; ow < 3; ++ow) {
          float m = -INFINITY;
          for (int64_t kh = 0; kh < 3; ++kh)
            for (int64_t kw = 0; kw < 3; ++kw) {
              const int64_t ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
              if (ih >= 0 && ih < OH && iw >= 0 && iw < OW) m = std::max(m, yv[(nm * OH + ih) * OW + iw]);
            }
          pwant[(nm * 3 + oh) * 3 + ow] = m;
        }
    Near(Decode(dt, out[2]), pwant, 0, 0, "MaxPool");
  }
}

TEST_F(CudaGpu, FusedAttentionHalfTypesWithMaskAndCausal) {
  for (int32_t dt : {TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_F32}) {
    for (int causal : {0, 1}) {
      const int64_t B = 2, H = 3, Sq = 37, Sk = 45, D = 64;
      Seg s;
      const int q = s.Value("q", dt, {B, H, Sq, D});
      const int k = s.Value("k", dt, {B, H, Sk, D});
      const int v = s.Value("v", dt, {B, H, Sk, D});
      const int m = s.Value("m", TSR_DTYPE_BOOL, {B, 1, 1, Sk});
      const int y = s.Value("y", dt, {B, H, Sq, D});
      s.Int("causal", causal);
      s.Node("tessera", "FusedAttention", {q, k, v, m}, {y});
      const std::vector<float> qv = Round(dt, Random(B * H * Sq * D, 20)), kv = Round(dt, Random(B * H * Sk * D, 21)),
                               vv = Round(dt, Random(B * H * Sk * D, 22));
      std::vector<float> mv(B * Sk);
      for (int64_t i = 0; i < B * Sk; ++i) mv[i] = (i % 7) != 3;
      auto out = Run(s, {{q, Encode(dt, qv)}, {k, Encode(dt, kv)}, {v, Encode(dt, vv)}, {m, Encode(TSR_DTYPE_BOOL, mv)}},
                     {y});
      std::vector<float> want(B * H * Sq * D);
      const double scale = 1.0 / std::sqrt(static_cast<double>(D));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = 0; i < Sq; ++i) {
            std::vector<double> sc(Sk, -INFINITY);
            double mx = -INFINITY;
            for (int64_t j = 0; j < Sk; ++j) {
              if (!mv[b * Sk + j] || (causal && j > i)) continue;
              double acc = 0;
              for (int64_t d = 0; d < D; ++d) acc += qv[((b * H + h) * Sq + i) * D + d] * kv[((b * H + h) * Sk + j) * D + d];
              sc[j] = acc * scale;
              mx = std::max(mx, sc[j]);
            }
            double sum = 0;
            for (int64_t j = 0; j < Sk; ++j) sum += sc[j] == -INFINITY ? 0 : std::exp(sc[j] - mx);
            for (int64_t d = 0; d < D; ++d) {
              double acc = 0;
              for (int64_t j = 0; j < Sk; ++j)
                if (sc[j] != -INFINITY) acc += std::exp(sc[j] - mx) / sum * vv[((b * H + h) * Sk + j) * D + d];
              want[((b * H + h) * Sq + i) * D + d] = sum > 0 ? static_cast<float>(acc) : NAN;
            }
          }
      Near(Decode(dt, out.at(0)), want, 2 * Tol(dt), 2 * Tol(dt), causal ? "attention causal" : "attention");
    }
  }
}

TEST_F(CudaGpu, DataMovementOps) {
  const int32_t dt = TSR_DTYPE_F32;
  const std::vector<float> xv = Random(2 * 3 * 4, 30);
  const std::vector<int64_t> starts = {1}, ends = {4}, axes = {2}, steps = {2};
  const std::vector<int64_t> idx = {2, 0, -1};
  Seg s;
  const int x = s.Value("x", dt, {2, 3, 4});
  const int tr = s.Value("tr", dt, {4, 2, 3});
  const int st = s.Value("st", TSR_DTYPE_I64, {1}, starts.data(), 8);
  const int en = s.Value("en", TSR_DTYPE_I64, {1}, ends.data(), 8);
  const int ax = s.Value("ax", TSR_DTYPE_I64, {1}, axes.data(), 8);
  const int sp = s.Value("sp", TSR_DTYPE_I64, {1}, steps.data(), 8);
  const int sl = s.Value("sl", dt, {2, 3, 2});
  const int cc = s.Value("cc", dt, {2, 3, 6});
  const int ix = s.Value("ix", TSR_DTYPE_I64, {3}, idx.data(), 24);
  const int ga = s.Value("ga", dt, {2, 3, 4});
  const int gt = s.Value("gt", TSR_DTYPE_BOOL, {2, 3, 4});
  const int wh = s.Value("wh", dt, {2, 3, 4});
  const int ca = s.Value("ca", TSR_DTYPE_F16, {2, 3, 4});
  s.Ints("perm", {2, 0, 1});
  s.Node("", "Transpose", {x}, {tr});
  s.Node("", "Slice", {x, st, en, ax, sp}, {sl});
  s.Int("axis", 2);
  s.Node("", "Concat", {x, sl}, {cc});
  s.Int("axis", 1);
  s.Node("", "Gather", {x, ix}, {ga});
  s.Node("", "Greater", {x, ga}, {gt});
  s.Node("", "Where", {gt, x, ga}, {wh});
  s.Int("to", TSR_DTYPE_F16);
  s.Node("", "Cast", {x}, {ca});
  auto out = Run(s, {{x, Encode(dt, xv)}}, {tr, sl, cc, ga, wh, ca}, {}, 3);  // 3 runs: graphs replay
  ASSERT_EQ(out.size(), 6u);
  auto X = [&](int a, int b, int c) { return xv[(a * 3 + b) * 4 + c]; };
  std::vector<float> w_tr, w_sl, w_cc, w_ga, w_wh;
  for (int c = 0; c < 4; ++c)
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 3; ++b) w_tr.push_back(X(a, b, c));
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b) {
      w_sl.push_back(X(a, b, 1));
      w_sl.push_back(X(a, b, 3));
      for (int c = 0; c < 4; ++c) w_cc.push_back(X(a, b, c));
      w_cc.push_back(X(a, b, 1));
      w_cc.push_back(X(a, b, 3));
    }
  const int gi[3] = {2, 0, 2};
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) {
        w_ga.push_back(X(a, gi[b], c));
        w_wh.push_back(std::max(X(a, b, c), X(a, gi[b], c)));
      }
  Near(Decode(dt, out[0]), w_tr, 0, 0, "Transpose");
  Near(Decode(dt, out[1]), w_sl, 0, 0, "Slice");
  Near(Decode(dt, out[2]), w_cc, 0, 0, "Concat");
  Near(Decode(dt, out[3]), w_ga, 0, 0, "Gather");
  Near(Decode(dt, out[4]), w_wh, 0, 0, "Greater + Where");
  Near(Decode(TSR_DTYPE_F16, out[5]), Round(TSR_DTYPE_F16, xv), 0, 0, "Cast f32->f16");
}

TEST_F(CudaGpu, PoolingNormsShapesAndIntegerOps) {
  const int32_t dt = TSR_DTYPE_F32;
  const std::vector<float> xv = Random(2 * 3 * 5 * 5, 50);
  const std::vector<float> sc = {1.5f, -0.5f, 2.f}, bi = {0.1f, 0.2f, 0.3f}, mu = {0.f, 0.5f, -0.5f}, var = {1.f, 4.f, 0.25f};
  const std::vector<float> r_start = {2.f}, r_limit = {12.f}, r_delta = {3.f};
  const std::vector<int64_t> ge_idx = {4, 0, 1, 2, 3, 4};
  const std::vector<int64_t> kval = {1};
  Seg s;
  const int x = s.Value("x", dt, {2, 3, 5, 5});
  const int ap = s.Value("ap", dt, {2, 3, 3, 3});
  const int bn = s.Value("bn", dt, {2, 3, 5, 5});
  const int ps = s.Value("sc", dt, {3}, sc.data(), 12), pb = s.Value("bi", dt, {3}, bi.data(), 12);
  const int pm = s.Value("mu", dt, {3}, mu.data(), 12), pv = s.Value("var", dt, {3}, var.data(), 12);
  const int sh = s.Value("sh", TSR_DTYPE_I64, {2});
  const int rs = s.Value("rs", dt, {1}, r_start.data(), 4), rl = s.Value("rl", dt, {1}, r_limit.data(), 4);
  const int rd = s.Value("rd", dt, {1}, r_delta.data(), 4);
  const int rg = s.Value("rg", dt, {4});
  const int gi = s.Value("gi", TSR_DTYPE_I64, {2, 3, 1, 1}, ge_idx.data(), 48);
  const int ge = s.Value("ge", dt, {2, 3, 1, 1});
  const int kk = s.Value("kk", TSR_DTYPE_I64, {}, kval.data(), 8);
  const int tr = s.Value("tr", dt, {2, 3, 5, 5});
  const int rsum = s.Value("rsum", dt, {2, 1, 1, 1});
  const int ia = s.Value("ia", TSR_DTYPE_I64, {4});
  const int ib = s.Value("ib", TSR_DTYPE_I64, {4});
  const int ic = s.Value("ic", TSR_DTYPE_I64, {4});
  // AveragePool 3x3 stride 2, asymmetric pads (1,1,0,0) + ceil_mode output (5 -> 3).
  s.Ints("kernel_shape", {3, 3});
  s.Ints("strides", {2, 2});
  s.Ints("pads", {1, 1, 0, 0});
  s.Int("ceil_mode", 1);
  s.Node("", "AveragePool", {x}, {ap});
  s.Float("epsilon", 1e-3f);
  s.Node("", "BatchNormalization", {x, ps, pb, pm, pv}, {bn});
  s.Int("start", 2);
  s.Node("", "Shape", {x}, {sh}, 15);
  s.Node("", "Range", {rs, rl, rd}, {rg});
  s.Int("axis", 2);
  s.Node("", "GatherElements", {x, gi}, {ge});
  s.Int("upper", 0);
  s.Node("", "Trilu", {x, kk}, {tr});
  s.Ints("axes", {1, 2, 3});
  s.Node("", "ReduceSum", {x}, {rsum}, 11);
  s.Node("", "Div", {ia, ib}, {ic});
  const std::vector<float> iav = {7, -7, 9, 5}, ibv = {2, 2, -4, 0};
  auto out = Run(s, {{x, Encode(dt, xv)}, {ia, Encode(TSR_DTYPE_I64, iav)}, {ib, Encode(TSR_DTYPE_I64, ibv)}},
                 {ap, bn, sh, rg, ge, tr, rsum, ic});
  ASSERT_EQ(out.size(), 8u);
  auto X = [&](int n, int c, int h, int w) { return xv[((n * 3 + c) * 5 + h) * 5 + w]; };
  std::vector<float> w_ap, w_bn, w_ge, w_tr, w_rsum(2, 0.f);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int oh = 0; oh < 3; ++oh)
        for (int ow = 0; ow < 3; ++ow) {
          double acc = 0;
          int cnt = 0;
          for (int kh = 0; kh < 3; ++kh)
            for (int kw = 0; kw < 3; ++kw) {
              const int ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
              if (ih < 0 || ih >= 5 || iw < 0 || iw >= 5) continue;
              acc += X(n, c, ih, iw);
              ++cnt;
            }
          w_ap.push_back(static_cast<float>(acc / cnt));
        }
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int h = 0; h < 5; ++h)
        for (int w = 0; w < 5; ++w) {
          w_bn.push_back((X(n, c, h, w) - mu[c]) / std::sqrt(var[c] + 1e-3f) * sc[c] + bi[c]);
          w_tr.push_back(w - h <= 1 ? X(n, c, h, w) : 0.f);
          w_rsum[n] += X(n, c, h, w);
        }
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c) w_ge.push_back(X(n, c, static_cast<int>(ge_idx[n * 3 + c]), 0));
  Near(Decode(dt, out[0]), w_ap, 1e-5f, 1e-5f, "AveragePool ceil/asymmetric");
  Near(Decode(dt, out[1]), w_bn, 1e-5f, 1e-5f, "BatchNormalization");
  Near(Decode(TSR_DTYPE_I64, out[2]), {5, 5}, 0, 0, "Shape start=2");
  Near(Decode(dt, out[3]), {2, 5, 8, 11}, 0, 0, "Range");
  Near(Decode(dt, out[4]), w_ge, 0, 0, "GatherElements");
  Near(Decode(dt, out[5]), w_tr, 0, 0, "Trilu lower k=1");
  Near(Decode(dt, out[6]), w_rsum, 1e-4f, 1e-5f, "ReduceSum");
  Near(Decode(TSR_DTYPE_I64, out[7]), {3, -3, -2, 0}, 0, 0, "integer Div (truncating; /0 -> 0)");
}

TEST_F(CudaGpu, CudaGraphReplayFollowsNewBindings) {
  Seg s;
  const int x = s.Value("x", TSR_DTYPE_F32, {1000});
  const int y = s.Value("y", TSR_DTYPE_F32, {1000});
  s.Node("", "Sigmoid", {x}, {y});
  tsr_graph_view g = s.View();
  tsr_error err{};
  tsr_executable_t* exe = nullptr;
  ASSERT_EQ(api_->compile(dev_, &g, nullptr, &exe, &err), TSR_OK) << err.message;
  // Two sets of buffers, alternated: eager, capture, replay, and a recapture for set 2.
  std::vector<tsr_binding> b1(3), b2(3);
  b1[0].buffer = Alloc(4000);
  b1[1].buffer = Alloc(4000);
  b2[0].buffer = Alloc(4000);
  b2[1].buffer = Alloc(4000);
  const std::vector<float> v1 = Random(1000, 40), v2 = Random(1000, 41);
  ASSERT_EQ(api_->copy_h2d(stream_, b1[0].buffer, 0, v1.data(), 4000, &err), TSR_OK);
  ASSERT_EQ(api_->copy_h2d(stream_, b2[0].buffer, 0, v2.data(), 4000, &err), TSR_OK);
  for (int r = 0; r < 4; ++r) {
    ASSERT_EQ(api_->execute(exe, stream_, b1.data(), 3, &err), TSR_OK) << err.message;
    ASSERT_EQ(api_->execute(exe, stream_, b2.data(), 3, &err), TSR_OK) << err.message;
  }
  std::vector<float> o1(1000), o2(1000);
  ASSERT_EQ(api_->copy_d2h(stream_, o1.data(), b1[1].buffer, 0, 4000, &err), TSR_OK);
  ASSERT_EQ(api_->copy_d2h(stream_, o2.data(), b2[1].buffer, 0, 4000, &err), TSR_OK);
  ASSERT_EQ(api_->stream_synchronize(stream_, &err), TSR_OK) << err.message;
  std::vector<float> w1(1000), w2(1000);
  for (int i = 0; i < 1000; ++i) {
    w1[i] = 1.f / (1.f + std::exp(-v1[i]));
    w2[i] = 1.f / (1.f + std::exp(-v2[i]));
  }
  Near(o1, w1, 1e-6f, 1e-5f, "bindings 1");
  Near(o2, w2, 1e-6f, 1e-5f, "bindings 2");
  api_->executable_destroy(exe);
}

TEST_F(CudaGpu, CompileReportsUnsupportedNodesByName) {
  Seg s;
  const int x = s.Value("x", TSR_DTYPE_I64, {4});
  const int y = s.Value("y", TSR_DTYPE_I64, {4});
  s.Node("", "Sqrt", {x}, {y});
  tsr_graph_view g = s.View();
  tsr_error err{};
  tsr_executable_t* exe = nullptr;
  EXPECT_EQ(api_->compile(dev_, &g, nullptr, &exe, &err), TSR_ERR_UNSUPPORTED);
  EXPECT_NE(std::string(err.message).find("node 'Sqrt' (Sqrt)"), std::string::npos) << err.message;
  EXPECT_EQ(exe, nullptr);
}

}  // namespace
