#pragma once
// state_dir/status.json: where the federation stands, rewritten by the
// running coordinator every couple of seconds (temp file, then rename, so a
// reader never sees half of one) and read by `tapestry status`. A
// convenience for operators, not durable state: nothing is fsync'd.
#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace tapestry::coordinator {

// How often the running coordinator rewrites it; a reader that finds it
// older than a few of these knows the coordinator is gone or stuck.
constexpr std::chrono::seconds kStatusInterval{2};

std::string statusPath(const std::string& state_dir);

// Writes `status` with "updated_at" (seconds since the Unix epoch) added.
// Returns an empty string, or what went wrong.
std::string writeStatusFile(const std::string& state_dir, nlohmann::json status);

}  // namespace tapestry::coordinator
