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
  if (key == "devices" || key == "device") {
    auto list = SplitList(value);
    if (list.empty()) return InvalidArgument("option 'devices': empty device list");
    devices = list;
  } else if (key == "threads") {
    TSR_ASSIGN_OR_RETURN(int64_t t, ParseInt(key, value, 0, 4096));
    threads = static_cast<int>(t);
  } else if (key == "opt_level") {
    TSR_ASSIGN_OR_RETURN(int64_t t, ParseInt(key, value, 0, 2));
    opt_level = static_cast<int>(t);
  } else if (key.rfind("dim.", 0) == 0) {
    std::string name = key.substr(4);
    if (name.empty()) return InvalidArgument("option '", key, "': missing dim name after 'dim.'");
    TSR_ASSIGN_OR_RETURN(int64_t d, ParseInt(key, value, 0, int64_t{1} << 40));
    dims[name] = d;
  } else if (key == "max_alloc_bytes") {
    TSR_ASSIGN_OR_RETURN(int64_t t, ParseInt(key, value, 1, INT64_MAX));
    max_alloc_bytes = t;
  } else if (key == "strict") {
    if (value == "1" || value == "true") strict = true;
    else if (value == "0" || value == "false") strict = false;
    else return InvalidArgument("option 'strict': expected 0/1/true/false, got '", value, "'");
  } else if (key == "dump_after") {
    dump_after = value;
  } else if (key == "precision") {
    if (value != "f32" && value != "fp32" && value != "bf16")
      return InvalidArgument("option 'precision': expected f32 or bf16, got '", value, "'");
    if (value == "bf16") return Unsupported("option 'precision': bf16 execution is not implemented yet (fp32 only)");
    precision = "f32";
  } else if (key == "config") {
    return Unsupported("option 'config': deployment config files (TOML) are not implemented yet; ",
                       "use devices/threads/strict options instead");
  } else {
    return InvalidArgument("unknown option '", key,
                           "' (known: devices, threads, opt_level, dim.<name>, max_alloc_bytes, strict, "
                           "dump_after, precision, config)");
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
  return m;
}

}  // namespace tessera
