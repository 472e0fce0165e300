#pragma once
// The coordinator's durable state: everything needed to resume after a crash
// without losing a completed round. Saved atomically (common/checkpoint.h)
// after every round; a restarted coordinator continues from it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tapestry::coordinator {

struct RoundRecord {
  uint64_t round = 0;  // the round that closed, producing z_{round+1}
  size_t contributors = 0;
  uint64_t bytes_received = 0;
  double seconds = 0;
  double metric = -1;  // sample-weighted validation accuracy of z_round; -1 if none
  uint64_t metric_samples = 0;
  size_t restarted = 0;  // contributors whose training diverged and restarted from z_round
  size_t late = 0;       // contributors whose push was trained on an older consensus
  double correction_scale = 0;  // SCAFFOLD: the scale in effect for z_{round+1}; 0 for other algorithms
  bool refused = false;         // SCAFFOLD's back-off refused the round's update
  int64_t restored = -1;        // ... and z_{round+1} is this earlier best consensus; -1: none
};

struct FederationState {
  std::string federation_id;
  uint64_t round = 0;  // z_round is the current consensus
  bool has_consensus = false;
  std::string fingerprint;
  std::string model_spec;
  uint64_t parameter_count = 0;
  std::vector<float> consensus;
  std::vector<float> momentum;       // server optimizer state; empty for plain
  std::vector<float> second_moment;  // adam's v; empty otherwise
  std::string server_optimizer;      // the kind its state belongs to ("plain", "nesterov", "adam")
  std::vector<std::string> members;
  // Of z_round: see proto::ConsensusToWorker. 0 when unknown. And of z_{round-1}.
  uint64_t contributors_digest = 0;
  uint64_t previous_digest = 0;
  // SCAFFOLD: the correction scale in effect, lowered from the configured
  // one (kept beside it) after rounds in which members diverged. 0 when unset.
  double correction_scale = 0;
  double configured_correction_scale = 0;
  // The members' best validation metric of a consensus so far and the round
  // of that consensus, kept as best.ckpt (coordinator/best_consensus.h); -1: none.
  double best_metric = -1;
  uint64_t best_round = 0;
  uint64_t best_raters = 0;  // digest of who rated it, with how many samples
  std::vector<RoundRecord> log;  // most recent rounds, bounded
};

constexpr size_t kMaxRoundLog = 10000;

std::string checkpointPath(const std::string& state_dir);

// The round a whole line of rounds.jsonl ({"round":N,...}) records; nullopt
// for anything else (a torn last line, a foreign line).
std::optional<uint64_t> loggedRound(const std::string& line);
// Atomic write of state_dir/coordinator.ckpt with the given consensus and
// server-optimizer state (state.consensus/momentum/second_moment are ignored).
// Throws std::runtime_error.
void saveFederationState(const FederationState& state, const std::vector<float>& consensus,
                         const std::vector<float>& momentum, const std::string& state_dir,
                         const std::vector<float>& second_moment = {});
// nullopt when there is no checkpoint yet; throws if it exists but is
// damaged (offering best.ckpt when it can stand in), and when there is none
// but state_dir holds a federation's history (rounds.jsonl with rounds, or
// best.ckpt), which a fresh start would overwrite.
std::optional<FederationState> loadFederationState(const std::string& state_dir);
std::optional<FederationState> loadFederationStateFile(const std::string& checkpoint_path);

}  // namespace tapestry::coordinator
