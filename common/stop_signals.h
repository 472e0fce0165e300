#pragma once
// SIGINT and SIGTERM as a request to stop at the next safe point, for a
// daemon whose main thread is busy (training, waiting on a queue) rather
// than running an event loop that could take the signal itself, as the
// coordinator's io_context does. The first signal is logged ("signal 15:
// <what>"), recorded, wakes waitFor() and runs the stop callback on a
// watcher thread; a second one, while the daemon is still stopping, ends the
// process at once with exit code 128 + the signal, so an operator is never
// stuck behind a stop that hangs.
//
// The signal handler only stores the signal and writes a byte to a pipe
// (async-signal-safe); everything else runs on the watcher thread. One
// instance at a time per process; the destructor restores the previous
// dispositions.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace tapestry::common {

class StopSignals {
 public:
  // `what` completes the log line of the first signal.
  explicit StopSignals(std::string what);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal that asked to stop (SIGINT, SIGTERM), 0 while none has.
  int signal() const;
  // True once the stop is announced (logged); the callback runs right after.
  bool requested() const { return delivered_.load(); }
  // Blocks until a stop is requested (and logged) or `timeout` has passed;
  // true if one is.
  bool waitFor(std::chrono::milliseconds timeout);
  // `on_stop` runs once, on the watcher thread, after the first signal (at
  // once, on this thread, if it came already). Passing an empty function
  // removes it, waiting for a run in progress to end, so whatever it
  // touches may be destroyed after.
  void setOnStop(std::function<void()> on_stop);
  // As if `signo` had arrived (tests; a stop asked for from code).
  void request(int signo);

  // From now on the instance's destructor leaves SIGINT and SIGTERM ignored
  // instead of restoring their dispositions: for a daemon whose work is done
  // and that only exits, where a late signal must not turn a clean end into
  // exit code 143 during the process's teardown.
  static void ignoreOnceDone();

 private:
  void watch();
  void deliver(int signo);

  std::string what_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::function<void()> on_stop_;
  std::atomic<bool> delivered_{false};
  int read_fd_ = -1;  // the pipe the handler writes to, read by the watcher
  std::thread watcher_;
};

// "SIGTERM", "SIGINT", or "signal N".
std::string signalName(int signo);

}  // namespace tapestry::common
