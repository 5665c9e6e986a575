// The backend registry: finds plugin libraries (libtessera_backend_<name>.so)
// and loads them with dlopen.
//
// Search order (first found wins per backend name):
//   1. every folder in $TESSERA_BACKEND_PATH (colon-separated)
//   2. the install tree: <libdir of libtessera.so>/tessera/backends
//   3. the build tree this library was built in
// A plugin that fails to load, lacks the entry symbol or has another ABI major
// version is recorded with the reason (never fatal). The registry is created
// once per process and is thread-safe.
//
// Plugins are loaded lazily: creating the registry only lists the files;
// Find(name) loads (dlopen, init, device enumeration) just that backend, and
// backends() loads all of them. A CPU-only session therefore never pays for
// initialising OpenCL platforms or loading the CUDA libraries.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "graph/status.h"
#include "tessera/backend.h"

namespace tessera {

struct LoadedBackend {
  std::string name;       // from the plugin table ("cpu") or the file name if it failed
  std::string path;
  std::string version;
  const tsr_backend_api* api = nullptr;  // null when unusable
  tsr_backend_t* ctx = nullptr;
  int32_t device_count = 0;
  std::vector<tsr_device_props> devices;
  std::string unusable_reason;  // set when the plugin or its hardware is unusable
  bool usable() const { return api && ctx && device_count > 0; }
};

// Slot of an API table if the table is large enough to hold it, else null.
#define TSR_API_SLOT(api, slot) \
  (((api)->struct_size >= offsetof(tsr_backend_api, slot) + sizeof((api)->slot)) ? (api)->slot : nullptr)

class BackendRegistry {
 public:
  // The process-wide registry.
  static BackendRegistry& Get();
  // Every plugin found (loads those not loaded yet). Entries are never removed
  // or moved, so pointers to them stay valid for the process's life.
  const std::vector<std::unique_ptr<LoadedBackend>>& backends();
  // The backend called `name` (loading it first if needed), or nullptr.
  const LoadedBackend* Find(const std::string& name);
  std::vector<std::string> search_dirs() const { return dirs_; }

 private:
  BackendRegistry();
  void ListDir(const std::string& dir);
  void LoadFile(const std::string& stem, const std::string& path);  // caller holds mu_
  const LoadedBackend* FindLoaded(const std::string& name) const;   // caller holds mu_
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> pending_;  // (file stem, path) not loaded yet, search order
  std::vector<std::unique_ptr<LoadedBackend>> backends_;
  std::vector<std::string> dirs_;
};

// Status from a plugin's return code + error struct, with context.
Status FromPluginError(int32_t code, const tsr_error& err, const std::string& context);

}  // namespace tessera
