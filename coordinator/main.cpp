// tapestry-coordinator: the consortium's averaging server.
#include "common/daemon_main.h"
#include "common/log.h"
#include "coordinator/server.h"

int main(int argc, char** argv) {
  tapestry::common::setLogComponent("coordinator");
  return tapestry::common::runDaemon(argc, argv, "tapestry-coordinator",
                                     [](const std::string& config_path, const std::string& workdir) {
                                       tapestry::coordinator::Server server(
                                           tapestry::coordinator::loadCoordinatorConfig(config_path, workdir));
                                       return server.run();
                                     });
}
