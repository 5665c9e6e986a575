// The op-schema registry, graph-wide type inference and the shared inference
// helpers (BroadcastShapes, NormalizeAxis).
#include "graph/op_schema.h"

#include <algorithm>
#include <utility>

namespace tessera {
namespace {

bool IsOnnxDomain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

std::string CanonicalDomain(const std::string& d) { return IsOnnxDomain(d) ? std::string() : d; }

// Number of inputs counting up to the last present one (omitted trailing
// optional inputs do not count).
size_t PresentInputCount(const Node& node) {
  size_t n = node.num_inputs();
  while (n > 0 && node.input(n - 1) == nullptr) --n;
  return n;
}

std::string ArityText(int lo, int hi) {
  if (lo == hi) return std::to_string(lo);
  if (hi >= (1 << 20)) return StrCat("at least ", lo);
  return StrCat(lo, " to ", hi);
}

// Merges one inferred dim with a declared one. Known beats unknown/symbolic;
// a named symbol beats an unnamed unknown; two different known values conflict.
bool MergeDim(const Dim& declared, const Dim& inferred, Dim* out) {
  if (declared.is_known() && inferred.is_known()) {
    *out = inferred;
    return declared.value == inferred.value;
  }
  if (inferred.is_known()) { *out = inferred; return true; }
  if (declared.is_known()) { *out = declared; return true; }
  *out = inferred.symbol.empty() ? declared : inferred;
  return true;
}

Status MergeOutputType(const Node& node, size_t index, Value& v, const TensorType& inferred) {
  const TensorType& declared = v.type();
  TensorType merged;
  auto conflict = [&]() {
    return InvalidArgument(node.Describe(), ": output ", index, " '", v.name(), "' is declared as ",
                           declared.ToString(), " but inferred as ", inferred.ToString());
  };
  if (declared.dtype != DType::kUndefined && inferred.dtype != DType::kUndefined &&
      declared.dtype != inferred.dtype)
    return conflict();
  merged.dtype = inferred.dtype != DType::kUndefined ? inferred.dtype : declared.dtype;

  if (!declared.shape.has_rank()) {
    merged.shape = inferred.shape;
  } else if (!inferred.shape.has_rank()) {
    merged.shape = declared.shape;
  } else {
    if (declared.shape.rank() != inferred.shape.rank()) return conflict();
    std::vector<Dim> dims(static_cast<size_t>(inferred.shape.rank()));
    for (int i = 0; i < inferred.shape.rank(); ++i)
      if (!MergeDim(declared.shape.dim(i), inferred.shape.dim(i), &dims[static_cast<size_t>(i)]))
        return conflict();
    merged.shape = Shape(std::move(dims));
  }
  v.set_type(std::move(merged));
  return Status::Ok();
}

bool TypeIsUnset(const TensorType& t) { return t.dtype == DType::kUndefined && !t.shape.has_rank(); }

// Gives a body's untyped inputs the types the enclosing Loop/Scan implies, so
// that inference inside the body has something to start from.
void SeedBodyInputs(const Node& node, Graph& body) {
  const auto& ins = body.inputs();
  auto seed = [&](size_t i, const TensorType& t) {
    if (i < ins.size() && TypeIsUnset(ins[i]->type())) ins[i]->set_type(t);
  };
  if (node.op_type() == "Loop" && IsOnnxDomain(node.domain())) {
    seed(0, TensorType{DType::kI64, Shape()});
    seed(1, TensorType{DType::kBool, Shape()});
    for (size_t i = 2; i < node.num_inputs(); ++i)
      if (node.input(i)) seed(i, node.input(i)->type());
  } else if (node.op_type() == "Scan" && IsOnnxDomain(node.domain())) {
    // Opset 8: input 0 is sequence_lens and inputs carry a leading batch dim.
    bool v8 = node.owner() && node.owner()->OpsetFor("") < 9;
    size_t first = v8 ? 1 : 0;
    if (node.num_inputs() < first) return;
    int64_t num_scan = node.GetInt("num_scan_inputs", 0);
    int64_t num_state = static_cast<int64_t>(node.num_inputs() - first) - num_scan;
    if (num_scan < 0 || num_state < 0) return;
    std::vector<int64_t> axes = node.GetInts("scan_input_axes");
    for (int64_t i = 0; i < num_state + num_scan; ++i) {
      const Value* in = node.input(first + static_cast<size_t>(i));
      if (!in) continue;
      TensorType t = in->type();
      if (t.shape.has_rank()) {
        auto& d = t.shape.dims();
        if (v8) {
          size_t drop = i < num_state ? 1 : 2;  // batch, and seq for scan inputs
          if (d.size() < drop) continue;
          d.erase(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(drop));
        } else if (i >= num_state) {
          int64_t k = i - num_state;
          int64_t axis = k < static_cast<int64_t>(axes.size()) ? axes[static_cast<size_t>(k)] : 0;
          auto a = NormalizeAxis(axis, t.shape.rank());
          if (!a.ok()) continue;
          d.erase(d.begin() + *a);
        }
      }
      seed(static_cast<size_t>(i), t);
    }
  }
}

void CollectUnknownOps(const Graph& g, const OpRegistry& reg, std::vector<std::string>* out) {
  for (const Node* n : g.nodes()) {
    if (!reg.Find(n->domain(), n->op_type())) out->push_back(StrCat("'", n->name(), "' (", n->QualifiedOp(), ")"));
    for (const auto& [name, a] : n->attrs())
      if (a.type == AttrType::kGraph && a.g) CollectUnknownOps(*a.g, reg, out);
  }
}

Status InferGraphTypesImpl(Graph& g) {
  for (Node* n : g.nodes()) {
    for (const auto& [name, a] : n->attrs()) {
      if (a.type != AttrType::kGraph || !a.g) continue;
      Graph& body = *a.g;
      if (!body.parent()) body.set_parent(&g);
      SeedBodyInputs(*n, body);
      Status st = InferGraphTypesImpl(body);
      // An If branch may be statically invalid for shapes with which it is
      // never taken (e.g. inlined functions that branch on rank), so a shape
      // error inside one leaves that branch partly typed instead of failing;
      // the runtime reports the error if the branch does run. Errors in
      // Loop/Scan bodies, which always run, fail inference.
      bool branch = n->op_type() == "If" && IsOnnxDomain(n->domain());
      bool shape_error = st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kOutOfRange;
      if (!st.ok() && !(branch && shape_error))
        return st.WithContext(StrCat("in subgraph '", name, "' of ", n->Describe()));
    }
    TSR_RETURN_IF_ERROR(InferNodeTypes(*n));
  }
  return Status::Ok();
}

}  // namespace

const OpRegistry& OpRegistry::Global() {
  static const OpRegistry* registry = [] {
    auto* r = new OpRegistry();
    RegisterElementwiseOps(*r);
    RegisterNnOps(*r);
    RegisterTensorOps(*r);
    RegisterReductionOps(*r);
    RegisterFusedOps(*r);
    // Registered last: a schema here replaces an older one of the same op.
    RegisterMathOps(*r);
    RegisterLossNormOps(*r);
    RegisterIndexingOps(*r);
    RegisterResizeOps(*r);
    RegisterQuantOps(*r);
    RegisterAttentionOps(*r);
    RegisterRnnOps(*r);
    RegisterSignalOps(*r);
    RegisterTrainingOps(*r);
    ApplyValueInputs(*r);
    return r;
  }();
  return *registry;
}

void OpRegistry::Register(OpSchema s) {
  s.domain = CanonicalDomain(s.domain);
  for (auto& existing : schemas_) {
    if (existing.domain == s.domain && existing.name == s.name) {
      existing = std::move(s);  // a later registration replaces an earlier one
      return;
    }
  }
  schemas_.push_back(std::move(s));
}

const OpSchema* OpRegistry::Find(const std::string& domain, const std::string& op) const {
  std::string d = CanonicalDomain(domain);
  for (const auto& s : schemas_)
    if (s.domain == d && s.name == op) return &s;
  return nullptr;
}

void OpRegistry::Add(const std::string& name, int min_inputs, int max_inputs, int min_outputs, int max_outputs,
                     InferFn infer) {
  OpSchema s;
  s.name = name;
  s.min_inputs = min_inputs;
  s.max_inputs = max_inputs;
  s.min_outputs = min_outputs;
  s.max_outputs = max_outputs;
  s.infer = std::move(infer);
  Register(std::move(s));
}

OpSchema* OpRegistry::FindMutable(const std::string& domain, const std::string& op) {
  return const_cast<OpSchema*>(Find(domain, op));
}

std::vector<std::string> OpRegistry::ListOps() const {
  std::vector<std::string> r;
  r.reserve(schemas_.size());
  for (const auto& s : schemas_) r.push_back(s.domain.empty() ? s.name : s.domain + "." + s.name);
  std::sort(r.begin(), r.end());
  return r;
}

Status InferNodeTypes(Node& node) {
  const OpSchema* schema = OpRegistry::Global().Find(node.domain(), node.op_type());
  if (!schema) return Unsupported(node.Describe(), ": no schema for op ", node.QualifiedOp());

  size_t nin = PresentInputCount(node);
  if (static_cast<int64_t>(nin) < schema->min_inputs || static_cast<int64_t>(nin) > schema->max_inputs)
    return InvalidArgument(node.Describe(), ": expects ", ArityText(schema->min_inputs, schema->max_inputs),
                           " inputs, got ", nin);
  for (int i = 0; i < schema->min_inputs; ++i)
    if (!node.input(static_cast<size_t>(i)))
      return InvalidArgument(node.Describe(), ": required input ", i, " is missing");
  size_t nout = node.num_outputs();
  if (static_cast<int64_t>(nout) < schema->min_outputs || static_cast<int64_t>(nout) > schema->max_outputs)
    return InvalidArgument(node.Describe(), ": expects ", ArityText(schema->min_outputs, schema->max_outputs),
                           " outputs, got ", nout);

  InferenceContext ctx;
  ctx.node = &node;
  ctx.opset = node.owner() ? node.owner()->OpsetFor(node.domain()) : (IsOnnxDomain(node.domain()) ? 17 : 1);
  ctx.inputs.resize(nin, nullptr);
  ctx.constants.resize(nin, nullptr);
  for (size_t i = 0; i < nin; ++i) {
    const Value* v = node.input(i);
    if (!v) continue;
    ctx.inputs[i] = &v->type();
    ctx.constants[i] = v->constant();
  }
  ctx.outputs.assign(nout, TensorType{});
  TSR_RETURN_IF_ERROR(schema->infer(ctx));
  if (ctx.outputs.size() != nout)
    return Internal(node.Describe(), ": inference produced ", ctx.outputs.size(), " output types for ", nout,
                    " outputs");
  for (size_t i = 0; i < nout; ++i) {
    Value* out = node.output(i);
    if (!out) continue;
    TSR_RETURN_IF_ERROR(MergeOutputType(node, i, *out, ctx.outputs[i]));
  }
  return Status::Ok();
}

Status InferGraphTypes(Graph& g) {
  std::vector<std::string> unknown;
  CollectUnknownOps(g, OpRegistry::Global(), &unknown);
  if (!unknown.empty()) {
    std::string list;
    for (size_t i = 0; i < unknown.size(); ++i) list += (i ? ", " : "") + unknown[i];
    return Unsupported("graph '", g.name(), "' has ", unknown.size(), " node", unknown.size() == 1 ? "" : "s",
                       " with no op schema: ", list);
  }
  return InferGraphTypesImpl(g);
}

Result<Shape> BroadcastShapes(const Shape& a, const Shape& b) {
  if (!a.has_rank() || !b.has_rank()) return Shape::UnknownRank();
  int ra = a.rank(), rb = b.rank();
  int r = std::max(ra, rb);
  std::vector<Dim> dims(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i) {
    int ia = i - (r - ra), ib = i - (r - rb);
    if (ia < 0) { dims[static_cast<size_t>(i)] = b.dim(ib); continue; }
    if (ib < 0) { dims[static_cast<size_t>(i)] = a.dim(ia); continue; }
    const Dim& x = a.dim(ia);
    const Dim& y = b.dim(ib);
    Dim& o = dims[static_cast<size_t>(i)];
    if (x.is_known() && y.is_known()) {
      if (x.value == y.value || y.value == 1) o = x;
      else if (x.value == 1) o = y;
      else
        return InvalidArgument("cannot broadcast shapes ", a.ToString(), " and ", b.ToString(), ": dim ", x.value,
                               " vs ", y.value);
    } else if (x.is_known()) {
      o = x.value == 1 ? y : x;  // 1 vs sym = sym; known>1 (or 0) vs sym = known
    } else if (y.is_known()) {
      o = y.value == 1 ? x : y;
    } else if (!x.symbol.empty() && x.symbol == y.symbol) {
      o = x;
    } else {
      o = Dim::Unknown();  // two different or unnamed unknowns: either could be 1
    }
  }
  return Shape(std::move(dims));
}

Result<int64_t> NormalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return InvalidArgument("axis ", axis, " is out of range for rank ", rank, " (valid: ", -rank, " to ", rank - 1,
                           ")");
  return axis < 0 ? axis + rank : axis;
}

}  // namespace tessera
