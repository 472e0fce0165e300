// Durable worker state: what is saved comes back bit for bit, a damaged or
// foreign file is an error that names it, and no file means no state.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/checkpoint.h"
#include "worker/temp_dir.h"
#include "worker/worker_state.h"

namespace tapestry::worker {
namespace {

// Floats with the awkward bit patterns a lossy encoding would change.
std::vector<float> awkwardFloats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  const float specials[] = {-0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::infinity(), 1.0f / 3.0f};
  for (size_t i = 0; i < std::size(specials) && i < n; ++i) v[i] = specials[i];
  return v;
}

bool sameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

WorkerState sampleState() {
  WorkerState s;
  s.federation_id = "fed-2024 \"north\" \xc3\xa9";
  s.fingerprint = "0123456789abcdef";
  s.trained_round = 41;
  s.trainer.parameters = awkwardFloats(10000, 7);
  s.trainer.momentum = awkwardFloats(10000, 8);
  s.trainer.epoch = (uint64_t{1} << 53) + 1;  // not representable as a double
  s.trainer.position = 59999;
  s.dual = awkwardFloats(10000, 10);
  s.trainer.second_moment = awkwardFloats(10000, 11);
  s.trainer.optimizer_steps = (uint64_t{1} << 53) + 3;
  s.residual = awkwardFloats(10000, 12);
  s.pending_residual = awkwardFloats(10000, 13);
  s.scaffold.anchor = awkwardFloats(10000, 14);
  s.scaffold.correction = awkwardFloats(10000, 15);
  s.scaffold.digest = 0xfedcba9876543210ull;
  s.restarted = true;
  s.metric = 0.1 + 0.2;  // not a short decimal
  s.metric_samples = 1234;
  return s;
}

std::string statePath(const testing::TempDir& dir) { return dir / "state/worker.ckpt"; }

class WorkerStateTest : public ::testing::Test {
 protected:
  // Expects loadWorkerState to throw std::runtime_error naming the file.
  void expectDamaged(const std::string& what) {
    try {
      (void)loadWorkerState(dir_ / "state");
      ADD_FAILURE() << "loadWorkerState accepted " << what;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(statePath(dir_)), std::string::npos) << what << ": " << e.what();
    }
  }

  testing::TempDir dir_;
};

TEST_F(WorkerStateTest, RoundTripIsBitIdentical) {
  WorkerState saved = sampleState();
  saved.shard_dir = "/data/shards/worker-3";
  saved.shard_samples = 5400;
  saveWorkerState(saved, dir_ / "state");
  auto loaded = loadWorkerState(dir_ / "state");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->shard_dir, saved.shard_dir) << "the data the position counts in";
  EXPECT_EQ(loaded->shard_samples, 5400u);
  EXPECT_EQ(loaded->federation_id, saved.federation_id);
  EXPECT_EQ(loaded->fingerprint, saved.fingerprint);
  EXPECT_EQ(loaded->trained_round, saved.trained_round);
  EXPECT_EQ(loaded->trainer.epoch, saved.trainer.epoch);
  EXPECT_EQ(loaded->trainer.position, saved.trainer.position);
  EXPECT_TRUE(sameBits(loaded->trainer.parameters, saved.trainer.parameters));
  EXPECT_TRUE(sameBits(loaded->trainer.momentum, saved.trainer.momentum));
  EXPECT_TRUE(sameBits(loaded->dual, saved.dual)) << "ADMM's dual is part of the durable state";
  EXPECT_TRUE(sameBits(loaded->trainer.second_moment, saved.trainer.second_moment));
  EXPECT_EQ(loaded->trainer.optimizer_steps, saved.trainer.optimizer_steps);
  EXPECT_TRUE(sameBits(loaded->residual, saved.residual)) << "the error feedback owed to this round's push";
  EXPECT_TRUE(sameBits(loaded->pending_residual, saved.pending_residual))
      << "the error feedback the saved round's push leaves: owed to the next round even after a restart";
  EXPECT_TRUE(sameBits(loaded->scaffold.anchor, saved.scaffold.anchor))
      << "SCAFFOLD's anchor: the consensus the saved round trained from";
  EXPECT_TRUE(sameBits(loaded->scaffold.correction, saved.scaffold.correction))
      << "SCAFFOLD's correction: what the saved round added per step, needed for the next one";
  EXPECT_EQ(loaded->scaffold.digest, saved.scaffold.digest);
  EXPECT_TRUE(loaded->restarted) << "a resent push must still say that its member restarted";
  EXPECT_EQ(loaded->metric, saved.metric) << "a resent push carries its rating of the consensus again";
  EXPECT_EQ(loaded->metric_samples, saved.metric_samples);
}

TEST_F(WorkerStateTest, SavingAgainReplacesTheState) {
  WorkerState first = sampleState();
  saveWorkerState(first, dir_ / "state");
  WorkerState second = first;
  second.trained_round = -1;  // not yet trained
  second.trainer.parameters = awkwardFloats(3, 9);
  second.trainer.momentum.clear();
  second.dual.clear();
  second.residual.clear();
  second.pending_residual.clear();
  second.scaffold = {};
  second.trainer.epoch = 0;
  second.trainer.position = 0;
  saveWorkerState(second, dir_ / "state");
  auto loaded = loadWorkerState(dir_ / "state");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->trained_round, -1);
  EXPECT_TRUE(sameBits(loaded->trainer.parameters, second.trainer.parameters));
  EXPECT_TRUE(loaded->trainer.momentum.empty());
  EXPECT_EQ(loaded->trainer.epoch, 0u);
  EXPECT_EQ(loaded->metric, first.metric);
}

TEST_F(WorkerStateTest, AMemberWithoutAValidationSplitSavesNoMetric) {
  WorkerState s = sampleState();
  s.metric = std::numeric_limits<double>::quiet_NaN();
  s.metric_samples = 0;
  saveWorkerState(s, dir_ / "state");
  auto loaded = loadWorkerState(dir_ / "state");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_TRUE(std::isnan(loaded->metric));
  EXPECT_EQ(loaded->metric_samples, 0u);
}

TEST_F(WorkerStateTest, NoStateIsNullopt) {
  EXPECT_FALSE(loadWorkerState(dir_ / "never-created").has_value());
  std::filesystem::create_directories(dir_ / "empty");
  EXPECT_FALSE(loadWorkerState(dir_ / "empty").has_value());
}

TEST_F(WorkerStateTest, FlippedByteIsReportedWithThePath) {
  saveWorkerState(sampleState(), dir_ / "state");
  {
    std::fstream f(statePath(dir_), std::ios::in | std::ios::out | std::ios::binary);
    char byte = 0;
    f.seekg(200);
    f.get(byte);
    f.seekp(200);
    f.put(static_cast<char>(byte ^ 0x01));
  }
  expectDamaged("a flipped byte");
}

TEST_F(WorkerStateTest, TruncatedFileIsReportedWithThePath) {
  saveWorkerState(sampleState(), dir_ / "state");
  auto size = std::filesystem::file_size(statePath(dir_));
  std::filesystem::resize_file(statePath(dir_), size / 2);
  expectDamaged("a truncated file");
}

// A checkpoint that is intact but not the worker's (another daemon's file
// copied over it) is as unusable as a damaged one and must say which file.
TEST_F(WorkerStateTest, ForeignCheckpointIsReportedWithThePath) {
  std::filesystem::create_directories(dir_ / "state");
  common::CheckpointWriter writer;
  writer.setMetadata(R"({"kind": "tapestry-coordinator", "round": 3})");
  writer.commit(statePath(dir_));
  expectDamaged("a coordinator checkpoint");
}

TEST_F(WorkerStateTest, MissingSectionIsReportedWithThePath) {
  std::filesystem::create_directories(dir_ / "state");
  common::CheckpointWriter writer;
  writer.setMetadata(R"({"kind": "tapestry-worker", "federation_id": "f", "fingerprint": "x",
                         "trained_round": 0, "epoch": 0, "position": 0})");
  std::vector<float> params(4, 1.0f);
  writer.addSection("parameters", params.data(), params.size() * sizeof(float));
  writer.commit(statePath(dir_));
  expectDamaged("a checkpoint without momentum");
}

TEST_F(WorkerStateTest, MetadataWithoutAFieldIsReportedWithThePath) {
  std::filesystem::create_directories(dir_ / "state");
  common::CheckpointWriter writer;
  writer.setMetadata(R"({"kind": "tapestry-worker", "federation_id": "f"})");
  writer.commit(statePath(dir_));
  expectDamaged("metadata without a fingerprint");
}

TEST_F(WorkerStateTest, ScaffoldStateOfTheWrongSizeIsReportedWithThePath) {
  WorkerState s = sampleState();
  s.scaffold.correction.resize(17);
  saveWorkerState(s, dir_ / "state");
  expectDamaged("a SCAFFOLD correction of the wrong size");
}

}  // namespace
}  // namespace tapestry::worker
