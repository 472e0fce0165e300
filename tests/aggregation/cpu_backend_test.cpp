// CPU-specific properties: the result does not depend on the thread count,
// the pool runs every part exactly once and passes exceptions back, and
// serverUpdateRange touches only its range.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "aggregation/aggregation_reference.h"
#include "coordinator/aggregation/cpu/cpu_aggregator.h"
#include "coordinator/aggregation/cpu/thread_pool.h"
#include "coordinator/aggregation/server_optimizer.h"

namespace tapestry::coordinator {
namespace {

using test_support::accumulateChunked;
using test_support::Contribution;
using test_support::makeContributions;
using test_support::makeVector;
using test_support::totalWeight;
using cpu::CpuAggregator;
using cpu::ThreadPool;

TEST(CpuAggregator, ResultIsBitwiseIndependentOfThreadCount) {
  const size_t elements = 3 * CpuAggregator::kParallelThreshold + 13;
  const std::vector<Contribution> contributions = makeContributions(elements, 3, 51);
  ServerOptimizerSettings settings;
  settings.kind = ServerOptimizerKind::kNesterov;
  std::vector<std::vector<float>> results;
  for (unsigned threads : {1u, 2u, 5u}) {
    CpuAggregator aggregator(threads);
    EXPECT_EQ(aggregator.threads(), threads);
    aggregator.reset(elements);
    for (size_t w = 0; w < contributions.size(); ++w) {
      accumulateChunked(aggregator, contributions[w], 60 + uint32_t(w), 2 * CpuAggregator::kParallelThreshold);
    }
    std::vector<float> consensus = makeVector(elements, 52, 1.0f);
    std::vector<float> momentum = makeVector(elements, 53, 0.1f);
    aggregator.finalize(totalWeight(contributions), settings, consensus.data(), momentum.data());
    consensus.insert(consensus.end(), momentum.begin(), momentum.end());
    results.push_back(std::move(consensus));
  }
  EXPECT_TRUE(results[0] == results[1]);
  EXPECT_TRUE(results[0] == results[2]);
}

TEST(CpuAggregator, ZeroThreadsMeansOnePerHardwareThread) {
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  EXPECT_EQ(CpuAggregator(0).threads(), hardware);
}

TEST(ThreadPool, RunsEveryPartOnceAcrossManyJobs) {
  ThreadPool pool(4);
  for (unsigned parts = 1; parts <= 4; ++parts) {
    for (int job = 0; job < 200; ++job) {
      std::vector<std::atomic<int>> runs(4);
      pool.run(parts, [&](unsigned part) { runs[part].fetch_add(1); });
      for (unsigned part = 0; part < 4; ++part) ASSERT_EQ(runs[part].load(), part < parts ? 1 : 0);
    }
  }
}

TEST(ThreadPool, RethrowsAPartsExceptionAfterAllPartsFinish) {
  ThreadPool pool(3);
  std::atomic<int> finished{0};
  EXPECT_THROW(pool.run(3,
                        [&](unsigned part) {
                          if (part == 2) throw std::runtime_error("part 2 failed");
                          finished.fetch_add(1);
                        }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 2);
  EXPECT_THROW(pool.run(4, [](unsigned) {}), std::invalid_argument);
  pool.run(3, [&](unsigned) { finished.fetch_add(1); });
  EXPECT_EQ(finished.load(), 5);
}

TEST(ServerUpdateRange, TouchesOnlyItsRange) {
  const std::vector<float> sum = {2, 4, 6, 8, 10, 12};
  for (ServerOptimizerKind kind :
       {ServerOptimizerKind::kPlain, ServerOptimizerKind::kNesterov, ServerOptimizerKind::kAdam}) {
    ServerOptimizerSettings settings;
    settings.kind = kind;
    std::vector<float> consensus(6, 1.0f);
    std::vector<float> momentum(6, 0.0f);
    std::vector<float> second(6, 0.0f);
    const ServerOptimizerState state{momentum.data(), second.data(), 1};
    serverUpdateRange(settings, sum.data(), 0.5, consensus.data(), state, 2, 5);
    for (size_t i : {size_t{0}, size_t{1}, size_t{5}}) {
      EXPECT_EQ(consensus[i], 1.0f) << i;
      EXPECT_EQ(momentum[i], 0.0f) << i;
      EXPECT_EQ(second[i], 0.0f) << i;
    }
    for (size_t i = 2; i < 5; ++i) EXPECT_NE(consensus[i], 1.0f) << i;
  }
}

TEST(ServerUpdateRange, NesterovWithZeroLearningRateOnlyMovesMomentum) {
  ServerOptimizerSettings settings;
  settings.kind = ServerOptimizerKind::kNesterov;
  settings.lr = 0.0f;
  settings.momentum = 0.5f;
  const std::vector<float> sum = {3, -3};
  std::vector<float> consensus = {1, 1};
  std::vector<float> momentum = {2, 2};
  serverUpdateRange(settings, sum.data(), 1.0, consensus.data(), ServerOptimizerState{momentum.data()}, 0, 2);
  EXPECT_EQ(consensus, (std::vector<float>{1, 1}));
  EXPECT_EQ(momentum, (std::vector<float>{1 + (1 - 3), 1 + (1 + 3)}));
}

}  // namespace
}  // namespace tapestry::coordinator
