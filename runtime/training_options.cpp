// TrainingOptions::FromSettings: the "training.<key>" settings of a
// deployment config (runtime/config.cpp kTrainingKeys) mapped onto
// TrainingOptions.
//
//   optimizer   "sgd" | "adamw" | "adam" (= adamw; weight_decay defaults to 0
//               for "adam" and to 0.01, PyTorch's AdamW default, for "adamw")
//   lr          base learning rate
//   loss        "cross_entropy" (default) | "mse"; the loss reads the model's
//               first output and the labels from input "labels"
//   momentum, nesterov, weight_decay, beta1, beta2, epsilon
//   grad_clip   > 0: clip gradients by global L2 norm
//   label_smoothing, ignore_index   (cross_entropy)
//   seed        Dropout seed
//   warmup_steps, steps   schedule: constant unless warmup_steps > 0, then
//               cosine with linear warmup over `steps` total steps (required)
//   grad_accum_steps      (when present) micro-batches per optimizer update
// Loop-only keys (epochs, batch_size, checkpoint, checkpoint_every) are ignored.
#include <cstdlib>
#include <set>

#include "runtime/training_session.h"

namespace tessera {
namespace {

Result<double> Number(const std::string& key, const std::string& v) {
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0') return InvalidArgument("training.", key, ": '", v, "' is not a number");
  return d;
}

Result<int64_t> Integer(const std::string& key, const std::string& v) {
  char* end = nullptr;
  long long i = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0') return InvalidArgument("training.", key, ": '", v, "' is not an integer");
  return static_cast<int64_t>(i);
}

Result<bool> Bool(const std::string& key, const std::string& v) {
  if (v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  return InvalidArgument("training.", key, ": '", v, "' is not a boolean (true/false)");
}

}  // namespace

Result<TrainingOptions> TrainingOptions::FromSettings(const std::map<std::string, std::string>& training) {
  static const std::set<std::string> kIgnored = {"epochs", "batch_size", "checkpoint", "checkpoint_every"};
  TrainingOptions t;
  bool wd_set = false;
  int64_t warmup = 0, steps = 0;
  for (const auto& [key, v] : training) {
    if (kIgnored.count(key)) continue;
    if (key == "optimizer") {
      if (v != "sgd" && v != "adam" && v != "adamw")
        return InvalidArgument("training.optimizer: '", v, "' is not one of sgd, adam, adamw");
      t.optimizer.kind = v == "sgd" ? "sgd" : "adamw";
    } else if (key == "lr") {
      TSR_ASSIGN_OR_RETURN(t.lr.base_lr, Number(key, v));
    } else if (key == "loss") {
      if (v != "cross_entropy" && v != "mse")
        return InvalidArgument("training.loss: '", v, "' is not one of cross_entropy, mse");
      t.loss.kind = v;
    } else if (key == "momentum") {
      TSR_ASSIGN_OR_RETURN(double d, Number(key, v));
      t.optimizer.momentum = static_cast<float>(d);
    } else if (key == "nesterov") {
      TSR_ASSIGN_OR_RETURN(t.optimizer.nesterov, Bool(key, v));
    } else if (key == "weight_decay") {
      TSR_ASSIGN_OR_RETURN(double d, Number(key, v));
      t.optimizer.weight_decay = static_cast<float>(d);
      wd_set = true;
    } else if (key == "beta1") {
      TSR_ASSIGN_OR_RETURN(double d, Number(key, v));
      t.optimizer.beta1 = static_cast<float>(d);
    } else if (key == "beta2") {
      TSR_ASSIGN_OR_RETURN(double d, Number(key, v));
      t.optimizer.beta2 = static_cast<float>(d);
    } else if (key == "epsilon") {
      TSR_ASSIGN_OR_RETURN(double d, Number(key, v));
      t.optimizer.epsilon = static_cast<float>(d);
    } else if (key == "grad_clip") {
      TSR_ASSIGN_OR_RETURN(double d, Number(key, v));
      t.optimizer.clip_norm = static_cast<float>(d);
    } else if (key == "label_smoothing") {
      TSR_ASSIGN_OR_RETURN(double d, Number(key, v));
      t.loss.label_smoothing = static_cast<float>(d);
    } else if (key == "ignore_index") {
      TSR_ASSIGN_OR_RETURN(t.loss.ignore_index, Integer(key, v));
    } else if (key == "seed") {
      TSR_ASSIGN_OR_RETURN(int64_t s, Integer(key, v));
      t.seed = static_cast<uint64_t>(s);
    } else if (key == "warmup_steps") {
      TSR_ASSIGN_OR_RETURN(warmup, Integer(key, v));
    } else if (key == "steps") {
      TSR_ASSIGN_OR_RETURN(steps, Integer(key, v));
    } else if (key == "grad_accum_steps") {
      TSR_ASSIGN_OR_RETURN(int64_t n, Integer(key, v));
      if (n < 1 || n > 1000000) return InvalidArgument("training.grad_accum_steps: ", n, " is not in [1, 1000000]");
      t.grad_accum_steps = static_cast<int>(n);
    } else {
      return InvalidArgument("training.", key, ": unknown training setting");
    }
  }
  if (t.optimizer.kind == "adamw" && !wd_set)
    t.optimizer.weight_decay = training.count("optimizer") && training.at("optimizer") == "adam" ? 0.f : 0.01f;
  if (warmup > 0) {
    if (steps <= warmup)
      return InvalidArgument("training.warmup_steps = ", warmup, " needs training.steps > warmup_steps (the cosine ",
                             "schedule's length), got ", steps);
    t.lr.kind = "cosine";
    t.lr.warmup_steps = warmup;
    t.lr.total_steps = steps;
  }
  TSR_RETURN_IF_ERROR(autodiff::LrSchedule::Create(t.lr).status());
  return t;
}

}  // namespace tessera
