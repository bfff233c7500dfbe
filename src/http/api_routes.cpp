#include "http/api_routes.h"

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "http/prometheus.h"

namespace freshframe::http {
namespace {

constexpr std::string_view kJson = "application/json";
// Before the first set: an empty one of the usual shape, so that a client
// polling from start-up needs no special case (no detector at all is a 404).
constexpr std::string_view kNoDetectionsYet =
    R"({"sequence":0,"detections":[],"detector_running":true})";

RouteReply Json(unsigned status, std::string body) { return {status, std::string(kJson), body}; }

RouteReply Reply(const JsonReply& reply) {
  // The body was read in full unless it was too large: only then close.
  return {reply.status, std::string(kJson), reply.body, reply.status == 413};
}

std::string StatsJson(const ServerContext& context, const StreamContext& stream) {
  const int64_t now = MonotonicMicros();
  nlohmann::json out = stream.Describe();
  out["stream"] = stream.name;
  out["streams"] = context.streams.size();
  out["version"] = FRESHFRAME_VERSION;
  out["uptime_s"] = static_cast<double>(now - context.started_us) / 1e6;
  out["now_us"] = now;
  out["stages"] = stream.deps.metrics.ToJson(now);
  out["clients"] = stream.clients.ToJson(now);
  out["client_count"] = out["clients"].size();
  out["watchers"] = stream.deps.demand.watchers();
  out["variants"] = stream.variants.ToJson();
  out["rejected"] = context.admission.RejectedJson();
  return out.dump();
}

std::string MetricsText(const ServerContext& context) {
  const auto streams = context.streams.All();
  std::vector<nlohmann::json> described;
  described.reserve(streams.size());
  for (const auto& stream : streams) described.push_back(stream->Describe());
  std::vector<StreamFigures> figures;
  for (size_t i = 0; i < streams.size(); ++i) {
    figures.push_back(
        {streams[i]->name, streams[i]->deps.metrics, streams[i]->clients, described[i]});
  }
  return RenderPrometheus(figures, MonotonicMicros(), context.started_us, FRESHFRAME_VERSION);
}

// The frames a stage handled per second and its latency since capture.
nlohmann::json StageFigures(const Metrics& metrics, const char* stage, int64_t now) {
  const StageMetrics* found = metrics.Find(stage);
  if (found == nullptr) return nullptr;
  const Percentiles latency = found->Latency(now);
  return {{"fps", found->Fps(now)}, {"p50", latency.p50}, {"p99", latency.p99}};
}

nlohmann::json StreamSummary(const StreamContext& stream, size_t index, int64_t now) {
  const nlohmann::json described = stream.Describe();
  const nlohmann::json source = described.value("source", nlohmann::json::object());
  // A grabber's state (live, reconnecting, ended); a bus input is live or
  // has no signal.
  std::string state = source.value("state", std::string());
  if (state.empty()) state = stream.SourceLive() ? "live" : "no signal";
  const SourceFormat format = stream.Source();
  const nlohmann::json capture = StageFigures(stream.deps.metrics, "capture", now);
  const nlohmann::json sent = StageFigures(stream.deps.metrics, "send", now);
  const nlohmann::json encoded = StageFigures(stream.deps.metrics, "encode", now);
  const nlohmann::json detected = StageFigures(stream.deps.metrics, "infer", now);
  // Capture-to-sent if anyone watches, else capture-to-encoded.
  const nlohmann::json& latency = sent.is_null() ? encoded : sent;
  const auto figure = [](const nlohmann::json& figures, const char* key) {
    return figures.is_null() ? 0.0 : figures.value(key, 0.0);
  };
  return {{"name", stream.name},
          {"index", index},
          {"path", "streams/" + stream.name + "/"},
          {"source", source.value("spec", std::string())},
          {"state", state},
          {"width", format.width},
          {"height", format.height},
          {"fps", capture.is_null() ? figure(encoded, "fps") : figure(capture, "fps")},
          {"viewers", stream.clients.Count()},
          {"detector", described.value("detector", std::string("none"))},
          {"detection_fps", figure(detected, "fps")},
          {"latency_ms", {{"p50", figure(latency, "p50")}, {"p99", figure(latency, "p99")}}}};
}

}  // namespace

std::string StreamsJson(const ServerContext& context) {
  const int64_t now = MonotonicMicros();
  nlohmann::json list = nlohmann::json::array();
  const auto streams = context.streams.All();
  for (size_t i = 0; i < streams.size(); ++i) list.push_back(StreamSummary(*streams[i], i, now));
  return nlohmann::json{{"streams", std::move(list)}}.dump();
}

std::optional<RouteReply> AnswerRoute(const ServerContext& context, const StreamContext* target,
                                      Route route, const RequestFacts& request) {
  switch (route) {
    case Route::kHealth:
      return RouteReply{200, "text/plain; charset=utf-8", "ok\n"};
    case Route::kStreams:
      return Json(200, StreamsJson(context));
    case Route::kMetrics:
      return RouteReply{200, std::string(kPrometheusContentType), MetricsText(context)};
    case Route::kClock:
      return Json(200, ClockJson());
    default:
      break;
  }
  if (target == nullptr) return std::nullopt;
  const StreamContext& stream = *target;
  switch (route) {
    case Route::kPage: {
      // The grid at / while several streams are served; a stream's page
      // under its own prefix, and at / for one stream.
      const bool grid = !request.stream_prefixed && context.streams.size() > 1 &&
                        !context.options.grid_page.empty();
      return RouteReply{200, "text/html; charset=utf-8",
                        std::string(grid ? context.options.grid_page : stream.deps.page)};
    }
    case Route::kStats:
      return Json(200, StatsJson(context, stream));
    case Route::kDetections: {
      if (stream.deps.detections == nullptr) return std::nullopt;  // the session's 404
      const auto latest = stream.deps.detections->Latest();
      return Json(200, std::string(latest && latest->value ? *latest->value : kNoDetectionsYet));
    }
    case Route::kConfig:
      return Reply(GetConfig(stream));
    case Route::kConfigUpdate:
      return Reply(PostConfig(stream, request.content_type, request.body, request.peer));
    default:
      return std::nullopt;
  }
}

}  // namespace freshframe::http
