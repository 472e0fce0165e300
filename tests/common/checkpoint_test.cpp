#include "common/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

namespace tapestry::common {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "tapestry_ckpt_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (fs::path(dir_) / "state.ckpt").string();
    std::mt19937 rng(2024);
    std::normal_distribution<float> normal;
    weights_.resize(1000);
    for (auto& w : weights_) w = normal(rng);
    for (int i = 0; i < 77; ++i) blob_.push_back(static_cast<uint8_t>(rng()));
  }
  void TearDown() override { fs::remove_all(dir_); }

  void writeGood(const std::string& metadata = R"({"round":7})") const {
    CheckpointWriter w;
    w.setMetadata(metadata);
    w.addSection("weights", weights_.data(), weights_.size() * sizeof(float));
    w.addSection("empty", nullptr, 0);
    w.addSection("blob", blob_.data(), blob_.size());
    w.commit(path_);
  }
  std::vector<uint8_t> fileBytes() const {
    std::ifstream in(path_, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  void writeBytes(const std::vector<uint8_t>& bytes) const {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  // The message of the runtime_error readCheckpoint throws, or "" if none.
  std::string readError() const {
    try {
      readCheckpoint(path_);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }
  std::vector<std::string> dirEntries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
  std::string path_;
  std::vector<float> weights_;
  std::vector<uint8_t> blob_;
};

TEST_F(CheckpointTest, RoundTripsMetadataAndSections) {
  writeGood();
  auto cp = readCheckpoint(path_);
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->metadata, R"({"round":7})");
  ASSERT_EQ(cp->sections.size(), 3u);
  EXPECT_EQ(cp->sectionAs<float>("weights"), weights_);
  EXPECT_TRUE(cp->sections.at("empty").empty());
  EXPECT_TRUE(cp->sectionAs<float>("empty").empty());
  EXPECT_EQ(cp->sections.at("blob"), blob_);
  EXPECT_THROW(cp->sectionAs<float>("missing"), std::runtime_error);
  EXPECT_THROW(cp->sectionAs<uint64_t>("blob"), std::runtime_error);  // 77 bytes
  EXPECT_EQ(dirEntries(), std::vector<std::string>{"state.ckpt"});
}

TEST_F(CheckpointTest, EmptyCheckpointRoundTrips) {
  CheckpointWriter().commit(path_);
  auto cp = readCheckpoint(path_);
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->metadata, "");
  EXPECT_TRUE(cp->sections.empty());
}

TEST_F(CheckpointTest, CommitReplacesThePreviousFile) {
  writeGood(R"({"round":1})");
  writeGood(R"({"round":2})");
  EXPECT_EQ(readCheckpoint(path_)->metadata, R"({"round":2})");
}

TEST_F(CheckpointTest, MissingFileReturnsNullopt) {
  EXPECT_FALSE(readCheckpoint(path_).has_value());
}

TEST_F(CheckpointTest, RejectsDuplicateSection) {
  CheckpointWriter w;
  w.addSection("a", blob_.data(), 1);
  EXPECT_THROW(w.addSection("a", blob_.data(), 2), std::invalid_argument);
}

TEST_F(CheckpointTest, EveryTruncationIsDetected) {
  weights_.resize(16);  // keep the file small: one read per byte
  writeGood();
  const auto good = fileBytes();
  for (size_t len = 0; len < good.size(); ++len) {
    writeBytes(std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(len)));
    std::string err = readError();
    ASSERT_NE(err.find(path_), std::string::npos) << "length " << len << ": " << err;
    ASSERT_NE(err.find("truncated"), std::string::npos) << "length " << len << ": " << err;
  }
}

TEST_F(CheckpointTest, EveryFlippedByteIsDetected) {
  weights_.resize(16);  // keep the file small: one read per byte
  writeGood();
  auto bytes = fileBytes();
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] ^= 0x20;
    writeBytes(bytes);
    std::string err = readError();
    ASSERT_NE(err.find(path_), std::string::npos) << "byte " << i << ": " << err;
    bytes[i] ^= 0x20;
  }
}

TEST_F(CheckpointTest, FlippedPayloadByteIsAChecksumMismatch) {
  writeGood();
  auto bytes = fileBytes();
  bytes[bytes.size() - 4 - 10] ^= 0x01;  // inside the last section's bytes
  writeBytes(bytes);
  EXPECT_NE(readError().find("checksum mismatch"), std::string::npos) << readError();
}

TEST_F(CheckpointTest, BadMagicAndTrailingBytesAreNamed) {
  writeGood();
  auto bytes = fileBytes();
  bytes[0] = 'X';
  writeBytes(bytes);
  EXPECT_NE(readError().find("bad magic"), std::string::npos) << readError();
  bytes[0] = 'T';
  bytes.push_back(0);
  writeBytes(bytes);
  EXPECT_NE(readError().find("unexpected bytes"), std::string::npos) << readError();
}

TEST_F(CheckpointTest, HugeDeclaredLengthsFailBeforeAllocating) {
  // magic | metadata_len 0 | 1 section | name_len 1 | "x" | byte_len 2^62 | ...
  std::vector<uint8_t> bytes = {'T', 'P', 'C', 'K', 'P', 'T', '0', '1', 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'x'};
  for (int i = 0; i < 7; ++i) bytes.push_back(0);
  bytes.push_back(0x40);
  for (int i = 0; i < 8; ++i) bytes.push_back(0);
  writeBytes(bytes);
  EXPECT_NE(readError().find("section 'x' declares 4611686018427387904 bytes"), std::string::npos) << readError();

  std::vector<uint8_t> meta = {'T', 'P', 'C', 'K', 'P', 'T', '0', '1', 0xFF, 0xFF, 0xFF, 0xFF};
  for (int i = 0; i < 16; ++i) meta.push_back(0);
  writeBytes(meta);
  EXPECT_NE(readError().find("metadata declares 4294967295 bytes"), std::string::npos) << readError();
}

TEST_F(CheckpointTest, SystemCallFailureNamesPathCallAndReason) {
  const std::string bad = dir_ + "/no-such-dir/state.ckpt";
  try {
    CheckpointWriter().commit(bad);
    FAIL() << "commit into a missing directory succeeded";
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(bad), std::string::npos) << msg;
    EXPECT_NE(msg.find("open"), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  }
}

TEST_F(CheckpointTest, HookExceptionLeavesOldFileAndNoTemp) {
  writeGood(R"({"round":1})");
  CheckpointWriter w;
  w.setMetadata(R"({"round":2})");
  auto hook = [](CheckpointStage s) {
    if (s == CheckpointStage::kTempSynced) throw std::runtime_error("injected");
  };
  EXPECT_THROW(w.commit(path_, hook), std::runtime_error);
  EXPECT_EQ(readCheckpoint(path_)->metadata, R"({"round":1})");
  EXPECT_EQ(dirEntries(), std::vector<std::string>{"state.ckpt"});
}

TEST_F(CheckpointTest, RemoveStaleTempsKeepsUnrelatedFiles) {
  writeGood();
  for (const char* name : {"state.ckpt.tmp.123", "state.ckpt.tmp.9", "state.ckpt.tmp.abc", "state.ckpt.bak",
                           "other.ckpt.tmp.123"})
    std::ofstream(fs::path(dir_) / name) << "x";
  removeStaleTemps(path_);
  EXPECT_EQ(dirEntries(), (std::vector<std::string>{"other.ckpt.tmp.123", "state.ckpt", "state.ckpt.bak",
                                                    "state.ckpt.tmp.abc"}));
  removeStaleTemps(dir_ + "/absent-dir/state.ckpt");  // nothing to clean is not an error
}

// A child process commits a new checkpoint and "crashes" (_exit) at a stage;
// the parent then checks which checkpoint survived.
class CheckpointCrashTest : public CheckpointTest,
                            public ::testing::WithParamInterface<std::pair<CheckpointStage, const char*>> {};

TEST_P(CheckpointCrashTest, CrashLeavesEitherOldOrNewCheckpoint) {
  const auto [crash_stage, survivor] = GetParam();
  writeGood(R"({"round":1})");
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      std::vector<float> next(weights_.size(), 1.5f);
      CheckpointWriter w;
      w.setMetadata(R"({"round":2})");
      w.addSection("weights", next.data(), next.size() * sizeof(float));
      w.commit(path_, [stage = crash_stage](CheckpointStage s) {
        if (s == stage) ::_exit(42);
      });
    } catch (...) {
      ::_exit(2);
    }
    ::_exit(1);  // the hook was never reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 42);

  const std::string temp = "state.ckpt.tmp." + std::to_string(child);
  const bool renamed = crash_stage == CheckpointStage::kRenamed;
  EXPECT_EQ(fs::exists(fs::path(dir_) / temp), !renamed);

  auto cp = readCheckpoint(path_);
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->metadata, survivor);
  const auto expected = renamed ? std::vector<float>(weights_.size(), 1.5f) : weights_;
  EXPECT_EQ(cp->sectionAs<float>("weights"), expected);

  removeStaleTemps(path_);
  EXPECT_EQ(dirEntries(), std::vector<std::string>{"state.ckpt"});
  EXPECT_EQ(readCheckpoint(path_)->metadata, survivor);
}

INSTANTIATE_TEST_SUITE_P(
    Stages, CheckpointCrashTest,
    ::testing::Values(std::make_pair(CheckpointStage::kTempWritten, R"({"round":1})"),
                      std::make_pair(CheckpointStage::kTempSynced, R"({"round":1})"),
                      std::make_pair(CheckpointStage::kRenamed, R"({"round":2})")),
    [](const auto& info) {
      switch (info.param.first) {
        case CheckpointStage::kTempWritten: return std::string("TempWritten");
        case CheckpointStage::kTempSynced: return std::string("TempSynced");
        case CheckpointStage::kRenamed: return std::string("Renamed");
      }
      return std::string("Unknown");
    });

}  // namespace
}  // namespace tapestry::common
