#include "infer/detections_json.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <utility>

#include <nlohmann/json.hpp>

namespace freshframe::infer {
namespace {

using Json = nlohmann::json;

// Stamps are CLOCK_MONOTONIC microseconds: far below this (146,000 years),
// and any double up to it converts to int64 exactly enough.
constexpr double kMaxStampUs = 4.6e18;

Error Refused(const std::string& what) { return Error{"detection set refused: " + what}; }

// A finite number in [low, high], else nothing.
std::optional<double> NumberIn(const Json& value, double low, double high) {
  if (!value.is_number()) return std::nullopt;
  const double number = value.get<double>();
  if (!std::isfinite(number) || number < low || number > high) return std::nullopt;
  return number;
}

const Json* Find(const Json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

// An optional stamp: absent or null is 0.
bool ReadStamp(const Json& object, const char* key, int64_t& out) {
  const Json* value = Find(object, key);
  if (value == nullptr) return true;
  if (value->is_number_unsigned()) {
    const auto stamp = value->get<uint64_t>();
    if (static_cast<double>(stamp) > kMaxStampUs) return false;
    out = static_cast<int64_t>(stamp);
    return true;
  }
  const auto number = NumberIn(*value, 0, kMaxStampUs);
  if (!number) return false;
  out = static_cast<int64_t>(*number);
  return true;
}

// An optional string of at most kMaxExternalLabelBytes (absent or null: "").
bool ReadName(const Json& object, const char* key, std::string& out) {
  const Json* value = Find(object, key);
  if (value == nullptr) return true;
  if (!value->is_string()) return false;
  const auto& text = value->get_ref<const std::string&>();
  if (text.size() > kMaxExternalLabelBytes) return false;
  out = text;
  return true;
}

Expected<ExternalDetection> ReadDetection(const Json& item, double width, double height,
                                          const std::string& where) {
  if (!item.is_object()) return Refused(where + " is not an object");
  ExternalDetection detection;
  if (!ReadName(item, "label", detection.label)) {
    return Refused(where + ".label is not a string of at most 64 bytes");
  }
  if (const Json* score = Find(item, "score"); score != nullptr) {
    const auto number = NumberIn(*score, -HUGE_VAL, HUGE_VAL);
    if (!number) return Refused(where + ".score is not a finite number");
    detection.score = static_cast<float>(std::clamp(*number, 0.0, 1.0));
  }
  const Json* box = Find(item, "box");
  if (box == nullptr || !box->is_array() || box->size() != 4) {
    return Refused(where + ".box is not [x, y, w, h]");
  }
  double xywh[4];
  for (size_t i = 0; i < 4; ++i) {
    const auto number = NumberIn((*box)[i], -HUGE_VAL, HUGE_VAL);
    if (!number) return Refused(where + ".box holds something other than finite numbers");
    xywh[i] = *number;
  }
  if (xywh[2] < 0 || xywh[3] < 0) return Refused(where + ".box has a negative width or height");
  // Clamped to the model's image while still doubles: a huge coordinate
  // never reaches an integer conversion.
  const double x0 = std::clamp(xywh[0], 0.0, width);
  const double y0 = std::clamp(xywh[1], 0.0, height);
  const double x1 = std::clamp(xywh[0] + xywh[2], 0.0, width);
  const double y1 = std::clamp(xywh[1] + xywh[3], 0.0, height);
  detection.box = cv::Rect2d(x0, y0, x1 - x0, y1 - y0);
  return detection;
}

Expected<ExternalSet> FromJson(const Json& object) {
  if (!object.is_object()) return Refused("not a JSON object");
  ExternalSet set;
  const Json* width = Find(object, "width");
  const Json* height = Find(object, "height");
  const auto w = width ? NumberIn(*width, 1, kMaxExternalImageSide) : std::nullopt;
  const auto h = height ? NumberIn(*height, 1, kMaxExternalImageSide) : std::nullopt;
  if (!w || !h) {
    return Refused("width and height must be numbers from 1 to 16384 (the model's image size)");
  }
  set.width = *w;
  set.height = *h;
  if (const Json* sequence = Find(object, "sequence"); sequence != nullptr) {
    if (!sequence->is_number_unsigned()) return Refused("sequence is not a whole number >= 0");
    set.sequence = sequence->get<uint64_t>();
  }
  for (const auto& [key, stamp] :
       {std::pair{"capture_us", &set.capture_us}, std::pair{"infer_start_us", &set.infer_start_us},
        std::pair{"infer_end_us", &set.infer_end_us}}) {
    if (!ReadStamp(object, key, *stamp)) {
      return Refused(std::string(key) + " is not a number of microseconds >= 0");
    }
  }
  if (!ReadName(object, "detector", set.detector)) {
    return Refused("detector is not a string of at most 64 bytes");
  }
  if (const Json* running = Find(object, "detector_running"); running != nullptr) {
    if (!running->is_boolean()) return Refused("detector_running is not true or false");
    set.detector_running = running->get<bool>();
  }
  const Json* detections = Find(object, "detections");
  if (detections == nullptr || !detections->is_array()) {
    return Refused("detections is not an array");
  }
  if (detections->size() > kMaxExternalDetections) {
    return Refused("more than 1000 detections (" + std::to_string(detections->size()) + ")");
  }
  if (!set.detector_running) return set;  // a model that says it is off has nothing to draw
  set.detections.reserve(detections->size());
  for (size_t i = 0; i < detections->size(); ++i) {
    auto detection = ReadDetection((*detections)[i], set.width, set.height,
                                   "detections[" + std::to_string(i) + "]");
    if (!detection) return detection.error();
    set.detections.push_back(std::move(detection).value());
  }
  return set;
}

}  // namespace

Expected<ExternalSet> ParseDetectionsJson(std::string_view text) {
  if (text.size() > kMaxExternalTextBytes) {
    return Refused(std::to_string(text.size()) + " bytes, more than " +
                   std::to_string(kMaxExternalTextBytes));
  }
  // No exceptions asked for; the catch is for what the library may still
  // throw (allocation), so that nothing leaves the reading thread.
  try {
    const Json object = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded()) return Refused("not valid JSON");
    return FromJson(object);
  } catch (const std::exception& e) {
    return Refused(std::string("unreadable: ") + e.what());
  }
}

std::vector<Detection> ScaleDetections(const ExternalSet& set, int frame_width, int frame_height) {
  std::vector<Detection> out;
  if (frame_width <= 0 || frame_height <= 0 || set.width <= 0 || set.height <= 0) return out;
  const double sx = frame_width / set.width;
  const double sy = frame_height / set.height;
  out.reserve(set.detections.size());
  for (const ExternalDetection& d : set.detections) {
    // Boxes lie within the model's image, so these stay within the frame.
    const auto x0 = static_cast<int>(std::lround(d.box.x * sx));
    const auto y0 = static_cast<int>(std::lround(d.box.y * sy));
    const auto x1 = static_cast<int>(std::lround((d.box.x + d.box.width) * sx));
    const auto y1 = static_cast<int>(std::lround((d.box.y + d.box.height) * sy));
    const cv::Rect box =
        cv::Rect(x0, y0, x1 - x0, y1 - y0) & cv::Rect(0, 0, frame_width, frame_height);
    if (box.area() <= 0) continue;
    out.push_back({box, d.label, d.score});
  }
  return out;
}

}  // namespace freshframe::infer
