// The OpenCL backend plugin: tsr_backend_api over OpenCL 1.2 (PoCL, vendor ICDs).
//
// Devices: every device of every platform, in platform order. One cl_context
// per opened device. Buffers are cl_mem (not host-visible: buffer_host_ptr
// returns NULL and the host stages through copy_h2d/copy_d2h). Streams are
// in-order command queues; events are markers (clEnqueueMarkerWithWaitList).
// copy_h2d and copy_d2h are blocking: they return when the host memory may be
// reused / read. copy_d2d and execute are asynchronous on the stream.
//
// An executable is the segment's launches (ocl.h) in topological order, with
// its kernels, params buffers and constants uploaded at compile time. execute
// sets kernel arguments and enqueues under the executable's mutex (cl_kernel
// arguments are not thread-safe), so concurrent executes are correct.
// Segments with data-dependent index checks (Gather with runtime indices)
// read an error flag back at the end of execute, which makes those executes
// synchronous.
//
// Programs are built with clBuildProgram at compile time, cached per device
// in memory and on disk (ocl_program_cache.cpp).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "backends/opencl/ocl.h"
#include "backends/opencl/ocl_program_cache.h"
#include "tessera/backend.h"

namespace tessera::ocl {
namespace {
struct DeviceEntry {
  cl_platform_id platform = nullptr;
  cl_device_id device = nullptr;
};
}  // namespace
}  // namespace tessera::ocl

struct tsr_backend_t {
  std::vector<tessera::ocl::DeviceEntry> devices;
  std::string no_device_reason;
};

struct tsr_device_t {
  cl_context ctx = nullptr;
  cl_device_id id = nullptr;
  std::string name, driver;
  uint64_t max_alloc = 0;
  cl_mem flag_sink = nullptr;  // error flag of kernels whose indices were validated at compile time
  tessera::ocl::ProgramCache programs;
  ~tsr_device_t() {
    programs.Clear();
    if (flag_sink) clReleaseMemObject(flag_sink);
    if (ctx) clReleaseContext(ctx);
  }
};

struct tsr_buffer_t {
  cl_mem mem = nullptr;
  uint64_t bytes = 0;
};

struct tsr_stream_t {
  tsr_device_t* device = nullptr;
  cl_command_queue queue = nullptr;
};

struct tsr_event_t {
  tsr_device_t* device = nullptr;
  cl_event ev = nullptr;  // nullptr = never recorded (complete)
};

namespace tessera::ocl {
namespace {

using plugin::Report;
using plugin::NodeLabel;
using plugin::NumelOf;

const char* ClErrorName(cl_int e) {
  switch (e) {
    case CL_SUCCESS: return "CL_SUCCESS";
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT";
    case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_ARG_INDEX: return "CL_INVALID_ARG_INDEX";
    case CL_INVALID_ARG_SIZE: return "CL_INVALID_ARG_SIZE";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_GLOBAL_WORK_SIZE: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case CL_MEM_COPY_OVERLAP: return "CL_MEM_COPY_OVERLAP";
    default: return "CL error";
  }
}

Err ClErr(cl_int e, const char* what) {
  int32_t code = (e == CL_OUT_OF_HOST_MEMORY || e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_RESOURCES)
                     ? TSR_ERR_OUT_OF_MEMORY
                     : TSR_ERR_INTERNAL;
  return MakeErr(code, "opencl backend: %s failed: %s (%d)", what, ClErrorName(e), e);
}

std::string DeviceString(cl_device_id d, cl_device_info what) {
  size_t n = 0;
  if (clGetDeviceInfo(d, what, 0, nullptr, &n) != CL_SUCCESS || n == 0) return "";
  std::string s(n, '\0');
  if (clGetDeviceInfo(d, what, n, s.data(), nullptr) != CL_SUCCESS) return "";
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

template <typename T>
T DeviceValue(cl_device_id d, cl_device_info what) {
  T v{};
  if (clGetDeviceInfo(d, what, sizeof(v), &v, nullptr) != CL_SUCCESS) return T{};
  return v;
}

#define TSR_GUARD_BEGIN TSR_PLUGIN_GUARD_BEGIN
#define TSR_GUARD_END(err) TSR_PLUGIN_GUARD_END(err, "opencl backend", "out of memory")

// ---- backend and devices ---------------------------------------------------------------

int32_t Init(const tsr_compile_options* options, tsr_backend_t** out_backend, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!out_backend) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: init: out_backend is NULL"), err);
  auto b = std::make_unique<tsr_backend_t>();
  cl_uint np = 0;
  cl_int rc = clGetPlatformIDs(0, nullptr, &np);
  if (rc != CL_SUCCESS || np == 0) {
    // -1001 = CL_PLATFORM_NOT_FOUND_KHR (the ICD loader found no vendor ICD).
    b->no_device_reason = std::string("no OpenCL platform found (") +
                          (rc == CL_SUCCESS ? "0 platforms" : rc == -1001 ? "no ICD registered" : ClErrorName(rc)) +
                          "; install an ICD such as pocl-opencl-icd or a vendor driver)";
  } else {
    std::vector<cl_platform_id> plats(np);
    clGetPlatformIDs(np, plats.data(), nullptr);
    for (cl_platform_id p : plats) {
      cl_uint nd = 0;
      if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS || nd == 0) continue;
      std::vector<cl_device_id> ds(nd);
      if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, nd, ds.data(), nullptr) != CL_SUCCESS) continue;
      for (cl_device_id d : ds) b->devices.push_back({p, d});
    }
    if (b->devices.empty())
      b->no_device_reason = std::to_string(np) + " OpenCL platform(s) found but no device on any of them";
  }
  (void)OpTable();  // build the op table now, not in a concurrent call
  *out_backend = b.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void Shutdown(tsr_backend_t* backend) { delete backend; }

int32_t DeviceCount(tsr_backend_t* backend, int32_t* out_count, tsr_error* err) {
  if (!backend || !out_count)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: backend or out_count is NULL"), err);
  *out_count = static_cast<int32_t>(backend->devices.size());
  if (backend->devices.empty())
    return Report(MakeErr(TSR_ERR_NO_DEVICE, "opencl backend: %s", backend->no_device_reason.c_str()), err);
  return TSR_OK;
}

Err CheckIndex(tsr_backend_t* b, int32_t index) {
  if (!b) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: backend is NULL");
  if (index < 0 || static_cast<size_t>(index) >= b->devices.size())
    return MakeErr(TSR_ERR_OUT_OF_RANGE, "opencl backend: device index %d out of range (%zu device(s))", index,
                   b->devices.size());
  return Err::Ok();
}

int32_t DeviceProps(tsr_backend_t* backend, int32_t index, tsr_device_props* out, tsr_error* err) {
  TSR_GUARD_BEGIN
  Err e = CheckIndex(backend, index);
  if (!e.ok()) return Report(e, err);
  if (!out) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: out_props is NULL"), err);
  cl_device_id d = backend->devices[index].device;
  std::memset(out, 0, sizeof(*out));
  out->struct_size = sizeof(*out);
  std::string name = DeviceString(d, CL_DEVICE_NAME);
  std::snprintf(out->name, sizeof(out->name), "%s", name.empty() ? "OpenCL device" : name.c_str());
  cl_device_type t = DeviceValue<cl_device_type>(d, CL_DEVICE_TYPE);
  const char* kind = (t & CL_DEVICE_TYPE_GPU) ? "gpu" : (t & CL_DEVICE_TYPE_CPU) ? "cpu" : "accelerator";
  std::snprintf(out->kind, sizeof(out->kind), "%s", kind);
  out->memory_bytes = DeviceValue<cl_ulong>(d, CL_DEVICE_GLOBAL_MEM_SIZE);
  out->compute_units = static_cast<int32_t>(std::max<cl_uint>(1, DeviceValue<cl_uint>(d, CL_DEVICE_MAX_COMPUTE_UNITS)));
  out->flags = 0;
  // Rough peak: units x clock x FMA (2) x preferred f32 vector width.
  double mhz = DeviceValue<cl_uint>(d, CL_DEVICE_MAX_CLOCK_FREQUENCY);
  double width = std::max<cl_uint>(1, DeviceValue<cl_uint>(d, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT));
  out->peak_gflops_f32 = out->compute_units * mhz * 2.0 * width / 1000.0;
  out->memory_gbps = 0;  // not queryable through OpenCL
  return TSR_OK;
  TSR_GUARD_END(err)
}

int32_t DeviceOpen(tsr_backend_t* backend, int32_t index, tsr_device_t** out_device, tsr_error* err) {
  TSR_GUARD_BEGIN
  Err e = CheckIndex(backend, index);
  if (!e.ok()) return Report(e, err);
  if (!out_device) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: out_device is NULL"), err);
  auto d = std::make_unique<tsr_device_t>();
  d->id = backend->devices[index].device;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                   reinterpret_cast<cl_context_properties>(backend->devices[index].platform), 0};
  cl_int rc = CL_SUCCESS;
  d->ctx = clCreateContext(props, 1, &d->id, nullptr, nullptr, &rc);
  if (!d->ctx || rc != CL_SUCCESS) return Report(ClErr(rc, "clCreateContext"), err);
  d->name = DeviceString(d->id, CL_DEVICE_NAME);
  d->driver = DeviceString(d->id, CL_DRIVER_VERSION) + "/" + DeviceString(d->id, CL_DEVICE_VERSION);
  d->max_alloc = DeviceValue<cl_ulong>(d->id, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
  d->flag_sink = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, 64, nullptr, &rc);
  if (!d->flag_sink) return Report(ClErr(rc, "clCreateBuffer"), err);
  d->programs.Init(d->ctx, d->id, d->name, d->driver);
  *out_device = d.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void DeviceClose(tsr_device_t* device) { delete device; }

// ---- claim -----------------------------------------------------------------------------

// Default claim check: every present input and output is f32.
std::string AllF32(const tsr_node_view& n, const tsr_graph_view& g) {
  for (uint32_t k = 0; k < n.num_inputs + n.num_outputs; ++k) {
    int32_t vi = k < n.num_inputs ? n.inputs[k] : n.outputs[k - n.num_inputs];
    if (vi < 0 || static_cast<uint32_t>(vi) >= g.num_values) continue;
    int32_t dt = g.values[vi].dtype;
    if (dt != TSR_DTYPE_F32)
      return std::string(k < n.num_inputs ? "input " : "output ") +
             std::to_string(k < n.num_inputs ? k : k - n.num_inputs) + " has dtype " + plugin::DTypeName(dt) +
             "; the OpenCL kernel supports f32 only";
  }
  return "";
}

double EstimateUs(const tsr_node_view& n, const tsr_graph_view& g, double gflops) {
  double bytes = 0, out_elems = 0;
  for (uint32_t k = 0; k < n.num_inputs + n.num_outputs; ++k) {
    int32_t vi = k < n.num_inputs ? n.inputs[k] : n.outputs[k - n.num_inputs];
    if (vi < 0 || static_cast<uint32_t>(vi) >= g.num_values) continue;
    const tsr_value_view& v = g.values[vi];
    if (v.rank < 0) return 0;
    double e = 1;
    for (int32_t i = 0; i < v.rank; ++i) {
      if (v.dims[i] < 0) return 0;
      e *= static_cast<double>(v.dims[i]);
    }
    bytes += e * static_cast<double>(plugin::DTypeSize(v.dtype));
    if (k == n.num_inputs) out_elems = e;
  }
  double flops = out_elems;
  std::string op = n.op_type ? n.op_type : "";
  if (n.num_inputs >= 2 && n.inputs[1] >= 0 && static_cast<uint32_t>(n.inputs[1]) < g.num_values) {
    const tsr_value_view& w = g.values[n.inputs[1]];
    if ((op == "Conv" || op == "FusedConv") && w.rank >= 2 && w.dims[0] > 0) {
      double per = 1;
      for (int32_t i = 1; i < w.rank; ++i) per *= static_cast<double>(std::max<int64_t>(w.dims[i], 1));
      flops *= 2 * per;
    } else if ((op == "MatMul" || op == "Gemm" || op == "FusedMatMul" || op == "FusedGemm") && w.rank >= 1) {
      flops *= 2 * static_cast<double>(std::max<int64_t>(w.dims[0], 1));
    }
  }
  double t_compute = gflops > 0 ? flops / (gflops * 1e3) : 0;
  double t_memory = bytes / (20.0 * 1e3);  // assume ~20 GB/s
  return std::max(t_compute, t_memory) + 5.0;  // + launch overhead
}

int32_t Claim(tsr_device_t* device, const tsr_graph_view* graph, tsr_claim* out_claims, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!graph || (!out_claims && graph->num_nodes))
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: claim: graph or out_claims is NULL"), err);
  double gflops = 50;
  if (device) {
    double mhz = DeviceValue<cl_uint>(device->id, CL_DEVICE_MAX_CLOCK_FREQUENCY);
    double cu = std::max<cl_uint>(1, DeviceValue<cl_uint>(device->id, CL_DEVICE_MAX_COMPUTE_UNITS));
    gflops = std::max(1.0, cu * mhz * 2.0 * 4 / 1000.0);
  }
  for (uint32_t i = 0; i < graph->num_nodes; ++i) {
    const tsr_node_view& n = graph->nodes[i];
    tsr_claim& c = out_claims[i];
    std::memset(&c, 0, sizeof(c));
    const OpEntry* e = FindOp(n.domain, n.op_type);
    std::string reason;
    if (!e) {
      std::string dom = n.domain && *n.domain ? std::string(n.domain) + "." : "";
      reason = "no OpenCL kernel for op " + dom + (n.op_type ? n.op_type : "?");
    } else {
      reason = e->claim ? e->claim(n, *graph) : AllF32(n, *graph);
    }
    c.supported = reason.empty() ? 1 : 0;
    if (c.supported) c.est_time_us = EstimateUs(n, *graph, gflops);
    std::snprintf(c.reason, sizeof(c.reason), "%s", reason.c_str());
  }
  return TSR_OK;
  TSR_GUARD_END(err)
}

// ---- executables -------------------------------------------------------------------------

struct CompiledLaunch {
  Launch l;
  cl_kernel kernel = nullptr;
  cl_mem params = nullptr;
};

struct Step {
  std::string label;
  std::vector<int32_t> slots;  // value index per node slot (inputs, then outputs); -1 = omitted
  std::vector<cl_mem> host_consts;
  std::vector<CompiledLaunch> launches;
};

}  // namespace
}  // namespace tessera::ocl

struct tsr_executable_t {
  tsr_device_t* device = nullptr;
  std::vector<tessera::ocl::TensorArg> values;
  std::vector<std::string> value_names;
  std::vector<cl_mem> const_mems;  // per value: uploaded constants (nullptr otherwise)
  std::vector<uint8_t> value_used;
  std::vector<tessera::ocl::Step> steps;
  std::vector<cl_program> programs;  // retained
  bool checks = false;
  uint64_t scratch_bytes = 0;
  std::mutex mu;  // execute: kernel arguments + enqueue
  ~tsr_executable_t() {
    for (auto& s : steps) {
      for (auto& l : s.launches) {
        if (l.kernel) clReleaseKernel(l.kernel);
        if (l.params) clReleaseMemObject(l.params);
      }
      for (cl_mem m : s.host_consts)
        if (m) clReleaseMemObject(m);
    }
    for (cl_mem m : const_mems)
      if (m) clReleaseMemObject(m);
    for (cl_program p : programs)
      if (p) clReleaseProgram(p);
  }
};

namespace tessera::ocl {
namespace {

constexpr uint64_t kFlagBytes = 64;  // scratch bytes reserved for the error flag

cl_mem Upload(tsr_device_t* d, const void* data, uint64_t bytes, cl_int* rc) {
  static const uint64_t kZero[8] = {};
  if (bytes == 0) return clCreateBuffer(d->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, 64, const_cast<uint64_t*>(kZero), rc);
  return clCreateBuffer(d->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, const_cast<void*>(data), rc);
}

// Compiles one node's plan into `step`.
Err CompileStep(tsr_device_t* d, tsr_executable_t* exe, const NodeArgs& args, OpPlan& plan, Step* step) {
  std::string who = args.Describe();
  for (auto& hc : plan.host_consts) {
    cl_int rc = CL_SUCCESS;
    cl_mem m = Upload(d, hc.data(), hc.size(), &rc);
    if (!m) return ClErr(rc, "uploading constants");
    step->host_consts.push_back(m);
  }
  std::map<std::string, cl_program> progs;
  for (Launch& l : plan.launches) {
    CompiledLaunch cl;
    if (l.kind == Launch::kKernel && l.global > 0) {
      cl_program prog = nullptr;
      std::string source, key = l.program;
      if (key.empty()) {
        source = LibrarySource(l.kernel, &key);
        if (source.empty())
          return MakeErr(TSR_ERR_INTERNAL, "%s: no OpenCL source defines kernel '%s'", who.c_str(), l.kernel.c_str());
        key = "lib:" + key;
      }
      auto it = progs.find(key);
      if (it != progs.end()) {
        prog = it->second;
      } else {
        if (!l.program.empty()) {  // a generated program of this node
          for (auto& [k, s] : plan.programs)
            if (k == l.program) source = s;
          if (source.empty())
            return MakeErr(TSR_ERR_INTERNAL, "%s: no source for program '%s'", who.c_str(), l.program.c_str());
        }
        Err e = d->programs.Get(source, &prog);
        if (!e.ok()) return MakeErr(e.code, "%s: %s", who.c_str(), e.message.c_str());
        clRetainProgram(prog);
        exe->programs.push_back(prog);
        progs[key] = prog;
      }
      cl_int rc = CL_SUCCESS;
      cl.kernel = clCreateKernel(prog, l.kernel.c_str(), &rc);
      if (!cl.kernel) return MakeErr(TSR_ERR_INTERNAL, "%s: clCreateKernel(%s) failed: %s", who.c_str(),
                                     l.kernel.c_str(), ClErrorName(rc));
      bool need_params = false;
      for (const KArg& a : l.args) need_params |= a.kind == KArg::kParams;
      if (need_params) {
        cl.params = Upload(d, l.params.data(), l.params.size() * sizeof(int64_t), &rc);
        if (!cl.params) return ClErr(rc, "uploading kernel parameters");
      }
    }
    cl.l = std::move(l);
    step->launches.push_back(std::move(cl));
  }
  return Err::Ok();
}

int32_t Compile(tsr_device_t* device, const tsr_graph_view* seg, const tsr_compile_options* options,
                tsr_executable_t** out_executable, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!device || !seg || !out_executable)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: compile: device, segment or out_executable is NULL"),
                  err);
  // Options every backend accepts; OpenCL kernels always compute in f32.
  if (options && options->options) {
    for (uint32_t i = 0; i < options->num_options; ++i) {
      const tsr_option& o = options->options[i];
      if (o.key && std::strcmp(o.key, "precision") == 0 && o.value && std::strcmp(o.value, "f32") != 0 &&
          std::strcmp(o.value, "bf16") != 0)
        return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT,
                              "opencl backend: option precision='%s' (expected f32 or bf16)", o.value),
                      err);
    }
  }
  auto exe = std::make_unique<tsr_executable_t>();
  exe->device = device;
  exe->const_mems.assign(seg->num_values, nullptr);
  exe->value_used.assign(seg->num_values, 0);
  Err read = plugin::ReadSegmentValues(*seg, "opencl backend", &exe->values, &exe->value_names);
  if (!read.ok()) return Report(read, err);

  std::vector<std::string> errors;
  int32_t first_code = TSR_OK;
  uint64_t node_scratch = 0;
  for (uint32_t ni = 0; ni < seg->num_nodes; ++ni) {
    const tsr_node_view& n = seg->nodes[ni];
    Step step;
    step.label = NodeLabel(n);
    bool bad_index = false;
    NodeArgs args;
    args.node = &n;
    for (uint32_t k = 0; k < n.num_inputs + n.num_outputs; ++k) {
      int32_t vi = k < n.num_inputs ? n.inputs[k] : n.outputs[k - n.num_inputs];
      if (vi >= static_cast<int32_t>(seg->num_values)) bad_index = true;
      step.slots.push_back(vi < static_cast<int32_t>(seg->num_values) ? vi : -1);
      const TensorArg* ta = vi >= 0 && !bad_index ? &exe->values[vi] : nullptr;
      (k < n.num_inputs ? args.inputs : args.outputs).push_back(ta);
    }
    if (bad_index) {
      errors.push_back(step.label + ": refers to a value index outside the segment");
      continue;
    }
    const OpEntry* entry = FindOp(n.domain, n.op_type);
    if (!entry) {
      errors.push_back(step.label + ": no OpenCL kernel for op " + (n.op_type ? n.op_type : "?"));
      continue;
    }
    OpPlan plan;
    Err e = entry->build(args, &plan);
    if (e.ok()) e = CompileStep(device, exe.get(), args, plan, &step);
    if (!e.ok()) {
      if (first_code == TSR_OK) first_code = e.code;
      errors.push_back(e.message.empty() ? step.label + ": kernel creation failed" : e.message);
      continue;
    }
    exe->checks |= plan.checks_indices;
    node_scratch = std::max(node_scratch, plan.scratch_bytes);
    for (int32_t vi : step.slots)
      if (vi >= 0) exe->value_used[vi] = 1;
    exe->steps.push_back(std::move(step));
  }
  if (!errors.empty()) {
    int32_t code = first_code != TSR_OK ? first_code : TSR_ERR_UNSUPPORTED;
    return Report(MakeErr(code, "%s", plugin::JoinErrors("opencl backend", errors, seg->num_nodes).c_str()), err);
  }
  exe->scratch_bytes = (exe->checks || node_scratch) ? kFlagBytes + node_scratch : 0;
  // Constants read by the kernels, uploaded once.
  for (uint32_t i = 0; i < seg->num_values; ++i) {
    const TensorArg& t = exe->values[i];
    if (!t.const_data || !exe->value_used[i]) continue;
    cl_int rc = CL_SUCCESS;
    exe->const_mems[i] = Upload(device, t.const_data, static_cast<uint64_t>(t.nbytes()), &rc);
    if (!exe->const_mems[i]) return Report(ClErr(rc, "uploading a constant"), err);
  }
  *out_executable = exe.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void ExecutableDestroy(tsr_executable_t* exe) { delete exe; }

int32_t ExecutableScratchBytes(tsr_executable_t* exe, uint64_t* out_bytes, tsr_error* err) {
  if (!exe || !out_bytes)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: executable or out_bytes is NULL"), err);
  *out_bytes = exe->scratch_bytes;
  return TSR_OK;
}

struct MemAt {
  cl_mem mem = nullptr;
  uint64_t offset = 0;
};

int32_t Execute(tsr_executable_t* exe, tsr_stream_t* stream, const tsr_binding* bindings, uint32_t num_bindings,
                tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!exe || !stream)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: execute: executable or stream is NULL"), err);
  if (stream->device != exe->device)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT,
                          "opencl backend: execute: the stream belongs to another device than the executable"),
                  err);
  const size_t nv = exe->values.size();
  const size_t need_bindings = nv + (exe->scratch_bytes ? 1 : 0);
  if (num_bindings < need_bindings || (need_bindings && !bindings))
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: execute: %u bindings for %zu values%s",
                          num_bindings, nv, exe->scratch_bytes ? " + scratch" : ""),
                  err);
  std::vector<MemAt> at(nv);
  for (size_t i = 0; i < nv; ++i) {
    if (exe->const_mems[i]) {
      at[i] = {exe->const_mems[i], 0};
      continue;
    }
    if (!exe->value_used[i]) continue;
    const tsr_binding& b = bindings[i];
    if (!b.buffer)
      return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: execute: value '%s' has no buffer bound",
                            exe->value_names[i].c_str()),
                    err);
    uint64_t need = static_cast<uint64_t>(exe->values[i].nbytes());
    if (b.offset > b.buffer->bytes || need > b.buffer->bytes - b.offset)
      return Report(MakeErr(TSR_ERR_OUT_OF_RANGE,
                            "opencl backend: execute: value '%s' (%llu bytes at offset %llu) does not fit its buffer "
                            "of %llu bytes",
                            exe->value_names[i].c_str(), static_cast<unsigned long long>(need),
                            static_cast<unsigned long long>(b.offset),
                            static_cast<unsigned long long>(b.buffer->bytes)),
                    err);
    at[i] = {b.buffer->mem, b.offset};
  }
  MemAt scratch;
  if (exe->scratch_bytes) {
    const tsr_binding& b = bindings[nv];
    if (!b.buffer || b.offset > b.buffer->bytes || exe->scratch_bytes > b.buffer->bytes - b.offset)
      return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT,
                            "opencl backend: execute: the scratch binding (index %zu) must hold %llu bytes", nv,
                            static_cast<unsigned long long>(exe->scratch_bytes)),
                    err);
    scratch = {b.buffer->mem, b.offset};
  }
  cl_command_queue q = stream->queue;
  std::lock_guard<std::mutex> lock(exe->mu);
  // TESSERA_OPENCL_PROFILE=1: finish and time every kernel launch (stderr).
  static const bool profile = [] {
    const char* v = std::getenv("TESSERA_OPENCL_PROFILE");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  if (profile) clFinish(q);
  auto t_last = std::chrono::steady_clock::now();
  cl_int rc = CL_SUCCESS;
  if (exe->checks) {
    const cl_int zero = 0;
    rc = clEnqueueFillBuffer(q, scratch.mem, &zero, sizeof(zero), scratch.offset, sizeof(zero), 0, nullptr, nullptr);
    if (rc != CL_SUCCESS) return Report(ClErr(rc, "clEnqueueFillBuffer (error flag)"), err);
  }
  for (size_t si = 0; si < exe->steps.size(); ++si) {
    const Step& s = exe->steps[si];
    auto resolve = [&](const TensorRef& r, MemAt* out) -> bool {
      switch (r.kind) {
        case TensorRef::kSlot: {
          if (r.index < 0 || static_cast<size_t>(r.index) >= s.slots.size() || s.slots[r.index] < 0) return false;
          *out = at[s.slots[r.index]];
          out->offset += r.offset;
          return out->mem != nullptr;
        }
        case TensorRef::kHostConst:
          if (r.index < 0 || static_cast<size_t>(r.index) >= s.host_consts.size()) return false;
          *out = {s.host_consts[r.index], r.offset};
          return true;
        case TensorRef::kScratch:
          *out = {scratch.mem, scratch.offset + kFlagBytes + r.offset};
          return scratch.mem != nullptr;
        case TensorRef::kErrFlag:
          *out = exe->checks ? scratch : MemAt{exe->device->flag_sink, 0};
          return out->mem != nullptr;
      }
      return false;
    };
    for (const CompiledLaunch& cl : s.launches) {
      const Launch& l = cl.l;
      if (l.kind == Launch::kCopy) {
        MemAt src, dst;
        if (!resolve(l.src, &src) || !resolve(l.dst, &dst))
          return Report(MakeErr(TSR_ERR_INTERNAL, "opencl backend: %s: unresolved copy operand", s.label.c_str()), err);
        if (l.bytes == 0 || (src.mem == dst.mem && src.offset == dst.offset)) continue;
        rc = clEnqueueCopyBuffer(q, src.mem, dst.mem, src.offset, dst.offset, l.bytes, 0, nullptr, nullptr);
        if (rc != CL_SUCCESS) return Report(ClErr(rc, (s.label + ": clEnqueueCopyBuffer").c_str()), err);
        continue;
      }
      if (l.kind == Launch::kFill) {
        MemAt dst;
        if (!resolve(l.dst, &dst))
          return Report(MakeErr(TSR_ERR_INTERNAL, "opencl backend: %s: unresolved fill operand", s.label.c_str()), err);
        if (l.bytes == 0) continue;
        rc = clEnqueueFillBuffer(q, dst.mem, l.pattern.data(), l.pattern.size(), dst.offset, l.bytes, 0, nullptr,
                                 nullptr);
        if (rc != CL_SUCCESS) return Report(ClErr(rc, (s.label + ": clEnqueueFillBuffer").c_str()), err);
        continue;
      }
      if (l.global == 0) continue;
      cl_uint ai = 0;
      for (const KArg& a : l.args) {
        switch (a.kind) {
          case KArg::kTensor: {
            MemAt m;
            if (!resolve(a.ref, &m))
              return Report(MakeErr(TSR_ERR_INTERNAL, "opencl backend: %s: kernel %s: unresolved tensor argument",
                                    s.label.c_str(), l.kernel.c_str()),
                            err);
            cl_ulong off = m.offset;
            rc = clSetKernelArg(cl.kernel, ai++, sizeof(cl_mem), &m.mem);
            if (rc == CL_SUCCESS) rc = clSetKernelArg(cl.kernel, ai++, sizeof(cl_ulong), &off);
            break;
          }
          case KArg::kParams: rc = clSetKernelArg(cl.kernel, ai++, sizeof(cl_mem), &cl.params); break;
          case KArg::kI32: {
            cl_int v = a.i32;
            rc = clSetKernelArg(cl.kernel, ai++, sizeof(v), &v);
            break;
          }
          case KArg::kStepCode: {
            cl_int v = static_cast<cl_int>(si + 1);
            rc = clSetKernelArg(cl.kernel, ai++, sizeof(v), &v);
            break;
          }
          case KArg::kF32: {
            cl_float v = a.f32;
            rc = clSetKernelArg(cl.kernel, ai++, sizeof(v), &v);
            break;
          }
        }
        if (rc != CL_SUCCESS)
          return Report(ClErr(rc, (s.label + ": clSetKernelArg(" + l.kernel + ")").c_str()), err);
      }
      size_t global = static_cast<size_t>(l.global);
      if (l.nd_global.empty()) {
        rc = clEnqueueNDRangeKernel(q, cl.kernel, 1, nullptr, &global, nullptr, 0, nullptr, nullptr);
      } else {
        rc = clEnqueueNDRangeKernel(q, cl.kernel, static_cast<cl_uint>(l.nd_global.size()), nullptr,
                                    l.nd_global.data(), l.nd_local.empty() ? nullptr : l.nd_local.data(), 0, nullptr,
                                    nullptr);
      }
      if (rc != CL_SUCCESS) return Report(ClErr(rc, (s.label + ": clEnqueueNDRangeKernel(" + l.kernel + ")").c_str()), err);
      if (profile) {  // debugging aid: synchronous launches, one timing line each on stderr
        clFinish(q);
        auto now = std::chrono::steady_clock::now();
        std::fprintf(stderr, "[tessera opencl] %s %s: %.3f ms\n", s.label.c_str(), l.kernel.c_str(),
                     std::chrono::duration<double, std::milli>(now - t_last).count());
        t_last = now;
      }
    }
  }
  if (exe->checks) {
    cl_int flag = 0;
    rc = clEnqueueReadBuffer(q, scratch.mem, CL_TRUE, scratch.offset, sizeof(flag), &flag, 0, nullptr, nullptr);
    if (rc != CL_SUCCESS) return Report(ClErr(rc, "reading the error flag"), err);
    if (flag != 0) {
      size_t si = static_cast<size_t>(flag - 1);
      std::string who = si < exe->steps.size() ? exe->steps[si].label : std::string("a node");
      return Report(MakeErr(TSR_ERR_OUT_OF_RANGE, "opencl backend: %s: a data-dependent check failed (an index or label out of "
                                                    "range, or an AdamW step below 1)",
                            who.c_str()),
                    err);
    }
  }
  return TSR_OK;
  TSR_GUARD_END(err)
}

// ---- memory --------------------------------------------------------------------------------

int32_t BufferAlloc(tsr_device_t* device, uint64_t bytes, uint64_t alignment, tsr_buffer_t** out_buffer,
                    tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!device || !out_buffer)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: device or out_buffer is NULL"), err);
  if (alignment & (alignment - 1))
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: buffer alignment %llu is not a power of two",
                          static_cast<unsigned long long>(alignment)),
                  err);
  if (device->max_alloc && bytes > device->max_alloc)
    return Report(MakeErr(TSR_ERR_OUT_OF_MEMORY,
                          "opencl backend: %llu bytes exceed the device's largest allocation (%llu bytes)",
                          static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(device->max_alloc)),
                  err);
  cl_int rc = CL_SUCCESS;
  cl_mem m = clCreateBuffer(device->ctx, CL_MEM_READ_WRITE, std::max<uint64_t>(bytes, 1), nullptr, &rc);
  if (!m) return Report(ClErr(rc, "clCreateBuffer"), err);
  auto b = new (std::nothrow) tsr_buffer_t;
  if (!b) {
    clReleaseMemObject(m);
    return Report(MakeErr(TSR_ERR_OUT_OF_MEMORY, "opencl backend: out of memory"), err);
  }
  b->mem = m;
  b->bytes = bytes;
  *out_buffer = b;
  return TSR_OK;
  TSR_GUARD_END(err)
}

void BufferFree(tsr_buffer_t* buffer) {
  if (!buffer) return;
  if (buffer->mem) clReleaseMemObject(buffer->mem);
  delete buffer;
}

void* BufferHostPtr(tsr_buffer_t*) { return nullptr; }  // device memory is not host-addressable

Err CheckRange(const tsr_buffer_t* b, uint64_t offset, uint64_t bytes, const char* what) {
  if (!b) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: %s: buffer is NULL", what);
  if (offset > b->bytes || bytes > b->bytes - offset)
    return MakeErr(TSR_ERR_OUT_OF_RANGE,
                   "opencl backend: %s: %llu bytes at offset %llu exceed the buffer's %llu bytes", what,
                   static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(offset),
                   static_cast<unsigned long long>(b->bytes));
  return Err::Ok();
}

// Blocking: `src` may be reused as soon as this returns.
int32_t CopyH2D(tsr_stream_t* stream, tsr_buffer_t* dst, uint64_t dst_offset, const void* src, uint64_t bytes,
                tsr_error* err) {
  if (!stream) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: copy_h2d: stream is NULL"), err);
  Err e = CheckRange(dst, dst_offset, bytes, "copy_h2d");
  if (!e.ok()) return Report(e, err);
  if (bytes && !src) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: copy_h2d: src is NULL"), err);
  if (!bytes) return TSR_OK;
  cl_int rc = clEnqueueWriteBuffer(stream->queue, dst->mem, CL_TRUE, dst_offset, bytes, src, 0, nullptr, nullptr);
  return rc == CL_SUCCESS ? TSR_OK : Report(ClErr(rc, "copy_h2d: clEnqueueWriteBuffer"), err);
}

// Blocking: `dst` holds the data when this returns (after the stream's earlier work).
int32_t CopyD2H(tsr_stream_t* stream, void* dst, tsr_buffer_t* src, uint64_t src_offset, uint64_t bytes,
                tsr_error* err) {
  if (!stream) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: copy_d2h: stream is NULL"), err);
  Err e = CheckRange(src, src_offset, bytes, "copy_d2h");
  if (!e.ok()) return Report(e, err);
  if (bytes && !dst) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: copy_d2h: dst is NULL"), err);
  if (!bytes) return TSR_OK;
  cl_int rc = clEnqueueReadBuffer(stream->queue, src->mem, CL_TRUE, src_offset, bytes, dst, 0, nullptr, nullptr);
  return rc == CL_SUCCESS ? TSR_OK : Report(ClErr(rc, "copy_d2h: clEnqueueReadBuffer"), err);
}

int32_t CopyD2D(tsr_stream_t* stream, tsr_buffer_t* dst, uint64_t dst_offset, tsr_buffer_t* src, uint64_t src_offset,
                uint64_t bytes, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!stream) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: copy_d2d: stream is NULL"), err);
  Err e = CheckRange(dst, dst_offset, bytes, "copy_d2d (dst)");
  if (e.ok()) e = CheckRange(src, src_offset, bytes, "copy_d2d (src)");
  if (!e.ok()) return Report(e, err);
  if (!bytes || (src == dst && src_offset == dst_offset)) return TSR_OK;
  cl_int rc = CL_SUCCESS;
  const bool overlap = src == dst && src_offset < dst_offset + bytes && dst_offset < src_offset + bytes;
  if (!overlap) {
    rc = clEnqueueCopyBuffer(stream->queue, src->mem, dst->mem, src_offset, dst_offset, bytes, 0, nullptr, nullptr);
    return rc == CL_SUCCESS ? TSR_OK : Report(ClErr(rc, "copy_d2d: clEnqueueCopyBuffer"), err);
  }
  // Overlapping ranges of one buffer: through a temporary (released once the copies finish).
  cl_mem tmp = clCreateBuffer(stream->device->ctx, CL_MEM_READ_WRITE, bytes, nullptr, &rc);
  if (!tmp) return Report(ClErr(rc, "copy_d2d: clCreateBuffer"), err);
  rc = clEnqueueCopyBuffer(stream->queue, src->mem, tmp, src_offset, 0, bytes, 0, nullptr, nullptr);
  if (rc == CL_SUCCESS) rc = clEnqueueCopyBuffer(stream->queue, tmp, dst->mem, 0, dst_offset, bytes, 0, nullptr, nullptr);
  clReleaseMemObject(tmp);
  return rc == CL_SUCCESS ? TSR_OK : Report(ClErr(rc, "copy_d2d: clEnqueueCopyBuffer"), err);
  TSR_GUARD_END(err)
}

// ---- streams and events ---------------------------------------------------------------------

int32_t StreamCreate(tsr_device_t* device, tsr_stream_t** out_stream, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!device || !out_stream)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: device or out_stream is NULL"), err);
  cl_int rc = CL_SUCCESS;
  // Profiling lets event_elapsed_us read device timestamps of recorded markers.
  cl_command_queue q = clCreateCommandQueue(device->ctx, device->id, CL_QUEUE_PROFILING_ENABLE, &rc);
  if (!q) q = clCreateCommandQueue(device->ctx, device->id, 0, &rc);
  if (!q) return Report(ClErr(rc, "clCreateCommandQueue"), err);
  auto s = new (std::nothrow) tsr_stream_t;
  if (!s) {
    clReleaseCommandQueue(q);
    return Report(MakeErr(TSR_ERR_OUT_OF_MEMORY, "opencl backend: out of memory"), err);
  }
  s->device = device;
  s->queue = q;
  *out_stream = s;
  return TSR_OK;
  TSR_GUARD_END(err)
}

void StreamDestroy(tsr_stream_t* stream) {
  if (!stream) return;
  if (stream->queue) {
    clFinish(stream->queue);
    clReleaseCommandQueue(stream->queue);
  }
  delete stream;
}

int32_t StreamSynchronize(tsr_stream_t* stream, tsr_error* err) {
  if (!stream) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: stream is NULL"), err);
  cl_int rc = clFinish(stream->queue);
  return rc == CL_SUCCESS ? TSR_OK : Report(ClErr(rc, "clFinish"), err);
}

int32_t EventCreate(tsr_device_t* device, tsr_event_t** out_event, tsr_error* err) {
  TSR_GUARD_BEGIN
  if (!out_event) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: out_event is NULL"), err);
  auto ev = std::make_unique<tsr_event_t>();
  ev->device = device;
  *out_event = ev.release();
  return TSR_OK;
  TSR_GUARD_END(err)
}

void EventDestroy(tsr_event_t* event) {
  if (!event) return;
  if (event->ev) clReleaseEvent(event->ev);
  delete event;
}

int32_t EventRecord(tsr_event_t* event, tsr_stream_t* stream, tsr_error* err) {
  if (!event || !stream)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: event_record: event or stream is NULL"), err);
  cl_event ev = nullptr;
  cl_int rc = clEnqueueMarkerWithWaitList(stream->queue, 0, nullptr, &ev);
  if (rc != CL_SUCCESS) return Report(ClErr(rc, "clEnqueueMarkerWithWaitList"), err);
  if (event->ev) clReleaseEvent(event->ev);
  event->ev = ev;
  return TSR_OK;
}

int32_t StreamWaitEvent(tsr_stream_t* stream, tsr_event_t* event, tsr_error* err) {
  if (!event || !stream)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: stream_wait_event: event or stream is NULL"),
                  err);
  if (!event->ev) return TSR_OK;  // never recorded: complete
  cl_int rc = clEnqueueBarrierWithWaitList(stream->queue, 1, &event->ev, nullptr);
  return rc == CL_SUCCESS ? TSR_OK : Report(ClErr(rc, "clEnqueueBarrierWithWaitList"), err);
}

int32_t EventSynchronize(tsr_event_t* event, tsr_error* err) {
  if (!event) return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: event is NULL"), err);
  if (!event->ev) return TSR_OK;
  cl_int rc = clWaitForEvents(1, &event->ev);
  return rc == CL_SUCCESS ? TSR_OK : Report(ClErr(rc, "clWaitForEvents"), err);
}

// Device time between two recorded markers (CL_PROFILING_COMMAND_END of each).
int32_t EventElapsedUs(tsr_event_t* start, tsr_event_t* end, double* out_us, tsr_error* err) {
  if (!start || !end || !out_us)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: event_elapsed_us: NULL argument"), err);
  if (!start->ev || !end->ev)
    return Report(MakeErr(TSR_ERR_FAILED_PRECONDITION, "opencl backend: event_elapsed_us: an event was never recorded"),
                  err);
  if (start->device != end->device)
    return Report(MakeErr(TSR_ERR_INVALID_ARGUMENT, "opencl backend: event_elapsed_us: events of different devices"),
                  err);
  cl_ulong t0 = 0, t1 = 0;
  cl_int rc = clGetEventProfilingInfo(start->ev, CL_PROFILING_COMMAND_END, sizeof(t0), &t0, nullptr);
  if (rc == CL_SUCCESS) rc = clGetEventProfilingInfo(end->ev, CL_PROFILING_COMMAND_END, sizeof(t1), &t1, nullptr);
  if (rc == CL_PROFILING_INFO_NOT_AVAILABLE)
    return Report(MakeErr(TSR_ERR_FAILED_PRECONDITION,
                          "opencl backend: event_elapsed_us: no profiling data (event not complete, or the queue has "
                          "no profiling)"),
                  err);
  if (rc != CL_SUCCESS) return Report(ClErr(rc, "clGetEventProfilingInfo"), err);
  *out_us = (static_cast<double>(t1) - static_cast<double>(t0)) / 1e3;
  return TSR_OK;
}

const tsr_backend_api kApi = {
    sizeof(tsr_backend_api),
    TSR_BACKEND_ABI_VERSION,
    "opencl",
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
    nullptr,  // choose_layouts: every value plain (row-major)
    nullptr,  // executable_serialize: no artifacts (programs are cached on disk instead)
    nullptr,  // compile_cached
};

}  // namespace
}  // namespace tessera::ocl

extern "C" TSR_BACKEND_EXPORT const tsr_backend_api* tsr_backend_entry(uint32_t host_abi) {
  if (TSR_BACKEND_ABI_MAJOR(host_abi) != TSR_BACKEND_ABI_MAJOR(TSR_BACKEND_ABI_VERSION)) return nullptr;
  return &tessera::ocl::kApi;
}
