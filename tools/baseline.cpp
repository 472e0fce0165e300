#include "tools/baseline.h"

#include <exception>
#include <thread>

#include "worker/ml/trainer.h"

namespace tapestry::tools {

std::vector<BaselineResult> runLocalBaselines(const std::vector<worker::WorkerConfig>& workers, uint64_t init_seed,
                                              int64_t steps, const worker::ImageDataset& test) {
  std::vector<BaselineResult> results(workers.size());
  std::vector<std::exception_ptr> errors(workers.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < workers.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        const auto& w = workers[i];
        worker::Shard shard = worker::loadShard(w.shard_dir);
        worker::Trainer trainer(w.model, init_seed, std::move(shard.train), w.train);
        trainer.train(steps, nullptr, 0.0);
        results[i] = {w.name, trainer.evaluate(test)};
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

}  // namespace tapestry::tools
