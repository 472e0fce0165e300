// The worker daemon's own ends, with the real binaries on loopback TLS: a
// clean stop on SIGTERM and the restart after it, a fatal error recorded in
// status.json, a shard the model cannot read, and a coordinator port file
// that is missing or garbled. No assertion depends on timing.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/federation_harness.h"
#include "worker/ml/dataset.h"
#include "worker/worker_state.h"

namespace tapestry::it {
namespace {

using std::chrono::seconds;

void expectExit(tools::ChildProcess& p, int code, const FederationHarness& h, const std::string& log) {
  auto rc = p.wait(seconds(120));
  ASSERT_TRUE(rc.has_value()) << log << " did not exit:\n" << h.log(log);
  EXPECT_EQ(*rc, code) << h.log(log);
}

// state/<name>/status.json; null while there is none.
nlohmann::json statusOf(const FederationHarness& h, const std::string& name) {
  std::ifstream in(h.path("state/" + name + "/status.json"));
  if (!in) return nullptr;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return nullptr;
  }
}

// Polls the worker's status.json until `accept` holds; false on timeout.
bool waitForStatus(const FederationHarness& h, const std::string& name,
                   const std::function<bool(const nlohmann::json&)>& accept, seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const nlohmann::json s = statusOf(h, name);
    if (!s.is_null() && accept(s)) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void editWorkerConfig(const FederationHarness& h, size_t k, const std::function<void(nlohmann::json&)>& edit) {
  const std::string file = h.path(h.workerName(k) + ".json");
  nlohmann::json config;
  {
    std::ifstream in(file);
    config = nlohmann::json::parse(in);
  }
  edit(config);
  std::ofstream(file) << config.dump(2);
}

std::vector<int64_t> workerRounds(const FederationHarness& h, const std::string& name) {
  std::vector<int64_t> out;
  std::ifstream in(h.path("state/" + name + "/rounds.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line).at("round").get<int64_t>());
  return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// SIGTERM while the federation runs: the worker stops at its next safe
// point with exit code 0, says goodbye, leaves "stopped" in status.json and
// a state from which a restart contributes to the round it left and every
// later one, training no round twice.
TEST(WorkerLifecycle, SigtermStopsCleanlyAndTheRestartResumesTheOpenRound) {
  FederationOptions o;
  o.workers = 2;
  o.min_workers = o.quorum = 2;  // no round closes without worker-0
  o.max_rounds = 4;
  o.local_steps = 3000;  // long enough that the signal mostly lands during local training
  o.algorithm = "admm";  // a dual that must survive the stop
  FederationHarness h(o);
  auto coordinator = h.startCoordinator();
  auto worker0 = h.startWorker(0);
  auto worker1 = h.startWorker(1);
  ASSERT_TRUE(h.waitForRounds(1, seconds(120))) << h.log("coordinator");
  ASSERT_TRUE(waitForStatus(
      h, h.workerName(0), [](const nlohmann::json& s) { return s.at("state") == "training"; }, seconds(120)))
      << h.log(h.workerName(0));
  worker0.signal(SIGTERM);
  expectExit(worker0, 0, h, h.workerName(0));

  const std::string log0 = h.log(h.workerName(0));
  EXPECT_TRUE(contains(log0, "signal 15: shutting down at the next safe point")) << log0;
  EXPECT_TRUE(contains(log0, "stopped by signal 15 (SIGTERM)")) << log0;
  const nlohmann::json stopped = statusOf(h, h.workerName(0));
  ASSERT_FALSE(stopped.is_null());
  EXPECT_EQ(stopped.at("state"), "stopped") << stopped.dump();
  EXPECT_TRUE(contains(stopped.at("detail").get<std::string>(), "signal 15 (SIGTERM)")) << stopped.dump();
  EXPECT_TRUE(h.waitForLog("coordinator", "worker-0 said goodbye: stopped by signal 15 (SIGTERM)", seconds(30)))
      << h.log("coordinator");

  // What the stop left: a whole state of its last round trained, dual included.
  auto saved = worker::loadWorkerState(h.path("state/" + h.workerName(0)));
  ASSERT_TRUE(saved.has_value());
  ASSERT_GE(saved->trained_round, 0);
  EXPECT_EQ(saved->dual.size(), saved->trainer.parameters.size());
  EXPECT_EQ(stopped.at("trained_round").get<int64_t>(), saved->trained_round);

  worker0 = h.startWorker(0);
  expectExit(worker0, 0, h, h.workerName(0));
  expectExit(worker1, 0, h, h.workerName(1));
  expectExit(coordinator, 0, h, "coordinator");
  const std::string second_run = h.log(h.workerName(0)).substr(log0.size());
  EXPECT_TRUE(contains(second_run, "resuming from saved state")) << second_run;
  EXPECT_TRUE(contains(h.log("coordinator"), "last round seen " + std::to_string(saved->trained_round) + ")"))
      << h.log("coordinator");
  // The round open at the stop and every later one counted worker-0.
  auto rounds = h.rounds();
  ASSERT_EQ(rounds.size(), o.max_rounds);
  for (const auto& r : rounds) EXPECT_EQ(r.at("contributors").get<size_t>(), 2u) << r.dump();
  // No round was trained and pushed twice across the two runs.
  const std::vector<int64_t> pushed = workerRounds(h, h.workerName(0));
  ASSERT_FALSE(pushed.empty());
  for (size_t i = 1; i < pushed.size(); ++i) EXPECT_LT(pushed[i - 1], pushed[i]);
  EXPECT_EQ(pushed.back(), static_cast<int64_t>(o.max_rounds));
  EXPECT_EQ(statusOf(h, h.workerName(0)).at("state"), "finished");
}

// A write into state_dir that fails mid-run (here: the checkpoint's temp
// path is a directory) ends the worker with exit code 1 and "failed" in
// status.json with the error, not its last activity.
TEST(WorkerLifecycle, AStateWriteThatFailsIsRecordedAsFailed) {
  FederationOptions o;
  o.workers = 2;
  o.min_workers = o.quorum = 2;
  o.max_rounds = 3;
  FederationHarness h(o);
  auto coordinator = h.startCoordinator();
  auto worker0 = h.startWorker(0);
  // Round 1 cannot close before worker-1 joins: worker-0 has pushed it and waits.
  ASSERT_TRUE(h.waitForLog(h.workerName(0), "round 1: ", seconds(120))) << h.log(h.workerName(0));
  const std::string blocked =
      h.path("state/" + h.workerName(0) + "/worker.ckpt.tmp." + std::to_string(worker0.pid()));
  std::filesystem::create_directories(blocked + "/in-the-way");
  auto worker1 = h.startWorker(1);
  expectExit(worker0, 1, h, h.workerName(0));
  const nlohmann::json s = statusOf(h, h.workerName(0));
  ASSERT_FALSE(s.is_null());
  EXPECT_EQ(s.at("state"), "failed") << s.dump();
  const std::string detail = s.at("detail").get<std::string>();
  EXPECT_TRUE(contains(detail, "checkpoint: open '" + blocked + "' failed: Is a directory")) << detail;
  EXPECT_TRUE(contains(h.log(h.workerName(0)), detail)) << h.log(h.workerName(0));
}

// A text shard for the "cnn" model is a configuration error found at start:
// exit code 2, and no connection attempted (the coordinator is not running).
TEST(WorkerLifecycle, AShardOfTheWrongKindIsRefusedAtStart) {
  FederationOptions o;
  o.workers = 1;
  o.min_workers = o.quorum = 1;
  FederationHarness h(o);
  worker::Shard text{worker::Dataset::fromText("Ein Text, kein Bild.\n"), worker::Dataset::fromText("Noch einer.\n")};
  worker::writeShard(text, h.path("shards/text"));
  editWorkerConfig(h, 0, [](nlohmann::json& c) {
    c["data"]["shard"] = "shards/text";
    c["model"] = {{"name", "cnn"}};
  });
  auto worker0 = h.startWorker(0);
  expectExit(worker0, 2, h, h.workerName(0));
  const std::string log = h.log(h.workerName(0));
  EXPECT_TRUE(contains(log, "the training set holds text, but the \"cnn\" model classifies images")) << log;
  EXPECT_FALSE(contains(log, "validation samples")) << log;
  EXPECT_FALSE(contains(log, "port file")) << log;
  EXPECT_EQ(statusOf(h, h.workerName(0)).at("state"), "failed");
}

// A member that points data.shard at other data between two runs keeps its
// parameters, is told so, and reads the new data from the start of an epoch
// (its saved position counted in the old shard).
TEST(WorkerLifecycle, AnotherShardAfterARestartIsToldAndReadFromItsStart) {
  FederationOptions o;
  o.workers = 2;
  o.min_workers = o.quorum = 2;
  o.max_rounds = 3;
  o.local_steps = 500;
  FederationHarness h(o);
  auto coordinator = h.startCoordinator();
  auto worker0 = h.startWorker(0);
  auto worker1 = h.startWorker(1);
  ASSERT_TRUE(h.waitForRounds(1, seconds(120))) << h.log("coordinator");
  ASSERT_TRUE(waitForStatus(
      h, h.workerName(0), [](const nlohmann::json& s) { return s.at("state") == "training"; }, seconds(120)))
      << h.log(h.workerName(0));
  worker0.signal(SIGTERM);
  expectExit(worker0, 0, h, h.workerName(0));
  ASSERT_TRUE(worker::loadWorkerState(h.path("state/" + h.workerName(0))).has_value());
  editWorkerConfig(h, 0, [](nlohmann::json& c) { c["data"]["shard"] = "shards/worker-1"; });
  const size_t before = h.log(h.workerName(0)).size();
  worker0 = h.startWorker(0);
  expectExit(worker0, 0, h, h.workerName(0));
  expectExit(worker1, 0, h, h.workerName(1));
  expectExit(coordinator, 0, h, "coordinator");
  const std::string second_run = h.log(h.workerName(0)).substr(before);
  EXPECT_TRUE(contains(second_run, "(96 training samples), but data.shard is now")) << second_run;
  EXPECT_TRUE(contains(second_run, "(192): the parameters are kept")) << second_run;
}

// No port file: the worker says it waits for it, connects nowhere, and gives
// up after reconnect.give_up_s naming the file.
TEST(WorkerLifecycle, AMissingPortFileIsWaitedForThenGivenUpOnByName) {
  FederationOptions o;
  o.workers = 1;
  FederationHarness h(o);
  editWorkerConfig(h, 0, [](nlohmann::json& c) { c["reconnect"] = {{"initial_s", 0.1}, {"max_s", 0.2}, {"give_up_s", 1}}; });
  auto worker0 = h.startWorker(0);
  expectExit(worker0, 1, h, h.workerName(0));
  const std::string log = h.log(h.workerName(0));
  const std::string waiting = "waiting for the coordinator's port file " + h.path("state/coordinator.port") + " (missing)";
  EXPECT_TRUE(contains(log, waiting + "; retrying in")) << log;
  EXPECT_TRUE(contains(log, "s of failed attempts (reconnect.give_up_s 1): " + waiting)) << log;
  EXPECT_FALSE(contains(log, "7300")) << log;
  EXPECT_FALSE(contains(log, "no welcome")) << log;
  const nlohmann::json s = statusOf(h, h.workerName(0));
  EXPECT_EQ(s.at("state"), "gave up") << s.dump();
  EXPECT_TRUE(contains(s.at("detail").get<std::string>(), waiting)) << s.dump();
}

// A port file holding no port: the reason is in status.json while the
// worker waits (give_up_s 0: for as long as it takes), and SIGTERM stops
// that wait cleanly.
TEST(WorkerLifecycle, AGarbledPortFileIsToldInTheStatusAndSigtermEndsTheWait) {
  FederationOptions o;
  o.workers = 1;
  FederationHarness h(o);
  std::ofstream(h.path("state/coordinator.port")) << "garbage\n";
  editWorkerConfig(h, 0, [](nlohmann::json& c) { c["reconnect"] = {{"initial_s", 0.1}, {"max_s", 0.2}, {"give_up_s", 0}}; });
  auto worker0 = h.startWorker(0);
  const std::string waiting =
      "waiting for the coordinator's port file " + h.path("state/coordinator.port") + " (holds 'garbage', not a port)";
  ASSERT_TRUE(waitForStatus(
      h, h.workerName(0),
      [&](const nlohmann::json& s) {
        return s.at("state") == "retrying" && contains(s.at("detail").get<std::string>(), waiting);
      },
      seconds(60)))
      << h.log(h.workerName(0));
  worker0.signal(SIGTERM);
  expectExit(worker0, 0, h, h.workerName(0));
  const std::string log = h.log(h.workerName(0));
  EXPECT_TRUE(contains(log, waiting + "; retrying in")) << log;
  EXPECT_FALSE(contains(log, "7300")) << log;
  const nlohmann::json s = statusOf(h, h.workerName(0));
  EXPECT_EQ(s.at("state"), "stopped") << s.dump();
  EXPECT_TRUE(contains(s.at("detail").get<std::string>(), "by signal 15 (SIGTERM); nothing was trained yet")) << s.dump();
}

}  // namespace
}  // namespace tapestry::it
