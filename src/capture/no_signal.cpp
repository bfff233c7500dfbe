#include <cstdio>

#include <opencv2/imgproc.hpp>

#include "capture/capture.h"
#include "core/timecode.h"

namespace freshframe::capture {

Frame MakeNoSignalFrame(int width, int height, const std::string& why, double seconds,
                        int64_t now_us) {
  Frame frame;
  frame.meta.width = width;
  frame.meta.height = height;
  frame.meta.format = PixelFormat::kBgr24;
  frame.meta.stamps.capture_us = now_us;
  frame.image = cv::Mat(height, width, CV_8UC3, cv::Scalar(40, 30, 30));
  // Diagonal stripes: unmistakably not a picture, even as a thumbnail.
  const int step = std::max(8, width / 20);
  for (int x = -height; x < width; x += step) {
    cv::line(frame.image, {x, height}, {x + height, 0}, cv::Scalar(60, 45, 45),
             std::max(1, step / 3));
  }
  const double big = std::max(0.6, width / 400.0);
  const double small = std::max(0.4, width / 1400.0);
  const auto centred = [&](const std::string& text, double scale, int y, const cv::Scalar& colour,
                           int thickness) {
    int baseline = 0;
    const cv::Size size =
        cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &baseline);
    cv::putText(frame.image, text, {std::max(4, (width - size.width) / 2), y},
                cv::FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv::LINE_AA);
  };
  centred("NO SIGNAL", big, height / 2, cv::Scalar(60, 60, 255), std::max(2, width / 300));
  char since[64];
  std::snprintf(since, sizeof since, "for %.1f s, reconnecting", seconds);
  centred(since, small, height / 2 + static_cast<int>(40 * big), cv::Scalar(230, 230, 230), 1);
  // Long reasons are cut to the width: the full text is in /api/stats.
  const size_t max_chars = static_cast<size_t>(std::max(20, width / 9));
  centred(why.size() > max_chars ? why.substr(0, max_chars - 3) + "..." : why, small,
          height / 2 + static_cast<int>(70 * big), cv::Scalar(200, 200, 200), 1);
  timecode::Write(frame.image, now_us);
  return frame;
}

}  // namespace freshframe::capture
