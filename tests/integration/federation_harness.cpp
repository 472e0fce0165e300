#include "integration/federation_harness.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tools/pki/pki.h"
#include "worker/ml/dataset.h"

namespace tapestry::it {

namespace fs = std::filesystem;

std::string binary(const std::string& name) { return std::string(TAPESTRY_BINARY_DIR) + "/bin/" + name; }

namespace {

worker::ImageDataset syntheticImages(size_t n, uint64_t seed) {
  // Ten classes, each a bright horizontal band at its own height: learnable,
  // deterministic, and tiny.
  std::mt19937_64 rng(seed);
  worker::ImageDataset d;
  d.images.resize(n * 28 * 28);
  d.labels.resize(n);
  for (size_t i = 0; i < n; ++i) {
    uint8_t label = static_cast<uint8_t>(rng() % 10);
    d.labels[i] = label;
    for (size_t p = 0; p < 28 * 28; ++p) {
      size_t row = p / 28;
      bool band = row >= 2u + 2u * label && row < 4u + 2u * label;
      d.images[i * 784 + p] = static_cast<uint8_t>((band ? 200 : 0) + rng() % 50);
    }
  }
  return d;
}

void issue(const std::string& ca, const std::string& out, const std::string& name, tools::CertKind kind) {
  tools::IssueOptions o;
  o.ca_dir = ca;
  o.out_dir = out;
  o.name = name;
  o.kind = kind;
  o.days = 10;
  if (kind == tools::CertKind::kCoordinator) {
    o.dns_names = {"localhost"};
    o.ip_addresses = {"127.0.0.1"};
  }
  tools::issueCertificate(o);
}

}  // namespace

FederationHarness::FederationHarness(FederationOptions options) : options_(std::move(options)) {
  char tmpl[] = "/tmp/tapestry-it-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  fs::create_directories(path("logs"));
  fs::create_directories(path("state"));
  tools::initCa({path("pki/ca"), "Test Consortium CA", 30});
  issue(path("pki/ca"), path("pki"), "coordinator", tools::CertKind::kCoordinator);
  for (size_t k = 0; k < options_.workers; ++k) {
    issue(path("pki/ca"), path("pki"), workerName(k), tools::CertKind::kWorker);
    worker::Shard shard;
    shard.train = syntheticImages(options_.samples_per_worker * (k + 1), 100 + k);
    shard.val = syntheticImages(32, 200 + k);
    worker::writeShard(shard, path("shards/" + workerName(k)));
  }
  tools::initCa({path("foreign-ca"), "Some Other CA", 30});
  issue(path("foreign-ca"), path("foreign"), "intruder", tools::CertKind::kWorker);
  writeConfigs();
}

FederationHarness::~FederationHarness() {
  std::error_code ec;
  if (!::testing::Test::HasFailure()) fs::remove_all(dir_, ec);
}

std::string FederationHarness::workerConfig(const std::string& name, const std::string& ca,
                                            const std::string& shard) const {
  nlohmann::json j = {
      {"name", name},
      {"coordinator", {{"host", "127.0.0.1"}, {"port_file", "state/coordinator.port"}, {"server_name", "localhost"}}},
      {"tls", {{"ca", ca}, {"cert", "pki/" + name + ".crt"}, {"key", "pki/" + name + ".key"}}},
      {"data", {{"shard", shard}}},
      {"state_dir", "state/" + name},
      {"audit_dir", "audit/" + name},
      {"model", nlohmann::json::parse(options_.model)},
      {"train", {{"lr", options_.lr}, {"batch_size", 16}, {"data_seed", 7}}},
      {"transfer", {{"overlap", options_.overlap}, {"encoding", options_.encoding}}},
      {"reconnect", {{"initial_s", 0.1}, {"max_s", 0.5}, {"give_up_s", 60}}}};
  return j.dump(2);
}

void FederationHarness::writeConfigs() {
  nlohmann::json c = {
      {"federation_id", "integration"},
      {"listen", {{"host", "127.0.0.1"}, {"port", 0}, {"port_file", "state/coordinator.port"}}},
      {"tls", {{"ca", "pki/ca/ca.crt"}, {"cert", "pki/coordinator.crt"}, {"key", "pki/coordinator.key"}, {"crl", "pki/ca/crl.pem"}}},
      {"state_dir", "state/coordinator"},
      {"algorithm", {{"name", options_.algorithm}, {"local_steps", options_.local_steps}, {"init_seed", 3}}},
      {"rounds",
       {{"max", options_.max_rounds}, {"min_workers", options_.min_workers}, {"quorum", options_.quorum}, {"deadline_s", 120}}},
      {"server_optimizer", {{"name", options_.server_optimizer}}},
      {"aggregation", {{"device", "cpu"}, {"rule", options_.aggregation_rule}}},
      {"limits", {{"chunk_elements", 2048}, {"idle_timeout_s", 20}, {"heartbeat_s", 2}}}};
  if (options_.algorithm == "fedavg") c["algorithm"]["rho"] = 0;
  if (options_.dual_step > 0) c["algorithm"]["dual_step"] = options_.dual_step;
  std::ofstream(path("coordinator.json")) << c.dump(2);
  for (size_t k = 0; k < options_.workers; ++k)
    std::ofstream(path(workerName(k) + ".json")) << workerConfig(workerName(k), "pki/ca/ca.crt", "shards/" + workerName(k));
  // The intruder trusts the right CA for the server (and its own, which its
  // start-up check asks for) but holds a foreign certificate.
  {
    std::ofstream bundle(path("foreign/trusted.crt"));
    bundle << std::ifstream(path("pki/ca/ca.crt")).rdbuf() << std::ifstream(path("foreign-ca/ca.crt")).rdbuf();
  }
  nlohmann::json intruder =
      nlohmann::json::parse(workerConfig("intruder", "foreign/trusted.crt", "shards/" + workerName(0)));
  intruder["tls"]["cert"] = "foreign/intruder.crt";
  intruder["tls"]["key"] = "foreign/intruder.key";
  std::ofstream(path("intruder.json")) << intruder.dump(2);
}

tools::ChildProcess FederationHarness::startCoordinator() {
  fs::remove(path("state/coordinator.port"));
  auto child = tools::ChildProcess::spawn(
      {binary("tapestry-coordinator"), "--config", path("coordinator.json"), "--workdir", dir_}, path("logs/coordinator.log"));
  if (!waitForFile(path("state/coordinator.port"), std::chrono::seconds(30)))
    throw std::runtime_error("coordinator did not start:\n" + log("coordinator"));
  return child;
}

tools::ChildProcess FederationHarness::startWorker(size_t k) {
  return tools::ChildProcess::spawn(
      {binary("tapestry-worker"), "--config", path(workerName(k) + ".json"), "--workdir", dir_},
      path("logs/" + workerName(k) + ".log"));
}

tools::ChildProcess FederationHarness::startForeignWorker() {
  return tools::ChildProcess::spawn({binary("tapestry-worker"), "--config", path("intruder.json"), "--workdir", dir_},
                                    path("logs/intruder.log"));
}

std::vector<nlohmann::json> FederationHarness::rounds() const {
  std::vector<nlohmann::json> out;
  std::ifstream in(path("state/coordinator/rounds.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

bool FederationHarness::waitForRounds(size_t n, std::chrono::seconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (rounds().size() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

bool FederationHarness::waitForLog(const std::string& name, const std::string& text,
                                   std::chrono::seconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (log(name).find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

bool FederationHarness::waitForFile(const std::string& file, std::chrono::seconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!fs::exists(file)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::string FederationHarness::log(const std::string& name) const {
  std::ifstream in(path("logs/" + name + ".log"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace tapestry::it
