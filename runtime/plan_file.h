// The .tplan file: a compiled Plan with its weights, loadable without
// re-running the compiler.
//
// Layout (little-endian):
//   [0, 128)  header: magic "TSRPLAN\0", u32 format version, u32 header size,
//             then (offset, size, checksum) u64 triples for three sections:
//             metadata (JSON: devices, buffers, segments, transfers, steps,
//             pass statistics, options), graph (ONNX ModelProto of the
//             optimized graph whose constants are external data pointing into
//             the weights section, location "@weights"), weights (each tensor
//             64-byte aligned).
//   sections follow, each starting on a 64-byte boundary.
// Loading memory-maps the file; constant tensors borrow the mapping (no
// copy). A wrong magic, another format version, a truncated file, a section
// outside the file or a checksum mismatch is rejected with a clear error.
#pragma once

#include <map>
#include <string>

#include "compiler/plan.h"

namespace tessera {

inline constexpr char kPlanMagic[8] = {'T', 'S', 'R', 'P', 'L', 'A', 'N', '\0'};
inline constexpr uint32_t kPlanFormatVersion = 1;

// True when the bytes start with the plan magic.
bool LooksLikePlan(const void* data, size_t size);

// Writes plan (+ options, for the record) to path.
Status SavePlanFile(const Plan& plan, const std::map<std::string, std::string>& options, const std::string& path);

struct LoadedPlan {
  Plan plan;
  std::map<std::string, std::string> options;
};
Result<LoadedPlan> LoadPlanFile(const std::string& path);
// From bytes in memory (copied into a private buffer first).
Result<LoadedPlan> LoadPlanBytes(const void* data, size_t size);

// 64-bit checksum used by the format.
uint64_t PlanChecksum(const void* data, size_t size);

}  // namespace tessera
