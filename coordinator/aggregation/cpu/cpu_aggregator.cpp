#include "coordinator/aggregation/cpu/cpu_aggregator.h"

#include <algorithm>
#include <atomic>
#include <functional>

#include "common/error.h"

#include "coordinator/aggregation/aggregator_checks.h"
#include "coordinator/aggregation/cpu/encoded_kernels.h"
#include "coordinator/aggregation/server_optimizer.h"
#include "coordinator/aggregation/vector_dispatch.h"

namespace tapestry::coordinator::cpu {
namespace {

// Ranges handed to threads start on 64-byte boundaries of the sum.
constexpr size_t kAlignElements = 16;
// finalize works block by block so the block is still in L1 when it is cleared.
constexpr size_t kFinalizeBlock = 4096;

TAPESTRY_VECTOR_CLONES void addScaled(float* __restrict dst, const float* __restrict src, size_t count,
                                      float weight) {
  for (size_t i = 0; i < count; ++i) dst[i] += weight * src[i];
}

}  // namespace

CpuAggregator::CpuAggregator(unsigned threads) : pool_(threads) {}

std::string CpuAggregator::backendName() const { return "cpu"; }

template <typename Body>
void CpuAggregator::forParts(size_t base, size_t count, size_t granule, const Body& body) {
  const unsigned threads = pool_.threads();
  if (count < kParallelThreshold || threads == 1) {
    body(0u, 1u, size_t{0}, count);
    return;
  }
  const size_t per_part = (count + threads - 1) / threads;
  // Boundaries fall on multiples of kAlignElements of the sum's index so no
  // two threads write to one cache line, or on granule multiples of the chunk.
  const auto boundary = [&](size_t part) {
    if (granule != 0) return std::min(count, (part * per_part + granule - 1) / granule * granule);
    const size_t at = base + part * per_part;
    const size_t aligned = (at + kAlignElements - 1) / kAlignElements * kAlignElements;
    return std::min(count, aligned - base);
  };
  pool_.run(threads, [&](unsigned part) {
    const size_t begin = part == 0 ? 0 : boundary(part);
    const size_t end = part + 1 == threads ? count : boundary(part + 1);
    body(part, threads, begin, std::max(begin, end));
  });
}

template <typename Body>
void CpuAggregator::forRanges(size_t base, size_t count, const Body& body) {
  forParts(base, count, 0, [&](unsigned, unsigned, size_t begin, size_t end) {
    if (begin < end) body(begin, end);
  });
}

void CpuAggregator::reset(size_t elements) {
  if (sum_.size() == elements) {
    std::fill(sum_.begin(), sum_.end(), 0.0f);
  } else {
    sum_.assign(elements, 0.0f);
  }
}

void CpuAggregator::accumulate(size_t offset, const float* src, size_t count, float weight) {
  checkAccumulateArgs(sum_.size(), offset, src, count, weight);
  float* dst = sum_.data() + offset;
  forRanges(offset, count, [&](size_t begin, size_t end) { addScaled(dst + begin, src + begin, end - begin, weight); });
}

std::error_code CpuAggregator::accumulateEncoded(size_t offset, EncodedDType dtype, const uint8_t* bytes, size_t count,
                                                 float weight, uint32_t block_elements, const float* stand_in) {
  checkAccumulateEncodedArgs(sum_.size(), offset, dtype, bytes, count, weight, block_elements);
  float* dst = sum_.data() + offset;
  const size_t granule = dtype == EncodedDType::kInt8Block ? block_elements : 0;
  std::atomic<bool> rejected{false};
  forParts(offset, count, granule, [&](unsigned, unsigned, size_t begin, size_t end) {
    const size_t stopped = foldCheckedRange(dst, dtype, bytes, begin, end, weight, block_elements);
    if (stopped == end) return;
    rejected.store(true, std::memory_order_relaxed);
    if (stand_in != nullptr) addScaled(dst + stopped, stand_in + stopped, end - stopped, weight);
  });
  if (rejected.load()) return common::Errc::kNonFinite;
  return {};
}

void CpuAggregator::finalize(double total_weight, const ServerOptimizerSettings& settings, float* consensus,
                             const ServerOptimizerState& state) {
  checkFinalizeArgs(sum_.size(), total_weight, settings, consensus, state);
  const double inv_weight = 1.0 / total_weight;
  float* sum = sum_.data();
  forRanges(0, sum_.size(), [&](size_t begin, size_t end) {
    for (size_t block = begin; block < end; block += kFinalizeBlock) {
      const size_t block_end = std::min(end, block + kFinalizeBlock);
      serverUpdateRange(settings, sum, inv_weight, consensus, state, block, block_end);
      std::fill(sum + block, sum + block_end, 0.0f);
    }
  });
}

}  // namespace tapestry::coordinator::cpu
