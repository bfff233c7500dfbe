// Motion by MOG2 background subtraction: one "motion" Detection per moving
// region, scored by the share of the box that is foreground.
//
// The model learns on a downscaled, slightly blurred copy (max_width): motion
// regions are large, and per-pixel sensor noise should not count as motion.
// Shadows (MOG2 marks them grey) are not motion. A frame whose size or type
// changes restarts the model and its warm-up. After warm-up the model learns
// at a rate set by the time between frames, not per frame: behind a slow
// model the detector sees a few frames a second, and a per-frame rate would
// keep a scene that stopped moving "moving" for many seconds. Something that
// stops moving fades into the background after about 1.5 s at any rate. The timecode strip of a
// freshframe pattern frame changes every frame by design, so when a frame carries a readable strip
// its rows are left out.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>
#include <opencv2/video/background_segm.hpp>

#include "core/clock.h"
#include "core/timecode.h"
#include "infer/boxes.h"
#include "infer/detectors.h"

namespace freshframe::infer {
namespace {

constexpr int kHistory = 500;  // frames the background model remembers
// The background's time constant: at 30 fps, 1/500 per frame (MOG2's rate
// for a 500-frame history), which keeps an object that moves slowly across
// the first frames from fading within a few of them.
constexpr double kLearningTauS = 500.0 / 30.0;
constexpr double kMaxLearningRate = 0.2;  // a long gap must not wipe the model
constexpr double kVarThreshold = 16;      // OpenCV's default sensitivity
constexpr double kForeground = 200;       // MOG2: 255 foreground, 127 shadow, 0 background

class MotionDetector final : public Detector {
 public:
  explicit MotionDetector(const DetectorOptions& options) : options_(options) {}

  std::vector<Detection> Detect(const cv::Mat& bgr) override {
    if (bgr.empty()) return {};
    try {
      return DetectOrThrow(bgr);
    } catch (const cv::Exception&) {
      return {};  // no detections rather than an exception out of the stage
    }
  }

  std::string_view name() const override { return "motion"; }
  bool keeps_per_camera_state() const override { return true; }  // the MOG2 background

 private:
  std::vector<Detection> DetectOrThrow(const cv::Mat& bgr) {
    double scale = 1.0;
    if (options_.max_width > 0 && bgr.cols > options_.max_width) {
      scale = static_cast<double>(options_.max_width) / bgr.cols;
    }
    if (scale < 1.0) {
      cv::resize(bgr, small_, cv::Size(), scale, scale, cv::INTER_AREA);
    } else {
      bgr.copyTo(small_);
    }
    cv::GaussianBlur(small_, small_, cv::Size(5, 5), 0);
    if (!model_ || small_.size() != model_size_ || small_.type() != model_type_) {
      model_ = cv::createBackgroundSubtractorMOG2(kHistory, kVarThreshold, /*detectShadows=*/true);
      model_size_ = small_.size();
      model_type_ = small_.type();
      frames_ = 0;
    }
    const bool warming_up = frames_ < static_cast<uint64_t>(std::max(0, options_.warmup_frames));
    // While warming up MOG2 picks its own, fast rate; afterwards its steady
    // rate, or an object that moves slowly across its first frames would fade
    // into the background within a few frames.
    // The frame's own capture time when it carries a strip (so a recording
    // replayed at any speed learns as it did live), else the time now.
    const auto strip = timecode::Read(bgr, MonotonicMicros());
    const int64_t now_us = strip ? strip->t_us : MonotonicMicros();
    const double gap_s = frames_ == 0 ? 1.0 / 30.0 : static_cast<double>(now_us - last_us_) / 1e6;
    last_us_ = now_us;
    const double rate = std::clamp(gap_s / kLearningTauS, 1.0 / (10 * kHistory), kMaxLearningRate);
    model_->apply(small_, foreground_, warming_up ? -1.0 : rate);
    ++frames_;
    if (warming_up) return {};

    cv::threshold(foreground_, mask_, kForeground, 255, cv::THRESH_BINARY);
    if (strip) IgnoreTimecodeStrip(bgr, scale);
    // Opening removes speckles of noise; closing fills holes so that one
    // object is one blob.
    cv::morphologyEx(mask_, mask_, cv::MORPH_OPEN,
                     cv::getStructuringElement(cv::MORPH_RECT, cv::Size(3, 3)));
    cv::morphologyEx(mask_, mask_, cv::MORPH_CLOSE,
                     cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(9, 9)));
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(mask_, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    std::vector<cv::Rect> rects;
    rects.reserve(contours.size());
    for (const auto& contour : contours) rects.push_back(cv::boundingRect(contour));
    rects = MergeNearby(std::move(rects), std::max(4, small_.cols / 64));

    const cv::Rect frame(0, 0, bgr.cols, bgr.rows);
    std::vector<Detection> out;
    for (const cv::Rect& r : rects) {
      Detection d;
      d.box = cv::Rect(cvRound(r.x / scale), cvRound(r.y / scale), cvRound(r.width / scale),
                       cvRound(r.height / scale)) &
              frame;
      if (d.box.area() < options_.min_area) continue;
      d.label = "motion";
      d.score = static_cast<float>(cv::countNonZero(mask_(r))) / static_cast<float>(r.area());
      out.push_back(std::move(d));
    }
    return out;
  }

  void IgnoreTimecodeStrip(const cv::Mat& bgr, double scale) {
    const int rows = timecode::StripRows(bgr.cols);
    if (rows <= 0) return;
    // The blur spreads the strip a few rows further down.
    const int small_rows = std::min(mask_.rows, cvCeil(rows * scale) + 3);
    mask_.rowRange(0, small_rows).setTo(0);
  }

  DetectorOptions options_;
  cv::Ptr<cv::BackgroundSubtractorMOG2> model_;
  cv::Size model_size_;
  int model_type_ = -1;
  uint64_t frames_ = 0;                // since the model (re)started
  int64_t last_us_ = 0;                // when the last frame was captured
  cv::Mat small_, foreground_, mask_;  // reused between frames
};

}  // namespace

std::unique_ptr<Detector> MakeMotionDetector(const DetectorOptions& options) {
  return std::make_unique<MotionDetector>(options);
}

}  // namespace freshframe::infer
