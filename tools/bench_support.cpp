#include "tools/bench_support.h"

#include <sys/resource.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/frame.h"
#include "tools/local_federation.h"
#include "tools/pki/pki.h"

namespace tapestry::tools {

namespace fs = std::filesystem;

namespace {

// Splits "10M" into 10 and "M"; throws for anything but a number and a suffix.
std::pair<double, std::string> numberAndSuffix(const std::string& text, const std::string& what) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || !(value > 0)) throw std::invalid_argument(what + ": expected a positive size, got \"" + text + "\"");
  return {value, text.substr(used)};
}

// A certificate may not outlive its CA, to the second: the CA issued just
// before its certificates must be valid for longer than they are.
constexpr int kBenchCertificateDays = 2;

void issue(const std::string& ca, const std::string& out, const std::string& name, CertKind kind) {
  IssueOptions o;
  o.ca_dir = ca;
  o.out_dir = out;
  o.name = name;
  o.kind = kind;
  o.days = kBenchCertificateDays;
  o.renew = true;  // the bench's own CA
  if (kind == CertKind::kCoordinator) {
    o.dns_names = {"localhost"};
    o.ip_addresses = {"127.0.0.1"};
  }
  issueCertificate(o);
}

std::string workerName(size_t k) { return "bench-worker-" + std::to_string(k); }

}  // namespace

uint64_t parseByteSize(const std::string& text, const std::string& what) {
  auto [value, suffix] = numberAndSuffix(text, what);
  std::string s;
  for (char c : suffix) s += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (s.size() > 1 && s.back() == 'B') s.pop_back();
  if (s.size() > 1 && s.back() == 'I') s.pop_back();
  const std::string units = "KMGT";
  double scale = 1;
  if (!s.empty()) {
    auto pos = units.find(s);
    if (s.size() != 1 || pos == std::string::npos)
      throw std::invalid_argument(what + ": unknown unit \"" + suffix + "\" (use K, M, G or T)");
    scale = static_cast<double>(uint64_t{1} << (10 * (pos + 1)));
  }
  return static_cast<uint64_t>(value * scale);
}

uint64_t parseCount(const std::string& text, const std::string& what) {
  auto [value, suffix] = numberAndSuffix(text, what);
  double scale = 1;
  if (suffix == "k" || suffix == "K") scale = 1e3;
  else if (suffix == "M") scale = 1e6;
  else if (suffix == "G") scale = 1e9;
  else if (!suffix.empty()) throw std::invalid_argument(what + ": unknown unit \"" + suffix + "\" (use k, M or G)");
  return static_cast<uint64_t>(value * scale + 0.5);
}

std::string formatBytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  size_t u = 0;
  while (bytes >= 1000 && u + 1 < std::size(units)) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

BenchArgs::BenchArgs(const std::vector<std::string>& args, const std::vector<std::string>& known) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i], value;
    if (name == "--help" || name == "-h") {
      help_ = true;
      continue;
    }
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else if (std::find(known.begin(), known.end(), name) != known.end()) {
      throw std::invalid_argument("option " + name + " needs a value");
    }
    if (std::find(known.begin(), known.end(), name) == known.end())
      throw std::invalid_argument("unknown option " + name);
    values_.emplace_back(name, value);
  }
}

std::optional<std::string> BenchArgs::get(const std::string& name) const {
  std::optional<std::string> found;
  for (const auto& [n, v] : values_)
    if (n == name) found = v;
  return found;
}

std::optional<ProcessMemory> readProcessMemory(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return std::nullopt;
  ProcessMemory m;
  bool any = false;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string key;
    uint64_t kb = 0;
    fields >> key >> kb;
    if (key == "VmRSS:") m.rss_bytes = kb * 1024, any = true;
    else if (key == "VmHWM:") m.peak_bytes = kb * 1024, any = true;
  }
  if (!any) return std::nullopt;
  return m;
}

std::optional<double> readProcessCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  // Fields after the parenthesised command name; utime and stime are 14 and 15.
  auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 14) utime = std::stoull(field);
    if (index == 15) {
      stime = std::stoull(field);
      return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  return std::nullopt;
}

double selfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

uint64_t selfPeakRssBytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

BenchCoordinator::BenchCoordinator(BenchCoordinatorOptions options) : options_(std::move(options)) {
  if (options_.work_dir.empty()) {
    char tmpl[] = "/tmp/tapestry-bench-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("cannot create a temporary directory under /tmp");
    dir_ = tmpl;
    temporary_ = true;
  } else {
    dir_ = fs::absolute(options_.work_dir).string();
    fs::remove_all(fs::path(dir_) / "state");
    fs::remove_all(fs::path(dir_) / "pki");
  }
  if (options_.binary_dir.empty()) options_.binary_dir = executableDir();
  fs::create_directories(dir_ + "/state");
  initCa({dir_ + "/pki/ca", "Tapestry Bench CA", kBenchCertificateDays + 1});
  issue(dir_ + "/pki/ca", dir_ + "/pki", "coordinator", CertKind::kCoordinator);
  for (size_t k = 0; k < options_.workers; ++k) issue(dir_ + "/pki/ca", dir_ + "/pki", workerName(k), CertKind::kWorker);
  const auto idle = options_.idle_timeout.count();
  nlohmann::json c = {
      {"federation_id", "bench"},
      {"listen", {{"host", "127.0.0.1"}, {"port", 0}, {"port_file", "state/coordinator.port"}}},
      {"tls",
       {{"ca", "pki/ca/ca.crt"}, {"cert", "pki/coordinator.crt"}, {"key", "pki/coordinator.key"}, {"crl", "pki/ca/crl.pem"}}},
      {"state_dir", "state/coordinator"},
      {"algorithm",
       {{"name", options_.algorithm}, {"rho", options_.rho}, {"local_steps", options_.local_steps}, {"init_seed", 1}}},
      {"rounds", {{"max", options_.rounds}, {"min_workers", options_.workers}, {"deadline_s", idle}}},
      {"server_optimizer", {{"name", "plain"}}},
      {"aggregation", {{"device", "cpu"}}},
      {"limits",
       {{"chunk_elements", options_.chunk_elements},
        {"idle_timeout_s", idle},
        {"heartbeat_s", std::max<int64_t>(1, idle / 4)},
        {"max_sessions", options_.workers + 16},
        {"max_handshakes_per_address", options_.workers + 16}}}};  // every worker is on 127.0.0.1
  std::ofstream(dir_ + "/coordinator.json") << c.dump(2) << "\n";
}

BenchCoordinator::~BenchCoordinator() {
  child_ = ChildProcess();  // kills and reaps a coordinator still running
  std::error_code ec;
  if (temporary_) fs::remove_all(dir_, ec);
}

void BenchCoordinator::start() {
  const std::string port_file = statePath("coordinator.port");
  fs::remove(port_file);
  child_ = ChildProcess::spawn(
      {options_.binary_dir + "/tapestry-coordinator", "--config", dir_ + "/coordinator.json", "--workdir", dir_},
      dir_ + "/coordinator.log");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!fs::exists(port_file) || fs::file_size(port_file) == 0) {
    if (!child_.running() || std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("the coordinator did not start; its log ends with:\n" + logTail(20));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int BenchCoordinator::stop() {
  if (!child_.running()) return child_.wait(std::chrono::milliseconds(0)).value_or(-1);
  child_.signal(SIGTERM);
  if (auto code = child_.wait(std::chrono::seconds(30))) return *code;
  child_.signal(SIGKILL);
  child_.wait(std::chrono::seconds(5));
  return -1;
}

std::string BenchCoordinator::logTail(size_t lines) const { return tools::logTail(dir_ + "/coordinator.log", lines); }

worker::ClientOptions BenchCoordinator::clientOptions(size_t k) const {
  worker::ClientOptions o;
  o.port_file = statePath("coordinator.port");
  o.server_name = "localhost";
  o.tls.ca_file = dir_ + "/pki/ca/ca.crt";
  o.tls.cert_file = dir_ + "/pki/" + workerName(k) + ".crt";
  o.tls.key_file = dir_ + "/pki/" + workerName(k) + ".key";
  o.connect_timeout = std::chrono::milliseconds(30000);
  o.idle_timeout = options_.idle_timeout;
  return o;
}

common::net::TlsSettings BenchCoordinator::coordinatorTls() const {
  return {dir_ + "/pki/ca/ca.crt", dir_ + "/pki/coordinator.crt", dir_ + "/pki/coordinator.key", ""};
}

proto::HelloFromWorker BenchCoordinator::hello(uint64_t parameters, uint64_t samples) {
  proto::HelloFromWorker h;
  h.set_protocol_version(common::kProtocolVersion);
  h.set_model_fingerprint("bench-" + std::to_string(parameters));
  h.set_model_spec(nlohmann::json({{"name", "bench"}, {"parameters", parameters}}).dump());
  h.set_parameter_count(parameters);
  h.set_sample_count(samples);
  h.set_last_round_seen(-1);
  return h;
}

std::shared_ptr<std::vector<float>> syntheticVector(size_t count, uint64_t seed) {
  auto v = std::make_shared<std::vector<float>>(count);
  std::mt19937_64 rng(seed);
  // Two floats per draw: the top 24 bits of each half, scaled to [-1, 1).
  constexpr float kScale = 1.0f / (1u << 23);
  for (size_t i = 0; i < count; i += 2) {
    uint64_t x = rng();
    (*v)[i] = static_cast<float>(x >> 40) * kScale - 1.0f;
    if (i + 1 < count) (*v)[i + 1] = static_cast<float>((x >> 8) & 0xFFFFFF) * kScale - 1.0f;
  }
  return v;
}

struct PushCompletion::State {
  std::mutex mutex;
  std::condition_variable cv;
  std::optional<Clock::time_point> done;
};

PushCompletion::PushCompletion() : state_(std::make_shared<State>()) {}

std::shared_ptr<const std::vector<float>> PushCompletion::wrap(std::shared_ptr<const std::vector<float>> values) {
  const std::vector<float>* raw = values.get();
  return std::shared_ptr<const std::vector<float>>(raw, [state = state_, values](const std::vector<float>*) {
    std::lock_guard<std::mutex> lock(state->mutex);
    state->done = Clock::now();
    state->cv.notify_all();
  });
}

PushCompletion::Clock::time_point PushCompletion::wait() {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->cv.wait(lock, [this] { return state_->done.has_value(); });
  return *state_->done;
}

}  // namespace tapestry::tools
