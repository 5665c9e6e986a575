#include "runtime/file_write.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace tessera {
namespace {

bool WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

Status WriteFileAtomic(const std::string& path, const std::vector<std::pair<const void*, size_t>>& pieces,
                       const std::string& what) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = StrCat(path, ".tmp.", static_cast<long long>(::getpid()), ".", counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create '", tmp, "' to write ", what, ": ", std::strerror(errno));
  bool ok = true;
  for (const auto& [data, n] : pieces) {
    if (n > 0 && !(ok = WriteAll(fd, data, n))) break;
  }
  int err = ok ? 0 : errno;
  if (ok && ::fsync(fd) != 0) {
    ok = false;
    err = errno;
  }
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    return IoError("cannot write ", what, ": ", std::strerror(err));
  }
  return Status::Ok();
}

}  // namespace tessera
