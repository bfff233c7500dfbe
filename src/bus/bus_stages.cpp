#include "bus/bus_stages.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/clock.h"

namespace freshframe::bus {
namespace {

double Ms(int64_t us) { return static_cast<double>(us) / 1000.0; }

}  // namespace

BusPublisherStage::BusPublisherStage(LatestSlot<FramePtr>& in, std::unique_ptr<BusWriter> writer,
                                     std::string bus_name, Metrics& metrics)
    : in_(in),
      writer_(std::move(writer)),
      bus_name_(std::move(bus_name)),
      metrics_(metrics.Stage("publish:" + bus_name_)) {}

void BusPublisherStage::Start() {
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void BusPublisherStage::Stop() { thread_.Stop(); }

void BusPublisherStage::Run(std::stop_token stop) {
  using namespace std::chrono_literals;
  uint64_t last_version = 0;
  while (!stop.stop_requested()) {
    auto next = in_.WaitNewer(last_version, 100ms);
    if (!next) continue;
    last_version = next->version;
    const int64_t start = MonotonicMicros();
    auto result = writer_->Publish(*next->value);
    const int64_t end = MonotonicMicros();
    if (!result) {
      spdlog::error("bus {}: {}", bus_name_, result.error().message);
      continue;
    }
    if (*result == BusWriter::Result::kDropped) {
      metrics_.CountSkipped();
      continue;
    }
    metrics_.Record(end, Ms(end - start), Ms(end - next->value->meta.stamps.capture_us));
  }
}

BusSubscriberStage::BusSubscriberStage(std::unique_ptr<BusReader> reader, std::string bus_name,
                                       LatestSlot<FramePtr>& out, Metrics& metrics,
                                       std::chrono::milliseconds stale_after)
    : reader_(std::move(reader)),
      bus_name_(std::move(bus_name)),
      out_(out),
      bus_metrics_(metrics.Stage("bus:" + bus_name_)),
      grab_metrics_(metrics.Stage("grab")),
      infer_metrics_(metrics.Stage("infer")),
      annotate_metrics_(metrics.Stage("annotate")),
      stale_after_(stale_after) {}

void BusSubscriberStage::Start() {
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void BusSubscriberStage::Stop() { thread_.Stop(); }

void BusSubscriberStage::Run(std::stop_token stop) {
  using namespace std::chrono_literals;
  bool was_live = true;
  while (!stop.stop_requested()) {
    BusFrame info;
    auto frame = reader_->ReadCopy(100ms, &info, stop);
    writer_alive_.store(reader_->WriterAlive(), std::memory_order_relaxed);
    NoteError();
    const bool is_live = live();
    if (was_live != is_live) {
      if (is_live) {
        spdlog::info("bus {}: frames flowing again (writer epoch {})", bus_name_,
                     info.writer_epoch);
      } else {
        spdlog::warn("bus {}: stale, no frame for {} ms", bus_name_, stale_after_.count());
      }
      was_live = is_live;
    }
    if (!frame) continue;
    const int64_t now = MonotonicMicros();
    last_frame_us_.store(now, std::memory_order_relaxed);
    writer_epoch_.store(info.writer_epoch, std::memory_order_relaxed);
    RecordUpstream(*frame, now);
    out_.Publish(std::make_shared<const Frame>(std::move(*frame)));
  }
}

// A corrupt bus is said once (and again when it changes), not per read.
void BusSubscriberStage::NoteError() {
  const auto& error = reader_->error();
  std::lock_guard lock(error_mutex_);
  const std::string message = error ? error->message : std::string();
  if (message == error_) return;
  if (!message.empty()) {
    spdlog::error("{}", message);
  } else {
    spdlog::info("bus {}: frames are valid again", bus_name_);
  }
  error_ = message;
}

// Stages that ran in other processes left their stamps on the frame; record
// them here so /api/stats of this process shows the whole pipeline.
void BusSubscriberStage::RecordUpstream(const Frame& frame, int64_t now_us) {
  const FrameStamps& t = frame.meta.stamps;
  if (t.capture_us <= 0) return;
  bus_metrics_.Record(now_us, t.publish_us > 0 ? Ms(now_us - t.publish_us) : -1,
                      Ms(now_us - t.capture_us));
  if (t.grab_us > 0) grab_metrics_.Record(now_us, -1, Ms(t.grab_us - t.capture_us));
  if (frame.meta.detections_sequence != 0 &&
      frame.meta.detections_sequence != last_detections_sequence_ && t.infer_end_us > 0) {
    last_detections_sequence_ = frame.meta.detections_sequence;
    // Only the detector's time: these detections were computed on an earlier
    // frame, whose capture stamp this frame does not carry.
    infer_metrics_.RecordWork(now_us, Ms(t.infer_end_us - t.infer_start_us));
  }
  if (t.publish_us > 0) {
    annotate_metrics_.Record(now_us, -1, Ms(t.publish_us - t.capture_us));
  }
}

bool BusSubscriberStage::live() const {
  const int64_t last = last_frame_us_.load(std::memory_order_relaxed);
  return last != 0 &&
         MonotonicMicros() - last <=
             std::chrono::duration_cast<std::chrono::microseconds>(stale_after_).count();
}

nlohmann::json BusSubscriberStage::State() const {
  const int64_t last = last_frame_us_.load(std::memory_order_relaxed);
  nlohmann::json state = {{"bus", bus_name_},
                          {"live", live()},
                          {"writer_alive", writer_alive_.load(std::memory_order_relaxed)},
                          {"writer_epoch", writer_epoch_.load(std::memory_order_relaxed)}};
  {
    std::lock_guard lock(error_mutex_);
    state["error"] = error_.empty() ? nlohmann::json(nullptr) : nlohmann::json(error_);
  }
  state["stale_s"] = last == 0
                         ? nlohmann::json(nullptr)
                         : nlohmann::json(static_cast<double>(MonotonicMicros() - last) / 1e6);
  return state;
}

}  // namespace freshframe::bus
