#include "capture/buffered_camera.h"

#include <algorithm>
#include <chrono>
#include <stop_token>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/timecode.h"

namespace freshframe::capture {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(BufferedCameraSpecTest, ParsesForms) {
  auto d = ParseBufferedCameraSpec("bufcam");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->width, 640);
  EXPECT_EQ(d->height, 480);
  EXPECT_DOUBLE_EQ(d->fps, 30.0);
  EXPECT_EQ(d->buffers, 4);
  auto full = ParseBufferedCameraSpec("bufcam:320x240@50/8");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->width, 320);
  EXPECT_EQ(full->height, 240);
  EXPECT_DOUBLE_EQ(full->fps, 50.0);
  EXPECT_EQ(full->buffers, 8);
  auto size_only = ParseBufferedCameraSpec("bufcam:1280x720");
  ASSERT_TRUE(size_only.ok());
  EXPECT_EQ(size_only->width, 1280);
  EXPECT_DOUBLE_EQ(size_only->fps, 30.0);
  EXPECT_EQ(size_only->buffers, 4);
  auto one = ParseBufferedCameraSpec("bufcam:/1");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->buffers, 1);
  EXPECT_EQ(one->width, 640);
  auto no_colon = ParseBufferedCameraSpec("bufcam@7.5/2");
  ASSERT_TRUE(no_colon.ok());
  EXPECT_DOUBLE_EQ(no_colon->fps, 7.5);
  EXPECT_EQ(no_colon->buffers, 2);
}

TEST(BufferedCameraSpecTest, BadSpecsAreErrorsNamingTheSpec) {
  for (const char* bad : {"bufcam:640x480@30/0", "bufcam:640x480@30/33", "bufcam:640x480@30/",
                          "bufcam:/x", "bufcam:640x480@0", "bufcam:640x480@", "bufcam:640@30",
                          "bufcam:8x8", "bufcamera", "bufcam:640x480@30/4/4", "bufcam;"}) {
    auto spec = ParseBufferedCameraSpec(bad);
    EXPECT_FALSE(spec.ok()) << bad;
    if (!spec.ok()) {
      EXPECT_NE(spec.error().message.find(bad), std::string::npos);
    }
    // --source goes through MakeSource: the CLI reports this Error as a bad
    // argument (exit 2).
    SourceOptions options;
    options.spec = bad;
    EXPECT_FALSE(MakeSource(options).ok()) << bad;
  }
  SourceOptions good;
  good.spec = "bufcam:320x240@50/4";
  auto made = MakeSource(good);
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_EQ((*made)->Describe(), "bufcam:320x240@50/4");
  EXPECT_TRUE((*made)->reconnects());
}

// A reader that comes late gets the OLDEST frames, and the captures made
// while every buffer was full are lost.
TEST(BufferedCameraTest, SlowReaderGetsTheOldestFramesAndNewCapturesAreDropped) {
  BufferedCameraSource camera({320, 240, 50, 4});
  ASSERT_TRUE(camera.Open().ok());
  std::this_thread::sleep_for(400ms);  // 20 captures into 4 buffers
  EXPECT_EQ(camera.queued(), 4U);
  EXPECT_GT(camera.dropped(), 0U);
  std::stop_source stop;
  std::vector<Frame> frames;
  for (int i = 0; i < 5; ++i) {
    auto result = camera.Read(stop.get_token());
    ASSERT_EQ(result.status, ReadResult::Status::kFrame);
    frames.push_back(std::move(*result.frame));
  }
  const int64_t now = MonotonicMicros();
  // The four buffered frames were captured first, in order, ~400 ms ago.
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_GT(now - frames[i].meta.stamps.capture_us, 250'000) << i;
    if (i > 0) {
      EXPECT_GT(frames[i].meta.sequence, frames[i - 1].meta.sequence);
    }
  }
  // The fifth had to wait for a new capture: fresh, and captures in between
  // were dropped (a gap in the sequence).
  EXPECT_LT(now - frames[4].meta.stamps.capture_us, 100'000);
  EXPECT_GT(frames[4].meta.sequence, frames[3].meta.sequence + 1);
  EXPECT_EQ(frames[4].image.cols, 320);
  EXPECT_EQ(frames[4].image.rows, 240);
  auto reading = timecode::Read(frames[4].image, now);
  ASSERT_TRUE(reading.has_value());
  EXPECT_EQ(reading->t_us, frames[4].meta.stamps.capture_us);
  camera.Close();
}

TEST(BufferedCameraTest, ReadHonoursStopAndFailsWhenNotOpen) {
  BufferedCameraSource camera({64, 48, 2, 4});  // a capture every 500 ms
  std::stop_source stop;
  EXPECT_EQ(camera.Read(stop.get_token()).status, ReadResult::Status::kError);
  ASSERT_TRUE(camera.Open().ok());
  // The first capture is immediate; the next read waits ~500 ms for one.
  ASSERT_EQ(camera.Read(stop.get_token()).status, ReadResult::Status::kFrame);
  std::jthread stopper([&stop] {
    std::this_thread::sleep_for(50ms);
    stop.request_stop();
  });
  const auto start = Clock::now();
  EXPECT_EQ(camera.Read(stop.get_token()).status, ReadResult::Status::kStopped);
  EXPECT_LT(Clock::now() - start, 400ms);
  camera.Close();
  std::stop_source fresh;
  EXPECT_EQ(camera.Read(fresh.get_token()).status, ReadResult::Status::kError);
  // Reopens like a camera after a failure.
  ASSERT_TRUE(camera.Open().ok());
  EXPECT_EQ(camera.Read(fresh.get_token()).status, ReadResult::Status::kFrame);
}

// The measurement the issue asks for. bufcam:320x240@50/4 (a frame every
// 20 ms into 4 buffers), a consumer that works 60 ms per frame, ~1.5 s.
// Asserted as behaviour, not speed (a loaded machine makes every age larger):
// - naive (one Read() per iteration): over the second half of the run the
//   median age is at least (N-1) x 60 ms = 180 ms, because every frame it
//   gets waited in the driver queue behind N-1 others; a busy machine only
//   makes the consumer slower and the frames older;
// - grabber (freshframe): the consumer always gets the newest frame, so its
//   median age is below the naive reader's (in theory at most one interval
//   plus the render time, whatever the consumer costs).
TEST(BufferedCameraTest, GrabberKeepsFramesFreshWhileNaiveReadFallsBehind) {
  const BufferedCameraSpec spec{320, 240, 50, 4};
  ConsumerOptions options;
  options.work = 60ms;
  options.duration = 1500ms;

  auto grabbed =
      RunConsumer(std::make_unique<BufferedCameraSource>(spec), ConsumerMode::kGrabber, options);
  ASSERT_TRUE(grabbed.ok()) << grabbed.error().message;
  ASSERT_GE(grabbed->frames_processed, 10U);

  auto naive =
      RunConsumer(std::make_unique<BufferedCameraSource>(spec), ConsumerMode::kNaive, options);
  ASSERT_TRUE(naive.ok()) << naive.error().message;
  ASSERT_GE(naive->frames_processed, 10U);
  const std::vector<double> second_half(
      naive->age_ms.begin() + static_cast<std::ptrdiff_t>(naive->age_ms.size() / 2),
      naive->age_ms.end());
  const double naive_median = NearestRankPercentile(second_half, 50);
  EXPECT_GE(naive_median, (spec.buffers - 1) * static_cast<double>(options.work.count()));
  // The queue is what ages the naive reader's frames: its first one, taken
  // before the queue filled, is younger than its settled ones.
  EXPECT_LT(naive->age_ms.front(), naive_median);
  EXPECT_LT(NearestRankPercentile(grabbed->age_ms, 50), naive_median);
  EXPECT_GT(naive->dropped, 0U);  // the driver lost the new captures instead
}

TEST(BufferedCameraTest, GuideDrainNeverReturnsOnALiveCamera) {
  ConsumerOptions options;
  options.work = 60ms;
  options.duration = 5s;
  options.drain_limit = 300ms;
  const auto start = Clock::now();
  auto run = RunConsumer(std::make_unique<BufferedCameraSource>(BufferedCameraSpec{64, 48, 50, 4}),
                         ConsumerMode::kGuideDrain, options);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_FALSE(run->returned);
  EXPECT_EQ(run->frames_processed, 0U);
  EXPECT_GT(run->reads, 4U);  // it kept reading: every read() succeeded
  EXPECT_NE(run->note.find("did not return"), std::string::npos) << run->note;
  EXPECT_LT(Clock::now() - start, 3s);
}

TEST(BufferedCameraTest, RunConsumerHonoursStop) {
  ConsumerOptions options;
  options.work = 60ms;
  options.duration = 60s;
  for (const ConsumerMode mode : {ConsumerMode::kNaive, ConsumerMode::kGuideDrain,
                                  ConsumerMode::kTimedDrain, ConsumerMode::kGrabber}) {
    std::stop_source stop;
    std::jthread stopper([&stop] {
      std::this_thread::sleep_for(200ms);
      stop.request_stop();
    });
    const auto start = Clock::now();
    auto run =
        RunConsumer(std::make_unique<BufferedCameraSource>(BufferedCameraSpec{64, 48, 50, 4}), mode,
                    options, stop.get_token());
    ASSERT_TRUE(run.ok()) << run.error().message;
    EXPECT_LT(Clock::now() - start, 3s) << ConsumerModeName(mode);
    EXPECT_TRUE(run->returned) << ConsumerModeName(mode);
  }
}

TEST(BufferedCameraTest, NearestRankPercentile) {
  EXPECT_EQ(NearestRankPercentile({}, 50), 0);
  EXPECT_EQ(NearestRankPercentile({3, 1, 2}, 50), 2);
  EXPECT_EQ(NearestRankPercentile({3, 1, 2}, 100), 3);
  EXPECT_EQ(NearestRankPercentile({3, 1, 2}, 0), 1);
  std::vector<double> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  EXPECT_EQ(NearestRankPercentile(hundred, 99), 99);
}

}  // namespace
}  // namespace freshframe::capture
