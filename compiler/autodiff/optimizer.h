// The optimizer pass: appends one update op per parameter (tessera.SGDUpdate
// or tessera.AdamWUpdate), optionally after tessera.GlobalNormClip over all
// gradients, to a graph that BuildGradientGraph has differentiated.
//
// State model (what a TrainingSession binds): every parameter and optimizer
// moment is a graph INPUT that is read once per step, and its updated value is
// a graph OUTPUT. `OptimizerInfo::state` pairs them (input -> output). A
// training session keeps each pair in ONE persistent buffer: the update
// kernels are in-place safe (backends/cpu/kernels_training.cpp), so the
// output may be bound to the input's buffer. A session without that aliasing
// can equally copy output -> input after each step (this is what the tests do).
// Moments start at zero (the session allocates and zero-fills them).
//
// Per step the caller feeds `lr_input` (a scalar of the parameters' dtype,
// e.g. from LrSchedule::Rate(step)) and, for AdamW, `step_input` (the 1-based
// step count, same dtype).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "compiler/autodiff/autodiff.h"

namespace tessera::autodiff {

struct OptimizerConfig {
  std::string kind = "sgd";  // "sgd" | "adamw"
  // sgd
  float momentum = 0.f;
  float dampening = 0.f;
  bool nesterov = false;
  // adamw
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  // both (AdamW: decoupled decay p *= 1 - lr * weight_decay; SGD: added to the gradient)
  float weight_decay = 0.f;
  // > 0: clip the gradients by their global L2 norm first (PyTorch's clip_grad_norm_).
  float clip_norm = 0.f;
};

struct StateBinding {
  std::string input;   // graph input read by the step
  std::string output;  // graph output holding its new value
};

struct OptimizerInfo {
  std::string lr_input;
  std::string step_input;                   // "" for SGD
  std::vector<StateBinding> state;          // parameters first (in GradientInfo order), then moments
  std::map<std::string, std::vector<std::string>> moments_of;  // param -> its moment inputs
  std::string grad_norm;                    // total gradient norm output when clip_norm > 0, else ""
};

// Every parameter must be a non-constant graph input of f32 or f64 (all the
// same dtype). Names of new values: "<param>.momentum", "<param>.adam_m",
// "<param>.adam_v", "<name>.next" for updated state, "optimizer.lr",
// "optimizer.step", "optimizer.grad_norm" (made unique when taken).
Result<OptimizerInfo> AppendOptimizer(Graph& g, const GradientInfo& grads, const OptimizerConfig& cfg);

}  // namespace tessera::autodiff
