#pragma once
// Typed, strict reading of JSON configuration. Every field is read through a
// ConfigReader that remembers which keys it consumed; finish() rejects the
// rest, so a typo is an error that names the key instead of a silent default.
// All errors are ConfigError with the file and the dotted field path.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace tapestry::common {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses a JSON file; ConfigError on a missing file or a syntax error (with
// line and column).
nlohmann::json loadJsonFile(const std::string& path);

class ConfigReader {
 public:
  // `source` names the file (for messages); `prefix` is the dotted path of
  // this object inside it ("" at the top).
  ConfigReader(const nlohmann::json& object, std::string source, std::string prefix = "");

  template <typename T>
  T required(const std::string& key);
  template <typename T>
  T optional(const std::string& key, T fallback);
  bool has(const std::string& key) const {
    ask(key);
    return object_.contains(key);
  }
  ConfigReader child(const std::string& key);  // a nested object, required

  // A path value, made absolute relative to `base_dir` when relative.
  std::string path(const std::string& key, const std::string& base_dir);
  std::string optionalPath(const std::string& key, const std::string& base_dir, std::string fallback);

  // A duration given in (fractional) seconds; must be > 0, or >= 0 when
  // allow_zero.
  std::chrono::milliseconds seconds(const std::string& key, std::chrono::milliseconds fallback, bool allow_zero = false);

  // Throws ConfigError naming the first key that was never read, the keys
  // this object takes and, for a likely misspelling, the one meant.
  void finish() const;

  // Throws ConfigError for `key` with `problem` ("must be > 0").
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;
  std::string fieldName(const std::string& key) const;

 private:
  template <typename T>
  T convert(const std::string& key, const nlohmann::json& value) const;
  void ask(const std::string& key) const;  // remembers a key this object takes
  const nlohmann::json& object_;
  std::string source_;
  std::string prefix_;
  std::vector<std::string> read_;
  mutable std::vector<std::string> asked_;  // every key looked up, present or not, in order
};

template <typename T>
T ConfigReader::required(const std::string& key) {
  ask(key);
  if (!object_.contains(key)) fail(key, "is required but missing");
  read_.push_back(key);
  return convert<T>(key, object_.at(key));
}

template <typename T>
T ConfigReader::optional(const std::string& key, T fallback) {
  ask(key);
  if (!object_.contains(key)) return fallback;
  read_.push_back(key);
  return convert<T>(key, object_.at(key));
}

template <typename T>
T ConfigReader::convert(const std::string& key, const nlohmann::json& value) const {
  if constexpr (std::is_same_v<T, bool>) {
    if (!value.is_boolean()) fail(key, "must be true or false, got " + value.dump());
  } else if constexpr (std::is_integral_v<T>) {
    if (!value.is_number_integer()) fail(key, "must be an integer, got " + value.dump());
    using Limits = std::numeric_limits<T>;
    const auto range = "must be in [" + std::to_string(Limits::min()) + ", " + std::to_string(Limits::max()) + "], got ";
    if (value.is_number_unsigned()) {
      if (value.get<uint64_t>() > static_cast<uint64_t>(Limits::max())) fail(key, range + value.dump());
    } else {
      const auto v = value.get<int64_t>();
      if (std::is_unsigned_v<T> && v < 0) fail(key, "must not be negative, got " + value.dump());
      if (std::is_signed_v<T> && v < static_cast<int64_t>(Limits::min())) fail(key, range + value.dump());
      if (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(Limits::max())) fail(key, range + value.dump());
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!value.is_number()) fail(key, "must be a number, got " + value.dump());
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!value.is_string()) fail(key, "must be a string, got " + value.dump());
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    if (!value.is_array()) fail(key, "must be an array of strings, got " + value.dump());
    for (const auto& v : value)
      if (!v.is_string()) fail(key, "must be an array of strings, got " + value.dump());
  }
  return value.get<T>();
}

}  // namespace tapestry::common
