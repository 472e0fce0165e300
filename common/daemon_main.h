#pragma once
// The command line and top-level error handling both daemons share:
// `--config FILE [--workdir DIR]`, usage on mistakes (exit 2), a ConfigError
// logged and exit 2, any other exception logged and exit 1.
#include <functional>
#include <string>

namespace tapestry::common {

using DaemonBody = std::function<int(const std::string& config_path, const std::string& workdir)>;

int runDaemon(int argc, char** argv, const std::string& program, const DaemonBody& body);

}  // namespace tapestry::common
