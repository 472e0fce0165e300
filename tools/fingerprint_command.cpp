// `tapestry fingerprint`: the fingerprint and parameter count of a model, as
// a worker says them in its Hello, for the operator to pin in the
// coordinator's config (its `model` section) so that the first member to
// connect cannot choose the federation's model.
#include <nlohmann/json.hpp>

#include <iostream>

#include "tools/commands.h"
#include "worker/ml/model.h"
#include "worker/worker_config.h"

namespace tapestry::tools {

namespace {

const char* kUsage =
    "usage: tapestry fingerprint (--model JSON | --config WORKER_CONFIG)\n"
    "  --model JSON            a model as in the worker config's model section, e.g. '{\"name\":\"cnn\"}'\n"
    "  --config WORKER_CONFIG  the model of a worker's config file\n"
    "Prints the model's fingerprint and parameter count and the coordinator config section that\n"
    "pins them.\n";

}  // namespace

int runFingerprintCommand(const std::vector<std::string>& args) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  if (args.size() != 2 || (args[0] != "--model" && args[0] != "--config")) {
    std::cerr << kUsage;
    return 2;
  }
  try {
    worker::ModelSpec model;
    if (args[0] == "--config") {
      model = worker::loadWorkerConfig(args[1]).model;
    } else {
      nlohmann::json spec;
      try {
        spec = nlohmann::json::parse(args[1]);
      } catch (const std::exception& e) {
        std::cerr << "tapestry fingerprint: --model is not JSON (" << e.what() << "); give it as in the worker's "
                  << "config, e.g. '{\"name\":\"cnn\"}'\n";
        return 2;
      }
      model = worker::ModelSpec::fromJson(spec);
    }
    const std::string fingerprint = worker::modelFingerprint(model);
    const size_t parameters = worker::modelParameterCount(model);
    std::cout << "model " << model.toJson().dump() << ": " << parameters << " parameters, fingerprint " << fingerprint
              << "\nin the coordinator's config:\n  \"model\": {\"fingerprint\": \"" << fingerprint
              << "\", \"parameters\": " << parameters << "}\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tapestry fingerprint: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::tools
