#include "core/timecode.h"

#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/clock.h"
#include "encode/encode.h"
#include "jpeg/jpeg.h"

namespace freshframe {
namespace {

cv::Mat TexturedFrame(int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  cv::RNG rng(7);
  rng.fill(image, cv::RNG::UNIFORM, cv::Scalar::all(0), cv::Scalar::all(256));
  cv::GaussianBlur(image, image, cv::Size(3, 3), 0);
  return image;
}

TEST(TimecodeTest, CellSizeFollowsSpec) {
  EXPECT_EQ(timecode::CellSize(319), 0);
  EXPECT_EQ(timecode::CellSize(320), 5);
  EXPECT_EQ(timecode::CellSize(640), 10);
  EXPECT_EQ(timecode::CellSize(1000), 15);
  EXPECT_EQ(timecode::StripRows(1280), 40);
}

TEST(TimecodeTest, NarrowFramesCarryNoStrip) {
  cv::Mat image = TexturedFrame(318, 240);
  EXPECT_FALSE(timecode::Write(image, 123));
  EXPECT_FALSE(timecode::Read(image, 123).has_value());
}

TEST(TimecodeTest, BandsAreBitsAndComplement) {
  cv::Mat image = TexturedFrame(640, 480);
  const int64_t t = 0x0123456789ABCDEFLL;
  ASSERT_TRUE(timecode::Write(image, t));
  // Bit 63 (leftmost cell) of t is 0: black in band 1, white in band 2.
  EXPECT_EQ(image.at<cv::Vec3b>(5, 5), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(image.at<cv::Vec3b>(15, 5), cv::Vec3b(255, 255, 255));
  // Bit 0 (rightmost cell, x in [630,640)) is 1.
  EXPECT_EQ(image.at<cv::Vec3b>(5, 635), cv::Vec3b(255, 255, 255));
}

TEST(TimecodeTest, PlausibilityWindow) {
  cv::Mat image = TexturedFrame(640, 480);
  const int64_t now = MonotonicMicros();
  timecode::Write(image, now - 11LL * 60 * 1'000'000);  // older than 10 minutes
  EXPECT_FALSE(timecode::Read(image, now).has_value());
  timecode::Write(image, now + 2'000'000);  // more than 1 s in the future
  EXPECT_FALSE(timecode::Read(image, now).has_value());
  timecode::Write(image, now - 9LL * 60 * 1'000'000);
  EXPECT_TRUE(timecode::Read(image, now).has_value());
}

TEST(TimecodeTest, CorruptStripIsRejected) {
  cv::Mat image = TexturedFrame(640, 480);
  const int64_t now = MonotonicMicros();
  timecode::Write(image, now);
  image(cv::Rect(0, 10, 10, 10)).setTo(cv::Scalar::all(0));  // band 2 no longer a complement
  EXPECT_FALSE(timecode::Read(image, now).has_value());
}

class TimecodeJpegTest : public ::testing::TestWithParam<std::tuple<cv::Size, int, bool>> {};

// Round trip through a real JPEG encode/decode, as a client would see it.
TEST_P(TimecodeJpegTest, SurvivesJpeg) {
  const auto [size, quality, mirror] = GetParam();
  cv::Mat image = TexturedFrame(size.width, size.height);
  const int64_t t = MonotonicMicros() - 1234;
  ASSERT_TRUE(timecode::Write(image, t));
  if (mirror) cv::flip(image, image, 1);
  encode::JpegEncoder encoder(quality);
  auto jpeg = encoder.Encode(image);
  ASSERT_TRUE(jpeg.ok()) << jpeg.error().message;
  auto decoded = jpeg::DecodeJpeg(jpeg->data(), jpeg->size());
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  auto reading = timecode::Read(*decoded, MonotonicMicros());
  ASSERT_TRUE(reading.has_value());
  EXPECT_EQ(reading->t_us, t);
  EXPECT_EQ(reading->mirrored, mirror);
  // Only the strip's rows are needed: a partial decode works too.
  cv::Mat top = (*decoded)(cv::Rect(0, 0, size.width, timecode::StripRows(size.width)));
  EXPECT_TRUE(timecode::Read(top, MonotonicMicros()).has_value());
}

INSTANTIATE_TEST_SUITE_P(
    SizesQualitiesMirror, TimecodeJpegTest,
    ::testing::Combine(::testing::Values(cv::Size(320, 240), cv::Size(640, 480),
                                         cv::Size(1000, 600), cv::Size(1280, 720),
                                         cv::Size(1920, 1080)),
                       ::testing::Values(50, 70, 85, 95), ::testing::Bool()));

}  // namespace
}  // namespace freshframe
