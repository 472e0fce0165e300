// A member that is still busy while several rounds close (a slow machine)
// must not work through every consensus queued for it in turn: the worker's
// client hands over only the newest, with the older ones it superseded. The
// real coordinator Server, in-process, over loopback mutual TLS, against two
// real SyncClients.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/frame.h"
#include "common/log.h"
#include "coordinator/server.h"
#include "net/net_test_support.h"
#include "worker/sync_client.h"

namespace tapestry::it {
namespace {

using namespace std::chrono_literals;
using worker::ClientEvent;
using worker::SyncClient;

constexpr uint64_t kParams = 2500;
constexpr uint32_t kChunk = 1024;

std::vector<float> ramp(float start) {
  std::vector<float> v(kParams);
  for (size_t i = 0; i < kParams; ++i) v[i] = start + 0.001f * static_cast<float>(i);
  return v;
}

proto::HelloFromWorker hello() {
  proto::HelloFromWorker h;
  h.set_protocol_version(common::kProtocolVersion);
  h.set_model_fingerprint("fp-superseded");
  h.set_model_spec(R"({"kind":"mlp"})");
  h.set_parameter_count(kParams);
  h.set_sample_count(100);
  h.set_last_round_seen(-1);
  return h;
}

proto::PushFromWorker pushFor(uint64_t round, bool initial) {
  proto::PushFromWorker p;
  p.set_round(round);
  p.set_initial(initial);
  p.set_sample_count(100);
  p.set_metric(std::nan(""));
  return p;
}

class SupersededConsensusTest : public ::testing::Test {
 protected:
  void SetUp() override { common::setLogLevel(common::LogLevel::kError); }
  void TearDown() override {
    if (server_) {
      server_->stop();
      thread_.join();
    }
    common::setLogLevel(common::LogLevel::kInfo);
  }

  std::unique_ptr<SyncClient> connect(const std::string& name, proto::WelcomeToWorker* welcome_out = nullptr) {
    worker::ClientOptions options;
    options.port = server_->port();
    options.tls = pki_.clientSettings(pki_.issue("ca", name, tools::CertKind::kWorker));
    auto client = std::make_unique<SyncClient>(options);
    proto::WelcomeToWorker welcome;
    std::string message;
    bool permanent = false;
    EXPECT_FALSE(client->connect(hello(), &welcome, &message, &permanent)) << name << ": " << message;
    if (welcome_out) *welcome_out = welcome;
    return client;
  }

  common::net::testing::TestPki pki_;
  std::unique_ptr<coordinator::Server> server_;
  std::thread thread_;
};

TEST_F(SupersededConsensusTest, ABusyMemberGetsOnlyTheNewestConsensusWithTheOnesItMissed) {
  coordinator::CoordinatorConfig c;
  c.federation_id = "superseded";
  c.listen_port = 0;
  c.tls = pki_.serverSettings();
  c.state_dir = pki_.root() + "/state";
  c.algorithm = coordinator::Algorithm::kFedAvg;
  c.device = coordinator::AggregatorDevice::kCpu;
  c.cpu_threads = 1;
  c.chunk_elements = kChunk;
  c.rounds.min_workers = 2;  // rounds close at the deadline, with alice alone
  c.rounds.quorum = 1;
  c.rounds.deadline = 200ms;
  c.rounds.max_rounds = 3;
  server_ = std::make_unique<coordinator::Server>(c);
  thread_ = std::thread([this] { server_->run(); });

  // bob joins first, is asked for z_0, sends it, and then is busy.
  proto::WelcomeToWorker welcome;
  auto bob = connect("bob", &welcome);
  ASSERT_TRUE(welcome.send_initial());
  const auto z0 = std::make_shared<const std::vector<float>>(ramp(1.0f));
  bob->push(pushFor(0, true), z0, proto::DTYPE_FP32, kChunk);

  // alice contributes to every round; each closes at its deadline.
  auto alice = connect("alice");
  std::vector<std::vector<float>> seen;
  for (;;) {
    ClientEvent e = alice->next();
    ASSERT_NE(e.kind, ClientEvent::Kind::kClosed) << e.detail;
    if (e.kind != ClientEvent::Kind::kConsensus) continue;
    seen.push_back(*e.consensus);
    if (e.final) break;
    alice->push(pushFor(e.round, false), std::make_shared<const std::vector<float>>(ramp(2.0f + e.round)),
                proto::DTYPE_FP32, kChunk);
  }
  ASSERT_EQ(seen.size(), 4u) << "z_0 ... z_3, each handed to alice, who took them as they came";

  // Every consensus reaches bob's client while bob is busy (it reads on
  // its own thread): z_0 ... z_3 queue up.
  for (auto until = std::chrono::steady_clock::now() + 10s;
       bob->queuedEvents() < 4 && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(20ms);
  ASSERT_EQ(bob->queuedEvents(), 4u);

  ClientEvent e = bob->next();
  ASSERT_EQ(e.kind, ClientEvent::Kind::kConsensus);
  EXPECT_EQ(e.round, 3u);
  EXPECT_TRUE(e.final);
  EXPECT_EQ(*e.consensus, seen[3]);
  ASSERT_EQ(e.superseded.size(), 3u) << "z_0, z_1 and z_2 were passed over, not lost";
  for (uint64_t r = 0; r < 3; ++r) {
    EXPECT_EQ(e.superseded[r].first, r);
    EXPECT_EQ(*e.superseded[r].second, seen[r]) << "z_" << r;
  }
  EXPECT_EQ(*e.superseded[0].second, *z0);
}

}  // namespace
}  // namespace tapestry::it
