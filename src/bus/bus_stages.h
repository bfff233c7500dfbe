// Pipeline stages that join a LatestSlot to a bus, so the same stage code
// runs in one process or split across processes.
//
// BusPublisherStage: takes each new frame from a slot and publishes it on a
// bus (never waits for readers). BusSubscriberStage: reads the newest frame
// from a bus into a slot, and keeps the figures of the stages that ran in
// other processes (from the frame's stamps), and whether its writer is live.
//
// Thread-safety: Start/Stop from the owning thread; the state accessors may
// be called from any thread. Each stage owns its BusWriter/BusReader.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <stop_token>
#include <string>

#include "bus/bus.h"
#include "core/latest_slot.h"
#include "core/metrics.h"
#include "core/stage_thread.h"

namespace freshframe::bus {

class BusPublisherStage {
 public:
  BusPublisherStage(LatestSlot<FramePtr>& in, std::unique_ptr<BusWriter> writer,
                    std::string bus_name, Metrics& metrics);

  void Start();
  void Stop();

 private:
  void Run(std::stop_token stop);

  LatestSlot<FramePtr>& in_;
  std::unique_ptr<BusWriter> writer_;
  std::string bus_name_;
  StageMetrics& metrics_;
  StageThread thread_;  // last: joined before the members it uses go
};

class BusSubscriberStage {
 public:
  // A frame older than `stale_after` (no newer one arrived) marks the input
  // stale: its writer died or stalled.
  BusSubscriberStage(std::unique_ptr<BusReader> reader, std::string bus_name,
                     LatestSlot<FramePtr>& out, Metrics& metrics,
                     std::chrono::milliseconds stale_after = std::chrono::milliseconds(1000));

  void Start();
  void Stop();

  // {"bus": name, "live": bool, "writer_alive": bool, "stale_s": seconds
  //  since the last frame (null before the first), "writer_epoch": n,
  //  "error": why the newest frame was refused (a corrupt bus), or null}
  nlohmann::json State() const;
  bool live() const;

 private:
  void Run(std::stop_token stop);
  void RecordUpstream(const Frame& frame, int64_t now_us);
  void NoteError();

  std::unique_ptr<BusReader> reader_;
  std::string bus_name_;
  LatestSlot<FramePtr>& out_;
  StageMetrics& bus_metrics_;
  // Stages that ran upstream, in other processes (looked up once).
  StageMetrics& grab_metrics_;
  StageMetrics& infer_metrics_;
  StageMetrics& annotate_metrics_;
  std::chrono::milliseconds stale_after_;
  // Relaxed: read by the stats handler for display only.
  std::atomic<int64_t> last_frame_us_{0};
  std::atomic<uint64_t> writer_epoch_{0};
  std::atomic<bool> writer_alive_{false};  // the reader is the stage thread's only
  uint64_t last_detections_sequence_ = 0;
  mutable std::mutex error_mutex_;
  std::string error_;   // the reader's error(), for State()
  StageThread thread_;  // last: joined before the members it uses go
};

}  // namespace freshframe::bus
