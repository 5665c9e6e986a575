// Gradient checking through the real CPU backend: a forward graph y = F(params),
// loss = ReduceSum(y * R) with a fixed random R (so every output element gets a
// distinct weight), autodiff appends the backward graph, one Session computes
// the loss and the gradients, and central finite differences of the loss (same
// session, perturbed feeds) are compared with them.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compiler/autodiff/autodiff.h"
#include "graph/graph.h"
#include "graph/op_schema.h"
#include "runtime/backend_registry.h"
#include "runtime/options.h"
#include "runtime/session.h"

namespace tessera::training_test {

inline bool HaveCpuBackend() {
  const LoadedBackend* b = BackendRegistry::Get().Find("cpu");
  return b && b->usable();
}

class GradCheck {
 public:
  explicit GradCheck(DType dt = DType::kF64, int64_t opset = 17, uint32_t seed = 7)
      : dt_(dt), rng_(seed), g_(std::make_unique<Graph>()) {
    g_->set_name("gradcheck");
    g_->set_opset("", opset);
    g_->set_opset("tessera", 1);
  }
  Graph& g() { return *g_; }
  DType dtype() const { return dt_; }

  // A differentiable graph input with values uniform in [lo, hi] (|x| >= min_abs).
  Value* Param(const std::string& name, std::vector<int64_t> dims, double lo = -1.0, double hi = 1.0,
               double min_abs = 0.0) {
    Value* v = g_->AddValue(name, TensorType{dt_, Shape::FromInts(dims)});
    g_->AddInput(v);
    std::uniform_real_distribution<double> u(lo, hi);
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<double> vals(n);
    for (auto& x : vals) {
      do x = u(rng_);
      while (std::fabs(x) < min_abs);
    }
    params_.push_back(name);
    values_[name] = {dims, vals};
    return v;
  }
  // A non-differentiable constant.
  template <typename T>
  Value* Const(const std::string& name, DType dt, std::vector<int64_t> dims, const std::vector<T>& v) {
    return g_->AddConstant(name, Tensor::FromVector<T>(dt, dims, v));
  }
  Value* ConstI64(const std::string& name, std::vector<int64_t> dims, const std::vector<int64_t>& v) {
    return Const<int64_t>(name, DType::kI64, std::move(dims), v);
  }
  Value* ConstF(const std::string& name, std::vector<int64_t> dims, const std::vector<double>& v) {
    if (dt_ == DType::kF64) return Const<double>(name, dt_, std::move(dims), v);
    std::vector<float> f(v.begin(), v.end());
    return Const<float>(name, dt_, std::move(dims), f);
  }
  // One-output node.
  Value* Op(const std::string& op, const std::vector<Value*>& in, const std::map<std::string, Attribute>& attrs = {},
            const std::string& domain = "") {
    return OpN(op, in, 1, attrs, domain)[0];
  }
  std::vector<Value*> OpN(const std::string& op, const std::vector<Value*>& in, size_t nout,
                          const std::map<std::string, Attribute>& attrs = {}, const std::string& domain = "") {
    Node* n = g_->AddNode(op, in, nout, "", domain);
    for (const auto& [k, a] : attrs) n->set_attr(k, a);
    Status st = InferNodeTypes(*n);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return n->outputs();
  }

  // Builds loss = sum(y * R), differentiates, and compares with central
  // differences (step h) within atol + rtol * |fd|.
  void Check(Value* y, double h, double rtol, double atol) {
    if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
    ASSERT_TRUE(InferGraphTypes(*g_).ok());
    auto yd = y->shape().AsInts();
    ASSERT_TRUE(yd.has_value()) << "y must have a static shape";
    int64_t n = 1;
    for (int64_t d : *yd) n *= d;
    std::uniform_real_distribution<double> u(0.5, 1.5);
    std::vector<double> r(n);
    for (auto& x : r) x = u(rng_);
    Value* rv = ConstF("gradcheck_R", *yd, r);
    Value* prod = Op("Mul", {y, rv});
    Value* loss = Op("ReduceSum", {prod}, {{"keepdims", Attribute::Int(0)}});
    g_->AddOutput(loss);
    auto info = autodiff::BuildGradientGraph(*g_, loss->name(), params_);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    ASSERT_EQ(info->grads.size(), params_.size());
    const std::string loss_name = loss->name();
    std::vector<std::string> grad_names = info->grads;

    SessionOptions o;
    o.opt_level = 0;
    auto s = Session::FromGraph(std::move(g_), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    Session& sess = **s;

    std::vector<std::string> want{loss_name};
    want.insert(want.end(), grad_names.begin(), grad_names.end());
    std::vector<Tensor> res;
    Status st = sess.Run(Feeds(), want, &res);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(res.size(), want.size());

    int64_t checked = 0;
    for (size_t p = 0; p < params_.size(); ++p) {
      auto& [dims, vals] = values_[params_[p]];
      const Tensor& gt = res[1 + p];
      ASSERT_EQ(gt.num_elements(), static_cast<int64_t>(vals.size())) << params_[p];
      for (size_t i = 0; i < vals.size(); ++i) {
        const double keep = vals[i];
        vals[i] = keep + h;
        double lp = LossAt(sess, loss_name);
        vals[i] = keep - h;
        double lm = LossAt(sess, loss_name);
        vals[i] = keep;
        const double fd = (lp - lm) / (2 * h);
        const double ad = gt.GetAsDouble(static_cast<int64_t>(i));
        EXPECT_NEAR(ad, fd, atol + rtol * std::fabs(fd)) << "d loss / d " << params_[p] << "[" << i << "]";
        ++checked;
        if (std::fabs(fd) > 1e-3) ++nonzero_;
      }
    }
    EXPECT_GT(checked, 0);
    // A check where every derivative is ~0 would prove nothing.
    EXPECT_GT(nonzero_, 0) << "every finite difference is ~0";
  }

 private:
  double LossAt(Session& s, const std::string& loss) {
    std::vector<Tensor> r;
    Status st = s.Run(Feeds(), {loss}, &r);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return st.ok() ? r[0].GetAsDouble(0) : std::nan("");
  }
  std::vector<std::pair<std::string, const Tensor*>> Feeds() {
    tensors_.clear();
    tensors_.reserve(params_.size());
    std::vector<std::pair<std::string, const Tensor*>> f;
    for (const auto& name : params_) {
      const auto& [dims, vals] = values_[name];
      if (dt_ == DType::kF64) {
        tensors_.push_back(Tensor::FromVector<double>(dt_, dims, vals));
      } else {
        std::vector<float> fv(vals.begin(), vals.end());
        tensors_.push_back(Tensor::FromVector<float>(dt_, dims, fv));
      }
    }
    for (size_t i = 0; i < params_.size(); ++i) f.push_back({params_[i], &tensors_[i]});
    return f;
  }

  DType dt_;
  std::mt19937 rng_;
  std::unique_ptr<Graph> g_;
  std::vector<std::string> params_;
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<double>>> values_;
  std::vector<Tensor> tensors_;
  int64_t nonzero_ = 0;
};

// Tolerances: f64 graphs use h = 1e-6; f32 graphs (ops whose CPU forward
// kernel is f32-only: MatMul, Gemm, Conv, AveragePool, GlobalAveragePool,
// BatchNormalization) use h = 1e-2 with looser tolerances.
constexpr double kH64 = 1e-6, kRtol64 = 1e-6, kAtol64 = 1e-7;
constexpr double kH32 = 1e-2, kRtol32 = 2e-2, kAtol32 = 2e-3;

}  // namespace tessera::training_test
