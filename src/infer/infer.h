// Detection and annotation stages.
//
// DetectorStage runs a Detector on the newest raw frame only, at the
// detector's own pace, and publishes each result (with the frame it was
// computed on) into a LatestSlot; it is a SharedDetector
// (infer/shared_detector.h) serving one stream. AnnotatorStage draws
// detections onto frames: with Overlay::kLatest every raw frame is drawn
// with the newest detections, so the stream keeps the source's frame rate
// however slow the detector is; with Overlay::kInferred only frames the
// detector finished are streamed. Overlays never cover the timecode strip (core/timecode.h).
// Given a LiveSettings, both stages obey it from the next frame: the detector
// can be switched off (it then skips inference and the annotator draws no
// boxes), and the overlay mode and mirroring can change while they run.
//
// Thread-safety: a Detector is used by one thread (its stage's). Stage
// objects are started and stopped from the owning thread; they talk to other
// stages only through LatestSlots and read the LiveSettings they are given
// (which must outlive them). Published frames and detection sets are
// immutable and shared.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core/mat.hpp>
#include <opencv2/core/types.hpp>

#include "core/expected.h"
#include "core/frame.h"
#include "core/latest_slot.h"
#include "core/live_settings.h"
#include "core/metrics.h"
#include "core/stage_thread.h"

namespace freshframe::infer {

struct Detection {
  cv::Rect box;  // frame coordinates
  std::string label;
  float score = 0;  // detector-specific confidence; 1 if it has none
};

// How often a detector ran its expensive part: a motion-gated detector runs
// its model only on frames with motion (model_runs < frames).
struct DetectorActivity {
  uint64_t frames = 0;      // Detect calls
  uint64_t model_runs = 0;  // of which ran the (inner) model
};

class Detector {
 public:
  virtual ~Detector() = default;
  // Detections in `bgr`'s coordinates. Never throws.
  virtual std::vector<Detection> Detect(const cv::Mat& bgr) = 0;
  virtual std::string_view name() const = 0;
  // Only gated detectors count; others report zeroes (every call runs).
  virtual DetectorActivity activity() const { return {}; }
  // Whether a call on a smaller image costs less. A network with a fixed
  // input size costs the same for any crop, so a motion gate runs it once on
  // the union of the moving regions rather than once per region.
  virtual bool cost_grows_with_area() const { return true; }
  // Whether Detect keeps what it learnt from earlier frames of ONE camera (a
  // background model, the last detections): such a detector must not serve
  // several streams (SharedDetector refuses a second one).
  virtual bool keeps_per_camera_state() const { return false; }
};

struct HaarOptions {
  std::string cascade_path;  // empty: search the standard opencv-data places
  double scale_factor = 1.1;
  int min_neighbours = 3;
  int min_size = 30;
  int max_width = 640;  // frames wider than this are scaled down to detect
};

// The directories searched for Debian opencv-data's cascades, in order.
std::vector<std::string> CascadeSearchDirs();

// Frontal-face Haar cascade. A missing or unreadable cascade is an Error that
// names every path tried.
Expected<std::unique_ptr<Detector>> MakeHaarFaceDetector(const HaarOptions& options);

struct DetectionSet {
  FramePtr frame;  // the frame the detector ran on; may be null when !detector_running
  std::vector<Detection> detections;
  int64_t infer_start_us = 0;
  int64_t infer_end_us = 0;
  // False for the one empty set a stage publishes when the detector is
  // switched off (frame: the newest raw frame then, if any): it replaces the
  // last real set, so nothing stale is drawn or reported while off.
  bool detector_running = true;
};
using DetectionSetPtr = std::shared_ptr<const DetectionSet>;

// The detection set as one JSON object: sequence, capture_us,
// infer_start_us, infer_end_us, width, height, detector, detector_running,
// detections [{label, score, box: [x, y, w, h]}] (frame coordinates, as the
// detector saw the frame: not mirrored). Without a frame, sequence,
// capture_us, width and height are 0.
std::string DetectionSetToJson(const DetectionSet& set, std::string_view detector);

using JsonTextPtr = std::shared_ptr<const std::string>;

// Publishes the one empty set that says `detector` is off (see
// DetectionSet::detector_running), with the newest raw frame, so that
// /api/detections and /api/events stop showing the last real set as if it
// were current. Without a raw frame yet only the JSON goes out: consumers
// of the set slot expect a frame, and there is no real set to replace.
void PublishDetectorOff(const LatestSlot<FramePtr>& raw, LatestSlot<DetectionSetPtr>& detections,
                        LatestSlot<JsonTextPtr>* json, std::string_view detector);

class SharedDetector;  // infer/shared_detector.h

// A SharedDetector with one binding: the detector of a single stream.
class DetectorStage {
 public:
  // `json` (optional) also receives each set as DetectionSetToJson text, for
  // HTTP clients that want detections as data. `settings` (optional): while
  // its detector() is false the stage runs no inference; it still wakes on
  // `raw` (and drops the frames), so it sleeps between frames and resumes on
  // the first frame after the detector is switched on again. Switching off
  // publishes one set with detector_running false to both slots.
  DetectorStage(std::unique_ptr<Detector> detector, LatestSlot<FramePtr>& raw,
                LatestSlot<DetectionSetPtr>& detections, Metrics& metrics,
                LatestSlot<JsonTextPtr>* json = nullptr, const LiveSettings* settings = nullptr);
  ~DetectorStage();
  DetectorStage(const DetectorStage&) = delete;
  DetectorStage& operator=(const DetectorStage&) = delete;

  void Start();
  void Stop();
  // The detector's activity as of its last frame (any thread).
  DetectorActivity activity() const;
  std::string name() const { return name_; }

 private:
  std::unique_ptr<SharedDetector> shared_;
  const std::string name_;
};

using Overlay = OverlayMode;

// Draws boxes and labels, keeping clear of the timecode strip's rows.
void DrawDetections(cv::Mat& image, const std::vector<Detection>& detections);

// `detections` with their boxes flipped as cv::flip(image, 1) flips a frame
// `width` pixels wide: x' = width - x - w.
std::vector<Detection> MirrorDetections(std::vector<Detection> detections, int width);

// Draws one line of text in a dark box at the top-right corner, just below
// the timecode strip (never on it).
void DrawHud(cv::Mat& image, const std::string& text);

class AnnotatorStage {
 public:
  // With no detector (detections == nullptr) frames pass through unchanged
  // (pixels shared, not copied) whatever the overlay mode, unless mirrored.
  // `hud`: also draw stream fps, detector fps and ms, and the latency since
  // capture (the viewers' if anyone watches) on every frame.
  // `settings` (optional) is read on every frame and then decides, instead of
  // `overlay`: the overlay mode; whether to draw detections at all (the
  // detector switch: while off, frames stream at the source rate whatever
  // the mode); and mirroring, which flips the pixels (timecode strip
  // included: readers read it both ways) before boxes, labels and HUD are
  // drawn, so that text stays readable and boxes land on their objects.
  // Detections computed on a frame captured more than `max_detection_age`
  // before the frame at hand are not drawn on it (--detections-max-age): a
  // stalled detector leaves no boxes hanging on live video.
  AnnotatorStage(Overlay overlay, LatestSlot<FramePtr>& raw,
                 LatestSlot<DetectionSetPtr>* detections, LatestSlot<FramePtr>& annotated,
                 Metrics& metrics, bool hud = false, const LiveSettings* settings = nullptr,
                 std::chrono::microseconds max_detection_age = std::chrono::seconds(1));
  AnnotatorStage(const AnnotatorStage&) = delete;
  AnnotatorStage& operator=(const AnnotatorStage&) = delete;

  void Start();
  void Stop();

 private:
  void Run(std::stop_token stop);
  bool Detecting() const;
  void Publish(const FramePtr& source, const DetectionSet* detections);
  const std::string& HudText(int64_t now_us);

  Overlay overlay_;
  int64_t max_detection_age_us_;
  bool hud_;
  const LiveSettings* settings_;
  Metrics& all_metrics_;
  std::string hud_text_;
  int64_t hud_updated_us_ = 0;
  LatestSlot<FramePtr>& raw_;
  LatestSlot<DetectionSetPtr>* detections_;
  LatestSlot<FramePtr>& annotated_;
  StageMetrics& metrics_;
  StageThread thread_;  // last: joined before the members it uses go
};

}  // namespace freshframe::infer
