#include "graph/attribute.h"

#include "graph/graph.h"

namespace tessera {

const char* AttrTypeName(AttrType t) {
  switch (t) {
    case AttrType::kUndefined: return "undefined";
    case AttrType::kFloat: return "float";
    case AttrType::kInt: return "int";
    case AttrType::kString: return "string";
    case AttrType::kTensor: return "tensor";
    case AttrType::kGraph: return "graph";
    case AttrType::kFloats: return "floats";
    case AttrType::kInts: return "ints";
    case AttrType::kStrings: return "strings";
  }
  return "undefined";
}

std::string Attribute::ToString() const {
  auto join = [](const auto& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += StrCat(i ? "," : "", v[i]);
    return s + "]";
  };
  switch (type) {
    case AttrType::kFloat: return StrCat(f);
    case AttrType::kInt: return StrCat(i);
    case AttrType::kString: return "\"" + s + "\"";
    case AttrType::kTensor: return "tensor " + t.type().ToString();
    case AttrType::kGraph: return StrCat("graph '", g ? g->name() : std::string(), "'");
    case AttrType::kFloats: return join(floats);
    case AttrType::kInts: return join(ints);
    case AttrType::kStrings: {
      std::string r = "[";
      for (size_t k = 0; k < strings.size(); ++k) r += (k ? ",\"" : "\"") + strings[k] + "\"";
      return r + "]";
    }
    default: return "?";
  }
}

}  // namespace tessera
