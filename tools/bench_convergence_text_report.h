#pragma once
// The results of `tapestry bench convergence --task text` and the files
// written from them: results.md (per-language tables, the language-alone
// matrix and the two target checks), results.json (every curve) and
// bpb_vs_round.png. Separate from the runner so that the tables and the
// checks are testable without training anything.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tapestry::tools {

// Target (i): the consensus is within this fraction of the centralised
// model's bits per byte on every language.
inline constexpr double kTextCentralisedTolerance = 0.05;

// One trained model (or one federation's consensus) measured over time:
// bpb[r][l] is bits per byte on languages[l] after round (or
// round-equivalent) r, bpb[0] being the initial model.
struct TextArm {
  std::string name;
  std::string skipped;             // why it did not run; empty when it ran
  std::vector<std::vector<double>> bpb;
  std::vector<double> bytes;       // federations: bytes sent per worker up to z_r
  double seconds = 0;

  const std::vector<double>& last() const { return bpb.back(); }
};

struct TextConvergenceResults {
  nlohmann::json plan;
  std::vector<std::string> languages;
  std::vector<uint64_t> train_bytes, eval_bytes;  // per language
  uint64_t rounds = 0;
  int64_t local_steps = 0;
  TextArm centralised;
  // The union again, in as many steps as one worker takes, each a batch of
  // K x B bytes-sequences: synchronous data-parallel training over K machines
  // with the same sample passes. Empty when not run.
  TextArm centralised_same_steps;
  std::vector<TextArm> alone;      // alone[i] trained on languages[i] only
  std::vector<TextArm> variants;
  double seconds = 0;
};

double meanOf(const std::vector<double>& values);

struct TargetCheck {
  std::string target;  // "i", "i-same-steps" or "ii"
  bool passed = false;
  std::string line;  // "(i) fedavg+nesterov: PASS - ..."
};

// (i) for every variant that ran: consensus bpb <= (1 + tolerance) x
// centralised bpb on every language; then, labelled "(i, same steps)", the
// same against centralised_same_steps when it ran. (ii) for every variant: on every
// language L the consensus beats every model trained alone on another
// language. Lines name the worst language and its margin.
std::vector<TargetCheck> centralisedChecks(const TextConvergenceResults& r);
std::vector<TargetCheck> aloneChecks(const TextConvergenceResults& r);

// Final bpb per language of every variant, the centralised model and each
// language's own alone model, with the mean over languages.
std::string textConsensusTable(const TextConvergenceResults& r);
// Row: model trained on one language alone; column: language evaluated.
std::string textAloneMatrix(const TextConvergenceResults& r);

nlohmann::json textResultsJson(const TextConvergenceResults& r);

// Writes results.md, results.json and bpb_vs_round.png into out_dir
// (created). Throws std::runtime_error naming the file that failed.
void writeTextConvergenceReport(const TextConvergenceResults& r, const std::string& out_dir);

// The tables and checks as printed at the end of a run and in results.md.
std::string textResultsSummary(const TextConvergenceResults& r);

}  // namespace tapestry::tools
