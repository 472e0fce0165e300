#include "common/stop_signals.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "common/log.h"

namespace tapestry::common {

namespace {

// Shared with the signal handler, hence globals of lock-free types.
std::atomic<int> g_signal{0};
std::atomic<int> g_pipe_write{-1};
std::atomic<bool> g_installed{false};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");

constexpr int kSignals[] = {SIGINT, SIGTERM};
struct sigaction g_previous[2];
std::atomic<bool> g_ignore_once_done{false};

void wake(int signo) {
  const int saved = errno;
  const char byte = static_cast<char>(signo);
  // The pipe is non-blocking: a full pipe already holds a wake-up.
  const ssize_t ignored = ::write(g_pipe_write.load(), &byte, 1);
  (void)ignored;
  errno = saved;
}

extern "C" void onStopSignal(int signo) {
  int none = 0;
  if (!g_signal.compare_exchange_strong(none, signo)) {
    static const char kMessage[] = "second signal while stopping: exiting at once\n";
    const ssize_t ignored = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    (void)ignored;
    ::_exit(128 + signo);
  }
  wake(signo);
}

}  // namespace

std::string signalName(int signo) {
  switch (signo) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "signal " + std::to_string(signo);
  }
}

StopSignals::StopSignals(std::string what) : what_(std::move(what)) {
  if (g_installed.exchange(true)) throw std::logic_error("StopSignals: only one instance at a time");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    g_installed = false;
    throw std::runtime_error(std::string("cannot create the stop signals' pipe: ") + std::strerror(errno));
  }
  ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  g_signal = 0;
  g_pipe_write = fds[1];
  read_fd_ = fds[0];
  watcher_ = std::thread([this] { watch(); });
  struct sigaction action {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (size_t i = 0; i < 2; ++i) ::sigaction(kSignals[i], &action, &g_previous[i]);
}

StopSignals::~StopSignals() {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  const bool done = g_ignore_once_done.exchange(false);
  for (size_t i = 0; i < 2; ++i) ::sigaction(kSignals[i], done ? &ignore : &g_previous[i], nullptr);
  wake(0);  // 0: the watcher's cue to end
  watcher_.join();
  ::close(g_pipe_write.exchange(-1));
  g_signal = 0;
  g_installed = false;
}

int StopSignals::signal() const { return g_signal.load(); }

void StopSignals::ignoreOnceDone() { g_ignore_once_done = true; }

bool StopSignals::waitFor(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return cv_.wait_for(lock, timeout, [this] { return delivered_.load(); });
}

void StopSignals::setOnStop(std::function<void()> on_stop) {
  std::lock_guard<std::mutex> lock(mutex_);
  on_stop_ = std::move(on_stop);
  if (delivered_ && on_stop_) std::exchange(on_stop_, nullptr)();
}

void StopSignals::request(int signo) {
  int none = 0;
  if (g_signal.compare_exchange_strong(none, signo)) wake(signo);
}

void StopSignals::watch() {
  for (;;) {
    char byte = 0;
    const ssize_t n = ::read(read_fd_, &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || byte == 0) break;
    deliver(static_cast<unsigned char>(byte));
  }
  ::close(read_fd_);
}

void StopSignals::deliver(int signo) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (delivered_) return;
  LOG_INFO("signal " << signo << ": " << what_);
  delivered_ = true;  // before the callback, which may wake code that asks
  cv_.notify_all();
  if (on_stop_) std::exchange(on_stop_, nullptr)();
}

}  // namespace tapestry::common
