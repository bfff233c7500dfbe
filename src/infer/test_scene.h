// Test-only: a static noisy background (fresh sensor noise every frame)
// with solid red rectangles drawn on top, for motion tests.
#pragma once

#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace freshframe::infer::test_support {

class NoisyScene {
 public:
  NoisyScene(cv::Size size, int max_level, double noise_sigma, uint64_t seed)
      : rng_(seed), noise_sigma_(noise_sigma) {
    background_.create(size, CV_8UC3);
    rng_.fill(background_, cv::RNG::UNIFORM, 0, max_level);
    cv::GaussianBlur(background_, background_, cv::Size(7, 7), 0);
  }

  cv::Mat Frame(const std::vector<cv::Rect>& rects = {}) {
    cv::Mat noise(background_.size(), CV_16SC3);
    rng_.fill(noise, cv::RNG::NORMAL, 0, noise_sigma_);
    cv::Mat frame;
    cv::add(background_, noise, frame, cv::noArray(), CV_8UC3);
    for (const cv::Rect& r : rects) cv::rectangle(frame, r, cv::Scalar(0, 0, 255), cv::FILLED);
    return frame;
  }

 private:
  cv::RNG rng_;
  double noise_sigma_;
  cv::Mat background_;
};

}  // namespace freshframe::infer::test_support
