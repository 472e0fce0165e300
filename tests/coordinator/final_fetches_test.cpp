// Who has the final consensus, kept across coordinator restarts.
#include "coordinator/final_fetches.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace tapestry::coordinator {
namespace {

namespace fs = std::filesystem;

TEST(FinalFetches, RecordedMembersOfTheFinalRoundSurviveARestart) {
  const std::string dir = (fs::temp_directory_path() / ("tapestry-final-" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  EXPECT_TRUE(loadFinalFetches(dir, 7).empty()) << "no file yet";
  recordFinalFetch(dir, 5, "hospital-a");  // the final round before rounds.max was raised
  recordFinalFetch(dir, 7, "hospital-a");
  recordFinalFetch(dir, 7, "lab \"b\"");
  std::ofstream(dir + "/final_fetched.jsonl", std::ios::app) << "{\"round\":7,\"mem";  // torn by a crash
  EXPECT_EQ(loadFinalFetches(dir, 7), (std::set<std::string>{"hospital-a", "lab \"b\""}));
  EXPECT_EQ(loadFinalFetches(dir, 5), (std::set<std::string>{"hospital-a"}));
  recordFinalFetch(dir, 7, "c");  // the torn tail is cut, not glued onto
  EXPECT_EQ(loadFinalFetches(dir, 7), (std::set<std::string>{"hospital-a", "lab \"b\"", "c"}));
  EXPECT_TRUE(loadFinalFetches(dir, 8).empty());
  fs::remove_all(dir);
}

TEST(FinalFetches, AnUnwritableStateDirCostsOnlyAWarning) {
  EXPECT_NO_THROW(recordFinalFetch("/proc/no-such-dir", 1, "a"));
  EXPECT_TRUE(loadFinalFetches("/proc/no-such-dir", 1).empty());
}

}  // namespace
}  // namespace tapestry::coordinator
