#include "coordinator/federation_state.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/checkpoint.h"

namespace tapestry::coordinator {
namespace {

namespace fs = std::filesystem;

constexpr const char* kGenericRemedy = "; restore it from a backup or delete it to start fresh";

// The last round rounds.jsonl in `state_dir` names; 0 when it names none.
uint64_t lastLoggedRound(const std::string& state_dir) {
  std::ifstream in(fs::path(state_dir) / "rounds.jsonl");
  uint64_t last = 0;
  for (std::string line; std::getline(in, line);)
    if (const auto round = loggedRound(line)) last = std::max(last, *round);
  return last;
}

// What best.ckpt beside the checkpoint offers, or "" when it is absent or unreadable.
std::string bestOffer(const std::string& state_dir) {
  const std::string best = (fs::path(state_dir) / "best.ckpt").string();
  std::error_code ec;
  if (!fs::exists(best, ec)) return "";
  try {
    const auto state = loadFederationStateFile(best);
    if (!state || !state->has_consensus) return "";
    return "; " + best + " holds consensus z_" + std::to_string(state->round) +
           ", the best the members rated: to resume from it, copy it to " + checkpointPath(state_dir) +
           " (cp " + best + " " + checkpointPath(state_dir) + ")";
  } catch (const std::exception&) {
    return "";
  }
}

// No checkpoint, but the history of a federation: starting would begin a
// new one at round 0 over it.
void refuseOrphanedHistory(const std::string& state_dir) {
  const uint64_t logged = lastLoggedRound(state_dir);
  std::error_code ec;
  const bool has_best = fs::exists(fs::path(state_dir) / "best.ckpt", ec);
  if (logged == 0 && !has_best) return;
  std::string held = logged > 0 ? "rounds.jsonl up to round " + std::to_string(logged) : "";
  if (has_best) held += std::string(held.empty() ? "" : " and ") + "best.ckpt";
  throw std::runtime_error(
      state_dir + " holds the history of a federation (" + held + ") but no coordinator.ckpt: starting would begin a "
      "new federation at round 0 over it" + bestOffer(state_dir) +
      "; or put coordinator.ckpt back from a backup; or, to start a new federation, move rounds.jsonl and best.ckpt "
      "out of " + state_dir + " (or use an empty state_dir)");
}

}  // namespace

std::string checkpointPath(const std::string& state_dir) {
  return (std::filesystem::path(state_dir) / "coordinator.ckpt").string();
}

std::optional<uint64_t> loggedRound(const std::string& line) {
  const std::string prefix = "{\"round\":";
  if (line.rfind(prefix, 0) != 0 || line.back() != '}') return std::nullopt;
  return std::strtoull(line.c_str() + prefix.size(), nullptr, 10);
}

void saveFederationState(const FederationState& s, const std::vector<float>& consensus,
                         const std::vector<float>& momentum, const std::string& state_dir,
                         const std::vector<float>& second_moment) {
  std::filesystem::create_directories(state_dir);
  nlohmann::json meta;
  meta["kind"] = "tapestry-coordinator";
  meta["federation_id"] = s.federation_id;
  meta["round"] = s.round;
  meta["has_consensus"] = s.has_consensus;
  meta["fingerprint"] = s.fingerprint;
  meta["model_spec"] = s.model_spec;
  meta["parameter_count"] = s.parameter_count;
  meta["members"] = s.members;
  meta["server_optimizer"] = s.server_optimizer;
  meta["contributors_digest"] = s.contributors_digest;
  meta["correction_scale"] = s.correction_scale;
  meta["configured_correction_scale"] = s.configured_correction_scale;
  meta["best_metric"] = s.best_metric;
  meta["best_round"] = s.best_round;
  meta["best_raters"] = s.best_raters;
  meta["previous_digest"] = s.previous_digest;
  nlohmann::json log = nlohmann::json::array();
  size_t first = s.log.size() > kMaxRoundLog ? s.log.size() - kMaxRoundLog : 0;
  for (size_t i = first; i < s.log.size(); ++i) {
    const RoundRecord& r = s.log[i];
    log.push_back({{"round", r.round},
                   {"contributors", r.contributors},
                   {"bytes_received", r.bytes_received},
                   {"seconds", r.seconds},
                   {"metric", r.metric},
                   {"metric_samples", r.metric_samples},
                   {"restarted", r.restarted},
                   {"late", r.late},
                   {"correction_scale", r.correction_scale},
                   {"refused", r.refused},
                   {"restored", r.restored}});
  }
  meta["log"] = log;
  common::CheckpointWriter writer;
  writer.setMetadata(meta.dump());
  writer.addSection("consensus", consensus.data(), consensus.size() * sizeof(float));
  writer.addSection("momentum", momentum.data(), momentum.size() * sizeof(float));
  writer.addSection("second_moment", second_moment.data(), second_moment.size() * sizeof(float));
  writer.commit(checkpointPath(state_dir));
}

std::optional<FederationState> loadFederationStateFile(const std::string& path) {
  auto ckpt = common::readCheckpoint(path);
  if (!ckpt) return std::nullopt;
  FederationState s;
  try {
    auto meta = nlohmann::json::parse(ckpt->metadata);
    if (meta.value("kind", "") != "tapestry-coordinator")
      throw std::runtime_error("not a coordinator checkpoint");
    s.federation_id = meta.at("federation_id").get<std::string>();
    s.round = meta.at("round").get<uint64_t>();
    s.has_consensus = meta.at("has_consensus").get<bool>();
    s.fingerprint = meta.at("fingerprint").get<std::string>();
    s.model_spec = meta.at("model_spec").get<std::string>();
    s.parameter_count = meta.at("parameter_count").get<uint64_t>();
    s.members = meta.at("members").get<std::vector<std::string>>();
    s.server_optimizer = meta.value("server_optimizer", "");
    s.contributors_digest = meta.value("contributors_digest", uint64_t{0});
    s.correction_scale = meta.value("correction_scale", 0.0);
    s.configured_correction_scale = meta.value("configured_correction_scale", 0.0);
    s.best_metric = meta.value("best_metric", -1.0);
    s.best_round = meta.value("best_round", uint64_t{0});
    s.best_raters = meta.value("best_raters", uint64_t{0});
    s.previous_digest = meta.value("previous_digest", uint64_t{0});
    for (const auto& r : meta.at("log")) {
      s.log.push_back({r.at("round").get<uint64_t>(), r.at("contributors").get<size_t>(),
                       r.at("bytes_received").get<uint64_t>(), r.at("seconds").get<double>(),
                       r.at("metric").get<double>(), r.at("metric_samples").get<uint64_t>(),
                       r.value("restarted", size_t{0}), r.value("late", size_t{0}), r.value("correction_scale", 0.0),
                       r.value("refused", false), r.value("restored", int64_t{-1})});
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("checkpoint '" + path + "' has unreadable metadata: " + e.what());
  }
  s.consensus = ckpt->sectionAs<float>("consensus");
  s.momentum = ckpt->sectionAs<float>("momentum");
  if (ckpt->sections.count("second_moment")) s.second_moment = ckpt->sectionAs<float>("second_moment");
  if (s.has_consensus && s.consensus.size() != s.parameter_count)
    throw std::runtime_error("checkpoint '" + path + "' consensus size differs from its parameter count");
  return s;
}

std::optional<FederationState> loadFederationState(const std::string& state_dir) {
  common::removeStaleTemps(checkpointPath(state_dir));
  std::optional<FederationState> state;
  try {
    state = loadFederationStateFile(checkpointPath(state_dir));
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    const size_t generic = what.rfind(kGenericRemedy);
    if (generic == std::string::npos) throw;
    what.erase(generic);
    throw std::runtime_error(what + bestOffer(state_dir) + "; or restore it from a backup");
  }
  if (!state) refuseOrphanedHistory(state_dir);
  return state;
}

}  // namespace tapestry::coordinator
