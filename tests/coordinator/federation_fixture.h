#pragma once
// Drives a real Federation (CPU aggregator, a fresh state_dir) the way the
// server does: Hello, push header, then chunk by chunk from float-aligned
// buffers. P is chosen so the payload has two full chunks and a short one.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/crc32c.h"
#include "common/error.h"
#include "common/log.h"
#include "common/payload.h"
#include "coordinator/federation.h"

namespace tapestry::coordinator::testing {

constexpr size_t kParams = 2500;
constexpr uint32_t kChunk = 1024;  // chunks of 1024, 1024 and 452 elements
constexpr size_t kChunks = 3;

// One contribution to a round mean: its weight and the vector it amounts to
// (for a partial push, the pushed chunks with z_r filled in).
struct Term {
  double weight;
  std::vector<float> values;
};

class FederationFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    common::setLogLevel(common::LogLevel::kError);
    std::string tmpl = (std::filesystem::temp_directory_path() / "tapestry_federation_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    common::setLogLevel(common::LogLevel::kInfo);
  }

  CoordinatorConfig config() const {
    CoordinatorConfig c;
    c.federation_id = "unit";
    c.state_dir = dir_;
    c.chunk_elements = kChunk;
    c.device = AggregatorDevice::kCpu;
    c.rounds.min_workers = 1;
    c.rounds.quorum = 1;
    c.rounds.deadline = std::chrono::seconds(30);
    return c;
  }

  std::unique_ptr<Federation> make(const CoordinatorConfig& c, FederationState state = {}) const {
    return std::make_unique<Federation>(c, std::move(state), makeAggregator(AggregatorDevice::kCpu, 2), t0_);
  }

  static proto::HelloFromWorker hello(const std::string& fingerprint = "fp-mlp", uint64_t params = kParams) {
    proto::HelloFromWorker h;
    h.set_protocol_version(common::kProtocolVersion);
    h.set_model_fingerprint(fingerprint);
    h.set_model_spec(R"({"kind":"mlp"})");
    h.set_parameter_count(params);
    h.set_sample_count(100);
    h.set_last_round_seen(-1);
    return h;
  }

  static proto::WelcomeToWorker admitOk(Federation& f, const std::string& id) {
    proto::WelcomeToWorker welcome;
    Rejection r = f.admit(id, hello(), &welcome);
    EXPECT_FALSE(r) << id << ": " << r.message;
    return welcome;
  }

  // Deterministic values around `centre` of spread 1, distinct per seed.
  static std::vector<float> vectorFor(unsigned seed, float centre = 0.0f, size_t n = kParams) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(centre, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng);
    return v;
  }

  static proto::PushFromWorker pushHeader(uint64_t round, uint64_t samples, const proto::PayloadHeader& payload,
                                          bool initial = false) {
    proto::PushFromWorker p;
    p.set_round(round);
    p.set_sample_count(samples);
    p.set_metric(std::nan(""));
    p.set_metric_samples(0);
    *p.mutable_payload() = payload;
    p.set_initial(initial);
    return p;
  }

  // Sends chunk `index` of `payload` from a float-aligned copy, telling the
  // federation, as the transport would, whether its CRC32C still matches;
  // `mutate` may damage the copy in transit.
  static Rejection sendChunk(Federation& f, const std::string& id, const common::EncodedPayload& payload, size_t index,
                             const std::function<void(uint8_t*, size_t)>& mutate = {}) {
    auto chunk = payload.chunk(index);
    EXPECT_EQ(f.expectedChunkBytes(id), chunk.second) << id << " chunk " << index;
    std::vector<float> buffer((chunk.second + sizeof(float) - 1) / sizeof(float));
    auto* bytes = reinterpret_cast<uint8_t*>(buffer.data());
    std::memcpy(bytes, chunk.first, chunk.second);
    const uint32_t sent = common::crc32c(chunk.first, chunk.second);
    if (mutate) mutate(bytes, chunk.second);
    return f.pushChunk(id, bytes, chunk.second, common::crc32c(bytes, chunk.second) == sent);
  }

  // A whole push: header, then the first `chunks` chunks (all by default).
  // Returns the first rejection.
  static Rejection push(Federation& f, const std::string& id, uint64_t round, uint64_t samples,
                        const std::vector<float>& values, bool initial = false, size_t chunks = kChunks,
                        proto::DType dtype = proto::DTYPE_FP32, uint32_t chunk_elements = kChunk) {
    auto payload = common::EncodedPayload::encode(dtype, values.data(), values.size(), chunk_elements);
    if (Rejection r = f.beginPush(id, pushHeader(round, samples, payload.header(), initial))) return r;
    for (size_t c = 0; c < chunks && c < payload.chunks(); ++c)
      if (Rejection r = sendChunk(f, id, payload, c)) return r;
    return {};
  }

  // Admits `ids` (the first is asked for z_0), installs `z0` from it and
  // returns with round 0 open.
  void bootstrap(Federation& f, const std::vector<std::string>& ids, const std::vector<float>& z0) const {
    for (const std::string& id : ids) admitOk(f, id);
    Rejection r = push(f, ids.front(), 0, 1, z0, /*initial=*/true);
    ASSERT_FALSE(r) << r.message;
    ASSERT_TRUE(f.advance(t0_));
    ASSERT_EQ(f.round(), 0u);
  }

  // z with chunks [from, kChunks) replaced by the same chunks of `fill`.
  static std::vector<float> spliced(const std::vector<float>& z, const std::vector<float>& fill, size_t from) {
    std::vector<float> out = z;
    std::copy(fill.begin() + static_cast<std::ptrdiff_t>(from * kChunk), fill.end(),
              out.begin() + static_cast<std::ptrdiff_t>(from * kChunk));
    return out;
  }

  // The consensus must be sum(w x) / sum(w) computed in double, within float
  // rounding of the terms' magnitudes.
  static void expectWeightedMean(const std::vector<float>& got, const std::vector<Term>& terms) {
    ASSERT_EQ(got.size(), kParams);
    double total = 0;
    for (const Term& t : terms) total += t.weight;
    size_t bad = 0;
    for (size_t i = 0; i < kParams; ++i) {
      double sum = 0, scale = 0;
      for (const Term& t : terms) {
        sum += t.weight * t.values[i];
        scale += t.weight * std::fabs(t.values[i]);
      }
      const double want = sum / total;
      const double tolerance = 1e-6 * scale / total + 1e-30;
      if (std::fabs(got[i] - want) > tolerance && bad++ < 5)
        ADD_FAILURE() << "element " << i << ": got " << got[i] << ", want " << want << " +- " << tolerance;
    }
    EXPECT_EQ(bad, 0u);
  }

  std::string dir_;
  Clock::time_point t0_ = Clock::time_point{} + std::chrono::hours(1);
};

}  // namespace tapestry::coordinator::testing
