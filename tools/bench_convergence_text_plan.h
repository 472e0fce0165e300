#pragma once
// What `tapestry bench convergence --task text` runs: one worker per fortune
// language training a byte-level transformer with AdamW, the presets, and
// the worker configs. Pure data and argument parsing; the runner lives in
// bench_convergence_text.cpp. The federated variants and the coordinator
// config are the image task's (bench_convergence_plan.h).
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/bench_convergence_plan.h"
#include "worker/ml/model.h"
#include "worker/ml/trainer.h"

namespace tapestry::tools {

struct TextConvergencePlan {
  std::string preset = "quick";
  std::string fortunes_dir;
  std::vector<std::string> languages;  // one worker each, in this order
  uint64_t max_bytes = 0;              // per language, train + held-out; 0: all
  double val_fraction = 0.1;           // held out per language
  uint64_t partition_seed = 2026;
  uint64_t rounds = 0;
  int64_t local_steps = 0;
  std::vector<ConvergenceVariant> variants;
  bool variants_explicit = false;
  bool baselines = true;  // centralised and language-alone models (--no-baselines: variants only)
  std::string out_dir, work_dir;
  uint64_t test_limit_bytes = 0;  // leading held-out bytes evaluated; 0: kEvalTextBytes
  uint64_t init_seed = 1;
  worker::ModelSpec model;        // "transformer", default size
  worker::TrainSettings train;    // AdamW; data_seed is offset by the worker index
  int central_threads = 2;
  std::chrono::seconds timeout{600};  // per federation

  size_t workers() const { return languages.size(); }
  // Held-out bytes actually evaluated per language.
  uint64_t evalBytes() const;
};

extern const char* const kBenchConvergenceTextUsage;

// Parses the words after "bench convergence", "--task text" removed. Throws
// UsageError naming the option and what it accepts.
TextConvergencePlan parseTextConvergencePlan(const std::vector<std::string>& args);

// The plan as the block printed before running, with the step counts of
// every arm and the reason for the learning rate.
std::string describeTextPlan(const TextConvergencePlan& plan);

// The fields coordinatorConfigFor() reads, so both tasks share one
// coordinator config.
ConvergencePlan coordinatorPlanFor(const TextConvergencePlan& plan);

// Worker k trains on shards/<languages[k]> with AdamW; worker 0 audits every
// consensus it receives. Certificates are worker-<k>.
nlohmann::json textWorkerConfigFor(const TextConvergencePlan& plan, size_t k, const std::string& pki,
                                   const std::string& shards);

// The data seed of worker k, used by its language-alone baseline too.
uint64_t textDataSeed(const TextConvergencePlan& plan, size_t k);

}  // namespace tapestry::tools
