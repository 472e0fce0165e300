// Federation on its happy paths: z_0, weighted means, the server optimizer,
// durable state and restart, the round limit and deadline closes.
#include <cmath>
#include <fstream>
#include <iterator>

#include "coordinator/federation_fixture.h"

namespace tapestry::coordinator::testing {
namespace {

using common::Errc;

class FederationTest : public FederationFixture {};

std::vector<float> loadedConsensus(const std::string& dir) {
  auto state = loadFederationState(dir);
  EXPECT_TRUE(state.has_value()) << "no checkpoint in " << dir;
  return state ? state->consensus : std::vector<float>{};
}

std::vector<std::string> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST_F(FederationTest, FirstWorkerSuppliesTheInitialVectorWhichBecomesZ0) {
  auto f = make(config());
  proto::WelcomeToWorker a = admitOk(*f, "a");
  EXPECT_TRUE(a.send_initial());
  EXPECT_FALSE(a.has_consensus());
  EXPECT_EQ(a.federation_id(), "unit");
  EXPECT_EQ(a.identity(), "a");
  EXPECT_EQ(a.chunk_elements(), kChunk);
  EXPECT_EQ(a.algorithm(), proto::ALGORITHM_FEDPROX);
  proto::WelcomeToWorker b = admitOk(*f, "b");
  EXPECT_FALSE(b.send_initial()) << "only one worker is asked for z_0";
  EXPECT_EQ(f->pickInitialProvider(), "") << "a is already providing";

  const std::vector<float> z0 = vectorFor(1);
  Rejection r = push(*f, "b", 0, 1, z0, /*initial=*/true);
  EXPECT_EQ(r.code, Errc::kStaleRound) << "b was not asked for z_0";
  EXPECT_FALSE(f->advance(t0_));

  ASSERT_FALSE(push(*f, "a", 0, 1, z0, /*initial=*/true, /*chunks=*/2));
  EXPECT_FALSE(f->advance(t0_)) << "z_0 is incomplete";
  EXPECT_FALSE(std::filesystem::exists(checkpointPath(dir_)));
  auto payload = common::EncodedPayload::encode(proto::DTYPE_FP32, z0.data(), z0.size(), kChunk);
  ASSERT_FALSE(sendChunk(*f, "a", payload, 2));

  EXPECT_TRUE(f->advance(t0_));
  EXPECT_TRUE(f->hasConsensus());
  EXPECT_EQ(f->round(), 0u);
  EXPECT_EQ(*f->consensus(), z0);
  EXPECT_FALSE(f->advance(t0_)) << "nobody has pushed to round 0";

  auto state = loadFederationState(dir_);
  ASSERT_TRUE(state.has_value());
  EXPECT_TRUE(state->has_consensus);
  EXPECT_EQ(state->round, 0u);
  EXPECT_EQ(state->consensus, z0);
  EXPECT_EQ(state->fingerprint, "fp-mlp");
  EXPECT_EQ(state->parameter_count, kParams);
  EXPECT_EQ(state->members, (std::vector<std::string>{"a", "b"}));

  proto::WelcomeToWorker c = admitOk(*f, "c");
  EXPECT_TRUE(c.has_consensus());
  EXPECT_FALSE(c.send_initial());
  EXPECT_EQ(c.round(), 0u);
}

TEST_F(FederationTest, RoundConsensusIsTheSampleWeightedMean) {
  auto f = make(config());
  const std::vector<float> z0 = vectorFor(1);
  bootstrap(*f, {"a", "b", "c"}, z0);
  const std::vector<float> xa = vectorFor(2, 0.5f), xb = vectorFor(3, -0.25f), xc = vectorFor(4, 2.0f);

  ASSERT_FALSE(push(*f, "a", 0, 100, xa));
  ASSERT_FALSE(push(*f, "b", 0, 300, xb));
  EXPECT_FALSE(f->advance(t0_)) << "c is still awaited";
  ASSERT_FALSE(push(*f, "c", 0, 600, xc));
  EXPECT_EQ(admitOk(*f, "c").already_pushed(), true);
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(4)));

  EXPECT_EQ(f->round(), 1u);
  expectWeightedMean(*f->consensus(), {{100, xa}, {300, xb}, {600, xc}});
  std::vector<float> on_disk = loadedConsensus(dir_);
  ASSERT_EQ(on_disk.size(), kParams);
  EXPECT_EQ(std::memcmp(on_disk.data(), f->consensus()->data(), kParams * sizeof(float)), 0);

  ASSERT_EQ(f->state().log.size(), 1u);
  const RoundRecord& record = f->state().log[0];
  EXPECT_EQ(record.round, 0u);
  EXPECT_EQ(record.contributors, 3u);
  EXPECT_EQ(record.bytes_received, 3 * kParams * sizeof(float)) << "only round 0's pushes, not the z_0 upload";
  EXPECT_DOUBLE_EQ(record.seconds, 4.0);
  auto jsonl = lines(dir_ + "/rounds.jsonl");
  ASSERT_EQ(jsonl.size(), 1u);
  EXPECT_NE(jsonl[0].find("\"round\":1,"), std::string::npos) << jsonl[0];
  EXPECT_NE(jsonl[0].find("\"contributors\":3,"), std::string::npos) << jsonl[0];
}

TEST_F(FederationTest, RoundRecordKeepsTheSampleWeightedMetric) {
  auto f = make(config());
  const std::vector<float> z0 = vectorFor(1);
  bootstrap(*f, {"a", "b"}, z0);
  auto payload = common::EncodedPayload::encode(proto::DTYPE_FP32, z0.data(), z0.size(), kChunk);
  const std::pair<const char*, std::pair<double, uint64_t>> metrics[] = {{"a", {0.5, 100}}, {"b", {0.8, 300}}};
  for (const auto& [id, metric] : metrics) {
    proto::PushFromWorker header = pushHeader(0, 10, payload.header());
    header.set_metric(metric.first);
    header.set_metric_samples(metric.second);
    ASSERT_FALSE(f->beginPush(id, header));
    for (size_t c = 0; c < kChunks; ++c) ASSERT_FALSE(sendChunk(*f, id, payload, c));
  }
  ASSERT_TRUE(f->advance(t0_));
  ASSERT_EQ(f->state().log.size(), 1u);
  EXPECT_NEAR(f->state().log[0].metric, (0.5 * 100 + 0.8 * 300) / 400, 1e-12);
  EXPECT_EQ(f->state().log[0].metric_samples, 400u);
  expectWeightedMean(*f->consensus(), {{10, z0}, {10, z0}});
}

TEST_F(FederationTest, Bf16PushesAreDecodedBeforeAveraging) {
  auto f = make(config());
  bootstrap(*f, {"a", "b"}, vectorFor(1));
  std::vector<float> xa = vectorFor(2), xb = vectorFor(3, 1.0f);
  ASSERT_FALSE(push(*f, "a", 0, 1, xa, false, kChunks, proto::DTYPE_BF16));
  ASSERT_FALSE(push(*f, "b", 0, 3, xb, false, kChunks, proto::DTYPE_BF16));
  ASSERT_TRUE(f->advance(t0_));
  for (float& x : xa) x = common::bf16ToFloat(common::floatToBf16(x));
  for (float& x : xb) x = common::bf16ToFloat(common::floatToBf16(x));
  expectWeightedMean(*f->consensus(), {{1, xa}, {3, xb}});
}

// Compressed pushes carry x - z_r; the coordinator adds z_r back once per
// round, so the consensus is the weighted mean of z_r + decoded delta. A
// delta push cut short contributes z_r for its missing chunks, as a full one would.
TEST_F(FederationTest, DeltaPushesAreAveragedAsTheVectorsTheyEncode) {
  auto f = make(config());
  const std::vector<float> z0 = vectorFor(1);
  bootstrap(*f, {"a", "b", "c"}, z0);
  auto deltaOf = [&](const std::vector<float>& x) {
    std::vector<float> d(x.size());
    for (size_t i = 0; i < x.size(); ++i) d[i] = x[i] - z0[i];
    return d;
  };
  auto decoded = [](const common::EncodedPayload& p, size_t n) {
    std::vector<float> out(n);
    for (size_t c = 0; c < p.chunks(); ++c) {
      auto [bytes, size] = p.chunk(c);
      EXPECT_FALSE(common::decodeChunk(p.header(), c, bytes, size, out.data() + c * kChunk));
    }
    return out;
  };
  auto pushDelta = [&](const std::string& id, uint64_t samples, const std::vector<float>& x, size_t chunks) {
    auto d = deltaOf(x);
    auto payload = common::EncodedPayload::encode(proto::DTYPE_INT8_BLOCK, d.data(), d.size(), kChunk, 256);
    auto header = pushHeader(0, samples, payload.header());
    header.set_delta(true);
    EXPECT_FALSE(f->beginPush(id, header));
    for (size_t c = 0; c < chunks; ++c) EXPECT_FALSE(sendChunk(*f, id, payload, c));
    return decoded(payload, d.size());
  };
  std::vector<float> xa = vectorFor(2, 0.1f), xb = vectorFor(3, 0.2f), xc = vectorFor(4, 0.3f);
  auto da = pushDelta("a", 1, xa, kChunks);
  auto db = pushDelta("b", 3, xb, kChunks);
  auto dc = pushDelta("c", 2, xc, 1);  // leaves after its first chunk
  f->depart("c");
  ASSERT_TRUE(f->advance(t0_));
  std::vector<float> ra(kParams), rb(kParams), rc(z0);
  for (size_t i = 0; i < kParams; ++i) {
    ra[i] = z0[i] + da[i];
    rb[i] = z0[i] + db[i];
    if (i < kChunk) rc[i] = z0[i] + dc[i];
  }
  expectWeightedMean(*f->consensus(), {{1, ra}, {3, rb}, {2, rc}});
}

// Two nesterov rounds against a hand computation; with the parameter set, the
// coordinator restarts between them and must carry the momentum over.
class NesterovTest : public FederationFixture, public ::testing::WithParamInterface<bool> {};

TEST_P(NesterovTest, MatchesAHandComputation) {
  CoordinatorConfig c = config();
  c.server_optimizer.kind = ServerOptimizerKind::kNesterov;
  c.server_optimizer.lr = 0.7f;
  c.server_optimizer.momentum = 0.9f;
  auto f = make(c);
  const std::vector<float> z0 = vectorFor(1);
  bootstrap(*f, {"a", "b"}, z0);
  EXPECT_EQ(f->state().momentum, std::vector<float>(kParams, 0.0f));

  const double lr = 0.7, mu = 0.9;
  std::vector<double> z(z0.begin(), z0.end()), v(kParams, 0.0);
  for (uint64_t round = 0; round < 2; ++round) {
    if (round == 1 && GetParam()) {
      f.reset();
      auto state = loadFederationState(dir_);
      ASSERT_TRUE(state.has_value());
      f = make(c, std::move(*state));
      admitOk(*f, "a");
      admitOk(*f, "b");
    }
    const std::vector<float> x = vectorFor(10 + 2 * round, 0.5f), y = vectorFor(11 + 2 * round, 1.5f);
    ASSERT_FALSE(push(*f, "a", round, 1, x));
    ASSERT_FALSE(push(*f, "b", round, 3, y));
    ASSERT_TRUE(f->advance(t0_));
    for (size_t i = 0; i < kParams; ++i) {
      const double mean = (1.0 * x[i] + 3.0 * y[i]) / 4.0;
      const double delta = z[i] - mean;
      v[i] = mu * v[i] + delta;
      z[i] = z[i] - lr * (delta + mu * v[i]);
    }
  }
  ASSERT_EQ(f->round(), 2u);
  const std::vector<float>& got = *f->consensus();
  const std::vector<float>& momentum = f->state().momentum;
  ASSERT_EQ(momentum.size(), kParams);
  size_t bad = 0;
  for (size_t i = 0; i < kParams; ++i) {
    if (std::fabs(got[i] - z[i]) > 2e-5 * (1 + std::fabs(z[i])) && bad++ < 5)
      ADD_FAILURE() << "z[" << i << "] " << got[i] << " vs " << z[i];
    if (std::fabs(momentum[i] - v[i]) > 2e-5 * (1 + std::fabs(v[i])) && bad++ < 5)
      ADD_FAILURE() << "v[" << i << "] " << momentum[i] << " vs " << v[i];
  }
  EXPECT_EQ(bad, 0u);
  auto state = loadFederationState(dir_);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->momentum, momentum) << "the momentum is part of the durable state";
}

INSTANTIATE_TEST_SUITE_P(Federation, NesterovTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("AcrossARestart") : std::string("InOneProcess");
                         });

// FedAdam over two rounds against a hand computation in double, across a
// restart when the parameter is set: both moments and the step (taken from
// the round) must survive it.
class AdamTest : public FederationFixture, public ::testing::WithParamInterface<bool> {};

TEST_P(AdamTest, MatchesAHandComputation) {
  CoordinatorConfig c = config();
  c.server_optimizer.kind = ServerOptimizerKind::kAdam;
  c.server_optimizer.lr = 0.05f;
  c.server_optimizer.beta1 = 0.9f;
  c.server_optimizer.beta2 = 0.99f;
  c.server_optimizer.epsilon = 1e-3f;
  auto f = make(c);
  const std::vector<float> z0 = vectorFor(1);
  bootstrap(*f, {"a", "b"}, z0);
  EXPECT_EQ(f->state().second_moment, std::vector<float>(kParams, 0.0f));

  const double lr = 0.05, b1 = 0.9, b2 = 0.99, tau = 1e-3;
  std::vector<double> z(z0.begin(), z0.end()), m(kParams, 0.0), v(kParams, 0.0);
  for (uint64_t round = 0; round < 2; ++round) {
    if (round == 1 && GetParam()) {
      f.reset();
      auto state = loadFederationState(dir_);
      ASSERT_TRUE(state.has_value());
      f = make(c, std::move(*state));
      admitOk(*f, "a");
      admitOk(*f, "b");
    }
    const std::vector<float> x = vectorFor(10 + 2 * round, 0.5f), y = vectorFor(11 + 2 * round, 1.5f);
    ASSERT_FALSE(push(*f, "a", round, 1, x));
    ASSERT_FALSE(push(*f, "b", round, 3, y));
    ASSERT_TRUE(f->advance(t0_));
    const double t = static_cast<double>(round + 1);
    for (size_t i = 0; i < kParams; ++i) {
      const double g = z[i] - (1.0 * x[i] + 3.0 * y[i]) / 4.0;
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      z[i] -= lr * (m[i] / (1 - std::pow(b1, t))) / (std::sqrt(v[i] / (1 - std::pow(b2, t))) + tau);
    }
  }
  ASSERT_EQ(f->round(), 2u);
  const std::vector<float>& got = *f->consensus();
  size_t bad = 0;
  for (size_t i = 0; i < kParams; ++i) {
    if (std::fabs(got[i] - z[i]) > 1e-4 * (1 + std::fabs(z[i])) && bad++ < 5)
      ADD_FAILURE() << "z[" << i << "] " << got[i] << " vs " << z[i];
    if (std::fabs(f->state().second_moment[i] - v[i]) > 1e-4 * (1e-6 + std::fabs(v[i])) && bad++ < 5)
      ADD_FAILURE() << "v[" << i << "] " << f->state().second_moment[i] << " vs " << v[i];
  }
  EXPECT_EQ(bad, 0u);
  auto state = loadFederationState(dir_);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->second_moment, f->state().second_moment) << "adam's second moment is part of the durable state";
  EXPECT_EQ(state->server_optimizer, "adam");
}

INSTANTIATE_TEST_SUITE_P(Federation, AdamTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("AcrossARestart") : std::string("InOneProcess");
                         });

TEST_F(FederationTest, APinnedModelCannotBeChosenByTheFirstMember) {
  CoordinatorConfig c = config();
  c.model_fingerprint = "fp-mlp";
  c.model_parameters = kParams;
  auto f = make(c);
  proto::WelcomeToWorker welcome;
  Rejection r = f->admit("hostile", hello("fp-huge", uint64_t{1} << 33), &welcome);
  EXPECT_EQ(r.code, Errc::kFingerprintMismatch) << "even as the first Hello";
  EXPECT_NE(r.message.find("pinned as model.fingerprint fp-mlp, model.parameters " + std::to_string(kParams)),
            std::string::npos)
      << r.message;
  EXPECT_EQ(f->admit("liar", hello("fp-mlp", kParams + 1), &welcome).code, Errc::kFingerprintMismatch)
      << "the fingerprint alone does not pass with another parameter count";
  EXPECT_TRUE(f->state().fingerprint.empty());
  EXPECT_TRUE(admitOk(*f, "a").send_initial()) << "the honest member is asked for z_0";
}

TEST_F(FederationTest, AStateForAnotherModelThanThePinnedOneStopsTheStart) {
  {
    auto f = make(config());
    bootstrap(*f, {"a"}, vectorFor(1));
  }
  CoordinatorConfig c = config();
  c.model_fingerprint = "fp-other";
  try {
    make(c, *loadFederationState(dir_));
    ADD_FAILURE() << "a coordinator pinned to fp-other resumed a federation of fp-mlp";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("trains model fp-mlp"), std::string::npos) << e.what();
  }
  c.model_fingerprint = "fp-mlp";
  EXPECT_NO_THROW(make(c, *loadFederationState(dir_)));
}

TEST_F(FederationTest, RestartContinuesFromTheCheckpoint) {
  std::vector<float> z1;
  {
    auto f = make(config());
    bootstrap(*f, {"a", "b"}, vectorFor(1));
    ASSERT_FALSE(push(*f, "a", 0, 2, vectorFor(2)));
    ASSERT_FALSE(push(*f, "b", 0, 5, vectorFor(3)));
    ASSERT_TRUE(f->advance(t0_));
    z1 = *f->consensus();
  }
  auto state = loadFederationState(dir_);
  ASSERT_TRUE(state.has_value());
  auto f = make(config(), std::move(*state));
  EXPECT_EQ(f->round(), 1u);
  EXPECT_TRUE(f->hasConsensus());
  ASSERT_EQ(f->consensus()->size(), kParams);
  EXPECT_EQ(std::memcmp(f->consensus()->data(), z1.data(), kParams * sizeof(float)), 0);
  EXPECT_EQ(f->state().log.size(), 1u);

  proto::WelcomeToWorker welcome;
  EXPECT_EQ(f->admit("c", hello("fp-other"), &welcome).code, Errc::kFingerprintMismatch)
      << "the model fingerprint survives the restart";
  proto::WelcomeToWorker a = admitOk(*f, "a");
  EXPECT_TRUE(a.has_consensus());
  EXPECT_FALSE(a.send_initial());
  EXPECT_EQ(a.round(), 1u);
  admitOk(*f, "b");
  EXPECT_EQ(push(*f, "a", 0, 2, vectorFor(4)).code, Errc::kStaleRound);
  const std::vector<float> xa = vectorFor(5, 1.0f), xb = vectorFor(6, -1.0f);
  ASSERT_FALSE(push(*f, "a", 1, 2, xa));
  ASSERT_FALSE(push(*f, "b", 1, 5, xb));
  ASSERT_TRUE(f->advance(t0_));
  EXPECT_EQ(f->round(), 2u);
  expectWeightedMean(*f->consensus(), {{2, xa}, {5, xb}});
  EXPECT_EQ(lines(dir_ + "/rounds.jsonl").size(), 2u);
  EXPECT_EQ(loadedConsensus(dir_), *f->consensus());
}

TEST_F(FederationTest, TheRoundLogIsRebuiltFromTheCheckpointKeepingOlderLines) {
  // A checkpoint whose log (the last kMaxRoundLog rounds) starts at round
  // 4 of 6, and a rounds.jsonl with rounds 1..6, a line the crash left
  // ahead of the checkpoint (7) and a torn one.
  FederationState state;
  state.round = 6;
  for (uint64_t r = 3; r < 6; ++r) {
    RoundRecord record;
    record.round = r;
    record.contributors = 10 + r;
    state.log.push_back(record);
  }
  {
    std::ofstream out(dir_ + "/rounds.jsonl");
    for (int r = 1; r <= 7; ++r) out << "{\"round\":" << r << ",\"contributors\":" << r << "}\n";
    out << "{\"round\":8,\"contri";
  }
  auto f = make(config(), state);
  const auto jsonl = lines(dir_ + "/rounds.jsonl");
  ASSERT_EQ(jsonl.size(), 6u);
  for (int r = 1; r <= 3; ++r)
    EXPECT_EQ(jsonl[r - 1], "{\"round\":" + std::to_string(r) + ",\"contributors\":" + std::to_string(r) + "}")
        << "a round older than the checkpoint's log keeps its line";
  for (int r = 4; r <= 6; ++r)
    EXPECT_NE(jsonl[r - 1].find("\"contributors\":" + std::to_string(9 + r) + ","), std::string::npos)
        << "round " << r << " is the checkpoint's: " << jsonl[r - 1];
}

TEST_F(FederationTest, FinishesAfterMaxRounds) {
  CoordinatorConfig c = config();
  c.rounds.max_rounds = 2;
  auto f = make(c);
  bootstrap(*f, {"a"}, vectorFor(1));
  for (uint64_t round = 0; round < 2; ++round) {
    EXPECT_FALSE(f->finished());
    ASSERT_FALSE(push(*f, "a", round, 1, vectorFor(20 + round)));
    ASSERT_TRUE(f->advance(t0_));
  }
  EXPECT_TRUE(f->finished());
  EXPECT_EQ(f->round(), 2u);
  EXPECT_FALSE(f->nextDeadline().has_value());
  Rejection r = push(*f, "a", 2, 1, vectorFor(30));
  EXPECT_EQ(r.code, Errc::kFinished);
  EXPECT_NE(r.message.find("finished"), std::string::npos) << r.message;
  EXPECT_FALSE(f->advance(t0_ + std::chrono::hours(1)));
  EXPECT_EQ(f->expectedChunkBytes("a"), 0u);
  auto state = loadFederationState(dir_);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->round, 2u);
}

TEST_F(FederationTest, DeadlineClosesWithAQuorumBelowMinWorkers) {
  CoordinatorConfig c = config();
  c.rounds.min_workers = 3;
  c.rounds.quorum = 2;
  auto f = make(c);
  bootstrap(*f, {"a", "b", "c"}, vectorFor(1));
  ASSERT_TRUE(f->nextDeadline().has_value());
  EXPECT_EQ(*f->nextDeadline(), t0_ + std::chrono::seconds(30));
  const std::vector<float> xa = vectorFor(2), xb = vectorFor(3);
  ASSERT_FALSE(push(*f, "a", 0, 1, xa));
  EXPECT_FALSE(f->advance(t0_ + std::chrono::seconds(31))) << "1 contributor is below quorum 2";
  ASSERT_FALSE(push(*f, "b", 0, 1, xb));
  EXPECT_FALSE(f->advance(t0_ + std::chrono::seconds(29)));
  ASSERT_TRUE(f->advance(t0_ + std::chrono::seconds(30)));
  expectWeightedMean(*f->consensus(), {{1, xa}, {1, xb}});
  EXPECT_EQ(f->state().log.at(0).contributors, 2u);
  EXPECT_EQ(*f->nextDeadline(), t0_ + std::chrono::seconds(60)) << "round 1 opens when round 0 closes";
}

size_t lineCount(const std::string& path) {
  std::ifstream in(path);
  size_t lines = 0;
  for (std::string line; std::getline(in, line);) lines += !line.empty();
  return lines;
}

// The server's mode: the checkpoint is the caller's to write, off the io
// thread, and until it says the write is done the new consensus is not
// durable and no round can close, however many pushes have arrived.
TEST_F(FederationTest, DeferredCheckpointHoldsTheNextRoundUntilItIsDurable) {
  auto f = make(config());
  f->deferPersistence();
  admitOk(*f, "a");
  const std::vector<float> z0 = vectorFor(1);
  ASSERT_FALSE(push(*f, "a", 0, 1, z0, /*initial=*/true));
  ASSERT_TRUE(f->advance(t0_));
  EXPECT_FALSE(f->durable());
  EXPECT_FALSE(std::filesystem::exists(checkpointPath(dir_))) << "written before the caller ran the job";
  auto job = f->takePersistJob();
  ASSERT_TRUE(job);
  EXPECT_FALSE(f->takePersistJob()) << "one job per consensus";

  // a pushes round 0 while z_0's checkpoint is still being written.
  ASSERT_FALSE(push(*f, "a", 0, 10, vectorFor(2)));
  EXPECT_FALSE(f->advance(t0_)) << "round 0 closed before z_0 was durable";
  job();
  EXPECT_EQ(loadedConsensus(dir_), z0);
  f->persisted();
  EXPECT_TRUE(f->durable());
  ASSERT_TRUE(f->advance(t0_)) << "round 0 closes once z_0 is durable";
  EXPECT_EQ(f->round(), 1u);
  EXPECT_FALSE(f->durable());
  const std::string round_log = dir_ + "/rounds.jsonl";
  EXPECT_EQ(lineCount(round_log), 0u) << "round 1 logged before its checkpoint is durable";
  // The job for z_1 reads the consensus in place; nothing can change it
  // before persisted(), so what it writes is z_1.
  const std::vector<float> z1 = *f->consensus();
  f->takePersistJob()();
  EXPECT_EQ(loadedConsensus(dir_), z1);
  f->persisted();
  EXPECT_EQ(lineCount(round_log), 1u);
}

}  // namespace
}  // namespace tapestry::coordinator::testing
