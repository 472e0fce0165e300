#pragma once
// The results of `tapestry bench convergence` and the files written from
// them: results.md (the table also printed), results.json (every curve) and
// two charts. Separate from the runner so the formatting is testable without
// training anything.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/baseline.h"

namespace tapestry::tools {

inline constexpr double kTargetAccuracy = 0.85;

struct VariantResult {
  std::string name;
  std::string skipped;              // why it did not run; empty when it ran
  std::vector<double> accuracy;     // test accuracy of z_0 ... z_R
  std::vector<double> bytes;        // bytes sent per worker up to z_r (bytes[0] = 0)
  double seconds = 0;               // wall time of the federation
  uint64_t contributions = 0;       // pushes counted over all rounds
  uint64_t late = 0;                // ... of them trained on an older consensus
};

struct ConvergenceResults {
  nlohmann::json plan;              // what ran, for results.json
  std::string title;                // e.g. "Fashion-MNIST, dirichlet alpha 0.5, 4 workers"
  uint64_t rounds = 0;
  int64_t local_steps = 0;
  size_t test_samples = 0;
  bool has_centralised = true;      // false with --no-baselines
  BaselineResult centralised;       // curve per round-equivalent, z_0 first
  std::vector<BaselineResult> local;
  std::vector<VariantResult> variants;
  double seconds = 0;
};

// The first index whose value reaches `target`, if any.
std::optional<size_t> firstReaching(const std::vector<double>& curve, double target);

// The Markdown table: variant, final and best test accuracy of the
// consensus, rounds to kTargetAccuracy, bytes sent per worker (in total and
// up to the target), then the centralised and local-only rows.
std::string resultsTable(const ConvergenceResults& results);
nlohmann::json resultsJson(const ConvergenceResults& results);

// Writes results.md, results.json, accuracy_vs_round.png and
// accuracy_vs_bytes.png into out_dir (created). Throws std::runtime_error
// naming the file that could not be written.
void writeConvergenceReport(const ConvergenceResults& results, const std::string& out_dir);

}  // namespace tapestry::tools
