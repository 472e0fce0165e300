#include "tools/bench_overhead_federated.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "tools/bench_support.h"
#include "tools/local_federation.h"
#include "worker/ml/dataset.h"
#include "worker/ml/partition.h"

namespace tapestry::tools {

namespace fs = std::filesystem;

FederatedStepTime federatedStepTime(const FederatedOverheadPlan& plan, bool overlap) {
  BenchCoordinatorOptions options;
  options.binary_dir = plan.bin_dir;
  options.rounds = plan.rounds;
  options.algorithm = "easgd";
  options.rho = plan.rho;
  options.local_steps = static_cast<uint32_t>(plan.steps);
  BenchCoordinator coordinator(options);
  const std::string dir = coordinator.workDir();

  // One member holding the training images the plain loop uses, no
  // validation split (evaluation is not part of the machinery timed here).
  worker::ImageDataset images = worker::loadFashionMnist(plan.data_dir, true);
  std::vector<size_t> all(plan.limit && plan.limit < images.size() ? plan.limit : images.size());
  std::iota(all.begin(), all.end(), size_t{0});
  worker::writeShard(worker::splitTrainVal(images, all, 0.0, plan.seed), dir + "/shard");

  const auto tls = coordinator.clientOptions(0).tls;
  nlohmann::json config = {
      {"name", "worker-0"},
      {"coordinator", {{"host", "127.0.0.1"}, {"port_file", coordinator.statePath("coordinator.port")}, {"server_name", "localhost"}}},
      {"tls", {{"ca", tls.ca_file}, {"cert", tls.cert_file}, {"key", tls.key_file}}},
      {"data", {{"shard", dir + "/shard"}}},
      {"state_dir", dir + "/state/worker-0"},
      {"model", plan.spec.toJson()},
      {"train",
       {{"lr", plan.lr}, {"momentum", plan.momentum}, {"batch_size", plan.batch}, {"data_seed", plan.seed},
        {"threads", plan.threads}}},
      {"transfer", {{"overlap", overlap}}},
      {"reconnect", {{"initial_s", 0.1}, {"max_s", 1}, {"give_up_s", 60}}}};
  std::ofstream(dir + "/worker-0.json") << config.dump(2) << "\n";

  coordinator.start();
  const std::string bin = plan.bin_dir.empty() ? executableDir() : plan.bin_dir;
  ChildProcess member = ChildProcess::spawn({bin + "/tapestry-worker", "--config", dir + "/worker-0.json"},
                                            dir + "/worker-0.log");
  const auto code = member.wait(std::chrono::minutes(30));
  coordinator.stop();
  if (code != 0)
    throw std::runtime_error("tapestry-worker " + (code ? "exited with " + std::to_string(*code) : "timed out") +
                             "; its log ends with:\n" + logTail(dir + "/worker-0.log", 15));

  std::vector<double> per_step, idle;
  std::ifstream in(dir + "/state/worker-0/rounds.jsonl");
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    const auto r = nlohmann::json::parse(line);
    if (++line_no <= 2 || r.at("since_last_push_s").is_null()) continue;  // warm-up rounds
    const double interval = r.at("since_last_push_s").get<double>();
    per_step.push_back(1000.0 * interval / static_cast<double>(r.at("local_steps").get<int64_t>()));
    idle.push_back(r.at("idle_s").get<double>() / interval);
  }
  if (per_step.empty())
    throw std::runtime_error("the worker's round log " + dir + "/state/worker-0/rounds.jsonl has no timed round; use "
                             "more --fed-rounds (at least 3)");
  return {median(per_step), median(idle), per_step.size()};
}

}  // namespace tapestry::tools
