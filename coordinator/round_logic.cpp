#include "coordinator/round_logic.h"

#include <algorithm>

namespace tapestry::coordinator {

RoundLogic::RoundLogic(RoundPolicy policy, uint64_t round, bool has_consensus, Clock::time_point now)
    : policy_(policy), round_(round), has_consensus_(has_consensus), opened_(now) {}

void RoundLogic::workerJoined(const std::string& id) { active_.insert(id); }

void RoundLogic::workerLeft(const std::string& id) {
  active_.erase(id);
  streaming_.erase(id);
}

PushVerdict RoundLogic::checkPush(const std::string& id, uint64_t round) const {
  if (!has_consensus_) return PushVerdict::kNoConsensus;
  if (finished()) return PushVerdict::kFinished;
  const bool late = round < round_ && round_ - round <= policy_.max_staleness;
  if (round != round_ && !late) return PushVerdict::kStaleRound;
  if (contributors_.count(id)) return PushVerdict::kAlreadyPushed;
  return late ? PushVerdict::kLate : PushVerdict::kAccept;
}

void RoundLogic::pushStarted(const std::string& id) {
  contributors_.insert(id);
  streaming_.insert(id);
}

void RoundLogic::pushEnded(const std::string& id) { streaming_.erase(id); }

bool RoundLogic::shouldClose(Clock::time_point now) const {
  if (!has_consensus_ || finished() || contributors_.empty() || !streaming_.empty()) return false;
  bool everyone = std::all_of(active_.begin(), active_.end(), [&](const std::string& id) { return contributors_.count(id) > 0; });
  if (everyone && contributors_.size() >= policy_.min_workers) return true;
  return now >= opened_ + policy_.deadline && contributors_.size() >= std::max<size_t>(policy_.quorum, 1);
}

std::optional<Clock::time_point> RoundLogic::nextDeadline() const {
  if (!has_consensus_ || finished()) return std::nullopt;
  return opened_ + policy_.deadline;
}

std::optional<Clock::time_point> RoundLogic::pushCutoff() const {
  if (!has_consensus_ || finished()) return std::nullopt;
  return opened_ + policy_.deadline + policy_.push_grace;
}

void RoundLogic::roundClosed(Clock::time_point now) {
  ++round_;
  contributors_.clear();
  streaming_.clear();
  opened_ = now;
}

void RoundLogic::consensusInitialised(Clock::time_point now) {
  has_consensus_ = true;
  opened_ = now;
}

}  // namespace tapestry::coordinator
