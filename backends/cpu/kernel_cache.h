// Kernels shared between the executables of one device.
//
// A session compiles a new executable for every new set of input shapes (and
// for every value of a value-specialized input). Nodes whose op, attributes,
// opset, input/output types, constant inputs (by address: the same tensor),
// thread count and precision are unchanged reuse the kernel built the first
// time, with whatever it prepared at creation (oneDNN primitives, packed
// weights), instead of building it again. A cached kernel owns the node view
// and the TensorArgs it was created from, so it outlives the executable that
// built it; the cache holds weak references and an entry dies with the last
// executable that uses it. Nodes with subgraph attributes are never cached.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"

namespace tessera::cpu {

// A node view whose strings and arrays the executable owns, so that the
// NodeArgs kernels were created from stay valid as long as the kernel.
struct NodeCopy {
  std::string name, domain, op_type;
  std::vector<int32_t> inputs, outputs;
  struct AttrCopy {
    std::string name, s;
    std::vector<int64_t> ints, tdims;
    std::vector<float> floats;
    std::vector<std::string> strings;
    std::vector<const char*> string_ptrs;
    std::vector<uint8_t> tdata;
    tsr_tensor_view tview{};
  };
  std::vector<AttrCopy> attrs;
  std::vector<tsr_attr_view> attr_views;
  tsr_node_view view{};

  void CopyFrom(const tsr_node_view& n) {
    name = n.name ? n.name : "";
    domain = n.domain ? n.domain : "";
    op_type = n.op_type ? n.op_type : "";
    inputs.assign(n.inputs, n.inputs + n.num_inputs);
    outputs.assign(n.outputs, n.outputs + n.num_outputs);
    attrs.resize(n.num_attrs);
    attr_views.resize(n.num_attrs);
    for (uint32_t i = 0; i < n.num_attrs; ++i) {
      const tsr_attr_view& src = n.attrs[i];
      AttrCopy& c = attrs[i];
      tsr_attr_view& v = attr_views[i];
      v = src;
      c.name = src.name ? src.name : "";
      v.name = c.name.c_str();
      if (src.s) c.s.assign(src.s, src.s_len);
      v.s = src.s ? c.s.data() : nullptr;
      if (src.ints) c.ints.assign(src.ints, src.ints + src.count);
      v.ints = src.ints ? c.ints.data() : nullptr;
      if (src.floats) c.floats.assign(src.floats, src.floats + src.count);
      v.floats = src.floats ? c.floats.data() : nullptr;
      if (src.strings) {
        for (uint64_t k = 0; k < src.count; ++k) c.strings.emplace_back(src.strings[k] ? src.strings[k] : "");
        for (const std::string& s : c.strings) c.string_ptrs.push_back(s.c_str());
        v.strings = c.string_ptrs.data();
      }
      if (src.tensor) {
        c.tview = *src.tensor;
        if (src.tensor->dims) c.tdims.assign(src.tensor->dims, src.tensor->dims + std::max(0, src.tensor->rank));
        if (src.tensor->data)
          c.tdata.assign(static_cast<const uint8_t*>(src.tensor->data),
                         static_cast<const uint8_t*>(src.tensor->data) + src.tensor->nbytes);
        c.tview.dims = c.tdims.data();
        c.tview.data = c.tdata.data();
        v.tensor = &c.tview;
      }
      // v.graph stays the host's pointer: valid during compile only.
    }
    view = n;
    view.name = name.c_str();
    view.domain = domain.c_str();
    view.op_type = op_type.c_str();
    view.inputs = inputs.data();
    view.outputs = outputs.data();
    view.attrs = attr_views.data();
  }
};

// A kernel and everything its NodeArgs point to.
struct CachedKernel {
  NodeCopy node;
  std::vector<TensorArg> values;  // the node's inputs then outputs (copies)
  NodeArgs args;
  std::unique_ptr<Kernel> kernel;
};

class KernelCache {
 public:
  // The key of a node of `g` for kernels created with these settings; ""
  // when the node must not be shared (subgraph attributes).
  static std::string Key(const tsr_node_view& n, const tsr_graph_view& g, int threads, const std::string& precision);
  std::shared_ptr<const CachedKernel> Find(const std::string& key);
  void Put(const std::string& key, const std::shared_ptr<const CachedKernel>& k);
  // Kernels found in the cache since the device was opened (for tests and stats).
  int64_t hits() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::weak_ptr<const CachedKernel>> entries_;
  int64_t hits_ = 0;
};

}  // namespace tessera::cpu
