#pragma once
// Local training of one worker: the model, its SGD-momentum state and the
// order in which it walks its private data, with the consensus penalty
// (rho/2)||w - z||^2 of EASGD, FedProx and ADMM folded into the optimizer step.
// All parameters live in one flat fp32 buffer, so exchanging them with the
// coordinator is a memcpy. Deterministic: the same seeds give bit-identical
// parameters on the CPU, and state()/restore() resumes bit for bit.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "worker/ml/dataset.h"
#include "worker/ml/model.h"

namespace tapestry::worker {

enum class InnerOptimizer { kSgdMomentum };

struct TrainSettings {
  InnerOptimizer optimizer = InnerOptimizer::kSgdMomentum;
  double lr = 0.01;
  double momentum = 0.9;
  double weight_decay = 0.0;
  int64_t batch_size = 64;
  uint64_t data_seed = 1;
  int threads = 1;  // torch intra-op threads (process-wide); 0 leaves LibTorch's default
};

// Everything needed to resume bit for bit.
struct TrainerState {
  std::vector<float> parameters, momentum;
  uint64_t epoch = 0, position = 0;  // position: samples of the epoch already used
};

class Trainer {
 public:
  // Builds the model from torch::manual_seed(init_seed). Throws
  // std::invalid_argument for a bad spec, setting or image size.
  Trainer(const ModelSpec& spec, uint64_t init_seed, ImageDataset train, TrainSettings settings);
  ~Trainer();
  Trainer(Trainer&&) noexcept;
  Trainer& operator=(Trainer&&) noexcept;

  size_t parameterCount() const;
  std::string fingerprint() const;  // 16 hex chars, FNV-1a 64 over "name:shape:dtype;"
  void parameters(float* dst) const;
  void setParameters(const float* src);

  // Runs `steps` SGD-momentum steps on loss + rho/2 ||w - z||^2, z being
  // `consensus` (parameterCount() floats; null for no penalty). Mini-batches
  // follow a per-epoch permutation seeded by (data_seed, epoch); the cursor
  // carries across calls. Returns the mean training loss over the steps.
  // (ADMM: pass z - u as the consensus.)
  double train(int64_t steps, const float* consensus, double rho);

  double evaluate(const ImageDataset& data) const;  // accuracy of the current parameters
  // Accuracy of `params`; the trainer's own parameters are restored after.
  double evaluateParameters(const float* params, const ImageDataset& data);

  TrainerState state() const;
  void restore(const TrainerState& s);  // throws std::invalid_argument on size mismatch
  uint64_t trainingSamples() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Accuracy of a flat parameter vector for `spec` on `data` (`tapestry eval`).
// Throws std::invalid_argument if params.size() is not the model's size.
double evaluateFlat(const ModelSpec& spec, const std::vector<float>& params, const ImageDataset& data);

}  // namespace tapestry::worker
