#include "coordinator/contribution_store.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace tapestry::coordinator {

ContributionStore::ContributionStore(size_t elements, size_t chunk_elements)
    : elements_(elements), chunk_elements_(chunk_elements) {
  if (chunk_elements_ == 0) throw std::invalid_argument("ContributionStore: chunk_elements must be > 0");
}

size_t ContributionStore::open() {
  const size_t chunks = (elements_ + chunk_elements_ - 1) / chunk_elements_;
  if (used_ == slots_.size()) {
    std::vector<float> slot(elements_);  // may throw std::bad_alloc: nothing changed yet
    std::vector<uint8_t> flags(chunks);
    slots_.push_back(std::move(slot));
    received_.push_back(std::move(flags));
  }
  std::fill(received_[used_].begin(), received_[used_].end(), 0);
  return used_++;
}

float* ContributionStore::chunkData(size_t slot, size_t chunk) {
  if (slot >= used_ || chunk * chunk_elements_ >= elements_) throw std::out_of_range("ContributionStore: no such chunk");
  return slots_[slot].data() + chunk * chunk_elements_;
}

void ContributionStore::received(size_t slot, size_t chunk) {
  if (slot >= used_ || chunk >= received_[slot].size()) throw std::out_of_range("ContributionStore: no such chunk");
  received_[slot][chunk] = 1;
}

void ContributionStore::combine(AggregationRule rule, double trim_fraction, const float* fill, float* out,
                                unsigned threads) {
  if (used_ == 0) throw std::logic_error("ContributionStore: no contribution to combine");
  // Chunks a slot lacks become z_r in the slot itself; then every slot is whole.
  for (size_t s = 0; s < used_; ++s)
    for (size_t c = 0; c < received_[s].size(); ++c) {
      if (received_[s][c]) continue;
      const size_t offset = c * chunk_elements_;
      const size_t n = std::min(chunk_elements_, elements_ - offset);
      std::memcpy(slots_[s].data() + offset, fill + offset, n * sizeof(float));
      received_[s][c] = 1;
    }
  std::vector<const float*> columns;
  for (size_t s = 0; s < used_; ++s) columns.push_back(slots_[s].data());
  combineRobust(rule, trim_fraction, columns, elements_, out, threads);
}

void ContributionStore::clear() { used_ = 0; }

}  // namespace tapestry::coordinator
