// Detection sets written by another process (`--detector bus:NAME`): the
// JSON of one set, as DetectionSetToJson writes it and GET /api/detections
// serves it, parsed and checked, and its boxes mapped onto a frame.
//
// The text comes from any process that can write the bus, so it is remote
// input: ParseDetectionsJson never throws, bounds everything it keeps, and
// refuses the whole set when any part is out of bounds (one message says
// which part). docs/detectors.md ("bus:NAME") is the contract for writers.
//
// Thread-safety: plain functions on values; call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core/types.hpp>

#include "core/expected.h"
#include "infer/infer.h"

namespace freshframe::infer {

inline constexpr size_t kMaxExternalTextBytes = 256 * 1024;  // a set of 1000 boxes is ~80 KiB
inline constexpr size_t kMaxExternalDetections = 1000;
inline constexpr size_t kMaxExternalLabelBytes = 64;  // a label and the detector's name
inline constexpr double kMaxExternalImageSide = 16384;

struct ExternalDetection {
  cv::Rect2d box;  // in the model's image, clamped to [0, width] x [0, height]
  std::string label;
  float score = 1;  // clamped to [0, 1]
};

struct ExternalSet {
  uint64_t sequence = 0;   // of the raw frame the model ran on; 0: not said
  int64_t capture_us = 0;  // that frame's capture stamp; 0: not said
  int64_t infer_start_us = 0;
  int64_t infer_end_us = 0;
  double width = 0;  // the image the model saw: 1..kMaxExternalImageSide
  double height = 0;
  std::string detector;  // the model's own name; may be empty
  bool detector_running = true;
  std::vector<ExternalDetection> detections;  // empty when !detector_running
};

// One set from its JSON text. Required: "width", "height" (numbers in
// 1..16384) and "detections" (an array of at most 1000 objects, each with
// "box": [x, y, w, h], four finite numbers with w, h >= 0; optional "label",
// a string of at most 64 bytes, and "score", a finite number). Optional:
// "sequence" (a non-negative integer), "capture_us", "infer_start_us",
// "infer_end_us" (non-negative numbers of microseconds), "detector" (a
// string of at most 64 bytes), "detector_running" (a boolean). Other keys
// are ignored. Any other shape is an Error saying what is wrong.
Expected<ExternalSet> ParseDetectionsJson(std::string_view text);

// The set's boxes in a frame `frame_width` x `frame_height` pixels: scaled
// from the model's image size (a model that ran on a resized copy), rounded
// to whole pixels and clamped to the frame; boxes left with no area are
// dropped.
std::vector<Detection> ScaleDetections(const ExternalSet& set, int frame_width, int frame_height);

}  // namespace freshframe::infer
