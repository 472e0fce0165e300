// Argument parsing, worker configs, tables and target checks of `tapestry
// bench convergence --task text`, without training anything.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "tools/bench_convergence_text_plan.h"
#include "tools/bench_convergence_text_report.h"

namespace tapestry::tools {
namespace {

namespace fs = std::filesystem;

TEST(BenchConvergenceTextPlan, QuickIsTheDefault) {
  auto plan = parseTextConvergencePlan({});
  EXPECT_EQ(plan.preset, "quick");
  EXPECT_EQ(plan.languages, (std::vector<std::string>{"en", "de", "es", "it", "pl", "ru"}));
  EXPECT_EQ(plan.model.name, "transformer");
  EXPECT_EQ(plan.train.optimizer, worker::InnerOptimizer::kAdamW);
  EXPECT_GT(plan.train.lr, 0.0);
  ASSERT_EQ(plan.variants.size(), 3u);
  EXPECT_EQ(plan.variants[0].name, "fedavg+nesterov");
  EXPECT_EQ(plan.variants[2].name, "admm");
  EXPECT_FALSE(plan.variants_explicit);
  EXPECT_EQ(plan.out_dir, "results/convergence-text");
  EXPECT_EQ(plan.work_dir, "results/convergence-text/work");
  EXPECT_EQ(plan.evalBytes(), 8192u);
}

TEST(BenchConvergenceTextPlan, OptionsOverrideThePreset) {
  auto plan = parseTextConvergencePlan({"--full", "--languages", "ru,en", "--rounds", "3", "--local-steps", "7",
                                        "--variants", "fedavg+nesterov,admm", "--max-bytes", "5000", "--test-limit-bytes", "0",
                                        "--lr", "0.003", "--d-model", "96", "--layers", "3", "--heads", "6",
                                        "--server-lr", "3", "--server-momentum", "0", "--no-baselines", "--out", "x"});
  EXPECT_EQ(plan.preset, "full");
  EXPECT_FALSE(plan.baselines);
  EXPECT_TRUE(parseTextConvergencePlan({}).baselines);
  EXPECT_EQ(plan.languages, (std::vector<std::string>{"ru", "en"}));
  EXPECT_EQ(plan.workers(), 2u);
  EXPECT_EQ(plan.rounds, 3u);
  EXPECT_EQ(plan.local_steps, 7);
  ASSERT_EQ(plan.variants.size(), 2u);
  EXPECT_TRUE(plan.variants_explicit);
  EXPECT_EQ(plan.max_bytes, 5000u);
  EXPECT_EQ(plan.evalBytes(), worker::kEvalTextBytes);
  EXPECT_DOUBLE_EQ(plan.train.lr, 0.003);
  EXPECT_DOUBLE_EQ(plan.variants[0].server_lr, 3);
  EXPECT_DOUBLE_EQ(plan.variants[0].momentum, 0);
  EXPECT_EQ(plan.variants[1].server, "plain") << "a plain server has no learning rate to set";
  EXPECT_EQ(plan.model.d_model, 96);
  EXPECT_EQ(plan.model.layers, 3);
  EXPECT_EQ(plan.model.heads, 6);
  EXPECT_EQ(textWorkerConfigFor(plan, 0, "pki", "shards")["model"]["d_model"], 96);
  EXPECT_EQ(plan.work_dir, "x/work");
  EXPECT_EQ(parseTextConvergencePlan({"--full"}).variants.size(), convergenceVariants().size());
}

TEST(BenchConvergenceTextPlan, BadOptionsNameTheOption) {
  auto message = [](std::vector<std::string> args) {
    try {
      parseTextConvergencePlan(args);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"--languages", "en,../x"}).find("'../x' cannot name a language"), std::string::npos);
  EXPECT_NE(message({"--languages", "en,en"}).find("given twice"), std::string::npos);
  EXPECT_NE(message({"--variants", "fedsgd"}).find("unknown variant 'fedsgd'"), std::string::npos);
  EXPECT_NE(message({"--rounds", "0"}).find("--rounds"), std::string::npos);
  EXPECT_NE(message({"--lr", "-1"}).find("--lr"), std::string::npos);
  EXPECT_NE(message({"--partition", "iid"}).find("unknown option --partition"), std::string::npos);
  EXPECT_NE(message({"--out"}).find("missing value"), std::string::npos);
  EXPECT_NE(message({"--d-model", "100", "--heads", "3"}).find("--heads (3) must divide --d-model (100)"),
            std::string::npos);
  EXPECT_NE(message({"--layers", "0"}).find("--layers"), std::string::npos);
  EXPECT_NE(message({"--server-momentum", "1"}).find("--server-momentum takes a number in [0, 1)"), std::string::npos);
}

TEST(BenchConvergenceTextPlan, WorkerConfigsTrainOneLanguageEachWithAdamW) {
  auto plan = parseTextConvergencePlan({"--languages", "de,pl"});
  auto w1 = textWorkerConfigFor(plan, 1, "/pki", "/shards");
  EXPECT_EQ(w1.at("name"), "worker-1");
  EXPECT_EQ(w1.at("data").at("shard"), "/shards/pl");
  EXPECT_EQ(w1.at("tls").at("cert"), "/pki/worker-1.crt");
  EXPECT_EQ(w1.at("train").at("optimizer"), "adamw");
  EXPECT_FALSE(w1.at("train").contains("momentum")) << "adamw rejects sgd's momentum key";
  EXPECT_EQ(w1.at("train").at("data_seed").get<uint64_t>(), textDataSeed(plan, 1));
  EXPECT_EQ(w1.at("model").at("name"), "transformer");
  EXPECT_FALSE(w1.contains("audit_dir"));
  EXPECT_TRUE(textWorkerConfigFor(plan, 0, "/pki", "/shards").contains("audit_dir"));
  auto c = coordinatorConfigFor(coordinatorPlanFor(plan), plan.variants[0], "/pki");
  EXPECT_EQ(c.at("rounds").at("min_workers").get<size_t>(), 2u);
  EXPECT_EQ(c.at("algorithm").at("local_steps").get<int64_t>(), plan.local_steps);
}

TextArm arm(const std::string& name, std::vector<double> last) {
  TextArm a;
  a.name = name;
  a.bpb = {std::vector<double>(last.size(), 8.0), std::move(last)};
  return a;
}

TextConvergenceResults twoLanguages() {
  TextConvergenceResults r;
  r.languages = {"en", "de"};
  r.train_bytes = {1000, 1100};
  r.eval_bytes = {100, 110};
  r.rounds = 1;
  r.local_steps = 5;
  r.centralised = arm("centralised", {3.0, 3.2});
  r.alone = {arm("en alone", {2.9, 4.0}), arm("de alone", {4.1, 3.1})};
  r.variants = {arm("good", {3.1, 3.3}), arm("poor", {3.5, 4.05})};
  return r;
}

TEST(BenchConvergenceTextReport, ChecksNameTheWorstLanguage) {
  auto r = twoLanguages();
  auto central = centralisedChecks(r);
  ASSERT_EQ(central.size(), 2u);
  EXPECT_TRUE(central[0].passed) << central[0].line;  // +3.3% and +3.1%
  EXPECT_FALSE(central[1].passed) << central[1].line;
  EXPECT_NE(central[1].line.find("(i) poor: FAIL"), std::string::npos) << central[1].line;
  EXPECT_NE(central[1].line.find("worst de"), std::string::npos) << central[1].line;
  auto alone = aloneChecks(r);
  ASSERT_EQ(alone.size(), 2u);
  EXPECT_TRUE(alone[0].passed) << alone[0].line;
  EXPECT_FALSE(alone[1].passed) << alone[1].line;  // 4.05 on de is worse than the en-alone model's 4.0
  EXPECT_NE(alone[1].line.find("on de, 4.050 vs 4.000 of the en-alone model"), std::string::npos) << alone[1].line;
}

TEST(BenchConvergenceTextReport, TheDataParallelReferenceIsCheckedAndShownWhenItRan) {
  auto r = twoLanguages();
  r.centralised_same_steps = arm("data-parallel centralised", {3.4, 3.9});
  auto central = centralisedChecks(r);
  ASSERT_EQ(central.size(), 4u);
  EXPECT_NE(central[1].line.find("(i) poor: FAIL"), std::string::npos) << central[1].line;
  EXPECT_TRUE(central[3].passed) << central[3].line;  // poor: +2.9% on en, +3.8% on de
  EXPECT_NE(central[3].line.find("(i, same steps) poor: PASS"), std::string::npos) << central[3].line;
  EXPECT_NE(central[3].line.find("data-parallel centralised"), std::string::npos) << central[3].line;
  EXPECT_NE(textConsensusTable(r).find("| data-parallel centralised (union, one worker's steps, K x batch) | 3.400 | "
                                       "3.900 | 3.650 |"),
            std::string::npos)
      << textConsensusTable(r);
  auto j = textResultsJson(r);
  EXPECT_EQ(j.at("centralised_same_steps").at("final").at(1).get<double>(), 3.9);
  EXPECT_EQ(j.at("checks").at(3).at("target"), "i-same-steps");
  EXPECT_EQ(twoLanguages().centralised_same_steps.bpb.size(), 0u);
  EXPECT_EQ(textResultsJson(twoLanguages()).count("centralised_same_steps"), 0u) << "not run, not reported";
}

TEST(BenchConvergenceTextReport, NanFailsAndSkippedVariantsAreNotChecked) {
  auto r = twoLanguages();
  r.variants[0].bpb.back()[1] = std::nan("");
  r.variants[1].skipped = "rejected";
  auto central = centralisedChecks(r);
  ASSERT_EQ(central.size(), 1u);
  EXPECT_FALSE(central[0].passed);
  ASSERT_EQ(aloneChecks(r).size(), 1u);
  EXPECT_FALSE(aloneChecks(r)[0].passed);
  EXPECT_NE(textConsensusTable(r).find("| poor | skipped: rejected |"), std::string::npos) << textConsensusTable(r);
}

TEST(BenchConvergenceTextReport, WithoutBaselinesNothingIsCheckedAgainstThem) {
  auto r = twoLanguages();
  r.centralised = {};
  r.alone.clear();
  EXPECT_TRUE(centralisedChecks(r).empty());
  EXPECT_TRUE(aloneChecks(r).empty());
  const std::string summary = textResultsSummary(r);
  EXPECT_NE(summary.find("| good (consensus z_1) | 3.100 | 3.300 | 3.200 |"), std::string::npos) << summary;
  EXPECT_EQ(summary.find("centralised (union"), std::string::npos) << summary;
  EXPECT_NE(summary.find("no targets checked"), std::string::npos) << summary;
  auto j = textResultsJson(r);
  EXPECT_EQ(j.count("centralised"), 0u);
  EXPECT_TRUE(j.at("checks").empty());
}

TEST(BenchConvergenceTextReport, TablesHaveARowPerModel) {
  auto r = twoLanguages();
  std::string table = textConsensusTable(r);
  EXPECT_NE(table.find("| model | en | de | mean |"), std::string::npos) << table;
  EXPECT_NE(table.find("| good (consensus z_1) | 3.100 | 3.300 | 3.200 |"), std::string::npos) << table;
  EXPECT_NE(table.find("| centralised (union of languages) | 3.000 | 3.200 | 3.100 |"), std::string::npos) << table;
  EXPECT_NE(table.find("| each language alone, on itself | 2.900 | 3.100 | 3.000 |"), std::string::npos) << table;
  std::string matrix = textAloneMatrix(r);
  EXPECT_NE(matrix.find("| en | 2.900 | 4.000 | 3.450 |"), std::string::npos) << matrix;
  EXPECT_NE(matrix.find("| de | 4.100 | 3.100 | 3.600 |"), std::string::npos) << matrix;
}

TEST(BenchConvergenceTextReport, WritesTheFiles) {
  auto r = twoLanguages();
  fs::path dir = fs::temp_directory_path() / ("tapestry-text-report-" + std::to_string(::getpid()));
  writeTextConvergenceReport(r, dir.string());
  for (const char* file : {"results.md", "results.json", "bpb_vs_round.png"})
    EXPECT_GT(fs::file_size(dir / file), 0u) << file;
  auto j = textResultsJson(r);
  EXPECT_EQ(j.at("task"), "text");
  EXPECT_EQ(j.at("variants").at(0).at("mean_bpb").size(), 2u);
  EXPECT_EQ(j.at("alone").at(1).at("final").at(1).get<double>(), 3.1);
  EXPECT_EQ(j.at("checks").size(), 4u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tapestry::tools
