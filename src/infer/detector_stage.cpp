#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "infer/infer.h"

namespace freshframe::infer {
namespace {

constexpr int kDetectorNice = 10;

}  // namespace

std::string DetectionSetToJson(const DetectionSet& set, std::string_view detector) {
  nlohmann::json boxes = nlohmann::json::array();
  for (const Detection& d : set.detections) {
    boxes.push_back({{"label", d.label},
                     {"score", std::round(static_cast<double>(d.score) * 1000.0) / 1000.0},
                     {"box", {d.box.x, d.box.y, d.box.width, d.box.height}}});
  }
  const FrameMeta meta = set.frame ? set.frame->meta : FrameMeta{};
  nlohmann::json out = {{"sequence", meta.sequence},
                        {"capture_us", meta.stamps.capture_us},
                        {"infer_start_us", set.infer_start_us},
                        {"infer_end_us", set.infer_end_us},
                        {"width", set.frame ? set.frame->image.cols : 0},
                        {"height", set.frame ? set.frame->image.rows : 0},
                        {"detector", detector},
                        {"detector_running", set.detector_running},
                        {"detections", std::move(boxes)}};
  return out.dump();
}

DetectorStage::DetectorStage(std::unique_ptr<Detector> detector, LatestSlot<FramePtr>& raw,
                             LatestSlot<DetectionSetPtr>& detections, Metrics& metrics,
                             LatestSlot<JsonTextPtr>* json, const LiveSettings* settings)
    : detector_(std::move(detector)),
      name_(detector_->name()),
      raw_(raw),
      detections_(detections),
      json_(json),
      settings_(settings),
      metrics_(metrics.Stage("infer")) {}

DetectorActivity DetectorStage::activity() const {
  return {frames_.load(std::memory_order_relaxed), model_runs_.load(std::memory_order_relaxed)};
}

void DetectorStage::Start() {
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void DetectorStage::Stop() { thread_.Stop(); }

void DetectorStage::Run(std::stop_token stop) {
  using namespace std::chrono_literals;
  // The detector yields the CPU to capture, encoding and sending: on a
  // 2-core machine an always-busy detector at the same priority would add
  // its time slices to every frame's latency. Linux nice values are per
  // thread (and inherited by threads OpenCV starts from here).
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kDetectorNice) != 0) {
    spdlog::debug("detector: could not lower thread priority");
  }
  uint64_t last_version = 0;
  uint64_t last_sequence = 0;
  bool running = true;
  while (!stop.stop_requested()) {
    // Only the newest raw frame: anything published while we were busy is
    // skipped, so inference never works on a stale picture. While switched
    // off the wait still paces the loop (one wake-up per frame, or per
    // timeout on a stalled source) and the frame is dropped.
    auto next = raw_.WaitNewer(last_version, 100ms);
    // Checked after the wait, so that a frame that arrives after the switch
    // is not inferred.
    const bool enabled = settings_ == nullptr || settings_->detector();
    if (!enabled && running) PublishOff();  // from this thread: ordered after the last real set
    running = enabled;
    if (!next) continue;
    last_version = next->version;
    const FramePtr& frame = next->value;
    if (!running) {
      last_sequence = 0;  // frames dropped while off are not "skipped" to catch up
      continue;
    }
    if (last_sequence != 0 && frame->meta.sequence > last_sequence + 1) {
      metrics_.CountSkipped(frame->meta.sequence - last_sequence - 1);
    }
    last_sequence = frame->meta.sequence;
    Detect(frame);
  }
}

void DetectorStage::Detect(const FramePtr& frame) {
  auto set = std::make_shared<DetectionSet>();
  set->frame = frame;
  set->infer_start_us = MonotonicMicros();
  set->detections = detector_->Detect(frame->image);
  set->infer_end_us = MonotonicMicros();
  const int64_t end = set->infer_end_us;
  const double work_ms = static_cast<double>(end - set->infer_start_us) / 1000.0;
  const DetectorActivity activity = detector_->activity();
  if (activity.frames == 0) {  // an ungated detector runs its model on every frame
    frames_.fetch_add(1, std::memory_order_relaxed);
    model_runs_.fetch_add(1, std::memory_order_relaxed);
  } else {
    frames_.store(activity.frames, std::memory_order_relaxed);
    model_runs_.store(activity.model_runs, std::memory_order_relaxed);
  }
  if (json_ != nullptr) {
    json_->Publish(std::make_shared<const std::string>(DetectionSetToJson(*set, name_)));
  }
  detections_.Publish(std::move(set));
  metrics_.Record(end, work_ms, static_cast<double>(end - frame->meta.stamps.capture_us) / 1000.0);
}

void PublishDetectorOff(const LatestSlot<FramePtr>& raw, LatestSlot<DetectionSetPtr>& detections,
                        LatestSlot<JsonTextPtr>* json, std::string_view detector) {
  auto set = std::make_shared<DetectionSet>();
  set->detector_running = false;
  if (auto latest = raw.Latest()) set->frame = latest->value;
  if (json != nullptr) {
    json->Publish(std::make_shared<const std::string>(DetectionSetToJson(*set, detector)));
  }
  if (set->frame) detections.Publish(std::move(set));
}

void DetectorStage::PublishOff() {
  PublishDetectorOff(raw_, detections_, json_, name_);
  spdlog::debug("detector: switched off");
}

}  // namespace freshframe::infer
