#include <memory>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "infer/detectors.h"
#include "infer/test_scene.h"

namespace freshframe::infer {
namespace {

double IoU(const cv::Rect& a, const cv::Rect& b) {
  const int overlap = (a & b).area();
  return static_cast<double>(overlap) / (a.area() + b.area() - overlap);
}

// What the fake inner detector saw, kept outside it because the gated
// detector owns the detector itself.
struct Seen {
  int calls = 0;
  std::vector<cv::Size> crops;
  std::vector<cv::Rect> found_in_crop;  // red boxes, crop coordinates
};

// Finds pure-red blobs (the test's objects), in the coordinates of the image
// it is given, and records every image.
class RedThingDetector final : public Detector {
 public:
  explicit RedThingDetector(std::shared_ptr<Seen> seen, bool fixed_cost = false)
      : seen_(std::move(seen)), fixed_cost_(fixed_cost) {}
  bool cost_grows_with_area() const override { return !fixed_cost_; }

  std::vector<Detection> Detect(const cv::Mat& bgr) override {
    ++seen_->calls;
    seen_->crops.push_back(bgr.size());
    cv::Mat red;
    cv::inRange(bgr, cv::Scalar(0, 0, 250), cv::Scalar(5, 5, 255), red);
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(red, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    std::vector<Detection> out;
    for (const auto& contour : contours) {
      const cv::Rect box = cv::boundingRect(contour);
      if (box.area() < 100) continue;
      seen_->found_in_crop.push_back(box);
      out.push_back({box, "thing", 0.9F});
    }
    return out;
  }
  std::string_view name() const override { return "red"; }

 private:
  std::shared_ptr<Seen> seen_;
  bool fixed_cost_;
};

// A static noisy background; red rectangles are the moving objects.
class Scene : public test_support::NoisyScene {
 public:
  Scene() : NoisyScene(cv::Size(640, 480), 200, 3, 11) {}
};

class GatedDetectorTest : public ::testing::Test {
 protected:
  GatedDetectorTest() {
    options_.warmup_frames = 10;
    detector_ = MakeMotionGatedDetector(std::make_unique<RedThingDetector>(seen_), options_);
  }
  void WarmUp() {
    for (int i = 0; i < options_.warmup_frames; ++i) detector_->Detect(scene_.Frame());
  }

  std::shared_ptr<Seen> seen_ = std::make_shared<Seen>();
  DetectorOptions options_;
  std::unique_ptr<Detector> detector_;
  Scene scene_;
};

TEST_F(GatedDetectorTest, NameSaysWhatIsGated) { EXPECT_EQ(detector_->name(), "motion+red"); }

TEST_F(GatedDetectorTest, NoMotionNoModelRun) {
  WarmUp();
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(detector_->Detect(scene_.Frame()).empty());
  EXPECT_EQ(seen_->calls, 0);
  EXPECT_EQ(detector_->activity().frames, 30U);
  EXPECT_EQ(detector_->activity().model_runs, 0U);
}

TEST_F(GatedDetectorTest, MotionRunsTheModelOnACropAndMapsBoxesBack) {
  WarmUp();
  for (int i = 0; i < 5; ++i) detector_->Detect(scene_.Frame());
  const uint64_t runs_before = detector_->activity().model_runs;
  for (int i = 0; i < 10; ++i) {
    const cv::Rect rect(200 + 6 * i, 150, 60, 40);
    const auto found = detector_->Detect(scene_.Frame({rect}));
    ASSERT_EQ(found.size(), 1U) << "frame " << i;  // the thing, not the motion box
    EXPECT_EQ(found[0].label, "thing");
    EXPECT_GT(IoU(found[0].box, rect), 0.9) << found[0].box << " vs " << rect;
    // The model saw a crop, not the frame, with the whole object in it.
    ASSERT_FALSE(seen_->crops.empty());
    EXPECT_LT(seen_->crops.back().area(), 640 * 480 / 2);
    EXPECT_GE(seen_->crops.back().width, 160);  // grown to a minimum for context
    EXPECT_GE(seen_->crops.back().height, 160);
    ASSERT_FALSE(seen_->found_in_crop.empty());
    EXPECT_EQ(seen_->found_in_crop.back().size(), rect.size());
  }
  EXPECT_EQ(detector_->activity().model_runs, runs_before + 10);
  EXPECT_EQ(detector_->activity().frames, 25U);
  EXPECT_EQ(seen_->calls, 10);
}

TEST_F(GatedDetectorTest, DistantMoversGetOneCropEach) {
  WarmUp();
  const cv::Rect a(40, 60, 50, 50);
  const cv::Rect b(520, 380, 60, 50);
  const auto found = detector_->Detect(scene_.Frame({a, b}));
  EXPECT_EQ(seen_->calls, 2);
  EXPECT_EQ(detector_->activity().model_runs, 1U);  // frames with a run, not crops
  ASSERT_EQ(found.size(), 2U);
  const bool a_first = found[0].box.x < found[1].box.x;
  EXPECT_GT(IoU(found[a_first ? 0 : 1].box, a), 0.9);
  EXPECT_GT(IoU(found[a_first ? 1 : 0].box, b), 0.9);
}

// A fixed-input network costs one forward pass per call whatever the crop:
// distant movers get one call on the union of their crops.
TEST_F(GatedDetectorTest, FixedCostModelsRunOncePerFrame) {
  detector_ = MakeMotionGatedDetector(std::make_unique<RedThingDetector>(seen_, true), options_);
  WarmUp();
  const cv::Rect a(40, 60, 50, 50);
  const cv::Rect b(520, 380, 60, 50);
  const auto found = detector_->Detect(scene_.Frame({a, b}));
  EXPECT_EQ(seen_->calls, 1);
  EXPECT_EQ(found.size(), 2U);
}

TEST_F(GatedDetectorTest, MotionAllOverRunsOnceOnTheWholeFrame) {
  WarmUp();
  const auto found = detector_->Detect(scene_.Frame({cv::Rect(20, 20, 600, 440)}));
  EXPECT_EQ(seen_->calls, 1);
  ASSERT_EQ(seen_->crops.size(), 1U);
  EXPECT_EQ(seen_->crops[0], cv::Size(640, 480));
  ASSERT_EQ(found.size(), 1U);
}

TEST(GatedDetectorNullTest, GatingNothingIsPlainMotion) {
  auto detector = MakeMotionGatedDetector(nullptr, DetectorOptions{});
  ASSERT_TRUE(detector);
  EXPECT_EQ(detector->name(), "motion");
}

}  // namespace
}  // namespace freshframe::infer
