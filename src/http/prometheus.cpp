#include "http/prometheus.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <map>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/router.h"

namespace freshframe::http {
namespace {

using Label = std::pair<std::string_view, std::string_view>;

// The length of the valid UTF-8 sequence at the start of `s` (not empty), or
// 0 if it is not one (overlong forms, surrogates and values above U+10FFFF
// are invalid).
size_t Utf8SequenceLength(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80;  // range of the second byte
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
  }
  return length;
}

// Builds the exposition text family by family: each family's HELP and TYPE
// once, then its samples, whichever stream they come from (the format wants
// a family's samples together). While a stream is set (ForStream), every
// sample gets its stream="NAME" label first.
class Exposition {
 public:
  void ForStream(std::string_view name) { stream_ = name; }

  void Family(std::string_view name, std::string_view type, std::string_view help) {
    current_ = &families_[std::string(name)];
    if (!current_->header.empty()) return;
    order_.push_back(std::string(name));
    current_->header.append("# HELP ").append(name).append(" ").append(help).append("\n");
    current_->header.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }

  void Sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    Line(name, labels, FormatSampleValue(value));
  }
  void Sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value) {
    Line(name, labels, std::to_string(value));
  }

  // The _bucket, _sum and _count samples of histogram `name` for `label`.
  void HistogramSeries(std::string_view name, Label label, const Histogram::Snapshot& h) {
    const std::string bucket = std::string(name) + "_bucket";
    for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
      const std::string le = FormatSampleValue(Histogram::kBounds[i]);
      Sample(bucket, {label, {"le", le}}, h.cumulative[i]);
    }
    Sample(bucket, {label, {"le", "+Inf"}}, h.count);
    Sample(std::string(name) + "_sum", {label}, h.sum);
    Sample(std::string(name) + "_count", {label}, h.count);
  }

  std::string Take() {
    std::string text;
    for (const std::string& name : order_) {
      const Text& family = families_[name];
      text.append(family.header).append(family.samples);
    }
    return text;
  }

 private:
  struct Text {
    std::string header;
    std::string samples;
  };

  // Samples go to the family last declared with Family().
  void Line(std::string_view name, std::initializer_list<Label> labels, std::string_view value) {
    std::string& text = current_->samples;
    text.append(name);
    char separator = '{';
    const auto label_text = [&](std::string_view label, std::string_view label_value) {
      text.push_back(separator);
      text.append(label).append("=\"").append(EscapeLabelValue(label_value)).append("\"");
      separator = ',';
    };
    if (!stream_.empty()) label_text("stream", stream_);
    for (const auto& [label, label_value] : labels) label_text(label, label_value);
    if (separator != '{') text.push_back('}');
    text.append(" ").append(value).append("\n");
  }

  std::map<std::string, Text> families_;
  std::vector<std::string> order_;  // first declaration order
  Text* current_ = nullptr;
  std::string stream_;
};

// object[key], or nullptr if `object` is not an object or lacks `key`.
const nlohmann::json* Member(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

// object[key] as a count, or nullopt if it is missing or not a count.
std::optional<uint64_t> CountMember(const nlohmann::json& object, const char* key) {
  const nlohmann::json* value = Member(object, key);
  if (value == nullptr || !value->is_number_integer() || value->get<int64_t>() < 0) {
    return std::nullopt;
  }
  return value->get<uint64_t>();
}

// A grabber reports "state"; a bus input (serve) only whether it is live.
void WriteSource(Exposition& out, const nlohmann::json& describe) {
  const nlohmann::json* source = Member(describe, "source");
  const nlohmann::json* grabber_state = source != nullptr ? Member(*source, "state") : nullptr;
  const nlohmann::json* input = Member(describe, "input");
  const nlohmann::json* input_live = input != nullptr ? Member(*input, "live") : nullptr;
  std::string state;
  std::vector<std::string> states;
  if (grabber_state != nullptr && grabber_state->is_string()) {
    state = grabber_state->get<std::string>();
    states = {"live", "reconnecting", "ended"};
  } else if (input_live != nullptr && input_live->is_boolean()) {
    state = input_live->get<bool>() ? "live" : "stale";
    states = {"live", "stale"};
  } else {
    return;  // nothing known about the source
  }
  if (std::find(states.begin(), states.end(), state) == states.end()) states.push_back(state);

  out.Family("freshframe_source_up", "gauge",
             "Whether the video source delivers frames (1) or not (0).");
  out.Sample("freshframe_source_up", {}, state == "live" ? 1.0 : 0.0);
  out.Family("freshframe_source_state", "gauge",
             "State of the video source: 1 for the current state, 0 for the others.");
  for (const std::string& s : states) {
    out.Sample("freshframe_source_state", {{"state", s}}, s == state ? 1.0 : 0.0);
  }
  if (source == nullptr) return;
  if (const auto reconnects = CountMember(*source, "reconnects")) {
    out.Family("freshframe_source_reconnects_total", "counter",
               "Times the source was reopened after it stopped.");
    out.Sample("freshframe_source_reconnects_total", {}, *reconnects);
  }
}

void WriteClients(Exposition& out, const ClientRegistry& clients) {
  // By route rather than by path, so that query strings cannot make series.
  std::map<std::string, uint64_t> by_route = {{"stream", 0}, {"events", 0}};
  for (const auto& [path, n] : clients.CountByPath()) {
    by_route[std::string(RouteName(Classify("GET", path).route))] += n;
  }
  out.Family("freshframe_clients", "gauge", "Streaming clients connected now, by route.");
  for (const auto& [route, n] : by_route) out.Sample("freshframe_clients", {{"route", route}}, n);
  out.Family("freshframe_bytes_sent_total", "counter",
             "Bytes of stream parts and events sent to streaming clients.");
  out.Sample("freshframe_bytes_sent_total", {}, clients.bytes_sent());
}

void WriteStages(Exposition& out, const Metrics& metrics) {
  const auto stages = metrics.Stages();
  out.Family("freshframe_stage_frames_total", "counter", "Frames each pipeline stage handled.");
  for (const auto& [name, stage] : stages) {
    out.Sample("freshframe_stage_frames_total", {{"stage", name}}, stage->frames());
  }
  out.Family("freshframe_stage_skipped_total", "counter",
             "Frames each pipeline stage skipped or dropped to stay current.");
  for (const auto& [name, stage] : stages) {
    out.Sample("freshframe_stage_skipped_total", {{"stage", name}}, stage->skipped());
  }
  out.Family("freshframe_stage_latency_seconds", "histogram",
             "Age of each frame since capture when the stage finished with it.");
  for (const auto& [name, stage] : stages) {
    out.HistogramSeries("freshframe_stage_latency_seconds", {"stage", name},
                        stage->LatencyHistogram());
  }
  out.Family("freshframe_stage_work_seconds", "histogram",
             "Time the stage itself spent on each frame (e.g. encoding, detection).");
  for (const auto& [name, stage] : stages) {
    out.HistogramSeries("freshframe_stage_work_seconds", {"stage", name}, stage->WorkHistogram());
  }
}

void WriteDetector(Exposition& out, const nlohmann::json& describe) {
  const nlohmann::json* detection = Member(describe, "detection");
  if (detection == nullptr || !detection->is_object()) return;
  const nlohmann::json* name_value = Member(*detection, "name");
  const std::string name =
      name_value != nullptr && name_value->is_string() ? name_value->get<std::string>() : "";
  out.Family("freshframe_detector_frames_total", "counter", "Frames given to the detector.");
  out.Sample("freshframe_detector_frames_total", {{"detector", name}},
             CountMember(*detection, "frames").value_or(0));
  out.Family("freshframe_detector_model_runs_total", "counter",
             "Frames on which the detector ran its model (fewer when motion-gated).");
  out.Sample("freshframe_detector_model_runs_total", {{"detector", name}},
             CountMember(*detection, "model_runs").value_or(0));
}

// The H.264 encoder and its viewers (describe's "h264"), and the WebRTC
// peers (describe's "webrtc").
void WriteH264(Exposition& out, const nlohmann::json& describe) {
  if (const nlohmann::json* h264 = Member(describe, "h264"); h264 != nullptr) {
    const auto counter = [&](const char* name, const char* key, const char* help) {
      out.Family(name, "counter", help);
      out.Sample(name, {}, CountMember(*h264, key).value_or(0));
    };
    counter("freshframe_h264_frames_total", "frames", "H.264 access units encoded.");
    counter("freshframe_h264_keyframes_total", "keyframes", "H.264 IDRs encoded (all causes).");
    counter("freshframe_h264_bytes_total", "bytes", "Bytes of H.264 access units encoded.");
    counter("freshframe_h264_encoder_failures_total", "failures",
            "Times the H.264 encoder failed and was made again.");
    counter("freshframe_h264_skips_to_keyframe_total", "skips_to_key",
            "Times an H.264 viewer fell behind, dropped what it had queued and waited for an IDR.");
    counter("freshframe_h264_dropped_total", "dropped",
            "H.264 access units viewers dropped (queued ones given up, P-frames while waiting).");
    for (const auto& [family, key, help] :
         {std::tuple{"freshframe_h264_idr_requests_total", "idr_requested",
                     "Requests for an H.264 IDR, by reason (coalesced and rate-limited)."},
          std::tuple{"freshframe_h264_idr_forced_total", "idr_forced",
                     "IDRs the H.264 encoder forced, by the reason that asked first."}}) {
      const nlohmann::json* reasons = Member(*h264, key);
      if (reasons == nullptr || !reasons->is_object()) continue;
      out.Family(family, "counter", help);
      for (const auto& [reason, n] : reasons->items()) {
        out.Sample(family, {{"reason", reason}}, n.is_number() ? n.get<double>() : 0.0);
      }
    }
  }
  if (const nlohmann::json* webrtc = Member(describe, "webrtc"); webrtc != nullptr) {
    out.Family("freshframe_webrtc_peers", "gauge", "WebRTC (WHEP) viewers connected now.");
    out.Sample("freshframe_webrtc_peers", {}, CountMember(*webrtc, "peers").value_or(0));
  }
}

// Outputs to other engines (describe's "outputs": RTP, RTMP) and the RTSP
// server's mounts of this stream (describe's "rtsp"), labelled by kind and
// target (RTMP's key is redacted in it already).
void WriteOutputs(Exposition& out, const nlohmann::json& describe) {
  const nlohmann::json* outputs = Member(describe, "outputs");
  if (outputs != nullptr && outputs->is_array() && !outputs->empty()) {
    out.Family("freshframe_output_connected", "gauge",
               "Whether an output to another engine is connected (1) or connecting/retrying (0).");
    for (const nlohmann::json& output : *outputs) {
      if (!output.is_object()) continue;
      out.Sample("freshframe_output_connected",
                 {{"kind", output.value("kind", "")}, {"target", output.value("target", "")}},
                 output.value("state", "") == "connected" ? 1.0 : 0.0);
    }
    for (const auto& [family, key, help] :
         {std::tuple{"freshframe_output_reconnects_total", "reconnects",
                     "Times an output connected again after losing its engine."},
          std::tuple{"freshframe_output_frames_total", "frames",
                     "H.264 access units an output sent."},
          std::tuple{"freshframe_output_bytes_total", "bytes", "Bytes an output sent."},
          std::tuple{"freshframe_output_dropped_total", "dropped",
                     "Access units an output dropped (its engine was slow, stuck or away)."}}) {
      out.Family(family, "counter", help);
      for (const nlohmann::json& output : *outputs) {
        if (!output.is_object()) continue;
        out.Sample(family,
                   {{"kind", output.value("kind", "")}, {"target", output.value("target", "")}},
                   CountMember(output, key).value_or(0));
      }
    }
  }
  if (const nlohmann::json* rtsp = Member(describe, "rtsp"); rtsp != nullptr) {
    const nlohmann::json* mounts = Member(*rtsp, "mounts");
    if (mounts == nullptr || !mounts->is_array()) return;
    out.Family("freshframe_rtsp_clients", "gauge", "RTSP clients playing this stream now.");
    for (const nlohmann::json& mount : *mounts) {
      if (!mount.is_object()) continue;
      out.Sample("freshframe_rtsp_clients", {{"path", mount.value("path", "")}},
                 CountMember(mount, "clients").value_or(0));
    }
  }
}

// The live settings (describe's "config", GET /api/config's object).
void WriteConfig(Exposition& out, const nlohmann::json& describe) {
  const nlohmann::json* config = Member(describe, "config");
  if (config == nullptr) return;
  const nlohmann::json* quality = Member(*config, "quality");
  if (quality != nullptr && quality->is_number()) {
    out.Family("freshframe_jpeg_quality", "gauge", "JPEG quality the stream is encoded with now.");
    out.Sample("freshframe_jpeg_quality", {}, quality->get<double>());
  }
  const auto flag = [&](const char* key, std::string_view name, std::string_view help) {
    const nlohmann::json* value = Member(*config, key);
    if (value == nullptr || !value->is_boolean()) return;
    out.Family(name, "gauge", help);
    out.Sample(name, {}, value->get<bool>() ? 1.0 : 0.0);
  };
  flag("detector", "freshframe_detector_enabled",
       "Whether the detector runs (1) or is switched off or absent (0).");
  flag("mirror", "freshframe_mirror",
       "Whether the stream is mirrored horizontally (1) or not (0).");
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  while (!value.empty()) {
    const size_t length = Utf8SequenceLength(value);
    if (length == 0) {
      out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
      value.remove_prefix(1);
      continue;
    }
    const char c = value.front();
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '"') {
      out.append("\\\"");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.append(value.substr(0, length));
    }
    value.remove_prefix(length);
  }
  return out;
}

std::string FormatSampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[64];
  std::to_chars_result result{};
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    result = std::to_chars(text, text + sizeof text, static_cast<int64_t>(value));
  } else {
    result = std::to_chars(text, text + sizeof text, value, std::chars_format::general);
  }
  return std::string(text, result.ptr);
}

std::string RenderPrometheus(const std::vector<StreamFigures>& streams, int64_t now_us,
                             int64_t started_us, std::string_view version) {
  Exposition out;
  out.Family("freshframe_build_info", "gauge", "Always 1; the version is in the label.");
  out.Sample("freshframe_build_info", {{"version", version}}, 1.0);
  out.Family("freshframe_uptime_seconds", "gauge", "Seconds since the server started.");
  out.Sample("freshframe_uptime_seconds", {}, static_cast<double>(now_us - started_us) / 1e6);
  out.Family("freshframe_streams", "gauge", "Streams this server serves.");
  out.Sample("freshframe_streams", {}, static_cast<uint64_t>(streams.size()));
  for (const StreamFigures& stream : streams) {
    out.ForStream(stream.name);
    WriteSource(out, stream.describe);
    WriteClients(out, stream.clients);
    WriteStages(out, stream.metrics);
    WriteDetector(out, stream.describe);
    WriteH264(out, stream.describe);
    WriteOutputs(out, stream.describe);
    WriteConfig(out, stream.describe);
  }
  return out.Take();
}

}  // namespace freshframe::http
