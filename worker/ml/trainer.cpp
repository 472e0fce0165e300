#include "worker/ml/trainer.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "worker/ml/model_impl.h"
#include "worker/ml/proximal_impl.h"
#include "worker/ml/random.h"

namespace tapestry::worker {
namespace {

void checkSettings(const TrainSettings& s) {
  auto bad = [](const std::string& what) { throw std::invalid_argument("training setting " + what); };
  if (!(s.lr >= 0) || !std::isfinite(s.lr)) bad("lr must be a finite number >= 0, got " + std::to_string(s.lr));
  if (!(s.momentum >= 0 && s.momentum < 1)) bad("momentum must be in [0, 1), got " + std::to_string(s.momentum));
  if (!(s.weight_decay >= 0) || !std::isfinite(s.weight_decay)) {
    bad("weight_decay must be a finite number >= 0, got " + std::to_string(s.weight_decay));
  }
  if (s.batch_size < 1) bad("batch_size must be at least 1, got " + std::to_string(s.batch_size));
  if (s.threads < 0) bad("threads must be >= 0 (0 = LibTorch's default), got " + std::to_string(s.threads));
}

}  // namespace

struct Trainer::Impl {
  ModelSpec spec;
  TrainSettings settings;
  ImageDataset train;
  torch::nn::Sequential net;
  FlatParameters flat;
  torch::Tensor momentum;
  uint64_t epoch = 0, position = 0;
  std::vector<size_t> order;  // permutation of the training set for order_epoch
  uint64_t order_epoch = UINT64_MAX;

  int64_t count() const { return flat.weights.numel(); }

  const std::vector<size_t>& epochOrder() {
    if (order_epoch != epoch) {
      order.resize(train.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::mt19937_64 rng = seededEngine(settings.data_seed, epoch);
      shuffleInPlace(order, rng);
      order_epoch = epoch;
    }
    return order;
  }

  // g += wd * w; v = mu * v + g; w -= lr * v  (torch.optim.SGD, dampening 0).
  void sgdMomentumStep() {
    float* w = flat.weights.data_ptr<float>();
    float* g = flat.grads.data_ptr<float>();
    float* v = momentum.data_ptr<float>();
    const auto lr = static_cast<float>(settings.lr);
    const auto mu = static_cast<float>(settings.momentum);
    const auto wd = static_cast<float>(settings.weight_decay);
    const int64_t n = count();
    for (int64_t i = 0; i < n; ++i) {
      const float grad = g[i] + wd * w[i];
      v[i] = mu * v[i] + grad;
      w[i] -= lr * v[i];
    }
  }
};

Trainer::Trainer(const ModelSpec& spec, uint64_t init_seed, ImageDataset train, TrainSettings settings)
    : impl_(std::make_unique<Impl>()) {
  checkSettings(settings);
  checkImageShape(train, "the training set");
  if (settings.threads > 0) torch::set_num_threads(settings.threads);
  impl_->spec = spec;
  impl_->settings = settings;
  impl_->train = std::move(train);
  {
    // LibTorch's default generator is process-wide: building under one lock
    // keeps initialisation a function of init_seed alone when trainers are
    // constructed from several threads (the demo's local baselines).
    static std::mutex seed_mutex;
    std::lock_guard<std::mutex> lock(seed_mutex);
    torch::manual_seed(init_seed);
    impl_->net = buildNetwork(spec);
  }
  impl_->flat = flattenParameters(*impl_->net);
  impl_->momentum = torch::zeros({impl_->count()}, torch::kFloat32);
}

Trainer::~Trainer() = default;
Trainer::Trainer(Trainer&&) noexcept = default;
Trainer& Trainer::operator=(Trainer&&) noexcept = default;

size_t Trainer::parameterCount() const { return static_cast<size_t>(impl_->count()); }

std::string Trainer::fingerprint() const { return fingerprintOf(*impl_->net); }

void Trainer::parameters(float* dst) const {
  std::memcpy(dst, impl_->flat.weights.data_ptr<float>(), parameterCount() * sizeof(float));
}

void Trainer::setParameters(const float* src) {
  std::memcpy(impl_->flat.weights.data_ptr<float>(), src, parameterCount() * sizeof(float));
}

double Trainer::train(int64_t steps, const float* consensus, double rho) {
  Impl& m = *impl_;
  if (steps < 0) throw std::invalid_argument("train: steps must be >= 0, got " + std::to_string(steps));
  if (!(rho >= 0) || !std::isfinite(rho)) {
    throw std::invalid_argument("train: rho must be a finite number >= 0, got " + std::to_string(rho));
  }
  if (steps == 0) return 0.0;
  if (m.train.size() == 0) throw std::logic_error("train: this worker has no training samples");
  torch::Tensor z;
  if (consensus != nullptr && rho > 0) {
    z = torch::from_blob(const_cast<float*>(consensus), {m.count()}, torch::kFloat32);
  }
  const size_t n = m.train.size();
  const auto batch = static_cast<size_t>(m.settings.batch_size);
  double loss_sum = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const std::vector<size_t>& order = m.epochOrder();
    const size_t take = std::min(batch, n - m.position);
    const size_t* idx = order.data() + m.position;
    const torch::Tensor input = inputBatch(m.train, idx, 0, take);
    const torch::Tensor target = labelBatch(m.train, idx, 0, take);
    m.flat.grads.zero_();
    const torch::Tensor loss = torch::nn::functional::cross_entropy(m.net->forward(input), target);
    loss.backward();
    loss_sum += loss.item<double>();
    if (z.defined()) addProximalGradient(m.flat.grads, m.flat.weights, z, rho);
    m.sgdMomentumStep();
    m.position += take;
    if (m.position >= n) {
      m.position = 0;
      ++m.epoch;
    }
  }
  return loss_sum / static_cast<double>(steps);
}

double Trainer::evaluate(const ImageDataset& data) const { return accuracyOf(impl_->net, data); }

double Trainer::evaluateParameters(const float* params, const ImageDataset& data) {
  const torch::Tensor saved = impl_->flat.weights.clone();
  setParameters(params);
  double accuracy = 0;
  try {
    accuracy = evaluate(data);
  } catch (...) {
    impl_->flat.weights.copy_(saved);
    throw;
  }
  impl_->flat.weights.copy_(saved);
  return accuracy;
}

TrainerState Trainer::state() const {
  TrainerState s;
  s.parameters.resize(parameterCount());
  s.momentum.resize(parameterCount());
  parameters(s.parameters.data());
  std::memcpy(s.momentum.data(), impl_->momentum.data_ptr<float>(), s.momentum.size() * sizeof(float));
  s.epoch = impl_->epoch;
  s.position = impl_->position;
  return s;
}

void Trainer::restore(const TrainerState& s) {
  const size_t p = parameterCount();
  if (s.parameters.size() != p || s.momentum.size() != p) {
    throw std::invalid_argument("trainer state holds " + std::to_string(s.parameters.size()) + " parameters and " +
                                std::to_string(s.momentum.size()) + " momentum values, but the " + impl_->spec.name +
                                " model has " + std::to_string(p) + "; the state belongs to another model");
  }
  if (s.position > 0 && s.position >= impl_->train.size()) {
    throw std::invalid_argument("trainer state is at sample " + std::to_string(s.position) + " of an epoch, but " +
                                "this worker has " + std::to_string(impl_->train.size()) +
                                " training samples; the state belongs to other data");
  }
  setParameters(s.parameters.data());
  std::memcpy(impl_->momentum.data_ptr<float>(), s.momentum.data(), p * sizeof(float));
  impl_->epoch = s.epoch;
  impl_->position = s.position;
}

uint64_t Trainer::trainingSamples() const { return impl_->train.size(); }

double evaluateFlat(const ModelSpec& spec, const std::vector<float>& params, const ImageDataset& data) {
  torch::nn::Sequential net = buildNetwork(spec);
  FlatParameters flat = flattenParameters(*net);
  if (params.size() != static_cast<size_t>(flat.weights.numel())) {
    throw std::invalid_argument("the parameter vector has " + std::to_string(params.size()) + " values but the " +
                                spec.name + " model has " + std::to_string(flat.weights.numel()) +
                                "; check the model spec");
  }
  std::memcpy(flat.weights.data_ptr<float>(), params.data(), params.size() * sizeof(float));
  return accuracyOf(net, data);
}

}  // namespace tapestry::worker
