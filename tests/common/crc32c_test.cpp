#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace tapestry::common {
namespace {

// Bit-at-a-time reference, independent of both implementations under test.
uint32_t crc32cBitwise(const uint8_t* p, size_t n) {
  uint32_t crc = ~0u;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

std::vector<uint8_t> randomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

TEST(Crc32c, KnownAnswers) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(check.data(), check.size()), 0xE3069283u);
  EXPECT_EQ(crc32cPortable(check.data(), check.size()), 0xE3069283u);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  EXPECT_EQ(crc32cPortable(nullptr, 0), 0u);

  // RFC 3720 (iSCSI) appendix B.4 vectors.
  std::vector<uint8_t> buf(32, 0x00);
  EXPECT_EQ(crc32c(buf.data(), buf.size()), 0x8A9136AAu);
  EXPECT_EQ(crc32cPortable(buf.data(), buf.size()), 0x8A9136AAu);
  std::fill(buf.begin(), buf.end(), 0xFF);
  EXPECT_EQ(crc32c(buf.data(), buf.size()), 0x62A8AB43u);
  EXPECT_EQ(crc32cPortable(buf.data(), buf.size()), 0x62A8AB43u);
  for (size_t i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(buf.data(), buf.size()), 0x46DD794Eu);
  EXPECT_EQ(crc32cPortable(buf.data(), buf.size()), 0x46DD794Eu);
  for (size_t i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(crc32c(buf.data(), buf.size()), 0x113FDB5Cu);
  EXPECT_EQ(crc32cPortable(buf.data(), buf.size()), 0x113FDB5Cu);
}

TEST(Crc32c, MatchesBitwiseReferenceAcrossLengthsAndAlignments) {
  const auto data = randomBytes(4096 + 16, 12345);
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 130; ++n) lengths.push_back(n);
  for (size_t n : {255, 256, 257, 1000, 1023, 1024, 1025, 4095, 4096}) lengths.push_back(n);
  for (size_t offset = 0; offset < 16; ++offset) {
    for (size_t n : lengths) {
      const uint8_t* p = data.data() + offset;
      uint32_t expected = crc32cBitwise(p, n);
      ASSERT_EQ(crc32cPortable(p, n), expected) << "offset " << offset << " length " << n;
      ASSERT_EQ(crc32c(p, n), expected) << "offset " << offset << " length " << n;
    }
  }
}

TEST(Crc32c, HardwareEqualsPortableOnRandomBuffers) {
  std::mt19937 rng(777);
  for (int trial = 0; trial < 200; ++trial) {
    size_t n = rng() % 70000;
    size_t offset = rng() % 8;
    auto data = randomBytes(n + offset, static_cast<uint32_t>(trial));
    uint32_t seed_crc = rng();
    ASSERT_EQ(crc32c(data.data() + offset, n, seed_crc), crc32cPortable(data.data() + offset, n, seed_crc))
        << "trial " << trial << " length " << n << " offset " << offset;
  }
}

TEST(Crc32c, InterleavedStreamsOfLongBuffersMatchPortable) {
  // Lengths around the three-stream block sizes (3 x 256 and 3 x 8192 bytes)
  // and a whole 4 MiB chunk, at every alignment of the start.
  const auto data = randomBytes((4u << 20) + 64, 2024);
  std::vector<size_t> lengths = {767, 768, 769, 3 * 256 + 8, 24575, 24576, 24577, 24576 + 768, 3 * 24576 + 5, 4u << 20};
  for (size_t offset : {0, 1, 5, 8, 13}) {
    for (size_t n : lengths) {
      const uint8_t* p = data.data() + offset;
      ASSERT_EQ(crc32c(p, n, 0x1234567u), crc32cPortable(p, n, 0x1234567u)) << "offset " << offset << " length " << n;
    }
  }
}

TEST(Crc32c, ChainingEqualsOneShot) {
  const auto data = randomBytes(3000, 99);
  const uint32_t whole = crc32c(data.data(), data.size());
  for (size_t split : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{1500}, size_t{2999}, size_t{3000}}) {
    uint32_t hw = crc32c(data.data() + split, data.size() - split, crc32c(data.data(), split));
    uint32_t sw = crc32cPortable(data.data() + split, data.size() - split, crc32cPortable(data.data(), split));
    EXPECT_EQ(hw, whole) << "split at " << split;
    EXPECT_EQ(sw, whole) << "split at " << split;
  }
  // Byte by byte through alternating implementations.
  uint32_t crc = 0;
  for (size_t i = 0; i < 100; ++i) crc = (i % 2) ? crc32c(&data[i], 1, crc) : crc32cPortable(&data[i], 1, crc);
  EXPECT_EQ(crc, crc32c(data.data(), 100));
}

TEST(Crc32c, DetectsSingleBitFlips) {
  auto data = randomBytes(257, 4242);
  const uint32_t original = crc32c(data.data(), data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      data[i] ^= static_cast<uint8_t>(1u << bit);
      ASSERT_NE(crc32c(data.data(), data.size()), original) << "byte " << i << " bit " << bit;
      data[i] ^= static_cast<uint8_t>(1u << bit);
    }
  }
}

}  // namespace
}  // namespace tapestry::common
