// OpenCV cascades (Haar and LBP) found by Debian opencv-data name or path.
//
// Names: "upperbody", "haarcascade_upperbody", "haarcascade_upperbody.xml",
// "lbpcascade_frontalface", ... A short name is tried as haarcascade_<name>
// first, then lbpcascade_<name>, so "profileface" is the Haar one; spell out
// "lbpcascade_profileface" for the LBP one. Labels are the short name, except
// that families whose members find the same thing share one label:
// frontalface_* and profileface (Haar or LBP) are "face", frontalcatface* is
// "cat face", eye_tree_eyeglasses is "eye", the two plate cascades are "plate".
// Detections come surest first (score from the neighbour count, see below).

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "infer/detectors.h"
#include "infer/infer.h"

namespace freshframe::infer {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kHaarPrefix = "haarcascade_";
constexpr std::string_view kLbpPrefix = "lbpcascade_";
constexpr std::string_view kXml = ".xml";

std::string_view StripPrefix(std::string_view stem) {
  for (const auto prefix : {kHaarPrefix, kLbpPrefix}) {
    if (stem.starts_with(prefix)) return stem.substr(prefix.size());
  }
  return stem;
}

std::string LabelFor(std::string_view stem) {
  const std::string_view s = StripPrefix(stem);
  if (s.starts_with("frontalface") || s == "profileface") return "face";
  if (s.starts_with("frontalcatface")) return "cat face";
  if (s == "eye_tree_eyeglasses") return "eye";
  if (s == "lefteye_2splits") return "left eye";
  if (s == "righteye_2splits") return "right eye";
  if (s == "russian_plate_number" || s == "licence_plate_rus_16stages") return "plate";
  return std::string(s);
}

// Haar directories first (CascadeSearchDirs), then their lbpcascades siblings.
std::vector<std::string> AllCascadeDirs() {
  std::vector<std::string> dirs = CascadeSearchDirs();
  const size_t haar_count = dirs.size();
  for (size_t i = 0; i < haar_count; ++i) {
    std::string lbp = dirs[i];
    const size_t at = lbp.rfind("haarcascades");
    if (at == std::string::npos) continue;
    lbp.replace(at, std::string_view("haarcascades").size(), "lbpcascades");
    dirs.push_back(std::move(lbp));
  }
  return dirs;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

struct Resolved {
  std::string path;
  std::string stem;  // file name without .xml: decides the label
};

Expected<Resolved> Resolve(const std::string& name_or_path) {
  std::error_code ec;
  if (name_or_path.find('/') != std::string::npos) {
    if (!fs::is_regular_file(name_or_path, ec)) {
      return Error{"cascade file " + name_or_path + " not found"};
    }
    return Resolved{name_or_path, fs::path(name_or_path).stem().string()};
  }
  std::string_view name = name_or_path;
  if (name.ends_with(kXml)) name.remove_suffix(kXml.size());
  std::vector<std::string> stems;
  if (name.starts_with(kHaarPrefix) || name.starts_with(kLbpPrefix)) {
    stems.emplace_back(name);
  } else if (!name.empty()) {
    stems.push_back(std::string(kHaarPrefix) + std::string(name));
    stems.push_back(std::string(kLbpPrefix) + std::string(name));
  }
  const std::vector<std::string> dirs = AllCascadeDirs();
  for (const auto& stem : stems) {
    for (const auto& dir : dirs) {
      std::string path = dir + "/" + stem + std::string(kXml);
      if (fs::is_regular_file(path, ec)) return Resolved{std::move(path), stem};
    }
  }
  // A bare file name in the working directory still works as a path.
  if (!name_or_path.empty() && fs::is_regular_file(name_or_path, ec)) {
    return Resolved{name_or_path, fs::path(name_or_path).stem().string()};
  }
  const std::vector<std::string> names = ListCascadeNames();
  if (names.empty()) {
    return Error{"unknown cascade \"" + name_or_path + "\": no cascades found in " + Join(dirs) +
                 " (install Debian's opencv-data, or give a path)"};
  }
  return Error{"unknown cascade \"" + name_or_path + "\"; available: " + Join(names) +
               " (short names without haarcascade_/lbpcascade_ work too; searched " + Join(dirs) +
               ")"};
}

class CascadeDetector final : public Detector {
 public:
  CascadeDetector(cv::CascadeClassifier cascade, std::string label, std::string name,
                  const DetectorOptions& options)
      : cascade_(std::move(cascade)),
        label_(std::move(label)),
        name_(std::move(name)),
        options_(options) {}

  std::vector<Detection> Detect(const cv::Mat& bgr) override {
    if (bgr.empty()) return {};
    try {
      return DetectOrThrow(bgr);
    } catch (const cv::Exception&) {
      return {};  // e.g. an unsupported pixel type: no detections, not a crash
    }
  }

  std::string_view name() const override { return name_; }

 private:
  std::vector<Detection> DetectOrThrow(const cv::Mat& bgr) {
    // Detect on a downscaled grey copy: cascade cost grows with pixel count
    // and objects stay findable at 640 px wide; boxes are scaled back.
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
    if (small.channels() == 3) {
      cv::cvtColor(small, gray_, cv::COLOR_BGR2GRAY);
    } else if (small.channels() == 4) {
      cv::cvtColor(small, gray_, cv::COLOR_BGRA2GRAY);
    } else {
      small.copyTo(gray_);
    }
    cv::equalizeHist(gray_, gray_);
    // min_size is in frame pixels; the cascade sees the downscaled frame.
    const int min_side = std::max(1, cvRound(options_.min_size * scale));
    std::vector<cv::Rect> boxes;
    std::vector<int> neighbours;
    cascade_.detectMultiScale(gray_, boxes, neighbours, options_.scale_factor,
                              options_.min_neighbours, 0, cv::Size(min_side, min_side));
    const cv::Rect frame(0, 0, bgr.cols, bgr.rows);
    std::vector<Detection> out;
    out.reserve(boxes.size());
    for (size_t i = 0; i < boxes.size(); ++i) {
      const cv::Rect& b = boxes[i];
      Detection d;
      d.box = cv::Rect(cvRound(b.x / scale), cvRound(b.y / scale), cvRound(b.width / scale),
                       cvRound(b.height / scale)) &
              frame;
      d.label = label_;
      // A cascade gives no probability; more agreeing neighbours means a
      // surer hit, saturating at four times the minimum asked for.
      const int n = i < neighbours.size() ? neighbours[i] : options_.min_neighbours;
      d.score = std::min(1.0F, static_cast<float>(n) /
                                   static_cast<float>(4 * std::max(1, options_.min_neighbours)));
      out.push_back(std::move(d));
    }
    // Surest first: callers that want one object take the front.
    std::stable_sort(out.begin(), out.end(),
                     [](const Detection& a, const Detection& b) { return a.score > b.score; });
    return out;
  }

  cv::CascadeClassifier cascade_;
  std::string label_;
  std::string name_;
  DetectorOptions options_;
  cv::Mat gray_;  // reused between frames
};

Expected<std::unique_ptr<Detector>> Load(const std::string& path, std::string label,
                                         std::string name, const DetectorOptions& options) {
  cv::CascadeClassifier cascade;
  bool loaded = false;
  try {
    loaded = cascade.load(path);
  } catch (const cv::Exception&) {
    loaded = false;
  }
  if (!loaded || cascade.empty()) {
    return Error{"cascade " + path + " exists but OpenCV cannot load it"};
  }
  return std::unique_ptr<Detector>(std::make_unique<CascadeDetector>(
      std::move(cascade), std::move(label), std::move(name), options));
}

}  // namespace

std::vector<std::string> CascadeSearchDirs() {
  return {"/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades",
          "/usr/local/share/opencv4/haarcascades"};
}

std::vector<std::string> ListCascadeNames() {
  std::set<std::string> stems;  // sorted, and a name in two dirs is listed once
  for (const auto& dir : AllCascadeDirs()) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const fs::path& path = it->path();
      if (path.extension() == kXml && it->is_regular_file(ec)) stems.insert(path.stem().string());
    }
  }
  return {stems.begin(), stems.end()};
}

Expected<std::unique_ptr<Detector>> MakeCascadeDetector(const std::string& name_or_path,
                                                        const DetectorOptions& options) {
  if (name_or_path.empty()) {
    return Error{"cascade needs a name or a path, e.g. cascade:upperbody; available: " +
                 Join(ListCascadeNames())};
  }
  auto resolved = Resolve(name_or_path);
  if (!resolved) return resolved.error();
  return Load(resolved->path, LabelFor(resolved->stem), "cascade:" + name_or_path, options);
}

Expected<std::unique_ptr<Detector>> MakeHaarFaceDetector(const HaarOptions& options) {
  DetectorOptions detector_options;
  detector_options.scale_factor = options.scale_factor;
  detector_options.min_neighbours = options.min_neighbours;
  detector_options.min_size = options.min_size;
  detector_options.max_width = options.max_width;
  std::string path;
  if (!options.cascade_path.empty()) {
    // An explicit file is taken as given (no name lookup), labelled "face".
    std::error_code ec;
    if (!fs::is_regular_file(options.cascade_path, ec)) {
      return Error{"face cascade not found; tried: " + options.cascade_path};
    }
    path = options.cascade_path;
  } else {
    auto resolved = Resolve("frontalface_default");
    if (!resolved) {
      std::vector<std::string> tried;
      for (const auto& dir : CascadeSearchDirs()) {
        tried.push_back(dir + "/haarcascade_frontalface_default.xml");
      }
      return Error{"face cascade not found; tried: " + Join(tried) +
                   " (install Debian's opencv-data, or pass --cascade FILE)"};
    }
    path = resolved->path;
  }
  return Load(path, "face", "faces", detector_options);
}

}  // namespace freshframe::infer
