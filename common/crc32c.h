#pragma once
// CRC32C (Castagnoli), hardware-accelerated (SSE4.2) where the CPU has it.
// Chaining: crc32c(b, nb, crc32c(a, na)) == crc32c(a+b, na+nb).
#include <cstddef>
#include <cstdint>

namespace tapestry::common {

uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

// The portable table-driven implementation; the reference in tests.
uint32_t crc32cPortable(const void* data, size_t size, uint32_t crc = 0);

}  // namespace tapestry::common
