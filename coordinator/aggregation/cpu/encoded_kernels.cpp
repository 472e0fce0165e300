#include "coordinator/aggregation/cpu/encoded_kernels.h"

#include <algorithm>

#include "coordinator/aggregation/vector_dispatch.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define TAPESTRY_X86_F16C 1
#endif

namespace tapestry::coordinator::cpu {
namespace {

TAPESTRY_VECTOR_CLONES void foldFp32(float* __restrict dst, const uint8_t* __restrict src, size_t count, float weight) {
  for (size_t i = 0; i < count; ++i) dst[i] += weight * loadF32(src + 4 * i);
}

TAPESTRY_VECTOR_CLONES void foldBf16(float* __restrict dst, const uint8_t* __restrict src, size_t count, float weight) {
  for (size_t i = 0; i < count; ++i) dst[i] += weight * bf16BitsToFloat(loadU16(src + 2 * i));
}

TAPESTRY_VECTOR_CLONES void foldInt8(float* __restrict dst, const int8_t* __restrict q, size_t count, float scale,
                                     float weight) {
  for (size_t i = 0; i < count; ++i) dst[i] += weight * (static_cast<float>(q[i]) * scale);
}

void foldFp16Scalar(float* __restrict dst, const uint8_t* __restrict src, size_t count, float weight) {
  for (size_t i = 0; i < count; ++i) dst[i] += weight * fp16BitsToFloat(loadU16(src + 2 * i));
}

#ifdef TAPESTRY_X86_F16C
// fp16 needs the F16C conversion, which target_clones' avx2 level lacks, so
// these two are written with intrinsics and picked by foldFp16 below.
__attribute__((target("avx512f"))) void foldFp16Avx512(float* dst, const uint8_t* src, size_t count, float weight) {
  const __m512 w = _mm512_set1_ps(weight);
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    // The maskz form: the plain one trips GCC 12's -Wmaybe-uninitialized.
    const __m512 x = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i)));
    _mm512_storeu_ps(dst + i, _mm512_add_ps(_mm512_loadu_ps(dst + i), _mm512_mul_ps(w, x)));
  }
  foldFp16Scalar(dst + i, src + 2 * i, count - i, weight);
}

__attribute__((target("avx2,f16c"))) void foldFp16Avx2(float* dst, const uint8_t* src, size_t count, float weight) {
  const __m256 w = _mm256_set1_ps(weight);
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i)));
    _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(dst + i), _mm256_mul_ps(w, x)));
  }
  foldFp16Scalar(dst + i, src + 2 * i, count - i, weight);
}
#endif

using Fp16Fold = void (*)(float*, const uint8_t*, size_t, float);

#ifdef TAPESTRY_X86_F16C
// CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports does not know "f16c").
bool cpuHasF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
}
#endif

Fp16Fold pickFp16Fold() {
#ifdef TAPESTRY_X86_F16C
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return foldFp16Avx512;
  if (__builtin_cpu_supports("avx2") && cpuHasF16c()) return foldFp16Avx2;
#endif
  return foldFp16Scalar;
}

void foldFp16(float* dst, const uint8_t* src, size_t count, float weight) {
  static const Fp16Fold fold = pickFp16Fold();
  fold(dst, src, count, weight);
}

TAPESTRY_VECTOR_CLONES uint32_t maxAbsBits32(const uint8_t* __restrict src, size_t count) {
  uint32_t most = 0;
  for (size_t i = 0; i < count; ++i) most = std::max(most, loadU32(src + 4 * i) & 0x7FFFFFFFu);
  return most;
}

TAPESTRY_VECTOR_CLONES uint32_t maxAbsBits16(const uint8_t* __restrict src, size_t count) {
  uint16_t most = 0;
  for (size_t i = 0; i < count; ++i) most = std::max<uint16_t>(most, loadU16(src + 2 * i) & 0x7FFFu);
  return most;
}

// One loop over two tiles: folds tile t (already checked, and in L1 since
// its check) while taking the largest |bits| of tile t+1, so the payload and
// the sum stream from memory together, as in a plain fold. n values each.
TAPESTRY_VECTOR_CLONES uint32_t foldFp32CheckNext(float* __restrict dst, const uint8_t* __restrict src,
                                                  const uint8_t* __restrict next, size_t n, float weight) {
  uint32_t most = 0;
  for (size_t i = 0; i < n; ++i) {
    dst[i] += weight * loadF32(src + 4 * i);
    most = std::max(most, loadU32(next + 4 * i) & 0x7FFFFFFFu);
  }
  return most;
}

TAPESTRY_VECTOR_CLONES uint32_t foldBf16CheckNext(float* __restrict dst, const uint8_t* __restrict src,
                                                  const uint8_t* __restrict next, size_t n, float weight) {
  uint16_t most = 0;
  for (size_t i = 0; i < n; ++i) {
    dst[i] += weight * bf16BitsToFloat(loadU16(src + 2 * i));
    most = std::max<uint16_t>(most, loadU16(next + 2 * i) & 0x7FFFu);
  }
  return most;
}

// Calls body(block_start, first, last) for each int8 block overlapping
// [begin, end), with [first, last) the overlap in chunk indices.
template <typename Body>
void forInt8Blocks(size_t begin, size_t end, uint32_t block_elements, const Body& body) {
  for (size_t block = begin / block_elements; block * block_elements < end; ++block) {
    const size_t start = block * block_elements;
    body(block * (block_elements + kInt8ScaleBytes), std::max(begin, start), std::min(end, start + block_elements));
  }
}

}  // namespace

void foldEncodedRange(float* dst, EncodedDType dtype, const uint8_t* bytes, size_t begin, size_t end, float weight,
                      uint32_t block_elements) {
  if (begin >= end) return;
  const size_t count = end - begin;
  switch (dtype) {
    case EncodedDType::kFp32: foldFp32(dst + begin, bytes + 4 * begin, count, weight); return;
    case EncodedDType::kBf16: foldBf16(dst + begin, bytes + 2 * begin, count, weight); return;
    case EncodedDType::kFp16: foldFp16(dst + begin, bytes + 2 * begin, count, weight); return;
    case EncodedDType::kInt8Block:
      forInt8Blocks(begin, end, block_elements, [&](size_t at, size_t first, size_t last) {
        const float scale = loadF32(bytes + at);
        const auto* q = reinterpret_cast<const int8_t*>(bytes + at + kInt8ScaleBytes);
        const size_t start = first / block_elements * block_elements;
        foldInt8(dst + first, q + (first - start), last - first, scale, weight);
      });
      return;
  }
}

namespace {

bool encodedRangeFinite(EncodedDType dtype, const uint8_t* bytes, size_t begin, size_t end, uint32_t block_elements) {
  const size_t count = end - begin;
  switch (dtype) {
    case EncodedDType::kFp32: return fp32BitsFinite(maxAbsBits32(bytes + 4 * begin, count));
    case EncodedDType::kBf16: return bf16BitsFinite(maxAbsBits16(bytes + 2 * begin, count));
    case EncodedDType::kFp16: return fp16BitsFinite(maxAbsBits16(bytes + 2 * begin, count));
    case EncodedDType::kInt8Block: {
      bool ok = true;
      forInt8Blocks(begin, end, block_elements,
                    [&](size_t at, size_t, size_t) { ok = ok && int8ScaleAcceptable(loadF32(bytes + at)); });
      return ok;
    }
  }
  return false;
}

// 16 KiB of fp32 input and 16 KiB of the sum: both stay in L1 between the
// check and the fold.
constexpr size_t kTileElements = 4096;

}  // namespace

size_t checkedTileElements(EncodedDType dtype, uint32_t block_elements) {
  if (dtype != EncodedDType::kInt8Block) return kTileElements;
  return std::max<size_t>(1, kTileElements / block_elements) * block_elements;
}

size_t foldCheckedRange(float* dst, EncodedDType dtype, const uint8_t* bytes, size_t begin, size_t end, float weight,
                        uint32_t block_elements) {
  const size_t tile = checkedTileElements(dtype, block_elements);
  if (begin >= end) return end;
  if (dtype == EncodedDType::kFp32 || dtype == EncodedDType::kBf16) {
    // Software-pipelined: tile t is folded in the same loop that checks
    // tile t+1; a tile is still only folded once its check has passed.
    const bool fp32 = dtype == EncodedDType::kFp32;
    const size_t width = fp32 ? 4 : 2;
    size_t at = begin;
    size_t stop = std::min(end, at + tile);
    if (!encodedRangeFinite(dtype, bytes, at, stop, block_elements)) return at;
    while (stop - at == tile && stop + tile <= end) {
      const uint8_t* src = bytes + width * at;
      const uint8_t* next = bytes + width * stop;
      const bool ok = fp32 ? fp32BitsFinite(foldFp32CheckNext(dst + at, src, next, tile, weight))
                           : bf16BitsFinite(foldBf16CheckNext(dst + at, src, next, tile, weight));
      at = stop;
      stop += tile;
      if (!ok) return at;
    }
    // The tile in hand is checked; what is left after it goes tile by tile.
    foldEncodedRange(dst, dtype, bytes, at, stop, weight, block_elements);
    at = stop;
    for (; at < end; at += tile) {
      const size_t last = std::min(end, at + tile);
      if (!encodedRangeFinite(dtype, bytes, at, last, block_elements)) return at;
      foldEncodedRange(dst, dtype, bytes, at, last, weight, block_elements);
    }
    return end;
  }
  for (size_t at = begin; at < end; at += tile) {
    const size_t stop = std::min(end, at + tile);
    if (!encodedRangeFinite(dtype, bytes, at, stop, block_elements)) return at;
    foldEncodedRange(dst, dtype, bytes, at, stop, weight, block_elements);
  }
  return end;
}

}  // namespace tapestry::coordinator::cpu
