#pragma once
// The models a federation can train (image classifiers and a byte-level
// language model), named by a small spec that travels in configs and
// checkpoints. The networks themselves live behind the
// Trainer (LibTorch stays out of public headers).
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace tapestry::worker {

// Image classifiers (28x28 greyscale; pixels scaled to [0,1], then
// (x-0.2860)/0.3530):
// "mlp": 784 -> hidden -> ReLU -> 10.
// "cnn": LeNet as in NIID-Bench: conv(1->6, 5x5) ReLU maxpool2, conv(6->16,
// 5x5) ReLU maxpool2, 256 -> 120 ReLU -> 84 ReLU -> 10.
// Language model (text shards):
// "transformer": byte-level (vocabulary 256) causal decoder-only transformer:
// token + learned position embeddings, `layers` pre-LayerNorm blocks of
// causal multi-head self-attention and a 4x GELU MLP, a final LayerNorm and an
// output head that reuses the token embedding when `tied` (plus a bias).
struct ModelSpec {
  std::string name = "cnn";
  int64_t hidden = 200;  // mlp only
  // transformer only
  int64_t layers = 2;
  int64_t d_model = 64;
  int64_t heads = 4;      // must divide d_model
  int64_t context = 64;   // bytes of context
  bool tied = true;

  nlohmann::json toJson() const;  // name plus the fields of that model only
  // Strict: unknown keys, an unknown name, a field of another model or an out
  // of range value throw std::invalid_argument naming the field.
  static ModelSpec fromJson(const nlohmann::json& j);
};

inline constexpr uint32_t kImageSide = 28;
inline constexpr int64_t kClasses = 10;

// Number of fp32 parameters of the model, and its fingerprint (16 hex chars,
// FNV-1a 64 over "name:shape:dtype;" of every parameter in order), without a
// Trainer. Both equal what a Trainer for `spec` reports.
size_t modelParameterCount(const ModelSpec& spec);
std::string modelFingerprint(const ModelSpec& spec);

// True for models of text ("transformer"), false for image classifiers.
bool isLanguageModel(const ModelSpec& spec);
// What Trainer::evaluate reports: "accuracy" (image models, higher is
// better) or "bits_per_byte" (language models, lower is better).
const char* metricName(const ModelSpec& spec);
bool higherIsBetter(const ModelSpec& spec);

}  // namespace tapestry::worker
