// MakeDnnDetector on tiny generated ONNX models whose outputs are known
// constants (tests/models/make_onnx_models.py lists the boxes and why each
// is there). The models' network input is 320x320; frames are 640x480
// (letterboxed with 40 px bands above and below) and 1280x720 (70 px bands).

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "infer/detectors.h"

namespace freshframe::infer {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// The models, generated once per test process into a directory of its own
// (ctest runs tests in parallel processes) and removed at exit.
class GeneratedModels {
 public:
  GeneratedModels() {
    std::string pattern = (fs::temp_directory_path() / "freshframe_dnn_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = pattern;
    const fs::path log = dir_ / "make_onnx_models.log";
    const std::string command = "/usr/bin/python3 '" FRESHFRAME_SOURCE_DIR
                                "/tests/models/make_onnx_models.py' '" +
                                dir_.string() + "' >'" + log.string() + "' 2>&1";
    if (std::system(command.c_str()) != 0) {
      std::ifstream in(log);
      std::stringstream text;
      text << in.rdbuf();
      error_ = command + " failed (needs Debian's python3-onnx and python3-numpy):\n" + text.str();
    }
  }
  ~GeneratedModels() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  GeneratedModels(const GeneratedModels&) = delete;
  GeneratedModels& operator=(const GeneratedModels&) = delete;

  const fs::path& dir() const { return dir_; }
  const std::string& error() const { return error_; }

 private:
  fs::path dir_;
  std::string error_;
};

const GeneratedModels& Models() {
  static const GeneratedModels models;
  return models;
}

// "label [x,y wxh] score": readable in failure messages, score to 2 places.
std::string Describe(const Detection& d) {
  char score[16];
  std::snprintf(score, sizeof score, "%.2f", static_cast<double>(d.score));
  return d.label + " [" + std::to_string(d.box.x) + "," + std::to_string(d.box.y) + " " +
         std::to_string(d.box.width) + "x" + std::to_string(d.box.height) + "] " + score;
}

std::vector<std::string> Describe(const std::vector<Detection>& detections) {
  std::vector<std::string> out;
  for (const auto& d : detections) out.push_back(Describe(d));
  return out;
}

class DnnDetectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Models().error().empty()) << Models().error();
    options_.input_width = 320;
    options_.input_height = 320;
  }

  std::string Model(const std::string& name) const { return (Models().dir() / name).string(); }

  std::string WriteFile(const std::string& name, const std::string& contents) const {
    const std::string path = Model(name);
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  std::vector<std::string> Run(const std::string& model, cv::Size frame_size) {
    auto detector = MakeDnnDetector(Model(model), options_);
    EXPECT_TRUE(detector.ok()) << detector.error().message;
    if (!detector.ok()) return {};
    // The models ignore the picture, so its content does not matter.
    const cv::Mat frame(frame_size, CV_8UC3, cv::Scalar(30, 60, 90));
    return Describe((*detector)->Detect(frame));
  }

  DetectorOptions options_;
};

// The same boxes in each layout, so every test runs on all three.
class DnnLayoutTest : public DnnDetectorTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    DnnDetectorTest::SetUp();
    options_.labels_path = WriteFile("labels.txt", "person\nbicycle\ncar\n");
  }
};

TEST_P(DnnLayoutTest, DecodesLetterboxedBoxesIn640x480) {
  // Network box (50,80)-(150,160) minus the 40 px band, times 2.
  EXPECT_THAT(Run(GetParam(), {640, 480}),
              UnorderedElementsAre("person [100,80 200x160] 0.81",
                                   // Overlaps the person box but is another class: kept.
                                   "bicycle [104,80 200x160] 0.72", "car [460,280 80x80] 0.45",
                                   // (560,-40)-(680,120) clipped to the frame.
                                   "bicycle [560,0 80x120] 0.81"));
}

TEST_P(DnnLayoutTest, DecodesLetterboxedBoxesIn1280x720) {
  // Network box (50,80)-(150,160) minus the 70 px band, times 4.
  EXPECT_THAT(Run(GetParam(), {1280, 720}),
              UnorderedElementsAre("person [200,40 400x320] 0.81", "bicycle [208,40 400x320] 0.72",
                                   "car [920,440 160x160] 0.45", "bicycle [1120,0 160x120] 0.81"));
}

TEST_P(DnnLayoutTest, SortsByScore) {
  auto detector = MakeDnnDetector(Model(GetParam()), options_);
  ASSERT_TRUE(detector.ok()) << detector.error().message;
  const auto found = (*detector)->Detect(cv::Mat(480, 640, CV_8UC3, cv::Scalar::all(0)));
  ASSERT_EQ(found.size(), 4U);
  for (size_t i = 1; i < found.size(); ++i) EXPECT_GE(found[i - 1].score, found[i].score);
  EXPECT_EQ(found.back().label, "car");
}

TEST_P(DnnLayoutTest, ConfidenceDropsWeakerBoxes) {
  options_.confidence = 0.5F;
  EXPECT_THAT(Run(GetParam(), {640, 480}),
              UnorderedElementsAre("person [100,80 200x160] 0.81", "bicycle [104,80 200x160] 0.72",
                                   "bicycle [560,0 80x120] 0.81"));
}

TEST_P(DnnLayoutTest, NmsThresholdDecidesWhetherTheSameClassDuplicateSurvives) {
  // The shifted person box has IoU 0.88 with the first: gone at 0.45, kept at 0.95.
  options_.nms = 0.95F;
  EXPECT_THAT(Run(GetParam(), {640, 480}),
              UnorderedElementsAre("person [100,80 200x160] 0.81", "person [108,84 200x160] 0.72",
                                   "bicycle [104,80 200x160] 0.72", "car [460,280 80x80] 0.45",
                                   "bicycle [560,0 80x120] 0.81"));
}

TEST_P(DnnLayoutTest, WithoutLabelsClassesAreNumbered) {
  options_.labels_path.clear();
  EXPECT_THAT(Run(GetParam(), {640, 480}),
              UnorderedElementsAre("class0 [100,80 200x160] 0.81", "class1 [104,80 200x160] 0.72",
                                   "class2 [460,280 80x80] 0.45", "class1 [560,0 80x120] 0.81"));
}

TEST_P(DnnLayoutTest, ClassesBeyondTheLabelsFileAreNumbered) {
  options_.labels_path = WriteFile("two_labels.txt", "person\r\nbicycle\r\n");
  EXPECT_THAT(Run(GetParam(), {640, 480}),
              UnorderedElementsAre("person [100,80 200x160] 0.81", "bicycle [104,80 200x160] 0.72",
                                   "class2 [460,280 80x80] 0.45", "bicycle [560,0 80x120] 0.81"));
}

TEST_P(DnnLayoutTest, OddFramesNeverThrow) {
  auto detector = MakeDnnDetector(Model(GetParam()), options_);
  ASSERT_TRUE(detector.ok()) << detector.error().message;
  EXPECT_EQ((*detector)->name(), "dnn");
  EXPECT_TRUE((*detector)->Detect(cv::Mat()).empty());
  EXPECT_TRUE((*detector)->Detect(cv::Mat(480, 640, CV_8UC2, cv::Scalar::all(0))).empty());
  EXPECT_TRUE((*detector)->Detect(cv::Mat(480, 640, CV_32FC3, cv::Scalar::all(0))).empty());
  // Grey and BGRA frames are converted; boxes are still in their coordinates.
  EXPECT_EQ((*detector)->Detect(cv::Mat(480, 640, CV_8UC1, cv::Scalar(0))).size(), 4U);
  EXPECT_EQ((*detector)->Detect(cv::Mat(480, 640, CV_8UC4, cv::Scalar::all(0))).size(), 4U);
  for (const auto& d : (*detector)->Detect(cv::Mat(3, 5, CV_8UC3, cv::Scalar::all(0)))) {
    EXPECT_EQ(d.box & cv::Rect(0, 0, 5, 3), d.box);
  }
}

// "yolov5.onnx" -> "yolov5".
std::string ModelStem(const ::testing::TestParamInfo<const char*>& param) {
  const std::string file = param.param;
  return file.substr(0, file.find('.'));
}

INSTANTIATE_TEST_SUITE_P(Dnn, DnnLayoutTest,
                         ::testing::Values("yolov5.onnx", "yolov8.onnx", "ssd.onnx"), ModelStem);

TEST_F(DnnDetectorTest, UnsupportedOutputShapeIsAnErrorNamingTheShape) {
  auto detector = MakeDnnDetector(Model("unsupported.onnx"), options_);
  ASSERT_FALSE(detector.ok());
  EXPECT_THAT(detector.error().message, HasSubstr("unsupported output shape [1,3,7,9]"));
  EXPECT_THAT(detector.error().message, HasSubstr(Model("unsupported.onnx")));
  EXPECT_THAT(detector.error().message,
              HasSubstr("expected YOLOv5 [1,N,5+C], YOLOv8 [1,4+C,N] or SSD [1,1,N,7]"));
}

TEST_F(DnnDetectorTest, CorruptModelIsAnErrorWithOpenCvsReason) {
  const std::string path =
      WriteFile("corrupt.onnx", std::string("\x08\xff\x12 not a protobuf", 19));
  auto detector = MakeDnnDetector(path, options_);
  ASSERT_FALSE(detector.ok());
  EXPECT_THAT(detector.error().message, HasSubstr("cannot load ONNX model " + path));
  EXPECT_THAT(detector.error().message, HasSubstr("Failed to parse ONNX model"));
}

TEST_F(DnnDetectorTest, MissingModelIsAnError) {
  auto detector = MakeDnnDetector(Model("missing.onnx"), options_);
  ASSERT_FALSE(detector.ok());
  EXPECT_EQ(detector.error().message, "dnn model not found: " + Model("missing.onnx"));
  auto directory = MakeDnnDetector(Models().dir().string(), options_);
  ASSERT_FALSE(directory.ok());
  EXPECT_THAT(directory.error().message, HasSubstr("not a file"));
}

TEST_F(DnnDetectorTest, MissingLabelsFileIsAnError) {
  options_.labels_path = Model("missing_labels.txt");
  auto detector = MakeDnnDetector(Model("yolov8.onnx"), options_);
  ASSERT_FALSE(detector.ok());
  EXPECT_EQ(detector.error().message, "labels file not found: " + Model("missing_labels.txt"));
}

TEST_F(DnnDetectorTest, ModelThatCannotRunAtTheInputSizeFailsAtLoad) {
  auto detector = MakeDnnDetector(Model("fixed_input.onnx"), options_);
  ASSERT_FALSE(detector.ok());
  EXPECT_THAT(detector.error().message, HasSubstr("ONNX model " + Model("fixed_input.onnx") +
                                                  " fails on a blank 320x320 input"));
  options_.input_width = 8;
  options_.input_height = 8;
  auto fits = MakeDnnDetector(Model("fixed_input.onnx"), options_);
  ASSERT_TRUE(fits.ok()) << fits.error().message;
  // Its boxes are meant for 320x320, so all lie beyond an 8x8 frame.
  EXPECT_TRUE((*fits)->Detect(cv::Mat(8, 8, CV_8UC3, cv::Scalar::all(0))).empty());
}

TEST_F(DnnDetectorTest, NonPositiveInputSizeIsAnError) {
  options_.input_width = 0;
  auto detector = MakeDnnDetector(Model("yolov5.onnx"), options_);
  ASSERT_FALSE(detector.ok());
  EXPECT_THAT(detector.error().message, HasSubstr("0x320"));
}

TEST_F(DnnDetectorTest, SquareFramesNeedNoPadding) {
  options_.labels_path = WriteFile("labels.txt", "person\nbicycle\ncar\n");
  // 320x320 frame: network and frame pixels coincide; the top-band box is
  // now inside the frame.
  const auto found = Run("yolov5.onnx", {320, 320});
  EXPECT_THAT(found, ::testing::Contains("person [50,80 100x80] 0.81"));
  EXPECT_THAT(found, ::testing::Contains("person [140,10 40x20] 0.90"));
  EXPECT_THAT(found, ::testing::Contains("bicycle [280,20 40x80] 0.81"));
}

}  // namespace
}  // namespace freshframe::infer
