#pragma once
// The worker daemon's typed configuration, parsed once (unknown keys
// rejected, errors name the field). Federation-wide settings (algorithm, rho,
// local steps, init seed) come from the coordinator's Welcome instead.
#include <chrono>
#include <string>

#include "worker/compressed_push.h"
#include "worker/ml/model.h"
#include "worker/ml/trainer.h"
#include "worker/sync_client.h"

namespace tapestry::worker {

struct WorkerConfig {
  std::string name;         // for logs; the identity is the certificate subject
  ClientOptions client;
  std::string shard_dir;    // train/val IDX files from `tapestry partition`
  std::string state_dir;    // durable worker state
  std::string audit_dir;    // optional: a copy of every vector sent
  ModelSpec model;
  TrainSettings train;
  TransferSettings transfer;  // how pushes are encoded (fp32, or a compressed delta)
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds give_up_after{0};  // 0: keep retrying forever
};

WorkerConfig loadWorkerConfig(const std::string& path, const std::string& base_dir = "");

}  // namespace tapestry::worker
