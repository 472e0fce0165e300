// IDX reading and writing, shards, and the real Fashion-MNIST files.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include "worker/ml/dataset.h"

namespace tapestry::worker {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("tapestry-ml-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

ImageDataset randomDataset(size_t n, uint64_t seed, uint32_t rows = 28, uint32_t cols = 28) {
  std::mt19937_64 rng(seed);
  ImageDataset d;
  d.rows = rows;
  d.cols = cols;
  d.images.resize(n * rows * cols);
  d.labels.resize(n);
  for (auto& p : d.images) p = static_cast<uint8_t>(rng());
  for (auto& l : d.labels) l = static_cast<uint8_t>(rng() % 10);
  return d;
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string errorOf(const std::string& images, const std::string& labels) {
  try {
    readIdx(images, labels);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Idx, WriteReadRoundTrip) {
  TempDir dir;
  const ImageDataset d = randomDataset(17, 1, 28, 20);
  writeIdx(d, dir.file("img"), dir.file("lbl"));
  const ImageDataset back = readIdx(dir.file("img"), dir.file("lbl"));
  EXPECT_EQ(back.rows, 28u);
  EXPECT_EQ(back.cols, 20u);
  EXPECT_EQ(back.images, d.images);
  EXPECT_EQ(back.labels, d.labels);
  EXPECT_EQ(readAll(dir.file("img")).size(), 16 + 17 * 28 * 20u);
  EXPECT_FALSE(fs::exists(dir.file("img") + ".tmp." + std::to_string(::getpid())));
}

TEST(Idx, ReadsGzipCompressedFiles) {
  TempDir dir;
  const ImageDataset d = randomDataset(9, 2);
  writeIdx(d, dir.file("img"), dir.file("lbl"));
  for (const char* name : {"img", "lbl"}) {
    const std::string raw = readAll(dir.file(name));
    gzFile gz = gzopen((dir.file(name) + ".gz").c_str(), "wb");
    ASSERT_NE(gz, nullptr);
    ASSERT_EQ(gzwrite(gz, raw.data(), static_cast<unsigned>(raw.size())), static_cast<int>(raw.size()));
    gzclose(gz);
  }
  const ImageDataset back = readIdx(dir.file("img.gz"), dir.file("lbl.gz"));
  EXPECT_EQ(back.images, d.images);
  EXPECT_EQ(back.labels, d.labels);
}

TEST(Idx, EmptyDatasetRoundTrips) {
  TempDir dir;
  writeIdx(ImageDataset{}, dir.file("img"), dir.file("lbl"));
  EXPECT_EQ(readIdx(dir.file("img"), dir.file("lbl")).size(), 0u);
}

TEST(Idx, CorruptedMagicNumberIsNamed) {
  TempDir dir;
  writeIdx(randomDataset(3, 3), dir.file("img"), dir.file("lbl"));
  std::string bytes = readAll(dir.file("img"));
  bytes[3] = 0x01;  // 2049: a label file's magic
  writeAll(dir.file("img"), bytes);
  const std::string error = errorOf(dir.file("img"), dir.file("lbl"));
  EXPECT_NE(error.find(dir.file("img")), std::string::npos) << error;
  EXPECT_NE(error.find("magic number 2049, expected 2051"), std::string::npos) << error;
  EXPECT_NE(error.find("dataset-fashion-mnist"), std::string::npos) << error;
  // Labels given where images are expected, the other way round.
  const std::string swapped = errorOf(dir.file("lbl"), dir.file("lbl"));
  EXPECT_NE(swapped.find("not an IDX image file"), std::string::npos) << swapped;
}

TEST(Idx, TruncatedFilesAreRejected) {
  TempDir dir;
  writeIdx(randomDataset(4, 4), dir.file("img"), dir.file("lbl"));
  const std::string bytes = readAll(dir.file("img"));
  writeAll(dir.file("img"), bytes.substr(0, bytes.size() - 5));
  std::string error = errorOf(dir.file("img"), dir.file("lbl"));
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;
  writeAll(dir.file("img"), bytes.substr(0, 10));
  error = errorOf(dir.file("img"), dir.file("lbl"));
  EXPECT_NE(error.find("truncated inside its header"), std::string::npos) << error;
  writeAll(dir.file("img"), bytes + "xx");
  error = errorOf(dir.file("img"), dir.file("lbl"));
  EXPECT_NE(error.find("bytes after the data"), std::string::npos) << error;
}

TEST(Idx, LyingHeaderDoesNotAllocateWhatItClaims) {
  TempDir dir;
  writeIdx(randomDataset(2, 5), dir.file("img"), dir.file("lbl"));
  std::string img = readAll(dir.file("img"));
  std::string lbl = readAll(dir.file("lbl"));
  // Ten million images (7.8 GB) declared, two present.
  const std::string ten_million("\x00\x98\x96\x80", 4);
  img.replace(4, 4, ten_million);
  lbl.replace(4, 4, ten_million);
  writeAll(dir.file("img"), img);
  writeAll(dir.file("lbl"), lbl);
  const std::string error = errorOf(dir.file("img"), dir.file("lbl"));
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;
  // Beyond the hard limit: refused from the header alone.
  img.replace(4, 4, std::string("\x7f\xff\xff\xff", 4));
  writeAll(dir.file("img"), img);
  EXPECT_NE(errorOf(dir.file("img"), dir.file("lbl")).find("beyond the limit"), std::string::npos);
}

TEST(Idx, MismatchedCountsAndBadDimensions) {
  TempDir dir;
  writeIdx(randomDataset(4, 6), dir.file("img4"), dir.file("lbl4"));
  writeIdx(randomDataset(5, 6), dir.file("img5"), dir.file("lbl5"));
  EXPECT_NE(errorOf(dir.file("img4"), dir.file("lbl5")).find("do not belong together"), std::string::npos);
  std::string img = readAll(dir.file("img4"));
  img.replace(8, 4, std::string("\x00\x00\x00\x00", 4));
  writeAll(dir.file("img4"), img);
  EXPECT_NE(errorOf(dir.file("img4"), dir.file("lbl4")).find("each side must be"), std::string::npos);
}

TEST(Idx, MissingFileSaysWhatToInstall) {
  TempDir dir;
  const std::string error = errorOf(dir.file("nope"), dir.file("nope2"));
  EXPECT_NE(error.find(dir.file("nope")), std::string::npos) << error;
  EXPECT_NE(error.find("dataset-fashion-mnist"), std::string::npos) << error;
  try {
    loadFashionMnist(dir.file("empty"), true);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("train-images-idx3-ubyte.gz"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("install the Debian package dataset-fashion-mnist"), std::string::npos);
  }
}

TEST(Idx, WriteRejectsInconsistentData) {
  TempDir dir;
  ImageDataset d = randomDataset(3, 7);
  d.images.pop_back();
  EXPECT_THROW(writeIdx(d, dir.file("img"), dir.file("lbl")), std::invalid_argument);
  EXPECT_THROW(writeIdx(randomDataset(1, 7), dir.file("no/such/dir/img"), dir.file("lbl")), std::runtime_error);
}

TEST(Dataset, SubsetAndHistogram) {
  const ImageDataset d = randomDataset(10, 8);
  const ImageDataset s = subset(d, {7, 2, 7});
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s.labels[0], d.labels[7]);
  EXPECT_EQ(s.labels[1], d.labels[2]);
  EXPECT_TRUE(std::equal(s.images.begin(), s.images.begin() + 784, d.images.begin() + 7 * 784));
  EXPECT_THROW(subset(d, {10}), std::out_of_range);

  ImageDataset h;
  h.labels = {0, 1, 1, 3};
  EXPECT_EQ(labelHistogram(h, 4), (std::vector<size_t>{1, 2, 0, 1}));
  EXPECT_THROW(labelHistogram(h, 3), std::invalid_argument);
}

TEST(Shard, WriteLoadRoundTrip) {
  TempDir dir;
  const Shard shard{randomDataset(12, 9), randomDataset(3, 10)};
  writeShard(shard, dir.file("a/worker-0"));
  const Shard back = loadShard(dir.file("a/worker-0"));
  EXPECT_EQ(back.train.images, shard.train.images);
  EXPECT_EQ(back.train.labels, shard.train.labels);
  EXPECT_EQ(back.val.labels, shard.val.labels);
  try {
    loadShard(dir.file("missing"));
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tapestry partition"), std::string::npos) << e.what();
  }
}

TEST(FashionMnist, ReadsTheDebianFiles) {
  if (!fs::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz") &&
      !fs::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte")) {
    GTEST_SKIP() << "Fashion-MNIST is not installed under " << kFashionMnistDir
                 << " (apt install dataset-fashion-mnist)";
  }
  const ImageDataset train = loadFashionMnist(kFashionMnistDir, true);
  const ImageDataset test = loadFashionMnist(kFashionMnistDir, false);
  EXPECT_EQ(train.size(), 60000u);
  EXPECT_EQ(test.size(), 10000u);
  EXPECT_EQ(train.rows, 28u);
  EXPECT_EQ(train.cols, 28u);
  EXPECT_EQ(labelHistogram(train), std::vector<size_t>(10, 6000));
  EXPECT_EQ(labelHistogram(test), std::vector<size_t>(10, 1000));
}

}  // namespace
}  // namespace tapestry::worker
