// GET and POST /api/config: what a request may say, and the JSON shape of
// the live settings. The session does the HTTP plumbing (body limits, auth,
// applying, logging); everything here is decided from values alone.
//
// Shape (GET, and the answer to a successful POST):
//   {"detector": true, "detector_spec": "faces", "overlay": "latest",
//    "quality": 85, "mirror": false,
//    "available": ["detector", "overlay", "quality", "mirror"]}
// A POST body is a JSON object with any non-empty subset of detector (bool),
// overlay ("latest" | "inferred"), quality (integer 1..100) and mirror
// (bool), sent as Content-Type application/json. Requiring that type is also
// the CSRF guard: an HTML form cannot send it, and a cross-origin script
// needs a CORS preflight, which this server never grants (no
// Access-Control-Allow-* headers on /api/config).
//
// Thread-safety: pure functions, safe from any thread.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/expected.h"
#include "core/live_settings.h"
#include "http/http.h"

namespace freshframe::http {

// The keys of the API, in the order they are listed.
inline constexpr std::array<std::string_view, 4> kConfigKeys = {"detector", "overlay", "quality",
                                                                "mirror"};

// A refused request: the HTTP status (400, 413 or 415) and a message that
// names the key and what is accepted.
struct ConfigError {
  unsigned status = 400;
  std::string message;
};

// Checks a whole POST /api/config request before anything is applied: the
// Content-Type (415 unless application/json, parameters allowed), the body
// (400 unless a non-empty JSON object of known keys with valid values), and
// that every key is available here (400 naming the reason from
// `unavailable`). On success, the change to apply, all of it.
Expected<SettingsChange, ConfigError> ParseConfigRequest(
    std::string_view content_type, std::string_view body,
    const std::map<std::string, std::string, std::less<>>& unavailable);

// Whether a Content-Type value is application/json (any case, any parameters).
bool IsJsonContentType(std::string_view content_type);

// The shape above for `values`; "available" lists kConfigKeys minus
// deps.unavailable.
nlohmann::json ConfigToJson(const SettingsValues& values, const ConfigDeps& deps);

// The body of a refused request: {"error": message} and a newline. Always
// valid JSON: a message quotes what the client sent (a Content-Type, a key,
// nlohmann's parse error with the bytes it choked on), which need not be
// UTF-8, so bytes that are not are replaced by U+FFFD instead of throwing.
std::string ConfigErrorJson(std::string_view message);

// What changed, for the log: "quality 85 -> 40, mirror off -> on"; empty if
// nothing did.
std::string DescribeChange(const SettingsValues& before, const SettingsValues& after);

}  // namespace freshframe::http
