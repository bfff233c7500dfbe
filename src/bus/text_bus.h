// Short texts over a bus: how `infer` hands its detections (the JSON of
// each detection set, as GET /api/detections and /api/events give it) to a
// `serve` process, next to the annotated frames.
//
// A text travels as a one-row 8-bit gray frame whose bytes are the text,
// padded with spaces to a multiple of kTextPadBytes. Trailing spaces are
// JSON whitespace, so the padded bytes are still the same JSON document;
// the padding keeps the frame's size (and so the bus object) from changing
// with every text's length. docs/bus-protocol.md ("Text buses") has the
// details for readers in other languages. Newest-only like every bus: a
// reader that was slow gets the newest text and skips the others.
//
// Thread-safety: Start/Stop from the owning thread. Each stage owns its
// BusWriter/BusReader and runs one thread.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "bus/bus.h"
#include "core/frame.h"
#include "core/latest_slot.h"
#include "core/stage_thread.h"

namespace freshframe::bus {

using TextPtr = std::shared_ptr<const std::string>;

inline constexpr size_t kTextPadBytes = 4096;

// The frame that carries `text` (empty text: one pad of spaces).
Frame TextToFrame(std::string_view text, uint64_t sequence);
// The text of a frame made by TextToFrame, without the padding; nullopt
// for a frame that is not one row of 8-bit gray.
std::optional<std::string> TextFromFrame(const Frame& frame);

// Publishes each new text from `in` on a bus (never waits for readers).
class TextPublisherStage {
 public:
  TextPublisherStage(LatestSlot<TextPtr>& in, std::unique_ptr<BusWriter> writer,
                     std::string bus_name);

  void Start();
  void Stop();

 private:
  void Run(std::stop_token stop);

  LatestSlot<TextPtr>& in_;
  std::unique_ptr<BusWriter> writer_;
  std::string bus_name_;
  StageThread thread_;  // last: joined before the members it uses go
};

// Reads the newest text from a bus into `out`. A writer that has not started
// yet (or died) is waited for; its replacement is picked up by the bus.
class TextSubscriberStage {
 public:
  TextSubscriberStage(std::unique_ptr<BusReader> reader, std::string bus_name,
                      LatestSlot<TextPtr>& out);

  void Start();
  void Stop();

  const std::string& bus_name() const { return bus_name_; }
  // Texts received so far (relaxed: for display only).
  uint64_t received() const { return received_.load(std::memory_order_relaxed); }

 private:
  void Run(std::stop_token stop);

  std::unique_ptr<BusReader> reader_;
  std::string bus_name_;
  LatestSlot<TextPtr>& out_;
  std::atomic<uint64_t> received_{0};
  StageThread thread_;  // last: joined before the members it uses go
};

}  // namespace freshframe::bus
