// Text shards: round trip, format detection and untrusted files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "worker/ml/dataset.h"
#include "worker/ml/file_io.h"

namespace tapestry::worker {
namespace {

namespace fs = std::filesystem;

class TextShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tapestry-text-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static void write(const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  }
  static std::string loadError(const std::string& dir) {
    try {
      loadShard(dir);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "no error";
  }

  fs::path dir_;
};

TEST_F(TextShardTest, DatasetKinds) {
  const Dataset text = Dataset::fromText("h\xc3\xa9llo");
  EXPECT_TRUE(text.isText());
  EXPECT_EQ(text.size(), 6u);
  ImageDataset images;
  images.labels = {1, 2, 3};
  images.images.resize(3 * 784);
  const Dataset wrapped = images;
  EXPECT_FALSE(wrapped.isText());
  EXPECT_EQ(wrapped.size(), 3u);
  EXPECT_TRUE(Dataset::fromText("").isText());
}

TEST_F(TextShardTest, WriteLoadRoundTripKeepsEveryByte) {
  std::string bytes;
  for (int i = 0; i < 1000; ++i) bytes += static_cast<char>(i * 37 % 256);  // includes NUL and invalid UTF-8
  const Shard shard{Dataset::fromText(bytes), Dataset::fromText("\xd0\x9f\xd1\x80\xd0\xb8\n")};
  writeShard(shard, path("de"));
  EXPECT_TRUE(fs::exists(path("de/train.txt")));
  const Shard back = loadShard(path("de"));
  ASSERT_TRUE(back.train.isText());
  ASSERT_TRUE(back.val.isText());
  EXPECT_EQ(back.train.text, bytes);
  EXPECT_EQ(back.val.text, shard.val.text);
  EXPECT_TRUE(back.train.images.empty());
}

TEST_F(TextShardTest, ImageShardsStillLoadAsImages) {
  ImageDataset images;
  images.labels = {4, 2};
  images.images.assign(2 * 784, 7);
  writeShard(Shard{images, images}, path("img"));
  const Shard back = loadShard(path("img"));
  EXPECT_FALSE(back.train.isText());
  EXPECT_EQ(back.val.labels, images.labels);
}

TEST_F(TextShardTest, BadShardsGetClearErrors) {
  EXPECT_NE(loadError(path("missing")).find("does not exist"), std::string::npos);
  write(path("a-file"), "{}");
  EXPECT_NE(loadError(path("a-file")).find("is not a directory"), std::string::npos) << loadError(path("a-file"));
  fs::create_directories(path("empty"));
  EXPECT_NE(loadError(path("empty")).find("neither"), std::string::npos);

  fs::create_directories(path("half"));
  write(path("half/train.txt"), "abc");
  const std::string half = loadError(path("half"));
  EXPECT_NE(half.find("val.txt"), std::string::npos) << half;
  EXPECT_NE(half.find("does not exist"), std::string::npos) << half;

  fs::create_directories(path("both"));
  write(path("both/train.txt"), "abc");
  write(path("both/train-images-idx3-ubyte"), "x");
  EXPECT_NE(loadError(path("both")).find("both IDX image files and train.txt"), std::string::npos);

  fs::create_directories(path("dir/val.txt"));
  write(path("dir/train.txt"), "abc");
  EXPECT_NE(loadError(path("dir")).find("not a regular file"), std::string::npos);

  EXPECT_THROW(writeShard(Shard{Dataset::fromText("a"), Dataset{}}, path("mixed")), std::invalid_argument);
}

TEST_F(TextShardTest, OversizedFilesAreRefusedBeforeReading) {
  write(path("big.txt"), std::string(101, 'x'));
  try {
    readFileBounded(path("big.txt"), 100, "; make it smaller");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("101 bytes, more than the limit of 100"), std::string::npos) << what;
    EXPECT_NE(what.find("; make it smaller"), std::string::npos) << what;
  }
  EXPECT_EQ(readFileBounded(path("big.txt"), 101, "").size(), 101u);
}

}  // namespace
}  // namespace tapestry::worker
