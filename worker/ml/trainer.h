#pragma once
// Local training of one worker: the model, its inner optimizer's state and
// the order in which it walks its private data, with the consensus penalty
// (rho/2)||w - z||^2 of EASGD, FedProx and ADMM folded into the optimizer step.
// All parameters live in one flat fp32 buffer, so exchanging them with the
// coordinator is a memcpy. Deterministic: the same seeds give bit-identical
// parameters on the CPU, and state()/restore() resumes bit for bit.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "worker/ml/dataset.h"
#include "worker/ml/inner_optimizer.h"
#include "worker/ml/model.h"

namespace tapestry::worker {

struct TrainSettings {
  InnerOptimizer optimizer = InnerOptimizer::kSgdMomentum;
  double lr = 0.01;
  double momentum = 0.9;      // sgd
  double weight_decay = 0.0;  // sgd: added to the gradient; adamw: decoupled
  double beta1 = 0.9;         // adamw
  double beta2 = 0.999;       // adamw
  double epsilon = 1e-8;      // adamw
  int64_t batch_size = 64;
  // Image classifiers: tau of the logit-adjusted loss (Menon et al. 2021),
  // cross-entropy of logits + tau * log(prior) with the prior the label
  // frequencies of this worker's own training data (add-one smoothed). A
  // worker that holds a few classes then learns the class-balanced posterior
  // instead of pushing down every class it never sees, which is what makes
  // plain averaging drift under label skew. Evaluation uses the raw logits.
  // 0 (default) is plain cross-entropy.
  double logit_adjustment = 0.0;
  // Image classifiers: beta of not-true distillation from the teacher set by
  // setTeacher() (the consensus; Lee et al., FedNTD, 2022). For each sample
  // the softmax over every class but the true one, at temperature
  // distill_temperature, is pulled towards the teacher's by KL divergence:
  // what the consensus knows about the classes this worker lacks is kept
  // instead of being overwritten by its own few classes. 0 (default): off.
  double distill = 0.0;
  double distill_temperature = 1.0;
  uint64_t data_seed = 1;
  int threads = 1;  // torch intra-op threads (process-wide); 0 leaves LibTorch's default
};

// Everything needed to resume bit for bit.
struct TrainerState {
  std::vector<float> parameters;
  std::vector<float> momentum;       // sgd: velocity; adamw: first moment
  std::vector<float> second_moment;  // adamw only (empty for sgd)
  uint64_t optimizer_steps = 0;      // steps taken, for AdamW's bias correction
  // images: samples of the epoch already used; text: windows of the epoch
  // already used (a text epoch is ceil((bytes - 1) / context) windows).
  uint64_t epoch = 0, position = 0;
};

// Language models are evaluated on at most this many leading bytes of the
// held-out text, so evaluation costs the same on every member.
inline constexpr uint64_t kEvalTextBytes = 64 * 1024;

class Trainer {
 public:
  // Builds the model from torch::manual_seed(init_seed). Throws
  // std::invalid_argument for a bad spec or setting, image data of the wrong
  // size, or data of the wrong kind for the model (text for an image model or
  // images for a language model).
  Trainer(const ModelSpec& spec, uint64_t init_seed, Dataset train, TrainSettings settings);
  ~Trainer();
  Trainer(Trainer&&) noexcept;
  Trainer& operator=(Trainer&&) noexcept;

  size_t parameterCount() const;
  std::string fingerprint() const;  // 16 hex chars, FNV-1a 64 over "name:shape:dtype;"
  void parameters(float* dst) const;
  void setParameters(const float* src);

  // Runs `steps` inner-optimizer steps on loss + rho/2 ||w - z||^2, z being
  // `consensus` (parameterCount() floats; null for no penalty). Images:
  // mini-batches follow a per-epoch permutation seeded by (data_seed, epoch).
  // Text: a mini-batch is batch_size windows of context+1 bytes (the whole
  // text if shorter) at offsets drawn from (data_seed, epoch, position); the
  // loss is next-byte cross-entropy. The cursor carries across calls. Returns
  // the mean training loss over the steps. (ADMM: pass z - u as the consensus.)
  // `shift` (parameterCount() floats, or null) is added to the parameters
  // after every step: SCAFFOLD's drift correction.
  double train(int64_t steps, const float* consensus, double rho, const float* shift = nullptr);
  // As above, asking `stop` before every step: once it says true the
  // remaining steps are not taken (a daemon asked to stop). `*taken` is the
  // number of steps run, the loss their mean (0 for none).
  double train(int64_t steps, const float* consensus, double rho, const float* shift,
               const std::function<bool()>& stop, int64_t* taken);

  // The teacher of not-true distillation (settings.distill > 0): a copy of
  // `params` (parameterCount() floats) kept until the next call. Without one,
  // train() distils nothing. A no-op when distillation is off.
  void setTeacher(const float* params);

  // The metric of the current parameters on `data`: accuracy for image
  // models, bits per byte (mean next-byte cross-entropy / ln 2 over
  // consecutive windows of the first kEvalTextBytes bytes) for language
  // models. See metricName() and higherIsBetter().
  double evaluate(const Dataset& data) const;
  // The metric of `params`; the trainer's own parameters are restored after.
  double evaluateParameters(const float* params, const Dataset& data);

  TrainerState state() const;
  // Throws std::invalid_argument if `s` belongs to another model, optimizer or data.
  void restore(const TrainerState& s);
  uint64_t trainingSamples() const;  // images, or bytes of text

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Throws std::invalid_argument unless `data` is what the model of `spec`
// reads: text for a language model, 28x28 images for an image classifier.
// `what` names the data in the message ("the training set").
void checkDataKind(const ModelSpec& spec, const Dataset& data, const char* what);

// The metric of a flat parameter vector for `spec` on `data` (`tapestry
// eval`, `tapestry finetune`). Throws std::invalid_argument if params.size()
// is not the model's size or `data` is of the wrong kind.
double evaluateFlat(const ModelSpec& spec, const std::vector<float>& params, const Dataset& data);

}  // namespace tapestry::worker
