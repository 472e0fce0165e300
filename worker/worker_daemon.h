#pragma once
// tapestry-worker's main loop: connect (with exponential backoff while the
// coordinator is away), receive the consensus, train locally under the
// consensus penalty, save state, push, repeat until the federation finishes.
// SIGTERM and SIGINT stop it cleanly between two local steps (exit code 0);
// a fatal error is recorded in state_dir/status.json as "failed".
#include <memory>

#include "worker/worker_config.h"

namespace tapestry::worker {

enum WorkerExit { kExitFinished = 0, kExitStopped = 0, kExitError = 1, kExitRefused = 3 };

class WorkerDaemon {
 public:
  // Loads the shard and any saved state and takes SIGINT and SIGTERM over.
  // Throws with a clear message (common::ConfigError for a shard the model
  // cannot read), recorded in status.json once state_dir is locked.
  explicit WorkerDaemon(WorkerConfig config);
  ~WorkerDaemon();
  int run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tapestry::worker
