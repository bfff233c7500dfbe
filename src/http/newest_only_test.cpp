#include "http/newest_only.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

namespace freshframe::http {
namespace {

struct Item {
  uint64_t order = 0;
};
using Items = NewestOnly<Item, &Item::order>;

std::shared_ptr<const Item> MakeItem(uint64_t order) {
  return std::make_shared<const Item>(Item{order});
}

TEST(ServerNewestOnlyTest, KeepsOnlyTheNewestWaitingAndCountsSkips) {
  Items items;
  auto first = MakeItem(1);
  ASSERT_TRUE(items.IsNew(first));
  items.Begin(first);
  EXPECT_TRUE(items.busy());
  items.Hold(MakeItem(2));
  items.Hold(MakeItem(4));
  items.Hold(MakeItem(3));  // older than the one waiting: ignored
  EXPECT_EQ(items.Finish(), 0U);
  auto next = items.TakePending();
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->order, 4U);
  items.Begin(next);
  EXPECT_FALSE(items.IsNew(MakeItem(4)));  // in flight
  EXPECT_EQ(items.Finish(), 2U);           // 2 and 3 were skipped
  EXPECT_FALSE(items.IsNew(MakeItem(3)));
  EXPECT_TRUE(items.IsNew(MakeItem(5)));
  // Beginning a newer item drops an older one waiting.
  items.Hold(MakeItem(6));
  items.Begin(MakeItem(7));
  EXPECT_EQ(items.TakePending(), nullptr);
}

// Frames every `source_us` (with +-jitter_us), a client capped at `fps`
// following PartSession's rules; instant writes. Returns the send times.
std::vector<int64_t> Simulate(double fps, int64_t source_us, int64_t jitter_us, int64_t span_us) {
  RateCap rate(fps);
  std::vector<int64_t> sends;
  int64_t held_deadline = -1;  // a part waits until then; -1: none
  for (int64_t k = 0;; ++k) {
    const int64_t jitter = jitter_us == 0 ? 0 : (k * 7919) % (2 * jitter_us + 1) - jitter_us;
    const int64_t now = 1'000'000 + k * source_us + jitter;
    if (now > span_us + 1'000'000) break;
    if (held_deadline >= 0 && held_deadline <= now) {  // the timer fired first
      rate.Sent(held_deadline);
      sends.push_back(held_deadline);
      held_deadline = -1;
    }
    if (rate.Due(now)) {
      rate.Sent(now);
      sends.push_back(now);
      held_deadline = -1;
    } else {
      held_deadline = rate.deadline_us();
    }
  }
  return sends;
}

TEST(ServerRateCapTest, CapsTheAverageOnSendTimes) {
  const auto sends = Simulate(10, 33'333, 0, 10'000'000);  // 30 fps source, 10 s
  EXPECT_GE(sends.size(), 99U);
  EXPECT_LE(sends.size(), 101U);
  for (size_t i = 1; i < sends.size(); ++i) {
    EXPECT_GE(sends[i] - sends[i - 1], 50'000) << i;  // never a burst
  }
}

TEST(ServerRateCapTest, ACapAtTheSourceRateKeepsEveryJitteryFrame) {
  const auto sends = Simulate(30, 33'333, 4'000, 10'000'000);
  EXPECT_GE(sends.size(), 295U);  // ~300 frames
  EXPECT_LE(sends.size(), 301U);
}

TEST(ServerRateCapTest, NoCapSendsEverything) {
  RateCap rate(0);
  EXPECT_TRUE(rate.Due(0));
  rate.Sent(5);
  EXPECT_TRUE(rate.Due(6));
}

// An SSE session whose last write completed after it ended used to re-arm
// its keep-alive (15 s), and the handler's reference kept the session, and
// with it the client's places in the limits, for that long.
TEST(ServerDeadlineTimerTest, ArmAfterCloseHoldsNothing) {
  boost::asio::io_context io;
  DeadlineTimer timer(io.get_executor());
  bool ran = false;
  auto owner = std::make_shared<int>(0);
  const std::weak_ptr<int> watch = owner;
  timer.Arm(std::chrono::hours(1), [owner, &ran] { ran = true; });
  timer.Close();
  timer.Arm(std::chrono::hours(1), [owner, &ran] { ran = true; });
  owner.reset();
  io.poll();  // the cancelled wait completes and drops its handler
  EXPECT_TRUE(watch.expired());
  EXPECT_FALSE(ran);
}

TEST(ServerDeadlineTimerTest, DisarmedTimerCanBeArmedAgain) {
  boost::asio::io_context io;
  DeadlineTimer timer(io.get_executor());
  int ran = 0;
  timer.Arm(std::chrono::hours(1), [&ran] { ran += 1; });
  timer.Disarm();
  timer.Arm(std::chrono::milliseconds(1), [&ran] { ran += 10; });
  io.run_for(std::chrono::seconds(5));
  EXPECT_EQ(ran, 10);
}

}  // namespace
}  // namespace freshframe::http
