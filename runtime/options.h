// Session options: every setting has a string key (C API tsr_options_set,
// CLI flags) that maps onto this struct.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graph/status.h"

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

  // Applies one key/value (see tessera.h for the keys). Unknown keys and bad
  // values are InvalidArgument errors naming the key and the value.
  Status Set(const std::string& key, const std::string& value);
  // "threads=2 opt_level=2 ..." for plan metadata and messages.
  std::map<std::string, std::string> ToMap() const;
};

}  // namespace tessera
