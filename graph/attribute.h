// Typed node attributes (ONNX AttributeProto semantics). Type ids follow
// ONNX AttributeProto.AttributeType, shared with tsr_attr_type in backend.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/tensor.h"

namespace tessera {

class Graph;

enum class AttrType : int32_t {
  kUndefined = 0,
  kFloat = 1,
  kInt = 2,
  kString = 3,
  kTensor = 4,
  kGraph = 5,
  kFloats = 6,
  kInts = 7,
  kStrings = 8,
};

const char* AttrTypeName(AttrType t);

struct Attribute {
  AttrType type = AttrType::kUndefined;
  float f = 0.f;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;  // subgraph (If/Loop/Scan bodies)
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;

  static Attribute Float(float v) { Attribute a; a.type = AttrType::kFloat; a.f = v; return a; }
  static Attribute Int(int64_t v) { Attribute a; a.type = AttrType::kInt; a.i = v; return a; }
  static Attribute String(std::string v) { Attribute a; a.type = AttrType::kString; a.s = std::move(v); return a; }
  static Attribute Ints(std::vector<int64_t> v) { Attribute a; a.type = AttrType::kInts; a.ints = std::move(v); return a; }
  static Attribute Floats(std::vector<float> v) { Attribute a; a.type = AttrType::kFloats; a.floats = std::move(v); return a; }
  static Attribute Strings(std::vector<std::string> v) { Attribute a; a.type = AttrType::kStrings; a.strings = std::move(v); return a; }
  static Attribute FromTensor(Tensor v) { Attribute a; a.type = AttrType::kTensor; a.t = std::move(v); return a; }
  static Attribute FromGraph(std::shared_ptr<Graph> v) { Attribute a; a.type = AttrType::kGraph; a.g = std::move(v); return a; }

  std::string ToString() const;  // compact, for the printer
};

}  // namespace tessera
