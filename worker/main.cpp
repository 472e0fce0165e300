// tapestry-worker: trains on local data and syncs with the coordinator.
#include "common/daemon_main.h"
#include "common/stop_signals.h"
#include "common/log.h"
#include "worker/worker_daemon.h"

int main(int argc, char** argv) {
  tapestry::common::setLogComponent("worker");
  return tapestry::common::runDaemon(argc, argv, "tapestry-worker",
                                     [](const std::string& config_path, const std::string& workdir) {
                                       auto config = tapestry::worker::loadWorkerConfig(config_path, workdir);
                                       tapestry::common::setLogComponent("worker " + config.name);
                                       tapestry::worker::WorkerDaemon daemon(std::move(config));
                                       const int rc = daemon.run();
                                       // Only the exit is left: a signal now must not change its code.
                                       tapestry::common::StopSignals::ignoreOnceDone();
                                       return rc;
                                     });
}
