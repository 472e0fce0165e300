#pragma once
// Reading a consensus vector and its model spec from a coordinator
// checkpoint, a worker's final consensus file, or a consensus a worker
// received (its audit_dir/received-round-<r>.ckpt).
#include <cstdint>
#include <string>
#include <vector>

#include "worker/ml/model.h"

namespace tapestry::tools {

struct ConsensusFile {
  worker::ModelSpec model;
  uint64_t round = 0;
  std::vector<float> parameters;
};

// Throws std::runtime_error naming the file and what is wrong.
ConsensusFile readConsensusFile(const std::string& path);

// A received consensus z_r from a worker's audit_dir. Audit files carry no
// model spec, so the worker's `model` is given and checked against the size.
// Throws std::runtime_error naming the file and what is wrong.
ConsensusFile readReceivedConsensus(const std::string& path, const worker::ModelSpec& model);

}  // namespace tapestry::tools
