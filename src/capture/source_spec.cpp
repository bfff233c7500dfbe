#include <cctype>
#include <string>

#include "capture/capture.h"
#include "httpclient/redact.h"
#include "httpclient/url.h"

namespace freshframe::capture {
namespace {

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool AllDigits(std::string_view text) {
  if (text.empty() || text.size() > 4) return false;
  for (char c : text) {
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) return false;
  }
  return true;
}

// "scheme:" at the start of a URL-like source, or "".
std::string_view SchemeOf(std::string_view spec) {
  const auto colon = spec.find("://");
  if (colon == std::string_view::npos || colon == 0) return {};
  for (char c : spec.substr(0, colon)) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '+' && c != '-' && c != '.') {
      return {};
    }
  }
  return spec.substr(0, colon);
}

}  // namespace

std::string_view SourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::kPattern:
      return "pattern";
    case SourceKind::kBufferedCamera:
      return "bufcam";
    case SourceKind::kCamera:
      return "camera";
    case SourceKind::kFile:
      return "file";
    case SourceKind::kNetwork:
      return "network";
    case SourceKind::kMjpegHttp:
      return "mjpeg";
    case SourceKind::kGStreamer:
      return "gstreamer";
  }
  return "unknown";
}

Expected<SourceSpec> ParseSourceSpec(std::string_view spec) {
  SourceSpec out;
  out.text = std::string(spec);
  const auto bad = [&](const std::string& why) {
    return Error{"invalid --source '" + httpclient::RedactUrl(spec) + "': " + why};
  };
  if (spec.empty()) return bad("empty");
  if (StartsWith(spec, "pattern")) {
    auto pattern = ParsePatternSpec(spec);
    if (!pattern) return pattern.error();
    out.kind = SourceKind::kPattern;
    out.location = std::string(spec);
    return out;
  }
  if (StartsWith(spec, "bufcam")) {
    out.kind = SourceKind::kBufferedCamera;
    out.location = std::string(spec);
    return out;
  }
  if (StartsWith(spec, "gst:")) {
    out.kind = SourceKind::kGStreamer;
    out.location = std::string(spec.substr(4));
    if (out.location.find("appsink") == std::string::npos) {
      return bad("a GStreamer pipeline must end in appsink");
    }
    return out;
  }
  if (StartsWith(spec, "ffmpeg:")) {
    out.kind = SourceKind::kNetwork;
    out.location = std::string(spec.substr(7));
    if (out.location.empty()) return bad("ffmpeg: needs a URL or path");
    return out;
  }
  if (StartsWith(spec, "file:")) {
    out.kind = SourceKind::kFile;
    out.location = std::string(spec.substr(5));
    if (out.location.empty()) return bad("file: needs a path");
    return out;
  }
  if (AllDigits(spec) || StartsWith(spec, "/dev/video")) {
    out.kind = SourceKind::kCamera;
    out.location = std::string(spec);
    return out;
  }
  const std::string_view scheme = SchemeOf(spec);
  if (!scheme.empty()) {
    out.location = std::string(spec);
    if (scheme == "http") {
      // Read natively: a URL it cannot request is a bad argument, not a
      // failure to open.
      std::string why;
      if (!httpclient::ParseUrl(spec, &why)) return bad(why);
      out.kind = SourceKind::kMjpegHttp;
      return out;
    }
    for (std::string_view ffmpeg :
         {"rtsp", "rtsps", "rtmp", "rtmps", "https", "udp", "tcp", "srt", "rtp"}) {
      if (scheme == ffmpeg) {
        out.kind = SourceKind::kNetwork;
        return out;
      }
    }
    return bad("unsupported scheme '" + std::string(scheme) +
               "' (supported: http, https, rtsp, rtsps, rtmp, rtmps, udp, tcp, srt, rtp; "
               "or ffmpeg:URL, gst:PIPELINE, file:PATH, /dev/videoN, pattern)");
  }
  out.kind = SourceKind::kFile;
  out.location = std::string(spec);
  return out;
}

namespace {

// Why `options.token` cannot be used with `spec`, or "".
std::string TokenProblem(const SourceSpec& spec, const SourceOptions& options) {
  if (options.token.empty()) return {};
  if (spec.kind != SourceKind::kMjpegHttp) {
    return "--source-token is for http:// sources (others take credentials in their own URL "
           "or pipeline)";
  }
  for (char c : options.token) {
    const auto byte = static_cast<unsigned char>(c);
    // It goes into a request header: no way to end the header early.
    if (byte <= 0x20 || byte >= 0x7f) return "--source-token must be printable ASCII, no spaces";
  }
  const auto url = httpclient::ParseUrl(spec.location);
  if (url && !url->user.empty()) {
    return "give http:// credentials either as user:pass@ in the URL or as --source-token, "
           "not both";
  }
  return {};
}

}  // namespace

Expected<std::unique_ptr<FrameSource>> MakeSource(const SourceOptions& options) {
  auto spec = ParseSourceSpec(options.spec);
  if (!spec) return spec.error();
  if (std::string problem = TokenProblem(*spec, options); !problem.empty()) {
    return Error{std::move(problem)};
  }
  switch (spec->kind) {
    case SourceKind::kPattern:
      return MakePatternSource(*ParsePatternSpec(spec->location));
    case SourceKind::kBufferedCamera:
      return MakeBufferedCameraSource(*spec);
    case SourceKind::kMjpegHttp:
      return MakeMjpegSource(*spec, options);
    case SourceKind::kCamera:
    case SourceKind::kFile:
    case SourceKind::kNetwork:
    case SourceKind::kGStreamer:
      return MakeOpenCvSource(*spec, options);
  }
  return Error{"unknown source kind"};
}

}  // namespace freshframe::capture
