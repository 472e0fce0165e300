#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "tools/commands.h"
#include "tools/consensus_file.h"
#include "worker/ml/dataset.h"
#include "worker/ml/trainer.h"

namespace tapestry::tools {

namespace {

const char* kUsage =
    "usage: tapestry eval --checkpoint FILE [--model-json JSON] [--data DIR] [--limit N]\n"
    "  --checkpoint FILE  coordinator.ckpt (from its state_dir) or a worker's consensus.ckpt\n"
    "  --model-json JSON  the worker's model spec, to read a consensus it received\n"
    "                     (audit_dir/received-round-<r>.ckpt), which carries none\n"
    "  --data DIR         Fashion-MNIST directory (default /usr/share/datasets/fashion-mnist)\n"
    "  --limit N          evaluate on the first N test images only\n";

}  // namespace

int runEvalCommand(const std::vector<std::string>& args) {
  std::string checkpoint, model_json, data = "/usr/share/datasets/fashion-mnist";
  size_t limit = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (i + 1 >= args.size()) {
      std::cerr << "missing value for " << args[i] << "\n" << kUsage;
      return 2;
    }
    if (args[i] == "--checkpoint") checkpoint = args[++i];
    else if (args[i] == "--data") data = args[++i];
    else if (args[i] == "--model-json") model_json = args[++i];
    else if (args[i] == "--limit") {
      try {
        limit = std::stoul(args[++i]);
      } catch (const std::exception&) {
        std::cerr << "--limit takes a positive whole number\n" << kUsage;
        return 2;
      }
    } else {
      std::cerr << "unknown option " << args[i] << "\n" << kUsage;
      return 2;
    }
  }
  if (checkpoint.empty()) {
    std::cerr << "--checkpoint is required\n" << kUsage;
    return 2;
  }
  try {
    ConsensusFile consensus;
    if (model_json.empty()) {
      consensus = readConsensusFile(checkpoint);
    } else {
      nlohmann::json spec;
      try {
        spec = nlohmann::json::parse(model_json);
      } catch (const std::exception& e) {
        std::cerr << "--model-json is not JSON (" << e.what() << "); give it as in the worker's config, e.g. "
                  << "'{\"name\":\"cnn\"}'\n";
        return 2;
      }
      consensus = readReceivedConsensus(checkpoint, worker::ModelSpec::fromJson(spec));
    }
    worker::ImageDataset test = worker::loadFashionMnist(data, false);
    if (limit > 0 && limit < test.size()) {
      std::vector<size_t> first(limit);
      for (size_t i = 0; i < limit; ++i) first[i] = i;
      test = worker::subset(test, first);
    }
    double accuracy = worker::evaluateFlat(consensus.model, consensus.parameters, test);
    std::printf("test accuracy %.2f%% on %zu Fashion-MNIST test images (consensus z_%llu, model %s)\n",
                100.0 * accuracy, test.size(), static_cast<unsigned long long>(consensus.round),
                consensus.model.toJson().dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tapestry eval: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::tools
