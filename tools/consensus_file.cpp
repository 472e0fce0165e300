#include "tools/consensus_file.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

#include "common/checkpoint.h"

namespace tapestry::tools {

namespace {

void checkSize(const std::string& path, const ConsensusFile& file) {
  size_t expected = worker::modelParameterCount(file.model);
  if (file.parameters.size() != expected)
    throw std::runtime_error("checkpoint '" + path + "' holds " + std::to_string(file.parameters.size()) +
                             " parameters but its model " + file.model.toJson().dump() + " needs " +
                             std::to_string(expected));
}

}  // namespace

ConsensusFile readConsensusFile(const std::string& path) {
  auto ckpt = common::readCheckpoint(path);
  if (!ckpt) throw std::runtime_error("checkpoint '" + path + "' does not exist");
  ConsensusFile out;
  try {
    auto meta = nlohmann::json::parse(ckpt->metadata);
    if (meta.value("kind", "") == "tapestry-push")
      throw std::runtime_error("it is a worker's audit copy, which carries no model spec; read it with the "
                               "worker's model given (tapestry eval --model-json '<the worker's model>')");
    if (meta.value("kind", "") == "tapestry-worker")
      throw std::runtime_error("it is a worker's own state (worker.ckpt), not a consensus; pass the worker's "
                               "consensus.ckpt (the final consensus), or the coordinator's coordinator.ckpt or "
                               "best.ckpt");
    const std::string kind = meta.value("kind", "");
    if (kind != "tapestry-coordinator" && kind != "tapestry-consensus" && kind != "tapestry-finetuned")
      throw std::runtime_error("it is a Tapestry checkpoint of kind '" + kind +
                               "'; pass a consensus.ckpt, coordinator.ckpt or best.ckpt");
    if (meta.contains("has_consensus") && !meta.at("has_consensus").get<bool>())
      throw std::runtime_error("it holds no consensus yet (the federation has not started)");
    out.round = meta.at("round").get<uint64_t>();
    out.model = worker::ModelSpec::fromJson(nlohmann::json::parse(meta.at("model_spec").get<std::string>()));
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint '" + path + "' is not a consensus checkpoint: " + e.what());
  }
  out.parameters = ckpt->sectionAs<float>("consensus");
  checkSize(path, out);
  return out;
}

ConsensusFile readReceivedConsensus(const std::string& path, const worker::ModelSpec& model) {
  auto ckpt = common::readCheckpoint(path);
  if (!ckpt) throw std::runtime_error("audit file '" + path + "' does not exist");
  ConsensusFile out;
  out.model = model;
  const std::string prefix = "received-round-";
  try {
    auto meta = nlohmann::json::parse(ckpt->metadata);
    if (meta.at("kind").get<std::string>() != "tapestry-push")
      throw std::runtime_error("its kind is '" + meta.at("kind").get<std::string>() + "', not 'tapestry-push'");
    auto tag = meta.at("tag").get<std::string>();
    if (tag.compare(0, prefix.size(), prefix) != 0)
      throw std::runtime_error("its tag '" + tag + "' is not " + prefix + "<r> (a vector the worker sent?)");
    out.round = std::stoull(tag.substr(prefix.size()));
  } catch (const std::exception& e) {
    throw std::runtime_error("audit file '" + path + "' is not a received consensus: " + e.what());
  }
  out.parameters = ckpt->sectionAs<float>("vector");
  checkSize(path, out);
  return out;
}

}  // namespace tapestry::tools
