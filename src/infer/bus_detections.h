// `--detector bus:NAME`: detection sets computed by another process (a
// Python model, say) and published as JSON texts on text bus NAME
// (bus/text_bus.h), turned into DetectionSets as if a DetectorStage had
// made them, so the annotator, /api/detections, /api/events, /api/stats and
// /metrics treat the external model like a built-in detector.
//
// Each set names the raw frame it was computed on (sequence and capture_us):
// the stage keeps a small bounded ring of recent raw frames and publishes
// the set with that frame (or the newest raw frame when the named one is no
// longer held), its boxes scaled from the model's image size to the frame's.
// A set whose frame is older than max_age is not drawn. When no set has
// arrived for max_age, or the writer process is gone, the stage publishes one
// set with detector_running false, so no stale box stays on the video; the
// next set from a restarted writer is picked up (the bus follows a new
// writer by itself). Texts that are not valid sets are counted, logged once
// per bus and ignored.
//
// Thread-safety: Start/Stop from the owning thread. The stage runs two
// threads (the bus reader and the raw-frame watcher); State(), bus_name() and
// alive() may be called from any thread. The LatestSlots, Metrics and
// LiveSettings given must outlive the stage.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "bus/bus.h"
#include "core/frame.h"
#include "core/latest_slot.h"
#include "core/live_settings.h"
#include "core/metrics.h"
#include "core/stage_thread.h"
#include "infer/detections_json.h"
#include "infer/infer.h"

namespace freshframe::infer {

inline constexpr std::string_view kBusDetectorPrefix = "bus:";

struct ExternalDetectionsOptions {
  std::string bus_name;
  // Sets not replaced for this long (or computed on a frame captured this
  // long before they arrived) are not drawn.
  std::chrono::microseconds max_age = std::chrono::seconds(1);
  // The ring of recent raw frames sets are matched to: at most this many
  // frames and bytes of pixels (whichever bound is reached first).
  size_t ring_frames = 64;
  size_t ring_bytes = size_t{64} << 20;
};

// The newest raw frames, so that a set is drawn on the frame the model saw.
// Bounded in frames and in bytes of pixels; the newest frame is always kept.
// Thread-safe: every member may be called from any thread.
class RecentFrames {
 public:
  RecentFrames(size_t max_frames, size_t max_bytes);

  void Push(FramePtr frame);
  // The newest held frame with `sequence`, and with `capture_us` too unless
  // that is 0 (a restarted source counts from 1 again: the stamp tells its
  // frames apart); null if none.
  FramePtr Find(uint64_t sequence, int64_t capture_us) const;
  FramePtr Newest() const;
  size_t size() const;

 private:
  const size_t max_frames_;
  const size_t max_bytes_;
  mutable std::mutex mutex_;
  std::deque<FramePtr> frames_;  // oldest first
  size_t bytes_ = 0;
};

class ExternalDetectionsStage {
 public:
  // `reader`: bus options.bus_name. `json` (optional) also receives each set
  // as DetectionSetToJson text. `settings` (optional): while its detector()
  // is false nothing is published (one detector_running false set at the
  // switch), as DetectorStage does.
  ExternalDetectionsStage(std::unique_ptr<bus::BusReader> reader, ExternalDetectionsOptions options,
                          LatestSlot<FramePtr>& raw, LatestSlot<DetectionSetPtr>& detections,
                          Metrics& metrics, LatestSlot<JsonTextPtr>* json = nullptr,
                          const LiveSettings* settings = nullptr);
  ExternalDetectionsStage(const ExternalDetectionsStage&) = delete;
  ExternalDetectionsStage& operator=(const ExternalDetectionsStage&) = delete;

  void Start();
  void Stop();

  const std::string& bus_name() const { return options_.bus_name; }
  // "bus:NAME", the spec that made this stage.
  std::string name() const { return std::string(kBusDetectorPrefix) + options_.bus_name; }
  // A live writer published a valid set within max_age.
  bool alive() const { return alive_.load(std::memory_order_relaxed); }
  // Raw frames held for matching sets to.
  size_t held_frames() const;
  // {"bus", "alive", "writer_alive", "model" (the writer's detector name or
  //  null), "sets" (valid sets received), "rejected" (texts refused),
  //  "stale" (valid sets not drawn: their frame was older than max_age),
  //  "unmatched" (sets whose frame was no longer held), "last_error" (why
  //  the last text was refused, or null), "last_set_age_s" (null before the
  //  first), "max_age_s", "frames_held"}
  nlohmann::json State() const;

 private:
  void ReadBus(std::stop_token stop);
  void WatchRaw(std::stop_token stop);
  // One text from the bus: counted, and published if `publish`.
  void Handle(const Frame& text, int64_t now_us, bool publish);
  void Publish(const ExternalSet& set, int64_t now_us);
  void PublishOff();
  void NoteBusError();
  void Reject(const std::string& why);

  std::unique_ptr<bus::BusReader> reader_;
  const ExternalDetectionsOptions options_;
  LatestSlot<FramePtr>& raw_;
  LatestSlot<DetectionSetPtr>& detections_;
  LatestSlot<JsonTextPtr>* json_;
  const LiveSettings* settings_;
  StageMetrics& metrics_;
  RecentFrames recent_;

  // Owned by the bus thread.
  bool published_running_ = false;  // the last set published may have boxes drawn
  int64_t last_published_us_ = 0;
  bool warned_ = false;    // a refused text was logged (once per bus)
  std::string bus_error_;  // the reader's last corrupt-bus message logged
  uint64_t last_sequence_ = 0;

  // For State() from other threads. Relaxed: independent display figures.
  std::atomic<bool> alive_{false};
  std::atomic<bool> writer_alive_{false};
  std::atomic<uint64_t> sets_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> stale_{0};
  std::atomic<uint64_t> unmatched_{0};
  std::atomic<int64_t> last_set_us_{0};
  mutable std::mutex names_mutex_;
  std::string model_;       // guarded by names_mutex_
  std::string last_error_;  // guarded by names_mutex_

  // Last: joined before the members they use go.
  StageThread raw_thread_;
  StageThread bus_thread_;
};

}  // namespace freshframe::infer
