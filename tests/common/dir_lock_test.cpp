// DirLock: one holder per state directory; the next is refused with a
// message that names the directory and the holder, and the lock is free
// again once the holder is gone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "common/dir_lock.h"

namespace tapestry::common {
namespace {

class DirLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "tapestry-lock-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_;
};

TEST_F(DirLockTest, ASecondHolderIsRefusedUntilTheFirstIsGone) {
  const std::string dir = root_ + "/state/coordinator";  // created by the lock
  auto first = std::make_unique<DirLock>(dir, "coordinator");
  EXPECT_TRUE(std::filesystem::exists(dir + "/LOCK"));
  try {
    DirLock second(dir, "coordinator");
    FAIL() << "a second lock on " << dir << " was granted";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(dir + " is in use by another process (pid " + std::to_string(::getpid()) + ")"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("each coordinator needs a state_dir of its own"), std::string::npos) << what;
  }
  first.reset();
  EXPECT_NO_THROW(DirLock again(dir, "coordinator"));
}

TEST_F(DirLockTest, AnUnwritableDirectoryIsNamed) {
  if (::geteuid() == 0) GTEST_SKIP() << "root may write anywhere; the permission check cannot fail";
  std::filesystem::create_directories(root_ + "/ro");
  std::filesystem::permissions(root_ + "/ro", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  try {
    DirLock lock(root_ + "/ro", "worker");
    FAIL() << "locked a read-only directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("must be writable"), std::string::npos) << e.what();
  }
  std::filesystem::permissions(root_ + "/ro", std::filesystem::perms::owner_all);
}

TEST_F(DirLockTest, AProbeTellsWhetherADaemonRunsOnTheDirectory) {
  const std::string dir = root_ + "/state/worker";
  EXPECT_EQ(DirLock::probe(dir), DirLock::Probe::kFree) << "no directory, no LOCK";
  EXPECT_FALSE(std::filesystem::exists(dir)) << "the probe creates nothing";
  auto lock = std::make_unique<DirLock>(dir, "worker");
  EXPECT_EQ(DirLock::probe(dir), DirLock::Probe::kHeld);
  EXPECT_EQ(DirLock::probe(dir), DirLock::Probe::kHeld) << "a probe leaves no lock of its own behind";
  EXPECT_EQ(DirLock::holderPid(dir), static_cast<long>(::getpid()));
  lock.reset();
  EXPECT_EQ(DirLock::probe(dir), DirLock::Probe::kFree) << "LOCK is left, the lock is not";
  EXPECT_NO_THROW(DirLock again(dir, "worker")) << "probes do not block the next holder";
}

}  // namespace
}  // namespace tapestry::common
