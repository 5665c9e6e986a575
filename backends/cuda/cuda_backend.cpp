// The CUDA backend plugin: tsr_backend_api over the kernels of cuda_ops.cpp
// and cuda_blas_dnn.cpp.
//
// Devices: every GPU cudaGetDeviceCount reports. Without a driver or GPU the
// plugin still loads (libcudart loads libcuda lazily) and init succeeds;
// device_count reports 0 with TSR_ERR_NO_DEVICE and cudaGetDeviceCount's
// reason.
//
// Memory: buffers come from a per-device stream-ordered memory pool
// (cudaMallocFromPoolAsync on an internal allocation stream, release
// threshold from the option release_threshold), with a total byte cap (option
// memory_cap) kept by MemoryAccounting and a per-allocation cap (option
// max_alloc_bytes). Allocation
// synchronizes the allocation stream, so a buffer is usable from any stream
// when buffer_alloc returns. buffer_free is stream-ordered after all work
// already enqueued on the device's streams. Exhaustion (cap or device) is
// TSR_ERR_OUT_OF_MEMORY with the sizes in the message; the device stays
// usable (the sticky-free error is cleared and the reservation undone).
//
// Copies: copy_h2d / copy_d2h stage through per-stream pinned blocks
// (kStagingBlocks x kStagingBytes), so they are asynchronous with respect to
// the host: copy_h2d reads `src` before it returns (the caller may reuse it at
// once, stricter than the ABI asks); copy_d2h writes `dst` from a host callback
// on the stream, so `dst` must stay valid until the stream is synchronized
// (the ABI's rule). Host memory that is already pinned is copied directly.
//
// Streams are cudaStream_t (non-blocking), events cudaEvent_t (no timing).
//
// Executables: the segment's kernels in the view's topological order;
// constants are uploaded to one device allocation at compile time. With the
// option cuda_graphs (default on) a segment is captured into a CUDA graph the
// second time it runs with the same bindings (the first run is eager and
// warms up library handles) and replayed afterwards; a new set of bindings
// is captured again and, when the cache is full, applied to the least
// recently used graph with cudaGraphExecUpdate (or re-instantiated when the
// update is refused); see GraphPolicy in cuda_host.h. Capture happens on a
// private stream, so other streams are never joined to it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "backends/common/plugin_util.h"
#include "backends/cuda/cuda_host.h"
#include "backends/cuda/cuda_launch.h"
#include "backends/cuda/cuda_ops.h"
#include "tessera/backend.h"

using tessera::cuda::CudaOptions;
using tessera::cuda::DeviceInfo;
using tessera::cuda::GpuKernel;
using tessera::cuda::MemoryAccounting;
using tessera::cuda::TensorArg;

namespace tessera::cuda {
namespace {
constexpr int kStagingBlocks = 4;
constexpr uint64_t kStagingBytes = 4ull << 20;
constexpr size_t kGraphCacheSize = 4;
constexpr uint64_t kAllocAlign = 256;

struct StagingBlock {
  void* host = nullptr;          // pinned
  cudaEvent_t done = nullptr;    // recorded after the block's last use
  bool in_flight = false;
  // d2h: where the host callback copies the block's bytes.
  void* dst = nullptr;
  uint64_t bytes = 0;
};

// A set of pinned staging blocks used round-robin by one stream.
class Staging {
 public:
  ~Staging() {
    for (StagingBlock& b : blocks_) {
      if (b.done) {
        cudaEventSynchronize(b.done);
        cudaEventDestroy(b.done);
      }
      if (b.host) cudaFreeHost(b.host);
    }
  }
  // Next free block (waits for the oldest use to finish), allocating lazily.
  cudaError_t Acquire(StagingBlock** out) {
    StagingBlock& b = blocks_[next_];
    next_ = (next_ + 1) % kStagingBlocks;
    if (!b.host) {
      cudaError_t e = cudaHostAlloc(&b.host, kStagingBytes, cudaHostAllocDefault);
      if (e != cudaSuccess) {
        b.host = nullptr;
        return e;
      }
      e = cudaEventCreateWithFlags(&b.done, cudaEventDisableTiming);
      if (e != cudaSuccess) return e;
    }
    if (b.in_flight) {
      cudaError_t e = cudaEventSynchronize(b.done);
      if (e != cudaSuccess) return e;
      b.in_flight = false;
    }
    *out = &b;
    return cudaSuccess;
  }

 private:
  StagingBlock blocks_[kStagingBlocks];
  int next_ = 0;
};

void CUDART_CB CopyOutOfStaging(void* user) {
  auto* b = static_cast<StagingBlock*>(user);
  std::memcpy(b->dst, b->host, b->bytes);
}

}  // namespace
}  // namespace tessera::cuda

struct tsr_backend_t {
  CudaOptions options;
  int32_t count = 0;
  int32_t count_code = TSR_OK;
  std::string count_reason;
};

struct tsr_device_t {
  tsr_backend_t* backend = nullptr;
  int ordinal = 0;
  DeviceInfo info;
  CudaOptions options;
  MemoryAccounting acct;
  cudaMemPool_t pool = nullptr;  // null: pools unsupported, plain cudaMalloc
  cudaStream_t alloc_stream = nullptr;
  double peak_gflops = 0, memory_gbps = 0;  // from device_props, for claim's estimates
  cublasLtHandle_t lt = nullptr;
  cudnnHandle_t compile_dnn = nullptr;
  std::mutex dnn_mu;
  std::vector<cudnnHandle_t> dnn_free;  // handles for execute, one per concurrent call
  std::mutex streams_mu;
  std::set<tsr_stream_t*> streams;
};

struct tsr_buffer_t {
  tsr_device_t* device = nullptr;
  uint8_t* ptr = nullptr;
  uint64_t bytes = 0;     // requested
  uint64_t reserved = 0;  // accounted
};

struct tsr_stream_t {
  tsr_device_t* device = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t free_marker = nullptr;  // ordering point for stream-ordered frees
  tessera::cuda::Staging staging;
};

struct tsr_event_t {
  tsr_device_t* device = nullptr;
  cudaEvent_t event = nullptr;
};

namespace tessera::cuda {
namespace {

using plugin::Report;
using plugin::NodeLabel;
using plugin::NumelOf;

struct Step {
  std::vector<int32_t> inputs, outputs;
  std::unique_ptr<GpuKernel> kernel;
};


}  // namespace
}  // namespace tessera::cuda

struct tsr_executable_t {
  tsr_device_t* device = nullptr;
  std::vector<TensorArg> values;
  std::vector<std::string> names;
  std::vector<uint8_t> used;
  std::vector<tessera::cuda::Step> steps;
  void* const_mem = nullptr;  // device copy of all constants
  uint64_t const_reserved = 0;
  std::vector<uint64_t> const_offset;  // per value; UINT64_MAX = not a constant
  uint64_t workspace = 0;
  bool graphs = true;
  // CUDA graphs: one instantiated graph per policy slot.
  std::mutex graph_mu;
  tessera::cuda::GraphPolicy graph_policy{tessera::cuda::kGraphCacheSize};
  std::vector<cudaGraphExec_t> graph_execs = std::vector<cudaGraphExec_t>(tessera::cuda::kGraphCacheSize, nullptr);
  std::string graph_disabled_reason;

  ~tsr_executable_t() {
    for (cudaGraphExec_t g : graph_execs)
      if (g) cudaGraphExecDestroy(g);
    steps.clear();  // kernels free their device blobs before the context goes
    if (const_mem) cudaFree(const_mem);
    if (device && const_reserved) device->acct.Release(const_reserved);
  }
};

namespace tessera::cuda {
namespace {

#define TSR_GUARD_BEGIN TSR_PLUGIN_GUARD_BEGIN
#define TSR_GUARD_END(err) TSR_PLUGIN_GUARD_END(err, "cuda backend", "out of host memory")

Err CudaErr(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Err::Ok();
  cudaGetLastError();  // clear a non-sticky error so the device stays usable
  return MakeErr(e == cudaErrorMemoryAllocation ? TSR_ERR_OUT_OF_MEMORY : TSR_ERR_INTERNAL, "cuda backend: %s: %s",
                 what, CudaErrorText(e).c_str());
}

Err SetDevice(const tsr_device_t* d) {
  if (!d) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: device is NULL");
  return CudaErr(cudaSetDevice(d->ordinal), "cudaSetDevice");
}

// FP32 lanes per SM by compute capability (for the cost model's peak).
int Fp32LanesPerSm(int major, int minor) {
  if (major == 8 && minor == 0) return 64;  // A100
  if (major >= 8) return 128;               // GA10x, Ada, Hopper, Blackwell
  if (major == 7) return 64;
  return 128;
}

// ---- backend and devices ---------------------------------------------------------------------

int32_t Init(const tsr_compile_options* options, tsr_backend_t** out_backend, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!out_backend) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: init: out_backend is NULL"), err);
  auto b = std::make_unique<tsr_backend_t>();
  Err e = ParseCudaOptions(options, &b->options);
  if (!e.ok()) return Report(e, err);
  int n = 0;
  cudaError_t ce = cudaGetDeviceCount(&n);
  if (ce != cudaSuccess) {
    cudaGetLastError();
    b->count = 0;
    b->count_code = TSR_ERR_NO_DEVICE;
    b->count_reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(ce) + " (" + cudaGetErrorName(ce) + ")";
  } else if (n == 0) {
    b->count_code = TSR_ERR_NO_DEVICE;
    b->count_reason = "cudaGetDeviceCount reports 0 CUDA devices";
  } else {
    b->count = n;
  }
  *out_backend = b.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void Shutdown(tsr_backend_t* backend) { delete backend; }

int32_t DeviceCount(tsr_backend_t* b, int32_t* out_count, tsr_error* err) {
  if (!out_count || !b) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: backend or out_count is NULL"), err);
  *out_count = b->count;
  if (b->count == 0) return Report(MakeErr(b->count_code, "%s", b->count_reason.c_str()), err);
  return TSR_OK;
}

Err CheckIndex(tsr_backend_t* b, int32_t index) {
  if (!b) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: backend is NULL");
  if (index < 0 || index >= b->count)
    return MakeErr(b->count == 0 ? TSR_ERR_NO_DEVICE : TSR_ERR_OUT_OF_RANGE,
                   "cuda backend: device index %d out of range (%d device(s)%s%s)", index, b->count,
                   b->count == 0 ? ": " : "", b->count == 0 ? b->count_reason.c_str() : "");
  return Err::Ok();
}

int32_t DeviceProps(tsr_backend_t* b, int32_t index, tsr_device_props* out, tsr_error* err) {
  TSR_GUARD_BEGIN
  Err e = CheckIndex(b, index);
  if (!e.ok()) return Report(e, err);
  if (!out) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: out_props is NULL"), err);
  cudaDeviceProp p{};
  e = CudaErr(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties");
  if (!e.ok()) return Report(e, err);
  int clock_khz = 0, mem_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, index);
  cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, index);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, index);
  cudaGetLastError();
  std::memset(out, 0, sizeof(*out));
  out->struct_size = sizeof(*out);
  // The compute capability rides in the name ("NVIDIA H100 80GB HBM3 (sm_90)").
  std::snprintf(out->name, sizeof(out->name), "%.112s (sm_%d%d)", p.name, p.major, p.minor);
  std::snprintf(out->kind, sizeof(out->kind), "gpu");
  out->memory_bytes = p.totalGlobalMem;
  out->compute_units = p.multiProcessorCount;
  out->flags = 0;
  out->peak_gflops_f32 = static_cast<double>(p.multiProcessorCount) * Fp32LanesPerSm(p.major, p.minor) * 2.0 *
                         (clock_khz > 0 ? clock_khz / 1e6 : 1.5);
  out->memory_gbps = mem_khz > 0 && bus_bits > 0 ? 2.0 * mem_khz * 1e3 * (bus_bits / 8.0) / 1e9 : 0;
  return TSR_OK;
  TSR_GUARD_END(err)
}

void DeviceClose(tsr_device_t* d);

int32_t DeviceOpen(tsr_backend_t* b, int32_t index, tsr_device_t** out_device, tsr_error* err) {
  TSR_GUARD_BEGIN
  Err e = CheckIndex(b, index);
  if (!e.ok()) return Report(e, err);
  if (!out_device) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: out_device is NULL"), err);
  auto d = std::unique_ptr<tsr_device_t, void (*)(tsr_device_t*)>(new tsr_device_t, &DeviceClose);
  d->backend = b;
  d->ordinal = index;
  d->options = b->options;
  d->acct.set_cap(d->options.memory_cap);
  e = SetDevice(d.get());
  if (!e.ok()) return Report(e, err);
  cudaDeviceProp p{};
  e = CudaErr(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties");
  if (!e.ok()) return Report(e, err);
  d->info.ordinal = index;
  d->info.cc_major = p.major;
  d->info.cc_minor = p.minor;
  d->info.sm_count = p.multiProcessorCount;
  {
    tsr_device_props props{};
    tsr_error perr{};
    if (DeviceProps(b, index, &props, &perr) == TSR_OK) {
      d->peak_gflops = props.peak_gflops_f32;
      d->memory_gbps = props.memory_gbps;
    }
  }
  int optin = 0;
  if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, index) == cudaSuccess && optin > 0)
    d->info.smem_optin = static_cast<uint64_t>(optin);
  cudaGetLastError();
  e = CudaErr(cudaStreamCreateWithFlags(&d->alloc_stream, cudaStreamNonBlocking), "allocation stream");
  if (!e.ok()) return Report(e, err);
  int pools = 0;
  cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, index);
  cudaGetLastError();
  if (pools) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = index;
    e = CudaErr(cudaMemPoolCreate(&d->pool, &props), "cudaMemPoolCreate");
    if (!e.ok()) return Report(e, err);
    uint64_t threshold = d->options.release_threshold;
    e = CudaErr(cudaMemPoolSetAttribute(d->pool, cudaMemPoolAttrReleaseThreshold, &threshold), "pool release threshold");
    if (!e.ok()) return Report(e, err);
  }
  if (cublasLtCreate(&d->lt) != CUBLAS_STATUS_SUCCESS)
    return Report(MakeErr(TSR_ERR_INTERNAL, "cuda backend: cublasLtCreate failed on device %d", index), err);
  cudnnStatus_t ds = cudnnCreate(&d->compile_dnn);
  if (ds != CUDNN_STATUS_SUCCESS)
    return Report(MakeErr(TSR_ERR_INTERNAL, "cuda backend: cudnnCreate failed on device %d: %s", index,
                          cudnnGetErrorString(ds)),
                  err);
  *out_device = d.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void DeviceClose(tsr_device_t* d) {
  if (!d) return;
  cudaSetDevice(d->ordinal);
  if (d->alloc_stream) cudaStreamSynchronize(d->alloc_stream);
  for (cudnnHandle_t h : d->dnn_free) cudnnDestroy(h);
  if (d->compile_dnn) cudnnDestroy(d->compile_dnn);
  if (d->lt) cublasLtDestroy(d->lt);
  if (d->pool) cudaMemPoolDestroy(d->pool);
  if (d->alloc_stream) cudaStreamDestroy(d->alloc_stream);
  cudaGetLastError();
  delete d;
}

// ---- claim ---------------------------------------------------------------------------------

// Rough run time from FLOPs and bytes, with a launch overhead.
double EstimateUs(const tsr_node_view& n, const tsr_graph_view& g, double gflops, double gbps) {
  double bytes = 0;
  for (uint32_t i = 0; i < n.num_inputs + n.num_outputs; ++i) {
    const int32_t vi = i < n.num_inputs ? n.inputs[i] : n.outputs[i - n.num_inputs];
    if (vi < 0 || static_cast<uint32_t>(vi) >= g.num_values) continue;
    const int64_t e = NumelOf(g.values[vi]);
    if (e < 0) return 0;
    bytes += static_cast<double>(e) * static_cast<double>(plugin::DTypeSize(g.values[vi].dtype));
  }
  double flops = 0;
  if (n.num_outputs > 0 && n.outputs[0] >= 0 && static_cast<uint32_t>(n.outputs[0]) < g.num_values)
    flops = static_cast<double>(std::max<int64_t>(0, NumelOf(g.values[n.outputs[0]])));
  const std::string op = n.op_type ? n.op_type : "";
  if (n.num_inputs >= 2 && n.inputs[0] >= 0 && n.inputs[1] >= 0) {
    const tsr_value_view& a = g.values[n.inputs[0]];
    const tsr_value_view& w = g.values[n.inputs[1]];
    if ((op == "Conv" || op == "FusedConv") && w.rank >= 2 && NumelOf(w) > 0 && w.dims[0] > 0)
      flops *= 2.0 * static_cast<double>(NumelOf(w) / w.dims[0]);
    else if ((op == "MatMul" || op == "Gemm" || op == "FusedMatMul" || op == "FusedGemm") && a.rank >= 1 &&
             a.dims[a.rank - 1] > 0)
      flops *= 2.0 * static_cast<double>(a.dims[a.rank - 1]);
  }
  const double tc = gflops > 0 ? flops / (gflops * 1e3) : 0, tm = gbps > 0 ? bytes / (gbps * 1e3) : 0;
  return std::max(tc, tm) + 4.0;  // kernel launch
}

int32_t Claim(tsr_device_t* d, const tsr_graph_view* graph, tsr_claim* out_claims, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!graph || (!out_claims && graph->num_nodes))
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: claim: graph or out_claims is NULL"), err);
  const double gflops = d ? d->peak_gflops : 0, gbps = d ? d->memory_gbps : 0;
  for (uint32_t i = 0; i < graph->num_nodes; ++i) {
    const tsr_node_view& n = graph->nodes[i];
    tsr_claim& c = out_claims[i];
    std::memset(&c, 0, sizeof(c));
    const std::string reason = ClaimNode(n, *graph);
    c.supported = reason.empty() ? 1 : 0;
    if (c.supported) c.est_time_us = EstimateUs(n, *graph, gflops, gbps);
    std::snprintf(c.reason, sizeof(c.reason), "%s", reason.c_str());
  }
  return TSR_OK;
  TSR_GUARD_END(err)
}

// ---- compile ---------------------------------------------------------------------------------

int32_t Compile(tsr_device_t* d, const tsr_graph_view* seg, const tsr_compile_options* options,
                tsr_executable_t** out_executable, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!d || !seg || !out_executable)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: compile: device, segment or out_executable is NULL"),
                  err);
  Err e = SetDevice(d);
  if (!e.ok()) return Report(e, err);
  CudaOptions opts = d->options;
  e = ParseCudaOptions(options, &opts);
  if (!e.ok()) return Report(e, err);
  auto exe = std::make_unique<tsr_executable_t>();
  exe->device = d;
  exe->graphs = opts.cuda_graphs;
  exe->used.assign(seg->num_values, 0);
  e = plugin::ReadSegmentValues(*seg, "cuda backend", &exe->values, &exe->names, plugin::NoDataMessage::kByteCount);
  if (!e.ok()) return Report(e, err);
  // Constants: packed into one device allocation, each at an aligned offset.
  exe->const_offset.assign(seg->num_values, UINT64_MAX);
  uint64_t const_total = 0;
  for (uint32_t i = 0; i < seg->num_values; ++i) {
    if (!(seg->values[i].flags & TSR_VALUE_CONSTANT)) continue;
    exe->const_offset[i] = const_total;
    const_total += (static_cast<uint64_t>(exe->values[i].nbytes()) + kAllocAlign - 1) / kAllocAlign * kAllocAlign;
  }
  // Upload constants (one allocation, counted against the cap).
  if (const_total > 0) {
    e = d->acct.Reserve(const_total, "compile (constants)");
    if (!e.ok()) return Report(e, err);
    exe->const_reserved = const_total;
    e = CudaErr(cudaMalloc(&exe->const_mem, const_total), "cudaMalloc (constants)");
    if (!e.ok()) {
      exe->const_mem = nullptr;
      return Report(MakeErr(e.code, "%s (%llu bytes of constants)", e.message.c_str(),
                            static_cast<unsigned long long>(const_total)),
                    err);
    }
    for (uint32_t i = 0; i < seg->num_values; ++i) {
      if (exe->const_offset[i] == UINT64_MAX || exe->values[i].nbytes() == 0) continue;
      e = CudaErr(cudaMemcpy(static_cast<uint8_t*>(exe->const_mem) + exe->const_offset[i], exe->values[i].const_data,
                             static_cast<size_t>(exe->values[i].nbytes()), cudaMemcpyHostToDevice),
                  "uploading constants");
      if (!e.ok()) return Report(e, err);
    }
  }
  std::vector<std::string> errors;
  int32_t first_code = TSR_OK;
  // NodeArgs point into per-node storage that lives through compile only:
  // factories copy what they need.
  for (uint32_t ni = 0; ni < seg->num_nodes; ++ni) {
    const tsr_node_view& n = seg->nodes[ni];
    Step step;
    bool bad = false;
    for (uint32_t k = 0; k < n.num_inputs + n.num_outputs; ++k) {
      const int32_t vi = k < n.num_inputs ? n.inputs[k] : n.outputs[k - n.num_inputs];
      if (vi >= static_cast<int32_t>(seg->num_values)) bad = true;
      (k < n.num_inputs ? step.inputs : step.outputs).push_back(vi);
    }
    if (bad) {
      errors.push_back(NodeLabel(n) + ": refers to a value index outside the segment");
      continue;
    }
    if (!n.op_type) {
      errors.push_back(NodeLabel(n) + ": node has no op type");
      continue;
    }
    const std::string claim = ClaimNode(n, *seg);
    const std::string domain = n.domain ? n.domain : "";
    const std::string key = domain == "tessera" ? "tessera." + std::string(n.op_type) : std::string(n.op_type);
    KernelFactory f = FindKernelFactory(key);
    if (!claim.empty() || !f) {
      errors.push_back(NodeLabel(n) + ": " + (claim.empty() ? "no CUDA kernel for op " + key : claim));
      continue;
    }
    tsr_node_view nv = n;  // factories may assume non-null strings
    if (!nv.name) nv.name = "";
    if (!nv.domain) nv.domain = "";
    NodeArgs args;
    args.node = &nv;
    for (int32_t vi : step.inputs) args.inputs.push_back(vi >= 0 ? &exe->values[vi] : nullptr);
    for (int32_t vi : step.outputs) args.outputs.push_back(vi >= 0 ? &exe->values[vi] : nullptr);
    args.options = opts;
    args.device = d->info;
    args.lt = d->lt;
    args.dnn = d->compile_dnn;
    Err ke = f(args, &step.kernel);
    if (!ke.ok() || !step.kernel) {
      if (first_code == TSR_OK) first_code = ke.ok() ? TSR_ERR_INTERNAL : ke.code;
      errors.push_back(ke.message.empty() ? NodeLabel(n) + ": kernel creation failed" : ke.message);
      continue;
    }
    exe->workspace = std::max(exe->workspace, step.kernel->workspace_bytes());
    for (int32_t vi : step.inputs)
      if (vi >= 0) exe->used[vi] = 1;
    for (int32_t vi : step.outputs)
      if (vi >= 0) exe->used[vi] = 1;
    exe->steps.push_back(std::move(step));
  }
  if (!errors.empty()) {
    const int32_t code = first_code != TSR_OK ? first_code : TSR_ERR_UNSUPPORTED;
    return Report(MakeErr(code, "%s", plugin::JoinErrors("cuda backend", errors, seg->num_nodes).c_str()), err);
  }
  *out_executable = exe.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void ExecutableDestroy(tsr_executable_t* exe) {
  if (!exe) return;
  if (exe->device) cudaSetDevice(exe->device->ordinal);
  delete exe;
  cudaGetLastError();
}

int32_t ExecutableScratchBytes(tsr_executable_t* exe, uint64_t* out_bytes, tsr_error* err) {
  if (!exe || !out_bytes)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: executable or out_bytes is NULL"), err);
  *out_bytes = exe->workspace;
  return TSR_OK;
}

// ---- execute ---------------------------------------------------------------------------------

cudnnHandle_t AcquireDnn(tsr_device_t* d) {
  {
    std::lock_guard<std::mutex> lock(d->dnn_mu);
    if (!d->dnn_free.empty()) {
      cudnnHandle_t h = d->dnn_free.back();
      d->dnn_free.pop_back();
      return h;
    }
  }
  cudnnHandle_t h = nullptr;
  if (cudnnCreate(&h) != CUDNN_STATUS_SUCCESS) return nullptr;
  return h;
}
void ReleaseDnn(tsr_device_t* d, cudnnHandle_t h) {
  if (!h) return;
  std::lock_guard<std::mutex> lock(d->dnn_mu);
  d->dnn_free.push_back(h);
}

Err RunSteps(const tsr_executable_t* exe, const LaunchCtx& ctx, const std::vector<void*>& ptrs) {
  std::vector<const void*> in;
  std::vector<void*> out;
  for (const Step& s : exe->steps) {
    in.clear();
    out.clear();
    for (int32_t vi : s.inputs) in.push_back(vi >= 0 ? ptrs[vi] : nullptr);
    for (int32_t vi : s.outputs) out.push_back(vi >= 0 ? ptrs[vi] : nullptr);
    Err e = s.kernel->Run(ctx, in.data(), out.data());
    if (!e.ok()) return e;
  }
  return Err::Ok();
}

// Captures the steps into a graph on a private stream. On failure the
// capture is ended and discarded.
Err Capture(const tsr_executable_t* exe, LaunchCtx ctx, const std::vector<void*>& ptrs, cudaGraph_t* graph) {
  cudaStream_t cap = nullptr;
  Err e = CudaErr(cudaStreamCreateWithFlags(&cap, cudaStreamNonBlocking), "capture stream");
  if (!e.ok()) return e;
  ctx.stream = cap;
  if (ctx.dnn) cudnnSetStream(ctx.dnn, cap);
  e = CudaErr(cudaStreamBeginCapture(cap, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  if (e.ok()) {
    Err run = RunSteps(exe, ctx, ptrs);
    cudaGraph_t g = nullptr;
    Err end = CudaErr(cudaStreamEndCapture(cap, &g), "cudaStreamEndCapture");
    if (!run.ok() || !end.ok()) {
      if (g) cudaGraphDestroy(g);
      e = !run.ok() ? run : end;
    } else {
      *graph = g;
    }
  }
  cudaStreamDestroy(cap);
  cudaGetLastError();
  return e;
}

// Launches the executable as a CUDA graph when possible. *done = false: the
// caller runs it eagerly.
Err LaunchGraph(tsr_executable_t* exe, const LaunchCtx& ctx, const std::vector<void*>& ptrs, bool* done) {
  *done = false;
  std::vector<const void*> key(ptrs.begin(), ptrs.end());
  key.push_back(ctx.workspace);
  std::lock_guard<std::mutex> lock(exe->graph_mu);
  if (!exe->graph_disabled_reason.empty()) return Err::Ok();
  size_t slot = 0;
  bool reused = false;
  const GraphPolicy::Action action = exe->graph_policy.Decide(key, &slot, &reused);
  if (action == GraphPolicy::kEager) return Err::Ok();
  if (action == GraphPolicy::kCapture) {
    cudaGraph_t graph = nullptr;
    Err e = Capture(exe, ctx, ptrs, &graph);
    if (!e.ok()) {
      exe->graph_policy.Invalidate(slot);
      exe->graph_disabled_reason = e.message;  // eager execution from now on
      return Err::Ok();
    }
    cudaGraphExec_t& exec = exe->graph_execs[slot];
    bool updated = false;
    if (exec && reused) {
      // Same kernels, new pointers: update the instantiated graph in place.
      cudaGraphExecUpdateResultInfo info{};
      updated = cudaGraphExecUpdate(exec, graph, &info) == cudaSuccess;
      cudaGetLastError();
    }
    if (!updated) {
      if (exec) cudaGraphExecDestroy(exec);
      exec = nullptr;
      e = CudaErr(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
      if (!e.ok()) {
        exec = nullptr;
        cudaGraphDestroy(graph);
        exe->graph_policy.Invalidate(slot);
        exe->graph_disabled_reason = e.message;
        return Err::Ok();
      }
    }
    cudaGraphDestroy(graph);
  }
  Err e = CudaErr(cudaGraphLaunch(exe->graph_execs[slot], ctx.stream), "cudaGraphLaunch");
  if (e.ok()) *done = true;
  return e;
}

int32_t Execute(tsr_executable_t* exe, tsr_stream_t* stream, const tsr_binding* bindings, uint32_t num_bindings,
                tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!exe || !stream) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: execute: executable or stream is NULL"), err);
  Err e = SetDevice(exe->device);
  if (!e.ok()) return Report(e, err);
  const size_t nv = exe->values.size();
  if (num_bindings < nv || (nv && !bindings))
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: execute: %u bindings for %zu values", num_bindings, nv),
                  err);
  std::vector<void*> ptrs(nv, nullptr);
  for (size_t i = 0; i < nv; ++i) {
    const TensorArg& t = exe->values[i];
    if (exe->const_offset[i] != UINT64_MAX) {
      ptrs[i] = static_cast<uint8_t*>(exe->const_mem) + exe->const_offset[i];
      continue;
    }
    const tsr_binding& b = bindings[i];
    if (!b.buffer) {
      if (!exe->used[i]) continue;
      return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: execute: value '%s' has no buffer bound",
                            exe->names[i].c_str()),
                    err);
    }
    if (b.buffer->device != exe->device)
      return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: execute: value '%s' is bound to a buffer of another device",
                            exe->names[i].c_str()),
                    err);
    const uint64_t need = static_cast<uint64_t>(t.nbytes());
    if (b.offset > b.buffer->bytes || need > b.buffer->bytes - b.offset)
      return Report(MakeErr(TSR_ERR_OUT_OF_RANGE,
                            "cuda backend: execute: value '%s' (%llu bytes at offset %llu) does not fit its buffer of %llu bytes",
                            exe->names[i].c_str(), static_cast<unsigned long long>(need),
                            static_cast<unsigned long long>(b.offset), static_cast<unsigned long long>(b.buffer->bytes)),
                    err);
    ptrs[i] = b.buffer->ptr + b.offset;
  }
  LaunchCtx ctx;
  ctx.stream = stream->stream;
  ctx.lt = exe->device->lt;
  void* temp_ws = nullptr;
  if (exe->workspace > 0) {
    if (num_bindings > nv && bindings[nv].buffer && bindings[nv].buffer->bytes >= bindings[nv].offset &&
        bindings[nv].buffer->bytes - bindings[nv].offset >= exe->workspace) {
      ctx.workspace = bindings[nv].buffer->ptr + bindings[nv].offset;
    } else {
      // No scratch binding: a stream-ordered temporary (not graph-capturable).
      e = CudaErr(cudaMallocAsync(&temp_ws, exe->workspace, ctx.stream), "workspace allocation");
      if (!e.ok()) return Report(e, err);
      ctx.workspace = temp_ws;
    }
    ctx.workspace_bytes = exe->workspace;
  }
  cudnnHandle_t dnn = AcquireDnn(exe->device);
  if (!dnn) return Report(MakeErr(TSR_ERR_INTERNAL, "cuda backend: execute: cudnnCreate failed"), err);
  ctx.dnn = dnn;
  bool done = false;
  if (exe->graphs && !temp_ws) e = LaunchGraph(exe, ctx, ptrs, &done);
  if (e.ok() && !done) {
    cudnnSetStream(dnn, ctx.stream);
    e = RunSteps(exe, ctx, ptrs);
  }
  if (temp_ws) cudaFreeAsync(temp_ws, ctx.stream);
  ReleaseDnn(exe->device, dnn);
  if (!e.ok()) return Report(e, err);
  return TSR_OK;
  TSR_GUARD_END(err)
}

// ---- memory --------------------------------------------------------------------------------

int32_t BufferAlloc(tsr_device_t* d, uint64_t bytes, uint64_t alignment, tsr_buffer_t** out_buffer, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!d || !out_buffer) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: device or out_buffer is NULL"), err);
  *out_buffer = nullptr;
  if (alignment & (alignment - 1))
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: buffer alignment %llu is not a power of two",
                          static_cast<unsigned long long>(alignment)),
                  err);
  if (alignment > kAllocAlign)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: buffer alignment %llu exceeds the allocator's %llu",
                          static_cast<unsigned long long>(alignment), static_cast<unsigned long long>(kAllocAlign)),
                  err);
  const uint64_t size = (std::max<uint64_t>(bytes, 1) + kAllocAlign - 1) / kAllocAlign * kAllocAlign;
  if (size < bytes)
    return Report(MakeErr(TSR_ERR_OUT_OF_MEMORY, "cuda backend: cannot allocate %llu bytes",
                          static_cast<unsigned long long>(bytes)),
                  err);
  if (d->options.max_alloc_bytes && bytes > d->options.max_alloc_bytes)
    return Report(MakeErr(TSR_ERR_OUT_OF_MEMORY,
                          "cuda backend: buffer_alloc of %llu bytes exceeds max_alloc_bytes = %llu",
                          static_cast<unsigned long long>(bytes),
                          static_cast<unsigned long long>(d->options.max_alloc_bytes)),
                  err);
  Err e = SetDevice(d);
  if (!e.ok()) return Report(e, err);
  e = d->acct.Reserve(size, "buffer_alloc");
  if (!e.ok()) return Report(e, err);
  void* p = nullptr;
  auto try_alloc = [&]() -> cudaError_t {
    cudaError_t ce = d->pool ? cudaMallocFromPoolAsync(&p, size, d->pool, d->alloc_stream) : cudaMalloc(&p, size);
    if (ce == cudaSuccess && d->pool) ce = cudaStreamSynchronize(d->alloc_stream);
    return ce;
  };
  cudaError_t ce = try_alloc();
  if (ce == cudaErrorMemoryAllocation && d->pool) {
    cudaGetLastError();
    cudaStreamSynchronize(d->alloc_stream);
    cudaMemPoolTrimTo(d->pool, 0);  // return cached blocks to the driver, then retry once
    p = nullptr;
    ce = try_alloc();
  }
  if (ce != cudaSuccess) {
    cudaGetLastError();
    d->acct.Release(size);
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    cudaGetLastError();
    return Report(MakeErr(ce == cudaErrorMemoryAllocation ? TSR_ERR_OUT_OF_MEMORY : TSR_ERR_INTERNAL,
                          "cuda backend: cannot allocate %llu bytes on cuda:%d (%s; %llu bytes held by this backend, "
                          "%llu of %llu bytes free on the device)",
                          static_cast<unsigned long long>(bytes), d->ordinal, cudaGetErrorString(ce),
                          static_cast<unsigned long long>(d->acct.used()), static_cast<unsigned long long>(free_b),
                          static_cast<unsigned long long>(total_b)),
                  err);
  }
  auto b = new (std::nothrow) tsr_buffer_t;
  if (!b) {
    if (d->pool) cudaFreeAsync(p, d->alloc_stream);
    else cudaFree(p);
    d->acct.Release(size);
    return Report(MakeErr(TSR_ERR_OUT_OF_MEMORY, "cuda backend: out of host memory"), err);
  }
  b->device = d;
  b->ptr = static_cast<uint8_t*>(p);
  b->bytes = bytes;
  b->reserved = size;
  *out_buffer = b;
  return TSR_OK;
  TSR_GUARD_END(err)
}

void BufferFree(tsr_buffer_t* b) {
  if (!b) return;
  tsr_device_t* d = b->device;
  cudaSetDevice(d->ordinal);
  if (d->pool) {
    // Stream-ordered after everything already enqueued on the device's streams.
    {
      std::lock_guard<std::mutex> lock(d->streams_mu);
      for (tsr_stream_t* s : d->streams) {
        if (cudaEventRecord(s->free_marker, s->stream) == cudaSuccess)
          cudaStreamWaitEvent(d->alloc_stream, s->free_marker, 0);
      }
    }
    cudaFreeAsync(b->ptr, d->alloc_stream);
  } else {
    cudaDeviceSynchronize();
    cudaFree(b->ptr);
  }
  cudaGetLastError();
  d->acct.Release(b->reserved);
  delete b;
}

Err CheckRange(const tsr_buffer_t* b, uint64_t offset, uint64_t bytes, const char* what) {
  if (!b) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: %s: buffer is NULL", what);
  if (offset > b->bytes || bytes > b->bytes - offset)
    return MakeErr(TSR_ERR_OUT_OF_RANGE, "cuda backend: %s: %llu bytes at offset %llu exceed the buffer's %llu bytes",
                   what, static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(offset),
                   static_cast<unsigned long long>(b->bytes));
  return Err::Ok();
}

bool IsPinned(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}

int32_t CopyH2D(tsr_stream_t* s, tsr_buffer_t* dst, uint64_t dst_offset, const void* src, uint64_t bytes,
                tsr_error* err) {
  TSR_GUARD_BEGIN
  Err e = CheckRange(dst, dst_offset, bytes, "copy_h2d");
  if (!e.ok()) return Report(e, err);
  if (!s) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: copy_h2d: stream is NULL"), err);
  if (bytes && !src) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: copy_h2d: src is NULL"), err);
  if (!bytes) return TSR_OK;
  e = SetDevice(s->device);
  if (!e.ok()) return Report(e, err);
  uint8_t* d = dst->ptr + dst_offset;
  if (IsPinned(src))
    return Report(CudaErr(cudaMemcpyAsync(d, src, bytes, cudaMemcpyHostToDevice, s->stream), "copy_h2d"), err);
  uint64_t done = 0;
  for (uint64_t chunk : StagingChunks(bytes, kStagingBytes)) {
    StagingBlock* blk = nullptr;
    e = CudaErr(s->staging.Acquire(&blk), "copy_h2d: pinned staging");
    if (!e.ok()) return Report(e, err);
    std::memcpy(blk->host, static_cast<const uint8_t*>(src) + done, chunk);
    e = CudaErr(cudaMemcpyAsync(d + done, blk->host, chunk, cudaMemcpyHostToDevice, s->stream), "copy_h2d");
    if (e.ok()) e = CudaErr(cudaEventRecord(blk->done, s->stream), "copy_h2d: event");
    if (!e.ok()) return Report(e, err);
    blk->in_flight = true;
    done += chunk;
  }
  return TSR_OK;
  TSR_GUARD_END(err)
}

int32_t CopyD2H(tsr_stream_t* s, void* dst, tsr_buffer_t* src, uint64_t src_offset, uint64_t bytes, tsr_error* err) {
  TSR_GUARD_BEGIN
  Err e = CheckRange(src, src_offset, bytes, "copy_d2h");
  if (!e.ok()) return Report(e, err);
  if (!s) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: copy_d2h: stream is NULL"), err);
  if (bytes && !dst) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: copy_d2h: dst is NULL"), err);
  if (!bytes) return TSR_OK;
  e = SetDevice(s->device);
  if (!e.ok()) return Report(e, err);
  const uint8_t* from = src->ptr + src_offset;
  if (IsPinned(dst))
    return Report(CudaErr(cudaMemcpyAsync(dst, from, bytes, cudaMemcpyDeviceToHost, s->stream), "copy_d2h"), err);
  uint64_t done = 0;
  for (uint64_t chunk : StagingChunks(bytes, kStagingBytes)) {
    StagingBlock* blk = nullptr;
    e = CudaErr(s->staging.Acquire(&blk), "copy_d2h: pinned staging");
    if (!e.ok()) return Report(e, err);
    blk->dst = static_cast<uint8_t*>(dst) + done;
    blk->bytes = chunk;
    e = CudaErr(cudaMemcpyAsync(blk->host, from + done, chunk, cudaMemcpyDeviceToHost, s->stream), "copy_d2h");
    if (e.ok()) e = CudaErr(cudaLaunchHostFunc(s->stream, &CopyOutOfStaging, blk), "copy_d2h: host callback");
    if (e.ok()) e = CudaErr(cudaEventRecord(blk->done, s->stream), "copy_d2h: event");
    if (!e.ok()) return Report(e, err);
    blk->in_flight = true;
    done += chunk;
  }
  return TSR_OK;
  TSR_GUARD_END(err)
}

int32_t CopyD2D(tsr_stream_t* s, tsr_buffer_t* dst, uint64_t dst_offset, tsr_buffer_t* src, uint64_t src_offset,
                uint64_t bytes, tsr_error* err) {
  Err e = CheckRange(dst, dst_offset, bytes, "copy_d2d (dst)");
  if (e.ok()) e = CheckRange(src, src_offset, bytes, "copy_d2d (src)");
  if (e.ok() && !s) e = MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: copy_d2d: stream is NULL");
  if (e.ok()) e = SetDevice(s->device);
  if (e.ok() && bytes)
    e = CudaErr(cudaMemcpyAsync(dst->ptr + dst_offset, src->ptr + src_offset, bytes, cudaMemcpyDeviceToDevice, s->stream),
                "copy_d2d");
  return Report(e, err);
}

// ---- streams and events ----------------------------------------------------------------------

void StreamDestroy(tsr_stream_t* s);

int32_t StreamCreate(tsr_device_t* d, tsr_stream_t** out_stream, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!d || !out_stream) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: device or out_stream is NULL"), err);
  Err e = SetDevice(d);
  if (!e.ok()) return Report(e, err);
  auto s = std::make_unique<tsr_stream_t>();
  s->device = d;
  e = CudaErr(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (e.ok()) e = CudaErr(cudaEventCreateWithFlags(&s->free_marker, cudaEventDisableTiming), "cudaEventCreate");
  if (!e.ok()) {
    if (s->stream) cudaStreamDestroy(s->stream);
    return Report(e, err);
  }
  {
    std::lock_guard<std::mutex> lock(d->streams_mu);
    d->streams.insert(s.get());
  }
  *out_stream = s.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void StreamDestroy(tsr_stream_t* s) {
  if (!s) return;
  cudaSetDevice(s->device->ordinal);
  {
    std::lock_guard<std::mutex> lock(s->device->streams_mu);
    s->device->streams.erase(s);
  }
  cudaStreamSynchronize(s->stream);  // pending d2h callbacks use the staging blocks
  cudaEventDestroy(s->free_marker);
  cudaStreamDestroy(s->stream);
  cudaGetLastError();
  delete s;
}

int32_t StreamSynchronize(tsr_stream_t* s, tsr_error* err) {
  if (!s) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: stream is NULL"), err);
  Err e = SetDevice(s->device);
  if (e.ok()) e = CudaErr(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize");
  return Report(e, err);
}

int32_t EventCreate(tsr_device_t* d, tsr_event_t** out_event, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!d || !out_event) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: device or out_event is NULL"), err);
  Err e = SetDevice(d);
  if (!e.ok()) return Report(e, err);
  auto ev = std::make_unique<tsr_event_t>();
  ev->device = d;
  e = CudaErr(cudaEventCreateWithFlags(&ev->event, cudaEventDisableTiming), "cudaEventCreate");
  if (!e.ok()) return Report(e, err);
  *out_event = ev.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void EventDestroy(tsr_event_t* ev) {
  if (!ev) return;
  cudaSetDevice(ev->device->ordinal);
  cudaEventDestroy(ev->event);
  cudaGetLastError();
  delete ev;
}

int32_t EventRecord(tsr_event_t* ev, tsr_stream_t* s, tsr_error* err) {
  if (!ev || !s) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: event or stream is NULL"), err);
  Err e = SetDevice(s->device);
  if (e.ok()) e = CudaErr(cudaEventRecord(ev->event, s->stream), "cudaEventRecord");
  return Report(e, err);
}

int32_t StreamWaitEvent(tsr_stream_t* s, tsr_event_t* ev, tsr_error* err) {
  if (!ev || !s) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: event or stream is NULL"), err);
  Err e = SetDevice(s->device);
  if (e.ok()) e = CudaErr(cudaStreamWaitEvent(s->stream, ev->event, 0), "cudaStreamWaitEvent");
  return Report(e, err);
}

int32_t EventSynchronize(tsr_event_t* ev, tsr_error* err) {
  if (!ev) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "cuda backend: event is NULL"), err);
  Err e = SetDevice(ev->device);
  if (e.ok()) e = CudaErr(cudaEventSynchronize(ev->event), "cudaEventSynchronize");
  return Report(e, err);
}

const tsr_backend_api kApi = {
    sizeof(tsr_backend_api),
    TSR_BACKEND_ABI_VERSION,
    "cuda",
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
    nullptr,  // buffer_host_ptr: device memory is not host-visible
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
};

}  // namespace
}  // namespace tessera::cuda

extern "C" TSR_BACKEND_EXPORT const tsr_backend_api* tsr_backend_entry(uint32_t host_abi) {
  if (TSR_BACKEND_ABI_MAJOR(host_abi) != TSR_BACKEND_ABI_MAJOR(TSR_BACKEND_ABI_VERSION)) return nullptr;
  return &tessera::cuda::kApi;
}
