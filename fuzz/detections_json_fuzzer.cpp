// libFuzzer target: the detection-set JSON another process publishes on a
// text bus for `--detector bus:NAME` (src/infer/detections_json.cpp). Any
// process that can write the bus controls these bytes.
//
// The input is the text as the bus delivers it (bus/text_bus.h strips the
// space padding first; the padding is tried here too). It goes through
// ParseDetectionsJson and, when accepted, through ScaleDetections onto a
// frame whose size is taken from the input's length, as the stage does with
// the raw frame the set is matched to.
//
// Beyond "no sanitizer report", it checks:
// - nothing throws out (an exception would end the stage's thread);
// - an accepted set keeps to the bounds: width and height finite in
//   1..16384, at most 1000 detections, labels and the detector name at most
//   64 bytes, boxes finite with w, h >= 0 inside [0, width] x [0, height],
//   scores in [0, 1], stamps >= 0, no detections when the model says it is
//   off; a refusal has a message that says so;
// - text that is not JSON, or longer than the limit, is refused;
// - trailing spaces (the bus's padding) never change the verdict or the set;
// - scaled boxes lie inside the frame with a positive area, no more of them
//   than detections;
// - the same text gives the same answer twice.
//
// Build and run: fuzz/README.md.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "infer/detections_json.h"

namespace {

namespace fi = freshframe::infer;

// A failed property: libFuzzer saves the input as a crash artifact.
void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "detections_json_fuzzer: check failed: %s\n", what);
    std::abort();
  }
}

bool Finite(double v) { return std::isfinite(v); }

void CheckBounds(const fi::ExternalSet& set) {
  Check(Finite(set.width) && set.width >= 1 && set.width <= fi::kMaxExternalImageSide,
        "width out of bounds");
  Check(Finite(set.height) && set.height >= 1 && set.height <= fi::kMaxExternalImageSide,
        "height out of bounds");
  Check(set.detections.size() <= fi::kMaxExternalDetections, "more than 1000 detections");
  Check(set.detector.size() <= fi::kMaxExternalLabelBytes, "detector name over 64 bytes");
  Check(set.capture_us >= 0 && set.infer_start_us >= 0 && set.infer_end_us >= 0,
        "a negative stamp");
  Check(set.detector_running || set.detections.empty(), "an off model with detections");
  for (const fi::ExternalDetection& d : set.detections) {
    Check(d.label.size() <= fi::kMaxExternalLabelBytes, "label over 64 bytes");
    Check(d.score >= 0 && d.score <= 1, "score outside [0, 1]");
    const cv::Rect2d& b = d.box;
    Check(Finite(b.x) && Finite(b.y) && Finite(b.width) && Finite(b.height), "box not finite");
    Check(b.width >= 0 && b.height >= 0, "box with a negative size");
    Check(b.x >= 0 && b.y >= 0 && b.x + b.width <= set.width && b.y + b.height <= set.height,
          "box outside the model's image");
  }
}

bool SameSet(const fi::ExternalSet& a, const fi::ExternalSet& b) {
  if (a.sequence != b.sequence || a.capture_us != b.capture_us ||
      a.infer_start_us != b.infer_start_us || a.infer_end_us != b.infer_end_us ||
      a.width != b.width || a.height != b.height || a.detector != b.detector ||
      a.detector_running != b.detector_running || a.detections.size() != b.detections.size()) {
    return false;
  }
  for (size_t i = 0; i < a.detections.size(); ++i) {
    const auto& x = a.detections[i];
    const auto& y = b.detections[i];
    if (x.label != y.label || x.score != y.score || x.box != y.box) return false;
  }
  return true;
}

freshframe::Expected<fi::ExternalSet> Parse(std::string_view text) {
  try {
    return fi::ParseDetectionsJson(text);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "detections_json_fuzzer: threw: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "detections_json_fuzzer: threw something\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = Parse(text);

  if (!parsed) {
    Check(parsed.error().message.rfind("detection set refused: ", 0) == 0,
          "a refusal without its message");
  } else {
    CheckBounds(*parsed);
    Check(size <= fi::kMaxExternalTextBytes, "a text over the limit accepted");
    Check(!nlohmann::json::parse(text, nullptr, false).is_discarded(), "text that is not JSON");

    // The frame the set is drawn on: any size from 1x1 to 4096x4096.
    const int frame_width = 1 + static_cast<int>(size * 37 % 4096);
    const int frame_height = 1 + static_cast<int>(size * 101 % 4096);
    const auto boxes = fi::ScaleDetections(*parsed, frame_width, frame_height);
    Check(boxes.size() <= parsed->detections.size(), "more boxes than detections");
    for (const fi::Detection& d : boxes) {
      Check(d.box.width > 0 && d.box.height > 0, "a box with no area");
      Check(d.box.x >= 0 && d.box.y >= 0 && d.box.x + d.box.width <= frame_width &&
                d.box.y + d.box.height <= frame_height,
            "a scaled box outside the frame");
    }
  }

  // The bus pads texts with spaces: the padding changes nothing.
  if (size + 64 <= fi::kMaxExternalTextBytes) {
    const auto padded = Parse(std::string(text) + std::string(64, ' '));
    Check(padded.ok() == parsed.ok(), "padding changed the verdict");
    if (parsed) Check(SameSet(*padded, *parsed), "padding changed the set");
  }

  const auto again = Parse(text);
  Check(again.ok() == parsed.ok(), "not deterministic");
  if (parsed) {
    Check(SameSet(*again, *parsed), "not deterministic (set)");
  } else {
    Check(again.error().message == parsed.error().message, "not deterministic (message)");
  }
  return 0;
}
