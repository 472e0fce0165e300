#pragma once
// Framing: every message on the wire is an 8-byte header, a body and a
// 4-byte trailer.
//   header: byte 0 magic 'T' (0x54) | byte 1 FrameType | bytes 2-3 zero |
//           bytes 4-7 body length, little-endian u32
//   trailer: CRC32C of the body, little-endian u32
// Control bodies are Protobuf envelopes; chunk bodies are raw payload bytes.
// Lengths are checked against hard per-type limits before any allocation.
// The checksum trails its frame so that both ends take it record by record
// as the body is encrypted or decrypted, while the bytes are in cache: a
// payload streams out chunk by chunk with no pass over it before or after.
#include <cstddef>
#include <cstdint>
#include <system_error>

namespace tapestry::common {

enum class FrameType : uint8_t { kControl = 1, kChunk = 2 };

// Version of the whole protocol (frames and messages), checked in Hello.
constexpr uint32_t kProtocolVersion = 2;
// A worker's Goodbye reason once it has saved the final consensus: the
// coordinator then counts the final as delivered to it.
constexpr const char* kFinishedGoodbye = "finished";

constexpr size_t kFrameHeaderSize = 8;
constexpr size_t kFrameTrailerSize = 4;
constexpr uint8_t kFrameMagic = 0x54;
constexpr uint32_t kMaxControlBytes = 1u << 20;  // 1 MiB of Protobuf
constexpr uint32_t kMaxChunkBytes = 64u << 20;   // 64 MiB of raw payload

struct FrameHeader {
  FrameType type = FrameType::kControl;
  uint32_t length = 0;
};

void encodeFrameTrailer(uint32_t crc32c, uint8_t out[kFrameTrailerSize]);
uint32_t decodeFrameTrailer(const uint8_t in[kFrameTrailerSize]);

void encodeFrameHeader(const FrameHeader& header, uint8_t out[kFrameHeaderSize]);

// kMalformedFrame for a bad magic, unknown type or non-zero reserved bytes;
// kFrameTooLarge when the length exceeds the limit for its type.
std::error_code decodeFrameHeader(const uint8_t in[kFrameHeaderSize], FrameHeader* out);

}  // namespace tapestry::common
