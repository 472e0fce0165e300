#pragma once
// A fixed number of chunk-sized receive buffers shared by every session, so
// the coordinator's memory for chunks in flight is capacity x chunk bytes
// whatever the number of workers. A session that finds none free stops
// reading its socket (TCP then slows the worker down) and is woken when one
// is returned. Single io thread: no locks.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace tapestry::coordinator {

class ChunkPool {
 public:
  explicit ChunkPool(size_t capacity);

  // A buffer of at least `bytes` (float-aligned), or null when all are lent.
  uint8_t* acquire(size_t bytes);
  void release(uint8_t* buffer);
  // Calls `wake` (once) after the next release. Waiters re-try acquire(); as
  // every waiter is woken, one that has gone away costs nothing.
  void waitForRelease(std::function<void()> wake);

  size_t capacity() const { return buffers_.size(); }
  size_t inUse() const;
  size_t bytesHeld() const;  // memory the pool holds now

 private:
  struct Buffer {
    std::vector<float> storage;
    bool lent = false;
  };
  std::vector<Buffer> buffers_;
  std::vector<std::function<void()>> waiters_;
};

}  // namespace tapestry::coordinator
