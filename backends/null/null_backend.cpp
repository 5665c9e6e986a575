// The null backend: the template for a new backend plugin.
//
// It loads, initializes, reports one device ("null", kind "accelerator"),
// answers `claim` with "unsupported" for every node, and fails every call that
// would need real hardware (compile, execute, memory, copies, streams) with
// TSR_ERR_UNSUPPORTED and a polite message. Optional slots are left NULL to
// show that they are optional; the host then supplies the default described
// in include/tessera/backend.h.
//
// To write a real backend, copy this file and replace each function's body.
// The rules every slot follows (from backend.h):
//   * Return a tsr_code; on failure also fill `err` (it may be NULL) with a
//     message that names what failed, e.g. "node 'conv1' (Conv): ...".
//   * Never let a C++ exception or an abort() cross the boundary: wrap bodies
//     that can throw in try/catch and return TSR_ERR_INTERNAL.
//   * Graph views and everything they point to are valid only during the
//     call, except constant data (tsr_value_view.const_data), which stays
//     valid until the executable compiled from the view is destroyed.
//   * `execute` may be called from several threads at once on one
//     executable; every other call on one object is serialized by the host.
//   * Include only include/tessera/backend.h and backends/common/*, never the
//     core's graph/, compiler/ or runtime/ headers.
#include <cstdio>
#include <cstring>
#include <new>

#include "backends/common/plugin_util.h"
#include "tessera/backend.h"

// Opaque object types: each backend defines its own.
struct tsr_backend_t {
  int unused = 0;
};
struct tsr_device_t {
  tsr_backend_t* backend = nullptr;
};

namespace tessera::null_backend {
namespace {

using plugin::MakeErr;
using plugin::Report;

constexpr const char* kNoKernels = "the null backend implements no kernels";

int32_t Unsupported(const char* what, tsr_error* err) {
  return Report(MakeErr(TSR_ERR_UNSUPPORTED, "null backend: %s is not supported (%s)", what, kNoKernels), err);
}

// init: parse `options` (may be NULL), probe the driver. When the hardware is
// absent, still succeed; device_count then reports 0 with TSR_ERR_NO_DEVICE.
int32_t Init(const tsr_compile_options* options, tsr_backend_t** out_backend, tsr_error* err) {
  if (!out_backend) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "null backend: out_backend is NULL"), err);
  *out_backend = new (std::nothrow) tsr_backend_t;
  if (!*out_backend) return Report(MakeErr(TSR_ERR_OUT_OF_MEMORY, "null backend: out of memory"), err);
  return TSR_OK;
}

// shutdown: release everything init created. Called once, last.
void Shutdown(tsr_backend_t* backend) { delete backend; }

// device_count: how many devices this backend drives.
int32_t DeviceCount(tsr_backend_t* backend, int32_t* out_count, tsr_error* err) {
  if (!out_count) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "null backend: out_count is NULL"), err);
  *out_count = 1;
  return TSR_OK;
}

// device_props: describe device `index` (name, kind, memory, compute units,
// flags, rough peak numbers for the partitioner's cost model; 0 = unknown).
int32_t DeviceProps(tsr_backend_t* backend, int32_t index, tsr_device_props* out, tsr_error* err) {
  if (index != 0)
    return Report(MakeErr(TSR_ERR_OUT_OF_RANGE, "null backend: device index %d out of range (1 device)", index), err);
  if (!out) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "null backend: out_props is NULL"), err);
  std::memset(out, 0, sizeof(*out));
  out->struct_size = sizeof(*out);
  std::snprintf(out->name, sizeof(out->name), "null");
  std::snprintf(out->kind, sizeof(out->kind), "accelerator");
  out->compute_units = 1;
  return TSR_OK;
}

// device_open / device_close: a handle the other calls use.
int32_t DeviceOpen(tsr_backend_t* backend, int32_t index, tsr_device_t** out_device, tsr_error* err) {
  if (index != 0)
    return Report(MakeErr(TSR_ERR_OUT_OF_RANGE, "null backend: device index %d out of range (1 device)", index), err);
  if (!out_device) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "null backend: out_device is NULL"), err);
  *out_device = new (std::nothrow) tsr_device_t;
  if (!*out_device) return Report(MakeErr(TSR_ERR_OUT_OF_MEMORY, "null backend: out of memory"), err);
  (*out_device)->backend = backend;
  return TSR_OK;
}

void DeviceClose(tsr_device_t* device) { delete device; }

// claim: fill out_claims[i] for every node i: supported (1/0), a run-time
// estimate when supported, and otherwise the reason the user will see.
int32_t Claim(tsr_device_t* device, const tsr_graph_view* graph, tsr_claim* out_claims, tsr_error* err) {
  if (!graph || (!out_claims && graph->num_nodes))
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "null backend: claim: graph or out_claims is NULL"), err);
  for (uint32_t i = 0; i < graph->num_nodes; ++i) {
    std::memset(&out_claims[i], 0, sizeof(out_claims[i]));
    out_claims[i].supported = 0;
    std::snprintf(out_claims[i].reason, sizeof(out_claims[i].reason), "%s", kNoKernels);
  }
  return TSR_OK;
}

// compile: turn a segment (static shapes) into an executable. A real backend
// reports every node it cannot compile in one error.
int32_t Compile(tsr_device_t* device, const tsr_graph_view* segment, const tsr_compile_options* options,
                tsr_executable_t** out_executable, tsr_error* err) {
  if (out_executable) *out_executable = nullptr;
  return Unsupported("compile", err);
}

// executable_destroy: free what compile made (never called with NULL here,
// but tolerate it).
void ExecutableDestroy(tsr_executable_t* executable) {}

// execute: run the executable against one binding per value of the view
// (buffer + offset; constants have buffer == NULL). Must be reentrant.
int32_t Execute(tsr_executable_t* executable, tsr_stream_t* stream, const tsr_binding* bindings,
                uint32_t num_bindings, tsr_error* err) {
  return Unsupported("execute", err);
}

// buffer_alloc / buffer_free: device memory; alloc failure is
// TSR_ERR_OUT_OF_MEMORY naming the byte count.
int32_t BufferAlloc(tsr_device_t* device, uint64_t bytes, uint64_t alignment, tsr_buffer_t** out_buffer,
                    tsr_error* err) {
  if (out_buffer) *out_buffer = nullptr;
  return Unsupported("buffer_alloc", err);
}

void BufferFree(tsr_buffer_t* buffer) {}

// copy_h2d / copy_d2h: enqueue copies on `stream` (asynchronous allowed; the
// host buffer must stay valid until the stream is synchronized).
int32_t CopyH2D(tsr_stream_t* stream, tsr_buffer_t* dst, uint64_t dst_offset, const void* src, uint64_t bytes,
                tsr_error* err) {
  return Unsupported("copy_h2d", err);
}

int32_t CopyD2H(tsr_stream_t* stream, void* dst, tsr_buffer_t* src, uint64_t src_offset, uint64_t bytes,
                tsr_error* err) {
  return Unsupported("copy_d2h", err);
}

// Streams: in-order queues of work.
int32_t StreamCreate(tsr_device_t* device, tsr_stream_t** out_stream, tsr_error* err) {
  if (out_stream) *out_stream = nullptr;
  return Unsupported("stream_create", err);
}

void StreamDestroy(tsr_stream_t* stream) {}

int32_t StreamSynchronize(tsr_stream_t* stream, tsr_error* err) { return Unsupported("stream_synchronize", err); }

const tsr_backend_api kApi = {
    sizeof(tsr_backend_api),
    TSR_BACKEND_ABI_VERSION,
    "null",
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
    nullptr,  // executable_scratch_bytes: optional, NULL = no scratch
    &Execute,
    &BufferAlloc,
    &BufferFree,
    nullptr,  // buffer_host_ptr: optional, NULL = memory is not host-visible
    &CopyH2D,
    &CopyD2H,
    nullptr,  // copy_d2d: optional, NULL = the host stages through d2h + h2d
    &StreamCreate,
    &StreamDestroy,
    &StreamSynchronize,
    nullptr,  // event_create: events are optional as a group;
    nullptr,  // event_destroy:  NULL = the host synchronizes streams instead
    nullptr,  // event_record
    nullptr,  // stream_wait_event
    nullptr,  // event_synchronize
};

}  // namespace
}  // namespace tessera::null_backend

// The one exported symbol. Return NULL when the host's ABI major differs:
// the host then reports the plugin as incompatible instead of calling it.
extern "C" TSR_BACKEND_EXPORT const tsr_backend_api* tsr_backend_entry(uint32_t host_abi) {
  if (TSR_BACKEND_ABI_MAJOR(host_abi) != TSR_BACKEND_ABI_MAJOR(TSR_BACKEND_ABI_VERSION)) return nullptr;
  return &tessera::null_backend::kApi;
}
