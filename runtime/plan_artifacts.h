// Cached compiled artifacts of plan files (runtime/plan_file.h PlanArtifact;
// backend.h executable_serialize / compile_cached): the session-side rules.
//
// Loading: an artifact is used for a segment only when the backend name, the
// backend's version string, the device's name and the segment's hash all equal
// what was recorded, and the backend has compile_cached; otherwise it is
// ignored with a note and the segment is compiled normally. A backend that
// says the artifact does not fit (TSR_ERR_FAILED_PRECONDITION) is also a
// note; any other error from compile_cached (e.g. a corrupt blob) fails the
// load with a message saying the plan file's artifact is bad.
#pragma once

#include <string>
#include <vector>

#include "runtime/plan_file.h"
#include "tessera/backend.h"

namespace tessera {

struct ArtifactReport {
  bool from_plan = false;  // the session was loaded from a plan file
  int64_t present = 0;     // artifacts the file holds
  int64_t used = 0;        // segments compiled from an artifact
  int64_t ignored = 0;     // artifacts present but not used (see notes)
  std::vector<std::string> notes;
};

// What the session knows about the device a segment runs on.
struct ArtifactTarget {
  std::string backend;      // plugin name
  const tsr_backend_api* api = nullptr;
  tsr_device_t* device = nullptr;
  std::string device_name;  // tsr_device_props.name
  std::string role;         // for messages
};

// Compiles segment `seg` from its artifact when one applies: *out_exe is set
// on success, left null (with a note in *report) when the artifact is absent or
// ignored. Errors only for a corrupt/unusable artifact.
Status CompileFromArtifact(const std::vector<PlanArtifact>& artifacts, const Plan& plan, int32_t seg,
                           const ArtifactTarget& target, const tsr_graph_view& view,
                           const tsr_compile_options& options, tsr_executable_t** out_exe, ArtifactReport* report);

// The artifact of one compiled segment, when the backend makes one
// (executable_serialize present and non-empty); false otherwise.
Result<bool> SerializeArtifact(const Plan& plan, int32_t seg, const ArtifactTarget& target, tsr_executable_t* exe,
                               PlanArtifact* out);

}  // namespace tessera
