// `tapestry finetune`: trains a consensus checkpoint further on the member's
// shard, trains the same model on that shard alone as a yardstick, and
// compares consensus, fine-tuned and local-only on the shard's val split.
#include "tools/finetune_command.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <stdexcept>

#include "common/checkpoint.h"
#include "common/cli_args.h"
#include "tools/consensus_file.h"
#include "worker/ml/dataset.h"
#include "worker/ml/trainer.h"

namespace tapestry::tools {
namespace {

constexpr int64_t kDefaultRoundSteps = 50;  // the coordinator's default local_steps

const char* kUsage =
    "usage: tapestry finetune --consensus FILE --shard DIR --steps N [--lr X] [--optimizer sgd|adamw]\n"
    "                         [--out FILE] [--seed S] [--batch B] [--round-steps K]\n"
    "  --consensus FILE  coordinator.ckpt or a worker's consensus.ckpt (gives the model and z)\n"
    "  --shard DIR       this member's shard (image IDX files or train.txt/val.txt)\n"
    "  --steps N         fine-tuning steps on the shard's train split, without the consensus penalty\n"
    "  --lr X            learning rate (default 0.01 for sgd, 0.001 for adamw)\n"
    "  --optimizer NAME  sgd (momentum 0.9) or adamw (default sgd)\n"
    "  --out FILE        write the fine-tuned parameters here, in the consensus checkpoint format\n"
    "  --seed S          init seed of the local-only model and seed of the data order (default 1,\n"
    "                    the coordinator's default init_seed)\n"
    "  --batch B         mini-batch size (default 64)\n"
    "  --round-steps K   local steps per federation round (default 50). The local-only model trains\n"
    "                    from scratch for R*K + N steps, R being the checkpoint's round: the steps this\n"
    "                    member would have taken had it trained alone for the whole federation and the\n"
    "                    fine-tuning.\n"
    "Prints the shard's val metric (accuracy, or bits per byte for text) of the consensus, the\n"
    "fine-tuned model and the local-only model.\n";

using common::UsageError;

uint64_t parseCount(const std::string& flag, const std::string& text) { return common::parseCountArg(flag, text); }

std::map<std::string, std::string> parseFlags(const std::vector<std::string>& args) {
  static const char* const kKnown[] = {"consensus", "shard", "steps", "lr",   "optimizer",
                                       "out",       "seed",  "batch", "round-steps"};
  std::map<std::string, std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) != 0) throw UsageError("unexpected argument '" + args[i] + "'");
    const std::string name = args[i].substr(2);
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown)) {
      throw UsageError("unknown option --" + name);
    }
    if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value");
    if (!flags.emplace(name, args[++i]).second) throw UsageError("--" + name + " given twice");
  }
  for (const char* required : {"consensus", "shard", "steps"}) {
    if (flags.count(required) == 0) throw UsageError(std::string("--") + required + " is required");
  }
  return flags;
}

void writeParameters(const std::string& path, const ConsensusFile& from, const std::vector<float>& params,
                     int64_t steps) {
  common::CheckpointWriter writer;
  writer.setMetadata(nlohmann::json({{"kind", "tapestry-finetuned"},
                                     {"round", from.round},
                                     {"finetune_steps", steps},
                                     {"model_spec", from.model.toJson().dump()}})
                         .dump());
  writer.addSection("consensus", params.data(), params.size() * sizeof(float));
  writer.commit(path);
}

std::string formatMetric(const worker::ModelSpec& spec, double value) {
  char text[64];
  if (worker::higherIsBetter(spec)) {
    std::snprintf(text, sizeof text, "%.2f%%", 100.0 * value);
  } else {
    std::snprintf(text, sizeof text, "%.4f", value);
  }
  return text;
}

}  // namespace

int runFinetuneCommand(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
  }
  std::map<std::string, std::string> flags;
  worker::TrainSettings settings;
  int64_t steps = 0, round_steps = kDefaultRoundSteps;
  uint64_t seed = 1;
  try {
    flags = parseFlags(args);
    steps = static_cast<int64_t>(parseCount("--steps", flags["steps"]));
    if (flags.count("optimizer")) {
      try {
        settings.optimizer = worker::parseInnerOptimizer(flags["optimizer"]);
      } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
      }
    }
    settings.lr = settings.optimizer == worker::InnerOptimizer::kAdamW ? 0.001 : 0.01;
    if (flags.count("lr")) {
      char* end = nullptr;
      settings.lr = std::strtod(flags["lr"].c_str(), &end);
      if (flags["lr"].empty() || *end != '\0' || !(settings.lr > 0)) {
        throw UsageError("--lr expects a positive number, got '" + flags["lr"] + "'");
      }
    }
    if (flags.count("seed")) seed = parseCount("--seed", flags["seed"]);
    if (flags.count("batch")) {
      settings.batch_size = static_cast<int64_t>(parseCount("--batch", flags["batch"]));
      if (settings.batch_size < 1) throw UsageError("--batch must be at least 1");
    }
    if (flags.count("round-steps")) round_steps = static_cast<int64_t>(parseCount("--round-steps", flags["round-steps"]));
  } catch (const UsageError& e) {
    std::cerr << "tapestry finetune: " << e.what() << "\n" << kUsage;
    return 2;
  }
  settings.data_seed = seed;

  try {
    const ConsensusFile consensus = readConsensusFile(flags["consensus"]);
    const worker::Shard shard = worker::loadShard(flags["shard"]);
    if (shard.val.size() == 0) {
      throw std::runtime_error("shard '" + flags["shard"] + "' has an empty val split; re-partition it with "
                               "--val-fraction above 0 so there is something to compare on");
    }
    const worker::ModelSpec& spec = consensus.model;
    const int64_t local_steps = static_cast<int64_t>(consensus.round) * round_steps + steps;

    worker::Trainer tuned(spec, seed, shard.train, settings);
    tuned.setParameters(consensus.parameters.data());
    const double before = tuned.evaluate(shard.val);
    tuned.train(steps, nullptr, 0.0);
    std::vector<float> tuned_params(tuned.parameterCount());
    tuned.parameters(tuned_params.data());
    const double after = tuned.evaluate(shard.val);

    worker::Trainer local(spec, seed, shard.train, settings);
    local.train(local_steps, nullptr, 0.0);
    const double alone = local.evaluate(shard.val);

    if (flags.count("out")) writeParameters(flags["out"], consensus, tuned_params, steps);
    const char* metric = worker::metricName(spec);
    std::printf("model %s, %s on the val split of %s (%zu %s), %s:\n", spec.toJson().dump().c_str(), metric,
                flags["shard"].c_str(), shard.val.size(), shard.val.isText() ? "bytes" : "samples",
                worker::higherIsBetter(spec) ? "higher is better" : "lower is better");
    const std::string rows[3][2] = {
        {"consensus z_" + std::to_string(consensus.round), formatMetric(spec, before)},
        {"fine-tuned (" + std::to_string(steps) + " " + worker::innerOptimizerName(settings.optimizer) + " steps)",
         formatMetric(spec, after)},
        {"local only (" + std::to_string(local_steps) + " steps)", formatMetric(spec, alone)}};
    for (const auto& row : rows) std::printf("  %-32s %s\n", row[0].c_str(), row[1].c_str());
    if (flags.count("out")) std::printf("fine-tuned parameters written to %s\n", flags["out"].c_str());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tapestry finetune: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::tools
