#include "common/frame.h"

#include "common/error.h"

namespace tapestry::common {

void encodeFrameHeader(const FrameHeader& header, uint8_t out[kFrameHeaderSize]) {
  out[0] = kFrameMagic;
  out[1] = static_cast<uint8_t>(header.type);
  out[2] = 0;
  out[3] = 0;
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<uint8_t>(header.length >> (8 * i));
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<uint8_t>(header.crc32c >> (8 * i));
}

std::error_code decodeFrameHeader(const uint8_t in[kFrameHeaderSize], FrameHeader* out) {
  if (in[0] != kFrameMagic || in[2] != 0 || in[3] != 0) return Errc::kMalformedFrame;
  uint32_t length = 0;
  for (int i = 3; i >= 0; --i) length = (length << 8) | in[4 + i];
  uint32_t limit = 0;
  switch (static_cast<FrameType>(in[1])) {
    case FrameType::kControl: limit = kMaxControlBytes; break;
    case FrameType::kChunk: limit = kMaxChunkBytes; break;
    default: return Errc::kMalformedFrame;
  }
  if (length > limit) return Errc::kFrameTooLarge;
  out->type = static_cast<FrameType>(in[1]);
  out->length = length;
  out->crc32c = 0;
  for (int i = 3; i >= 0; --i) out->crc32c = (out->crc32c << 8) | in[8 + i];
  return {};
}

}  // namespace tapestry::common
