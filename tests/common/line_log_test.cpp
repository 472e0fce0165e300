// Line logs: a torn last line left by a crash is cut off, complete lines are
// kept, and the next append starts a line of its own.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "common/line_log.h"

namespace tapestry::common {
namespace {

class LineLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "tapestry-lines-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    path_ = root_ + "/rounds.jsonl";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& text) { std::ofstream(path_, std::ios::binary | std::ios::trunc) << text; }
  std::string read() const {
    std::ifstream in(path_, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::string root_, path_;
};

TEST_F(LineLogTest, ATornLastLineIsCutAndTheNextAppendStandsAlone) {
  write("{\"round\":1}\n{\"round\":2}\n{\"rou");
  EXPECT_EQ(dropTornLastLine(path_), 5u);
  EXPECT_EQ(read(), "{\"round\":1}\n{\"round\":2}\n");
  appendLine(path_, "{\"round\":3}");
  EXPECT_EQ(read(), "{\"round\":1}\n{\"round\":2}\n{\"round\":3}\n");
}

TEST_F(LineLogTest, CompleteEmptyAndMissingLogsAreLeftAlone) {
  EXPECT_EQ(dropTornLastLine(path_), 0u) << "no file yet";
  EXPECT_FALSE(std::filesystem::exists(path_));
  write("");
  EXPECT_EQ(dropTornLastLine(path_), 0u);
  write("{\"round\":1}\n");
  EXPECT_EQ(dropTornLastLine(path_), 0u);
  EXPECT_EQ(read(), "{\"round\":1}\n");
}

TEST_F(LineLogTest, ATornLineLongerThanOneReadBlockIsCutWhole) {
  const std::string whole = "{\"round\":1}\n";
  const std::string torn(10000, 'x');  // no newline for more than two blocks
  write(whole + torn);
  EXPECT_EQ(dropTornLastLine(path_), torn.size());
  EXPECT_EQ(read(), whole);
  write(torn);  // a log whose only line is torn becomes empty
  EXPECT_EQ(dropTornLastLine(path_), torn.size());
  EXPECT_EQ(read(), "");
}

TEST_F(LineLogTest, AnAppendThatCannotBeWrittenThrowsNamingTheFile) {
  try {
    appendLine(root_ + "/missing/rounds.jsonl", "{}");
    FAIL() << "appended into a directory that does not exist";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find(root_ + "/missing/rounds.jsonl"), std::string::npos) << e.what();
    EXPECT_EQ(e.code().value(), ENOENT);
  }
  // /dev/full answers every write with ENOSPC, as a full disk does.
  try {
    appendLine("/dev/full", "{\"round\":1}");
    FAIL() << "a write to a full device went unnoticed";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOSPC) << e.what();
    EXPECT_NE(std::string(e.what()).find("/dev/full"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tapestry::common
