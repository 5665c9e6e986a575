#include "runtime/options.h"

#include <cerrno>
#include <cstdlib>

namespace tessera {
namespace {

Result<int64_t> ParseInt(const std::string& key, const std::string& v, int64_t lo, int64_t hi) {
  if (v.empty()) return InvalidArgument("option '", key, "' needs an integer value");
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return InvalidArgument("option '", key, "': '", v, "' is not an integer");
  if (x < lo || x > hi) return InvalidArgument("option '", key, "': ", x, " is outside [", lo, ", ", hi, "]");
  return static_cast<int64_t>(x);
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

}  // namespace

Status SessionOptions::Set(const std::string& key, const std::string& value) {
  // ---- hetero: placement and tracing ----
  if (key.rfind("placement.", 0) == 0) {
    std::string what = key.substr(10);
    if (what.empty()) return InvalidArgument("option '", key, "': missing node name or op type after 'placement.'");
    if (value.empty()) return InvalidArgument("option '", key, "': empty device role");
    placement[what] = value;
    return Status::Ok();
  }
  if (key == "trace") {
    trace = value;
    return Status::Ok();
  }
  // ---- end hetero ----
  if (key == "devices" || key == "device") {
    auto list = SplitList(value);
    if (list.empty()) return InvalidArgument("option 'devices': empty device list");
    devices = list;
  } else if (key == "threads") {
    TSR_ASSIGN_OR_RETURN(int64_t t, ParseInt(key, value, 0, 4096));
    threads = static_cast<int>(t);
    threads_set_by_policy = false;  // config
  } else if (key == "opt_level") {
    TSR_ASSIGN_OR_RETURN(int64_t t, ParseInt(key, value, 0, 2));
    opt_level = static_cast<int>(t);
  } else if (key.rfind("dim.", 0) == 0) {
    std::string name = key.substr(4);
    if (name.empty()) return InvalidArgument("option '", key, "': missing dim name after 'dim.'");
    TSR_ASSIGN_OR_RETURN(int64_t d, ParseInt(key, value, 0, int64_t{1} << 40));
    dims[name] = d;
  } else if (key == "max_alloc_bytes") {
    auto t = ParseByteSize(value);  // config: bytes, or "2GiB"-style sizes (runtime/config.h)
    if (!t.ok()) return InvalidArgument("option 'max_alloc_bytes': ", t.status().message());
    max_alloc_bytes = *t;
  } else if (key == "strict") {
    if (value == "1" || value == "true") strict = true;
    else if (value == "0" || value == "false") strict = false;
    else return InvalidArgument("option 'strict': expected 0/1/true/false, got '", value, "'");
  } else if (key == "dump_after") {
    dump_after = value;
  } else if (key == "precision") {
    if (value != "f32" && value != "fp32" && value != "bf16")
      return InvalidArgument("option 'precision': expected f32 or bf16, got '", value, "'");
    // precision helper: bf16 runs through compiler/precision.h (apply_precision).
    precision = value == "bf16" ? "bf16" : "f32";
  // ---- config: deployment config and its settings ----
  } else if (key == "config") {
    // "PATH" applies [inference]; "PATH#training" / "PATH#inference" pick the table.
    std::string path = value;
    Workload w = Workload::kInference;
    for (Workload cand : {Workload::kTraining, Workload::kInference}) {
      std::string suffix = std::string("#") + WorkloadName(cand);
      if (path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
        path.resize(path.size() - suffix.size());
        w = cand;
        break;
      }
    }
    if (path.empty()) return InvalidArgument("option 'config': empty file path");
    TSR_ASSIGN_OR_RETURN(DeploymentConfig cfg, LoadConfigFile(path));
    return ApplyConfig(cfg, w);
  } else if (key == "policy") {
    if (value == "throughput") {
      if (threads == 0) {
        threads = PhysicalCoreCount();
        threads_set_by_policy = true;
      }
    } else if (value == "latency") {
      if (threads_set_by_policy) threads = 0;
      threads_set_by_policy = false;
    } else {
      return InvalidArgument("option 'policy': expected latency or throughput, got '", value, "'");
    }
    policy = value;
  } else if (key.rfind("memory.", 0) == 0) {
    std::string role = key.substr(7);
    if (!IsValidDeviceRole(role) || role == "auto" || !IsKnownBackendName(role.substr(0, role.find(':'))))
      return InvalidArgument("option '", key, "': '", role, "' is not a device role of a known backend");
    auto b = ParseByteSize(value);
    if (!b.ok()) return InvalidArgument("option '", key, "': ", b.status().message());
    memory_caps[role] = *b;
  } else if (key.rfind("backend.", 0) == 0) {
    size_t dot = key.find('.', 8);
    std::string name = key.substr(8, dot == std::string::npos ? std::string::npos : dot - 8);
    if (dot == std::string::npos || dot + 1 >= key.size())
      return InvalidArgument("option '", key, "': expected backend.<backend>.<option>");
    if (!IsKnownBackendName(name)) return InvalidArgument("option '", key, "': unknown backend '", name, "'");
    backend_options[name][key.substr(dot + 1)] = value;
  } else if (key.rfind("training.", 0) == 0) {
    TSR_ASSIGN_OR_RETURN(std::string v, CheckTrainingSetting(key.substr(9), value));
    training[key.substr(9)] = v;
  // ---- end config ----
  } else {
    return InvalidArgument("unknown option '", key,
                           "' (known: devices, threads, opt_level, dim.<name>, max_alloc_bytes, strict, "
                           "dump_after, precision, config, policy, memory.<role>, backend.<name>.<key>, "
                           "training.<key>, placement.<node>, trace)");
  }
  return Status::Ok();
}

std::map<std::string, std::string> SessionOptions::ToMap() const {
  std::map<std::string, std::string> m;
  std::string d;
  for (size_t i = 0; i < devices.size(); ++i) d += (i ? "," : "") + devices[i];
  m["devices"] = d;
  m["threads"] = std::to_string(threads);
  m["opt_level"] = std::to_string(opt_level);
  m["max_alloc_bytes"] = std::to_string(max_alloc_bytes);
  m["strict"] = strict ? "1" : "0";
  m["precision"] = precision;
  for (const auto& [k, v] : dims) m["dim." + k] = std::to_string(v);
  m["policy"] = policy;  // config
  for (const auto& [k, v] : memory_caps) m["memory." + k] = std::to_string(v);  // config
  for (const auto& [b, kv] : backend_options)
    for (const auto& [k, v] : kv) m["backend." + b + "." + k] = v;  // config
  for (const auto& [k, v] : training) m["training." + k] = v;  // config
  for (const auto& [k, v] : placement) m["placement." + k] = v;  // hetero
  return m;
}

// ---- config ----
Status SessionOptions::ApplyConfig(const DeploymentConfig& config, Workload workload) {
  const WorkloadConfig& w = config.Get(workload);
  const char* wname = WorkloadName(workload);
  if (!w.present) {
    std::string has = config.inference.present ? " (it has [inference])"
                                               : config.training.present ? " (it has [training])" : " (it is empty)";
    return InvalidArgument(config.source, ": no [", wname, "] table", has);
  }
  SessionOptions o = *this;
  // Errors carry the setting's FILE:LINE:COL when the parser recorded it.
  auto set = [&](const std::string& key, const std::string& value) -> Status {
    Status st = o.Set(key, value);
    if (st.ok()) return st;
    auto it = w.locations.find(key);
    return st.WithContext(it != w.locations.end() ? it->second : StrCat(config.source, ": [", wname, "]"));
  };
  if (w.devices) {
    std::string list;
    for (size_t i = 0; i < w.devices->size(); ++i) list += (i ? "," : "") + (*w.devices)[i];
    TSR_RETURN_IF_ERROR(set("devices", list));
  }
  if (w.precision) TSR_RETURN_IF_ERROR(set("precision", *w.precision));
  if (w.strict) TSR_RETURN_IF_ERROR(set("strict", *w.strict ? "1" : "0"));
  if (w.threads) TSR_RETURN_IF_ERROR(set("threads", std::to_string(*w.threads)));
  if (w.opt_level) TSR_RETURN_IF_ERROR(set("opt_level", std::to_string(*w.opt_level)));
  if (w.max_alloc_bytes) TSR_RETURN_IF_ERROR(set("max_alloc_bytes", std::to_string(*w.max_alloc_bytes)));
  for (const auto& [role, bytes] : w.memory_caps) TSR_RETURN_IF_ERROR(set("memory." + role, std::to_string(bytes)));
  for (const auto& [name, size] : w.dims) TSR_RETURN_IF_ERROR(set("dim." + name, std::to_string(size)));
  for (const auto& [what, role] : w.placement) TSR_RETURN_IF_ERROR(set("placement." + what, role));
  if (w.trace) TSR_RETURN_IF_ERROR(set("trace", *w.trace));
  for (const auto& [b, kv] : w.backend_options)
    for (const auto& [k, v] : kv) TSR_RETURN_IF_ERROR(set("backend." + b + "." + k, v));
  for (const auto& [k, v] : w.training) TSR_RETURN_IF_ERROR(set("training." + k, v));
  // Last: throughput fills in threads only when neither the table nor an
  // earlier setting chose them.
  if (w.policy) TSR_RETURN_IF_ERROR(set("policy", *w.policy));
  *this = std::move(o);
  return Status::Ok();
}
// ---- end config ----

}  // namespace tessera
