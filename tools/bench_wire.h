#pragma once
// `tapestry bench wire`: one lightweight worker pushes a large fp32 vector to
// the real coordinator over loopback mutual TLS 1.3 and reads the consensus
// back; upload and round-trip throughput are set against `openssl speed -evp
// aes-256-gcm` (one core) measured in the same run.
#include <string>
#include <vector>

namespace tapestry::tools {

// Options: --bytes SIZE (default 1G), --seconds S (default 20), --chunk N,
// --work DIR, --bin-dir DIR. Returns 0, 1 on failure, 2 on a usage error.
int runBenchWireCommand(const std::vector<std::string>& args);

}  // namespace tapestry::tools
