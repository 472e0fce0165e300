#include "tools/bench_convergence_plan.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <sstream>

#include "worker/ml/dataset.h"

namespace tapestry::tools {

namespace {

// The hyper-parameters of every federated variant, in one place. Local
// training everywhere is the NIID-Bench recipe (LeNet, batch 64, SGD lr 0.01,
// momentum 0.9). Server optimizers: Nesterov as in DiLoCo (lr 0.7, momentum
// 0.9); Adam as in FedAdam (lr 0.01, betas 0.9/0.99, tau 1e-3). Proximal
// weights: FedProx 0.01 (NIID-Bench's mu); EASGD 0.1 (elastic pull per step
// lr*rho = 1e-3, so a worker drifts ~S steps before being pulled back);
// ADMM 0.1 (large enough that the duals settle within a few tens of rounds)
// with a dual step of 0.1: a few local steps solve the local problem only
// roughly, and the textbook step of 1 lets the duals run away when members
// hold disjoint classes (docs/convergence.md).
// Server momentum leaves ADMM's fixed point (z = mean of w + u, w = z)
// unchanged and only changes how fast it is approached, so admm runs with
// both; easgd+nesterov is the DiLoCo variant.
const std::vector<ConvergenceVariant> kVariants = {
    // name               algorithm  rho   server      lr    momentum b1   b2    eps   dual step
    {"fedavg",            "fedavg",  0.0,  "plain",    1.0,  0.0,     0.0, 0.0,  0.0},
    {"fedavg+nesterov",   "fedavg",  0.0,  "nesterov", 0.7,  0.9,     0.0, 0.0,  0.0},
    {"fedavg+adam",       "fedavg",  0.0,  "adam",     0.01, 0.0,     0.9, 0.99, 1e-3},
    {"fedprox",           "fedprox", 0.01, "plain",    1.0,  0.0,     0.0, 0.0,  0.0},
    {"fedprox+nesterov",  "fedprox", 0.01, "nesterov", 0.7,  0.9,     0.0, 0.0,  0.0},
    {"easgd",             "easgd",   0.1,  "plain",    1.0,  0.0,     0.0, 0.0,  0.0},
    {"easgd+nesterov",    "easgd",   0.1,  "nesterov", 0.7,  0.9,     0.0, 0.0,  0.0},
    {"admm",              "admm",    0.1,  "plain",    1.0,  0.0,     0.0, 0.0,  0.0,  0.1},
    {"admm+nesterov",     "admm",    0.1,  "nesterov", 0.7,  0.9,     0.0, 0.0,  0.0,  0.1},
    {"scaffold",          "scaffold", 0.0, "plain",    1.0,  0.0,     0.0, 0.0,  0.0},
};

// The two presets. --quick fits in under 10 minutes on two cores: 4 workers
// on a 12k-image subset, 20 rounds x 100 steps, 2000 test images.
struct Preset {
  const char* name;
  size_t workers;
  uint64_t rounds;
  int64_t local_steps;
  double local_epochs;
  uint64_t limit;
  size_t test_limit;
  int64_t timeout_s;
};
constexpr Preset kQuick{"quick", 4, 20, 100, 0, 12000, 2000, 900};
constexpr Preset kFull{"full", 10, 50, 0, 10, 0, 0, 24 * 3600};

uint64_t parseCount(const std::string& flag, const std::string& text, uint64_t min) {
  return common::parseCountArg(flag, text, min);
}

double parsePositive(const std::string& flag, const std::string& text) { return common::parsePositiveArg(flag, text); }

std::vector<ConvergenceVariant> parseVariants(const std::string& list) {
  std::vector<ConvergenceVariant> out;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    if (name.empty()) continue;
    const ConvergenceVariant* found = nullptr;
    for (const auto& v : kVariants)
      if (v.name == name) found = &v;
    if (!found) {
      std::string known;
      for (const auto& v : kVariants) known += (known.empty() ? "" : ", ") + v.name;
      throw UsageError("--variants: unknown variant '" + name + "'; known: " + known);
    }
    out.push_back(*found);
  }
  if (out.empty()) throw UsageError("--variants needs at least one variant name");
  return out;
}

}  // namespace

const std::vector<ConvergenceVariant>& convergenceVariants() { return kVariants; }

const char* const kBenchConvergenceUsage =
    "usage: tapestry bench convergence [--task fashion-mnist] [--quick|--full] [--partition dirichlet|labels|iid]\n"
    "                                  [--alpha A] [--per-worker C] [--workers K] [--rounds R]\n"
    "                                  [--local-steps S | --local-epochs E] [--variants LIST] [--out DIR]\n"
    "                                  [--test-limit N] [--threads N]\n"
    "  Consensus test accuracy per round of federated variants against centralised training on the\n"
    "  union of the shards and against each worker alone, all with the same number of sample passes.\n"
    "  --quick            4 workers, 20 rounds x 100 steps, 12000 training images, 2000 test images (default)\n"
    "  --full             10 workers, 50 rounds x 10 local epochs, all of Fashion-MNIST (hours)\n"
    "  --partition P      label skew: dirichlet (default, --alpha 0.5), labels (--per-worker 2 classes), iid\n"
    "  --variants LIST    comma-separated, default all: fedavg, fedavg+nesterov, fedavg+adam, fedprox,\n"
    "                     fedprox+nesterov, easgd, easgd+nesterov, admm, admm+nesterov, scaffold\n"
    "  --encoding E       how workers push: fp32 (default), or a bf16, fp16 or int8 delta with error feedback\n"
    "  --aggregation-rule R  the coordinator's aggregation.rule: mean (default), median or trimmed_mean\n"
    "  --rho R            proximal weight of every variant that has one (fedprox, easgd, admm)\n"
    "  --dual-step G      ADMM's dual step, u <- u + G (w - z), in (0, 2) (algorithm.dual_step)\n"
    "  --correction-scale C\n"
    "                     share of SCAFFOLD's drift correction applied, in (0, 1]\n"
    "                     (algorithm.correction_scale)\n"
    "  --lr L             the workers' SGD learning rate (default 0.01)\n"
    "  --weight-decay W   L2 weight decay of every model's SGD, the baselines' included (default 0)\n"
    "  --server-lr L      learning rate of every server optimizer (nesterov 0.7, adam 0.01 by default)\n"
    "  --logit-adjustment T  train every model on the logit-adjusted loss with tau T and the label prior of\n"
    "                     its own data (train.logit_adjustment; 0, the default, is plain cross-entropy)\n"
    "  --distill B        workers distil the consensus's predictions on the classes other than each sample's\n"
    "                     label with weight B (train.distill; 0, the default, is off)\n"
    "  --overlap          workers train on while the consensus travels (easgd, admm; others ignore it)\n"
    "  --straggler F      the last worker runs F times slower than the others (paused and resumed)\n"
    "  --deadline S       rounds close S seconds after they open once --quorum members pushed\n"
    "                     (rounds.deadline_s, default 3600)\n"
    "  --quorum Q         members a round needs at its deadline (rounds.quorum, default all)\n"
    "  --max-staleness M  a push up to M rounds late joins the open round with less weight\n"
    "                     (rounds.max_staleness, default 0: late pushes are dropped)\n"
    "  --no-baselines     the federated variants only: no centralised or local-only training\n"
    "  --out DIR          results.md, results.json and plots (default results/convergence-<partition>)\n"
    "  --test-limit N     evaluate on the first N test images (0: all 10000)\n"
    "  --threads N        LibTorch threads per worker process (default 1)\n"
    "  --local-epochs E   local steps = E x mean shard size / batch size\n"
    "  --task text        the multilingual task instead: one worker per fortune language, a byte-level\n"
    "                     transformer, bits per byte per language (`--task text --help` for its options)\n";

ConvergencePlan parseConvergencePlan(const std::vector<std::string>& args) {
  ConvergencePlan plan;
  plan.data_dir = worker::kFashionMnistDir;
  const Preset* preset = &kQuick;
  bool overlap = false;
  for (const auto& a : args) {
    if (a == "--full") preset = &kFull;
    if (a == "--overlap") overlap = true;
    if (a == "--no-baselines") plan.baselines = false;
  }
  plan.preset = preset->name;
  plan.workers = preset->workers;
  plan.rounds = preset->rounds;
  plan.local_steps = preset->local_steps;
  plan.local_epochs = preset->local_epochs;
  plan.limit = preset->limit;
  plan.test_limit = preset->test_limit;
  plan.timeout = std::chrono::seconds(preset->timeout_s);
  plan.variants = kVariants;
  plan.model.name = "cnn";
  plan.train.lr = 0.01;
  plan.train.momentum = 0.9;
  plan.train.batch_size = 64;
  plan.train.threads = 1;
  bool steps_given = false, epochs_given = false;
  std::optional<double> rho, server_lr, dual_step, correction_scale;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--quick" || flag == "--full" || flag == "--overlap" || flag == "--no-baselines") continue;
    if (i + 1 >= args.size()) throw UsageError("unknown option or missing value: " + flag);
    const std::string& value = args[++i];
    if (flag == "--partition") {
      if (value != "dirichlet" && value != "labels" && value != "iid")
        throw UsageError("--partition takes dirichlet, labels or iid, not '" + value + "'");
      plan.partition = value;
    } else if (flag == "--alpha") plan.alpha = parsePositive(flag, value);
    else if (flag == "--per-worker") plan.per_worker = parseCount(flag, value, 1);
    else if (flag == "--workers") plan.workers = parseCount(flag, value, 1);
    else if (flag == "--rounds") plan.rounds = parseCount(flag, value, 1);
    else if (flag == "--local-steps") plan.local_steps = static_cast<int64_t>(parseCount(flag, value, 1)), steps_given = true;
    else if (flag == "--local-epochs") plan.local_epochs = parsePositive(flag, value), epochs_given = true;
    else if (flag == "--variants") plan.variants = parseVariants(value), plan.variants_explicit = true;
    else if (flag == "--out") plan.out_dir = value;
    else if (flag == "--encoding") {
      if (value != "fp32" && value != "bf16" && value != "fp16" && value != "int8")
        throw UsageError("--encoding takes fp32, bf16, fp16 or int8, not '" + value + "'");
      plan.encoding = value;
    }
    else if (flag == "--aggregation-rule") {
      if (value != "mean" && value != "median" && value != "trimmed_mean")
        throw UsageError("--aggregation-rule takes mean, median or trimmed_mean, not '" + value + "'");
      plan.aggregation_rule = value;
    }
    else if (flag == "--test-limit") plan.test_limit = parseCount(flag, value, 0);
    else if (flag == "--straggler") {
      plan.straggler = parsePositive(flag, value);
      if (plan.straggler < 1 || plan.straggler > 20)
        throw UsageError("--straggler takes a slowdown factor from 1 to 20, not " + value);
    }
    else if (flag == "--deadline") plan.deadline_s = parsePositive(flag, value);
    else if (flag == "--quorum") plan.quorum = parseCount(flag, value, 1);
    else if (flag == "--max-staleness") plan.max_staleness = parseCount(flag, value, 0);
    else if (flag == "--rho") rho = parsePositive(flag, value);
    else if (flag == "--dual-step") {
      dual_step = parsePositive(flag, value);
      if (*dual_step >= 2) throw UsageError("--dual-step must lie in (0, 2), not " + value);
    }
    else if (flag == "--correction-scale") {
      correction_scale = parsePositive(flag, value);
      if (*correction_scale > 1) throw UsageError("--correction-scale must lie in (0, 1], not " + value);
    }
    else if (flag == "--lr") plan.train.lr = parsePositive(flag, value);
    else if (flag == "--weight-decay") plan.train.weight_decay = parsePositive(flag, value);
    else if (flag == "--server-lr") server_lr = parsePositive(flag, value);
    else if (flag == "--logit-adjustment") plan.train.logit_adjustment = parsePositive(flag, value);
    else if (flag == "--distill") plan.train.distill = parsePositive(flag, value);
    else if (flag == "--threads") plan.train.threads = static_cast<int>(parseCount(flag, value, 1));
    else if (flag == "--limit") plan.limit = parseCount(flag, value, 0);  // hidden: a smaller training set
    else if (flag == "--data") plan.data_dir = value;                     // hidden: another Fashion-MNIST copy
    else if (flag == "--work") plan.work_dir = value;                     // hidden: default <out>/work
    else if (flag == "--timeout") plan.timeout = std::chrono::seconds(parseCount(flag, value, 1));  // hidden
    else throw UsageError("unknown option " + flag);
  }
  if (steps_given && epochs_given) throw UsageError("give --local-steps or --local-epochs, not both");
  if (plan.quorum > plan.workers)
    throw UsageError("--quorum " + std::to_string(plan.quorum) + " is more than the " + std::to_string(plan.workers) +
                     " workers");
  if (rho)
    for (auto& v : plan.variants)
      if (v.rho > 0) v.rho = *rho;
  if (correction_scale)
    for (auto& v : plan.variants)
      if (v.algorithm == "scaffold") v.correction_scale = *correction_scale;
  if (dual_step)
    for (auto& v : plan.variants)
      if (v.algorithm == "admm") v.dual_step = *dual_step;
  overrideServer(plan.variants, server_lr);
  plan.overlap = overlap;
  if (steps_given) plan.local_epochs = 0;
  if (epochs_given) plan.local_steps = 0;
  if (plan.out_dir.empty()) plan.out_dir = "results/convergence-" + plan.partition;
  if (plan.work_dir.empty()) plan.work_dir = plan.out_dir + "/work";
  plan.central_threads = std::max(2, plan.train.threads);
  return plan;
}

void overrideServer(std::vector<ConvergenceVariant>& variants, std::optional<double> lr,
                    std::optional<double> momentum) {
  for (auto& v : variants) {
    if (lr && v.server != "plain") v.server_lr = *lr;
    if (momentum && v.server == "nesterov") v.momentum = *momentum;
  }
}

int64_t stepsForEpochs(double epochs, double mean_samples, int64_t batch_size) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::llround(epochs * mean_samples / static_cast<double>(batch_size))));
}

std::string describePlan(const ConvergencePlan& p) {
  std::ostringstream out;
  out << "== tapestry bench convergence (" << p.preset << "): " << p.workers << " workers, partition " << p.partition;
  if (p.partition == "dirichlet") out << " alpha " << p.alpha;
  if (p.partition == "labels") out << " " << p.per_worker << " classes per worker";
  out << ", " << p.rounds << " rounds x ";
  if (p.local_steps > 0) out << p.local_steps << " local steps";
  else out << p.local_epochs << " local epochs";
  if (p.overlap) out << " (workers overlap training with the transfer)";
  out << "\n   model " << p.model.toJson().dump() << ", SGD lr " << p.train.lr << " momentum " << p.train.momentum
      << ", batch " << p.train.batch_size;
  if (p.train.weight_decay > 0) out << ", weight decay " << p.train.weight_decay;
  if (p.train.logit_adjustment > 0) out << ", logit-adjusted loss tau " << p.train.logit_adjustment;
  if (p.train.distill > 0) out << ", not-true distillation from the consensus beta " << p.train.distill;
  out << "; training images: " << (p.limit ? std::to_string(p.limit) : "all")
      << ", test images: " << (p.test_limit ? std::to_string(p.test_limit) : "all") << "; pushes: " << p.encoding;
  if (p.aggregation_rule != "mean") out << "; the coordinator aggregates by " << p.aggregation_rule;
  if (p.straggler > 1) out << "; worker-" << p.workers - 1 << " runs " << p.straggler << "x slower";
  if (p.quorum > 0) out << "; rounds close after " << p.deadline_s << " s with " << p.quorum << " members";
  if (p.max_staleness > 0) out << "; pushes up to " << p.max_staleness << " rounds late count";
  out
      << "\n   variants:";
  for (const auto& v : p.variants) {
    out << "\n     " << v.name << ": " << v.algorithm;
    if (v.algorithm != "fedavg") out << " rho " << v.rho;
    if (v.algorithm == "admm") out << " dual step " << v.dual_step;
    if (v.algorithm == "scaffold") out << " correction scale " << v.correction_scale;
    out << ", server " << v.server;
    if (v.server == "nesterov") out << " lr " << v.server_lr << " momentum " << v.momentum;
    if (v.server == "adam") out << " lr " << v.server_lr << " betas " << v.beta1 << "/" << v.beta2 << " eps " << v.epsilon;
  }
  out << "\n   output: " << p.out_dir << "\n";
  return out.str();
}

nlohmann::json roundsConfigFor(const ConvergencePlan& plan) {
  nlohmann::json rounds = {{"max", plan.rounds}, {"min_workers", plan.workers}, {"deadline_s", plan.deadline_s}};
  if (plan.quorum > 0) rounds["quorum"] = plan.quorum;
  if (plan.max_staleness > 0) rounds["max_staleness"] = plan.max_staleness;
  return rounds;
}

nlohmann::json coordinatorConfigFor(const ConvergencePlan& plan, const ConvergenceVariant& v, const std::string& pki) {
  nlohmann::json server = {{"name", v.server}};
  if (v.server == "nesterov") server.update({{"lr", v.server_lr}, {"momentum", v.momentum}});
  if (v.server == "adam")
    server.update({{"lr", v.server_lr}, {"beta1", v.beta1}, {"beta2", v.beta2}, {"epsilon", v.epsilon}});
  nlohmann::json algorithm = {{"name", v.algorithm}, {"local_steps", plan.local_steps}, {"init_seed", plan.init_seed}};
  if (v.rho > 0) algorithm["rho"] = v.rho;
  if (v.algorithm == "admm") algorithm["dual_step"] = v.dual_step;
  if (v.algorithm == "scaffold") algorithm["correction_scale"] = v.correction_scale;
  return {{"federation_id", "bench-" + v.name},
          {"listen", {{"host", "127.0.0.1"}, {"port", 0}, {"port_file", "state/coordinator.port"}}},
          {"tls", {{"ca", pki + "/ca/ca.crt"}, {"cert", pki + "/coordinator.crt"}, {"key", pki + "/coordinator.key"}}},
          {"state_dir", "state/coordinator"},
          {"algorithm", algorithm},
          {"rounds", roundsConfigFor(plan)},
          {"server_optimizer", server},
          {"aggregation", {{"device", "cpu"}, {"rule", plan.aggregation_rule}}},
          // Every member connects from 127.0.0.1, all at once.
          {"limits", {{"max_handshakes_per_address", plan.workers + 8}}}};
}

nlohmann::json workerConfigFor(const ConvergencePlan& plan, size_t k, const std::string& pki,
                               const std::string& shards) {
  std::string name = "worker-" + std::to_string(k);
  nlohmann::json j = {
      {"name", name},
      {"coordinator", {{"port_file", "state/coordinator.port"}}},
      {"tls", {{"ca", pki + "/ca/ca.crt"}, {"cert", pki + "/" + name + ".crt"}, {"key", pki + "/" + name + ".key"}}},
      {"data", {{"shard", shards + "/" + name}}},
      {"state_dir", "state/" + name},
      {"model", plan.model.toJson()},
      {"train",
       {{"lr", plan.train.lr},
        {"momentum", plan.train.momentum},
        {"weight_decay", plan.train.weight_decay},
        {"batch_size", plan.train.batch_size},
        {"logit_adjustment", plan.train.logit_adjustment},
        {"distill", plan.train.distill},
        {"data_seed", plan.train.data_seed + 10 + k},
        {"threads", plan.train.threads}}}};
  if (k == 0) j["audit_dir"] = "audit";
  if (plan.encoding != "fp32") j["transfer"] = {{"encoding", plan.encoding}};
  if (plan.overlap) j["transfer"]["overlap"] = true;
  return j;
}

}  // namespace tapestry::tools
