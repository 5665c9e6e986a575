#include "runtime/plan_artifacts.h"

#include "runtime/backend_registry.h"

namespace tessera {

Status CompileFromArtifact(const std::vector<PlanArtifact>& artifacts, const Plan& plan, int32_t seg,
                           const ArtifactTarget& t, const tsr_graph_view& view, const tsr_compile_options& options,
                           tsr_executable_t** out_exe, ArtifactReport* report) {
  *out_exe = nullptr;
  const PlanArtifact* a = nullptr;
  for (const auto& x : artifacts)
    if (x.segment == seg && x.backend == t.backend) a = &x;
  if (!a) return Status::Ok();
  const std::string what = StrCat("segment ", seg, " (", t.role, ")");
  auto ignore = [&](const std::string& why) {
    report->ignored++;
    report->notes.push_back(StrCat(what, ": artifact ignored: ", why, "; compiled instead"));
    return Status::Ok();
  };
  const std::string version = t.api->version ? t.api->version : "";
  if (a->backend_version != version)
    return ignore(StrCat("made by ", a->backend, " backend version '", a->backend_version, "', this is '", version,
                         "'"));
  if (a->device_name != t.device_name)
    return ignore(StrCat("made for device '", a->device_name, "', this is '", t.device_name, "'"));
  if (a->segment_hash != SegmentHash(plan, seg)) return ignore("the segment's nodes differ from the artifact's");
  auto cached = TSR_API_SLOT(t.api, compile_cached);
  if (!cached) return ignore("the backend cannot load artifacts (no compile_cached)");
  tsr_error err{};
  int32_t rc = cached(t.device, &view, &options, a->blob.data(), a->blob.size(), out_exe, &err);
  if (rc == TSR_ERR_FAILED_PRECONDITION) {
    *out_exe = nullptr;
    return ignore(err.message);
  }
  if (rc != TSR_OK) {
    *out_exe = nullptr;
    return FromPluginError(rc, err, StrCat("the plan file's compiled artifact for ", what, " is corrupt or unusable"));
  }
  report->used++;
  return Status::Ok();
}

Result<bool> SerializeArtifact(const Plan& plan, int32_t seg, const ArtifactTarget& t, tsr_executable_t* exe,
                               PlanArtifact* out) {
  auto ser = TSR_API_SLOT(t.api, executable_serialize);
  if (!ser || !exe) return false;
  const void* data = nullptr;
  uint64_t bytes = 0;
  tsr_error err{};
  int32_t rc = ser(exe, &data, &bytes, &err);
  if (rc != TSR_OK)
    return FromPluginError(rc, err, StrCat("serializing the compiled segment ", seg, " on ", t.role));
  if (!data || bytes == 0) return false;
  out->segment = seg;
  out->backend = t.backend;
  out->backend_version = t.api->version ? t.api->version : "";
  out->device_name = t.device_name;
  out->segment_hash = SegmentHash(plan, seg);
  out->blob.assign(static_cast<const char*>(data), bytes);
  return true;
}

}  // namespace tessera
