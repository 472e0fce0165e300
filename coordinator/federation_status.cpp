// Federation::status: a snapshot of the federation for operators, written by
// the server to state_dir/status.json and read by `tapestry status`.
#include "coordinator/federation.h"

namespace tapestry::coordinator {

namespace {

double secondsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

nlohmann::json Federation::status(Clock::time_point now) const {
  const RoundPolicy& policy = logic_.policy();
  nlohmann::json s = {{"federation_id", config_.federation_id},
                      {"algorithm", algorithmName(config_.algorithm)},
                      {"server_optimizer", serverOptimizerName(config_.server_optimizer.kind)},
                      {"aggregation", aggregationRuleName(config_.rule)},
                      {"model", state_.model_spec},
                      {"parameters", state_.parameter_count},
                      {"has_consensus", logic_.hasConsensus()},
                      {"finished", logic_.finished()},
                      {"consensus_round", logic_.round()},
                      {"max_rounds", policy.max_rounds},
                      {"min_workers", policy.min_workers},
                      {"quorum", policy.quorum},
                      {"max_staleness", policy.max_staleness},
                      {"known_members", state_.members.size()}};
  if (logic_.hasConsensus() && !logic_.finished()) {
    s["open_round"] = logic_.round() + 1;  // as the logs count: round r + 1 makes z_{r+1}
    s["open_for_s"] = secondsBetween(logic_.openedAt(), now);
    if (auto deadline = logic_.nextDeadline()) s["deadline_in_s"] = secondsBetween(now, *deadline);
  } else if (!logic_.hasConsensus()) {
    s["initial_provider"] = initial_provider_;
  }
  nlohmann::json members = nlohmann::json::array();
  for (const std::string& id : logic_.active()) {
    nlohmann::json m = {{"id", id}};
    if (logic_.streaming().count(id)) m["push"] = "streaming";
    else if (logic_.hasContributed(id)) m["push"] = "pushed";
    else m["push"] = "waiting";
    if (auto late = lateBy(id)) m["late_by"] = *late;
    members.push_back(std::move(m));
  }
  s["members"] = std::move(members);
  s["contributors"] = logic_.contributorCount();
  if (!state_.log.empty()) s["last_round"] = nlohmann::json::parse(roundJson(state_.log.back()));
  if (state_.best_metric >= 0)
    s["best"] = {{"round", state_.best_round}, {"metric", state_.best_metric},
                 {"metric_kind", languageModel() ? "bits per byte" : "accuracy"}};
  return s;
}

}  // namespace tapestry::coordinator
