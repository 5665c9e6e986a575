// Compile-time plumbing the CPU, OpenCL and CUDA plugins share: the static
// description of a tensor a kernel factory sees (TensorArg), reading a
// segment's values into TensorArgs with the checks compile needs (static
// shapes, constants carrying enough data), and the node label / joined error
// message every plugin's compile reports. Header-only; messages are prefixed
// with the plugin's name ("cpu backend", "opencl backend", "cuda backend").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/common/plugin_util.h"
#include "tessera/backend.h"

namespace tessera::plugin {

// One input or output of a node at compile time (static shape).
struct TensorArg {
  int32_t dtype = TSR_DTYPE_UNDEFINED;
  std::vector<int64_t> dims;
  int64_t numel = 0;
  const void* const_data = nullptr;  // host data of constants (valid while the executable / kernel lives)
  int64_t elem_size() const { return static_cast<int64_t>(DTypeSize(dtype)); }
  int64_t nbytes() const { return numel * elem_size(); }
};

// What every plugin's NodeArgs holds: the node and its tensors (inputs first,
// then outputs, in the node's order). Plugins derive their NodeArgs from it.
struct NodeArgsBase {
  const tsr_node_view* node = nullptr;
  std::vector<const TensorArg*> inputs;   // nullptr = omitted optional input
  std::vector<const TensorArg*> outputs;  // nullptr = unused optional output
  NodeAttrs attrs() const { return NodeAttrs(*node); }
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  bool has_output(size_t i) const { return i < outputs.size() && outputs[i] != nullptr; }
};

// Element count of a value, or -1 when its rank or a dim is unknown.
inline int64_t NumelOf(const tsr_value_view& v) {
  if (v.rank < 0) return -1;
  int64_t n = 1;
  for (int32_t i = 0; i < v.rank; ++i) {
    if (v.dims[i] < 0) return -1;
    n *= v.dims[i];
  }
  return n;
}

// "node 'name' (Op)" for error messages.
inline std::string NodeLabel(const tsr_node_view& n) {
  return std::string("node '") + (n.name ? n.name : "") + "' (" + (n.op_type ? n.op_type : "?") + ")";
}

// Appends node errors into one message that fits the ABI's capacity:
// "<backend_name> cannot compile K of N node(s): e1; e2; ... and M more".
inline std::string JoinErrors(const char* backend_name, const std::vector<std::string>& errs, size_t num_nodes) {
  std::string msg = std::string(backend_name) + " cannot compile " + std::to_string(errs.size()) + " of " +
                    std::to_string(num_nodes) + " node(s): ";
  const size_t budget = TSR_ERROR_MESSAGE_CAPACITY - 48;
  for (size_t i = 0; i < errs.size(); ++i) {
    std::string part = (i ? "; " : "") + errs[i];
    if (msg.size() + part.size() > budget) {
      msg += "; ... and " + std::to_string(errs.size() - i) + " more";
      break;
    }
    msg += part;
  }
  return msg;
}

// How ReadSegmentValues words a constant without data.
enum class NoDataMessage {
  kOwn,       // "<backend>: constant value '%s' has no data"
  kByteCount  // reported as a too-small constant: "... has %llu bytes, its type needs %lld"
};

// Reads the segment's values into `out` (dtype, static dims, numel; constants
// point at their host data, or at a zero word when empty) and their names
// into `names` (both resized to seg.num_values). Fails, naming the value, on
// an unknown shape or a constant with too few bytes. `backend_name` prefixes
// the messages ("cpu backend").
inline Err ReadSegmentValues(const tsr_graph_view& seg, const char* backend_name, std::vector<TensorArg>* out,
                             std::vector<std::string>* names, NoDataMessage no_data = NoDataMessage::kOwn) {
  out->resize(seg.num_values);
  names->resize(seg.num_values);
  for (uint32_t i = 0; i < seg.num_values; ++i) {
    const tsr_value_view& v = seg.values[i];
    TensorArg& t = (*out)[i];
    (*names)[i] = v.name ? v.name : "";
    const char* name = (*names)[i].c_str();
    t.dtype = v.dtype;
    const int64_t numel = NumelOf(v);
    if (numel < 0)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: value '%s' has an unknown shape; compile needs static shapes",
                     backend_name, name);
    t.dims.assign(v.dims, v.dims + v.rank);
    t.numel = numel;
    if (v.flags & TSR_VALUE_CONSTANT) {
      if (!v.const_data && numel > 0 && no_data == NoDataMessage::kOwn)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: constant value '%s' has no data", backend_name, name);
      if ((!v.const_data && numel > 0) || v.const_bytes < static_cast<uint64_t>(t.nbytes()))
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: constant value '%s' has %llu bytes, its type needs %lld",
                       backend_name, name, static_cast<unsigned long long>(v.const_bytes),
                       static_cast<long long>(t.nbytes()));
      static const uint64_t kEmpty = 0;
      t.const_data = v.const_data ? v.const_data : &kEmpty;
    }
  }
  return Err::Ok();
}

}  // namespace tessera::plugin
