// A short federation on real Fashion-MNIST through `tapestry demo`: with
// Dirichlet label skew, the consensus must beat the workers trained alone.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "integration/federation_harness.h"

namespace tapestry::it {
namespace {

namespace fs = std::filesystem;
const char* kFashionMnist = "/usr/share/datasets/fashion-mnist";

void writeJson(const fs::path& file, const nlohmann::json& j) { std::ofstream(file) << j.dump(2); }

TEST(Convergence, ConsensusBeatsLocalOnlyOnDirichletSkewedFashionMnist) {
  if (!fs::exists(std::string(kFashionMnist) + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)";
  char tmpl[] = "/tmp/tapestry-conv-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  fs::path dir = tmpl, configs = dir / "configs", work = dir / "work";
  fs::create_directories(configs);
  constexpr size_t kWorkers = 4;
  writeJson(configs / "demo.json",
            {{"data", kFashionMnist},
             {"workers", kWorkers},
             {"partition", {{"scheme", "dirichlet"}, {"alpha", 0.5}, {"seed", 11}, {"val_fraction", 0.1}, {"limit", 8000}}},
             {"test_limit", 2000},
             {"timeout_s", 600}});
  writeJson(configs / "coordinator.json",
            {{"federation_id", "convergence"},
             {"listen", {{"host", "127.0.0.1"}, {"port", 0}, {"port_file", "state/coordinator.port"}}},
             {"tls", {{"ca", "pki/ca/ca.crt"}, {"cert", "pki/coordinator.crt"}, {"key", "pki/coordinator.key"}}},
             {"state_dir", "state/coordinator"},
             {"algorithm", {{"name", "fedprox"}, {"rho", 0.01}, {"local_steps", 40}}},
             {"rounds", {{"max", 8}, {"min_workers", kWorkers}}},
             {"aggregation", {{"device", "cpu"}}}});
  for (size_t k = 0; k < kWorkers; ++k) {
    std::string name = "worker-" + std::to_string(k);
    writeJson(configs / (name + ".json"),
              {{"name", name},
               {"coordinator", {{"port_file", "state/coordinator.port"}}},
               {"tls", {{"ca", "pki/ca/ca.crt"}, {"cert", "pki/" + name + ".crt"}, {"key", "pki/" + name + ".key"}}},
               {"data", {{"shard", "shards/" + name}}},
               {"state_dir", "state/" + name},
               {"model", {{"name", "mlp"}, {"hidden", 64}}},
               {"train", {{"lr", 0.05}, {"momentum", 0.9}, {"batch_size", 32}, {"data_seed", 20 + k}}}});
  }
  auto demo = tools::ChildProcess::spawn(
      {binary("tapestry"), "demo", "--configs", configs.string(), "--work", work.string()}, (dir / "demo.log").string());
  auto rc = demo.wait(std::chrono::seconds(600));
  std::ifstream log_in(dir / "demo.log");
  std::string log((std::istreambuf_iterator<char>(log_in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(rc.has_value()) << "demo did not finish:\n" << log;
  ASSERT_EQ(*rc, 0) << log;
  auto results = nlohmann::json::parse(std::ifstream(work / "results.json"));
  double consensus = results.at("consensus_accuracy").get<double>();
  double local = results.at("mean_local_accuracy").get<double>();
  EXPECT_GT(consensus, local) << log;
  EXPECT_GT(consensus, 0.6) << log;
  EXPECT_EQ(results.at("rounds").get<uint64_t>(), 8u);
  std::cout << "consensus " << consensus << " vs mean local-only " << local << "\n";

  // `tapestry eval` reads the coordinator's checkpoint on its own and agrees.
  auto eval = tools::ChildProcess::spawn({binary("tapestry"), "eval", "--checkpoint",
                                          (work / "state/coordinator/coordinator.ckpt").string(), "--limit", "2000"},
                                         (dir / "eval.log").string());
  auto eval_rc = eval.wait(std::chrono::seconds(120));
  std::ifstream eval_in(dir / "eval.log");
  std::string eval_log((std::istreambuf_iterator<char>(eval_in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(eval_rc.has_value() && *eval_rc == 0) << eval_log;
  char expected[64];
  std::snprintf(expected, sizeof expected, "test accuracy %.2f%% on 2000", 100 * consensus);
  EXPECT_NE(eval_log.find(expected), std::string::npos) << eval_log;
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace tapestry::it
