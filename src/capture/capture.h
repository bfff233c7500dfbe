// Sources of video and the grabber thread that drains them.
//
// A FrameSource produces frames at its own pace; the Grabber runs one source
// on its own thread and publishes every frame into a LatestSlot, so the
// source is drained continuously and later stages only ever see the newest
// frame (a slow stage skips frames, it never makes the source wait). When a
// live source stops (end of stream, error, device gone), the grabber publishes
// a labelled "no signal" frame and reopens the source with capped backoff.
//
// Thread-safety: a FrameSource is used by one thread at a time (the
// grabber's, after Open at start-up). Grabber's Start/Stop are called from
// the owning thread; Status() from any thread. The Grabber owns its source;
// frames it publishes are shared, immutable FramePtrs.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "core/expected.h"
#include "core/frame.h"
#include "core/latest_slot.h"
#include "core/metrics.h"
#include "core/stage_thread.h"

namespace freshframe::capture {

// What a --source and its companion options ask for.
struct SourceOptions {
  std::string spec = "pattern";
  int width = 0;  // --size WxH for cameras; 0 keeps the device's
  int height = 0;
  double fps = 0;                      // --fps for cameras; 0 keeps the device's
  std::string fourcc;                  // --fourcc for cameras, e.g. MJPG
  bool loop = false;                   // --loop: files restart at the end
  std::string rtsp_transport = "tcp";  // --rtsp-transport tcp|udp
  // --source-token: http:// sources send it as "Authorization: Bearer".
  // (user:pass@ in an http:// URL is sent as Basic.) Never shown.
  std::string token;
};

// The outcome of waiting for a frame.
struct ReadResult {
  enum class Status { kFrame, kEnd, kError, kStopped };
  Status status = Status::kStopped;
  std::optional<Frame> frame;  // with kFrame
  std::string message;         // with kEnd and kError: what happened

  static ReadResult Of(Frame frame) { return {Status::kFrame, std::move(frame), {}}; }
  static ReadResult End(std::string why) { return {Status::kEnd, std::nullopt, std::move(why)}; }
  static ReadResult Failed(std::string why) {
    return {Status::kError, std::nullopt, std::move(why)};
  }
  static ReadResult Stopped() { return {}; }
};

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Opens the source, or reopens it after a failure. The Error names what
  // was tried and why it failed ("cannot open /dev/video3: no such device").
  virtual Expected<bool> Open() = 0;
  // Blocks until the next frame and returns it with meta.sequence
  // (increasing), size, format and stamps.capture_us set; or says why there
  // is none (end, error, or `stop` requested). Sources that are not live
  // (files, the pattern) pace themselves at their frame rate.
  virtual ReadResult Read(std::stop_token stop) = 0;
  virtual void Close() {}
  // e.g. "pattern:640x480@30", "file:/tmp/a.avi", "rtsp://cam/stream".
  // Never with credentials: user info passwords and token-like parameters
  // redacted (httpclient::RedactUrl); the grabber redacts again before showing.
  virtual std::string Describe() const = 0;
  virtual int width() const = 0;  // 0 until known
  virtual int height() const = 0;
  virtual double fps() const = 0;  // 0 if unknown
  // Whether the grabber reopens the source when it stops (cameras, network
  // streams) or lets it end (a file played without --loop).
  virtual bool reconnects() const { return true; }
};

// --source pattern[:WxH][@FPS]
struct PatternSpec {
  int width = 640;
  int height = 480;
  double fps = 30.0;
  // Share of the time the scene moves, in 10 s cycles (moving first): below
  // 1 the scene stands still for the rest of each cycle (only the timecode
  // strip changes), as a fixed camera watching a quiet place would.
  double motion = 1.0;
};

// Parses "pattern", "pattern:WxH", "pattern:WxH@FPS" or "pattern:@FPS",
// each optionally followed by ",motion=F" (0..1).
// Sizes 16..7680 x 16..4320, fps in (0, 240].
Expected<PatternSpec> ParsePatternSpec(std::string_view spec);

enum class SourceKind {
  kPattern,         // pattern[:WxH][@FPS]
  kBufferedCamera,  // bufcam:...: an emulated camera driver queue (capture/buffered_camera.cpp)
  kCamera,          // /dev/videoN or N
  kFile,            // a path, or file:PATH
  kNetwork,         // rtsp://, rtsps://, rtmp://, https://, udp://, or ffmpeg:URL (FFmpeg)
  kMjpegHttp,       // http://...: multipart MJPEG (e.g. another freshframe's /stream.mjpg)
  kGStreamer,       // gst:PIPELINE ending in appsink
};

struct SourceSpec {
  SourceKind kind = SourceKind::kPattern;
  std::string location;  // path, device, URL or pipeline (prefix removed)
  std::string text;      // the --source as given
};

std::string_view SourceKindName(SourceKind kind);

// Classifies a --source. An Error is a bad argument (exit status 2): an
// unsupported scheme, an empty pipeline, a malformed pattern. Error messages
// show the spec redacted (httpclient/redact.h).
Expected<SourceSpec> ParseSourceSpec(std::string_view spec);

// Makes the source a --source asks for, without opening it. An Error if the
// spec is bad, or options.token is given for a source that is not http://,
// with user info in the URL too, or is not a valid header value.
Expected<std::unique_ptr<FrameSource>> MakeSource(const SourceOptions& options);

// The factories behind MakeSource, each in its own file.
std::unique_ptr<FrameSource> MakePatternSource(const PatternSpec& spec, uint32_t source_id = 0);
// Cameras, files, FFmpeg network streams and GStreamer through cv::VideoCapture.
std::unique_ptr<FrameSource> MakeOpenCvSource(const SourceSpec& spec, const SourceOptions& options);
// http:// multipart MJPEG, read and decoded natively (lowest latency).
std::unique_ptr<FrameSource> MakeMjpegSource(const SourceSpec& spec, const SourceOptions& options);
// bufcam:...: see buffered_camera.h.
Expected<std::unique_ptr<FrameSource>> MakeBufferedCameraSource(const SourceSpec& spec);

// A frame that says, in large letters, that the source is not delivering:
// `why` and since when. It carries the timecode strip of `now_us`.
Frame MakeNoSignalFrame(int width, int height, const std::string& why, double seconds,
                        int64_t now_us);

struct GrabberOptions {
  // Not empty: the source could not be opened (this is why); the grabber
  // starts "reconnecting", showing "no signal" frames, and keeps trying (a
  // camera of a multi-stream config that is unplugged at start-up).
  std::string open_error;
  std::chrono::milliseconds first_backoff{250};
  std::chrono::milliseconds max_backoff{5000};
  double no_signal_fps = 5;  // rate of "no signal" frames while reconnecting
  // A source that fails this soon after it was reopened keeps the grown
  // backoff instead of starting again at first_backoff, so that a server
  // that accepts and then sends garbage is not hammered.
  std::chrono::milliseconds stable_after{10'000};
  // At most one warning about the source per interval; the ones in between
  // are counted and the count goes with the next warning. A broken upstream
  // is one clear line now and then, not a line per attempt.
  std::chrono::milliseconds log_interval{30'000};
};

class Grabber {
 public:
  // `source` must already be open, unless options.open_error says why not.
  Grabber(std::unique_ptr<FrameSource> source, LatestSlot<FramePtr>& raw, Metrics& metrics,
          GrabberOptions options = {});
  Grabber(const Grabber&) = delete;
  Grabber& operator=(const Grabber&) = delete;

  void Start();
  void Stop();

  // {"spec", "kind"?, "width", "height", "fps", "state": "live" |
  //  "reconnecting" | "ended", "message", "reconnects", "since_s"}
  nlohmann::json Status() const;
  // False once a source that does not reconnect has ended.
  bool live() const;

 private:
  void Run(std::stop_token stop);
  bool Reconnect(std::stop_token stop, const std::string& why);
  void Publish(Frame frame, bool real);
  void SetState(std::string state, std::string message);
  // Logs a warning about the source, rate-limited by options_.log_interval.
  // True if it was logged.
  bool Warn(const std::string& text);

  std::unique_ptr<FrameSource> source_;
  LatestSlot<FramePtr>& raw_;
  StageMetrics& capture_metrics_;
  StageMetrics& grab_metrics_;
  GrabberOptions options_;
  const std::string description_;  // redacted: it is logged and in Status()
  // The grabber thread's own: log rate limiting and backoff across reopens.
  int64_t last_warning_us_ = 0;  // 0: none yet
  uint64_t suppressed_warnings_ = 0;
  bool last_failure_logged_ = true;
  int64_t reopened_us_ = 0;  // when the source was last reopened; 0: never
  std::chrono::milliseconds last_backoff_{0};
  mutable std::mutex mutex_;  // guards the status below
  std::string state_ = "live";
  std::string message_;
  uint64_t reconnects_ = 0;
  int64_t since_us_ = 0;
  int width_ = 0;
  int height_ = 0;
  uint64_t last_sequence_ = 0;
  uint64_t source_sequence_ = 0;  // the last number the source itself gave
  StageThread thread_;            // last: joined before the members it uses go
};

}  // namespace freshframe::capture
