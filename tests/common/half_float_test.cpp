// Scalar bf16/fp16 conversions checked against references written from the
// definitions (exact values via ldexp, nearest value by search), not from the
// bit tricks the implementation uses.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "common/payload.h"

namespace tapestry::common {
namespace {

float fromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof(f));
  return f;
}

double fp16Value(uint16_t h) {  // from the IEEE 754 binary16 definition
  int exp = (h >> 10) & 0x1F;
  int mant = h & 0x3FF;
  double mag = exp == 0 ? std::ldexp(mant, -24) : exp == 31 ? INFINITY : std::ldexp(1024 + mant, exp - 25);
  return (h & 0x8000) ? -mag : mag;
}

// Round to nearest, ties to even, over the positive codes [0, inf_code]. The
// infinity code stands for 2^(emax+1), which gives IEEE overflow rounding.
template <typename ValueOf>
uint16_t nearestCode(double mag, uint16_t inf_code, double inf_value, ValueOf value_of) {
  auto value = [&](uint32_t c) { return c == inf_code ? inf_value : value_of(static_cast<uint16_t>(c)); };
  if (mag >= inf_value) return inf_code;
  uint32_t lo = 0, hi = inf_code;  // value(lo) <= mag < value(hi)
  while (hi - lo > 1) {
    uint32_t mid = (lo + hi) / 2;
    (value(mid) <= mag ? lo : hi) = mid;
  }
  double dlo = mag - value(lo), dhi = value(hi) - mag;
  if (dlo < dhi || (dlo == dhi && (lo & 1) == 0)) return static_cast<uint16_t>(lo);
  return static_cast<uint16_t>(hi);
}

uint16_t referenceFp16(float v) {
  uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  return sign | nearestCode(std::fabs(double(v)), 0x7C00, 65536.0, fp16Value);
}

uint16_t referenceBf16(float v) {
  uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  auto value = [](uint16_t c) { return double(fromBits(uint32_t(c) << 16)); };
  return sign | nearestCode(std::fabs(double(v)), 0x7F80, std::ldexp(1.0, 128), value);
}

std::vector<float> testFloats() {
  std::vector<float> out = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, 65536.0f, -65520.0f,
                            std::ldexp(1.0f, -14), std::ldexp(1.0f, -24), std::ldexp(1.0f, -25),
                            std::nextafter(std::ldexp(1.0f, -25), 1.0f), std::ldexp(1.5f, -25),
                            std::ldexp(1.0f, -26), std::ldexp(1023.5f, -24), std::ldexp(1.0f, -149),
                            std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(),
                            std::numeric_limits<float>::min(), 3.3895314e38f, 3.3961776e38f};
  std::mt19937 rng(31337);
  for (int i = 0; i < 200000; ++i) {
    float f = fromBits(rng());
    if (std::isfinite(f)) out.push_back(f);
  }
  // Dense in the fp16 range, including its subnormals.
  std::uniform_real_distribution<float> exponent(-26.0f, 17.0f);
  for (int i = 0; i < 200000; ++i) out.push_back(std::exp2(exponent(rng)) * (rng() % 2 ? 1.0f : -1.0f));
  return out;
}

TEST(HalfFloat, Fp16ToFloatIsExactForEveryCode) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    float f = fp16ToFloat(static_cast<uint16_t>(h));
    bool nan = ((h >> 10) & 0x1F) == 0x1F && (h & 0x3FF) != 0;
    if (nan) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;
      continue;
    }
    ASSERT_EQ(double(f), fp16Value(static_cast<uint16_t>(h))) << std::hex << h;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;
    ASSERT_EQ(floatToFp16(f), h) << "round trip of code " << std::hex << h;
  }
}

TEST(HalfFloat, FloatToFp16RoundsToNearestEven) {
  for (float v : testFloats()) ASSERT_EQ(floatToFp16(v), referenceFp16(v)) << std::hexfloat << v;
}

TEST(HalfFloat, FloatToBf16RoundsToNearestEven) {
  for (float v : testFloats()) ASSERT_EQ(floatToBf16(v), referenceBf16(v)) << std::hexfloat << v;
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    float f = bf16ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(floatToBf16(f), h) << std::hex << h;
  }
}

TEST(HalfFloat, SpecialValuesKeepTheirKind) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(floatToFp16(inf), 0x7C00);
  EXPECT_EQ(floatToFp16(-inf), 0xFC00);
  EXPECT_EQ(floatToBf16(inf), 0x7F80);
  EXPECT_EQ(floatToBf16(-inf), 0xFF80);
  // NaNs whose payload sits only in the low bits must not become Inf.
  for (uint32_t bits : {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu}) {
    float nan = fromBits(bits);
    EXPECT_TRUE(std::isnan(fp16ToFloat(floatToFp16(nan)))) << std::hex << bits;
    EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(nan)))) << std::hex << bits;
    EXPECT_EQ(std::signbit(fp16ToFloat(floatToFp16(nan))), (bits >> 31) != 0);
    EXPECT_EQ(std::signbit(bf16ToFloat(floatToBf16(nan))), (bits >> 31) != 0);
  }
}

}  // namespace
}  // namespace tapestry::common
