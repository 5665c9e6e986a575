#include "backends/cpu/kernel_cache.h"

#include <cstring>

namespace tessera::cpu {

namespace {

void PutBytes(std::string* k, const void* p, size_t n) { k->append(static_cast<const char*>(p), n); }
template <typename T>
void Add(std::string* k, T v) {
  PutBytes(k, &v, sizeof v);
}
void PutStr(std::string* k, const char* s, size_t n) {
  Add<uint64_t>(k, n);
  if (n) PutBytes(k, s, n);
}
void PutStr(std::string* k, const char* s) { PutStr(k, s ? s : "", s ? std::strlen(s) : 0); }

void PutValue(std::string* k, const tsr_graph_view& g, int32_t vi) {
  Add<int32_t>(k, vi < 0 ? -1 : 0);
  if (vi < 0 || static_cast<uint32_t>(vi) >= g.num_values) return;
  const tsr_value_view& v = g.values[vi];
  Add<int32_t>(k, v.dtype);
  Add<int32_t>(k, v.rank);
  for (int32_t d = 0; d < v.rank; ++d) Add<int64_t>(k, v.dims[d]);
  const bool is_const = (v.flags & TSR_VALUE_CONSTANT) != 0;
  Add<uint8_t>(k, is_const);
  if (is_const) {  // the same tensor, not equal bytes: kernels may keep the pointer
    Add<const void*>(k, v.const_data);
    Add<uint64_t>(k, v.const_bytes);
  }
}

}  // namespace

std::string KernelCache::Key(const tsr_node_view& n, const tsr_graph_view& g, int threads,
                             const std::string& precision) {
  std::string k;
  PutStr(&k, n.name);
  PutStr(&k, n.domain);
  PutStr(&k, n.op_type);
  Add<int64_t>(&k, n.opset);
  Add<int32_t>(&k, threads);
  PutStr(&k, precision.c_str(), precision.size());
  Add<uint32_t>(&k, n.num_inputs);
  for (uint32_t i = 0; i < n.num_inputs; ++i) PutValue(&k, g, n.inputs[i]);
  Add<uint32_t>(&k, n.num_outputs);
  for (uint32_t i = 0; i < n.num_outputs; ++i) PutValue(&k, g, n.outputs[i]);
  Add<uint32_t>(&k, n.num_attrs);
  for (uint32_t i = 0; i < n.num_attrs; ++i) {
    const tsr_attr_view& a = n.attrs[i];
    if (a.graph) return "";
    PutStr(&k, a.name);
    Add<int32_t>(&k, a.type);
    Add<int64_t>(&k, a.i);
    Add<float>(&k, a.f);
    PutStr(&k, a.s, a.s ? a.s_len : 0);
    Add<uint64_t>(&k, a.count);
    if (a.ints) PutBytes(&k, a.ints, a.count * sizeof(int64_t));
    if (a.floats) PutBytes(&k, a.floats, a.count * sizeof(float));
    if (a.strings)
      for (uint64_t j = 0; j < a.count; ++j) PutStr(&k, a.strings[j]);
    if (a.tensor) {
      Add<int32_t>(&k, a.tensor->dtype);
      Add<int32_t>(&k, a.tensor->rank);
      for (int32_t d = 0; a.tensor->dims && d < a.tensor->rank; ++d) Add<int64_t>(&k, a.tensor->dims[d]);
      if (a.tensor->data) PutStr(&k, static_cast<const char*>(a.tensor->data), a.tensor->nbytes);
    }
  }
  return k;
}

std::shared_ptr<const CachedKernel> KernelCache::Find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  auto k = it->second.lock();
  if (!k) {
    entries_.erase(it);
    return nullptr;
  }
  ++hits_;
  return k;
}

void KernelCache::Put(const std::string& key, const std::shared_ptr<const CachedKernel>& k) {
  std::lock_guard<std::mutex> lock(mu_);
  // Drop entries whose kernels are gone before the map grows.
  if (entries_.size() >= 1024)
    for (auto it = entries_.begin(); it != entries_.end();)
      it = it->second.expired() ? entries_.erase(it) : std::next(it);
  entries_[key] = k;
}

int64_t KernelCache::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

}  // namespace tessera::cpu
