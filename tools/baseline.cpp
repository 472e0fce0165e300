#include "tools/baseline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <thread>

namespace tapestry::tools {

namespace {

bool finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// Trains `steps` steps in pieces of `piece`. A piece whose parameters end
// non-finite is undone the way a federated member recovers (the parameters
// of the piece's start, a fresh optimizer, the data cursor moving on), so a
// baseline that blows up late is compared at its best rather than at chance.
BaselineResult trainAndTrack(worker::Trainer& trainer, const std::string& name, int64_t steps,
                             const worker::Dataset& test, int64_t eval_every, const char* metric, bool progress) {
  BaselineResult result{name, 0, {}, 0};
  int64_t piece = eval_every > 0 ? eval_every : steps;
  auto start = std::chrono::steady_clock::now();
  std::vector<float> good = trainer.state().parameters;
  if (eval_every > 0) result.curve.push_back(trainer.evaluate(test));
  for (int64_t done = 0; done < steps;) {
    int64_t n = std::min(piece, steps - done);
    trainer.train(n, nullptr, 0.0);
    done += n;
    worker::TrainerState s = trainer.state();
    if (!finite(s.parameters)) {
      ++result.restarts;
      std::fprintf(stderr, "WARN %s: training diverged (parameters not finite) between steps %lld and %lld; "
                   "restarting from step %lld's parameters with a fresh optimizer state\n", name.c_str(),
                   static_cast<long long>(done - n), static_cast<long long>(done), static_cast<long long>(done - n));
      s.parameters = good;
      std::fill(s.momentum.begin(), s.momentum.end(), 0.0f);
      std::fill(s.second_moment.begin(), s.second_moment.end(), 0.0f);
      s.optimizer_steps = 0;
      trainer.restore(s);
    } else {
      good = std::move(s.parameters);
    }
    if (eval_every > 0 && n == eval_every) {
      result.curve.push_back(trainer.evaluate(test));
      if (progress) {
        double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("   %s: step %lld/%lld, test %s %.4f, %.0f s\n", name.c_str(), static_cast<long long>(done),
                    static_cast<long long>(steps), metric, result.curve.back(), elapsed);
        std::fflush(stdout);
      }
    }
  }
  bool last_evaluated = eval_every > 0 && steps % eval_every == 0 && !result.curve.empty();
  result.test_accuracy = last_evaluated ? result.curve.back() : trainer.evaluate(test);
  return result;
}

}  // namespace

std::vector<BaselineResult> runLocalBaselines(const std::vector<worker::WorkerConfig>& workers, uint64_t init_seed,
                                              int64_t steps, const worker::Dataset& test, int64_t eval_every) {
  std::vector<BaselineResult> results(workers.size());
  std::vector<std::exception_ptr> errors(workers.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < workers.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        const auto& w = workers[i];
        worker::Shard shard = worker::loadShard(w.shard_dir);
        worker::Trainer trainer(w.model, init_seed, std::move(shard.train), w.train);
        results[i] = trainAndTrack(trainer, w.name, steps, test, eval_every, worker::metricName(w.model), false);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return results;
}

BaselineResult runCentralisedBaseline(const std::vector<worker::WorkerConfig>& workers, uint64_t init_seed,
                                      int64_t steps, const worker::TrainSettings& settings,
                                      const worker::Dataset& test, int64_t eval_every) {
  if (workers.empty()) throw std::invalid_argument("the centralised baseline needs at least one worker's shard");
  worker::Dataset all;
  std::string text;
  for (const auto& w : workers) {
    if (w.model.toJson() != workers[0].model.toJson())
      throw std::invalid_argument(w.name + " trains " + w.model.toJson().dump() + " but " + workers[0].name +
                                  " trains " + workers[0].model.toJson().dump() + "; give every worker one model");
    worker::Shard shard = worker::loadShard(w.shard_dir);
    if (shard.train.isText()) {
      text += shard.train.text;
      continue;
    }
    if (all.labels.empty()) {
      all.rows = shard.train.rows;
      all.cols = shard.train.cols;
    } else if (shard.train.rows != all.rows || shard.train.cols != all.cols) {
      throw std::invalid_argument("the shard of " + w.name + " holds images of another size than the others");
    }
    all.images.insert(all.images.end(), shard.train.images.begin(), shard.train.images.end());
    all.labels.insert(all.labels.end(), shard.train.labels.begin(), shard.train.labels.end());
  }
  if (!text.empty()) {
    if (!all.labels.empty()) throw std::invalid_argument("the shards mix text and images; partition them again");
    all = worker::Dataset::fromText(std::move(text));
  }
  worker::Trainer trainer(workers[0].model, init_seed, std::move(all), settings);
  return trainAndTrack(trainer, "centralised", steps, test, eval_every, worker::metricName(workers[0].model), true);
}

}  // namespace tapestry::tools
