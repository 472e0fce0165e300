#pragma once
// state_dir/status.json: where a daemon stands (the coordinator: its
// federation, rewritten every couple of seconds; a worker: at each change of
// what it is doing), written as a temp file then renamed, so a reader never
// sees half of one, and read by `tapestry status`. A convenience for
// operators, not durable state: nothing is fsync'd.
#include <chrono>
#include <functional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace tapestry::common {

// How often the running coordinator rewrites it; a reader that finds it
// older than a few of these knows the coordinator is stuck.
constexpr std::chrono::seconds kStatusInterval{2};

std::string statusPath(const std::string& state_dir);

// Writes `status` with "updated_at" (seconds since the Unix epoch) added.
// Returns an empty string, or what went wrong.
std::string writeStatusFile(const std::string& state_dir, nlohmann::json status);

// A daemon's status.json: write() builds and writes it and never throws; a
// failure is logged once (until a write succeeds again), naming `who`, and
// the daemon goes on.
class StatusFile {
 public:
  StatusFile(std::string state_dir, std::string who) : state_dir_(std::move(state_dir)), who_(std::move(who)) {}
  void write(const std::function<nlohmann::json()>& build);

 private:
  std::string state_dir_, who_;
  bool failed_ = false;
};

// Seconds since the Unix epoch, as "updated_at" counts them.
double epochSeconds();

}  // namespace tapestry::common
