#include "backends/cpu/cpu_artifact.h"

#include <cstring>

namespace tessera::cpu {
namespace {

constexpr char kMagic[8] = {'T', 'S', 'R', 'C', 'P', 'U', 'A', '1'};

thread_local const std::string* t_prepared = nullptr;

uint64_t Fnv(const void* data, size_t n, uint64_t h = 1469598103934665603ull) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// The artifact's checksum: FNV-style over 8-byte words (blobs hold packed
// weights, hundreds of MB), then the tail bytes and the length.
uint64_t Checksum(const char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 1099511628211ull;
    h ^= h >> 29;
  }
  for (; i < n; ++i) h = (h ^ static_cast<uint8_t>(p[i])) * 1099511628211ull;
  return h ^ n;
}

template <typename T>
void Put(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <typename T>
uint64_t Mix(uint64_t h, T v) {
  return Fnv(&v, sizeof(T), h);
}

uint64_t MixStr(uint64_t h, const char* s) { return s ? Fnv(s, std::strlen(s) + 1, h) : Mix<uint8_t>(h, 0); }

uint64_t MixValue(uint64_t h, const tsr_graph_view& g, int32_t vi) {
  h = Mix<int32_t>(h, vi < 0 ? -1 : 0);
  if (vi < 0 || static_cast<uint32_t>(vi) >= g.num_values) return h;
  const tsr_value_view& v = g.values[vi];
  h = Mix<int32_t>(h, v.dtype);
  h = Mix<int32_t>(h, v.rank);
  for (int32_t d = 0; d < v.rank && v.dims; ++d) h = Mix<int64_t>(h, v.dims[d]);
  const bool is_const = (v.flags & TSR_VALUE_CONSTANT) != 0;
  h = Mix<uint8_t>(h, is_const);
  if (is_const) h = Mix<uint64_t>(h, v.const_bytes);
  return h;
}

}  // namespace

const std::string* PreparedBlob() { return t_prepared; }

ScopedPreparedBlob::ScopedPreparedBlob(const std::string* blob) : prev_(t_prepared) { t_prepared = blob; }
ScopedPreparedBlob::~ScopedPreparedBlob() { t_prepared = prev_; }

uint64_t NodeSignature(const tsr_node_view& n, const tsr_graph_view& g) {
  uint64_t h = 1469598103934665603ull;
  h = MixStr(h, n.name);
  h = MixStr(h, n.domain);
  h = MixStr(h, n.op_type);
  h = Mix<int64_t>(h, n.opset);
  h = Mix<uint32_t>(h, n.num_inputs);
  for (uint32_t i = 0; i < n.num_inputs; ++i) h = MixValue(h, g, n.inputs[i]);
  h = Mix<uint32_t>(h, n.num_outputs);
  for (uint32_t i = 0; i < n.num_outputs; ++i) h = MixValue(h, g, n.outputs[i]);
  h = Mix<uint32_t>(h, n.num_attrs);
  for (uint32_t i = 0; i < n.num_attrs; ++i) {
    const tsr_attr_view& a = n.attrs[i];
    h = MixStr(h, a.name);
    h = Mix<int32_t>(h, a.type);
    h = Mix<int64_t>(h, a.i);
    h = Mix<float>(h, a.f);
    if (a.s) h = Fnv(a.s, a.s_len, h);
    h = Mix<uint64_t>(h, a.count);
    if (a.ints) h = Fnv(a.ints, a.count * sizeof(int64_t), h);
    if (a.floats) h = Fnv(a.floats, a.count * sizeof(float), h);
  }
  return h;
}

std::string EncodeArtifact(const std::vector<ArtifactEntry>& entries) {
  std::string s(kMagic, 8);
  Put<uint32_t>(&s, static_cast<uint32_t>(entries.size()));
  for (const auto& e : entries) {
    Put<uint32_t>(&s, static_cast<uint32_t>(e.node.size()));
    s += e.node;
    Put<uint64_t>(&s, e.signature);
    Put<uint64_t>(&s, e.prepared.size());
    s += e.prepared;
  }
  Put<uint64_t>(&s, Checksum(s.data(), s.size()));
  return s;
}

Err DecodeArtifact(const void* data, uint64_t bytes, std::vector<ArtifactEntry>* out) {
  out->clear();
  const char* p = static_cast<const char*>(data);
  if (!p || bytes < 8 || std::memcmp(p, kMagic, 8) != 0)
    return MakeErr(TSR_ERR_FAILED_PRECONDITION, "cpu backend: the artifact is not a CPU artifact of format %.8s",
                   kMagic);
  if (bytes < 8 + 4 + 8) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: the artifact is truncated");
  uint64_t sum;
  std::memcpy(&sum, p + bytes - 8, 8);
  if (Checksum(p, bytes - 8) != sum)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: the artifact is corrupt (checksum mismatch)");
  const uint64_t end = bytes - 8;
  uint64_t pos = 8;
  auto take = [&](void* dst, uint64_t n) {
    if (n > end - pos) return false;
    std::memcpy(dst, p + pos, n);
    pos += n;
    return true;
  };
  uint32_t count = 0;
  if (!take(&count, 4)) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: the artifact is truncated");
  for (uint32_t i = 0; i < count; ++i) {
    ArtifactEntry e;
    uint32_t name_len = 0;
    uint64_t blob_len = 0;
    if (!take(&name_len, 4) || name_len > end - pos)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: the artifact is truncated (entry %u)", i);
    e.node.assign(p + pos, name_len);
    pos += name_len;
    if (!take(&e.signature, 8) || !take(&blob_len, 8) || blob_len > end - pos)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: the artifact is truncated (entry %u)", i);
    e.prepared.assign(p + pos, blob_len);
    pos += blob_len;
    out->push_back(std::move(e));
  }
  if (pos != end) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: the artifact has trailing bytes");
  return Err::Ok();
}

Err MatchArtifact(const std::vector<ArtifactEntry>& entries, const tsr_graph_view& seg) {
  if (entries.size() != seg.num_nodes)
    return MakeErr(TSR_ERR_FAILED_PRECONDITION, "cpu backend: the artifact has %zu nodes, the segment %u",
                   entries.size(), seg.num_nodes);
  for (uint32_t i = 0; i < seg.num_nodes; ++i) {
    const tsr_node_view& n = seg.nodes[i];
    if (entries[i].node != (n.name ? n.name : "") || entries[i].signature != NodeSignature(n, seg))
      return MakeErr(TSR_ERR_FAILED_PRECONDITION, "cpu backend: the artifact's node %u ('%s') differs from the "
                     "segment's ('%s': op, types, shapes or attributes changed)",
                     i, entries[i].node.c_str(), n.name ? n.name : "");
  }
  return Err::Ok();
}

}  // namespace tessera::cpu
