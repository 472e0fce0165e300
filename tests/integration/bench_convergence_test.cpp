// `tapestry bench convergence` at a tiny size: it partitions Fashion-MNIST,
// trains the centralised and local-only baselines, runs two federations over
// loopback TLS and writes the table, the curves and the charts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <nlohmann/json.hpp>

#include "integration/federation_harness.h"

namespace tapestry::it {
namespace {

namespace fs = std::filesystem;

std::string readAll(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void expectBetterThanChance(const nlohmann::json& accuracy, const std::string& what) {
  ASSERT_TRUE(accuracy.is_array()) << what;
  ASSERT_FALSE(accuracy.empty()) << what;
  for (const auto& a : accuracy) {
    EXPECT_GT(a.get<double>(), 0.0) << what;
    EXPECT_LE(a.get<double>(), 1.0) << what;
  }
  EXPECT_GT(accuracy.back().get<double>(), 0.2) << what << " ends no better than chance (0.1)";
}

TEST(BenchConvergence, TinyRunWritesTheTableCurvesAndCharts) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)";
  char tmpl[] = "/tmp/tapestry-bench-conv-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  fs::path dir = tmpl, out = dir / "results";
  auto bench = tools::ChildProcess::spawn(
      {binary("tapestry"), "bench", "convergence", "--workers", "2", "--rounds", "2", "--local-steps", "40",
       "--limit", "3000", "--test-limit", "500", "--variants", "fedavg,fedprox+nesterov", "--out", out.string(),
       "--timeout", "120"},
      (dir / "bench.log").string());
  // While the second variant runs, the first one's row is already on disk:
  // a long run that is stopped keeps what it finished.
  std::optional<std::string> table_during_second;
  std::optional<int> rc;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
       !rc && std::chrono::steady_clock::now() < deadline;) {
    rc = bench.wait(std::chrono::milliseconds(100));
    if (!table_during_second && readAll(dir / "bench.log").find("-- [2/2]") != std::string::npos)
      table_during_second = readAll(out / "results.md");
  }
  std::string log = readAll(dir / "bench.log");
  ASSERT_TRUE(rc.has_value()) << "the benchmark did not finish:\n" << log;
  ASSERT_EQ(*rc, 0) << log;
  ASSERT_TRUE(table_during_second.has_value()) << log;
  EXPECT_NE(table_during_second->find("| fedavg |"), std::string::npos)
      << "the first variant's row was not written before the second began:\n" << *table_during_second;
  EXPECT_EQ(table_during_second->find("| fedprox+nesterov |"), std::string::npos) << *table_during_second;

  for (const char* file : {"results.md", "results.json", "accuracy_vs_round.png", "accuracy_vs_bytes.png"})
    EXPECT_TRUE(fs::exists(out / file) && fs::file_size(out / file) > 0) << file << "\n" << log;
  std::string table = readAll(out / "results.md");
  for (const char* row : {"| fedavg |", "| fedprox+nesterov |", "| centralised", "| local only, mean of 2"})
    EXPECT_NE(table.find(row), std::string::npos) << row << " missing from\n" << table;
  EXPECT_NE(log.find("| fedavg |"), std::string::npos) << "the table is not printed:\n" << log;

  auto results = nlohmann::json::parse(readAll(out / "results.json"));
  ASSERT_EQ(results.at("variants").size(), 2u);
  for (const auto& v : results.at("variants")) {
    std::string name = v.at("name").get<std::string>();
    EXPECT_FALSE(v.contains("skipped")) << name;
    EXPECT_EQ(v.at("accuracy").size(), 3u) << name << ": z_0, z_1, z_2";
    expectBetterThanChance(v.at("accuracy"), name);
    const auto& bytes = v.at("bytes_per_worker");
    ASSERT_EQ(bytes.size(), 3u);
    EXPECT_EQ(bytes[0].get<double>(), 0.0);
    EXPECT_GT(bytes[1].get<double>(), 0.0) << name << ": a worker sends its parameters every round";
    EXPECT_GT(bytes[2].get<double>(), bytes[1].get<double>()) << name;
  }
  expectBetterThanChance(results.at("centralised").at("accuracy"), "centralised");
  ASSERT_EQ(results.at("local").size(), 2u);
  for (const auto& b : results.at("local")) expectBetterThanChance(b.at("accuracy"), b.at("name").get<std::string>());
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace tapestry::it
