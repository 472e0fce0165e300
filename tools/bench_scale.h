#pragma once
// `tapestry bench scale`: many lightweight workers, each with its own
// certificate and TLS session, against one real coordinator on loopback;
// per-round times and the coordinator's peak RSS against the O(P) bound
// 3 x P x 4 bytes + a constant measured before any push.
#include <string>
#include <vector>

namespace tapestry::tools {

// Options: --workers K (64), --params P (10M), --rounds R (3), --chunk N,
// --work DIR, --bin-dir DIR. Returns 0, 1 on failure (a round that did not
// complete included), 2 on a usage error.
int runBenchScaleCommand(const std::vector<std::string>& args);

}  // namespace tapestry::tools
