#pragma once
// tapestry-worker's main loop: connect (with exponential backoff while the
// coordinator is away), receive the consensus, train locally under the
// consensus penalty, save state, push, repeat until the federation finishes.
#include <memory>

#include "worker/worker_config.h"

namespace tapestry::worker {

enum WorkerExit { kExitFinished = 0, kExitError = 1, kExitRefused = 3 };

class WorkerDaemon {
 public:
  // Loads the shard and any saved state. Throws with a clear message.
  explicit WorkerDaemon(WorkerConfig config);
  ~WorkerDaemon();
  int run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tapestry::worker
