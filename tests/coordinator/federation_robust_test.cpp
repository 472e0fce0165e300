// Robust aggregation rules at the coordinator: one member sending extreme
// values with an absurd sample count moves the median and the trimmed mean
// by no more than an honest member would, while it drags the weighted mean
// away; compressed (delta) pushes and pushes cut short count as the vectors
// they stand for, and nothing of a round carries into the next.
#include <algorithm>
#include <cmath>

#include "coordinator/federation_fixture.h"

namespace tapestry::coordinator::testing {
namespace {

class FederationRobustTest : public FederationFixture {
 protected:
  CoordinatorConfig robustConfig(AggregationRule rule, double trim = 0.2) const {
    CoordinatorConfig c = config();
    c.rule = rule;
    c.trim_fraction = trim;
    c.cpu_threads = 2;
    return c;
  }
  // Element-wise median of `members` (odd count).
  static std::vector<float> median(const std::vector<std::vector<float>>& members) {
    std::vector<float> out(kParams), column(members.size());
    for (size_t i = 0; i < kParams; ++i) {
      for (size_t k = 0; k < members.size(); ++k) column[k] = members[k][i];
      std::sort(column.begin(), column.end());
      out[i] = column[column.size() / 2];
    }
    return out;
  }
};

const std::vector<std::string> kIds = {"a", "b", "c", "d", "e"};

TEST_F(FederationRobustTest, AnExtremeMemberDoesNotMoveTheMedian) {
  for (auto rule : {AggregationRule::kMean, AggregationRule::kMedian}) {
    auto f = make(robustConfig(rule));
    const std::vector<float> z0 = vectorFor(1);
    bootstrap(*f, kIds, z0);
    std::vector<std::vector<float>> honest;
    for (unsigned k = 0; k < 4; ++k) {
      honest.push_back(vectorFor(10 + k, 0.5f));
      ASSERT_FALSE(push(*f, kIds[k], 0, 100, honest.back()));
    }
    const std::vector<float> hostile(kParams, 1e6f);
    ASSERT_FALSE(push(*f, "e", 0, 1000000000, hostile));
    ASSERT_TRUE(f->advance(t0_));
    const auto& z = *f->consensus();
    if (rule == AggregationRule::kMean) {
      EXPECT_GT(z[0], 9e5f) << "the weighted mean follows the member with the largest claim";
      continue;
    }
    auto all = honest;
    all.push_back(hostile);
    EXPECT_EQ(z, median(all));
    for (size_t i = 0; i < kParams; ++i) {
      float hi = -1e30f;
      for (const auto& h : honest) hi = std::max(hi, h[i]);
      ASSERT_LE(z[i], hi) << "element " << i << " left the honest members' range";
    }
  }
}

TEST_F(FederationRobustTest, TrimmedMeanDropsTheExtremesAndIgnoresSampleCounts) {
  auto f = make(robustConfig(AggregationRule::kTrimmedMean, 0.2));
  const std::vector<float> z0 = vectorFor(1);
  bootstrap(*f, kIds, z0);
  std::vector<std::vector<float>> members;
  for (unsigned k = 0; k < 5; ++k) members.push_back(vectorFor(20 + k, 0.0f));
  members[4] = std::vector<float>(kParams, -1e6f);  // the lowest value everywhere: trimmed
  for (unsigned k = 0; k < 5; ++k) ASSERT_FALSE(push(*f, kIds[k], 0, k == 0 ? 1000000 : 1, members[k]));
  ASSERT_TRUE(f->advance(t0_));
  const auto& z = *f->consensus();
  for (size_t i = 0; i < kParams; ++i) {
    std::vector<float> v;
    for (const auto& m : members) v.push_back(m[i]);
    std::sort(v.begin(), v.end());
    const float expected = static_cast<float>((double(v[1]) + v[2] + v[3]) / 3.0);
    ASSERT_NEAR(z[i], expected, 1e-6f) << "element " << i;
  }
}

// A delta push counts as z_r + delta; a push cut off after its first chunk
// counts as z_r for the rest; the next round starts from nothing.
TEST_F(FederationRobustTest, DeltaAndInterruptedPushesCountAsTheirVectors) {
  auto f = make(robustConfig(AggregationRule::kMedian));
  const std::vector<float> z0 = vectorFor(1);
  bootstrap(*f, {"a", "b", "c"}, z0);
  const std::vector<float> xa = vectorFor(2, 3.0f), xb = vectorFor(3, 3.0f), xc = vectorFor(4, -3.0f);
  ASSERT_FALSE(push(*f, "a", 0, 1, xa));
  std::vector<float> db(kParams);
  for (size_t i = 0; i < kParams; ++i) db[i] = xb[i] - z0[i];
  auto payload = common::EncodedPayload::encode(proto::DTYPE_FP32, db.data(), db.size(), kChunk);
  auto header = pushHeader(0, 1, payload.header());
  header.set_delta(true);
  ASSERT_FALSE(f->beginPush("b", header));
  for (size_t c = 0; c < kChunks; ++c) ASSERT_FALSE(sendChunk(*f, "b", payload, c));
  ASSERT_FALSE(push(*f, "c", 0, 1, xc, false, /*chunks=*/1));
  f->depart("c");
  ASSERT_TRUE(f->advance(t0_));
  std::vector<float> rb(kParams);
  for (size_t i = 0; i < kParams; ++i) rb[i] = z0[i] + db[i];
  const std::vector<float> expected = median({xa, rb, spliced(xc, z0, 1)});
  EXPECT_EQ(*f->consensus(), expected);

  // Round 1 with two of the three: the median of those two only.
  const std::vector<float> z1 = *f->consensus();
  const std::vector<float> ya = vectorFor(5), yb = vectorFor(6);
  ASSERT_FALSE(push(*f, "a", 1, 1, ya));
  ASSERT_FALSE(push(*f, "b", 1, 1, yb));
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(31))) << "past the deadline with a quorum of 1";
  for (size_t i = 0; i < kParams; ++i)
    ASSERT_FLOAT_EQ((*f->consensus())[i], static_cast<float>((double(ya[i]) + yb[i]) / 2)) << "element " << i;
}

TEST_F(FederationRobustTest, NonFiniteChunksCountAsTheConsensus) {
  auto f = make(robustConfig(AggregationRule::kMedian));
  const std::vector<float> z0 = vectorFor(1);
  bootstrap(*f, {"a", "b", "c"}, z0);
  const std::vector<float> xa = vectorFor(2, 1.0f), xb = vectorFor(3, 1.0f);
  std::vector<float> xc = vectorFor(4, 1.0f);
  xc[5] = std::nanf("");  // in chunk 0
  ASSERT_FALSE(push(*f, "a", 0, 1, xa));
  ASSERT_FALSE(push(*f, "b", 0, 1, xb));
  Rejection r = push(*f, "c", 0, 1, xc);
  EXPECT_EQ(r.code, common::Errc::kNonFinite);
  f->depart("c");
  ASSERT_TRUE(f->advance(t0_));
  for (float x : *f->consensus()) ASSERT_TRUE(std::isfinite(x));
  // c's vector is z0 everywhere: its bad chunk and the chunks it never sent.
  EXPECT_EQ(*f->consensus(), median({xa, xb, z0}));
}

}  // namespace
}  // namespace tapestry::coordinator::testing
