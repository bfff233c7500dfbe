#include "core/timecode.h"

#include <opencv2/core.hpp>

namespace freshframe::timecode {
namespace {

constexpr int64_t kPastWindowUs = 10LL * 60 * 1'000'000;
constexpr int64_t kFutureWindowUs = 1'000'000;
constexpr int kThreshold = 128;

// Luma of one pixel of an 8-bit gray or BGR image, as in cv::COLOR_BGR2GRAY.
int LumaAt(const cv::Mat& image, int row, int col) {
  if (image.channels() == 1) return image.at<uint8_t>(row, col);
  const auto& px = image.at<cv::Vec3b>(row, col);
  return (29 * px[0] + 150 * px[1] + 77 * px[2] + 128) >> 8;
}

// Decodes both bands, sampling cell centres; the x of cell i is given by
// `column_of`. Returns the stamp if band 2 is band 1's exact complement.
template <typename ColumnOf>
std::optional<uint64_t> DecodeBands(const cv::Mat& image, int cell, ColumnOf column_of) {
  uint64_t band1 = 0;
  uint64_t band2 = 0;
  const int row1 = cell / 2;
  const int row2 = cell + cell / 2;
  for (int i = 0; i < kBits; ++i) {
    const int col = column_of(i);
    band1 = (band1 << 1) | (LumaAt(image, row1, col) >= kThreshold ? 1U : 0U);
    band2 = (band2 << 1) | (LumaAt(image, row2, col) >= kThreshold ? 1U : 0U);
  }
  if (band2 != ~band1) return std::nullopt;
  return band1;
}

bool Plausible(uint64_t t_us, int64_t now_us) {
  const auto t = static_cast<int64_t>(t_us);
  return t >= now_us - kPastWindowUs && t <= now_us + kFutureWindowUs;
}

bool Usable(const cv::Mat& image) {
  return !image.empty() && image.depth() == CV_8U &&
         (image.channels() == 1 || image.channels() == 3) &&
         CellSize(image.cols) > 0 && image.rows >= StripRows(image.cols);
}

}  // namespace

int CellSize(int width) { return width < kMinWidth ? 0 : width / kBits; }

int StripRows(int width) { return 2 * CellSize(width); }

bool Write(cv::Mat& image, int64_t t_us) {
  if (!Usable(image)) return false;
  const int cell = CellSize(image.cols);
  const auto bits = static_cast<uint64_t>(t_us);
  const cv::Scalar white = cv::Scalar::all(255);
  const cv::Scalar black = cv::Scalar::all(0);
  for (int i = 0; i < kBits; ++i) {
    const bool one = ((bits >> (kBits - 1 - i)) & 1U) != 0;
    image(cv::Rect(i * cell, 0, cell, cell)).setTo(one ? white : black);
    image(cv::Rect(i * cell, cell, cell, cell)).setTo(one ? black : white);
  }
  return true;
}

std::optional<Reading> Read(const cv::Mat& image, int64_t now_us) {
  if (!Usable(image)) return std::nullopt;
  const int cell = CellSize(image.cols);
  const int last_col = image.cols - 1;
  const auto as_is = DecodeBands(image, cell, [&](int i) { return i * cell + cell / 2; });
  if (as_is && Plausible(*as_is, now_us)) {
    return Reading{static_cast<int64_t>(*as_is), false};
  }
  const auto mirrored =
      DecodeBands(image, cell, [&](int i) { return last_col - (i * cell + cell / 2); });
  if (mirrored && Plausible(*mirrored, now_us)) {
    return Reading{static_cast<int64_t>(*mirrored), true};
  }
  return std::nullopt;
}

}  // namespace freshframe::timecode
