#include "coordinator/round_logic.h"

#include <gtest/gtest.h>

namespace tapestry::coordinator {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1);

RoundPolicy policy(size_t min_workers, size_t quorum, seconds deadline = seconds(30), uint64_t max_rounds = 0) {
  RoundPolicy p;
  p.min_workers = min_workers;
  p.quorum = quorum;
  p.deadline = deadline;
  p.max_rounds = max_rounds;
  return p;
}

// A logic with consensus z_0 open since kT0 and `ids` joined.
RoundLogic open(RoundPolicy p, std::initializer_list<const char*> ids) {
  RoundLogic logic(p, 0, true, kT0);
  for (const char* id : ids) logic.workerJoined(id);
  return logic;
}

void push(RoundLogic& logic, const std::string& id) {
  ASSERT_EQ(logic.checkPush(id, logic.round()), PushVerdict::kAccept) << id;
  logic.pushStarted(id);
  logic.pushEnded(id);
}

TEST(RoundLogicTest, ClosesWhenEveryActiveWorkerHasContributed) {
  RoundLogic logic = open(policy(2, 2), {"a", "b"});
  EXPECT_FALSE(logic.shouldClose(kT0));
  push(logic, "a");
  EXPECT_FALSE(logic.shouldClose(kT0)) << "b has not pushed yet";
  push(logic, "b");
  EXPECT_TRUE(logic.shouldClose(kT0));
  EXPECT_EQ(logic.contributorCount(), 2u);
}

TEST(RoundLogicTest, DoesNotCloseWhileAPushIsStreaming) {
  RoundLogic logic = open(policy(2, 1), {"a", "b"});
  push(logic, "a");
  logic.pushStarted("b");
  EXPECT_FALSE(logic.shouldClose(kT0));
  EXPECT_FALSE(logic.shouldClose(kT0 + std::chrono::hours(5))) << "a deadline close must not cut a stream short";
  logic.pushEnded("b");
  EXPECT_TRUE(logic.shouldClose(kT0));
}

TEST(RoundLogicTest, PushesStillStreamingAfterTheGraceAreDueToBeCutOff) {
  RoundPolicy p = policy(2, 1);
  p.push_grace = seconds(45);
  RoundLogic logic = open(p, {"a", "b"});
  ASSERT_TRUE(logic.pushCutoff().has_value());
  EXPECT_EQ(*logic.pushCutoff(), kT0 + seconds(75)) << "deadline + push_grace after the round opened";
  logic.pushStarted("b");
  EXPECT_EQ(logic.streaming(), std::set<std::string>{"b"});
  RoundLogic idle(p, 0, false, kT0);
  EXPECT_FALSE(idle.pushCutoff().has_value()) << "no round is open before z_0";
}

TEST(RoundLogicTest, FewerThanMinWorkersWaitForTheDeadline) {
  RoundLogic logic = open(policy(3, 2), {"a", "b"});
  push(logic, "a");
  push(logic, "b");
  EXPECT_FALSE(logic.shouldClose(kT0)) << "everyone pushed, but only 2 of min_workers 3";
  EXPECT_FALSE(logic.shouldClose(kT0 + seconds(30) - milliseconds(1)));
  EXPECT_TRUE(logic.shouldClose(kT0 + seconds(30)));
  ASSERT_TRUE(logic.nextDeadline().has_value());
  EXPECT_EQ(*logic.nextDeadline(), kT0 + seconds(30));
}

TEST(RoundLogicTest, ClosesAtTheDeadlineOnlyWithAQuorum) {
  RoundLogic logic = open(policy(3, 2), {"a", "b", "c"});
  EXPECT_FALSE(logic.shouldClose(kT0 + seconds(31))) << "nobody contributed";
  push(logic, "a");
  EXPECT_FALSE(logic.shouldClose(kT0 + seconds(29)));
  EXPECT_FALSE(logic.shouldClose(kT0 + seconds(31))) << "1 contributor is below quorum 2";
  push(logic, "b");
  EXPECT_FALSE(logic.shouldClose(kT0 + seconds(29))) << "c is still awaited before the deadline";
  EXPECT_TRUE(logic.shouldClose(kT0 + seconds(31)));
}

TEST(RoundLogicTest, AWorkerThatLeavesIsNoLongerAwaited) {
  RoundLogic logic = open(policy(2, 2), {"a", "b", "c"});
  push(logic, "a");
  push(logic, "b");
  EXPECT_FALSE(logic.shouldClose(kT0));
  logic.workerLeft("c");
  EXPECT_FALSE(logic.isActive("c"));
  EXPECT_EQ(logic.activeCount(), 2u);
  EXPECT_TRUE(logic.shouldClose(kT0));
}

TEST(RoundLogicTest, AWorkerThatPushedAndLeftStillCounts) {
  RoundLogic logic = open(policy(2, 2), {"a", "b"});
  push(logic, "a");
  logic.workerLeft("a");
  EXPECT_TRUE(logic.hasContributed("a"));
  EXPECT_FALSE(logic.shouldClose(kT0)) << "b is still awaited";
  push(logic, "b");
  EXPECT_EQ(logic.contributorCount(), 2u);
  EXPECT_TRUE(logic.shouldClose(kT0)) << "a's push counts towards min_workers 2";
}

TEST(RoundLogicTest, LeavingDuringAPushEndsItsStream) {
  RoundLogic logic = open(policy(2, 2), {"a", "b"});
  logic.pushStarted("a");
  push(logic, "b");
  EXPECT_FALSE(logic.shouldClose(kT0));
  logic.workerLeft("a");
  EXPECT_TRUE(logic.hasContributed("a"));
  EXPECT_TRUE(logic.shouldClose(kT0));
}

TEST(RoundLogicTest, PushVerdicts) {
  RoundLogic logic(policy(1, 1, seconds(30), 1), 0, false, kT0);
  logic.workerJoined("a");
  EXPECT_EQ(logic.checkPush("a", 0), PushVerdict::kNoConsensus);
  EXPECT_FALSE(logic.shouldClose(kT0 + std::chrono::hours(1)));
  EXPECT_FALSE(logic.nextDeadline().has_value());

  logic.consensusInitialised(kT0 + seconds(5));
  EXPECT_TRUE(logic.hasConsensus());
  EXPECT_EQ(logic.openedAt(), kT0 + seconds(5));
  EXPECT_EQ(logic.checkPush("a", 1), PushVerdict::kStaleRound);
  EXPECT_EQ(logic.checkPush("a", 0), PushVerdict::kAccept);
  logic.pushStarted("a");
  EXPECT_EQ(logic.checkPush("a", 0), PushVerdict::kAlreadyPushed);
  logic.pushEnded("a");
  EXPECT_EQ(logic.checkPush("a", 0), PushVerdict::kAlreadyPushed);

  logic.roundClosed(kT0 + seconds(9));
  EXPECT_TRUE(logic.finished());
  EXPECT_EQ(logic.checkPush("a", 1), PushVerdict::kFinished);
  EXPECT_EQ(logic.checkPush("a", 0), PushVerdict::kFinished);
}

TEST(RoundLogicTest, RoundClosedClearsContributorsAndAdvances) {
  RoundLogic logic = open(policy(1, 1), {"a", "b"});
  push(logic, "a");
  push(logic, "b");
  const Clock::time_point t1 = kT0 + seconds(12);
  logic.roundClosed(t1);
  EXPECT_EQ(logic.round(), 1u);
  EXPECT_EQ(logic.contributorCount(), 0u);
  EXPECT_FALSE(logic.hasContributed("a"));
  EXPECT_EQ(logic.openedAt(), t1);
  EXPECT_EQ(*logic.nextDeadline(), t1 + seconds(30));
  EXPECT_FALSE(logic.shouldClose(t1 + std::chrono::hours(1))) << "a new round needs new contributions";
  EXPECT_EQ(logic.checkPush("a", 0), PushVerdict::kStaleRound);
  EXPECT_EQ(logic.checkPush("a", 1), PushVerdict::kAccept);
  EXPECT_EQ(logic.activeCount(), 2u) << "membership survives the round";
}

TEST(RoundLogicTest, FinishedAfterMaxRounds) {
  RoundLogic logic = open(policy(1, 1, seconds(30), 2), {"a"});
  for (uint64_t r = 0; r < 2; ++r) {
    EXPECT_FALSE(logic.finished()) << r;
    push(logic, "a");
    ASSERT_TRUE(logic.shouldClose(kT0));
    logic.roundClosed(kT0);
  }
  EXPECT_TRUE(logic.finished());
  EXPECT_EQ(logic.round(), 2u);
  EXPECT_FALSE(logic.nextDeadline().has_value());
  EXPECT_FALSE(logic.shouldClose(kT0 + std::chrono::hours(1)));

  RoundLogic unbounded(policy(1, 1), 1000000, true, kT0);
  EXPECT_FALSE(unbounded.finished()) << "max_rounds 0 never finishes";
}

TEST(RoundLogicTest, ResumesAtAGivenRound) {
  RoundLogic logic(policy(1, 1), 7, true, kT0);
  logic.workerJoined("a");
  EXPECT_EQ(logic.round(), 7u);
  EXPECT_EQ(logic.checkPush("a", 6), PushVerdict::kStaleRound);
  push(logic, "a");
  EXPECT_TRUE(logic.shouldClose(kT0));
}

TEST(RoundLogicTest, APushFromAnEarlierRoundIsLateWithinMaxStalenessAndStaleBeyond) {
  RoundPolicy p = policy(1, 1);
  p.max_staleness = 2;
  RoundLogic logic(p, 5, true, kT0);
  logic.workerJoined("a");
  EXPECT_EQ(logic.checkPush("a", 5), PushVerdict::kAccept);
  EXPECT_EQ(logic.checkPush("a", 4), PushVerdict::kLate);
  EXPECT_EQ(logic.checkPush("a", 3), PushVerdict::kLate);
  EXPECT_EQ(logic.checkPush("a", 2), PushVerdict::kStaleRound) << "3 rounds behind, max_staleness 2";
  EXPECT_EQ(logic.checkPush("a", 6), PushVerdict::kStaleRound) << "a round that is not open yet";
  logic.pushStarted("a");
  logic.pushEnded("a");
  EXPECT_EQ(logic.checkPush("a", 4), PushVerdict::kAlreadyPushed) << "one contribution per member and round";
  EXPECT_EQ(logic.checkPush("a", 5), PushVerdict::kAlreadyPushed);
  EXPECT_TRUE(logic.shouldClose(kT0)) << "a late push counts towards closing the round";

  RoundLogic strict(policy(1, 1), 5, true, kT0);
  EXPECT_EQ(strict.checkPush("a", 4), PushVerdict::kStaleRound) << "max_staleness 0: every late push is stale";
}

}  // namespace
}  // namespace tapestry::coordinator
