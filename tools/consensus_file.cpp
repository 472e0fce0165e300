#include "tools/consensus_file.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

#include "common/checkpoint.h"

namespace tapestry::tools {

ConsensusFile readConsensusFile(const std::string& path) {
  auto ckpt = common::readCheckpoint(path);
  if (!ckpt) throw std::runtime_error("checkpoint '" + path + "' does not exist");
  ConsensusFile out;
  try {
    auto meta = nlohmann::json::parse(ckpt->metadata);
    if (meta.contains("has_consensus") && !meta.at("has_consensus").get<bool>())
      throw std::runtime_error("it holds no consensus yet (the federation has not started)");
    out.round = meta.at("round").get<uint64_t>();
    out.model = worker::ModelSpec::fromJson(nlohmann::json::parse(meta.at("model_spec").get<std::string>()));
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint '" + path + "' is not a consensus checkpoint: " + e.what());
  }
  out.parameters = ckpt->sectionAs<float>("consensus");
  if (out.parameters.size() != worker::modelParameterCount(out.model))
    throw std::runtime_error("checkpoint '" + path + "' holds " + std::to_string(out.parameters.size()) +
                             " parameters but its model needs " +
                             std::to_string(worker::modelParameterCount(out.model)));
  return out;
}

}  // namespace tapestry::tools
