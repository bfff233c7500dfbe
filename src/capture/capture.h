// Sources of video and the grabber thread that drains them.
//
// A FrameSource produces frames at its own pace; the Grabber runs one source
// on its own thread and publishes every frame into a LatestSlot, so the
// source is drained continuously and later stages only ever see the newest
// frame (a slow stage skips frames, it never makes the source wait).
//
// Thread-safety: a FrameSource is used by one thread at a time (the
// grabber's). Grabber's public members are called from the owning thread;
// the grabber's own thread is the only one touching the source. The Grabber
// owns its source; frames it publishes are shared, immutable FramePtrs.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "core/expected.h"
#include "core/frame.h"
#include "core/latest_slot.h"
#include "core/stage_thread.h"
#include "core/metrics.h"

namespace freshframe::capture {

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Blocks until the next frame is due and returns it with meta.sequence,
  // size, format and stamps.capture_us set. nullopt once `stop` is
  // requested (or the source has ended).
  virtual std::optional<Frame> Next(std::stop_token stop) = 0;
  // e.g. "pattern:640x480@30".
  virtual std::string Describe() const = 0;
  virtual int width() const = 0;
  virtual int height() const = 0;
  virtual double fps() const = 0;
};

// --source pattern[:WxH][@FPS]
struct PatternSpec {
  int width = 640;
  int height = 480;
  double fps = 30.0;
};

// Parses "pattern", "pattern:WxH", "pattern:WxH@FPS" or "pattern:@FPS".
// Sizes 16..7680 x 16..4320, fps in (0, 240].
Expected<PatternSpec> ParsePatternSpec(std::string_view spec);

// The built-in test pattern: a textured, scrolling background, a moving
// object, a frame counter and the timecode strip (core/timecode.h) with the
// capture stamp. Frames are due on absolute deadlines (start + n / fps), so
// the rate does not drift; when the caller falls behind by more than a frame,
// missed deadlines are skipped rather than delivered late in a burst.
std::unique_ptr<FrameSource> MakePatternSource(const PatternSpec& spec, uint32_t source_id = 0);

// Opens a source from a --source argument. Only the test pattern exists so far.
Expected<std::unique_ptr<FrameSource>> OpenSource(std::string_view spec);

class Grabber {
 public:
  Grabber(std::unique_ptr<FrameSource> source, LatestSlot<FramePtr>& raw, Metrics& metrics);
  Grabber(const Grabber&) = delete;
  Grabber& operator=(const Grabber&) = delete;

  void Start();
  void Stop();
  const FrameSource& source() const { return *source_; }

 private:
  void Run(std::stop_token stop);

  std::unique_ptr<FrameSource> source_;
  LatestSlot<FramePtr>& raw_;
  StageMetrics& capture_metrics_;
  StageMetrics& grab_metrics_;
  StageThread thread_;  // last: joined before the members it uses go
};

}  // namespace freshframe::capture
