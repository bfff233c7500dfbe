// ParseDetectionsJson and ScaleDetections: the JSON another process writes
// for `--detector bus:NAME` (remote bytes: bounded, never throws).
#include "infer/detections_json.h"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace freshframe::infer {
namespace {

using Json = nlohmann::json;

Json GoodSet() {
  return {{"sequence", 7},
          {"capture_us", 1000},
          {"infer_start_us", 1100},
          {"infer_end_us", 1200},
          {"width", 320},
          {"height", 240},
          {"detector", "python:haar"},
          {"detector_running", true},
          {"detections", {{{"label", "face"}, {"score", 0.9}, {"box", {10, 20, 30, 40}}}}}};
}

// The set with `key` replaced by `value` at the top or in detections[0].
std::string With(const std::string& key, const Json& value, bool in_detection = false) {
  Json set = GoodSet();
  (in_detection ? set["detections"][0] : set)[key] = value;
  return set.dump();
}

TEST(DetectionsJsonTest, ReadsWhatDetectionSetToJsonWrites) {
  auto frame = std::make_shared<Frame>();
  frame->meta.sequence = 42;
  frame->meta.stamps.capture_us = 123456;
  frame->image = cv::Mat(240, 320, CV_8UC3);
  DetectionSet set;
  set.frame = frame;
  set.infer_start_us = 123500;
  set.infer_end_us = 123900;
  set.detections = {{cv::Rect(1, 2, 3, 4), "face", 0.75F}, {cv::Rect(5, 6, 7, 8), "cat", 1}};

  auto parsed = ParseDetectionsJson(DetectionSetToJson(set, "faces"));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->sequence, 42U);
  EXPECT_EQ(parsed->capture_us, 123456);
  EXPECT_EQ(parsed->infer_start_us, 123500);
  EXPECT_EQ(parsed->infer_end_us, 123900);
  EXPECT_EQ(parsed->width, 320);
  EXPECT_EQ(parsed->height, 240);
  EXPECT_EQ(parsed->detector, "faces");
  EXPECT_TRUE(parsed->detector_running);
  ASSERT_EQ(parsed->detections.size(), 2U);
  EXPECT_EQ(parsed->detections[0].label, "face");
  EXPECT_FLOAT_EQ(parsed->detections[0].score, 0.75F);
  EXPECT_EQ(ScaleDetections(*parsed, 320, 240)[1].box, cv::Rect(5, 6, 7, 8));
}

TEST(DetectionsJsonTest, OptionalFieldsDefault) {
  auto parsed = ParseDetectionsJson(
      R"({"width": 64, "height": 48, "detections": [{"box": [1, 2, 3, 4]}]}   )");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->sequence, 0U);
  EXPECT_EQ(parsed->capture_us, 0);
  EXPECT_EQ(parsed->detector, "");
  EXPECT_TRUE(parsed->detector_running);
  ASSERT_EQ(parsed->detections.size(), 1U);
  EXPECT_EQ(parsed->detections[0].label, "");
  EXPECT_FLOAT_EQ(parsed->detections[0].score, 1.0F);
}

TEST(DetectionsJsonTest, ScalesFromTheModelsImageSizeAndClamps) {
  // The model saw a 160x120 copy of a 640x480 frame.
  Json set = GoodSet();
  set["width"] = 160;
  set["height"] = 120;
  set["detections"] = {{{"label", "a"}, {"box", {10, 20, 30, 40}}},
                       {{"label", "edge"}, {"box", {150, -10, 50, 40}}},     // over two edges
                       {{"label", "outside"}, {"box", {500, 500, 10, 10}}},  // nothing left
                       {{"label", "huge"}, {"box", {-1e300, -1e300, 1e308, 1e308}}}};
  auto parsed = ParseDetectionsJson(set.dump());
  ASSERT_TRUE(parsed) << parsed.error().message;
  const auto boxes = ScaleDetections(*parsed, 640, 480);
  ASSERT_EQ(boxes.size(), 3U);
  EXPECT_EQ(boxes[0].box, cv::Rect(40, 80, 120, 160));
  EXPECT_EQ(boxes[0].label, "a");
  EXPECT_EQ(boxes[1].box, cv::Rect(600, 0, 40, 120));
  EXPECT_EQ(boxes[2].box, cv::Rect(0, 0, 640, 480));
  // A model image larger than the frame scales down.
  EXPECT_EQ(ScaleDetections(*parsed, 80, 60)[0].box, cv::Rect(5, 10, 15, 20));
}

TEST(DetectionsJsonTest, ScoresAreClampedToZeroOne) {
  auto high = ParseDetectionsJson(With("score", 7.5, true));
  ASSERT_TRUE(high);
  EXPECT_FLOAT_EQ(high->detections[0].score, 1.0F);
  auto low = ParseDetectionsJson(With("score", -2, true));
  ASSERT_TRUE(low);
  EXPECT_FLOAT_EQ(low->detections[0].score, 0.0F);
}

TEST(DetectionsJsonTest, AModelThatSaysItIsOffHasNothingToDraw) {
  auto parsed = ParseDetectionsJson(With("detector_running", false));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_FALSE(parsed->detector_running);
  EXPECT_TRUE(parsed->detections.empty());
}

TEST(DetectionsJsonTest, AcceptsTheBoundsThemselves) {
  Json set = GoodSet();
  set["width"] = 16384;
  set["height"] = 1;
  set["detector"] = std::string(64, 'd');
  set["detections"] = Json::array();
  for (int i = 0; i < 1000; ++i) {
    set["detections"].push_back({{"label", std::string(64, 'x')}, {"box", {i, 0, 1, 1}}});
  }
  auto parsed = ParseDetectionsJson(set.dump());
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->detections.size(), 1000U);
}

TEST(DetectionsJsonTest, RefusesEveryOutOfBoundsSetWithAReason) {
  Json many = GoodSet();
  for (int i = 0; i < 1000; ++i) many["detections"].push_back(GoodSet()["detections"][0]);
  const std::string cases[] = {
      "",
      "not json",
      "[1, 2, 3]",
      R"({"width": 320, "height": 240, "detections": [)",  // cut off mid-publish
      R"({"width": 1e999, "height": 240, "detections": []})",
      R"({"width": NaN, "height": 240, "detections": []})",
      many.dump(),  // 1001 boxes
      With("width", 0),
      With("width", 16385),
      With("height", -240),
      With("height", "240"),
      With("detections", "none"),
      With("detections", nullptr),
      With("sequence", -1),
      With("sequence", 1.5),
      With("capture_us", -5),
      With("capture_us", "soon"),
      With("infer_end_us", 1e300),
      With("detector", std::string(65, 'd')),
      With("detector", 12),
      With("detector_running", "yes"),
      With("label", std::string(65, 'x'), true),
      With("label", 3, true),
      With("score", "high", true),
      With("box", {1, 2, 3}, true),
      With("box", {1, 2, 3, 4, 5}, true),
      With("box", {1, 2, -3, 4}, true),
      With("box", {1, 2, 3, "4"}, true),
      With("box", {1, 2, 3, {4}}, true),
      With("box", nullptr, true),
      R"({"width": 320, "height": 240, "detections": [7]})",
      std::string(kMaxExternalTextBytes + 1, ' '),
  };
  for (const std::string& text : cases) {
    auto parsed = ParseDetectionsJson(text);
    EXPECT_FALSE(parsed) << text.substr(0, 200);
    if (!parsed) {
      EXPECT_EQ(parsed.error().message.rfind("detection set refused: ", 0), 0U)
          << parsed.error().message;
    }
  }
}

TEST(DetectionsJsonTest, ReasonsNameThePart) {
  EXPECT_NE(
      ParseDetectionsJson(With("box", {1, 2, 3}, true)).error().message.find("detections[0].box"),
      std::string::npos);
  EXPECT_NE(ParseDetectionsJson(With("width", 0)).error().message.find("width"), std::string::npos);
}

}  // namespace
}  // namespace freshframe::infer
