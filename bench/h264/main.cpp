// h264_bench: what one H.264 encode per frame costs on this machine, next to
// the JPEG encode it would sit beside: ms per frame (this thread's CPU time
// and wall time) and kbit/s at 30 fps, for libx264's presets (as H264Encoder
// sets them up: zerolatency, no B-frames, main profile, crf 23 + VBV cap,
// one thread, strip protected, an IDR every 2 s) and TurboJPEG q85
// (encode::JpegEncoder), on the same frames of the moving test pattern with
// its timecode strip. Used to choose the default preset (docs/architecture.md,
// "H.264 encoder"). Run: make bench-h264 [H264_BENCH_ARGS="--frames 300"].
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <stop_token>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "capture/capture.h"
#include "core/clock.h"
#include "encode/encode.h"
#include "h264/h264.h"

namespace {

using freshframe::MonotonicMicros;

int64_t ThreadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
}

struct Row {
  std::string name;
  std::vector<double> cpu_ms;
  std::vector<double> wall_ms;
  size_t bytes = 0;
  std::string error;
};

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double Mean(const std::vector<double>& values) {
  double sum = 0;
  for (const double value : values) sum += value;
  return values.empty() ? 0 : sum / static_cast<double>(values.size());
}

// Times `encode(frame, index)` (which returns the bytes made) per frame.
template <typename Encode>
Row Measure(std::string name, const std::vector<cv::Mat>& frames, Encode encode) {
  Row row;
  row.name = std::move(name);
  for (size_t i = 0; i < frames.size(); ++i) {
    const int64_t cpu = ThreadCpuMicros();
    const int64_t wall = MonotonicMicros();
    const long made = encode(frames[i], i);
    const int64_t wall_end = MonotonicMicros();
    const int64_t cpu_end = ThreadCpuMicros();
    if (made < 0) {
      row.error = "encode failed";
      return row;
    }
    row.bytes += static_cast<size_t>(made);
    row.cpu_ms.push_back(static_cast<double>(cpu_end - cpu) / 1000.0);
    row.wall_ms.push_back(static_cast<double>(wall_end - wall) / 1000.0);
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"h264_bench: H.264 (libx264 presets) vs TurboJPEG q85, ms/frame and kbit/s"};
  int frames_per_size = 180;
  std::vector<std::string> sizes = {"640x480", "1280x720"};
  std::vector<std::string> presets = {"ultrafast", "superfast", "veryfast"};
  int bitrate_kbps = 0;
  int threads = 1;
  app.add_option("--frames", frames_per_size, "frames per size (the pattern at 30 fps)");
  app.add_option("--sizes", sizes, "frame sizes")->delimiter(',');
  app.add_option("--presets", presets, "libx264 presets")->delimiter(',');
  app.add_option("--bitrate", bitrate_kbps, "kbit/s (0: crf 23 with the VBV cap, the default)");
  app.add_option("--threads", threads, "encoder threads (slice threads)");
  CLI11_PARSE(app, argc, argv);

  std::printf(
      "h264_bench: %d frames per size of the moving pattern with its strip, 30 fps "
      "assumed for kbit/s; ms are this thread's CPU time and wall time per frame\n\n",
      frames_per_size);
  std::printf(
      "| size | encoder | cpu ms p50 | cpu ms mean | wall ms p50 | kbit/s | KB/frame | "
      "cpu x JPEG | bytes / JPEG's |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  int status = 0;
  for (const std::string& size : sizes) {
    auto spec = freshframe::capture::ParsePatternSpec("pattern:" + size + "@240");
    if (!spec) {
      std::fprintf(stderr, "bad size %s: %s\n", size.c_str(), spec.error().message.c_str());
      return 2;
    }
    // Fast to make (the pattern paces itself at 240 fps); its motion is per
    // frame (a 4-pixel scroll), so each frame differs from the last as at 30.
    auto source = freshframe::capture::MakePatternSource(*spec);
    std::stop_source stop;
    std::vector<cv::Mat> frames;
    for (int i = 0; i < frames_per_size; ++i) {
      auto read = source->Read(stop.get_token());
      if (!read.frame) break;
      frames.push_back(read.frame->image);
    }
    const double seconds = static_cast<double>(frames.size()) / 30.0;

    std::vector<Row> rows;
    freshframe::encode::JpegEncoder jpeg(85);
    rows.push_back(Measure("TurboJPEG q85", frames, [&](const cv::Mat& frame, size_t) -> long {
      auto bytes = jpeg.Encode(frame);
      return bytes ? static_cast<long>(bytes->size()) : -1;
    }));
    for (const std::string& preset : presets) {
      freshframe::h264::EncoderOptions options;
      options.preset = preset;
      options.bitrate_kbps = bitrate_kbps;
      options.threads = threads;
      auto encoder = freshframe::h264::H264Encoder::Create(options, spec->width, spec->height, 30);
      if (!encoder) {
        Row failed;
        failed.name = "x264 " + preset;
        failed.error = encoder.error().message;
        rows.push_back(failed);
        continue;
      }
      rows.push_back(
          Measure("x264 " + preset, frames, [&](const cv::Mat& frame, size_t index) -> long {
            // An IDR every 2 s, as the stage's default gop.
            auto unit = (*encoder)->Encode(frame, index % 60 == 0);
            return unit ? static_cast<long>(unit->bytes.size()) : -1;
          }));
    }
    const Row& reference = rows.front();
    for (const Row& row : rows) {
      if (!row.error.empty()) {
        std::printf("| %s | %s | %s |\n", size.c_str(), row.name.c_str(), row.error.c_str());
        status = 1;
        continue;
      }
      const double kbps = static_cast<double>(row.bytes) * 8 / 1000 / seconds;
      std::printf("| %s | %s | %.2f | %.2f | %.2f | %.0f | %.1f | %.1f | %.3f |\n", size.c_str(),
                  row.name.c_str(), Median(row.cpu_ms), Mean(row.cpu_ms), Median(row.wall_ms), kbps,
                  static_cast<double>(row.bytes) / 1024.0 / static_cast<double>(frames.size()),
                  Mean(row.cpu_ms) / std::max(1e-9, Mean(reference.cpu_ms)),
                  static_cast<double>(row.bytes) / static_cast<double>(reference.bytes));
      std::fflush(stdout);
    }
  }
  return status;
}
