#include "coordinator/final_fetches.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "common/line_log.h"
#include "common/log.h"

namespace tapestry::coordinator {
namespace {

std::string fetchesPath(const std::string& state_dir) {
  return (std::filesystem::path(state_dir) / "final_fetched.jsonl").string();
}

}  // namespace

std::set<std::string> loadFinalFetches(const std::string& state_dir, uint64_t round) {
  std::set<std::string> members;
  std::ifstream in(fetchesPath(state_dir));
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("round") || !j.contains("member")) continue;
    if (!j["round"].is_number_unsigned() || !j["member"].is_string()) continue;
    if (j["round"].get<uint64_t>() == round) members.insert(j["member"].get<std::string>());
  }
  return members;
}

void recordFinalFetch(const std::string& state_dir, uint64_t round, const std::string& member) {
  try {
    common::dropTornLastLine(fetchesPath(state_dir));
    common::appendLine(fetchesPath(state_dir), nlohmann::json{{"round", round}, {"member", member}}.dump());
  } catch (const std::exception& e) {
    LOG_WARN("cannot record that " << member << " has the final consensus z_" << round << " (" << e.what()
                                   << "); a restart would wait for it again");
  }
}

}  // namespace tapestry::coordinator
