#pragma once
// `tapestry status`: a running coordinator's state_dir/status.json, for an
// operator at a terminal or a monitoring script (exit code 0: running or
// finished; 1: stopped, failed, stale or missing).
#include <nlohmann/json.hpp>

#include <string>

namespace tapestry::tools {

struct StatusReport {
  std::string text;  // human-readable, several lines
  bool healthy = false;
};

// `status` as written by the coordinator; now_s in seconds since the Unix
// epoch (to tell how old it is).
StatusReport formatCoordinatorStatus(const nlohmann::json& status, double now_s);

}  // namespace tapestry::tools
