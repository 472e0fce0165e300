#include "worker/ml/inner_optimizer.h"

#include <cmath>
#include <stdexcept>

namespace tapestry::worker {

InnerOptimizer parseInnerOptimizer(const std::string& name) {
  if (name == "sgd") return InnerOptimizer::kSgdMomentum;
  if (name == "adamw") return InnerOptimizer::kAdamW;
  throw std::invalid_argument("unknown inner optimizer \"" + name +
                              "\"; use \"sgd\" (SGD with momentum) or \"adamw\"");
}

const char* innerOptimizerName(InnerOptimizer optimizer) {
  return optimizer == InnerOptimizer::kAdamW ? "adamw" : "sgd";
}

void sgdMomentumStep(float* w, const float* grad, float* velocity, size_t n, const SgdMomentumHyper& h) {
  for (size_t i = 0; i < n; ++i) {
    const float g = grad[i] + h.weight_decay * w[i];
    velocity[i] = h.momentum * velocity[i] + g;
    w[i] -= h.lr * velocity[i];
  }
}

void adamWStep(float* w, const float* grad, float* m, float* v, size_t n, uint64_t step, const AdamWHyper& h) {
  if (step == 0) throw std::invalid_argument("adamWStep: steps are counted from 1");
  const double t = static_cast<double>(step);
  const auto decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
  const auto step_size = static_cast<float>(h.lr / (1.0 - std::pow(h.beta1, t)));
  const auto root_correction2 = static_cast<float>(std::sqrt(1.0 - std::pow(h.beta2, t)));
  const auto b1 = static_cast<float>(h.beta1);
  const auto b2 = static_cast<float>(h.beta2);
  const auto eps = static_cast<float>(h.epsilon);
  for (size_t i = 0; i < n; ++i) {
    const float g = grad[i];
    w[i] *= decay;
    m[i] = b1 * m[i] + (1.0f - b1) * g;
    v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    w[i] -= step_size * m[i] / (std::sqrt(v[i]) / root_correction2 + eps);
  }
}

}  // namespace tapestry::worker
