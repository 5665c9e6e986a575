// Multi-device execution: forced splits, transfers, events, tracing, overlap
// and "auto" placement.
//
// Without a second device kind, "cpu" and "cpu:0" are two devices opened on
// the CPU plugin (each with its own stream and arena), which exercises the
// same transfer, event and threading paths. The OpenCL variants skip with the
// reason when no OpenCL device is present.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "graph/op_schema.h"
#include "runtime/auto_placement.h"
#include "runtime/backend_registry.h"
#include "runtime/session.h"

namespace tessera {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// PoCL: one compute unit, so the CPU plugin (threads=1) and PoCL share the
// machine evenly. Set before the registry loads plugins (static init).
const int kPoclEnv = [] {
  setenv("POCL_MAX_PTHREAD_COUNT", "1", 0);
  setenv("POCL_CPU_MAX_CU_COUNT", "1", 0);
  return 0;
}();

bool HaveCpu() {
  const LoadedBackend* b = BackendRegistry::Get().Find("cpu");
  return b && b->usable();
}

std::string OpenClMissing() {
  const LoadedBackend* b = BackendRegistry::Get().Find("opencl");
  if (!b) return "no opencl backend plugin was found";
  if (!b->usable()) return "the opencl backend is unusable: " + b->unusable_reason;
  return "";
}

#define REQUIRE_CPU() \
  if (!HaveCpu()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable"
#define REQUIRE_OPENCL()                                                  \
  if (std::string why = OpenClMissing(); !why.empty()) GTEST_SKIP() << why

std::vector<float> Fill(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::sin(0.37f * static_cast<float>(i) + scale) * scale;
  return v;
}

// Two independent MatMul chains from one input, joined by an Add:
//   a_i = Relu(a_{i-1} @ Wa_i), b_i = Relu(b_{i-1} @ Wb_i) (depth each), y = a + b.
// MatMul nodes are named a1.., b1.. (the Relus ra1.., rb1..), the Add "join".
// The Relus keep the optimizer from multiplying the constant weights together.
std::unique_ptr<Graph> TwoBranches(int64_t n, int depth) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({n, n})});
  g->AddInput(x);
  Value* a = x;
  Value* b = x;
  const float scale = 1.0f / std::sqrt(static_cast<float>(n));
  for (int i = 1; i <= depth; ++i) {
    Value* wa = g->AddConstant("Wa" + std::to_string(i),
                               Tensor::FromVector<float>(DType::kF32, {n, n}, Fill(n * n, scale)));
    Value* wb = g->AddConstant("Wb" + std::to_string(i),
                               Tensor::FromVector<float>(DType::kF32, {n, n}, Fill(n * n, -scale)));
    a = g->AddNode("MatMul", {a, wa}, 1, "a" + std::to_string(i))->output(0);
    b = g->AddNode("MatMul", {b, wb}, 1, "b" + std::to_string(i))->output(0);
    a = g->AddNode("Relu", {a}, 1, "ra" + std::to_string(i))->output(0);
    b = g->AddNode("Relu", {b}, 1, "rb" + std::to_string(i))->output(0);
  }
  Node* join = g->AddNode("Add", {a, b}, 1, "join");
  g->AddOutput(join->output(0));
  EXPECT_TRUE(InferGraphTypes(*g).ok());
  return g;
}

Tensor InputOf(int64_t n) { return Tensor::FromVector<float>(DType::kF32, {n, n}, Fill(n * n, 1.0f)); }

Result<std::vector<Tensor>> RunOnce(Session& s, const Tensor& x) {
  std::vector<Tensor> out;
  TSR_RETURN_IF_ERROR(s.Run({{"x", &x}}, {}, &out));
  return out;
}

void ExpectClose(const Tensor& a, const Tensor& b, float tol) {
  ASSERT_EQ(a.dims(), b.dims());
  const float* pa = static_cast<const float*>(a.raw());
  const float* pb = static_cast<const float*>(b.raw());
  size_t n = a.nbytes() / sizeof(float), bad = 0;
  for (size_t i = 0; i < n; ++i)
    if (!(std::fabs(pa[i] - pb[i]) <= tol * (1 + std::fabs(pb[i])))) ++bad;
  EXPECT_EQ(bad, 0u) << "of " << n << " elements";
}

// Options placing branch a on `first` and branch b on `second` (without the
// overrides the cost model would keep everything on one device to save the
// transfer). The join is fused into a's last MatMul by the optimizer.
SessionOptions SplitOptions(const std::string& first, const std::string& second, int depth) {
  SessionOptions o;
  o.devices = {first, second};
  o.threads = 1;
  for (int i = 1; i <= depth; ++i) {
    o.placement["a" + std::to_string(i)] = first;
    o.placement["b" + std::to_string(i)] = second;
    o.placement["ra" + std::to_string(i)] = first;
    o.placement["rb" + std::to_string(i)] = second;
  }
  return o;
}

std::string TempPath(const std::string& name) {
  return (fs::temp_directory_path() / ("tessera_multi_device_" + std::to_string(getpid()) + "_" + name)).string();
}

// X events of a trace by category.
std::vector<json> Events(const json& trace, const std::string& cat) {
  std::vector<json> out;
  for (const auto& e : trace["traceEvents"])
    if (e.value("ph", "") == "X" && e.value("cat", "") == cat) out.push_back(e);
  return out;
}

std::string RowName(const json& trace, int64_t tid) {
  for (const auto& e : trace["traceEvents"])
    if (e.value("ph", "") == "M" && e.value("name", "") == "thread_name" && e.value("tid", -1) == tid)
      return e["args"].value("name", "");
  return "";
}

bool Intersect(const json& x, const json& y) {
  double x0 = x["ts"].get<double>(), x1 = x0 + x["dur"].get<double>();
  double y0 = y["ts"].get<double>(), y1 = y0 + y["dur"].get<double>();
  return x0 < y1 && y0 < x1;
}

TEST(MultiDevice, ForcedSplitMatchesOneDeviceAndReportsTransfers) {
  REQUIRE_CPU();
  const int64_t n = 32;
  Tensor x = InputOf(n);
  SessionOptions one;
  one.threads = 1;
  auto ref_s = Session::FromGraph(TwoBranches(n, 2), one);
  ASSERT_TRUE(ref_s.ok()) << ref_s.status().ToString();
  auto ref = RunOnce(**ref_s, x);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();

  auto s = Session::FromGraph(TwoBranches(n, 2), SplitOptions("cpu", "cpu:0", 2));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (int r = 0; r < 3; ++r) {  // contexts are reused: the second run takes the pooled one
    auto out = RunOnce(**s, x);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ExpectClose((*out)[0], (*ref)[0], 1e-5f);
  }
  auto d = (*s)->DescribeJson();
  ASSERT_TRUE(d.ok());
  json j = json::parse(*d);
  ASSERT_EQ(j["transfers"].size(), 1u) << j.dump(1);  // b2 -> cpu for the join
  EXPECT_EQ(j["transfers"][0]["from"], "cpu:0");
  EXPECT_EQ(j["transfers"][0]["to"], "cpu");
  EXPECT_EQ(j["transfer_bytes_per_run"], n * n * 4);
  bool saw_override = false;
  for (const auto& node : j["nodes"]) {
    ASSERT_TRUE(node.contains("reason")) << node.dump();
    if (node["name"] == "b1") {
      EXPECT_EQ(node["device"], "cpu:0");
      EXPECT_EQ(node["reason"], "placement override: 'b1' -> cpu:0");
      saw_override = true;
    }
    if (node["name"] == "a1") {
      EXPECT_EQ(node["reason"], "placement override: 'a1' -> cpu");
    }
  }
  EXPECT_TRUE(saw_override);
  json stats = json::parse((*s)->StatsJson());
  EXPECT_EQ(stats["transfer_bytes"], 3 * n * n * 4);
  EXPECT_EQ(stats["last_run_transfer_bytes"], n * n * 4);
  EXPECT_EQ(stats["transfers"], 3);
}

TEST(MultiDevice, ConcurrentRunsOnASplitPlanAgree) {
  REQUIRE_CPU();
  const int64_t n = 16;
  Tensor x = InputOf(n);
  auto s = Session::FromGraph(TwoBranches(n, 3), SplitOptions("cpu", "cpu:0", 3));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto ref = RunOnce(**s, x);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  std::vector<std::thread> th;
  std::vector<Status> st(4);
  std::vector<std::vector<Tensor>> outs(4);
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      for (int r = 0; r < 5 && st[t].ok(); ++r) st[t] = (*s)->Run({{"x", &x}}, {}, &outs[t]);
    });
  for (auto& t : th) t.join();
  for (int t = 0; t < 4; ++t) {
    ASSERT_TRUE(st[t].ok()) << st[t].ToString();
    ExpectClose(outs[t][0], (*ref)[0], 0);
  }
}

TEST(MultiDevice, AFailingDeviceFailsTheRunWithoutHanging) {
  REQUIRE_CPU();
  // y = (x @ W) on cpu  +  Gather(x, idx) on cpu:0; idx out of range at run time.
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Value* x = g->AddValue("x", TensorType{DType::kF32, Shape::FromInts({4, 4})});
  Value* idx = g->AddValue("idx", TensorType{DType::kI64, Shape::FromInts({4})});
  g->AddInput(x);
  g->AddInput(idx);
  Value* w = g->AddConstant("W", Tensor::FromVector<float>(DType::kF32, {4, 4}, Fill(16, 1.0f)));
  Node* mm = g->AddNode("MatMul", {x, w}, 1, "mm");
  Node* ga = g->AddNode("Gather", {x, idx}, 1, "gather");
  Node* add = g->AddNode("Add", {mm->output(0), ga->output(0)}, 1, "join");
  g->AddOutput(add->output(0));
  ASSERT_TRUE(InferGraphTypes(*g).ok());
  SessionOptions o;
  o.devices = {"cpu", "cpu:0"};
  o.threads = 1;
  o.placement = {{"mm", "cpu"}, {"join", "cpu"}, {"gather", "cpu:0"}};
  auto s = Session::FromGraph(std::move(g), o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Tensor xv = InputOf(4);
  Tensor good = Tensor::FromVector<int64_t>(DType::kI64, {4}, {0, 1, 2, 3});
  Tensor bad = Tensor::FromVector<int64_t>(DType::kI64, {4}, {0, 100, 2, 3});
  std::vector<Tensor> out;
  ASSERT_TRUE((*s)->Run({{"x", &xv}, {"idx", &good}}, {}, &out).ok());
  Status st = (*s)->Run({{"x", &xv}, {"idx", &bad}}, {}, &out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("running on cpu:0"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("100"), std::string::npos) << st.ToString();
  EXPECT_TRUE(out.empty());
  // The session still works afterwards.
  ASSERT_TRUE((*s)->Run({{"x", &xv}, {"idx", &good}}, {}, &out).ok());
  EXPECT_EQ(out.size(), 1u);
}

TEST(MultiDevice, BadPlacementIsAClearError) {
  REQUIRE_CPU();
  SessionOptions o;
  o.devices = {"cpu"};
  o.placement["a1"] = "cuda:7";
  auto s = Session::FromGraph(TwoBranches(8, 1), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("placement 'a1' -> 'cuda:7'"), std::string::npos) << s.status().message();
  // The option parser rejects an empty name or role.
  SessionOptions p;
  EXPECT_FALSE(p.Set("placement.", "cpu").ok());
  EXPECT_FALSE(p.Set("placement.a1", "").ok());
  ASSERT_TRUE(p.Set("placement.MatMul", "cpu").ok());
  EXPECT_EQ(p.placement["MatMul"], "cpu");
  EXPECT_EQ(p.ToMap()["placement.MatMul"], "cpu");
}

// Runs the two-branch model split across `first` and `second` with a trace and
// checks the trace; returns it.
json TracedSplitRun(const std::string& first, const std::string& second, int64_t n, int depth, int runs) {
  std::string path = TempPath("trace_" + second + ".json");
  for (char& c : path)
    if (c == ':') c = '_';
  SessionOptions o = SplitOptions(first, second, depth);
  o.trace = path;
  Tensor x = InputOf(n);
  {
    auto s = Session::FromGraph(TwoBranches(n, depth), o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return json();
    for (int r = 0; r < runs; ++r) {
      auto out = RunOnce(**s, x);
      EXPECT_TRUE(out.ok()) << out.status().ToString();
    }
    auto d = (*s)->DescribeJson();
    EXPECT_TRUE(d.ok());
    EXPECT_EQ(json::parse(*d)["trace"], path);
  }  // the trace is written when the session goes away
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "no trace file " << path;
  json t = json::parse(f, nullptr, false);
  fs::remove(path);
  EXPECT_TRUE(t.is_object() && t.contains("traceEvents")) << "trace is not Chrome trace JSON";
  return t;
}

TEST(MultiDevice, TraceCoversSegmentsAndTransfersOfEveryRun) {
  REQUIRE_CPU();
  json t = TracedSplitRun("cpu", "cpu:0", 32, 2, 2);
  ASSERT_TRUE(t.is_object());
  auto segs = Events(t, "segment");
  auto xfers = Events(t, "transfer");
  auto runs = Events(t, "run");
  ASSERT_EQ(runs.size(), 2u);
  // Per run: the a-chain on cpu, the b-chain on cpu:0, the join on cpu (unless
  // the optimizer fused it into the a-chain).
  ASSERT_GE(segs.size(), 2u * 2);
  ASSERT_LE(segs.size(), 2u * 3);
  ASSERT_EQ(xfers.size(), 2u * 1);  // b2 -> cpu
  std::set<std::string> rows;
  for (const auto& e : segs) {
    EXPECT_GE(e["dur"].get<double>(), 0);
    EXPECT_GE(e["ts"].get<double>(), 0);
    rows.insert(RowName(t, e["tid"].get<int64_t>()));
    EXPECT_EQ(e["args"]["device"], RowName(t, e["tid"].get<int64_t>()));
  }
  EXPECT_EQ(rows, (std::set<std::string>{"cpu", "cpu:0"}));
  EXPECT_EQ(RowName(t, xfers[0]["tid"].get<int64_t>()), "transfers");
  EXPECT_EQ(xfers[0]["args"]["bytes"], 32 * 32 * 4);
  EXPECT_EQ(xfers[0]["args"]["from"], "cpu:0");
  // The CPU plugin implements event_elapsed_us: segments carry device timing.
  EXPECT_EQ(segs[0]["args"]["timing"], "device");
  // Each run's spans lie inside that run's span; the join starts after the transfer ends.
  for (const auto& r : runs) {
    const int64_t id = r["args"]["run"];
    const double r0 = r["ts"].get<double>(), r1 = r0 + r["dur"].get<double>();
    for (const auto& e : segs) {
      if (e["args"]["run"] != id) continue;
      EXPECT_GE(e["ts"].get<double>(), r0 - 1);
      EXPECT_LE(e["ts"].get<double>() + e["dur"].get<double>(), r1 + 1);
    }
  }
}

// The structural overlap check: in some run, the two devices' branch
// segments intersect in time, and that run's wall time is below the sum of
// its segment durations.
void ExpectOverlap(const json& t, const std::string& first, const std::string& second) {
  auto segs = Events(t, "segment");
  auto runs = Events(t, "run");
  ASSERT_FALSE(runs.empty());
  bool overlapped = false;
  std::string detail;
  for (const auto& r : runs) {
    const int64_t id = r["args"]["run"];
    std::vector<json> on_first, on_second;
    double sum = 0;
    for (const auto& e : segs) {
      if (e["args"]["run"] != id) continue;
      sum += e["dur"].get<double>();
      std::string dev = e["args"]["device"];
      if (e["args"]["first_node"] == "a1" && dev == first) on_first.push_back(e);
      if (e["args"]["first_node"] == "b1" && dev == second) on_second.push_back(e);
    }
    if (on_first.size() != 1 || on_second.size() != 1) {
      detail += " run " + std::to_string(id) + ": branch segments not found;";
      continue;
    }
    const bool inter = Intersect(on_first[0], on_second[0]);
    const double wall = r["dur"].get<double>();
    detail += " run " + std::to_string(id) + ": a [" + on_first[0]["ts"].dump() + " +" + on_first[0]["dur"].dump() +
              "] b [" + on_second[0]["ts"].dump() + " +" + on_second[0]["dur"].dump() + "] wall " +
              std::to_string(wall) + " sum " + std::to_string(sum) + ";";
    if (inter && wall < sum) overlapped = true;
  }
  EXPECT_TRUE(overlapped) << "no run overlapped the two branches:" << detail;
}

TEST(MultiDevice, IndependentSegmentsOnTwoDevicesOverlap) {
  REQUIRE_CPU();
  // Each branch: 3 MatMuls of 512^3 (about 800 MFLOP, ~10 ms or more on one
  // core), long against a scheduler time slice on a busy machine.
  json t = TracedSplitRun("cpu", "cpu:0", 512, 3, 4);
  ASSERT_TRUE(t.is_object());
  ExpectOverlap(t, "cpu", "cpu:0");
}

TEST(MultiDevice, OpenClAndCpuSplitMatchesCpu) {
  REQUIRE_CPU();
  REQUIRE_OPENCL();
  const int64_t n = 48;
  Tensor x = InputOf(n);
  SessionOptions one;
  one.threads = 1;
  auto ref_s = Session::FromGraph(TwoBranches(n, 2), one);
  ASSERT_TRUE(ref_s.ok()) << ref_s.status().ToString();
  auto ref = RunOnce(**ref_s, x);
  ASSERT_TRUE(ref.ok());
  auto s = Session::FromGraph(TwoBranches(n, 2), SplitOptions("cpu", "opencl:0", 2));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (int r = 0; r < 2; ++r) {
    auto out = RunOnce(**s, x);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ExpectClose((*out)[0], (*ref)[0], 1e-4f);
  }
  json j = json::parse(*(*s)->DescribeJson());
  ASSERT_EQ(j["transfers"].size(), 1u);
  EXPECT_EQ(j["transfers"][0]["from"], "opencl:0");
}

// Strict mode end to end: a node the preferred device (OpenCL) cannot run makes
// session creation fail with every such node named, instead of a silent
// fallback to the CPU; without strict the same graph runs split.
TEST(MultiDevice, StrictOpenClRejectsUnclaimableNodesByName) {
  REQUIRE_CPU();
  REQUIRE_OPENCL();
  auto build = [] {
    auto g = std::make_unique<Graph>();
    g->set_opset("", 17);
    Value* x = g->AddValue("x", TensorType{DType::kF32, Shape({Dim::Known(4), Dim::Known(8)})});
    g->AddInput(x);
    Value* axis = g->AddConstant("axis", Tensor::FromVector<int64_t>(DType::kI64, {}, {1}));
    Node* relu = g->AddNode("Relu", {x}, 1, "relu");
    Node* c1 = g->AddNode("CumSum", {relu->output(0), axis}, 1, "cumsum_a");
    Node* c2 = g->AddNode("CumSum", {c1->output(0), axis}, 1, "cumsum_b");
    g->AddOutput(c2->output(0));
    return g;
  };
  SessionOptions o;
  ASSERT_TRUE(o.Set("devices", "opencl:0,cpu").ok());
  ASSERT_TRUE(o.Set("strict", "1").ok());
  auto s = Session::FromGraph(build(), o);
  ASSERT_FALSE(s.ok());
  const std::string m = s.status().message();
  EXPECT_EQ(s.status().code(), StatusCode::kUnsupported) << m;
  EXPECT_NE(m.find("strict mode: 2 node(s)"), std::string::npos) << m;
  EXPECT_NE(m.find("'cumsum_a' (CumSum)"), std::string::npos) << m;
  EXPECT_NE(m.find("'cumsum_b' (CumSum)"), std::string::npos) << m;
  EXPECT_EQ(m.find("'relu'"), std::string::npos) << m;

  SessionOptions lax;
  ASSERT_TRUE(lax.Set("devices", "opencl:0,cpu").ok());
  auto ok = Session::FromGraph(build(), lax);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  json j = json::parse(*(*ok)->DescribeJson());
  ASSERT_TRUE(j.contains("nodes"));
  // The CumSums fall back to the CPU; the cheap Relu before them stays with
  // them rather than costing a transfer (the cost model, not ping-pong).
  int on_cpu = 0;
  for (const auto& n : j["nodes"]) {
    if (n["device"] == "cpu") ++on_cpu;
    if (n["name"] == "relu") {
      EXPECT_NE(n["reason"].get<std::string>().find("kept on cpu"), std::string::npos) << n.dump();
    }
  }
  EXPECT_EQ(on_cpu, 3) << j["nodes"].dump();
  EXPECT_EQ(j["transfers"].size(), 0u) << j.dump();
}

TEST(MultiDevice, OpenClAndCpuSegmentsOverlap) {
  REQUIRE_CPU();
  REQUIRE_OPENCL();
  json t = TracedSplitRun("cpu", "opencl:0", 512, 3, 4);
  ASSERT_TRUE(t.is_object());
  ExpectOverlap(t, "cpu", "opencl:0");
}

TEST(Trace, OptionEnvironmentAndErrors) {
  REQUIRE_CPU();
  Tensor x = InputOf(8);
  SessionOptions o;
  o.threads = 1;
  {  // off: WriteTrace says so
    auto s = Session::FromGraph(TwoBranches(8, 1), o);
    ASSERT_TRUE(s.ok());
    Status st = (*s)->WriteTrace();
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(st.message().find("tracing is off"), std::string::npos);
    EXPECT_EQ((*s)->TraceJson(), "");
  }
  std::string path = TempPath("env_trace.json");
  setenv("TESSERA_TRACE", path.c_str(), 1);
  auto s = Session::FromGraph(TwoBranches(8, 1), o);
  SessionOptions off = o;
  off.trace = "off";
  auto s_off = Session::FromGraph(TwoBranches(8, 1), off);
  unsetenv("TESSERA_TRACE");
  ASSERT_TRUE(s.ok() && s_off.ok());
  ASSERT_TRUE(RunOnce(**s, x).ok());
  ASSERT_TRUE(RunOnce(**s_off, x).ok());
  EXPECT_EQ((*s_off)->TraceJson(), "");
  ASSERT_TRUE((*s)->WriteTrace().ok());
  std::ifstream f(path);
  json t = json::parse(f, nullptr, false);
  fs::remove(path);
  ASSERT_TRUE(t.is_object());
  EXPECT_EQ(Events(t, "run").size(), 1u);
  EXPECT_EQ(Events(t, "segment").size(), 1u);  // one device, one segment
  EXPECT_EQ(Events(t, "transfer").size(), 0u);
  // An unwritable path is an IO error naming the file.
  SessionOptions bad = o;
  bad.trace = "/nonexistent_dir_for_tessera/trace.json";
  auto sb = Session::FromGraph(TwoBranches(8, 1), bad);
  ASSERT_TRUE(sb.ok());
  Status st = (*sb)->WriteTrace();
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_NE(st.message().find("/nonexistent_dir_for_tessera/trace.json"), std::string::npos) << st.ToString();
}

// ---- auto ----

class ScopedCacheDir {
 public:
  ScopedCacheDir() : dir_(TempPath("cache")) {
    fs::remove_all(dir_);
    const char* old = std::getenv("TESSERA_CACHE_DIR");
    had_ = old != nullptr;
    if (old) old_ = old;
    setenv("TESSERA_CACHE_DIR", dir_.c_str(), 1);
  }
  ~ScopedCacheDir() {
    if (had_) setenv("TESSERA_CACHE_DIR", old_.c_str(), 1);
    else unsetenv("TESSERA_CACHE_DIR");
    fs::remove_all(dir_);
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, old_;
  bool had_ = false;
};

TEST(AutoPlacement, MeasuresCandidatesPicksFastestAndCaches) {
  REQUIRE_CPU();
  ScopedCacheDir cache;
  auto g = TwoBranches(24, 1);
  std::map<std::string, std::vector<int64_t>> shapes = {{"x", {24, 24}}};
  SessionOptions o;
  o.threads = 1;
  std::vector<std::vector<std::string>> cands = {{"cpu"}, {"cpu:0", "cpu"}};
  auto c = ChooseAutoPlacement(*g, shapes, o, 2, &cands);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->cached);
  ASSERT_EQ(c->timings.size(), 2u);
  double best = 1e300;
  std::vector<std::string> best_devs;
  for (const auto& t : c->timings) {
    EXPECT_TRUE(t.error.empty()) << t.error;
    EXPECT_GT(t.median_ms, 0);
    if (t.median_ms < best) {
      best = t.median_ms;
      best_devs = t.devices;
    }
  }
  EXPECT_EQ(c->devices, best_devs);
  ASSERT_FALSE(c->cache_file.empty());
  EXPECT_EQ(c->cache_file.rfind(cache.dir(), 0), 0u) << c->cache_file;
  EXPECT_TRUE(fs::exists(c->cache_file));
  // Second time: from the cache, same choice and timings, nothing measured.
  auto again = ChooseAutoPlacement(*g, shapes, o, 2, &cands);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->cached);
  EXPECT_EQ(again->devices, c->devices);
  ASSERT_EQ(again->timings.size(), 2u);
  EXPECT_DOUBLE_EQ(again->timings[0].median_ms, c->timings[0].median_ms);
  EXPECT_NE(again->Summary().find("from cache"), std::string::npos) << again->Summary();
  // Another input shape is another key.
  auto other = ChooseAutoPlacement(*TwoBranches(8, 1), {{"x", {8, 8}}}, o, 1, &cands);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->cached);
  EXPECT_NE(other->key, c->key);
}

TEST(AutoPlacement, FailingCandidatesAreReportedNotFatal) {
  REQUIRE_CPU();
  ScopedCacheDir cache;
  std::vector<std::vector<std::string>> cands = {{"nosuchbackend:0"}, {"cpu"}};
  SessionOptions o;
  auto c = ChooseAutoPlacement(*TwoBranches(8, 1), {{"x", {8, 8}}}, o, 1, &cands);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->devices, std::vector<std::string>{"cpu"});
  ASSERT_EQ(c->timings.size(), 2u);
  EXPECT_NE(c->timings[0].error.find("nosuchbackend"), std::string::npos) << c->timings[0].error;
  std::vector<std::vector<std::string>> none = {{"nosuchbackend:0"}, {"nosuchbackend:1"}};
  auto bad = ChooseAutoPlacement(*TwoBranches(8, 1), {{"x", {8, 8}}}, o, 1, &none);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("no candidate placement can run the model"), std::string::npos);
}

TEST(AutoPlacement, SessionWithAutoDevicesReportsTheChoice) {
  REQUIRE_CPU();
  ScopedCacheDir cache;
  SessionOptions o;
  o.devices = {"auto"};
  o.threads = 1;
  auto s = Session::FromGraph(TwoBranches(16, 1), o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto out = RunOnce(**s, InputOf(16));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  json j = json::parse(*(*s)->DescribeJson());
  ASSERT_TRUE(j.contains("auto")) << j.dump();
  ASSERT_TRUE(j["auto"].contains("choice"));
  EXPECT_FALSE(j["auto"]["choice"].empty());
}

TEST(AutoPlacement, OpenClVersusCpuPicksTheFasterAndCaches) {
  REQUIRE_CPU();
  REQUIRE_OPENCL();
  ScopedCacheDir cache;
  SessionOptions o;
  o.devices = {"auto"};
  o.threads = 1;
  json first;
  {
    auto s = Session::FromGraph(TwoBranches(256, 2), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    first = json::parse(*(*s)->DescribeJson())["auto"];
  }
  ASSERT_TRUE(first.is_object());
  EXPECT_FALSE(first["cached"].get<bool>());
  std::set<std::string> measured;
  double best = 1e300;
  json best_devs;
  for (const auto& t : first["timings"]) {
    ASSERT_TRUE(t.contains("median_ms")) << t.dump();
    measured.insert(t["devices"].dump());
    if (t["median_ms"].get<double>() < best) {
      best = t["median_ms"].get<double>();
      best_devs = t["devices"];
    }
  }
  EXPECT_TRUE(measured.count(json::array({"cpu"}).dump())) << first.dump();
  EXPECT_TRUE(measured.count(json::array({"opencl:0"}).dump())) << first.dump();
  EXPECT_EQ(first["choice"], best_devs);
  auto s2 = Session::FromGraph(TwoBranches(256, 2), o);
  ASSERT_TRUE(s2.ok());
  json second = json::parse(*(*s2)->DescribeJson())["auto"];
  EXPECT_TRUE(second["cached"].get<bool>());
  EXPECT_EQ(second["choice"], first["choice"]);
}

// ---- the CLI ----

// Runs the tessera CLI; returns stdout (stderr into *err_out when given).
std::string RunCli(const std::string& args, int* rc, std::string* err_out = nullptr) {
  std::string err_file = TempPath("cli_stderr.txt");
  std::string cmd = std::string(TESSERA_CLI) + " " + args + " 2>" + err_file;
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    *rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  if (err_out) {
    std::ifstream f(err_file);
    err_out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  fs::remove(err_file);
  return out;
}

std::string MlpModel() { return std::string(TESSERA_MODELS_DIR) + "/mlp/model.onnx"; }

#define REQUIRE_MLP()                                                                    \
  if (!fs::exists(MlpModel()))                                                          \
  GTEST_SKIP() << MlpModel() << " is missing (run .venv/bin/python scripts/gen_models.py --out models)"

const char kMlpSplit[] = " --device cpu,cpu:0 --threads 1 --placement tessera.FusedGemm=cpu --placement Gemm=cpu:0";

TEST(MultiDeviceCli, RunJsonReportsPlacementTransfersAndTrace) {
  REQUIRE_CPU();
  REQUIRE_MLP();
  std::string trace = TempPath("cli_trace.json");
  int rc = 0;
  std::string err;
  std::string out = RunCli("run " + MlpModel() + kMlpSplit + " --repeat 2 --json --trace " + trace, &rc, &err);
  ASSERT_EQ(rc, 0) << out << err;
  json j = json::parse(out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << out;
  ASSERT_TRUE(j["nodes"].is_array() && !j["nodes"].empty()) << out;
  std::set<std::string> devices;
  for (const auto& n : j["nodes"]) {
    devices.insert(n["device"].get<std::string>());
    EXPECT_NE(n["reason"].get<std::string>().find("placement override"), std::string::npos) << n.dump();
  }
  EXPECT_EQ(devices, (std::set<std::string>{"cpu", "cpu:0"}));
  ASSERT_GE(j["transfers"].size(), 1u) << out;
  const uint64_t per_run = j["transfer_bytes_per_run"];
  EXPECT_GT(per_run, 0u);
  EXPECT_EQ(j["transfer_bytes_total"].get<uint64_t>(), 2 * per_run);
  uint64_t listed = 0;
  for (const auto& t : j["transfers"]) listed += t["bytes"].get<uint64_t>();
  EXPECT_EQ(listed, per_run);
  EXPECT_EQ(j["trace"], trace);
  std::ifstream f(trace);
  ASSERT_TRUE(f.good()) << "no trace written to " << trace;
  json t = json::parse(f, nullptr, false);
  fs::remove(trace);
  ASSERT_TRUE(t.is_object());
  EXPECT_EQ(Events(t, "run").size(), 2u);
  EXPECT_GE(Events(t, "segment").size(), 4u);
  EXPECT_EQ(Events(t, "transfer").size(), 2 * j["transfers"].size());
}

TEST(MultiDeviceCli, HumanRunAndInspectShowReasonsAndTransfers) {
  REQUIRE_CPU();
  REQUIRE_MLP();
  int rc = 0;
  std::string out = RunCli("run " + MlpModel() + kMlpSplit, &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("placement override: 'Gemm' -> cpu:0"), std::string::npos) << out;
  EXPECT_NE(out.find("transfers: 1 per run"), std::string::npos) << out;
  out = RunCli("inspect " + MlpModel() + kMlpSplit, &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("(placement override: 'Gemm' -> cpu:0)"), std::string::npos) << out;
  EXPECT_NE(out.find("per run):"), std::string::npos) << out;
  out = RunCli("inspect " + MlpModel() + kMlpSplit + " --json", &rc);
  ASSERT_EQ(rc, 0);
  json j = json::parse(out, nullptr, false);
  ASSERT_TRUE(j.is_object());
  for (const auto& n : j["nodes"]) EXPECT_TRUE(n.contains("reason")) << n.dump();
}

TEST(MultiDeviceCli, BadPlacementFlagsAreUsageErrors) {
  REQUIRE_CPU();
  REQUIRE_MLP();
  int rc = 0;
  std::string err;
  RunCli("run " + MlpModel() + " --placement Gemm", &rc, &err);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(err.find("--placement expects NAME=ROLE"), std::string::npos) << err;
  RunCli("run " + MlpModel() + " --device cpu --placement Gemm=tpu:9", &rc, &err);
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("'tpu:9' is not one of the session's devices (cpu)"), std::string::npos) << err;
  RunCli("bench " + MlpModel() + " --iters 1 --warmup 0 --trace", &rc, &err);
  EXPECT_EQ(rc, 2) << err;
}

}  // namespace
}  // namespace tessera
