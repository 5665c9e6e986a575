#include "runtime/backend_registry.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace tessera {
namespace fs = std::filesystem;

Status FromPluginError(int32_t code, const tsr_error& err, const std::string& context) {
  if (code == TSR_OK) return Status::Ok();
  StatusCode sc = (code >= 0 && code <= 9) ? static_cast<StatusCode>(code) : StatusCode::kInternal;
  std::string msg = err.message[0] ? std::string(err.message) : std::string("(no message)");
  return Status(sc, context.empty() ? msg : context + ": " + msg);
}

BackendRegistry& BackendRegistry::Get() {
  static BackendRegistry* r = new BackendRegistry();  // never destroyed: plugins stay loaded
  return *r;
}

BackendRegistry::BackendRegistry() {
  if (const char* env = std::getenv("TESSERA_BACKEND_PATH")) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) dirs_.push_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&FromPluginError), &info) && info.dli_fname) {
    fs::path lib = fs::path(info.dli_fname).parent_path();
    // Installed layout: <libdir>/libtessera.so and <libdir>/tessera/backends/
    // (TESSERA_BACKEND_INSTALL_SUBDIR = <libdir>/tessera/backends relative to the prefix).
    dirs_.push_back((lib / "tessera" / "backends").string());
  }
  dirs_.push_back(TESSERA_BACKEND_BUILD_DIR);
  for (const auto& d : dirs_) ListDir(d);
}

void BackendRegistry::ListDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string fn = e.path().filename().string();
    if (fn.rfind("libtessera_backend_", 0) == 0 && e.path().extension() == ".so") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::string stem = fs::path(f).stem().string().substr(std::strlen("libtessera_backend_"));
    bool listed = false;  // an earlier folder provides it
    for (const auto& p : pending_) listed = listed || p.first == stem;
    if (!listed) pending_.emplace_back(stem, f);
  }
}

const std::vector<std::unique_ptr<LoadedBackend>>& BackendRegistry::backends() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [stem, path] : pending_) LoadFile(stem, path);
  pending_.clear();
  return backends_;
}

const LoadedBackend* BackendRegistry::Find(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (const LoadedBackend* b = FindLoaded(name)) return b;
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (pending_[i].first != name) continue;
    auto [stem, path] = pending_[i];
    pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
    LoadFile(stem, path);
    return FindLoaded(name);
  }
  // A plugin may call itself something other than its file name: load the rest.
  if (pending_.empty()) return nullptr;
  for (const auto& [stem, path] : pending_) LoadFile(stem, path);
  pending_.clear();
  return FindLoaded(name);
}

void BackendRegistry::LoadFile(const std::string& stem, const std::string& path) {
  if (FindLoaded(stem)) return;  // a plugin loaded earlier already calls itself that
  auto b = std::make_unique<LoadedBackend>();
  b->name = stem;
  b->path = path;
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    b->unusable_reason = StrCat("cannot load plugin: ", e ? e : "unknown dlopen error");
    backends_.push_back(std::move(b));
    return;
  }
  auto entry = reinterpret_cast<tsr_backend_entry_fn>(dlsym(h, TSR_BACKEND_ENTRY_SYMBOL));
  if (!entry) {
    b->unusable_reason = StrCat("plugin has no '", TSR_BACKEND_ENTRY_SYMBOL, "' symbol");
    backends_.push_back(std::move(b));
    return;
  }
  const tsr_backend_api* api = entry(TSR_BACKEND_ABI_VERSION);
  if (!api) {
    b->unusable_reason = "plugin refused this host's ABI version";
  } else if (TSR_BACKEND_ABI_MAJOR(api->abi_version) != TSR_BACKEND_ABI_MAJOR(TSR_BACKEND_ABI_VERSION)) {
    b->unusable_reason = StrCat("plugin ABI major version ", TSR_BACKEND_ABI_MAJOR(api->abi_version),
                                " differs from the host's ", TSR_BACKEND_ABI_MAJOR(TSR_BACKEND_ABI_VERSION));
  } else if (api->struct_size < offsetof(tsr_backend_api, event_create)) {
    b->unusable_reason = "plugin's function table is too small for this ABI";
  } else {
    b->name = api->name ? api->name : stem;
    b->version = api->version ? api->version : "";
    tsr_error err{};
    tsr_backend_t* ctx = nullptr;
    int32_t rc = api->init(nullptr, &ctx, &err);
    if (rc != TSR_OK) {
      b->unusable_reason = StrCat("init failed: ", err.message);
    } else {
      b->api = api;
      b->ctx = ctx;
      int32_t count = 0;
      tsr_error derr{};
      rc = api->device_count(ctx, &count, &derr);
      if (rc != TSR_OK || count <= 0) {
        b->unusable_reason = derr.message[0] ? derr.message : "no devices";
        count = 0;
      }
      b->device_count = count;
      for (int32_t i = 0; i < count; ++i) {
        tsr_device_props p{};
        p.struct_size = sizeof(p);
        tsr_error perr{};
        if (api->device_props(ctx, i, &p, &perr) == TSR_OK) b->devices.push_back(p);
      }
    }
  }
  backends_.push_back(std::move(b));
}

const LoadedBackend* BackendRegistry::FindLoaded(const std::string& name) const {
  for (const auto& b : backends_)
    if (b->name == name) return b.get();
  return nullptr;
}

}  // namespace tessera
