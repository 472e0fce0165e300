#pragma once
// Reading a consensus vector and its model spec from either a coordinator
// checkpoint or a worker's final consensus file.
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

}  // namespace tapestry::tools
