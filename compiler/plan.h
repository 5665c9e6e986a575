// The Plan: the device-agnostic, serializable result of compilation.
//
// It owns the optimized graph (with its constants) and says, for every node,
// which device runs it (segments), where every value lives (buffers: device,
// arena offset, size, kind), which values cross devices (transfers) and in
// what order things run (steps). The compiler produces it (compiler/lower.cpp);
// the runtime serializes it (runtime/plan_file.cpp) and executes it
// (runtime/session.cpp). Devices are named by role ("cpu", "cuda:0"), not by
// what a particular machine has.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/pass.h"
#include "graph/graph.h"

namespace tessera {

struct PlanDevice {
  std::string role;          // "cpu", "cuda:0"
  std::string backend;       // plugin name: "cpu", "cuda"
  int32_t index = 0;         // device index within the backend
  uint64_t arena_bytes = 0;  // one arena per device and run
  uint64_t arena_lower_bound = 0;  // largest total of live bytes at any step
};

enum class BufferKind { kInput, kOutput, kIntermediate, kState, kScratch };
const char* BufferKindName(BufferKind k);
bool ParseBufferKind(const std::string& s, BufferKind* out);

struct PlanBuffer {
  std::string value;   // graph value name
  int32_t device = 0;  // index into Plan::devices
  BufferKind kind = BufferKind::kIntermediate;
  uint64_t offset = 0;  // in that device's arena
  uint64_t bytes = 0;
  // Memory layout on that device ("" = plain row-major; else a backend-defined
  // name such as "nhwc", see compiler/assign_layouts.h). `bytes` covers it.
  std::string layout;
};

struct PlanSegment {
  int32_t device = 0;
  std::vector<std::string> nodes;  // node names, in execution order
};

// A value produced on one device and needed on another.
struct PlanTransfer {
  std::string value;
  int32_t src_device = 0;
  int32_t dst_device = 0;
};

struct PlanStep {
  enum Kind { kSegment, kTransfer } kind = kSegment;
  int32_t index = 0;  // into segments or transfers
};

struct Plan {
  std::unique_ptr<Graph> graph;  // optimized, static shapes
  std::vector<PlanDevice> devices;
  std::vector<PlanBuffer> buffers;
  std::vector<PlanSegment> segments;
  std::vector<PlanTransfer> transfers;
  std::vector<PlanStep> steps;
  std::vector<PassStat> pass_stats;  // how the compiler got here
  int64_t imported_nodes = 0;        // node count before passes
  // hetero: why each node runs where it does (node name -> reason from
  // compiler/partition.h), and partitioner notes. In memory only: a plan
  // loaded from a file has none.
  std::map<std::string, std::string> placement_reasons;
  std::vector<std::string> placement_notes;

  // Buffer of `value` on `device`, or nullptr.
  const PlanBuffer* FindBuffer(const std::string& value, int32_t device) const;
};

}  // namespace tessera
