#include "infer/bus_detections.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "bus/text_bus.h"
#include "core/clock.h"

namespace freshframe::infer {
namespace {

using namespace std::chrono_literals;

// How often the bus thread looks at the clock and the writer when no text
// arrives: a model that died is noticed this much after max_age at worst.
constexpr auto kPollInterval = 50ms;

double Ms(int64_t us) { return static_cast<double>(us) / 1000.0; }

size_t PixelBytes(const Frame& frame) { return frame.image.total() * frame.image.elemSize(); }

}  // namespace

RecentFrames::RecentFrames(size_t max_frames, size_t max_bytes)
    : max_frames_(std::max<size_t>(max_frames, 1)), max_bytes_(max_bytes) {}

void RecentFrames::Push(FramePtr frame) {
  std::lock_guard lock(mutex_);
  bytes_ += PixelBytes(*frame);
  frames_.push_back(std::move(frame));
  while (frames_.size() > 1 && (frames_.size() > max_frames_ || bytes_ > max_bytes_)) {
    bytes_ -= PixelBytes(*frames_.front());
    frames_.pop_front();
  }
}

FramePtr RecentFrames::Find(uint64_t sequence, int64_t capture_us) const {
  std::lock_guard lock(mutex_);
  for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
    const FrameMeta& meta = (*it)->meta;
    if (meta.sequence == sequence && (capture_us == 0 || meta.stamps.capture_us == capture_us)) {
      return *it;
    }
  }
  return nullptr;
}

FramePtr RecentFrames::Newest() const {
  std::lock_guard lock(mutex_);
  return frames_.empty() ? nullptr : frames_.back();
}

size_t RecentFrames::size() const {
  std::lock_guard lock(mutex_);
  return frames_.size();
}

ExternalDetectionsStage::ExternalDetectionsStage(std::unique_ptr<bus::BusReader> reader,
                                                 ExternalDetectionsOptions options,
                                                 LatestSlot<FramePtr>& raw,
                                                 LatestSlot<DetectionSetPtr>& detections,
                                                 Metrics& metrics, LatestSlot<JsonTextPtr>* json,
                                                 const LiveSettings* settings)
    : reader_(std::move(reader)),
      options_(std::move(options)),
      raw_(raw),
      detections_(detections),
      json_(json),
      settings_(settings),
      metrics_(metrics.Stage("infer")),
      recent_(options_.ring_frames, options_.ring_bytes) {}

void ExternalDetectionsStage::Start() {
  raw_thread_.Start([this](std::stop_token stop) { WatchRaw(stop); });
  bus_thread_.Start([this](std::stop_token stop) { ReadBus(stop); });
}

void ExternalDetectionsStage::Stop() {
  bus_thread_.Stop();
  raw_thread_.Stop();
}

void ExternalDetectionsStage::WatchRaw(std::stop_token stop) {
  uint64_t version = 0;
  while (!stop.stop_requested()) {
    auto next = raw_.WaitNewer(version, 100ms);
    if (!next) continue;
    version = next->version;
    if (next->value) recent_.Push(next->value);
  }
}

void ExternalDetectionsStage::ReadBus(std::stop_token stop) {
  const int64_t max_age_us = options_.max_age.count();
  while (!stop.stop_requested()) {
    auto text = reader_->ReadCopy(kPollInterval, nullptr, stop);
    const int64_t now = MonotonicMicros();
    const bool writer_alive = reader_->WriterAlive();
    writer_alive_.store(writer_alive, std::memory_order_relaxed);
    NoteBusError();
    const bool enabled = settings_ == nullptr || settings_->detector();
    // A text whose writer is gone is old news: the last set of a model that
    // died before this process started, say.
    if (text) bus_error_.clear();  // a corrupt bus is said again if it recurs
    if (text && writer_alive) Handle(*text, now, enabled);

    const int64_t last_set = last_set_us_.load(std::memory_order_relaxed);
    const bool alive = writer_alive && last_set != 0 && now - last_set <= max_age_us;
    if (alive != alive_.exchange(alive, std::memory_order_relaxed)) {
      if (alive) {
        std::lock_guard lock(names_mutex_);
        spdlog::info("bus {}: detections from {} arriving", options_.bus_name,
                     model_.empty() ? std::string("a model") : model_);
      } else {
        spdlog::warn(
            "bus {}: model gone ({}); drawing no boxes until it is back", options_.bus_name,
            writer_alive ? fmt::format("no detection set for {:.1f} s", Ms(max_age_us) / 1000)
                         : std::string("its process exited"));
      }
    }
    // Nothing stale stays drawn: not a dead model's boxes, not a set older
    // than max_age, not a switched-off detector's.
    if (published_running_ && (!alive || !enabled || now - last_published_us_ > max_age_us)) {
      PublishOff();
    }
  }
}

void ExternalDetectionsStage::Handle(const Frame& text, int64_t now_us, bool publish) {
  auto body = bus::TextFromFrame(text);
  if (!body) {
    Reject(fmt::format("the bus carries {}x{} frames, not detection texts", text.image.cols,
                       text.image.rows));
    return;
  }
  auto set = ParseDetectionsJson(*body);
  if (!set) {
    Reject(set.error().message);
    return;
  }
  sets_.fetch_add(1, std::memory_order_relaxed);
  last_set_us_.store(now_us, std::memory_order_relaxed);
  {
    std::lock_guard lock(names_mutex_);
    model_ = set->detector;
  }
  if (publish) Publish(*set, now_us);
}

void ExternalDetectionsStage::Publish(const ExternalSet& set, int64_t now_us) {
  if (!set.detector_running) {  // the model says it is off
    if (published_running_) PublishOff();
    return;
  }
  FramePtr frame = set.sequence != 0 ? recent_.Find(set.sequence, set.capture_us) : nullptr;
  const bool matched = frame != nullptr;
  // The held frame's stamp when there is one; the writer's otherwise, if it
  // can be one (same host, same CLOCK_MONOTONIC: not in the future).
  const int64_t capture_us = matched ? frame->meta.stamps.capture_us
                             : set.capture_us > 0 && set.capture_us <= now_us ? set.capture_us
                                                                              : 0;
  if (capture_us > 0 && now_us - capture_us > options_.max_age.count()) {
    stale_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!matched) {
    frame = recent_.Newest();
    unmatched_.fetch_add(1, std::memory_order_relaxed);
    if (!frame) return;  // no raw frame yet: nothing to draw on
  }
  if (matched && last_sequence_ != 0 && set.sequence > last_sequence_ + 1) {
    metrics_.CountSkipped(set.sequence - last_sequence_ - 1);
  }
  if (matched) last_sequence_ = set.sequence;

  auto out = std::make_shared<DetectionSet>();
  out->frame = frame;
  out->detections = ScaleDetections(set, frame->image.cols, frame->image.rows);
  // The model's own stamps when they are plausible; arrival otherwise.
  const bool timed = set.infer_end_us > 0 && set.infer_end_us <= now_us && set.infer_start_us > 0 &&
                     set.infer_start_us <= set.infer_end_us;
  out->infer_end_us = timed ? set.infer_end_us : now_us;
  out->infer_start_us = timed ? set.infer_start_us : now_us;
  const double work_ms = timed ? Ms(out->infer_end_us - out->infer_start_us) : -1;
  if (json_ != nullptr) {
    const std::string detector = set.detector.empty() ? name() : set.detector;
    json_->Publish(std::make_shared<const std::string>(DetectionSetToJson(*out, detector)));
  }
  detections_.Publish(std::move(out));
  published_running_ = true;
  last_published_us_ = now_us;
  // Latency: capture -> the set arrived here (published by the model).
  if (capture_us > 0) {
    metrics_.Record(now_us, work_ms, Ms(now_us - capture_us));
  } else {
    metrics_.RecordWork(now_us, work_ms);
  }
}

void ExternalDetectionsStage::PublishOff() {
  std::string detector;
  {
    std::lock_guard lock(names_mutex_);
    detector = model_.empty() ? name() : model_;
  }
  PublishDetectorOff(raw_, detections_, json_, detector);
  published_running_ = false;
}

// A corrupt bus is said once (and again when the message changes).
void ExternalDetectionsStage::NoteBusError() {
  const auto& error = reader_->error();
  if (!error || error->message == bus_error_) return;
  bus_error_ = error->message;
  spdlog::error("{}", bus_error_);
  std::lock_guard lock(names_mutex_);
  last_error_ = bus_error_;
}

void ExternalDetectionsStage::Reject(const std::string& why) {
  rejected_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(names_mutex_);
    last_error_ = why;
  }
  if (warned_) return;
  warned_ = true;
  spdlog::warn(
      "bus {}: ignoring a text that is not a valid detection set: {} (said once; /api/stats "
      "external.rejected counts them)",
      options_.bus_name, why);
}

size_t ExternalDetectionsStage::held_frames() const { return recent_.size(); }

nlohmann::json ExternalDetectionsStage::State() const {
  const int64_t last_set = last_set_us_.load(std::memory_order_relaxed);
  nlohmann::json out = {{"bus", options_.bus_name},
                        {"alive", alive()},
                        {"writer_alive", writer_alive_.load(std::memory_order_relaxed)},
                        {"sets", sets_.load(std::memory_order_relaxed)},
                        {"rejected", rejected_.load(std::memory_order_relaxed)},
                        {"stale", stale_.load(std::memory_order_relaxed)},
                        {"unmatched", unmatched_.load(std::memory_order_relaxed)},
                        {"last_set_age_s", nullptr},
                        {"max_age_s", static_cast<double>(options_.max_age.count()) / 1e6},
                        {"frames_held", held_frames()}};
  if (last_set != 0) out["last_set_age_s"] = Ms(MonotonicMicros() - last_set) / 1000;
  std::lock_guard lock(names_mutex_);
  out["model"] = model_.empty() ? nlohmann::json(nullptr) : nlohmann::json(model_);
  out["last_error"] = last_error_.empty() ? nlohmann::json(nullptr) : nlohmann::json(last_error_);
  return out;
}

}  // namespace freshframe::infer
