// `tapestry demo`: a whole federation on this machine, over real TLS, with
// the configs in configs/ used verbatim, ending with a table of consensus
// test accuracy against every worker trained alone.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/config.h"
#include "tools/baseline.h"
#include "tools/commands.h"
#include "tools/consensus_file.h"
#include "tools/local_federation.h"
#include "worker/ml/partition.h"
#include "worker/ml/trainer.h"

namespace tapestry::tools {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

const char* kUsage =
    "usage: tapestry demo [--configs DIR] [--work DIR]\n"
    "  --configs DIR  directory with demo.json, coordinator.json and worker-<k>.json (default: configs)\n"
    "  --work DIR     where certificates, shards, state and logs go (default: work/demo)\n";

struct DemoPlan {
  std::string data_dir;
  size_t workers = 4;
  std::string scheme = "dirichlet";
  double alpha = 0.5;
  uint64_t seed = 1;
  double val_fraction = 0.1;
  uint64_t limit = 0;
  size_t test_limit = 0;
  std::chrono::seconds timeout{900};
};

DemoPlan readPlan(const std::string& path) {
  auto json = common::loadJsonFile(path);
  common::ConfigReader r(json, path);
  DemoPlan p;
  p.data_dir = r.optional<std::string>("data", "/usr/share/datasets/fashion-mnist");
  p.workers = r.required<size_t>("workers");
  if (p.workers == 0) r.fail("workers", "must be >= 1");
  auto part = r.child("partition");
  p.scheme = part.optional<std::string>("scheme", p.scheme);
  p.alpha = part.optional<double>("alpha", p.alpha);
  p.seed = part.optional<uint64_t>("seed", p.seed);
  p.val_fraction = part.optional<double>("val_fraction", p.val_fraction);
  p.limit = part.optional<uint64_t>("limit", 0);
  part.finish();
  p.test_limit = r.optional<size_t>("test_limit", 0);
  p.timeout = std::chrono::seconds(r.optional<int64_t>("timeout_s", 900));
  r.finish();
  return p;
}

int runDemo(const std::string& configs, const fs::path& work) {
  auto start = Clock::now();
  DemoPlan plan = readPlan(configs + "/demo.json");
  LocalFederationOptions options;
  options.work_dir = work.string();
  options.coordinator_file = configs + "/coordinator.json";
  for (size_t k = 0; k < plan.workers; ++k) options.worker_files.push_back(configs + "/worker-" + std::to_string(k) + ".json");
  LocalFederation federation(std::move(options));
  const auto& coord = federation.coordinatorConfig();
  const auto& workers = federation.workerConfigs();

  std::cout << "== Tapestry demo: " << plan.workers << " workers, " << coordinator::algorithmName(coord.algorithm)
            << ", " << coord.rounds.max_rounds << " rounds x " << coord.local_steps << " local steps, work dir "
            << work.string() << "\n";
  fs::create_directories(work);
  fs::remove_all(work / "state");
  fs::remove_all(work / "logs");
  fs::remove_all(work / "shards");
  fs::create_directories(work / "logs");

  std::cout << "-- certificates (consortium CA, coordinator, workers) in " << (work / "pki").string() << "\n";
  ensureLocalCertificates((work / "pki").string(), plan.workers);

  std::ostringstream alpha;
  alpha << plan.alpha;
  std::cout << "-- partitioning Fashion-MNIST: " << plan.scheme
            << (plan.scheme == "dirichlet" ? " alpha " + alpha.str() : "") << ", seed " << plan.seed << "\n";
  std::vector<std::string> part = {"--data",   plan.data_dir,          "--out",    (work / "shards").string(),
                                   "--scheme", plan.scheme,            "--alpha",  alpha.str(),
                                   "--workers", std::to_string(plan.workers), "--seed", std::to_string(plan.seed),
                                   "--val-fraction", std::to_string(plan.val_fraction)};
  if (plan.limit) part.insert(part.end(), {"--limit", std::to_string(plan.limit)});
  if (int rc = worker::runPartitionCommand(part); rc != 0) return rc;

  std::cout << "-- starting the coordinator and " << plan.workers << " workers (logs in " << federation.logDir()
            << ")\n";
  auto remaining = plan.timeout - std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start);
  if (remaining.count() <= 0) throw std::runtime_error("the federation did not finish within timeout_s");
  federation.setTimeout(remaining);
  RoundProgress progress(coord.rounds.max_rounds);
  LocalFederationResult run = federation.run([&](const RoundLogEntry& r) { progress.update(r); });
  progress.done();
  double federation_seconds = run.seconds;

  std::string checkpoint = run.coordinator_checkpoint;
  ConsensusFile consensus = readConsensusFile(checkpoint);
  worker::ImageDataset test = worker::loadFashionMnist(plan.data_dir, false);
  if (plan.test_limit && plan.test_limit < test.size()) {
    std::vector<size_t> first(plan.test_limit);
    for (size_t i = 0; i < first.size(); ++i) first[i] = i;
    test = worker::subset(test, first);
  }
  double consensus_accuracy = worker::evaluateFlat(consensus.model, consensus.parameters, test);
  int64_t steps = static_cast<int64_t>(coord.rounds.max_rounds) * coord.local_steps;
  std::cout << "-- training each worker alone for the same " << steps << " steps (local-only baselines)\n";
  auto baselines = runLocalBaselines(workers, coord.init_seed, steps, test);

  double mean_local = 0;
  for (const auto& b : baselines) mean_local += b.test_accuracy / static_cast<double>(baselines.size());
  std::printf("\n  %-34s %s\n", "model", "test accuracy");
  std::printf("  %-34s %s\n", std::string(34, '-').c_str(), "-------------");
  std::printf("  %-34s %12.2f%%\n", ("consensus (" + std::to_string(plan.workers) + " workers, federated)").c_str(),
              100 * consensus_accuracy);
  for (const auto& b : baselines)
    std::printf("  %-34s %12.2f%%\n", (b.name + " alone").c_str(), 100 * b.test_accuracy);
  std::printf("  %-34s %12.2f%%\n", "mean of workers alone", 100 * mean_local);
  double total_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("\n  %zu test images; federation %.0f s, demo %.0f s. Consensus checkpoint: %s\n", test.size(),
              federation_seconds, total_seconds, checkpoint.c_str());

  nlohmann::json results = {{"consensus_accuracy", consensus_accuracy},
                            {"mean_local_accuracy", mean_local},
                            {"rounds", consensus.round},
                            {"federation_seconds", federation_seconds},
                            {"test_samples", test.size()}};
  for (const auto& b : baselines) results["local_accuracy"][b.name] = b.test_accuracy;
  std::ofstream(work / "results.json") << results.dump(2) << "\n";
  return 0;
}

}  // namespace

int runDemoCommand(const std::vector<std::string>& args) {
  std::string configs = "configs", work = "work/demo";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (i + 1 < args.size() && args[i] == "--configs") configs = args[++i];
    else if (i + 1 < args.size() && args[i] == "--work") work = args[++i];
    else {
      std::cerr << "unknown or incomplete option " << args[i] << "\n" << kUsage;
      return 2;
    }
  }
  try {
    return runDemo(configs, fs::absolute(work));
  } catch (const std::exception& e) {
    std::cerr << "\ntapestry demo failed: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::tools
