#include "runtime/trace.h"

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>

namespace tessera {
namespace {
std::atomic<int64_t> next_pid{1};
}

Tracer::Tracer(std::string path) : path_(std::move(path)), origin_(Clock::now()), pid_(next_pid++) {}

int32_t Tracer::Row(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t r = 0; r < rows_.size(); ++r)
    if (rows_[r] == name) return static_cast<int32_t>(r);
  rows_.push_back(name);
  return static_cast<int32_t>(rows_.size() - 1);
}

double Tracer::Us(Clock::time_point t) const {
  return std::chrono::duration<double, std::micro>(t - origin_).count();
}

void Tracer::Add(TraceSpan span) {
  std::lock_guard<std::mutex> lock(mu_);
  spans_.push_back(std::move(span));
}

std::vector<TraceSpan> Tracer::Spans() const {
  std::lock_guard<std::mutex> lock(mu_);
  return spans_;
}

std::string Tracer::ToJson() const {
  using json = nlohmann::json;
  json events = json::array();
  std::vector<std::string> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rows = rows_;
  }
  events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", pid_}, {"tid", 0},
                    {"args", {{"name", "tessera session " + std::to_string(pid_)}}}});
  for (size_t r = 0; r < rows.size(); ++r) {
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", pid_}, {"tid", r},
                      {"args", {{"name", rows[r]}}}});
    events.push_back({{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", pid_}, {"tid", r},
                      {"args", {{"sort_index", r}}}});
  }
  for (const TraceSpan& s : Spans()) {
    json args = json::object();
    if (!s.args_json.empty()) {
      json parsed = json::parse(s.args_json, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_object()) args = parsed;
    }
    args["run"] = s.run;
    events.push_back({{"name", s.name}, {"cat", s.category}, {"ph", "X"}, {"ts", s.start_us},
                      {"dur", s.dur_us < 0 ? 0.0 : s.dur_us}, {"pid", pid_}, {"tid", s.row}, {"args", args}});
  }
  json doc = {{"traceEvents", events}, {"displayTimeUnit", "ms"}};
  return doc.dump(1);
}

Status Tracer::Write() const {
  std::ofstream f(path_, std::ios::binary | std::ios::trunc);
  if (!f) return IoError("trace: cannot open '", path_, "' for writing");
  std::string text = ToJson();
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  f.close();
  if (!f) return IoError("trace: cannot write '", path_, "'");
  return Status::Ok();
}

}  // namespace tessera
