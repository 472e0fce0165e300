#pragma once
// Argument checks shared by every Aggregator backend, so that a misuse gets
// the same message whichever backend is running. Header-only because the CUDA
// backend is a separate library that does not link the CPU one.
#include <cmath>
#include <cstddef>
#include <cstdint>
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

inline void checkAccumulateEncodedArgs(size_t elements, size_t offset, EncodedDType dtype, const uint8_t* bytes,
                                       size_t count, float weight, uint32_t block_elements) {
  if (dtype == EncodedDType::kInt8Block && (block_elements == 0 || block_elements > kMaxInt8BlockElements)) {
    throw std::invalid_argument("Aggregator::accumulateEncoded: int8 block_elements must be in [1, " +
                                std::to_string(kMaxInt8BlockElements) + "], got " + std::to_string(block_elements));
  }
  if (encodedByteCount(dtype, 1, block_elements) == 0) {
    throw std::invalid_argument("Aggregator::accumulateEncoded: unknown dtype value " +
                                std::to_string(static_cast<int>(dtype)) + "; expected fp32, bf16, fp16 or int8_block");
  }
  checkAccumulateArgs(elements, offset, reinterpret_cast<const float*>(bytes), count, weight);
}

inline void checkFinalizeArgs(size_t elements, double total_weight, const ServerOptimizerSettings& settings,
                              const float* consensus, const ServerOptimizerState& state) {
  if (!(total_weight > 0.0) || !std::isfinite(total_weight)) {
    throw std::invalid_argument("Aggregator::finalize: total_weight must be positive and finite, got " +
                                std::to_string(total_weight) + " (was any contribution accumulated?)");
  }
  if (settings.kind == ServerOptimizerKind::kAdam) {
    if (!(settings.beta1 >= 0.0f && settings.beta1 < 1.0f) || !(settings.beta2 >= 0.0f && settings.beta2 < 1.0f)) {
      throw std::invalid_argument("Aggregator::finalize: adam beta1 and beta2 must lie in [0, 1), got " +
                                  std::to_string(settings.beta1) + " and " + std::to_string(settings.beta2));
    }
    if (!(settings.epsilon > 0.0f) || !std::isfinite(settings.epsilon)) {
      throw std::invalid_argument("Aggregator::finalize: adam epsilon (tau) must be positive, got " +
                                  std::to_string(settings.epsilon));
    }
    if (state.step == 0) {
      throw std::invalid_argument(
          "Aggregator::finalize: adam needs ServerOptimizerState::step >= 1 (the 1-based index of this update)");
    }
  }
  if (elements == 0) return;
  if (consensus == nullptr) throw std::invalid_argument("Aggregator::finalize: consensus is null");
  if (settings.kind != ServerOptimizerKind::kPlain && state.momentum == nullptr) {
    throw std::invalid_argument(std::string("Aggregator::finalize: the ") + serverOptimizerName(settings.kind) +
                                " server optimizer needs a momentum buffer");
  }
  if (settings.kind == ServerOptimizerKind::kAdam && state.second_moment == nullptr) {
    throw std::invalid_argument("Aggregator::finalize: the adam server optimizer needs a second_moment buffer");
  }
}

}  // namespace tapestry::coordinator
