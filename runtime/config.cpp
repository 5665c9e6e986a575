// Deployment config parsing (see config.h). The only translation unit that
// includes toml++: it is heavy to compile.
#include "runtime/config.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

// toml++ 3.3 guards some parser invariants with assert() (debug builds) or
// an optimizer "assume" (release builds under clang); malformed input can
// break them (e.g. "devices = [}"), and the parser then reports a syntax
// error anyway. Library code must not abort or hit undefined behaviour on bad
// input, so both become no-ops here: TOML_ASSERT is ours, and NDEBUG is hidden
// while the header is read so TOML_ASSERT_ASSUME maps to it, not to an assume.
// (tests/unit/runtime/test_config.cpp MalformedInputNeverCrashes; checked
// under ASan+UBSan with random mutations.)
#ifdef NDEBUG
#define TSR_CONFIG_HAD_NDEBUG 1
#undef NDEBUG
#endif
#define TOML_ASSERT(expr) static_cast<void>(0)
#define TOML_EXCEPTIONS 0
#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>
#ifdef TSR_CONFIG_HAD_NDEBUG
#define NDEBUG 1
#undef TSR_CONFIG_HAD_NDEBUG
#endif

namespace tessera {
namespace {

// Backend names accepted as keys ([<w>.backend.NAME], [<w>.memory] roles):
// keys must be checkable, so a misspelt backend is an error, not ignored.
const std::vector<std::string> kKnownBackends = {"cpu", "opencl", "cuda", "hip", "xrt", "null"};

const std::vector<std::string> kWorkloadKeys = {"devices",   "precision", "policy", "strict",    "threads",
                                                "opt_level", "memory",    "dims",   "placement", "trace",
                                                "backend"};

// [training] optimizer / loop settings. kind: 'n' number, 'i' integer,
// 's' string, 'b' bool. Numbers must lie in [lo, hi] (hi_open: hi excluded;
// lo_open: lo excluded).
struct TrainingKey {
  const char* name;
  char kind;
  double lo, hi;
  bool lo_open, hi_open;
  const char* choices;  // for strings: "a|b|c", or nullptr for any non-empty string
};
const TrainingKey kTrainingKeys[] = {
    {"optimizer", 's', 0, 0, false, false, "sgd|adam|adamw"},
    {"lr", 'n', 0, 1e9, true, false, nullptr},
    {"epochs", 'i', 1, 1e12, false, false, nullptr},
    {"steps", 'i', 1, 1e15, false, false, nullptr},
    {"batch_size", 'i', 1, 1e12, false, false, nullptr},
    {"loss", 's', 0, 0, false, false, nullptr},
    {"momentum", 'n', 0, 1, false, true, nullptr},
    {"nesterov", 'b', 0, 0, false, false, nullptr},
    {"weight_decay", 'n', 0, 1e9, false, false, nullptr},
    {"beta1", 'n', 0, 1, false, true, nullptr},
    {"beta2", 'n', 0, 1, false, true, nullptr},
    {"epsilon", 'n', 0, 1, true, false, nullptr},
    {"grad_clip", 'n', 0, 1e30, true, false, nullptr},
    {"label_smoothing", 'n', 0, 1, false, true, nullptr},
    {"ignore_index", 'i', -1e15, 1e15, false, false, nullptr},
    {"seed", 'i', 0, 9.2e18, false, false, nullptr},
    {"warmup_steps", 'i', 0, 1e15, false, false, nullptr},
    {"checkpoint", 's', 0, 0, false, false, nullptr},
    {"checkpoint_every", 'i', 1, 1e15, false, false, nullptr},
    {"grad_accum_steps", 'i', 1, 1e6, false, false, nullptr},
};

const TrainingKey* FindTrainingKey(const std::string& k) {
  for (const auto& t : kTrainingKeys)
    if (k == t.name) return &t;
  return nullptr;
}

std::string Join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// " (did you mean 'x'?)" when one known name is close to `got`, else "".
std::string Suggest(const std::string& got, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = 3;
  for (const auto& k : known) {
    size_t d = EditDistance(got, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

std::string FormatDouble(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string Quote(std::string_view s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      q += '?';
      continue;
    }
    q += c;
  }
  return q + "\"";
}

// How a value reads in a message: "two" (quoted), 3, 2.5, true, an array, a table.
std::string Describe(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return Quote(*n.value<std::string_view>());
    case toml::node_type::integer: return std::to_string(*n.value<int64_t>());
    case toml::node_type::floating_point: return FormatDouble(*n.value<double>());
    case toml::node_type::boolean: return *n.value<bool>() ? "true" : "false";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

bool ValidSymbol(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x21 || c == '=' || c == '"') return false;
  return true;
}

class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  std::string Loc(const toml::source_region& where) const {
    if (where.begin.line == 0) return source_;
    return StrCat(source_, ":", where.begin.line, ":", where.begin.column);
  }

  template <typename... Args>
  Status Error(const toml::source_region& where, Args&&... args) const {
    return InvalidArgument(Loc(where), ": ", std::forward<Args>(args)...);
  }

  Status ParseRoot(const toml::table& root, DeploymentConfig* out) {
    for (auto&& [k, v] : root) {
      std::string key(k.str());
      Workload w;
      if (key == "inference") {
        w = Workload::kInference;
      } else if (key == "training") {
        w = Workload::kTraining;
      } else {
        return Error(k.source(), "unknown top-level key '", key, "'", Suggest(key, {"inference", "training"}),
                     " (a config has [inference] and/or [training] tables)");
      }
      const toml::table* t = v.as_table();
      if (!t) return Error(v.source(), key, " must be a table ([", key, "]), got ", Describe(v));
      WorkloadConfig* wc = w == Workload::kTraining ? &out->training : &out->inference;
      wc->present = true;
      TSR_RETURN_IF_ERROR(ParseWorkloadTable(*t, key, w, wc));
    }
    return Status::Ok();
  }

  Status ParseWorkloadTable(const toml::table& t, const std::string& w, Workload kind, WorkloadConfig* wc) {
    for (auto&& [k, v] : t) {
      const std::string key(k.str());
      const std::string full = w + "." + key;
      // Option keys map 1:1 for the scalar settings; tables record their own.
      if (key != "memory" && key != "dims" && key != "placement" && key != "backend")
        wc->locations[FindTrainingKey(key) ? "training." + key : key] = Loc(v.source());
      if (key == "devices") {
        TSR_ASSIGN_OR_RETURN(wc->devices, Devices(v, full));
      } else if (key == "precision") {
        TSR_ASSIGN_OR_RETURN(wc->precision, Enum(v, full, {"f32", "bf16", "f16"}));
      } else if (key == "policy") {
        TSR_ASSIGN_OR_RETURN(wc->policy, Enum(v, full, {"latency", "throughput"}));
      } else if (key == "strict") {
        if (!v.is_boolean()) return Error(v.source(), full, " must be true or false, got ", Describe(v));
        wc->strict = *v.value<bool>();
      } else if (key == "threads") {
        TSR_ASSIGN_OR_RETURN(int64_t n, Int(v, full, 1, 4096));
        wc->threads = static_cast<int>(n);
      } else if (key == "opt_level") {
        TSR_ASSIGN_OR_RETURN(int64_t n, Int(v, full, 0, 2));
        wc->opt_level = static_cast<int>(n);
      } else if (key == "memory") {
        TSR_RETURN_IF_ERROR(Memory(v, full, wc));
      } else if (key == "dims") {
        TSR_RETURN_IF_ERROR(Dims(v, full, wc));
      } else if (key == "placement") {
        TSR_RETURN_IF_ERROR(Placement(v, full, wc));
      } else if (key == "trace") {
        if (!v.is_string() || v.value<std::string_view>()->empty())
          return Error(v.source(), full, " must be a non-empty string (an output file path), got ", Describe(v));
        wc->trace = std::string(*v.value<std::string_view>());
      } else if (key == "backend") {
        TSR_RETURN_IF_ERROR(Backends(v, full, wc));
      } else if (kind == Workload::kTraining && FindTrainingKey(key)) {
        TSR_ASSIGN_OR_RETURN(wc->training[key], Training(v, full, *FindTrainingKey(key)));
      } else if (kind == Workload::kInference && FindTrainingKey(key)) {
        return Error(k.source(), "unknown key '", full, "': '", key, "' is a training setting; put it in [training]");
      } else {
        std::vector<std::string> known = kWorkloadKeys;
        if (kind == Workload::kTraining)
          for (const auto& tk : kTrainingKeys) known.push_back(tk.name);
        return Error(k.source(), "unknown key '", full, "'", Suggest(key, known), " (known keys: ", Join(known),
                     ")");
      }
    }
    return Status::Ok();
  }

  Result<int64_t> Int(const toml::node& v, const std::string& full, int64_t lo, int64_t hi) {
    std::string want = StrCat("an integer >= ", lo);
    if (!v.is_integer() || *v.value<int64_t>() < lo)
      return Error(v.source(), full, " must be ", want, ", got ", Describe(v));
    if (*v.value<int64_t>() > hi) return Error(v.source(), full, " must be at most ", hi, ", got ", Describe(v));
    return *v.value<int64_t>();
  }

  Result<std::string> Enum(const toml::node& v, const std::string& full, const std::vector<std::string>& choices) {
    std::vector<std::string> quoted;
    for (const auto& c : choices) quoted.push_back(Quote(c));
    std::string want = "one of " + Join(quoted);
    if (!v.is_string()) return Error(v.source(), full, " must be a string, ", want, ", got ", Describe(v));
    std::string s(*v.value<std::string_view>());
    if (std::find(choices.begin(), choices.end(), s) == choices.end())
      return Error(v.source(), full, " must be ", want, ", got ", Quote(s));
    return s;
  }

  Result<std::string> Role(const toml::node& v, const std::string& full, bool allow_auto) {
    if (!v.is_string())
      return Error(v.source(), full, " must be a device role string (e.g. \"cpu\", \"opencl:0\"), got ",
                   Describe(v));
    std::string s(*v.value<std::string_view>());
    if (!IsValidDeviceRole(s) || (!allow_auto && s == "auto"))
      return Error(v.source(), full, " has a bad device role ", Quote(s),
                   ": expected NAME or NAME:INDEX (lowercase name, e.g. \"cpu\", \"opencl:0\")",
                   allow_auto ? " or \"auto\"" : "");
    return s;
  }

  Result<std::vector<std::string>> Devices(const toml::node& v, const std::string& full) {
    if (v.is_string()) {
      if (*v.value<std::string_view>() == "auto") return std::vector<std::string>{"auto"};
      return Error(v.source(), full, " must be an array of device roles (e.g. [", Quote(*v.value<std::string_view>()),
                   "]) or the string \"auto\", got ", Describe(v));
    }
    const toml::array* a = v.as_array();
    if (!a) return Error(v.source(), full, " must be an array of device roles or the string \"auto\", got ", Describe(v));
    if (a->empty()) return Error(v.source(), full, " must list at least one device");
    std::vector<std::string> roles;
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      TSR_ASSIGN_OR_RETURN(std::string r, Role(e, StrCat(full, "[", i, "]"), true));
      if (std::find(roles.begin(), roles.end(), r) != roles.end())
        return Error(e.source(), full, " lists ", Quote(r), " twice");
      roles.push_back(r);
    }
    return roles;
  }

  Result<int64_t> Bytes(const toml::node& v, const std::string& full) {
    if (v.is_integer()) {
      if (*v.value<int64_t>() < 1) return Error(v.source(), full, " must be a byte size >= 1, got ", Describe(v));
      return *v.value<int64_t>();
    }
    if (!v.is_string())
      return Error(v.source(), full, " must be a byte size (an integer, or a string such as \"2GiB\"), got ",
                   Describe(v));
    auto b = ParseByteSize(std::string(*v.value<std::string_view>()));
    if (!b.ok()) return Error(v.source(), full, ": ", b.status().message());
    return *b;
  }

  const toml::table* Table(const toml::node& v, const std::string& full, Status* st) {
    const toml::table* t = v.as_table();
    if (!t) *st = Error(v.source(), full, " must be a table ([", full, "]), got ", Describe(v));
    return t;
  }

  Status Memory(const toml::node& v, const std::string& full, WorkloadConfig* wc) {
    Status st;
    const toml::table* t = Table(v, full, &st);
    if (!t) return st;
    for (auto&& [k, e] : *t) {
      std::string key(k.str());
      std::string fk = full + "." + key;
      if (key == "max_alloc_bytes") {
        TSR_ASSIGN_OR_RETURN(wc->max_alloc_bytes, Bytes(e, fk));
        wc->locations["max_alloc_bytes"] = Loc(e.source());
        continue;
      }
      std::string name = key.substr(0, key.find(':'));
      if (!IsValidDeviceRole(key) || key == "auto" ||
          std::find(kKnownBackends.begin(), kKnownBackends.end(), name) == kKnownBackends.end())
        return Error(k.source(), "unknown key '", fk, "'", Suggest(key, kKnownBackends),
                     ": expected max_alloc_bytes or a device role (NAME or NAME:INDEX) of a known backend (",
                     Join(kKnownBackends), ")");
      TSR_ASSIGN_OR_RETURN(wc->memory_caps[key], Bytes(e, fk));
      wc->locations["memory." + key] = Loc(e.source());
    }
    return Status::Ok();
  }

  Status Dims(const toml::node& v, const std::string& full, WorkloadConfig* wc) {
    Status st;
    const toml::table* t = Table(v, full, &st);
    if (!t) return st;
    for (auto&& [k, e] : *t) {
      std::string key(k.str());
      if (!ValidSymbol(key))
        return Error(k.source(), full, ": bad dim name ", Quote(key), " (no spaces, '=' or quotes)");
      TSR_ASSIGN_OR_RETURN(wc->dims[key], Int(e, full + "." + key, 0, int64_t{1} << 40));
      wc->locations["dim." + key] = Loc(e.source());
    }
    return Status::Ok();
  }

  Status Placement(const toml::node& v, const std::string& full, WorkloadConfig* wc) {
    Status st;
    const toml::table* t = Table(v, full, &st);
    if (!t) return st;
    for (auto&& [k, e] : *t) {
      std::string key(k.str());
      if (key.empty()) return Error(k.source(), full, ": empty node name or op type");
      TSR_ASSIGN_OR_RETURN(wc->placement[key], Role(e, full + "." + key, false));
      wc->locations["placement." + key] = Loc(e.source());
    }
    return Status::Ok();
  }

  Status Backends(const toml::node& v, const std::string& full, WorkloadConfig* wc) {
    Status st;
    const toml::table* t = Table(v, full, &st);
    if (!t) return st;
    for (auto&& [k, b] : *t) {
      std::string name(k.str());
      std::string fb = full + "." + name;
      if (std::find(kKnownBackends.begin(), kKnownBackends.end(), name) == kKnownBackends.end())
        return Error(k.source(), "unknown backend '", fb, "'", Suggest(name, kKnownBackends),
                     " (known: ", Join(kKnownBackends), ")");
      const toml::table* bt = Table(b, fb, &st);
      if (!bt) return st;
      auto& opts = wc->backend_options[name];
      for (auto&& [ok, ov] : *bt) {
        std::string okey(ok.str());
        std::string fk = fb + "." + okey;
        if (!ValidSymbol(okey)) return Error(ok.source(), fb, ": bad option name ", Quote(okey));
        wc->locations["backend." + name + "." + okey] = Loc(ov.source());
        switch (ov.type()) {
          case toml::node_type::string: opts[okey] = std::string(*ov.value<std::string_view>()); break;
          case toml::node_type::integer: opts[okey] = std::to_string(*ov.value<int64_t>()); break;
          case toml::node_type::floating_point: opts[okey] = FormatDouble(*ov.value<double>()); break;
          case toml::node_type::boolean: opts[okey] = *ov.value<bool>() ? "1" : "0"; break;
          default:
            return Error(ov.source(), fk, " must be a string, integer, float or boolean, got ", Describe(ov));
        }
      }
    }
    return Status::Ok();
  }

  Result<std::string> CheckTraining(const toml::node& v, const std::string& full, const TrainingKey& tk) {
    return Training(v, full, tk);
  }

 private:
  Result<std::string> Training(const toml::node& v, const std::string& full, const TrainingKey& tk) {
    switch (tk.kind) {
      case 'b':
        if (!v.is_boolean()) return Error(v.source(), full, " must be true or false, got ", Describe(v));
        return std::string(*v.value<bool>() ? "1" : "0");
      case 's': {
        if (!v.is_string() || v.value<std::string_view>()->empty())
          return Error(v.source(), full, " must be a non-empty string, got ", Describe(v));
        std::string s(*v.value<std::string_view>());
        if (tk.choices) {
          std::string c = std::string("|") + tk.choices + "|";
          if (c.find("|" + s + "|") == std::string::npos) {
            std::string list = tk.choices;
            std::replace(list.begin(), list.end(), '|', ',');
            return Error(v.source(), full, " must be one of ", list, ", got ", Quote(s));
          }
        }
        return s;
      }
      case 'i': {
        if (!v.is_integer()) return Error(v.source(), full, " must be an integer, got ", Describe(v));
        int64_t x = *v.value<int64_t>();
        double d = static_cast<double>(x);
        if (d < tk.lo || d > tk.hi)
          return Error(v.source(), full, " must be an integer in [", FormatDouble(tk.lo), ", ", FormatDouble(tk.hi),
                       "], got ", x);
        return std::to_string(x);
      }
      default: {  // 'n'
        if (!v.is_number()) return Error(v.source(), full, " must be a number, got ", Describe(v));
        double d = v.is_integer() ? static_cast<double>(*v.value<int64_t>()) : *v.value<double>();
        bool ok = std::isfinite(d) && (tk.lo_open ? d > tk.lo : d >= tk.lo) && (tk.hi_open ? d < tk.hi : d <= tk.hi);
        if (!ok)
          return Error(v.source(), full, " must be a number in ", tk.lo_open ? "(" : "[", FormatDouble(tk.lo), ", ",
                       FormatDouble(tk.hi), tk.hi_open ? ")" : "]", ", got ", Describe(v));
        return FormatDouble(d);
      }
    }
  }

  std::string source_;
};

}  // namespace

const char* WorkloadName(Workload w) { return w == Workload::kTraining ? "training" : "inference"; }

Result<Workload> ParseWorkload(const std::string& name) {
  if (name == "inference") return Workload::kInference;
  if (name == "training") return Workload::kTraining;
  return InvalidArgument("unknown workload '", name, "' (expected \"inference\" or \"training\")");
}

bool IsValidDeviceRole(const std::string& role) {
  if (role == "auto") return true;
  size_t colon = role.find(':');
  std::string name = role.substr(0, colon);
  if (name.empty() || !(name[0] >= 'a' && name[0] <= 'z')) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  if (colon == std::string::npos) return true;
  std::string idx = role.substr(colon + 1);
  if (idx.empty() || idx.size() > 6) return false;
  for (char c : idx)
    if (c < '0' || c > '9') return false;
  return true;
}

Result<int64_t> ParseByteSize(const std::string& text) {
  const std::string bad = StrCat("bad byte size ", Quote(text),
                                 " (expected an integer, or a number with a unit B, KB, MB, GB, TB, KiB, MiB, GiB, "
                                 "TiB, e.g. \"2GiB\")");
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  std::string num = text.substr(0, i);
  size_t j = i;
  while (j < text.size() && text[j] == ' ') ++j;
  std::string unit = text.substr(j);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (num.empty() || num == "." || std::count(num.begin(), num.end(), '.') > 1) return InvalidArgument(bad);
  double mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "kb") mult = 1e3;
  else if (unit == "mb") mult = 1e6;
  else if (unit == "gb") mult = 1e9;
  else if (unit == "tb") mult = 1e12;
  else if (unit == "kib") mult = 1024.0;
  else if (unit == "mib") mult = 1024.0 * 1024;
  else if (unit == "gib") mult = 1024.0 * 1024 * 1024;
  else if (unit == "tib") mult = 1024.0 * 1024 * 1024 * 1024;
  else return InvalidArgument(bad);
  if (num.find('.') == std::string::npos && mult == 1) {
    int64_t x = 0;
    auto r = std::from_chars(num.data(), num.data() + num.size(), x);
    if (r.ec == std::errc::result_out_of_range)
      return InvalidArgument("byte size ", Quote(text), " is too large");
    if (r.ec != std::errc() || r.ptr != num.data() + num.size()) return InvalidArgument(bad);
    if (x < 1) return InvalidArgument("byte size ", Quote(text), " must be at least 1 byte");
    return x;
  }
  double v = std::strtod(num.c_str(), nullptr) * mult;
  if (!std::isfinite(v) || v >= 9.2e18) return InvalidArgument("byte size ", Quote(text), " is too large");
  if (v < 1) return InvalidArgument("byte size ", Quote(text), " must be at least 1 byte");
  return static_cast<int64_t>(std::floor(v));
}

bool IsKnownBackendName(const std::string& name) {
  return std::find(kKnownBackends.begin(), kKnownBackends.end(), name) != kKnownBackends.end();
}

static Result<std::string> ToAsciiToml(std::string_view t, const std::string& source_name);

Result<std::string> CheckTrainingSetting(const std::string& key, const std::string& text) {
  const TrainingKey* tk = FindTrainingKey(key);
  if (!tk) {
    std::vector<std::string> known;
    for (const auto& t : kTrainingKeys) known.push_back(t.name);
    return InvalidArgument("unknown training setting '", key, "'", Suggest(key, known), " (known: ", Join(known),
                           ")");
  }
  // Re-express the text as a TOML value and run the file's checks on it.
  std::string toml_value;
  switch (tk->kind) {
    case 'b':
      if (text == "1" || text == "true") toml_value = "true";
      else if (text == "0" || text == "false") toml_value = "false";
      else return InvalidArgument("training.", key, " must be true or false (or 1/0), got ", Quote(text));
      break;
    case 's':
      for (char c : text)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
          return InvalidArgument("training.", key, " must not contain control characters");
      toml_value = Quote(text);
      break;
    default: {
      // A number: only digits, sign, '.', 'e' reach the TOML parser.
      bool ok = !text.empty();
      for (char c : text)
        if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
          ok = false;
      if (!ok) return InvalidArgument("training.", key, " must be a number, got ", Quote(text));
      toml_value = text;
    }
  }
  auto doc = ToAsciiToml("v = " + toml_value, "option");
  if (!doc.ok()) return InvalidArgument("training.", key, ": bad value ", Quote(text));
  toml::parse_result r = toml::parse(*doc);
  if (!r || !r.table().get("v")) return InvalidArgument("training.", key, ": bad value ", Quote(text));
  const toml::node& v = *r.table().get("v");
  Parser p("option");
  auto out = p.CheckTraining(v, "training." + key, *tk);
  if (!out.ok()) {
    // Drop the "option:1:5: " location: it points into the synthetic document.
    std::string m = out.status().message();
    size_t at = m.find(": ");
    return InvalidArgument(at == std::string::npos ? m : m.substr(at + 2));
  }
  return out;
}

int PhysicalCoreCount() {
  int logical = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) logical = CPU_COUNT(&set);
  if (logical <= 0) logical = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (logical <= 0) logical = static_cast<int>(std::thread::hardware_concurrency());
  if (logical <= 0) return 1;
  // Hardware threads per core: the length of cpu0's sibling list ("0,64", "0-1").
  int per_core = 0;
  std::ifstream f("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list");
  std::string s;
  if (f && std::getline(f, s)) {
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ',')) {
      size_t dash = part.find('-');
      if (dash == std::string::npos) {
        ++per_core;
      } else {
        int a = std::atoi(part.c_str()), b = std::atoi(part.c_str() + dash + 1);
        per_core += std::max(1, b - a + 1);
      }
    }
  }
  return std::max(1, logical / std::max(1, per_core));
}

// Rewrites a TOML document as pure ASCII with the same meaning, or fails
// with "SOURCE:LINE:COL: TOML syntax error: ..." for what TOML forbids:
//  - control characters other than tab and line breaks (anywhere),
//  - invalid UTF-8, and non-ASCII characters outside strings and comments,
//  - a backslash followed by a non-ASCII character in a basic string.
// Non-ASCII characters in comments become 'x' (comments are dropped), in basic
// strings \uXXXX / \UXXXXXXXX escapes, and literal strings ('...', '''...''')
// become the equivalent basic strings, so the parser sees ASCII only: toml++
// 3.3 reaches __builtin_unreachable (undefined behaviour) in its Unicode
// whitespace test for some code points (e.g. U+00C9), and asserts on some
// control characters. Line numbers are kept; columns shift on a line only
// after a rewritten non-ASCII character or literal string.
static Result<std::string> ToAsciiToml(std::string_view t, const std::string& source_name) {
  enum State { kNormal, kComment, kBasic, kLiteral, kMlBasic, kMlLiteral } st = kNormal;
  std::string out;
  out.reserve(t.size() + 16);
  size_t line = 1, col = 1;
  auto fail = [&](const char* what) -> Status {
    return InvalidArgument(source_name, ":", line, ":", col, ": TOML syntax error: ", what);
  };
  auto quotes_at = [&](size_t i, char q) {
    size_t n = 0;
    while (i + n < t.size() && t[i + n] == q) ++n;
    return n;
  };
  for (size_t i = 0; i < t.size();) {
    unsigned char c = static_cast<unsigned char>(t[i]);
    bool crlf = c == '\r' && i + 1 < t.size() && t[i + 1] == '\n';
    if ((c < 0x20 && c != '\t' && c != '\n' && !crlf) || c == 0x7f) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "control character 0x%02x is not allowed", c);
      return fail(buf);
    }
    if (c >= 0x80) {
      // One UTF-8 code point (shortest form, no surrogates, <= U+10FFFF).
      size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
      uint32_t cp = n == 4 ? (c & 0x07u) : n == 3 ? (c & 0x0fu) : (c & 0x1fu);
      bool ok = n != 0 && i + n <= t.size() && c < 0xf5;
      for (size_t k = 1; ok && k < n; ++k) {
        unsigned char cc = static_cast<unsigned char>(t[i + k]);
        ok = (cc & 0xc0) == 0x80;
        cp = (cp << 6) | (cc & 0x3fu);
      }
      if (ok) ok = !(n == 2 && cp < 0x80) && !(n == 3 && cp < 0x800) && !(n == 4 && cp < 0x10000) &&
                   !(cp >= 0xd800 && cp <= 0xdfff) && cp <= 0x10ffff;
      if (!ok) return fail("invalid UTF-8");
      if (st == kNormal) return fail("non-ASCII character outside a string or comment");
      if (st == kComment) {
        out += 'x';
      } else {
        char buf[16];
        std::snprintf(buf, sizeof buf, cp > 0xffff ? "\\U%08X" : "\\u%04X", static_cast<unsigned>(cp));
        out += buf;
      }
      i += n;
      ++col;
      continue;
    }
    char ch = static_cast<char>(c);
    size_t adv = 1;
    switch (st) {
      case kNormal:
        if (ch == '#') {
          st = kComment;
          out += ch;
        } else if (ch == '"') {
          if (quotes_at(i, '"') >= 3) {
            st = kMlBasic;
            out += "\"\"\"";
            adv = 3;
          } else {
            st = kBasic;
            out += ch;
          }
        } else if (ch == '\'') {
          if (quotes_at(i, '\'') >= 3) {
            st = kMlLiteral;
            out += "\"\"\"";
            adv = 3;
          } else {
            st = kLiteral;
            out += '"';
          }
        } else {
          out += ch;
        }
        break;
      case kComment:
        if (ch == '\n') st = kNormal;
        out += ch;
        break;
      case kBasic:
      case kMlBasic:
        if (ch == '\\') {
          out += ch;
          if (i + 1 < t.size()) {
            if (static_cast<unsigned char>(t[i + 1]) >= 0x80) {
              ++col;
              return fail("invalid escape sequence (a backslash before a non-ASCII character)");
            }
            out += t[i + 1];
            adv = 2;
          }
        } else if (ch == '"' && st == kBasic) {
          st = kNormal;
          out += ch;
        } else if (ch == '"') {
          size_t n = quotes_at(i, '"');
          out.append(n, '"');
          adv = n;
          if (n >= 3) st = kNormal;
        } else {
          if (ch == '\n' && st == kBasic) st = kNormal;  // unterminated: the parser reports it
          out += ch;
        }
        break;
      case kLiteral:
      case kMlLiteral:
        if (ch == '\'' && st == kLiteral) {
          st = kNormal;
          out += '"';
        } else if (ch == '\'') {
          size_t n = quotes_at(i, '\'');
          if (n >= 3) {
            if (n > 5) return fail("too many quotes at the end of a multi-line literal string");
            out.append(n - 3, '\'');
            out += "\"\"\"";
            st = kNormal;
          } else {
            out.append(n, '\'');
          }
          adv = n;
        } else if (ch == '\\') {
          out += "\\\\";
        } else if (ch == '"') {
          out += "\\\"";
        } else {
          if (ch == '\n' && st == kLiteral) {  // unterminated: close it so the parser reports the line
            st = kNormal;
            out += '"';
          }
          out += ch;
        }
        break;
    }
    for (size_t k = 0; k < adv; ++k) {
      if (t[i + k] == '\n') {
        ++line;
        col = 1;
      } else if (!(t[i + k] == '\r' && i + k + 1 < t.size() && t[i + k + 1] == '\n')) {
        ++col;
      }
    }
    i += adv;
  }
  return out;
}

Result<DeploymentConfig> LoadConfigString(std::string_view text, const std::string& source_name) {
  TSR_ASSIGN_OR_RETURN(std::string ascii, ToAsciiToml(text, source_name));
  toml::parse_result r = toml::parse(ascii, std::string_view(source_name));
  if (!r) {
    const toml::parse_error& e = r.error();
    const auto& b = e.source().begin;
    std::string loc = b.line > 0 ? StrCat(source_name, ":", b.line, ":", b.column) : source_name;
    return InvalidArgument(loc, ": TOML syntax error: ", std::string(e.description()));
  }
  DeploymentConfig cfg;
  cfg.source = source_name;
  Parser p(source_name);
  TSR_RETURN_IF_ERROR(p.ParseRoot(r.table(), &cfg));
  return cfg;
}

Result<DeploymentConfig> LoadConfigFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFound("cannot open config file '", path, "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return IoError("cannot read config file '", path, "'");
  std::string text = ss.str();
  if (text.size() > (size_t{16} << 20)) return InvalidArgument(path, ": config file is larger than 16 MiB");
  return LoadConfigString(text, path);
}

}  // namespace tessera
