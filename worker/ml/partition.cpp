#include "worker/ml/partition.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "worker/ml/random.h"

namespace tapestry::worker {
namespace {

constexpr int kMaxDirichletAttempts = 1000;
constexpr uint64_t kSplitStream = 0x5eed;  // stream of the train/val split, apart from the partition's

std::vector<std::vector<size_t>> iidSplit(size_t n, size_t workers, std::mt19937_64& rng) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  shuffleInPlace(order, rng);
  std::vector<std::vector<size_t>> parts(workers);
  size_t next = 0;
  for (size_t k = 0; k < workers; ++k) {
    const size_t take = n / workers + (k < n % workers ? 1 : 0);
    parts[k].assign(order.begin() + static_cast<std::ptrdiff_t>(next),
                    order.begin() + static_cast<std::ptrdiff_t>(next + take));
    next += take;
  }
  return parts;
}

// One NIID-Bench draw: each class is cut among the workers by Dir(alpha)
// proportions, zeroed for workers that already hold their N/K share.
std::vector<std::vector<size_t>> dirichletDraw(const std::vector<std::vector<size_t>>& by_class, size_t n,
                                               const PartitionOptions& options, std::mt19937_64& rng) {
  const size_t workers = options.workers;
  std::vector<std::vector<size_t>> parts(workers);
  std::vector<double> proportions(workers);
  std::gamma_distribution<double> gamma(options.alpha, 1.0);
  for (const auto& members : by_class) {
    if (members.empty()) continue;
    std::vector<size_t> idx = members;
    shuffleInPlace(idx, rng);
    double sum = 0;
    for (size_t k = 0; k < workers; ++k) {
      const double share = gamma(rng);
      proportions[k] = static_cast<double>(parts[k].size()) * static_cast<double>(workers) <
                               static_cast<double>(n)
                           ? share
                           : 0.0;
      sum += proportions[k];
    }
    if (!(sum > 0)) {
      // Every eligible share underflowed (tiny alpha): the limit of Dir(alpha)
      // puts the whole class on one worker, chosen among the eligible ones.
      std::vector<size_t> eligible;
      for (size_t k = 0; k < workers; ++k) {
        if (parts[k].size() * workers < n) eligible.push_back(k);
      }
      std::fill(proportions.begin(), proportions.end(), 0.0);
      proportions[eligible[uniformBelow(rng, eligible.size())]] = 1.0;
      sum = 1.0;
    }
    double cumulative = 0;
    size_t begin = 0;
    for (size_t k = 0; k < workers; ++k) {
      cumulative += proportions[k] / sum;
      size_t end = k + 1 == workers ? idx.size()
                                    : std::min(idx.size(), static_cast<size_t>(cumulative * static_cast<double>(idx.size())));
      end = std::max(end, begin);
      parts[k].insert(parts[k].end(), idx.begin() + static_cast<std::ptrdiff_t>(begin),
                      idx.begin() + static_cast<std::ptrdiff_t>(end));
      begin = end;
    }
  }
  return parts;
}

// NIID-Bench's "#C=k" skew: worker k holds `per_worker` distinct classes.
// The first `classes` assignments walk a shuffled class list so that every
// class has a holder; the remaining slots take random classes the worker
// lacks. Each class is then cut into equal parts among its holders.
std::vector<std::vector<size_t>> labelSplit(const std::vector<std::vector<size_t>>& by_class, size_t workers,
                                            size_t per_worker, std::mt19937_64& rng) {
  const size_t classes = by_class.size();
  std::vector<size_t> order(classes);
  for (size_t c = 0; c < classes; ++c) order[c] = c;
  shuffleInPlace(order, rng);
  std::vector<std::vector<bool>> holds(workers, std::vector<bool>(classes, false));
  std::vector<std::vector<size_t>> holders(classes);
  for (size_t j = 0; j < per_worker; ++j) {
    for (size_t k = 0; k < workers; ++k) {
      const size_t slot = j * workers + k;
      size_t c = order[slot % classes];
      if (slot >= classes || holds[k][c]) {
        std::vector<size_t> missing;
        for (size_t m = 0; m < classes; ++m)
          if (!holds[k][m]) missing.push_back(m);
        c = missing[uniformBelow(rng, missing.size())];
      }
      holds[k][c] = true;
      holders[c].push_back(k);
    }
  }
  std::vector<std::vector<size_t>> parts(workers);
  for (size_t c = 0; c < classes; ++c) {
    std::vector<size_t> idx = by_class[c];
    shuffleInPlace(idx, rng);
    const size_t h = holders[c].size();
    for (size_t i = 0; i < h; ++i) {
      const size_t begin = idx.size() * i / h, end = idx.size() * (i + 1) / h;
      parts[holders[c][i]].insert(parts[holders[c][i]].end(), idx.begin() + static_cast<std::ptrdiff_t>(begin),
                                  idx.begin() + static_cast<std::ptrdiff_t>(end));
    }
  }
  return parts;
}

}  // namespace

std::vector<std::vector<size_t>> partitionIndices(const std::vector<uint8_t>& labels, size_t classes,
                                                  const PartitionOptions& options) {
  const size_t n = labels.size();
  const size_t workers = options.workers;
  if (workers == 0) throw std::invalid_argument("partition: workers must be at least 1");
  if (workers > n) {
    throw std::invalid_argument("partition: cannot split " + std::to_string(n) + " samples over " +
                                std::to_string(workers) + " workers; use fewer workers or more samples");
  }
  std::vector<std::vector<size_t>> by_class(classes);
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] >= classes) {
      throw std::invalid_argument("partition: sample " + std::to_string(i) + " has label " +
                                  std::to_string(labels[i]) + ", out of range for " + std::to_string(classes) +
                                  " classes");
    }
    by_class[labels[i]].push_back(i);
  }

  std::mt19937_64 rng = seededEngine(options.seed, 0);
  std::vector<std::vector<size_t>> parts;
  if (options.scheme == PartitionScheme::kIid) {
    parts = iidSplit(n, workers, rng);
  } else if (options.scheme == PartitionScheme::kLabels) {
    const size_t c = options.labels_per_worker;
    if (c == 0 || c > classes) {
      throw std::invalid_argument("partition: labels per worker must be between 1 and " + std::to_string(classes) +
                                  ", got " + std::to_string(c));
    }
    if (c * workers < classes) {
      throw std::invalid_argument("partition: " + std::to_string(workers) + " workers holding " + std::to_string(c) +
                                  " classes each cannot cover all " + std::to_string(classes) +
                                  " classes; raise --per-worker or --workers");
    }
    parts = labelSplit(by_class, workers, c, rng);
    for (size_t k = 0; k < workers; ++k) {
      if (parts[k].empty()) {
        throw std::invalid_argument("partition: worker " + std::to_string(k) +
                                    " would get no samples (its classes are too small); use fewer workers");
      }
    }
  } else {
    if (!(options.alpha > 0) || !std::isfinite(options.alpha)) {
      throw std::invalid_argument("partition: Dirichlet alpha must be a positive number, got " +
                                  std::to_string(options.alpha) + " (try 0.1 for strong skew, 100 for near-IID)");
    }
    if (options.min_per_worker > n / workers) {
      throw std::invalid_argument("partition: min_per_worker " + std::to_string(options.min_per_worker) + " times " +
                                  std::to_string(workers) + " workers exceeds the " + std::to_string(n) +
                                  " samples; lower min_per_worker or the number of workers");
    }
    for (int attempt = 0;; ++attempt) {
      if (attempt == kMaxDirichletAttempts) {
        throw std::runtime_error("partition: no Dirichlet(alpha=" + std::to_string(options.alpha) + ") split in " +
                                 std::to_string(kMaxDirichletAttempts) + " draws gave every worker at least " +
                                 std::to_string(options.min_per_worker) +
                                 " samples; raise alpha or lower min_per_worker");
      }
      parts = dirichletDraw(by_class, n, options, rng);
      const auto smallest = std::min_element(parts.begin(), parts.end(), [](const auto& a, const auto& b) {
        return a.size() < b.size();
      });
      if (smallest->size() >= options.min_per_worker) break;
    }
  }
  for (auto& part : parts) std::sort(part.begin(), part.end());
  return parts;
}

Shard splitTrainVal(const ImageDataset& data, const std::vector<size_t>& indices, double val_fraction,
                    uint64_t seed) {
  if (!(val_fraction >= 0 && val_fraction < 1)) {
    throw std::invalid_argument("validation fraction must be in [0, 1), got " + std::to_string(val_fraction));
  }
  std::vector<size_t> order = indices;
  std::mt19937_64 rng = seededEngine(seed, kSplitStream);
  shuffleInPlace(order, rng);
  const auto val_count = static_cast<std::ptrdiff_t>(std::llround(val_fraction * static_cast<double>(order.size())));
  std::vector<size_t> val(order.begin(), order.begin() + val_count);
  std::vector<size_t> train(order.begin() + val_count, order.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return Shard{subset(data, train), subset(data, val)};
}

PartitionScheme parsePartitionScheme(const std::string& name) {
  if (name == "iid") return PartitionScheme::kIid;
  if (name == "dirichlet") return PartitionScheme::kDirichlet;
  if (name == "labels") return PartitionScheme::kLabels;
  throw std::invalid_argument("unknown partition scheme '" + name + "'; use \"iid\", \"dirichlet\" or \"labels\"");
}

}  // namespace tapestry::worker
