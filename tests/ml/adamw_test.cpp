// The inner optimizers' arithmetic, and AdamW inside the trainer.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <stdexcept>

#include "worker/ml/inner_optimizer.h"
#include "worker/ml/trainer.h"

namespace tapestry::worker {
namespace {

TEST(AdamW, TwoStepsMatchHandComputation) {
  // lr 0.1, wd 0.01: step 1 has m/(sqrt(v)/sqrt(1-b2)) = sign(g); step 2's
  // bias-corrected second moments are exactly 0.01, 0.04 and 0.09.
  std::vector<float> w = {1.0f, -2.0f, 0.5f}, m(3, 0.0f), v(3, 0.0f);
  const AdamWHyper h{0.1, 0.9, 0.999, 1e-8, 0.01};
  const std::vector<float> g1 = {0.1f, -0.2f, 0.3f}, g2 = {0.1f, 0.2f, -0.3f};
  adamWStep(w.data(), g1.data(), m.data(), v.data(), 3, 1, h);
  EXPECT_NEAR(w[0], 0.899, 1e-6);
  EXPECT_NEAR(w[1], -1.898, 1e-6);
  EXPECT_NEAR(w[2], 0.3995, 1e-6);
  adamWStep(w.data(), g2.data(), m.data(), v.data(), 3, 2, h);
  EXPECT_NEAR(m[0], 0.019, 1e-7);
  EXPECT_NEAR(v[2], 17.991e-5, 1e-8);  // float: 1 - 0.999f is not exactly 1e-3
  EXPECT_NEAR(w[0], 0.898101 - 0.1, 2e-6);
  EXPECT_NEAR(w[1], -1.896102 - 0.1 / 0.19 * 0.01, 2e-6);
  EXPECT_NEAR(w[2], 0.3991005 + 0.1 / 0.19 * 0.01, 2e-6);
  EXPECT_THROW(adamWStep(w.data(), g1.data(), m.data(), v.data(), 3, 0, h), std::invalid_argument);
}

TEST(SgdMomentum, MatchesTorchFormula) {
  std::vector<float> w = {1.0f, -1.0f}, vel = {0.5f, 0.0f};
  const std::vector<float> g = {0.2f, 0.4f};
  sgdMomentumStep(w.data(), g.data(), vel.data(), 2, {0.1f, 0.9f, 0.1f});
  EXPECT_FLOAT_EQ(vel[0], 0.9f * 0.5f + 0.2f + 0.1f * 1.0f);
  EXPECT_FLOAT_EQ(w[1], -1.0f - 0.1f * (0.4f - 0.1f));
}

TEST(InnerOptimizer, ParsesNamesAndListsChoices) {
  EXPECT_EQ(parseInnerOptimizer("sgd"), InnerOptimizer::kSgdMomentum);
  EXPECT_EQ(parseInnerOptimizer("adamw"), InnerOptimizer::kAdamW);
  EXPECT_STREQ(innerOptimizerName(InnerOptimizer::kAdamW), "adamw");
  EXPECT_STREQ(innerOptimizerName(parseInnerOptimizer(innerOptimizerName(InnerOptimizer::kSgdMomentum))), "sgd");
  try {
    parseInnerOptimizer("adam");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("\"sgd\""), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("\"adamw\""), std::string::npos);
  }
}

ImageDataset noiseImages(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ImageDataset d;
  d.images.resize(n * 784);
  d.labels.resize(n);
  for (auto& p : d.images) p = static_cast<uint8_t>(rng());
  for (auto& l : d.labels) l = static_cast<uint8_t>(rng() % 10);
  return d;
}

TrainSettings adamWSettings() {
  TrainSettings s;
  s.optimizer = InnerOptimizer::kAdamW;
  s.lr = 1e-3;
  s.weight_decay = 0.01;
  s.batch_size = 16;
  s.data_seed = 5;
  return s;
}

std::vector<float> paramsOf(const Trainer& t) {
  std::vector<float> p(t.parameterCount());
  t.parameters(p.data());
  return p;
}

TEST(AdamW, TrainerResumesBitForBit) {
  ModelSpec spec;
  spec.name = "mlp";
  spec.hidden = 16;
  const ImageDataset data = noiseImages(40, 3);
  std::vector<float> z(modelParameterCount(spec), 0.01f);
  Trainer uninterrupted(spec, 7, data, adamWSettings());
  uninterrupted.train(11, z.data(), 0.3);

  Trainer first(spec, 7, data, adamWSettings());
  first.train(4, z.data(), 0.3);
  const TrainerState saved = first.state();
  EXPECT_EQ(saved.optimizer_steps, 4u);
  EXPECT_EQ(saved.second_moment.size(), first.parameterCount());
  Trainer resumed(spec, 99, data, adamWSettings());
  resumed.restore(saved);
  resumed.train(7, z.data(), 0.3);
  const auto a = paramsOf(uninterrupted), b = paramsOf(resumed);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  EXPECT_NE(paramsOf(first), a);

  // An AdamW state does not resume under SGD, nor an SGD state with steps under AdamW.
  TrainSettings sgd = adamWSettings();
  sgd.optimizer = InnerOptimizer::kSgdMomentum;
  Trainer other(spec, 7, data, sgd);
  EXPECT_THROW(other.restore(saved), std::invalid_argument);
  other.train(2, nullptr, 0.0);
  EXPECT_TRUE(other.state().second_moment.empty());
  EXPECT_THROW(resumed.restore(other.state()), std::invalid_argument);
}

TEST(AdamW, RejectsBadHyperparameters) {
  ModelSpec spec;
  spec.name = "mlp";
  spec.hidden = 4;
  for (auto bad : {+[](TrainSettings& s) { s.beta1 = 1.0; }, +[](TrainSettings& s) { s.beta2 = -0.1; },
                   +[](TrainSettings& s) { s.epsilon = 0.0; }}) {
    TrainSettings s = adamWSettings();
    bad(s);
    EXPECT_THROW(Trainer(spec, 1, noiseImages(4, 1), s), std::invalid_argument);
  }
}

}  // namespace
}  // namespace tapestry::worker
