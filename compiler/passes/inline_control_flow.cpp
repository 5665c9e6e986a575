// inline_control_flow: removes If, Loop and Scan nodes of the top-level graph
// whose control is known at compile time, by copying their bodies inline:
//   - If with a constant condition becomes the chosen branch;
//   - Loop with a constant trip count and/or condition is unrolled, provided
//     the body passes its condition through unchanged (cond_out = cond_in, as
//     in for-loops and ONNX's function expansions) or makes it a constant;
//   - Scan is unrolled over its scan axis, whose length the shapes give.
// Conditions and trip counts that come from graph inputs become constants by
// value specialization (compiler/specialize.h: If input 0, Loop inputs 0-1).
// Nodes left in place (conditions not known yet, loops over UNROLL_LIMIT
// body copies, bodies with nested subgraphs) are untouched; the backends
// then report them as unsupported.
#include <algorithm>
#include <unordered_map>

#include "compiler/pass.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

constexpr int64_t kMaxInlinedNodes = 1 << 16;  // body nodes copied per control-flow node

struct Inliner {
  Graph& g;
  int64_t copied = 0;

  // Copies `body`'s nodes into g. `map` sends body inputs to values of g;
  // body outputs are returned mapped. Values of enclosing scopes stay as is.
  Result<std::vector<Value*>> Inline(const Graph& body, std::unordered_map<const Value*, Value*> map,
                                     const std::string& prefix) {
    auto lookup = [&](Value* v) -> Value* {
      if (!v) return nullptr;
      auto it = map.find(v);
      if (it != map.end()) return it->second;
      if (v->owner() == &body && v->is_constant()) {  // a body initializer
        Value* c = g.AddConstant(g.UniqueName(prefix + v->name()), *v->constant());
        map[v] = c;
        return c;
      }
      return v;  // from an enclosing scope
    };
    for (const Node* n : body.nodes()) {
      if (++copied > kMaxInlinedNodes) return Unsupported("more than ", kMaxInlinedNodes, " body nodes to inline");
      std::vector<Value*> ins;
      for (Value* in : n->inputs()) ins.push_back(lookup(in));
      Node* c = g.AddNode(n->op_type(), ins, n->num_outputs(), g.UniqueName(prefix + n->name()), n->domain());
      for (const auto& [k, a] : n->attrs()) c->set_attr(k, a);
      for (size_t o = 0; o < n->num_outputs(); ++o)
        if (n->output(o)) map[n->output(o)] = c->output(o);
    }
    std::vector<Value*> outs;
    for (Value* o : body.outputs()) outs.push_back(lookup(o));
    return outs;
  }

  Value* I64Vector(const std::string& name, std::vector<int64_t> v) {
    std::vector<int64_t> dims = {static_cast<int64_t>(v.size())};
    return g.AddConstant(g.UniqueName(name), Tensor::FromVector<int64_t>(DType::kI64, dims, v));
  }
  Value* ScalarI64(const std::string& name, int64_t v) {
    return g.AddConstant(g.UniqueName(name), Tensor::ScalarI64(v));
  }

  // Unsqueeze(v, axis) in the graph's opset form.
  Value* Unsqueeze(Value* v, int64_t axis) {
    if (g.OpsetFor("") >= 13) return g.AddNode("Unsqueeze", {v, I64Vector("axes", {axis})}, 1)->output(0);
    Node* n = g.AddNode("Unsqueeze", {v}, 1);
    n->set_attr("axes", Attribute::Ints({axis}));
    return n->output(0);
  }
  // Stacks `parts` along a new axis.
  Value* Stack(const std::vector<Value*>& parts, int64_t axis) {
    std::vector<Value*> u;
    for (Value* p : parts) u.push_back(Unsqueeze(p, axis));
    Node* c = g.AddNode("Concat", u, 1);
    c->set_attr("axis", Attribute::Int(axis));
    return c->output(0);
  }
  // x[..., i, ...] along `axis` (the axis removed).
  Value* Take(Value* x, int64_t i, int64_t axis) {
    Node* n = g.AddNode("Gather", {x, ScalarI64("index", i)}, 1);
    n->set_attr("axis", Attribute::Int(axis));
    return n->output(0);
  }
};

// Replaces node n's outputs by `vals` keeping n's output Values (their names
// may be graph outputs): each becomes an Identity of the new value.
void ReplaceOutputs(Graph& g, Node* n, const std::vector<Value*>& vals) {
  std::vector<Value*> outs = n->outputs();
  g.RemoveNode(n);
  for (size_t i = 0; i < outs.size() && i < vals.size(); ++i)
    if (outs[i]) g.AddNodeWithOutputs("Identity", {vals[i]}, {outs[i]}, g.UniqueName(n->name() + "_out"));
}

const Graph* Body(const Node& n, const char* attr) {
  const Attribute* a = n.attr(attr);
  return a && a->type == AttrType::kGraph ? a->g.get() : nullptr;
}

bool HasNestedSubgraphs(const Graph& b) {
  for (const Node* n : b.nodes())
    for (const auto& [k, a] : n->attrs())
      if (a.type == AttrType::kGraph) return true;
  return false;
}

const Tensor* ConstantOf(const Value* v) { return v ? v->constant() : nullptr; }

// The body output `cond_out` in terms of the body input `cond_in`: true when it
// is cond_in itself or Identity chains of it.
bool PassesThrough(const Value* cond_out, const Value* cond_in) {
  while (cond_out && cond_out != cond_in) {
    const Node* p = cond_out->producer();
    if (!p || p->op_type() != "Identity") return false;
    cond_out = p->input(0);
  }
  return cond_out == cond_in;
}

Result<bool> InlineIf(Inliner& in, Node* n) {
  const Tensor* c = ConstantOf(n->input(0));
  if (!c || c->num_elements() != 1) return false;
  const Graph* branch = Body(*n, c->GetAsInt64(0) != 0 ? "then_branch" : "else_branch");
  if (!branch || HasNestedSubgraphs(*branch) || branch->outputs().size() != n->num_outputs()) return false;
  TSR_ASSIGN_OR_RETURN(std::vector<Value*> outs, in.Inline(*branch, {}, n->name() + "_"));
  ReplaceOutputs(in.g, n, outs);
  return true;
}

Result<bool> InlineLoop(Inliner& in, Node* n) {
  const Graph* body = Body(*n, "body");
  if (!body || HasNestedSubgraphs(*body)) return false;
  const Value* m = n->input(0);
  const Value* cond = n->num_inputs() > 1 ? n->input(1) : nullptr;
  if ((m && !ConstantOf(m)) || (cond && !ConstantOf(cond))) return false;
  if (!m && !cond) return false;  // an infinite loop as far as shapes go
  const size_t carried = n->num_inputs() >= 2 ? n->num_inputs() - 2 : 0;
  const auto& bin = body->inputs();
  const auto& bout = body->outputs();
  if (bin.size() != carried + 2 || bout.size() < carried + 1) return false;
  const size_t scans = bout.size() - 1 - carried;
  const bool passes = PassesThrough(bout[0], bin[1]);
  if (!passes && !ConstantOf(bout[0])) return false;  // the body computes its condition
  int64_t trip = m ? ConstantOf(m)->GetAsInt64(0) : -1;
  bool go = cond ? ConstantOf(cond)->GetAsInt64(0) != 0 : true;
  if (!m && passes && go) return false;  // while(true) with an unchanging condition
  Value* cond_val = cond ? n->input(1) : in.g.AddConstant(in.g.UniqueName("cond"), Tensor::FromVector<uint8_t>(DType::kBool, {}, {1}));
  std::vector<Value*> state(n->inputs().begin() + 2, n->inputs().end());
  std::vector<std::vector<Value*>> scan_parts(scans);
  int64_t i = 0;
  for (; go && (trip < 0 || i < trip); ++i) {
    std::unordered_map<const Value*, Value*> map;
    map[bin[0]] = in.ScalarI64("iter", i);
    map[bin[1]] = cond_val;
    for (size_t k = 0; k < carried; ++k) map[bin[2 + k]] = state[k];
    TSR_ASSIGN_OR_RETURN(std::vector<Value*> outs, in.Inline(*body, map, n->name() + "_it" + std::to_string(i) + "_"));
    if (!passes) {
      cond_val = outs[0];
      go = ConstantOf(bout[0])->GetAsInt64(0) != 0;
    }
    for (size_t k = 0; k < carried; ++k) state[k] = outs[1 + k];
    for (size_t k = 0; k < scans; ++k) scan_parts[k].push_back(outs[1 + carried + k]);
  }
  if (scans > 0 && i == 0) return false;  // empty scan outputs need element shapes the graph lacks
  std::vector<Value*> results = state;
  for (size_t k = 0; k < scans; ++k) results.push_back(in.Stack(scan_parts[k], 0));
  ReplaceOutputs(in.g, n, results);
  return true;
}

Result<bool> InlineScan(Inliner& in, Node* n, int64_t opset) {
  const Graph* body = Body(*n, "body");
  const Attribute* ns = n->attr("num_scan_inputs");
  if (!body || HasNestedSubgraphs(*body) || !ns) return false;
  // Opset 8 has a sequence_lens input and a batch axis 0 on every input.
  const bool batched = opset < 9;
  if (batched && n->input(0)) return false;  // per-batch sequence lengths: not unrolled
  std::vector<Value*> ins(n->inputs().begin() + (batched ? 1 : 0), n->inputs().end());
  const size_t num_scan = static_cast<size_t>(ns->i);
  if (num_scan == 0 || num_scan > ins.size()) return false;
  const size_t num_state = ins.size() - num_scan;
  const auto& bout = body->outputs();
  if (body->inputs().size() != ins.size() || bout.size() < num_state) return false;
  const size_t num_out_scan = bout.size() - num_state;
  auto ints = [&](const char* name, size_t count) {
    std::vector<int64_t> v(count, 0);
    if (const Attribute* a = n->attr(name))
      for (size_t k = 0; k < count && k < a->ints.size(); ++k) v[k] = a->ints[k];
    return v;
  };
  std::vector<int64_t> in_axes = ints("scan_input_axes", num_scan), in_dirs = ints("scan_input_directions", num_scan);
  std::vector<int64_t> out_axes = ints("scan_output_axes", num_out_scan);
  std::vector<int64_t> out_dirs = ints(batched ? "directions" : "scan_output_directions", num_out_scan);
  if (batched) in_dirs = ints("directions", num_scan), std::fill(out_dirs.begin(), out_dirs.end(), 0);
  // Static shapes: every input's shape must be known.
  int64_t batch = 1, len = -1;
  for (size_t k = 0; k < ins.size(); ++k) {
    auto d = ins[k]->shape().AsInts();
    if (!d) return false;
    if (batched) batch = d->empty() ? 1 : (*d)[0];
    if (k >= num_state) {
      int64_t rank = static_cast<int64_t>(d->size()) - (batched ? 1 : 0);
      int64_t ax = in_axes[k - num_state] < 0 ? in_axes[k - num_state] + rank : in_axes[k - num_state];
      if (ax < 0 || ax >= rank) return false;
      in_axes[k - num_state] = ax;
      int64_t l = (*d)[static_cast<size_t>(ax + (batched ? 1 : 0))];
      if (len >= 0 && l != len) return false;
      len = l;
    }
  }
  if (len <= 0 || batch <= 0) return false;
  for (size_t k = 0; k < num_out_scan; ++k) {
    if (out_axes[k] >= 0) continue;
    const Shape& r = bout[num_state + k]->shape();
    if (!r.has_rank()) return false;
    out_axes[k] += static_cast<int64_t>(r.rank()) + 1;
  }
  std::vector<std::vector<Value*>> final_state(num_state), outs_b(num_out_scan);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Value*> state, seq;
    for (size_t k = 0; k < ins.size(); ++k) {
      Value* x = batched ? in.Take(ins[k], b, 0) : ins[k];
      (k < num_state ? state : seq).push_back(x);
    }
    std::vector<std::vector<Value*>> parts(num_out_scan);
    for (int64_t t = 0; t < len; ++t) {
      std::unordered_map<const Value*, Value*> map;
      for (size_t k = 0; k < num_state; ++k) map[body->inputs()[k]] = state[k];
      for (size_t k = 0; k < num_scan; ++k) {
        int64_t idx = in_dirs[k] ? len - 1 - t : t;
        map[body->inputs()[num_state + k]] = in.Take(seq[k], idx, in_axes[k]);
      }
      TSR_ASSIGN_OR_RETURN(std::vector<Value*> o,
                           in.Inline(*body, map, n->name() + "_b" + std::to_string(b) + "t" + std::to_string(t) + "_"));
      for (size_t k = 0; k < num_state; ++k) state[k] = o[k];
      for (size_t k = 0; k < num_out_scan; ++k) parts[k].push_back(o[num_state + k]);
    }
    for (size_t k = 0; k < num_state; ++k) final_state[k].push_back(state[k]);
    for (size_t k = 0; k < num_out_scan; ++k) {
      if (out_dirs[k]) std::reverse(parts[k].begin(), parts[k].end());
      outs_b[k].push_back(in.Stack(parts[k], out_axes[k]));
    }
  }
  std::vector<Value*> results;
  for (size_t k = 0; k < num_state; ++k) results.push_back(batched ? in.Stack(final_state[k], 0) : final_state[k][0]);
  for (size_t k = 0; k < num_out_scan; ++k) results.push_back(batched ? in.Stack(outs_b[k], 0) : outs_b[k][0]);
  ReplaceOutputs(in.g, n, results);
  return true;
}

class InlineControlFlowPass : public Pass {
 public:
  const char* name() const override { return "inline_control_flow"; }
  Status Run(Graph& g, PassContext& ctx) override {
    bool changed = false;
    for (Node* n : g.nodes()) {
      if (!n->domain().empty() && n->domain() != "ai.onnx") continue;
      Inliner in{g};
      Result<bool> r = false;
      if (n->op_type() == "If") r = InlineIf(in, n);
      else if (n->op_type() == "Loop") r = InlineLoop(in, n);
      else if (n->op_type() == "Scan") r = InlineScan(in, n, g.OpsetFor(""));
      else continue;
      if (!r.ok()) return r.status().WithContext(n->Describe());
      if (*r) {
        ++ctx.changes;
        changed = true;
      }
    }
    if (!changed) return Status::Ok();
    TSR_RETURN_IF_ERROR(g.TopoSort());
    return InferGraphTypes(g);  // the copied nodes have no types yet
  }
};

}  // namespace

std::unique_ptr<Pass> CreateInlineControlFlowPass() { return std::make_unique<InlineControlFlowPass>(); }

}  // namespace tessera
