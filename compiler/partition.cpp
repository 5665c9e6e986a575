#include "compiler/partition.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <unordered_map>

#include "compiler/graph_view.h"

namespace tessera {
namespace {

constexpr double kUnsupported = 1e300;  // compute cost of a node on a device that cannot run it
constexpr int kMaxSweeps = 8;

std::string Us(double us) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", us);
  return buf;
}

int64_t Elements(const Value* v) {
  if (!v) return 0;
  auto dims = v->shape().AsInts();
  if (!dims) return 0;
  auto n = CheckedNumElements(*dims);
  return n.ok() ? *n : 0;
}

uint64_t Bytes(const Value* v) {
  if (!v) return 0;
  return static_cast<uint64_t>(Elements(v)) * DTypeSize(v->dtype());
}

// Rough FLOPs: 2*M*N*K for matrix products, 2*MACs for convolutions,
// one per output element otherwise.
double Flops(const Node& n) {
  const std::string& op = n.op_type();
  double out = 0;
  for (const Value* o : n.outputs()) out += static_cast<double>(Elements(o));
  const Value* a = n.input(0);
  const Value* w = n.input(1);
  auto dims_of = [](const Value* v) { return v ? v->shape().AsInts() : std::nullopt; };
  if (op.find("MatMul") != std::string::npos || op.find("Gemm") != std::string::npos) {
    auto ad = dims_of(a);
    if (ad && !ad->empty()) {
      int64_t k = ad->back();
      if (op.find("Gemm") != std::string::npos && ad->size() == 2 && n.GetInt("transA", 0)) k = (*ad)[0];
      return 2.0 * out * static_cast<double>(std::max<int64_t>(k, 1));
    }
  } else if (op.find("Conv") != std::string::npos) {
    auto wd = dims_of(w);
    if (wd && !wd->empty() && (*wd)[0] > 0)
      return 2.0 * out * static_cast<double>(Elements(w) / (*wd)[0]);
  } else if (op.find("Attention") != std::string::npos) {
    auto ad = dims_of(a);
    if (ad && ad->size() >= 2) return 4.0 * static_cast<double>(Elements(a)) * static_cast<double>((*ad)[ad->size() - 2]);
  }
  return out;
}

struct ValueEdge {
  const Value* value;
  int producer;
  std::vector<int> consumers;
  uint64_t bytes;
};

struct Costs {
  double compute = 0, transfer = 0;
  uint64_t bytes = 0;
  double total() const { return compute + transfer; }
};

}  // namespace

double EstimateNodeTimeUs(const Node& n, double peak_gflops, double memory_gbps) {
  if (peak_gflops <= 0) peak_gflops = 50;
  if (memory_gbps <= 0) memory_gbps = 20;
  double bytes = 0;
  for (const Value* v : n.inputs()) bytes += static_cast<double>(Bytes(v));
  for (const Value* v : n.outputs()) bytes += static_cast<double>(Bytes(v));
  // GFLOP/s = 1e3 FLOP/us; GB/s = 1e3 bytes/us.
  return Flops(n) / (peak_gflops * 1e3) + bytes / (memory_gbps * 1e3);
}

Result<Partition> PartitionGraph(const Graph& g, const std::vector<DeviceCandidate>& devices, bool strict) {
  PartitionOptions o;
  o.strict = strict;
  o.cost_model = false;
  o.reorder = false;
  return PartitionGraph(g, devices, o);
}

Result<Partition> PartitionGraph(const Graph& g, const std::vector<DeviceCandidate>& devices,
                                 const PartitionOptions& options) {
  if (devices.empty()) return InvalidArgument("no devices to place the graph on");
  std::vector<const Node*> nodes;
  for (const Node* n : g.nodes()) nodes.push_back(n);
  const int N = static_cast<int>(nodes.size());
  const int D = static_cast<int>(devices.size());
  auto view = GraphView::Build(nodes);

  std::vector<std::vector<tsr_claim>> claims(devices.size());
  for (int d = 0; d < D; ++d) {
    claims[d].assign(nodes.size(), tsr_claim{});
    TSR_RETURN_IF_ERROR(devices[d].claim(*view->view(), &claims[d]));
    for (auto& c : claims[d]) c.reason[sizeof(c.reason) - 1] = '\0';
  }
  auto why_not = [&](int d, int i) -> std::string {
    return claims[d][i].reason[0] ? claims[d][i].reason : "not supported";
  };

  // Placement overrides: node name first, then op type.
  std::vector<int> forced(N, -1);
  std::vector<std::string> forced_key(N);
  std::set<std::string> used_keys;
  std::vector<std::string> problems;
  for (int i = 0; i < N; ++i) {
    for (const std::string& key : {nodes[i]->name(), nodes[i]->QualifiedOp(), nodes[i]->op_type()}) {
      auto it = options.placement.find(key);
      if (it == options.placement.end()) continue;
      used_keys.insert(key);
      int d = -1;
      for (int k = 0; k < D; ++k)
        if (devices[k].role == it->second) d = k;
      if (d < 0) {
        std::string roles;
        for (int k = 0; k < D; ++k) roles += (k ? ", " : "") + devices[k].role;
        return InvalidArgument("placement '", key, "' -> '", it->second, "': device '", it->second,
                               "' is not one of the session's devices (", roles, ")");
      }
      if (!claims[d][i].supported) {
        problems.push_back(StrCat("'", nodes[i]->name(), "' (", nodes[i]->QualifiedOp(), ") - placement '", key,
                                  "' forces it onto ", devices[d].role, ", which cannot run it: ", why_not(d, i)));
      }
      forced[i] = d;
      forced_key[i] = key;
      break;
    }
  }
  if (!problems.empty()) {
    std::string msg = StrCat(problems.size(), " node(s) are placed on a device that cannot run them:");
    for (const auto& s : problems) msg += "\n  " + s;
    return Status(StatusCode::kUnsupported, msg);
  }

  // First choice: the override, else the first device in priority order that claims the node.
  std::vector<int> first(N, -1);
  for (int i = 0; i < N; ++i) {
    if (forced[i] >= 0) { first[i] = forced[i]; continue; }
    for (int d = 0; d < D; ++d) {
      if (claims[d][i].supported) { first[i] = d; break; }
    }
    bool fell_back = first[i] > 0;
    if (first[i] < 0 || (options.strict && fell_back)) {
      std::string why;
      int limit = options.strict ? 1 : D;
      for (int d = 0; d < limit; ++d) {
        if (d) why += "; ";
        why += StrCat(devices[d].role, ": ", why_not(d, i));
      }
      problems.push_back(StrCat("'", nodes[i]->name(), "' (", nodes[i]->QualifiedOp(), ") - ", why));
    }
  }
  if (!problems.empty()) {
    std::string msg = options.strict ? StrCat("strict mode: ", problems.size(),
                                              " node(s) cannot run on the preferred device ", devices[0].role, ":")
                                     : StrCat(problems.size(), " node(s) are not supported by any device:");
    for (const auto& s : problems) msg += "\n  " + s;
    return Status(StatusCode::kUnsupported, msg);
  }

  // Compute cost per device and node.
  std::vector<std::vector<double>> cost(D, std::vector<double>(N, kUnsupported));
  for (int d = 0; d < D; ++d)
    for (int i = 0; i < N; ++i)
      if (claims[d][i].supported)
        cost[d][i] = claims[d][i].est_time_us > 0
                         ? claims[d][i].est_time_us
                         : EstimateNodeTimeUs(*nodes[i], devices[d].peak_gflops, devices[d].memory_gbps);

  // Data edges between nodes.
  std::unordered_map<const Node*, int> index;
  for (int i = 0; i < N; ++i) index[nodes[i]] = i;
  std::vector<ValueEdge> edges;
  std::unordered_map<const Value*, int> edge_of;
  for (int i = 0; i < N; ++i)
    for (const Value* o : nodes[i]->outputs())
      if (o) {
        edge_of[o] = static_cast<int>(edges.size());
        edges.push_back({o, i, {}, Bytes(o)});
      }
  std::vector<std::vector<int>> node_in_edges(N), node_out_edges(N);
  for (int i = 0; i < N; ++i) {
    for (const Value* in : nodes[i]->inputs()) {
      if (!in) continue;
      auto it = edge_of.find(in);
      if (it == edge_of.end()) continue;
      ValueEdge& e = edges[it->second];
      if (std::find(e.consumers.begin(), e.consumers.end(), i) == e.consumers.end()) {
        e.consumers.push_back(i);
        node_in_edges[i].push_back(it->second);
      }
    }
  }
  for (size_t e = 0; e < edges.size(); ++e) node_out_edges[edges[e].producer].push_back(static_cast<int>(e));

  const double bw = options.link_gbps > 0 ? options.link_gbps * 1e3 : 8e3;  // bytes per us
  std::vector<int> dev = first;
  // Transfers of one value: one per other device that reads it.
  auto edge_cost = [&](int e, double* us, uint64_t* bytes) {
    const ValueEdge& ve = edges[e];
    uint32_t seen = 0;  // bit per device (D <= 32 in practice; more devices count each consumer)
    int count = 0;
    for (int c : ve.consumers) {
      int d = dev[c];
      if (d == dev[ve.producer]) continue;
      if (d < 32) {
        if (seen & (1u << d)) continue;
        seen |= 1u << d;
      }
      ++count;
    }
    *us += count * (options.transfer_latency_us + static_cast<double>(ve.bytes) / bw);
    *bytes += static_cast<uint64_t>(count) * ve.bytes;
  };
  auto evaluate_edges = [&](const std::vector<int>& es, double* us, uint64_t* bytes) {
    *us = 0;
    *bytes = 0;
    for (int e : es) edge_cost(e, us, bytes);
  };
  auto crosses = [&](int i) {
    for (int e : node_in_edges[i])
      if (dev[edges[e].producer] != dev[i]) return true;
    for (int e : node_out_edges[i])
      for (int c : edges[e].consumers)
        if (dev[c] != dev[i]) return true;
    return false;
  };

  // Local improvement: move a node, or a connected same-device group, to
  // another device that claims all of it when that strictly lowers the
  // transferred bytes and the estimated total time.
  std::vector<std::string> moved_reason(N);
  for (int sweep = 0; sweep < kMaxSweeps && D > 1 && options.cost_model; ++sweep) {
    // Connected same-device groups (union-find over data edges).
    std::vector<int> parent(N);
    for (int i = 0; i < N; ++i) parent[i] = i;
    std::function<int(int)> find = [&](int x) { return parent[x] == x ? x : parent[x] = find(parent[x]); };
    for (const auto& e : edges)
      for (int c : e.consumers)
        if (dev[c] == dev[e.producer]) parent[find(c)] = find(e.producer);
    std::map<int, std::vector<int>> groups;
    for (int i = 0; i < N; ++i) groups[find(i)].push_back(i);
    std::vector<std::vector<int>> candidates;
    for (auto& [root, members] : groups) {
      bool any_cross = false, any_forced = false;
      for (int i : members) {
        any_cross = any_cross || crosses(i);
        any_forced = any_forced || forced[i] >= 0;
      }
      if (!any_cross) continue;
      if (!any_forced && members.size() > 1) candidates.push_back(members);
      for (int i : members)
        if (forced[i] < 0 && crosses(i)) candidates.push_back({i});
    }
    bool changed = false;
    for (const auto& set : candidates) {
      const int from = dev[set[0]];
      bool same = true;
      for (int i : set) same = same && dev[i] == from;
      if (!same) continue;  // an earlier move this sweep changed it
      std::set<int> touched;
      for (int i : set) {
        touched.insert(node_in_edges[i].begin(), node_in_edges[i].end());
        touched.insert(node_out_edges[i].begin(), node_out_edges[i].end());
      }
      std::vector<int> es(touched.begin(), touched.end());
      double xfer_before;
      uint64_t bytes_before;
      evaluate_edges(es, &xfer_before, &bytes_before);
      double compute_before = 0;
      for (int i : set) compute_before += cost[from][i];
      int best = -1;
      double best_gain = 1e-9, best_xfer = 0, best_compute = 0;
      uint64_t best_bytes = 0;
      for (int d = 0; d < D; ++d) {
        if (d == from) continue;
        double compute = 0;
        for (int i : set) compute += cost[d][i];
        if (compute >= kUnsupported) continue;
        for (int i : set) dev[i] = d;
        double xfer;
        uint64_t bytes;
        evaluate_edges(es, &xfer, &bytes);
        for (int i : set) dev[i] = from;
        double gain = (compute_before + xfer_before) - (compute + xfer);
        if (bytes < bytes_before && gain > best_gain) {
          best = d;
          best_gain = gain;
          best_xfer = xfer;
          best_bytes = bytes;
          best_compute = compute;
        }
      }
      if (best < 0) continue;
      for (int i : set) dev[i] = best;
      changed = true;
      const double compute_gain = best_compute - compute_before;  // what running on `from` would save
      std::string what = set.size() == 1 ? "it" : StrCat("these ", set.size(), " connected nodes");
      std::string r = StrCat("kept on ", devices[best].role, ": transfer of ", bytes_before - best_bytes,
                             " bytes (", Us(xfer_before - best_xfer), " us) costs more than running ", what, " on ",
                             devices[from].role, " saves (", Us(std::max(0.0, compute_gain)), " us)");
      for (int i : set) moved_reason[i] = r;
    }
    if (!changed) break;
  }

  Partition p;
  p.node_device.assign(dev.begin(), dev.end());
  p.node_reason.assign(N, "");
  for (int i = 0; i < N; ++i) {
    int d = dev[i];
    if (forced[i] >= 0) {
      p.node_reason[i] = StrCat("placement override: '", forced_key[i], "' -> ", devices[d].role);
    } else if (d != first[i] && !moved_reason[i].empty()) {
      p.node_reason[i] = moved_reason[i];
    } else if (d == 0) {
      p.node_reason[i] = "preferred device";
    } else {
      // The first device that claims it; devices before it cannot run it.
      p.node_reason[i] = StrCat("fallback: ", devices[0].role, " cannot run it (", why_not(0, i), ")");
    }
  }
  for (const auto& [key, role] : options.placement)
    if (!used_keys.count(key))
      p.notes.push_back(StrCat("placement '", key, "' -> ", role, " matches no node name or op type"));

  // Order: keep a topological order; with reordering, stay on the current
  // device while it has ready nodes (fewer, longer segments).
  bool reorder = options.reorder && D > 1;
  for (int i = 0; i < N && reorder; ++i)
    for (const auto& [name, a] : nodes[i]->attrs())
      if (a.type == AttrType::kGraph) reorder = false;
  std::vector<int> order;
  if (!reorder) {
    for (int i = 0; i < N; ++i) order.push_back(i);
  } else {
    std::vector<int> indeg(N, 0);
    for (int i = 0; i < N; ++i) indeg[i] = static_cast<int>(node_in_edges[i].size());
    std::vector<std::set<int>> ready(D);
    for (int i = 0; i < N; ++i)
      if (indeg[i] == 0) ready[dev[i]].insert(i);
    int cur = -1;
    while (static_cast<int>(order.size()) < N) {
      int pick = -1;
      if (cur >= 0 && !ready[cur].empty()) {
        pick = *ready[cur].begin();
      } else {
        for (int d = 0; d < D; ++d)
          if (!ready[d].empty() && (pick < 0 || *ready[d].begin() < pick)) pick = *ready[d].begin();
      }
      if (pick < 0) return Internal("partition: the graph's node order is not topological");
      cur = dev[pick];
      ready[cur].erase(pick);
      order.push_back(pick);
      for (int e : node_out_edges[pick])
        for (int c : edges[e].consumers)
          if (--indeg[c] == 0) ready[dev[c]].insert(c);
    }
  }
  for (int i : order) {
    if (p.segments.empty() || p.segments.back().device != dev[i]) p.segments.push_back({dev[i], {}});
    p.segments.back().nodes.push_back(nodes[i]);
  }

  for (int i = 0; i < N; ++i) p.est_compute_us += cost[dev[i]][i];
  for (size_t e = 0; e < edges.size(); ++e) edge_cost(static_cast<int>(e), &p.est_transfer_us, &p.est_transfer_bytes);
  return p;
}

}  // namespace tessera
