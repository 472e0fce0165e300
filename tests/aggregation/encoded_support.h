#pragma once
// Encoded contributions for the aggregation tests: a worker's vector encoded
// with the real payload codec, fed to an Aggregator either raw
// (verifyChunk + accumulateEncoded) or through common::decodeChunk.
#include <gtest/gtest.h>

#include <string>
#include <system_error>
#include <vector>

#include "aggregation/aggregation_reference.h"
#include "common/payload.h"
#include "coordinator/aggregation/aggregator.h"

namespace tapestry::coordinator::test_support {

static_assert(static_cast<int>(EncodedDType::kFp32) == proto::DTYPE_FP32 &&
                  static_cast<int>(EncodedDType::kBf16) == proto::DTYPE_BF16 &&
                  static_cast<int>(EncodedDType::kFp16) == proto::DTYPE_FP16 &&
                  static_cast<int>(EncodedDType::kInt8Block) == proto::DTYPE_INT8_BLOCK,
              "EncodedDType must mirror proto::DType");
static_assert(kMaxInt8BlockElements == common::kMaxBlockElements, "block limits must agree");

inline const char* dtypeName(proto::DType dtype) { return encodedDTypeName(static_cast<EncodedDType>(dtype)); }

// The decoded values as the receiver sees them (what the reference averages).
inline std::vector<float> decodeAll(const common::EncodedPayload& payload) {
  const proto::PayloadHeader& header = payload.header();
  std::vector<float> out(header.element_count());
  for (size_t c = 0; c < payload.chunks(); ++c) {
    const auto [bytes, size] = payload.chunk(c);
    EXPECT_FALSE(common::decodeChunk(header, c, bytes, size, out.data() + c * header.chunk_elements()));
  }
  return out;
}

// Folds every chunk, last chunk first, as verify + accumulateEncoded.
inline void accumulateEncodedPayload(Aggregator& aggregator, const common::EncodedPayload& payload, float weight) {
  const proto::PayloadHeader& header = payload.header();
  for (size_t c = payload.chunks(); c-- > 0;) {
    const auto [bytes, size] = payload.chunk(c);
    ASSERT_FALSE(common::verifyChunk(header, c, size, true));
    const std::error_code ec =
        aggregator.accumulateEncoded(c * header.chunk_elements(), static_cast<EncodedDType>(header.dtype()), bytes,
                                     common::chunkElementCount(header, c), weight, header.block_elements(), nullptr);
    ASSERT_FALSE(ec) << "chunk " << c << ": " << ec.message();
  }
}

// The same chunks through decodeChunk + accumulate.
inline void accumulateDecodedPayload(Aggregator& aggregator, const common::EncodedPayload& payload, float weight) {
  const proto::PayloadHeader& header = payload.header();
  std::vector<float> chunk(header.chunk_elements());
  for (size_t c = payload.chunks(); c-- > 0;) {
    const auto [bytes, size] = payload.chunk(c);
    ASSERT_FALSE(common::decodeChunk(header, c, bytes, size, chunk.data()));
    aggregator.accumulate(c * header.chunk_elements(), chunk.data(), common::chunkElementCount(header, c), weight);
  }
}

}  // namespace tapestry::coordinator::test_support
