#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include <spdlog/spdlog.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/clock.h"
#include "core/timecode.h"
#include "encode/encode.h"

namespace freshframe::encode {

const cv::Mat& MakeVariant(const cv::Mat& image, const VariantKey& key, cv::Mat& buffer) {
  const bool scale = key.width > 0 && key.width < image.cols;
  // Nothing to do: the frame itself, read only. Never `buffer = image`: the
  // next frame that needs work would be written into this one's pixels, which
  // the annotated slot, the main encoder and the bus share (issue 14).
  if (!scale && !key.mirror) return image;
  if (!scale) {
    cv::flip(image, buffer, 1);
    return buffer;
  }
  const int height = std::max(
      1, static_cast<int>(std::lround(static_cast<double>(image.rows) * key.width / image.cols)));
  // Scaling blurs the strip's cells off the grid a reader expects at the new
  // width: read the stamp before and draw it again after.
  const std::optional<timecode::Reading> strip = timecode::Read(image, MonotonicMicros());
  // Not in place: a mirrored variant scales into a scratch buffer of this
  // thread's, then flips into its own.
  thread_local cv::Mat scaled;
  cv::Mat& target = key.mirror ? scaled : buffer;
  cv::resize(image, target, cv::Size(key.width, height), 0, 0, cv::INTER_AREA);
  if (strip && timecode::Write(target, strip->t_us) && strip->mirrored) {
    // The whole stream is mirrored (the annotator's mirror setting): keep the
    // strip as reversed as the picture around it.
    cv::Mat rows = target.rowRange(0, std::min(timecode::StripRows(target.cols), target.rows));
    cv::flip(rows.clone(), rows, 1);
  }
  if (key.mirror) cv::flip(scaled, buffer, 1);
  return buffer;
}

VariantEncoders::VariantEncoders(int quality, LatestSlot<FramePtr>& annotated, Metrics& metrics,
                                 const LiveSettings* settings)
    : encoder_(quality),
      annotated_(annotated),
      metrics_(metrics.Stage("encode_variants")),
      settings_(settings) {}

void VariantEncoders::Start() {
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void VariantEncoders::Stop() { thread_.Stop(); }

std::shared_ptr<VariantEncoder> VariantEncoders::Add(VariantKey key, VariantSink sink) {
  auto variant = std::make_shared<VariantEncoder>(key, std::move(sink));
  std::lock_guard lock(mutex_);
  std::erase_if(variants_, [](const auto& weak) { return weak.expired(); });
  variants_.push_back(variant);
  return variant;
}

size_t VariantEncoders::active() const {
  std::lock_guard lock(mutex_);
  return static_cast<size_t>(std::count_if(variants_.begin(), variants_.end(),
                                           [](const auto& weak) { return !weak.expired(); }));
}

std::vector<std::shared_ptr<VariantEncoder>> VariantEncoders::Live() {
  std::vector<std::shared_ptr<VariantEncoder>> live;
  std::lock_guard lock(mutex_);
  std::erase_if(variants_, [&](const std::weak_ptr<VariantEncoder>& weak) {
    auto strong = weak.lock();
    if (!strong) return true;
    live.push_back(std::move(strong));
    return false;
  });
  return live;
}

void VariantEncoders::Run(std::stop_token stop) {
  using namespace std::chrono_literals;
  uint64_t last_version = 0;   // newest annotated frame seen
  uint64_t last_sequence = 0;  // of the last frame encoded, for skip counts
  while (!stop.stop_requested()) {
    std::optional<LatestSlot<FramePtr>::Versioned> next = annotated_.WaitNewer(last_version, 100ms);
    if (next) last_version = next->version;
    std::vector<std::shared_ptr<VariantEncoder>> live = Live();
    if (live.empty()) {  // nobody wants a variant: spend nothing
      last_sequence = 0;
      continue;
    }
    // No new frame (a stalled source): a variant added meanwhile still gets
    // the current one, which the others have already.
    if (!next) next = annotated_.Latest();
    if (!next) continue;
    const Frame& frame = *next->value;
    if (settings_ != nullptr) encoder_.set_quality(settings_->quality());
    bool encoded = false;
    for (const auto& variant : live) {
      if (variant->last_version_ >= next->version) continue;
      Encode(*variant, frame, next->version);
      encoded = true;
    }
    if (!encoded) continue;
    if (last_sequence != 0 && frame.meta.sequence > last_sequence + 1) {
      metrics_.CountSkipped(frame.meta.sequence - last_sequence - 1);
    }
    last_sequence = frame.meta.sequence;
    // `live` goes here: a variant released meanwhile is destroyed on this
    // thread, after its last frame was handed on.
  }
}

void VariantEncoders::Encode(VariantEncoder& variant, const Frame& frame, uint64_t version) {
  const int64_t start = MonotonicMicros();
  variant.last_version_ = version;
  const cv::Mat& picture = MakeVariant(frame.image, variant.key_, variant.pixels_);
  auto jpeg = encoder_.Encode(picture);
  if (!jpeg) {
    spdlog::error("variant encoder: {}", jpeg.error().message);
    return;
  }
  auto out = std::make_shared<EncodedFrame>();
  out->meta = frame.meta;
  out->meta.width = picture.cols;
  out->meta.height = picture.rows;
  out->bytes = std::move(jpeg).value();
  const int64_t end = MonotonicMicros();
  out->meta.stamps.encode_us = end;
  variant.encoded_.fetch_add(1, std::memory_order_relaxed);
  variant.width_.store(out->meta.width, std::memory_order_relaxed);
  variant.height_.store(out->meta.height, std::memory_order_relaxed);
  metrics_.Record(end, static_cast<double>(end - start) / 1000.0,
                  static_cast<double>(end - frame.meta.stamps.capture_us) / 1000.0);
  if (variant.sink_) variant.sink_(std::move(out));
}

}  // namespace freshframe::encode
