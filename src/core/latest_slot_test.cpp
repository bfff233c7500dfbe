#include "core/latest_slot.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace freshframe {
namespace {

using namespace std::chrono_literals;

TEST(LatestSlotTest, EmptySlotTimesOut) {
  LatestSlot<int> slot;
  EXPECT_FALSE(slot.Latest().has_value());
  EXPECT_FALSE(slot.WaitNewer(0, 10ms).has_value());
}

TEST(LatestSlotTest, ConsumerGetsNewestNotOldest) {
  LatestSlot<int> slot;
  slot.Publish(1);
  slot.Publish(2);
  slot.Publish(3);
  auto got = slot.WaitNewer(0, 10ms);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->value, 3);
  EXPECT_EQ(got->version, 3U);
  // Nothing newer than what was seen: waits, then times out.
  EXPECT_FALSE(slot.WaitNewer(got->version, 10ms).has_value());
}

TEST(LatestSlotTest, WaiterWakesOnPublish) {
  LatestSlot<int> slot;
  std::thread producer([&] {
    std::this_thread::sleep_for(20ms);
    slot.Publish(42);
  });
  auto got = slot.WaitNewer(0, 5s);
  producer.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->value, 42);
}

TEST(LatestSlotTest, CloseWakesWaitersAndDropsPublishes) {
  LatestSlot<int> slot;
  std::thread closer([&] {
    std::this_thread::sleep_for(20ms);
    slot.Close();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(slot.WaitNewer(0, 10s).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  closer.join();
  EXPECT_EQ(slot.Publish(1), 0U);
  EXPECT_TRUE(slot.closed());
}

// Several producers publish increasing values; several consumers must never
// see a version or a value go backwards, and must always be woken while
// producers run (no lost wake-ups: every wait here ends long before its
// generous timeout). Run under TSan by the tsan preset.
TEST(LatestSlotTest, ConcurrentProducersAndConsumersNeverSeeStaleValues) {
  struct Item {
    int producer;
    int count;
  };
  LatestSlot<Item> slot;
  constexpr int kProducers = 3;
  constexpr int kConsumers = 4;
  constexpr int kPerProducer = 20000;
  std::atomic<int> producers_done{0};
  std::atomic<bool> failed{false};
  std::atomic<uint64_t> lost_wakeups{0};

  std::vector<std::thread> threads;
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&] {
      uint64_t last_version = 0;
      std::vector<int> last_count(kProducers, -1);
      while (producers_done.load() < kProducers) {
        auto got = slot.WaitNewer(last_version, 2s);
        if (!got) {
          if (producers_done.load() < kProducers) lost_wakeups.fetch_add(1);
          continue;
        }
        if (got->version <= last_version) failed = true;
        last_version = got->version;
        // Per producer, values only grow: a value published earlier never
        // shows up after a later one from the same producer was seen.
        if (got->value.count < last_count[static_cast<size_t>(got->value.producer)]) failed = true;
        last_count[static_cast<size_t>(got->value.producer)] = got->value.count;
      }
    });
  }
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) slot.Publish(Item{p, i});
      producers_done.fetch_add(1);
      slot.Publish(Item{p, kPerProducer});  // wake consumers to see "done"
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(failed.load());
  EXPECT_EQ(lost_wakeups.load(), 0U);
  EXPECT_EQ(slot.version(), static_cast<uint64_t>(kProducers) * (kPerProducer + 1));
}

TEST(LatestSlotTest, ObserverIsNotifiedOnEveryPublishAndCloseUntilRemoved) {
  LatestSlot<int> slot;
  Wakeup wakeup;
  slot.Publish(1);  // before AddObserver: not seen
  slot.AddObserver(&wakeup);
  EXPECT_EQ(wakeup.count(), 0U);
  slot.Publish(2);
  slot.Publish(3);
  EXPECT_EQ(wakeup.count(), 2U);
  slot.RemoveObserver(&wakeup);
  slot.Publish(4);
  EXPECT_EQ(wakeup.count(), 2U);
  slot.RemoveObserver(&wakeup);  // not registered: nothing happens
  slot.AddObserver(&wakeup);
  slot.Close();
  EXPECT_EQ(wakeup.count(), 3U);
  EXPECT_EQ(slot.Publish(5), 0U);  // dropped after Close: no notification
  EXPECT_EQ(wakeup.count(), 3U);
  slot.RemoveObserver(&wakeup);
}

TEST(LatestSlotTest, OneWakeupObservesManySlots) {
  LatestSlot<int> first;
  LatestSlot<int> second;
  Wakeup wakeup;
  first.AddObserver(&wakeup);
  second.AddObserver(&wakeup);
  const uint64_t seen = wakeup.count();
  std::thread producer([&] {
    std::this_thread::sleep_for(20ms);
    second.Publish(7);
  });
  // Woken by the second slot, long before the timeout.
  EXPECT_NE(wakeup.WaitChanged(seen, 10s), seen);
  producer.join();
  EXPECT_EQ(second.version(), 1U);
  first.RemoveObserver(&wakeup);
  second.RemoveObserver(&wakeup);
}

// A producer publishes without pause while observers come and go, each
// destroyed right after RemoveObserver: under ASan or TSan a notification of
// a removed observer is a use after free.
TEST(LatestSlotTest, RemovedObserverMayBeDestroyedAtOnce) {
  LatestSlot<int> slot;
  std::atomic<bool> done{false};
  std::thread producer([&] {
    int i = 0;
    while (!done.load()) slot.Publish(++i);
  });
  // Overlap with the producer: at least 2000 rounds and 2000 publishes.
  for (int round = 0; round < 2000 || slot.version() < 2000; ++round) {
    auto wakeup = std::make_unique<Wakeup>();
    slot.AddObserver(wakeup.get());
    if (round % 2 == 0) std::this_thread::yield();  // let some publishes notify it
    slot.RemoveObserver(wakeup.get());
    wakeup.reset();
  }
  done = true;
  producer.join();
}

}  // namespace
}  // namespace freshframe
