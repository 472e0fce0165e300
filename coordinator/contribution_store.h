#pragma once
// Every contribution of one round, kept whole for the robust aggregation rules
// (coordinator/aggregation/robust_rule.h), which need all K values of an
// element at once. One slot per push; chunks are decoded straight into it.
// A chunk a slot never received (its member left, or sent NaN/Inf there)
// counts as the current consensus z_r, as on the streaming mean path. Memory
// is K × P × 4 bytes; slots are kept for the next round once allocated.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "coordinator/aggregation/robust_rule.h"

namespace tapestry::coordinator {

class ContributionStore {
 public:
  ContributionStore(size_t elements, size_t chunk_elements);

  // A new slot for one push. Throws std::bad_alloc when its P floats cannot
  // be had; the store is unchanged then.
  size_t open();
  // Where chunk `chunk` of slot `slot` is decoded to (chunk_elements floats,
  // fewer for the last chunk).
  float* chunkData(size_t slot, size_t chunk);
  // Chunk `chunk` of slot `slot` now holds the member's values.
  void received(size_t slot, size_t chunk);

  size_t contributions() const { return used_; }
  size_t bytesHeld() const { return slots_.size() * elements_ * sizeof(float); }

  // out = rule over the round's contributions, element by element; `fill`
  // (z_r, P floats) stands in for every chunk a slot did not receive. Needs
  // at least one contribution. `out` may alias `fill`.
  void combine(AggregationRule rule, double trim_fraction, const float* fill, float* out, unsigned threads);
  // Empties the round (keeps the memory for the next).
  void clear();

 private:
  size_t elements_;
  size_t chunk_elements_;
  std::vector<std::vector<float>> slots_;
  std::vector<std::vector<uint8_t>> received_;  // per slot, per chunk
  size_t used_ = 0;
};

}  // namespace tapestry::coordinator
