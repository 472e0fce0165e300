#include "common/frame.h"

#include "common/error.h"

namespace tapestry::common {

void encodeFrameHeader(const FrameHeader& header, uint8_t out[kFrameHeaderSize]) {
  out[0] = kFrameMagic;
  out[1] = static_cast<uint8_t>(header.type);
  out[2] = 0;
  out[3] = 0;
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<uint8_t>(header.length >> (8 * i));
}

void encodeFrameTrailer(uint32_t crc32c, uint8_t out[kFrameTrailerSize]) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(crc32c >> (8 * i));
}

uint32_t decodeFrameTrailer(const uint8_t in[kFrameTrailerSize]) {
  uint32_t crc = 0;
  for (int i = 3; i >= 0; --i) crc = (crc << 8) | in[i];
  return crc;
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
  return {};
}

}  // namespace tapestry::common
