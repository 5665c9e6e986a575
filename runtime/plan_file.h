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
//   then (offset, size, checksum) of an optional fourth section, artifacts
//   (all zero when absent; older readers ignore it): a u64 index length, the
//   index (JSON array: segment, backend, backend_version, device_name,
//   segment_hash, offset, bytes, checksum per blob) and the blobs, each
//   64-byte aligned relative to the blob area.
//   sections follow, each starting on a 64-byte boundary.
// Loading memory-maps the file; constant tensors borrow the mapping (no
// copy). A wrong magic, another format version, a truncated file, a section
// outside the file or a checksum mismatch is rejected with a clear error.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "compiler/plan.h"

namespace tessera {

inline constexpr char kPlanMagic[8] = {'T', 'S', 'R', 'P', 'L', 'A', 'N', '\0'};
inline constexpr uint32_t kPlanFormatVersion = 1;

// True when the bytes start with the plan magic.
bool LooksLikePlan(const void* data, size_t size);

// A backend's compiled form of one segment (backend.h executable_serialize),
// reusable by the same backend version on a device of the same name.
struct PlanArtifact {
  int32_t segment = 0;          // index into Plan::segments
  std::string backend;          // plugin name
  std::string backend_version;  // tsr_backend_api.version
  std::string device_name;      // tsr_device_props.name
  uint64_t segment_hash = 0;    // SegmentHash() of that segment when saved
  std::string blob;             // opaque to the host
};

// Hash of a segment's node list (names, ops, attributes' names, value names,
// dtypes and shapes): an artifact applies only to the segment it came from.
uint64_t SegmentHash(const Plan& plan, int32_t segment);

// Writes plan (+ options, for the record, + optional artifacts) to path.
Status SavePlanFile(const Plan& plan, const std::map<std::string, std::string>& options, const std::string& path,
                    const std::vector<PlanArtifact>* artifacts = nullptr);

struct LoadedPlan {
  Plan plan;
  std::map<std::string, std::string> options;
  std::vector<PlanArtifact> artifacts;  // checksums verified; empty when the file has none
};
Result<LoadedPlan> LoadPlanFile(const std::string& path);
// From bytes in memory (copied into a private buffer first).
Result<LoadedPlan> LoadPlanBytes(const void* data, size_t size);

// 64-bit checksum used by the format.
uint64_t PlanChecksum(const void* data, size_t size);

}  // namespace tessera
