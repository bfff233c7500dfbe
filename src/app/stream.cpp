#include "app/stream.h"

#include <optional>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "bus/bus_stages.h"
#include "bus/text_bus.h"
#include "capture/capture.h"
#include "core/demand.h"
#include "core/latest_slot.h"
#include "core/live_settings.h"
#include "core/metrics.h"
#include "encode/encode.h"
#include "h264/h264.h"
#include "http/auth.h"
#include "httpclient/redact.h"
#include "infer/bus_detections.h"
#include "infer/detectors.h"
#include "infer/infer.h"
#include "rtmp/rtmp.h"
#include "rtp/rtp.h"
#include "webrtc/whep.h"

namespace freshframe::web {
extern const std::string_view kIndexHtml;
}

namespace freshframe::app {
namespace {

bool Captures(Role role) { return role == Role::kRun || role == Role::kCapture; }
bool Annotates(Role role) { return role == Role::kRun || role == Role::kInfer; }
bool Serves(Role role) { return role == Role::kRun || role == Role::kServe; }

// The encoder as its viewers and outputs subscribe to it.
egress::SubscribeFn SubscribeTo(h264::H264Stage& stage) {
  return [&stage](h264::AccessUnitSink sink) { return stage.Subscribe(std::move(sink)); };
}

std::unique_ptr<webrtc::WhepServer> MakeWhepServer(const RunOptions& options,
                                                   h264::H264Stage& stage) {
  webrtc::WhepOptions whep;
  whep.max_peers = static_cast<size_t>(options.max_webrtc_peers);
  // Peers learn host candidates on the address the server is bound to
  // (all of the machine's when it listens on all of them).
  if (options.bind != "0.0.0.0" && options.bind != "::") whep.bind_address = options.bind;
  return std::make_unique<webrtc::WhepServer>(whep, SubscribeTo(stage), stage.demand(),
                                              stage.keyframes());
}

http::WhepDeps WhepDepsOf(webrtc::WhepServer& whep) {
  http::WhepDeps deps;
  deps.offer = [&whep](std::string sdp, std::string peer, std::shared_ptr<void> hold,
                       std::function<void(http::WhepAnswer)> done) {
    whep.Offer(
        std::move(sdp), std::move(peer),
        [done = std::move(done)](webrtc::Answer answer) {
          done(http::WhepAnswer{answer.status, std::move(answer.body), std::move(answer.id),
                                std::move(answer.etag)});
        },
        std::move(hold));
  };
  deps.end = [&whep](std::string_view id) { return whep.End(id); };
  deps.stats = [&whep] { return whep.Stats(); };
  return deps;
}

h264::EncoderOptions H264OptionsOf(const RunOptions& options) {
  h264::EncoderOptions h264;
  h264.encoder = options.h264_encoder;
  h264.preset = options.h264_preset;
  h264.bitrate_kbps = options.h264_bitrate;
  h264.gop_seconds = options.gop;
  return h264;
}

// Where the detections of the frames on bus `frames_bus` go.
std::string DetectionsBusName(const std::string& frames_bus) { return frames_bus + ".detections"; }

bus::BusOptions BusOptionsOf(const RunOptions& options) {
  bus::BusOptions bus_options;
  bus_options.slots = options.bus_slots;
  bus_options.mode = options.bus_mode;
  if (options.bus_allow_owner >= 0) {
    bus_options.allow_owner = static_cast<uint32_t>(options.bus_allow_owner);
  }
  bus_options.allow_any_owner = options.bus_allow_any_owner;
  return bus_options;
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kRun:
      return "run";
    case Role::kCapture:
      return "capture";
    case Role::kInfer:
      return "infer";
    case Role::kServe:
      return "serve";
  }
  return "run";
}

// The settings a stream starts with, from its options.
SettingsValues InitialSettings(const RunOptions& options) {
  SettingsValues values;
  values.detector = Annotates(options.role) && options.detector != "none";
  values.overlay = ParseOverlay(options.overlay).value_or(OverlayMode::kLatest);
  values.quality = options.quality;
  values.mirror = options.mirror;
  return values;
}

// What POST /api/config may change for this stream, and for the rest, why
// not and where to set it instead.
http::ConfigDeps ConfigDepsOf(const RunOptions& options, LiveSettings& settings) {
  http::ConfigDeps config;
  config.settings = &settings;
  config.detector_spec = Annotates(options.role) ? options.detector : "none";
  if (options.role == Role::kServe) {
    constexpr std::string_view kWhere = "set it on the freshframe infer process that feeds ";
    const std::string bus = "bus " + options.in_bus;
    config.unavailable = {
        {"detector", "a serve process runs no detector; " + std::string(kWhere) + bus +
                         " (--detector), or use freshframe run"},
        {"overlay", "a serve process draws no detections; " + std::string(kWhere) + bus +
                        " (--overlay), or use freshframe run"},
        {"mirror", "a serve process does not annotate; " + std::string(kWhere) + bus +
                       " (--mirror), or ask for ?mirror=1 on a stream URL (per client)"}};
  } else if (config.detector_spec == "none") {
    config.unavailable = {
        {"detector",
         "this stream was started with --detector none; restart it with "
         "--detector SPEC (e.g. --detector faces) to switch detection on and off"}};
  }
  return config;
}

// `token`, or the first line of `token_file` when one is given.
Expected<std::string> SourceToken(const RunOptions& options) {
  if (options.source_token_file.empty()) return options.source_token;
  auto token = http::ReadTokenFile(options.source_token_file);
  if (!token) return Error{"--source-token-file: " + token.error().message};
  return token;
}

}  // namespace

// Declaration order is construction order: slots and shared state first,
// stages after; destruction runs the other way round, so everything a stage
// refers to outlives it.
struct Stream::Parts {
  explicit Parts(const StreamConfig& stream_config)
      : config(stream_config),
        options(config.options),
        settings(InitialSettings(stream_config.options)) {}

  StreamConfig config;
  const RunOptions& options;  // config.options
  LiveSettings settings;      // the stages and the server read it; POST /api/config writes it
  Metrics metrics;
  Demand demand;
  LatestSlot<FramePtr> raw;
  LatestSlot<infer::DetectionSetPtr> detections;
  LatestSlot<infer::JsonTextPtr> detections_json;
  LatestSlot<FramePtr> annotated;
  LatestSlot<encode::EncodedFramePtr> jpeg;
  std::optional<capture::Grabber> grabber;
  std::optional<bus::BusSubscriberStage> input;
  // The stream's turn on a shared detector (app/detector_pool.h).
  std::unique_ptr<DetectorPool::Binding> detector;
  // --detector bus:NAME: sets from another process instead of a detector.
  std::optional<infer::ExternalDetectionsStage> external;
  std::optional<infer::AnnotatorStage> annotator;
  std::vector<std::unique_ptr<bus::BusPublisherStage>> outputs;
  // Detection sets as JSON text, next to the annotated frames: infer and
  // run --publish write them, serve reads them (see DetectionsBusName).
  std::unique_ptr<bus::TextPublisherStage> detections_output;
  std::optional<bus::TextSubscriberStage> detections_input;
  std::optional<encode::EncoderStage> encoder;
  std::optional<encode::VariantEncoders> variants;  // mirrored / scaled streams in use
  // H.264 for /ws/h264, /stream.h264 and the WebRTC peers: one encode for
  // all of them, while any watches (--h264-encoder none: absent).
  std::optional<h264::H264Stage> h264;
  // WebRTC viewers (WHEP) of `h264`: after it, so it goes first.
  std::unique_ptr<webrtc::WhepServer> whep;
  // Outputs to other engines (--rtp-out, --rtmp-out), fed by `h264`.
  std::vector<std::unique_ptr<egress::Output>> engine_outputs;
  bool started = false;
  bool stopped = false;

  bool Live() const { return (!input || input->live()) && (!grabber || grabber->live()); }

  nlohmann::json Describe() const {
    const SettingsValues live = settings.Get();
    nlohmann::json out = {
        {"role", RoleName(options.role)},
        {"detector", Annotates(options.role) ? options.detector : std::string("none")},
        {"detector_enabled", live.detector},
        {"overlay", OverlayName(live.overlay)},
        {"quality", live.quality},
        {"detect_fps_cap", options.detect_fps},
        {"stale", !Live()}};
    if (detector) {
      const infer::SharedDetector& shared = detector->detector();
      const infer::DetectorActivity activity = shared.activity();
      out["detection"] = {
          {"name", shared.name()},
          {"shared_by", shared.bindings()},
          {"frames", activity.frames},
          {"model_runs", activity.model_runs},
          {"model_run_share", activity.frames > 0 ? static_cast<double>(activity.model_runs) /
                                                        static_cast<double>(activity.frames)
                                                  : 0.0}};
    }
    if (external) {
      out["detection"] = {{"name", external->name()}};
      out["external"] = external->State();
    }
    if (grabber) out["source"] = grabber->Status();
    if (!engine_outputs.empty()) {
      nlohmann::json engines = nlohmann::json::array();
      for (const auto& output : engine_outputs) engines.push_back(output->Stats());
      out["outputs"] = std::move(engines);
    }
    if (detections_input) {
      out["detections_input"] = {{"bus", detections_input->bus_name()},
                                 {"received", detections_input->received()}};
    }
    if (input) {
      out["input"] = input->State();
      out["source"] = {{"spec", "bus:" + options.in_bus}};
      if (auto last = annotated.Latest()) {
        out["source"]["width"] = last->value->meta.width;
        out["source"]["height"] = last->value->meta.height;
      }
    }
    return out;
  }

  // What the server checks ?width and ?fps against: the frames the encoders
  // get, and the source's nominal rate (0 when it is not known, e.g. on a bus).
  http::SourceFormat Format() const {
    http::SourceFormat format;
    if (auto last = annotated.Latest()) {
      format.width = last->value->image.cols;
      format.height = last->value->image.rows;
    }
    if (grabber) format.fps = grabber->Status().value("fps", 0.0);
    return format;
  }

  // The detections bus is an extra: a name that cannot be used only costs
  // the serve process its /api/detections, so it is a warning, not an error.
  void AddDetectionsOutput(const std::string& frames_bus) {
    const std::string name = DetectionsBusName(frames_bus);
    // run --publish cam0 --detector bus:cam0.detections: the model writes
    // the very bus serve processes read; its sets are there already.
    if (external && external->bus_name() == name) return;
    auto writer = bus::BusWriter::Open(name, BusOptionsOf(options));
    if (!writer) {
      spdlog::warn("no detections for serve processes: {}", writer.error().message);
      return;
    }
    detections_output =
        std::make_unique<bus::TextPublisherStage>(detections_json, std::move(writer).value(), name);
  }

  void AddDetectionsInput(const std::string& frames_bus) {
    const std::string name = DetectionsBusName(frames_bus);
    auto reader = bus::BusReader::Open(name, BusOptionsOf(options));
    if (!reader) {
      spdlog::warn("serving no detections: {}", reader.error().message);
      return;
    }
    detections_input.emplace(std::move(reader).value(), name, detections_json);
  }

  Expected<bool> AddOutput(LatestSlot<FramePtr>& slot, const std::string& name) {
    auto writer = bus::BusWriter::Open(name, BusOptionsOf(options));
    if (!writer) return writer.error();
    outputs.push_back(
        std::make_unique<bus::BusPublisherStage>(slot, std::move(writer).value(), name, metrics));
    return true;
  }

  // Input: a source (run, capture) or a bus (infer, serve). serve's bus
  // carries annotated frames, so it feeds the annotated slot directly.
  Expected<bool> AddInput(bool must_open) {
    if (!Captures(options.role)) {
      auto reader = bus::BusReader::Open(options.in_bus, BusOptionsOf(options));
      if (!reader) return reader.error();
      input.emplace(std::move(reader).value(), options.in_bus,
                    options.role == Role::kServe ? annotated : raw, metrics);
      return true;
    }
    capture::SourceOptions source_options;
    source_options.spec = options.source;
    source_options.width = options.width;
    source_options.height = options.height;
    source_options.fps = options.source_fps;
    source_options.fourcc = options.fourcc;
    source_options.loop = options.loop;
    source_options.rtsp_transport = options.rtsp_transport;
    auto token = SourceToken(options);
    if (!token) return token.error();
    source_options.token = std::move(token).value();
    auto source = capture::MakeSource(source_options);
    if (!source) return Error{httpclient::RedactUrl(source.error().message)};
    // A source that cannot be opened at start-up is an error (exit 1) for one
    // camera; in a config of several it starts reconnecting, and the others
    // run. Its message is shown redacted, like every message that may quote
    // the spec.
    capture::GrabberOptions grabber_options;
    if (auto opened = (*source)->Open(); !opened) {
      if (must_open) return Error{httpclient::RedactUrl(opened.error().message)};
      grabber_options.open_error = opened.error().message;
    }
    grabber.emplace(std::move(source).value(), raw, metrics, grabber_options);
    return true;
  }

  Expected<bool> AddDetection(DetectorPool& detectors) {
    const auto max_age =
        std::chrono::microseconds(static_cast<int64_t>(options.detections_max_age * 1e6));
    std::string spec = options.detector;
    if (!options.cascade.empty() && spec == "faces") spec = "cascade:" + options.cascade;
    if (spec.starts_with(infer::kBusDetectorPrefix)) {
      infer::ExternalDetectionsOptions external_options;
      external_options.bus_name = spec.substr(infer::kBusDetectorPrefix.size());
      external_options.max_age = max_age;
      auto reader = bus::BusReader::Open(external_options.bus_name, BusOptionsOf(options));
      if (!reader) return reader.error();
      external.emplace(std::move(reader).value(), std::move(external_options), raw, detections,
                       metrics, &detections_json, &settings);
    } else {
      infer::DetectorBinding binding;
      binding.raw = &raw;
      binding.detections = &detections;
      binding.json = &detections_json;
      binding.settings = &settings;
      binding.metrics = &metrics.Stage("infer");
      binding.max_fps = options.detect_fps;
      auto bound = detectors.Bind(spec, options.detection, binding);
      if (!bound) return bound.error();
      detector = std::move(bound).value();
    }
    const bool has_detector = detector || external;
    annotator.emplace(settings.overlay(), raw, has_detector ? &detections : nullptr, annotated,
                      metrics, options.hud, &settings, max_age);
    return true;
  }

  Expected<bool> AddOutputs() {
    if (options.role == Role::kCapture) return AddOutput(raw, options.out_bus);
    if (options.role == Role::kInfer) {
      if (auto added = AddOutput(annotated, options.out_bus); !added) return added.error();
      if (detector || external) AddDetectionsOutput(options.out_bus);
    }
    if (options.role == Role::kRun && !options.publish.empty()) {
      if (auto added = AddOutput(annotated, options.publish); !added) return added.error();
      if (auto added = AddOutput(raw, options.publish + ".raw"); !added) return added.error();
      if (detector || external) AddDetectionsOutput(options.publish);
    }
    if (options.role == Role::kServe) AddDetectionsInput(options.in_bus);
    if (Serves(options.role)) {
      variants.emplace(options.quality, annotated, metrics, &settings);
      encoder.emplace(options.quality, annotated, jpeg, demand, metrics, &settings);
      if (options.h264_encoder != "none") {
        h264.emplace(H264OptionsOf(options), annotated, metrics, 0);
        whep = MakeWhepServer(options, *h264);
      }
    }
    return AddEngineOutputs();
  }

  // --rtp-out and --rtmp-out (validated by their flags), each fed by the
  // one H.264 encode.
  Expected<bool> AddEngineOutputs() {
    if (options.rtp_out.empty() && options.rtmp_out.empty()) return true;
    if (!h264) {
      return Error{Serves(options.role)
                       ? "--rtp-out and --rtmp-out send H.264: not with --h264-encoder none"
                       : "--rtp-out and --rtmp-out send the annotated H.264 stream: give them "
                         "to freshframe run or serve, not " +
                             std::string(RoleName(options.role))};
    }
    for (const std::string& text : options.rtp_out) {
      auto target = rtp::ParseTarget(text);
      if (!target) return target.error();
      rtp::RtpOptions rtp_options;
      rtp_options.target = *target;
      engine_outputs.push_back(std::make_unique<rtp::RtpSender>(rtp_options, SubscribeTo(*h264),
                                                                h264->demand(), h264->keyframes()));
    }
    for (const std::string& url : options.rtmp_out) {
      rtmp::RtmpOptions rtmp_options;
      rtmp_options.url = url;
      if (options.source_fps > 0) rtmp_options.fps = options.source_fps;  // FLV metadata only
      engine_outputs.push_back(std::make_unique<rtmp::RtmpPusher>(
          rtmp_options, SubscribeTo(*h264), h264->demand(), h264->keyframes()));
    }
    return true;
  }
};

Expected<std::shared_ptr<Stream>> Stream::Create(const StreamConfig& config,
                                                 DetectorPool& detectors, bool must_open) {
  auto parts = std::make_unique<Parts>(config);
  if (auto added = parts->AddInput(must_open); !added) return added.error();
  if (Annotates(config.options.role)) {
    if (auto added = parts->AddDetection(detectors); !added) return added.error();
  }
  if (auto added = parts->AddOutputs(); !added) return added.error();
  return std::shared_ptr<Stream>(new Stream(std::move(parts)));
}

Stream::Stream(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Stream::~Stream() { Stop(); }

const std::string& Stream::name() const { return parts_->config.name; }

const StreamConfig& Stream::config() const { return parts_->config; }

h264::H264Stage* Stream::h264() { return parts_->h264 ? &*parts_->h264 : nullptr; }

http::ServerDeps Stream::ServerDeps() {
  Parts* parts = parts_.get();
  const bool has_detections = parts->detector || parts->external || parts->detections_input;
  http::ServerDeps deps{parts->jpeg,
                        parts->demand,
                        parts->metrics,
                        web::kIndexHtml,
                        [parts] { return parts->Describe(); },
                        [parts] { return parts->Live(); },
                        has_detections ? &parts->detections_json : nullptr};
  deps.source_format = [parts] { return parts->Format(); };
  deps.variants = parts->variants ? &*parts->variants : nullptr;
  deps.config = ConfigDepsOf(parts->options, parts->settings);
  deps.h264 = parts->h264 ? &*parts->h264 : nullptr;
  if (parts->whep) deps.whep = WhepDepsOf(*parts->whep);
  deps.owner = shared_from_this();
  return deps;
}

void Stream::Start() {
  Parts& p = *parts_;
  p.started = true;
  if (p.encoder) p.encoder->Start();
  if (p.variants) p.variants->Start();
  if (p.h264) p.h264->Start();
  for (auto& output : p.engine_outputs) output->Start();
  for (auto& output : p.outputs) output->Start();
  if (p.detections_output) p.detections_output->Start();
  if (p.detections_input) p.detections_input->Start();
  if (p.annotator) p.annotator->Start();
  if (p.external) p.external->Start();
  if (p.input) p.input->Start();
  if (p.grabber) p.grabber->Start();
  const RunOptions& options = p.options;
  spdlog::info("{}{}{}: source {} detector {} overlay {}{}", RoleName(options.role),
               p.config.name == "default" ? "" : " stream ",
               p.config.name == "default" ? "" : p.config.name,
               p.grabber ? httpclient::RedactUrl(options.source) : "bus:" + options.in_bus,
               Annotates(options.role) ? options.detector : "-", options.overlay,
               options.mirror && Annotates(options.role) ? " mirrored" : "");
}

void Stream::Stop(const std::function<void(const char* stage)>& on_stage) {
  if (!parts_ || parts_->stopped) return;
  Parts& p = *parts_;
  p.stopped = true;
  const auto stopping = [&on_stage](const char* stage) {
    if (on_stage) on_stage(stage);
  };
  stopping("grabber (the source's read)");
  if (p.grabber) p.grabber->Stop();
  stopping("bus input");
  if (p.input) p.input->Stop();
  stopping("detector");
  // Off the shared detector first: Binding's destructor waits until the
  // detector thread no longer touches this stream's slots.
  p.detector.reset();
  if (p.external) p.external->Stop();
  stopping("annotator");
  if (p.annotator) p.annotator->Stop();
  stopping("bus outputs");
  for (auto& output : p.outputs) output->Stop();
  if (p.detections_output) p.detections_output->Stop();
  if (p.detections_input) p.detections_input->Stop();
  // The buses this stream writes are let go now, not when the last viewer
  // lets go of the Stream: a restarted stream writes them again at once.
  p.outputs.clear();
  p.detections_output.reset();
  stopping("encoders");
  if (p.encoder) p.encoder->Stop();
  if (p.variants) p.variants->Stop();
  // The WebRTC viewers end now (the server's sessions may keep the
  // WhepServer itself a little longer, through deps.owner).
  if (p.whep) {
    for (const auto& client : p.whep->Stats().value("clients", nlohmann::json::array())) {
      p.whep->End(client.value("id", ""));
    }
  }
  stopping("outputs to other engines");
  for (auto& output : p.engine_outputs) output->Stop();
  if (p.h264) p.h264->Stop();
  p.raw.Close();
  p.annotated.Close();
  p.detections.Close();
  p.detections_json.Close();
  p.jpeg.Close();
}

}  // namespace freshframe::app
