#include <chrono>
#include <iterator>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "core/clock.h"
#include "core/timecode.h"
#include "encode/encode.h"
#include "jpeg/jpeg.h"

namespace freshframe::encode {
namespace {

using namespace std::chrono_literals;

// Dark left half, bright right half, and the timecode strip of `stamp`.
cv::Mat TestImage(int width, int height, int64_t stamp) {
  cv::Mat image(height, width, CV_8UC3, cv::Scalar::all(30));
  image(cv::Rect(width / 2, 0, width - width / 2, height)).setTo(cv::Scalar::all(220));
  timecode::Write(image, stamp);
  return image;
}

double MeanOf(const cv::Mat& image, cv::Rect area) { return cv::mean(image(area))[0]; }

TEST(VariantEncoderTest, NothingToDoReturnsTheFrameItselfAndLeavesTheBufferAlone) {
  const cv::Mat image = TestImage(640, 480, MonotonicMicros());
  cv::Mat buffer;
  EXPECT_EQ(MakeVariant(image, VariantKey{}, buffer).data, image.data);
  // The frame's own width: nothing to do.
  EXPECT_EQ(MakeVariant(image, VariantKey{false, 640}, buffer).data, image.data);
  EXPECT_TRUE(buffer.empty());  // not made to share the frame's pixels
}

// Regression (issue 14, finding 5): the buffer used to be aliased to a frame
// passed through (`out = image`); the next frame that needed scaling was then
// resized into that frame's pixels.
TEST(VariantEncoderTest, NeverWritesIntoAFrameItPassedThrough) {
  const cv::Mat small = TestImage(640, 480, MonotonicMicros());
  const cv::Mat large = TestImage(1280, 960, MonotonicMicros());
  const cv::Mat small_copy = small.clone();
  cv::Mat buffer;
  for (const VariantKey key : {VariantKey{false, 640}, VariantKey{true, 640}}) {
    MakeVariant(small, key, buffer);
    const cv::Mat& scaled = MakeVariant(large, key, buffer);
    EXPECT_EQ(scaled.size(), cv::Size(640, 480));
    EXPECT_NE(scaled.data, small.data);
    EXPECT_EQ(cv::norm(small, small_copy, cv::NORM_INF), 0) << "mirror " << key.mirror;
  }
}

TEST(VariantEncoderTest, MirrorFlipsPictureAndStrip) {
  const int64_t stamp = MonotonicMicros();
  const cv::Mat image = TestImage(640, 480, stamp);
  cv::Mat buffer;
  const cv::Mat& out = MakeVariant(image, VariantKey{true, 0}, buffer);
  ASSERT_EQ(out.size(), image.size());
  EXPECT_GT(MeanOf(out, cv::Rect(0, 100, 320, 380)), 200);  // bright half now on the left
  EXPECT_LT(MeanOf(out, cv::Rect(320, 100, 320, 380)), 50);
  const auto reading = timecode::Read(out, MonotonicMicros());
  ASSERT_TRUE(reading.has_value());
  EXPECT_TRUE(reading->mirrored);
  EXPECT_EQ(reading->t_us, stamp);
}

TEST(VariantEncoderTest, ScalesKeepingAspectAndRedrawsTheStrip) {
  const int64_t stamp = MonotonicMicros();
  // 1000 px: the strip's cells (15 px) do not scale onto a 500 px grid.
  const cv::Mat image = TestImage(1000, 750, stamp);
  cv::Mat out;
  MakeVariant(image, VariantKey{false, 500}, out);
  EXPECT_EQ(out.cols, 500);
  EXPECT_EQ(out.rows, 375);
  auto reading = timecode::Read(out, MonotonicMicros());
  ASSERT_TRUE(reading.has_value());
  EXPECT_FALSE(reading->mirrored);
  EXPECT_EQ(reading->t_us, stamp);

  MakeVariant(image, VariantKey{true, 320}, out);  // scaled, then mirrored
  EXPECT_EQ(out.size(), cv::Size(320, 240));
  reading = timecode::Read(out, MonotonicMicros());
  ASSERT_TRUE(reading.has_value());
  EXPECT_TRUE(reading->mirrored);
  EXPECT_EQ(reading->t_us, stamp);
  EXPECT_GT(MeanOf(out, cv::Rect(0, 100, 160, 140)), 200);

  // Below timecode::kMinWidth there is no strip (documented).
  MakeVariant(image, VariantKey{false, 160}, out);
  EXPECT_EQ(out.size(), cv::Size(160, 120));
  EXPECT_FALSE(timecode::Read(out, MonotonicMicros()).has_value());
}

// A stream mirrored as a whole (the annotator's mirror setting) keeps a
// readable, still mirrored strip when a variant scales it.
TEST(VariantEncoderTest, ScalingAMirroredStreamKeepsItsStripReadable) {
  const int64_t stamp = MonotonicMicros();
  cv::Mat mirrored;
  cv::flip(TestImage(1000, 750, stamp), mirrored, 1);
  cv::Mat out;
  MakeVariant(mirrored, VariantKey{false, 500}, out);
  auto reading = timecode::Read(out, MonotonicMicros());
  ASSERT_TRUE(reading.has_value());
  EXPECT_TRUE(reading->mirrored);
  EXPECT_EQ(reading->t_us, stamp);
  EXPECT_GT(MeanOf(out, cv::Rect(0, 100, 250, 275)), 200);  // still the mirrored picture

  // ?mirror=1 on a mirrored stream flips it back, strip included.
  MakeVariant(mirrored, VariantKey{true, 320}, out);
  reading = timecode::Read(out, MonotonicMicros());
  ASSERT_TRUE(reading.has_value());
  EXPECT_FALSE(reading->mirrored);
  EXPECT_EQ(reading->t_us, stamp);
  EXPECT_LT(MeanOf(out, cv::Rect(0, 100, 160, 140)), 50);
}

// Frames published into the annotated slot, as the annotator does.
class VariantEncodersTest : public ::testing::Test {
 protected:
  void Publish(uint64_t sequence) {
    auto frame = std::make_shared<Frame>();
    frame->meta.sequence = sequence;
    frame->meta.width = 640;
    frame->meta.height = 480;
    frame->meta.stamps.capture_us = MonotonicMicros();
    frame->image = TestImage(640, 480, frame->meta.stamps.capture_us);
    annotated_.Publish(frame);
  }

  template <typename Predicate>
  bool WaitFor(Predicate predicate) {
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (!predicate()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  LatestSlot<FramePtr> annotated_;
  Metrics metrics_;
  VariantEncoders encoders_{80, annotated_, metrics_};
};

TEST_F(VariantEncodersTest, EncodesEachVariantOncePerFrameWhileHeld) {
  encoders_.Start();
  std::mutex mutex;
  std::vector<EncodedFramePtr> mirrored, small;
  auto a = encoders_.Add({true, 0}, [&](const EncodedFramePtr& f) {
    std::lock_guard lock(mutex);
    mirrored.push_back(f);
  });
  auto b = encoders_.Add({false, 320}, [&](const EncodedFramePtr& f) {
    std::lock_guard lock(mutex);
    small.push_back(f);
  });
  EXPECT_EQ(encoders_.active(), 2U);
  for (uint64_t i = 1; i <= 5; ++i) {
    Publish(i);
    ASSERT_TRUE(WaitFor([&] { return a->encoded_frames() == i && b->encoded_frames() == i; }))
        << "frame " << i;
  }
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(mirrored.size(), 5U);
    ASSERT_EQ(small.size(), 5U);
    EXPECT_EQ(mirrored.back()->meta.sequence, 5U);
    EXPECT_EQ(mirrored.back()->meta.width, 640);
    EXPECT_EQ(small.back()->meta.width, 320);
    EXPECT_EQ(small.back()->meta.height, 240);
    auto decoded = jpeg::DecodeJpeg(small.back()->bytes.data(), small.back()->bytes.size());
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded->cols, 320);
  }
  EXPECT_EQ(metrics_.Stage("encode_variants").frames(), 10U);
  EXPECT_EQ(a->width(), 640);
  EXPECT_EQ(b->height(), 240);

  b.reset();  // released: no longer encoded
  Publish(6);
  ASSERT_TRUE(WaitFor([&] { return a->encoded_frames() == 6; }));
  std::this_thread::sleep_for(50ms);
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(small.size(), 5U);
  }
  EXPECT_EQ(encoders_.active(), 1U);
  encoders_.Stop();
}

TEST_F(VariantEncodersTest, NewVariantGetsTheCurrentFrameOfAStalledSource) {
  encoders_.Start();
  Publish(1);
  std::this_thread::sleep_for(150ms);  // no new frame comes
  auto variant = encoders_.Add({true, 0}, nullptr);
  EXPECT_TRUE(WaitFor([&] { return variant->encoded_frames() == 1; }));
  std::this_thread::sleep_for(250ms);
  EXPECT_EQ(variant->encoded_frames(), 1U);  // once, not again and again
  encoders_.Stop();
}

TEST_F(VariantEncodersTest, NothingIsEncodedWithoutVariants) {
  encoders_.Start();
  for (uint64_t i = 1; i <= 3; ++i) {
    Publish(i);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(metrics_.Stage("encode_variants").frames(), 0U);
  encoders_.Stop();
}

// Regression (issue 14, finding 5): a width variant used to alias its reused
// buffer to a frame it passed through unscaled (the source at the variant's
// width), then resized the next, larger frame into that memory: into a frame
// the annotated slot, the main encoder and the bus still share.
TEST_F(VariantEncodersTest, NeverWritesIntoTheFramesItIsGiven) {
  encoders_.Start();
  auto variant = encoders_.Add({false, 640}, nullptr);
  auto mirrored = encoders_.Add({true, 640}, nullptr);
  std::vector<FramePtr> frames;  // as published: shared and immutable
  std::vector<cv::Mat> copies;
  const int widths[] = {640, 1280, 640, 1280};
  for (uint64_t i = 1; i <= std::size(widths); ++i) {
    const int width = widths[i - 1];
    auto frame = std::make_shared<Frame>();
    frame->meta.sequence = i;
    frame->meta.width = width;
    frame->meta.height = width * 3 / 4;
    frame->meta.stamps.capture_us = MonotonicMicros();
    frame->image = TestImage(width, width * 3 / 4, frame->meta.stamps.capture_us);
    copies.push_back(frame->image.clone());
    frames.push_back(frame);
    annotated_.Publish(frame);
    ASSERT_TRUE(WaitFor([&] {
      return variant->encoded_frames() == i && mirrored->encoded_frames() == i;
    })) << "frame "
        << i;
    EXPECT_EQ(variant->width(), 640) << "frame " << i;
    EXPECT_EQ(mirrored->width(), 640) << "frame " << i;
    for (size_t k = 0; k < frames.size(); ++k) {
      EXPECT_EQ(cv::norm(frames[k]->image, copies[k], cv::NORM_INF), 0)
          << "frame " << k + 1 << " changed while frame " << i << " was encoded";
    }
  }
  encoders_.Stop();
}

TEST(VariantEncodersQualityTest, TakesTheLiveQuality) {
  LatestSlot<FramePtr> annotated;
  Metrics metrics;
  LiveSettings settings({true, OverlayMode::kLatest, 95, false});
  VariantEncoders encoders(50, annotated, metrics, &settings);
  encoders.Start();
  std::mutex mutex;
  std::vector<size_t> sizes;
  auto variant = encoders.Add({true, 0}, [&](const EncodedFramePtr& f) {
    std::lock_guard lock(mutex);
    sizes.push_back(f->bytes.size());
  });
  cv::Mat noise(240, 320, CV_8UC3);
  cv::randu(noise, cv::Scalar::all(0), cv::Scalar::all(255));
  auto publish = [&](uint64_t sequence) {
    auto frame = std::make_shared<Frame>();
    frame->meta.sequence = sequence;
    frame->image = noise;
    annotated.Publish(frame);
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (variant->encoded_frames() < sequence && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
  };
  publish(1);
  SettingsChange change;
  change.quality = 20;
  settings.Apply(change);
  publish(2);
  encoders.Stop();
  std::lock_guard lock(mutex);
  ASSERT_EQ(sizes.size(), 2U);
  EXPECT_LT(sizes[1] * 2, sizes[0]);
}

}  // namespace
}  // namespace freshframe::encode
