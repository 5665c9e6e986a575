#include "graph/onnx/onnx_import.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <functional>
#include <onnx/onnx_pb.h>
#include <queue>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace tessera {
namespace onnx_detail {
// Defined in tensor_proto.cpp (protobuf types stay out of headers).
Result<Tensor> TensorFromProto(const onnx::TensorProto& p, const std::string& label, const std::string& model_dir,
                               const ImportOptions& opts);
Result<std::string> ReadFileBytes(const std::string& path, const char* what);
}  // namespace onnx_detail

namespace {

constexpr int64_t kMinOpset = 7;
constexpr int64_t kMaxOpset = 24;

bool IsDefaultDomain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

const char* TypeCaseName(onnx::TypeProto::ValueCase c) {
  switch (c) {
    case onnx::TypeProto::kSequenceType: return "a sequence";
    case onnx::TypeProto::kMapType: return "a map";
    case onnx::TypeProto::kOptionalType: return "an optional";
    case onnx::TypeProto::kSparseTensorType: return "a sparse tensor";
    default: return "a non-tensor";
  }
}

// The declared type of a value: dtype + shape with symbolic/unknown dims.
Result<TensorType> TypeFromProto(const onnx::ValueInfoProto& vi, const std::string& where) {
  TensorType t;  // undefined dtype, unknown rank
  if (!vi.has_type() || vi.type().value_case() == onnx::TypeProto::VALUE_NOT_SET) return t;
  const onnx::TypeProto& tp = vi.type();
  if (tp.value_case() != onnx::TypeProto::kTensorType)
    return Unsupported(where, ": value '", vi.name(), "' has ", TypeCaseName(tp.value_case()),
                       " type; only tensors are supported");
  const auto& tt = tp.tensor_type();
  const int32_t id = tt.elem_type();
  if (id != 0 && !IsKnownDType(id)) {
    const auto* desc = onnx::TensorProto_DataType_descriptor()->FindValueByNumber(id);
    return Unsupported(where, ": value '", vi.name(), "' has element type ", id,
                       desc ? StrCat(" (", desc->name(), ")") : std::string(), ", which is not supported");
  }
  t.dtype = static_cast<DType>(id);
  if (tt.has_shape()) {
    std::vector<Dim> dims;
    for (const auto& d : tt.shape().dim()) {
      if (d.has_dim_value() && d.dim_value() >= 0) {
        dims.push_back(Dim::Known(d.dim_value()));
      } else if (d.has_dim_param() && !d.dim_param().empty()) {
        dims.push_back(Dim::Symbol(d.dim_param()));
      } else {
        dims.push_back(Dim::Unknown());  // neither set, or a (non-standard) negative dim_value
      }
    }
    t.shape = Shape(std::move(dims));
  }
  return t;
}

// Names a graph uses (node inputs, graph outputs, recursively in subgraphs)
// without defining them: its references to enclosing scopes.
void CollectFreeNames(const onnx::GraphProto& g, std::set<std::string>* out) {
  std::unordered_set<std::string> defined;
  for (const auto& v : g.input()) defined.insert(v.name());
  for (const auto& t : g.initializer()) defined.insert(t.name());
  for (const auto& n : g.node())
    for (const auto& o : n.output()) defined.insert(o);
  std::set<std::string> used;
  for (const auto& n : g.node()) {
    for (const auto& i : n.input())
      if (!i.empty()) used.insert(i);
    for (const auto& a : n.attribute()) {
      if (a.has_g()) CollectFreeNames(a.g(), &used);
      for (const auto& sg : a.graphs()) CollectFreeNames(sg, &used);
    }
  }
  for (const auto& o : g.output()) used.insert(o.name());
  for (const auto& u : used)
    if (!defined.count(u)) out->insert(u);
}

bool UsesDefaultDomain(const onnx::GraphProto& g) {
  for (const auto& n : g.node()) {
    if (IsDefaultDomain(n.domain())) return true;
    for (const auto& a : n.attribute())
      if (a.has_g() && UsesDefaultDomain(a.g())) return true;
  }
  return false;
}

class Importer {
 public:
  Importer(const ImportOptions& opts, std::string model_dir) : opts_(opts), model_dir_(std::move(model_dir)) {}

  void AddFunction(const std::string& domain, const std::string& name) {
    functions_.insert({IsDefaultDomain(domain) ? "" : domain, name});
  }

  // Fills `g` from `gp`. `g.parent()` must already be set for subgraphs.
  Status ImportGraph(onnx::GraphProto& gp, Graph& g, const std::string& where);

 private:
  Result<Attribute> ImportAttribute(onnx::AttributeProto& a, const std::string& node_desc, Graph& g);
  Result<Tensor> ConstantNodeValue(const onnx::NodeProto& n, const std::string& node_desc);
  Result<std::vector<int>> NodeOrder(const onnx::GraphProto& gp, const std::vector<std::string>& names,
                                     const std::string& where);

  const ImportOptions& opts_;
  std::string model_dir_;
  std::set<std::pair<std::string, std::string>> functions_;
};

Result<Tensor> Importer::ConstantNodeValue(const onnx::NodeProto& n, const std::string& node_desc) {
  if (n.attribute_size() != 1)
    return InvalidArgument(node_desc, ": a Constant node needs exactly one value attribute, it has ",
                           n.attribute_size());
  const onnx::AttributeProto& a = n.attribute(0);
  const std::string& an = a.name();
  if (!a.ref_attr_name().empty())
    return Unsupported(node_desc, ": attribute '", an, "' refers to a function attribute");
  if (an == "value") {
    if (!a.has_t()) return InvalidArgument(node_desc, ": attribute 'value' holds no tensor");
    return onnx_detail::TensorFromProto(a.t(), StrCat(node_desc, " attribute 'value'"), model_dir_, opts_);
  }
  const int64_t count_f = a.floats_size(), count_i = a.ints_size();
  if (an == "value_float") return Tensor::ScalarF32(a.f());
  if (an == "value_int") return Tensor::ScalarI64(a.i());
  if (an == "value_floats")
    return Tensor::FromVector<float>(DType::kF32, {count_f}, std::vector<float>(a.floats().begin(), a.floats().end()));
  if (an == "value_ints")
    return Tensor::FromVector<int64_t>(DType::kI64, {count_i},
                                       std::vector<int64_t>(a.ints().begin(), a.ints().end()));
  if (an == "value_string") return Tensor::Strings({}, {a.s()});
  if (an == "value_strings")
    return Tensor::Strings({static_cast<int64_t>(a.strings_size())},
                           std::vector<std::string>(a.strings().begin(), a.strings().end()));
  if (an == "sparse_value") return Unsupported(node_desc, ": sparse constants are not supported");
  return InvalidArgument(node_desc, ": unknown Constant attribute '", an, "'");
}

Result<Attribute> Importer::ImportAttribute(onnx::AttributeProto& a, const std::string& node_desc,
                                            Graph& g) {
  const std::string where = StrCat(node_desc, " attribute '", a.name(), "'");
  if (!a.ref_attr_name().empty()) return Unsupported(where, ": refers to a function attribute");
  auto type = a.type();
  if (type == onnx::AttributeProto::UNDEFINED) {
    // Very old files omit the type; infer it from the one field that is set.
    if (a.has_f()) type = onnx::AttributeProto::FLOAT;
    else if (a.has_i()) type = onnx::AttributeProto::INT;
    else if (a.has_s()) type = onnx::AttributeProto::STRING;
    else if (a.has_t()) type = onnx::AttributeProto::TENSOR;
    else if (a.has_g()) type = onnx::AttributeProto::GRAPH;
    else if (a.floats_size()) type = onnx::AttributeProto::FLOATS;
    else if (a.ints_size()) type = onnx::AttributeProto::INTS;
    else if (a.strings_size()) type = onnx::AttributeProto::STRINGS;
    else return InvalidArgument(where, ": has no type and no value");
  }
  switch (type) {
    case onnx::AttributeProto::FLOAT: return Attribute::Float(a.f());
    case onnx::AttributeProto::INT: return Attribute::Int(a.i());
    case onnx::AttributeProto::STRING: return Attribute::String(a.s());
    case onnx::AttributeProto::FLOATS:
      return Attribute::Floats(std::vector<float>(a.floats().begin(), a.floats().end()));
    case onnx::AttributeProto::INTS:
      return Attribute::Ints(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
    case onnx::AttributeProto::STRINGS:
      return Attribute::Strings(std::vector<std::string>(a.strings().begin(), a.strings().end()));
    case onnx::AttributeProto::TENSOR: {
      TSR_ASSIGN_OR_RETURN(Tensor t, onnx_detail::TensorFromProto(a.t(), where, model_dir_, opts_));
      return Attribute::FromTensor(std::move(t));
    }
    case onnx::AttributeProto::GRAPH: {
      auto sub = std::make_shared<Graph>();
      sub->set_parent(&g);
      sub->set_model_dir(model_dir_);
      TSR_RETURN_IF_ERROR(ImportGraph(*a.mutable_g(), *sub, StrCat(node_desc, " subgraph '", a.name(), "'")));
      return Attribute::FromGraph(std::move(sub));
    }
    default: {
      const auto* desc = onnx::AttributeProto_AttributeType_descriptor()->FindValueByNumber(type);
      return Unsupported(where, ": attribute type ", desc ? desc->name() : std::to_string(type),
                         " is not supported");
    }
  }
}

// A topological order of the non-Constant nodes, counting a subgraph's
// references to this graph's values as dependencies of the node that owns
// the subgraph. Stable: a sorted file keeps its order.
Result<std::vector<int>> Importer::NodeOrder(const onnx::GraphProto& gp, const std::vector<std::string>& names,
                                             const std::string& where) {
  const int n = gp.node_size();
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < n; ++i)
    for (const auto& o : gp.node(i).output())
      if (!o.empty()) producer.emplace(o, i);
  std::vector<std::vector<int>> succ(n);
  std::vector<int> indeg(n, 0);
  std::vector<bool> active(n, false);
  for (int i = 0; i < n; ++i) {
    const auto& node = gp.node(i);
    if (node.op_type() == "Constant" && IsDefaultDomain(node.domain())) continue;
    active[i] = true;
    std::set<std::string> deps(node.input().begin(), node.input().end());
    for (const auto& a : node.attribute()) {
      if (a.has_g()) CollectFreeNames(a.g(), &deps);
      for (const auto& sg : a.graphs()) CollectFreeNames(sg, &deps);
    }
    std::set<int> preds;
    for (const auto& d : deps) {
      auto it = producer.find(d);
      if (it != producer.end() && it->second != i) preds.insert(it->second);
    }
    for (int p : preds) {
      const auto& pn = gp.node(p);
      if (pn.op_type() == "Constant" && IsDefaultDomain(pn.domain())) continue;
      succ[p].push_back(i);
      ++indeg[i];
    }
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  int total = 0;
  for (int i = 0; i < n; ++i) {
    if (!active[i]) continue;
    ++total;
    if (indeg[i] == 0) ready.push(i);
  }
  std::vector<int> order;
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int s : succ[i])
      if (--indeg[s] == 0) ready.push(s);
  }
  if (static_cast<int>(order.size()) != total) {
    for (int i = 0; i < n; ++i)
      if (active[i] && indeg[i] > 0)
        return InvalidArgument(where, ": has a cycle through node '", names[i], "' (", gp.node(i).op_type(), ")");
  }
  return order;
}

Status Importer::ImportGraph(onnx::GraphProto& gp, Graph& g, const std::string& where) {
  g.set_name(gp.name());
  g.set_model_dir(model_dir_);
  if (gp.sparse_initializer_size() > 0) {
    const auto& sp = gp.sparse_initializer(0);
    return Unsupported(where, ": sparse initializer '", sp.values().name(), "' is not supported");
  }

  // Declared types: value_info, then graph outputs (which win).
  std::unordered_map<std::string, TensorType> declared;
  for (const auto& vi : gp.value_info()) {
    TSR_ASSIGN_OR_RETURN(TensorType t, TypeFromProto(vi, where));
    declared[vi.name()] = std::move(t);
  }
  for (const auto& vi : gp.output()) {
    TSR_ASSIGN_OR_RETURN(TensorType t, TypeFromProto(vi, where));
    declared[vi.name()] = std::move(t);
  }

  for (auto& tp : *gp.mutable_initializer()) {
    if (tp.name().empty()) return InvalidArgument(where, ": an initializer has no name");
    if (g.FindValue(tp.name())) return InvalidArgument(where, ": initializer '", tp.name(), "' is defined twice");
    TSR_ASSIGN_OR_RETURN(Tensor t, onnx_detail::TensorFromProto(tp, StrCat(where, ": initializer '", tp.name(), "'"),
                                                                 model_dir_, opts_));
    g.AddConstant(tp.name(), std::move(t));
    // The tensor holds its own copy: free the protobuf's now (lower peak memory).
    std::string().swap(*tp.mutable_raw_data());
  }
  for (const auto& vi : gp.input()) {
    if (vi.name().empty()) return InvalidArgument(where, ": a graph input has no name");
    if (Value* existing = g.FindValue(vi.name())) {
      // An input with an initializer of the same name is a constant, not
      // something the user feeds.
      if (existing->is_constant() && !existing->is_graph_input()) continue;
      return InvalidArgument(where, ": graph input '", vi.name(), "' is declared twice");
    }
    TSR_ASSIGN_OR_RETURN(TensorType t, TypeFromProto(vi, where));
    g.AddInput(g.AddValue(vi.name(), std::move(t)));
  }

  // Node names: keep given ones, make empty or repeated ones unique.
  const int n = gp.node_size();
  std::vector<std::string> names(n);
  std::unordered_set<std::string> used_names;
  for (int i = 0; i < n; ++i)
    if (!gp.node(i).name().empty()) used_names.insert(gp.node(i).name());
  std::unordered_set<std::string> taken;
  for (int i = 0; i < n; ++i) {
    const auto& node = gp.node(i);
    std::string name = node.name();
    if (name.empty() || taken.count(name)) {
      std::string base = name.empty() ? StrCat(node.op_type(), "_", i) : StrCat(name, "_", i);
      name = base;
      for (int k = 1; taken.count(name) || (name != node.name() && used_names.count(name)); ++k)
        name = StrCat(base, "_", k);
    }
    taken.insert(name);
    names[i] = std::move(name);
  }
  auto describe = [&](int i) { return StrCat("node '", names[i], "' (", gp.node(i).op_type(), ")"); };

  // Define every node output (and Constant node values) first, so that node
  // inputs resolve whatever the order in the file.
  std::vector<std::vector<Value*>> outs(n);
  for (int i = 0; i < n; ++i) {
    const auto& node = gp.node(i);
    if (node.op_type().empty()) return InvalidArgument(where, ": node '", names[i], "' has no op_type");
    const bool is_constant = node.op_type() == "Constant" && IsDefaultDomain(node.domain());
    if (is_constant && (node.output_size() != 1 || node.output(0).empty() || node.input_size() != 0))
      return InvalidArgument(where, ": ", describe(i), " must have no inputs and one named output");
    for (const auto& o : node.output()) {
      if (o.empty()) {
        outs[i].push_back(nullptr);  // omitted optional output
        continue;
      }
      if (Value* prev = g.FindValue(o)) {
        std::string by = prev->is_constant() ? "an initializer or Constant"
                         : prev->is_graph_input() ? "a graph input"
                         : prev->producer() ? prev->producer()->Describe()
                                            : "another node";
        return InvalidArgument(where, ": ", describe(i), " output '", o, "' is already defined by ", by);
      }
      if (is_constant) {
        TSR_ASSIGN_OR_RETURN(Tensor t, ConstantNodeValue(node, StrCat(where, ": ", describe(i))));
        g.AddConstant(o, std::move(t));
        continue;
      }
      auto it = declared.find(o);
      outs[i].push_back(g.AddValue(o, it != declared.end() ? it->second : TensorType{}));
    }
  }
  TSR_ASSIGN_OR_RETURN(std::vector<int> order, NodeOrder(gp, names, where));
  for (int i : order) {
    const auto& node = gp.node(i);
    const std::string desc = describe(i);
    const std::string full_desc = StrCat(where, ": ", desc);
    std::string domain = IsDefaultDomain(node.domain()) ? std::string() : node.domain();
    if (functions_.count({domain, node.op_type()}))
      return Unsupported(where, ": ", desc, " calls a model-local function, which is not supported");
    std::vector<Value*> ins;
    for (int k = 0; k < node.input_size(); ++k) {
      const std::string& in = node.input(k);
      if (in.empty()) {
        ins.push_back(nullptr);  // omitted optional input
        continue;
      }
      Value* v = g.LookupValue(in);
      if (!v) return InvalidArgument(where, ": ", desc, " input ", k, " '", in, "' is not defined");
      ins.push_back(v);
    }
    // Create the node first (with no attributes) so that a subgraph error
    // names it; attributes are attached right after.
    Node* nn = g.AddNodeWithOutputs(node.op_type(), ins, outs[i], names[i], domain);
    for (auto& a : *gp.mutable_node(i)->mutable_attribute()) {
      if (a.name().empty()) return InvalidArgument(where, ": ", desc, " has an attribute without a name");
      if (nn->has_attr(a.name()))
        return InvalidArgument(where, ": ", desc, " has attribute '", a.name(), "' twice");
      TSR_ASSIGN_OR_RETURN(Attribute attr, ImportAttribute(a, full_desc, g));
      nn->set_attr(a.name(), std::move(attr));
    }
  }

  std::vector<Value*> graph_outs;
  for (const auto& vi : gp.output()) {
    if (vi.name().empty()) return InvalidArgument(where, ": a graph output has no name");
    Value* v = g.FindValue(vi.name());
    if (!v) {
      Value* outer = g.parent() ? g.parent()->LookupValue(vi.name()) : nullptr;
      if (!outer) return InvalidArgument(where, ": graph output '", vi.name(), "' is never defined");
      // A subgraph output that is an enclosing graph's value: pass it through
      // an Identity so that the subgraph produces its own outputs.
      v = g.AddValue(g.UniqueName(vi.name()), declared[vi.name()]);
      g.AddNodeWithOutputs("Identity", {outer}, {v}, g.UniqueName("Identity"));
    } else if (!v->is_constant() && !v->producer() && !v->is_graph_input()) {
      return InvalidArgument(where, ": graph output '", vi.name(), "' is never defined");
    } else if (!v->is_constant()) {
      TensorType t = declared[vi.name()];
      if (t.dtype != DType::kUndefined || t.shape.has_rank()) v->set_type(std::move(t));
    }
    graph_outs.push_back(v);
  }
  g.SetOutputs(std::move(graph_outs));

  TSR_RETURN_IF_ERROR(g.TopoSort());
  Status st = g.Verify();
  if (!st.ok()) return InvalidArgument(where, ": ", st.message());
  return Status::Ok();
}

Result<std::unique_ptr<Graph>> ImportModel(onnx::ModelProto& m, const std::string& what,
                                           const std::string& model_dir, const ImportOptions& opts) {
  if (!m.has_ir_version() || m.ir_version() <= 0)
    return InvalidArgument(what, " is not a valid ONNX model: it has no ir_version");
  if (!m.has_graph()) return InvalidArgument(what, " is not a valid ONNX model: it has no graph");
  auto g = std::make_unique<Graph>();
  g->set_model_dir(model_dir);
  bool has_default = false;
  for (const auto& op : m.opset_import()) {
    if (IsDefaultDomain(op.domain())) {
      if (op.version() < kMinOpset || op.version() > kMaxOpset)
        return Unsupported(what, " imports ai.onnx opset ", op.version(), "; Tessera supports opsets ", kMinOpset,
                           " to ", kMaxOpset);
      has_default = true;
      g->set_opset("", op.version());
    } else {
      g->set_opset(op.domain(), op.version());
    }
  }
  if (!has_default && UsesDefaultDomain(m.graph()))
    return InvalidArgument(what, " uses ai.onnx operators but does not import an ai.onnx opset");
  Importer imp(opts, model_dir);
  for (const auto& f : m.functions()) imp.AddFunction(f.domain(), f.name());
  std::string where = StrCat(what, ": graph '", m.graph().name(), "'");
  TSR_RETURN_IF_ERROR(imp.ImportGraph(*m.mutable_graph(), *g, where));
  return g;
}

Result<std::unique_ptr<Graph>> ParseAndImport(const void* data, size_t size, const std::string& what,
                                              const std::string& model_dir, const ImportOptions& opts) {
  if (size > static_cast<size_t>(INT_MAX))
    return InvalidArgument(what, " is not a valid ONNX model: ", size,
                           " bytes exceeds protobuf's 2 GiB limit (large weights belong in external data)");
  onnx::ModelProto m;
  if (!m.ParseFromArray(data, static_cast<int>(size)))
    return InvalidArgument(what, " is not a valid ONNX model: protobuf parsing failed (truncated or corrupt)");
  return ImportModel(m, what, model_dir, opts);
}

}  // namespace

Result<std::unique_ptr<Graph>> ImportOnnxFile(const std::string& path, const ImportOptions& opts) {
  const std::string what = StrCat("model '", path, "'");
  const std::string dir = std::filesystem::absolute(std::filesystem::path(path)).parent_path().string();
  // Parse straight from a read-only mapping (one copy fewer than reading the
  // file into memory); fall back to reading when it cannot be mapped.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      const size_t size = static_cast<size_t>(st.st_size);
      void* base = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      ::close(fd);
      if (base != MAP_FAILED) {
        auto r = ParseAndImport(base, size, what, dir, opts);
        ::munmap(base, size);
        return r;
      }
    } else {
      ::close(fd);
    }
  }
  TSR_ASSIGN_OR_RETURN(std::string bytes, onnx_detail::ReadFileBytes(path, "model"));
  return ParseAndImport(bytes.data(), bytes.size(), what, dir, opts);
}

Result<std::unique_ptr<Graph>> ImportOnnxBytes(const void* data, size_t size, const std::string& model_dir,
                                               const ImportOptions& opts) {
  return ParseAndImport(data, size, "in-memory model", model_dir, opts);
}

}  // namespace tessera
