// SIGINT/SIGTERM as a stop request: the first signal is recorded, wakes a
// waiter and runs the callback; a second one ends the process at once.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <string>

#include "common/stop_signals.h"

namespace tapestry::common {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(StopSignals, NoSignalNoStop) {
  StopSignals stop("stopping");
  EXPECT_FALSE(stop.requested());
  EXPECT_EQ(stop.signal(), 0);
  EXPECT_FALSE(stop.waitFor(milliseconds(1)));
}

TEST(StopSignals, TheFirstSignalIsRecordedWakesWaitersAndRunsTheCallback) {
  StopSignals stop("stopping");
  std::promise<void> called;
  stop.setOnStop([&called] { called.set_value(); });
  ASSERT_EQ(::raise(SIGTERM), 0);  // the process survives it
  EXPECT_TRUE(stop.waitFor(seconds(60)));
  EXPECT_EQ(stop.signal(), SIGTERM);
  EXPECT_EQ(called.get_future().wait_for(seconds(60)), std::future_status::ready);
  stop.setOnStop({});
}

TEST(StopSignals, SigintCountsToo) {
  StopSignals stop("stopping");
  ASSERT_EQ(::raise(SIGINT), 0);
  EXPECT_TRUE(stop.waitFor(seconds(60)));
  EXPECT_EQ(stop.signal(), SIGINT);
}

TEST(StopSignals, ACallbackSetAfterTheStopRunsAtOnce) {
  StopSignals stop("stopping");
  stop.request(SIGTERM);
  ASSERT_TRUE(stop.waitFor(seconds(60)));
  bool called = false;
  stop.setOnStop([&called] { called = true; });
  EXPECT_TRUE(called);
}

TEST(StopSignals, ARequestFromCodeKeepsTheFirstSignal) {
  StopSignals stop("stopping");
  stop.request(SIGINT);
  stop.request(SIGTERM);  // not a second signal: code asking again is harmless
  EXPECT_EQ(stop.signal(), SIGINT);
}

TEST(StopSignals, OneInstanceAtATime) {
  StopSignals stop("stopping");
  EXPECT_THROW(StopSignals("again"), std::logic_error);
}

TEST(StopSignals, AfterDestructionANewInstanceStartsClean) {
  {
    StopSignals stop("stopping");
    stop.request(SIGTERM);
  }
  StopSignals stop("stopping");
  EXPECT_FALSE(stop.requested());
}

TEST(StopSignalsDeathTest, ASecondSignalWhileStoppingExitsAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopSignals stop("stopping");
        ::raise(SIGTERM);
        ::raise(SIGTERM);
        std::_Exit(0);  // not reached
      },
      ::testing::ExitedWithCode(128 + SIGTERM), "second signal while stopping: exiting at once");
}

// A daemon done with its work only exits: a signal during its teardown
// leaves the exit code alone.
TEST(StopSignalsDeathTest, OnceDoneASignalIsIgnoredWhileTheProcessExits) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        { StopSignals stop("stopping"); }
        StopSignals::ignoreOnceDone();
        { StopSignals stop("stopping"); }
        ::raise(SIGTERM);
        ::raise(SIGINT);
        std::_Exit(7);
      },
      ::testing::ExitedWithCode(7), "");
  EXPECT_EXIT(
      {
        { StopSignals stop("stopping"); }
        ::raise(SIGTERM);  // without it, the previous disposition: the default, which kills
        std::_Exit(7);
      },
      ::testing::KilledBySignal(SIGTERM), "");
}

TEST(StopSignals, SignalNames) {
  EXPECT_EQ(signalName(SIGTERM), "SIGTERM");
  EXPECT_EQ(signalName(SIGINT), "SIGINT");
  EXPECT_EQ(signalName(SIGUSR1), "signal " + std::to_string(SIGUSR1));
}

}  // namespace
}  // namespace tapestry::common
