// Helpers for backend plugins: error reporting across the ABI and read-only
// accessors over tsr_graph_view. Header-only; plugins include this and
// include/tessera/backend.h, never the core's graph/compiler/runtime headers.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tessera/backend.h"

namespace tessera::plugin {

// A plugin-side status: code + message. ok() when code == TSR_OK.
struct Err {
  int32_t code = TSR_OK;
  std::string message;
  bool ok() const { return code == TSR_OK; }
  static Err Ok() { return {}; }
};

inline Err MakeErr(int32_t code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
inline Err MakeErr(int32_t code, const char* fmt, ...) {
  char buf[TSR_ERROR_MESSAGE_CAPACITY];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return Err{code, buf};
}

// Writes `e` into the ABI error (may be NULL) and returns its code.
inline int32_t Report(const Err& e, tsr_error* err) {
  if (err && !e.ok()) {
    err->code = e.code;
    std::snprintf(err->message, sizeof(err->message), "%s", e.message.c_str());
  }
  return e.code;
}

inline size_t DTypeSize(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_F32: case TSR_DTYPE_I32: case TSR_DTYPE_U32: return 4;
    case TSR_DTYPE_U8: case TSR_DTYPE_I8: case TSR_DTYPE_BOOL: return 1;
    case TSR_DTYPE_U16: case TSR_DTYPE_I16: case TSR_DTYPE_F16: case TSR_DTYPE_BF16: return 2;
    case TSR_DTYPE_I64: case TSR_DTYPE_F64: case TSR_DTYPE_U64: return 8;
    default: return 0;
  }
}

inline const char* DTypeName(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_F32: return "f32";   case TSR_DTYPE_U8: return "u8";    case TSR_DTYPE_I8: return "i8";
    case TSR_DTYPE_U16: return "u16";   case TSR_DTYPE_I16: return "i16";  case TSR_DTYPE_I32: return "i32";
    case TSR_DTYPE_I64: return "i64";   case TSR_DTYPE_STRING: return "string"; case TSR_DTYPE_BOOL: return "bool";
    case TSR_DTYPE_F16: return "f16";   case TSR_DTYPE_F64: return "f64";  case TSR_DTYPE_U32: return "u32";
    case TSR_DTYPE_U64: return "u64";   case TSR_DTYPE_BF16: return "bf16";
    default: return "undefined";
  }
}

// Attribute lookup on a node view.
class NodeAttrs {
 public:
  explicit NodeAttrs(const tsr_node_view& n) : n_(n) {}
  const tsr_attr_view* Find(const char* name) const {
    for (uint32_t i = 0; i < n_.num_attrs; ++i)
      if (std::strcmp(n_.attrs[i].name, name) == 0) return &n_.attrs[i];
    return nullptr;
  }
  bool Has(const char* name) const { return Find(name) != nullptr; }
  int64_t Int(const char* name, int64_t def) const {
    const tsr_attr_view* a = Find(name);
    return a && a->type == TSR_ATTR_INT ? a->i : def;
  }
  float Float(const char* name, float def) const {
    const tsr_attr_view* a = Find(name);
    return a && a->type == TSR_ATTR_FLOAT ? a->f : def;
  }
  std::string String(const char* name, const std::string& def) const {
    const tsr_attr_view* a = Find(name);
    return a && a->type == TSR_ATTR_STRING ? std::string(a->s, a->s_len) : def;
  }
  std::vector<int64_t> Ints(const char* name, std::vector<int64_t> def = {}) const {
    const tsr_attr_view* a = Find(name);
    if (!a || a->type != TSR_ATTR_INTS) return def;
    return std::vector<int64_t>(a->ints, a->ints + a->count);
  }
  std::vector<float> Floats(const char* name, std::vector<float> def = {}) const {
    const tsr_attr_view* a = Find(name);
    if (!a || a->type != TSR_ATTR_FLOATS) return def;
    return std::vector<float>(a->floats, a->floats + a->count);
  }
  const tsr_tensor_view* Tensor(const char* name) const {
    const tsr_attr_view* a = Find(name);
    return a && a->type == TSR_ATTR_TENSOR ? a->tensor : nullptr;
  }

 private:
  const tsr_node_view& n_;
};

}  // namespace tessera::plugin
