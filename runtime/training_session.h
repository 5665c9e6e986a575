// TrainingSession: trains an ONNX forward model (or a graph) through the same
// compiler and backend plugins as inference.
//
// Built from a forward model plus a loss spec: the session lifts the trainable
// initializers to parameters (compiler/autodiff/params.h), appends the loss,
// the backward graph (autodiff.h) and the optimizer (optimizer.h), and
// compiles the result once per batch shape into an ordinary Session whose
// parameters, optimizer moments and BatchNorm running statistics are STATE:
// they live in device buffers that persist across steps and are updated in
// place (Session::DeclareState). A step uploads only the batch and the
// scalars (learning rate, step count) and downloads only the loss.
//
// Eval runs a second, forward-only session (BatchNorm in inference mode,
// Dropout off) that reads the same parameter values: it is refreshed from the
// training state when a step happened since the last eval.
//
// Checkpoints are safetensors files (runtime/safetensors.h): every parameter,
// every moment ("<param>.adam_m", "<param>.adam_v", "<param>.momentum"),
// BatchNorm running statistics, and metadata (step, optimizer config, loss,
// format version). Loading one into a session built from the same model and
// options resumes bit-exactly.
//
// Thread safety: none; one caller at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "compiler/autodiff/lr_schedule.h"
#include "compiler/autodiff/optimizer.h"
#include "graph/graph.h"
#include "graph/status.h"
#include "graph/tensor.h"
#include "runtime/options.h"

namespace tessera {

struct LossSpec {
  // "cross_entropy" (softmax cross-entropy over logits [N, C], int64 labels
  // [N]) or "mse" (target of the output's shape and dtype).
  std::string kind = "cross_entropy";
  std::string output;                 // model output the loss reads; "" = the first output
  std::string label_input = "labels"; // name of the graph input that takes the labels/targets
  float label_smoothing = 0.f;        // cross_entropy only, [0, 1)
  int64_t ignore_index = -100;        // cross_entropy only
};

struct TrainingOptions {
  LossSpec loss;
  autodiff::OptimizerConfig optimizer;  // kind "sgd" | "adamw" ("adam" = adamw with weight_decay 0)
  autodiff::LrScheduleConfig lr;        // base_lr is the learning rate
  // Parameters to train: empty = autodiff::TrainableInitializers(model).
  std::vector<std::string> params;
  // Steps whose gradients are summed (averaged) before one optimizer update;
  // Step() returns after every micro-batch, the update happens on every
  // grad_accum_steps-th call.
  int grad_accum_steps = 1;
  uint64_t seed = 0;  // Dropout masks: seed + step

  // From the validated "training.<key>" settings of a config
  // (SessionOptions::training: optimizer, lr, loss, momentum, nesterov,
  // weight_decay, beta1, beta2, epsilon, grad_clip, label_smoothing,
  // ignore_index, seed, warmup_steps, steps, ...). Loop-only keys (epochs,
  // batch_size, checkpoint, checkpoint_every) are ignored here.
  static Result<TrainingOptions> FromSettings(const std::map<std::string, std::string>& training);
};

struct StepResult {
  double loss = 0;       // this micro-batch's loss
  int64_t step = 0;      // optimizer steps done after this call
  double lr = 0;         // learning rate used by the update (0 when no update ran)
  bool updated = false;  // an optimizer update ran in this call
  double grad_norm = -1; // global gradient norm before clipping, when clipping is on
};

struct EvalResult {
  double loss = 0;
  std::vector<Tensor> outputs;  // the model's outputs, in model order
};

class TrainingSession {
 public:
  ~TrainingSession();

  // `opts` are the usual session options (devices, threads, precision:
  // "bf16" = bf16 compute with f32 master weights, placement, ...).
  static Result<std::unique_ptr<TrainingSession>> FromFile(const std::string& onnx_path, const TrainingOptions& topts,
                                                           const SessionOptions& opts);
  static Result<std::unique_ptr<TrainingSession>> FromGraph(std::unique_ptr<Graph> model,
                                                            const TrainingOptions& topts,
                                                            const SessionOptions& opts);

  // The model's inputs (without the parameters) plus the label input.
  const std::vector<std::string>& batch_inputs() const;
  const std::vector<std::string>& param_names() const;

  // One micro-batch: every batch input by name. Errors name the missing or
  // mistyped input.
  Result<StepResult> Step(const std::vector<std::pair<std::string, const Tensor*>>& batch);
  // Forward only, inference semantics; the label input is optional (loss = NaN without it).
  Result<EvalResult> Eval(const std::vector<std::pair<std::string, const Tensor*>>& batch);

  int64_t step() const;
  // Current values (downloaded from the devices).
  Result<std::vector<std::pair<std::string, Tensor>>> Parameters();
  // Replaces parameter values (e.g. initial weights from elsewhere); names
  // must be parameters, shapes and dtypes must match.
  Status SetParameters(const std::vector<std::pair<std::string, Tensor>>& values);

  Status SaveCheckpoint(const std::string& path);
  // Restores parameters, moments, running statistics and the step. Errors: a
  // missing or extra tensor, a shape/dtype mismatch, another optimizer.
  Status LoadCheckpoint(const std::string& path);
  // The forward model with the trained weights as initializers (BatchNorm in
  // inference mode), loadable by `tessera run`.
  Status ExportOnnx(const std::string& path);

  // (added by tsession) Statistics of the current training Session
  // (Session::StatsJson: runs, memory, and "state": how each state value is
  // updated, "in_place" or "copy"); "{}" before the first Step.
  std::string StatsJson() const;

  struct Impl;

 private:
  TrainingSession();
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera
