// One WHEP viewer: appsrc ! rtph264pay ! capsfilter ! webrtcbin, fed the
// stream's shared access units through a KeyframeGate. Internal to the
// webrtc module (whep.cpp owns the peers).
//
// Thread-safety: Build and Teardown run on the server's GLib thread;
// OnAccessUnit on the encoder's thread; the GStreamer callbacks on
// GStreamer's threads. The gate and counters are guarded by `mutex`.
// Callbacks reach the server only through `Hooks`, never after Teardown
// returned (it disconnects them first).
#pragma once

// webrtcbin's library is "unstable API" (it warns without this); we keep to
// what 1.22 has.
#define GST_USE_UNSTABLE_API 1
#include <gst/gst.h>
#include <gst/sdp/sdp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/demand.h"
#include "encode/encode.h"
#include "h264/h264.h"
#include "h264/keyframe_gate.h"
#include "webrtc/sdp_offer.h"
#include "webrtc/whep.h"

namespace freshframe::webrtc {

inline const encode::EncodedFrame& FrameOf(const encode::EncodedFramePtr& unit) { return *unit; }
using PeerGate = h264::KeyframeGate<encode::EncodedFramePtr, &FrameOf>;

enum class PeerState { kNegotiating, kConnecting, kConnected, kEnded };

class Peer : public std::enable_shared_from_this<Peer> {
 public:
  // What a peer asks of its server, from any thread.
  struct Hooks {
    // Runs `task` on the server's GLib thread (dropped once it stops).
    std::function<void(std::function<void()> task, unsigned delay_ms)> post;
    // Removes this peer (it is then torn down on the server's thread).
    std::function<void(const std::string& id)> remove;
  };

  Peer(std::string id, std::string address, const WhepOptions& options, Demand& demand,
       h264::KeyframeRequests& keyframes, Hooks hooks, std::function<void(Answer)> done,
       std::shared_ptr<void> hold);
  ~Peer();
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  // Builds the pipeline for `choice`, subscribes to the access units and
  // answers `offer` (owned from here on); calls done() once, whatever happens.
  void Start(GstSDPMessage* offer, const H264Choice& choice, const SubscribeFn& subscribe);
  // Stops the pipeline and releases everything GStreamer holds of this peer;
  // an answer not given yet is a 500. Idempotent.
  void Teardown();

  const std::string& id() const { return id_; }
  nlohmann::json Stats() const;

 private:
  static void OnRemoteSet(GstPromise* promise, gpointer data);
  static void OnAnswerCreated(GstPromise* promise, gpointer data);
  static void OnLocalSet(GstPromise* promise, gpointer data);
  static void OnGatheringState(GstElement* webrtc, GParamSpec* spec, gpointer data);
  static void OnConnectionState(GstElement* webrtc, GParamSpec* spec, gpointer data);
  static void OnIceState(GstElement* webrtc, GParamSpec* spec, gpointer data);
  static void OnRtcpFrom(GstElement* rtpbin, guint session, guint ssrc, gpointer data);
  static void OnNeedData(GstElement* appsrc, guint length, gpointer data);
  static GstBusSyncReply OnBusMessage(GstBus* bus, GstMessage* message, gpointer data);
  static GstPadProbeReturn OnUpstreamEvent(GstPad* pad, GstPadProbeInfo* info, gpointer data);

  bool Build(const H264Choice& choice);
  // A GstPromise whose change function calls `step` with this peer, if it
  // still exists.
  GstPromise* Promise(void (*step)(GstPromise*, gpointer));
  void Fail(unsigned status, std::string message);
  void Finish();  // the answer, once gathering is over (or timed out)
  void OnAccessUnit(const encode::EncodedFramePtr& unit);
  // Every second while connected: removes the peer once its player is silent.
  void WatchSilence();
  void PushQueuedLocked();  // gate → appsrc while the appsrc has room

  const std::string id_;
  const std::string address_;
  const WhepOptions options_;
  h264::KeyframeRequests& keyframes_;
  const Hooks hooks_;
  const std::string etag_;
  Demand& demand_;

  std::function<void(Answer)> done_;
  std::atomic<bool> answered_{false};
  // Set once set-local-description is done; gathering may finish earlier.
  std::atomic<bool> local_set_{false};
  std::atomic<PeerState> state_{PeerState::kNegotiating};
  std::atomic<int64_t> disconnected_since_us_{0};
  std::atomic<int64_t> last_rtcp_us_{0};  // the player's last RTCP packet

  // Owned by the server's GLib thread (Build/Teardown).
  GstElement* pipeline_ = nullptr;
  GstElement* appsrc_ = nullptr;
  GstElement* webrtc_ = nullptr;
  GstElement* rtpbin_ = nullptr;  // webrtcbin's, for on-ssrc-active (a ref)
  gulong probe_ = 0;
  std::shared_ptr<void> subscription_;
  std::shared_ptr<void> client_hold_;  // http's client-limit places, to Teardown

  mutable std::mutex mutex_;
  PeerGate gate_;
  // Taken once connected (the encoder then starts, if idle, with an IDR:
  // the quickest first picture), released at Teardown.
  std::optional<Demand::Hold> hold_;
  int64_t connected_us_ = 0;
  uint64_t sent_frames_ = 0;
  uint64_t bytes_ = 0;
  uint64_t pli_ = 0;
};

}  // namespace freshframe::webrtc
