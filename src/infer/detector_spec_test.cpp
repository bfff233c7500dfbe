#include <string>

#include <gtest/gtest.h>

#include "infer/detectors.h"

namespace freshframe::infer {
namespace {

std::string Name(std::string_view spec) {
  auto made = MakeDetector(spec, DetectorOptions{});
  if (!made) return "error: " + made.error().message;
  return *made ? std::string((*made)->name()) : "null";
}

std::string ErrorOf(std::string_view spec) {
  auto made = MakeDetector(spec, DetectorOptions{});
  return made ? std::string() : made.error().message;
}

TEST(DetectorSpecTest, EveryFormMakesItsDetector) {
  EXPECT_EQ(Name("faces"), "faces");
  EXPECT_EQ(Name("cascade:upperbody"), "cascade:upperbody");
  EXPECT_EQ(Name("cascade:lbpcascade_frontalface"), "cascade:lbpcascade_frontalface");
  EXPECT_EQ(Name("cascade:/usr/share/opencv4/haarcascades/haarcascade_eye.xml"),
            "cascade:/usr/share/opencv4/haarcascades/haarcascade_eye.xml");
  EXPECT_EQ(Name("motion"), "motion");
  EXPECT_EQ(Name("motion+faces"), "motion+faces");
  EXPECT_EQ(Name("motion+cascade:eye"), "motion+cascade:eye");
}

TEST(DetectorSpecTest, NoneIsNoDetector) {
  auto made = MakeDetector("none", DetectorOptions{});
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(*made, nullptr);
}

TEST(DetectorSpecTest, EmptyCascadeAndDnnSayWhatIsMissing) {
  EXPECT_NE(ErrorOf("cascade:").find("cascade name or path"), std::string::npos)
      << ErrorOf("cascade:");
  EXPECT_NE(ErrorOf("dnn:").find("ONNX model path"), std::string::npos) << ErrorOf("dnn:");
}

TEST(DetectorSpecTest, BadCascadeAndModelAreErrors) {
  EXPECT_NE(ErrorOf("cascade:nosuchthing").find("haarcascade_upperbody"), std::string::npos);
  EXPECT_FALSE(ErrorOf("dnn:/nonexistent/model.onnx").empty());
  // The gated form passes the inner detector's error on.
  EXPECT_NE(ErrorOf("motion+cascade:nosuchthing").find("nosuchthing"), std::string::npos);
}

TEST(DetectorSpecTest, MotionPlusNeedsARealInnerDetector) {
  for (const char* spec : {"motion+", "motion+none", "motion+motion", "motion+motion+faces"}) {
    const std::string error = ErrorOf(spec);
    EXPECT_NE(error.find("motion+ needs a detector"), std::string::npos) << spec << ": " << error;
  }
}

TEST(DetectorSpecTest, UnknownSpecListsTheForms) {
  for (const char* spec : {"", "face", "yolo", "Faces", "cascade", "motion+ faces"}) {
    const std::string error = ErrorOf(spec);
    EXPECT_FALSE(error.empty()) << spec;
    for (const char* form :
         {"faces", "cascade:<name or path>", "dnn:<model.onnx>", "motion+<spec>", "none"}) {
      EXPECT_NE(error.find(form), std::string::npos) << spec << ": " << error;
    }
  }
}

}  // namespace
}  // namespace freshframe::infer
