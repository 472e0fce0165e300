#pragma once
// Framing: every message on the wire is a 12-byte header then a body.
//   byte 0: magic 'T' (0x54) | byte 1: FrameType | bytes 2-3: zero |
//   bytes 4-7: body length, little-endian u32 |
//   bytes 8-11: CRC32C of the body, little-endian u32
// Control bodies are Protobuf envelopes; chunk bodies are raw payload bytes.
// Lengths are checked against hard per-type limits before any allocation.
// The checksum travels with its frame and is computed as the frame is sent,
// so a payload streams out chunk by chunk with no pass over it beforehand.
#include <cstddef>
#include <cstdint>
#include <system_error>

namespace tapestry::common {

enum class FrameType : uint8_t { kControl = 1, kChunk = 2 };

// Version of the whole protocol (frames and messages), checked in Hello.
constexpr uint32_t kProtocolVersion = 2;

constexpr size_t kFrameHeaderSize = 12;
constexpr uint8_t kFrameMagic = 0x54;
constexpr uint32_t kMaxControlBytes = 1u << 20;  // 1 MiB of Protobuf
constexpr uint32_t kMaxChunkBytes = 64u << 20;   // 64 MiB of raw payload

struct FrameHeader {
  FrameType type = FrameType::kControl;
  uint32_t length = 0;
  uint32_t crc32c = 0;  // of the body
};

void encodeFrameHeader(const FrameHeader& header, uint8_t out[kFrameHeaderSize]);

// kMalformedFrame for a bad magic, unknown type or non-zero reserved bytes;
// kFrameTooLarge when the length exceeds the limit for its type.
std::error_code decodeFrameHeader(const uint8_t in[kFrameHeaderSize], FrameHeader* out);

}  // namespace tapestry::common
