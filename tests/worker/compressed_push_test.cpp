// Compressed pushes: fp32 sends x itself; bf16/fp16/int8 send the delta to
// the consensus, and error feedback carries what rounding lost into the next
// round, so the deltas the coordinator decodes add up to the true ones.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "worker/compressed_push.h"

namespace tapestry::worker {
namespace {

constexpr uint32_t kChunk = 1024;

std::vector<float> randomVector(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

std::vector<float> decodeAll(const common::EncodedPayload& p, size_t n) {
  std::vector<float> out(n);
  for (size_t c = 0; c < p.chunks(); ++c) {
    auto [bytes, size] = p.chunk(c);
    EXPECT_FALSE(common::decodeChunk(p.header(), c, bytes, size, out.data() + c * p.header().chunk_elements()));
  }
  return out;
}

TEST(CompressedPush, Fp32SendsTheVectorItself) {
  auto x = randomVector(3000, 1, 1.0f), z = randomVector(3000, 2, 1.0f);
  OutgoingPush out = encodePush(x, z, {}, TransferSettings{}, kChunk);
  EXPECT_FALSE(out.delta);
  EXPECT_EQ(decodeAll(*out.payload, x.size()), x);
  EXPECT_TRUE(out.residual.empty());
}

class EncodingTest : public ::testing::TestWithParam<proto::DType> {};

TEST_P(EncodingTest, ResidualIsWhatTheDecodedDeltaMissed) {
  auto x = randomVector(3000, 3, 1.0f), z = randomVector(3000, 4, 1.0f);
  TransferSettings s;
  s.dtype = GetParam();
  OutgoingPush out = encodePush(x, z, {}, s, kChunk);
  ASSERT_TRUE(out.delta);
  auto decoded = decodeAll(*out.payload, x.size());
  ASSERT_EQ(out.residual.size(), x.size());
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_NEAR(decoded[i] + out.residual[i], x[i] - z[i], 1e-6f) << "element " << i;
}

TEST_P(EncodingTest, ErrorFeedbackRemovesTheBiasOverRounds) {
  // The same small delta sent for many rounds: without feedback the rounding
  // error repeats every round; with it the decoded sum tracks the true sum.
  const size_t n = 2048, rounds = 50;
  auto z = randomVector(n, 5, 1.0f), step = randomVector(n, 6, 1e-3f);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = z[i] + step[i];
  auto driftAfter = [&](bool feedback) {
    TransferSettings s;
    s.dtype = GetParam();
    s.error_feedback = feedback;
    std::vector<double> sum(n, 0.0);
    std::vector<float> residual;
    for (size_t r = 0; r < rounds; ++r) {
      OutgoingPush out = encodePush(x, z, residual, s, kChunk);
      residual = out.residual;
      auto d = decodeAll(*out.payload, n);
      for (size_t i = 0; i < n; ++i) sum[i] += d[i];
    }
    double worst = 0;
    for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(sum[i] - rounds * double(step[i])));
    return worst;
  };
  const double with = driftAfter(true), without = driftAfter(false);
  EXPECT_LT(with, without / 5) << "feedback " << with << " vs none " << without;
}

TEST_P(EncodingTest, AResidualLeftFromBeforeFeedbackWasTurnedOffIsNotAdded) {
  auto x = randomVector(3000, 7, 1.0f), z = randomVector(3000, 8, 1.0f);
  const auto stale = randomVector(3000, 9, 0.5f);
  TransferSettings s;
  s.dtype = GetParam();
  s.error_feedback = false;
  OutgoingPush with_stale = encodePush(x, z, stale, s, kChunk);
  OutgoingPush without = encodePush(x, z, {}, s, kChunk);
  EXPECT_EQ(*with_stale.values, *without.values) << "the delta sent is x - z alone";
  EXPECT_TRUE(with_stale.residual.empty()) << "no feedback, nothing owed to the next round";
}

INSTANTIATE_TEST_SUITE_P(Encodings, EncodingTest,
                         ::testing::Values(proto::DTYPE_BF16, proto::DTYPE_FP16, proto::DTYPE_INT8_BLOCK),
                         [](const ::testing::TestParamInfo<proto::DType>& info) {
                           return std::string(encodingName(info.param));
                         });

TEST(CompressedPush, EncodingNamesParseAndUnknownOnesListTheChoices) {
  EXPECT_EQ(parseEncoding("int8"), proto::DTYPE_INT8_BLOCK);
  EXPECT_EQ(parseEncoding("bf16"), proto::DTYPE_BF16);
  try {
    parseEncoding("fp8");
    FAIL() << "fp8 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("int8"), std::string::npos);
  }
}

TEST(CompressedPush, MismatchedSizesAreRejected) {
  TransferSettings s;
  s.dtype = proto::DTYPE_BF16;
  EXPECT_THROW(encodePush(std::vector<float>(10), std::vector<float>(9), {}, s, kChunk), std::invalid_argument);
}

}  // namespace
}  // namespace tapestry::worker
