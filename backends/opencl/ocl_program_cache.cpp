#include "backends/opencl/ocl_program_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

namespace tessera::ocl {
namespace {

using plugin::Err;
using plugin::MakeErr;

constexpr char kMagic[8] = {'T', 'S', 'R', 'C', 'L', 'B', '1', '\n'};

uint64_t Fnv1a(const void* data, size_t n, uint64_t h = 1469598103934665603ull) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

// mkdir -p; false when the directory cannot be made.
bool MakeDirs(const std::string& path) {
  if (path.empty()) return false;
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::string ProgramCache::CacheDir() {
  if (const char* d = std::getenv("TESSERA_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/tessera/opencl";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/tessera/opencl";
  return "";
}

const char* ProgramCache::BuildOptions() { return "-cl-std=CL1.2"; }

void ProgramCache::Init(cl_context ctx, cl_device_id dev, std::string device_name, std::string driver) {
  ctx_ = ctx;
  dev_ = dev;
  device_name_ = std::move(device_name);
  driver_ = std::move(driver);
}

void ProgramCache::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [k, p] : programs_) clReleaseProgram(p);
  programs_.clear();
}

ProgramCache::Stats ProgramCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Err ProgramCache::Get(const std::string& source, cl_program* out) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t h = Fnv1a(source.data(), source.size());
  const std::string opts = BuildOptions();
  const std::string* parts[] = {&device_name_, &driver_, &opts};
  for (const std::string* s : parts) {
    h = Fnv1a("\0", 1, h);
    h = Fnv1a(s->data(), s->size(), h);
  }
  char key[32];
  std::snprintf(key, sizeof(key), "%016llx", static_cast<unsigned long long>(h));
  auto it = programs_.find(key);
  if (it != programs_.end()) {
    ++stats_.memory_hits;
    *out = it->second;
    return Err::Ok();
  }
  const std::string dir = CacheDir();
  const std::string path = dir.empty() ? "" : dir + "/" + key + ".clbin";
  cl_program prog = path.empty() ? nullptr : LoadFromDisk(path);
  if (prog) {
    ++stats_.disk_hits;
  } else {
    Err e = BuildFromSource(source, &prog);
    if (!e.ok()) return e;
    ++stats_.builds;
    if (!path.empty() && MakeDirs(dir)) SaveToDisk(prog, path);
  }
  programs_[key] = prog;
  *out = prog;
  return Err::Ok();
}

Err ProgramCache::BuildFromSource(const std::string& source, cl_program* out) {
  const char* src = source.c_str();
  size_t len = source.size();
  cl_int rc = CL_SUCCESS;
  cl_program p = clCreateProgramWithSource(ctx_, 1, &src, &len, &rc);
  if (!p) return MakeErr(TSR_ERR_INTERNAL, "opencl backend: clCreateProgramWithSource failed (%d)", rc);
  rc = clBuildProgram(p, 1, &dev_, BuildOptions(), nullptr, nullptr);
  if (rc != CL_SUCCESS) {
    size_t n = 0;
    clGetProgramBuildInfo(p, dev_, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
    std::string log(n, '\0');
    if (n) clGetProgramBuildInfo(p, dev_, CL_PROGRAM_BUILD_LOG, n, log.data(), nullptr);
    clReleaseProgram(p);
    if (log.size() > 600) log = log.substr(0, 600) + "...";
    return MakeErr(TSR_ERR_INTERNAL, "opencl backend: building a kernel program for '%s' failed (%d): %s",
                   device_name_.c_str(), rc, log.c_str());
  }
  *out = p;
  return Err::Ok();
}

cl_program ProgramCache::LoadFromDisk(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return nullptr;
  char magic[8];
  uint64_t len = 0, sum = 0;
  if (!f.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0 || !f.read(reinterpret_cast<char*>(&len), 8) ||
      !f.read(reinterpret_cast<char*>(&sum), 8) || len == 0 || len > (1ull << 30)) {
    ++stats_.disk_rejects;
    return nullptr;
  }
  std::vector<unsigned char> bin(static_cast<size_t>(len));
  if (!f.read(reinterpret_cast<char*>(bin.data()), static_cast<std::streamsize>(len)) ||
      Fnv1a(bin.data(), bin.size()) != sum) {
    ++stats_.disk_rejects;
    return nullptr;
  }
  const unsigned char* ptr = bin.data();
  size_t n = bin.size();
  cl_int status = CL_SUCCESS, rc = CL_SUCCESS;
  cl_program p = clCreateProgramWithBinary(ctx_, 1, &dev_, &n, &ptr, &status, &rc);
  if (!p || rc != CL_SUCCESS || status != CL_SUCCESS) {
    if (p) clReleaseProgram(p);
    ++stats_.disk_rejects;
    return nullptr;
  }
  if (clBuildProgram(p, 1, &dev_, BuildOptions(), nullptr, nullptr) != CL_SUCCESS) {
    clReleaseProgram(p);
    ++stats_.disk_rejects;
    return nullptr;
  }
  return p;
}

void ProgramCache::SaveToDisk(cl_program prog, const std::string& path) {
  size_t size = 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof(size), &size, nullptr) != CL_SUCCESS || size == 0)
    return;
  std::vector<unsigned char> bin(size);
  unsigned char* ptr = bin.data();
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof(ptr), &ptr, nullptr) != CL_SUCCESS) return;
  uint64_t len = size, sum = Fnv1a(bin.data(), bin.size());
  // Write to a unique temporary and rename, so readers never see a partial file.
  std::string tmp = path + ".tmp" + std::to_string(getpid()) + "_" + std::to_string(reinterpret_cast<uintptr_t>(this));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return;
    f.write(kMagic, 8);
    f.write(reinterpret_cast<const char*>(&len), 8);
    f.write(reinterpret_cast<const char*>(&sum), 8);
    f.write(reinterpret_cast<const char*>(bin.data()), static_cast<std::streamsize>(bin.size()));
    if (!f) {
      f.close();
      std::remove(tmp.c_str());
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}

}  // namespace tessera::ocl
