#include "coordinator/coordinator_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/config.h"

namespace tapestry::coordinator {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class CoordinatorConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "tapestry_coordcfg_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static json minimal() {
    return json::parse(R"({
      "listen": {},
      "tls": {"ca": "pki/ca.crt", "cert": "pki/coordinator.crt", "key": "pki/coordinator.key"},
      "state_dir": "state",
      "algorithm": {"name": "fedprox"},
      "rounds": {}
    })");
  }

  std::string write(const json& j) const {
    std::string path = dir_ + "/coordinator.json";
    std::ofstream(path) << j.dump(2);
    return path;
  }

  // The ConfigError message for `j`, failing the test if it parses.
  std::string errorFor(const json& j) const {
    try {
      loadCoordinatorConfig(write(j));
    } catch (const common::ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "accepted: " << j.dump();
    return "";
  }

  void expectFieldError(const json& j, const std::string& field) const {
    std::string message = errorFor(j);
    EXPECT_NE(message.find("\"" + field + "\""), std::string::npos) << "message does not name " << field << ": "
                                                                    << message;
  }

  std::string dir_;
};

TEST_F(CoordinatorConfigTest, MinimalFileGetsDefaults) {
  CoordinatorConfig c = loadCoordinatorConfig(write(minimal()));
  EXPECT_EQ(c.federation_id, "tapestry");
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 7300);
  EXPECT_EQ(c.port_file, "");
  EXPECT_EQ(c.tls.ca_file, (fs::path(dir_) / "pki/ca.crt").string()) << "relative to the config file";
  EXPECT_EQ(c.tls.key_file, (fs::path(dir_) / "pki/coordinator.key").string());
  EXPECT_EQ(c.tls.crl_file, "");
  EXPECT_EQ(c.state_dir, (fs::path(dir_) / "state").string());
  EXPECT_EQ(c.algorithm, Algorithm::kFedProx);
  EXPECT_DOUBLE_EQ(c.rho, 0.01);
  EXPECT_EQ(c.local_steps, 50u);
  EXPECT_EQ(c.rounds.max_rounds, 0u);
  EXPECT_EQ(c.rounds.min_workers, 1u);
  EXPECT_EQ(c.rounds.quorum, 1u);
  EXPECT_EQ(c.rounds.deadline, std::chrono::minutes(10));
  EXPECT_EQ(c.server_optimizer.kind, ServerOptimizerKind::kPlain);
  EXPECT_EQ(c.device, AggregatorDevice::kAuto);
  EXPECT_EQ(c.chunk_elements, 1u << 20);
  EXPECT_EQ(c.heartbeat_interval, std::chrono::seconds(5));
  EXPECT_EQ(c.idle_timeout, std::chrono::seconds(60));
  EXPECT_EQ(c.final_linger, std::chrono::seconds(120));
}

TEST_F(CoordinatorConfigTest, ExplicitValuesAreRead) {
  json j = minimal();
  j["federation_id"] = "hospitals";
  j["listen"] = {{"host", "0.0.0.0"}, {"port", 0}, {"port_file", "run/port"}};
  j["algorithm"] = {{"name", "fedavg"}, {"local_steps", 7}, {"init_seed", 99}};
  j["rounds"] = {{"max", 20}, {"min_workers", 4}, {"deadline_s", 2.5}};
  j["server_optimizer"] = {{"name", "nesterov"}};
  j["aggregation"] = {{"device", "cpu"}, {"cpu_threads", 3}};
  j["limits"] = {{"idle_timeout_s", 10}, {"heartbeat_s", 5}, {"chunk_elements", 4096}, {"final_linger_s", 0}};
  CoordinatorConfig c = loadCoordinatorConfig(write(j));
  EXPECT_EQ(c.federation_id, "hospitals");
  EXPECT_EQ(c.listen_port, 0);
  EXPECT_EQ(c.port_file, (fs::path(dir_) / "run/port").string());
  EXPECT_EQ(c.algorithm, Algorithm::kFedAvg);
  EXPECT_EQ(c.rho, 0.0) << "fedavg has no proximal term";
  EXPECT_EQ(c.local_steps, 7u);
  EXPECT_EQ(c.init_seed, 99u);
  EXPECT_EQ(c.rounds.max_rounds, 20u);
  EXPECT_EQ(c.rounds.min_workers, 4u);
  EXPECT_EQ(c.rounds.quorum, 4u) << "quorum defaults to min_workers";
  EXPECT_EQ(c.rounds.deadline, std::chrono::milliseconds(2500));
  EXPECT_EQ(c.rounds.push_grace, std::chrono::milliseconds(2500)) << "push_grace_s defaults to deadline_s";
  EXPECT_EQ(c.model_fingerprint, "") << "no model pinned: the first member's Hello sets it";
  EXPECT_EQ(c.server_optimizer.kind, ServerOptimizerKind::kNesterov);
  EXPECT_FLOAT_EQ(c.server_optimizer.lr, 0.7f);
  EXPECT_FLOAT_EQ(c.server_optimizer.momentum, 0.9f);
  EXPECT_EQ(c.device, AggregatorDevice::kCpu);
  EXPECT_EQ(c.cpu_threads, 3u);
  EXPECT_EQ(c.chunk_elements, 4096u);
  EXPECT_EQ(c.final_linger, std::chrono::milliseconds(0)) << "0: exit at once after the last round";
}

TEST_F(CoordinatorConfigTest, APinnedModelIsRead) {
  json j = minimal();
  j["model"] = {{"fingerprint", "0123456789abcdef"}, {"parameters", 61706}};
  CoordinatorConfig c = loadCoordinatorConfig(write(j));
  EXPECT_EQ(c.model_fingerprint, "0123456789abcdef");
  EXPECT_EQ(c.model_parameters, 61706u);
}

TEST_F(CoordinatorConfigTest, ShippedConfigParses) {
  CoordinatorConfig c = loadCoordinatorConfig(TAPESTRY_SOURCE_DIR "/configs/coordinator.json");
  EXPECT_FALSE(c.state_dir.empty());
}

TEST_F(CoordinatorConfigTest, UnknownKeysAreNamed) {
  json j = minimal();
  j["federaton_id"] = "typo";
  expectFieldError(j, "federaton_id");
  j = minimal();
  j["rounds"]["deadline"] = 30;
  expectFieldError(j, "rounds.deadline");
  j = minimal();
  j["tls"]["certificate"] = "x";
  expectFieldError(j, "tls.certificate");
}

TEST_F(CoordinatorConfigTest, BadValuesAreNamed) {
  json j = minimal();
  j["algorithm"]["name"] = "fedsgd";
  expectFieldError(j, "algorithm.name");
  EXPECT_NE(errorFor(j).find("fedsgd"), std::string::npos);

  j = minimal();
  j["rounds"]["quorum"] = 0;
  expectFieldError(j, "rounds.quorum");

  j = minimal();
  j["rounds"]["min_workers"] = 0;
  expectFieldError(j, "rounds.min_workers");

  j = minimal();
  j["limits"] = {{"idle_timeout_s", 10}, {"heartbeat_s", 6}};
  expectFieldError(j, "limits.heartbeat_s");

  for (int port : {-1, 65536, 100000}) {
    j = minimal();
    j["listen"]["port"] = port;
    expectFieldError(j, "listen.port");
  }
  j = minimal();
  j["listen"]["port"] = "7300";
  expectFieldError(j, "listen.port");

  j = minimal();
  j["algorithm"] = {{"name", "fedavg"}, {"rho", 0.1}};
  expectFieldError(j, "algorithm.rho");

  j = minimal();
  j["limits"] = {{"chunk_elements", 100}};
  expectFieldError(j, "limits.chunk_elements");

  j = minimal();
  j["limits"] = {{"max_handshakes_per_address", 0}};
  expectFieldError(j, "limits.max_handshakes_per_address");

  j = minimal();
  j["server_optimizer"] = {{"name", "nesterov"}, {"momentum", 1.0}};
  expectFieldError(j, "server_optimizer.momentum");

  j = minimal();
  j["rounds"]["deadline_s"] = 0;
  expectFieldError(j, "rounds.deadline_s");
  j["rounds"] = {{"push_grace_s", -1}};
  expectFieldError(j, "rounds.push_grace_s");

  j = minimal();
  j["model"] = {{"fingerprint", "ABC"}};
  expectFieldError(j, "model.fingerprint");
  j["model"] = {{"parameters", 0}};
  expectFieldError(j, "model.parameters");

  j = minimal();
  j.erase("state_dir");
  expectFieldError(j, "state_dir");
}

TEST_F(CoordinatorConfigTest, UnreadableFilesAreConfigErrors) {
  EXPECT_THROW(loadCoordinatorConfig(dir_ + "/missing.json"), common::ConfigError);
  std::ofstream(dir_ + "/broken.json") << "{\"listen\": ";
  EXPECT_THROW(loadCoordinatorConfig(dir_ + "/broken.json"), common::ConfigError);
}

TEST_F(CoordinatorConfigTest, AdmmAndServerAdam) {
  json j = minimal();
  j["algorithm"] = {{"name", "admm"}, {"rho", 0.05}};
  j["server_optimizer"] = {{"name", "adam"}};
  CoordinatorConfig c = loadCoordinatorConfig(write(j));
  EXPECT_EQ(c.algorithm, Algorithm::kAdmm);
  EXPECT_STREQ(algorithmName(c.algorithm), "admm");
  EXPECT_DOUBLE_EQ(c.rho, 0.05);
  EXPECT_DOUBLE_EQ(c.dual_step, 0.1);
  EXPECT_EQ(c.server_optimizer.kind, ServerOptimizerKind::kAdam);
  EXPECT_FLOAT_EQ(c.server_optimizer.lr, 0.01f) << "FedAdam's default server learning rate";
  EXPECT_FLOAT_EQ(c.server_optimizer.beta1, 0.9f);
  EXPECT_FLOAT_EQ(c.server_optimizer.beta2, 0.99f);
  EXPECT_FLOAT_EQ(c.server_optimizer.epsilon, 1e-3f);

  j["server_optimizer"] = {{"name", "adam"}, {"lr", 0.03}, {"beta2", 0.999}, {"epsilon", 1e-4}};
  c = loadCoordinatorConfig(write(j));
  EXPECT_FLOAT_EQ(c.server_optimizer.lr, 0.03f);
  EXPECT_FLOAT_EQ(c.server_optimizer.beta2, 0.999f);
  EXPECT_FLOAT_EQ(c.server_optimizer.epsilon, 1e-4f);
}

TEST_F(CoordinatorConfigTest, ScaffoldTakesNoPenaltyAndOnlyThePlainServer) {
  json j = minimal();
  j["algorithm"] = {{"name", "scaffold"}};
  CoordinatorConfig c = loadCoordinatorConfig(write(j));
  EXPECT_EQ(c.algorithm, Algorithm::kScaffold);
  EXPECT_STREQ(algorithmName(c.algorithm), "scaffold");
  EXPECT_DOUBLE_EQ(c.rho, 0.0);
  j["server_optimizer"] = {{"name", "plain"}};
  EXPECT_EQ(loadCoordinatorConfig(write(j)).algorithm, Algorithm::kScaffold);
  for (const char* server : {"nesterov", "adam"}) {
    j["server_optimizer"] = {{"name", server}};
    expectFieldError(j, "server_optimizer.name");
  }
  j.erase("server_optimizer");
  EXPECT_DOUBLE_EQ(loadCoordinatorConfig(write(j)).correction_scale, 1.0);
  j["algorithm"]["correction_scale"] = 0.5;
  EXPECT_DOUBLE_EQ(loadCoordinatorConfig(write(j)).correction_scale, 0.5);
  for (double bad : {0.0, -0.5, 1.5}) {
    j["algorithm"]["correction_scale"] = bad;
    expectFieldError(j, "algorithm.correction_scale");
  }
  j["algorithm"] = {{"name", "fedavg"}, {"correction_scale", 0.5}};
  expectFieldError(j, "algorithm.correction_scale");
  // The floor the scale backs off to after diverged rounds.
  j["algorithm"] = {{"name", "scaffold"}};
  EXPECT_DOUBLE_EQ(loadCoordinatorConfig(write(j)).min_correction_scale, 0.0625);
  j["algorithm"]["correction_scale"] = 0.05;
  EXPECT_DOUBLE_EQ(loadCoordinatorConfig(write(j)).min_correction_scale, 0.05) << "never above the scale itself";
  j["algorithm"] = {{"name", "scaffold"}, {"correction_scale", 0.5}, {"min_correction_scale", 0.5}};
  EXPECT_DOUBLE_EQ(loadCoordinatorConfig(write(j)).min_correction_scale, 0.5);
  for (double bad : {0.0, -0.1, 0.6}) {
    j["algorithm"]["min_correction_scale"] = bad;
    expectFieldError(j, "algorithm.min_correction_scale");
  }
  j["algorithm"] = {{"name", "admm"}, {"rho", 0.1}, {"min_correction_scale", 0.5}};
  expectFieldError(j, "algorithm.min_correction_scale");
  j["algorithm"] = {{"name", "scaffold"}, {"rho", 0.1}};
  expectFieldError(j, "algorithm.rho");
}

TEST_F(CoordinatorConfigTest, RobustAggregationRules) {
  json j = minimal();
  EXPECT_EQ(loadCoordinatorConfig(write(j)).rule, AggregationRule::kMean);
  j["aggregation"] = {{"rule", "median"}};
  EXPECT_EQ(loadCoordinatorConfig(write(j)).rule, AggregationRule::kMedian);
  j["aggregation"] = {{"rule", "trimmed_mean"}};
  CoordinatorConfig c = loadCoordinatorConfig(write(j));
  EXPECT_EQ(c.rule, AggregationRule::kTrimmedMean);
  EXPECT_DOUBLE_EQ(c.trim_fraction, 0.2);
  j["aggregation"] = {{"rule", "trimmed_mean"}, {"trim_fraction", 0.1}};
  EXPECT_DOUBLE_EQ(loadCoordinatorConfig(write(j)).trim_fraction, 0.1);

  j["aggregation"] = {{"rule", "krum"}};
  expectFieldError(j, "aggregation.rule");
  EXPECT_NE(errorFor(j).find("trimmed_mean"), std::string::npos) << "the message lists the rules";
  for (double trim : {-0.1, 0.5, 0.9}) {
    j["aggregation"] = {{"rule", "trimmed_mean"}, {"trim_fraction", trim}};
    expectFieldError(j, "aggregation.trim_fraction");
  }
  j["aggregation"] = {{"rule", "median"}, {"trim_fraction", 0.1}};
  EXPECT_NE(errorFor(j).find("trimmed_mean only"), std::string::npos);
}

TEST_F(CoordinatorConfigTest, AdmmAndAdamMistakesNameTheField) {
  json j = minimal();
  j["algorithm"] = {{"name", "admm"}, {"rho", 0}};
  expectFieldError(j, "algorithm.rho");
  for (double step : {0.0, -0.5, 2.0}) {
    j = minimal();
    j["algorithm"] = {{"name", "admm"}, {"rho", 0.1}, {"dual_step", step}};
    expectFieldError(j, "algorithm.dual_step");
  }
  j = minimal();
  j["algorithm"] = {{"name", "fedprox"}, {"rho", 0.1}, {"dual_step", 0.5}};
  EXPECT_NE(errorFor(j).find("admm only"), std::string::npos) << "a dual step means nothing without a dual";
  j = minimal();
  j["algorithm"] = {{"name", "admm"}, {"rho", 0.1}, {"dual_step", 0.3}};
  EXPECT_DOUBLE_EQ(loadCoordinatorConfig(write(j)).dual_step, 0.3);
  j = minimal();
  j["algorithm"] = {{"name", "fednova"}};
  EXPECT_NE(errorFor(j).find("admm, scaffold"), std::string::npos) << "the message lists the algorithms";
  j = minimal();
  j["server_optimizer"] = {{"name", "adam"}, {"beta1", 1.0}};
  expectFieldError(j, "server_optimizer.beta1");
  j = minimal();
  j["server_optimizer"] = {{"name", "adam"}, {"epsilon", 0}};
  expectFieldError(j, "server_optimizer.epsilon");
  j = minimal();
  j["server_optimizer"] = {{"name", "adam"}, {"momentum", 0.9}};
  expectFieldError(j, "server_optimizer.momentum");  // adam has beta1, not momentum
  j = minimal();
  j["server_optimizer"] = {{"name", "adagrad"}};
  expectFieldError(j, "server_optimizer.name");
}

TEST_F(CoordinatorConfigTest, LatePushesAreDroppedUnlessMaxStalenessAdmitsThem) {
  CoordinatorConfig c = loadCoordinatorConfig(write(minimal()));
  EXPECT_EQ(c.rounds.max_staleness, 0u);
  EXPECT_DOUBLE_EQ(c.staleness_exponent, 0.5);

  json j = minimal();
  j["rounds"] = {{"max_staleness", 3}, {"staleness_exponent", 1}};
  c = loadCoordinatorConfig(write(j));
  EXPECT_EQ(c.rounds.max_staleness, 3u);
  EXPECT_DOUBLE_EQ(c.staleness_exponent, 1.0);

  j["rounds"] = {{"staleness_exponent", 1}};
  expectFieldError(j, "rounds.staleness_exponent");
  EXPECT_NE(errorFor(j).find("max_staleness"), std::string::npos) << "says what would make it count";
  j["rounds"] = {{"max_staleness", 1}, {"staleness_exponent", -0.5}};
  expectFieldError(j, "rounds.staleness_exponent");
  j["rounds"] = {{"max_staleness", 1001}};
  expectFieldError(j, "rounds.max_staleness");
  j["rounds"] = {{"max_staleness", -1}};
  expectFieldError(j, "rounds.max_staleness");

  j = minimal();
  j["algorithm"] = {{"name", "scaffold"}};
  j["rounds"] = {{"max_staleness", 1}};
  expectFieldError(j, "rounds.max_staleness");
  EXPECT_NE(errorFor(j).find("scaffold"), std::string::npos);
}

}  // namespace
}  // namespace tapestry::coordinator
