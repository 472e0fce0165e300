#pragma once
// A whole federation on this machine: the real tapestry-coordinator and
// tapestry-worker binaries, talking mutual TLS over loopback (port 0, the
// bound port handed over in a file), with certificates from a local
// consortium CA. The demo and the benchmarks use it; it owns nothing but the
// processes, the configs it writes and the logs.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/coordinator_config.h"
#include "worker/worker_config.h"

namespace tapestry::tools {

// Creates, where missing, a CA in pki_dir/ca, a coordinator certificate for
// localhost/127.0.0.1 and worker-0 ... worker-<K-1> certificates. Existing
// files are reused, so repeated runs share one CA.
void ensureLocalCertificates(const std::string& pki_dir, size_t workers);

// One line of the coordinator's state_dir/rounds.jsonl. `round` counts from
// 1; the record of round r closes it and creates consensus z_r; `metric` is
// the workers' validation accuracy of z_{r-1} (-1 when unknown).
struct RoundLogEntry {
  uint64_t round = 0;
  uint64_t contributors = 0;
  uint64_t bytes_received = 0;  // payload bytes the coordinator received in the round
  double seconds = 0;
  double metric = -1;
  uint64_t metric_samples = 0;
  uint64_t late = 0;  // contributors whose push was trained on an older consensus
};

// Throws std::runtime_error naming the missing or mistyped field.
RoundLogEntry parseRoundLogEntry(const nlohmann::json& line);
// All complete lines of a rounds.jsonl file (none if it does not exist).
std::vector<RoundLogEntry> readRoundLog(const std::string& path);

struct LocalFederationOptions {
  std::string work_dir;          // configs/, logs/ and relative config paths live here
  // Either the contents of coordinator.json and worker-<k>.json (k = 0 ...
  // K-1), written to work_dir/configs/, or existing files used verbatim.
  nlohmann::json coordinator;
  std::vector<nlohmann::json> workers;
  std::string coordinator_file;
  std::vector<std::string> worker_files;
  std::string pki_dir;           // empty: work_dir/pki
  std::string binary_dir;        // empty: the directory of the running executable
  std::chrono::seconds timeout{900};
  // 1..20: the last worker gets 1/slowdown of the wall clock (stopped and
  // continued in 200 ms periods), a member on slower hardware.
  double last_worker_slowdown = 1;
};

struct LocalFederationResult {
  std::vector<RoundLogEntry> rounds;
  std::string coordinator_checkpoint;         // holds the final consensus z_R
  std::vector<std::string> worker_consensus;  // each worker's state_dir/consensus.ckpt
  double seconds = 0;                         // from the first spawn to the last exit
};

// Runs one federation to its rounds.max. The configs are parsed in the
// constructor, so a bad key fails before any process starts
// (common::ConfigError naming the file and the field). The coordinator
// needs rounds.max > 0 and a port_file; workers must read that port_file.
class LocalFederation {
 public:
  using RoundCallback = std::function<void(const RoundLogEntry&)>;

  explicit LocalFederation(LocalFederationOptions options);

  const coordinator::CoordinatorConfig& coordinatorConfig() const { return coordinator_; }
  const std::vector<worker::WorkerConfig>& workerConfigs() const { return workers_; }
  const std::string& logDir() const { return log_dir_; }
  void setTimeout(std::chrono::seconds timeout) { options_.timeout = timeout; }

  // Removes the previous run's state, audit files and logs, starts the
  // coordinator and the workers, calls on_round for every closed round and
  // waits for all to exit. Throws std::runtime_error with the tail of the
  // failing process's log, or on timeout; the children are killed then.
  LocalFederationResult run(const RoundCallback& on_round = {});

 private:
  LocalFederationOptions options_;
  std::string coordinator_path_;
  std::vector<std::string> worker_paths_;
  std::string log_dir_;
  coordinator::CoordinatorConfig coordinator_;
  std::vector<worker::WorkerConfig> workers_;
};

// The demo's progress display: a bar redrawn in place on a terminal, one
// line per round otherwise.
class RoundProgress {
 public:
  RoundProgress(uint64_t total_rounds, std::string label = "");
  void update(const RoundLogEntry& round);
  void done();

 private:
  uint64_t total_;
  std::string label_;
  bool tty_;
  bool open_ = false;
};

// The last `lines` lines of a log file, indented, for error messages.
std::string logTail(const std::string& path, size_t lines);

}  // namespace tapestry::tools
