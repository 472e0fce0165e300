#include "worker/ml/dataset.h"

#include "worker/ml/file_io.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace tapestry::worker {
namespace {

constexpr uint32_t kImageMagic = 2051;
constexpr uint32_t kLabelMagic = 2049;
constexpr uint32_t kMaxSide = 4096;
constexpr uint64_t kMaxSamples = uint64_t{1} << 30;
constexpr uint64_t kMaxImageBytes = uint64_t{1} << 33;  // 8 GiB
constexpr size_t kReadChunk = size_t{1} << 20;
constexpr const char* kRemedy =
    "; re-create it with `tapestry partition` or reinstall the Debian package dataset-fashion-mnist";

// A gzip or raw file read sequentially; zlib passes raw files through.
class IdxReader {
 public:
  explicit IdxReader(const std::string& path) : path_(path) {
    errno = 0;
    file_ = gzopen(path.c_str(), "rb");
    if (file_ == nullptr) {
      const std::string why = errno != 0 ? std::strerror(errno) : "out of memory";
      throw std::runtime_error("cannot open IDX file '" + path + "': " + why +
                               "; check the path (Fashion-MNIST ships in the Debian package "
                               "dataset-fashion-mnist under " + kFashionMnistDir + ")");
    }
    gzbuffer(file_, 1 << 17);
  }
  ~IdxReader() { gzclose(file_); }
  IdxReader(const IdxReader&) = delete;
  IdxReader& operator=(const IdxReader&) = delete;

  // Reads up to `bytes`; returns how many were read (short only at the end).
  size_t read(void* dst, size_t bytes) {
    size_t done = 0;
    while (done < bytes) {
      const unsigned want = static_cast<unsigned>(std::min<size_t>(bytes - done, kReadChunk));
      const int got = gzread(file_, static_cast<uint8_t*>(dst) + done, want);
      if (got < 0) {
        int code = 0;
        const char* msg = gzerror(file_, &code);
        throw std::runtime_error("cannot read IDX file '" + path_ + "': " +
                                 (code == Z_ERRNO ? std::strerror(errno) : msg) + kRemedy);
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

  uint32_t readU32(const char* what) {
    uint8_t b[4];
    if (read(b, 4) != 4) fail("is truncated inside its header (reading " + std::string(what) + ")");
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  }

  // Reads exactly `bytes` into a vector grown chunk by chunk, so a header
  // that lies about the size cannot make us allocate more than the file holds.
  std::vector<uint8_t> readBody(uint64_t bytes) {
    std::vector<uint8_t> out;
    out.reserve(static_cast<size_t>(std::min<uint64_t>(bytes, 64 * kReadChunk)));
    while (out.size() < bytes) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(bytes - out.size(), kReadChunk));
      const size_t old = out.size();
      out.resize(old + want);
      const size_t got = read(out.data() + old, want);
      if (got < want) {
        fail("is truncated: its header declares " + std::to_string(bytes) + " data bytes but only " +
             std::to_string(old + got) + " are present");
      }
    }
    uint8_t extra;
    if (read(&extra, 1) != 0) fail("has bytes after the data its header declares");
    return out;
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw std::runtime_error("IDX file '" + path_ + "' " + problem + kRemedy);
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

void putU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

std::string existingVariant(const std::string& base) {
  std::error_code ec;
  if (std::filesystem::exists(base, ec)) return base;
  if (std::filesystem::exists(base + ".gz", ec)) return base + ".gz";
  throw std::runtime_error("Fashion-MNIST file not found: neither '" + base + "' nor '" + base +
                           ".gz' exists; install the Debian package dataset-fashion-mnist (files in " +
                           kFashionMnistDir + ") or point --data at the directory holding the IDX files");
}

}  // namespace

ImageDataset readIdx(const std::string& images_path, const std::string& labels_path) {
  ImageDataset data;
  IdxReader images(images_path);
  const uint32_t image_magic = images.readU32("magic number");
  if (image_magic != kImageMagic) {
    images.fail("is not an IDX image file: magic number " + std::to_string(image_magic) + ", expected " +
                std::to_string(kImageMagic));
  }
  const uint32_t n = images.readU32("sample count");
  data.rows = images.readU32("row count");
  data.cols = images.readU32("column count");
  if (data.rows == 0 || data.cols == 0 || data.rows > kMaxSide || data.cols > kMaxSide) {
    images.fail("declares images of " + std::to_string(data.rows) + "x" + std::to_string(data.cols) +
                " pixels; each side must be between 1 and " + std::to_string(kMaxSide));
  }
  const uint64_t pixel_bytes = uint64_t{n} * data.rows * data.cols;
  if (n > kMaxSamples || pixel_bytes > kMaxImageBytes) {
    images.fail("declares " + std::to_string(n) + " images (" + std::to_string(pixel_bytes) +
                " bytes), beyond the limit of " + std::to_string(kMaxImageBytes) + " bytes");
  }

  IdxReader labels(labels_path);
  const uint32_t label_magic = labels.readU32("magic number");
  if (label_magic != kLabelMagic) {
    labels.fail("is not an IDX label file: magic number " + std::to_string(label_magic) + ", expected " +
                std::to_string(kLabelMagic));
  }
  const uint32_t label_count = labels.readU32("label count");
  if (label_count != n) {
    labels.fail("holds " + std::to_string(label_count) + " labels but '" + images_path + "' holds " +
                std::to_string(n) + " images; the two files do not belong together");
  }
  data.images = images.readBody(pixel_bytes);
  data.labels = labels.readBody(n);
  return data;
}

void writeIdx(const ImageDataset& data, const std::string& images_path, const std::string& labels_path) {
  const uint64_t n = data.labels.size();
  if (n > UINT32_MAX || data.images.size() != n * data.rows * data.cols) {
    throw std::invalid_argument("writeIdx: " + std::to_string(data.images.size()) + " pixels do not make " +
                                std::to_string(n) + " images of " + std::to_string(data.rows) + "x" +
                                std::to_string(data.cols));
  }
  std::vector<uint8_t> header;
  putU32(header, kImageMagic);
  putU32(header, static_cast<uint32_t>(n));
  putU32(header, data.rows);
  putU32(header, data.cols);
  writeFileAtomically(images_path, header.data(), header.size(), data.images.data(), data.images.size());
  header.clear();
  putU32(header, kLabelMagic);
  putU32(header, static_cast<uint32_t>(n));
  writeFileAtomically(labels_path, header.data(), header.size(), data.labels.data(), data.labels.size());
}

ImageDataset subset(const ImageDataset& data, const std::vector<size_t>& indices) {
  ImageDataset out;
  out.rows = data.rows;
  out.cols = data.cols;
  const size_t pixels = size_t{data.rows} * data.cols;
  out.images.resize(indices.size() * pixels);
  out.labels.resize(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    const size_t src = indices[i];
    if (src >= data.size()) {
      throw std::out_of_range("subset: index " + std::to_string(src) + " is beyond a dataset of " +
                              std::to_string(data.size()) + " samples");
    }
    std::memcpy(out.images.data() + i * pixels, data.images.data() + src * pixels, pixels);
    out.labels[i] = data.labels[src];
  }
  return out;
}

ImageDataset loadFashionMnist(const std::string& dir, bool train) {
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  const std::string images = existingVariant(prefix + "-images-idx3-ubyte");
  const std::string labels = existingVariant(prefix + "-labels-idx1-ubyte");
  return readIdx(images, labels);
}

std::vector<size_t> labelHistogram(const ImageDataset& d, size_t classes) {
  std::vector<size_t> counts(classes, 0);
  for (const uint8_t label : d.labels) {
    if (label >= classes) {
      throw std::invalid_argument("label " + std::to_string(label) + " is out of range for " +
                                  std::to_string(classes) + " classes");
    }
    ++counts[label];
  }
  return counts;
}

}  // namespace tapestry::worker
