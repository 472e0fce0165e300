// Blockwise int8 payloads: layout, round-trip error bound, and rejection of
// corrupt chunks and inconsistent headers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "common/crc32c.h"
#include "common/error.h"
#include "common/payload.h"

namespace tapestry::common {
namespace {

std::vector<float> randomValues(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> out(n);
  for (float& v : out) v = dist(rng);
  return out;
}

float blockScale(const uint8_t* block) {
  float scale;
  std::memcpy(&scale, block, sizeof(scale));
  return scale;
}

TEST(PayloadInt8, LayoutIsScaleThenValuesPerBlock) {
  const std::vector<float> values = {0.5f, -1.0f, 0.25f, 0.0f, 0.0f, 0.0f, 2.54f};
  const EncodedPayload p = EncodedPayload::encode(proto::DTYPE_INT8_BLOCK, values.data(), values.size(), 6, 3);
  EXPECT_EQ(p.header().block_elements(), 3u);
  ASSERT_EQ(p.chunks(), 2u);
  const auto [first, first_size] = p.chunk(0);
  ASSERT_EQ(first_size, 2 * (4 + 3u));
  EXPECT_EQ(blockScale(first), 1.0f / 127.0f);
  EXPECT_EQ(static_cast<int8_t>(first[4]), 64);  // 0.5 * 127 = 63.5 rounds to even
  EXPECT_EQ(static_cast<int8_t>(first[5]), -127);
  EXPECT_EQ(static_cast<int8_t>(first[6]), 32);  // 31.75
  EXPECT_EQ(blockScale(first + 7), 0.0f);        // all-zero block
  EXPECT_EQ(first[11] | first[12] | first[13], 0);
  const auto [last, last_size] = p.chunk(1);
  ASSERT_EQ(last_size, 4 + 1u);  // short final block
  EXPECT_EQ(blockScale(last), 2.54f / 127.0f);
  EXPECT_EQ(static_cast<int8_t>(last[4]), 127);
  EXPECT_EQ(chunkByteCount(p.header(), 0), 14u);
  EXPECT_EQ(chunkByteCount(p.header(), 1), 5u);
}

TEST(PayloadInt8, RoundTripErrorIsAtMostHalfAScale) {
  for (uint32_t block : {1u, 7u, 64u, 256u}) {
    SCOPED_TRACE("block_elements = " + std::to_string(block));
    const size_t count = 10007;
    std::vector<float> values = randomValues(count, block, 3.0f);
    for (size_t i = 0; i < 300; ++i) values[i] = 0.0f;  // whole zero blocks too
    values[500] = 1e-30f;
    const uint32_t chunk = block * 97;
    const EncodedPayload p = EncodedPayload::encode(proto::DTYPE_INT8_BLOCK, values.data(), count, chunk, block);
    ASSERT_FALSE(validatePayloadHeader(p.header(), count));
    std::vector<float> decoded(count);
    for (size_t c = 0; c < p.chunks(); ++c) {
      const auto [bytes, size] = p.chunk(c);
      ASSERT_FALSE(decodeChunk(p.header(), c, bytes, size, decoded.data() + c * chunk)) << "chunk " << c;
    }
    for (size_t start = 0; start < count; start += block) {
      const size_t end = std::min<size_t>(count, start + block);
      float absmax = 0.0f;
      for (size_t i = start; i < end; ++i) absmax = std::max(absmax, std::fabs(values[i]));
      const double scale = absmax / 127.0f;
      for (size_t i = start; i < end; ++i) {
        // Half a quantisation step, plus the fp32 rounding of q * scale.
        const double bound = scale / 2 * (1 + 1e-6) + std::fabs(values[i]) * 1e-7;
        ASSERT_LE(std::fabs(double(decoded[i]) - double(values[i])), bound) << "element " << i;
      }
    }
  }
}

TEST(PayloadInt8, DecodesInPlace) {
  const std::vector<float> values = randomValues(1000, 5, 1.0f);
  const EncodedPayload p = EncodedPayload::encode(proto::DTYPE_INT8_BLOCK, values.data(), values.size(), 1000, 10);
  std::vector<float> expected(values.size());
  const auto [bytes, size] = p.chunk(0);
  ASSERT_FALSE(decodeChunk(p.header(), 0, bytes, size, expected.data()));
  std::vector<float> buffer(values.size());
  std::memcpy(buffer.data(), bytes, size);
  ASSERT_FALSE(decodeChunk(p.header(), 0, reinterpret_cast<const uint8_t*>(buffer.data()), size, buffer.data()));
  EXPECT_EQ(buffer, expected);
}

TEST(PayloadInt8, CorruptOrShortChunksAreRejected) {
  const std::vector<float> values = randomValues(512, 9, 1.0f);
  const EncodedPayload p = EncodedPayload::encode(proto::DTYPE_INT8_BLOCK, values.data(), values.size(), 256, 128);
  auto [bytes, size] = p.chunk(1);
  std::vector<uint8_t> chunk(bytes, bytes + size);
  std::vector<float> out(256);
  const uint32_t sent_crc = crc32c(bytes, size);
  EXPECT_FALSE(verifyChunk(p.header(), 1, chunk.size(), true));
  EXPECT_EQ(verifyChunk(p.header(), 1, chunk.size() - 1, true), Errc::kShapeMismatch);
  EXPECT_EQ(decodeChunk(p.header(), 1, chunk.data(), 256, out.data()), Errc::kShapeMismatch);  // scales missing
  EXPECT_EQ(verifyChunk(p.header(), 2, chunk.size(), true), Errc::kShapeMismatch);
  chunk[200] ^= 0x10;
  EXPECT_EQ(verifyChunk(p.header(), 1, chunk.size(), crc32c(chunk.data(), chunk.size()) == sent_crc),
            Errc::kChecksumMismatch);

  // A non-finite or overflowing scale with a matching CRC is still rejected.
  proto::PayloadHeader header = p.header();
  for (float scale : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                      std::numeric_limits<float>::max() / 100.0f}) {
    chunk.assign(bytes, bytes + size);
    std::memcpy(chunk.data() + 132, &scale, sizeof(scale));  // the second block's scale
    EXPECT_FALSE(verifyChunk(header, 1, chunk.size(), true));
    EXPECT_EQ(decodeChunk(header, 1, chunk.data(), chunk.size(), out.data()), Errc::kNonFinite) << scale;
  }
}

TEST(PayloadInt8, NonFiniteInputEncodesAsARejectedBlock) {
  std::vector<float> values(8, 1.0f);
  values[6] = std::numeric_limits<float>::infinity();
  const EncodedPayload p = EncodedPayload::encode(proto::DTYPE_INT8_BLOCK, values.data(), values.size(), 8, 4);
  const auto [bytes, size] = p.chunk(0);
  EXPECT_TRUE(std::isnan(blockScale(bytes + 8)));
  std::vector<float> out(8);
  EXPECT_EQ(decodeChunk(p.header(), 0, bytes, size, out.data()), Errc::kNonFinite);
}

TEST(PayloadInt8, HeaderCombinationsAreValidated) {
  const std::vector<float> values = randomValues(1000, 1, 1.0f);
  const proto::PayloadHeader good =
      EncodedPayload::encode(proto::DTYPE_INT8_BLOCK, values.data(), values.size(), 300, 100).header();
  EXPECT_FALSE(validatePayloadHeader(good, 1000));
  proto::PayloadHeader h = good;
  h.set_block_elements(0);
  EXPECT_EQ(validatePayloadHeader(h, 1000), Errc::kShapeMismatch);
  h.set_block_elements(7);  // does not divide chunk_elements
  EXPECT_EQ(validatePayloadHeader(h, 1000), Errc::kShapeMismatch);
  h.set_block_elements(kMaxBlockElements + 1);
  EXPECT_EQ(validatePayloadHeader(h, 1000), Errc::kShapeMismatch);
  h = good;
  h.set_dtype(proto::DTYPE_FP16);  // block_elements only belongs to int8
  EXPECT_EQ(validatePayloadHeader(h, 1000), Errc::kShapeMismatch);
  // 2^24 one-element blocks: 16 MiB of values plus 64 MiB of scales per chunk.
  h = good;
  h.set_element_count(kMaxChunkElements);
  h.set_chunk_elements(kMaxChunkElements);
  h.set_block_elements(1);
  EXPECT_EQ(validatePayloadHeader(h, kMaxChunkElements), Errc::kFrameTooLarge);
  h.set_block_elements(4);
  EXPECT_FALSE(validatePayloadHeader(h, kMaxChunkElements));
}

TEST(PayloadInt8, EncodeRejectsBadBlockSizes) {
  const float v[4] = {1, 2, 3, 4};
  EXPECT_THROW(EncodedPayload::encode(proto::DTYPE_INT8_BLOCK, v, 4, 6, 4), std::invalid_argument);
  EXPECT_THROW(EncodedPayload::encode(proto::DTYPE_INT8_BLOCK, v, 4, 4, 0), std::invalid_argument);
  EXPECT_THROW(EncodedPayload::encode(proto::DTYPE_INT8_BLOCK, v, 4, 1u << 17, 1u << 17), std::invalid_argument);
  EXPECT_NO_THROW(EncodedPayload::encode(proto::DTYPE_FP32, v, 4, 6, 4));  // ignored for other dtypes
}

}  // namespace
}  // namespace tapestry::common
