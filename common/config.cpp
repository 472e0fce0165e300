#include "common/config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tapestry::common {

nlohmann::json loadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open config file '" + path + "': check the path given to --config");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError("config file '" + path + "' is not valid JSON: " + e.what());
  }
}

ConfigReader::ConfigReader(const nlohmann::json& object, std::string source, std::string prefix)
    : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {
  if (!object_.is_object())
    throw ConfigError("config error in " + source_ + ": " + (prefix_.empty() ? "the top level" : "\"" + prefix_ + "\"") +
                      " must be a JSON object");
}

std::string ConfigReader::fieldName(const std::string& key) const {
  return prefix_.empty() ? key : prefix_ + "." + key;
}

void ConfigReader::fail(const std::string& key, const std::string& problem) const {
  throw ConfigError("config error in " + source_ + ": \"" + fieldName(key) + "\" " + problem);
}

ConfigReader ConfigReader::child(const std::string& key) {
  if (!object_.contains(key)) fail(key, "is required but missing");
  read_.push_back(key);
  if (!object_.at(key).is_object()) fail(key, "must be a JSON object, got " + object_.at(key).dump());
  return ConfigReader(object_.at(key), source_, fieldName(key));
}

std::string ConfigReader::path(const std::string& key, const std::string& base_dir) {
  std::filesystem::path p = required<std::string>(key);
  if (p.empty()) fail(key, "must not be empty");
  if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
  return p.lexically_normal().string();
}

std::string ConfigReader::optionalPath(const std::string& key, const std::string& base_dir, std::string fallback) {
  if (!has(key)) return fallback;
  return path(key, base_dir);
}

std::chrono::milliseconds ConfigReader::seconds(const std::string& key, std::chrono::milliseconds fallback,
                                                bool allow_zero) {
  double s = optional<double>(key, static_cast<double>(fallback.count()) / 1000.0);
  if (s < 0 || (!allow_zero && s == 0)) fail(key, allow_zero ? "must be >= 0 seconds" : "must be > 0 seconds");
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

void ConfigReader::finish() const {
  for (const auto& item : object_.items()) {
    if (std::find(read_.begin(), read_.end(), item.key()) != read_.end()) continue;
    std::ostringstream known;
    for (size_t i = 0; i < read_.size(); ++i) known << (i ? ", " : "") << read_[i];
    throw ConfigError("config error in " + source_ + ": unknown key \"" + fieldName(item.key()) +
                      "\"; remove it or fix its spelling" +
                      (read_.empty() ? std::string() : " (keys read here: " + known.str() + ")"));
  }
}

}  // namespace tapestry::common
