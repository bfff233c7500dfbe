#include <chrono>
#include <stop_token>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "capture/capture.h"
#include "core/clock.h"
#include "core/timecode.h"

namespace freshframe::capture {
namespace {

TEST(PatternSpecTest, ParsesForms) {
  auto d = ParsePatternSpec("pattern");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->width, 640);
  EXPECT_EQ(d->height, 480);
  EXPECT_DOUBLE_EQ(d->fps, 30.0);
  auto full = ParsePatternSpec("pattern:1280x720@15");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->width, 1280);
  EXPECT_EQ(full->height, 720);
  EXPECT_DOUBLE_EQ(full->fps, 15.0);
  auto size_only = ParsePatternSpec("pattern:320x240");
  ASSERT_TRUE(size_only.ok());
  EXPECT_DOUBLE_EQ(size_only->fps, 30.0);
  auto fps_only = ParsePatternSpec("pattern:@7.5");
  ASSERT_TRUE(fps_only.ok());
  EXPECT_EQ(fps_only->width, 640);
  EXPECT_DOUBLE_EQ(fps_only->fps, 7.5);
  EXPECT_DOUBLE_EQ(fps_only->motion, 1.0);
  auto quiet = ParsePatternSpec("pattern:320x240@10,motion=0.1");
  ASSERT_TRUE(quiet.ok()) << quiet.error().message;
  EXPECT_EQ(quiet->width, 320);
  EXPECT_DOUBLE_EQ(quiet->motion, 0.1);
  auto quiet_default_size = ParsePatternSpec("pattern:,motion=0");
  ASSERT_TRUE(quiet_default_size.ok());
  EXPECT_DOUBLE_EQ(quiet_default_size->motion, 0.0);
}

// motion=0.05 at 100 fps: every 10 s cycle (1000 frames) starts with 50
// moving frames; then only the timecode strip changes.
TEST(PatternSourceTest, MostlyStillSceneChangesOnlyItsStripWhileStill) {
  auto source = MakePatternSource({320, 240, 100, 0.05});
  std::stop_source stop;
  std::vector<Frame> frames;
  for (int i = 0; i < 100; ++i) frames.push_back(*source->Read(stop.get_token()).frame);
  const int strip = timecode::StripRows(320);
  const cv::Rect body(0, strip, 320, 240 - strip);
  int changed = 0;
  int changed_late = 0;
  for (size_t i = 1; i < frames.size(); ++i) {
    const bool moved = cv::norm(frames[i].image(body), frames[i - 1].image(body), cv::NORM_L1) > 0;
    changed += moved ? 1 : 0;
    if (frames[i - 1].meta.sequence > 51) changed_late += moved ? 1 : 0;
  }
  EXPECT_GE(changed, 20);  // a busy machine may skip some deadlines
  EXPECT_LE(changed, 50);
  EXPECT_EQ(changed_late, 0);
  // The strip still carries each frame's own capture time.
  auto reading = timecode::Read(frames.back().image, MonotonicMicros());
  ASSERT_TRUE(reading.has_value());
  EXPECT_EQ(reading->t_us, frames.back().meta.stamps.capture_us);
}

TEST(PatternSpecTest, RejectsBadValuesWithAClearMessage) {
  for (const char* bad :
       {"pattern:0x0@0", "pattern:640x480@0", "pattern:640x480@-1", "pattern:640@30", "pattern:axb",
        "pattern:640x480@x", "pattern;", "pattern:100000x10", "pattern:640x480@300", "camera",
        "pattern:640x480,motion=2", "pattern:640x480,motion=", "pattern:640x480,speed=1"}) {
    auto spec = ParsePatternSpec(bad);
    EXPECT_FALSE(spec.ok()) << bad;
    if (!spec.ok()) {
      EXPECT_NE(spec.error().message.find(bad), std::string::npos);
    }
  }
}

TEST(PatternSourceTest, FramesCarryMetadataAndTimecode) {
  auto source = MakePatternSource({640, 480, 60});
  std::stop_source stop;
  auto first = source->Read(stop.get_token()).frame;
  auto second = source->Read(stop.get_token()).frame;
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->meta.sequence, 1U);
  EXPECT_EQ(second->meta.sequence, 2U);
  EXPECT_EQ(first->image.cols, 640);
  EXPECT_EQ(first->image.rows, 480);
  EXPECT_EQ(first->image.type(), CV_8UC3);
  EXPECT_GT(second->meta.stamps.capture_us, first->meta.stamps.capture_us);
  auto reading = timecode::Read(second->image, MonotonicMicros());
  ASSERT_TRUE(reading.has_value());
  EXPECT_EQ(reading->t_us, second->meta.stamps.capture_us);
  // Moving content: consecutive frames differ below the strip.
  const cv::Rect body(0, 40, 640, 440);
  EXPECT_GT(cv::norm(first->image(body), second->image(body), cv::NORM_L1), 0.0);
}

// Behaviour, not speed: frames are never delivered ahead of their schedule
// (a loaded machine can only make them later), and when the reader falls
// behind the schedule is not shifted: the frames it missed show as a gap in
// the numbering instead of being delivered late.
TEST(PatternSourceTest, PacedOnAbsoluteDeadlines) {
  auto source = MakePatternSource({320, 240, 50});
  std::stop_source stop;
  const auto start = std::chrono::steady_clock::now();
  auto first = source->Read(stop.get_token());
  ASSERT_TRUE(first.frame);
  uint64_t last = first.frame->meta.sequence;
  for (int i = 0; i < 10; ++i) {
    auto next = source->Read(stop.get_token());
    ASSERT_TRUE(next.frame);
    EXPECT_GT(next.frame->meta.sequence, last);
    last = next.frame->meta.sequence;
  }
  // Frame N is due N x 20 ms after the first: never earlier.
  EXPECT_GE(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(20) * static_cast<int>(last - first.frame->meta.sequence));
  // A reader that sleeps 300 ms (15 intervals) gets the newest due frame
  // next, not the one after its last.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto late = source->Read(stop.get_token());
  ASSERT_TRUE(late.frame);
  EXPECT_GE(late.frame->meta.sequence, last + 10);
}

TEST(PatternSourceTest, StopInterruptsTheWait) {
  auto source = MakePatternSource({320, 240, 0.5});  // one frame every 2 s
  std::stop_source stop;
  ASSERT_TRUE(source->Read(stop.get_token()).frame);  // the first is due at once
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop.request_stop();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(source->Read(stop.get_token()).status, ReadResult::Status::kStopped);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  stopper.join();
}

TEST(GrabberTest, PublishesNewestFrames) {
  LatestSlot<FramePtr> raw;
  Metrics metrics;
  Grabber grabber(MakePatternSource({320, 240, 100}), raw, metrics);
  grabber.Start();
  auto a = raw.WaitNewer(0, std::chrono::seconds(5));
  ASSERT_TRUE(a.has_value());
  auto b = raw.WaitNewer(a->version, std::chrono::seconds(5));
  ASSERT_TRUE(b.has_value());
  grabber.Stop();
  EXPECT_GT(b->value->meta.sequence, a->value->meta.sequence);
  EXPECT_GE(b->value->meta.stamps.grab_us, b->value->meta.stamps.capture_us);
  EXPECT_GE(metrics.Stage("capture").frames(), 2U);
}

}  // namespace
}  // namespace freshframe::capture
