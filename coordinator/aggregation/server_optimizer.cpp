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

}  // namespace

void serverUpdateRange(const ServerOptimizerSettings& settings, const float* sum, double inv_weight, float* consensus,
                       float* momentum, size_t begin, size_t end) {
  if (begin >= end) return;
  const float inv = static_cast<float>(inv_weight);
  switch (settings.kind) {
    case ServerOptimizerKind::kPlain:
      plainUpdate(sum + begin, inv, consensus + begin, end - begin);
      return;
    case ServerOptimizerKind::kNesterov:
      assert(momentum != nullptr);
      nesterovUpdate(sum + begin, inv, settings.lr, settings.momentum, consensus + begin, momentum + begin,
                     end - begin);
      return;
  }
}

}  // namespace tapestry::coordinator
