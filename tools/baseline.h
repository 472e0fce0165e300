#pragma once
// The reference points a federation is measured against, trained in this
// process with the same model, settings and number of steps: each worker's
// model trained alone on its own shard, and one model trained centrally on
// the union of all shards.
#include <cstdint>
#include <string>
#include <vector>

#include "worker/ml/dataset.h"
#include "worker/ml/trainer.h"
#include "worker/worker_config.h"

namespace tapestry::tools {

struct BaselineResult {
  std::string name;
  double test_accuracy = 0;    // the test metric after all steps
  std::vector<double> curve;   // the test metric every eval_every steps (when asked for)
  int restarts = 0;            // pieces undone because the parameters went non-finite
};

// Trains every worker alone (in parallel threads) and evaluates on `test`.
// With eval_every > 0 the curve holds the metric before training and after
// each eval_every steps (1 + steps / eval_every points). Accuracy for image
// models, bits per byte for language models.
std::vector<BaselineResult> runLocalBaselines(const std::vector<worker::WorkerConfig>& workers, uint64_t init_seed,
                                              int64_t steps, const worker::Dataset& test,
                                              int64_t eval_every = 0);

// Trains workers[0].model on the union of every worker's training shard (the
// concatenated text for text shards) for
// `steps` steps of `settings`, curve as above. Throws std::invalid_argument
// for no workers or models that differ. Prints a line per evaluation.
// Both: a stretch of eval_every steps (all steps without a curve) whose
// parameters end non-finite restarts from that stretch's start with a fresh
// optimizer, counted in `restarts`, as a diverging federated member does.
BaselineResult runCentralisedBaseline(const std::vector<worker::WorkerConfig>& workers, uint64_t init_seed,
                                      int64_t steps, const worker::TrainSettings& settings,
                                      const worker::Dataset& test, int64_t eval_every = 0);

}  // namespace tapestry::tools
