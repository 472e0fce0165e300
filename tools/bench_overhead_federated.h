#pragma once
// The whole-worker half of `tapestry bench overhead`: the real tapestry-worker
// process trains against the real coordinator over loopback TLS (EASGD, one
// member), and its own round log (state_dir/rounds.jsonl) gives the time per
// local step including everything the consensus machinery does between pushes:
// penalty, flattening, evaluation-free sync, checkpoints. Run once with
// synchronous rounds and once with transfer.overlap.
#include <cstdint>
#include <string>

#include "worker/ml/model.h"

namespace tapestry::tools {

struct FederatedOverheadPlan {
  worker::ModelSpec spec;
  std::string data_dir;   // Fashion-MNIST
  size_t limit = 0;       // first N training images; 0: all
  int64_t steps = 300;    // local steps per round
  int64_t batch = 64;
  int threads = 1;
  double lr = 0.01, momentum = 0.9, rho = 0.01;
  uint64_t seed = 1;
  uint64_t rounds = 6;    // the first two are warm-up and not timed
  std::string bin_dir;    // where tapestry-coordinator and tapestry-worker are
};

struct FederatedStepTime {
  double ms_per_step = 0;     // median over the timed rounds of (time between pushes / steps)
  double idle_fraction = 0;   // share of that time the worker sat waiting for the coordinator
  size_t rounds_timed = 0;
};

// Throws std::runtime_error (with the tail of the failing process's log).
FederatedStepTime federatedStepTime(const FederatedOverheadPlan& plan, bool overlap);

}  // namespace tapestry::tools
