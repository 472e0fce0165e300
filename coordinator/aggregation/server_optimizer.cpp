#include "coordinator/aggregation/server_optimizer.h"

#include <cassert>

#include "coordinator/aggregation/vector_dispatch.h"

namespace tapestry::coordinator {
namespace {

TAPESTRY_VECTOR_CLONES void plainUpdate(const float* __restrict sum, float inv_weight, float* __restrict consensus,
                                        size_t count) {
  for (size_t i = 0; i < count; ++i) consensus[i] = sum[i] * inv_weight;
}

TAPESTRY_VECTOR_CLONES void nesterovUpdate(const float* __restrict sum, float inv_weight, float lr, float mu,
                                           float* __restrict consensus, float* __restrict momentum, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const float mean = sum[i] * inv_weight;
    const float delta = consensus[i] - mean;
    const float velocity = mu * momentum[i] + delta;
    momentum[i] = velocity;
    consensus[i] = consensus[i] - lr * (delta + mu * velocity);
  }
}

TAPESTRY_VECTOR_CLONES void adamUpdate(const float* __restrict sum, float inv_weight, const AdamCoefficients c,
                                       float* __restrict consensus, float* __restrict first, float* __restrict second,
                                       size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const float mean = sum[i] * inv_weight;
    const float g = consensus[i] - mean;
    const float m = c.beta1 * first[i] + c.one_minus_beta1 * g;
    const float v = c.beta2 * second[i] + c.one_minus_beta2 * (g * g);
    first[i] = m;
    second[i] = v;
    const float m_hat = m * c.correction1;
    const float v_hat = v * c.correction2;
    consensus[i] = consensus[i] - c.lr * (m_hat / (std::sqrt(v_hat) + c.epsilon));
  }
}

}  // namespace

void serverUpdateRange(const ServerOptimizerSettings& settings, const float* sum, double inv_weight, float* consensus,
                       const ServerOptimizerState& state, size_t begin, size_t end) {
  if (begin >= end) return;
  const float inv = static_cast<float>(inv_weight);
  switch (settings.kind) {
    case ServerOptimizerKind::kPlain:
      plainUpdate(sum + begin, inv, consensus + begin, end - begin);
      return;
    case ServerOptimizerKind::kNesterov:
      assert(state.momentum != nullptr);
      nesterovUpdate(sum + begin, inv, settings.lr, settings.momentum, consensus + begin, state.momentum + begin,
                     end - begin);
      return;
    case ServerOptimizerKind::kAdam:
      assert(state.momentum != nullptr && state.second_moment != nullptr && state.step > 0);
      adamUpdate(sum + begin, inv, adamCoefficients(settings, state.step), consensus + begin, state.momentum + begin,
                 state.second_moment + begin, end - begin);
      return;
  }
}

}  // namespace tapestry::coordinator
