// `tessera bench`: compile time, then warmup runs, then timed runs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "cli.h"

namespace tessera::cli {

namespace {

const char kBenchUsage[] =
    "usage: tessera bench MODEL [options]\n"
    "\n"
    "Measures MODEL (.onnx or .tplan): compile time (session creation), then\n"
    "--warmup untimed runs, then --iters timed runs. Reports latency min, p50,\n"
    "p90, p99 and mean, throughput (runs/s, and samples/s taking the first\n"
    "input's dim 0 as the batch) and the peak device memory.\n"
    "\n"
    "options:\n"
    "  --device LIST      devices in priority order, e.g. cpu or cuda:0,cpu\n"
    "  --config FILE      deployment config file\n"
    "  --threads N        CPU threads\n"
    "  --warmup N         untimed runs first (default 5)\n"
    "  --iters N          timed runs (default 20)\n"
    "  --dim NAME=N       bind a symbolic dim (repeatable)\n"
    "  --inputs DIR       read input_0.pb, ... instead of generating inputs\n"
    "  --opt-level N      0, 1 or 2 (default 2)\n"
    "  --precision P      f32 (default) or bf16\n"
    "  --compare-f32      also run once at f32 and report each output's error (on with bf16)\n"
    "  --placement NAME=ROLE  run the node NAME (or every node of op type NAME) on\n"
    "                     device ROLE (repeatable)\n"
    "  --trace FILE       write a Chrome trace of every run to FILE\n"
    "  --json             print one JSON object on stdout and nothing else\n";

// Linear interpolation between closest ranks (numpy's default percentile).
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  double pos = p / 100.0 * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

// peak_memory_bytes may be one number or an object of per-device numbers.
json PeakMemory(const json& stats) {
  if (!stats.is_object()) return nullptr;
  auto it = stats.find("peak_memory_bytes");
  if (it == stats.end()) return nullptr;
  return *it;
}

std::string PeakMemoryString(const json& peak) {
  if (peak.is_number()) return FormatBytes(peak.get<double>());
  if (peak.is_object()) {
    std::string s;
    for (auto& [dev, v] : peak.items())
      if (v.is_number()) s += (s.empty() ? "" : ", ") + dev + " " + FormatBytes(v.get<double>());
    if (!s.empty()) return s;
  }
  return "(not reported)";
}

}  // namespace

// hetero (tools/cli_run.cpp): PrepareRun plus --trace / --placement.
int PrepareRunHetero(const Args& args, const std::string& model, uint64_t seed, PreparedRun* p);
// precision (tools/cli_run.cpp): outputs vs an f32 run of the same model and inputs.
int PrecisionCheckJson(const Args& args, const std::string& model, const PreparedRun& prepared,
                       const std::vector<TensorPtr>& outputs, json* out);

int CmdBench(int argc, char** argv) {
  std::vector<FlagSpec> specs = {{"--device"},    {"--config"},   {"--threads"},         {"--dim", true, true},
                                 {"--warmup"},    {"--iters"},    {"--inputs"},          {"--opt-level"},
                                 {"--precision"}, {"--json", false}, {"--strict", false}, {"--max-alloc-bytes"},
                                 {"--trace"},     {"--placement", true, true}, {"--compare-f32", false}};
  Args args;
  if (int rc = ParseArgs("bench", argc, argv, 2, specs, &args)) return rc;
  if (args.help) {
    std::fputs(kBenchUsage, stdout);
    return kExitOk;
  }
  if (args.positional.size() != 1)
    return Fail(kExitUsage, std::string("bench: expected one MODEL, got ") + std::to_string(args.positional.size()) +
                                " (see 'tessera bench --help')");
  const std::string model = args.positional[0];
  int64_t warmup = 5, iters = 20;
  int rc;
  if (args.Has("--warmup") && (rc = ParseInt("--warmup", args.Get("--warmup"), 0, &warmup))) return rc;
  if (args.Has("--iters") && (rc = ParseInt("--iters", args.Get("--iters"), 1, &iters))) return rc;
  if ((rc = CheckModelPath(model))) return rc;

  PreparedRun prepared;
  rc = PrepareRunHetero(args, model, 0x7e55e7a, &prepared);
  SessionPtr& session = prepared.session;
  const double compile_ms = prepared.compile_ms;
  const std::vector<IoInfo>& in_info = prepared.in_info;
  const std::vector<IoInfo>& out_info = prepared.out_info;
  std::vector<TensorPtr>& inputs = prepared.inputs;
  if (rc) return rc;

  std::vector<TensorPtr> outputs;
  for (int64_t i = 0; i < warmup; ++i)
    if ((rc = RunOnce(session.get(), in_info, inputs, out_info.size(), &outputs, nullptr))) return rc;
  std::vector<double> lat;
  for (int64_t i = 0; i < iters; ++i) {
    double ms = 0;
    if ((rc = RunOnce(session.get(), in_info, inputs, out_info.size(), &outputs, &ms))) return rc;
    lat.push_back(ms);
  }
  std::vector<double> sorted = lat;
  std::sort(sorted.begin(), sorted.end());
  const double mean = std::accumulate(lat.begin(), lat.end(), 0.0) / static_cast<double>(lat.size());
  const double p50 = Percentile(sorted, 50), p90 = Percentile(sorted, 90), p99 = Percentile(sorted, 99);
  int64_t batch = 1;
  if (!inputs.empty() && tsr_tensor_rank(inputs[0].get()) > 0) batch = tsr_tensor_dims(inputs[0].get())[0];
  const double runs_per_s = mean > 0 ? 1000.0 / mean : 0;
  const double samples_per_s = runs_per_s * static_cast<double>(batch);

  json stats, describe;
  json peak = nullptr;
  if (StatsJson(session.get(), &stats) == kExitOk) peak = PeakMemory(stats);
  std::map<std::string, int64_t> placement;
  if (DescribeJson(session.get(), &describe, nullptr) == kExitOk) placement = PlacementCounts(describe);

  // ---- precision: bf16 runs report their error against f32 ----
  json precision_check;
  if (args.Has("--compare-f32") || (args.Has("--precision") && args.Get("--precision") == "bf16"))
    if ((rc = PrecisionCheckJson(args, model, prepared, outputs, &precision_check))) return rc;
  // ---- end precision ----

  if (args.Has("--json")) {
    json j;
    j["model"] = model;
    if (!precision_check.is_null()) j["precision_check"] = precision_check;  // precision
    j["compile_ms"] = compile_ms;
    j["warmup"] = warmup;
    j["iters"] = iters;
    j["latency_ms"] = {{"min", sorted.front()}, {"p50", p50},  {"p90", p90},
                       {"p99", p99},            {"mean", mean}, {"max", sorted.back()}};
    j["latencies_ms"] = lat;
    j["batch"] = batch;
    j["throughput"] = {{"runs_per_s", runs_per_s}, {"samples_per_s", samples_per_s}};
    j["peak_memory_bytes"] = peak;
    j["placement"] = placement;
    // hetero: cross-device traffic per run and in all runs; auto placement.
    j["transfer_bytes_per_run"] = describe.value("transfer_bytes_per_run", 0);
    j["transfer_bytes_total"] = stats.is_object() ? stats.value("transfer_bytes", 0) : 0;
    if (describe.contains("auto")) j["auto"] = describe["auto"];
    if (describe.contains("trace")) j["trace"] = describe["trace"];
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  std::printf("model:        %s\n", model.c_str());
  std::printf("placement:    %s\n", PlacementString(placement).c_str());
  std::printf("compile:      %s\n", FormatMs(compile_ms).c_str());
  if (precision_check.contains("outputs"))  // precision
    for (const json& o : precision_check["outputs"])
      if (o.contains("max_rel_error"))
        std::printf("vs f32:       '%s' max abs err %s, max rel err %s (of the largest |f32| value)\n",
                    o["name"].get<std::string>().c_str(), o["max_abs_error"].dump().c_str(),
                    o["max_rel_error"].dump().c_str());
  std::printf("runs:         %lld warmup, %lld timed\n", static_cast<long long>(warmup),
              static_cast<long long>(iters));
  std::printf("latency:      min %s  p50 %s  p90 %s  p99 %s  mean %s\n", FormatMs(sorted.front()).c_str(),
              FormatMs(p50).c_str(), FormatMs(p90).c_str(), FormatMs(p99).c_str(), FormatMs(mean).c_str());
  std::printf("throughput:   %.2f runs/s, %.2f samples/s (batch %lld)\n", runs_per_s, samples_per_s,
              static_cast<long long>(batch));
  std::printf("peak memory:  %s\n", PeakMemoryString(peak).c_str());
  if (describe.value("transfer_bytes_per_run", 0) > 0)  // hetero
    std::printf("transfers:    %s per run\n", FormatBytes(describe.value("transfer_bytes_per_run", 0.0)).c_str());
  if (describe.contains("trace"))
    std::printf("trace:        %s (written at exit)\n", describe["trace"].get<std::string>().c_str());
  return kExitOk;
}

}  // namespace tessera::cli
