#include "runtime/plan_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "graph/onnx/onnx_export.h"
#include "graph/onnx/onnx_import.h"

namespace tessera {
namespace {

using json = nlohmann::json;
constexpr uint64_t kHeaderSize = 128;
constexpr uint64_t kAlign = 64;
constexpr const char* kWeightsLocation = "@weights";

uint64_t AlignUp(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t header_size;
  uint64_t sec[3][3];  // metadata, graph, weights: offset, size, checksum
  uint64_t art[3];     // artifacts (optional): offset, size, checksum; zeros = none
  uint8_t reserved[kHeaderSize - 16 - 72 - 24];
};
static_assert(sizeof(Header) == kHeaderSize);

json PlanToJson(const Plan& p, const std::map<std::string, std::string>& options) {
  json j;
  j["format_version"] = kPlanFormatVersion;
  j["tessera_version"] = TESSERA_VERSION;
  j["options"] = options;
  j["imported_nodes"] = p.imported_nodes;
  for (const auto& d : p.devices)
    j["devices"].push_back({{"role", d.role}, {"backend", d.backend}, {"index", d.index},
                            {"arena_bytes", d.arena_bytes}, {"arena_lower_bound", d.arena_lower_bound}});
  j["buffers"] = json::array();
  for (const auto& b : p.buffers) {
    j["buffers"].push_back({{"value", b.value}, {"device", b.device}, {"kind", BufferKindName(b.kind)},
                            {"offset", b.offset}, {"bytes", b.bytes}});
    if (!b.layout.empty()) j["buffers"].back()["layout"] = b.layout;  // absent = plain
  }
  j["segments"] = json::array();
  for (const auto& s : p.segments) j["segments"].push_back({{"device", s.device}, {"nodes", s.nodes}});
  j["transfers"] = json::array();
  for (const auto& t : p.transfers)
    j["transfers"].push_back({{"value", t.value}, {"src", t.src_device}, {"dst", t.dst_device}});
  j["steps"] = json::array();
  for (const auto& s : p.steps)
    j["steps"].push_back({{"kind", s.kind == PlanStep::kSegment ? "segment" : "transfer"}, {"index", s.index}});
  j["passes"] = json::array();
  for (const auto& s : p.pass_stats)
    j["passes"].push_back({{"pass", s.pass}, {"nodes_before", s.nodes_before}, {"nodes_after", s.nodes_after},
                           {"changes", s.changes}, {"ms", s.millis}});
  return j;
}

Status PlanFromJson(const json& j, Plan* p, std::map<std::string, std::string>* options) {
  try {
    if (j.at("format_version").get<uint32_t>() != kPlanFormatVersion)
      return InvalidArgument("plan metadata has format version ", j.at("format_version").get<uint32_t>());
    *options = j.at("options").get<std::map<std::string, std::string>>();
    p->imported_nodes = j.value("imported_nodes", int64_t{0});
    for (const auto& d : j.at("devices"))
      p->devices.push_back({d.at("role").get<std::string>(), d.at("backend").get<std::string>(),
                            d.at("index").get<int32_t>(), d.at("arena_bytes").get<uint64_t>(),
                            d.at("arena_lower_bound").get<uint64_t>()});
    int32_t ndev = static_cast<int32_t>(p->devices.size());
    for (const auto& b : j.at("buffers")) {
      PlanBuffer pb;
      pb.value = b.at("value").get<std::string>();
      pb.device = b.at("device").get<int32_t>();
      if (!ParseBufferKind(b.at("kind").get<std::string>(), &pb.kind))
        return InvalidArgument("plan metadata: unknown buffer kind '", b.at("kind").get<std::string>(), "'");
      pb.offset = b.at("offset").get<uint64_t>();
      pb.bytes = b.at("bytes").get<uint64_t>();
      if (b.contains("layout")) pb.layout = b.at("layout").get<std::string>();
      if (pb.device < 0 || pb.device >= ndev) return InvalidArgument("plan metadata: buffer device out of range");
      if (pb.offset + pb.bytes > p->devices[pb.device].arena_bytes || pb.offset + pb.bytes < pb.offset)
        return InvalidArgument("plan metadata: buffer '", pb.value, "' lies outside its arena");
      p->buffers.push_back(pb);
    }
    for (const auto& s : j.at("segments")) {
      PlanSegment ps;
      ps.device = s.at("device").get<int32_t>();
      if (ps.device < 0 || ps.device >= ndev) return InvalidArgument("plan metadata: segment device out of range");
      ps.nodes = s.at("nodes").get<std::vector<std::string>>();
      p->segments.push_back(ps);
    }
    for (const auto& t : j.at("transfers")) {
      PlanTransfer pt{t.at("value").get<std::string>(), t.at("src").get<int32_t>(), t.at("dst").get<int32_t>()};
      if (pt.src_device < 0 || pt.src_device >= ndev || pt.dst_device < 0 || pt.dst_device >= ndev)
        return InvalidArgument("plan metadata: transfer device out of range");
      p->transfers.push_back(pt);
    }
    for (const auto& s : j.at("steps")) {
      PlanStep ps;
      ps.kind = s.at("kind").get<std::string>() == "segment" ? PlanStep::kSegment : PlanStep::kTransfer;
      ps.index = s.at("index").get<int32_t>();
      size_t lim = ps.kind == PlanStep::kSegment ? p->segments.size() : p->transfers.size();
      if (ps.index < 0 || static_cast<size_t>(ps.index) >= lim)
        return InvalidArgument("plan metadata: step index out of range");
      p->steps.push_back(ps);
    }
    for (const auto& s : j.at("passes"))
      p->pass_stats.push_back({s.at("pass").get<std::string>(), s.at("nodes_before").get<int64_t>(),
                               s.at("nodes_after").get<int64_t>(), s.at("changes").get<int64_t>(),
                               s.at("ms").get<double>()});
  } catch (const std::exception& e) {
    return InvalidArgument("plan metadata is malformed: ", e.what());
  }
  return Status::Ok();
}

// ---- artifacts section ----

std::string SerializeArtifacts(const std::vector<PlanArtifact>& arts) {
  json index = json::array();
  std::string blobs;
  for (const auto& a : arts) {
    blobs.resize(AlignUp(blobs.size()), '\0');
    index.push_back({{"segment", a.segment}, {"backend", a.backend}, {"backend_version", a.backend_version},
                     {"device_name", a.device_name}, {"segment_hash", a.segment_hash}, {"offset", blobs.size()},
                     {"bytes", a.blob.size()}, {"checksum", PlanChecksum(a.blob.data(), a.blob.size())}});
    blobs += a.blob;
  }
  std::string idx = index.dump();
  uint64_t len = idx.size();
  std::string out(reinterpret_cast<const char*>(&len), 8);
  out += idx;
  out.resize(AlignUp(out.size()), '\0');
  out += blobs;
  return out;
}

Status ParseArtifacts(const uint8_t* d, uint64_t n, const Plan& plan, std::vector<PlanArtifact>* out) {
  if (n < 8) return InvalidArgument("the artifacts section is truncated (", n, " bytes)");
  uint64_t len;
  std::memcpy(&len, d, 8);
  if (len > n - 8) return InvalidArgument("the artifacts index (", len, " bytes) overruns its section");
  const uint64_t blob_base = AlignUp(8 + len);
  try {
    json index = json::parse(d + 8, d + 8 + len);
    for (const auto& e : index) {
      PlanArtifact a;
      a.segment = e.at("segment").get<int32_t>();
      a.backend = e.at("backend").get<std::string>();
      a.backend_version = e.at("backend_version").get<std::string>();
      a.device_name = e.at("device_name").get<std::string>();
      a.segment_hash = e.at("segment_hash").get<uint64_t>();
      uint64_t off = e.at("offset").get<uint64_t>(), bytes = e.at("bytes").get<uint64_t>();
      if (a.segment < 0 || static_cast<size_t>(a.segment) >= plan.segments.size())
        return InvalidArgument("artifact for segment ", a.segment, " but the plan has ", plan.segments.size());
      if (blob_base > n || off > n - blob_base || bytes > n - blob_base - off)
        return InvalidArgument("artifact of segment ", a.segment, " (", a.backend, ") lies outside its section");
      const uint8_t* p = d + blob_base + off;
      if (PlanChecksum(p, bytes) != e.at("checksum").get<uint64_t>())
        return InvalidArgument("the plan file is corrupt: checksum mismatch in the artifact of segment ", a.segment,
                               " (", a.backend, ")");
      a.blob.assign(reinterpret_cast<const char*>(p), bytes);
      out->push_back(std::move(a));
    }
  } catch (const std::exception& ex) {
    return InvalidArgument("the artifacts index is malformed: ", ex.what());
  }
  return Status::Ok();
}

// A read-only mapping (or private copy) of a plan file, shared by borrowed tensors.
struct Mapping {
  const uint8_t* data = nullptr;
  size_t size = 0;
  bool mmapped = false;
  std::vector<uint8_t> copy;
  ~Mapping() {
    if (mmapped && data) munmap(const_cast<uint8_t*>(data), size);
  }
};

Result<LoadedPlan> ParsePlan(std::shared_ptr<Mapping> map, const std::string& what) {
  const uint8_t* d = map->data;
  size_t n = map->size;
  if (n < kHeaderSize || !LooksLikePlan(d, n)) {
    if (n >= 8 && std::memcmp(d, kPlanMagic, 7) == 0)
      return InvalidArgument(what, " is truncated (", n, " bytes, the header alone is ", kHeaderSize, ")");
    return InvalidArgument(what, " is not a Tessera plan (bad magic)");
  }
  Header h;
  std::memcpy(&h, d, sizeof(h));
  if (h.version != kPlanFormatVersion)
    return InvalidArgument(what, " has plan format version ", h.version, "; this Tessera reads version ",
                           kPlanFormatVersion, " (recompile the model with this version)");
  const char* names[3] = {"metadata", "graph", "weights"};
  for (int s = 0; s < 3; ++s) {
    uint64_t off = h.sec[s][0], sz = h.sec[s][1];
    if (off > n || sz > n - off)
      return InvalidArgument(what, " is truncated or corrupt: the ", names[s], " section [", off, ", +", sz,
                             ") lies outside the file (", n, " bytes)");
    if (PlanChecksum(d + off, sz) != h.sec[s][2])
      return InvalidArgument(what, " is corrupt: checksum mismatch in the ", names[s], " section");
  }
  json meta;
  try {
    meta = json::parse(d + h.sec[0][0], d + h.sec[0][0] + h.sec[0][1]);
  } catch (const std::exception& e) {
    return InvalidArgument(what, ": plan metadata is not valid JSON: ", e.what());
  }
  LoadedPlan lp;
  TSR_RETURN_IF_ERROR(PlanFromJson(meta, &lp.plan, &lp.options).WithContext(what));

  const uint8_t* weights = d + h.sec[2][0];
  uint64_t wsize = h.sec[2][1];
  ImportOptions io;
  io.external_resolver = [map, weights, wsize](const std::string& location, int64_t offset, int64_t length,
                                               DType dtype, const std::vector<int64_t>& dims) -> Result<Tensor> {
    if (location != kWeightsLocation) return InvalidArgument("plan graph references external file '", location, "'");
    if (offset < 0 || length < 0 || static_cast<uint64_t>(offset) > wsize ||
        static_cast<uint64_t>(length) > wsize - static_cast<uint64_t>(offset))
      return InvalidArgument("plan weight [", offset, ", +", length, ") lies outside the weights section");
    TSR_ASSIGN_OR_RETURN(int64_t need, CheckedByteSize(dims, dtype));
    if (need != length) return InvalidArgument("plan weight has ", length, " bytes, its shape needs ", need);
    return Tensor::Borrow(dtype, dims, weights + offset, static_cast<size_t>(length), map);
  };
  auto g = ImportOnnxBytes(d + h.sec[1][0], h.sec[1][1], "", io);
  if (!g.ok()) return g.status().WithContext(what + ": plan graph");
  lp.plan.graph = std::move(g).value();
  if (h.art[1] != 0 || h.art[0] != 0) {
    uint64_t off = h.art[0], sz = h.art[1];
    if (off > n || sz > n - off)
      return InvalidArgument(what, " is truncated or corrupt: the artifacts section [", off, ", +", sz,
                             ") lies outside the file (", n, " bytes)");
    if (PlanChecksum(d + off, sz) != h.art[2])
      return InvalidArgument(what, " is corrupt: checksum mismatch in the artifacts section");
    TSR_RETURN_IF_ERROR(ParseArtifacts(d + off, sz, lp.plan, &lp.artifacts).WithContext(what));
  }
  return lp;
}

}  // namespace

bool LooksLikePlan(const void* data, size_t size) {
  return size >= 8 && std::memcmp(data, kPlanMagic, 8) == 0;
}

uint64_t PlanChecksum(const void* data, size_t size) {
  // FNV-1a over 8-byte words, then the tail; fast enough for weights.
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t h = 1469598103934665603ull;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 1099511628211ull;
    h ^= h >> 29;
  }
  for (; i < size; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h ^ size;
}

uint64_t SegmentHash(const Plan& plan, int32_t segment) {
  if (!plan.graph || segment < 0 || static_cast<size_t>(segment) >= plan.segments.size()) return 0;
  std::string s;
  auto value = [&s](const Value* v) {
    if (!v) {
      s += "-;";
      return;
    }
    s += v->name() + ":" + v->type().ToString() + (v->is_constant() ? "c;" : ";");
  };
  for (const std::string& name : plan.segments[segment].nodes) {
    const Node* n = plan.graph->FindNode(name);
    s += name + "|";
    if (!n) continue;
    s += n->QualifiedOp() + "(";
    for (const Value* v : n->inputs()) value(v);
    s += ")->(";
    for (const Value* v : n->outputs()) value(v);
    s += ")";
    for (const auto& [k, a] : n->attrs()) s += k + ",";
    s += "\n";
  }
  return PlanChecksum(s.data(), s.size());
}

Status SavePlanFile(const Plan& plan, const std::map<std::string, std::string>& options, const std::string& path,
                    const std::vector<PlanArtifact>* artifacts) {
  if (!plan.graph) return Internal("plan has no graph");
  std::string weights;
  ExportOptions eo;
  eo.constant_sink = [&weights](const Value& v, const Tensor& t, std::string* location, int64_t* offset,
                                int64_t* length) -> Status {
    if (t.dtype() == DType::kString) return Unsupported("constant '", v.name(), "' is a string tensor");
    weights.resize(AlignUp(weights.size()), '\0');
    *location = kWeightsLocation;
    *offset = static_cast<int64_t>(weights.size());
    *length = static_cast<int64_t>(t.nbytes());
    weights.append(static_cast<const char*>(t.raw()), t.nbytes());
    return Status::Ok();
  };
  TSR_ASSIGN_OR_RETURN(std::string graph_bytes, ExportOnnx(*plan.graph, eo));
  std::string meta = PlanToJson(plan, options).dump();

  Header h{};
  std::memcpy(h.magic, kPlanMagic, 8);
  h.version = kPlanFormatVersion;
  h.header_size = kHeaderSize;
  const std::string* secs[3] = {&meta, &graph_bytes, &weights};
  uint64_t off = kHeaderSize;
  for (int s = 0; s < 3; ++s) {
    off = AlignUp(off);
    h.sec[s][0] = off;
    h.sec[s][1] = secs[s]->size();
    h.sec[s][2] = PlanChecksum(secs[s]->data(), secs[s]->size());
    off += secs[s]->size();
  }
  std::string arts;
  if (artifacts && !artifacts->empty()) {
    arts = SerializeArtifacts(*artifacts);
    off = AlignUp(off);
    h.art[0] = off;
    h.art[1] = arts.size();
    h.art[2] = PlanChecksum(arts.data(), arts.size());
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return IoError("cannot open '", path, "' for writing");
  f.write(reinterpret_cast<const char*>(&h), sizeof(h));
  uint64_t pos = kHeaderSize;
  for (int s = 0; s < 3; ++s) {
    std::string pad(h.sec[s][0] - pos, '\0');
    f.write(pad.data(), static_cast<std::streamsize>(pad.size()));
    f.write(secs[s]->data(), static_cast<std::streamsize>(secs[s]->size()));
    pos = h.sec[s][0] + secs[s]->size();
  }
  if (!arts.empty()) {
    std::string pad(h.art[0] - pos, '\0');
    f.write(pad.data(), static_cast<std::streamsize>(pad.size()));
    f.write(arts.data(), static_cast<std::streamsize>(arts.size()));
  }
  f.close();
  if (!f) return IoError("failed writing '", path, "'");
  return Status::Ok();
}

Result<LoadedPlan> LoadPlanFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open plan file '", path, "': ", std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("'", path, "' is not a regular file");
  }
  auto map = std::make_shared<Mapping>();
  map->size = static_cast<size_t>(st.st_size);
  if (map->size > 0) {
    void* p = mmap(nullptr, map->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return IoError("cannot map plan file '", path, "': ", std::strerror(errno));
    }
    map->data = static_cast<const uint8_t*>(p);
    map->mmapped = true;
  }
  ::close(fd);
  return ParsePlan(map, StrCat("plan file '", path, "'"));
}

Result<LoadedPlan> LoadPlanBytes(const void* data, size_t size) {
  auto map = std::make_shared<Mapping>();
  // Copy into 64-byte aligned storage so weights stay aligned.
  map->copy.resize(size + kAlign);
  uint8_t* base = map->copy.data();
  uint8_t* aligned = reinterpret_cast<uint8_t*>(AlignUp(reinterpret_cast<uintptr_t>(base)));
  if (size) std::memcpy(aligned, data, size);
  map->data = aligned;
  map->size = size;
  return ParsePlan(map, "plan bytes");
}

}  // namespace tessera
