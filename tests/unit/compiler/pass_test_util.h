// Shared helpers for pass tests: every pass test checks the graph AND that the
// model's outputs are unchanged on random inputs.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compiler/pass.h"
#include "graph/graph.h"
#include "graph/op_schema.h"
#include "runtime/backend_registry.h"
#include "runtime/options.h"
#include "runtime/session.h"

namespace tessera::testing {

inline bool HaveCpuBackend() {
  const LoadedBackend* b = BackendRegistry::Get().Find("cpu");
  return b && b->usable();
}

// Counts live nodes with this op type (domain "" unless given).
inline int CountOps(const Graph& g, const std::string& op, const std::string& domain = "") {
  int n = 0;
  for (const Node* node : g.nodes())
    if (node->op_type() == op && node->domain() == domain) ++n;
  return n;
}

// Runs shape inference then one pass on g (fails the test on error).
inline void RunPassOn(Graph& g, std::unique_ptr<Pass> pass, PassContext* ctx_out = nullptr) {
  PassContext ctx;
  ctx.verify = true;
  ctx.fuse_conv_residual = true;  // exercise every rewrite a pass can make
  ASSERT_TRUE(InferGraphTypes(g).ok());
  Status s = pass->Run(g, ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(g.Verify().ok()) << g.Verify().ToString();
  ASSERT_TRUE(InferGraphTypes(g).ok());
  if (ctx_out) *ctx_out = ctx;
}

// Random f32 inputs (uniform [-1, 1], fixed seed) for every runtime input of g
// (static shapes required).
inline std::vector<std::pair<std::string, Tensor>> RandomInputs(const Graph& g, uint32_t seed = 42) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<std::pair<std::string, Tensor>> r;
  for (const Value* v : g.RuntimeInputs()) {
    auto dims = *v->shape().AsInts();
    Tensor t = Tensor::Zeros(v->dtype(), dims).value();
    if (v->dtype() == DType::kF32)
      for (int64_t i = 0; i < t.num_elements(); ++i) static_cast<float*>(t.mutable_raw())[i] = u(rng);
    r.push_back({v->name(), std::move(t)});
  }
  return r;
}

// Builds the graph twice (it is consumed by the session), runs it at O0 and
// at `opt_level`, and expects every output to match within rtol/atol.
inline void ExpectSameOutputsAtO0And(int opt_level, const std::function<std::unique_ptr<Graph>()>& build,
                                     float rtol = 1e-4f, float atol = 1e-5f) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  auto g0 = build();
  auto inputs = RandomInputs(*g0);
  std::vector<std::pair<std::string, const Tensor*>> feeds;
  for (auto& [n, t] : inputs) feeds.push_back({n, &t});
  std::vector<Tensor> outs[2];
  for (int k = 0; k < 2; ++k) {
    SessionOptions o;
    o.opt_level = k == 0 ? 0 : opt_level;
    auto s = Session::FromGraph(k == 0 ? std::move(g0) : build(), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    Status st = (*s)->Run(feeds, {}, &outs[k]);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  ASSERT_EQ(outs[0].size(), outs[1].size());
  for (size_t i = 0; i < outs[0].size(); ++i) {
    ASSERT_EQ(outs[0][i].dims(), outs[1][i].dims()) << "output " << i;
    ASSERT_EQ(outs[0][i].dtype(), outs[1][i].dtype());
    for (int64_t e = 0; e < outs[0][i].num_elements(); ++e) {
      double a = outs[0][i].GetAsDouble(e), b = outs[1][i].GetAsDouble(e);
      ASSERT_LE(std::fabs(a - b), atol + rtol * std::fabs(a)) << "output " << i << " element " << e;
    }
  }
}

}  // namespace tessera::testing
