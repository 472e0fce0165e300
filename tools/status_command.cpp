#include "tools/status_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "common/config.h"
#include "common/dir_lock.h"
#include "coordinator/coordinator_config.h"
#include "common/status_file.h"
#include "tools/commands.h"
#include "worker/worker_config.h"

namespace tapestry::tools {

namespace {

const char* kUsage =
    "usage: tapestry status (--state-dir DIR | --config COORDINATOR_OR_WORKER_CONFIG [--workdir DIR])\n"
    "  A coordinator: where its federation stands (the open round, its deadline, what each connected\n"
    "  member is doing in it, the last round, the best consensus). A worker: what it is doing now\n"
    "  (training, waiting for the consensus, connecting or retrying and why, finished), its last round's\n"
    "  timings and the consensus's validation metric on its data. Read from <state_dir>/status.json,\n"
    "  which the daemon keeps current.\n"
    "  --workdir: as given to the daemon, when its config's relative paths resolve against it.\n"
    "  Exit code 0: running or finished; 1: stopped, failed, refused, killed, stuck, or no status at all.\n";

std::string fixed(double v, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, v);
  return buffer;
}

std::string describeMetric(const nlohmann::json& value, const std::string& kind, uint64_t round) {
  const double m = value.get<double>();
  if (kind == "bits per byte") return "val " + fixed(m, 3) + " bits per byte of z_" + std::to_string(round);
  return "val accuracy of z_" + std::to_string(round) + " " + fixed(100 * m, 2) + "%";
}

}  // namespace

std::string describeLiveness(Liveness liveness, const std::string& who) {
  switch (liveness) {
    case Liveness::kStarting:
      return "  another " + who + " process holds the state_dir and has not written its status yet (starting); "
             "below is the previous one's\n";
    case Liveness::kUnknown:
      return "  cannot tell whether it runs: the state_dir's LOCK cannot be probed (run this as the daemon's user)\n";
    default: return {};
  }
}

StatusReport formatCoordinatorStatus(const nlohmann::json& s, double now_s, Liveness liveness) {
  std::ostringstream out;
  const auto& c = s.at("coordinator");
  const std::string state = c.at("state").get<std::string>();
  const double age = now_s - s.at("updated_at").get<double>();
  const bool lm = s.value("model", "").find("\"transformer\"") != std::string::npos;
  const std::string metric_kind = lm ? "bits per byte" : "accuracy";
  out << "federation '" << s.at("federation_id").get<std::string>() << "': " << s.at("algorithm").get<std::string>()
      << ", server " << s.at("server_optimizer").get<std::string>() << ", aggregation "
      << s.at("aggregation").get<std::string>();
  if (s.at("parameters").get<uint64_t>() > 0)
    out << "; model " << s.at("model").get<std::string>() << " (" << s.at("parameters").get<uint64_t>()
        << " parameters)";
  const bool killed = state == "running" && liveness == Liveness::kGone;
  const bool live = state == "running" && !killed;
  out << "\ncoordinator pid " << c.at("pid").get<int64_t>() << " on " << c.at("listen").get<std::string>() << " ("
      << c.at("aggregator").get<std::string>() << "), " << (killed ? "not running" : state) << "; status written "
      << fixed(age, 1) << " s ago\n";
  bool healthy = state == "running" || state == "finished" || liveness == Liveness::kStarting;
  out << describeLiveness(liveness, "coordinator");
  if (killed) {
    out << "  no process holds its state_dir: the coordinator was killed; its last status is below\n";
    healthy = false;
  } else if (state == "running" && liveness != Liveness::kStarting && age > kStuckAfterSeconds) {
    out << "  not updated for " << fixed(age, 0) << " s (it is rewritten every "
        << common::kStatusInterval.count() << " s): the coordinator is stuck; check its log\n";
    healthy = false;
  }
  if (state == "failed") out << "  it stopped because a checkpoint could not be written; its log says why\n";

  const uint64_t max_rounds = s.at("max_rounds").get<uint64_t>();
  const auto& members = s.at("members");
  // What a status that is no longer current said, told as past.
  const std::string then = live ? "" : "when it stopped: ";
  if (!s.at("has_consensus").get<bool>()) {
    out << then << "waiting for the initial consensus z_0";
    const std::string provider = s.value("initial_provider", "");
    out << (provider.empty() ? " (no member connected yet)" : " from " + provider) << "\n";
  } else if (s.at("finished").get<bool>()) {
    out << "finished after " << s.at("consensus_round").get<uint64_t>() << " rounds\n";
  } else {
    out << then << "round " << s.at("open_round").get<uint64_t>()
        << (max_rounds ? "/" + std::to_string(max_rounds) : "") << " open for "
        << fixed(s.at("open_for_s").get<double>(), 1) << " s";
    if (live && s.contains("deadline_in_s")) {
      const double left = s.at("deadline_in_s").get<double>();
      out << (left >= 0 ? ", deadline in " + fixed(left, 1) + " s" : ", deadline passed " + fixed(-left, 1) + " s ago");
    }
    size_t pushed = 0;
    for (const auto& m : members) pushed += m.value("push", "") != "waiting";
    const uint64_t contributors = s.at("contributors").get<uint64_t>();
    out << "; " << pushed << " of " << members.size() << " connected members pushed";
    if (contributors != pushed) out << " (" << contributors << " contributions, some from members since gone)";
    out << "; it closes with all and at least " << s.at("min_workers").get<uint64_t>() << ", or "
        << s.at("quorum").get<uint64_t>() << " after the deadline";
    if (s.at("max_staleness").get<uint64_t>() > 0)
      out << "; pushes up to " << s.at("max_staleness").get<uint64_t>() << " rounds late count";
    out << "\n";
  }
  for (const auto& m : members) {
    std::string what = m.at("push").get<std::string>();
    if (what == "waiting") what = "not pushed yet";
    if (m.contains("late_by")) {
      const uint64_t late = m.at("late_by").get<uint64_t>();
      what += ", " + std::to_string(late) + (late == 1 ? " round late" : " rounds late");
    }
    char line[256];
    std::snprintf(line, sizeof line, "  %-20s %-24s %s\n", m.at("id").get<std::string>().c_str(), what.c_str(),
                  m.value("address", "").c_str());
    out << line;
  }
  const uint64_t known = s.at("known_members").get<uint64_t>();
  out << known << (known == 1 ? " member has" : " members have") << " joined this federation so far\n";
  if (s.contains("last_round")) {
    const auto& r = s.at("last_round");
    const uint64_t round = r.at("round").get<uint64_t>();
    const uint64_t contributors = r.at("contributors").get<uint64_t>();
    out << "last round " << round << ": " << contributors << (contributors == 1 ? " contributor" : " contributors");
    if (r.value("late", uint64_t{0}) > 0) out << " (" << r.at("late").get<uint64_t>() << " late)";
    out << ", " << fixed(r.at("bytes_received").get<double>() / 1e6, 1) << " MB received, "
        << fixed(r.at("seconds").get<double>(), 2) << " s";
    if (r.at("metric").get<double>() >= 0) out << ", " << describeMetric(r.at("metric"), metric_kind, round - 1);
    out << "\n";
  }
  if (s.contains("best"))
    out << "best consensus so far: "
        << describeMetric(s.at("best").at("metric"), metric_kind, s.at("best").at("round").get<uint64_t>()) << "\n";
  return {out.str(), healthy};
}

StatusReport formatWorkerStatus(const nlohmann::json& s, double now_s, Liveness liveness) {
  std::ostringstream out;
  const std::string state = s.at("state").get<std::string>();
  const std::string detail = s.value("detail", "");
  const double since = now_s - s.at("since").get<double>();
  out << "worker '" << s.at("worker").get<std::string>() << "' (pid " << s.at("pid").get<int64_t>() << ")";
  const std::string federation = s.value("federation_id", "");
  if (!federation.empty()) out << ", federation '" << federation << "'";
  out << ", coordinator " << s.at("coordinator").get<std::string>() << "\n";
  const bool finished = state == "finished";
  const bool alive = liveness == Liveness::kAlive;
  const bool ended = state == "refused" || state == "gave up" || state == "stopped" || state == "failed";
  const bool healthy = finished || liveness == Liveness::kStarting || (liveness != Liveness::kGone && !ended);
  out << describeLiveness(liveness, "worker");
  if (liveness == Liveness::kGone && !finished) out << "not running; its last status, " << fixed(since, 0) << " s ago:\n";
  out << "  " << state << (detail.empty() ? "" : ": " + detail);
  if (alive) out << " (for " << fixed(since, 1) << " s)";
  out << "\n";
  const int64_t trained = s.value("trained_round", int64_t{-1});
  if (trained >= 0 && !s.contains("last_round")) out << "trained on consensus z_" << trained << " last\n";
  if (s.contains("last_round")) {
    const auto& r = s.at("last_round");
    out << "last round " << r.at("round").get<int64_t>() << ": " << r.at("local_steps").get<int64_t>()
        << " local steps in " << fixed(r.at("train_s").get<double>(), 2) << " s";
    if (r.value("steps_ahead", int64_t{0}) > 0) out << " (" << r.at("steps_ahead").get<int64_t>() << " while waiting)";
    out << ", idle " << fixed(r.at("idle_s").get<double>(), 2) << " s waiting for the coordinator";
    if (r.contains("since_last_push_s") && r.at("since_last_push_s").is_number())
      out << ", " << fixed(r.at("since_last_push_s").get<double>(), 2) << " s since the push before";
    if (r.value("restarted_from_consensus", false)) out << "; training diverged and restarted from the consensus";
    out << "\n";
  }
  if (s.contains("consensus_metric")) {
    const auto& m = s.at("consensus_metric");
    const std::string name = s.value("metric_name", "accuracy");
    const double v = m.at("value").get<double>();
    out << "validation " << name << " of z_" << m.at("round").get<int64_t>() << " on this member's data: "
        << (name == "accuracy" ? fixed(100 * v, 2) + "%" : fixed(v, 3)) << "\n";
  }
  if (s.contains("final")) out << "final consensus: " << s.at("final").get<std::string>() << "\n";
  return {out.str(), healthy};
}

int runStatusCommand(const std::vector<std::string>& args) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  std::map<std::string, std::string> flags;
  std::string problem;
  for (size_t i = 0; problem.empty() && i < args.size(); i += 2) {
    const bool known = args[i] == "--state-dir" || args[i] == "--config" || args[i] == "--workdir";
    if (!known) problem = "unknown option '" + args[i] + "'";
    else if (i + 1 >= args.size() || args[i + 1].empty()) problem = "option " + args[i] + " needs a value";
    else if (!flags.emplace(args[i], args[i + 1]).second) problem = "option " + args[i] + " given twice";
  }
  const std::string state_dir_flag = flags.count("--state-dir") ? flags["--state-dir"] : "";
  const std::string config = flags.count("--config") ? flags["--config"] : "";
  const std::string workdir = flags.count("--workdir") ? flags["--workdir"] : "";
  if (problem.empty() && state_dir_flag.empty() && config.empty()) problem = "give --state-dir or --config";
  if (problem.empty() && !state_dir_flag.empty() && !config.empty()) problem = "give --state-dir or --config, not both";
  if (problem.empty() && !workdir.empty() && config.empty()) problem = "--workdir goes with --config only";
  if (!problem.empty()) {
    std::cerr << "tapestry status: " << problem << "\n" << kUsage;
    return 2;
  }
  std::string state_dir = state_dir_flag;
  try {
    if (!config.empty()) {
      // A worker's config names its coordinator; a coordinator's does not.
      state_dir = common::loadJsonFile(config).contains("coordinator")
                      ? worker::loadWorkerConfig(config, workdir).state_dir
                      : coordinator::loadCoordinatorConfig(config, workdir).state_dir;
    }
    const std::string path = common::statusPath(state_dir);
    if (!std::filesystem::exists(path)) {
      std::cerr << "tapestry status: no " << path << ": no coordinator or worker has got far enough on this "
                << "state_dir to write one (it never ran there, or stopped at start: its log says why), or the path "
                << "is not the config's state_dir\n";
      return 1;
    }
    nlohmann::json status;
    try {
      std::ifstream in(path);
      status = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      std::cerr << "tapestry status: " << path << " is not JSON (" << e.what() << "); the daemon rewrites it, so try "
                << "again in a moment\n";
      return 1;
    }
    Liveness liveness = Liveness::kUnknown;
    switch (common::DirLock::probe(state_dir)) {
      case common::DirLock::Probe::kFree: liveness = Liveness::kGone; break;
      case common::DirLock::Probe::kUnknown: liveness = Liveness::kUnknown; break;
      case common::DirLock::Probe::kHeld: {
        const long holder = common::DirLock::holderPid(state_dir);
        const auto& writer = status.contains("worker") ? status : status.value("coordinator", nlohmann::json::object());
        const bool same = holder == 0 || holder == writer.value("pid", 0L);
        liveness = same ? Liveness::kAlive : Liveness::kStarting;
        break;
      }
    }
    try {
      StatusReport report = status.contains("worker")
                                ? formatWorkerStatus(status, common::epochSeconds(), liveness)
                                : formatCoordinatorStatus(status, common::epochSeconds(), liveness);
      std::cout << report.text;
      return report.healthy ? 0 : 1;
    } catch (const nlohmann::json::exception& e) {
      std::cerr << "tapestry status: " << path << " is not a status this version reads (" << e.what()
                << "); was it written by another version of tapestry?\n";
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "tapestry status: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::tools
