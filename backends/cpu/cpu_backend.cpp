// The CPU backend plugin: tsr_backend_api over the kernels in kernels_*.cpp.
//
// One device (the host). Buffers are 64-byte aligned host memory; copies are
// memcpy; streams are synchronous (execute runs on the calling thread and
// returns when done, so stream_synchronize is a no-op); events are always
// complete. An executable is the segment's kernels in the view's topological
// order; it is immutable after compile, so execute may run concurrently from
// several threads (kernels keep per-call state in locals / thread_local scratch).
//
// Threading: OpenMP (shared with oneDNN). The thread count is the "threads"
// option of init (default: physical cores) or of compile (per executable);
// execute sets it on the calling thread for the duration of the call, the same
// value that was in effect when the kernels were created (oneDNN sizes some
// scratchpads by thread count at creation).
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "backends/common/plugin_util.h"
#include "backends/cpu/cpu_artifact.h"  // precision: artifacts
#include "backends/cpu/kernel.h"
#include "backends/cpu/kernel_cache.h"
#include "backends/cpu/layouts.h"
#include "tessera/backend.h"

struct tsr_backend_t {
  int threads = 1;
};
struct tsr_device_t {
  tsr_backend_t* backend = nullptr;
  tessera::cpu::KernelCache kernels;  // shared by this device's executables
};
struct tsr_buffer_t {
  uint8_t* ptr = nullptr;
  uint64_t bytes = 0;
};
struct tsr_stream_t {
  tsr_device_t* device = nullptr;
};
struct tsr_event_t {
  tsr_device_t* device = nullptr;
  // Host steady clock (us) when last recorded: streams are synchronous, so
  // the work before the event is complete at record time.
  double recorded_us = -1;
};

namespace tessera::cpu {
namespace {

using plugin::Report;
using plugin::NodeLabel;
using plugin::NumelOf;
using plugin::FindOption;

// ---- host facts ----------------------------------------------------------------------

std::string ReadFirstLine(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// Value of the first "key : value" line of /proc/cpuinfo with this key.
std::string CpuInfoField(const char* key) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  size_t klen = std::strlen(key);
  while (std::getline(f, line)) {
    if (line.compare(0, klen, key) != 0) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t b = line.find_first_not_of(" \t", colon + 1);
    return b == std::string::npos ? "" : line.substr(b);
  }
  return "";
}

// Hardware threads per core, from the sibling list of cpu0 ("0,64" or "0-1").
int ThreadsPerCore() {
  std::string s = ReadFirstLine("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list");
  if (s.empty()) return 1;
  int count = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t comma = s.find(',', pos);
    std::string part = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t dash = part.find('-');
    if (dash == std::string::npos) {
      ++count;
    } else {
      int a = std::atoi(part.c_str()), b = std::atoi(part.c_str() + dash + 1);
      count += std::max(1, b - a + 1);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return std::max(1, count);
}

// Physical cores this process may use (affinity mask / threads per core).
int PhysicalCores() {
  int logical = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) logical = CPU_COUNT(&set);
  if (logical <= 0) logical = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (logical <= 0) logical = static_cast<int>(std::thread::hardware_concurrency());
  if (logical <= 0) return 1;
  return std::max(1, logical / ThreadsPerCore());
}

double CpuGhz() {
  std::string khz = ReadFirstLine("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
  if (!khz.empty() && std::atof(khz.c_str()) > 0) return std::atof(khz.c_str()) / 1e6;
  std::string mhz = CpuInfoField("cpu MHz");
  if (!mhz.empty() && std::atof(mhz.c_str()) > 0) return std::atof(mhz.c_str()) / 1e3;
  return 2.0;
}

double PeakGflops(int cores) {
  // f32 FLOPs per cycle per core (rough: one FMA port's worth).
  double per_cycle = __builtin_cpu_supports("avx512f") ? 32 : __builtin_cpu_supports("avx2") ? 16 : 8;
  return cores * CpuGhz() * per_cycle;
}

double MemoryGbps(int cores) { return std::clamp(8.0 * cores, 10.0, 300.0); }

// ---- options ---------------------------------------------------------------------------

// "threads": a positive integer; *out unchanged when absent.
Err ParseThreads(const tsr_compile_options* o, int* out) {
  const char* v = FindOption(o, "threads");
  if (!v) return Err::Ok();
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || n < 1 || n > 4096)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: option threads='%s' is not a positive integer", v);
  *out = static_cast<int>(n);
  return Err::Ok();
}

// Sets the calling thread's OpenMP thread count for a scope.
class ScopedThreads {
 public:
  explicit ScopedThreads(int n) : saved_(omp_get_max_threads()) {
    if (n > 0 && n != saved_) omp_set_num_threads(n);
  }
  ~ScopedThreads() {
    if (omp_get_max_threads() != saved_) omp_set_num_threads(saved_);
  }

 private:
  int saved_;
};

// ---- executables --------------------------------------------------------------------------

// One node of an executable: its value indices there, and its kernel, which
// may be shared with other executables of the device (kernel_cache.h).
struct Step {
  std::vector<int32_t> inputs, outputs;
  std::shared_ptr<const CachedKernel> kernel;
};

}  // namespace
}  // namespace tessera::cpu

struct tsr_executable_t {
  int threads = 1;
  std::vector<tessera::cpu::TensorArg> values;  // one per value of the view; never resized after compile
  std::vector<std::string> value_names;
  std::vector<uint8_t> value_used;               // read or written by some kernel
  std::vector<tessera::cpu::Step> steps;
  // precision: artifacts. Per node (segment order): name and signature
  // (cpu_artifact.h); `artifact` owns executable_serialize's bytes.
  std::vector<std::pair<std::string, uint64_t>> node_signatures;
  std::string artifact;
};

namespace tessera::cpu {
namespace {

// Rough run time of a node on this device, from FLOPs and bytes moved.
double EstimateUs(const tsr_node_view& n, const tsr_graph_view& g, double gflops, double gbps) {
  auto val = [&](uint32_t list_i, bool input) -> const tsr_value_view* {
    uint32_t count = input ? n.num_inputs : n.num_outputs;
    if (list_i >= count) return nullptr;
    int32_t vi = input ? n.inputs[list_i] : n.outputs[list_i];
    return vi >= 0 && static_cast<uint32_t>(vi) < g.num_values ? &g.values[vi] : nullptr;
  };
  double bytes = 0;
  for (uint32_t i = 0; i < n.num_inputs + n.num_outputs; ++i) {
    const tsr_value_view* v = i < n.num_inputs ? val(i, true) : val(i - n.num_inputs, false);
    if (!v) continue;
    int64_t e = NumelOf(*v);
    if (e < 0) return 0;
    bytes += static_cast<double>(e) * static_cast<double>(plugin::DTypeSize(v->dtype));
  }
  const tsr_value_view* y = val(0, false);
  double flops = y && NumelOf(*y) > 0 ? static_cast<double>(NumelOf(*y)) : 0;
  std::string op = n.op_type ? n.op_type : "";
  const tsr_value_view* a = val(0, true);
  const tsr_value_view* w = val(1, true);
  if (op == "Conv" && w && w->rank >= 2 && NumelOf(*w) > 0 && w->dims[0] > 0) {
    flops *= 2.0 * static_cast<double>(NumelOf(*w) / w->dims[0]);
  } else if ((op == "MatMul" || op == "Gemm") && a && a->rank >= 1 && a->dims[a->rank - 1] > 0) {
    int64_t k = a->dims[a->rank - 1];
    if (op == "Gemm" && plugin::NodeAttrs(n).Int("transA", 0) && a->rank == 2) k = a->dims[0];
    flops *= 2.0 * static_cast<double>(k);
  }
  double t_compute = gflops > 0 ? flops / (gflops * 1e3) : 0;
  double t_memory = gbps > 0 ? bytes / (gbps * 1e3) : 0;
  return std::max(t_compute, t_memory) + 1.0;  // + launch/dispatch overhead
}

// ---- ABI functions ----------------------------------------------------------------------

#define TSR_GUARD_BEGIN TSR_PLUGIN_GUARD_BEGIN
#define TSR_GUARD_END(err) TSR_PLUGIN_GUARD_END(err, "cpu backend", "out of memory")

int32_t Init(const tsr_compile_options* options, tsr_backend_t** out_backend, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!out_backend) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: init: out_backend is NULL"), err);
  int threads = PhysicalCores();
  Err e = ParseThreads(options, &threads);
  if (!e.ok()) return Report(e, err);
  auto b = std::make_unique<tsr_backend_t>();
  b->threads = threads;
  omp_set_num_threads(threads);
  (void)KernelRegistry::Get();  // build the registry now, not in a concurrent call
  *out_backend = b.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void Shutdown(tsr_backend_t* backend) { delete backend; }

int32_t DeviceCount(tsr_backend_t* backend, int32_t* out_count, tsr_error* err) {
  if (!out_count) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: out_count is NULL"), err);
  *out_count = 1;
  return TSR_OK;
}

int32_t DeviceProps(tsr_backend_t* backend, int32_t index, tsr_device_props* out, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (index != 0)
    return Report(MakeErr(TSR_ERR_OUT_OF_RANGE, "cpu backend: device index %d out of range (1 device)", index), err);
  if (!out) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: out_props is NULL"), err);
  std::memset(out, 0, sizeof(*out));
  out->struct_size = sizeof(*out);
  std::string name = CpuInfoField("model name");
  if (name.empty()) name = "host CPU";
  std::snprintf(out->name, sizeof(out->name), "%s", name.c_str());
  std::snprintf(out->kind, sizeof(out->kind), "cpu");
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  out->memory_bytes = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
  int cores = PhysicalCores();
  out->compute_units = cores;
  out->flags = TSR_DEVICE_HOST_VISIBLE;
  out->peak_gflops_f32 = PeakGflops(cores);
  out->memory_gbps = MemoryGbps(cores);
  return TSR_OK;
  TSR_GUARD_END(err)
}

int32_t DeviceOpen(tsr_backend_t* backend, int32_t index, tsr_device_t** out_device, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (index != 0)
    return Report(MakeErr(TSR_ERR_OUT_OF_RANGE, "cpu backend: device index %d out of range (1 device)", index), err);
  if (!out_device) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: out_device is NULL"), err);
  auto d = std::make_unique<tsr_device_t>();
  d->backend = backend;
  *out_device = d.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void DeviceClose(tsr_device_t* device) { delete device; }

int32_t Claim(tsr_device_t* device, const tsr_graph_view* graph, tsr_claim* out_claims, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!graph || (!out_claims && graph->num_nodes))
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: claim: graph or out_claims is NULL"), err);
  int cores = device && device->backend ? device->backend->threads : PhysicalCores();
  double gflops = PeakGflops(cores), gbps = MemoryGbps(cores);
  const KernelRegistry& reg = KernelRegistry::Get();
  for (uint32_t i = 0; i < graph->num_nodes; ++i) {
    const tsr_node_view& n = graph->nodes[i];
    tsr_claim& c = out_claims[i];
    std::memset(&c, 0, sizeof(c));
    const KernelEntry* e = reg.Find(n.domain, n.op_type ? n.op_type : "");
    std::string reason;
    if (!e) {
      std::string dom = n.domain && *n.domain ? std::string(n.domain) + "." : "";
      reason = "no CPU kernel for op " + dom + (n.op_type ? n.op_type : "?");
    } else if (e->claim) {
      reason = e->claim(n, *graph);
    }
    c.supported = reason.empty() ? 1 : 0;
    if (c.supported) c.est_time_us = EstimateUs(n, *graph, gflops, gbps);
    std::snprintf(c.reason, sizeof(c.reason), "%s", reason.c_str());
  }
  return TSR_OK;
  TSR_GUARD_END(err)
}

// `prepared`: entries of an artifact already matched to `seg` (compile_cached), else null.
int32_t CompileWith(tsr_device_t* device, const tsr_graph_view* seg, const tsr_compile_options* options,
                    const std::vector<ArtifactEntry>* prepared, tsr_executable_t** out_executable, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!seg || !out_executable)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: compile: segment or out_executable is NULL"), err);
  auto exe = std::make_unique<tsr_executable_t>();
  exe->threads = device && device->backend ? device->backend->threads : PhysicalCores();
  Err e = ParseThreads(options, &exe->threads);
  if (!e.ok()) return Report(e, err);
  std::string precision = "f32";
  if (const char* p = FindOption(options, "precision")) {
    precision = p;
    if (precision != "f32" && precision != "bf16")
      return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: option precision='%s' (expected f32 or bf16)", p),
                    err);
  }

  // Values: static shapes required; constants carry their data.
  exe->value_used.assign(seg->num_values, 0);
  e = plugin::ReadSegmentValues(*seg, "cpu backend", &exe->values, &exe->value_names);
  if (!e.ok()) return Report(e, err);

  // Kernels, created with the thread count they will run with.
  ScopedThreads scoped(exe->threads);
  const KernelRegistry& reg = KernelRegistry::Get();
  std::vector<std::string> errors;
  int32_t first_code = TSR_OK;
  exe->steps.reserve(seg->num_nodes);
  KernelCache* cache = device ? &device->kernels : nullptr;
  for (uint32_t ni = 0; ni < seg->num_nodes; ++ni) {
    const tsr_node_view& n = seg->nodes[ni];
    exe->node_signatures.push_back({n.name ? n.name : "", NodeSignature(n, *seg)});
    Step step;
    bool bad_index = false;
    for (uint32_t k = 0; k < n.num_inputs + n.num_outputs; ++k) {
      int32_t vi = k < n.num_inputs ? n.inputs[k] : n.outputs[k - n.num_inputs];
      if (vi >= static_cast<int32_t>(seg->num_values)) bad_index = true;
      (k < n.num_inputs ? step.inputs : step.outputs).push_back(vi);
    }
    if (bad_index) {
      errors.push_back(NodeLabel(n) + ": refers to a value index outside the segment");
      continue;
    }
    const std::string key = cache ? KernelCache::Key(n, *seg, exe->threads, precision) : "";
    if (!key.empty()) step.kernel = cache->Find(key);
    if (!step.kernel) {
      auto ck = std::make_shared<CachedKernel>();
      ck->node.CopyFrom(n);
      const tsr_node_view& nv = ck->node.view;
      ck->values.reserve(step.inputs.size() + step.outputs.size());  // never reallocated: args point into it
      for (int32_t vi : step.inputs) ck->values.push_back(vi >= 0 ? exe->values[vi] : TensorArg{});
      for (int32_t vi : step.outputs) ck->values.push_back(vi >= 0 ? exe->values[vi] : TensorArg{});
      for (size_t k = 0; k < ck->values.size(); ++k) {
        int32_t vi = k < step.inputs.size() ? step.inputs[k] : step.outputs[k - step.inputs.size()];
        (k < step.inputs.size() ? ck->args.inputs : ck->args.outputs).push_back(vi >= 0 ? &ck->values[k] : nullptr);
      }
      ck->args.node = &nv;
      ck->args.threads = exe->threads;
      ck->args.precision = precision;
      const KernelEntry* entry = reg.Find(nv.domain, nv.op_type);
      if (!entry) {
        errors.push_back(NodeLabel(nv) + ": no CPU kernel for op " + nv.op_type);
        continue;
      }
      ScopedPreparedBlob prepared_blob(prepared ? &(*prepared)[ni].prepared : nullptr);
      Err ke = entry->create(ck->args, &ck->kernel);
      if (!ke.ok()) {
        if (first_code == TSR_OK) first_code = ke.code;
        errors.push_back(ke.message.empty() ? NodeLabel(nv) + ": kernel creation failed" : ke.message);
        continue;
      }
      if (!ck->kernel) {
        errors.push_back(NodeLabel(nv) + ": kernel factory returned no kernel");
        continue;
      }
      if (!key.empty()) cache->Put(key, ck);
      step.kernel = std::move(ck);
    }
    for (int32_t vi : step.inputs)
      if (vi >= 0) exe->value_used[vi] = 1;
    for (int32_t vi : step.outputs)
      if (vi >= 0) exe->value_used[vi] = 1;
    exe->steps.push_back(std::move(step));
  }
  if (!errors.empty()) {
    // The first kernel's code (e.g. INVALID_ARGUMENT for a bad shape), else UNSUPPORTED.
    int32_t code = first_code != TSR_OK ? first_code : TSR_ERR_UNSUPPORTED;
    return Report(MakeErr(code, "%s", plugin::JoinErrors("cpu backend", errors, seg->num_nodes).c_str()), err);
  }
  *out_executable = exe.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

int32_t Compile(tsr_device_t* device, const tsr_graph_view* seg, const tsr_compile_options* options,
                tsr_executable_t** out_executable, tsr_error* err) {
  return CompileWith(device, seg, options, nullptr, out_executable, err);
}

// ---- precision: compiled artifacts (cpu_artifact.h) ----
int32_t ExecutableSerialize(tsr_executable_t* exe, const void** out_data, uint64_t* out_bytes, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!exe || !out_data || !out_bytes)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: executable_serialize: NULL argument"), err);
  std::vector<ArtifactEntry> entries;
  for (size_t i = 0; i < exe->node_signatures.size(); ++i) {
    ArtifactEntry e{exe->node_signatures[i].first, exe->node_signatures[i].second, {}};
    if (i < exe->steps.size() && exe->steps[i].kernel)
      if (auto* pc = dynamic_cast<const PreparedConstants*>(exe->steps[i].kernel->kernel.get()))
        e.prepared = pc->ExportPrepared();
    entries.push_back(std::move(e));
  }
  exe->artifact = EncodeArtifact(entries);
  *out_data = exe->artifact.data();
  *out_bytes = exe->artifact.size();
  return TSR_OK;
  TSR_GUARD_END(err)
}

int32_t CompileCached(tsr_device_t* device, const tsr_graph_view* seg, const tsr_compile_options* options,
                      const void* artifact, uint64_t artifact_bytes, tsr_executable_t** out_executable,
                      tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!seg) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: compile_cached: segment is NULL"), err);
  std::vector<ArtifactEntry> entries;
  Err e = DecodeArtifact(artifact, artifact_bytes, &entries);
  if (e.ok()) e = MatchArtifact(entries, *seg);
  if (!e.ok()) return Report(e, err);
  return CompileWith(device, seg, options, &entries, out_executable, err);
  TSR_GUARD_END(err)
}
// ---- end precision ----

void ExecutableDestroy(tsr_executable_t* exe) { delete exe; }

int32_t ExecutableScratchBytes(tsr_executable_t* exe, uint64_t* out_bytes, tsr_error* err) {
  if (!out_bytes) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: out_bytes is NULL"), err);
  *out_bytes = 0;  // kernels use per-thread host scratch
  return TSR_OK;
}

int32_t Execute(tsr_executable_t* exe, tsr_stream_t* stream, const tsr_binding* bindings, uint32_t num_bindings,
                tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!exe) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: execute: executable is NULL"), err);
  const size_t nv = exe->values.size();
  if (num_bindings < nv || (nv && !bindings))
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: execute: %u bindings for %zu values", num_bindings,
                          nv),
                  err);
  std::vector<void*> ptrs(nv, nullptr);
  for (size_t i = 0; i < nv; ++i) {
    const TensorArg& t = exe->values[i];
    if (t.const_data) {
      ptrs[i] = const_cast<void*>(t.const_data);
      continue;
    }
    const tsr_binding& b = bindings[i];
    if (!b.buffer) {
      if (!exe->value_used[i]) continue;
      return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: execute: value '%s' has no buffer bound",
                            exe->value_names[i].c_str()),
                    err);
    }
    uint64_t need = static_cast<uint64_t>(t.nbytes());
    if (b.offset > b.buffer->bytes || need > b.buffer->bytes - b.offset)
      return Report(MakeErr(TSR_ERR_OUT_OF_RANGE,
                            "cpu backend: execute: value '%s' (%llu bytes at offset %llu) does not fit its buffer of "
                            "%llu bytes",
                            exe->value_names[i].c_str(), static_cast<unsigned long long>(need),
                            static_cast<unsigned long long>(b.offset),
                            static_cast<unsigned long long>(b.buffer->bytes)),
                    err);
    ptrs[i] = b.buffer->ptr + b.offset;
  }
  ScopedThreads scoped(exe->threads);
  std::vector<const void*> in;
  std::vector<void*> out;
  for (const Step& s : exe->steps) {
    in.clear();
    out.clear();
    for (int32_t vi : s.inputs) in.push_back(vi >= 0 ? ptrs[vi] : nullptr);
    for (int32_t vi : s.outputs) out.push_back(vi >= 0 ? ptrs[vi] : nullptr);
    Err e = s.kernel->kernel->Run(in.data(), out.data());
    if (!e.ok()) return Report(e, err);
  }
  return TSR_OK;
  TSR_GUARD_END(err)
}

int32_t BufferAlloc(tsr_device_t* device, uint64_t bytes, uint64_t alignment, tsr_buffer_t** out_buffer,
                    tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!out_buffer) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: out_buffer is NULL"), err);
  if (alignment & (alignment - 1))
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: buffer alignment %llu is not a power of two",
                          static_cast<unsigned long long>(alignment)),
                  err);
  uint64_t align = std::max<uint64_t>(64, alignment);
  uint64_t size = (std::max<uint64_t>(bytes, 1) + align - 1) / align * align;
  if (size < bytes)
    return Report(MakeErr(TSR_ERR_OUT_OF_MEMORY, "cpu backend: cannot allocate %llu bytes",
                          static_cast<unsigned long long>(bytes)),
                  err);
  void* p = std::aligned_alloc(static_cast<size_t>(align), static_cast<size_t>(size));
  if (!p)
    return Report(MakeErr(TSR_ERR_OUT_OF_MEMORY, "cpu backend: cannot allocate %llu bytes of host memory",
                          static_cast<unsigned long long>(bytes)),
                  err);
  auto b = new (std::nothrow) tsr_buffer_t;
  if (!b) {
    std::free(p);
    return Report(MakeErr(TSR_ERR_OUT_OF_MEMORY, "cpu backend: out of memory"), err);
  }
  b->ptr = static_cast<uint8_t*>(p);
  b->bytes = bytes;
  *out_buffer = b;
  return TSR_OK;
  TSR_GUARD_END(err)
}

void BufferFree(tsr_buffer_t* buffer) {
  if (!buffer) return;
  std::free(buffer->ptr);
  delete buffer;
}

void* BufferHostPtr(tsr_buffer_t* buffer) { return buffer ? buffer->ptr : nullptr; }

Err CheckRange(const tsr_buffer_t* b, uint64_t offset, uint64_t bytes, const char* what) {
  if (!b) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: %s: buffer is NULL", what);
  if (offset > b->bytes || bytes > b->bytes - offset)
    return MakeErr(TSR_ERR_OUT_OF_RANGE, "cpu backend: %s: %llu bytes at offset %llu exceed the buffer's %llu bytes",
                   what, static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(offset),
                   static_cast<unsigned long long>(b->bytes));
  return Err::Ok();
}

int32_t CopyH2D(tsr_stream_t* stream, tsr_buffer_t* dst, uint64_t dst_offset, const void* src, uint64_t bytes,
                tsr_error* err) {
  Err e = CheckRange(dst, dst_offset, bytes, "copy_h2d");
  if (!e.ok()) return Report(e, err);
  if (bytes && !src) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: copy_h2d: src is NULL"), err);
  if (bytes) std::memcpy(dst->ptr + dst_offset, src, bytes);
  return TSR_OK;
}

int32_t CopyD2H(tsr_stream_t* stream, void* dst, tsr_buffer_t* src, uint64_t src_offset, uint64_t bytes,
                tsr_error* err) {
  Err e = CheckRange(src, src_offset, bytes, "copy_d2h");
  if (!e.ok()) return Report(e, err);
  if (bytes && !dst) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: copy_d2h: dst is NULL"), err);
  if (bytes) std::memcpy(dst, src->ptr + src_offset, bytes);
  return TSR_OK;
}

int32_t CopyD2D(tsr_stream_t* stream, tsr_buffer_t* dst, uint64_t dst_offset, tsr_buffer_t* src, uint64_t src_offset,
                uint64_t bytes, tsr_error* err) {
  Err e = CheckRange(dst, dst_offset, bytes, "copy_d2d (dst)");
  if (e.ok()) e = CheckRange(src, src_offset, bytes, "copy_d2d (src)");
  if (!e.ok()) return Report(e, err);
  if (bytes) std::memmove(dst->ptr + dst_offset, src->ptr + src_offset, bytes);
  return TSR_OK;
}

int32_t StreamCreate(tsr_device_t* device, tsr_stream_t** out_stream, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!out_stream) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: out_stream is NULL"), err);
  auto s = std::make_unique<tsr_stream_t>();
  s->device = device;
  *out_stream = s.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void StreamDestroy(tsr_stream_t* stream) { delete stream; }

int32_t StreamSynchronize(tsr_stream_t*, tsr_error*) { return TSR_OK; }  // work is done when calls return

int32_t EventCreate(tsr_device_t* device, tsr_event_t** out_event, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!out_event) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: out_event is NULL"), err);
  auto ev = std::make_unique<tsr_event_t>();
  ev->device = device;
  *out_event = ev.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void EventDestroy(tsr_event_t* event) { delete event; }
int32_t EventRecord(tsr_event_t* event, tsr_stream_t*, tsr_error*) {  // always complete
  if (event)
    event->recorded_us = std::chrono::duration<double, std::micro>(
        std::chrono::steady_clock::now().time_since_epoch()).count();
  return TSR_OK;
}
int32_t StreamWaitEvent(tsr_stream_t*, tsr_event_t*, tsr_error*) { return TSR_OK; }  // nothing to wait for
int32_t EventSynchronize(tsr_event_t*, tsr_error*) { return TSR_OK; }

int32_t EventElapsedUs(tsr_event_t* start, tsr_event_t* end, double* out_us, tsr_error* err) {
  if (!start || !end || !out_us)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: event_elapsed_us: NULL argument"), err);
  if (start->recorded_us < 0 || end->recorded_us < 0)
    return Report(MakeErr(TSR_ERR_FAILED_PRECONDITION, "cpu backend: event_elapsed_us: event was never recorded"),
                  err);
  *out_us = end->recorded_us - start->recorded_us;
  return TSR_OK;
}

// Layout negotiation (backend.h choose_layouts; the rules are in layouts.h).
int32_t ChooseLayouts(tsr_device_t*, const tsr_graph_view* seg, tsr_layout_choice* out_values, uint8_t* out_accepts,
                      tsr_error* err) {
  TSR_GUARD_BEGIN
  uint64_t total_inputs = 0;
  for (uint32_t i = 0; seg && i < seg->num_nodes; ++i) total_inputs += seg->nodes[i].num_inputs;
  if (!seg || (!out_values && seg->num_values) || (!out_accepts && total_inputs))
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cpu backend: choose_layouts: NULL argument"), err);
  Err e = tessera::cpu::ChooseLayouts(*seg, out_values, out_accepts);
  return e.ok() ? TSR_OK : Report(e, err);
  TSR_GUARD_END(err)
}

const tsr_backend_api kApi = {
    sizeof(tsr_backend_api),
    TSR_BACKEND_ABI_VERSION,
    "cpu",
    "0.1.0",
    &Init,
    &Shutdown,
    &DeviceCount,
    &DeviceProps,
    &DeviceOpen,
    &DeviceClose,
    &Claim,
    &Compile,
    &ExecutableDestroy,
    &ExecutableScratchBytes,
    &Execute,
    &BufferAlloc,
    &BufferFree,
    &BufferHostPtr,
    &CopyH2D,
    &CopyD2H,
    &CopyD2D,
    &StreamCreate,
    &StreamDestroy,
    &StreamSynchronize,
    &EventCreate,
    &EventDestroy,
    &EventRecord,
    &StreamWaitEvent,
    &EventSynchronize,
    &EventElapsedUs,
    &ChooseLayouts,
    &ExecutableSerialize,  // precision: artifacts
    &CompileCached,        // precision: artifacts
};

}  // namespace
}  // namespace tessera::cpu

extern "C" TSR_BACKEND_EXPORT const tsr_backend_api* tsr_backend_entry(uint32_t host_abi) {
  if (TSR_BACKEND_ABI_MAJOR(host_abi) != TSR_BACKEND_ABI_MAJOR(TSR_BACKEND_ABI_VERSION)) return nullptr;
  return &tessera::cpu::kApi;
}
