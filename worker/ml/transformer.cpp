#include <cmath>
#include <limits>
#include <stdexcept>

#include "worker/ml/trainer.h"
#include "worker/ml/transformer_impl.h"

namespace tapestry::worker {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

constexpr double kInitStd = 0.02;
constexpr int64_t kMaxLayers = 64;
constexpr int64_t kMaxWidth = 8192;
constexpr int64_t kMaxContext = 8192;
constexpr int64_t kEvalWindows = 64;

void initLinear(nn::Linear& layer, double std) {
  nn::init::normal_(layer->weight, 0.0, std);
  nn::init::zeros_(layer->bias);
}

}  // namespace

void checkTransformerSpec(const ModelSpec& spec) {
  auto check = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("model." + what);
  };
  check(spec.layers >= 1 && spec.layers <= kMaxLayers,
        "layers must be between 1 and " + std::to_string(kMaxLayers) + ", got " + std::to_string(spec.layers));
  check(spec.d_model >= 1 && spec.d_model <= kMaxWidth,
        "d_model must be between 1 and " + std::to_string(kMaxWidth) + ", got " + std::to_string(spec.d_model));
  check(spec.heads >= 1 && spec.d_model % spec.heads == 0,
        "heads must be a positive divisor of d_model (" + std::to_string(spec.d_model) + "), got " +
            std::to_string(spec.heads));
  check(spec.context >= 1 && spec.context <= kMaxContext,
        "context must be between 1 and " + std::to_string(kMaxContext) + " bytes, got " +
            std::to_string(spec.context));
}

DecoderBlockImpl::DecoderBlockImpl(int64_t d_model, int64_t heads)
    : heads_(heads),
      ln1_(register_module("ln1", nn::LayerNorm(nn::LayerNormOptions({d_model})))),
      ln2_(register_module("ln2", nn::LayerNorm(nn::LayerNormOptions({d_model})))),
      qkv_(register_module("qkv", nn::Linear(d_model, 3 * d_model))),
      proj_(register_module("proj", nn::Linear(d_model, d_model))),
      fc_(register_module("fc", nn::Linear(d_model, 4 * d_model))),
      out_(register_module("out", nn::Linear(4 * d_model, d_model))) {}

void DecoderBlockImpl::initialise(double std, double residual_std) {
  torch::NoGradGuard no_grad;
  initLinear(qkv_, std);
  initLinear(fc_, std);
  initLinear(proj_, residual_std);
  initLinear(out_, residual_std);
}

torch::Tensor DecoderBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& causal_mask) {
  const int64_t batch = x.size(0), time = x.size(1), width = x.size(2);
  const int64_t head_width = width / heads_;
  // [batch, time, 3, heads, head_width] -> three [batch, heads, time, head_width]
  const std::vector<torch::Tensor> qkv = qkv_->forward(ln1_->forward(x))
                                             .view({batch, time, 3, heads_, head_width})
                                             .permute({2, 0, 3, 1, 4})
                                             .unbind(0);
  const torch::Tensor query = qkv[0] * (1.0 / std::sqrt(static_cast<double>(head_width)));
  const torch::Tensor scores =
      torch::matmul(query, qkv[1].transpose(-2, -1)).masked_fill(causal_mask, -std::numeric_limits<float>::infinity());
  const torch::Tensor attended =
      torch::matmul(torch::softmax(scores, -1), qkv[2]).transpose(1, 2).reshape({batch, time, width});
  const torch::Tensor h = x + proj_->forward(attended);
  return h + out_->forward(F::gelu(fc_->forward(ln2_->forward(h))));
}

ByteTransformerImpl::ByteTransformerImpl(const ModelSpec& spec) : context_(spec.context), tied_(spec.tied) {
  checkTransformerSpec(spec);
  token_embedding_ = register_module("token_embedding", nn::Embedding(kByteVocabulary, spec.d_model));
  position_embedding_ = register_module("position_embedding", nn::Embedding(spec.context, spec.d_model));
  blocks_ = register_module("blocks", nn::ModuleList());
  for (int64_t i = 0; i < spec.layers; ++i) blocks_->push_back(DecoderBlock(spec.d_model, spec.heads));
  final_ln_ = register_module("final_ln", nn::LayerNorm(nn::LayerNormOptions({spec.d_model})));
  if (tied_) {
    head_bias_ = register_parameter("head_bias", torch::zeros({kByteVocabulary}));
  } else {
    head_ = register_module("head", nn::Linear(spec.d_model, kByteVocabulary));
  }

  torch::NoGradGuard no_grad;
  nn::init::normal_(token_embedding_->weight, 0.0, kInitStd);
  nn::init::normal_(position_embedding_->weight, 0.0, kInitStd);
  const double residual_std = kInitStd / std::sqrt(2.0 * static_cast<double>(spec.layers));
  for (const auto& block : *blocks_) block->as<DecoderBlock>()->initialise(kInitStd, residual_std);
  if (!tied_) initLinear(head_, kInitStd);
}

torch::Tensor ByteTransformerImpl::forward(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.size(1) >= 1 && tokens.size(1) <= context_,
              "the transformer takes [batch, time] tokens with 1 <= time <= context");
  const int64_t time = tokens.size(1);
  const torch::Tensor positions = torch::arange(time, torch::kInt64);
  torch::Tensor x = token_embedding_->forward(tokens) + position_embedding_->forward(positions);
  const torch::Tensor mask = torch::ones({time, time}, torch::kBool).triu(1);
  for (const auto& block : *blocks_) x = block->as<DecoderBlock>()->forward(x, mask);
  x = final_ln_->forward(x);
  return tied_ ? F::linear(x, token_embedding_->weight, head_bias_) : head_->forward(x);
}

torch::Tensor textWindows(const std::string& text, const std::vector<uint64_t>& offsets, int64_t length) {
  torch::Tensor batch = torch::empty({static_cast<int64_t>(offsets.size()), length}, torch::kInt64);
  int64_t* dst = batch.data_ptr<int64_t>();
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < offsets.size(); ++i) {
    if (offsets[i] + static_cast<uint64_t>(length) > text.size()) {
      throw std::out_of_range("textWindows: window at " + std::to_string(offsets[i]) + " runs past " +
                              std::to_string(text.size()) + " bytes");
    }
    for (int64_t t = 0; t < length; ++t) dst[static_cast<int64_t>(i) * length + t] = bytes[offsets[i] + t];
  }
  return batch;
}

double bitsPerByteOf(torch::nn::Sequential& net, const std::string& text, int64_t context) {
  const uint64_t bytes = std::min<uint64_t>(text.size(), kEvalTextBytes);
  if (bytes < 2) {
    throw std::invalid_argument("cannot evaluate a language model on " + std::to_string(text.size()) +
                                " bytes of text; the held-out text needs at least 2 bytes");
  }
  torch::NoGradGuard no_grad;
  const uint64_t predictions = bytes - 1;
  const auto window = static_cast<uint64_t>(context);
  double nats = 0;
  // Full windows in batches, then the shorter tail window.
  std::vector<uint64_t> offsets;
  auto flush = [&](int64_t length) {
    if (offsets.empty()) return;
    const torch::Tensor tokens = textWindows(text, offsets, length + 1);
    const torch::Tensor logits = net->forward(tokens.narrow(1, 0, length));
    nats += F::cross_entropy(logits.reshape({-1, kByteVocabulary}), tokens.narrow(1, 1, length).reshape({-1}),
                             F::CrossEntropyFuncOptions().reduction(torch::kSum))
                .item<double>();
    offsets.clear();
  };
  for (uint64_t begin = 0; begin + window <= predictions; begin += window) {
    offsets.push_back(begin);
    if (static_cast<int64_t>(offsets.size()) == kEvalWindows) flush(context);
  }
  flush(context);
  const uint64_t tail = predictions % window;
  if (tail > 0) {
    offsets.push_back(predictions - tail);
    flush(static_cast<int64_t>(tail));
  }
  return nats / static_cast<double>(predictions) / std::log(2.0);
}

}  // namespace tapestry::worker
