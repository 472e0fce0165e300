#include "tools/bench_overhead.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <vector>

#include "tools/bench_overhead_federated.h"
#include "tools/bench_support.h"
#include "worker/ml/model_impl.h"
#include "worker/ml/random.h"
#include "worker/ml/trainer.h"

namespace tapestry::tools {

namespace {

using Clock = std::chrono::steady_clock;

const char* kUsage =
    "usage: tapestry bench overhead [--model NAME | --model-json JSON] [--steps N] [--batch B] [--repeats R]\n"
    "                               [--limit N] [--data DIR] [--threads T]\n"
    "  --model NAME       image model: cnn or mlp (default cnn)\n"
    "  --model-json JSON  a full model spec instead, e.g. '{\"name\":\"mlp\",\"hidden\":500}'\n"
    "  --steps N          steps per timed loop (default 300)\n"
    "  --batch B          mini-batch size (default 64)\n"
    "  --repeats R        timed loops of each kind, alternating (default 5)\n"
    "  --limit N          use the first N training images (default: all 60000)\n"
    "  --data DIR         Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)\n"
    "  --threads T        torch intra-op threads for both loops (default 1)\n"
    "  --fed-rounds R     then the real tapestry-worker against the real coordinator, R rounds of --steps\n"
    "                     each, synchronous and with transfer.overlap (default 6; 0 skips it)\n"
    "  --bin-dir DIR      where tapestry-coordinator and tapestry-worker are (default: next to this one)\n";

struct OverheadPlan {
  worker::ModelSpec spec;
  int64_t steps = 300;
  int64_t batch = 64;
  int repeats = 5;
  size_t limit = 0;
  std::string data = worker::kFashionMnistDir;
  int threads = 1;
  double lr = 0.01, momentum = 0.9, rho = 0.01;
  uint64_t seed = 1;
  uint64_t fed_rounds = 6;
  std::string bin_dir;
};

// The plain LibTorch loop: torch::optim::SGD with momentum over the network's
// own parameter tensors, walking the same per-epoch permutation as the Trainer
// (seededEngine(data_seed, epoch)) with the same batch building.
class PlainLoop {
 public:
  PlainLoop(const OverheadPlan& plan, const worker::ImageDataset& data)
      : plan_(plan), data_(data), optimizer_(makeNet(plan), torch::optim::SGDOptions(plan.lr).momentum(plan.momentum)) {}

  double run(int64_t steps) {
    double loss_sum = 0;
    for (int64_t s = 0; s < steps; ++s) {
      if (order_epoch_ != epoch_) reshuffle();
      const uint64_t taken = std::min<uint64_t>(static_cast<uint64_t>(plan_.batch), data_.size() - position_);
      const size_t* idx = order_.data() + position_;
      optimizer_.zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(net_->forward(worker::inputBatch(data_, idx, 0, taken)),
                                                                worker::labelBatch(data_, idx, 0, taken));
      loss.backward();
      optimizer_.step();
      loss_sum += loss.item<double>();
      position_ += taken;
      if (position_ >= data_.size()) {
        position_ = 0;
        ++epoch_;
      }
    }
    return loss_sum / static_cast<double>(steps);
  }

 private:
  std::vector<torch::Tensor> makeNet(const OverheadPlan& plan) {
    torch::manual_seed(plan.seed);
    net_ = worker::buildNetwork(plan.spec);
    return net_->parameters();
  }

  void reshuffle() {
    order_.resize(data_.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    std::mt19937_64 rng = worker::seededEngine(plan_.seed, epoch_);
    worker::shuffleInPlace(order_, rng);
    order_epoch_ = epoch_;
  }

  const OverheadPlan& plan_;
  const worker::ImageDataset& data_;
  torch::nn::Sequential net_{nullptr};
  torch::optim::SGD optimizer_;
  std::vector<size_t> order_;
  uint64_t epoch_ = 0, position_ = 0, order_epoch_ = UINT64_MAX;
};

double millisPerStep(Clock::time_point start, int64_t steps) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / static_cast<double>(steps);
}

int runOverhead(const OverheadPlan& plan) {
  worker::ImageDataset data = worker::loadFashionMnist(plan.data, true);
  if (plan.limit && plan.limit < data.size()) {
    std::vector<size_t> first(plan.limit);
    for (size_t i = 0; i < first.size(); ++i) first[i] = i;
    data = worker::subset(data, first);
  }
  torch::set_num_threads(plan.threads);
  std::printf("== tapestry bench overhead: model %s, %zu training images, batch %lld, %lld steps x %d repeats of "
              "each loop (alternating), %d torch thread(s)\n",
              plan.spec.toJson().dump().c_str(), data.size(), static_cast<long long>(plan.batch),
              static_cast<long long>(plan.steps), plan.repeats, plan.threads);

  worker::TrainSettings settings;
  settings.lr = plan.lr;
  settings.momentum = plan.momentum;
  settings.batch_size = plan.batch;
  settings.data_seed = plan.seed;
  settings.threads = plan.threads;
  worker::Trainer trainer(plan.spec, plan.seed, data, settings);
  std::vector<float> consensus(trainer.parameterCount());
  trainer.parameters(consensus.data());
  PlainLoop plain(plan, data);

  // Warm-up: allocator, kernels' first calls, caches.
  const int64_t warmup = std::max<int64_t>(10, plan.steps / 10);
  trainer.train(warmup, consensus.data(), plan.rho);
  plain.run(warmup);

  std::vector<double> tapestry_ms, plain_ms, ratios;
  double tapestry_loss = 0, plain_loss = 0;
  for (int r = 0; r < plan.repeats; ++r) {
    double t = 0, p = 0;
    for (int half = 0; half < 2; ++half) {
      const bool tapestry_turn = (half == 0) == (r % 2 == 0);
      const auto start = Clock::now();
      if (tapestry_turn) {
        tapestry_loss = trainer.train(plan.steps, consensus.data(), plan.rho);
        t = millisPerStep(start, plan.steps);
      } else {
        plain_loss = plain.run(plan.steps);
        p = millisPerStep(start, plan.steps);
      }
    }
    tapestry_ms.push_back(t);
    plain_ms.push_back(p);
    ratios.push_back(t / p);
    std::printf("repeat %d: tapestry %.3f ms/step, plain %.3f ms/step, ratio %.3f\n", r + 1, t, p, t / p);
    std::fflush(stdout);
  }
  const double t = median(tapestry_ms), p = median(plain_ms);
  std::printf("tapestry (Trainer::train, rho %.3g, flat parameters, SGD momentum): %.3f ms/step (median), mean loss "
              "of the last loop %.4f\n",
              plan.rho, t, tapestry_loss);
  std::printf("plain LibTorch (torch::optim::SGD momentum): %.3f ms/step (median), mean loss of the last loop %.4f\n", p,
              plain_loss);
  std::printf("ratio tapestry / plain: %.3f (median of repeat ratios %.3f; target <= 1.03)\n", t / p, median(ratios));
  if (plan.fed_rounds == 0) return 0;

  FederatedOverheadPlan fed;
  fed.spec = plan.spec;
  fed.data_dir = plan.data;
  fed.limit = plan.limit;
  fed.steps = plan.steps;
  fed.batch = plan.batch;
  fed.threads = plan.threads;
  fed.lr = plan.lr;
  fed.momentum = plan.momentum;
  fed.rho = plan.rho;
  fed.seed = plan.seed;
  fed.rounds = plan.fed_rounds;
  fed.bin_dir = plan.bin_dir;
  std::printf("== the whole worker: tapestry-worker against tapestry-coordinator over loopback TLS, easgd rho %.3g, "
              "1 member, %llu rounds of %lld steps (the first 2 untimed)\n",
              plan.rho, static_cast<unsigned long long>(plan.fed_rounds), static_cast<long long>(plan.steps));
  std::fflush(stdout);
  const FederatedStepTime sync = federatedStepTime(fed, false);
  std::printf("worker, synchronous rounds: %.3f ms/step (median of %zu rounds; %.1f%% of it waiting for the "
              "consensus)\n",
              sync.ms_per_step, sync.rounds_timed, 100 * sync.idle_fraction);
  std::fflush(stdout);
  const FederatedStepTime overlap = federatedStepTime(fed, true);
  std::printf("worker, transfer.overlap: %.3f ms/step (median of %zu rounds; %.1f%% of it waiting)\n",
              overlap.ms_per_step, overlap.rounds_timed, 100 * overlap.idle_fraction);
  // The plain loop again, now that the machine has run the federation.
  std::vector<double> plain_after;
  for (int r = 0; r < 2; ++r) {
    const auto start = Clock::now();
    plain.run(plan.steps);
    plain_after.push_back(millisPerStep(start, plan.steps));
  }
  const double reference = 0.5 * (p + median(plain_after));
  std::printf("plain LibTorch, measured again after: %.3f ms/step; reference for the ratios (mean of before and "
              "after): %.3f ms/step\n",
              median(plain_after), reference);
  std::printf("ratio worker (synchronous) / plain: %.3f\n", sync.ms_per_step / reference);
  std::printf("ratio worker (overlap) / plain: %.3f (target <= 1.03)\n", overlap.ms_per_step / reference);
  return 0;
}

}  // namespace

int runBenchOverheadCommand(const std::vector<std::string>& args) {
  OverheadPlan plan;
  try {
    BenchArgs a(args, {"--model", "--model-json", "--steps", "--batch", "--repeats", "--limit", "--data", "--threads",
                       "--fed-rounds", "--bin-dir"});
    if (a.help()) {
      std::cout << kUsage;
      return 0;
    }
    if (auto v = a.get("--model-json")) plan.spec = worker::ModelSpec::fromJson(nlohmann::json::parse(*v));
    else if (auto m = a.get("--model")) plan.spec = worker::ModelSpec::fromJson({{"name", *m}});
    if (worker::isLanguageModel(plan.spec))
      throw std::invalid_argument("--model: the overhead bench runs image models (cnn, mlp) on Fashion-MNIST");
    if (auto v = a.get("--steps")) plan.steps = static_cast<int64_t>(parseCount(*v, "--steps"));
    if (auto v = a.get("--batch")) plan.batch = static_cast<int64_t>(parseCount(*v, "--batch"));
    if (auto v = a.get("--repeats")) plan.repeats = static_cast<int>(parseCount(*v, "--repeats"));
    if (auto v = a.get("--limit")) plan.limit = parseCount(*v, "--limit");
    if (auto v = a.get("--threads")) plan.threads = static_cast<int>(parseCount(*v, "--threads"));
    plan.data = a.get("--data").value_or(plan.data);
    if (auto v = a.get("--fed-rounds")) plan.fed_rounds = *v == "0" ? 0 : parseCount(*v, "--fed-rounds");
    if (plan.fed_rounds != 0 && plan.fed_rounds < 3)
      throw std::invalid_argument("--fed-rounds must be 0 (skip) or at least 3: the first two rounds are not timed");
    plan.bin_dir = a.get("--bin-dir").value_or("");
  } catch (const std::exception& e) {
    std::cerr << "tapestry bench overhead: " << e.what() << "\n" << kUsage;
    return 2;
  }
  try {
    return runOverhead(plan);
  } catch (const std::exception& e) {
    std::cerr << "tapestry bench overhead failed: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::tools
