#include "compiler/lower.h"

#include <limits>
#include <map>
#include <unordered_map>

#include "compiler/plan_memory.h"

namespace tessera {

const char* BufferKindName(BufferKind k) {
  switch (k) {
    case BufferKind::kInput: return "input";
    case BufferKind::kOutput: return "output";
    case BufferKind::kIntermediate: return "intermediate";
    case BufferKind::kState: return "state";
    case BufferKind::kScratch: return "scratch";
  }
  return "intermediate";
}

bool ParseBufferKind(const std::string& s, BufferKind* out) {
  for (BufferKind k : {BufferKind::kInput, BufferKind::kOutput, BufferKind::kIntermediate, BufferKind::kState,
                       BufferKind::kScratch}) {
    if (s == BufferKindName(k)) { *out = k; return true; }
  }
  return false;
}

const PlanBuffer* Plan::FindBuffer(const std::string& value, int32_t device) const {
  for (const auto& b : buffers)
    if (b.device == device && b.value == value) return &b;
  return nullptr;
}

Result<Plan> LowerToPlan(std::unique_ptr<Graph> graph, const Partition& partition,
                         const std::vector<DeviceRole>& devices, int64_t max_arena_bytes) {
  Plan plan;
  for (const auto& d : devices) plan.devices.push_back({d.role, d.backend, d.index, 0, 0});

  // Global step index of each node.
  std::unordered_map<const Node*, int64_t> step;
  std::unordered_map<const Node*, int32_t> node_dev;
  int64_t t = 0;
  for (size_t s = 0; s < partition.segments.size(); ++s) {
    for (const Node* n : partition.segments[s].nodes) {
      step[n] = t++;
      node_dev[n] = partition.segments[s].device;
    }
  }
  const int64_t kEnd = t;  // graph outputs live until the end

  struct Live { int64_t first = std::numeric_limits<int64_t>::max(), last = -1; BufferKind kind; };
  // (value, device) -> liveness
  std::map<std::pair<const Value*, int32_t>, Live> live;
  std::map<std::pair<const Value*, int32_t>, bool> transferred;
  auto touch = [&](const Value* v, int32_t dev, int64_t first, int64_t last) {
    Live& l = live[{v, dev}];
    l.first = std::min(l.first, first);
    l.last = std::max(l.last, last);
    l.kind = v->is_graph_input() ? BufferKind::kInput
             : v->is_graph_output() ? BufferKind::kOutput : BufferKind::kIntermediate;
  };

  for (size_t s = 0; s < partition.segments.size(); ++s) {
    const auto& seg = partition.segments[s];
    PlanSegment ps;
    ps.device = seg.device;
    int64_t seg_start = step[seg.nodes.front()];
    for (const Node* n : seg.nodes) {
      ps.nodes.push_back(n->name());
      int64_t i = step[n];
      for (const Value* in : n->inputs()) {
        if (!in || in->is_constant()) continue;
        const Node* prod = in->producer();
        if (prod && node_dev.count(prod) && node_dev[prod] != seg.device) {
          // Produced elsewhere: transfer before this segment (once per device).
          if (!transferred[{in, seg.device}]) {
            transferred[{in, seg.device}] = true;
            plan.transfers.push_back({in->name(), node_dev[prod], seg.device});
            plan.steps.push_back({PlanStep::kTransfer, static_cast<int32_t>(plan.transfers.size() - 1)});
            touch(in, node_dev[prod], step[prod], seg_start);
          }
          touch(in, seg.device, seg_start, i);
        } else if (!prod) {
          touch(in, seg.device, 0, i);  // graph input (or outer-scope value)
        } else {
          touch(in, seg.device, step[prod], i);
        }
      }
      for (const Value* o : n->outputs()) {
        if (!o) continue;
        touch(o, seg.device, i, o->is_graph_output() ? kEnd : i);
      }
    }
    plan.segments.push_back(std::move(ps));
    plan.steps.push_back({PlanStep::kSegment, static_cast<int32_t>(plan.segments.size() - 1)});
  }

  // Arena per device.
  for (size_t d = 0; d < devices.size(); ++d) {
    std::vector<BufferRequest> reqs;
    std::vector<std::pair<const Value*, Live>> vals;
    for (const auto& [key, l] : live) {
      if (key.second != static_cast<int32_t>(d)) continue;
      const Value* v = key.first;
      auto ints = v->shape().AsInts();
      if (!ints || v->dtype() == DType::kUndefined)
        return Internal("value '", v->name(), "' has no static type (", v->type().ToString(),
                        ") at memory planning");
      if (v->dtype() == DType::kString)
        return Unsupported("value '", v->name(), "' is a string tensor; device memory plans hold numeric tensors");
      TSR_ASSIGN_OR_RETURN(int64_t bytes, CheckedByteSize(*ints, v->dtype()));
      reqs.push_back({static_cast<uint64_t>(bytes), l.first, l.last});
      vals.push_back({v, l});
    }
    ArenaPlan ap = PlanArena(reqs);
    if (max_arena_bytes > 0 && ap.arena_bytes > static_cast<uint64_t>(max_arena_bytes))
      return OutOfMemory("device ", devices[d].role, " needs an arena of ", ap.arena_bytes,
                         " bytes, above the allocation cap of ", max_arena_bytes, " bytes (option max_alloc_bytes)");
    plan.devices[d].arena_bytes = ap.arena_bytes;
    plan.devices[d].arena_lower_bound = ap.lower_bound;
    for (size_t i = 0; i < vals.size(); ++i)
      plan.buffers.push_back({vals[i].first->name(), static_cast<int32_t>(d), vals[i].second.kind, ap.offsets[i],
                              reqs[i].bytes});
  }
  plan.graph = std::move(graph);
  return plan;
}

}  // namespace tessera
