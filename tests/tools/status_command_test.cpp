// `tapestry status`'s report of a coordinator's status.json, and whether it
// calls the coordinator healthy (the exit code a monitoring script sees).
#include "tools/status_command.h"

#include <gtest/gtest.h>

#include "tools/commands.h"

namespace tapestry::tools {
namespace {

constexpr double kNow = 1.8e9;

nlohmann::json runningStatus() {
  return nlohmann::json::parse(R"({
    "federation_id": "hospitals", "algorithm": "fedprox", "server_optimizer": "nesterov", "aggregation": "mean",
    "model": "{\"name\":\"cnn\"}", "parameters": 44426, "has_consensus": true, "finished": false,
    "consensus_round": 11, "open_round": 12, "open_for_s": 3.25, "deadline_in_s": 296.75, "max_rounds": 40,
    "min_workers": 4, "quorum": 3, "max_staleness": 2, "known_members": 5, "contributors": 3,
    "members": [
      {"id": "worker-0", "push": "pushed", "address": "10.0.0.7:41000"},
      {"id": "worker-1", "push": "pushed", "late_by": 1},
      {"id": "worker-2", "push": "streaming"},
      {"id": "worker-3", "push": "waiting"}],
    "last_round": {"round": 11, "contributors": 4, "bytes_received": 710816, "seconds": 0.62, "metric": 0.843,
                   "late": 1},
    "best": {"round": 9, "metric": 0.861, "metric_kind": "accuracy"},
    "coordinator": {"state": "running", "pid": 4242, "listen": "0.0.0.0:7300", "aggregator": "cpu"}})");
}

TEST(StatusCommand, ARunningCoordinatorIsReportedRoundByMember) {
  nlohmann::json s = runningStatus();
  s["updated_at"] = kNow - 1.0;
  const StatusReport report = formatCoordinatorStatus(s, kNow, Liveness::kAlive);
  EXPECT_TRUE(report.healthy);
  for (const char* text :
       {"federation 'hospitals': fedprox, server nesterov", "(44426 parameters)", "pid 4242 on 0.0.0.0:7300",
        "round 12/40 open for 3.2 s, deadline in 296.8 s", "3 of 4 connected members pushed; it closes",
        "pushes up to 2 rounds late count", "pushed, 1 round late", "streaming", "10.0.0.7:41000",
        "5 members have joined", "last round 11: 4 contributors (1 late), 0.7 MB received",
        "val accuracy of z_10 84.30%", "best consensus so far: val accuracy of z_9 86.10%"})
    EXPECT_NE(report.text.find(text), std::string::npos) << "missing \"" << text << "\" in\n" << report.text;
}

TEST(StatusCommand, AStatusNotRewrittenForAWhileMeansTheCoordinatorIsStuck) {
  nlohmann::json s = runningStatus();
  s["updated_at"] = kNow - 120.0;
  const StatusReport report = formatCoordinatorStatus(s, kNow, Liveness::kAlive);
  EXPECT_FALSE(report.healthy);
  EXPECT_NE(report.text.find("is stuck"), std::string::npos) << report.text;
}

TEST(StatusCommand, ARunningStatusWithNoProcessBehindItMeansKilled) {
  nlohmann::json s = runningStatus();
  s["updated_at"] = kNow - 1.0;
  const StatusReport report = formatCoordinatorStatus(s, kNow, Liveness::kGone);
  EXPECT_FALSE(report.healthy);
  EXPECT_NE(report.text.find("the coordinator was killed"), std::string::npos) << report.text;
  EXPECT_NE(report.text.find("), not running; status written 1.0 s ago"), std::string::npos) << report.text;
  EXPECT_EQ(report.text.find("), running;"), std::string::npos) << "no 'running' next to 'killed':\n" << report.text;
  EXPECT_NE(report.text.find("when it stopped: round 12/40 open for 3.2 s;"), std::string::npos) << report.text;
  EXPECT_EQ(report.text.find("deadline in"), std::string::npos) << "a dead deadline:\n" << report.text;
}

TEST(StatusCommand, StoppedAndFinishedAreTold) {
  nlohmann::json s = runningStatus();
  s["updated_at"] = kNow - 600.0;
  s["coordinator"]["state"] = "stopped";
  const StatusReport stopped = formatCoordinatorStatus(s, kNow, Liveness::kAlive);
  EXPECT_FALSE(stopped.healthy) << "stopped before the last round";
  EXPECT_NE(stopped.text.find("when it stopped: round 12/40"), std::string::npos) << stopped.text;
  EXPECT_EQ(stopped.text.find("deadline in"), std::string::npos) << stopped.text;

  s["coordinator"]["state"] = "finished";
  s["finished"] = true;
  s["consensus_round"] = 40;
  s["members"] = nlohmann::json::array();
  const StatusReport finished = formatCoordinatorStatus(s, kNow, Liveness::kAlive);
  EXPECT_TRUE(finished.healthy) << "an old status of a finished federation is no alarm";
  EXPECT_NE(finished.text.find("finished after 40 rounds"), std::string::npos) << finished.text;
}

TEST(StatusCommand, BeforeZ0ItSaysWhoIsAskedForIt) {
  nlohmann::json s = runningStatus();
  s["updated_at"] = kNow;
  s["has_consensus"] = false;
  s["initial_provider"] = "worker-2";
  EXPECT_NE(formatCoordinatorStatus(s, kNow, Liveness::kAlive).text.find("waiting for the initial consensus z_0 from worker-2"),
            std::string::npos);
}

TEST(StatusCommand, ALanguageModelsMetricIsBitsPerByte) {
  nlohmann::json s = runningStatus();
  s["updated_at"] = kNow;
  s["model"] = R"({"name":"transformer"})";
  s["best"] = {{"round", 9}, {"metric", 3.91}, {"metric_kind", "bits per byte"}};
  EXPECT_NE(formatCoordinatorStatus(s, kNow, Liveness::kAlive).text.find("val 3.910 bits per byte of z_9"), std::string::npos);
}

nlohmann::json workerStatus() {
  return nlohmann::json::parse(R"({
    "worker": "hospital-a", "state": "training", "detail": "round 12: 100 local steps on consensus z_11",
    "since": 1799999998.5, "pid": 777, "coordinator": "federation.example.org:7300", "federation_id": "hospitals",
    "trained_round": 10, "metric_name": "accuracy",
    "last_round": {"round": 11, "local_steps": 100, "steps_ahead": 20, "train_s": 1.3, "idle_s": 0.2,
                   "since_last_push_s": 1.55},
    "consensus_metric": {"round": 10, "value": 0.843}})");
}

TEST(StatusCommand, AWorkerSaysWhatItIsDoingAndWhatTheLastRoundCost) {
  const StatusReport report = formatWorkerStatus(workerStatus(), kNow, Liveness::kAlive);
  EXPECT_TRUE(report.healthy);
  for (const char* text : {"worker 'hospital-a' (pid 777), federation 'hospitals', coordinator federation.example.org:7300",
                           "training: round 12: 100 local steps on consensus z_11 (for 1.5 s)",
                           "last round 11: 100 local steps in 1.30 s (20 while waiting), idle 0.20 s",
                           "1.55 s since the push before", "validation accuracy of z_10 on this member's data: 84.30%"})
    EXPECT_NE(report.text.find(text), std::string::npos) << "missing \"" << text << "\" in\n" << report.text;
}

TEST(StatusCommand, AWorkerThatIsGoneOrRefusedIsUnhealthyUnlessItFinished) {
  const StatusReport gone = formatWorkerStatus(workerStatus(), kNow, Liveness::kGone);
  EXPECT_FALSE(gone.healthy);
  EXPECT_NE(gone.text.find("not running; its last status"), std::string::npos) << gone.text;

  nlohmann::json s = workerStatus();
  s["state"] = "refused";
  s["detail"] = "certificate revoked";
  EXPECT_FALSE(formatWorkerStatus(s, kNow, Liveness::kAlive).healthy);

  s["state"] = "finished";
  s["final"] = "/var/lib/tapestry/worker/consensus.ckpt";
  const StatusReport done = formatWorkerStatus(s, kNow, Liveness::kGone);
  EXPECT_TRUE(done.healthy);
  EXPECT_NE(done.text.find("final consensus: /var/lib/tapestry/worker/consensus.ckpt"), std::string::npos) << done.text;
}

TEST(StatusCommand, ANewProcessOnTheStateDirOrALockThatCannotBeProbedIsNoAlarm) {
  nlohmann::json s = runningStatus();
  s["updated_at"] = kNow - 300.0;
  const StatusReport starting = formatCoordinatorStatus(s, kNow, Liveness::kStarting);
  EXPECT_TRUE(starting.healthy) << starting.text;
  EXPECT_NE(starting.text.find("has not written its status yet (starting)"), std::string::npos) << starting.text;

  s["updated_at"] = kNow - 1.0;
  const StatusReport unknown = formatCoordinatorStatus(s, kNow, Liveness::kUnknown);
  EXPECT_TRUE(unknown.healthy) << "fresh, so running, as far as anyone can tell";
  EXPECT_NE(unknown.text.find("cannot tell whether it runs"), std::string::npos) << unknown.text;
  s["updated_at"] = kNow - 300.0;
  EXPECT_FALSE(formatCoordinatorStatus(s, kNow, Liveness::kUnknown).healthy) << "and stale, so stuck or gone";

  nlohmann::json w = workerStatus();
  w["state"] = "refused";
  EXPECT_FALSE(formatWorkerStatus(w, kNow, Liveness::kUnknown).healthy);
  EXPECT_TRUE(formatWorkerStatus(workerStatus(), kNow, Liveness::kStarting).healthy);
}

TEST(StatusCommand, AWrongArgumentIsNamedBeforeTheUsage) {
  const auto error = [](const std::vector<std::string>& args) {
    ::testing::internal::CaptureStderr();
    const int rc = runStatusCommand(args);
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(rc, 2) << err;
    return err.substr(0, err.find('\n'));
  };
  EXPECT_EQ(error({"--config"}), "tapestry status: option --config needs a value");
  EXPECT_EQ(error({"--confg", "x.json"}), "tapestry status: unknown option '--confg'");
  EXPECT_EQ(error({}), "tapestry status: give --state-dir or --config");
  EXPECT_EQ(error({"--state-dir", "a", "--config", "b"}), "tapestry status: give --state-dir or --config, not both");
  EXPECT_EQ(error({"--state-dir", "a", "--state-dir", "b"}), "tapestry status: option --state-dir given twice");
  EXPECT_EQ(error({"--state-dir", "a", "--workdir", "b"}), "tapestry status: --workdir goes with --config only");
}

}  // namespace
}  // namespace tapestry::tools
