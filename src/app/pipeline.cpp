#include "app/pipeline.h"

#include <algorithm>
#include <optional>
#include <vector>

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <opencv2/core/utility.hpp>

#include "app/detector_pool.h"
#include "app/stream.h"
#include "h264/h264.h"
#include "http/auth.h"
#include "http/http.h"
#include "rtsp/rtsp.h"

namespace freshframe::web {
extern const std::string_view kGridHtml;
}

namespace freshframe::app {
namespace {

bool Serves(Role role) { return role == Role::kRun || role == Role::kServe; }

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

// The RTSP server as the streams' /api/stats see it: HTTP threads read it
// while a reload replaces the server.
class RtspStatus {
 public:
  void Set(rtsp::RtspServer* server) {
    std::lock_guard lock(mutex_);
    server_ = server;
  }
  // {"port", "clients", "max_clients", "mounts": [this stream's paths]}, or
  // null without an RTSP server.
  nlohmann::json Of(const std::string& name) const {
    std::lock_guard lock(mutex_);
    if (server_ == nullptr) return nullptr;
    nlohmann::json stats = server_->Stats();
    nlohmann::json mounts = nlohmann::json::array();
    for (auto& mount : stats.value("streams", nlohmann::json::array())) {
      if (mount.value("path", "") == "/streams/" + name) mounts.push_back(std::move(mount));
    }
    stats.erase("streams");
    stats["mounts"] = std::move(mounts);
    return stats;
  }

 private:
  mutable std::mutex mutex_;
  rtsp::RtspServer* server_ = nullptr;
};

}  // namespace

// Declaration order is construction order: the detectors the streams bind
// to first, the server last; destruction runs the other way round.
struct Pipeline::Parts {
  Config config;
  DetectorPool detectors;
  std::vector<std::shared_ptr<Stream>> streams;
  // --rtsp-port: every stream's H.264 over RTSP. Its mounts refer to the
  // streams' encoders, so it is rebuilt whenever a reload changes streams.
  std::optional<rtsp::RtspOptions> rtsp_options;
  std::unique_ptr<rtsp::RtspServer> rtsp;
  std::shared_ptr<RtspStatus> rtsp_status = std::make_shared<RtspStatus>();
  std::unique_ptr<http::Server> server;
  bool stopped = false;

  // Serves the first stream at rtsp://.../stream and every one at
  // /streams/NAME; an Error if the port cannot be bound.
  Expected<bool> StartRtsp() {
    if (!rtsp_options) return true;
    auto made = std::make_unique<rtsp::RtspServer>(*rtsp_options);
    size_t mounts = 0;
    for (size_t i = 0; i < streams.size(); ++i) {
      h264::H264Stage* h264 = streams[i]->h264();
      if (h264 == nullptr) continue;
      const auto subscribe = [h264](h264::AccessUnitSink sink) {
        return h264->Subscribe(std::move(sink));
      };
      if (i == 0) made->AddStream("/stream", subscribe, h264->demand(), h264->keyframes());
      made->AddStream("/streams/" + streams[i]->name(), subscribe, h264->demand(),
                      h264->keyframes());
      ++mounts;
    }
    if (mounts == 0) {
      spdlog::warn("rtsp: no stream has H.264 (--h264-encoder none): not serving RTSP");
      return true;
    }
    auto started = made->Start();
    if (!started) return Error{"rtsp: " + started.error().message};
    rtsp = std::move(made);
    rtsp_status->Set(rtsp.get());
    return true;
  }

  void StopRtsp() {
    rtsp_status->Set(nullptr);
    if (rtsp) rtsp->Stop();
    rtsp.reset();
  }

  // `stream`'s ServerDeps, its /api/stats with its RTSP mounts.
  http::ServerDeps DepsOf(Stream& stream) const {
    http::ServerDeps deps = stream.ServerDeps();
    if (!rtsp_options) return deps;
    deps.describe = [describe = std::move(deps.describe), status = rtsp_status,
                     name = stream.name()] {
      nlohmann::json out = describe();
      if (nlohmann::json rtsp_stats = status->Of(name); !rtsp_stats.is_null()) {
        out["rtsp"] = std::move(rtsp_stats);
      }
      return out;
    };
    return deps;
  }

  // Builds and starts `stream_config`'s stream, and serves it at `position`.
  Expected<std::shared_ptr<Stream>> StartStream(const StreamConfig& stream_config, size_t position,
                                                bool must_open) {
    auto stream = Stream::Create(stream_config, detectors, must_open);
    if (!stream) return stream.error();
    (*stream)->Start();
    if (server) {
      if (auto added = server->AddStream(stream_config.name, DepsOf(**stream), position); !added) {
        (*stream)->Stop();
        return added.error();
      }
    }
    return stream;
  }

  void StopStream(Stream& stream) {
    if (server) server->RemoveStream(stream.name());
    stream.Stop();
  }
};

Expected<std::unique_ptr<Pipeline>> Pipeline::Create(const RunOptions& options) {
  if (options.role == Role::kRun && !options.config_file.empty()) {
    auto config = LoadConfig(options.config_file);
    if (!config) return config.error();
    return Create(*config);
  }
  Config config = ConfigFromFlags(options);
  return Create(config);
}

Expected<std::unique_ptr<Pipeline>> Pipeline::Create(const Config& config) {
  auto parts = std::make_unique<Parts>();
  parts->config = config;
  const RunOptions& server_settings = config.server;
  const Role role = server_settings.role;
  // Read before anything starts, so that a bad --token-file fails at once.
  std::optional<http::ServerOptions> server_options;
  if (Serves(role)) {
    auto made = ServerOptionsOf(server_settings);
    if (!made) return made.error();
    server_options = std::move(made).value();
    server_options->grid_page = web::kGridHtml;
    if (server_settings.rtsp_port != 0) {
      // On HTTP's address, with HTTP's credentials.
      rtsp::RtspOptions rtsp_options;
      rtsp_options.bind_address = server_options->bind;
      rtsp_options.port = server_settings.rtsp_port;
      rtsp_options.basic_auth = server_options->basic_auth;
      rtsp_options.token = server_options->token;
      parts->rtsp_options = rtsp_options;
    }
  }
  // OpenCV's thread count is one setting for the whole process, so it is
  // set once, here, for every detector: each of them may use that many
  // threads while it runs, and on a small machine every stream's capture and
  // encoding pays for them (the detector threads run at a lower priority).
  cv::setNumThreads(server_settings.detector_threads);

  // One camera from the command line keeps its old behaviour: a source that
  // does not open is an error. In a config of several, it reconnects.
  const bool must_open = config.path.empty();
  for (const StreamConfig& stream_config : config.streams) {
    auto stream = Stream::Create(stream_config, parts->detectors, must_open);
    if (!stream) {
      if (config.streams.size() == 1) return stream.error();
      return Error{"stream " + stream_config.name + ": " + stream.error().message};
    }
    parts->streams.push_back(std::move(stream).value());
  }
  if (server_options) {
    LogAccess(*server_options);
    Stream& first = *parts->streams.front();
    auto server = http::Server::Start(*server_options, parts->DepsOf(first), first.name());
    if (!server) return server.error();
    parts->server = std::move(server).value();
    for (size_t i = 1; i < parts->streams.size(); ++i) {
      Stream& stream = *parts->streams[i];
      if (auto added = parts->server->AddStream(stream.name(), parts->DepsOf(stream)); !added) {
        return added.error();
      }
    }
  }
  for (auto& stream : parts->streams) stream->Start();
  if (auto started = parts->StartRtsp(); !started) return started.error();
  if (parts->streams.size() > 1) {
    spdlog::info("{} streams, {} detector(s) loaded", parts->streams.size(),
                 parts->detectors.loaded());
  }
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(parts)));
}

std::string Pipeline::Reload(const Config& next) {
  Parts& p = *parts_;
  std::vector<std::string> kept, restarted, started, stopped, failed;
  if (const std::string changed = ChangedServerKeys(p.config.server, next.server);
      !changed.empty()) {
    spdlog::warn("reload: server settings changed ({}); they apply when freshframe restarts",
                 changed);
  }
  // The RTSP server refers to the streams' encoders: it stops before any
  // stream does and comes back with the new set (its clients reconnect).
  const bool streams_change =
      next.streams.size() != p.streams.size() ||
      !std::equal(p.streams.begin(), p.streams.end(), next.streams.begin(),
                  [](const auto& stream, const StreamConfig& c) {
                    return stream->name() == c.name && ChangedKeys(stream->config(), c).empty();
                  });
  if (streams_change) p.StopRtsp();
  // Streams removed or changed stop first, so that a restarted one can take
  // its buses and its detector binding again.
  std::vector<std::shared_ptr<Stream>> running;
  for (auto& stream : p.streams) {
    const auto it = std::find_if(next.streams.begin(), next.streams.end(),
                                 [&](const StreamConfig& c) { return c.name == stream->name(); });
    if (it == next.streams.end()) {
      p.StopStream(*stream);
      stopped.push_back(stream->name());
      continue;
    }
    if (const std::string changed = ChangedKeys(stream->config(), *it); !changed.empty()) {
      p.StopStream(*stream);
      restarted.push_back(stream->name() + " (" + changed + ")");
      continue;
    }
    running.push_back(stream);
  }
  std::vector<std::shared_ptr<Stream>> streams;
  for (size_t i = 0; i < next.streams.size(); ++i) {
    const StreamConfig& stream_config = next.streams[i];
    const auto it = std::find_if(running.begin(), running.end(), [&](const auto& stream) {
      return stream->name() == stream_config.name;
    });
    if (it != running.end()) {
      kept.push_back(stream_config.name);
      streams.push_back(*it);
      continue;
    }
    auto stream = p.StartStream(stream_config, i, /*must_open=*/false);
    if (!stream) {
      spdlog::error("reload: stream {}: {}", stream_config.name, stream.error().message);
      failed.push_back(stream_config.name);
      continue;
    }
    // p.streams still holds the streams before the reload: one of the same
    // name was restarted (listed above), otherwise this one is new.
    const bool existed = std::any_of(p.streams.begin(), p.streams.end(), [&](const auto& old) {
      return old->name() == stream_config.name;
    });
    if (!existed) started.push_back(stream_config.name);
    streams.push_back(std::move(stream).value());
  }
  p.streams = std::move(streams);
  const RunOptions server_settings = p.config.server;  // running ones stay until restart
  p.config = next;
  p.config.server = server_settings;
  const auto list = [](const std::vector<std::string>& names) {
    return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
  };
  if (streams_change) {
    if (auto rtsp_started = p.StartRtsp(); !rtsp_started) {
      spdlog::error("reload: {}", rtsp_started.error().message);
    }
  }
  std::string summary = "kept " + list(kept) + "; restarted " + list(restarted) + "; started " +
                        list(started) + "; stopped " + list(stopped);
  if (!failed.empty()) summary += "; failed " + list(failed);
  return summary;
}

Pipeline::Pipeline(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Pipeline::~Pipeline() { Stop(); }

std::string Pipeline::url() const { return parts_->server ? parts_->server->url() : ""; }

void Pipeline::Stop(const std::function<void(const char* stage)>& on_stage) {
  if (!parts_ || parts_->stopped) return;
  parts_->stopped = true;
  if (on_stage) on_stage("server");
  if (parts_->server) parts_->server->Stop();
  if (on_stage) on_stage("rtsp server");
  parts_->StopRtsp();
  for (auto& stream : parts_->streams) stream->Stop(on_stage);
}

}  // namespace freshframe::app
