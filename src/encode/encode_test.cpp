#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "encode/encode.h"
#include "jpeg/jpeg.h"

namespace freshframe::encode {
namespace {

using namespace std::chrono_literals;

TEST(JpegEncoderTest, EncodesAndDecodesAtSize) {
  cv::Mat image(240, 320, CV_8UC3, cv::Scalar(10, 120, 240));
  JpegEncoder encoder(85);
  auto jpeg = encoder.Encode(image);
  ASSERT_TRUE(jpeg.ok()) << jpeg.error().message;
  ASSERT_GT(jpeg->size(), 4U);
  EXPECT_EQ((*jpeg)[0], 0xFF);
  EXPECT_EQ((*jpeg)[1], 0xD8);  // SOI
  EXPECT_EQ((*jpeg)[jpeg->size() - 2], 0xFF);
  EXPECT_EQ((*jpeg)[jpeg->size() - 1], 0xD9);  // EOI
  auto decoded = jpeg::DecodeJpeg(jpeg->data(), jpeg->size());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->cols, 320);
  EXPECT_EQ(decoded->rows, 240);
  EXPECT_LT(cv::norm(*decoded, image, cv::NORM_INF), 12.0);
}

TEST(JpegEncoderTest, QualityChangesSize) {
  cv::Mat image(240, 320, CV_8UC3);
  cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
  JpegEncoder low(20), high(95);
  EXPECT_LT(low.Encode(image)->size(), high.Encode(image)->size());
}

TEST(JpegEncoderTest, BadInputIsAnError) {
  JpegEncoder encoder(85);
  EXPECT_FALSE(encoder.Encode(cv::Mat()).ok());
  EXPECT_FALSE(encoder.Encode(cv::Mat(10, 10, CV_32FC3)).ok());
}

TEST(EncoderStageTest, EncodesOnlyWhileSomeoneWatches) {
  LatestSlot<FramePtr> annotated;
  LatestSlot<EncodedFramePtr> encoded;
  Demand demand;
  Metrics metrics;
  EncoderStage stage(85, annotated, encoded, demand, metrics);
  stage.Start();
  auto publish = [&](uint64_t sequence) {
    auto frame = std::make_shared<Frame>();
    frame->meta.sequence = sequence;
    frame->meta.width = 64;
    frame->meta.height = 48;
    frame->image = cv::Mat(48, 64, CV_8UC3, cv::Scalar::all(100));
    annotated.Publish(frame);
  };
  publish(1);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(encoded.version(), 0U);  // nobody watching: nothing encoded
  {
    Demand::Hold watcher(demand);
    publish(2);
    // The stage may already have woken for the new watcher and encoded frame
    // 1, the newest it had then (a stalled source still shows a picture);
    // either way frame 2 must follow.
    auto got = encoded.WaitNewer(0, 5s);
    ASSERT_TRUE(got.has_value());
    if (got->value->meta.sequence == 1U) got = encoded.WaitNewer(got->version, 5s);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->value->meta.sequence, 2U);
    EXPECT_GT(got->value->meta.stamps.encode_us, 0);
    EXPECT_FALSE(got->value->bytes.empty());
  }
  const uint64_t version = encoded.version();
  publish(3);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(encoded.version(), version);
  stage.Stop();
}

TEST(JpegEncoderTest, QualityCanChangeBetweenFramesAndStaysInRange) {
  cv::Mat image(240, 320, CV_8UC3);
  cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
  JpegEncoder encoder(95);
  const size_t high = encoder.Encode(image)->size();
  encoder.set_quality(20);
  EXPECT_EQ(encoder.quality(), 20);
  EXPECT_LT(encoder.Encode(image)->size(), high);
  encoder.set_quality(0);
  EXPECT_EQ(encoder.quality(), 1);
  encoder.set_quality(1000);
  EXPECT_EQ(encoder.quality(), 100);
  EXPECT_EQ(JpegEncoder(-3).quality(), 1);
}

TEST(EncoderStageTest, TakesTheLiveQualityFromTheNextFrame) {
  LatestSlot<FramePtr> annotated;
  LatestSlot<EncodedFramePtr> encoded;
  Demand demand;
  Metrics metrics;
  LiveSettings settings({true, OverlayMode::kLatest, 95, false});
  EncoderStage stage(50, annotated, encoded, demand, metrics, &settings);
  stage.Start();
  Demand::Hold watcher(demand);
  cv::Mat noise(240, 320, CV_8UC3);
  cv::randu(noise, cv::Scalar::all(0), cv::Scalar::all(255));
  uint64_t seen = 0;
  auto encode = [&](uint64_t sequence) -> size_t {
    auto frame = std::make_shared<Frame>();
    frame->meta.sequence = sequence;
    frame->image = noise;
    annotated.Publish(frame);
    auto got = encoded.WaitNewer(seen, 5s);
    if (!got) return 0;
    seen = got->version;
    return got->value->bytes.size();
  };
  const size_t at95 = encode(1);  // the settings' quality, not the constructor's
  SettingsChange change;
  change.quality = 20;
  settings.Apply(change);
  const size_t at20 = encode(2);
  ASSERT_GT(at95, 0U);
  ASSERT_GT(at20, 0U);
  EXPECT_LT(at20 * 2, at95);
  JpegEncoder reference(95);
  EXPECT_EQ(at95, reference.Encode(noise)->size());
  stage.Stop();
}

}  // namespace
}  // namespace freshframe::encode
