// Internal to src/http: the answers of the routes that need nothing but the
// request (the page, /healthz, /api/stats, /api/streams, /api/detections,
// /api/clock, /api/config, /metrics), kept apart from the session that reads
// requests and writes answers, as Beast's examples keep handle_request apart
// from the session. Streams, snapshots, events and WebSocket upgrades take
// the connection over and stay with the session (http_session.cpp).
//
// Thread-safety: pure functions of the server's and stream's state, callable
// from any I/O thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "http/router.h"
#include "http/session.h"

namespace freshframe::http {

struct RouteReply {
  unsigned status = 200;
  std::string type;  // Content-Type
  std::string body;
  bool close = false;  // close the connection after it (a body that was not read)
};

// What the request carries that these routes use.
struct RequestFacts {
  std::string_view content_type;
  std::string_view body;
  std::string_view peer;
  bool stream_prefixed = false;  // asked under /streams/NAME/
};

// The answer for `route` on `stream` (the stream the URL names; null only
// for the server-wide routes: /healthz, /metrics, /api/streams, /api/clock),
// or nullopt for routes the session handles itself (and /api/detections
// without a detector, a 404 the session words).
std::optional<RouteReply> AnswerRoute(const ServerContext& context, const StreamContext* stream,
                                      Route route, const RequestFacts& request);

// GET /api/streams: {"streams": [{"name", "index", "path", "source", "state",
// "width", "height", "fps", "viewers", "detector", "detection_fps",
// "latency_ms": {"p50", "p99"}}]}; source credentials are redacted by the
// pipeline's describe.
std::string StreamsJson(const ServerContext& context);

}  // namespace freshframe::http
