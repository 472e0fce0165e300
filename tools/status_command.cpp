#include "tools/status_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "common/config.h"
#include "coordinator/coordinator_config.h"
#include "coordinator/status_file.h"
#include "tools/commands.h"

namespace tapestry::tools {

namespace {

const char* kUsage =
    "usage: tapestry status (--state-dir DIR | --config COORDINATOR_CONFIG)\n"
    "  Where a coordinator's federation stands: the open round, its deadline, what each connected member\n"
    "  is doing in it, the last round and the best consensus, from <state_dir>/status.json, which the\n"
    "  running coordinator rewrites every 2 s. Exit code 0: running or finished; 1: stopped, failed,\n"
    "  not updated for a while (killed or stuck), or no status at all.\n";

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

StatusReport formatCoordinatorStatus(const nlohmann::json& s, double now_s) {
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
  out << "\ncoordinator pid " << c.at("pid").get<int64_t>() << " on " << c.at("listen").get<std::string>() << " ("
      << c.at("aggregator").get<std::string>() << "), " << state << "; status written " << fixed(age, 1)
      << " s ago\n";
  bool healthy = state == "running" || state == "finished";
  const double stale_after = 3.0 * static_cast<double>(coordinator::kStatusInterval.count());
  if (state == "running" && age > stale_after) {
    out << "  not updated for " << fixed(age, 0) << " s (it is rewritten every "
        << coordinator::kStatusInterval.count() << " s): the coordinator was killed or is stuck; check its log\n";
    healthy = false;
  }
  if (state == "failed") out << "  it stopped because a checkpoint could not be written; its log says why\n";

  const uint64_t max_rounds = s.at("max_rounds").get<uint64_t>();
  const auto& members = s.at("members");
  if (!s.at("has_consensus").get<bool>()) {
    out << "waiting for the initial consensus z_0";
    const std::string provider = s.value("initial_provider", "");
    out << (provider.empty() ? " (no member connected yet)" : " from " + provider) << "\n";
  } else if (s.at("finished").get<bool>()) {
    out << "finished after " << s.at("consensus_round").get<uint64_t>() << " rounds\n";
  } else {
    out << "round " << s.at("open_round").get<uint64_t>() << (max_rounds ? "/" + std::to_string(max_rounds) : "")
        << " open for " << fixed(s.at("open_for_s").get<double>(), 1) << " s";
    if (s.contains("deadline_in_s")) {
      const double left = s.at("deadline_in_s").get<double>();
      out << (left >= 0 ? ", deadline in " + fixed(left, 1) + " s" : ", deadline passed " + fixed(-left, 1) + " s ago");
    }
    out << "; " << s.at("contributors").get<uint64_t>() << " of " << members.size()
        << " connected members pushed (closes with all and at least " << s.at("min_workers").get<uint64_t>()
        << ", or " << s.at("quorum").get<uint64_t>() << " after the deadline)";
    if (s.at("max_staleness").get<uint64_t>() > 0)
      out << "; pushes up to " << s.at("max_staleness").get<uint64_t>() << " rounds late count";
    out << "\n";
  }
  for (const auto& m : members) {
    std::string what = m.at("push").get<std::string>();
    if (m.contains("late_by")) {
      const uint64_t late = m.at("late_by").get<uint64_t>();
      what += ", " + std::to_string(late) + (late == 1 ? " round late" : " rounds late");
    }
    char line[256];
    std::snprintf(line, sizeof line, "  %-20s %-24s %s\n", m.at("id").get<std::string>().c_str(), what.c_str(),
                  m.value("address", "").c_str());
    out << line;
  }
  out << s.at("known_members").get<uint64_t>() << " members have joined this federation so far\n";
  if (s.contains("last_round")) {
    const auto& r = s.at("last_round");
    const uint64_t round = r.at("round").get<uint64_t>();
    out << "last round " << round << ": " << r.at("contributors").get<uint64_t>() << " contributors";
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

int runStatusCommand(const std::vector<std::string>& args) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  if (args.size() != 2 || (args[0] != "--state-dir" && args[0] != "--config")) {
    std::cerr << kUsage;
    return 2;
  }
  try {
    const std::string state_dir =
        args[0] == "--config" ? coordinator::loadCoordinatorConfig(args[1]).state_dir : args[1];
    const std::string path = coordinator::statusPath(state_dir);
    if (!std::filesystem::exists(path)) {
      std::cerr << "tapestry status: no " << path << ": no coordinator has run on this state_dir "
                << "(or it is a version that does not write one); is the path the config's state_dir?\n";
      return 1;
    }
    const nlohmann::json status = common::loadJsonFile(path);
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    StatusReport report = formatCoordinatorStatus(status, now);
    std::cout << report.text;
    return report.healthy ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "tapestry status: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::tools
