#pragma once
// Seeded splits of one labelled dataset over K simulated workers: an IID
// split, and the Dirichlet label skew of NIID-Bench (Li et al., 2022) that
// makes federations non-IID. Pure functions of (labels, options); the same
// seed gives the same split.
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "worker/ml/dataset.h"

namespace tapestry::worker {

enum class PartitionScheme { kIid, kDirichlet, kLabels };

struct PartitionOptions {
  PartitionScheme scheme = PartitionScheme::kDirichlet;
  double alpha = 0.5;  // Dirichlet concentration; small = skewed
  size_t labels_per_worker = 2;  // labels: classes each worker holds (NIID-Bench's #C=k)
  size_t workers = 4;
  uint64_t seed = 1;
  size_t min_per_worker = 10;  // Dirichlet: resample until every worker has this many
  double val_fraction = 0.1;
};

// Per worker, sorted indices into `labels`; every index appears exactly once.
// iid: a shuffled equal split. dirichlet: for each class, proportions drawn
// from Dir(alpha) over the workers (workers already holding N/K samples get
// none), resampled until every worker has >= min_per_worker. labels: each
// worker holds labels_per_worker distinct classes (every class held by
// someone, the rest drawn at random) and each class is cut evenly among its
// holders. Throws
// std::invalid_argument for workers == 0, alpha <= 0, more workers than
// samples, a label >= classes, an unreachable min_per_worker, or
// labels_per_worker outside [1, classes] or too small to cover every class, and
// std::runtime_error if no acceptable Dirichlet draw is found.
std::vector<std::vector<size_t>> partitionIndices(const std::vector<uint8_t>& labels, size_t classes,
                                                  const PartitionOptions& options);

// A worker's shard: the samples at `indices`, split by a seeded shuffle into
// train and round(val_fraction * n) validation samples (each part in index
// order). Throws std::invalid_argument unless 0 <= val_fraction < 1.
Shard splitTrainVal(const ImageDataset& data, const std::vector<size_t>& indices, double val_fraction,
                    uint64_t seed);

PartitionScheme parsePartitionScheme(const std::string& name);  // "iid" | "dirichlet" | "labels"

// `tapestry partition --data DIR --out DIR --scheme iid|dirichlet|labels
// --alpha A --per-worker C --workers K --seed S [--val-fraction F] [--min-per-worker M] [--limit N]`;
// `args` are the arguments after "partition". Writes out/worker-<k>/ shards
// and prints each worker's label histogram. Returns 0, 2 (usage, with the
// usage text) or 1 (error, with its message); never throws.
int runPartitionCommand(const std::vector<std::string>& args);
int runPartitionCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace tapestry::worker
