// Partitioning: assigns every node to a device and cuts a topological node
// order into maximal single-device segments.
//
// How a node is placed:
//   1. a placement override (node name, else op type -> role) fixes it;
//   2. otherwise the first device in priority order whose `claim` accepts it
//      (backend.h), i.e. the preferred device or a fallback;
//   3. a cost model then moves nodes (and same-device groups of connected
//      nodes) off their first choice only when that lowers the number of
//      bytes crossing devices AND the estimated total time (compute + transfer),
//      so small ops are not ping-ponged between devices. Priority order is
//      never overridden for speed alone: a group with no cross-device edge
//      stays where the priority order put it ("auto" placement measures).
// Compute cost of a node on a device: the claim's est_time_us when given,
// else FLOPs / peak_gflops_f32 + bytes / memory_gbps (tsr_device_props;
// defaults when unknown). Transfer cost of a value: transfer_latency_us +
// bytes / link_gbps per destination device.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "tessera/backend.h"

namespace tessera {

struct DeviceCandidate {
  std::string role;  // "cpu", "cuda:0"
  // Fills one tsr_claim per node of the view (backend.h `claim`).
  std::function<Status(const tsr_graph_view& view, std::vector<tsr_claim>* claims)> claim;
  // Cost model inputs (tsr_device_props); 0 = unknown (a default is used).
  double peak_gflops = 0;
  double memory_gbps = 0;
};

struct PartitionOptions {
  // Every node must run on the first device (or where a placement override
  // puts it); nodes that would fall back are listed in the error instead.
  bool strict = false;
  // Node name or op type (Node::op_type() or QualifiedOp()) -> device role.
  std::map<std::string, std::string> placement;
  double link_gbps = 8.0;            // host-staged transfer bandwidth, GB/s
  double transfer_latency_us = 30.0;  // fixed cost per transfer
  // Reorder independent nodes (keeping a topological order) so each device's
  // nodes form fewer segments. Off for graphs with subgraph attributes.
  bool reorder = true;
  // Step 3 above (cost-driven moves). Off = priority order only.
  bool cost_model = true;
};

struct Partition {
  std::vector<int32_t> node_device;      // per node of g.nodes() order: index into candidates
  std::vector<std::string> node_reason;  // why that device, per node of g.nodes() order
  struct Segment {
    int32_t device;
    std::vector<const Node*> nodes;
  };
  std::vector<Segment> segments;  // in execution order (a topological order of all nodes)
  std::vector<std::string> notes;  // e.g. placement keys that matched no node
  // The cost model's estimate of the final placement.
  double est_compute_us = 0;
  double est_transfer_us = 0;
  uint64_t est_transfer_bytes = 0;
};

// Fails when a node is claimed by no device, listing EVERY such node with its
// op and each device's reason. With `strict`, every node not forced elsewhere
// by a placement override must be claimed by the first (preferred) device:
// nodes that would fall back are listed instead. A placement override naming
// a role not in `devices`, or a device that does not claim the node, fails.
Result<Partition> PartitionGraph(const Graph& g, const std::vector<DeviceCandidate>& devices,
                                 const PartitionOptions& options);
// Priority order only (no cost-driven moves, no reordering): the original
// greedy partitioner, kept for callers that want exactly that.
Result<Partition> PartitionGraph(const Graph& g, const std::vector<DeviceCandidate>& devices, bool strict);

// The cost model's estimate for `n` on a device with the given peak numbers
// (0 = unknown: 50 GFLOP/s, 20 GB/s), in microseconds.
double EstimateNodeTimeUs(const Node& n, double peak_gflops, double memory_gbps);

}  // namespace tessera
