// loadWorkerConfig: a full file parses into typed options with relative paths
// resolved against the config's directory (or the given base directory), and
// every mistake is a ConfigError naming the file and the dotted field.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "common/config.h"
#include "worker/temp_dir.h"
#include "worker/worker_config.h"

namespace tapestry::worker {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

json validConfig() {
  return json::parse(R"({
    "name": "worker-3",
    "coordinator": { "host": "127.0.0.1", "port_file": "state/coordinator.port",
                     "connect_timeout_s": 2.5, "idle_timeout_s": 30 },
    "tls": { "ca": "pki/ca/ca.crt", "cert": "pki/worker-3.crt", "key": "pki/worker-3.key",
             "crl": "/etc/tapestry/crl.pem" },
    "data": { "shard": "shards/worker-3" },
    "state_dir": "state/worker-3",
    "audit_dir": "../audit",
    "model": { "name": "mlp", "hidden": 64 },
    "train": { "lr": 0.05, "momentum": 0.5, "weight_decay": 0.0001, "batch_size": 32,
               "logit_adjustment": 1.0, "distill": 0.5, "distill_temperature": 2,
               "data_seed": 99, "threads": 2 },
    "reconnect": { "initial_s": 0.25, "max_s": 4, "give_up_s": 0 }
  })");
}

class WorkerConfigTest : public ::testing::Test {
 protected:
  std::string write(const json& config) { return dir_.write("conf/worker.json", config.dump(2)); }

  // Loads `config` and returns the ConfigError message ("" if none).
  std::string errorFor(const json& config) {
    std::string path = write(config);
    try {
      (void)loadWorkerConfig(path);
    } catch (const common::ConfigError& e) {
      std::string message = e.what();
      EXPECT_NE(message.find(path), std::string::npos) << "the message does not name the file: " << message;
      return message;
    }
    ADD_FAILURE() << "loadWorkerConfig accepted " << config.dump();
    return "";
  }

  testing::TempDir dir_;
};

TEST_F(WorkerConfigTest, ValidFileParsesWithPathsRelativeToTheConfigDirectory) {
  WorkerConfig c = loadWorkerConfig(write(validConfig()));
  std::string conf = dir_ / "conf";
  EXPECT_EQ(c.name, "worker-3");
  EXPECT_EQ(c.client.host, "127.0.0.1");
  EXPECT_EQ(c.client.server_name, "localhost");
  EXPECT_EQ(c.client.port_file, conf + "/state/coordinator.port");
  EXPECT_EQ(c.client.connect_timeout, 2500ms);
  EXPECT_EQ(c.client.idle_timeout, 30000ms);
  EXPECT_EQ(c.client.tls.ca_file, conf + "/pki/ca/ca.crt");
  EXPECT_EQ(c.client.tls.cert_file, conf + "/pki/worker-3.crt");
  EXPECT_EQ(c.client.tls.key_file, conf + "/pki/worker-3.key");
  EXPECT_EQ(c.client.tls.crl_file, "/etc/tapestry/crl.pem");
  EXPECT_EQ(c.shard_dir, conf + "/shards/worker-3");
  EXPECT_EQ(c.state_dir, conf + "/state/worker-3");
  EXPECT_EQ(c.audit_dir, dir_ / "audit");
  EXPECT_EQ(c.model.name, "mlp");
  EXPECT_EQ(c.model.hidden, 64);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.05);
  EXPECT_DOUBLE_EQ(c.train.momentum, 0.5);
  EXPECT_DOUBLE_EQ(c.train.weight_decay, 0.0001);
  EXPECT_EQ(c.train.batch_size, 32);
  EXPECT_DOUBLE_EQ(c.train.logit_adjustment, 1.0);
  EXPECT_DOUBLE_EQ(c.train.distill, 0.5);
  EXPECT_DOUBLE_EQ(c.train.distill_temperature, 2.0);
  EXPECT_EQ(c.train.data_seed, 99u);
  EXPECT_EQ(c.train.threads, 2);
  EXPECT_EQ(c.backoff_initial, 250ms);
  EXPECT_EQ(c.backoff_max, 4000ms);
  EXPECT_EQ(c.give_up_after, 0ms);
}

TEST_F(WorkerConfigTest, GivenBaseDirectoryAnchorsRelativePaths) {
  WorkerConfig c = loadWorkerConfig(write(validConfig()), "/srv/tapestry");
  EXPECT_EQ(c.client.tls.ca_file, "/srv/tapestry/pki/ca/ca.crt");
  EXPECT_EQ(c.client.tls.crl_file, "/etc/tapestry/crl.pem");
  EXPECT_EQ(c.client.port_file, "/srv/tapestry/state/coordinator.port");
  EXPECT_EQ(c.shard_dir, "/srv/tapestry/shards/worker-3");
  EXPECT_EQ(c.state_dir, "/srv/tapestry/state/worker-3");
  EXPECT_EQ(c.audit_dir, "/srv/audit");
}

TEST_F(WorkerConfigTest, OptionalSectionsFallBackToDefaults) {
  json j = validConfig();
  j["coordinator"] = json{{"host", "coord.example.org"}, {"port", 7301}};
  j["tls"].erase("crl");
  j.erase("audit_dir");
  j.erase("train");
  j.erase("reconnect");
  j["model"] = json{{"name", "cnn"}};
  WorkerConfig c = loadWorkerConfig(write(j));
  WorkerConfig defaults;
  EXPECT_EQ(c.client.port, 7301);
  EXPECT_EQ(c.client.port_file, "");
  EXPECT_EQ(c.client.server_name, "coord.example.org");
  EXPECT_EQ(c.client.tls.crl_file, "");
  EXPECT_EQ(c.audit_dir, "");
  EXPECT_EQ(c.model.name, "cnn");
  EXPECT_DOUBLE_EQ(c.train.lr, defaults.train.lr);
  EXPECT_EQ(c.train.batch_size, defaults.train.batch_size);
  EXPECT_EQ(c.backoff_initial, defaults.backoff_initial);
  EXPECT_EQ(c.give_up_after, defaults.give_up_after);
}

TEST_F(WorkerConfigTest, UnknownKeysAreNamedWithTheirDottedPath) {
  json top = validConfig();
  top["colour"] = "blue";
  EXPECT_NE(errorFor(top).find("\"colour\""), std::string::npos);

  json nested = validConfig();
  nested["train"]["lrr"] = 0.1;
  std::string message = errorFor(nested);
  EXPECT_NE(message.find("\"train.lrr\""), std::string::npos) << message;
  EXPECT_NE(message.find("unknown key"), std::string::npos) << message;
}

TEST_F(WorkerConfigTest, NonPositiveLearningRateNamesTrainLr) {
  for (double lr : {0.0, -0.01}) {
    json j = validConfig();
    j["train"]["lr"] = lr;
    std::string message = errorFor(j);
    EXPECT_NE(message.find("\"train.lr\""), std::string::npos) << message;
    EXPECT_NE(message.find("must be > 0"), std::string::npos) << message;
  }
  json text = validConfig();
  text["train"]["lr"] = "fast";
  EXPECT_NE(errorFor(text).find("\"train.lr\""), std::string::npos);
}

TEST_F(WorkerConfigTest, BadModelNameIsNamed) {
  json j = validConfig();
  j["model"]["name"] = "resnet";
  std::string message = errorFor(j);
  EXPECT_NE(message.find("model.name"), std::string::npos) << message;
  EXPECT_NE(message.find("resnet"), std::string::npos) << message;

  json hidden = validConfig();
  hidden["model"]["hidden"] = 0;
  EXPECT_NE(errorFor(hidden).find("model"), std::string::npos);
}

TEST_F(WorkerConfigTest, MissingTlsCertIsNamed) {
  json j = validConfig();
  j["tls"].erase("cert");
  std::string message = errorFor(j);
  EXPECT_NE(message.find("\"tls.cert\""), std::string::npos) << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;

  json empty = validConfig();
  empty["tls"]["cert"] = "";
  EXPECT_NE(errorFor(empty).find("\"tls.cert\""), std::string::npos);
}

TEST_F(WorkerConfigTest, OutOfRangeValuesAreNamed) {
  struct Case {
    const char* pointer;
    json value;
    const char* field;
  };
  const Case cases[] = {
      {"/train/momentum", 1.0, "\"train.momentum\""},
      {"/train/batch_size", 0, "\"train.batch_size\""},
      {"/train/weight_decay", -1.0, "\"train.weight_decay\""},
      {"/train/logit_adjustment", -1.0, "\"train.logit_adjustment\""},
      {"/train/distill", -1.0, "\"train.distill\""},
      {"/train/distill_temperature", 0.0, "\"train.distill_temperature\""},
      {"/train/threads", -1, "\"train.threads\""},
      {"/reconnect/initial_s", 0, "\"reconnect.initial_s\""},
      {"/coordinator/idle_timeout_s", -5, "\"coordinator.idle_timeout_s\""},
  };
  for (const Case& c : cases) {
    json j = validConfig();
    j[json::json_pointer(c.pointer)] = c.value;
    std::string message = errorFor(j);
    EXPECT_NE(message.find(c.field), std::string::npos) << c.pointer << ": " << message;
  }
  json port = validConfig();
  port["coordinator"] = json{{"host", "127.0.0.1"}, {"port", 70000}};
  EXPECT_NE(errorFor(port).find("\"coordinator.port\""), std::string::npos);
}

TEST_F(WorkerConfigTest, MissingFileIsAConfigErrorNamingThePath) {
  std::string path = dir_ / "nowhere/worker.json";
  try {
    (void)loadWorkerConfig(path);
    FAIL() << "loadWorkerConfig accepted a missing file";
  } catch (const common::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tapestry::worker
