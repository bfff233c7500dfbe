// DecodeJpeg on JPEGs written by OpenCV's own encoder (not ours, so that a
// fault in src/encode cannot hide one here) and on bytes that are not JPEG.
#include "jpeg/jpeg.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <vector>

namespace freshframe::jpeg {
namespace {

std::vector<unsigned char> Encoded(const cv::Mat& image) {
  std::vector<unsigned char> jpeg;
  EXPECT_TRUE(cv::imencode(".jpg", image, jpeg, {cv::IMWRITE_JPEG_QUALITY, 95}));
  return jpeg;
}

TEST(DecodeJpegTest, ColourDecodesToBgrAtSize) {
  const cv::Mat image(48, 64, CV_8UC3, cv::Scalar(10, 120, 240));
  const auto jpeg = Encoded(image);
  const auto decoded = DecodeJpeg(jpeg.data(), jpeg.size());
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->cols, 64);
  EXPECT_EQ(decoded->rows, 48);
  EXPECT_EQ(decoded->type(), CV_8UC3);
  EXPECT_LT(cv::norm(*decoded, image, cv::NORM_INF), 12.0);
}

TEST(DecodeJpegTest, GrayDecodesToBgr) {
  const cv::Mat gray(32, 40, CV_8UC1, cv::Scalar(200));
  const auto jpeg = Encoded(gray);
  const auto decoded = DecodeJpeg(jpeg.data(), jpeg.size());
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->type(), CV_8UC3);
  EXPECT_EQ(decoded->cols, 40);
  EXPECT_EQ(decoded->rows, 32);
}

TEST(DecodeJpegTest, NotAJpegIsAnError) {
  const unsigned char junk[] = {1, 2, 3, 4};
  const auto decoded = DecodeJpeg(junk, sizeof junk);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find("not a JPEG"), std::string::npos);
  // A JPEG cut short of its scan data is refused, not read past its end.
  const auto jpeg = Encoded(cv::Mat(16, 16, CV_8UC3, cv::Scalar::all(80)));
  EXPECT_FALSE(DecodeJpeg(jpeg.data(), 20).ok());
}

}  // namespace
}  // namespace freshframe::jpeg
