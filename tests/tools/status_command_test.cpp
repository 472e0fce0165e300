// `tapestry status`'s report of a coordinator's status.json, and whether it
// calls the coordinator healthy (the exit code a monitoring script sees).
#include "tools/status_command.h"

#include <gtest/gtest.h>

namespace tapestry::tools {
namespace {

constexpr double kNow = 1.8e9;

nlohmann::json runningStatus() {
  return nlohmann::json::parse(R"({
    "federation_id": "hospitals", "algorithm": "fedprox", "server_optimizer": "nesterov", "aggregation": "mean",
    "model": "{\"name\":\"cnn\"}", "parameters": 44426, "has_consensus": true, "finished": false,
    "consensus_round": 11, "open_round": 12, "open_for_s": 3.25, "deadline_in_s": 296.75, "max_rounds": 40,
    "min_workers": 4, "quorum": 3, "max_staleness": 2, "known_members": 5, "contributors": 2,
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
  const StatusReport report = formatCoordinatorStatus(s, kNow);
  EXPECT_TRUE(report.healthy);
  for (const char* text :
       {"federation 'hospitals': fedprox, server nesterov", "(44426 parameters)", "pid 4242 on 0.0.0.0:7300",
        "round 12/40 open for 3.2 s, deadline in 296.8 s", "2 of 4 connected members pushed",
        "pushes up to 2 rounds late count", "pushed, 1 round late", "streaming", "10.0.0.7:41000",
        "5 members have joined", "last round 11: 4 contributors (1 late), 0.7 MB received",
        "val accuracy of z_10 84.30%", "best consensus so far: val accuracy of z_9 86.10%"})
    EXPECT_NE(report.text.find(text), std::string::npos) << "missing \"" << text << "\" in\n" << report.text;
}

TEST(StatusCommand, AStatusNotRewrittenForAWhileMeansTheCoordinatorIsGone) {
  nlohmann::json s = runningStatus();
  s["updated_at"] = kNow - 60.0;
  const StatusReport report = formatCoordinatorStatus(s, kNow);
  EXPECT_FALSE(report.healthy);
  EXPECT_NE(report.text.find("killed or is stuck"), std::string::npos) << report.text;
}

TEST(StatusCommand, StoppedAndFinishedAreTold) {
  nlohmann::json s = runningStatus();
  s["updated_at"] = kNow - 600.0;
  s["coordinator"]["state"] = "stopped";
  EXPECT_FALSE(formatCoordinatorStatus(s, kNow).healthy) << "stopped before the last round";

  s["coordinator"]["state"] = "finished";
  s["finished"] = true;
  s["consensus_round"] = 40;
  s["members"] = nlohmann::json::array();
  const StatusReport finished = formatCoordinatorStatus(s, kNow);
  EXPECT_TRUE(finished.healthy) << "an old status of a finished federation is no alarm";
  EXPECT_NE(finished.text.find("finished after 40 rounds"), std::string::npos) << finished.text;
}

TEST(StatusCommand, BeforeZ0ItSaysWhoIsAskedForIt) {
  nlohmann::json s = runningStatus();
  s["updated_at"] = kNow;
  s["has_consensus"] = false;
  s["initial_provider"] = "worker-2";
  EXPECT_NE(formatCoordinatorStatus(s, kNow).text.find("waiting for the initial consensus z_0 from worker-2"),
            std::string::npos);
}

TEST(StatusCommand, ALanguageModelsMetricIsBitsPerByte) {
  nlohmann::json s = runningStatus();
  s["updated_at"] = kNow;
  s["model"] = R"({"name":"transformer"})";
  s["best"] = {{"round", 9}, {"metric", 3.91}, {"metric_kind", "bits per byte"}};
  EXPECT_NE(formatCoordinatorStatus(s, kNow).text.find("val 3.910 bits per byte of z_9"), std::string::npos);
}

}  // namespace
}  // namespace tapestry::tools
