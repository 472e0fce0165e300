// `tapestry partition`: splits the Fashion-MNIST training set into per-worker
// shard directories and prints the label skew it produced.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <stdexcept>

#include "common/cli_args.h"
#include "worker/ml/partition.h"
#include "worker/ml/text_corpus.h"

namespace tapestry::worker {
namespace {

constexpr const char* kUsage =
    "usage: tapestry partition --out DIR [--data DIR] [--scheme iid|dirichlet|labels] [--alpha A] [--per-worker C]\n"
    "                          [--workers K] [--seed S] [--val-fraction F] [--min-per-worker M] [--limit N]\n"
    "  --data DIR           Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)\n"
    "  --out DIR            writes DIR/worker-0 ... DIR/worker-<K-1>, each a train/val shard\n"
    "  --scheme NAME        iid, dirichlet or labels (default dirichlet)\n"
    "  --alpha A            Dirichlet concentration, > 0; small = skewed (default 0.5)\n"
    "  --per-worker C       labels: classes each worker holds (default 2)\n"
    "  --workers K          number of workers (default 4)\n"
    "  --seed S             seed of the split (default 1)\n"
    "  --val-fraction F     share of each worker's samples kept for validation, in [0, 1) (default 0.1)\n"
    "  --min-per-worker M   Dirichlet: redraw until every worker has M samples (default 10)\n"
    "  --limit N            use only the first N training samples\n";

using common::UsageError;

uint64_t parseCount(const std::string& flag, const std::string& text) { return common::parseCountArg(flag, text); }
double parseReal(const std::string& flag, const std::string& text) { return common::parseRealArg(flag, text); }

std::map<std::string, std::string> parseFlags(const std::vector<std::string>& args) {
  static const char* const kKnown[] = {"data", "out", "scheme", "alpha", "workers",
                                       "seed", "val-fraction", "min-per-worker", "limit", "per-worker"};
  std::map<std::string, std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw UsageError("--" + name + " needs a value");
    }
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown)) {
      throw UsageError("unknown option --" + name);
    }
    if (!flags.emplace(name, value).second) throw UsageError("--" + name + " given twice");
  }
  if (flags.count("out") == 0) throw UsageError("--out DIR is required");
  return flags;
}

void printHistograms(const ImageDataset& data, const std::vector<std::vector<size_t>>& parts, size_t classes,
                     std::ostream& out) {
  out << std::setw(8) << "worker" << std::setw(8) << "n";
  for (size_t c = 0; c < classes; ++c) out << std::setw(7) << c;
  out << "\n";
  for (size_t k = 0; k < parts.size(); ++k) {
    std::vector<size_t> counts(classes, 0);
    for (const size_t i : parts[k]) ++counts[data.labels[i]];
    out << std::setw(8) << k << std::setw(8) << parts[k].size();
    for (const size_t count : counts) out << std::setw(7) << count;
    out << "\n";
  }
}

// Shards worker-K and above left in `out_dir` by an earlier partition over
// more workers would hold data the new shards also hold.
void refuseStaleShards(const std::string& out_dir, uint64_t workers) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> stale;
  for (const fs::directory_entry& e : fs::directory_iterator(out_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("worker-", 0) != 0 || name.size() == 7) continue;
    const std::string digits = name.substr(7);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    if (std::stoull(digits) >= workers) stale.push_back(name);
  }
  if (stale.empty()) return;
  std::sort(stale.begin(), stale.end());
  std::string names;
  for (size_t i = 0; i < stale.size() && i < 8; ++i) names += (i ? ", " : "") + stale[i];
  if (stale.size() > 8) names += ", ...";
  throw std::runtime_error(out_dir + " holds shards of an earlier partition over more workers (" + names +
                           "), whose data the new shards would share; remove them (or the whole directory) or "
                           "pick another --out");
}

}  // namespace

int runPartitionCommand(const std::vector<std::string>& args) {
  return runPartitionCommand(args, std::cout, std::cerr);
}

int runPartitionCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (!args.empty() && args[0] == "text") return runPartitionTextCommand({args.begin() + 1, args.end()}, out, err);
  if (std::find(args.begin(), args.end(), "--help") != args.end() ||
      std::find(args.begin(), args.end(), "-h") != args.end()) {
    out << kUsage;
    return 0;
  }
  PartitionOptions options;
  std::string data_dir = kFashionMnistDir, out_dir;
  uint64_t limit = 0;
  try {
    const auto flags = parseFlags(args);
    auto get = [&](const char* name) -> const std::string* {
      auto it = flags.find(name);
      return it == flags.end() ? nullptr : &it->second;
    };
    out_dir = *get("out");
    if (auto v = get("data")) data_dir = *v;
    if (auto v = get("scheme")) {
      try {
        options.scheme = parsePartitionScheme(*v);
      } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
      }
    }
    if (auto v = get("alpha")) options.alpha = parseReal("--alpha", *v);
    if (auto v = get("per-worker")) options.labels_per_worker = parseCount("--per-worker", *v);
    if (auto v = get("workers")) options.workers = parseCount("--workers", *v);
    if (auto v = get("seed")) options.seed = parseCount("--seed", *v);
    if (auto v = get("val-fraction")) options.val_fraction = parseReal("--val-fraction", *v);
    if (auto v = get("min-per-worker")) options.min_per_worker = parseCount("--min-per-worker", *v);
    if (auto v = get("limit")) {
      limit = parseCount("--limit", *v);
      if (limit == 0) throw UsageError("--limit must be at least 1");
    }
    if (options.workers == 0) throw UsageError("--workers must be at least 1");
    if (options.scheme == PartitionScheme::kDirichlet && !(options.alpha > 0)) {
      throw UsageError("--alpha must be greater than 0");
    }
    if (!(options.val_fraction >= 0 && options.val_fraction < 1)) {
      throw UsageError("--val-fraction must be in [0, 1)");
    }
  } catch (const UsageError& e) {
    err << "tapestry partition: " << e.what() << "\n" << kUsage;
    return 2;
  }

  try {
    refuseStaleShards(out_dir, options.workers);
    ImageDataset data = loadFashionMnist(data_dir, true);
    if (limit > 0 && limit < data.size()) {
      data.labels.resize(limit);
      data.images.resize(limit * data.rows * data.cols);
    }
    size_t classes = 10;
    for (const uint8_t label : data.labels) classes = std::max<size_t>(classes, size_t{label} + 1);
    const auto parts = partitionIndices(data.labels, classes, options);
    for (size_t k = 0; k < parts.size(); ++k) {
      const uint64_t split_seed = options.seed ^ (0x9E3779B97F4A7C15ULL * (k + 1));
      writeShard(splitTrainVal(data, parts[k], options.val_fraction, split_seed),
                 out_dir + "/worker-" + std::to_string(k));
    }
    out << "partitioned " << data.size() << " samples from " << data_dir << " over " << options.workers
        << " workers ("
        << (options.scheme == PartitionScheme::kIid         ? "iid"
            : options.scheme == PartitionScheme::kLabels ? "labels per worker="
                                                         : "dirichlet alpha=");
    if (options.scheme == PartitionScheme::kDirichlet) out << options.alpha;
    if (options.scheme == PartitionScheme::kLabels) out << options.labels_per_worker;
    out << ", seed " << options.seed << ", val-fraction " << options.val_fraction << ") into " << out_dir
        << "/worker-<k>\n";
    printHistograms(data, parts, classes, out);
    return 0;
  } catch (const std::exception& e) {
    err << "tapestry partition: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::worker
