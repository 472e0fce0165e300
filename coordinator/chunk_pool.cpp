#include "coordinator/chunk_pool.h"

#include <stdexcept>
#include <utility>

namespace tapestry::coordinator {

ChunkPool::ChunkPool(size_t capacity) : buffers_(capacity) {
  if (capacity == 0) throw std::invalid_argument("ChunkPool needs at least one buffer");
}

uint8_t* ChunkPool::acquire(size_t bytes) {
  for (Buffer& b : buffers_) {
    if (b.lent) continue;
    const size_t floats = (bytes + sizeof(float) - 1) / sizeof(float);
    if (b.storage.size() < floats) b.storage.resize(floats);
    b.lent = true;
    return reinterpret_cast<uint8_t*>(b.storage.data());
  }
  return nullptr;
}

void ChunkPool::release(uint8_t* buffer) {
  for (Buffer& b : buffers_) {
    if (b.lent && reinterpret_cast<uint8_t*>(b.storage.data()) == buffer) {
      b.lent = false;
      auto waiters = std::exchange(waiters_, {});
      for (auto& wake : waiters) wake();
      return;
    }
  }
  throw std::logic_error("ChunkPool::release of a buffer it did not lend");
}

void ChunkPool::waitForRelease(std::function<void()> wake) { waiters_.push_back(std::move(wake)); }

size_t ChunkPool::inUse() const {
  size_t n = 0;
  for (const Buffer& b : buffers_) n += b.lent ? 1 : 0;
  return n;
}

size_t ChunkPool::bytesHeld() const {
  size_t n = 0;
  for (const Buffer& b : buffers_) n += b.storage.size() * sizeof(float);
  return n;
}

}  // namespace tapestry::coordinator
