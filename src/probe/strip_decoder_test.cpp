#include "probe/strip_decoder.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/timecode.h"
#include "probe/jpeg_test_util.h"

namespace freshframe::probe {
namespace {

// A busy colour picture (so the encoder has real work around the strip)
// with the strip for `t_us` at the top.
cv::Mat StampedFrame(int width, int height, int64_t t_us) {
  cv::Mat frame(height, width, CV_8UC3);
  cv::randu(frame, cv::Scalar::all(0), cv::Scalar::all(255));
  cv::GaussianBlur(frame, frame, cv::Size(9, 9), 0);
  cv::circle(frame, {width / 2, height / 2}, height / 4, cv::Scalar(0, 200, 255), -1);
  EXPECT_TRUE(timecode::Write(frame, t_us));
  return frame;
}

std::string Encode(const cv::Mat& frame, int quality) {
  return test_util::EncodeJpeg(frame, quality);
}

TEST(StripDecoderTest, ReadsStampAcrossSizesAndQualities) {
  StripDecoder decoder;  // one decoder reused across sizes, as a client does
  const int sizes[][2] = {{320, 240}, {640, 480}, {1280, 720}, {1000, 600}};
  for (const auto& size : sizes) {
    for (int quality : {50, 75, 95}) {
      SCOPED_TRACE(std::to_string(size[0]) + "x" + std::to_string(size[1]) + " q" +
                   std::to_string(quality));
      const int64_t now = MonotonicMicros();
      const int64_t t = now - 12'345;
      const std::string jpeg = Encode(StampedFrame(size[0], size[1], t), quality);
      const auto reading = decoder.Read(jpeg, now);
      ASSERT_TRUE(reading);
      EXPECT_EQ(reading->t_us, t);
      EXPECT_FALSE(reading->mirrored);
    }
  }
}

TEST(StripDecoderTest, DecodesOnlyTheTopRows) {
  StripDecoder decoder;
  cv::Mat rows;
  ASSERT_TRUE(decoder.DecodeTop(Encode(StampedFrame(1280, 720, MonotonicMicros()), 80), &rows));
  EXPECT_EQ(rows.cols, 1280);
  EXPECT_EQ(rows.type(), CV_8UC1);
  // StripRows(1280) = 40, rounded up to 16-row MCUs (4:2:0) = 48.
  EXPECT_EQ(rows.rows, 48);
  ASSERT_TRUE(decoder.DecodeTop(Encode(StampedFrame(320, 240, MonotonicMicros()), 80), &rows));
  EXPECT_EQ(rows.rows, 16);  // StripRows(320) = 10
}

TEST(StripDecoderTest, ReadsMirroredFrame) {
  for (const int width : {640, 1000}) {
    const int64_t now = MonotonicMicros();
    const int64_t t = now - 500;
    cv::Mat mirrored;
    cv::flip(StampedFrame(width, 480, t), mirrored, 1);
    const auto reading = ReadStripFromJpeg(Encode(mirrored, 85), now);
    ASSERT_TRUE(reading) << width;
    EXPECT_EQ(reading->t_us, t);
    EXPECT_TRUE(reading->mirrored);
  }
}

TEST(StripDecoderTest, GrayscaleJpeg) {
  const int64_t now = MonotonicMicros();
  cv::Mat gray;
  cv::cvtColor(StampedFrame(640, 480, now - 1), gray, cv::COLOR_BGR2GRAY);
  const auto reading = ReadStripFromJpeg(Encode(gray, 70), now);
  ASSERT_TRUE(reading);
  EXPECT_EQ(reading->t_us, now - 1);
}

TEST(StripDecoderTest, NoStrip) {
  const int64_t now = MonotonicMicros();
  // Narrower than 320 px: no strip by definition, even if one were drawn.
  cv::Mat narrow(240, 319, CV_8UC3, cv::Scalar::all(255));
  EXPECT_FALSE(ReadStripFromJpeg(Encode(narrow, 90), now));
  // A plain picture.
  cv::Mat plain(480, 640, CV_8UC3, cv::Scalar(10, 120, 40));
  EXPECT_FALSE(ReadStripFromJpeg(Encode(plain, 90), now));
  // A strip whose stamp is far in the past is implausible.
  EXPECT_FALSE(ReadStripFromJpeg(Encode(StampedFrame(640, 480, now - 3'600'000'000LL), 90), now));
}

TEST(StripDecoderTest, GarbageGivesNulloptWithoutCrashing) {
  StripDecoder decoder;
  std::mt19937 rng(7);
  EXPECT_FALSE(decoder.Read("", MonotonicMicros()));
  EXPECT_FALSE(decoder.Read("not a jpeg at all", MonotonicMicros()));
  EXPECT_FALSE(decoder.Read(std::string("\xff\xd8\xff", 3), MonotonicMicros()));
  for (int i = 0; i < 200; ++i) {
    std::string junk(static_cast<size_t>(rng() % 5000), '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (i % 2 == 0 && junk.size() >= 2) junk.replace(0, 2, "\xff\xd8");  // looks like a JPEG
    EXPECT_FALSE(decoder.Read(junk, MonotonicMicros()));
  }
  // Truncated and corrupted real JPEGs: any outcome but a crash, and the
  // decoder still works afterwards.
  const int64_t now = MonotonicMicros();
  const std::string good = Encode(StampedFrame(640, 480, now - 10), 80);
  for (size_t cut : {size_t{10}, size_t{100}, size_t{300}, good.size() / 2}) {
    (void)decoder.Read(std::string_view(good).substr(0, cut), now);
  }
  for (int i = 0; i < 50; ++i) {
    std::string bad = good;
    for (int k = 0; k < 20; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
    (void)decoder.Read(bad, now);
  }
  const auto reading = decoder.Read(good, now);
  ASSERT_TRUE(reading);
  EXPECT_EQ(reading->t_us, now - 10);
}

TEST(StripDecoderTest, RefusesHugeDeclaredWidth) {
  // A valid tiny JPEG whose SOF0 width is patched to 60000: refused before
  // anything is allocated for it.
  std::string jpeg = Encode(cv::Mat(8, 8, CV_8UC3, cv::Scalar::all(128)), 90);
  const size_t sof = jpeg.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  jpeg[sof + 7] = static_cast<char>(60000 >> 8);
  jpeg[sof + 8] = static_cast<char>(60000 & 0xff);
  cv::Mat rows;
  StripDecoder decoder;
  EXPECT_FALSE(decoder.DecodeTop(jpeg, &rows));
}

}  // namespace
}  // namespace freshframe::probe
