#pragma once
// A fixed set of helper threads that run one job at a time, split into
// parts. The calling thread runs part 0 itself and returns when every part is
// done, so a job costs one wake-up and one barrier and no allocation: that
// keeps per-chunk parallelism cheap enough for the aggregation hot path.
// One caller at a time; helpers live as long as the pool.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tapestry::coordinator::cpu {

class ThreadPool {
 public:
  // `threads` counts the caller: threads = 1 starts no helper; 0 = one per hardware thread.
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned threads() const { return static_cast<unsigned>(helpers_.size()) + 1; }

  // Runs job(part) for every part in [0, parts), parts <= threads(); rethrows
  // the first exception a part threw once all parts have finished.
  void run(unsigned parts, const std::function<void(unsigned)>& job);

 private:
  void helperLoop(unsigned part);

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(unsigned)>* job_ = nullptr;
  unsigned parts_ = 0;
  uint64_t generation_ = 0;
  unsigned pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> helpers_;
};

}  // namespace tapestry::coordinator::cpu
