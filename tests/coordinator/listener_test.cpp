// The coordinator's listening socket: a host name in listen.host is resolved,
// and a failure names the key at fault with advice that fits the error.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <stdexcept>
#include <string>

#include "coordinator/listener_impl.h"

namespace tapestry::coordinator {
namespace {

namespace asio = boost::asio;

std::string failure(asio::io_context& io, const std::string& host, uint16_t port) {
  asio::ip::tcp::acceptor acceptor(io);
  try {
    openListener(acceptor, host, port);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(Listener, AHostNameIsResolvedAndListenedOn) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io);
  openListener(acceptor, "localhost", 0);
  EXPECT_TRUE(acceptor.local_endpoint().address().is_loopback()) << acceptor.local_endpoint().address().to_string();
  EXPECT_NE(acceptor.local_endpoint().port(), 0);
}

TEST(Listener, AnAddressOfAnotherMachineNamesListenHost) {
  asio::io_context io;
  const std::string what = failure(io, "10.9.9.9", 7392);
  EXPECT_NE(what.find("cannot listen on 10.9.9.9:7392"), std::string::npos) << what;
  EXPECT_NE(what.find("listen.host 10.9.9.9 is not an address of this machine"), std::string::npos) << what;
  EXPECT_EQ(what.find("listen.port"), std::string::npos) << "the port is not at fault: " << what;
}

TEST(Listener, APortInUseNamesListenPort) {
  asio::io_context io;
  asio::ip::tcp::acceptor taken(io);
  openListener(taken, "127.0.0.1", 0);
  const uint16_t port = taken.local_endpoint().port();
  const std::string what = failure(io, "127.0.0.1", port);
  EXPECT_NE(what.find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos) << what;
  EXPECT_NE(what.find("pick another listen.port or stop the other process"), std::string::npos) << what;
}

TEST(Listener, APrivilegedPortSaysSo) {
  const std::string what = listenFailureMessage("0.0.0.0", 443, asio::error::access_denied);
  EXPECT_NE(what.find("cannot listen on 0.0.0.0:443"), std::string::npos) << what;
  EXPECT_NE(what.find("ports below 1024 need root or the CAP_NET_BIND_SERVICE capability"), std::string::npos) << what;
}

TEST(Listener, AHostNameThatDoesNotResolveNamesListenHost) {
  asio::io_context io;
  const std::string what = failure(io, "no-such-host.invalid", 7392);
  EXPECT_NE(what.find("listen.host 'no-such-host.invalid' is neither an IP address nor a host name"), std::string::npos)
      << what;
}

}  // namespace
}  // namespace tapestry::coordinator
