// Test helper for CPU kernels: builds a one-node tsr_graph_view / NodeArgs by
// hand, creates the kernel through the KernelRegistry and runs it on owned,
// 64-byte aligned buffers.
//
// Typical use:
//   OpTest t("Add");
//   t.AddInput<float>({2, 3}, {1, 2, 3, 4, 5, 6});
//   t.AddInput<float>({3}, {10, 20, 30});
//   t.AddOutput(TSR_DTYPE_F32, {2, 3});
//   ASSERT_TRUE(t.Run().ok()) << t.last_error();
//   std::vector<float> y = t.Output<float>(0);
//
// Inputs and outputs are numbered in the order they are added; an omitted
// optional one is added with AddMissingInput()/AddMissingOutput(). Values of
// the view are the inputs, then the outputs (value i of the graph view =
// input i; output j = value num_inputs + j). An OpTest is neither copyable
// nor movable (views point into it). Attributes, inputs and outputs may not
// be changed after Create()/Run() (call Reset() first).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel.h"

namespace tessera::cpu::testing {

// The tsr_dtype that matches a C++ element type (f16/bf16 have none: pass
// their raw uint16_t bits with an explicit dtype).
template <typename T>
constexpr int32_t DTypeOf() {
  if constexpr (std::is_same_v<T, float>) return TSR_DTYPE_F32;
  else if constexpr (std::is_same_v<T, double>) return TSR_DTYPE_F64;
  else if constexpr (std::is_same_v<T, bool>) return TSR_DTYPE_BOOL;
  else if constexpr (std::is_same_v<T, int8_t>) return TSR_DTYPE_I8;
  else if constexpr (std::is_same_v<T, uint8_t>) return TSR_DTYPE_U8;
  else if constexpr (std::is_same_v<T, int16_t>) return TSR_DTYPE_I16;
  else if constexpr (std::is_same_v<T, uint16_t>) return TSR_DTYPE_U16;
  else if constexpr (std::is_same_v<T, int32_t>) return TSR_DTYPE_I32;
  else if constexpr (std::is_same_v<T, uint32_t>) return TSR_DTYPE_U32;
  else if constexpr (std::is_same_v<T, int64_t>) return TSR_DTYPE_I64;
  else if constexpr (std::is_same_v<T, uint64_t>) return TSR_DTYPE_U64;
  else return TSR_DTYPE_UNDEFINED;
}

inline int64_t NumElements(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

// 64-byte aligned, zero-initialised byte buffer (kernels get arena-like memory).
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes) : size_(bytes) {
    size_t cap = ((bytes + 63) / 64) * 64;
    if (cap == 0) cap = 64;
    ptr_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, cap)));
    std::memset(ptr_.get(), 0, cap);
  }
  uint8_t* data() { return ptr_.get(); }
  const uint8_t* data() const { return ptr_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> ptr_;
  size_t size_ = 0;
};

class OpTest {
 public:
  explicit OpTest(std::string op, std::string domain = "", int64_t opset = 17)
      : op_(std::move(op)), domain_(std::move(domain)), opset_(opset), name_("node_" + op_) {}
  OpTest(const OpTest&) = delete;
  OpTest& operator=(const OpTest&) = delete;

  OpTest& SetOpset(int64_t opset) { opset_ = opset; return *this; }
  OpTest& SetName(std::string name) { name_ = std::move(name); return *this; }
  const std::string& name() const { return name_; }

  // ---- inputs ----------------------------------------------------------------
  // `data` must hold NumElements(dims) elements of sizeof(T) == size of dtype.
  // is_const: the input is a constant (TensorArg::const_data is set).
  template <typename T>
  OpTest& AddInput(int32_t dtype, std::vector<int64_t> dims, const std::vector<T>& data, bool is_const = false) {
    static_assert(!std::is_same_v<T, bool>, "use AddInputBool");
    EXPECT_EQ(sizeof(T), plugin::DTypeSize(dtype)) << "element type does not match dtype";
    EXPECT_EQ(static_cast<int64_t>(data.size()), NumElements(dims)) << "data size does not match dims";
    Slot& s = NewInput(dtype, std::move(dims), is_const);
    if (!data.empty()) std::memcpy(s.buf.data(), data.data(), std::min(s.buf.size(), data.size() * sizeof(T)));
    return *this;
  }
  template <typename T>
  OpTest& AddInput(std::vector<int64_t> dims, const std::vector<T>& data, bool is_const = false) {
    static_assert(DTypeOf<T>() != TSR_DTYPE_UNDEFINED, "no dtype for this type: pass it explicitly");
    return AddInput<T>(DTypeOf<T>(), std::move(dims), data, is_const);
  }
  OpTest& AddInputBool(std::vector<int64_t> dims, const std::vector<bool>& data, bool is_const = false) {
    EXPECT_EQ(static_cast<int64_t>(data.size()), NumElements(dims)) << "data size does not match dims";
    Slot& s = NewInput(TSR_DTYPE_BOOL, std::move(dims), is_const);
    for (size_t i = 0; i < data.size() && i < s.buf.size(); ++i) s.buf.data()[i] = data[i] ? 1 : 0;
    return *this;
  }
  // Raw bytes (any dtype, e.g. string-free exotic ones).
  OpTest& AddInputBytes(int32_t dtype, std::vector<int64_t> dims, const void* bytes, bool is_const = false) {
    Slot& s = NewInput(dtype, std::move(dims), is_const);
    if (s.buf.size()) std::memcpy(s.buf.data(), bytes, s.buf.size());
    return *this;
  }
  // An omitted optional input (node input index -1, nullptr in NodeArgs/Run).
  OpTest& AddMissingInput() {
    inputs_.emplace_back();
    inputs_.back().present = false;
    return *this;
  }

  // ---- outputs ---------------------------------------------------------------
  OpTest& AddOutput(int32_t dtype, std::vector<int64_t> dims) {
    outputs_.emplace_back();
    Slot& s = outputs_.back();
    s.arg.dtype = dtype;
    s.arg.dims = std::move(dims);
    s.arg.numel = NumElements(s.arg.dims);
    return *this;
  }
  OpTest& AddMissingOutput() {
    outputs_.emplace_back();
    outputs_.back().present = false;
    return *this;
  }

  // ---- attributes --------------------------------------------------------------
  OpTest& SetAttrInt(const std::string& name, int64_t v) { Attr& a = NewAttr(name, TSR_ATTR_INT); a.i = v; return *this; }
  OpTest& SetAttrFloat(const std::string& name, float v) { Attr& a = NewAttr(name, TSR_ATTR_FLOAT); a.f = v; return *this; }
  OpTest& SetAttrString(const std::string& name, const std::string& v) {
    Attr& a = NewAttr(name, TSR_ATTR_STRING); a.s = v; return *this;
  }
  OpTest& SetAttrInts(const std::string& name, const std::vector<int64_t>& v) {
    Attr& a = NewAttr(name, TSR_ATTR_INTS); a.ints = v; return *this;
  }
  OpTest& SetAttrFloats(const std::string& name, const std::vector<float>& v) {
    Attr& a = NewAttr(name, TSR_ATTR_FLOATS); a.floats = v; return *this;
  }
  // A tensor attribute (e.g. ConstantOfShape's value): `bytes` holds
  // NumElements(dims) elements of dtype.
  OpTest& SetAttrTensor(const std::string& name, int32_t dtype, const std::vector<int64_t>& dims, const void* bytes) {
    Attr& a = NewAttr(name, TSR_ATTR_TENSOR);
    a.tdims = dims;
    a.tdata.assign(static_cast<const uint8_t*>(bytes),
                   static_cast<const uint8_t*>(bytes) + NumElements(dims) * plugin::DTypeSize(dtype));
    a.tview.dtype = dtype;
    return *this;
  }

  // ---- running -----------------------------------------------------------------
  // Builds the views and calls the registered factory. Fails (TSR_ERR_NOT_FOUND)
  // when the op is not registered.
  Err Create() {
    kernel_.reset();
    BuildViews();
    const KernelEntry* e = KernelRegistry::Get().Find(domain_.c_str(), op_.c_str());
    if (!e) return Remember(MakeErr(TSR_ERR_NOT_FOUND, "op %s not registered", op_.c_str()));
    std::unique_ptr<Kernel> k;
    Err err = e->create(args_, &k);
    if (!err.ok()) return Remember(err);
    if (!k) return Remember(MakeErr(TSR_ERR_INTERNAL, "factory returned OK but no kernel"));
    kernel_ = std::move(k);
    return Remember(Err::Ok());
  }
  // Create() (if not created yet), then allocates fresh output buffers filled
  // with a 0xA5 poison pattern and runs the kernel once.
  Err Run() {
    if (!kernel_) {
      Err e = Create();
      if (!e.ok()) return e;
    }
    return RunAgain();
  }
  // Runs the created kernel again with the current input data (fresh outputs).
  Err RunAgain() {
    if (!kernel_) return Remember(MakeErr(TSR_ERR_FAILED_PRECONDITION, "kernel not created"));
    std::vector<const void*> in;
    std::vector<void*> out;
    for (Slot& s : inputs_) in.push_back(s.present ? s.buf.data() : nullptr);
    for (Slot& s : outputs_) {
      if (s.present) {
        s.buf = AlignedBuffer(static_cast<size_t>(s.arg.nbytes()));
        std::memset(s.buf.data(), 0xA5, s.buf.size());
      }
      out.push_back(s.present ? s.buf.data() : nullptr);
    }
    return Remember(kernel_->Run(in.data(), out.data()));
  }
  // The registered claim check's verdict ("" = supported, or when there is no check).
  std::string Claim() {
    BuildViews();
    const KernelEntry* e = KernelRegistry::Get().Find(domain_.c_str(), op_.c_str());
    if (!e) return "not registered";
    if (!e->claim) return "";
    return e->claim(node_, graph_);
  }
  void Reset() { kernel_.reset(); }

  // Mutable input data (to change between RunAgain calls).
  template <typename T>
  T* InputData(size_t i) { return reinterpret_cast<T*>(inputs_.at(i).buf.data()); }

  template <typename T>
  std::vector<T> Output(size_t i) const {
    const Slot& s = outputs_.at(i);
    std::vector<T> v(static_cast<size_t>(s.arg.numel));
    if constexpr (std::is_same_v<T, bool>) {
      EXPECT_EQ(s.arg.elem_size(), 1);
      for (size_t k = 0; k < v.size(); ++k) v[k] = s.buf.data()[k] != 0;
    } else {
      EXPECT_EQ(static_cast<int64_t>(sizeof(T)), s.arg.elem_size()) << "element type does not match output dtype";
      if (static_cast<int64_t>(sizeof(T)) == s.arg.elem_size() && !v.empty())
        std::memcpy(v.data(), s.buf.data(), v.size() * sizeof(T));
    }
    return v;
  }
  const uint8_t* OutputBytes(size_t i) const { return outputs_.at(i).buf.data(); }
  const std::vector<int64_t>& OutputDims(size_t i) const { return outputs_.at(i).arg.dims; }

  const NodeArgs& args() const { return args_; }
  const tsr_node_view& node() const { return node_; }
  const Kernel* kernel() const { return kernel_.get(); }
  // The message of the last Create/Run/RunAgain error ("" after success).
  const std::string& last_error() const { return last_error_; }

 private:
  struct Slot {
    bool present = true;
    bool is_const = false;
    TensorArg arg;
    AlignedBuffer buf;
  };
  struct Attr {
    std::string name;
    int32_t type = TSR_ATTR_UNDEFINED;
    int64_t i = 0;
    float f = 0;
    std::string s;
    std::vector<int64_t> ints;
    std::vector<float> floats;
    std::vector<int64_t> tdims;
    std::vector<uint8_t> tdata;
    tsr_tensor_view tview{};
  };

  Slot& NewInput(int32_t dtype, std::vector<int64_t> dims, bool is_const) {
    inputs_.emplace_back();
    Slot& s = inputs_.back();
    s.is_const = is_const;
    s.arg.dtype = dtype;
    s.arg.dims = std::move(dims);
    s.arg.numel = NumElements(s.arg.dims);
    s.buf = AlignedBuffer(static_cast<size_t>(s.arg.nbytes()));
    return s;
  }
  Attr& NewAttr(const std::string& name, int32_t type) {
    for (Attr& a : attrs_)
      if (a.name == name) {
        a = Attr{};
        a.name = name;
        a.type = type;
        return a;
      }
    attrs_.emplace_back();
    attrs_.back().name = name;
    attrs_.back().type = type;
    return attrs_.back();
  }
  Err Remember(Err e) {
    last_error_ = e.message;
    return e;
  }

  // (Re)builds every view from the owned storage; pointers stay valid until
  // the next mutation of inputs/outputs/attributes.
  void BuildViews() {
    values_.clear();
    in_idx_.clear();
    out_idx_.clear();
    names_.clear();
    names_.reserve(inputs_.size() + outputs_.size());
    args_ = NodeArgs{};
    for (Slot& s : inputs_) {
      s.arg.const_data = s.present && s.is_const ? s.buf.data() : nullptr;
      in_idx_.push_back(s.present ? static_cast<int32_t>(values_.size()) : -1);
      if (s.present) values_.push_back(ValueOf(s, "in" + std::to_string(in_idx_.size() - 1)));
      args_.inputs.push_back(s.present ? &s.arg : nullptr);
    }
    for (Slot& s : outputs_) {
      out_idx_.push_back(s.present ? static_cast<int32_t>(values_.size()) : -1);
      if (s.present) values_.push_back(ValueOf(s, "out" + std::to_string(out_idx_.size() - 1)));
      args_.outputs.push_back(s.present ? &s.arg : nullptr);
    }
    attr_views_.clear();
    for (Attr& a : attrs_) {
      tsr_attr_view v{};
      v.name = a.name.c_str();
      v.type = a.type;
      v.i = a.i;
      v.f = a.f;
      v.s = a.s.data();
      v.s_len = a.s.size();
      if (a.type == TSR_ATTR_INTS) { v.count = a.ints.size(); v.ints = a.ints.data(); }
      if (a.type == TSR_ATTR_FLOATS) { v.count = a.floats.size(); v.floats = a.floats.data(); }
      if (a.type == TSR_ATTR_TENSOR) {
        a.tview.rank = static_cast<int32_t>(a.tdims.size());
        a.tview.dims = a.tdims.data();
        a.tview.data = a.tdata.data();
        a.tview.nbytes = a.tdata.size();
        v.tensor = &a.tview;
      }
      attr_views_.push_back(v);
    }
    node_ = tsr_node_view{};
    node_.name = name_.c_str();
    node_.domain = domain_.c_str();
    node_.op_type = op_.c_str();
    node_.opset = opset_;
    node_.num_inputs = static_cast<uint32_t>(in_idx_.size());
    node_.inputs = in_idx_.data();
    node_.num_outputs = static_cast<uint32_t>(out_idx_.size());
    node_.outputs = out_idx_.data();
    node_.num_attrs = static_cast<uint32_t>(attr_views_.size());
    node_.attrs = attr_views_.data();
    graph_ = tsr_graph_view{};
    graph_.struct_size = sizeof(tsr_graph_view);
    graph_.num_values = static_cast<uint32_t>(values_.size());
    graph_.values = values_.data();
    graph_.num_nodes = 1;
    graph_.nodes = &node_;
    graph_in_.clear();
    graph_out_.clear();
    for (size_t i = 0; i < inputs_.size(); ++i)
      if (inputs_[i].present && !inputs_[i].is_const) graph_in_.push_back(in_idx_[i]);
    for (int32_t o : out_idx_)
      if (o >= 0) graph_out_.push_back(o);
    graph_.num_inputs = static_cast<uint32_t>(graph_in_.size());
    graph_.inputs = graph_in_.data();
    graph_.num_outputs = static_cast<uint32_t>(graph_out_.size());
    graph_.outputs = graph_out_.data();
    args_.node = &node_;
  }
  tsr_value_view ValueOf(Slot& s, const std::string& name) {
    names_.push_back(name);  // reserved in BuildViews: c_str() stays valid
    tsr_value_view v{};
    v.name = names_.back().c_str();
    v.dtype = s.arg.dtype;
    v.rank = static_cast<int32_t>(s.arg.dims.size());
    v.dims = s.arg.dims.data();
    v.const_data = s.arg.const_data;
    v.const_bytes = s.arg.const_data ? static_cast<uint64_t>(s.arg.nbytes()) : 0;
    v.flags = s.arg.const_data ? TSR_VALUE_CONSTANT : (name[0] == 'i' ? TSR_VALUE_GRAPH_INPUT : TSR_VALUE_GRAPH_OUTPUT);
    return v;
  }

  std::string op_, domain_;
  int64_t opset_;
  std::string name_;
  std::vector<Slot> inputs_, outputs_;
  std::vector<Attr> attrs_;
  std::vector<std::string> names_;
  std::vector<tsr_value_view> values_;
  std::vector<int32_t> in_idx_, out_idx_, graph_in_, graph_out_;
  std::vector<tsr_attr_view> attr_views_;
  tsr_node_view node_{};
  tsr_graph_view graph_{};
  NodeArgs args_;
  std::unique_ptr<Kernel> kernel_;
  std::string last_error_;
};

// ---- reference helpers ------------------------------------------------------------

// Deterministic uniform floats in [lo, hi).
inline std::vector<float> RandomFloats(int64_t n, float lo = -1.f, float hi = 1.f, uint32_t seed = 1234) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(gen);
  return v;
}

// |a - e| <= atol + rtol * |e| for every element (NaN matches NaN, inf matches same inf).
inline ::testing::AssertionResult AllClose(const std::vector<float>& actual, const std::vector<float>& expected,
                                           float rtol = 1e-5f, float atol = 1e-6f) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << "size " << actual.size() << " != expected " << expected.size();
  for (size_t i = 0; i < actual.size(); ++i) {
    float a = actual[i], e = expected[i];
    if (std::isnan(e) && std::isnan(a)) continue;
    if (std::isinf(e) && a == e) continue;
    if (!(std::fabs(a - e) <= atol + rtol * std::fabs(e)))
      return ::testing::AssertionFailure() << "element " << i << ": got " << a << ", expected " << e;
  }
  return ::testing::AssertionSuccess();
}

// Row-major strides of dims (in elements).
inline std::vector<int64_t> StridesOf(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int64_t i = static_cast<int64_t>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

// Flat index into `dims` (right-aligned, size-1 dims broadcast) of the
// element at multi-index `idx` of an output of rank idx.size().
inline int64_t BroadcastIndex(const std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  int64_t off = 0, stride = 1;
  size_t shift = idx.size() - dims.size();
  for (int64_t d = static_cast<int64_t>(dims.size()) - 1; d >= 0; --d) {
    int64_t i = dims[d] == 1 ? 0 : idx[d + shift];
    off += i * stride;
    stride *= dims[d];
  }
  return off;
}

// Multi-index of flat position `flat` in `dims`.
inline std::vector<int64_t> Unravel(int64_t flat, const std::vector<int64_t>& dims) {
  std::vector<int64_t> idx(dims.size());
  for (int64_t d = static_cast<int64_t>(dims.size()) - 1; d >= 0; --d) {
    idx[d] = dims[d] ? flat % dims[d] : 0;
    flat = dims[d] ? flat / dims[d] : 0;
  }
  return idx;
}

}  // namespace tessera::cpu::testing
