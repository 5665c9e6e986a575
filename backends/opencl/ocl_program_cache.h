// Built OpenCL programs of one device, cached in memory and on disk.
//
// Key: FNV-1a 64 of (source, device name, driver version, build options).
// Disk: <dir>/<key>.clbin holding a small header (magic, binary length,
// checksum) and the CL_PROGRAM_BINARIES of the device; dir = $TESSERA_CACHE_DIR,
// else $XDG_CACHE_HOME/tessera/opencl, else $HOME/.cache/tessera/opencl. An
// unreadable, truncated or corrupt entry, or one the driver refuses, is
// ignored and rewritten after a build from source. Disk errors never fail a
// build (the cache is an optimisation). Thread-safe.
#pragma once

#include <CL/cl.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "backends/common/plugin_util.h"

namespace tessera::ocl {

class ProgramCache {
 public:
  void Init(cl_context ctx, cl_device_id dev, std::string device_name, std::string driver);
  // A built program for `source` (owned by the cache: retain it to keep it past Clear()).
  plugin::Err Get(const std::string& source, cl_program* out);
  void Clear();
  ~ProgramCache() { Clear(); }

  // Statistics (for tests and logs).
  struct Stats {
    int memory_hits = 0, disk_hits = 0, builds = 0, disk_rejects = 0;
  };
  Stats stats() const;

  static std::string CacheDir();
  static const char* BuildOptions();

 private:
  plugin::Err BuildFromSource(const std::string& source, cl_program* out);
  cl_program LoadFromDisk(const std::string& path);
  void SaveToDisk(cl_program prog, const std::string& path);

  cl_context ctx_ = nullptr;
  cl_device_id dev_ = nullptr;
  std::string device_name_, driver_;
  mutable std::mutex mu_;
  std::map<std::string, cl_program> programs_;
  Stats stats_;
};

}  // namespace tessera::ocl
