extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
}

#include <cerrno>
#include <cstdio>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "capture/capture.h"
#include "core/clock.h"
#include "core/timecode.h"
#include "h264/h264.h"

namespace freshframe::h264 {
namespace {

// The NAL unit types of an Annex-B access unit, in order.
std::vector<int> NalTypes(const std::vector<unsigned char>& bytes) {
  std::vector<int> types;
  for (size_t i = 0; i + 3 < bytes.size(); ++i) {
    if (bytes[i] == 0 && bytes[i + 1] == 0 && bytes[i + 2] == 1) {
      types.push_back(bytes[i + 3] & 0x1f);
      i += 3;
    }
  }
  return types;
}

// libavcodec's H.264 decoder, as a player would set it up (no low-delay
// flag: the stream itself must say it has no reordering).
class Decoder {
 public:
  Decoder() {
    const AVCodec* codec = avcodec_find_decoder(AV_CODEC_ID_H264);
    context_ = avcodec_alloc_context3(codec);
    context_->thread_count = 1;
    frame_ = av_frame_alloc();
    packet_ = av_packet_alloc();
    ok_ = avcodec_open2(context_, codec, nullptr) == 0;
  }
  ~Decoder() {
    av_packet_free(&packet_);
    av_frame_free(&frame_);
    avcodec_free_context(&context_);
  }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  struct Picture {
    AVPictureType type = AV_PICTURE_TYPE_NONE;
    bool key = false;
    int64_t pts = 0;
    cv::Mat luma;  // a copy of the Y plane
  };

  // Decodes one access unit; the pictures that came out of it (one with a
  // decoder that holds nothing back).
  std::vector<Picture> Decode(const std::vector<unsigned char>& bytes, int64_t pts) {
    std::vector<Picture> out;
    if (av_new_packet(packet_, static_cast<int>(bytes.size())) != 0) return out;
    std::copy(bytes.begin(), bytes.end(), packet_->data);
    packet_->pts = pts;
    const int sent = avcodec_send_packet(context_, packet_);
    av_packet_unref(packet_);
    if (sent < 0) return out;
    while (avcodec_receive_frame(context_, frame_) == 0) {
      Picture picture;
      picture.type = frame_->pict_type;
      picture.key = frame_->key_frame != 0;
      picture.pts = frame_->best_effort_timestamp;
      picture.luma = cv::Mat(frame_->height, frame_->width, CV_8UC1, frame_->data[0],
                             static_cast<size_t>(frame_->linesize[0]))
                         .clone();
      out.push_back(std::move(picture));
      av_frame_unref(frame_);
    }
    return out;
  }

  bool ok() const { return ok_; }
  int reorder_delay() const { return context_->has_b_frames; }

 private:
  AVCodecContext* context_ = nullptr;
  AVFrame* frame_ = nullptr;
  AVPacket* packet_ = nullptr;
  bool ok_ = false;
};

// `count` frames of the moving test pattern with its timecode strip (fast:
// the pattern's motion is per frame, its pacing does not matter here).
std::vector<cv::Mat> PatternFrames(int width, int height, int count) {
  auto source = capture::MakePatternSource({width, height, 240.0, 1.0});
  std::stop_source stop;
  std::vector<cv::Mat> frames;
  for (int i = 0; i < count; ++i) {
    auto read = source->Read(stop.get_token());
    if (!read.frame) break;
    frames.push_back(read.frame->image);
  }
  return frames;
}

std::unique_ptr<H264Encoder> MakeEncoder(const EncoderOptions& options, int width, int height) {
  auto made = H264Encoder::Create(options, width, height, 30);
  EXPECT_TRUE(made.ok()) << (made.ok() ? "" : made.error().message);
  return made.ok() ? std::move(made).value() : nullptr;
}

TEST(H264EncoderTest, ListsLibx264AndRejectsUnknownNamesListingThem) {
  const std::vector<std::string> names = AvailableEncoders();
  EXPECT_NE(std::find(names.begin(), names.end(), "libx264"), names.end());
  EXPECT_TRUE(CheckEncoder("libx264").ok());
  auto unknown = CheckEncoder("h264_nosuch");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("h264_nosuch"), std::string::npos);
  EXPECT_NE(unknown.error().message.find("libx264"), std::string::npos);
  EncoderOptions options;
  options.encoder = "h264_nosuch";
  auto made = H264Encoder::Create(options, 320, 240, 30);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.error().message.find("libx264"), std::string::npos);
  // Not an H.264 encoder at all.
  EXPECT_FALSE(CheckEncoder("mjpeg").ok());
}

TEST(H264EncoderTest, IdrOnRequestOnThatVeryFrameWithParameterSetsBeforeIt) {
  auto encoder = MakeEncoder({}, 320, 240);
  ASSERT_TRUE(encoder);
  const std::vector<cv::Mat> frames = PatternFrames(320, 240, 40);
  ASSERT_EQ(frames.size(), 40u);
  for (size_t i = 0; i < frames.size(); ++i) {
    const bool idr = i == 9 || i == 10 || i == 27;
    auto unit = encoder->Encode(frames[i], idr);
    ASSERT_TRUE(unit.ok()) << unit.error().message;
    ASSERT_FALSE(unit->bytes.empty());
    const bool key = i == 0 || idr;  // the first one, then only on request
    EXPECT_EQ(unit->keyframe, key) << "frame " << i;
    const std::vector<int> types = NalTypes(unit->bytes);
    const auto has = [&](int type) {
      return std::find(types.begin(), types.end(), type) != types.end();
    };
    if (key) {
      // SPS (7) and PPS (8) in band, before the IDR slice (5).
      ASSERT_TRUE(has(7) && has(8) && has(5)) << "frame " << i;
      const auto at = [&](int type) { return std::find(types.begin(), types.end(), type); };
      EXPECT_LT(at(7), at(5));
      EXPECT_LT(at(8), at(5));
    } else {
      EXPECT_FALSE(has(5)) << "frame " << i;
      EXPECT_TRUE(has(1)) << "frame " << i;  // a non-IDR slice
    }
  }
}

TEST(H264EncoderTest, NoBFramesAndNoFrameHeldBack) {
  auto encoder = MakeEncoder({}, 640, 480);
  ASSERT_TRUE(encoder);
  Decoder decoder;
  ASSERT_TRUE(decoder.ok());
  const std::vector<cv::Mat> frames = PatternFrames(640, 480, 60);
  for (size_t i = 0; i < frames.size(); ++i) {
    // Every Encode gives that frame's access unit...
    auto unit = encoder->Encode(frames[i], i == 30);
    ASSERT_TRUE(unit.ok()) << unit.error().message;
    // ...and a decoder gives the picture back from it at once, in order.
    const auto pictures = decoder.Decode(unit->bytes, static_cast<int64_t>(i));
    ASSERT_EQ(pictures.size(), 1u) << "frame " << i;
    EXPECT_EQ(pictures[0].pts, static_cast<int64_t>(i));
    EXPECT_TRUE(pictures[0].type == AV_PICTURE_TYPE_I || pictures[0].type == AV_PICTURE_TYPE_P)
        << "frame " << i << " type " << pictures[0].type;
    EXPECT_EQ(pictures[0].key, unit->keyframe);
  }
  EXPECT_EQ(decoder.reorder_delay(), 0);
}

TEST(H264EncoderTest, NoKeyframesOfItsOwnOverLongRuns) {
  // The stage makes IDRs by time; the encoder makes none but the first
  // (no keyint, no scene cut), even through a cut to another picture.
  auto encoder = MakeEncoder({}, 320, 240);
  ASSERT_TRUE(encoder);
  std::vector<cv::Mat> frames = PatternFrames(320, 240, 20);
  cv::Mat other = frames[0].clone();
  cv::bitwise_not(other, other);
  int keys = 0;
  for (int i = 0; i < 300; ++i) {
    const cv::Mat& frame = (i / 100) % 2 == 1 ? other : frames[static_cast<size_t>(i) % 20];
    auto unit = encoder->Encode(frame, false);
    ASSERT_TRUE(unit.ok());
    keys += unit->keyframe ? 1 : 0;
  }
  EXPECT_EQ(keys, 1);
}

TEST(H264EncoderTest, BitrateIsRoughlyRespected) {
  EncoderOptions options;
  options.bitrate_kbps = 400;
  auto encoder = MakeEncoder(options, 640, 480);
  ASSERT_TRUE(encoder);
  const std::vector<cv::Mat> frames = PatternFrames(640, 480, 150);
  size_t bytes = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    auto unit = encoder->Encode(frames[i], i % 60 == 0);
    ASSERT_TRUE(unit.ok());
    bytes += unit->bytes.size();
  }
  const double kbps = static_cast<double>(bytes) * 8 / 1000 / (150.0 / 30.0);
  std::printf("[ info ] 400 kbit/s asked, %.0f kbit/s made\n", kbps);
  EXPECT_LT(kbps, 400 * 1.6);
  EXPECT_GT(kbps, 400 * 0.3);
}

TEST(H264EncoderTest, CropsOddSizesAndTakesGrayAndRejectsOtherSizes) {
  auto encoder = MakeEncoder({}, 321, 241);
  ASSERT_TRUE(encoder);
  EXPECT_EQ(encoder->width(), 320);
  EXPECT_EQ(encoder->height(), 240);
  cv::Mat odd(241, 321, CV_8UC3, cv::Scalar(10, 200, 30));
  auto unit = encoder->Encode(odd, false);
  ASSERT_TRUE(unit.ok()) << unit.error().message;
  EXPECT_TRUE(unit->keyframe);
  cv::Mat gray(240, 320, CV_8UC1, cv::Scalar(90));
  EXPECT_TRUE(encoder->Encode(gray, false).ok());
  EXPECT_TRUE(encoder->Encode(odd, false).ok());  // back to BGR
  cv::Mat other(480, 640, CV_8UC3, cv::Scalar(0));
  EXPECT_FALSE(encoder->Encode(other, false).ok());
  cv::Mat floats(240, 320, CV_32FC3);
  EXPECT_FALSE(encoder->Encode(floats, false).ok());
}

// Any other libavcodec encoder goes through the generic settings only; one
// that keeps frames for itself (libx264rgb: x264's default lookahead) fails
// loudly instead of adding delay.
TEST(H264EncoderTest, AnEncoderThatHoldsFramesBackIsAnError) {
  const std::vector<std::string> names = AvailableEncoders();
  if (std::find(names.begin(), names.end(), "libx264rgb") == names.end()) {
    GTEST_SKIP() << "no libx264rgb here";
  }
  EncoderOptions options;
  options.encoder = "libx264rgb";
  auto encoder = MakeEncoder(options, 320, 240);
  ASSERT_TRUE(encoder);
  const cv::Mat frame(240, 320, CV_8UC3, cv::Scalar(1, 2, 3));
  auto unit = encoder->Encode(frame, false);
  ASSERT_FALSE(unit.ok());
  EXPECT_NE(unit.error().message.find("held a frame back"), std::string::npos);
}

struct StripReadings {
  int frames = 0;
  int read = 0;
  double kbps = 0;
};

// Encodes the 640x480 pattern (an IDR every 2 s) and reads the strip from
// every decoded frame.
StripReadings ReadStrips(const EncoderOptions& options, const std::vector<cv::Mat>& frames) {
  StripReadings result;
  auto encoder = MakeEncoder(options, 640, 480);
  Decoder decoder;
  if (!encoder || !decoder.ok()) return result;
  size_t bytes = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    auto unit = encoder->Encode(frames[i], i % 60 == 0);
    if (!unit) return result;
    bytes += unit->bytes.size();
    const auto expected = timecode::Read(frames[i], MonotonicMicros());
    for (const auto& picture : decoder.Decode(unit->bytes, static_cast<int64_t>(i))) {
      ++result.frames;
      const auto reading = timecode::Read(picture.luma, MonotonicMicros());
      if (reading && expected && reading->t_us == expected->t_us) ++result.read;
    }
  }
  result.kbps = static_cast<double>(bytes) * 8 / 1000 / (static_cast<double>(frames.size()) / 30);
  return result;
}

// The strip must read on every decoded frame, at the default settings and
// at 300 kbit/s (issue 17), with the strip's rows protected (the default).
// The figures without protection are printed for docs/architecture.md.
TEST(H264EncoderTest, TimecodeSurvivesEveryFrameAtDefaultAnd300Kbps) {
  const std::vector<cv::Mat> frames = PatternFrames(640, 480, 180);
  ASSERT_EQ(frames.size(), 180u);
  for (const int kbps : {0, 300}) {
    for (const bool protect : {true, false}) {
      EncoderOptions options;
      options.bitrate_kbps = kbps;
      options.protect_timecode = protect;
      const StripReadings got = ReadStrips(options, frames);
      std::printf("[ info ] %s, strip %s: %d/%d frames read (%.1f%%), %.0f kbit/s\n",
                  kbps == 0 ? "default (crf)" : "300 kbit/s", protect ? "protected" : "unprotected",
                  got.read, got.frames, got.frames == 0 ? 0.0 : 100.0 * got.read / got.frames,
                  got.kbps);
      ASSERT_EQ(got.frames, 180);
      if (protect) {
        EXPECT_EQ(got.read, got.frames) << kbps << " kbit/s";
      }
    }
  }
}

}  // namespace
}  // namespace freshframe::h264
