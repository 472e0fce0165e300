// tapestry-worker: trains on local data and syncs with the coordinator.
#include <exception>
#include <iostream>
#include <string>

#include "common/config.h"
#include "common/log.h"
#include "worker/worker_daemon.h"

namespace {

int usage() {
  std::cerr << "usage: tapestry-worker --config worker.json [--workdir DIR]\n"
               "  --config   the worker's JSON configuration (see configs/ and docs/)\n"
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
  tapestry::common::setLogComponent("worker");
  try {
    auto config = tapestry::worker::loadWorkerConfig(config_path, workdir);
    tapestry::common::setLogComponent("worker " + config.name);
    tapestry::worker::WorkerDaemon daemon(std::move(config));
    return daemon.run();
  } catch (const tapestry::common::ConfigError& e) {
    LOG_ERROR(e.what());
    return 2;
  } catch (const std::exception& e) {
    LOG_ERROR(e.what());
    return 1;
  }
}
