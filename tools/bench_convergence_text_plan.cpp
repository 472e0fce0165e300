#include "tools/bench_convergence_text_plan.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <optional>
#include <cstdlib>
#include <sstream>

#include "worker/ml/text_corpus.h"

namespace tapestry::tools {

namespace {

// AdamW at lr 2e-3, not tuned: 1e-3..3e-3 is the usual range for a 2-layer,
// d_model 64 byte model; the short quick budget (a few hundred steps per
// worker, no warm-up) wants the upper half, and the Nesterov outer step
// (lr 0.7, momentum 0.9) amplifies each round's pseudo-gradient, so we stay
// below the top of the range.
constexpr double kInnerLr = 2e-3;
constexpr double kWeightDecay = 0.01;  // torch.optim.AdamW's default
constexpr int64_t kBatch = 32;

// --quick: 6 workers on 2 cores, 10 rounds x 25 steps of batch 32 x 64 bytes
// per worker. 3 federations + centralised + alone = 5 x 6 x 250 = 7,500
// steps of ~50 ms on one core (~90 ms with 6 processes on 2 cores), plus
// evaluating every model on 6 x 8 KiB per round: about 8 minutes. (40 steps
// a round with 16 KiB evaluated took 13.5 minutes.)
struct TextPreset {
  const char* name;
  uint64_t rounds;
  int64_t local_steps;
  uint64_t max_bytes;
  uint64_t test_limit_bytes;
  int64_t timeout_s;
  bool all_variants;
};
constexpr TextPreset kQuick{"quick", 10, 25, 200000, 8192, 600, false};
constexpr TextPreset kFull{"full", 40, 100, 0, 0, 24 * 3600, true};

const char* const kQuickVariants[] = {"fedavg+nesterov", "fedprox+nesterov", "admm"};

uint64_t parseCount(const std::string& flag, const std::string& text, uint64_t min) {
  return common::parseCountArg(flag, text, min);
}

double parseFraction(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v > 0 && v < 1))
    throw UsageError(flag + " takes a number in (0, 1), not '" + text + "'");
  return v;
}

double parsePositive(const std::string& flag, const std::string& text) { return common::parsePositiveArg(flag, text); }

std::vector<std::string> splitList(const std::string& flag, const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  if (out.empty()) throw UsageError(flag + " needs at least one name");
  return out;
}

std::vector<std::string> parseLanguages(const std::string& list) {
  auto out = splitList("--languages", list);
  for (size_t i = 0; i < out.size(); ++i) {
    try {
      worker::checkLanguageName(out[i]);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--languages: ") + e.what());
    }
    if (std::find(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(i), out[i]) != out.begin() + static_cast<std::ptrdiff_t>(i))
      throw UsageError("--languages: '" + out[i] + "' given twice");
  }
  return out;
}

ConvergenceVariant findVariant(const std::string& name) {
  std::string known;
  for (const auto& v : convergenceVariants()) {
    if (v.name == name) return v;
    known += (known.empty() ? "" : ", ") + v.name;
  }
  throw UsageError("--variants: unknown variant '" + name + "'; known: " + known);
}

}  // namespace

const char* const kBenchConvergenceTextUsage =
    "usage: tapestry bench convergence --task text [--quick|--full] [--languages en,de,...] [--rounds R]\n"
    "                                  [--local-steps S] [--variants LIST] [--max-bytes N]\n"
    "                                  [--test-limit-bytes N] [--lr X] [--d-model N] [--layers N]\n"
    "                                  [--heads N] [--server-lr L] [--server-momentum M] [--threads N]\n"
    "                                  [--no-baselines] [--out DIR]\n"
    "  One worker per language of Debian's fortunes, a byte-level transformer trained with AdamW.\n"
    "  Bits per byte on every language's held-out text of the final consensus, of a model trained\n"
    "  centrally on the union of the languages and of each language trained alone; the federation's\n"
    "  workers and the language-alone models take R x S steps each, the centralised model K x R x S.\n"
    "  --quick              6 languages, 10 rounds x 25 steps, 200 kB per language, 8 KiB evaluated\n"
    "                       per language, variants fedavg+nesterov, fedprox+nesterov, admm (default)\n"
    "  --full               40 rounds x 100 steps, every fortune, 64 KiB evaluated, every variant\n"
    "  --languages LIST     comma-separated, any the fortunes hold (default en,de,es,it,pl,ru; also bg,\n"
    "                       cs, eo, ga, pt, zh with their fortunes-* packages installed)\n"
    "  --variants LIST      fedavg, fedavg+nesterov, fedavg+adam, fedprox, fedprox+nesterov, easgd,\n"
    "                       easgd+nesterov, admm, admm+nesterov, scaffold\n"
    "  --max-bytes N        fortunes per language, training and held-out together (0: all)\n"
    "  --test-limit-bytes N evaluate on the first N held-out bytes of each language (0: 65536)\n"
    "  --lr X               AdamW learning rate (default 0.002)\n"
    "  --d-model N, --layers N, --heads N\n"
    "                       the transformer's width (default 64), blocks (2) and attention heads (4,\n"
    "                       a divisor of the width), for every model of the run\n"
    "  --server-lr L        learning rate of every server optimizer (nesterov 0.7, adam 0.01 by default)\n"
    "  --server-momentum M  momentum of every nesterov server optimizer, in [0, 1) (default 0.9)\n"
    "  --no-baselines       the federated variants only: no centralised or language-alone models\n"
    "  --out DIR            results.md, results.json, bpb_vs_round.png (default results/convergence-text)\n";

uint64_t TextConvergencePlan::evalBytes() const {
  return test_limit_bytes ? std::min<uint64_t>(test_limit_bytes, worker::kEvalTextBytes) : worker::kEvalTextBytes;
}

TextConvergencePlan parseTextConvergencePlan(const std::vector<std::string>& args) {
  TextConvergencePlan plan;
  plan.fortunes_dir = worker::kFortunesDir;
  plan.languages = worker::fortuneLanguages();
  const TextPreset* preset = &kQuick;
  for (const auto& a : args)
    if (a == "--full") preset = &kFull;
  plan.preset = preset->name;
  plan.rounds = preset->rounds;
  plan.local_steps = preset->local_steps;
  plan.max_bytes = preset->max_bytes;
  plan.test_limit_bytes = preset->test_limit_bytes;
  plan.timeout = std::chrono::seconds(preset->timeout_s);
  if (preset->all_variants) plan.variants = convergenceVariants();
  else
    for (const char* name : kQuickVariants) plan.variants.push_back(findVariant(name));
  plan.model.name = "transformer";
  plan.train.optimizer = worker::InnerOptimizer::kAdamW;
  plan.train.lr = kInnerLr;
  plan.train.weight_decay = kWeightDecay;
  plan.train.batch_size = kBatch;
  plan.train.threads = 1;
  std::optional<double> server_lr, server_momentum;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--quick" || flag == "--full") continue;
    if (flag == "--no-baselines") {
      plan.baselines = false;
      continue;
    }
    if (i + 1 >= args.size()) throw UsageError("unknown option or missing value: " + flag);
    const std::string& value = args[++i];
    if (flag == "--languages") plan.languages = parseLanguages(value);
    else if (flag == "--rounds") plan.rounds = parseCount(flag, value, 1);
    else if (flag == "--local-steps") plan.local_steps = static_cast<int64_t>(parseCount(flag, value, 1));
    else if (flag == "--variants") {
      plan.variants.clear();
      for (const auto& name : splitList(flag, value)) plan.variants.push_back(findVariant(name));
      plan.variants_explicit = true;
    } else if (flag == "--max-bytes") plan.max_bytes = parseCount(flag, value, 0);
    else if (flag == "--test-limit-bytes") plan.test_limit_bytes = parseCount(flag, value, 0);
    else if (flag == "--lr") plan.train.lr = parsePositive(flag, value);
    else if (flag == "--d-model") plan.model.d_model = static_cast<int64_t>(parseCount(flag, value, 1));
    else if (flag == "--layers") plan.model.layers = static_cast<int64_t>(parseCount(flag, value, 1));
    else if (flag == "--heads") plan.model.heads = static_cast<int64_t>(parseCount(flag, value, 1));
    else if (flag == "--server-lr") server_lr = parsePositive(flag, value);
    else if (flag == "--server-momentum") {
      server_momentum = common::parseRealArg(flag, value);
      if (!(*server_momentum >= 0 && *server_momentum < 1))
        throw UsageError("--server-momentum takes a number in [0, 1), not '" + value + "'");
    } else if (flag == "--threads") plan.train.threads = static_cast<int>(parseCount(flag, value, 1));
    else if (flag == "--out") plan.out_dir = value;
    else if (flag == "--val-fraction") plan.val_fraction = parseFraction(flag, value);  // hidden
    else if (flag == "--fortunes") plan.fortunes_dir = value;                          // hidden
    else if (flag == "--work") plan.work_dir = value;                                  // hidden
    else if (flag == "--timeout") plan.timeout = std::chrono::seconds(parseCount(flag, value, 1));  // hidden
    else throw UsageError("unknown option " + flag);
  }
  overrideServer(plan.variants, server_lr, server_momentum);
  if (plan.model.d_model % plan.model.heads != 0)
    throw UsageError("--heads (" + std::to_string(plan.model.heads) + ") must divide --d-model (" +
                     std::to_string(plan.model.d_model) + ")");
  if (plan.out_dir.empty()) plan.out_dir = "results/convergence-text";
  if (plan.work_dir.empty()) plan.work_dir = plan.out_dir + "/work";
  plan.central_threads = std::max(2, plan.train.threads);
  return plan;
}

std::string describeTextPlan(const TextConvergencePlan& p) {
  const int64_t per_worker = static_cast<int64_t>(p.rounds) * p.local_steps;
  std::ostringstream out;
  out << "== tapestry bench convergence --task text (" << p.preset << "): " << p.workers() << " workers, one per language (";
  for (size_t i = 0; i < p.languages.size(); ++i) out << (i ? "," : "") << p.languages[i];
  out << "), " << p.rounds << " rounds x " << p.local_steps << " local steps"
      << "\n   model " << p.model.toJson().dump() << ", AdamW lr " << p.train.lr << " betas " << p.train.beta1 << "/"
      << p.train.beta2 << " weight decay " << p.train.weight_decay << ", batch " << p.train.batch_size << " x "
      << p.model.context << " bytes"
      << "\n   lr " << kInnerLr << " by default (not tuned): upper half of the usual 1e-3..3e-3 for this model size,"
      << "\n   for a short budget without warm-up, below the top because the Nesterov outer step amplifies it"
      << "\n   fortunes: " << (p.max_bytes ? std::to_string(p.max_bytes) + " bytes" : std::string("all"))
      << " per language, " << p.val_fraction * 100 << "% held out; evaluated on the first " << p.evalBytes()
      << " held-out bytes of each language"
      << "\n   steps: " << per_worker << " per federated worker and per language-alone model, "
      << per_worker * static_cast<int64_t>(p.workers()) << " for the centralised model (same sample passes)"
      << "\n   variants:";
  for (const auto& v : p.variants) {
    out << "\n     " << v.name << ": " << v.algorithm;
    if (v.algorithm != "fedavg") out << " rho " << v.rho;
    out << ", server " << v.server;
    if (v.server == "nesterov") out << " lr " << v.server_lr << " momentum " << v.momentum;
    if (v.server == "adam") out << " lr " << v.server_lr << " betas " << v.beta1 << "/" << v.beta2;
  }
  out << "\n   output: " << p.out_dir << "\n";
  return out.str();
}

ConvergencePlan coordinatorPlanFor(const TextConvergencePlan& p) {
  ConvergencePlan c;
  c.workers = p.workers();
  c.rounds = p.rounds;
  c.local_steps = p.local_steps;
  c.init_seed = p.init_seed;
  c.model = p.model;
  return c;
}

uint64_t textDataSeed(const TextConvergencePlan& plan, size_t k) { return plan.train.data_seed + 10 + k; }

nlohmann::json textWorkerConfigFor(const TextConvergencePlan& plan, size_t k, const std::string& pki,
                                   const std::string& shards) {
  std::string name = "worker-" + std::to_string(k);
  nlohmann::json j = {
      {"name", name},
      {"coordinator", {{"port_file", "state/coordinator.port"}}},
      {"tls", {{"ca", pki + "/ca/ca.crt"}, {"cert", pki + "/" + name + ".crt"}, {"key", pki + "/" + name + ".key"}}},
      {"data", {{"shard", shards + "/" + plan.languages.at(k)}}},
      {"state_dir", "state/" + name},
      {"model", plan.model.toJson()},
      {"train",
       {{"optimizer", "adamw"},
        {"lr", plan.train.lr},
        {"beta1", plan.train.beta1},
        {"beta2", plan.train.beta2},
        {"epsilon", plan.train.epsilon},
        {"weight_decay", plan.train.weight_decay},
        {"batch_size", plan.train.batch_size},
        {"data_seed", textDataSeed(plan, k)},
        {"threads", plan.train.threads}}}};
  if (k == 0) j["audit_dir"] = "audit";
  return j;
}

}  // namespace tapestry::tools
