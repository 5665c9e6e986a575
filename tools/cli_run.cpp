// `tessera run` and `tessera compile`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "cli.h"

namespace tessera::cli {

namespace {

constexpr uint64_t kInputSeed = 0x7e55e7a;  // fixed: generated inputs are the same on every run
constexpr size_t kShownValues = 6;

const char kRunUsage[] =
    "usage: tessera run MODEL [options]\n"
    "\n"
    "Runs MODEL (.onnx or .tplan) once and prints its outputs, the latency and\n"
    "the placement of nodes on devices.\n"
    "\n"
    "options:\n"
    "  --device LIST      devices in priority order, e.g. cpu or cuda:0,cpu\n"
    "  --config FILE      deployment config file\n"
    "  --inputs DIR       read input_0.pb, input_1.pb, ... (graph-input order);\n"
    "                     default: generated from a fixed seed\n"
    "  --check DIR        compare outputs with DIR/output_0.pb, ...; exit 1 on mismatch\n"
    "  --rtol R           relative tolerance for --check (default 1e-3)\n"
    "  --atol A           absolute tolerance for --check (default 1e-4)\n"
    "                     an element matches when |a-b| <= atol + rtol*|b|\n"
    "  --dim NAME=N       bind a symbolic dim (repeatable)\n"
    "  --save DIR         write the outputs to DIR/output_0.pb, ...\n"
    "  --json             print one JSON object on stdout and nothing else\n"
    "  --threads N        CPU threads\n"
    "  --repeat N         run N times and report every latency (default 1)\n"
    "  --opt-level N      0, 1 or 2 (default 2)\n"
    "  --precision P      f32 (default) or bf16\n"
    "  --compare-f32      also run at f32 and report each output's error (always on\n"
    "                     with --precision bf16; needs an .onnx model)\n"
    "  --strict           fail rather than fall back when a node has no device\n"
    "  --dump-after PASS  print the graph after PASS to stderr (\"all\" = every pass)\n"
    "  --placement NAME=ROLE  run the node NAME (or every node of op type NAME) on\n"
    "                     device ROLE (repeatable), e.g. --placement MatMul=opencl:0\n"
    "  --trace FILE       write a Chrome trace (chrome://tracing, Perfetto) of the\n"
    "                     runs' segments and transfers to FILE\n"
    "\n"
    "exit status: 0 ok, 1 failure or mismatch, 2 bad usage or invalid model/input\n";

const char kCompileUsage[] =
    "usage: tessera compile MODEL -o OUT.tplan [options]\n"
    "\n"
    "Compiles MODEL (.onnx) for the given devices and writes the plan, with its\n"
    "weights, to OUT.tplan; `tessera run OUT.tplan` then runs it without the compiler.\n"
    "The file also holds each backend's compiled artifacts; loading reuses them when the\n"
    "backend version and device name match (`tessera inspect OUT.tplan` says which).\n"
    "\n"
    "options:\n"
    "  -o, --output FILE  the .tplan file to write (required)\n"
    "  --device LIST      devices in priority order, e.g. cpu or cuda:0,cpu\n"
    "  --config FILE      deployment config file\n"
    "  --dump-after PASS  print the graph after PASS to stderr (\"all\" = every pass)\n"
    "  --dim NAME=N       bind a symbolic dim (repeatable)\n"
    "  --threads N        CPU threads\n"
    "  --opt-level N      0, 1 or 2 (default 2)\n"
    "  --precision P      f32 (default) or bf16\n"
    "  --strict           fail rather than fall back when a node has no device\n"
    "  --placement NAME=ROLE  run the node NAME (or every node of op type NAME) on\n"
    "                     device ROLE (repeatable)\n";

std::vector<FlagSpec> SessionFlags() {
  return {{"--device"},      {"--config"},     {"--threads"},        {"--dim", true, true},
          {"--dump-after"},  {"--opt-level"},  {"--precision"},      {"--strict", false},
          {"--max-alloc-bytes"}, {"--placement", true, true}};
}

struct CheckResult {
  std::string name;
  bool passed = false;
  bool shape_ok = true;
  std::string problem;  // shape/dtype mismatch, when any
  double max_abs = 0, max_rel = 0;
  int64_t mismatches = 0, count = 0;
};

// Compares `got` with `expected` under |a-b| <= atol + rtol*|b|. NaN matches only NaN.
CheckResult Compare(const std::string& name, const tsr_tensor_t* got, const tsr_tensor_t* expected, double rtol,
                    double atol) {
  CheckResult r;
  r.name = name;
  std::vector<int64_t> gd = Dims(got), ed = Dims(expected);
  if (tsr_tensor_dtype(got) != tsr_tensor_dtype(expected)) {
    r.shape_ok = false;
    r.problem = std::string("dtype ") + DtypeName(tsr_tensor_dtype(got)) + ", expected " +
                DtypeName(tsr_tensor_dtype(expected));
  } else if (gd != ed) {
    r.shape_ok = false;
    r.problem = "shape " + DimsString(gd) + ", expected " + DimsString(ed);
  } else if (DtypeSize(tsr_tensor_dtype(got)) == 0) {
    r.shape_ok = false;
    r.problem = std::string("dtype ") + DtypeName(tsr_tensor_dtype(got)) + " cannot be compared";
  }
  if (!r.shape_ok) return r;
  r.count = ElementCount(gd);
  for (int64_t i = 0; i < r.count; ++i) {
    double a = ElementAsDouble(got, static_cast<size_t>(i));
    double b = ElementAsDouble(expected, static_cast<size_t>(i));
    if (std::isnan(a) || std::isnan(b)) {
      if (!(std::isnan(a) && std::isnan(b))) {
        ++r.mismatches;
        r.max_abs = std::numeric_limits<double>::infinity();
        r.max_rel = std::numeric_limits<double>::infinity();
      }
      continue;
    }
    if (a == b) continue;  // also equal infinities
    double diff = std::fabs(a - b);
    double rel = std::fabs(b) > 0 ? diff / std::fabs(b) : std::numeric_limits<double>::infinity();
    r.max_abs = std::max(r.max_abs, diff);
    r.max_rel = std::max(r.max_rel, rel);
    if (!(diff <= atol + rtol * std::fabs(b))) ++r.mismatches;
  }
  r.passed = r.mismatches == 0;
  return r;
}

json NumberOrString(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : "inf";
}

// ---- precision: error of a reduced-precision run against f32 ----
struct PrecisionError {
  std::string name;
  std::string problem;    // shape/dtype mismatch
  double max_abs = 0;     // max |a - b|
  double max_rel = 0;     // max |a - b| / max |b|: relative to the f32 output's largest magnitude
};

// Runs `model` again at precision f32 with the same options and inputs.
int CompareWithF32(const Args& args, const std::string& model, const std::vector<IoInfo>& in_info,
                   const std::vector<TensorPtr>& inputs, const std::vector<IoInfo>& out_info,
                   const std::vector<TensorPtr>& outputs, std::vector<PrecisionError>* out) {
  OptionsPtr options;
  if (int rc = BuildOptions(args, &options, nullptr)) return rc;
  int32_t code = 0;
  std::string msg;
  if (IsError(tsr_options_set(options.get(), "precision", "f32"), &code, &msg)) return Fail(kExitFailure, msg);
  SessionPtr ref;
  double ms = 0;
  if (int rc = CreateSession(model, options.get(), &ref, &ms)) return rc;
  std::vector<TensorPtr> ref_out;
  if (int rc = RunOnce(ref.get(), in_info, inputs, out_info.size(), &ref_out, &ms)) return rc;
  for (size_t k = 0; k < outputs.size() && k < ref_out.size(); ++k) {
    PrecisionError e;
    e.name = out_info[k].name;
    CheckResult c = Compare(e.name, outputs[k].get(), ref_out[k].get(), 0, 0);
    if (!c.shape_ok) {
      e.problem = c.problem;
    } else {
      double range = 0;
      for (int64_t i = 0; i < c.count; ++i) range = std::max(range, std::fabs(ElementAsDouble(ref_out[k].get(), static_cast<size_t>(i))));
      e.max_abs = c.max_abs;
      e.max_rel = range > 0 ? c.max_abs / range : (c.max_abs > 0 ? std::numeric_limits<double>::infinity() : 0);
    }
    out->push_back(e);
  }
  return kExitOk;
}
// ---- end precision ----

// hetero: placement of every node and cross-device traffic, from a describe document.
void PrintPlacementDetails(const json& d) {
  if (!d.is_object()) return;
  if (d.contains("auto") && d["auto"].is_object()) {
    const json& a = d["auto"];
    std::string line;
    if (a.contains("choice") && a["choice"].is_array()) {
      line = "chose ";
      for (size_t i = 0; i < a["choice"].size(); ++i) line += (i ? "," : "") + a["choice"][i].get<std::string>();
      std::string t;
      for (const auto& e : a.value("timings", json::array())) {
        std::string devs;
        for (size_t i = 0; i < e["devices"].size(); ++i) devs += (i ? "," : "") + e["devices"][i].get<std::string>();
        t += (t.empty() ? "" : ", ") + devs + " " +
             (e.contains("median_ms") ? FormatMs(e["median_ms"].get<double>()) : std::string("failed"));
      }
      if (!t.empty()) line += " (" + t + (a.value("cached", false) ? "; from cache)" : ")");
    }
    if (a.contains("note")) line += (line.empty() ? "" : "; ") + a["note"].get<std::string>();
    std::printf("auto: %s\n", line.c_str());
  }
  // Nodes whose device is not simply the preferred one, with the reason.
  size_t shown = 0, other = 0;
  for (const auto& n : d.value("nodes", json::array())) {
    std::string reason = n.value("reason", "");
    if (reason == "preferred device" || reason.empty()) continue;
    if (shown++ < 20)
      std::printf("  %s (%s) on %s: %s\n", n.value("name", "").c_str(), n.value("op", "").c_str(),
                  n.value("device", "").c_str(), reason.c_str());
    else
      ++other;
  }
  if (other) std::printf("  ... and %zu more node(s) not on the preferred device\n", other);
  const json trs = d.value("transfers", json::array());
  if (!trs.empty()) {
    std::printf("transfers: %zu per run, %s\n", trs.size(), FormatBytes(d.value("transfer_bytes_per_run", 0.0)).c_str());
    size_t k = 0;
    for (const auto& t : trs) {
      if (k++ == 10) {
        std::printf("  ...\n");
        break;
      }
      std::printf("  '%s' %s -> %s: %s\n", t.value("value", "").c_str(), t.value("from", "").c_str(),
                  t.value("to", "").c_str(), FormatBytes(t.value("bytes", 0.0)).c_str());
    }
  }
}

}  // namespace

// hetero: the flags BuildOptions does not know (--trace FILE, --placement
// NAME=ROLE), applied to `options`. Returns an exit code.
int ApplyHeteroFlags(const Args& args, tsr_options_t* options) {
  int32_t code = 0;
  std::string msg;
  if (args.Has("--trace")) {
    if (args.Get("--trace").empty()) return Fail(kExitUsage, "--trace needs a FILE");
    if (IsError(tsr_options_set(options, "trace", args.Get("--trace").c_str()), &code, &msg))
      return Fail(kExitUsage, "--trace " + args.Get("--trace") + ": " + msg);
  }
  for (const std::string& spec : args.All("--placement")) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      return Fail(kExitUsage, "--placement expects NAME=ROLE (e.g. --placement MatMul=opencl:0), got '" + spec + "'");
    std::string key = "placement." + spec.substr(0, eq);
    if (IsError(tsr_options_set(options, key.c_str(), spec.substr(eq + 1).c_str()), &code, &msg))
      return Fail(kExitUsage, "--placement " + spec + ": " + msg);
  }
  return kExitOk;
}

// PrepareRun (tools/cli_util.cpp) with the hetero flags applied before the
// session is created.
int PrepareRunHetero(const Args& args, const std::string& model, uint64_t seed, PreparedRun* p) {
  int rc;
  if ((rc = BuildOptions(args, &p->options, &p->dims))) return rc;
  if ((rc = ApplyHeteroFlags(args, p->options.get()))) return rc;
  if ((rc = CreateSession(model, p->options.get(), &p->session, &p->compile_ms))) return rc;
  if ((rc = GetIoInfo(p->session.get(), &p->in_info, &p->out_info))) return rc;
  if (args.Has("--inputs")) return LoadInputs(args.Get("--inputs"), p->in_info, &p->inputs);
  return GenerateInputs(p->in_info, p->dims, seed, &p->inputs);
}

int CmdRun(int argc, char** argv) {
  std::vector<FlagSpec> specs = SessionFlags();
  for (const char* f : {"--inputs", "--check", "--rtol", "--atol", "--save", "--repeat", "--trace"}) specs.push_back({f});
  specs.push_back({"--json", false});
  specs.push_back({"--compare-f32", false});  // precision
  Args args;
  if (int rc = ParseArgs("run", argc, argv, 2, specs, &args)) return rc;
  if (args.help) {
    std::fputs(kRunUsage, stdout);
    return kExitOk;
  }
  if (args.positional.size() != 1)
    return Fail(kExitUsage, std::string("run: expected one MODEL, got ") + std::to_string(args.positional.size()) +
                                " (see 'tessera run --help')");
  const std::string model = args.positional[0];
  const bool as_json = args.Has("--json");
  double rtol = 1e-3, atol = 1e-4;
  int64_t repeat = 1;
  int rc;
  if (args.Has("--rtol") && (rc = ParseDouble("--rtol", args.Get("--rtol"), 0, &rtol))) return rc;
  if (args.Has("--atol") && (rc = ParseDouble("--atol", args.Get("--atol"), 0, &atol))) return rc;
  if (args.Has("--repeat") && (rc = ParseInt("--repeat", args.Get("--repeat"), 1, &repeat))) return rc;
  std::error_code ec;
  if (args.Has("--check") && !std::filesystem::is_directory(args.Get("--check"), ec))
    return Fail(kExitUsage, "--check: not a directory: " + args.Get("--check"));
  if ((rc = CheckModelPath(model))) return rc;

  PreparedRun prepared;
  rc = PrepareRunHetero(args, model, kInputSeed, &prepared);
  SessionPtr& session = prepared.session;
  const double compile_ms = prepared.compile_ms;
  const std::vector<IoInfo>& in_info = prepared.in_info;
  const std::vector<IoInfo>& out_info = prepared.out_info;
  std::vector<TensorPtr>& inputs = prepared.inputs;
  if (rc) return rc;

  // Expected outputs are loaded before running so a bad --check folder fails fast.
  std::vector<TensorPtr> expected;
  if (args.Has("--check")) {
    for (size_t k = 0; k < out_info.size(); ++k) {
      std::string path =
          (std::filesystem::path(args.Get("--check")) / ("output_" + std::to_string(k) + ".pb")).string();
      if (!std::filesystem::exists(path, ec))
        return Fail(kExitUsage, "--check: missing " + path + " for model output " + std::to_string(k) + " '" +
                                    out_info[k].name + "'");
      tsr_tensor_t* raw = nullptr;
      int32_t code = 0;
      std::string msg;
      if (IsError(tsr_tensor_load_pb(path.c_str(), &raw, nullptr), &code, &msg))
        return Fail(kExitUsage, "cannot load " + path + ": " + msg);
      expected.emplace_back(raw);
    }
  }

  std::vector<TensorPtr> outputs;
  std::vector<double> latencies;
  for (int64_t r = 0; r < repeat; ++r) {
    double ms = 0;
    if ((rc = RunOnce(session.get(), in_info, inputs, out_info.size(), &outputs, &ms))) return rc;
    latencies.push_back(ms);
  }

  std::vector<CheckResult> checks;
  bool all_passed = true;
  for (size_t k = 0; k < expected.size(); ++k) {
    checks.push_back(Compare(out_info[k].name, outputs[k].get(), expected[k].get(), rtol, atol));
    all_passed = all_passed && checks.back().passed;
  }

  if (args.Has("--save")) {
    const std::string dir = args.Get("--save");
    std::filesystem::create_directories(dir, ec);
    if (ec) return Fail(kExitFailure, "--save: cannot create " + dir + ": " + ec.message());
    for (size_t k = 0; k < outputs.size(); ++k) {
      std::string path = (std::filesystem::path(dir) / ("output_" + std::to_string(k) + ".pb")).string();
      int32_t code = 0;
      std::string msg;
      if (IsError(tsr_tensor_save_pb(path.c_str(), outputs[k].get(), out_info[k].name.c_str()), &code, &msg))
        return Fail(kExitFailure, "cannot write " + path + ": " + msg);
    }
  }

  json describe, stats;
  std::map<std::string, int64_t> placement;
  if (DescribeJson(session.get(), &describe, nullptr) == kExitOk) placement = PlacementCounts(describe);
  if (StatsJson(session.get(), &stats) != kExitOk) stats = json::object();  // hetero

  // ---- precision: compare a bf16 run with f32 ----
  const bool compare_f32 =
      args.Has("--compare-f32") || (args.Has("--precision") && args.Get("--precision") == "bf16");
  const bool is_plan = model.size() >= 6 && model.compare(model.size() - 6, 6, ".tplan") == 0;
  std::vector<PrecisionError> prec;
  if (compare_f32 && !is_plan &&
      (rc = CompareWithF32(args, model, in_info, inputs, out_info, outputs, &prec)))
    return rc;
  // ---- end precision ----

  std::vector<double> sorted = latencies;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];

  if (as_json) {
    json j;
    j["model"] = model;
    j["compile_ms"] = compile_ms;
    j["latency_ms"] = latencies.size() == 1 ? json(latencies[0]) : json(latencies);
    j["latency_median_ms"] = median;
    json outs = json::array();
    for (size_t k = 0; k < outputs.size(); ++k) {
      json o;
      o["name"] = out_info[k].name;
      o["dtype"] = DtypeName(tsr_tensor_dtype(outputs[k].get()));
      o["shape"] = Dims(outputs[k].get());
      o["values"] = FirstValuesJson(outputs[k].get(), kShownValues);
      outs.push_back(o);
    }
    j["outputs"] = outs;
    if (args.Has("--check")) {
      json c;
      c["passed"] = all_passed;
      c["rtol"] = rtol;
      c["atol"] = atol;
      json per = json::array();
      for (const CheckResult& r : checks) {
        json o;
        o["name"] = r.name;
        o["passed"] = r.passed;
        if (!r.shape_ok) {
          o["error"] = r.problem;
        } else {
          o["max_abs_error"] = NumberOrString(r.max_abs);
          o["max_rel_error"] = NumberOrString(r.max_rel);
          o["mismatches"] = r.mismatches;
          o["elements"] = r.count;
        }
        per.push_back(o);
      }
      c["outputs"] = per;
      j["check"] = c;
    }
    j["placement"] = placement;
    // hetero: node -> device with the reason, cross-device traffic, auto, trace.
    json nodes = json::array();
    for (const auto& n : describe.value("nodes", json::array()))
      nodes.push_back({{"name", n.value("name", "")}, {"op", n.value("op", "")}, {"device", n.value("device", "")},
                       {"reason", n.value("reason", "")}});
    j["nodes"] = nodes;
    j["transfers"] = describe.value("transfers", json::array());
    j["transfer_bytes_per_run"] = describe.value("transfer_bytes_per_run", 0);
    j["transfer_bytes_total"] = stats.value("transfer_bytes", 0);
    if (describe.contains("auto")) j["auto"] = describe["auto"];
    if (describe.contains("trace")) j["trace"] = describe["trace"];
    if (compare_f32) {  // precision
      json pc;
      pc["reference"] = "f32";
      if (is_plan) pc["note"] = "a .tplan holds only its compiled precision; compare with the .onnx model";
      json per = json::array();
      for (const PrecisionError& e : prec) {
        json o = {{"name", e.name}};
        if (!e.problem.empty()) {
          o["error"] = e.problem;
        } else {
          o["max_abs_error"] = NumberOrString(e.max_abs);
          o["max_rel_error"] = NumberOrString(e.max_rel);
        }
        per.push_back(o);
      }
      pc["outputs"] = per;
      j["precision_check"] = pc;
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("model: %s\n", model.c_str());
    for (size_t k = 0; k < outputs.size(); ++k) {
      const tsr_tensor_t* t = outputs[k].get();
      std::printf("output %zu '%s': %s %s %s\n", k, out_info[k].name.c_str(), DtypeName(tsr_tensor_dtype(t)),
                  DimsString(Dims(t)).c_str(), FirstValues(t, kShownValues).c_str());
    }
    for (const CheckResult& r : checks) {
      if (!r.shape_ok)
        std::printf("check '%s': FAIL: %s\n", r.name.c_str(), r.problem.c_str());
      else
        std::printf("check '%s': %s  max abs err %.3g  max rel err %.3g  (%lld of %lld elements outside "
                    "atol %g + rtol %g)\n",
                    r.name.c_str(), r.passed ? "ok" : "FAIL", r.max_abs, r.max_rel,
                    static_cast<long long>(r.mismatches), static_cast<long long>(r.count), atol, rtol);
    }
    std::printf("compile: %s\n", FormatMs(compile_ms).c_str());
    if (latencies.size() == 1) {
      std::printf("latency: %s\n", FormatMs(latencies[0]).c_str());
    } else {
      std::printf("latency: %zu runs, min %s, median %s, max %s\n", latencies.size(), FormatMs(sorted.front()).c_str(),
                  FormatMs(median).c_str(), FormatMs(sorted.back()).c_str());
    }
    std::printf("placement: %s\n", PlacementString(placement).c_str());
    PrintPlacementDetails(describe);  // hetero
    if (describe.contains("trace"))
      std::printf("trace: %s (written at exit)\n", describe["trace"].get<std::string>().c_str());
    for (const PrecisionError& e : prec) {  // precision
      if (!e.problem.empty()) std::printf("vs f32 '%s': %s\n", e.name.c_str(), e.problem.c_str());
      else std::printf("vs f32 '%s': max abs err %.3g, max rel err %.3g (of the largest |f32| value)\n",
                       e.name.c_str(), e.max_abs, e.max_rel);
    }
    if (compare_f32 && is_plan) std::printf("vs f32: skipped (a .tplan holds only its compiled precision)\n");
    if (args.Has("--save")) std::printf("saved %zu output(s) to %s\n", outputs.size(), args.Get("--save").c_str());
  }
  if (!all_passed) {
    std::fprintf(stderr, "tessera: error: outputs do not match %s\n", args.Get("--check").c_str());
    return kExitFailure;
  }
  return kExitOk;
}

int CmdCompile(int argc, char** argv) {
  std::vector<FlagSpec> specs = SessionFlags();
  specs.push_back({"--output", true, false, "-o"});
  Args args;
  if (int rc = ParseArgs("compile", argc, argv, 2, specs, &args)) return rc;
  if (args.help) {
    std::fputs(kCompileUsage, stdout);
    return kExitOk;
  }
  if (args.positional.size() != 1)
    return Fail(kExitUsage, std::string("compile: expected one MODEL, got ") +
                                std::to_string(args.positional.size()) + " (see 'tessera compile --help')");
  if (!args.Has("--output") || args.Get("--output").empty())
    return Fail(kExitUsage, "compile: missing -o OUT.tplan (see 'tessera compile --help')");
  const std::string model = args.positional[0], out = args.Get("--output");
  int rc;
  if ((rc = CheckModelPath(model))) return rc;
  OptionsPtr options;
  if ((rc = BuildOptions(args, &options, nullptr))) return rc;
  if ((rc = ApplyHeteroFlags(args, options.get()))) return rc;  // hetero
  SessionPtr session;
  double compile_ms = 0;
  if ((rc = CreateSession(model, options.get(), &session, &compile_ms))) return rc;
  int32_t code = 0;
  std::string msg;
  if (IsError(tsr_session_save_plan(session.get(), out.c_str()), &code, &msg))
    return Fail(kExitFailure, "cannot write plan " + out + ": " + msg);
  std::error_code ec;
  auto size = std::filesystem::file_size(out, ec);
  json describe;
  std::map<std::string, int64_t> placement;
  if (DescribeJson(session.get(), &describe, nullptr) == kExitOk) placement = PlacementCounts(describe);
  std::printf("wrote %s (%s) from %s in %s; placement: %s\n", out.c_str(),
              ec ? "size unknown" : FormatBytes(static_cast<double>(size)).c_str(), model.c_str(),
              FormatMs(compile_ms).c_str(), PlacementString(placement).c_str());
  return kExitOk;
}

// ---- precision: the f32 comparison for `tessera bench` (declared in cli_bench.cpp) ----
// Fills *out with {"reference": "f32", "outputs": [{name, max_abs_error,
// max_rel_error}]} comparing `outputs` with an f32 run of `model`; a .tplan
// gets a note instead (it holds only its compiled precision).
int PrecisionCheckJson(const Args& args, const std::string& model, const PreparedRun& prepared,
                       const std::vector<TensorPtr>& outputs, json* out) {
  json pc;
  pc["reference"] = "f32";
  json per = json::array();
  if (model.size() >= 6 && model.compare(model.size() - 6, 6, ".tplan") == 0) {
    pc["note"] = "a .tplan holds only its compiled precision; compare with the .onnx model";
  } else {
    std::vector<PrecisionError> prec;
    if (int rc = CompareWithF32(args, model, prepared.in_info, prepared.inputs, prepared.out_info, outputs, &prec))
      return rc;
    for (const PrecisionError& e : prec) {
      json o = {{"name", e.name}};
      if (!e.problem.empty()) {
        o["error"] = e.problem;
      } else {
        o["max_abs_error"] = NumberOrString(e.max_abs);
        o["max_rel_error"] = NumberOrString(e.max_rel);
      }
      per.push_back(o);
    }
  }
  pc["outputs"] = per;
  *out = pc;
  return kExitOk;
}
// ---- end precision ----

}  // namespace tessera::cli
