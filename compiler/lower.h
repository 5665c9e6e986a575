// Lowering: optimized graph + partition -> Plan (segments, transfers,
// buffers with arena offsets per device, the schedule).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/partition.h"
#include "compiler/plan.h"

namespace tessera {

struct DeviceRole {
  std::string role;     // "cpu", "cuda:0"
  std::string backend;  // "cpu", "cuda"
  int32_t index = 0;
};

// `devices[i]` describes partition device i. Every value must have a static
// shape (the session binds symbolic dims before compiling). Arena sizes above
// max_arena_bytes fail with OutOfMemory naming the device and the sizes.
Result<Plan> LowerToPlan(std::unique_ptr<Graph> graph, const Partition& partition,
                         const std::vector<DeviceRole>& devices, int64_t max_arena_bytes);

}  // namespace tessera
