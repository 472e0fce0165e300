#pragma once
// LibTorch side of model.h, for the ml/ translation units only.
#include <torch/torch.h>

#include <string>

#include "worker/ml/dataset.h"
#include "worker/ml/model.h"

namespace tapestry::worker {

// Builds the network of `spec`, initialised from torch's global generator.
// Throws std::invalid_argument for an unknown name or a bad hidden size.
torch::nn::Sequential buildNetwork(const ModelSpec& spec);

// One contiguous fp32 buffer holding every parameter of a module, and one
// holding their gradients. After flattenParameters each parameter (and its
// .grad()) is a view into these, in named_parameters() order; autograd then
// accumulates into the grad views in place, so zeroing `grads` before a
// backward pass and reading it after gives the flat gradient.
struct FlatParameters {
  torch::Tensor weights, grads;
};
FlatParameters flattenParameters(torch::nn::Module& module);

// FNV-1a 64 over "name:shape:dtype;" of every named parameter, as 16 hex chars.
std::string fingerprintOf(const torch::nn::Module& module);

// Throws std::invalid_argument unless `data` holds kImageSide x kImageSide images.
void checkImageShape(const ImageDataset& data, const char* what);

// Normalised float batch [count, 1, rows, cols] of the samples at `indices`
// (or, with indices == nullptr, of samples begin .. begin+count-1).
torch::Tensor inputBatch(const ImageDataset& data, const size_t* indices, size_t begin, size_t count);
torch::Tensor labelBatch(const ImageDataset& data, const size_t* indices, size_t begin, size_t count);

// Fraction of `data` classified correctly, in batches, without autograd.
double accuracyOf(torch::nn::Sequential& net, const ImageDataset& data);

}  // namespace tapestry::worker
