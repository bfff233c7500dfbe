#include <chrono>
#include <stop_token>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "capture/capture.h"
#include "core/timecode.h"
#include "infer/infer.h"

namespace freshframe::infer {
namespace {

using namespace std::chrono_literals;

TEST(HaarDetectorTest, MissingCascadeNamesThePathsTried) {
  HaarOptions options;
  options.cascade_path = "/nonexistent/cascade.xml";
  auto detector = MakeHaarFaceDetector(options);
  ASSERT_FALSE(detector.ok());
  EXPECT_NE(detector.error().message.find("/nonexistent/cascade.xml"), std::string::npos);
}

TEST(HaarDetectorTest, FindsTheFaceInTheTestPattern) {
  auto detector = MakeHaarFaceDetector(HaarOptions{});
  ASSERT_TRUE(detector.ok()) << detector.error().message;
  auto source = capture::MakePatternSource({640, 480, 30});
  std::stop_source stop;
  auto frame = source->Read(stop.get_token()).frame;
  ASSERT_TRUE(frame);
  auto found = (*detector)->Detect(frame->image);
  ASSERT_GE(found.size(), 1U);
  EXPECT_EQ(found[0].label, "face");
  EXPECT_GT(found[0].box.area(), 0);
  EXPECT_GT(found[0].score, 0.0F);
}

TEST(AnnotatorTest, DrawingNeverTouchesTheTimecodeRows) {
  cv::Mat image(480, 640, CV_8UC3, cv::Scalar(90, 90, 90));
  cv::Mat before = image.clone();
  // Boxes at the very top, partly above the frame, and one normal.
  DrawDetections(image, {{cv::Rect(0, 0, 200, 100), "face", 0.9F},
                         {cv::Rect(300, -20, 100, 60), "face", 0.5F},
                         {cv::Rect(100, 200, 80, 80), "person", 1.0F}});
  const int strip = timecode::StripRows(640);
  EXPECT_EQ(cv::norm(image.rowRange(0, strip), before.rowRange(0, strip), cv::NORM_L1), 0.0);
  EXPECT_GT(cv::norm(image, before, cv::NORM_L1), 0.0);
}

TEST(AnnotatorTest, HudStaysBelowTheStripAtEverySize) {
  for (const cv::Size size : {cv::Size(320, 240), cv::Size(640, 480), cv::Size(1920, 1080)}) {
    cv::Mat image(size, CV_8UC3, cv::Scalar(90, 90, 90));
    cv::Mat before = image.clone();
    DrawHud(image, "29.9 fps | det 5.0 fps 38 ms | e2e 41 ms");
    const int strip = timecode::StripRows(size.width);
    EXPECT_EQ(cv::norm(image.rowRange(0, strip), before.rowRange(0, strip), cv::NORM_L1), 0.0);
    EXPECT_GT(cv::norm(image, before, cv::NORM_L1), 0.0) << size;
  }
}

// A detector that takes a fixed time, to show the stages' pacing.
class SlowDetector final : public Detector {
 public:
  std::vector<Detection> Detect(const cv::Mat&) override {
    std::this_thread::sleep_for(200ms);
    return {{cv::Rect(100, 100, 50, 50), "thing", 1.0F}};
  }
  std::string_view name() const override { return "slow"; }
};

// Grabber (30 fps) -> detector sleeping 200 ms -> annotator, run for `duration`.
class StagesTest : public ::testing::Test {
 protected:
  void RunPipeline(Overlay overlay, std::chrono::milliseconds duration) {
    capture::Grabber grabber(capture::MakePatternSource({320, 240, 30}), raw_, metrics_);
    DetectorStage detector(std::make_unique<SlowDetector>(), raw_, detections_, metrics_);
    AnnotatorStage annotator(overlay, raw_, &detections_, annotated_, metrics_);
    annotator.Start();
    detector.Start();
    grabber.Start();
    std::this_thread::sleep_for(duration);
    grabber.Stop();
    detector.Stop();
    annotator.Stop();
  }

  LatestSlot<FramePtr> raw_, annotated_;
  LatestSlot<DetectionSetPtr> detections_;
  Metrics metrics_;
};

TEST_F(StagesTest, LatestOverlayKeepsSourceRateWhileDetectorIsSlow) {
  RunPipeline(Overlay::kLatest, 3000ms);
  // The source rate (30 fps: ~90 frames), not the detector's (5 fps: ~15);
  // generous bounds for a busy machine.
  EXPECT_GE(metrics_.Stage("annotate").frames(), 70U);
  EXPECT_LE(metrics_.Stage("infer").frames(), 16U);
  EXPECT_GT(metrics_.Stage("infer").skipped(), 0U);
  auto last = annotated_.Latest();
  ASSERT_TRUE(last.has_value());
  EXPECT_GT(last->value->meta.detections_sequence, 0U);
  EXPECT_LE(last->value->meta.detections_sequence, last->value->meta.sequence);
}

TEST_F(StagesTest, InferredOverlayStreamsOnlyInferredFramesAtTheDetectorsRate) {
  RunPipeline(Overlay::kInferred, 3000ms);
  auto last = annotated_.Latest();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->value->meta.detections_sequence, last->value->meta.sequence);
  // About 5 fps: ~15 frames in 3 s.
  const uint64_t streamed = metrics_.Stage("annotate").frames();
  EXPECT_GE(streamed, 9U);
  EXPECT_LE(streamed, 16U);
  EXPECT_LE(streamed, metrics_.Stage("infer").frames());
}

}  // namespace
}  // namespace freshframe::infer
