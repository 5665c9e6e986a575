// Deployment configs: a TOML file that selects, per workload (inference or
// training), the devices, precision, policy, memory caps, strict mode, dim
// bindings, placement overrides, tracing and backend options.
//
//   [inference]
//   devices   = ["opencl:0", "cpu"]   # roles in priority order, or the string "auto"
//   precision = "f32"                  # "f32" | "bf16" | "f16"
//   policy    = "latency"              # "latency" | "throughput" (see Policy below)
//   strict    = false                  # fail instead of falling back to the next device
//   threads   = 4                      # >= 1 (CPU threads per run)
//   opt_level = 2                      # 0..2
//   trace     = "trace.json"           # Chrome trace output path
//   [inference.memory]
//   max_alloc_bytes = "4GiB"           # cap on one tensor / arena allocation
//   "cpu" = "2GiB"                     # per-device caps, keyed by device role
//   [inference.dims]      batch = 8    # symbolic dim bindings
//   [inference.placement] "MatMul" = "opencl:0"   # node name or op type -> role
//   [inference.backend.cpu]  key = value          # options passed to that backend
//   [training]                         # the same keys, plus the optimizer keys
//   optimizer = "adamw"  lr = 1e-3  epochs = 3  batch_size = 32  loss = "cross_entropy" ...
//
// Byte sizes are integers (bytes) or strings "<number>[ ]<unit>" with unit B,
// KB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB (powers of 1024), unit case
// ignored ("1.5GiB", "512 MiB", "100000").
//
// Validation: every key is known or an error (a typo is never ignored), every
// value is type- and range-checked, and every error message starts with
// "SOURCE:LINE:COL: " (SOURCE = the path or the source_name given) and names
// the full dotted key, what it must be and what it got, e.g.
//   deploy.toml:7:11: inference.threads must be an integer >= 1, got "two"
//
// Policy, as implemented today (runtime/options.cpp ApplyConfig):
//   latency    - the default behaviour: threads (when not set) are left to the
//                backend's default (the CPU backend uses the physical cores),
//                runs take execution contexts from the session's pool.
//   throughput - threads (when not set) are pinned to the machine's physical
//                core count by the host, so the value is explicit in the
//                options, in plan metadata and in every backend's compile
//                options; the policy is recorded in the options ("policy") for
//                the session to size its context pool. Nothing else differs yet.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "graph/status.h"

namespace tessera {

enum class Workload { kInference, kTraining };
// "inference" | "training"
const char* WorkloadName(Workload w);
Result<Workload> ParseWorkload(const std::string& name);

// One workload's table. Unset optional fields leave SessionOptions unchanged
// when applied; maps are merged key by key.
struct WorkloadConfig {
  bool present = false;  // the table appears in the file
  std::optional<std::vector<std::string>> devices;  // {"auto"} for devices = "auto"
  std::optional<std::string> precision;             // "f32" | "bf16" | "f16"
  std::optional<std::string> policy;                // "latency" | "throughput"
  std::optional<bool> strict;
  std::optional<int> threads;                       // 1..4096
  std::optional<int> opt_level;                     // 0..2
  std::optional<int64_t> max_alloc_bytes;           // [<workload>.memory] max_alloc_bytes
  std::map<std::string, int64_t> memory_caps;       // device role -> bytes
  std::map<std::string, int64_t> dims;              // symbol -> size
  std::map<std::string, std::string> placement;     // node name or op type -> device role
  std::optional<std::string> trace;                 // output path
  // backend name ("cpu", "opencl", ...) -> option key -> value as text
  // (integers in decimal, floats as written by %.17g, booleans "1"/"0").
  std::map<std::string, std::map<std::string, std::string>> backend_options;
  // [training] only: optimizer and loop settings, key -> value as text (same
  // conversions as backend_options). Known keys and their checks are listed
  // in config.cpp (kTrainingKeys).
  std::map<std::string, std::string> training;
  // Option key (SessionOptions::Set: "threads", "dim.batch", "backend.cpu.x",
  // ...) -> "SOURCE:LINE:COL" of its value, for errors found when applying.
  std::map<std::string, std::string> locations;
};

struct DeploymentConfig {
  std::string source;  // path or source_name, as used in messages
  WorkloadConfig inference;
  WorkloadConfig training;

  const WorkloadConfig& Get(Workload w) const { return w == Workload::kTraining ? training : inference; }
};

// Parses and validates. Errors are InvalidArgument "SOURCE:LINE:COL: ..."
// (NotFound / IoError when the file cannot be read).
Result<DeploymentConfig> LoadConfigFile(const std::string& path);
Result<DeploymentConfig> LoadConfigString(std::string_view text, const std::string& source_name);

// Parses a byte size as in the file ("2GiB", "512 MiB", "100"). Exposed for
// option setters that take the same syntax.
Result<int64_t> ParseByteSize(const std::string& text);

// True for "name" or "name:index" with name = [a-z][a-z0-9_]*, index = digits,
// or "auto". Does not check that the device exists.
bool IsValidDeviceRole(const std::string& role);

// Backend names a config may key settings by ([<w>.backend.NAME], memory
// caps): cpu, opencl, cuda, hip, xrt, null.
bool IsKnownBackendName(const std::string& name);

// Checks one [training] setting given as text (the option key
// "training.<key>"); returns the normalized text (booleans "1"/"0").
Result<std::string> CheckTrainingSetting(const std::string& key, const std::string& text);

// Physical cores this process may use: CPUs in its affinity mask divided by
// hardware threads per core (the CPU backend's default thread count), >= 1.
int PhysicalCoreCount();

}  // namespace tessera
