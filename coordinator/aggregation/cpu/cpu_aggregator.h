#pragma once
// CPU backend and the reference for every other one. The running sum is fp32
// and each element is only ever touched by one thread, so results do not
// depend on the thread count. Calls above kParallelThreshold elements are
// split over a persistent pool in 64-byte-aligned ranges; smaller ones run
// inline, where waking threads would cost more than the loop. finalize() is
// one pass per cache-sized block: mean, server update, clear.
// accumulateEncoded() checks before it folds, one L1-sized tile at a time
// (a max over the exponent bits; only the scales for int8), so the encoded
// bytes come from memory once. A thread that meets a bad tile folds the
// stand-in from there to the end of its range.
#include <cstddef>
#include <string>
#include <system_error>
#include <vector>

#include "coordinator/aggregation/aggregator.h"
#include "coordinator/aggregation/cpu/thread_pool.h"

namespace tapestry::coordinator::cpu {

class CpuAggregator final : public Aggregator {
 public:
  static constexpr size_t kParallelThreshold = size_t{1} << 18;

  // threads counts the calling thread; 0 = one per hardware thread.
  explicit CpuAggregator(unsigned threads);

  std::string backendName() const override;
  void reset(size_t elements) override;
  void accumulate(size_t offset, const float* src, size_t count, float weight) override;
  std::error_code accumulateEncoded(size_t offset, EncodedDType dtype, const uint8_t* bytes, size_t count, float weight,
                                    uint32_t block_elements, const float* stand_in) override;
  void finalize(double total_weight, const ServerOptimizerSettings& settings, float* consensus,
                const ServerOptimizerState& state) override;
  using Aggregator::finalize;

  unsigned threads() const { return pool_.threads(); }

 private:
  // Calls body(begin, end) over [0, count) of a range starting at sum index
  // `base`, in parallel when count is large.
  template <typename Body>
  void forRanges(size_t base, size_t count, const Body& body);

  // Splits [0, count) into one range per thread whose boundaries are
  // multiples of `granule` in chunk indices (or of kAlignElements in sum
  // indices when granule is 0) and calls body(part, parts, begin, end) for
  // every part, empty ones included.
  template <typename Body>
  void forParts(size_t base, size_t count, size_t granule, const Body& body);

  std::vector<float> sum_;
  ThreadPool pool_;
};

}  // namespace tapestry::coordinator::cpu
