// Reads the timecode strip (core/timecode.h) from a JPEG without decoding the
// whole picture: libjpeg decodes only the top rows that hold the strip, in
// grayscale, and stops. On a 1280x720 frame that is 2 of 45 MCU rows.
//
// Thread-safety and ownership: a StripDecoder is not thread-safe; give each
// thread its own (the probe has one per client). It owns its libjpeg state
// and reuses it from frame to frame; it keeps no pointer to the caller's
// bytes after a call returns. ReadStripFromJpeg is safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <opencv2/core/mat.hpp>
#include <optional>
#include <string_view>

#include "core/timecode.h"

namespace freshframe::probe {

class StripDecoder {
 public:
  // Wider frames are refused rather than allocating rows for them: no camera
  // produces them, and a corrupt header must not cost hundreds of megabytes.
  static constexpr int kMaxWidth = 16384;

  StripDecoder();
  ~StripDecoder();
  StripDecoder(const StripDecoder&) = delete;
  StripDecoder& operator=(const StripDecoder&) = delete;

  // Decodes the rows of `jpeg` that hold the strip (StripRows(width) rounded
  // up to whole MCU rows, or the whole height if it is smaller) into *gray as
  // CV_8UC1, full width. Returns false, without crashing or printing, if the
  // data is not a decodable JPEG, or the frame is narrower than
  // timecode::kMinWidth or wider than kMaxWidth (it carries no strip).
  bool DecodeTop(std::string_view jpeg, cv::Mat* gray);

  // DecodeTop + timecode::Read(now_us): the stamp, or nullopt if the frame
  // has no readable strip.
  std::optional<timecode::Reading> Read(std::string_view jpeg, int64_t now_us);

 private:
  struct State;  // libjpeg structs, kept out of this header
  std::unique_ptr<State> state_;
  cv::Mat rows_;  // reused between frames of the same size
};

// One-shot convenience (creates a decoder per call).
std::optional<timecode::Reading> ReadStripFromJpeg(std::string_view jpeg, int64_t now_us);

}  // namespace freshframe::probe
