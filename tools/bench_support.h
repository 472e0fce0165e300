#pragma once
// Shared pieces of the `tapestry bench wire|scale|overhead` commands: size
// and option parsing, process CPU and memory readings from /proc, and a
// BenchCoordinator that runs the real tapestry-coordinator against
// in-process "lightweight workers" (SyncClients that push synthetic vectors).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tools/process.h"
#include "worker/sync_client.h"

namespace tapestry::tools {

// "8M" -> 8 * 2^20, "1G" -> 2^30 (K, M, G, T binary; a trailing "B" or "iB"
// is accepted). Throws std::invalid_argument naming `what`.
uint64_t parseByteSize(const std::string& text, const std::string& what);
// "10M" -> 10^7, "100k" -> 10^5 (k, M, G decimal). Throws std::invalid_argument.
uint64_t parseCount(const std::string& text, const std::string& what);

// "1.07 GB" style, decimal units.
std::string formatBytes(double bytes);

// Command-line words as `--name value` pairs. Unknown names or a missing
// value throw std::invalid_argument; `--help` sets help().
class BenchArgs {
 public:
  BenchArgs(const std::vector<std::string>& args, const std::vector<std::string>& known);
  bool help() const { return help_; }
  std::optional<std::string> get(const std::string& name) const;

 private:
  std::vector<std::pair<std::string, std::string>> values_;
  bool help_ = false;
};

struct ProcessMemory {
  uint64_t rss_bytes = 0;   // VmRSS
  uint64_t peak_bytes = 0;  // VmHWM
};
// nullopt when /proc/<pid>/status cannot be read (the process has exited).
std::optional<ProcessMemory> readProcessMemory(int pid);
// User + system CPU seconds of a running process (/proc/<pid>/stat).
std::optional<double> readProcessCpuSeconds(int pid);
// User + system CPU seconds of this process so far (getrusage).
double selfCpuSeconds();
// Peak RSS of this process so far, in bytes.
uint64_t selfPeakRssBytes();

// The median of `values` (copied); 0 for none.
double median(std::vector<double> values);

struct BenchCoordinatorOptions {
  std::string work_dir;  // empty: a fresh directory under /tmp, removed afterwards
  std::string binary_dir;  // empty: the directory of the running executable
  size_t workers = 1;
  uint64_t rounds = 1;
  uint32_t chunk_elements = 1u << 20;
  std::chrono::seconds idle_timeout{120};
  std::string algorithm = "fedavg";  // and rho, local_steps: what the Welcome tells workers
  double rho = 0;
  uint32_t local_steps = 1;
};

// A consortium CA, a coordinator certificate and one worker certificate per
// lightweight worker (all issued in the constructor), a coordinator config
// (port 0 with a port file, mutual TLS, plain server optimizer, CPU
// aggregation) and the coordinator process itself. The destructor kills a
// coordinator still running and removes a temporary work directory.
class BenchCoordinator {
 public:
  explicit BenchCoordinator(BenchCoordinatorOptions options);
  ~BenchCoordinator();
  BenchCoordinator(const BenchCoordinator&) = delete;
  BenchCoordinator& operator=(const BenchCoordinator&) = delete;

  // Spawns tapestry-coordinator and waits (up to 30 s) for its port file.
  // Throws std::runtime_error with the tail of its log on failure.
  void start();
  // SIGTERM, then waits; returns the exit code (or -1 after a SIGKILL).
  int stop();
  int pid() const { return child_.pid(); }
  bool running() { return child_.running(); }

  const std::string& workDir() const { return dir_; }
  std::string statePath(const std::string& relative) const { return dir_ + "/state/" + relative; }
  std::string logTail(size_t lines) const;

  // Options for lightweight worker k's SyncClient (its own certificate).
  worker::ClientOptions clientOptions(size_t k) const;
  // The coordinator's own certificate, for peers measured against it.
  common::net::TlsSettings coordinatorTls() const;
  // A Hello for a made-up model of `parameters` floats.
  static proto::HelloFromWorker hello(uint64_t parameters, uint64_t samples);

 private:
  BenchCoordinatorOptions options_;
  std::string dir_;
  bool temporary_ = false;
  ChildProcess child_;
};

// A vector of `count` floats uniform in [-1, 1) drawn from `seed`.
std::shared_ptr<std::vector<float>> syntheticVector(size_t count, uint64_t seed);

// Completion time of one push as seen by the sender: wrap() the push's
// values; the wrapper is released, and the time taken, when the client has
// written the last chunk and let go of the payload.
class PushCompletion {
 public:
  using Clock = std::chrono::steady_clock;
  PushCompletion();
  std::shared_ptr<const std::vector<float>> wrap(std::shared_ptr<const std::vector<float>> values);
  // Blocks until the wrapper was released everywhere (drop your copy first).
  Clock::time_point wait();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace tapestry::tools
