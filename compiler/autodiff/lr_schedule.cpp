#include "compiler/autodiff/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace tessera::autodiff {

Result<LrSchedule> LrSchedule::Create(const LrScheduleConfig& c) {
  if (!(c.base_lr >= 0.0) || !std::isfinite(c.base_lr))
    return InvalidArgument("lr schedule: base_lr must be a finite value >= 0, got ", c.base_lr);
  if (c.kind == "constant") return LrSchedule(c);
  if (c.kind == "step") {
    if (c.step_size <= 0) return InvalidArgument("lr schedule 'step': step_size must be > 0, got ", c.step_size);
    if (!(c.gamma > 0.0)) return InvalidArgument("lr schedule 'step': gamma must be > 0, got ", c.gamma);
    return LrSchedule(c);
  }
  if (c.kind == "cosine") {
    if (c.warmup_steps < 0) return InvalidArgument("lr schedule 'cosine': warmup_steps must be >= 0");
    if (c.total_steps <= c.warmup_steps)
      return InvalidArgument("lr schedule 'cosine': total_steps (", c.total_steps, ") must exceed warmup_steps (",
                             c.warmup_steps, ")");
    if (!(c.min_lr >= 0.0 && c.min_lr <= c.base_lr))
      return InvalidArgument("lr schedule 'cosine': min_lr must be in [0, base_lr], got ", c.min_lr);
    return LrSchedule(c);
  }
  return InvalidArgument("lr schedule: unknown kind '", c.kind, "' (expected constant, step or cosine)");
}

double LrSchedule::Rate(int64_t t) const {
  const auto& c = cfg_;
  if (t < 0) t = 0;
  if (c.kind == "step") return c.base_lr * std::pow(c.gamma, static_cast<double>(t / c.step_size));
  if (c.kind == "cosine") {
    if (t < c.warmup_steps) return c.base_lr * static_cast<double>(t + 1) / static_cast<double>(c.warmup_steps);
    const double span = static_cast<double>(std::max<int64_t>(1, c.total_steps - c.warmup_steps));
    const double p = std::min(1.0, static_cast<double>(t - c.warmup_steps) / span);
    return c.min_lr + (c.base_lr - c.min_lr) * 0.5 * (1.0 + std::cos(M_PI * p));
  }
  return c.base_lr;
}

}  // namespace tessera::autodiff
