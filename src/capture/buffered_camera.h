// An emulated camera driver with a queue of N buffers (--source bufcam), and
// the measurement that shows what such a queue does to a slow reader.
//
// A V4L2 camera captures on its own clock. Each capture is written into a
// free driver buffer and queued; read() dequeues the OLDEST filled buffer.
// When every buffer is full (the application reads slower than the camera
// captures), the driver has nowhere to write and drops the NEW capture. So a
// reader that takes one frame per slow processing iteration always gets a
// frame that waited in the queue for about N of its iterations. The emulation
// reproduces exactly that, with the test pattern (and its timecode strip) as
// the picture, so tests and bench/sources can show the failure of the usual
// "read one frame per loop" code and that freshframe's grabber avoids it.
// docs/capture-latency.md has the explanation and the measurements.
//
// Thread-safety: BufferedCameraSource runs an internal driver thread between
// Open() and Close(); as a FrameSource it is used by one reader thread at a
// time (Open/Read/Close from that thread). The counters may be read from any
// thread. RunConsumer owns the source it is given and runs on the calling
// thread (plus a Grabber thread in kGrabber mode).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "capture/capture.h"
#include "core/expected.h"
#include "core/frame.h"
#include "core/stage_thread.h"

namespace freshframe::capture {

// --source bufcam[:WxH][@FPS][/N]
struct BufferedCameraSpec {
  int width = 640;
  int height = 480;
  double fps = 30.0;
  int buffers = 4;  // driver buffers; 1 models CAP_PROP_BUFFERSIZE=1 honoured
};

inline constexpr int kMaxDriverBuffers = 32;  // V4L2's VIDEO_MAX_FRAME

// Parses "bufcam", "bufcam:WxH", "bufcam:WxH@FPS", "bufcam:WxH@FPS/N" and the
// forms with parts left out ("bufcam:@15", "bufcam:/1", "bufcam/1"). Sizes
// 16..7680 x 16..4320, fps in (0, 240], N in 1..32.
Expected<BufferedCameraSpec> ParseBufferedCameraSpec(std::string_view spec);

class BufferedCameraSource final : public FrameSource {
 public:
  explicit BufferedCameraSource(const BufferedCameraSpec& spec, uint32_t source_id = 0);
  ~BufferedCameraSource() override;
  BufferedCameraSource(const BufferedCameraSource&) = delete;
  BufferedCameraSource& operator=(const BufferedCameraSource&) = delete;

  // Starts capturing (the driver thread) with every buffer free; a no-op if
  // already streaming.
  Expected<bool> Open() override;
  // Dequeues the oldest filled buffer, waiting for a capture if none is
  // filled. kStopped once `stop` is requested; kError if not open.
  ReadResult Read(std::stop_token stop) override;
  // Stops capturing and frees every buffer (queued frames are discarded).
  void Close() override;
  std::string Describe() const override;  // "bufcam:640x480@30/4"
  int width() const override { return spec_.width; }
  int height() const override { return spec_.height; }
  double fps() const override { return spec_.fps; }
  bool reconnects() const override { return true; }  // a camera

  const BufferedCameraSpec& spec() const { return spec_; }
  uint64_t captured() const;  // captures since construction, dropped ones included
  uint64_t dropped() const;   // captures dropped because every buffer was full
  size_t queued() const;      // filled buffers waiting to be read

 private:
  void Capture(std::stop_token stop);

  const BufferedCameraSpec spec_;
  const uint32_t source_id_;
  // Renders and paces the captures. Made by the first Open() (rendering its
  // background costs a few ms, and the CLI makes sources just to validate
  // --source); used only by the driver thread afterwards.
  std::unique_ptr<FrameSource> sensor_;
  mutable std::mutex mutex_;  // guards everything below up to driver_
  std::condition_variable_any filled_;
  std::deque<Frame> queue_;  // oldest first, at most spec_.buffers
  bool streaming_ = false;
  uint64_t captured_ = 0;
  uint64_t dropped_ = 0;
  StageThread driver_;  // last: joined before the members it uses go
};

// How a consumer that needs D ms per frame gets its frames.
enum class ConsumerMode {
  kNaive,       // the guide's loop: one Read() per iteration (gets the oldest buffered frame)
  kGuideDrain,  // the guide's read_latest_frame: Read() until it fails (never, on a live camera)
  kTimedDrain,  // Read() until a read has to wait for a capture (a common time-bounded drain)
  kGrabber,     // freshframe: a Grabber drains into a LatestSlot; WaitNewer takes the newest
};

std::string_view ConsumerModeName(ConsumerMode mode);

struct ConsumerOptions {
  std::chrono::milliseconds work{150};         // per frame: a sleep, unless `process` is set
  std::chrono::milliseconds duration{60'000};  // how long to run the consumer
  // kGuideDrain: a drain that takes longer than this is reported as "did not
  // return" (it would go on for ever) and ends the run.
  std::chrono::milliseconds drain_limit{5'000};
  // kTimedDrain: a read that takes longer than this had to wait for a new
  // capture, so the queue is empty and that frame is fresh.
  std::chrono::microseconds waited_read{2'000};
  // Real work instead of the sleep (e.g. a detector), run on each frame.
  std::function<void(const Frame&)> process;
};

struct ConsumerRun {
  ConsumerMode mode = ConsumerMode::kNaive;
  uint64_t frames_processed = 0;
  std::vector<double> age_ms;    // per processed frame: now - capture_us as processing starts
  std::vector<double> fetch_ms;  // per processed frame: time spent getting it (read/drain/wait)
  uint64_t reads = 0;            // FrameSource::Read calls made by the consumer itself
  uint64_t captured = 0;         // bufcam only: the driver's counters at the end
  uint64_t dropped = 0;
  bool returned = true;  // false: kGuideDrain's drain never returned
  std::string note;      // why the run ended early, if it did
};

// Opens `source`, runs the consumer in `mode` for options.duration (or until
// `stop`), then closes it. An Error if the source does not open or fails.
Expected<ConsumerRun> RunConsumer(std::unique_ptr<FrameSource> source, ConsumerMode mode,
                                  const ConsumerOptions& options, std::stop_token stop = {});

// The q-th percentile (0..100, nearest rank) of `values`; 0 if empty.
double NearestRankPercentile(std::vector<double> values, double q);

}  // namespace freshframe::capture
