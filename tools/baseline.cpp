#include "tools/baseline.h"

#include <exception>
#include <stdexcept>
#include <thread>

namespace tapestry::tools {

namespace {

BaselineResult trainAndTrack(worker::Trainer& trainer, const std::string& name, int64_t steps,
                             const worker::Dataset& test, int64_t eval_every) {
  BaselineResult result{name, 0, {}};
  if (eval_every > 0) {
    result.curve.push_back(trainer.evaluate(test));
    for (int64_t done = eval_every; done <= steps; done += eval_every) {
      trainer.train(eval_every, nullptr, 0.0);
      result.curve.push_back(trainer.evaluate(test));
    }
    if (int64_t rest = steps % eval_every; rest > 0) trainer.train(rest, nullptr, 0.0);
  } else {
    trainer.train(steps, nullptr, 0.0);
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
        results[i] = trainAndTrack(trainer, w.name, steps, test, eval_every);
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
  return trainAndTrack(trainer, "centralised", steps, test, eval_every);
}

}  // namespace tapestry::tools
