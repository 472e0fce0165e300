// listen.port_file: written whole once the coordinator listens; a directory
// that does not exist is named with the key, not as a raw filesystem error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/log.h"
#include "coordinator/server.h"
#include "net/net_test_support.h"

namespace tapestry::coordinator {
namespace {

CoordinatorConfig configIn(const common::net::testing::TestPki& pki, const std::string& port_file) {
  CoordinatorConfig c;
  c.federation_id = "port-file";
  c.listen_port = 0;
  c.port_file = port_file;
  c.tls = pki.serverSettings();
  c.state_dir = pki.root() + "/state";
  c.device = AggregatorDevice::kCpu;
  c.cpu_threads = 1;
  return c;
}

TEST(PortFile, HoldsTheBoundPortOrItsDirectoryIsNamed) {
  common::setLogLevel(common::LogLevel::kError);
  common::net::testing::TestPki pki;
  {
    const std::string file = pki.root() + "/coordinator.port";
    Server server(configIn(pki, file));
    std::ifstream in(file);
    uint16_t port = 0;
    ASSERT_TRUE(in >> port);
    EXPECT_EQ(port, server.port());
    EXPECT_FALSE(std::filesystem::exists(file + ".tmp"));
  }
  try {
    Server server(configIn(pki, pki.root() + "/no/such/dir/coordinator.port"));
    ADD_FAILURE() << "a port file in a missing directory was accepted";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot write listen.port_file '" + pki.root() + "/no/such/dir/coordinator.port'"),
              std::string::npos)
        << what;
    EXPECT_EQ(what.find("filesystem error"), std::string::npos) << what;
  }
  common::setLogLevel(common::LogLevel::kInfo);
}

}  // namespace
}  // namespace tapestry::coordinator
