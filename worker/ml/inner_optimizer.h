#pragma once
// The worker's inner optimizers as plain loops over the flat fp32 buffers, so
// the trainer applies them without LibTorch's optimizer classes and a test can
// check a step by hand. The consensus penalty's gradient is already in `grad`.
#include <cstddef>
#include <cstdint>
#include <string>

namespace tapestry::worker {

enum class InnerOptimizer { kSgdMomentum, kAdamW };

// "sgd" | "adamw"; throws std::invalid_argument listing the choices.
InnerOptimizer parseInnerOptimizer(const std::string& name);
const char* innerOptimizerName(InnerOptimizer optimizer);  // "sgd" | "adamw"

struct SgdMomentumHyper {
  float lr, momentum, weight_decay;
};

// torch.optim.SGD with dampening 0: g += wd * w; v = mu * v + g; w -= lr * v.
void sgdMomentumStep(float* w, const float* grad, float* velocity, size_t n, const SgdMomentumHyper& h);

struct AdamWHyper {
  double lr, beta1, beta2, epsilon, weight_decay;
};

// torch.optim.AdamW (Loshchilov & Hutter): with t = step (1 for the first),
//   w *= 1 - lr * wd                      (decoupled weight decay)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Throws std::invalid_argument for step == 0.
void adamWStep(float* w, const float* grad, float* m, float* v, size_t n, uint64_t step, const AdamWHyper& h);

}  // namespace tapestry::worker
