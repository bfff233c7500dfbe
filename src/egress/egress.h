// Egress: what every output that hands the encoded H.264 stream to another
// engine (RTP to Janus, RTSP for NVRs, RTMP for HLS) shares, so that each
// output is only its protocol:
//
//   H264Stage ─sink─► Feed (skip to the next keyframe) ─Next()─► output thread
//                                                              └─► engine
//
// - Feed: the hand-over from the encoder's thread to the output's own
//   thread, with the "skip to the next keyframe" policy of every H.264
//   viewer (h264/keyframe_gate.h): an output whose engine is slow or stuck
//   never builds a queue; it loses the access units it could not take and
//   asks for an IDR (rate-limited by KeyframeRequests). While started, the
//   feed holds the encoder's Demand: an output is a viewer that is always
//   there.
// - Backoff: how long to wait before reconnecting to an engine that went
//   away (0.5 s doubling to 10 s; back to 0.5 s once a connection lasted).
// - OutputStatus: the state and counters each output reports in
//   /api/stats ("outputs") and /metrics.
//
// Thread-safety: Feed's sink runs on the encoder's thread, Next on the
// output's thread; Start/Stop/Restart/Interrupt from any thread. Backoff is
// not thread-safe (one per output thread). OutputStatus may be used from
// any thread. The SubscribeFn's target, the Demand and the KeyframeRequests
// must outlive the Feed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/demand.h"
#include "encode/encode.h"
#include "h264/h264.h"
#include "h264/keyframe_gate.h"

namespace freshframe::egress {

// Subscribes an access unit sink to the stream's encoder (H264Stage::
// Subscribe); the sink is called until the returned handle is released.
using SubscribeFn = std::function<std::shared_ptr<void>(h264::AccessUnitSink)>;

class Feed {
 public:
  Feed(SubscribeFn subscribe, Demand& demand, h264::KeyframeRequests& keyframes);
  ~Feed();  // Stop()
  Feed(const Feed&) = delete;
  Feed& operator=(const Feed&) = delete;

  // Holds the demand, subscribes and asks for an IDR (KeyReason::kJoin): the
  // first access unit Next gives is an IDR. Idempotent.
  void Start();
  // Unsubscribes, releases the demand, drops what is queued and wakes Next.
  void Stop();
  bool started() const;

  // The next access unit, waiting up to `timeout`; nullptr on timeout, at
  // once while stopped, or when Interrupt was called (since the last Next).
  encode::EncodedFramePtr Next(std::chrono::milliseconds timeout);
  // Wakes a Next under way, or makes the next one return nullptr at once.
  void Interrupt();
  // The output lost what it sent (its engine restarted, or it reconnected):
  // drops what is queued and starts again at the next IDR, asking for one
  // with `reason`.
  void Restart(h264::KeyReason reason);

  // Times the output fell behind and skipped to an IDR; access units it lost.
  uint64_t skips_to_key() const;
  uint64_t dropped() const;

 private:
  static const encode::EncodedFrame& FrameOf(const encode::EncodedFramePtr& unit) { return *unit; }
  void Offer(const encode::EncodedFramePtr& unit);

  SubscribeFn subscribe_;
  Demand& demand_;
  h264::KeyframeRequests& keyframes_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  h264::KeyframeGate<encode::EncodedFramePtr, &Feed::FrameOf> gate_;
  std::unique_ptr<Demand::Hold> hold_;
  std::shared_ptr<void> subscription_;
  bool interrupted_ = false;
  // Counts of the gates replaced by Restart.
  uint64_t past_skips_ = 0;
  uint64_t past_dropped_ = 0;
};

class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds initial = std::chrono::milliseconds(500),
                   std::chrono::milliseconds max = std::chrono::seconds(10));
  // The wait before the next attempt; each call doubles the next, up to max.
  std::chrono::milliseconds Next();
  // A connection succeeded and lasted: the next failure waits `initial` again.
  void Reset();

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds next_;
};

// An output to another engine, as its owner (app) drives it: each runs its
// own thread between Start and Stop, reconnects by itself, and reports
// itself for /api/stats. The destructor of an implementation stops it.
class Output {
 public:
  virtual ~Output() = default;
  // Starts the output's thread (and its Feed: the first access unit sent is
  // an IDR). An engine that is not there is no error: it retries.
  virtual void Start() = 0;
  // Joins the thread; returns promptly even when the engine is stuck.
  virtual void Stop() = 0;
  // OutputStatus::Json(&feed) and the output's own figures.
  virtual nlohmann::json Stats() const = 0;
};

// What an output reports. `kind`: "rtp", "rtsp", "rtmp"; `target`: where it
// sends (with any secret taken out: it is shown in /api/stats and logs).
class OutputStatus {
 public:
  enum class State { kStopped, kConnecting, kConnected, kRetrying };

  OutputStatus(std::string kind, std::string target);

  // A state change; `error` says why (kRetrying) and is kept until the next
  // kConnected. Each kConnected after the first counts a reconnect.
  void Set(State state, std::string error = {});
  void CountSent(size_t bytes, bool keyframe);
  // Extra figures the output adds to its JSON (e.g. RTCP, clients), merged in.
  void SetExtra(nlohmann::json extra);

  State state() const;
  // {"kind", "target", "state": "stopped"|"connecting"|"connected"|"retrying",
  //  "error" (if any), "connects", "reconnects", "frames", "keyframes",
  //  "bytes", "since_s" (in this state)} plus the extras; `feed`'s skips and
  //  drops when given.
  nlohmann::json Json(const Feed* feed = nullptr) const;
  const std::string& kind() const { return kind_; }
  const std::string& target() const { return target_; }

 private:
  const std::string kind_;
  const std::string target_;
  mutable std::mutex mutex_;
  State state_ = State::kStopped;
  std::string error_;
  int64_t since_us_ = 0;
  uint64_t connects_ = 0;
  uint64_t frames_ = 0;
  uint64_t keyframes_ = 0;
  uint64_t bytes_ = 0;
  std::unique_ptr<nlohmann::json> extra_;
};

std::string_view StateName(OutputStatus::State state);

}  // namespace freshframe::egress
