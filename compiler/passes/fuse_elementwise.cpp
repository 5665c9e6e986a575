// fuse_elementwise: replaces maximal trees of f32 elementwise ops with one
// tessera.FusedElementwise node (program format: graph/ops_fused_elementwise.cpp).
//
// A group is rooted at an elementwise node and grows upwards through operands
// produced by other elementwise nodes whose output is read only by that one
// consumer (possibly several times, as in x*x), is not a graph output and is
// not captured by a subgraph. Groups of two or more nodes are rewritten when
// the root's output shape is static and every leaf operand has a static shape
// broadcasting to it. Leaf operands become node inputs, except one-element
// constants, which become immediates (`constants`) unless dropping them would
// change the broadcast output shape. The root's output Value is kept (it may
// be a graph output). Fused ops: ONNX Add Sub Mul Div Max/Min (2 inputs)
// Pow (constant exponent) Neg Abs Relu LeakyRelu Sigmoid Tanh Exp Log Sqrt
// Reciprocal Erf Clip (constant bounds) HardSigmoid HardSwish Softplus Gelu,
// and tessera.Gelu. ctx.changes counts fused groups.
#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "compiler/pass.h"
#include "compiler/passes/pattern_util.h"
#include "graph/op_schema.h"

namespace tessera {
namespace {

// Must match graph/ops_fused_elementwise.cpp.
enum Opcode : int64_t {
  kAdd = 0, kSub, kMul, kDiv, kMax, kMin, kPow,
  kNeg, kAbs, kRelu, kLeakyRelu, kSigmoid, kTanh, kExp, kLog, kSqrt, kReciprocal, kErf,
  kGelu, kGeluTanh, kClip, kHardSigmoid, kHardSwish, kSoftplus,
};

// How one node maps to one instruction.
struct NodeInfo {
  int64_t opcode = 0;
  std::vector<Value*> data;   // data operands (1 or 2)
  std::vector<float> params;  // constant parameters (alpha, min/max, ...)
  // Pow's exponent as an immediate when it is a one-element non-f32 constant.
  std::optional<float> imm_exponent;
};

size_t PresentInputs(const Node& n) {
  size_t k = n.num_inputs();
  while (k > 0 && !n.input(k - 1)) --k;
  return k;
}

std::optional<NodeInfo> Classify(const Node& n, int64_t onnx_opset) {
  if (n.num_outputs() != 1 || !IsF32(n.output(0))) return std::nullopt;
  const std::string& op = n.op_type();
  const size_t nin = PresentInputs(n);
  NodeInfo info;
  if (n.domain() == "tessera") {
    if (op != "Gelu") return std::nullopt;
  } else if (!n.domain().empty()) {
    return std::nullopt;
  }
  static const std::map<std::string, int64_t> kBinary = {{"Add", kAdd}, {"Sub", kSub}, {"Mul", kMul},
                                                         {"Div", kDiv}, {"Max", kMax}, {"Min", kMin}};
  static const std::map<std::string, int64_t> kUnary = {
      {"Neg", kNeg},   {"Abs", kAbs},   {"Relu", kRelu},           {"Sigmoid", kSigmoid},
      {"Tanh", kTanh}, {"Exp", kExp},   {"Log", kLog},             {"Sqrt", kSqrt},
      {"Reciprocal", kReciprocal},      {"Erf", kErf},             {"HardSwish", kHardSwish},
      {"Softplus", kSoftplus}};
  if (auto it = kBinary.find(op); it != kBinary.end()) {
    if (nin != 2 || n.num_inputs() != 2 || !IsF32(n.input(0)) || !IsF32(n.input(1))) return std::nullopt;
    info.opcode = it->second;
    info.data = {n.input(0), n.input(1)};
    return info;
  }
  if (op == "Pow") {
    if (nin != 2 || !IsF32(n.input(0))) return std::nullopt;
    Value* e = n.input(1);
    if (!e->is_constant()) return std::nullopt;
    info.opcode = kPow;
    info.data = {n.input(0), e};
    if (!IsF32(e)) {
      auto v = ScalarConstant(e);
      if (!v) return std::nullopt;
      info.imm_exponent = *v;
    }
    return info;
  }
  // Unary ops: exactly one f32 input (Clip may carry its bounds as inputs).
  if (nin < 1 || !IsF32(n.input(0))) return std::nullopt;
  info.data = {n.input(0)};
  if (auto it = kUnary.find(op); it != kUnary.end()) {
    if (nin != 1) return std::nullopt;
    info.opcode = it->second;
    return info;
  }
  if (op == "LeakyRelu") {
    if (nin != 1) return std::nullopt;
    info.opcode = kLeakyRelu;
    info.params = {n.GetFloat("alpha", 0.01f)};
    return info;
  }
  if (op == "HardSigmoid") {
    if (nin != 1) return std::nullopt;
    info.opcode = kHardSigmoid;
    info.params = {n.GetFloat("alpha", 0.2f), n.GetFloat("beta", 0.5f)};
    return info;
  }
  if (op == "Gelu") {
    if (nin != 1) return std::nullopt;
    const std::string approx = n.GetString("approximate", "none");
    if (approx == "none") info.opcode = kGelu;
    else if (approx == "tanh") info.opcode = kGeluTanh;
    else return std::nullopt;
    return info;
  }
  if (op == "Clip") {
    float lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
    if (onnx_opset < 11) {
      if (nin != 1) return std::nullopt;
      lo = n.GetFloat("min", lo);
      hi = n.GetFloat("max", hi);
    } else {
      if (nin > 3) return std::nullopt;
      for (size_t i = 1; i < nin; ++i) {
        Value* b = n.input(i);
        if (!b) continue;  // omitted bound
        if (!IsF32(b)) return std::nullopt;
        auto v = ScalarConstant(b);
        if (!v) return std::nullopt;  // a runtime bound cannot be an immediate
        (i == 1 ? lo : hi) = *v;
      }
    }
    info.opcode = kClip;
    info.params = {lo, hi};
    return info;
  }
  return std::nullopt;
}

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// Static broadcast of int shapes; nullopt when they do not broadcast.
std::optional<std::vector<int64_t>> BroadcastInts(const std::vector<std::vector<int64_t>>& shapes) {
  std::vector<int64_t> r;
  for (const auto& s : shapes) {
    std::vector<int64_t> out(std::max(r.size(), s.size()), 1);
    for (size_t i = 0; i < out.size(); ++i) {
      const size_t from_end = out.size() - 1 - i;
      const int64_t a = from_end < r.size() ? r[r.size() - 1 - from_end] : 1;
      const int64_t b = from_end < s.size() ? s[s.size() - 1 - from_end] : 1;
      if (a != b && a != 1 && b != 1) return std::nullopt;
      out[i] = a == 1 ? b : a;
    }
    r = std::move(out);
  }
  return r;
}

class FuseElementwisePass : public Pass {
 public:
  const char* name() const override { return "fuse_elementwise"; }

  Status Run(Graph& g, PassContext& ctx) override {
    const int64_t opset = g.OpsetFor("");
    const std::vector<Node*> order = g.nodes();
    std::unordered_map<const Node*, size_t> position;
    std::unordered_map<const Node*, NodeInfo> infos;
    std::unordered_map<const Value*, std::vector<Node*>> consumers;
    for (size_t i = 0; i < order.size(); ++i) {
      Node* n = order[i];
      position[n] = i;
      if (auto info = Classify(*n, opset)) infos.emplace(n, std::move(*info));
      for (Value* v : n->inputs())
        if (v) consumers[v].push_back(n);
    }
    std::unordered_set<const Value*> captured;
    captured = g.SubgraphCaptures();

    // Grow groups from roots, last node first, so each group is maximal.
    std::unordered_set<const Node*> assigned;
    std::vector<std::vector<Node*>> groups;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      Node* root = *it;
      if (!infos.count(root) || assigned.count(root)) continue;
      std::vector<Node*> members = {root};
      assigned.insert(root);
      for (size_t w = 0; w < members.size(); ++w) {
        Node* n = members[w];
        for (Value* v : infos.at(n).data) {
          Node* p = v->producer();
          if (!p || !infos.count(p) || assigned.count(p)) continue;
          if (v->is_graph_output() || captured.count(v)) continue;
          const std::vector<Node*>& cs = consumers[v];
          if (std::any_of(cs.begin(), cs.end(), [n](Node* c) { return c != n; })) continue;
          assigned.insert(p);
          members.push_back(p);
        }
      }
      if (members.size() >= 2) groups.push_back(std::move(members));
    }

    bool changed = false;
    for (std::vector<Node*>& members : groups) {
      std::sort(members.begin(), members.end(),
                [&](const Node* a, const Node* b) { return position.at(a) < position.at(b); });
      if (Rewrite(g, members, infos)) {
        ++ctx.changes;
        changed = true;
      }
    }
    if (changed) TSR_RETURN_IF_ERROR(g.TopoSort());
    return Status::Ok();
  }

 private:
  // Builds the fused node for `members` (topological order, root last).
  // Returns false (graph untouched) when the group does not qualify.
  static bool Rewrite(Graph& g, const std::vector<Node*>& members,
                      const std::unordered_map<const Node*, NodeInfo>& infos) {
    Node* root = members.back();
    Value* out = root->output(0);
    auto out_dims = out->shape().AsInts();
    if (!out_dims) return false;
    std::unordered_set<const Value*> internal;
    for (const Node* m : members) internal.insert(m->output(0));

    // Leaf operands: node inputs, or one-element constants kept as immediates.
    std::vector<Value*> inputs;
    std::vector<Value*> imm_values;  // one-element constant leaves (data operands)
    auto add_unique = [](std::vector<Value*>& vec, Value* v) {
      if (std::find(vec.begin(), vec.end(), v) == vec.end()) vec.push_back(v);
    };
    for (const Node* m : members) {
      const NodeInfo& info = infos.at(m);
      for (size_t s = 0; s < info.data.size(); ++s) {
        Value* v = info.data[s];
        if (internal.count(v)) continue;
        if (info.opcode == kPow && s == 1 && info.imm_exponent) continue;  // non-f32 exponent: immediate
        if (ScalarConstant(v)) add_unique(imm_values, v);
        else add_unique(inputs, v);
      }
    }
    auto shapes_of = [](const std::vector<Value*>& vs) -> std::optional<std::vector<std::vector<int64_t>>> {
      std::vector<std::vector<int64_t>> r;
      for (const Value* v : vs) {
        auto d = v->shape().AsInts();
        if (!d) return std::nullopt;
        r.push_back(std::move(*d));
      }
      return r;
    };
    auto broadcast_matches = [&](const std::vector<Value*>& vs) {
      if (vs.empty()) return false;
      auto shapes = shapes_of(vs);
      if (!shapes) return false;
      auto b = BroadcastInts(*shapes);
      return b && *b == *out_dims;
    };
    if (!broadcast_matches(inputs)) {
      // Dropping the one-element constants changes the output shape (or
      // leaves no input): keep them as inputs instead.
      for (Value* v : imm_values) add_unique(inputs, v);
      imm_values.clear();
      if (!broadcast_matches(inputs)) return false;
    }

    // Register layout: inputs, then constants, then one register per member.
    std::vector<float> constants;
    std::unordered_map<uint32_t, int64_t> const_index;
    auto const_reg_later = [&](float f) -> int64_t {  // index into `constants`
      auto [it, fresh] = const_index.emplace(FloatBits(f), static_cast<int64_t>(constants.size()));
      if (fresh) constants.push_back(f);
      return it->second;
    };
    // First pass: collect constants so their register numbers are final.
    for (const Node* m : members) {
      const NodeInfo& info = infos.at(m);
      for (size_t s = 0; s < info.data.size(); ++s) {
        Value* v = info.data[s];
        if (info.opcode == kPow && s == 1 && info.imm_exponent) const_reg_later(*info.imm_exponent);
        else if (std::find(imm_values.begin(), imm_values.end(), v) != imm_values.end())
          const_reg_later(*ScalarConstant(v));
      }
      for (float p : info.params) const_reg_later(p);
    }
    const int64_t n_in = static_cast<int64_t>(inputs.size());
    const int64_t first_temp = n_in + static_cast<int64_t>(constants.size());
    std::unordered_map<const Value*, int64_t> reg;
    for (int64_t i = 0; i < n_in; ++i) reg[inputs[static_cast<size_t>(i)]] = i;
    std::vector<int64_t> program;
    for (size_t i = 0; i < members.size(); ++i) {
      const Node* m = members[i];
      const NodeInfo& info = infos.at(m);
      int64_t ops[3] = {-1, -1, -1};
      int k = 0;
      for (size_t s = 0; s < info.data.size(); ++s) {
        Value* v = info.data[s];
        if (info.opcode == kPow && s == 1 && info.imm_exponent) {
          ops[k++] = n_in + const_reg_later(*info.imm_exponent);
        } else if (auto it = reg.find(v); it != reg.end()) {
          ops[k++] = it->second;
        } else {
          ops[k++] = n_in + const_reg_later(*ScalarConstant(v));  // an immediate
        }
      }
      for (float p : info.params) ops[k++] = n_in + const_reg_later(p);
      const int64_t dst = first_temp + static_cast<int64_t>(i);
      program.insert(program.end(), {info.opcode, dst, ops[0], ops[1], ops[2]});
      reg[m->output(0)] = dst;
    }

    const std::string name = g.UniqueName(root->name() + "_fused");
    for (Node* m : members) g.RemoveNode(m);
    Node* fused = g.AddNodeWithOutputs("FusedElementwise", inputs, {out}, name, "tessera");
    fused->set_attr("program", Attribute::Ints(std::move(program)));
    if (!constants.empty()) fused->set_attr("constants", Attribute::Floats(std::move(constants)));
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseElementwisePass() { return std::make_unique<FuseElementwisePass>(); }

}  // namespace tessera
