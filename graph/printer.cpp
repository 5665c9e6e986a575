#include "graph/printer.h"

#include <charconv>
#include <sstream>

namespace tessera {
namespace {

constexpr int64_t kMaxShownElements = 8;

// Shortest text that reads back as the same float.
std::string FloatText(double v, bool is_f32) {
  char buf[64];
  auto r = is_f32 ? std::to_chars(buf, buf + sizeof(buf), static_cast<float>(v))
                  : std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// "{1, 2, 3}" for small tensors, "{1, 2, ...}" (first elements) for large ones.
std::string TensorValues(const Tensor& t) {
  const int64_t n = t.num_elements();
  const int64_t shown = n < kMaxShownElements ? n : kMaxShownElements;
  std::string s = "{";
  for (int64_t i = 0; i < shown; ++i) {
    if (i) s += ", ";
    if (t.dtype() == DType::kString) s += Quote(t.strings()[static_cast<size_t>(i)]);
    else if (IsAnyFloatDType(t.dtype())) s += FloatText(t.GetAsDouble(i), t.dtype() != DType::kF64);
    else if (t.dtype() == DType::kU64) s += std::to_string(t.data<uint64_t>()[i]);
    else if (t.dtype() == DType::kBool) s += t.GetAsInt64(i) ? "true" : "false";
    else s += std::to_string(t.GetAsInt64(i));
  }
  if (shown < n) s += shown ? ", ..." : "...";
  return s + "}";
}

std::string TensorText(const Tensor& t) {
  if (!t.defined()) return "tensor<undefined>";
  return StrCat(t.type().ToString(), " ", TensorValues(t));
}

std::string AttrText(const Attribute& a) {
  std::string s;
  switch (a.type) {
    case AttrType::kFloat: return FloatText(a.f, true);
    case AttrType::kInt: return std::to_string(a.i);
    case AttrType::kString: return Quote(a.s);
    case AttrType::kTensor: return TensorText(a.t);
    case AttrType::kGraph: return a.g ? StrCat("graph '", a.g->name(), "'") : "graph <null>";
    case AttrType::kFloats:
      for (size_t i = 0; i < a.floats.size(); ++i) {
        if (i) s += ',';
        s += FloatText(a.floats[i], true);
      }
      return "[" + s + "]";
    case AttrType::kInts:
      for (size_t i = 0; i < a.ints.size(); ++i) {
        if (i) s += ',';
        s += std::to_string(a.ints[i]);
      }
      return "[" + s + "]";
    case AttrType::kStrings:
      for (size_t i = 0; i < a.strings.size(); ++i) {
        if (i) s += ',';
        s += Quote(a.strings[i]);
      }
      return "[" + s + "]";
    default: return "<undefined>";
  }
}

std::string ValueRef(const Value* v) {
  if (!v) return "_";
  std::string s = "%";
  s += v->name();
  return s;
}

void PrintInto(const Graph& g, const std::string& indent, std::ostringstream& os) {
  const std::string in2 = indent + "  ";
  for (Value* v : g.inputs()) {
    os << in2 << "input " << ValueRef(v) << " : " << v->type().ToString();
    if (v->is_constant()) os << " = " << TensorValues(*v->constant());
    os << "\n";
  }
  for (Value* v : g.values()) {
    if (!v->is_constant() || v->is_graph_input() || v->producer()) continue;
    os << in2 << "const " << ValueRef(v) << " : " << v->type().ToString() << " = " << TensorValues(*v->constant())
       << "\n";
  }
  for (Node* n : g.nodes()) {
    os << in2;
    for (size_t i = 0; i < n->num_outputs(); ++i) os << (i ? ", " : "") << ValueRef(n->output(i));
    if (n->num_outputs()) os << " = ";
    os << n->QualifiedOp();
    bool has_plain_attrs = false;
    for (const auto& [name, a] : n->attrs()) has_plain_attrs |= a.type != AttrType::kGraph;
    if (has_plain_attrs) {
      os << "[";
      bool first = true;
      for (const auto& [name, a] : n->attrs()) {
        if (a.type == AttrType::kGraph) continue;
        os << (first ? "" : ", ") << name << "=" << AttrText(a);
        first = false;
      }
      os << "]";
    }
    os << "(";
    for (size_t i = 0; i < n->num_inputs(); ++i) os << (i ? ", " : "") << ValueRef(n->input(i));
    os << ")";
    if (n->num_outputs()) {
      os << " : ";
      for (size_t i = 0; i < n->num_outputs(); ++i) {
        const Value* o = n->output(i);
        os << (i ? ", " : "") << (o ? o->type().ToString() : "_");
      }
    }
    os << "  # " << n->name() << "\n";
    for (const auto& [name, a] : n->attrs()) {
      if (a.type != AttrType::kGraph) continue;
      os << in2 << "  " << name << ": ";
      if (!a.g) {
        os << "<null graph>\n";
        continue;
      }
      os << "graph " << (a.g->name().empty() ? "<unnamed>" : a.g->name()) << " {\n";
      PrintInto(*a.g, in2 + "  ", os);
      os << in2 << "  }\n";
    }
  }
  os << in2 << "output ";
  for (size_t i = 0; i < g.outputs().size(); ++i) os << (i ? ", " : "") << ValueRef(g.outputs()[i]);
  os << "\n";
}

}  // namespace

std::string PrintGraph(const Graph& g) {
  std::ostringstream os;
  os << "graph " << (g.name().empty() ? "<unnamed>" : g.name());
  if (!g.parent() && !g.opset_imports().empty()) {
    os << " (opset";
    for (const auto& [domain, version] : g.opset_imports())
      os << " " << (domain.empty() ? "ai.onnx" : domain) << "=" << version;
    os << ")";
  }
  os << " {\n";
  PrintInto(g, "", os);
  os << "}\n";
  return os.str();
}

}  // namespace tessera
