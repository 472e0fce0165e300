// The CPU backend is the reference: CUDA must produce the same consensus and
// momentum within 1e-5 * (1 + |cpu|) over several nesterov rounds, for a
// size above the staging slot (2^22 elements) so chunks get split; and the
// same for every encoded dtype and server optimizer.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "aggregation/aggregation_reference.h"
#include "aggregation/encoded_support.h"
#include "coordinator/aggregation/aggregator.h"

namespace tapestry::coordinator {
namespace {

using test_support::accumulateChunked;
using test_support::Contribution;
using test_support::makeContributions;
using test_support::makeVector;
using test_support::totalWeight;

constexpr double kTolerance = 1e-5;

size_t countMismatches(const std::vector<float>& cuda, const std::vector<float>& cpu, const char* what) {
  size_t mismatches = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (!(std::fabs(double(cuda[i]) - double(cpu[i])) <= kTolerance * (1.0 + std::fabs(double(cpu[i]))))) {
      if (mismatches < 5) ADD_FAILURE() << what << "[" << i << "]: cuda " << cuda[i] << ", cpu " << cpu[i];
      ++mismatches;
    }
  }
  return mismatches;
}

TEST(CudaMatchesCpu, NesterovRoundsAgree) {
  if (!cudaAggregatorAvailable()) GTEST_SKIP() << "CUDA backend unavailable: " << cudaUnavailableReason();
  const size_t elements = (size_t{1} << 22) + 1003;
  std::unique_ptr<Aggregator> cpu = makeAggregator(AggregatorDevice::kCpu);
  std::unique_ptr<Aggregator> cuda = makeAggregator(AggregatorDevice::kCuda);
  ServerOptimizerSettings settings;
  settings.kind = ServerOptimizerKind::kNesterov;
  settings.lr = 0.7f;
  settings.momentum = 0.9f;
  std::vector<float> cpu_consensus = makeVector(elements, 21, 1.0f);
  std::vector<float> cuda_consensus = cpu_consensus;
  std::vector<float> cpu_momentum(elements, 0.0f);
  std::vector<float> cuda_momentum(elements, 0.0f);
  cpu->reset(elements);
  cuda->reset(elements);
  for (uint32_t round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::vector<Contribution> contributions = makeContributions(elements, 3, 300 + round);
    for (size_t w = 0; w < contributions.size(); ++w) {
      // The last worker's chunks may span the whole vector, beyond one staging slot.
      const size_t max_chunk = w + 1 == contributions.size() ? elements : 1000003;
      accumulateChunked(*cpu, contributions[w], 400 + uint32_t(w), max_chunk);
      accumulateChunked(*cuda, contributions[w], 400 + uint32_t(w), max_chunk);
    }
    const double total = totalWeight(contributions);
    cpu->finalize(total, settings, cpu_consensus.data(), cpu_momentum.data());
    cuda->finalize(total, settings, cuda_consensus.data(), cuda_momentum.data());
    EXPECT_EQ(countMismatches(cuda_consensus, cpu_consensus, "consensus"), 0u);
    EXPECT_EQ(countMismatches(cuda_momentum, cpu_momentum, "momentum"), 0u);
  }
}

// Every dtype through accumulateEncoded and every server optimizer: chunks
// above one staging slot (so they are pre-scanned and split) and below it.
class CudaMatchesCpuEncoded : public ::testing::TestWithParam<std::tuple<proto::DType, ServerOptimizerKind>> {};

TEST_P(CudaMatchesCpuEncoded, RoundsAgree) {
  if (!cudaAggregatorAvailable()) GTEST_SKIP() << "CUDA backend unavailable: " << cudaUnavailableReason();
  const auto [dtype, kind] = GetParam();
  const size_t elements = (size_t{1} << 24) + 4099;
  std::unique_ptr<Aggregator> cpu = makeAggregator(AggregatorDevice::kCpu);
  std::unique_ptr<Aggregator> cuda = makeAggregator(AggregatorDevice::kCuda);
  ServerOptimizerSettings settings;
  settings.kind = kind;
  settings.lr = kind == ServerOptimizerKind::kAdam ? 0.01f : 0.7f;
  std::vector<float> cpu_z = makeVector(elements, 23, 1.0f), cuda_z = cpu_z;
  std::vector<float> cpu_m(elements, 0.0f), cuda_m = cpu_m, cpu_v = cpu_m, cuda_v = cpu_m;
  cpu->reset(elements);
  cuda->reset(elements);
  for (uint64_t step = 1; step <= 2; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const std::vector<Contribution> contributions = makeContributions(elements, 2, 500 + uint32_t(step));
    for (size_t w = 0; w < contributions.size(); ++w) {
      const uint32_t chunk = w == 0 ? common::kMaxChunkElements : (1u << 20) + 256 * 3;
      const common::EncodedPayload payload =
          common::EncodedPayload::encode(dtype, contributions[w].values.data(), elements, chunk, w == 0 ? 256 : 128);
      test_support::accumulateEncodedPayload(*cpu, payload, contributions[w].weight);
      test_support::accumulateEncodedPayload(*cuda, payload, contributions[w].weight);
    }
    const double total = totalWeight(contributions);
    cpu->finalize(total, settings, cpu_z.data(), ServerOptimizerState{cpu_m.data(), cpu_v.data(), step});
    cuda->finalize(total, settings, cuda_z.data(), ServerOptimizerState{cuda_m.data(), cuda_v.data(), step});
    EXPECT_EQ(countMismatches(cuda_z, cpu_z, "consensus"), 0u);
    EXPECT_EQ(countMismatches(cuda_m, cpu_m, "momentum"), 0u);
    EXPECT_EQ(countMismatches(cuda_v, cpu_v, "second moment"), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(DtypesAndOptimizers, CudaMatchesCpuEncoded,
                         ::testing::Combine(::testing::Values(proto::DTYPE_FP32, proto::DTYPE_BF16, proto::DTYPE_FP16,
                                                              proto::DTYPE_INT8_BLOCK),
                                            ::testing::Values(ServerOptimizerKind::kPlain,
                                                              ServerOptimizerKind::kNesterov,
                                                              ServerOptimizerKind::kAdam)),
                         [](const auto& info) {
                           return std::string(test_support::dtypeName(std::get<0>(info.param))) + "_" +
                                  serverOptimizerName(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace tapestry::coordinator
