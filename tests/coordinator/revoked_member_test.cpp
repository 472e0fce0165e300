// A member whose certificate is revoked while it is connected, against the
// real coordinator Server over loopback mutual TLS: once the coordinator
// reads the new CRL it closes that member's session, its push in progress
// dropped as if it had left, refuses it at the handshake when it comes back,
// and the rounds after close without it.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "coordinator/raw_worker.h"
#include "coordinator/server.h"
#include "net/net_test_support.h"

namespace tapestry::coordinator {
namespace {

namespace asio = boost::asio;
namespace net = common::net;
using namespace std::chrono_literals;
using testing::encode;
using testing::kChunk;
using testing::kParams;
using testing::RawWorker;
using testing::values;

class RevokedMemberTest : public ::testing::Test {
 protected:
  RevokedMemberTest()
      : alice_(pki_.issue("ca", "alice", tools::CertKind::kWorker)),
        bob_(pki_.issue("ca", "bob", tools::CertKind::kWorker)),
        alice_tls_(net::makeClientContext(pki_.clientSettings(alice_))),
        bob_tls_(net::makeClientContext(pki_.clientSettings(bob_))) {}

  void SetUp() override { common::setLogLevel(common::LogLevel::kWarn); }
  void TearDown() override {
    if (server_) {
      server_->stop();
      thread_.join();
    }
    common::setLogLevel(common::LogLevel::kInfo);
  }

  void startServer() {
    CoordinatorConfig c;
    c.federation_id = "revocation";
    c.listen_port = 0;
    c.tls = pki_.serverSettings();
    // Signed an hour ago, so that the CRL revoking bob supersedes it even
    // within the same second.
    c.tls.crl_file = pki_.crlSignedEarlier();
    c.state_dir = pki_.root() + "/state";
    c.algorithm = Algorithm::kFedAvg;
    c.device = AggregatorDevice::kCpu;
    c.cpu_threads = 1;
    c.chunk_elements = kChunk;
    c.rounds.min_workers = 1;
    c.rounds.quorum = 1;
    c.rounds.deadline = 60s;
    c.rounds.push_grace = 60s;
    c.handshake_timeout = 60s;  // longer than any wait below: no session closes for want of a Hello
    c.idle_timeout = 30s;
    c.heartbeat_interval = 100ms;
    crl_file_ = c.tls.crl_file;
    server_ = std::make_unique<Server>(c);
    thread_ = std::thread([this] { server_->run(); });
  }

  // What an operator does: `tapestry ca revoke`, then ship crl.pem to the
  // coordinator's tls.crl (replaced whole, as a copy and a rename do).
  void revoke(const tools::IssuedFiles& member) {
    tools::revokeCertificate(pki_.caDir(), member.cert_path);
    const std::string shipped = crl_file_ + ".new";
    std::filesystem::copy_file(pki_.crl(), shipped, std::filesystem::copy_options::overwrite_existing);
    const auto before = std::filesystem::last_write_time(crl_file_);
    std::filesystem::rename(shipped, crl_file_);
    if (std::filesystem::last_write_time(crl_file_) <= before)  // a file system with coarse times
      std::filesystem::last_write_time(crl_file_, before + 1s);
  }

  std::unique_ptr<RawWorker> connect(asio::ssl::context& tls) {
    return std::make_unique<RawWorker>(io_, tls, server_->port(), true);
  }

  std::unique_ptr<RawWorker> join(asio::ssl::context& tls) {
    auto member = connect(tls);
    member->hello();
    EXPECT_TRUE(member->waitFor([&] { return member->count(proto::CoordinatorMessage::kWelcome) == 1; }));
    return member;
  }

  net::testing::TestPki pki_;
  tools::IssuedFiles alice_, bob_;
  asio::ssl::context alice_tls_, bob_tls_;
  asio::io_context io_;
  std::string crl_file_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(RevokedMemberTest, ARevokedMemberIsClosedMidPushRefusedOnReturnAndNotCountedAfterwards) {
  startServer();
  const std::vector<float> z0 = values(1.0f);
  auto alice = join(alice_tls_);
  const auto initial = encode(z0);
  alice->push(0, initial, /*initial=*/true);
  for (size_t c = 0; c < initial->chunks(); ++c) alice->chunk(initial, c);
  ASSERT_TRUE(alice->waitFor([&] { return alice->consensus(0).has_value(); }));
  auto bob = join(bob_tls_);
  ASSERT_TRUE(bob->waitFor([&] { return bob->consensus(0).has_value(); }));

  // bob is one chunk into his push of round 0, alice has pushed all of hers:
  // the round waits for bob.
  const std::vector<float> xa = values(3.0f), xb = values(5.0f);
  const auto pb = encode(xb), pa = encode(xa);
  bob->push(0, pb, false);
  bob->chunk(pb, 0);
  alice->push(0, pa, false);
  for (size_t c = 0; c < pa->chunks(); ++c) alice->chunk(pa, c);

  ::testing::internal::CaptureStderr();
  revoke(bob_);
  server_->checkCrl();
  const bool closed = bob->waitFor([&] { return bob->closed(); });
  const bool next_round = alice->waitFor([&] { return alice->consensus(1).has_value(); });
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(closed) << "bob's session outlived the revocation of his certificate";
  EXPECT_NE(log.find("bob (127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("certificate serial " + tools::certificateSerialHex(bob_.cert_path) + " was revoked by the CRL in " +
                     crl_file_),
            std::string::npos)
      << log;
  ASSERT_TRUE(next_round) << "round 0 still waits for the revoked member";
  EXPECT_FALSE(alice->closed()) << "the new CRL does not revoke alice";

  // bob's push ended where it stood, as if he had left: whatever of it the
  // coordinator had read counts, the rest is z_0's. The server reads his
  // frames on its own thread, so it may have read the push's header and
  // first chunk, only the header, or (bob then not a contributor) neither.
  const std::vector<float> z1 = *alice->consensus(1);
  const bool bob_first_chunk = std::abs(z1[0] - 0.5f * (xa[0] + xb[0])) < 1e-5f;
  const bool bob_contributed = bob_first_chunk || std::abs(z1[kParams - 1] - 0.5f * (xa[kParams - 1] + z0[kParams - 1])) < 1e-5f;
  for (size_t i = 0; i < kParams; ++i) {
    const float bob_value = i < kChunk && bob_first_chunk ? xb[i] : z0[i];
    const float expected = bob_contributed ? 0.5f * (xa[i] + bob_value) : xa[i];
    ASSERT_NEAR(z1[i], expected, 1e-5f) << "element " << i;
  }

  // Back with the revoked certificate: refused at the handshake, never admitted.
  auto again = connect(bob_tls_);
  again->hello();
  ASSERT_TRUE(again->waitFor([&] { return again->closed(); }));
  EXPECT_EQ(again->count(proto::CoordinatorMessage::kWelcome), 0u);

  // Round 1 closes on alice's push alone: bob is not waited for nor counted.
  const std::vector<float> xa2 = values(7.0f);
  const auto pa2 = encode(xa2);
  alice->push(1, pa2, false);
  for (size_t c = 0; c < pa2->chunks(); ++c) alice->chunk(pa2, c);
  ASSERT_TRUE(alice->waitFor([&] { return alice->consensus(2).has_value() || alice->closed(); }));
  ASSERT_FALSE(alice->closed());
  const std::vector<float> z2 = *alice->consensus(2);
  for (size_t i = 0; i < kParams; ++i) ASSERT_NEAR(z2[i], xa2[i], 1e-5f) << "element " << i;
}

TEST_F(RevokedMemberTest, ASessionRevokedBeforeItsHelloIsClosedToo) {
  startServer();
  auto bob = connect(bob_tls_);  // handshaken, no Hello yet
  auto alice = join(alice_tls_);
  revoke(bob_);
  server_->checkCrl();
  ASSERT_TRUE(bob->waitFor([&] { return bob->closed(); })) << "an unadmitted session outlived the revocation";
  EXPECT_FALSE(alice->closed());
}

}  // namespace
}  // namespace tapestry::coordinator
