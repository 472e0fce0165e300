#pragma once
// The image classifiers a federation can train, named by a small spec that
// travels in configs and checkpoints. The networks themselves live behind the
// Trainer (LibTorch stays out of public headers).
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace tapestry::worker {

// "mlp": 784 -> hidden -> ReLU -> 10.
// "cnn": LeNet as in NIID-Bench: conv(1->6, 5x5) ReLU maxpool2, conv(6->16,
// 5x5) ReLU maxpool2, 256 -> 120 ReLU -> 84 ReLU -> 10.
// Both take 28x28 images; pixels are scaled to [0,1], then (x-0.2860)/0.3530.
struct ModelSpec {
  std::string name = "cnn";
  int64_t hidden = 200;  // mlp only

  nlohmann::json toJson() const;
  // Strict: unknown keys, an unknown name (not "mlp" or "cnn") or hidden < 1
  // throw std::invalid_argument naming the field.
  static ModelSpec fromJson(const nlohmann::json& j);
};

inline constexpr uint32_t kImageSide = 28;
inline constexpr int64_t kClasses = 10;

// Number of fp32 parameters of the model, and its fingerprint (16 hex chars,
// FNV-1a 64 over "name:shape:dtype;" of every parameter in order), without a
// Trainer. Both equal what a Trainer for `spec` reports.
size_t modelParameterCount(const ModelSpec& spec);
std::string modelFingerprint(const ModelSpec& spec);

}  // namespace tapestry::worker
