#include "tools/bench_convergence.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "common/config.h"
#include "tools/baseline.h"
#include "tools/bench_convergence_plan.h"
#include "tools/bench_convergence_report.h"
#include "tools/bench_convergence_text.h"
#include "tools/consensus_file.h"
#include "tools/local_federation.h"
#include "worker/ml/partition.h"

namespace tapestry::tools {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void partition(const ConvergencePlan& plan, const fs::path& shards) {
  std::ostringstream alpha;
  alpha << plan.alpha;
  std::vector<std::string> args = {"--data",    plan.data_dir,  "--out",     shards.string(),
                                   "--scheme",  plan.partition, "--workers", std::to_string(plan.workers),
                                   "--seed",    std::to_string(plan.partition_seed)};
  if (plan.partition == "dirichlet") args.insert(args.end(), {"--alpha", alpha.str()});
  if (plan.partition == "labels") args.insert(args.end(), {"--per-worker", std::to_string(plan.per_worker)});
  if (plan.limit) args.insert(args.end(), {"--limit", std::to_string(plan.limit)});
  std::ostringstream out, err;
  fs::remove_all(shards);
  if (worker::runPartitionCommand(args, out, err) != 0)
    throw std::runtime_error("partitioning failed: " + err.str());
  std::ofstream(shards / "partition.txt") << out.str();
}

worker::Dataset loadTestSet(const ConvergencePlan& plan) {
  worker::ImageDataset test = worker::loadFashionMnist(plan.data_dir, false);
  if (plan.test_limit && plan.test_limit < test.size()) {
    std::vector<size_t> first(plan.test_limit);
    for (size_t i = 0; i < first.size(); ++i) first[i] = i;
    test = worker::subset(test, first);
  }
  return test;
}

std::string directoryName(const std::string& variant) {
  std::string out = variant;
  for (char& c : out)
    if (c == '+') c = '-';
  return out;
}

// One variant's federation, then the test accuracy of every consensus it made.
VariantResult runVariant(const ConvergencePlan& plan, const ConvergenceVariant& v, const fs::path& work,
                         const worker::Dataset& test, const std::string& label) {
  VariantResult result{v.name, "", {}, {}, 0};
  LocalFederationOptions options;
  options.work_dir = (work / directoryName(v.name)).string();
  options.pki_dir = (work / "pki").string();
  options.timeout = plan.timeout;
  options.last_worker_slowdown = plan.straggler;
  options.coordinator = coordinatorConfigFor(plan, v, options.pki_dir);
  for (size_t k = 0; k < plan.workers; ++k)
    options.workers.push_back(workerConfigFor(plan, k, options.pki_dir, (work / "shards").string()));
  std::optional<LocalFederation> federation;
  try {
    federation.emplace(std::move(options));
  } catch (const common::ConfigError& e) {
    if (plan.variants_explicit) throw;
    result.skipped = std::string("this build's daemons reject its config (") + e.what() + ")";
    std::printf("  %s skipped: %s\n", label.c_str(), result.skipped.c_str());
    return result;
  }
  RoundProgress progress(plan.rounds, label + " ");
  LocalFederationResult run = federation->run([&](const RoundLogEntry& r) { progress.update(r); });
  progress.done();
  result.seconds = run.seconds;

  const worker::WorkerConfig& auditor = federation->workerConfigs().at(0);
  double sent = 0;
  result.bytes.push_back(0);
  for (const auto& r : run.rounds) {
    if (r.contributors > 0) sent += static_cast<double>(r.bytes_received) / static_cast<double>(r.contributors);
    result.bytes.push_back(sent);
    result.contributions += r.contributors;
    result.late += r.late;
  }
  if (result.contributions < plan.workers * run.rounds.size() || result.late > 0)
    std::printf("  %s: %llu of %llu possible pushes counted, %llu of them late\n", label.c_str(),
                static_cast<unsigned long long>(result.contributions),
                static_cast<unsigned long long>(plan.workers * run.rounds.size()),
                static_cast<unsigned long long>(result.late));
  auto start = Clock::now();
  for (uint64_t round = 0; round < run.rounds.size(); ++round) {
    std::string path = auditor.audit_dir + "/received-round-" + std::to_string(round) + ".ckpt";
    ConsensusFile z = readReceivedConsensus(path, auditor.model);
    result.accuracy.push_back(worker::evaluateFlat(z.model, z.parameters, test));
  }
  ConsensusFile last = readConsensusFile(run.coordinator_checkpoint);
  result.accuracy.push_back(worker::evaluateFlat(last.model, last.parameters, test));
  std::printf("  %s done: %zu rounds in %.0f s, final test accuracy %.2f%% (evaluated in %.0f s)\n", label.c_str(),
              run.rounds.size(), run.seconds, 100 * result.accuracy.back(), secondsSince(start));
  return result;
}

std::vector<worker::WorkerConfig> baselineWorkers(const ConvergencePlan& plan, const fs::path& work) {
  fs::path configs = work / "baseline-configs";
  fs::create_directories(configs);
  std::vector<worker::WorkerConfig> out;
  for (size_t k = 0; k < plan.workers; ++k) {
    fs::path path = configs / ("worker-" + std::to_string(k) + ".json");
    std::ofstream(path) << workerConfigFor(plan, k, (work / "pki").string(), (work / "shards").string()).dump(2);
    out.push_back(worker::loadWorkerConfig(path.string(), work.string()));
  }
  return out;
}

int runBench(ConvergencePlan plan) {
  auto start = Clock::now();
  fs::path work = fs::absolute(plan.work_dir);
  fs::create_directories(work);
  std::cout << describePlan(plan) << std::flush;
  partition(plan, work / "shards");
  auto workers = baselineWorkers(plan, work);
  if (plan.local_steps == 0) {
    double samples = 0;
    for (const auto& w : workers) samples += static_cast<double>(worker::loadShard(w.shard_dir).train.size());
    plan.local_steps = stepsForEpochs(plan.local_epochs, samples / static_cast<double>(workers.size()),
                                      plan.train.batch_size);
    std::printf("   %g local epochs of the mean shard = %lld local steps\n", plan.local_epochs,
                static_cast<long long>(plan.local_steps));
  }
  ensureLocalCertificates((work / "pki").string(), plan.workers);
  worker::Dataset test = loadTestSet(plan);

  ConvergenceResults results;
  results.rounds = plan.rounds;
  results.local_steps = plan.local_steps;
  results.test_samples = test.size();
  std::ostringstream title;
  title << "Fashion-MNIST, " << plan.partition;
  if (plan.partition == "dirichlet") title << " alpha " << plan.alpha;
  if (plan.partition == "labels") title << " C=" << plan.per_worker;
  title << ", " << plan.workers << " workers";
  results.title = title.str();
  results.plan = {{"preset", plan.preset},       {"partition", plan.partition},  {"alpha", plan.alpha},
                  {"per_worker", plan.per_worker}, {"workers", plan.workers},      {"rounds", plan.rounds},
                  {"local_steps", plan.local_steps}, {"limit", plan.limit},        {"test_limit", plan.test_limit},
                  {"model", plan.model.toJson()},  {"lr", plan.train.lr},          {"momentum", plan.train.momentum},
                  {"weight_decay", plan.train.weight_decay}, {"aggregation_rule", plan.aggregation_rule}, {"batch_size", plan.train.batch_size}, {"logit_adjustment", plan.train.logit_adjustment},
                  {"distill", plan.train.distill}};

  int64_t steps = static_cast<int64_t>(plan.rounds) * plan.local_steps;
  auto phase = Clock::now();
  results.has_centralised = plan.baselines;
  if (plan.baselines) {
    std::printf("-- centralised: %lld steps on the union of the %zu shards\n",
                static_cast<long long>(steps * static_cast<int64_t>(plan.workers)), plan.workers);
    std::fflush(stdout);
    worker::TrainSettings central = plan.train;
    central.threads = plan.central_threads;
    results.centralised = runCentralisedBaseline(workers, plan.init_seed, steps * static_cast<int64_t>(plan.workers),
                                                 central, test, plan.local_steps * static_cast<int64_t>(plan.workers));
    std::printf("   test accuracy %.2f%% (%.0f s)\n-- each worker alone: %lld steps\n",
                100 * results.centralised.test_accuracy, secondsSince(phase), static_cast<long long>(steps));
    std::fflush(stdout);
    phase = Clock::now();
    results.local = runLocalBaselines(workers, plan.init_seed, steps, test, plan.local_steps);
    for (const auto& b : results.local) std::printf("   %s alone: %.2f%%\n", b.name.c_str(), 100 * b.test_accuracy);
    std::printf("   (%.0f s)\n", secondsSince(phase));
  }

  for (size_t i = 0; i < plan.variants.size(); ++i) {
    std::string label = "[" + std::to_string(i + 1) + "/" + std::to_string(plan.variants.size()) + "] " +
                        plan.variants[i].name;
    std::printf("-- %s\n", label.c_str());
    std::fflush(stdout);
    results.variants.push_back(runVariant(plan, plan.variants[i], work, test, label));
    // Each finished variant is on disk at once: a long run that is stopped
    // or crashes keeps the table of everything it finished.
    results.seconds = secondsSince(start);
    writeConvergenceReport(results, plan.out_dir);
  }
  std::printf("\n%s\n%s in %.0f s; results in %s/results.md\n", resultsTable(results).c_str(),
              results.title.c_str(), results.seconds, plan.out_dir.c_str());
  return 0;
}

}  // namespace

int runBenchConvergenceCommand(const std::vector<std::string>& all_args) {
  std::vector<std::string> args;
  std::string task = "fashion-mnist";
  for (size_t i = 0; i < all_args.size(); ++i) {
    if (all_args[i] != "--task") {
      args.push_back(all_args[i]);
      continue;
    }
    if (i + 1 >= all_args.size()) {
      std::cerr << "tapestry bench convergence: --task takes fashion-mnist or text\n" << kBenchConvergenceUsage;
      return 2;
    }
    task = all_args[++i];
  }
  if (task == "text") return runBenchConvergenceTextCommand(args);
  if (task != "fashion-mnist") {
    std::cerr << "tapestry bench convergence: --task takes fashion-mnist or text, not '" << task << "'\n"
              << kBenchConvergenceUsage;
    return 2;
  }
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout << kBenchConvergenceUsage;
      return 0;
    }
  ConvergencePlan plan;
  try {
    plan = parseConvergencePlan(args);
  } catch (const UsageError& e) {
    std::cerr << "tapestry bench convergence: " << e.what() << "\n" << kBenchConvergenceUsage;
    return 2;
  }
  try {
    return runBench(std::move(plan));
  } catch (const std::exception& e) {
    std::cerr << "\ntapestry bench convergence failed: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::tools
