// Tracing: collects timed spans of a session's runs (segments per device
// stream, cross-device transfers) and writes them as a Chrome trace
// (chrome://tracing, Perfetto): {"traceEvents": [...]} with "X" complete
// events, ts/dur in microseconds since the tracer was created, pid = one per
// session, tid = one row per device stream plus one row for transfers.
//
// Thread safety: Add() may be called from several threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "graph/status.h"

namespace tessera {

struct TraceSpan {
  std::string name;      // "segment 3 (12 nodes)", "transfer 'x'"
  std::string category;  // "segment", "transfer"
  int32_t row = 0;       // tid
  double start_us = 0;   // since the tracer's origin
  double dur_us = 0;
  int64_t run = 0;       // which run
  std::string args_json; // extra fields as a JSON object text, or "" (must be valid JSON)
};

class Tracer {
 public:
  using Clock = std::chrono::steady_clock;
  // `path`: the file Write() writes.
  explicit Tracer(std::string path);

  const std::string& path() const { return path_; }
  // Microseconds from the tracer's origin to `t`.
  double Us(Clock::time_point t) const;
  double NowUs() const { return Us(Clock::now()); }
  // The tid of the row named `name` ("cpu", "opencl:0", "transfers"); rows
  // are numbered in order of first use.
  int32_t Row(const std::string& name);
  void Add(TraceSpan span);
  std::vector<TraceSpan> Spans() const;
  // The trace document (JSON text).
  std::string ToJson() const;
  // Writes ToJson() to path() (replacing it). IO errors name the file.
  Status Write() const;

 private:
  std::string path_;
  std::vector<std::string> rows_;
  Clock::time_point origin_;
  mutable std::mutex mu_;
  std::vector<TraceSpan> spans_;
  int64_t pid_;
};

}  // namespace tessera
