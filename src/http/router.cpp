#include "http/router.h"

namespace freshframe::http {
namespace {

constexpr std::string_view kConfigAllow = "GET, HEAD, POST";

std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find_first_of("?#"));
}

// Strips "http://host" from an absolute-form target (RFC 9112 3.2.2).
std::string_view OriginForm(std::string_view target) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.substr(0, scheme.size()) == scheme) {
      const auto slash = target.find('/', scheme.size());
      return slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  return target;
}

}  // namespace

std::string QueryParam(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

RouteResult Classify(std::string_view method, std::string_view target) {
  target = OriginForm(target);
  if (target.empty() || target.front() != '/') return {Route::kBadRequest, false};
  const std::string_view path = PathOf(target);
  Route route = Route::kNotFound;
  if (path == "/" || path == "/index.html") {
    // mjpg-streamer's URLs, which OctoPrint and Home Assistant already use.
    const std::string action = QueryParam(target, "action");
    if (action.empty()) {
      route = Route::kPage;
    } else if (action == "stream") {
      route = Route::kStream;
    } else if (action == "snapshot") {
      route = Route::kSnapshot;
    }
  } else if (path == "/stream.mjpg") {
    route = Route::kStream;
  } else if (path == "/snapshot.jpg") {
    route = Route::kSnapshot;
  } else if (path == "/api/stats") {
    route = Route::kStats;
  } else if (path == "/healthz") {
    route = Route::kHealth;
  } else if (path == "/api/detections") {
    route = Route::kDetections;
  } else if (path == "/api/events") {
    route = Route::kEvents;
  } else if (path == "/metrics") {
    route = Route::kMetrics;
  } else if (path == "/ws/stream") {
    route = Route::kWebSocket;
  } else if (path == "/api/clock") {
    route = Route::kClock;
  } else if (path == "/api/config") {
    route = Route::kConfig;
  }
  if (route == Route::kNotFound) return {route, false, route};
  // A WebSocket handshake must be a GET; any other method is a bad handshake
  // (400), which the WebSocket handler answers.
  if (route == Route::kWebSocket) return {route, method == "HEAD", route};
  if (method == "GET") return {route, false, route};
  if (method == "HEAD") return {route, true, route};
  // The only route that changes anything; every other one is read-only.
  if (route == Route::kConfig) {
    if (method == "POST") return {Route::kConfigUpdate, false, route, kConfigAllow};
    return {Route::kMethodNotAllowed, false, route, kConfigAllow};
  }
  return {Route::kMethodNotAllowed, false, route};
}

size_t BodyLimit(Route route) { return route == Route::kConfigUpdate ? kConfigBodyLimit : 0; }

std::string_view RouteName(Route route) {
  switch (route) {
    case Route::kPage:
      return "page";
    case Route::kStream:
      return "stream";
    case Route::kSnapshot:
      return "snapshot";
    case Route::kStats:
      return "stats";
    case Route::kHealth:
      return "health";
    case Route::kDetections:
      return "detections";
    case Route::kEvents:
      return "events";
    case Route::kMetrics:
      return "metrics";
    case Route::kWebSocket:
      return "websocket";
    case Route::kClock:
      return "clock";
    case Route::kConfig:
      return "config";
    case Route::kConfigUpdate:
      return "config-update";
    case Route::kNotFound:
      return "not-found";
    case Route::kMethodNotAllowed:
      return "method-not-allowed";
    case Route::kBadRequest:
      return "bad-request";
  }
  return "unknown";
}

}  // namespace freshframe::http
