// WebRTC playback by WHEP (draft-ietf-wish-whep) through GStreamer 1.22's
// webrtcbin: one WhepServer per stream, one webrtcbin per viewer, every
// viewer fed the same encoded H.264 access units (never an encoder per
// viewer).
//
//   H264Stage ─sink─► WhepServer ─► per peer: appsrc ! rtph264pay ! webrtcbin
//
// - Offer: an SDP offer (recvonly or sendrecv video with H.264) → 201 with
//   the SDP answer (all ICE candidates in it: no trickle), answering with
//   the payload type the offer proposed; 400/406 saying what was missing,
//   503 beyond max_peers, 500 if webrtcbin fails.
// - Each peer holds a Demand::Hold while it is connected (the encoder runs
//   only while peers watch, and one that was idle starts with an IDR), asks
//   for an IDR as it connects (KeyReason::kJoin), and
//   follows "skip to the next keyframe" (h264/keyframe_gate.h): a peer whose
//   pipeline is not taking frames drops to the next IDR and asks for one
//   (kGap). A browser's PLI/FIR asks for one too (kPli); KeyframeRequests
//   coalesces and rate-limits them all.
// - A peer ends with End (DELETE), when its connection fails or closes, when
//   ICE stays disconnected for `disconnect_timeout_s`, when its player sends
//   no RTCP for `silence_timeout_s`, or with the server.
//
// Thread-safety and ownership: every member may be called from any thread.
// `done` is called exactly once, on any thread (the caller's for a refused
// offer, a GStreamer thread otherwise), with no lock held: it may call the
// WhepServer, but must not block for long (it runs on webrtcbin's thread).
// The server owns one GLib main loop thread (its own GMainContext) on which
// pipelines are built and torn down; the access unit sink runs on the
// encoder's thread and only pushes into appsrcs (no blocking). The demand,
// keyframe requests and whatever `subscribe` refers to must outlive the
// WhepServer; the destructor ends every peer and joins its thread.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "core/demand.h"
#include "h264/h264.h"

namespace freshframe::webrtc {

struct WhepOptions {
  size_t max_peers = 16;
  // When set, the answer carries host candidates on this address only (the
  // ICE agent still listens on every interface, but peers learn only this).
  std::string bind_address;
  // How long an offer waits for ICE gathering before answering with the
  // candidates found so far.
  double gather_timeout_s = 2.0;
  // A peer whose ICE stays disconnected this long is removed.
  double disconnect_timeout_s = 5.0;
  // A peer answered but never connected (the player gave up) is removed
  // after this long.
  double connect_timeout_s = 15.0;
  // A connected peer from which no RTCP came this long is removed: players
  // send receiver reports every second or so (GStreamer's every 5 s at
  // most), and one that vanished without DELETE sends none, while ICE
  // without consent checks would never notice.
  double silence_timeout_s = 15.0;
  // A peer's queue in its appsrc: beyond this many bytes waiting (the
  // pipeline is not taking them) it skips to the next IDR.
  size_t max_queued_bytes = 512 * 1024;
};

// The WHEP answer (the app converts it to http::WhepAnswer).
struct Answer {
  unsigned status = 201;  // 201 with the SDP answer; 400/406/503/500 with why
  std::string body;       // the SDP answer, or the error in one line
  std::string id;         // 201 only: the peer's id, 128 random bits in hex
  std::string etag;       // 201 only; unquoted (http quotes it)
};

// Subscribes an access unit sink to the stream's encoder (H264Stage::
// Subscribe): it is called until the returned handle is released.
using SubscribeFn = std::function<std::shared_ptr<void>(h264::AccessUnitSink)>;

class WhepServer {
 public:
  WhepServer(WhepOptions options, SubscribeFn subscribe, Demand& demand,
             h264::KeyframeRequests& keyframes);
  ~WhepServer();
  WhepServer(const WhepServer&) = delete;
  WhepServer& operator=(const WhepServer&) = delete;

  // Starts a peer for the SDP offer `sdp` from `peer` (an address, for the
  // log and Stats) and calls `done` once with the answer. The peer keeps
  // `hold` (http's places in its client limits) until it ends; a refused
  // offer releases it at once.
  void Offer(std::string sdp, std::string peer, std::function<void(Answer)> done,
             std::shared_ptr<void> hold = nullptr);
  // Ends the peer `id`; false if there is none.
  bool End(std::string_view id);
  // {"peers", "max_peers", "clients": [{"id", "peer", "state", "sent_frames",
  //  "bytes", "skips_to_key", "dropped", "pli", "connected_s"}]}.
  nlohmann::json Stats() const;
  // Peers live or being negotiated.
  size_t peers() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace freshframe::webrtc
