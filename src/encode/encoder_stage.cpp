#include <chrono>
#include <optional>

#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "encode/encode.h"

namespace freshframe::encode {

EncoderStage::EncoderStage(int quality, LatestSlot<FramePtr>& annotated,
                           LatestSlot<EncodedFramePtr>& encoded, const Demand& demand,
                           Metrics& metrics, const LiveSettings* settings)
    : encoder_(quality),
      annotated_(annotated),
      encoded_(encoded),
      demand_(demand),
      settings_(settings),
      metrics_(metrics.Stage("encode")) {}

void EncoderStage::Start() {
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void EncoderStage::Stop() { thread_.Stop(); }

void EncoderStage::Run(std::stop_token stop) {
  using namespace std::chrono_literals;
  uint64_t last_version = 0;     // newest annotated frame seen
  uint64_t encoded_version = 0;  // newest annotated frame encoded
  uint64_t last_sequence = 0;
  while (!stop.stop_requested()) {
    std::optional<LatestSlot<FramePtr>::Versioned> next = annotated_.WaitNewer(last_version, 100ms);
    if (next) {
      last_version = next->version;
    } else if (demand_.Wanted() && encoded_version < annotated_.version()) {
      // A watcher arrived while no new frame comes (a stalled source, or a
      // bus whose writer died): encode the last frame so it can be served.
      next = annotated_.Latest();
    }
    if (!next) continue;
    if (!demand_.Wanted()) {  // nobody watches: spend nothing
      last_sequence = 0;
      continue;
    }
    const FramePtr& frame = next->value;
    const int64_t start = MonotonicMicros();
    if (settings_ != nullptr) encoder_.set_quality(settings_->quality());
    auto jpeg = encoder_.Encode(frame->image);
    if (!jpeg) {
      spdlog::error("encoder: {}", jpeg.error().message);
      continue;
    }
    encoded_version = next->version;
    auto out = std::make_shared<EncodedFrame>();
    out->meta = frame->meta;
    out->bytes = std::move(jpeg).value();
    const int64_t end = MonotonicMicros();
    out->meta.stamps.encode_us = end;
    if (last_sequence != 0 && frame->meta.sequence > last_sequence + 1) {
      metrics_.CountSkipped(frame->meta.sequence - last_sequence - 1);
    }
    last_sequence = frame->meta.sequence;
    encoded_.Publish(std::move(out));
    metrics_.Record(end, static_cast<double>(end - start) / 1000.0,
                    static_cast<double>(end - frame->meta.stamps.capture_us) / 1000.0);
  }
}

}  // namespace freshframe::encode
