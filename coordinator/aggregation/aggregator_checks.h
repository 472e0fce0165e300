#pragma once
// Argument checks shared by every Aggregator backend, so that a misuse gets
// the same message whichever backend is running. Header-only because the CUDA
// backend is a separate library that does not link the CPU one.
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

#include "coordinator/aggregation/aggregator.h"

namespace tapestry::coordinator {

inline void checkAccumulateArgs(size_t elements, size_t offset, const float* src, size_t count, float weight) {
  if (offset > elements || count > elements - offset) {
    throw std::out_of_range("Aggregator::accumulate: chunk [" + std::to_string(offset) + ", " +
                            std::to_string(offset) + "+" + std::to_string(count) + ") lies outside the " +
                            std::to_string(elements) + " elements passed to reset()");
  }
  if (count > 0 && src == nullptr) {
    throw std::invalid_argument("Aggregator::accumulate: src is null for a chunk of " + std::to_string(count) +
                                " elements");
  }
  if (!std::isfinite(weight)) {
    throw std::invalid_argument("Aggregator::accumulate: weight must be finite, got " + std::to_string(weight));
  }
}

inline void checkFinalizeArgs(size_t elements, double total_weight, const ServerOptimizerSettings& settings,
                              const float* consensus, const float* momentum) {
  if (!(total_weight > 0.0) || !std::isfinite(total_weight)) {
    throw std::invalid_argument("Aggregator::finalize: total_weight must be positive and finite, got " +
                                std::to_string(total_weight) + " (was any contribution accumulated?)");
  }
  if (elements == 0) return;
  if (consensus == nullptr) throw std::invalid_argument("Aggregator::finalize: consensus is null");
  if (settings.kind == ServerOptimizerKind::kNesterov && momentum == nullptr) {
    throw std::invalid_argument("Aggregator::finalize: the nesterov server optimizer needs a momentum buffer");
  }
}

}  // namespace tapestry::coordinator
