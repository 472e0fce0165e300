// `tapestry fingerprint` prints what a worker with that model says in its
// Hello, and the coordinator config section that pins it.
#include <gtest/gtest.h>

#include <iostream>
#include <sstream>

#include "coordinator/coordinator_config.h"
#include "tools/commands.h"
#include "worker/ml/model.h"
#include "worker/worker_config.h"

namespace tapestry::tools {
namespace {

// Runs the command with std::cout and std::cerr captured.
int run(const std::vector<std::string>& args, std::string* out, std::string* err) {
  std::ostringstream o, e;
  auto* old_out = std::cout.rdbuf(o.rdbuf());
  auto* old_err = std::cerr.rdbuf(e.rdbuf());
  const int code = runFingerprintCommand(args);
  std::cout.rdbuf(old_out);
  std::cerr.rdbuf(old_err);
  *out = o.str();
  *err = e.str();
  return code;
}

TEST(FingerprintCommand, PrintsTheWorkersFingerprintAndTheSectionToPin) {
  const auto model = worker::ModelSpec::fromJson({{"name", "mlp"}, {"hidden", 32}});
  const std::string fingerprint = worker::modelFingerprint(model);
  const std::string parameters = std::to_string(worker::modelParameterCount(model));
  std::string out, err;
  ASSERT_EQ(run({"--model", R"({"name":"mlp","hidden":32})"}, &out, &err), 0) << err;
  EXPECT_NE(out.find(parameters + " parameters, fingerprint " + fingerprint), std::string::npos) << out;
  EXPECT_NE(out.find(R"("model": {"fingerprint": ")" + fingerprint + R"(", "parameters": )" + parameters + "}"),
            std::string::npos)
      << out;
}

TEST(FingerprintCommand, MistakesSayWhatWasWrong) {
  std::string out, err;
  EXPECT_EQ(run({"--model", "{name"}, &out, &err), 2);
  EXPECT_NE(err.find("--model is not JSON"), std::string::npos) << err;
  EXPECT_EQ(run({"--model", R"({"name":"cnx"})"}, &out, &err), 1);
  EXPECT_NE(err.find("unknown model.name \"cnx\""), std::string::npos) << err;
  EXPECT_EQ(run({"--config", "/nonexistent/worker.json"}, &out, &err), 1);
  EXPECT_NE(err.find("/nonexistent/worker.json"), std::string::npos) << err;
  EXPECT_EQ(run({}, &out, &err), 2);
  EXPECT_NE(err.find("usage: tapestry fingerprint"), std::string::npos) << err;
}

TEST(FingerprintCommand, TheShippedCoordinatorPinsTheShippedWorkersModel) {
  const std::string configs = std::string(TAPESTRY_SOURCE_DIR) + "/configs/";
  const auto coordinator = coordinator::loadCoordinatorConfig(configs + "coordinator.json");
  for (int k = 0; k < 4; ++k) {
    const auto model = worker::loadWorkerConfig(configs + "worker-" + std::to_string(k) + ".json").model;
    EXPECT_EQ(coordinator.model_fingerprint, worker::modelFingerprint(model)) << "worker-" << k;
    EXPECT_EQ(coordinator.model_parameters, worker::modelParameterCount(model)) << "worker-" << k;
  }
}

}  // namespace
}  // namespace tapestry::tools
