#include "worker/worker_state.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

#include "common/checkpoint.h"

namespace tapestry::worker {

namespace {
std::string statePath(const std::string& dir) { return (std::filesystem::path(dir) / "worker.ckpt").string(); }
}  // namespace

void saveWorkerState(const WorkerState& s, const std::string& state_dir) {
  std::filesystem::create_directories(state_dir);
  nlohmann::json meta = {{"kind", "tapestry-worker"},
                         {"federation_id", s.federation_id},
                         {"fingerprint", s.fingerprint},
                         {"trained_round", s.trained_round},
                         {"epoch", s.trainer.epoch},
                         {"position", s.trainer.position},
                         {"optimizer_steps", s.trainer.optimizer_steps},
                         {"scaffold_digest", s.scaffold.digest},
                         {"restarted", s.restarted},
                         {"metric_samples", s.metric_samples}};
  if (std::isfinite(s.metric)) meta["metric"] = s.metric;
  if (!s.shard_dir.empty()) {
    meta["shard"] = s.shard_dir;
    meta["shard_samples"] = s.shard_samples;
  }
  common::CheckpointWriter writer;
  writer.setMetadata(meta.dump());
  writer.addSection("parameters", s.trainer.parameters.data(), s.trainer.parameters.size() * sizeof(float));
  writer.addSection("momentum", s.trainer.momentum.data(), s.trainer.momentum.size() * sizeof(float));
  writer.addSection("second_moment", s.trainer.second_moment.data(),
                    s.trainer.second_moment.size() * sizeof(float));
  writer.addSection("dual", s.dual.data(), s.dual.size() * sizeof(float));
  writer.addSection("residual", s.residual.data(), s.residual.size() * sizeof(float));
  writer.addSection("pending_residual", s.pending_residual.data(), s.pending_residual.size() * sizeof(float));
  writer.addSection("scaffold_anchor", s.scaffold.anchor.data(), s.scaffold.anchor.size() * sizeof(float));
  writer.addSection("scaffold_correction", s.scaffold.correction.data(),
                    s.scaffold.correction.size() * sizeof(float));
  writer.commit(statePath(state_dir));
}

std::optional<WorkerState> loadWorkerState(const std::string& state_dir) {
  common::removeStaleTemps(statePath(state_dir));
  auto ckpt = common::readCheckpoint(statePath(state_dir));
  if (!ckpt) return std::nullopt;
  WorkerState s;
  try {
    auto meta = nlohmann::json::parse(ckpt->metadata);
    if (meta.value("kind", "") != "tapestry-worker") throw std::runtime_error("it is not a worker checkpoint");
    s.federation_id = meta.at("federation_id").get<std::string>();
    s.fingerprint = meta.at("fingerprint").get<std::string>();
    s.trained_round = meta.at("trained_round").get<int64_t>();
    s.trainer.epoch = meta.at("epoch").get<uint64_t>();
    s.trainer.position = meta.at("position").get<uint64_t>();
    s.trainer.parameters = ckpt->sectionAs<float>("parameters");
    s.trainer.momentum = ckpt->sectionAs<float>("momentum");
    s.trainer.optimizer_steps = meta.value("optimizer_steps", uint64_t{0});
    s.scaffold.digest = meta.value("scaffold_digest", uint64_t{0});
    s.restarted = meta.value("restarted", false);
    s.shard_dir = meta.value("shard", "");
    s.shard_samples = meta.value("shard_samples", uint64_t{0});
    if (meta.contains("metric") && meta["metric"].is_number()) {
      s.metric = meta["metric"].get<double>();
      s.metric_samples = meta.value("metric_samples", uint64_t{0});
    }
    if (ckpt->sections.count("second_moment")) s.trainer.second_moment = ckpt->sectionAs<float>("second_moment");
    // Vectors of one value per parameter, each added after the first
    // release: a state without one has none (empty).
    const std::pair<const char*, std::vector<float>*> per_parameter[] = {
        {"dual", &s.dual},
        {"residual", &s.residual},
        {"pending_residual", &s.pending_residual},
        {"scaffold_anchor", &s.scaffold.anchor},
        {"scaffold_correction", &s.scaffold.correction}};
    for (const auto& [name, v] : per_parameter) {
      if (ckpt->sections.count(name)) *v = ckpt->sectionAs<float>(name);
      if (!v->empty() && v->size() != s.trainer.parameters.size())
        throw std::runtime_error("its " + std::string(name) + " has " + std::to_string(v->size()) + " values for " +
                                 std::to_string(s.trainer.parameters.size()) + " parameters");
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("worker state '" + statePath(state_dir) + "' is unreadable: " + e.what() +
                             "; restore it from a backup or remove it to start this worker afresh");
  }
  return s;
}

}  // namespace tapestry::worker
