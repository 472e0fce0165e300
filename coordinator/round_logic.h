#pragma once
// Pure round state machine: membership, pushes, quorum and deadline. It takes
// events and answers questions; it does no I/O and knows nothing of sockets,
// Protobuf or tensors, so every transition is unit-testable.
//
// A round is open from the moment its consensus z_r exists. It closes when
//   (a) every active worker has contributed, at least min_workers have, and
//       no push is still streaming in; or
//   (b) the deadline since the round opened has passed, at least quorum
//       workers have contributed, and no push is still streaming in.
// A push still streaming in push_grace after the deadline is cut off
// (pushCutoff), so one slow or hostile member cannot hold a round open.
// A worker that started a push counts as a contributor even if it drops
// before the last chunk (its missing chunks are filled from z_r upstream).
// A push computed from an earlier consensus z_s (s < r, r - s <= max_staleness)
// is late: it may join round r as that worker's contribution (kLate), down-
// weighted upstream; older ones, and all of them with max_staleness 0, are stale.
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace tapestry::coordinator {

using Clock = std::chrono::steady_clock;

struct RoundPolicy {
  size_t min_workers = 1;
  size_t quorum = 1;
  std::chrono::milliseconds deadline{std::chrono::minutes(10)};
  std::chrono::milliseconds push_grace{std::chrono::minutes(10)};
  uint64_t max_rounds = 0;  // 0 = unbounded
  uint64_t max_staleness = 0;  // rounds a late push may lag the open one; 0 = none joins
};

enum class PushVerdict { kAccept, kLate, kStaleRound, kAlreadyPushed, kFinished, kNoConsensus };

class RoundLogic {
 public:
  RoundLogic(RoundPolicy policy, uint64_t round, bool has_consensus, Clock::time_point now);

  void workerJoined(const std::string& id);
  void workerLeft(const std::string& id);
  bool isActive(const std::string& id) const { return active_.count(id) > 0; }
  size_t activeCount() const { return active_.size(); }

  PushVerdict checkPush(const std::string& id, uint64_t round) const;
  void pushStarted(const std::string& id);
  void pushEnded(const std::string& id);
  bool hasContributed(const std::string& id) const { return contributors_.count(id) > 0; }
  size_t contributorCount() const { return contributors_.size(); }

  bool shouldClose(Clock::time_point now) const;
  // When a deadline close could next become possible (for a timer).
  std::optional<Clock::time_point> nextDeadline() const;
  // When pushes still streaming in stop holding the round: deadline +
  // push_grace after it opened (for a timer).
  std::optional<Clock::time_point> pushCutoff() const;
  const std::set<std::string>& streaming() const { return streaming_; }
  const std::set<std::string>& active() const { return active_; }
  const RoundPolicy& policy() const { return policy_; }
  // z_{r+1} now exists: open the next round.
  void roundClosed(Clock::time_point now);
  // The very first consensus z_0 arrived (from a worker's initial vector).
  void consensusInitialised(Clock::time_point now);

  uint64_t round() const { return round_; }
  bool hasConsensus() const { return has_consensus_; }
  bool finished() const { return policy_.max_rounds > 0 && round_ >= policy_.max_rounds; }
  Clock::time_point openedAt() const { return opened_; }

 private:
  RoundPolicy policy_;
  uint64_t round_;
  bool has_consensus_;
  Clock::time_point opened_;
  std::set<std::string> active_;
  std::set<std::string> contributors_;
  std::set<std::string> streaming_;
};

}  // namespace tapestry::coordinator
