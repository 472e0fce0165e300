// Robust aggregation rules against hand-computed statistics: one extreme
// value per element moves neither the median nor the trimmed mean.
#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <vector>

#include "coordinator/aggregation/robust_rule.h"

namespace tapestry::coordinator {
namespace {

std::vector<float> combine(AggregationRule rule, double trim, const std::vector<std::vector<float>>& members,
                           unsigned threads = 1) {
  std::vector<const float*> columns;
  for (const auto& m : members) columns.push_back(m.data());
  std::vector<float> out(members.front().size());
  combineRobust(rule, trim, columns, out.size(), out.data(), threads);
  return out;
}

// Five members, two elements; the fifth member sends extreme values.
const std::vector<std::vector<float>> kFive = {{1, 0}, {2, 1}, {3, 2}, {4, 3}, {100, -1e30f}};

TEST(RobustRule, MedianIsTheMiddleValueOfEachElement) {
  EXPECT_EQ(combine(AggregationRule::kMedian, 0, kFive), (std::vector<float>{3, 1}));
  // Even count: the mean of the two middle values.
  EXPECT_EQ(combine(AggregationRule::kMedian, 0, {{1}, {10}, {2}, {3}}), (std::vector<float>{2.5f}));
  EXPECT_EQ(combine(AggregationRule::kMedian, 0, {{7}}), (std::vector<float>{7}));
}

TEST(RobustRule, TrimmedMeanDropsTheExtremesAtEachEnd) {
  // 0.2 of 5 members: one value dropped at each end.
  EXPECT_EQ(combine(AggregationRule::kTrimmedMean, 0.2, kFive), (std::vector<float>{3, 1}));
  // Nothing trimmed: the unweighted mean, outlier included.
  auto plain = combine(AggregationRule::kTrimmedMean, 0.0, kFive);
  EXPECT_FLOAT_EQ(plain[0], 22.0f);
  // 0.4 of 5: two at each end, the median remains.
  EXPECT_EQ(combine(AggregationRule::kTrimmedMean, 0.4, kFive), (std::vector<float>{3, 1}));
}

TEST(RobustRule, TrimmingAlwaysKeepsAValue) {
  EXPECT_EQ(trimmedPerSide(3, 0.2), 0u) << "0.6 of a value is not dropped";
  EXPECT_EQ(trimmedPerSide(10, 0.2), 2u);
  EXPECT_EQ(trimmedPerSide(4, 0.49), 1u);
  EXPECT_EQ(trimmedPerSide(2, 0.49), 0u);
  EXPECT_EQ(trimmedPerSide(1, 0.49), 0u);
}

TEST(RobustRule, ThreadsGiveTheSameResultAsOne) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::vector<float>> members(6, std::vector<float>(300000));
  for (auto& m : members)
    for (float& x : m) x = normal(rng);
  for (auto rule : {AggregationRule::kMedian, AggregationRule::kTrimmedMean})
    EXPECT_EQ(combine(rule, 0.2, members, 4), combine(rule, 0.2, members, 1)) << aggregationRuleName(rule);
}

TEST(RobustRule, MisuseIsRefused) {
  std::vector<float> out(2);
  EXPECT_THROW(combineRobust(AggregationRule::kMedian, 0, {}, 2, out.data()), std::invalid_argument);
  std::vector<const float*> columns{kFive[0].data()};
  EXPECT_THROW(combineRobust(AggregationRule::kMean, 0, columns, 2, out.data()), std::invalid_argument);
  EXPECT_THROW(combineRobust(AggregationRule::kTrimmedMean, 0.5, columns, 2, out.data()), std::invalid_argument);
  EXPECT_THROW(parseAggregationRule("krum"), std::invalid_argument);
  EXPECT_EQ(parseAggregationRule("trimmed_mean"), AggregationRule::kTrimmedMean);
  EXPECT_STREQ(aggregationRuleName(AggregationRule::kMedian), "median");
}

}  // namespace
}  // namespace tapestry::coordinator
