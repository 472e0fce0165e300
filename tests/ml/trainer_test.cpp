// The trainer, its flat parameter buffer and the consensus penalty.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include "worker/ml/model_impl.h"
#include "worker/ml/proximal_impl.h"
#include "worker/ml/trainer.h"

namespace tapestry::worker {
namespace {

// Class c is a bright horizontal band at rows 2c+4 and 2c+5 over noise.
ImageDataset bandDataset(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ImageDataset d;
  d.images.resize(n * 784);
  d.labels.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto label = static_cast<uint8_t>(rng() % 10);
    d.labels[i] = label;
    uint8_t* img = d.images.data() + i * 784;
    for (size_t p = 0; p < 784; ++p) img[p] = static_cast<uint8_t>(rng() % 60);
    for (size_t row = 2 * label + 4; row < 2 * label + 6u; ++row) {
      for (size_t col = 3; col < 25; ++col) img[row * 28 + col] = static_cast<uint8_t>(180 + rng() % 60);
    }
  }
  return d;
}

ModelSpec mlpSpec(int64_t hidden) {
  ModelSpec spec;
  spec.name = "mlp";
  spec.hidden = hidden;
  return spec;
}

std::vector<float> paramsOf(const Trainer& t) {
  std::vector<float> p(t.parameterCount());
  t.parameters(p.data());
  return p;
}

bool bitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<float> randomVector(size_t n, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

TEST(Proximal, GradientEqualsAutogradOfPenalty) {
  torch::manual_seed(3);
  const double rho = 0.37;
  const torch::Tensor w = torch::randn({1000});
  const torch::Tensor z = torch::randn({1000});
  const torch::Tensor g0 = torch::randn({1000});

  torch::Tensor leaf = w.clone().requires_grad_(true);
  (0.5 * rho * (leaf - z).pow(2).sum()).backward();
  const torch::Tensor expected = g0 + leaf.grad();

  torch::Tensor g = g0.clone();
  addProximalGradient(g, w, z, rho);
  EXPECT_TRUE(torch::allclose(g, expected, 1e-5, 1e-6));

  // Strided views take the generic path and agree.
  const torch::Tensor wide = torch::randn({2000});
  torch::Tensor g_strided = torch::zeros({2000}).slice(0, 0, 2000, 2);
  torch::Tensor g_plain = torch::zeros({1000});
  addProximalGradient(g_strided, wide.slice(0, 0, 2000, 2), z, rho);
  addProximalGradient(g_plain, wide.slice(0, 0, 2000, 2).contiguous(), z, rho);
  EXPECT_TRUE(torch::allclose(g_strided, g_plain, 1e-6, 1e-7));
}

TEST(FlatParameters, AutogradAccumulatesIntoTheFlatGradient) {
  torch::manual_seed(5);
  torch::nn::Sequential net = buildNetwork(ModelSpec{});
  torch::manual_seed(5);
  torch::nn::Sequential reference = buildNetwork(ModelSpec{});
  const FlatParameters flat = flattenParameters(*net);

  const torch::Tensor input = torch::randn({8, 1, 28, 28});
  const torch::Tensor target = torch::randint(0, 10, {8}, torch::kInt64);
  std::vector<const void*> grad_pointers;
  for (const auto& p : net->parameters()) grad_pointers.push_back(p.grad().data_ptr());
  for (int pass = 0; pass < 2; ++pass) {  // the second pass accumulates
    torch::nn::functional::cross_entropy(net->forward(input), target).backward();
    torch::nn::functional::cross_entropy(reference->forward(input), target).backward();
  }

  const auto params = net->parameters();
  const auto reference_params = reference->parameters();
  const auto* base = static_cast<const char*>(flat.weights.data_ptr());
  std::vector<torch::Tensor> reference_grads;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto* data = static_cast<const char*>(params[i].data_ptr());
    EXPECT_TRUE(data >= base && data < base + flat.weights.numel() * sizeof(float)) << "parameter " << i;
    EXPECT_EQ(params[i].grad().data_ptr(), grad_pointers[i]) << "grad of parameter " << i << " was replaced";
    EXPECT_TRUE(torch::equal(params[i], reference_params[i]));
    EXPECT_TRUE(torch::equal(params[i].grad(), reference_params[i].grad()));
    reference_grads.push_back(reference_params[i].grad().reshape({-1}));
  }
  EXPECT_TRUE(torch::equal(flat.grads, torch::cat(reference_grads)));
}

TEST(Trainer, MlpLearnsSeparableData) {
  const ImageDataset test = bandDataset(300, 2);
  TrainSettings settings;
  settings.lr = 0.05;
  settings.batch_size = 32;
  Trainer trainer(mlpSpec(32), 1, bandDataset(600, 1), settings);
  const double before = trainer.evaluate(test);
  const double first_loss = trainer.train(10, nullptr, 0.0);
  trainer.train(130, nullptr, 0.0);
  const double last_loss = trainer.train(10, nullptr, 0.0);
  const double after = trainer.evaluate(test);
  EXPECT_LT(before, 0.4);
  EXPECT_GT(after, 0.9) << "before " << before;
  EXPECT_LT(last_loss, 0.5 * first_loss);
}

TEST(Trainer, CnnLearnsSeparableData) {
  TrainSettings settings;  // NIID-Bench's lr 0.01, momentum 0.9
  settings.batch_size = 32;
  Trainer trainer(ModelSpec{}, 1, bandDataset(600, 3), settings);
  trainer.train(100, nullptr, 0.0);
  EXPECT_GT(trainer.evaluate(bandDataset(300, 4)), 0.8);
}

TEST(Trainer, StateRestoreResumesBitForBit) {
  const ImageDataset data = bandDataset(100, 5);  // 3 full batches of 32 and one of 4 per epoch
  TrainSettings settings;
  settings.lr = 0.05;
  settings.weight_decay = 1e-4;
  settings.batch_size = 32;
  settings.data_seed = 11;
  const ModelSpec spec = mlpSpec(16);
  Trainer uninterrupted(spec, 7, data, settings);
  const std::vector<float> z = randomVector(uninterrupted.parameterCount(), 6, 0.1f);
  uninterrupted.train(14, z.data(), 0.5);

  Trainer first(spec, 7, data, settings);
  first.train(5, z.data(), 0.5);
  const TrainerState saved = first.state();
  EXPECT_EQ(saved.epoch, 1u);
  EXPECT_EQ(saved.position, 32u);
  first.train(9, z.data(), 0.5);
  EXPECT_TRUE(bitIdentical(paramsOf(first), paramsOf(uninterrupted)));

  Trainer resumed(spec, 99, data, settings);  // other init: everything must come from the state
  resumed.restore(saved);
  resumed.train(9, z.data(), 0.5);
  EXPECT_TRUE(bitIdentical(paramsOf(resumed), paramsOf(uninterrupted)));
  EXPECT_EQ(resumed.state().epoch, uninterrupted.state().epoch);
  EXPECT_EQ(resumed.state().position, uninterrupted.state().position);
  EXPECT_TRUE(bitIdentical(resumed.state().momentum, uninterrupted.state().momentum));
}

TEST(Trainer, SeedsDecideEverything) {
  const ImageDataset data = bandDataset(200, 7);
  TrainSettings settings;
  auto run = [&](uint64_t init_seed, uint64_t data_seed) {
    settings.data_seed = data_seed;
    Trainer t(ModelSpec{}, init_seed, data, settings);
    t.train(6, nullptr, 0.0);
    return paramsOf(t);
  };
  const auto a = run(1, 1);
  EXPECT_TRUE(bitIdentical(a, run(1, 1)));
  EXPECT_FALSE(bitIdentical(a, run(2, 1)));
  EXPECT_FALSE(bitIdentical(a, run(1, 2)));
}

TEST(Trainer, ConcurrentConstructionStillDependsOnlyOnTheSeed) {
  // Trainers built on several threads at once (the demo's local baselines)
  // must not share LibTorch's global generator mid-initialisation.
  const ImageDataset data = bandDataset(64, 12);
  auto paramsOf = [](const Trainer& t) {
    std::vector<float> p(t.parameterCount());
    t.parameters(p.data());
    return p;
  };
  const std::vector<float> alone = paramsOf(Trainer(ModelSpec{}, 21, data, {}));
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::vector<std::vector<float>> built(4);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < built.size(); ++i)
      threads.emplace_back([&, i] { built[i] = paramsOf(Trainer(ModelSpec{}, i % 2 ? 99 : 21, data, {})); });
    for (auto& t : threads) t.join();
    EXPECT_EQ(built[0], alone);
    EXPECT_EQ(built[2], alone);
  }
}

TEST(Trainer, ZeroRhoOrNoConsensusIsPlainTraining) {
  const ImageDataset data = bandDataset(100, 8);
  Trainer a(mlpSpec(16), 3, data, TrainSettings{});
  Trainer b(mlpSpec(16), 3, data, TrainSettings{});
  const std::vector<float> z = randomVector(a.parameterCount(), 9, 1.0f);
  a.train(8, nullptr, 0.0);
  b.train(8, z.data(), 0.0);
  EXPECT_TRUE(bitIdentical(paramsOf(a), paramsOf(b)));
}

TEST(Trainer, ShiftIsAddedAfterEveryStep) {
  // SCAFFOLD's correction: with a learning rate too small to move anything,
  // five steps move the parameters by five shifts.
  TrainSettings settings;
  settings.lr = 1e-9;
  Trainer trainer(mlpSpec(16), 3, bandDataset(100, 8), settings);
  const std::vector<float> start = paramsOf(trainer);
  const std::vector<float> shift = randomVector(trainer.parameterCount(), 12, 0.01f);
  trainer.train(5, nullptr, 0.0, shift.data());
  const std::vector<float> after = paramsOf(trainer);
  float worst = 0;
  for (size_t i = 0; i < after.size(); ++i) worst = std::max(worst, std::abs(after[i] - (start[i] + 5 * shift[i])));
  EXPECT_LT(worst, 1e-5f);
}

TEST(Trainer, TheTrainingThreadFlushesDenormalsToZero) {
  // Weights and optimizer moments that decay into the denormal range cost
  // 10-100x per operation on x86; a training thread must not pay that.
  TrainSettings settings;
  settings.threads = 2;  // LibTorch's intra-op threads too
  Trainer trainer(mlpSpec(8), 1, bandDataset(32, 13), settings);
  auto flushedOnEveryThread = [] {
    std::atomic<int> kept{0};
    at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
      volatile float tiny = 1e-39f;  // below FLT_MIN: a denormal
      volatile float half = tiny * 0.5f;
      if (half != 0.0f) ++kept;
    });
    volatile float tiny = 1e-39f;
    volatile float half = tiny * 0.5f;
    return kept == 0 && half == 0.0f;
  };
  at::parallel_for(0, at::get_num_threads(), 1, [](int64_t, int64_t) { at::globalContext().setFlushDenormal(false); });
  at::globalContext().setFlushDenormal(false);
  EXPECT_FALSE(flushedOnEveryThread());
  trainer.train(1, nullptr, 0.0);
  EXPECT_TRUE(flushedOnEveryThread());
}

TEST(Trainer, HugeRhoPullsParametersToConsensus) {
  TrainSettings settings;
  settings.lr = 0.001;  // lr * rho = 1: stable with momentum 0.9
  Trainer trainer(mlpSpec(16), 4, bandDataset(200, 10), settings);
  const std::vector<float> z = randomVector(trainer.parameterCount(), 11, 0.1f);
  auto distance = [&] {
    const auto w = paramsOf(trainer);
    float worst = 0;
    for (size_t i = 0; i < w.size(); ++i) worst = std::max(worst, std::abs(w[i] - z[i]));
    return worst;
  };
  const float start = distance();
  trainer.train(300, z.data(), 1000.0);
  EXPECT_GT(start, 0.3f);
  EXPECT_LT(distance(), 0.01f);
}

TEST(Trainer, EvaluationOfOtherParameters) {
  const ImageDataset data = bandDataset(300, 12);
  TrainSettings settings;
  settings.lr = 0.05;
  settings.batch_size = 32;
  Trainer trained(mlpSpec(32), 5, data, settings);
  trained.train(100, nullptr, 0.0);
  Trainer fresh(mlpSpec(32), 6, data, settings);
  const auto own = paramsOf(fresh);
  const auto good = paramsOf(trained);

  const double via_other = fresh.evaluateParameters(good.data(), data);
  EXPECT_EQ(via_other, trained.evaluate(data));
  EXPECT_EQ(via_other, evaluateFlat(mlpSpec(32), good, data));
  EXPECT_TRUE(bitIdentical(paramsOf(fresh), own));
  EXPECT_GT(via_other, fresh.evaluate(data));
}

TEST(Trainer, FingerprintAndSizeMatchTheSpec) {
  const ImageDataset data = bandDataset(10, 13);
  Trainer cnn(ModelSpec{}, 1, data, TrainSettings{});
  Trainer mlp(mlpSpec(200), 1, data, TrainSettings{});
  EXPECT_EQ(cnn.fingerprint(), modelFingerprint(ModelSpec{}));
  EXPECT_EQ(mlp.fingerprint(), modelFingerprint(mlpSpec(200)));
  EXPECT_NE(cnn.fingerprint(), mlp.fingerprint());
  EXPECT_EQ(Trainer(ModelSpec{}, 2, data, TrainSettings{}).fingerprint(), cnn.fingerprint());
  EXPECT_EQ(cnn.parameterCount(), modelParameterCount(ModelSpec{}));
  EXPECT_EQ(mlp.trainingSamples(), 10u);
}

// The samples of `data` whose label is below `classes`.
ImageDataset firstClasses(const ImageDataset& data, uint8_t classes) {
  std::vector<size_t> keep;
  for (size_t i = 0; i < data.size(); ++i)
    if (data.labels[i] < classes) keep.push_back(i);
  return subset(data, keep);
}

// The raw logits of the network with `params` on every sample of `data`.
torch::Tensor logitsOf(const ModelSpec& spec, const std::vector<float>& params, const ImageDataset& data) {
  torch::NoGradGuard no_grad;
  torch::nn::Sequential net = buildNetwork(spec);
  FlatParameters flat = flattenParameters(*net);
  std::memcpy(flat.weights.data_ptr<float>(), params.data(), params.size() * sizeof(float));
  return net->forward(inputBatch(data, nullptr, 0, data.size()));
}

// Mean softmax probability of the raw logits on classes >= `present`, over `data`.
double absentClassMass(const ModelSpec& spec, const std::vector<float>& params, const ImageDataset& data,
                       int64_t present) {
  const torch::Tensor probs = torch::softmax(logitsOf(spec, params, data), 1);
  return probs.narrow(1, present, kClasses - present).sum(1).mean().item<double>();
}

// A worker that holds two classes: plain cross-entropy learns to push every
// other class down, the logit-adjusted loss (its own prior folded into the
// logits) does not, and both still tell the two classes apart.
TEST(Trainer, LogitAdjustmentLeavesClassesTheWorkerNeverSeesAlone) {
  const ImageDataset two = firstClasses(bandDataset(1500, 21), 2);
  const ImageDataset test = firstClasses(bandDataset(600, 22), 2);
  TrainSettings plain;
  plain.lr = 0.05;
  plain.batch_size = 32;
  TrainSettings adjusted = plain;
  adjusted.logit_adjustment = 1.0;
  Trainer a(mlpSpec(32), 1, two, plain), b(mlpSpec(32), 1, two, adjusted);
  const double at_start = absentClassMass(mlpSpec(32), paramsOf(a), test, 2);
  a.train(150, nullptr, 0.0);
  b.train(150, nullptr, 0.0);
  const double mass_plain = absentClassMass(mlpSpec(32), paramsOf(a), test, 2);
  const double mass_adjusted = absentClassMass(mlpSpec(32), paramsOf(b), test, 2);
  EXPECT_LT(mass_plain, 0.05 * at_start) << "plain cross-entropy pushes the absent classes down";
  EXPECT_GT(mass_adjusted, 10 * mass_plain) << "at start " << at_start << ", plain " << mass_plain;
  EXPECT_GT(a.evaluate(test), 0.95);
  EXPECT_GT(b.evaluate(test), 0.95);
}

// Softmax over classes >= `present` of the raw logits, per sample of `data`.
torch::Tensor absentClassDistribution(const ModelSpec& spec, const std::vector<float>& params, const ImageDataset& data,
                                      int64_t present) {
  return torch::softmax(logitsOf(spec, params, data).narrow(1, present, kClasses - present), 1);
}

double meanKl(const torch::Tensor& p, const torch::Tensor& q) {
  return (p * (p.log() - q.log())).sum(1).mean().item<double>();
}

// Not-true distillation keeps the teacher's view of the classes a worker
// lacks (how it ranks them against each other) while the worker learns its
// own two; without it, local training drifts away from it. With no teacher
// set, it is plain training, bit for bit.
TEST(Trainer, NotTrueDistillationKeepsTheTeachersViewOfTheOtherClasses) {
  const ImageDataset all = bandDataset(1500, 31);
  const ImageDataset two = firstClasses(all, 2);
  const ImageDataset test = firstClasses(bandDataset(600, 32), 2);
  TrainSettings plain;
  plain.lr = 0.05;
  plain.batch_size = 32;
  TrainSettings local = plain;
  local.lr = 0.01;
  TrainSettings distilled = local;
  distilled.distill = 1.0;
  // The teacher knows every class: trained on all ten first.
  Trainer teacher(mlpSpec(32), 1, all, plain);
  teacher.train(150, nullptr, 0.0);
  const std::vector<float> taught = paramsOf(teacher);
  Trainer a(mlpSpec(32), 2, two, local), b(mlpSpec(32), 2, two, distilled), c(mlpSpec(32), 2, two, distilled);
  for (Trainer* t : {&a, &b, &c}) t->setParameters(taught.data());
  b.setTeacher(taught.data());
  a.train(150, nullptr, 0.0);
  b.train(150, nullptr, 0.0);
  c.train(150, nullptr, 0.0);
  const torch::Tensor reference = absentClassDistribution(mlpSpec(32), taught, test, 2);
  const double drift_plain = meanKl(reference, absentClassDistribution(mlpSpec(32), paramsOf(a), test, 2));
  const double drift_distilled = meanKl(reference, absentClassDistribution(mlpSpec(32), paramsOf(b), test, 2));
  EXPECT_LT(drift_distilled, 0.25 * drift_plain) << "plain " << drift_plain << ", distilled " << drift_distilled;
  EXPECT_GT(b.evaluate(test), 0.95);
  EXPECT_TRUE(bitIdentical(paramsOf(a), paramsOf(c))) << "no teacher, no distillation";
}

TEST(Trainer, MisuseIsRefusedWithReasons) {
  const ImageDataset data = bandDataset(10, 14);
  Trainer mlp(mlpSpec(8), 1, data, TrainSettings{});
  TrainerState wrong = mlp.state();
  wrong.momentum.pop_back();
  EXPECT_THROW(mlp.restore(wrong), std::invalid_argument);
  wrong = mlp.state();
  wrong.position = 10;
  EXPECT_THROW(mlp.restore(wrong), std::invalid_argument);
  EXPECT_THROW(evaluateFlat(mlpSpec(8), std::vector<float>(5), data), std::invalid_argument);
  EXPECT_THROW(mlp.train(-1, nullptr, 0.0), std::invalid_argument);
  EXPECT_THROW(mlp.train(1, nullptr, -1.0), std::invalid_argument);
  EXPECT_EQ(mlp.train(0, nullptr, 0.0), 0.0);

  ImageDataset small = data;
  small.rows = 14;
  small.images.resize(10 * 14 * 28);
  try {
    Trainer t(ModelSpec{}, 1, small, TrainSettings{});
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("14x28 images; the models take 28x28"), std::string::npos) << e.what();
  }
  TrainSettings bad;
  bad.batch_size = 0;
  EXPECT_THROW(Trainer(ModelSpec{}, 1, data, bad), std::invalid_argument);
  bad = TrainSettings{};
  bad.momentum = 1.0;
  EXPECT_THROW(Trainer(ModelSpec{}, 1, data, bad), std::invalid_argument);
  bad = TrainSettings{};
  bad.logit_adjustment = -0.5;
  EXPECT_THROW(Trainer(ModelSpec{}, 1, data, bad), std::invalid_argument);
  bad = TrainSettings{};
  bad.distill_temperature = 0;
  EXPECT_THROW(Trainer(ModelSpec{}, 1, data, bad), std::invalid_argument);
  Trainer empty(mlpSpec(8), 1, ImageDataset{}, TrainSettings{});
  EXPECT_THROW(empty.train(1, nullptr, 0.0), std::logic_error);
  EXPECT_THROW(empty.evaluate(ImageDataset{}), std::invalid_argument);
}

}  // namespace
}  // namespace tapestry::worker
