#include "http/config_api.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <initializer_list>

namespace freshframe::http {
namespace {

constexpr size_t kMaxEcho = 40;  // bytes of a rejected key or value quoted back

ConfigError BadRequest(std::string message) { return {400, std::move(message)}; }

// `value` as JSON text for a message, cut short: a message names the
// offending value, it does not echo a whole body back.
std::string Echo(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > kMaxEcho) text = text.substr(0, kMaxEcho) + "...";
  return text;
}

// Concatenation by append: GCC 12 at -O3 reports a false -Wrestrict on
// "\"" + std::string(...).
std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view part : parts) out.append(part);
  return out;
}

std::string KnownKeys() {
  std::string out;
  for (std::string_view key : kConfigKeys) {
    if (!out.empty()) out += ", ";
    out += key;
  }
  return out;
}

bool IsKnown(std::string_view key) {
  return std::find(kConfigKeys.begin(), kConfigKeys.end(), key) != kConfigKeys.end();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Each key's value, or an error that names the key and what it takes.
Expected<bool, ConfigError> ParseBool(const nlohmann::json& value, std::string_view key) {
  if (!value.is_boolean()) {
    return BadRequest(Cat({"\"", key, "\" must be true or false, got ", Echo(value)}));
  }
  return value.get<bool>();
}

Expected<int, ConfigError> ParseQuality(const nlohmann::json& value) {
  // is_number_integer is false for 85.5, 85.0, "85" and true: each refused.
  const bool in_range =
      (value.is_number_unsigned() && value.get<uint64_t>() >= kMinJpegQuality &&
       value.get<uint64_t>() <= kMaxJpegQuality) ||
      (value.is_number_integer() && !value.is_number_unsigned() &&
       value.get<int64_t>() >= kMinJpegQuality && value.get<int64_t>() <= kMaxJpegQuality);
  if (!in_range) {
    return BadRequest("\"quality\" must be a whole number from " + std::to_string(kMinJpegQuality) +
                      " to " + std::to_string(kMaxJpegQuality) + ", got " + Echo(value));
  }
  return static_cast<int>(value.get<int64_t>());
}

Expected<OverlayMode, ConfigError> ParseOverlayValue(const nlohmann::json& value) {
  if (value.is_string()) {
    if (const auto mode = ParseOverlay(value.get<std::string>())) return *mode;
  }
  return BadRequest(R"("overlay" must be "latest" or "inferred", got )" + Echo(value));
}

}  // namespace

bool IsJsonContentType(std::string_view content_type) {
  std::string_view media = Trim(content_type.substr(0, content_type.find(';')));
  constexpr std::string_view kJson = "application/json";
  return media.size() == kJson.size() &&
         std::equal(media.begin(), media.end(), kJson.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

Expected<SettingsChange, ConfigError> ParseConfigRequest(
    std::string_view content_type, std::string_view body,
    const std::map<std::string, std::string, std::less<>>& unavailable) {
  if (!IsJsonContentType(content_type)) {
    std::string got =
        content_type.empty() ? std::string("none") : std::string(content_type.substr(0, kMaxEcho));
    return ConfigError{415, "Content-Type must be application/json, got " + got};
  }
  const std::string example = R"(, e.g. {"quality": 70})";
  if (Trim(body).empty()) {
    return BadRequest("empty body: send a JSON object with one or more of " + KnownKeys() +
                      example);
  }
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    // parse_error, and out_of_range for a number beyond a double (1e999):
    // nothing may escape to the session's handler.
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " tag.
    if (const auto tag = what.find("] "); tag != std::string::npos) what = what.substr(tag + 2);
    return BadRequest("body is not valid JSON: " + what);
  }
  if (!object.is_object()) {
    return BadRequest("body must be a JSON object" + example + ", got " + Echo(object));
  }
  if (object.empty()) {
    return BadRequest("empty object: give one or more of " + KnownKeys() + example);
  }
  for (const auto& [key, value] : object.items()) {
    if (!IsKnown(key)) {
      const std::string shown = key.size() > kMaxEcho ? key.substr(0, kMaxEcho) + "..." : key;
      return BadRequest(Cat({"unknown key \"", shown, "\": the keys are ", KnownKeys()}));
    }
  }
  // Keys in the API's order, so that the first error reported is stable.
  for (std::string_view key : kConfigKeys) {
    if (!object.contains(key)) continue;
    if (const auto why = unavailable.find(key); why != unavailable.end()) {
      return BadRequest(Cat({"\"", key, "\" cannot be changed in this process: ", why->second}));
    }
  }
  SettingsChange change;
  if (object.contains("detector")) {
    auto value = ParseBool(object["detector"], "detector");
    if (!value) return value.error();
    change.detector = *value;
  }
  if (object.contains("overlay")) {
    auto value = ParseOverlayValue(object["overlay"]);
    if (!value) return value.error();
    change.overlay = *value;
  }
  if (object.contains("quality")) {
    auto value = ParseQuality(object["quality"]);
    if (!value) return value.error();
    change.quality = *value;
  }
  if (object.contains("mirror")) {
    auto value = ParseBool(object["mirror"], "mirror");
    if (!value) return value.error();
    change.mirror = *value;
  }
  return change;
}

std::string ConfigErrorJson(std::string_view message) {
  // replace, not the default strict: strict throws on the first byte that
  // is not UTF-8, out of the session's handler.
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace) +
         "\n";
}

nlohmann::json ConfigToJson(const SettingsValues& values, const ConfigDeps& deps) {
  nlohmann::json available = nlohmann::json::array();
  for (std::string_view key : kConfigKeys) {
    if (!deps.unavailable.contains(key)) available.push_back(key);
  }
  return {{"detector", values.detector},
          {"detector_spec", deps.detector_spec},
          {"overlay", OverlayName(values.overlay)},
          {"quality", values.quality},
          {"mirror", values.mirror},
          {"available", std::move(available)}};
}

std::string DescribeChange(const SettingsValues& before, const SettingsValues& after) {
  std::string out;
  const auto add = [&out](std::string_view key, std::string_view from, std::string_view to) {
    if (from == to) return;
    if (!out.empty()) out += ", ";
    out.append(key).append(" ").append(from).append(" -> ").append(to);
  };
  const auto on_off = [](bool on) { return on ? "on" : "off"; };
  add("detector", on_off(before.detector), on_off(after.detector));
  add("overlay", OverlayName(before.overlay), OverlayName(after.overlay));
  add("quality", std::to_string(before.quality), std::to_string(after.quality));
  add("mirror", on_off(before.mirror), on_off(after.mirror));
  return out;
}

}  // namespace freshframe::http
