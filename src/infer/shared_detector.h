// SharedDetector: one loaded detector serving the raw frames of several
// streams, fairly, on one thread.
//
// Policy ("newest frame of each, round robin"): each stream bound to the
// detector has a turn in a fixed cycle; on its turn a stream's newest raw
// frame is detected if it is newer than the last one detected and if the
// stream's own rate cap (max_fps) allows it now, else the turn passes. There
// is never a queue of frames: a stream whose frames came while others were
// being detected just offers its newest one on its next turn. A stream whose
// detection is switched off (LiveSettings::detector false) costs nothing but
// the check (it publishes the one "detector off" set, as DetectorStage did).
// While no stream has work, the thread sleeps until a bound raw slot
// publishes (or a cap expires).
//
// Each binding reports into its own StageMetrics (the stream's "infer"), so
// detection rate and latency are per stream.
//
// Thread-safety: Add/Remove/Start/Stop are called from the owning thread(s)
// (any, serialised by the caller or not: they lock). Everything a binding
// points to must stay alive until Remove(id) has returned (Remove waits until
// the detector thread no longer uses it) or the SharedDetector is stopped.
// activity() and bindings() may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/frame.h"
#include "core/latest_slot.h"
#include "core/live_settings.h"
#include "core/metrics.h"
#include "infer/infer.h"

namespace freshframe::infer {

struct DetectorBinding {
  LatestSlot<FramePtr>* raw = nullptr;                 // the stream's raw frames
  LatestSlot<DetectionSetPtr>* detections = nullptr;   // its sets, for the annotator
  LatestSlot<JsonTextPtr>* json = nullptr;             // optional: sets as JSON text
  const LiveSettings* settings = nullptr;              // optional: the detector switch
  StageMetrics* metrics = nullptr;                     // the stream's "infer" stage
  double max_fps = 0;                                  // 0: no cap
};

class SharedDetector {
 public:
  explicit SharedDetector(std::unique_ptr<Detector> detector);
  ~SharedDetector();  // Stop()
  SharedDetector(const SharedDetector&) = delete;
  SharedDetector& operator=(const SharedDetector&) = delete;

  void Start();
  void Stop();
  // Adds a stream; returns the id Remove takes. May be called while running.
  uint64_t Add(DetectorBinding binding);
  // Removes a stream; once it returns the detector thread will not touch the
  // binding's slots, settings or metrics again.
  void Remove(uint64_t id);

  std::string name() const;
  size_t bindings() const;
  // Over all streams, as DetectorStage::activity.
  DetectorActivity activity() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshframe::infer
