#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "h264/h264.h"
#include "http/config_api.h"
#include "http/router.h"
#include "http/session.h"

namespace freshframe::http {
namespace {

std::string ErrorBody(std::string_view message) { return ConfigErrorJson(message); }

JsonReply NoSettings() {
  return {404, ErrorBody("live configuration is not available on this server")};
}

}  // namespace

nlohmann::json StreamContext::Describe() const {
  nlohmann::json out = deps.describe ? deps.describe() : nlohmann::json::object();
  AddLiveConfig(*this, out);
  if (deps.h264 != nullptr) {
    nlohmann::json h264 = deps.h264->Stats();
    h264["viewers"] = h264_viewers.load(std::memory_order_relaxed);
    h264["skips_to_key"] = h264_skips_to_key.load(std::memory_order_relaxed);
    h264["dropped"] = h264_dropped.load(std::memory_order_relaxed);
    out["h264"] = std::move(h264);
  }
  if (deps.whep.stats) out["webrtc"] = deps.whep.stats();
  return out;
}

JsonReply GetConfig(const StreamContext& stream) {
  const ConfigDeps& config = stream.deps.config;
  if (config.settings == nullptr) return NoSettings();
  return {200, ConfigToJson(config.settings->Get(), config).dump()};
}

JsonReply PostConfig(const StreamContext& stream, std::string_view content_type,
                     std::string_view body, std::string_view peer) {
  const ConfigDeps& config = stream.deps.config;
  if (config.settings == nullptr) return NoSettings();
  auto change = ParseConfigRequest(content_type, body, config.unavailable);
  if (!change) {
    spdlog::debug("config: refused from {}: {} {}", peer, change.error().status,
                  change.error().message);
    return {change.error().status, ErrorBody(change.error().message)};
  }
  const auto [before, after] = config.settings->Apply(*change);
  const std::string what = DescribeChange(before, after);
  spdlog::info("config: stream {}: {} (from {})", stream.name, what.empty() ? "no change" : what,
               peer);
  return {200, ConfigToJson(after, config).dump()};
}

JsonReply ConfigTooLarge() {
  return {413, ErrorBody("request body larger than " + std::to_string(kConfigBodyLimit) +
                         " bytes: /api/config takes a small JSON object, e.g. {\"quality\": 70}")};
}

void AddLiveConfig(const StreamContext& stream, nlohmann::json& describe) {
  const ConfigDeps& config = stream.deps.config;
  if (config.settings == nullptr || !describe.is_object()) return;
  const SettingsValues values = config.settings->Get();
  describe["config"] = ConfigToJson(values, config);
  describe["quality"] = values.quality;
  describe["overlay"] = OverlayName(values.overlay);
  describe["detector_enabled"] = values.detector;
}

std::string ClockJson() { return "{\"now_us\":" + std::to_string(MonotonicMicros()) + "}"; }

}  // namespace freshframe::http
