#pragma once
// One background thread for checkpoint writes, so that the io thread keeps
// serving sessions (and streaming the new consensus) while the disk works.
// Jobs run one at a time in the order posted; the destructor waits for the
// ones already queued, so a checkpoint is never abandoned half written.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace tapestry::coordinator {

class DiskWriter {
 public:
  DiskWriter();
  ~DiskWriter();
  DiskWriter(const DiskWriter&) = delete;
  DiskWriter& operator=(const DiskWriter&) = delete;

  void post(std::function<void()> job);

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tapestry::coordinator
