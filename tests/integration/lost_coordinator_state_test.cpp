// A coordinator that lost its state, with the real binaries on loopback TLS:
// restarted over its round history it refuses to begin again at round 0, and
// restarted in an emptied state_dir the member that re-seeds it says that
// it trained further than the coordinator now knows.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <thread>

#include "integration/federation_harness.h"

namespace tapestry::it {
namespace {

using std::chrono::seconds;

TEST(LostCoordinatorState, RefusedOverItsHistoryAndToldByTheMemberThatReseedsIt) {
  FederationOptions o;
  o.workers = 2;
  o.min_workers = 2;
  o.quorum = 2;
  o.max_rounds = 50;
  FederationHarness h(o);
  auto coordinator = h.startCoordinator();
  std::vector<tools::ChildProcess> workers;
  for (size_t k = 0; k < o.workers; ++k) workers.push_back(h.startWorker(k));
  ASSERT_TRUE(h.waitForRounds(2, seconds(120))) << h.log("coordinator");
  coordinator.signal(SIGKILL);
  ASSERT_TRUE(coordinator.wait(seconds(10)).has_value());

  // coordinator.ckpt lost, rounds.jsonl kept: refused, the history untouched.
  const std::string rounds_file = h.path("state/coordinator/rounds.jsonl");
  const auto rounds_before = std::filesystem::file_size(rounds_file);
  std::filesystem::remove(h.checkpoint());
  auto refused = tools::ChildProcess::spawn(
      {binary("tapestry-coordinator"), "--config", h.path("coordinator.json"), "--workdir", h.dir()},
      h.path("logs/refused-coordinator.log"));
  const auto rc = refused.wait(seconds(60));
  ASSERT_TRUE(rc.has_value()) << h.log("refused-coordinator");
  EXPECT_EQ(*rc, 1) << h.log("refused-coordinator");
  EXPECT_NE(h.log("refused-coordinator").find("holds the history of a federation (rounds.jsonl up to round"),
            std::string::npos)
      << h.log("refused-coordinator");
  EXPECT_EQ(std::filesystem::file_size(rounds_file), rounds_before);

  // The operator empties the state_dir to start again: the member asked for
  // z_0 says it had trained further.
  std::filesystem::remove_all(h.path("state/coordinator"));
  coordinator = h.startCoordinator();
  bool told = false;
  for (int i = 0; i < 600 && !told; ++i) {
    for (size_t k = 0; k < o.workers; ++k)
      told = told || h.log(h.workerName(k)).find("the coordinator has no consensus yet, but this member trained up "
                                                  "to consensus z_") != std::string::npos;
    if (!told) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(told) << h.log(h.workerName(0)) << h.log(h.workerName(1));
  coordinator.signal(SIGTERM);
  ASSERT_TRUE(coordinator.wait(seconds(60)).has_value());
  for (auto& w : workers) {
    w.signal(SIGTERM);
    ASSERT_TRUE(w.wait(seconds(60)).has_value());
  }
}

}  // namespace
}  // namespace tapestry::it
