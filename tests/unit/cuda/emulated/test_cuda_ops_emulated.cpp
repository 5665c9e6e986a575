// The CUDA backend's op factories (backends/cuda/cuda_ops.cpp) end to end on
// the CPU: each test builds a node view and TensorArgs by hand, creates the
// kernel through FindKernelFactory exactly as compile does, runs it on host
// buffers (launchers emulated in launch_emulated.cpp) and compares with a
// naive reference. Bad attributes/inputs must give clear errors naming the node.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/cuda_ops.h"

namespace tessera::cuda {
namespace {

std::vector<float> Random(size_t n, unsigned seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

// One node with its tensors and attributes.
class Op {
 public:
  Op(const char* domain, const char* op, int64_t opset = 17) {
    node_.name = "n0";
    node_.domain = domain;
    node_.op_type = op;
    node_.opset = opset;
  }
  // Adds an input (data copied; constant when `constant`) / output.
  template <typename T>
  Op& In(int32_t dtype, std::vector<int64_t> dims, const std::vector<T>& data, bool constant = false) {
    Tensor& t = Add(dtype, std::move(dims));
    t.bytes.resize(data.size() * sizeof(T));
    std::memcpy(t.bytes.data(), data.data(), t.bytes.size());
    if (constant) t.arg.const_data = t.bytes.data();
    ins_.push_back(&t);
    return *this;
  }
  Op& Missing() {
    ins_.push_back(nullptr);
    return *this;
  }
  Op& Out(int32_t dtype, std::vector<int64_t> dims) {
    Tensor& t = Add(dtype, std::move(dims));
    t.bytes.assign(static_cast<size_t>(t.arg.nbytes()), 0xCD);
    outs_.push_back(&t);
    return *this;
  }
  Op& Int(const char* n, int64_t v) { return AttrRef(n, TSR_ATTR_INT, [&](tsr_attr_view& a) { a.i = v; }); }
  Op& Float(const char* n, float v) { return AttrRef(n, TSR_ATTR_FLOAT, [&](tsr_attr_view& a) { a.f = v; }); }
  Op& Str(const char* n, const char* s) {
    return AttrRef(n, TSR_ATTR_STRING, [&](tsr_attr_view& a) {
      a.s = s;
      a.s_len = std::strlen(s);
    });
  }
  Op& Ints(const char* n, std::vector<int64_t> v) {
    ints_.push_back(std::move(v));
    return AttrRef(n, TSR_ATTR_INTS, [&](tsr_attr_view& a) {
      a.ints = ints_.back().data();
      a.count = ints_.back().size();
    });
  }
  Op& TensorAttr(const char* n, const tsr_tensor_view* t) {
    return AttrRef(n, TSR_ATTR_TENSOR, [&](tsr_attr_view& a) { a.tensor = t; });
  }
  Op& Floats(const char* n, std::vector<float> v) {
    floats_.push_back(std::move(v));
    return AttrRef(n, TSR_ATTR_FLOATS, [&](tsr_attr_view& a) {
      a.floats = floats_.back().data();
      a.count = floats_.back().size();
    });
  }

  // Creates the kernel; returns the factory's error.
  Err Create() {
    node_.num_attrs = static_cast<uint32_t>(attrs_.size());
    node_.attrs = attrs_.data();
    args_.node = &node_;
    args_.inputs.clear();
    args_.outputs.clear();
    for (Tensor* t : ins_) args_.inputs.push_back(t ? &t->arg : nullptr);
    for (Tensor* t : outs_) args_.outputs.push_back(&t->arg);
    args_.device.smem_optin = 48 * 1024;
    const std::string key = std::string(node_.domain) == "tessera" ? "tessera." + std::string(node_.op_type)
                                                                      : std::string(node_.op_type);
    KernelFactory f = FindKernelFactory(key);
    if (!f) return MakeErr(TSR_ERR_UNSUPPORTED, "no factory for %s", key.c_str());
    return f(args_, &kernel_);
  }
  // Creates and runs; fails the test on an error.
  void Run() {
    Err e = Create();
    ASSERT_TRUE(e.ok()) << e.message;
    std::vector<const void*> in;
    std::vector<void*> out;
    for (Tensor* t : ins_) in.push_back(t ? t->bytes.data() : nullptr);
    for (Tensor* t : outs_) out.push_back(t->bytes.data());
    LaunchCtx ctx;
    e = kernel_->Run(ctx, in.data(), out.data());
    ASSERT_TRUE(e.ok()) << e.message;
  }
  template <typename T>
  std::vector<T> Output(size_t i) const {
    std::vector<T> v(outs_[i]->bytes.size() / sizeof(T));
    std::memcpy(v.data(), outs_[i]->bytes.data(), v.size() * sizeof(T));
    return v;
  }

 private:
  struct Tensor {
    TensorArg arg;
    std::vector<uint8_t> bytes;
  };
  Tensor& Add(int32_t dtype, std::vector<int64_t> dims) {
    tensors_.emplace_back();
    Tensor& t = tensors_.back();
    t.arg.dtype = dtype;
    t.arg.numel = 1;
    for (int64_t d : dims) t.arg.numel *= d;
    t.arg.dims = std::move(dims);
    return t;
  }
  template <typename F>
  Op& AttrRef(const char* n, int32_t type, F fill) {
    tsr_attr_view a{};
    a.name = n;
    a.type = type;
    fill(a);
    attrs_.push_back(a);
    return *this;
  }
  tsr_node_view node_{};
  std::deque<Tensor> tensors_;
  std::vector<Tensor*> ins_, outs_;
  std::vector<tsr_attr_view> attrs_;
  std::deque<std::vector<int64_t>> ints_;
  std::deque<std::vector<float>> floats_;
  NodeArgs args_;
  std::unique_ptr<GpuKernel> kernel_;
};

void Near(const std::vector<float>& got, const std::vector<float>& want, float tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    if (std::isnan(got[i]) && std::isnan(want[i])) continue;
    if (!(std::fabs(got[i] - want[i]) <= tol * (1.f + std::fabs(want[i])))) {
      ADD_FAILURE() << what << ": element " << i << " = " << got[i] << ", expected " << want[i];
      ++bad;
    }
  }
}

const int32_t F32 = TSR_DTYPE_F32, I64 = TSR_DTYPE_I64, BOOL = TSR_DTYPE_BOOL;

TEST(CudaOpsEmulated, ElementwiseBroadcastClipGeluAndVariadicMax) {
  const std::vector<float> x = Random(24, 1), b = Random(4, 2), c = Random(6, 3);
  {
    Op op("", "Sub");
    op.In(F32, {2, 3, 4}, x).In(F32, {4}, b).Out(F32, {2, 3, 4});
    op.Run();
    std::vector<float> w(24);
    for (int i = 0; i < 24; ++i) w[i] = x[i] - b[i % 4];
    Near(op.Output<float>(0), w, 0, "Sub broadcast");
  }
  {
    Op op("", "Clip", 13);
    op.In(F32, {24}, x).In(F32, {}, std::vector<float>{-0.3f}, true).Missing().Out(F32, {24});
    op.Run();
    std::vector<float> w(24);
    for (int i = 0; i < 24; ++i) w[i] = std::max(x[i], -0.3f);
    Near(op.Output<float>(0), w, 0, "Clip min only");
  }
  {
    Op op("", "Gelu", 20);
    op.In(F32, {24}, x).Out(F32, {24}).Str("approximate", "tanh");
    op.Run();
    std::vector<float> w(24);
    for (int i = 0; i < 24; ++i) w[i] = 0.5f * x[i] * (1.f + std::tanh(0.7978845608f * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
    Near(op.Output<float>(0), w, 1e-6f, "Gelu tanh");
  }
  {
    Op op("", "Max");
    op.In(F32, {2, 3, 4}, x).In(F32, {4}, b).In(F32, {2, 3, 1}, c).Out(F32, {2, 3, 4});
    op.Run();
    std::vector<float> w(24);
    for (int i = 0; i < 24; ++i) w[i] = std::max(std::max(x[i], b[i % 4]), c[i / 4]);
    Near(op.Output<float>(0), w, 0, "variadic Max");
  }
  {  // Errors name the node.
    Op op("", "Gelu", 20);
    op.In(F32, {24}, x).Out(F32, {24}).Str("approximate", "fast");
    Err e = op.Create();
    EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(e.message.find("node 'n0' (Gelu)"), std::string::npos) << e.message;
    Op cl("", "Clip", 13);
    cl.In(F32, {24}, x).In(F32, {}, std::vector<float>{0.f}).Out(F32, {24});
    EXPECT_EQ(cl.Create().code, TSR_ERR_UNSUPPORTED);
    Op bad("", "Add");
    bad.In(F32, {2, 3}, x).In(F32, {4}, b).Out(F32, {2, 3});
    EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
  }
}

TEST(CudaOpsEmulated, FusedElementwiseProgramAndErrors) {
  const std::vector<float> x = Random(12, 4), z = Random(3, 5);
  Op op("tessera", "FusedElementwise");
  // r0 = x [4,3], r1 = z [3], r2 = 0.1, r3 = -0.5, r4 = 0.5; r5 = x+z; r6 = leaky(r5, 0.1); r7 = clip(r6, -0.5, 0.5)
  op.In(F32, {4, 3}, x).In(F32, {3}, z).Out(F32, {4, 3});
  op.Floats("constants", {0.1f, -0.5f, 0.5f});
  op.Ints("program", {0, 5, 0, 1, -1, 10, 6, 5, 2, -1, 20, 7, 6, 3, 4});
  op.Run();
  std::vector<float> w(12);
  for (int i = 0; i < 12; ++i) {
    float v = x[i] + z[i % 3];
    v = v >= 0 ? v : 0.1f * v;
    w[i] = std::min(std::max(v, -0.5f), 0.5f);
  }
  Near(op.Output<float>(0), w, 1e-7f, "FusedElementwise");
  Op bad("tessera", "FusedElementwise");
  bad.In(F32, {4, 3}, x).Out(F32, {4, 3});
  bad.Ints("program", {9, 3, 0, -1, -1});  // dst must be 1
  Err e = bad.Create();
  EXPECT_EQ(e.code, TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.message.find("dst"), std::string::npos) << e.message;
}

TEST(CudaOpsEmulated, CompareWhereCastAndIntegerArithmetic) {
  const std::vector<int64_t> a = {1, 5, -3, 7}, b = {1, 2, -3, 0};
  Op eq("", "Equal");
  eq.In(I64, {4}, a).In(I64, {4}, b).Out(BOOL, {4});
  eq.Run();
  EXPECT_EQ(eq.Output<uint8_t>(0), (std::vector<uint8_t>{1, 0, 1, 0}));
  Op neg("", "Neg");
  neg.In(I64, {4}, a).Out(I64, {4});
  neg.Run();
  EXPECT_EQ(neg.Output<int64_t>(0), (std::vector<int64_t>{-1, -5, 3, -7}));
  Op mul("", "Mul");
  mul.In(I64, {2, 2}, a).In(I64, {1}, std::vector<int64_t>{3}).Out(I64, {2, 2});
  mul.Run();
  EXPECT_EQ(mul.Output<int64_t>(0), (std::vector<int64_t>{3, 15, -9, 21}));
  const std::vector<uint8_t> cond = {1, 0};
  const std::vector<float> x = {1, 2, 3, 4}, y = {-1};
  Op wh("", "Where");
  wh.In(BOOL, {2, 1}, cond).In(F32, {2, 2}, x).In(F32, {}, y).Out(F32, {2, 2});
  wh.Run();
  EXPECT_EQ(wh.Output<float>(0), (std::vector<float>{1, 2, -1, -1}));
  Op cast("", "Cast");
  cast.In(F32, {4}, std::vector<float>{1.9f, -1.9f, 0.f, 3.f}).Out(TSR_DTYPE_I32, {4}).Int("to", TSR_DTYPE_I32);
  cast.Run();
  EXPECT_EQ(cast.Output<int32_t>(0), (std::vector<int32_t>{1, -1, 0, 3}));
  Op max3("", "Max");
  max3.In(I64, {4}, a).In(I64, {4}, b).In(I64, {4}, a).Out(I64, {4});
  EXPECT_EQ(max3.Create().code, TSR_ERR_UNSUPPORTED) << "three integer inputs are refused, never half-computed";
  Op nt("", "Not");
  nt.In(BOOL, {2}, cond).Out(BOOL, {2});
  nt.Run();
  EXPECT_EQ(nt.Output<uint8_t>(0), (std::vector<uint8_t>{0, 1}));
}

TEST(CudaOpsEmulated, DataMovement) {
  std::vector<float> x(24);
  for (int i = 0; i < 24; ++i) x[i] = static_cast<float>(i);
  {
    Op op("", "Transpose");  // default perm reverses
    op.In(F32, {2, 3, 4}, x).Out(F32, {4, 3, 2});
    op.Run();
    std::vector<float> w;
    for (int c = 0; c < 4; ++c)
      for (int b = 0; b < 3; ++b)
        for (int a = 0; a < 2; ++a) w.push_back(x[(a * 3 + b) * 4 + c]);
    EXPECT_EQ(op.Output<float>(0), w);
  }
  {
    Op op("", "Slice", 13);  // axis 2 from the end backwards with step -2, axis 0 from 1
    op.In(F32, {2, 3, 4}, x)
        .In(I64, {2}, std::vector<int64_t>{-1, 1}, true)
        .In(I64, {2}, std::vector<int64_t>{-100, 100}, true)
        .In(I64, {2}, std::vector<int64_t>{2, 0}, true)
        .In(I64, {2}, std::vector<int64_t>{-2, 1}, true)
        .Out(F32, {1, 3, 2});
    op.Run();
    std::vector<float> w;
    for (int b = 0; b < 3; ++b)
      for (int c : {3, 1}) w.push_back(x[(1 * 3 + b) * 4 + c]);
    EXPECT_EQ(op.Output<float>(0), w);
    Op bad("", "Slice", 13);
    bad.In(F32, {2, 3, 4}, x).In(I64, {1}, std::vector<int64_t>{0}).In(I64, {1}, std::vector<int64_t>{1}, true).Out(F32, {1, 3, 4});
    Err e = bad.Create();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("starts (input 1) must be a constant"), std::string::npos) << e.message;
  }
  {
    Op op("", "Concat");
    const std::vector<float> y = {100, 101, 102, 103, 104, 105};
    op.In(F32, {2, 3, 4}, x).In(F32, {2, 1, 3}, y).Out(F32, {2, 4, 4}).Int("axis", 1);
    EXPECT_EQ(op.Create().code, TSR_ERR_INVALID_ARGUMENT) << "parts with mismatched trailing dims are rejected";
    Op ok("", "Concat");
    ok.In(F32, {2, 3, 4}, x).In(F32, {2, 1, 4}, std::vector<float>{100, 101, 102, 103, 104, 105, 106, 107}).Out(F32, {2, 4, 4}).Int("axis", 1);
    ASSERT_NO_FATAL_FAILURE(ok.Run());
    const std::vector<float> got = ok.Output<float>(0);
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 4; ++b)
        for (int c = 0; c < 4; ++c)
          EXPECT_EQ(got[(a * 4 + b) * 4 + c], b < 3 ? x[(a * 3 + b) * 4 + c] : 100.f + a * 4 + c);
  }
  {
    Op op("", "Split", 13);
    op.In(F32, {2, 3, 4}, x).Out(F32, {2, 3, 1}).Out(F32, {2, 3, 3}).Int("axis", -1);
    op.Run();
    const std::vector<float> a0 = op.Output<float>(0), a1 = op.Output<float>(1);
    for (int r = 0; r < 6; ++r) {
      EXPECT_EQ(a0[r], x[r * 4]);
      for (int c = 0; c < 3; ++c) EXPECT_EQ(a1[r * 3 + c], x[r * 4 + 1 + c]);
    }
  }
  {
    Op op("", "Expand");
    op.In(F32, {3, 1}, std::vector<float>{1, 2, 3}).In(I64, {2}, std::vector<int64_t>{2, 3, 2}).Out(F32, {2, 3, 2});
    op.Run();
    EXPECT_EQ(op.Output<float>(0), (std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}));
  }
  {
    Op op("", "Gather");
    op.In(F32, {2, 3, 4}, x).In(TSR_DTYPE_I32, {2}, std::vector<int32_t>{1, -2}).Out(F32, {2, 2, 4}).Int("axis", 1);
    op.Run();
    const std::vector<float> g = op.Output<float>(0);
    for (int a = 0; a < 2; ++a)
      for (int c = 0; c < 4; ++c) {
        EXPECT_EQ(g[(a * 2 + 0) * 4 + c], x[(a * 3 + 1) * 4 + c]);
        EXPECT_EQ(g[(a * 2 + 1) * 4 + c], x[(a * 3 + 1) * 4 + c]);
      }
  }
  {
    Op op("", "Dropout", 13);
    op.In(F32, {24}, x).Out(F32, {24}).Out(BOOL, {24});
    op.Run();
    EXPECT_EQ(op.Output<float>(0), x);
    EXPECT_EQ(op.Output<uint8_t>(1), std::vector<uint8_t>(24, 1));
  }
}

TEST(CudaOpsEmulated, ShapeConstantOfShapeRange) {
  std::vector<float> x(24, 0.f);
  Op sh("", "Shape", 15);
  sh.In(F32, {2, 3, 4}, x).Out(I64, {2}).Int("start", -2);
  sh.Run();
  EXPECT_EQ(sh.Output<int64_t>(0), (std::vector<int64_t>{3, 4}));
  float seven = 7.f;
  tsr_tensor_view tv{};
  tv.dtype = F32;
  tv.data = &seven;
  tv.nbytes = 4;
  Op cs("", "ConstantOfShape");
  cs.In(I64, {2}, std::vector<int64_t>{2, 2}).Out(F32, {2, 2}).TensorAttr("value", &tv);
  cs.Run();
  EXPECT_EQ(cs.Output<float>(0), std::vector<float>(4, 7.f));
  Op cs0("", "ConstantOfShape");
  cs0.In(I64, {1}, std::vector<int64_t>{3}).Out(F32, {3});
  cs0.Run();
  EXPECT_EQ(cs0.Output<float>(0), std::vector<float>(3, 0.f)) << "default value 0";
  tsr_tensor_view wrong = tv;
  wrong.dtype = I64;
  Op cs1("", "ConstantOfShape");
  cs1.In(I64, {1}, std::vector<int64_t>{3}).Out(F32, {3}).TensorAttr("value", &wrong);
  EXPECT_EQ(cs1.Create().code, TSR_ERR_INVALID_ARGUMENT);
  Op rg("", "Range");
  rg.In(I64, {}, std::vector<int64_t>{10}, true).In(I64, {}, std::vector<int64_t>{0}, true)
      .In(I64, {}, std::vector<int64_t>{-3}, true).Out(I64, {4});
  rg.Run();
  EXPECT_EQ(rg.Output<int64_t>(0), (std::vector<int64_t>{10, 7, 4, 1}));
}

TEST(CudaOpsEmulated, ReductionsSoftmaxNorms) {
  const std::vector<float> x = Random(2 * 3 * 4 * 5, 6, -2, 2);
  {
    Op op("", "ReduceMean", 18);
    op.In(F32, {2, 3, 4, 5}, x).In(I64, {2}, std::vector<int64_t>{1, 2}, true).Out(F32, {2, 1, 1, 5});
    op.Run();
    std::vector<float> w(10, 0.f);
    for (int a = 0; a < 2; ++a)
      for (int k = 0; k < 12; ++k)
        for (int c = 0; c < 5; ++c) w[a * 5 + c] += x[(a * 12 + k) * 5 + c] / 12.f;
    Near(op.Output<float>(0), w, 1e-5f, "ReduceMean axes 1,2");
    Op bad("", "ReduceSum", 13);
    bad.In(F32, {2, 3, 4, 5}, x).In(I64, {2}, std::vector<int64_t>{0, 2}, true).Out(F32, {1, 3, 1, 5});
    Err e = bad.Create();
    EXPECT_EQ(e.code, TSR_ERR_UNSUPPORTED);
    EXPECT_NE(e.message.find("non-adjacent"), std::string::npos) << e.message;
  }
  {
    Op op("", "GlobalAveragePool");
    op.In(F32, {2, 3, 4, 5}, x).Out(F32, {2, 3, 1, 1});
    op.Run();
    std::vector<float> w(6, 0.f);
    for (int r = 0; r < 6; ++r)
      for (int k = 0; k < 20; ++k) w[r] += x[r * 20 + k] / 20.f;
    Near(op.Output<float>(0), w, 1e-5f, "GlobalAveragePool");
  }
  {
    Op op("", "Softmax", 11);  // opset 11: flatten at axis 1 -> rows of 60
    op.In(F32, {2, 3, 4, 5}, x).Out(F32, {2, 3, 4, 5});
    op.Run();
    std::vector<float> w(120);
    for (int r = 0; r < 2; ++r) {
      double m = -1e30, s = 0;
      for (int k = 0; k < 60; ++k) m = std::max<double>(m, x[r * 60 + k]);
      for (int k = 0; k < 60; ++k) s += std::exp(x[r * 60 + k] - m);
      for (int k = 0; k < 60; ++k) w[r * 60 + k] = static_cast<float>(std::exp(x[r * 60 + k] - m) / s);
    }
    Near(op.Output<float>(0), w, 1e-5f, "Softmax opset 11");
  }
  {
    Op op("", "LayerNormalization", 17);
    const std::vector<float> sc = Random(20, 7), bi = Random(20, 8);
    op.In(F32, {2, 3, 4, 5}, x).In(F32, {4, 5}, sc).In(F32, {4, 5}, bi).Out(F32, {2, 3, 4, 5}).Out(F32, {2, 3, 1, 1})
        .Int("axis", 2);
    op.Run();
    std::vector<float> w(120), wm(6);
    for (int r = 0; r < 6; ++r) {
      double m = 0, v = 0;
      for (int k = 0; k < 20; ++k) m += x[r * 20 + k] / 20.0;
      for (int k = 0; k < 20; ++k) v += (x[r * 20 + k] - m) * (x[r * 20 + k] - m) / 20.0;
      for (int k = 0; k < 20; ++k) w[r * 20 + k] = static_cast<float>((x[r * 20 + k] - m) / std::sqrt(v + 1e-5) * sc[k] + bi[k]);
      wm[r] = static_cast<float>(m);
    }
    Near(op.Output<float>(0), w, 1e-4f, "LayerNormalization");
    Near(op.Output<float>(1), wm, 1e-5f, "LayerNormalization mean");
    Op bad("", "LayerNormalization", 17);
    bad.In(F32, {2, 3, 4, 5}, x).In(F32, {5}, sc).Out(F32, {2, 3, 4, 5}).Int("axis", 2);
    EXPECT_EQ(bad.Create().code, TSR_ERR_UNSUPPORTED);
  }
  {
    Op op("", "BatchNormalization", 15);
    const std::vector<float> sc = {1, 2, 3}, bi = {0.5f, 0, -0.5f}, mu = {0, 1, -1}, var = {1, 0.5f, 2};
    op.In(F32, {2, 3, 4, 5}, x).In(F32, {3}, sc, true).In(F32, {3}, bi, true).In(F32, {3}, mu, true)
        .In(F32, {3}, var, true).Out(F32, {2, 3, 4, 5});
    op.Run();
    std::vector<float> w(120);
    for (int i = 0; i < 120; ++i) {
      const int c = (i / 20) % 3;
      w[i] = (x[i] - mu[c]) / std::sqrt(var[c] + 1e-5f) * sc[c] + bi[c];
    }
    Near(op.Output<float>(0), w, 1e-5f, "BatchNormalization");
  }
}

TEST(CudaOpsEmulated, MaxPoolSameUpperAndAveragePool) {
  const std::vector<float> x = Random(2 * 6 * 6, 13);
  Op op("", "MaxPool", 12);
  op.In(F32, {1, 2, 6, 6}, x).Out(F32, {1, 2, 3, 3}).Ints("kernel_shape", {2, 2}).Ints("strides", {2, 2})
      .Str("auto_pad", "SAME_UPPER");
  op.Run();
  std::vector<float> w;
  for (int c = 0; c < 2; ++c)
    for (int oh = 0; oh < 3; ++oh)
      for (int ow = 0; ow < 3; ++ow) {
        float m = -INFINITY;
        for (int kh = 0; kh < 2; ++kh)
          for (int kw = 0; kw < 2; ++kw) m = std::max(m, x[(c * 6 + oh * 2 + kh) * 6 + ow * 2 + kw]);
        w.push_back(m);
      }
  Near(op.Output<float>(0), w, 0, "MaxPool");
  Op av("", "AveragePool", 19);
  av.In(F32, {1, 2, 6, 6}, x).Out(F32, {1, 2, 6, 6}).Ints("kernel_shape", {3, 3}).Ints("pads", {1, 1, 1, 1})
      .Int("count_include_pad", 1);
  av.Run();
  std::vector<float> wa;
  for (int c = 0; c < 2; ++c)
    for (int h = 0; h < 6; ++h)
      for (int ww = 0; ww < 6; ++ww) {
        double acc = 0;
        for (int kh = -1; kh <= 1; ++kh)
          for (int kw = -1; kw <= 1; ++kw)
            if (h + kh >= 0 && h + kh < 6 && ww + kw >= 0 && ww + kw < 6) acc += x[(c * 6 + h + kh) * 6 + ww + kw];
        wa.push_back(static_cast<float>(acc / 9));
      }
  Near(av.Output<float>(0), wa, 1e-6f, "AveragePool count_include_pad");
  Op bad("", "MaxPool", 12);
  bad.In(F32, {1, 2, 6, 6}, x).Out(F32, {1, 2, 3, 3}).Ints("kernel_shape", {2});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

TEST(CudaOpsEmulated, AttentionWithAdditiveMask) {
  const int64_t B = 1, H = 2, S = 6, D = 8;
  const std::vector<float> q = Random(B * H * S * D, 9), k = Random(B * H * S * D, 10), v = Random(B * H * S * D, 11),
                           m = Random(S * S, 12, -2, 0);
  Op op("tessera", "FusedAttention");
  op.In(F32, {B, H, S, D}, q).In(F32, {B, H, S, D}, k).In(F32, {B, H, S, D}, v).In(F32, {S, S}, m)
      .Out(F32, {B, H, S, D}).Float("scale", 0.5f).Int("causal", 1);
  op.Run();
  std::vector<float> w(B * H * S * D);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < S; ++i) {
      std::vector<double> s(S);
      double mx = -1e30, sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double d = 0;
        for (int64_t t = 0; t < D; ++t) d += q[(h * S + i) * D + t] * k[(h * S + j) * D + t];
        s[j] = d * 0.5 + m[i * S + j];
        mx = std::max(mx, s[j]);
      }
      for (int64_t j = 0; j <= i; ++j) sum += std::exp(s[j] - mx);
      for (int64_t t = 0; t < D; ++t) {
        double acc = 0;
        for (int64_t j = 0; j <= i; ++j) acc += std::exp(s[j] - mx) / sum * v[(h * S + j) * D + t];
        w[(h * S + i) * D + t] = static_cast<float>(acc);
      }
    }
  Near(op.Output<float>(0), w, 1e-5f, "FusedAttention");
  Op bad("tessera", "FusedAttention");
  bad.In(F32, {B, H, S, D}, q).In(F32, {B, H, S, 4}, k).In(F32, {B, H, S, D}, v).Out(F32, {B, H, S, D});
  EXPECT_EQ(bad.Create().code, TSR_ERR_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace tessera::cuda
