#pragma once
// What `tapestry bench convergence` runs: the presets, the table of
// federated variants with their hyper-parameters, and the configs written for
// each run. Pure data and argument parsing; the runner lives in
// bench_convergence.cpp.
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/cli_args.h"
#include "worker/ml/model.h"
#include "worker/ml/trainer.h"

namespace tapestry::tools {

// One federated configuration: the consensus algorithm and the server
// optimizer applied to the pseudo-gradient z_r - mean.
struct ConvergenceVariant {
  std::string name;       // "fedavg+nesterov"
  std::string algorithm;  // fedavg | fedprox | easgd | admm
  double rho;             // proximal weight (0 for fedavg)
  std::string server;     // plain | nesterov | adam
  double server_lr;
  double momentum;        // nesterov
  double beta1, beta2, epsilon;  // adam
  double dual_step = 1.0;         // admm: u <- u + dual_step (w - z)
  double correction_scale = 1.0;  // scaffold: share of the drift correction applied
};

// Every variant the bench knows, in report order.
const std::vector<ConvergenceVariant>& convergenceVariants();

// --server-lr / --server-momentum: every server optimizer but plain takes the
// learning rate, every nesterov one the momentum.
void overrideServer(std::vector<ConvergenceVariant>& variants, std::optional<double> lr,
                    std::optional<double> momentum = std::nullopt);

struct ConvergencePlan {
  std::string preset = "quick";
  std::string data_dir;
  std::string partition = "dirichlet";
  double alpha = 0.5;
  size_t per_worker = 2;     // labels scheme: classes per worker
  uint64_t partition_seed = 2026;
  uint64_t limit = 0;        // use the first N training images (0: all)
  size_t workers = 0;
  uint64_t rounds = 0;
  int64_t local_steps = 0;   // 0: derived from local_epochs after partitioning
  double local_epochs = 0;
  std::vector<ConvergenceVariant> variants;
  bool variants_explicit = false;  // --variants given: a rejected variant is an error, not a skip
  std::string out_dir, work_dir;
  size_t test_limit = 0;     // 0: the whole test set
  std::string encoding = "fp32";  // how workers push: fp32, or a bf16/fp16/int8 delta with error feedback
  bool overlap = false;           // workers' transfer.overlap (easgd and admm train on while waiting)
  bool baselines = true;          // centralised and local-only rows (--no-baselines: variants only)
  std::string aggregation_rule = "mean";  // the coordinator's aggregation.rule: mean, median, trimmed_mean
  // A member slower than the rest: the last worker runs at 1/straggler of its
  // speed (1: none). Rounds close at deadline_s with quorum members (0: all),
  // and pushes up to max_staleness rounds late still count (rounds.*).
  double straggler = 1;
  double deadline_s = 3600;
  size_t quorum = 0;
  uint64_t max_staleness = 0;
  uint64_t init_seed = 1;
  worker::ModelSpec model;
  worker::TrainSettings train;  // per worker; data_seed is offset by the worker index
  int central_threads = 2;
  std::chrono::seconds timeout{600};  // per federation
};

using common::UsageError;

extern const char* const kBenchConvergenceUsage;

// Parses the words after "bench convergence". Throws UsageError with a
// message naming the option and what it accepts.
ConvergencePlan parseConvergencePlan(const std::vector<std::string>& args);

// Local steps for `epochs` passes over a shard of mean size `mean_samples`.
int64_t stepsForEpochs(double epochs, double mean_samples, int64_t batch_size);

// The plan as the human-readable block printed before running.
std::string describePlan(const ConvergencePlan& plan);

// Configs for one variant's federation in work/<variant>/; pki and shards
// are shared across variants. Worker 0 audits every consensus it receives.
nlohmann::json coordinatorConfigFor(const ConvergencePlan& plan, const ConvergenceVariant& v, const std::string& pki);
nlohmann::json workerConfigFor(const ConvergencePlan& plan, size_t k, const std::string& pki,
                               const std::string& shards);

}  // namespace tapestry::tools
