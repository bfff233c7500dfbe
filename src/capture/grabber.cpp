#include <utility>

#include "capture/capture.h"
#include "core/clock.h"

namespace freshframe::capture {

Grabber::Grabber(std::unique_ptr<FrameSource> source, LatestSlot<FramePtr>& raw,
                 Metrics& metrics)
    : source_(std::move(source)),
      raw_(raw),
      capture_metrics_(metrics.Stage("capture")),
      grab_metrics_(metrics.Stage("grab")) {}

void Grabber::Start() {
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void Grabber::Stop() { thread_.Stop(); }

void Grabber::Run(std::stop_token stop) {
  uint64_t last_sequence = 0;
  while (!stop.stop_requested()) {
    std::optional<Frame> frame = source_->Next(stop);
    if (!frame) break;
    const int64_t now = MonotonicMicros();
    frame->meta.stamps.grab_us = now;
    const int64_t capture = frame->meta.stamps.capture_us;
    if (last_sequence != 0 && frame->meta.sequence > last_sequence + 1) {
      capture_metrics_.CountSkipped(frame->meta.sequence - last_sequence - 1);
    }
    last_sequence = frame->meta.sequence;
    raw_.Publish(std::make_shared<const Frame>(std::move(*frame)));
    capture_metrics_.Record(capture, -1, 0);
    grab_metrics_.Record(now, -1, static_cast<double>(now - capture) / 1000.0);
  }
}

}  // namespace freshframe::capture
