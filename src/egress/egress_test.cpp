#include "egress/egress.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace freshframe::egress {
namespace {

using namespace std::chrono_literals;

encode::EncodedFramePtr Unit(uint64_t sequence, bool keyframe) {
  auto unit = std::make_shared<encode::EncodedFrame>();
  unit->codec = encode::Codec::kH264;
  unit->sequence = sequence;
  unit->keyframe = keyframe;
  unit->bytes.assign(100, 0);
  return unit;
}

// A stand-in for H264Stage::Subscribe: one sink at a time.
struct FakeStage {
  h264::AccessUnitSink sink;
  int subscribed = 0;
  SubscribeFn Subscribe() {
    return [this](h264::AccessUnitSink s) {
      sink = std::move(s);
      ++subscribed;
      return std::shared_ptr<void>(this, [this](void*) { sink = nullptr; });
    };
  }
  void Emit(uint64_t sequence, bool keyframe) {
    if (sink) sink(Unit(sequence, keyframe));
  }
};

TEST(FeedTest, HoldsDemandAndStartsAtAnIdr) {
  FakeStage stage;
  Demand demand;
  h264::KeyframeRequests keyframes;
  Feed feed(stage.Subscribe(), demand, keyframes);
  EXPECT_EQ(demand.watchers(), 0);
  feed.Start();
  EXPECT_EQ(demand.watchers(), 1);
  EXPECT_EQ(keyframes.counts().requested[static_cast<size_t>(h264::KeyReason::kJoin)], 1u);
  stage.Emit(1, false);  // a P-frame before any IDR is never given out
  EXPECT_EQ(feed.Next(10ms), nullptr);
  stage.Emit(2, true);
  encode::EncodedFramePtr unit = feed.Next(1s);
  ASSERT_NE(unit, nullptr);
  EXPECT_TRUE(unit->keyframe);
  stage.Emit(3, false);
  ASSERT_NE(feed.Next(1s), nullptr);
  feed.Stop();
  EXPECT_EQ(demand.watchers(), 0);
  EXPECT_EQ(stage.sink, nullptr);
  EXPECT_EQ(feed.Next(1s), nullptr);  // at once while stopped
}

TEST(FeedTest, AStuckOutputSkipsToTheNextIdrInsteadOfQueueing) {
  FakeStage stage;
  Demand demand;
  h264::KeyframeRequests keyframes;
  Feed feed(stage.Subscribe(), demand, keyframes);
  feed.Start();
  stage.Emit(1, true);
  // The output takes nothing for 100 access units: the sink never blocks
  // and never keeps more than the gate's small queue.
  for (uint64_t s = 2; s <= 100; ++s) stage.Emit(s, false);
  EXPECT_GE(feed.skips_to_key(), 1u);
  EXPECT_GE(feed.dropped(), 97u);
  EXPECT_EQ(feed.Next(10ms), nullptr);  // waiting for an IDR
  EXPECT_GE(keyframes.counts().requested[static_cast<size_t>(h264::KeyReason::kGap)], 1u);
  stage.Emit(101, true);
  encode::EncodedFramePtr unit = feed.Next(1s);
  ASSERT_NE(unit, nullptr);
  EXPECT_EQ(unit->sequence, 101u);
}

TEST(FeedTest, RestartDropsTheQueueAndWaitsForAFreshIdr) {
  FakeStage stage;
  Demand demand;
  h264::KeyframeRequests keyframes;
  Feed feed(stage.Subscribe(), demand, keyframes);
  feed.Start();
  stage.Emit(1, true);
  stage.Emit(2, false);
  feed.Restart(h264::KeyReason::kJoin);
  EXPECT_EQ(keyframes.counts().requested[static_cast<size_t>(h264::KeyReason::kJoin)], 2u);
  stage.Emit(3, false);
  EXPECT_EQ(feed.Next(10ms), nullptr);
  stage.Emit(4, true);
  encode::EncodedFramePtr unit = feed.Next(1s);
  ASSERT_NE(unit, nullptr);
  EXPECT_EQ(unit->sequence, 4u);
  EXPECT_EQ(feed.skips_to_key(), 1u);
  EXPECT_EQ(feed.dropped(), 3u);  // 1 and 2 queued, 3 while waiting
}

TEST(FeedTest, InterruptWakesAWaitingNext) {
  FakeStage stage;
  Demand demand;
  h264::KeyframeRequests keyframes;
  Feed feed(stage.Subscribe(), demand, keyframes);
  feed.Start();
  std::atomic<bool> returned = false;
  std::thread waiter([&] {
    EXPECT_EQ(feed.Next(30s), nullptr);
    returned = true;
  });
  std::this_thread::sleep_for(20ms);
  feed.Interrupt();
  waiter.join();
  EXPECT_TRUE(returned);
  feed.Interrupt();  // before a Next: that Next returns at once
  EXPECT_EQ(feed.Next(30s), nullptr);
}

TEST(BackoffTest, DoublesUpToTheMaximumAndResets) {
  Backoff backoff(500ms, 4s);
  EXPECT_EQ(backoff.Next(), 500ms);
  EXPECT_EQ(backoff.Next(), 1000ms);
  EXPECT_EQ(backoff.Next(), 2000ms);
  EXPECT_EQ(backoff.Next(), 4000ms);
  EXPECT_EQ(backoff.Next(), 4000ms);
  backoff.Reset();
  EXPECT_EQ(backoff.Next(), 500ms);
}

TEST(OutputStatusTest, ReportsStateErrorsAndReconnects) {
  OutputStatus status("rtp", "10.0.0.2:8004");
  EXPECT_EQ(status.Json()["state"], "stopped");
  status.Set(OutputStatus::State::kConnecting);
  status.Set(OutputStatus::State::kRetrying, "connection refused");
  nlohmann::json json = status.Json();
  EXPECT_EQ(json["state"], "retrying");
  EXPECT_EQ(json["error"], "connection refused");
  EXPECT_EQ(json["connects"], 0);
  status.Set(OutputStatus::State::kConnected);
  status.CountSent(1000, true);
  status.CountSent(200, false);
  status.Set(OutputStatus::State::kRetrying, "timeout");
  status.Set(OutputStatus::State::kConnected);
  status.SetExtra({{"pli", 3}});
  json = status.Json();
  EXPECT_EQ(json["state"], "connected");
  EXPECT_FALSE(json.contains("error"));
  EXPECT_EQ(json["reconnects"], 1);
  EXPECT_EQ(json["frames"], 2);
  EXPECT_EQ(json["keyframes"], 1);
  EXPECT_EQ(json["bytes"], 1200);
  EXPECT_EQ(json["pli"], 3);
  EXPECT_EQ(json["kind"], "rtp");
}

}  // namespace
}  // namespace freshframe::egress
