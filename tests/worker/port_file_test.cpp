// coordinator.port_file: a port is read; a missing, empty or garbled file is
// a reason to wait, told in words, never a port made up.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "worker/port_file.h"
#include "worker/temp_dir.h"

namespace tapestry::worker {
namespace {

using testing::TempDir;

TEST(PortFile, APortWithItsNewline) {
  TempDir dir;
  PortFileRead r = readPortFile(dir.write("coordinator.port", "41234\n"));
  EXPECT_EQ(r.problem, "");
  EXPECT_EQ(r.port, 41234);
  EXPECT_EQ(readPortFile(dir.write("p", "  1 \r\n")).port, 1);
  EXPECT_EQ(readPortFile(dir.write("p", "65535")).port, 65535);
}

TEST(PortFile, MissingIsMissing) {
  TempDir dir;
  PortFileRead r = readPortFile(dir / "coordinator.port");
  EXPECT_EQ(r.problem, "missing");
  EXPECT_EQ(r.port, 0);
}

TEST(PortFile, GarbageIsNotAPort) {
  TempDir dir;
  EXPECT_EQ(readPortFile(dir.write("p", "garbage\n")).problem, "holds 'garbage', not a port");
  EXPECT_EQ(readPortFile(dir.write("p", "0\n")).problem, "holds '0', not a port");
  EXPECT_EQ(readPortFile(dir.write("p", "65536")).problem, "holds '65536', not a port");
  EXPECT_EQ(readPortFile(dir.write("p", "007300")).problem, "holds '007300', not a port");
  EXPECT_EQ(readPortFile(dir.write("p", "-1")).problem, "holds '-1', not a port");
  EXPECT_EQ(readPortFile(dir.write("p", "7300 7301")).problem, "holds '7300 7301', not a port");
  EXPECT_EQ(readPortFile(dir.write("p", std::string("73\0" "00", 5))).problem, "holds '73?00', not a port");
  EXPECT_EQ(readPortFile(dir.write("p", std::string(100, 'x'))).problem,
            "holds '" + std::string(32, 'x') + "...', not a port");
}

TEST(PortFile, EmptyIsEmpty) {
  TempDir dir;
  EXPECT_EQ(readPortFile(dir.write("p", "")).problem, "is empty");
  EXPECT_EQ(readPortFile(dir.write("p", " \n")).problem, "is empty");
}

TEST(PortFile, ADirectoryCannotBeRead) {
  TempDir dir;
  std::filesystem::create_directories(dir / "coordinator.port");
  EXPECT_EQ(readPortFile(dir / "coordinator.port").problem, "cannot be read: Is a directory");
}

TEST(PortFile, TheWaitNamesTheFileAndWhy) {
  EXPECT_EQ(describePortFileWait("/run/c.port", "missing"), "waiting for the coordinator's port file /run/c.port (missing)");
}

}  // namespace
}  // namespace tapestry::worker
