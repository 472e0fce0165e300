#pragma once
// The payload encodings an Aggregator can fold without a separate decode
// pass, described without Protobuf (the aggregation maths stays free of it):
// the values equal proto::DType's, so `static_cast<EncodedDType>(dtype)` maps
// a validated header's dtype. Scalar decoders and the finite tests live here,
// inline, because both the CPU and the CUDA library use them.
//   fp32, bf16, fp16: little-endian values, one after another.
//   int8 block: per block of block_elements values (the last may be short) a
//   little-endian fp32 scale, then the int8 values; value = q * scale.
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tapestry::coordinator {

enum class EncodedDType : int { kFp32 = 1, kBf16 = 2, kFp16 = 3, kInt8Block = 4 };

constexpr size_t kInt8ScaleBytes = 4;
// Equal to common::kMaxBlockElements (payload.h), which headers are held to.
constexpr uint32_t kMaxInt8BlockElements = 1u << 16;
// Largest int8 scale accepted: q * scale stays finite for every int8 q.
constexpr float kMaxInt8Scale = FLT_MAX / 128.0f;

inline const char* encodedDTypeName(EncodedDType dtype) {
  switch (dtype) {
    case EncodedDType::kFp32: return "fp32";
    case EncodedDType::kBf16: return "bf16";
    case EncodedDType::kFp16: return "fp16";
    case EncodedDType::kInt8Block: return "int8_block";
  }
  return "unknown";
}

// Bytes that `count` elements take; 0 for an unknown dtype, or for int8
// blocks with block_elements == 0.
inline size_t encodedByteCount(EncodedDType dtype, size_t count, uint32_t block_elements) {
  switch (dtype) {
    case EncodedDType::kFp32: return count * 4;
    case EncodedDType::kBf16:
    case EncodedDType::kFp16: return count * 2;
    case EncodedDType::kInt8Block:
      if (block_elements == 0) return 0;
      return count + (count + block_elements - 1) / block_elements * kInt8ScaleBytes;
  }
  return 0;
}

inline uint32_t loadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline uint16_t loadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline float bitsToFloat(uint32_t b) {
  float v;
  std::memcpy(&v, &b, sizeof(v));
  return v;
}

inline float loadF32(const uint8_t* p) { return bitsToFloat(loadU32(p)); }

inline float bf16BitsToFloat(uint16_t h) { return bitsToFloat(static_cast<uint32_t>(h) << 16); }

inline float fp16BitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return bitsToFloat(sign | 0x7F800000u | (mant << 13));
  if (exp == 0) {
    if (mant == 0) return bitsToFloat(sign);
    exp = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --exp;
    }
    return bitsToFloat(sign | (exp << 23) | ((mant & 0x3FFu) << 13));
  }
  return bitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

// The largest |bits| pattern, so one compare tells whether any is NaN/Inf.
inline bool fp32BitsFinite(uint32_t max_abs_bits) { return max_abs_bits < 0x7F800000u; }
inline bool bf16BitsFinite(uint32_t max_abs_bits) { return max_abs_bits < 0x7F80u; }
inline bool fp16BitsFinite(uint32_t max_abs_bits) { return max_abs_bits < 0x7C00u; }
inline bool int8ScaleAcceptable(float scale) { return std::fabs(scale) <= kMaxInt8Scale; }  // false for NaN

}  // namespace tapestry::coordinator
