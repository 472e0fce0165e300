#pragma once
// A federation on loopback for integration tests: a temporary directory with
// a consortium CA, certificates, synthetic shards and configs, and helpers to
// start the real tapestry-coordinator and tapestry-worker binaries. Ports are
// always 0 (the coordinator writes the bound one to a file); waits poll files
// with a deadline instead of sleeping.
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "tools/process.h"

namespace tapestry::it {

struct FederationOptions {
  size_t workers = 3;
  uint64_t max_rounds = 2;
  size_t min_workers = 3;
  size_t quorum = 3;
  uint32_t local_steps = 5;
  std::string algorithm = "fedprox";
  double dual_step = 0;  // admm: 0 leaves the coordinator's default
  std::string server_optimizer = "plain";
  size_t samples_per_worker = 96;  // synthetic 28x28 images
  std::string model = R"({"name": "mlp", "hidden": 8})";
  bool overlap = false;  // workers' transfer.overlap
  std::string encoding = "fp32";  // workers' transfer.encoding (compressed ones use error feedback)
  double lr = 0.05;      // workers' train.lr
  std::string aggregation_rule = "mean";  // the coordinator's aggregation.rule
};

class FederationHarness {
 public:
  explicit FederationHarness(FederationOptions options);
  ~FederationHarness();

  const std::string& dir() const { return dir_; }
  std::string path(const std::string& relative) const { return dir_ + "/" + relative; }
  std::string workerName(size_t k) const { return "worker-" + std::to_string(k); }

  tools::ChildProcess startCoordinator();
  tools::ChildProcess startWorker(size_t k);
  // A worker whose certificate comes from a different CA.
  tools::ChildProcess startForeignWorker();

  // Lines of the coordinator's rounds.jsonl, parsed.
  std::vector<nlohmann::json> rounds() const;
  // Polls until rounds() has at least n entries; false on timeout.
  bool waitForRounds(size_t n, std::chrono::seconds timeout) const;
  bool waitForFile(const std::string& path, std::chrono::seconds timeout) const;
  // Polls logs/<name>.log until it contains `text`; false on timeout.
  bool waitForLog(const std::string& name, const std::string& text, std::chrono::seconds timeout) const;
  std::string log(const std::string& name) const;  // contents of logs/<name>.log
  std::string checkpoint() const { return path("state/coordinator/coordinator.ckpt"); }

 private:
  void writeConfigs();
  std::string workerConfig(const std::string& name, const std::string& ca, const std::string& shard) const;

  FederationOptions options_;
  std::string dir_;
};

std::string binary(const std::string& name);

}  // namespace tapestry::it
