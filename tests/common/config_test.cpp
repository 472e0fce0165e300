#include "common/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>

namespace tapestry::common {
namespace {

using nlohmann::json;

// The message of the ConfigError `fn` throws, or "" if it throws none.
template <typename Fn>
std::string configError(Fn fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(Config, ReadsTypedFieldsAndOptionalFallbacks) {
  const json j = json::parse(R"({"rounds": 5, "rho": 0.5, "name": "fed", "tls": true,
                                 "peers": ["a", "b"], "port": 0})");
  ConfigReader r(j, "c.json");
  EXPECT_EQ(r.required<int>("rounds"), 5);
  EXPECT_DOUBLE_EQ(r.required<double>("rho"), 0.5);
  EXPECT_EQ(r.required<std::string>("name"), "fed");
  EXPECT_TRUE(r.required<bool>("tls"));
  EXPECT_EQ(r.required<std::vector<std::string>>("peers"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.optional<uint16_t>("port", 99), 0);
  EXPECT_EQ(r.optional<int>("absent", 42), 42);
  EXPECT_TRUE(r.has("rounds"));
  EXPECT_FALSE(r.has("absent"));
  EXPECT_NO_THROW(r.finish());
}

TEST(Config, UnknownKeyIsRejectedByItsDottedPath) {
  const json j = json::parse(R"({"rounds": 5, "roundz": 6, "server": {"port": 1, "prot": 2}})");
  ConfigReader top(j, "c.json");
  top.required<int>("rounds");
  ConfigReader server = top.child("server");
  server.required<int>("port");
  std::string err = configError([&] { server.finish(); });
  EXPECT_TRUE(contains(err, "unknown key \"server.prot\"")) << err;
  EXPECT_TRUE(contains(err, "c.json")) << err;
  err = configError([&] { top.finish(); });
  EXPECT_TRUE(contains(err, "unknown key \"roundz\"")) << err;
}

// The message lists every key the section takes, present in the file or
// not, and names the one a misspelling was meant to be.
TEST(Config, UnknownKeyNamesTheKeysTakenAndTheLikelyOne) {
  const json j = json::parse(R"({"max": 5, "max_stalenes": 2, "learning_rate": 0.1})");
  ConfigReader rounds(j, "c.json", "rounds");
  rounds.optional<int>("max", 0);
  rounds.optional<int>("max_staleness", 0);
  rounds.optional<double>("staleness_exponent", 0.5);
  rounds.has("push_grace_s");
  std::string err = configError([&] { rounds.finish(); });
  EXPECT_TRUE(contains(err, "unknown key \"rounds.learning_rate\"; remove it or fix its spelling")) << err;
  EXPECT_TRUE(contains(err, "(keys of this section: max, max_staleness, staleness_exponent, push_grace_s)")) << err;
  const json typo = json::parse(R"({"max": 5, "max_stalenes": 2})");
  ConfigReader again(typo, "c.json", "rounds");
  again.optional<int>("max", 0);
  again.optional<int>("max_staleness", 0);
  err = configError([&] { again.finish(); });
  EXPECT_TRUE(contains(err, "unknown key \"rounds.max_stalenes\"; did you mean \"rounds.max_staleness\"?")) << err;
}

TEST(Config, WrongTypeNamesTheField) {
  const json j = json::parse(R"({"a": "three", "b": 1, "c": 2, "d": -1, "e": 1.5, "f": ["x", 2],
                                 "net": {"port": "eighty"}})");
  ConfigReader r(j, "c.json");
  std::string err = configError([&] { r.required<int>("a"); });
  EXPECT_TRUE(contains(err, "\"a\" must be an integer")) << err;
  err = configError([&] { r.required<bool>("b"); });
  EXPECT_TRUE(contains(err, "\"b\" must be true or false")) << err;
  err = configError([&] { r.required<std::string>("c"); });
  EXPECT_TRUE(contains(err, "\"c\" must be a string")) << err;
  err = configError([&] { r.required<uint32_t>("d"); });
  EXPECT_TRUE(contains(err, "\"d\" must not be negative")) << err;
  err = configError([&] { r.required<int>("e"); });
  EXPECT_TRUE(contains(err, "\"e\" must be an integer")) << err;
  err = configError([&] { r.required<std::vector<std::string>>("f"); });
  EXPECT_TRUE(contains(err, "\"f\" must be an array of strings")) << err;
  err = configError([&] { r.child("net").required<int>("port"); });
  EXPECT_TRUE(contains(err, "\"net.port\" must be an integer")) << err;
  err = configError([&] { r.optional<double>("a", 1.0); });
  EXPECT_TRUE(contains(err, "\"a\" must be a number")) << err;
}

TEST(Config, IntegersOutOfRangeForTheFieldTypeAreRejected) {
  const json j = json::parse(R"({"big": 1099511627776, "port": 70000, "huge": 18446744073709551615,
                                 "neg": -129, "ok": 65535, "min": -9223372036854775808})");
  ConfigReader r(j, "c.json");
  std::string err = configError([&] { r.required<uint32_t>("big"); });
  EXPECT_TRUE(contains(err, "\"big\" must be in [0, 4294967295], got 1099511627776")) << err;
  err = configError([&] { r.required<uint16_t>("port"); });
  EXPECT_TRUE(contains(err, "\"port\" must be in [0, 65535]")) << err;
  err = configError([&] { r.required<int64_t>("huge"); });
  EXPECT_TRUE(contains(err, "\"huge\" must be in")) << err;
  err = configError([&] { r.required<int8_t>("neg"); });
  EXPECT_TRUE(contains(err, "\"neg\" must be in [-128, 127]")) << err;
  EXPECT_EQ(r.required<uint64_t>("huge"), 18446744073709551615ull);
  EXPECT_EQ(r.required<uint16_t>("ok"), 65535);
  EXPECT_EQ(r.required<int64_t>("min"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r.required<int>("neg"), -129);
}

TEST(Config, MissingRequiredFieldIsNamed) {
  const json j = json::parse(R"({"server": {"tls": {}}, "scalar": 3})");
  ConfigReader r(j, "c.json");
  std::string err = configError([&] { r.required<int>("rounds"); });
  EXPECT_TRUE(contains(err, "\"rounds\" is required but missing")) << err;
  err = configError([&] { r.child("server").child("tls").required<std::string>("cert"); });
  EXPECT_TRUE(contains(err, "\"server.tls.cert\" is required but missing")) << err;
  err = configError([&] { r.child("client"); });
  EXPECT_TRUE(contains(err, "\"client\" is required but missing")) << err;
  err = configError([&] { r.child("scalar"); });
  EXPECT_TRUE(contains(err, "\"scalar\" must be a JSON object")) << err;
}

TEST(Config, FailNamesTheFieldAndTopLevelMustBeAnObject) {
  const json j = json::parse(R"({"net": {"port": 0}})");
  ConfigReader r(j, "c.json");
  ConfigReader net = r.child("net");
  EXPECT_EQ(net.fieldName("port"), "net.port");
  std::string err = configError([&] { net.fail("port", "must be > 0"); });
  EXPECT_TRUE(contains(err, "\"net.port\" must be > 0")) << err;
  const json arr = json::parse("[1, 2]");
  EXPECT_THROW(ConfigReader(arr, "c.json"), ConfigError);
}

TEST(Config, PathsResolveRelativeToBaseDir) {
  const json j = json::parse(R"({"data": "data/train", "up": "../keys/ca.pem", "abs": "/var/lib/t",
                                 "empty": "", "n": 5})");
  ConfigReader r(j, "c.json");
  EXPECT_EQ(r.path("data", "/etc/tapestry"), "/etc/tapestry/data/train");
  EXPECT_EQ(r.path("up", "/etc/tapestry"), "/etc/keys/ca.pem");
  EXPECT_EQ(r.path("abs", "/etc/tapestry"), "/var/lib/t");
  EXPECT_EQ(r.optionalPath("missing", "/etc/tapestry", "fallback"), "fallback");
  EXPECT_EQ(r.optionalPath("data", "/base", "fallback"), "/base/data/train");
  std::string err = configError([&] { r.path("empty", "/etc"); });
  EXPECT_TRUE(contains(err, "\"empty\" must not be empty")) << err;
  err = configError([&] { r.path("n", "/etc"); });
  EXPECT_TRUE(contains(err, "\"n\" must be a string")) << err;
  EXPECT_NO_THROW(r.finish());
}

TEST(Config, LoadJsonFileReportsMissingFileAndSyntaxErrors) {
  std::string dir = (std::filesystem::temp_directory_path() / "tapestry_cfg_XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string good = dir + "/good.json", bad = dir + "/bad.json";
  std::ofstream(good) << R"({"rounds": 3})";
  std::ofstream(bad) << "{\"rounds\": 3,\n \"x\": }";
  EXPECT_EQ(loadJsonFile(good).at("rounds"), 3);
  std::string err = configError([&] { loadJsonFile(bad); });
  EXPECT_TRUE(contains(err, bad)) << err;
  EXPECT_TRUE(contains(err, "line 2")) << err;
  err = configError([&] { loadJsonFile(dir + "/absent.json"); });
  EXPECT_TRUE(contains(err, dir + "/absent.json")) << err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tapestry::common
