#pragma once
// Double-precision reference for the aggregation tests: seeded contributions
// from K workers, the weighted mean and the server update computed in double.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "coordinator/aggregation/aggregator.h"

namespace tapestry::coordinator::test_support {

struct Contribution {
  float weight = 1.0f;
  std::vector<float> values;
};

inline std::vector<Contribution> makeContributions(size_t elements, size_t workers, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  std::uniform_real_distribution<float> weight(0.5f, 40.0f);
  std::vector<Contribution> out(workers);
  for (Contribution& c : out) {
    c.weight = weight(rng);
    c.values.resize(elements);
    for (float& v : c.values) v = value(rng);
  }
  return out;
}

inline std::vector<float> makeVector(size_t elements, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-scale, scale);
  std::vector<float> out(elements);
  for (float& v : out) v = value(rng);
  return out;
}

inline double totalWeight(const std::vector<Contribution>& contributions) {
  double total = 0.0;
  for (const Contribution& c : contributions) total += c.weight;
  return total;
}

inline std::vector<double> referenceMean(const std::vector<Contribution>& contributions) {
  std::vector<double> mean(contributions.front().values.size(), 0.0);
  for (const Contribution& c : contributions) {
    for (size_t i = 0; i < mean.size(); ++i) mean[i] += double(c.weight) * double(c.values[i]);
  }
  const double total = totalWeight(contributions);
  for (double& m : mean) m /= total;
  return mean;
}

// The documented update, in double: plain z = m; nesterov v = mu v + (z - m),
// z = z - lr ((z - m) + mu v).
inline void referenceUpdate(const ServerOptimizerSettings& settings, const std::vector<double>& mean,
                            std::vector<double>& consensus, std::vector<double>& momentum) {
  for (size_t i = 0; i < mean.size(); ++i) {
    if (settings.kind == ServerOptimizerKind::kPlain) {
      consensus[i] = mean[i];
      continue;
    }
    const double delta = consensus[i] - mean[i];
    momentum[i] = double(settings.momentum) * momentum[i] + delta;
    consensus[i] -= double(settings.lr) * (delta + double(settings.momentum) * momentum[i]);
  }
}

// The documented adam update, in double, for the 1-based step `step`.
inline void referenceAdamUpdate(const ServerOptimizerSettings& settings, const std::vector<double>& mean,
                                std::vector<double>& consensus, std::vector<double>& first, std::vector<double>& second,
                                uint64_t step) {
  const double b1 = settings.beta1, b2 = settings.beta2;
  const double c1 = 1.0 / (1.0 - std::pow(b1, double(step)));
  const double c2 = 1.0 / (1.0 - std::pow(b2, double(step)));
  for (size_t i = 0; i < mean.size(); ++i) {
    const double g = consensus[i] - mean[i];
    first[i] = b1 * first[i] + (1.0 - b1) * g;
    second[i] = b2 * second[i] + (1.0 - b2) * g * g;
    consensus[i] -= double(settings.lr) * (first[i] * c1 / (std::sqrt(second[i] * c2) + double(settings.epsilon)));
  }
}

// Feeds one worker's vector in chunks of pseudo-random, odd sizes.
inline void accumulateChunked(Aggregator& aggregator, const Contribution& c, uint32_t seed, size_t max_chunk) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> chunk(1, max_chunk);
  for (size_t offset = 0; offset < c.values.size();) {
    const size_t count = std::min(c.values.size() - offset, chunk(rng) | 1);
    aggregator.accumulate(offset, c.values.data() + offset, count, c.weight);
    offset += count;
  }
}

}  // namespace tapestry::coordinator::test_support
