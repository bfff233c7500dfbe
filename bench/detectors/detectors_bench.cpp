// detectors_bench: milliseconds per frame of each --detector on pre-rendered
// test-pattern frames, at several frame sizes, on a moving scene and on one
// that stands still most of the time (where motion-gated detectors should
// skip their model). Usage and output: bench/detectors/README.md.
//
// Frames come from capture::MakePatternSource, which paces itself at its
// frame rate, so one 10 s scene cycle takes 10 s to render; all
// (size, scene) pairs render in parallel threads. Each detector then runs
// over the frames on this thread:
//  - detectors with state (motion, motion+X) see the frames in capture order
//    from the first one: a warm-up of warmup_frames + 5 frames, then the
//    measured frames, continuing in order (wrapping round at the end of the
//    recording); on a scene that stands still part of the time at least one
//    whole cycle is measured, so "model ran %" covers moving and still phases;
//  - stateless detectors (cascades, dnn) get a short warm-up, then visit the
//    frames with a stride coprime to their count, so a short measurement
//    still samples the whole cycle.
// Before each call the frame's timecode strip is rewritten (not timed) with
// a capture clock advancing 1/30 s per frame, as a live 30 fps frame would
// carry: the motion detector ignores the strip's rows and learns its
// background by capture time, exactly as in the pipeline.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>

#include "capture/capture.h"
#include "core/clock.h"
#include "core/timecode.h"
#include "infer/detectors.h"
#include "infer/infer.h"

namespace {

using freshframe::MonotonicMicros;
using freshframe::capture::PatternSpec;
using freshframe::infer::DetectorActivity;
using freshframe::infer::DetectorOptions;

using Clock = std::chrono::steady_clock;

std::vector<std::string> Split(const std::string& text, char by) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, by)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<size_t>(std::ceil(q / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

double Round3(double v) { return std::round(v * 1000.0) / 1000.0; }

struct Size {
  int width = 0;
  int height = 0;
  std::string text;
};

struct Scene {
  std::string name;  // "moving", "still"
  double motion = 1.0;
};

struct Recording {
  Size size;
  Scene scene;
  std::vector<cv::Mat> frames;
  uint64_t skipped = 0;  // deadlines the pattern skipped (machine too busy)
  double seconds = 0;
};

// One --detector entry: a freshframe spec, optionally followed by
// ";key=value" options of this entry only (input=N|WxH, labels=FILE,
// conf=F, nms=F, min-area=N, name=TEXT).
struct DetectorEntry {
  std::string spec;
  std::string display;
  DetectorOptions options;
};

std::optional<DetectorEntry> ParseEntry(const std::string& text, const DetectorOptions& base,
                                        std::string& error) {
  const std::vector<std::string> parts = Split(text, ';');
  if (parts.empty()) {
    error = "empty --detector";
    return std::nullopt;
  }
  DetectorEntry entry{parts[0], parts[0], base};
  for (size_t i = 1; i < parts.size(); ++i) {
    const auto eq = parts[i].find('=');
    if (eq == std::string::npos) {
      error = "option '" + parts[i] + "' of '" + text + "' is not key=value";
      return std::nullopt;
    }
    const std::string key = parts[i].substr(0, eq);
    const std::string value = parts[i].substr(eq + 1);
    try {
      if (key == "input") {
        int w = 0;
        int h = 0;
        const int n = std::sscanf(value.c_str(), "%dx%d", &w, &h);
        if (n < 1 || w < 16) throw std::invalid_argument("input");
        entry.options.input_width = w;
        entry.options.input_height = n == 2 ? h : w;
      } else if (key == "labels") {
        entry.options.labels_path = value;
      } else if (key == "conf") {
        entry.options.confidence = std::stof(value);
      } else if (key == "nms") {
        entry.options.nms = std::stof(value);
      } else if (key == "min-area") {
        entry.options.min_area = std::stoi(value);
      } else if (key == "name") {
        entry.display = value;
      } else {
        error = "unknown option '" + key + "' in '" + text +
                "' (input, labels, conf, nms, min-area, name)";
        return std::nullopt;
      }
    } catch (const std::exception&) {
      error = "bad value in '" + parts[i] + "' of '" + text + "'";
      return std::nullopt;
    }
  }
  return entry;
}

// Renders `count` frames of the pattern, paced at its fps as it runs live.
Recording Render(const Size& size, const Scene& scene, double fps, int count) {
  Recording rec{size, scene, {}, 0, 0};
  PatternSpec spec;
  spec.width = size.width;
  spec.height = size.height;
  spec.fps = fps;
  spec.motion = scene.motion;
  auto source = freshframe::capture::MakePatternSource(spec);
  (void)source->Open();
  std::stop_source stop;
  const auto start = Clock::now();
  uint64_t last = 0;
  rec.frames.reserve(static_cast<size_t>(count));
  while (static_cast<int>(rec.frames.size()) < count) {
    auto result = source->Read(stop.get_token());
    if (result.status != freshframe::capture::ReadResult::Status::kFrame) break;
    const uint64_t sequence = result.frame->meta.sequence;
    if (last != 0 && sequence > last + 1) rec.skipped += sequence - last - 1;
    last = sequence;
    rec.frames.push_back(result.frame->image);
  }
  rec.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return rec;
}

struct Row {
  std::string detector;
  std::string scene;
  std::string size;
  bool has_detector = true;
  bool ordered = false;
  std::string error;
  uint64_t warmup = 0;
  std::vector<double> ms;
  double detections_per_frame = 0;
  std::optional<double> model_run_share;  // gated detectors only
  uint64_t model_runs = 0;
  uint64_t inner_calls = 0;  // motion+X: runs of X (one per crop)
  double seconds = 0;
};

// Passes every call to `inner` and counts them: wrapped inside a
// motion+X detector it tells how many crops each model run covered (each
// crop is one full inner run; for a network that is one full forward pass).
class CountingDetector final : public freshframe::infer::Detector {
 public:
  CountingDetector(std::unique_ptr<freshframe::infer::Detector> inner, uint64_t* calls)
      : inner_(std::move(inner)), calls_(calls) {}
  std::vector<freshframe::infer::Detection> Detect(const cv::Mat& bgr) override {
    ++*calls_;
    return inner_->Detect(bgr);
  }
  std::string_view name() const override { return inner_->name(); }

 private:
  std::unique_ptr<freshframe::infer::Detector> inner_;
  uint64_t* calls_;
};

// MakeDetector(spec), except that the inner detector of motion+X is wrapped
// in a CountingDetector (the composition is MakeDetector's own:
// MakeMotionGatedDetector over MakeDetector(X)).
freshframe::Expected<std::unique_ptr<freshframe::infer::Detector>> MakeCounted(
    const DetectorEntry& entry, uint64_t* inner_calls) {
  constexpr std::string_view kMotionPlus = "motion+";
  auto made = freshframe::infer::MakeDetector(entry.spec, entry.options);
  if (!made || !entry.spec.starts_with(kMotionPlus)) return made;
  auto inner = freshframe::infer::MakeDetector(
      std::string_view(entry.spec).substr(kMotionPlus.size()), entry.options);
  if (!inner) return inner.error();
  return freshframe::infer::MakeMotionGatedDetector(
      std::make_unique<CountingDetector>(std::move(inner).value(), inner_calls), entry.options);
}

// The smallest stride >= frames / 8 coprime to `frames`.
size_t SpreadStride(size_t frames) {
  if (frames <= 2) return 1;
  for (size_t s = std::max<size_t>(2, frames / 8);; ++s) {
    if (std::gcd(s, frames) == 1) return s;
  }
}

Row Measure(const DetectorEntry& entry, Recording& rec, double seconds, size_t min_frames,
            size_t max_frames) {
  Row row;
  row.detector = entry.display;
  row.scene = rec.scene.name;
  row.size = rec.size.text;
  uint64_t inner_calls = 0;
  auto made = MakeCounted(entry, &inner_calls);
  if (!made) {
    row.error = made.error().message;
    return row;
  }
  std::unique_ptr<freshframe::infer::Detector> detector = std::move(made).value();
  if (!detector) {
    row.has_detector = false;  // "none": no detection stage at all
    return row;
  }
  const size_t n = rec.frames.size();
  if (n == 0) {
    row.error = "no frames";
    return row;
  }
  // Detectors with state must see frames in capture order.
  row.ordered = entry.spec.starts_with("motion");
  const size_t stride = row.ordered ? 1 : SpreadStride(n);
  size_t at = 0;
  // The strip carries a 30 fps capture clock, not the time of the call: the
  // motion detector learns by capture time, as it does on a live stream.
  int64_t capture_us = MonotonicMicros() - 9 * 60 * 1'000'000LL;
  const auto run_one = [&](bool timed) {
    cv::Mat& frame = rec.frames[at];
    capture_us += 1'000'000 / 30;
    freshframe::timecode::Write(frame, std::min(capture_us, MonotonicMicros()));
    at = (at + stride) % n;
    const auto t0 = Clock::now();
    const auto found = detector->Detect(frame);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (timed) {
      row.ms.push_back(ms);
      row.detections_per_frame += static_cast<double>(found.size());
    }
  };
  row.warmup =
      row.ordered ? static_cast<uint64_t>(std::max(0, entry.options.warmup_frames) + 5) : 3;
  for (uint64_t i = 0; i < row.warmup; ++i) run_one(false);
  const DetectorActivity before = detector->activity();
  const uint64_t calls_before = inner_calls;
  // A gated detector on a scene that is still part of the time: one whole
  // cycle at least, so the share of model runs is the cycle's.
  if (row.ordered && rec.scene.motion < 1.0) min_frames = std::max(min_frames, n);
  const auto start = Clock::now();
  while (row.ms.size() < max_frames) {
    run_one(true);
    row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (row.ms.size() >= min_frames && row.seconds >= seconds) break;
  }
  const DetectorActivity after = detector->activity();
  row.detections_per_frame /= static_cast<double>(row.ms.size());
  if (after.frames > before.frames) {
    row.model_runs = after.model_runs - before.model_runs;
    row.inner_calls = inner_calls - calls_before;
    row.model_run_share =
        static_cast<double>(row.model_runs) / static_cast<double>(after.frames - before.frames);
  }
  return row;
}

double Mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

void PrintHeader() {
  std::printf(
      "| detector | scene | size | frames | ms p50 | ms mean | ms p99 | ms max | model ran %% | "
      "runs/model run | dets/frame |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

void PrintRow(const Row& row) {
  if (!row.error.empty()) {
    std::printf("| %s | %s | %s | ERROR: %s |\n", row.detector.c_str(), row.scene.c_str(),
                row.size.c_str(), row.error.c_str());
  } else if (!row.has_detector) {
    std::printf("| %s | %s | %s | - | 0 | 0 | 0 | 0 | - | - | - |\n", row.detector.c_str(),
                row.scene.c_str(), row.size.c_str());
  } else {
    char share[32] = "-";
    char per_run[32] = "-";
    if (row.model_run_share) {
      std::snprintf(share, sizeof share, "%.1f", *row.model_run_share * 100);
      if (row.model_runs > 0) {
        std::snprintf(per_run, sizeof per_run, "%.2f",
                      static_cast<double>(row.inner_calls) / static_cast<double>(row.model_runs));
      }
    }
    std::printf("| %s | %s | %s | %zu | %.2f | %.2f | %.2f | %.2f | %s | %s | %.2f |\n",
                row.detector.c_str(), row.scene.c_str(), row.size.c_str(), row.ms.size(),
                Percentile(row.ms, 50), Mean(row.ms), Percentile(row.ms, 99),
                Percentile(row.ms, 100), share, per_run, row.detections_per_frame);
  }
  std::fflush(stdout);
}

nlohmann::json RowJson(const Row& row) {
  nlohmann::json out = {{"detector", row.detector},
                        {"scene", row.scene},
                        {"size", row.size},
                        {"has_detector", row.has_detector}};
  if (!row.error.empty()) {
    out["error"] = row.error;
    return out;
  }
  if (!row.has_detector) return out;
  out["order"] = row.ordered ? "capture order" : "spread (stride)";
  out["warmup_frames"] = row.warmup;
  out["frames"] = row.ms.size();
  out["seconds"] = Round3(row.seconds);
  out["ms"] = {{"p50", Round3(Percentile(row.ms, 50))},
               {"mean", Round3(Mean(row.ms))},
               {"p90", Round3(Percentile(row.ms, 90))},
               {"p99", Round3(Percentile(row.ms, 99))},
               {"max", Round3(Percentile(row.ms, 100))}};
  out["detections_per_frame"] = Round3(row.detections_per_frame);
  if (row.model_run_share) {
    out["model_run_share"] = Round3(*row.model_run_share);
    out["model_runs"] = row.model_runs;
    out["inner_runs"] = row.inner_calls;
    out["inner_runs_per_model_run"] =
        row.model_runs > 0
            ? Round3(static_cast<double>(row.inner_calls) / static_cast<double>(row.model_runs))
            : 0.0;
  } else {
    out["model_run_share"] = nullptr;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "detectors_bench: ms per frame of each --detector on pre-rendered test-pattern frames, "
      "moving and mostly-still scenes (see bench/detectors/README.md)"};
  std::vector<std::string> detector_texts = {
      "none",   "faces",       "cascade:upperbody", "cascade:lbpcascade_frontalface",
      "motion", "motion+faces"};
  std::string sizes_text = "640x480,1280x720";
  std::string scenes_text = "moving,still";
  std::string stateless_scenes_text;
  double still_motion = 0.1;
  double fps = 30;
  double cycle_seconds = 10;
  double seconds = 2.5;
  size_t min_frames = 10;
  size_t max_frames = 100000;
  int threads = 1;
  std::string json_path;
  std::string dump_dir;
  DetectorOptions base;
  app.add_option("--detector", detector_texts,
                 "Detector spec as for freshframe --detector, repeatable; append ';key=value' "
                 "for options of this entry only: input=N|WxH, labels=FILE, conf=F, nms=F, "
                 "min-area=N, name=TEXT (default: none, faces, cascade:upperbody, "
                 "cascade:lbpcascade_frontalface, motion, motion+faces)");
  app.add_option("--sizes", sizes_text, "Frame sizes, comma-separated")->capture_default_str();
  app.add_option("--scenes", scenes_text,
                 "moving (the scene always moves) and/or still (moves --still-motion of each "
                 "10 s cycle)")
      ->capture_default_str();
  app.add_option("--stateless-scenes", stateless_scenes_text,
                 "Scenes for detectors without state (not motion*), if fewer than --scenes: "
                 "their cost hardly depends on whether the scene moves (default: --scenes)");
  app.add_option("--still-motion", still_motion, "Share of the cycle the 'still' scene moves")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--fps", fps, "Pattern frame rate")
      ->check(CLI::Range(1.0, 240.0))
      ->capture_default_str();
  app.add_option("--record-seconds", cycle_seconds,
                 "Seconds of pattern recorded per scene and size (the pattern's cycle is 10 s; "
                 "rendering is paced, so this is also how long it takes)")
      ->check(CLI::Range(0.5, 60.0))
      ->capture_default_str();
  app.add_option("--seconds", seconds, "Minimum measured seconds per row")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--min-frames", min_frames, "Minimum measured frames per row")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--max-frames", max_frames, "Maximum measured frames per row")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--threads", threads, "cv::setNumThreads (freshframe --detector-threads)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--labels", base.labels_path, "dnn: class names (default for every entry)");
  app.add_option("--conf", base.confidence, "dnn: minimum confidence")->capture_default_str();
  app.add_option("--nms", base.nms, "dnn: NMS IoU threshold")->capture_default_str();
  app.add_option("--min-area", base.min_area, "motion: smallest region, px^2")
      ->capture_default_str();
  app.add_option("--json", json_path, "Also write all rows as JSON to FILE");
  app.add_option(
      "--dump-frames", dump_dir,
      "Write the first frame of each recording to DIR/WxH_SCENE.ppm (make_bench_model.py "
      "--calibrate reads them)");
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::warn);
  cv::setNumThreads(threads);

  std::vector<DetectorEntry> entries;
  for (const std::string& text : detector_texts) {
    std::string error;
    auto entry = ParseEntry(text, base, error);
    if (!entry) {
      std::fprintf(stderr, "detectors_bench: %s\n", error.c_str());
      return 2;
    }
    entries.push_back(std::move(*entry));
  }
  std::vector<Size> sizes;
  for (const std::string& text : Split(sizes_text, ',')) {
    Size size{0, 0, text};
    if (std::sscanf(text.c_str(), "%dx%d", &size.width, &size.height) != 2 || size.width < 16 ||
        size.height < 16) {
      std::fprintf(stderr, "detectors_bench: bad size '%s' (WxH)\n", text.c_str());
      return 2;
    }
    sizes.push_back(size);
  }
  std::vector<Scene> scenes;
  for (const std::string& name : Split(scenes_text, ',')) {
    if (name == "moving") {
      scenes.push_back({name, 1.0});
    } else if (name == "still") {
      scenes.push_back({name, still_motion});
    } else {
      std::fprintf(stderr, "detectors_bench: unknown scene '%s' (moving, still)\n", name.c_str());
      return 2;
    }
  }
  // Every detector must load before ten seconds go into rendering.
  for (const DetectorEntry& entry : entries) {
    auto made = freshframe::infer::MakeDetector(entry.spec, entry.options);
    if (!made) {
      std::fprintf(stderr, "detectors_bench: --detector %s: %s\n", entry.spec.c_str(),
                   made.error().message.c_str());
      return 1;
    }
  }

  const int count = std::max(1, static_cast<int>(std::lround(cycle_seconds * fps)));
  std::fprintf(stderr,
               "detectors_bench: rendering %d frames (%.1f s at %g fps) for each of %zu "
               "size x scene pairs, in parallel...\n",
               count, count / fps, fps, sizes.size() * scenes.size());
  std::vector<Recording> recordings(sizes.size() * scenes.size());
  {
    std::vector<std::jthread> renderers;
    for (size_t i = 0; i < sizes.size(); ++i) {
      for (size_t j = 0; j < scenes.size(); ++j) {
        renderers.emplace_back([&, i, j] {
          recordings[i * scenes.size() + j] = Render(sizes[i], scenes[j], fps, count);
        });
      }
    }
  }
  for (const Recording& rec : recordings) {
    if (rec.skipped > 0) {
      std::fprintf(stderr,
                   "detectors_bench: warning: %s %s: the pattern skipped %llu frame deadlines "
                   "while rendering (machine busy); the recording jumps there\n",
                   rec.size.text.c_str(), rec.scene.name.c_str(),
                   static_cast<unsigned long long>(rec.skipped));
    }
  }

  if (!dump_dir.empty()) {
    for (const Recording& rec : recordings) {
      if (rec.frames.empty()) continue;
      const std::string path = dump_dir + "/" + rec.size.text + "_" + rec.scene.name + ".ppm";
      bool ok = false;
      try {
        ok = cv::imwrite(path, rec.frames.front());
      } catch (const cv::Exception&) {
      }
      if (!ok) {
        std::fprintf(stderr, "detectors_bench: cannot write %s\n", path.c_str());
        return 1;
      }
    }
  }

  std::printf(
      "detectors_bench: OpenCV %s, cv::setNumThreads(%d), %d frames per recording "
      "at %g fps; 'still' moves %.0f%% of each 10 s cycle\n\n",
      CV_VERSION, threads, count, fps, still_motion * 100);
  PrintHeader();
  std::vector<Row> rows;
  for (Recording& rec : recordings) {
    for (const DetectorEntry& entry : entries) {
      const std::vector<std::string> only = Split(stateless_scenes_text, ',');
      if (!entry.spec.starts_with("motion") && !only.empty() &&
          std::find(only.begin(), only.end(), rec.scene.name) == only.end()) {
        continue;
      }
      rows.push_back(Measure(entry, rec, seconds, min_frames, max_frames));
      PrintRow(rows.back());
    }
  }

  if (!json_path.empty()) {
    nlohmann::json out;
    out["opencv"] = CV_VERSION;
    out["threads"] = threads;
    out["fps"] = fps;
    out["frames_per_recording"] = count;
    out["still_motion"] = still_motion;
    out["min_seconds"] = seconds;
    out["min_frames"] = min_frames;
    nlohmann::json recs = nlohmann::json::array();
    for (const Recording& rec : recordings) {
      recs.push_back({{"size", rec.size.text},
                      {"scene", rec.scene.name},
                      {"motion", rec.scene.motion},
                      {"frames", rec.frames.size()},
                      {"skipped", rec.skipped},
                      {"render_seconds", Round3(rec.seconds)}});
    }
    out["recordings"] = recs;
    nlohmann::json list = nlohmann::json::array();
    for (const Row& row : rows) list.push_back(RowJson(row));
    out["rows"] = list;
    std::ofstream file(json_path);
    file << out.dump(2) << "\n";
    if (!file) {
      std::fprintf(stderr, "detectors_bench: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  bool failed = false;
  for (const Row& row : rows) failed = failed || !row.error.empty();
  return failed ? 1 : 0;
}
