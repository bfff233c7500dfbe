#include "bus/text_bus.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>

#include "core/clock.h"

namespace freshframe::bus {

Frame TextToFrame(std::string_view text, uint64_t sequence) {
  const size_t pads = text.size() / kTextPadBytes + 1;
  const size_t bytes = pads * kTextPadBytes;
  Frame frame;
  frame.image = cv::Mat(1, static_cast<int>(bytes), CV_8UC1, cv::Scalar(' '));
  std::memcpy(frame.image.data, text.data(), text.size());
  frame.meta.sequence = sequence;
  frame.meta.width = static_cast<int32_t>(bytes);
  frame.meta.height = 1;
  frame.meta.format = PixelFormat::kGray8;
  frame.meta.stamps.publish_us = MonotonicMicros();
  return frame;
}

std::optional<std::string> TextFromFrame(const Frame& frame) {
  const cv::Mat& image = frame.image;
  if (image.rows != 1 || image.type() != CV_8UC1 || !image.isContinuous()) return std::nullopt;
  const auto* bytes = reinterpret_cast<const char*>(image.data);
  size_t size = static_cast<size_t>(image.cols);
  while (size > 0 && bytes[size - 1] == ' ') --size;
  return std::string(bytes, size);
}

TextPublisherStage::TextPublisherStage(LatestSlot<TextPtr>& in, std::unique_ptr<BusWriter> writer,
                                       std::string bus_name)
    : in_(in), writer_(std::move(writer)), bus_name_(std::move(bus_name)) {}

void TextPublisherStage::Start() {
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void TextPublisherStage::Stop() { thread_.Stop(); }

void TextPublisherStage::Run(std::stop_token stop) {
  using namespace std::chrono_literals;
  uint64_t last_version = 0;
  while (!stop.stop_requested()) {
    auto next = in_.WaitNewer(last_version, 100ms);
    if (!next) continue;
    last_version = next->version;
    if (!next->value) continue;
    auto result = writer_->Publish(TextToFrame(*next->value, next->version));
    if (!result) spdlog::error("bus {}: {}", bus_name_, result.error().message);
  }
}

TextSubscriberStage::TextSubscriberStage(std::unique_ptr<BusReader> reader, std::string bus_name,
                                         LatestSlot<TextPtr>& out)
    : reader_(std::move(reader)), bus_name_(std::move(bus_name)), out_(out) {}

void TextSubscriberStage::Start() {
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void TextSubscriberStage::Stop() { thread_.Stop(); }

void TextSubscriberStage::Run(std::stop_token stop) {
  using namespace std::chrono_literals;
  bool warned = false;
  std::string error;  // the last corrupt-bus message logged
  while (!stop.stop_requested()) {
    auto frame = reader_->ReadCopy(100ms, nullptr, stop);
    if (const auto& now = reader_->error(); now && now->message != error) {
      spdlog::error("{}", now->message);
      error = now->message;
    }
    if (!frame) continue;
    error.clear();
    auto text = TextFromFrame(*frame);
    if (!text) {
      // Another kind of writer on this name: say so once, keep waiting.
      if (!warned) {
        spdlog::warn("bus {}: carries {}x{} frames, not texts; ignored", bus_name_,
                     frame->image.cols, frame->image.rows);
      }
      warned = true;
      continue;
    }
    received_.fetch_add(1, std::memory_order_relaxed);
    out_.Publish(std::make_shared<const std::string>(std::move(*text)));
  }
}

}  // namespace freshframe::bus
