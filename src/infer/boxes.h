// Internal to src/infer: rectangle helpers shared by the motion detector and
// the motion gate.
#pragma once

#include <vector>

#include <opencv2/core/types.hpp>

namespace freshframe::infer {

// Merges rectangles that overlap or lie within `gap` pixels of each other
// (gap 0: only overlapping ones), until no two do: one moving object often
// splits into several blobs, and overlapping crops would run a model twice.
std::vector<cv::Rect> MergeNearby(std::vector<cv::Rect> rects, int gap);

}  // namespace freshframe::infer
