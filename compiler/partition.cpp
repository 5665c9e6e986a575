#include "compiler/partition.h"

#include <map>

#include "compiler/graph_view.h"

namespace tessera {

Result<Partition> PartitionGraph(const Graph& g, const std::vector<DeviceCandidate>& devices, bool strict) {
  if (devices.empty()) return InvalidArgument("no devices to place the graph on");
  std::vector<const Node*> nodes;
  for (const Node* n : g.nodes()) nodes.push_back(n);
  auto view = GraphView::Build(nodes);

  std::vector<std::vector<tsr_claim>> claims(devices.size());
  for (size_t d = 0; d < devices.size(); ++d) {
    claims[d].assign(nodes.size(), tsr_claim{});
    TSR_RETURN_IF_ERROR(devices[d].claim(*view->view(), &claims[d]));
  }

  Partition p;
  p.node_device.assign(nodes.size(), -1);
  p.node_reason.assign(nodes.size(), "");
  std::vector<std::string> problems;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (size_t d = 0; d < devices.size(); ++d) {
      if (claims[d][i].supported) {
        p.node_device[i] = static_cast<int32_t>(d);
        p.node_reason[i] = d == 0 ? "preferred device" :
            StrCat("fallback: ", devices[0].role, " cannot run it (", claims[0][i].reason, ")");
        break;
      }
    }
    bool fell_back = p.node_device[i] > 0;
    if (p.node_device[i] < 0 || (strict && fell_back)) {
      std::string why;
      size_t limit = strict ? 1 : devices.size();
      for (size_t d = 0; d < limit; ++d) {
        if (d) why += "; ";
        why += StrCat(devices[d].role, ": ", claims[d][i].reason[0] ? claims[d][i].reason : "not supported");
      }
      problems.push_back(StrCat("'", nodes[i]->name(), "' (", nodes[i]->QualifiedOp(), ") - ", why));
    }
  }
  if (!problems.empty()) {
    std::string msg = strict ? StrCat("strict mode: ", problems.size(), " node(s) cannot run on the preferred device ",
                                      devices[0].role, ":")
                             : StrCat(problems.size(), " node(s) are not supported by any device:");
    for (const auto& s : problems) msg += "\n  " + s;
    return Status(StatusCode::kUnsupported, msg);
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (p.segments.empty() || p.segments.back().device != p.node_device[i])
      p.segments.push_back({p.node_device[i], {}});
    p.segments.back().nodes.push_back(nodes[i]);
  }
  return p;
}

}  // namespace tessera
