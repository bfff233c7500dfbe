// motion+<spec>: the inner detector runs only on frames with motion, and only
// on crops around the moving regions, so a still scene costs one MOG2 update
// per frame instead of a model run.
//
// Detect returns the inner detector's detections only (in frame
// coordinates), never the motion boxes: the overlay then shows what the model
// found, and `motion` on its own is there for whoever wants the regions. Until
// the motion model has warmed up (warmup_frames) nothing moves, so nothing is
// detected.
//
// Crops: each moving region grows by motion_gate_pad of its size on every
// side, then to at least kMinCropSide (or four times min_size) so a cascade
// or network sees the object with some context; crops are clipped to the
// frame and overlapping ones merged. When the crops cover most of the frame,
// one run on the whole frame is cheaper than several on its parts.

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>

#include "infer/boxes.h"
#include "infer/detectors.h"

namespace freshframe::infer {
namespace {

constexpr int kMinCropSide = 160;         // px of the frame
constexpr double kWholeFrameShare = 0.6;  // crops covering more: run on the frame
constexpr double kDuplicateIoU = 0.5;     // same label and overlapping this much: one object

double IoU(const cv::Rect& a, const cv::Rect& b) {
  const int overlap = (a & b).area();
  const int total = a.area() + b.area() - overlap;
  return total > 0 ? static_cast<double>(overlap) / total : 0.0;
}

// Grows `side` (position `pos`) to at least `min_side` around its centre,
// kept inside [0, limit).
void GrowTo(int& pos, int& side, int min_side, int limit) {
  const int target = std::min(std::max(side, min_side), limit);
  pos -= (target - side) / 2;
  side = target;
  pos = std::clamp(pos, 0, limit - side);
}

std::vector<cv::Rect> CropsAround(const std::vector<Detection>& regions, cv::Size size,
                                  const DetectorOptions& options) {
  const cv::Rect frame(0, 0, size.width, size.height);
  const int min_side = std::max(kMinCropSide, 4 * options.min_size);
  const double pad = std::max(0.0, options.motion_gate_pad);
  std::vector<cv::Rect> crops;
  crops.reserve(regions.size());
  for (const Detection& region : regions) {
    cv::Rect r = region.box & frame;
    if (r.area() <= 0) continue;
    const int pad_x = cvRound(r.width * pad);
    const int pad_y = cvRound(r.height * pad);
    r = cv::Rect(r.x - pad_x, r.y - pad_y, r.width + 2 * pad_x, r.height + 2 * pad_y) & frame;
    GrowTo(r.x, r.width, min_side, size.width);
    GrowTo(r.y, r.height, min_side, size.height);
    crops.push_back(r);
  }
  crops = MergeNearby(std::move(crops), 0);
  double covered = 0;
  for (const cv::Rect& c : crops) covered += c.area();  // merged crops are disjoint
  if (covered >= kWholeFrameShare * frame.area()) return {frame};
  return crops;
}

// Keeps the best-scoring of detections with the same label that overlap
// (an object on the seam of two crops can be found in both).
std::vector<Detection> Deduplicate(std::vector<Detection> found) {
  std::stable_sort(found.begin(), found.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> kept;
  kept.reserve(found.size());
  for (Detection& d : found) {
    const bool duplicate = std::any_of(kept.begin(), kept.end(), [&](const Detection& k) {
      return k.label == d.label && IoU(k.box, d.box) > kDuplicateIoU;
    });
    if (!duplicate) kept.push_back(std::move(d));
  }
  return kept;
}

class MotionGatedDetector final : public Detector {
 public:
  MotionGatedDetector(std::unique_ptr<Detector> inner, const DetectorOptions& options)
      : inner_(std::move(inner)),
        motion_(MakeMotionDetector(options)),
        options_(options),
        name_("motion+" + std::string(inner_->name())) {}

  // Where nothing moved the picture is what the model last saw, so its
  // detections there still hold: a person who stops walking stays boxed.
  // Where something moved, the model's new results replace the old ones.
  std::vector<Detection> Detect(const cv::Mat& bgr) override {
    ++activity_.frames;
    if (bgr.empty() || bgr.size() != last_size_) last_.clear();
    if (bgr.empty()) return {};
    last_size_ = bgr.size();
    const std::vector<Detection> regions = motion_->Detect(bgr);
    if (regions.empty()) return last_;
    std::vector<Detection> found;
    try {
      const cv::Rect frame(0, 0, bgr.cols, bgr.rows);
      std::vector<cv::Rect> crops = CropsAround(regions, bgr.size(), options_);
      if (crops.empty()) return last_;
      if (!inner_->cost_grows_with_area() && crops.size() > 1) {
        cv::Rect all = crops.front();
        for (const cv::Rect& c : crops) all |= c;
        crops = {all};
      }
      ++activity_.model_runs;
      for (const cv::Rect& crop : crops) {
        // A view, not a copy: the inner detector reads the frame's pixels.
        for (Detection& d : inner_->Detect(bgr(crop))) {
          d.box = (d.box + crop.tl()) & frame;
          if (d.box.area() > 0) found.push_back(std::move(d));
        }
      }
      for (const Detection& old : last_) {
        const bool re_examined = std::any_of(crops.begin(), crops.end(), [&](const cv::Rect& c) {
          return (c & old.box).area() > 0;
        });
        if (!re_examined) found.push_back(old);
      }
    } catch (const cv::Exception&) {
      return {};
    }
    last_ = Deduplicate(std::move(found));
    return last_;
  }

  std::string_view name() const override { return name_; }
  DetectorActivity activity() const override { return activity_; }
  bool keeps_per_camera_state() const override { return true; }  // motion_ and last_

 private:
  std::unique_ptr<Detector> inner_;
  std::unique_ptr<Detector> motion_;
  DetectorOptions options_;
  std::string name_;
  DetectorActivity activity_;
  std::vector<Detection> last_;  // the model's detections, as of the last motion
  cv::Size last_size_;
};

}  // namespace

std::unique_ptr<Detector> MakeMotionGatedDetector(std::unique_ptr<Detector> inner,
                                                  const DetectorOptions& options) {
  // Nothing to gate: the motion regions are all there is to report.
  if (!inner) return MakeMotionDetector(options);
  return std::make_unique<MotionGatedDetector>(std::move(inner), options);
}

}  // namespace freshframe::infer
