// A worker pointed at a port where something other than the coordinator
// listens (an SSH server writing its banner): the sync client says the peer
// does not speak TLS and which keys to check, and reports a connection
// failure to retry, not a refusal by the coordinator.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/net_test_support.h"
#include "worker/sync_client.h"

namespace tapestry::worker {
namespace {

namespace asio = boost::asio;

// Accepts every connection, writes `banner` and keeps it open, as sshd does.
class BannerServer {
 public:
  explicit BannerServer(std::string banner)
      : banner_(std::move(banner)), acceptor_(io_, {asio::ip::address_v4::loopback(), 0}) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~BannerServer() {
    io_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      auto kept = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
      asio::async_write(*kept, asio::buffer(banner_), [kept](const boost::system::error_code&, size_t) {});
      sockets_.push_back(kept);
      accept();
    });
  }

  std::string banner_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<asio::ip::tcp::socket>> sockets_;
  std::thread thread_;
};

TEST(NotTlsPeer, AnSshServerOnTheCoordinatorPortIsAConnectionFailureToRetry) {
  common::net::testing::TestPki pki;
  auto worker = pki.issue("ca", "worker-1", tools::CertKind::kWorker);
  BannerServer ssh("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
  ClientOptions options;
  options.host = "127.0.0.1";
  options.port = ssh.port();
  options.tls = pki.clientSettings(worker);
  options.connect_timeout = std::chrono::seconds(10);
  SyncClient client(options);

  proto::HelloFromWorker hello;
  hello.set_parameter_count(10);
  proto::WelcomeToWorker welcome;
  std::string message;
  bool permanent = true;
  const std::error_code ec = client.connect(hello, &welcome, &message, &permanent);
  ASSERT_TRUE(ec) << "connected to an SSH server";
  EXPECT_FALSE(permanent) << "taken for a refusal by the coordinator: " << message;
  EXPECT_NE(message.find("the peer at 127.0.0.1:" + std::to_string(ssh.port()) + " does not speak TLS"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("check coordinator.host and coordinator.port"), std::string::npos) << message;
  EXPECT_EQ(message.find("tls.ca"), std::string::npos) << "the certificates are not at fault: " << message;
}

}  // namespace
}  // namespace tapestry::worker
