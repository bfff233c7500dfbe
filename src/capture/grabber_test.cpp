#include <atomic>
#include <chrono>
#include <memory>
#include <sstream>
#include <thread>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "capture/capture.h"
#include "core/clock.h"
#include "core/timecode.h"

namespace freshframe::capture {
namespace {

using namespace std::chrono_literals;

// A scripted source: delivers `frames_before_failure` frames at 100 fps, then
// fails (or ends); the next `failed_opens` Open() calls fail too.
class FakeSource final : public FrameSource {
 public:
  FakeSource(int frames_before_failure, int failed_opens, bool reconnects, bool end_instead)
      : frames_before_failure_(frames_before_failure),
        failed_opens_(failed_opens),
        reconnects_(reconnects),
        end_instead_(end_instead) {}

  Expected<bool> Open() override {
    opens_.fetch_add(1);
    if (opens_.load() > 1 && failed_opens_-- > 0) return Error{"device busy"};
    delivered_ = 0;
    return true;
  }
  ReadResult Read(std::stop_token stop) override {
    if (!SleepUntil(std::chrono::steady_clock::now() + 10ms, stop)) return ReadResult::Stopped();
    if (delivered_ >= frames_before_failure_) {
      return end_instead_ ? ReadResult::End("end of test file") : ReadResult::Failed("cable out");
    }
    Frame frame;
    frame.meta.sequence = static_cast<uint64_t>(++delivered_);
    frame.meta.stamps.capture_us = MonotonicMicros();
    frame.image = cv::Mat(240, 320, CV_8UC3, cv::Scalar(1, 2, 3));
    frame.meta.width = 320;
    frame.meta.height = 240;
    return ReadResult::Of(std::move(frame));
  }
  std::string Describe() const override { return "fake"; }
  int width() const override { return 320; }
  int height() const override { return 240; }
  double fps() const override { return 100; }
  bool reconnects() const override { return reconnects_; }

  std::atomic<int> opens_{0};

 private:
  int frames_before_failure_;
  int failed_opens_;
  bool reconnects_;
  bool end_instead_;
  int delivered_ = 0;
};

GrabberOptions FastBackoff() {
  GrabberOptions options;
  options.first_backoff = 50ms;
  options.max_backoff = 100ms;
  options.no_signal_fps = 50;
  return options;
}

TEST(GrabberTest, ReconnectsShowingNoSignalFrames) {
  LatestSlot<FramePtr> raw;
  Metrics metrics;
  auto source = std::make_unique<FakeSource>(5, 2, true, false);
  FakeSource* fake = source.get();
  ASSERT_TRUE(source->Open().ok());
  Grabber grabber(std::move(source), raw, metrics, FastBackoff());
  grabber.Start();

  // The first frames, then the failure: "no signal" frames, state says why.
  bool saw_no_signal = false;
  uint64_t last_version = 0, last_sequence = 0;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!saw_no_signal && std::chrono::steady_clock::now() < deadline) {
    auto next = raw.WaitNewer(last_version, 1s);
    if (!next) continue;
    last_version = next->version;
    EXPECT_GT(next->value->meta.sequence, last_sequence);  // one numbering throughout
    last_sequence = next->value->meta.sequence;
    // No-signal frames are not the source's colour (1,2,3) and carry a strip.
    if (next->value->image.at<cv::Vec3b>(120, 5) != cv::Vec3b(1, 2, 3)) {
      saw_no_signal = true;
      EXPECT_TRUE(timecode::Read(next->value->image, MonotonicMicros()).has_value());
    }
  }
  ASSERT_TRUE(saw_no_signal);
  auto status = grabber.Status();
  EXPECT_EQ(status["state"], "reconnecting");
  const std::string why = status["message"];
  EXPECT_TRUE(why == "cable out" || why == "device busy") << why;
  EXPECT_TRUE(grabber.live());

  // Two failed opens, then it comes back: frames flow, state is live again.
  const auto back_by = std::chrono::steady_clock::now() + 5s;
  while (grabber.Status()["state"] != "live" && std::chrono::steady_clock::now() < back_by) {
    std::this_thread::sleep_for(20ms);
  }
  status = grabber.Status();
  EXPECT_EQ(status["state"], "live");
  EXPECT_GE(status["reconnects"].get<int>(), 3);
  EXPECT_GE(fake->opens_.load(), 4);
  grabber.Stop();
}

TEST(GrabberTest, ASourceThatEndsStaysEnded) {
  LatestSlot<FramePtr> raw;
  Metrics metrics;
  auto source = std::make_unique<FakeSource>(3, 0, false, true);
  ASSERT_TRUE(source->Open().ok());
  Grabber grabber(std::move(source), raw, metrics, FastBackoff());
  grabber.Start();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (grabber.live() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(grabber.live());
  EXPECT_EQ(grabber.Status()["state"], "ended");
  EXPECT_EQ(grabber.Status()["message"], "end of test file");
  EXPECT_EQ(raw.version(), 3U);  // the last real frame stays the newest
  grabber.Stop();
}

TEST(GrabberTest, StopInterruptsBackoff) {
  LatestSlot<FramePtr> raw;
  Metrics metrics;
  auto source = std::make_unique<FakeSource>(0, 1000, true, false);
  ASSERT_TRUE(source->Open().ok());
  GrabberOptions slow;
  slow.first_backoff = 10s;
  Grabber grabber(std::move(source), raw, metrics, slow);
  grabber.Start();
  std::this_thread::sleep_for(100ms);
  const auto start = std::chrono::steady_clock::now();
  grabber.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

// The default logger, writing into a string for as long as it lives.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_level(spdlog::level::info);
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  std::string text() const { return text_.str(); }
  size_t Count(std::string_view needle) const {
    const std::string all = text();
    size_t count = 0;
    for (size_t at = all.find(needle); at != std::string::npos; at = all.find(needle, at + 1)) {
      ++count;
    }
    return count;
  }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> previous_;
};

// An upstream that accepts every connection and breaks at once (a server
// sending garbage): every Open succeeds, every Read fails, quoting the URL
// as a source's own message may.
class BrokenUpstream final : public FrameSource {
 public:
  static constexpr const char* kUrl = "http://bob:hunter2@cam/stream.mjpg?token=s3cret";
  Expected<bool> Open() override { return true; }
  ReadResult Read(std::stop_token) override {
    return ReadResult::Failed(std::string(kUrl) + ": bad multipart stream: no boundary");
  }
  std::string Describe() const override { return kUrl; }
  int width() const override { return 0; }
  int height() const override { return 0; }
  double fps() const override { return 0; }
};

TEST(GrabberTest, ABrokenUpstreamIsOneRedactedLogLineNotALinePerAttempt) {
  CapturedLog log;
  LatestSlot<FramePtr> raw;
  Metrics metrics;
  GrabberOptions options;
  options.first_backoff = 5ms;
  options.max_backoff = 20ms;
  options.no_signal_fps = 50;
  options.log_interval = 1h;
  Grabber grabber(std::make_unique<BrokenUpstream>(), raw, metrics, options);
  grabber.Start();
  std::this_thread::sleep_for(600ms);
  const nlohmann::json status = grabber.Status();
  grabber.Stop();

  // Reopened many times, but the one warning is the only line about it.
  EXPECT_GE(status["reconnects"].get<int>(), 3);
  EXPECT_EQ(log.Count("warning"), 1u) << log.text();
  EXPECT_LE(log.Count("reopened"), 1u) << log.text();  // after the first failure only
  // Each quick failure grows the backoff instead of starting again at 5 ms:
  // at 20 ms a round, fewer than 600 / 20 + a few attempts (a busy machine
  // only makes fewer); restarting at 5 ms each time would make over 100.
  EXPECT_LT(status["reconnects"].get<int>(), 45) << status.dump();

  // Nothing shown carries the credentials.
  for (const std::string& shown : {log.text(), status.dump()}) {
    EXPECT_EQ(shown.find("hunter2"), std::string::npos) << shown;
    EXPECT_EQ(shown.find("s3cret"), std::string::npos) << shown;
  }
  EXPECT_EQ(status["spec"], "http://bob:***@cam/stream.mjpg?token=***");
  EXPECT_NE(status["message"].get<std::string>().find("token=***"), std::string::npos)
      << status.dump();
}

TEST(SourceSpecTest, Kinds) {
  const auto kind = [](const char* spec) { return ParseSourceSpec(spec)->kind; };
  EXPECT_EQ(kind("pattern:320x240@10"), SourceKind::kPattern);
  EXPECT_EQ(kind("bufcam:640x480@30/4"), SourceKind::kBufferedCamera);
  EXPECT_EQ(kind("/dev/video0"), SourceKind::kCamera);
  EXPECT_EQ(kind("0"), SourceKind::kCamera);
  EXPECT_EQ(kind("/tmp/a.avi"), SourceKind::kFile);
  EXPECT_EQ(kind("file:0"), SourceKind::kFile);
  EXPECT_EQ(kind("rtsp://cam/stream"), SourceKind::kNetwork);
  EXPECT_EQ(kind("https://x/y.m3u8"), SourceKind::kNetwork);
  EXPECT_EQ(kind("ffmpeg:http://x/y.mp4"), SourceKind::kNetwork);
  EXPECT_EQ(kind("http://127.0.0.1:8080/stream.mjpg"), SourceKind::kMjpegHttp);
  EXPECT_EQ(kind("gst:videotestsrc ! appsink"), SourceKind::kGStreamer);
  EXPECT_EQ(ParseSourceSpec("gst:videotestsrc ! appsink")->location, "videotestsrc ! appsink");
}

TEST(SourceSpecTest, BadArgumentsAreErrors) {
  for (const char* bad : {"", "foo://x", "gst:videotestsrc", "pattern:0x0@0", "file:", "ffmpeg:"}) {
    EXPECT_FALSE(ParseSourceSpec(bad).ok()) << bad;
  }
  EXPECT_NE(ParseSourceSpec("foo://x").error().message.find("unsupported scheme 'foo'"),
            std::string::npos);
  // http:// is read natively: a URL it cannot request is a bad argument, and
  // the message shows it redacted.
  auto bad_url = ParseSourceSpec("http://u:hunter2@h:99999/s?token=s3cret");
  ASSERT_FALSE(bad_url.ok());
  EXPECT_NE(bad_url.error().message.find("bad port"), std::string::npos) << bad_url.error().message;
  EXPECT_EQ(bad_url.error().message.find("hunter2"), std::string::npos) << bad_url.error().message;
  EXPECT_EQ(bad_url.error().message.find("s3cret"), std::string::npos) << bad_url.error().message;
}

TEST(NoSignalTest, FrameIsLabelledAndTimecoded) {
  const int64_t now = MonotonicMicros();
  Frame frame = MakeNoSignalFrame(640, 480, "connection refused", 3.5, now);
  EXPECT_EQ(frame.image.cols, 640);
  EXPECT_EQ(frame.image.rows, 480);
  auto reading = timecode::Read(frame.image, now);
  ASSERT_TRUE(reading.has_value());
  EXPECT_EQ(reading->t_us, now);
}

}  // namespace
}  // namespace freshframe::capture
