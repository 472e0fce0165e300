// The shared chunk buffers: never more lent than the capacity, waiters are
// woken by a release, and memory held stays capacity x the largest chunk.
#include "coordinator/chunk_pool.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace tapestry::coordinator {
namespace {

TEST(ChunkPool, LendsAtMostItsCapacityAndWakesWaitersOnRelease) {
  ChunkPool pool(2);
  uint8_t* a = pool.acquire(1000);
  uint8_t* b = pool.acquire(4000);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_EQ(pool.acquire(10), nullptr) << "a third session must wait";
  int woken = 0;
  pool.waitForRelease([&] { ++woken; });
  pool.waitForRelease([&] { ++woken; });
  pool.release(a);
  EXPECT_EQ(woken, 2) << "every waiter re-tries";
  EXPECT_NE(pool.acquire(10), nullptr);
  pool.release(b);
  EXPECT_EQ(woken, 2) << "a waiter is woken once";
  EXPECT_EQ(pool.inUse(), 1u);
}

TEST(ChunkPool, MemoryIsCapacityTimesTheLargestChunk) {
  ChunkPool pool(3);
  for (int round = 0; round < 50; ++round) {
    uint8_t* held[3];
    for (auto& h : held) h = pool.acquire(1 << 16);
    for (auto& h : held) pool.release(h);
  }
  EXPECT_LE(pool.bytesHeld(), 3u << 16);
  EXPECT_GE(pool.bytesHeld(), 3u << 16);
}

TEST(ChunkPool, ReleasingAForeignBufferIsALogicError) {
  ChunkPool pool(1);
  uint8_t stray[4];
  EXPECT_THROW(pool.release(stray), std::logic_error);
  EXPECT_THROW(ChunkPool(0), std::invalid_argument);
}

}  // namespace
}  // namespace tapestry::coordinator
