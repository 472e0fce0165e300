// `tapestry bench convergence --task text` at a tiny size: two fortune
// languages, two rounds of a few steps, two federations over loopback TLS;
// checks the files, the table rows, the target lines and that every bits per
// byte value is a real number and the trained ones beat the uniform 8.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "integration/federation_harness.h"

namespace tapestry::it {
namespace {

namespace fs = std::filesystem;

std::string readAll(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// bpb[r][l] for r = 0 (untrained) ... rounds: finite, positive, and below
// 8 bits (a uniform byte) once trained.
void expectLearned(const nlohmann::json& arm, size_t rounds, size_t languages) {
  std::string name = arm.at("name").get<std::string>();
  const auto& bpb = arm.at("bpb");
  ASSERT_EQ(bpb.size(), rounds + 1) << name;
  for (size_t r = 0; r < bpb.size(); ++r) {
    ASSERT_EQ(bpb[r].size(), languages) << name << " round " << r;
    for (const auto& v : bpb[r]) {
      double x = v.get<double>();
      EXPECT_TRUE(std::isfinite(x) && x > 0) << name << " round " << r << ": " << x;
      if (r > 0) {
        EXPECT_LT(x, 8.0) << name << " round " << r;
      }
    }
  }
}

TEST(BenchText, TinyRunReportsBitsPerBytePerLanguage) {
  for (const char* dir : {"/usr/share/games/fortunes/art", "/usr/share/games/fortunes/de"})
    if (!fs::exists(dir)) GTEST_SKIP() << dir << " is missing (apt-get install fortunes fortunes-de)";
  char tmpl[] = "/tmp/tapestry-bench-text-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  fs::path dir = tmpl, out = dir / "results";
  auto bench = tools::ChildProcess::spawn(
      {binary("tapestry"), "bench", "convergence", "--task", "text", "--languages", "en,de", "--rounds", "2",
       "--local-steps", "10", "--max-bytes", "20000", "--test-limit-bytes", "2048", "--variants",
       "fedavg+nesterov,admm", "--out", out.string(), "--timeout", "120"},
      (dir / "bench.log").string());
  auto rc = bench.wait(std::chrono::seconds(240));
  std::string log = readAll(dir / "bench.log");
  ASSERT_TRUE(rc.has_value()) << "the benchmark did not finish:\n" << log;
  ASSERT_EQ(*rc, 0) << log;

  for (const char* file : {"results.md", "results.json", "bpb_vs_round.png"})
    EXPECT_TRUE(fs::exists(out / file) && fs::file_size(out / file) > 0) << file << "\n" << log;
  std::string md = readAll(out / "results.md");
  for (const char* row : {"| model | en | de | mean |", "| fedavg+nesterov (consensus z_2) |",
                          "| admm (consensus z_2) |", "| centralised (union of languages) |",
                          "| each language alone, on itself |", "| trained alone on \\ evaluated on | en | de | mean |",
                          "- (i) fedavg+nesterov: ", "- (i) admm: ", "- (ii) fedavg+nesterov: ", "- (ii) admm: "})
    EXPECT_NE(md.find(row), std::string::npos) << row << " missing from\n" << md;
  EXPECT_NE(log.find("| admm (consensus z_2) |"), std::string::npos) << "the tables are not printed:\n" << log;

  auto results = nlohmann::json::parse(readAll(out / "results.json"));
  EXPECT_EQ(results.at("languages"), nlohmann::json({"en", "de"}));
  ASSERT_EQ(results.at("variants").size(), 2u);
  for (const auto& v : results.at("variants")) {
    EXPECT_FALSE(v.contains("skipped")) << v.at("name");
    expectLearned(v, 2, 2);
    const auto& bytes = v.at("bytes_per_worker");
    ASSERT_EQ(bytes.size(), 3u);
    EXPECT_GT(bytes[2].get<double>(), bytes[1].get<double>()) << "a worker sends its parameters every round";
  }
  expectLearned(results.at("centralised"), 2, 2);
  expectLearned(results.at("centralised_same_steps"), 2, 2);
  ASSERT_EQ(results.at("alone").size(), 2u);
  for (const auto& a : results.at("alone")) expectLearned(a, 2, 2);
  EXPECT_EQ(results.at("checks").size(), 6u) << "(i) against both centralised models and (ii), per variant";
  for (const auto& n : results.at("eval_bytes")) {
    EXPECT_GT(n.get<uint64_t>(), 0u);
    EXPECT_LE(n.get<uint64_t>(), 2048u) << "--test-limit-bytes caps the held-out text evaluated";
  }
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace tapestry::it
