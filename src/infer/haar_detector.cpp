#include <filesystem>
#include <string>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "infer/infer.h"

namespace freshframe::infer {
namespace {

constexpr std::string_view kFaceCascade = "haarcascade_frontalface_default.xml";

class HaarFaceDetector final : public Detector {
 public:
  HaarFaceDetector(cv::CascadeClassifier cascade, const HaarOptions& options)
      : cascade_(std::move(cascade)), options_(options) {}

  std::vector<Detection> Detect(const cv::Mat& bgr) override {
    // Detect on a downscaled grey copy: Haar cost grows with pixel count and
    // faces stay findable at 640 px wide; boxes are scaled back afterwards.
    double scale = 1.0;
    if (options_.max_width > 0 && bgr.cols > options_.max_width) {
      scale = static_cast<double>(options_.max_width) / bgr.cols;
    }
    cv::Mat small;
    if (scale < 1.0) {
      cv::resize(bgr, small, cv::Size(), scale, scale, cv::INTER_AREA);
    } else {
      small = bgr;
    }
    cv::cvtColor(small, gray_, cv::COLOR_BGR2GRAY);
    cv::equalizeHist(gray_, gray_);
    std::vector<cv::Rect> boxes;
    std::vector<int> neighbours;
    cascade_.detectMultiScale(gray_, boxes, neighbours, options_.scale_factor,
                              options_.min_neighbours, 0,
                              cv::Size(options_.min_size, options_.min_size));
    std::vector<Detection> out;
    out.reserve(boxes.size());
    for (size_t i = 0; i < boxes.size(); ++i) {
      const cv::Rect& b = boxes[i];
      Detection d;
      d.box = cv::Rect(static_cast<int>(b.x / scale), static_cast<int>(b.y / scale),
                       static_cast<int>(b.width / scale), static_cast<int>(b.height / scale));
      d.label = "face";
      // Haar gives no probability; more agreeing neighbours means a surer hit.
      const int n = i < neighbours.size() ? neighbours[i] : options_.min_neighbours;
      d.score = std::min(1.0F, static_cast<float>(n) / static_cast<float>(4 * std::max(1, options_.min_neighbours)));
      out.push_back(std::move(d));
    }
    return out;
  }

  std::string_view name() const override { return "faces"; }

 private:
  cv::CascadeClassifier cascade_;
  HaarOptions options_;
  cv::Mat gray_;
};

}  // namespace

std::vector<std::string> CascadeSearchDirs() {
  return {"/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades",
          "/usr/local/share/opencv4/haarcascades"};
}

Expected<std::unique_ptr<Detector>> MakeHaarFaceDetector(const HaarOptions& options) {
  std::vector<std::string> candidates;
  if (!options.cascade_path.empty()) {
    candidates.push_back(options.cascade_path);
  } else {
    for (const auto& dir : CascadeSearchDirs()) {
      candidates.push_back(dir + "/" + std::string(kFaceCascade));
    }
  }
  std::string tried;
  for (const auto& path : candidates) {
    if (!tried.empty()) tried += ", ";
    tried += path;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) continue;
    cv::CascadeClassifier cascade;
    bool loaded = false;
    try {
      loaded = cascade.load(path);
    } catch (const cv::Exception&) {
      loaded = false;
    }
    if (!loaded || cascade.empty()) {
      return Error{"face cascade " + path + " exists but OpenCV cannot load it"};
    }
    return std::unique_ptr<Detector>(std::make_unique<HaarFaceDetector>(std::move(cascade), options));
  }
  return Error{"face cascade not found; tried: " + tried +
               " (install Debian's opencv-data, or pass --cascade FILE)"};
}

}  // namespace freshframe::infer
