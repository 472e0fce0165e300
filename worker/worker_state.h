#pragma once
// The worker's durable state: parameters, optimizer state, data position and
// which round's training they reflect. Written atomically after every round's
// local training, before the push, so a restarted worker resends exactly the
// vector it computed (or trains again from a consistent point).
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "worker/consensus_rule.h"
#include "worker/ml/trainer.h"

namespace tapestry::worker {

struct WorkerState {
  std::string federation_id;
  std::string fingerprint;
  int64_t trained_round = -1;  // parameters are the result of training on z_trained_round
  TrainerState trainer;
  std::vector<float> dual;      // ADMM's scaled dual u (empty for other algorithms); never sent
  ScaffoldState scaffold;       // SCAFFOLD's anchor and correction (empty for other algorithms); never sent
  std::vector<float> residual;  // error feedback owed to the next compressed push (empty: none)
  // The error feedback the push of trained_round leaves, saved with it: it
  // becomes `residual` at the next round, also after a restart in between.
  std::vector<float> pending_residual;
  // Training of trained_round diverged and restarted from the consensus;
  // its push says so (proto::PushFromWorker.restarted), also when resent.
  bool restarted = false;
  // This member's validation metric of z_trained_round, taken before training
  // on it (NaN: none) and the samples behind it; a resent push carries it
  // again, so the coordinator's judgement of that consensus survives a restart.
  double metric = std::numeric_limits<double>::quiet_NaN();
  uint64_t metric_samples = 0;
  // The data the trainer's position counts in: data.shard and its training
  // samples (images, or text bytes). Empty and 0 in a state saved before they
  // were recorded.
  std::string shard_dir;
  uint64_t shard_samples = 0;
};

void saveWorkerState(const WorkerState& state, const std::string& state_dir);
// nullopt if none; throws std::runtime_error if damaged.
std::optional<WorkerState> loadWorkerState(const std::string& state_dir);

}  // namespace tapestry::worker
