#pragma once
// Seeded randomness with results fixed by the C++ standard (mt19937_64,
// seed_seq, our own bounded draw and shuffle), so data orders and splits are
// the same with every standard library.
#include <cstddef>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace tapestry::worker {

// An engine for the independent stream `stream` of `seed`.
inline std::mt19937_64 seededEngine(uint64_t seed, uint64_t stream) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)};
  return std::mt19937_64(seq);
}

// An engine for the sub-stream `substream` of stream `stream` of `seed`.
inline std::mt19937_64 seededEngine(uint64_t seed, uint64_t stream, uint64_t substream) {
  std::seed_seq seq{static_cast<uint32_t>(seed),      static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(stream),    static_cast<uint32_t>(stream >> 32),
                    static_cast<uint32_t>(substream), static_cast<uint32_t>(substream >> 32)};
  return std::mt19937_64(seq);
}

// Uniform in [0, n) for n > 0, by rejection (no modulo bias).
inline uint64_t uniformBelow(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

template <typename T>
void shuffleInPlace(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniformBelow(rng, i)]);
}

}  // namespace tapestry::worker
