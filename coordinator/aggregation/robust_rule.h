#pragma once
// Coordinate-wise robust aggregation rules, plain functions over arrays. Each
// output element is a statistic of the K contributions' values at that
// element, independent of the members' sample counts, so neither a few
// members sending extreme values nor one claiming an absurd sample count can
// move the consensus far:
//   trimmed mean: drop the floor(trim · K) smallest and as many largest
//                 values, average the rest (Yin et al. 2018);
//   median:       the middle value (the mean of the two middle ones for even K).
// Unlike the weighted mean they need every contribution of a round at once:
// O(K·P) memory at the coordinator, the documented exception to streaming.
#include <cstddef>
#include <string>
#include <vector>

namespace tapestry::coordinator {

enum class AggregationRule { kMean, kTrimmedMean, kMedian };

// "mean" | "trimmed_mean" | "median"; throws std::invalid_argument listing them.
AggregationRule parseAggregationRule(const std::string& name);
const char* aggregationRuleName(AggregationRule rule);

// How many values a trimmed mean over `contributors` drops at each end.
size_t trimmedPerSide(size_t contributors, double trim_fraction);

// out[i] = rule over {columns[k][i] : k < columns.size()} for i in [0, count).
// rule must be kTrimmedMean or kMedian; trim_fraction in [0, 0.5) (trimmed
// mean only); at least one column. Runs on `threads` threads (0: one per
// hardware thread). Misuse throws std::invalid_argument.
void combineRobust(AggregationRule rule, double trim_fraction, const std::vector<const float*>& columns, size_t count,
                   float* out, unsigned threads = 0);

}  // namespace tapestry::coordinator
