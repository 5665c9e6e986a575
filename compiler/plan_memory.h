// Static memory planning: offsets in one arena per device from liveness
// intervals. Buffers are placed largest first, each into the best-fitting gap
// (the smallest free gap that holds it) among the buffers whose lifetimes
// overlap it; the arena size is the highest end offset.
#pragma once

#include <cstdint>
#include <vector>

namespace tessera {

struct BufferRequest {
  uint64_t bytes = 0;
  int64_t first = 0;  // first step the buffer is live (inclusive)
  int64_t last = 0;   // last step the buffer is live (inclusive)
};

struct ArenaPlan {
  std::vector<uint64_t> offsets;  // per request
  uint64_t arena_bytes = 0;
  uint64_t lower_bound = 0;       // max over steps of the live bytes (aligned)
};

ArenaPlan PlanArena(const std::vector<BufferRequest>& requests, uint64_t alignment = 64);

}  // namespace tessera
