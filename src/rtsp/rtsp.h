// RTSP server for NVRs and players (go2rtc, Frigate, Home Assistant, VLC,
// ffmpeg) through gst-rtsp-server 1.22: rtsp://HOST:PORT/stream (and
// /streams/NAME) serve the SAME encoded H.264 access units as every other
// viewer (never an encoder of its own).
//
//   H264Stage ─sink─► egress::Feed ─pusher thread─► appsrc ! h264parse !
//                                                   rtph264pay ─► RTSP clients
//
// - One media per path, shared by every client of that path
//   (gst_rtsp_media_factory_set_shared): the first client prepares it, which
//   starts the path's Feed (it holds the encoder's Demand and starts at an
//   IDR); the last client leaving unprepares it, which stops the Feed (the
//   encoder may idle again).
// - A client that cannot keep up never builds a queue: the appsrc is bounded,
//   and when it is full the access unit is dropped and the Feed restarts at
//   the next IDR (KeyReason::kGap, rate-limited by KeyframeRequests).
// - Credentials are those of HTTP: `basic_auth` ("user:pass") and `token`
//   (accepted as the Basic password with any user name, since RTSP clients
//   cannot send a Bearer header). Wrong or missing ones get 401. With
//   neither, anyone may play.
// - A client that joins a media already playing asks for an IDR
//   (KeyReason::kJoin), so it decodes at once, not at the periodic IDR.
// - Beyond `max_clients` connections (all paths together) a new client's
//   DESCRIBE (and what follows) gets 503.
// - RTP over TCP (interleaved) and over UDP both work.
//
// Thread-safety and ownership: AddStream before Start, from one thread;
// Start, Stop and Stats may be called from any thread. The server owns one
// GLib main loop thread (its own GMainContext) on which gst-rtsp-server
// accepts clients (they run on its thread pool), and one pusher thread per
// path (idle while the path has no clients). Whatever each
// SubscribeFn refers to, each Demand and each KeyframeRequests must outlive
// the server; the destructor Stops it (clients are disconnected and every
// thread joined).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "core/demand.h"
#include "core/expected.h"
#include "egress/egress.h"
#include "h264/h264.h"

namespace freshframe::rtsp {

struct RtspOptions {
  // The address to listen on: the same as HTTP's, never every interface
  // unless asked ("0.0.0.0").
  std::string bind_address = "127.0.0.1";
  int port = 8554;  // 0: any free port (Start returns it)
  // "user:pass", or "" for none.
  std::string basic_auth;
  // "" or the HTTP bearer token: accepted as the Basic password with any
  // user name.
  std::string token;
  // RTSP clients at once, all paths together; more are refused.
  size_t max_clients = 16;
  // A connection that has no session this long after it connected (it never
  // set one up, or it was refused) is closed, so that idle connections
  // cannot hold every place. 0: never.
  double idle_timeout_s = 30.0;
};

// A --rtsp-port value: a whole number 1..65535 (0 is refused: the port
// must be known to be given to clients). An Error in one line otherwise.
Expected<int> ValidatePort(std::string_view text);

class RtspServer {
 public:
  explicit RtspServer(RtspOptions options);
  ~RtspServer();  // Stop()
  RtspServer(const RtspServer&) = delete;
  RtspServer& operator=(const RtspServer&) = delete;

  // Serves the stream of `subscribe` at `path` ("/stream", "/streams/NAME").
  // Before Start only.
  void AddStream(std::string path, egress::SubscribeFn subscribe, Demand& demand,
                 h264::KeyframeRequests& keyframes);

  // Binds and starts serving: the bound port, or an Error saying why (the
  // port is in use, the address is not on this host...).
  Expected<int> Start();
  // Disconnects every client and joins the threads. Idempotent; returns
  // promptly even with clients connected.
  void Stop();

  // {"port", "clients": n, "max_clients", "streams": [{"path", "clients",
  //  "state", "frames", "keyframes", "bytes", ... (egress::OutputStatus),
  //  "skips_to_key", "dropped"}]}.
  nlohmann::json Stats() const;
  // Clients connected now, all paths together.
  size_t clients() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshframe::rtsp
