// Request routing: which handler answers a method and target. Pure
// functions, safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace freshframe::http {

enum class Route {
  kPage,
  kStream,
  kSnapshot,
  kStats,
  kHealth,
  kDetections,    // the newest detection set as JSON
  kEvents,        // detection sets as Server-Sent Events
  kMetrics,       // Prometheus text exposition
  kWebSocket,     // GET /ws/stream: frames as WebSocket messages (any method: the handshake checks)
  kClock,         // GET /api/clock: the server's CLOCK_MONOTONIC
  kConfig,        // GET /api/config: the live settings
  kConfigUpdate,  // POST /api/config: change them
  kStreams,       // GET /api/streams: every stream the server serves
  kH264Stream,    // GET /stream.h264: the Annex-B elementary stream
  kH264WebSocket,  // GET /ws/h264: H.264 access units as WebSocket messages (as kWebSocket)
  kWhep,           // POST /whep: a WebRTC offer (WHEP)
  kWhepSession,    // DELETE /whep/ID: end that WebRTC session (PATCH: 405)
  kAddSlash,       // /streams/NAME without the slash: 301 to /streams/NAME/
  kNotFound,
  kMethodNotAllowed,
  kBadRequest,
};

struct RouteResult {
  Route route = Route::kNotFound;
  bool head = false;  // HEAD: answer headers only
  // The route the path names whatever the method (kNotFound for none): for
  // kMethodNotAllowed, which resource refused the method.
  Route resource = Route::kNotFound;
  // The methods the path accepts, for the Allow header of a 405.
  std::string_view allow = "GET, HEAD";
  // Which stream the route is for: the NAME of /streams/NAME/... (empty for
  // the first stream), or the N of /?action=stream_N / snapshot_N (-1: none).
  std::string_view stream_name = {};
  long stream_index = -1;
  // The ID of /whep/ID (kWhepSession).
  std::string_view whep_id = {};
};

// Stream names: 1..64 of [A-Za-z0-9_-], so that /streams/NAME/ needs no
// escaping anywhere.
inline constexpr size_t kMaxStreamName = 64;
bool IsStreamName(std::string_view name);

// POST /api/config's body: a handful of keys; nothing legitimate comes near.
inline constexpr size_t kConfigBodyLimit = 4096;
// POST /whep's SDP offer: a browser's is 4-12 KB (every codec it has).
inline constexpr size_t kWhepBodyLimit = 64 * 1024;
// /whep/ID: the IDs the webrtc module hands out (128-bit hex) and a margin.
inline constexpr size_t kMaxWhepId = 64;

// The largest request body the route accepts (413 beyond); 0: the server's
// general limit.
size_t BodyLimit(Route route);

// `method` as sent ("GET"), `target` the request-target ("/x?y=z"; the
// absolute form "http://host/x" is accepted too). Under /streams/NAME/ the
// per-stream routes are those of "/" (the page, stream.mjpg, snapshot.jpg,
// ws/stream, stream.h264, ws/h264, whep, api/stats, api/detections,
// api/events, api/config, api/clock);
// the server-wide ones (/healthz, /metrics, /api/streams) are not.
RouteResult Classify(std::string_view method, std::string_view target);

// The value of query parameter `key` in `target`, or "" if absent.
std::string QueryParam(std::string_view target, std::string_view key);

std::string_view RouteName(Route route);

}  // namespace freshframe::http
