// H.264 out: one libavcodec encode per frame for every H.264 viewer of a
// stream (WebSocket, raw HTTP, WebRTC), only while any exists.
//
//   [annotated] -> H264Stage (own thread) -> sinks (http's part stream,
//                                                   the WebRTC peers)
//
// - H264Encoder wraps one libavcodec encoder context (libx264 by default,
//   any libavcodec H.264 encoder by name) set for zero added delay: no
//   B-frames, no lookahead, no scene-cut IDRs; every frame given is out
//   before Encode returns. Annex B, SPS/PPS in band before each IDR.
// - KeyframeRequests is the one "IDR please" flag of a stream: a viewer
//   joining, one recovering from a gap, a WebRTC PLI/FIR and a client's key
//   request all set it; the encoder reads it on the next frame. Requests
//   coalesce and are rate-limited (kMinForcedInterval apart, none when the
//   periodic IDR is about to come anyway), so a flood of them costs nothing.
// - H264Stage owns the thread: it takes the newest annotated frame
//   (newest-only, like the JPEG encoder), encodes it while Demand says
//   someone watches H.264, emits a periodic IDR every `gop` as a safety net,
//   and hands every access unit, in order, to every subscribed sink. An
//   encoder error is logged, the encoder is made again and the next access
//   unit is an IDR; the JPEG paths never notice.
// - keyframe_gate.h: the per-viewer "skip to the next keyframe" policy.
//
// Thread-safety: H264Encoder is used from one thread at a time.
// KeyframeRequests and H264Stage's members may be called from any thread,
// except Start/Stop (owning thread). Sinks are called on the stage's thread,
// one access unit at a time and in order, and must not block. Access units
// are immutable and shared by every sink.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <opencv2/core/mat.hpp>

#include "core/demand.h"
#include "core/expected.h"
#include "core/frame.h"
#include "core/latest_slot.h"
#include "core/metrics.h"
#include "core/stage_thread.h"
#include "encode/encode.h"

namespace freshframe::h264 {

struct EncoderOptions {
  // A libavcodec H.264 encoder: libx264, h264_vaapi, h264_v4l2m2m,
  // h264_nvenc, libopenh264...
  std::string encoder = "libx264";
  // libx264's preset (other encoders ignore it); chosen by measurement on 2
  // cores (docs/architecture.md, "H.264").
  std::string preset = "superfast";
  // Target bitrate in kbit/s with a VBV buffer of two frames; 0: constant
  // quality (crf) with a VBV cap of `max_kbps`.
  int bitrate_kbps = 0;
  int crf = 23;
  int max_kbps = 4000;  // the VBV cap with crf, scaled for the frame size
  // Periodic IDR, a safety net for viewers who lost a frame without
  // noticing; 0: IDRs only on request.
  double gop_seconds = 2.0;
  // Threads for the encoder (slice threads, never frame threads: those hold
  // frames back). 1 leaves the other core to capture and detection.
  int threads = 1;
  // Keep the timecode strip (timecode.md) readable at low bitrates: its rows
  // get a negative QP offset (AV_FRAME_DATA_REGIONS_OF_INTEREST).
  bool protect_timecode = true;
};

// The H.264 encoders libavcodec has on this machine, by name.
std::vector<std::string> AvailableEncoders();
// An Error naming the available encoders if `name` is not one of them.
Expected<bool> CheckEncoder(std::string_view name);

// One access unit out of the encoder.
struct AccessUnit {
  std::vector<unsigned char> bytes;  // Annex B
  bool keyframe = false;             // an IDR (with SPS/PPS before it)
};

class H264Encoder {
 public:
  // Opens `options.encoder` for BGR frames of `width` x `height` (even sizes;
  // odd ones are cropped by one pixel) at about `fps` (rate control only;
  // 0: 30).
  static Expected<std::unique_ptr<H264Encoder>> Create(const EncoderOptions& options, int width,
                                                       int height, double fps);
  ~H264Encoder();
  H264Encoder(const H264Encoder&) = delete;
  H264Encoder& operator=(const H264Encoder&) = delete;

  // Encodes one 8-bit BGR frame of the size given to Create; `idr` forces
  // an IDR. The access unit of this very frame comes out (never held back);
  // an Error if the encoder fails or keeps the frame.
  Expected<AccessUnit> Encode(const cv::Mat& bgr, bool idr);
  int width() const;
  int height() const;

  struct Impl;

 private:
  explicit H264Encoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Why an IDR was asked for (counted per reason in /api/stats and /metrics).
enum class KeyReason {
  kJoin,       // a viewer started (it needs an IDR to decode anything)
  kGap,        // a viewer skipped frames and waits for an IDR
  kClient,     // a client asked (WebSocket key request)
  kPli,        // a WebRTC receiver's PLI/FIR
  kPeriodic,   // the gop safety net
  kRestart,    // the encoder was (re)started or resumed after idling
};
inline constexpr size_t kKeyReasons = 6;
std::string_view KeyReasonName(KeyReason reason);  // "join", "gap", ...

// The stream's one IDR flag. Time is CLOCK_MONOTONIC microseconds, passed in
// (tests use a fake clock).
class KeyframeRequests {
 public:
  // Forced IDRs are at least this far apart: at most about 2 per second,
  // whatever the number of requests.
  static constexpr int64_t kMinForcedIntervalUs = 500'000;

  // Asks for an IDR on the next frame (or as soon as the rate limit allows).
  // A request while one is pending is coalesced into it.
  void Request(KeyReason reason, int64_t now_us);
  // Called by the encoder for each frame: whether to force an IDR now.
  // `next_periodic_us` is when the periodic IDR is due (0: none); a pending
  // request that it will satisfy soon (within kMinForcedIntervalUs) waits
  // for it instead of forcing one more.
  bool ShouldForce(int64_t now_us, int64_t next_periodic_us);
  // Called by the encoder after each IDR it emitted (forced or periodic):
  // any pending request is satisfied.
  void OnKeyframe(int64_t now_us, bool forced);

  struct Counts {
    std::array<uint64_t, kKeyReasons> requested{};  // by reason
    std::array<uint64_t, kKeyReasons> forced{};     // IDRs forced, by the first pending reason
    uint64_t coalesced = 0;                         // requests merged into a pending one
  };
  Counts counts() const;

 private:
  mutable std::mutex mutex_;
  bool pending_ = false;
  KeyReason pending_reason_ = KeyReason::kJoin;
  int64_t last_forced_us_ = 0;
  Counts counts_;
};

// Receives every access unit, in order, on the stage's thread; must not
// block (http posts to its sessions' strands, WebRTC pushes to its appsrcs).
using AccessUnitSink = std::function<void(const encode::EncodedFramePtr&)>;

class H264Stage {
 public:
  // `fps`: the source's rate, for rate control (0: unknown). Records into
  // the stage "encode_h264" of `metrics`.
  H264Stage(EncoderOptions options, LatestSlot<FramePtr>& annotated, Metrics& metrics, double fps);
  ~H264Stage();
  H264Stage(const H264Stage&) = delete;
  H264Stage& operator=(const H264Stage&) = delete;

  void Start();
  void Stop();

  // H.264 viewers hold this (Demand::Hold) while they watch; the stage
  // encodes only while it is wanted, and the first access unit after an
  // idle spell is an IDR.
  Demand& demand() { return demand_; }
  KeyframeRequests& keyframes() { return keyframes_; }
  const EncoderOptions& options() const { return options_; }

  // Calls `sink` with every access unit from the next one on, until the
  // returned handle is released (the sink may still run once while it is
  // being released, not after the release returns).
  std::shared_ptr<void> Subscribe(AccessUnitSink sink);

  // {"encoder", "preset", "bitrate_kbps" or "crf", "gop_s", "frames",
  //  "keyframes", "bytes", "kbps" (over the last seconds), "failures",
  //  "restarts", "encoding" (bool), "idr_requested": {reason: n},
  //  "idr_forced": {reason: n}, "idr_coalesced"}.
  nlohmann::json Stats() const;

  struct Impl;

 private:
  EncoderOptions options_;
  Demand demand_;
  KeyframeRequests keyframes_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshframe::h264
