// libFuzzer target: bytes -> a file -> ReadSafetensors and LoadNpy
// (runtime/safetensors.cpp, runtime/datasets.cpp).
//
// Contract checked: on any input both readers return a Status (ok or an
// error) and never crash, leak or hit undefined behaviour. An accepted
// safetensors file must also survive a round trip: written back with
// WriteSafetensors and read again, it yields the same tensors and metadata
// (names, file order, dtypes, shapes, bytes); an accepted .npy likewise
// through SaveNpy/LoadNpy. A mismatch aborts (a finding).
//
// The readers take paths, so each input is written to a per-process file in
// /dev/shm (or $TMPDIR). No backend, runtime session or GPU is used.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "runtime/datasets.h"
#include "runtime/safetensors.h"

namespace {

using namespace tessera;
namespace fs = std::filesystem;

std::string ScratchPath(const char* suffix) {
  std::error_code ec;
  fs::path dir = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path(ec);
  return (dir / ("tsr_fuzz_st_" + std::to_string(::getpid()) + suffix)).string();
}

bool WriteFile(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

bool Same(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.dims() == b.dims() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

void Check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "fuzz_safetensors: round trip mismatch: %s\n", what);
    std::abort();
  }
}

void RunOne(const uint8_t* data, size_t size) {
  static const std::string in = ScratchPath(".in");
  static const std::string out = ScratchPath(".out");
  if (!WriteFile(in, data, size)) return;

  auto st = ReadSafetensors(in);
  if (st.ok()) {
    std::vector<std::pair<std::string, const Tensor*>> tensors;
    for (const auto& [name, t] : st->tensors) tensors.emplace_back(name, &t);
    Status w = WriteSafetensors(out, tensors, st->metadata);
    if (w.ok()) {
      auto again = ReadSafetensors(out);
      Check(again.ok(), "re-reading a written safetensors file failed");
      Check(again->metadata == st->metadata, "metadata differs");
      Check(again->tensors.size() == st->tensors.size(), "tensor count differs");
      for (size_t i = 0; i < st->tensors.size(); ++i) {
        Check(again->tensors[i].first == st->tensors[i].first, "tensor name/order differs");
        Check(Same(again->tensors[i].second, st->tensors[i].second), "tensor contents differ");
      }
    } else {
      // Only invalid UTF-8 in a name/metadata can make a readable file unwritable.
      Check(w.code() == StatusCode::kInvalidArgument, "WriteSafetensors failed with a non-input error");
    }
  }

  auto npy = LoadNpy(in);
  if (npy.ok()) {
    Status w = SaveNpy(out, *npy);
    if (w.ok()) {
      auto again = LoadNpy(out);
      Check(again.ok(), "re-reading a written .npy failed");
      Check(Same(*again, *npy), ".npy contents differ");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  RunOne(data, size);
  return 0;
}
