// A video frame and the metadata that travels with it through every stage.
//
// Thread-safety and ownership: a Frame is built by one stage and then
// published as a FramePtr (shared_ptr<const Frame>). Once published it is
// immutable: any number of threads may read it, nobody writes it. A stage that
// needs to change pixels or stamps makes its own Frame (copying the metadata,
// and the pixels only when it draws on them). Memory is freed when the last
// holder drops its FramePtr, so a slow consumer keeps at most the frames it
// holds alive.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include <opencv2/core/mat.hpp>

namespace freshframe {

enum class PixelFormat : uint32_t {
  kBgr24 = 1,  // 8-bit B,G,R interleaved (OpenCV's CV_8UC3)
  kGray8 = 2,  // 8-bit luma (CV_8UC1)
};

std::string_view PixelFormatName(PixelFormat format);

// CLOCK_MONOTONIC microseconds at which each stage handled the frame; 0 means
// "not (yet) done". For an annotated frame, the infer_* stamps belong to the
// inference whose detections were drawn on it (see detections_sequence).
struct FrameStamps {
  int64_t capture_us = 0;      // the source produced the picture
  int64_t grab_us = 0;         // the grabber published it into the raw slot
  int64_t infer_start_us = 0;  // detector started on the detections' frame
  int64_t infer_end_us = 0;    // detector finished
  int64_t publish_us = 0;      // annotated frame published for encoding
  int64_t encode_us = 0;       // JPEG encode finished
};

struct FrameMeta {
  uint64_t sequence = 0;             // per source, starts at 1, never repeats
  uint32_t source_id = 0;            // which source produced it
  int32_t width = 0;                 // pixels
  int32_t height = 0;                // pixels
  PixelFormat format = PixelFormat::kBgr24;
  uint64_t detections_sequence = 0;  // frame the drawn detections came from
  FrameStamps stamps;
};

struct Frame {
  FrameMeta meta;
  cv::Mat image;  // width x height, format as meta.format
};

using FramePtr = std::shared_ptr<const Frame>;

}  // namespace freshframe
