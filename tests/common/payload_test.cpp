#include "common/payload.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <tuple>

#include "common/crc32c.h"
#include "common/error.h"

namespace tapestry::common {
namespace {

using proto::DType;

std::vector<float> randomValues(size_t n, uint32_t seed, float scale = 100.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> out(n);
  for (auto& v : out) v = dist(rng);
  return out;
}

float roundTrip(DType dtype, float v) {
  switch (dtype) {
    case proto::DTYPE_BF16: return bf16ToFloat(floatToBf16(v));
    case proto::DTYPE_FP16: return fp16ToFloat(floatToFp16(v));
    default: return v;
  }
}

TEST(Payload, SizesAndChunkArithmetic) {
  EXPECT_EQ(bytesPerElement(proto::DTYPE_FP32), 4u);
  EXPECT_EQ(bytesPerElement(proto::DTYPE_BF16), 2u);
  EXPECT_EQ(bytesPerElement(proto::DTYPE_FP16), 2u);
  EXPECT_EQ(bytesPerElement(proto::DTYPE_INT8_BLOCK), 1u);
  EXPECT_EQ(bytesPerElement(proto::DTYPE_UNSPECIFIED), 0u);
  EXPECT_EQ(chunkCount(0, 4), 0u);
  EXPECT_EQ(chunkCount(8, 4), 2u);
  EXPECT_EQ(chunkCount(9, 4), 3u);
  EXPECT_EQ(chunkCount(9, 0), 0u);
  EXPECT_EQ(chunkCount(kMaxPayloadElements, kMaxChunkElements), 1024u);

  proto::PayloadHeader h;
  h.set_dtype(proto::DTYPE_FP16);
  h.set_element_count(10);
  h.set_chunk_elements(4);
  EXPECT_EQ(chunkElementCount(h, 0), 4u);
  EXPECT_EQ(chunkElementCount(h, 2), 2u);
  EXPECT_EQ(chunkElementCount(h, 3), 0u);
  EXPECT_EQ(chunkByteCount(h, 1), 8u);
  EXPECT_EQ(chunkByteCount(h, 2), 4u);
}

class PayloadRoundTrip : public ::testing::TestWithParam<std::tuple<DType, size_t, uint32_t>> {};

TEST_P(PayloadRoundTrip, EncodesChunksAndDecodesBack) {
  const auto [dtype, count, chunk_elements] = GetParam();
  const auto values = randomValues(count, static_cast<uint32_t>(count * 31 + chunk_elements));
  const auto payload = EncodedPayload::encode(dtype, values.data(), count, chunk_elements);
  const auto& header = payload.header();

  EXPECT_EQ(header.dtype(), dtype);
  EXPECT_EQ(header.element_count(), count);
  EXPECT_EQ(header.chunk_elements(), chunk_elements);
  ASSERT_EQ(payload.chunks(), chunkCount(count, chunk_elements));
  ASSERT_FALSE(validatePayloadHeader(header, count));

  std::vector<float> decoded(count);
  size_t offset = 0;
  for (size_t i = 0; i < payload.chunks(); ++i) {
    auto [bytes, size] = payload.chunk(i);
    ASSERT_EQ(size, chunkByteCount(header, i));
    ASSERT_FALSE(verifyChunk(header, i, size, true)) << "chunk " << i;
    if (dtype == proto::DTYPE_FP32) {
      EXPECT_EQ(reinterpret_cast<const float*>(bytes), values.data() + offset) << "FP32 chunks are zero-copy";
    }
    ASSERT_FALSE(decodeChunk(header, i, bytes, size, decoded.data() + offset)) << "chunk " << i;
    offset += chunkElementCount(header, i);
  }
  ASSERT_EQ(offset, count);
  for (size_t i = 0; i < count; ++i) {
    ASSERT_EQ(decoded[i], roundTrip(dtype, values[i])) << "element " << i;
    const float tolerance = dtype == proto::DTYPE_FP32 ? 0.0f : dtype == proto::DTYPE_BF16 ? 1.0f / 256 : 1.0f / 2048;
    ASSERT_LE(std::fabs(decoded[i] - values[i]), tolerance * std::fabs(values[i]) + 1e-7f) << "element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, PayloadRoundTrip,
                         ::testing::Combine(::testing::Values(proto::DTYPE_FP32, proto::DTYPE_BF16,
                                                              proto::DTYPE_FP16),
                                            ::testing::Values(size_t{1000}, size_t{1}, size_t{0}),
                                            ::testing::Values(1u, 100u, 333u, 1000u, 4096u)));

TEST(Payload, EncodingIsLittleEndian) {
  const float one = 1.0f;
  auto fp32 = EncodedPayload::encode(proto::DTYPE_FP32, &one, 1);
  auto bf16 = EncodedPayload::encode(proto::DTYPE_BF16, &one, 1);
  auto fp16 = EncodedPayload::encode(proto::DTYPE_FP16, &one, 1);
  EXPECT_EQ(std::vector<uint8_t>(fp32.chunk(0).first, fp32.chunk(0).first + 4),
            (std::vector<uint8_t>{0x00, 0x00, 0x80, 0x3F}));
  EXPECT_EQ(std::vector<uint8_t>(bf16.chunk(0).first, bf16.chunk(0).first + 2), (std::vector<uint8_t>{0x80, 0x3F}));
  EXPECT_EQ(std::vector<uint8_t>(fp16.chunk(0).first, fp16.chunk(0).first + 2), (std::vector<uint8_t>{0x00, 0x3C}));
}

TEST(Payload, CopiedPayloadOwnsItsBytes) {
  const auto values = randomValues(50, 5);
  auto original = std::make_unique<EncodedPayload>(EncodedPayload::encode(proto::DTYPE_BF16, values.data(), 50, 16));
  EncodedPayload copy = *original;
  original.reset();
  std::vector<float> out(16);
  auto [bytes, size] = copy.chunk(1);
  ASSERT_FALSE(decodeChunk(copy.header(), 1, bytes, size, out.data()));
  EXPECT_EQ(out[0], roundTrip(proto::DTYPE_BF16, values[16]));
  EXPECT_THROW(copy.chunk(4), std::out_of_range);
}

TEST(Payload, DecodesInPlace) {
  const auto values = randomValues(64, 6);
  for (DType dtype : {proto::DTYPE_FP32, proto::DTYPE_BF16, proto::DTYPE_FP16}) {
    auto payload = EncodedPayload::encode(dtype, values.data(), values.size(), 64);
    auto [bytes, size] = payload.chunk(0);
    std::vector<float> buffer(64);
    std::memcpy(buffer.data(), bytes, size);  // as if received straight into the destination
    auto* raw = reinterpret_cast<uint8_t*>(buffer.data());
    ASSERT_FALSE(decodeChunk(payload.header(), 0, raw, size, buffer.data())) << DType_Name(dtype);
    for (size_t i = 0; i < 64; ++i) ASSERT_EQ(buffer[i], roundTrip(dtype, values[i])) << DType_Name(dtype);
  }
}

TEST(Payload, FlippedByteIsAChecksumMismatch) {
  const auto values = randomValues(300, 7);
  for (DType dtype : {proto::DTYPE_FP32, proto::DTYPE_BF16, proto::DTYPE_FP16}) {
    auto payload = EncodedPayload::encode(dtype, values.data(), values.size(), 128);
    auto [bytes, size] = payload.chunk(1);
    std::vector<uint8_t> damaged(bytes, bytes + size);
    damaged[size / 2] ^= 0x04;
    // What the transport reports: the CRC32C of the bytes as sent against the bytes as received.
    const uint32_t sent_crc = crc32c(bytes, size);
    EXPECT_FALSE(verifyChunk(payload.header(), 1, size, crc32c(bytes, size) == sent_crc));
    EXPECT_EQ(verifyChunk(payload.header(), 1, size, crc32c(damaged.data(), size) == sent_crc), Errc::kChecksumMismatch)
        << DType_Name(dtype);
  }
}

TEST(Payload, WrongChunkSizeOrIndexIsAShapeMismatch) {
  const auto values = randomValues(300, 8);
  auto payload = EncodedPayload::encode(proto::DTYPE_FP16, values.data(), values.size(), 128);
  auto [bytes, size] = payload.chunk(2);  // the short last chunk: 44 elements
  ASSERT_EQ(size, 88u);
  std::vector<uint8_t> longer(bytes, bytes + size);
  longer.push_back(0);
  std::vector<float> out(128);
  EXPECT_EQ(decodeChunk(payload.header(), 2, bytes, size - 1, out.data()), Errc::kShapeMismatch);
  EXPECT_EQ(decodeChunk(payload.header(), 2, longer.data(), longer.size(), out.data()), Errc::kShapeMismatch);
  EXPECT_EQ(decodeChunk(payload.header(), 1, bytes, size, out.data()), Errc::kShapeMismatch);
  EXPECT_EQ(decodeChunk(payload.header(), 3, bytes, size, out.data()), Errc::kShapeMismatch);
}

TEST(Payload, NonFiniteValuesAreRejectedOnDecode) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (DType dtype : {proto::DTYPE_FP32, proto::DTYPE_BF16, proto::DTYPE_FP16}) {
    for (float bad : {nan, -nan, inf, -inf}) {
      std::vector<float> values = randomValues(40, 9);
      values[33] = bad;
      auto payload = EncodedPayload::encode(dtype, values.data(), values.size(), 32);
      std::vector<float> out(32);
      auto [b0, s0] = payload.chunk(0);
      EXPECT_FALSE(decodeChunk(payload.header(), 0, b0, s0, out.data()));
      auto [b1, s1] = payload.chunk(1);
      EXPECT_EQ(decodeChunk(payload.header(), 1, b1, s1, out.data()), Errc::kNonFinite)
          << DType_Name(dtype) << " " << bad;
    }
  }
  // Finite in fp32 but beyond the fp16 range: overflows to Inf and is rejected.
  const float big = 1e6f;
  auto payload = EncodedPayload::encode(proto::DTYPE_FP16, &big, 1, 1);
  float out = 0;
  EXPECT_EQ(decodeChunk(payload.header(), 0, payload.chunk(0).first, 2, &out), Errc::kNonFinite);
}

proto::PayloadHeader validHeader() {
  proto::PayloadHeader h;
  h.set_dtype(proto::DTYPE_BF16);
  h.set_element_count(1000);
  h.set_chunk_elements(300);
  return h;
}

TEST(Payload, ValidateHeaderRejectsBadFields) {
  EXPECT_FALSE(validatePayloadHeader(validHeader(), 1000));
  EXPECT_EQ(validatePayloadHeader(validHeader(), 999), Errc::kShapeMismatch);
  EXPECT_EQ(validatePayloadHeader(validHeader(), 1001), Errc::kShapeMismatch);

  auto h = validHeader();
  h.set_chunk_elements(0);
  EXPECT_EQ(validatePayloadHeader(h, 1000), Errc::kShapeMismatch);
  h.set_chunk_elements(kMaxChunkElements + 1);
  EXPECT_EQ(validatePayloadHeader(h, 1000), Errc::kFrameTooLarge);

  for (DType dtype : {proto::DTYPE_UNSPECIFIED, static_cast<DType>(99)}) {
    h = validHeader();
    h.set_dtype(dtype);
    EXPECT_EQ(validatePayloadHeader(h, 1000), Errc::kUnsupportedDtype) << int(dtype);
  }

  h = validHeader();
  h.set_element_count(kMaxPayloadElements + 1);
  h.set_chunk_elements(kMaxChunkElements);
  EXPECT_EQ(validatePayloadHeader(h, kMaxPayloadElements + 1), Errc::kFrameTooLarge);
}

TEST(Payload, EncodeRejectsMisuse) {
  const float v = 1.0f;
  EXPECT_THROW(EncodedPayload::encode(proto::DTYPE_UNSPECIFIED, &v, 1), std::invalid_argument);
  EXPECT_THROW(EncodedPayload::encode(proto::DTYPE_FP32, &v, 1, 0), std::invalid_argument);
  EXPECT_THROW(EncodedPayload::encode(proto::DTYPE_FP32, &v, 1, kMaxChunkElements + 1), std::invalid_argument);
  proto::PayloadHeader h = validHeader();
  h.set_dtype(proto::DTYPE_UNSPECIFIED);
  float out[300];
  uint8_t bytes[600] = {};
  EXPECT_EQ(decodeChunk(h, 0, bytes, 600, out), Errc::kUnsupportedDtype);
}

}  // namespace
}  // namespace tapestry::common
