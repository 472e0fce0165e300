// The centralised and local-only reference points: the curve has one point
// per evaluation, and a baseline whose parameters blow up is brought back
// from its last finite parameters instead of being reported at chance.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "tools/baseline.h"
#include "worker/ml/dataset.h"

namespace tapestry::tools {
namespace {

namespace fs = std::filesystem;

// Two separable classes of 28x28 images: class 1 has a bright upper half.
worker::Dataset twoClasses(size_t n, uint32_t seed) {
  worker::Dataset d;
  d.rows = d.cols = 28;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 60);
  for (size_t i = 0; i < n; ++i) {
    uint8_t label = static_cast<uint8_t>(i % 2);
    d.labels.push_back(label);
    for (int p = 0; p < 28 * 28; ++p)
      d.images.push_back(static_cast<uint8_t>(noise(rng) + (label == 1 && p < 14 * 28 ? 180 : 0)));
  }
  return d;
}

class Baselines : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tapestry-baseline-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    for (int i = 0; i < 2; ++i) {
      worker::WorkerConfig w;
      w.name = "worker-" + std::to_string(i);
      w.shard_dir = (dir_ / w.name).string();
      w.model = worker::ModelSpec::fromJson({{"name", "mlp"}, {"hidden", 16}});
      w.train.lr = 0.05;
      worker::writeShard({twoClasses(64, 10 + i), twoClasses(16, 20 + i)}, w.shard_dir);
      workers_.push_back(w);
    }
    test_ = twoClasses(64, 99);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::vector<worker::WorkerConfig> workers_;
  worker::Dataset test_;
};

TEST_F(Baselines, CentralisedTrainingIsEvaluatedAfterEveryStretchAndLearns) {
  BaselineResult r = runCentralisedBaseline(workers_, 3, 40, workers_[0].train, test_, 10);
  ASSERT_EQ(r.curve.size(), 5u);  // before training, then after every 10 steps
  EXPECT_EQ(r.restarts, 0);
  EXPECT_DOUBLE_EQ(r.test_accuracy, r.curve.back());
  EXPECT_GT(r.test_accuracy, 0.9);
}

TEST_F(Baselines, TrainingThatBlowsUpRestartsFromItsLastFiniteParameters) {
  worker::TrainSettings wild = workers_[0].train;
  wild.lr = 1e12;
  BaselineResult r = runCentralisedBaseline(workers_, 3, 20, wild, test_, 10);
  EXPECT_GT(r.restarts, 0);
  ASSERT_EQ(r.curve.size(), 3u);
  for (double a : r.curve) EXPECT_TRUE(std::isfinite(a));

  for (auto& w : workers_) w.train = wild;
  for (const auto& local : runLocalBaselines(workers_, 3, 20, test_, 10)) EXPECT_GT(local.restarts, 0) << local.name;
}

}  // namespace
}  // namespace tapestry::tools
