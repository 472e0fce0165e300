// Federation::status, the snapshot behind state_dir/status.json: the open
// round, its deadline and each active member's part in it.
#include "coordinator/federation_fixture.h"

namespace tapestry::coordinator::testing {
namespace {

class FederationStatusTest : public FederationFixture {};

nlohmann::json member(const nlohmann::json& status, const std::string& id) {
  for (const auto& m : status.at("members"))
    if (m.at("id") == id) return m;
  ADD_FAILURE() << id << " not among the members of " << status.dump();
  return {};
}

TEST_F(FederationStatusTest, SaysWhoPushedWhoIsStreamingAndWhoIsLate) {
  CoordinatorConfig c = config();
  c.rounds.min_workers = 4;
  c.rounds.quorum = 2;
  c.rounds.max_staleness = 1;
  c.rounds.max_rounds = 10;
  auto f = make(c);
  const nlohmann::json empty = f->status(t0_);
  EXPECT_FALSE(empty.at("has_consensus").get<bool>());
  EXPECT_TRUE(empty.at("members").empty());

  bootstrap(*f, {"a", "b", "c", "d"}, vectorFor(1));
  ASSERT_FALSE(push(*f, "a", 0, 10, vectorFor(2)));
  ASSERT_FALSE(push(*f, "b", 0, 10, vectorFor(3)));
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(30)));  // c and d missed round 1
  ASSERT_FALSE(push(*f, "c", 0, 10, vectorFor(4)));         // late into round 2
  ASSERT_FALSE(push(*f, "a", 1, 10, vectorFor(5)));
  auto payload = common::EncodedPayload::encode(proto::DTYPE_FP32, vectorFor(6).data(), kParams, kChunk);
  ASSERT_FALSE(f->beginPush("b", pushHeader(1, 10, payload.header())));
  ASSERT_FALSE(sendChunk(*f, "b", payload, 0));  // b is still sending

  const nlohmann::json s = f->status(t0_ + std::chrono::seconds(40));
  EXPECT_EQ(s.at("federation_id"), "unit");
  EXPECT_EQ(s.at("consensus_round"), 1);
  EXPECT_EQ(s.at("open_round"), 2) << "counted as the logs count rounds";
  EXPECT_EQ(s.at("max_rounds"), 10);
  EXPECT_DOUBLE_EQ(s.at("open_for_s").get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(s.at("deadline_in_s").get<double>(), 20.0);
  EXPECT_EQ(s.at("contributors"), 3);
  EXPECT_EQ(s.at("known_members"), 4);
  EXPECT_EQ(member(s, "a").at("push"), "pushed");
  EXPECT_EQ(member(s, "b").at("push"), "streaming");
  EXPECT_EQ(member(s, "c").at("push"), "pushed");
  EXPECT_EQ(member(s, "c").at("late_by"), 1);
  EXPECT_EQ(member(s, "d").at("push"), "waiting");
  EXPECT_FALSE(member(s, "a").contains("late_by"));
  EXPECT_EQ(s.at("last_round").at("round"), 1);
  EXPECT_EQ(s.at("last_round").at("contributors"), 2);

  f->depart("d");
  EXPECT_EQ(f->status(t0_).at("members").size(), 3u) << "only members connected now";
}

}  // namespace
}  // namespace tapestry::coordinator::testing
