#pragma once
// Parameter payload codec. A payload is a PayloadHeader (Protobuf, inside a
// control message) followed by raw chunk frames. Each chunk carries
// chunk_elements elements (the last may be short) in the declared dtype, and
// its CRC32C rides in its frame header, so a receiver can read a chunk
// straight into its destination and verify it there.
//
// Supported dtypes: FP32 (little-endian IEEE), BF16 and FP16 (round to
// nearest even), and INT8_BLOCK: per block of block_elements values a
// little-endian fp32 scale = absmax/127 then the int8 values round(x/scale)
// (scale 0 for an all-zero block; a block holding NaN/Inf gets a NaN scale,
// so the receiver rejects it). Decoding always yields fp32 and rejects NaN/Inf.
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <utility>
#include <vector>

#include "proto/tapestry.pb.h"

namespace tapestry::common {

constexpr uint32_t kDefaultChunkElements = 1u << 20;      // 4 MiB of fp32
constexpr uint32_t kMaxChunkElements = 1u << 24;          // 64 MiB of fp32
constexpr uint64_t kMaxPayloadElements = 1ull << 34;      // 64 GiB of fp32
constexpr uint32_t kDefaultBlockElements = 256;           // int8 values per scale
constexpr uint32_t kMaxBlockElements = 1u << 16;
constexpr size_t kBlockScaleBytes = 4;

// 0 for unsupported; INT8_BLOCK gives 1 (its scales are counted by chunkByteCount).
size_t bytesPerElement(proto::DType dtype);
size_t chunkCount(uint64_t elements, uint32_t chunk_elements);
size_t chunkElementCount(const proto::PayloadHeader& header, size_t index);
size_t chunkByteCount(const proto::PayloadHeader& header, size_t index);

// An outgoing payload. For FP32 the chunks point into the caller's values
// (which must outlive this object); other dtypes own an encoded copy.
class EncodedPayload {
 public:
  // block_elements is used by INT8_BLOCK only and must divide chunk_elements.
  static EncodedPayload encode(proto::DType dtype, const float* values, size_t count,
                               uint32_t chunk_elements = kDefaultChunkElements,
                               uint32_t block_elements = kDefaultBlockElements);
  const proto::PayloadHeader& header() const { return header_; }
  size_t chunks() const { return chunkCount(header_.element_count(), header_.chunk_elements()); }
  std::pair<const uint8_t*, size_t> chunk(size_t index) const;

 private:
  proto::PayloadHeader header_;
  const uint8_t* base_ = nullptr;
  std::vector<uint8_t> owned_;
};

// Checks a received header before anything is allocated for it: supported
// dtype, element_count == expected_elements, 1 <= chunk_elements <=
// kMaxChunkElements, chunk byte size within kMaxChunkBytes; INT8_BLOCK: 1 <= block_elements <= kMaxBlockElements dividing
// chunk_elements; other dtypes: block_elements == 0.
std::error_code validatePayloadHeader(const proto::PayloadHeader& header, uint64_t expected_elements);

// Checks received chunk `index` of a validated header without decoding it:
// its size (kShapeMismatch) and whether the transport found its CRC32C intact
// (kChecksumMismatch otherwise; frames carry the checksum, common/frame.h). A
// chunk that passes can go straight to Aggregator::accumulateEncoded, which
// checks for NaN/Inf itself.
std::error_code verifyChunk(const proto::PayloadHeader& header, size_t index, size_t size, bool intact);

// Decodes chunk `index` into `dst` (chunkElementCount floats); receivers
// verifyChunk first. `bytes` may sit at the start of `dst` (in-place
// widening). kShapeMismatch (wrong size) or kNonFinite on failure.
std::error_code decodeChunk(const proto::PayloadHeader& header, size_t index, const uint8_t* bytes, size_t size,
                            float* dst);

// Scalar conversions (exposed for tests and kernels' references).
uint16_t floatToBf16(float v);
float bf16ToFloat(uint16_t v);
uint16_t floatToFp16(float v);
float fp16ToFloat(uint16_t v);

}  // namespace tapestry::common
