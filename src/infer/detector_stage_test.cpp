// DetectorStage with LiveSettings: switched off it runs no inference and says
// so once in both slots; switched on again it resumes with the next frame.
#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "core/live_settings.h"
#include "infer/infer.h"

namespace freshframe::infer {
namespace {

using namespace std::chrono_literals;

class CountingDetector final : public Detector {
 public:
  explicit CountingDetector(std::atomic<int>& calls) : calls_(calls) {}
  std::vector<Detection> Detect(const cv::Mat&) override {
    ++calls_;
    return {{cv::Rect(10, 40, 20, 20), "thing", 0.5F}};
  }
  std::string_view name() const override { return "counting"; }

 private:
  std::atomic<int>& calls_;
};

FramePtr MakeFrame(uint64_t sequence) {
  auto frame = std::make_shared<Frame>();
  frame->meta.sequence = sequence;
  frame->meta.stamps.capture_us = static_cast<int64_t>(sequence) * 1000;
  frame->image = cv::Mat(48, 64, CV_8UC3, cv::Scalar::all(90));
  return frame;
}

class DetectorSwitchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stage_.emplace(std::make_unique<CountingDetector>(calls_), raw_, sets_, metrics_, &json_,
                   &settings_);
    stage_->Start();
  }
  void TearDown() override { stage_->Stop(); }

  void Switch(bool on) {
    SettingsChange change;
    change.detector = on;
    settings_.Apply(change);
  }

  // The next JSON text after `version`, parsed; null after 2 s.
  nlohmann::json NextJson(uint64_t& version) {
    auto next = json_.WaitNewer(version, 2s);
    if (!next) return nullptr;
    version = next->version;
    return nlohmann::json::parse(*next->value);
  }

  std::atomic<int> calls_{0};
  LiveSettings settings_;
  LatestSlot<FramePtr> raw_;
  LatestSlot<DetectionSetPtr> sets_;
  LatestSlot<JsonTextPtr> json_;
  Metrics metrics_;
  std::optional<DetectorStage> stage_;
};

TEST_F(DetectorSwitchTest, OffRunsNoInferenceAndOnResumesWithTheNextFrame) {
  uint64_t json_version = 0;
  raw_.Publish(MakeFrame(1));
  nlohmann::json set = NextJson(json_version);
  ASSERT_FALSE(set.is_null());
  EXPECT_EQ(set["detector_running"], true);
  EXPECT_EQ(set["sequence"], 1);
  EXPECT_EQ(set["detections"].size(), 1U);
  EXPECT_EQ(calls_.load(), 1);

  Switch(false);
  raw_.Publish(MakeFrame(2));
  set = NextJson(json_version);
  ASSERT_FALSE(set.is_null());
  EXPECT_EQ(set["detector_running"], false);
  EXPECT_EQ(set["detections"].size(), 0U);
  EXPECT_EQ(set["detector"], "counting");
  auto marker = sets_.WaitNewer(1, 2s);  // published just after the JSON
  ASSERT_TRUE(marker);
  EXPECT_FALSE(marker->value->detector_running);
  EXPECT_TRUE(marker->value->detections.empty());
  ASSERT_TRUE(marker->value->frame);

  // Frames keep coming; none is inferred and nothing more is published.
  const uint64_t sets_version = sets_.version();
  for (uint64_t sequence = 3; sequence <= 8; ++sequence) {
    raw_.Publish(MakeFrame(sequence));
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(calls_.load(), 1);
  EXPECT_EQ(sets_.version(), sets_version);
  EXPECT_FALSE(json_.WaitNewer(json_version, 100ms));
  EXPECT_EQ(stage_->activity().frames, 1U);

  Switch(true);
  raw_.Publish(MakeFrame(9));
  set = NextJson(json_version);
  ASSERT_FALSE(set.is_null());
  EXPECT_EQ(set["detector_running"], true);
  EXPECT_EQ(set["sequence"], 9);
  EXPECT_EQ(calls_.load(), 2);
  // The frames dropped while off are not counted as skipped.
  EXPECT_EQ(metrics_.Stage("infer").skipped(), 0U);
}

TEST_F(DetectorSwitchTest, OffBeforeAnyFrameSaysSoWithoutAFrame) {
  Switch(false);
  uint64_t json_version = 0;
  const nlohmann::json set = NextJson(json_version);
  ASSERT_FALSE(set.is_null());
  EXPECT_EQ(set["detector_running"], false);
  EXPECT_EQ(set["sequence"], 0);
  EXPECT_EQ(set["width"], 0);
  // Nothing for the annotator: there is no real set to replace.
  EXPECT_EQ(sets_.version(), 0U);
  raw_.Publish(MakeFrame(1));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(calls_.load(), 0);
}

}  // namespace
}  // namespace freshframe::infer
