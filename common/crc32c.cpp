#include "common/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define TAPESTRY_CRC32C_X86 1
#endif

namespace tapestry::common {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78u;  // Castagnoli, reflected

// Slice-by-8 tables: table[0] is the bytewise table, table[k][b] is the CRC of
// byte b followed by k zero bytes.
using Tables = std::array<std::array<uint32_t, 256>, 8>;

Tables makeTables() {
  Tables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    t[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; ++b)
    for (size_t k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  return t;
}

const Tables& tables() {
  static const Tables t = makeTables();  // thread-safe static initialisation
  return t;
}

inline uint64_t loadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Raw (un-inverted) state in and out.
uint32_t updatePortable(uint32_t state, const uint8_t* p, size_t n) {
  const Tables& t = tables();
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    state = (state >> 8) ^ t[0][(state ^ *p++) & 0xFF];
    --n;
  }
  while (n >= 8) {
    uint64_t word = loadLe64(p) ^ state;
    state = t[7][word & 0xFF] ^ t[6][(word >> 8) & 0xFF] ^ t[5][(word >> 16) & 0xFF] ^
            t[4][(word >> 24) & 0xFF] ^ t[3][(word >> 32) & 0xFF] ^ t[2][(word >> 40) & 0xFF] ^
            t[1][(word >> 48) & 0xFF] ^ t[0][word >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) state = (state >> 8) ^ t[0][(state ^ *p++) & 0xFF];
  return state;
}

#ifdef TAPESTRY_CRC32C_X86
// The crc32 instruction has a latency of three cycles and a throughput of
// one, so one dependent chain runs at a third of its speed. Long buffers are
// cut into three interleaved streams whose CRCs are joined afterwards by
// "shifting" a CRC over the bytes that follow it: a linear map on the 32-bit
// state, tabulated for the two stream lengths used (kLong and kShort bytes).
constexpr size_t kLong = 8192;
constexpr size_t kShort = 256;

struct ShiftTables {
  uint32_t by_long[4][256];
  uint32_t by_short[4][256];
};

// Matrix (32 columns) times vector over GF(2).
uint32_t gf2Times(const uint32_t* matrix, uint32_t vector) {
  uint32_t sum = 0;
  for (int i = 0; vector != 0; ++i, vector >>= 1)
    if (vector & 1) sum ^= matrix[i];
  return sum;
}

void gf2Square(uint32_t* square, const uint32_t* matrix) {
  for (int i = 0; i < 32; ++i) square[i] = gf2Times(matrix, matrix[i]);
}

// Tables of the map "append `bytes` zero bytes" (bytes a power of two),
// one per byte of the state.
void buildShift(uint32_t table[4][256], size_t bytes) {
  uint32_t op[32], tmp[32];
  op[0] = kPolynomial;  // one zero bit: state >> 1, xor the polynomial if bit 0 was set
  for (int i = 1; i < 32; ++i) op[i] = 1u << (i - 1);
  for (size_t bits = 1; bits < 8 * bytes; bits *= 2) {
    gf2Square(tmp, op);
    std::memcpy(op, tmp, sizeof op);
  }
  for (uint32_t b = 0; b < 256; ++b)
    for (int k = 0; k < 4; ++k) table[k][b] = gf2Times(op, b << (8 * k));
}

const ShiftTables& shiftTables() {
  static const ShiftTables t = [] {
    ShiftTables made{};
    buildShift(made.by_long, kLong);
    buildShift(made.by_short, kShort);
    return made;
  }();
  return t;
}

inline uint32_t shift(const uint32_t table[4][256], uint32_t state) {
  return table[0][state & 0xFF] ^ table[1][(state >> 8) & 0xFF] ^ table[2][(state >> 16) & 0xFF] ^
         table[3][state >> 24];
}

#if defined(__x86_64__)
// Three streams of `stride` bytes each from p; returns the joined state.
__attribute__((target("sse4.2"))) inline uint64_t threeStreams(uint64_t s0, const uint8_t* p, size_t stride,
                                                              const uint32_t table[4][256]) {
  uint64_t s1 = 0, s2 = 0;
  for (size_t i = 0; i < stride; i += 8) {
    uint64_t a, b, c;
    std::memcpy(&a, p + i, 8);
    std::memcpy(&b, p + stride + i, 8);
    std::memcpy(&c, p + 2 * stride + i, 8);
    s0 = _mm_crc32_u64(s0, a);
    s1 = _mm_crc32_u64(s1, b);
    s2 = _mm_crc32_u64(s2, c);
  }
  uint32_t joined = shift(table, static_cast<uint32_t>(s0)) ^ static_cast<uint32_t>(s1);
  return shift(table, joined) ^ static_cast<uint32_t>(s2);
}
#endif

__attribute__((target("sse4.2"))) uint32_t updateHardware(uint32_t state, const uint8_t* p, size_t n) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    state = _mm_crc32_u8(state, *p++);
    --n;
  }
#if defined(__x86_64__)
  uint64_t wide = state;
  if (n >= 3 * kShort) {
    const ShiftTables& t = shiftTables();
    for (; n >= 3 * kLong; p += 3 * kLong, n -= 3 * kLong) wide = threeStreams(wide, p, kLong, t.by_long);
    for (; n >= 3 * kShort; p += 3 * kShort, n -= 3 * kShort) wide = threeStreams(wide, p, kShort, t.by_short);
  }
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, sizeof(word));
    wide = _mm_crc32_u64(wide, word);
    p += 8;
    n -= 8;
  }
  state = static_cast<uint32_t>(wide);
#endif
  while (n >= 4) {
    uint32_t word;
    std::memcpy(&word, p, sizeof(word));
    state = _mm_crc32_u32(state, word);
    p += 4;
    n -= 4;
  }
  while (n-- > 0) state = _mm_crc32_u8(state, *p++);
  return state;
}

bool hardwareAvailable() {
  static const bool available = __builtin_cpu_supports("sse4.2");
  return available;
}
#endif

}  // namespace

uint32_t crc32cPortable(const void* data, size_t size, uint32_t crc) {
  return ~updatePortable(~crc, static_cast<const uint8_t*>(data), size);
}

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
#ifdef TAPESTRY_CRC32C_X86
  if (hardwareAvailable()) return ~updateHardware(~crc, static_cast<const uint8_t*>(data), size);
#endif
  return crc32cPortable(data, size, crc);
}

}  // namespace tapestry::common
