// Writing files that other tools read (checkpoints, .npy): all or nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "graph/status.h"

namespace tessera {

// Writes `pieces` one after the other to a temporary file in `path`'s folder,
// fsyncs it and renames it over `path`, so readers see the old file or the
// whole new one. `what` names the file in errors ("safetensors file 'x'").
// The temporary file is removed on failure.
Status WriteFileAtomic(const std::string& path, const std::vector<std::pair<const void*, size_t>>& pieces,
                       const std::string& what);

}  // namespace tessera
