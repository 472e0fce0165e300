#pragma once
// `tapestry status`: a coordinator's or a worker's state_dir/status.json,
// for an operator at a terminal or a monitoring script (exit code 0: running
// or finished; 1: stopped, failed, killed, stuck or no status at all).
#include <nlohmann/json.hpp>

#include <string>

namespace tapestry::tools {

struct StatusReport {
  std::string text;  // human-readable, several lines
  bool healthy = false;
};

// `status` as written by the coordinator; now_s in seconds since the Unix
// epoch (to tell how old it is); alive: a process holds the state_dir's lock.
StatusReport formatCoordinatorStatus(const nlohmann::json& status, double now_s, bool alive);
// The same for a worker's.
StatusReport formatWorkerStatus(const nlohmann::json& status, double now_s, bool alive);

}  // namespace tapestry::tools
