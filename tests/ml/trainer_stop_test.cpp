// Trainer::train with a stop check: steps end between two steps once it
// says so, and the steps taken are exactly those of an uninterrupted run.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "worker/ml/trainer.h"

namespace tapestry::worker {
namespace {

ImageDataset noiseImages(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ImageDataset d;
  d.images.resize(n * 784);
  d.labels.resize(n);
  for (auto& p : d.images) p = static_cast<uint8_t>(rng());
  for (auto& l : d.labels) l = static_cast<uint8_t>(rng() % 10);
  return d;
}

std::vector<float> paramsOf(const Trainer& t) {
  std::vector<float> p(t.parameterCount());
  t.parameters(p.data());
  return p;
}

TEST(TrainerStop, StopsBetweenStepsAndKeepsWhatItTook) {
  ModelSpec spec;
  spec.name = "mlp";
  spec.hidden = 8;
  TrainSettings settings;
  settings.batch_size = 8;
  settings.data_seed = 3;
  const ImageDataset data = noiseImages(40, 9);
  Trainer reference(spec, 5, data, settings);
  const double reference_loss = reference.train(7, nullptr, 0);

  Trainer stopped(spec, 5, data, settings);
  int asked = 0;
  int64_t taken = -1;
  const double loss = stopped.train(20, nullptr, 0, nullptr, [&asked] { return ++asked > 7; }, &taken);
  EXPECT_EQ(taken, 7);
  EXPECT_EQ(asked, 8) << "asked once before every step";
  EXPECT_DOUBLE_EQ(loss, reference_loss);
  const auto a = paramsOf(stopped), b = paramsOf(reference);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  EXPECT_EQ(stopped.state().position, reference.state().position);
  EXPECT_EQ(stopped.state().epoch, reference.state().epoch);
}

TEST(TrainerStop, AStopBeforeTheFirstStepTakesNone) {
  ModelSpec spec;
  spec.name = "mlp";
  spec.hidden = 4;
  Trainer trainer(spec, 1, noiseImages(8, 2), TrainSettings{});
  const auto before = paramsOf(trainer);
  int64_t taken = -1;
  EXPECT_EQ(trainer.train(5, nullptr, 0, nullptr, [] { return true; }, &taken), 0.0);
  EXPECT_EQ(taken, 0);
  EXPECT_EQ(paramsOf(trainer), before);
}

}  // namespace
}  // namespace tapestry::worker
