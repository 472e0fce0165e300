#include "worker/ml/trainer.h"

#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "worker/ml/model_impl.h"
#include "worker/ml/proximal_impl.h"
#include "worker/ml/random.h"
#include "worker/ml/transformer_impl.h"

namespace tapestry::worker {
namespace {

void checkSettings(const TrainSettings& s) {
  auto bad = [](const std::string& what) { throw std::invalid_argument("training setting " + what); };
  if (!(s.lr >= 0) || !std::isfinite(s.lr)) bad("lr must be a finite number >= 0, got " + std::to_string(s.lr));
  if (!(s.momentum >= 0 && s.momentum < 1)) bad("momentum must be in [0, 1), got " + std::to_string(s.momentum));
  if (!(s.weight_decay >= 0) || !std::isfinite(s.weight_decay)) {
    bad("weight_decay must be a finite number >= 0, got " + std::to_string(s.weight_decay));
  }
  if (!(s.beta1 >= 0 && s.beta1 < 1)) bad("beta1 must be in [0, 1), got " + std::to_string(s.beta1));
  if (!(s.beta2 >= 0 && s.beta2 < 1)) bad("beta2 must be in [0, 1), got " + std::to_string(s.beta2));
  if (!(s.epsilon > 0) || !std::isfinite(s.epsilon)) {
    bad("epsilon must be a finite number > 0, got " + std::to_string(s.epsilon));
  }
  if (s.batch_size < 1) bad("batch_size must be at least 1, got " + std::to_string(s.batch_size));
  if (!(s.logit_adjustment >= 0) || !std::isfinite(s.logit_adjustment)) {
    bad("logit_adjustment must be a finite number >= 0, got " + std::to_string(s.logit_adjustment));
  }
  if (!(s.distill >= 0) || !std::isfinite(s.distill)) {
    bad("distill must be a finite number >= 0, got " + std::to_string(s.distill));
  }
  if (!(s.distill_temperature > 0) || !std::isfinite(s.distill_temperature)) {
    bad("distill_temperature must be a finite number > 0, got " + std::to_string(s.distill_temperature));
  }
  if (s.threads < 0) bad("threads must be >= 0 (0 = LibTorch's default), got " + std::to_string(s.threads));
}

double metricOf(torch::nn::Sequential& net, const ModelSpec& spec, const Dataset& data) {
  checkDataKind(spec, data, "the evaluation set");
  return data.isText() ? bitsPerByteOf(net, data.text, spec.context) : accuracyOf(net, data);
}

}  // namespace

void checkDataKind(const ModelSpec& spec, const Dataset& data, const char* what) {
  if (isLanguageModel(spec) && !data.isText()) {
    throw std::invalid_argument(std::string(what) + " holds images, but the \"" + spec.name +
                                "\" model is a byte-level language model; give it a text shard (train.txt and "
                                "val.txt, see `tapestry partition text`) or choose model \"cnn\" or \"mlp\"");
  }
  if (!isLanguageModel(spec) && data.isText()) {
    throw std::invalid_argument(std::string(what) + " holds text, but the \"" + spec.name +
                                "\" model classifies images; use model \"transformer\" for text shards");
  }
  if (!data.isText()) checkImageShape(data, what);
}

struct Trainer::Impl {
  ModelSpec spec;
  TrainSettings settings;
  Dataset train;
  torch::nn::Sequential net;
  FlatParameters flat;
  torch::Tensor momentum, second_moment;  // second_moment: adamw only
  torch::Tensor logit_offset;             // tau * log(prior) per class; undefined when off
  torch::nn::Sequential teacher{nullptr};  // not-true distillation only
  FlatParameters teacher_flat;
  bool has_teacher = false;
  uint64_t optimizer_steps = 0;
  uint64_t epoch = 0, position = 0;
  std::vector<size_t> order;  // permutation of the training images for order_epoch
  uint64_t order_epoch = UINT64_MAX;

  int64_t count() const { return flat.weights.numel(); }
  bool adamW() const { return settings.optimizer == InnerOptimizer::kAdamW; }

  // Bytes per text window: context inputs plus the byte after the last.
  uint64_t windowBytes() const { return std::min<uint64_t>(static_cast<uint64_t>(spec.context) + 1, train.size()); }

  // Images per epoch, or windows per text epoch (about one pass over the bytes).
  uint64_t epochLength() const {
    if (!train.isText()) return train.size();
    if (train.size() < 2) return 0;
    const uint64_t predicted = windowBytes() - 1;
    return (train.size() - 1 + predicted - 1) / predicted;
  }

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

  // Forward and backward of the next mini-batch into flat.grads; returns the
  // loss and how far the epoch cursor moves.
  std::pair<double, uint64_t> lossAndGradient() {
    flat.grads.zero_();
    torch::Tensor loss;
    uint64_t taken = 0;
    if (train.isText()) {
      const uint64_t length = windowBytes();
      std::vector<uint64_t> offsets(static_cast<size_t>(settings.batch_size));
      std::mt19937_64 rng = seededEngine(settings.data_seed, epoch, position);
      for (auto& offset : offsets) offset = uniformBelow(rng, train.size() - length + 1);
      const torch::Tensor tokens = textWindows(train.text, offsets, static_cast<int64_t>(length));
      const int64_t time = static_cast<int64_t>(length) - 1;
      const torch::Tensor logits = net->forward(tokens.narrow(1, 0, time));
      loss = torch::nn::functional::cross_entropy(logits.reshape({-1, kByteVocabulary}),
                                                  tokens.narrow(1, 1, time).reshape({-1}));
      taken = offsets.size();
    } else {
      const std::vector<size_t>& perm = epochOrder();
      taken = std::min<uint64_t>(static_cast<uint64_t>(settings.batch_size), train.size() - position);
      const size_t* idx = perm.data() + position;
      const torch::Tensor inputs = inputBatch(train, idx, 0, taken);
      const torch::Tensor labels = labelBatch(train, idx, 0, taken);
      const torch::Tensor logits = net->forward(inputs);
      loss = torch::nn::functional::cross_entropy(logit_offset.defined() ? logits + logit_offset : logits, labels);
      if (has_teacher) loss = loss + settings.distill * notTrueDistillation(inputs, labels, logits);
    }
    loss.backward();
    return {loss.item<double>(), taken};
  }

  // KL(teacher || student) of the softmax over the classes other than each
  // sample's label, at temperature T, times T^2 (so gradients keep their
  // scale as T changes), averaged over the batch.
  torch::Tensor notTrueDistillation(const torch::Tensor& inputs, const torch::Tensor& labels,
                                    const torch::Tensor& logits) {
    torch::Tensor taught;
    {
      torch::NoGradGuard no_grad;
      taught = teacher->forward(inputs);
    }
    const int64_t batch = logits.size(0), classes = logits.size(1);
    const torch::Tensor others = torch::ones_like(logits, torch::kBool).scatter_(1, labels.unsqueeze(1), false);
    const double t = settings.distill_temperature;
    const torch::Tensor student = logits.masked_select(others).view({batch, classes - 1}) / t;
    const torch::Tensor target = taught.masked_select(others).view({batch, classes - 1}) / t;
    namespace F = torch::nn::functional;
    return F::kl_div(F::log_softmax(student, F::LogSoftmaxFuncOptions(1)), F::softmax(target, F::SoftmaxFuncOptions(1)),
                     F::KLDivFuncOptions().reduction(torch::kBatchMean)) *
           (t * t);
  }

  void optimizerStep() {
    ++optimizer_steps;
    float* w = flat.weights.data_ptr<float>();
    const float* g = flat.grads.data_ptr<float>();
    const auto n = static_cast<size_t>(count());
    if (adamW()) {
      adamWStep(w, g, momentum.data_ptr<float>(), second_moment.data_ptr<float>(), n, optimizer_steps,
                {settings.lr, settings.beta1, settings.beta2, settings.epsilon, settings.weight_decay});
    } else {
      sgdMomentumStep(w, g, momentum.data_ptr<float>(), n,
                      {static_cast<float>(settings.lr), static_cast<float>(settings.momentum),
                       static_cast<float>(settings.weight_decay)});
    }
  }
};

namespace {

// When LibTorch's BLAS is OpenBLAS (Debian's libblas.so.3 alternative), keep
// it to the calling thread: parallelism comes from worker processes and
// LibTorch's own threads, and OpenBLAS's pool would oversubscribe the cores.
// The threaded build is used because it is safe to call from several threads
// at once (trainers in parallel threads); the serial build is not.
void keepBlasSingleThreaded() {
  static std::once_flag once;
  std::call_once(once, [] {
    using SetThreads = void (*)(int);
    if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
  });
}

// tau * log(prior) over kClasses, the prior being the add-one smoothed label
// frequencies of `train`: a class the worker never sees gets log(1 / (n + C)).
torch::Tensor logitOffsetFor(const Dataset& train, double tau) {
  const std::vector<size_t> counts = labelHistogram(train, kClasses);
  const double total = static_cast<double>(train.size() + counts.size());
  torch::Tensor offset = torch::empty({static_cast<int64_t>(counts.size())}, torch::kFloat32);
  for (size_t c = 0; c < counts.size(); ++c)
    offset[static_cast<int64_t>(c)] = static_cast<float>(tau * std::log((static_cast<double>(counts[c]) + 1.0) / total));
  return offset;
}

}  // namespace

Trainer::Trainer(const ModelSpec& spec, uint64_t init_seed, Dataset train, TrainSettings settings)
    : impl_(std::make_unique<Impl>()) {
  keepBlasSingleThreaded();
  checkSettings(settings);
  checkDataKind(spec, train, "the training set");
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
    if (settings.distill > 0 && !isLanguageModel(spec)) impl_->teacher = buildNetwork(spec);
  }
  if (impl_->teacher) {
    impl_->teacher->eval();
    impl_->teacher_flat = flattenParameters(*impl_->teacher);
  }
  impl_->flat = flattenParameters(*impl_->net);
  if (settings.logit_adjustment > 0 && !impl_->train.isText())
    impl_->logit_offset = logitOffsetFor(impl_->train, settings.logit_adjustment);
  impl_->momentum = torch::zeros({impl_->count()}, torch::kFloat32);
  if (impl_->adamW()) impl_->second_moment = torch::zeros({impl_->count()}, torch::kFloat32);
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

double Trainer::train(int64_t steps, const float* consensus, double rho, const float* shift) {
  int64_t taken = 0;
  return train(steps, consensus, rho, shift, {}, &taken);
}

double Trainer::train(int64_t steps, const float* consensus, double rho, const float* shift,
                      const std::function<bool()>& stop, int64_t* taken) {
  Impl& m = *impl_;
  *taken = 0;
  if (steps < 0) throw std::invalid_argument("train: steps must be >= 0, got " + std::to_string(steps));
  if (!(rho >= 0) || !std::isfinite(rho)) {
    throw std::invalid_argument("train: rho must be a finite number >= 0, got " + std::to_string(rho));
  }
  if (steps == 0) return 0.0;
  // Denormal floats (weights and moments decaying towards zero) cost
  // 10-100x per operation on x86: under FedAdam on label-skewed shards some
  // workers' local rounds took 3x as long as their peers'. The flag is per
  // thread (MXCSR), so the thread that trains sets it, and so does each of
  // LibTorch's intra-op threads (one chunk of this loop per thread).
  at::globalContext().setFlushDenormal(true);
  at::parallel_for(0, at::get_num_threads(), 1, [](int64_t, int64_t) { at::globalContext().setFlushDenormal(true); });
  if (m.train.isText() && m.train.size() < 2) {
    throw std::logic_error("train: this worker's training text has " + std::to_string(m.train.size()) +
                           " bytes; a language model needs at least 2");
  }
  if (m.train.size() == 0) throw std::logic_error("train: this worker has no training samples");
  torch::Tensor z;
  if (consensus != nullptr && rho > 0) {
    z = torch::from_blob(const_cast<float*>(consensus), {m.count()}, torch::kFloat32);
  }
  const uint64_t epoch_length = m.epochLength();
  double loss_sum = 0;
  for (int64_t step = 0; step < steps; ++step) {
    if (stop && stop()) break;
    ++*taken;
    const auto [loss, samples] = m.lossAndGradient();
    loss_sum += loss;
    if (z.defined()) addProximalGradient(m.flat.grads, m.flat.weights, z, rho);
    m.optimizerStep();
    if (shift != nullptr) {
      float* w = m.flat.weights.data_ptr<float>();
      for (int64_t i = 0, n = m.count(); i < n; ++i) w[i] += shift[i];
    }
    m.position += samples;
    if (m.position >= epoch_length) {
      m.position = 0;
      ++m.epoch;
    }
  }
  return *taken > 0 ? loss_sum / static_cast<double>(*taken) : 0.0;
}

void Trainer::setTeacher(const float* params) {
  Impl& m = *impl_;
  if (!m.teacher) return;
  std::memcpy(m.teacher_flat.weights.data_ptr<float>(), params, parameterCount() * sizeof(float));
  m.has_teacher = true;
}

double Trainer::evaluate(const Dataset& data) const { return metricOf(impl_->net, impl_->spec, data); }

double Trainer::evaluateParameters(const float* params, const Dataset& data) {
  const torch::Tensor saved = impl_->flat.weights.clone();
  setParameters(params);
  double metric = 0;
  try {
    metric = evaluate(data);
  } catch (...) {
    impl_->flat.weights.copy_(saved);
    throw;
  }
  impl_->flat.weights.copy_(saved);
  return metric;
}

TrainerState Trainer::state() const {
  const Impl& m = *impl_;
  TrainerState s;
  s.parameters.resize(parameterCount());
  parameters(s.parameters.data());
  auto copy = [](const torch::Tensor& t) {
    std::vector<float> out(static_cast<size_t>(t.numel()));
    std::memcpy(out.data(), t.data_ptr<float>(), out.size() * sizeof(float));
    return out;
  };
  s.momentum = copy(m.momentum);
  if (m.adamW()) s.second_moment = copy(m.second_moment);
  s.optimizer_steps = m.optimizer_steps;
  s.epoch = m.epoch;
  s.position = m.position;
  return s;
}

void Trainer::restore(const TrainerState& s) {
  Impl& m = *impl_;
  const size_t p = parameterCount();
  if (s.parameters.size() != p || s.momentum.size() != p) {
    throw std::invalid_argument("trainer state holds " + std::to_string(s.parameters.size()) + " parameters and " +
                                std::to_string(s.momentum.size()) + " momentum values, but the " + m.spec.name +
                                " model has " + std::to_string(p) + "; the state belongs to another model");
  }
  if (m.adamW() && s.second_moment.size() != p && !(s.second_moment.empty() && s.optimizer_steps == 0)) {
    throw std::invalid_argument("trainer state holds " + std::to_string(s.second_moment.size()) +
                                " AdamW second-moment values after " + std::to_string(s.optimizer_steps) +
                                " steps, but the optimizer is adamw over " + std::to_string(p) +
                                " parameters; the state was saved with another optimizer (set it back, or "
                                "remove the worker state to start afresh)");
  }
  if (!m.adamW() && !s.second_moment.empty()) {
    throw std::invalid_argument("trainer state holds AdamW second moments but the optimizer is sgd; the state was "
                                "saved with adamw (set it back, or remove the worker state to start afresh)");
  }
  const uint64_t epoch_length = m.epochLength();
  if (s.position > 0 && s.position >= epoch_length) {
    throw std::invalid_argument("trainer state is at position " + std::to_string(s.position) + " of an epoch of " +
                                std::to_string(epoch_length) + (m.train.isText() ? " text windows" : " samples") +
                                "; the state belongs to other data");
  }
  setParameters(s.parameters.data());
  std::memcpy(m.momentum.data_ptr<float>(), s.momentum.data(), p * sizeof(float));
  if (m.adamW()) {
    if (s.second_moment.empty()) {
      m.second_moment.zero_();
    } else {
      std::memcpy(m.second_moment.data_ptr<float>(), s.second_moment.data(), p * sizeof(float));
    }
  }
  m.optimizer_steps = s.optimizer_steps;
  m.epoch = s.epoch;
  m.position = s.position;
}

uint64_t Trainer::trainingSamples() const { return impl_->train.size(); }

double evaluateFlat(const ModelSpec& spec, const std::vector<float>& params, const Dataset& data) {
  torch::nn::Sequential net = buildNetwork(spec);
  FlatParameters flat = flattenParameters(*net);
  if (params.size() != static_cast<size_t>(flat.weights.numel())) {
    throw std::invalid_argument("the parameter vector has " + std::to_string(params.size()) + " values but the " +
                                spec.name + " model has " + std::to_string(flat.weights.numel()) +
                                "; check the model spec");
  }
  std::memcpy(flat.weights.data_ptr<float>(), params.data(), params.size() * sizeof(float));
  return metricOf(net, spec, data);
}

}  // namespace tapestry::worker
