// tapestry-coordinator: the consortium's averaging server.
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "common/config.h"
#include "common/log.h"
#include "coordinator/server.h"

namespace {

int usage() {
  std::cerr << "usage: tapestry-coordinator --config coordinator.json [--workdir DIR]\n"
               "  --config   the coordinator's JSON configuration (see configs/ and docs/)\n"
               "  --workdir  directory that relative paths in the config resolve against\n"
               "             (default: the config file's directory)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, workdir;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--config" || arg == "--workdir") && i + 1 < argc) {
      (arg == "--config" ? config_path : workdir) = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    } else {
      std::cerr << "unknown argument '" << arg << "'\n";
      return usage();
    }
  }
  if (config_path.empty()) return usage();
  tapestry::common::setLogComponent("coordinator");
  try {
    auto config = tapestry::coordinator::loadCoordinatorConfig(config_path, workdir);
    tapestry::coordinator::Server server(std::move(config));
    return server.run();
  } catch (const tapestry::common::ConfigError& e) {
    LOG_ERROR(e.what());
    return 2;
  } catch (const std::exception& e) {
    LOG_ERROR(e.what());
    return 1;
  }
}
