// SCAFFOLD's correction scale backs off: a round in which members' training
// diverged is refused (z_r kept), a consensus that collapsed gives way to the
// best one so far (best.ckpt, kept for every algorithm), and either halves
// the share of the correction members apply, down to
// algorithm.min_correction_scale; the lowered scale is sent with every
// consensus and in the Welcome, recorded per round and kept across a
// coordinator restart unless the operator configures another one.
#include <filesystem>

#include "coordinator/best_consensus.h"
#include "coordinator/federation_fixture.h"

namespace tapestry::coordinator::testing {
namespace {

class ScaffoldBackoffTest : public FederationFixture {
 protected:
  CoordinatorConfig scaffold(double scale = 1.0, double floor = 0.25) const {
    CoordinatorConfig c = config();
    c.algorithm = Algorithm::kScaffold;
    c.rho = 0;
    c.correction_scale = scale;
    c.min_correction_scale = floor;
    return c;
  }

  CoordinatorConfig fedavg() const {
    CoordinatorConfig c = config();
    c.algorithm = Algorithm::kFedAvg;
    c.rho = 0;
    return c;
  }

  // One round in which a pushes a trained vector and b, whose training
  // diverged, pushes z_r back flagged `restarted` (when `b_restarted`).
  void round(Federation& f, bool b_restarted, unsigned seed) {
    ASSERT_FALSE(push(f, "a", f.round(), 100, vectorFor(seed)));
    const std::vector<float> z = *f.consensus();
    auto payload = common::EncodedPayload::encode(proto::DTYPE_FP32, z.data(), z.size(), kChunk);
    proto::PushFromWorker b = pushHeader(f.round(), 300, payload.header());
    b.set_restarted(b_restarted);
    ASSERT_FALSE(f.beginPush("b", b));
    for (size_t c = 0; c < payload.chunks(); ++c) ASSERT_FALSE(sendChunk(f, "b", payload, c));
    ASSERT_TRUE(f.advance(t0_ + std::chrono::seconds(60)));
  }

  // Two rounds in which a and b push trained vectors: z_r's digest then
  // repeats z_{r-1}'s, so members apply their corrections in the next round.
  void settle(Federation& f, unsigned seed) {
    ASSERT_NO_FATAL_FAILURE(round(f, false, seed));
    ASSERT_NO_FATAL_FAILURE(round(f, false, seed + 100));
    ASSERT_NE(f.state().contributors_digest, 0u);
    ASSERT_EQ(f.state().contributors_digest, f.state().previous_digest);
  }

  struct Rating {
    const char* id;
    double metric;
    uint64_t samples;
  };
  // One round in which each member pushes a trained vector with its rating of z_r.
  void ratedBy(Federation& f, std::initializer_list<Rating> ratings, unsigned seed) {
    for (const Rating& r : ratings) {
      const std::vector<float> values = vectorFor(seed++);
      auto payload = common::EncodedPayload::encode(proto::DTYPE_FP32, values.data(), values.size(), kChunk);
      proto::PushFromWorker p = pushHeader(f.round(), 100, payload.header());
      p.set_metric(r.metric);
      p.set_metric_samples(r.samples);
      ASSERT_FALSE(f.beginPush(r.id, p));
      for (size_t c = 0; c < payload.chunks(); ++c) ASSERT_FALSE(sendChunk(f, r.id, payload, c));
    }
    ASSERT_TRUE(f.advance(t0_ + std::chrono::seconds(60)));
  }

  // One round in which a and b push trained vectors and rate z_r `metric`.
  void ratedRound(Federation& f, double metric, unsigned seed) {
    ratedBy(f, {{"a", metric, 50}, {"b", metric, 50}}, seed);
  }

  // z_0 and then z_1 are rated best; the files are then put back as a
  // coordinator stopped while z_1 was staged as the next best would have left
  // them: best.ckpt holding z_0, best.ckpt.next holding z_1, and
  // coordinator.ckpt either from before z_1's rating (`state_written` false) or
  // the one that records it. Returns z_0 and z_1.
  std::pair<std::vector<float>, std::vector<float>> stopWhileABestIsStaged(bool state_written) {
    namespace fs = std::filesystem;
    const std::string best = bestCheckpointPath(dir_), before = dir_ + "/z1-state.ckpt";
    const std::string z0_best = dir_ + "/z0-best.ckpt";
    std::vector<float> z0, z1;
    {
      auto f = make(scaffold(1.0, 0.25));
      bootstrap(*f, {"a", "b"}, vectorFor(1));
      z0 = *f->consensus();
      ratedRound(*f, 0.80, 10);  // z_0 rated 0.80: the best
      z1 = *f->consensus();
      fs::copy_file(checkpointPath(dir_), before);
      fs::copy_file(best, z0_best);
      ratedRound(*f, 0.90, 20);  // z_1 rated 0.90: the best
      EXPECT_EQ(f->state().best_round, 1u);
    }
    fs::rename(best, best + ".next");
    fs::rename(z0_best, best);
    if (!state_written) fs::rename(before, checkpointPath(dir_));
    return {z0, z1};
  }
};

TEST_F(ScaffoldBackoffTest, EachDivergedRoundHalvesItDownToTheFloor) {
  auto f = make(scaffold(1.0, 0.25));
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  EXPECT_DOUBLE_EQ(f->state().correction_scale, 1.0);
  ASSERT_NO_FATAL_FAILURE(round(*f, false, 10));
  EXPECT_DOUBLE_EQ(f->state().correction_scale, 1.0) << "a round without divergence keeps it";
  const double expected[] = {0.5, 0.25, 0.25};
  for (double scale : expected) {
    ASSERT_NO_FATAL_FAILURE(settle(*f, 20));
    const std::vector<float> before = *f->consensus();
    const bool above_floor = f->state().correction_scale > 0.25;
    ASSERT_NO_FATAL_FAILURE(round(*f, true, 30));
    EXPECT_DOUBLE_EQ(f->state().correction_scale, scale);
    EXPECT_DOUBLE_EQ(f->state().log.back().correction_scale, scale) << "the round record says what z_r+1 carries";
    EXPECT_EQ(*f->consensus() == before, above_floor)
        << "the update of a diverged round is refused until the scale is at its floor, then counted as usual";
    EXPECT_EQ(f->state().log.back().refused, above_floor);
    EXPECT_EQ(f->state().contributors_digest, 0u);
  }
  ASSERT_NO_FATAL_FAILURE(round(*f, false, 40));
  EXPECT_DOUBLE_EQ(f->state().correction_scale, 0.25) << "it is not raised again by itself";
  EXPECT_DOUBLE_EQ(admitOk(*f, "c").correction_scale(), 0.25) << "a member that joins now gets the lowered scale";
}

TEST_F(ScaffoldBackoffTest, ADivergenceWithoutCorrectionsInEffectIsNotTheirs) {
  auto f = make(scaffold(1.0, 0.25));
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  // Round 0 trains from z_0 (digest 0), round 1 from z_1 (a digest seen once):
  // no member applies a correction in either, so a divergence is its own.
  for (unsigned seed : {10u, 20u}) {
    const std::vector<float> before = *f->consensus();
    ASSERT_NO_FATAL_FAILURE(round(*f, true, seed));
    EXPECT_NE(*f->consensus(), before);
    EXPECT_DOUBLE_EQ(f->state().correction_scale, 1.0);
  }
}

TEST_F(ScaffoldBackoffTest, ALoweredScaleSurvivesARestartUnlessTheOperatorChangesIt) {
  {
    auto f = make(scaffold(0.8, 0.1));
    bootstrap(*f, {"a", "b"}, vectorFor(1));
    ASSERT_NO_FATAL_FAILURE(settle(*f, 10));
    ASSERT_NO_FATAL_FAILURE(round(*f, true, 20));
    ASSERT_DOUBLE_EQ(f->state().correction_scale, 0.4);
  }
  auto resumed = make(scaffold(0.8, 0.1), *loadFederationState(dir_));
  EXPECT_DOUBLE_EQ(resumed->state().correction_scale, 0.4);
  EXPECT_DOUBLE_EQ(admitOk(*resumed, "a").correction_scale(), 0.4);
  resumed.reset();
  auto reconfigured = make(scaffold(0.3, 0.1), *loadFederationState(dir_));
  EXPECT_DOUBLE_EQ(reconfigured->state().correction_scale, 0.3) << "the operator's new setting wins";
}

TEST_F(ScaffoldBackoffTest, ACollapsedConsensusGivesWayToTheBestSoFar) {
  auto f = make(scaffold(1.0, 0.25));
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.50, 10));  // z_0 rated 0.50
  const std::vector<float> z1 = *f->consensus();
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.80, 20));  // z_1 rated 0.80: the best
  EXPECT_EQ(f->state().best_round, 1u);
  EXPECT_DOUBLE_EQ(f->state().best_metric, 0.80);
  ASSERT_TRUE(std::filesystem::exists(bestCheckpointPath(dir_)));
  EXPECT_EQ(loadFederationStateFile(bestCheckpointPath(dir_))->consensus, z1) << "best.ckpt holds z_1";
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.45, 30));  // z_2 rated 0.45: lower, not collapsed
  EXPECT_DOUBLE_EQ(f->state().correction_scale, 1.0);
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.30, 40));  // z_3 rated 0.30: below half the best
  EXPECT_EQ(*f->consensus(), z1) << "z_4 is the best consensus, z_1";
  EXPECT_EQ(f->state().log.back().restored, 1);
  EXPECT_TRUE(f->state().log.back().refused);
  EXPECT_DOUBLE_EQ(f->state().correction_scale, 0.5);
  EXPECT_EQ(f->state().contributors_digest, 0u) << "every member must drop its correction";
  EXPECT_EQ(f->round(), 4u);
}

TEST_F(ScaffoldBackoffTest, RatingsByOtherMembersAreANewYardstickNotACollapse) {
  auto f = make(scaffold(1.0, 0.25));
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.80, 10));  // z_0 rated 0.80 by a and b
  // Only b rates z_1 (a's push carries no rating): 0.30 is b's view, not a collapse.
  ASSERT_FALSE(push(*f, "a", f->round(), 100, vectorFor(20)));
  const std::vector<float> values = vectorFor(21);
  auto payload = common::EncodedPayload::encode(proto::DTYPE_FP32, values.data(), values.size(), kChunk);
  proto::PushFromWorker rated = pushHeader(f->round(), 100, payload.header());
  rated.set_metric(0.30);
  rated.set_metric_samples(50);
  ASSERT_FALSE(f->beginPush("b", rated));
  for (size_t c = 0; c < payload.chunks(); ++c) ASSERT_FALSE(sendChunk(*f, "b", payload, c));
  const std::vector<float> before = *f->consensus();
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(60)));
  EXPECT_NE(*f->consensus(), before);
  EXPECT_DOUBLE_EQ(f->state().correction_scale, 1.0);
  EXPECT_EQ(f->state().best_round, 1u) << "the best is now judged by b's ratings";
  EXPECT_DOUBLE_EQ(f->state().best_metric, 0.30);
}

TEST_F(ScaffoldBackoffTest, ACollapseWithoutABestCheckpointKeepsZrAndStillBacksOff) {
  auto f = make(scaffold(1.0, 0.25));
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.80, 10));
  std::filesystem::remove(bestCheckpointPath(dir_));  // lost, or removed by the operator
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.30, 20));  // z_1 rated 0.30: collapsed
  const std::vector<float> z1 = *f->consensus();
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.10, 30));  // z_2 = z_1, rated lower still
  EXPECT_DOUBLE_EQ(f->state().correction_scale, 0.25);
  EXPECT_EQ(*f->consensus(), z1) << "both collapsed rounds were refused";
}

TEST_F(ScaffoldBackoffTest, ABestStagedButNeverRecordedIsDiscarded) {
  const auto [z0, z1] = stopWhileABestIsStaged(false);
  auto f = make(scaffold(1.0, 0.25), *loadFederationState(dir_));
  ASSERT_EQ(f->round(), 1u);
  EXPECT_FALSE(std::filesystem::exists(bestCheckpointPath(dir_) + ".next"));
  EXPECT_EQ(loadFederationStateFile(bestCheckpointPath(dir_))->round, f->state().best_round)
      << "best.ckpt holds the round the state records";
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.50, 30));  // z_1 rated 0.50 this time: neither
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.30, 40));  // z_2 rated 0.30: collapsed from z_0's 0.80
  EXPECT_EQ(*f->consensus(), z0);
  EXPECT_EQ(f->state().log.back().restored, 0);
}

TEST_F(ScaffoldBackoffTest, ABestStagedAndRecordedIsPromotedAtStart) {
  const auto [z0, z1] = stopWhileABestIsStaged(true);
  auto f = make(scaffold(1.0, 0.25), *loadFederationState(dir_));
  ASSERT_EQ(f->round(), 2u);
  ASSERT_EQ(f->state().best_round, 1u);
  EXPECT_FALSE(std::filesystem::exists(bestCheckpointPath(dir_) + ".next"));
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.30, 40));  // z_2 rated 0.30: collapsed from z_1's 0.90
  EXPECT_EQ(*f->consensus(), z1);
  EXPECT_EQ(f->state().log.back().restored, 1);
}

TEST_F(ScaffoldBackoffTest, ImplausibleRatingsAreIgnoredAndCannotSteerTheBest) {
  auto f = make(scaffold(1.0, 0.25));
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.80, 10));  // z_0 rated 0.80 by a and b
  const std::vector<float> before = *f->consensus();
  ASSERT_NO_FATAL_FAILURE(ratedBy(*f, {{"a", 50.0, uint64_t{1} << 40}, {"b", 0.70, 50}}, 20));
  EXPECT_DOUBLE_EQ(f->state().log.back().metric, 0.70) << "only b's rating of z_1 counts";
  EXPECT_EQ(f->state().log.back().metric_samples, 50u);
  EXPECT_NE(*f->consensus(), before) << "a's contribution still counts";
  EXPECT_EQ(f->state().best_round, 1u) << "z_1 is best on b's rating; a's 50 would have made it best whatever it was";
  EXPECT_DOUBLE_EQ(f->state().best_metric, 0.70);
}

TEST_F(ScaffoldBackoffTest, TheBestConsensusIsKeptForEveryAlgorithmButRestoredOnlyForScaffold) {
  auto f = make(fedavg());
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.90, 10));
  const std::vector<float> z0 = loadFederationStateFile(bestCheckpointPath(dir_))->consensus;
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.10, 20));
  EXPECT_NE(*f->consensus(), z0);
  EXPECT_EQ(f->state().best_round, 0u);
  EXPECT_EQ(loadFederationState(dir_)->best_round, 0u) << "the best round is part of the checkpoint";
}

// Outside SCAFFOLD nothing undoes a collapse, so the operator is warned when
// it happens, every 10 rounds while it lasts, and told when it is over.
TEST_F(ScaffoldBackoffTest, ACollapseOfAnyAlgorithmIsReportedToTheOperator) {
  auto f = make(fedavg());
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  common::setLogLevel(common::LogLevel::kInfo);  // the fixture keeps tests quiet
  ::testing::internal::CaptureStderr();
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.80, 10));
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.45, 20));  // worse, not collapsed
  for (unsigned r = 0; r < 11; ++r) ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.1275, 30 + r));
  ASSERT_NO_FATAL_FAILURE(ratedRound(*f, 0.70, 50));
  const std::string log = ::testing::internal::GetCapturedStderr();
  const auto count = [&](const std::string& text) {
    size_t n = 0;
    for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("round 3: the members' validation accuracy of z_2 12.75% has collapsed from the best so far, "
                  "accuracy of z_0 80.00%"),
            1u)
      << log;
  EXPECT_EQ(count("is still collapsed (11 rounds)"), 1u) << log;
  EXPECT_EQ(count("collapsed"), 2u) << log;
  EXPECT_NE(log.find("copy best.ckpt over coordinator.ckpt"), std::string::npos) << log;
  EXPECT_NE(log.find("round 14: the consensus recovered, accuracy of z_13 70.00%"), std::string::npos) << log;
}

TEST(BestConsensus, BitsPerByteImproveDownwardsAndCollapseUpwards) {
  EXPECT_TRUE(improvesOn(0.5, -1, true)) << "anything beats nothing";
  EXPECT_FALSE(improvesOn(-1, 0.5, true)) << "no metric is no improvement";
  EXPECT_TRUE(improvesOn(0.6, 0.5, true));
  EXPECT_FALSE(improvesOn(0.6, 0.5, false));
  EXPECT_TRUE(improvesOn(3.1, 3.2, false));
  EXPECT_FALSE(collapsedFrom(0.1, -1, true)) << "no best, no collapse";
  EXPECT_TRUE(collapsedFrom(0.24, 0.5, true));
  EXPECT_FALSE(collapsedFrom(0.26, 0.5, true));
  EXPECT_TRUE(collapsedFrom(6.5, 3.2, false));
  EXPECT_FALSE(collapsedFrom(6.3, 3.2, false));
}

TEST_F(ScaffoldBackoffTest, AFloorEqualToTheScaleNeverLowersIt) {
  auto f = make(scaffold(0.5, 0.5));
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  ASSERT_NO_FATAL_FAILURE(settle(*f, 20));
  const std::vector<float> before = *f->consensus();
  ASSERT_NO_FATAL_FAILURE(round(*f, true, 10));
  EXPECT_DOUBLE_EQ(f->state().correction_scale, 0.5);
  EXPECT_NE(*f->consensus(), before) << "nothing to lower, so nothing is refused";
}

TEST_F(ScaffoldBackoffTest, OtherAlgorithmsCarryNone) {
  auto f = make(fedavg());
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  const std::vector<float> before = *f->consensus();
  ASSERT_NO_FATAL_FAILURE(round(*f, true, 10));
  EXPECT_NE(*f->consensus(), before) << "a restarted member's z_r counts as its contribution";
  EXPECT_EQ(f->state().correction_scale, 0.0);
  EXPECT_EQ(f->state().log.back().correction_scale, 0.0);
  EXPECT_EQ(admitOk(*f, "c").correction_scale(), 0.0);
}

}  // namespace
}  // namespace tapestry::coordinator::testing
