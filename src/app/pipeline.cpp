#include "app/pipeline.h"

#include <optional>
#include <vector>

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>

#include "bus/bus_stages.h"
#include "bus/text_bus.h"
#include "capture/capture.h"
#include "core/demand.h"
#include "core/latest_slot.h"
#include "core/live_settings.h"
#include "core/metrics.h"
#include "encode/encode.h"
#include "http/auth.h"
#include "http/http.h"
#include "httpclient/redact.h"
#include "infer/bus_detections.h"
#include "infer/detectors.h"
#include "infer/infer.h"

namespace freshframe::web {
extern const std::string_view kIndexHtml;
}

namespace freshframe::app {
namespace {

bool Captures(Role role) { return role == Role::kRun || role == Role::kCapture; }
bool Annotates(Role role) { return role == Role::kRun || role == Role::kInfer; }

// Where the detections of the frames on bus `frames_bus` go.
std::string DetectionsBusName(const std::string& frames_bus) { return frames_bus + ".detections"; }
bool Serves(Role role) { return role == Role::kRun || role == Role::kServe; }

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

// `token`, or the first line of `token_file` when one is given (a --token
// and --token-file pair); an Error if that file cannot be read.
Expected<std::string> TokenOf(const std::string& token, const std::string& token_file) {
  if (token_file.empty()) return token;
  return http::ReadTokenFile(token_file);
}

// An Error if --token-file cannot be read (a runtime failure: exit 1).
Expected<http::ServerOptions> ServerOptionsOf(const RunOptions& options) {
  http::ServerOptions server;
  server.bind = options.bind;
  server.port = static_cast<uint16_t>(options.port);
  server.threads = options.threads;
  auto token = TokenOf(options.token, options.token_file);
  if (!token) return token.error();
  server.token = std::move(token).value();
  server.basic_auth = options.basic_auth;
  // Normalised as the policy compares them (validated by the command line).
  for (const auto& origin : options.allow_origins) {
    if (auto valid = http::ValidateAllowOrigin(origin)) {
      server.origin_policy.allow_origins.push_back(*valid);
    }
  }
  for (const auto& host : options.allow_hosts) {
    if (auto valid = http::ValidateAllowHost(host))
      server.origin_policy.allow_hosts.push_back(*valid);
  }
  server.max_clients = static_cast<size_t>(options.max_clients);
  server.max_variants = static_cast<size_t>(options.max_variants);
  server.max_connections_per_address = static_cast<size_t>(options.max_connections_per_address);
  return server;
}

// The settings a process starts with, from its command line.
SettingsValues InitialSettings(const RunOptions& options) {
  SettingsValues values;
  values.detector = Annotates(options.role) && options.detector != "none";
  values.overlay = ParseOverlay(options.overlay).value_or(OverlayMode::kLatest);
  values.quality = options.quality;
  values.mirror = options.mirror;
  return values;
}

// What POST /api/config may change in this process, and for the rest, why
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
         "this process was started with --detector none; restart it with "
         "--detector SPEC (e.g. --detector faces) to switch detection on and off"}};
  }
  return config;
}

// Says whether access is controlled, never with what.
void LogAccess(const http::ServerOptions& server) {
  const auto& policy = server.origin_policy;
  spdlog::info("http: pages of other origins {}; Host names answered: IP addresses, localhost{}",
               policy.allow_origins.empty()
                   ? std::string("refused (--allow-origin to allow one)")
                   : "refused but " + fmt::format("{}", fmt::join(policy.allow_origins, ", ")),
               policy.allow_hosts.empty()
                   ? std::string(" (--allow-host to add one)")
                   : ", " + fmt::format("{}", fmt::join(policy.allow_hosts, ", ")));
  if (http::AuthRequired(server)) {
    spdlog::info("http: every route but /healthz needs {}",
                 server.token.empty()        ? "Basic credentials"
                 : server.basic_auth.empty() ? "the token"
                                             : "the token or Basic credentials");
  } else if (server.bind.rfind("127.", 0) != 0 && server.bind != "::1" &&
             server.bind != "localhost") {
    spdlog::warn(
        "http: listening on {} without --token or --basic-auth: anyone who can reach it "
        "can watch",
        server.bind);
  }
}

}  // namespace

// Declaration order is construction order: slots and shared state first,
// stages after, server last; destruction runs the other way round, so
// everything a stage or session refers to outlives it.
struct Pipeline::Parts {
  explicit Parts(const RunOptions& run_options)
      : options(run_options), settings(InitialSettings(run_options)) {}

  RunOptions options;
  LiveSettings settings;  // the stages and the server read it; POST /api/config writes it
  Metrics metrics;
  Demand demand;
  LatestSlot<FramePtr> raw;
  LatestSlot<infer::DetectionSetPtr> detections;
  LatestSlot<infer::JsonTextPtr> detections_json;
  LatestSlot<FramePtr> annotated;
  LatestSlot<encode::EncodedFramePtr> jpeg;
  std::optional<capture::Grabber> grabber;
  std::optional<bus::BusSubscriberStage> input;
  std::optional<infer::DetectorStage> detector;
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
  std::unique_ptr<http::Server> server;
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
        {"stale", !Live()}};
    if (detector) {
      const infer::DetectorActivity activity = detector->activity();
      out["detection"] = {
          {"name", detector->name()},
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
};

Expected<std::unique_ptr<Pipeline>> Pipeline::Create(const RunOptions& options) {
  auto parts = std::make_unique<Parts>(options);
  const Role role = options.role;
  // Read before anything starts, so that a bad --token-file fails at once.
  std::optional<http::ServerOptions> server_options;
  if (Serves(role)) {
    auto made = ServerOptionsOf(options);
    if (!made) return made.error();
    server_options = std::move(made).value();
  }

  // Input: a source (run, capture) or a bus (infer, serve). serve's bus
  // carries annotated frames, so it feeds the annotated slot directly.
  if (Captures(role)) {
    capture::SourceOptions source_options;
    source_options.spec = options.source;
    source_options.width = options.width;
    source_options.height = options.height;
    source_options.fps = options.source_fps;
    source_options.fourcc = options.fourcc;
    source_options.loop = options.loop;
    source_options.rtsp_transport = options.rtsp_transport;
    auto token = TokenOf(options.source_token, options.source_token_file);
    if (!token) return Error{"--source-token-file: " + token.error().message};
    source_options.token = std::move(token).value();
    auto source = capture::MakeSource(source_options);
    if (!source) return Error{httpclient::RedactUrl(source.error().message)};
    // A source that cannot be opened at start-up is an error (exit 1); one
    // that fails later is reopened by the grabber. Its message is shown:
    // redacted, like every message that may quote the spec.
    if (auto opened = (*source)->Open(); !opened) {
      return Error{httpclient::RedactUrl(opened.error().message)};
    }
    parts->grabber.emplace(std::move(source).value(), parts->raw, parts->metrics);
  } else {
    auto reader = bus::BusReader::Open(options.in_bus, BusOptionsOf(options));
    if (!reader) return reader.error();
    parts->input.emplace(std::move(reader).value(), options.in_bus,
                         role == Role::kServe ? parts->annotated : parts->raw, parts->metrics);
  }

  if (Annotates(role)) {
    // The detector gets a bounded share of the machine, so it cannot starve
    // capture, encoding and sending.
    cv::setNumThreads(options.detector_threads);
    const auto max_age =
        std::chrono::microseconds(static_cast<int64_t>(options.detections_max_age * 1e6));
    std::string spec = options.detector;
    if (!options.cascade.empty() && spec == "faces") spec = "cascade:" + options.cascade;
    if (spec.starts_with(infer::kBusDetectorPrefix)) {
      infer::ExternalDetectionsOptions external;
      external.bus_name = spec.substr(infer::kBusDetectorPrefix.size());
      external.max_age = max_age;
      auto reader = bus::BusReader::Open(external.bus_name, BusOptionsOf(options));
      if (!reader) return reader.error();
      parts->external.emplace(std::move(reader).value(), std::move(external), parts->raw,
                              parts->detections, parts->metrics, &parts->detections_json,
                              &parts->settings);
    } else {
      auto made = infer::MakeDetector(spec, options.detection);
      if (!made) return made.error();
      if (std::unique_ptr<infer::Detector> detector = std::move(made).value()) {
        parts->detector.emplace(std::move(detector), parts->raw, parts->detections, parts->metrics,
                                &parts->detections_json, &parts->settings);
      }
    }
    const bool has_detector = parts->detector || parts->external;
    parts->annotator.emplace(parts->settings.overlay(), parts->raw,
                             has_detector ? &parts->detections : nullptr, parts->annotated,
                             parts->metrics, options.hud, &parts->settings, max_age);
  }

  // Outputs on buses.
  if (role == Role::kCapture) {
    if (auto added = parts->AddOutput(parts->raw, options.out_bus); !added) return added.error();
  }
  if (role == Role::kInfer) {
    if (auto added = parts->AddOutput(parts->annotated, options.out_bus); !added) {
      return added.error();
    }
    if (parts->detector || parts->external) parts->AddDetectionsOutput(options.out_bus);
  }
  if (role == Role::kRun && !options.publish.empty()) {
    if (auto added = parts->AddOutput(parts->annotated, options.publish); !added) {
      return added.error();
    }
    if (auto added = parts->AddOutput(parts->raw, options.publish + ".raw"); !added) {
      return added.error();
    }
    if (parts->detector || parts->external) parts->AddDetectionsOutput(options.publish);
  }

  if (role == Role::kServe) parts->AddDetectionsInput(options.in_bus);

  if (Serves(role)) {
    LogAccess(*server_options);
    Parts* raw_parts = parts.get();
    const bool has_detections = parts->detector || parts->external || parts->detections_input;
    parts->variants.emplace(options.quality, parts->annotated, parts->metrics, &parts->settings);
    http::ServerDeps deps{parts->jpeg,
                          parts->demand,
                          parts->metrics,
                          web::kIndexHtml,
                          [raw_parts] { return raw_parts->Describe(); },
                          [raw_parts] { return raw_parts->Live(); },
                          has_detections ? &parts->detections_json : nullptr};
    deps.source_format = [raw_parts] { return raw_parts->Format(); };
    deps.variants = &*parts->variants;
    deps.config = ConfigDepsOf(options, parts->settings);
    auto server = http::Server::Start(*server_options, std::move(deps));
    if (!server) return server.error();
    parts->server = std::move(server).value();
    parts->encoder.emplace(options.quality, parts->annotated, parts->jpeg, parts->demand,
                           parts->metrics, &parts->settings);
    parts->encoder->Start();
    parts->variants->Start();
  }

  for (auto& output : parts->outputs) output->Start();
  if (parts->detections_output) parts->detections_output->Start();
  if (parts->detections_input) parts->detections_input->Start();
  if (parts->annotator) parts->annotator->Start();
  if (parts->detector) parts->detector->Start();
  if (parts->external) parts->external->Start();
  if (parts->input) parts->input->Start();
  if (parts->grabber) parts->grabber->Start();
  spdlog::info("{}: source {} detector {} overlay {}{}", RoleName(role),
               parts->grabber ? httpclient::RedactUrl(options.source) : "bus:" + options.in_bus,
               Annotates(role) ? options.detector : "-", options.overlay,
               options.mirror && Annotates(role) ? " mirrored" : "");
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(parts)));
}

Pipeline::Pipeline(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Pipeline::~Pipeline() { Stop(); }

std::string Pipeline::url() const { return parts_->server ? parts_->server->url() : ""; }

void Pipeline::Stop(const std::function<void(const char* stage)>& on_stage) {
  if (!parts_ || parts_->stopped) return;
  parts_->stopped = true;
  const auto stopping = [&on_stage](const char* stage) {
    if (on_stage) on_stage(stage);
  };
  stopping("server");
  if (parts_->server) parts_->server->Stop();
  stopping("grabber (the source's read)");
  if (parts_->grabber) parts_->grabber->Stop();
  stopping("bus input");
  if (parts_->input) parts_->input->Stop();
  stopping("detector");
  if (parts_->detector) parts_->detector->Stop();
  if (parts_->external) parts_->external->Stop();
  stopping("annotator");
  if (parts_->annotator) parts_->annotator->Stop();
  stopping("bus outputs");
  for (auto& output : parts_->outputs) output->Stop();
  if (parts_->detections_output) parts_->detections_output->Stop();
  if (parts_->detections_input) parts_->detections_input->Stop();
  stopping("encoders");
  if (parts_->encoder) parts_->encoder->Stop();
  if (parts_->variants) parts_->variants->Stop();
  parts_->raw.Close();
  parts_->annotated.Close();
  parts_->detections.Close();
  parts_->detections_json.Close();
  parts_->jpeg.Close();
}

}  // namespace freshframe::app
