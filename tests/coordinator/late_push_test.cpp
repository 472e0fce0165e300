// Pushes trained on an older consensus than the open round's: dropped by
// default, joined to the open round with less weight under
// rounds.max_staleness.
#include <fstream>
#include <string>

#include "coordinator/federation_fixture.h"

namespace tapestry::coordinator::testing {
namespace {

using common::Errc;

class LatePushTest : public FederationFixture {
 protected:
  CoordinatorConfig lateConfig(uint64_t max_staleness, double exponent) const {
    CoordinatorConfig c = config();
    c.rounds.min_workers = 3;
    c.rounds.quorum = 2;
    c.rounds.max_staleness = max_staleness;
    c.staleness_exponent = exponent;
    return c;
  }

  // Round 0 closed at its deadline by a and b; c, the straggler, missed it.
  // Returns with round 1 open.
  void closeRoundZeroWithoutC(Federation& f) {
    bootstrap(f, {"a", "b", "c"}, vectorFor(1));
    ASSERT_FALSE(push(f, "a", 0, 100, vectorFor(2)));
    ASSERT_FALSE(push(f, "b", 0, 100, vectorFor(3)));
    ASSERT_TRUE(f.advance(t0_ + std::chrono::seconds(30)));
    ASSERT_EQ(f.round(), 1u);
  }

  static std::string file(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
};

TEST_F(LatePushTest, IsDroppedByDefaultSayingWhichRoundIsOpen) {
  auto f = make(lateConfig(0, 0.5));
  closeRoundZeroWithoutC(*f);
  Rejection r = push(*f, "c", 0, 100, vectorFor(4));
  EXPECT_EQ(r.code, common::makeError(Errc::kStaleRound));
  EXPECT_NE(r.message.find("push for round 0 but round 1 is open; it was dropped"), std::string::npos) << r.message;
  EXPECT_FALSE(f->advance(t0_ + std::chrono::seconds(31))) << "c's dropped push is no contribution to round 1";
}

TEST_F(LatePushTest, JoinsTheOpenRoundWithItsWeightScaledByStaleness) {
  auto f = make(lateConfig(2, 1.0));
  closeRoundZeroWithoutC(*f);
  const std::vector<float> xa = vectorFor(5, 0.5f), xb = vectorFor(6, -0.5f), xc = vectorFor(7, 2.0f);
  auto payload = common::EncodedPayload::encode(proto::DTYPE_FP32, xc.data(), xc.size(), kChunk);
  proto::PushFromWorker late = pushHeader(0, 400, payload.header());
  late.set_metric(0.99);  // a rating of z_0, not of z_1: it must not count
  late.set_metric_samples(1000);
  ASSERT_FALSE(f->beginPush("c", late));
  for (size_t c = 0; c < kChunks; ++c) ASSERT_FALSE(sendChunk(*f, "c", payload, c));

  proto::PushFromWorker again = pushHeader(1, 400, payload.header());
  Rejection r = f->beginPush("c", again);
  EXPECT_EQ(r.code, common::makeError(Errc::kStaleRound)) << "one contribution per member and round";
  EXPECT_NE(r.message.find("late push"), std::string::npos) << r.message;

  ASSERT_FALSE(push(*f, "a", 1, 100, xa));
  EXPECT_FALSE(f->advance(t0_ + std::chrono::seconds(31))) << "b is still awaited";
  ASSERT_FALSE(push(*f, "b", 1, 100, xb));
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(32))) << "every member has contributed, c late";
  // One round late with exponent 1: 400 samples count as 400 / 2.
  expectWeightedMean(*f->consensus(), {{100, xa}, {100, xb}, {200, xc}});
  const RoundRecord& record = f->state().log.at(1);
  EXPECT_EQ(record.contributors, 3u);
  EXPECT_EQ(record.late, 1u);
  EXPECT_EQ(record.metric, -1) << "only a and b rate z_1, and they did not";
  EXPECT_NE(file(dir_ + "/rounds.jsonl").find("\"late\":1"), std::string::npos);

  f.reset();
  auto restored = loadFederationState(dir_);
  ASSERT_TRUE(restored.has_value());
  EXPECT_EQ(restored->log.at(1).late, 1u) << "the round log keeps it across a restart";
}

TEST_F(LatePushTest, BeyondMaxStalenessIsDroppedSayingWhy) {
  auto f = make(lateConfig(1, 0.5));
  closeRoundZeroWithoutC(*f);
  for (const char* id : {"a", "b", "c"}) ASSERT_FALSE(push(*f, id, 1, 100, vectorFor(8)));
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(31)));
  ASSERT_EQ(f->round(), 2u);
  Rejection r = push(*f, "c", 0, 100, vectorFor(9));
  EXPECT_EQ(r.code, common::makeError(Errc::kStaleRound));
  EXPECT_NE(r.message.find("more than rounds.max_staleness 1 behind"), std::string::npos) << r.message;
}

// A compressed push carries its delta to the consensus it trained on; late,
// that delta is applied to the open round's consensus.
TEST_F(LatePushTest, ALateDeltaPushMovesTheOpenRoundsConsensus) {
  auto f = make(lateConfig(1, 0.5));
  closeRoundZeroWithoutC(*f);
  const std::vector<float> z1 = *f->consensus();
  const std::vector<float> delta = vectorFor(10, 0.0f);
  auto payload = common::EncodedPayload::encode(proto::DTYPE_FP32, delta.data(), delta.size(), kChunk);
  proto::PushFromWorker late = pushHeader(0, 100, payload.header());
  late.set_delta(true);
  ASSERT_FALSE(f->beginPush("c", late));
  for (size_t c = 0; c < kChunks; ++c) ASSERT_FALSE(sendChunk(*f, "c", payload, c));
  const std::vector<float> xa = vectorFor(11), xb = vectorFor(12);
  ASSERT_FALSE(push(*f, "a", 1, 100, xa));
  ASSERT_FALSE(push(*f, "b", 1, 100, xb));
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(31)));
  std::vector<float> moved(kParams);
  for (size_t i = 0; i < kParams; ++i) moved[i] = z1[i] + delta[i];
  expectWeightedMean(*f->consensus(), {{100, xa}, {100, xb}, {100 / std::sqrt(2.0), moved}});
}

// A member that leaves during its late push: the chunks it did not send are
// the open round's consensus, at the push's reduced weight.
TEST_F(LatePushTest, ALatePushCutShortIsCompletedFromTheOpenRoundsConsensus) {
  auto f = make(lateConfig(1, 1.0));
  closeRoundZeroWithoutC(*f);
  const std::vector<float> z1 = *f->consensus();
  const std::vector<float> xc = vectorFor(13, 3.0f);
  ASSERT_FALSE(push(*f, "c", 0, 200, xc, false, /*chunks=*/1));
  f->depart("c");
  const std::vector<float> xa = vectorFor(14), xb = vectorFor(15);
  ASSERT_FALSE(push(*f, "a", 1, 100, xa));
  ASSERT_FALSE(push(*f, "b", 1, 100, xb));
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(31)));
  expectWeightedMean(*f->consensus(), {{100, xa}, {100, xb}, {100, spliced(xc, z1, 1)}});
}

// The robust rules keep every contribution and ignore weights: a late push
// is one contribution among the others.
TEST_F(LatePushTest, UnderTheMedianALatePushIsOneContributionAmongTheOthers) {
  CoordinatorConfig c = lateConfig(1, 0.5);
  c.rule = AggregationRule::kMedian;
  auto f = make(c);
  closeRoundZeroWithoutC(*f);
  ASSERT_FALSE(push(*f, "c", 0, 100, std::vector<float>(kParams, 2.0f)));  // late
  ASSERT_FALSE(push(*f, "a", 1, 100, std::vector<float>(kParams, 1.0f)));
  ASSERT_FALSE(push(*f, "b", 1, 100, std::vector<float>(kParams, 3.0f)));
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(31)));
  EXPECT_EQ(*f->consensus(), std::vector<float>(kParams, 2.0f)) << "the median of 1, 2 (late) and 3";
}

}  // namespace
}  // namespace tapestry::coordinator::testing
