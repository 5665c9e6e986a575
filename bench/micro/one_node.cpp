#include "bench/micro/one_node.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>

namespace tessera::bench {

uint16_t F32ToBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float Bf16ToF32(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

namespace {

struct FreeAligned {
  void operator()(uint8_t* p) const { std::free(p); }
};

int64_t Numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

}  // namespace

struct OneNode::Slot {
  cpu::TensorArg arg;
  bool is_const = false;
  std::unique_ptr<uint8_t, FreeAligned> buf;

  void Allocate() {
    const size_t bytes = static_cast<size_t>(arg.nbytes());
    const size_t cap = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    buf.reset(static_cast<uint8_t*>(std::aligned_alloc(64, cap)));
    if (buf) std::memset(buf.get(), 0, cap);  // touches every page
  }
  float At(int64_t i) const {
    if (arg.dtype == TSR_DTYPE_F32) return reinterpret_cast<const float*>(buf.get())[i];
    if (arg.dtype == TSR_DTYPE_BF16) return Bf16ToF32(reinterpret_cast<const uint16_t*>(buf.get())[i]);
    return 0.f;
  }
};

struct OneNode::Attr {
  std::string name;
  int32_t type = TSR_ATTR_UNDEFINED;
  int64_t i = 0;
  float f = 0;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<const char*> string_ptrs;
};

OneNode::OneNode(std::string domain, std::string op, int64_t opset)
    : domain_(std::move(domain)), op_(std::move(op)), name_("bench_" + op_), opset_(opset) {}

OneNode::~OneNode() = default;

OneNode& OneNode::AddInput(int32_t dtype, std::vector<int64_t> dims, bool is_const, uint32_t seed) {
  auto s = std::make_unique<Slot>();
  s->arg.dtype = dtype;
  s->arg.dims = std::move(dims);
  s->arg.numel = Numel(s->arg.dims);
  s->is_const = is_const;
  s->Allocate();
  if (s->buf && (dtype == TSR_DTYPE_F32 || dtype == TSR_DTYPE_BF16)) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (int64_t i = 0; i < s->arg.numel; ++i) {
      const float v = dist(gen);
      if (dtype == TSR_DTYPE_F32)
        reinterpret_cast<float*>(s->buf.get())[i] = v;
      else
        reinterpret_cast<uint16_t*>(s->buf.get())[i] = F32ToBf16(v);
    }
  }
  if (is_const) s->arg.const_data = s->buf.get();
  inputs_.push_back(std::move(s));
  return *this;
}

OneNode& OneNode::AddOutput(int32_t dtype, std::vector<int64_t> dims) {
  auto s = std::make_unique<Slot>();
  s->arg.dtype = dtype;
  s->arg.dims = std::move(dims);
  s->arg.numel = Numel(s->arg.dims);
  s->Allocate();
  outputs_.push_back(std::move(s));
  return *this;
}

OneNode& OneNode::SetAttrInt(const std::string& name, int64_t v) {
  auto a = std::make_unique<Attr>();
  a->name = name;
  a->type = TSR_ATTR_INT;
  a->i = v;
  attrs_.push_back(std::move(a));
  return *this;
}

OneNode& OneNode::SetAttrFloat(const std::string& name, float v) {
  auto a = std::make_unique<Attr>();
  a->name = name;
  a->type = TSR_ATTR_FLOAT;
  a->f = v;
  attrs_.push_back(std::move(a));
  return *this;
}

OneNode& OneNode::SetAttrInts(const std::string& name, std::vector<int64_t> v) {
  auto a = std::make_unique<Attr>();
  a->name = name;
  a->type = TSR_ATTR_INTS;
  a->ints = std::move(v);
  attrs_.push_back(std::move(a));
  return *this;
}

OneNode& OneNode::SetAttrStrings(const std::string& name, std::vector<std::string> v) {
  auto a = std::make_unique<Attr>();
  a->name = name;
  a->type = TSR_ATTR_STRINGS;
  a->strings = std::move(v);
  for (const std::string& s : a->strings) a->string_ptrs.push_back(s.c_str());
  attrs_.push_back(std::move(a));
  return *this;
}

cpu::Err OneNode::Create(int threads, const std::string& precision) {
  kernel_.reset();
  for (const auto& s : inputs_)
    if (!s->buf) return cpu::MakeErr(TSR_ERR_OUT_OF_MEMORY, "%s: could not allocate an input", Describe().c_str());
  for (const auto& s : outputs_)
    if (!s->buf) return cpu::MakeErr(TSR_ERR_OUT_OF_MEMORY, "%s: could not allocate an output", Describe().c_str());
  // Value indices: inputs first, then outputs (only the kernels' attrs and
  // TensorArgs are read by factories; the indices just have to be distinct).
  in_idx_.clear();
  out_idx_.clear();
  in_ptrs_.clear();
  out_ptrs_.clear();
  args_ = cpu::NodeArgs{};
  int32_t v = 0;
  for (const auto& s : inputs_) {
    in_idx_.push_back(v++);
    args_.inputs.push_back(&s->arg);
    in_ptrs_.push_back(s->buf.get());
  }
  for (const auto& s : outputs_) {
    out_idx_.push_back(v++);
    args_.outputs.push_back(&s->arg);
    out_ptrs_.push_back(s->buf.get());
  }
  attr_views_.clear();
  for (const auto& a : attrs_) {
    tsr_attr_view av{};
    av.name = a->name.c_str();
    av.type = a->type;
    av.i = a->i;
    av.f = a->f;
    if (a->type == TSR_ATTR_INTS) {
      av.count = a->ints.size();
      av.ints = a->ints.data();
    }
    if (a->type == TSR_ATTR_STRINGS) {
      av.count = a->string_ptrs.size();
      av.strings = a->string_ptrs.data();
    }
    attr_views_.push_back(av);
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
  args_.node = &node_;
  args_.threads = threads;
  args_.precision = precision;

  const cpu::KernelEntry* e = cpu::KernelRegistry::Get().Find(domain_.c_str(), op_.c_str());
  if (!e) return cpu::MakeErr(TSR_ERR_NOT_FOUND, "%s: op not registered in the CPU backend", Describe().c_str());
  std::unique_ptr<cpu::Kernel> k;
  cpu::Err err = e->create(args_, &k);
  if (!err.ok()) return err;
  if (!k) return cpu::MakeErr(TSR_ERR_INTERNAL, "%s: factory returned OK but no kernel", Describe().c_str());
  kernel_ = std::move(k);
  return cpu::Err::Ok();
}

cpu::Err OneNode::Run() const {
  if (!kernel_) return cpu::MakeErr(TSR_ERR_FAILED_PRECONDITION, "%s: kernel not created", Describe().c_str());
  return kernel_->Run(in_ptrs_.data(), out_ptrs_.data());
}

float OneNode::InputAt(size_t which, int64_t i) const { return inputs_.at(which)->At(i); }
float OneNode::OutputAt(size_t which, int64_t i) const { return outputs_.at(which)->At(i); }
const std::vector<int64_t>& OneNode::InputDims(size_t which) const { return inputs_.at(which)->arg.dims; }
int64_t OneNode::InputBytes(size_t which) const { return inputs_.at(which)->arg.nbytes(); }
int64_t OneNode::OutputBytes(size_t which) const { return outputs_.at(which)->arg.nbytes(); }

std::string OneNode::Describe() const {
  return "node '" + name_ + "' (" + (domain_.empty() ? "" : domain_ + ".") + op_ + ")";
}

}  // namespace tessera::bench
