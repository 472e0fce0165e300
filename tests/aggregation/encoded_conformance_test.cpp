// accumulateEncoded over every backend and dtype: bit-identical to decoding
// with the payload codec and calling accumulate, within the conformance
// tolerance of a double reference for every server optimizer, and one
// contribution per element (sender or stand-in) when a chunk holds NaN/Inf.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "aggregation/aggregation_reference.h"
#include "aggregation/encoded_support.h"
#include "common/crc32c.h"
#include "common/error.h"

namespace tapestry::coordinator {
namespace {

using test_support::accumulateDecodedPayload;
using test_support::accumulateEncodedPayload;
using test_support::Contribution;
using test_support::decodeAll;
using test_support::makeContributions;
using test_support::makeVector;
using test_support::totalWeight;

struct Backend {
  std::string name;
  AggregatorDevice device;
  unsigned cpu_threads;
};

using Param = std::tuple<Backend, proto::DType>;

constexpr double kTolerance = 1e-5;

std::vector<double> meanOf(const std::vector<std::vector<float>>& decoded, const std::vector<Contribution>& cs) {
  std::vector<double> mean(decoded.front().size(), 0.0);
  for (size_t w = 0; w < cs.size(); ++w) {
    for (size_t i = 0; i < mean.size(); ++i) mean[i] += double(cs[w].weight) * double(decoded[w][i]);
  }
  for (double& m : mean) m /= totalWeight(cs);
  return mean;
}

size_t countOff(const std::vector<float>& got, const std::vector<double>& want, const char* what) {
  size_t off = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::fabs(double(got[i]) - want[i]) <= kTolerance * (1.0 + std::fabs(want[i])))) {
      if (off < 5) ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", reference " << want[i];
      ++off;
    }
  }
  return off;
}

class EncodedConformance : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    const Backend& backend = std::get<0>(GetParam());
    if (backend.device == AggregatorDevice::kCuda && !cudaAggregatorAvailable()) {
      GTEST_SKIP() << "CUDA backend unavailable: " << cudaUnavailableReason();
    }
    aggregator_ = makeAggregator(backend.device, backend.cpu_threads);
    dtype_ = std::get<1>(GetParam());
  }

  common::EncodedPayload encode(const Contribution& c, uint32_t chunk, uint32_t block) const {
    return common::EncodedPayload::encode(dtype_, c.values.data(), c.values.size(), chunk, block);
  }

  std::unique_ptr<Aggregator> aggregator_;
  proto::DType dtype_ = proto::DTYPE_FP32;
};

TEST_P(EncodedConformance, MatchesDecodeThenAccumulateBitForBit) {
  // Above the parallel threshold, odd sizes, a short last block and chunk.
  for (const auto& [elements, chunk, block] : {std::tuple<size_t, uint32_t, uint32_t>{300001, 65536, 256},
                                               {262147, 1u << 20, 256},
                                               {5003, 700, 7},
                                               {33, 16, 16}}) {
    SCOPED_TRACE("elements " + std::to_string(elements) + ", chunk " + std::to_string(chunk));
    const std::vector<Contribution> cs = makeContributions(elements, 3, uint32_t(elements));
    std::unique_ptr<Aggregator> decoded = makeAggregator(std::get<0>(GetParam()).device, 1);
    aggregator_->reset(elements);
    decoded->reset(elements);
    for (const Contribution& c : cs) {
      const common::EncodedPayload payload = encode(c, chunk, block);
      accumulateEncodedPayload(*aggregator_, payload, c.weight);
      accumulateDecodedPayload(*decoded, payload, c.weight);
    }
    std::vector<float> got(elements), want(elements);
    aggregator_->finalize(totalWeight(cs), ServerOptimizerSettings{}, got.data(), nullptr);
    decoded->finalize(totalWeight(cs), ServerOptimizerSettings{}, want.data(), nullptr);
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), elements * sizeof(float)));
  }
}

TEST_P(EncodedConformance, EveryOptimizerMatchesDoubleReference) {
  const size_t elements = 270013;
  for (ServerOptimizerKind kind :
       {ServerOptimizerKind::kPlain, ServerOptimizerKind::kNesterov, ServerOptimizerKind::kAdam}) {
    SCOPED_TRACE(serverOptimizerName(kind));
    ServerOptimizerSettings settings;
    settings.kind = kind;
    settings.lr = kind == ServerOptimizerKind::kAdam ? 0.01f : 0.7f;
    std::vector<float> consensus = makeVector(elements, 3, 1.0f);
    std::vector<float> first(elements, 0.0f), second(elements, 0.0f);
    std::vector<double> ref(consensus.begin(), consensus.end());
    std::vector<double> ref_first(elements, 0.0), ref_second(elements, 0.0);
    aggregator_->reset(elements);
    for (uint64_t step = 1; step <= 3; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      const std::vector<Contribution> cs = makeContributions(elements, 3, uint32_t(50 + step));
      std::vector<std::vector<float>> decoded;
      for (const Contribution& c : cs) {
        const common::EncodedPayload payload = encode(c, 100000, 250);
        decoded.push_back(decodeAll(payload));
        accumulateEncodedPayload(*aggregator_, payload, c.weight);
      }
      aggregator_->finalize(totalWeight(cs), settings, consensus.data(),
                            ServerOptimizerState{first.data(), second.data(), step});
      const std::vector<double> mean = meanOf(decoded, cs);
      if (kind == ServerOptimizerKind::kAdam) {
        test_support::referenceAdamUpdate(settings, mean, ref, ref_first, ref_second, step);
        EXPECT_EQ(countOff(second, ref_second, "second moment"), 0u);
      } else {
        test_support::referenceUpdate(settings, mean, ref, ref_first);
      }
      EXPECT_EQ(countOff(consensus, ref, "consensus"), 0u);
      if (kind != ServerOptimizerKind::kPlain) {
        EXPECT_EQ(countOff(first, ref_first, "momentum"), 0u);
      }
    }
  }
}

// Puts a NaN/Inf into element `at` of an encoded chunk (for int8 blocks: its
// block's scale) and recomputes the CRC, as a well-formed but hostile push.
std::vector<uint8_t> poisonedChunk(const common::EncodedPayload& payload, size_t index, size_t at, float bad) {
  const proto::PayloadHeader& header = payload.header();
  const auto [bytes, size] = payload.chunk(index);
  std::vector<uint8_t> chunk(bytes, bytes + size);
  uint32_t bits;
  std::memcpy(&bits, &bad, sizeof(bits));
  switch (header.dtype()) {
    case proto::DTYPE_FP32: std::memcpy(chunk.data() + 4 * at, &bad, 4); break;
    case proto::DTYPE_BF16: {
      const uint16_t h = static_cast<uint16_t>(bits >> 16);
      std::memcpy(chunk.data() + 2 * at, &h, 2);
      break;
    }
    case proto::DTYPE_FP16: {
      const uint16_t h = std::isnan(bad) ? 0x7E00 : 0x7C00;
      std::memcpy(chunk.data() + 2 * at, &h, 2);
      break;
    }
    default: {
      const size_t block = at / header.block_elements();
      std::memcpy(chunk.data() + block * (header.block_elements() + common::kBlockScaleBytes), &bad, 4);
    }
  }
  return chunk;
}

// A chunk with a NaN/Inf at `at` is rejected, and every element gets exactly
// one contribution: the sender's value (checked, finite) or the stand-in's,
// the bad element and (int8) its whole block the stand-in's. With no
// stand-in, the elements not taken from the sender get nothing.
TEST_P(EncodedConformance, NonFiniteChunkIsRejectedAndEachElementGetsOneContribution) {
  const size_t elements = 600011;  // one chunk, split over threads, tiles and staging
  const std::vector<Contribution> cs = makeContributions(elements, 2, 77);
  const common::EncodedPayload good = encode(cs[0], 1u << 20, 256);
  const common::EncodedPayload hostile = encode(cs[1], 1u << 20, 256);
  const std::vector<float> base = decodeAll(good), sent = decodeAll(hostile);
  const std::vector<float> stand_in = makeVector(elements, 5, 2.0f);
  const float w = 1000.0f;
  const uint32_t block = hostile.header().block_elements();
  for (size_t at : {size_t{0}, elements / 2 + 5, elements - 1}) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
      for (const bool with_stand_in : {true, false}) {
        SCOPED_TRACE("element " + std::to_string(at) + ", " + std::to_string(bad) +
                     (with_stand_in ? ", stand-in" : ", no stand-in"));
        aggregator_->reset(elements);
        accumulateEncodedPayload(*aggregator_, good, cs[0].weight);
        const std::vector<uint8_t> chunk = poisonedChunk(hostile, 0, at, bad);
        const std::error_code ec = aggregator_->accumulateEncoded(0, static_cast<EncodedDType>(dtype_), chunk.data(),
                                                                  elements, w, block,
                                                                  with_stand_in ? stand_in.data() : nullptr);
        EXPECT_EQ(ec, common::Errc::kNonFinite);
        std::vector<float> got(elements);
        aggregator_->finalize(1.0, ServerOptimizerSettings{}, got.data(), nullptr);
        const auto near = [](float a, float b) { return std::fabs(a - b) <= 1e-5f * (1.0f + std::fabs(b)); };
        size_t neither = 0, from_sender = 0;
        for (size_t i = 0; i < elements; ++i) {
          const float before = cs[0].weight * base[i];
          const float other = with_stand_in ? before + w * stand_in[i] : before;
          if (near(got[i], before + w * sent[i]) && !near(got[i], other)) ++from_sender;
          else if (!near(got[i], other)) ++neither;
        }
        EXPECT_EQ(neither, 0u);
        const size_t bad_first = dtype_ == proto::DTYPE_INT8_BLOCK ? at / block * block : at;
        const size_t bad_last = dtype_ == proto::DTYPE_INT8_BLOCK ? std::min(elements, bad_first + block) : at + 1;
        for (size_t i = bad_first; i < bad_last; ++i) {
          const float before = cs[0].weight * base[i];
          ASSERT_TRUE(near(got[i], with_stand_in ? before + w * stand_in[i] : before)) << "element " << i;
        }
        EXPECT_LT(from_sender, elements);
      }
    }
  }
}

TEST_P(EncodedConformance, MisuseThrows) {
  aggregator_->reset(100);
  const std::vector<uint8_t> bytes(1000, 0);
  const auto dtype = static_cast<EncodedDType>(dtype_);
  EXPECT_THROW(aggregator_->accumulateEncoded(90, dtype, bytes.data(), 20, 1.0f, 4, nullptr), std::out_of_range);
  EXPECT_THROW(aggregator_->accumulateEncoded(0, dtype, nullptr, 20, 1.0f, 4, nullptr), std::invalid_argument);
  EXPECT_THROW(aggregator_->accumulateEncoded(0, dtype, bytes.data(), 20, INFINITY, 4, nullptr), std::invalid_argument);
  EXPECT_THROW(aggregator_->accumulateEncoded(0, static_cast<EncodedDType>(9), bytes.data(), 20, 1.0f, 4, nullptr),
               std::invalid_argument);
  if (dtype == EncodedDType::kInt8Block) {
    EXPECT_THROW(aggregator_->accumulateEncoded(0, dtype, bytes.data(), 20, 1.0f, 0, nullptr), std::invalid_argument);
    EXPECT_THROW(aggregator_->accumulateEncoded(0, dtype, bytes.data(), 20, 1.0f, kMaxInt8BlockElements + 1, nullptr),
                 std::invalid_argument);
  }
  EXPECT_FALSE(aggregator_->accumulateEncoded(0, dtype, bytes.data(), 0, 1.0f, 4, nullptr));
}

const Backend kBackends[] = {{"cpu_1_thread", AggregatorDevice::kCpu, 1},
                             {"cpu_3_threads", AggregatorDevice::kCpu, 3},
                             {"cuda", AggregatorDevice::kCuda, 0}};

INSTANTIATE_TEST_SUITE_P(BackendsAndDtypes, EncodedConformance,
                         ::testing::Combine(::testing::ValuesIn(kBackends),
                                            ::testing::Values(proto::DTYPE_FP32, proto::DTYPE_BF16, proto::DTYPE_FP16,
                                                              proto::DTYPE_INT8_BLOCK)),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return std::get<0>(info.param).name + "_" + test_support::dtypeName(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace tapestry::coordinator
