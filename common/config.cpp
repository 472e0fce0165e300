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

void ConfigReader::ask(const std::string& key) const {
  if (std::find(asked_.begin(), asked_.end(), key) == asked_.end()) asked_.push_back(key);
}

namespace {

size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

void ConfigReader::finish() const {
  for (const auto& item : object_.items()) {
    if (std::find(read_.begin(), read_.end(), item.key()) != read_.end()) continue;
    std::ostringstream known;
    std::string closest;
    size_t best = std::max<size_t>(2, item.key().size() / 3) + 1;
    for (size_t i = 0; i < asked_.size(); ++i) {
      known << (i ? ", " : "") << asked_[i];
      const size_t d = editDistance(item.key(), asked_[i]);
      if (d < best) best = d, closest = asked_[i];
    }
    throw ConfigError("config error in " + source_ + ": unknown key \"" + fieldName(item.key()) + "\"" +
                      (closest.empty() ? "; remove it or fix its spelling"
                                       : "; did you mean \"" + fieldName(closest) + "\"?") +
                      (asked_.empty() ? std::string() : " (keys of this section: " + known.str() + ")"));
  }
}

}  // namespace tapestry::common
