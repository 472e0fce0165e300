// makeAggregator: device selection and the error a user sees when CUDA is
// requested on a machine or build without it.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "coordinator/aggregation/aggregator.h"

namespace tapestry::coordinator {
namespace {

TEST(AggregatorFactory, CpuIsAlwaysAvailable) {
  const std::unique_ptr<Aggregator> aggregator = makeAggregator(AggregatorDevice::kCpu, 2);
  ASSERT_NE(aggregator, nullptr);
  EXPECT_EQ(aggregator->backendName(), "cpu");
}

TEST(AggregatorFactory, ReasonIsEmptyExactlyWhenCudaIsAvailable) {
  EXPECT_EQ(cudaAggregatorAvailable(), cudaUnavailableReason().empty()) << cudaUnavailableReason();
}

TEST(AggregatorFactory, AutoPicksCudaOnlyWhenAvailable) {
  const std::unique_ptr<Aggregator> aggregator = makeAggregator(AggregatorDevice::kAuto);
  EXPECT_EQ(aggregator->backendName(), cudaAggregatorAvailable() ? "cuda" : "cpu") << cudaUnavailableReason();
}

TEST(AggregatorFactory, CudaRequestWithoutCudaThrowsActionableError) {
  if (cudaAggregatorAvailable()) GTEST_SKIP() << "a CUDA device is present, so kCuda does not fail here";
  const std::string reason = cudaUnavailableReason();
  try {
    makeAggregator(AggregatorDevice::kCuda);
    FAIL() << "kCuda succeeded although CUDA is unavailable: " << reason;
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("cuda"), std::string::npos) << message;
    EXPECT_NE(message.find(reason), std::string::npos) << message;
    EXPECT_NE(message.find("\"device\": \"cpu\""), std::string::npos) << message;
  }
}

TEST(AggregatorFactory, CudaRequestSucceedsWhenAvailable) {
  if (!cudaAggregatorAvailable()) GTEST_SKIP() << "CUDA backend unavailable: " << cudaUnavailableReason();
  EXPECT_EQ(makeAggregator(AggregatorDevice::kCuda)->backendName(), "cuda");
}

}  // namespace
}  // namespace tapestry::coordinator
