// The --detector spec: one string names the detector and what it loads.

#include <string>
#include <string_view>
#include <utility>

#include "infer/detectors.h"
#include "infer/infer.h"

namespace freshframe::infer {
namespace {

constexpr std::string_view kCascadePrefix = "cascade:";
constexpr std::string_view kDnnPrefix = "dnn:";
constexpr std::string_view kMotionPlus = "motion+";
constexpr std::string_view kForms =
    "faces | cascade:<name or path> | dnn:<model.onnx> | motion | motion+<spec> | none";

Expected<std::unique_ptr<Detector>> MakeFaces(const DetectorOptions& options) {
  HaarOptions haar;
  haar.scale_factor = options.scale_factor;
  haar.min_neighbours = options.min_neighbours;
  haar.min_size = options.min_size;
  haar.max_width = options.max_width;
  return MakeHaarFaceDetector(haar);
}

}  // namespace

Expected<std::unique_ptr<Detector>> MakeDetector(std::string_view spec,
                                                 const DetectorOptions& options) {
  if (spec == "none") return std::unique_ptr<Detector>();
  if (spec == "faces") return MakeFaces(options);
  if (spec == "motion") return MakeMotionDetector(options);
  if (spec.starts_with(kCascadePrefix)) {
    const std::string name(spec.substr(kCascadePrefix.size()));
    if (name.empty()) {
      return Error{"--detector cascade: needs a cascade name or path, e.g. cascade:upperbody"};
    }
    return MakeCascadeDetector(name, options);
  }
  if (spec.starts_with(kDnnPrefix)) {
    const std::string path(spec.substr(kDnnPrefix.size()));
    if (path.empty()) {
      return Error{"--detector dnn: needs an ONNX model path, e.g. dnn:yolov8n.onnx"};
    }
    return MakeDnnDetector(path, options);
  }
  if (spec.starts_with(kMotionPlus)) {
    const std::string_view inner_spec = spec.substr(kMotionPlus.size());
    // Gating motion on motion, or gating nothing, is a spelling mistake.
    if (inner_spec.empty() || inner_spec == "none" || inner_spec == "motion" ||
        inner_spec.starts_with(kMotionPlus)) {
      return Error{"--detector " + std::string(spec) +
                   ": motion+ needs a detector to gate (faces, cascade:..., dnn:...), e.g. "
                   "motion+faces"};
    }
    auto inner = MakeDetector(inner_spec, options);
    if (!inner) return inner.error();
    return MakeMotionGatedDetector(std::move(inner).value(), options);
  }
  return Error{"unknown --detector \"" + std::string(spec) + "\"; expected " + std::string(kForms)};
}

}  // namespace freshframe::infer
