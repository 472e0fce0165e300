// Federation under faults: admission mismatches, stale and malformed pushes,
// damaged chunks and workers that leave in the middle of a push. A failed or
// interrupted push still counts; its missing chunks are z_r.
#include "coordinator/federation_fixture.h"

namespace tapestry::coordinator::testing {
namespace {

using common::Errc;

class FederationFaultsTest : public FederationFixture {};

bool mentions(const Rejection& r, const std::string& text) { return r.message.find(text) != std::string::npos; }

TEST_F(FederationFaultsTest, AdmissionRejectsAProtocolVersionMismatch) {
  auto f = make(config());
  proto::HelloFromWorker h = hello();
  h.set_protocol_version(common::kProtocolVersion + 1);
  proto::WelcomeToWorker welcome;
  Rejection r = f->admit("a", h, &welcome);
  EXPECT_EQ(r.code, Errc::kProtocolVersion);
  EXPECT_TRUE(mentions(r, "protocol version " + std::to_string(common::kProtocolVersion + 1))) << r.message;
  EXPECT_TRUE(mentions(r, "speaks " + std::to_string(common::kProtocolVersion))) << r.message;
  EXPECT_TRUE(f->state().fingerprint.empty()) << "a rejected worker must not set the federation's model";
  EXPECT_EQ(f->pickInitialProvider(), "");
}

TEST_F(FederationFaultsTest, AdmissionRejectsAnotherModel) {
  auto f = make(config());
  const std::vector<float> z0 = vectorFor(1);
  admitOk(*f, "a");
  proto::WelcomeToWorker welcome;
  Rejection r = f->admit("b", hello("fp-cnn"), &welcome);
  EXPECT_EQ(r.code, Errc::kFingerprintMismatch);
  EXPECT_TRUE(mentions(r, "fp-cnn")) << r.message;
  EXPECT_TRUE(mentions(r, "fp-mlp")) << r.message;

  r = f->admit("c", hello("fp-mlp", kParams + 1), &welcome);
  EXPECT_EQ(r.code, Errc::kFingerprintMismatch);
  EXPECT_TRUE(mentions(r, std::to_string(kParams + 1) + " parameters")) << r.message;
  EXPECT_TRUE(mentions(r, std::to_string(kParams) + " parameters")) << r.message;

  r = f->admit("d", hello("fp-mlp", 0), &welcome);
  EXPECT_EQ(r.code, Errc::kMalformedFrame);
  EXPECT_TRUE(mentions(r, "parameter_count 0")) << r.message;

  // Rejected workers are not members: a's push alone closes the round.
  ASSERT_FALSE(push(*f, "a", 0, 1, z0, /*initial=*/true));
  ASSERT_TRUE(f->advance(t0_));
  ASSERT_FALSE(push(*f, "a", 0, 1, vectorFor(2)));
  EXPECT_TRUE(f->advance(t0_));
  EXPECT_EQ(f->state().members, std::vector<std::string>{"a"});
}

TEST_F(FederationFaultsTest, AdmissionRejectsAnOutsizedFingerprintOrSpecWithoutEchoingIt) {
  auto f = make(config());
  proto::WelcomeToWorker welcome;
  const std::string huge(300000, 'x');
  Rejection r = f->admit("a", hello(huge), &welcome);
  EXPECT_EQ(r.code, Errc::kMalformedFrame);
  EXPECT_TRUE(mentions(r, "model_fingerprint of 300000 bytes")) << r.message.substr(0, 200);
  r = f->admit("a", hello(""), &welcome);
  EXPECT_EQ(r.code, Errc::kMalformedFrame);
  EXPECT_TRUE(mentions(r, "model_fingerprint of 0 bytes")) << r.message;
  proto::HelloFromWorker h = hello();
  h.set_model_spec(huge);
  r = f->admit("a", h, &welcome);
  EXPECT_EQ(r.code, Errc::kMalformedFrame);
  EXPECT_TRUE(mentions(r, "model_spec of 300000 bytes")) << r.message.substr(0, 200);
  EXPECT_LT(r.message.size(), 1000u);
  EXPECT_TRUE(f->state().fingerprint.empty()) << "a rejected worker must not set the federation's model";
  EXPECT_FALSE(f->admit("a", hello(), &welcome)) << "the same member with a sane Hello is admitted";
}

TEST_F(FederationFaultsTest, AnEmptyFederationForgetsItsModelBeforeZ0) {
  auto f = make(config());
  admitOk(*f, "a");
  f->depart("a");
  proto::WelcomeToWorker welcome;
  Rejection r = f->admit("b", hello("fp-cnn"), &welcome);
  EXPECT_FALSE(r) << r.message;
  EXPECT_TRUE(welcome.send_initial());
  EXPECT_EQ(f->state().fingerprint, "fp-cnn");
}

TEST_F(FederationFaultsTest, StaleAndRepeatedPushesAreRejected) {
  auto f = make(config());
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  const std::vector<float> xa = vectorFor(2), xb = vectorFor(3);
  ASSERT_FALSE(push(*f, "a", 0, 10, xa));

  Rejection r = push(*f, "a", 0, 10, vectorFor(4));
  EXPECT_EQ(r.code, Errc::kStaleRound);
  EXPECT_TRUE(mentions(r, "already contributed")) << r.message;
  r = push(*f, "b", 5, 10, xb);
  EXPECT_EQ(r.code, Errc::kStaleRound);
  EXPECT_TRUE(mentions(r, "round 5")) << r.message;
  r = push(*f, "b", 0, 0, xb);
  EXPECT_EQ(r.code, Errc::kMalformedFrame) << "sample_count 0";
  EXPECT_FALSE(f->advance(t0_)) << "rejected pushes do not count";

  ASSERT_FALSE(push(*f, "b", 0, 30, xb));
  ASSERT_TRUE(f->advance(t0_));
  expectWeightedMean(*f->consensus(), {{10, xa}, {30, xb}});
  r = push(*f, "a", 0, 10, xa);
  EXPECT_EQ(r.code, Errc::kStaleRound) << "round 0 has closed";
  EXPECT_TRUE(mentions(r, "round 0")) << r.message;
}

TEST_F(FederationFaultsTest, PushesOfTheWrongShapeAreRejected) {
  auto f = make(config());
  bootstrap(*f, {"a"}, vectorFor(1));
  const std::vector<float> x = vectorFor(2);
  Rejection r = push(*f, "a", 0, 1, x, false, kChunks, proto::DTYPE_FP32, 512);
  EXPECT_EQ(r.code, Errc::kShapeMismatch);
  EXPECT_TRUE(mentions(r, "512")) << r.message;
  EXPECT_TRUE(mentions(r, std::to_string(kChunk))) << r.message;
  r = push(*f, "a", 0, 1, vectorFor(2, 0, kParams - 1));
  EXPECT_EQ(r.code, Errc::kShapeMismatch);
  EXPECT_EQ(f->expectedChunkBytes("a"), 0u);
  EXPECT_FALSE(f->advance(t0_));

  ASSERT_FALSE(push(*f, "a", 0, 1, x)) << "a rejected header leaves no push behind";
  ASSERT_TRUE(f->advance(t0_));
  EXPECT_EQ(*f->consensus(), x);
}

// b's push fails at chunk 1 (a flipped byte or a NaN); b's session ends. The
// round closes from a and c, and b's chunks 1 and 2 count as z_0.
class DamagedChunkTest : public FederationFaultsTest {
 protected:
  void run(std::vector<float> xb, Errc expected, const std::function<void(uint8_t*, size_t)>& damage) {
    auto f = make(config());
    const std::vector<float> z0 = vectorFor(1);
    bootstrap(*f, {"a", "b", "c"}, z0);
    const std::vector<float> xa = vectorFor(2, 1.0f), xc = vectorFor(4, -0.5f);
    ASSERT_FALSE(push(*f, "a", 0, 100, xa));

    auto payload = common::EncodedPayload::encode(proto::DTYPE_FP32, xb.data(), xb.size(), kChunk);
    ASSERT_FALSE(f->beginPush("b", pushHeader(0, 300, payload.header())));
    ASSERT_FALSE(sendChunk(*f, "b", payload, 0));
    Rejection r = sendChunk(*f, "b", payload, 1, damage);
    EXPECT_EQ(r.code, expected) << r.message;
    EXPECT_TRUE(mentions(r, "chunk 1")) << r.message;

    ASSERT_FALSE(push(*f, "c", 0, 600, xc));
    EXPECT_FALSE(f->advance(t0_ + std::chrono::hours(1))) << "b's push is still open until its session ends";
    f->depart("b");
    ASSERT_TRUE(f->advance(t0_));
    EXPECT_EQ(f->state().log.at(0).contributors, 3u);
    expectWeightedMean(*f->consensus(), {{100, xa}, {300, spliced(xb, z0, 1)}, {600, xc}});
  }
};

TEST_F(DamagedChunkTest, AFlippedByteIsAChecksumMismatch) {
  run(vectorFor(3, 3.0f), Errc::kChecksumMismatch, [](uint8_t* bytes, size_t size) { bytes[size / 2] ^= 0x10; });
}

TEST_F(DamagedChunkTest, ANaNIsNonFinite) {
  std::vector<float> xb = vectorFor(3, 3.0f);
  xb[kChunk + 6] = std::nanf("");
  run(xb, Errc::kNonFinite, {});
}

TEST_F(FederationFaultsTest, AWorkerLeavingMidPushIsCompletedFromTheConsensus) {
  auto f = make(config());
  const std::vector<float> z0 = vectorFor(1);
  bootstrap(*f, {"a", "b", "c"}, z0);
  const std::vector<float> xa = vectorFor(2, 1.0f), xb = vectorFor(3, 3.0f), xc = vectorFor(4, -2.0f);
  ASSERT_FALSE(push(*f, "a", 0, 100, xa));
  ASSERT_FALSE(push(*f, "b", 0, 300, xb, false, /*chunks=*/1));
  ASSERT_FALSE(push(*f, "c", 0, 600, xc));
  EXPECT_EQ(f->expectedChunkBytes("b"), kChunk * sizeof(float));
  EXPECT_FALSE(f->advance(t0_ + std::chrono::hours(1))) << "b is still streaming";
  f->depart("b");
  EXPECT_EQ(f->expectedChunkBytes("b"), 0u);
  ASSERT_TRUE(f->advance(t0_));
  expectWeightedMean(*f->consensus(), {{100, xa}, {300, spliced(xb, z0, 1)}, {600, xc}});

  proto::WelcomeToWorker b = admitOk(*f, "b");
  EXPECT_EQ(b.round(), 1u);
  EXPECT_FALSE(b.already_pushed());
}

TEST_F(FederationFaultsTest, AnotherWorkerSuppliesZ0WhenTheProviderLeaves) {
  auto f = make(config());
  EXPECT_TRUE(admitOk(*f, "a").send_initial());
  EXPECT_FALSE(admitOk(*f, "c").send_initial());
  EXPECT_FALSE(admitOk(*f, "b").send_initial());
  ASSERT_FALSE(push(*f, "a", 0, 1, vectorFor(1), /*initial=*/true, /*chunks=*/1));
  f->depart("a");
  EXPECT_FALSE(f->advance(t0_));

  const std::vector<float> zb = vectorFor(7);
  EXPECT_EQ(push(*f, "b", 0, 1, zb, /*initial=*/true).code, Errc::kStaleRound) << "nobody asked b yet";
  EXPECT_EQ(f->pickInitialProvider(), "b");
  EXPECT_EQ(f->pickInitialProvider(), "") << "b is now providing";
  ASSERT_FALSE(push(*f, "b", 0, 1, zb, /*initial=*/true));
  ASSERT_TRUE(f->advance(t0_));
  EXPECT_EQ(*f->consensus(), zb);
  EXPECT_EQ(f->pickInitialProvider(), "");
}

// Two finite pushes whose weighted sum overflows fp32: the update is refused,
// z_r stays (bit for bit, and so does the server momentum), and the next
// round goes on normally from it.
TEST_F(FederationFaultsTest, AnUpdateThatOverflowsToInfIsRefusedAndZrKept) {
  CoordinatorConfig c = config();
  c.server_optimizer.kind = ServerOptimizerKind::kNesterov;
  c.server_optimizer.lr = 0.7f;
  auto f = make(c);
  const std::vector<float> z0 = vectorFor(1);
  bootstrap(*f, {"a", "b"}, z0);
  const std::vector<float> xa = vectorFor(2, 0.5f), xb = vectorFor(3, -0.5f);
  ASSERT_FALSE(push(*f, "a", 0, 100, xa));
  ASSERT_FALSE(push(*f, "b", 0, 100, xb));
  ASSERT_TRUE(f->advance(t0_));
  const std::vector<float> z1 = *f->consensus();
  const std::vector<float> momentum1 = f->state().momentum;
  ASSERT_NE(z1, z0);

  std::vector<float> huge(kParams, 3.0e38f);  // finite, but 100 x 3e38 is not
  ASSERT_FALSE(push(*f, "a", 1, 100, huge));
  ASSERT_FALSE(push(*f, "b", 1, 100, huge));
  ASSERT_TRUE(f->advance(t0_));
  EXPECT_EQ(f->round(), 2u);
  EXPECT_EQ(*f->consensus(), z1);
  EXPECT_EQ(f->state().momentum, momentum1);
  auto saved = loadFederationState(dir_);
  ASSERT_TRUE(saved.has_value());
  EXPECT_EQ(saved->round, 2u);
  EXPECT_EQ(saved->consensus, z1) << "the checkpoint of z_2 is z_1";

  ASSERT_FALSE(push(*f, "a", 2, 100, xa));
  ASSERT_FALSE(push(*f, "b", 2, 100, xb));
  ASSERT_TRUE(f->advance(t0_));
  for (float v : *f->consensus()) ASSERT_TRUE(std::isfinite(v));
  EXPECT_NE(*f->consensus(), z1);
}

}  // namespace
}  // namespace tapestry::coordinator::testing
