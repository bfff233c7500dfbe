#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stop_token>
#include <string>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "capture/capture.h"
#include "infer/detectors.h"

namespace freshframe::infer {
namespace {

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

cv::Mat PatternFrame(int width, int height) {
  auto source = capture::MakePatternSource({width, height, 30});
  std::stop_source stop;
  auto frame = source->Read(stop.get_token()).frame;
  return frame ? frame->image : cv::Mat();
}

TEST(CascadeDetectorTest, ListsTheHaarAndLbpCascadesOfOpencvData) {
  const auto names = ListCascadeNames();
  EXPECT_TRUE(Contains(names, "haarcascade_upperbody"));
  EXPECT_TRUE(Contains(names, "haarcascade_frontalface_default"));
  EXPECT_TRUE(Contains(names, "lbpcascade_frontalface"));
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

TEST(CascadeDetectorTest, EveryListedNameResolvesLoadsAndRuns) {
  const auto names = ListCascadeNames();
  ASSERT_FALSE(names.empty());
  const cv::Mat frame = PatternFrame(320, 240);
  ASSERT_FALSE(frame.empty());
  for (const auto& name : names) {
    auto detector = MakeCascadeDetector(name, DetectorOptions{});
    ASSERT_TRUE(detector.ok()) << name << ": " << detector.error().message;
    EXPECT_EQ((*detector)->name(), "cascade:" + name);
    for (const Detection& d : (*detector)->Detect(frame)) {
      EXPECT_FALSE(d.label.empty()) << name;
      EXPECT_EQ(d.box & cv::Rect(0, 0, frame.cols, frame.rows), d.box) << name;
    }
  }
}

TEST(CascadeDetectorTest, ShortNameFileNameAndPathAllFindUpperbody) {
  for (const std::string name : {"upperbody", "haarcascade_upperbody", "haarcascade_upperbody.xml",
                                 "/usr/share/opencv4/haarcascades/haarcascade_upperbody.xml"}) {
    auto detector = MakeCascadeDetector(name, DetectorOptions{});
    ASSERT_TRUE(detector.ok()) << name << ": " << detector.error().message;
    EXPECT_EQ((*detector)->name(), "cascade:" + name);
  }
}

TEST(CascadeDetectorTest, FaceCascadesAreLabelledFace) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"frontalface_default", "face"},
      {"lbpcascade_frontalface", "face"},
      {"frontalface_alt2", "face"}};
  const cv::Mat frame = PatternFrame(640, 480);
  for (const auto& [name, label] : cases) {
    auto detector = MakeCascadeDetector(name, DetectorOptions{});
    ASSERT_TRUE(detector.ok()) << detector.error().message;
    const auto found = (*detector)->Detect(frame);
    ASSERT_FALSE(found.empty()) << name << " finds no face in the pattern";
    EXPECT_EQ(found[0].label, label) << name;
  }
}

TEST(CascadeDetectorTest, UnknownNameListsTheAvailableNamesAndDirs) {
  auto detector = MakeCascadeDetector("nosuchthing", DetectorOptions{});
  ASSERT_FALSE(detector.ok());
  const std::string& message = detector.error().message;
  EXPECT_NE(message.find("nosuchthing"), std::string::npos) << message;
  EXPECT_NE(message.find("haarcascade_upperbody"), std::string::npos) << message;
  EXPECT_NE(message.find("lbpcascade_frontalface"), std::string::npos) << message;
  EXPECT_NE(message.find("/usr/share/opencv4/haarcascades"), std::string::npos) << message;
  EXPECT_NE(message.find("/usr/share/opencv4/lbpcascades"), std::string::npos) << message;
}

TEST(CascadeDetectorTest, MissingAndUnloadablePathsAreErrors) {
  auto missing = MakeCascadeDetector("/nonexistent/x.xml", DetectorOptions{});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/x.xml"), std::string::npos);

  const auto junk = std::filesystem::temp_directory_path() / "freshframe_junk_cascade.xml";
  std::ofstream(junk) << "<?xml version=\"1.0\"?>\n<opencv_storage></opencv_storage>\n";
  auto unloadable = MakeCascadeDetector(junk.string(), DetectorOptions{});
  std::filesystem::remove(junk);
  ASSERT_FALSE(unloadable.ok());
  EXPECT_NE(unloadable.error().message.find("cannot load"), std::string::npos)
      << unloadable.error().message;
}

TEST(CascadeDetectorTest, FindsThePatternFaceWhereItIs) {
  auto detector = MakeCascadeDetector("frontalface_default", DetectorOptions{});
  ASSERT_TRUE(detector.ok()) << detector.error().message;
  const cv::Mat frame = PatternFrame(640, 480);
  const auto found = (*detector)->Detect(frame);
  // The pattern's first frame has its face (about h/4 tall) near the centre;
  // the cascade may add a weaker false hit in the background texture, and
  // detections come surest first.
  ASSERT_GE(found.size(), 1U);
  EXPECT_EQ(found[0].label, "face");
  for (const Detection& d : found) EXPECT_LE(d.score, found[0].score);
  EXPECT_TRUE(found[0].box.contains({320, 240})) << found[0].box;
  EXPECT_GT(found[0].box.width, 60);
  EXPECT_LT(found[0].box.width, 240);
  EXPECT_GT(found[0].score, 0.0F);
  EXPECT_LE(found[0].score, 1.0F);
}

TEST(CascadeDetectorTest, WideFramesAreScaledDownAndBoxesScaledBack) {
  DetectorOptions options;
  options.max_width = 640;
  auto detector = MakeCascadeDetector("frontalface_default", options);
  ASSERT_TRUE(detector.ok()) << detector.error().message;
  const cv::Mat frame = PatternFrame(1280, 960);
  const auto found = (*detector)->Detect(frame);
  ASSERT_GE(found.size(), 1U);
  EXPECT_TRUE(found[0].box.contains({640, 480})) << found[0].box;
  EXPECT_GT(found[0].box.width, 120);  // the face is h/4 = 240 px tall here
}

TEST(CascadeDetectorTest, GreyEmptyAndOddInputsDoNotThrow) {
  auto detector = MakeCascadeDetector("frontalface_default", DetectorOptions{});
  ASSERT_TRUE(detector.ok()) << detector.error().message;
  cv::Mat grey;
  cv::cvtColor(PatternFrame(640, 480), grey, cv::COLOR_BGR2GRAY);
  const auto found = (*detector)->Detect(grey);
  ASSERT_GE(found.size(), 1U);
  EXPECT_TRUE(found[0].box.contains({320, 240})) << found[0].box;
  EXPECT_TRUE((*detector)->Detect(cv::Mat()).empty());
  EXPECT_TRUE((*detector)->Detect(cv::Mat(100, 100, CV_32FC2, cv::Scalar::all(0))).empty());
}

TEST(CascadeDetectorTest, HaarFaceDetectorIsBuiltOnTheCascades) {
  auto detector = MakeHaarFaceDetector(HaarOptions{});
  ASSERT_TRUE(detector.ok()) << detector.error().message;
  EXPECT_EQ((*detector)->name(), "faces");
  const auto found = (*detector)->Detect(PatternFrame(640, 480));
  ASSERT_GE(found.size(), 1U);
  EXPECT_EQ(found[0].label, "face");
  EXPECT_TRUE(found[0].box.contains({320, 240})) << found[0].box;
}

}  // namespace
}  // namespace freshframe::infer
