// "auto" placement (devices = auto): measures the model's candidate
// placements on the devices present and picks the fastest.
//
// Candidates: every usable device alone, plus the default priority order
// (accelerators first, the CPU last) when there are several. Each is
// compiled in its own session and timed over a warm-up run plus `timed_runs`
// runs on generated inputs (median). Results are cached on disk, keyed by a
// hash of the model graph (which, with the opt level, determines the
// optimized graph), the input shapes, the options that change the plan, and
// the candidate devices' names and backend versions; a cached choice is used
// without measuring. Cache folder: $TESSERA_CACHE_DIR, else
// ~/.cache/tessera/auto (no cache when neither can be determined).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "runtime/options.h"

namespace tessera {

struct AutoTiming {
  std::vector<std::string> devices;
  double median_ms = -1;  // -1 when it failed
  std::string error;      // why the candidate could not run
};

struct AutoChoice {
  std::vector<std::string> devices;  // the fastest candidate's device list
  std::vector<AutoTiming> timings;   // every candidate, in candidate order
  bool cached = false;               // read from the cache, nothing measured
  std::string cache_file;            // "" when there is no cache folder
  std::string key;                   // hex hash of what the choice depends on
  std::string note;                  // e.g. "only one usable device"
  // {"choice": [...], "cached": b, "key": ..., "cache_file": ..., "timings": [{"devices": [...], "median_ms": x}...]}
  std::string ToJson() const;
  // "chose opencl:0 (opencl:0 1.20 ms, cpu 3.40 ms, opencl:0,cpu 1.30 ms; from cache)"
  std::string Summary() const;
};

// The candidate device lists for the usable backends of the registry.
std::vector<std::vector<std::string>> AutoCandidates();
// The cache folder, or "" when none can be determined.
std::string AutoCacheDir();

// `shapes`: concrete dims of every runtime input of `model`. `opts` are the
// session's options (devices is ignored; the rest apply to every candidate).
// Fails only when no candidate can run the model (listing each one's error).
// `candidates` replaces AutoCandidates() when non-null (tests).
Result<AutoChoice> ChooseAutoPlacement(const Graph& model, const std::map<std::string, std::vector<int64_t>>& shapes,
                                       const SessionOptions& opts, int timed_runs = 3,
                                       const std::vector<std::vector<std::string>>* candidates = nullptr);

}  // namespace tessera
