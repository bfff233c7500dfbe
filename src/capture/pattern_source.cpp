#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "capture/capture.h"
#include "capture/spec_parse.h"
#include "core/clock.h"
#include "core/stage_thread.h"
#include "core/timecode.h"

namespace freshframe::capture {
namespace {

constexpr std::string_view kPatternPrefix = "pattern";

// A cartoon face of height ~size centred at `c`, drawn so that Debian's
// frontal-face Haar cascade finds it: the default detector then has
// something to box on the test pattern.
// With `silhouette`, everything is drawn white (to build a mask).
void DrawFace(cv::Mat& image, cv::Point c, int size, bool silhouette = false) {
  const auto at = [&](double x, double y) {
    return cv::Point(c.x + static_cast<int>(x * size), c.y + static_cast<int>(y * size));
  };
  const auto extent = [&](double w, double h) {
    return cv::Size(static_cast<int>(w * size), static_cast<int>(h * size));
  };
  const auto fill = [&](cv::Point centre, cv::Size axes, double from, double to, cv::Scalar bgr) {
    cv::ellipse(image, centre, axes, 0, from, to, silhouette ? cv::Scalar::all(255) : bgr,
                cv::FILLED, silhouette ? cv::LINE_8 : cv::LINE_AA);
  };
  fill(c, extent(0.42, 0.55), 0, 360, cv::Scalar(150, 180, 225));            // skin
  fill(at(0, -0.45), extent(0.44, 0.22), 180, 360, cv::Scalar(40, 50, 70));  // hair
  for (const double side : {-1.0, 1.0}) {
    fill(at(side * 0.17, -0.12), extent(0.11, 0.05), 0, 360, cv::Scalar(60, 60, 70));   // eye
    fill(at(side * 0.17, -0.22), extent(0.12, 0.025), 0, 360, cv::Scalar(50, 60, 80));  // brow
  }
  fill(at(0, 0.08), extent(0.05, 0.1), 0, 360, cv::Scalar(125, 150, 200));  // nose
  fill(at(0, 0.28), extent(0.15, 0.04), 0, 360, cv::Scalar(70, 70, 140));   // mouth
}

class PatternSource final : public FrameSource {
 public:
  PatternSource(const PatternSpec& spec, uint32_t source_id)
      : spec_(spec),
        source_id_(source_id),
        period_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(1.0 / spec.fps))) {
    BuildBackground();
  }

  Expected<bool> Open() override { return true; }

  bool reconnects() const override { return false; }  // it never fails

  ReadResult Read(std::stop_token stop) override {
    const auto now = std::chrono::steady_clock::now();
    if (index_ == 0) start_ = now;
    auto deadline = start_ + period_ * index_;
    if (now - deadline > period_) {
      // Fell behind by more than a frame (the machine was busy): skip the
      // missed deadlines instead of delivering a burst of late frames.
      index_ = static_cast<int64_t>((now - start_) / period_);
      deadline = start_ + period_ * index_;
    }
    if (!SleepUntil(deadline, stop)) return ReadResult::Stopped();
    const int64_t capture_us = MonotonicMicros();
    Frame frame;
    frame.meta.sequence = static_cast<uint64_t>(index_) + 1;
    frame.meta.source_id = source_id_;
    frame.meta.width = spec_.width;
    frame.meta.height = spec_.height;
    frame.meta.format = PixelFormat::kBgr24;
    frame.meta.stamps.capture_us = capture_us;
    frame.image = Render(SceneFrame(index_), capture_us);
    ++index_;
    return ReadResult::Of(std::move(frame));
  }

  std::string Describe() const override {
    char text[96];
    const int n =
        std::snprintf(text, sizeof text, "pattern:%dx%d@%g", spec_.width, spec_.height, spec_.fps);
    if (spec_.motion < 1.0) {
      std::snprintf(text + n, sizeof text - static_cast<size_t>(n), ",motion=%g", spec_.motion);
    }
    return text;
  }
  int width() const override { return spec_.width; }
  int height() const override { return spec_.height; }
  double fps() const override { return spec_.fps; }

 private:
  // A textured background that tiles horizontally. Texture matters: detectors and JPEG behave very
  // differently on flat frames (see shared/MEASUREMENTS.md).
  void BuildBackground() {
    const int w = spec_.width;
    const int h = spec_.height;
    background_.create(h, w, CV_8UC3);
    for (int y = 0; y < h; ++y) {
      auto* row = background_.ptr<cv::Vec3b>(y);
      for (int x = 0; x < w; ++x) {
        // Periodic in x, so the scroll wraps without a seam.
        const double fx = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * x / w);
        const double fy = static_cast<double>(y) / h;
        row[x] = cv::Vec3b(static_cast<uint8_t>(60 + 80 * fx), static_cast<uint8_t>(50 + 90 * fy),
                           static_cast<uint8_t>(90 + 60 * (1 - fx)));
      }
    }
    // Structure at several scales (shapes, not pixel noise): detectors and
    // JPEG see something like a real scene, and Haar stages do not fire on
    // normalised noise.
    cv::RNG rng(12345);
    for (int i = 0; i < w * h / 4000; ++i) {
      const cv::Point p(rng.uniform(0, w), rng.uniform(0, h));
      const int r = rng.uniform(3, std::max(4, h / 12));
      const cv::Scalar colour(rng.uniform(0, 256), rng.uniform(0, 256), rng.uniform(0, 256));
      // Drawn at x and x - w so shapes crossing the right edge wrap around.
      for (const int shift : {0, -w}) {
        const cv::Point q(p.x + shift, p.y);
        if (i % 2 == 0) {
          cv::circle(background_, q, r, colour, cv::FILLED, cv::LINE_AA);
        } else {
          cv::rectangle(background_, cv::Rect(q.x, q.y, r * 2, r), colour, cv::FILLED);
        }
      }
    }
    cv::GaussianBlur(background_, background_, cv::Size(3, 3), 0);
    const int grid = std::max(16, spec_.width / 16);
    for (int x = 0; x < w; x += grid) {
      cv::line(background_, {x, 0}, {x, h - 1}, cv::Scalar(30, 30, 30), 1);
    }
    for (int y = 0; y < h; y += grid) {
      cv::line(background_, {0, y}, {w - 1, y}, cv::Scalar(30, 30, 30), 1);
    }
    const int face = std::max(8, h / 4);
    const cv::Size sprite_size(face + 4, static_cast<int>(face * 1.25) + 4);
    const cv::Point sprite_centre(sprite_size.width / 2, sprite_size.height / 2);
    face_sprite_ = cv::Mat::zeros(sprite_size, CV_8UC3);
    DrawFace(face_sprite_, sprite_centre, face);
    face_mask_ = cv::Mat::zeros(sprite_size, CV_8UC1);
    // The mask is the union of the shapes: drawn in white on black.
    cv::Mat shape = cv::Mat::zeros(sprite_size, CV_8UC3);
    DrawFace(shape, sprite_centre, face, true);
    cv::cvtColor(shape, face_mask_, cv::COLOR_BGR2GRAY);
    cv::threshold(face_mask_, face_mask_, 0, 255, cv::THRESH_BINARY);
    // Twice as wide, so that any scroll offset is a single ROI copy.
    cv::hconcat(background_, background_, background_);
  }

  // The scene's own frame number (1, 2, ...): it advances only while the
  // scene moves, so still phases render the same picture.
  uint64_t SceneFrame(int64_t index) const {
    if (spec_.motion >= 1.0) return static_cast<uint64_t>(index) + 1;
    const auto cycle = std::max<int64_t>(1, std::llround(10.0 * spec_.fps));
    const int64_t moving = std::llround(static_cast<double>(cycle) * spec_.motion);
    const int64_t in_cycle = index % cycle;
    return static_cast<uint64_t>((index / cycle) * moving + std::min<int64_t>(in_cycle, moving)) +
           1;
  }

  cv::Mat Render(uint64_t sequence, int64_t capture_us) const {
    const int w = spec_.width;
    const int h = spec_.height;
    const int scroll = static_cast<int>((sequence * 4) % static_cast<uint64_t>(w));
    cv::Mat image = background_(cv::Rect(scroll, 0, w, h)).clone();

    const double t = static_cast<double>(sequence) / spec_.fps;
    const int face = std::max(8, h / 4);
    const cv::Point centre(w / 2 + static_cast<int>((w / 2 - face) * std::sin(t * 0.35)),
                           h / 2 + static_cast<int>((h / 4) * std::sin(t * 0.5)));
    // The face is drawn once (BuildBackground) and blitted here: anti-aliased
    // ellipses every frame would cost more than the JPEG encode of a small frame.
    const cv::Rect sprite_at(centre.x - face_sprite_.cols / 2, centre.y - face_sprite_.rows / 2,
                             face_sprite_.cols, face_sprite_.rows);
    const cv::Rect visible = sprite_at & cv::Rect(0, 0, w, h);
    if (visible.area() > 0) {
      const cv::Rect from(visible.tl() - sprite_at.tl(), visible.size());
      face_sprite_(from).copyTo(image(visible), face_mask_(from));
    }
    // A clock hand turning once every 4 s: motion that is easy to judge by eye.
    const int radius = std::max(4, std::min(w, h) / 14);
    const cv::Point dial(w - radius - 8, h - radius - std::max(24, h / 12));
    cv::circle(image, dial, radius, cv::Scalar(40, 200, 240), cv::FILLED, cv::LINE_AA);
    const double angle = t * 2 * std::numbers::pi / 4;
    const cv::Point hand(dial.x + static_cast<int>(radius * std::cos(angle)),
                         dial.y + static_cast<int>(radius * std::sin(angle)));
    cv::line(image, dial, hand, cv::Scalar(20, 20, 20), std::max(1, radius / 8), cv::LINE_AA);

    const double font = std::max(0.4, w / 1280.0);
    char text[96];
    std::snprintf(text, sizeof text, "freshframe #%06llu  %.3f s",
                  static_cast<unsigned long long>(sequence),
                  // A scene that stands still at times shows its own clock,
                  // which stops with it.
                  spec_.motion < 1.0 ? t : static_cast<double>(capture_us) / 1e6);
    const int baseline_y = h - std::max(8, h / 40);
    // White on a dark band: one text pass (text is the costliest drawing here).
    int text_baseline = 0;
    const cv::Size text_size =
        cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font, 1, &text_baseline);
    image(cv::Rect(4, baseline_y - text_size.height - 4, text_size.width + 8,
                   text_size.height + text_baseline + 8) &
          cv::Rect(0, 0, w, h))
        .setTo(cv::Scalar(0, 0, 0));
    cv::putText(image, text, {8, baseline_y}, cv::FONT_HERSHEY_SIMPLEX, font,
                cv::Scalar(255, 255, 255), 1, cv::LINE_AA);

    timecode::Write(image, capture_us);
    return image;
  }

  PatternSpec spec_;
  uint32_t source_id_;
  std::chrono::steady_clock::duration period_;
  std::chrono::steady_clock::time_point start_;
  int64_t index_ = 0;
  cv::Mat background_;
  cv::Mat face_sprite_;
  cv::Mat face_mask_;
};

}  // namespace

Expected<PatternSpec> ParsePatternSpec(std::string_view spec) {
  const auto bad = [&](std::string_view why) {
    return Error{"invalid pattern source '" + std::string(spec) + "': " + std::string(why) +
                 " (expected pattern[:WxH][@FPS][,motion=F], e.g. pattern:640x480@30)"};
  };
  if (spec.substr(0, kPatternPrefix.size()) != kPatternPrefix) return bad("not a pattern");
  std::string_view rest = spec.substr(kPatternPrefix.size());
  PatternSpec out;
  if (rest.empty()) return out;
  if (rest.front() != ':') return bad("expected ':' after 'pattern'");
  rest.remove_prefix(1);
  const auto comma = rest.find(',');
  if (comma != std::string_view::npos) {
    const std::string_view option = rest.substr(comma + 1);
    rest = rest.substr(0, comma);
    constexpr std::string_view kMotion = "motion=";
    if (option.substr(0, kMotion.size()) != kMotion) return bad("unknown option (motion=F)");
    const std::string value(option.substr(kMotion.size()));
    char* end = nullptr;
    out.motion = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(out.motion >= 0.0 && out.motion <= 1.0)) {
      return bad("motion must be a number from 0 to 1");
    }
  }
  if (rest.empty()) return out;
  if (auto problem = ParseSizeAndRate(rest, out.width, out.height, out.fps)) {
    return bad(*problem);
  }
  return out;
}

std::unique_ptr<FrameSource> MakePatternSource(const PatternSpec& spec, uint32_t source_id) {
  return std::make_unique<PatternSource>(spec, source_id);
}

}  // namespace freshframe::capture
