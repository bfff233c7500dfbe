#include "http/router.h"

#include <gtest/gtest.h>

namespace freshframe::http {
namespace {

TEST(RouterTest, KnownPaths) {
  EXPECT_EQ(Classify("GET", "/").route, Route::kPage);
  EXPECT_EQ(Classify("GET", "/index.html").route, Route::kPage);
  EXPECT_EQ(Classify("GET", "/stream.mjpg").route, Route::kStream);
  EXPECT_EQ(Classify("GET", "/stream.mjpg?fps=5").route, Route::kStream);
  EXPECT_EQ(Classify("GET", "/snapshot.jpg").route, Route::kSnapshot);
  EXPECT_EQ(Classify("GET", "/api/stats").route, Route::kStats);
  EXPECT_EQ(Classify("GET", "/healthz").route, Route::kHealth);
  EXPECT_EQ(Classify("GET", "/api/detections").route, Route::kDetections);
  EXPECT_EQ(Classify("GET", "/api/events").route, Route::kEvents);
  EXPECT_EQ(Classify("GET", "/api/events?x=1").route, Route::kEvents);
}

TEST(RouterTest, DetectionRoutes) {
  EXPECT_TRUE(Classify("HEAD", "/api/detections").head);
  EXPECT_EQ(Classify("HEAD", "/api/events").route, Route::kEvents);
  EXPECT_EQ(Classify("POST", "/api/events").route, Route::kMethodNotAllowed);
  EXPECT_EQ(Classify("GET", "/api/events/").route, Route::kNotFound);
  EXPECT_EQ(Classify("GET", "/api/detection").route, Route::kNotFound);
  EXPECT_EQ(RouteName(Route::kDetections), "detections");
  EXPECT_EQ(RouteName(Route::kEvents), "events");
}

TEST(RouterTest, MetricsRoute) {
  EXPECT_EQ(Classify("GET", "/metrics").route, Route::kMetrics);
  EXPECT_EQ(Classify("GET", "/metrics?x=1").route, Route::kMetrics);
  EXPECT_TRUE(Classify("HEAD", "/metrics").head);
  EXPECT_EQ(Classify("POST", "/metrics").route, Route::kMethodNotAllowed);
  EXPECT_EQ(Classify("GET", "/metrics/").route, Route::kNotFound);
  EXPECT_EQ(RouteName(Route::kMetrics), "metrics");
}

TEST(RouterTest, WebSocketRoute) {
  EXPECT_EQ(Classify("GET", "/ws/stream").route, Route::kWebSocket);
  EXPECT_EQ(Classify("GET", "/ws/stream?fps=5&mirror=1").route, Route::kWebSocket);
  // Any method reaches the handler, which refuses it as a bad handshake.
  EXPECT_EQ(Classify("POST", "/ws/stream").route, Route::kWebSocket);
  EXPECT_TRUE(Classify("HEAD", "/ws/stream").head);
  EXPECT_EQ(Classify("GET", "/ws/stream/").route, Route::kNotFound);
  EXPECT_EQ(Classify("GET", "/ws").route, Route::kNotFound);
  EXPECT_EQ(RouteName(Route::kWebSocket), "websocket");
}

TEST(RouterTest, ClockRoute) {
  EXPECT_EQ(Classify("GET", "/api/clock").route, Route::kClock);
  EXPECT_EQ(Classify("GET", "/api/clock?token=x").route, Route::kClock);
  EXPECT_TRUE(Classify("HEAD", "/api/clock").head);
  EXPECT_EQ(Classify("POST", "/api/clock").route, Route::kMethodNotAllowed);
  EXPECT_EQ(Classify("POST", "/api/clock").allow, "GET, HEAD");
  EXPECT_EQ(RouteName(Route::kClock), "clock");
}

TEST(RouterTest, ConfigTakesPostAndNothingElseDoes) {
  EXPECT_EQ(Classify("GET", "/api/config").route, Route::kConfig);
  EXPECT_TRUE(Classify("HEAD", "/api/config").head);
  const RouteResult post = Classify("POST", "/api/config?token=x");
  EXPECT_EQ(post.route, Route::kConfigUpdate);
  EXPECT_FALSE(post.head);
  EXPECT_EQ(post.resource, Route::kConfig);
  for (const char* method : {"PUT", "DELETE", "PATCH", "OPTIONS", "post"}) {
    const RouteResult r = Classify(method, "/api/config");
    EXPECT_EQ(r.route, Route::kMethodNotAllowed) << method;
    EXPECT_EQ(r.resource, Route::kConfig) << method;
    EXPECT_EQ(r.allow, "GET, HEAD, POST") << method;
  }
  // POST anywhere else: 405 with the read-only methods, or 404.
  for (const char* path : {"/", "/api/stats", "/stream.mjpg", "/snapshot.jpg", "/metrics",
                           "/api/detections", "/healthz"}) {
    const RouteResult r = Classify("POST", path);
    EXPECT_EQ(r.route, Route::kMethodNotAllowed) << path;
    EXPECT_EQ(r.allow, "GET, HEAD") << path;
    EXPECT_NE(r.resource, Route::kConfig) << path;
  }
  EXPECT_EQ(Classify("POST", "/api/config/").route, Route::kNotFound);
  EXPECT_EQ(Classify("POST", "/api/configs").route, Route::kNotFound);
  EXPECT_EQ(RouteName(Route::kConfig), "config");
  EXPECT_EQ(RouteName(Route::kConfigUpdate), "config-update");
}

TEST(RouterTest, ConfigUpdatesAndWhepOffersHaveTheirOwnBodyLimits) {
  EXPECT_EQ(BodyLimit(Classify("POST", "/api/config").route), kConfigBodyLimit);
  EXPECT_EQ(kConfigBodyLimit, 4096U);
  EXPECT_EQ(BodyLimit(Classify("GET", "/api/config").route), 0U);
  EXPECT_EQ(BodyLimit(Classify("POST", "/api/stats").route), 0U);
  EXPECT_EQ(BodyLimit(Classify("GET", "/stream.mjpg").route), 0U);
}

TEST(RouterTest, H264Routes) {
  EXPECT_EQ(Classify("GET", "/stream.h264").route, Route::kH264Stream);
  EXPECT_TRUE(Classify("HEAD", "/stream.h264").head);
  EXPECT_EQ(Classify("POST", "/stream.h264").route, Route::kMethodNotAllowed);
  // As /ws/stream: any method goes to the handshake, which refuses it.
  EXPECT_EQ(Classify("GET", "/ws/h264").route, Route::kH264WebSocket);
  EXPECT_EQ(Classify("POST", "/ws/h264").route, Route::kH264WebSocket);
  const RouteResult prefixed = Classify("GET", "/streams/cam1/ws/h264");
  EXPECT_EQ(prefixed.route, Route::kH264WebSocket);
  EXPECT_EQ(prefixed.stream_name, "cam1");
  EXPECT_EQ(RouteName(Route::kH264Stream), "stream-h264");
  EXPECT_EQ(RouteName(Route::kH264WebSocket), "websocket-h264");
}

TEST(RouterTest, WhepTakesPostAndItsSessionsDelete) {
  EXPECT_EQ(Classify("POST", "/whep").route, Route::kWhep);
  const RouteResult get = Classify("GET", "/whep");
  EXPECT_EQ(get.route, Route::kMethodNotAllowed);
  EXPECT_EQ(get.allow, "POST");
  const RouteResult end = Classify("DELETE", "/streams/cam1/whep/0123abcd");
  EXPECT_EQ(end.route, Route::kWhepSession);
  EXPECT_EQ(end.stream_name, "cam1");
  EXPECT_EQ(end.whep_id, "0123abcd");
  // No trickle ICE: PATCH is refused with Allow: DELETE, as the draft allows.
  const RouteResult patch = Classify("PATCH", "/whep/0123abcd");
  EXPECT_EQ(patch.route, Route::kMethodNotAllowed);
  EXPECT_EQ(patch.allow, "DELETE");
  EXPECT_EQ(Classify("DELETE", "/whep/").route, Route::kNotFound);
  EXPECT_EQ(Classify("DELETE", "/whep/ABC").route, Route::kNotFound);
  EXPECT_EQ(Classify("DELETE", "/whep/../x").route, Route::kNotFound);
  EXPECT_EQ(Classify("DELETE", "/whep/" + std::string(kMaxWhepId + 1, 'a')).route,
            Route::kNotFound);
  EXPECT_EQ(BodyLimit(Route::kWhep), kWhepBodyLimit);
}

TEST(RouterTest, MjpgStreamerCompatibleActions) {
  EXPECT_EQ(Classify("GET", "/?action=stream").route, Route::kStream);
  EXPECT_EQ(Classify("GET", "/?action=snapshot").route, Route::kSnapshot);
  EXPECT_EQ(Classify("GET", "/?foo=1&action=stream").route, Route::kStream);
  EXPECT_EQ(Classify("GET", "/?action=bogus").route, Route::kNotFound);
}

TEST(RouterTest, UnknownPathsAndMethods) {
  EXPECT_EQ(Classify("GET", "/nope").route, Route::kNotFound);
  EXPECT_EQ(Classify("GET", "/stream.mjpg/x").route, Route::kNotFound);
  EXPECT_EQ(Classify("POST", "/").route, Route::kMethodNotAllowed);
  EXPECT_EQ(Classify("DELETE", "/stream.mjpg").route, Route::kMethodNotAllowed);
  EXPECT_EQ(Classify("POST", "/nope").route, Route::kNotFound);
  EXPECT_EQ(Classify("GET", "*").route, Route::kBadRequest);
  EXPECT_EQ(Classify("GET", "").route, Route::kBadRequest);
}

TEST(RouterTest, HeadIsGetWithoutBody) {
  const auto r = Classify("HEAD", "/healthz");
  EXPECT_EQ(r.route, Route::kHealth);
  EXPECT_EQ(r.resource, Route::kHealth);
  EXPECT_TRUE(r.head);
  EXPECT_FALSE(Classify("GET", "/healthz").head);
}

TEST(RouterTest, AbsoluteFormTargets) {
  EXPECT_EQ(Classify("GET", "http://example.com/stream.mjpg").route, Route::kStream);
  EXPECT_EQ(Classify("GET", "http://example.com").route, Route::kPage);
}

TEST(RouterTest, QueryParam) {
  EXPECT_EQ(QueryParam("/x?a=1&b=2", "b"), "2");
  EXPECT_EQ(QueryParam("/x?a=1&b=2#frag", "b"), "2");
  EXPECT_EQ(QueryParam("/x?a", "a"), "");
  EXPECT_EQ(QueryParam("/x", "a"), "");
  EXPECT_EQ(QueryParam("/x?ab=1", "a"), "");
}

// /streams/NAME/ carries every per-stream route of "/"; the server-wide
// ones stay at the root.
TEST(RouterTest, StreamPrefixCarriesThePerStreamRoutes) {
  const struct {
    const char* target;
    Route route;
  } cases[] = {{"/streams/cam1/", Route::kPage},
               {"/streams/cam1/index.html", Route::kPage},
               {"/streams/cam1/stream.mjpg?fps=5", Route::kStream},
               {"/streams/cam1/?action=stream", Route::kStream},
               {"/streams/cam1/snapshot.jpg", Route::kSnapshot},
               {"/streams/cam1/ws/stream", Route::kWebSocket},
               {"/streams/cam1/api/stats", Route::kStats},
               {"/streams/cam1/api/detections", Route::kDetections},
               {"/streams/cam1/api/events", Route::kEvents},
               {"/streams/cam1/api/config", Route::kConfig},
               {"/streams/cam1/api/clock", Route::kClock}};
  for (const auto& c : cases) {
    const RouteResult result = Classify("GET", c.target);
    EXPECT_EQ(result.route, c.route) << c.target;
    EXPECT_EQ(result.stream_name, "cam1") << c.target;
  }
  EXPECT_EQ(Classify("POST", "/streams/a-b_9/api/config").route, Route::kConfigUpdate);
  EXPECT_EQ(Classify("GET", "http://host/streams/x/stream.mjpg").stream_name, "x");
  EXPECT_EQ(Classify("GET", "/stream.mjpg").stream_name, "");
}

TEST(RouterTest, StreamPrefixRefusesOddNamesAndServerWideRoutes) {
  for (const char* target : {"/streams/", "/streams//stream.mjpg", "/streams/a.b/stream.mjpg",
                             "/streams/%2e%2e/stream.mjpg", "/streams/cam1/healthz",
                             "/streams/cam1/metrics", "/streams/cam1/api/streams",
                             "/streams/cam1/streams/cam2/stream.mjpg", "/streams/cam1/nothing"}) {
    EXPECT_EQ(Classify("GET", target).route, Route::kNotFound) << target;
  }
  const std::string long_name(kMaxStreamName + 1, 'a');
  EXPECT_EQ(Classify("GET", "/streams/" + long_name + "/").route, Route::kNotFound);
  EXPECT_EQ(Classify("GET", "/streams/" + long_name.substr(1) + "/").route, Route::kPage);
  // Without the slash the page's relative URLs would miss: redirect.
  const RouteResult bare = Classify("GET", "/streams/cam1?token=x");
  EXPECT_EQ(bare.route, Route::kAddSlash);
  EXPECT_EQ(bare.stream_name, "cam1");
}

TEST(RouterTest, NumberedStreamsAsMjpgStreamerHasThem) {
  RouteResult result = Classify("GET", "/?action=stream_2");
  EXPECT_EQ(result.route, Route::kStream);
  EXPECT_EQ(result.stream_index, 2);
  result = Classify("GET", "/?action=snapshot_0");
  EXPECT_EQ(result.route, Route::kSnapshot);
  EXPECT_EQ(result.stream_index, 0);
  EXPECT_EQ(Classify("GET", "/?action=stream").stream_index, -1);
  for (const char* target : {"/?action=stream_", "/?action=stream_x", "/?action=stream_-1",
                             "/?action=stream_99999", "/streams/a/?action=stream_1"}) {
    EXPECT_EQ(Classify("GET", target).route, Route::kNotFound) << target;
  }
}

TEST(RouterTest, StreamsListAndNames) {
  EXPECT_EQ(Classify("GET", "/api/streams").route, Route::kStreams);
  EXPECT_EQ(Classify("POST", "/api/streams").route, Route::kMethodNotAllowed);
  EXPECT_TRUE(IsStreamName("Cam_1-b"));
  EXPECT_FALSE(IsStreamName(""));
  EXPECT_FALSE(IsStreamName("a b"));
  EXPECT_FALSE(IsStreamName("caf\xc3\xa9"));
}

}  // namespace
}  // namespace freshframe::http
