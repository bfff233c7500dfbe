// The HTTP server: page, MJPEG stream, WebSocket stream, snapshots, stats
// and health.
//
// Server::Start binds, starts its I/O threads and a fan-out thread, and
// returns; Stop (or the destructor) closes every connection and joins them.
// Frames arrive already encoded through a LatestSlot; the server never
// encodes, never sees sources or detectors. Each frame is wrapped once into
// an immutable stream part that every client sends with scatter/gather
// writes; each client has at most one write in flight and, when it finishes,
// takes the newest part (policy "newest-only": a slow client skips frames and
// never delays anyone else). Pixel variants (?mirror, ?width) are encoded by
// the VariantEncoders passed in, once per variant in use, never per client.
//
// The live settings (ConfigDeps) are read by GET /api/config, /api/stats and
// /metrics and changed by POST /api/config; the stages that obey them read
// them on their own threads.
//
// Thread-safety: Start/Stop/port/url are called from the owning thread. The
// slot, Demand, Metrics, VariantEncoders and LiveSettings passed in are
// shared with the pipeline and must outlive the Server. `describe` and
// `source_format` are called from I/O threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/demand.h"
#include "core/expected.h"
#include "core/latest_slot.h"
#include "core/live_settings.h"
#include "core/metrics.h"
#include "encode/encode.h"
#include "http/origin_policy.h"

namespace freshframe::h264 {
class H264Stage;
}

namespace freshframe::http {

struct ServerOptions {
  std::string bind = "127.0.0.1";
  uint16_t port = 8080;                                   // 0: pick a free port
  int threads = 0;                                        // I/O threads; 0: one per core
  size_t header_limit = 8 * 1024;                         // request line + headers; 431 beyond
  size_t body_limit = 16 * 1024;                          // 413 beyond
  std::chrono::milliseconds read_timeout{10'000};         // whole request
  std::chrono::milliseconds write_stall_timeout{30'000};  // one part
  std::chrono::milliseconds snapshot_timeout{3'000};      // 503 beyond

  size_t uri_limit = 2048;  // request-target bytes; 414 beyond
  // Access control (auth.h): when either is set, every route but /healthz
  // needs `Authorization: Bearer TOKEN` or `?token=TOKEN`, or Basic
  // credentials "user:pass"; 401 otherwise. Never logged.
  std::string token;
  std::string basic_auth;
  // Streaming clients (MJPEG, SSE, WebSocket); new streams get 503 beyond.
  size_t max_clients = 1000;  // 0: no limit
  // Distinct pixel variants (?mirror, ?width) encoded at a time; a request
  // for another gets 503 (variant_streams.h). 0: no limit.
  size_t max_variants = 4;
  // Open connections per remote IP address; beyond, a new connection gets a
  // 503 and is closed at once.
  size_t max_connections_per_address = 64;  // 0: no limit
  // Which pages may use the server (origin_policy.h): --allow-origin,
  // --allow-host. Checked on every route but /healthz, before auth.
  OriginPolicy origin_policy;
  // GET / while the server has several streams (one stream: its page).
  std::string_view grid_page = "";
};

// What the frames look like, for the checks of per-client stream options.
struct SourceFormat {
  int width = 0;   // of the frames the encoders get; 0: unknown
  int height = 0;  // 0: unknown
  double fps = 0;  // the source's nominal rate; 0: unknown
};

// What GET/POST /api/config work on (see http/config_api.h for the shapes).
struct ConfigDeps {
  LiveSettings* settings = nullptr;    // null: /api/config answers 404
  std::string detector_spec = "none";  // --detector; "none": no detector here
  // The keys (detector, overlay, quality, mirror) this process cannot change,
  // each with why and where to set it instead; a POST naming one gets a 400
  // that says so. Every other key is available.
  std::map<std::string, std::string, std::less<>> unavailable;
};

// WebRTC playback by WHEP (POST /whep, DELETE /whep/ID), provided by the
// webrtc module (app wires it; http never links GStreamer).
struct WhepAnswer {
  unsigned status = 201;  // 201 with the SDP answer; 400/406/503/500 with why
  std::string body;       // the SDP answer, or the error in one line
  std::string id;         // the peer's id (201 only): Location /whep/ID
  std::string etag;       // 201 only
};
struct WhepDeps {
  // Starts a peer for the SDP offer `offer` from `peer` (an address, for the
  // log) and calls `done` once, on any thread, with the answer. The peer
  // keeps `hold` (the client's places in the server's limits) until it ends.
  // Empty: WHEP is unavailable and /whep answers 404.
  std::function<void(std::string offer, std::string peer, std::shared_ptr<void> hold,
                     std::function<void(WhepAnswer)> done)>
      offer;
  // Ends the peer `id`; false if there is none.
  std::function<bool(std::string_view id)> end;
  // {"peers": n, "max_peers": n, "clients": [...]}, for /api/stats.
  std::function<nlohmann::json()> stats;
};

struct ServerDeps {
  LatestSlot<encode::EncodedFramePtr>& frames;
  Demand& demand;
  Metrics& metrics;
  std::string_view page;  // served at GET /
  // Describes the pipeline for /api/stats (source, detector, ...).
  std::function<nlohmann::json()> describe;
  // Whether frames are still coming (empty: always). While they are not, new
  // viewers and snapshots get the last frame at once instead of waiting.
  std::function<bool()> source_live;
  // The newest detection set as a JSON object (one per inferred frame), for
  // GET /api/detections and the SSE stream GET /api/events; null when this
  // process runs no detector (both answer 404 with a JSON error then).
  LatestSlot<std::shared_ptr<const std::string>>* detections = nullptr;
  // The frames' size and the source's rate (0: unknown), to check ?width and
  // ?fps of stream requests; empty: all unknown.
  std::function<SourceFormat()> source_format = nullptr;
  // Encoders of pixel variants (?mirror=1, ?width=N), one per variant in use;
  // null: such requests get a 400.
  encode::VariantEncoders* variants = nullptr;
  // The live settings; without them /api/config answers 404 and /api/stats
  // has no "config".
  ConfigDeps config = {};
  // Kept alive by the server and its sessions for as long as any of them
  // uses this stream, also after RemoveStream: what the references above
  // point into (the pipeline's parts of the stream). Null: the caller keeps
  // them alive until the Server is destroyed.
  std::shared_ptr<const void> owner = nullptr;
  // The stream's H.264 encoder (h264/h264.h): null: /ws/h264, /stream.h264
  // and /whep answer 404. Its viewers hold its demand(); it must outlive the
  // server's use of this stream, as the references above.
  h264::H264Stage* h264 = nullptr;
  WhepDeps whep = {};
};

// Several streams: a server serves any number of named streams (a registry;
// see AddStream). The first serves the URLs of a one-camera server (/,
// /stream.mjpg, /snapshot.jpg, /ws/stream, /api/...); every stream has the
// same endpoints under /streams/NAME/; /?action=stream_N and snapshot_N pick
// the N-th (0-based, mjpg-streamer's form); GET /api/streams lists them; with
// several, / is `grid_page`.
class Server {
 public:
  // Binds and starts serving `deps` as the stream `name`; an Error if the
  // address is invalid or in use.
  static Expected<std::unique_ptr<Server>> Start(const ServerOptions& options, ServerDeps deps,
                                                 std::string name = "default");
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void Stop();
  // Adds a stream at `position` in the order (clamped to the end); an Error
  // if the name is taken. Its endpoints answer from then on.
  Expected<bool> AddStream(std::string name, ServerDeps deps, size_t position = SIZE_MAX);
  // Removes a stream: its URLs answer 404 from then on, its sessions end (a
  // viewer sees its connection close) and nothing of the server touches its
  // deps after this returns, except to release deps.owner when the last
  // session is gone. False if there was none by that name.
  bool RemoveStream(const std::string& name);
  std::vector<std::string> StreamNames() const;
  uint16_t port() const;
  // http://ADDR:PORT/ with a browsable address (127.0.0.1 for 0.0.0.0).
  std::string url() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshframe::http

namespace freshframe::http {

// Checks a --bind value; an Error explains what is accepted.
Expected<std::string> ValidateBind(const std::string& bind);

}  // namespace freshframe::http
