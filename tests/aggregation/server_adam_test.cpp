// Server adam (FedAdam with bias correction) on every backend: a 2-element
// example worked by hand for two steps, the forwarding finalize overload, and
// the argument checks; plus the optimizer name parser.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "coordinator/aggregation/aggregator.h"

namespace tapestry::coordinator {
namespace {

class ServerAdam : public ::testing::TestWithParam<AggregatorDevice> {
 protected:
  void SetUp() override {
    if (GetParam() == AggregatorDevice::kCuda && !cudaAggregatorAvailable()) {
      GTEST_SKIP() << "CUDA backend unavailable: " << cudaUnavailableReason();
    }
    aggregator_ = makeAggregator(GetParam(), 2);
    settings_.kind = ServerOptimizerKind::kAdam;
    settings_.lr = 0.25f;
    settings_.beta1 = 0.5f;
    settings_.beta2 = 0.75f;
    settings_.epsilon = 0.5f;
  }

  std::unique_ptr<Aggregator> aggregator_;
  ServerOptimizerSettings settings_;
};

TEST_P(ServerAdam, TwoStepsByHand) {
  // z = [1, 2]. Step 1, mean [0, 4]: g = [1, -2], m = [0.5, -1], v = [0.25, 1],
  // m̂ = m / 0.5 = [1, -2], v̂ = v / 0.25 = [1, 4],
  // z = [1 - 0.25 * 1 / 1.5, 2 + 0.25 * 2 / 2.5] = [5/6, 2.2].
  // Step 2, mean [1, 2]: g = [-1/6, 0.2], m = [1/6, -0.4], v = [0.1875 + 0.25/36, 0.76],
  // m̂ = m / 0.75, v̂ = v / 0.4375,
  // z = [5/6 - 0.25 * (2/9) / (2/3 + 0.5), 2.2 + 0.25 * (0.4/0.75) / (sqrt(0.76/0.4375) + 0.5)]
  //   = [0.785714286, 2.273340379].
  aggregator_->reset(2);
  std::vector<float> z = {1, 2}, m = {0, 0}, v = {0, 0};
  const float step1[] = {0, 8};
  aggregator_->accumulate(0, step1, 2, 1.0f);
  aggregator_->finalize(2.0, settings_, z.data(), ServerOptimizerState{m.data(), v.data(), 1});
  EXPECT_FLOAT_EQ(z[0], 5.0f / 6.0f);
  EXPECT_FLOAT_EQ(z[1], 2.2f);
  EXPECT_EQ(m, (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(v, (std::vector<float>{0.25f, 1.0f}));
  const float step2[] = {3, 6};
  aggregator_->accumulate(0, step2, 2, 3.0f);
  aggregator_->finalize(9.0, settings_, z.data(), ServerOptimizerState{m.data(), v.data(), 2});
  EXPECT_FLOAT_EQ(m[0], 1.0f / 6.0f);
  EXPECT_FLOAT_EQ(m[1], -0.4f);
  EXPECT_FLOAT_EQ(v[0], 0.194444444f);
  EXPECT_FLOAT_EQ(v[1], 0.76f);
  EXPECT_FLOAT_EQ(z[0], 0.785714286f);
  EXPECT_FLOAT_EQ(z[1], 2.273340379f);
}

TEST_P(ServerAdam, MisuseThrowsWithAReason) {
  aggregator_->reset(2);
  const float ones[] = {1, 1};
  aggregator_->accumulate(0, ones, 2, 1.0f);
  std::vector<float> z(2), m(2), v(2);
  EXPECT_THROW(aggregator_->finalize(1.0, settings_, z.data(), m.data()), std::invalid_argument);
  EXPECT_THROW(aggregator_->finalize(1.0, settings_, z.data(), ServerOptimizerState{m.data(), v.data(), 0}),
               std::invalid_argument);
  EXPECT_THROW(aggregator_->finalize(1.0, settings_, z.data(), ServerOptimizerState{m.data(), nullptr, 1}),
               std::invalid_argument);
  ServerOptimizerSettings bad = settings_;
  bad.beta2 = 1.0f;
  EXPECT_THROW(aggregator_->finalize(1.0, bad, z.data(), ServerOptimizerState{m.data(), v.data(), 1}),
               std::invalid_argument);
  bad = settings_;
  bad.epsilon = 0.0f;
  EXPECT_THROW(aggregator_->finalize(1.0, bad, z.data(), ServerOptimizerState{m.data(), v.data(), 1}),
               std::invalid_argument);
  // Nothing was applied: the sum still averages to 1.
  aggregator_->finalize(1.0, ServerOptimizerSettings{}, z.data(), nullptr);
  EXPECT_EQ(z, (std::vector<float>{1, 1}));
}

INSTANTIATE_TEST_SUITE_P(Backends, ServerAdam, ::testing::Values(AggregatorDevice::kCpu, AggregatorDevice::kCuda),
                         [](const ::testing::TestParamInfo<AggregatorDevice>& info) {
                           return info.param == AggregatorDevice::kCpu ? "cpu" : "cuda";
                         });

TEST(ServerOptimizerNames, ParseAndNameRoundTrip) {
  for (ServerOptimizerKind kind :
       {ServerOptimizerKind::kPlain, ServerOptimizerKind::kNesterov, ServerOptimizerKind::kAdam}) {
    EXPECT_EQ(parseServerOptimizer(serverOptimizerName(kind)), kind);
  }
  try {
    parseServerOptimizer("adamw");
    ADD_FAILURE() << "adamw was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("plain, nesterov or adam"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tapestry::coordinator
