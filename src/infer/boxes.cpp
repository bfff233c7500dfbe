#include "infer/boxes.h"

#include <cstddef>

namespace freshframe::infer {

std::vector<cv::Rect> MergeNearby(std::vector<cv::Rect> rects, int gap) {
  bool merged = true;
  while (merged) {
    merged = false;
    for (size_t i = 0; i < rects.size() && !merged; ++i) {
      const cv::Rect grown(rects[i].x - gap, rects[i].y - gap, rects[i].width + 2 * gap,
                           rects[i].height + 2 * gap);
      for (size_t j = i + 1; j < rects.size(); ++j) {
        if ((grown & rects[j]).area() > 0) {
          rects[i] |= rects[j];
          rects.erase(rects.begin() + static_cast<std::ptrdiff_t>(j));
          merged = true;
          break;
        }
      }
    }
  }
  return rects;
}

}  // namespace freshframe::infer
