#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/clock.h"
#include "core/timecode.h"
#include "infer/detectors.h"
#include "infer/test_scene.h"

namespace freshframe::infer {
namespace {

double IoU(const cv::Rect& a, const cv::Rect& b) {
  const int overlap = (a & b).area();
  return static_cast<double>(overlap) / (a.area() + b.area() - overlap);
}

// A static textured background plus fresh sensor-like noise on every frame,
// with solid red rectangles drawn on top.
class Scene : public test_support::NoisyScene {
 public:
  explicit Scene(cv::Size size) : NoisyScene(size, 256, 4, 7) {}
};

DetectorOptions Options(int warmup = 20, int min_area = 500) {
  DetectorOptions options;
  options.warmup_frames = warmup;
  options.min_area = min_area;
  return options;
}

void WarmUp(Detector& detector, Scene& scene, int frames) {
  for (int i = 0; i < frames; ++i) ASSERT_TRUE(detector.Detect(scene.Frame()).empty());
}

TEST(MotionDetectorTest, MovingRectangleIsOneRegionAtItsPlace) {
  Scene scene({640, 480});
  auto detector = MakeMotionDetector(Options());
  EXPECT_EQ(detector->name(), "motion");
  WarmUp(*detector, scene, 20);
  for (int i = 0; i < 30; ++i) {
    const cv::Rect rect(100 + 8 * i, 200, 80, 60);
    const auto found = detector->Detect(scene.Frame({rect}));
    ASSERT_EQ(found.size(), 1U) << "frame " << i;
    EXPECT_GT(IoU(found[0].box, rect), 0.5) << "frame " << i << ": " << found[0].box;
    EXPECT_EQ(found[0].label, "motion");
    EXPECT_GT(found[0].score, 0.5F);
    EXPECT_LE(found[0].score, 1.0F);
  }
}

TEST(MotionDetectorTest, StaticNoisySceneHasNoRegionsAfterWarmUp) {
  Scene scene({640, 480});
  auto detector = MakeMotionDetector(Options());
  WarmUp(*detector, scene, 20);
  for (int i = 0; i < 40; ++i) EXPECT_TRUE(detector->Detect(scene.Frame()).empty()) << i;
}

TEST(MotionDetectorTest, NothingIsReportedDuringWarmUp) {
  Scene scene({640, 480});
  auto detector = MakeMotionDetector(Options(/*warmup=*/10));
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(detector->Detect(scene.Frame({cv::Rect(50 + 20 * i, 100, 100, 100)})).empty());
  }
}

TEST(MotionDetectorTest, MinAreaFiltersSmallMotion) {
  for (const int min_area : {500, 50}) {
    Scene scene({640, 480});
    auto detector = MakeMotionDetector(Options(20, min_area));
    WarmUp(*detector, scene, 20);
    size_t regions = 0;
    for (int i = 0; i < 10; ++i) {
      regions += detector->Detect(scene.Frame({cv::Rect(300 + 6 * i, 300, 12, 12)})).size();
    }
    EXPECT_EQ(regions, min_area == 500 ? 0U : 10U) << "min_area " << min_area;
  }
}

TEST(MotionDetectorTest, NearbyPiecesMergeAndDistantMoversStaySeparate) {
  Scene scene({640, 480});
  auto detector = MakeMotionDetector(Options());
  WarmUp(*detector, scene, 20);
  for (int i = 0; i < 5; ++i) {
    // Two halves of one object 3 px apart, and a second object far away.
    const cv::Rect left(100 + 8 * i, 100, 40, 60);
    const cv::Rect right(left.x + 43, 100, 40, 60);
    const cv::Rect far(450, 300 - 8 * i, 70, 70);
    auto found = detector->Detect(scene.Frame({left, right, far}));
    ASSERT_EQ(found.size(), 2U) << "frame " << i;
    if (found[0].box.x > found[1].box.x) std::swap(found[0], found[1]);
    EXPECT_GT(IoU(found[0].box, left | right), 0.5) << found[0].box;
    EXPECT_GT(IoU(found[1].box, far), 0.5) << found[1].box;
  }
}

TEST(MotionDetectorTest, WideFramesGiveBoxesInFrameCoordinates) {
  Scene scene({1280, 720});
  DetectorOptions options = Options();
  options.max_width = 320;  // a quarter of the width
  auto detector = MakeMotionDetector(options);
  WarmUp(*detector, scene, 20);
  const cv::Rect rect(600, 300, 160, 120);
  const auto found = detector->Detect(scene.Frame({rect}));
  ASSERT_EQ(found.size(), 1U);
  EXPECT_GT(IoU(found[0].box, rect), 0.5) << found[0].box;
}

TEST(MotionDetectorTest, TheTimecodeStripIsNotMotion) {
  Scene scene({640, 480});
  auto detector = MakeMotionDetector(Options());
  for (int i = 0; i < 40; ++i) {
    // A fresh stamp every frame, as the pattern source writes it: the strip's
    // cells change while the scene stands still.
    cv::Mat frame = scene.Frame();
    ASSERT_TRUE(timecode::Write(frame, MonotonicMicros() + i * 7919));
    EXPECT_TRUE(detector->Detect(frame).empty()) << i;
  }
}

TEST(MotionDetectorTest, SizeChangeRestartsTheWarmUpAndOddInputsDoNotThrow) {
  Scene small({320, 240});
  Scene large({640, 480});
  auto detector = MakeMotionDetector(Options(/*warmup=*/5));
  WarmUp(*detector, small, 5);
  // A new size: the model restarts and warms up again rather than reporting
  // the whole frame as motion.
  EXPECT_TRUE(detector->Detect(large.Frame()).empty());
  EXPECT_TRUE(detector->Detect(cv::Mat()).empty());
  EXPECT_TRUE(detector->Detect(cv::Mat(10, 10, CV_32FC2, cv::Scalar::all(0))).empty());
}

}  // namespace
}  // namespace freshframe::infer
