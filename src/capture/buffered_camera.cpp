#include "capture/buffered_camera.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <thread>
#include <utility>

#include "capture/spec_parse.h"
#include "core/clock.h"
#include "core/latest_slot.h"
#include "core/metrics.h"

namespace freshframe::capture {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kPrefix = "bufcam";

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The frame's age now: what a consumer starting work on it is behind by.
double AgeMs(const Frame& frame) {
  return static_cast<double>(MonotonicMicros() - frame.meta.stamps.capture_us) / 1000.0;
}

// The consumer's work on one frame; false if stopped meanwhile.
bool Process(const Frame& frame, const ConsumerOptions& options, std::stop_token stop) {
  if (options.process) {
    options.process(frame);
    return !stop.stop_requested();
  }
  return SleepUntil(Clock::now() + options.work, stop);
}

void Record(ConsumerRun& run, double age_ms, double fetch_ms) {
  ++run.frames_processed;
  run.age_ms.push_back(age_ms);
  run.fetch_ms.push_back(fetch_ms);
}

// The guide's read_latest_frame(), in Python:
//   ret, frame = cap.read()
//   while ret: prev_ret, prev_frame = ret, frame; ret, frame = cap.read()
//   return prev_ret, prev_frame
// It ends only when read() fails. A live camera's read() waits for the next
// capture and succeeds, so it never ends; we give up after drain_limit and
// say so (run.returned = false).
ReadResult GuideDrain(FrameSource& source, const ConsumerOptions& options, std::stop_token stop,
                      ConsumerRun& run) {
  std::stop_source give_up;
  std::stop_callback forward(stop, [&give_up] { give_up.request_stop(); });
  // Declared last, so it is joined before what it uses goes.
  std::jthread watchdog([&give_up, limit = options.drain_limit](std::stop_token cancelled) {
    if (SleepUntil(Clock::now() + limit, cancelled)) give_up.request_stop();
  });
  std::optional<Frame> latest;
  uint64_t reads = 0;
  for (;;) {
    ReadResult result = source.Read(give_up.get_token());
    ++reads;
    ++run.reads;
    if (result.status == ReadResult::Status::kFrame) {
      latest = std::move(result.frame);
      continue;
    }
    if (stop.stop_requested()) return ReadResult::Stopped();
    if (result.status == ReadResult::Status::kStopped) {
      char note[160];
      std::snprintf(note, sizeof note,
                    "read_latest_frame() did not return within %.1f s: all %llu read() calls "
                    "succeeded (a live camera always has a next frame)",
                    static_cast<double>(options.drain_limit.count()) / 1000.0,
                    static_cast<unsigned long long>(reads - 1));
      run.returned = false;
      run.note = note;
      return ReadResult::Stopped();
    }
    // read() failed: the guide returns the frame before the failure.
    if (latest) return ReadResult::Of(std::move(*latest));
    return result;
  }
}

// A time-bounded drain: keep reading while read() returns at once (those are
// buffered frames); the first read that had to wait for a capture returns a
// fresh frame. The processing thread sits in that wait, up to a frame
// interval per iteration.
ReadResult TimedDrain(FrameSource& source, const ConsumerOptions& options, std::stop_token stop,
                      ConsumerRun& run) {
  const auto start = Clock::now();
  for (;;) {
    const auto before = Clock::now();
    ReadResult result = source.Read(stop);
    ++run.reads;
    if (result.status != ReadResult::Status::kFrame) return result;
    const auto now = Clock::now();
    if (now - before >= options.waited_read || now - start >= options.drain_limit) return result;
  }
}

// Modes in which the consumer reads the source itself.
Expected<bool> RunReader(FrameSource& source, ConsumerMode mode, const ConsumerOptions& options,
                         std::stop_token stop, ConsumerRun& run) {
  const auto end = Clock::now() + options.duration;
  while (Clock::now() < end && !stop.stop_requested()) {
    const auto fetch_start = Clock::now();
    ReadResult result;
    switch (mode) {
      case ConsumerMode::kGuideDrain:
        result = GuideDrain(source, options, stop, run);
        break;
      case ConsumerMode::kTimedDrain:
        result = TimedDrain(source, options, stop, run);
        break;
      case ConsumerMode::kNaive:
      case ConsumerMode::kGrabber:  // not here: see RunGrabber
        result = source.Read(stop);
        ++run.reads;
        break;
    }
    if (result.status == ReadResult::Status::kStopped) break;
    if (result.status != ReadResult::Status::kFrame) {
      return Error{"source " + source.Describe() + ": " + result.message};
    }
    Record(run, AgeMs(*result.frame), MillisSince(fetch_start));
    if (!Process(*result.frame, options, stop)) break;
  }
  return true;
}

// freshframe's way, as its detector stage does it: the grabber drains the
// source on its own thread; the consumer takes the newest published frame.
void RunGrabber(std::unique_ptr<FrameSource> source, const ConsumerOptions& options,
                std::stop_token stop, ConsumerRun& run) {
  using namespace std::chrono_literals;
  const auto* camera = dynamic_cast<const BufferedCameraSource*>(source.get());
  LatestSlot<FramePtr> raw;
  Metrics metrics;
  Grabber grabber(std::move(source), raw, metrics);
  grabber.Start();
  const auto end = Clock::now() + options.duration;
  uint64_t last_version = 0;
  while (Clock::now() < end && !stop.stop_requested()) {
    const auto fetch_start = Clock::now();
    std::optional<LatestSlot<FramePtr>::Versioned> next;
    while (!(next = raw.WaitNewer(last_version, 100ms)) && Clock::now() < end &&
           !stop.stop_requested()) {
    }
    if (!next) break;
    last_version = next->version;
    Record(run, AgeMs(*next->value), MillisSince(fetch_start));
    if (!Process(*next->value, options, stop)) break;
  }
  grabber.Stop();
  raw.Close();
  if (camera != nullptr) {
    run.captured = camera->captured();
    run.dropped = camera->dropped();
  }
}

}  // namespace

Expected<BufferedCameraSpec> ParseBufferedCameraSpec(std::string_view spec) {
  const auto bad = [&](std::string_view why) {
    return Error{"invalid bufcam source '" + std::string(spec) + "': " + std::string(why) +
                 " (expected bufcam[:WxH][@FPS][/N], e.g. bufcam:640x480@30/4)"};
  };
  if (spec.substr(0, kPrefix.size()) != kPrefix) return bad("not a bufcam");
  std::string_view rest = spec.substr(kPrefix.size());
  BufferedCameraSpec out;
  if (rest.empty()) return out;
  if (rest.front() == ':') {
    rest.remove_prefix(1);
  } else if (rest.front() != '@' && rest.front() != '/') {
    return bad("expected ':', '@' or '/' after 'bufcam'");
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (!ParseInt(rest.substr(slash + 1), out.buffers) || out.buffers < 1 ||
        out.buffers > kMaxDriverBuffers) {
      return bad("buffers N must be an integer in 1..32");
    }
    rest = rest.substr(0, slash);
  }
  if (auto problem = ParseSizeAndRate(rest, out.width, out.height, out.fps)) {
    return bad(*problem);
  }
  return out;
}

BufferedCameraSource::BufferedCameraSource(const BufferedCameraSpec& spec, uint32_t source_id)
    : spec_(spec), source_id_(source_id) {}

BufferedCameraSource::~BufferedCameraSource() { Close(); }

Expected<bool> BufferedCameraSource::Open() {
  {
    std::lock_guard lock(mutex_);
    if (streaming_) return true;
    queue_.clear();
    streaming_ = true;
  }
  // The driver thread is not running here, so the sensor is ours to touch.
  if (!sensor_) sensor_ = MakePatternSource({spec_.width, spec_.height, spec_.fps}, source_id_);
  driver_.Start([this](std::stop_token stop) { Capture(stop); });
  return true;
}

void BufferedCameraSource::Close() {
  {
    std::lock_guard lock(mutex_);
    streaming_ = false;
  }
  filled_.notify_all();  // a Read waiting on another thread gives up
  driver_.Stop();
  std::lock_guard lock(mutex_);
  queue_.clear();  // after the join: nothing can be queued behind it
}

ReadResult BufferedCameraSource::Read(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  if (!streaming_) return ReadResult::Failed(Describe() + " is not open");
  filled_.wait(lock, stop, [this] { return !queue_.empty() || !streaming_; });
  if (stop.stop_requested()) return ReadResult::Stopped();
  if (queue_.empty()) return ReadResult::Failed(Describe() + " was closed");
  // The OLDEST filled buffer, as VIDIOC_DQBUF gives it: this is the frame a
  // slow reader should not want.
  Frame frame = std::move(queue_.front());
  queue_.pop_front();
  return ReadResult::Of(std::move(frame));
}

// The camera's own clock: it captures every 1/fps whether or not anyone
// reads (the pattern source paces on absolute deadlines and stamps
// capture_us at the deadline, before rendering). A capture with no free
// buffer is lost, so the queue keeps the old frames and not the new one.
void BufferedCameraSource::Capture(std::stop_token stop) {
  const auto capacity = static_cast<size_t>(spec_.buffers);
  for (;;) {
    ReadResult shot = sensor_->Read(stop);
    if (shot.status != ReadResult::Status::kFrame) return;  // stopped
    bool queued = false;
    {
      std::lock_guard lock(mutex_);
      ++captured_;
      if (queue_.size() < capacity) {
        queue_.push_back(std::move(*shot.frame));
        queued = true;
      } else {
        ++dropped_;
      }
    }
    if (queued) filled_.notify_all();
  }
}

std::string BufferedCameraSource::Describe() const {
  char text[80];
  std::snprintf(text, sizeof text, "bufcam:%dx%d@%g/%d", spec_.width, spec_.height, spec_.fps,
                spec_.buffers);
  return text;
}

uint64_t BufferedCameraSource::captured() const {
  std::lock_guard lock(mutex_);
  return captured_;
}

uint64_t BufferedCameraSource::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

size_t BufferedCameraSource::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

Expected<std::unique_ptr<FrameSource>> MakeBufferedCameraSource(const SourceSpec& spec) {
  auto parsed = ParseBufferedCameraSpec(spec.location);
  if (!parsed) return parsed.error();
  return std::unique_ptr<FrameSource>(std::make_unique<BufferedCameraSource>(*parsed));
}

std::string_view ConsumerModeName(ConsumerMode mode) {
  switch (mode) {
    case ConsumerMode::kNaive:
      return "naive";
    case ConsumerMode::kGuideDrain:
      return "guide-drain";
    case ConsumerMode::kTimedDrain:
      return "timed-drain";
    case ConsumerMode::kGrabber:
      return "grabber";
  }
  return "unknown";
}

Expected<ConsumerRun> RunConsumer(std::unique_ptr<FrameSource> source, ConsumerMode mode,
                                  const ConsumerOptions& options, std::stop_token stop) {
  if (!source) return Error{"no source"};
  if (auto opened = source->Open(); !opened) return opened.error();
  ConsumerRun run;
  run.mode = mode;
  if (mode == ConsumerMode::kGrabber) {
    RunGrabber(std::move(source), options, stop, run);
    return run;
  }
  auto outcome = RunReader(*source, mode, options, stop, run);
  source->Close();
  if (const auto* camera = dynamic_cast<const BufferedCameraSource*>(source.get())) {
    run.captured = camera->captured();
    run.dropped = camera->dropped();
  }
  if (!outcome) return outcome.error();
  return run;
}

double NearestRankPercentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank =
      std::ceil(std::clamp(q, 0.0, 100.0) / 100.0 * static_cast<double>(values.size()));
  const auto index = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return values[std::min(index, values.size() - 1)];
}

}  // namespace freshframe::capture
