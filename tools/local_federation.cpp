#include "tools/local_federation.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <thread>

#include "coordinator/federation_state.h"
#include "tools/pki/pki.h"
#include "tools/process.h"

namespace tapestry::tools {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void ensureLocalCertificates(const std::string& pki_dir, size_t workers) {
  fs::path pki = pki_dir;
  fs::path ca = pki / "ca";
  // A CA cut short while it was created (its key written, not its
  // certificate or CRL) cannot sign: start the directory afresh.
  const bool whole = fs::exists(ca / "ca.key") && fs::exists(ca / "ca.crt") && fs::exists(ca / "crl.pem");
  if (!whole) {
    fs::remove_all(pki);
    initCa({ca.string(), "Tapestry Demo Consortium CA", 3650});
  } else {
    refreshCrl(ca.string());  // a CRL is signed for 30 days; a later run must not find it expired
  }
  if (!fs::exists(pki / "coordinator.key")) {
    IssueOptions o;
    o.ca_dir = ca.string();
    o.out_dir = pki.string();
    o.name = "coordinator";
    o.kind = CertKind::kCoordinator;
    o.dns_names = {"localhost"};
    o.ip_addresses = {"127.0.0.1"};
    o.renew = true;
    issueCertificate(o);
  }
  for (size_t k = 0; k < workers; ++k) {
    std::string name = "worker-" + std::to_string(k);
    if (fs::exists(pki / (name + ".key"))) continue;
    IssueOptions o;
    o.ca_dir = ca.string();
    o.out_dir = pki.string();
    o.name = name;
    o.kind = CertKind::kWorker;
    o.renew = true;  // a local federation's own CA: a lost key is simply replaced
    issueCertificate(o);
  }
}

RoundLogEntry parseRoundLogEntry(const nlohmann::json& line) {
  RoundLogEntry e;
  try {
    e.round = line.at("round").get<uint64_t>();
    e.contributors = line.at("contributors").get<uint64_t>();
    e.bytes_received = line.at("bytes_received").get<uint64_t>();
    e.seconds = line.at("seconds").get<double>();
    e.metric = line.at("metric").get<double>();
    if (line.contains("metric_samples")) e.metric_samples = line.at("metric_samples").get<uint64_t>();
    if (line.contains("late")) e.late = line.at("late").get<uint64_t>();
  } catch (const nlohmann::json::exception& ex) {
    throw std::runtime_error("round log line " + line.dump() + " is not a round record: " + ex.what());
  }
  return e;
}

std::vector<RoundLogEntry> readRoundLog(const std::string& path) {
  std::vector<RoundLogEntry> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (in.eof()) break;  // the last line may still be being written
    if (line.empty()) continue;
    out.push_back(parseRoundLogEntry(nlohmann::json::parse(line)));
  }
  return out;
}

std::string logTail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "    " + all[i] + "\n";
  return out;
}

namespace {

std::string writeConfig(const fs::path& dir, const std::string& name, const nlohmann::json& contents) {
  fs::path path = dir / name;
  std::ofstream out(path);
  out << contents.dump(2) << "\n";
  if (!out) throw std::runtime_error("cannot write " + path.string() + "; check that the work directory is writable");
  return path.string();
}

}  // namespace

LocalFederation::LocalFederation(LocalFederationOptions options) : options_(std::move(options)) {
  if (options_.work_dir.empty()) throw std::invalid_argument("LocalFederation needs a work directory");
  size_t count = options_.worker_files.empty() ? options_.workers.size() : options_.worker_files.size();
  if (count == 0) throw std::invalid_argument("LocalFederation needs at least one worker config");
  if (!(options_.last_worker_slowdown >= 1 && options_.last_worker_slowdown <= 20))
    throw std::invalid_argument("the last worker's slowdown must lie in [1, 20]");
  fs::path work = fs::absolute(options_.work_dir);
  options_.work_dir = work.string();
  if (options_.pki_dir.empty()) options_.pki_dir = (work / "pki").string();
  if (options_.binary_dir.empty()) options_.binary_dir = executableDir();
  log_dir_ = (work / "logs").string();
  fs::path configs = work / "configs";
  fs::create_directories(work);
  if (options_.coordinator_file.empty() || options_.worker_files.empty()) fs::create_directories(configs);
  coordinator_path_ = options_.coordinator_file.empty()
                          ? writeConfig(configs, "coordinator.json", options_.coordinator)
                          : options_.coordinator_file;
  coordinator_ = coordinator::loadCoordinatorConfig(coordinator_path_, options_.work_dir);
  if (coordinator_.rounds.max_rounds == 0)
    throw std::runtime_error(coordinator_path_ + ": a local federation needs rounds.max > 0 so that it ends");
  if (coordinator_.port_file.empty())
    throw std::runtime_error(coordinator_path_ + ": a local federation needs listen.port_file (with port 0)");
  for (size_t k = 0; k < count; ++k) {
    worker_paths_.push_back(options_.worker_files.empty()
                                ? writeConfig(configs, "worker-" + std::to_string(k) + ".json", options_.workers[k])
                                : options_.worker_files[k]);
    workers_.push_back(worker::loadWorkerConfig(worker_paths_.back(), options_.work_dir));
    if (workers_.back().client.port_file != coordinator_.port_file)
      throw std::runtime_error(worker_paths_.back() + ": coordinator.port_file must be the coordinator's " +
                               "listen.port_file (" + coordinator_.port_file + ")");
  }
}

LocalFederationResult LocalFederation::run(const RoundCallback& on_round) {
  fs::remove_all(coordinator_.state_dir);
  fs::remove(coordinator_.port_file);
  for (const auto& w : workers_) {
    fs::remove_all(w.state_dir);
    if (!w.audit_dir.empty()) fs::remove_all(w.audit_dir);
  }
  fs::remove_all(log_dir_);
  fs::create_directories(log_dir_);
  ensureLocalCertificates(options_.pki_dir, workers_.size());

  auto start = Clock::now();
  auto failed = [&](const std::string& who, const std::string& what, const std::string& log) {
    return std::runtime_error(who + " " + what + ":\n" + logTail(log, 15));
  };
  std::string coordinator_log = log_dir_ + "/coordinator.log";
  ChildProcess coordinator = ChildProcess::spawn(
      {options_.binary_dir + "/tapestry-coordinator", "--config", coordinator_path_, "--workdir", options_.work_dir},
      coordinator_log);
  while (!fs::exists(coordinator_.port_file)) {
    if (auto rc = coordinator.wait(std::chrono::milliseconds(50)))
      throw failed("the coordinator", "exited with code " + std::to_string(*rc), coordinator_log);
    if (Clock::now() - start > options_.timeout)
      throw failed("the coordinator", "did not open its port in time", coordinator_log);
  }
  std::vector<ChildProcess> children;
  std::vector<std::string> logs;
  for (size_t k = 0; k < workers_.size(); ++k) {
    logs.push_back(log_dir_ + "/" + workers_[k].name + ".log");
    children.push_back(ChildProcess::spawn(
        {options_.binary_dir + "/tapestry-worker", "--config", worker_paths_[k], "--workdir", options_.work_dir},
        logs.back()));
  }

  std::string round_log = (fs::path(coordinator_.state_dir) / "rounds.jsonl").string();
  LocalFederationResult result;
  auto report = [&] {
    auto rounds = readRoundLog(round_log);
    for (size_t i = result.rounds.size(); i < rounds.size(); ++i) {
      result.rounds.push_back(rounds[i]);
      if (on_round) on_round(rounds[i]);
    }
  };
  // The straggler runs for 1/slowdown of every 200 ms (slept, not polled,
  // so the share is exact); it is continued whenever this function leaves,
  // so that it can exit or be killed.
  const bool throttle = options_.last_worker_slowdown > 1 && !children.empty();
  const auto period = std::chrono::microseconds(200000);
  const auto running_time =
      std::chrono::microseconds(static_cast<int64_t>(200000 / std::max(1.0, options_.last_worker_slowdown)));
  struct Resume {
    ChildProcess* child;
    ~Resume() {
      if (child && child->running()) child->signal(SIGCONT);
    }
  } resume{throttle ? &children.back() : nullptr};
  for (;;) {
    report();
    std::optional<int> coordinator_rc;
    if (throttle && children.back().running()) {
      children.back().signal(SIGCONT);
      std::this_thread::sleep_for(running_time);
      children.back().signal(SIGSTOP);
      std::this_thread::sleep_for(period - running_time);
      coordinator_rc = coordinator.wait(std::chrono::milliseconds(0));
    } else {
      coordinator_rc = coordinator.wait(std::chrono::milliseconds(200));
    }
    if (auto rc = coordinator_rc) {
      if (*rc != 0) throw failed("the coordinator", "exited with code " + std::to_string(*rc), coordinator_log);
      break;
    }
    for (size_t k = 0; k < children.size(); ++k) {
      if (children[k].running()) continue;
      auto rc = children[k].wait(std::chrono::milliseconds(0));
      if (rc && *rc != 0) throw failed(workers_[k].name, "exited with code " + std::to_string(*rc), logs[k]);
    }
    if (Clock::now() - start > options_.timeout)
      throw std::runtime_error("the federation did not finish within " + std::to_string(options_.timeout.count()) +
                               " s; see the logs in " + log_dir_);
  }
  if (throttle && children.back().running()) children.back().signal(SIGCONT);
  for (size_t k = 0; k < children.size(); ++k) {
    auto rc = children[k].wait(std::chrono::seconds(30));
    if (!rc || *rc != 0)
      throw std::runtime_error(workers_[k].name + " did not finish cleanly; see " + logs[k]);
    result.worker_consensus.push_back(workers_[k].state_dir + "/consensus.ckpt");
  }
  report();  // the coordinator appends its last record just before it exits
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.coordinator_checkpoint = coordinator::checkpointPath(coordinator_.state_dir);
  return result;
}

RoundProgress::RoundProgress(uint64_t total_rounds, std::string label)
    : total_(total_rounds), label_(std::move(label)), tty_(isatty(STDOUT_FILENO)) {}

void RoundProgress::update(const RoundLogEntry& r) {
  constexpr int kWidth = 30;
  int filled = total_ ? static_cast<int>(kWidth * std::min(r.round, total_) / total_) : 0;
  char line[200];
  std::snprintf(line, sizeof line, "  %s[%s%s] round %3llu/%llu  %.1f s/round  val acc of z_%llu %5.1f%%",
                label_.c_str(), std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                static_cast<unsigned long long>(r.round), static_cast<unsigned long long>(total_), r.seconds,
                static_cast<unsigned long long>(r.round - 1), r.metric >= 0 ? 100 * r.metric : 0.0);
  std::string late = r.late > 0 ? "  " + std::to_string(r.late) + " of " + std::to_string(r.contributors) + " late" : "";
  // A shorter line would leave the end of a longer one behind on a terminal.
  if (tty_) late.resize(std::max<size_t>(late.size(), 16), ' ');
  std::printf("%s%s%s%s", tty_ ? "\r" : "", line, late.c_str(), tty_ ? "" : "\n");
  std::fflush(stdout);
  open_ = tty_;
}

void RoundProgress::done() {
  if (open_) std::printf("\n");
  open_ = false;
}

}  // namespace tapestry::tools
