// The consensus algorithms' update rules on a problem solved by hand: two
// workers with quadratic losses f_k(w) = 1/2 sum_j a_kj (w_j - c_kj)^2 and
// n_k samples each. The federation's objective sum_k n_k f_k has its minimum
// at w*_j = sum_k n_k a_kj c_kj / sum_k n_k a_kj. The worker half is
// worker/consensus_rule.h and the coordinator half the real CPU aggregator,
// so these are the rules the daemons run, without a network or a model.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "coordinator/aggregation/aggregator.h"
#include "worker/consensus_rule.h"

namespace tapestry {
namespace {

struct Member {
  std::vector<double> a, c;  // curvature and optimum per coordinate
  double samples;
};

// Two members whose curvatures differ, so the plain mean of their optima
// (what FedAvg drifts to) is not the federation's optimum.
const std::vector<Member> kMembers = {
    {{4.0, 1.0, 0.5}, {1.0, -2.0, 3.0}, 100},
    {{1.0, 3.0, 2.0}, {-1.0, 2.0, -1.0}, 300},
};

std::vector<double> federationOptimum() {
  std::vector<double> w(3);
  for (size_t j = 0; j < 3; ++j) {
    double num = 0, den = 0;
    for (const auto& m : kMembers) {
      num += m.samples * m.a[j] * m.c[j];
      den += m.samples * m.a[j];
    }
    w[j] = num / den;
  }
  return w;
}

// Local training: gradient descent on f_k(w) + rho/2 |w - target|^2, then
// `shift` (SCAFFOLD's correction; empty for none) added after every step.
void trainLocally(const Member& m, std::vector<float>& w, const worker::LocalRound& local, int steps, double lr,
                  const std::vector<float>& shift = {}) {
  for (int s = 0; s < steps; ++s) {
    for (size_t j = 0; j < w.size(); ++j) {
      double g = m.a[j] * (w[j] - m.c[j]);
      if (local.rho > 0) g += local.rho * (w[j] - local.target[j]);
      w[j] = static_cast<float>(w[j] - lr * g + (shift.empty() ? 0.0 : shift[j]));
    }
  }
}

struct Outcome {
  std::vector<float> consensus;
  double distance = 0;  // max |z_j - w*_j|
};

Outcome federate(proto::Algorithm algorithm, double rho, int rounds, int local_steps, double dual_step = 1.0) {
  auto aggregator = coordinator::makeAggregator(coordinator::AggregatorDevice::kCpu, 1);
  std::vector<float> z = {0.0f, 0.0f, 0.0f};
  std::vector<std::vector<float>> w(kMembers.size(), z), dual(kMembers.size());
  std::vector<bool> trained(kMembers.size(), false);
  std::vector<worker::ScaffoldState> scaffold(kMembers.size());
  coordinator::ServerOptimizerSettings plain;
  for (int r = 0; r < rounds; ++r) {
    aggregator->reset(z.size());
    double total = 0;
    for (size_t k = 0; k < kMembers.size(); ++k) {
      const bool uses_scaffold = algorithm == proto::ALGORITHM_SCAFFOLD;
      // The coordinator's contributors digest: 0 for z_0, then the same two members every round.
      const uint64_t digest = r == 0 ? 0 : 7;
      if (uses_scaffold) worker::updateScaffold(z.data(), digest, w[k], local_steps, trained[k], scaffold[k]);
      auto local = worker::beginLocalRound(algorithm, rho, z.data(), w[k], dual[k], trained[k], dual_step);
      trainLocally(kMembers[k], w[k], local, local_steps, 0.05,
                   uses_scaffold ? scaffold[k].correction : std::vector<float>{});
      trained[k] = true;
      auto sent = worker::outgoingVector(algorithm, w[k], dual[k]);
      aggregator->accumulate(0, sent.data(), sent.size(), static_cast<float>(kMembers[k].samples));
      total += kMembers[k].samples;
    }
    aggregator->finalize(total, plain, z.data(), nullptr);
  }
  Outcome out{z, 0};
  auto best = federationOptimum();
  for (size_t j = 0; j < z.size(); ++j) out.distance = std::max(out.distance, std::abs(z[j] - best[j]));
  return out;
}

TEST(UpdateRules, AdmmReachesTheExactConsensusOptimum) {
  Outcome admm = federate(proto::ALGORITHM_ADMM, 1.0, 200, 200);
  EXPECT_LT(admm.distance, 1e-4) << "ADMM's fixed point minimises sum_k n_k f_k";
}

TEST(UpdateRules, AdmmWithADampedDualStepKeepsTheExactOptimum) {
  // A smaller dual step moves the duals more slowly, not elsewhere: the fixed
  // point is the same, so it still lands on the federation's optimum, which
  // FedProx with the same penalty and schedule misses.
  Outcome damped = federate(proto::ALGORITHM_ADMM, 1.0, 2000, 200, 0.1);
  EXPECT_LT(damped.distance, 1e-4);
  Outcome fedprox = federate(proto::ALGORITHM_FEDPROX, 1.0, 2000, 200);
  EXPECT_GT(fedprox.distance, 1e-3);
}

TEST(UpdateRules, AdmmDualStepScalesTheDualUpdate) {
  std::vector<float> w = {1.0f, 2.0f}, u = {0.5f, -0.5f};
  const float z[] = {0.25f, 1.0f};
  auto local = worker::beginLocalRound(proto::ALGORITHM_ADMM, 0.1, z, w, u, true, 0.5);
  EXPECT_FLOAT_EQ(u[0], 0.5f + 0.5f * (1.0f - 0.25f));
  EXPECT_FLOAT_EQ(u[1], -0.5f + 0.5f * (2.0f - 1.0f));
  EXPECT_FLOAT_EQ(local.target[0], 0.25f - u[0]);
  for (double bad : {0.0, -1.0, 2.0})
    EXPECT_THROW(worker::beginLocalRound(proto::ALGORITHM_ADMM, 0.1, z, w, u, true, bad), std::invalid_argument);
}

TEST(UpdateRules, FedAvgDriftsAwayFromTheOptimumUnderHeterogeneity) {
  Outcome fedavg = federate(proto::ALGORITHM_FEDAVG, 0.0, 200, 200);
  EXPECT_GT(fedavg.distance, 0.1) << "with many local steps FedAvg averages the members' own optima";
}

TEST(UpdateRules, FedAvgWithOneLocalStepIsGradientDescentOnTheFederationLoss) {
  // One local step from z is a step of GD on sum_k n_k f_k / N: it converges.
  Outcome fedavg = federate(proto::ALGORITHM_FEDAVG, 0.0, 2000, 1);
  EXPECT_LT(fedavg.distance, 1e-4);
}

TEST(UpdateRules, FedProxPenaltyShrinksButDoesNotRemoveTheDrift) {
  Outcome fedavg = federate(proto::ALGORITHM_FEDAVG, 0.0, 200, 200);
  Outcome fedprox = federate(proto::ALGORITHM_FEDPROX, 1.0, 200, 200);
  EXPECT_LT(fedprox.distance, fedavg.distance);
  EXPECT_GT(fedprox.distance, 1e-3);
}

TEST(UpdateRules, ScaffoldReachesTheExactConsensusOptimumWhereFedAvgDrifts) {
  // The same 200 local steps per round that leave FedAvg far off: the
  // corrections cancel each member's pull towards its own optimum.
  Outcome scaffold = federate(proto::ALGORITHM_SCAFFOLD, 0.0, 300, 200);
  EXPECT_LT(scaffold.distance, 1e-4) << "SCAFFOLD's fixed point minimises sum_k n_k f_k";
  Outcome fedavg = federate(proto::ALGORITHM_FEDAVG, 0.0, 300, 200);
  EXPECT_GT(fedavg.distance, 0.1);
}

// SCAFFOLD with a member that leaves after 100 rounds: with a new digest
// from then on, every member drops its correction once and the two that
// stay converge to their own optimum. Had the digest stayed the same, the
// correction the third member took with it would push the consensus a
// little further every round.
double scaffoldAfterADeparture(bool digest_changes) {
  std::vector<Member> members = kMembers;
  members.push_back({{2.0, 2.0, 1.0}, {3.0, 0.0, -2.0}, 200});
  auto aggregator = coordinator::makeAggregator(coordinator::AggregatorDevice::kCpu, 1);
  std::vector<float> z = {0.0f, 0.0f, 0.0f};
  std::vector<std::vector<float>> w(members.size(), z), dual(members.size());
  std::vector<worker::ScaffoldState> scaffold(members.size());
  coordinator::ServerOptimizerSettings plain;
  for (int r = 0; r < 400; ++r) {
    const size_t active = r < 100 ? 3 : 2;
    const uint64_t digest = r == 0 ? 0 : (active == 3 || !digest_changes ? 7 : 8);
    aggregator->reset(z.size());
    double total = 0;
    for (size_t k = 0; k < active; ++k) {
      worker::updateScaffold(z.data(), digest, w[k], 50, r > 0, scaffold[k]);
      auto local = worker::beginLocalRound(proto::ALGORITHM_SCAFFOLD, 0.0, z.data(), w[k], dual[k], r > 0);
      trainLocally(members[k], w[k], local, 50, 0.05, scaffold[k].correction);
      aggregator->accumulate(0, w[k].data(), w[k].size(), static_cast<float>(members[k].samples));
      total += members[k].samples;
    }
    aggregator->finalize(total, plain, z.data(), nullptr);
  }
  auto best = federationOptimum();  // of kMembers, the two that stay
  double distance = 0;
  for (size_t j = 0; j < z.size(); ++j) distance = std::max(distance, std::abs(z[j] - best[j]));
  return distance;
}

TEST(UpdateRules, ScaffoldRecoversFromADepartureThroughTheDigest) {
  EXPECT_LT(scaffoldAfterADeparture(true), 1e-4);
  EXPECT_GT(scaffoldAfterADeparture(false), 0.1) << "the departed member's correction would stay in the sum";
}

TEST(UpdateRules, ScaffoldCorrectionMatchesAHandComputedRound) {
  // Round r-1 started from anchor (0, 1) with correction (0.1, -0.1) and 4
  // steps, and this member sent (0.8, 1.4); the consensus became (0.4, 1.2).
  worker::ScaffoldState s{{0.0f, 1.0f}, {0.1f, -0.1f}, 5};
  const std::vector<float> sent = {0.8f, 1.4f};
  const float z[] = {0.4f, 1.2f};
  worker::updateScaffold(z, 5, sent, 4, true, s);
  // own = (sent - anchor)/4 - c = (0.2 - 0.1, 0.1 + 0.1); mean = (z - anchor)/4 = (0.1, 0.05)
  EXPECT_NEAR(s.correction[0], 0.1 - 0.1, 1e-6);
  EXPECT_NEAR(s.correction[1], 0.05 - 0.2, 1e-6);
  EXPECT_EQ(s.anchor, (std::vector<float>{0.4f, 1.2f}));
  EXPECT_EQ(s.digest, 5u);
  // A member that did not train the round before starts again from zero.
  worker::updateScaffold(z, 5, sent, 4, false, s);
  EXPECT_EQ(s.correction, (std::vector<float>{0.0f, 0.0f}));
  EXPECT_THROW(worker::updateScaffold(z, 5, sent, 0, true, s), std::invalid_argument);
  for (double bad : {0.0, 1.5}) EXPECT_THROW(worker::updateScaffold(z, 5, sent, 4, true, s, bad), std::invalid_argument);
}

TEST(UpdateRules, ScaffoldCorrectionScaleDampsTheCorrection) {
  worker::ScaffoldState s{{0.0f, 1.0f}, {0.1f, -0.1f}, 5};
  const std::vector<float> sent = {0.8f, 1.4f};
  const float z[] = {0.4f, 1.2f};
  worker::updateScaffold(z, 5, sent, 4, true, s, 0.5);
  EXPECT_NEAR(s.correction[0], 0.5 * (0.1 - 0.1), 1e-6);
  EXPECT_NEAR(s.correction[1], 0.5 * (0.05 - 0.2), 1e-6);
}

TEST(UpdateRules, ScaffoldStartsAgainFromZeroWhenTheContributorsChange) {
  // Another set of members made z_r (or z_r is not their exact mean: digest
  // 0): every member drops its correction, so they sum to zero again.
  const std::vector<float> sent = {0.8f, 1.4f};
  const float z[] = {0.4f, 1.2f};
  for (uint64_t digest : {uint64_t{6}, uint64_t{0}}) {
    worker::ScaffoldState s{{0.0f, 1.0f}, {0.1f, -0.1f}, 5};
    worker::updateScaffold(z, digest, sent, 4, true, s);
    EXPECT_EQ(s.correction, (std::vector<float>{0.0f, 0.0f})) << "digest " << digest;
    EXPECT_EQ(s.digest, digest);
  }
}

TEST(UpdateRules, ScaffoldCorrectionsOfAllMembersAverageToZero) {
  // With the plain server z_r is the weighted mean of what was sent, so the
  // corrections change no member's weight in the consensus.
  const std::vector<float> anchor = {0.5f, -1.0f};
  const std::vector<std::vector<float>> sent = {{1.0f, -0.5f}, {0.2f, -2.0f}, {0.9f, 0.3f}};
  const std::vector<std::vector<float>> before = {{0.03f, 0.02f}, {-0.02f, 0.01f}, {0.03f, -0.05f}};
  const std::vector<float> n = {100, 300, 100};
  // The corrections of round r-1 averaged to zero too (weights 1:3:1).
  std::vector<float> z(2, 0.0f);
  for (size_t j = 0; j < 2; ++j) {
    double num = 0;
    for (size_t k = 0; k < 3; ++k) num += n[k] * sent[k][j];
    z[j] = static_cast<float>(num / 500.0);
  }
  std::vector<double> weighted(2, 0.0);
  for (size_t k = 0; k < 3; ++k) {
    worker::ScaffoldState s{anchor, before[k], 9};
    worker::updateScaffold(z.data(), 9, sent[k], 5, true, s);
    for (size_t j = 0; j < 2; ++j) weighted[j] += n[k] * s.correction[j];
  }
  EXPECT_NEAR(weighted[0] / 500.0, 0.0, 1e-6);
  EXPECT_NEAR(weighted[1] / 500.0, 0.0, 1e-6);
}

TEST(UpdateRules, FirstAdmmRoundMatchesAHandComputedStep) {
  // rho = 1, z = 0, u = 0, w = 0 at start; with an exact local solve w_k =
  // (a c + rho * 0) / (a + rho) per coordinate; then z = weighted mean of w + u.
  Outcome one = federate(proto::ALGORITHM_ADMM, 1.0, 1, 2000);
  std::vector<double> expected(3, 0.0);
  for (size_t j = 0; j < 3; ++j) {
    double num = 0;
    for (const auto& m : kMembers) num += m.samples * (m.a[j] * m.c[j] / (m.a[j] + 1.0));
    expected[j] = num / 400.0;
  }
  for (size_t j = 0; j < 3; ++j) EXPECT_NEAR(one.consensus[j], expected[j], 1e-5) << "coordinate " << j;
}

TEST(UpdateRules, AdmmDualUpdateUsesTheNewConsensus) {
  std::vector<float> w = {1.0f, 2.0f}, u = {0.5f, -0.5f};
  const float z[] = {0.25f, 1.0f};
  auto local = worker::beginLocalRound(proto::ALGORITHM_ADMM, 0.1, z, w, u, true);
  EXPECT_FLOAT_EQ(u[0], 0.5f + 1.0f - 0.25f);
  EXPECT_FLOAT_EQ(u[1], -0.5f + 2.0f - 1.0f);
  EXPECT_FLOAT_EQ(local.target[0], 0.25f - u[0]);
  EXPECT_FLOAT_EQ(local.target[1], 1.0f - u[1]);
  EXPECT_EQ(w, (std::vector<float>{1.0f, 2.0f})) << "ADMM keeps the local parameters";
  auto sent = worker::outgoingVector(proto::ALGORITHM_ADMM, w, u);
  EXPECT_FLOAT_EQ(sent[0], 1.0f + u[0]);
}

TEST(UpdateRules, FedAvgAndFedProxRestartFromTheConsensus) {
  std::vector<float> w = {1.0f, 2.0f}, u;
  const float z[] = {0.25f, 1.0f};
  auto fedavg = worker::beginLocalRound(proto::ALGORITHM_FEDAVG, 0.0, z, w, u, true);
  EXPECT_EQ(w, (std::vector<float>{0.25f, 1.0f}));
  EXPECT_EQ(fedavg.rho, 0.0);
  w = {1.0f, 2.0f};
  auto easgd = worker::beginLocalRound(proto::ALGORITHM_EASGD, 0.5, z, w, u, true);
  EXPECT_EQ(w, (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(easgd.rho, 0.5);
  EXPECT_TRUE(u.empty()) << "only ADMM keeps a dual";
}

TEST(UpdateRules, AnAlgorithmFromANewerCoordinatorIsRefusedWithAnUpgradeHint) {
  std::vector<float> w = {1.0f}, u;
  const float z[] = {0.0f};
  try {
    worker::beginLocalRound(static_cast<proto::Algorithm>(42), 0.0, z, w, u, true);
    ADD_FAILURE() << "accepted algorithm 42";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("release"), std::string::npos) << e.what();
  }
}

TEST(UpdateRules, AdmmRejectsADualOfTheWrongSize) {
  std::vector<float> w = {1.0f, 2.0f}, u = {0.0f};
  const float z[] = {0.0f, 0.0f};
  EXPECT_THROW(worker::beginLocalRound(proto::ALGORITHM_ADMM, 0.1, z, w, u, true), std::invalid_argument);
}

}  // namespace
}  // namespace tapestry
