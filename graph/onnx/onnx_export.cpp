#include "graph/onnx/onnx_export.h"

#include <climits>
#include <fstream>
#include <onnx/onnx_pb.h>
#include <set>

namespace tessera {
namespace onnx_detail {
// Defined in tensor_proto.cpp (protobuf types stay out of headers).
Status TensorToProto(const Tensor& t, const std::string& name, onnx::TensorProto* p);
}  // namespace onnx_detail

namespace {

// A ValueInfo carries no type when the IR knows nothing (undefined dtype and
// unknown rank); the importer maps that back to the same TensorType.
void SetValueInfo(const Value& v, onnx::ValueInfoProto* vi) {
  vi->set_name(v.name());
  const TensorType& t = v.type();
  if (t.dtype == DType::kUndefined && !t.shape.has_rank()) return;
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(t.dtype));
  if (!t.shape.has_rank()) return;
  auto* shape = tt->mutable_shape();
  for (const Dim& d : t.shape.dims()) {
    auto* pd = shape->add_dim();
    if (d.is_known()) pd->set_dim_value(d.value);
    else if (!d.symbol.empty()) pd->set_dim_param(d.symbol);
  }
}

class Exporter {
 public:
  explicit Exporter(const ExportOptions& opts) : opts_(opts) {}
  Status ExportGraph(const Graph& g, onnx::GraphProto* gp);
  std::set<std::string> domains;  // every node domain seen ("" = ai.onnx)

 private:
  Status ExportConstant(const Value& v, onnx::TensorProto* tp);
  Status ExportAttribute(const Node& n, const std::string& name, const Attribute& a, onnx::AttributeProto* ap);
  const ExportOptions& opts_;
};

Status Exporter::ExportConstant(const Value& v, onnx::TensorProto* tp) {
  const Tensor& t = *v.constant();
  // Sub-byte constants stay inline: the sink stores Tessera's unpacked bytes,
  // while ONNX external data of i4/u4/f4e2m1 is packed two per byte.
  if (!opts_.constant_sink || t.dtype() == DType::kString || IsSubByteDType(t.dtype()))
    return onnx_detail::TensorToProto(t, v.name(), tp);
  std::string location;
  int64_t offset = 0, length = 0;
  Status st = opts_.constant_sink(v, t, &location, &offset, &length);
  if (!st.ok()) return st.WithContext(StrCat("constant '", v.name(), "'"));
  tp->Clear();
  tp->set_name(v.name());
  tp->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.dims()) tp->add_dims(d);
  tp->set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [&](const char* k, const std::string& val) {
    auto* e = tp->add_external_data();
    e->set_key(k);
    e->set_value(val);
  };
  add("location", location);
  add("offset", std::to_string(offset));
  add("length", std::to_string(length));
  return Status::Ok();
}

Status Exporter::ExportAttribute(const Node& n, const std::string& name, const Attribute& a,
                                 onnx::AttributeProto* ap) {
  ap->set_name(name);
  switch (a.type) {
    case AttrType::kFloat: ap->set_type(onnx::AttributeProto::FLOAT); ap->set_f(a.f); break;
    case AttrType::kInt: ap->set_type(onnx::AttributeProto::INT); ap->set_i(a.i); break;
    case AttrType::kString: ap->set_type(onnx::AttributeProto::STRING); ap->set_s(a.s); break;
    case AttrType::kFloats:
      ap->set_type(onnx::AttributeProto::FLOATS);
      for (float f : a.floats) ap->add_floats(f);
      break;
    case AttrType::kInts:
      ap->set_type(onnx::AttributeProto::INTS);
      for (int64_t i : a.ints) ap->add_ints(i);
      break;
    case AttrType::kStrings:
      ap->set_type(onnx::AttributeProto::STRINGS);
      for (const auto& s : a.strings) ap->add_strings(s);
      break;
    case AttrType::kTensor: {
      ap->set_type(onnx::AttributeProto::TENSOR);
      Status st = onnx_detail::TensorToProto(a.t, "", ap->mutable_t());
      if (!st.ok()) return st.WithContext(StrCat(n.Describe(), " attribute '", name, "'"));
      break;
    }
    case AttrType::kGraph:
      if (!a.g) return Internal(n.Describe(), " attribute '", name, "' holds no graph");
      ap->set_type(onnx::AttributeProto::GRAPH);
      TSR_RETURN_IF_ERROR(ExportGraph(*a.g, ap->mutable_g()));
      break;
    default:
      return Internal(n.Describe(), " attribute '", name, "' has no type");
  }
  return Status::Ok();
}

Status Exporter::ExportGraph(const Graph& g, onnx::GraphProto* gp) {
  gp->set_name(g.name().empty() ? "main" : g.name());
  // Constants without a producer are initializers (a folded value that still
  // has a producer is written as that node's output).
  for (Value* v : g.values()) {
    if (!v->is_constant() || v->producer()) continue;
    TSR_RETURN_IF_ERROR(ExportConstant(*v, gp->add_initializer()));
  }
  for (Value* v : g.inputs()) SetValueInfo(*v, gp->add_input());
  std::set<const Value*> io;
  for (Value* v : g.inputs()) io.insert(v);
  for (Value* v : g.outputs()) io.insert(v);
  for (Node* n : g.nodes()) {
    auto* np = gp->add_node();
    np->set_name(n->name());
    np->set_op_type(n->op_type());
    if (!n->domain().empty()) np->set_domain(n->domain());
    domains.insert(n->domain());
    for (Value* in : n->inputs()) np->add_input(in ? in->name() : std::string());
    for (Value* out : n->outputs()) {
      np->add_output(out ? out->name() : std::string());
      if (!out || io.count(out) || out->is_constant()) continue;
      const TensorType& t = out->type();
      if (t.dtype != DType::kUndefined || t.shape.has_rank()) SetValueInfo(*out, gp->add_value_info());
    }
    for (const auto& [name, attr] : n->attrs())
      TSR_RETURN_IF_ERROR(ExportAttribute(*n, name, attr, np->add_attribute()));
  }
  for (Value* v : g.outputs()) SetValueInfo(*v, gp->add_output());
  return Status::Ok();
}

}  // namespace

Result<std::string> ExportOnnx(const Graph& g, const ExportOptions& opts) {
  onnx::ModelProto m;
  m.set_ir_version(opts.ir_version);
  m.set_producer_name("tessera");
  Exporter ex(opts);
  TSR_RETURN_IF_ERROR(ex.ExportGraph(g, m.mutable_graph()));
  // Every opset the graph records, plus one for each domain a node uses.
  std::map<std::string, int64_t> opsets = g.opset_imports();
  opsets.emplace("", g.OpsetFor(""));
  for (const auto& d : ex.domains) opsets.emplace(d, g.OpsetFor(d));
  for (const auto& [domain, version] : opsets) {
    auto* op = m.add_opset_import();
    op->set_domain(domain);
    op->set_version(version);
  }
  const size_t size = m.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX))
    return OutOfRange("graph '", g.name(), "' serializes to ", size,
                      " bytes, over protobuf's 2 GiB limit; export constants as external data (constant_sink)");
  std::string out;
  if (!m.SerializeToString(&out)) return Internal("serializing graph '", g.name(), "' as ONNX failed");
  return out;
}

Status ExportOnnxFile(const Graph& g, const std::string& path, const ExportOptions& opts) {
  TSR_ASSIGN_OR_RETURN(std::string bytes, ExportOnnx(g, opts));
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return IoError("cannot create ONNX file '", path, "'");
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) return IoError("cannot write ONNX file '", path, "'");
  return Status::Ok();
}

}  // namespace tessera
