// `tessera train`: an epoch loop over a TrainingSession (runtime/training_session.h).
//
// Unlike the other commands this one uses the C++ runtime API (there is no C
// training API yet): TrainingSession, TrainingOptions::FromSettings, the data
// loaders of runtime/datasets.h and the ONNX importer to look at the model's
// inputs before training. It links the same libtessera.
//
// Data order is a pure function of (seed, epoch, position), so a run resumed
// from a checkpoint at optimizer step k feeds exactly the batches an
// uninterrupted run would have fed from step k on.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli.h"
#include "graph/graph.h"
#include "graph/onnx/onnx_import.h"
#include "graph/status.h"
#include "graph/tensor.h"
#include "runtime/datasets.h"
#include "runtime/options.h"
#include "runtime/training_session.h"

namespace tessera::cli {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kBenchWarmup = 5;
constexpr int64_t kDefaultEpochs = 1;
constexpr int64_t kDefaultBatch = 32;

const char kTrainUsage[] =
    "usage: tessera train MODEL.onnx [--config FILE] [options]\n"
    "\n"
    "Trains MODEL (a forward ONNX model whose first output, or --loss-output, is\n"
    "the loss's input: logits [batch, classes] for cross-entropy) on .npy data or\n"
    "the bundled digits data set, through a TrainingSession: loss, backward pass\n"
    "and optimizer run on the selected devices; parameters and optimizer state\n"
    "stay there across steps.\n"
    "\n"
    "Each epoch visits the training rows in a new seeded random order (seed =\n"
    "training.seed) in batches of --batch-size; the last partial batch of an\n"
    "epoch is dropped (steps per epoch = rows / batch size, rounded down).\n"
    "Evaluation uses batches of the same size plus one smaller remainder batch.\n"
    "\n"
    "options:\n"
    "  --config FILE      deployment config; FILE alone means FILE#training (its\n"
    "                     [training] table: devices, threads, precision and the\n"
    "                     optimizer/loop keys). Every flag below overrides it\n"
    "  --data SRC         digits (default): scikit-learn's digits, 1442 train rows,\n"
    "                     355 test rows (every 5th of each class), pixels / 16\n"
    "                     to match the model input's rank; or a folder with\n"
    "                     x_train.npy, y_train.npy and optionally x_test.npy,\n"
    "                     y_test.npy (float32/float64 features, integer labels)\n"
    "  --epochs N         passes over the training rows (training.epochs, default 1)\n"
    "  --steps N          stop after N optimizer steps in all (training.steps;\n"
    "                     overrides --epochs; counts resumed steps too)\n"
    "  --batch-size N     rows per step (training.batch_size, default 32)\n"
    "  --lr X             learning rate (training.lr)\n"
    "  --optimizer NAME   sgd, adam or adamw (training.optimizer)\n"
    "  --seed N           shuffling and dropout seed (training.seed, default 0)\n"
    "  --no-shuffle       visit the rows in file order every epoch\n"
    "  --loss-output NAME the model output the loss reads (default: the first)\n"
    "  --device LIST      devices in priority order, e.g. cpu or cuda:0,cpu\n"
    "  --threads N        CPU threads\n"
    "  --precision P      f32 (default) or bf16 (bf16 compute, f32 master weights)\n"
    "  --csv FILE         write step,epoch,loss,lr for every step to FILE\n"
    "  --checkpoint FILE  save a checkpoint (safetensors) at the end, and every\n"
    "                     --checkpoint-every steps; \"{step}\" in FILE is replaced\n"
    "                     by the step number (training.checkpoint)\n"
    "  --checkpoint-every N  (training.checkpoint_every)\n"
    "  --resume FILE      load a checkpoint and continue from its step (same model,\n"
    "                     data, batch size and seed give the same batches)\n"
    "  --export OUT.onnx  write the trained model (inference mode) at the end\n"
    "  --eval-every-epoch report train and test accuracy after every epoch\n"
    "                     (default: only after the last one)\n"
    "  --bench-steps N    no epoch loop: 5 warm-up steps, then N timed steps on\n"
    "                     fixed batches; reports step time min/median/p90/mean\n"
    "  --json             print one JSON object on stdout at the end, nothing else\n"
    "  --quiet            no per-epoch lines, only the summary\n"
    "\n"
    "exit status: 0 ok, 1 failure (runtime error, loss not finite), 2 bad usage,\n"
    "model, config or data\n";

int ExitCodeFor(const Status& st) { return ExitCodeForCreate(static_cast<int32_t>(st.code())); }

int FailStatus(const std::string& what, const Status& st) { return Fail(ExitCodeFor(st), what + ": " + st.message()); }

// Linear interpolation between closest ranks (numpy's default percentile).
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  double pos = p / 100.0 * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

struct StepTimes {
  double min = 0, median = 0, p90 = 0, mean = 0, max = 0;
};

StepTimes Summarize(const std::vector<double>& ms) {
  StepTimes t;
  if (ms.empty()) return t;
  std::vector<double> s = ms;
  std::sort(s.begin(), s.end());
  t.min = s.front();
  t.max = s.back();
  t.median = Percentile(s, 50);
  t.p90 = Percentile(s, 90);
  t.mean = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size());
  return t;
}

json StepTimesJson(const StepTimes& t) {
  return {{"min", t.min}, {"median", t.median}, {"p90", t.p90}, {"mean", t.mean}, {"max", t.max}};
}

json NumberOrNull(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return nullptr;
  return *v;
}

// splitmix64: the shuffling generator (fixed and portable, so a seed means the
// same order everywhere).
uint64_t SplitMix(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The row order of epoch `epoch` (0-based): Fisher-Yates driven by (seed, epoch).
std::vector<int64_t> EpochOrder(int64_t rows, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(rows));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!shuffle) return order;
  uint64_t state = seed * 0x2545f4914f6cdd1dull + static_cast<uint64_t>(epoch) + 1;
  for (int64_t i = rows - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(SplitMix(&state) % static_cast<uint64_t>(i + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

// A numeric tensor converted element by element to `to` (f32 or i64).
Result<Tensor> Convert(const Tensor& t, DType to) {
  TSR_ASSIGN_OR_RETURN(Tensor out, Tensor::Zeros(to, t.dims()));
  const int64_t n = t.num_elements();
  if (to == DType::kF32) {
    float* p = static_cast<float*>(out.mutable_raw());
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(t.GetAsDouble(i));
  } else {
    int64_t* p = static_cast<int64_t*>(out.mutable_raw());
    for (int64_t i = 0; i < n; ++i) p[i] = t.GetAsInt64(i);
  }
  return out;
}

bool IsFloat(DType d) { return d == DType::kF32 || d == DType::kF64 || d == DType::kF16 || d == DType::kBF16; }
bool IsInteger(DType d) {
  return d == DType::kI64 || d == DType::kI32 || d == DType::kI16 || d == DType::kI8 || d == DType::kU8 ||
         d == DType::kU16 || d == DType::kU32 || d == DType::kU64;
}

// What the model looks like from the trainer's side.
struct ModelInfo {
  std::string feature_input;        // the one non-label runtime input
  TensorType feature_type;
  std::string batch_symbol;          // "" when dim 0 is not symbolic
  int64_t fixed_batch = -1;          // dim 0 when it is a known number
  std::string loss_output;           // resolved name
  std::vector<std::string> outputs;  // model order
  size_t loss_output_index = 0;
};

int InspectModel(const std::string& path, const TrainingOptions& topts, ModelInfo* info) {
  auto g = ImportOnnxFile(path);
  if (!g.ok()) return FailStatus(path, g.status());
  const Graph& graph = **g;
  std::vector<std::string> features;
  for (const Value* v : graph.RuntimeInputs())
    if (v->name() != topts.loss.label_input) features.push_back(v->name());
  if (features.size() != 1) {
    std::string list;
    for (const auto& f : features) list += (list.empty() ? "" : ", ") + f;
    return Fail(kExitUsage, path + ": the trainer feeds exactly one feature input, the model has " +
                                std::to_string(features.size()) + (list.empty() ? "" : " (" + list + ")"));
  }
  info->feature_input = features[0];
  const Value* in = graph.FindValue(features[0]);
  info->feature_type = in->type();
  if (!IsFloat(in->dtype()))
    return Fail(kExitUsage, path + ": feature input '" + features[0] + "' has dtype " + DTypeName(in->dtype()) +
                                "; the trainer feeds float data");
  const Shape& s = in->shape();
  if (!s.has_rank() || s.rank() < 1)
    return Fail(kExitUsage, path + ": feature input '" + features[0] + "' needs a batch dimension (dim 0), its shape is " +
                                s.ToString());
  if (s.dim(0).is_known())
    info->fixed_batch = s.dim(0).value;
  else
    info->batch_symbol = s.dim(0).symbol;
  for (const Value* o : graph.outputs()) info->outputs.push_back(o->name());
  if (info->outputs.empty()) return Fail(kExitUsage, path + ": the model has no outputs for the loss to read");
  info->loss_output = topts.loss.output.empty() ? info->outputs[0] : topts.loss.output;
  auto it = std::find(info->outputs.begin(), info->outputs.end(), info->loss_output);
  if (it == info->outputs.end()) {
    std::string list;
    for (const auto& o : info->outputs) list += (list.empty() ? "" : ", ") + o;
    return Fail(kExitUsage, path + ": the model has no output '" + info->loss_output + "' for the loss (outputs: " +
                                list + ")");
  }
  info->loss_output_index = static_cast<size_t>(it - info->outputs.begin());
  const Value* out = graph.FindValue(info->loss_output);
  if (topts.loss.kind == "cross_entropy" && out && out->shape().has_rank() && out->shape().rank() != 2)
    return Fail(kExitUsage, path + ": cross-entropy reads logits [batch, classes], but output '" +
                                info->loss_output + "' has shape " + out->shape().ToString());
  return kExitOk;
}

struct Data {
  std::string source;  // "digits" or the folder
  Tensor x_train, y_train, x_test, y_test;
  bool has_test = false;
};

// Reshapes x ([N, ...]) to the model's per-row shape when only the grouping differs.
int FitFeatures(const std::string& what, const ModelInfo& m, Tensor* x) {
  const Shape& s = m.feature_type.shape;
  bool shape_ok = x->rank() == s.rank();
  for (int d = 1; shape_ok && d < s.rank(); ++d) shape_ok = !s.dim(d).is_known() || s.dim(d).value == x->dims()[d];
  if (shape_ok) return kExitOk;
  // Same element count per row and every model dim known: reshape (e.g. [N, 64] -> [N, 1, 8, 8]).
  int64_t per_row = 1;
  std::vector<int64_t> dims = {x->dims()[0]};
  for (int d = 1; d < s.rank(); ++d) {
    if (!s.dim(d).is_known()) {
      per_row = -1;
      break;
    }
    per_row *= s.dim(d).value;
    dims.push_back(s.dim(d).value);
  }
  const int64_t rows = x->dims()[0];
  if (per_row > 0 && rows > 0 && x->num_elements() == rows * per_row) {
    auto r = Tensor::FromBytes(x->dtype(), dims, x->raw(), x->nbytes());
    if (r.ok()) {
      *x = std::move(r).value();
      return kExitOk;
    }
  }
  return Fail(kExitUsage, what + " has shape " + DimsString(x->dims()) + ", the model input '" + m.feature_input +
                              "' expects " + s.ToString());
}

int CheckPair(const std::string& xname, const std::string& yname, const ModelInfo& m, const std::string& loss_kind,
              Tensor* x, Tensor* y) {
  if (x->rank() < 1 || x->dims()[0] == 0) return Fail(kExitUsage, xname + " has no rows (shape " + DimsString(x->dims()) + ")");
  if (!IsFloat(x->dtype()))
    return Fail(kExitUsage, xname + " has dtype " + std::string(DTypeName(x->dtype())) +
                                "; features must be float32 or float64");
  if (x->dtype() != DType::kF32) {
    auto c = Convert(*x, DType::kF32);
    if (!c.ok()) return FailStatus(xname, c.status());
    *x = std::move(c).value();
  }
  if (int rc = FitFeatures(xname, m, x)) return rc;
  if (y->rank() < 1 || y->dims()[0] != x->dims()[0])
    return Fail(kExitUsage, yname + " has shape " + DimsString(y->dims()) + " but " + xname + " has " +
                                std::to_string(x->dims()[0]) + " rows");
  if (loss_kind == "cross_entropy") {
    if (!IsInteger(y->dtype()) || y->rank() != 1)
      return Fail(kExitUsage, yname + " has dtype " + std::string(DTypeName(y->dtype())) + " and shape " +
                                  DimsString(y->dims()) +
                                  "; cross-entropy labels must be integer class indices of shape [N]");
    if (y->dtype() != DType::kI64) {
      auto c = Convert(*y, DType::kI64);
      if (!c.ok()) return FailStatus(yname, c.status());
      *y = std::move(c).value();
    }
  } else {
    if (!IsFloat(y->dtype()))
      return Fail(kExitUsage, yname + " has dtype " + std::string(DTypeName(y->dtype())) + "; " + loss_kind +
                                  " targets must be float");
    if (y->dtype() != DType::kF32) {
      auto c = Convert(*y, DType::kF32);
      if (!c.ok()) return FailStatus(yname, c.status());
      *y = std::move(c).value();
    }
  }
  return kExitOk;
}

int LoadData(const std::string& src, const ModelInfo& m, const std::string& loss_kind, Data* d) {
  d->source = src;
  if (src == "digits") {
    if (loss_kind != "cross_entropy")
      return Fail(kExitUsage, "--data digits has class labels; it needs loss \"cross_entropy\", not \"" + loss_kind + "\"");
    const bool image = m.feature_type.shape.rank() == 4;
    auto train = LoadDigits("train", image);
    if (!train.ok()) return FailStatus("--data digits", train.status());
    auto test = LoadDigits("test", image);
    if (!test.ok()) return FailStatus("--data digits", test.status());
    d->x_train = train->features;
    d->y_train = train->labels;
    d->x_test = test->features;
    d->y_test = test->labels;
    d->has_test = true;
  } else {
    std::error_code ec;
    if (!std::filesystem::is_directory(src, ec))
      return Fail(kExitUsage, "--data: '" + src + "' is neither \"digits\" nor a folder");
    auto path = [&](const char* f) { return (std::filesystem::path(src) / f).string(); };
    for (const char* f : {"x_train.npy", "y_train.npy"})
      if (!std::filesystem::exists(path(f), ec))
        return Fail(kExitUsage, "--data: missing " + path(f) + " (the folder needs x_train.npy and y_train.npy)");
    bool tx = std::filesystem::exists(path("x_test.npy"), ec), ty = std::filesystem::exists(path("y_test.npy"), ec);
    if (tx != ty)
      return Fail(kExitUsage, "--data: " + path(tx ? "x_test.npy" : "y_test.npy") + " exists but " +
                                  path(tx ? "y_test.npy" : "x_test.npy") + " does not");
    auto load = [&](const char* f, Tensor* out) -> int {
      auto t = LoadNpy(path(f));
      if (!t.ok()) return FailStatus("--data", t.status());
      *out = std::move(t).value();
      return kExitOk;
    };
    if (int rc = load("x_train.npy", &d->x_train)) return rc;
    if (int rc = load("y_train.npy", &d->y_train)) return rc;
    if (tx) {
      if (int rc = load("x_test.npy", &d->x_test)) return rc;
      if (int rc = load("y_test.npy", &d->y_test)) return rc;
      d->has_test = true;
    }
  }
  auto name = [&](const char* f) {
    return src == "digits" ? std::string("digits ") + f : (std::filesystem::path(src) / (std::string(f) + ".npy")).string();
  };
  if (int rc = CheckPair(name("x_train"), name("y_train"), m, loss_kind, &d->x_train, &d->y_train)) return rc;
  if (d->has_test)
    if (int rc = CheckPair(name("x_test"), name("y_test"), m, loss_kind, &d->x_test, &d->y_test)) return rc;
  return kExitOk;
}

struct EvalStats {
  std::optional<double> loss;      // mean over rows
  std::optional<double> accuracy;  // cross-entropy only, in [0, 1]
  int64_t rows = 0;
};

// Forward passes over every row of (x, y) in batches of `batch` (a smaller
// last batch; with a fixed model batch the last one is filled by wrapping
// and only its real rows count).
Status Evaluate(TrainingSession& s, const ModelInfo& m, const std::string& label_input, bool classify,
                const Tensor& x, const Tensor& y, int64_t batch, EvalStats* out) {
  const int64_t n = x.dims()[0];
  double loss_sum = 0;
  int64_t correct = 0;
  bool loss_ok = true;
  for (int64_t begin = 0; begin < n; begin += batch) {
    const int64_t real = std::min(batch, n - begin);
    const int64_t fed = m.fixed_batch > 0 ? m.fixed_batch : real;
    TSR_ASSIGN_OR_RETURN(Tensor bx, TakeRows(x, begin, fed));
    TSR_ASSIGN_OR_RETURN(Tensor by, TakeRows(y, begin, fed));
    TSR_ASSIGN_OR_RETURN(EvalResult r, s.Eval({{m.feature_input, &bx}, {label_input, &by}}));
    if (std::isfinite(r.loss))
      loss_sum += r.loss * static_cast<double>(real);
    else
      loss_ok = false;
    if (classify) {
      if (m.loss_output_index >= r.outputs.size())
        return Internal("eval returned ", r.outputs.size(), " outputs, expected output '", m.loss_output, "'");
      const Tensor& logits = r.outputs[m.loss_output_index];
      if (logits.rank() != 2 || logits.dims()[0] != fed)
        return InvalidArgument("output '", m.loss_output, "' has shape ", DimsString(logits.dims()),
                               "; expected logits [", fed, ", classes]");
      const int64_t classes = logits.dims()[1];
      for (int64_t r0 = 0; r0 < real; ++r0) {
        int64_t best = 0;
        double best_v = -INFINITY;
        for (int64_t c = 0; c < classes; ++c) {
          double v = logits.GetAsDouble(r0 * classes + c);
          if (v > best_v) best_v = v, best = c;
        }
        if (best == by.GetAsInt64(r0)) ++correct;
      }
    }
  }
  out->rows = n;
  if (loss_ok && n > 0) out->loss = loss_sum / static_cast<double>(n);
  if (classify && n > 0) out->accuracy = static_cast<double>(correct) / static_cast<double>(n);
  return Status::Ok();
}

std::string Percent(std::optional<double> a) {
  if (!a) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", *a * 100.0);
  return buf;
}

std::string CheckpointPath(const std::string& pattern, int64_t step) {
  std::string p = pattern;
  size_t at = p.find("{step}");
  if (at != std::string::npos) p.replace(at, 6, std::to_string(step));
  return p;
}

int64_t SettingInt(const std::map<std::string, std::string>& t, const std::string& key, int64_t fallback) {
  auto it = t.find(key);
  if (it == t.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  return end && *end == '\0' ? static_cast<int64_t>(v) : fallback;
}

// Session options: --config (FILE = FILE#training) first, then the flags.
int BuildTrainOptions(const Args& args, SessionOptions* o) {
  auto set = [&](const std::string& key, const std::string& value, const std::string& flag) -> int {
    Status st = o->Set(key, value);
    if (!st.ok()) return Fail(kExitUsage, flag + ": " + st.message());
    return kExitOk;
  };
  int rc;
  if (args.Has("--config")) {
    std::string cfg = args.Get("--config");
    auto ends = [&](const std::string& suf) {
      return cfg.size() > suf.size() && cfg.compare(cfg.size() - suf.size(), suf.size(), suf) == 0;
    };
    if (!ends("#training") && !ends("#inference")) cfg += "#training";
    if ((rc = set("config", cfg, "--config"))) return rc;
  }
  if (args.Has("--device") && (rc = set("devices", args.Get("--device"), "--device"))) return rc;
  if (args.Has("--threads")) {
    int64_t n = 0;
    if ((rc = ParseInt("--threads", args.Get("--threads"), 1, &n))) return rc;
    if ((rc = set("threads", std::to_string(n), "--threads"))) return rc;
  }
  if (args.Has("--precision") && (rc = set("precision", args.Get("--precision"), "--precision"))) return rc;
  // Loop and optimizer flags go through the config's own checks (training.<key>).
  const std::pair<const char*, const char*> kTrainingFlags[] = {
      {"--epochs", "epochs"},         {"--steps", "steps"},       {"--batch-size", "batch_size"},
      {"--lr", "lr"},                 {"--optimizer", "optimizer"}, {"--seed", "seed"},
      {"--checkpoint", "checkpoint"}, {"--checkpoint-every", "checkpoint_every"}};
  for (const auto& [flag, key] : kTrainingFlags)
    if (args.Has(flag) && (rc = set(std::string("training.") + key, args.Get(flag), flag))) return rc;
  return kExitOk;
}

// Gathers one training batch: rows order[pos*B, pos*B + B).
Status MakeBatch(const Data& d, const std::vector<int64_t>& order, int64_t pos, int64_t batch, Tensor* bx,
                 Tensor* by) {
  std::vector<int64_t> idx(order.begin() + pos * batch, order.begin() + (pos + 1) * batch);
  TSR_ASSIGN_OR_RETURN(*bx, GatherRows(d.x_train, idx));
  TSR_ASSIGN_OR_RETURN(*by, GatherRows(d.y_train, idx));
  return Status::Ok();
}

}  // namespace

int CmdTrain(int argc, char** argv) {
  std::vector<FlagSpec> specs = {
      {"--config"},      {"--data"},          {"--epochs"},        {"--steps"},           {"--batch-size"},
      {"--lr"},          {"--optimizer"},     {"--seed"},          {"--no-shuffle", false}, {"--loss-output"},
      {"--device"},      {"--threads"},       {"--precision"},     {"--csv"},             {"--checkpoint"},
      {"--checkpoint-every"}, {"--resume"},   {"--export"},        {"--eval-every-epoch", false},
      {"--bench-steps"}, {"--json", false},   {"--quiet", false}};
  Args args;
  if (int rc = ParseArgs("train", argc, argv, 2, specs, &args)) return rc;
  if (args.help) {
    std::fputs(kTrainUsage, stdout);
    return kExitOk;
  }
  if (args.positional.size() != 1)
    return Fail(kExitUsage, "train: expected one MODEL, got " + std::to_string(args.positional.size()) +
                                " (see 'tessera train --help')");
  const std::string model = args.positional[0];
  const bool as_json = args.Has("--json");
  const bool quiet = args.Has("--quiet") || as_json;
  int rc;
  int64_t bench_steps = 0;
  if (args.Has("--bench-steps") && (rc = ParseInt("--bench-steps", args.Get("--bench-steps"), 1, &bench_steps)))
    return rc;
  if (bench_steps > 0)
    for (const char* f : {"--resume", "--csv", "--checkpoint", "--checkpoint-every", "--export", "--eval-every-epoch"})
      if (args.Has(f)) return Fail(kExitUsage, std::string("train: --bench-steps cannot be combined with ") + f);
  if ((rc = CheckModelPath(model))) return rc;

  // ---- options ----
  SessionOptions opts;
  if ((rc = BuildTrainOptions(args, &opts))) return rc;
  auto topts_r = TrainingOptions::FromSettings(opts.training);
  if (!topts_r.ok()) return Fail(kExitUsage, "training settings: " + topts_r.status().message());
  TrainingOptions topts = std::move(topts_r).value();
  if (args.Has("--loss-output")) topts.loss.output = args.Get("--loss-output");
  const int64_t batch = SettingInt(opts.training, "batch_size", kDefaultBatch);
  const int64_t epochs_setting = SettingInt(opts.training, "epochs", kDefaultEpochs);
  const int64_t steps_setting = SettingInt(opts.training, "steps", 0);
  const uint64_t seed = static_cast<uint64_t>(SettingInt(opts.training, "seed", 0));
  const int64_t ckpt_every = SettingInt(opts.training, "checkpoint_every", 0);
  const std::string ckpt_pattern = opts.training.count("checkpoint") ? opts.training.at("checkpoint") : "";
  if (ckpt_every > 0 && ckpt_pattern.empty())
    return Fail(kExitUsage, "train: --checkpoint-every needs --checkpoint FILE (or training.checkpoint)");
  const bool shuffle = !args.Has("--no-shuffle");

  // ---- model and data ----
  ModelInfo mi;
  if ((rc = InspectModel(model, topts, &mi))) return rc;
  if (mi.fixed_batch > 0 && mi.fixed_batch != batch)
    return Fail(kExitUsage, model + ": input '" + mi.feature_input + "' has a fixed batch of " +
                                std::to_string(mi.fixed_batch) + ", but the batch size is " + std::to_string(batch) +
                                " (set --batch-size " + std::to_string(mi.fixed_batch) + ")");
  // The loop's batch size binds the batch dim; a config binding would pin it.
  if (!mi.batch_symbol.empty()) opts.dims.erase(mi.batch_symbol);
  const bool classify = topts.loss.kind == "cross_entropy";
  Data data;
  if ((rc = LoadData(args.Get("--data", "digits"), mi, topts.loss.kind, &data))) return rc;
  const int64_t rows = data.x_train.dims()[0];
  if (batch > rows)
    return Fail(kExitUsage, "train: batch size " + std::to_string(batch) + " is larger than the training set (" +
                                std::to_string(rows) + " rows)");
  const int64_t steps_per_epoch = rows / batch;
  const int accum = std::max(1, topts.grad_accum_steps);

  // ---- session ----
  auto t_create = Clock::now();
  auto sr = TrainingSession::FromFile(model, topts, opts);
  if (!sr.ok()) return FailStatus(model, sr.status());
  std::unique_ptr<TrainingSession> session = std::move(sr).value();
  const double create_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_create).count();
  const std::string& label_input = topts.loss.label_input;

  // ---- --bench-steps: fixed batches, warm-up, timed steps ----
  if (bench_steps > 0) {
    const int64_t distinct = std::min<int64_t>(8, std::max<int64_t>(1, steps_per_epoch));
    std::vector<Tensor> bx(static_cast<size_t>(distinct)), by(static_cast<size_t>(distinct));
    for (int64_t k = 0; k < distinct; ++k) {
      auto x = TakeRows(data.x_train, k * batch, batch);
      auto y = TakeRows(data.y_train, k * batch, batch);
      if (!x.ok()) return FailStatus("batch", x.status());
      if (!y.ok()) return FailStatus("batch", y.status());
      bx[static_cast<size_t>(k)] = std::move(x).value();
      by[static_cast<size_t>(k)] = std::move(y).value();
    }
    std::vector<double> ms;
    double last_loss = 0;
    for (int64_t i = 0; i < kBenchWarmup + bench_steps; ++i) {
      size_t k = static_cast<size_t>(i % distinct);
      auto t0 = Clock::now();
      auto r = session->Step({{mi.feature_input, &bx[k]}, {label_input, &by[k]}});
      auto t1 = Clock::now();
      if (!r.ok()) return FailStatus("step " + std::to_string(i + 1), r.status());
      last_loss = r->loss;
      if (i >= kBenchWarmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    StepTimes t = Summarize(ms);
    const double sps = t.mean > 0 ? 1000.0 * static_cast<double>(batch) / t.mean : 0;
    if (as_json) {
      json j;
      j["model"] = model;
      j["mode"] = "bench";
      j["batch_size"] = batch;
      j["threads"] = opts.threads;
      j["precision"] = opts.precision;
      j["optimizer"] = topts.optimizer.kind;
      j["warmup_steps"] = kBenchWarmup;
      j["bench_steps"] = bench_steps;
      j["create_ms"] = create_ms;
      j["step_ms"] = StepTimesJson(t);
      j["steps_ms"] = ms;
      j["samples_per_s"] = sps;
      j["final_loss"] = NumberOrNull(last_loss);
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("model:        %s\n", model.c_str());
      std::printf("setup:        %s (session creation; the first step compiles)\n", FormatMs(create_ms).c_str());
      std::printf("steps:        %lld warm-up, %lld timed, batch %lld, optimizer %s\n",
                  static_cast<long long>(kBenchWarmup), static_cast<long long>(bench_steps),
                  static_cast<long long>(batch), topts.optimizer.kind.c_str());
      std::printf("step time:    min %s  median %s  p90 %s  mean %s\n", FormatMs(t.min).c_str(),
                  FormatMs(t.median).c_str(), FormatMs(t.p90).c_str(), FormatMs(t.mean).c_str());
      std::printf("throughput:   %.1f samples/s\n", sps);
      std::printf("last loss:    %.6g\n", last_loss);
    }
    return kExitOk;
  }

  // ---- resume ----
  std::optional<int64_t> resumed_from;
  if (args.Has("--resume")) {
    const std::string ck = args.Get("--resume");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(ck, ec)) return Fail(kExitUsage, "--resume: checkpoint not found: " + ck);
    Status st = session->LoadCheckpoint(ck);
    if (!st.ok()) return FailStatus("--resume " + ck, st);
    resumed_from = session->step();
  }
  const int64_t total_steps = steps_setting > 0 ? steps_setting : epochs_setting * steps_per_epoch / accum;
  const int64_t total_batches = total_steps * accum;
  const int64_t total_epochs = (total_batches + steps_per_epoch - 1) / steps_per_epoch;
  int64_t batch_index = session->step() * accum;  // batches consumed so far

  // ---- CSV ----
  struct FileCloser {
    void operator()(FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<FILE, FileCloser> csv;
  if (args.Has("--csv")) {
    const std::string path = args.Get("--csv");
    csv.reset(std::fopen(path.c_str(), "w"));
    if (!csv) return Fail(kExitUsage, "--csv: cannot write " + path + ": " + std::strerror(errno));
    std::fprintf(csv.get(), "step,epoch,loss,lr\n");
  }

  const bool tty = !quiet && isatty(fileno(stdout));
  if (!quiet) {
    std::printf("model %s: input '%s' %s, loss %s on '%s', optimizer %s lr %g\n", model.c_str(),
                mi.feature_input.c_str(), mi.feature_type.shape.ToString().c_str(), topts.loss.kind.c_str(),
                mi.loss_output.c_str(), topts.optimizer.kind.c_str(), topts.lr.base_lr);
    std::printf("data %s: %lld train rows%s; batch %lld, %lld steps/epoch%s\n", data.source.c_str(),
                static_cast<long long>(rows),
                data.has_test ? (", " + std::to_string(data.y_test.dims()[0]) + " test rows").c_str() : "",
                static_cast<long long>(batch), static_cast<long long>(steps_per_epoch),
                rows % batch ? (" (the last " + std::to_string(rows % batch) + " rows of each epoch are dropped)").c_str()
                             : "");
    if (resumed_from) std::printf("resumed at step %lld\n", static_cast<long long>(*resumed_from));
    std::fflush(stdout);
  }

  std::vector<double> step_ms;
  std::vector<int64_t> order;
  int64_t order_epoch = -1;
  double last_loss = NAN;
  double train_seconds = 0;
  int64_t trained_rows = 0;
  std::string last_ckpt;
  int64_t last_ckpt_step = -1;
  json history = json::array();
  auto save_checkpoint = [&](int64_t step) -> int {
    std::string p = CheckpointPath(ckpt_pattern, step);
    Status st = session->SaveCheckpoint(p);
    if (!st.ok()) return FailStatus("checkpoint " + p, st);
    last_ckpt = p;
    last_ckpt_step = step;
    return kExitOk;
  };
  std::optional<double> train_acc, test_acc, test_loss;
  auto evaluate_all = [&]() -> int {
    EvalStats tr, te;
    Status st = Evaluate(*session, mi, label_input, classify, data.x_train, data.y_train, batch, &tr);
    if (!st.ok()) return FailStatus("evaluation on the training rows", st);
    train_acc = tr.accuracy;
    if (data.has_test) {
      st = Evaluate(*session, mi, label_input, classify, data.x_test, data.y_test, batch, &te);
      if (!st.ok()) return FailStatus("evaluation on the test rows", st);
      test_acc = te.accuracy;
      test_loss = te.loss;
    }
    return kExitOk;
  };

  while (batch_index < total_batches) {
    const int64_t epoch = batch_index / steps_per_epoch;
    double epoch_loss_sum = 0;
    int64_t epoch_batches = 0;
    auto epoch_start = Clock::now();
    auto last_bar = epoch_start;
    if (order_epoch != epoch) {
      order = EpochOrder(rows, seed, epoch, shuffle);
      order_epoch = epoch;
    }
    for (int64_t pos = batch_index % steps_per_epoch; pos < steps_per_epoch && batch_index < total_batches;
         ++pos, ++batch_index) {
      Tensor bx, by;
      Status st = MakeBatch(data, order, pos, batch, &bx, &by);
      if (!st.ok()) return FailStatus("batch", st);
      auto t0 = Clock::now();
      auto r = session->Step({{mi.feature_input, &bx}, {label_input, &by}});
      auto t1 = Clock::now();
      if (!r.ok()) return FailStatus("step " + std::to_string(session->step() + 1), r.status());
      step_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      last_loss = r->loss;
      if (!std::isfinite(r->loss))
        return Fail(kExitFailure, "the loss is " + std::string(std::isnan(r->loss) ? "NaN" : "infinite") +
                                      " at step " + std::to_string(r->step) + " (epoch " + std::to_string(epoch + 1) +
                                      "); try a lower --lr");
      epoch_loss_sum += r->loss;
      ++epoch_batches;
      trained_rows += batch;
      if (csv) std::fprintf(csv.get(), "%lld,%lld,%.9g,%.9g\n", static_cast<long long>(r->step),
                            static_cast<long long>(epoch + 1), r->loss, r->lr);
      if (r->updated && ckpt_every > 0 && r->step % ckpt_every == 0)
        if ((rc = save_checkpoint(r->step))) return rc;
      if (tty) {
        auto now = Clock::now();
        if (now - last_bar > std::chrono::milliseconds(100)) {
          last_bar = now;
          const int width = 24;
          int filled = static_cast<int>(width * (pos + 1) / steps_per_epoch);
          double secs = std::chrono::duration<double>(now - epoch_start).count();
          std::printf("\repoch %lld/%lld [%s%s] %lld/%lld  loss %.4f  %.0f samples/s   ",
                      static_cast<long long>(epoch + 1), static_cast<long long>(total_epochs),
                      std::string(static_cast<size_t>(filled), '#').c_str(),
                      std::string(static_cast<size_t>(width - filled), '.').c_str(), static_cast<long long>(pos + 1),
                      static_cast<long long>(steps_per_epoch), epoch_loss_sum / static_cast<double>(epoch_batches),
                      secs > 0 ? static_cast<double>(epoch_batches * batch) / secs : 0.0);
          std::fflush(stdout);
        }
      }
    }
    const double epoch_secs = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    train_seconds += epoch_secs;
    const bool last_epoch = batch_index >= total_batches;
    const bool eval_now = args.Has("--eval-every-epoch") || last_epoch;
    if (eval_now && (rc = evaluate_all())) return rc;
    const double mean_loss = epoch_batches ? epoch_loss_sum / static_cast<double>(epoch_batches) : NAN;
    const double sps = epoch_secs > 0 ? static_cast<double>(epoch_batches * batch) / epoch_secs : 0;
    json h = {{"epoch", epoch + 1}, {"step", session->step()}, {"loss", NumberOrNull(mean_loss)},
              {"samples_per_s", sps}};
    if (eval_now) {
      h["train_accuracy"] = NumberOrNull(train_acc);
      h["test_accuracy"] = NumberOrNull(test_acc);
    }
    history.push_back(h);
    if (!quiet) {
      std::string line = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(total_epochs) + "  step " +
                         std::to_string(session->step());
      char buf[128];
      std::snprintf(buf, sizeof buf, "  loss %.4f", mean_loss);
      line += buf;
      if (eval_now && classify) line += "  train acc " + Percent(train_acc);
      std::snprintf(buf, sizeof buf, "  %.0f samples/s", sps);
      line += buf;
      if (eval_now && data.has_test) line += classify ? "  test acc " + Percent(test_acc) : "";
      if (eval_now && data.has_test && test_loss) {
        std::snprintf(buf, sizeof buf, "  test loss %.4f", *test_loss);
        line += buf;
      }
      std::printf("%s%s\n", tty ? "\r\033[K" : "", line.c_str());
      std::fflush(stdout);
    }
  }
  if (csv) {
    if (std::fflush(csv.get()) != 0) return Fail(kExitFailure, "--csv: write failed: " + std::string(std::strerror(errno)));
  }
  // Resumed at (or past) the end: nothing ran, still report the model's accuracy.
  if (history.empty() && (rc = evaluate_all())) return rc;

  // ---- end: checkpoint, export ----
  if (!ckpt_pattern.empty() && last_ckpt_step != session->step())
    if ((rc = save_checkpoint(session->step()))) return rc;
  std::string exported;
  if (args.Has("--export")) {
    exported = args.Get("--export");
    Status st = session->ExportOnnx(exported);
    if (!st.ok()) return FailStatus("--export " + exported, st);
  }

  const StepTimes t = Summarize(step_ms);
  const double samples_per_s = train_seconds > 0 ? static_cast<double>(trained_rows) / train_seconds : 0;
  if (as_json) {
    json j;
    j["model"] = model;
    j["data"] = data.source;
    j["train_rows"] = rows;
    j["test_rows"] = data.has_test ? json(data.y_test.dims()[0]) : json(nullptr);
    j["loss_kind"] = topts.loss.kind;
    j["optimizer"] = topts.optimizer.kind;
    j["lr"] = topts.lr.base_lr;
    j["batch_size"] = batch;
    j["steps_per_epoch"] = steps_per_epoch;
    j["epochs"] = total_epochs;
    j["steps"] = session->step();
    j["steps_run"] = static_cast<int64_t>(step_ms.size());
    j["resumed_from"] = resumed_from ? json(*resumed_from) : json(nullptr);
    j["final_loss"] = NumberOrNull(last_loss);
    j["epoch_loss"] = history.empty() ? json(nullptr) : history.back()["loss"];
    j["train_accuracy"] = NumberOrNull(train_acc);
    j["test_accuracy"] = NumberOrNull(test_acc);
    j["test_loss"] = NumberOrNull(test_loss);
    j["samples_per_s"] = samples_per_s;
    j["train_seconds"] = train_seconds;
    j["create_ms"] = create_ms;
    j["step_ms"] = StepTimesJson(t);
    j["checkpoint"] = last_ckpt.empty() ? json(nullptr) : json(last_ckpt);
    j["export"] = exported.empty() ? json(nullptr) : json(exported);
    j["csv"] = args.Has("--csv") ? json(args.Get("--csv")) : json(nullptr);
    j["history"] = history;
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  if (step_ms.empty()) {
    std::printf("nothing to train: at step %lld of %lld\n", static_cast<long long>(session->step()),
                static_cast<long long>(total_steps));
    std::printf("train acc %s%s\n", Percent(train_acc).c_str(),
                data.has_test ? (", test acc " + Percent(test_acc)).c_str() : "");
  } else {
    std::printf("trained %lld steps (%lld this run, %lld samples) in %.2f s: %.0f samples/s, step median %s\n",
                static_cast<long long>(session->step()), static_cast<long long>(step_ms.size()),
                static_cast<long long>(trained_rows), train_seconds, samples_per_s, FormatMs(t.median).c_str());
    std::printf("final loss %.6g, train acc %s%s\n", last_loss, Percent(train_acc).c_str(),
                data.has_test ? (", test acc " + Percent(test_acc)).c_str() : "");
  }
  if (!last_ckpt.empty()) std::printf("checkpoint: %s\n", last_ckpt.c_str());
  if (!exported.empty()) std::printf("exported:   %s\n", exported.c_str());
  return kExitOk;
}

}  // namespace tessera::cli
