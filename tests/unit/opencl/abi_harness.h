// Test harness shared by the OpenCL plugin tests (test_opencl_ops.cpp,
// test_opencl_training.cpp): plugins loaded through the ABI only, one-segment
// graph views built by hand (Seg), and RunSeg, which claims, compiles, binds
// every value inside ONE arena buffer, runs and reads the outputs back.
// Header-only and in an anonymous namespace: it is included by the test
// sources of one binary (test_opencl) and nowhere else.
#pragma once

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tessera/backend.h"

namespace {

// ---- plugins --------------------------------------------------------------------------------

struct Plugin {
  void* handle = nullptr;
  const tsr_backend_api* api = nullptr;
  tsr_backend_t* backend = nullptr;
  tsr_device_t* device = nullptr;
  std::string error;  // why unusable ("" = usable)
};

// dlopens libtessera_backend_<name>.so from the build tree once per process
// (kept open) and opens its device 0.
inline Plugin* Load(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Plugin>> loaded;
  auto& slot = loaded[name];
  if (slot) return slot.get();
  slot = std::make_unique<Plugin>();
  Plugin& p = *slot;
  const std::string path = std::string(TESSERA_BACKEND_BUILD_DIR) + "/libtessera_backend_" + name + ".so";
  p.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!p.handle) {
    p.error = std::string("dlopen failed: ") + dlerror();
    return &p;
  }
  auto entry = reinterpret_cast<tsr_backend_entry_fn>(dlsym(p.handle, TSR_BACKEND_ENTRY_SYMBOL));
  p.api = entry ? entry(TSR_BACKEND_ABI_VERSION) : nullptr;
  tsr_error err{};
  if (!p.api || p.api->init(nullptr, &p.backend, &err) != TSR_OK) {
    p.error = std::string("init failed: ") + err.message;
    return &p;
  }
  int32_t n = 0;
  if (p.api->device_count(p.backend, &n, &err) != TSR_OK || n == 0) {
    p.error = std::string("no device: ") + err.message;
    return &p;
  }
  if (p.api->device_open(p.backend, 0, &p.device, &err) != TSR_OK) p.error = std::string("device_open: ") + err.message;
  return &p;
}

// ---- attributes and host data ---------------------------------------------------------------

struct Attr {
  std::string name;
  int32_t type = TSR_ATTR_UNDEFINED;
  int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
};
inline Attr AInt(const char* n, int64_t v) {
  Attr a{n, TSR_ATTR_INT};
  a.i = v;
  return a;
}
inline Attr AFloat(const char* n, float v) {
  Attr a{n, TSR_ATTR_FLOAT};
  a.f = v;
  return a;
}
inline Attr AInts(const char* n, std::vector<int64_t> v) {
  Attr a{n, TSR_ATTR_INTS};
  a.ints = std::move(v);
  return a;
}
inline Attr AFloats(const char* n, std::vector<float> v) {
  Attr a{n, TSR_ATTR_FLOATS};
  a.floats = std::move(v);
  return a;
}
inline Attr AStr(const char* n, std::string v) {
  Attr a{n, TSR_ATTR_STRING};
  a.s = std::move(v);
  return a;
}

inline size_t Size(int32_t dt) { return dt == TSR_DTYPE_I64 ? 8 : dt == TSR_DTYPE_BOOL ? 1 : 4; }
inline int64_t Numel(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}
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
inline std::vector<float> Rand(int64_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(gen);
  return v;
}

// ---- a one-segment graph view built by hand -------------------------------------------------

// Values may alias: an output bound to the same memory as an input (the
// in-place update of a training session). Node() uses `default_domain` when
// no domain is given.
class Seg {
 public:
  explicit Seg(std::string default_domain = "") : default_domain_(std::move(default_domain)) {}

  int In(int32_t dt, std::vector<int64_t> dims, std::vector<uint8_t> data) {
    int v = Add(dt, std::move(dims), TSR_VALUE_GRAPH_INPUT);
    feeds_[v] = std::move(data);
    inputs_.push_back(v);
    return v;
  }
  int InF(std::vector<int64_t> dims, uint32_t seed, float lo = -1.f, float hi = 1.f) {
    const int64_t n = Numel(dims);
    return In(TSR_DTYPE_F32, std::move(dims), Bytes(Rand(n, seed, lo, hi)));
  }
  int InI64(std::vector<int64_t> v) {
    const int64_t n = static_cast<int64_t>(v.size());
    return In(TSR_DTYPE_I64, {n}, Bytes(v));
  }
  int Const(int32_t dt, std::vector<int64_t> dims, std::vector<uint8_t> data) {
    int v = Add(dt, std::move(dims), TSR_VALUE_CONSTANT);
    consts_.push_back(std::move(data));
    values_[v].const_data = consts_.back().data();
    values_[v].const_bytes = consts_.back().size();
    return v;
  }
  int ConstF(std::vector<int64_t> dims, uint32_t seed) {
    const int64_t n = Numel(dims);
    return Const(TSR_DTYPE_F32, std::move(dims), Bytes(Rand(n, seed)));
  }
  int ConstI(std::vector<int64_t> v) {
    const int64_t n = static_cast<int64_t>(v.size());
    return Const(TSR_DTYPE_I64, {n}, Bytes(v));
  }
  int Tmp(int32_t dt, std::vector<int64_t> dims) { return Add(dt, std::move(dims), 0); }
  int Out(int32_t dt, std::vector<int64_t> dims) {
    int v = Add(dt, std::move(dims), TSR_VALUE_GRAPH_OUTPUT);
    outputs_.push_back(v);
    return v;
  }
  int OutF(std::vector<int64_t> dims) { return Out(TSR_DTYPE_F32, std::move(dims)); }
  // Output `out` shares the memory of input `in` (same size).
  void Alias(int out, int in) { alias_[out] = in; }
  void Node(const std::string& name, const std::string& op, std::vector<int32_t> in, std::vector<int32_t> out,
            std::vector<Attr> attrs = {}, const char* domain = nullptr, int64_t opset = 17) {
    nodes_.push_back({name, op, domain ? std::string(domain) : default_domain_, opset, std::move(in), std::move(out),
                      std::move(attrs)});
  }

  const tsr_graph_view* View() {
    nviews_.clear();
    aviews_.assign(nodes_.size(), {});
    for (size_t k = 0; k < nodes_.size(); ++k) {
      auto& n = nodes_[k];
      for (auto& a : n.attrs) {
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
        } else if (a.type == TSR_ATTR_FLOATS) {
          v.count = a.floats.size();
          v.floats = a.floats.data();
        }
        aviews_[k].push_back(v);
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
      nv.num_attrs = static_cast<uint32_t>(aviews_[k].size());
      nv.attrs = aviews_[k].data();
      nviews_.push_back(nv);
    }
    view_ = tsr_graph_view{};
    view_.struct_size = sizeof(view_);
    view_.num_values = static_cast<uint32_t>(values_.size());
    view_.values = values_.data();
    view_.num_nodes = static_cast<uint32_t>(nviews_.size());
    view_.nodes = nviews_.data();
    view_.num_inputs = static_cast<uint32_t>(inputs_.size());
    view_.inputs = inputs_.data();
    view_.num_outputs = static_cast<uint32_t>(outputs_.size());
    view_.outputs = outputs_.data();
    return &view_;
  }
  uint64_t NBytes(int v) const { return static_cast<uint64_t>(Numel(dims_[v])) * Size(values_[v].dtype); }
  size_t num_values() const { return values_.size(); }
  bool is_const(int v) const { return values_[v].flags & TSR_VALUE_CONSTANT; }
  int32_t dtype(int v) const { return values_[v].dtype; }
  const std::map<int, std::vector<uint8_t>>& feeds() const { return feeds_; }
  std::map<int, std::vector<uint8_t>>& mutable_feeds() { return feeds_; }
  const std::vector<int32_t>& outputs() const { return outputs_; }
  const std::map<int, int>& aliases() const { return alias_; }

 private:
  struct N {
    std::string name, op, domain;
    int64_t opset;
    std::vector<int32_t> in, out;
    std::vector<Attr> attrs;
  };
  int Add(int32_t dt, std::vector<int64_t> dims, uint32_t flags) {
    names_.push_back("v" + std::to_string(values_.size()));
    dims_.push_back(std::move(dims));
    tsr_value_view v{};
    v.name = names_.back().c_str();
    v.dtype = dt;
    v.rank = static_cast<int32_t>(dims_.back().size());
    v.dims = dims_.back().data();
    v.flags = flags;
    values_.push_back(v);
    return static_cast<int>(values_.size() - 1);
  }
  std::string default_domain_;
  std::deque<std::string> names_;
  std::deque<std::vector<int64_t>> dims_;
  std::deque<std::vector<uint8_t>> consts_;
  std::vector<tsr_value_view> values_;
  std::vector<int32_t> inputs_, outputs_;
  std::vector<N> nodes_;
  std::vector<std::vector<tsr_attr_view>> aviews_;
  std::vector<tsr_node_view> nviews_;
  std::map<int, std::vector<uint8_t>> feeds_;
  std::map<int, int> alias_;
  tsr_graph_view view_{};
};

// ---- running a segment ----------------------------------------------------------------------

struct RunResult {
  int32_t code = TSR_OK;
  std::string stage, message;
  std::map<int, std::vector<uint8_t>> outputs;
  bool ok() const { return code == TSR_OK; }
  std::string Describe() const { return stage + ": " + message; }
};

struct RunOptions {
  bool check_claim = true;  // every node must be claimed before compiling
  // Offsets 4-byte but not 8- or 64-byte aligned (i64 values stay 8-byte
  // aligned); false: 8-byte-aligned offsets.
  bool misalign = true;
};

// Claims, compiles, binds every value at its own offset inside ONE arena
// (aliased outputs at their input's offset; constants too, unused), fills the
// arena with NaN bytes first (an output element or scratch a kernel forgets
// to write shows up), uploads the feeds, runs, reads the outputs back.
inline RunResult RunSeg(Plugin* p, Seg& s, RunOptions opt = {}) {
  RunResult r;
  auto fail = [&](const char* stage, const tsr_error& e) {
    r.code = e.code ? e.code : TSR_ERR_INTERNAL;
    r.stage = stage;
    r.message = e.message;
    return r;
  };
  const tsr_graph_view* v = s.View();
  tsr_error err{};
  if (opt.check_claim) {
    std::vector<tsr_claim> claims(v->num_nodes);
    if (p->api->claim(p->device, v, claims.data(), &err) != TSR_OK) return fail("claim", err);
    for (uint32_t i = 0; i < v->num_nodes; ++i)
      if (!claims[i].supported) {
        r.code = TSR_ERR_UNSUPPORTED;
        r.stage = "claim";
        r.message = std::string(v->nodes[i].name) + ": " + claims[i].reason;
        return r;
      }
  }
  tsr_executable_t* exe = nullptr;
  if (p->api->compile(p->device, v, nullptr, &exe, &err) != TSR_OK) return fail("compile", err);
  uint64_t scratch = 0;
  if (p->api->executable_scratch_bytes) p->api->executable_scratch_bytes(exe, &scratch, &err);
  std::vector<uint64_t> off(s.num_values(), 0);
  uint64_t at = opt.misalign ? 52 : 40;
  for (size_t i = 0; i < s.num_values(); ++i) {
    const int vi = static_cast<int>(i);
    if (s.aliases().count(vi)) continue;
    const uint64_t padded = (s.NBytes(vi) + 7) / 8 * 8;
    if (!opt.misalign || s.dtype(vi) == TSR_DTYPE_I64) at = (at + 7) / 8 * 8;  // i64 needs 8-byte alignment
    off[i] = at;
    at += padded + (opt.misalign ? 12 : 8);  // +12 keeps 4-byte alignment and breaks 8/64
  }
  for (const auto& [o, in] : s.aliases()) off[o] = off[in];
  const uint64_t scratch_off = (at + 63) / 64 * 64 + (opt.misalign ? 8 : 0);
  const uint64_t arena_bytes = scratch_off + scratch + 64;
  tsr_buffer_t* arena = nullptr;
  tsr_stream_t* st = nullptr;
  if (p->api->buffer_alloc(p->device, arena_bytes, 64, &arena, &err) != TSR_OK) {
    p->api->executable_destroy(exe);
    return fail("buffer_alloc", err);
  }
  p->api->stream_create(p->device, &st, &err);
  std::vector<tsr_binding> b(s.num_values() + 1, tsr_binding{nullptr, 0});
  for (size_t i = 0; i < s.num_values(); ++i)
    if (!s.is_const(static_cast<int>(i))) b[i] = {arena, off[i]};
  b[s.num_values()] = {arena, scratch_off};
  do {
    const std::vector<uint8_t> junk(arena_bytes, 0xFF);
    if (p->api->copy_h2d(st, arena, 0, junk.data(), junk.size(), &err) != TSR_OK) {
      fail("copy_h2d", err);
      break;
    }
    bool bad = false;
    for (const auto& [vi, data] : s.feeds())
      if (p->api->copy_h2d(st, arena, off[vi], data.data(), data.size(), &err) != TSR_OK) {
        fail("copy_h2d", err);
        bad = true;
        break;
      }
    if (bad) break;
    const uint32_t nb = static_cast<uint32_t>(s.num_values() + (scratch ? 1 : 0));
    if (p->api->execute(exe, st, b.data(), nb, &err) != TSR_OK) {
      fail("execute", err);
      break;
    }
    if (p->api->stream_synchronize(st, &err) != TSR_OK) {
      fail("stream_synchronize", err);
      break;
    }
    for (int o : s.outputs()) {
      std::vector<uint8_t> host(s.NBytes(o));
      if (p->api->copy_d2h(st, host.data(), arena, off[o], host.size(), &err) != TSR_OK) {
        fail("copy_d2h", err);
        break;
      }
      r.outputs[o] = std::move(host);
    }
    p->api->stream_synchronize(st, &err);
  } while (false);
  p->api->stream_destroy(st);
  p->api->buffer_free(arena);
  p->api->executable_destroy(exe);
  return r;
}

}  // namespace
