// RenderPrometheus: exact lines for known metrics, and the structure of the
// whole exposition (tests/integration/test_metrics.py also runs it through
// promtool).
#include "http/prometheus.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace freshframe::http {
namespace {

constexpr int64_t kStartUs = 1'000'000;
constexpr int64_t kNowUs = 3'500'000;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool HasLine(const std::string& text, const std::string& line) {
  const auto lines = Lines(text);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

// The lines of `text` that start with `prefix`, in order.
std::vector<std::string> LinesStartingWith(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& line : Lines(text)) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  }
  return out;
}

// One stream's exposition with its stream="cam" label taken out again, so
// that the exact lines below read as they would for one camera; the labels
// themselves are checked by the MultiStream tests.
std::string Render(const Metrics& metrics, const ClientRegistry& clients,
                   const nlohmann::json& describe = nlohmann::json::object()) {
  std::string text = RenderPrometheus({StreamFigures{"cam", metrics, clients, describe}}, kNowUs,
                                      kStartUs, "1.2.3");
  for (const std::string_view label :
       {std::string_view("{stream=\"cam\"}"), std::string_view("stream=\"cam\",")}) {
    for (auto at = text.find(label); at != std::string::npos; at = text.find(label, at)) {
      text.erase(at, label.size());
    }
  }
  return text;
}

// The structure the text format requires, checked independently of the
// renderer: HELP then TYPE once per family, before its samples; every sample
// named after the family above it (histograms: _bucket, _sum, _count); no
// series twice; histogram buckets cumulative, ending in le="+Inf" equal to
// _count.
void ExpectWellFormed(const std::string& text) {
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  static const std::regex kHelp(R"re(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)re");
  static const std::regex kType(
      R"re(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))re");
  static const std::regex kSample(
      R"re(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+))re");
  static const std::regex kLe(R"re((.*)le="([^"]*)"\}$)re");
  std::set<std::string> families;
  std::set<std::string> series;
  std::string family;
  std::string type;
  std::string help_for;
  std::map<std::string, std::vector<std::pair<std::string, double>>> buckets;
  std::map<std::string, double> counts;
  for (const auto& line : Lines(text)) {
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      help_for = m[1];
      EXPECT_TRUE(families.insert(help_for).second) << "family twice: " << line;
    } else if (std::regex_match(line, m, kType)) {
      EXPECT_EQ(m[1], help_for) << "TYPE without HELP just before: " << line;
      family = m[1];
      type = m[2];
      if (type == "counter") {
        EXPECT_TRUE(family.ends_with("_total")) << line;
      }
    } else if (std::regex_match(line, m, kSample)) {
      const std::string name = m[1];
      const std::string series_key = name + m[2].str();
      EXPECT_TRUE(series.insert(series_key).second) << "series twice: " << line;
      const double value = std::stod(m[3].str() == "+Inf" ? "inf" : m[3].str());
      if (type == "histogram") {
        const std::string rest = m[2].str();
        if (name == family + "_bucket") {
          std::smatch le;
          ASSERT_TRUE(std::regex_match(rest, le, kLe)) << line;
          buckets[family + le[1].str()].emplace_back(le[2], value);
        } else if (name == family + "_count") {
          counts[family + (rest.empty() ? "{" : rest.substr(0, rest.size() - 1) + ",")] = value;
        } else {
          EXPECT_EQ(name, family + "_sum") << line;
        }
      } else {
        EXPECT_EQ(name, family) << line;
      }
    } else {
      ADD_FAILURE() << "not a valid line: " << line;
    }
  }
  for (const auto& [key, list] : buckets) {
    ASSERT_FALSE(list.empty());
    for (size_t i = 1; i < list.size(); ++i) {
      EXPECT_LE(list[i - 1].second, list[i].second) << key << " le=" << list[i].first;
      EXPECT_LT(std::stod(list[i - 1].first),
                std::stod(list[i].first == "+Inf" ? "inf" : list[i].first));
    }
    EXPECT_EQ(list.back().first, "+Inf") << key;
    ASSERT_TRUE(counts.contains(key)) << key;
    EXPECT_EQ(list.back().second, counts[key]) << key;
  }
}

TEST(PrometheusTest, HistogramLinesAreCumulativeWithSumAndCount) {
  Metrics metrics;
  StageMetrics& encode = metrics.Stage("encode");
  encode.Record(kNowUs, 3.0, 4.0);      // work 3 ms; 4 ms since capture
  encode.Record(kNowUs, 0.5, 1.0);      // 1 ms: exactly the le="0.001" bound
  encode.Record(kNowUs, 20.0, 7000.0);  // 7 s: above every finite bound
  ClientRegistry clients;
  const std::string text = Render(metrics, clients);

  const std::vector<std::string> latency = {
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="0.0005"} 0)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="0.001"} 1)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="0.002"} 1)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="0.005"} 2)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="0.01"} 2)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="0.02"} 2)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="0.05"} 2)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="0.1"} 2)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="0.2"} 2)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="0.5"} 2)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="1"} 2)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="2"} 2)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="5"} 2)",
      R"(freshframe_stage_latency_seconds_bucket{stage="encode",le="+Inf"} 3)",
      R"(freshframe_stage_latency_seconds_sum{stage="encode"} 7.005)",
      R"(freshframe_stage_latency_seconds_count{stage="encode"} 3)",
  };
  EXPECT_EQ(LinesStartingWith(text, "freshframe_stage_latency_seconds"), latency) << text;

  EXPECT_TRUE(
      HasLine(text, R"(freshframe_stage_work_seconds_bucket{stage="encode",le="0.0005"} 1)"))
      << text;
  EXPECT_TRUE(HasLine(text, R"(freshframe_stage_work_seconds_bucket{stage="encode",le="0.005"} 2)"))
      << text;
  EXPECT_TRUE(HasLine(text, R"(freshframe_stage_work_seconds_bucket{stage="encode",le="0.02"} 3)"))
      << text;
  EXPECT_TRUE(HasLine(text, R"(freshframe_stage_work_seconds_sum{stage="encode"} 0.0235)")) << text;
  EXPECT_TRUE(HasLine(text, R"(freshframe_stage_work_seconds_count{stage="encode"} 3)")) << text;
  EXPECT_TRUE(HasLine(text, "# TYPE freshframe_stage_latency_seconds histogram")) << text;
  ExpectWellFormed(text);
}

TEST(PrometheusTest, StageCountersClientsAndProcess) {
  Metrics metrics;
  StageMetrics& capture = metrics.Stage("capture");
  for (int i = 0; i < 5; ++i) capture.Record(kNowUs, -1, 0);
  capture.CountSkipped(2);
  metrics.Stage("send");
  ClientRegistry clients;
  auto stream = clients.Add("127.0.0.1:1", "/stream.mjpg?fps=5");
  auto legacy = clients.Add("127.0.0.1:2", "/?action=stream");
  auto events = clients.Add("127.0.0.1:3", "/api/events");
  stream->CountSent(kNowUs, 0, 1000);
  events->CountSent(kNowUs, 1, 234);
  legacy.reset();  // gone: no longer counted, its bytes stay counted
  const std::string text = Render(metrics, clients);

  for (const char* line : {
           "# HELP freshframe_stage_frames_total Frames each pipeline stage handled.",
           "# TYPE freshframe_stage_frames_total counter",
           R"(freshframe_stage_frames_total{stage="capture"} 5)",
           R"(freshframe_stage_frames_total{stage="send"} 0)",
           "# TYPE freshframe_stage_skipped_total counter",
           R"(freshframe_stage_skipped_total{stage="capture"} 2)",
           "# TYPE freshframe_clients gauge",
           R"(freshframe_clients{route="events"} 1)",
           R"(freshframe_clients{route="stream"} 1)",
           "# TYPE freshframe_bytes_sent_total counter",
           "freshframe_bytes_sent_total 1234",
           "# TYPE freshframe_build_info gauge",
           R"(freshframe_build_info{version="1.2.3"} 1)",
           "# TYPE freshframe_uptime_seconds gauge",
           "freshframe_uptime_seconds 2.5",
       }) {
    EXPECT_TRUE(HasLine(text, line)) << line << "\n" << text;
  }
  // Nothing is known about the source or a detector: no such families.
  EXPECT_EQ(text.find("freshframe_source"), std::string::npos) << text;
  EXPECT_EQ(text.find("freshframe_detector"), std::string::npos) << text;
  ExpectWellFormed(text);
}

TEST(PrometheusTest, SourceStateAndDetectorFromDescribe) {
  Metrics metrics;
  ClientRegistry clients;
  const auto describe = nlohmann::json::parse(R"({
      "source": {"spec": "rtsp://cam", "state": "reconnecting", "reconnects": 3},
      "detection": {"name": "motion+faces", "frames": 40, "model_runs": 7}})");
  const std::string text = Render(metrics, clients, describe);
  for (const char* line : {
           "# TYPE freshframe_source_up gauge",
           "freshframe_source_up 0",
           "# TYPE freshframe_source_state gauge",
           R"(freshframe_source_state{state="live"} 0)",
           R"(freshframe_source_state{state="reconnecting"} 1)",
           R"(freshframe_source_state{state="ended"} 0)",
           "# TYPE freshframe_source_reconnects_total counter",
           "freshframe_source_reconnects_total 3",
           "# TYPE freshframe_detector_frames_total counter",
           R"(freshframe_detector_frames_total{detector="motion+faces"} 40)",
           "# TYPE freshframe_detector_model_runs_total counter",
           R"(freshframe_detector_model_runs_total{detector="motion+faces"} 7)",
       }) {
    EXPECT_TRUE(HasLine(text, line)) << line << "\n" << text;
  }
  ExpectWellFormed(text);

  // A state not known in advance is still shown, once.
  const std::string odd =
      Render(metrics, clients, nlohmann::json::parse(R"({"source": {"state": "paused"}})"));
  EXPECT_TRUE(HasLine(odd, R"(freshframe_source_state{state="paused"} 1)")) << odd;
  EXPECT_TRUE(HasLine(odd, R"(freshframe_source_state{state="live"} 0)")) << odd;
  ExpectWellFormed(odd);
}

TEST(PrometheusTest, OutputsToOtherEnginesAndRtspMounts) {
  Metrics metrics;
  ClientRegistry clients;
  const auto describe = nlohmann::json::parse(R"({
      "outputs": [
        {"kind": "rtp", "target": "10.0.0.2:8004", "state": "connected", "reconnects": 2,
         "frames": 900, "bytes": 123456, "dropped": 4},
        {"kind": "rtmp", "target": "rtmp://cdn/live/***", "state": "retrying", "reconnects": 0,
         "frames": 0, "bytes": 0, "dropped": 30}],
      "rtsp": {"port": 8554, "clients": 1, "mounts": [{"path": "/streams/cam", "clients": 1}]}})");
  const std::string text = Render(metrics, clients, describe);
  for (const char* line : {
           "# TYPE freshframe_output_connected gauge",
           R"(freshframe_output_connected{kind="rtp",target="10.0.0.2:8004"} 1)",
           R"(freshframe_output_connected{kind="rtmp",target="rtmp://cdn/live/***"} 0)",
           "# TYPE freshframe_output_reconnects_total counter",
           R"(freshframe_output_reconnects_total{kind="rtp",target="10.0.0.2:8004"} 2)",
           R"(freshframe_output_frames_total{kind="rtp",target="10.0.0.2:8004"} 900)",
           R"(freshframe_output_bytes_total{kind="rtp",target="10.0.0.2:8004"} 123456)",
           R"(freshframe_output_dropped_total{kind="rtmp",target="rtmp://cdn/live/***"} 30)",
           "# TYPE freshframe_rtsp_clients gauge",
           R"(freshframe_rtsp_clients{path="/streams/cam"} 1)",
       }) {
    EXPECT_TRUE(HasLine(text, line)) << line << "\n" << text;
  }
  ExpectWellFormed(text);
  const std::string none = Render(metrics, clients);
  EXPECT_EQ(none.find("freshframe_output_"), std::string::npos);
}

TEST(PrometheusTest, LiveSettingsAsGauges) {
  Metrics metrics;
  ClientRegistry clients;
  const auto describe = nlohmann::json::parse(R"({"config": {
      "detector": false, "detector_spec": "faces", "overlay": "latest", "quality": 40,
      "mirror": true, "available": ["detector", "overlay", "quality", "mirror"]}})");
  const std::string text = Render(metrics, clients, describe);
  for (const char* line : {
           "# TYPE freshframe_jpeg_quality gauge",
           "freshframe_jpeg_quality 40",
           "# TYPE freshframe_detector_enabled gauge",
           "freshframe_detector_enabled 0",
           "# TYPE freshframe_mirror gauge",
           "freshframe_mirror 1",
       }) {
    EXPECT_TRUE(HasLine(text, line)) << line << "\n" << text;
  }
  ExpectWellFormed(text);
  // Without live settings (a server without them), no such families.
  const std::string none = Render(metrics, clients);
  EXPECT_EQ(none.find("freshframe_jpeg_quality"), std::string::npos);
  EXPECT_EQ(none.find("freshframe_mirror"), std::string::npos);
}

TEST(PrometheusTest, BusInputSourceIsLiveOrStale) {
  Metrics metrics;
  ClientRegistry clients;
  const std::string live =
      Render(metrics, clients,
             nlohmann::json::parse(R"({"source": {"spec": "bus:cam0"}, "input": {"live": true}})"));
  EXPECT_TRUE(HasLine(live, "freshframe_source_up 1")) << live;
  EXPECT_TRUE(HasLine(live, R"(freshframe_source_state{state="live"} 1)")) << live;
  EXPECT_TRUE(HasLine(live, R"(freshframe_source_state{state="stale"} 0)")) << live;
  EXPECT_EQ(live.find("freshframe_source_reconnects_total"), std::string::npos) << live;
  const std::string stale =
      Render(metrics, clients, nlohmann::json::parse(R"({"input": {"live": false}})"));
  EXPECT_TRUE(HasLine(stale, "freshframe_source_up 0")) << stale;
  EXPECT_TRUE(HasLine(stale, R"(freshframe_source_state{state="stale"} 1)")) << stale;
}

TEST(PrometheusTest, LabelValuesAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("bus:cam0.annotated"), "bus:cam0.annotated");
  EXPECT_EQ(EscapeLabelValue(R"(a"b\c)"), R"(a\"b\\c)");
  EXPECT_EQ(EscapeLabelValue("line\nbreak"), R"(line\nbreak)");
  EXPECT_EQ(EscapeLabelValue("caf\xC3\xA9 \xE2\x82\xAC"),
            "caf\xC3\xA9 \xE2\x82\xAC");  // UTF-8 stays
  EXPECT_EQ(EscapeLabelValue("a\xFF"
                             "b"),
            "a\xEF\xBF\xBD"
            "b");                                       // invalid byte
  EXPECT_EQ(EscapeLabelValue("\xC3"), "\xEF\xBF\xBD");  // truncated sequence
  EXPECT_EQ(EscapeLabelValue("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate

  // Stage names are only label values: the metric names stay fixed.
  Metrics metrics;
  metrics.Stage("bus:cam0.a\"b\\c\nd").Record(kNowUs, 1.0, 2.0);
  ClientRegistry clients;
  const std::string text = Render(metrics, clients);
  EXPECT_TRUE(HasLine(text, R"(freshframe_stage_frames_total{stage="bus:cam0.a\"b\\c\nd"} 1)"))
      << text;
  EXPECT_TRUE(HasLine(
      text, R"(freshframe_stage_latency_seconds_bucket{stage="bus:cam0.a\"b\\c\nd",le="0.002"} 1)"))
      << text;
  ExpectWellFormed(text);
}

TEST(PrometheusTest, SampleValues) {
  EXPECT_EQ(FormatSampleValue(0), "0");
  EXPECT_EQ(FormatSampleValue(1), "1");
  EXPECT_EQ(FormatSampleValue(0.0005), "0.0005");
  EXPECT_EQ(FormatSampleValue(2.5), "2.5");
  EXPECT_EQ(FormatSampleValue(123456789.0), "123456789");
  EXPECT_EQ(FormatSampleValue(1e300), "1e+300");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatSampleValue(std::nan("")), "NaN");
}

TEST(PrometheusTest, WellFormedWhileStagesRecordConcurrently) {
  Metrics metrics;
  ClientRegistry clients;
  StageMetrics& send = metrics.Stage("send");
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) send.Record(kNowUs, 0.1 * (i % 50), 1.0 * (i % 300));
  });
  for (int i = 0; i < 50; ++i) ExpectWellFormed(Render(metrics, clients));
  stop = true;
  writer.join();
}

// Several streams: one HELP/TYPE per family, every stream's series labelled
// stream="NAME" first, the server's own series unlabelled.
TEST(PrometheusMultiStream, LabelsEverySeriesOfEveryStreamAndKeepsFamiliesWhole) {
  Metrics front_metrics;
  Metrics back_metrics;
  front_metrics.Stage("encode").Record(kNowUs, 1.0, 5.0);
  back_metrics.Stage("encode").Record(kNowUs, 2.0, 7.0);
  back_metrics.Stage("infer").Record(kNowUs, 20.0, 30.0);
  ClientRegistry front_clients;
  ClientRegistry back_clients;
  const nlohmann::json front = {{"source", {{"state", "live"}, {"reconnects", 0}}}};
  const nlohmann::json back = {{"source", {{"state", "reconnecting"}, {"reconnects", 3}}}};
  const std::string text =
      RenderPrometheus({StreamFigures{"front", front_metrics, front_clients, front},
                        StreamFigures{"back", back_metrics, back_clients, back}},
                       kNowUs, kStartUs, "1.2.3");
  ExpectWellFormed(text);
  EXPECT_TRUE(HasLine(text, "freshframe_streams 2")) << text;
  EXPECT_TRUE(HasLine(text, R"(freshframe_source_up{stream="front"} 1)")) << text;
  EXPECT_TRUE(HasLine(text, R"(freshframe_source_up{stream="back"} 0)")) << text;
  EXPECT_TRUE(HasLine(text, R"(freshframe_source_reconnects_total{stream="back"} 3)")) << text;
  EXPECT_TRUE(HasLine(text, R"(freshframe_stage_frames_total{stream="back",stage="infer"} 1)"))
      << text;
  EXPECT_TRUE(HasLine(text, R"(freshframe_stage_frames_total{stream="front",stage="encode"} 1)"))
      << text;
  size_t helps = 0;
  for (const auto& line : Lines(text)) {
    if (line.rfind("# HELP freshframe_stage_frames_total ", 0) == 0) ++helps;
    if (line.empty() || line[0] == '#' || line.rfind("freshframe_build_info", 0) == 0 ||
        line.rfind("freshframe_uptime_seconds", 0) == 0 ||
        line.rfind("freshframe_streams", 0) == 0) {
      continue;
    }
    EXPECT_NE(line.find("{stream=\""), std::string::npos) << "unlabelled: " << line;
  }
  EXPECT_EQ(helps, 1U) << text;
}

}  // namespace
}  // namespace freshframe::http
