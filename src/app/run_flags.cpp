#include "app/run_flags.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "bus/bus.h"
#include "capture/capture.h"
#include "h264/h264.h"
#include "http/auth.h"
#include "http/http.h"
#include "rtmp/rtmp.h"
#include "rtp/rtp.h"
#include "rtsp/rtsp.h"

namespace freshframe::app {
namespace {

// A CLI11 check that runs one of our parsers and reports its error text.
template <typename Check>
CLI::Validator ErrorValidator(Check check, std::string name) {
  return CLI::Validator(
      [check](std::string& value) -> std::string {
        auto result = check(value);
        return result ? std::string() : result.error().message;
      },
      std::move(name));
}

// `flag` TOKEN and `flag`-file FILE (the token on FILE's first line, kept out
// of `ps`); one or the other.
void AddTokenOptions(CLI::App& app, const std::string& flag, std::string& token,
                     std::string& token_file, const std::string& help) {
  CLI::Option* inline_token =
      app.add_option(flag, token, help)->check(ErrorValidator(http::ValidateToken, "TOKEN"));
  app.add_option(flag + "-file", token_file,
                 "Like " + flag + ", with the token on the first line of FILE")
      ->excludes(inline_token);
}

// A bad --source is a bad argument (exit 2); one that is well formed but
// cannot be opened is a runtime failure (exit 1, from Pipeline::Create).
CLI::Validator SourceValidator() {
  return ErrorValidator(
      [](const std::string& value) {
        capture::SourceOptions options;
        options.spec = value;
        return capture::MakeSource(options);
      },
      "SOURCE");
}

// --size WxH
CLI::Validator SizeValidator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        int w = 0, h = 0;
        char x = 0, extra = 0;
        if (std::sscanf(value.c_str(), "%d%c%d%c", &w, &x, &h, &extra) != 3 || x != 'x' || w < 16 ||
            h < 16 || w > 7680 || h > 4320) {
          return "size must be WxH between 16x16 and 7680x4320, e.g. 1280x720";
        }
        return {};
      },
      "WxH");
}

CLI::Validator BindValidator() { return ErrorValidator(http::ValidateBind, "ADDR"); }

// CLI::Range for a double that also refuses "nan": CLI11's Range lets NaN
// through (every comparison with it is false), and a NaN rate or age would
// reach the stages' arithmetic.
CLI::Validator NumberRange(double min, double max) {
  return CLI::Validator(
             [](std::string& value) -> std::string {
               double number = 0;
               const bool nan = CLI::detail::lexical_cast(value, number) && std::isnan(number);
               return nan ? "a number is needed, not " + value : std::string();
             },
             "") &
         CLI::Range(min, max);
}

// The detector spec's form; whether its file loads is checked at start-up.
std::string CheckDetectorSpec(std::string spec) {
  if (spec.rfind("motion+", 0) == 0) {
    spec = spec.substr(7);
    if (spec == "none" || spec == "motion" || spec.rfind("motion+", 0) == 0) {
      return "motion+ needs another detector after it, e.g. motion+faces";
    }
    if (spec.rfind("bus:", 0) == 0) {
      return "motion+ cannot gate bus: (another process runs that model on the frames it reads)";
    }
  }
  if (spec == "faces" || spec == "none" || spec == "motion") return {};
  // Sets published by another process on a text bus (infer/bus_detections.h).
  if (spec.rfind("bus:", 0) == 0) {
    auto name = bus::ShmName(spec.substr(4));
    return name ? std::string() : "bus: needs a bus name: " + name.error().message;
  }
  for (std::string_view prefix : {"cascade:", "dnn:"}) {
    if (spec.rfind(prefix, 0) == 0) {
      return spec.size() > prefix.size() ? std::string()
                                         : std::string(prefix) + " needs a name or a path";
    }
  }
  return "unknown detector '" + spec +
         "' (use faces, cascade:NAME|PATH, dnn:MODEL.onnx, motion, motion+DETECTOR, bus:NAME or "
         "none)";
}

}  // namespace

CLI::Validator BusNameValidator() { return ErrorValidator(bus::ShmName, "NAME"); }

void AddSourceOptions(CLI::App& app, RunOptions& options) {
  app.add_option("--source", options.source,
                 "Video source: pattern[:WxH][@FPS], /dev/videoN or N, a file, http://.../"
                 "stream.mjpg, rtsp://..., ffmpeg:URL, gst:PIPELINE ! appsink, bufcam:...")
      ->check(SourceValidator())
      ->capture_default_str();
  app.add_option_function<std::string>(
         "--size",
         [&options](const std::string& size) {
           std::sscanf(size.c_str(), "%dx%d", &options.width, &options.height);
         },
         "Camera frame size WxH (default: the device's)")
      ->check(SizeValidator());
  app.add_option("--fps", options.source_fps, "Camera frame rate (default: the device's)")
      ->check(NumberRange(0.1, 240.0));
  app.add_option("--fourcc", options.fourcc, "Camera pixel format, e.g. MJPG or YUYV")
      ->check([](const std::string& fourcc) -> std::string {
        return fourcc.size() == 4 ? std::string() : "a FOURCC is 4 characters, e.g. MJPG";
      });
  app.add_flag("--loop", options.loop, "Files: start again at the end");
  app.add_option("--rtsp-transport", options.rtsp_transport, "RTSP over tcp or udp")
      ->check(CLI::IsMember({"tcp", "udp"}))
      ->capture_default_str();
  // Credentials for a protected upstream freshframe, in a header rather than
  // in the URL; user:pass@ in an http:// URL is sent as Basic.
  AddTokenOptions(app, "--source-token", options.source_token, options.source_token_file,
                  "http:// sources: send 'Authorization: Bearer TOKEN' (instead of ?token= in "
                  "the URL)");
}

void AddDetectorOptions(CLI::App& app, RunOptions& options) {
  app.add_option("--detector", options.detector,
                 "faces | cascade:NAME|PATH (e.g. cascade:upperbody) | dnn:MODEL.onnx | motion | "
                 "motion+DETECTOR (run DETECTOR only where there is motion) | bus:NAME (draw the "
                 "detection sets another process, e.g. a Python model, publishes on bus NAME) | "
                 "none")
      ->check(CheckDetectorSpec)
      ->capture_default_str();
  app.add_option("--detections-max-age", options.detections_max_age,
                 "Seconds after which detections are not drawn: computed on a frame captured "
                 "that long before, or (bus:NAME) not replaced for that long, e.g. a model that "
                 "died")
      ->check(NumberRange(0.05, 3600.0))
      ->capture_default_str();
  app.add_option("--cascade", options.cascade, "Cascade file for --detector faces");
  app.add_option("--scale-factor", options.detection.scale_factor, "Cascades: image pyramid step")
      ->check(NumberRange(1.01, 2.0))
      ->capture_default_str();
  app.add_option("--min-neighbours", options.detection.min_neighbours,
                 "Cascades: overlapping hits needed to keep a detection")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--min-size", options.detection.min_size, "Cascades: smallest object, px")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--labels", options.detection.labels_path, "dnn: class names, one per line")
      ->check(CLI::ExistingFile);
  app.add_option_function<std::string>(
         "--input-size",
         [&options](const std::string& size) {
           if (std::sscanf(size.c_str(), "%dx%d", &options.detection.input_width,
                           &options.detection.input_height) != 2) {
             options.detection.input_height = options.detection.input_width;
           }
         },
         "dnn: network input, N or WxH (default 640)")
      ->check([](const std::string& size) -> std::string {
        int w = 0;
        int h = 0;
        const int n = std::sscanf(size.c_str(), "%dx%d", &w, &h);
        if (n == 1) h = w;
        const bool ok = n >= 1 && w >= 16 && h >= 16 && w <= 4096 && h <= 4096;
        return ok ? std::string() : "input size must be N or WxH, 16..4096";
      });
  app.add_option("--conf", options.detection.confidence, "dnn: minimum confidence 0..1")
      ->check(NumberRange(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--nms", options.detection.nms, "dnn: non-maximum suppression IoU threshold 0..1")
      ->check(NumberRange(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--min-area", options.detection.min_area, "motion: smallest moving region, px^2")
      ->check(CLI::Range(1, 100'000'000))
      ->capture_default_str();
  app.add_option("--overlay", options.overlay,
                 "latest: every frame drawn with the newest detections; inferred: only "
                 "frames the detector finished")
      ->check(CLI::IsMember({"latest", "inferred"}))
      ->capture_default_str();
  app.add_flag("!--no-hud", options.hud, "Do not draw fps and latency figures on the stream");
  app.add_flag("--mirror", options.mirror,
               "Mirror the stream horizontally (a selfie view; boxes and text stay readable); "
               "switchable while running with POST /api/config");
  app.add_option("--detector-threads", options.detector_threads,
                 "OpenCV threads the detector may use")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--detect-fps", options.detect_fps,
                 "Detections per second at most for this stream (0: as many as the detector "
                 "manages); streams sharing a detector take turns, each within its own cap")
      ->check(NumberRange(0.0, 240.0))
      ->capture_default_str();
}

// Authentication and limits. Validators never echo a secret: their messages
// say what is wrong, not what was given.
void AddAccessOptions(CLI::App& app, RunOptions& options) {
  AddTokenOptions(app, "--token", options.token, options.token_file,
                  "Require 'Authorization: Bearer TOKEN' or ?token=TOKEN on every route but "
                  "/healthz");
  app.add_option("--basic-auth", options.basic_auth,
                 "Require HTTP Basic credentials USER:PASS (either credential is accepted "
                 "with --token)")
      ->check(ErrorValidator(http::ValidateBasicAuth, "USER:PASS"));
  app.add_option("--allow-origin", options.allow_origins,
                 "Let pages of ORIGIN (scheme://host[:port]) use the server and read its "
                 "answers (CORS); repeatable; * for any. Default: only the server's own pages")
      ->check(ErrorValidator(http::ValidateAllowOrigin, "ORIGIN"));
  app.add_option("--allow-host", options.allow_hosts,
                 "Answer requests for host NAME (against DNS rebinding, only IP addresses and "
                 "localhost are by default); repeatable; any to answer every name")
      ->check(ErrorValidator(http::ValidateAllowHost, "NAME"));
  app.add_option("--max-clients", options.max_clients,
                 "Streaming clients at most; beyond, new streams get 503 (0: no limit)")
      ->check(CLI::Range(0, 1'000'000))
      ->capture_default_str();
  app.add_option("--max-variants", options.max_variants,
                 "Distinct pixel variants (?mirror, ?width) encoded at a time; a request for "
                 "another gets 503 (0: no limit)")
      ->check(CLI::Range(0, 1'000))
      ->capture_default_str();
  app.add_option("--max-connections-per-address", options.max_connections_per_address,
                 "Open connections per client IP at most; beyond, 503 and closed (0: no limit)")
      ->check(CLI::Range(0, 1'000'000))
      ->capture_default_str();
}

// Outputs to other engines, fed by the H.264 encode (issue 18).
void AddOutputOptions(CLI::App& app, RunOptions& options) {
  app.add_option("--rtp-out", options.rtp_out,
                 "Send this stream as RTP H.264 to HOST:PORT and RTCP to PORT+1, e.g. a Janus "
                 "streaming mountpoint (docs/deploy-janus.md); repeatable")
      ->check(ErrorValidator(rtp::ParseTarget, "HOST:PORT"));
  app.add_option("--rtmp-out", options.rtmp_out,
                 "Push this stream by RTMP to rtmp://HOST[:PORT]/APP/KEY, e.g. nginx-rtmp "
                 "writing HLS (docs/deploy-hls.md); repeatable")
      ->check(ErrorValidator(rtmp::ValidateUrl, "URL"));
  app.add_option("--rtsp-port", options.rtsp_port,
                 "Also serve rtsp://BIND:PORT/stream (and /streams/NAME) on this TCP port, with "
                 "the HTTP credentials (docs/deploy-rtsp.md)")
      ->check(ErrorValidator(rtsp::ValidatePort, "PORT"));
}

void AddH264Options(CLI::App& app, RunOptions& options) {
  app.add_option("--h264-encoder", options.h264_encoder,
                 "H.264 encoder for /ws/h264, /stream.h264 and /whep: any libavcodec H.264 "
                 "encoder on this machine (libx264, h264_vaapi, h264_v4l2m2m, h264_nvenc...), "
                 "or none")
      ->check(ErrorValidator(
          [](const std::string& name) -> Expected<bool> {
            if (name == "none") return true;
            return h264::CheckEncoder(name);
          },
          "NAME"))
      ->capture_default_str();
  app.add_option("--h264-preset", options.h264_preset,
                 "libx264 preset (speed against bits; see docs/architecture.md, H.264)")
      ->check(CLI::IsMember({"ultrafast", "superfast", "veryfast", "faster", "fast", "medium"}))
      ->capture_default_str();
  app.add_option("--h264-bitrate", options.h264_bitrate,
                 "H.264 kbit/s (0: constant quality, capped for the frame size)")
      ->check(CLI::Range(0, 200'000))
      ->capture_default_str();
  app.add_option("--gop", options.gop,
                 "Seconds between periodic H.264 IDRs, a safety net beside the IDRs viewers "
                 "ask for (0: only those)")
      ->check(NumberRange(0.0, 60.0))
      ->capture_default_str();
  app.add_option("--max-webrtc-peers", options.max_webrtc_peers,
                 "WebRTC (WHEP) viewers per stream at most; beyond, 503")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  AddOutputOptions(app, options);
}

void AddServerOptions(CLI::App& app, RunOptions& options) {
  app.add_option("--quality", options.quality, "JPEG quality 1..100")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  AddH264Options(app, options);
  app.add_option("--bind", options.bind, "Address to listen on")
      ->check(BindValidator())
      ->capture_default_str();
  app.add_option("--port", options.port, "TCP port (0 picks a free one and prints it)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "HTTP I/O threads (0: one per core)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  AddAccessOptions(app, options);
}

void AddBusOptions(CLI::App& app, RunOptions& options) {
  app.add_option_function<std::string>(
         "--bus-mode",
         [&options](const std::string& mode) {
           options.bus_mode = static_cast<uint32_t>(std::stoul(mode, nullptr, 8));
         },
         "File mode of buses this process creates, octal (default 0600; never "
         "world-writable or setuid/setgid/sticky)")
      ->check([](const std::string& mode) -> std::string {
        const bool octal = !mode.empty() && mode.size() <= 4 &&
                           mode.find_first_not_of("01234567") == std::string::npos;
        if (!octal) return "bus mode must be octal, e.g. 0600 or 0660";
        auto allowed = bus::CheckBusMode(static_cast<uint32_t>(std::stoul(mode, nullptr, 8)));
        return allowed ? std::string() : allowed.error().message;
      });
  // Buses of another user are refused: that user controls every byte read.
  app.add_option_function<std::string>(
         "--bus-allow-owner",
         [&options](const std::string& owner) {
           if (owner == "any") {
             options.bus_allow_any_owner = true;
           } else {
             options.bus_allow_owner = std::stoll(owner);
           }
         },
         "Also use existing buses owned by this uid (or 'any' user); default: only "
         "this user's")
      ->check([](const std::string& owner) -> std::string {
        const bool uid = !owner.empty() && owner.size() <= 10 &&
                         owner.find_first_not_of("0123456789") == std::string::npos &&
                         std::stoll(owner) <= 4294967294LL;
        return owner == "any" || uid ? std::string() : "bus owner must be a numeric uid or 'any'";
      });
  app.add_option("--bus-slots", options.bus_slots,
                 "Slots of buses this process creates (readers holding views + 2)")
      ->check(CLI::Range(2, 255))
      ->capture_default_str();
}

void AddRunOptions(CLI::App& run, RunOptions& options) {
  AddSourceOptions(run, options);
  AddDetectorOptions(run, options);
  AddServerOptions(run, options);
  run.add_option("--publish", options.publish,
                 "Also publish annotated frames on bus NAME and raw frames on NAME.raw")
      ->check(BusNameValidator());
  AddBusOptions(run, options);
}

}  // namespace freshframe::app
