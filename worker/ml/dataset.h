#pragma once
// Labelled greyscale image sets in the IDX format (MNIST, Fashion-MNIST) and
// the shard directories that `tapestry partition` writes, one per worker.
// Readers treat files as untrusted: every header field is checked against the
// file and a hard limit before anything is allocated.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tapestry::worker {

// Where the Debian package dataset-fashion-mnist installs its files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct ImageDataset {
  uint32_t rows = 28, cols = 28;
  std::vector<uint8_t> images;  // size() * rows * cols pixels, row-major
  std::vector<uint8_t> labels;

  size_t size() const { return labels.size(); }
};

// Reads an IDX image file (magic 2051) and its label file (magic 2049), each
// gzip-compressed or raw. Throws std::runtime_error naming the file, the
// problem and what to do about it.
ImageDataset readIdx(const std::string& images_path, const std::string& labels_path);

// Writes raw (uncompressed) IDX files via a temp file and rename, so a reader
// never sees a half-written file. Throws std::runtime_error on I/O errors and
// std::invalid_argument if `data` is inconsistent.
void writeIdx(const ImageDataset& data, const std::string& images_path, const std::string& labels_path);

// The samples at `indices`, in that order. Throws std::out_of_range.
ImageDataset subset(const ImageDataset& data, const std::vector<size_t>& indices);

// dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte, with or without .gz.
ImageDataset loadFashionMnist(const std::string& dir, bool train);

// Count of each label; throws std::invalid_argument for a label >= classes.
std::vector<size_t> labelHistogram(const ImageDataset& d, size_t classes = 10);

// One worker's private data: dir/train-images-idx3-ubyte,
// train-labels-idx1-ubyte, val-images-idx3-ubyte, val-labels-idx1-ubyte.
struct Shard {
  ImageDataset train, val;
};

Shard loadShard(const std::string& dir);
void writeShard(const Shard& shard, const std::string& dir);  // creates dir

}  // namespace tapestry::worker
