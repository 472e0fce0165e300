// Reading consensus vectors back: a worker's audit copy of a received
// consensus carries no model spec, and reading it as a coordinator
// checkpoint says how to read it instead.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/checkpoint.h"
#include "tools/consensus_file.h"

namespace tapestry::tools {
namespace {

namespace fs = std::filesystem;

TEST(ConsensusFile, AnAuditCopyIsReadWithTheWorkersModelAndNamedWhenReadWithout) {
  fs::path dir = fs::temp_directory_path() / ("tapestry-consensus-file-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto model = worker::ModelSpec::fromJson({{"name", "mlp"}, {"hidden", 8}});
  std::vector<float> z(worker::modelParameterCount(model), 0.25f);
  common::CheckpointWriter writer;
  writer.setMetadata(nlohmann::json({{"kind", "tapestry-push"}, {"tag", "received-round-3"}}).dump());
  writer.addSection("vector", z.data(), z.size() * sizeof(float));
  const std::string path = (dir / "received-round-3.ckpt").string();
  writer.commit(path);

  ConsensusFile read = readReceivedConsensus(path, model);
  EXPECT_EQ(read.round, 3u);
  EXPECT_EQ(read.parameters, z);
  try {
    readConsensusFile(path);
    ADD_FAILURE() << "an audit copy was read as a consensus checkpoint";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("--model-json"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(ConsensusFile, AWorkersOwnStateIsNamedWithTheFilesToPassInstead) {
  fs::path dir = fs::temp_directory_path() / ("tapestry-consensus-file-worker-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  common::CheckpointWriter writer;
  writer.setMetadata(nlohmann::json({{"kind", "tapestry-worker"}, {"last_round", 4}}).dump());
  const float w[2] = {1, 2};
  writer.addSection("parameters", w, sizeof w);
  const std::string path = (dir / "worker.ckpt").string();
  writer.commit(path);
  try {
    readConsensusFile(path);
    ADD_FAILURE() << "a worker state was read as a consensus checkpoint";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("it is a worker's own state (worker.ckpt), not a consensus; pass the worker's consensus.ckpt"),
              std::string::npos)
        << what;
    EXPECT_EQ(what.find("json"), std::string::npos) << what;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tapestry::tools
