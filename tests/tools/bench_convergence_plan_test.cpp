// Argument parsing, configs and the results table of `tapestry bench
// convergence`, without training anything.
#include <gtest/gtest.h>

#include "tools/bench_convergence_plan.h"
#include "tools/bench_convergence_report.h"

namespace tapestry::tools {
namespace {

TEST(BenchConvergencePlan, QuickIsTheDefaultAndOptionsOverrideIt) {
  auto plan = parseConvergencePlan({"--workers", "3", "--rounds", "2", "--variants", "fedavg,fedprox+nesterov"});
  EXPECT_EQ(plan.preset, "quick");
  EXPECT_EQ(plan.workers, 3u);
  EXPECT_EQ(plan.rounds, 2u);
  ASSERT_EQ(plan.variants.size(), 2u);
  EXPECT_EQ(plan.variants[1].server, "nesterov");
  EXPECT_DOUBLE_EQ(plan.variants[1].rho, 0.01);
  EXPECT_TRUE(plan.variants_explicit);
  EXPECT_EQ(plan.out_dir, "results/convergence-dirichlet");
  EXPECT_EQ(plan.work_dir, "results/convergence-dirichlet/work");
}

TEST(BenchConvergencePlan, FullUsesLocalEpochs) {
  auto plan = parseConvergencePlan({"--full", "--partition", "labels"});
  EXPECT_EQ(plan.workers, 10u);
  EXPECT_EQ(plan.rounds, 50u);
  EXPECT_EQ(plan.local_steps, 0);
  EXPECT_DOUBLE_EQ(plan.local_epochs, 10);
  EXPECT_EQ(stepsForEpochs(10, 5400, 64), 844);
  EXPECT_EQ(plan.variants.size(), convergenceVariants().size());
}

TEST(BenchConvergencePlan, BadOptionsNameTheOption) {
  auto message = [](std::vector<std::string> args) {
    try {
      parseConvergencePlan(args);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"--partition", "zipf"}).find("--partition"), std::string::npos);
  EXPECT_NE(message({"--variants", "fedsgd"}).find("fedsgd"), std::string::npos);
  EXPECT_NE(message({"--rounds", "0"}).find("--rounds"), std::string::npos);
  EXPECT_NE(message({"--local-steps", "5", "--local-epochs", "1"}).find("not both"), std::string::npos);
  EXPECT_NE(message({"--bogus", "1"}).find("--bogus"), std::string::npos);
}

TEST(BenchConvergencePlan, ConfigsCarryTheVariantsHyperParameters) {
  auto plan = parseConvergencePlan({"--local-steps", "7"});
  const ConvergenceVariant* adam = nullptr;
  for (const auto& v : plan.variants)
    if (v.name == "fedavg+adam") adam = &v;
  ASSERT_NE(adam, nullptr);
  auto c = coordinatorConfigFor(plan, *adam, "/pki");
  EXPECT_EQ(c["server_optimizer"]["name"], "adam");
  EXPECT_DOUBLE_EQ(c["server_optimizer"]["lr"].get<double>(), 0.01);
  EXPECT_EQ(c["algorithm"]["local_steps"], 7);
  EXPECT_FALSE(c["algorithm"].contains("rho"));
  auto w0 = workerConfigFor(plan, 0, "/pki", "/shards"), w1 = workerConfigFor(plan, 1, "/pki", "/shards");
  EXPECT_TRUE(w0.contains("audit_dir"));
  EXPECT_FALSE(w1.contains("audit_dir"));
  EXPECT_NE(w0["train"]["data_seed"], w1["train"]["data_seed"]);
  EXPECT_EQ(w1["data"]["shard"], "/shards/worker-1");
}

TEST(BenchConvergencePlan, DualStepReachesTheAdmmVariantsOnly) {
  auto plan = parseConvergencePlan({"--dual-step", "0.25", "--variants", "fedprox,admm,admm+nesterov"});
  EXPECT_FALSE(coordinatorConfigFor(plan, plan.variants[0], "/pki")["algorithm"].contains("dual_step"));
  EXPECT_DOUBLE_EQ(coordinatorConfigFor(plan, plan.variants[1], "/pki")["algorithm"]["dual_step"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(coordinatorConfigFor(plan, plan.variants[2], "/pki")["algorithm"]["dual_step"].get<double>(), 0.25);
  EXPECT_NE(describePlan(plan).find("dual step 0.25"), std::string::npos);
  for (std::string bad : {"0", "2", "-1"}) {
    try {
      parseConvergencePlan({"--dual-step", bad});
      FAIL() << "--dual-step " << bad << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--dual-step"), std::string::npos);
    }
  }
}

TEST(BenchConvergencePlan, WeightDecayReachesEveryWorkerAndThePlan) {
  auto plain = parseConvergencePlan({});
  EXPECT_EQ(workerConfigFor(plain, 0, "/pki", "/shards")["train"]["weight_decay"].get<double>(), 0.0);
  EXPECT_EQ(describePlan(plain).find("weight decay"), std::string::npos);
  auto plan = parseConvergencePlan({"--weight-decay", "0.0005"});
  EXPECT_DOUBLE_EQ(plan.train.weight_decay, 5e-4);
  for (size_t k : {0, 3}) EXPECT_DOUBLE_EQ(workerConfigFor(plan, k, "/pki", "/shards")["train"]["weight_decay"].get<double>(), 5e-4);
  EXPECT_NE(describePlan(plan).find("weight decay 0.0005"), std::string::npos);
  EXPECT_THROW(parseConvergencePlan({"--weight-decay", "-1"}), UsageError);
}

TEST(BenchConvergencePlan, AggregationRuleReachesEveryCoordinator) {
  auto plain = parseConvergencePlan({});
  EXPECT_EQ(coordinatorConfigFor(plain, plain.variants[0], "/pki")["aggregation"]["rule"], "mean");
  auto plan = parseConvergencePlan({"--aggregation-rule", "median", "--variants", "fedavg,admm"});
  for (const auto& v : plan.variants)
    EXPECT_EQ(coordinatorConfigFor(plan, v, "/pki")["aggregation"]["rule"], "median") << v.name;
  EXPECT_NE(describePlan(plan).find("aggregates by median"), std::string::npos);
  EXPECT_THROW(parseConvergencePlan({"--aggregation-rule", "krum"}), UsageError);
}

TEST(BenchConvergencePlan, AStragglerAndLatePushesReachTheRoundsConfig) {
  auto plain = parseConvergencePlan({});
  const auto rounds = coordinatorConfigFor(plain, plain.variants[0], "/pki")["rounds"];
  EXPECT_FALSE(rounds.contains("quorum"));
  EXPECT_FALSE(rounds.contains("max_staleness"));
  EXPECT_DOUBLE_EQ(plain.straggler, 1.0);

  auto plan = parseConvergencePlan(
      {"--straggler", "3", "--deadline", "2.5", "--quorum", "3", "--max-staleness", "2", "--variants", "fedavg"});
  const auto late = coordinatorConfigFor(plan, plan.variants[0], "/pki")["rounds"];
  EXPECT_DOUBLE_EQ(late["deadline_s"].get<double>(), 2.5);
  EXPECT_EQ(late["quorum"], 3);
  EXPECT_EQ(late["max_staleness"], 2);
  EXPECT_EQ(late["min_workers"], 4) << "a round closes early only when every worker pushed";
  EXPECT_DOUBLE_EQ(plan.straggler, 3.0);
  const std::string described = describePlan(plan);
  EXPECT_NE(described.find("worker-3 runs 3x slower"), std::string::npos) << described;
  EXPECT_NE(described.find("up to 2 rounds late count"), std::string::npos) << described;

  EXPECT_THROW(parseConvergencePlan({"--straggler", "0.5"}), UsageError);
  EXPECT_THROW(parseConvergencePlan({"--straggler", "21"}), UsageError) << "it would run in slices under 10 ms";
  EXPECT_THROW(parseConvergencePlan({"--quorum", "5"}), UsageError) << "the quick preset has 4 workers";
}

TEST(BenchConvergencePlan, ServerLrReachesEveryServerOptimizerButPlain) {
  auto plan = parseConvergencePlan({"--server-lr", "0.05", "--variants", "fedavg,fedavg+nesterov,fedavg+adam"});
  EXPECT_DOUBLE_EQ(plan.variants[0].server_lr, 1.0) << "plain averaging has no learning rate to change";
  EXPECT_DOUBLE_EQ(coordinatorConfigFor(plan, plan.variants[1], "/pki")["server_optimizer"]["lr"].get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(coordinatorConfigFor(plan, plan.variants[2], "/pki")["server_optimizer"]["lr"].get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(plan.variants[1].momentum, 0.9);
  try {
    parseConvergencePlan({"--server-lr", "-1"});
    FAIL() << "a negative server learning rate accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--server-lr"), std::string::npos);
  }
}

TEST(BenchConvergencePlan, EncodingReachesTheWorkerConfigs) {
  auto plain = parseConvergencePlan({});
  EXPECT_FALSE(workerConfigFor(plain, 0, "/pki", "/shards").contains("transfer")) << "fp32 is the default";
  auto plan = parseConvergencePlan({"--encoding", "int8"});
  EXPECT_EQ(workerConfigFor(plan, 1, "/pki", "/shards")["transfer"]["encoding"], "int8");
  try {
    parseConvergencePlan({"--encoding", "fp8"});
    FAIL() << "fp8 accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--encoding"), std::string::npos);
  }
}

TEST(BenchConvergenceReport, TableHasEveryRowAndTheRoundsToTarget) {
  ConvergenceResults r;
  r.rounds = 3;
  r.centralised = {"centralised", 0.87, {0.1, 0.7, 0.86, 0.87}};
  r.local = {{"worker-0", 0.6, {}}, {"worker-1", 0.7, {}}};
  r.variants.push_back({"fedavg", "", {0.1, 0.5, 0.86, 0.84}, {0, 1e6, 2e6, 3e6}, 1});
  r.variants.push_back({"admm", "unknown key", {}, {}, 0});
  std::string table = resultsTable(r);
  EXPECT_NE(table.find("| fedavg | 84.00 % | 86.00 % | 2 | 3.00 MB | 2.00 MB |"), std::string::npos) << table;
  EXPECT_NE(table.find("admm | skipped: unknown key"), std::string::npos) << table;
  EXPECT_NE(table.find("| centralised (union of shards) | 87.00 % | 87.00 % | 2 |"), std::string::npos) << table;
  EXPECT_NE(table.find("local only, mean of 2 | 65.00 %"), std::string::npos) << table;
  EXPECT_NE(table.find("local only, worst of 2 | 60.00 %"), std::string::npos) << table;
  EXPECT_EQ(firstReaching({0.1, 0.2}, 0.85), std::nullopt);
}

}  // namespace
}  // namespace tapestry::tools
