// A worker that cannot start says why before it connects anywhere, and
// leaves the reason in status.json ("failed") for `tapestry status`.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/status_file.h"
#include "worker/ml/dataset.h"
#include "worker/temp_dir.h"
#include "worker/worker_daemon.h"

namespace tapestry::worker {
namespace {

using testing::TempDir;

Shard imageShard(uint64_t seed) {
  std::mt19937_64 rng(seed);
  ImageDataset d;
  d.images.resize(4 * 28 * 28);
  d.labels.resize(4);
  for (auto& p : d.images) p = static_cast<uint8_t>(rng());
  for (auto& l : d.labels) l = static_cast<uint8_t>(rng() % 10);
  return {Dataset(d), Dataset(d)};
}

Shard textShard() { return {Dataset::fromText("Le chat dort sur le tapis.\n"), Dataset::fromText("Il pleut.\n")}; }

// A config whose coordinator cannot be found: nothing here may reach it.
WorkerConfig configFor(const TempDir& dir, const std::string& model) {
  WorkerConfig c;
  c.name = "member-a";
  c.client.port_file = dir / "no-coordinator.port";
  c.shard_dir = dir / "shard";
  c.state_dir = dir / "state";
  c.model = ModelSpec::fromJson(nlohmann::json::parse(model));
  return c;
}

nlohmann::json status(const TempDir& dir) {
  std::ifstream in(common::statusPath(dir / "state"));
  return nlohmann::json::parse(in);
}

// The ConfigError's message (exit code 2, as for other config errors).
std::string configError(const WorkerConfig& config) {
  try {
    WorkerDaemon daemon(config);
  } catch (const common::ConfigError& e) {
    return e.what();
  }
  return "no ConfigError";
}

TEST(WorkerStart, ATextShardForAnImageModelIsAConfigErrorBeforeConnecting) {
  TempDir dir;
  writeShard(textShard(), dir / "shard");
  const std::string message = configError(configFor(dir, R"({"name": "cnn"})"));
  EXPECT_EQ(message, "shard " + (dir / "shard") +
                         ": the training set holds text, but the \"cnn\" model classifies images; use model "
                         "\"transformer\" for text shards");
  const nlohmann::json s = status(dir);
  EXPECT_EQ(s.at("state"), "failed");
  EXPECT_EQ(s.at("detail"), message);
}

TEST(WorkerStart, AnImageShardForTheLanguageModelIsAConfigError) {
  TempDir dir;
  writeShard(imageShard(5), dir / "shard");
  const std::string message = configError(configFor(dir, R"({"name": "transformer"})"));
  EXPECT_NE(message.find("the training set holds images, but the \"transformer\" model is a byte-level language model"),
            std::string::npos)
      << message;
}

TEST(WorkerStart, AShardThatFitsTheModelStarts) {
  TempDir dir;
  writeShard(imageShard(5), dir / "shard");
  EXPECT_NO_THROW(WorkerDaemon(configFor(dir, R"({"name": "mlp", "hidden": 4})")));
  writeShard(textShard(), dir / "text");
  WorkerConfig text = configFor(dir, R"({"name": "transformer", "layers": 1, "d_model": 8, "heads": 2, "context": 4})");
  text.shard_dir = dir / "text";
  EXPECT_NO_THROW(WorkerDaemon{text});
}

TEST(WorkerStart, AnyFailureToStartIsRecordedAsFailed) {
  TempDir dir;  // no shard at all
  try {
    WorkerDaemon daemon(configFor(dir, R"({"name": "cnn"})"));
    FAIL() << "a worker without its shard started";
  } catch (const std::exception& e) {
    const nlohmann::json s = status(dir);
    EXPECT_EQ(s.at("state"), "failed");
    EXPECT_EQ(s.at("detail"), e.what());
    EXPECT_EQ(s.at("worker"), "member-a");
  }
}

}  // namespace
}  // namespace tapestry::worker
