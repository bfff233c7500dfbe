#include "core/live_settings.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace freshframe {
namespace {

TEST(LiveSettingsTest, StartsWithTheInitialValues) {
  const LiveSettings settings({false, OverlayMode::kInferred, 40, true});
  EXPECT_FALSE(settings.detector());
  EXPECT_EQ(settings.overlay(), OverlayMode::kInferred);
  EXPECT_EQ(settings.quality(), 40);
  EXPECT_TRUE(settings.mirror());
  EXPECT_EQ(settings.Get(), (SettingsValues{false, OverlayMode::kInferred, 40, true}));
}

TEST(LiveSettingsTest, ApplyChangesOnlyTheKeysGiven) {
  LiveSettings settings;
  SettingsChange change;
  change.quality = 30;
  change.mirror = true;
  const auto [before, after] = settings.Apply(change);
  EXPECT_EQ(before, SettingsValues{});
  EXPECT_EQ(after, (SettingsValues{true, OverlayMode::kLatest, 30, true}));
  EXPECT_EQ(settings.Get(), after);

  SettingsChange off;
  off.detector = false;
  off.overlay = OverlayMode::kInferred;
  settings.Apply(off);
  EXPECT_EQ(settings.Get(), (SettingsValues{false, OverlayMode::kInferred, 30, true}));
}

TEST(LiveSettingsTest, AnEmptyChangeChangesNothing) {
  LiveSettings settings({true, OverlayMode::kLatest, 70, false});
  EXPECT_TRUE(SettingsChange{}.empty());
  const auto [before, after] = settings.Apply({});
  EXPECT_EQ(before, after);
}

TEST(LiveSettingsTest, QualityStaysWithinTheEncodersRange) {
  EXPECT_EQ(LiveSettings({true, OverlayMode::kLatest, 0, false}).quality(), 1);
  LiveSettings settings;
  SettingsChange change;
  change.quality = 500;
  settings.Apply(change);
  EXPECT_EQ(settings.quality(), 100);
}

TEST(LiveSettingsTest, OverlayNamesRoundTrip) {
  for (const OverlayMode mode : {OverlayMode::kLatest, OverlayMode::kInferred}) {
    EXPECT_EQ(ParseOverlay(OverlayName(mode)), mode);
  }
  EXPECT_FALSE(ParseOverlay("Latest"));
  EXPECT_FALSE(ParseOverlay(""));
}

// Each Apply reports exactly what it did even with writers racing: `before`
// of one writer is always some writer's `after` (or the start), never a mix.
TEST(LiveSettingsTest, ConcurrentWritersSeeWholeChanges) {
  LiveSettings settings({true, OverlayMode::kLatest, 1, false});
  constexpr int kWriters = 4;
  constexpr int kRounds = 2000;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&settings, w] {
      for (int i = 0; i < kRounds; ++i) {
        SettingsChange change;
        change.quality = 1 + (w * kRounds + i) % 100;
        change.mirror = change.quality.value() % 2 == 0;  // tied to quality
        const auto [before, after] = settings.Apply(change);
        EXPECT_EQ(after.quality, change.quality.value());
        EXPECT_EQ(after.mirror, after.quality % 2 == 0);
        if (before.quality != 1) {
          EXPECT_EQ(before.mirror, before.quality % 2 == 0);
        }
      }
    });
  }
  // A reader that is not a writer: every snapshot is a whole change.
  for (int i = 0; i < kRounds; ++i) {
    const SettingsValues now = settings.Get();
    if (now.quality != 1) {
      EXPECT_EQ(now.mirror, now.quality % 2 == 0);
    }
  }
  for (auto& writer : writers) writer.join();
}

}  // namespace
}  // namespace freshframe
