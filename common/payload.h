#pragma once
// Parameter payload codec. A payload is a PayloadHeader (Protobuf, inside a
// control message) followed by raw chunk frames. Each chunk carries
// chunk_elements elements (the last may be short) in the declared dtype, and
// its CRC32C is declared in the header, so a receiver can read a chunk
// straight into its destination and verify it there.
//
// Supported dtypes: FP32 (little-endian IEEE), BF16 and FP16 (round to
// nearest even). Decoding always yields fp32 and rejects NaN/Inf.
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

size_t bytesPerElement(proto::DType dtype);  // 0 for unsupported
size_t chunkCount(uint64_t elements, uint32_t chunk_elements);
size_t chunkElementCount(const proto::PayloadHeader& header, size_t index);
size_t chunkByteCount(const proto::PayloadHeader& header, size_t index);

// An outgoing payload. For FP32 the chunks point into the caller's values
// (which must outlive this object); other dtypes own an encoded copy.
class EncodedPayload {
 public:
  static EncodedPayload encode(proto::DType dtype, const float* values, size_t count,
                               uint32_t chunk_elements = kDefaultChunkElements);
  const proto::PayloadHeader& header() const { return header_; }
  size_t chunks() const { return static_cast<size_t>(header_.chunk_crc32c_size()); }
  std::pair<const uint8_t*, size_t> chunk(size_t index) const;

 private:
  proto::PayloadHeader header_;
  const uint8_t* base_ = nullptr;
  std::vector<uint8_t> owned_;
};

// Checks a received header before anything is allocated for it: supported
// dtype, element_count == expected_elements, 1 <= chunk_elements <=
// kMaxChunkElements, chunk byte size within kMaxChunkBytes, one CRC per chunk.
std::error_code validatePayloadHeader(const proto::PayloadHeader& header, uint64_t expected_elements);

// Verifies chunk `index` (its `size` bytes at `bytes`) and decodes it into
// `dst` (chunkElementCount floats). For FP32, `bytes` may alias `dst`.
// kChecksumMismatch, kShapeMismatch (wrong size) or kNonFinite on failure.
std::error_code decodeChunk(const proto::PayloadHeader& header, size_t index, const uint8_t* bytes, size_t size,
                            float* dst);

// Scalar conversions (exposed for tests and kernels' references).
uint16_t floatToBf16(float v);
float bf16ToFloat(uint16_t v);
uint16_t floatToFp16(float v);
float fp16ToFloat(uint16_t v);

}  // namespace tapestry::common
