// Learning-rate schedules: a small host-side object the training loop asks
// for the rate of each step, then feeds to SGDUpdate/AdamWUpdate's `lr`
// input. Steps count from 0 (the first optimizer step is step 0).
//
//   constant: lr(t) = base
//   step:     lr(t) = base * gamma^floor(t / step_size)
//   cosine:   warmup for t < warmup_steps: base * (t + 1) / warmup_steps;
//             then base_min + (base - base_min) * (1 + cos(pi * p)) / 2 with
//             p = min(1, (t - warmup_steps) / max(1, total_steps - warmup_steps)).
// Immutable after Create; Rate() is thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "graph/status.h"

namespace tessera::autodiff {

struct LrScheduleConfig {
  std::string kind = "constant";  // "constant" | "step" | "cosine"
  double base_lr = 1e-3;
  // step
  int64_t step_size = 1;
  double gamma = 0.1;
  // cosine
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // required (> warmup_steps) for cosine
  double min_lr = 0.0;
};

class LrSchedule {
 public:
  // Validates the config (kind known, base_lr >= 0, step_size > 0, gamma > 0,
  // cosine: 0 <= warmup_steps < total_steps, 0 <= min_lr <= base_lr).
  static Result<LrSchedule> Create(const LrScheduleConfig& cfg);
  double Rate(int64_t step) const;
  const LrScheduleConfig& config() const { return cfg_; }

 private:
  explicit LrSchedule(const LrScheduleConfig& c) : cfg_(c) {}
  LrScheduleConfig cfg_;
};

}  // namespace tessera::autodiff
