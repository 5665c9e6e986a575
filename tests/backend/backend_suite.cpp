// The shared backend suite: every plugin found in TESSERA_BACKEND_BUILD_DIR
// (libtessera_backend_*.so) is dlopened and runs the SAME tests through the
// plugin ABI only (include/tessera/backend.h): graph views built by hand,
// claim, compile, buffers, copies, execute, compared with references computed
// here.
//
// Each backend has an explicit skip list {test name -> reason} (SkipList()
// below); a listed test calls GTEST_SKIP() with the reason. The key "*" skips
// every op/segment test (the tests that need kernels). Backends that load but
// report no device skip the op tests with the backend's own reason.
#include <dirent.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tessera/backend.h"

namespace {

// ---- skip lists ------------------------------------------------------------------------

const std::map<std::string, std::string>& SkipList(const std::string& backend) {
  static const std::map<std::string, std::map<std::string, std::string>> lists = {
      {"null", {{"*", "the null backend implements no kernels"}}},
      {"cpu", {}},
      // OpenCL (PoCL here, vendor ICDs elsewhere): every op test runs; nothing skipped.
      {"opencl", {}},
  };
  static const std::map<std::string, std::string> empty;
  auto it = lists.find(backend);
  return it == lists.end() ? empty : it->second;
}

// ---- loading plugins --------------------------------------------------------------------

struct Plugin {
  std::string file;  // "libtessera_backend_cpu.so"
  std::string path;
  void* handle = nullptr;
  const tsr_backend_api* api = nullptr;
  tsr_backend_t* backend = nullptr;
  int32_t device_count = 0;
  std::string device_reason;  // why device_count failed / is 0
  std::string error;          // why loading failed ("" = loaded)
};

std::vector<std::string> PluginFiles() {
  std::vector<std::string> files;
  if (DIR* d = opendir(TESSERA_BACKEND_BUILD_DIR)) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind("libtessera_backend_", 0) == 0 && n.size() > 3 && n.compare(n.size() - 3, 3, ".so") == 0)
        files.push_back(n);
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// "libtessera_backend_cpu.so" -> "cpu"
std::string ShortName(const std::string& file) {
  std::string s = file.substr(std::strlen("libtessera_backend_"));
  return s.substr(0, s.size() - 3);
}

// Loaded once per process and kept open (executables may still reference
// plugin code in static destructors otherwise).
Plugin* GetPlugin(const std::string& file) {
  static std::map<std::string, std::unique_ptr<Plugin>> loaded;
  auto& slot = loaded[file];
  if (slot) return slot.get();
  slot = std::make_unique<Plugin>();
  Plugin& p = *slot;
  p.file = file;
  p.path = std::string(TESSERA_BACKEND_BUILD_DIR) + "/" + file;
  p.handle = dlopen(p.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!p.handle) {
    p.error = std::string("dlopen failed: ") + dlerror();
    return &p;
  }
  auto entry = reinterpret_cast<tsr_backend_entry_fn>(dlsym(p.handle, TSR_BACKEND_ENTRY_SYMBOL));
  if (!entry) {
    p.error = "no symbol " TSR_BACKEND_ENTRY_SYMBOL;
    return &p;
  }
  p.api = entry(TSR_BACKEND_ABI_VERSION);
  if (!p.api) {
    p.error = "tsr_backend_entry returned NULL";
    return &p;
  }
  tsr_error err{};
  if (!p.api->init || p.api->init(nullptr, &p.backend, &err) != TSR_OK) {
    p.error = std::string("init failed: ") + err.message;
    return &p;
  }
  tsr_error derr{};
  int32_t rc = p.api->device_count(p.backend, &p.device_count, &derr);
  if (rc != TSR_OK) {
    p.device_count = 0;
    p.device_reason = derr.message;
  } else if (p.device_count == 0) {
    p.device_reason = derr.message[0] ? derr.message : "the backend reports no device";
  }
  return &p;
}

// ---- graph views built by hand ----------------------------------------------------------

struct AttrSpec {
  std::string name;
  int32_t type = TSR_ATTR_UNDEFINED;
  int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<int64_t> ints;
};
AttrSpec AInt(const char* n, int64_t v) { AttrSpec a{n, TSR_ATTR_INT}; a.i = v; return a; }
AttrSpec AFloat(const char* n, float v) { AttrSpec a{n, TSR_ATTR_FLOAT}; a.f = v; return a; }
AttrSpec AInts(const char* n, std::vector<int64_t> v) { AttrSpec a{n, TSR_ATTR_INTS}; a.ints = std::move(v); return a; }
AttrSpec AString(const char* n, std::string v) { AttrSpec a{n, TSR_ATTR_STRING}; a.s = std::move(v); return a; }

size_t DTypeSize(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_F32: case TSR_DTYPE_I32: return 4;
    case TSR_DTYPE_I64: return 8;
    default: return 1;
  }
}

int64_t Numel(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

// A segment: values (graph inputs, constants, intermediates, outputs) and
// nodes. All storage is owned here and stable; View() is valid until the
// builder is changed or destroyed.
class Segment {
 public:
  int Input(const std::string& name, int32_t dtype, std::vector<int64_t> dims) {
    int v = AddValue(name, dtype, std::move(dims));
    values_[v].flags = TSR_VALUE_GRAPH_INPUT;
    inputs_.push_back(v);
    return v;
  }
  int Temp(const std::string& name, int32_t dtype, std::vector<int64_t> dims) {
    return AddValue(name, dtype, std::move(dims));
  }
  int Output(const std::string& name, int32_t dtype, std::vector<int64_t> dims) {
    int v = AddValue(name, dtype, std::move(dims));
    values_[v].flags = TSR_VALUE_GRAPH_OUTPUT;
    outputs_.push_back(v);
    return v;
  }
  template <typename T>
  int Const(const std::string& name, int32_t dtype, std::vector<int64_t> dims, const std::vector<T>& data) {
    int v = AddValue(name, dtype, std::move(dims));
    const_data_.emplace_back(reinterpret_cast<const uint8_t*>(data.data()),
                             reinterpret_cast<const uint8_t*>(data.data()) + data.size() * sizeof(T));
    values_[v].flags = TSR_VALUE_CONSTANT;
    values_[v].const_data = const_data_.back().data();
    values_[v].const_bytes = const_data_.back().size();
    return v;
  }
  void Node(const std::string& name, const std::string& op, std::vector<int32_t> in, std::vector<int32_t> out,
            std::vector<AttrSpec> attrs = {}, int64_t opset = 17, const std::string& domain = "") {
    NodeSpec n;
    n.name = name;
    n.op = op;
    n.domain = domain;
    n.opset = opset;
    n.in = std::move(in);
    n.out = std::move(out);
    n.attrs = std::move(attrs);
    nodes_.push_back(std::move(n));
  }
  // Makes a value's shape unknown (claim on symbolic shapes).
  void MakeUnknown(int v) {
    values_[v].rank = -1;
    values_[v].dims = nullptr;
  }

  const tsr_graph_view* View() {
    node_views_.clear();
    attr_views_.clear();
    attr_views_.resize(nodes_.size());
    for (size_t k = 0; k < nodes_.size(); ++k) {
      NodeSpec& n = nodes_[k];
      for (AttrSpec& a : n.attrs) {
        tsr_attr_view v{};
        v.name = a.name.c_str();
        v.type = a.type;
        v.i = a.i;
        v.f = a.f;
        v.s = a.s.data();
        v.s_len = a.s.size();
        if (a.type == TSR_ATTR_INTS) {
          v.count = a.ints.size();
          v.ints = a.ints.data();
        }
        attr_views_[k].push_back(v);
      }
      tsr_node_view nv{};
      nv.name = n.name.c_str();
      nv.domain = n.domain.c_str();
      nv.op_type = n.op.c_str();
      nv.opset = n.opset;
      nv.num_inputs = static_cast<uint32_t>(n.in.size());
      nv.inputs = n.in.data();
      nv.num_outputs = static_cast<uint32_t>(n.out.size());
      nv.outputs = n.out.data();
      nv.num_attrs = static_cast<uint32_t>(attr_views_[k].size());
      nv.attrs = attr_views_[k].data();
      node_views_.push_back(nv);
    }
    view_ = tsr_graph_view{};
    view_.struct_size = sizeof(tsr_graph_view);
    view_.num_values = static_cast<uint32_t>(values_.size());
    view_.values = values_.data();
    view_.num_nodes = static_cast<uint32_t>(node_views_.size());
    view_.nodes = node_views_.data();
    view_.num_inputs = static_cast<uint32_t>(inputs_.size());
    view_.inputs = inputs_.data();
    view_.num_outputs = static_cast<uint32_t>(outputs_.size());
    view_.outputs = outputs_.data();
    return &view_;
  }

  size_t num_values() const { return values_.size(); }
  const tsr_value_view& value(int v) const { return values_[v]; }
  uint64_t Bytes(int v) const { return static_cast<uint64_t>(Numel(dims_[v])) * DTypeSize(values_[v].dtype); }
  const std::vector<int32_t>& outputs() const { return outputs_; }

 private:
  struct NodeSpec {
    std::string name, op, domain;
    int64_t opset = 17;
    std::vector<int32_t> in, out;
    std::vector<AttrSpec> attrs;
  };
  int AddValue(const std::string& name, int32_t dtype, std::vector<int64_t> dims) {
    names_.push_back(name);
    dims_.push_back(std::move(dims));
    tsr_value_view v{};
    v.name = names_.back().c_str();
    v.dtype = dtype;
    v.rank = static_cast<int32_t>(dims_.back().size());
    v.dims = dims_.back().data();
    values_.push_back(v);
    return static_cast<int>(values_.size() - 1);
  }

  std::deque<std::string> names_;
  std::deque<std::vector<int64_t>> dims_;
  std::deque<std::vector<uint8_t>> const_data_;
  std::vector<tsr_value_view> values_;
  std::vector<int32_t> inputs_, outputs_;
  std::vector<NodeSpec> nodes_;
  std::vector<std::vector<tsr_attr_view>> attr_views_;
  std::vector<tsr_node_view> node_views_;
  tsr_graph_view view_{};
};

// ---- running a segment through the ABI ---------------------------------------------------

template <typename T>
std::vector<uint8_t> Bytes(const std::vector<T>& v) {
  return std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(v.data()),
                              reinterpret_cast<const uint8_t*>(v.data()) + v.size() * sizeof(T));
}

template <typename T>
std::vector<T> As(const std::vector<uint8_t>& b) {
  std::vector<T> v(b.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

std::vector<float> RandomFloats(int64_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(gen);
  return v;
}

::testing::AssertionResult AllClose(const std::vector<float>& a, const std::vector<float>& e, float tol = 1e-4f) {
  if (a.size() != e.size()) return ::testing::AssertionFailure() << "size " << a.size() << " != " << e.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(a[i] - e[i]) <= tol + tol * std::fabs(e[i])))
      return ::testing::AssertionFailure() << "element " << i << ": got " << a[i] << ", expected " << e[i];
  return ::testing::AssertionSuccess();
}

struct Outcome {
  int32_t code = TSR_OK;
  std::string message;
  std::string stage;                           // where it failed: claim/compile/execute/...
  std::map<int, std::vector<uint8_t>> outputs;  // by value index
  bool ok() const { return code == TSR_OK; }
};

std::string Describe(const Outcome& o) { return o.stage + ": " + o.message; }

// One set of device buffers for a compiled segment (one per value that is
// not a constant), plus a stream. Released in the destructor.
class Bindings {
 public:
  Bindings(const tsr_backend_api* api, tsr_device_t* dev, Segment& seg) : api_(api), dev_(dev), seg_(seg) {
    buffers_.assign(seg.num_values(), nullptr);
    bindings_.assign(seg.num_values(), tsr_binding{nullptr, 0});
    tsr_error err{};
    if (api_->stream_create(dev, &stream_, &err) != TSR_OK) {
      Fail("stream_create", err);
      return;
    }
    for (size_t v = 0; v < seg.num_values(); ++v) {
      if (seg.value(static_cast<int>(v)).flags & TSR_VALUE_CONSTANT) continue;
      if (api_->buffer_alloc(dev, std::max<uint64_t>(seg.Bytes(static_cast<int>(v)), 1), 64, &buffers_[v], &err) !=
          TSR_OK) {
        Fail("buffer_alloc", err);
        return;
      }
      bindings_[v].buffer = buffers_[v];
    }
  }
  ~Bindings() {
    for (tsr_buffer_t* b : buffers_)
      if (b) api_->buffer_free(b);
    if (scratch_) api_->buffer_free(scratch_);
    if (stream_) api_->stream_destroy(stream_);
  }
  Bindings(const Bindings&) = delete;
  Bindings& operator=(const Bindings&) = delete;

  // Uploads inputs, executes, downloads the segment's outputs into `out`.
  void Run(tsr_executable_t* exe, const std::map<int, std::vector<uint8_t>>& inputs, Outcome* out) {
    if (!out->ok()) return;
    if (!status_.ok()) {
      *out = status_;
      return;
    }
    tsr_error err{};
    for (const auto& [v, data] : inputs)
      if (api_->copy_h2d(stream_, buffers_[v], 0, data.data(), data.size(), &err) != TSR_OK)
        return Set(out, "copy_h2d", err);
    // Scratch the executable asks for goes at binding index num_values (the ABI's contract).
    uint64_t scratch = 0;
    if (api_->executable_scratch_bytes && api_->executable_scratch_bytes(exe, &scratch, &err) != TSR_OK)
      return Set(out, "executable_scratch_bytes", err);
    std::vector<tsr_binding> all = bindings_;
    if (scratch > 0) {
      if (scratch > scratch_bytes_) {
        if (scratch_) api_->buffer_free(scratch_);
        scratch_ = nullptr;
        scratch_bytes_ = 0;
        if (api_->buffer_alloc(dev_, scratch, 64, &scratch_, &err) != TSR_OK) return Set(out, "buffer_alloc", err);
        scratch_bytes_ = scratch;
      }
      all.push_back(tsr_binding{scratch_, 0});
    }
    if (api_->execute(exe, stream_, all.data(), static_cast<uint32_t>(all.size()), &err) != TSR_OK)
      return Set(out, "execute", err);
    if (api_->stream_synchronize(stream_, &err) != TSR_OK) return Set(out, "stream_synchronize", err);
    for (int v : seg_.outputs()) {
      std::vector<uint8_t> host(seg_.Bytes(v));
      if (api_->copy_d2h(stream_, host.data(), buffers_[v], 0, host.size(), &err) != TSR_OK)
        return Set(out, "copy_d2h", err);
      if (api_->stream_synchronize(stream_, &err) != TSR_OK) return Set(out, "stream_synchronize", err);
      out->outputs[v] = std::move(host);
    }
  }

  tsr_stream_t* stream() const { return stream_; }
  std::vector<tsr_binding>& bindings() { return bindings_; }

 private:
  static void Set(Outcome* o, const char* stage, const tsr_error& err) {
    o->code = err.code ? err.code : TSR_ERR_INTERNAL;
    o->stage = stage;
    o->message = err.message;
  }
  void Fail(const char* stage, const tsr_error& err) { Set(&status_, stage, err); }

  const tsr_backend_api* api_;
  tsr_device_t* dev_;
  Segment& seg_;
  tsr_stream_t* stream_ = nullptr;
  tsr_buffer_t* scratch_ = nullptr;  // executable scratch, grown on demand
  uint64_t scratch_bytes_ = 0;
  std::vector<tsr_buffer_t*> buffers_;
  std::vector<tsr_binding> bindings_;
  Outcome status_;
};

// ---- the fixture ---------------------------------------------------------------------------

std::set<std::string>& OpTests() {
  static std::set<std::string> names;
  return names;
}
bool RegisterOpTest(const char* name) { return OpTests().insert(name).second; }

class BackendSuite : public ::testing::TestWithParam<std::string> {
 public:
  void SetUp() override {
    plugin_ = GetPlugin(GetParam());
    ASSERT_TRUE(plugin_->error.empty()) << plugin_->file << ": " << plugin_->error;
    api_ = plugin_->api;
    // The test's own name, without the "/<backend>" parameter suffix.
    std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    test_ = test.substr(0, test.find('/'));
    if (OpTests().count(test_))
      if (auto reason = OpSkipReason()) GTEST_SKIP() << *reason;
  }
  void TearDown() override {
    if (device_) api_->device_close(device_);
  }

  // Skips op/segment tests listed for this backend, or when it has no device.
  std::optional<std::string> OpSkipReason() const {
    const auto& list = SkipList(api_->name);
    auto it = list.find(test_);
    if (it == list.end()) it = list.find("*");
    if (it != list.end()) return it->second;
    if (plugin_->device_count == 0) return "no device: " + plugin_->device_reason;
    return std::nullopt;
  }

  tsr_device_t* Device() {
    if (!device_) {
      tsr_error err{};
      EXPECT_EQ(api_->device_open(plugin_->backend, 0, &device_, &err), TSR_OK) << err.message;
    }
    return device_;
  }

  // Claims every node (all must be supported), compiles. On failure, `o`
  // carries the stage and message and nullptr is returned.
  tsr_executable_t* Compile(Segment& seg, Outcome* o, const tsr_compile_options* opts = nullptr) {
    const tsr_graph_view* view = seg.View();
    tsr_device_t* dev = Device();
    if (!dev) {
      o->code = TSR_ERR_NO_DEVICE;
      o->stage = "device_open";
      return nullptr;
    }
    std::vector<tsr_claim> claims(view->num_nodes);
    tsr_error err{};
    if (api_->claim(dev, view, claims.data(), &err) != TSR_OK) {
      o->code = err.code;
      o->stage = "claim";
      o->message = err.message;
      return nullptr;
    }
    for (uint32_t i = 0; i < view->num_nodes; ++i)
      if (!claims[i].supported) {
        o->code = TSR_ERR_UNSUPPORTED;
        o->stage = "claim";
        o->message = std::string("node '") + view->nodes[i].name + "' not claimed: " + claims[i].reason;
        return nullptr;
      }
    tsr_executable_t* exe = nullptr;
    if (api_->compile(dev, view, opts, &exe, &err) != TSR_OK) {
      o->code = err.code;
      o->stage = "compile";
      o->message = err.message;
      return nullptr;
    }
    return exe;
  }

  // Claim + compile + run once with `inputs` (by value index).
  Outcome RunSegment(Segment& seg, const std::map<int, std::vector<uint8_t>>& inputs) {
    Outcome o;
    tsr_executable_t* exe = Compile(seg, &o);
    if (!exe) return o;
    {
      Bindings b(api_, Device(), seg);
      b.Run(exe, inputs, &o);
    }
    api_->executable_destroy(exe);
    return o;
  }

  Plugin* plugin_ = nullptr;
  const tsr_backend_api* api_ = nullptr;
  tsr_device_t* device_ = nullptr;
  std::string test_;
};

// ---- load / device / claim (run on every backend) -----------------------------------------

TEST_P(BackendSuite, LoadsWithValidApiTable) {
  EXPECT_GE(api_->struct_size, sizeof(tsr_backend_api));
  EXPECT_EQ(TSR_BACKEND_ABI_MAJOR(api_->abi_version), TSR_BACKEND_ABI_MAJOR(TSR_BACKEND_ABI_VERSION));
  ASSERT_NE(api_->name, nullptr);
  EXPECT_EQ(std::string(api_->name), ShortName(GetParam())) << "plugin name should match its file name";
  ASSERT_NE(api_->version, nullptr);
  EXPECT_GT(std::strlen(api_->version), 0u);
  // Required slots.
  EXPECT_TRUE(api_->init && api_->shutdown && api_->device_count && api_->device_props && api_->device_open &&
              api_->device_close && api_->claim && api_->compile && api_->executable_destroy && api_->execute &&
              api_->buffer_alloc && api_->buffer_free && api_->copy_h2d && api_->copy_d2h && api_->stream_create &&
              api_->stream_destroy && api_->stream_synchronize);
  // Events are optional as a group: all or none.
  int events = !!api_->event_create + !!api_->event_destroy + !!api_->event_record + !!api_->stream_wait_event +
               !!api_->event_synchronize;
  EXPECT_TRUE(events == 0 || events == 5) << events << " of 5 event slots set";
  // A host with another ABI major is refused.
  auto entry = reinterpret_cast<tsr_backend_entry_fn>(dlsym(plugin_->handle, TSR_BACKEND_ENTRY_SYMBOL));
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry((TSR_BACKEND_ABI_MAJOR(TSR_BACKEND_ABI_VERSION) + 1) << 16), nullptr);
}

TEST_P(BackendSuite, SecondInitAndShutdown) {
  tsr_backend_t* b = nullptr;
  tsr_error err{};
  ASSERT_EQ(api_->init(nullptr, &b, &err), TSR_OK) << err.message;
  ASSERT_NE(b, nullptr);
  api_->shutdown(b);
}

TEST_P(BackendSuite, DevicePropsAreSane) {
  if (plugin_->device_count == 0) GTEST_SKIP() << "no device: " << plugin_->device_reason;
  for (int32_t i = 0; i < plugin_->device_count; ++i) {
    tsr_device_props p{};
    tsr_error err{};
    ASSERT_EQ(api_->device_props(plugin_->backend, i, &p, &err), TSR_OK) << err.message;
    EXPECT_GT(std::strlen(p.name), 0u);
    std::string kind = p.kind;
    EXPECT_TRUE(kind == "cpu" || kind == "gpu" || kind == "accelerator") << kind;
    EXPECT_GE(p.compute_units, 1);
    EXPECT_GE(p.peak_gflops_f32, 0.0);
  }
  tsr_device_props p{};
  tsr_error err{};
  EXPECT_NE(api_->device_props(plugin_->backend, plugin_->device_count, &p, &err), TSR_OK);
  EXPECT_GT(std::strlen(err.message), 0u) << "an out-of-range device index needs a message";
  tsr_device_t* d = nullptr;
  EXPECT_NE(api_->device_open(plugin_->backend, plugin_->device_count, &d, &err), TSR_OK);
}

TEST_P(BackendSuite, ClaimAnswersEveryNode) {
  if (plugin_->device_count == 0) GTEST_SKIP() << "no device: " << plugin_->device_reason;
  Segment s;
  int x = s.Input("x", TSR_DTYPE_F32, {2, 3});
  int y = s.Temp("y", TSR_DTYPE_F32, {2, 3});
  int z = s.Output("z", TSR_DTYPE_F32, {2, 3});
  s.Node("relu", "Relu", {x}, {y});
  s.Node("mystery", "NoSuchOp", {y}, {z}, {}, 1, "tessera.test");
  const tsr_graph_view* v = s.View();
  std::vector<tsr_claim> claims(2);
  for (auto& c : claims) {
    c.supported = 7;  // must be overwritten
    c.reason[0] = 'Q';
    c.reason[1] = 0;
  }
  tsr_error err{};
  ASSERT_EQ(api_->claim(Device(), v, claims.data(), &err), TSR_OK) << err.message;
  for (const tsr_claim& c : claims) {
    EXPECT_TRUE(c.supported == 0 || c.supported == 1) << c.supported;
    if (!c.supported) {
      EXPECT_GT(std::strlen(c.reason), 0u) << "an unsupported node needs a reason";
      EXPECT_STRNE(c.reason, "Q");
    }
  }
  EXPECT_EQ(claims[1].supported, 0) << "an unknown op must not be claimed";
  if (std::string(api_->name) == "null") {
    EXPECT_STREQ(claims[0].reason, "the null backend implements no kernels");
  }
}

TEST_P(BackendSuite, ClaimAcceptsUnknownShapes) {
  if (plugin_->device_count == 0) GTEST_SKIP() << "no device: " << plugin_->device_reason;
  Segment s;
  int a = s.Input("a", TSR_DTYPE_F32, {-1, 8});
  int w = s.Input("w", TSR_DTYPE_F32, {8, 4});
  int y = s.Output("y", TSR_DTYPE_F32, {-1, 4});
  s.MakeUnknown(y);
  s.Node("mm", "MatMul", {a, w}, {y});
  std::vector<tsr_claim> claims(1);
  tsr_error err{};
  ASSERT_EQ(api_->claim(Device(), s.View(), claims.data(), &err), TSR_OK) << err.message;
  EXPECT_TRUE(claims[0].supported == 0 || claims[0].supported == 1);
  EXPECT_GE(claims[0].est_time_us, 0.0);
}

// ---- op tests ---------------------------------------------------------------------------------

// An op/segment test: SetUp skips it per the backend's skip list, or when
// the backend has no device.
#define BACKEND_OP_TEST(name)                                       \
  [[maybe_unused]] const bool kRegistered_##name = RegisterOpTest(#name); \
  TEST_P(BackendSuite, name)

// One-node segment helper: inputs are graph inputs unless given as constants.
struct Operand {
  int32_t dtype;
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
  bool is_const = false;
};
Operand F32(std::vector<int64_t> dims, const std::vector<float>& v, bool c = false) {
  return {TSR_DTYPE_F32, std::move(dims), Bytes(v), c};
}
Operand I64(std::vector<int64_t> dims, const std::vector<int64_t>& v, bool c = false) {
  return {TSR_DTYPE_I64, std::move(dims), Bytes(v), c};
}

// Builds `op` over `ins` with one f32 output of `out_dims`, runs it, returns
// the outcome (output under key 0).
Outcome RunOp(BackendSuite* t, const std::string& name, const std::string& op, const std::vector<Operand>& ins,
              std::vector<int64_t> out_dims, std::vector<AttrSpec> attrs, int64_t opset = 17,
              int32_t out_dtype = TSR_DTYPE_F32) {
  Segment s;
  std::vector<int32_t> in_idx;
  std::map<int, std::vector<uint8_t>> feeds;
  for (size_t i = 0; i < ins.size(); ++i) {
    const Operand& o = ins[i];
    std::string vn = "in" + std::to_string(i);
    int v = o.is_const ? s.Const(vn, o.dtype, o.dims, o.data) : s.Input(vn, o.dtype, o.dims);
    if (!o.is_const) feeds[v] = o.data;
    in_idx.push_back(v);
  }
  int y = s.Output("y", out_dtype, std::move(out_dims));
  s.Node(name, op, in_idx, {y}, std::move(attrs), opset);
  Outcome r = t->RunSegment(s, feeds);
  if (r.ok()) r.outputs[0] = r.outputs[y];
  return r;
}

#define RUN_OP(...) RunOp(this, __VA_ARGS__)

BACKEND_OP_TEST(AddBroadcast) {
  auto a = RandomFloats(24, 1), b = RandomFloats(4, 2), c = RandomFloats(3, 3);
  Outcome r = RUN_OP("add", "Add", {F32({2, 3, 4}, a), F32({4}, b)}, {2, 3, 4}, {});
  ASSERT_TRUE(r.ok()) << Describe(r);
  std::vector<float> want(24);
  for (int i = 0; i < 24; ++i) want[i] = a[i] + b[i % 4];
  EXPECT_TRUE(AllClose(As<float>(r.outputs[0]), want));
  // Both sides broadcast: [2,1,4] + [3,1] -> [2,3,4].
  auto d = RandomFloats(8, 4);
  r = RUN_OP("add2", "Add", {F32({2, 1, 4}, d), F32({3, 1}, c)}, {2, 3, 4}, {});
  ASSERT_TRUE(r.ok()) << Describe(r);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) want[(i * 3 + j) * 4 + k] = d[i * 4 + k] + c[j];
  EXPECT_TRUE(AllClose(As<float>(r.outputs[0]), want));
}

BACKEND_OP_TEST(Relu) {
  auto x = RandomFloats(30, 5);
  x[0] = 0.f;
  x[1] = -0.f;
  Outcome r = RUN_OP("relu", "Relu", {F32({5, 6}, x)}, {5, 6}, {});
  ASSERT_TRUE(r.ok()) << Describe(r);
  std::vector<float> want(30);
  for (int i = 0; i < 30; ++i) want[i] = x[i] > 0 ? x[i] : 0.f;
  EXPECT_TRUE(AllClose(As<float>(r.outputs[0]), want));
}

std::vector<float> RefMatMul(const std::vector<float>& a, const std::vector<float>& b, int64_t batch, int64_t M,
                             int64_t K, int64_t N, bool b_batched) {
  std::vector<float> y(static_cast<size_t>(batch * M * N));
  for (int64_t p = 0; p < batch; ++p)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += static_cast<double>(a[(p * M + m) * K + k]) * b[(b_batched ? p * K * N : 0) + k * N + n];
        y[(p * M + m) * N + n] = static_cast<float>(acc);
      }
  return y;
}

BACKEND_OP_TEST(MatMul) {
  auto a = RandomFloats(2 * 3 * 4, 6), b = RandomFloats(2 * 4 * 5, 7), w = RandomFloats(4 * 5, 8);
  Outcome r = RUN_OP("mm", "MatMul", {F32({2, 3, 4}, a), F32({2, 4, 5}, b)}, {2, 3, 5}, {});
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_TRUE(AllClose(As<float>(r.outputs[0]), RefMatMul(a, b, 2, 3, 4, 5, true)));
  // Constant 2-D weights broadcast over the batch.
  r = RUN_OP("mm_const", "MatMul", {F32({2, 3, 4}, a), F32({4, 5}, w, true)}, {2, 3, 5}, {});
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_TRUE(AllClose(As<float>(r.outputs[0]), RefMatMul(a, w, 2, 3, 4, 5, false)));
}

BACKEND_OP_TEST(Gemm) {
  const int64_t M = 3, K = 5, N = 4;
  auto a = RandomFloats(M * K, 9), b = RandomFloats(N * K, 10), c = RandomFloats(N, 11);
  Outcome r = RUN_OP("gemm", "Gemm", {F32({M, K}, a), F32({N, K}, b, true), F32({N}, c, true)}, {M, N},
                     {AInt("transB", 1), AFloat("alpha", 0.5f), AFloat("beta", 2.f)});
  ASSERT_TRUE(r.ok()) << Describe(r);
  std::vector<float> want(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(a[m * K + k]) * b[n * K + k];
      want[m * N + n] = static_cast<float>(0.5 * acc + 2.0 * c[n]);
    }
  EXPECT_TRUE(AllClose(As<float>(r.outputs[0]), want));
}

BACKEND_OP_TEST(Conv) {
  // X [1,2,5,5], W [3,2,3,3], B [3], stride 2, pads 1 -> Y [1,3,3,3].
  auto x = RandomFloats(50, 12), w = RandomFloats(54, 13), bias = RandomFloats(3, 14);
  Outcome r = RUN_OP("conv", "Conv", {F32({1, 2, 5, 5}, x), F32({3, 2, 3, 3}, w, true), F32({3}, bias, true)},
                     {1, 3, 3, 3}, {AInts("strides", {2, 2}), AInts("pads", {1, 1, 1, 1}), AInts("kernel_shape", {3, 3}),
                      AString("auto_pad", "NOTSET")});
  ASSERT_TRUE(r.ok()) << Describe(r);
  std::vector<float> want(27);
  for (int m = 0; m < 3; ++m)
    for (int oh = 0; oh < 3; ++oh)
      for (int ow = 0; ow < 3; ++ow) {
        double acc = bias[m];
        for (int c = 0; c < 2; ++c)
          for (int kh = 0; kh < 3; ++kh)
            for (int kw = 0; kw < 3; ++kw) {
              int ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
              if (ih < 0 || ih >= 5 || iw < 0 || iw >= 5) continue;
              acc += static_cast<double>(x[(c * 5 + ih) * 5 + iw]) * w[((m * 2 + c) * 3 + kh) * 3 + kw];
            }
        want[(m * 3 + oh) * 3 + ow] = static_cast<float>(acc);
      }
  EXPECT_TRUE(AllClose(As<float>(r.outputs[0]), want));
}

BACKEND_OP_TEST(MaxPool) {
  // [1,2,6,6], 3x3, stride 2, pads 1 -> [1,2,3,3].
  auto x = RandomFloats(72, 15);
  Outcome r = RUN_OP("pool", "MaxPool", {F32({1, 2, 6, 6}, x)}, {1, 2, 3, 3},
                     {AInts("kernel_shape", {3, 3}), AInts("strides", {2, 2}), AInts("pads", {1, 1, 1, 1})});
  ASSERT_TRUE(r.ok()) << Describe(r);
  std::vector<float> want(18);
  for (int c = 0; c < 2; ++c)
    for (int oh = 0; oh < 3; ++oh)
      for (int ow = 0; ow < 3; ++ow) {
        float m = -INFINITY;
        for (int kh = 0; kh < 3; ++kh)
          for (int kw = 0; kw < 3; ++kw) {
            int ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
            if (ih >= 0 && ih < 6 && iw >= 0 && iw < 6) m = std::max(m, x[(c * 6 + ih) * 6 + iw]);
          }
        want[(c * 3 + oh) * 3 + ow] = m;
      }
  EXPECT_TRUE(AllClose(As<float>(r.outputs[0]), want));
}

BACKEND_OP_TEST(Softmax) {
  auto x = RandomFloats(3 * 7, 16, -5.f, 5.f);
  x[3] = 80.f;  // large values must not overflow
  Outcome r = RUN_OP("softmax", "Softmax", {F32({3, 7}, x)}, {3, 7}, {AInt("axis", -1)}, 13);
  ASSERT_TRUE(r.ok()) << Describe(r);
  std::vector<float> want(21);
  for (int i = 0; i < 3; ++i) {
    double mx = -INFINITY, sum = 0;
    for (int j = 0; j < 7; ++j) mx = std::max(mx, static_cast<double>(x[i * 7 + j]));
    for (int j = 0; j < 7; ++j) sum += std::exp(x[i * 7 + j] - mx);
    for (int j = 0; j < 7; ++j) want[i * 7 + j] = static_cast<float>(std::exp(x[i * 7 + j] - mx) / sum);
  }
  EXPECT_TRUE(AllClose(As<float>(r.outputs[0]), want, 1e-5f));
}

BACKEND_OP_TEST(Reshape) {
  auto x = RandomFloats(24, 17);
  Outcome r = RUN_OP("reshape", "Reshape", {F32({2, 3, 4}, x), I64({2}, {6, -1}, true)}, {6, 4}, {}, 14);
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(As<float>(r.outputs[0]), x);
}

BACKEND_OP_TEST(Transpose) {
  auto x = RandomFloats(24, 18);
  Outcome r = RUN_OP("transpose", "Transpose", {F32({2, 3, 4}, x)}, {4, 2, 3}, {AInts("perm", {2, 0, 1})});
  ASSERT_TRUE(r.ok()) << Describe(r);
  std::vector<float> want(24);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) want[(k * 2 + i) * 3 + j] = x[(i * 3 + j) * 4 + k];
  EXPECT_EQ(As<float>(r.outputs[0]), want);
}

BACKEND_OP_TEST(Concat) {
  auto a = RandomFloats(2 * 1 * 3, 19), b = RandomFloats(2 * 2 * 3, 20), c = RandomFloats(2 * 3 * 3, 21);
  Outcome r = RUN_OP("concat", "Concat", {F32({2, 1, 3}, a), F32({2, 2, 3}, b, true), F32({2, 3, 3}, c)}, {2, 6, 3},
                     {AInt("axis", 1)});
  ASSERT_TRUE(r.ok()) << Describe(r);
  std::vector<float> want;
  for (int i = 0; i < 2; ++i) {
    want.insert(want.end(), a.begin() + i * 3, a.begin() + (i + 1) * 3);
    want.insert(want.end(), b.begin() + i * 6, b.begin() + (i + 1) * 6);
    want.insert(want.end(), c.begin() + i * 9, c.begin() + (i + 1) * 9);
  }
  EXPECT_EQ(As<float>(r.outputs[0]), want);
}

BACKEND_OP_TEST(Gather) {
  auto data = RandomFloats(5 * 3, 22);
  std::vector<int64_t> idx{4, 0, -1, 2};  // -1 = the last row
  Outcome r = RUN_OP("gather", "Gather", {F32({5, 3}, data), I64({2, 2}, idx)}, {2, 2, 3}, {AInt("axis", 0)});
  ASSERT_TRUE(r.ok()) << Describe(r);
  std::vector<float> want;
  for (int64_t i : idx) {
    int64_t row = i < 0 ? i + 5 : i;
    want.insert(want.end(), data.begin() + row * 3, data.begin() + (row + 1) * 3);
  }
  EXPECT_EQ(As<float>(r.outputs[0]), want);
}

BACKEND_OP_TEST(GatherOutOfRangeIsAnError) {
  auto data = RandomFloats(5 * 3, 23);
  Outcome r = RUN_OP("gather_oor", "Gather", {F32({5, 3}, data), I64({2}, {1, 7})}, {2, 3}, {AInt("axis", 0)});
  ASSERT_FALSE(r.ok()) << "index 7 into a dim of 5 must fail";
  // The node must have been claimed and compiled: the indices are runtime data.
  EXPECT_EQ(r.stage, "execute") << Describe(r);
  EXPECT_NE(r.message.find("gather_oor"), std::string::npos) << Describe(r);
}

// MatMul(x, W) -> t1; Add(t1, b) -> t2; Relu(t2) -> y, with t1/t2 intermediates.
struct ThreeNode {
  Segment s;
  int x, y;
  std::vector<float> w, b;
  ThreeNode() {
    w = RandomFloats(8 * 6, 30);
    b = RandomFloats(6, 31);
    x = s.Input("x", TSR_DTYPE_F32, {4, 8});
    int wv = s.Const("w", TSR_DTYPE_F32, {8, 6}, w);
    int bv = s.Const("b", TSR_DTYPE_F32, {6}, b);
    int t1 = s.Temp("t1", TSR_DTYPE_F32, {4, 6});
    int t2 = s.Temp("t2", TSR_DTYPE_F32, {4, 6});
    y = s.Output("y", TSR_DTYPE_F32, {4, 6});
    s.Node("fc", "MatMul", {x, wv}, {t1});
    s.Node("bias", "Add", {t1, bv}, {t2});
    s.Node("act", "Relu", {t2}, {y});
  }
  std::vector<float> Ref(const std::vector<float>& xv) const {
    std::vector<float> out = RefMatMul(xv, w, 1, 4, 8, 6, false);
    for (int i = 0; i < 24; ++i) out[i] = std::max(0.f, out[i] + b[i % 6]);
    return out;
  }
};

BACKEND_OP_TEST(ThreeNodeSegment) {
  ThreeNode g;
  auto x = RandomFloats(32, 32);
  Outcome r = RunSegment(g.s, {{g.x, Bytes(x)}});
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_TRUE(AllClose(As<float>(r.outputs[g.y]), g.Ref(x)));
}

// Compile options every backend must accept (and may ignore).
BACKEND_OP_TEST(CompileOptionsThreadsAndPrecision) {
  ThreeNode g;
  auto x = RandomFloats(32, 33);
  for (const char* precision : {"f32", "bf16"}) {
    tsr_option opts[] = {{"threads", "1"}, {"precision", precision}};
    tsr_compile_options co{sizeof(tsr_compile_options), 2, opts};
    Outcome o;
    tsr_executable_t* exe = Compile(g.s, &o, &co);
    ASSERT_NE(exe, nullptr) << precision << ": " << Describe(o);
    {
      Bindings b(api_, Device(), g.s);
      b.Run(exe, {{g.x, Bytes(x)}}, &o);
    }
    api_->executable_destroy(exe);
    ASSERT_TRUE(o.ok()) << precision << ": " << Describe(o);
    // bf16 arithmetic keeps ~3 significant digits.
    EXPECT_TRUE(AllClose(As<float>(o.outputs[g.y]), g.Ref(x), std::string(precision) == "bf16" ? 3e-2f : 1e-4f))
        << precision;
  }
}

// The CPU backend's own options are validated (other backends skip).
BACKEND_OP_TEST(CpuOptionsAreValidated) {
  if (std::string(api_->name) != "cpu") GTEST_SKIP() << "cpu-specific options";
  tsr_option bad_threads[] = {{"threads", "zero"}};
  tsr_compile_options co{sizeof(tsr_compile_options), 1, bad_threads};
  tsr_backend_t* b = nullptr;
  tsr_error err{};
  EXPECT_EQ(api_->init(&co, &b, &err), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("threads"), std::string::npos) << err.message;
  ThreeNode g;
  Outcome o;
  EXPECT_EQ(Compile(g.s, &o, &co), nullptr);
  EXPECT_EQ(o.code, TSR_ERR_INVALID_ARGUMENT) << Describe(o);
  tsr_option bad_precision[] = {{"precision", "fp8"}};
  tsr_compile_options cp{sizeof(tsr_compile_options), 1, bad_precision};
  Outcome o2;
  EXPECT_EQ(Compile(g.s, &o2, &cp), nullptr);
  EXPECT_NE(o2.message.find("fp8"), std::string::npos) << Describe(o2);
}

BACKEND_OP_TEST(ConcurrentExecute) {
  ThreeNode g;
  Outcome o;
  tsr_executable_t* exe = Compile(g.s, &o);
  ASSERT_NE(exe, nullptr) << Describe(o);
  tsr_device_t* dev = Device();
  std::vector<std::vector<float>> inputs{RandomFloats(32, 40), RandomFloats(32, 41)};
  std::vector<std::vector<float>> results(2);
  std::vector<Outcome> outcomes(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      Bindings b(api_, dev, g.s);
      for (int rep = 0; rep < 20 && outcomes[t].ok(); ++rep) {
        Outcome one;
        b.Run(exe, {{g.x, Bytes(inputs[t])}}, &one);
        if (!one.ok()) {
          outcomes[t] = one;
          break;
        }
        std::vector<float> y = As<float>(one.outputs[g.y]);
        if (rep == 0) results[t] = y;
        else if (y != results[t]) outcomes[t] = Outcome{TSR_ERR_INTERNAL, "result changed between runs", "compare"};
      }
    });
  for (auto& th : threads) th.join();
  api_->executable_destroy(exe);
  for (int t = 0; t < 2; ++t) {
    ASSERT_TRUE(outcomes[t].ok()) << "thread " << t << ": " << Describe(outcomes[t]);
    EXPECT_TRUE(AllClose(results[t], g.Ref(inputs[t]))) << "thread " << t;
  }
}

BACKEND_OP_TEST(CompileReportsEveryFailingNode) {
  Segment s;
  int x = s.Input("x", TSR_DTYPE_F32, {2, 3});
  int w = s.Input("w", TSR_DTYPE_F32, {4, 5});  // K mismatch: 3 vs 4
  int t = s.Temp("t", TSR_DTYPE_F32, {2, 5});
  int img = s.Input("img", TSR_DTYPE_F32, {1, 3, 4, 4});
  std::vector<float> wv(2 * 2 * 3 * 3, 1.f);
  int k = s.Const("k", TSR_DTYPE_F32, {2, 2, 3, 3}, wv);  // 2 channels per group, X has 3
  int y1 = s.Output("y1", TSR_DTYPE_F32, {2, 5});
  int y2 = s.Output("y2", TSR_DTYPE_F32, {1, 2, 2, 2});
  s.Node("bad_matmul", "MatMul", {x, w}, {t});
  s.Node("fine_relu", "Relu", {t}, {y1});
  s.Node("bad_conv", "Conv", {img, k}, {y2});
  const tsr_graph_view* v = s.View();
  tsr_executable_t* exe = nullptr;
  tsr_error err{};
  int32_t rc = api_->compile(Device(), v, nullptr, &exe, &err);
  ASSERT_NE(rc, TSR_OK);
  EXPECT_EQ(exe, nullptr);
  std::string msg = err.message;
  EXPECT_NE(msg.find("bad_matmul"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad_conv"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("fine_relu"), std::string::npos) << msg;
}

BACKEND_OP_TEST(ExecuteRejectsTooFewBindings) {
  ThreeNode g;
  Outcome o;
  tsr_executable_t* exe = Compile(g.s, &o);
  ASSERT_NE(exe, nullptr) << Describe(o);
  {
    Bindings b(api_, Device(), g.s);
    tsr_error err{};
    EXPECT_NE(api_->execute(exe, b.stream(), b.bindings().data(), 2, &err), TSR_OK);
    EXPECT_GT(std::strlen(err.message), 0u);
  }
  api_->executable_destroy(exe);
}

BACKEND_OP_TEST(BufferCopiesRoundTrip) {
  tsr_buffer_t* buf = nullptr;
  tsr_stream_t* st = nullptr;
  tsr_error err{};
  ASSERT_EQ(api_->stream_create(Device(), &st, &err), TSR_OK) << err.message;
  ASSERT_EQ(api_->buffer_alloc(Device(), 1000, 64, &buf, &err), TSR_OK) << err.message;
  std::vector<uint8_t> src(600), dst(600, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7);
  EXPECT_EQ(api_->copy_h2d(st, buf, 100, src.data(), src.size(), &err), TSR_OK) << err.message;
  EXPECT_EQ(api_->copy_d2h(st, dst.data(), buf, 100, dst.size(), &err), TSR_OK) << err.message;
  EXPECT_EQ(api_->stream_synchronize(st, &err), TSR_OK) << err.message;
  EXPECT_EQ(src, dst);
  // Past the end: an error, not a crash.
  EXPECT_NE(api_->copy_h2d(st, buf, 900, src.data(), src.size(), &err), TSR_OK);
  api_->buffer_free(buf);
  api_->stream_destroy(st);
}

// ---- instantiation -------------------------------------------------------------------------

std::string ParamName(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = ShortName(info.param);
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Plugins, BackendSuite, ::testing::ValuesIn(PluginFiles()), ParamName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(BackendSuite);

// The suite is only meaningful when the in-tree plugins were built.
TEST(BackendDiscovery, FindsInTreePlugins) {
  std::vector<std::string> files = PluginFiles();
  EXPECT_NE(std::find(files.begin(), files.end(), "libtessera_backend_cpu.so"), files.end())
      << "build tessera_backend_cpu first; looked in " << TESSERA_BACKEND_BUILD_DIR;
  EXPECT_NE(std::find(files.begin(), files.end(), "libtessera_backend_null.so"), files.end())
      << "build tessera_backend_null first; looked in " << TESSERA_BACKEND_BUILD_DIR;
}

}  // namespace
