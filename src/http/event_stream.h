// Internal to src/http: turns each detection set (JSON text from the
// detector) into one immutable Server-Sent Event and hands it to every
// subscribed SSE client.
//
// One watcher thread waits on the detections slot, as Fanout's waits on the
// frame slot; clients never poll. Each event is formatted once and shared by
// every client that sends it.
//
// Thread-safety: EventStream's members may be called from any thread, except
// Start/Stop (owning thread). OnEvent is called on the watcher thread and
// must not block (clients post to their own strand).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "core/latest_slot.h"
#include "core/stage_thread.h"

namespace freshframe::http {

using DetectionsSlot = LatestSlot<std::shared_ptr<const std::string>>;

// One SSE event: "id: ...\nevent: detections\ndata: ...\n\n".
struct DetectionEvent {
  uint64_t version = 0;  // the slot's version: increasing, gaps = sets skipped
  uint64_t id = 0;       // the set's "sequence" (the slot version without one)
  std::string text;
};
using DetectionEventPtr = std::shared_ptr<const DetectionEvent>;

// The SSE id of a detection set: its "sequence" if it is a JSON object with
// an unsigned "sequence", else `fallback`.
uint64_t DetectionEventId(std::string_view json, uint64_t fallback);

// The SSE text of one detection set. The detector writes JSON on one line;
// should a text hold line breaks, each line becomes its own "data:" field
// (SSE ends a field at CR or LF; the client joins data lines with LF).
std::string FormatDetectionEvent(uint64_t id, std::string_view json);

class EventSubscriber {
 public:
  virtual ~EventSubscriber() = default;
  // A new event is available. Return false to be unsubscribed.
  virtual bool OnEvent(const DetectionEventPtr& event) = 0;
  // The stream is gone (EventStream::Close): no event will come. Called on
  // the closing thread; must not block.
  virtual void OnClosed() {}
};

class EventStream {
 public:
  // `detections` may be null (no detector): then no thread runs and no event
  // ever comes.
  explicit EventStream(DetectionsSlot* detections);

  void Start();
  void Stop();

  // Ends the stream after Stop: every subscriber is told (OnClosed) and
  // dropped; later subscribers are told at once.
  void Close();

  void Subscribe(std::weak_ptr<EventSubscriber> subscriber);
  // The newest event, or nullptr.
  DetectionEventPtr Latest() const;

 private:
  void Run(std::stop_token stop);
  void Deliver(const DetectionEventPtr& event);

  DetectionsSlot* const detections_;
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<EventSubscriber>> subscribers_;
  DetectionEventPtr latest_;
  bool closed_ = false;
  StageThread thread_;  // last: joined before the members it uses go
};

}  // namespace freshframe::http
