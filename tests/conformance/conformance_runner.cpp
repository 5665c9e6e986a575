// ONNX backend node-test conformance runner.
//
// Runs every case under onnx/backend/test/data/node (model.onnx plus
// test_data_set_*/input_*.pb and output_*.pb) through a Tessera session on
// the CPU backend and compares with ONNX's own tolerance (rtol 1e-3,
// atol 1e-7, NaN == NaN, exact for integers, bools and strings).
//
// Cases run in a forked worker process so that a crash or a hang in one case
// is recorded as that case's failure and the run goes on with a new worker.
// The parent never runs a kernel (no OpenMP before fork).
//
// Output: the line "conformance: N passed, M failed, K skipped", a markdown
// report per op with every failure's reason, optional JSON; with
// --expected FILE the exit status is 1 when a case outside the list fails or
// a listed case passes (so the list stays true), else 0.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <onnx/onnx_pb.h>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "graph/onnx/tensor_proto.h"
#include "runtime/session.h"

namespace tessera {
namespace {

constexpr double kRtol = 1e-3;
constexpr double kAtol = 1e-7;

// Per-case tolerance overrides, each with its reason (listed in the report).
struct Override {
  const char* test;
  double rtol, atol;
  const char* reason;
};
const std::vector<Override> kOverrides = {};

struct CaseInfo {
  std::string name, dir;
  std::string op;      // report key: the single node's op type, or the test's family
  std::string domain;  // "" = ai.onnx
  bool skip = false;
  std::string skip_reason;
};

struct CaseResult {
  std::string name;
  std::string status;  // pass | fail | skip
  std::string reason;
};

bool IsDir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(n);
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string OneLine(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > 400) s = s.substr(0, 400) + "...";
  return s;
}

// Reads the model's top-level nodes to classify the case, without importing.
CaseInfo Classify(const std::string& root, const std::string& name) {
  CaseInfo c;
  c.name = name;
  c.dir = root + "/" + name;
  c.op = name;
  std::ifstream f(c.dir + "/model.onnx", std::ios::binary);
  onnx::ModelProto m;
  if (!f || !m.ParseFromIstream(&f)) {
    c.op = "(unreadable)";
    return c;
  }
  std::set<std::string> domains;
  for (const auto& n : m.graph().node()) domains.insert(n.domain() == "ai.onnx" ? "" : n.domain());
  if (m.graph().node_size() == 1) {
    c.op = m.graph().node(0).op_type();
  } else {
    // Function-expanded and multi-node cases: group by the test family.
    std::string fam = name.substr(5);
    size_t e = fam.find("_expanded");
    if (e != std::string::npos) fam = fam.substr(0, e) + " (expanded)";
    c.op = fam;
  }
  for (const auto& d : domains) {
    if (d == "ai.onnx.ml") {
      c.skip = true, c.skip_reason = "ai.onnx.ml domain (not in the default-domain count)";
      c.domain = d;
    } else if (d == "ai.onnx.preview.training") {
      c.skip = true, c.skip_reason = "ai.onnx.preview.training domain (training preview)";
      c.domain = d;
    }
  }
  return c;
}

bool Close(double got, double want, double rtol, double atol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

// Every floating type, the 8- and 4-bit ones included, compares by value.
bool IsFloat(DType t) { return IsAnyFloatDType(t); }

std::string Compare(const Tensor& got, const Tensor& want, const std::string& what, double rtol, double atol) {
  if (got.dtype() != want.dtype())
    return StrCat(what, ": dtype ", DTypeName(got.dtype()), ", expected ", DTypeName(want.dtype()));
  if (got.dims() != want.dims())
    return StrCat(what, ": shape ", got.type().shape.ToString(), ", expected ", want.type().shape.ToString());
  if (want.dtype() == DType::kString) {
    for (size_t i = 0; i < want.strings().size(); ++i)
      if (got.strings()[i] != want.strings()[i])
        return StrCat(what, ": string ", i, " is '", got.strings()[i], "', expected '", want.strings()[i], "'");
    return "";
  }
  int64_t n = want.num_elements(), bad = 0, first = -1;
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool ok;
    if (IsFloat(want.dtype())) {
      ok = Close(got.GetAsDouble(i), want.GetAsDouble(i), rtol, atol);
      if (!ok) worst = std::max(worst, std::fabs(got.GetAsDouble(i) - want.GetAsDouble(i)));
    } else if (want.dtype() == DType::kU64) {
      ok = static_cast<uint64_t>(got.GetAsInt64(i)) == static_cast<uint64_t>(want.GetAsInt64(i));
    } else {
      ok = got.GetAsInt64(i) == want.GetAsInt64(i);
    }
    if (!ok && bad++ == 0) first = i;
  }
  if (bad == 0) return "";
  std::ostringstream os;
  os << what << ": " << bad << " of " << n << " elements differ; first at " << first << ": got "
     << got.GetAsDouble(first) << ", expected " << want.GetAsDouble(first);
  if (IsFloat(want.dtype())) os << " (max abs diff " << worst << ")";
  return os.str();
}

// Runs one case in this process; returns "" on success, else the reason.
std::string RunCase(const CaseInfo& c) {
  double rtol = kRtol, atol = kAtol;
  for (const auto& o : kOverrides)
    if (c.name == o.test) rtol = o.rtol, atol = o.atol;
  SessionOptions opts;
  opts.threads = 1;
  auto sess = Session::FromFile(c.dir + "/model.onnx", opts);
  if (!sess.ok()) return StrCat("load/compile: ", sess.status().ToString());
  Session& s = **sess;
  for (const auto& ds : ListDir(c.dir)) {
    if (ds.rfind("test_data_set_", 0) != 0) continue;
    std::string dsdir = c.dir + "/" + ds;
    std::vector<Tensor> ins, wants;
    for (size_t i = 0;; ++i) {
      std::string p = StrCat(dsdir, "/input_", i, ".pb");
      if (access(p.c_str(), F_OK) != 0) break;
      auto t = LoadTensorProtoFile(p);
      if (!t.ok()) return StrCat(ds, " input_", i, ".pb: ", t.status().ToString());
      ins.push_back(std::move(*t));
    }
    for (size_t i = 0;; ++i) {
      std::string p = StrCat(dsdir, "/output_", i, ".pb");
      if (access(p.c_str(), F_OK) != 0) break;
      auto t = LoadTensorProtoFile(p);
      if (!t.ok()) return StrCat(ds, " output_", i, ".pb: ", t.status().ToString());
      wants.push_back(std::move(*t));
    }
    if (ins.size() > s.inputs().size())
      return StrCat(ds, ": ", ins.size(), " inputs in the data, the model takes ", s.inputs().size());
    std::vector<std::pair<std::string, const Tensor*>> feeds;
    for (size_t i = 0; i < ins.size(); ++i) feeds.emplace_back(s.inputs()[i].name, &ins[i]);
    std::vector<Tensor> got;
    Status st = s.Run(feeds, {}, &got);
    if (!st.ok()) return StrCat(ds, " run: ", st.ToString());
    if (got.size() != wants.size())
      return StrCat(ds, ": ", got.size(), " outputs, expected ", wants.size());
    for (size_t i = 0; i < wants.size(); ++i) {
      std::string what = StrCat(ds, " output ", i, " '", s.outputs()[i].name, "'");
      std::string r = Compare(got[i], wants[i], what, rtol, atol);
      if (!r.empty()) return r;
    }
  }
  return "";
}

// ---- worker processes --------------------------------------------------------

// The worker runs cases [from, end) and writes "<index>\t<P|F>\t<reason>\n" per
// case, after writing "<index>\tS\n" when it starts one.
[[noreturn]] void WorkerMain(const std::vector<CaseInfo>& cases, const std::vector<size_t>& todo, size_t from,
                             int fd) {
  auto put = [fd](const std::string& s) {
    const char* p = s.data();
    size_t left = s.size();
    while (left > 0) {
      ssize_t w = write(fd, p, left);
      if (w <= 0) _exit(3);
      p += w, left -= static_cast<size_t>(w);
    }
  };
  for (size_t k = from; k < todo.size(); ++k) {
    size_t i = todo[k];
    put(StrCat(k, "\tS\n"));
    std::string r;
    try {
      r = RunCase(cases[i]);
    } catch (const std::exception& e) {
      r = StrCat("C++ exception: ", e.what());
    }
    put(StrCat(k, r.empty() ? "\tP\t" : "\tF\t", OneLine(r), "\n"));
  }
  _exit(0);
}

std::vector<CaseResult> RunAll(const std::vector<CaseInfo>& cases, int timeout_s, bool verbose) {
  std::vector<CaseResult> results(cases.size());
  std::vector<size_t> todo;
  for (size_t i = 0; i < cases.size(); ++i) {
    results[i].name = cases[i].name;
    if (cases[i].skip)
      results[i].status = "skip", results[i].reason = cases[i].skip_reason;
    else
      todo.push_back(i);
  }
  size_t next = 0;
  while (next < todo.size()) {
    int fds[2];
    if (pipe(fds) != 0) {
      perror("pipe");
      exit(2);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      WorkerMain(cases, todo, next, fds[1]);
    }
    close(fds[1]);
    std::string buf;
    long current = -1;
    auto started = std::chrono::steady_clock::now();
    bool killed = false;
    for (;;) {
      pollfd p{fds[0], POLLIN, 0};
      int r = poll(&p, 1, 1000);
      if (r > 0) {
        char tmp[4096];
        ssize_t n = read(fds[0], tmp, sizeof tmp);
        if (n <= 0) break;
        buf.append(tmp, static_cast<size_t>(n));
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
          std::string line = buf.substr(0, nl);
          buf.erase(0, nl + 1);
          size_t t1 = line.find('\t');
          long k = std::stol(line.substr(0, t1));
          char kind = line[t1 + 1];
          if (kind == 'S') {
            current = k;
            started = std::chrono::steady_clock::now();
            continue;
          }
          CaseResult& res = results[todo[k]];
          res.status = kind == 'P' ? "pass" : "fail";
          res.reason = line.size() > t1 + 3 ? line.substr(t1 + 3) : "";
          if (verbose) printf("%-60s %s %s\n", res.name.c_str(), res.status.c_str(), res.reason.c_str());
          next = static_cast<size_t>(k) + 1;
          current = -1;
        }
      } else if (current >= 0 &&
                 std::chrono::steady_clock::now() - started > std::chrono::seconds(timeout_s)) {
        kill(pid, SIGKILL);
        killed = true;
      }
    }
    close(fds[0]);
    int wst = 0;
    waitpid(pid, &wst, 0);
    if (current >= 0) {  // the worker died inside a case
      CaseResult& res = results[todo[current]];
      res.status = "fail";
      if (killed)
        res.reason = StrCat("timed out after ", timeout_s, " s");
      else if (WIFSIGNALED(wst))
        res.reason = StrCat("crashed: signal ", WTERMSIG(wst), " (", strsignal(WTERMSIG(wst)), ")");
      else
        res.reason = StrCat("worker exited with status ", WEXITSTATUS(wst));
      if (verbose) printf("%-60s fail %s\n", res.name.c_str(), res.reason.c_str());
      next = static_cast<size_t>(current) + 1;
    } else if (next < todo.size() && (WIFSIGNALED(wst) || WEXITSTATUS(wst) != 0)) {
      fprintf(stderr, "conformance: worker died between cases (status %d)\n", wst);
      exit(2);
    }
  }
  return results;
}

// ---- expected failures, reports ------------------------------------------------

// Lines: "test_name  # reason"; blank lines and lines starting with '#' ignored.
std::map<std::string, std::string> LoadExpected(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream f(path);
  if (!f) {
    fprintf(stderr, "conformance: cannot read expected-failures file %s\n", path.c_str());
    exit(2);
  }
  std::string line;
  while (std::getline(f, line)) {
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    size_t h = line.find('#', b);
    std::string name = line.substr(b, (h == std::string::npos ? line.size() : h) - b);
    name.erase(name.find_last_not_of(" \t") + 1);
    std::string reason = h == std::string::npos ? "" : line.substr(h + 1);
    reason.erase(0, reason.find_first_not_of(" \t"));
    out[name] = reason;
  }
  return out;
}

std::string MdEscape(std::string s) {
  std::string o;
  for (char c : s) {
    if (c == '|') o += "\\|";
    else if (c == '<') o += "&lt;";
    else o += c;
  }
  return o;
}

void WriteReport(const std::string& path, const std::vector<CaseInfo>& cases, const std::vector<CaseResult>& res,
                 const std::string& summary) {
  struct OpRow {
    int pass = 0, fail = 0, skip = 0;
  };
  std::map<std::string, OpRow> ops;
  for (size_t i = 0; i < cases.size(); ++i) {
    OpRow& r = ops[cases[i].op];
    if (res[i].status == "pass") ++r.pass;
    else if (res[i].status == "fail") ++r.fail;
    else ++r.skip;
  }
  std::ofstream f(path);
  f << "# ONNX backend node tests on Tessera (CPU backend)\n\n"
    << "Generated by `tests/conformance/conformance_runner` over the node test data of the installed "
       "`onnx` package; tolerance rtol "
    << kRtol << ", atol " << kAtol << " (ONNX's own).\n\n"
    << summary << "\n\n## Per op\n\n| op | passed | failed | skipped |\n|---|---:|---:|---:|\n";
  for (const auto& [op, r] : ops) f << "| " << MdEscape(op) << " | " << r.pass << " | " << r.fail << " | " << r.skip << " |\n";
  f << "\n## Failures\n\n| case | op | reason |\n|---|---|---|\n";
  for (size_t i = 0; i < cases.size(); ++i)
    if (res[i].status == "fail")
      f << "| " << res[i].name << " | " << MdEscape(cases[i].op) << " | " << MdEscape(res[i].reason) << " |\n";
  f << "\n## Skipped\n\n| case | reason |\n|---|---|\n";
  for (size_t i = 0; i < cases.size(); ++i)
    if (res[i].status == "skip") f << "| " << res[i].name << " | " << MdEscape(res[i].reason) << " |\n";
  if (!kOverrides.empty()) {
    f << "\n## Tolerance overrides\n\n| case | rtol | atol | reason |\n|---|---:|---:|---|\n";
    for (const auto& o : kOverrides)
      f << "| " << o.test << " | " << o.rtol << " | " << o.atol << " | " << o.reason << " |\n";
  }
}

// Rewrites the block between the README's coverage markers: the coverage line
// and a table of the ops with at least one passing case ("passed/cases").
bool WriteReadmeBlock(const std::string& path, const std::vector<CaseInfo>& cases,
                      const std::vector<CaseResult>& res, const std::string& rate) {
  const std::string begin = "<!-- onnx-coverage:begin -->", end = "<!-- onnx-coverage:end -->";
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();
  size_t b = text.find(begin), e = text.find(end);
  if (!in || b == std::string::npos || e == std::string::npos || e < b) {
    fprintf(stderr, "conformance: %s has no '%s' ... '%s' block\n", path.c_str(), begin.c_str(), end.c_str());
    return false;
  }
  std::map<std::string, std::pair<int, int>> ops;  // single-op cases only: op -> (passed, total)
  for (size_t i = 0; i < cases.size(); ++i) {
    if (res[i].status == "skip" || cases[i].op.find(' ') != std::string::npos || cases[i].op == cases[i].name)
      continue;
    auto& r = ops[cases[i].op];
    r.second++;
    if (res[i].status == "pass") r.first++;
  }
  std::ostringstream os;
  os << begin << "\n" << rate
     << " (generated by `tests/conformance/conformance_runner --readme README.md`; per-case reasons in "
        "`build/conformance/onnx_conformance.md` after `ctest -R onnx_conformance`).\n\n"
     << "Ops with at least one passing ONNX node test (passed/cases):\n\n"
     << "| op | | op | | op | | op | |\n|---|---:|---|---:|---|---:|---|---:|\n";
  int col = 0;
  for (const auto& [op, r] : ops) {
    if (r.first == 0) continue;
    os << (col == 0 ? "| " : " ") << op << " | " << r.first << "/" << r.second << " |";
    if (++col == 4) os << "\n", col = 0;
  }
  if (col) {
    while (col++ < 4) os << " | |";
    os << "\n";
  }
  os << end;
  text.replace(b, e + end.size() - b, os.str());
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o;
}

int Usage() {
  fprintf(stderr,
          "usage: conformance_runner --data DIR [--expected FILE] [--report FILE.md] [--json FILE]\n"
          "                          [--filter REGEX] [--timeout S] [--write-expected FILE] [--readme README.md] [-v]\n");
  return 2;
}

int Main(int argc, char** argv) {
  std::string data, expected, report, json, filter, write_expected, readme;
  int timeout_s = 60;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string t;
    if (a == "--data") { if (!val(&data)) return Usage(); }
    else if (a == "--expected") { if (!val(&expected)) return Usage(); }
    else if (a == "--report") { if (!val(&report)) return Usage(); }
    else if (a == "--json") { if (!val(&json)) return Usage(); }
    else if (a == "--filter") { if (!val(&filter)) return Usage(); }
    else if (a == "--write-expected") { if (!val(&write_expected)) return Usage(); }
    else if (a == "--readme") { if (!val(&readme)) return Usage(); }
    else if (a == "--timeout") { if (!val(&t)) return Usage(); timeout_s = std::max(1, atoi(t.c_str())); }
    else if (a == "-v") verbose = true;
    else return Usage();
  }
  if (data.empty() || !IsDir(data)) {
    fprintf(stderr, "conformance: --data must name the ONNX node test folder (got '%s')\n", data.c_str());
    return 2;
  }
  std::regex re;
  try {
    re = std::regex(filter.empty() ? ".*" : filter);
  } catch (const std::regex_error& e) {
    fprintf(stderr, "conformance: bad --filter '%s': %s\n", filter.c_str(), e.what());
    return 2;
  }
  std::vector<CaseInfo> cases;
  for (const auto& n : ListDir(data)) {
    if (n.rfind("test_", 0) != 0 || !IsDir(data + "/" + n)) continue;
    if (!std::regex_search(n, re)) continue;
    cases.push_back(Classify(data, n));
  }
  std::vector<CaseResult> res = RunAll(cases, timeout_s, verbose);

  int pass = 0, fail = 0, skip = 0;
  for (const auto& r : res) (r.status == "pass" ? pass : r.status == "fail" ? fail : skip)++;
  int total_default = pass + fail;
  char pct[64];
  snprintf(pct, sizeof pct, "%.1f", total_default ? 100.0 * pass / total_default : 0.0);
  std::string summary = StrCat("conformance: ", pass, " passed, ", fail, " failed, ", skip, " skipped");
  std::string rate = StrCat("default-domain pass rate: ", pct, "% (", pass, " of ", total_default,
                            "; skipped cases are the ai.onnx.ml and training-preview domains)");
  printf("%s\n%s\n", summary.c_str(), rate.c_str());
  if (!report.empty()) WriteReport(report, cases, res, summary + "\n\n" + rate);
  if (!readme.empty() && !WriteReadmeBlock(readme, cases, res, rate)) return 2;
  if (!json.empty()) {
    std::ofstream f(json);
    f << "{\"passed\": " << pass << ", \"failed\": " << fail << ", \"skipped\": " << skip << ", \"cases\": [\n";
    for (size_t i = 0; i < res.size(); ++i)
      f << "  {\"name\": \"" << res[i].name << "\", \"op\": \"" << JsonEscape(cases[i].op) << "\", \"status\": \""
        << res[i].status << "\", \"reason\": \"" << JsonEscape(res[i].reason) << "\"}" << (i + 1 < res.size() ? ",\n" : "\n");
    f << "]}\n";
  }
  if (!write_expected.empty()) {
    std::ofstream f(write_expected);
    f << "# ONNX node tests that fail on Tessera's CPU backend today, one per line with the reason.\n"
         "# The conformance CTest fails when a case outside this list fails or a listed case passes.\n";
    for (size_t i = 0; i < res.size(); ++i)
      if (res[i].status == "fail") f << res[i].name << "  # " << res[i].reason << "\n";
  }
  if (expected.empty()) return 0;
  auto exp = LoadExpected(expected);
  int unexpected_fail = 0, unexpected_pass = 0;
  for (const auto& r : res) {
    bool listed = exp.count(r.name) > 0;
    if (r.status == "fail" && !listed) {
      ++unexpected_fail;
      printf("UNEXPECTED FAILURE %s: %s\n", r.name.c_str(), r.reason.c_str());
    } else if (r.status == "pass" && listed) {
      ++unexpected_pass;
      printf("UNEXPECTED PASS %s (listed as: %s) - remove it from %s\n", r.name.c_str(), exp[r.name].c_str(),
             expected.c_str());
    }
  }
  printf("expected-failures check: %d unexpected failures, %d unexpected passes\n", unexpected_fail,
         unexpected_pass);
  return unexpected_fail + unexpected_pass > 0 ? 1 : 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) { return tessera::Main(argc, argv); }
