// sources_bench: frame age at the detector (now - capture stamp, as the
// detector starts on a frame) on an emulated camera with a driver buffer
// queue (bufcam), for the guide's read-one-frame-per-loop consumer, its
// "drain until read() fails" fix, a time-bounded drain, and freshframe's
// grabber + latest-value slot. Usage and output: bench/sources/README.md;
// the explanation: docs/capture-latency.md.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <sstream>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <opencv2/core/utility.hpp>

#include "capture/buffered_camera.h"
#include "infer/infer.h"

namespace {

using freshframe::capture::BufferedCameraSource;
using freshframe::capture::BufferedCameraSpec;
using freshframe::capture::ConsumerMode;
using freshframe::capture::ConsumerModeName;
using freshframe::capture::ConsumerOptions;
using freshframe::capture::ConsumerRun;
using freshframe::capture::NearestRankPercentile;

constexpr ConsumerMode kAllModes[] = {ConsumerMode::kNaive, ConsumerMode::kGuideDrain,
                                      ConsumerMode::kTimedDrain, ConsumerMode::kGrabber};

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

void PrintRow(const ConsumerRun& run, int buffers) {
  const std::string mode(ConsumerModeName(run.mode));
  const double drop_percent = run.captured == 0 ? 0
                                                : 100.0 * static_cast<double>(run.dropped) /
                                                      static_cast<double>(run.captured);
  if (!run.returned || run.age_ms.empty()) {
    std::printf("| %-11s | %7d | %6llu | %s |\n", mode.c_str(), buffers,
                static_cast<unsigned long long>(run.frames_processed),
                run.note.empty() ? "no frames" : run.note.c_str());
  } else {
    std::printf("| %-11s | %7d | %6llu | %10.1f | %6.1f | %6.1f | %11.1f | %7.0f%% |\n",
                mode.c_str(), buffers, static_cast<unsigned long long>(run.frames_processed),
                NearestRankPercentile(run.age_ms, 50), NearestRankPercentile(run.age_ms, 99),
                NearestRankPercentile(run.age_ms, 100), NearestRankPercentile(run.fetch_ms, 50),
                drop_percent);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sources_bench: frame age at the detector on an emulated buffered camera (bufcam), naive "
      "read-per-loop vs the guide's drains vs freshframe's grabber (see bench/sources/README.md)"};
  double seconds = 60;
  int detector_ms = 150;
  std::string size = "640x480";
  double fps = 30;
  std::string buffers_list = "4,1";
  std::string modes_list = "naive,guide-drain,timed-drain,grabber";
  double drain_seconds = 5;
  std::string detector = "sleep";
  app.add_option("--seconds", seconds, "seconds per mode and buffer count")
      ->check(CLI::Range(0.5, 3600.0))
      ->capture_default_str();
  app.add_option("--detector-ms", detector_ms, "the sleep detector's time per frame, ms")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--detector", detector,
                 "sleep (deterministic) or haar (real face detection, its own duration)")
      ->check(CLI::IsMember({"sleep", "haar"}))
      ->capture_default_str();
  app.add_option("--size", size, "camera frame size WxH")->capture_default_str();
  app.add_option("--fps", fps, "camera frame rate")
      ->check(CLI::Range(1.0, 240.0))
      ->capture_default_str();
  app.add_option("--buffers", buffers_list, "driver buffer counts to run, comma-separated")
      ->capture_default_str();
  app.add_option("--modes", modes_list, "modes to run, comma-separated")->capture_default_str();
  app.add_option("--drain-seconds", drain_seconds,
                 "guide-drain: give up on read_latest_frame() after this long")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<ConsumerMode> modes;
  for (const std::string& name : Split(modes_list)) {
    bool known = false;
    for (const ConsumerMode mode : kAllModes) {
      if (name == ConsumerModeName(mode)) {
        modes.push_back(mode);
        known = true;
      }
    }
    if (!known) {
      std::fprintf(stderr, "unknown mode '%s' (naive, guide-drain, timed-drain, grabber)\n",
                   name.c_str());
      return 2;
    }
  }
  std::vector<BufferedCameraSpec> specs;
  for (const std::string& n : Split(buffers_list)) {
    auto spec = freshframe::capture::ParseBufferedCameraSpec("bufcam:" + size + "@" +
                                                             std::to_string(fps) + "/" + n);
    if (!spec) {
      std::fprintf(stderr, "%s\n", spec.error().message.c_str());
      return 2;
    }
    specs.push_back(*spec);
  }
  if (modes.empty() || specs.empty()) {
    std::fprintf(stderr, "nothing to run\n");
    return 2;
  }

  ConsumerOptions options;
  options.duration = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  options.work = std::chrono::milliseconds(detector_ms);
  options.drain_limit = std::chrono::milliseconds(static_cast<int64_t>(drain_seconds * 1000));
  std::unique_ptr<freshframe::infer::Detector> haar;
  if (detector == "haar") {
    // One OpenCV thread: the other core stays free for the camera and the
    // grabber, as freshframe bounds its detector's share.
    cv::setNumThreads(1);
    auto made = freshframe::infer::MakeHaarFaceDetector({});
    if (!made) {
      std::fprintf(stderr, "%s\n", made.error().message.c_str());
      return 1;
    }
    haar = std::move(made).value();
    options.process = [&haar](const freshframe::Frame& frame) { haar->Detect(frame.image); };
  }

  // Ctrl-C / SIGTERM stop the run in progress cleanly (threads joined).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);  // only to wake the waiter at the end
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::stop_source interrupted;
  std::jthread signal_waiter([&signals, &interrupted](std::stop_token) {
    int received = 0;
    if (sigwait(&signals, &received) == 0 && received != SIGUSR1) interrupted.request_stop();
  });

  std::printf("# bufcam:%s@%g/N, detector: %s, %g s per run\n", size.c_str(), fps,
              detector == "haar" ? "haar (real detection)"
                                 : ("sleep " + std::to_string(detector_ms) + " ms").c_str(),
              seconds);
  std::printf(
      "| mode        | buffers | frames | age p50 ms | p99 ms | max ms | wait p50 ms | dropped |\n"
      "| ----------- | ------: | -----: | ---------: | -----: | -----: | ----------: | ------: "
      "|\n");
  std::fflush(stdout);
  int status = 0;
  for (const BufferedCameraSpec& spec : specs) {
    for (const ConsumerMode mode : modes) {
      if (interrupted.stop_requested()) break;
      std::fprintf(stderr, "running %s on bufcam/%d ...\n", ConsumerModeName(mode).data(),
                   spec.buffers);
      auto run = freshframe::capture::RunConsumer(std::make_unique<BufferedCameraSource>(spec),
                                                  mode, options, interrupted.get_token());
      if (!run) {
        std::fprintf(stderr, "%s: %s\n", ConsumerModeName(mode).data(),
                     run.error().message.c_str());
        status = 1;
        continue;
      }
      PrintRow(*run, spec.buffers);
    }
  }
  // Wake the signal thread so it can be joined.
  if (!interrupted.stop_requested()) pthread_kill(signal_waiter.native_handle(), SIGUSR1);
  return interrupted.stop_requested() ? 130 : status;
}
