#pragma once
// Labelled greyscale image sets in the IDX format (MNIST, Fashion-MNIST), text
// corpora, and the shard directories that `tapestry partition` writes, one per
// worker.
// Readers treat files as untrusted: every header field is checked against the
// file and a hard limit before anything is allocated.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
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

// The data of one task: labelled images or, for the byte-level language
// model, a text corpus of raw (UTF-8) bytes. It derives from ImageDataset so
// that image code (`.images`, `.labels`, an `ImageDataset*` to a shard part)
// keeps working unchanged; a text Dataset has no images or labels, and code
// that takes an ImageDataset must dispatch on isText() first.
struct Dataset : ImageDataset {
  Dataset() = default;
  Dataset(ImageDataset images) : ImageDataset(std::move(images)) {}  // NOLINT: implicit on purpose
  static Dataset fromText(std::string bytes);

  bool isText() const { return is_text_; }
  size_t size() const { return is_text_ ? text.size() : ImageDataset::size(); }  // images, or bytes

  std::string text;  // text datasets only

 private:
  bool is_text_ = false;
};

// Largest train.txt / val.txt a shard may hold.
inline constexpr uint64_t kMaxTextBytes = uint64_t{1} << 30;

// One worker's private data, in one of two layouts:
//   images: dir/{train,val}-images-idx3-ubyte and dir/{train,val}-labels-idx1-ubyte
//   text:   dir/train.txt and dir/val.txt (raw bytes, at most kMaxTextBytes each)
// train and val are of the same kind.
struct Shard {
  Dataset train, val;
};

// Detects the layout from the files present. Throws std::runtime_error naming
// the directory or file and what is wrong (missing, both layouts, too large).
Shard loadShard(const std::string& dir);
// Creates dir; throws std::invalid_argument if train and val differ in kind.
void writeShard(const Shard& shard, const std::string& dir);

}  // namespace tapestry::worker
