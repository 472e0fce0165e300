#pragma once
// Child processes for the demo and the integration tests: spawn a program
// with its output in a log file, signal it, and wait for it with a bound.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace tapestry::tools {

class ChildProcess {
 public:
  ChildProcess() = default;
  // Starts argv[0] (a path) with stdout and stderr appended to log_path.
  // Throws std::runtime_error if it cannot be started.
  static ChildProcess spawn(const std::vector<std::string>& argv, const std::string& log_path);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();  // kills (SIGKILL) and reaps a child still running

  int pid() const { return pid_; }
  bool running();
  void signal(int signo);
  // The exit code (128+signal for a signal), or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  int pid_ = -1;
  std::optional<int> status_;
};

// Directory of the running executable (siblings: tapestry-coordinator, ...).
std::string executableDir();

}  // namespace tapestry::tools
