// The daemons' shared command line: a --workdir that is not a directory is
// named before the config is read.
#include "common/daemon_main.h"

#include <gtest/gtest.h>

#include <vector>

namespace tapestry::common {
namespace {

int run(std::vector<std::string> args, bool* ran) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return runDaemon(static_cast<int>(argv.size()), argv.data(), "tapestry-test", [ran](const std::string&, const std::string&) {
    *ran = true;
    return 0;
  });
}

TEST(DaemonMain, AWorkdirThatIsNotADirectoryIsNamed) {
  bool ran = false;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(run({"tapestry-test", "--config", "c.json", "--workdir", "/nonexistent/dir"}, &ran), 2);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(ran);
  EXPECT_NE(err.find("--workdir '/nonexistent/dir' is not a directory"), std::string::npos) << err;
  EXPECT_EQ(run({"tapestry-test", "--config", "c.json", "--workdir", "/tmp"}, &ran), 0);
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace tapestry::common
