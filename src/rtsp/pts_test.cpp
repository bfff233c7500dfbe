#include "rtsp/pts.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace freshframe::rtsp {
namespace {

constexpr uint64_t kMs = 1'000'000;  // ns

TEST(RtspPtsTest, TheRunningTimeOfTheCapture) {
  PtsClock clock;
  EXPECT_EQ(clock.Next(1000 * kMs, 30 * kMs), 970 * kMs);
  EXPECT_EQ(clock.Next(1040 * kMs, 37 * kMs), 1003 * kMs);  // encoder jitter gone
  EXPECT_EQ(clock.Next(1070 * kMs, 34 * kMs), 1036 * kMs);
}

TEST(RtspPtsTest, AStepBackOfTheCaptureClockNeitherGoesBackNorFreezes) {
  PtsClock clock;
  EXPECT_EQ(clock.Next(1000 * kMs, 30 * kMs), 970 * kMs);
  // The source's clock went 2 s back: its pictures look 2 s older.
  const uint64_t first = clock.Next(1033 * kMs, 2030 * kMs);
  EXPECT_GT(first, 970 * kMs);
  // The spacing goes on from there (not 1 ns steps for 2 s).
  EXPECT_EQ(clock.Next(1066 * kMs, 2030 * kMs), first + 33 * kMs);
  EXPECT_EQ(clock.Next(1099 * kMs, 2030 * kMs), first + 66 * kMs);
}

TEST(RtspPtsTest, AStepForwardNeverPassesTheRunningTime) {
  PtsClock clock;
  EXPECT_EQ(clock.Next(1000 * kMs, 2030 * kMs), 0U);  // older than the media
  // 2 s of capture later: 2 s of PTS later.
  EXPECT_EQ(clock.Next(3000 * kMs, 2030 * kMs), 2000 * kMs);
  // Then the capture clock steps 2 s forward: ages look 0.
  EXPECT_LE(clock.Next(3033 * kMs, 0), 3033 * kMs);
  const uint64_t after = clock.Next(3066 * kMs, 0);
  EXPECT_LE(after, 3066 * kMs);
  EXPECT_EQ(clock.Next(3099 * kMs, 0), after + 33 * kMs);
}

TEST(RtspPtsTest, ResetForANewMedia) {
  PtsClock clock;
  EXPECT_EQ(clock.Next(5000 * kMs, 30 * kMs), 4970 * kMs);
  clock.Reset();
  EXPECT_EQ(clock.Next(100 * kMs, 30 * kMs), 70 * kMs);
}

}  // namespace
}  // namespace freshframe::rtsp
