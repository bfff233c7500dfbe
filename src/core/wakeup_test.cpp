#include "core/wakeup.h"

#include <chrono>
#include <stop_token>
#include <thread>

#include <gtest/gtest.h>

namespace freshframe {
namespace {

using namespace std::chrono_literals;

TEST(WakeupTest, WaitTimesOutWithoutNotify) {
  Wakeup wakeup;
  EXPECT_EQ(wakeup.WaitChanged(wakeup.count(), 10ms), 0U);
}

TEST(WakeupTest, NotifyBeforeTheWaitIsNotLost) {
  Wakeup wakeup;
  const uint64_t seen = wakeup.count();
  wakeup.Notify();  // between reading the count and waiting
  wakeup.Notify();  // coalesces with the first
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(wakeup.WaitChanged(seen, 10s), 2U);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(WakeupTest, NotifyFromAnotherThreadWakesTheWaiter) {
  Wakeup wakeup;
  const uint64_t seen = wakeup.count();
  std::thread notifier([&] {
    std::this_thread::sleep_for(20ms);
    wakeup.Notify();
  });
  EXPECT_EQ(wakeup.WaitChanged(seen, 10s), seen + 1);
  notifier.join();
}

TEST(WakeupTest, StopRequestEndsTheWait) {
  Wakeup wakeup;
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(wakeup.WaitChanged(0, 10s, stop.get_token()), 0U);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  stopper.join();
}

}  // namespace
}  // namespace freshframe
