#include "common/frame.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace tapestry::common {
namespace {

TEST(Frame, EncodesDocumentedLayout) {
  uint8_t buf[kFrameHeaderSize];
  encodeFrameHeader({FrameType::kChunk, 0x01020304u}, buf);
  const uint8_t expected[kFrameHeaderSize] = {0x54, 0x02, 0x00, 0x00, 0x04, 0x03, 0x02, 0x01};
  for (size_t i = 0; i < kFrameHeaderSize; ++i) EXPECT_EQ(buf[i], expected[i]) << "byte " << i;
}

TEST(Frame, RoundTripsBothTypesUpToTheirLimits) {
  struct Case {
    FrameType type;
    uint32_t length;
  };
  for (const Case& c : {Case{FrameType::kControl, 0}, Case{FrameType::kControl, 1},
                        Case{FrameType::kControl, 0xABCD}, Case{FrameType::kControl, kMaxControlBytes},
                        Case{FrameType::kChunk, 0}, Case{FrameType::kChunk, 0x00FEDCBA},
                        Case{FrameType::kChunk, kMaxChunkBytes}}) {
    uint8_t buf[kFrameHeaderSize];
    encodeFrameHeader({c.type, c.length}, buf);
    FrameHeader out;
    out.type = c.type == FrameType::kChunk ? FrameType::kControl : FrameType::kChunk;
    out.length = 12345;
    ASSERT_FALSE(decodeFrameHeader(buf, &out)) << "length " << c.length;
    EXPECT_EQ(out.type, c.type);
    EXPECT_EQ(out.length, c.length);
  }
}

TEST(Frame, RejectsBadMagic) {
  uint8_t buf[kFrameHeaderSize];
  encodeFrameHeader({FrameType::kControl, 10}, buf);
  for (uint8_t magic : {0x00, 0x55, 0x74, 0xFF}) {
    buf[0] = magic;
    FrameHeader out;
    EXPECT_EQ(decodeFrameHeader(buf, &out), Errc::kMalformedFrame) << "magic " << int(magic);
  }
}

TEST(Frame, RejectsUnknownType) {
  uint8_t buf[kFrameHeaderSize];
  encodeFrameHeader({FrameType::kControl, 10}, buf);
  for (uint8_t type : {0, 3, 4, 0x81, 0xFF}) {
    buf[1] = type;
    FrameHeader out;
    EXPECT_EQ(decodeFrameHeader(buf, &out), Errc::kMalformedFrame) << "type " << int(type);
  }
}

TEST(Frame, RejectsNonZeroReservedBytes) {
  for (size_t i : {2, 3}) {
    uint8_t buf[kFrameHeaderSize];
    encodeFrameHeader({FrameType::kChunk, 10}, buf);
    buf[i] = 1;
    FrameHeader out;
    EXPECT_EQ(decodeFrameHeader(buf, &out), Errc::kMalformedFrame) << "reserved byte " << i;
  }
}

TEST(Frame, RejectsOversizedLengthsPerType) {
  struct Case {
    FrameType type;
    uint32_t length;
  };
  for (const Case& c : {Case{FrameType::kControl, kMaxControlBytes + 1}, Case{FrameType::kControl, kMaxChunkBytes},
                        Case{FrameType::kControl, 0xFFFFFFFFu}, Case{FrameType::kChunk, kMaxChunkBytes + 1},
                        Case{FrameType::kChunk, 0xFFFFFFFFu}}) {
    uint8_t buf[kFrameHeaderSize];
    encodeFrameHeader({c.type, c.length}, buf);
    FrameHeader out;
    EXPECT_EQ(decodeFrameHeader(buf, &out), Errc::kFrameTooLarge)
        << "type " << int(c.type) << " length " << c.length;
  }
}

}  // namespace
}  // namespace tapestry::common
