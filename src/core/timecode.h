// The timecode strip: a capture timestamp drawn into the pixels so that any
// client that decodes a JPEG can measure capture-to-screen latency.
// The format is specified in shared/timecode.md and docs/timecode.md:
// cell = floor(W/64); band 1 (rows [0,cell)) holds bits 63..0 of the stamp,
// white = 1; band 2 (rows [cell,2*cell)) holds their complement.
//
// Thread-safety: pure functions; safe from any thread on distinct images.
#pragma once

#include <cstdint>
#include <optional>

#include <opencv2/core/mat.hpp>

namespace freshframe::timecode {

inline constexpr int kBits = 64;
inline constexpr int kMinWidth = 320;  // narrower frames carry no strip

// Side of one square cell for a frame `width` pixels wide; 0 if no strip.
int CellSize(int width);

// Rows at the top of the frame that the strip occupies (2 * cell), which no
// overlay may cover; 0 if the frame carries no strip.
int StripRows(int width);

// Draws the strip for `t_us` into an 8-bit BGR or gray image. Returns false
// (and draws nothing) if the image is too narrow or too short to carry one.
bool Write(cv::Mat& image, int64_t t_us);

struct Reading {
  int64_t t_us = 0;       // the stamp read from the strip
  bool mirrored = false;  // the strip was found reversed (a mirrored frame)
};

// Reads the strip from an 8-bit BGR or gray image whose width is the frame's
// full width and which holds at least the top StripRows(width) rows (a
// partially decoded frame is fine). Tries the strip as-is and mirrored and
// keeps a reading within [now_us - 10 min, now_us + 1 s]; nullopt if neither
// passes the complement check and that plausibility window.
std::optional<Reading> Read(const cv::Mat& image, int64_t now_us);

}  // namespace freshframe::timecode
