// AnnotatorStage with LiveSettings: mirroring (pixels, strip and boxes), the
// detector switch, and overlay modes changed while it runs.
#include <chrono>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "core/clock.h"
#include "core/live_settings.h"
#include "core/timecode.h"
#include "infer/infer.h"

namespace freshframe::infer {
namespace {

using namespace std::chrono_literals;

constexpr int kWidth = 640;
constexpr int kHeight = 480;
// A box well inside the left half, below the strip.
const cv::Rect kBox(60, 200, 100, 100);

// Dark left half, bright right half, and the timecode strip.
FramePtr MakeFrame(uint64_t sequence) {
  auto frame = std::make_shared<Frame>();
  frame->meta.sequence = sequence;
  frame->meta.stamps.capture_us = MonotonicMicros();
  frame->image = cv::Mat(kHeight, kWidth, CV_8UC3, cv::Scalar::all(30));
  frame->image(cv::Rect(kWidth / 2, 0, kWidth / 2, kHeight)).setTo(cv::Scalar::all(220));
  timecode::Write(frame->image, frame->meta.stamps.capture_us);
  return frame;
}

std::vector<Detection> Detections() { return {{kBox, "thing", 0.9F}}; }

DetectionSetPtr MakeSet(const FramePtr& frame) {
  auto set = std::make_shared<DetectionSet>();
  set->frame = frame;
  set->detections = Detections();
  set->infer_start_us = frame->meta.stamps.capture_us + 1;
  set->infer_end_us = frame->meta.stamps.capture_us + 2;
  return set;
}

bool Differs(const cv::Mat& a, const cv::Mat& b, cv::Rect area) {
  return cv::norm(a(area), b(area), cv::NORM_L1) > 0;
}

TEST(MirrorDetectionsTest, FlipsXAsCvFlipDoes) {
  const auto mirrored = MirrorDetections({{cv::Rect(10, 20, 30, 40), "a", 1.0F}}, 100);
  ASSERT_EQ(mirrored.size(), 1U);
  EXPECT_EQ(mirrored[0].box, cv::Rect(60, 20, 30, 40));
  EXPECT_EQ(mirrored[0].label, "a");
  EXPECT_EQ(MirrorDetections(mirrored, 100)[0].box, cv::Rect(10, 20, 30, 40));
}

class AnnotatorSettingsTest : public ::testing::Test {
 protected:
  void Start(const SettingsValues& values) {
    settings_.Apply({values.detector, values.overlay, values.quality, values.mirror});
    annotator_.emplace(Overlay::kLatest, raw_, &sets_, annotated_, metrics_, false, &settings_);
    annotator_->Start();
  }
  void TearDown() override {
    if (annotator_) annotator_->Stop();
  }

  void Set(SettingsChange change) { settings_.Apply(change); }

  // The next annotated frame, or null after `timeout`.
  FramePtr Next(std::chrono::milliseconds timeout = 2000ms) {
    auto next = annotated_.WaitNewer(seen_, timeout);
    if (!next) return nullptr;
    seen_ = next->version;
    return next->value;
  }

  LiveSettings settings_;
  LatestSlot<FramePtr> raw_, annotated_;
  LatestSlot<DetectionSetPtr> sets_;
  Metrics metrics_;
  std::optional<AnnotatorStage> annotator_;
  uint64_t seen_ = 0;
};

TEST_F(AnnotatorSettingsTest, MirrorFlipsPixelsStripAndBoxesButNotText) {
  Start({true, OverlayMode::kLatest, 85, true});
  const FramePtr source = MakeFrame(1);
  sets_.Publish(MakeSet(source));
  raw_.Publish(source);
  const FramePtr out = Next();
  ASSERT_TRUE(out);
  EXPECT_NE(out->image.data, source->image.data);
  EXPECT_EQ(source->image.at<cv::Vec3b>(300, 10)[0], 30);  // the shared raw frame is untouched

  // The picture is flipped: bright half on the left now.
  EXPECT_GT(cv::mean(out->image(cv::Rect(0, 400, 100, 80)))[0], 200);
  EXPECT_LT(cv::mean(out->image(cv::Rect(540, 400, 100, 80)))[0], 50);
  // The strip is reversed, as a reader expects of a mirrored frame.
  const auto reading = timecode::Read(out->image, MonotonicMicros());
  ASSERT_TRUE(reading);
  EXPECT_TRUE(reading->mirrored);
  EXPECT_EQ(reading->t_us, source->meta.stamps.capture_us);

  // The box is drawn where its object went (x' = W - x - w), not where it was.
  cv::Mat flipped;
  cv::flip(source->image, flipped, 1);
  const cv::Rect moved(kWidth - kBox.x - kBox.width, kBox.y, kBox.width, kBox.height);
  EXPECT_TRUE(Differs(out->image, flipped, moved));
  EXPECT_FALSE(Differs(out->image, flipped,
                       cv::Rect(kBox.x - 10, kBox.y - 30, kBox.width + 20, kBox.height + 40)));
  // Flipped first, drawn after: exactly the boxes and labels drawn on the
  // mirrored picture, so the text reads left to right. Drawn first and then
  // flipped, the label would be mirror writing.
  cv::Mat expected = flipped.clone();
  DrawDetections(expected, MirrorDetections(Detections(), kWidth));
  EXPECT_EQ(cv::norm(out->image, expected, cv::NORM_L1), 0.0);
  cv::Mat drawn_then_flipped = source->image.clone();
  DrawDetections(drawn_then_flipped, Detections());
  cv::flip(drawn_then_flipped, drawn_then_flipped, 1);
  EXPECT_GT(cv::norm(out->image, drawn_then_flipped, cv::NORM_L1), 0.0);

  Set({.mirror = false});
  raw_.Publish(MakeFrame(2));
  const FramePtr plain = Next();
  ASSERT_TRUE(plain);
  EXPECT_FALSE(timecode::Read(plain->image, MonotonicMicros())->mirrored);
}

TEST_F(AnnotatorSettingsTest, DetectorOffDrawsNoBoxesAndSharesPixels) {
  Start({true, OverlayMode::kLatest, 85, false});
  const FramePtr first = MakeFrame(1);
  sets_.Publish(MakeSet(first));
  raw_.Publish(first);
  FramePtr out = Next();
  ASSERT_TRUE(out);
  EXPECT_TRUE(Differs(out->image, first->image, kBox));
  EXPECT_EQ(out->meta.detections_sequence, 1U);

  Set({.detector = false});
  const FramePtr second = MakeFrame(2);
  raw_.Publish(second);
  out = Next();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->image.data, second->image.data);  // nothing drawn, nothing copied
  EXPECT_EQ(out->meta.detections_sequence, 0U);
  EXPECT_EQ(out->meta.stamps.infer_end_us, 0);

  // Back on, the switched-off marker (what the detector stage publishes)
  // is the newest set: still no stale box, and no inference stamps.
  auto marker = std::make_shared<DetectionSet>();
  marker->frame = second;
  marker->detector_running = false;
  sets_.Publish(marker);
  Set({.detector = true});
  const FramePtr third = MakeFrame(3);
  raw_.Publish(third);
  out = Next();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->image.data, third->image.data);
  EXPECT_EQ(out->meta.detections_sequence, 0U);
}

TEST_F(AnnotatorSettingsTest, OverlayModeChangesWhileRunningAndNeverGoesBack) {
  Start({true, OverlayMode::kInferred, 85, false});
  const FramePtr f1 = MakeFrame(1);
  const FramePtr f2 = MakeFrame(2);
  raw_.Publish(f1);
  raw_.Publish(f2);
  EXPECT_FALSE(Next(200ms)) << "inferred: raw frames alone are not streamed";
  sets_.Publish(MakeSet(f1));
  FramePtr out = Next();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->meta.sequence, 1U);

  Set({.overlay = OverlayMode::kLatest});
  const FramePtr f3 = MakeFrame(3);
  raw_.Publish(f3);
  // The switch may be seen before frame 3 is published: then frame 2, the
  // newest raw frame at that moment, is streamed first. Either way frame 3
  // comes, drawn with the newest set, and nothing older than frame 2.
  out = Next();
  ASSERT_TRUE(out);
  if (out->meta.sequence == 2U) out = Next();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->meta.sequence, 3U);
  EXPECT_EQ(out->meta.detections_sequence, 1U);  // drawn with the newest set

  Set({.overlay = OverlayMode::kInferred});
  sets_.Publish(MakeSet(f2));  // older than frame 3, already streamed: skipped
  EXPECT_FALSE(Next(200ms));
  const FramePtr f4 = MakeFrame(4);
  raw_.Publish(f4);
  sets_.Publish(MakeSet(f4));
  out = Next();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->meta.sequence, 4U);

  // Inferred with the detector off would freeze the stream: raw frames flow.
  Set({.detector = false});
  raw_.Publish(MakeFrame(5));
  out = Next();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->meta.sequence, 5U);
  EXPECT_EQ(out->meta.detections_sequence, 0U);
}

// --detections-max-age: a set computed on a frame captured longer ago than
// the age given is not drawn on the frame at hand (the default is 1 s).
TEST(AnnotatorMaxAgeTest, DetectionsOlderThanTheMaxAgeGivenAreNotDrawn) {
  LatestSlot<FramePtr> raw, annotated;
  LatestSlot<DetectionSetPtr> sets;
  Metrics metrics;
  AnnotatorStage annotator(Overlay::kLatest, raw, &sets, annotated, metrics, false, nullptr, 200ms);
  annotator.Start();
  const int64_t t0 = MonotonicMicros();
  const auto at = [](uint64_t sequence, int64_t capture_us) {
    auto frame = std::make_shared<Frame>();
    frame->meta.sequence = sequence;
    frame->meta.stamps.capture_us = capture_us;
    frame->image = cv::Mat(kHeight, kWidth, CV_8UC3, cv::Scalar::all(30));
    return FramePtr(frame);
  };
  sets.Publish(MakeSet(at(1, t0)));
  uint64_t seen = 0;
  const auto next = [&] {
    auto got = annotated.WaitNewer(seen, 2000ms);
    if (!got) return FramePtr();
    seen = got->version;
    return got->value;
  };
  raw.Publish(at(2, t0 + 100'000));  // 100 ms after the detections' frame: drawn
  FramePtr out = next();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->meta.detections_sequence, 1U);
  raw.Publish(at(3, t0 + 500'000));  // 500 ms: older than 200 ms, not drawn
  out = next();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->meta.detections_sequence, 0U);
  EXPECT_FALSE(Differs(out->image, cv::Mat(kHeight, kWidth, CV_8UC3, cv::Scalar::all(30)), kBox));
  annotator.Stop();
}

}  // namespace
}  // namespace freshframe::infer
