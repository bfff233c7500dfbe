// GET /metrics: freshframe's figures in the Prometheus text exposition
// format, version 0.0.4. Unlike /api/stats (a 5 s window), everything here is
// counted since the process started, so a scraper can take rates and
// quantiles over any range itself.
//
// Families (every one with HELP and TYPE, each once):
//   freshframe_build_info{version}                      gauge, 1
//   freshframe_uptime_seconds                           gauge
//   freshframe_streams                                  gauge
// and per stream, each labelled stream="NAME" first:
//   freshframe_source_up                                gauge, 1 live / 0 not
//   freshframe_source_state{state}                      gauge, 1 for the current state
//   freshframe_source_reconnects_total                  counter
//   freshframe_clients{route}                           gauge, streaming clients now
//   freshframe_bytes_sent_total                         counter, to streaming clients
//   freshframe_stage_frames_total{stage}                counter
//   freshframe_stage_skipped_total{stage}               counter
//   freshframe_stage_latency_seconds{stage}             histogram, since capture
//   freshframe_stage_work_seconds{stage}                histogram, the stage's own time
//   freshframe_detector_frames_total{detector}          counter (with a detector)
//   freshframe_detector_model_runs_total{detector}      counter (with a detector)
//   freshframe_jpeg_quality                             gauge, the live setting
//   freshframe_detector_enabled                         gauge, 1 running / 0 off or none
//   freshframe_mirror                                   gauge, 1 mirrored / 0 not
// The source families appear only when `describe` says something about the
// source, the last three only when it has the live settings ("config").
//
// Pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/metrics.h"
#include "http/fanout.h"

namespace freshframe::http {

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// One stream's figures. `describe` is ServerDeps::describe's object
// ("source", "input", "detection") with the live settings ("config", GET
// /api/config's object).
struct StreamFigures {
  std::string_view name;
  const Metrics& metrics;
  const ClientRegistry& clients;
  const nlohmann::json& describe;
};

// Every stream's series carry stream="NAME" (the first label); build_info,
// uptime and the stream count are the server's. `started_us` and `now_us`
// are CLOCK_MONOTONIC.
std::string RenderPrometheus(const std::vector<StreamFigures>& streams, int64_t now_us,
                             int64_t started_us, std::string_view version);

// A label value as the format wants it between double quotes: backslash,
// double quote and line feed escaped, invalid UTF-8 replaced by U+FFFD.
std::string EscapeLabelValue(std::string_view value);

// A sample value: shortest round-trip form, integers without a fraction,
// "+Inf", "-Inf", "NaN".
std::string FormatSampleValue(double value);

}  // namespace freshframe::http
