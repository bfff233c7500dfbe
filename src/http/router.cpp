#include "http/router.h"

#include <algorithm>

namespace freshframe::http {
namespace {

constexpr std::string_view kConfigAllow = "GET, HEAD, POST";
constexpr std::string_view kWhepAllow = "POST";
constexpr std::string_view kWhepSessionAllow = "DELETE";
constexpr std::string_view kWhepPrefix = "/whep/";

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

constexpr std::string_view kStreamsPrefix = "/streams/";

// "stream_3" -> 3 for `prefix` "stream_"; -1 if it is not that form.
long IndexedAction(std::string_view action, std::string_view prefix) {
  if (action.substr(0, prefix.size()) != prefix) return -1;
  const std::string_view digits = action.substr(prefix.size());
  if (digits.empty() || digits.size() > 4) return -1;
  long index = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return -1;
    index = index * 10 + (c - '0');
  }
  return index;
}

// The answer to `method` on `route`: a 405 (with Allow) for a method the
// route does not take.
RouteResult ForMethod(std::string_view method, Route route) {
  if (route == Route::kNotFound) return {route, false, route};
  // A WebSocket handshake must be a GET; any other method is a bad handshake
  // (400), which the WebSocket handler answers.
  if (route == Route::kWebSocket || route == Route::kH264WebSocket) {
    return {route, method == "HEAD", route};
  }
  // WHEP (draft-ietf-wish-whep): POST an offer; DELETE the session it made.
  // PATCH (trickle ICE) is not supported: 405, as the draft allows.
  if (route == Route::kWhep) {
    if (method == "POST") return {route, false, route, kWhepAllow};
    return {Route::kMethodNotAllowed, method == "HEAD", route, kWhepAllow};
  }
  if (route == Route::kWhepSession) {
    if (method == "DELETE") return {route, false, route, kWhepSessionAllow};
    return {Route::kMethodNotAllowed, method == "HEAD", route, kWhepSessionAllow};
  }
  if (method == "GET") return {route, false, route};
  if (method == "HEAD") return {route, true, route};
  // The only route that changes anything; every other one is read-only.
  if (route == Route::kConfig) {
    if (method == "POST") return {Route::kConfigUpdate, false, route, kConfigAllow};
    return {Route::kMethodNotAllowed, false, route, kConfigAllow};
  }
  return {Route::kMethodNotAllowed, false, route};
}

}  // namespace

bool IsStreamName(std::string_view name) {
  if (name.empty() || name.size() > kMaxStreamName) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

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
  std::string_view path = PathOf(target);
  std::string_view stream_name;
  std::string_view whep_id;
  long stream_index = -1;
  const bool prefixed = path.substr(0, kStreamsPrefix.size()) == kStreamsPrefix;
  if (prefixed) {
    const std::string_view rest = path.substr(kStreamsPrefix.size());
    const auto slash = rest.find('/');
    stream_name = rest.substr(0, slash);
    if (!IsStreamName(stream_name)) return {Route::kNotFound, false, Route::kNotFound};
    if (slash == std::string_view::npos) {
      RouteResult result = ForMethod(method, Route::kAddSlash);
      result.stream_name = stream_name;
      return result;
    }
    path = rest.substr(slash);
  }
  Route route = Route::kNotFound;
  if (path == "/" || path == "/index.html") {
    // mjpg-streamer's URLs, which OctoPrint and Home Assistant already use,
    // with its stream_N / snapshot_N for the N-th stream.
    const std::string action = QueryParam(target, "action");
    if (action.empty()) {
      route = Route::kPage;
    } else if (action == "stream") {
      route = Route::kStream;
    } else if (action == "snapshot") {
      route = Route::kSnapshot;
    } else if (!prefixed && (stream_index = IndexedAction(action, "stream_")) >= 0) {
      route = Route::kStream;
    } else if (!prefixed && (stream_index = IndexedAction(action, "snapshot_")) >= 0) {
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
  } else if (path == "/api/streams") {
    route = Route::kStreams;
  } else if (path == "/stream.h264") {
    route = Route::kH264Stream;
  } else if (path == "/ws/h264") {
    route = Route::kH264WebSocket;
  } else if (path == "/whep") {
    route = Route::kWhep;
  } else if (path.substr(0, kWhepPrefix.size()) == kWhepPrefix) {
    whep_id = path.substr(kWhepPrefix.size());
    const bool valid = !whep_id.empty() && whep_id.size() <= kMaxWhepId &&
                       std::all_of(whep_id.begin(), whep_id.end(), [](char c) {
                         return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                       });
    route = valid ? Route::kWhepSession : Route::kNotFound;
    if (!valid) whep_id = {};
  }
  const bool server_wide =
      route == Route::kHealth || route == Route::kMetrics || route == Route::kStreams;
  if (prefixed && server_wide) route = Route::kNotFound;
  RouteResult result = ForMethod(method, route);
  result.stream_name = stream_name;
  result.stream_index = stream_index;
  result.whep_id = whep_id;
  return result;
}

size_t BodyLimit(Route route) {
  if (route == Route::kConfigUpdate) return kConfigBodyLimit;
  if (route == Route::kWhep) return kWhepBodyLimit;
  return 0;
}

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
    case Route::kStreams:
      return "streams";
    case Route::kAddSlash:
      return "add-slash";
    case Route::kH264Stream:
      return "stream-h264";
    case Route::kH264WebSocket:
      return "websocket-h264";
    case Route::kWhep:
      return "whep";
    case Route::kWhepSession:
      return "whep-session";
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
