// The real coordinator Server (in-process, loopback mutual TLS) against
// members that hold valid certificates but break the protocol on purpose: a
// session that never says Hello, a second session slipping chunks into the
// first one's push, a push that stalls while heartbeats keep flowing, a push
// that trickles in just fast enough to stay alive, a member asked for z_0 that
// never sends it or sends it a chunk at a time, and stale pushes sent over and over. Each must cost the federation nothing.
// Also, over the same wire, a late push that rounds.max_staleness admits.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "common/net/connection_impl.h"
#include "common/payload.h"
#include "coordinator/raw_worker.h"
#include "coordinator/server.h"
#include "net/net_test_support.h"
#include "proto/tapestry.pb.h"

namespace tapestry::coordinator {
namespace {

namespace asio = boost::asio;
namespace net = common::net;
using net::testing::runUntil;
using namespace std::chrono_literals;

using testing::encode;
using testing::Encoded;
using testing::EncodedPtr;
using testing::kChunk;
using testing::kParams;
using testing::RawWorker;
using testing::values;

class HostilePeerTest : public ::testing::Test {
 protected:
  HostilePeerTest()
      : alice_(pki_.issue("ca", "alice", tools::CertKind::kWorker)),
        bob_(pki_.issue("ca", "bob", tools::CertKind::kWorker)),
        alice_tls_(net::makeClientContext(pki_.clientSettings(alice_))),
        bob_tls_(net::makeClientContext(pki_.clientSettings(bob_))) {}

  void SetUp() override { common::setLogLevel(common::LogLevel::kError); }

  // Starts the coordinator; `idle` is its idle timeout, the time a stalled
  // push is given. Generous where a test does not wait on it, so that a
  // loaded machine cannot time out an honest session.
  void startServer(std::chrono::milliseconds idle = 10s, std::chrono::milliseconds deadline = 60s,
                   std::chrono::milliseconds push_grace = 60s, uint64_t max_staleness = 0) {
    CoordinatorConfig c;
    c.federation_id = "hostile";
    c.listen_port = 0;
    c.tls = pki_.serverSettings();
    c.state_dir = pki_.root() + "/state";
    c.algorithm = Algorithm::kFedAvg;
    c.device = AggregatorDevice::kCpu;
    c.cpu_threads = 1;
    c.chunk_elements = kChunk;
    c.rounds.min_workers = 1;
    c.rounds.quorum = 1;
    c.rounds.deadline = deadline;
    c.rounds.push_grace = push_grace;
    c.rounds.max_staleness = max_staleness;
    c.rounds.max_rounds = max_rounds_;
    c.handshake_timeout = handshake_timeout_;
    c.max_sessions = max_sessions_;
    c.max_handshakes_per_address = max_handshakes_per_address_;
    c.idle_timeout = idle;
    c.heartbeat_interval = 100ms;
    server_ = std::make_unique<Server>(c);
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    if (server_) {
      server_->stop();
      thread_.join();
      server_.reset();
    }
    common::setLogLevel(common::LogLevel::kInfo);
  }

  uint64_t max_rounds_ = 0;  // these four: set before startServer
  std::chrono::milliseconds handshake_timeout_ = 2s;
  size_t max_sessions_ = 1024;
  size_t max_handshakes_per_address_ = 8;

  std::unique_ptr<RawWorker> connect(asio::ssl::context& tls, bool heartbeats = true) {
    return std::make_unique<RawWorker>(io_, tls, server_->port(), heartbeats);
  }

  // alice says Hello, is asked for z_0 and uploads `z0`; round 0 opens.
  std::unique_ptr<RawWorker> bootstrap(const EncodedPtr& z0) {
    auto alice = connect(alice_tls_);
    alice->hello();
    EXPECT_TRUE(alice->waitFor([&] { return alice->count(proto::CoordinatorMessage::kWelcome) == 1; }));
    alice->push(0, z0, /*initial=*/true);
    for (size_t c = 0; c < z0->chunks(); ++c) alice->chunk(z0, c);
    EXPECT_TRUE(alice->waitFor([&] { return alice->consensus(0).has_value(); }));
    return alice;
  }

  net::testing::TestPki pki_;
  tools::IssuedFiles alice_, bob_;
  asio::ssl::context alice_tls_, bob_tls_;
  asio::io_context io_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(HostilePeerTest, HeartbeatsWithoutHelloDoNotHoldASeat) {
  startServer();
  auto silent = connect(alice_tls_);
  ASSERT_TRUE(silent->waitFor([&] { return silent->closed(); }, 10s)) << "still open after the handshake timeout";
  EXPECT_TRUE(silent->toldError("no Hello within 2000 ms"));
}

TEST_F(HostilePeerTest, AHostThatOpensHandshakesAndNeverFinishesThemCannotTakeEverySeat) {
  handshake_timeout_ = 20s;  // the idle connections outlive the test
  max_sessions_ = 6;
  max_handshakes_per_address_ = 3;
  startServer();
  // Ten TCP connections from 127.0.0.2 that never begin TLS: three may wait
  // for their handshake, the coordinator closes the other seven at once.
  constexpr int kIdle = 10;
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> idle;
  int closed_by_server = 0;
  std::array<uint8_t, 1> byte{};
  for (int i = 0; i < kIdle; ++i) {
    auto s = std::make_unique<asio::ip::tcp::socket>(io_);
    s->open(asio::ip::tcp::v4());
    s->bind({asio::ip::make_address_v4("127.0.0.2"), 0});
    boost::system::error_code ec;
    s->connect({asio::ip::address_v4::loopback(), server_->port()}, ec);
    ASSERT_FALSE(ec) << ec.message();
    s->async_read_some(asio::buffer(byte), [&](const boost::system::error_code& e, size_t) {
      if (e) ++closed_by_server;
    });
    idle.push_back(std::move(s));
  }
  ASSERT_TRUE(runUntil(io_, [&] { return closed_by_server >= kIdle - 3; }, 10s))
      << closed_by_server << " of the idle connections were closed";
  // A member from another address still gets a seat, though 3 + 1 < 6 only
  // because the host's other seven were refused.
  auto alice = connect(alice_tls_);
  alice->hello();
  ASSERT_TRUE(alice->waitFor([&] { return alice->count(proto::CoordinatorMessage::kWelcome) == 1; }))
      << "the idle connections took every seat";
  EXPECT_EQ(closed_by_server, kIdle - 3) << "the three in their handshake stay until its timeout";
}

TEST_F(HostilePeerTest, ASecondSessionCannotSlipChunksIntoTheFirstOnesPush) {
  startServer();
  const std::vector<float> z0 = values(1.0f);
  const auto payload = encode(z0);
  auto alice = connect(alice_tls_);
  alice->hello();
  ASSERT_TRUE(alice->waitFor([&] { return alice->count(proto::CoordinatorMessage::kWelcome) == 1; }));
  alice->push(0, payload, /*initial=*/true);
  alice->chunk(payload, 0);
  // A second session with alice's certificate, never admitted, sends the
  // chunk alice's push expects next, but with other values.
  const auto forged = encode(values(-7.0f));
  auto intruder = connect(alice_tls_);
  intruder->chunk(forged, 1);
  ASSERT_TRUE(intruder->waitFor([&] { return intruder->closed(); }, 5s));
  alice->chunk(payload, 1);
  alice->chunk(payload, 2);
  ASSERT_TRUE(alice->waitFor([&] { return alice->consensus(0).has_value() || alice->closed(); }));
  ASSERT_FALSE(alice->closed());
  EXPECT_EQ(*alice->consensus(0), z0);
}

TEST_F(HostilePeerTest, APushThatStallsWhileHeartbeatsFlowIsCutOffAndTheRoundCloses) {
  startServer(1500ms);
  const std::vector<float> z0 = values(1.0f);
  auto alice = bootstrap(encode(z0));
  auto bob = connect(bob_tls_);
  bob->hello();
  ASSERT_TRUE(bob->waitFor([&] { return bob->consensus(0).has_value(); }));
  // bob starts its push, sends one chunk, then only heartbeats.
  const auto stalled = encode(values(5.0f));
  bob->push(0, stalled, false);
  bob->chunk(stalled, 0);
  const std::vector<float> xa = values(3.0f);
  const auto pa = encode(xa);
  alice->push(0, pa, false);
  for (size_t c = 0; c < pa->chunks(); ++c) alice->chunk(pa, c);
  ASSERT_TRUE(alice->waitFor([&] { return alice->consensus(1).has_value(); }, 20s))
      << "round 0 never closed: bob's stalled push held it open";
  EXPECT_TRUE(bob->closed());
  // bob's first chunk counted; the rest of his push was taken from z_0.
  const std::vector<float> z1 = *alice->consensus(1);
  const std::vector<float> xb = values(5.0f);
  for (size_t i = 0; i < kParams; ++i) {
    const float bob_value = i < kChunk ? xb[i] : z0[i];
    ASSERT_NEAR(z1[i], 0.5f * (xa[i] + bob_value), 1e-5f) << "element " << i;
  }
}

TEST_F(HostilePeerTest, APushThatTricklesInIsCutOffAfterTheGraceAndTheRoundCloses) {
  startServer(20s, 1s, 2s);
  const std::vector<float> z0 = values(1.0f);
  auto alice = bootstrap(encode(z0));
  auto bob = connect(bob_tls_);
  bob->hello();
  ASSERT_TRUE(bob->waitFor([&] { return bob->consensus(0).has_value(); }));
  const std::vector<float> xa = values(3.0f), xb = values(5.0f);
  const auto pa = encode(xa), pb = encode(xb);
  alice->push(0, pa, false);
  for (size_t c = 0; c < pa->chunks(); ++c) alice->chunk(pa, c);
  // bob's chunks come well within the idle timeout of 20 s, but the next
  // one only after the cutoff, 3 s after the round opened, has passed.
  bob->push(0, pb, false);
  bob->chunk(pb, 0);
  const bool cut = bob->waitFor([&] { return bob->toldError("still streaming in 3 s after the round opened"); }, 15s);
  for (size_t c = 1; c < pb->chunks() && !bob->closed(); ++c) bob->chunk(pb, c);
  ASSERT_TRUE(cut) << "bob's push still held the round open";
  ASSERT_TRUE(alice->waitFor([&] { return alice->consensus(1).has_value(); }));
  const std::vector<float> z1 = *alice->consensus(1);
  for (size_t i = 0; i < kParams; ++i) {
    const float bob_value = i < kChunk ? xb[i] : z0[i];
    ASSERT_NEAR(z1[i], 0.5f * (xa[i] + bob_value), 1e-5f) << "element " << i;
  }
  EXPECT_TRUE(bob->waitFor([&] { return bob->closed(); }));
}

TEST_F(HostilePeerTest, AMemberAskedForZ0ThatNeverSendsItIsLetGoAndAnotherIsAsked) {
  startServer(1500ms);
  auto alice = connect(alice_tls_);
  alice->hello();
  ASSERT_TRUE(alice->waitFor([&] { return alice->count(proto::CoordinatorMessage::kWelcome) == 1; }));
  ASSERT_TRUE(alice->messages.front().welcome().send_initial()) << "alice, first, is asked for z_0";
  auto bob = connect(bob_tls_);
  bob->hello();
  ASSERT_TRUE(bob->waitFor([&] { return bob->count(proto::CoordinatorMessage::kWelcome) == 1; }));
  EXPECT_FALSE(bob->messages.front().welcome().send_initial());
  // alice only sends heartbeats: after the idle timeout bob is asked instead.
  ASSERT_TRUE(bob->waitFor([&] { return bob->count(proto::CoordinatorMessage::kInitialRequest) == 1; }, 20s));
  EXPECT_TRUE(alice->waitFor([&] { return alice->toldError("has not begun sending it; another member is asked"); }));
  const std::vector<float> z0 = values(2.0f);
  const auto payload = encode(z0);
  bob->push(0, payload, /*initial=*/true);
  for (size_t c = 0; c < payload->chunks(); ++c) bob->chunk(payload, c);
  ASSERT_TRUE(bob->waitFor([&] { return bob->consensus(0).has_value(); }));
  EXPECT_EQ(*bob->consensus(0), z0);
}

TEST_F(HostilePeerTest, AZ0UploadThatTricklesInIsCutOffAndAnotherMemberIsAsked) {
  // Each chunk comes 4 s after the last, inside the 6 s idle timeout, but z_0
  // would be whole only 8 s after it was asked for, past deadline + grace (2 s).
  startServer(6s, 1s, 1s);
  auto alice = connect(alice_tls_);
  alice->hello();
  ASSERT_TRUE(alice->waitFor([&] { return alice->count(proto::CoordinatorMessage::kWelcome) == 1; }));
  ASSERT_TRUE(alice->messages.front().welcome().send_initial());
  auto bob = connect(bob_tls_);
  bob->hello();
  ASSERT_TRUE(bob->waitFor([&] { return bob->count(proto::CoordinatorMessage::kWelcome) == 1; }));
  const auto slow = encode(values(9.0f));
  alice->push(0, slow, /*initial=*/true);
  for (size_t c = 0; c < slow->chunks() && !alice->closed(); ++c) {
    if (c > 0) alice->waitFor([&] { return alice->closed(); }, 4s);
    alice->chunk(slow, c);
  }
  ASSERT_TRUE(bob->waitFor([&] { return bob->count(proto::CoordinatorMessage::kInitialRequest) == 1; }, 20s))
      << "alice's trickling z_0 held the federation before its start";
  EXPECT_TRUE(alice->waitFor([&] { return alice->toldError("has not finished sending it; another member is asked"); }));
  const std::vector<float> z0 = values(2.0f);
  const auto payload = encode(z0);
  bob->push(0, payload, /*initial=*/true);
  for (size_t c = 0; c < payload->chunks(); ++c) bob->chunk(payload, c);
  ASSERT_TRUE(bob->waitFor([&] { return bob->consensus(0).has_value(); }));
  EXPECT_EQ(*bob->consensus(0), z0);
}

TEST_F(HostilePeerTest, RepeatedStalePushesDoNotResendTheConsensus) {
  startServer();
  const std::vector<float> z0 = values(1.0f);
  auto alice = bootstrap(encode(z0));
  const auto pa = encode(values(2.0f));
  alice->push(0, pa, false);
  for (size_t c = 0; c < pa->chunks(); ++c) alice->chunk(pa, c);
  ASSERT_TRUE(alice->waitFor([&] { return alice->consensus(1).has_value(); }));
  const size_t consensus_before = alice->count(proto::CoordinatorMessage::kConsensus);
  for (int i = 0; i < 5; ++i) {
    alice->push(0, pa, false);  // round 0 is over
    for (size_t c = 0; c < pa->chunks(); ++c) alice->chunk(pa, c);
  }
  ASSERT_TRUE(alice->waitFor([&] { return alice->count(proto::CoordinatorMessage::kError) == 5 || alice->closed(); }));
  EXPECT_FALSE(alice->closed());
  EXPECT_TRUE(alice->toldError("push for round 0 but round 1 is open"));
  alice->waitFor([] { return false; }, 300ms);  // anything still on its way
  EXPECT_EQ(alice->count(proto::CoordinatorMessage::kConsensus), consensus_before);
}

TEST_F(HostilePeerTest, ALatePushWithinMaxStalenessBecomesTheOpenRoundsContribution) {
  startServer(10s, 60s, 60s, /*max_staleness=*/1);
  auto alice = bootstrap(encode(values(1.0f)));
  const auto pa = encode(values(2.0f));
  alice->push(0, pa, false);
  for (size_t c = 0; c < pa->chunks(); ++c) alice->chunk(pa, c);
  ASSERT_TRUE(alice->waitFor([&] { return alice->consensus(1).has_value(); }));

  // Trained on z_0 again, arriving while round 1 is open: one round late.
  const std::vector<float> late = values(4.0f);
  const auto pl = encode(late);
  alice->push(0, pl, false);
  for (size_t c = 0; c < pl->chunks(); ++c) alice->chunk(pl, c);
  ASSERT_TRUE(alice->waitFor([&] { return alice->consensus(2).has_value(); }));
  const std::vector<float> z2 = *alice->consensus(2);
  ASSERT_EQ(z2.size(), late.size());
  for (size_t i = 0; i < late.size(); ++i)
    ASSERT_NEAR(z2[i], late[i], 1e-5f) << "element " << i << ": the only contribution to round 1, whatever its weight";
  EXPECT_EQ(alice->count(proto::CoordinatorMessage::kError), 0u);

  alice->push(0, pl, false);  // round 2 is open: two rounds late
  for (size_t c = 0; c < pl->chunks(); ++c) alice->chunk(pl, c);
  ASSERT_TRUE(alice->waitFor([&] { return alice->count(proto::CoordinatorMessage::kError) == 1 || alice->closed(); }));
  EXPECT_FALSE(alice->closed());
  EXPECT_TRUE(alice->toldError("more than rounds.max_staleness 1 behind"));
}

// The last round closes and the final consensus goes out while a member's
// next push is already on the wire: honest crossing, not misbehaviour. The
// push is skipped and the session stays open for the member to take the final.
TEST_F(HostilePeerTest, APushCrossingTheFinalConsensusIsSkippedAndTheSessionStays) {
  max_rounds_ = 1;
  startServer();
  auto alice = bootstrap(encode(values(1.0f)));
  const auto pa = encode(values(2.0f));
  alice->push(0, pa, false);
  for (size_t c = 0; c < pa->chunks(); ++c) alice->chunk(pa, c);
  ASSERT_TRUE(alice->waitFor([&] { return alice->consensus(1).has_value(); }));
  alice->push(1, pa, false);  // trained on z_1 before it saw that z_1 is final
  for (size_t c = 0; c < pa->chunks(); ++c) alice->chunk(pa, c);
  ASSERT_TRUE(alice->waitFor([&] { return alice->count(proto::CoordinatorMessage::kError) == 1 || alice->closed(); }));
  EXPECT_TRUE(alice->toldError("the final consensus is on its way")) << "told why, not cut off";
  alice->waitFor([] { return false; }, 300ms);
  EXPECT_FALSE(alice->closed());
}

// The running server keeps state_dir/status.json current for `tapestry
// status`, and says when it has stopped.
TEST_F(HostilePeerTest, TheServerKeepsAStatusFileForOperators) {
  startServer();
  auto alice = bootstrap(encode(values(1.0f)));
  const std::string path = pki_.root() + "/state/status.json";
  auto readStatus = [&]() -> nlohmann::json {
    std::ifstream in(path);
    if (!in) return {};
    try {
      return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception&) {
      return {};
    }
  };
  nlohmann::json status;
  for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
    status = readStatus();
    if (!status.is_null() && status.at("has_consensus").get<bool>()) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(status.is_null()) << "no " << path;
  EXPECT_EQ(status.at("coordinator").at("state"), "running");
  EXPECT_EQ(status.at("federation_id"), "hostile");
  ASSERT_EQ(status.at("members").size(), 1u);
  EXPECT_EQ(status.at("members")[0].at("id"), "alice");
  EXPECT_EQ(status.at("members")[0].at("push"), "waiting");
  EXPECT_TRUE(status.at("members")[0].contains("address"));

  server_->stop();
  thread_.join();
  server_.reset();
  EXPECT_EQ(readStatus().at("coordinator").at("state"), "stopped");
}

}  // namespace
}  // namespace tapestry::coordinator
