#pragma once
// `tapestry bench overhead`: the worker's step time with the consensus
// machinery (Trainer::train with rho > 0 over flat-buffer parameters) against
// a plain LibTorch loop (torch::optim::SGD with momentum) on the same network,
// data, batches and thread count, alternating the two and taking medians.
#include <string>
#include <vector>

namespace tapestry::tools {

// Options: --model NAME (cnn) or --model-json JSON, --steps N (300),
// --batch B (64), --repeats R (5), --limit N (training images), --data DIR,
// --threads T (1). Returns 0, 1 on failure, 2 on a usage error.
int runBenchOverheadCommand(const std::vector<std::string>& args);

}  // namespace tapestry::tools
