// Session options: every setting has a string key (C API tsr_options_set,
// CLI flags) that maps onto this struct.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graph/status.h"
#include "runtime/config.h"

namespace tessera {

struct SessionOptions {
  std::vector<std::string> devices = {"cpu"};  // roles in priority order; "auto" = every usable device
  int threads = 0;                  // 0 = backend default (physical cores)
  int opt_level = 2;
  std::map<std::string, int64_t> dims;  // symbolic dim bindings
  int64_t max_alloc_bytes = int64_t{16} << 30;
  bool strict = false;
  std::string dump_after;
  std::string precision = "f32";

  // ---- config: deployment-config settings (keys "policy", "memory.<role>",
  // "backend.<name>.<key>", "training.<key>", "config") ----
  // "latency" | "throughput" (runtime/config.h says what each does today).
  std::string policy = "latency";
  // Per-device memory caps in bytes, by device role. The session rejects a
  // plan whose arena on that device exceeds the cap (kOutOfMemory) and passes
  // the cap to the device's backend as compile option "memory_cap".
  std::map<std::string, int64_t> memory_caps;
  // backend name -> option key -> value: extra compile options for that
  // backend's segments (the session appends them to precision/threads).
  std::map<std::string, std::map<std::string, std::string>> backend_options;
  // [training] optimizer/loop settings (validated by config.h's rules), for
  // the training session.
  std::map<std::string, std::string> training;
  // Applies one workload table of a config: every setting the table has,
  // through Set() (so the same checks apply); settings the table lacks keep
  // their values. Atomic: on error *this is unchanged. Errors name the config
  // source. A missing table is an error ("deploy.toml has no [training] table").
  Status ApplyConfig(const DeploymentConfig& config, Workload workload);
  // ---- end config ----

  // ---- hetero: placement and tracing (keys "placement.<node name or op type>", "trace") ----
  // Forced placement: node name, or op type ("MatMul", "tessera.FusedAttention"),
  // -> device role ("cpu", "opencl:0"). A node name wins over its op type.
  std::map<std::string, std::string> placement;
  // Chrome trace JSON written here (every run's segments and transfers) when
  // the session is destroyed. "" = $TESSERA_TRACE when set, else off;
  // "off" = off even when $TESSERA_TRACE is set.
  std::string trace;
  // ---- end hetero ----

  // Applies one key/value (see tessera.h for the keys). Unknown keys and bad
  // values are InvalidArgument errors naming the key and the value.
  Status Set(const std::string& key, const std::string& value);
  // "threads=2 opt_level=2 ..." for plan metadata and messages.
  std::map<std::string, std::string> ToMap() const;

  // config: true while `threads` holds the value policy=throughput chose (not
  // one the user set), so policy=latency can undo it. Internal.
  bool threads_set_by_policy = false;
};

}  // namespace tessera
