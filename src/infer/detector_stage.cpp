#include <cmath>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "infer/infer.h"
#include "infer/shared_detector.h"

namespace freshframe::infer {

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
    : shared_(std::make_unique<SharedDetector>(std::move(detector))), name_(shared_->name()) {
  DetectorBinding binding;
  binding.raw = &raw;
  binding.detections = &detections;
  binding.json = json;
  binding.settings = settings;
  binding.metrics = &metrics.Stage("infer");
  shared_->Add(binding);
}

DetectorStage::~DetectorStage() = default;  // SharedDetector stops

void DetectorStage::Start() { shared_->Start(); }

void DetectorStage::Stop() { shared_->Stop(); }

DetectorActivity DetectorStage::activity() const { return shared_->activity(); }

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

}  // namespace freshframe::infer
