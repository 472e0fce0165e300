// The byte-level transformer: its spec, size, metric and training on text.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include "worker/ml/trainer.h"

namespace tapestry::worker {
namespace {

ModelSpec tinyTransformer() {
  ModelSpec spec;
  spec.name = "transformer";
  spec.layers = 1;
  spec.d_model = 32;
  spec.heads = 4;
  spec.context = 16;
  return spec;
}

// Sentences from a small vocabulary in seeded order: very predictable bytes.
std::string repetitiveText(size_t bytes, uint64_t seed) {
  const char* words[] = {"the cat sat on the mat. ", "a dog ran to the park. ", "der Hund lief. "};
  std::mt19937_64 rng(seed);
  std::string text;
  while (text.size() < bytes) text += words[rng() % 3];
  text.resize(bytes);
  return text;
}

std::string specError(const nlohmann::json& j) {
  try {
    ModelSpec::fromJson(j);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

std::vector<float> paramsOf(const Trainer& t) {
  std::vector<float> p(t.parameterCount());
  t.parameters(p.data());
  return p;
}

TEST(TransformerSpec, JsonRoundTripAndStrictness) {
  ModelSpec spec = tinyTransformer();
  spec.tied = false;
  const ModelSpec back = ModelSpec::fromJson(spec.toJson());
  EXPECT_EQ(back.name, "transformer");
  EXPECT_EQ(back.layers, 1);
  EXPECT_EQ(back.d_model, 32);
  EXPECT_EQ(back.heads, 4);
  EXPECT_EQ(back.context, 16);
  EXPECT_FALSE(back.tied);
  EXPECT_FALSE(ModelSpec{}.toJson().contains("layers"));
  const ModelSpec defaults = ModelSpec::fromJson({{"name", "transformer"}});
  EXPECT_EQ(defaults.layers, 2);
  EXPECT_EQ(defaults.context, 64);

  EXPECT_NE(specError({{"name", "transformer"}, {"heads", 5}}).find("model.heads must be a positive divisor"),
            std::string::npos);
  EXPECT_NE(specError({{"name", "transformer"}, {"layers", 0}}).find("model.layers"), std::string::npos);
  EXPECT_NE(specError({{"name", "transformer"}, {"context", -1}}).find("model.context"), std::string::npos);
  EXPECT_NE(specError({{"name", "transformer"}, {"tied", 1}}).find("model.tied must be true or false"),
            std::string::npos);
  EXPECT_NE(specError({{"name", "cnn"}, {"layers", 2}}).find("applies to the \"transformer\" only"),
            std::string::npos);
  EXPECT_NE(specError({{"name", "gpt"}}).find("\"transformer\" for text"), std::string::npos);
}

TEST(TransformerSpec, ParameterCountAndFingerprintMatchTrainer) {
  for (const bool tied : {true, false}) {
    ModelSpec spec = tinyTransformer();
    spec.layers = 2;
    spec.tied = tied;
    const size_t d = 32, blocks = 2 * (12 * d * d + 13 * d);
    const size_t head = tied ? 256 : 256 * d + 256;
    EXPECT_EQ(modelParameterCount(spec), 256 * d + 16 * d + blocks + 2 * d + head);
    Trainer trainer(spec, 3, Dataset::fromText("some text to train on"), TrainSettings{});
    EXPECT_EQ(trainer.parameterCount(), modelParameterCount(spec));
    EXPECT_EQ(trainer.fingerprint(), modelFingerprint(spec));
  }
  ModelSpec untied = tinyTransformer();
  untied.tied = false;
  EXPECT_NE(modelFingerprint(tinyTransformer()), modelFingerprint(untied));
  EXPECT_NE(modelFingerprint(tinyTransformer()), modelFingerprint(ModelSpec{}));
  EXPECT_STREQ(metricName(tinyTransformer()), "bits_per_byte");
  EXPECT_FALSE(higherIsBetter(tinyTransformer()));
  EXPECT_STREQ(metricName(ModelSpec{}), "accuracy");
  EXPECT_TRUE(higherIsBetter(ModelSpec{}));
}

TEST(TransformerMetric, ZeroParametersPredictUniformBytes) {
  // All-zero weights make every logit 0: exactly 8 bits per byte, over full
  // windows and the shorter tail window alike.
  const ModelSpec spec = tinyTransformer();
  const std::vector<float> zeros(modelParameterCount(spec), 0.0f);
  for (const size_t bytes : {2u, 17u, 100u}) {
    EXPECT_NEAR(evaluateFlat(spec, zeros, Dataset::fromText(repetitiveText(bytes, 1))), 8.0, 1e-4) << bytes;
  }
  EXPECT_THROW(evaluateFlat(spec, zeros, Dataset::fromText("x")), std::invalid_argument);
}

TEST(TransformerTraining, LowersBitsPerByteOnRepetitiveText) {
  TrainSettings settings;
  settings.optimizer = InnerOptimizer::kAdamW;
  settings.lr = 3e-3;
  settings.batch_size = 16;
  settings.data_seed = 4;
  Trainer trainer(tinyTransformer(), 11, Dataset::fromText(repetitiveText(4000, 2)), settings);
  const Dataset val = Dataset::fromText(repetitiveText(600, 3));
  const double before = trainer.evaluate(val);
  EXPECT_GT(before, 6.0);  // near-uniform at initialisation
  trainer.train(120, nullptr, 0.0);
  const double after = trainer.evaluate(val);
  EXPECT_LT(after, 0.6 * before) << "before " << before << " after " << after;
}

TEST(TransformerTraining, ResumesBitForBit) {
  TrainSettings settings;
  settings.lr = 0.05;
  settings.batch_size = 8;
  const Dataset text = Dataset::fromText(repetitiveText(300, 5));
  const std::vector<float> z(modelParameterCount(tinyTransformer()), 0.02f);
  Trainer uninterrupted(tinyTransformer(), 1, text, settings);
  uninterrupted.train(9, z.data(), 0.5);
  Trainer first(tinyTransformer(), 1, text, settings);
  first.train(4, z.data(), 0.5);
  Trainer resumed(tinyTransformer(), 2, text, settings);
  resumed.restore(first.state());
  resumed.train(5, z.data(), 0.5);
  const auto a = paramsOf(uninterrupted), b = paramsOf(resumed);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  // 300 bytes in windows of 16 predictions: 19 windows an epoch, so 9 steps of 8 cross two epochs.
  EXPECT_EQ(uninterrupted.state().epoch, 3u);
  EXPECT_EQ(uninterrupted.state().position, 0u);
  EXPECT_EQ(uninterrupted.trainingSamples(), 300u);
}

TEST(TransformerTraining, DataOfTheWrongKindIsRefused) {
  ImageDataset images;
  images.labels = {1};
  images.images.resize(784);
  try {
    Trainer(tinyTransformer(), 1, images, TrainSettings{});
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("holds images"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Trainer(ModelSpec{}, 1, Dataset::fromText("abc"), TrainSettings{}), std::invalid_argument);
  Trainer lm(tinyTransformer(), 1, Dataset::fromText("abcdef"), TrainSettings{});
  EXPECT_THROW(lm.evaluate(images), std::invalid_argument);
  Trainer tiny(tinyTransformer(), 1, Dataset::fromText("a"), TrainSettings{});
  EXPECT_THROW(tiny.train(1, nullptr, 0.0), std::logic_error);
}

}  // namespace
}  // namespace tapestry::worker
