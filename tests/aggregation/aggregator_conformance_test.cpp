// One suite run over every Aggregator backend this build and machine have.
// Tolerances: the mean must be within 1e-5 of the double reference relative
// to the element's magnitude scale sum(w|x|)/W (fp32 summation of a few
// terms is good to ~1e-7 there); server updates within 1e-5 * (1 + |ref|).
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "aggregation/aggregation_reference.h"
#include "coordinator/aggregation/aggregator.h"

namespace tapestry::coordinator {
namespace {

using test_support::accumulateChunked;
using test_support::Contribution;
using test_support::makeContributions;
using test_support::makeVector;
using test_support::referenceMean;
using test_support::referenceUpdate;
using test_support::totalWeight;

constexpr double kMeanTolerance = 1e-5;
constexpr double kUpdateTolerance = 1e-5;

struct Backend {
  std::string name;
  AggregatorDevice device;
  unsigned cpu_threads;
};

void PrintTo(const Backend& backend, std::ostream* out) { *out << backend.name; }

std::vector<double> magnitudeScale(const std::vector<Contribution>& contributions) {
  std::vector<double> scale(contributions.front().values.size(), 0.0);
  for (const Contribution& c : contributions) {
    for (size_t i = 0; i < scale.size(); ++i) scale[i] += double(c.weight) * std::fabs(double(c.values[i]));
  }
  const double total = totalWeight(contributions);
  for (double& s : scale) s /= total;
  return scale;
}

void expectNear(const std::vector<float>& got, const std::vector<double>& want, double tolerance,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  size_t failures = 0;
  for (size_t i = 0; i < got.size() && failures < 5; ++i) {
    const double bound = tolerance * (1.0 + std::fabs(want[i]));
    if (!(std::fabs(double(got[i]) - want[i]) <= bound)) {
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", reference " << want[i];
      ++failures;
    }
  }
}

class AggregatorConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam().device == AggregatorDevice::kCuda && !cudaAggregatorAvailable()) {
      GTEST_SKIP() << "CUDA backend unavailable: " << cudaUnavailableReason();
    }
    aggregator_ = makeAggregator(GetParam().device, GetParam().cpu_threads);
  }

  // Plain finalize of `contributions` into a fresh consensus vector.
  std::vector<float> plainMean(const std::vector<Contribution>& contributions) {
    std::vector<float> consensus(contributions.front().values.size(), -7.0f);
    aggregator_->finalize(totalWeight(contributions), ServerOptimizerSettings{}, consensus.data(), nullptr);
    return consensus;
  }

  std::unique_ptr<Aggregator> aggregator_;
};

TEST_P(AggregatorConformance, MeanMatchesDoubleReference) {
  // Sizes straddle the vector widths (4, 8, 16) and the parallel threshold (2^18).
  const size_t sizes[] = {1, 3, 7, 17, 33, 1000, 4099, 262143, 300001, 600011};
  uint32_t seed = 11;
  for (size_t elements : sizes) {
    SCOPED_TRACE("elements = " + std::to_string(elements));
    const std::vector<Contribution> contributions = makeContributions(elements, 5, seed++);
    aggregator_->reset(elements);
    // Worker 0 sends one chunk; the others odd-sized chunks, some above the threshold.
    aggregator_->accumulate(0, contributions[0].values.data(), elements, contributions[0].weight);
    const size_t max_chunks[] = {1 + elements / 3, 37, 4097, 400001};
    for (size_t w = 1; w < contributions.size(); ++w) {
      accumulateChunked(*aggregator_, contributions[w], seed++, std::min(elements, max_chunks[w - 1]));
    }
    const std::vector<float> got = plainMean(contributions);
    const std::vector<double> want = referenceMean(contributions);
    const std::vector<double> scale = magnitudeScale(contributions);
    size_t failures = 0;
    for (size_t i = 0; i < elements && failures < 5; ++i) {
      if (!(std::fabs(double(got[i]) - want[i]) <= kMeanTolerance * scale[i])) {
        ADD_FAILURE() << "mean[" << i << "] = " << got[i] << ", reference " << want[i];
        ++failures;
      }
    }
  }
}

TEST_P(AggregatorConformance, InterleavedWorkersMatchReference) {
  const size_t elements = 270001;
  const std::vector<Contribution> contributions = makeContributions(elements, 3, 99);
  aggregator_->reset(elements);
  // Chunks from all workers arrive interleaved and back to front, as from
  // concurrent sessions.
  const size_t chunk = 65537;
  for (size_t end = elements; end > 0;) {
    const size_t begin = end > chunk ? end - chunk : 0;
    for (const Contribution& c : contributions) {
      aggregator_->accumulate(begin, c.values.data() + begin, end - begin, c.weight);
    }
    end = begin;
  }
  const std::vector<float> got = plainMean(contributions);
  expectNear(got, referenceMean(contributions), kMeanTolerance * 2.0, "mean");
}

TEST_P(AggregatorConformance, PlainUpdateHandExample) {
  aggregator_->reset(4);
  const float a[] = {1, 2, 3, 4};
  const float b[] = {5, 6, 7, 8};
  aggregator_->accumulate(0, a, 4, 1.0f);
  aggregator_->accumulate(0, b, 4, 3.0f);
  std::vector<float> consensus = {100, -100, 0.5f, 9};
  aggregator_->finalize(4.0, ServerOptimizerSettings{}, consensus.data(), nullptr);
  EXPECT_EQ(consensus, (std::vector<float>{4, 5, 6, 7}));
}

TEST_P(AggregatorConformance, NesterovUpdateHandExample) {
  // lr = mu = 0.5, z = [1, 2], v = [0.5, -1], mean m = [0, 4]:
  // delta = [1, -2], v = [1.25, -2.5], z = [1 - 0.5 * 1.625, 2 + 0.5 * 3.25] = [0.1875, 3.625].
  ServerOptimizerSettings settings;
  settings.kind = ServerOptimizerKind::kNesterov;
  settings.lr = 0.5f;
  settings.momentum = 0.5f;
  aggregator_->reset(2);
  const float m[] = {0, 8};
  aggregator_->accumulate(0, m, 2, 1.0f);
  std::vector<float> consensus = {1, 2};
  std::vector<float> momentum = {0.5f, -1};
  aggregator_->finalize(2.0, settings, consensus.data(), momentum.data());
  EXPECT_EQ(momentum, (std::vector<float>{1.25f, -2.5f}));
  EXPECT_EQ(consensus, (std::vector<float>{0.1875f, 3.625f}));
}

TEST_P(AggregatorConformance, NesterovMatchesReferenceOverRounds) {
  const size_t elements = 300007;
  ServerOptimizerSettings settings;
  settings.kind = ServerOptimizerKind::kNesterov;
  settings.lr = 0.7f;
  settings.momentum = 0.9f;
  std::vector<float> consensus = makeVector(elements, 5, 1.0f);
  std::vector<float> momentum(elements, 0.0f);
  std::vector<double> ref_consensus(consensus.begin(), consensus.end());
  std::vector<double> ref_momentum(elements, 0.0);
  aggregator_->reset(elements);
  for (uint32_t round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::vector<Contribution> contributions = makeContributions(elements, 3, 1000 + round);
    for (size_t w = 0; w < contributions.size(); ++w) {
      accumulateChunked(*aggregator_, contributions[w], 2000 + round * 10 + uint32_t(w), 290000);
    }
    aggregator_->finalize(totalWeight(contributions), settings, consensus.data(), momentum.data());
    referenceUpdate(settings, referenceMean(contributions), ref_consensus, ref_momentum);
    expectNear(consensus, ref_consensus, kUpdateTolerance, "consensus");
    expectNear(momentum, ref_momentum, kUpdateTolerance, "momentum");
  }
}

TEST_P(AggregatorConformance, FinalizeClearsTheSum) {
  const size_t elements = 262147;
  aggregator_->reset(elements);
  const std::vector<Contribution> first = makeContributions(elements, 2, 7);
  for (const Contribution& c : first) aggregator_->accumulate(0, c.values.data(), elements, c.weight);
  plainMean(first);
  // No reset between rounds: the second round must not see the first.
  const std::vector<Contribution> second = makeContributions(elements, 3, 8);
  for (size_t w = 0; w < second.size(); ++w) accumulateChunked(*aggregator_, second[w], 80 + uint32_t(w), 50000);
  expectNear(plainMean(second), referenceMean(second), kMeanTolerance * 2.0, "second round mean");
}

TEST_P(AggregatorConformance, ResetDiscardsPartialSumsAndResizes) {
  aggregator_->reset(1000);
  const std::vector<Contribution> abandoned = makeContributions(1000, 1, 3);
  aggregator_->accumulate(0, abandoned[0].values.data(), 1000, abandoned[0].weight);
  for (size_t elements : {size_t{1000}, size_t{37}, size_t{5000}}) {
    SCOPED_TRACE("elements = " + std::to_string(elements));
    aggregator_->reset(elements);
    const std::vector<Contribution> contributions = makeContributions(elements, 2, uint32_t(elements));
    for (const Contribution& c : contributions) aggregator_->accumulate(0, c.values.data(), elements, c.weight);
    expectNear(plainMean(contributions), referenceMean(contributions), kMeanTolerance * 2.0, "mean");
  }
}

TEST_P(AggregatorConformance, RejectsMisuseWithoutTouchingState) {
  aggregator_->reset(10);
  const float values[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_THROW(aggregator_->accumulate(5, values, 6, 1.0f), std::out_of_range);
  EXPECT_THROW(aggregator_->accumulate(11, values, 0, 1.0f), std::out_of_range);
  EXPECT_THROW(aggregator_->accumulate(0, values, 10, std::nanf("")), std::invalid_argument);
  aggregator_->accumulate(0, values, 10, 2.0f);
  std::vector<float> consensus(10, 0.0f);
  EXPECT_THROW(aggregator_->finalize(0.0, ServerOptimizerSettings{}, consensus.data(), nullptr),
               std::invalid_argument);
  ServerOptimizerSettings nesterov;
  nesterov.kind = ServerOptimizerKind::kNesterov;
  EXPECT_THROW(aggregator_->finalize(2.0, nesterov, consensus.data(), nullptr), std::invalid_argument);
  aggregator_->finalize(2.0, ServerOptimizerSettings{}, consensus.data(), nullptr);
  EXPECT_EQ(consensus, std::vector<float>(10, 1.0f));
}

INSTANTIATE_TEST_SUITE_P(Backends, AggregatorConformance,
                         ::testing::Values(Backend{"cpu_1_thread", AggregatorDevice::kCpu, 1},
                                           Backend{"cpu_3_threads", AggregatorDevice::kCpu, 3},
                                           Backend{"cuda", AggregatorDevice::kCuda, 0}),
                         [](const ::testing::TestParamInfo<Backend>& info) { return info.param.name; });

}  // namespace
}  // namespace tapestry::coordinator
