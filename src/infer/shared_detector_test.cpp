// SharedDetector: fair turns over several streams' newest frames, per-stream
// caps, the detector switch, Add/Remove while running, and an idle thread
// that sleeps. Fake detectors sleep for a cost written into each frame;
// streams are fed by publisher threads at 30 fps. The assertions are about
// shares and counts, never speed: bounds are generous so that they hold on a
// loaded 2-core machine (and under TSan).
#include "infer/shared_detector.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "core/clock.h"
#include "infer/detectors.h"

namespace freshframe::infer {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxStreams = 8;

// What the fake detector saw, shared with the test (the detector itself is
// owned by the SharedDetector).
struct DetectorLog {
  std::array<std::atomic<int>, kMaxStreams> calls{};
  std::atomic<int> total{0};
  std::atomic<int> current{-1};  // stream whose frame is being detected
  // A stream whose detection blocks until `release` (for Remove and Stop).
  std::atomic<int> hold{-1};
  std::atomic<bool> holding{false};
  std::atomic<bool> release{false};
};

// Sleeps for the cost written into the frame: pixel (0, 0) holds the stream
// index (channel 0) and the cost in milliseconds (channel 1).
class FakeDetector final : public Detector {
 public:
  explicit FakeDetector(std::shared_ptr<DetectorLog> log) : log_(std::move(log)) {}

  std::vector<Detection> Detect(const cv::Mat& bgr) override {
    const cv::Vec3b tag = bgr.at<cv::Vec3b>(0, 0);
    const int stream = tag[0];
    log_->current = stream;
    ++log_->calls[static_cast<size_t>(stream)];
    ++log_->total;
    std::this_thread::sleep_for(std::chrono::milliseconds(tag[1]));
    if (log_->hold.load() == stream) {
      log_->holding = true;
      while (!log_->release.load()) std::this_thread::sleep_for(1ms);
      log_->holding = false;
    }
    log_->current = -1;
    return {{cv::Rect(1, 1, 2, 2), "thing", 1.0F}};
  }
  std::string_view name() const override { return "fake"; }

 private:
  std::shared_ptr<DetectorLog> log_;
};

// One camera's slots, settings and metrics, and a thread publishing frames.
class TestStream {
 public:
  TestStream(int index, int cost_ms) : index_(index), cost_ms_(cost_ms) {}
  ~TestStream() { StopPublishing(); }
  TestStream(const TestStream&) = delete;
  TestStream& operator=(const TestStream&) = delete;

  DetectorBinding Binding(double max_fps = 0, bool with_settings = true) {
    DetectorBinding binding;
    binding.raw = &raw;
    binding.detections = &sets;
    binding.json = &json;
    binding.settings = with_settings ? &settings : nullptr;
    binding.metrics = &metrics.Stage("infer");
    binding.max_fps = max_fps;
    return binding;
  }

  void PublishOne() {
    auto frame = std::make_shared<Frame>();
    frame->meta.sequence = ++sequence_;
    frame->meta.stamps.capture_us = MonotonicMicros();
    frame->image = cv::Mat(8, 8, CV_8UC3, cv::Scalar::all(0));
    frame->image.at<cv::Vec3b>(0, 0) =
        cv::Vec3b(static_cast<uint8_t>(index_), static_cast<uint8_t>(cost_ms_), 0);
    raw.Publish(std::move(frame));
  }

  void StartPublishing(int fps = 30) {
    publisher_ = std::jthread([this, fps](std::stop_token stop) {
      const auto period = std::chrono::microseconds(1'000'000 / fps);
      auto next = Clock::now();
      while (!stop.stop_requested()) {
        PublishOne();
        next += period;
        std::this_thread::sleep_until(next);
      }
    });
  }

  void StopPublishing() {
    if (publisher_.joinable()) {
      publisher_.request_stop();
      publisher_.join();
    }
  }

  void Switch(bool on) {
    SettingsChange change;
    change.detector = on;
    settings.Apply(change);
  }

  uint64_t published() const { return sequence_; }  // after StopPublishing

  LatestSlot<FramePtr> raw;
  LatestSlot<DetectionSetPtr> sets;
  LatestSlot<JsonTextPtr> json;
  LiveSettings settings;
  Metrics metrics;

 private:
  const int index_;
  const int cost_ms_;
  uint64_t sequence_ = 0;  // the publisher's (or the test's) only
  std::jthread publisher_;
};

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

class SharedDetectorTest : public ::testing::Test {
 protected:
  SharedDetectorTest() : detector_(std::make_unique<FakeDetector>(log_)) {}

  int Calls(size_t stream) const { return log_->calls[stream].load(); }

  // Starts the detector, feeds every stream at 30 fps for `duration`, stops
  // the feeds; returns how long they ran, in seconds. The detector keeps
  // running (its figures may still be read through it).
  double Feed(const std::vector<TestStream*>& streams, std::chrono::milliseconds duration) {
    detector_.Start();
    const auto start = Clock::now();
    for (TestStream* stream : streams) stream->StartPublishing();
    std::this_thread::sleep_for(duration);
    for (TestStream* stream : streams) stream->StopPublishing();
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  std::shared_ptr<DetectorLog> log_ = std::make_shared<DetectorLog>();
  SharedDetector detector_;
};

TEST_F(SharedDetectorTest, ThreeEqualStreamsGetEqualShares) {
  std::vector<std::unique_ptr<TestStream>> streams;
  for (int i = 0; i < 3; ++i) {
    streams.push_back(std::make_unique<TestStream>(i, 20));
    detector_.Add(streams.back()->Binding());
  }
  EXPECT_EQ(detector_.bindings(), 3U);
  // 90 frames/s offered, at most ~50 detections/s possible: every stream
  // always has a new frame on its turn, so turns alternate.
  Feed({streams[0].get(), streams[1].get(), streams[2].get()}, 2s);
  detector_.Stop();

  const std::array<int, 3> calls{Calls(0), Calls(1), Calls(2)};
  const int most = *std::max_element(calls.begin(), calls.end());
  const int least = *std::min_element(calls.begin(), calls.end());
  EXPECT_GE(least, 5) << calls[0] << " " << calls[1] << " " << calls[2];
  EXPECT_LE(most, least * 3 / 2) << calls[0] << " " << calls[1] << " " << calls[2];
  uint64_t skipped = 0;
  for (size_t i = 0; i < 3; ++i) {
    // Each stream's own "infer" figures count its own detections.
    EXPECT_EQ(streams[i]->metrics.Stage("infer").frames(), static_cast<uint64_t>(calls[i]));
    skipped += streams[i]->metrics.Stage("infer").skipped();
  }
  EXPECT_GT(skipped, 0U);  // the detector could not keep up with 90 fps
  EXPECT_EQ(detector_.activity().frames, static_cast<uint64_t>(log_->total.load()));
}

// Fairness counts turns, not time: a stream that costs 60 times as much
// gets as many detections as the cheap one (and most of the detector's
// time); neither starves.
TEST_F(SharedDetectorTest, CheapAndExpensiveStreamsGetEqualTurns) {
  TestStream cheap(0, 1);
  TestStream expensive(1, 60);
  // The expensive one first: were turns not taken in order, it would have a
  // new frame after each of its own detections and never let the cheap one in.
  detector_.Add(expensive.Binding());
  detector_.Add(cheap.Binding());
  Feed({&cheap, &expensive}, 2s);
  detector_.Stop();

  EXPECT_GE(Calls(0), 5);
  EXPECT_GE(Calls(1), 5);
  EXPECT_LE(std::max(Calls(0), Calls(1)), std::min(Calls(0), Calls(1)) * 3 / 2)
      << Calls(0) << " " << Calls(1);
}

TEST_F(SharedDetectorTest, MaxFpsCapsAStreamAndAnotherTakesTheRest) {
  TestStream capped(0, 5);
  TestStream uncapped(1, 5);
  const uint64_t capped_id = detector_.Add(capped.Binding(5.0));
  const uint64_t free_id = detector_.Add(uncapped.Binding());
  const double elapsed_s = Feed({&capped, &uncapped}, 2s);
  const std::optional<BindingStats> capped_stats = detector_.stats(capped_id);
  const std::optional<BindingStats> free_stats = detector_.stats(free_id);
  detector_.Stop();

  // Detection starts are at least 200 ms apart: never more than that allows
  // (+1 for the start, +1 for a frame held back when the feed ended).
  EXPECT_LE(Calls(0), static_cast<int>(elapsed_s * 5.0) + 2);
  EXPECT_GE(Calls(0), 3);
  // The uncapped stream takes the detector time the cap leaves.
  EXPECT_GE(Calls(1), 2 * Calls(0));
  EXPECT_GE(Calls(1), 15);
  ASSERT_TRUE(capped_stats && free_stats);
  EXPECT_EQ(capped_stats->detected, static_cast<uint64_t>(Calls(0)));
  // Frames held back by the cap are counted apart from skipped ones.
  EXPECT_GT(capped_stats->capped, capped_stats->skipped);
  EXPECT_EQ(capped.metrics.Stage("infer").skipped(), capped_stats->skipped);
  EXPECT_EQ(free_stats->capped, 0U);
}

TEST_F(SharedDetectorTest, SwitchedOffStreamCostsNothingAndSaysSoOnce) {
  TestStream off(0, 5);
  TestStream on(1, 5);
  off.Switch(false);
  const uint64_t off_id = detector_.Add(off.Binding());
  detector_.Add(on.Binding());
  off.PublishOne();  // so that the "off" set carries a frame
  detector_.Start();
  off.StartPublishing();
  on.StartPublishing();
  ASSERT_TRUE(WaitFor([&] { return Calls(1) >= 10; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Calls(0), 0);
  // One "detector off" set, in both slots, however many frames came.
  EXPECT_EQ(off.json.version(), 1U);
  EXPECT_EQ(off.sets.version(), 1U);
  auto set = off.sets.Latest();
  ASSERT_TRUE(set);
  EXPECT_FALSE(set->value->detector_running);
  EXPECT_TRUE(set->value->detections.empty());
  EXPECT_FALSE(nlohmann::json::parse(*off.json.Latest()->value)["detector_running"].get<bool>());
  EXPECT_FALSE(detector_.stats(off_id)->detector_running);

  // Switched on, it gets turns again; switched off again, one more "off".
  off.Switch(true);
  ASSERT_TRUE(WaitFor([&] { return Calls(0) >= 3; }));
  off.Switch(false);
  ASSERT_TRUE(WaitFor([&] { return !detector_.stats(off_id)->detector_running; }));
  const uint64_t json_version = off.json.version();
  const int calls = Calls(0);
  EXPECT_FALSE(nlohmann::json::parse(*off.json.Latest()->value)["detector_running"].get<bool>());
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(off.json.version(), json_version);
  EXPECT_EQ(Calls(0), calls);
  off.StopPublishing();
  on.StopPublishing();
  detector_.Stop();
  EXPECT_EQ(detector_.stats(off_id)->detected, static_cast<uint64_t>(calls));
}

TEST_F(SharedDetectorTest, StreamWithoutNewFramesIsNeverDetectedAgain) {
  TestStream still(0, 5);
  TestStream moving(1, 5);
  detector_.Add(still.Binding());
  detector_.Add(moving.Binding());
  still.PublishOne();
  detector_.Start();
  moving.StartPublishing();
  ASSERT_TRUE(WaitFor([&] { return Calls(1) >= 15; }));
  moving.StopPublishing();
  detector_.Stop();
  EXPECT_EQ(Calls(0), 1);
  EXPECT_EQ(still.sets.version(), 1U);
}

// The thread sleeps while nothing comes: no detections, and no wake-ups but
// the switch poll (the stream with a LiveSettings) over 300 ms.
TEST_F(SharedDetectorTest, IdleThreadSleeps) {
  std::vector<std::unique_ptr<TestStream>> streams;
  for (int i = 0; i < 3; ++i) {
    streams.push_back(std::make_unique<TestStream>(i, 1));
    detector_.Add(streams.back()->Binding(0, /*with_settings=*/false));
    streams.back()->PublishOne();
  }
  detector_.Start();
  ASSERT_TRUE(WaitFor([&] { return log_->total.load() == 3; }));
  std::this_thread::sleep_for(50ms);  // let the thread fall asleep
  uint64_t wakeups = detector_.wakeups();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(log_->total.load(), 3);
  EXPECT_LE(detector_.wakeups() - wakeups, 1U);

  // With a LiveSettings (whose switch-off must be noticed without frames):
  // one look per kSwitchPollInterval, still no detections.
  TestStream with_settings(3, 1);
  detector_.Add(with_settings.Binding());
  std::this_thread::sleep_for(50ms);
  wakeups = detector_.wakeups();
  std::this_thread::sleep_for(300ms);
  EXPECT_LE(detector_.wakeups() - wakeups,
            300U / static_cast<uint64_t>(SharedDetector::kSwitchPollInterval.count()) + 2U);
  EXPECT_EQ(log_->total.load(), 3);
  // And a frame wakes it at once (well before the 60 s backstop).
  streams[1]->PublishOne();
  EXPECT_TRUE(WaitFor([&] { return Calls(1) == 2; }));
  detector_.Stop();
}

// Remove while the detector works on the removed stream's frame: Remove
// waits for that detection to end and its set to be published; after it the
// slots can be destroyed at once (ASan/TSan would see a later use).
TEST_F(SharedDetectorTest, RemoveWaitsForTheStreamsDetectionInProgress) {
  TestStream kept(0, 2);
  auto removed = std::make_unique<TestStream>(1, 2);
  detector_.Add(kept.Binding());
  const uint64_t id = detector_.Add(removed->Binding());
  log_->hold = 1;
  detector_.Start();
  kept.StartPublishing();
  removed->StartPublishing();
  ASSERT_TRUE(WaitFor([&] { return log_->holding.load(); }));

  std::atomic<bool> returned{false};
  std::thread remover([&] {
    detector_.Remove(id);
    returned = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(returned.load());  // the detection is still under way
  EXPECT_EQ(removed->sets.version(), 0U);
  log_->release = true;
  remover.join();
  EXPECT_EQ(removed->sets.version(), 1U);  // published before Remove returned
  EXPECT_EQ(detector_.bindings(), 1U);
  EXPECT_FALSE(detector_.stats(id));
  const int removed_calls = Calls(1);
  removed.reset();  // slots, settings and metrics gone while frames go on
  const int kept_calls = Calls(0);
  ASSERT_TRUE(WaitFor([&] { return Calls(0) >= kept_calls + 5; }));
  EXPECT_EQ(Calls(1), removed_calls);
  detector_.Remove(id);  // again: ignored
  detector_.Remove(0);
  kept.StopPublishing();
  detector_.Stop();
}

// Streams come and go (a config reload) while others run; each removed
// stream is destroyed right after Remove.
TEST_F(SharedDetectorTest, AddAndRemoveWhileRunning) {
  TestStream steady(0, 3);
  detector_.Add(steady.Binding());
  detector_.Start();
  steady.StartPublishing();
  for (int round = 0; round < 12; ++round) {
    const int index = 1 + round % 3;
    const int before = Calls(static_cast<size_t>(index));
    auto stream = std::make_unique<TestStream>(index, 3);
    stream->PublishOne();  // before Add: still gets its turn
    const uint64_t id = detector_.Add(stream->Binding(0, round % 2 == 0));
    stream->StartPublishing();
    ASSERT_TRUE(WaitFor([&] { return Calls(static_cast<size_t>(index)) >= before + 2; }));
    detector_.Remove(id);
    const uint64_t sets = stream->sets.version();
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(stream->sets.version(), sets);
    stream.reset();  // the publisher stops, then the slots go
  }
  EXPECT_EQ(detector_.bindings(), 1U);
  const int steady_calls = Calls(0);
  ASSERT_TRUE(WaitFor([&] { return Calls(0) >= steady_calls + 3; }));
  steady.StopPublishing();
  detector_.Stop();
}

TEST_F(SharedDetectorTest, StopWhileDetectingReturnsAndStartResumes) {
  TestStream stream(0, 1);
  detector_.Add(stream.Binding());
  log_->hold = 0;
  detector_.Start();
  stream.PublishOne();
  ASSERT_TRUE(WaitFor([&] { return log_->holding.load(); }));
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    log_->release = true;
  });
  detector_.Stop();  // returns once the detection under way has ended
  releaser.join();
  EXPECT_EQ(stream.sets.version(), 1U);  // that set was published
  stream.PublishOne();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(Calls(0), 1);  // stopped: nothing more
  detector_.Start();
  EXPECT_TRUE(WaitFor([&] { return Calls(0) == 2; }));  // the frame that came meanwhile
  detector_.Stop();
  detector_.Stop();  // idempotent
}

// After Stop the detector no longer observes the slots: they may go first,
// or it may (and frames published later touch nothing of it).
TEST(SharedDetectorLifetimeTest, SlotsAndDetectorMayGoInEitherOrderAfterStop) {
  auto log = std::make_shared<DetectorLog>();
  {
    auto stream = std::make_unique<TestStream>(0, 1);
    SharedDetector detector(std::make_unique<FakeDetector>(log));
    detector.Add(stream->Binding());
    detector.Start();
    stream->PublishOne();
    ASSERT_TRUE(WaitFor([&] { return log->total.load() == 1; }));
    detector.Stop();
    stream.reset();  // slots first; the detector's destructor touches none
  }
  TestStream stream(0, 1);
  {
    SharedDetector detector(std::make_unique<FakeDetector>(log));
    detector.Add(stream.Binding());
    detector.Start();
  }  // destroyed running: stops and unregisters
  stream.PublishOne();
  stream.raw.Close();
  EXPECT_EQ(log->total.load(), 1);
}

TEST(SharedDetectorLifetimeTest, BindingWithoutSlotsIsRefused) {
  SharedDetector detector(std::make_unique<FakeDetector>(std::make_shared<DetectorLog>()));
  EXPECT_EQ(detector.Add(DetectorBinding{}), 0U);
  EXPECT_EQ(detector.bindings(), 0U);
  EXPECT_EQ(detector.name(), "fake");
  EXPECT_TRUE(detector.shareable());
}

// A background model learnt from two cameras' frames would be neither's.
TEST(SharedDetectorLifetimeTest, DetectorWithPerCameraStateServesOneStreamOnly) {
  class Remembering final : public Detector {
   public:
    std::vector<Detection> Detect(const cv::Mat&) override { return {}; }
    std::string_view name() const override { return "remembering"; }
    bool keeps_per_camera_state() const override { return true; }
  };
  SharedDetector detector(std::make_unique<Remembering>());
  EXPECT_FALSE(detector.shareable());
  TestStream first(0, 1);
  TestStream second(1, 1);
  const uint64_t id = detector.Add(first.Binding());
  EXPECT_NE(id, 0U);
  EXPECT_EQ(detector.Add(second.Binding()), 0U);
  EXPECT_EQ(detector.bindings(), 1U);
  detector.Remove(id);  // its one stream gone, it may serve another
  EXPECT_NE(detector.Add(second.Binding()), 0U);
}

TEST(SharedDetectorLifetimeTest, MotionDetectorsAreNotShareable) {
  const DetectorOptions options;
  EXPECT_FALSE(SharedDetector(MakeMotionDetector(options)).shareable());
  EXPECT_FALSE(
      SharedDetector(MakeMotionGatedDetector(
                         std::make_unique<FakeDetector>(std::make_shared<DetectorLog>()), options))
          .shareable());
}

}  // namespace
}  // namespace freshframe::infer
