#pragma once
// Reference server update, plain functions over arrays: the CPU backend uses
// it directly and the CUDA backend is tested against it.
//   g = z − m (pseudo-gradient)
//   plain:    z ← m
//   nesterov: v ← μ·v + g;  z ← z − lr·(g + μ·v)              (DiLoCo's outer step)
//   adam:     m1 ← β1·m1 + (1−β1)·g;  m2 ← β2·m2 + (1−β2)·g²;
//             z ← z − lr·m̂1/(sqrt(m̂2) + τ),  m̂k = mk/(1−βk^t)   (FedAdam, t = step)
// Every backend evaluates each element with the same float operations in the
// same order (no contraction), so they agree to the last bit.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "coordinator/aggregation/aggregator.h"

namespace tapestry::coordinator {

// Adam's per-round constants, computed once on the host in double.
struct AdamCoefficients {
  float beta1 = 0.0f;
  float beta2 = 0.0f;
  float one_minus_beta1 = 0.0f;
  float one_minus_beta2 = 0.0f;
  float correction1 = 1.0f;  // 1 / (1 − β1^t)
  float correction2 = 1.0f;  // 1 / (1 − β2^t)
  float lr = 0.0f;
  float epsilon = 0.0f;
};

inline AdamCoefficients adamCoefficients(const ServerOptimizerSettings& settings, uint64_t step) {
  AdamCoefficients c;
  c.beta1 = settings.beta1;
  c.beta2 = settings.beta2;
  c.one_minus_beta1 = static_cast<float>(1.0 - double(settings.beta1));
  c.one_minus_beta2 = static_cast<float>(1.0 - double(settings.beta2));
  const double t = static_cast<double>(step);
  c.correction1 = static_cast<float>(1.0 / (1.0 - std::pow(double(settings.beta1), t)));
  c.correction2 = static_cast<float>(1.0 / (1.0 - std::pow(double(settings.beta2), t)));
  c.lr = settings.lr;
  c.epsilon = settings.epsilon;
  return c;
}

// Applies the update for elements [begin, end): mean[i] = sum[i] * inv_weight.
void serverUpdateRange(const ServerOptimizerSettings& settings, const float* sum, double inv_weight, float* consensus,
                       const ServerOptimizerState& state, size_t begin, size_t end);

}  // namespace tapestry::coordinator
