// Request routing: which handler answers a method and target. Pure
// functions, safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace freshframe::http {

enum class Route {
  kPage,
  kStream,
  kSnapshot,
  kStats,
  kHealth,
  kDetections,  // the newest detection set as JSON
  kEvents,      // detection sets as Server-Sent Events
  kMetrics,     // Prometheus text exposition
  kWebSocket,   // GET /ws/stream: frames as WebSocket messages (any method: the handshake checks)
  kNotFound,
  kMethodNotAllowed,
  kBadRequest,
};

struct RouteResult {
  Route route = Route::kNotFound;
  bool head = false;  // HEAD: answer headers only
};

// `method` as sent ("GET"), `target` the request-target ("/x?y=z"; the
// absolute form "http://host/x" is accepted too).
RouteResult Classify(std::string_view method, std::string_view target);

// The value of query parameter `key` in `target`, or "" if absent.
std::string QueryParam(std::string_view target, std::string_view key);

std::string_view RouteName(Route route);

}  // namespace freshframe::http
