#pragma once
// Local-only baselines: each worker's model trained alone on its own shard
// for the same number of steps the federation ran, with the same settings.
#include <string>
#include <vector>

#include "worker/ml/dataset.h"
#include "worker/worker_config.h"

namespace tapestry::tools {

struct BaselineResult {
  std::string name;
  double test_accuracy = 0;
};

// Trains every worker alone (in parallel threads) and evaluates on `test`.
std::vector<BaselineResult> runLocalBaselines(const std::vector<worker::WorkerConfig>& workers, uint64_t init_seed,
                                              int64_t steps, const worker::ImageDataset& test);

}  // namespace tapestry::tools
