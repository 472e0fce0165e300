#pragma once
// LibTorch side of the "transformer" model: the byte-level causal decoder and
// the text batches it trains and is evaluated on. For ml/ translation units only.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "worker/ml/model.h"

namespace tapestry::worker {

inline constexpr int64_t kByteVocabulary = 256;

// One pre-LayerNorm block: x + attn(ln1(x)), then x + mlp(ln2(x)). Attention
// is written out with Linear layers (not nn::MultiheadAttention, whose options
// and layout differ between LibTorch 1.x and 2.x) so the parameters and their
// order are the same with every LibTorch.
class DecoderBlockImpl : public torch::nn::Module {
 public:
  DecoderBlockImpl(int64_t d_model, int64_t heads);
  // x: [batch, time, d_model]; causal_mask: [time, time] bool, true = hidden.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& causal_mask);
  // Normal(0, std) weights, zero biases; the two projections back into the
  // residual stream get residual_std.
  void initialise(double std, double residual_std);

 private:
  int64_t heads_;
  torch::nn::LayerNorm ln1_{nullptr}, ln2_{nullptr};
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr}, fc_{nullptr}, out_{nullptr};
};
TORCH_MODULE(DecoderBlock);

// Byte tokens [batch, time] (int64, time <= context) to next-byte logits
// [batch, time, 256]. Initialised as GPT-2 (normal 0.02 weights, zero biases,
// residual projections scaled by 1/sqrt(2 layers)) from torch's global generator.
class ByteTransformerImpl : public torch::nn::Module {
 public:
  explicit ByteTransformerImpl(const ModelSpec& spec);
  torch::Tensor forward(const torch::Tensor& tokens);

 private:
  int64_t context_;
  bool tied_;
  torch::nn::Embedding token_embedding_{nullptr}, position_embedding_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm final_ln_{nullptr};
  torch::nn::Linear head_{nullptr};  // untied only
  torch::Tensor head_bias_;          // tied only
};
TORCH_MODULE(ByteTransformer);

// Throws std::invalid_argument naming the field unless the transformer fields
// of `spec` are in range.
void checkTransformerSpec(const ModelSpec& spec);

// [offsets.size(), length] int64 tokens: the bytes text[o .. o+length-1].
torch::Tensor textWindows(const std::string& text, const std::vector<uint64_t>& offsets, int64_t length);

// Mean next-byte cross-entropy in bits over the first kEvalTextBytes bytes of
// `text`, read as consecutive windows of `context` predictions, without
// autograd. Throws std::invalid_argument for text of fewer than 2 bytes.
double bitsPerByteOf(torch::nn::Sequential& net, const std::string& text, int64_t context);

}  // namespace tapestry::worker
