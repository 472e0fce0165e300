#include "coordinator/aggregation/robust_rule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <thread>

namespace tapestry::coordinator {

AggregationRule parseAggregationRule(const std::string& name) {
  if (name == "mean") return AggregationRule::kMean;
  if (name == "trimmed_mean") return AggregationRule::kTrimmedMean;
  if (name == "median") return AggregationRule::kMedian;
  throw std::invalid_argument("unknown aggregation rule \"" + name + "\"; use mean, trimmed_mean or median");
}

const char* aggregationRuleName(AggregationRule rule) {
  switch (rule) {
    case AggregationRule::kMean: return "mean";
    case AggregationRule::kTrimmedMean: return "trimmed_mean";
    case AggregationRule::kMedian: return "median";
  }
  return "?";
}

size_t trimmedPerSide(size_t contributors, double trim_fraction) {
  auto per_side = static_cast<size_t>(std::floor(trim_fraction * static_cast<double>(contributors)));
  // Always keep at least one value.
  while (per_side > 0 && 2 * per_side >= contributors) --per_side;
  return per_side;
}

namespace {

void combineRange(AggregationRule rule, size_t per_side, const std::vector<const float*>& columns, size_t begin,
                  size_t end, float* out) {
  const size_t k = columns.size();
  std::vector<float> values(k);
  for (size_t i = begin; i < end; ++i) {
    for (size_t c = 0; c < k; ++c) values[c] = columns[c][i];
    if (rule == AggregationRule::kMedian) {
      auto mid = values.begin() + static_cast<std::ptrdiff_t>(k / 2);
      std::nth_element(values.begin(), mid, values.end());
      if (k % 2 == 1) {
        out[i] = *mid;
      } else {
        const float below = *std::max_element(values.begin(), mid);
        out[i] = static_cast<float>((static_cast<double>(below) + static_cast<double>(*mid)) / 2.0);
      }
    } else {
      std::sort(values.begin(), values.end());
      double sum = 0;
      for (size_t c = per_side; c < k - per_side; ++c) sum += values[c];
      out[i] = static_cast<float>(sum / static_cast<double>(k - 2 * per_side));
    }
  }
}

}  // namespace

void combineRobust(AggregationRule rule, double trim_fraction, const std::vector<const float*>& columns, size_t count,
                   float* out, unsigned threads) {
  if (rule != AggregationRule::kTrimmedMean && rule != AggregationRule::kMedian)
    throw std::invalid_argument("combineRobust: rule must be trimmed_mean or median");
  if (!(trim_fraction >= 0 && trim_fraction < 0.5))
    throw std::invalid_argument("combineRobust: trim fraction must lie in [0, 0.5)");
  if (columns.empty()) throw std::invalid_argument("combineRobust: no contribution to combine");
  if (count > 0 && out == nullptr) throw std::invalid_argument("combineRobust: null output");
  for (const float* column : columns)
    if (count > 0 && column == nullptr) throw std::invalid_argument("combineRobust: null contribution");
  const size_t per_side = trimmedPerSide(columns.size(), trim_fraction);
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  // Below ~64k elements a thread costs more than it saves.
  const size_t parts = std::max<size_t>(1, std::min<size_t>(threads, count / 65536));
  if (parts == 1) return combineRange(rule, per_side, columns, 0, count, out);
  std::vector<std::thread> pool;
  const size_t step = (count + parts - 1) / parts;
  for (size_t p = 1; p < parts; ++p) {
    const size_t begin = std::min(count, p * step), end = std::min(count, begin + step);
    pool.emplace_back([=, &columns] { combineRange(rule, per_side, columns, begin, end, out); });
  }
  combineRange(rule, per_side, columns, 0, std::min(count, step), out);
  for (auto& t : pool) t.join();
}

}  // namespace tapestry::coordinator
