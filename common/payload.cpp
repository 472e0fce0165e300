#include "common/payload.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "common/crc32c.h"
#include "common/error.h"
#include "common/frame.h"

namespace tapestry::common {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the FP32 payload path assumes a little-endian host");

inline uint32_t floatBits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof(b));
  return b;
}

inline float bitsFloat(uint32_t b) {
  float v;
  std::memcpy(&v, &b, sizeof(v));
  return v;
}

inline bool allFinite(const float* v, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad |= (floatBits(v[i]) & 0x7F800000u) == 0x7F800000u;
  return bad == 0;
}

template <uint16_t (*Encode)(float)>
void encode16(const float* values, size_t count, uint8_t* out) {
  for (size_t i = 0; i < count; ++i) {
    uint16_t h = Encode(values[i]);
    out[2 * i] = static_cast<uint8_t>(h);
    out[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
}

// Back to front, so `bytes` may sit at the start of `dst` (in-place widening).
template <float (*Decode)(uint16_t)>
void decode16(const uint8_t* bytes, size_t count, float* dst) {
  for (size_t i = count; i-- > 0;) {
    uint16_t h = static_cast<uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
    dst[i] = Decode(h);
  }
}

// Largest scale a receiver accepts: q * scale stays finite for any int8 q.
constexpr float kMaxBlockScale = FLT_MAX / 128.0f;

size_t blockCount(uint64_t elements, uint32_t block_elements) {
  return static_cast<size_t>(elements / block_elements + (elements % block_elements != 0));
}

void encodeInt8Blocks(const float* values, size_t count, uint32_t block_elements, uint8_t* out) {
  for (size_t start = 0; start < count; start += block_elements) {
    const size_t n = std::min<size_t>(block_elements, count - start);
    const float* x = values + start;
    float absmax = 0.0f;
    bool finite = true;
    for (size_t i = 0; i < n; ++i) {
      finite = finite && std::isfinite(x[i]);
      absmax = std::max(absmax, std::fabs(x[i]));
    }
    const float scale = finite ? absmax / 127.0f : std::numeric_limits<float>::quiet_NaN();
    std::memcpy(out, &scale, sizeof(scale));
    out += kBlockScaleBytes;
    for (size_t i = 0; i < n; ++i) {
      double q = 0.0;
      if (finite && scale > 0.0f) q = std::clamp(std::nearbyint(double(x[i]) / double(scale)), -127.0, 127.0);
      out[i] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
    out += n;
  }
}

// Decodes whole blocks; kNonFinite for a scale that is NaN/Inf or so large
// that a value could overflow. `bytes` must not overlap `dst`.
std::error_code decodeInt8Blocks(const uint8_t* bytes, size_t count, uint32_t block_elements, float* dst) {
  for (size_t start = 0; start < count; start += block_elements) {
    const size_t n = std::min<size_t>(block_elements, count - start);
    float scale;
    std::memcpy(&scale, bytes, sizeof(scale));
    if (!(std::fabs(scale) <= kMaxBlockScale)) return Errc::kNonFinite;
    bytes += kBlockScaleBytes;
    for (size_t i = 0; i < n; ++i) dst[start + i] = static_cast<float>(static_cast<int8_t>(bytes[i])) * scale;
    bytes += n;
  }
  return {};
}

}  // namespace

size_t bytesPerElement(proto::DType dtype) {
  switch (dtype) {
    case proto::DTYPE_FP32: return 4;
    case proto::DTYPE_BF16:
    case proto::DTYPE_FP16: return 2;
    case proto::DTYPE_INT8_BLOCK: return 1;
    default: return 0;
  }
}

size_t chunkCount(uint64_t elements, uint32_t chunk_elements) {
  if (chunk_elements == 0) return 0;
  return static_cast<size_t>(elements / chunk_elements + (elements % chunk_elements != 0));
}

size_t chunkElementCount(const proto::PayloadHeader& header, size_t index) {
  uint64_t per = header.chunk_elements();
  if (per == 0 || index >= chunkCount(header.element_count(), header.chunk_elements())) return 0;
  uint64_t start = per * index;
  return static_cast<size_t>(std::min<uint64_t>(per, header.element_count() - start));
}

size_t chunkByteCount(const proto::PayloadHeader& header, size_t index) {
  const size_t count = chunkElementCount(header, index);
  if (header.dtype() == proto::DTYPE_INT8_BLOCK) {
    if (header.block_elements() == 0) return 0;
    return count + blockCount(count, header.block_elements()) * kBlockScaleBytes;
  }
  return count * bytesPerElement(header.dtype());
}

EncodedPayload EncodedPayload::encode(proto::DType dtype, const float* values, size_t count, uint32_t chunk_elements,
                                      uint32_t block_elements) {
  size_t bpe = bytesPerElement(dtype);
  if (bpe == 0)
    throw std::invalid_argument("payload dtype " + proto::DType_Name(dtype) +
                                " is not supported; use DTYPE_FP32, DTYPE_BF16, DTYPE_FP16 or DTYPE_INT8_BLOCK");
  if (chunk_elements == 0 || chunk_elements > kMaxChunkElements)
    throw std::invalid_argument("payload chunk_elements " + std::to_string(chunk_elements) + " must be in [1, " +
                                std::to_string(kMaxChunkElements) + "]");
  const bool int8 = dtype == proto::DTYPE_INT8_BLOCK;
  if (int8 && (block_elements == 0 || block_elements > kMaxBlockElements || chunk_elements % block_elements != 0))
    throw std::invalid_argument("int8 payload block_elements " + std::to_string(block_elements) + " must be in [1, " +
                                std::to_string(kMaxBlockElements) + "] and divide chunk_elements " +
                                std::to_string(chunk_elements));
  if (count > kMaxPayloadElements)
    throw std::invalid_argument("payload of " + std::to_string(count) + " elements exceeds the limit of " +
                                std::to_string(kMaxPayloadElements));
  if (count > 0 && values == nullptr) throw std::invalid_argument("payload values are null");

  EncodedPayload p;
  p.header_.set_dtype(dtype);
  p.header_.set_element_count(count);
  p.header_.set_chunk_elements(chunk_elements);
  if (int8) p.header_.set_block_elements(block_elements);
  if (dtype == proto::DTYPE_FP32) {
    p.base_ = reinterpret_cast<const uint8_t*>(values);
  } else if (int8) {
    p.owned_.resize(count + blockCount(count, block_elements) * kBlockScaleBytes);
    encodeInt8Blocks(values, count, block_elements, p.owned_.data());
  } else {
    p.owned_.resize(count * bpe);
    if (dtype == proto::DTYPE_BF16)
      encode16<floatToBf16>(values, count, p.owned_.data());
    else
      encode16<floatToFp16>(values, count, p.owned_.data());
  }
  return p;
}

std::pair<const uint8_t*, size_t> EncodedPayload::chunk(size_t index) const {
  size_t n = chunkCount(header_.element_count(), header_.chunk_elements());
  if (index >= n)
    throw std::out_of_range("payload chunk " + std::to_string(index) + " of " + std::to_string(n));
  // Every chunk but the last is full, so chunk 0's size is the stride.
  size_t offset = index * chunkByteCount(header_, 0);
  // Owned bytes are looked up here rather than cached, so copies stay valid.
  const uint8_t* base = header_.dtype() == proto::DTYPE_FP32 ? base_ : owned_.data();
  return {base + offset, chunkByteCount(header_, index)};
}

std::error_code validatePayloadHeader(const proto::PayloadHeader& header, uint64_t expected_elements) {
  size_t bpe = bytesPerElement(header.dtype());
  if (bpe == 0) return Errc::kUnsupportedDtype;
  if (header.element_count() != expected_elements) return Errc::kShapeMismatch;
  if (header.element_count() > kMaxPayloadElements) return Errc::kFrameTooLarge;
  if (header.chunk_elements() == 0) return Errc::kShapeMismatch;
  if (header.dtype() == proto::DTYPE_INT8_BLOCK) {
    if (header.block_elements() == 0 || header.block_elements() > kMaxBlockElements ||
        header.chunk_elements() % header.block_elements() != 0)
      return Errc::kShapeMismatch;
  } else if (header.block_elements() != 0) {
    return Errc::kShapeMismatch;
  }
  if (header.chunk_elements() > kMaxChunkElements) return Errc::kFrameTooLarge;
  const uint64_t full_chunk_bytes =
      static_cast<uint64_t>(header.chunk_elements()) * bpe +
      (header.dtype() == proto::DTYPE_INT8_BLOCK ? header.chunk_elements() / header.block_elements() * kBlockScaleBytes
                                                 : 0);
  if (full_chunk_bytes > kMaxChunkBytes) return Errc::kFrameTooLarge;
  return {};
}

namespace {

std::error_code checkChunkSize(const proto::PayloadHeader& header, size_t index, size_t size) {
  if (bytesPerElement(header.dtype()) == 0) return Errc::kUnsupportedDtype;
  const size_t expected = chunkByteCount(header, index);
  if (chunkElementCount(header, index) == 0 || expected == 0 || size != expected) return Errc::kShapeMismatch;
  return {};
}

}  // namespace

std::error_code verifyChunk(const proto::PayloadHeader& header, size_t index, size_t size, bool intact) {
  if (auto ec = checkChunkSize(header, index, size)) return ec;
  if (!intact) return Errc::kChecksumMismatch;
  return {};
}

std::error_code decodeChunk(const proto::PayloadHeader& header, size_t index, const uint8_t* bytes, size_t size,
                            float* dst) {
  if (auto ec = checkChunkSize(header, index, size)) return ec;
  const size_t count = chunkElementCount(header, index);
  switch (header.dtype()) {
    case proto::DTYPE_FP32:
      if (reinterpret_cast<const void*>(bytes) != dst) std::memmove(dst, bytes, size);
      break;
    case proto::DTYPE_BF16: decode16<bf16ToFloat>(bytes, count, dst); break;
    case proto::DTYPE_FP16: decode16<fp16ToFloat>(bytes, count, dst); break;
    case proto::DTYPE_INT8_BLOCK: {
      // Blocks interleave scales with values, so in-place widening goes
      // through a copy of the chunk.
      const auto* out = reinterpret_cast<const uint8_t*>(dst);
      const bool overlaps = bytes < out + count * sizeof(float) && out < bytes + size;
      std::vector<uint8_t> copy;
      if (overlaps) copy.assign(bytes, bytes + size);
      if (auto ec = decodeInt8Blocks(overlaps ? copy.data() : bytes, count, header.block_elements(), dst)) return ec;
      break;
    }
    default: return Errc::kUnsupportedDtype;
  }
  if (!allFinite(dst, count)) return Errc::kNonFinite;
  return {};
}

uint16_t floatToBf16(float v) {
  uint32_t b = floatBits(v);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((b >> 16) | 0x0040u);  // quiet NaN
  b += 0x7FFFu + ((b >> 16) & 1u);
  return static_cast<uint16_t>(b >> 16);
}

float bf16ToFloat(uint16_t v) { return bitsFloat(static_cast<uint32_t>(v) << 16); }

uint16_t floatToFp16(float v) {
  uint32_t x = floatBits(v);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7FFFFFFFu;
  if (x >= 0x7F800000u)  // Inf stays Inf, NaN stays a quiet NaN
    return static_cast<uint16_t>(sign | 0x7C00u | (x > 0x7F800000u ? 0x0200u | ((x >> 13) & 0x3FFu) : 0u));
  if (x >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to Inf
  if (x >= 0x38800000u) {                                               // normal in fp16
    x += 0xC8000FFFu + ((x >> 13) & 1u);  // rebias exponent by -112, round to nearest even
    return static_cast<uint16_t>(sign | (x >> 13));
  }
  uint32_t exp = x >> 23;
  if (exp < 102) return sign;  // below 2^-25: rounds to zero
  // fp16 subnormal in units of 2^-24; rounding up may carry into the smallest normal.
  uint32_t mant = (x & 0x7FFFFFu) | 0x800000u;
  uint32_t shift = 126 - exp;
  uint32_t r = mant >> shift;
  uint32_t rem = mant & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (r & 1u))) ++r;
  return static_cast<uint16_t>(sign | r);
}

float fp16ToFloat(uint16_t v) {
  uint32_t sign = static_cast<uint32_t>(v & 0x8000u) << 16;
  uint32_t exp = (v >> 10) & 0x1Fu;
  uint32_t mant = v & 0x3FFu;
  if (exp == 0x1F) return bitsFloat(sign | 0x7F800000u | (mant << 13));
  if (exp == 0) {
    if (mant == 0) return bitsFloat(sign);
    exp = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --exp;
    }
    return bitsFloat(sign | (exp << 23) | ((mant & 0x3FFu) << 13));
  }
  return bitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

}  // namespace tapestry::common
