#include "capture/remote_clock.h"

#include <gtest/gtest.h>

namespace freshframe::capture {
namespace {

constexpr int64_t kSecond = 1'000'000;

TEST(RemoteClockTest, NothingKnownBeforeTheFirstPart) {
  RemoteClock clock;
  EXPECT_FALSE(clock.offset());
  EXPECT_FALSE(clock.ToLocal(5));
}

TEST(RemoteClockTest, TheSameHostIsNotTranslated) {
  RemoteClock clock;
  // Delays of 0.1-1.5 ms on one clock.
  clock.Sample(100 * kSecond + 1'500, 100 * kSecond);
  clock.Sample(101 * kSecond + 100, 101 * kSecond);
  EXPECT_EQ(clock.offset(), 0);
  EXPECT_EQ(clock.ToLocal(7 * kSecond), 7 * kSecond);
}

TEST(RemoteClockTest, AnotherHostsClockIsTheSmallestSampleOfTheWindow) {
  RemoteClock clock;
  // The remote clock is 60 s behind; delays 3 ms, 0.4 ms, 12 ms (a burst).
  const int64_t behind = 60 * kSecond;
  clock.Sample(1000 * kSecond + 3'000, 1000 * kSecond - behind);
  clock.Sample(1000 * kSecond + 33'400, 1000 * kSecond + 33'000 - behind);
  clock.Sample(1000 * kSecond + 78'000, 1000 * kSecond + 66'000 - behind);
  EXPECT_EQ(clock.offset(), behind + 400);
  EXPECT_EQ(clock.ToLocal(5 * kSecond), 5 * kSecond + behind + 400);
  // A clock ahead gives a negative offset.
  RemoteClock ahead;
  ahead.Sample(10 * kSecond + 500, 10 * kSecond + 3'600 * kSecond);
  EXPECT_EQ(ahead.offset(), 500 - 3'600 * kSecond);
}

TEST(RemoteClockTest, FollowsADriftingOrRestartedOriginWithinOneWindow) {
  RemoteClock clock(10 * kSecond);
  for (int64_t t = 0; t < 20 * kSecond; t += kSecond / 30) {
    clock.Sample(t + 500, t - 5 * kSecond);
  }
  EXPECT_EQ(clock.offset(), 5 * kSecond + 500);
  // The origin's clock jumps 25 s further behind (a restarted origin on
  // the same connection, as if): the old minimum stays the answer until it
  // leaves the window, never longer.
  const int64_t restart = 20 * kSecond;
  for (int64_t t = restart; t < restart + 5 * kSecond; t += kSecond / 30) {
    clock.Sample(t + 500, t - 30 * kSecond);
  }
  EXPECT_EQ(clock.offset(), 5 * kSecond + 500);
  for (int64_t t = restart + 5 * kSecond; t < restart + 11 * kSecond; t += kSecond / 30) {
    clock.Sample(t + 500, t - 30 * kSecond);
  }
  EXPECT_EQ(clock.offset(), 30 * kSecond + 500);
  // A clock that moves ahead is followed at once (a smaller sample).
  clock.Sample(restart + 12 * kSecond, restart + 12 * kSecond + 2 * kSecond);
  EXPECT_EQ(clock.offset(), -2 * kSecond);
}

TEST(ParseStampSecondsTest, TakesWhatServersWriteAndNothingElse) {
  EXPECT_EQ(ParseStampSeconds("12.000345"), 12'000'345);
  EXPECT_EQ(ParseStampSeconds("7"), 7'000'000);
  EXPECT_EQ(ParseStampSeconds("7.5"), 7'500'000);
  EXPECT_EQ(ParseStampSeconds("999999999999.999999"), 999'999'999'999'999'999);
  for (const char* bad : {"", ".5", "5.", "-1", "1e3", "1.2.3", "1.0000001", "1234567890123", " 1",
                          "1 ", "0x10", "nan"}) {
    EXPECT_FALSE(ParseStampSeconds(bad)) << bad;
  }
}

TEST(RemoteClockTest, ResetForgets) {
  RemoteClock clock;
  clock.Sample(10 * kSecond, 1 * kSecond);
  clock.Reset();
  EXPECT_FALSE(clock.offset());
}

}  // namespace
}  // namespace freshframe::capture
