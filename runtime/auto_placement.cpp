#include "runtime/auto_placement.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "graph/printer.h"
#include "runtime/backend_registry.h"
#include "runtime/session.h"

namespace tessera {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
  return s;
}

uint64_t Fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string Hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Deterministic inputs: floats in [-1, 1), everything else zero.
Result<Tensor> MakeInput(DType dt, const std::vector<int64_t>& dims, uint64_t seed) {
  TSR_ASSIGN_OR_RETURN(Tensor t, Tensor::Zeros(dt, dims));
  if (dt == DType::kF32) {
    float* p = static_cast<float*>(t.mutable_raw());
    size_t n = t.nbytes() / sizeof(float);
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      p[i] = static_cast<float>((x >> 40) & 0xffffff) / 8388608.0f - 1.0f;
    }
  }
  return t;
}

Result<double> Measure(const Graph& model, const std::map<std::string, std::vector<int64_t>>& shapes,
                       const SessionOptions& base, const std::vector<std::string>& devices, int timed_runs) {
  SessionOptions o = base;
  o.devices = devices;
  o.trace = "off";  // candidates are not traced
  o.strict = true;  // a candidate is exactly its device list
  TSR_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::FromGraph(model.Clone(), o));
  std::vector<Tensor> inputs;
  std::vector<std::pair<std::string, const Tensor*>> feeds;
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (const IoInfo& in : s->inputs()) {
    auto it = shapes.find(in.name);
    if (it == shapes.end()) return Internal("auto: no shape for input '", in.name, "'");
    TSR_ASSIGN_OR_RETURN(Tensor t, MakeInput(in.dtype, it->second, seed++));
    inputs.push_back(std::move(t));
  }
  for (size_t i = 0; i < inputs.size(); ++i) feeds.push_back({s->inputs()[i].name, &inputs[i]});
  std::vector<Tensor> outs;
  TSR_RETURN_IF_ERROR(s->Run(feeds, {}, &outs));  // warm-up (and compile when deferred)
  std::vector<double> ms;
  for (int r = 0; r < std::max(timed_runs, 1); ++r) {
    auto t0 = std::chrono::steady_clock::now();
    TSR_RETURN_IF_ERROR(s->Run(feeds, {}, &outs));
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

std::string AutoChoice::ToJson() const {
  json t = json::array();
  for (const auto& x : timings) {
    json e = {{"devices", x.devices}};
    if (x.error.empty()) e["median_ms"] = x.median_ms;
    else e["error"] = x.error;
    t.push_back(e);
  }
  json j = {{"choice", devices}, {"cached", cached}, {"key", key}, {"cache_file", cache_file}, {"timings", t}};
  if (!note.empty()) j["note"] = note;
  return j.dump();
}

std::string AutoChoice::Summary() const {
  std::string s = "chose " + Join(devices);
  if (!timings.empty()) {
    s += " (";
    for (size_t i = 0; i < timings.size(); ++i) {
      char buf[64];
      if (timings[i].error.empty()) std::snprintf(buf, sizeof(buf), "%.3f ms", timings[i].median_ms);
      else std::snprintf(buf, sizeof(buf), "failed");
      s += (i ? ", " : "") + Join(timings[i].devices) + " " + buf;
    }
    s += cached ? "; from cache)" : ")";
  }
  if (!note.empty()) s += "; " + note;
  return s;
}

std::vector<std::vector<std::string>> AutoCandidates() {
  std::vector<std::string> accel, cpu;
  for (const auto& b : BackendRegistry::Get().backends()) {
    if (!b->usable() || b->name == "null") continue;
    if (b->name == "cpu") {
      cpu.push_back("cpu");
      continue;
    }
    for (int32_t i = 0; i < b->device_count; ++i) accel.push_back(b->name + ":" + std::to_string(i));
  }
  std::vector<std::string> all = accel;
  all.insert(all.end(), cpu.begin(), cpu.end());
  std::vector<std::vector<std::string>> out;
  for (const auto& d : all) out.push_back({d});
  if (all.size() > 1) out.push_back(all);
  return out;
}

std::string AutoCacheDir() {
  if (const char* d = std::getenv("TESSERA_CACHE_DIR"); d && *d) return (fs::path(d) / "auto").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "tessera" / "auto").string();
  return "";
}

Result<AutoChoice> ChooseAutoPlacement(const Graph& model, const std::map<std::string, std::vector<int64_t>>& shapes,
                                       const SessionOptions& opts, int timed_runs,
                                       const std::vector<std::vector<std::string>>* candidates) {
  AutoChoice c;
  auto cands = candidates ? *candidates : AutoCandidates();
  if (cands.empty()) return Status(StatusCode::kNoDevice, "devices=auto: no usable device backend was found");
  if (cands.size() == 1) {
    c.devices = cands[0];
    c.note = "only one usable device; nothing to measure";
    return c;
  }
  // What the choice depends on.
  std::ostringstream k;
  k << PrintGraph(model) << "\n";
  for (const auto& [name, dims] : shapes) {
    k << name << "[";
    for (int64_t d : dims) k << d << ",";
    k << "]\n";
  }
  k << "opt_level=" << opts.opt_level << " threads=" << opts.threads << " precision=" << opts.precision << "\n";
  for (const auto& [n, r] : opts.placement) k << "placement." << n << "=" << r << "\n";
  for (const auto& cand : cands) {
    k << "candidate";
    for (const auto& d : cand) k << " " << d;
    k << "\n";
  }
  for (const auto& b : BackendRegistry::Get().backends()) {
    if (!b->usable() || b->name == "null") continue;
    k << "backend " << b->name << " " << b->version << ":";
    for (const auto& p : b->devices) k << " [" << p.name << "]";
    k << "\n";
  }
  c.key = Hex(Fnv1a(k.str()));
  std::string dir = AutoCacheDir();
  if (!dir.empty()) c.cache_file = (fs::path(dir) / (c.key + ".json")).string();

  if (!c.cache_file.empty()) {
    std::ifstream f(c.cache_file);
    if (f) {
      json j = json::parse(f, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.value("key", "") == c.key && j.contains("choice") && j["choice"].is_array() &&
          !j["choice"].empty() && j.contains("timings") && j["timings"].is_array()) {
        for (const auto& d : j["choice"])
          if (d.is_string()) c.devices.push_back(d.get<std::string>());
        for (const auto& t : j["timings"]) {
          if (!t.is_object() || !t.contains("devices") || !t["devices"].is_array()) continue;
          AutoTiming at;
          for (const auto& d : t["devices"])
            if (d.is_string()) at.devices.push_back(d.get<std::string>());
          if (t.contains("median_ms") && t["median_ms"].is_number()) at.median_ms = t["median_ms"].get<double>();
          if (t.contains("error") && t["error"].is_string()) at.error = t["error"].get<std::string>();
          c.timings.push_back(at);
        }
        if (!c.devices.empty()) {
          c.cached = true;
          return c;
        }
      }
    }
  }

  double best = -1;
  std::string errors;
  for (const auto& cand : cands) {
    AutoTiming t;
    t.devices = cand;
    auto ms = Measure(model, shapes, opts, cand, timed_runs);
    if (ms.ok()) {
      t.median_ms = *ms;
      if (best < 0 || *ms < best) {
        best = *ms;
        c.devices = cand;
      }
    } else {
      t.error = ms.status().message();
      errors += "\n  " + Join(cand) + ": " + t.error;
    }
    c.timings.push_back(t);
  }
  if (best < 0) return Unsupported("devices=auto: no candidate placement can run the model:", errors);

  if (!c.cache_file.empty()) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    // Write then rename, so a concurrent reader never sees half a file.
    std::string tmp = c.cache_file + ".tmp" + std::to_string(static_cast<unsigned long long>(
                                                  std::chrono::steady_clock::now().time_since_epoch().count()));
    std::ofstream f(tmp, std::ios::trunc);
    if (f) {
      f << c.ToJson();
      f.close();
      if (f) fs::rename(tmp, c.cache_file, ec);
      if (ec || !f) fs::remove(tmp, ec);
    }
  }
  return c;
}

}  // namespace tessera
