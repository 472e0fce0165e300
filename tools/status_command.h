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

// Whether the process that wrote a status still runs, from the state_dir's
// lock (common::DirLock::probe) and the pid in it.
enum class Liveness {
  kAlive,      // it holds the lock
  kGone,       // nobody holds it
  kStarting,   // another process holds it and has not written its status yet
  kUnknown,    // the lock cannot be probed (another user's, no file locks)
};

// `status` as written by the coordinator; now_s in seconds since the Unix
// epoch (to tell how old it is). Throws nlohmann::json::exception on a
// status of another format.
StatusReport formatCoordinatorStatus(const nlohmann::json& status, double now_s, Liveness liveness);
// The same for a worker's.
StatusReport formatWorkerStatus(const nlohmann::json& status, double now_s, Liveness liveness);

// A coordinator that has not rewritten its status for this long is stuck
// (it rewrites it every common::kStatusInterval; a long round close or a
// slow disk can hold it up for a while).
constexpr double kStuckAfterSeconds = 60;

}  // namespace tapestry::tools
