#include "compiler/precision.h"

#include <set>
#include <unordered_map>
#include <unordered_set>

#include "compiler/graph_view.h"

namespace tessera {
namespace {

// Ops that do the heavy arithmetic: retyped whenever the device accepts them.
bool IsComputeOp(const Node* n) {
  static const std::set<std::string> kOnnx = {"Conv", "MatMul", "Gemm"};
  static const std::set<std::string> kTessera = {"FusedConv", "FusedGemm", "FusedMatMul", "FusedAttention"};
  return n->domain().empty() ? kOnnx.count(n->op_type()) != 0
                             : n->domain() == "tessera" && kTessera.count(n->op_type()) != 0;
}

// Elementwise and data-movement ops that stay in the reduced type when one of
// their float inputs already is (so a region does not bounce through f32).
bool IsPassThroughOp(const Node* n) {
  static const std::set<std::string> kOnnx = {
      "Add",       "Sub",     "Mul",     "Div",       "Relu",      "LeakyRelu", "Gelu",        "Sigmoid",
      "Tanh",      "Erf",     "Clip",    "Reshape",   "Transpose", "Concat",    "Slice",       "Gather",
      "Flatten",   "Squeeze", "Unsqueeze", "Split",   "Identity",  "MaxPool",   "AveragePool", "GlobalAveragePool",
      "Expand"};
  static const std::set<std::string> kTessera = {"Gelu", "FusedElementwise"};
  return n->domain().empty() ? kOnnx.count(n->op_type()) != 0
                             : n->domain() == "tessera" && kTessera.count(n->op_type()) != 0;
}

// Normalizations that keep reduced-type storage for X, scale, bias and Y
// (the schema wants them alike) while the optional statistics outputs
// (Mean/InvStdDev, typed by stash_type) stay f32. Retyped, like pass-through
// ops, only when X already is reduced and the device claims the reduced
// signature; the device's kernel is expected to compute the statistics in f32.
bool IsF32StatsOp(const Node* n) { return n->domain().empty() && n->op_type() == "LayerNormalization"; }

// Whether output `i` of `n` changes to the reduced type when `n` is retyped.
bool RetypesOutput(const Node* n, size_t i) { return !IsF32StatsOp(n) || i == 0; }

bool HasSubgraph(const Node* n) {
  for (const auto& [name, a] : n->attrs())
    if (a.type == AttrType::kGraph) return true;
  return false;
}

bool IsF32(const Value* v) { return v && v->dtype() == DType::kF32; }

Result<Tensor> ConvertConstant(const Tensor& t, DType to) {
  TSR_ASSIGN_OR_RETURN(Tensor out, Tensor::Zeros(to, t.dims()));
  const float* src = t.data<float>();
  uint16_t* dst = static_cast<uint16_t*>(out.mutable_raw());
  const int64_t n = t.num_elements();
  if (to == DType::kBF16)
    FloatToBF16Array(src, dst, n);
  else
    FloatToHalfArray(src, dst, n);
  return out;
}

class PrecisionRewriter {
 public:
  PrecisionRewriter(Graph& g, const Partition& part, const std::vector<DeviceCandidate>& devices, DType compute,
                    PrecisionReport* report)
      : g_(g), part_(part), devices_(devices), compute_(compute), report_(*report) {}

  Result<Partition> Run() {
    // Execution order: the segments' (the partitioner may have reordered nodes).
    std::vector<Node*> order;
    for (const auto& seg : part_.segments)
      for (const Node* n : seg.nodes) {
        order.push_back(const_cast<Node*>(n));  // nodes of g_, which we may rewrite
        device_of_[n] = seg.device;
      }
    const std::vector<Node*> graph_order = g_.nodes();
    if (order.size() != graph_order.size())
      return Internal("apply_precision: the partition's segments hold ", order.size(), " nodes, the graph ",
                      graph_order.size());
    std::unordered_map<const Node*, std::string> reason_of;
    for (size_t i = 0; i < graph_order.size() && i < part_.node_reason.size(); ++i)
      reason_of[graph_order[i]] = part_.node_reason[i];
    std::unordered_set<const Value*> captured = g_.SubgraphCaptures();

    // 1. Decide, in order, which nodes compute in the reduced type.
    std::vector<int> cast_ok(devices_.size(), -1);
    std::unordered_set<const Value*> reduced_values;  // produced by retyped nodes
    std::unordered_set<const Node*> retype;
    for (Node* n : order) {
      const bool compute = IsComputeOp(n);
      const bool stats = IsF32StatsOp(n);
      if (!compute && !stats && !IsPassThroughOp(n)) continue;
      if (HasSubgraph(n)) continue;
      bool any_f32 = false, feeds_reduced = false, other_float = false;
      for (const Value* v : n->inputs()) {
        if (!v) continue;
        if (IsF32(v)) any_f32 = true;
        else if (IsAnyFloatDType(v->dtype()) && v->dtype() != compute_) other_float = true;
        if (reduced_values.count(v)) feeds_reduced = true;
      }
      for (size_t i = 0; i < n->num_outputs(); ++i) {
        const Value* v = n->output(i);
        if (!v) continue;
        if (captured.count(v)) other_float = true;  // read by a subgraph: leave it alone
        if (!RetypesOutput(n, i)) continue;
        if (IsF32(v)) any_f32 = true;
        else if (IsAnyFloatDType(v->dtype())) other_float = true;
      }
      if (!any_f32 || other_float) continue;
      if (!compute && !feeds_reduced) continue;
      int32_t dev = device_of_[n];
      if (dev < 0 || static_cast<size_t>(dev) >= devices_.size()) continue;
      if (cast_ok[dev] < 0) {
        TSR_ASSIGN_OR_RETURN(bool ok, DeviceRunsCasts(dev));
        cast_ok[dev] = ok ? 1 : 0;
      }
      if (!cast_ok[dev]) {
        if (compute) Refuse(n, dev, "the device cannot run Cast between f32 and " + std::string(DTypeName(compute_)));
        continue;
      }
      TSR_ASSIGN_OR_RETURN(std::string why, ClaimReduced(n, dev));
      if (!why.empty()) {
        if (compute) Refuse(n, dev, why);
        continue;
      }
      retype.insert(n);
      for (size_t i = 0; i < n->num_outputs(); ++i)
        if (IsF32(n->output(i)) && RetypesOutput(n, i)) reduced_values.insert(n->output(i));
    }
    if (retype.empty()) return part_;

    // 2. Rebuild the node list in order, inserting casts next to the nodes they serve.
    std::unordered_map<const Value*, int> readers_f32;  // f32 readers (non-retyped nodes) per value
    for (Node* n : order)
      if (!retype.count(n))
        for (const Value* v : n->inputs())
          if (v) readers_f32[v]++;
    std::vector<std::pair<Node*, int32_t>> new_order;  // node, device
    for (Node* n : order) {
      const int32_t dev = device_of_[n];
      if (!retype.count(n)) {
        new_order.push_back({Readd(n, n->inputs(), n->outputs()), dev});
        continue;
      }
      std::vector<Value*> ins = n->inputs();
      for (auto& v : ins) {
        if (!IsF32(v)) continue;
        TSR_ASSIGN_OR_RETURN(v, ReducedVersion(v, dev, &new_order));
      }
      std::vector<Value*> outs = n->outputs();
      std::vector<std::pair<Value*, Value*>> back;  // (reduced, original f32)
      for (size_t i = 0; i < outs.size(); ++i) {
        Value*& v = outs[i];
        if (!IsF32(v) || !RetypesOutput(n, i)) continue;
        Value* r = g_.AddValue(g_.UniqueName(v->name() + "_" + DTypeName(compute_)),
                               TensorType{compute_, v->shape()});
        reduced_of_[v] = r;
        back.push_back({r, v});
        v = r;
      }
      g_.RemoveNode(n);
      Node* nn = g_.AddNodeWithOutputs(n->op_type(), ins, outs, n->name(), n->domain());
      for (const auto& [k, a] : n->attrs()) nn->set_attr(k, a);
      replaced_.push_back({nn, n});
      new_order.push_back({nn, dev});
      report_.nodes_retyped++;
      for (auto& [r, orig] : back) {
        if (!orig->is_graph_output() && readers_f32[orig] == 0) continue;  // only reduced readers
        Node* c = g_.AddNodeWithOutputs("Cast", {r}, {orig}, g_.UniqueName(orig->name() + "_to_f32"));
        c->set_attr("to", Attribute::Int(static_cast<int64_t>(DType::kF32)));
        new_order.push_back({c, dev});
        report_.casts_inserted++;
      }
    }
    // Old nodes are dead now; drop them, then rebuild the order as emitted.
    g_.Compact();
    TSR_RETURN_IF_ERROR(g_.TopoSort());
    RemoveCastPairs();
    g_.Compact();

    Partition p = part_;
    p.node_device.clear();
    p.node_reason.clear();
    p.segments.clear();
    std::unordered_map<const Node*, int32_t> dev_of;
    for (const auto& [n, d] : new_order) dev_of[n] = d;
    for (const auto& [n, old] : replaced_) reason_of[n] = reason_of[old];
    for (Node* n : g_.nodes()) {
      auto it = dev_of.find(n);
      if (it == dev_of.end()) return Internal("apply_precision: node '", n->name(), "' has no device");
      p.node_device.push_back(it->second);
      auto r = reason_of.find(n);
      p.node_reason.push_back(r != reason_of.end() ? r->second : "inserted by apply_precision");
      if (p.segments.empty() || p.segments.back().device != it->second) p.segments.push_back({it->second, {}});
      p.segments.back().nodes.push_back(n);
    }
    return p;
  }

 private:
  void Refuse(const Node* n, int32_t dev, const std::string& why) {
    report_.nodes_refused++;
    report_.notes.push_back(StrCat("'", n->name(), "' (", n->QualifiedOp(), ") stays f32 on ", devices_[dev].role,
                                   ": ", why));
  }

  // Re-adds `n` (appending it to the node order) with the given values.
  Node* Readd(Node* n, const std::vector<Value*>& ins, const std::vector<Value*>& outs) {
    g_.RemoveNode(n);
    Node* nn = g_.AddNodeWithOutputs(n->op_type(), ins, outs, n->name(), n->domain());
    for (const auto& [k, a] : n->attrs()) nn->set_attr(k, a);
    replaced_.push_back({nn, n});
    return nn;
  }

  // The reduced-type stand-in for f32 value `v` read on device `dev`.
  Result<Value*> ReducedVersion(Value* v, int32_t dev, std::vector<std::pair<Node*, int32_t>>* new_order) {
    auto it = reduced_of_.find(v);
    if (it != reduced_of_.end()) return it->second;
    const std::string name = g_.UniqueName(v->name() + "_" + DTypeName(compute_));
    Value* r = nullptr;
    if (const Tensor* c = v->constant()) {
      TSR_ASSIGN_OR_RETURN(Tensor t, ConvertedConstant(v, *c));
      r = g_.AddConstant(name, std::move(t));
      report_.weights_converted++;
    } else {
      r = g_.AddValue(name, TensorType{compute_, v->shape()});
      Node* cast = g_.AddNodeWithOutputs("Cast", {v}, {r}, g_.UniqueName(v->name() + "_to_" + DTypeName(compute_)));
      cast->set_attr("to", Attribute::Int(static_cast<int64_t>(compute_)));
      new_order->push_back({cast, dev});
      report_.casts_inserted++;
    }
    reduced_of_[v] = r;
    return r;
  }

  Result<Tensor> ConvertedConstant(const Value* v, const Tensor& c) {
    auto it = converted_.find(v);
    if (it != converted_.end()) return it->second;  // shares the storage
    TSR_ASSIGN_OR_RETURN(Tensor t, ConvertConstant(c, compute_));
    converted_.emplace(v, t);
    return t;
  }

  // Whether device `dev` runs Cast f32 -> reduced and back.
  Result<bool> DeviceRunsCasts(int32_t dev) {
    Graph sg;
    for (const auto& [dom, ver] : g_.opset_imports()) sg.set_opset(dom, ver);
    Value* x = sg.AddValue("x", TensorType{DType::kF32, Shape::FromInts({8})});
    sg.AddInput(x);
    Node* a = sg.AddNode("Cast", {x}, 1, "to_reduced");
    a->set_attr("to", Attribute::Int(static_cast<int64_t>(compute_)));
    a->output(0)->set_type(TensorType{compute_, Shape::FromInts({8})});
    Node* b = sg.AddNode("Cast", {a->output(0)}, 1, "to_f32");
    b->set_attr("to", Attribute::Int(static_cast<int64_t>(DType::kF32)));
    b->output(0)->set_type(TensorType{DType::kF32, Shape::FromInts({8})});
    sg.AddOutput(b->output(0));
    auto view = GraphView::Build({a, b});
    std::vector<tsr_claim> claims(2, tsr_claim{});
    TSR_RETURN_IF_ERROR(devices_[dev].claim(*view->view(), &claims));
    return claims[0].supported && claims[1].supported;
  }

  // "" when device `dev` claims `n` with its f32 values in the reduced type,
  // else the device's reason. The view is built on a scratch graph.
  Result<std::string> ClaimReduced(const Node* n, int32_t dev) {
    Graph sg;
    for (const auto& [dom, ver] : g_.opset_imports()) sg.set_opset(dom, ver);
    std::vector<Value*> ins;
    std::unordered_map<const Value*, Value*> made;
    for (const Value* v : n->inputs()) {
      if (!v) {
        ins.push_back(nullptr);
        continue;
      }
      auto m = made.find(v);
      if (m != made.end()) {
        ins.push_back(m->second);
        continue;
      }
      Value* s = nullptr;
      if (const Tensor* c = v->constant()) {
        if (IsF32(v)) {
          TSR_ASSIGN_OR_RETURN(Tensor t, ConvertedConstant(v, *c));
          s = sg.AddConstant(v->name(), std::move(t));
        } else {
          s = sg.AddConstant(v->name(), Tensor::Borrow(c->dtype(), c->dims(), c->raw(), c->nbytes(), nullptr));
        }
      } else {
        s = sg.AddValue(v->name(), TensorType{IsF32(v) ? compute_ : v->dtype(), v->shape()});
        sg.AddInput(s);
      }
      made[v] = s;
      ins.push_back(s);
    }
    Node* sn = sg.AddNode(n->op_type(), ins, n->num_outputs(), n->name(), n->domain());
    for (const auto& [k, a] : n->attrs()) sn->set_attr(k, a);
    for (size_t i = 0; i < n->num_outputs(); ++i) {
      const Value* o = n->output(i);
      if (!o) continue;
      sn->output(i)->set_type(TensorType{IsF32(o) && RetypesOutput(n, i) ? compute_ : o->dtype(), o->shape()});
      sg.AddOutput(sn->output(i));
    }
    auto view = GraphView::Build({sn});
    std::vector<tsr_claim> claims(1, tsr_claim{});
    TSR_RETURN_IF_ERROR(devices_[dev].claim(*view->view(), &claims));
    if (claims[0].supported) return std::string();
    return std::string(claims[0].reason[0] ? claims[0].reason : "not supported");
  }

  // Cast(to=reduced)(Cast(to=f32)(x)) with x of the reduced type is x.
  void RemoveCastPairs() {
    auto is_cast = [](const Node* n, DType to) {
      return n && !n->is_dead() && n->domain().empty() && n->op_type() == "Cast" && n->num_inputs() == 1 &&
             n->input(0) && n->GetInt("to", -1) == static_cast<int64_t>(to);
    };
    for (Node* n : g_.nodes()) {
      if (!is_cast(n, compute_)) continue;
      Node* up = n->input(0)->producer();
      if (!is_cast(up, DType::kF32) || up->input(0)->dtype() != compute_) continue;
      Value* out = n->output(0);
      if (!out || out->is_graph_output()) continue;
      g_.ReplaceAllUsesWith(out, up->input(0));
      g_.RemoveNode(n);
      report_.cast_pairs_removed++;
      if (g_.Consumers(up->output(0)).empty() && !up->output(0)->is_graph_output()) g_.RemoveNode(up);
    }
  }

  Graph& g_;
  const Partition& part_;
  const std::vector<DeviceCandidate>& devices_;
  DType compute_;
  PrecisionReport& report_;
  std::unordered_map<const Node*, int32_t> device_of_;
  std::unordered_map<const Value*, Value*> reduced_of_;
  std::unordered_map<const Value*, Tensor> converted_;
  std::vector<std::pair<const Node*, const Node*>> replaced_;  // (new, old)
};

}  // namespace

Result<DType> ParsePrecision(const std::string& name) {
  if (name == "f32" || name == "fp32") return DType::kF32;
  if (name == "bf16") return DType::kBF16;
  if (name == "f16" || name == "fp16") return DType::kF16;
  return InvalidArgument("precision '", name, "': expected f32, bf16 or f16");
}

Result<Partition> ApplyPrecision(Graph& g, const Partition& part, const std::vector<DeviceCandidate>& devices,
                                 DType compute, PrecisionReport* report) {
  PrecisionReport local;
  if (!report) report = &local;
  if (compute == DType::kF32) return part;
  if (compute != DType::kBF16 && compute != DType::kF16)
    return InvalidArgument("apply_precision: compute type ", DTypeName(compute), " is not bf16 or f16");
  PrecisionRewriter rw(g, part, devices, compute, report);
  TSR_ASSIGN_OR_RETURN(Partition p, rw.Run());
  // Nodes kept in f32 are placement notes (tessera inspect shows them).
  for (const auto& n : report->notes) p.notes.push_back("precision: " + n);
  return p;
}

PassStat PrecisionPassStat(const PrecisionReport& r, int64_t nodes_before, int64_t nodes_after, double millis) {
  PassStat s;
  s.pass = "apply_precision";
  s.nodes_before = nodes_before;
  s.nodes_after = nodes_after;
  s.changes = r.casts_inserted;
  s.millis = millis;
  return s;
}

}  // namespace tessera
