#pragma once
// The consensus penalty's gradient, added to the flat gradient inside the
// optimizer step rather than through autograd.
#include <torch/torch.h>

namespace tapestry::worker {

// flat_grad += rho * (flat_w - flat_z), the gradient of rho/2 ||w - z||^2.
inline void addProximalGradient(torch::Tensor& flat_grad, const torch::Tensor& flat_w, const torch::Tensor& flat_z,
                                double rho) {
  TORCH_CHECK(flat_grad.numel() == flat_w.numel() && flat_w.numel() == flat_z.numel(),
              "addProximalGradient: sizes differ");
  const bool plain = flat_grad.device().is_cpu() && flat_w.device().is_cpu() && flat_z.device().is_cpu() &&
                     flat_grad.scalar_type() == torch::kFloat32 && flat_w.scalar_type() == torch::kFloat32 &&
                     flat_z.scalar_type() == torch::kFloat32 && flat_grad.is_contiguous() &&
                     flat_w.is_contiguous() && flat_z.is_contiguous();
  if (!plain) {
    flat_grad.add_(flat_w - flat_z, rho);
    return;
  }
  float* g = flat_grad.data_ptr<float>();
  const float* w = flat_w.data_ptr<float>();
  const float* z = flat_z.data_ptr<float>();
  const float r = static_cast<float>(rho);
  const int64_t n = flat_grad.numel();
  for (int64_t i = 0; i < n; ++i) g[i] += r * (w[i] - z[i]);
}

}  // namespace tapestry::worker
