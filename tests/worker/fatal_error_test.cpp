// What a worker stopping on a fatal error says: the error, and for a full,
// over-quota or read-only disk, what to do and where.
#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "worker/fatal_error.h"

namespace tapestry::worker {
namespace {

const std::vector<std::string> kDirs = {"/srv/worker/state", "/srv/worker/audit"};

TEST(FatalError, ACheckpointOnAFullDiskSaysToFreeSpaceWhereStateDirIs) {
  std::runtime_error e("checkpoint: write '/srv/worker/state/worker.ckpt.tmp.42' failed: No space left on device");
  const std::string m = describeFatalError(e, kDirs);
  EXPECT_EQ(m.rfind(e.what(), 0), 0u) << m;
  EXPECT_NE(m.find("free space on the disk holding /srv/worker/state"), std::string::npos) << m;
  EXPECT_NE(m.find("start the worker again"), std::string::npos) << m;
}

TEST(FatalError, TheAdviceNamesTheDirectoryTheMessageNames) {
  std::filesystem::filesystem_error e("cannot create directories", "/srv/worker/audit/x",
                                      std::make_error_code(std::errc::read_only_file_system));
  const std::string m = describeFatalError(e, kDirs);
  EXPECT_NE(m.find("/srv/worker/audit is on a read-only file system"), std::string::npos) << m;
}

TEST(FatalError, AQuotaIsTold) {
  std::system_error e(EDQUOT, std::generic_category(), "rounds.jsonl");
  const std::string m = describeFatalError(e, kDirs);
  EXPECT_NE(m.find("disk quota is used up on /srv/worker/state"), std::string::npos) << m;
}

TEST(FatalError, OtherErrorsAreToldAsTheyAre) {
  std::runtime_error e("checkpoint: open '/srv/worker/state/worker.ckpt.tmp.42' failed: Is a directory");
  EXPECT_EQ(describeFatalError(e, kDirs), e.what());
  std::system_error denied(EACCES, std::generic_category(), "open");
  EXPECT_EQ(describeFatalError(denied, kDirs), denied.what());
}

}  // namespace
}  // namespace tapestry::worker
