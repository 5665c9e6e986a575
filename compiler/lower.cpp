#include "compiler/lower.h"

#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "compiler/assign_layouts.h"
#include "compiler/plan_memory.h"

namespace tessera {
namespace {

// ONNX ops whose CPU kernels (and any backend's, by the ABI contract in
// backend.h) may write their output over an input of identical type: every
// output element depends only on the same element of that input.
// Names are Node::QualifiedOp() ("Relu", "tessera.Gelu").
const std::set<std::string> kInPlaceOps = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Exp",  "Neg",
                                           "Abs",  "Sqrt",      "Erf",     "Gelu", "Clip", "Add",
                                           "Sub",  "Mul",       "Div",     "tessera.Gelu",
                                           "tessera.FusedElementwise"};

// tessera.FusedConv(X, W, B, Z) with has_residual=1 may write Y over its
// residual Z (input 3) when Z dies at the node, is not also X, W or B, and
// has Y's type, shape and memory layout (backend.h, the in-place contract
// above `execute`). Only non-plain layouts qualify: the CPU backend's plain
// f32 1x1 path runs the convolution into Y first and adds Z afterwards
// (kernels_dnnl.cpp, the residual epilogue), which would read an overwritten
// Z. FusedGemm/FusedMatMul never qualify (CUDA's GEMM epilogue reads Z after
// the GEMM wrote Y).
constexpr size_t kFusedConvResidualInput = 3;

bool FusedConvCanOverwriteResidual(const Node* n, const Value* z) {
  if (n->QualifiedOp() != "tessera.FusedConv" || n->GetInt("has_residual", 0) == 0) return false;
  if (n->num_inputs() <= kFusedConvResidualInput || n->input(kFusedConvResidualInput) != z || !z) return false;
  if (z->is_constant() || n->num_outputs() != 1 || !n->output(0)) return false;
  for (size_t k = 0; k < kFusedConvResidualInput; ++k)
    if (n->input(k) == z) return false;
  const Value* y = n->output(0);
  if (!(z->type() == y->type())) return false;
  const std::string layout = OutputLayout(z->producer(), z->producer_output());
  return !layout.empty() && layout == OutputLayout(n, 0) &&
         OutputLayoutBytes(z->producer(), z->producer_output()) == OutputLayoutBytes(n, 0);
}

}  // namespace

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

  // Every planned value needs a static numeric type.
  for (const auto& [key, l] : live) {
    const Value* v = key.first;
    if (!v->shape().is_static() || v->dtype() == DType::kUndefined) {
      const Node* p = v->producer();
      return Unsupported("value '", v->name(), "'", p ? StrCat(" produced by ", p->Describe()) : std::string(),
                         " has type ", v->type().ToString(),
                         ", whose shape is not known before running; data-dependent shapes are not supported yet");
    }
    if (v->dtype() == DType::kString)
      return Unsupported("value '", v->name(), "' is a string tensor; device memory plans hold numeric tensors");
  }

  // In-place reuse: an elementwise node may write its output over an input of
  // the same type that dies at that node (see kInPlaceOps). Aliased values
  // form one group that gets one buffer spanning the group's lifetime.
  std::map<std::pair<const Value*, int32_t>, std::pair<const Value*, int32_t>> alias;  // member -> root
  auto root = [&](std::pair<const Value*, int32_t> k) {
    while (alias.count(k)) k = alias[k];
    return k;
  };
  for (const auto& seg : partition.segments) {
    for (const Node* n : seg.nodes) {
      if (n->QualifiedOp() == "tessera.FusedConv" && n->num_inputs() > kFusedConvResidualInput) {
        const Value* z = n->input(kFusedConvResidualInput);
        if (!FusedConvCanOverwriteResidual(n, z)) continue;
        auto key = std::make_pair(z, seg.device);
        auto it = live.find(key);
        if (it == live.end() || it->second.last != step[n]) continue;
        alias[{n->output(0), seg.device}] = root(key);
        continue;
      }
      if (!kInPlaceOps.count(n->QualifiedOp()) || n->num_outputs() != 1 || !n->output(0))
        continue;
      const Value* o = n->output(0);
      for (size_t k = 0; k < std::min<size_t>(n->num_inputs(), 2); ++k) {
        const Value* in = n->input(k);
        if (!in || in->is_constant() || !(in->type() == o->type())) continue;
        auto key = std::make_pair(in, seg.device);
        auto it = live.find(key);
        if (it == live.end() || it->second.last != step[n]) continue;
        // The input's group ends here, so the output continues it (chains of
        // elementwise ops keep reusing one buffer).
        alias[{o, seg.device}] = root(key);
        break;
      }
    }
  }

  // Arena per device.
  for (size_t d = 0; d < devices.size(); ++d) {
    std::vector<BufferRequest> reqs;
    std::map<std::pair<const Value*, int32_t>, size_t> group_req;  // root -> request index
    std::vector<std::pair<const Value*, Live>> vals;
    std::vector<size_t> val_req;
    for (const auto& [key, l] : live) {
      if (key.second != static_cast<int32_t>(d)) continue;
      const Value* v = key.first;
      TSR_ASSIGN_OR_RETURN(int64_t plain_bytes, CheckedByteSize(*v->shape().AsInts(), v->dtype()));
      // A non-plain layout may need more (padded blocks; assign_layouts.h).
      const int64_t bytes = std::max<int64_t>(
          plain_bytes, static_cast<int64_t>(OutputLayoutBytes(v->producer(), v->producer_output())));
      auto r = root(key);
      auto [git, fresh] = group_req.emplace(r, reqs.size());
      if (fresh) {
        reqs.push_back({static_cast<uint64_t>(bytes), l.first, l.last});
      } else {
        BufferRequest& g = reqs[git->second];
        g.bytes = std::max<uint64_t>(g.bytes, static_cast<uint64_t>(bytes));
        g.first = std::min(g.first, l.first);
        g.last = std::max(g.last, l.last);
      }
      vals.push_back({v, l});
      val_req.push_back(git->second);
    }
    ArenaPlan ap = PlanArena(reqs);
    if (ap.arena_bytes > static_cast<uint64_t>(INT64_MAX))
      return OutOfMemory("device ", devices[d].role, " needs an arena of more than 2^63 bytes (", reqs.size(),
                         " buffers); the model's tensor sizes are not realistic");
    if (max_arena_bytes > 0 && ap.arena_bytes > static_cast<uint64_t>(max_arena_bytes))
      return OutOfMemory("device ", devices[d].role, " needs an arena of ", ap.arena_bytes,
                         " bytes, above the allocation cap of ", max_arena_bytes, " bytes (option max_alloc_bytes)");
    plan.devices[d].arena_bytes = ap.arena_bytes;
    plan.devices[d].arena_lower_bound = ap.lower_bound;
    for (size_t i = 0; i < vals.size(); ++i) {
      const Value* v = vals[i].first;
      uint64_t bytes = std::max<uint64_t>(
          static_cast<uint64_t>(CheckedByteSize(*v->shape().AsInts(), v->dtype()).value()),
          OutputLayoutBytes(v->producer(), v->producer_output()));
      plan.buffers.push_back({v->name(), static_cast<int32_t>(d), vals[i].second.kind, ap.offsets[val_req[i]], bytes,
                              OutputLayout(v->producer(), v->producer_output())});
    }
  }
  plan.graph = std::move(graph);
  return plan;
}

}  // namespace tessera
