#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/clock.h"
#include "core/metrics.h"
#include "h264/h264.h"

namespace freshframe::h264 {
namespace {

using namespace std::chrono_literals;

// What a sink received, for the test thread to wait on.
class Received {
 public:
  AccessUnitSink Sink() {
    return [this](const encode::EncodedFramePtr& unit) {
      std::lock_guard lock(mutex_);
      units_.push_back(unit);
      changed_.notify_all();
    };
  }
  // Waits (generously) until `count` units came; false on timeout.
  bool WaitFor(size_t count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return units_.size() >= count; });
  }
  std::vector<encode::EncodedFramePtr> units() const {
    std::lock_guard lock(mutex_);
    return units_;
  }
  size_t size() const {
    std::lock_guard lock(mutex_);
    return units_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<encode::EncodedFramePtr> units_;
};

class H264StageTest : public ::testing::Test {
 protected:
  H264StageTest() { options_.gop_seconds = 0; }  // IDRs only when the test says

  // A frame with a square that moves with the sequence number.
  void Publish(int width = 320, int height = 240) {
    auto frame = std::make_shared<Frame>();
    frame->meta.sequence = ++sequence_;
    frame->meta.width = width;
    frame->meta.height = height;
    frame->meta.stamps.capture_us = MonotonicMicros();
    frame->image = cv::Mat(height, width, CV_8UC3, cv::Scalar(40, 90, 160));
    const int x = static_cast<int>((sequence_ * 6) % static_cast<uint64_t>(width - 40));
    cv::rectangle(frame->image, cv::Rect(x, height / 3, 40, 40), cv::Scalar(250, 250, 250),
                  cv::FILLED);
    annotated_.Publish(std::move(frame));
  }
  // Publishes one frame and waits for its access unit (so that newest-only
  // skips nothing).
  void PublishAndWait(Received& received, int width = 320, int height = 240) {
    const size_t before = received.size();
    Publish(width, height);
    ASSERT_TRUE(received.WaitFor(before + 1));
  }

  EncoderOptions options_;
  LatestSlot<FramePtr> annotated_;
  Metrics metrics_;
  uint64_t sequence_ = 0;
};

TEST_F(H264StageTest, EncodesNothingWithoutDemand) {
  H264Stage stage(options_, annotated_, metrics_, 30);
  Received received;
  auto subscription = stage.Subscribe(received.Sink());
  stage.Start();
  for (int i = 0; i < 10; ++i) {
    Publish();
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(received.size(), 0u);
  const nlohmann::json stats = stage.Stats();
  EXPECT_EQ(stats["frames"], 0);
  EXPECT_EQ(stats["encoding"], false);
  stage.Stop();
}

TEST_F(H264StageTest, OneAccessUnitPerFrameInOrderStartingWithAnIdr) {
  H264Stage stage(options_, annotated_, metrics_, 30);
  Received received;
  auto subscription = stage.Subscribe(received.Sink());
  stage.Start();
  Demand::Hold watching(stage.demand());
  for (int i = 0; i < 20; ++i) PublishAndWait(received);
  const auto units = received.units();
  ASSERT_EQ(units.size(), 20u);
  for (size_t i = 0; i < units.size(); ++i) {
    EXPECT_EQ(units[i]->codec, encode::Codec::kH264);
    EXPECT_EQ(units[i]->sequence, i + 1);
    EXPECT_EQ(units[i]->meta.sequence, i + 1);  // the frames, in order
    EXPECT_EQ(units[i]->keyframe, i == 0) << "unit " << i;
    EXPECT_GE(units[i]->meta.stamps.encode_us, units[i]->meta.stamps.capture_us);
    EXPECT_FALSE(units[i]->bytes.empty());
  }
  const nlohmann::json stats = stage.Stats();
  EXPECT_EQ(stats["frames"], 20);
  EXPECT_EQ(stats["keyframes"], 1);
  EXPECT_EQ(stats["encoding"], true);
  EXPECT_EQ(stats["idr_forced"]["restart"], 1);
  EXPECT_GT(stats["kbps"].get<double>(), 0);
  EXPECT_EQ(metrics_.Find("encode_h264")->frames(), 20u);
}

TEST_F(H264StageTest, AKeyframeRequestMakesTheNextAccessUnitAnIdr) {
  H264Stage stage(options_, annotated_, metrics_, 30);
  Received received;
  auto subscription = stage.Subscribe(received.Sink());
  stage.Start();
  Demand::Hold watching(stage.demand());
  for (int i = 0; i < 5; ++i) PublishAndWait(received);
  stage.keyframes().Request(KeyReason::kClient, MonotonicMicros());
  PublishAndWait(received);
  PublishAndWait(received);
  const auto units = received.units();
  ASSERT_EQ(units.size(), 7u);
  EXPECT_TRUE(units[5]->keyframe);
  EXPECT_FALSE(units[6]->keyframe);
  const nlohmann::json stats = stage.Stats();
  EXPECT_EQ(stats["idr_requested"]["client"], 1);
  EXPECT_EQ(stats["idr_forced"]["client"], 1);
  EXPECT_EQ(stats["keyframes"], 2);
}

TEST_F(H264StageTest, PeriodicIdrByTime) {
  options_.gop_seconds = 0.2;
  H264Stage stage(options_, annotated_, metrics_, 30);
  Received received;
  auto subscription = stage.Subscribe(received.Sink());
  stage.Start();
  Demand::Hold watching(stage.demand());
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 700ms) {
    PublishAndWait(received);
    std::this_thread::sleep_for(10ms);
  }
  size_t keys = 0;
  for (const auto& unit : received.units()) keys += unit->keyframe ? 1u : 0u;
  EXPECT_GE(keys, 3u);  // the first, then one every 200 ms
  EXPECT_LE(keys, 5u);
  EXPECT_GE(stage.Stats()["idr_forced"]["periodic"].get<int>(), 2);
}

TEST_F(H264StageTest, IdleSpellAndSizeChangeEachStartWithAnIdrAndSequenceGoesOn) {
  H264Stage stage(options_, annotated_, metrics_, 30);
  Received received;
  auto subscription = stage.Subscribe(received.Sink());
  stage.Start();
  {
    Demand::Hold watching(stage.demand());
    for (int i = 0; i < 3; ++i) PublishAndWait(received);
  }
  // Nobody watches: frames go by unencoded.
  for (int i = 0; i < 3; ++i) {
    Publish();
    std::this_thread::sleep_for(30ms);
  }
  EXPECT_EQ(received.size(), 3u);
  Demand::Hold watching(stage.demand());
  PublishAndWait(received);
  PublishAndWait(received);
  PublishAndWait(received, 640, 480);  // a new size: a new encoder
  PublishAndWait(received, 640, 480);
  const auto units = received.units();
  ASSERT_EQ(units.size(), 7u);
  for (size_t i = 0; i < units.size(); ++i) EXPECT_EQ(units[i]->sequence, i + 1);
  EXPECT_TRUE(units[3]->keyframe);  // back from idle
  EXPECT_FALSE(units[4]->keyframe);
  EXPECT_TRUE(units[5]->keyframe);  // new size
  EXPECT_EQ(units[5]->meta.width, 640);
  EXPECT_FALSE(units[6]->keyframe);
  const nlohmann::json stats = stage.Stats();
  EXPECT_EQ(stats["restarts"], 1);
  EXPECT_EQ(stats["idr_forced"]["restart"], 3);
}

TEST_F(H264StageTest, ReleasedSubscriptionGetsNothingMore) {
  H264Stage stage(options_, annotated_, metrics_, 30);
  Received kept;
  Received released;
  auto keep = stage.Subscribe(kept.Sink());
  auto drop = stage.Subscribe(released.Sink());
  stage.Start();
  Demand::Hold watching(stage.demand());
  for (int i = 0; i < 3; ++i) PublishAndWait(kept);
  ASSERT_TRUE(released.WaitFor(3));
  drop.reset();
  for (int i = 0; i < 3; ++i) PublishAndWait(kept);
  EXPECT_EQ(released.size(), 3u);
  EXPECT_EQ(kept.size(), 6u);
  EXPECT_EQ(stage.Stats()["subscribers"], 1);
}

TEST_F(H264StageTest, SinkMayReleaseItsOwnSubscriptionFromInside) {
  H264Stage stage(options_, annotated_, metrics_, 30);
  std::shared_ptr<void> self;
  int calls = 0;
  // Called before `kept`'s sink, so `calls` is read after it is written.
  self = stage.Subscribe([&](const encode::EncodedFramePtr&) {
    ++calls;
    self.reset();  // on the stage's thread, inside the dispatch
  });
  Received kept;
  auto keep = stage.Subscribe(kept.Sink());
  stage.Start();
  Demand::Hold watching(stage.demand());
  for (int i = 0; i < 3; ++i) PublishAndWait(kept);
  EXPECT_EQ(calls, 1);
}

TEST_F(H264StageTest, SinkMaySubscribeAnotherWhichStartsWithTheNextUnit) {
  H264Stage stage(options_, annotated_, metrics_, 30);
  Received later;
  std::shared_ptr<void> added;
  // Called before `kept`'s sink, so `added` is written before the test reads.
  auto adder = stage.Subscribe([&](const encode::EncodedFramePtr&) {
    if (!added) added = stage.Subscribe(later.Sink());
  });
  Received kept;
  auto keep = stage.Subscribe(kept.Sink());
  stage.Start();
  Demand::Hold watching(stage.demand());
  for (int i = 0; i < 3; ++i) PublishAndWait(kept);
  ASSERT_TRUE(later.WaitFor(2));
  const auto units = later.units();
  ASSERT_EQ(units.size(), 2u);
  EXPECT_EQ(units[0]->sequence, 2u);
  EXPECT_EQ(stage.Stats()["subscribers"], 3);
}

TEST_F(H264StageTest, StopJoinsAndNothingComesAfter) {
  auto stage = std::make_unique<H264Stage>(options_, annotated_, metrics_, 30);
  Received received;
  auto subscription = stage->Subscribe(received.Sink());
  stage->Start();
  auto watching = std::make_unique<Demand::Hold>(stage->demand());
  PublishAndWait(received);
  stage->Stop();
  Publish();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(received.size(), 1u);
  watching.reset();  // a Hold must not outlive its Demand
  stage.reset();
  subscription.reset();  // after the stage is gone: harmless
}

TEST_F(H264StageTest, EncoderFailureMidStreamIsCountedAndTheNextFrameIsAnIdr) {
  H264Stage stage(options_, annotated_, metrics_, 30);
  Received received;
  auto subscription = stage.Subscribe(received.Sink());
  stage.Start();
  Demand::Hold watching(stage.demand());
  for (int i = 0; i < 3; ++i) PublishAndWait(received);
  // A frame the encoder cannot take (not 8-bit): Encode fails.
  auto bad = std::make_shared<Frame>();
  bad->meta.sequence = ++sequence_;
  bad->image = cv::Mat(240, 320, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
  annotated_.Publish(std::move(bad));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (stage.Stats()["failures"] == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  PublishAndWait(received);
  PublishAndWait(received);
  const auto units = received.units();
  ASSERT_EQ(units.size(), 5u);
  EXPECT_EQ(units[3]->sequence, 4u);  // numbering goes on
  EXPECT_TRUE(units[3]->keyframe);    // a new encoder starts with an IDR
  EXPECT_FALSE(units[4]->keyframe);
  const nlohmann::json stats = stage.Stats();
  EXPECT_EQ(stats["failures"], 1);
  EXPECT_EQ(stats["restarts"], 1);
  EXPECT_EQ(stats["encoding"], true);
}

TEST_F(H264StageTest, UnavailableEncoderCountsFailuresAndKeepsGoing) {
  options_.encoder = "h264_nosuch";
  H264Stage stage(options_, annotated_, metrics_, 30);
  Received received;
  auto subscription = stage.Subscribe(received.Sink());
  stage.Start();
  Demand::Hold watching(stage.demand());
  for (int i = 0; i < 5; ++i) {
    Publish();
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(received.size(), 0u);
  const nlohmann::json stats = stage.Stats();
  // One attempt; the next comes a second later, not per frame.
  EXPECT_EQ(stats["failures"], 1);
  EXPECT_EQ(stats["encoding"], false);
  stage.Stop();
}

}  // namespace
}  // namespace freshframe::h264
