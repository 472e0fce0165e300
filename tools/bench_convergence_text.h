#pragma once
// `tapestry bench convergence --task text`: the Tapestry case of one member
// per language. Partitions Debian's fortunes one language per worker, trains
// the centralised and language-alone byte-level models in this process and
// each federated variant through the real coordinator and workers over
// loopback TLS, then reports bits per byte per language (see
// bench_convergence_text_report.h).
#include <string>
#include <vector>

namespace tapestry::tools {

// `args` are the words after "bench convergence" without "--task text".
// Returns 0, 1 (failure, with its message) or 2 (usage); never throws.
int runBenchConvergenceTextCommand(const std::vector<std::string>& args);

}  // namespace tapestry::tools
