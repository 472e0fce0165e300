#pragma once
// `tapestry bench convergence`: consensus quality of the federated variants
// against centralised training on the union of the data and against each
// worker alone, at the same number of sample passes, with communication
// measured from the coordinator's round log. See bench_convergence_plan.h for
// the presets and the variants' hyper-parameters.
#include <string>
#include <vector>

namespace tapestry::tools {

// `args` are the words after "bench convergence". Returns 0, 1 (failure,
// with its message) or 2 (usage, with the usage text); never throws.
int runBenchConvergenceCommand(const std::vector<std::string>& args);

}  // namespace tapestry::tools
