#include <chrono>
#include <cstdio>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/clock.h"
#include "core/timecode.h"
#include "infer/infer.h"

namespace freshframe::infer {
namespace {

// A stable colour per label, so a class keeps its colour across frames.
cv::Scalar LabelColour(const std::string& label) {
  uint32_t h = 2166136261U;
  for (char c : label) h = (h ^ static_cast<uint8_t>(c)) * 16777619U;
  return cv::Scalar(80 + (h & 0x7F), 80 + ((h >> 8) & 0x7F), 80 + ((h >> 16) & 0x7F));
}

bool SameFrame(const FrameMeta& a, const FrameMeta& b) {
  return a.sequence != 0 && a.sequence == b.sequence && a.stamps.capture_us == b.stamps.capture_us;
}

}  // namespace

void DrawDetections(cv::Mat& image, const std::vector<Detection>& detections) {
  // Draw into a view that starts below the timecode strip: OpenCV clips to
  // the view, so no line width, anti-aliasing or label can reach the strip.
  const int top = std::min(timecode::StripRows(image.cols), image.rows);
  cv::Mat body = image.rowRange(top, image.rows);
  const double font = std::max(0.4, image.cols / 1600.0);
  const int thickness = std::max(1, image.cols / 480);
  for (const auto& d : detections) {
    const cv::Rect box = (d.box - cv::Point(0, top)) & cv::Rect(0, 0, body.cols, body.rows);
    if (box.area() <= 0) continue;
    const cv::Scalar colour = LabelColour(d.label);
    cv::rectangle(body, box, colour, thickness, cv::LINE_AA);

    char text[64];
    std::snprintf(text, sizeof text, "%s %.2f", d.label.c_str(), static_cast<double>(d.score));
    int baseline = 0;
    const cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font, 1, &baseline);
    // Above the box if there is room, otherwise just inside it.
    int y = box.y - 4;
    if (y - size.height < 0) y = box.y + size.height + 4;
    body(cv::Rect(box.x, y - size.height - 2, size.width + 4, size.height + baseline + 4) &
         cv::Rect(0, 0, body.cols, body.rows))
        .setTo(colour);
    cv::putText(body, text, {box.x + 2, y}, cv::FONT_HERSHEY_SIMPLEX, font, cv::Scalar(0, 0, 0), 1,
                cv::LINE_AA);
  }
}

std::vector<Detection> MirrorDetections(std::vector<Detection> detections, int width) {
  for (Detection& d : detections) d.box.x = width - d.box.x - d.box.width;
  return detections;
}

void DrawHud(cv::Mat& image, const std::string& text) {
  const double font = std::max(0.4, image.cols / 1800.0);
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font, 1, &baseline);
  const int pad = 4;
  // Top-right, just below the strip: clear of the strip and of what sources
  // usually print at the bottom (camera OSDs, the test pattern's counter).
  const int top = std::min(timecode::StripRows(image.cols), image.rows);
  const int width = size.width + 2 * pad;
  const cv::Rect box = cv::Rect(image.cols - width, top, width, size.height + baseline + 2 * pad) &
                       cv::Rect(0, 0, image.cols, image.rows);
  if (box.area() <= 0) return;
  cv::Mat area = image(box);  // OpenCV clips to the box: nothing else is touched
  area.setTo(cv::Scalar(24, 24, 24));
  cv::putText(area, text, {pad, area.rows - baseline - pad + 1}, cv::FONT_HERSHEY_SIMPLEX, font,
              cv::Scalar(235, 235, 235), 1, cv::LINE_AA);
}

AnnotatorStage::AnnotatorStage(Overlay overlay, LatestSlot<FramePtr>& raw,
                               LatestSlot<DetectionSetPtr>* detections,
                               LatestSlot<FramePtr>& annotated, Metrics& metrics, bool hud,
                               const LiveSettings* settings,
                               std::chrono::microseconds max_detection_age)
    : overlay_(overlay),
      max_detection_age_us_(max_detection_age.count()),
      hud_(hud),
      settings_(settings),
      all_metrics_(metrics),
      raw_(raw),
      detections_(detections),
      annotated_(annotated),
      metrics_(metrics.Stage("annotate")) {}

void AnnotatorStage::Start() {
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void AnnotatorStage::Stop() { thread_.Stop(); }

bool AnnotatorStage::Detecting() const {
  return detections_ != nullptr && (settings_ == nullptr || settings_->detector());
}

// One loop for both modes, which may change between two frames: each turn
// waits on the slot the current mode streams from.
void AnnotatorStage::Run(std::stop_token stop) {
  using namespace std::chrono_literals;
  uint64_t raw_version = 0;
  uint64_t detections_version = 0;
  FrameMeta last;  // of the last frame published
  bool was_inferred = false;
  // Right after a switch to inferred, the detections slot may hold a frame
  // older than the last raw frame streamed: until one frame has gone out (or
  // this deadline), older sets are skipped so the stream never goes back in
  // time. Only then: capture stamps of frames from another host (an http://
  // source) or from a restarted stage need not increase across an outage.
  int64_t no_older_until_us = 0;
  while (!stop.stop_requested()) {
    const Overlay overlay = settings_ != nullptr ? settings_->overlay() : overlay_;
    const bool inferred = Detecting() && overlay == Overlay::kInferred;
    if (inferred && !was_inferred) no_older_until_us = MonotonicMicros() + max_detection_age_us_;
    was_inferred = inferred;
    FramePtr frame;
    DetectionSetPtr set;
    if (inferred) {
      auto next = detections_->WaitNewer(detections_version, 100ms);
      if (!next) continue;
      detections_version = next->version;
      set = next->value;
      frame = set->frame;
      if (frame && MonotonicMicros() < no_older_until_us &&
          frame->meta.stamps.capture_us <= last.stamps.capture_us) {
        continue;
      }
    } else {
      auto next = raw_.WaitNewer(raw_version, 100ms);
      if (!next) continue;
      raw_version = next->version;
      frame = next->value;
      if (detections_ != nullptr) {
        if (auto latest = detections_->Latest()) set = latest->value;
      }
    }
    // After a switch back to latest, the newest raw frame may be the one
    // just streamed as inferred.
    if (!frame || SameFrame(frame->meta, last)) continue;
    last = frame->meta;
    no_older_until_us = 0;
    // Asked again after the wait: a frame that arrives after the detector was
    // switched off gets no boxes. The switched-off marker set carries no
    // detections and no inference.
    const bool draw = set && set->detector_running && Detecting();
    Publish(frame, draw ? set.get() : nullptr);
  }
}

void AnnotatorStage::Publish(const FramePtr& source, const DetectionSet* detections) {
  const int64_t start = MonotonicMicros();
  auto out = std::make_shared<Frame>();
  out->meta = source->meta;
  bool draw = false;
  if (detections != nullptr) {
    const int64_t age = source->meta.stamps.capture_us - detections->frame->meta.stamps.capture_us;
    if (age <= max_detection_age_us_) {
      out->meta.detections_sequence = detections->frame->meta.sequence;
      out->meta.stamps.infer_start_us = detections->infer_start_us;
      out->meta.stamps.infer_end_us = detections->infer_end_us;
      draw = !detections->detections.empty();
    }
  }
  const bool mirror = settings_ != nullptr && settings_->mirror();
  if (draw || hud_ || mirror) {
    // The raw frame is shared: never draw on it. Mirroring first keeps text
    // readable; the boxes follow their objects.
    if (mirror) {
      cv::flip(source->image, out->image, 1);
    } else {
      out->image = source->image.clone();
    }
    if (draw) {
      DrawDetections(out->image, mirror ? MirrorDetections(detections->detections, out->image.cols)
                                        : detections->detections);
    }
    if (hud_) DrawHud(out->image, HudText(start));
  } else {
    out->image = source->image;  // nothing to draw: share the pixels
  }
  const int64_t end = MonotonicMicros();
  out->meta.stamps.publish_us = end;
  annotated_.Publish(std::move(out));
  metrics_.Record(end, static_cast<double>(end - start) / 1000.0,
                  static_cast<double>(end - source->meta.stamps.capture_us) / 1000.0);
}

const std::string& AnnotatorStage::HudText(int64_t now_us) {
  // Percentiles sort a window of samples: refresh a few times a second, not
  // per frame (the figures move slowly anyway).
  constexpr int64_t kRefreshUs = 500'000;
  if (!hud_text_.empty() && now_us - hud_updated_us_ < kRefreshUs) return hud_text_;
  hud_updated_us_ = now_us;
  char text[160];
  int n = std::snprintf(text, sizeof text, "%.1f fps", metrics_.Fps(now_us));
  if (const StageMetrics* infer = all_metrics_.Find("infer"); infer != nullptr) {
    n += std::snprintf(text + n, sizeof text - static_cast<size_t>(n), " | det %.1f fps %.0f ms",
                       infer->Fps(now_us), infer->Work(now_us).p50);
  }
  // The viewers' latency when someone watches; otherwise this stage's own.
  const StageMetrics* send = all_metrics_.Find("send");
  const Percentiles sent = send != nullptr ? send->Latency(now_us) : Percentiles{};
  const Percentiles here = metrics_.Latency(now_us);
  const double latency = sent.count > 0 ? sent.p50 : here.p50;
  std::snprintf(text + n, sizeof text - static_cast<size_t>(n), " | %s %.*f ms",
                sent.count > 0 ? "e2e" : "latency", latency < 10 ? 1 : 0, latency);
  hud_text_ = text;
  return hud_text_;
}

}  // namespace freshframe::infer
