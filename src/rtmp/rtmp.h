// RTMP out: the stream's one H.264 encode pushed as FLV over RTMP (or
// RTMPS) to an engine that repackages it, e.g. nginx with
// libnginx-mod-rtmp writing HLS that any HTTP CDN caches
// (docs/deploy-hls.md).
//
//   H264Stage ─sink─► egress::Feed ─Next()─► RtmpPusher thread ─RTMP─► nginx ─HLS─► CDN
//
// - libavformat does the protocol: the FLV muxer over its rtmp/rtmps
//   protocol, one connection per pusher. The stream's extradata (avcC) is
//   built from the SPS/PPS of the first IDR; a new SPS (the frame size
//   changed) means a new connection with new extradata, since FLV cannot
//   change it mid-stream.
// - Timestamps come from each frame's capture stamp in milliseconds (FLV's
//   time base), relative to the first frame of the connection, never going
//   back.
// - Every connect, write and close is bounded: an AVIOInterruptCB aborts
//   it on Stop and when an I/O deadline (`io_timeout`) passes, so a stuck
//   engine (accepts TCP but reads nothing) ends the write after io_timeout;
//   meanwhile the feed skips to the next keyframe, so nothing queues and
//   the encoder's thread never waits.
// - A failed connect, a write error, EOF or a timeout closes the
//   connection, reports kRetrying with the error, waits egress::Backoff and
//   connects again; the new connection starts at an IDR (Feed::Restart). An
//   unreachable engine at start is a warning and a retry, never an exit.
// - The stream key is a secret: RedactUrl hides it for /api/stats and logs.
//
// Thread-safety and ownership: Start, Stop and Stats may be called from any
// thread (Start/Stop not concurrently with each other). The pusher owns its
// thread and connection; the destructor stops it. Whatever `subscribe`
// refers to, the Demand and the KeyframeRequests must outlive the pusher.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "core/demand.h"
#include "core/expected.h"
#include "egress/egress.h"
#include "h264/h264.h"

namespace freshframe::rtmp {

// rtmp://HOST[:PORT]/APP/KEY or rtmps://...; returns the URL as given. The
// Error is one line starting "--rtmp-out: " (no app, no key, a bad port,
// spaces or control characters, another scheme).
Expected<std::string> ValidateUrl(std::string_view url);
// `url` with its stream key (everything after the app) replaced by "***":
// what /api/stats and the logs show.
std::string RedactUrl(std::string_view url);

struct RtmpOptions {
  std::string url;  // as ValidateUrl accepts it
  double fps = 30;  // the stream's rate (FLV metadata only; stamps come from capture)
  // The longest a connect or a write may take before the connection is
  // given up (and retried).
  std::chrono::milliseconds io_timeout{3000};
};

class RtmpPusher final : public egress::Output {
 public:
  RtmpPusher(RtmpOptions options, egress::SubscribeFn subscribe, Demand& demand,
             h264::KeyframeRequests& keyframes);
  ~RtmpPusher() override;
  RtmpPusher(const RtmpPusher&) = delete;
  RtmpPusher& operator=(const RtmpPusher&) = delete;

  // Starts the feed and the pusher's thread (which connects). Idempotent.
  void Start() override;
  // Aborts any connect or write under way, closes the connection and joins
  // the thread; returns promptly even when the engine is stuck.
  void Stop() override;

  // egress::OutputStatus::Json with the feed: kind "rtmp", target the
  // redacted URL, state, error, counters, skips and drops.
  nlohmann::json Stats() const override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshframe::rtmp
