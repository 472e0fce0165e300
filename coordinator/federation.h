#pragma once
// The coordinator's protocol logic without I/O: admission (identity, model
// fingerprint, protocol version), pushes folded chunk by chunk into the
// Aggregator, round closing through RoundLogic, the server update, and the
// durable state written after every round. The server feeds it events from
// sessions and performs the sends it asks for; tests drive it directly.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/frame.h"
#include "coordinator/aggregation/aggregator.h"
#include "coordinator/best_consensus.h"
#include "coordinator/contribution_store.h"
#include "coordinator/coordinator_config.h"
#include "coordinator/federation_state.h"
#include "coordinator/round_logic.h"
#include "proto/tapestry.pb.h"

namespace tapestry::coordinator {

struct Rejection {
  std::error_code code;
  std::string message;  // for the worker and the log: what was wrong, what to do
  explicit operator bool() const { return static_cast<bool>(code); }
};

class Federation {
 public:
  Federation(CoordinatorConfig config, FederationState state, std::unique_ptr<Aggregator> aggregator,
             Clock::time_point now);

  // A verified identity said Hello. On success fills `welcome`.
  Rejection admit(const std::string& id, const proto::HelloFromWorker& hello, proto::WelcomeToWorker* welcome);
  // The session of `id` ended, for whatever reason. Fills an interrupted
  // push's missing chunks from the current consensus so the sum stays whole.
  void depart(const std::string& id);

  Rejection beginPush(const std::string& id, const proto::PushFromWorker& push);
  // Bytes the next chunk of id's push must have; 0 when no chunk is expected.
  size_t expectedChunkBytes(const std::string& id) const;
  // Verifies, decodes and folds one chunk read into `bytes` (which may be
  // decoded in place; it must be float-aligned). `intact`: the transport
  // found its CRC32C to match the one its frame carried.
  Rejection pushChunk(const std::string& id, uint8_t* bytes, size_t size, bool intact);

  // Closes the round or installs z_0 when due. True when a new consensus is
  // ready to broadcast. Persists the state before returning true, unless
  // persistence is deferred.
  bool advance(Clock::time_point now);

  // Deferred persistence (the server's mode): advance() leaves writing the
  // checkpoint to the caller, who runs takePersistJob() off the io thread,
  // overlapping the disk with the broadcast, and calls persisted() once it
  // has returned. Until then the new consensus is not durable: no round
  // closes, and the server holds back the last chunk of every copy of it it
  // sends, so no worker acts on a consensus that a crash could take back.
  // The job reads the consensus and optimizer state in place; they cannot
  // change before persisted(), because no round can close.
  void deferPersistence() { defer_persistence_ = true; }
  std::function<void()> takePersistJob() { return std::exchange(persist_job_, nullptr); }
  void persisted();
  bool durable() const { return !persist_pending_; }

  // Who should upload the initial vector now (empty: nobody). Marks them.
  std::string pickInitialProvider();

  std::shared_ptr<const std::vector<float>> consensus() const { return consensus_; }
  uint64_t round() const { return logic_.round(); }
  bool hasConsensus() const { return logic_.hasConsensus(); }
  bool finished() const { return logic_.finished(); }
  std::optional<Clock::time_point> nextDeadline() const { return logic_.nextDeadline(); }
  std::optional<Clock::time_point> pushCutoff() const { return logic_.pushCutoff(); }
  // The member asked for z_0 (empty: none), and whether its upload has begun.
  const std::string& initialProvider() const { return initial_provider_; }
  bool initialStarted() const { return !initial_provider_.empty() && pushes_.count(initial_provider_) > 0; }
  // Past the push cutoff, ends every push still streaming in as if its
  // member had left (the rest taken from z_r) and returns their members.
  std::vector<std::string> cutOffSlowPushes(Clock::time_point now);
  const FederationState& state() const { return state_; }
  // Where the federation stands now, for state_dir/status.json
  // (coordinator/federation_status.cpp): the open round, its deadline,
  // each active member's part in it, the last closed round and the best.
  nlohmann::json status(Clock::time_point now) const;
  const CoordinatorConfig& config() const { return config_; }
  std::string aggregatorName() const { return aggregator_->backendName(); }

 private:
  struct Push {
    proto::PayloadHeader header;
    float weight = 0;
    size_t next_chunk = 0;
    bool initial = false;
    bool delta = false;  // carries x - z_r; z_r is added once per round at close
    size_t slot = 0;     // robust rules: its slot in store_
  };
  bool robust() const { return config_.rule != AggregationRule::kMean; }
  void finishPush(const std::string& id);
  void closeRound(Clock::time_point now);
  void reportRestarts(const RoundRecord& record) const;
  struct Backoff {
    bool refused = false;    // the round's update is not applied
    bool collapsed = false;  // because z_r collapsed (else: a member diverged)
    bool fell = false;       // z_r collapsed from the best, and nothing was refused for it
    std::optional<std::vector<float>> restored;  // the best consensus, z_best_round, replacing z_r
  };
  Backoff decideBackoff(double z_metric, size_t count);
  void lowerCorrectionScale(const RoundRecord& record, bool collapsed);
  void reportCollapse(const RoundRecord& record, bool fell);
  uint64_t collapse_warned_ = 0;  // rounds in a row with a collapsed consensus, for warnings
  // Whether a model is the one the config pins (anything, if none).
  bool pinnedModelAdmits(const std::string& fingerprint, uint64_t parameters) const;
  std::string describePinnedModel() const;
  bool ratingCounts(const std::string& id, double metric, uint64_t samples) const;
  // Rounds late of id's push in this round; nullopt when it was on time or absent.
  std::optional<uint64_t> lateBy(const std::string& id) const;
  std::string describeMetric(double metric, uint64_t round) const;
  void accumulateWhole(const std::vector<float>& values, float weight);
  bool languageModel() const;  // its metric is bits per byte (lower is better), not accuracy
  void resumeCorrectionScale();
  void restoreCheckpoint(std::vector<float>& consensus);
  void prepareOptimizerState(bool fresh);
  void persist();
  void rewriteRoundLog() const;
  void appendRoundLog();
  std::string roundJson(const RoundRecord& r) const;

  CoordinatorConfig config_;
  FederationState state_;
  std::unique_ptr<Aggregator> aggregator_;
  std::unique_ptr<ContributionStore> store_;  // robust rules only: the round's contributions
  RoundLogic logic_;
  std::shared_ptr<const std::vector<float>> consensus_;
  std::map<std::string, Push> pushes_;
  std::set<std::string> waiting_;  // admitted, no consensus yet
  std::string initial_provider_;
  std::vector<float> initial_;
  // This round's finished pushes (identity, weight), and whether the sum is
  // exactly their weighted sum (no push cut off and completed from z_r).
  std::vector<std::pair<std::string, float>> round_contributions_;
  bool round_exact_ = true;
  std::vector<std::string> round_restarted_;  // members whose push says their training diverged
  std::vector<std::pair<std::string, uint64_t>> round_late_;  // (identity, staleness) of the round's late pushes
  std::vector<std::pair<std::string, float>> round_raters_;  // (identity, metric samples) of the round's ratings
  bool initial_ready_ = false;
  bool defer_persistence_ = false;
  bool persist_pending_ = false;
  std::function<void()> persist_job_;
  std::string unlogged_round_;  // rounds.jsonl line of a round whose checkpoint is not yet durable
  double weight_sum_ = 0;
  double delta_weight_ = 0;  // weight of this round's delta pushes
  double metric_sum_ = 0;
  uint64_t metric_samples_ = 0;
  uint64_t round_bytes_ = 0;
};

}  // namespace tapestry::coordinator
