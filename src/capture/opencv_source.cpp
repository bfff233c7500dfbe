// Cameras (V4L2), video files and network streams (FFmpeg) and GStreamer
// pipelines, all read through cv::VideoCapture.
//
// One class serves the four kinds; they differ in how they are opened and
// in pacing. Live sources (cameras, streams, pipelines) deliver frames when
// the device or the network does: Read() blocks in VideoCapture::read() and
// the grabber drains them continuously, which is what keeps frames fresh.
// Files are not live: they are played at their own frame rate on absolute
// deadlines (like the pattern source), never as fast as they decode.
//
// Nothing here throws: OpenCV exceptions become an Error from Open() or a
// failed ReadResult, with a message that names the backend and the path.
//
// Thread-safety: as every FrameSource, used by one thread at a time; only
// width(), height() and fps() may be called from others (they are atomics).
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

#include "capture/capture.h"
#include "core/clock.h"
#include "core/stage_thread.h"
#include "httpclient/redact.h"

namespace freshframe::capture {
namespace {

using Clock = std::chrono::steady_clock;

// A file that does not state its frame rate is played at this one.
constexpr double kDefaultFileFps = 25.0;
// A file frame later than this moves the schedule (see ReadFile).
constexpr std::chrono::milliseconds kMaxFileLag{250};
// Frame rates outside (0, kMaxFps] are treated as unknown: FFmpeg reports
// time bases such as 90000 for some RTSP streams.
constexpr double kMaxFps = 1000.0;

// FFmpeg network streams: how long opening may take, and how long a stream
// may stay silent before Read() reports an error (the grabber then shows
// "no signal" and reconnects). OpenCV's defaults are 30 s each, long enough
// for a dead stream to look like a frozen picture.
constexpr int kNetworkOpenTimeoutMs = 10'000;
constexpr int kNetworkReadTimeoutMs = 5'000;

// V4L2 driver buffers. Not 1: OpenCV keeps the buffer it dequeued while it
// converts it (an MJPEG decode can take most of a frame interval), and with
// a single buffer the driver drops every frame that starts arriving in that
// window, halving the frame rate of many UVC cameras. Freshness comes from
// the grabber draining continuously: with two buffers the driver fills one
// while we convert the other, and the one we dequeue next is never more than
// a frame old unless the grabber itself falls behind.
constexpr int kCameraBuffers = 2;

// A V4L2 buffer timestamp this close to "now" is taken as the capture time
// (CLOCK_MONOTONIC for UVC and most drivers); anything else is ignored.
constexpr int64_t kMaxDriverStampAgeUs = 1'000'000;

constexpr const char* kFfmpegOptionsVariable = "OPENCV_FFMPEG_CAPTURE_OPTIONS";

std::string ErrnoText(int error) {
  switch (error) {
    case ENOENT:
      return "no such file";
    case EACCES:
      return "permission denied";
    default:
      return std::strerror(error);
  }
}

// Why a file cannot be read, checked before OpenCV tries (whose failure
// says nothing useful), or nullopt.
std::optional<std::string> FileProblem(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return ErrnoText(errno);
  if (S_ISDIR(info.st_mode)) return "it is a directory";
  if (::access(path.c_str(), R_OK) != 0) return ErrnoText(errno);
  if (S_ISREG(info.st_mode) && info.st_size == 0) return "the file is empty";
  return std::nullopt;
}

// The same for a V4L2 device node, which must be readable and writable.
std::optional<std::string> DeviceProblem(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return errno == ENOENT ? std::string("no such device") : ErrnoText(errno);
  }
  if (!S_ISCHR(info.st_mode)) return "not a video device";
  if (::access(path.c_str(), R_OK | W_OK) != 0) {
    return errno == EACCES ? std::string("permission denied (is the user in the 'video' group?)")
                           : ErrnoText(errno);
  }
  return std::nullopt;
}

bool AllDigits(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

std::string SchemeOf(const std::string& url) {
  const auto end = url.find("://");
  return end == std::string::npos ? std::string() : url.substr(0, end);
}

// The FFmpeg options OpenCV passes to avformat_open_input, as OpenCV 4.6
// reads them from OPENCV_FFMPEG_CAPTURE_OPTIONS: "key;value" pairs joined by
// '|'. Only demuxer and protocol options take effect there: OpenCV opens the
// decoder without options, so the common "flags;low_delay" recipe does
// nothing and is left out. docs/sources.md explains each choice.
std::string FfmpegCaptureOptions(const std::string& url, const std::string& rtsp_transport) {
  // Discard the packets read while probing instead of replaying them: the
  // first frame shown is the newest one, not one from the probe window.
  std::string options = "fflags;nobuffer";
  // No demuxer-side waiting for late packets.
  options += "|max_delay;0";
  const std::string scheme = SchemeOf(url);
  if (scheme == "rtsp" || scheme == "rtsps") {
    options += "|rtsp_transport;" + rtsp_transport;
    // Over UDP, do not hold packets back to reorder them (over TCP there is
    // nothing to reorder).
    options += "|reorder_queue_size;0";
    // The SDP already describes the codec: probe little and briefly, so a
    // (re)connection starts streaming quickly.
    options += "|probesize;32768|analyzeduration;500000";
  } else {
    // Elsewhere the codec is found in the stream itself: probe briefly, but
    // enough bytes for a keyframe with its parameter sets.
    options += "|probesize;1000000|analyzeduration;1000000";
  }
  return options;
}

// Sets OPENCV_FFMPEG_CAPTURE_OPTIONS, which OpenCV reads during
// VideoCapture::open, for the duration of one open, unless the user has set
// it (their options then win). It is removed again afterwards, so that a file
// opened later in the same process does not inherit network options. The
// mutex keeps sources of one process from seeing each other's setting.
class FfmpegOptionsScope {
 public:
  explicit FfmpegOptionsScope(const std::string& options) : lock_(Mutex()) {
    if (const char* user = std::getenv(kFfmpegOptionsVariable)) {
      user_options_ = user;
      return;
    }
    set_ = ::setenv(kFfmpegOptionsVariable, options.c_str(), 1) == 0;
  }
  ~FfmpegOptionsScope() {
    if (set_) ::unsetenv(kFfmpegOptionsVariable);
  }
  FfmpegOptionsScope(const FfmpegOptionsScope&) = delete;
  FfmpegOptionsScope& operator=(const FfmpegOptionsScope&) = delete;

  // The user's own options, if they set the variable.
  const std::optional<std::string>& user_options() const { return user_options_; }

 private:
  static std::mutex& Mutex() {
    static std::mutex mutex;
    return mutex;
  }
  std::lock_guard<std::mutex> lock_;
  std::optional<std::string> user_options_;
  bool set_ = false;
};

double SaneFps(double fps) { return std::isfinite(fps) && fps > 0 && fps <= kMaxFps ? fps : 0; }

std::string FourccText(double value) {
  const auto code = static_cast<uint32_t>(static_cast<int64_t>(value));
  std::string text;
  for (int shift = 0; shift < 32; shift += 8) {
    const char c = static_cast<char>((code >> shift) & 0xFFu);
    text += (c >= 32 && c < 127) ? c : '?';
  }
  return text;
}

// Frames leave here as 8-bit BGR whatever the backend produced.
std::optional<cv::Mat> ToBgr24(const cv::Mat& image) {
  if (image.empty()) return std::nullopt;
  cv::Mat eight_bit = image;
  if (image.depth() == CV_16U) {
    image.convertTo(eight_bit, CV_8U, 1.0 / 256.0);
  } else if (image.depth() != CV_8U) {
    return std::nullopt;
  }
  cv::Mat bgr;
  switch (eight_bit.channels()) {
    case 3:
      return eight_bit;
    case 1:
      cv::cvtColor(eight_bit, bgr, cv::COLOR_GRAY2BGR);
      return bgr;
    case 4:
      cv::cvtColor(eight_bit, bgr, cv::COLOR_BGRA2BGR);
      return bgr;
    default:
      return std::nullopt;
  }
}

std::string OpenCvReason(const cv::Exception& e) {
  return "OpenCV error: " + (e.err.empty() ? std::string(e.what()) : e.err);
}

class OpenCvSource final : public FrameSource {
 public:
  OpenCvSource(SourceSpec spec, SourceOptions options)
      : spec_(std::move(spec)), options_(std::move(options)) {
    if (spec_.kind == SourceKind::kCamera) {
      device_ = AllDigits(spec_.location) ? "/dev/video" + spec_.location : spec_.location;
    }
  }

  ~OpenCvSource() override { Close(); }

  Expected<bool> Open() override {
    Close();
    sequence_ = 0;
    index_ = 0;
    frames_in_pass_ = 0;
    try {
      switch (spec_.kind) {
        case SourceKind::kCamera:
          return OpenCamera();
        case SourceKind::kFile:
          return OpenFile();
        case SourceKind::kNetwork:
          return OpenNetwork();
        case SourceKind::kGStreamer:
          return OpenGStreamer();
        default:
          break;
      }
      return Error{"cannot open " + Describe() + ": not a source OpenCV reads"};
    } catch (const cv::Exception& e) {
      Close();
      return Error{"cannot open " + Describe() + " with " + BackendName() + ": " + OpenCvReason(e)};
    } catch (const std::exception& e) {
      Close();
      return Error{"cannot open " + Describe() + " with " + BackendName() + ": " + e.what()};
    }
  }

  ReadResult Read(std::stop_token stop) override {
    if (stop.stop_requested()) return ReadResult::Stopped();
    if (!capture_.isOpened()) return ReadResult::Failed(Describe() + " is not open");
    try {
      return spec_.kind == SourceKind::kFile ? ReadFile(stop) : ReadLive(stop);
    } catch (const cv::Exception& e) {
      return ReadResult::Failed("reading " + Describe() + ": " + OpenCvReason(e));
    } catch (const std::exception& e) {
      return ReadResult::Failed("reading " + Describe() + ": " + e.what());
    }
  }

  void Close() override {
    try {
      capture_.release();
    } catch (const cv::Exception& e) {
      spdlog::warn("closing {}: {}", Describe(), OpenCvReason(e));
    }
  }

  std::string Describe() const override {
    switch (spec_.kind) {
      case SourceKind::kCamera:
        return "camera:" + device_;
      case SourceKind::kFile:
        return "file:" + spec_.location;
      case SourceKind::kGStreamer:
        return httpclient::RedactUrl("gst:" + spec_.location);
      default:
        return httpclient::RedactUrl(spec_.location);
    }
  }

  // Read by the grabber's Status() on other threads while Open() may be
  // running on the grabber's: hence atomics.
  int width() const override { return width_.load(); }
  int height() const override { return height_.load(); }
  double fps() const override { return fps_.load(); }

  // A file without --loop ends; everything else is reopened when it stops.
  bool reconnects() const override { return spec_.kind != SourceKind::kFile || options_.loop; }

 private:
  std::string BackendName() const {
    switch (spec_.kind) {
      case SourceKind::kCamera:
        return "OpenCV's V4L2 backend";
      case SourceKind::kGStreamer:
        return "OpenCV's GStreamer backend";
      default:
        return "OpenCV's FFmpeg backend";
    }
  }

  // Records what the opened capture reports.
  void TakeGeometry() {
    width_ = static_cast<int>(capture_.get(cv::CAP_PROP_FRAME_WIDTH));
    height_ = static_cast<int>(capture_.get(cv::CAP_PROP_FRAME_HEIGHT));
    fps_ = SaneFps(capture_.get(cv::CAP_PROP_FPS));
  }

  Expected<bool> OpenCamera() {
    if (auto problem = DeviceProblem(device_)) {
      return Error{"cannot open camera " + device_ + ": " + *problem};
    }
    const bool by_index = AllDigits(spec_.location);
    const bool opened = by_index ? capture_.open(std::stoi(spec_.location), cv::CAP_V4L2)
                                 : capture_.open(device_, cv::CAP_V4L2);
    if (!opened || !capture_.isOpened()) {
      Close();
      return Error{"cannot open camera " + device_ + " with " + BackendName() +
                   ": the device exists but is not a capture device, is busy, or does not "
                   "support V4L2 streaming (see OpenCV's messages above)"};
    }
    // The format first: it decides which sizes and rates the camera offers.
    if (!options_.fourcc.empty()) {
      if (options_.fourcc.size() != 4) {
        Close();
        return Error{"invalid --fourcc '" + options_.fourcc + "': a FOURCC is 4 characters"};
      }
      const auto& f = options_.fourcc;
      capture_.set(cv::CAP_PROP_FOURCC, cv::VideoWriter::fourcc(f[0], f[1], f[2], f[3]));
    }
    if (options_.width > 0 && options_.height > 0) {
      capture_.set(cv::CAP_PROP_FRAME_WIDTH, options_.width);
      capture_.set(cv::CAP_PROP_FRAME_HEIGHT, options_.height);
    }
    if (options_.fps > 0) capture_.set(cv::CAP_PROP_FPS, options_.fps);
    if (!capture_.set(cv::CAP_PROP_BUFFERSIZE, kCameraBuffers)) {
      spdlog::debug("camera {}: the driver keeps its own number of buffers", device_);
    }
    TakeGeometry();
    const std::string fourcc = FourccText(capture_.get(cv::CAP_PROP_FOURCC));
    if (!options_.fourcc.empty() && fourcc != options_.fourcc) {
      spdlog::warn("camera {} does not offer --fourcc {}; it delivers {}", device_, options_.fourcc,
                   fourcc);
    }
    if (options_.width > 0 && (width() != options_.width || height() != options_.height)) {
      spdlog::warn("camera {} does not offer --size {}x{}; it delivers {}x{}", device_,
                   options_.width, options_.height, width(), height());
    }
    if (options_.fps > 0 && std::abs(fps() - options_.fps) > 0.5) {
      spdlog::warn("camera {} does not offer --fps {:g}; it reports {:g}", device_, options_.fps,
                   fps());
    }
    spdlog::info("camera {}: {}x{} {} at {:g} fps", device_, width(), height(), fourcc, fps());
    return true;
  }

  Expected<bool> OpenFile() {
    const std::string& path = spec_.location;
    if (auto problem = FileProblem(path)) {
      return Error{"cannot open file " + path + ": " + *problem};
    }
    if (!capture_.open(path, cv::CAP_FFMPEG) || !capture_.isOpened()) {
      Close();
      return Error{"cannot open file " + path + " with " + BackendName() +
                   ": not a video it can read (unknown container or codec, or a damaged file)"};
    }
    TakeGeometry();
    if (fps() == 0) {
      fps_ = kDefaultFileFps;
      spdlog::info("file {} does not state a usable frame rate; playing it at {:g} fps", path,
                   kDefaultFileFps);
    }
    period_ = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1 / fps()));
    return true;
  }

  // Reopens a file at its first frame for --loop, keeping the pacing state.
  // Reopening is more reliable than seeking to frame 0, which some
  // containers and codecs do not do exactly.
  Expected<bool> Rewind() {
    capture_.release();
    if (!capture_.open(spec_.location, cv::CAP_FFMPEG) || !capture_.isOpened()) {
      return Error{"cannot reopen file " + spec_.location + " to loop it"};
    }
    return true;
  }

  Expected<bool> OpenNetwork() {
    const std::string& url = spec_.location;
    const std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, kNetworkOpenTimeoutMs,
                                     cv::CAP_PROP_READ_TIMEOUT_MSEC, kNetworkReadTimeoutMs};
    const std::string options = FfmpegCaptureOptions(url, options_.rtsp_transport);
    std::string with;
    bool opened = false;
    {
      FfmpegOptionsScope scope(options);
      with = scope.user_options() ? std::string(kFfmpegOptionsVariable) + "=" +
                                        *scope.user_options() + " from the environment"
                                  : "options " + options;
      opened = capture_.open(url, cv::CAP_FFMPEG, params);
    }
    if (!opened || !capture_.isOpened()) {
      Close();
      return Error{"cannot open " + Describe() + " with " + BackendName() + " (" + with +
                   ", timeout " + std::to_string(kNetworkOpenTimeoutMs / 1000) +
                   " s): unreachable, refused, no such stream, or no video FFmpeg can decode"};
    }
    TakeGeometry();
    spdlog::info("stream {}: {}x{} at {:g} fps ({})", Describe(), width(), height(), fps(), with);
    return true;
  }

  Expected<bool> OpenGStreamer() {
    if (!cv::videoio_registry::hasBackend(cv::CAP_GSTREAMER)) {
      return Error{"cannot open " + Describe() + ": this OpenCV was built without GStreamer"};
    }
    if (!capture_.open(spec_.location, cv::CAP_GSTREAMER) || !capture_.isOpened()) {
      Close();
      return Error{"cannot open " + Describe() + " with " + BackendName() +
                   ": the pipeline could not be built or started (check the element names and "
                   "plugins, and that it ends in appsink; see GStreamer's messages above)"};
    }
    TakeGeometry();
    return true;
  }

  Frame MakeFrame(cv::Mat image, int64_t capture_us) {
    Frame frame;
    frame.meta.sequence = ++sequence_;
    frame.meta.width = image.cols;
    frame.meta.height = image.rows;
    frame.meta.format = PixelFormat::kBgr24;
    frame.meta.stamps.capture_us = capture_us;
    frame.image = std::move(image);
    return frame;
  }

  ReadResult ReadLive(std::stop_token stop) {
    cv::Mat image;
    // Blocks for at most about a frame interval on a working source; the read
    // timeout (network) or V4L2's select timeout bound it on a dead one.
    const bool ok = capture_.read(image);
    const int64_t now_us = MonotonicMicros();
    if (stop.stop_requested()) return ReadResult::Stopped();
    if (!ok || image.empty()) {
      // The grabber logs and shows this next to the source's description.
      switch (spec_.kind) {
        case SourceKind::kCamera:
          return ReadResult::Failed(
              "the camera stopped delivering frames (unplugged, or in error)");
        case SourceKind::kGStreamer:
          return ReadResult::Failed(
              "the pipeline stopped delivering frames (end of stream, or an error)");
        default:
          return ReadResult::Failed(
              "the stream stopped delivering frames (it ended, broke, or was silent for " +
              std::to_string(kNetworkReadTimeoutMs / 1000) + " s)");
      }
    }
    auto bgr = ToBgr24(image);
    if (!bgr) {
      return ReadResult::Failed("frames of an unsupported type (" + cv::typeToString(image.type()) +
                                ")");
    }
    int64_t capture_us = now_us;
    if (spec_.kind == SourceKind::kCamera) {
      // The driver's stamp says when the frame was captured, before it
      // waited in its buffer; use it when it is on our clock.
      const auto driver_us =
          static_cast<int64_t>(std::llround(capture_.get(cv::CAP_PROP_POS_MSEC) * 1000.0));
      if (driver_us > 0 && driver_us <= now_us && now_us - driver_us < kMaxDriverStampAgeUs) {
        capture_us = driver_us;
      }
    }
    width_ = bgr->cols;
    height_ = bgr->rows;
    return ReadResult::Of(MakeFrame(std::move(*bgr), capture_us));
  }

  ReadResult ReadFile(std::stop_token stop) {
    cv::Mat image;
    // Decode first, then wait for the frame's deadline: decoding time does
    // not delay delivery.
    while (!capture_.read(image) || image.empty()) {
      const std::string end =
          "end of file " + spec_.location + " after " + std::to_string(frames_in_pass_) + " frames";
      if (!options_.loop) return ReadResult::End(end);
      if (frames_in_pass_ == 0) {
        // Nothing readable: fail instead of spinning; the grabber retries
        // with backoff.
        return ReadResult::Failed("file " + spec_.location + " has no readable frames");
      }
      spdlog::debug("{}; looping", end);
      if (auto rewound = Rewind(); !rewound) return ReadResult::Failed(rewound.error().message);
      frames_in_pass_ = 0;
      if (stop.stop_requested()) return ReadResult::Stopped();
    }
    ++frames_in_pass_;
    auto bgr = ToBgr24(image);
    if (!bgr) {
      return ReadResult::Failed("file " + spec_.location + " has frames of an unsupported type (" +
                                cv::typeToString(image.type()) + ")");
    }
    // Frame n is due at start + n / fps, across loops too.
    const auto now = Clock::now();
    if (index_ == 0) start_ = now;
    auto deadline = start_ + period_ * index_;
    if (now - deadline > kMaxFileLag) {
      // Far behind (the process was not scheduled, or decoding is slower than
      // the file's rate): move the schedule instead of delivering a long
      // burst of late frames. A shorter delay is caught up by delivering the
      // late frames at once, so the file keeps its rate on a busy machine.
      start_ = now - period_ * index_;
      deadline = now;
    }
    if (!SleepUntil(deadline, stop)) return ReadResult::Stopped();
    ++index_;
    return ReadResult::Of(MakeFrame(std::move(*bgr), MonotonicMicros()));
  }

  const SourceSpec spec_;
  const SourceOptions options_;
  std::string device_;  // cameras: the /dev/videoN node
  cv::VideoCapture capture_;
  std::atomic<int> width_{0};
  std::atomic<int> height_{0};
  std::atomic<double> fps_{0};
  uint64_t sequence_ = 0;
  // File pacing: frame index_ (counted across loops) is due at
  // start_ + index_ * period_.
  Clock::duration period_{};
  Clock::time_point start_{};
  int64_t index_ = 0;
  uint64_t frames_in_pass_ = 0;  // frames read since the file was (re)opened
};

}  // namespace

std::unique_ptr<FrameSource> MakeOpenCvSource(const SourceSpec& spec,
                                              const SourceOptions& options) {
  return std::make_unique<OpenCvSource>(spec, options);
}

}  // namespace freshframe::capture
