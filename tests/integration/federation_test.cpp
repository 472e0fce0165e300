// Loopback federations of real processes over real mutual TLS.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <nlohmann/json.hpp>

#include "common/checkpoint.h"
#include "coordinator/federation_state.h"
#include "integration/federation_harness.h"
#include "worker/worker_state.h"

namespace tapestry::it {
namespace {

using std::chrono::seconds;

std::vector<float> section(const std::string& file, const std::string& name) {
  auto ckpt = common::readCheckpoint(file);
  if (!ckpt) throw std::runtime_error("missing " + file);
  return ckpt->sectionAs<float>(name);
}

uint64_t sampleCount(const std::string& file) {
  return nlohmann::json::parse(common::readCheckpoint(file)->metadata).at("sample_count").get<uint64_t>();
}

void expectExit(tools::ChildProcess& p, int code, const FederationHarness& h, const std::string& log) {
  auto rc = p.wait(seconds(120));
  ASSERT_TRUE(rc.has_value()) << log << " did not exit:\n" << h.log(log);
  EXPECT_EQ(*rc, code) << h.log(log);
}

// Starts the coordinator and every worker and waits for all to finish well.
void runToTheEnd(FederationHarness& h, size_t workers_count) {
  auto coordinator = h.startCoordinator();
  std::vector<tools::ChildProcess> workers;
  for (size_t k = 0; k < workers_count; ++k) workers.push_back(h.startWorker(k));
  for (size_t k = 0; k < workers_count; ++k) expectExit(workers[k], 0, h, h.workerName(k));
  expectExit(coordinator, 0, h, "coordinator");
}

// Waits for two rounds to close, then kills `worker` and waits for it to go.
void killAfterTwoRounds(const FederationHarness& h, tools::ChildProcess& worker) {
  ASSERT_TRUE(h.waitForRounds(2, seconds(120))) << h.log("coordinator");
  worker.signal(SIGKILL);
  ASSERT_TRUE(worker.wait(seconds(10)).has_value());
}

nlohmann::json statusOf(const std::string& state_dir) {
  std::ifstream in(state_dir + "/status.json");
  if (!in) throw std::runtime_error("no status.json in " + state_dir);
  return nlohmann::json::parse(in);
}

// `tapestry status <how> <what>` (and the harness's workdir for a config);
// its exit code.
int statusCommand(const FederationHarness& h, const std::string& how, const std::string& what) {
  std::vector<std::string> argv = {binary("tapestry"), "status", how, what};
  if (how == "--config") argv.insert(argv.end(), {"--workdir", h.dir()});
  auto p = tools::ChildProcess::spawn(argv, h.path("logs/status.log"));
  auto rc = p.wait(seconds(30));
  return rc ? *rc : -1;
}

std::vector<nlohmann::json> jsonLines(const std::string& file) {
  std::vector<nlohmann::json> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(Federation, ConsensusAfterRoundOneIsTheSampleWeightedMean) {
  FederationOptions o;
  o.max_rounds = 1;
  FederationHarness h(o);
  runToTheEnd(h, o.workers);

  // Independently: every worker's audited round-0 push, weighted by its sample count.
  std::vector<double> expected;
  double total = 0;
  for (size_t k = 0; k < o.workers; ++k) {
    std::string file = h.path("audit/" + h.workerName(k) + "/push-round-0.ckpt");
    auto v = section(file, "vector");
    double n = static_cast<double>(sampleCount(file));
    EXPECT_EQ(n, static_cast<double>(o.samples_per_worker * (k + 1) ));
    if (expected.empty()) expected.assign(v.size(), 0.0);
    ASSERT_EQ(v.size(), expected.size());
    for (size_t i = 0; i < v.size(); ++i) expected[i] += n * v[i];
    total += n;
  }
  auto state = coordinator::loadFederationStateFile(h.checkpoint());
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->round, 1u);
  ASSERT_EQ(state->consensus.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i)
    ASSERT_NEAR(state->consensus[i], expected[i] / total, 1e-5 * (1.0 + std::abs(expected[i] / total))) << "element " << i;
  // Every worker received exactly the coordinator's final consensus.
  for (size_t k = 0; k < o.workers; ++k)
    EXPECT_EQ(section(h.path("state/" + h.workerName(k) + "/consensus.ckpt"), "consensus"), state->consensus);
  auto rounds = h.rounds();
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].at("contributors").get<size_t>(), o.workers);

  // `tapestry status`: every daemon left a status that says it finished, and
  // the command calls a finished federation healthy (exit code 0).
  EXPECT_EQ(statusOf(h.path("state/coordinator")).at("coordinator").at("state"), "finished");
  for (size_t k = 0; k < o.workers; ++k) {
    const nlohmann::json status = statusOf(h.path("state/" + h.workerName(k)));
    EXPECT_EQ(status.at("state"), "finished") << status.dump();
    EXPECT_EQ(status.at("final"), h.path("state/" + h.workerName(k) + "/consensus.ckpt"));
    EXPECT_EQ(statusCommand(h, "--state-dir", h.path("state/" + h.workerName(k))), 0);
  }
  EXPECT_EQ(statusCommand(h, "--config", h.path("coordinator.json")), 0);
}

// aggregation.rule median end to end: z_1 is the element-wise median of the
// three audited round-0 pushes, whatever their sample counts.
TEST(Federation, MedianRuleMakesTheConsensusTheElementwiseMedian) {
  FederationOptions o;
  o.max_rounds = 1;
  o.aggregation_rule = "median";
  FederationHarness h(o);
  runToTheEnd(h, o.workers);
  EXPECT_NE(h.log("coordinator").find("aggregation rule median"), std::string::npos) << h.log("coordinator");

  std::vector<std::vector<float>> pushes;
  for (size_t k = 0; k < o.workers; ++k)
    pushes.push_back(section(h.path("audit/" + h.workerName(k) + "/push-round-0.ckpt"), "vector"));
  auto state = coordinator::loadFederationStateFile(h.checkpoint());
  ASSERT_TRUE(state.has_value());
  ASSERT_EQ(state->round, 1u);
  ASSERT_EQ(state->consensus.size(), pushes[0].size());
  size_t off_mean = 0;
  for (size_t i = 0; i < pushes[0].size(); ++i) {
    std::vector<float> v{pushes[0][i], pushes[1][i], pushes[2][i]};
    std::sort(v.begin(), v.end());
    ASSERT_EQ(state->consensus[i], v[1]) << "element " << i;
    if (std::fabs(v[1] - (v[0] + v[1] + v[2]) / 3) > 1e-4f) ++off_mean;
  }
  EXPECT_GT(off_mean, pushes[0].size() / 2) << "the pushes differ enough that median and mean tell apart";
}

TEST(Federation, WorkerWithForeignCertificateIsRefusedWhileOthersProceed) {
  FederationOptions o;
  o.workers = 2;
  o.min_workers = o.quorum = 2;
  o.max_rounds = 2;
  FederationHarness h(o);
  auto coordinator = h.startCoordinator();
  auto intruder = h.startForeignWorker();
  std::vector<tools::ChildProcess> workers;
  for (size_t k = 0; k < o.workers; ++k) workers.push_back(h.startWorker(k));
  expectExit(intruder, 3, h, "intruder");
  EXPECT_NE(h.log("intruder").find("certificate"), std::string::npos) << h.log("intruder");
  EXPECT_EQ(statusOf(h.path("state/intruder")).at("state"), "refused");
  EXPECT_EQ(statusCommand(h, "--state-dir", h.path("state/intruder")), 1) << "a refused member is no healthy one";
  for (size_t k = 0; k < o.workers; ++k) expectExit(workers[k], 0, h, h.workerName(k));
  expectExit(coordinator, 0, h, "coordinator");
  EXPECT_NE(h.log("coordinator").find("TLS handshake from 127.0.0.1 refused"), std::string::npos) << h.log("coordinator");
  EXPECT_NE(h.log("coordinator").find("it presented certificate 'intruder', serial "), std::string::npos)
      << h.log("coordinator");
  EXPECT_EQ(h.log("coordinator").find("intruder joined"), std::string::npos);
  auto rounds = h.rounds();
  ASSERT_EQ(rounds.size(), 2u);
  for (const auto& r : rounds) EXPECT_EQ(r.at("contributors").get<size_t>(), 2u);
}

TEST(Federation, CoordinatorKilledResumesByteIdenticalAndKilledWorkerRejoins) {
  FederationOptions o;
  o.max_rounds = 5;
  FederationHarness h(o);
  auto coordinator = h.startCoordinator();
  std::vector<tools::ChildProcess> workers;
  for (size_t k = 0; k < o.workers; ++k) workers.push_back(h.startWorker(k));
  ASSERT_TRUE(h.waitForRounds(2, seconds(120))) << h.log("coordinator");

  // Every round needs all three workers, so nothing can close while worker-2 is down.
  coordinator.signal(SIGKILL);
  workers[2].signal(SIGKILL);
  ASSERT_TRUE(coordinator.wait(seconds(10)).has_value());
  ASSERT_TRUE(workers[2].wait(seconds(10)).has_value());
  auto before = coordinator::loadFederationStateFile(h.checkpoint());
  ASSERT_TRUE(before.has_value());
  uint64_t n = before->round;
  ASSERT_GE(n, 2u);

  // A kill in the middle of appending to the round log leaves half a line.
  const std::string worker_log = h.path("state/" + h.workerName(2) + "/rounds.jsonl");
  std::ofstream(worker_log, std::ios::app) << "{\"round\":";

  coordinator = h.startCoordinator();
  workers[2] = h.startWorker(2);
  for (size_t k = 0; k < o.workers; ++k) expectExit(workers[k], 0, h, h.workerName(k));
  expectExit(coordinator, 0, h, "coordinator");
  EXPECT_NE(h.log(h.workerName(2)).find("cut an unfinished last line (9 bytes)"), std::string::npos)
      << h.log(h.workerName(2));
  for (const auto& line : jsonLines(worker_log)) EXPECT_TRUE(line.contains("local_steps")) << line.dump();

  std::string log = h.log("coordinator");
  EXPECT_NE(log.find("consensus z_" + std::to_string(n) + " of"), std::string::npos) << log;
  EXPECT_NE(log.find("round " + std::to_string(n + 1) + " is next"), std::string::npos) << log;
  // Round numbers continue without a gap or a repeat across the crash.
  auto rounds = h.rounds();
  ASSERT_EQ(rounds.size(), o.max_rounds);
  for (size_t i = 0; i < rounds.size(); ++i) EXPECT_EQ(rounds[i].at("round").get<uint64_t>(), i + 1);
  // Worker-2, restarted from its saved state, contributed after rejoining.
  EXPECT_EQ(rounds.back().at("contributors").get<size_t>(), 3u);
  EXPECT_NE(h.log(h.workerName(2)).find("resuming from saved state"), std::string::npos);
  // The consensus the restarted coordinator served for round n+1 is byte for
  // byte the one checkpointed before the kill: worker-2's audited push for
  // round n started from it, and so did everyone's; check the served bytes.
  auto served = section(h.path("audit/" + h.workerName(0) + "/received-round-" + std::to_string(n) + ".ckpt"), "vector");
  EXPECT_EQ(served, before->consensus);
}

// A member that was away when the federation finished (or a coordinator
// restarted after its final checkpoint) still gets the final consensus: the
// coordinator waits for members that have not fetched it, well past the
// few seconds it lingers once everyone has.
TEST(Federation, ARestartedFinishedCoordinatorWaitsForMembersWithoutTheFinalConsensus) {
  FederationOptions o;
  o.max_rounds = 1;
  FederationHarness h(o);
  runToTheEnd(h, o.workers);
  const std::string final_file = h.path("state/" + h.workerName(0) + "/consensus.ckpt");
  const auto final_consensus = section(final_file, "consensus");

  // Every member has the final consensus, as state/coordinator/final_fetched.jsonl
  // records: a restart says so and leaves after a short linger.
  std::ofstream(h.path("logs/coordinator.log"), std::ios::trunc);
  auto coordinator = h.startCoordinator();
  expectExit(coordinator, 0, h, "coordinator");
  EXPECT_NE(h.log("coordinator").find("so z_1 is the final consensus"), std::string::npos) << h.log("coordinator");
  EXPECT_NE(h.log("coordinator").find("all workers have left with the final consensus"), std::string::npos)
      << h.log("coordinator");
  EXPECT_EQ(h.log("coordinator").find("never fetched"), std::string::npos) << h.log("coordinator");

  // As if the coordinator had stopped before worker-0 got it: worker-0 is waited for.
  const std::string fetched = h.path("state/coordinator/final_fetched.jsonl");
  std::string others;
  {
    std::ifstream in(fetched);
    for (std::string line; std::getline(in, line);)
      if (line.find("\"" + h.workerName(0) + "\"") == std::string::npos) others += line + "\n";
  }
  std::ofstream(fetched, std::ios::trunc) << others;
  std::filesystem::remove(final_file);
  coordinator = h.startCoordinator();
  ASSERT_TRUE(h.waitForLog("coordinator", "member(s) to fetch the final consensus", seconds(60))) << h.log("coordinator");
  std::this_thread::sleep_for(seconds(4));  // past the short linger of a coordinator whose members all have it
  ASSERT_TRUE(coordinator.running()) << h.log("coordinator");
  // A second coordinator on the same state_dir stops at once.
  auto second = tools::ChildProcess::spawn(
      {binary("tapestry-coordinator"), "--config", h.path("coordinator.json"), "--workdir", h.dir()},
      h.path("logs/second-coordinator.log"));
  expectExit(second, 1, h, "second-coordinator");
  EXPECT_NE(h.log("second-coordinator").find("is in use by another process (pid "), std::string::npos)
      << h.log("second-coordinator");
  auto worker = h.startWorker(0);
  expectExit(worker, 0, h, h.workerName(0));
  EXPECT_EQ(section(final_file, "consensus"), final_consensus);
  coordinator.signal(SIGTERM);
  expectExit(coordinator, 0, h, "coordinator");
}

// The final consensus counts as delivered only once the member says it has
// saved it: a worker that could not (here its consensus.ckpt is a directory,
// so the write fails) is waited for, gets the final again when it comes back,
// and once it holds it a restart of that worker has nothing left to do.
TEST(Federation, TheFinalCountsAsDeliveredOnlyOnceTheMemberSavedIt) {
  FederationOptions o;
  o.max_rounds = 1;
  FederationHarness h(o);
  const std::string final_file = h.path("state/" + h.workerName(0) + "/consensus.ckpt");
  std::filesystem::create_directories(final_file);
  auto coordinator = h.startCoordinator();
  std::vector<tools::ChildProcess> workers;
  for (size_t k = 0; k < o.workers; ++k) workers.push_back(h.startWorker(k));
  expectExit(workers[0], 1, h, h.workerName(0));
  for (size_t k = 1; k < o.workers; ++k) expectExit(workers[k], 0, h, h.workerName(k));
  ASSERT_TRUE(h.waitForLog("coordinator", "member(s) to fetch the final consensus", seconds(60))) << h.log("coordinator");
  ASSERT_TRUE(coordinator.running()) << "it left while worker-0 had no final consensus:\n" << h.log("coordinator");
  std::filesystem::remove_all(final_file);
  workers[0] = h.startWorker(0);
  expectExit(workers[0], 0, h, h.workerName(0));
  expectExit(coordinator, 0, h, "coordinator");
  ASSERT_TRUE(std::filesystem::is_regular_file(final_file));
  // Restarted now, with no coordinator to reach, it stops at once.
  auto again = h.startWorker(0);
  expectExit(again, 0, h, h.workerName(0));
  EXPECT_NE(h.log(h.workerName(0)).find("nothing to do"), std::string::npos) << h.log(h.workerName(0));
}

// A worker whose coordinator comes back running another federation (another
// federation_id, on the same port) stops instead of mixing that consensus
// into this federation's state.
TEST(Federation, AWorkerThatReconnectsToAnotherFederationStops) {
  FederationOptions o;
  o.max_rounds = 50;
  FederationHarness h(o);
  auto coordinator = h.startCoordinator();
  std::vector<tools::ChildProcess> workers;
  for (size_t k = 0; k < o.workers; ++k) workers.push_back(h.startWorker(k));
  ASSERT_TRUE(h.waitForRounds(1, seconds(120))) << h.log("coordinator");
  coordinator.signal(SIGKILL);
  ASSERT_TRUE(coordinator.wait(seconds(10)).has_value());
  nlohmann::json config = nlohmann::json::parse(std::ifstream(h.path("coordinator.json")));
  config["federation_id"] = "another";
  config["state_dir"] = "state/another-coordinator";
  std::ofstream(h.path("coordinator.json")) << config.dump(2);
  coordinator = h.startCoordinator();
  for (size_t k = 0; k < o.workers; ++k) {
    expectExit(workers[k], 1, h, h.workerName(k));
    EXPECT_NE(h.log(h.workerName(k)).find("belongs to federation 'integration' but the coordinator runs 'another'"),
              std::string::npos)
        << h.log(h.workerName(k));
  }
  coordinator.signal(SIGTERM);
  ASSERT_TRUE(coordinator.wait(seconds(30)).has_value());
}

// The operator restores the coordinator from an older checkpoint: the
// members, which trained further, follow it back (int8 pushes, so each owes
// a residual to a push the restored coordinator never saw, and drops it).
TEST(Federation, MembersFollowACoordinatorRestoredFromAnOlderCheckpoint) {
  FederationOptions o;
  o.max_rounds = 8;
  o.encoding = "int8";
  FederationHarness h(o);
  auto coordinator = h.startCoordinator();
  std::vector<tools::ChildProcess> workers;
  for (size_t k = 0; k < o.workers; ++k) workers.push_back(h.startWorker(k));
  ASSERT_TRUE(h.waitForRounds(1, seconds(120))) << h.log("coordinator");
  const std::string backup = h.path("coordinator-backup.ckpt");
  std::filesystem::copy_file(h.checkpoint(), backup);
  const uint64_t restored = coordinator::loadFederationStateFile(backup)->round;
  ASSERT_LT(restored + 2, o.max_rounds);
  ASSERT_TRUE(h.waitForRounds(restored + 2, seconds(120))) << h.log("coordinator");
  coordinator.signal(SIGKILL);
  ASSERT_TRUE(coordinator.wait(seconds(10)).has_value());
  std::filesystem::copy_file(backup, h.checkpoint(), std::filesystem::copy_options::overwrite_existing);
  coordinator = h.startCoordinator();
  for (size_t k = 0; k < o.workers; ++k) expectExit(workers[k], 0, h, h.workerName(k));
  expectExit(coordinator, 0, h, "coordinator");
  EXPECT_NE(h.log(h.workerName(0)).find("went back to an older state"), std::string::npos) << h.log(h.workerName(0));
  auto rounds = h.rounds();
  ASSERT_EQ(rounds.size(), o.max_rounds);
  for (size_t i = 0; i < rounds.size(); ++i) EXPECT_EQ(rounds[i].at("round").get<uint64_t>(), i + 1);
}

// int8 pushes with error feedback: the residual a push leaves is saved with
// the state that push came from, so a worker killed between rounds resumes
// owing it to the next round instead of losing it.
TEST(Federation, CompressedPushesKeepTheirErrorFeedbackAcrossAWorkerRestart) {
  FederationOptions o;
  o.max_rounds = 4;
  o.encoding = "int8";
  FederationHarness h(o);
  auto coordinator = h.startCoordinator();
  std::vector<tools::ChildProcess> workers;
  for (size_t k = 0; k < o.workers; ++k) workers.push_back(h.startWorker(k));
  ASSERT_NO_FATAL_FAILURE(killAfterTwoRounds(h, workers[1]));
  auto saved = worker::loadWorkerState(h.path("state/" + h.workerName(1)));
  ASSERT_TRUE(saved.has_value());
  ASSERT_EQ(saved->pending_residual.size(), saved->trainer.parameters.size())
      << "the residual of the saved round's push is not in the saved state";
  size_t nonzero = 0;
  for (float v : saved->pending_residual) nonzero += v != 0.0f;
  EXPECT_GT(nonzero, saved->pending_residual.size() / 2) << "int8 rounding leaves a residual almost everywhere";

  workers[1] = h.startWorker(1);
  for (size_t k = 0; k < o.workers; ++k) expectExit(workers[k], 0, h, h.workerName(k));
  expectExit(coordinator, 0, h, "coordinator");
  auto rounds = h.rounds();
  ASSERT_EQ(rounds.size(), o.max_rounds);
  EXPECT_EQ(rounds.back().at("contributors").get<size_t>(), o.workers);
  EXPECT_NE(h.log(h.workerName(1)).find("resuming from saved state"), std::string::npos);
}

bool allFinite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// ADMM with transfer.overlap: workers train on while the consensus is on its
// way. Worker-2 joins late, so round 0 cannot close and workers 0 and 1 run a
// whole round ahead, then wait; those steps count towards round 1, and the
// ADMM dual moves by the vector each pushed, not by where it trained on to.
TEST(Federation, OverlappingWorkersTrainAheadWhileTheConsensusTravels) {
  FederationOptions o;
  o.algorithm = "admm";
  o.dual_step = 1.0;  // textbook ADMM, so the dual below is a difference of two audited vectors
  o.max_rounds = 3;
  o.local_steps = 20;
  o.overlap = true;
  FederationHarness h(o);
  auto coordinator = h.startCoordinator();
  std::vector<tools::ChildProcess> workers;
  for (size_t k = 0; k < 2; ++k) workers.push_back(h.startWorker(k));
  for (size_t k = 0; k < 2; ++k)
    ASSERT_TRUE(h.waitForLog(h.workerName(k), "trained a whole round (20 steps) ahead; waiting for consensus z_1",
                             seconds(120)))
        << h.log(h.workerName(k));
  workers.push_back(h.startWorker(2));
  for (size_t k = 0; k < o.workers; ++k) expectExit(workers[k], 0, h, h.workerName(k));
  EXPECT_NE(h.log(h.workerName(0)).find("admm, rho 0.01, dual step 1, 20 local steps"), std::string::npos) << h.log(h.workerName(0));
  expectExit(coordinator, 0, h, "coordinator");

  ASSERT_EQ(h.rounds().size(), o.max_rounds);
  for (size_t k = 0; k < o.workers; ++k) {
    auto lines = jsonLines(h.path("state/" + h.workerName(k) + "/rounds.jsonl"));
    ASSERT_EQ(lines.size(), o.max_rounds) << h.workerName(k);
    for (const auto& r : lines) {
      EXPECT_EQ(r.at("local_steps").get<int64_t>(), 20);
      EXPECT_LE(r.at("steps_ahead").get<int64_t>(), 20);
    }
    // The consensus of round 0 came only after worker-2 had joined and trained.
    if (k < 2) {
      EXPECT_EQ(lines[1].at("steps_ahead").get<int64_t>(), 20) << h.workerName(k);
    }
    // ADMM sends w_r + u_r and then sets u_{r+1} = u_r + 1 (w_r - z_{r+1}), so
    // the dual saved after round 2's training is push_1 - z_2, whatever the
    // worker trained on to while z_2 was on its way.
    const auto push1 = section(h.path("audit/" + h.workerName(k) + "/push-round-1.ckpt"), "vector");
    const auto z2 = section(h.path("audit/" + h.workerName(k) + "/received-round-2.ckpt"), "vector");
    const auto dual = section(h.path("state/" + h.workerName(k) + "/worker.ckpt"), "dual");
    ASSERT_EQ(dual.size(), push1.size());
    for (size_t i = 0; i < dual.size(); ++i)
      ASSERT_NEAR(dual[i], push1[i] - z2[i], 1e-5f * (1.0f + std::fabs(push1[i]))) << h.workerName(k) << " element " << i;
  }
  auto state = coordinator::loadFederationStateFile(h.checkpoint());
  ASSERT_TRUE(state.has_value());
  for (size_t k = 0; k < o.workers; ++k)
    EXPECT_EQ(section(h.path("state/" + h.workerName(k) + "/consensus.ckpt"), "consensus"), state->consensus);
}

// A learning rate no model survives: every member's local training blows up
// every round. None of them may push NaN, drop out or stall the federation;
// each restarts from the consensus and says so. Under SCAFFOLD no correction
// is ever in effect (every consensus has digest 0), so the divergence is the
// members' own and the correction scale stays.
class DivergingFederation : public ::testing::TestWithParam<const char*> {};

TEST_P(DivergingFederation, MembersRestartFromTheConsensusAndStayIn) {
  FederationOptions o;
  o.algorithm = GetParam();
  o.max_rounds = 3;
  o.lr = 1e12;
  FederationHarness h(o);
  runToTheEnd(h, o.workers);

  auto rounds = h.rounds();
  ASSERT_EQ(rounds.size(), o.max_rounds);
  for (const auto& r : rounds) EXPECT_EQ(r.at("contributors").get<size_t>(), o.workers);
  EXPECT_EQ(h.log("coordinator").find("NaN"), std::string::npos) << h.log("coordinator");
  auto state = coordinator::loadFederationStateFile(h.checkpoint());
  ASSERT_TRUE(state.has_value());
  EXPECT_TRUE(allFinite(state->consensus));
  EXPECT_EQ(state->contributors_digest, 0u) << "pushes of restarted members are announced to everyone";
  EXPECT_EQ(rounds.back().value("restarted", 0u), o.workers);
  EXPECT_NE(h.log("coordinator").find("the training of every contributor"), std::string::npos)
      << "the operator must learn that the federation is not moving:\n" << h.log("coordinator");
  for (size_t k = 0; k < o.workers; ++k) {
    EXPECT_NE(h.log(h.workerName(k)).find("local training diverged"), std::string::npos) << h.log(h.workerName(k));
    const auto lines = jsonLines(h.path("state/" + h.workerName(k) + "/rounds.jsonl"));
    ASSERT_EQ(lines.size(), o.max_rounds);
    EXPECT_TRUE(lines[0].value("restarted_from_consensus", false));
  }
  if (o.algorithm != "scaffold") return;
  for (const auto& r : rounds) {
    EXPECT_DOUBLE_EQ(r.value("correction_scale", 0.0), 1.0) << r.dump();
    EXPECT_FALSE(r.value("refused", false)) << r.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Federation, DivergingFederation, ::testing::Values("admm", "scaffold"));

// Three SCAFFOLD rounds with the same members build drift corrections; the
// federation is then extended by three rounds and worker-1 comes back with a
// learning rate its corrected training cannot survive. The coordinator
// refuses that round, halves the correction scale, keeps it in its
// checkpoint and sends it with the consensus, and every member switches.
TEST(Federation, ScaffoldBacksOffWhenAMemberDivergesUnderItsCorrection) {
  FederationOptions o;
  o.algorithm = "scaffold";
  o.max_rounds = 3;
  FederationHarness h(o);
  runToTheEnd(h, o.workers);
  auto edit = [&h](const std::string& file, const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json j = nlohmann::json::parse(std::ifstream(h.path(file)));
    change(j);
    std::ofstream(h.path(file)) << j.dump(2);
  };
  edit("coordinator.json", [](nlohmann::json& j) { j["rounds"]["max"] = 6; });
  edit(h.workerName(1) + ".json", [](nlohmann::json& j) { j["train"]["lr"] = 1e12; });
  runToTheEnd(h, o.workers);

  auto rounds = h.rounds();
  ASSERT_EQ(rounds.size(), 6u);
  for (size_t r = 0; r < rounds.size(); ++r) {
    EXPECT_EQ(rounds[r].value("refused", false), r == 3) << rounds[r].dump();
    EXPECT_DOUBLE_EQ(rounds[r].value("correction_scale", 0.0), r < 3 ? 1.0 : 0.5) << rounds[r].dump();
  }
  EXPECT_NE(h.log("coordinator").find("diverged while drift corrections were in effect"), std::string::npos)
      << h.log("coordinator");
  auto state = coordinator::loadFederationStateFile(h.checkpoint());
  ASSERT_TRUE(state.has_value());
  EXPECT_DOUBLE_EQ(state->correction_scale, 0.5) << "the lowered scale is part of the checkpoint";
  const auto received = [&h](int round) {
    return section(h.path("audit/" + h.workerName(0) + "/received-round-" + std::to_string(round) + ".ckpt"), "vector");
  };
  EXPECT_EQ(received(4), received(3)) << "the refused round kept z_3";
  for (size_t k = 0; k < o.workers; ++k)
    EXPECT_NE(h.log(h.workerName(k)).find("set the SCAFFOLD correction scale to 0.5 (was 1)"), std::string::npos)
        << h.log(h.workerName(k));
}

// SCAFFOLD's corrections live only at the members and must survive a crash:
// worker-1 is killed between rounds and resumes from its saved state. With
// the plain server and every member in every round, the members'
// corrections average (sample-weighted, 1:2:3 here) to zero and each member's
// anchor is the consensus it last trained from; a correction lost or
// recomputed from the wrong round would break the first.
TEST(Federation, ScaffoldCorrectionsSurviveAWorkerRestartAndAverageToZero) {
  FederationOptions o;
  o.algorithm = "scaffold";
  o.max_rounds = 5;
  FederationHarness h(o);
  auto coordinator = h.startCoordinator();
  std::vector<tools::ChildProcess> workers;
  for (size_t k = 0; k < o.workers; ++k) workers.push_back(h.startWorker(k));
  ASSERT_NO_FATAL_FAILURE(killAfterTwoRounds(h, workers[1]));
  workers[1] = h.startWorker(1);
  for (size_t k = 0; k < o.workers; ++k) expectExit(workers[k], 0, h, h.workerName(k));
  expectExit(coordinator, 0, h, "coordinator");
  EXPECT_NE(h.log(h.workerName(1)).find("resuming from saved state"), std::string::npos);
  EXPECT_NE(h.log(h.workerName(0)).find("scaffold"), std::string::npos) << h.log(h.workerName(0));
  auto rounds = h.rounds();
  ASSERT_EQ(rounds.size(), o.max_rounds);
  for (const auto& r : rounds) EXPECT_EQ(r.at("contributors").get<size_t>(), o.workers);
  auto coordinator_state = coordinator::loadFederationStateFile(h.checkpoint());
  ASSERT_TRUE(coordinator_state.has_value());
  EXPECT_NE(coordinator_state->contributors_digest, 0u) << "a restarted coordinator must not reset every correction";

  const uint64_t last = o.max_rounds - 1;  // the round every member last trained
  const auto z_last = section(h.path("audit/" + h.workerName(0) + "/received-round-" + std::to_string(last) + ".ckpt"),
                              "vector");
  std::vector<double> weighted(z_last.size(), 0.0);
  double largest = 0;
  for (size_t k = 0; k < o.workers; ++k) {
    auto state = worker::loadWorkerState(h.path("state/" + h.workerName(k)));
    ASSERT_TRUE(state.has_value());
    EXPECT_EQ(state->trained_round, static_cast<int64_t>(last));
    EXPECT_EQ(state->scaffold.anchor, z_last) << h.workerName(k);
    ASSERT_EQ(state->scaffold.correction.size(), z_last.size()) << h.workerName(k);
    for (size_t i = 0; i < z_last.size(); ++i) {
      weighted[i] += double(k + 1) * state->scaffold.correction[i];
      largest = std::max(largest, double(std::abs(state->scaffold.correction[i])));
    }
    EXPECT_TRUE(state->dual.empty()) << "SCAFFOLD keeps no ADMM dual";
  }
  EXPECT_GT(largest, 1e-5) << "members whose data differ need corrections";
  double worst = 0;
  for (double w : weighted) worst = std::max(worst, std::abs(w / 6.0));
  EXPECT_LT(worst, 1e-3 * largest) << "the corrections of all members must average to zero";
}

}  // namespace
}  // namespace tapestry::it
