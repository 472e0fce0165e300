#include "tools/bench_convergence_text.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "common/config.h"
#include "tools/bench_convergence_text_plan.h"
#include "tools/bench_convergence_text_report.h"
#include "tools/consensus_file.h"
#include "tools/local_federation.h"
#include "worker/ml/text_corpus.h"

namespace tapestry::tools {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct LanguageData {
  std::vector<worker::Dataset> train, test;  // per language; test = leading held-out bytes
};

LanguageData partitionLanguages(const TextConvergencePlan& plan, const fs::path& shards) {
  worker::TextPartitionOptions options;
  options.fortunes_dir = plan.fortunes_dir;
  options.languages = plan.languages;
  options.val_fraction = plan.val_fraction;
  options.seed = plan.partition_seed;
  options.max_bytes = plan.max_bytes;
  options.out_dir = shards.string();
  fs::remove_all(shards);
  std::ostringstream table;
  worker::partitionText(options, table);
  std::cout << table.str() << std::flush;
  LanguageData data;
  for (const auto& language : plan.languages) {
    worker::Shard shard = worker::loadShard((shards / language).string());
    if (shard.val.size() < 2)
      throw std::runtime_error("language " + language + " holds out " + std::to_string(shard.val.size()) +
                               " bytes; raise --max-bytes so that there is held-out text to evaluate on");
    data.test.push_back(worker::Dataset::fromText(shard.val.text.substr(0, plan.evalBytes())));
    data.train.push_back(std::move(shard.train));
  }
  return data;
}

std::vector<double> evaluateAll(const worker::Trainer& trainer, const std::vector<worker::Dataset>& tests) {
  std::vector<double> out;
  for (const auto& t : tests) out.push_back(trainer.evaluate(t));
  return out;
}

// Trains for rounds x chunk steps, measuring every language before and after each chunk.
TextArm trainTracked(worker::Trainer& trainer, const std::string& name, uint64_t rounds, int64_t chunk,
                     const std::vector<worker::Dataset>& tests) {
  TextArm arm;
  arm.name = name;
  auto start = Clock::now();
  arm.bpb.push_back(evaluateAll(trainer, tests));
  for (uint64_t r = 0; r < rounds; ++r) {
    trainer.train(chunk, nullptr, 0.0);
    arm.bpb.push_back(evaluateAll(trainer, tests));
  }
  arm.seconds = secondsSince(start);
  return arm;
}

// The union of the languages. same_steps: one worker's R x S steps of K x B
// sequences (data-parallel); otherwise K x R x S steps of B.
TextArm runCentralised(const TextConvergencePlan& plan, const LanguageData& data, bool same_steps) {
  std::string text;
  for (const auto& t : data.train) text += (text.empty() ? "" : "%\n") + t.text;
  const auto k = static_cast<int64_t>(plan.workers());
  worker::TrainSettings settings = plan.train;
  settings.threads = plan.central_threads;
  if (same_steps) settings.batch_size *= k;
  worker::Trainer trainer(plan.model, plan.init_seed, worker::Dataset::fromText(std::move(text)), settings);
  return trainTracked(trainer, same_steps ? "data-parallel centralised" : "centralised", plan.rounds,
                      same_steps ? plan.local_steps : plan.local_steps * k, data.test);
}

std::vector<TextArm> runAlone(const TextConvergencePlan& plan, const LanguageData& data) {
  std::vector<TextArm> arms(plan.workers());
  std::vector<std::exception_ptr> errors(plan.workers());
  std::vector<std::thread> threads;
  for (size_t k = 0; k < plan.workers(); ++k)
    threads.emplace_back([&, k] {
      try {
        worker::TrainSettings settings = plan.train;
        settings.data_seed = textDataSeed(plan, k);
        worker::Trainer trainer(plan.model, plan.init_seed, data.train[k], settings);
        arms[k] = trainTracked(trainer, plan.languages[k] + " alone", plan.rounds, plan.local_steps, data.test);
      } catch (...) {
        errors[k] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return arms;
}

// Every consensus z_0 ... z_R on every language, on two threads.
std::vector<std::vector<double>> evaluateConsensus(const std::vector<std::string>& paths, bool last_is_coordinator,
                                                   const worker::ModelSpec& model,
                                                   const std::vector<worker::Dataset>& tests) {
  std::vector<std::vector<double>> out(paths.size());
  std::vector<std::exception_ptr> errors(2);
  std::vector<std::thread> threads;
  for (size_t part = 0; part < 2; ++part)
    threads.emplace_back([&, part] {
      try {
        for (size_t r = part; r < paths.size(); r += 2) {
          bool coordinator = last_is_coordinator && r + 1 == paths.size();
          ConsensusFile z = coordinator ? readConsensusFile(paths[r]) : readReceivedConsensus(paths[r], model);
          for (const auto& t : tests) out[r].push_back(worker::evaluateFlat(z.model, z.parameters, t));
        }
      } catch (...) {
        errors[part] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

std::string directoryName(const std::string& variant) {
  std::string out = variant;
  std::replace(out.begin(), out.end(), '+', '-');
  return out;
}

TextArm runVariant(const TextConvergencePlan& plan, const ConvergenceVariant& v, const fs::path& work,
                   const LanguageData& data, const std::string& label) {
  TextArm arm;
  arm.name = v.name;
  LocalFederationOptions options;
  options.work_dir = (work / directoryName(v.name)).string();
  options.pki_dir = (work / "pki").string();
  options.timeout = plan.timeout;
  options.coordinator = coordinatorConfigFor(coordinatorPlanFor(plan), v, options.pki_dir);
  options.coordinator["federation_id"] = "bench-text-" + v.name;
  for (size_t k = 0; k < plan.workers(); ++k)
    options.workers.push_back(textWorkerConfigFor(plan, k, options.pki_dir, (work / "shards").string()));
  std::optional<LocalFederation> federation;
  try {
    federation.emplace(std::move(options));
  } catch (const common::ConfigError& e) {
    if (plan.variants_explicit) throw;
    arm.skipped = std::string("this build's daemons reject its config (") + e.what() + ")";
    std::printf("  %s skipped: %s\n", label.c_str(), arm.skipped.c_str());
    return arm;
  }
  LocalFederationResult run = federation->run([&](const RoundLogEntry& r) {
    std::printf("  %s round %llu/%llu  %.1f s", label.c_str(), static_cast<unsigned long long>(r.round),
                static_cast<unsigned long long>(plan.rounds), r.seconds);
    if (r.metric >= 0)
      std::printf("  workers' held-out bpb of z_%llu %.3f", static_cast<unsigned long long>(r.round - 1), r.metric);
    std::printf("\n");
    std::fflush(stdout);
  });
  arm.seconds = run.seconds;
  double sent = 0;
  arm.bytes.push_back(0);
  for (const auto& r : run.rounds) {
    if (r.contributors > 0) sent += static_cast<double>(r.bytes_received) / static_cast<double>(r.contributors);
    arm.bytes.push_back(sent);
  }
  const worker::WorkerConfig& auditor = federation->workerConfigs().at(0);
  std::vector<std::string> paths;
  for (uint64_t round = 0; round < run.rounds.size(); ++round)
    paths.push_back(auditor.audit_dir + "/received-round-" + std::to_string(round) + ".ckpt");
  paths.push_back(run.coordinator_checkpoint);
  auto start = Clock::now();
  arm.bpb = evaluateConsensus(paths, true, plan.model, data.test);
  std::printf("  %s done: %zu rounds in %.0f s, final mean bpb %.3f (evaluated in %.0f s)\n", label.c_str(),
              run.rounds.size(), run.seconds, meanOf(arm.last()), secondsSince(start));
  return arm;
}

void printArm(const std::string& what, const TextArm& arm, const std::vector<std::string>& languages) {
  std::printf("   %s:", what.c_str());
  for (size_t l = 0; l < languages.size(); ++l) std::printf(" %s %.3f", languages[l].c_str(), arm.last()[l]);
  std::printf("  (%.0f s)\n", arm.seconds);
}

// The centralised models and each language alone, trained in this process.
void runBaselines(const TextConvergencePlan& plan, const LanguageData& data, int64_t steps,
                  TextConvergenceResults& results) {
  std::printf("-- centralised: %lld steps on the union of %zu languages\n",
              static_cast<long long>(steps * static_cast<int64_t>(plan.workers())), plan.workers());
  std::fflush(stdout);
  results.centralised = runCentralised(plan, data, false);
  printArm("bpb", results.centralised, plan.languages);
  if (plan.workers() > 1) {
    std::printf("-- data-parallel centralised: %lld steps of %lld sequences on the union\n",
                static_cast<long long>(steps), static_cast<long long>(plan.train.batch_size * static_cast<int64_t>(plan.workers())));
    std::fflush(stdout);
    results.centralised_same_steps = runCentralised(plan, data, true);
    printArm("bpb", results.centralised_same_steps, plan.languages);
  }
  std::printf("-- each language alone: %lld steps, %zu models in parallel\n", static_cast<long long>(steps),
              plan.workers());
  std::fflush(stdout);
  results.alone = runAlone(plan, data);
  for (const auto& a : results.alone) printArm(a.name, a, plan.languages);
}

int runTextBench(const TextConvergencePlan& plan) {
  auto start = Clock::now();
  fs::path work = fs::absolute(plan.work_dir);
  fs::create_directories(work);
  std::cout << describeTextPlan(plan) << std::flush;
  LanguageData data = partitionLanguages(plan, work / "shards");
  ensureLocalCertificates((work / "pki").string(), plan.workers());

  TextConvergenceResults results;
  results.languages = plan.languages;
  for (size_t l = 0; l < plan.workers(); ++l) {
    results.train_bytes.push_back(data.train[l].size());
    results.eval_bytes.push_back(data.test[l].size());
  }
  results.rounds = plan.rounds;
  results.local_steps = plan.local_steps;
  results.plan = {{"preset", plan.preset},         {"languages", plan.languages},
                  {"max_bytes", plan.max_bytes},   {"val_fraction", plan.val_fraction},
                  {"rounds", plan.rounds},         {"local_steps", plan.local_steps},
                  {"eval_bytes", plan.evalBytes()}, {"model", plan.model.toJson()},
                  {"optimizer", "adamw"},          {"lr", plan.train.lr},
                  {"weight_decay", plan.train.weight_decay}, {"batch_size", plan.train.batch_size}};

  const int64_t steps = static_cast<int64_t>(plan.rounds) * plan.local_steps;
  if (plan.baselines) runBaselines(plan, data, steps, results);
  for (size_t i = 0; i < plan.variants.size(); ++i) {
    std::string label = "[" + std::to_string(i + 1) + "/" + std::to_string(plan.variants.size()) + "] " +
                        plan.variants[i].name;
    std::printf("-- %s\n", label.c_str());
    std::fflush(stdout);
    results.variants.push_back(runVariant(plan, plan.variants[i], work, data, label));
    results.seconds = secondsSince(start);  // the table so far survives a stopped run
    writeTextConvergenceReport(results, plan.out_dir);
  }
  std::printf("\n%s\nmultilingual fortunes, %zu languages, in %.0f s; results in %s/results.md\n",
              textResultsSummary(results).c_str(), plan.workers(), results.seconds, plan.out_dir.c_str());
  return 0;
}

}  // namespace

int runBenchConvergenceTextCommand(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout << kBenchConvergenceTextUsage;
      return 0;
    }
  TextConvergencePlan plan;
  try {
    plan = parseTextConvergencePlan(args);
  } catch (const UsageError& e) {
    std::cerr << "tapestry bench convergence --task text: " << e.what() << "\n" << kBenchConvergenceTextUsage;
    return 2;
  }
  try {
    return runTextBench(plan);
  } catch (const std::exception& e) {
    std::cerr << "\ntapestry bench convergence --task text failed: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::tools
