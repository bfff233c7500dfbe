#include "app/detector_pool.h"

#include <spdlog/spdlog.h>

namespace freshframe::app {

std::string DetectorKey(const std::string& spec, const infer::DetectorOptions& options) {
  std::string key = spec;
  key.append("|").append(std::to_string(options.scale_factor));
  key.append("|").append(std::to_string(options.min_neighbours));
  key.append("|").append(std::to_string(options.min_size));
  key.append("|").append(std::to_string(options.max_width));
  key.append("|").append(options.labels_path);
  key.append("|").append(std::to_string(options.input_width));
  key.append("x").append(std::to_string(options.input_height));
  key.append("|").append(std::to_string(options.confidence));
  key.append("|").append(std::to_string(options.nms));
  key.append("|").append(std::to_string(options.min_area));
  return key;
}

Expected<std::unique_ptr<DetectorPool::Binding>> DetectorPool::Bind(
    const std::string& spec, const infer::DetectorOptions& options,
    infer::DetectorBinding binding) {
  if (spec == "none") return std::unique_ptr<Binding>();
  const std::string key = DetectorKey(spec, options);
  std::shared_ptr<infer::SharedDetector> detector;
  if (auto it = detectors_.find(key); it != detectors_.end()) detector = it->second.lock();
  if (!detector) {
    auto made = infer::MakeDetector(spec, options);
    if (!made) return made.error();
    detector = std::make_shared<infer::SharedDetector>(std::move(made).value());
    detector->Start();
    // A motion detector learns one camera's background (motion+X included,
    // whose gate is one): never shared. Cascades and networks hold no state
    // between frames, so one instance serves every stream.
    if (detector->shareable()) detectors_[key] = detector;
  } else {
    spdlog::info("detector {}: shared by {} streams", detector->name(), detector->bindings() + 1);
  }
  const uint64_t id = detector->Add(binding);
  if (id == 0) return Error{"detector " + spec + ": the stream could not be bound to it"};
  return std::make_unique<Binding>(std::move(detector), id);
}

size_t DetectorPool::loaded() const {
  size_t n = 0;
  for (const auto& [key, weak] : detectors_) n += weak.expired() ? 0U : 1U;
  return n;
}

}  // namespace freshframe::app
