// The contributors digest sent with every consensus: the same members with
// the same sample counts give the same non-zero digest round after round;
// any other set, or a consensus that is not exactly their weighted mean
// (a push cut off, a robust rule), gives another or 0. SCAFFOLD members keep
// their drift corrections only while it stays the same.
#include "coordinator/federation_fixture.h"

namespace tapestry::coordinator::testing {
namespace {

class ContributorsDigestTest : public FederationFixture {
 protected:
  // Pushes one vector per id for the open round, closes it, returns the digest.
  uint64_t round(Federation& f, const std::vector<std::pair<std::string, uint64_t>>& pushes, unsigned seed) {
    for (const auto& [id, samples] : pushes) {
      Rejection r = push(f, id, f.round(), samples, vectorFor(seed++));
      EXPECT_FALSE(r) << id << ": " << r.message;
    }
    EXPECT_TRUE(f.advance(t0_ + std::chrono::seconds(60)));
    return f.state().contributors_digest;
  }
};

TEST_F(ContributorsDigestTest, SameMembersAndWeightsGiveTheSameDigest) {
  auto f = make(config());
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  EXPECT_EQ(f->state().contributors_digest, 0u) << "z_0 is nobody's mean";
  const uint64_t first = round(*f, {{"a", 100}, {"b", 300}}, 10);
  EXPECT_NE(first, 0u);
  EXPECT_EQ(round(*f, {{"b", 300}, {"a", 100}}, 20), first) << "the order of the pushes does not matter";
  EXPECT_NE(round(*f, {{"a", 100}, {"b", 301}}, 30), first) << "a new sample count is a new weight";
  EXPECT_EQ(loadFederationState(dir_)->contributors_digest, f->state().contributors_digest)
      << "the digest is part of the checkpoint";
}

TEST_F(ContributorsDigestTest, AMemberLeavingOrCutOffChangesIt) {
  auto f = make(config());
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  const uint64_t both = round(*f, {{"a", 100}, {"b", 300}}, 10);
  // b leaves after one chunk: its push is completed from z_r, not its mean.
  ASSERT_FALSE(push(*f, "a", f->round(), 100, vectorFor(20)));
  ASSERT_FALSE(push(*f, "b", f->round(), 300, vectorFor(21), false, 1));
  f->depart("b");
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(60)));
  EXPECT_EQ(f->state().contributors_digest, 0u);
  const uint64_t alone = round(*f, {{"a", 100}}, 30);
  EXPECT_NE(alone, 0u);
  EXPECT_NE(alone, both);
}

TEST_F(ContributorsDigestTest, AMemberThatRestartedFromTheConsensusGivesZero) {
  auto f = make(config());
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  const uint64_t both = round(*f, {{"a", 100}, {"b", 300}}, 10);
  ASSERT_FALSE(push(*f, "a", f->round(), 100, vectorFor(20)));
  const std::vector<float> z = *f->consensus();
  auto payload = common::EncodedPayload::encode(proto::DTYPE_FP32, z.data(), z.size(), kChunk);
  proto::PushFromWorker restarted = pushHeader(f->round(), 300, payload.header());
  restarted.set_restarted(true);
  ASSERT_FALSE(f->beginPush("b", restarted));
  for (size_t c = 0; c < payload.chunks(); ++c) ASSERT_FALSE(sendChunk(*f, "b", payload, c));
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(60)));
  EXPECT_EQ(f->state().contributors_digest, 0u) << "b's correction is gone, so everyone's must go";
  EXPECT_EQ(f->state().log.back().restarted, 1u) << "the round record counts the restarted member";
  EXPECT_EQ(round(*f, {{"a", 100}, {"b", 300}}, 30), both);
}

TEST_F(ContributorsDigestTest, RobustRulesGiveZero) {
  CoordinatorConfig c = config();
  c.rule = AggregationRule::kMedian;
  auto f = make(c);
  bootstrap(*f, {"a", "b", "c"}, vectorFor(1));
  EXPECT_EQ(round(*f, {{"a", 1}, {"b", 1}, {"c", 1}}, 10), 0u) << "a median is no weighted mean";
}

}  // namespace
}  // namespace tapestry::coordinator::testing
