// Partitioning: assigns every node to a device by asking the devices, in the
// config's priority order, which nodes they can run (`claim` in backend.h),
// then cuts the node order into maximal single-device segments.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "tessera/backend.h"

namespace tessera {

struct DeviceCandidate {
  std::string role;  // "cpu", "cuda:0"
  // Fills one tsr_claim per node of the view (backend.h `claim`).
  std::function<Status(const tsr_graph_view& view, std::vector<tsr_claim>* claims)> claim;
};

struct Partition {
  std::vector<int32_t> node_device;  // per node of g.nodes() order: index into candidates
  std::vector<std::string> node_reason;  // why that device (or notes)
  struct Segment {
    int32_t device;
    std::vector<const Node*> nodes;
  };
  std::vector<Segment> segments;
};

// Fails when a node is claimed by no device, listing EVERY such node with its
// op and each device's reason. With `strict`, every node must be claimed by the
// first (preferred) device: nodes that would fall back are listed instead.
Result<Partition> PartitionGraph(const Graph& g, const std::vector<DeviceCandidate>& devices, bool strict);

}  // namespace tessera
