// SharedDetector: one loaded detector serving the raw frames of several
// streams, fairly, on one thread.
//
// Policy ("newest frame of each, round robin"): each stream bound to the
// detector has a turn in a fixed cycle (the order of Add). On its turn a
// stream's newest raw frame is detected if it is newer than the last one
// taken for it and if the stream's own rate cap allows it now (at least
// 1/max_fps since its last detection started), else the turn passes to the
// next stream at once. There is never a queue of frames: a stream whose
// frames came while others were being detected just offers its newest one on
// its next turn. Fairness counts turns, not time: with every stream busy,
// each gets one detection per cycle, so a stream whose frames cost ten times
// as much to detect (bigger, busier) gets as many detections as a cheap one
// and takes ten times the detector's time; a cheap stream's rate drops to
// the cycle's, never to zero. Only stateless detectors are shared: one that
// learns from a camera's frames (motion's background model) serves one
// stream (shareable()).
//
// A stream whose detection is switched off (LiveSettings::detector false)
// runs no inference and costs only the check (the thread still wakes for
// each of its frames, to drop it, so that a frame that came while off is not
// detected after a switch-on, as DetectorStage did). On the switch it
// publishes the one "detector off" set (PublishDetectorOff), once per
// switch-off, from the detector thread so that it comes after the stream's
// last real set.
// While no stream has work the thread sleeps until a bound raw slot
// publishes, a cap expires, or it is stopped (a Wakeup registered with every
// bound raw slot: no polling). One exception: a stream with a LiveSettings
// that is still detecting is looked at every kSwitchPollInterval too, so a
// switch-off is announced even when its source sends nothing.
//
// Counting, per stream (its StageMetrics and stats()):
// - detected: frames detected (StageMetrics::frames, with work = detection
//   time and latency = capture to end of detection);
// - skipped (StageMetrics::CountSkipped, as DetectorStage counts it): frames
//   the stream's source published that were replaced before the stream's
//   turn came, i.e. the detector was busy (with this stream or others);
// - capped (stats() only, not an error): frames passed over because the
//   stream's max_fps held it back. Attribution between skipped and capped is
//   made at each look at the stream (between any two detections and at every
//   wake-up): frames replaced while the cap held and the thread was busy
//   with another stream may count as skipped;
// - frames dropped while the detector is switched off count as neither.
//
// OpenCV threads (who pays): cv::setNumThreads is one process-wide setting,
// not a per-detector one. The app sets it once at start from the server's
// detector-threads, and every detector (shared or not) and every other
// OpenCV call in the process (resizes and colour conversions in capture,
// annotation, encoding) parallelises over that one pool. A detector using N
// threads therefore costs every stream: on a 2-core machine N > 1 takes CPU
// from all streams' capture, encoding and sending at once; the lowered
// priority below reaches only threads started from the detector thread, not
// a pool another thread started first. So the default is 1 (OpenCV then
// runs everything on the calling thread), and a SharedDetector never
// changes it.
//
// The thread runs at the lowered priority DetectorStage always had
// (kDetectorNice), so an always-busy detector does not add its time slices
// to every frame's latency.
//
// Thread-safety: every member may be called from any thread; Add, Remove,
// Start and Stop lock (Start and Stop are serialised with each other).
// Ownership and lifetimes: the SharedDetector owns the Detector (used only
// by its thread). It does not own what a binding points to, which must stay
// alive until Remove(id) has returned or Stop() has returned (Remove waits
// until the thread no longer uses the binding; Stop joins the thread and
// unregisters from every raw slot, so the slots may then go away before the
// SharedDetector, and a later Start registers again).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/frame.h"
#include "core/latest_slot.h"
#include "core/live_settings.h"
#include "core/metrics.h"
#include "infer/infer.h"

namespace freshframe::infer {

struct DetectorBinding {
  LatestSlot<FramePtr>* raw = nullptr;                // required: the stream's raw frames
  LatestSlot<DetectionSetPtr>* detections = nullptr;  // required: its sets, for the annotator
  LatestSlot<JsonTextPtr>* json = nullptr;            // optional: sets as JSON text
  const LiveSettings* settings = nullptr;             // optional: the detector switch
  StageMetrics* metrics = nullptr;                    // optional: the stream's "infer" stage
  double max_fps = 0;                                 // <= 0: no cap
};

// One stream's figures since Add (for /api/stats; see "Counting" above).
struct BindingStats {
  uint64_t detected = 0;
  uint64_t skipped = 0;
  uint64_t capped = 0;
  bool detector_running = true;  // false while switched off (as last seen)
};

class SharedDetector {
 public:
  // How often a stream that has a LiveSettings and is detecting is looked at
  // when nothing else wakes the thread (to notice a switch-off).
  static constexpr std::chrono::milliseconds kSwitchPollInterval{200};

  explicit SharedDetector(std::unique_ptr<Detector> detector);
  ~SharedDetector();  // Stop()
  SharedDetector(const SharedDetector&) = delete;
  SharedDetector& operator=(const SharedDetector&) = delete;

  // Starts the thread (no-op while running). Bindings may be added before.
  void Start();
  // Stops and joins the thread; a detection under way finishes first (a
  // Detector call cannot be interrupted) and its set is published. Then the
  // thread no longer touches any binding. Idempotent.
  void Stop();
  // Adds a stream at the end of the cycle; returns the id Remove takes (> 0).
  // May be called while running: the stream's newest frame (even one
  // published before Add) gets its turn. Refused (logged, 0 returned): a
  // binding without raw or detections, and a second binding of a detector
  // that is not shareable().
  uint64_t Add(DetectorBinding binding);
  // Removes a stream; once it returns the detector thread will not touch the
  // binding's slots, settings or metrics again (if it is detecting the
  // stream's frame, Remove waits for that set to be published). Unknown ids
  // (and 0) are ignored.
  void Remove(uint64_t id);

  std::string name() const;
  // False for a detector that keeps per-camera state (motion, motion+X:
  // Detector::keeps_per_camera_state): it serves one stream only, so streams
  // naming it need one SharedDetector each.
  bool shareable() const;
  size_t bindings() const;
  // Over all streams, as DetectorStage::activity.
  DetectorActivity activity() const;
  // One stream's figures; nullopt for an unknown id.
  std::optional<BindingStats> stats(uint64_t id) const;
  // How often the thread woke from sleeping for lack of work (for tests
  // and diagnosis: an idle detector's count stays flat).
  uint64_t wakeups() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshframe::infer
