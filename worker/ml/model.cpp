#include <array>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "worker/ml/model_impl.h"
#include "worker/ml/transformer_impl.h"

namespace tapestry::worker {
namespace {

constexpr int64_t kEvalBatch = 1000;
constexpr float kPixelMean = 0.2860f;
constexpr float kPixelStd = 0.3530f;
constexpr const char* kTransformer = "transformer";
constexpr const char* kNameChoices = "\"; use \"mlp\" or \"cnn\" for images, \"transformer\" for text";

// Every pixel value's normalised float, so batches are a table lookup.
const std::array<float, 256>& pixelTable() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int p = 0; p < 256; ++p) t[p] = (static_cast<float>(p) / 255.0f - kPixelMean) / kPixelStd;
    return t;
  }();
  return table;
}

void checkHidden(int64_t hidden) {
  if (hidden < 1) {
    throw std::invalid_argument("model.hidden must be a positive integer, got " + std::to_string(hidden));
  }
}

}  // namespace

nlohmann::json ModelSpec::toJson() const {
  nlohmann::json j = {{"name", name}};
  if (name == "mlp") j["hidden"] = hidden;
  if (name == kTransformer) {
    j["layers"] = layers;
    j["d_model"] = d_model;
    j["heads"] = heads;
    j["context"] = context;
    j["tied"] = tied;
  }
  return j;
}

ModelSpec ModelSpec::fromJson(const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("model must be a JSON object like {\"name\": \"cnn\"}");
  ModelSpec spec;
  std::vector<std::string> transformer_keys;
  auto integer = [](const nlohmann::json& value, const std::string& key) {
    if (!value.is_number_integer()) throw std::invalid_argument("model." + key + " must be a positive integer");
    return value.get<int64_t>();
  };
  for (const auto& [key, value] : j.items()) {
    if (key == "name") {
      if (!value.is_string()) {
        throw std::invalid_argument("model.name must be a string: \"mlp\", \"cnn\" or \"transformer\"");
      }
      spec.name = value.get<std::string>();
    } else if (key == "hidden") {
      spec.hidden = integer(value, key);
    } else if (key == "layers" || key == "d_model" || key == "heads" || key == "context") {
      (key == "layers" ? spec.layers : key == "d_model" ? spec.d_model : key == "heads" ? spec.heads : spec.context) =
          integer(value, key);
      transformer_keys.push_back(key);
    } else if (key == "tied") {
      if (!value.is_boolean()) throw std::invalid_argument("model.tied must be true or false");
      spec.tied = value.get<bool>();
      transformer_keys.push_back(key);
    } else {
      throw std::invalid_argument("unknown key model." + key +
                                  "; known keys are \"name\", \"hidden\" (mlp) and \"layers\", \"d_model\", "
                                  "\"heads\", \"context\", \"tied\" (transformer)");
    }
  }
  if (spec.name != "mlp" && spec.name != "cnn" && spec.name != kTransformer) {
    throw std::invalid_argument("unknown model.name \"" + spec.name + kNameChoices);
  }
  if (spec.name == kTransformer) {
    checkTransformerSpec(spec);
  } else if (!transformer_keys.empty()) {
    throw std::invalid_argument("model." + transformer_keys.front() + " applies to the \"transformer\" only, not to \"" +
                                spec.name + "\"; remove it");
  }
  checkHidden(spec.hidden);
  return spec;
}

bool isLanguageModel(const ModelSpec& spec) { return spec.name == kTransformer; }

const char* metricName(const ModelSpec& spec) { return isLanguageModel(spec) ? "bits_per_byte" : "accuracy"; }

bool higherIsBetter(const ModelSpec& spec) { return !isLanguageModel(spec); }

torch::nn::Sequential buildNetwork(const ModelSpec& spec) {
  namespace nn = torch::nn;
  if (spec.name == "mlp") {
    checkHidden(spec.hidden);
    return nn::Sequential(nn::Flatten(), nn::Linear(kImageSide * kImageSide, spec.hidden), nn::ReLU(),
                          nn::Linear(spec.hidden, kClasses));
  }
  if (spec.name == "cnn") {
    return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 6, 5)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                          nn::Conv2d(nn::Conv2dOptions(6, 16, 5)), nn::ReLU(),
                          nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(), nn::Linear(16 * 4 * 4, 120),
                          nn::ReLU(), nn::Linear(120, 84), nn::ReLU(), nn::Linear(84, kClasses));
  }
  if (spec.name == kTransformer) return nn::Sequential(ByteTransformer(spec));
  throw std::invalid_argument("unknown model name \"" + spec.name + kNameChoices);
}

std::string fingerprintOf(const torch::nn::Module& module) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  auto mix = [&](const std::string& s) {
    for (const unsigned char c : s) {
      hash ^= c;
      hash *= 0x100000001b3ULL;
    }
  };
  for (const auto& item : module.named_parameters(true)) {
    std::string shape;
    for (const int64_t d : item.value().sizes()) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    mix(item.key() + ":" + shape + ":" + std::string(item.value().dtype().name()) + ";");
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

FlatParameters flattenParameters(torch::nn::Module& module) {
  std::vector<torch::Tensor> params = module.parameters(true);
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  FlatParameters flat{torch::empty({total}, torch::kFloat32), torch::zeros({total}, torch::kFloat32)};
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (auto& p : params) {
    const int64_t n = p.numel();
    torch::Tensor slot = flat.weights.narrow(0, offset, n);
    slot.copy_(p.detach().reshape({-1}));
    p.set_data(slot.view(p.sizes()));
    p.mutable_grad() = flat.grads.narrow(0, offset, n).view(p.sizes());
    offset += n;
  }
  return flat;
}

size_t modelParameterCount(const ModelSpec& spec) {
  size_t count = 0;
  for (const auto& p : buildNetwork(spec)->parameters()) count += static_cast<size_t>(p.numel());
  return count;
}

std::string modelFingerprint(const ModelSpec& spec) { return fingerprintOf(*buildNetwork(spec)); }

void checkImageShape(const ImageDataset& data, const char* what) {
  if (data.rows != kImageSide || data.cols != kImageSide) {
    throw std::invalid_argument(std::string(what) + " has " + std::to_string(data.rows) + "x" +
                                std::to_string(data.cols) + " images; the models take " +
                                std::to_string(kImageSide) + "x" + std::to_string(kImageSide));
  }
  if (data.images.size() != data.size() * data.rows * data.cols) {
    throw std::invalid_argument(std::string(what) + " holds " + std::to_string(data.images.size()) +
                                " pixels, not " + std::to_string(data.size()) + " whole images");
  }
}

torch::Tensor inputBatch(const ImageDataset& data, const size_t* indices, size_t begin, size_t count) {
  const size_t pixels = size_t{data.rows} * data.cols;
  torch::Tensor batch = torch::empty({static_cast<int64_t>(count), 1, data.rows, data.cols}, torch::kFloat32);
  float* dst = batch.data_ptr<float>();
  const auto& table = pixelTable();
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* src = data.images.data() + (indices ? indices[i] : begin + i) * pixels;
    for (size_t p = 0; p < pixels; ++p) dst[i * pixels + p] = table[src[p]];
  }
  return batch;
}

torch::Tensor labelBatch(const ImageDataset& data, const size_t* indices, size_t begin, size_t count) {
  torch::Tensor batch = torch::empty({static_cast<int64_t>(count)}, torch::kInt64);
  int64_t* dst = batch.data_ptr<int64_t>();
  for (size_t i = 0; i < count; ++i) dst[i] = data.labels[indices ? indices[i] : begin + i];
  return batch;
}

double accuracyOf(torch::nn::Sequential& net, const ImageDataset& data) {
  checkImageShape(data, "the evaluation set");
  if (data.size() == 0) throw std::invalid_argument("cannot evaluate on an empty dataset");
  torch::NoGradGuard no_grad;
  int64_t correct = 0;
  for (size_t begin = 0; begin < data.size(); begin += kEvalBatch) {
    const size_t count = std::min<size_t>(kEvalBatch, data.size() - begin);
    const torch::Tensor logits = net->forward(inputBatch(data, nullptr, begin, count));
    correct += logits.argmax(1).eq(labelBatch(data, nullptr, begin, count)).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

}  // namespace tapestry::worker
