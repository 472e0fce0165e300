// The real `tapestry finetune` on a consensus checkpoint written here (a
// seeded model's parameters at round 2, in the format --out writes): exit
// codes, the printed comparison and the --out file, which must read back as a
// consensus and serve as the next run's --consensus.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <nlohmann/json.hpp>

#include "common/checkpoint.h"
#include "integration/federation_harness.h"
#include "tools/consensus_file.h"
#include "worker/ml/dataset.h"
#include "worker/ml/trainer.h"

namespace tapestry::it {
namespace {

namespace fs = std::filesystem;

std::string readAll(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Learnable and deterministic: the same few sentences in a counted order.
std::string syntheticText(size_t sentences, size_t offset) {
  static const char* const kSentences[] = {"the cat sat on the mat.\n", "a federation shares no data.\n",
                                           "every member keeps its text.\n", "bits per byte go down.\n"};
  std::string out;
  for (size_t i = 0; i < sentences; ++i) out += kSentences[(i * 7 + offset) % 4];
  return out;
}

class Finetune : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tapestry-finetune-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    model_ = worker::ModelSpec::fromJson({{"name", "transformer"}, {"layers", 1}, {"d_model", 16}, {"heads", 2},
                                          {"context", 16}});
    worker::Shard shard{worker::Dataset::fromText(syntheticText(200, 0)), worker::Dataset::fromText(syntheticText(24, 1))};
    worker::writeShard(shard, (dir_ / "shard").string());
    // The consensus of round 2: a seeded initial model, as readConsensusFile expects it.
    worker::TrainSettings settings;
    worker::Trainer trainer(model_, 7, shard.train, settings);
    std::vector<float> z(trainer.parameterCount());
    trainer.parameters(z.data());
    common::CheckpointWriter writer;
    writer.setMetadata(
        nlohmann::json({{"kind", "tapestry-finetuned"}, {"round", 2}, {"model_spec", model_.toJson().dump()}}).dump());
    writer.addSection("consensus", z.data(), z.size() * sizeof(float));
    writer.commit(consensus().string());
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  fs::path consensus() const { return dir_ / "consensus.ckpt"; }

  // Runs `tapestry finetune args...`; returns the exit code and sets output_.
  int run(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {binary("tapestry"), "finetune"};
    argv.insert(argv.end(), args.begin(), args.end());
    fs::path log = dir_ / ("run-" + std::to_string(runs_++) + ".log");
    auto child = tools::ChildProcess::spawn(argv, log.string());
    auto rc = child.wait(std::chrono::seconds(120));
    output_ = readAll(log);
    return rc ? *rc : -1;
  }

  // The value printed on the row starting with `label`.
  double metric(const std::string& label) const {
    std::smatch m;
    std::regex row("\\n  " + std::regex_replace(label, std::regex(R"([()])"), R"(\$&)") + " +([0-9.]+)");
    if (!std::regex_search(output_, m, row)) return std::nan("");
    return std::stod(m[1]);
  }

  fs::path dir_;
  worker::ModelSpec model_;
  std::string output_;
  int runs_ = 0;
};

TEST_F(Finetune, ComparesConsensusFineTunedAndLocalOnlyAndWritesTheModel) {
  fs::path out = dir_ / "tuned.ckpt";
  ASSERT_EQ(run({"--consensus", consensus().string(), "--shard", (dir_ / "shard").string(), "--steps", "30",
                 "--optimizer", "adamw", "--lr", "0.003", "--batch", "8", "--round-steps", "5", "--out",
                 out.string()}),
            0)
      << output_;
  EXPECT_NE(output_.find("bits_per_byte on the val split of " + (dir_ / "shard").string()), std::string::npos)
      << output_;
  EXPECT_NE(output_.find("lower is better"), std::string::npos) << output_;
  double before = metric("consensus z_2"), after = metric("fine-tuned (30 adamw steps)");
  double alone = metric("local only (40 steps)");  // 2 rounds x 5 steps + 30
  for (double v : {before, after, alone}) EXPECT_TRUE(std::isfinite(v) && v > 0) << output_;
  EXPECT_LT(after, before) << "30 AdamW steps on repetitive text must lower the untrained model's bpb\n" << output_;
  EXPECT_NE(output_.find("fine-tuned parameters written to " + out.string()), std::string::npos) << output_;

  tools::ConsensusFile tuned = tools::readConsensusFile(out.string());
  EXPECT_EQ(tuned.round, 2u);
  EXPECT_EQ(tuned.model.toJson(), model_.toJson());
  EXPECT_EQ(tuned.parameters.size(), worker::modelParameterCount(model_));
  tools::ConsensusFile z = tools::readConsensusFile(consensus().string());
  EXPECT_NE(tuned.parameters, z.parameters);
  // What the tool printed is the metric of what it wrote.
  worker::Shard shard = worker::loadShard((dir_ / "shard").string());
  EXPECT_NEAR(worker::evaluateFlat(tuned.model, tuned.parameters, shard.val), after, 1e-4);

  // The fine-tuned file is itself a valid --consensus, evaluated as it was.
  ASSERT_EQ(run({"--consensus", out.string(), "--shard", (dir_ / "shard").string(), "--steps", "0", "--round-steps",
                 "1", "--batch", "8"}),
            0)
      << output_;
  EXPECT_NEAR(metric("consensus z_2"), after, 1e-4) << output_;
  EXPECT_NE(output_.find("fine-tuned (0 sgd steps)"), std::string::npos) << output_;
}

TEST_F(Finetune, BadArgumentsAndMissingFilesFailWithAMessage) {
  EXPECT_EQ(run({"--shard", (dir_ / "shard").string(), "--steps", "1"}), 2);
  EXPECT_NE(output_.find("--consensus is required"), std::string::npos) << output_;
  EXPECT_NE(output_.find("usage: tapestry finetune"), std::string::npos) << output_;
  EXPECT_EQ(run({"--consensus", consensus().string(), "--shard", (dir_ / "shard").string(), "--steps", "1",
                 "--optimizer", "lion"}),
            2);
  EXPECT_EQ(run({"--consensus", (dir_ / "missing.ckpt").string(), "--shard", (dir_ / "shard").string(), "--steps",
                 "1"}),
            1);
  EXPECT_NE(output_.find("missing.ckpt"), std::string::npos) << output_;
  EXPECT_FALSE(fs::exists(dir_ / "missing.ckpt"));
}

}  // namespace
}  // namespace tapestry::it
